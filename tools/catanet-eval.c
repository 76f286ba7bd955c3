/*
 * catanet-eval: PSNR/SSIM of a CATANet model on benchmark sets, the paper's protocol (Y channel,
 * border = scale, per image then averaged; training/metrics.h), with the bicubic baseline.
 *
 *   catanet-eval -m MODEL [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t N] [--json] [--per-image] [--no-bicubic] DIR...
 *   catanet-eval -s SCALE [--json] [--per-image] DIR...          (bicubic baseline only)
 *
 * DIR: a folder of HR images, or a benchmark layout: DIR/GTmod12 or DIR/HR, with LR images in
 * DIR/LR_bicubic/X{s} or DIR/LRbicx{s} when present (otherwise made with the MATLAB-compatible bicubic).
 * Exit status: 0, 1 on an error, 2 on bad usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "cli.h"
#include "metrics.h"

#define PROG "catanet-eval"

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: catanet-eval -m MODEL [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t THREADS] [--json] [--per-image]\n"
            "                    [--no-bicubic] DIR...\n"
            "       catanet-eval -s SCALE [--json] [--per-image] DIR...   (bicubic baseline only)\n"
            "  DIR: HR images, or a set with HR/ or GTmod12/ and LR_bicubic/X{s}/ or LRbicx{s}/ (LR made by\n"
            "       MATLAB-compatible bicubic when absent). PSNR/SSIM on Y, border = scale, averaged per image.\n"
            "  -t THREADS 0..1024 (0: all cores); -s SCALE 1..8; --help, --version\n" CLI_MODEL_HELP
            "Exit status: 0, 1 on an error (a non-finite metric included), 2 on bad usage.\n");
    return rc;
}

static void log_stderr(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    fprintf(stderr, "%s\n", msg);
}

typedef struct EngineCtx {
    CatanetEngine *e;
    int w, h;                       /* prepared size */
} EngineCtx;

/* the model as an upscaler for catanet_eval_set: prepare on a new size, then process */
static int engine_upscale(void *opaque, const float *lr, int w, int h, float *sr)
{
    EngineCtx *c = opaque;
    int ret;
    if ((w != c->w || h != c->h) && (ret = catanet_engine_prepare(c->e, w, h)) < 0)
        return ret;
    c->w = w;
    c->h = h;
    return catanet_engine_process(c->e, lr, sr);
}

/* a JSON string: names come from the file system and may hold quotes, backslashes or control bytes */
static void json_str(const char *v)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_row(int json, const CatanetEvalSet *set, const char *method, const char *image, double psnr,
                      double ssim, int n)
{
    if (json) {
        printf("{\"set\": ");
        json_str(set->name);
        printf(", \"method\": \"%s\", \"scale\": %d, ", method, set->scale);
        if (image) {
            printf("\"image\": ");
            json_str(image);
            printf(", ");
        }
        else
            printf("\"images\": %d, ", n);
        printf("\"lr\": \"%s\", \"psnr\": %.4f, \"ssim\": %.5f}\n", set->lr_given ? "given" : "bicubic", psnr, ssim);
    } else if (image)
        printf("  %-22s %-8s x%-3d %9.4f  %.5f\n", image, method, set->scale, psnr, ssim);
    else
        printf("%-24s %-8s x%-3d %6d %9.4f  %.5f\n", set->name, method, set->scale, n, psnr, ssim);
    fflush(stdout);
}

/* evaluates fn on the set and prints its row (and per-image rows); 0 or -1 */
static int run_one(CatanetEvalSet *set, const char *method, CatanetUpscaleFn fn, void *opaque, int json, int per_image)
{
    char err[1024];
    CatanetEvalResult r = { 0 };
    double *pe = calloc(set->n, sizeof(double)), *se = calloc(set->n, sizeof(double));
    if (!pe || !se) {
        free(pe);
        free(se);
        fprintf(stderr, "catanet-eval: out of memory\n");
        return -1;
    }
    r.psnr_each = pe;
    r.ssim_each = se;
    int ret = catanet_eval_set(set, fn, opaque, &r, err, sizeof(err));
    if (ret < 0)
        fprintf(stderr, "catanet-eval: %s\n", err);
    /* NaN or Inf is no measurement (and no JSON): the set fails, nothing of it is printed */
    for (int i = 0; ret >= 0 && i <= set->n; i++) {
        double p = i < set->n ? pe[i] : r.psnr, q = i < set->n ? se[i] : r.ssim;
        if (!isfinite(p) || !isfinite(q)) {
            fprintf(stderr, "catanet-eval: %s (%s): %s%s has a non-finite PSNR or SSIM\n", set->name, method,
                    i < set->n ? "image " : "the set mean", i < set->n ? set->images[i].name : "");
            ret = -1;
        }
    }
    if (ret >= 0) {
        if (per_image)
            for (int i = 0; i < set->n; i++)
                print_row(json, set, method, set->images[i].name, pe[i], se[i], 1);
        print_row(json, set, method, NULL, r.psnr, r.ssim, r.n);
    }
    free(pe);
    free(se);
    return ret < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    const char *dirs[256];
    int ndirs = 0, json = 0, per_image = 0, bicubic = 1, scale = 0;
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_WARNING;
    static const struct option longopts[] = { { "json", no_argument, NULL, 'J' },
                                              { "per-image", no_argument, NULL, 'I' },
                                              { "no-bicubic", no_argument, NULL, 'B' },
                                              { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "m:d:p:t:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': case 'p': case 't': case CLI_OPT_TILE:
            if (cli_engine_option(PROG, c, optarg, &cfg) < 0)
                return 2;
            break;
        case 's':
            if (cli_int(PROG, "-s", optarg, 1, 8, &scale) < 0)
                return 2;
            break;
        case 'J': json = 1; break;
        case 'I': per_image = 1; break;
        case 'B': bicubic = 0; break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        case CLI_OPT_LIST_MODELS: return cli_list_models(PROG);
        default: return usage(stderr, 2);
        }
    }
    for (; optind < argc; optind++) {
        if (ndirs == (int)(sizeof(dirs) / sizeof(dirs[0]))) {
            fprintf(stderr, "catanet-eval: too many folders\n");
            return 2;
        }
        dirs[ndirs++] = argv[optind];
    }
    if (ndirs == 0 || (!model && scale == 0) || (model && scale != 0)) {
        if (model && scale)
            fprintf(stderr, "catanet-eval: -s is for the bicubic baseline alone; a model sets its own scale\n");
        return usage(stderr, 2);
    }
    char err[1024];
    EngineCtx ctx = { NULL, 0, 0 };
    if (model) {
        int ret = catanet_engine_open(&ctx.e, model, &cfg, err, sizeof(err));
        if (ret < 0) {
            fprintf(stderr, "catanet-eval: %s\n", err);
            return 1;
        }
        scale = catanet_engine_scale(ctx.e);
    }
    if (!json)
        printf("%-24s %-8s %-4s %6s %9s  %s\n", "set", "method", "x", "images", "PSNR(dB)", "SSIM");
    int failed = 0;
    for (int i = 0; i < ndirs; i++) {
        CatanetEvalSet *set;
        if (catanet_evalset_open(&set, dirs[i], scale, err, sizeof(err)) < 0) {
            fprintf(stderr, "catanet-eval: %s\n", err);
            failed = 1;
            continue;
        }
        if (model && run_one(set, "model", engine_upscale, &ctx, json, per_image) < 0) {
            if (ctx.e && catanet_engine_last_error(ctx.e)[0])
                fprintf(stderr, "catanet-eval: engine: %s\n", catanet_engine_last_error(ctx.e));
            failed = 1;
        }
        if ((bicubic || !model) && run_one(set, "bicubic", catanet_eval_bicubic, &scale, json, per_image) < 0)
            failed = 1;
        catanet_evalset_close(set);
    }
    catanet_engine_close(&ctx.e);
    return failed;
}
