/*
 * image.c: strided 8/10/12/16-bit RGB, grey and YUV images <-> the network's planar float RGB.
 * YUV uses the image's matrix (BT.601/709/2020 non-constant luminance) and range; subsampled
 * chroma is interpolated (bilinear) and decimated (a [1 2 1] or [1 1] filter) at the image's
 * chroma siting. Output is clamped to [0,1] before conversion and rounded to nearest.
 */
#include <math.h>
#include <string.h>

#include "catanet.h"

typedef struct Layout {
    int planar_rgb, packed, yuv, gray, semi;  /* kind */
    int sx, sy;                               /* chroma subsampling shifts */
    int wide;                                 /* 16-bit storage */
    int shift;                                /* value stored << shift (P010: 6) */
    int order[3];                             /* packed: byte offsets of R, G, B (in samples) */
} Layout;

static int layout_of(const CatanetImage *im, Layout *l)
{
    memset(l, 0, sizeof(*l));
    int bits = im->bits;
    if (im->format != CATANET_PIX_FLOAT_RGBP && (bits < 8 || bits > 16))
        return CATANET_ERR_UNSUPPORTED;
    l->wide = bits > 8;
    switch (im->format) {
    case CATANET_PIX_RGB24: l->packed = 1; l->order[0] = 0; l->order[1] = 1; l->order[2] = 2; l->wide = 0;
        return bits == 8 ? 0 : CATANET_ERR_UNSUPPORTED;
    case CATANET_PIX_BGR24: l->packed = 1; l->order[0] = 2; l->order[1] = 1; l->order[2] = 0; l->wide = 0;
        return bits == 8 ? 0 : CATANET_ERR_UNSUPPORTED;
    case CATANET_PIX_RGB48: l->packed = 1; l->order[0] = 0; l->order[1] = 1; l->order[2] = 2; l->wide = 1;
        return 0;
    case CATANET_PIX_RGBP: l->planar_rgb = 1; return 0;
    case CATANET_PIX_GRAY: l->gray = 1; return 0;
    case CATANET_PIX_YUV420P: l->yuv = 1; l->sx = 1; l->sy = 1; return 0;
    case CATANET_PIX_YUV422P: l->yuv = 1; l->sx = 1; return 0;
    case CATANET_PIX_YUV444P: l->yuv = 1; return 0;
    case CATANET_PIX_NV12: l->yuv = l->semi = 1; l->sx = l->sy = 1; l->wide = 0;
        return bits == 8 ? 0 : CATANET_ERR_UNSUPPORTED;
    case CATANET_PIX_P010: l->yuv = l->semi = 1; l->sx = l->sy = 1; l->wide = 1; l->shift = 16 - bits;
        return bits > 8 ? 0 : CATANET_ERR_UNSUPPORTED;
    case CATANET_PIX_FLOAT_RGBP: l->planar_rgb = 1; return 0;
    }
    return CATANET_ERR_UNSUPPORTED;
}

static float get(const CatanetImage *im, const Layout *l, int plane, int x, int y, int stride_samples, int off)
{
    const uint8_t *row = (const uint8_t *)im->data[plane] + (ptrdiff_t)y * im->linesize[plane];
    size_t i = (size_t)x * stride_samples + off;
    if (l->wide)
        return (float)(((const uint16_t *)row)[i] >> l->shift);
    return (float)row[i];
}

static void put(const CatanetImage *im, const Layout *l, int plane, int x, int y, int stride_samples, int off,
                float v, float maxv)
{
    uint8_t *row = (uint8_t *)im->data[plane] + (ptrdiff_t)y * im->linesize[plane];
    size_t i = (size_t)x * stride_samples + off;
    v = v < 0.0f ? 0.0f : v > maxv ? maxv : v;
    unsigned q = (unsigned)lrintf(v);
    if (l->wide)
        ((uint16_t *)row)[i] = (uint16_t)(q << l->shift);
    else
        row[i] = (uint8_t)q;
}

static void matrix_coefs(CatanetColorMatrix m, float *kr, float *kb)
{
    switch (m) {
    case CATANET_MATRIX_BT709: *kr = 0.2126f; *kb = 0.0722f; break;
    case CATANET_MATRIX_BT2020: *kr = 0.2627f; *kb = 0.0593f; break;
    default: *kr = 0.299f; *kb = 0.114f; break;
    }
}

/* code values <-> normalised Y' in [0,1] and Cb/Cr in [-0.5,0.5] */
typedef struct Range {
    float y_off, y_scale, c_off, c_scale;
} Range;

static Range range_of(const CatanetImage *im)
{
    float m = (float)(1 << (im->bits - 8));
    Range r;
    if (im->range == CATANET_RANGE_FULL) {
        float maxv = (float)((1 << im->bits) - 1);
        r = (Range){ 0.0f, maxv, 128.0f * m, maxv };
    } else
        r = (Range){ 16.0f * m, 219.0f * m, 128.0f * m, 224.0f * m };
    return r;
}

/* chroma sample position (in chroma samples) of luma coordinate x along one axis */
static float chroma_pos(int x, int sub, int cosited)
{
    if (!sub)
        return (float)x;
    return cosited ? x * 0.5f : (x - 0.5f) * 0.5f;
}

static float chroma_at(const CatanetImage *im, const Layout *l, int comp, float cx, float cy, int cw, int ch)
{
    cx = cx < 0 ? 0 : cx > cw - 1 ? (float)(cw - 1) : cx;
    cy = cy < 0 ? 0 : cy > ch - 1 ? (float)(ch - 1) : cy;
    int x0 = (int)cx, y0 = (int)cy;
    int x1 = x0 + 1 < cw ? x0 + 1 : x0, y1 = y0 + 1 < ch ? y0 + 1 : y0;
    float fx = cx - x0, fy = cy - y0;
    int plane = l->semi ? 1 : 1 + comp, st = l->semi ? 2 : 1, off = l->semi ? comp : 0;
    float a = get(im, l, plane, x0, y0, st, off), b = get(im, l, plane, x1, y0, st, off);
    float c = get(im, l, plane, x0, y1, st, off), d = get(im, l, plane, x1, y1, st, off);
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d);
}

static float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

int catanet_image_to_rgb(const CatanetImage *im, float *rgb)
{
    Layout l;
    if (!im || !rgb || im->width < 1 || im->height < 1 || !im->data[0])
        return CATANET_ERR_INVALID_ARG;
    int ret = layout_of(im, &l);
    if (ret < 0)
        return ret;
    int w = im->width, h = im->height;
    size_t plane = (size_t)w * h;
    float maxv = im->format == CATANET_PIX_FLOAT_RGBP ? 1.0f : (float)((1 << im->bits) - 1);
    if (im->format == CATANET_PIX_FLOAT_RGBP) {
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++)
                memcpy(rgb + c * plane + (size_t)y * w, (const uint8_t *)im->data[c] + (ptrdiff_t)y * im->linesize[c],
                       sizeof(float) * w);
        return 0;
    }
    if (l.packed || l.planar_rgb || l.gray) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    float v = l.packed ? get(im, &l, 0, x, y, 3, l.order[c]) :
                              l.gray ? get(im, &l, 0, x, y, 1, 0) : get(im, &l, c, x, y, 1, 0);
                    rgb[c * plane + (size_t)y * w + x] = v / maxv;
                }
        return 0;
    }
    float kr, kb;
    matrix_coefs(im->matrix, &kr, &kb);
    float kg = 1.0f - kr - kb;
    Range r = range_of(im);
    int cw = (w + (1 << l.sx) - 1) >> l.sx, ch = (h + (1 << l.sy) - 1) >> l.sy;
    int hcos = im->chroma_loc != CATANET_CHROMA_CENTER;  /* left and top-left: co-sited horizontally */
    int vcos = im->chroma_loc == CATANET_CHROMA_TOPLEFT;
    for (int y = 0; y < h; y++) {
        float cy = chroma_pos(y, l.sy, vcos);
        for (int x = 0; x < w; x++) {
            float cx = chroma_pos(x, l.sx, hcos);
            float Y = (get(im, &l, 0, x, y, 1, 0) - r.y_off) / r.y_scale;
            float U = (chroma_at(im, &l, 0, cx, cy, cw, ch) - r.c_off) / r.c_scale;
            float V = (chroma_at(im, &l, 1, cx, cy, cw, ch) - r.c_off) / r.c_scale;
            float R = Y + 2.0f * (1.0f - kr) * V;
            float B = Y + 2.0f * (1.0f - kb) * U;
            float G = (Y - kr * R - kb * B) / kg;
            /* the network's input domain is [0,1]: super-white, sub-black and out-of-gamut
             * YUV codes are clipped here, as the API documents */
            rgb[(size_t)y * w + x] = clamp01(R);
            rgb[plane + (size_t)y * w + x] = clamp01(G);
            rgb[2 * plane + (size_t)y * w + x] = clamp01(B);
        }
    }
    return 0;
}

/* taps of the decimation filter along one axis for chroma sample i: co-sited [1 2 1]/4
 * around 2i, centred [1 1]/2 over 2i, 2i+1; no subsampling: the sample itself */
static int taps(int i, int sub, int cosited, int n, int *pos, float *wt)
{
    if (!sub) {
        pos[0] = i;
        wt[0] = 1.0f;
        return 1;
    }
    if (cosited) {
        pos[0] = 2 * i - 1 < 0 ? 0 : 2 * i - 1;
        pos[1] = 2 * i < n ? 2 * i : n - 1;
        pos[2] = 2 * i + 1 < n ? 2 * i + 1 : n - 1;
        wt[0] = 0.25f; wt[1] = 0.5f; wt[2] = 0.25f;
        return 3;
    }
    pos[0] = 2 * i < n ? 2 * i : n - 1;
    pos[1] = 2 * i + 1 < n ? 2 * i + 1 : n - 1;
    wt[0] = wt[1] = 0.5f;
    return 2;
}

int catanet_image_from_rgb(const float *rgb, CatanetImage *im)
{
    Layout l;
    if (!im || !rgb || im->width < 1 || im->height < 1 || !im->data[0])
        return CATANET_ERR_INVALID_ARG;
    int ret = layout_of(im, &l);
    if (ret < 0)
        return ret;
    int w = im->width, h = im->height;
    size_t plane = (size_t)w * h;
    if (im->format == CATANET_PIX_FLOAT_RGBP) {
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < h; y++) {
                float *dst = (float *)((uint8_t *)im->data[c] + (ptrdiff_t)y * im->linesize[c]);
                for (int x = 0; x < w; x++)
                    dst[x] = rgb[c * plane + (size_t)y * w + x];
            }
        return 0;
    }
    float maxv = (float)((1 << im->bits) - 1);
    float kr, kb;
    matrix_coefs(im->matrix, &kr, &kb);
    float kg = 1.0f - kr - kb;
    if (l.packed || l.planar_rgb) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    float v = clamp01(rgb[c * plane + (size_t)y * w + x]) * maxv;
                    if (l.packed)
                        put(im, &l, 0, x, y, 3, l.order[c], v, maxv);
                    else
                        put(im, &l, c, x, y, 1, 0, v, maxv);
                }
        return 0;
    }
    if (l.gray) { /* grey stays grey: the luma of the result (the image's matrix, full range) */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                float Y = kr * clamp01(rgb[i]) + kg * clamp01(rgb[plane + i]) + kb * clamp01(rgb[2 * plane + i]);
                put(im, &l, 0, x, y, 1, 0, Y * maxv, maxv);
            }
        return 0;
    }
    Range r = range_of(im);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float Y = kr * clamp01(rgb[i]) + kg * clamp01(rgb[plane + i]) + kb * clamp01(rgb[2 * plane + i]);
            put(im, &l, 0, x, y, 1, 0, r.y_off + Y * r.y_scale, maxv);
        }
    int cw = (w + (1 << l.sx) - 1) >> l.sx, ch = (h + (1 << l.sy) - 1) >> l.sy;
    int hcos = im->chroma_loc != CATANET_CHROMA_CENTER, vcos = im->chroma_loc == CATANET_CHROMA_TOPLEFT;
    for (int cy = 0; cy < ch; cy++) {
        int py[3], px[3];
        float wy[3], wx[3];
        int ny = taps(cy, l.sy, vcos, h, py, wy);
        for (int cx = 0; cx < cw; cx++) {
            int nx = taps(cx, l.sx, hcos, w, px, wx);
            float U = 0.0f, V = 0.0f;
            for (int a = 0; a < ny; a++)
                for (int b = 0; b < nx; b++) {
                    size_t i = (size_t)py[a] * w + px[b];
                    float R = clamp01(rgb[i]), G = clamp01(rgb[plane + i]), B = clamp01(rgb[2 * plane + i]);
                    float Y = kr * R + kg * G + kb * B;
                    U += wy[a] * wx[b] * (B - Y) / (2.0f * (1.0f - kb));
                    V += wy[a] * wx[b] * (R - Y) / (2.0f * (1.0f - kr));
                }
            if (l.semi) {
                put(im, &l, 1, cx, cy, 2, 0, r.c_off + U * r.c_scale, maxv);
                put(im, &l, 1, cx, cy, 2, 1, r.c_off + V * r.c_scale, maxv);
            } else {
                put(im, &l, 1, cx, cy, 1, 0, r.c_off + U * r.c_scale, maxv);
                put(im, &l, 2, cx, cy, 1, 0, r.c_off + V * r.c_scale, maxv);
            }
        }
    }
    return 0;
}
