/*
 * iasa.c: the attention of the Token Aggregation Block, fused: IASA (intra-group self-attention
 * over the cluster-sorted token sequence, each subgroup attending to itself and the next one)
 * plus IRCA (cross-attention to the token centers), two separate softmaxes summed per head.
 * defines: catanet_mirror_index, catanet_iasa_fwd_ref, catanet_iasa_work, catanet_iasa_fwd_cpu
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels.h"

/* Symmetric mirror extension of [0,n) (edge repeated): ... 1 0 | 0 1 ... n-1 | n-1 n-2 ...
 * The official code builds cat(k, flip(k[N-pad-gs:N])), i.e. position N+t -> N-1-t, which is
 * this function wherever the official code runs; where it crashes (gs < N < 1.5 gs, spec §1.8)
 * the reflection simply continues. */
int catanet_mirror_index(int64_t i, int n)
{
    if (i < 0)
        i = -1 - i;
    int64_t p = i % (2 * (int64_t)n);
    return (int)(p < n ? p : 2 * (int64_t)n - 1 - p);
}

/* Padded sequence position p -> token index: sorted position mirror(p), then ord. */
static int token_at(const CatanetIasaArgs *a, const int32_t *ord, int64_t p)
{
    return ord[catanet_mirror_index(p, a->n)];
}

/* softmax of s[0..len) in place, double accumulation (the spec) */
static void softmax_ref(int len, double *s)
{
    double mx = s[0];
    for (int i = 1; i < len; i++)
        mx = s[i] > mx ? s[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < len; i++) {
        s[i] = exp(s[i] - mx);
        sum += s[i];
    }
    for (int i = 0; i < len; i++)
        s[i] /= sum;
}

/* q,k [N,heads*dqk], v [N,heads*dv] (token order), ord [N], kg [M,heads*dqk], vg [M,heads*dv]
 * -> out [N,heads*dv] (token order) */
void catanet_iasa_fwd_ref(const CatanetIasaArgs *a, const float *q, const float *k, const float *v,
                          const int32_t *ord, const float *kg, const float *vg, float *out)
{
    int n = a->n, gs = a->group_size < n ? a->group_size : n;
    int ng = (n + gs - 1) / gs;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv;
    double scale = 1.0 / sqrt((double)a->dqk);
    double s_loc[2 * CATANET_MAX_GROUP_SIZE], s_glb[CATANET_MAX_CENTERS];
    for (int j = 0; j < ng; j++)
        for (int i = 0; i < gs; i++) {
            int64_t qp = (int64_t)j * gs + i;
            if (qp >= n)
                continue; /* padded query rows are computed by the official code, then dropped */
            int tq = ord[qp];
            for (int h = 0; h < a->heads; h++) {
                const float *qv = q + (size_t)tq * hq + h * a->dqk;
                /* own + next subgroup of the padded key sequence */
                for (int p = 0; p < 2 * gs; p++) {
                    const float *kv = k + (size_t)token_at(a, ord, (int64_t)j * gs + p) * hq + h * a->dqk;
                    double d = 0.0;
                    for (int e = 0; e < a->dqk; e++)
                        d += (double)qv[e] * kv[e];
                    s_loc[p] = d * scale;
                }
                softmax_ref(2 * gs, s_loc);
                for (int c = 0; c < a->m; c++) {
                    const float *kv = kg + (size_t)c * hq + h * a->dqk;
                    double d = 0.0;
                    for (int e = 0; e < a->dqk; e++)
                        d += (double)qv[e] * kv[e];
                    s_glb[c] = d * scale;
                }
                softmax_ref(a->m, s_glb);
                for (int e = 0; e < a->dv; e++) {
                    double o1 = 0.0, o2 = 0.0;
                    for (int p = 0; p < 2 * gs; p++)
                        o1 += s_loc[p] * v[(size_t)token_at(a, ord, (int64_t)j * gs + p) * hv + h * a->dv + e];
                    for (int c = 0; c < a->m; c++)
                        o2 += s_glb[c] * vg[(size_t)c * hv + h * a->dv + e];
                    out[(size_t)tq * hv + h * a->dv + e] = (float)(o1 + o2);
                }
            }
        }
}

/* per-thread scratch of the fast path, in floats */
size_t catanet_iasa_work(const CatanetIasaArgs *a)
{
    size_t gs = a->group_size < a->n ? a->group_size : a->n;
    size_t hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return gs * hq          /* Q of the subgroup */
           + 2 * gs * hq    /* K window */
           + 2 * gs * hv    /* V window */
           + gs * 2 * gs    /* local scores, one head */
           + gs * a->m      /* global scores, one head */
           + gs * hv;       /* output of the subgroup */
}

static void softmax_rows(int rows, int len, float *s)
{
    for (int r = 0; r < rows; r++) {
        float *x = s + (size_t)r * len;
        float mx = x[0];
        for (int i = 1; i < len; i++)
            mx = x[i] > mx ? x[i] : mx;
        float sum = 0.0f;
        for (int i = 0; i < len; i++) {
            x[i] = expf(x[i] - mx);
            sum += x[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < len; i++)
            x[i] *= inv;
    }
}

/* One task per subgroup: gather its queries and 2gs-wide key/value window, GEMMs per head,
 * scatter the real rows back. Only one subgroup's scores exist at a time per thread. */
void catanet_iasa_fwd_cpu(const CatanetCpu *cpu, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, float *out)
{
    int n = a->n, gs = a->group_size < n ? a->group_size : n;
    int ng = (n + gs - 1) / gs;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv, m = a->m;
    float scale = 1.0f / sqrtf((float)a->dqk);
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
#pragma omp for schedule(dynamic, 1)
    for (int j = 0; j < ng; j++) {
        float *Q = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        float *K = Q + (size_t)gs * hq, *V = K + (size_t)2 * gs * hq;
        float *S = V + (size_t)2 * gs * hv, *G = S + (size_t)gs * 2 * gs;
        float *O = G + (size_t)gs * m;
        int rows = n - j * gs < gs ? n - j * gs : gs; /* real query rows */
        for (int i = 0; i < rows; i++)
            memcpy(Q + (size_t)i * hq, q + (size_t)ord[j * gs + i] * hq, sizeof(float) * hq);
        for (int p = 0; p < 2 * gs; p++) {
            int t = token_at(a, ord, (int64_t)j * gs + p);
            memcpy(K + (size_t)p * hq, k + (size_t)t * hq, sizeof(float) * hq);
            memcpy(V + (size_t)p * hv, v + (size_t)t * hv, sizeof(float) * hv);
        }
        for (int h = 0; h < a->heads; h++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, 2 * gs, a->dqk, scale,
                        Q + h * a->dqk, hq, K + h * a->dqk, hq, 0.0f, S, 2 * gs);
            softmax_rows(rows, 2 * gs, S);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->dv, 2 * gs, 1.0f, S,
                        2 * gs, V + h * a->dv, hv, 0.0f, O + h * a->dv, hv);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, a->dqk, scale,
                        Q + h * a->dqk, hq, kg + h * a->dqk, hq, 0.0f, G, m);
            softmax_rows(rows, m, G);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->dv, m, 1.0f, G, m,
                        vg + h * a->dv, hv, 1.0f, O + h * a->dv, hv);
        }
        for (int i = 0; i < rows; i++)
            memcpy(out + (size_t)ord[j * gs + i] * hv, O + (size_t)i * hv, sizeof(float) * hv);
    }
    }
}
