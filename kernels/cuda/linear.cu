/*
 * linear.cu: nn.Linear on token rows with cuBLAS (twin of kernels/cpu/linear.c).
 * defines: catanet_linear_fwd_cuda, catanet_cuda_gemm_rm (shared with conv2d.cu), catanet_cuda_sgemm_rm,
 *          catanet_linear_bwd_cuda
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

/* ---------------- backward ---------------- */
#include "reduce.cuh"

/* Row-major C = alpha op(A) op(B) + beta C. cuBLAS sees row-major X [r][c] (ld) as the
 * column-major c x r matrix X^T, so C^T (n x m) = op(B)^T op(A)^T: B's operand is N when B is
 * stored [k][n] (its column-major view is already op(B)^T), T when stored [n][k]; A likewise. */
int catanet_cuda_sgemm_rm(CatanetCudaCtx *cx, int ta, int tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m == 0 || n == 0)
        return 0;
    CUBLAS_TRY(cx, cublasSgemm(cx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                               &alpha, b, ldb, a, lda, &beta, c, ldc));
    return 0;
}

/* forward y = x w^T + b:  dx (may be NULL) += dy w;  dw (may be NULL) += dy^T x;  db (may be NULL) +=
 * column sums of dy. dx and dw are cuBLAS GEMMs with beta = 1 (accumulate); db is the fixed-order
 * column reduction of reduce.cuh (double partials): all three are the same bits on every run. */
int catanet_linear_bwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db)
{
    CUDA_REQUIRE(cx, n >= 0 && in > 0 && out > 0, "linear_bwd_cuda");
    CUDA_REQUIRE(cx, dy && (!dx || w) && (!dw || x), "linear_bwd_cuda");
    if (n == 0)
        return 0;
    int ret;
    if (dx && (ret = catanet_cuda_sgemm_rm(cx, 0, 0, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in)) < 0)
        return ret;
    if (dw && (ret = catanet_cuda_sgemm_rm(cx, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in)) < 0)
        return ret;
    if (db) {
        ColTerm t = { dy, out };
        return launch_colsum(cx, n, out, t, db, 1, "linear_bwd db");
    }
    return 0;
}
