/*
 * iasa.c: the attention of the Token Aggregation Block, fused: IASA (intra-group self-attention
 * over the cluster-sorted token sequence, each subgroup attending to itself and the next one)
 * plus IRCA (cross-attention to the token centers), two separate softmaxes summed per head.
 * defines: catanet_mirror_index, catanet_iasa_fwd_ref, catanet_iasa_work, catanet_iasa_saved,
 *          catanet_iasa_fwd_cpu, catanet_iasa_bwd_ref, catanet_iasa_bwd_work, catanet_iasa_bwd_task_work,
 *          catanet_iasa_bwd_cpu
 */
#include "blas.h"
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
    size_t gs = a->group_size < a->n ? a->group_size : a->n, m = a->m;
    size_t hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return gs * hq                          /* Q of the subgroup */
           + 2 * gs * (hq + hv)             /* K and V window */
           + 16 * (2 * gs > m ? 2 * gs : m) /* the attention's scores of 16 rows */
           + gs * hv                        /* output of the subgroup */
           + 2 * (size_t)a->heads * gs;     /* its rows' log-sum-exps (training) */
}

size_t catanet_iasa_saved(const CatanetIasaArgs *a)
{
    return (size_t)a->n * ((size_t)a->heads * a->dv + 2 * (size_t)a->heads);
}


/* One task per subgroup: gather its queries and its 2gs-wide key/value window, then per head the
 * window's and the centers' attention (fused: no score matrix), summed, and scatter the real rows
 * back. For training (saved), the window's output and both softmaxes' log-sum-exps are kept per
 * token: saved [N][heads*dv] then [N][2*heads]. */
void catanet_iasa_fwd_cpu(const CatanetCpu *cpu, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, float *out, float *saved)
{
    int n = a->n, gs = a->group_size < n ? a->group_size : n;
    int ng = (n + gs - 1) / gs, W = 2 * gs, H = a->heads;
    int hq = H * a->dqk, hv = H * a->dv, m = a->m;
    float scale = 1.0f / sqrtf((float)a->dqk);
    float *O1s = saved, *Ls = saved ? saved + (size_t)n * hv : NULL;
#pragma omp parallel for num_threads(cpu->threads) schedule(dynamic, 1)
    for (int j = 0; j < ng; j++) {
        float *Q = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        float *K = Q + (size_t)gs * hq, *V = K + (size_t)W * hq;
        float *S = V + (size_t)W * hv, *O = S + 16 * (size_t)(W > m ? W : m), *L = O + (size_t)gs * hv;
        int rows = n - j * gs < gs ? n - j * gs : gs; /* real query rows */
        for (int i = 0; i < rows; i++)
            memcpy(Q + (size_t)i * hq, q + (size_t)ord[j * gs + i] * hq, sizeof(float) * hq);
        for (int p = 0; p < W; p++) {
            int t = token_at(a, ord, (int64_t)j * gs + p);
            memcpy(K + (size_t)p * hq, k + (size_t)t * hq, sizeof(float) * hq);
            memcpy(V + (size_t)p * hv, v + (size_t)t * hv, sizeof(float) * hv);
        }
        /* the window, then the centers added (heads are disjoint columns of O) */
        for (int h = 0; h < H; h++)
            catanet_attention_fwd_cpu(rows, W, a->dqk, a->dv, scale, Q + h * a->dqk, hq, K + h * a->dqk, hq,
                                      V + h * a->dv, hv, O + h * a->dv, hv, 0, S, saved ? L + (size_t)h * gs : NULL);
        if (saved)
            for (int i = 0; i < rows; i++)
                memcpy(O1s + (size_t)ord[j * gs + i] * hv, O + (size_t)i * hv, sizeof(float) * hv);
        for (int h = 0; h < H; h++)
            catanet_attention_fwd_cpu(rows, m, a->dqk, a->dv, scale, Q + h * a->dqk, hq, kg + h * a->dqk, hq,
                                      vg + h * a->dv, hv, O + h * a->dv, hv, 1, S,
                                      saved ? L + (size_t)(H + h) * gs : NULL);
        for (int i = 0; i < rows; i++) {
            memcpy(out + (size_t)ord[j * gs + i] * hv, O + (size_t)i * hv, sizeof(float) * hv);
            if (saved)
                for (int h = 0; h < 2 * H; h++)
                    Ls[(size_t)ord[j * gs + i] * 2 * H + h] = L[(size_t)h * gs + i];
        }
    }
}

/* ---------------- backward ----------------
 * forward, per real query row i of subgroup j and head h (softmaxes recomputed here):
 *   P = softmax(q_i K_w^T s), O1 = P V_w;   G = softmax(q_i kg^T s), O2 = G vg;   out = O1 + O2
 * with K_w, V_w the 2gs keys/values of the window (mirror copies included).
 * For each softmax: dP = dO V^T; dS = P (dP - sum(P dP)); dq += s dS K; dK += s dS^T q; dV += P^T dO.
 * Copies of a token (both windows it sits in, mirrored duplicates) all add into that token. */
void catanet_iasa_bwd_ref(const CatanetIasaArgs *a, const float *q, const float *k, const float *v,
                          const int32_t *ord, const float *kg, const float *vg, const float *dout,
                          float *dq, float *dk, float *dv, float *dkg, float *dvg)
{
    int n = a->n, gs = a->group_size < n ? a->group_size : n;
    int ng = (n + gs - 1) / gs;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv, dqk = a->dqk, dvd = a->dv;
    double scale = 1.0 / sqrt((double)dqk);
    static _Thread_local double s_loc[2 * CATANET_MAX_GROUP_SIZE], s_glb[CATANET_MAX_CENTERS];
    static _Thread_local int tok[2 * CATANET_MAX_GROUP_SIZE];
    for (int j = 0; j < ng; j++) {
        for (int p = 0; p < 2 * gs; p++)
            tok[p] = token_at(a, ord, (int64_t)j * gs + p);
        for (int i = 0; i < gs; i++) {
            int64_t qp = (int64_t)j * gs + i;
            if (qp >= n)
                continue; /* padded query rows are dropped by the forward: no gradient */
            int tq = ord[qp];
            for (int h = 0; h < a->heads; h++) {
                const float *qv = q + (size_t)tq * hq + h * dqk;
                const float *dov = dout + (size_t)tq * hv + h * dvd;
                float *dqv = dq + (size_t)tq * hq + h * dqk;
                /* local window */
                for (int p = 0; p < 2 * gs; p++) {
                    const float *kv = k + (size_t)tok[p] * hq + h * dqk;
                    double d = 0.0;
                    for (int e = 0; e < dqk; e++)
                        d += (double)qv[e] * kv[e];
                    s_loc[p] = d * scale;
                }
                softmax_ref(2 * gs, s_loc);
                double dsum = 0.0;
                for (int p = 0; p < 2 * gs; p++) {
                    const float *vv = v + (size_t)tok[p] * hv + h * dvd;
                    double dp = 0.0;
                    for (int e = 0; e < dvd; e++)
                        dp += (double)dov[e] * vv[e];
                    dsum += s_loc[p] * dp;
                }
                for (int p = 0; p < 2 * gs; p++) {
                    const float *kv = k + (size_t)tok[p] * hq + h * dqk;
                    const float *vv = v + (size_t)tok[p] * hv + h * dvd;
                    float *dkv = dk + (size_t)tok[p] * hq + h * dqk;
                    float *dvv = dv + (size_t)tok[p] * hv + h * dvd;
                    double dp = 0.0;
                    for (int e = 0; e < dvd; e++)
                        dp += (double)dov[e] * vv[e];
                    double ds = s_loc[p] * (dp - dsum) * scale;
                    for (int e = 0; e < dqk; e++) {
                        dqv[e] += (float)(ds * kv[e]);
                        dkv[e] += (float)(ds * qv[e]);
                    }
                    for (int e = 0; e < dvd; e++)
                        dvv[e] += (float)(s_loc[p] * dov[e]);
                }
                /* the token centers */
                for (int c = 0; c < a->m; c++) {
                    const float *kv = kg + (size_t)c * hq + h * dqk;
                    double d = 0.0;
                    for (int e = 0; e < dqk; e++)
                        d += (double)qv[e] * kv[e];
                    s_glb[c] = d * scale;
                }
                softmax_ref(a->m, s_glb);
                dsum = 0.0;
                for (int c = 0; c < a->m; c++) {
                    const float *vv = vg + (size_t)c * hv + h * dvd;
                    double dp = 0.0;
                    for (int e = 0; e < dvd; e++)
                        dp += (double)dov[e] * vv[e];
                    dsum += s_glb[c] * dp;
                }
                for (int c = 0; c < a->m; c++) {
                    const float *kv = kg + (size_t)c * hq + h * dqk;
                    const float *vv = vg + (size_t)c * hv + h * dvd;
                    double dp = 0.0;
                    for (int e = 0; e < dvd; e++)
                        dp += (double)dov[e] * vv[e];
                    double ds = s_glb[c] * (dp - dsum) * scale;
                    for (int e = 0; e < dqk; e++) {
                        dqv[e] += (float)(ds * kv[e]);
                        dkg[(size_t)c * hq + h * dqk + e] += (float)(ds * qv[e]);
                    }
                    for (int e = 0; e < dvd; e++)
                        dvg[(size_t)c * hv + h * dvd + e] += (float)(s_glb[c] * dov[e]);
                }
            }
        }
    }
}

size_t catanet_iasa_bwd_work(const CatanetIasaArgs *a)
{
    size_t gs = a->group_size < a->n ? a->group_size : a->n;
    size_t hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    size_t R = (gs + 15) / 16 * 16; /* the fused attention's rows, padded to whole vectors */
    return gs * hq * 2            /* Q, dQ */
           + 2 * gs * (hq + hv)   /* K, V window */
           + gs * hv * 3          /* dO, the window's and the centers' outputs */
           + 2 * a->heads * gs    /* the rows' log-sum-exps */
           + 2 * 2 * gs * R       /* P, dP */
           + 2 * a->m * R         /* G, dG */
           + gs;                  /* row sums */
}

size_t catanet_iasa_bwd_task_work(const CatanetIasaArgs *a)
{
    size_t gs = a->group_size < a->n ? a->group_size : a->n;
    size_t ng = (a->n + gs - 1) / gs;
    size_t hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return ng * (2 * gs + a->m) * (hq + hv);
}

/* dS = P (dP - rowsum(P dP)) in place of dP */
/* One task per subgroup, as the forward. Each task writes its window's key/value gradients and
 * its share of dkg/dvg to its own slice of task_work; they are then added in task order, so
 * the result does not depend on the thread count. dq rows belong to one task each. */
void catanet_iasa_bwd_cpu(const CatanetCpu *cpu, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, const float *out, const float *saved, const float *dout, float *dq,
                          float *dk, float *dv, float *dkg, float *dvg, float *task_work)
{
    int H = a->heads;
    const float *O1s = saved, *Ls = saved + (size_t)a->n * H * a->dv;
    int n = a->n, gs = a->group_size < n ? a->group_size : n;
    int ng = (n + gs - 1) / gs;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv, m = a->m, dqk = a->dqk, dvd = a->dv;
    float scale = 1.0f / sqrtf((float)dqk);
    size_t task_sz = (size_t)(2 * gs + m) * (hq + hv);
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
#pragma omp for schedule(dynamic, 1)
    for (int j = 0; j < ng; j++) {
        float *Q = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        float *dQ = Q + (size_t)gs * hq, *K = dQ + (size_t)gs * hq, *V = K + (size_t)2 * gs * hq;
        float *dO = V + (size_t)2 * gs * hv, *P = dO + (size_t)gs * hv, *dP = P + (size_t)2 * gs * ((gs + 15) / 16 * 16);
        size_t R = (size_t)(gs + 15) / 16 * 16;
        float *G = dP + (size_t)2 * gs * R, *dG = G + (size_t)m * R, *O1 = dG + (size_t)m * R;
        float *O2 = O1 + (size_t)gs * hv, *L = O2 + (size_t)gs * hv;
        float *dK = task_work + (size_t)j * task_sz, *dV = dK + (size_t)2 * gs * hq;
        float *dkgp = dV + (size_t)2 * gs * hv, *dvgp = dkgp + (size_t)m * hq;
        int rows = n - j * gs < gs ? n - j * gs : gs;
        for (int i = 0; i < rows; i++) {
            int t = ord[j * gs + i];
            memcpy(Q + (size_t)i * hq, q + (size_t)t * hq, sizeof(float) * hq);
            memcpy(dO + (size_t)i * hv, dout + (size_t)t * hv, sizeof(float) * hv);
            /* the window's output and the centers' (the rest of out) */
            for (int e = 0; e < hv; e++) {
                O1[(size_t)i * hv + e] = O1s[(size_t)t * hv + e];
                O2[(size_t)i * hv + e] = out[(size_t)t * hv + e] - O1s[(size_t)t * hv + e];
            }
            for (int h = 0; h < 2 * H; h++)
                L[(size_t)h * gs + i] = Ls[(size_t)t * 2 * H + h];
        }
        for (int p = 0; p < 2 * gs; p++) {
            int t = token_at(a, ord, (int64_t)j * gs + p);
            memcpy(K + (size_t)p * hq, k + (size_t)t * hq, sizeof(float) * hq);
            memcpy(V + (size_t)p * hv, v + (size_t)t * hv, sizeof(float) * hv);
        }
        for (int h = 0; h < a->heads; h++) {
            const float *Qh = Q + h * dqk, *Kh = K + h * dqk, *Vh = V + h * dvd, *dOh = dO + h * dvd;
            /* fused: each softmax's probabilities and dQ in one kernel from the forward's outputs and
             * log-sum-exps (the output is out = O1 + O2, so each gets dO); dK, dV of the window and
             * of the centers by GEMMs from its transposed P and dS */
            int Rl = catanet_attention_bwd_lse_cpu(rows, 2 * gs, dqk, dvd, scale, Qh, hq, Kh, hq, Vh, hv, dOh, hv,
                                                   O1 + h * dvd, hv, L + (size_t)h * gs, dQ + h * dqk, hq, 0, P, dP);
            if (Rl > 0) {
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2 * gs, dvd, rows, 1.0f, P, Rl, dOh, hv,
                            0.0f, dV + h * dvd, hv);
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2 * gs, dqk, rows, scale, dP, Rl, Qh, hq,
                            0.0f, dK + h * dqk, hq);
                catanet_attention_bwd_lse_cpu(rows, m, dqk, dvd, scale, Qh, hq, kg + h * dqk, hq, vg + h * dvd, hv,
                                              dOh, hv, O2 + h * dvd, hv, L + (size_t)(H + h) * gs, dQ + h * dqk, hq,
                                              1, G, dG);
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dvd, rows, 1.0f, G, Rl, dOh, hv, 0.0f,
                            dvgp + h * dvd, hv);
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, dqk, rows, scale, dG, Rl, Qh, hq, 0.0f,
                            dkgp + h * dqk, hq);
                continue;
            }
            /* local */
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, 2 * gs, dqk, scale, Qh, hq,
                        Kh, hq, 0.0f, P, 2 * gs);
            catanet_softmax_rows_cpu(rows, 2 * gs, P);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 2 * gs, dvd, rows, 1.0f, P, 2 * gs,
                        dOh, hv, 0.0f, dV + h * dvd, hv);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, 2 * gs, dvd, 1.0f, dOh, hv,
                        Vh, hv, 0.0f, dP, 2 * gs);
            catanet_softmax_bwd_rows_cpu(rows, 2 * gs, P, dP);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dqk, 2 * gs, scale, dP,
                        2 * gs, Kh, hq, 0.0f, dQ + h * dqk, hq);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 2 * gs, dqk, rows, scale, dP,
                        2 * gs, Qh, hq, 0.0f, dK + h * dqk, hq);
            /* centers */
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, dqk, scale, Qh, hq,
                        kg + h * dqk, hq, 0.0f, G, m);
            catanet_softmax_rows_cpu(rows, m, G);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, dvd, rows, 1.0f, G, m, dOh, hv,
                        0.0f, dvgp + h * dvd, hv);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, m, dvd, 1.0f, dOh, hv,
                        vg + h * dvd, hv, 0.0f, dG, m);
            catanet_softmax_bwd_rows_cpu(rows, m, G, dG);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dqk, m, scale, dG, m,
                        kg + h * dqk, hq, 1.0f, dQ + h * dqk, hq);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, dqk, rows, scale, dG, m, Qh, hq,
                        0.0f, dkgp + h * dqk, hq);
        }
        for (int i = 0; i < rows; i++) {
            float *d = dq + (size_t)ord[j * gs + i] * hq;
            const float *s = dQ + (size_t)i * hq;
            for (int e = 0; e < hq; e++)
                d[e] += s[e];
        }
    }
    }
    /* the shared gradients, in task order */
    for (int j = 0; j < ng; j++) {
        const float *dK = task_work + (size_t)j * task_sz, *dV = dK + (size_t)2 * gs * hq;
        const float *dkgp = dV + (size_t)2 * gs * hv, *dvgp = dkgp + (size_t)m * hq;
        for (int p = 0; p < 2 * gs; p++) {
            int t = token_at(a, ord, (int64_t)j * gs + p);
            float *dkt = dk + (size_t)t * hq, *dvt = dv + (size_t)t * hv;
            for (int e = 0; e < hq; e++)
                dkt[e] += dK[(size_t)p * hq + e];
            for (int e = 0; e < hv; e++)
                dvt[e] += dV[(size_t)p * hv + e];
        }
        for (size_t e = 0; e < (size_t)m * hq; e++)
            dkg[e] += dkgp[e];
        for (size_t e = 0; e < (size_t)m * hv; e++)
            dvg[e] += dvgp[e];
    }
}
