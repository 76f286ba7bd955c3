/*
 * catanet-convert: an official CATANet PyTorch checkpoint (x2.pth, ... : torch.save zip) or a
 * safetensors file -> a validated safetensors file with the official tensor names and order, the
 * architecture in metadata (catanet_arch) and the source file name (source).
 * With an OUT ending in .pth it writes the official checkpoint format instead ({'params': ...}).
 *
 *   catanet-convert [-q] IN OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "pth.h"
#include "safetensors.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: catanet-convert [-q] IN OUT\n"
            "  IN   official CATANet checkpoint (.pth, torch.save zip; {'params': state_dict}) or .safetensors\n"
            "  OUT  .safetensors (official names + catanet_arch metadata), or .pth (official checkpoint format)\n"
            "  -q   no summary line\n");
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

int main(int argc, char **argv)
{
    int quiet = 0, a = 1;
    if (a < argc && !strcmp(argv[a], "-q")) {
        quiet = 1;
        a++;
    }
    if (argc - a != 2) {
        usage();
        return 2;
    }
    const char *in = argv[a], *out = argv[a + 1];
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
    if (ends_with(out, ".pth")) {
        ret = write_pth(m, out, err, sizeof(err));
    } else {
        const char *keys[] = { "source", "format" }, *vals[] = { base, "catanet" };
        ret = catanet_model_save(m, out, keys, vals, 2, err, sizeof(err));
    }
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
