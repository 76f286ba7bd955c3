/*
 * center_iter.cu: the token-center machinery of training mode (twin of kernels/cpu/center_iter.c):
 * the row normalisation (F.normalize) forward and backward (the backward also used by fakd.cu), the
 * average-pool center initialisation of the first step, one hard k-means step on the unit sphere
 * pooled over the batch, the gradient through the differentiable step cu_out = normalize(sum), and
 * the EMA of the `means` buffers after a step.
 * The forwards give the CPU references' bits (_ref: the same sums in the same order, no FMA).
 * defines: catanet_normalize_fwd_cuda, catanet_normalize_bwd_cuda, catanet_center_init_cuda,
 *          catanet_center_iter_fwd_cuda, catanet_center_iter_bwd_cuda, catanet_center_ema_cuda
 */
#include "cuda_common.cuh"
#include "reduce.cuh"

#define NB_WARPS 8

/* one row of the normalize backward, by one warp: the CPU twin's double expressions, the dot
 * summed by the warp butterfly (the only difference from the CPU: that summation order) */
__device__ static inline void normalize_bwd_row(int c, int lane, const float *yr, float norm, const float *dyr,
                                                float *dxr)
{
    if (norm > CATANET_NORM_EPS) {
        double dot = 0.0;
        for (int i = lane; i < c; i += 32)
            dot += (double)yr[i] * dyr[i];
        dot = warp_sum_d(dot);
        double inv = 1.0 / norm;
        for (int i = lane; i < c; i += 32)
            dxr[i] += (float)((dyr[i] - yr[i] * dot) * inv);
    } else {
        for (int i = lane; i < c; i += 32)
            dxr[i] += (float)(dyr[i] / CATANET_NORM_EPS);
    }
}

__global__ void normalize_bwd_kernel(int n, int c, const float *y, const float *norm, const float *dy, float *dx)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * NB_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)n)
        return; /* whole warps leave together */
    normalize_bwd_row(c, lane, y + row * c, norm[row], dy + row * c, dx + row * c);
}

/* dx += (dy - y (y.dy)) / |x|  (dy / eps below eps) */
int catanet_normalize_bwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *y, const float *norm,
                               const float *dy, float *dx)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0, "normalize_bwd_cuda");
    CUDA_REQUIRE(cx, y && norm && dy && dx, "normalize_bwd_cuda");
    if (n == 0)
        return 0;
    normalize_bwd_kernel<<<(unsigned)(((size_t)n + NB_WARPS - 1) / NB_WARPS), 32 * NB_WARPS, 0, cx->stream>>>(
        n, c, y, norm, dy, dx);
    CUDA_LAUNCHED(cx, "normalize_bwd");
    return 0;
}

/* per center j (one warp): |sum_j| in double, dsum_work[j] = 0 + normalize_bwd(cu_out[j]) where
 * count[j] > 0 (empty clusters kept their center: no gradient) */
__global__ void center_dsum_kernel(int c, int m, const float *sum, const int32_t *count, const float *cu_out,
                                   const float *dcu_out, float *dsum)
{
    int lane = threadIdx.x & 31, j = blockIdx.x * NB_WARPS + (threadIdx.x >> 5);
    if (j >= m)
        return;
    const float *sj = sum + (size_t)j * c;
    float *dj = dsum + (size_t)j * c;
    double s = 0.0;
    for (int i = lane; i < c; i += 32)
        s += (double)sj[i] * sj[i];
    float nrm = (float)sqrt(warp_sum_d(s));
    for (int i = lane; i < c; i += 32)
        dj[i] = 0.0f;
    __syncwarp();
    if (count[j] > 0)
        normalize_bwd_row(c, lane, cu_out + (size_t)j * c, nrm, dcu_out + (size_t)j * c, dj);
}

/* dxu[r][i] += dsum[bucket[r]][i]: a gather, one thread per element */
__global__ void center_scatter_kernel(int n, int c, const int32_t *bucket, const float *dsum, float *dxu)
{
    GRID_STRIDE(idx, (size_t)n * c) {
        size_t r = idx / c;
        int i = (int)(idx - r * c);
        dxu[idx] += dsum[(size_t)bucket[r] * c + i];
    }
}

int catanet_center_iter_bwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const int32_t *bucket,
                                 const float *sum, const int32_t *count, const float *cu_out,
                                 const float *dcu_out, float *dsum_work, float *dxu)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0 && c <= CATANET_MAX_DIM && m > 0 && m <= CATANET_MAX_CENTERS,
                 "center_iter_bwd_cuda");
    CUDA_REQUIRE(cx, bucket && sum && count && cu_out && dcu_out && dsum_work && dxu, "center_iter_bwd_cuda");
    center_dsum_kernel<<<(unsigned)((m + NB_WARPS - 1) / NB_WARPS), 32 * NB_WARPS, 0, cx->stream>>>(
        c, m, sum, count, cu_out, dcu_out, dsum_work);
    CUDA_LAUNCHED(cx, "center_iter_bwd dsum");
    if (n == 0)
        return 0;
    size_t total = (size_t)n * c;
    center_scatter_kernel<<<grid_for(total, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, c, bucket, dsum_work,
                                                                                          dxu);
    CUDA_LAUNCHED(cx, "center_iter_bwd dxu");
    return 0;
}

/* ---- forwards ---- */

/* y = x / max(|x|, eps) per row, norm = |x|: one thread per row, catanet_normalize_fwd_ref's
 * sequential double sum (the same bits) */
__device__ static inline void normalize_row(int c, const float *xr, float *yr, float *norm)
{
    double s = 0.0;
    for (int i = 0; i < c; i++)
        s = __dadd_rn(s, __dmul_rn((double)xr[i], (double)xr[i]));
    double nr = sqrt(s);
    float inv = (float)(1.0 / (nr > CATANET_NORM_EPS ? nr : CATANET_NORM_EPS));
    for (int i = 0; i < c; i++)
        yr[i] = __fmul_rn(xr[i], inv);
    if (norm)
        *norm = (float)nr;
}

__global__ void normalize_fwd_kernel(int n, int c, const float *x, float *y, float *norm)
{
    GRID_STRIDE(r, n) {
        normalize_row(c, x + r * c, y + r * c, norm ? norm + r : NULL);
    }
}

int catanet_normalize_fwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, float *y, float *norm)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0, "normalize_fwd_cuda");
    CUDA_REQUIRE(cx, x && y, "normalize_fwd_cuda");
    if (n == 0)
        return 0;
    normalize_fwd_kernel<<<grid_for((size_t)n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, c, x, y, norm);
    CUDA_LAUNCHED(cx, "normalize_fwd");
    return 0;
}

/* c0[j][i] = mean over images b and chunk positions t of xn[b][mirror(j*len + t)][i]: one thread per
 * (j, i), the CPU twin's double sum in its order (b outer, t inner) and its division */
__global__ void center_init_kernel(int batch, int n, int c, int m, const float *xn, float *c0)
{
    int pad = m - n % m, len = (n + pad) / m;
    GRID_STRIDE(idx, (size_t)m * c) {
        int j = (int)(idx / c), i = (int)(idx % c);
        double acc = 0.0;
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < len; t++) {
                int src = mirror_index((long long)j * len + t, n);
                acc = __dadd_rn(acc, (double)xn[((size_t)b * n + src) * c + i]);
            }
        c0[idx] = (float)(acc / ((double)batch * len));
    }
}

int catanet_center_init_cuda(CatanetCudaCtx *cx, int batch, int n, int c, int m, const float *xn, float *c0)
{
    CUDA_REQUIRE(cx, batch > 0 && n > 0 && c > 0 && m > 0 && m <= CATANET_MAX_CENTERS, "center_init_cuda");
    CUDA_REQUIRE(cx, xn && c0, "center_init_cuda");
    size_t total = (size_t)m * c;
    center_init_kernel<<<grid_for(total, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(batch, n, c, m, xn, c0);
    CUDA_LAUNCHED(cx, "center_init");
    return 0;
}

/* bucket[r] = the first argmax_j <xu_r, cu_j>: one thread per token, the float dot in the CPU
 * reference's order without FMA (so the same bits, the same ties) */
__global__ void center_bucket_kernel(int n, int c, int m, const float *xu, const float *cu, int32_t *bucket)
{
    GRID_STRIDE(r, n) {
        const float *x = xu + r * c;
        int best = 0;
        float best_s = -INFINITY;
        for (int j = 0; j < m; j++) {
            const float *cj = cu + (size_t)j * c;
            float s = 0.0f;
            for (int i = 0; i < c; i++)
                s = __fadd_rn(s, __fmul_rn(x[i], cj[i]));
            if (s > best_s) {
                best_s = s;
                best = j;
            }
        }
        bucket[r] = best;
    }
}

/* one block per center j: count[j], sum[j][i] (float, members in token order: the CPU's bits),
 * then cu_out[j] = normalize(sum[j]) (thread 0, the CPU's sequential double norm) or cu_in[j] when
 * the cluster is empty. The plain first version: every thread scans all n buckets. */
#define CI_THREADS 64
__global__ void __launch_bounds__(CI_THREADS) center_sum_kernel(int n, int c, const float *xu, const float *cu_in,
                                                                const int32_t *bucket, float *sum, int32_t *count,
                                                                float *cu_out)
{
    int j = blockIdx.x, t = threadIdx.x;
    float *sj = sum + (size_t)j * c;
    for (int i = t; i < c; i += CI_THREADS) {
        float s = 0.0f;
        for (int r = 0; r < n; r++)
            if (bucket[r] == j)
                s = __fadd_rn(s, xu[(size_t)r * c + i]);
        sj[i] = s;
    }
    __syncthreads(); /* sj complete (global writes of this block are visible after the barrier) */
    if (t == 0) {
        int cnt = 0;
        for (int r = 0; r < n; r++)
            cnt += bucket[r] == j;
        count[j] = cnt;
        if (cnt > 0)
            normalize_row(c, sj, cu_out + (size_t)j * c, NULL);
        else
            for (int i = 0; i < c; i++)
                cu_out[(size_t)j * c + i] = cu_in[(size_t)j * c + i];
    }
}

int catanet_center_iter_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const float *xu, const float *cu_in,
                                 int32_t *bucket, float *sum, int32_t *count, float *cu_out)
{
    CUDA_REQUIRE(cx, n >= 0 && c > 0 && c <= CATANET_MAX_DIM && m > 0 && m <= CATANET_MAX_CENTERS,
                 "center_iter_fwd_cuda");
    CUDA_REQUIRE(cx, xu && cu_in && bucket && sum && count && cu_out && cu_out != cu_in, "center_iter_fwd_cuda");
    if (n > 0) {
        center_bucket_kernel<<<grid_for((size_t)n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, c, m, xu, cu_in,
                                                                                                 bucket);
        CUDA_LAUNCHED(cx, "center_iter_fwd bucket");
    }
    center_sum_kernel<<<(unsigned)m, CI_THREADS, 0, cx->stream>>>(n, c, xu, cu_in, bucket, sum, count, cu_out);
    CUDA_LAUNCHED(cx, "center_iter_fwd sums");
    return 0;
}

/* means = means 0.999 + xg (1 - 0.999), the float expression of training/model_train.c's
 * tab_update_means without FMA contraction (the same bits) */
__global__ void center_ema_kernel(size_t n, float *means, const float *xg)
{
    GRID_STRIDE(i, n) {
        means[i] = __fadd_rn(__fmul_rn(means[i], 0.999f), __fmul_rn(xg[i], 1.0f - 0.999f));
    }
}

int catanet_center_ema_cuda(CatanetCudaCtx *cx, size_t n, float *means, const float *xg)
{
    CUDA_REQUIRE(cx, means && xg, "center_ema_cuda");
    if (n == 0)
        return 0;
    center_ema_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, means, xg);
    CUDA_LAUNCHED(cx, "center_ema");
    return 0;
}
