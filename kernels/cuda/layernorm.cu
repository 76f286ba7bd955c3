/*
 * layernorm.cu: LayerNorm over the channel (last) dim, eps 1e-5, affine (twin of
 * kernels/cpu/layernorm.c). One warp per row; the row lives in registers, two-pass statistics in
 * fp32 (the CPU twin uses double; the difference is far below the test tolerance for C <= 256).
 * defines: catanet_layernorm_fwd_cuda
 */
#include "cuda_common.cuh"

#define LN_PER_LANE (CATANET_MAX_DIM / 32)
#define LN_WARPS 8

__device__ static inline float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

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
