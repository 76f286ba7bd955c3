/*
 * model_train.c: CATANet training-mode forward and backward on a batch (spec §1.2-1.4, §1.7).
 * catanet_train_forward and catanet_train_backward are flat sequences of kernel calls in mirror
 * order: read them side by side. All memory comes from catanet_train_plan_create.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_train.h"

void catanet_model_zero(CatanetModel *m)
{
    memset(m->arena, 0, sizeof(float) * m->arena_floats);
}

void catanet_train_plan_free(CatanetTrainPlan *p)
{
    if (!p)
        return;
    free(p->block);
    free(p->saved_block);
    free(p->scratch);
    free(p->cpu.work);
    free(p->g);
    free(p);
}

static size_t mx(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* ---- planning: a list of sizes, then one block ---- */
typedef struct Alloc {
    size_t total, align;
    float *base;
} Alloc;

/* first pass (base NULL): counts; second pass: hands out aligned slices */
static float *take(Alloc *al, size_t n)
{
    float *p = al->base ? al->base + al->total : NULL;
    al->total += (n + al->align - 1) & ~(al->align - 1);
    return p;
}

static void plan_ffn(Alloc *al, CatanetFfnAct *f, size_t BN, size_t C, size_t mlp)
{
    f->ln = take(al, BN * C);
    f->mean = take(al, BN);
    f->rstd = take(al, BN);
    f->a = take(al, BN * mlp);
    f->d = take(al, BN * mlp);
}

void catanet_train_conv_shapes(const CatanetModelInfo *a, int batch, int h, int w, CatanetConv2dArgs convs[5])
{
    int C = a->dim, s = a->upscale, r = s == 4 ? 2 : s;
    CatanetConv2dArgs c[5] = {
        { batch, h, w, 3, C, 3 },                 /* first_conv */
        { batch, h, w, C, C, 3 },                 /* mid convs */
        { batch, h, w, C, C * r * r, 3 },         /* upconv (first stage) */
        { batch, h * r, w * r, C, C * r * r, 3 }, /* upconv2 (x4) */
        { batch, h * s, w * s, C, 3, 3 },         /* last_conv */
    };
    memcpy(convs, c, sizeof(c));
}

size_t catanet_train_plan_layout(CatanetTrainPlan *p, float *base, size_t align)
{
    Alloc a0 = { 0, align, base }, *al = &a0;
    const CatanetModelInfo *a = &p->model->info;
    size_t B = p->batch, N = (size_t)p->h * p->w, BN = B * N, C = a->dim, qk = a->qk_dim, mlp = a->mlp_dim;
    size_t s = p->scale, sBN = BN * s * s, Mmax = 1;
    for (int g = 0; g < a->num_groups; g++) {
        CatanetGroupAct *ga = &p->g[g];
        size_t M = a->groups[g].num_tokens;
        Mmax = mx(Mmax, M);
        ga->tab_in = take(al, BN * C);
        ga->xn = take(al, BN * C);
        ga->xn_mean = take(al, BN);
        ga->xn_rstd = take(al, BN);
        ga->xu = take(al, BN * C);
        ga->xu_norm = take(al, BN);
        ga->xg = take(al, M * C);
        ga->sum5 = take(al, M * C);
        ga->bucket5 = (int32_t *)take(al, BN);
        ga->count5 = (int32_t *)take(al, M);
        ga->kg = take(al, M * qk);
        ga->vg = take(al, M * C);
        ga->ord = (int32_t *)take(al, BN);
        ga->q = take(al, BN * qk);
        ga->k = take(al, BN * qk);
        ga->v = take(al, BN * C);
        ga->att = take(al, BN * C);
        ga->y1 = take(al, BN * C);
        ga->t2 = take(al, BN * C);
        plan_ffn(al, &ga->ffn1, BN, C, mlp);
        ga->lrsa_in = take(al, BN * C);
        ga->x1 = take(al, BN * C);
        plan_ffn(al, &ga->ffn2, BN, C, mlp);
        ga->mid_in = take(al, BN * C);
    }
    p->xin = take(al, BN * 3);
    p->f0 = take(al, BN * C);
    p->fsum = take(al, BN * C);
    int stages = s == 4 ? 2 : s > 1 ? 1 : 0, r = s == 4 ? 2 : (int)s;
    size_t pix = BN;
    for (int st = 0; st < stages; st++) {
        p->up_u[st] = take(al, pix * C * r * r);
        pix *= (size_t)r * r;
        p->up_s[st] = take(al, pix * C);
    }
    p->out_nhwc = take(al, sBN * 3);
    p->out = take(al, sBN * 3);
    p->dout = take(al, sBN * 3);
    for (int i = 0; i < 4; i++) {
        p->tm[i] = take(al, BN * mlp);
        p->tc[i] = take(al, BN * C);
    }
    p->dq = take(al, BN * qk);
    p->dk = take(al, BN * qk);
    p->dv = take(al, BN * C);
    p->dkg = take(al, Mmax * qk);
    p->dvg = take(al, Mmax * C);
    p->dxg = take(al, Mmax * C);
    p->cwork = take(al, Mmax * C);
    p->c0 = take(al, Mmax * C);
    p->count_tmp = (int32_t *)take(al, Mmax);
    p->bucket_tmp = (int32_t *)take(al, BN);
    /* the upsampler's gradients at the output size, then three [BN,C] slices each (x1 has sBN = BN) */
    p->dbig[0] = take(al, mx(sBN * mx(C, 3), 3 * BN * C));
    p->dbig[1] = take(al, mx(sBN * C, 3 * BN * C));
    return al->total;
}

int catanet_train_plan_create(CatanetTrainPlan **out, CatanetModel *m, int batch, int h, int w,
                              int threads, int use_ref, char *err, size_t es)
{
    const CatanetModelInfo *a = &m->info;
    *out = NULL;
    int min_side = 1;
    for (int g = 0; g < a->num_groups; g++)
        min_side = a->groups[g].patch_size > min_side ? a->groups[g].patch_size : min_side;
    if (batch < 1 || h < min_side || w < min_side || h > 4096 || w > 4096)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "training batch %d of %dx%d: need batch >= 1 and sides in %d..4096 (the largest LRSA patch)",
                            batch, w, h, min_side);
    CatanetTrainPlan *p = calloc(1, sizeof(*p));
    if (!p)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    p->model = m;
    p->batch = batch;
    p->h = h;
    p->w = w;
    p->scale = a->upscale;
    p->use_ref = use_ref;
    p->hr_weight = 1.0f;
    p->cpu.threads = threads > 0 ? threads : omp_get_max_threads();
    p->g = calloc(a->num_groups ? a->num_groups : 1, sizeof(*p->g));
    int N = h * w, C = a->dim;
    /* per-thread work and shared scratch: the largest any op needs */
    size_t work = 16, scr = 16, saved = 0, saved_at[2 * (a->num_groups ? a->num_groups : 1)];
    CatanetConv2dArgs convs[5];
    catanet_train_conv_shapes(a, batch, h, w, convs);
    for (int i = 0; i < 5; i++) {
        work = mx(work, catanet_conv2d_work(&convs[i]));
        work = mx(work, catanet_conv2d_bwd_work(&convs[i]));
        scr = mx(scr, catanet_conv2d_bwd_scratch(&convs[i]));
    }
    CatanetDwconvArgs dw = { batch, h, w, a->mlp_dim, 5 };
    scr = mx(scr, catanet_dwconv_bwd_scratch(&dw));
    scr = mx(scr, catanet_layernorm_bwd_scratch(batch * N, C));
    for (int g = 0; g < a->num_groups; g++) {
        const CatanetGroupInfo *gi = &a->groups[g];
        CatanetIasaArgs ia = { N, gi->group_size, gi->num_tokens, a->heads, a->qk_dim / a->heads, C / a->heads };
        CatanetLrsaArgs la = { h, w, C, gi->patch_size, a->heads, a->qk_dim / a->heads, C / a->heads };
        work = mx(work, catanet_iasa_work(&ia));
        work = mx(work, catanet_iasa_bwd_work(&ia));
        work = mx(work, catanet_lrsa_work(&la));
        work = mx(work, catanet_lrsa_train_work(&la));
        work = mx(work, catanet_cluster_work(C, gi->num_tokens));
        work = mx(work, catanet_center_iter_work(gi->num_tokens));
        scr = mx(scr, catanet_iasa_bwd_task_work(&ia));
        scr = mx(scr, batch * catanet_lrsa_task_work(&la));
        saved_at[2 * g] = saved; /* the attentions' saved activations: offsets in saved_block */
        saved += use_ref ? 0 : (batch * catanet_iasa_saved(&ia) + 15) & ~(size_t)15;
        saved_at[2 * g + 1] = saved;
        saved += use_ref ? 0 : (batch * catanet_lrsa_saved(&la) + 15) & ~(size_t)15;
    }
    p->cpu.work_per_thread = (work + 15) & ~(size_t)15;
    p->cpu.work = aligned_alloc(64, sizeof(float) * p->cpu.work_per_thread * p->cpu.threads);
    p->scratch_floats = (scr + 15) & ~(size_t)15;
    p->scratch = aligned_alloc(64, sizeof(float) * p->scratch_floats);
    size_t total = p->g ? catanet_train_plan_layout(p, NULL, 16) : 0;
    p->block = p->g ? aligned_alloc(64, sizeof(float) * (total ? total : 16)) : NULL;
    p->saved_block = saved ? aligned_alloc(64, sizeof(float) * saved) : NULL;
    if (!p->g || !p->cpu.work || !p->scratch || !p->block || (saved && !p->saved_block)) {
        catanet_train_plan_free(p);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory planning training on %d x %dx%d (%zu MiB)",
                            batch, w, h, ((total + saved + scr) * sizeof(float)) >> 20);
    }
    for (int g = 0; saved && g < a->num_groups; g++) {
        p->g[g].iasa_saved = p->saved_block + saved_at[2 * g];
        p->g[g].lrsa_saved = p->saved_block + saved_at[2 * g + 1];
    }
    memset(p->block, 0, sizeof(float) * total);
    catanet_train_plan_layout(p, p->block, 16);
    *out = p;
    return 0;
}

/* ---- op dispatch: reference or fast ---- */

static void linear(CatanetTrainPlan *p, int n, int in, int outc, const float *x, const float *w, const float *b,
                   float *y)
{
    if (p->use_ref)
        catanet_linear_fwd_ref(n, in, outc, x, w, b, y);
    else
        catanet_linear_fwd_cpu(&p->cpu, n, in, outc, x, w, b, y);
}

static void linear_bwd(CatanetTrainPlan *p, int n, int in, int outc, const float *x, const float *w,
                       const float *dy, float *dx, float *dw, float *db)
{
    if (p->use_ref)
        catanet_linear_bwd_ref(n, in, outc, x, w, dy, dx, dw, db);
    else
        catanet_linear_bwd_cpu(&p->cpu, n, in, outc, x, w, dy, dx, dw, db);
}

static void conv(CatanetTrainPlan *p, int h, int w, int cin, int cout, const float *in, const float *wt,
                 const float *bias, float *out)
{
    CatanetConv2dArgs a = { p->batch, h, w, cin, cout, 3 };
    if (p->use_ref)
        catanet_conv2d_fwd_ref(&a, in, wt, bias, out);
    else
        catanet_conv2d_fwd_cpu(&p->cpu, &a, in, wt, bias, out);
}

static void conv_bwd(CatanetTrainPlan *p, int h, int w, int cin, int cout, const float *in, const float *wt,
                     const float *dout, float *din, float *dwt, float *dbias)
{
    CatanetConv2dArgs a = { p->batch, h, w, cin, cout, 3 };
    if (p->use_ref)
        catanet_conv2d_bwd_ref(&a, in, wt, dout, din, dwt, dbias);
    else
        catanet_conv2d_bwd_cpu(&p->cpu, &a, in, wt, dout, din, dwt, dbias, p->scratch);
}

static void layernorm(CatanetTrainPlan *p, int n, int c, const float *x, const float *g, const float *b,
                      float *y, float *mean, float *rstd)
{
    if (p->use_ref)
        catanet_layernorm_fwd_ref(n, c, x, g, b, y, mean, rstd);
    else
        catanet_layernorm_fwd_stats_cpu(&p->cpu, n, c, x, g, b, y, mean, rstd);
}

static void layernorm_bwd(CatanetTrainPlan *p, int n, int c, const float *x, const float *g, const float *mean,
                          const float *rstd, const float *dy, float *dx, float *dg, float *db)
{
    if (p->use_ref)
        catanet_layernorm_bwd_ref(n, c, x, g, mean, rstd, dy, dx, dg, db);
    else
        catanet_layernorm_bwd_cpu(&p->cpu, n, c, x, g, mean, rstd, dy, dx, dg, db, p->scratch);
}

#define EW_CHUNK 4096
/* elementwise helpers in fixed chunks (results independent of the thread count) */
static void ew_gelu(CatanetTrainPlan *p, size_t n, const float *x, float *y)
{
    long chunks = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for num_threads(p->cpu.threads) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t b = (size_t)c * EW_CHUNK, e = b + EW_CHUNK < n ? b + EW_CHUNK : n;
        if (p->use_ref)
            catanet_gelu_fwd_ref(e - b, x + b, y + b);
        else
            catanet_gelu_fwd_cpu(e - b, x + b, y + b);
    }
}

static void ew_gelu_bwd(CatanetTrainPlan *p, size_t n, const float *x, const float *dy, float *dx)
{
    long chunks = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for num_threads(p->cpu.threads) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t b = (size_t)c * EW_CHUNK, e = b + EW_CHUNK < n ? b + EW_CHUNK : n;
        if (p->use_ref)
            catanet_gelu_bwd_ref(e - b, x + b, dy + b, dx + b);
        else
            catanet_gelu_bwd_cpu(e - b, x + b, dy + b, dx + b);
    }
}

/* y = a + b (y may alias a) */
static void ew_add(CatanetTrainPlan *p, size_t n, const float *a, const float *b, float *y)
{
    long chunks = (long)((n + EW_CHUNK - 1) / EW_CHUNK);
#pragma omp parallel for num_threads(p->cpu.threads) schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t s = (size_t)c * EW_CHUNK, e = s + EW_CHUNK < n ? s + EW_CHUNK : n;
        for (size_t i = s; i < e; i++)
            y[i] = a[i] + b[i];
    }
}

/* ---- ConvFFN under PreNorm with its residual: out = x + fc2(ga + gelu(dw(ga))), ga = gelu(fc1(LN(x))) ---- */
static void ffn_fwd(CatanetTrainPlan *p, const CatanetFfnW *w, CatanetFfnAct *f, const float *x, float *out)
{
    const CatanetModelInfo *a = &p->model->info;
    int BN = p->batch * p->h * p->w, C = a->dim, mlp = a->mlp_dim;
    float *ga = p->tm[0], *gd = p->tm[1];
    layernorm(p, BN, C, x, w->norm_w, w->norm_b, f->ln, f->mean, f->rstd);
    linear(p, BN, C, mlp, f->ln, w->fc1_w, w->fc1_b, f->a);
    ew_gelu(p, (size_t)BN * mlp, f->a, ga);
    CatanetDwconvArgs da = { p->batch, p->h, p->w, mlp, 5 };
    if (p->use_ref)
        catanet_dwconv_fwd_ref(&da, ga, w->dw_w, w->dw_b, f->d);
    else
        catanet_dwconv_fwd_cpu(&p->cpu, &da, ga, w->dw_w, w->dw_b, f->d);
    ew_gelu(p, (size_t)BN * mlp, f->d, gd);
    ew_add(p, (size_t)BN * mlp, ga, gd, gd);
    linear(p, BN, mlp, C, gd, w->fc2_w, w->fc2_b, p->tc[0]);
    ew_add(p, (size_t)BN * C, x, p->tc[0], out);
}

/* backward of ffn_fwd: dx += dout + (FFN path); gw gets the weight gradients */
static void ffn_bwd(CatanetTrainPlan *p, const CatanetFfnW *w, const CatanetFfnW *gw, const CatanetFfnAct *f,
                    const float *x, const float *dout, float *dx)
{
    const CatanetModelInfo *a = &p->model->info;
    int BN = p->batch * p->h * p->w, C = a->dim, mlp = a->mlp_dim;
    size_t nm = (size_t)BN * mlp;
    float *ga = p->tm[0], *s = p->tm[1], *ds = p->tm[2], *dd = p->tm[3], *dln = p->tc[0];
    /* recompute ga = gelu(a), s = ga + gelu(d) */
    ew_gelu(p, nm, f->a, ga);
    ew_gelu(p, nm, f->d, s);
    ew_add(p, nm, ga, s, s);
    /* out = x + fc2(s) */
    memset(ds, 0, sizeof(float) * nm);
    linear_bwd(p, BN, mlp, C, s, w->fc2_w, dout, ds, gw->fc2_w, gw->fc2_b);
    /* s = ga + gelu(d): dd = gelu'(d) ds; the ga path gets ds directly */
    memset(dd, 0, sizeof(float) * nm);
    ew_gelu_bwd(p, nm, f->d, ds, dd);
    /* d = dw(ga): ds += dw_bwd(dd) (ds now holds dga) */
    CatanetDwconvArgs da = { p->batch, p->h, p->w, mlp, 5 };
    if (p->use_ref)
        catanet_dwconv_bwd_ref(&da, ga, w->dw_w, dd, ds, gw->dw_w, gw->dw_b);
    else
        catanet_dwconv_bwd_cpu(&p->cpu, &da, ga, w->dw_w, dd, ds, gw->dw_w, gw->dw_b, p->scratch);
    /* ga = gelu(a) */
    memset(dd, 0, sizeof(float) * nm);
    ew_gelu_bwd(p, nm, f->a, ds, dd);
    /* a = fc1(ln) */
    memset(dln, 0, sizeof(float) * (size_t)BN * C);
    linear_bwd(p, BN, C, mlp, f->ln, w->fc1_w, dd, dln, gw->fc1_w, gw->fc1_b);
    /* ln = LN(x), plus the residual */
    layernorm_bwd(p, BN, C, x, w->norm_w, f->mean, f->rstd, dln, dx, gw->norm_w, gw->norm_b);
    ew_add(p, (size_t)BN * C, dx, dout, dx);
}

/* ---- TAB (training mode, spec §1.3) ---- */

static void center_iter(CatanetTrainPlan *p, int n, int c, int m, const float *xu, const float *cu_in,
                        int32_t *bucket, float *sum, int32_t *count, float *cu_out)
{
    if (p->use_ref)
        catanet_center_iter_fwd_ref(n, c, m, xu, cu_in, bucket, sum, count, cu_out);
    else
        catanet_center_iter_fwd_cpu(&p->cpu, n, c, m, xu, cu_in, bucket, sum, count, cu_out);
}

static void tab_fwd(CatanetTrainPlan *p, int gi, const float *x, float *out)
{
    CatanetModel *mdl = p->model;
    const CatanetModelInfo *a = &mdl->info;
    CatanetTabW *w = &mdl->groups[gi].tab;
    CatanetGroupAct *g = &p->g[gi];
    int N = p->h * p->w, BN = p->batch * N, C = a->dim, qk = a->qk_dim, M = a->groups[gi].num_tokens;
    memcpy(g->tab_in, x, sizeof(float) * (size_t)BN * C);
    layernorm(p, BN, C, x, w->norm_w, w->norm_b, g->xn, g->xn_mean, g->xn_rstd);
    catanet_normalize_fwd_ref(BN, C, g->xn, g->xu, g->xu_norm);
    /* centers: avg-pool init on the first step, else the buffer; 4 refinements without gradient */
    float *c = p->c0, *cu = p->cwork;
    if (!mdl->initted[gi])
        catanet_center_init_ref(p->batch, N, C, M, g->xn, c);
    else
        memcpy(c, w->means, sizeof(float) * (size_t)M * C);
    for (int it = 0; it < 4; it++) {
        catanet_normalize_fwd_ref(M, C, c, cu, NULL);
        center_iter(p, BN, C, M, g->xu, cu, p->bucket_tmp, g->sum5, p->count_tmp, c);
    }
    /* the fifth, differentiable refinement: xg */
    catanet_normalize_fwd_ref(M, C, c, cu, NULL);
    center_iter(p, BN, C, M, g->xu, cu, g->bucket5, g->sum5, g->count5, g->xg);
    /* IRCA keys/values from the refined unit centers */
    linear(p, M, C, qk, g->xg, w->irca_k, NULL, g->kg);
    linear(p, M, C, C, g->xg, w->irca_v, NULL, g->vg);
    /* CATA grouping by the refined centers (detached), per image */
    for (int b = 0; b < p->batch; b++) {
        const float *xnb = g->xn + (size_t)b * N * C;
        if (p->use_ref)
            catanet_cluster_fwd_ref(N, C, M, xnb, g->xg, p->bucket_tmp, g->ord + (size_t)b * N);
        else
            catanet_cluster_fwd_cpu(&p->cpu, N, C, M, xnb, g->xg, p->bucket_tmp, g->ord + (size_t)b * N);
    }
    linear(p, BN, C, qk, g->xn, w->q, NULL, g->q);
    linear(p, BN, C, qk, g->xn, w->k, NULL, g->k);
    linear(p, BN, C, C, g->xn, w->v, NULL, g->v);
    CatanetIasaArgs ia = { N, a->groups[gi].group_size, M, a->heads, qk / a->heads, C / a->heads };
    for (int b = 0; b < p->batch; b++) {
        size_t oq = (size_t)b * N * qk, ov = (size_t)b * N * C;
        if (p->use_ref)
            catanet_iasa_fwd_ref(&ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg, g->vg,
                                 g->att + ov);
        else
            catanet_iasa_fwd_cpu(&p->cpu, &ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg,
                                 g->vg, g->att + ov, g->iasa_saved + b * catanet_iasa_saved(&ia));
    }
    linear(p, BN, C, C, g->att, w->proj, NULL, g->y1);
    linear(p, BN, C, C, g->y1, w->conv1x1, NULL, p->tc[1]); /* the 1x1 conv is a channel linear */
    ew_add(p, (size_t)BN * C, x, p->tc[1], g->t2);
    ffn_fwd(p, &w->mlp, &g->ffn1, g->t2, out);
}

/* the EMA of the centers, after the block's forward (no gradient) */
static void tab_update_means(CatanetTrainPlan *p, int gi)
{
    CatanetModel *mdl = p->model;
    int M = mdl->info.groups[gi].num_tokens, C = mdl->info.dim;
    float *means = mdl->groups[gi].tab.means;
    const float *xg = p->g[gi].xg;
    if (!mdl->initted[gi]) {
        memcpy(means, xg, sizeof(float) * (size_t)M * C);
        mdl->initted[gi] = 1;
    } else {
        for (size_t i = 0; i < (size_t)M * C; i++)
            means[i] = means[i] * 0.999f + xg[i] * (1.0f - 0.999f);
    }
}

static void tab_bwd(CatanetTrainPlan *p, int gi, const float *dout, float *dx, CatanetModel *grads)
{
    CatanetModel *mdl = p->model;
    const CatanetModelInfo *a = &mdl->info;
    const CatanetTabW *w = &mdl->groups[gi].tab;
    const CatanetTabW *gw = &grads->groups[gi].tab;
    CatanetGroupAct *g = &p->g[gi];
    int N = p->h * p->w, BN = p->batch * N, C = a->dim, qk = a->qk_dim, M = a->groups[gi].num_tokens;
    size_t nc = (size_t)BN * C;
    /* out = t2 + FFN(t2): dt2 (in tc[3]) */
    float *dt2 = p->tc[3];
    memset(dt2, 0, sizeof(float) * nc);
    ffn_bwd(p, &w->mlp, &gw->mlp, &g->ffn1, g->t2, dout, dt2);
    /* t2 = x + conv1x1(proj(att)) */
    ew_add(p, nc, dx, dt2, dx);
    float *dy1 = p->tc[1], *datt = p->tc[2];
    memset(dy1, 0, sizeof(float) * nc);
    linear_bwd(p, BN, C, C, g->y1, w->conv1x1, dt2, dy1, gw->conv1x1, NULL);
    memset(datt, 0, sizeof(float) * nc);
    linear_bwd(p, BN, C, C, g->att, w->proj, dy1, datt, gw->proj, NULL);
    /* IASA + IRCA */
    memset(p->dq, 0, sizeof(float) * (size_t)BN * qk);
    memset(p->dk, 0, sizeof(float) * (size_t)BN * qk);
    memset(p->dv, 0, sizeof(float) * nc);
    memset(p->dkg, 0, sizeof(float) * (size_t)M * qk);
    memset(p->dvg, 0, sizeof(float) * (size_t)M * C);
    CatanetIasaArgs ia = { N, a->groups[gi].group_size, M, a->heads, qk / a->heads, C / a->heads };
    for (int b = 0; b < p->batch; b++) {
        size_t oq = (size_t)b * N * qk, ov = (size_t)b * N * C;
        if (p->use_ref)
            catanet_iasa_bwd_ref(&ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg, g->vg,
                                 datt + ov, p->dq + oq, p->dk + oq, p->dv + ov, p->dkg, p->dvg);
        else
            catanet_iasa_bwd_cpu(&p->cpu, &ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg,
                                 g->vg, g->att + ov, g->iasa_saved + b * catanet_iasa_saved(&ia), datt + ov,
                                 p->dq + oq, p->dk + oq, p->dv + ov, p->dkg, p->dvg, p->scratch);
    }
    /* q, k, v = xn W^T: dxn in tc[0] */
    float *dxn = p->tc[0];
    memset(dxn, 0, sizeof(float) * nc);
    linear_bwd(p, BN, C, qk, g->xn, w->q, p->dq, dxn, gw->q, NULL);
    linear_bwd(p, BN, C, qk, g->xn, w->k, p->dk, dxn, gw->k, NULL);
    linear_bwd(p, BN, C, C, g->xn, w->v, p->dv, dxn, gw->v, NULL);
    /* kg, vg = xg W^T; then through xg = normalize(sum of normalize(xn) over members) into xn */
    memset(p->dxg, 0, sizeof(float) * (size_t)M * C);
    catanet_linear_bwd_ref(M, C, qk, g->xg, w->irca_k, p->dkg, p->dxg, gw->irca_k, NULL);
    catanet_linear_bwd_ref(M, C, C, g->xg, w->irca_v, p->dvg, p->dxg, gw->irca_v, NULL);
    float *dxu = p->dv; /* free again; [BN,C] */
    memset(dxu, 0, sizeof(float) * nc);
    catanet_center_iter_bwd_ref(BN, C, M, g->bucket5, g->sum5, g->count5, g->xg, p->dxg, p->cwork, dxu);
    catanet_normalize_bwd_ref(BN, C, g->xu, g->xu_norm, dxu, dxn);
    /* xn = LN(x) */
    layernorm_bwd(p, BN, C, g->tab_in, w->norm_w, g->xn_mean, g->xn_rstd, dxn, dx, gw->norm_w, gw->norm_b);
}

/* ---- LRSA ---- */

static void lrsa_fwd(CatanetTrainPlan *p, int gi, const float *x, float *out)
{
    const CatanetModelInfo *a = &p->model->info;
    const CatanetLrsaW *w = &p->model->groups[gi].lrsa;
    CatanetGroupAct *g = &p->g[gi];
    int N = p->h * p->w, C = a->dim;
    memcpy(g->lrsa_in, x, sizeof(float) * (size_t)p->batch * N * C);
    CatanetLrsaArgs la = { p->h, p->w, C, a->groups[gi].patch_size, a->heads, a->qk_dim / a->heads, C / a->heads };
    CatanetLrsaWeights lw = { w->norm_w, w->norm_b, w->q, w->k, w->v, w->proj };
    if (p->use_ref)
        for (int b = 0; b < p->batch; b++)
            catanet_lrsa_fwd_ref(&la, &lw, x + (size_t)b * N * C, g->x1 + (size_t)b * N * C);
    else
        catanet_lrsa_fwd_train_cpu(&p->cpu, &la, &lw, p->batch, x, g->x1, g->lrsa_saved, p->scratch);
    ffn_fwd(p, &w->ffn, &g->ffn2, g->x1, out);
}

static void lrsa_bwd(CatanetTrainPlan *p, int gi, const float *dout, float *dx, CatanetModel *grads)
{
    const CatanetModelInfo *a = &p->model->info;
    const CatanetLrsaW *w = &p->model->groups[gi].lrsa;
    const CatanetLrsaW *gw = &grads->groups[gi].lrsa;
    CatanetGroupAct *g = &p->g[gi];
    int N = p->h * p->w, C = a->dim;
    float *dx1 = p->tc[3];
    memset(dx1, 0, sizeof(float) * (size_t)p->batch * N * C);
    ffn_bwd(p, &w->ffn, &gw->ffn, &g->ffn2, g->x1, dout, dx1);
    CatanetLrsaArgs la = { p->h, p->w, C, a->groups[gi].patch_size, a->heads, a->qk_dim / a->heads, C / a->heads };
    CatanetLrsaWeights lw = { w->norm_w, w->norm_b, w->q, w->k, w->v, w->proj };
    CatanetLrsaGrads lg = { gw->norm_w, gw->norm_b, gw->q, gw->k, gw->v, gw->proj };
    if (p->use_ref)
        for (int b = 0; b < p->batch; b++) {
            size_t o = (size_t)b * N * C;
            catanet_lrsa_bwd_ref(&la, &lw, g->lrsa_in + o, dx1 + o, dx + o, &lg);
        }
    else
        catanet_lrsa_bwd_cpu(&p->cpu, &la, &lw, p->batch, g->lrsa_in, g->lrsa_saved, dx1, dx, &lg, p->scratch);
}

/* ---- the whole network ---- */

double catanet_train_forward(CatanetTrainPlan *p, const float *lr, const float *hr)
{
    CatanetModel *m = p->model;
    const CatanetModelInfo *a = &m->info;
    int H = p->h, W = p->w, N = H * W, B = p->batch, C = a->dim, s = p->scale;
    size_t BN = (size_t)B * N;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            for (int c = 0; c < 3; c++)
                p->xin[((size_t)b * N + i) * 3 + c] = lr[((size_t)b * 3 + c) * N + i];
    conv(p, H, W, 3, C, p->xin, m->first_w, m->first_b, p->f0);
    float *f = p->fsum; /* the running features live in fsum until the long skip */
    memcpy(f, p->f0, sizeof(float) * BN * C);
    for (int g = 0; g < a->num_groups; g++) {
        CatanetGroupAct *ga = &p->g[g];
        tab_fwd(p, g, f, ga->lrsa_in);          /* tab_in keeps the residual copy of f */
        lrsa_fwd(p, g, ga->lrsa_in, ga->mid_in);
        conv(p, H, W, C, C, ga->mid_in, m->groups[g].mid_w, m->groups[g].mid_b, p->tc[2]);
        if (p->gate) /* pruning: the gated residual (branch form; m = 0 gives h_g bit for bit) */
            catanet_gate_branch_fwd_ref(B, (size_t)N * C, p->gate + (size_t)g * B, ga->tab_in, p->tc[2], f);
        else
            ew_add(p, BN * C, ga->tab_in, p->tc[2], f);
    }
    if (p->body_out)
        memcpy(p->body_out, f, sizeof(float) * BN * C);
    ew_add(p, BN * C, f, p->f0, f);
    const float *feat = f;
    int fh = H, fw = W;
    int stages = s == 4 ? 2 : s > 1 ? 1 : 0, r = s == 4 ? 2 : s;
    for (int st = 0; st < stages; st++) {
        p->up_in[st] = (float *)feat;
        conv(p, fh, fw, C, C * r * r, feat, m->up_w[st], m->up_b[st], p->up_u[st]);
        CatanetShuffleArgs sa = { B, fh, fw, C, r };
        catanet_pixel_shuffle_fwd_ref(&sa, p->up_u[st], p->up_s[st]);
        fh *= r;
        fw *= r;
        catanet_lrelu_fwd_ref((size_t)B * fh * fw * C, p->up_s[st], p->up_s[st]);
        feat = p->up_s[st];
    }
    p->feat = (float *)feat;
    int oh = H * s, ow = W * s;
    size_t on = (size_t)oh * ow;
    conv(p, oh, ow, C, 3, feat, m->last_w, m->last_b, p->out_nhwc);
    for (int b = 0; b < B; b++) {
        float *o = p->out + (size_t)b * 3 * on;
        catanet_bilinear_fwd_ref(3, H, W, s, lr + (size_t)b * 3 * N, o);
        for (size_t i = 0; i < on; i++)
            for (int c = 0; c < 3; c++)
                o[c * on + i] += p->out_nhwc[((size_t)b * on + i) * 3 + c];
    }
    for (int g = 0; g < a->num_groups; g++)
        tab_update_means(p, g);
    p->loss = hr ? catanet_l1_loss_fwd_ref((size_t)B * 3 * on, p->out, hr) : 0.0;
    return p->loss;
}

void catanet_train_backward(CatanetTrainPlan *p, const float *hr, CatanetModel *grads)
{
    CatanetModel *m = p->model;
    const CatanetModelInfo *a = &m->info;
    int H = p->h, W = p->w, N = H * W, B = p->batch, C = a->dim, s = p->scale;
    size_t BN = (size_t)B * N;
    int oh = H * s, ow = W * s;
    size_t on = (size_t)oh * ow;
    /* L1 -> d out (NCHW), then NHWC for last_conv (the bilinear base has no parameters) */
    memset(p->dbig[0], 0, sizeof(float) * B * 3 * on);
    if (p->hr_weight != 0.0f)
        catanet_l1_loss_bwd_ref((size_t)B * 3 * on, p->out, hr, p->hr_weight, p->dbig[0]);
    if (p->kd_target) /* distillation: L1 to the teacher's output */
        catanet_l1_loss_bwd_ref((size_t)B * 3 * on, p->out, p->kd_target, p->kd_weight, p->dbig[0]);
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < on; i++)
            for (int c = 0; c < 3; c++)
                p->dout[((size_t)b * on + i) * 3 + c] = p->dbig[0][((size_t)b * 3 + c) * on + i];
    int stages = s == 4 ? 2 : s > 1 ? 1 : 0, r = s == 4 ? 2 : s;
    /* dfeat in dbig[0] */
    float *dfeat = p->dbig[0], *dtmp = p->dbig[1];
    size_t nfeat = (size_t)B * on * C;
    memset(dfeat, 0, sizeof(float) * nfeat);
    conv_bwd(p, oh, ow, C, 3, p->feat, m->last_w, p->dout, dfeat, grads->last_w, grads->last_b);
    int fh = oh, fw = ow;
    for (int st = stages - 1; st >= 0; st--) {
        size_t n = (size_t)B * fh * fw * C;
        /* up_s = lrelu(shuffle(u)): dfeat -> d(shuffled) in place */
        memset(dtmp, 0, sizeof(float) * n);
        catanet_lrelu_bwd_ref(n, p->up_s[st], dfeat, dtmp);
        fh /= r;
        fw /= r;
        CatanetShuffleArgs sa = { B, fh, fw, C, r };
        memset(dfeat, 0, sizeof(float) * n);
        catanet_pixel_shuffle_bwd_ref(&sa, dtmp, dfeat); /* du: [B,fh,fw,C r r] */
        size_t nin = (size_t)B * fh * fw * C;
        memset(dtmp, 0, sizeof(float) * nin);
        conv_bwd(p, fh, fw, C, C * r * r, p->up_in[st], m->up_w[st], dfeat, dtmp, grads->up_w[st], grads->up_b[st]);
        memcpy(dfeat, dtmp, sizeof(float) * nin);
    }
    /* dfeat = d(f + f0): the groups' output gradient and the long skip */
    float *df = p->dbig[1], *df0 = p->dbig[0] + BN * C; /* disjoint from dfeat[0 .. BN*C) */
    memcpy(df, dfeat, sizeof(float) * BN * C);
    memcpy(df0, dfeat, sizeof(float) * BN * C);
    if (p->dfeat && p->dfeat[a->num_groups])
        ew_add(p, BN * C, df, p->dfeat[a->num_groups], df);
    float *dmid = p->dbig[0], *dlrsa = p->dbig[1] + BN * C, *dtab = p->dbig[1] + 2 * BN * C;
    for (int g = a->num_groups - 1; g >= 0; g--) {
        CatanetGroupAct *ga = &p->g[g];
        /* f_out = tab_in + mid(mid_in), or tab_in + m * mid(mid_in) with gates */
        const float *dbranch = df;
        if (p->gate) {
            /* the branch is recomputed (no extra activation memory): dm += <df, branch>, dbranch = m df */
            conv(p, H, W, C, C, ga->mid_in, m->groups[g].mid_w, m->groups[g].mid_b, p->tc[2]);
            catanet_gate_branch_bwd_ref(B, (size_t)N * C, p->gate + (size_t)g * B, p->tc[2], df, p->tc[0],
                                        p->dgate ? p->dgate + (size_t)g * B : NULL);
            dbranch = p->tc[0];
        }
        memset(dmid, 0, sizeof(float) * BN * C);
        conv_bwd(p, H, W, C, C, ga->mid_in, m->groups[g].mid_w, dbranch, dmid, grads->groups[g].mid_w,
                 grads->groups[g].mid_b);
        memset(dlrsa, 0, sizeof(float) * BN * C);
        lrsa_bwd(p, g, dmid, dlrsa, grads);
        memset(dtab, 0, sizeof(float) * BN * C);
        tab_bwd(p, g, dlrsa, dtab, grads);
        ew_add(p, BN * C, df, dtab, df); /* the residual */
        if (p->dfeat && p->dfeat[g]) /* df is now d loss / d h_g */
            ew_add(p, BN * C, df, p->dfeat[g], df);
    }
    ew_add(p, BN * C, df, df0, df);
    conv_bwd(p, H, W, 3, C, p->xin, m->first_w, df, NULL, grads->first_w, grads->first_b);
}

/* ---- initialisation from scratch (splitmix64 random numbers; the state is one integer) ---- */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double catanet_train_rng_uniform(uint64_t *s)
{
    return ((rng_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double rng_normal(uint64_t *s)
{
    double u = catanet_train_rng_uniform(s), v = catanet_train_rng_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Spec §1.5: Linear trunc_normal(std 0.02, bounds +-2) and bias 0; LayerNorm 1/0; convolutions
 * PyTorch's default (kaiming_uniform a=sqrt 5: U(+-1/sqrt(fan_in)), bias the same);
 * means randn, initted False. */
void catanet_train_init_weights(CatanetModel *m, uint64_t seed)
{
    uint64_t s = seed ^ 0x5eed1234abcdull;
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        float *x = m->arena + d->offset;
        const char *n = d->name;
        int is_linear = strstr(n, ".fc1.") || strstr(n, ".fc2.") || strstr(n, ".to_q.") || strstr(n, ".to_k.") ||
                        strstr(n, ".to_v.") || strstr(n, ".proj.");
        if (d->is_buffer) {
            for (size_t k = 0; k < d->numel; k++)
                x[k] = (float)rng_normal(&s);
        } else if (strstr(n, "norm.")) {
            for (size_t k = 0; k < d->numel; k++)
                x[k] = ends_with(n, ".weight") ? 1.0f : 0.0f;
        } else if (is_linear) {
            for (size_t k = 0; k < d->numel; k++) {
                double v;
                do
                    v = rng_normal(&s) * 0.02;
                while (v < -2.0 || v > 2.0);
                x[k] = ends_with(n, ".weight") ? (float)v : 0.0f;
            }
        } else { /* convolution weight [out, in/groups, k, k] or bias: fan_in of its weight */
            double fan_in;
            if (d->ndim == 4)
                fan_in = (double)d->shape[1] * d->shape[2] * d->shape[3];
            else {
                char wname[CATANET_NAME_MAX];
                snprintf(wname, sizeof(wname), "%.*s.weight", (int)(strlen(n) - 5), n);
                const CatanetTensorDef *w = catanet_model_find(m, wname);
                fan_in = w ? (double)w->shape[1] * w->shape[2] * w->shape[3] : 1.0;
            }
            double bound = 1.0 / sqrt(fan_in);
            for (size_t k = 0; k < d->numel; k++)
                x[k] = (float)((catanet_train_rng_uniform(&s) * 2.0 - 1.0) * bound);
        }
    }
    for (int g = 0; g < m->info.num_groups; g++)
        m->initted[g] = 0;
}

