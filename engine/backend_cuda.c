/*
 * backend_cuda.c: the engine on one CUDA GPU (plain C over the CUDA runtime, cuBLAS and the
 * kernels/cuda launchers). The forward is forward_cpu.c's, op for op, with the CUDA twins.
 *
 * open:    device (or the caller's CUcontext), stream (the caller's or our own), cuBLAS handle
 *          bound to it with a fixed workspace, the weights uploaded once, IRCA keys/values of the
 *          centers computed once (on the host, as the CPU plan does) and uploaded, the 3x3 convs'
 *          weights and the token centers put in their kernels' forms once.
 * prepare: every device buffer for the size in one allocation, the LRSA patch tables uploaded,
 *          the whole forward captured into a CUDA graph (planar float in -> planar float out),
 *          then run once to surface any fault at prepare instead of at the first frame.
 * process: copy in, launch the graph, copy out. process_image with device frames converts on the
 *          GPU and never touches the host. No allocation and no weight copy per frame.
 */
#include <cuda.h> /* CUcontext and the driver function types only: no libcuda link */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "catanet.h"
#include "engine_internal.h"
#include "forward_cpu.h"
#include "kernels_cuda.h"
#include "model.h"

#define BLAS_WORKSPACE_BYTES ((size_t)32 << 20)

typedef CUresult (*CtxPushFn)(CUcontext);
typedef CUresult (*CtxPopFn)(CUcontext *);

/* Where two kernels compute the same op (both twin-tested against the CPU reference), which one
 * the forward runs: 0 the primary (tiled, fused, implicit GEMM, tensor-core attention), 1 the kernel
 * it replaced. Set by pick_kernels at prepare from cfg.kernels; AUTO times both on the frame size. */
typedef struct KernelPicks {
    int conv_mid, conv_up[2]; /* 1: im2col + cuBLAS instead of the direct/implicit-GEMM kernel */
    int dwconv;               /* 1: the per-warp dwconv + GELU + add instead of the tiled one (fp32
                                 intermediates: the fp16 ones always take the tiled kernel) */
    int ffn;                  /* 1: LayerNorm, cuBLAS GEMMs (fp16 in fp16 mode), GELU, add apart
                                 (0: the fused layers, with fp16 intermediates in the fp16 mode) */
    int qkv;                  /* 1: LayerNorm, then q, k, v as three cuBLAS GEMMs */
    int ffn_passes;           /* fp16 mode, 1: the ConvFFN as ffn()'s passes (then `ffn` picks which)
                                 instead of convffn.cu's one kernel (passes anyway where the device's
                                 shared memory cannot hold that kernel's tile: s->ffn_one_ok) */
    unsigned char iasa[CATANET_MAX_GROUPS], lrsa[CATANET_MAX_GROUPS]; /* fp16 mode, 1: CUDA-core attention */
    unsigned char lrsa_passes[CATANET_MAX_GROUPS]; /* fp16 mode, tensor-core attention, 1: LRSA's LN + q|k|v
                                 pass, then the attention (0: the one kernel a patch class that makes
                                 LN(x) and q, k, v itself, where s->lrsa_fused_ok) */
    int exp2_fma;             /* fp16 mode, 1: the tensor-core attention takes one softmax exp2 in four
                                 on the FMA pipe (cx.attn_exp2_fma; AUTO only: an alternative, not a
                                 kernel it replaced, so PRIMARY and FALLBACK leave it 0) */
} KernelPicks;

typedef struct CudaState {
    int device;
    char name[256];
    CUcontext ctx;            /* the caller's context, or NULL: the device's primary context */
    CtxPushFn push;
    CtxPopFn pop;
    cudaStream_t stream;
    int own_stream;
    cublasHandle_t blas;
    void *blas_ws;
    CatanetCudaCtx cx;
    float *wdev;              /* the model arena on the device */
    float *kgvg;              /* per group: kg [M,qk] then vg [M,dim] */
    float **kg, **vg;         /* host arrays of device pointers */
    float *stacked;           /* per group: TAB and LRSA [wq; wk; wv] (one fused LN + q|k|v pass each),
                                 then TAB's conv1x1 . proj as one matrix (two linear maps in a row) */
    size_t stacked_group;     /* floats per group */
    float *forms;             /* weights in their kernels' forms, made once at open (make_weight_forms): */
    const float *mid_wp[CATANET_MAX_GROUPS], *up_wp[2]; /* each group's conv and upsampling conv's, */
    const void *mid_wh[CATANET_MAX_GROUPS], *up_wh[2];  /* fp32 permuted, and fp16 in the fp16 mode */
    const float *centers_n[CATANET_MAX_GROUPS];         /* each group's token centers, normalised */
    int64_t weight_bytes;
    /* the plan for one size */
    int in_w, in_h, w, h, padded;
    void *block;
    size_t block_bytes;
    float *d_in, *d_out;      /* planar [3][in_h][in_w], [3][s in_h][s in_w] */
    unsigned *d_nonfinite;    /* NaN/Inf values the last frame wrote into d_out (the tail kernel counts) */
    unsigned h_nonfinite;     /* its copy, read after the frame's sync */
    float *src_pad;           /* planar [3][h][w] mirrored (only when padded) */
    float *xin, *f0, *f, *res, *t1, *q, *k, *v, *att, *y, *a, *dd, *u, *us, *out;
    int32_t *cid, *ord;
    void **lrsa_tab;          /* per group, device */
    int fp16;                 /* the fp16 mode: attention may run on tensor cores (s->pick), the fused
                                 ConvFFN keeps its two [N,mlp] intermediates in fp16 */
    KernelPicks pick;         /* chosen at prepare (pick_kernels) */
    int ffn_one_ok;           /* convffn.cu's kernel fits this device (catanet_convffn_fp16_setup) */
    int lrsa_fused_ok;        /* lrsa.cu's one-kernel LRSA fits this device and model (catanet_lrsa_fused_setup) */
    int f_half;               /* the ConvFFNs' outputs s->f, the residual stream inside a group, are
                                 stored as fp16: set after the picks (f_half_ok), 0 while timing them */
    int g_half;               /* with f_half, the groups' inputs and outputs f0 and s->res too */
    int u_half;               /* with g_half, the upsampled features (s->us, s->u) too (u_half_ok) */
    cudaGraph_t graph;
    cudaGraphExec_t exec;     /* NULL: run the forward eagerly (capture unavailable) */
    /* catanet_cuda_profile only: an event recorded after each step of the forward, and its name */
    cudaEvent_t *prof_ev;
    const char **prof_step;
    int prof_n, prof_cap;
} CudaState;

/* the end of a step of the forward, for catanet_cuda_profile (nothing otherwise) */
static void mark(CudaState *s, const char *step)
{
    if (!s->prof_ev || s->prof_n >= s->prof_cap)
        return;
    if (cudaEventRecord(s->prof_ev[s->prof_n], s->stream) == cudaSuccess)
        s->prof_step[s->prof_n++] = step;
}

/* ---- context handling: every entry point runs with the engine's device/context current ---- */

static int enter(CatanetEngine *e, CudaState *s)
{
    if (s->ctx) {
        if (s->push(s->ctx) != CUDA_SUCCESS)
            return catanet_engine_fail(e, CATANET_ERR_CUDA, "cuCtxPushCurrent failed for the caller's context");
        return 0;
    }
    cudaError_t st = cudaSetDevice(s->device);
    if (st != cudaSuccess)
        return catanet_engine_fail(e, CATANET_ERR_CUDA, "cudaSetDevice(%d): %s", s->device, cudaGetErrorString(st));
    return 0;
}

static void leave(CudaState *s)
{
    if (s->ctx) {
        CUcontext old;
        s->pop(&old);
    }
}

#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t st_ = (call);                                                                  \
        if (st_ != cudaSuccess) {                                                                  \
            ret = catanet_engine_fail(e, st_ == cudaErrorMemoryAllocation ? CATANET_ERR_NOMEM :    \
                                      CATANET_ERR_CUDA, "%s: %s (%s:%d)", #call,                   \
                                      cudaGetErrorString(st_), __FILE__, __LINE__);                \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

#define CB(call)                                                                                   \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                        \
            ret = catanet_engine_fail(e, CATANET_ERR_CUBLAS, "%s: cuBLAS status %d (%s:%d)", #call, \
                                      (int)st_, __FILE__, __LINE__);                               \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

int catanet_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver / no device: not an error state for later calls */
        return 0;
    }
    return n;
}

int catanet_cuda_usable(char *why, size_t size)
{
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);
    if (st != cudaSuccess || n < 1) {
        cudaGetLastError(); /* no driver / no device: not an error state for later calls */
        snprintf(why, size, "no CUDA device: the CUDA plugin loaded, but cudaGetDeviceCount says: %s",
                 st != cudaSuccess ? cudaGetErrorString(st) : "none present");
        return 0;
    }
    return n;
}

static float *dev_w(const CudaState *s, const CatanetModel *m, const float *host)
{
    return host ? s->wdev + (host - m->arena) : NULL;
}

static void plan_free(CudaState *s)
{
    if (s->exec)
        cudaGraphExecDestroy(s->exec);
    if (s->graph)
        cudaGraphDestroy(s->graph);
    s->exec = NULL;
    s->graph = NULL;
    cudaFree(s->block);
    s->block = NULL;
    s->block_bytes = 0;
    free(s->lrsa_tab);
    s->lrsa_tab = NULL;
    s->cx.work = NULL;
    s->cx.work_floats = 0;
}

void catanet_cuda_close(CatanetEngine *e)
{
    CudaState *s = e->cuda;
    if (!s)
        return;
    int entered = enter(e, s) == 0;
    if (s->stream)
        cudaStreamSynchronize(s->stream);
    plan_free(s);
    if (s->blas)
        cublasDestroy(s->blas);
    cudaFree(s->blas_ws);
    cudaFree(s->wdev);
    cudaFree(s->kgvg);
    cudaFree(s->stacked);
    cudaFree(s->forms);
    if (s->own_stream && s->stream)
        cudaStreamDestroy(s->stream);
    if (entered)
        leave(s);
    free(s->kg);
    free(s);
    e->cuda = NULL;
}

/* Weights some kernels read in a form of their own, made here once, in one allocation, so that no
 * frame makes them again: the 3x3 convs of the groups and of the upsampler (conv2d.cu) permuted to
 * [cout][3][3][cin] in fp32 (the fp32 implicit GEMM, im2col + cuBLAS) and, in the fp16 mode, as
 * fp16 [9][cin][cout] (the tensor-core implicit GEMM), set as cx.conv_wp and cx.conv_wh at each call;
 * each group's token centers normalised for the clustering (cx.cluster_cn). */
static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}
static int make_weight_forms(CatanetEngine *e, CudaState *s, const CatanetModel *m)
{
    const CatanetModelInfo *a = &m->info;
    int ret = 0, d = a->dim, r = a->upscale == 4 ? 2 : a->upscale, nup = 0;
    while (nup < 2 && m->up_w[nup])
        nup++;
    CatanetConv2dArgs mid = { 1, 1, 1, d, d, 3 }, up = { 1, 1, 1, d, d * r * r, 3 };
    /* in floats, each part rounded up to 8 (32 bytes: wmma's alignment for the fp16 ones) */
    size_t pmid = round8((size_t)d * d * 9), pup = round8((size_t)d * d * r * r * 9);
    size_t hmid = s->fp16 ? round8(catanet_conv2d_weights_half_count(&mid) / 2) : 0;
    size_t hup = s->fp16 ? round8(catanet_conv2d_weights_half_count(&up) / 2) : 0;
    size_t floats = (pmid + hmid) * a->num_groups + (pup + hup) * nup;
    for (int g = 0; g < a->num_groups; g++)
        floats += round8((size_t)a->groups[g].num_tokens * d);
    CU(cudaMalloc((void **)&s->forms, sizeof(float) * (floats ? floats : 1)));
    float *at = s->forms;
    for (int g = 0; g < a->num_groups; g++) {
        int M = a->groups[g].num_tokens;
        if ((ret = catanet_cluster_centers_norm_cuda(&s->cx, M, d, dev_w(s, m, m->groups[g].tab.means), at)) < 0)
            return catanet_engine_fail(e, ret, "token centers: %s", s->cx.err);
        s->centers_n[g] = at;
        at += round8((size_t)M * d);
    }
    for (int i = 0; i < a->num_groups + nup; i++) { /* the groups' convs, then the upsampling ones */
        int group = i < a->num_groups, stage = i - a->num_groups;
        const CatanetConv2dArgs *ca = group ? &mid : &up;
        const float *wt = dev_w(s, m, group ? m->groups[i].mid_w : m->up_w[stage]);
        if ((ret = catanet_conv2d_weights_permute_cuda(&s->cx, ca, wt, at)) < 0)
            return catanet_engine_fail(e, ret, "conv weights: %s", s->cx.err);
        *(group ? &s->mid_wp[i] : &s->up_wp[stage]) = at;
        at += group ? pmid : pup;
        if (!s->fp16)
            continue;
        if ((ret = catanet_conv2d_weights_half_cuda(&s->cx, ca, wt, at)) < 0)
            return catanet_engine_fail(e, ret, "conv weights: %s", s->cx.err);
        *(group ? &s->mid_wh[i] : &s->up_wh[stage]) = at;
        at += group ? hmid : hup;
    }
    CU(cudaStreamSynchronize(s->stream));
    s->weight_bytes += (int64_t)(sizeof(float) * floats);
    return 0;
fail:
    return ret;
}

/* a group's conv (stage < 0: group g's) or an upsampling conv (stage 0, 1) with its prepared weights */
static void conv_weights_for(CudaState *s, int g, int stage)
{
    s->cx.conv_wp = stage < 0 ? s->mid_wp[g] : s->up_wp[stage];
    s->cx.conv_wh = stage < 0 ? s->mid_wh[g] : s->up_wh[stage];
}
static void conv_weights_none(CudaState *s)
{
    s->cx.conv_wp = NULL;
    s->cx.conv_wh = NULL;
}

int catanet_cuda_open(CatanetEngine *e)
{
    const CatanetModel *m = e->model;
    const CatanetModelInfo *a = &m->info;
    char why[512];
    int ret = 0, count = catanet_cuda_usable(why, sizeof(why)), entered = 0;
    if (count < 1)
        return catanet_engine_fail(e, CATANET_ERR_NO_DEVICE, "%s", why);
    if (e->cfg.gpu >= count)
        return catanet_engine_fail(e, CATANET_ERR_NO_DEVICE, "CUDA device %d requested, %d present", e->cfg.gpu,
                                   count);
    CudaState *s = calloc(1, sizeof(*s));
    if (!s)
        return catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory");
    e->cuda = s;
    s->device = e->cfg.gpu;
    if (e->cfg.cuda_context) {
        /* the runtime hands out driver entry points: no link against libcuda needed */
        enum cudaDriverEntryPointQueryResult q1, q2;
        void *push = NULL, *pop = NULL;
        if (cudaGetDriverEntryPointByVersion("cuCtxPushCurrent", &push, 12000, cudaEnableDefault, &q1) !=
                cudaSuccess || q1 != cudaDriverEntryPointSuccess ||
            cudaGetDriverEntryPointByVersion("cuCtxPopCurrent", &pop, 12000, cudaEnableDefault, &q2) !=
                cudaSuccess || q2 != cudaDriverEntryPointSuccess) {
            ret = catanet_engine_fail(e, CATANET_ERR_CUDA, "cannot resolve cuCtxPushCurrent/cuCtxPopCurrent");
            goto fail;
        }
        s->push = (CtxPushFn)push;
        s->pop = (CtxPopFn)pop;
        s->ctx = (CUcontext)e->cfg.cuda_context;
    }
    if ((ret = enter(e, s)) < 0)
        goto fail;
    entered = 1;
    if (s->ctx)
        CU(cudaGetDevice(&s->device));
    struct cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, s->device));
    snprintf(s->name, sizeof(s->name), "%s", prop.name);
    if (e->cfg.cuda_stream) {
        s->stream = (cudaStream_t)e->cfg.cuda_stream;
    } else {
        CU(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
        s->own_stream = 1;
    }
    CB(cublasCreate(&s->blas));
    CB(cublasSetStream(s->blas, s->stream));
    /* a fixed workspace: no allocation inside graph capture (set after the stream: that resets it) */
    CU(cudaMalloc(&s->blas_ws, BLAS_WORKSPACE_BYTES));
    CB(cublasSetWorkspace(s->blas, s->blas_ws, BLAS_WORKSPACE_BYTES));
    /* fp32: plain fp32 GEMMs, no TF32 (the twin tests' tolerances assume it); fp16 asks for it per GEMM */
    CB(cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH));
    s->cx.stream = s->stream;
    s->cx.blas = s->blas;
    s->cx.gemm_fp16 = e->precision == CATANET_PRECISION_FP16;
    s->fp16 = e->precision == CATANET_PRECISION_FP16; /* cx.attn_fp16, qkv_fp16, iasa_out_fp16: set per
                                                         call from it and s->pick */

    size_t wbytes = sizeof(float) * (m->arena_floats ? m->arena_floats : 1);
    CU(cudaMalloc((void **)&s->wdev, wbytes));
    CU(cudaMemcpy(s->wdev, m->arena, sizeof(float) * m->arena_floats, cudaMemcpyHostToDevice));

    /* IRCA keys/values of the centers: weights only, computed once like the CPU plan does */
    size_t qk = a->qk_dim, d = a->dim, kv = 0;
    for (int g = 0; g < a->num_groups; g++)
        kv += (size_t)a->groups[g].num_tokens * (qk + d);
    size_t ng = a->num_groups > 0 ? (size_t)a->num_groups : 1;
    s->kg = calloc(2 * ng, sizeof(float *));
    float *host_kv = malloc(sizeof(float) * (kv ? kv : 1));
    if (!s->kg || !host_kv) {
        free(host_kv);
        ret = catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->vg = s->kg + ng;
    {
        cudaError_t st = cudaMalloc((void **)&s->kgvg, sizeof(float) * (kv ? kv : 1));
        size_t off = 0;
        for (int g = 0; g < a->num_groups && st == cudaSuccess; g++) {
            int M = a->groups[g].num_tokens;
            catanet_linear_fwd_ref(M, (int)d, (int)qk, m->groups[g].tab.means, m->groups[g].tab.irca_k, NULL,
                                   host_kv + off);
            catanet_linear_fwd_ref(M, (int)d, (int)d, m->groups[g].tab.means, m->groups[g].tab.irca_v, NULL,
                                   host_kv + off + (size_t)M * qk);
            s->kg[g] = s->kgvg + off;
            s->vg[g] = s->kgvg + off + (size_t)M * qk;
            off += (size_t)M * (qk + d);
        }
        if (st == cudaSuccess)
            st = cudaMemcpy(s->kgvg, host_kv, sizeof(float) * kv, cudaMemcpyHostToDevice);
        free(host_kv);
        CU(st);
    }
    /* stacked projections and the merged conv1x1 . proj (in double, rounded once) */
    {
        size_t nqkv = (2 * qk + d) * d;
        s->stacked_group = 2 * nqkv + d * d;
        size_t n = s->stacked_group * ng;
        float *host = malloc(sizeof(float) * n);
        if (!host) {
            ret = catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int g = 0; g < a->num_groups; g++) {
            const CatanetTabW *t = &m->groups[g].tab;
            const CatanetLrsaW *l = &m->groups[g].lrsa;
            float *h = host + s->stacked_group * g, *pc = h + 2 * nqkv;
            const float *parts[2][3] = { { t->q, t->k, t->v }, { l->q, l->k, l->v } };
            for (int b = 0; b < 2; b++) {
                memcpy(h + b * nqkv, parts[b][0], sizeof(float) * qk * d);
                memcpy(h + b * nqkv + qk * d, parts[b][1], sizeof(float) * qk * d);
                memcpy(h + b * nqkv + 2 * qk * d, parts[b][2], sizeof(float) * d * d);
            }
            for (size_t o = 0; o < d; o++)
                for (size_t i = 0; i < d; i++) {
                    double acc = 0;
                    for (size_t j = 0; j < d; j++)
                        acc += (double)t->conv1x1[o * d + j] * t->proj[j * d + i];
                    pc[o * d + i] = (float)acc;
                }
        }
        cudaError_t st = cudaMalloc((void **)&s->stacked, sizeof(float) * n);
        if (st == cudaSuccess)
            st = cudaMemcpy(s->stacked, host, sizeof(float) * n, cudaMemcpyHostToDevice);
        free(host);
        CU(st);
        s->weight_bytes += (int64_t)(sizeof(float) * n);
    }
    s->weight_bytes += (int64_t)wbytes + (int64_t)(sizeof(float) * kv) + (int64_t)BLAS_WORKSPACE_BYTES;
    if ((ret = make_weight_forms(e, s, m)) < 0)
        goto fail;
    leave(s);
    return 0;
fail:
    if (entered)
        leave(s);
    catanet_cuda_close(e);
    return ret;
}

/* ---- the forward: forward_cpu.c's sequence with the CUDA twins ---- */

#define K(call)                                                                                    \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ < 0)                                                                                \
            return r_;                                                                             \
    } while (0)

/* x_out = x + fc2(dd(gelu(fc1(LN(x))))) (x_out may be x) */
static int ffn(CudaState *s, const CatanetModel *m, const CatanetFfnW *w, const float *x, float *x_out)
{
    const CatanetModelInfo *a = &m->info;
    CatanetCudaCtx *cx = &s->cx;
    int N = s->w * s->h, d = a->dim, mlp = a->mlp_dim;
    CatanetDwconvArgs da = { 1, s->h, s->w, mlp, 5 };
    const float *dw = dev_w(s, m, w->dw_w), *db = dev_w(s, m, w->dw_b);
    if (s->pick.ffn) { /* each op its own pass, the GEMMs on cuBLAS */
        K(catanet_layernorm_fwd_cuda(cx, N, d, x, dev_w(s, m, w->norm_w), dev_w(s, m, w->norm_b), s->t1));
        K(catanet_linear_fwd_cuda(cx, N, d, mlp, s->t1, dev_w(s, m, w->fc1_w), dev_w(s, m, w->fc1_b), s->a));
        K(catanet_gelu_fwd_cuda(cx, (size_t)N * mlp, s->a, s->a));
    } else { /* linear.cu's fused layer: LN + fc1 + bias + GELU in one pass (fp16 mode: stored as fp16) */
        CatanetLinearFusion in = { .ln_w = dev_w(s, m, w->norm_w), .ln_b = dev_w(s, m, w->norm_b),
                                   .bias = dev_w(s, m, w->fc1_b), .gelu = 1, .y_fp16 = s->fp16 };
        K(catanet_linear_fused_fwd_cuda(cx, N, d, mlp, x, dev_w(s, m, w->fc1_w), &in, s->a));
    }
    mark(s, "convffn: LN + fc1 + GELU");
    if (!s->pick.ffn && s->fp16)
        K(catanet_dwconv_gelu_add_fp16_fwd_cuda(cx, &da, s->a, dw, db, s->dd));
    else if (s->pick.dwconv)
        K(catanet_dwconv_gelu_add_pixelwarp_fwd_cuda(cx, &da, s->a, dw, db, s->dd));
    else
        K(catanet_dwconv_gelu_add_fwd_cuda(cx, &da, s->a, dw, db, s->dd));
    mark(s, "convffn: dwconv5x5 + GELU + add");
    if (s->pick.ffn) {
        /* fc2's output in t1 (LN(x), read by fc1 above, is done with), not s->y: the fp16 mode's
         * pick times this after a forward and before the one kernel, which reads s->y (tab()) */
        K(catanet_linear_fwd_cuda(cx, N, mlp, d, s->dd, dev_w(s, m, w->fc2_w), dev_w(s, m, w->fc2_b), s->t1));
        K(catanet_add_fwd_cuda(cx, (size_t)N * d, x, s->t1, x_out));
    } else { /* fc2 + bias + the residual */
        CatanetLinearFusion outf = { .bias = dev_w(s, m, w->fc2_b), .res = x, .x_fp16 = s->fp16 };
        K(catanet_linear_fused_fwd_cuda(cx, N, mlp, d, s->dd, dev_w(s, m, w->fc2_w), &outf, x_out));
    }
    mark(s, "convffn: fc2 + residual");
    return 0;
}

/* the fp16 mode's ConvFFN in one kernel (convffn.cu): x -> x_out, which must not be x. Its input is
 * always s->y, stored as fp16 by the pass before it (TAB's proj + residual, LRSA's combine), which
 * nothing else reads: 320 bytes a token a group less, for two fp16 roundings of the residual a group.
 * Its output s->f is fp16 too when s->f_half (f_half_ok). */
static int use_ffn_one(const CudaState *s)
{
    return s->fp16 && s->ffn_one_ok && !s->pick.ffn_passes;
}
static int ffn_one(CudaState *s, const CatanetModel *m, const CatanetFfnW *w, const float *x_half, float *x_out)
{
    CatanetConvffnArgs fa = { s->h, s->w, m->info.dim, m->info.mlp_dim };
    CatanetConvffnWeights fw = { dev_w(s, m, w->norm_w), dev_w(s, m, w->norm_b), dev_w(s, m, w->fc1_w),
                                 dev_w(s, m, w->fc1_b),  dev_w(s, m, w->dw_w),   dev_w(s, m, w->dw_b),
                                 dev_w(s, m, w->fc2_w),  dev_w(s, m, w->fc2_b) };
    K(catanet_convffn_fp16_fwd_cuda(&s->cx, &fa, &fw, x_half, 1, x_out, s->f_half));
    mark(s, "convffn: one kernel");
    return 0;
}

/* q, k and v are stored as fp16 in the fp16 mode when the one-pass LN + q|k|v makes them (its
 * epilogue rounds them; the attention kernels read either type); the cuBLAS passes keep fp32. The
 * tensor-core attention rounded q, k, v to fp16 anyway; the CUDA-core kernels, when picked in the
 * fp16 mode, now see the rounded values too. */
static int qkv_half(const CudaState *s)
{
    return s->fp16 && !s->pick.qkv;
}

/* IASA + IRCA of group g on the projections in s->q/k/v and the token order s->ord -> s->att (fp16
 * in the fp16 mode) */
static int iasa(CudaState *s, const CatanetModel *m, int g)
{
    const CatanetModelInfo *a = &m->info;
    int N = s->w * s->h, qk = a->qk_dim, d = a->dim;
    CatanetIasaArgs ia = { N, a->groups[g].group_size, a->groups[g].num_tokens, a->heads, qk / a->heads,
                           d / a->heads };
    s->cx.attn_fp16 = s->fp16 && !s->pick.iasa[g];
    s->cx.attn_exp2_fma = s->pick.exp2_fma;
    s->cx.qkv_fp16 = qkv_half(s);
    s->cx.iasa_out_fp16 = s->fp16; /* read by tab()'s proj pass, which rounds its input to fp16 anyway */
    return catanet_iasa_fwd_cuda(&s->cx, &ia, s->q, s->k, s->v, s->ord, s->kg[g], s->vg[g], s->att);
}

/* s->q, s->k, s->v = the projections of LN(x), and s->t1 = LN(x) for TAB's clustering (lrsa: LRSA's
 * weights, else TAB's; LRSA's x is s->f, fp16 when s->f_half; TAB's the group's input, fp16 when
 * s->g_half) */
/* TAB's clustering applies its LayerNorm itself (catanet_cluster_ln_fwd_cuda) when the one-pass
 * LN + q|k|v is picked: LN(x) is then never stored (160 bytes a token a group written, and read
 * back, less than t1; the cuBLAS passes need t1 for their GEMMs anyway) */
static int cluster_ln(const CudaState *s, const CatanetModel *m)
{
    return !s->pick.qkv && catanet_cluster_ln_takes(m->info.dim);
}

static int ln_qkv(CudaState *s, const CatanetModel *m, int g, int lrsa, const float *x)
{
    const CatanetModelInfo *a = &m->info;
    const float *nw, *nb, *wq, *wk, *wv;
    if (lrsa) {
        const CatanetLrsaW *w = &m->groups[g].lrsa;
        nw = w->norm_w, nb = w->norm_b, wq = w->q, wk = w->k, wv = w->v;
    } else {
        const CatanetTabW *w = &m->groups[g].tab;
        nw = w->norm_w, nb = w->norm_b, wq = w->q, wk = w->k, wv = w->v;
    }
    CatanetCudaCtx *cx = &s->cx;
    int N = s->w * s->h, d = a->dim, qk = a->qk_dim;
    if (s->pick.qkv) {
        K(catanet_layernorm_fwd_cuda(cx, N, d, x, dev_w(s, m, nw), dev_w(s, m, nb), s->t1));
        K(catanet_linear_fwd_cuda(cx, N, d, qk, s->t1, dev_w(s, m, wq), NULL, s->q));
        K(catanet_linear_fwd_cuda(cx, N, d, qk, s->t1, dev_w(s, m, wk), NULL, s->k));
        return catanet_linear_fwd_cuda(cx, N, d, d, s->t1, dev_w(s, m, wv), NULL, s->v);
    }
    /* one pass: LN while staging, the stacked [wq; wk; wv], split into q, k, v; TAB also writes
     * LN(x) to t1 for a clustering that does not apply it itself (LRSA has no other use for it) */
    const float *stacked = s->stacked + s->stacked_group * g + (size_t)lrsa * (2 * qk + d) * d;
    CatanetLinearFusion f = { .ln_w = dev_w(s, m, nw), .ln_b = dev_w(s, m, nb),
                              .ln_out = lrsa || cluster_ln(s, m) ? NULL : s->t1,
                              .split = { qk, 2 * qk }, .y1 = s->k, .y2 = s->v,
                              .x_fp16 = lrsa ? s->f_half : s->g_half, .y_fp16 = qkv_half(s) };
    return catanet_linear_fused_fwd_cuda(cx, N, d, 2 * qk + d, x, stacked, &f, s->q);
}

/* x -> x_out (not x: x is the group's residual, kept) */
static int tab(CudaState *s, const CatanetModel *m, int g, const float *x, float *x_out)
{
    const CatanetModelInfo *a = &m->info;
    const CatanetTabW *w = &m->groups[g].tab;
    CatanetCudaCtx *cx = &s->cx;
    int N = s->w * s->h, d = a->dim, qk = a->qk_dim, M = a->groups[g].num_tokens;
    K(ln_qkv(s, m, g, 0, x));
    mark(s, "tab: LN + q|k|v");
    cx->cluster_cn = s->centers_n[g];
    int ret = cluster_ln(s, m) ? catanet_cluster_ln_fwd_cuda(cx, N, d, M, x, s->g_half, dev_w(s, m, w->norm_w),
                                                             dev_w(s, m, w->norm_b), dev_w(s, m, w->means), s->cid,
                                                             s->ord)
                               : catanet_cluster_fwd_cuda(cx, N, d, M, s->t1, dev_w(s, m, w->means), s->cid, s->ord);
    cx->cluster_cn = NULL;
    K(ret);
    mark(s, "tab: cluster assignment + sort");
    K(iasa(s, m, g));
    mark(s, "tab: iasa + irca attention");
    /* proj then conv1x1 are two linear maps in a row: one pass with their product, plus the residual
     * (the fp16 mode's attention output s->att is fp16: iasa()) */
    const float *pc = s->stacked + s->stacked_group * g + 2 * (size_t)(2 * qk + d) * d;
    CatanetLinearFusion res = { .res = x, .x_fp16 = s->fp16, .y_fp16 = use_ffn_one(s), .res_fp16 = s->g_half };
    float *mid = use_ffn_one(s) ? s->y : x_out; /* the one-kernel ConvFFN cannot work in place: its fp16 input */
    K(catanet_linear_fused_fwd_cuda(cx, N, d, d, s->att, pc, &res, mid));
    mark(s, "tab: proj.conv1x1 + residual");
    return use_ffn_one(s) ? ffn_one(s, m, &w->mlp, mid, x_out) : ffn(s, m, &w->mlp, x_out, x_out);
}

/* LRSA of group g (LayerNorm, projections, patch attention, band-weighted combine + residual):
 * x -> x_out (x_out may be x) */
static int lrsa_attn(CudaState *s, const CatanetModel *m, int g, const float *x, float *x_out)
{
    const CatanetModelInfo *a = &m->info;
    const CatanetLrsaW *w = &m->groups[g].lrsa;
    CatanetLrsaArgs la = { s->h, s->w, a->dim, a->groups[g].patch_size, a->heads, a->qk_dim / a->heads,
                           a->dim / a->heads };
    if (s->fp16 && s->lrsa_fused_ok && !s->pick.lrsa[g] && !s->pick.lrsa_passes[g]) {
        /* one kernel a patch class: q, k, v never leave the chip (~2 GB a frame less at x2 960x540) */
        CatanetLrsaWeights lw = { dev_w(s, m, w->norm_w), dev_w(s, m, w->norm_b), dev_w(s, m, w->q),
                                  dev_w(s, m, w->k), dev_w(s, m, w->v), dev_w(s, m, w->proj) };
        s->cx.attn_exp2_fma = s->pick.exp2_fma;
        s->cx.lrsa_out_fp16 = use_ffn_one(s);
        s->cx.lrsa_x_fp16 = s->f_half;
        s->cx.lrsa_asum_fp16 = 1;
        int ret = catanet_lrsa_fused_fwd_cuda(&s->cx, &la, &lw, s->lrsa_tab[g], s->att, x, x_out);
        s->cx.lrsa_x_fp16 = s->cx.lrsa_asum_fp16 = 0;
        K(ret);
        mark(s, "lrsa: patch attention with its LN + q|k|v, proj + combine");
        return 0;
    }
    CatanetLrsaCudaScratch sc = { s->t1, s->q, s->k, s->v, s->att, NULL };
    K(ln_qkv(s, m, g, 1, x));
    mark(s, "lrsa: LN + q|k|v");
    s->cx.attn_fp16 = s->fp16 && !s->pick.lrsa[g];
    s->cx.attn_exp2_fma = s->pick.exp2_fma;
    s->cx.qkv_fp16 = qkv_half(s);
    s->cx.lrsa_out_fp16 = use_ffn_one(s); /* x_out is then s->y, the one-kernel ConvFFN's fp16 input */
    s->cx.lrsa_x_fp16 = s->f_half;        /* x is s->f */
    s->cx.lrsa_asum_fp16 = s->fp16;       /* the combine's tensor cores round the sums to fp16 anyway */
    int ret = catanet_lrsa_attend_fwd_cuda(&s->cx, &la, dev_w(s, m, w->proj), s->lrsa_tab[g], &sc, x, x_out);
    s->cx.lrsa_x_fp16 = s->cx.lrsa_asum_fp16 = 0;
    K(ret);
    mark(s, "lrsa: patch attention + proj + combine");
    return 0;
}

static int lrsa(CudaState *s, const CatanetModel *m, int g, float *x)
{
    if (use_ffn_one(s)) {
        K(lrsa_attn(s, m, g, x, s->y));
        return ffn_one(s, m, &m->groups[g].lrsa.ffn, s->y, x);
    }
    K(lrsa_attn(s, m, g, x, x));
    return ffn(s, m, &m->groups[g].lrsa.ffn, x, x);
}

static int conv3x3(CudaState *s, int im2col, const CatanetConv2dArgs *a, const float *in, const float *w,
                   const float *b, float *out)
{
    return im2col ? catanet_conv2d_im2col_fwd_cuda(&s->cx, a, in, w, b, out)
                  : catanet_conv2d_fwd_cuda(&s->cx, a, in, w, b, out);
}

/* upsampling stage `stage` of the fh x fw features in: conv3x3 d -> d r^2, PixelShuffle(r), LeakyReLU.
 * With the implicit-GEMM kernels (im2col 0) in one pass that writes the shuffled output (into s->us,
 * or s->u when in is s->us: never in place); with im2col + cuBLAS, or a shape the implicit GEMM does
 * not take, the conv into s->u, then the shuffle into s->us. *out: where the result is. */
static int upsample(CudaState *s, const CatanetModel *m, int stage, int im2col, const float *in, int fh, int fw,
                    const float **out)
{
    int d = m->info.dim, r = m->info.upscale == 4 ? 2 : m->info.upscale;
    CatanetConv2dArgs up = { 1, fh, fw, d, d * r * r, 3 };
    const float *w = dev_w(s, m, m->up_w[stage]), *b = dev_w(s, m, m->up_b[stage]);
    if (!im2col) {
        float *dst = in == s->us ? s->u : s->us;
        s->cx.conv_in_fp16 = stage == 0 ? s->g_half : s->u_half; /* s->res, or stage 0's output */
        s->cx.conv_out_fp16 = s->u_half;
        conv_weights_for(s, 0, stage);
        int ret = catanet_conv2d_shuffle_lrelu_fwd_cuda(&s->cx, &up, in, w, b, r, dst);
        s->cx.conv_in_fp16 = s->cx.conv_out_fp16 = 0;
        conv_weights_none(s);
        if (ret != CATANET_ERR_UNSUPPORTED) {
            K(ret);
            *out = dst;
            mark(s, "conv3x3 upsampling + pixel shuffle + lrelu");
            return 0;
        }
    }
    conv_weights_for(s, 0, stage);
    int ret = conv3x3(s, im2col, &up, in, w, b, s->u);
    conv_weights_none(s);
    K(ret);
    mark(s, "conv3x3 upsampling");
    CatanetShuffleArgs sa = { 1, fh, fw, d, r };
    K(catanet_pixel_shuffle_lrelu_fwd_cuda(&s->cx, &sa, s->u, s->us));
    mark(s, "pixel shuffle + lrelu");
    *out = s->us;
    return 0;
}

/* d_in -> d_out, everything on s->stream */
static int forward(CudaState *s, const CatanetModel *m)
{
    const CatanetModelInfo *a = &m->info;
    CatanetCudaCtx *cx = &s->cx;
    int H = s->h, W = s->w, N = H * W, d = a->dim, sc = a->upscale;
    size_t nd = (size_t)N * d;
    mark(s, "start");
    K(catanet_frame_in_fwd_cuda(cx, s->in_h, s->in_w, H, W, s->d_in, s->xin, s->src_pad));
    mark(s, "frame in (mirror, NHWC)");
    const float *src = s->padded ? s->src_pad : s->d_in;
    CatanetConv2dArgs first = { 1, H, W, 3, d, 3 };
    cx->conv_out_fp16 = s->g_half; /* f0 */
    int ret = catanet_conv2d_fwd_cuda(cx, &first, s->xin, dev_w(s, m, m->first_w), dev_w(s, m, m->first_b), s->f0);
    cx->conv_out_fp16 = 0;
    K(ret);
    mark(s, "conv3x3 first");
    /* group g: out = in + conv(LRSA(TAB(in))). TAB reads in and writes f, LRSA works in place on f,
     * and the conv adds in to its output in res, which is the next group's input (the first group's
     * is f0, kept for the global residual, which the last group's conv adds too): no copies, no
     * separate adds */
    const float *gin = s->f0;
    for (int g = 0; g < a->num_groups; g++) {
        K(tab(s, m, g, gin, s->f));
        K(lrsa(s, m, g, s->f));
        CatanetConv2dArgs mid = { 1, H, W, d, d, 3 };
        int last = g == a->num_groups - 1;
        cx->conv_in_fp16 = s->f_half;  /* s->f */
        cx->conv_out_fp16 = s->g_half; /* gin, f0 and s->res */
        conv_weights_for(s, g, -1);
        ret = catanet_conv2d_res_fwd_cuda(cx, &mid, s->f, dev_w(s, m, m->groups[g].mid_w),
                                          dev_w(s, m, m->groups[g].mid_b), gin, last ? s->f0 : NULL, s->res,
                                          s->pick.conv_mid);
        cx->conv_in_fp16 = cx->conv_out_fp16 = 0;
        conv_weights_none(s);
        K(ret);
        mark(s, "conv3x3 + group residual"); /* the last group's adds the global residual too */
        gin = s->res;
    }
    if (!a->num_groups) { /* no group: the global residual alone */
        K(catanet_add_fwd_cuda(cx, nd, s->f0, s->f0, s->res));
        mark(s, "global residual add");
    }

    const float *feat = s->res;
    int fh = H, fw = W;
    for (int stage = 0; stage < 2 && m->up_w[stage]; stage++) {
        int r = sc == 4 ? 2 : sc;
        K(upsample(s, m, stage, s->pick.conv_up[stage], feat, fh, fw, &feat));
        fh *= r;
        fw *= r;
    }
    CatanetConv2dArgs last = { 1, H * sc, W * sc, d, 3, 3 };
    cx->conv_in_fp16 = s->u_half && m->up_w[0]; /* the upsampled features */
    ret = catanet_conv2d_fwd_cuda(cx, &last, feat, dev_w(s, m, m->last_w), dev_w(s, m, m->last_b), s->out);
    cx->conv_in_fp16 = 0;
    K(ret);
    mark(s, "conv3x3 last");
    K(catanet_bilinear_add_fwd_cuda(cx, H, W, sc, src, s->out, s->in_h * sc, s->in_w * sc, s->d_out, s->d_nonfinite));
    mark(s, "bilinear + add, crop");
    return 0;
}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* ---- kernel picks: time the two kernels of each pair on this GPU and size ---- */

/* one op with the kernel `fb` (0 primary, 1 fallback) on the prepared buffers; arg: a group or stage */
typedef int (*PickOp)(CudaState *s, const CatanetModel *m, int fb, int arg);

static int op_dwconv(CudaState *s, const CatanetModel *m, int fb, int arg)
{
    const CatanetFfnW *w = &m->groups[arg].tab.mlp;
    CatanetDwconvArgs da = { 1, s->h, s->w, m->info.mlp_dim, 5 };
    const float *dw = dev_w(s, m, w->dw_w), *db = dev_w(s, m, w->dw_b);
    return fb ? catanet_dwconv_gelu_add_pixelwarp_fwd_cuda(&s->cx, &da, s->a, dw, db, s->dd)
              : catanet_dwconv_gelu_add_fwd_cuda(&s->cx, &da, s->a, dw, db, s->dd);
}
static int op_ffn(CudaState *s, const CatanetModel *m, int fb, int arg)
{
    int keep = s->pick.ffn, ret;
    s->pick.ffn = fb;
    ret = ffn(s, m, &m->groups[arg].tab.mlp, s->f, s->res);
    s->pick.ffn = keep;
    return ret;
}
static int op_ffn_one(CudaState *s, const CatanetModel *m, int fb, int arg)
{
    int keep = s->pick.ffn_passes, ret;
    s->pick.ffn_passes = fb;
    /* each on its own input type: the one kernel on the fp16 s->y the forward left (ffn() does not
     * touch it), the passes on the fp32 s->f (the store before them, fp16 or fp32, is in neither time) */
    ret = use_ffn_one(s) ? ffn_one(s, m, &m->groups[arg].tab.mlp, s->y, s->res)
                         : ffn(s, m, &m->groups[arg].tab.mlp, s->f, s->res);
    s->pick.ffn_passes = keep;
    return ret;
}
static int op_qkv(CudaState *s, const CatanetModel *m, int fb, int arg)
{
    int keep = s->pick.qkv, ret;
    s->pick.qkv = fb;
    ret = ln_qkv(s, m, arg, 0, s->f);
    s->pick.qkv = keep;
    return ret;
}
static int op_conv_mid(CudaState *s, const CatanetModel *m, int fb, int arg)
{
    int d = m->info.dim;
    CatanetConv2dArgs mid = { 1, s->h, s->w, d, d, 3 };
    conv_weights_for(s, arg, -1);
    int ret = catanet_conv2d_res_fwd_cuda(&s->cx, &mid, s->f, dev_w(s, m, m->groups[arg].mid_w),
                                          dev_w(s, m, m->groups[arg].mid_b), s->res, NULL, s->y, fb);
    conv_weights_none(s);
    return ret;
}
static int op_conv_up(CudaState *s, const CatanetModel *m, int fb, int stage)
{
    int r = m->info.upscale == 4 ? 2 : m->info.upscale, grow = stage ? r : 1;
    const float *out;
    return upsample(s, m, stage, fb, stage ? s->us : s->f, s->h * grow, s->w * grow, &out);
}
static int op_iasa(CudaState *s, const CatanetModel *m, int fb, int g)
{
    int keep = s->pick.iasa[g], ret;
    s->pick.iasa[g] = (unsigned char)fb;
    ret = iasa(s, m, g);
    s->pick.iasa[g] = (unsigned char)keep;
    return ret;
}
static int op_lrsa_fused(CudaState *s, const CatanetModel *m, int fb, int g)
{
    KernelPicks keep = s->pick;
    s->pick.lrsa[g] = 0;
    s->pick.lrsa_passes[g] = (unsigned char)fb;
    int ret = lrsa_attn(s, m, g, s->f, s->y);
    s->pick = keep;
    return ret;
}
/* the pass + attention on tensor cores against the same on CUDA cores (the one-kernel LRSA is timed
 * against the first of these apart: op_lrsa_fused) */
static int op_lrsa(CudaState *s, const CatanetModel *m, int fb, int g)
{
    KernelPicks keep = s->pick;
    s->pick.lrsa[g] = (unsigned char)fb;
    s->pick.lrsa_passes[g] = 1;
    int ret = lrsa_attn(s, m, g, s->f, s->y);
    s->pick = keep;
    return ret;
}

/* group g's IASA and LRSA attention on tensor cores, with the softmax's exp2 all on the XU pipe (0)
 * or one in four on the FMA pipe (1): which is faster depends on what bounds the attention on this
 * GPU (the XU pipe's 16 exp2 a clock per SM, or issue and memory) */
static int op_exp2(CudaState *s, const CatanetModel *m, int fb, int g)
{
    KernelPicks keep = s->pick;
    s->pick.exp2_fma = fb;
    s->pick.iasa[g] = s->pick.lrsa[g] = 0;
    int ret = iasa(s, m, g);
    if (ret >= 0)
        ret = lrsa_attn(s, m, g, s->f, s->y);
    s->pick = keep;
    return ret;
}

#define PICK_RUNS 2 /* timed runs of each kernel after a warm-up one; the faster counts */

static int time_op(CudaState *s, const CatanetModel *m, PickOp op, int fb, int arg, cudaEvent_t ev[2], float *ms)
{
    K(op(s, m, fb, arg)); /* warm-up: module loading, cuBLAS's first call for a shape */
    *ms = 1e30f;
    for (int r = 0; r < PICK_RUNS; r++) {
        cudaError_t st = cudaEventRecord(ev[0], s->stream);
        int ret = st == cudaSuccess ? op(s, m, fb, arg) : 0;
        if (ret < 0)
            return ret;
        float t = 0;
        if (st == cudaSuccess && (st = cudaEventRecord(ev[1], s->stream)) == cudaSuccess &&
            (st = cudaEventSynchronize(ev[1])) == cudaSuccess)
            st = cudaEventElapsedTime(&t, ev[0], ev[1]);
        if (st != cudaSuccess) {
            snprintf(s->cx.err, sizeof(s->cx.err), "timing a kernel: %s", cudaGetErrorString(st));
            return CATANET_ERR_CUDA;
        }
        *ms = t < *ms ? t : *ms;
    }
    return 0;
}

/* the fallback only when it is clearly faster (3%): close timings keep the same pick run to run */
static int pick_one(CatanetEngine *e, CudaState *s, PickOp op, int arg, cudaEvent_t ev[2], const char *what,
                    const char *primary, const char *fallback, int *pick)
{
    float t0, t1;
    K(time_op(s, e->model, op, 0, arg, ev, &t0));
    K(time_op(s, e->model, op, 1, arg, ev, &t1));
    *pick = t1 < 0.97f * t0;
    catanet_log(e, CATANET_LOG_INFO, "catanet: kernel pick %dx%d %s: %s %.3f ms, %s %.3f ms -> %s", s->w, s->h,
                what, primary, t0, fallback, t1, *pick ? fallback : primary);
    return 0;
}

/* Whether s->f (the ConvFFNs' outputs) may be stored as fp16 with the kernels picked: the fp16 mode's
 * one-kernel ConvFFN writes it, and every reader takes fp16: LRSA's one-pass LN + q|k|v, its combine
 * (residual) and the group conv's tensor-core implicit GEMM. The cuBLAS and im2col picks read fp32.
 * 80 bytes a token less to write twice and to read three times, per group (docs/roofline.md). */
static int f_half_ok(CudaState *s, const CatanetModel *m)
{
    CatanetConv2dArgs mid = { 1, s->h, s->w, m->info.dim, m->info.dim, 3 };
    return use_ffn_one(s) && !s->pick.qkv && !s->pick.conv_mid && m->info.num_groups > 0 &&
           catanet_conv2d_takes_fp16(&s->cx, &mid, 1, 0, 0);
}
/* ... and whether the groups' inputs and outputs (f0, s->res) may be too: with f_half, their other
 * writers and readers take fp16: the first conv (the direct kernel for 3 input channels), the group
 * conv's residuals and output, TAB's LN + q|k|v and proj residual, and the first upsampling conv (the
 * tensor cores, not the im2col pick). 320 bytes a token a group less, and 240 once. */
static int g_half_ok(CudaState *s, const CatanetModel *m)
{
    int d = m->info.dim, r = m->info.upscale == 4 ? 2 : m->info.upscale;
    CatanetConv2dArgs first = { 1, s->h, s->w, 3, d, 3 }, mid = { 1, s->h, s->w, d, d, 3 },
                      up = { 1, s->h, s->w, d, d * r * r, 3 };
    return s->f_half && !s->pick.conv_up[0] && m->up_w[0] && catanet_conv2d_takes_fp16(&s->cx, &first, 0, 1, 0) &&
           catanet_conv2d_takes_fp16(&s->cx, &mid, 1, 1, 1) && catanet_conv2d_takes_fp16(&s->cx, &up, 1, 0, 0);
}
/* ... and whether the upsampled features may be too: with g_half, each upsampling conv on the tensor
 * cores (not the im2col pick) writes its shuffled output as fp16 and the next stage or the last conv
 * (the direct kernel for 3 outputs) reads it: 4 bytes a channel less per upsampled pixel (2 written,
 * 2 read); at x2 960x540, 40 channels, ~0.33 GB a frame; at x4 480x270, ~0.41 GB. */
static int u_half_ok(CudaState *s, const CatanetModel *m)
{
    int d = m->info.dim, sc = m->info.upscale, r = sc == 4 ? 2 : sc;
    CatanetConv2dArgs up0 = { 1, s->h, s->w, d, d * r * r, 3 }, up1 = { 1, s->h * r, s->w * r, d, d * r * r, 3 },
                      last = { 1, s->h * sc, s->w * sc, d, 3, 3 };
    return s->g_half && catanet_conv2d_takes_fp16(&s->cx, &up0, 1, 1, 0) &&
           (!m->up_w[1] || (!s->pick.conv_up[1] && catanet_conv2d_takes_fp16(&s->cx, &up1, 1, 1, 0))) &&
           catanet_conv2d_takes_fp16(&s->cx, &last, 1, 0, 0);
}

/* Fill s->pick from cfg.kernels. AUTO runs the forward once (every buffer then holds finite values
 * and s->ord a token order) and times each pair on the prepared buffers, in an order that leaves the
 * inputs of the later timings valid (any finite q/k/v and a token order serve the attention). */
static int pick_kernels(CatanetEngine *e, CudaState *s)
{
    const CatanetModel *m = e->model;
    const CatanetModelInfo *a = &m->info;
    memset(&s->pick, 0, sizeof(s->pick));
    s->f_half = s->g_half = s->u_half = 0; /* the timings run on fp32 features: both kernels of a pair read them */
    /* convffn.cu's kernel needs more shared memory than a kernel gets by default: its limit is
     * raised here, outside any capture; a device (or a model shape) it does not fit keeps the passes */
    s->ffn_one_ok = 0;
    if (s->fp16) {
        int ret = catanet_convffn_fp16_setup(&s->cx, a->dim, a->mlp_dim);
        if (ret < 0 && ret != CATANET_ERR_UNSUPPORTED && ret != CATANET_ERR_INVALID_ARG)
            return ret;
        s->ffn_one_ok = ret == 0;
        if (ret < 0)
            catanet_log(e, CATANET_LOG_INFO, "catanet: the one-kernel ConvFFN is not available: %s", s->cx.err);
    }
    /* likewise lrsa.cu's one-kernel LRSA, for the largest patch of the model */
    s->lrsa_fused_ok = 0;
    if (s->fp16 && a->num_groups > 0 && catanet_lrsa_fused_takes(a->dim, a->qk_dim / a->heads, a->dim / a->heads)) {
        int ps = 0;
        for (int g = 0; g < a->num_groups; g++)
            ps = a->groups[g].patch_size > ps ? a->groups[g].patch_size : ps;
        int ret = catanet_lrsa_fused_setup(&s->cx, ps);
        if (ret < 0 && ret != CATANET_ERR_UNSUPPORTED && ret != CATANET_ERR_INVALID_ARG)
            return ret;
        s->lrsa_fused_ok = ret == 0;
        if (ret < 0)
            catanet_log(e, CATANET_LOG_INFO, "catanet: the one-kernel LRSA is not available: %s", s->cx.err);
    }
    if (e->cfg.kernels != CATANET_KERNELS_AUTO) {
        int fb = e->cfg.kernels == CATANET_KERNELS_FALLBACK;
        s->pick.conv_mid = s->pick.conv_up[0] = s->pick.conv_up[1] = s->pick.dwconv = s->pick.ffn = s->pick.qkv = fb;
        s->pick.ffn_passes = fb;
        memset(s->pick.iasa, fb, sizeof(s->pick.iasa));
        memset(s->pick.lrsa, fb, sizeof(s->pick.lrsa));
        memset(s->pick.lrsa_passes, fb, sizeof(s->pick.lrsa_passes));
        return 0;
    }
    if (a->num_groups < 1)
        return 0;
    int ret = forward(s, m);
    if (ret < 0)
        return ret;
    cudaEvent_t ev[2] = { NULL, NULL };
    if (cudaEventCreate(&ev[0]) != cudaSuccess || cudaEventCreate(&ev[1]) != cudaSuccess) {
        snprintf(s->cx.err, sizeof(s->cx.err), "cudaEventCreate failed");
        ret = CATANET_ERR_CUDA;
        goto done;
    }
    char what[96];
    int d = a->dim, r = a->upscale == 4 ? 2 : a->upscale;
    snprintf(what, sizeof(what), "dwconv5x5+gelu+add %d ch", a->mlp_dim);
    if ((ret = pick_one(e, s, op_dwconv, 0, ev, what, "tiled", "per-warp", &s->pick.dwconv)) < 0)
        goto done;
    snprintf(what, sizeof(what), "convffn %d->%d->%d", d, a->mlp_dim, d);
    if ((ret = pick_one(e, s, op_ffn, 0, ev, what,
                        s->fp16 ? "fused token layers, fp16 intermediates" : "fused token layers",
                        s->pick.dwconv ? "separate passes, per-warp dwconv" : "separate passes", &s->pick.ffn)) < 0)
        goto done;
    if (s->fp16 && s->ffn_one_ok) {
        snprintf(what, sizeof(what), "convffn %d->%d->%d, fp16", d, a->mlp_dim, d);
        if ((ret = pick_one(e, s, op_ffn_one, 0, ev, what, "one kernel",
                            s->pick.ffn ? "separate passes" : "fused token layers", &s->pick.ffn_passes)) < 0)
            goto done;
    }
    snprintf(what, sizeof(what), "layernorm + q|k|v %d->%d", d, 2 * a->qk_dim + d);
    if ((ret = pick_one(e, s, op_qkv, 0, ev, what, "fused", "separate passes", &s->pick.qkv)) < 0)
        goto done;
    snprintf(what, sizeof(what), "conv3x3 %d->%d + residual", d, d);
    if ((ret = pick_one(e, s, op_conv_mid, 0, ev, what, "implicit GEMM", "im2col+cuBLAS", &s->pick.conv_mid)) < 0)
        goto done;
    for (int stage = 0; stage < 2 && m->up_w[stage]; stage++) {
        snprintf(what, sizeof(what), "conv3x3 %d->%d + pixel shuffle + lrelu (upsampling stage %d)", d, d * r * r,
                 stage + 1);
        if ((ret = pick_one(e, s, op_conv_up, stage, ev, what, "implicit GEMM, shuffle in its epilogue",
                            "im2col+cuBLAS, then the shuffle",
                            &s->pick.conv_up[stage])) < 0)
            goto done;
    }
    for (int g = 0; s->fp16 && g < a->num_groups; g++) { /* IASA first: LRSA overwrites its q/k/v */
        const CatanetGroupInfo *gi = &a->groups[g];
        int same = -1;
        for (int p = 0; p < g && same < 0; p++)
            if (a->groups[p].group_size == gi->group_size && a->groups[p].num_tokens == gi->num_tokens)
                same = p;
        if (same >= 0) {
            s->pick.iasa[g] = s->pick.iasa[same];
            continue;
        }
        int pk = 0;
        snprintf(what, sizeof(what), "iasa group %d (gs %d, M %d)", g, gi->group_size, gi->num_tokens);
        if ((ret = pick_one(e, s, op_iasa, g, ev, what, "tensor cores", "CUDA cores", &pk)) < 0)
            goto done;
        s->pick.iasa[g] = (unsigned char)pk;
    }
    for (int g = 0; s->fp16 && g < a->num_groups; g++) {
        int same = -1;
        for (int p = 0; p < g && same < 0; p++)
            if (a->groups[p].patch_size == a->groups[g].patch_size)
                same = p;
        if (same >= 0) {
            s->pick.lrsa[g] = s->pick.lrsa[same];
            s->pick.lrsa_passes[g] = s->pick.lrsa_passes[same];
            continue;
        }
        int pk = 0;
        snprintf(what, sizeof(what), "lrsa group %d (patch %d)", g, a->groups[g].patch_size);
        if ((ret = pick_one(e, s, op_lrsa, g, ev, what, "tensor cores", "CUDA cores", &pk)) < 0)
            goto done;
        s->pick.lrsa[g] = (unsigned char)pk;
        if (!s->lrsa_fused_ok)
            continue;
        /* then, on tensor cores, the one kernel against the pass + attention (used when the tensor
         * cores won above: a GPU where the CUDA cores beat the tensor-core pair keeps them) */
        snprintf(what, sizeof(what), "lrsa group %d (patch %d), tensor cores", g, a->groups[g].patch_size);
        if ((ret = pick_one(e, s, op_lrsa_fused, g, ev, what, "one kernel with its LN + q|k|v",
                            "LN + q|k|v pass, then the attention", &pk)) < 0)
            goto done;
        s->pick.lrsa_passes[g] = (unsigned char)pk;
    }
    if (s->fp16) { /* on the group with the largest patches: the most exp2 a query */
        int big = 0;
        for (int g = 1; g < a->num_groups; g++)
            big = a->groups[g].patch_size > a->groups[big].patch_size ? g : big;
        snprintf(what, sizeof(what), "attention exp2 (iasa + lrsa group %d, tensor cores)", big);
        if ((ret = pick_one(e, s, op_exp2, big, ev, what, "XU pipe", "1 in 4 on the FMA pipe", &s->pick.exp2_fma)) < 0)
            goto done;
    }
done:
    if (ev[0])
        cudaEventDestroy(ev[0]);
    if (ev[1])
        cudaEventDestroy(ev[1]);
    return ret;
}

int catanet_cuda_prepare(CatanetEngine *e, int width, int height)
{
    CudaState *s = e->cuda;
    const CatanetModel *m = e->model;
    const CatanetModelInfo *a = &m->info;
    int ret = 0, entered = 0;
    void *host_tab = NULL;
    if (!s)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "CUDA backend not open");
    if ((ret = enter(e, s)) < 0)
        return ret;
    entered = 1;
    CU(cudaStreamSynchronize(s->stream));
    plan_free(s);
    int min_side = catanet_min_side(a), sc = a->upscale;
    s->in_w = width;
    s->in_h = height;
    s->w = width > min_side ? width : min_side;
    s->h = height > min_side ? height : min_side;
    s->padded = s->w != width || s->h != height;
    size_t N = (size_t)s->w * s->h, d = a->dim, qk = a->qk_dim, mlp = a->mlp_dim, sN = N * sc * sc;
    size_t hv = d; /* heads * dv */

    /* scratch: the largest any op needs */
    size_t work = 0;
    CatanetConv2dArgs c1 = { 1, s->h, s->w, 3, (int)d, 3 }, c2 = { 1, s->h, s->w, (int)d, (int)d, 3 };
    int r = sc == 4 ? 2 : sc;
    CatanetConv2dArgs c3 = { 1, s->h, s->w, (int)d, (int)d * r * r, 3 }, c4 = { 1, s->h * sc, s->w * sc, (int)d, 3, 3 };
    work = max_sz(work, catanet_conv2d_cuda_work(&c1));
    work = max_sz(work, catanet_conv2d_cuda_work(&c2));
    work = max_sz(work, catanet_conv2d_cuda_work(&c3)); /* every conv of the forward: the scratch holds */
    work = max_sz(work, catanet_conv2d_cuda_work(&c4)); /* its permuted weights */
    size_t tab_bytes = 0, tab_off[CATANET_MAX_GROUPS];
    for (int g = 0; g < a->num_groups; g++) {
        work = max_sz(work, catanet_cluster_cuda_work((int)N, (int)d, a->groups[g].num_tokens));
        CatanetLrsaArgs la = { s->h, s->w, (int)d, a->groups[g].patch_size, a->heads, a->qk_dim / a->heads,
                               a->dim / a->heads };
        tab_off[g] = tab_bytes;
        tab_bytes += (catanet_lrsa_cuda_table_bytes(&la) + 255) & ~(size_t)255;
    }
    size_t sizes[] = {
        (size_t)3 * s->in_w * s->in_h, 3 * (size_t)s->in_w * s->in_h * sc * sc, /* d_in, d_out */
        s->padded ? 3 * N : 0,                                                  /* src_pad */
        N * 3, N * d, N * d, N * d, N * d,                                      /* xin, f0, f, res, t1 */
        N * qk, N * qk, N * hv, N * hv, N * d,                                  /* q, k, v, att, y */
        N * mlp, N * mlp,                                                       /* a, dd */
        sN * d, sN * d, sN * 3,                                                 /* u, us, out */
        N, N,                                                                   /* cid, ord (int32) */
        work,                                                                   /* cx.work */
        (tab_bytes + 3) / 4,                                                    /* LRSA tables */
        1,                                                                      /* d_nonfinite */
    };
    enum { NBUF = sizeof(sizes) / sizeof(sizes[0]) };
    size_t off[NBUF], total = 0;
    for (int i = 0; i < NBUF; i++) {
        off[i] = total;
        total += (sizes[i] + 63) & ~(size_t)63; /* 256-byte aligned */
    }
    s->block_bytes = total * sizeof(float);
    cudaError_t st = cudaMalloc(&s->block, s->block_bytes);
    if (st != cudaSuccess) {
        cudaGetLastError();
        s->block = NULL;
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        ret = catanet_engine_fail(e, CATANET_ERR_NOMEM,
                                  "device memory: %dx%d needs %zu MiB, %zu MiB free of %zu MiB (use a smaller tile)",
                                  width, height, s->block_bytes >> 20, fr >> 20, tot >> 20);
        s->block_bytes = 0;
        goto fail;
    }
    float *b = s->block;
    s->d_in = b + off[0];
    s->d_out = b + off[1];
    s->src_pad = s->padded ? b + off[2] : NULL;
    float **bufs[] = { &s->xin, &s->f0, &s->f, &s->res, &s->t1, &s->q, &s->k, &s->v, &s->att, &s->y,
                       &s->a, &s->dd, &s->u, &s->us, &s->out };
    for (int i = 0; i < (int)(sizeof(bufs) / sizeof(bufs[0])); i++)
        *bufs[i] = b + off[3 + i];
    s->cid = (int32_t *)(b + off[18]);
    s->ord = (int32_t *)(b + off[19]);
    s->cx.work = b + off[20];
    s->d_nonfinite = (unsigned *)(b + off[NBUF - 1]);
    s->cx.work_floats = work;
    unsigned char *tabs = (unsigned char *)(b + off[21]);

    /* LRSA patch tables: the exact starts/band weights of the CPU code, built here once */
    s->lrsa_tab = calloc(a->num_groups ? a->num_groups : 1, sizeof(void *));
    host_tab = malloc(tab_bytes ? tab_bytes : 1);
    if (!s->lrsa_tab || !host_tab) {
        ret = catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int g = 0; g < a->num_groups; g++) {
        CatanetLrsaArgs la = { s->h, s->w, (int)d, a->groups[g].patch_size, a->heads, a->qk_dim / a->heads,
                               a->dim / a->heads };
        if ((ret = catanet_lrsa_cuda_table_fill(&la, (unsigned char *)host_tab + tab_off[g])) < 0) {
            ret = catanet_engine_fail(e, ret, "LRSA table for %dx%d, patch %d", s->w, s->h, la.ps);
            goto fail;
        }
        s->lrsa_tab[g] = tabs + tab_off[g];
    }
    if (tab_bytes)
        CU(cudaMemcpy(tabs, host_tab, tab_bytes, cudaMemcpyHostToDevice));
    free(host_tab);
    host_tab = NULL;
    CU(cudaMemsetAsync(s->d_in, 0, sizeof(float) * sizes[0], s->stream));
    if ((ret = pick_kernels(e, s)) < 0) {
        ret = catanet_engine_fail(e, ret, "choosing kernels: %s", s->cx.err);
        goto fail;
    }
    s->f_half = f_half_ok(s, m);
    s->g_half = g_half_ok(s, m);
    s->u_half = u_half_ok(s, m);
    if (s->fp16)
        catanet_log(e, CATANET_LOG_INFO, "catanet: residual stream %dx%d: the ConvFFN outputs stored as %s, the groups' "
                    "inputs and outputs as %s, the upsampled features as %s", s->w, s->h,
                    s->f_half ? "fp16" : "fp32 (a kernel chosen reads fp32)", s->g_half ? "fp16" : "fp32",
                    s->u_half ? "fp16" : "fp32");
    CU(cudaStreamSynchronize(s->stream));

    /* capture the forward; where capture is unavailable the forward runs eagerly */
    st = cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal);
    if (st == cudaSuccess) {
        int fr = forward(s, m);
        cudaGraph_t graph = NULL;
        cudaError_t st2 = cudaStreamEndCapture(s->stream, &graph);
        if (fr < 0) {
            if (graph)
                cudaGraphDestroy(graph);
            cudaGetLastError();
            ret = catanet_engine_fail(e, fr, "forward (capture): %s", s->cx.err);
            goto fail;
        }
        if (st2 == cudaSuccess && graph && cudaGraphInstantiate(&s->exec, graph, 0) == cudaSuccess) {
            s->graph = graph;
        } else {
            if (graph)
                cudaGraphDestroy(graph);
            s->exec = NULL;
            cudaGetLastError();
            catanet_log(e, CATANET_LOG_WARNING, "catanet: CUDA graph capture failed; running the forward eagerly");
        }
    } else {
        cudaGetLastError();
        catanet_log(e, CATANET_LOG_WARNING, "catanet: stream capture unavailable (%s); running eagerly",
                    cudaGetErrorString(st));
    }
    /* one run now: a fault shows up at prepare, not in the first frame */
    if (s->exec)
        CU(cudaGraphLaunch(s->exec, s->stream));
    else if ((ret = forward(s, m)) < 0) {
        ret = catanet_engine_fail(e, ret, "forward: %s", s->cx.err);
        goto fail;
    }
    CU(cudaStreamSynchronize(s->stream));
    catanet_log(e, CATANET_LOG_DEBUG, "catanet: CUDA plan %dx%d: %zu MiB, graph %s", width, height,
                s->block_bytes >> 20, s->exec ? "yes" : "no");
    leave(s);
    return 0;
fail:
    free(host_tab);
    plan_free(s);
    if (entered)
        leave(s);
    return ret;
}

/* launch the planned forward (d_in -> d_out), the non-finite count zeroed before and copied back
 * after it (read it with check_nonfinite once the stream is synchronised) */
static int run(CatanetEngine *e, CudaState *s)
{
    int ret = 0;
    CU(cudaMemsetAsync(s->d_nonfinite, 0, sizeof(unsigned), s->stream));
    if (s->exec) {
        CU(cudaGraphLaunch(s->exec, s->stream));
    } else if ((ret = forward(s, e->model)) < 0) {
        return catanet_engine_fail(e, ret, "forward: %s", s->cx.err);
    }
    CU(cudaMemcpyAsync(&s->h_nonfinite, s->d_nonfinite, sizeof(unsigned), cudaMemcpyDeviceToHost, s->stream));
    return 0;
fail:
    return ret;
}

/* NaN or Inf in the frame is an error, as on the CPU (engine.c): counted on the device by the
 * kernel that writes the output, so nothing is read back but the count */
static int check_nonfinite(CatanetEngine *e, CudaState *s)
{
    if (!s->h_nonfinite)
        return 0;
    size_t n = (size_t)3 * s->in_w * s->in_h * e->model->info.upscale * e->model->info.upscale;
    return catanet_engine_fail(e, CATANET_ERR_NONFINITE,
                               "the output frame holds %u non-finite values (NaN or Inf) of %zu: the model's "
                               "weights or the input are out of range", s->h_nonfinite, n);
}

int catanet_cuda_process(CatanetEngine *e, const float *in, float *out)
{
    CudaState *s = e->cuda;
    int ret;
    if (!s || !s->block)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "CUDA process before prepare");
    if ((ret = enter(e, s)) < 0)
        return ret;
    int sc = e->model->info.upscale;
    size_t n_in = (size_t)3 * s->in_w * s->in_h, n_out = n_in * sc * sc;
    CU(cudaMemcpyAsync(s->d_in, in, sizeof(float) * n_in, cudaMemcpyHostToDevice, s->stream));
    if ((ret = run(e, s)) < 0)
        goto fail;
    CU(cudaMemcpyAsync(out, s->d_out, sizeof(float) * n_out, cudaMemcpyDeviceToHost, s->stream));
    CU(cudaStreamSynchronize(s->stream));
    ret = check_nonfinite(e, s);
    leave(s);
    return ret;
fail:
    leave(s);
    return ret;
}

int catanet_cuda_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out)
{
    CudaState *s = e->cuda;
    int ret;
    if (!s || !s->block)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "CUDA process before prepare");
    if ((ret = enter(e, s)) < 0)
        return ret;
    int sc = e->model->info.upscale;
    size_t n_in = (size_t)3 * s->in_w * s->in_h, n_out = n_in * sc * sc;
    if (in->on_device) {
        if ((ret = catanet_image_to_rgb_cuda(&s->cx, in, s->d_in)) < 0) {
            ret = catanet_engine_fail(e, ret, "%s", s->cx.err);
            goto fail;
        }
    } else {
        if ((ret = catanet_image_to_rgb(in, e->rgb_in)) < 0) {
            ret = catanet_engine_fail(e, ret, "unsupported input image (format %d, %d bits)", (int)in->format,
                                      in->bits);
            goto fail;
        }
        CU(cudaMemcpyAsync(s->d_in, e->rgb_in, sizeof(float) * n_in, cudaMemcpyHostToDevice, s->stream));
    }
    if ((ret = run(e, s)) < 0)
        goto fail;
    if (out->on_device) {
        if ((ret = catanet_image_from_rgb_cuda(&s->cx, s->d_out, out)) < 0) {
            ret = catanet_engine_fail(e, ret, "%s", s->cx.err);
            goto fail;
        }
        /* the frame is finished before it is returned, also on the caller's stream: its non-finite
         * count must be read (a refused frame is an error of this call, not of the next) */
        CU(cudaStreamSynchronize(s->stream));
        if ((ret = check_nonfinite(e, s)) < 0)
            goto fail;
    } else {
        CU(cudaMemcpyAsync(e->rgb_out, s->d_out, sizeof(float) * n_out, cudaMemcpyDeviceToHost, s->stream));
        CU(cudaStreamSynchronize(s->stream));
        if ((ret = check_nonfinite(e, s)) < 0)
            goto fail;
        if ((ret = catanet_image_from_rgb(e->rgb_out, out)) < 0) {
            ret = catanet_engine_fail(e, ret, "unsupported output image (format %d, %d bits)", (int)out->format,
                                      out->bits);
            goto fail;
        }
    }
    leave(s);
    return 0;
fail:
    leave(s);
    return ret;
}

/* ---- profile: the forward's steps timed one by one ---- */

typedef struct ProfRow {
    const char *step;
    int calls;
    double ms;
} ProfRow;

static int prof_cmp(const void *a, const void *b)
{
    double x = ((const ProfRow *)a)->ms, y = ((const ProfRow *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

int catanet_cuda_profile(CatanetEngine *e, char *report, size_t size)
{
    CudaState *s = e->cuda;
    const CatanetModel *m = e->model;
    int ret = 0, cap = 32 + 24 * m->info.num_groups, created = 0;
    if (!s || !s->block)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "CUDA profile before prepare");
    if ((ret = enter(e, s)) < 0)
        return ret;
    ProfRow *rows = calloc((size_t)cap, sizeof(ProfRow));
    s->prof_ev = calloc((size_t)cap, sizeof(cudaEvent_t));
    s->prof_step = calloc((size_t)cap, sizeof(const char *));
    if (!rows || !s->prof_ev || !s->prof_step) {
        ret = catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (; created < cap; created++)
        CU(cudaEventCreate(&s->prof_ev[created]));
    s->prof_cap = cap;
    s->prof_n = 0;
    CU(cudaStreamSynchronize(s->stream));
    if ((ret = forward(s, m)) < 0) {
        ret = catanet_engine_fail(e, ret, "forward (profile): %s", s->cx.err);
        goto fail;
    }
    CU(cudaEventSynchronize(s->prof_ev[s->prof_n - 1]));
    int nrows = 0;
    float total = 0;
    CU(cudaEventElapsedTime(&total, s->prof_ev[0], s->prof_ev[s->prof_n - 1]));
    for (int i = 1; i < s->prof_n; i++) {
        float ms = 0;
        CU(cudaEventElapsedTime(&ms, s->prof_ev[i - 1], s->prof_ev[i]));
        int r = 0;
        while (r < nrows && strcmp(rows[r].step, s->prof_step[i]))
            r++;
        if (r == nrows)
            rows[nrows++].step = s->prof_step[i];
        rows[r].calls++;
        rows[r].ms += ms;
    }
    qsort(rows, (size_t)nrows, sizeof(ProfRow), prof_cmp);
    size_t at = 0;
    at += (size_t)snprintf(report, size, "%-40s %6s %9s %6s\n", "step (eager, one event after each)", "calls", "ms",
                           "share");
    for (int r = 0; r < nrows && at < size; r++)
        at += (size_t)snprintf(report + at, size - at, "%-40s %6d %9.3f %5.1f%%\n", rows[r].step, rows[r].calls,
                               rows[r].ms, total > 0 ? 100.0 * rows[r].ms / total : 0.0);
    if (at < size)
        snprintf(report + at, size - at, "%-40s %6s %9.3f %5.1f%%\n", "total", "", (double)total, 100.0);
fail:
    for (int i = 0; i < created; i++)
        cudaEventDestroy(s->prof_ev[i]);
    free(s->prof_ev);
    free(s->prof_step);
    free(rows);
    s->prof_ev = NULL;
    s->prof_step = NULL;
    s->prof_n = s->prof_cap = 0;
    leave(s);
    return ret;
}

int64_t catanet_cuda_memory_bytes(const CatanetEngine *e)
{
    const CudaState *s = e->cuda;
    return s ? s->weight_bytes + (int64_t)s->block_bytes : 0;
}

const char *catanet_cuda_device_name(const CatanetEngine *e)
{
    const CudaState *s = e->cuda;
    return s ? s->name : "none";
}

int catanet_cuda_debug_cid(CatanetEngine *e, int32_t *cid, size_t n)
{
    CudaState *s = e->cuda;
    if (!s || !s->block || !e->model->info.num_groups || n != (size_t)s->w * s->h)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "debug_cid: no plan, no group or %zu tokens", n);
    int ret = enter(e, s);
    if (ret < 0)
        return ret;
    cudaError_t st = cudaStreamSynchronize(s->stream);
    if (st == cudaSuccess)
        st = cudaMemcpy(cid, s->cid, sizeof(int32_t) * n, cudaMemcpyDeviceToHost);
    leave(s);
    return st == cudaSuccess ? 0 : catanet_engine_fail(e, CATANET_ERR_CUDA, "debug_cid: %s", cudaGetErrorString(st));
}
