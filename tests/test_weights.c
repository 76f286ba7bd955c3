/*
 * test_weights.c: the weight readers and writers.
 *   - each reference .pth converts (library and catanet-convert) to tensors equal to the reference
 *     .safetensors (names, order, shapes, bytes), which catanet_model_load accepts;
 *   - safetensors and .pth writers round-trip; hand-made checkpoints in the shapes torch writes
 *     (OrderedDict + BUILD _metadata, params_ema, bare state dict, strided and shared storages);
 *   - bad input gets the right error code and a clear message, never a crash or an out-of-bounds read
 *     (every truncation length of small files: each truncated copy is an exact-size malloc, so the
 *     sanitizer build catches any read past the end).
 * Bad files are made here, in a temp folder, from the reference files.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "pth.h"
#include "safetensors.h"
#include "testutil.h"

static char tmpdir[256];
static char tool[1024];

static const char *tpath(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static int write_all(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* the error code and a key phrase of the message */
static void expect_err(int ret, const char *err, int code, const char *phrase, const char *what)
{
    test_check(ret == code && strstr(err, phrase) != NULL, "%s: got %d '%s' (want %d, '%s')", what, ret, err, code,
               phrase);
}

/* parse a buffer (an exact-size copy) as safetensors and, when that works, as a model */
static int parse_st_model(const uint8_t *b, size_t n, char *err, size_t es)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    CatanetSt *st;
    int ret = catanet_st_parse(&st, copy, n, err, es);
    if (ret == 0) {
        CatanetModel *m;
        ret = catanet_model_from_st(&m, st, "buffer", err, es);
        catanet_model_free(m);
        catanet_st_close(st);
    }
    free(copy);
    return ret;
}

static int parse_pth(const uint8_t *b, size_t n, unsigned flags, char *err, size_t es)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    CatanetSt *st;
    int ret = catanet_pth_parse(&st, copy, n, flags, err, es);
    catanet_st_close(st);
    free(copy);
    return ret;
}

/* ---- safetensors surgery: header as JSON + data ---- */

typedef struct StEdit {
    json_t *hdr;
    uint8_t *data;
    size_t dn;
} StEdit;

static int st_edit_load(StEdit *e, const char *path)
{
    size_t n;
    uint8_t *b = read_all(path, &n);
    memset(e, 0, sizeof(*e));
    if (!b || n < 8)
        return -1;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | b[i];
    e->hdr = json_loadb((const char *)b + 8, (size_t)hl, 0, NULL);
    e->dn = n - 8 - (size_t)hl;
    e->data = malloc(e->dn);
    memcpy(e->data, b + 8 + hl, e->dn);
    free(b);
    return e->hdr ? 0 : -1;
}

static void st_edit_free(StEdit *e)
{
    json_decref(e->hdr);
    free(e->data);
}

/* raw header text + data into a file */
static int st_write_raw(const char *path, const char *hdr, size_t hl, const uint8_t *data, size_t dn)
{
    size_t n = 8 + hl + dn;
    uint8_t *b = malloc(n);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    memcpy(b + 8 + hl, data, dn);
    int ret = write_all(path, b, n);
    free(b);
    return ret;
}

static int st_edit_save(const StEdit *e, const char *path)
{
    char *h = json_dumps(e->hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int ret = st_write_raw(path, h, strlen(h), e->data, e->dn);
    free(h);
    return ret;
}

/* a tensor's bytes inside the edit's data */
static uint8_t *st_edit_bytes(StEdit *e, const char *name)
{
    json_t *o = json_array_get(json_object_get(json_object_get(e->hdr, name), "data_offsets"), 0);
    return o ? e->data + json_integer_value(o) : NULL;
}

/* replaces a tensor by fresh zeroed data of dtype/shape appended at the end */
static void st_edit_replace(StEdit *e, const char *name, const char *dtype, int nd, const int64_t *shape, size_t esz)
{
    size_t numel = 1;
    json_t *js = json_array();
    for (int i = 0; i < nd; i++) {
        numel *= (size_t)shape[i];
        json_array_append_new(js, json_integer(shape[i]));
    }
    size_t nb = numel * esz;
    e->data = realloc(e->data, e->dn + nb);
    memset(e->data + e->dn, 0, nb);
    json_object_set_new(e->hdr, name, json_pack("{s:s,s:o,s:[I,I]}", "dtype", dtype, "shape", js, "data_offsets",
                                                (json_int_t)e->dn, (json_int_t)(e->dn + nb)));
    e->dn += nb;
}

/* load an edited file through the model loader: the code, the message */
static int load_edit(const StEdit *e, const char *name, char *err, size_t es)
{
    char p[512];
    st_edit_save(e, tpath(p, sizeof(p), name));
    CatanetModel *m;
    int ret = catanet_model_load(&m, p, err, es);
    catanet_model_free(m);
    return ret;
}

/* ---- tensor comparison ---- */

/* a 0-dim tensor and a [1] tensor hold the same single element (the reference files store the
 * 0-dim `initted` buffers as [1]; PyTorch's state dict has them 0-dim) */
static int same_shape(const CatanetStTensor *a, const CatanetStTensor *b)
{
    if (a->ndim != b->ndim)
        return a->numel == 1 && b->numel == 1 && a->ndim + b->ndim == 1 && a->dtype == CATANET_DT_BOOL;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/* same names in the same order, same dtypes, shapes and bytes; returns the number of differences */
static int compare_st(const CatanetSt *a, const CatanetSt *b, char *first, size_t fn)
{
    int bad = a->n != b->n;
    if (bad)
        snprintf(first, fn, "%d vs %d tensors", a->n, b->n);
    for (int i = 0; i < a->n && i < b->n; i++) {
        const CatanetStTensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) || x->dtype != y->dtype || !same_shape(x, y) || x->nbytes != y->nbytes ||
            memcmp(x->data, y->data, x->nbytes)) {
            if (!bad)
                snprintf(first, fn, "tensor %d: '%s' vs '%s'", i, x->name, y->name);
            bad++;
        }
    }
    return bad;
}

/* ---- pickle and zip crafting ---- */

typedef struct Pk {
    uint8_t b[1 << 16];
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
    uint32_t n = (uint32_t)strlen(s);
    uint8_t h[5] = { 'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24) };
    pk_bytes(p, h, 5);
    pk_bytes(p, s, n);
}

static void pk_int(Pk *p, int64_t v)
{
    uint8_t h[5] = { 'J', (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    pk_bytes(p, h, 5);
}

static void pk_global(Pk *p, const char *mod, const char *name)
{
    pk_op(p, 'c');
    pk_bytes(p, mod, strlen(mod));
    pk_op(p, '\n');
    pk_bytes(p, name, strlen(name));
    pk_op(p, '\n');
}

static void pk_odict(Pk *p)
{
    pk_global(p, "collections", "OrderedDict");
    pk_op(p, ')');
    pk_op(p, 'R');
}

/* name: _rebuild_tensor_v2((storage, cls, key, 'cpu', numel), offset, shape, stride, False, OrderedDict()) */
static void pk_tensor(Pk *p, const char *name, const char *cls, const char *key, int64_t numel, int64_t offset,
                      int nd, const int64_t *shape, const int64_t *stride)
{
    pk_str(p, name);
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    pk_op(p, '(');
    pk_op(p, '(');
    pk_str(p, "storage");
    pk_global(p, "torch", cls);
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
    pk_odict(p);
    pk_op(p, 't');
    pk_op(p, 'R');
}

/* a checkpoint: archive/data.pkl = pk, plus records data/<keys[i]> */
static int make_pth(const char *path, const Pk *pk, int nrec, const char *const *keys, const void *const *data,
                    const size_t *sizes, const char *byteorder)
{
    CatanetZipEntry e[16];
    char names[16][64];
    int n = 0;
    snprintf(names[n], 64, "ckpt/data.pkl");
    e[n] = (CatanetZipEntry){ names[n], strlen(names[n]), pk->b, pk->n };
    n++;
    snprintf(names[n], 64, "ckpt/version");
    e[n] = (CatanetZipEntry){ names[n], strlen(names[n]), (const uint8_t *)"3\n", 2 };
    n++;
    if (byteorder) {
        snprintf(names[n], 64, "ckpt/byteorder");
        e[n] = (CatanetZipEntry){ names[n], strlen(names[n]), (const uint8_t *)byteorder, strlen(byteorder) };
        n++;
    }
    for (int i = 0; i < nrec && n < 16; i++, n++) {
        snprintf(names[n], 64, "ckpt/data/%s", keys[i]);
        e[n] = (CatanetZipEntry){ names[n], strlen(names[n]), data[i], sizes[i] };
    }
    char err[256];
    return catanet_zip_write(path, e, n, err, sizeof(err));
}

/* the offsets of an entry's local and central headers in a zip buffer (-1 when absent) */
static void zip_locate(const uint8_t *b, size_t n, const char *name, long *local, long *central)
{
    size_t nl = strlen(name);
    *local = *central = -1;
    for (size_t i = 0; i + 46 + nl <= n; i++) {
        if (b[i] != 'P' || b[i + 1] != 'K')
            continue;
        if (b[i + 2] == 1 && b[i + 3] == 2 && (size_t)(b[i + 28] | b[i + 29] << 8) == nl && !memcmp(b + i + 46, name, nl))
            *central = (long)i;
        if (b[i + 2] == 3 && b[i + 3] == 4 && (size_t)(b[i + 26] | b[i + 27] << 8) == nl && !memcmp(b + i + 30, name, nl))
            *local = (long)i;
    }
}

/* ---- a tiny model, for small files ---- */

static CatanetModel *tiny_model(void)
{
    CatanetModelInfo info;
    memset(&info, 0, sizeof(info));
    info.dim = 4;
    info.qk_dim = 4;
    info.heads = 2;
    info.mlp_dim = 3;
    info.upscale = 2;
    info.in_chans = 3;
    info.num_groups = 1;
    info.groups[0] = (CatanetGroupInfo){ 2, 8, 4 };
    CatanetModel *m;
    char err[256];
    if (catanet_model_create(&m, &info, err, sizeof(err)) < 0)
        return NULL;
    Rng r = { 12345 };
    for (int i = 0; i < m->n_tensors; i++)
        fill_normal(&r, m->arena + m->tensors[i].offset, m->tensors[i].numel, 0.1f);
    return m;
}

/* ================================================================================================ */

static void test_reference_conversion(void)
{
    static const char *const names[] = { "x2_random", "x3_random", "x4_random", "x2_trained" };
    static const int scales[] = { 2, 3, 4, 2 };
    for (int k = 0; k < 4; k++) {
        char pth[512], ref[512], out[512], f[64], err[512], first[256] = "";
        snprintf(f, sizeof(f), "weights_%s.pth", names[k]);
        ref_path(pth, sizeof(pth), f);
        snprintf(f, sizeof(f), "weights_%s.safetensors", names[k]);
        ref_path(ref, sizeof(ref), f);
        CatanetSt *a = NULL, *b = NULL, *c = NULL;
        int ret = catanet_pth_open(&a, pth, err, sizeof(err));
        test_check(ret == 0, "%s: .pth parses (%s)", names[k], ret ? err : "ok");
        ret = catanet_st_open(&b, ref, err, sizeof(err));
        test_check(ret == 0, "%s: reference safetensors opens (%s)", names[k], ret ? err : "ok");
        if (a && b) {
            int bad = compare_st(a, b, first, sizeof(first));
            test_check(bad == 0, "%s: %d tensors of the .pth equal the reference (names, order, shapes, bytes) %s",
                       names[k], a->n, first);
        }
        /* the tool: official order, catanet_arch, source; accepted by the model loader */
        snprintf(f, sizeof(f), "conv_%s.safetensors", names[k]);
        tpath(out, sizeof(out), f);
        char cmd[8192];
        snprintf(cmd, sizeof(cmd), "'%s' -q '%s' '%s'", tool, pth, out);
        ret = system(cmd);
        test_check(ret == 0, "%s: catanet-convert exits 0", names[k]);
        ret = catanet_st_open(&c, out, err, sizeof(err));
        test_check(ret == 0, "%s: converted file opens (%s)", names[k], ret ? err : "ok");
        if (c && b) {
            first[0] = 0;
            int bad = compare_st(c, b, first, sizeof(first));
            test_check(bad == 0, "%s: converted file equals the reference %s", names[k], first);
            const char *src = catanet_st_meta(c, "source"), *arch = catanet_st_meta(c, CATANET_ARCH_KEY);
            test_check(src && !strcmp(src, strrchr(pth, '/') + 1), "%s: source metadata '%s'",
                       names[k], src ? src : "(none)");
            CatanetModelInfo want, got;
            catanet_arch_default(&want, scales[k]);
            test_check(arch && catanet_arch_from_json(&got, arch, err, sizeof(err)) == 0 && got.dim == want.dim &&
                       got.upscale == want.upscale && got.num_groups == want.num_groups &&
                       !memcmp(got.groups, want.groups, sizeof(want.groups)), "%s: catanet_arch metadata %s",
                       names[k], arch ? arch : "(none)");
            for (int i = 0; i < c->n; i++)
                if (strstr(c->tensors[i].name, "initted") && (c->tensors[i].ndim != 0 || c->tensors[i].dtype != CATANET_DT_BOOL)) {
                    test_check(0, "%s: %s is not a 0-dim BOOL", names[k], c->tensors[i].name);
                    break;
                }
        }
        CatanetModel *m;
        ret = catanet_model_load(&m, out, err, sizeof(err));
        test_check(ret == 0 && m->info.upscale == scales[k], "%s: catanet_model_load accepts the converted file (%s)",
                   names[k], ret ? err : "ok");
        catanet_model_free(m);
        /* safetensors input: re-validated and rewritten; .pth output: read back equal */
        char out2[512], out3[512], out4[512];
        tpath(out2, sizeof(out2), "rewrite.safetensors");
        tpath(out3, sizeof(out3), "export.pth");
        tpath(out4, sizeof(out4), "reimport.safetensors");
        snprintf(cmd, sizeof(cmd), "'%s' -q '%s' '%s' && '%s' -q '%s' '%s' && '%s' -q '%s' '%s'", tool, ref, out2,
                 tool, out2, out3, tool, out3, out4);
        ret = system(cmd);
        CatanetSt *d = NULL;
        if (ret == 0 && catanet_st_open(&d, out4, err, sizeof(err)) == 0 && b) {
            first[0] = 0;
            ret = compare_st(d, b, first, sizeof(first));
        } else
            ret = -1;
        test_check(ret == 0, "%s: safetensors -> safetensors -> .pth -> safetensors keeps every tensor %s", names[k], first);
        catanet_st_close(d);
        /* the same archive read through its zip64 end record (torch writes one; here the classic end
         * record holds the 0xffff.. placeholders, as for an archive over 4 GiB) */
        size_t zn;
        uint8_t *z = read_all(pth, &zn);
        if (z && zn > 22 && b) {
            memset(z + zn - 22 + 8, 0xff, 12); /* entries on disk, entries, directory size, offset */
            CatanetSt *z64 = NULL;
            ret = catanet_pth_parse(&z64, z, zn, 0, err, sizeof(err));
            first[0] = 0;
            test_check(ret == 0 && compare_st(z64, b, first, sizeof(first)) == 0,
                       "%s: read through the zip64 end-of-central-directory record (%s) %s", names[k],
                       ret ? err : "ok", first);
            catanet_st_close(z64);
        }
        free(z);
        catanet_st_close(a);
        catanet_st_close(b);
        catanet_st_close(c);
    }
}

static void test_st_writer_roundtrip(void)
{
    char p[512], err[512];
    float f32[6] = { 1.5f, -2.0f, 0.0f, 1e-30f, 3.25f, -0.0f };
    uint16_t f16[3] = { 0x3c00, 0xc000, 0x7bff };
    uint8_t b[1] = { 1 };
    int64_t i64[2] = { -5, (int64_t)1 << 40 };
    double f64[2] = { 0.1, -1e300 };
    CatanetStEntry e[] = {
        { "a.weight", CATANET_DT_F32, 2, { 2, 3 }, f32 },
        { "h", CATANET_DT_F16, 1, { 3 }, f16 },
        { "flag", CATANET_DT_BOOL, 0, { 0 }, b },
        { "ids", CATANET_DT_I64, 1, { 2 }, i64 },
        { "empty", CATANET_DT_F32, 2, { 0, 7 }, NULL },
        { "d", CATANET_DT_F64, 1, { 2 }, f64 },
    };
    const int n = (int)(sizeof(e) / sizeof(e[0]));
    const char *mk[] = { "k1", "k2" }, *mv[] = { "v1", "{\"x\": [1, 2]}" };
    int ret = catanet_st_write(tpath(p, sizeof(p), "rt.safetensors"), e, n, mk, mv, 2, err, sizeof(err));
    test_check(ret == 0, "safetensors writer (%s)", ret ? err : "ok");
    CatanetSt *st;
    ret = catanet_st_open(&st, p, err, sizeof(err));
    int same = ret == 0 && st->n == n && st->n_meta == 2;
    for (int i = 0; same && i < n; i++) {
        const CatanetStTensor *t = &st->tensors[i];
        size_t nb = catanet_dtype_size(e[i].dtype);
        for (int d = 0; d < e[i].ndim; d++)
            nb *= (size_t)e[i].shape[d];
        same = !strcmp(t->name, e[i].name) && t->dtype == e[i].dtype && t->ndim == e[i].ndim && t->nbytes == nb &&
               (!nb || !memcmp(t->data, e[i].data, nb));
        for (int d = 0; same && d < e[i].ndim; d++)
            same = t->shape[d] == e[i].shape[d];
    }
    same = same && !strcmp(catanet_st_meta(st, "k2"), mv[1]) && !strcmp(catanet_st_meta(st, "k1"), "v1");
    test_check(same, "safetensors write -> read: names, order, dtypes, shapes, bytes, metadata equal");
    if (ret == 0)
        catanet_st_close(st);

    /* the .pth writer, through the restricted reader */
    ret = catanet_pth_write(tpath(p, sizeof(p), "rt.pth"), "rt", e, n, err, sizeof(err));
    test_check(ret == 0, ".pth writer (%s)", ret ? err : "ok");
    ret = catanet_pth_open(&st, p, err, sizeof(err));
    same = ret == 0 && st->n == n;
    for (int i = 0; same && i < n; i++)
        same = !strcmp(st->tensors[i].name, e[i].name) && st->tensors[i].dtype == e[i].dtype &&
               st->tensors[i].ndim == e[i].ndim &&
               (!st->tensors[i].nbytes || !memcmp(st->tensors[i].data, e[i].data, st->tensors[i].nbytes));
    test_check(same, ".pth write -> read: names, order, dtypes, shapes, bytes equal (%s)", ret ? err : "ok");
    if (ret == 0)
        catanet_st_close(st);

    /* writer refusals */
    CatanetStEntry dup[2] = { e[0], e[0] };
    ret = catanet_st_write(tpath(p, sizeof(p), "dup.safetensors"), dup, 2, NULL, NULL, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_INVALID_ARG, "duplicate", "writer: duplicate tensor names");
    CatanetStEntry bad = e[0];
    bad.name = "bad\xff";
    ret = catanet_st_write(p, &bad, 1, NULL, NULL, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_INVALID_ARG, "UTF-8", "writer: name not UTF-8");
    test_check(access(p, F_OK) != 0, "writer: nothing left behind after a refusal");

    /* a model: save -> load gives the same arena */
    CatanetModel *m = tiny_model(), *m2 = NULL;
    ret = catanet_model_save(m, tpath(p, sizeof(p), "tiny.safetensors"), NULL, NULL, 0, err, sizeof(err));
    if (ret == 0)
        ret = catanet_model_load(&m2, p, err, sizeof(err));
    test_check(ret == 0 && m2->arena_floats == m->arena_floats &&
               !memcmp(m2->arena, m->arena, sizeof(float) * m->arena_floats) &&
               m2->info.num_groups == 1 && m2->info.groups[0].group_size == 8 && m2->info.heads == 2,
               "model save -> load: same architecture and weights (%s)", ret ? err : "ok");
    catanet_model_free(m);
    catanet_model_free(m2);
}

/* every truncation length of the small files (rt.*: six tensors, metadata), every 7th of the tiny
 * model, a dense sample of a reference one: an error, never a crash */
static int truncations(const char *path, int is_pth, size_t step, int *bad_len)
{
    size_t n;
    char err[512];
    uint8_t *b = read_all(path, &n);
    int ok = b != NULL;
    *bad_len = -1;
    for (size_t len = 0; b && len < n; len += len + step < n ? step : (len + 1 < n ? n - 1 - len : 1)) {
        int ret = is_pth ? parse_pth(b, len, 0, err, sizeof(err)) : parse_st_model(b, len, err, sizeof(err));
        if ((is_pth ? ret >= 0 : ret != CATANET_ERR_FORMAT) || !err[0]) {
            ok = 0;
            *bad_len = (int)len;
        }
    }
    free(b);
    return ok ? (int)n : -1;
}

static void test_truncations(void)
{
    char p[512], err[512];
    size_t n;
    uint8_t *b;
    int bad, r;
    r = truncations(tpath(p, sizeof(p), "rt.safetensors"), 0, 1, &bad);
    test_check(r > 0, "safetensors: every truncation of a %d-byte file fails with a format error (bad length: %d)", r, bad);
    r = truncations(tpath(p, sizeof(p), "tiny.safetensors"), 0, 7, &bad);
    test_check(r > 0, "safetensors: every 7th truncation of a %d-byte model fails with a format error (bad length: %d)",
               r, bad);
    r = truncations(tpath(p, sizeof(p), "rt.pth"), 1, 1, &bad);
    test_check(r > 0, ".pth: every truncation of a %d-byte checkpoint fails (bad length: %d)", r, bad);

    CatanetModel *m = tiny_model();
    CatanetStEntry e[64];
    int k = 0;
    for (int i = 0; i < m->n_tensors && k < 64; i++, k++) {
        e[k] = (CatanetStEntry){ m->tensors[i].name, CATANET_DT_F32, m->tensors[i].ndim, { 0 }, m->arena + m->tensors[i].offset };
        for (int d = 0; d < m->tensors[i].ndim; d++)
            e[k].shape[d] = m->tensors[i].shape[d];
    }
    int ret = catanet_pth_write(tpath(p, sizeof(p), "tiny.pth"), "tiny", e, k, err, sizeof(err));
    catanet_model_free(m);
    b = ret == 0 ? read_all(p, &n) : NULL;
    ret = b ? parse_pth(b, n, 0, err, sizeof(err)) : -1;
    test_check(ret == 0, "tiny .pth parses whole (%s)", ret ? err : "ok");
    free(b);
    r = truncations(p, 1, 7, &bad);
    test_check(r > 0, ".pth: every 7th truncation of a %d-byte model checkpoint fails (bad length: %d)", r, bad);

    int ok;
    b = read_all(ref_path(p, sizeof(p), "weights_x2_random.safetensors"), &n);
    ok = b != NULL;
    for (size_t len = 0; b && len < n; len += len < 30000 ? 1499 : 49999) {
        ret = parse_st_model(b, len, err, sizeof(err));
        if (ret != CATANET_ERR_FORMAT)
            ok = 0;
    }
    test_check(ok, "safetensors: sampled truncations of the x2 reference fail with a format error");
    free(b);
    b = read_all(ref_path(p, sizeof(p), "weights_x2_random.pth"), &n);
    ok = b != NULL;
    for (size_t len = 0; b && len < n; len += len < 40000 ? 1021 : 49999) {
        ret = parse_pth(b, len, 0, err, sizeof(err));
        if (ret >= 0)
            ok = 0;
    }
    if (b) {
        ret = parse_pth(b, n - 1, 0, err, sizeof(err));
        ok = ok && ret < 0;
    }
    test_check(ok, ".pth: sampled truncations of the x2 reference fail (last: '%s')", err);
    free(b);
}

static void test_bad_safetensors(void)
{
    char ref[512], err[512], p[512];
    ref_path(ref, sizeof(ref), "weights_x2_random.safetensors");
    size_t n;
    uint8_t *orig = read_all(ref, &n);
    if (!orig) {
        test_check(0, "cannot read %s", ref);
        return;
    }
    uint8_t *b = malloc(n);
    int ret;

    /* container level */
    ret = parse_st_model(orig, 5, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "too short", "5-byte file");
    memcpy(b, orig, n);
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    ret = parse_st_model(b, n, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "does not fit", "wrong magic (a PNG signature)");
    memcpy(b, orig, n);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)(n - 7) >> (8 * i));
    ret = parse_st_model(b, n, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "does not fit", "header length beyond the file");
    ret = catanet_st_open(&(CatanetSt *){ NULL }, ref_path(p, sizeof(p), "weights_x2_random.pth"), err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "does not fit", "a .pth given as safetensors");
    ret = catanet_pth_parse(&(CatanetSt *){ NULL }, orig, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "not a PyTorch zip", "a safetensors given as .pth");
    free(b);
    free(orig);

    static const struct {
        const char *hdr, *phrase, *what;
    } raw[] = {
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "not valid JSON", "unterminated JSON" },
        { "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "not valid JSON", "non-UTF-8 key" },
        { "[1,2]", "not a JSON object", "header is an array" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[8,16]}}", "not valid JSON", "duplicate key" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", "beyond", "data_offsets beyond the data" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", "bad data_offsets", "begin after end" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "bad data_offsets", "negative offset" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
          "\"data_offsets\":[4,12]}}", "overlap", "overlapping tensors" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", "overflows",
          "shape product overflows int64" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", "bytes for",
          "shape x dtype size overflows size_t" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "bytes for", "dtype/size mismatch" },
        { "{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unsupported dtype", "unknown dtype" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "bad shape entry", "negative dimension" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", "dimensions",
          "9 dimensions" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", "data_offsets", "no data_offsets" },
        { "{\"a\":[1]}", "not an object", "tensor entry is not an object" },
        { "{\"__metadata__\":{\"x\":1}}", "not a string", "metadata value not a string" },
        { "{\"__metadata__\":[]}", "not an object", "metadata not an object" },
        { "{}", "first_conv", "no tensors at all (not a CATANet model)" },
    };
    uint8_t data[64] = { 0 };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        size_t hl = strlen(raw[i].hdr);
        uint8_t *f = malloc(8 + hl + 16);
        for (int k = 0; k < 8; k++)
            f[k] = (uint8_t)((uint64_t)hl >> (8 * k));
        memcpy(f + 8, raw[i].hdr, hl);
        memcpy(f + 8 + hl, data, 16);
        ret = parse_st_model(f, 8 + hl + 16, err, sizeof(err));
        expect_err(ret, err, CATANET_ERR_FORMAT, raw[i].phrase, raw[i].what);
        free(f);
    }

    /* model level, from the reference */
    StEdit e;
    if (st_edit_load(&e, ref) < 0) {
        test_check(0, "cannot edit %s", ref);
        return;
    }
    float nan = NAN, inf = -INFINITY, one;
    uint8_t *w = st_edit_bytes(&e, "blocks.5.1.layer.0.fn.to_q.weight");
    memcpy(&one, w + 4 * 17, 4);
    memcpy(w + 4 * 17, &nan, 4);
    ret = load_edit(&e, "nan.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "non-finite", "a NaN weight");
    memcpy(w + 4 * 17, &inf, 4);
    ret = load_edit(&e, "inf.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "non-finite", "an Inf weight");
    memcpy(w + 4 * 17, &one, 4);
    ret = load_edit(&e, "same.safetensors", err, sizeof(err));
    test_check(ret == 0, "the edited file itself loads when restored (%s)", ret ? err : "ok");

    json_t *saved = json_deep_copy(e.hdr);
    json_object_del(e.hdr, "blocks.3.0.norm.bias");
    ret = load_edit(&e, "missing.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "missing tensor 'blocks.3.0.norm.bias'", "a missing tensor");
    json_decref(e.hdr);
    e.hdr = json_deep_copy(saved);

    json_object_set_new(json_object_get(e.hdr, "mid_convs.2.bias"), "shape", json_pack("[i,i]", 2, 20));
    ret = load_edit(&e, "shape.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "has shape [2,20], the architecture needs [40]", "a wrong shape");
    json_decref(e.hdr);
    e.hdr = json_deep_copy(saved);

    json_object_set_new(json_object_get(e.hdr, "first_conv.bias"), "dtype", json_string("I32"));
    ret = load_edit(&e, "dtype.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "dtype I32", "an integer weight");
    json_decref(e.hdr);
    e.hdr = json_deep_copy(saved);

    json_object_set_new(json_object_get(e.hdr, "blocks.0.0.initted"), "dtype", json_string("U8"));
    ret = load_edit(&e, "initted.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "single BOOL", "initted not a BOOL");
    json_decref(e.hdr);
    e.hdr = json_deep_copy(saved);

    int64_t up_w[4] = { 40 * 25, 40, 3, 3 }, up_b[1] = { 40 * 25 };
    st_edit_replace(&e, "upconv.weight", "F32", 4, up_w, 4);
    st_edit_replace(&e, "upconv.bias", "F32", 1, up_b, 4);
    ret = load_edit(&e, "x5.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_UNSUPPORTED, "unsupported scale", "upconv with 40*25 outputs (x5)");
    json_decref(e.hdr);
    e.hdr = json_deep_copy(saved);

    static const struct {
        const char *arch, *phrase, *what;
        int code;
    } archs[] = {
        { "{\"dim\":-40,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2,\"groups\":[]}", "bad architecture",
          "catanet_arch: negative dim", CATANET_ERR_FORMAT },
        { "{\"dim\":40,\"qk_dim\":36,\"heads\":3,\"mlp_dim\":96,\"upscale\":2,\"groups\":[]}", "bad architecture",
          "catanet_arch: heads not dividing dim", CATANET_ERR_FORMAT },
        { "{\"dim\":40,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":5,\"groups\":[]}", "unsupported upscale",
          "catanet_arch: upscale 5", CATANET_ERR_UNSUPPORTED },
        { "{\"dim\":40,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2,\"groups\":[{\"num_tokens\":-1,"
          "\"group_size\":1,\"patch_size\":16}]}", "num_tokens", "catanet_arch: negative num_tokens", CATANET_ERR_FORMAT },
        { "{\"dim\":40,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2,\"groups\":[{\"num_tokens\":16}]}",
          "group 0 needs", "catanet_arch: incomplete group", CATANET_ERR_FORMAT },
        { "{\"dim\":40,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2", "not valid JSON",
          "catanet_arch: invalid JSON", CATANET_ERR_FORMAT },
        { "{\"dim\":\"40\",\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2,\"groups\":[]}", "needs integer",
          "catanet_arch: dim as a string", CATANET_ERR_FORMAT },
        { "{\"dim\":99999999999,\"qk_dim\":36,\"heads\":4,\"mlp_dim\":96,\"upscale\":2,\"groups\":[]}", "needs integer",
          "catanet_arch: dim beyond int", CATANET_ERR_FORMAT },
    };
    for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
        json_object_set_new(e.hdr, "__metadata__", json_pack("{s:s}", CATANET_ARCH_KEY, archs[i].arch));
        ret = load_edit(&e, "arch.safetensors", err, sizeof(err));
        expect_err(ret, err, archs[i].code, archs[i].phrase, archs[i].what);
    }
    /* 65 groups: more than the format allows */
    json_t *a = json_pack("{s:i,s:i,s:i,s:i,s:i,s:[]}", "dim", 40, "qk_dim", 36, "heads", 4, "mlp_dim", 96, "upscale", 2,
                          "groups");
    for (int i = 0; i < CATANET_MAX_GROUPS + 1; i++)
        json_array_append_new(json_object_get(a, "groups"),
                              json_pack("{s:i,s:i,s:i}", "num_tokens", 16, "group_size", 256, "patch_size", 16));
    char *as = json_dumps(a, JSON_COMPACT);
    json_object_set_new(e.hdr, "__metadata__", json_pack("{s:s}", CATANET_ARCH_KEY, as));
    ret = load_edit(&e, "arch65.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "groups (at most 64)", "catanet_arch: 65 groups");
    free(as);
    json_decref(a);
    /* a valid architecture that does not match the tensors (9 groups) */
    CatanetModelInfo info;
    catanet_arch_default(&info, 2);
    info.num_groups = 9;
    info.groups[8] = info.groups[0];
    as = catanet_arch_to_json(&info);
    json_object_set_new(e.hdr, "__metadata__", json_pack("{s:s}", CATANET_ARCH_KEY, as));
    ret = load_edit(&e, "arch9.safetensors", err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "missing tensor 'blocks.8.0.means'", "catanet_arch with a group too many");
    free(as);
    json_decref(saved);
    st_edit_free(&e);
}

/* hand-made checkpoints in the shapes torch writes, and broken ones */
static void test_pth_variants(void)
{
    char p[512], err[512];
    float w[12];
    for (int i = 0; i < 12; i++)
        w[i] = (float)i + 0.5f;
    uint8_t flag = 1;
    uint16_t half[2] = { 0x3c00, 0x4000 }; /* 1.0, 2.0 */
    const char *keys[] = { "0", "1", "2" };
    const void *data[] = { w, &flag, half };
    const size_t sizes[] = { sizeof(w), 1, sizeof(half) };
    int64_t s34[2] = { 3, 4 }, st34[2] = { 4, 1 }, s43[2] = { 4, 3 }, st43t[2] = { 1, 4 }, s2[1] = { 2 }, one[1] = { 1 };

    /* {'params': OrderedDict(...)} with BUILD _metadata, a transposed view, a shared storage with an
     * offset, a 0-dim bool and a half tensor */
    Pk pk = { .n = 0 };
    pk_op(&pk, 0x80);
    pk_op(&pk, 2);
    pk_op(&pk, '}');
    pk_op(&pk, 'q');
    pk_op(&pk, 0);
    pk_str(&pk, "params");
    pk_odict(&pk);
    pk_op(&pk, 'q');
    pk_op(&pk, 1);
    pk_op(&pk, '(');
    pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
    pk_tensor(&pk, "wt", "FloatStorage", "0", 12, 0, 2, s43, st43t);
    pk_tensor(&pk, "tail", "FloatStorage", "0", 12, 10, 1, s2, one);
    pk_tensor(&pk, "flag", "BoolStorage", "1", 1, 0, 0, NULL, NULL);
    pk_tensor(&pk, "h", "HalfStorage", "2", 2, 0, 1, s2, one);
    pk_op(&pk, 'u');
    /* state: {'_metadata': OrderedDict({'': {'version': 1}})} */
    pk_op(&pk, '}');
    pk_str(&pk, "_metadata");
    pk_odict(&pk);
    pk_str(&pk, "");
    pk_op(&pk, '}');
    pk_str(&pk, "version");
    pk_op(&pk, 'K');
    pk_op(&pk, 1);
    pk_op(&pk, 's');
    pk_op(&pk, 's');
    pk_op(&pk, 's');
    pk_op(&pk, 'b');
    pk_op(&pk, 's');
    pk_op(&pk, '.');
    CatanetSt *st = NULL;
    make_pth(tpath(p, sizeof(p), "odict.pth"), &pk, 3, keys, data, sizes, "little");
    int ret = catanet_pth_open(&st, p, err, sizeof(err));
    test_check(ret == 0, "OrderedDict + BUILD _metadata checkpoint parses (%s)", ret ? err : "ok");
    if (ret == 0) {
        const CatanetStTensor *t = catanet_st_get(st, "wt"), *tail = catanet_st_get(st, "tail");
        const CatanetStTensor *fl = catanet_st_get(st, "flag"), *h = catanet_st_get(st, "h");
        float v[12];
        int ok = st->n == 5 && !strcmp(st->tensors[0].name, "w") && !strcmp(st->tensors[4].name, "h") && t &&
                 t->ndim == 2 && t->shape[0] == 4 && t->shape[1] == 3 && catanet_st_read_f32(t, v) == 0;
        for (int i = 0; ok && i < 4; i++)
            for (int j = 0; j < 3; j++)
                ok = v[i * 3 + j] == w[j * 4 + i];
        test_check(ok, "a transposed (strided) view is copied out transposed, order kept");
        ok = tail && tail->numel == 2 && catanet_st_read_f32(tail, v) == 0 && v[0] == w[10] && v[1] == w[11];
        test_check(ok, "a view at a storage offset reads the right elements");
        ok = fl && fl->dtype == CATANET_DT_BOOL && fl->ndim == 0 && fl->data[0] == 1 && h &&
             h->dtype == CATANET_DT_F16 && catanet_st_read_f32(h, v) == 0 && v[0] == 1.0f && v[1] == 2.0f;
        test_check(ok, "0-dim BoolStorage and HalfStorage tensors");
        catanet_st_close(st);
    }

    /* 'params_ema' only, and a bare state dict (protocol 4 opcodes: SHORT_BINUNICODE, MEMOIZE, FRAME) */
    static const char *const tops[2] = { "params_ema", NULL };
    for (int k = 0; k < 2; k++) {
        pk.n = 0;
        pk_op(&pk, 0x80);
        pk_op(&pk, 2);
        pk_op(&pk, '}');
        if (tops[k]) {
            pk_str(&pk, tops[k]);
            pk_op(&pk, '}');
        }
        pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
        pk_op(&pk, 's');
        if (tops[k]) {
            pk_op(&pk, 's');
            /* other top-level entries are parsed and ignored: 'iter': [None, True, 1] */
            pk_str(&pk, "iter");
            pk_op(&pk, ']');
            pk_op(&pk, '(');
            pk_op(&pk, 'N');
            pk_op(&pk, 0x88);
            pk_int(&pk, 1);
            pk_op(&pk, 'e');
            pk_op(&pk, 's');
        }
        pk_op(&pk, '.');
        make_pth(tpath(p, sizeof(p), "top.pth"), &pk, 1, keys, data, sizes, NULL);
        ret = catanet_pth_open(&st, p, err, sizeof(err));
        test_check(ret == 0 && st->n == 1 && st->tensors[0].numel == 12 && !memcmp(st->tensors[0].data, w, 48),
                   "checkpoint with %s parses (%s)", tops[k] ? "'params_ema' only" : "a bare state dict",
                   ret ? err : "ok");
        catanet_st_close(st);
    }

    /* broken pickles: the error names what was refused and where */
    static const struct {
        const char *what, *phrase;
        int kind;
    } bad[] = {
        { "GLOBAL os system", "refusing GLOBAL 'os system'", 0 },
        { "REDUCE on a storage class", "REDUCE calls torch.FloatStorage", 1 },
        { "unknown opcode INST ('i')", "unsupported pickle opcode 0x69 'i'", 2 },
        { "opcode 0xff", "unsupported pickle opcode 0xff", 3 },
        { "no STOP", "no STOP", 4 },
        { "MARKs nested 100 deep", "nested too deeply", 5 },
        { "BINGET of an empty memo slot", "empty memo slot", 6 },
        { "LONG_BINPUT far beyond the pickle", "memo index out of range", 7 },
        { "dict key not a string", "dict key is not a string", 8 },
        { "storage offset beyond the storage", "outside its storage", 9 },
        { "record size differs from the storage size", "record has", 10 },
        { "missing storage record", "is missing", 11 },
        { "a state dict entry that is not a tensor", "is not a tensor", 12 },
        { "a tensor name twice", "appears twice", 13 },
        { "big-endian byteorder", "little-endian", 14 },
        { "empty state dict", "holds no tensors", 15 },
        { "STOP on an empty stack", "empty stack", 16 },
        { "REDUCE with too few values", "too few values", 17 },
        { "pickle protocol 1", "unsupported pickle protocol", 18 },
        { "expanded view (stride 0) bigger than its storage", "outside its storage", 19 },
        { "BINUNICODE length beyond the pickle", "truncated pickle", 20 },
        { "string not UTF-8", "not valid UTF-8", 21 },
        { "the checkpoint is a list", "not a dict", 22 },
        { "_rebuild_tensor_v2 with hooks", "backward hooks", 23 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *bo = "little";
        int nrec = 1;
        size_t sz2[1] = { sizeof(w) };
        pk.n = 0;
        pk_op(&pk, 0x80);
        pk_op(&pk, bad[i].kind == 18 ? 1 : 2);
        pk_op(&pk, '}');
        switch (bad[i].kind) {
        case 0:
            pk_global(&pk, "os", "system");
            pk_str(&pk, "echo pwned");
            pk_op(&pk, 0x85);
            pk_op(&pk, 'R');
            break;
        case 1:
            pk_global(&pk, "torch", "FloatStorage");
            pk_op(&pk, ')');
            pk_op(&pk, 'R');
            break;
        case 2:
            pk_op(&pk, '(');
            pk_bytes(&pk, "iposix\nsystem\n", 14);
            break;
        case 3:
            pk_op(&pk, 0xff);
            break;
        case 4:
            pk_str(&pk, "a");
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
            break;
        case 5:
            for (int k = 0; k < 100; k++)
                pk_op(&pk, '(');
            break;
        case 6:
            pk_op(&pk, 'h');
            pk_op(&pk, 2);
            break;
        case 7:
            pk_bytes(&pk, "r\xff\xff\xff\x7f", 5);
            break;
        case 8:
            pk_int(&pk, 3);
            pk_int(&pk, 4);
            pk_op(&pk, 's');
            break;
        case 9:
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 1, 2, s34, st34);
            pk_op(&pk, 's');
            break;
        case 10:
            sz2[0] = sizeof(w) - 4;
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
            pk_op(&pk, 's');
            break;
        case 11:
            pk_tensor(&pk, "w", "FloatStorage", "7", 12, 0, 2, s34, st34);
            pk_op(&pk, 's');
            break;
        case 12:
            pk_str(&pk, "w");
            pk_int(&pk, 5);
            pk_op(&pk, 's');
            break;
        case 13:
            pk_op(&pk, '(');
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
            pk_op(&pk, 'u');
            break;
        case 14:
            bo = "big";
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 2, s34, st34);
            pk_op(&pk, 's');
            break;
        case 15:
            nrec = 0;
            break;
        case 16:
            pk.n = 2;
            break;
        case 17:
            pk.n = 2;
            pk_op(&pk, ')');
            pk_op(&pk, 'R');
            break;
        case 19: {
            int64_t big[1] = { 1000 }, zero[1] = { 0 };
            pk_tensor(&pk, "w", "FloatStorage", "0", 12, 0, 1, big, zero);
            pk_op(&pk, 's');
            break;
        }
        case 20:
            pk_bytes(&pk, "X\x00\x00\x01\x00", 5);
            break;
        case 21:
            pk_bytes(&pk, "X\x02\x00\x00\x00\xc3\x28", 7);
            break;
        case 22:
            pk.n = 2;
            pk_op(&pk, ']');
            break;
        case 23:
            pk_str(&pk, "w");
            pk_global(&pk, "torch._utils", "_rebuild_tensor_v2");
            pk_op(&pk, '(');
            pk_op(&pk, '(');
            pk_str(&pk, "storage");
            pk_global(&pk, "torch", "FloatStorage");
            pk_str(&pk, "0");
            pk_str(&pk, "cpu");
            pk_int(&pk, 12);
            pk_op(&pk, 't');
            pk_op(&pk, 'Q');
            pk_int(&pk, 0);
            pk_int(&pk, 12);
            pk_op(&pk, 0x85);
            pk_int(&pk, 1);
            pk_op(&pk, 0x85);
            pk_op(&pk, 0x89);
            pk_odict(&pk);
            pk_str(&pk, "hook");
            pk_int(&pk, 1);
            pk_op(&pk, 's');
            pk_op(&pk, 't');
            pk_op(&pk, 'R');
            pk_op(&pk, 's');
            break;
        }
        if (bad[i].kind != 4)
            pk_op(&pk, '.');
        if (bad[i].kind == 16) {
            pk.n = 0;
            pk_op(&pk, 0x80);
            pk_op(&pk, 2);
            pk_op(&pk, '.');
        }
        make_pth(tpath(p, sizeof(p), "bad.pth"), &pk, nrec, keys, data, sz2, bo);
        ret = catanet_pth_open(&st, p, err, sizeof(err));
        int code = bad[i].kind == 14 ? CATANET_ERR_UNSUPPORTED : CATANET_ERR_FORMAT;
        expect_err(ret, err, code, bad[i].phrase, bad[i].what);
        if (ret == 0)
            catanet_st_close(st);
    }

    /* the zip layer, by patching a valid tiny checkpoint */
    size_t n;
    uint8_t *orig = read_all(tpath(p, sizeof(p), "tiny.pth"), &n), *b = malloc(n ? n : 1);
    long loc, cen;
    if (!orig) {
        test_check(0, "tiny.pth missing");
        free(b);
        return;
    }
    zip_locate(orig, n, "tiny/data.pkl", &loc, &cen);
    test_check(loc >= 0 && cen >= 0, "tiny.pth: data.pkl headers found");
    if (loc < 0 || cen < 0) {
        free(orig);
        free(b);
        return;
    }
    memcpy(b, orig, n);
    b[loc + 8] = b[cen + 10] = 8; /* deflate */
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_UNSUPPORTED, "is compressed (method 8)", "a compressed (deflate) entry");
    write_all(tpath(p, sizeof(p), "deflate.pth"), b, n);
    memcpy(b, orig, n);
    b[loc + 6] |= 1;
    b[cen + 8] |= 1;
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_UNSUPPORTED, "encrypted", "an encrypted entry");
    memcpy(b, orig, n);
    uint32_t lho_bad = (uint32_t)n + 100;
    memcpy(b + cen + 42, &lho_bad, 4);
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "local header missing", "a local header offset beyond the file");
    memcpy(b, orig, n);
    uint32_t huge = 0x7fffffff;
    memcpy(b + cen + 20, &huge, 4);
    memcpy(b + cen + 24, &huge, 4);
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "run past the end", "an entry size beyond the file");
    memcpy(b, orig, n);
    size_t data_pos = (size_t)loc + 30 + 13 + (size_t)(b[loc + 28] | b[loc + 29] << 8);
    b[data_pos + 3] ^= 0x40;
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "CRC-32 mismatch", "a damaged entry (bad CRC)");
    memcpy(b, orig, n);
    memcpy(b + n - 22 + 16, &lho_bad, 4); /* central directory offset in the end record */
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "central directory", "a central directory beyond the file");
    memcpy(b, orig, n);
    b[n - 22 + 10] = 0xff; /* entry count: more than the directory can hold */
    b[n - 22 + 11] = 0x7f;
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "entries", "an entry count larger than the directory");
    memcpy(b, orig, n);
    memcpy(b + cen + 46, "tiny/data.pkX", 13); /* no data.pkl any more */
    memcpy(b + loc + 30, "tiny/data.pkX", 13);
    ret = parse_pth(b, n, 0, err, sizeof(err));
    expect_err(ret, err, CATANET_ERR_FORMAT, "without a data.pkl", "no data.pkl record");

    /* the tool: clear message, non-zero exit; a tensor the architecture has no place for */
    char cmd[8192], out[512], log[512];
    snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' 2>'%s'", tool, tpath(p, sizeof(p), "deflate.pth"),
             tpath(out, sizeof(out), "never.safetensors"), tpath(log, sizeof(log), "convert.log"));
    ret = system(cmd);
    size_t ln;
    char *msg = (char *)read_all(log, &ln);
    if (msg)
        msg[ln ? ln - 1 : 0] = 0;
    test_check(ret != 0 && msg && strstr(msg, "compressed") && access(out, F_OK) != 0,
               "catanet-convert refuses a compressed checkpoint: exit %d, '%s'", ret, msg ? msg : "");
    free(msg);
    StEdit e;
    char ref[512];
    if (st_edit_load(&e, ref_path(ref, sizeof(ref), "weights_x2_random.safetensors")) == 0) {
        int64_t sh[1] = { 3 };
        st_edit_replace(&e, "blocks.0.0.extra", "F32", 1, sh, 4);
        st_edit_save(&e, tpath(p, sizeof(p), "extra.safetensors"));
        snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' 2>'%s'", tool, p, out, log);
        ret = system(cmd);
        msg = (char *)read_all(log, &ln);
        if (msg)
            msg[ln ? ln - 1 : 0] = 0;
        test_check(ret != 0 && msg && strstr(msg, "unexpected tensor 'blocks.0.0.extra'"),
                   "catanet-convert refuses an unexpected tensor: '%s'", msg ? msg : "");
        free(msg);
        st_edit_free(&e);
    }
    free(orig);
    free(b);
}

static void cleanup(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", tmpdir);
}

int main(int argc, char **argv)
{
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/catanet-weights-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot create a temp folder\n");
        return 1;
    }
    /* build/tests/test_weights -> build/tools/catanet-convert */
    const char *slash = strrchr(argv[0], '/');
    snprintf(tool, sizeof(tool), "%.*s/../tools/catanet-convert", slash ? (int)(slash - argv[0]) : 1,
             slash ? argv[0] : ".");
    test_st_writer_roundtrip();
    test_truncations();
    test_bad_safetensors();
    test_pth_variants();
    test_reference_conversion();
    cleanup();
    return test_finish();
}
