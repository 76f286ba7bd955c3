/* gemm.cuh: the row-major GEMM wrapper linear.cu defines and conv2d.cu uses. */
#ifndef CATANET_GEMM_CUH
#define CATANET_GEMM_CUH

#include "kernels_cuda.h"

/* row-major C[m][n] = A[m][k] B[n][k]^T + beta C, in the context's GEMM precision */
int catanet_cuda_gemm_rm(CatanetCudaCtx *cx, int m, int n, int k, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

#endif
