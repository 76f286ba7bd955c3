/*
 * layernorm.c: LayerNorm over the channel (last) dim, eps 1e-5, with affine weight and bias.
 * defines: catanet_layernorm_fwd_ref, catanet_layernorm_fwd_cpu, catanet_layernorm_bwd_ref
 */
#include <math.h>

#include "kernels.h"

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
        ln_row(c, x + (size_t)r * c, g, b, y + (size_t)r * c, NULL, NULL);
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
        ln_row(c, x + (size_t)r * c, g, b, y + (size_t)r * c, mean + r, rstd + r);
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
        catanet_layernorm_bwd_ref(rows, c, x + (size_t)r0 * c, g, mean + r0, rstd + r0,
                                  dy + (size_t)r0 * c, dx ? dx + (size_t)r0 * c : NULL, pg, pb);
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
