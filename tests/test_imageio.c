/*
 * test_imageio.c: the image codec (training/imgload.c) and the tools' float layer on it (tools/imageio.c)
 * beyond 8-bit RGB: every PNG layout with alpha read value by value, writing PNG (8/16-bit, RGB and RGBA)
 * and JPEG (quality, 16-bit samples, alpha), and the float output's rounding.
 *   - PNG fixtures written here with libpng directly: grey+alpha 8 and 16-bit, RGBA 16-bit, a 4-bit palette
 *     with tRNS, an 8-bit grey colour key (tRNS), RGB 8-bit: each plane equal to what was written (grey
 *     expanded to three equal planes; palette entries mapped; tRNS to opacity), alpha = 0 for RGB; without
 *     keep_alpha the same files give three planes (what training reads)
 *   - catanet_raster_write PNG: RGBA 16-bit and 8-bit, RGB 16-bit read back exactly
 *   - JPEG: an 8-bit smooth image at quality 95 reads back within JPEG's error (mean < 1.5, max < 24 of
 *     255); quality 20 makes a file clearly smaller than 85; from quality 90 up the chroma is not
 *     subsampled (the luma's sampling factors in the SOF are 1x1, 2x2 below); a 16-bit raster is written as its 8-bit rounding; an
 *     RGBA raster's colour is written, its alpha not; a JPEG cut short is refused (libjpeg would fill the
 *     rest with grey); quality 0 and 101 and a BMP kind are refused
 *   - image_write_as PNG rounds as the engine's RGB conversion does (catanet_image_from_rgb), ties
 *     included, so a tool's PNG equals the filter's rgb24 output; 16-bit floats k/65535 round trip exactly
 */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "imageio.h"
#include "imgload.h"
#include "testutil.h"

enum { W = 11, H = 7 };
static char tmpdir[64];

static const char *tmp(const char *name)
{
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", tmpdir, name);
    return p[k];
}

/* a sample of channel c at (x, y), 0..maxv, different across channels and positions */
static int sample(int x, int y, int c, int maxv)
{
    return (int)(((long)x * 977 + (long)y * 3203 + (long)c * 7919 + (long)x * y * 131) % ((long)maxv + 1));
}

/* writes a PNG of colour type `color` at `depth` with libpng; samples from sample() (palette: indexes) */
static void write_fixture(const char *path, int color, int depth, int trns)
{
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || setjmp(png_jmpbuf(png))) {
        printf("FAIL: cannot write the fixture %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, depth, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        png_byte alpha[16];
        for (int i = 0; i < 16; i++) {
            pal[i] = (png_color){ (png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 7) };
            alpha[i] = (png_byte)(i * 17);
        }
        png_set_PLTE(png, info, pal, 16);
        if (trns)
            png_set_tRNS(png, info, alpha, 16, NULL);
    } else if (trns) {
        png_color_16 key = { .gray = (png_uint_16)sample(0, 0, 0, 255) };
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_write_info(png, info);
    int ch = png_get_channels(png, info), maxv = color == PNG_COLOR_TYPE_PALETTE ? 15 : (1 << depth) - 1;
    uint8_t row[W * 4 * 2];
    for (int y = 0; y < H; y++) {
        memset(row, 0, sizeof(row));
        for (int x = 0; x < W; x++)
            for (int c = 0; c < ch; c++) {
                int v = sample(x, y, c, maxv);
                if (depth == 16) {
                    row[2 * (x * ch + c)] = (uint8_t)(v >> 8);
                    row[2 * (x * ch + c) + 1] = (uint8_t)v;
                } else if (depth == 4)
                    row[x / 2] |= (uint8_t)(v << (x % 2 ? 0 : 4));
                else
                    row[x * ch + c] = (uint8_t)v;
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* the value the loader must give for plane p (0..2 colour, 3 alpha) at (x, y) */
static int expected(int color, int depth, int trns, int x, int y, int p)
{
    int maxv = (1 << depth) - 1;
    switch (color) {
    case PNG_COLOR_TYPE_GRAY:   /* grey with a colour key: opaque but where the key matches */
        return p < 3 ? sample(x, y, 0, maxv) : sample(x, y, 0, maxv) == sample(0, 0, 0, 255) ? 0 : 255;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return sample(x, y, p < 3 ? 0 : 1, maxv);
    case PNG_COLOR_TYPE_PALETTE: {
        int i = sample(x, y, 0, 15);
        return p == 0 ? i * 16 : p == 1 ? 255 - i * 16 : p == 2 ? i * 7 : i * 17;
    }
    default: return sample(x, y, p, maxv);   /* RGB, RGBA */
    }
}

static void test_png_layouts(void)
{
    static const struct {
        const char *name;
        int color, depth, trns, alpha;
    } cases[] = {
        { "grey+alpha 8-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 1 },
        { "grey+alpha 16-bit", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 1 },
        { "RGBA 16-bit", PNG_COLOR_TYPE_RGBA, 16, 0, 1 },
        { "RGBA 8-bit", PNG_COLOR_TYPE_RGBA, 8, 0, 1 },
        { "4-bit palette with tRNS", PNG_COLOR_TYPE_PALETTE, 4, 1, 1 },
        { "grey 8-bit with a colour key (tRNS)", PNG_COLOR_TYPE_GRAY, 8, 1, 1 },
        { "RGB 8-bit", PNG_COLOR_TYPE_RGB, 8, 0, 0 },
        { "4-bit palette, no tRNS", PNG_COLOR_TYPE_PALETTE, 4, 0, 0 },
    };
    char err[512];
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *path = tmp("layout.png");
        write_fixture(path, cases[k].color, cases[k].depth, cases[k].trns);
        CatanetRaster r;
        int ret = catanet_raster_load_alpha(path, &r, 1, err, sizeof(err));
        int bad = 0, want_max = cases[k].depth == 16 ? 65535 : 255, np = 3 + cases[k].alpha;
        for (int p = 0; ret == 0 && r.alpha == cases[k].alpha && p < np; p++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    bad += r.px[(size_t)p * W * H + (size_t)y * W + x] !=
                           expected(cases[k].color, cases[k].depth, cases[k].trns, x, y, p);
        test_check(ret == 0 && r.w == W && r.h == H && r.maxval == want_max && r.alpha == cases[k].alpha && !bad,
                   "%s read with alpha: %dx%d, maxval %d, alpha %d (want %d), %d samples wrong (%s)", cases[k].name,
                   r.w, r.h, r.maxval, r.alpha, cases[k].alpha, bad, ret ? err : "ok");
        catanet_raster_free(&r);
        /* without keep_alpha: three planes, the same colour (what training reads) */
        ret = catanet_raster_load(path, &r, err, sizeof(err));
        bad = 0;
        for (int p = 0; ret == 0 && p < 3; p++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    bad += r.px[(size_t)p * W * H + (size_t)y * W + x] !=
                           expected(cases[k].color, cases[k].depth, cases[k].trns, x, y, p);
        test_check(ret == 0 && r.alpha == 0 && !bad, "%s read without alpha: alpha %d, %d colour samples wrong",
                   cases[k].name, r.alpha, bad);
        catanet_raster_free(&r);
    }
}

static void fill(CatanetRaster *r, int smooth)
{
    size_t plane = (size_t)r->w * r->h;
    for (int p = 0; p < 3 + r->alpha; p++)
        for (int y = 0; y < r->h; y++)
            for (int x = 0; x < r->w; x++)
                r->px[p * plane + (size_t)y * r->w + x] =
                    (uint16_t)(smooth ? (long)r->maxval * (x + y + 8 * p) / (r->w + r->h + 24)
                                      : sample(x, y, p, r->maxval));
}

static int same(const CatanetRaster *a, const CatanetRaster *b)
{
    return a->w == b->w && a->h == b->h && a->maxval == b->maxval && a->alpha == b->alpha &&
           !memcmp(a->px, b->px, sizeof(uint16_t) * (3 + a->alpha) * (size_t)a->w * a->h);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* the first component's sampling factors (h << 4 | v) from a baseline JPEG's SOF0, -1 when not found */
static int luma_sampling(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t b[4096];
    size_t n = f ? fread(b, 1, sizeof(b), f) : 0;
    if (f)
        fclose(f);
    for (size_t i = 2; i + 4 < n;) {
        if (b[i] != 0xFF)
            return -1;
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (b[i + 1] == 0xC0 && i + 11 < n)
            return b[i + 11];   /* FF C0, length, precision, height, width, count, then id and factors */
        i += 2 + len;
    }
    return -1;
}

static void test_write(void)
{
    char err[512];
    static const struct { int maxval, alpha; } png_cases[] = { { 65535, 1 }, { 255, 1 }, { 65535, 0 } };
    for (int k = 0; k < 3; k++) {
        CatanetRaster a, b;
        catanet_raster_alloc_planes(&a, 23, 9, png_cases[k].maxval, png_cases[k].alpha);
        fill(&a, 0);
        int ret = catanet_raster_write(tmp("w.png"), &a, CATANET_IMG_PNG, 0, err, sizeof(err));
        if (ret == 0)
            ret = catanet_raster_load_alpha(tmp("w.png"), &b, 1, err, sizeof(err));
        test_check(ret == 0 && same(&a, &b), "PNG %d-bit %s written and read back exactly (%s)",
                   png_cases[k].maxval == 255 ? 8 : 16, png_cases[k].alpha ? "RGBA" : "RGB", ret ? err : "ok");
        if (ret == 0)
            catanet_raster_free(&b);
        catanet_raster_free(&a);
    }

    /* JPEG: within its error at quality 95; smaller at 20 */
    CatanetRaster a, b, c;
    catanet_raster_alloc(&a, 64, 48, 255);
    fill(&a, 1);
    int ret = catanet_raster_write(tmp("q95.jpg"), &a, CATANET_IMG_JPEG, 95, err, sizeof(err));
    if (ret == 0)
        ret = catanet_raster_load_alpha(tmp("q95.jpg"), &b, 1, err, sizeof(err));
    double sum = 0, mx = 0;
    size_t n = 3 * (size_t)a.w * a.h;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        double d = fabs((double)a.px[i] - b.px[i]);
        sum += d;
        mx = d > mx ? d : mx;
    }
    test_check(ret == 0 && b.w == a.w && b.h == a.h && b.maxval == 255 && !b.alpha && sum / n < 1.5 && mx < 24,
               "JPEG q95 read back: %dx%d, mean |diff| %.2f, max %.0f of 255 (%s)", b.w, b.h, sum / n, mx,
               ret ? err : "ok");
    /* the quality is used: 20 and 85 share their chroma subsampling (4:2:0); on a textured image (the
     * coefficients outweigh the tables) 20 must be clearly smaller */
    CatanetRaster tex;
    catanet_raster_alloc(&tex, 64, 48, 255);
    fill(&tex, 0);
    ret = catanet_raster_write(tmp("q20.jpg"), &tex, CATANET_IMG_JPEG, 20, err, sizeof(err));
    int r85 = catanet_raster_write(tmp("q85.jpg"), &tex, CATANET_IMG_JPEG, 85, err, sizeof(err));
    catanet_raster_free(&tex);
    long s20 = file_size(tmp("q20.jpg")), s85 = file_size(tmp("q85.jpg"));
    test_check(ret == 0 && r85 == 0 && s20 < s85 * 4 / 5, "JPEG quality 20: %ld bytes, quality 85: %ld bytes", s20,
               s85);
    /* chroma at full resolution from quality 90 up: the luma's sampling factors are 1x1 there, 2x2 below */
    int f95 = luma_sampling(tmp("q95.jpg")), f85 = luma_sampling(tmp("q85.jpg"));
    test_check(f95 == 0x11 && f85 == 0x22, "JPEG luma sampling factors: quality 95 %02x (want 11), 85 %02x (want 22)",
               f95, f85);

    /* 16-bit samples: written as their 8-bit rounding (the same image as the 8-bit one, decoded alike) */
    CatanetRaster w16;
    catanet_raster_alloc(&w16, a.w, a.h, 65535);
    for (size_t i = 0; i < n; i++) {   /* off the exact levels by up to 128, which rounds back */
        int v = a.px[i] * 257;
        w16.px[i] = (uint16_t)(i % 3 == 0 && v <= 65535 - 128 ? v + 128 : i % 3 == 1 && v >= 128 ? v - 128 : v);
    }
    ret = catanet_raster_write(tmp("w16.jpg"), &w16, CATANET_IMG_JPEG, 95, err, sizeof(err));
    if (ret == 0)
        ret = catanet_raster_load(tmp("w16.jpg"), &c, err, sizeof(err));
    test_check(ret == 0 && same(&b, &c), "JPEG from a 16-bit raster equals the one from its 8-bit rounding (%s)",
               ret ? err : "ok");
    if (ret == 0)
        catanet_raster_free(&c);
    catanet_raster_free(&w16);

    /* RGBA: the colour written, the alpha not (JPEG has none) */
    CatanetRaster rgba;
    catanet_raster_alloc_planes(&rgba, a.w, a.h, 255, 1);
    memcpy(rgba.px, a.px, sizeof(uint16_t) * n);
    memset(rgba.px + n, 0, sizeof(uint16_t) * (size_t)a.w * a.h);
    ret = catanet_raster_write(tmp("rgba.jpg"), &rgba, CATANET_IMG_JPEG, 95, err, sizeof(err));
    if (ret == 0)
        ret = catanet_raster_load_alpha(tmp("rgba.jpg"), &c, 1, err, sizeof(err));
    test_check(ret == 0 && same(&b, &c), "JPEG from an RGBA raster: its colour, no alpha (%s)", ret ? err : "ok");
    if (ret == 0)
        catanet_raster_free(&c);
    catanet_raster_free(&rgba);

    /* a JPEG whose data ends before its image: an error, not an image filled with grey */
    FILE *f = fopen(tmp("q95.jpg"), "rb");
    uint8_t buf[4096];
    size_t got = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    f = fopen(tmp("cut.jpg"), "wb");
    if (f) {
        fwrite(buf, 1, got * 3 / 5, f);
        fclose(f);
    }
    ret = catanet_raster_load(tmp("cut.jpg"), &c, err, sizeof(err));
    test_check(ret == CATANET_ERR_FORMAT && !c.px && strstr(err, "Premature end"),
               "a JPEG cut at 60%% of its %zu bytes: refused (%s)", got, ret ? err : "decoded");
    if (ret == 0)
        catanet_raster_free(&c);

    /* refused */
    ret = catanet_raster_write(tmp("q0.jpg"), &a, CATANET_IMG_JPEG, 0, err, sizeof(err));
    test_check(ret == CATANET_ERR_INVALID_ARG && access(tmp("q0.jpg"), F_OK) != 0, "JPEG quality 0 refused: %s", err);
    ret = catanet_raster_write(tmp("q101.jpg"), &a, CATANET_IMG_JPEG, 101, err, sizeof(err));
    test_check(ret == CATANET_ERR_INVALID_ARG, "JPEG quality 101 refused: %s", err);
    ret = catanet_raster_write(tmp("x.bmp"), &a, CATANET_IMG_BMP, 0, err, sizeof(err));
    test_check(ret == CATANET_ERR_UNSUPPORTED && access(tmp("x.bmp"), F_OK) != 0, "BMP writing refused: %s", err);
    if (b.px)
        catanet_raster_free(&b);
    catanet_raster_free(&a);
}

static void test_float_rounding(void)
{
    /* values on and around the rounding ties of 8 bits, out of range, and every 8-bit level */
    enum { N = 300 };
    float rgb[3 * N];
    for (int i = 0; i < N; i++) {
        rgb[i] = (float)(i % 256) / 255.0f;
        rgb[N + i] = ((float)(i % 255) + 0.5f) / 255.0f;   /* ties: engine rounds half to even */
        rgb[2 * N + i] = -0.1f + 1.2f * (float)i / N;
    }
    uint8_t ref[3 * N];
    CatanetImage im = { .format = CATANET_PIX_RGB24, .bits = 8, .width = N, .height = 1, .data = { ref },
                        .linesize = { 3 * N } };
    int r0 = catanet_image_from_rgb(rgb, &im);
    char err[512];
    float *back = NULL;
    int w, h, bits, alpha;
    int ret = image_write_as(tmp("r.png"), IMAGE_PNG, rgb, N, 1, 0, 8, 0, err, sizeof(err));
    if (ret == 0)
        ret = image_read_alpha(tmp("r.png"), &back, &w, &h, &bits, &alpha, err, sizeof(err));
    int diff = 0;
    for (int i = 0; ret == 0 && r0 == 0 && i < N; i++)
        for (int c = 0; c < 3; c++)
            diff += lrintf(back[c * N + i] * 255.0f) != ref[3 * i + c];
    test_check(r0 == 0 && ret == 0 && bits == 8 && !alpha && !diff,
               "8-bit PNG from floats equals the engine's RGB24 conversion, ties included (%d of %d samples differ)",
               diff, 3 * N);
    free(back);
    back = NULL;
    for (int i = 0; i < 3 * N; i++)
        rgb[i] = (float)((i * 2731 + 17) % 65536) / 65535.0f;
    ret = image_write_as(tmp("r16.png"), IMAGE_PNG, rgb, N, 1, 0, 16, 0, err, sizeof(err));
    if (ret == 0)
        ret = image_read_alpha(tmp("r16.png"), &back, &w, &h, &bits, &alpha, err, sizeof(err));
    diff = 0;
    for (int i = 0; ret == 0 && i < 3 * N; i++)
        diff += back[i] != rgb[i];
    test_check(ret == 0 && bits == 16 && !diff, "16-bit PNG: floats k/65535 round trip exactly (%d differ, %s)", diff,
               ret ? err : "ok");
    free(back);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/catanet-test-imageio-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("FAIL: cannot create a temporary folder\n");
        return 1;
    }
    test_png_layouts();
    test_write();
    test_float_rounding();
    static const char *const names[] = { "layout.png", "w.png", "q95.jpg", "q20.jpg", "q85.jpg", "cut.jpg", "w16.jpg", "rgba.jpg",
                                         "r.png", "r16.png" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(tmp(names[i]));
    if (rmdir(tmpdir) != 0)
        printf("note: could not remove %s\n", tmpdir);
    return test_finish();
}
