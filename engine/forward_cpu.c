/*
 * forward_cpu.c: CATANet inference on the CPU (spec §1.2-1.4), one image at a time.
 * Every buffer comes from one allocation made in catanet_cpu_plan_create; the forward allocates nothing.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "error.h"
#include "forward_cpu.h"

int catanet_min_side(const CatanetModelInfo *info)
{
    int s = 1;
    for (int i = 0; i < info->num_groups; i++)
        s = info->groups[i].patch_size > s ? info->groups[i].patch_size : s;
    return s;
}

void catanet_cpu_plan_free(CatanetCpuPlan *p)
{
    if (!p)
        return;
    free(p->block);
    free(p->cpu.work);
    free(p->kg);
    free(p->kgvg_mem);
    free(p);
}

int64_t catanet_cpu_plan_bytes(const CatanetCpuPlan *p)
{
    return (int64_t)(p->block_floats + p->kgvg_floats + p->cpu.work_per_thread * p->cpu.threads) * 4;
}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

int catanet_cpu_plan_create(CatanetCpuPlan **out, const CatanetModel *m, int width, int height, int threads,
                            char *err, size_t es)
{
    const CatanetModelInfo *a = &m->info;
    *out = NULL;
    if (width < 1 || height < 1 || width > 32768 || height > 32768)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "frame size %dx%d out of range (1..32768)", width, height);
    CatanetCpuPlan *p = calloc(1, sizeof(*p));
    if (!p)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    int min_side = catanet_min_side(a), s = a->upscale;
    p->model = m;
    p->in_w = width;
    p->in_h = height;
    p->w = width > min_side ? width : min_side;
    p->h = height > min_side ? height : min_side;
    p->scale = s;
    p->cpu.threads = threads > 0 ? threads : omp_get_max_threads();
    size_t N = (size_t)p->w * p->h, d = a->dim, qk = a->qk_dim, mlp = a->mlp_dim;
    int padded = p->w != width || p->h != height;

    /* per-thread scratch: the largest any op needs */
    size_t work = 0;
    CatanetConv2dArgs ca = { 1, p->h, p->w, (int)d, (int)d, 3 };
    work = max_sz(work, catanet_conv2d_work(&ca));
    for (int g = 0; g < a->num_groups; g++) {
        const CatanetGroupInfo *gi = &a->groups[g];
        CatanetIasaArgs ia = { (int)N, gi->group_size, gi->num_tokens, a->heads, a->qk_dim / a->heads, a->dim / a->heads };
        CatanetLrsaArgs la = { p->h, p->w, (int)d, gi->patch_size, a->heads, a->qk_dim / a->heads, a->dim / a->heads };
        work = max_sz(work, catanet_iasa_work(&ia));
        work = max_sz(work, catanet_lrsa_work(&la));
        work = max_sz(work, catanet_cluster_work((int)d, gi->num_tokens));
    }
    CatanetConv2dArgs first = { 1, p->h, p->w, 3, (int)d, 3 };
    work = max_sz(work, catanet_conv2d_work(&first));
    CatanetConvffnArgs fa = { p->h, p->w, (int)d, (int)mlp };
    work = max_sz(work, catanet_convffn_work(&fa));
    p->cpu.work_per_thread = (work + 15) & ~(size_t)15;
    p->cpu.work = aligned_alloc(64, sizeof(float) * p->cpu.work_per_thread * p->cpu.threads);

    /* activations */
    size_t sN = N * s * s;
    size_t sizes[] = {
        padded ? 3 * N : 0, padded ? 3 * sN : 0, /* in_pad, out_pad */
        N * 3, N * d, N * d, N * d, N * d,       /* xin, f0, f, res, t1 */
        N * qk, N * qk, N * d, N * d, N * d,     /* q, k, v, att, y */
        N * mlp, N * mlp,                        /* a, d */
        sN * d,                                  /* u: upconv output (x4: the second, at 2x, is largest) */
        sN * d, sN * 3,                          /* us, out */
        N, N,                                    /* cid, ord: int32, one 4-byte slot each */
    };
    enum { NBUF = sizeof(sizes) / sizeof(sizes[0]) };
    size_t total = 0, off[NBUF];
    for (int i = 0; i < NBUF; i++) {
        off[i] = total;
        total += (sizes[i] + 15) & ~(size_t)15;
    }
    p->block = aligned_alloc(64, sizeof(float) * (total ? total : 16));
    size_t kgvg = 0;
    for (int g = 0; g < a->num_groups; g++)
        kgvg += (size_t)a->groups[g].num_tokens * (qk + d);
    p->kg = calloc(2 * (a->num_groups ? a->num_groups : 1), sizeof(float *));
    float *kgvg_mem = NULL;
    if (p->block && p->kg) {
        /* the IRCA keys/values depend only on the weights: computed here, once */
        kgvg_mem = malloc(sizeof(float) * (kgvg ? kgvg : 1));
    }
    if (!p->cpu.work || !p->block || !p->kg || !kgvg_mem) {
        free(kgvg_mem);
        catanet_cpu_plan_free(p);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory planning a %dx%d frame (%zu MiB)", width,
                            height, (total * sizeof(float)) >> 20);
    }
    float *b = p->block;
    p->block_floats = total;
    p->kgvg_floats = kgvg;
    p->in_pad = padded ? b + off[0] : NULL;
    p->out_pad = padded ? b + off[1] : NULL;
    p->xin = b + off[2];
    p->f0 = b + off[3];
    p->f = b + off[4];
    p->res = b + off[5];
    p->t1 = b + off[6];
    p->q = b + off[7];
    p->k = b + off[8];
    p->v = b + off[9];
    p->att = b + off[10];
    p->y = b + off[11];
    p->a = b + off[12];
    p->d = b + off[13];
    p->u = b + off[14];
    p->us = b + off[15];
    p->out = b + off[16];
    p->cid = (int32_t *)(b + off[17]);
    p->ord = (int32_t *)(b + off[18]);
    p->vg = p->kg + (a->num_groups ? a->num_groups : 1);
    p->kgvg_mem = kgvg_mem;
    float *kv = kgvg_mem;
    for (int g = 0; g < a->num_groups; g++) {
        int M = a->groups[g].num_tokens;
        p->kg[g] = kv;
        p->vg[g] = kv + (size_t)M * qk;
        kv += (size_t)M * (qk + d);
        catanet_linear_fwd_ref(M, (int)d, (int)qk, m->groups[g].tab.means, m->groups[g].tab.irca_k, NULL, p->kg[g]);
        catanet_linear_fwd_ref(M, (int)d, (int)d, m->groups[g].tab.means, m->groups[g].tab.irca_v, NULL, p->vg[g]);
    }
    *out = p;
    return 0;
}

/* ---- op dispatch: reference or fast ---- */

static void linear(CatanetCpuPlan *p, int n, int in, int outc, const float *x, const float *w, const float *b,
                   float *y)
{
    if (p->use_ref)
        catanet_linear_fwd_ref(n, in, outc, x, w, b, y);
    else
        catanet_linear_fwd_cpu(&p->cpu, n, in, outc, x, w, b, y);
}

static void conv(CatanetCpuPlan *p, int h, int w, int cin, int cout, int k, const float *in, const float *wt,
                 const float *bias, float *out)
{
    CatanetConv2dArgs a = { 1, h, w, cin, cout, k };
    if (p->use_ref)
        catanet_conv2d_fwd_ref(&a, in, wt, bias, out);
    else
        catanet_conv2d_fwd_cpu(&p->cpu, &a, in, wt, bias, out);
}

static void layernorm(CatanetCpuPlan *p, int n, int c, const float *x, const float *g, const float *b, float *y)
{
    if (p->use_ref)
        catanet_layernorm_fwd_ref(n, c, x, g, b, y, NULL, NULL);
    else
        catanet_layernorm_fwd_cpu(&p->cpu, n, c, x, g, b, y);
}

static void add_inplace(CatanetCpuPlan *p, size_t n, float *x, const float *y)
{
    long chunks = (long)((n + 4095) / 4096);
#pragma omp parallel for num_threads(p->cpu.threads) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t e = (size_t)(c + 1) * 4096 < n ? (size_t)(c + 1) * 4096 : n;
        for (size_t i = (size_t)c * 4096; i < e; i++)
            x[i] += y[i];
    }
}

static void gelu(CatanetCpuPlan *p, size_t n, float *x)
{
    long chunks = (long)((n + 4095) / 4096);
#pragma omp parallel for num_threads(p->cpu.threads) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t e = (size_t)(c + 1) * 4096 < n ? (size_t)(c + 1) * 4096 : n;
        if (p->use_ref)
            catanet_gelu_fwd_ref(e - (size_t)c * 4096, x + (size_t)c * 4096, x + (size_t)c * 4096);
        else
            catanet_gelu_fwd_cpu(e - (size_t)c * 4096, x + (size_t)c * 4096, x + (size_t)c * 4096);
    }
}

/* x += fc2(a + gelu(dw(a))) with a = gelu(fc1(LN(x))): ConvFFN under PreNorm, residual added */
static void ffn(CatanetCpuPlan *p, const CatanetFfnW *w, float *x)
{
    const CatanetModelInfo *a = &p->model->info;
    int N = p->w * p->h, d = a->dim, mlp = a->mlp_dim;
    CatanetConvffnArgs fa = { p->h, p->w, d, mlp };
    CatanetConvffnWeights fw = { w->norm_w, w->norm_b, w->fc1_w, w->fc1_b, w->dw_w, w->dw_b, w->fc2_w, w->fc2_b };
    if (p->use_ref) { /* the reference op (kernels/cpu/convffn.c), the fused CUDA kernel's twin */
        catanet_convffn_fwd_ref(&fa, &fw, x, p->t1, p->a, p->d);
        return;
    }
    if (catanet_convffn_fwd_cpu(&p->cpu, &fa, &fw, x, p->a) == 0)
        return;
    /* depthwise weights wider than the fused path keeps: op by op */
    layernorm(p, N, d, x, w->norm_w, w->norm_b, p->t1);
    linear(p, N, d, mlp, p->t1, w->fc1_w, w->fc1_b, p->a);
    gelu(p, (size_t)N * mlp, p->a);
    CatanetDwconvArgs da = { 1, p->h, p->w, mlp, 5 };
    catanet_dwconv_fwd_cpu(&p->cpu, &da, p->a, w->dw_w, w->dw_b, p->d);
    gelu(p, (size_t)N * mlp, p->d);
    add_inplace(p, (size_t)N * mlp, p->a, p->d);
    linear(p, N, mlp, d, p->a, w->fc2_w, w->fc2_b, p->y);
    add_inplace(p, (size_t)N * d, x, p->y);
}

static void tab(CatanetCpuPlan *p, int g, float *x)
{
    const CatanetModelInfo *a = &p->model->info;
    const CatanetTabW *w = &p->model->groups[g].tab;
    int N = p->w * p->h, d = a->dim, qk = a->qk_dim, M = a->groups[g].num_tokens;
    layernorm(p, N, d, x, w->norm_w, w->norm_b, p->t1);
    if (p->use_ref)
        catanet_cluster_fwd_ref(N, d, M, p->t1, w->means, p->cid, p->ord);
    else
        catanet_cluster_fwd_cpu(&p->cpu, N, d, M, p->t1, w->means, p->cid, p->ord);
    linear(p, N, d, qk, p->t1, w->q, NULL, p->q);
    linear(p, N, d, qk, p->t1, w->k, NULL, p->k);
    linear(p, N, d, d, p->t1, w->v, NULL, p->v);
    CatanetIasaArgs ia = { N, a->groups[g].group_size, M, a->heads, qk / a->heads, d / a->heads };
    if (p->use_ref)
        catanet_iasa_fwd_ref(&ia, p->q, p->k, p->v, p->ord, p->kg[g], p->vg[g], p->att);
    else
        catanet_iasa_fwd_cpu(&p->cpu, &ia, p->q, p->k, p->v, p->ord, p->kg[g], p->vg[g], p->att, NULL);
    linear(p, N, d, d, p->att, w->proj, NULL, p->y);
    linear(p, N, d, d, p->y, w->conv1x1, NULL, p->att); /* the 1x1 conv is a channel linear */
    add_inplace(p, (size_t)N * d, x, p->att);
    ffn(p, &w->mlp, x);
}

static void lrsa(CatanetCpuPlan *p, int g, float *x)
{
    const CatanetModelInfo *a = &p->model->info;
    const CatanetLrsaW *w = &p->model->groups[g].lrsa;
    CatanetLrsaArgs la = { p->h, p->w, a->dim, a->groups[g].patch_size, a->heads, a->qk_dim / a->heads,
                           a->dim / a->heads };
    CatanetLrsaWeights lw = { w->norm_w, w->norm_b, w->q, w->k, w->v, w->proj };
    if (p->use_ref)
        catanet_lrsa_fwd_ref(&la, &lw, x, p->att);
    else
        catanet_lrsa_fwd_cpu(&p->cpu, &la, &lw, x, p->att);
    memcpy(x, p->att, sizeof(float) * (size_t)p->w * p->h * a->dim);
    ffn(p, &w->ffn, x);
}

static void hook_call(CatanetActHook hook, void *opaque, const char *name, const float *x, int h, int w, int c)
{
    if (hook)
        hook(opaque, name, x, h, w, c);
}

void catanet_cpu_forward_hooked(CatanetCpuPlan *p, const float *in, float *out, CatanetActHook hook, void *opaque)
{
    const CatanetModel *m = p->model;
    const CatanetModelInfo *a = &m->info;
    int H = p->h, W = p->w, N = H * W, d = a->dim, s = p->scale;
    size_t plane = (size_t)N;
    const float *src = in;
    char name[48];

    if (p->in_pad) { /* mirror the frame up to the minimum size (symmetric: the edge repeats) */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    p->in_pad[c * plane + (size_t)y * W + x] =
                        in[((size_t)c * p->in_h + catanet_mirror_index(y, p->in_h)) * p->in_w +
                           catanet_mirror_index(x, p->in_w)];
        src = p->in_pad;
    }
    for (int i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            p->xin[(size_t)i * 3 + c] = src[c * plane + i];

    conv(p, H, W, 3, d, 3, p->xin, m->first_w, m->first_b, p->f0);
    hook_call(hook, opaque, "first_conv", p->f0, H, W, d);
    memcpy(p->f, p->f0, sizeof(float) * (size_t)N * d);
    for (int g = 0; g < a->num_groups; g++) {
        memcpy(p->res, p->f, sizeof(float) * (size_t)N * d);
        tab(p, g, p->f);
        snprintf(name, sizeof(name), "rg%d.tab", g);
        hook_call(hook, opaque, name, p->f, H, W, d);
        lrsa(p, g, p->f);
        snprintf(name, sizeof(name), "rg%d.lrsa", g);
        hook_call(hook, opaque, name, p->f, H, W, d);
        conv(p, H, W, d, d, 3, p->f, m->groups[g].mid_w, m->groups[g].mid_b, p->y);
        snprintf(name, sizeof(name), "rg%d.mid_conv", g);
        hook_call(hook, opaque, name, p->y, H, W, d);
        memcpy(p->f, p->res, sizeof(float) * (size_t)N * d);
        add_inplace(p, (size_t)N * d, p->f, p->y);
    }
    add_inplace(p, (size_t)N * d, p->f, p->f0);

    /* upsampler: conv -> PixelShuffle -> LeakyReLU (twice by 2 for x4) */
    const float *feat = p->f;
    int fh = H, fw = W;
    for (int stage = 0; stage < 2 && m->up_w[stage]; stage++) {
        int r = s == 4 ? 2 : s;
        /* the conv reads feat (f, or us after the first x4 stage) before us is overwritten */
        conv(p, fh, fw, d, d * r * r, 3, feat, m->up_w[stage], m->up_b[stage], p->u);
        CatanetShuffleArgs sa = { 1, fh, fw, d, r };
        catanet_pixel_shuffle_fwd_ref(&sa, p->u, p->us);
        fh *= r;
        fw *= r;
        catanet_lrelu_fwd_ref((size_t)fh * fw * d, p->us, p->us);
        feat = p->us;
    }
    hook_call(hook, opaque, "upsampled", feat, fh, fw, d);
    int oh = H * s, ow = W * s;
    conv(p, oh, ow, d, 3, 3, feat, m->last_w, m->last_b, p->out);

    /* out = last_conv(...) + bilinear(x), back to planar, cropped to the caller's size */
    float *dst = p->out_pad ? p->out_pad : out;
    catanet_bilinear_fwd_ref(3, H, W, s, src, dst);
    size_t oplane = (size_t)oh * ow;
    for (size_t i = 0; i < oplane; i++)
        for (int c = 0; c < 3; c++)
            dst[c * oplane + i] += p->out[i * 3 + c];
    if (p->out_pad) {
        int ch = p->in_h * s, cw = p->in_w * s;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < ch; y++)
                memcpy(out + ((size_t)c * ch + y) * cw, p->out_pad + c * oplane + (size_t)y * ow,
                       sizeof(float) * cw);
    }
}

void catanet_cpu_forward(CatanetCpuPlan *p, const float *in, float *out)
{
    catanet_cpu_forward_hooked(p, in, out, NULL, NULL);
}
