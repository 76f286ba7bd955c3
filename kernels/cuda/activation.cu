/*
 * activation.cu: exact GELU, LeakyReLU(0.1) and the residual add, elementwise (twin of
 * kernels/cpu/activation.c; the add is forward_cpu.c's add_inplace).
 * defines: catanet_gelu_fwd_cuda, catanet_lrelu_fwd_cuda, catanet_add_fwd_cuda
 */
#include "cuda_common.cuh"

__global__ void gelu_kernel(size_t n, const float *x, float *y)
{
    GRID_STRIDE(i, n)
        y[i] = gelu_exact(x[i]);
}

__global__ void lrelu_kernel(size_t n, const float *x, float *y)
{
    GRID_STRIDE(i, n) {
        float v = x[i];
        y[i] = v >= 0.0f ? v : CATANET_LRELU_SLOPE * v;
    }
}

__global__ void add_kernel(size_t n, const float *x, const float *y, float *out)
{
    GRID_STRIDE(i, n)
        out[i] = x[i] + y[i];
}

int catanet_gelu_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, float *y)
{
    if (n == 0)
        return 0;
    gelu_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, x, y);
    CUDA_LAUNCHED(cx, "gelu");
    return 0;
}

int catanet_lrelu_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, float *y)
{
    if (n == 0)
        return 0;
    lrelu_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, x, y);
    CUDA_LAUNCHED(cx, "lrelu");
    return 0;
}

int catanet_add_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, const float *y, float *out)
{
    if (n == 0)
        return 0;
    add_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, x, y, out);
    CUDA_LAUNCHED(cx, "add");
    return 0;
}
