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
 *   - serial builds and other CBLAS libraries are single-threaded already.
 * The OpenBLAS entry points are weak references, so the library also links against a CBLAS
 * without them.
 * defines: catanet_blas_serial, catanet_blas_describe
 */
#include <pthread.h>
#include <stdio.h>

#include "kernels.h"

void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void);
char *openblas_get_config(void);
#pragma weak openblas_set_num_threads
#pragma weak openblas_get_parallel
#pragma weak openblas_get_config

static pthread_once_t pthread_build_once = PTHREAD_ONCE_INIT;

static void pthread_build_to_one_thread(void)
{
    if (openblas_get_parallel && openblas_set_num_threads && openblas_get_parallel() == 1)
        openblas_set_num_threads(1);
}

void catanet_blas_serial(void)
{
    pthread_once(&pthread_build_once, pthread_build_to_one_thread);
    omp_set_num_threads(1);
}

const char *catanet_blas_describe(void)
{
    if (!openblas_get_parallel)
        return "a CBLAS without OpenBLAS's thread controls";
    switch (openblas_get_parallel()) {
    case 0: return "OpenBLAS, serial build";
    case 1: return "OpenBLAS, pthreads build (kept to one thread)";
    case 2: return "OpenBLAS, OpenMP build";
    }
    return "OpenBLAS, unknown build";
}
