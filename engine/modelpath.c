/*
 * modelpath.c: models by name. A model argument without '/' and without '.' is a name, looked up
 * as NAME.safetensors then NAME.pth in each folder of $CATANET_MODEL_PATH, then in the installed
 * model folder (CATANET_DATADIR); anything else is a path. The one place this rule lives: the
 * engine, the model loader (so every tool and the FFmpeg filter) and the listing all use it.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catanet.h"
#include "config.h"
#include "error.h"

static const char *const exts[] = { ".safetensors", ".pth" };
#define N_EXTS (int)(sizeof(exts) / sizeof(exts[0]))

const char *catanet_model_dir(void)
{
    return CATANET_DATADIR;
}

static int is_name(const char *s)
{
    return !strchr(s, '/') && !strchr(s, '.');
}

/* letters, digits, '_' and '-': nothing a shell, a path or a format string could read differently */
static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > CATANET_MODEL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* The folders a name is looked up in, in order: each non-empty entry of $CATANET_MODEL_PATH, then
 * the installed folder. A folder named twice is visited once (the listing would show its models
 * twice otherwise); an entry too long for a path is skipped. */
typedef struct DirIter {
    const char *env, *p;
    int installed_done;
} DirIter;

static void dir_begin(DirIter *it)
{
    it->env = getenv("CATANET_MODEL_PATH");
    it->p = it->env;
    it->installed_done = 0;
}

/* 1 when an entry of env that starts before stop names the n bytes at s */
static int listed(const char *env, const char *stop, const char *s, size_t n)
{
    for (const char *q = env; q && q < stop;) {
        const char *end = strchr(q, ':');
        size_t m = end ? (size_t)(end - q) : strlen(q);
        if (m == n && !memcmp(q, s, n))
            return 1;
        q = end ? end + 1 : NULL;
    }
    return 0;
}

static int dir_next(DirIter *it, char *dir, size_t size)
{
    while (it->p && *it->p) {
        const char *s = it->p, *end = strchr(s, ':');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        it->p = end ? end + 1 : NULL;
        if (n == 0 || n >= size || listed(it->env, s, s, n))
            continue;
        memcpy(dir, s, n);
        dir[n] = 0;
        return 1;
    }
    if (it->installed_done)
        return 0;
    it->installed_done = 1;
    const char *inst = catanet_model_dir();
    size_t n = strlen(inst);
    if (n >= size || (it->env && listed(it->env, it->env + strlen(it->env) + 1, inst, n)))
        return 0;
    memcpy(dir, inst, n + 1);
    return 1;
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int catanet_model_resolve(const char *model, char *path, size_t path_size, char *err, size_t es)
{
    if (err && es)
        err[0] = 0;
    if (!model || !path || !path_size)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "model or path is NULL");
    if (!*model)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "the model is empty: give a model name (e.g. "
                            "catanet_xs_x2) or the path of a .safetensors or .pth file");
    size_t len = strlen(model);
    if (!is_name(model)) {
        if (len >= path_size)
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "model path '%s' is too long", model);
        memcpy(path, model, len + 1);
        return 0;
    }
    if (!valid_name(model, len))
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%.*s' is not a model name (letters, digits, "
                            "'_' and '-', at most %d) nor a path (a path has a '/' or an extension: ./%.*s)",
                            CATANET_MODEL_NAME_MAX, model, CATANET_MODEL_NAME_MAX, CATANET_MODEL_NAME_MAX, model);
    char dir[PATH_MAX], cand[PATH_MAX], tried[768];
    size_t nt = 0;
    tried[0] = 0;
    DirIter it;
    dir_begin(&it);
    while (dir_next(&it, dir, sizeof(dir))) {
        for (int k = 0; k < N_EXTS; k++) {
            int n = snprintf(cand, sizeof(cand), "%s/%s%s", dir, model, exts[k]);
            if (n < 0 || (size_t)n >= sizeof(cand) || !is_file(cand))
                continue;
            if ((size_t)n >= path_size)
                return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "model path '%s' is too long", cand);
            memcpy(path, cand, (size_t)n + 1);
            return 0;
        }
        if (nt < sizeof(tried)) {
            int n = snprintf(tried + nt, sizeof(tried) - nt, "%s'%s'", nt ? ", " : "", dir);
            nt += n > 0 ? (size_t)n : 0;
        }
    }
    return catanet_errf(err, es, CATANET_ERR_IO, "model '%s' not found: no %s.safetensors or %s.pth in %s "
                        "(the folders of CATANET_MODEL_PATH%s, then the installed model folder)", model, model,
                        model, tried, it.env && *it.env ? "" : ", which is not set");
}

static int model_file(const struct dirent *d)
{
    const char *dot = strrchr(d->d_name, '.');
    if (!dot || !valid_name(d->d_name, (size_t)(dot - d->d_name)))
        return 0;
    for (int k = 0; k < N_EXTS; k++)
        if (!strcmp(dot, exts[k]))
            return 1;
    return 0;
}

int catanet_model_list(CatanetModelFn fn, void *opaque)
{
    if (!fn)
        return CATANET_ERR_INVALID_ARG;
    char dir[PATH_MAX], path[PATH_MAX], found[PATH_MAX], name[CATANET_MODEL_NAME_MAX + 1];
    DirIter it;
    dir_begin(&it);
    int ret = 0;
    while (!ret && dir_next(&it, dir, sizeof(dir))) {
        struct dirent **ents;
        int n = scandir(dir, &ents, model_file, alphasort);
        if (n < 0)
            continue; /* a folder that does not exist holds no models */
        for (int i = 0; i < n; i++) {
            const char *fname = ents[i]->d_name;
            size_t stem = (size_t)(strrchr(fname, '.') - fname);
            memcpy(name, fname, stem);
            name[stem] = 0;
            int m = snprintf(path, sizeof(path), "%s/%s", dir, fname);
            /* listed only where the name leads: not a copy shadowed by an earlier folder or by
             * NAME.safetensors beside NAME.pth */
            if (!ret && m > 0 && (size_t)m < sizeof(path) && is_file(path) &&
                catanet_model_resolve(name, found, sizeof(found), NULL, 0) == 0 && !strcmp(found, path))
                ret = fn(opaque, name, path);
            free(ents[i]);
        }
        free(ents);
    }
    return ret;
}
