/*
 * blas_threads: the CPU path under whatever OpenBLAS build the dynamic linker gives it (the shell
 * test tests/t_blas_threads.sh runs it once per installed build, chosen with LD_LIBRARY_PATH).
 *   blas_threads MODEL EXPECTED MIN_SPEEDUP
 *   EXPECTED: openmp | pthreads | serial (the build that must be loaded)
 * Checks: the expected build is the one loaded (else the set-up, not the engine, was tested); the
 * output of 1 and 2 engine threads is bit-identical (the serial build, called from two threads at
 * once, gave different and wrong bits); 2 threads are at least MIN_SPEEDUP times as fast as 1 (the
 * median of RUNS frames each). The bound is far below what two idle cores give and far above what
 * oversubscription gives (the pthreads build left to its own thread pool made 2 threads 4-17x
 * slower than 1), so it tells a working build from a broken one, not a fast one from a slow one:
 * the figures themselves are printed for the benchmark notes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catanet.h"
#include "kernels.h"
#include "testutil.h"

#define SIZE 96
#define RUNS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median seconds per frame; out gets the last frame's output */
static double run(const char *model, int threads, const float *in, float *out)
{
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.threads = threads;
    CatanetEngine *e = NULL;
    char err[512];
    if (catanet_engine_open(&e, model, &cfg, err, sizeof(err)) < 0 || catanet_engine_prepare(e, SIZE, SIZE) < 0) {
        printf("blas_threads: %s: %s\n", model, e ? catanet_engine_last_error(e) : err);
        exit(1);
    }
    double t[RUNS];
    catanet_engine_process(e, in, out); /* warm-up */
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        int rc = catanet_engine_process(e, in, out);
        t[r] = now() - t0;
        test_check(rc == 0, "%d threads: frame %d processed (%s)", threads, r, catanet_strerror(rc));
    }
    catanet_engine_close(&e);
    qsort(t, RUNS, sizeof(double), cmp_double);
    return t[RUNS / 2];
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: blas_threads MODEL openmp|pthreads|serial MIN_SPEEDUP\n");
        return 2;
    }
    double min_speedup = atof(argv[3]);
    const char *build = catanet_blas_describe();
    printf("BLAS: %s\n", build);
    test_check(strcasestr(build, argv[2]) != NULL, "the %s build is the one loaded (%s)", argv[2], build);
    size_t n_in = (size_t)3 * SIZE * SIZE, n_out = n_in * 4 * 4; /* room for x4 */
    float *in = malloc(sizeof(float) * n_in), *o1 = calloc(n_out, sizeof(float)), *o2 = calloc(n_out, sizeof(float));
    Rng r = { 7 };
    for (size_t i = 0; i < n_in; i++)
        in[i] = rng_uniform(&r);
    double t1 = run(argv[1], 1, in, o1), t2 = run(argv[1], 2, in, o2);
    printf("%dx%d: 1 thread %.1f ms, 2 threads %.1f ms: %.2fx\n", SIZE, SIZE, t1 * 1e3, t2 * 1e3, t1 / t2);
    test_check(!memcmp(o1, o2, sizeof(float) * n_out), "1 and 2 threads give the same bits");
    test_check(t1 / t2 >= min_speedup, "2 threads at least %.2fx as fast as 1 (%.2fx)", min_speedup, t1 / t2);
    free(in);
    free(o1);
    free(o2);
    return test_finish();
}
