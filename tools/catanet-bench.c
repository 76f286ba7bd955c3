/*
 * catanet-bench: time the engine on a frame size; one JSON line per result.
 *   catanet-bench -m MODEL [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t THREADS] [-W w -H h | -s WxH ...]
 *                 [-n RUNS] [-w WARMUP] [--tile N]
 * Reports the median ms per frame over RUNS after WARMUP runs, fps, and the planned memory.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catanet.h"
#include "cli.h"

#define PROG "catanet-bench"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: catanet-bench -m MODEL [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t THREADS] [--tile N]\n"
                    "                     [-k auto|primary|fallback] (CUDA: which kernel of a pair runs)\n"
                    "                     [-s WxH]... (default 64x64) [-n RUNS (5)] [-w WARMUP (1)]\n"
                    "  -t 0..1024 (0: all cores), --tile 0..32768, -s up to 32768x32768 (32 at most),\n"
                    "  -n 1..100000, -w 0..100000; --help, --version\n" CLI_MODEL_HELP);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    int runs = 5, warmup = 1, nsizes = 0, sizes[32][2];
    static const char *const kernels[] = { "auto", "primary", "fallback", NULL };
    static const struct option longopts[] = { { "tile", required_argument, NULL, CLI_OPT_TILE },
                                              { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    int c, k;
    while ((c = getopt_long(argc, argv, "m:d:p:t:k:n:w:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': case 'p': case 't': case CLI_OPT_TILE:
            if (cli_engine_option(PROG, c, optarg, &cfg) < 0)
                return 2;
            break;
        case 'k':
            if (cli_choice(PROG, "-k", optarg, kernels, &k) < 0)
                return 2;
            cfg.kernels = k == 0 ? CATANET_KERNELS_AUTO : k == 1 ? CATANET_KERNELS_PRIMARY : CATANET_KERNELS_FALLBACK;
            break;
        case 'n':
            if (cli_int(PROG, "-n", optarg, 1, 100000, &runs) < 0)
                return 2;
            break;
        case 'w':
            if (cli_int(PROG, "-w", optarg, 0, 100000, &warmup) < 0)
                return 2;
            break;
        case 's':
            if (nsizes == 32) {
                fprintf(stderr, PROG ": at most 32 sizes\n");
                return 2;
            }
            if (cli_size(PROG, "-s", optarg, 32768, &sizes[nsizes][0], &sizes[nsizes][1]) < 0)
                return 2;
            nsizes++;
            break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        case CLI_OPT_LIST_MODELS: return cli_list_models(PROG);
        default: return usage(stderr, 2);
        }
    }
    if (!model || optind != argc) {
        fprintf(stderr, PROG ": %s\n", !model ? "-m MODEL is required" : "unexpected argument");
        return usage(stderr, 2);
    }
    if (!nsizes) {
        sizes[0][0] = sizes[0][1] = 64;
        nsizes = 1;
    }
    char err[1024];
    CatanetEngine *e;
    if (catanet_engine_open(&e, model, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "catanet-bench: %s\n", err);
        return 1;
    }
    const CatanetModelInfo *mi = catanet_engine_model(e);
    int s = mi->upscale, rc = 0;
    for (int k = 0; k < nsizes; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        float *in = malloc(sizeof(float) * 3 * (size_t)w * h), *out = malloc(sizeof(float) * 3 * (size_t)w * h * s * s);
        double *t = malloc(sizeof(double) * runs);
        if (!in || !out || !t) {
            fprintf(stderr, "catanet-bench: out of memory for %dx%d\n", w, h);
            return 1;
        }
        srand(1);
        for (size_t i = 0; i < (size_t)3 * w * h; i++) /* smooth-ish content: random values cluster oddly */
            in[i] = 0.5f + 0.4f * (float)((i % (size_t)w) ^ (i / (size_t)w % 97)) / (float)(w + 97) - 0.2f * rand() / RAND_MAX;
        double t0 = now_ms();
        int ret = catanet_engine_prepare(e, w, h);
        double prep = now_ms() - t0;
        for (int r = 0; ret >= 0 && r < warmup + runs; r++) {
            t0 = now_ms();
            ret = catanet_engine_process(e, in, out);
            if (r >= warmup)
                t[r - warmup] = now_ms() - t0;
        }
        if (ret < 0) {
            fprintf(stderr, "catanet-bench: %dx%d: %s\n", w, h, catanet_engine_last_error(e));
            rc = 1;
        } else {
            qsort(t, runs, sizeof(double), cmp_double);
            double med = t[runs / 2];
            printf("{\"model\":\"%s\",\"groups\":%d,\"params\":%lld,\"scale\":%d,\"device\":\"%s\",\"device_name\":\"%s\",\"precision\":\"%s\","
                   "\"threads\":%d,\"in\":\"%dx%d\",\"out\":\"%dx%d\",\"runs\":%d,\"ms_median\":%.3f,\"ms_min\":%.3f,"
                   "\"fps\":%.3f,\"prepare_ms\":%.1f,\"memory_mib\":%.1f}\n",
                   model, mi->num_groups, (long long)mi->num_params, s,
                   catanet_engine_device(e) == CATANET_DEVICE_CUDA ? "cuda" : "cpu", catanet_engine_device_name(e),
                   catanet_engine_precision(e) == CATANET_PRECISION_FP16 ? "fp16" : "fp32", cfg.threads, w, h, w * s,
                   h * s, runs, med, t[0], 1000.0 / med, prep, catanet_engine_memory_bytes(e) / 1048576.0);
            fflush(stdout);
        }
        free(in);
        free(out);
        free(t);
    }
    catanet_engine_close(&e);
    return rc;
}
