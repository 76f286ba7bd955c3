/*
 * test_image.c: the library's image conversions (engine/image.c), which the FFmpeg filter
 * relies on for every frame.
 *
 * The oracle is written here from the definitions (Rec. 601/709/2020: E'Y = Kr R' + Kg G' +
 * Kb B', E'Cb = (B'-E'Y)/(2(1-Kb)), E'Cr = (R'-E'Y)/(2(1-Kr)); limited range Y = 16+219 E'Y,
 * C = 128+224 E'C, scaled by 2^(bits-8); full range Y = (2^bits-1) E'Y, C = 2^(bits-1) +
 * (2^bits-1) E'C), in double precision, independently of image.c. Checks:
 *   - published code values (BT.601 / BT.709 limited red, black and white)
 *   - to_rgb of 4:4:4 8/10-bit against the oracle for every matrix and range (< 1e-5)
 *   - from_rgb of 4:4:4 against the oracle's rounding (at most 1 code off, and exact for most)
 *   - round trips RGB -> each format -> RGB within the quantisation bound of the format (the
 *     bound is derived from the matrix; 10-bit must be 4x tighter than 8-bit)
 *   - chroma siting: upsampling phase (left, centre, top-left) on a chroma ramp, and the
 *     decimation phase of from_rgb on a luma-independent chroma ramp
 *   - 8-bit RGB/BGR/planar/grey exactness, channel order, clamping of out-of-range input
 *   - P010 keeps its low 6 bits zero; 10-bit values stay <= 1023
 *   - odd and tiny sizes (1x1, 2x2, 3x2, 17x13) in every format; strided rows whose padding
 *     must stay untouched; negative linesizes (bottom-up images)
 *   - bad arguments return errors
 *   - a frame whose output overflows (finite weights scaled up) is CATANET_ERR_NONFINITE from every
 *     host entry point: float output, 8-bit and 16-bit images, untiled and tiled; a sane model is not
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "catanet.h"
#include "model.h"
#include "testutil.h"

#define PAD_BYTES 24          /* extra bytes per row: must never be written */
#define SENTINEL 0xA5

static const char *matrix_name[] = { "bt601", "bt709", "bt2020" };
static const char *range_name[] = { "limited", "full" };
static const char *loc_name[] = { "left", "center", "topleft" };

static void coefs(int m, double *kr, double *kb)
{
    if (m == CATANET_MATRIX_BT709) { *kr = 0.2126; *kb = 0.0722; }
    else if (m == CATANET_MATRIX_BT2020) { *kr = 0.2627; *kb = 0.0593; }
    else { *kr = 0.299; *kb = 0.114; }
}

/* oracle: R'G'B' in [0,1] -> code values (unrounded) */
static void oracle_encode(int m, int full, int bits, const double rgb[3], double yuv[3])
{
    double kr, kb;
    coefs(m, &kr, &kb);
    double kg = 1 - kr - kb;
    double ey = kr * rgb[0] + kg * rgb[1] + kb * rgb[2];
    double ecb = (rgb[2] - ey) / (2 * (1 - kb)), ecr = (rgb[0] - ey) / (2 * (1 - kr));
    double mul = (double)(1 << (bits - 8)), maxv = (double)((1 << bits) - 1);
    if (full) {
        yuv[0] = maxv * ey;
        yuv[1] = (1 << (bits - 1)) + maxv * ecb;
        yuv[2] = (1 << (bits - 1)) + maxv * ecr;
    } else {
        yuv[0] = mul * (16 + 219 * ey);
        yuv[1] = mul * (128 + 224 * ecb);
        yuv[2] = mul * (128 + 224 * ecr);
    }
}

/* oracle: code values -> R'G'B' (not clamped) */
static void oracle_decode(int m, int full, int bits, const double yuv[3], double rgb[3])
{
    double kr, kb;
    coefs(m, &kr, &kb);
    double kg = 1 - kr - kb;
    double mul = (double)(1 << (bits - 8)), maxv = (double)((1 << bits) - 1);
    double ey, ecb, ecr;
    if (full) {
        ey = yuv[0] / maxv;
        ecb = (yuv[1] - (1 << (bits - 1))) / maxv;
        ecr = (yuv[2] - (1 << (bits - 1))) / maxv;
    } else {
        ey = (yuv[0] / mul - 16) / 219;
        ecb = (yuv[1] / mul - 128) / 224;
        ecr = (yuv[2] / mul - 128) / 224;
    }
    rgb[0] = ey + 2 * (1 - kr) * ecr;
    rgb[2] = ey + 2 * (1 - kb) * ecb;
    rgb[1] = (ey - kr * rgb[0] - kb * rgb[2]) / kg;
}

/* ---- a test image with padded rows (and optionally stored bottom-up) ---- */

typedef struct TImg {
    CatanetImage im;
    uint8_t *buf[3];
    size_t size[3];
    ptrdiff_t row[3];             /* bytes of payload per row */
    int rows[3];
    int planes;
} TImg;

static int fmt_bytes(CatanetPixelFormat f, int bits)
{
    if (f == CATANET_PIX_FLOAT_RGBP)
        return 4;
    return bits > 8 ? 2 : 1;
}

static void timg_alloc(TImg *t, CatanetPixelFormat f, int bits, int w, int h, int negative)
{
    memset(t, 0, sizeof(*t));
    CatanetImage *im = &t->im;
    im->format = f;
    im->bits = bits;
    im->width = w;
    im->height = h;
    int b = fmt_bytes(f, bits), cw = (w + 1) / 2, ch = (h + 1) / 2;
    switch (f) {
    case CATANET_PIX_RGB24: case CATANET_PIX_BGR24: case CATANET_PIX_RGB48:
        t->planes = 1; t->row[0] = (ptrdiff_t)3 * w * b; t->rows[0] = h; break;
    case CATANET_PIX_GRAY:
        t->planes = 1; t->row[0] = (ptrdiff_t)w * b; t->rows[0] = h; break;
    case CATANET_PIX_RGBP: case CATANET_PIX_YUV444P: case CATANET_PIX_FLOAT_RGBP:
        t->planes = 3;
        for (int p = 0; p < 3; p++) { t->row[p] = (ptrdiff_t)w * b; t->rows[p] = h; }
        break;
    case CATANET_PIX_YUV420P:
        t->planes = 3; t->row[0] = (ptrdiff_t)w * b; t->rows[0] = h;
        for (int p = 1; p < 3; p++) { t->row[p] = (ptrdiff_t)cw * b; t->rows[p] = ch; }
        break;
    case CATANET_PIX_YUV422P:
        t->planes = 3; t->row[0] = (ptrdiff_t)w * b; t->rows[0] = h;
        for (int p = 1; p < 3; p++) { t->row[p] = (ptrdiff_t)cw * b; t->rows[p] = h; }
        break;
    case CATANET_PIX_NV12: case CATANET_PIX_P010:
        t->planes = 2; t->row[0] = (ptrdiff_t)w * b; t->rows[0] = h;
        t->row[1] = (ptrdiff_t)2 * cw * b; t->rows[1] = ch;
        break;
    }
    for (int p = 0; p < t->planes; p++) {
        ptrdiff_t ls = t->row[p] + PAD_BYTES;
        t->size[p] = (size_t)ls * t->rows[p];
        t->buf[p] = malloc(t->size[p]);
        memset(t->buf[p], SENTINEL, t->size[p]);
        if (negative) {  /* first row at the end of the buffer, rows going up */
            im->data[p] = t->buf[p] + (size_t)ls * (t->rows[p] - 1);
            im->linesize[p] = -ls;
        } else {
            im->data[p] = t->buf[p];
            im->linesize[p] = ls;
        }
    }
}

static void timg_free(TImg *t)
{
    for (int p = 0; p < 3; p++)
        free(t->buf[p]);
}

/* row y of plane p, whatever the direction */
static uint8_t *trow(TImg *t, int p, int y)
{
    return (uint8_t *)t->im.data[p] + (ptrdiff_t)y * t->im.linesize[p];
}

static int padding_intact(TImg *t)
{
    for (int p = 0; p < t->planes; p++)
        for (int y = 0; y < t->rows[p]; y++) {
            const uint8_t *r = trow(t, p, y);
            for (int i = 0; i < PAD_BYTES; i++)
                if (r[t->row[p] + i] != SENTINEL)
                    return 0;
        }
    return 1;
}

static unsigned sample(TImg *t, int p, int x, int y)
{
    const uint8_t *r = trow(t, p, y);
    if (fmt_bytes(t->im.format, t->im.bits) == 2)
        return ((const uint16_t *)r)[x];
    return r[x];
}

static void set_sample(TImg *t, int p, int x, int y, unsigned v)
{
    uint8_t *r = trow(t, p, y);
    if (fmt_bytes(t->im.format, t->im.bits) == 2)
        ((uint16_t *)r)[x] = (uint16_t)v;
    else
        r[x] = (uint8_t)v;
}

/* smooth, in-gamut content with some texture */
static void make_rgb(float *rgb, int w, int h, Rng *r)
{
    size_t n = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0.5f + 0.35f * sinf(0.37f * x * (c + 1) + 0.23f * y + c) + 0.1f * (rng_uniform(r) - 0.5f);
                rgb[c * n + (size_t)y * w + x] = v;
            }
}

/* content whose chroma varies slowly (about 60 pixels per period): what survives 2x chroma
 * subsampling almost unchanged when the siting is right */
static void make_smooth_rgb(float *rgb, int w, int h)
{
    size_t n = (size_t)w * h;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                rgb[c * n + (size_t)y * w + x] = 0.5f + 0.3f * sinf(0.1f * x + 0.07f * y + 2.0f * c);
}

/* ---- checks ---- */

static void test_published_values(void)
{
    /* BT.601 limited: red (81, 90, 240), BT.709 limited: red (63, 102, 240); black (16,128,128),
     * white (235,128,128) in both (ITU-R BT.601 / BT.709 tables) */
    static const struct { int m; float rgb[3]; unsigned yuv[3]; } cases[] = {
        { CATANET_MATRIX_BT601, { 1, 0, 0 }, { 81, 90, 240 } },
        { CATANET_MATRIX_BT709, { 1, 0, 0 }, { 63, 102, 240 } },
        { CATANET_MATRIX_BT601, { 0, 0, 0 }, { 16, 128, 128 } },
        { CATANET_MATRIX_BT709, { 1, 1, 1 }, { 235, 128, 128 } },
        { CATANET_MATRIX_BT2020, { 1, 1, 1 }, { 235, 128, 128 } },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TImg t;
        timg_alloc(&t, CATANET_PIX_YUV444P, 8, 1, 1, 0);
        t.im.matrix = cases[i].m;
        t.im.range = CATANET_RANGE_LIMITED;
        float rgb[3] = { cases[i].rgb[0], cases[i].rgb[1], cases[i].rgb[2] };
        int ret = catanet_image_from_rgb(rgb, &t.im);
        unsigned y = sample(&t, 0, 0, 0), u = sample(&t, 1, 0, 0), v = sample(&t, 2, 0, 0);
        test_check(ret == 0 && y == cases[i].yuv[0] && u == cases[i].yuv[1] && v == cases[i].yuv[2],
                   "%s limited (%.0f,%.0f,%.0f) -> (%u,%u,%u), expected (%u,%u,%u)", matrix_name[cases[i].m],
                   rgb[0], rgb[1], rgb[2], y, u, v, cases[i].yuv[0], cases[i].yuv[1], cases[i].yuv[2]);
        float back[3];
        ret = catanet_image_to_rgb(&t.im, back);
        double e = fabs(back[0] - rgb[0]) + fabs(back[1] - rgb[1]) + fabs(back[2] - rgb[2]);
        test_check(ret == 0 && e < 0.02, "%s limited (%u,%u,%u) decodes to (%.4f,%.4f,%.4f)",
                   matrix_name[cases[i].m], y, u, v, back[0], back[1], back[2]);
        timg_free(&t);
    }
}

/* to_rgb and from_rgb of 4:4:4 against the oracle, pixel by pixel */
static void test_444_vs_oracle(int bits)
{
    int w = 23, h = 7, n = w * h;
    Rng r = { 1234 + bits };
    for (int m = 0; m < 3; m++)
        for (int full = 0; full < 2; full++) {
            TImg t;
            timg_alloc(&t, CATANET_PIX_YUV444P, bits, w, h, 0);
            t.im.matrix = m;
            t.im.range = full;
            unsigned maxc = (1u << bits) - 1;
            /* codes spread over the legal range, some outside it */
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int p = 0; p < 3; p++)
                        set_sample(&t, p, x, y, rng_u32(&r) % (maxc + 1));
            float *rgb = malloc(sizeof(float) * 3 * n);
            int ret = catanet_image_to_rgb(&t.im, rgb);
            double worst = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    double yuv[3] = { sample(&t, 0, x, y), sample(&t, 1, x, y), sample(&t, 2, x, y) }, o[3];
                    oracle_decode(m, full, bits, yuv, o);
                    for (int c = 0; c < 3; c++) {
                        double exp = o[c] < 0 ? 0 : o[c] > 1 ? 1 : o[c];  /* documented: [0,1] */
                        double d = fabs(rgb[c * n + y * w + x] - exp);
                        worst = d > worst ? d : worst;
                    }
                }
            test_check(ret == 0 && worst < 1e-5, "to_rgb yuv444p %d-bit %s %s matches the definition (max err %.2g)",
                       bits, matrix_name[m], range_name[full], worst);

            /* from_rgb: the oracle's code, rounded; float evaluation order may flip a tie */
            make_rgb(rgb, w, h, &r);
            ret = catanet_image_from_rgb(rgb, &t.im);
            int off1 = 0, exact = 0, bad = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    double in[3] = { rgb[y * w + x], rgb[n + y * w + x], rgb[2 * n + y * w + x] }, yuv[3];
                    for (int c = 0; c < 3; c++)
                        in[c] = in[c] < 0 ? 0 : in[c] > 1 ? 1 : in[c];
                    oracle_encode(m, full, bits, in, yuv);
                    for (int p = 0; p < 3; p++) {
                        double e = yuv[p] < 0 ? 0 : yuv[p] > maxc ? maxc : yuv[p];
                        long d = labs((long)sample(&t, p, x, y) - lround(e));
                        exact += d == 0;
                        off1 += d == 1;
                        bad += d > 1;
                    }
                }
            test_check(ret == 0 && bad == 0 && off1 * 100 <= 3 * n, "from_rgb yuv444p %d-bit %s %s: %d exact, %d one off "
                       "(ties), %d worse", bits, matrix_name[m], range_name[full], exact, off1, bad);
            free(rgb);
            timg_free(&t);
        }
}

/* largest |error| of R', G', B' from half a code step in Y and in each chroma sample */
static double quant_bound(int m, int full, int bits)
{
    double kr, kb;
    coefs(m, &kr, &kb);
    double kg = 1 - kr - kb;
    double maxv = (double)((1 << bits) - 1), mul = (double)(1 << (bits - 8));
    double dy = 0.5 / (full ? maxv : 219 * mul), dc = 0.5 / (full ? maxv : 224 * mul);
    double er = dy + 2 * (1 - kr) * dc, eb = dy + 2 * (1 - kb) * dc;
    double eg = (dy + kr * er + kb * eb) / kg;  /* G = (Y - Kr R - Kb B) / Kg */
    double e = er > eb ? er : eb;
    return (e > eg ? e : eg) * 1.001 + 1e-6;
}

typedef struct FmtCase {
    CatanetPixelFormat f;
    int bits;
    const char *name;
    int yuv, sub;                  /* sub: chroma is subsampled */
} FmtCase;

static const FmtCase fmts[] = {
    { CATANET_PIX_YUV420P, 8, "yuv420p", 1, 1 },
    { CATANET_PIX_YUV422P, 8, "yuv422p", 1, 1 },
    { CATANET_PIX_YUV444P, 8, "yuv444p", 1, 0 },
    { CATANET_PIX_NV12, 8, "nv12", 1, 1 },
    { CATANET_PIX_YUV420P, 10, "yuv420p10", 1, 1 },
    { CATANET_PIX_YUV444P, 10, "yuv444p10", 1, 0 },
    { CATANET_PIX_P010, 10, "p010", 1, 1 },
    { CATANET_PIX_RGB24, 8, "rgb24", 0, 0 },
    { CATANET_PIX_BGR24, 8, "bgr24", 0, 0 },
    { CATANET_PIX_RGBP, 8, "rgbp", 0, 0 },
    { CATANET_PIX_RGB48, 16, "rgb48", 0, 0 },
    { CATANET_PIX_RGBP, 10, "rgbp10", 0, 0 },
    { CATANET_PIX_FLOAT_RGBP, 32, "float", 0, 0 },
};

/*
 * Round trip RGB -> format -> RGB. 4:4:4 and RGB: within the quantisation bound everywhere.
 * Subsampled: chroma is low-passed, so the check is on flat-chroma content (a constant
 * colour plus a luma-only texture), where decimation and interpolation are exact and only
 * quantisation remains; plus a loose bound on the textured image.
 */
static void test_round_trips(int w, int h, int negative)
{
    int n = w * h;
    float *rgb = malloc(sizeof(float) * 3 * n), *back = malloc(sizeof(float) * 3 * n);
    for (size_t fi = 0; fi < sizeof(fmts) / sizeof(fmts[0]); fi++) {
        const FmtCase *fc = &fmts[fi];
        int nm = fc->yuv ? 3 : 1, nr = fc->yuv ? 2 : 1, nl = fc->sub ? 3 : 1;
        for (int m = 0; m < nm; m++)
            for (int full = 0; full < nr; full++)
                for (int loc = 0; loc < nl; loc++) {
                    TImg t;
                    timg_alloc(&t, fc->f, fc->bits, w, h, negative);
                    t.im.matrix = m;
                    t.im.range = full;
                    t.im.chroma_loc = loc;
                    double bound = fc->f == CATANET_PIX_FLOAT_RGBP ? 0 :
                                   fc->yuv ? quant_bound(m, full, fc->bits) :
                                   0.5 / ((1 << fc->bits) - 1) + 1e-6;
                    /* flat chroma: grey texture on a constant colour offset (R'-Y', B'-Y' constant) */
                    for (int i = 0; i < n; i++) {
                        float base = 0.45f + 0.3f * sinf(0.9f * (i % w) + 0.5f * (i / w));
                        rgb[i] = base + 0.08f;
                        rgb[n + i] = base;
                        rgb[2 * n + i] = base - 0.06f;
                    }
                    int r1 = catanet_image_from_rgb(rgb, &t.im), r2 = catanet_image_to_rgb(&t.im, back);
                    size_t where;
                    double e = max_abs_diff(rgb, back, (size_t)3 * n, &where);
                    int pad = padding_intact(&t);
                    test_check(r1 == 0 && r2 == 0 && e <= bound && pad,
                               "round trip %s %s %s %s %dx%d%s: max err %.3g <= %.3g, padding %s", fc->name,
                               fc->yuv ? matrix_name[m] : "-", fc->yuv ? range_name[full] : "-",
                               fc->sub ? loc_name[loc] : "-", w, h, negative ? " bottom-up" : "", e, bound,
                               pad ? "intact" : "WRITTEN");
                    if (fc->sub && w >= 4 && h >= 4) {
                        /* textured chroma: decimation + interpolation smooth it; the error must
                         * stay in the band of a 2x low-pass, and far below a wrong siting's */
                        make_smooth_rgb(rgb, w, h);
                        catanet_image_from_rgb(rgb, &t.im);
                        catanet_image_to_rgb(&t.im, back);
                        double se = 0;
                        for (int i = 0; i < 3 * n; i++)
                            se += (rgb[i] - back[i]) * (rgb[i] - back[i]);
                        double rmse = sqrt(se / (3.0 * n));
                        test_check(rmse < 0.008, "round trip %s %s %s %s %dx%d smooth colour: rmse %.4f < 0.008", fc->name,
                                   matrix_name[m], range_name[full], loc_name[loc], w, h, rmse);
                    }
                    timg_free(&t);
                }
    }
    free(rgb);
    free(back);
}

/* the 10-bit path must not lose precision to an 8-bit intermediate */
static void test_10bit_precision(void)
{
    int w = 16, h = 8, n = w * h;
    float *rgb = malloc(sizeof(float) * 3 * n), *back = malloc(sizeof(float) * 3 * n);
    static const CatanetPixelFormat f[] = { CATANET_PIX_YUV444P, CATANET_PIX_YUV420P, CATANET_PIX_P010 };
    static const char *names[] = { "yuv444p10", "yuv420p10", "p010" };
    for (int k = 0; k < 3; k++) {
        TImg t;
        timg_alloc(&t, f[k], 10, w, h, 0);
        t.im.matrix = CATANET_MATRIX_BT709;
        t.im.range = CATANET_RANGE_LIMITED;
        /* a fine grey ramp: steps of 0.0015 (1.3 codes of 10-bit limited range), a third of an
         * 8-bit code step (1/219) */
        for (int i = 0; i < n; i++)
            rgb[i] = rgb[n + i] = rgb[2 * n + i] = 0.3f + 0.0015f * i;
        catanet_image_from_rgb(rgb, &t.im);
        catanet_image_to_rgb(&t.im, back);
        size_t where;
        double e = max_abs_diff(rgb, back, (size_t)3 * n, &where);
        double bound8 = quant_bound(CATANET_MATRIX_BT709, 0, 8), bound10 = quant_bound(CATANET_MATRIX_BT709, 0, 10);
        int distinct = 1;  /* every step of the ramp must give a distinct luma code */
        unsigned prev = sample(&t, 0, 0, 0) >> (f[k] == CATANET_PIX_P010 ? 6 : 0);
        int low_bits_zero = 1, in_range = 1;
        for (int i = 1; i < n; i++) {
            unsigned v = sample(&t, 0, i % w, i / w);
            if (f[k] == CATANET_PIX_P010) {
                low_bits_zero &= (v & 63) == 0;
                v >>= 6;
            } else
                in_range &= v <= 1023;
            distinct &= v > prev;
            prev = v;
        }
        test_check(e <= bound10 && e < bound8 / 3 && distinct && low_bits_zero && in_range,
                   "%s keeps 10-bit precision: max err %.2g <= %.2g (8-bit bound %.2g), ramp codes strictly "
                   "increasing: %s, P010 low bits zero: %s, <= 1023: %s", names[k], e, bound10, bound8,
                   distinct ? "yes" : "NO", low_bits_zero ? "yes" : "NO", in_range ? "yes" : "NO");
        timg_free(&t);
    }
    free(rgb);
    free(back);
}

/*
 * Upsampling phase: a 4:2:0 image with constant Y, Cr = 128 and Cb a ramp over the chroma
 * grid (horizontal or vertical). Cb at luma pixel x must be the ramp at the chroma position
 * of x: co-sited: x/2, centred: (x - 0.5)/2 (clamped at the borders).
 */
static void test_siting_upsample(void)
{
    int w = 12, h = 12, n = w * h, cw = 6, ch = 6;
    double kr, kb;
    coefs(CATANET_MATRIX_BT601, &kr, &kb);
    float *rgb = malloc(sizeof(float) * 3 * n);
    for (int loc = 0; loc < 3; loc++)
        for (int vertical = 0; vertical < 2; vertical++) {
            TImg t;
            timg_alloc(&t, CATANET_PIX_YUV420P, 8, w, h, 0);
            t.im.matrix = CATANET_MATRIX_BT601;
            t.im.range = CATANET_RANGE_FULL;
            t.im.chroma_loc = loc;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    set_sample(&t, 0, x, y, 128);
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++) {
                    set_sample(&t, 1, x, y, 100 + 8 * (vertical ? y : x));
                    set_sample(&t, 2, x, y, 128);
                }
            int ret = catanet_image_to_rgb(&t.im, rgb);
            int cosited = vertical ? loc == CATANET_CHROMA_TOPLEFT : loc != CATANET_CHROMA_CENTER;
            double worst = 0;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int i = y * w + x, l = vertical ? y : x;
                    /* Cb' recovered from the output: B' - R' = 2(1-Kb) Cb' when Cr' = 0 */
                    double cb = (rgb[2 * n + i] - rgb[i]) / (2 * (1 - kb)) * 255.0 + 128.0;
                    double pos = cosited ? l / 2.0 : (l - 0.5) / 2.0;
                    pos = pos < 0 ? 0 : pos > cw - 1 ? cw - 1 : pos;
                    double exp = 100 + 8 * pos;
                    double d = fabs(cb - exp);
                    worst = d > worst ? d : worst;
                }
            test_check(ret == 0 && worst < 1e-3, "4:2:0 upsampling, %s siting, %s: Cb at each luma sample is the "
                       "chroma ramp at the sited position (max err %.3g codes)", loc_name[loc],
                       vertical ? "vertical" : "horizontal", worst);
            timg_free(&t);
        }
    free(rgb);
}

/*
 * Decimation phase: RGB whose Cb' is a linear ramp over luma x (Y' and Cr' constant). The
 * decimated Cb of chroma sample i must be the ramp at the sample's position: 2i co-sited,
 * 2i + 0.5 centred (symmetric filters keep a linear ramp exact away from the borders).
 */
static void test_siting_downsample(void)
{
    int w = 16, h = 16, n = w * h, cw = 8, ch = 8;
    double kr, kb;
    coefs(CATANET_MATRIX_BT709, &kr, &kb);
    double kg = 1 - kr - kb;
    float *rgb = malloc(sizeof(float) * 3 * n);
    for (int loc = 0; loc < 3; loc++)
        for (int vertical = 0; vertical < 2; vertical++) {
            TImg t;
            timg_alloc(&t, CATANET_PIX_YUV420P, 10, w, h, 0);
            t.im.matrix = CATANET_MATRIX_BT709;
            t.im.range = CATANET_RANGE_FULL;
            t.im.chroma_loc = loc;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    double ey = 0.5, ecr = 0.0, ecb = -0.1 + 0.012 * (vertical ? y : x);
                    double R = ey + 2 * (1 - kr) * ecr, B = ey + 2 * (1 - kb) * ecb;
                    double G = (ey - kr * R - kb * B) / kg;
                    rgb[y * w + x] = (float)R;
                    rgb[n + y * w + x] = (float)G;
                    rgb[2 * n + y * w + x] = (float)B;
                }
            int ret = catanet_image_from_rgb(rgb, &t.im);
            int cosited = vertical ? loc == CATANET_CHROMA_TOPLEFT : loc != CATANET_CHROMA_CENTER;
            double worst = 0;
            for (int y = 1; y < ch - 1; y++)
                for (int x = 1; x < cw - 1; x++) {
                    int c = vertical ? y : x;
                    double pos = cosited ? 2.0 * c : 2.0 * c + 0.5;
                    double exp = 512 + 1023 * (-0.1 + 0.012 * pos);
                    double d = fabs(sample(&t, 1, x, y) - exp);
                    worst = d > worst ? d : worst;
                }
            test_check(ret == 0 && worst <= 0.51, "4:2:0 decimation, %s siting, %s: Cb of each chroma sample is "
                       "the ramp at its sited position (max err %.3g codes of 10 bits)", loc_name[loc],
                       vertical ? "vertical" : "horizontal", worst);
            timg_free(&t);
        }
    free(rgb);
}

static void test_rgb_formats(void)
{
    /* every 8-bit code survives exactly; channel order; clamping */
    int w = 256, h = 1, n = w;
    float *rgb = malloc(sizeof(float) * 3 * n), *back = malloc(sizeof(float) * 3 * n);
    for (int i = 0; i < n; i++) {
        rgb[i] = i / 255.0f;
        rgb[n + i] = (255 - i) / 255.0f;
        rgb[2 * n + i] = ((i * 7) % 256) / 255.0f;
    }
    static const CatanetPixelFormat f[] = { CATANET_PIX_RGB24, CATANET_PIX_BGR24, CATANET_PIX_RGBP };
    static const char *names[] = { "rgb24", "bgr24", "rgbp" };
    for (int k = 0; k < 3; k++) {
        TImg t;
        timg_alloc(&t, f[k], 8, w, h, 0);
        int ok = catanet_image_from_rgb(rgb, &t.im) == 0;
        for (int i = 0; i < n && ok; i++) {
            unsigned r, g, b;
            if (f[k] == CATANET_PIX_RGBP) {
                r = sample(&t, 0, i, 0); g = sample(&t, 1, i, 0); b = sample(&t, 2, i, 0);
            } else {
                const uint8_t *p = trow(&t, 0, 0) + 3 * i;
                r = f[k] == CATANET_PIX_RGB24 ? p[0] : p[2];
                g = p[1];
                b = f[k] == CATANET_PIX_RGB24 ? p[2] : p[0];
            }
            ok = r == (unsigned)i && g == 255u - i && b == (unsigned)((i * 7) % 256);
        }
        ok &= catanet_image_to_rgb(&t.im, back) == 0 && memcmp(rgb, back, sizeof(float) * 3 * n) == 0;
        test_check(ok && padding_intact(&t), "%s: all 256 codes exact both ways, channel order right", names[k]);
        timg_free(&t);
    }
    /* clamping: out-of-range floats saturate, NaN-free rounding at 0.5 steps */
    TImg t;
    timg_alloc(&t, CATANET_PIX_RGB24, 8, 4, 1, 0);
    float v[12] = { -0.5f, 1.5f, 0.5f, 2.0f / 255, 0, 1, -1e9f, 1e9f, 0.4999f / 255, 254.5001f / 255, 1, 0 };
    float planar[12];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            planar[c * 4 + i] = v[i * 3 + c];
    catanet_image_from_rgb(planar, &t.im);
    const uint8_t *p = trow(&t, 0, 0);
    static const uint8_t exp[12] = { 0, 255, 128, 2, 0, 255, 0, 255, 0, 255, 255, 0 };
    test_check(memcmp(p, exp, 12) == 0, "rgb24 clamps out-of-range values and rounds to nearest "
               "(%u %u %u %u %u %u %u %u %u %u %u %u)", p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9],
               p[10], p[11]);
    timg_free(&t);
    free(rgb);
    free(back);

    /* grey: full range in, R' = G' = B'; out: the luma of the colour */
    timg_alloc(&t, CATANET_PIX_GRAY, 8, 3, 1, 0);
    t.im.matrix = CATANET_MATRIX_BT709;
    set_sample(&t, 0, 0, 0, 0); set_sample(&t, 0, 1, 0, 255); set_sample(&t, 0, 2, 0, 100);
    float g[9];
    int ret = catanet_image_to_rgb(&t.im, g);
    test_check(ret == 0 && g[0] == 0 && g[1] == 1 && fabsf(g[2] - 100 / 255.0f) < 1e-7f && g[3] == g[0] &&
               g[6] == g[0] && g[5] == g[2] && g[8] == g[2], "gray: full range, R'=G'=B'");
    float red[9] = { 1, 1, 0, 0, 1, 0, 0, 1, 1 };  /* planar: pixel 0 red, 1 white, 2 blue */
    catanet_image_from_rgb(red, &t.im);
    test_check(sample(&t, 0, 0, 0) == 54 && sample(&t, 0, 1, 0) == 255 && sample(&t, 0, 2, 0) == 18,
               "gray from colour is BT.709 luma: red -> %u (54), blue -> %u (18)", sample(&t, 0, 0, 0),
               sample(&t, 0, 2, 0));
    timg_free(&t);
}

static void test_yuv_output_clamped(void)
{
    /* codes outside the legal range decode to values clipped to [0,1], as documented */
    TImg t;
    timg_alloc(&t, CATANET_PIX_YUV444P, 8, 2, 1, 0);
    t.im.matrix = CATANET_MATRIX_BT601;
    t.im.range = CATANET_RANGE_LIMITED;
    set_sample(&t, 0, 0, 0, 255); set_sample(&t, 1, 0, 0, 255); set_sample(&t, 2, 0, 0, 255);
    set_sample(&t, 0, 1, 0, 0);   set_sample(&t, 1, 1, 0, 0);   set_sample(&t, 2, 1, 0, 0);
    float rgb[6];
    int ret = catanet_image_to_rgb(&t.im, rgb), ok = ret == 0;
    for (int i = 0; i < 6; i++)
        ok &= rgb[i] >= 0.0f && rgb[i] <= 1.0f;
    test_check(ok, "to_rgb clips super-white/sub-black YUV to [0,1] (%.3f %.3f %.3f / %.3f %.3f %.3f)", rgb[0],
               rgb[2], rgb[4], rgb[1], rgb[3], rgb[5]);
    timg_free(&t);
}

static void test_bad_args(void)
{
    TImg t;
    timg_alloc(&t, CATANET_PIX_YUV420P, 8, 4, 4, 0);
    float rgb[48];
    test_check(catanet_image_to_rgb(NULL, rgb) < 0 && catanet_image_to_rgb(&t.im, NULL) < 0 &&
               catanet_image_from_rgb(NULL, &t.im) < 0 && catanet_image_from_rgb(rgb, NULL) < 0,
               "NULL image or buffer is rejected");
    t.im.width = 0;
    test_check(catanet_image_to_rgb(&t.im, rgb) < 0, "width 0 is rejected");
    t.im.width = 4;
    t.im.bits = 7;
    test_check(catanet_image_to_rgb(&t.im, rgb) < 0, "7-bit samples are rejected");
    t.im.bits = 10;
    t.im.format = CATANET_PIX_NV12;
    test_check(catanet_image_from_rgb(rgb, &t.im) == CATANET_ERR_UNSUPPORTED, "10-bit NV12 is unsupported");
    t.im.format = (CatanetPixelFormat)99;
    test_check(catanet_image_to_rgb(&t.im, rgb) == CATANET_ERR_UNSUPPORTED, "unknown format is unsupported");
    timg_free(&t);
}

/* a model of the reference weights with last_conv's weights scaled until the output overflows
 * (largest weight 3e38, still finite); written to tmp */
static int write_overflow_model(const char *tmp)
{
    char path[1024], err[512];
    CatanetModel *m;
    if (catanet_model_load(&m, ref_path(path, sizeof(path), "weights_x2_trained.safetensors"), err, sizeof(err)) < 0) {
        test_check(0, "nonfinite: load the reference model: %s", err);
        return -1;
    }
    size_t n = (size_t)3 * m->info.dim * 9;
    double k = 3e38 / max_abs(m->last_w, n); /* itself beyond float's range */
    for (size_t i = 0; i < n; i++)
        m->last_w[i] = (float)(m->last_w[i] * k);
    int ret = catanet_model_save(m, tmp, NULL, NULL, 0, err, sizeof(err));
    test_check(ret == 0, "nonfinite: write the overflowing model (%s)", ret ? err : "ok");
    catanet_model_free(m);
    return ret;
}

static int frame_rc(const char *model, int tile, int kind)
{
    enum { W = 120, H = 40 }; /* wider than the 112 tile: two tiles */
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.threads = 2;
    cfg.tile = tile;
    char err[512];
    CatanetEngine *e;
    int ret = catanet_engine_open(&e, model, &cfg, err, sizeof(err));
    if (ret < 0) {
        test_check(0, "nonfinite: open %s: %s", model, err);
        return ret;
    }
    int s = catanet_engine_scale(e);
    float *in = malloc(sizeof(float) * 3 * W * H), *out = malloc(sizeof(float) * 3 * W * H * s * s);
    uint16_t *src = malloc(sizeof(uint16_t) * 3 * W * H), *dst = malloc(sizeof(uint16_t) * 3 * W * H * s * s);
    for (int i = 0; i < 3 * W * H; i++)
        in[i] = 0.2f + 0.6f * (float)((i % W) + (i / W % H)) / (W + H);
    ret = catanet_engine_prepare(e, W, H);
    if (ret >= 0 && kind == 0)
        ret = catanet_engine_process(e, in, out);
    else if (ret >= 0) { /* kind 1: 8-bit RGB24 image, 2: 16-bit RGB48 */
        int b = kind == 1 ? 8 : 16, bpp = kind == 1 ? 3 : 6;
        CatanetImage im = { .format = b == 8 ? CATANET_PIX_RGB24 : CATANET_PIX_RGB48, .bits = b, .width = W,
                            .height = H, .data = { src }, .linesize = { W * bpp } };
        CatanetImage om = im;
        om.width = W * s;
        om.height = H * s;
        om.data[0] = dst;
        om.linesize[0] = W * s * bpp;
        catanet_image_from_rgb(in, &im);
        ret = catanet_engine_process_image(e, &im, &om);
    }
    if (ret == CATANET_ERR_NONFINITE)
        test_check(strstr(catanet_engine_last_error(e), "non-finite") != NULL, "nonfinite: the message names it: %s",
                   catanet_engine_last_error(e));
    free(in);
    free(out);
    free(src);
    free(dst);
    catanet_engine_close(&e);
    return ret;
}

static void test_nonfinite_frames(void)
{
    char tmp[] = "/tmp/catanet-overflow-XXXXXX.safetensors", ref[1024];
    int fd = mkstemps(tmp, 12);
    if (fd < 0 || (close(fd), write_overflow_model(tmp)) < 0) {
        test_check(0, "nonfinite: no overflowing model to test with");
        if (fd >= 0)
            unlink(tmp);
        return;
    }
    static const char *kinds[] = { "float", "RGB24 (8-bit)", "RGB48 (16-bit)" };
    for (int tile = 0; tile <= 112; tile += 112)
        for (int kind = 0; kind < 3; kind++) {
            int rc = frame_rc(tmp, tile, kind);
            test_check(rc == CATANET_ERR_NONFINITE, "nonfinite: overflowing model, %s output, tile %d: %d (%s)",
                       kinds[kind], tile, rc, catanet_strerror(rc));
        }
    unlink(tmp);
    int rc = frame_rc(ref_path(ref, sizeof(ref), "weights_x2_trained.safetensors"), 0, 0);
    test_check(rc == 0, "nonfinite: the reference model's frame is finite: %d", rc);
}

int main(void)
{
    test_published_values();
    test_444_vs_oracle(8);
    test_444_vs_oracle(10);
    static const int sizes[][2] = { { 1, 1 }, { 2, 2 }, { 3, 2 }, { 17, 13 }, { 32, 24 } };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        test_round_trips(sizes[i][0], sizes[i][1], 0);
    test_round_trips(17, 13, 1);
    test_10bit_precision();
    test_siting_upsample();
    test_siting_downsample();
    test_rgb_formats();
    test_yuv_output_clamped();
    test_bad_args();
    test_nonfinite_frames();
    return test_finish();
}
