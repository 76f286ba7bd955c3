/*
 * model_train_cuda.c: CATANet training-mode forward and backward on a CUDA device, the twin of
 * model_train.c: the same buffers (catanet_train_plan_layout), the same sequence of ops in the same order,
 * each a kernels_cuda.h launcher in place of the CPU op. Read the two files side by side.
 * All memory comes from catanet_train_cuda_create; nothing synchronises the host except the
 * loss (the output is copied back to compute it) and the explicit copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model_train_cuda.h"


#include "kernels_cuda.h"
#include "model_train.h"

struct CatanetTrainCuda {
    CatanetModel *model;       /* host: architecture and `initted` */
    CatanetModel dm, dg;       /* the model's layout with device pointers: weights (+ means), gradients */
    CatanetGroupW *dm_groups, *dg_groups;
    float *d_weights, *d_grads; /* d_grads has gn_rows x GN_COLS floats (zero past the arena) */
    float *d_m, *d_v;          /* Adam moments, zero at creation */
    float *d_wsave;            /* the weights and means before the last catanet_train_cuda_step */
    float *d_gscr;             /* gn_rows x GN_COLS: the clipped gradients; scratch of the norm */
    float *d_gn;               /* [gn_rows] row norms, then [1] the norm, [1] the clipping factor */
    size_t gn_rows;
    int batch, h, w, scale;
    CatanetCudaCtx cx;
    CatanetTrainPlan L;        /* model_train.c's buffer layout with device addresses (layout fields only) */
    void **lrsa_tab;           /* per group: the patch table (catanet_lrsa_cuda_table_fill) */
    CatanetLrsaCudaScratch lsc; /* the LRSA forward's scratch, one image */
    float *lr, *hr;            /* [B,3,h,w], [B,3,sh,sw] */
    float *block;
    float *out_host;           /* [B,3,sh,sw] for the loss */
    float gn_host[2];          /* the norm read back; the clipping factor sent */
    char device[256];
    char err[256];
};

/* the gradient norm: row norms of the gradient arena seen as gn_rows x GN_COLS (one thread a row),
 * then the norm of those */
#define GN_COLS 1024

#define TRY(p, call)                                                                               \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ < 0) {                                                                             \
            snprintf((p)->err, sizeof((p)->err), "%s", (p)->cx.err);                               \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

#define CUTRY(p, call)                                                                             \
    do {                                                                                           \
        cudaError_t st_ = (call);                                                                  \
        if (st_ != cudaSuccess) {                                                                  \
            snprintf((p)->err, sizeof((p)->err), "%s: %s", #call, cudaGetErrorString(st_));        \
            return CATANET_ERR_CUDA;                                                               \
        }                                                                                          \
    } while (0)

const char *catanet_train_cuda_error(const CatanetTrainCuda *p)
{
    return p ? p->err : "no plan";
}

const char *catanet_train_cuda_device(const CatanetTrainCuda *p)
{
    return p->device;
}

int catanet_train_cuda_sync(CatanetTrainCuda *p)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    return 0;
}

static size_t mx(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* every member of CatanetGroupW (and of the structs in it) is a float pointer into the arena */
static void rebase_ptrs(float **v, size_t count, const float *from, float *to)
{
    for (size_t i = 0; i < count; i++)
        if (v[i])
            v[i] = to + (v[i] - from);
}

static int rebase_model(CatanetModel *dst, CatanetGroupW **groups, const CatanetModel *src, float *dev)
{
    *dst = *src;
    int ng = src->info.num_groups;
    *groups = calloc(ng ? ng : 1, sizeof(CatanetGroupW));
    if (!*groups)
        return CATANET_ERR_NOMEM;
    memcpy(*groups, src->groups, sizeof(CatanetGroupW) * ng);
    dst->groups = *groups;
    dst->arena = dev;
    rebase_ptrs((float **)*groups, sizeof(CatanetGroupW) / sizeof(float *) * ng, src->arena, dev);
    float **top[] = { &dst->first_w, &dst->first_b, &dst->up_w[0], &dst->up_b[0], &dst->up_w[1], &dst->up_b[1],
                      &dst->last_w, &dst->last_b };
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        rebase_ptrs(top[i], 1, src->arena, dev);
    return 0;
}

void catanet_train_cuda_free(CatanetTrainCuda *p)
{
    if (!p)
        return;
    if (p->lrsa_tab)
        for (int g = 0; g < p->model->info.num_groups; g++)
            cudaFree(p->lrsa_tab[g]);
    free(p->lrsa_tab);
    cudaFree(p->block);
    cudaFree(p->cx.work);
    cudaFree(p->d_weights);
    cudaFree(p->d_grads);
    cudaFree(p->d_m);
    cudaFree(p->d_v);
    cudaFree(p->d_wsave);
    cudaFree(p->d_gscr);
    cudaFree(p->d_gn);
    if (p->cx.blas)
        cublasDestroy(p->cx.blas);
    if (p->cx.stream)
        cudaStreamDestroy(p->cx.stream);
    free(p->dm_groups);
    free(p->dg_groups);
    free(p->L.g);
    free(p->out_host);
    free(p);
}

/* ---- planning: model_train.c's layout (catanet_train_plan_layout) on a device block, then the
 * device plan's own buffers: the batch and the LRSA forward's scratch (one image) ---- */
#define ALIGN 64 /* floats: 256-byte slices */

static size_t plan_buffers(CatanetTrainCuda *p, float *base)
{
    const CatanetModelInfo *a = &p->model->info;
    size_t BN = (size_t)p->batch * p->h * p->w, N = (size_t)p->h * p->w, C = a->dim, qk = a->qk_dim;
    size_t sizes[8] = { BN * 3, BN * 3 * p->scale * p->scale, N * C, N * qk, N * qk, N * C, N * C, N * C };
    float **dst[8] = { &p->lr, &p->hr, &p->lsc.ln, &p->lsc.q, &p->lsc.k, &p->lsc.v, &p->lsc.asum, &p->lsc.proj };
    size_t total = catanet_train_plan_layout(&p->L, base, ALIGN);
    for (int i = 0; i < 8; i++) {
        *dst[i] = base ? base + total : NULL;
        total += (sizes[i] + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    }
    return total;
}

int catanet_train_cuda_create(CatanetTrainCuda **out, CatanetModel *m, int batch, int h, int w, char *err,
                              size_t es)
{
    const CatanetModelInfo *a = &m->info;
    *out = NULL;
    int min_side = 1, n_dev = 0;
    for (int g = 0; g < a->num_groups; g++)
        min_side = a->groups[g].patch_size > min_side ? a->groups[g].patch_size : min_side;
    if (batch < 1 || h < min_side || w < min_side || h > 4096 || w > 4096)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "training batch %d of %dx%d: need batch >= 1 and sides in %d..4096 (the largest LRSA patch)",
                            batch, w, h, min_side);
    cudaError_t st = cudaGetDeviceCount(&n_dev);
    if (st != cudaSuccess || n_dev < 1) {
        cudaGetLastError(); /* no driver / no device: not an error state for later calls */
        return catanet_errf(err, es, CATANET_ERR_NO_DEVICE, "no CUDA device: cudaGetDeviceCount says: %s",
                            st != cudaSuccess ? cudaGetErrorString(st) : "none present");
    }
    CatanetTrainCuda *p = calloc(1, sizeof(*p));
    if (!p)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        snprintf(p->device, sizeof(p->device), "%s", prop.name);
    p->model = m;
    p->batch = batch;
    p->h = h;
    p->w = w;
    p->scale = a->upscale;
    p->L.model = m;
    p->L.batch = batch;
    p->L.h = h;
    p->L.w = w;
    p->L.scale = a->upscale;
    p->L.g = calloc(a->num_groups ? a->num_groups : 1, sizeof(*p->L.g));
    p->lrsa_tab = calloc(a->num_groups ? a->num_groups : 1, sizeof(void *));
    int N = h * w, C = a->dim, s = a->upscale;
    size_t on = (size_t)batch * 3 * N * s * s;
    p->out_host = malloc(sizeof(float) * on);
    int rc = CATANET_ERR_NOMEM;
    if (!p->L.g || !p->lrsa_tab || !p->out_host)
        goto fail;
    rc = CATANET_ERR_CUDA;
    if (cudaStreamCreateWithFlags(&p->cx.stream, cudaStreamNonBlocking) != cudaSuccess ||
        cublasCreate(&p->cx.blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(p->cx.blas, p->cx.stream) != CUBLAS_STATUS_SUCCESS)
        goto fail;
    cublasSetMathMode(p->cx.blas, CUBLAS_DEFAULT_MATH);
    p->cx.gemm_fp16 = 0; /* training is fp32 throughout */
    /* cx.work: the largest any launcher needs */
    size_t work = 16;
    CatanetConv2dArgs convs[5];
    catanet_train_conv_shapes(a, batch, h, w, convs);
    for (int i = 0; i < 5; i++) {
        work = mx(work, catanet_conv2d_cuda_work(&convs[i]));
        work = mx(work, catanet_conv2d_bwd_cuda_work(&convs[i]));
    }
    for (int g = 0; g < a->num_groups; g++) {
        const CatanetGroupInfo *gi = &a->groups[g];
        CatanetIasaArgs ia = { N, gi->group_size, gi->num_tokens, a->heads, a->qk_dim / a->heads, C / a->heads };
        CatanetLrsaArgs la = { h, w, C, gi->patch_size, a->heads, a->qk_dim / a->heads, C / a->heads };
        work = mx(work, catanet_cluster_cuda_work(N, C, gi->num_tokens));
        work = mx(work, catanet_iasa_bwd_cuda_work(&ia));
        work = mx(work, catanet_lrsa_bwd_cuda_work(&la));
        size_t tb = catanet_lrsa_cuda_table_bytes(&la);
        void *ht = malloc(tb ? tb : 1);
        if (!ht || catanet_lrsa_cuda_table_fill(&la, ht) < 0 || cudaMalloc(&p->lrsa_tab[g], tb ? tb : 1) != cudaSuccess ||
            cudaMemcpy(p->lrsa_tab[g], ht, tb, cudaMemcpyHostToDevice) != cudaSuccess) {
            free(ht);
            goto fail;
        }
        free(ht);
    }
    p->cx.work_floats = (work + 63) & ~(size_t)63;
    size_t total = plan_buffers(p, NULL), na = m->arena_floats;
    p->gn_rows = (na + GN_COLS - 1) / GN_COLS;
    size_t ng = p->gn_rows * GN_COLS; /* the gradient arena padded to whole rows for the norm */
    if (cudaMalloc((void **)&p->cx.work, sizeof(float) * p->cx.work_floats) != cudaSuccess ||
        cudaMalloc((void **)&p->block, sizeof(float) * total) != cudaSuccess ||
        cudaMalloc((void **)&p->d_weights, sizeof(float) * na) != cudaSuccess ||
        cudaMalloc((void **)&p->d_wsave, sizeof(float) * na) != cudaSuccess ||
        cudaMalloc((void **)&p->d_m, sizeof(float) * na) != cudaSuccess ||
        cudaMalloc((void **)&p->d_v, sizeof(float) * na) != cudaSuccess ||
        cudaMalloc((void **)&p->d_grads, sizeof(float) * ng) != cudaSuccess ||
        cudaMalloc((void **)&p->d_gscr, sizeof(float) * ng) != cudaSuccess ||
        cudaMalloc((void **)&p->d_gn, sizeof(float) * (p->gn_rows + 2)) != cudaSuccess)
        goto fail;
    if (cudaMemset(p->block, 0, sizeof(float) * total) != cudaSuccess ||
        cudaMemset(p->d_grads, 0, sizeof(float) * ng) != cudaSuccess ||
        cudaMemset(p->d_m, 0, sizeof(float) * na) != cudaSuccess ||
        cudaMemset(p->d_v, 0, sizeof(float) * na) != cudaSuccess ||
        cudaMemcpy(p->d_weights, m->arena, sizeof(float) * na, cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(p->d_wsave, m->arena, sizeof(float) * na, cudaMemcpyHostToDevice) != cudaSuccess)
        goto fail;
    rc = CATANET_ERR_NOMEM;
    if (rebase_model(&p->dm, &p->dm_groups, m, p->d_weights) < 0 || rebase_model(&p->dg, &p->dg_groups, m, p->d_grads) < 0)
        goto fail;
    plan_buffers(p, p->block);
    *out = p;
    return 0;
fail:
    catanet_train_cuda_free(p);
    return catanet_errf(err, es, rc, "planning CUDA training on %d x %dx%d: %s", batch, w, h,
                        rc == CATANET_ERR_NOMEM ? "out of host memory" : "CUDA setup or device allocation failed");
}

int catanet_train_cuda_get_weights(CatanetTrainCuda *p, CatanetModel *m)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    CUTRY(p, cudaMemcpy(m->arena, p->d_weights, sizeof(float) * m->arena_floats, cudaMemcpyDeviceToHost));
    return 0;
}

int catanet_train_cuda_set_weights(CatanetTrainCuda *p, const CatanetModel *m)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    CUTRY(p, cudaMemcpy(p->d_weights, m->arena, sizeof(float) * m->arena_floats, cudaMemcpyHostToDevice));
    return 0;
}

int catanet_train_cuda_get_grads(CatanetTrainCuda *p, CatanetModel *grads)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    CUTRY(p, cudaMemcpy(grads->arena, p->d_grads, sizeof(float) * grads->arena_floats, cudaMemcpyDeviceToHost));
    return 0;
}

int catanet_train_cuda_zero_grads(CatanetTrainCuda *p)
{
    CUTRY(p, cudaMemsetAsync(p->d_grads, 0, sizeof(float) * p->model->arena_floats, p->cx.stream));
    return 0;
}

int catanet_train_cuda_get_adam(CatanetTrainCuda *p, CatanetModel *m, CatanetModel *v)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    CUTRY(p, cudaMemcpy(m->arena, p->d_m, sizeof(float) * m->arena_floats, cudaMemcpyDeviceToHost));
    CUTRY(p, cudaMemcpy(v->arena, p->d_v, sizeof(float) * v->arena_floats, cudaMemcpyDeviceToHost));
    return 0;
}

int catanet_train_cuda_set_adam(CatanetTrainCuda *p, const CatanetModel *m, const CatanetModel *v)
{
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    CUTRY(p, cudaMemcpy(p->d_m, m->arena, sizeof(float) * m->arena_floats, cudaMemcpyHostToDevice));
    CUTRY(p, cudaMemcpy(p->d_v, v->arena, sizeof(float) * v->arena_floats, cudaMemcpyHostToDevice));
    return 0;
}

int catanet_train_cuda_adam(CatanetTrainCuda *p, float lr, float b1, float b2, float eps, int64_t t, float gscale)
{
    const CatanetModel *m = p->model;
    const float *g = p->d_grads;
    if (gscale != 1.0f) {
        /* clipping: d_gscr = d_grads x gscale by the linear twin with one input and one output
         * feature (a 1 x 1 weight: one float product per element, the CPU loop's g * scale) */
        p->gn_host[1] = gscale;
        CUTRY(p, cudaMemcpyAsync(p->d_gn + p->gn_rows + 1, &p->gn_host[1], sizeof(float), cudaMemcpyHostToDevice,
                                 p->cx.stream));
        TRY(p, catanet_linear_fwd_cuda(&p->cx, (int)m->arena_floats, 1, 1, p->d_grads, p->d_gn + p->gn_rows + 1, NULL,
                                       p->d_gscr));
        g = p->d_gscr;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        if (!d->is_buffer)
            TRY(p, catanet_adam_update_cuda(&p->cx, d->numel, p->d_weights + d->offset, g + d->offset,
                                            p->d_m + d->offset, p->d_v + d->offset, lr, b1, b2, eps, t));
    }
    return 0;
}

/* ---- small helpers on the plan's stream ---- */
static int zero(CatanetTrainCuda *p, void *d, size_t floats)
{
    CUTRY(p, cudaMemsetAsync(d, 0, sizeof(float) * floats, p->cx.stream));
    return 0;
}

static int copy(CatanetTrainCuda *p, void *dst, const void *src, size_t floats)
{
    CUTRY(p, cudaMemcpyAsync(dst, src, sizeof(float) * floats, cudaMemcpyDeviceToDevice, p->cx.stream));
    return 0;
}

static int conv(CatanetTrainCuda *p, int h, int w, int cin, int cout, const float *in, const float *wt,
                const float *bias, float *out)
{
    CatanetConv2dArgs a = { p->batch, h, w, cin, cout, 3 };
    TRY(p, catanet_conv2d_fwd_cuda(&p->cx, &a, in, wt, bias, out));
    return 0;
}

static int conv_bwd(CatanetTrainCuda *p, int h, int w, int cin, int cout, const float *in, const float *wt,
                    const float *dout, float *din, float *dwt, float *dbias)
{
    CatanetConv2dArgs a = { p->batch, h, w, cin, cout, 3 };
    TRY(p, catanet_conv2d_bwd_cuda(&p->cx, &a, in, wt, dout, din, dwt, dbias));
    return 0;
}

/* ---- ConvFFN under PreNorm with its residual (model_train.c's ffn_fwd / ffn_bwd) ---- */
static int ffn_fwd(CatanetTrainCuda *p, const CatanetFfnW *w, CatanetFfnAct *f, const float *x, float *out)
{
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    int BN = p->batch * p->h * p->w, C = a->dim, mlp = a->mlp_dim;
    size_t nm = (size_t)BN * mlp;
    float *ga = p->L.tm[0], *gd = p->L.tm[1];
    TRY(p, catanet_layernorm_fwd_stats_cuda(cx, BN, C, x, w->norm_w, w->norm_b, f->ln, f->mean, f->rstd));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, mlp, f->ln, w->fc1_w, w->fc1_b, f->a));
    TRY(p, catanet_gelu_fwd_cuda(cx, nm, f->a, ga));
    CatanetDwconvArgs da = { p->batch, p->h, p->w, mlp, 5 };
    TRY(p, catanet_dwconv_fwd_cuda(cx, &da, ga, w->dw_w, w->dw_b, f->d));
    TRY(p, catanet_gelu_fwd_cuda(cx, nm, f->d, gd));
    TRY(p, catanet_add_fwd_cuda(cx, nm, ga, gd, gd));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, mlp, C, gd, w->fc2_w, w->fc2_b, p->L.tc[0]));
    TRY(p, catanet_add_fwd_cuda(cx, (size_t)BN * C, x, p->L.tc[0], out));
    return 0;
}

static int ffn_bwd(CatanetTrainCuda *p, const CatanetFfnW *w, const CatanetFfnW *gw, const CatanetFfnAct *f,
                   const float *x, const float *dout, float *dx)
{
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    int BN = p->batch * p->h * p->w, C = a->dim, mlp = a->mlp_dim;
    size_t nm = (size_t)BN * mlp;
    float *ga = p->L.tm[0], *s = p->L.tm[1], *ds = p->L.tm[2], *dd = p->L.tm[3], *dln = p->L.tc[0];
    TRY(p, catanet_gelu_fwd_cuda(cx, nm, f->a, ga));
    TRY(p, catanet_gelu_fwd_cuda(cx, nm, f->d, s));
    TRY(p, catanet_add_fwd_cuda(cx, nm, ga, s, s));
    TRY(p, zero(p, ds, nm));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, mlp, C, s, w->fc2_w, dout, ds, gw->fc2_w, gw->fc2_b));
    TRY(p, zero(p, dd, nm));
    TRY(p, catanet_gelu_bwd_cuda(cx, nm, f->d, ds, dd));
    CatanetDwconvArgs da = { p->batch, p->h, p->w, mlp, 5 };
    TRY(p, catanet_dwconv_bwd_cuda(cx, &da, ga, w->dw_w, dd, ds, gw->dw_w, gw->dw_b));
    TRY(p, zero(p, dd, nm));
    TRY(p, catanet_gelu_bwd_cuda(cx, nm, f->a, ds, dd));
    TRY(p, zero(p, dln, (size_t)BN * C));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, mlp, f->ln, w->fc1_w, dd, dln, gw->fc1_w, gw->fc1_b));
    TRY(p, catanet_layernorm_bwd_cuda(cx, BN, C, x, w->norm_w, f->mean, f->rstd, dln, dx, gw->norm_w, gw->norm_b));
    TRY(p, catanet_add_fwd_cuda(cx, (size_t)BN * C, dx, dout, dx));
    return 0;
}

/* ---- TAB (training mode, spec §1.3) ---- */
static int tab_fwd(CatanetTrainCuda *p, int gi, const float *x, float *out)
{
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    const CatanetTabW *w = &p->dm.groups[gi].tab;
    CatanetGroupAct *g = &p->L.g[gi];
    int N = p->h * p->w, BN = p->batch * N, C = a->dim, qk = a->qk_dim, M = a->groups[gi].num_tokens;
    TRY(p, copy(p, g->tab_in, x, (size_t)BN * C));
    TRY(p, catanet_layernorm_fwd_stats_cuda(cx, BN, C, x, w->norm_w, w->norm_b, g->xn, g->xn_mean, g->xn_rstd));
    TRY(p, catanet_normalize_fwd_cuda(cx, BN, C, g->xn, g->xu, g->xu_norm));
    /* centers: avg-pool init on the first step, else the buffer; 4 refinements without gradient */
    float *c = p->L.c0, *cu = p->L.cwork;
    if (!p->model->initted[gi])
        TRY(p, catanet_center_init_cuda(cx, p->batch, N, C, M, g->xn, c));
    else
        TRY(p, copy(p, c, w->means, (size_t)M * C));
    for (int it = 0; it < 4; it++) {
        TRY(p, catanet_normalize_fwd_cuda(cx, M, C, c, cu, NULL));
        TRY(p, catanet_center_iter_fwd_cuda(cx, BN, C, M, g->xu, cu, p->L.bucket_tmp, g->sum5, p->L.count_tmp, c));
    }
    /* the fifth, differentiable refinement: xg */
    TRY(p, catanet_normalize_fwd_cuda(cx, M, C, c, cu, NULL));
    TRY(p, catanet_center_iter_fwd_cuda(cx, BN, C, M, g->xu, cu, g->bucket5, g->sum5, g->count5, g->xg));
    /* IRCA keys/values from the refined unit centers */
    TRY(p, catanet_linear_fwd_cuda(cx, M, C, qk, g->xg, w->irca_k, NULL, g->kg));
    TRY(p, catanet_linear_fwd_cuda(cx, M, C, C, g->xg, w->irca_v, NULL, g->vg));
    /* CATA grouping by the refined centers (detached), per image */
    for (int b = 0; b < p->batch; b++)
        TRY(p, catanet_cluster_fwd_cuda(cx, N, C, M, g->xn + (size_t)b * N * C, g->xg, p->L.bucket_tmp,
                                        g->ord + (size_t)b * N));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, qk, g->xn, w->q, NULL, g->q));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, qk, g->xn, w->k, NULL, g->k));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, C, g->xn, w->v, NULL, g->v));
    CatanetIasaArgs ia = { N, a->groups[gi].group_size, M, a->heads, qk / a->heads, C / a->heads };
    for (int b = 0; b < p->batch; b++) {
        size_t oq = (size_t)b * N * qk, ov = (size_t)b * N * C;
        TRY(p, catanet_iasa_fwd_cuda(cx, &ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg, g->vg,
                                     g->att + ov));
    }
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, C, g->att, w->proj, NULL, g->y1));
    TRY(p, catanet_linear_fwd_cuda(cx, BN, C, C, g->y1, w->conv1x1, NULL, p->L.tc[1]));
    TRY(p, catanet_add_fwd_cuda(cx, (size_t)BN * C, x, p->L.tc[1], g->t2));
    return ffn_fwd(p, &w->mlp, &g->ffn1, g->t2, out);
}

/* the EMA of the centers, after the network's forward (no gradient) */
static int tab_update_means(CatanetTrainCuda *p, int gi)
{
    CatanetModel *mdl = p->model;
    size_t n = (size_t)mdl->info.groups[gi].num_tokens * mdl->info.dim;
    float *means = p->dm.groups[gi].tab.means;
    if (!mdl->initted[gi]) {
        TRY(p, copy(p, means, p->L.g[gi].xg, n));
        mdl->initted[gi] = 1;
    } else {
        TRY(p, catanet_center_ema_cuda(&p->cx, n, means, p->L.g[gi].xg));
    }
    return 0;
}

static int tab_bwd(CatanetTrainCuda *p, int gi, const float *dout, float *dx)
{
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    const CatanetTabW *w = &p->dm.groups[gi].tab;
    const CatanetTabW *gw = &p->dg.groups[gi].tab;
    CatanetGroupAct *g = &p->L.g[gi];
    int N = p->h * p->w, BN = p->batch * N, C = a->dim, qk = a->qk_dim, M = a->groups[gi].num_tokens;
    size_t nc = (size_t)BN * C;
    float *dt2 = p->L.tc[3];
    TRY(p, zero(p, dt2, nc));
    TRY(p, ffn_bwd(p, &w->mlp, &gw->mlp, &g->ffn1, g->t2, dout, dt2));
    TRY(p, catanet_add_fwd_cuda(cx, nc, dx, dt2, dx));
    float *dy1 = p->L.tc[1], *datt = p->L.tc[2];
    TRY(p, zero(p, dy1, nc));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, C, g->y1, w->conv1x1, dt2, dy1, gw->conv1x1, NULL));
    TRY(p, zero(p, datt, nc));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, C, g->att, w->proj, dy1, datt, gw->proj, NULL));
    TRY(p, zero(p, p->L.dq, (size_t)BN * qk));
    TRY(p, zero(p, p->L.dk, (size_t)BN * qk));
    TRY(p, zero(p, p->L.dv, nc));
    TRY(p, zero(p, p->L.dkg, (size_t)M * qk));
    TRY(p, zero(p, p->L.dvg, (size_t)M * C));
    CatanetIasaArgs ia = { N, a->groups[gi].group_size, M, a->heads, qk / a->heads, C / a->heads };
    for (int b = 0; b < p->batch; b++) {
        size_t oq = (size_t)b * N * qk, ov = (size_t)b * N * C;
        TRY(p, catanet_iasa_bwd_cuda(cx, &ia, g->q + oq, g->k + oq, g->v + ov, g->ord + (size_t)b * N, g->kg, g->vg,
                                     datt + ov, p->L.dq + oq, p->L.dk + oq, p->L.dv + ov, p->L.dkg, p->L.dvg));
    }
    float *dxn = p->L.tc[0];
    TRY(p, zero(p, dxn, nc));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, qk, g->xn, w->q, p->L.dq, dxn, gw->q, NULL));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, qk, g->xn, w->k, p->L.dk, dxn, gw->k, NULL));
    TRY(p, catanet_linear_bwd_cuda(cx, BN, C, C, g->xn, w->v, p->L.dv, dxn, gw->v, NULL));
    TRY(p, zero(p, p->L.dxg, (size_t)M * C));
    TRY(p, catanet_linear_bwd_cuda(cx, M, C, qk, g->xg, w->irca_k, p->L.dkg, p->L.dxg, gw->irca_k, NULL));
    TRY(p, catanet_linear_bwd_cuda(cx, M, C, C, g->xg, w->irca_v, p->L.dvg, p->L.dxg, gw->irca_v, NULL));
    float *dxu = p->L.dv; /* free again; [BN,C] */
    TRY(p, zero(p, dxu, nc));
    TRY(p, catanet_center_iter_bwd_cuda(cx, BN, C, M, g->bucket5, g->sum5, g->count5, g->xg, p->L.dxg, p->L.cwork, dxu));
    TRY(p, catanet_normalize_bwd_cuda(cx, BN, C, g->xu, g->xu_norm, dxu, dxn));
    TRY(p, catanet_layernorm_bwd_cuda(cx, BN, C, g->tab_in, w->norm_w, g->xn_mean, g->xn_rstd, dxn, dx, gw->norm_w,
                                      gw->norm_b));
    return 0;
}

/* ---- LRSA ---- */
static CatanetLrsaArgs lrsa_args(const CatanetTrainCuda *p, int gi)
{
    const CatanetModelInfo *a = &p->model->info;
    CatanetLrsaArgs la = { p->h, p->w, a->dim, a->groups[gi].patch_size, a->heads, a->qk_dim / a->heads,
                           a->dim / a->heads };
    return la;
}

static int lrsa_fwd(CatanetTrainCuda *p, int gi, const float *x, float *out)
{
    const CatanetLrsaW *w = &p->dm.groups[gi].lrsa;
    CatanetGroupAct *g = &p->L.g[gi];
    int N = p->h * p->w, C = p->model->info.dim;
    TRY(p, copy(p, g->lrsa_in, x, (size_t)p->batch * N * C));
    CatanetLrsaArgs la = lrsa_args(p, gi);
    CatanetLrsaWeights lw = { w->norm_w, w->norm_b, w->q, w->k, w->v, w->proj };
    for (int b = 0; b < p->batch; b++) {
        size_t o = (size_t)b * N * C;
        TRY(p, catanet_lrsa_fwd_cuda(&p->cx, &la, &lw, p->lrsa_tab[gi], &p->lsc, x + o, g->x1 + o));
    }
    return ffn_fwd(p, &w->ffn, &g->ffn2, g->x1, out);
}

static int lrsa_bwd(CatanetTrainCuda *p, int gi, const float *dout, float *dx)
{
    const CatanetLrsaW *w = &p->dm.groups[gi].lrsa;
    const CatanetLrsaW *gw = &p->dg.groups[gi].lrsa;
    CatanetGroupAct *g = &p->L.g[gi];
    int N = p->h * p->w, C = p->model->info.dim;
    float *dx1 = p->L.tc[3];
    TRY(p, zero(p, dx1, (size_t)p->batch * N * C));
    TRY(p, ffn_bwd(p, &w->ffn, &gw->ffn, &g->ffn2, g->x1, dout, dx1));
    CatanetLrsaArgs la = lrsa_args(p, gi);
    CatanetLrsaWeights lw = { w->norm_w, w->norm_b, w->q, w->k, w->v, w->proj };
    CatanetLrsaGrads lg = { gw->norm_w, gw->norm_b, gw->q, gw->k, gw->v, gw->proj };
    for (int b = 0; b < p->batch; b++) {
        size_t o = (size_t)b * N * C;
        TRY(p, catanet_lrsa_bwd_cuda(&p->cx, &la, &lw, p->lrsa_tab[gi], g->lrsa_in + o, dx1 + o, dx + o, &lg));
    }
    return 0;
}

/* ---- the whole network ---- */

/* the forward up to the EMA of the means, enqueued on the stream (no synchronisation) */
static int forward_enqueue(CatanetTrainCuda *p, const float *lr, const float *hr)
{
    const CatanetModel *m = &p->dm;
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    int H = p->h, W = p->w, N = H * W, B = p->batch, C = a->dim, s = p->scale;
    size_t BN = (size_t)B * N, on = (size_t)N * s * s;
    if (!lr || !hr) {
        snprintf(p->err, sizeof(p->err), "catanet_train_cuda_forward: lr and hr are both needed");
        return CATANET_ERR_INVALID_ARG;
    }
    CUTRY(p, cudaMemcpyAsync(p->lr, lr, sizeof(float) * BN * 3, cudaMemcpyHostToDevice, cx->stream));
    CUTRY(p, cudaMemcpyAsync(p->hr, hr, sizeof(float) * B * 3 * on, cudaMemcpyHostToDevice, cx->stream));
    for (int b = 0; b < B; b++) /* NCHW -> NHWC tokens (frame staging without mirroring) */
        TRY(p, catanet_frame_in_fwd_cuda(cx, H, W, H, W, p->lr + (size_t)b * 3 * N, p->L.xin + (size_t)b * N * 3, NULL));
    TRY(p, conv(p, H, W, 3, C, p->L.xin, m->first_w, m->first_b, p->L.f0));
    float *f = p->L.fsum;
    TRY(p, copy(p, f, p->L.f0, BN * C));
    for (int g = 0; g < a->num_groups; g++) {
        CatanetGroupAct *ga = &p->L.g[g];
        TRY(p, tab_fwd(p, g, f, ga->lrsa_in));
        TRY(p, lrsa_fwd(p, g, ga->lrsa_in, ga->mid_in));
        TRY(p, conv(p, H, W, C, C, ga->mid_in, m->groups[g].mid_w, m->groups[g].mid_b, p->L.tc[2]));
        TRY(p, catanet_add_fwd_cuda(cx, BN * C, ga->tab_in, p->L.tc[2], f));
    }
    TRY(p, catanet_add_fwd_cuda(cx, BN * C, f, p->L.f0, f));
    const float *feat = f;
    int fh = H, fw = W;
    int stages = s == 4 ? 2 : s > 1 ? 1 : 0, r = s == 4 ? 2 : s;
    for (int st = 0; st < stages; st++) {
        p->L.up_in[st] = (float *)feat;
        TRY(p, conv(p, fh, fw, C, C * r * r, feat, m->up_w[st], m->up_b[st], p->L.up_u[st]));
        CatanetShuffleArgs sa = { B, fh, fw, C, r };
        TRY(p, catanet_pixel_shuffle_fwd_cuda(cx, &sa, p->L.up_u[st], p->L.up_s[st]));
        fh *= r;
        fw *= r;
        TRY(p, catanet_lrelu_fwd_cuda(cx, (size_t)B * fh * fw * C, p->L.up_s[st], p->L.up_s[st]));
        feat = p->L.up_s[st];
    }
    p->L.feat = (float *)feat;
    int oh = H * s, ow = W * s;
    TRY(p, conv(p, oh, ow, C, 3, feat, m->last_w, m->last_b, p->L.out_nhwc));
    for (int b = 0; b < B; b++)
        TRY(p, catanet_bilinear_add_fwd_cuda(cx, H, W, s, p->lr + (size_t)b * 3 * N, p->L.out_nhwc + (size_t)b * on * 3,
                                             oh, ow, p->L.out + (size_t)b * 3 * on, NULL));
    for (int g = 0; g < a->num_groups; g++)
        TRY(p, tab_update_means(p, g));
    return 0;
}

/* the output read back (this is the synchronisation) and the loss computed from it on the host
 * exactly as the CPU step does (catanet_l1_loss_fwd_ref's double sum): the output is small next
 * to the activations, and no device reduction of the loss has to be kept equal to the CPU's */
static int read_loss(CatanetTrainCuda *p, const float *hr, float *out, double *loss)
{
    size_t no = (size_t)p->batch * 3 * p->h * p->w * p->scale * p->scale;
    CUTRY(p, cudaMemcpyAsync(p->out_host, p->L.out, sizeof(float) * no, cudaMemcpyDeviceToHost, p->cx.stream));
    CUTRY(p, cudaStreamSynchronize(p->cx.stream));
    if (out)
        memcpy(out, p->out_host, sizeof(float) * no);
    if (loss)
        *loss = catanet_l1_loss_fwd_ref(no, p->out_host, hr);
    return 0;
}

int catanet_train_cuda_forward(CatanetTrainCuda *p, const float *lr, const float *hr, float *out, double *loss)
{
    TRY(p, forward_enqueue(p, lr, hr));
    return read_loss(p, hr, out, loss);
}

int catanet_train_cuda_step(CatanetTrainCuda *p, const float *lr, const float *hr, double *loss, double *gnorm)
{
    CUTRY(p, cudaMemcpyAsync(p->d_wsave, p->d_weights, sizeof(float) * p->model->arena_floats,
                             cudaMemcpyDeviceToDevice, p->cx.stream));
    TRY(p, catanet_train_cuda_zero_grads(p));
    TRY(p, forward_enqueue(p, lr, hr));
    TRY(p, catanet_train_cuda_backward(p));
    if (gnorm) {
        /* the L2 norm: GN_COLS-float row norms (normalize's sequential double sum, one thread a
         * row; the padding past the arena is zero), then the norm of the row norms. A non-finite
         * gradient makes it NaN or Inf; so does a row norm beyond FLT_MAX (the caller checks) */
        TRY(p, catanet_normalize_fwd_cuda(&p->cx, (int)p->gn_rows, GN_COLS, p->d_grads, p->d_gscr, p->d_gn));
        TRY(p, catanet_normalize_fwd_cuda(&p->cx, 1, (int)p->gn_rows, p->d_gn, p->d_gscr, p->d_gn + p->gn_rows));
        CUTRY(p, cudaMemcpyAsync(&p->gn_host[0], p->d_gn + p->gn_rows, sizeof(float), cudaMemcpyDeviceToHost,
                                 p->cx.stream));
    }
    TRY(p, read_loss(p, hr, NULL, loss));
    if (gnorm)
        *gnorm = p->gn_host[0];
    return 0;
}

int catanet_train_cuda_undo(CatanetTrainCuda *p)
{
    CUTRY(p, cudaMemcpyAsync(p->d_weights, p->d_wsave, sizeof(float) * p->model->arena_floats,
                             cudaMemcpyDeviceToDevice, p->cx.stream));
    return 0;
}

int catanet_train_cuda_backward(CatanetTrainCuda *p)
{
    const CatanetModel *m = &p->dm, *gr = &p->dg;
    const CatanetModelInfo *a = &p->model->info;
    CatanetCudaCtx *cx = &p->cx;
    int H = p->h, W = p->w, N = H * W, B = p->batch, C = a->dim, s = p->scale;
    size_t BN = (size_t)B * N;
    int oh = H * s, ow = W * s;
    size_t on = (size_t)oh * ow;
    /* L1 -> d out (NCHW), then NHWC for last_conv (the bilinear base has no parameters) */
    TRY(p, zero(p, p->L.dbig[0], (size_t)B * 3 * on));
    TRY(p, catanet_l1_loss_bwd_cuda(cx, (size_t)B * 3 * on, p->L.out, p->hr, 1.0f, p->L.dbig[0]));
    for (int b = 0; b < B; b++)
        TRY(p, catanet_frame_in_fwd_cuda(cx, oh, ow, oh, ow, p->L.dbig[0] + (size_t)b * 3 * on, p->L.dout + (size_t)b * on * 3,
                                         NULL));
    int stages = s == 4 ? 2 : s > 1 ? 1 : 0, r = s == 4 ? 2 : s;
    float *dfeat = p->L.dbig[0], *dtmp = p->L.dbig[1];
    TRY(p, zero(p, dfeat, (size_t)B * on * C));
    TRY(p, conv_bwd(p, oh, ow, C, 3, p->L.feat, m->last_w, p->L.dout, dfeat, gr->last_w, gr->last_b));
    int fh = oh, fw = ow;
    for (int st = stages - 1; st >= 0; st--) {
        size_t n = (size_t)B * fh * fw * C;
        TRY(p, zero(p, dtmp, n));
        TRY(p, catanet_lrelu_bwd_cuda(cx, n, p->L.up_s[st], dfeat, dtmp));
        fh /= r;
        fw /= r;
        CatanetShuffleArgs sa = { B, fh, fw, C, r };
        TRY(p, zero(p, dfeat, n));
        TRY(p, catanet_pixel_shuffle_bwd_cuda(cx, &sa, dtmp, dfeat));
        size_t nin = (size_t)B * fh * fw * C;
        TRY(p, zero(p, dtmp, nin));
        TRY(p, conv_bwd(p, fh, fw, C, C * r * r, p->L.up_in[st], m->up_w[st], dfeat, dtmp, gr->up_w[st], gr->up_b[st]));
        TRY(p, copy(p, dfeat, dtmp, nin));
    }
    float *df = p->L.dbig[1], *df0 = p->L.dbig[0] + BN * C;
    TRY(p, copy(p, df, dfeat, BN * C));
    TRY(p, copy(p, df0, dfeat, BN * C));
    float *dmid = p->L.dbig[0], *dlrsa = p->L.dbig[1] + BN * C, *dtab = p->L.dbig[1] + 2 * BN * C;
    for (int g = a->num_groups - 1; g >= 0; g--) {
        CatanetGroupAct *ga = &p->L.g[g];
        TRY(p, zero(p, dmid, BN * C));
        TRY(p, conv_bwd(p, H, W, C, C, ga->mid_in, m->groups[g].mid_w, df, dmid, gr->groups[g].mid_w,
                        gr->groups[g].mid_b));
        TRY(p, zero(p, dlrsa, BN * C));
        TRY(p, lrsa_bwd(p, g, dmid, dlrsa));
        TRY(p, zero(p, dtab, BN * C));
        TRY(p, tab_bwd(p, g, dlrsa, dtab));
        TRY(p, catanet_add_fwd_cuda(cx, BN * C, df, dtab, df));
    }
    TRY(p, catanet_add_fwd_cuda(cx, BN * C, df, df0, df));
    TRY(p, conv_bwd(p, H, W, 3, C, p->L.xin, m->first_w, df, NULL, gr->first_w, gr->first_b));
    return 0;
}

