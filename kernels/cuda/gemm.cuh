/* gemm.cuh: the row-major GEMM wrapper linear.cu defines and conv2d.cu uses. */
#ifndef CATANET_GEMM_CUH
#define CATANET_GEMM_CUH

#include "kernels_cuda.h"

/* row-major C[m][n] = A[m][k] B[n][k]^T + beta C, in the context's GEMM precision */
int catanet_cuda_gemm_rm(CatanetCudaCtx *cx, int m, int n, int k, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

/* row-major C[m][n] = alpha op(A) op(B) + beta C, always pure fp32 (cublasSgemm; the backward
 * twins' GEMMs: gradients stay fp32 whatever cx->gemm_fp16 says). op(A) is [m][k]: A is stored
 * [m][k] (ta = 0) or [k][m] (ta = 1); op(B) is [k][n]: B stored [k][n] (tb = 0) or [n][k] (tb = 1). */
int catanet_cuda_sgemm_rm(CatanetCudaCtx *cx, int ta, int tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
