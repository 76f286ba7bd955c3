#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "error.h"

static int refuse(const char *prog, const char *opt, const char *s, const char *why)
{
    fprintf(stderr, "%s: %s: '%s' %s\n", prog, opt, s ? s : "", why);
    return -1;
}

int cli_int64(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s)
        return refuse(prog, opt, s, "is not a number");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return refuse(prog, opt, s, "is not an integer");
    if (errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is out of range [%" PRId64 ", %" PRId64 "]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out)
{
    int64_t v;
    if (cli_int64(prog, opt, s, lo, hi, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi, double *out)
{
    if (!s || !*s)
        return refuse(prog, opt, s, "is not a number");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end)
        return refuse(prog, opt, s, "is not a number");
    if (!isfinite(v) || errno == ERANGE)
        return refuse(prog, opt, s, "is not a finite number");
    if (v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is out of range [%g, %g]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_choice(const char *prog, const char *opt, const char *s, const char *const *names, int *out)
{
    for (int i = 0; names[i]; i++)
        if (s && !strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "%s: %s: '%s' is not one of", prog, opt, s ? s : "");
    for (int i = 0; names[i]; i++)
        fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fputc('\n', stderr);
    return -1;
}

int cli_size(const char *prog, const char *opt, const char *s, int max, int *w, int *h)
{
    long v[2];
    const char *p = s;
    for (int i = 0; i < 2; i++) {
        char *end;
        errno = 0;
        v[i] = p && *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : -1;
        if (v[i] < 1 || v[i] > max || errno == ERANGE || *end != (i ? 0 : 'x')) {
            fprintf(stderr, "%s: %s: '%s' is not a size WxH with sides 1..%d\n", prog, opt, s ? s : "", max);
            return -1;
        }
        p = end + 1;
    }
    *w = (int)v[0];
    *h = (int)v[1];
    return 0;
}

int cli_engine_option(const char *prog, int opt, const char *arg, CatanetConfig *cfg)
{
    static const char *const devices[] = { "cpu", "cuda", "auto", NULL }, *const precisions[] = { "auto", "fp32", "fp16", NULL };
    int k;
    switch (opt) {
    case 'd':
        if (cli_choice(prog, "-d", arg, devices, &k) < 0)
            return -1;
        cfg->device = k == 1 ? CATANET_DEVICE_CUDA : k == 2 ? CATANET_DEVICE_AUTO : CATANET_DEVICE_CPU;
        return 1;
    case 'p':
        if (cli_choice(prog, "-p", arg, precisions, &k) < 0)
            return -1;
        cfg->precision = k == 1 ? CATANET_PRECISION_FP32 : k == 2 ? CATANET_PRECISION_FP16 : CATANET_PRECISION_AUTO;
        return 1;
    case 't':
        return cli_int(prog, "-t", arg, 0, 1024, &cfg->threads) < 0 ? -1 : 1;
    case CLI_OPT_TILE:
        return cli_int(prog, "--tile", arg, 0, 32768, &cfg->tile) < 0 ? -1 : 1;
    }
    return 0;
}

typedef struct ListState {
    const char *prog;
    int n, bad;
} ListState;

static int list_one(void *opaque, const char *name, const char *path)
{
    ListState *st = opaque;
    CatanetModelInfo info;
    char err[1024];
    if (!st->n++)
        printf("%-24s %-5s %10s  %s\n", "NAME", "SCALE", "PARAMS", "PATH");
    if (catanet_model_probe(path, &info, err, sizeof(err)) < 0) {
        /* the path is printed by the error message itself */
        printf("%-24s %-5s %10s  %s: unreadable\n", name, "?", "?", path);
        fprintf(stderr, "%s: %s\n", st->prog, err);
        st->bad++;
    } else {
        printf("%-24s x%-4d %10lld  %s\n", name, info.upscale, (long long)info.num_params, path);
    }
    return 0;
}

int cli_list_models(const char *prog)
{
    ListState st = { prog, 0, 0 };
    catanet_model_list(list_one, &st);
    if (!st.n) {
        const char *env = getenv("CATANET_MODEL_PATH");
        fprintf(stderr, "%s: no models found in CATANET_MODEL_PATH (%s) nor in %s\n", prog,
                env && *env ? env : "not set", catanet_model_dir());
    }
    return st.bad ? 1 : 0;
}

void cli_version(const char *prog)
{
    printf("%s (catanet) %s\n", prog, catanet_version());
}

int cli_write_atomic(const char *path, CliWriteFn write, void *opaque, char *err, size_t es)
{
    /* past a file-size limit (ulimit -f) write() should fail with EFBIG, not kill us before the cleanup */
    signal(SIGXFSZ, SIG_IGN);
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    /* the same folder, so rename is atomic; the extension kept last, as the writers choose by it */
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - path) : n;
    snprintf(tmp, n + 16, "%.*s.tmp-XXXXXX%s", (int)stem, path, path + stem);
    int fd = mkstemps(tmp, (int)(n - stem));
    if (fd < 0) {
        free(tmp);
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot create a temporary file beside '%s'", path);
    }
    mode_t um = umask(0); /* mkstemps makes it 0600; give it the mode a plain create would */
    umask(um);
    fchmod(fd, 0666 & ~um);
    close(fd);
    int ret = write(tmp, opaque, err, es);
    if (ret >= 0 && rename(tmp, path) != 0)
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot rename '%s' to '%s'", tmp, path);
    if (ret < 0)
        unlink(tmp);
    free(tmp);
    return ret;
}
