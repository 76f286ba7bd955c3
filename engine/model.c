/*
 * model.c: architecture description, the official tensor table, loading and saving models.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "model.h"
#include "pth.h"
#include "safetensors.h"

/* the official CATANet (the paper's CATANet-L), spec §1.1 */
static const int default_patch[4] = { 16, 20, 24, 28 };
static const int default_tokens[4] = { 16, 32, 64, 128 };
#define DEFAULT_TOKENS_X_GROUP 4096 /* official M * gs = 4096 (64x64 training patch) */

void catanet_arch_default(CatanetModelInfo *info, int upscale)
{
    memset(info, 0, sizeof(*info));
    info->dim = 40;
    info->qk_dim = 36;
    info->heads = 4;
    info->mlp_dim = 96;
    info->upscale = upscale;
    info->in_chans = 3;
    info->num_groups = 8;
    for (int i = 0; i < 8; i++) {
        info->groups[i].num_tokens = default_tokens[i % 4];
        info->groups[i].group_size = DEFAULT_TOKENS_X_GROUP / default_tokens[i % 4];
        info->groups[i].patch_size = default_patch[i % 4];
    }
}

int catanet_arch_validate(const CatanetModelInfo *a, char *err, size_t es)
{
    if (a->dim < 1 || a->dim > CATANET_MAX_DIM || a->heads < 1 || a->dim % a->heads ||
        a->qk_dim < a->heads || a->qk_dim % a->heads || a->qk_dim > CATANET_MAX_DIM ||
        a->mlp_dim < 1 || a->mlp_dim > 4 * CATANET_MAX_DIM)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "bad architecture: dim %d, qk_dim %d, heads %d, mlp_dim %d (dim and qk_dim must "
                            "be multiples of heads, dim <= %d)", a->dim, a->qk_dim, a->heads, a->mlp_dim,
                            CATANET_MAX_DIM);
    if (a->upscale < 1 || a->upscale > 4)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "unsupported upscale %d (1, 2, 3 or 4)", a->upscale);
    if (a->in_chans != 3)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "unsupported in_chans %d (3)", a->in_chans);
    if (a->num_groups < 0 || a->num_groups > CATANET_MAX_GROUPS)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "bad number of residual groups %d (0..%d)",
                            a->num_groups, CATANET_MAX_GROUPS);
    for (int i = 0; i < a->num_groups; i++) {
        const CatanetGroupInfo *g = &a->groups[i];
        if (g->num_tokens < 1 || g->num_tokens > CATANET_MAX_CENTERS || g->group_size < 1 ||
            g->group_size > CATANET_MAX_GROUP_SIZE || g->patch_size < 3 || g->patch_size > 64)
            return catanet_errf(err, es, CATANET_ERR_FORMAT,
                                "group %d: num_tokens %d (1..%d), group_size %d (1..%d), patch_size %d (3..64)",
                                i, g->num_tokens, CATANET_MAX_CENTERS, g->group_size, CATANET_MAX_GROUP_SIZE,
                                g->patch_size);
    }
    return 0;
}

char *catanet_arch_to_json(const CatanetModelInfo *a)
{
    json_t *groups = json_array();
    for (int i = 0; i < a->num_groups; i++)
        json_array_append_new(groups, json_pack("{s:i,s:i,s:i}", "num_tokens", a->groups[i].num_tokens,
                                                "group_size", a->groups[i].group_size, "patch_size",
                                                a->groups[i].patch_size));
    json_t *root = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:o}", "dim", a->dim, "qk_dim", a->qk_dim, "heads",
                             a->heads, "mlp_dim", a->mlp_dim, "upscale", a->upscale, "in_chans", a->in_chans,
                             "groups", groups);
    char *s = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    return s;
}

static int get_int(json_t *o, const char *key, int *v)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < -1000000 || json_integer_value(j) > 1000000)
        return -1;
    *v = (int)json_integer_value(j);
    return 0;
}

int catanet_arch_from_json(CatanetModelInfo *a, const char *text, char *err, size_t es)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "metadata '%s' is not valid JSON: %s", CATANET_ARCH_KEY,
                            jerr.text);
    int ret = CATANET_ERR_FORMAT;
    memset(a, 0, sizeof(*a));
    a->in_chans = 3;
    json_t *groups = json_object_get(root, "groups");
    if (!json_is_object(root) || get_int(root, "dim", &a->dim) || get_int(root, "qk_dim", &a->qk_dim) ||
        get_int(root, "heads", &a->heads) || get_int(root, "mlp_dim", &a->mlp_dim) ||
        get_int(root, "upscale", &a->upscale) || !json_is_array(groups)) {
        catanet_errf(err, es, ret, "metadata '%s' needs integer dim, qk_dim, heads, mlp_dim, upscale and an array groups",
                     CATANET_ARCH_KEY);
        goto done;
    }
    if (json_object_get(root, "in_chans") && get_int(root, "in_chans", &a->in_chans)) {
        catanet_errf(err, es, ret, "metadata '%s': in_chans is not an integer", CATANET_ARCH_KEY);
        goto done;
    }
    if (json_array_size(groups) > CATANET_MAX_GROUPS) {
        catanet_errf(err, es, ret, "metadata '%s': %zu groups (at most %d)", CATANET_ARCH_KEY,
                     json_array_size(groups), CATANET_MAX_GROUPS);
        goto done;
    }
    a->num_groups = (int)json_array_size(groups);
    for (int i = 0; i < a->num_groups; i++) {
        json_t *g = json_array_get(groups, i);
        if (!json_is_object(g) || get_int(g, "num_tokens", &a->groups[i].num_tokens) ||
            get_int(g, "group_size", &a->groups[i].group_size) || get_int(g, "patch_size", &a->groups[i].patch_size)) {
            catanet_errf(err, es, ret, "metadata '%s': group %d needs integer num_tokens, group_size, patch_size",
                         CATANET_ARCH_KEY, i);
            goto done;
        }
    }
    ret = catanet_arch_validate(a, err, es);
done:
    json_decref(root);
    return ret;
}

/* ---- the tensor table ---- */

typedef struct TableBuilder {
    CatanetModel *m;
    int cap;
    size_t offset;
    int failed;
} TableBuilder;

static float *add(TableBuilder *b, int is_buffer, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  const char *fmt, ...) CATANET_PRINTF(8, 9);

/* Appends one tensor; returns its future address relative to a NULL arena (fixed up later). */
static float *add(TableBuilder *b, int is_buffer, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                  const char *fmt, ...)
{
    if (b->m->n_tensors == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        CatanetTensorDef *t = realloc(b->m->tensors, sizeof(*t) * cap);
        if (!t) {
            b->failed = 1;
            return NULL;
        }
        b->m->tensors = t;
        b->cap = cap;
    }
    CatanetTensorDef *t = &b->m->tensors[b->m->n_tensors++];
    memset(t, 0, sizeof(*t));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    int64_t d[4] = { d0, d1, d2, d3 };
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = d[i];
        t->numel *= (size_t)d[i];
    }
    t->offset = b->offset;
    t->is_buffer = is_buffer;
    b->offset += (t->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    return (float *)(uintptr_t)(t->offset + 1); /* +1: distinguishes offset 0 from "absent" */
}

static void add_ffn(TableBuilder *b, CatanetFfnW *f, int dim, int mlp, const char *prefix)
{
    f->norm_w = add(b, 0, 1, dim, 0, 0, 0, "%s.norm.weight", prefix);
    f->norm_b = add(b, 0, 1, dim, 0, 0, 0, "%s.norm.bias", prefix);
    f->fc1_w = add(b, 0, 2, mlp, dim, 0, 0, "%s.fn.fc1.weight", prefix);
    f->fc1_b = add(b, 0, 1, mlp, 0, 0, 0, "%s.fn.fc1.bias", prefix);
    f->dw_w = add(b, 0, 4, mlp, 1, 5, 5, "%s.fn.dwconv.depthwise_conv.0.weight", prefix);
    f->dw_b = add(b, 0, 1, mlp, 0, 0, 0, "%s.fn.dwconv.depthwise_conv.0.bias", prefix);
    f->fc2_w = add(b, 0, 2, dim, mlp, 0, 0, "%s.fn.fc2.weight", prefix);
    f->fc2_b = add(b, 0, 1, dim, 0, 0, 0, "%s.fn.fc2.bias", prefix);
}

static void fix(float **p, float *arena)
{
    if (*p)
        *p = arena + ((uintptr_t)*p - 1);
}

static void fix_ffn(CatanetFfnW *f, float *arena)
{
    float **p[] = { &f->norm_w, &f->norm_b, &f->fc1_w, &f->fc1_b, &f->dw_w, &f->dw_b, &f->fc2_w, &f->fc2_b };
    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
        fix(p[i], arena);
}

/* The tensor table of an architecture, without the arena (tensor pointers still hold offset + 1):
 * a loader checks a file against the table before it allocates what the file claims to need. */
static int model_table(CatanetModel **out, const CatanetModelInfo *info, char *err, size_t es)
{
    *out = NULL;
    int ret = catanet_arch_validate(info, err, es);
    if (ret < 0)
        return ret;
    CatanetModel *m = calloc(1, sizeof(*m));
    if (!m)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    m->info = *info;
    m->groups = calloc(info->num_groups ? info->num_groups : 1, sizeof(*m->groups));
    TableBuilder b = { m, 0, 0, 0 };
    if (!m->groups) {
        catanet_model_free(m);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    }
    int d = info->dim, q = info->qk_dim, mlp = info->mlp_dim, s = info->upscale;
    char prefix[64];
    m->first_w = add(&b, 0, 4, d, info->in_chans, 3, 3, "first_conv.weight");
    m->first_b = add(&b, 0, 1, d, 0, 0, 0, "first_conv.bias");
    for (int i = 0; i < info->num_groups; i++) {
        CatanetTabW *t = &m->groups[i].tab;
        CatanetLrsaW *l = &m->groups[i].lrsa;
        t->means = add(&b, 1, 2, info->groups[i].num_tokens, d, 0, 0, "blocks.%d.0.means", i);
        t->norm_w = add(&b, 0, 1, d, 0, 0, 0, "blocks.%d.0.norm.weight", i);
        t->norm_b = add(&b, 0, 1, d, 0, 0, 0, "blocks.%d.0.norm.bias", i);
        snprintf(prefix, sizeof(prefix), "blocks.%d.0.mlp", i);
        add_ffn(&b, &t->mlp, d, mlp, prefix);
        t->irca_k = add(&b, 0, 2, q, d, 0, 0, "blocks.%d.0.irca_attn.to_k.weight", i);
        t->irca_v = add(&b, 0, 2, d, d, 0, 0, "blocks.%d.0.irca_attn.to_v.weight", i);
        t->q = add(&b, 0, 2, q, d, 0, 0, "blocks.%d.0.iasa_attn.to_q.weight", i);
        t->k = add(&b, 0, 2, q, d, 0, 0, "blocks.%d.0.iasa_attn.to_k.weight", i);
        t->v = add(&b, 0, 2, d, d, 0, 0, "blocks.%d.0.iasa_attn.to_v.weight", i);
        t->proj = add(&b, 0, 2, d, d, 0, 0, "blocks.%d.0.iasa_attn.proj.weight", i);
        t->conv1x1 = add(&b, 0, 4, d, d, 1, 1, "blocks.%d.0.conv1x1.weight", i);
        l->norm_w = add(&b, 0, 1, d, 0, 0, 0, "blocks.%d.1.layer.0.norm.weight", i);
        l->norm_b = add(&b, 0, 1, d, 0, 0, 0, "blocks.%d.1.layer.0.norm.bias", i);
        l->q = add(&b, 0, 2, q, d, 0, 0, "blocks.%d.1.layer.0.fn.to_q.weight", i);
        l->k = add(&b, 0, 2, q, d, 0, 0, "blocks.%d.1.layer.0.fn.to_k.weight", i);
        l->v = add(&b, 0, 2, d, d, 0, 0, "blocks.%d.1.layer.0.fn.to_v.weight", i);
        l->proj = add(&b, 0, 2, d, d, 0, 0, "blocks.%d.1.layer.0.fn.proj.weight", i);
        snprintf(prefix, sizeof(prefix), "blocks.%d.1.layer.1", i);
        add_ffn(&b, &l->ffn, d, mlp, prefix);
    }
    for (int i = 0; i < info->num_groups; i++) {
        m->groups[i].mid_w = add(&b, 0, 4, d, d, 3, 3, "mid_convs.%d.weight", i);
        m->groups[i].mid_b = add(&b, 0, 1, d, 0, 0, 0, "mid_convs.%d.bias", i);
    }
    if (s == 4) {
        m->up_w[0] = add(&b, 0, 4, 4 * d, d, 3, 3, "upconv1.weight");
        m->up_b[0] = add(&b, 0, 1, 4 * d, 0, 0, 0, "upconv1.bias");
        m->up_w[1] = add(&b, 0, 4, 4 * d, d, 3, 3, "upconv2.weight");
        m->up_b[1] = add(&b, 0, 1, 4 * d, 0, 0, 0, "upconv2.bias");
    } else if (s > 1) {
        m->up_w[0] = add(&b, 0, 4, (int64_t)s * s * d, d, 3, 3, "upconv.weight");
        m->up_b[0] = add(&b, 0, 1, (int64_t)s * s * d, 0, 0, 0, "upconv.bias");
    }
    m->last_w = add(&b, 0, 4, info->in_chans, d, 3, 3, "last_conv.weight");
    m->last_b = add(&b, 0, 1, info->in_chans, 0, 0, 0, "last_conv.bias");
    if (b.failed) {
        catanet_model_free(m);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    }
    m->arena_floats = b.offset;
    int64_t np = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].is_buffer)
            np += (int64_t)m->tensors[i].numel;
    m->info.num_params = np;
    *out = m;
    return 0;
}

/* allocates the zeroed arena and points every weight pointer into it */
static int model_alloc_arena(CatanetModel *m, char *err, size_t es)
{
    const CatanetModelInfo *info = &m->info;
    if (!(m->arena = aligned_alloc(64, (m->arena_floats ? m->arena_floats : 16) * sizeof(float))))
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory (%zu MB of weights)",
                            m->arena_floats * sizeof(float) >> 20);
    memset(m->arena, 0, sizeof(float) * m->arena_floats);
    fix(&m->first_w, m->arena);
    fix(&m->first_b, m->arena);
    for (int i = 0; i < info->num_groups; i++) {
        CatanetGroupW *g = &m->groups[i];
        float **p[] = { &g->tab.means, &g->tab.norm_w, &g->tab.norm_b, &g->tab.irca_k, &g->tab.irca_v,
                        &g->tab.q, &g->tab.k, &g->tab.v, &g->tab.proj, &g->tab.conv1x1, &g->lrsa.norm_w,
                        &g->lrsa.norm_b, &g->lrsa.q, &g->lrsa.k, &g->lrsa.v, &g->lrsa.proj, &g->mid_w, &g->mid_b };
        for (size_t j = 0; j < sizeof(p) / sizeof(p[0]); j++)
            fix(p[j], m->arena);
        fix_ffn(&g->tab.mlp, m->arena);
        fix_ffn(&g->lrsa.ffn, m->arena);
        m->initted[i] = 1;
    }
    for (int i = 0; i < 2; i++) {
        fix(&m->up_w[i], m->arena);
        fix(&m->up_b[i], m->arena);
    }
    fix(&m->last_w, m->arena);
    fix(&m->last_b, m->arena);
    return 0;
}

int catanet_model_create(CatanetModel **out, const CatanetModelInfo *info, char *err, size_t es)
{
    int ret = model_table(out, info, err, es);
    if (ret < 0)
        return ret;
    if ((ret = model_alloc_arena(*out, err, es)) < 0) {
        catanet_model_free(*out);
        *out = NULL;
    }
    return ret;
}

void catanet_model_free(CatanetModel *m)
{
    if (!m)
        return;
    free(m->arena);
    free(m->tensors);
    free(m->groups);
    free(m);
}

int catanet_model_copy_matching(CatanetModel *dst, const CatanetModel *src)
{
    int copied = 0;
    for (int i = 0; i < dst->n_tensors; i++) {
        const CatanetTensorDef *d = &dst->tensors[i];
        const CatanetTensorDef *sd = catanet_model_find(src, d->name);
        /* x2 -> x4: the x2 upsampler (conv + shuffle by 2) is exactly the first of the x4 model's two stages */
        if (!sd && dst->info.upscale == 4 && !strncmp(d->name, "upconv1.", 8)) {
            char name[CATANET_NAME_MAX + 8];
            snprintf(name, sizeof(name), "upconv.%s", d->name + 8);
            sd = src->info.upscale == 2 ? catanet_model_find(src, name) : NULL;
        }
        if (!sd || sd->ndim != d->ndim || memcmp(sd->shape, d->shape, sizeof(d->shape[0]) * d->ndim))
            continue;
        memcpy(dst->arena + d->offset, src->arena + sd->offset, sizeof(float) * d->numel);
        copied++;
        int g; /* a group's `initted` goes with its `means` */
        if (d->is_buffer && sscanf(d->name, "blocks.%d.0.means", &g) == 1 && g >= 0 && g < dst->info.num_groups &&
            g < src->info.num_groups)
            dst->initted[g] = src->initted[g];
    }
    return copied;
}

const CatanetTensorDef *catanet_model_find(const CatanetModel *m, const char *name)
{
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name))
            return &m->tensors[i];
    return NULL;
}

/* Architecture from the tensor shapes alone (official checkpoints carry no metadata).
 * group_size and patch_size are not visible in shapes: the official rule is used
 * (patch_size 16, 20, 24, 28 repeating; group_size = 4096 / num_tokens). heads: 4. */
static int infer_arch(const CatanetSt *st, CatanetModelInfo *a, char *err, size_t es)
{
    const CatanetStTensor *fc = catanet_st_get(st, "first_conv.weight");
    const CatanetStTensor *q = catanet_st_get(st, "blocks.0.0.iasa_attn.to_q.weight");
    const CatanetStTensor *f1 = catanet_st_get(st, "blocks.0.0.mlp.fn.fc1.weight");
    memset(a, 0, sizeof(*a));
    if (!fc || fc->ndim != 4)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "no '%s' metadata and no first_conv.weight [dim,3,3,3]: "
                            "not a CATANet model", CATANET_ARCH_KEY);
    a->dim = (int)fc->shape[0];
    a->in_chans = (int)fc->shape[1];
    a->heads = 4;
    a->qk_dim = q && q->ndim == 2 ? (int)q->shape[0] : 36;
    a->mlp_dim = f1 && f1->ndim == 2 ? (int)f1->shape[0] : 96;
    char name[64];
    for (int i = 0; i < CATANET_MAX_GROUPS; i++) {
        snprintf(name, sizeof(name), "blocks.%d.0.means", i);
        const CatanetStTensor *mt = catanet_st_get(st, name);
        if (!mt)
            break;
        if (mt->ndim != 2 || mt->shape[0] < 1 || mt->shape[0] > CATANET_MAX_CENTERS)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s' has a bad shape", name);
        a->groups[i].num_tokens = (int)mt->shape[0];
        a->groups[i].group_size = DEFAULT_TOKENS_X_GROUP / (int)mt->shape[0] > 0 ?
                                  DEFAULT_TOKENS_X_GROUP / (int)mt->shape[0] : 1;
        a->groups[i].patch_size = default_patch[i % 4];
        a->num_groups = i + 1;
    }
    const CatanetStTensor *up = catanet_st_get(st, "upconv.weight");
    if (catanet_st_get(st, "upconv1.weight"))
        a->upscale = 4;
    else if (up && up->ndim == 4 && a->dim > 0) {
        int64_t r = up->shape[0] / a->dim;
        a->upscale = r == 4 ? 2 : r == 9 ? 3 : r == 16 ? 4 : -1;
        if (a->upscale < 0)
            return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "upconv.weight has %lld outputs: unsupported scale",
                                (long long)up->shape[0]);
    } else
        a->upscale = 1;
    return catanet_arch_validate(a, err, es);
}

int catanet_model_from_st(CatanetModel **out, const CatanetSt *st, const char *what, char *err, size_t es)
{
    *out = NULL;
    CatanetModel *m = NULL;
    CatanetModelInfo info;
    char sub[512];
    const char *path = what ? what : "model";
    const char *arch = catanet_st_meta(st, CATANET_ARCH_KEY);
    int ret = arch ? catanet_arch_from_json(&info, arch, sub, sizeof(sub)) : infer_arch(st, &info, sub, sizeof(sub));
    if (ret < 0) {
        catanet_errf(err, es, ret, "'%s': %s", path, sub);
        goto done;
    }
    ret = model_table(&m, &info, sub, sizeof(sub));
    if (ret < 0) {
        catanet_errf(err, es, ret, "'%s': %s", path, sub);
        goto done;
    }
    /* every tensor present with its shape and a float dtype before the arena is allocated: a small
     * damaged file must not make the loader allocate what a huge architecture would need */
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        const CatanetStTensor *t = catanet_st_get(st, d->name);
        if (!t) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': missing tensor '%s'", path, d->name);
            goto done;
        }
        int same = t->ndim == d->ndim;
        for (int k = 0; same && k < d->ndim; k++)
            same = t->shape[k] == d->shape[k];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int k = 0; k < d->ndim; k++)
                snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", k ? "," : "", (long long)d->shape[k]);
            for (int k = 0; k < t->ndim; k++)
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", k ? "," : "", (long long)t->shape[k]);
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': tensor '%s' has shape [%s], the architecture needs [%s]",
                               path, d->name, got, want);
            goto done;
        }
        if (t->dtype != CATANET_DT_F32 && t->dtype != CATANET_DT_F16 && t->dtype != CATANET_DT_BF16 &&
            t->dtype != CATANET_DT_F64) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': tensor '%s' has dtype %s (F32, F16, BF16 or F64 expected)",
                               path, d->name, catanet_dtype_name(t->dtype));
            goto done;
        }
    }
    ret = model_alloc_arena(m, sub, sizeof(sub));
    if (ret < 0) {
        catanet_errf(err, es, ret, "'%s': %s", path, sub);
        goto done;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        float *dst = m->arena + d->offset;
        if ((ret = catanet_st_read_f32(catanet_st_get(st, d->name), dst)) < 0) {
            catanet_errf(err, es, ret, "'%s': tensor '%s' cannot be read as float32", path, d->name);
            goto done;
        }
        for (size_t k = 0; k < d->numel; k++)
            if (!isfinite(dst[k])) {
                ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': tensor '%s' holds a non-finite value at index %zu",
                                   path, d->name, k);
                goto done;
            }
    }
    for (int i = 0; i < m->info.num_groups; i++) {
        char name[64];
        snprintf(name, sizeof(name), "blocks.%d.0.initted", i);
        const CatanetStTensor *t = catanet_st_get(st, name);
        if (t && (t->dtype != CATANET_DT_BOOL || t->numel != 1)) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': tensor '%s' must be a single BOOL", path, name);
            goto done;
        }
        m->initted[i] = t ? t->data[0] != 0 : 1;
    }
    *out = m;
    m = NULL;
done:
    catanet_model_free(m);
    return ret;
}

int catanet_model_load(CatanetModel **out, const char *model, char *err, size_t es)
{
    *out = NULL;
    char path[PATH_MAX];
    int ret = catanet_model_resolve(model, path, sizeof(path), err, es);
    if (ret < 0)
        return ret;
    /* the content decides, not the extension: a torch.save zip is a checkpoint, anything else
     * is read as safetensors (whose parser names what is wrong with it) */
    uint8_t magic[4] = { 0 };
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        got = fread(magic, 1, sizeof(magic), f);
        fclose(f);
    }
    CatanetSt *st;
    ret = catanet_pth_is_zip(magic, got) ? catanet_pth_open(&st, path, err, es) : catanet_st_open(&st, path, err, es);
    if (ret < 0)
        return ret;
    ret = catanet_model_from_st(out, st, path, err, es);
    catanet_st_close(st);
    return ret;
}

int catanet_model_probe(const char *model, CatanetModelInfo *info, char *err, size_t es)
{
    if (err && es)
        err[0] = 0;
    if (!model || !info)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "model or info is NULL");
    CatanetModel *m;
    int ret = catanet_model_load(&m, model, err, es);
    if (ret < 0)
        return ret;
    *info = m->info;
    catanet_model_free(m);
    return 0;
}

int catanet_model_entries(const CatanetModel *m, CatanetStEntry *e, char (*initted_names)[CATANET_NAME_MAX])
{
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        e[k].name = d->name;
        e[k].dtype = CATANET_DT_F32;
        e[k].ndim = d->ndim;
        for (int j = 0; j < d->ndim; j++)
            e[k].shape[j] = d->shape[j];
        e[k].data = m->arena + d->offset;
        k++;
        int g;
        /* official order: a TAB's own buffers (means, initted) come before its children */
        if (d->is_buffer && sscanf(d->name, "blocks.%d.0.means", &g) == 1 && g >= 0 && g < m->info.num_groups) {
            snprintf(initted_names[g], CATANET_NAME_MAX, "blocks.%d.0.initted", g);
            e[k].name = initted_names[g];
            e[k].dtype = CATANET_DT_BOOL;
            e[k].ndim = 0;
            e[k].data = &m->initted[g];
            k++;
        }
    }
    return k;
}

int catanet_model_save(const CatanetModel *m, const char *path, const char *const *keys, const char *const *vals,
                       int n_extra, char *err, size_t es)
{
    int n = m->n_tensors + m->info.num_groups;
    CatanetStEntry *e = calloc(n, sizeof(*e));
    const char **mk = calloc(n_extra + 1, sizeof(char *)), **mv = calloc(n_extra + 1, sizeof(char *));
    char (*bool_names)[CATANET_NAME_MAX] = calloc(m->info.num_groups + 1, CATANET_NAME_MAX);
    char *arch = catanet_arch_to_json(&m->info);
    int ret = 0, k = 0;
    if (!e || !mk || !mv || !bool_names || !arch) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    k = catanet_model_entries(m, e, bool_names);
    mk[0] = CATANET_ARCH_KEY;
    mv[0] = arch;
    for (int i = 0; i < n_extra; i++) {
        mk[i + 1] = keys[i];
        mv[i + 1] = vals[i];
    }
    ret = catanet_st_write(path, e, k, mk, mv, n_extra + 1, err, es);
done:
    free(arch);
    free(bool_names);
    free(mk);
    free(mv);
    free(e);
    return ret;
}

int catanet_model_extract(CatanetModel **out, const CatanetModel *src, const int *keep, int n_keep, char *err,
                          size_t es)
{
    *out = NULL;
    CatanetModelInfo info = src->info;
    if (n_keep < 0 || n_keep > CATANET_MAX_GROUPS)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "bad number of groups to keep: %d", n_keep);
    for (int i = 0; i < n_keep; i++) {
        if (keep[i] < 0 || keep[i] >= src->info.num_groups)
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "group %d does not exist (the model has %d)",
                                keep[i], src->info.num_groups);
        info.groups[i] = src->info.groups[keep[i]];
    }
    info.num_groups = n_keep;
    CatanetModel *m;
    int ret = catanet_model_create(&m, &info, err, es);
    if (ret < 0)
        return ret;
    /* copy by name: blocks.{j}.* / mid_convs.{j}.* come from the kept group keep[j] */
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        char name[CATANET_NAME_MAX + 16];
        int g, n = 0;
        if (sscanf(d->name, "blocks.%d.%n", &g, &n) == 1 && n > 0)
            snprintf(name, sizeof(name), "blocks.%d.%s", keep[g], d->name + n);
        else if (sscanf(d->name, "mid_convs.%d.%n", &g, &n) == 1 && n > 0)
            snprintf(name, sizeof(name), "mid_convs.%d.%s", keep[g], d->name + n);
        else
            snprintf(name, sizeof(name), "%s", d->name);
        const CatanetTensorDef *sd = catanet_model_find(src, name);
        if (!sd || sd->numel != d->numel) {
            catanet_model_free(m);
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "extract: source tensor '%s' missing or mis-shaped", name);
        }
        memcpy(m->arena + d->offset, src->arena + sd->offset, sizeof(float) * d->numel);
    }
    for (int j = 0; j < n_keep; j++)
        m->initted[j] = src->initted[keep[j]];
    *out = m;
    return 0;
}
