/*
 * catanet-gpubench: the CUDA engine on device frames, as a video filter drives it (no host copies):
 * NV12 (or P010 / planar float RGB) frames in device memory -> process_image -> device frames.
 * Two timings per size, one JSON line each:
 *   "sync":      the engine's own stream, each call returns when the frame is done (latency)
 *   "pipelined": the caller's stream, frames queued back to back, one sync at the end (throughput)
 *   catanet-gpubench -m MODEL [-p fp32|fp16] [-f nv12|p010|rgbf] [-s WxH]... [-n RUNS] [-w WARMUP] [-g GPU]
 *                    [-k auto|primary|fallback] [-P 1]
 * -P 1: no timing; after the warm-up (at least one frame, for the first launches outside the graph that
 * prepare made and ran once: the colour conversions of device frames, lazily loaded), one frame per size
 * between cudaProfilerStart and cudaProfilerStop, on the engine's own stream, for a profiler told to
 * record only there (ncu --profile-from-start off: tools/gpu-check.sh's DRAM bytes a kernel).
 * Exit 77 when the build or the machine has no CUDA.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catanet.h"
#include "cli.h"
#include "config.h"

#define PROG "catanet-gpubench"

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: catanet-gpubench -m MODEL [-p fp32|fp16] [-f nv12|p010|rgbf] [-s WxH]... (at most 16)\n"
               "       [-n RUNS (20; 1..100000)] [-w WARMUP (3; 0..100000)] [-g GPU (0..63)]\n"
               "       [-k auto|primary|fallback] [-P 0|1] [--help] [--version]\n"
               CLI_MODEL_HELP
               "Exit status: 0, 1 on an error, 2 on bad usage, 77 without CUDA (build or machine).\n");
    return rc;
}

typedef struct Opts {
    const char *model;
    CatanetConfig cfg;
    int runs, warmup, nsizes, sizes[16][2], fmt, profile_frame;
} Opts;

/* 0, or the exit status to leave with */
static int parse(int argc, char **argv, Opts *o)
{
    static const char *const precisions[] = { "fp16", "fp32", NULL }, *const formats[] = { "nv12", "p010", "rgbf", NULL },
                             *const kernels[] = { "auto", "primary", "fallback", NULL };
    static const struct option longopts[] = { { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    int c, k;
    while ((c = getopt_long(argc, argv, "m:p:f:n:w:k:g:P:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p':
            if (cli_choice(PROG, "-p", optarg, precisions, &k) < 0)
                return 2;
            o->cfg.precision = k ? CATANET_PRECISION_FP32 : CATANET_PRECISION_FP16;
            break;
        case 'f':
            if (cli_choice(PROG, "-f", optarg, formats, &o->fmt) < 0)
                return 2;
            break;
        case 'k':
            if (cli_choice(PROG, "-k", optarg, kernels, &k) < 0)
                return 2;
            o->cfg.kernels = k == 0 ? CATANET_KERNELS_AUTO : k == 1 ? CATANET_KERNELS_PRIMARY : CATANET_KERNELS_FALLBACK;
            break;
        case 'n':
            if (cli_int(PROG, "-n", optarg, 1, 100000, &o->runs) < 0)
                return 2;
            break;
        case 'w':
            if (cli_int(PROG, "-w", optarg, 0, 100000, &o->warmup) < 0)
                return 2;
            break;
        case 'g':
            if (cli_int(PROG, "-g", optarg, 0, 63, &o->cfg.gpu) < 0)
                return 2;
            break;
        case 'P':
            if (cli_int(PROG, "-P", optarg, 0, 1, &o->profile_frame) < 0)
                return 2;
            break;
        case 's':
            if (o->nsizes == 16) {
                fprintf(stderr, PROG ": at most 16 sizes\n");
                return 2;
            }
            if (cli_size(PROG, "-s", optarg, 32768, &o->sizes[o->nsizes][0], &o->sizes[o->nsizes][1]) < 0)
                return 2;
            o->nsizes++;
            break;
        case 'h': exit(usage(stdout, 0));
        case 'V': cli_version(PROG); exit(0);
        case CLI_OPT_LIST_MODELS: exit(cli_list_models(PROG));
        default: return usage(stderr, 2);
        }
    }
    if (!o->model || optind != argc) {
        fprintf(stderr, PROG ": %s\n", !o->model ? "-m MODEL is required" : "unexpected argument");
        return usage(stderr, 2);
    }
    return 0;
}

#if !HAVE_CUDA
int main(int argc, char **argv)
{
    Opts o = { .runs = 20, .warmup = 3 };
    catanet_config_default(&o.cfg);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc;
    fprintf(stderr, PROG ": this build has no CUDA backend\n");
    return 77;
}
#else
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>

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

/* a device frame of format f; planes allocated with cudaMallocPitch */
static int frame_alloc(CatanetImage *im, int f, int w, int h)
{
    memset(im, 0, sizeof(*im));
    im->width = w;
    im->height = h;
    im->on_device = 1;
    im->matrix = CATANET_MATRIX_BT709;
    im->range = CATANET_RANGE_LIMITED;
    im->chroma_loc = CATANET_CHROMA_LEFT;
    int planes, bps;
    if (f == 0) {
        im->format = CATANET_PIX_NV12, im->bits = 8, planes = 2, bps = 1;
    } else if (f == 1) {
        im->format = CATANET_PIX_P010, im->bits = 10, planes = 2, bps = 2;
    } else {
        im->format = CATANET_PIX_FLOAT_RGBP, im->bits = 32, planes = 3, bps = 4;
    }
    for (int p = 0; p < planes; p++) {
        int ph = (f < 2 && p == 1) ? (h + 1) / 2 : h;
        size_t pitch, wb = (size_t)(f < 2 && p == 1 ? 2 * ((w + 1) / 2) : w) * bps;
        if (cudaMallocPitch(&im->data[p], &pitch, wb, ph) != cudaSuccess)
            return -1;
        im->linesize[p] = (ptrdiff_t)pitch;
        cudaMemset2D(im->data[p], pitch, 0x50 + 0x20 * p, wb, ph); /* mid-grey-ish content */
    }
    return 0;
}

static void frame_free(CatanetImage *im)
{
    for (int p = 0; p < 3; p++)
        cudaFree(im->data[p]);
}

/* the engine's INFO lines (the kernel picks with their timings) and warnings, on stderr */
static void log_stderr(void *opaque, int level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
}

int main(int argc, char **argv)
{
    const char *fmt_names[] = { "nv12", "p010", "rgbf" };
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.device = CATANET_DEVICE_CUDA;
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_INFO;
    const char *kernel_names[] = { "auto", "primary", "fallback" };
    Opts o = { .runs = 20, .warmup = 3 };
    o.cfg = cfg;
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc;
    cfg = o.cfg;
    const char *model = o.model;
    int runs = o.runs, warmup = o.warmup, nsizes = o.nsizes, sizes[16][2], fmt = o.fmt, profile_frame = o.profile_frame;
    memcpy(sizes, o.sizes, sizeof(sizes));
    if (profile_frame && warmup < 1)
        warmup = 1; /* the frame conversions' first launches (module loading) stay out of the profile */
    if (catanet_cuda_device_count() < 1) {
        fprintf(stderr, "catanet-gpubench: no CUDA device\n");
        return 77;
    }
    if (!nsizes) {
        sizes[0][0] = 960;
        sizes[0][1] = 540;
        nsizes = 1;
    }
    cudaStream_t stream;
    if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
        fprintf(stderr, "catanet-gpubench: cannot create a stream\n");
        return 1;
    }
    int rc = 0;
    for (int mode = 0; mode < (profile_frame ? 1 : 2); mode++) {
        char err[1024];
        CatanetEngine *e;
        cfg.cuda_stream = mode ? stream : NULL;
        if (catanet_engine_open(&e, model, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "catanet-gpubench: %s\n", err);
            return 1;
        }
        const CatanetModelInfo *mi = catanet_engine_model(e);
        int s = mi->upscale;
        for (int k = 0; k < nsizes; k++) {
            int w = sizes[k][0], h = sizes[k][1];
            CatanetImage in, out;
            size_t free0 = 0, free1 = 0, total = 0;
            cudaMemGetInfo(&free0, &total);
            if (frame_alloc(&in, fmt, w, h) < 0 || frame_alloc(&out, fmt, w * s, h * s) < 0) {
                fprintf(stderr, "catanet-gpubench: device frames %dx%d: out of memory\n", w, h);
                rc = 1;
                break;
            }
            double t0 = now_ms();
            int ret = catanet_engine_prepare(e, w, h);
            double prep = now_ms() - t0;
            cudaMemGetInfo(&free1, &total);
            double *t = malloc(sizeof(double) * runs), med = 0, best = 0;
            for (int r = 0; ret >= 0 && r < warmup; r++)
                ret = catanet_engine_process_image(e, &in, &out);
            if (ret >= 0 && mode == 1)
                cudaStreamSynchronize(stream);
            if (profile_frame) {
                cudaError_t st = ret >= 0 ? cudaDeviceSynchronize() : cudaSuccess;
                if (ret >= 0 && st == cudaSuccess && (st = cudaProfilerStart()) == cudaSuccess) {
                    ret = catanet_engine_process_image(e, &in, &out);
                    st = cudaDeviceSynchronize();
                    cudaError_t st2 = cudaProfilerStop();
                    st = st != cudaSuccess ? st : st2;
                }
                if (st != cudaSuccess && ret >= 0) {
                    fprintf(stderr, "catanet-gpubench: profiled frame: %s\n", cudaGetErrorString(st));
                    ret = -7;
                }
                if (ret >= 0) {
                    printf("PROFILED %dx%d: one frame between cudaProfilerStart and cudaProfilerStop\n", w, h);
                } else {
                    if (st == cudaSuccess)
                        fprintf(stderr, "catanet-gpubench: %dx%d: %s\n", w, h, catanet_engine_last_error(e));
                    rc = 1;
                }
                fflush(stdout);
                free(t);
                frame_free(&in);
                frame_free(&out);
                continue;
            }
            if (mode == 0) {
                for (int r = 0; ret >= 0 && r < runs; r++) {
                    t0 = now_ms();
                    ret = catanet_engine_process_image(e, &in, &out);
                    t[r] = now_ms() - t0;
                }
                if (ret >= 0) {
                    qsort(t, runs, sizeof(double), cmp_double);
                    med = t[runs / 2];
                    best = t[0];
                }
            } else if (ret >= 0) {
                t0 = now_ms();
                for (int r = 0; ret >= 0 && r < runs; r++)
                    ret = catanet_engine_process_image(e, &in, &out);
                cudaError_t st = cudaStreamSynchronize(stream);
                if (st != cudaSuccess && ret >= 0) {
                    fprintf(stderr, "catanet-gpubench: %s\n", cudaGetErrorString(st));
                    ret = -7;
                }
                med = best = (now_ms() - t0) / runs;
            }
            if (ret < 0) {
                fprintf(stderr, "catanet-gpubench: %dx%d: %s\n", w, h, catanet_engine_last_error(e));
                rc = 1;
            } else {
                printf("{\"tool\":\"gpubench\",\"gpu\":\"%s\",\"model\":\"%s\",\"groups\":%d,\"scale\":%d,"
                       "\"precision\":\"%s\",\"frames\":\"%s\",\"kernels\":\"%s\",\"mode\":\"%s\",\"in\":\"%dx%d\",\"out\":\"%dx%d\","
                       "\"runs\":%d,\"ms_per_frame\":%.3f,\"ms_min\":%.3f,\"fps\":%.2f,\"prepare_ms\":%.1f,"
                       "\"planned_mib\":%.1f,\"device_used_mib\":%.1f}\n",
                       catanet_engine_device_name(e), model, mi->num_groups, s,
                       catanet_engine_precision(e) == CATANET_PRECISION_FP16 ? "fp16" : "fp32", fmt_names[fmt],
                       kernel_names[cfg.kernels], mode ? "pipelined" : "sync", w, h, w * s, h * s, runs, med, best, 1000.0 / med, prep,
                       catanet_engine_memory_bytes(e) / 1048576.0, ((double)free0 - (double)free1) / 1048576.0);
                fflush(stdout);
                if (mode == 0) { /* where the frame's time goes: the step table, once per size */
                    char rep[4096];
                    if (catanet_engine_profile(e, rep, sizeof(rep)) < 0) {
                        fprintf(stderr, "catanet-gpubench: profile: %s\n", catanet_engine_last_error(e));
                    } else {
                        for (char *line = strtok(rep, "\n"); line; line = strtok(NULL, "\n"))
                            printf("PROFILE %dx%d %s\n", w, h, line);
                        fflush(stdout);
                    }
                }
            }
            free(t);
            frame_free(&in);
            frame_free(&out);
        }
        catanet_engine_close(&e);
    }
    cudaStreamDestroy(stream);
    return rc;
}
#endif
