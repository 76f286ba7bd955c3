/*
 * center_iter.cu: the backward of the token-center machinery of training mode (twin of
 * kernels/cpu/center_iter.c): the row normalisation's backward (also used by fakd.cu) and the
 * gradient through the differentiable center step cu_out = normalize(cluster sum).
 * The forward pieces (center init, the k-means step, normalize forward) have no CUDA twin yet.
 * defines: catanet_normalize_bwd_cuda, catanet_center_iter_bwd_cuda
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
