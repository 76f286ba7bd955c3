/*
 * linear.cu: nn.Linear on token rows with cuBLAS (twin of kernels/cpu/linear.c).
 * defines: catanet_linear_fwd_cuda, catanet_cuda_gemm_rm (shared with conv2d.cu)
 */
#include "cuda_common.cuh"
#include "gemm.cuh"

/* y [rows][out] = bias broadcast (the GEMM then accumulates with beta = 1, as the CPU path does);
 * rows over blockIdx/threadIdx.y, columns over threadIdx.x */
__global__ void bias_rows_kernel(int rows, int out, const float *b, float *y)
{
    for (int r = blockIdx.x * blockDim.y + threadIdx.y; r < rows; r += gridDim.x * blockDim.y)
        for (int o = threadIdx.x; o < out; o += blockDim.x)
            y[(size_t)r * out + o] = b[o];
}

/* Row-major C[m][n] (+)= A[m][k] B[n][k]^T, i.e. x w^T with PyTorch weights. In cuBLAS's
 * column-major view that is C^T (n x m) = B (n x k, stored k-major: op T) * A^T (k x m). */
int catanet_cuda_gemm_rm(CatanetCudaCtx *cx, int m, int n, int k, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc)
{
    const float alpha = 1.0f;
    if (m == 0 || n == 0)
        return 0;
    if (cx->gemm_fp16)
        CUBLAS_TRY(cx, cublasGemmEx(cx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_32F,
                                    ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc,
                                    CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_TRY(cx, cublasSgemm(cx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a, lda,
                                   &beta, c, ldc));
    return 0;
}

/* x [n,in], w [out,in], b [out] or NULL -> y [n,out] */
int catanet_linear_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y)
{
    CUDA_REQUIRE(cx, n >= 0 && in > 0 && out > 0, "linear_fwd_cuda");
    if (n == 0)
        return 0;
    if (b) {
        unsigned blocks = (unsigned)((n + 7) / 8 < 65535 * 16 ? (n + 7) / 8 : 65535 * 16);
        bias_rows_kernel<<<blocks, dim3(32, 8), 0, cx->stream>>>(n, out, b, y);
        CUDA_LAUNCHED(cx, "linear bias");
    }
    return catanet_cuda_gemm_rm(cx, n, out, in, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}
