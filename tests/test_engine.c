/*
 * test_engine.c: the public engine API (include/catanet.h): argument and call-order errors,
 * every input size from 1x1 up (the defined behaviour for frames smaller than the largest patch:
 * symmetric mirror padding, then crop), the LRSA quirk sizes, model surgery (a kept-groups model
 * equals running those groups), tiling, thread determinism, re-prepare, 8-bit image I/O.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catanet.h"
#include "forward_cpu.h"
#include "kernels.h"
#include "model.h"
#include "testutil.h"

static char tmpdir[256];

static const char *weights(void)
{
    static char p[512];
    return ref_path(p, sizeof(p), "weights_x2_trained.safetensors");
}

static CatanetEngine *open_engine(const char *path, int threads, int tile)
{
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.threads = threads;
    cfg.tile = tile;
    CatanetEngine *e = NULL;
    char err[512];
    if (catanet_engine_open(&e, path, &cfg, err, sizeof(err)) < 0)
        printf("open %s: %s\n", path, err);
    return e;
}

static float *random_image(int w, int h, uint64_t seed)
{
    Rng r = { seed * 2654435761u + 1 };
    float *x = malloc(sizeof(float) * 3 * w * h);
    /* smooth content plus noise, like a photo (pure noise is not what the model sees) */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++)
                x[((size_t)c * h + y) * w + i] = 0.5f + 0.3f * sinf(0.21f * i + 0.13f * y + c) + 0.05f * rng_normal(&r);
    return x;
}

static double psnr(const float *a, const float *b, size_t n)
{
    double mse = 0.0;
    for (size_t i = 0; i < n; i++)
        mse += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    mse /= n;
    return mse > 0 ? 10.0 * log10(1.0 / mse) : INFINITY;
}

static void test_errors(void)
{
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    CatanetEngine *e = (CatanetEngine *)1;
    char err[512];
    int r = catanet_engine_open(&e, "/nonexistent/model.safetensors", &cfg, err, sizeof(err));
    test_check(r == CATANET_ERR_IO && e == NULL && strstr(err, "/nonexistent/model.safetensors"),
               "missing model: CATANET_ERR_IO naming the file (%s)", err);
    r = catanet_engine_open(NULL, weights(), &cfg, err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG, "NULL out pointer rejected");
    r = catanet_engine_open(&e, weights(), NULL, err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG, "NULL config rejected");
    cfg.device = (CatanetDevice)7;
    r = catanet_engine_open(&e, weights(), &cfg, err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG, "unknown device rejected (%s)", err);
    catanet_config_default(&cfg);
    cfg.kernels = (CatanetKernels)3;
    r = catanet_engine_open(&e, weights(), &cfg, err, sizeof(err));
    test_check(r == CATANET_ERR_INVALID_ARG && e == NULL, "unknown kernels choice rejected (%s)", err);
    catanet_config_default(&cfg);
    cfg.precision = CATANET_PRECISION_FP16;
    r = catanet_engine_open(&e, weights(), &cfg, err, sizeof(err));
    test_check(r == CATANET_ERR_UNSUPPORTED, "fp16 on the CPU is refused, not silently fp32 (%s)", err);
    if (catanet_cuda_device_count() == 0) {
        catanet_config_default(&cfg);
        cfg.device = CATANET_DEVICE_CUDA;
        r = catanet_engine_open(&e, weights(), &cfg, err, sizeof(err));
        test_check(r == CATANET_ERR_NO_DEVICE && e == NULL, "CUDA without a GPU: CATANET_ERR_NO_DEVICE (%s)", err);
    }
    e = open_engine(weights(), 2, 0);
    char rep[256];
    test_check(catanet_engine_profile(e, rep, sizeof(rep)) == CATANET_ERR_UNSUPPORTED,
               "profile on a CPU engine: CATANET_ERR_UNSUPPORTED (%s)", catanet_engine_last_error(e));
    float x[3] = { 0.5f, 0.5f, 0.5f }, y[12];
    test_check(catanet_engine_process(e, x, y) == CATANET_ERR_STATE && strstr(catanet_engine_last_error(e), "prepare"),
               "process before prepare: CATANET_ERR_STATE (%s)", catanet_engine_last_error(e));
    test_check(catanet_engine_prepare(e, 0, 5) == CATANET_ERR_INVALID_ARG, "0-width frame rejected");
    test_check(catanet_engine_prepare(e, 5, 40000) == CATANET_ERR_INVALID_ARG, "40000-high frame rejected");
    test_check(catanet_engine_scale(e) == 2 && catanet_engine_model(e)->num_params == 477435 &&
               catanet_engine_model(e)->num_groups == 8, "model info: x2, 8 groups, 477,435 parameters");
    test_check(strcmp(catanet_strerror(CATANET_ERR_FORMAT), catanet_strerror(CATANET_ERR_IO)) != 0 &&
               strcmp(catanet_strerror(-1234), "unknown error") == 0, "error strings");
    catanet_engine_close(&e);
    catanet_engine_close(&e); /* NULL-safe */
    test_check(e == NULL, "close sets the handle to NULL");
}

/* Frames smaller than the largest patch: the output must equal the crop of the network run on the
 * symmetric-mirror padding of the frame to that size (built here independently). */
static void test_small_sizes(void)
{
    static const int sizes[][2] = { { 1, 1 }, { 2, 3 }, { 17, 17 }, { 27, 40 }, { 40, 27 }, { 5, 33 } };
    CatanetEngine *e = open_engine(weights(), 2, 0);
    int min_side = 28;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int w = sizes[k][0], h = sizes[k][1], pw = w > min_side ? w : min_side, ph = h > min_side ? h : min_side;
        float *x = random_image(w, h, k), *out = malloc(sizeof(float) * 12 * w * h);
        float *xp = malloc(sizeof(float) * 3 * pw * ph), *outp = malloc(sizeof(float) * 12 * pw * ph);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < ph; y++)
                for (int i = 0; i < pw; i++) {
                    int sy = y, sx = i; /* symmetric: ..., 1, 0 | 0, 1, ..., n-1 | n-1, n-2, ... */
                    while (sy >= h)
                        sy = sy >= 2 * h ? sy - 2 * h : 2 * h - 1 - sy;
                    while (sx >= w)
                        sx = sx >= 2 * w ? sx - 2 * w : 2 * w - 1 - sx;
                    xp[((size_t)c * ph + y) * pw + i] = x[((size_t)c * h + sy) * w + sx];
                }
        int r1 = catanet_engine_prepare(e, w, h);
        int r2 = r1 < 0 ? r1 : catanet_engine_process(e, x, out);
        int r3 = catanet_engine_prepare(e, pw, ph);
        int r4 = r3 < 0 ? r3 : catanet_engine_process(e, xp, outp);
        double worst = 0.0;
        int finite = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 2 * h; y++)
                for (int i = 0; i < 2 * w; i++) {
                    float a = out[((size_t)c * 2 * h + y) * 2 * w + i], b = outp[((size_t)c * 2 * ph + y) * 2 * pw + i];
                    finite &= isfinite(a);
                    worst = fabs(a - b) > worst ? fabs(a - b) : worst;
                }
        test_check(r2 == 0 && r4 == 0 && finite && worst <= 1e-5,
                   "%dx%d frame: output = crop of the mirror-padded %dx%d run (max diff %.2g)", w, h, pw, ph, worst);
        free(x);
        free(out);
        free(xp);
        free(outp);
    }
    catanet_engine_close(&e);
}

/* Sizes that hit the LRSA 0.75 weight (31, 45, 129 for ps 16; 39, 57 for ps 20): fast vs plain
 * reference ops on a 2-group model (groups 0 and 1: ps 16 and 20) to keep the reference path fast. */
static void test_quirk_sizes(CatanetModel *m2)
{
    static const int sizes[][2] = { { 31, 129 }, { 45, 39 }, { 57, 31 } };
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int w = sizes[k][0], h = sizes[k][1];
        char err[256];
        CatanetCpuPlan *fast, *ref;
        if (catanet_cpu_plan_create(&fast, m2, w, h, 2, err, sizeof(err)) < 0 ||
            catanet_cpu_plan_create(&ref, m2, w, h, 1, err, sizeof(err)) < 0) {
            test_check(0, "plan %dx%d: %s", w, h, err);
            return;
        }
        ref->use_ref = 1;
        float *x = random_image(w, h, 100 + k), *a = malloc(sizeof(float) * 12 * w * h),
              *b = malloc(sizeof(float) * 12 * w * h);
        catanet_cpu_forward(fast, x, a);
        catanet_cpu_forward(ref, x, b);
        double d = max_abs_diff(a, b, (size_t)12 * w * h, NULL);
        test_check(d <= 1e-4, "quirk size %dx%d: fast ops = reference ops (max diff %.2g)", w, h, d);
        free(x);
        free(a);
        free(b);
        catanet_cpu_plan_free(fast);
        catanet_cpu_plan_free(ref);
    }
}

/* A student keeping groups {0, 3, 6} is "just a file with three groups": it must equal running
 * the teacher's first_conv, groups 0, 3, 6 (with their own mid_convs) and its tail. */
static void test_extract(CatanetModel *m8)
{
    static const int keep[3] = { 0, 3, 6 };
    char err[256], path[512];
    CatanetModel *m3;
    if (catanet_model_extract(&m3, m8, keep, 3, err, sizeof(err)) < 0) {
        test_check(0, "extract: %s", err);
        return;
    }
    int ok = m3->info.num_groups == 3;
    for (int j = 0; j < 3; j++) {
        const CatanetGroupInfo *a = &m3->info.groups[j], *b = &m8->info.groups[keep[j]];
        ok &= a->num_tokens == b->num_tokens && a->group_size == b->group_size && a->patch_size == b->patch_size;
        ok &= !memcmp(m3->groups[j].tab.means, m8->groups[keep[j]].tab.means,
                      sizeof(float) * b->num_tokens * m8->info.dim);
        ok &= !memcmp(m3->groups[j].mid_w, m8->groups[keep[j]].mid_w, sizeof(float) * 9 * 40 * 40);
    }
    test_check(ok, "extract keeps each group's num_tokens, group_size, patch_size, means and mid_conv");
    snprintf(path, sizeof(path), "%s/three.safetensors", tmpdir);
    int r = catanet_model_save(m3, path, NULL, NULL, 0, err, sizeof(err));
    CatanetModel *back = NULL;
    if (r == 0)
        r = catanet_model_load(&back, path, err, sizeof(err));
    test_check(r == 0 && back->info.num_groups == 3 && back->info.groups[1].num_tokens == 128 &&
               back->info.groups[2].patch_size == 24 && !memcmp(back->arena, m3->arena, m3->arena_floats * 4),
               "a 3-group model survives save/load with its per-group hyperparameters (%s)", r ? err : "ok");
    /* the student's forward = the teacher's groups 0, 3, 6 applied in sequence */
    int w = 36, h = 30;
    CatanetCpuPlan *p3;
    catanet_cpu_plan_create(&p3, m3, w, h, 2, err, sizeof(err));
    float *x = random_image(w, h, 7), *y3 = malloc(sizeof(float) * 12 * w * h);
    catanet_cpu_forward(p3, x, y3);
    CatanetEngine *e = open_engine(path, 2, 0);
    float *ye = malloc(sizeof(float) * 12 * w * h);
    r = e ? catanet_engine_prepare(e, w, h) : -1;
    if (r == 0)
        r = catanet_engine_process(e, x, ye);
    test_check(r == 0 && memcmp(ye, y3, sizeof(float) * 12 * w * h) == 0,
               "the saved 3-group file runs through the public API with identical output");
    catanet_engine_close(&e);
    free(x);
    free(y3);
    free(ye);
    catanet_cpu_plan_free(p3);
    catanet_model_free(back);
    catanet_model_free(m3);
}

static void test_tiling(CatanetModel *m8)
{
    char err[256], path[512];
    /* a model without residual groups is purely local (3x3 convs): tiles must match exactly */
    CatanetModel *m0;
    catanet_model_extract(&m0, m8, NULL, 0, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/zero.safetensors", tmpdir);
    catanet_model_save(m0, path, NULL, NULL, 0, err, sizeof(err));
    catanet_model_free(m0);
    int w = 150, h = 97;
    float *x = random_image(w, h, 11), *a = malloc(sizeof(float) * 12 * w * h), *b = malloc(sizeof(float) * 12 * w * h);
    CatanetEngine *whole = open_engine(path, 2, 0), *tiled = open_engine(path, 2, 32);
    catanet_engine_prepare(whole, w, h);
    catanet_engine_process(whole, x, a);
    int r = catanet_engine_prepare(tiled, w, h);
    if (r == 0)
        r = catanet_engine_process(tiled, x, b);
    double d = max_abs_diff(a, b, (size_t)12 * w * h, NULL);
    test_check(r == 0 && d <= 1e-5, "local-only model: 32-pixel tiles (overlap 8) equal the untiled output (max diff %.2g)", d);
    catanet_engine_close(&whole);
    catanet_engine_close(&tiled);
    /* the full model: clustering is content-global, so tiles change the result a little; a
     * stitching error (misplaced or missing piece) would be far below this bound */
    w = 180;
    h = 130;
    x = realloc(x, sizeof(float) * 3 * w * h);
    free(x);
    x = random_image(w, h, 12);
    a = realloc(a, sizeof(float) * 12 * w * h);
    b = realloc(b, sizeof(float) * 12 * w * h);
    whole = open_engine(weights(), 2, 0);
    tiled = open_engine(weights(), 2, 112);
    catanet_engine_prepare(whole, w, h);
    catanet_engine_process(whole, x, a);
    r = catanet_engine_prepare(tiled, w, h);
    if (r == 0)
        r = catanet_engine_process(tiled, x, b);
    double p = psnr(a, b, (size_t)12 * w * h);
    test_check(r == 0 && p >= 40.0, "8-group model, %dx%d in 112-pixel tiles: PSNR vs untiled %.1f dB (>= 40)", w, h, p);
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.tile = 20;
    CatanetEngine *bad = open_engine(weights(), 2, 20);
    test_check(bad && catanet_engine_prepare(bad, 200, 200) == CATANET_ERR_INVALID_ARG,
               "a tile smaller than 4x the overlap is refused (%s)", bad ? catanet_engine_last_error(bad) : "");
    catanet_engine_close(&bad);
    catanet_engine_close(&whole);
    catanet_engine_close(&tiled);
    free(x);
    free(a);
    free(b);
}

static void test_threads_and_reprepare(void)
{
    int w = 45, h = 31;
    float *x = random_image(w, h, 3), *a = malloc(sizeof(float) * 12 * w * h), *b = malloc(sizeof(float) * 12 * w * h);
    CatanetEngine *e1 = open_engine(weights(), 1, 0), *e2 = open_engine(weights(), 2, 0);
    catanet_engine_prepare(e1, w, h);
    catanet_engine_process(e1, x, a);
    catanet_engine_prepare(e2, 64, 40); /* another size first: re-prepare must fully re-plan */
    catanet_engine_prepare(e2, w, h);
    catanet_engine_process(e2, x, b);
    test_check(memcmp(a, b, sizeof(float) * 12 * w * h) == 0, "1 and 2 threads, after a re-prepare: identical bits");
    /* 8-bit packed RGB in and out equals the float path, clamped and rounded */
    uint8_t *rgb = malloc((size_t)3 * w * h), *rgb2 = malloc((size_t)12 * w * h + 64);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++)
            for (int c = 0; c < 3; c++) {
                rgb[((size_t)y * w + i) * 3 + c] = (uint8_t)lrintf(x[((size_t)c * h + y) * w + i] * 255.0f);
                x[((size_t)c * h + y) * w + i] = rgb[((size_t)y * w + i) * 3 + c] / 255.0f;
            }
    catanet_engine_process(e1, x, a);
    CatanetImage in = { .format = CATANET_PIX_RGB24, .bits = 8, .width = w, .height = h, .data = { rgb },
                        .linesize = { 3 * w } };
    CatanetImage out = { .format = CATANET_PIX_RGB24, .bits = 8, .width = 2 * w, .height = 2 * h, .data = { rgb2 },
                         .linesize = { 6 * w + 1 } }; /* a stride wider than the row */
    int r = catanet_engine_process_image(e1, &in, &out);
    int bad = 0;
    for (int y = 0; y < 2 * h; y++)
        for (int i = 0; i < 2 * w; i++)
            for (int c = 0; c < 3; c++) {
                float v = a[((size_t)c * 2 * h + y) * 2 * w + i];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                bad += rgb2[(size_t)y * (6 * w + 1) + i * 3 + c] != (uint8_t)lrintf(v * 255.0f);
            }
    test_check(r == 0 && bad == 0, "process_image RGB24 (strided output) = float path clamped and rounded (%d differ)", bad);
    out.width = 2 * w + 2;
    test_check(catanet_engine_process_image(e1, &in, &out) == CATANET_ERR_INVALID_ARG,
               "process_image with the wrong output size is rejected (%s)", catanet_engine_last_error(e1));
    catanet_engine_close(&e1);
    catanet_engine_close(&e2);
    free(x);
    free(a);
    free(b);
    free(rgb);
    free(rgb2);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/catanet_test_engine_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    CatanetModel *m8, *m2;
    char err[512];
    if (catanet_model_load(&m8, weights(), err, sizeof(err)) < 0) {
        printf("FAIL: %s\n", err);
        return 1;
    }
    static const int first_two[2] = { 0, 1 };
    catanet_model_extract(&m2, m8, first_two, 2, err, sizeof(err));
    test_errors();
    test_small_sizes();
    test_quirk_sizes(m2);
    test_extract(m8);
    test_tiling(m8);
    test_threads_and_reprepare();
    catanet_model_free(m2);
    catanet_model_free(m8);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmpdir);
    return test_finish();
}
