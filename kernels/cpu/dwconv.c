/*
 * dwconv.c: depthwise KxK convolution (groups = channels), zero padding K/2, NHWC.
 * defines: catanet_dwconv_fwd_ref, catanet_dwconv_fwd_cpu, catanet_dwconv_taps, catanet_dwconv_row_cpu,
 *          catanet_dwconv_bwd_ref, catanet_dwconv_bwd_scratch, catanet_dwconv_bwd_cpu
 */
#include <string.h>

#include "kernels.h"
#include "vec.h"

/* one output row y of image bi; the tap order (ky, kx) is the same in both paths */
static void dw_row(const CatanetDwconvArgs *a, int bi, int y, const float *in, const float *wt,
                   const float *bias, float *out)
{
    int k = a->ksize, p = k / 2, c = a->c;
    for (int x = 0; x < a->w; x++) {
        float *o = out + (((size_t)bi * a->h + y) * a->w + x) * c;
        for (int ch = 0; ch < c; ch++)
            o[ch] = bias ? bias[ch] : 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - p;
            if (yy < 0 || yy >= a->h)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - p;
                if (xx < 0 || xx >= a->w)
                    continue;
                const float *src = in + (((size_t)bi * a->h + yy) * a->w + xx) * c;
                for (int ch = 0; ch < c; ch++)
                    o[ch] += src[ch] * wt[((size_t)ch * k + ky) * k + kx];
            }
        }
    }
}

/* in [B,H,W,C], wt [C,1,k,k], bias [C] -> out [B,H,W,C] */
void catanet_dwconv_fwd_ref(const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *bias, float *out)
{
    for (int bi = 0; bi < a->batch; bi++)
        for (int y = 0; y < a->h; y++)
            dw_row(a, bi, y, in, wt, bias, out);
}

/* ---- fast forward: weights as [tap][channel], 16 channels by 4 pixels at a time ---- */
FAST_BEGIN

/* pixels per step of the interior loop: independent FMA chains over the taps */
#define DW_PIX 4

/* one output row; the taps are summed in the reference's order (ky, kx), from the bias */
CLONES_FMA static void dw_row_fast(const CatanetDwconvArgs *a, int y, const float *img, const float *wtt,
                                   const float *bias, float *orow)
{
    int k = a->ksize, p = k / 2, c = a->c, H = a->h, W = a->w;
    int ky0 = p - y > 0 ? p - y : 0, ky1 = H - y + p < k ? H - y + p : k; /* taps inside the image */
    int x = 0;
    while (x < W) {
        int interior = x >= p && x + DW_PIX - 1 + p < W; /* every column tap inside, for DW_PIX pixels */
        int np = interior ? DW_PIX : 1;
        int kx0 = p - x > 0 ? p - x : 0, kx1 = W - x + p < k ? W - x + p : k;
        int ch = 0;
        for (; ch + VL <= c; ch += VL) {
            vf acc[DW_PIX], b = { 0 };
            if (bias)
                VLOAD(b, bias + ch);
            for (int i = 0; i < DW_PIX; i++)
                acc[i] = b;
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = img + (size_t)(y + ky - p) * W * c + ch;
                for (int kx = kx0; kx < kx1; kx++) {
                    vf w;
                    VLOAD(w, wtt + (size_t)(ky * k + kx) * c + ch);
                    const float *src = row + (size_t)(x + kx - p) * c;
                    if (interior) {
#pragma GCC unroll 4
                        for (int i = 0; i < DW_PIX; i++) {
                            vf v;
                            VLOAD(v, src + (size_t)i * c);
                            acc[i] += v * w;
                        }
                    } else {
                        vf v;
                        VLOAD(v, src);
                        acc[0] += v * w;
                    }
                }
            }
            for (int i = 0; i < np; i++)
                VSTORE(orow + (size_t)(x + i) * c + ch, acc[i]);
        }
        for (; ch < c; ch++) /* channels past the last whole vector */
            for (int i = 0; i < np; i++) {
                float acc = bias ? bias[ch] : 0.0f;
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        acc += img[((size_t)(y + ky - p) * W + x + i + kx - p) * c + ch] * wtt[(size_t)(ky * k + kx) * c + ch];
                orow[(size_t)(x + i) * c + ch] = acc;
            }
        x += np;
    }
}
FAST_END

#define DW_MAX_WEIGHTS CATANET_DW_MAX_WEIGHTS

void catanet_dwconv_fwd_cpu(const CatanetCpu *cpu, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    int rows = a->batch * a->h, c = a->c, kk = a->ksize * a->ksize;
    if ((size_t)c * kk > DW_MAX_WEIGHTS) { /* wider than any CATANet: the plain loop */
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
        for (int r = 0; r < rows; r++)
            dw_row(a, r / a->h, r % a->h, in, wt, bias, out);
        return;
    }
    float wtt[DW_MAX_WEIGHTS];
    catanet_dwconv_taps(a, wt, wtt);
    size_t plane = (size_t)a->h * a->w * c;
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
    for (int r = 0; r < rows; r++)
        dw_row_fast(a, r % a->h, in + (size_t)(r / a->h) * plane, wtt, bias, out + (size_t)r * a->w * c);
}

int catanet_dwconv_taps(const CatanetDwconvArgs *a, const float *wt, float *wtt)
{
    int c = a->c, kk = a->ksize * a->ksize;
    if ((size_t)c * kk > DW_MAX_WEIGHTS)
        return -1;
    for (int ch = 0; ch < c; ch++)
        for (int j = 0; j < kk; j++)
            wtt[(size_t)j * c + ch] = wt[(size_t)ch * kk + j];
    return 0;
}

void catanet_dwconv_row_cpu(const CatanetDwconvArgs *a, int y, const float *img, const float *wtt,
                            const float *bias, float *orow)
{
    dw_row_fast(a, y, img, wtt, bias, orow);
}

/* forward: out[b,y,x,c] = bias[c] + sum_{ky,kx} in[b,y+ky-p,x+kx-p,c] wt[c,ky,kx] */
void catanet_dwconv_bwd_ref(const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias)
{
    int k = a->ksize, p = k / 2, c = a->c;
    for (int bi = 0; bi < a->batch; bi++)
        for (int y = 0; y < a->h; y++)
            for (int x = 0; x < a->w; x++)
                for (int ch = 0; ch < c; ch++) {
                    float g = dout[(((size_t)bi * a->h + y) * a->w + x) * c + ch];
                    if (dbias)
                        dbias[ch] += g;
                    for (int ky = 0; ky < k; ky++) {
                        int yy = y + ky - p;
                        if (yy < 0 || yy >= a->h)
                            continue;
                        for (int kx = 0; kx < k; kx++) {
                            int xx = x + kx - p;
                            if (xx < 0 || xx >= a->w)
                                continue;
                            size_t ii = (((size_t)bi * a->h + yy) * a->w + xx) * c + ch;
                            size_t wi = ((size_t)ch * k + ky) * k + kx;
                            if (din)
                                din[ii] += g * wt[wi];
                            if (dwt)
                                dwt[wi] += g * in[ii];
                        }
                    }
                }
}

/* image rows per weight-gradient task of the fast backward */
#define DW_BWD_ROWS 8

/* The fast backward's rows, vectorised over channels with FMA (clones per ISA). */
FAST_BEGIN
/* din of row y, gathered from the output rows that read it: wtt [tap][channel] */
CLONES_FMA static void dw_bwd_din_row(const CatanetDwconvArgs *a, int bi, int y, const float *dout,
                                      const float *wtt, float *din)
{
    int k = a->ksize, p = k / 2, c = a->c, H = a->h, W = a->w;
    for (int x = 0; x < W; x++) {
        float *d = din + (((size_t)bi * H + y) * W + x) * c;
        for (int ky = 0; ky < k; ky++) {
            int yy = y - ky + p; /* the output row that read (y, x) through tap ky */
            if (yy < 0 || yy >= H)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x - kx + p;
                if (xx < 0 || xx >= W)
                    continue;
                const float *g = dout + (((size_t)bi * H + yy) * W + xx) * c;
                const float *wr = wtt + (size_t)(ky * k + kx) * c;
                for (int ch = 0; ch < c; ch++)
                    d[ch] += g[ch] * wr[ch];
            }
        }
    }
}

/* row y's share of the weight gradient gw [tap][channel] and of the bias gradient gb */
CLONES_FMA static void dw_bwd_wt_row(const CatanetDwconvArgs *a, int bi, int y, const float *in,
                                     const float *dout, float *gw, float *gb)
{
    int k = a->ksize, p = k / 2, c = a->c, H = a->h, W = a->w;
    for (int x = 0; x < W; x++) {
        const float *g = dout + (((size_t)bi * H + y) * W + x) * c;
        for (int ch = 0; ch < c; ch++)
            gb[ch] += g[ch];
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - p;
            if (yy < 0 || yy >= H)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - p;
                if (xx < 0 || xx >= W)
                    continue;
                const float *s = in + (((size_t)bi * H + yy) * W + xx) * c;
                float *gr = gw + (size_t)(ky * k + kx) * c;
                for (int ch = 0; ch < c; ch++)
                    gr[ch] += g[ch] * s[ch];
            }
        }
    }
}
FAST_END

size_t catanet_dwconv_bwd_scratch(const CatanetDwconvArgs *a)
{
    size_t tasks = ((size_t)a->batch * a->h + DW_BWD_ROWS - 1) / DW_BWD_ROWS;
    return tasks * (size_t)a->c * (a->ksize * a->ksize + 1) + (size_t)a->c * a->ksize * a->ksize;
}

/* din gathered per output row (no write conflicts); dwt/dbias: a partial per fixed block of
 * rows in scratch, summed in block order afterwards. */
void catanet_dwconv_bwd_cpu(const CatanetCpu *cpu, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *dout, float *din, float *dwt,
                            float *dbias, float *scratch)
{
    int k = a->ksize, kk = k * k, c = a->c, H = a->h;
    int rows = a->batch * H;
    int tasks = (rows + DW_BWD_ROWS - 1) / DW_BWD_ROWS;
    size_t tsz = (size_t)c * (kk + 1);
    /* the weights as [tap][channel]: the input-gradient loop then runs over contiguous channels */
    float *wtt = scratch + (size_t)tasks * tsz;
    for (int ch = 0; ch < c; ch++)
        for (int j = 0; j < kk; j++)
            wtt[(size_t)j * c + ch] = wt[(size_t)ch * kk + j];
#pragma omp parallel num_threads(cpu->threads)
    {
    if (din) {
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++)
            dw_bwd_din_row(a, r / H, r % H, dout, wtt, din);
    }
    if (dwt || dbias) {
#pragma omp for schedule(static)
        for (int t = 0; t < tasks; t++) {
            float *gw = scratch + (size_t)t * tsz, *gb = gw + (size_t)c * kk;
            memset(gw, 0, sizeof(float) * tsz);
            int r1 = (t + 1) * DW_BWD_ROWS < rows ? (t + 1) * DW_BWD_ROWS : rows;
            for (int r = t * DW_BWD_ROWS; r < r1; r++)
                dw_bwd_wt_row(a, r / H, r % H, in, dout, gw, gb);
        }
    }
    }
    if (dwt || dbias)
        for (int t = 0; t < tasks; t++) {
            const float *gw = scratch + (size_t)t * tsz, *gb = gw + (size_t)c * kk;
            if (dwt)
                for (int ch = 0; ch < c; ch++)
                    for (int j = 0; j < kk; j++)
                        dwt[(size_t)ch * kk + j] += gw[(size_t)j * c + ch];
            if (dbias)
                for (int ch = 0; ch < c; ch++)
                    dbias[ch] += gb[ch];
        }
}
