/*
 * make_seeds.c: writes the fuzz seed corpus into a folder: small models (with and without
 * catanet_arch metadata) as safetensors and .pth, and a .pth holding the x2 reference's own
 * data.pkl (the memo-heavy pickle torch writes) with a few of its storages.
 *   make_seeds OUTDIR REFERENCE.pth
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "pth.h"
#include "safetensors.h"

static CatanetModel *small_model(int upscale, int groups, int heads)
{
    CatanetModelInfo info;
    memset(&info, 0, sizeof(info));
    info.dim = 4;
    info.qk_dim = 4;
    info.heads = heads;
    info.mlp_dim = 3;
    info.upscale = upscale;
    info.in_chans = 3;
    info.num_groups = groups;
    for (int i = 0; i < groups; i++)
        info.groups[i] = (CatanetGroupInfo){ 2 + i, 4096 / (2 + i), 16 + 4 * (i % 4) };
    CatanetModel *m;
    char err[256];
    if (catanet_model_create(&m, &info, err, sizeof(err)) < 0) {
        fprintf(stderr, "make_seeds: %s\n", err);
        return NULL;
    }
    uint32_t s = 1;
    for (size_t i = 0; i < m->arena_floats; i++) {
        s = s * 1664525u + 1013904223u;
        m->arena[i] = (float)(s >> 8) / (float)(1 << 24) - 0.5f;
    }
    return m;
}

static int entries(const CatanetModel *m, CatanetStEntry *e, int cap)
{
    int k = 0;
    static const uint8_t yes = 1;
    static char names[64][CATANET_NAME_MAX];
    for (int i = 0; i < m->n_tensors && k + 1 < cap; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        e[k] = (CatanetStEntry){ d->name, CATANET_DT_F32, d->ndim, { 0 }, m->arena + d->offset };
        for (int j = 0; j < d->ndim; j++)
            e[k].shape[j] = d->shape[j];
        k++;
        int g;
        if (d->is_buffer && sscanf(d->name, "blocks.%d.0.means", &g) == 1 && g >= 0 && g < 64) {
            snprintf(names[g], CATANET_NAME_MAX, "blocks.%d.0.initted", g);
            e[k++] = (CatanetStEntry){ names[g], CATANET_DT_BOOL, 0, { 0 }, &yes };
        }
    }
    return k;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds OUTDIR REFERENCE.pth\n");
        return 2;
    }
    char p[1024], err[512];
    int bad = 0;
    static const struct {
        int upscale, groups, heads;
    } cfg[] = { { 2, 1, 4 }, { 4, 2, 2 }, { 3, 1, 1 }, { 1, 1, 4 } };
    for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
        CatanetModel *m = small_model(cfg[c].upscale, cfg[c].groups, cfg[c].heads);
        if (!m)
            return 1;
        CatanetStEntry e[256];
        int n = entries(m, e, 256);
        snprintf(p, sizeof(p), "%s/model%zu_arch.safetensors", argv[1], c);
        bad |= catanet_model_save(m, p, NULL, NULL, 0, err, sizeof(err)) < 0;
        snprintf(p, sizeof(p), "%s/model%zu_noarch.safetensors", argv[1], c);
        bad |= catanet_st_write(p, e, n, NULL, NULL, 0, err, sizeof(err)) < 0;
        snprintf(p, sizeof(p), "%s/model%zu.pth", argv[1], c);
        bad |= catanet_pth_write(p, "archive", e, n, err, sizeof(err)) < 0;
        catanet_model_free(m);
    }
    /* the reference pickle with its first storages */
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "make_seeds: cannot open %s\n", argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz)
        return 1;
    fclose(f);
    CatanetZipEntry *z;
    int nz;
    if (catanet_zip_read(&z, &nz, buf, (size_t)sz, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "make_seeds: %s\n", err);
        return 1;
    }
    CatanetZipEntry keep[8];
    int nk = 0;
    for (int i = 0; i < nz && nk < 8; i++) {
        const char *tail = z[i].name + z[i].name_len;
        int is_pkl = z[i].name_len >= 8 && !memcmp(tail - 8, "data.pkl", 8);
        int is_ver = z[i].name_len >= 7 && !memcmp(tail - 7, "version", 7);
        int is_small = z[i].name_len >= 7 && !memcmp(tail - 7, "/data/1", 7);
        int is_first = z[i].name_len >= 7 && !memcmp(tail - 7, "/data/0", 7);
        if (is_pkl || is_ver || is_small || is_first)
            keep[nk++] = z[i];
    }
    snprintf(p, sizeof(p), "%s/reference_pickle.pth", argv[1]);
    bad |= catanet_zip_write(p, keep, nk, err, sizeof(err)) < 0;
    free(z);
    free(buf);
    if (bad)
        fprintf(stderr, "make_seeds: %s\n", err);
    return bad;
}
