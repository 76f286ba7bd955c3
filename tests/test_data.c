/*
 * test_data.c: image loading, the MATLAB-compatible bicubic (against Set14's LRbicx oracle),
 * PSNR/SSIM (closed forms and an independent direct SSIM), the bicubic baselines on Set5,
 * and the training patch pipeline (crop alignment, identical augmentation, epochs, determinism,
 * resume, prefetch, photo downscale and its cache, bad inputs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bicubic.h"
#include "catanet.h"
#include "data.h"
#include "imgload.h"
#include "metrics.h"
#include "testutil.h"

static const char *const set14[] = { "baboon", "barbara", "bridge", "coastguard", "comic", "face", "flowers",
                                     "foreman", "lenna", "man", "monarch", "pepper", "ppt3", "zebra" };

static char tmpdir[256];

/* ---- bicubic ---- */

static void test_bicubic_oracle(void)
{
    char p[1024], err[512];
    int exact = 0, total = 0, loaded = 1;
    for (int s = 2; s <= 4; s++) {
        printf("x%d mismatching samples per image:", s);
        for (int i = 0; i < 14; i++) {
            CatanetRaster hr, lr, out;
            char rel[256];
            snprintf(rel, sizeof(rel), "data/eval/Set14/GTmod12/%s.png", set14[i]);
            if (catanet_raster_load(shared_path(p, sizeof(p), rel), &hr, err, sizeof(err)) < 0) {
                printf("\n%s\n", err);
                loaded = 0;
                continue;
            }
            snprintf(rel, sizeof(rel), "data/eval/Set14/LRbicx%d/%s.png", s, set14[i]);
            if (catanet_raster_load(shared_path(p, sizeof(p), rel), &lr, err, sizeof(err)) < 0) {
                printf("\n%s\n", err);
                catanet_raster_free(&hr);
                loaded = 0;
                continue;
            }
            long bad = -1;
            if (catanet_imresize(&hr, 1.0 / s, &out) == 0) {
                if (out.w == lr.w && out.h == lr.h) {
                    bad = 0;
                    for (size_t k = 0; k < 3 * (size_t)lr.w * lr.h; k++)
                        bad += out.px[k] != lr.px[k];
                }
                catanet_raster_free(&out);
            }
            printf(" %s %ld", set14[i], bad);
            exact += bad == 0;
            total++;
            catanet_raster_free(&hr);
            catanet_raster_free(&lr);
        }
        printf("\n");
    }
    test_check(loaded && total == 42, "Set14 GTmod12 and LRbicx{2,3,4} loaded (%d pairs)", total);
    test_check(exact >= 41, "bicubic reproduces Set14 LRbicx{2,3,4} bit for bit on %d of 42 images (need 41)", exact);
}

/* Set5's LR_bicubic files are MATLAB's imresize on uint8 images: each pass rounded (ties away from zero),
 * the vertical pass first. Reproducing them all also pins down MATLAB's pass order for equal scales. */
static void test_bicubic_set5(void)
{
    static const char *const set5[] = { "baby", "bird", "butterfly", "head", "woman" };
    char p[1024], rel[256], err[512];
    int exact[3] = { 0 }, exact_hfirst = 0;
    printf("Set5 LR_bicubic, MATLAB uint8 mode, mismatching samples:");
    for (int s = 2; s <= 4; s++)
        for (int i = 0; i < 5; i++) {
            CatanetRaster hr, lr, out;
            snprintf(rel, sizeof(rel), "data/eval/Set5/HR/%s.png", set5[i]);
            if (catanet_raster_load(shared_path(p, sizeof(p), rel), &hr, err, sizeof(err)) < 0) {
                printf(" %s", err);
                continue;
            }
            snprintf(rel, sizeof(rel), "data/eval/Set5/LR_bicubic/X%d/%sx%d.png", s, set5[i], s);
            if (catanet_raster_load(shared_path(p, sizeof(p), rel), &lr, err, sizeof(err)) < 0) {
                printf(" %s", err);
                catanet_raster_free(&hr);
                continue;
            }
            /* modcrop, keeping the top-left */
            int w = hr.w - hr.w % s, h = hr.h - hr.h % s;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++)
                    memmove(hr.px + ((size_t)c * h + y) * w, hr.px + ((size_t)c * hr.h + y) * hr.w, 2 * (size_t)w);
            hr.w = w;
            hr.h = h;
            for (int order = CATANET_RESIZE_MATLAB; order <= CATANET_RESIZE_HORIZONTAL_FIRST; order += 2) {
                long bad = -1;
                if (catanet_imresize_ex(&hr, 1.0 / s, order, CATANET_RESIZE_ROUND_BETWEEN | CATANET_RESIZE_TIES_AWAY,
                                        &out) == 0) {
                    if (out.w == lr.w && out.h == lr.h) {
                        bad = 0;
                        for (size_t k = 0; k < 3 * (size_t)lr.w * lr.h; k++)
                            bad += out.px[k] != lr.px[k];
                    }
                    catanet_raster_free(&out);
                }
                if (order == CATANET_RESIZE_MATLAB) {
                    printf(" %s/x%d %ld", set5[i], s, bad);
                    exact[s - 2] += bad == 0;
                } else
                    exact_hfirst += bad == 0;
            }
            catanet_raster_free(&hr);
            catanet_raster_free(&lr);
        }
    printf("\n");
    test_check(exact[0] == 5 && exact[1] == 5 && exact[2] == 5,
               "MATLAB uint8 mode reproduces Set5 LR_bicubic X2/X3/X4 bit for bit (%d, %d, %d of 5)", exact[0],
               exact[1], exact[2]);
    test_check(exact_hfirst == 0, "with the horizontal pass first it does not (%d of 15 exact): vertical goes first",
               exact_hfirst);
}

static void fill_random(CatanetRaster *r, Rng *g)
{
    for (size_t i = 0; i < 3 * (size_t)r->w * r->h; i++)
        r->px[i] = (uint16_t)(rng_u32(g) % (r->maxval + 1u));
}

static void test_bicubic_properties(void)
{
    Rng g = { 7 };
    CatanetRaster a, b;
    /* a constant image stays constant at any scale (weights are normalised) */
    int ok = 1;
    const double scales[] = { 0.5, 1.0 / 3, 0.25, 0.7, 2, 3, 4, 1.5 };
    catanet_raster_alloc(&a, 37, 23, 255);
    for (size_t i = 0; i < 3 * 37 * 23; i++)
        a.px[i] = (uint16_t)(i < 37 * 23 ? 17 : i < 2 * 37 * 23 ? 200 : 255);
    for (int k = 0; k < 8; k++) {
        if (catanet_imresize(&a, scales[k], &b) < 0) {
            ok = 0;
            continue;
        }
        ok &= b.w == catanet_imresize_size(37, scales[k]) && b.h == catanet_imresize_size(23, scales[k]);
        size_t pl = (size_t)b.w * b.h;
        for (size_t i = 0; i < 3 * pl; i++)
            ok &= b.px[i] == (i < pl ? 17 : i < 2 * pl ? 200 : 255);
        catanet_raster_free(&b);
    }
    catanet_raster_free(&a);
    test_check(ok, "bicubic keeps constant images constant and sizes are ceil(n*scale)");

    /* the raster path equals the double path rounded; a 1-D ramp is reproduced in the interior when upscaling
     * (a cubic kernel reproduces linear functions exactly) */
    catanet_raster_alloc(&a, 40, 30, 65535);
    fill_random(&a, &g);
    double *in = malloc(sizeof(double) * 40 * 30), *out = malloc(sizeof(double) * 20 * 15);
    for (int i = 0; i < 40 * 30; i++)
        in[i] = a.px[i];
    catanet_imresize_f64(in, 40, 30, 0.5, CATANET_RESIZE_MATLAB, out);
    catanet_imresize(&a, 0.5, &b);
    ok = 1;
    for (int i = 0; i < 20 * 15; i++)
        ok &= b.px[i] == (uint16_t)fmin(65535, fmax(0, rint(out[i])));
    test_check(ok, "imresize on a raster equals imresize_f64 rounded");
    catanet_raster_free(&b);
    catanet_raster_free(&a);
    free(in);
    free(out);

    in = malloc(sizeof(double) * 16 * 8);
    out = malloc(sizeof(double) * 48 * 24);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++)
            in[y * 16 + x] = 3.0 * x + 0.5 * y;
    catanet_imresize_f64(in, 16, 8, 3.0, CATANET_RESIZE_MATLAB, out);
    double worst = 0;
    for (int y = 6; y < 18; y++)
        for (int x = 6; x < 42; x++) {
            /* output pixel centre maps to input coordinate (x + 0.5) / 3 - 0.5 */
            double ex = 3.0 * ((x + 0.5) / 3 - 0.5) + 0.5 * ((y + 0.5) / 3 - 0.5);
            worst = fmax(worst, fabs(out[y * 48 + x] - ex));
        }
    test_check(worst < 1e-9, "x3 bicubic upscale reproduces a linear ramp away from the borders (err %.2e)", worst);
    free(in);
    free(out);

    /* both pass orders agree to within rounding; bad arguments are refused */
    catanet_raster_alloc(&a, 50, 41, 255);
    fill_random(&a, &g);
    CatanetRaster v, h;
    catanet_imresize_ex(&a, 1.0 / 3, CATANET_RESIZE_VERTICAL_FIRST, 0, &v);
    catanet_imresize_ex(&a, 1.0 / 3, CATANET_RESIZE_HORIZONTAL_FIRST, 0, &h);
    int maxd = 0;
    for (size_t i = 0; i < 3 * (size_t)v.w * v.h; i++)
        maxd = abs(v.px[i] - h.px[i]) > maxd ? abs(v.px[i] - h.px[i]) : maxd;
    test_check(maxd <= 1, "pass orders differ by at most 1 (%d)", maxd);
    catanet_raster_free(&v);
    catanet_raster_free(&h);
    test_check(catanet_imresize(&a, 0.0, &b) == CATANET_ERR_INVALID_ARG && !b.px &&
                   catanet_imresize(&a, -1.0, &b) == CATANET_ERR_INVALID_ARG &&
                   catanet_imresize(&a, NAN, &b) == CATANET_ERR_INVALID_ARG,
               "bad scales refused");
    catanet_raster_free(&a);
}

/* ---- image files ---- */

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }

/* a BMP of r (8-bit): bpp 24 or 32 or 8 (palette of the image's first 256 grey levels: r must be grey) */
static size_t make_bmp(const CatanetRaster *r, int bpp, int top_down, uint8_t **out)
{
    int w = r->w, h = r->h;
    size_t stride = ((size_t)w * bpp + 31) / 32 * 4, pal = bpp == 8 ? 256 * 4 : 0;
    size_t off = 14 + 40 + pal, n = off + stride * h;
    uint8_t *b = calloc(1, n);
    b[0] = 'B';
    b[1] = 'M';
    put32(b + 2, (uint32_t)n);
    put32(b + 10, (uint32_t)off);
    put32(b + 14, 40);
    put32(b + 18, (uint32_t)w);
    put32(b + 22, (uint32_t)(top_down ? -h : h));
    put16(b + 26, 1);
    put16(b + 28, bpp);
    for (int i = 0; bpp == 8 && i < 256; i++)
        b[54 + 4 * i] = b[55 + 4 * i] = b[56 + 4 * i] = (uint8_t)i;
    size_t pl = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        uint8_t *row = b + off + stride * (top_down ? y : h - 1 - y);
        for (int x = 0; x < w; x++) {
            size_t k = (size_t)y * w + x;
            if (bpp == 8)
                row[x] = (uint8_t)r->px[k];
            else {
                uint8_t *px = row + x * (bpp / 8);
                px[0] = (uint8_t)r->px[2 * pl + k];
                px[1] = (uint8_t)r->px[pl + k];
                px[2] = (uint8_t)r->px[k];
            }
        }
    }
    *out = b;
    return n;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static int same_raster(const CatanetRaster *a, const CatanetRaster *b)
{
    return a->w == b->w && a->h == b->h && a->maxval == b->maxval &&
           !memcmp(a->px, b->px, sizeof(uint16_t) * 3 * (size_t)a->w * a->h);
}

static void test_image_files(void)
{
    Rng g = { 11 };
    char path[512], err[512], p2[1024];
    CatanetRaster a, b;
    catanet_raster_alloc(&a, 13, 7, 255);   /* odd width: BMP rows are padded */
    fill_random(&a, &g);
    const int bpps[] = { 24, 32 };
    for (int k = 0; k < 2; k++)
        for (int td = 0; td < 2; td++) {
            uint8_t *bmp;
            size_t n = make_bmp(&a, bpps[k], td, &bmp);
            snprintf(path, sizeof(path), "%s/t.bmp", tmpdir);
            write_file(path, bmp, n);
            int ret = catanet_raster_load(path, &b, err, sizeof(err));
            test_check(ret == 0 && same_raster(&a, &b), "BMP %d-bit %s reads back exactly", bpps[k],
                       td ? "top-down" : "bottom-up");
            catanet_raster_free(&b);
            /* truncated pixel data and a bad header are errors, not crashes */
            write_file(path, bmp, n - 5);
            ret = catanet_raster_load(path, &b, err, sizeof(err));
            test_check(ret == CATANET_ERR_FORMAT && !b.px && strstr(err, "truncated"), "truncated BMP: %s", err);
            put32(bmp + 14, 77);
            write_file(path, bmp, n);
            ret = catanet_raster_load(path, &b, err, sizeof(err));
            test_check(ret == CATANET_ERR_FORMAT, "BMP with an unknown header: %s", err);
            put32(bmp + 14, 40);
            put32(bmp + 30, 1);   /* RLE8 */
            write_file(path, bmp, n);
            ret = catanet_raster_load(path, &b, err, sizeof(err));
            test_check(ret == CATANET_ERR_UNSUPPORTED, "compressed BMP: %s", err);
            free(bmp);
        }
    /* an 8-bit palette BMP of a grey image expands to three equal planes */
    size_t pl = (size_t)a.w * a.h;
    memcpy(a.px + pl, a.px, pl * sizeof(uint16_t));
    memcpy(a.px + 2 * pl, a.px, pl * sizeof(uint16_t));
    uint8_t *bmp;
    size_t n = make_bmp(&a, 8, 0, &bmp);
    snprintf(path, sizeof(path), "%s/t.bmp", tmpdir);
    write_file(path, bmp, n);
    test_check(catanet_raster_load(path, &b, err, sizeof(err)) == 0 && same_raster(&a, &b),
               "BMP 8-bit palette reads back as RGB");
    catanet_raster_free(&b);
    free(bmp);

    /* PNG 8 and 16 bit through our writer */
    snprintf(path, sizeof(path), "%s/t8.png", tmpdir);
    test_check(catanet_raster_save_png(path, &a, err, sizeof(err)) == 0 &&
                   catanet_raster_load(path, &b, err, sizeof(err)) == 0 && same_raster(&a, &b),
               "PNG 8-bit round trip");
    catanet_raster_free(&b);
    catanet_raster_free(&a);
    catanet_raster_alloc(&a, 9, 5, 65535);
    fill_random(&a, &g);
    snprintf(path, sizeof(path), "%s/t16.png", tmpdir);
    test_check(catanet_raster_save_png(path, &a, err, sizeof(err)) == 0 &&
                   catanet_raster_load(path, &b, err, sizeof(err)) == 0 && same_raster(&a, &b),
               "PNG 16-bit round trip");
    catanet_raster_free(&b);
    catanet_raster_free(&a);

    /* greyscale PNG (Set14 bridge) becomes three equal planes */
    int ok = catanet_raster_load(shared_path(p2, sizeof(p2), "data/eval/Set14/HR/bridge.png"), &b, err, sizeof(err)) == 0;
    if (ok) {
        pl = (size_t)b.w * b.h;
        ok = !memcmp(b.px, b.px + pl, pl * 2) && !memcmp(b.px, b.px + 2 * pl, pl * 2);
    }
    test_check(ok, "greyscale PNG expands to RGB (%s)", ok ? "bridge" : err);
    catanet_raster_free(&b);

    /* JPEG: a photograph of known size */
    ok = catanet_raster_load(shared_path(p2, sizeof(p2), "data/train/flutter-landscapes/landscape_1.jpg"), &b, err,
                             sizeof(err)) == 0;
    test_check(ok && b.w > 500 && b.h > 300 && b.maxval == 255, "JPEG decodes (%dx%d) %s", b.w, b.h, ok ? "" : err);
    catanet_raster_free(&b);

    /* bad files: missing, empty, garbage, a JPEG signature with nothing after it, a truncated PNG */
    int ret = catanet_raster_load("/nonexistent/x.png", &b, err, sizeof(err));
    test_check(ret == CATANET_ERR_IO && strstr(err, "cannot open"), "missing file: %s", err);
    snprintf(path, sizeof(path), "%s/bad.png", tmpdir);
    write_file(path, "", 0);
    ret = catanet_raster_load(path, &b, err, sizeof(err));
    test_check(ret == CATANET_ERR_FORMAT, "empty file: %s", err);
    write_file(path, "hello world, not an image", 25);
    ret = catanet_raster_load(path, &b, err, sizeof(err));
    test_check(ret == CATANET_ERR_FORMAT, "garbage: %s", err);
    write_file(path, "\xFF\xD8\xFF\xE0\0\x10JFIF", 10);
    ret = catanet_raster_load(path, &b, err, sizeof(err));
    test_check(ret == CATANET_ERR_FORMAT && !b.px, "broken JPEG: %s", err);
    {
        FILE *f = fopen(shared_path(p2, sizeof(p2), "data/eval/Set5/HR/bird.png"), "rb");
        uint8_t buf[4000];
        size_t got = f ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f)
            fclose(f);
        write_file(path, buf, got);
        ret = catanet_raster_load(path, &b, err, sizeof(err));
        test_check(got == sizeof(buf) && ret == CATANET_ERR_FORMAT && !b.px, "truncated PNG: %s", err);
    }
    test_check(catanet_is_image_file("a/B.JPEG") == CATANET_IMG_JPEG && catanet_is_image_file("x.bmp") == CATANET_IMG_BMP &&
                   catanet_is_image_file("x.png.txt") == CATANET_IMG_UNKNOWN,
               "image files recognised by extension");
}

/* ---- metrics ---- */

/* SSIM written directly from the definition: full 2-D 11x11 window, no separability, no shared code */
static double ssim_direct(const float *a, const float *b, int w, int h, int border)
{
    double win[11][11], s = 0;
    for (int i = 0; i < 11; i++)
        for (int j = 0; j < 11; j++)
            s += win[i][j] = exp(-((i - 5) * (i - 5) + (j - 5) * (j - 5)) / (2 * 1.5 * 1.5));
    size_t n = (size_t)w * h;
    double total = 0;
    int cnt = 0;
    for (int y = border; y + 11 <= h - border; y++)
        for (int x = border; x + 11 <= w - border; x++) {
            double m1 = 0, m2 = 0, s11 = 0, s22 = 0, s12 = 0;
            for (int i = 0; i < 11; i++)
                for (int j = 0; j < 11; j++) {
                    size_t k = (size_t)(y + i) * w + x + j;
                    double ya = 16 + 65.481 * a[k] + 128.553 * a[n + k] + 24.966 * a[2 * n + k];
                    double yb = 16 + 65.481 * b[k] + 128.553 * b[n + k] + 24.966 * b[2 * n + k];
                    double wt = win[i][j] / s;
                    m1 += wt * ya;
                    m2 += wt * yb;
                    s11 += wt * ya * ya;
                    s22 += wt * yb * yb;
                    s12 += wt * ya * yb;
                }
            double c1 = 6.5025, c2 = 58.5225;
            total += (2 * m1 * m2 + c1) * (2 * (s12 - m1 * m2) + c2) /
                     ((m1 * m1 + m2 * m2 + c1) * (s11 - m1 * m1 + s22 - m2 * m2 + c2));
            cnt++;
        }
    return total / cnt;
}

static void test_metrics(void)
{
    Rng g = { 5 };
    int w = 40, h = 33;
    size_t n = (size_t)w * h;
    float *a = malloc(sizeof(float) * 3 * n), *b = malloc(sizeof(float) * 3 * n);
    for (size_t i = 0; i < 3 * n; i++)
        a[i] = 0.1f + 0.8f * rng_uniform(&g);
    double p, s;
    catanet_psnr_y(a, a, w, h, 2, &p);
    catanet_ssim_y(a, a, w, h, 2, &s);
    test_check(fabs(p - 80.0) < 1e-9 && fabs(s - 1.0) < 1e-12, "identical images: PSNR %.6f (80 cap), SSIM %.12f", p, s);
    /* a constant offset d on R, G and B moves Y by d * 219/255: PSNR = 10 log10(1 / ((219 d / 255)^2 + 1e-8)) */
    const float d = 0.02f;
    for (size_t i = 0; i < 3 * n; i++)
        b[i] = a[i] + d;
    catanet_psnr_y(b, a, w, h, 3, &p);
    double dy = (65.481 + 128.553 + 24.966) * (double)d / 255.0;
    double expect = 10 * log10(1 / (dy * dy + 1e-8));
    test_check(fabs(p - expect) < 1e-4, "constant offset: PSNR %.6f, closed form %.6f", p, expect);
    /* only the border changes: cropped away */
    memcpy(b, a, sizeof(float) * 3 * n);
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < w; x++) {
            b[c * n + x] = 1.0f;
            b[c * n + (size_t)(h - 1) * w + x] = 0.0f;
        }
    catanet_psnr_y(b, a, w, h, 1, &p);
    catanet_ssim_y(b, a, w, h, 1, &s);
    test_check(fabs(p - 80.0) < 1e-9 && fabs(s - 1.0) < 1e-12, "a changed border of `scale` pixels is not measured");
    /* noise: our SSIM equals the direct 2-D definition and is symmetric */
    for (size_t i = 0; i < 3 * n; i++)
        b[i] = a[i] + 0.05f * rng_normal(&g);
    double s2, sd = ssim_direct(b, a, w, h, 2);
    catanet_ssim_y(b, a, w, h, 2, &s);
    catanet_ssim_y(a, b, w, h, 2, &s2);
    test_check(fabs(s - sd) < 1e-12 && fabs(s - s2) < 1e-14 && s < 0.99, "SSIM %.12f = direct definition %.12f, symmetric",
               s, sd);
    /* PSNR from the mse computed here */
    double se = 0;
    for (size_t k = 0; k < n; k++) {
        int y = (int)(k / w), x = (int)(k % w);
        if (y < 2 || y >= h - 2 || x < 2 || x >= w - 2)
            continue;
        double ya = (65.481 * a[k] + 128.553 * a[n + k] + 24.966 * a[2 * n + k]) / 255;
        double yb = (65.481 * b[k] + 128.553 * b[n + k] + 24.966 * b[2 * n + k]) / 255;
        se += (ya - yb) * (ya - yb);
    }
    catanet_psnr_y(b, a, w, h, 2, &p);
    expect = 10 * log10(1 / (se / ((w - 4) * (h - 4)) + 1e-8));
    test_check(fabs(p - expect) < 1e-9, "noisy: PSNR %.6f = %.6f from the definition", p, expect);
    test_check(catanet_ssim_y(a, a, 20, 20, 5, &s) == CATANET_ERR_INVALID_ARG &&
                   catanet_psnr_y(a, a, 10, 10, 5, &p) == CATANET_ERR_INVALID_ARG,
               "too small after the crop: refused");
    free(a);
    free(b);
}

static void test_baselines(void)
{
    /* the bicubic baseline everyone quotes for Set5 (MATLAB imresize up, Y, border = scale) */
    const double known[3] = { 33.66, 30.39, 28.42 }, known_ssim[3] = { 0.9299, 0.8682, 0.8104 };
    char dir[1024], err[512];
    shared_path(dir, sizeof(dir), "data/eval/Set5");
    for (int s = 2; s <= 4; s++) {
        CatanetEvalSet *set;
        int ret = catanet_evalset_open(&set, dir, s, err, sizeof(err));
        if (ret < 0) {
            test_check(0, "Set5 x%d: %s", s, err);
            continue;
        }
        CatanetEvalResult r = { 0 };
        ret = catanet_eval_set(set, catanet_eval_bicubic, &s, &r, err, sizeof(err));
        /* published SSIMs were measured on 8-bit Y, which moves the fourth decimal */
        test_check(ret == 0 && set->lr_given && r.n == 5 && fabs(r.psnr - known[s - 2]) < 0.03 &&
                       fabs(r.ssim - known_ssim[s - 2]) < 0.002,
                   "Set5 x%d bicubic baseline %.4f dB / SSIM %.4f (published %.2f / %.4f), LR from LR_bicubic", s,
                   r.psnr, r.ssim, known[s - 2], known_ssim[s - 2]);
        catanet_evalset_close(set);
    }
    /* Set14 uses GTmod12 and LRbicx; its baseline is printed (30.32 at x2: bridge is greyscale and is measured
     * as RGB like every other image, which the 30.24 often quoted does not do) */
    shared_path(dir, sizeof(dir), "data/eval/Set14");
    int s = 2;
    CatanetEvalSet *set;
    if (catanet_evalset_open(&set, dir, s, err, sizeof(err)) == 0) {
        CatanetEvalResult r = { 0 };
        int ret = catanet_eval_set(set, catanet_eval_bicubic, &s, &r, err, sizeof(err));
        test_check(ret == 0 && set->lr_given && r.n == 14 && fabs(r.psnr - 30.32) < 0.1,
                   "Set14 x2 bicubic baseline %.4f dB / SSIM %.4f", r.psnr, r.ssim);
        catanet_evalset_close(set);
    } else
        test_check(0, "Set14: %s", err);
    /* a plain folder of HR images: LR made here */
    shared_path(dir, sizeof(dir), "data/eval/Set5/HR");
    if (catanet_evalset_open(&set, dir, 3, err, sizeof(err)) == 0) {
        int ok = !set->lr_given && set->n == 5 && !strcmp(set->name, "HR") && set->images[0].w % 3 == 0;
        test_check(ok, "plain HR folder: %d images, LR made with the bicubic", set->n);
        catanet_evalset_close(set);
    } else
        test_check(0, "Set5/HR: %s", err);
    test_check(catanet_evalset_open(&set, "/nonexistent", 2, err, sizeof(err)) == CATANET_ERR_IO && !set,
               "missing set folder: %s", err);
}

/* ---- training batches ---- */

typedef struct Pair {
    CatanetRaster hr, lr;
} Pair;

/* Find the image, crop and augmentation that produce this LR patch, by brute force; check the HR patch. */
static int identify(const Pair *pairs, int np, int s, int p, const float *lr, const float *hr, int *which, int *aug)
{
    int P = s * p;
    for (int i = 0; i < np; i++) {
        const CatanetRaster *L = &pairs[i].lr, *H = &pairs[i].hr;
        for (int a = 0; a < 8; a++)
            for (int top = 0; top + p <= L->h; top++)
                for (int left = 0; left + p <= L->w; left++) {
                    int match = 1;
                    for (int c = 0; c < 3 && match; c++)
                        for (int y = 0; y < p && match; y++)
                            for (int x = 0; x < p && match; x++) {
                                int sy = (a & 4) ? x : y, sx = (a & 4) ? y : x;
                                if (a & 2)
                                    sy = p - 1 - sy;
                                if (a & 1)
                                    sx = p - 1 - sx;
                                float v = L->px[((size_t)c * L->h + top + sy) * L->w + left + sx] / 255.0f;
                                match = v == lr[((size_t)c * p + y) * p + x];
                            }
                    if (!match)
                        continue;
                    for (int c = 0; c < 3; c++)
                        for (int y = 0; y < P; y++)
                            for (int x = 0; x < P; x++) {
                                int sy = (a & 4) ? x : y, sx = (a & 4) ? y : x;
                                if (a & 2)
                                    sy = P - 1 - sy;
                                if (a & 1)
                                    sx = P - 1 - sx;
                                float v = H->px[((size_t)c * H->h + s * top + sy) * H->w + s * left + sx] / 255.0f;
                                if (v != hr[((size_t)c * P + y) * P + x])
                                    return -1;   /* LR found but HR does not correspond */
                            }
                    *which = i;
                    *aug = a;
                    return 0;
                }
    }
    return -2;
}

static void log_to_stdout(void *opaque, int level, const char *msg)
{
    (void)opaque;
    printf("  [data %d] %s\n", level, msg);
}

static void test_batches(void)
{
    char d1[512], d2[512], path[1024], err[512];
    snprintf(d1, sizeof(d1), "%s/train1", tmpdir);
    snprintf(d2, sizeof(d2), "%s/train2", tmpdir);
    mkdir(d1, 0777);
    mkdir(d2, 0777);
    Rng g = { 99 };
    const int s = 2, p = 6, B = 5;
    /* three random images (one of them a BMP with an odd size: modcrop) and one too small to use */
    const int sizes[4][2] = { { 31, 22 }, { 24, 40 }, { 27, 27 }, { 10, 30 } };
    Pair pairs[3];
    for (int i = 0; i < 4; i++) {
        CatanetRaster r;
        catanet_raster_alloc(&r, sizes[i][0], sizes[i][1], 255);
        fill_random(&r, &g);
        if (i == 1) {
            uint8_t *bmp;
            size_t n = make_bmp(&r, 24, 0, &bmp);
            snprintf(path, sizeof(path), "%s/b.bmp", d2);
            write_file(path, bmp, n);
            free(bmp);
        } else {
            snprintf(path, sizeof(path), "%s/%c.png", i == 3 ? d2 : d1, 'a' + i);
            catanet_raster_save_png(path, &r, err, sizeof(err));
        }
        if (i < 3) {
            /* what the pipeline should hold: modcropped HR, its bicubic LR */
            int w = r.w - r.w % s, h = r.h - r.h % s;
            catanet_raster_alloc(&pairs[i].hr, w, h, 255);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < h; y++)
                    memcpy(pairs[i].hr.px + ((size_t)c * h + y) * w, r.px + ((size_t)c * r.h + y) * r.w, 2 * w);
            catanet_imresize(&pairs[i].hr, 1.0 / s, &pairs[i].lr);
        }
        catanet_raster_free(&r);
    }
    snprintf(path, sizeof(path), "%s/notes.txt", d1);
    write_file(path, "not an image", 12);
    /* image order: d1 sorted (a.png, c.png), then d2 (b.bmp; d.png is too small at p = 6: LR 5 x 15) */
    Pair ordered[3] = { pairs[0], pairs[2], pairs[1] };

    const char *dirs[2] = { d1, d2 };
    CatanetDataConfig cfg;
    catanet_data_config_default(&cfg);
    cfg.scale = s;
    cfg.lr_patch = p;
    cfg.batch = B;
    cfg.seed = 1234;
    cfg.prefetch_threads = 0;
    cfg.log = log_to_stdout;
    CatanetData *d;
    int ret = catanet_data_open(&d, dirs, 2, &cfg, err, sizeof(err));
    test_check(ret == 0 && catanet_data_num_images(d) == 3, "open: %d images, one skipped as too small (%s)",
               ret == 0 ? catanet_data_num_images(d) : -1, ret == 0 ? "ok" : err);
    if (ret < 0)
        return;
    const int NB = 12;
    size_t nl = (size_t)B * 3 * p * p, nh = (size_t)B * 3 * (s * p) * (s * p);
    float *lr = malloc(sizeof(float) * nl * NB), *hr = malloc(sizeof(float) * nh * NB);
    for (int k = 0; k < NB; k++)
        catanet_data_next(d, lr + k * nl, hr + k * nh);
    /* every sample: LR is a crop of an LR image, HR the matching scale-aligned crop, same augmentation;
     * each epoch (3 samples) uses every image once; augmentations all occur */
    int bad = 0, epochs_ok = 1, augs[8] = { 0 };
    int seen[3] = { 0 };
    for (int i = 0; i < NB * B; i++) {
        int which = -1, aug = -1;
        int r = identify(ordered, 3, s, p, lr + (size_t)i * 3 * p * p, hr + (size_t)i * 3 * s * p * s * p, &which, &aug);
        if (r < 0) {
            if (bad++ < 3)
                printf("  sample %d: %s\n", i, r == -1 ? "HR does not match its LR crop" : "LR crop not found");
            continue;
        }
        augs[aug]++;
        seen[which]++;
        if (i % 3 == 2) {
            epochs_ok &= seen[0] == 1 && seen[1] == 1 && seen[2] == 1;
            seen[0] = seen[1] = seen[2] = 0;
        }
    }
    int all_augs = 1;
    for (int a = 0; a < 8; a++)
        all_augs &= augs[a] > 0;
    test_check(bad == 0, "all %d samples: LR is a crop of a bicubic LR image, HR the aligned crop, same flips", NB * B);
    test_check(epochs_ok, "every epoch draws every image once");
    test_check(all_augs, "all 8 flip/transpose combinations occur (%d %d %d %d %d %d %d %d)", augs[0], augs[1],
               augs[2], augs[3], augs[4], augs[5], augs[6], augs[7]);

    /* determinism: the same batches with 1 and 3 prefetch threads, and after a resume at batch 5 */
    char state[CATANET_DATA_STATE_MAX];
    float *lr2 = malloc(sizeof(float) * nl), *hr2 = malloc(sizeof(float) * nh);
    for (int threads = 1; threads <= 3; threads += 2) {
        CatanetData *e;
        cfg.prefetch_threads = threads;
        cfg.log = NULL;
        if (catanet_data_open(&e, dirs, 2, &cfg, err, sizeof(err)) < 0) {
            test_check(0, "open: %s", err);
            continue;
        }
        int same = 1;
        for (int k = 0; k < NB; k++) {
            catanet_data_next(e, lr2, hr2);
            same &= !memcmp(lr2, lr + k * nl, nl * 4) && !memcmp(hr2, hr + k * nh, nh * 4);
            if (k == 4)
                catanet_data_get_state(e, state, sizeof(state));
        }
        test_check(same, "%d prefetch thread(s): the same %d batches as without prefetching", threads, NB);
        /* rewind the running pipeline (batches already prefetched are dropped) */
        same = catanet_data_set_state(e, state) == 0;
        for (int k = 5; k < NB; k++) {
            catanet_data_next(e, lr2, hr2);
            same &= !memcmp(lr2, lr + k * nl, nl * 4) && !memcmp(hr2, hr + k * nh, nh * 4);
        }
        test_check(same, "%d prefetch thread(s): set_state rewinds to batch 5 exactly", threads);
        catanet_data_close(e);
    }
    /* a fresh pipeline resumed from the state string */
    {
        CatanetData *e;
        cfg.prefetch_threads = 1;
        int same = catanet_data_open(&e, dirs, 2, &cfg, err, sizeof(err)) == 0 && catanet_data_set_state(e, state) == 0;
        for (int k = 5; same && k < NB; k++) {
            catanet_data_next(e, lr2, hr2);
            same &= !memcmp(lr2, lr + k * nl, nl * 4) && !memcmp(hr2, hr + k * nh, nh * 4);
        }
        test_check(same, "resume in a new pipeline from '%s' continues exactly", state);
        /* states of another seed or image set, and garbage, are refused */
        char other[CATANET_DATA_STATE_MAX];
        snprintf(other, sizeof(other), "%s", state);
        char *sd = strstr(other, "seed=1234");
        if (sd)
            sd[5] = '9';
        ret = catanet_data_set_state(e, other);
        test_check(sd && ret == CATANET_ERR_STATE && strstr(catanet_data_last_error(e), "seed"), "other seed refused: %s",
                   catanet_data_last_error(e));
        snprintf(other, sizeof(other), "%s", state);
        char *hs = strstr(other, "hash=");
        if (hs)
            hs[5] = hs[5] == '0' ? '1' : '0';
        ret = catanet_data_set_state(e, other);
        test_check(hs && ret == CATANET_ERR_STATE, "other image set refused: %s", catanet_data_last_error(e));
        /* ...unless asked for (resume with --new-data): the run goes on at the same sample number */
        {
            char now[CATANET_DATA_STATE_MAX] = "";
            ret = catanet_data_set_state_ex(e, other, 1);
            catanet_data_get_state(e, now, sizeof(now));
            const char *a = strstr(now, "sample="), *b = strstr(state, "sample=");
            test_check(ret == 0 && a && b && strcspn(a, " ") == strcspn(b, " ") && !strncmp(a, b, strcspn(b, " ")),
                       "another image set accepted when allowed, at the same sample: '%s'", now);
        }
        test_check(catanet_data_set_state(e, "catanet-data 1 seed=1") == CATANET_ERR_FORMAT &&
                       catanet_data_set_state(e, "hello") == CATANET_ERR_FORMAT,
                   "malformed states refused");
        catanet_data_close(e);
    }
    /* LR made the MATLAB-uint8 way: same HR patches, different LR, and a position that does not carry over */
    {
        CatanetData *e;
        cfg.prefetch_threads = 0;
        cfg.lr_resize_flags = CATANET_RESIZE_ROUND_BETWEEN | CATANET_RESIZE_TIES_AWAY;
        int ok = catanet_data_open(&e, dirs, 2, &cfg, err, sizeof(err)) == 0;
        if (ok) {
            catanet_data_next(e, lr2, hr2);
            ok = memcmp(lr2, lr, nl * 4) != 0 && !memcmp(hr2, hr, nh * 4) &&
                 catanet_data_set_state(e, state) == CATANET_ERR_STATE;
            catanet_data_close(e);
        }
        test_check(ok, "lr_resize_flags: the same HR patches, other LR, positions not interchangeable");
        cfg.lr_resize_flags = 0;
    }
    /* a different seed gives different batches */
    {
        CatanetData *e;
        cfg.seed = 1235;
        cfg.prefetch_threads = 0;
        int differ = catanet_data_open(&e, dirs, 2, &cfg, err, sizeof(err)) == 0;
        if (differ) {
            catanet_data_next(e, lr2, hr2);
            differ = memcmp(lr2, lr, nl * 4) != 0;
            catanet_data_close(e);
        }
        test_check(differ, "another seed, other batches");
        cfg.seed = 1234;
    }
    catanet_data_close(d);

    /* errors: a patch larger than every image, a missing folder, a corrupt file */
    cfg.lr_patch = 64;
    ret = catanet_data_open(&d, dirs, 2, &cfg, err, sizeof(err));
    test_check(ret == CATANET_ERR_INVALID_ARG && !d, "no usable image: %s", err);
    cfg.lr_patch = p;
    const char *missing[1] = { "/nonexistent/folder" };
    ret = catanet_data_open(&d, missing, 1, &cfg, err, sizeof(err));
    test_check(ret == CATANET_ERR_IO && !d, "missing folder: %s", err);
    snprintf(path, sizeof(path), "%s/zz.png", d1);
    write_file(path, "\x89PNG\r\n\x1a\n broken", 16);
    ret = catanet_data_open(&d, dirs, 2, &cfg, err, sizeof(err));
    test_check(ret == CATANET_ERR_FORMAT && !d && strstr(err, "zz.png"), "corrupt file named: %s", err);
    remove(path);

    free(lr);
    free(hr);
    free(lr2);
    free(hr2);
    for (int i = 0; i < 3; i++) {
        catanet_raster_free(&pairs[i].hr);
        catanet_raster_free(&pairs[i].lr);
    }
}

static void test_photos(void)
{
    /* a JPEG photograph is downscaled (auto: 2 for a short side <= 2000) and cached as PNG */
    char dir[512], cache[512], src[1024], dst[1024], err[512];
    snprintf(dir, sizeof(dir), "%s/photos", tmpdir);
    snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
    mkdir(dir, 0777);
    shared_path(src, sizeof(src), "data/train/flutter-landscapes/landscape_1.jpg");
    snprintf(dst, sizeof(dst), "%s/p.jpg", dir);
    FILE *f = fopen(src, "rb");
    size_t n = 0;
    uint8_t *buf = malloc(8 << 20);
    if (f) {
        n = fread(buf, 1, 8 << 20, f);
        fclose(f);
    }
    write_file(dst, buf, n);
    free(buf);
    CatanetRaster full, down;
    if (catanet_raster_load(dst, &full, err, sizeof(err)) < 0) {
        test_check(0, "photo: %s", err);
        return;
    }
    int w2 = full.w - full.w % 2, h2 = full.h - full.h % 2;
    CatanetRaster cropped;
    catanet_raster_alloc(&cropped, w2, h2, 255);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h2; y++)
            memcpy(cropped.px + ((size_t)c * h2 + y) * w2, full.px + ((size_t)c * full.h + y) * full.w, 2 * w2);
    catanet_imresize(&cropped, 0.5, &down);
    const char *dirs[1] = { dir };
    CatanetDataConfig cfg;
    catanet_data_config_default(&cfg);
    cfg.scale = 2;
    cfg.lr_patch = 48;
    cfg.batch = 2;
    cfg.prefetch_threads = 0;
    cfg.cache_dir = cache;
    CatanetData *d;
    int ok = catanet_data_open(&d, dirs, 1, &cfg, err, sizeof(err)) == 0;
    int64_t px = ok ? catanet_data_num_pixels(d) : 0;
    int64_t expect = (int64_t)(down.w - down.w % 2) * (down.h - down.h % 2);
    test_check(ok && px == expect, "photo %dx%d downscaled by 2 to %dx%d (%lld HR pixels kept) %s", full.w, full.h,
               down.w, down.h, (long long)px, ok ? "" : err);
    float lr1[2 * 3 * 48 * 48], hr1[2 * 3 * 96 * 96], lr2[2 * 3 * 48 * 48], hr2[2 * 3 * 96 * 96];
    if (ok) {
        catanet_data_next(d, lr1, hr1);
        catanet_data_close(d);
    }
    /* the cache file holds exactly the downscaled photo, and a second open from it gives the same batches */
    char cfile[1024];
    struct stat st;
    stat(dst, &st);
    snprintf(cfile, sizeof(cfile), "%s/p.jpg-%lld-%lld-d0.png", cache, (long long)st.st_size, (long long)st.st_mtime);
    CatanetRaster c;
    int cached = catanet_raster_load(cfile, &c, err, sizeof(err)) == 0 && same_raster(&c, &down);
    test_check(cached, "the cache holds the downscaled photo (%s)", cfile);
    catanet_raster_free(&c);
    ok = ok && catanet_data_open(&d, dirs, 1, &cfg, err, sizeof(err)) == 0;
    if (ok) {
        catanet_data_next(d, lr2, hr2);
        catanet_data_close(d);
    }
    test_check(ok && !memcmp(lr1, lr2, sizeof(lr1)) && !memcmp(hr1, hr2, sizeof(hr1)), "reopened from the cache: same batches");
    catanet_raster_free(&full);
    catanet_raster_free(&cropped);
    catanet_raster_free(&down);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/catanet-test-data-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot create a temporary folder\n");
        return 1;
    }
    test_bicubic_oracle();
    test_bicubic_set5();
    test_bicubic_properties();
    test_image_files();
    test_metrics();
    test_baselines();
    test_batches();
    test_photos();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmpdir);
    return test_finish();
}
