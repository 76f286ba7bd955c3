/*
 * catanet-upscale: upscale one image with a CATANet model.
 *   catanet-upscale -m MODEL [-d cpu|cuda] [-p auto|fp32|fp16] [-t THREADS] [--tile N] IN OUT
 * IN/OUT: PNG (8/16-bit) or NPY (float32 [3,H,W] or [1,3,H,W], values in [0,1]).
 * NPY output is the raw float result (unclamped); PNG output is clamped and rounded at the input's bit depth.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "cli.h"
#include "imageio.h"

#define PROG "catanet-upscale"

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: catanet-upscale -m MODEL [-d cpu|cuda] [-p auto|fp32|fp16] [-t THREADS] [--tile N] "
               "[--bits 8|16] IN OUT\n"
               "  IN, OUT: .png (8/16-bit) or .npy (float32 [3,H,W] or [1,3,H,W] in [0,1])\n"
               "  -t THREADS  0..1024 (0: all cores)   --tile N  0..32768 (0: no tiling)\n"
               "  --bits      PNG output depth (default: the input's)\n"
               CLI_MODEL_HELP
               "  --help, --version\n"
               "Exit status: 0, 1 on an error (OUT is then not written), 2 on bad usage.\n");
    return rc;
}

static void log_stderr(void *opaque, int level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
}

typedef struct Output {
    const float *rgb;
    int w, h, bits;
} Output;

static int write_image(const char *tmp, void *opaque, char *err, size_t es)
{
    const Output *o = opaque;
    return image_write(tmp, o->rgb, o->w, o->h, o->bits, err, es);
}

int main(int argc, char **argv)
{
    static const char *const bit_names[] = { "8", "16", NULL };
    static const struct option longopts[] = { { "tile", required_argument, NULL, CLI_OPT_TILE },
                                              { "bits", required_argument, NULL, 'b' },
                                              { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    const char *model = NULL;
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_WARNING;
    int out_bits = 0, k, c;
    while ((c = getopt_long(argc, argv, "m:d:p:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': case 'p': case 't': case CLI_OPT_TILE:
            if (cli_engine_option(PROG, c, optarg, &cfg) < 0)
                return 2;
            break;
        case 'b':
            if (cli_choice(PROG, "--bits", optarg, bit_names, &k) < 0)
                return 2;
            out_bits = k ? 16 : 8;
            break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        case CLI_OPT_LIST_MODELS: return cli_list_models(PROG);
        default: return usage(stderr, 2);
        }
    }
    if (!model || argc - optind != 2) {
        fprintf(stderr, PROG ": %s\n", !model ? "-m MODEL is required" : "needs IN and OUT");
        return usage(stderr, 2);
    }
    const char *in_path = argv[optind], *out_path = argv[optind + 1];
    char err[1024];
    float *in = NULL;
    int w, h, bits;
    if (image_read(in_path, &in, &w, &h, &bits, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    CatanetEngine *e;
    int ret = catanet_engine_open(&e, model, &cfg, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        free(in);
        return 1;
    }
    int s = catanet_engine_scale(e);
    float *out = malloc(sizeof(float) * 3 * (size_t)w * h * s * s);
    if (!out) {
        fprintf(stderr, PROG ": out of memory\n");
        catanet_engine_close(&e);
        free(in);
        return 1;
    }
    ret = catanet_engine_prepare(e, w, h);
    if (ret >= 0)
        ret = catanet_engine_process(e, in, out);
    if (ret < 0) {
        /* a non-finite frame is an error too (CATANET_ERR_NONFINITE): no black PNG, no NPY of NaN */
        fprintf(stderr, PROG ": %s (%s); '%s' not written\n", catanet_engine_last_error(e), catanet_strerror(ret),
                out_path);
        catanet_engine_close(&e);
        free(in);
        free(out);
        return 1;
    }
    Output o = { out, w * s, h * s, out_bits ? out_bits : bits };
    ret = cli_write_atomic(out_path, write_image, &o, err, sizeof(err));
    if (ret < 0)
        fprintf(stderr, PROG ": %s\n", err);
    catanet_engine_close(&e);
    free(in);
    free(out);
    return ret < 0;
}
