/*
 * catanet-peak: measures this machine's fp32 FMA throughput (GFLOP/s) with a kernel of its own,
 * so that a benchmark can state a share of the peak it measured rather than one it assumed.
 *   catanet-peak [-t THREADS] [--seconds S]
 * Each thread runs independent chains of fused multiply-adds in the widest vectors the CPU has
 * (AVX-512, else AVX2+FMA, else SSE mul+add); enough chains to cover the FMA latency on two
 * pipes. Prints one JSON line: {"isa":..., "threads":T, "gflops":X, "gflops_1thread":Y}.
 */
#include <getopt.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define CHAINS 12

/* each function returns a value that depends on every chain, so none is optimised away */
__attribute__((target("avx512f"))) static float fma_avx512(long iters, long *flops)
{
    __m512 acc[CHAINS], m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm512_fmadd_ps(acc[k], m, c);
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm512_add_ps(acc[0], acc[k]);
    *flops = iters * CHAINS * 16 * 2;
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long iters, long *flops)
{
    __m256 acc[CHAINS], m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm256_fmadd_ps(acc[k], m, c);
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm256_add_ps(acc[0], acc[k]);
    float out[8];
    _mm256_storeu_ps(out, acc[0]);
    *flops = iters * CHAINS * 8 * 2;
    return out[0] + out[7];
}

static float muladd_sse(long iters, long *flops)
{
    __m128 acc[CHAINS], m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++)
        acc[k] = _mm_set1_ps((float)k);
    for (long i = 0; i < iters; i++)
        for (int k = 0; k < CHAINS; k++)
            acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], m), c);
    for (int k = 1; k < CHAINS; k++)
        acc[0] = _mm_add_ps(acc[0], acc[k]);
    *flops = iters * CHAINS * 4 * 2;
    return _mm_cvtss_f32(acc[0]);
}

typedef float (*PeakFn)(long, long *);

/* where the chains' results go, so that the compiler must compute them */
static volatile float sink_out;

/* best of `reps` timed runs of `seconds` each on `threads` threads: GFLOP/s of all threads */
static double measure(PeakFn fn, int threads, double seconds, int reps, float *sink)
{
    long iters = 1 << 20, flops = 0;
    for (;;) { /* calibrate on one thread: iterations for about `seconds` */
        double t0 = omp_get_wtime();
        *sink += fn(iters, &flops);
        double dt = omp_get_wtime() - t0;
        if (dt > 0.05) {
            iters = (long)(iters * seconds / dt) + 1;
            break;
        }
        iters *= 4;
    }
    double best = 0;
    for (int r = 0; r < reps; r++) {
        long total = 0;
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            long f = 0;
            float s = fn(iters, &f);
            total += f;
#pragma omp atomic
            *sink += s;
        }
        double g = total / (omp_get_wtime() - t0) * 1e-9;
        best = g > best ? g : best;
    }
    return best;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: catanet-peak [-t THREADS] [--seconds S]\n"
               "  measures the fp32 FMA peak of THREADS threads (default: all cores) and of one\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = { { "threads", required_argument, 0, 't' },
                                           { "seconds", required_argument, 0, 's' },
                                           { "help", no_argument, 0, 'h' },
                                           { "version", no_argument, 0, 'V' },
                                           { 0, 0, 0, 0 } };
    int threads = omp_get_num_procs();
    double seconds = 0.5;
    for (int o; (o = getopt_long(argc, argv, "t:s:hV", opts, NULL)) != -1;) {
        if (o == 't' && cli_int("catanet-peak", "-t", optarg, 1, 1024, &threads) == 0)
            continue;
        if (o == 's' && cli_double("catanet-peak", "--seconds", optarg, 0.01, 60, &seconds) == 0)
            continue;
        if (o == 'h') {
            usage(stdout);
            return 0;
        }
        if (o == 'V') {
            cli_version("catanet-peak");
            return 0;
        }
        if (o != 't' && o != 's')
            usage(stderr);
        return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    __builtin_cpu_init();
    PeakFn fn = muladd_sse;
    const char *isa = "sse";
    if (__builtin_cpu_supports("avx512f")) {
        fn = fma_avx512;
        isa = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        fn = fma_avx2;
        isa = "avx2";
    }
    float sink = 0;
    double one = measure(fn, 1, seconds, 3, &sink);
    double all = measure(fn, threads, seconds, 3, &sink);
    sink_out = sink;
    printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f,\"gflops_1thread\":%.1f}\n", isa, threads, all, one);
    return 0;
}
