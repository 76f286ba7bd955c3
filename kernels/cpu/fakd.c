/*
 * fakd.c: the FAKD spatial-affinity distillation loss (He et al., ICIP 2020; training-spec §1, §5.5)
 * for one image, and its gradient w.r.t. the student's features.
 *
 *   U = rows of F normalised to unit length (F [N,C] NHWC tokens, one row per position)
 *   A = U U^T  [N,N]  (cosine similarity between positions; independent of C, so widths may differ)
 *   loss = mean_{i,j} |A_s[i][j] - A_t[i][j]|
 *
 * The fast path works on TILE x TILE blocks of A, so the N x N matrices (N = 4096 for a 64x64
 * patch: 64 MiB each) never exist whole. Backward: G = sign(A_s - A_t) / N^2 (symmetric), so
 * dU_s = 2 G U_s, then the normalisation backward (catanet_normalize_bwd_ref, zero-norm guard).
 *
 * defines: catanet_fakd_fwd_ref, catanet_fakd_bwd_ref, catanet_fakd_work, catanet_fakd_fwd_cpu,
 *          catanet_fakd_bwd_cpu
 */
#include "blas.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define FAKD_TILE 256

static void unit_rows(int n, int c, const float *f, float *u, float *norm)
{
    catanet_normalize_fwd_ref(n, c, f, u, norm);
}

static double dot(const float *a, const float *b, int c)
{
    double s = 0;
    for (int k = 0; k < c; k++)
        s += (double)a[k] * b[k];
    return s;
}

/* fs [N,cs], ft [N,ct]; work: N*(cs+ct) + 2N floats */
double catanet_fakd_fwd_ref(int n, int cs, int ct, const float *fs, const float *ft, float *work)
{
    float *us = work, *ut = us + (size_t)n * cs;
    unit_rows(n, cs, fs, us, NULL);
    unit_rows(n, ct, ft, ut, NULL);
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double as = dot(us + (size_t)i * cs, us + (size_t)j * cs, cs);
            double at = dot(ut + (size_t)i * ct, ut + (size_t)j * ct, ct);
            s += fabs(as - at);
        }
    return s / ((double)n * n);
}

static float sgnf(float d)
{
    return d > 0 ? 1.0f : d < 0 ? -1.0f : 0.0f;
}

/* dfs [N,cs] += weight * d loss / d fs; work: N*(cs+ct) + 2N + N*cs floats */
void catanet_fakd_bwd_ref(int n, int cs, int ct, const float *fs, const float *ft, float weight, float *dfs,
                          float *work)
{
    float *us = work, *ut = us + (size_t)n * cs, *ns = ut + (size_t)n * ct, *du = ns + 2 * (size_t)n;
    unit_rows(n, cs, fs, us, ns);
    unit_rows(n, ct, ft, ut, NULL);
    memset(du, 0, sizeof(float) * (size_t)n * cs);
    double scale = 2.0 * weight / ((double)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double as = dot(us + (size_t)i * cs, us + (size_t)j * cs, cs);
            double at = dot(ut + (size_t)i * ct, ut + (size_t)j * ct, ct);
            float g = (float)(scale * sgnf((float)(as - at)));
            for (int k = 0; k < cs; k++)
                du[(size_t)i * cs + k] += g * us[(size_t)j * cs + k];
        }
    catanet_normalize_bwd_ref(n, cs, us, ns, du, dfs);
}

/* shared work of the fast paths (floats): unit rows, norms, dU, and two tiles per thread */
size_t catanet_fakd_work(int n, int cs, int ct, int threads)
{
    size_t nt = ((size_t)n + FAKD_TILE - 1) / FAKD_TILE;
    return (size_t)n * (2 * cs + ct + 2) + (size_t)threads * 2 * FAKD_TILE * FAKD_TILE + 2 * nt + 2;
}

/* tile (i0, j0) of A_s - A_t into d [ni, nj] (row stride FAKD_TILE) */
static void tile_diff(int n, int cs, int ct, const float *us, const float *ut, int i0, int j0, float *as,
                      float *at, int *ni, int *nj)
{
    *ni = n - i0 < FAKD_TILE ? n - i0 : FAKD_TILE;
    *nj = n - j0 < FAKD_TILE ? n - j0 : FAKD_TILE;
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, *ni, *nj, cs, 1.0f, us + (size_t)i0 * cs, cs,
                us + (size_t)j0 * cs, cs, 0.0f, as, FAKD_TILE);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, *ni, *nj, ct, 1.0f, ut + (size_t)i0 * ct, ct,
                ut + (size_t)j0 * ct, ct, 0.0f, at, FAKD_TILE);
}

/* One image, tiled (never N x N in memory). Row tiles run in parallel; each sums its tiles in
 * order and the tile sums are added in order, so the result is the same for any thread count. */
double catanet_fakd_fwd_cpu(int threads, int n, int cs, int ct, const float *fs, const float *ft, float *work)
{
    float *us = work, *ut = us + (size_t)n * cs, *ns = ut + (size_t)n * ct;
    float *tiles = ns + 2 * (size_t)n + (size_t)n * cs;
    unit_rows(n, cs, fs, us, ns);
    unit_rows(n, ct, ft, ut, NULL);
    int nt = (n + FAKD_TILE - 1) / FAKD_TILE;
    /* per-row-tile sums (doubles) after the thread tiles, 8-byte aligned */
    uintptr_t pa = (uintptr_t)(tiles + (size_t)threads * 2 * FAKD_TILE * FAKD_TILE);
    double *part = (double *)((pa + 7) & ~(uintptr_t)7);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ti = 0; ti < nt; ti++) {
        CATANET_BLAS_SERIAL();
        float *as = tiles + (size_t)omp_get_thread_num() * 2 * FAKD_TILE * FAKD_TILE, *at = as + FAKD_TILE * FAKD_TILE;
        double s = 0;
        for (int tj = 0; tj < nt; tj++) {
            int ni, nj;
            tile_diff(n, cs, ct, us, ut, ti * FAKD_TILE, tj * FAKD_TILE, as, at, &ni, &nj);
            for (int i = 0; i < ni; i++)
                for (int j = 0; j < nj; j++)
                    s += fabsf(as[i * FAKD_TILE + j] - at[i * FAKD_TILE + j]);
        }
        part[ti] = s;
    }
    double s = 0;
    for (int ti = 0; ti < nt; ti++)
        s += part[ti];
    return s / ((double)n * n);
}

void catanet_fakd_bwd_cpu(int threads, int n, int cs, int ct, const float *fs, const float *ft, float weight,
                          float *dfs, float *work)
{
    float *us = work, *ut = us + (size_t)n * cs, *ns = ut + (size_t)n * ct, *du = ns + 2 * (size_t)n;
    float *tiles = du + (size_t)n * cs;
    unit_rows(n, cs, fs, us, ns);
    unit_rows(n, ct, ft, ut, NULL);
    int nt = (n + FAKD_TILE - 1) / FAKD_TILE;
    float scale = (float)(2.0 * weight / ((double)n * n));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int ti = 0; ti < nt; ti++) {
        CATANET_BLAS_SERIAL();
        float *as = tiles + (size_t)omp_get_thread_num() * 2 * FAKD_TILE * FAKD_TILE, *at = as + FAKD_TILE * FAKD_TILE;
        int i0 = ti * FAKD_TILE;
        for (int tj = 0; tj < nt; tj++) {
            int ni, nj, j0 = tj * FAKD_TILE;
            tile_diff(n, cs, ct, us, ut, i0, j0, as, at, &ni, &nj);
            for (int i = 0; i < ni; i++)
                for (int j = 0; j < nj; j++)
                    as[i * FAKD_TILE + j] = scale * sgnf(as[i * FAKD_TILE + j] - at[i * FAKD_TILE + j]);
            /* dU[i-tile] (+)= G_tile U[j-tile] */
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, cs, nj, 1.0f, as, FAKD_TILE,
                        us + (size_t)j0 * cs, cs, tj ? 1.0f : 0.0f, du + (size_t)i0 * cs, cs);
        }
    }
    catanet_normalize_bwd_ref(n, cs, us, ns, du, dfs);
}
