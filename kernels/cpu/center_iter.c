/*
 * center_iter.c: the token-center machinery of the TAB in training mode (spec §1.3, §1.7):
 * row normalisation (F.normalize) and its backward, the average-pool center initialisation of
 * the first training step, and one hard k-means step on the unit sphere pooled over the whole
 * batch (center_iter), whose fifth application is differentiable.
 * defines: catanet_normalize_fwd_ref, catanet_normalize_bwd_ref, catanet_center_init_ref,
 *          catanet_center_iter_fwd_ref, catanet_center_iter_fwd_cpu, catanet_center_iter_bwd_ref
 */
#include "blas.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels.h"

/* y = x / max(|x|, 1e-12) per row; norm[r] = |x_r| (may be NULL) */
void catanet_normalize_fwd_ref(int n, int c, const float *x, float *y, float *norm)
{
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * c;
        double s = 0.0;
        for (int i = 0; i < c; i++)
            s += (double)xr[i] * xr[i];
        double nr = sqrt(s);
        float inv = (float)(1.0 / (nr > CATANET_NORM_EPS ? nr : CATANET_NORM_EPS));
        for (int i = 0; i < c; i++)
            y[(size_t)r * c + i] = xr[i] * inv;
        if (norm)
            norm[r] = (float)nr;
    }
}

/* forward: y = x / max(|x|, eps)
 * dx += (dy - y (y.dy)) / |x|   when |x| > eps;   dx += dy / eps otherwise (constant divisor) */
void catanet_normalize_bwd_ref(int n, int c, const float *y, const float *norm, const float *dy,
                               float *dx)
{
    for (int r = 0; r < n; r++) {
        const float *yr = y + (size_t)r * c, *dyr = dy + (size_t)r * c;
        float *dxr = dx + (size_t)r * c;
        if (norm[r] > CATANET_NORM_EPS) {
            double dot = 0.0;
            for (int i = 0; i < c; i++)
                dot += (double)yr[i] * dyr[i];
            double inv = 1.0 / norm[r];
            for (int i = 0; i < c; i++)
                dxr[i] += (float)((dyr[i] - yr[i] * dot) * inv);
        } else {
            for (int i = 0; i < c; i++)
                dxr[i] += (float)(dyr[i] / CATANET_NORM_EPS);
        }
    }
}

/* First training step (initted == False): pad = M - N % M (M when N % M == 0);
 * xp = cat(xn, flip(xn[N-pad:N])) per image; c0[j] = mean over images and over the chunk
 * xp[j*L : (j+1)*L], L = (N+pad)/M.  xn [B,N,C] -> c0 [M,C] */
void catanet_center_init_ref(int batch, int n, int c, int m, const float *xn, float *c0)
{
    int pad = m - n % m, len = (n + pad) / m;
    for (int j = 0; j < m; j++) {
        double acc[CATANET_MAX_DIM] = { 0 };
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < len; t++) {
                int64_t p = (int64_t)j * len + t;
                int src = catanet_mirror_index(p, n);
                const float *x = xn + ((size_t)b * n + src) * c;
                for (int i = 0; i < c; i++)
                    acc[i] += x[i];
            }
        for (int i = 0; i < c; i++)
            c0[(size_t)j * c + i] = (float)(acc[i] / ((double)batch * len));
    }
}

/* the sums in fixed token order, normalise, empty clusters keep their center */
static void finish_centers(int n, int c, int m, const float *xu, const float *cu_in,
                           const int32_t *bucket, float *sum, int32_t *count, float *cu_out)
{
    memset(count, 0, sizeof(*count) * m);
    memset(sum, 0, sizeof(*sum) * (size_t)m * c);
    for (int r = 0; r < n; r++) {
        int j = bucket[r];
        count[j]++;
        float *s = sum + (size_t)j * c;
        const float *x = xu + (size_t)r * c;
        for (int i = 0; i < c; i++)
            s[i] += x[i];
    }
    for (int j = 0; j < m; j++) {
        if (count[j] > 0)
            catanet_normalize_fwd_ref(1, c, sum + (size_t)j * c, cu_out + (size_t)j * c, NULL);
        else
            memcpy(cu_out + (size_t)j * c, cu_in + (size_t)j * c, sizeof(float) * c);
    }
}

/* One k-means step on the unit sphere, pooled over the batch (official center_iter):
 * xu [n,C] unit tokens of every image (n = B*N), cu_in [M,C] unit centers ->
 * bucket [n] = first argmax_j <xu, cu_j>; count [M]; sum [M,C] = sum of the members;
 * cu_out [M,C] = normalize(sum) or cu_in where count == 0.  cu_out may not alias cu_in. */
void catanet_center_iter_fwd_ref(int n, int c, int m, const float *xu, const float *cu_in,
                                 int32_t *bucket, float *sum, int32_t *count, float *cu_out)
{
    for (int r = 0; r < n; r++) {
        const float *x = xu + (size_t)r * c;
        int best = 0;
        float best_s = -INFINITY;
        for (int j = 0; j < m; j++) {
            float s = 0.0f;
            for (int i = 0; i < c; i++)
                s += x[i] * cu_in[(size_t)j * c + i];
            if (s > best_s) {
                best_s = s;
                best = j;
            }
        }
        bucket[r] = best;
    }
    finish_centers(n, c, m, xu, cu_in, bucket, sum, count, cu_out);
}

size_t catanet_center_iter_work(int m)
{
    return (size_t)CATANET_ROW_CHUNK * m;
}

/* the similarities by sgemm in fixed row chunks; the sums stay sequential (bit-stable) */
void catanet_center_iter_fwd_cpu(const CatanetCpu *cpu, int n, int c, int m, const float *xu,
                                 const float *cu_in, int32_t *bucket, float *sum, int32_t *count,
                                 float *cu_out)
{
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
#pragma omp parallel num_threads(cpu->threads)
    {
        float *sim = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        CATANET_BLAS_SERIAL();
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int r0 = ch * CATANET_ROW_CHUNK;
            int rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, c, 1.0f,
                        xu + (size_t)r0 * c, c, cu_in, c, 0.0f, sim, m);
            for (int r = 0; r < rows; r++) {
                const float *s = sim + (size_t)r * m;
                int best = 0;
                for (int j = 1; j < m; j++)
                    if (s[j] > s[best])
                        best = j;
                bucket[r0 + r] = best;
            }
        }
    }
    finish_centers(n, c, m, xu, cu_in, bucket, sum, count, cu_out);
}

/* forward: cu_out[j] = normalize(sum_{r: bucket[r]=j} xu[r]) if count[j] > 0 (else a constant)
 * dxu[r] += normalize_bwd(sum[j], dcu_out[j]) for j = bucket[r], count[j] > 0.
 * (bucket indices carry no gradient; cu_in gets none: it is computed under no_grad) */
void catanet_center_iter_bwd_ref(int n, int c, int m, const int32_t *bucket, const float *sum,
                                 const int32_t *count, const float *cu_out, const float *dcu_out,
                                 float *dsum_work, float *dxu)
{
    /* dsum_work [M,C]: the gradient of each cluster sum */
    float nrm[CATANET_MAX_CENTERS];
    for (int j = 0; j < m; j++) {
        double s = 0.0;
        for (int i = 0; i < c; i++)
            s += (double)sum[(size_t)j * c + i] * sum[(size_t)j * c + i];
        nrm[j] = (float)sqrt(s);
    }
    memset(dsum_work, 0, sizeof(float) * (size_t)m * c);
    for (int j = 0; j < m; j++)
        if (count[j] > 0)
            catanet_normalize_bwd_ref(1, c, cu_out + (size_t)j * c, nrm + j, dcu_out + (size_t)j * c,
                                      dsum_work + (size_t)j * c);
    for (int r = 0; r < n; r++) {
        const float *g = dsum_work + (size_t)bucket[r] * c;
        float *d = dxu + (size_t)r * c;
        for (int i = 0; i < c; i++)
            d[i] += g[i];
    }
}
