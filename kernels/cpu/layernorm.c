/*
 * layernorm.c: LayerNorm over the channel (last) dim, eps 1e-5, with affine weight and bias.
 * defines: catanet_layernorm_fwd_ref, catanet_layernorm_fwd_cpu, catanet_layernorm_fwd_stats_cpu,
 *          catanet_layernorm_fwd_serial_cpu, catanet_layernorm_bwd_ref, catanet_layernorm_bwd_scratch,
 *          catanet_layernorm_bwd_cpu, catanet_layernorm_bwd_serial_cpu
 */
#include <math.h>

#include "kernels.h"
#include "vec.h"

/* one row: statistics in double (PyTorch's CPU kernel accumulates in higher precision too) */
static void ln_row(int c, const float *x, const float *g, const float *b, float *y,
                   float *mean_out, float *rstd_out)
{
    double s = 0.0;
    for (int i = 0; i < c; i++)
        s += x[i];
    double mean = s / c;
    double v = 0.0;
    for (int i = 0; i < c; i++)
        v += (x[i] - mean) * (x[i] - mean);
    double rstd = 1.0 / sqrt(v / c + CATANET_LN_EPS);
    for (int i = 0; i < c; i++)
        y[i] = (float)((x[i] - mean) * rstd) * g[i] + b[i];
    if (mean_out)
        *mean_out = (float)mean;
    if (rstd_out)
        *rstd_out = (float)rstd;
}

/* The fast rows: float statistics in 8 interleaved partial sums (a fixed order, so the same
 * bits for any thread count; vectorised by the compiler), against the reference's sequential
 * double sums, whose dependency chain made LayerNorm a tenth of the forward's time. */
FAST_BEGIN
static inline float sum8(const float s[8])
{
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

CLONES_FMA static void ln_row_fast(int c, const float *x, const float *g, const float *b, float *y,
                                   float *mean_out, float *rstd_out)
{
    float s[8] = { 0 };
    int i = 0;
    for (; i + 8 <= c; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += x[i + j];
    for (int j = 0; i + j < c; j++)
        s[j] += x[i + j];
    float mean = sum8(s) / (float)c;
    float v[8] = { 0 };
    for (i = 0; i + 8 <= c; i += 8)
        for (int j = 0; j < 8; j++)
            v[j] += (x[i + j] - mean) * (x[i + j] - mean);
    for (int j = 0; i + j < c; j++)
        v[j] += (x[i + j] - mean) * (x[i + j] - mean);
    float rstd = 1.0f / sqrtf(sum8(v) / (float)c + CATANET_LN_EPS);
    for (i = 0; i < c; i++)
        y[i] = (x[i] - mean) * rstd * g[i] + b[i];
    if (mean_out)
        *mean_out = mean;
    if (rstd_out)
        *rstd_out = rstd;
}

/* one row of the backward (see catanet_layernorm_bwd_ref), dg/db accumulated into pg/pb */
CLONES_FMA static void ln_bwd_row_fast(int c, const float *x, const float *g, float mean, float rstd,
                                       const float *dy, float *dx, float *pg, float *pb)
{
    float s1[8] = { 0 }, s2[8] = { 0 };
    for (int i = 0; i < c; i++) {
        float xhat = (x[i] - mean) * rstd, dxhat = dy[i] * g[i];
        s1[i & 7] += dxhat;
        s2[i & 7] += dxhat * xhat;
        pg[i] += dy[i] * xhat;
        pb[i] += dy[i];
    }
    float m1 = sum8(s1) / (float)c, m2 = sum8(s2) / (float)c;
    if (dx)
        for (int i = 0; i < c; i++) {
            float xhat = (x[i] - mean) * rstd;
            dx[i] += rstd * (dy[i] * g[i] - m1 - xhat * m2);
        }
}
FAST_END

/* x [n,c] -> y [n,c] */
void catanet_layernorm_fwd_ref(int n, int c, const float *x, const float *g, const float *b,
                               float *y, float *mean, float *rstd)
{
    for (int r = 0; r < n; r++)
        ln_row(c, x + (size_t)r * c, g, b, y + (size_t)r * c, mean ? mean + r : NULL,
               rstd ? rstd + r : NULL);
}

void catanet_layernorm_fwd_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                               const float *g, const float *b, float *y)
{
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
    for (int r = 0; r < n; r++)
        ln_row_fast(c, x + (size_t)r * c, g, b, y + (size_t)r * c, NULL, NULL);
}

/* forward: xhat = (x - mean) rstd;  y = xhat g + b
 * dxhat = dy g;  dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
void catanet_layernorm_bwd_ref(int n, int c, const float *x, const float *g, const float *mean,
                               const float *rstd, const float *dy, float *dx, float *dg, float *db)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * c, *dyr = dy + (size_t)r * c;
        double m1 = 0.0, m2 = 0.0;
        for (int i = 0; i < c; i++) {
            double xhat = (xr[i] - mean[r]) * rstd[r];
            double dxhat = (double)dyr[i] * g[i];
            m1 += dxhat;
            m2 += dxhat * xhat;
            if (dg)
                dg[i] += (float)(dyr[i] * xhat);
            if (db)
                db[i] += dyr[i];
        }
        m1 /= c;
        m2 /= c;
        if (dx)
            for (int i = 0; i < c; i++) {
                double xhat = (xr[i] - mean[r]) * rstd[r];
                double dxhat = (double)dyr[i] * g[i];
                dx[(size_t)r * c + i] += (float)(rstd[r] * (dxhat - m1 - xhat * m2));
            }
    }
}

/* the forward keeping mean/rstd for the backward, rows in parallel (rows are independent) */
void catanet_layernorm_fwd_stats_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                                     const float *g, const float *b, float *y, float *mean,
                                     float *rstd)
{
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
    for (int r = 0; r < n; r++)
        ln_row_fast(c, x + (size_t)r * c, g, b, y + (size_t)r * c, mean + r, rstd + r);
}

size_t catanet_layernorm_bwd_scratch(int n, int c)
{
    return (size_t)((n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK) * 2 * c;
}

/* dx per row in parallel; dg/db as one partial per fixed chunk of rows, summed in order */
void catanet_layernorm_bwd_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                               const float *g, const float *mean, const float *rstd,
                               const float *dy, float *dx, float *dg, float *db, float *scratch)
{
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
    for (int ch = 0; ch < nchunks; ch++) {
        int r0 = ch * CATANET_ROW_CHUNK;
        int rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
        float *pg = scratch + (size_t)ch * 2 * c, *pb = pg + c;
        for (int i = 0; i < 2 * c; i++)
            pg[i] = 0.0f;
        for (int r = r0; r < r0 + rows; r++)
            ln_bwd_row_fast(c, x + (size_t)r * c, g, mean[r], rstd[r], dy + (size_t)r * c,
                            dx ? dx + (size_t)r * c : NULL, pg, pb);
    }
    for (int ch = 0; ch < nchunks; ch++) {
        const float *pg = scratch + (size_t)ch * 2 * c, *pb = pg + c;
        for (int i = 0; i < c; i++) {
            if (dg)
                dg[i] += pg[i];
            if (db)
                db[i] += pb[i];
        }
    }
}

/* the fast rows on the calling thread (inside a caller's parallel task): the forward keeping the
 * statistics, and the backward accumulating into dx, dg and db as the reference does */
void catanet_layernorm_fwd_serial_cpu(int n, int c, const float *x, const float *g, const float *b, float *y,
                                      float *mean, float *rstd)
{
    for (int r = 0; r < n; r++)
        ln_row_fast(c, x + (size_t)r * c, g, b, y + (size_t)r * c, mean + r, rstd + r);
}

void catanet_layernorm_bwd_serial_cpu(int n, int c, const float *x, const float *g, const float *mean,
                                      const float *rstd, const float *dy, float *dx, float *dg, float *db)
{
    for (int r = 0; r < n; r++)
        ln_bwd_row_fast(c, x + (size_t)r * c, g, mean[r], rstd[r], dy + (size_t)r * c, dx ? dx + (size_t)r * c : NULL,
                        dg, db);
}
