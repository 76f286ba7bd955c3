/*
 * activation.cu: exact GELU, LeakyReLU(0.1) and the residual add, elementwise (twin of
 * kernels/cpu/activation.c; the add is forward_cpu.c's add_inplace).
 * defines: catanet_gelu_fwd_cuda, catanet_lrelu_fwd_cuda, catanet_add_fwd_cuda, catanet_gelu_bwd_cuda,
 *          catanet_lrelu_bwd_cuda
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

/* ---------------- backward (twins of catanet_gelu_bwd_ref, catanet_lrelu_bwd_ref) ----------------
 * The CPU twin's float operations in its order, each rounded (__fmul_rn/__fadd_rn: no FMA
 * contraction, as the CPU build's -ffp-contract=off); only erff/expf (CUDA libdevice, <= 2 ulp)
 * differ from glibc's. */
__global__ void gelu_bwd_kernel(size_t n, const float *x, const float *dy, float *dx)
{
    GRID_STRIDE(i, n) {
        float xi = x[i];
        float cdf = __fmul_rn(0.5f, __fadd_rn(1.0f, erff(__fmul_rn(xi, 0.70710678118654752f))));
        float pdf = __fmul_rn(expf(__fmul_rn(__fmul_rn(-0.5f, xi), xi)), 0.39894228040143268f);
        dx[i] = __fadd_rn(dx[i], __fmul_rn(dy[i], __fadd_rn(cdf, __fmul_rn(xi, pdf))));
    }
}

__global__ void lrelu_bwd_kernel(size_t n, const float *y, const float *dy, float *dx)
{
    GRID_STRIDE(i, n) {
        float g = dy[i];
        dx[i] = __fadd_rn(dx[i], y[i] > 0.0f ? g : __fmul_rn(CATANET_LRELU_SLOPE, g));
    }
}

/* dx += dy gelu'(x) */
int catanet_gelu_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, const float *dy, float *dx)
{
    if (n == 0)
        return 0;
    CUDA_REQUIRE(cx, x && dy && dx, "gelu_bwd_cuda");
    gelu_bwd_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, x, dy, dx);
    CUDA_LAUNCHED(cx, "gelu_bwd");
    return 0;
}

/* dx += dy lrelu'(y), from the output y (its sign is the input's) */
int catanet_lrelu_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *y, const float *dy, float *dx)
{
    if (n == 0)
        return 0;
    CUDA_REQUIRE(cx, y && dy && dx, "lrelu_bwd_cuda");
    lrelu_bwd_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, y, dy, dx);
    CUDA_LAUNCHED(cx, "lrelu_bwd");
    return 0;
}
