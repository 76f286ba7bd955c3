/*
 * blas_threads.c: every GEMM of the CPU paths runs on one BLAS thread, called from the engine's
 * own OpenMP regions (fixed row chunks, so the bits do not depend on the thread count and the
 * thread count is the engine's alone). How a BLAS is kept to one thread depends on its build:
 *   - OpenBLAS built with OpenMP (and a team of one) follows the calling task's nthreads ICV,
 *     which omp_set_num_threads(1) sets for that task only;
 *   - OpenBLAS built with pthreads ignores OpenMP: from inside a parallel region each GEMM hands
 *     its work to OpenBLAS's own thread pool, and the pool's busy-waiting threads fight the
 *     engine's (17x slower on 2 cores). Debian picks this build by its alternatives as soon as it
 *     is installed. It is kept to one thread by its own API, openblas_set_num_threads(1), called
 *     once: a process-wide setting of OpenBLAS, the only one libcatanet makes;
 *   - OpenBLAS's serial build runs on one thread, but it is not thread-safe: its work buffers are
 *     shared between callers, and GEMMs called at once from two engine threads gave wrong results
 *     that changed from run to run. Under it catanet_sgemm makes the calls one at a time (a
 *     process-wide lock, since the buffers it protects are process-wide);
 *   - other CBLAS libraries are taken as thread-safe and single-threaded.
 * The OpenBLAS entry points are weak references, so the library also links against a CBLAS
 * without them.
 * defines: catanet_blas_serial, catanet_blas_describe, catanet_sgemm
 */
#include <pthread.h>
#include <stdio.h>

#include "blas.h"
#include "kernels.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void);
char *openblas_get_config(void);
#pragma weak openblas_set_num_threads
#pragma weak openblas_get_parallel
#pragma weak openblas_get_config

static pthread_once_t build_once = PTHREAD_ONCE_INIT;
static int serial_build; /* OpenBLAS's serial build: GEMMs one at a time */
static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;

static void adapt_to_build(void)
{
    int parallel = openblas_get_parallel ? openblas_get_parallel() : -1;
    if (parallel == 1 && openblas_set_num_threads)
        openblas_set_num_threads(1);
    serial_build = parallel == 0;
}

void catanet_blas_serial(void)
{
    pthread_once(&build_once, adapt_to_build);
    omp_set_num_threads(1);
}

void catanet_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k,
                   float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    pthread_once(&build_once, adapt_to_build);
    if (serial_build)
        pthread_mutex_lock(&serial_lock);
    cblas_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (serial_build)
        pthread_mutex_unlock(&serial_lock);
}

const char *catanet_blas_describe(void)
{
    if (!openblas_get_parallel)
        return "a CBLAS without OpenBLAS's thread controls";
    switch (openblas_get_parallel()) {
    case 0: return "OpenBLAS, serial build (GEMMs one at a time)";
    case 1: return "OpenBLAS, pthreads build (kept to one thread)";
    case 2: return "OpenBLAS, OpenMP build";
    }
    return "OpenBLAS, unknown build";
}
