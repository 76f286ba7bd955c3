/*
 * engine.c: the public engine API (include/catanet.h): open a model on a device, plan memory
 * for a frame size, upscale frames.
 */
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "catanet.h"
#include "config.h"
#include "engine_internal.h"
#include "error.h"
#include "forward_cpu.h"
#include "model.h"

void catanet_config_default(CatanetConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->device = CATANET_DEVICE_CPU;
    cfg->precision = CATANET_PRECISION_AUTO;
    cfg->log_level = CATANET_LOG_INFO;
}

/* CATANET_DEVICE_AUTO: CUDA when the plugin loads and finds a device, else the CPU, said at INFO */
static CatanetDevice choose_device(CatanetEngine *e)
{
    char why[1024];
    if (catanet_cuda_usable(why, sizeof(why)) < 1) {
        catanet_log(e, CATANET_LOG_INFO, "catanet: device auto: the CPU (%s)", why);
        return CATANET_DEVICE_CPU;
    }
    catanet_log(e, CATANET_LOG_INFO, "catanet: device auto: CUDA");
    return CATANET_DEVICE_CUDA;
}

int catanet_engine_open(CatanetEngine **out, const char *model_path, const CatanetConfig *cfg, char *err,
                        size_t es)
{
    if (err && es)
        err[0] = 0;
    if (!out)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    if (!model_path || !cfg)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "model path or config is NULL");
    if (cfg->device != CATANET_DEVICE_CPU && cfg->device != CATANET_DEVICE_CUDA && cfg->device != CATANET_DEVICE_AUTO)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "unknown device %d", (int)cfg->device);
    if (cfg->threads < 0 || cfg->tile < 0 || cfg->gpu < 0)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "negative threads, tile or gpu");
    if (cfg->kernels < CATANET_KERNELS_AUTO || cfg->kernels > CATANET_KERNELS_FALLBACK)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "unknown kernels choice %d", (int)cfg->kernels);
    CatanetEngine *e = calloc(1, sizeof(*e));
    if (!e)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    e->cfg = *cfg;
    if (cfg->device == CATANET_DEVICE_AUTO)
        e->cfg.device = choose_device(e);
    cfg = &e->cfg;
    if (cfg->precision == CATANET_PRECISION_FP16 && cfg->device == CATANET_DEVICE_CPU) {
        catanet_engine_close(&e);
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "fp16 runs on CUDA only; the CPU path is fp32");
    }
    /* a model name becomes its file here, so that messages and the log name the file */
    char path[PATH_MAX];
    int ret = catanet_model_resolve(model_path, path, sizeof(path), e->err, sizeof(e->err));
    if (ret < 0)
        goto fail;
    model_path = path;
    ret = catanet_model_load(&e->model, model_path, e->err, sizeof(e->err));
    if (ret < 0)
        goto fail;
    for (int g = 0; g < e->model->info.num_groups; g++)
        if (!e->model->initted[g]) {
            ret = catanet_errf(e->err, sizeof(e->err), CATANET_ERR_FORMAT,
                               "'%s': group %d has initted = False: its token centers were never set "
                               "(an untrained model); refusing to run it", model_path, g);
            goto fail;
        }
    e->precision = cfg->device == CATANET_DEVICE_CPU ? CATANET_PRECISION_FP32 :
                   cfg->precision == CATANET_PRECISION_AUTO ? CATANET_PRECISION_FP16 : cfg->precision;
    snprintf(e->cpu_name, sizeof(e->cpu_name), "cpu (%d threads)", cfg->threads > 0 ? cfg->threads : omp_get_max_threads());
    if (cfg->device == CATANET_DEVICE_CUDA) {
        ret = catanet_cuda_open(e);
        if (ret < 0)
            goto fail;
    }
    catanet_log(e, CATANET_LOG_INFO, "catanet: %s on %s (%s): x%d, %d groups, %lld parameters", model_path,
                cfg->device == CATANET_DEVICE_CUDA ? "CUDA" : "CPU",
                e->precision == CATANET_PRECISION_FP16 ? "fp16" : "fp32", e->model->info.upscale,
                e->model->info.num_groups, (long long)e->model->info.num_params);
    *out = e;
    return 0;
fail:
    catanet_errf(err, es, ret, "%s", e->err);
    catanet_engine_close(&e);
    return ret;
}

void catanet_engine_close(CatanetEngine **pe)
{
    if (!pe || !*pe)
        return;
    CatanetEngine *e = *pe;
    catanet_cpu_plan_free(e->cpu);
    free(e->rgb_in);
    free(e->rgb_out);
    free(e->tile_in);
    if (e->cuda)
        catanet_cuda_close(e);
    catanet_model_free(e->model);
    free(e);
    *pe = NULL;
}

const CatanetModelInfo *catanet_engine_model(const CatanetEngine *e)
{
    return e ? &e->model->info : NULL;
}

int catanet_engine_scale(const CatanetEngine *e)
{
    return e ? e->model->info.upscale : CATANET_ERR_INVALID_ARG;
}

CatanetDevice catanet_engine_device(const CatanetEngine *e)
{
    return e ? e->cfg.device : CATANET_DEVICE_CPU;
}

CatanetPrecision catanet_engine_precision(const CatanetEngine *e)
{
    return e ? e->precision : CATANET_PRECISION_FP32;
}

const char *catanet_engine_device_name(const CatanetEngine *e)
{
    if (!e)
        return "none";
    return e->cfg.device == CATANET_DEVICE_CUDA ? catanet_cuda_device_name(e) : e->cpu_name;
}

int catanet_engine_profile(CatanetEngine *e, char *report, size_t report_size)
{
    if (!e || !report || report_size == 0)
        return CATANET_ERR_INVALID_ARG;
    report[0] = 0;
    if (e->cfg.device != CATANET_DEVICE_CUDA)
        return catanet_engine_fail(e, CATANET_ERR_UNSUPPORTED, "profile: CUDA engines only");
    if (!e->prepared)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "profile before prepare");
    return catanet_cuda_profile(e, report, report_size);
}

int64_t catanet_engine_memory_bytes(const CatanetEngine *e)
{
    if (!e)
        return 0;
    if (e->cfg.device == CATANET_DEVICE_CUDA)
        return catanet_cuda_memory_bytes(e);
    int64_t bytes = (int64_t)e->model->arena_floats * 4;
    if (e->cpu)
        bytes += catanet_cpu_plan_bytes(e->cpu);
    return bytes;
}

const char *catanet_engine_last_error(const CatanetEngine *e)
{
    return e ? e->err : "engine is NULL";
}

/* Tiling (cfg.tile > 0 and the frame larger than a tile): the network runs on tile x tile
 * pieces (edge pieces shifted inward so every piece has the same size and one plan serves all),
 * neighbours overlapping by at least 2*overlap input pixels; each piece contributes the part of
 * its output up to the middle of its overlaps. The local ops (convolutions, LRSA patches) see the
 * same neighbourhood as untiled up to `overlap` pixels, but CATANet's token clustering and IRCA
 * are content-global within what the network sees, so a tiled result is close to, never
 * bit-equal to, the untiled one (tests/test_engine.c measures it). */
static int tile_overlap(const CatanetModelInfo *info)
{
    int ov = catanet_min_side(info); /* the widest LRSA patch */
    return ov > 8 ? ov : 8;
}

/* starts of equal-size pieces of length t covering [0,len), step t - 2ov; returns the count */
static int tile_starts(int len, int t, int ov, int *starts, int max)
{
    if (t >= len) {
        starts[0] = 0;
        return 1;
    }
    int n = 0, step = t - 2 * ov;
    for (int x = 0;; x += step) {
        if (n == max)
            return -1;
        if (x + t >= len) {
            starts[n++] = len - t;
            return n;
        }
        starts[n++] = x;
    }
}

int catanet_engine_prepare(CatanetEngine *e, int width, int height)
{
    if (!e)
        return CATANET_ERR_INVALID_ARG;
    if (width < 1 || height < 1 || width > 32768 || height > 32768)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "frame size %dx%d out of range (1..32768)", width,
                                   height);
    if (e->prepared && e->width == width && e->height == height)
        return 0;
    e->prepared = 0;
    catanet_cpu_plan_free(e->cpu);
    e->cpu = NULL;
    free(e->rgb_in);
    free(e->rgb_out);
    free(e->tile_in);
    e->rgb_in = e->rgb_out = e->tile_in = e->tile_out = NULL;
    const CatanetModelInfo *info = &e->model->info;
    int s = info->upscale, ret;
    int ov = tile_overlap(info), tile = e->cfg.tile;
    if (tile > 0 && tile < 4 * ov)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "tile %d too small for this model (at least %d)",
                                   tile, 4 * ov);
    e->tiled = tile > 0 && (width > tile || height > tile);
    int pw = e->tiled ? (width < tile ? width : tile) : width;
    int ph = e->tiled ? (height < tile ? height : tile) : height;
    if (e->tiled) {
        e->n_tx = tile_starts(width, pw, ov, e->tx, CATANET_MAX_TILES);
        e->n_ty = tile_starts(height, ph, ov, e->ty, CATANET_MAX_TILES);
        if (e->n_tx < 0 || e->n_ty < 0)
            return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "tile %d: too many tiles for %dx%d", tile,
                                       width, height);
        e->tile_w = pw;
        e->tile_h = ph;
        size_t tin = (size_t)3 * pw * ph;
        e->tile_in = malloc(sizeof(float) * tin * (1 + s * s));
        if (!e->tile_in)
            return catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory for %dx%d tiles", pw, ph);
        e->tile_out = e->tile_in + tin;
    }
    size_t n_in = (size_t)3 * width * height, n_out = n_in * s * s;
    e->rgb_in = malloc(sizeof(float) * n_in);
    e->rgb_out = malloc(sizeof(float) * n_out);
    if (!e->rgb_in || !e->rgb_out)
        return catanet_engine_fail(e, CATANET_ERR_NOMEM, "out of memory for %dx%d frame buffers", width, height);
    if (e->cfg.device == CATANET_DEVICE_CUDA)
        ret = catanet_cuda_prepare(e, pw, ph);
    else
        ret = catanet_cpu_plan_create(&e->cpu, e->model, pw, ph, e->cfg.threads, e->err, sizeof(e->err));
    if (ret < 0) {
        catanet_log(e, CATANET_LOG_ERROR, "%s", e->err);
        return ret;
    }
    if (e->tiled)
        catanet_log(e, CATANET_LOG_INFO, "catanet: %dx%d in %dx%d tiles of %dx%d (overlap %d)", width, height,
                    e->n_tx, e->n_ty, pw, ph, ov);
    e->width = width;
    e->height = height;
    e->prepared = 1;
    return 0;
}

static int run_piece(CatanetEngine *e, const float *in, float *out)
{
    if (e->cfg.device == CATANET_DEVICE_CUDA)
        return catanet_cuda_process(e, in, out);
    catanet_cpu_forward(e->cpu, in, out);
    return 0;
}

/* [lo, hi) of the input that piece k owns: up to the middle of each overlap */
static void owned(const int *starts, int n, int k, int t, int len, int *lo, int *hi)
{
    *lo = k == 0 ? 0 : (starts[k] + starts[k - 1] + t) / 2;
    *hi = k == n - 1 ? len : (starts[k + 1] + starts[k] + t) / 2;
}

static int process_tiled(CatanetEngine *e, const float *in, float *out)
{
    int W = e->width, H = e->height, tw = e->tile_w, th = e->tile_h, s = e->model->info.upscale;
    for (int ky = 0; ky < e->n_ty; ky++)
        for (int kx = 0; kx < e->n_tx; kx++) {
            int x0 = e->tx[kx], y0 = e->ty[ky];
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < th; y++)
                    memcpy(e->tile_in + ((size_t)c * th + y) * tw, in + ((size_t)c * H + y0 + y) * W + x0,
                           sizeof(float) * tw);
            int ret = run_piece(e, e->tile_in, e->tile_out);
            if (ret < 0)
                return ret;
            int xl, xh, yl, yh;
            owned(e->tx, e->n_tx, kx, tw, W, &xl, &xh);
            owned(e->ty, e->n_ty, ky, th, H, &yl, &yh);
            for (int c = 0; c < 3; c++)
                for (int y = yl * s; y < yh * s; y++)
                    memcpy(out + ((size_t)c * H * s + y) * W * s + (size_t)xl * s,
                           e->tile_out + ((size_t)c * th * s + (y - y0 * s)) * tw * s + (size_t)(xl - x0) * s,
                           sizeof(float) * (size_t)(xh - xl) * s);
        }
    return 0;
}

/* NaN or Inf in an output frame (weights or input out of range) is an error, not a picture: clamping
 * would turn it into black or white silently. A test of the exponent bits, branch-free so the
 * compiler vectorizes it: one read of the output, about 0.004% of a one-thread CPU forward (480x270,
 * XS x2: 0.5 ms against 13 s). One thread: the engine's thread count is the caller's (cfg.threads).
 * A CUDA engine counts them on the device instead, in the kernel that writes the output
 * (backend_cuda.c: check_nonfinite), for host and device frames alike. */
static size_t count_nonfinite(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad += (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad;
}

static int check_finite(CatanetEngine *e, const float *out)
{
    int s = e->model->info.upscale;
    size_t n = (size_t)3 * e->width * e->height * s * s, bad = count_nonfinite(out, n);
    if (bad)
        return catanet_engine_fail(e, CATANET_ERR_NONFINITE,
                                   "the output frame holds %zu non-finite values (NaN or Inf) of %zu: the "
                                   "model's weights or the input are out of range", bad, n);
    return 0;
}

int catanet_engine_process(CatanetEngine *e, const float *in, float *out)
{
    if (!e)
        return CATANET_ERR_INVALID_ARG;
    if (!in || !out)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "process: NULL input or output");
    if (!e->prepared)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "process called before prepare");
    int ret = e->tiled ? process_tiled(e, in, out) : run_piece(e, in, out);
    return ret < 0 || e->cfg.device == CATANET_DEVICE_CUDA ? ret : check_finite(e, out);
}

int catanet_engine_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out)
{
    if (!e)
        return CATANET_ERR_INVALID_ARG;
    if (!in || !out)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "process_image: NULL image");
    if (!e->prepared)
        return catanet_engine_fail(e, CATANET_ERR_STATE, "process called before prepare");
    int s = e->model->info.upscale;
    if (in->width != e->width || in->height != e->height || out->width != s * e->width ||
        out->height != s * e->height)
        return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG,
                                   "image sizes %dx%d -> %dx%d do not match the prepared %dx%d -> %dx%d",
                                   in->width, in->height, out->width, out->height, e->width, e->height,
                                   s * e->width, s * e->height);
    if (in->on_device || out->on_device) {
        if (e->cfg.device != CATANET_DEVICE_CUDA)
            return catanet_engine_fail(e, CATANET_ERR_INVALID_ARG, "device images need a CUDA engine");
        if (e->tiled) /* the CUDA backend is planned for one tile; device frames are not cut into tiles */
            return catanet_engine_fail(e, CATANET_ERR_UNSUPPORTED,
                                       "device images of %dx%d with tile=%d: tiling runs on host frames only "
                                       "(use tile=0, or host frames)", e->width, e->height, e->cfg.tile);
        return catanet_cuda_process_image(e, in, out); /* the backend checks for NaN/Inf itself */
    }
    int ret = catanet_image_to_rgb(in, e->rgb_in);
    if (ret < 0)
        return catanet_engine_fail(e, ret, "unsupported input image (format %d, %d bits)", (int)in->format, in->bits);
    ret = catanet_engine_process(e, e->rgb_in, e->rgb_out);
    if (ret < 0)
        return ret;
    ret = catanet_image_from_rgb(e->rgb_out, out);
    if (ret < 0)
        return catanet_engine_fail(e, ret, "unsupported output image (format %d, %d bits)", (int)out->format,
                                   out->bits);
    return 0;
}
