/* bicubic.c: MATLAB-compatible imresize(..., 'bicubic') on planar rasters. */
#include <math.h>
#include <stdlib.h>

#include "bicubic.h"
#include "catanet.h"

#define CUBIC_SUPPORT 4.0   /* Keys kernel width in input samples at scale 1 */

/* Keys cubic, a = -0.5, written as MATLAB's imresize writes it (|x|^3 via pow, as MATLAB's .^) */
static double cubic(double x)
{
    double ax = fabs(x), ax2 = ax * ax, ax3 = pow(ax, 3.0);
    if (ax <= 1.0)
        return 1.5 * ax3 - 2.5 * ax2 + 1.0;
    if (ax <= 2.0)
        return -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0;
    return 0.0;
}

/* For each of out_len outputs, P taps: input index (0-based, mirrored) and normalised weight. */
typedef struct Contrib {
    int n, taps;
    int *idx;       /* [n][taps] */
    double *w;      /* [n][taps] */
} Contrib;

static void contrib_free(Contrib *c)
{
    free(c->idx);
    free(c->w);
}

static int contrib_make(Contrib *c, int in_len, int out_len, double scale)
{
    int shrink = scale < 1.0;
    double kw = shrink ? CUBIC_SUPPORT / scale : CUBIC_SUPPORT;
    int taps = (int)ceil(kw) + 2;
    c->n = out_len;
    c->taps = taps;
    c->idx = malloc(sizeof(int) * (size_t)out_len * taps);
    c->w = malloc(sizeof(double) * (size_t)out_len * taps);
    if (!c->idx || !c->w) {
        contrib_free(c);
        return CATANET_ERR_NOMEM;
    }
    int64_t period = 2 * (int64_t)in_len;
    for (int i = 0; i < out_len; i++) {
        double x = i + 1;   /* MATLAB's 1-based output coordinate */
        double u = x / scale + 0.5 * (1.0 - 1.0 / scale);
        double left = floor(u - kw / 2.0);
        int *idx = c->idx + (size_t)i * taps;
        double *w = c->w + (size_t)i * taps, sum = 0.0;
        for (int k = 0; k < taps; k++) {
            double j = left + k;   /* 1-based input index, may be outside 1..in_len */
            w[k] = shrink ? scale * cubic(scale * (u - j)) : cubic(u - j);
            sum += w[k];
            /* symmetric padding: index sequence 1..L, L..1 repeated */
            int64_t m = ((int64_t)j - 1) % period;
            if (m < 0)
                m += period;
            idx[k] = (int)(m < in_len ? m : period - 1 - m);
        }
        for (int k = 0; k < taps; k++)
            w[k] /= sum;
    }
    return 0;
}

/* out[o][x] = sum_k w[o][k] in[idx[o][k]][x]: the vertical pass; in [h][w] -> out [c->n][w] */
static void pass_vertical(const double *in, int w, const Contrib *c, double *out)
{
    for (int o = 0; o < c->n; o++) {
        double *dst = out + (size_t)o * w;
        const int *idx = c->idx + (size_t)o * c->taps;
        const double *wt = c->w + (size_t)o * c->taps;
        for (int x = 0; x < w; x++)
            dst[x] = 0.0;
        for (int k = 0; k < c->taps; k++) {
            const double *src = in + (size_t)idx[k] * w;
            double wk = wt[k];
            for (int x = 0; x < w; x++)
                dst[x] += wk * src[x];
        }
    }
}

/* the horizontal pass: in [h][in_w] -> out [h][c->n] */
static void pass_horizontal(const double *in, int h, int in_w, const Contrib *c, double *out)
{
    for (int y = 0; y < h; y++) {
        const double *src = in + (size_t)y * in_w;
        double *dst = out + (size_t)y * c->n;
        for (int o = 0; o < c->n; o++) {
            const int *idx = c->idx + (size_t)o * c->taps;
            const double *wt = c->w + (size_t)o * c->taps;
            double s = 0.0;
            for (int k = 0; k < c->taps; k++)
                s += wt[k] * src[idx[k]];
            dst[o] = s;
        }
    }
}

/*
 * To an integer sample: saturate (NaN -> 0) and round to nearest, ties to even by default.
 * Ties are real only at x2, where every weight is a multiple of 1/256 and the double arithmetic
 * is exact: the benchmark files (Set14 LRbicx2) resolve those ties to even, which MATLAB's own
 * uint8() (ties away from zero) would not; CATANET_RESIZE_TIES_AWAY gives the latter.
 */
static double round_sat(double v, double maxval, int ties_away)
{
    if (!(v > 0.0))
        return 0.0;
    v = ties_away ? round(v) : rint(v);
    return v > maxval ? maxval : v;
}

int catanet_imresize_size(int n, double scale)
{
    return (int)ceil((double)n * scale);
}

/* one plane: src [ih][iw] -> dst [oh][ow] through mid (size of the intermediate) */
static void resize_plane(const double *src, int iw, int ih, const Contrib *cv, const Contrib *ch, int vfirst,
                         double round_max, int ties_away, double *mid, double *dst)
{
    int ow = ch->n, oh = cv->n;
    size_t mid_n = vfirst ? (size_t)oh * iw : (size_t)ih * ow;
    if (vfirst)
        pass_vertical(src, iw, cv, mid);
    else
        pass_horizontal(src, ih, iw, ch, mid);
    if (round_max > 0.0)
        for (size_t i = 0; i < mid_n; i++)
            mid[i] = round_sat(mid[i], round_max, ties_away);
    if (vfirst)
        pass_horizontal(mid, oh, iw, ch, dst);
    else
        pass_vertical(mid, ow, cv, dst);
}

int catanet_imresize_f64(const double *in, int w, int h, double scale, int order, double *out)
{
    if (!in || !out || w < 1 || h < 1 || !(scale > 0.0 && scale <= 64.0))
        return CATANET_ERR_INVALID_ARG;
    int ow = catanet_imresize_size(w, scale), oh = catanet_imresize_size(h, scale);
    if (ow < 1 || oh < 1)
        return CATANET_ERR_INVALID_ARG;
    int vfirst = order != CATANET_RESIZE_HORIZONTAL_FIRST;
    Contrib cv = { 0 }, ch = { 0 };
    double *mid = NULL;
    int ret;
    if ((ret = contrib_make(&cv, h, oh, scale)) < 0 || (ret = contrib_make(&ch, w, ow, scale)) < 0)
        goto done;
    mid = malloc(sizeof(double) * (vfirst ? (size_t)oh * w : (size_t)h * ow));
    if (!mid) {
        ret = CATANET_ERR_NOMEM;
        goto done;
    }
    resize_plane(in, w, h, &cv, &ch, vfirst, 0.0, 0, mid, out);
done:
    contrib_free(&cv);
    contrib_free(&ch);
    free(mid);
    return ret;
}

int catanet_imresize_ex(const CatanetRaster *in, double scale, int order, int flags, CatanetRaster *out)
{
    out->px = NULL;
    if (!in || !in->px || !(scale > 0.0 && scale <= 64.0) || in->maxval < 1)
        return CATANET_ERR_INVALID_ARG;
    int iw = in->w, ih = in->h;
    int ow = catanet_imresize_size(iw, scale), oh = catanet_imresize_size(ih, scale);
    if (ow < 1 || oh < 1)
        return CATANET_ERR_INVALID_ARG;
    /* both scales are equal here, so MATLAB's stable sort of [scale_h scale_w] puts the vertical first */
    int vfirst = order != CATANET_RESIZE_HORIZONTAL_FIRST;
    Contrib cv = { 0 }, ch = { 0 };
    double *src = NULL, *mid = NULL, *dst = NULL;
    int ret = catanet_raster_alloc(out, ow, oh, in->maxval);
    if (ret < 0)
        return ret;
    if ((ret = contrib_make(&cv, ih, oh, scale)) < 0 || (ret = contrib_make(&ch, iw, ow, scale)) < 0)
        goto fail;
    src = malloc(sizeof(double) * (size_t)iw * ih);
    mid = malloc(sizeof(double) * (vfirst ? (size_t)oh * iw : (size_t)ih * ow));
    dst = malloc(sizeof(double) * (size_t)ow * oh);
    if (!src || !mid || !dst) {
        ret = CATANET_ERR_NOMEM;
        goto fail;
    }
    double maxval = in->maxval;
    for (int c = 0; c < 3; c++) {
        const uint16_t *p = in->px + (size_t)c * iw * ih;
        for (size_t i = 0; i < (size_t)iw * ih; i++)
            src[i] = p[i];
        resize_plane(src, iw, ih, &cv, &ch, vfirst, flags & CATANET_RESIZE_ROUND_BETWEEN ? maxval : 0.0,
                     flags & CATANET_RESIZE_TIES_AWAY, mid, dst);
        uint16_t *q = out->px + (size_t)c * ow * oh;
        for (size_t i = 0; i < (size_t)ow * oh; i++)
            q[i] = (uint16_t)round_sat(dst[i], maxval, flags & CATANET_RESIZE_TIES_AWAY);
    }
    ret = 0;
    goto done;
fail:
    catanet_raster_free(out);
done:
    contrib_free(&cv);
    contrib_free(&ch);
    free(src);
    free(mid);
    free(dst);
    return ret;
}

int catanet_imresize(const CatanetRaster *in, double scale, CatanetRaster *out)
{
    return catanet_imresize_ex(in, scale, CATANET_RESIZE_MATLAB, 0, out);
}
