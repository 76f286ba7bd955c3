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

/* a hand-written pickle in the shape torch writes for an OrderedDict state dict (memo, BUILD with
 * _metadata), with a transposed view, a view at an offset and half/bool storages */
typedef struct Pk {
    uint8_t b[8192];
    size_t n;
} Pk;

static void pk_bytes(Pk *p, const void *d, size_t n)
{
    if (p->n + n <= sizeof(p->b)) {
        memcpy(p->b + p->n, d, n);
        p->n += n;
    }
}

static void pk_op(Pk *p, int op)
{
    uint8_t c = (uint8_t)op;
    pk_bytes(p, &c, 1);
}

static void pk_str(Pk *p, const char *s)
{
    uint8_t n = (uint8_t)strlen(s);
    pk_op(p, 0x8c); /* SHORT_BINUNICODE */
    pk_op(p, n);
    pk_bytes(p, s, n);
    pk_op(p, 0x94); /* MEMOIZE */
}

static void pk_int(Pk *p, int v)
{
    pk_op(p, 'K');
    pk_op(p, v);
}

static void pk_global(Pk *p, const char *g)
{
    pk_op(p, 'c');
    pk_bytes(p, g, strlen(g));
}

static void pk_tensor(Pk *p, const char *name, const char *cls, const char *key, int numel, int offset, int nd,
                      const int *shape, const int *stride)
{
    pk_str(p, name);
    pk_global(p, "torch._utils\n_rebuild_tensor_v2\n");
    pk_op(p, '(');
    pk_op(p, '(');
    pk_str(p, "storage");
    pk_global(p, cls);
    pk_str(p, key);
    pk_str(p, "cpu");
    pk_int(p, numel);
    pk_op(p, 't');
    pk_op(p, 'Q');
    pk_int(p, offset);
    pk_op(p, '(');
    for (int i = 0; i < nd; i++)
        pk_int(p, shape[i]);
    pk_op(p, 't');
    pk_op(p, '(');
    for (int i = 0; i < nd; i++)
        pk_int(p, stride[i]);
    pk_op(p, 't');
    pk_op(p, 0x89);
    pk_global(p, "collections\nOrderedDict\n");
    pk_op(p, ')');
    pk_op(p, 'R');
    pk_op(p, 't');
    pk_op(p, 'R');
}

static int views_pth(const char *path, char *err, size_t es)
{
    static float w[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
    static const uint16_t half[2] = { 0x3c00, 0x4000 }, bf[2] = { 0x3f80, 0xc000 };
    static const uint8_t yes = 1;
    static const int s34[2] = { 3, 4 }, st34[2] = { 4, 1 }, s43[2] = { 4, 3 }, st43[2] = { 1, 4 }, s2[1] = { 2 },
                     one[1] = { 1 };
    Pk pk = { .n = 0 };
    pk_op(&pk, 0x80);
    pk_op(&pk, 4);
    pk_op(&pk, 0x95); /* FRAME */
    pk_bytes(&pk, "\0\0\0\0\0\0\0\0", 8);
    pk_op(&pk, '}');
    pk_str(&pk, "params_ema");
    pk_global(&pk, "collections\nOrderedDict\n");
    pk_op(&pk, ')');
    pk_op(&pk, 'R');
    pk_op(&pk, '(');
    pk_tensor(&pk, "w", "torch\nFloatStorage\n", "0", 12, 0, 2, s34, st34);
    pk_tensor(&pk, "wt", "torch\nFloatStorage\n", "0", 12, 0, 2, s43, st43);
    pk_tensor(&pk, "tail", "torch\nFloatStorage\n", "0", 12, 10, 1, s2, one);
    pk_tensor(&pk, "flag", "torch\nBoolStorage\n", "1", 1, 0, 0, NULL, NULL);
    pk_tensor(&pk, "h", "torch\nHalfStorage\n", "2", 2, 0, 1, s2, one);
    pk_tensor(&pk, "b", "torch\nBFloat16Storage\n", "3", 2, 0, 1, s2, one);
    pk_op(&pk, 'u');
    pk_op(&pk, '}');
    pk_str(&pk, "_metadata");
    pk_global(&pk, "collections\nOrderedDict\n");
    pk_op(&pk, ')');
    pk_op(&pk, 'R');
    pk_str(&pk, "");
    pk_op(&pk, '}');
    pk_str(&pk, "version");
    pk_int(&pk, 1);
    pk_op(&pk, 's');
    pk_op(&pk, 's');
    pk_op(&pk, 's');
    pk_op(&pk, 'b');
    pk_op(&pk, 's');
    pk_op(&pk, '.');
    CatanetZipEntry e[7] = {
        { "a/data.pkl", 10, pk.b, pk.n },
        { "a/version", 9, (const uint8_t *)"3\n", 2 },
        { "a/byteorder", 11, (const uint8_t *)"little", 6 },
        { "a/data/0", 8, (const uint8_t *)w, sizeof(w) },
        { "a/data/1", 8, &yes, 1 },
        { "a/data/2", 8, (const uint8_t *)half, sizeof(half) },
        { "a/data/3", 8, (const uint8_t *)bf, sizeof(bf) },
    };
    return catanet_zip_write(path, e, 7, err, es);
}

static int mixed_safetensors(const char *path, char *err, size_t es)
{
    static const float f32[6] = { 1.5f, -2.0f, 0.0f, 1e-30f, 3.25f, -0.0f };
    static const uint16_t f16[3] = { 0x3c00, 0xc000, 0x7bff }, bf[2] = { 0x3f80, 0x0001 };
    static const uint8_t b[1] = { 1 };
    static const int64_t i64[2] = { -5, 7 };
    static const double f64[2] = { 0.1, -1e300 };
    CatanetStEntry e[] = {
        { "a.weight", CATANET_DT_F32, 2, { 2, 3 }, f32 },   { "h", CATANET_DT_F16, 1, { 3 }, f16 },
        { "flag", CATANET_DT_BOOL, 0, { 0 }, b },           { "ids", CATANET_DT_I64, 1, { 2 }, i64 },
        { "empty", CATANET_DT_F32, 2, { 0, 7 }, NULL },     { "d", CATANET_DT_F64, 1, { 2 }, f64 },
        { "bf", CATANET_DT_BF16, 1, { 2 }, bf },
    };
    const char *mk[] = { "k1" }, *mv[] = { "v1" };
    return catanet_st_write(path, e, 7, mk, mv, 1, err, es);
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
    snprintf(p, sizeof(p), "%s/views.pth", argv[1]);
    bad |= views_pth(p, err, sizeof(err)) < 0;
    snprintf(p, sizeof(p), "%s/mixed.safetensors", argv[1]);
    bad |= mixed_safetensors(p, err, sizeof(err)) < 0;
    {
        CatanetModelInfo info;
        catanet_arch_default(&info, 4);
        char *arch = catanet_arch_to_json(&info);
        snprintf(p, sizeof(p), "%s/arch.json", argv[1]);
        FILE *a = fopen(p, "w");
        bad |= !arch || !a || fputs(arch, a) < 0;
        if (a)
            fclose(a);
        free(arch);
    }
    /* small raw headers next to the error branches (the fuzzer mutates from there) */
    static const char *const raw[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F16\",\"shape\":[2],"
        "\"data_offsets\":[8,12]},\"__metadata__\":{\"k\":\"v\"}}",
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]},\"c\":{\"dtype\":\"BOOL\","
        "\"shape\":[],\"data_offsets\":[4,5]}}",
        "{\"__metadata__\":{\"catanet_arch\":\"{\\\"dim\\\":4,\\\"qk_dim\\\":4,\\\"heads\\\":2,\\\"mlp_dim\\\":3,"
        "\\\"upscale\\\":1,\\\"groups\\\":[]}\"}}",
    };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        size_t hl = strlen(raw[i]);
        uint8_t len8[8], zeros[16] = { 0 };
        for (int k = 0; k < 8; k++)
            len8[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        snprintf(p, sizeof(p), "%s/raw%zu.safetensors", argv[1], i);
        FILE *r = fopen(p, "wb");
        bad |= !r || fwrite(len8, 1, 8, r) != 8 || fwrite(raw[i], 1, hl, r) != hl || fwrite(zeros, 1, 16, r) != 16;
        if (r)
            fclose(r);
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
