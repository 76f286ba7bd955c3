/*
 * cluster.c: content-aware token aggregation (CATA): each token goes to its most similar
 * token center (cosine similarity, first index on ties), then tokens are ordered by center
 * with a stable counting sort (ties keep ascending token order, as PyTorch's CUDA sort does).
 * defines: catanet_cluster_fwd_ref, catanet_cluster_fwd_cpu
 */
#include "blas.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels.h"

/* F.normalize: v / max(|v|, 1e-12) */
static void unit(int c, const float *v, float *u)
{
    double s = 0.0;
    for (int i = 0; i < c; i++)
        s += (double)v[i] * v[i];
    double n = sqrt(s);
    float inv = (float)(1.0 / (n > 1e-12 ? n : 1e-12));
    for (int i = 0; i < c; i++)
        u[i] = v[i] * inv;
}

/* stable counting sort of token ids by center id: ord lists tokens of center 0, then 1, ... */
static void counting_sort(int n, int m, const int32_t *cid, int32_t *ord, int32_t *start)
{
    memset(start, 0, sizeof(*start) * (m + 1));
    for (int i = 0; i < n; i++)
        start[cid[i] + 1]++;
    for (int j = 0; j < m; j++)
        start[j + 1] += start[j];
    for (int i = 0; i < n; i++)
        ord[start[cid[i]]++] = i;
}

/* xn [N,C], centers [M,C] -> cid [N], ord [N] */
void catanet_cluster_fwd_ref(int n, int c, int m, const float *xn, const float *centers,
                             int32_t *cid, int32_t *ord)
{
    float u[CATANET_MAX_DIM], cu[CATANET_MAX_DIM];
    int32_t start[CATANET_MAX_CENTERS + 1];
    for (int i = 0; i < n; i++) {
        unit(c, xn + (size_t)i * c, u);
        int best = 0;
        float best_s = -INFINITY;
        for (int j = 0; j < m; j++) {
            unit(c, centers + (size_t)j * c, cu);
            float s = 0.0f;
            for (int d = 0; d < c; d++)
                s += u[d] * cu[d];
            if (s > best_s) {   /* strict: the first maximum wins */
                best_s = s;
                best = j;
            }
        }
        cid[i] = best;
    }
    counting_sort(n, m, cid, ord, start);
}

size_t catanet_cluster_work(int c, int m)
{
    return (size_t)CATANET_ROW_CHUNK * (m + c) + (size_t)m * c;
}

void catanet_cluster_fwd_cpu(const CatanetCpu *cpu, int n, int c, int m, const float *xn,
                             const float *centers, int32_t *cid, int32_t *ord)
{
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
    int32_t start[CATANET_MAX_CENTERS + 1];
#pragma omp parallel num_threads(cpu->threads)
    {
        float *sim = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        float *u = sim + (size_t)CATANET_ROW_CHUNK * m;
        float *cu = u + (size_t)CATANET_ROW_CHUNK * c;
        CATANET_BLAS_SERIAL();
        for (int j = 0; j < m; j++)
            unit(c, centers + (size_t)j * c, cu + (size_t)j * c);
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int r0 = ch * CATANET_ROW_CHUNK;
            int rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
            for (int r = 0; r < rows; r++)
                unit(c, xn + (size_t)(r0 + r) * c, u + (size_t)r * c);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, c, 1.0f, u, c, cu, c,
                        0.0f, sim, m);
            for (int r = 0; r < rows; r++) {
                const float *s = sim + (size_t)r * m;
                int best = 0;
                for (int j = 1; j < m; j++)
                    if (s[j] > s[best])
                        best = j;
                cid[r0 + r] = best;
            }
        }
    }
    counting_sort(n, m, cid, ord, start);
}
