/*
 * catanet-convert: an official CATANet PyTorch checkpoint (x2.pth, ... : torch.save zip) or a
 * safetensors file -> a validated safetensors file with the official tensor names and order, the
 * architecture in metadata (catanet_arch) and the source file name (source).
 * With an OUT ending in .pth it writes the official checkpoint format instead ({'params': ...}).
 *
 *   catanet-convert [-q] IN OUT
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "pth.h"
#include "safetensors.h"

#define PROG "catanet-convert"

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: catanet-convert [-q] IN OUT\n"
            "  IN   official CATANet checkpoint (.pth, torch.save zip; {'params': state_dict}) or .safetensors\n"
            "  OUT  .safetensors (official names + catanet_arch metadata), or .pth (official checkpoint format)\n"
            "  -q   no summary line\n"
            "  --help, --version\n"
            "OUT is written whole or not at all (a temporary file beside it, renamed at the end).\n");
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* strict, as load_state_dict(strict=True): a tensor the architecture has no place for is an error */
static int check_unexpected(const CatanetSt *st, const CatanetModel *m, char *err, size_t es)
{
    for (int i = 0; i < st->n; i++) {
        const char *name = st->tensors[i].name;
        if (catanet_model_find(m, name))
            continue;
        int g, len = 0;
        if (sscanf(name, "blocks.%d.0.initted%n", &g, &len) == 1 && len == (int)strlen(name) && g >= 0 &&
            g < m->info.num_groups) {
            char canon[64];
            snprintf(canon, sizeof(canon), "blocks.%d.0.initted", g);
            if (!strcmp(canon, name))
                continue;
        }
        snprintf(err, es, "unexpected tensor '%.100s': not part of the architecture inferred from the file "
                 "(%d residual groups, upscale %d)", name, m->info.num_groups, m->info.upscale);
        return -1;
    }
    return 0;
}

/* the model's tensors in the official order, initted after each TAB's means (as catanet_model_save) */
static int write_pth(const CatanetModel *m, const char *path, char *err, size_t es)
{
    int n = m->n_tensors + m->info.num_groups, k = 0;
    CatanetStEntry *e = calloc(n, sizeof(*e));
    char (*bool_names)[CATANET_NAME_MAX] = calloc(m->info.num_groups + 1, CATANET_NAME_MAX);
    if (!e || !bool_names) {
        free(e);
        free(bool_names);
        snprintf(err, es, "out of memory");
        return -1;
    }
    k = catanet_model_entries(m, e, bool_names);
    int ret = catanet_pth_write(path, "archive", e, k, err, es);
    free(e);
    free(bool_names);
    return ret;
}

typedef struct Output {
    const CatanetModel *m;
    const char *base;
    int pth;
} Output;

static int write_model(const char *tmp, void *opaque, char *err, size_t es)
{
    const Output *o = opaque;
    if (o->pth)
        return write_pth(o->m, tmp, err, es);
    const char *keys[] = { "source", "format" }, *vals[] = { o->base, "catanet" };
    return catanet_model_save(o->m, tmp, keys, vals, 2, err, es);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = { { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': quiet = 1; break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        default: return usage(stderr, 2);
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, PROG ": needs IN and OUT\n");
        return usage(stderr, 2);
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    char err[1024];
    uint8_t magic[4] = { 0 };
    FILE *f = fopen(in, "rb");
    if (!f) {
        fprintf(stderr, "catanet-convert: error: cannot open '%s'\n", in);
        return 1;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    CatanetSt *st = NULL;
    CatanetModel *m = NULL;
    int is_pth = catanet_pth_is_zip(magic, got), ret;
    ret = is_pth ? catanet_pth_open(&st, in, err, sizeof(err)) : catanet_st_open(&st, in, err, sizeof(err));
    if (ret < 0)
        goto fail;
    ret = catanet_model_from_st(&m, st, in, err, sizeof(err));
    if (ret < 0)
        goto fail;
    char sub[512];
    if ((ret = check_unexpected(st, m, sub, sizeof(sub))) < 0) {
        snprintf(err, sizeof(err), "'%s': %s", in, sub);
        goto fail;
    }
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    Output o = { m, base, ends_with(out, ".pth") };
    ret = cli_write_atomic(out, write_model, &o, err, sizeof(err));
    if (ret < 0)
        goto fail;
    if (!quiet)
        printf("%s (%s) -> %s: %d tensors, %lld parameters, x%d, %d residual groups, dim %d\n", in,
               is_pth ? "PyTorch checkpoint" : "safetensors", out, m->n_tensors + m->info.num_groups,
               (long long)m->info.num_params, m->info.upscale, m->info.num_groups, m->info.dim);
    catanet_model_free(m);
    catanet_st_close(st);
    return 0;
fail:
    fprintf(stderr, "catanet-convert: error: %s\n", err);
    catanet_model_free(m);
    catanet_st_close(st);
    return 1;
}
