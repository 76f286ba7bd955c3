/*
 * layernorm.cu: LayerNorm over the channel (last) dim, eps 1e-5, affine (twin of
 * kernels/cpu/layernorm.c). One warp per row; the row lives in registers, two-pass statistics in
 * fp32 (the CPU twin uses double; the difference is far below the test tolerance for C <= 256).
 * defines: catanet_layernorm_fwd_cuda, catanet_layernorm_fwd_stats_cuda, catanet_layernorm_bwd_cuda
 */
#include "cuda_common.cuh"
#include "reduce.cuh"

#define LN_PER_LANE (CATANET_MAX_DIM / 32)
#define LN_WARPS 8

/* x [n,c] -> y [n,c] */
__global__ void layernorm_kernel(int n, int c, const float *x, const float *g, const float *b, float *y)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)n)
        return; /* whole warps leave together: the shuffles below see full warps */
    const float *xr = x + row * c;
    float v[LN_PER_LANE];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < LN_PER_LANE; i++) {
        int ch = lane + 32 * i;
        v[i] = ch < c ? xr[ch] : 0.0f;
        s += v[i];
    }
    float mean = warp_sum(s) / c;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < LN_PER_LANE; i++) {
        int ch = lane + 32 * i;
        float d = ch < c ? v[i] - mean : 0.0f;
        q += d * d;
    }
    float rstd = rsqrtf(warp_sum(q) / c + CATANET_LN_EPS);
    float *yr = y + row * c;
#pragma unroll
    for (int i = 0; i < LN_PER_LANE; i++) {
        int ch = lane + 32 * i;
        if (ch < c)
            yr[ch] = (v[i] - mean) * rstd * g[ch] + b[ch];
    }
}

int catanet_layernorm_fwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                               const float *b, float *y)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0 && c <= CATANET_MAX_DIM, "layernorm_fwd_cuda");
    if (n == 0)
        return 0;
    unsigned blocks = (unsigned)(((size_t)n + LN_WARPS - 1) / LN_WARPS);
    layernorm_kernel<<<blocks, 32 * LN_WARPS, 0, cx->stream>>>(n, c, x, g, b, y);
    CUDA_LAUNCHED(cx, "layernorm");
    return 0;
}

/* ---------------- forward with statistics, backward ---------------- */

/* the twin of catanet_layernorm_fwd_stats_cpu: one warp per row, the statistics in double as the
 * CPU's ln_row (mean, then the centred second moment), y = (float)((x - mean) rstd) g + b */
__global__ void layernorm_stats_kernel(int n, int c, const float *x, const float *g, const float *b, float *y,
                                       float *mean_out, float *rstd_out)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)n)
        return; /* whole warps leave together */
    const float *xr = x + row * c;
    double s = 0.0;
    for (int ch = lane; ch < c; ch += 32)
        s += xr[ch];
    double mean = warp_sum_d(s) / c;
    double v = 0.0;
    for (int ch = lane; ch < c; ch += 32) {
        double d = xr[ch] - mean;
        v += d * d;
    }
    double rstd = 1.0 / sqrt(warp_sum_d(v) / c + CATANET_LN_EPS);
    float *yr = y + row * c;
    for (int ch = lane; ch < c; ch += 32)
        yr[ch] = __fadd_rn(__fmul_rn((float)((xr[ch] - mean) * rstd), g[ch]), b[ch]);
    if (lane == 0) {
        mean_out[row] = (float)mean;
        rstd_out[row] = (float)rstd;
    }
}

int catanet_layernorm_fwd_stats_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                                     const float *b, float *y, float *mean, float *rstd)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0 && c <= CATANET_MAX_DIM, "layernorm_fwd_stats_cuda");
    CUDA_REQUIRE(cx, x && g && b && y && mean && rstd, "layernorm_fwd_stats_cuda");
    if (n == 0)
        return 0;
    unsigned blocks = (unsigned)(((size_t)n + LN_WARPS - 1) / LN_WARPS);
    layernorm_stats_kernel<<<blocks, 32 * LN_WARPS, 0, cx->stream>>>(n, c, x, g, b, y, mean, rstd);
    CUDA_LAUNCHED(cx, "layernorm_fwd_stats");
    return 0;
}

/* xhat as the CPU twin forms it: (x - mean) rstd in float */
__device__ static inline float ln_xhat(float x, float mean, float rstd)
{
    return __fmul_rn(__fsub_rn(x, mean), rstd);
}

/* dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = dy g; one warp per row,
 * the two row means in double (the CPU twin's), each row written by its own warp only */
__global__ void layernorm_bwd_dx_kernel(int n, int c, const float *x, const float *g, const float *mean,
                                        const float *rstd, const float *dy, float *dx)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)n)
        return;
    const float *xr = x + row * c, *dyr = dy + row * c;
    float mu = mean[row], rs = rstd[row];
    double m1 = 0.0, m2 = 0.0;
    for (int ch = lane; ch < c; ch += 32) {
        double xh = ln_xhat(xr[ch], mu, rs), dxh = (double)dyr[ch] * g[ch];
        m1 += dxh;
        m2 += dxh * xh;
    }
    m1 = warp_sum_d(m1) / c;
    m2 = warp_sum_d(m2) / c;
    float *dxr = dx + row * c;
    for (int ch = lane; ch < c; ch += 32) {
        double xh = ln_xhat(xr[ch], mu, rs), dxh = (double)dyr[ch] * g[ch];
        dxr[ch] = __fadd_rn(dxr[ch], (float)(rs * (dxh - m1 - xh * m2)));
    }
}

/* dg column term: dy xhat */
struct LnDgTerm {
    int c;
    const float *x, *mean, *rstd, *dy;
    __device__ double operator()(int r, int ch) const
    {
        size_t i = (size_t)r * c + ch;
        return (double)dy[i] * ln_xhat(x[i], mean[r], rstd[r]);
    }
};

/* dx: one warp per row; dg, db: the fixed-order column reduction (reduce.cuh), double partials */
int catanet_layernorm_bwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                               const float *mean, const float *rstd, const float *dy, float *dx, float *dg,
                               float *db)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0 && c <= CATANET_MAX_DIM, "layernorm_bwd_cuda");
    CUDA_REQUIRE(cx, x && g && mean && rstd && dy, "layernorm_bwd_cuda");
    if (n == 0)
        return 0;
    if (dx) {
        unsigned blocks = (unsigned)(((size_t)n + LN_WARPS - 1) / LN_WARPS);
        layernorm_bwd_dx_kernel<<<blocks, 32 * LN_WARPS, 0, cx->stream>>>(n, c, x, g, mean, rstd, dy, dx);
        CUDA_LAUNCHED(cx, "layernorm_bwd dx");
    }
    int ret;
    if (dg) {
        LnDgTerm t = { c, x, mean, rstd, dy };
        if ((ret = launch_colsum(cx, n, c, t, dg, 1, "layernorm_bwd dg")) < 0)
            return ret;
    }
    if (db) {
        ColTerm t = { dy, c };
        if ((ret = launch_colsum(cx, n, c, t, db, 1, "layernorm_bwd db")) < 0)
            return ret;
    }
    return 0;
}
