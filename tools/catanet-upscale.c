/*
 * catanet-upscale: upscale one image with a CATANet model.
 *   catanet-upscale -m MODEL [-d cpu|cuda] [-p auto|fp32|fp16] [-t THREADS] [--tile N] IN OUT
 * IN/OUT: PNG (8/16-bit) or NPY (float32 [3,H,W] or [1,3,H,W], values in [0,1]).
 * NPY output is the raw float result (unclamped); PNG output is clamped and rounded at the input's bit depth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "imageio.h"

static void usage(void)
{
    fprintf(stderr, "usage: catanet-upscale -m MODEL [-d cpu|cuda] [-p auto|fp32|fp16] [-t THREADS] [--tile N] "
                    "[--bits 8|16] IN OUT\n"
                    "  IN, OUT: .png (8/16-bit) or .npy (float32 [3,H,W] or [1,3,H,W] in [0,1])\n");
}

static void log_stderr(void *opaque, int level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *in_path = NULL, *out_path = NULL;
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_WARNING;
    int out_bits = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v) {
            model = v;
            i++;
        } else if (!strcmp(a, "-d") && v) {
            if (!strcmp(v, "cpu"))
                cfg.device = CATANET_DEVICE_CPU;
            else if (!strcmp(v, "cuda"))
                cfg.device = CATANET_DEVICE_CUDA;
            else {
                fprintf(stderr, "catanet-upscale: unknown device '%s' (cpu or cuda)\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "-p") && v) {
            cfg.precision = !strcmp(v, "fp32") ? CATANET_PRECISION_FP32 :
                            !strcmp(v, "fp16") ? CATANET_PRECISION_FP16 : CATANET_PRECISION_AUTO;
            i++;
        } else if (!strcmp(a, "-t") && v) {
            cfg.threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--tile") && v) {
            cfg.tile = atoi(v);
            i++;
        } else if (!strcmp(a, "--bits") && v) {
            out_bits = atoi(v);
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "catanet-upscale: unknown option '%s'\n", a);
            usage();
            return 2;
        } else if (!in_path)
            in_path = a;
        else if (!out_path)
            out_path = a;
        else {
            usage();
            return 2;
        }
    }
    if (!model || !in_path || !out_path) {
        usage();
        return 2;
    }
    char err[1024];
    float *in = NULL;
    int w, h, bits;
    if (image_read(in_path, &in, &w, &h, &bits, err, sizeof(err)) < 0) {
        fprintf(stderr, "catanet-upscale: %s\n", err);
        return 1;
    }
    CatanetEngine *e;
    int ret = catanet_engine_open(&e, model, &cfg, err, sizeof(err));
    if (ret < 0) {
        fprintf(stderr, "catanet-upscale: %s\n", err);
        free(in);
        return 1;
    }
    int s = catanet_engine_scale(e);
    float *out = malloc(sizeof(float) * 3 * (size_t)w * h * s * s);
    if (!out) {
        fprintf(stderr, "catanet-upscale: out of memory\n");
        return 1;
    }
    ret = catanet_engine_prepare(e, w, h);
    if (ret >= 0)
        ret = catanet_engine_process(e, in, out);
    if (ret < 0) {
        fprintf(stderr, "catanet-upscale: %s\n", catanet_engine_last_error(e));
        catanet_engine_close(&e);
        return 1;
    }
    ret = image_write(out_path, out, w * s, h * s, out_bits ? out_bits : bits, err, sizeof(err));
    if (ret < 0)
        fprintf(stderr, "catanet-upscale: %s\n", err);
    catanet_engine_close(&e);
    free(in);
    free(out);
    return ret < 0;
}
