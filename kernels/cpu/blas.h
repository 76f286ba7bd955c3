/*
 * blas.h: the one GEMM entry of the CPU kernels. catanet_sgemm takes cblas_sgemm's arguments and
 * calls it, except that under a BLAS build that is not thread-safe (OpenBLAS's serial build shares
 * its work buffers between callers) the calls from the engine's threads are made one at a time:
 * concurrent calls there gave wrong, run-to-run different results. blas_threads.c has the rules.
 */
#ifndef CATANET_BLAS_H
#define CATANET_BLAS_H

#include <cblas.h>

void catanet_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                   float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

#endif
