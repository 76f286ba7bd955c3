/*
 * test_models: models by name through the public API (catanet_model_resolve, catanet_model_list,
 * catanet_model_probe, catanet_engine_open): which argument is a path and which a name, the
 * lookup order (CATANET_MODEL_PATH's folders, empty entries skipped, then the installed folder;
 * NAME.safetensors before NAME.pth), malformed names refused ('..', separators, spaces, too long,
 * empty), the not-found message naming every folder, a path buffer too small, the listing
 * (shadowed and duplicate entries left out, stopping early) and an official .pth opened by name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "testutil.h"

static void touch(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f)
        fclose(f);
}

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        ok = fwrite(buf, 1, n, b) == n;
    if (a)
        fclose(a);
    if (b && fclose(b))
        ok = 0;
    return ok;
}

typedef struct Seen {
    char lines[16][1024];
    int n, stop_at;
} Seen;

static int collect(void *opaque, const char *name, const char *path)
{
    Seen *s = opaque;
    if (s->n < 16)
        snprintf(s->lines[s->n], sizeof(s->lines[0]), "%s=%s", name, path);
    s->n++;
    return s->stop_at && s->n == s->stop_at ? 42 : 0;
}

int main(void)
{
    char tmpl[] = "/tmp/test_models.XXXXXX", a[64], b[64], e[64], path[2048], err[1024], want[2048];
    const char *root = mkdtemp(tmpl);
    if (!root) {
        test_check(0, "mkdtemp");
        return test_finish();
    }
    snprintf(a, sizeof(a), "%s/a", root);
    snprintf(b, sizeof(b), "%s/b", root);
    snprintf(e, sizeof(e), "%s/empty", root);
    mkdir(a, 0755);
    mkdir(b, 0755);
    mkdir(e, 0755);
    /* a: m1 as both formats (safetensors wins), m2.pth; b: m1 (shadowed), m3, files that are no models */
    touch(a, "m1.safetensors");
    touch(a, "m1.pth");
    touch(a, "m2.pth");
    touch(b, "m1.safetensors");
    touch(b, "m3.safetensors");
    touch(b, "not a name.safetensors");
    touch(b, "m4.txt");
    mkdir(strcat(strcpy(path, b), "/dir.safetensors"), 0755);
    char env[512];
    snprintf(env, sizeof(env), ":%s::%s:%s:%s:", e, a, b, a);
    setenv("CATANET_MODEL_PATH", env, 1);

    /* paths pass through unchanged, whether or not they exist */
    static const char *const paths[] = { "x.safetensors", "./m1", "a/b", "..", "../m1", "/abs/m1.pth", "m1.v2" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        int r = catanet_model_resolve(paths[i], path, sizeof(path), err, sizeof(err));
        test_check(r == 0 && !strcmp(path, paths[i]), "'%s' is a path, copied unchanged (ret %d, '%s')", paths[i], r, path);
    }
    /* names: the first folder that has one, .safetensors before .pth */
    int r = catanet_model_resolve("m1", path, sizeof(path), err, sizeof(err));
    snprintf(want, sizeof(want), "%s/m1.safetensors", a);
    test_check(r == 0 && !strcmp(path, want), "m1 -> %s (ret %d: %s)", path, r, err);
    r = catanet_model_resolve("m2", path, sizeof(path), err, sizeof(err));
    snprintf(want, sizeof(want), "%s/m2.pth", a);
    test_check(r == 0 && !strcmp(path, want), "m2 -> %s (.pth when there is no .safetensors; ret %d)", path, r);
    r = catanet_model_resolve("m3", path, sizeof(path), err, sizeof(err));
    snprintf(want, sizeof(want), "%s/m3.safetensors", b);
    test_check(r == 0 && !strcmp(path, want), "m3 -> %s (a later folder; ret %d)", path, r);
    r = catanet_model_resolve("dir", path, sizeof(path), err, sizeof(err));
    test_check(r == CATANET_ERR_IO, "a folder named dir.safetensors is no model: ret %d", r);
    r = catanet_model_resolve("m1", path, 8, err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG, "a path buffer too small is an error, not a cut path (ret %d: %s)", r, err);

    /* not found: every folder once, in order, then the installed one */
    r = catanet_model_resolve("nope", path, sizeof(path), err, sizeof(err));
    snprintf(want, sizeof(want), "model 'nope' not found: no nope.safetensors or nope.pth in '%s', '%s', '%s', '%s' "
             "(the folders of CATANET_MODEL_PATH, then the installed model folder)", e, a, b, catanet_model_dir());
    test_check(r == CATANET_ERR_IO && !strcmp(err, want), "not found: ret %d, '%s'", r, err);

    /* malformed names */
    static const char *const bad[] = { "", "a b", "m1\\x", "a:b", "$(id)", "m1;ls", "-\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = catanet_model_resolve(bad[i], path, sizeof(path), err, sizeof(err));
        test_check(r == CATANET_ERR_INVALID_ARG && *err, "'%s' refused (ret %d: %s)", bad[i], r, err);
    }
    char longname[CATANET_MODEL_NAME_MAX + 2];
    memset(longname, 'm', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    r = catanet_model_resolve(longname, path, sizeof(path), err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG, "a name of %d bytes is refused (ret %d)", CATANET_MODEL_NAME_MAX + 1, r);
    longname[CATANET_MODEL_NAME_MAX] = 0;
    r = catanet_model_resolve(longname, path, sizeof(path), err, sizeof(err));
    test_check(r == CATANET_ERR_IO, "a name of %d bytes is looked up (ret %d)", CATANET_MODEL_NAME_MAX, r);
    test_check(catanet_model_resolve(NULL, path, sizeof(path), NULL, 0) == CATANET_ERR_INVALID_ARG, "NULL model refused");

    /* the listing: a's m1 (not its .pth) and m2, b's m3 (not its shadowed m1), a named twice counts once */
    Seen s = { 0 };
    r = catanet_model_list(collect, &s);
    char w1[256], w2[256], w3[256];
    snprintf(w1, sizeof(w1), "m1=%s/m1.safetensors", a);
    snprintf(w2, sizeof(w2), "m2=%s/m2.pth", a);
    snprintf(w3, sizeof(w3), "m3=%s/m3.safetensors", b);
    test_check(r == 0 && s.n == 3 && !strcmp(s.lines[0], w1) && !strcmp(s.lines[1], w2) && !strcmp(s.lines[2], w3),
               "the listing: %d models (%s; %s; %s), ret %d", s.n, s.lines[0], s.n > 1 ? s.lines[1] : "",
               s.n > 2 ? s.lines[2] : "", r);
    Seen s2 = { .stop_at = 2 };
    r = catanet_model_list(collect, &s2);
    test_check(r == 42 && s2.n == 2, "the callback stops the listing: ret %d after %d", r, s2.n);
    test_check(catanet_model_list(NULL, NULL) == CATANET_ERR_INVALID_ARG, "NULL callback refused");

    /* an official checkpoint by name: probed and opened; its twin's architecture */
    char ref[1024], st[1024], dst[1200];
    if (ref_cases_present()) {
        ref_path(ref, sizeof(ref), "weights_x3_random.pth");
        ref_path(st, sizeof(st), "weights_x3_random.safetensors");
        snprintf(dst, sizeof(dst), "%s/official_x3.pth", a);
        test_check(copy_file(ref, dst), "copy %s", ref);
        CatanetModelInfo i1, i2;
        int r1 = catanet_model_probe("official_x3", &i1, err, sizeof(err));
        int r2 = catanet_model_probe(st, &i2, err, sizeof(err));
        test_check(r1 == 0 && r2 == 0 && i1.upscale == 3 && i1.num_params == i2.num_params && i1.dim == i2.dim,
                   "probe official_x3 (.pth by name): x%d, %lld parameters as its safetensors twin (%d %d)",
                   i1.upscale, (long long)i1.num_params, r1, r2);
        CatanetConfig cfg;
        catanet_config_default(&cfg);
        cfg.threads = 1;
        CatanetEngine *eng = NULL;
        r = catanet_engine_open(&eng, "official_x3", &cfg, err, sizeof(err));
        test_check(r == 0 && catanet_engine_scale(eng) == 3, "catanet_engine_open(\"official_x3\"): ret %d %s", r, err);
        catanet_engine_close(&eng);
        r = catanet_engine_open(&eng, "nope", &cfg, err, sizeof(err));
        test_check(r == CATANET_ERR_IO && !eng && strstr(err, "model 'nope' not found") && strstr(err, a),
                   "catanet_engine_open of a name not found: ret %d, '%s'", r, err);
        unlink(dst);
    }
    /* a name reaches the installed folder when CATANET_MODEL_PATH is unset */
    unsetenv("CATANET_MODEL_PATH");
    r = catanet_model_resolve("nope", path, sizeof(path), err, sizeof(err));
    snprintf(want, sizeof(want), "in '%s' (the folders of CATANET_MODEL_PATH, which is not set", catanet_model_dir());
    test_check(r == CATANET_ERR_IO && strstr(err, want), "unset CATANET_MODEL_PATH: only the installed folder: %s", err);

    char cmd[1200];
    static const char *const files[] = { "a/m1.safetensors", "a/m1.pth", "a/m2.pth", "b/m1.safetensors",
                                         "b/m3.safetensors", "b/not a name.safetensors", "b/m4.txt" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(cmd, sizeof(cmd), "%s/%s", root, files[i]);
        unlink(cmd);
    }
    snprintf(cmd, sizeof(cmd), "%s/dir.safetensors", b);
    rmdir(cmd);
    rmdir(a);
    rmdir(b);
    rmdir(e);
    rmdir(root);
    return test_finish();
}
