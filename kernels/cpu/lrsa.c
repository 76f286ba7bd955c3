/*
 * lrsa.c: Local-Region Self-Attention, the attention half of the LRSA module: overlapping
 * ps x ps patches (2-pixel overlap, the last patch shifted to the edge), each
 * P + proj(MHSA(LN(P))), summed back into the image and divided band by band exactly as the
 * official patch_reverse does (weights 0.5, and 0.75/0.5625 at the quirk sizes, spec §1.4).
 * defines: catanet_lrsa_starts, catanet_lrsa_band_weights, catanet_lrsa_fwd_ref,
 *          catanet_lrsa_work, catanet_lrsa_fwd_cpu, catanet_lrsa_bwd_ref, catanet_lrsa_saved,
 *          catanet_lrsa_train_work, catanet_lrsa_task_work, catanet_lrsa_fwd_train_cpu,
 *          catanet_lrsa_bwd_cpu
 */
#include "blas.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static int lrsa_step(int h, int w, int ps)
{
    return (h == ps && w == ps) ? ps : ps - 2;
}

/* official: for i in range(0, len + step - ps, step): top = i if i + ps <= len else len - ps */
static int starts_with_step(int len, int ps, int step, int *starts, int max_starts)
{
    int count = 0;
    for (int i = 0; i < len + step - ps; i += step) {
        if (count < max_starts)
            starts[count] = i + ps <= len ? i : len - ps;
        count++;
    }
    return count;
}

int catanet_lrsa_starts(int len, int ps, int *starts, int max_starts)
{
    return starts_with_step(len, ps, ps - 2, starts, max_starts);
}

/* official patch_reverse: for the k-th start (k >= 1) at i = k*step: top = i or len-ps when
 * shifted, down = i + ps - step; rows [top, down) are divided by 2 (bands may stack). */
static void band_weights_with_step(int len, int ps, int step, float *weight)
{
    for (int r = 0; r < len; r++)
        weight[r] = 1.0f;
    int k = 0;
    for (int i = 0; i < len + step - ps; i += step, k++) {
        if (k == 0)
            continue;
        int top = i + ps <= len ? i : len - ps;
        int down = i + ps - step;
        for (int r = top; r < down && r < len; r++)
            weight[r] *= 0.5f;
    }
}

void catanet_lrsa_band_weights(int len, int ps, float *weight)
{
    band_weights_with_step(len, ps, ps - 2, weight);
}

/* x [H,W,C] -> out [H,W,C]; H, W >= ps */
void catanet_lrsa_fwd_ref(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                          float *out)
{
    int H = a->h, W = a->w, C = a->c, ps = a->ps, T = ps * ps;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv;
    int step = lrsa_step(H, W, ps);
    int nr = starts_with_step(H, ps, step, NULL, 0), nc = starts_with_step(W, ps, step, NULL, 0);
    int *rs = malloc(sizeof(int) * (nr + nc)), *cs = rs + nr;
    float *P = malloc(sizeof(float) * ((size_t)T * (2 * C + 2 * hq + 2 * hv) + T + H + W));
    float *Pn = P + (size_t)T * C, *Qm = Pn + (size_t)T * C, *Km = Qm + (size_t)T * hq;
    float *Vm = Km + (size_t)T * hq, *A = Vm + (size_t)T * hv, *s = A + (size_t)T * hv;
    float *wr = s + T, *wc = wr + H;
    double scale = 1.0 / sqrt((double)a->dqk);
    if (!rs || !P) { /* the reference path is for tests; they check sizes far below this */
        free(rs);
        free(P);
        return;
    }
    starts_with_step(H, ps, step, rs, nr);
    starts_with_step(W, ps, step, cs, nc);
    memset(out, 0, sizeof(float) * (size_t)H * W * C);
    for (int pr = 0; pr < nr; pr++)
        for (int pc = 0; pc < nc; pc++) {
            for (int t = 0; t < T; t++)
                memcpy(P + (size_t)t * C, x + ((size_t)(rs[pr] + t / ps) * W + cs[pc] + t % ps) * C,
                       sizeof(float) * C);
            catanet_layernorm_fwd_ref(T, C, P, wt->norm_w, wt->norm_b, Pn, NULL, NULL);
            catanet_linear_fwd_ref(T, C, hq, Pn, wt->wq, NULL, Qm);
            catanet_linear_fwd_ref(T, C, hq, Pn, wt->wk, NULL, Km);
            catanet_linear_fwd_ref(T, C, hv, Pn, wt->wv, NULL, Vm);
            for (int h = 0; h < a->heads; h++)
                for (int i = 0; i < T; i++) {
                    double mx = -INFINITY, sum = 0.0;
                    for (int j = 0; j < T; j++) {
                        double d = 0.0;
                        for (int e = 0; e < a->dqk; e++)
                            d += (double)Qm[(size_t)i * hq + h * a->dqk + e] *
                                 Km[(size_t)j * hq + h * a->dqk + e];
                        s[j] = (float)(d * scale);
                        mx = s[j] > mx ? s[j] : mx;
                    }
                    for (int j = 0; j < T; j++)
                        sum += exp(s[j] - mx);
                    for (int e = 0; e < a->dv; e++) {
                        double o = 0.0;
                        for (int j = 0; j < T; j++)
                            o += exp(s[j] - mx) / sum * Vm[(size_t)j * hv + h * a->dv + e];
                        A[(size_t)i * hv + h * a->dv + e] = (float)o;
                    }
                }
            /* P + proj(A), accumulated into the image */
            for (int t = 0; t < T; t++) {
                float *o = out + ((size_t)(rs[pr] + t / ps) * W + cs[pc] + t % ps) * C;
                for (int ch = 0; ch < C; ch++) {
                    double acc = 0.0;
                    for (int e = 0; e < hv; e++)
                        acc += (double)A[(size_t)t * hv + e] * wt->wproj[(size_t)ch * hv + e];
                    o[ch] += P[(size_t)t * C + ch] + (float)acc;
                }
            }
        }
    band_weights_with_step(H, ps, step, wr);
    band_weights_with_step(W, ps, step, wc);
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++)
            for (int ch = 0; ch < C; ch++)
                out[((size_t)y * W + xx) * C + ch] *= wr[y] * wc[xx];
    free(rs);
    free(P);
}

#define LRSA_ROW_BLOCK 64

/* Fast path scratch: thread 0's slice holds the patch being computed (shared by all threads:
 * P, LN(P), Y, Q, K, V, A); every slice ends with that thread's score block. */
static size_t patch_shared(const CatanetLrsaArgs *a)
{
    size_t T = (size_t)a->ps * a->ps, hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return T * a->c * 3 + T * (2 * hq + 2 * hv);
}

size_t catanet_lrsa_work(const CatanetLrsaArgs *a)
{
    size_t T = (size_t)a->ps * a->ps;
    size_t patch = patch_shared(a) + (size_t)LRSA_ROW_BLOCK * T;
    size_t bands = (size_t)a->h + a->w; /* the band weights reuse thread 0's slice */
    return patch > bands ? patch : bands;
}

#define LRSA_MAX_STARTS 4096

/* Patches in order (so the sum per pixel has a fixed order), each computed by the whole team:
 * rows of the patch in chunks for LayerNorm and the projections, (head, block of query rows)
 * tasks for the attention (a block's scores stay in cache between the GEMM, the softmax and the
 * second GEMM). Every value is computed by one task of a fixed partition, so the result does not
 * depend on the thread count; small frames with few patches still use every thread. */
void catanet_lrsa_fwd_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a,
                          const CatanetLrsaWeights *wt, const float *x, float *out)
{
    int H = a->h, W = a->w, C = a->c, ps = a->ps, T = ps * ps;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv;
    int step = lrsa_step(H, W, ps);
    int rs[LRSA_MAX_STARTS], cs[LRSA_MAX_STARTS];
    int nr = starts_with_step(H, ps, step, rs, LRSA_MAX_STARTS);
    int nc = starts_with_step(W, ps, step, cs, LRSA_MAX_STARTS);
    float *P = cpu->work, *Pn = P + (size_t)T * C, *Y = Pn + (size_t)T * C;
    float *Qm = Y + (size_t)T * C, *Km = Qm + (size_t)T * hq, *Vm = Km + (size_t)T * hq;
    float *A = Vm + (size_t)T * hv;
    size_t shared = patch_shared(a);
    int nblk = (T + LRSA_ROW_BLOCK - 1) / LRSA_ROW_BLOCK, ntask = a->heads * nblk;
    int nchunk = (T + LRSA_ROW_BLOCK - 1) / LRSA_ROW_BLOCK;
    float scale = 1.0f / sqrtf((float)a->dqk);
    memset(out, 0, sizeof(float) * (size_t)H * W * C);
#pragma omp parallel num_threads(cpu->threads)
    {
        CATANET_BLAS_SERIAL();
        float *S = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread + shared;
        for (int pr = 0; pr < nr; pr++)
            for (int pc = 0; pc < nc; pc++) {
                int top = rs[pr], left = cs[pc];
                /* gather, LayerNorm, q/k/v for row chunks of the patch */
#pragma omp for schedule(static)
                for (int ch = 0; ch < nchunk; ch++) {
                    int t0 = ch * LRSA_ROW_BLOCK, rows = T - t0 < LRSA_ROW_BLOCK ? T - t0 : LRSA_ROW_BLOCK;
                    for (int t = t0; t < t0 + rows; t++)
                        memcpy(P + (size_t)t * C, x + ((size_t)(top + t / ps) * W + left + t % ps) * C,
                               sizeof(float) * C);
                    CatanetCpu one = { 1, NULL, 0 };
                    catanet_layernorm_fwd_cpu(&one, rows, C, P + (size_t)t0 * C, wt->norm_w, wt->norm_b,
                                              Pn + (size_t)t0 * C);
                    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, hq, C, 1.0f, Pn + (size_t)t0 * C,
                                C, wt->wq, C, 0.0f, Qm + (size_t)t0 * hq, hq);
                    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, hq, C, 1.0f, Pn + (size_t)t0 * C,
                                C, wt->wk, C, 0.0f, Km + (size_t)t0 * hq, hq);
                    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, hv, C, 1.0f, Pn + (size_t)t0 * C,
                                C, wt->wv, C, 0.0f, Vm + (size_t)t0 * hv, hv);
                }
                /* attention: one task per (head, block of query rows) */
#pragma omp for schedule(static)
                for (int task = 0; task < ntask; task++) {
                    int h = task / nblk, r0 = task % nblk * LRSA_ROW_BLOCK;
                    int rows = T - r0 < LRSA_ROW_BLOCK ? T - r0 : LRSA_ROW_BLOCK;
                    catanet_attention_fwd_cpu(rows, T, a->dqk, a->dv, scale, Qm + (size_t)r0 * hq + h * a->dqk, hq,
                                              Km + h * a->dqk, hq, Vm + h * a->dv, hv, A + (size_t)r0 * hv + h * a->dv,
                                              hv, 0, S, NULL);
                }
                /* P + proj(A), added into the image (the rows of one patch are distinct pixels) */
#pragma omp for schedule(static)
                for (int ch = 0; ch < nchunk; ch++) {
                    int t0 = ch * LRSA_ROW_BLOCK, rows = T - t0 < LRSA_ROW_BLOCK ? T - t0 : LRSA_ROW_BLOCK;
                    memcpy(Y + (size_t)t0 * C, P + (size_t)t0 * C, sizeof(float) * (size_t)rows * C);
                    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, C, hv, 1.0f, A + (size_t)t0 * hv,
                                hv, wt->wproj, hv, 1.0f, Y + (size_t)t0 * C, C);
                    for (int t = t0; t < t0 + rows; t++) {
                        float *o = out + ((size_t)(top + t / ps) * W + left + t % ps) * C;
                        const float *y = Y + (size_t)t * C;
                        for (int ch2 = 0; ch2 < C; ch2++)
                            o[ch2] += y[ch2];
                    }
                }
            }
    }
    float *wr = cpu->work, *wc = cpu->work + H; /* scratch is free again; H+W <= work size */
    band_weights_with_step(H, ps, step, wr);
    band_weights_with_step(W, ps, step, wc);
#pragma omp parallel for num_threads(cpu->threads) schedule(static)
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            float f = wr[y] * wc[xx];
            float *o = out + ((size_t)y * W + xx) * C;
            for (int ch = 0; ch < C; ch++)
                o[ch] *= f;
        }
}

/* ---------------- backward ----------------
 * forward per patch P (pixels gathered from x): Y = P + (softmax(Q K^T s) V) Wproj^T, with
 * Q,K,V = LN(P) Wq^T, Wk^T, Wv^T per head; out = (sum of Y over patches) * wr[row] * wc[col].
 * Backward: dY = dout * wr * wc (the same band factors); dP = dY + LN_bwd(linear_bwd(attn_bwd(dY)));
 * each patch's dP is scatter-added into dx (overlaps sum). The weight gradients sum over patches. */
static void attn_bwd_head_ref(int T, int dqk, int dvd, int hq, int hv, double scale,
                              const float *Q, const float *K, const float *V, const float *dA,
                              float *dQ, float *dK, float *dV, double *s)
{
    for (int i = 0; i < T; i++) {
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; j++) {
            double d = 0.0;
            for (int e = 0; e < dqk; e++)
                d += (double)Q[(size_t)i * hq + e] * K[(size_t)j * hq + e];
            s[j] = d * scale;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < T; j++) {
            s[j] = exp(s[j] - mx);
            sum += s[j];
        }
        double D = 0.0;
        for (int j = 0; j < T; j++) {
            s[j] /= sum;
            double dp = 0.0;
            for (int e = 0; e < dvd; e++)
                dp += (double)dA[(size_t)i * hv + e] * V[(size_t)j * hv + e];
            D += s[j] * dp;
        }
        for (int j = 0; j < T; j++) {
            double dp = 0.0;
            for (int e = 0; e < dvd; e++)
                dp += (double)dA[(size_t)i * hv + e] * V[(size_t)j * hv + e];
            double ds = s[j] * (dp - D) * scale;
            for (int e = 0; e < dqk; e++) {
                dQ[(size_t)i * hq + e] += (float)(ds * K[(size_t)j * hq + e]);
                dK[(size_t)j * hq + e] += (float)(ds * Q[(size_t)i * hq + e]);
            }
            for (int e = 0; e < dvd; e++)
                dV[(size_t)j * hv + e] += (float)(s[j] * dA[(size_t)i * hv + e]);
        }
    }
}

void catanet_lrsa_bwd_ref(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                          const float *dout, float *dx, const CatanetLrsaGrads *g)
{
    int H = a->h, W = a->w, C = a->c, ps = a->ps, T = ps * ps;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv;
    int step = lrsa_step(H, W, ps);
    int nr = starts_with_step(H, ps, step, NULL, 0), nc = starts_with_step(W, ps, step, NULL, 0);
    int *rs = malloc(sizeof(int) * (nr + nc)), *cs = rs ? rs + nr : NULL;
    size_t fl = (size_t)T * (4 * C + 4 * hq + 6 * hv) + 2 * T + H + W;
    float *P = malloc(sizeof(float) * fl);
    double *s = malloc(sizeof(double) * T);
    if (!rs || !P || !s) { /* test-only path */
        free(rs);
        free(P);
        free(s);
        return;
    }
    float *Pn = P + (size_t)T * C, *dY = Pn + (size_t)T * C, *dPn = dY + (size_t)T * C;
    float *Qm = dPn + (size_t)T * C, *Km = Qm + (size_t)T * hq, *dQ = Km + (size_t)T * hq;
    float *dK = dQ + (size_t)T * hq, *Vm = dK + (size_t)T * hq, *A = Vm + (size_t)T * hv;
    float *dA = A + (size_t)T * hv, *dV = dA + (size_t)T * hv, *mean = dV + (size_t)T * hv;
    float *rstd = mean + T, *wr = rstd + T, *wc = wr + H;
    double scale = 1.0 / sqrt((double)a->dqk);
    starts_with_step(H, ps, step, rs, nr);
    starts_with_step(W, ps, step, cs, nc);
    band_weights_with_step(H, ps, step, wr);
    band_weights_with_step(W, ps, step, wc);
    for (int pr = 0; pr < nr; pr++)
        for (int pc = 0; pc < nc; pc++) {
            for (int t = 0; t < T; t++) {
                int yy = rs[pr] + t / ps, xx = cs[pc] + t % ps;
                memcpy(P + (size_t)t * C, x + ((size_t)yy * W + xx) * C, sizeof(float) * C);
                for (int ch = 0; ch < C; ch++)
                    dY[(size_t)t * C + ch] = dout[((size_t)yy * W + xx) * C + ch] * (wr[yy] * wc[xx]);
            }
            catanet_layernorm_fwd_ref(T, C, P, wt->norm_w, wt->norm_b, Pn, mean, rstd);
            catanet_linear_fwd_ref(T, C, hq, Pn, wt->wq, NULL, Qm);
            catanet_linear_fwd_ref(T, C, hq, Pn, wt->wk, NULL, Km);
            catanet_linear_fwd_ref(T, C, hv, Pn, wt->wv, NULL, Vm);
            /* A (needed for dWproj) */
            for (int h = 0; h < a->heads; h++)
                for (int i = 0; i < T; i++) {
                    double mx = -INFINITY, sum = 0.0;
                    for (int j = 0; j < T; j++) {
                        double d = 0.0;
                        for (int e = 0; e < a->dqk; e++)
                            d += (double)Qm[(size_t)i * hq + h * a->dqk + e] * Km[(size_t)j * hq + h * a->dqk + e];
                        s[j] = d * scale;
                        mx = s[j] > mx ? s[j] : mx;
                    }
                    for (int j = 0; j < T; j++)
                        sum += exp(s[j] - mx);
                    for (int e = 0; e < a->dv; e++) {
                        double o = 0.0;
                        for (int j = 0; j < T; j++)
                            o += exp(s[j] - mx) / sum * Vm[(size_t)j * hv + h * a->dv + e];
                        A[(size_t)i * hv + h * a->dv + e] = (float)o;
                    }
                }
            memset(dA, 0, sizeof(float) * (size_t)T * hv);
            memset(dQ, 0, sizeof(float) * (size_t)T * (2 * hq));
            memset(dV, 0, sizeof(float) * (size_t)T * hv);
            memset(dPn, 0, sizeof(float) * (size_t)T * C);
            catanet_linear_bwd_ref(T, hv, C, A, wt->wproj, dY, dA, g->wproj, NULL);
            for (int h = 0; h < a->heads; h++)
                attn_bwd_head_ref(T, a->dqk, a->dv, hq, hv, scale, Qm + h * a->dqk, Km + h * a->dqk,
                                  Vm + h * a->dv, dA + h * a->dv, dQ + h * a->dqk, dK + h * a->dqk,
                                  dV + h * a->dv, s);
            catanet_linear_bwd_ref(T, C, hq, Pn, wt->wq, dQ, dPn, g->wq, NULL);
            catanet_linear_bwd_ref(T, C, hq, Pn, wt->wk, dK, dPn, g->wk, NULL);
            catanet_linear_bwd_ref(T, C, hv, Pn, wt->wv, dV, dPn, g->wv, NULL);
            /* dY becomes dP: the residual path plus the LayerNorm path */
            catanet_layernorm_bwd_ref(T, C, P, wt->norm_w, mean, rstd, dPn, dY, g->norm_w, g->norm_b);
            for (int t = 0; t < T; t++) {
                float *d = dx + ((size_t)(rs[pr] + t / ps) * W + cs[pc] + t % ps) * C;
                for (int ch = 0; ch < C; ch++)
                    d[ch] += dY[(size_t)t * C + ch];
            }
        }
    free(rs);
    free(P);
    free(s);
}

/* ---------------- training: the forward keeps what the backward needs ----------------
 * Both run one patch per task, over all the batch's patches (dynamic schedule, serial BLAS). A
 * task writes only its own slices (its saved activations, its result in task_work), which are then
 * added in patch order, so the result does not depend on the thread count. The forward keeps per
 * patch Q, K, V, the attention output A and each row's log-sum-exp; the backward recomputes only
 * the LayerNorm (cheap) and the scores, not the softmax's maximum and sum nor A. */

/* query rows per block of the fast backward: a block's score rows stay in cache */
#define LRSA_BWD_ROWS CATANET_ATT_BWD_ROWS

/* floats saved per patch: Q, K [T][hq], V, A [T][hv], lse [heads][T] */
static size_t patch_saved(const CatanetLrsaArgs *a)
{
    size_t T = (size_t)a->ps * a->ps;
    return T * (2 * (size_t)a->heads * a->dqk + 2 * (size_t)a->heads * a->dv + a->heads);
}

/* a task's slice of task_work: the patch's result (forward) or input gradient (backward) [T][C],
 * then its weight gradients (norm w, norm b, q, k, v, proj) */
static size_t task_size(const CatanetLrsaArgs *a)
{
    size_t hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return (size_t)a->ps * a->ps * a->c + 2 * (size_t)a->c + 2 * hq * a->c + 2 * hv * a->c;
}

static int patch_grid(const CatanetLrsaArgs *a, int *rs, int *cs, int *nc)
{
    int step = lrsa_step(a->h, a->w, a->ps);
    int nr = starts_with_step(a->h, a->ps, step, rs, rs ? LRSA_MAX_STARTS : 0);
    *nc = starts_with_step(a->w, a->ps, step, cs, cs ? LRSA_MAX_STARTS : 0);
    return nr * *nc;
}

size_t catanet_lrsa_saved(const CatanetLrsaArgs *a)
{
    int nc;
    return (size_t)patch_grid(a, NULL, NULL, &nc) * patch_saved(a);
}

size_t catanet_lrsa_task_work(const CatanetLrsaArgs *a)
{
    int nc;
    return (size_t)patch_grid(a, NULL, NULL, &nc) * task_size(a);
}

size_t catanet_lrsa_train_work(const CatanetLrsaArgs *a)
{
    size_t T = (size_t)a->ps * a->ps, hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return T * a->c * 3 + 2 * T + T * (2 * hq + 2 * hv) + 2 * (size_t)LRSA_BWD_ROWS * T;
}

/* img (one image [H,W,C]) += its patches' [T][C] slices (task_sz apart), per pixel in patch order;
 * then, with wr, every pixel times wr[row] wc[col]. Inside a parallel region: rows are split. */
static void add_patches(const CatanetLrsaArgs *a, int np, int nc, const int *rs, const int *cs,
                        const float *tasks, size_t task_sz, float *img, const float *wr, const float *wc)
{
    int W = a->w, C = a->c, ps = a->ps;
#pragma omp for schedule(static)
    for (int y = 0; y < a->h; y++) {
        for (int i = 0; i < np; i++) {
            int top = rs[i / nc], left = cs[i % nc];
            if (y < top || y >= top + ps)
                continue;
            float *d = img + ((size_t)y * W + left) * C;
            const float *s = tasks + (size_t)i * task_sz + (size_t)(y - top) * ps * C;
            for (int j = 0; j < ps * C; j++)
                d[j] += s[j];
        }
        if (wr)
            for (int xx = 0; xx < W; xx++) {
                float f = wr[y] * wc[xx];
                float *o = img + ((size_t)y * W + xx) * C;
                for (int ch = 0; ch < C; ch++)
                    o[ch] *= f;
            }
    }
}

/* one patch of the forward: Y = P + A Wproj^T into Y [T][C]; Q, K, V, A, lse into saved */
static void patch_fwd_train(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x, int top,
                            int left, float *buf, float *saved, float *Y)
{
    int W = a->w, C = a->c, ps = a->ps, T = ps * ps, dqk = a->dqk, dvd = a->dv;
    int hq = a->heads * dqk, hv = a->heads * dvd;
    float *P = buf, *Pn = P + (size_t)T * C, *mean = Pn + (size_t)T * C, *rstd = mean + T, *S = rstd + T;
    float *Qm = saved, *Km = Qm + (size_t)T * hq, *Vm = Km + (size_t)T * hq, *A = Vm + (size_t)T * hv;
    float *lse = A + (size_t)T * hv;
    float scale = 1.0f / sqrtf((float)dqk);
    for (int r = 0; r < ps; r++)
        memcpy(P + (size_t)r * ps * C, x + ((size_t)(top + r) * W + left) * C, sizeof(float) * ps * C);
    catanet_layernorm_fwd_serial_cpu(T, C, P, wt->norm_w, wt->norm_b, Pn, mean, rstd);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hq, C, 1.0f, Pn, C, wt->wq, C, 0.0f, Qm, hq);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hq, C, 1.0f, Pn, C, wt->wk, C, 0.0f, Km, hq);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hv, C, 1.0f, Pn, C, wt->wv, C, 0.0f, Vm, hv);
    for (int h = 0; h < a->heads; h++)
        catanet_attention_fwd_cpu(T, T, dqk, dvd, scale, Qm + h * dqk, hq, Km + h * dqk, hq, Vm + h * dvd, hv,
                                  A + h * dvd, hv, 0, S, lse + (size_t)h * T);
    memcpy(Y, P, sizeof(float) * (size_t)T * C);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, C, hv, 1.0f, A, hv, wt->wproj, hv, 1.0f, Y, C);
}

void catanet_lrsa_fwd_train_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                                int batch, const float *x, float *out, float *saved, float *task_work)
{
    int rs[LRSA_MAX_STARTS], cs[LRSA_MAX_STARTS], nc;
    int np = patch_grid(a, rs, cs, &nc), step = lrsa_step(a->h, a->w, a->ps);
    size_t img = (size_t)a->h * a->w * a->c, tsz = task_size(a), ssz = patch_saved(a);
    float wr[4096], wc[4096]; /* H, W <= 4096 is checked by the caller's plan */
    band_weights_with_step(a->h, a->ps, step, wr);
    band_weights_with_step(a->w, a->ps, step, wc);
    memset(out, 0, sizeof(float) * img * batch);
#pragma omp parallel num_threads(cpu->threads)
    {
        CATANET_BLAS_SERIAL();
        float *buf = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < batch * np; t++)
            patch_fwd_train(a, wt, x + (size_t)(t / np) * img, rs[t % np / nc], cs[t % np % nc], buf,
                            saved + (size_t)t * ssz, task_work + (size_t)t * tsz);
        for (int b = 0; b < batch; b++)
            add_patches(a, np, nc, rs, cs, task_work + (size_t)b * np * tsz, tsz, out + (size_t)b * img, wr, wc);
    }
}

/* One patch of the backward from its saved activations: per head and block of query rows,
 * dQ = s dS K from the fused kernel, dV += S^T dA and dK += s dS^T Q by GEMMs from its transposed
 * S and dS. dPout gets the patch input's gradient, gw this patch's weight gradients. */
static void patch_bwd_cpu(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                          const float *saved, const float *dout, const float *wr, const float *wc, int top,
                          int left, float *buf, float *dPout, float *gw)
{
    int W = a->w, C = a->c, ps = a->ps, T = ps * ps, dqk = a->dqk, dvd = a->dv;
    int hq = a->heads * dqk, hv = a->heads * dvd;
    const float *Qm = saved, *Km = Qm + (size_t)T * hq, *Vm = Km + (size_t)T * hq, *A = Vm + (size_t)T * hv;
    const float *lse = A + (size_t)T * hv;
    float *P = buf, *Pn = P + (size_t)T * C, *mean = Pn + (size_t)T * C, *rstd = mean + T;
    float *dQ = rstd + T, *dK = dQ + (size_t)T * hq, *dA = dK + (size_t)T * hq, *dV = dA + (size_t)T * hv;
    float *dPn = dV + (size_t)T * hv, *S = dPn + (size_t)T * C, *dS = S + (size_t)LRSA_BWD_ROWS * T;
    float *gnw = gw, *gnb = gnw + C, *gq = gnb + C, *gk = gq + (size_t)hq * C, *gv = gk + (size_t)hq * C;
    float *gp = gv + (size_t)hv * C;
    float *dY = dPout; /* becomes dP in place */
    float scale = 1.0f / sqrtf((float)dqk);
    for (int r = 0; r < ps; r++) {
        int yy = top + r;
        memcpy(P + (size_t)r * ps * C, x + ((size_t)yy * W + left) * C, sizeof(float) * ps * C);
        for (int cc = 0; cc < ps; cc++) {
            float f = wr[yy] * wc[left + cc];
            const float *src = dout + ((size_t)yy * W + left + cc) * C;
            float *dst = dY + ((size_t)r * ps + cc) * C;
            for (int ch = 0; ch < C; ch++)
                dst[ch] = src[ch] * f;
        }
    }
    catanet_layernorm_fwd_serial_cpu(T, C, P, wt->norm_w, wt->norm_b, Pn, mean, rstd);
    /* Y = P + A Wproj^T: dA = dY Wproj */
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hv, C, 1.0f, dY, C, wt->wproj, hv, 0.0f,
                dA, hv);
    for (int h = 0; h < a->heads; h++) {
        const float *Qh = Qm + h * dqk, *Kh = Km + h * dqk, *Vh = Vm + h * dvd, *dAh = dA + h * dvd;
        for (int r0 = 0; r0 < T; r0 += LRSA_BWD_ROWS) {
            int rows = T - r0 < LRSA_BWD_ROWS ? T - r0 : LRSA_BWD_ROWS;
            float beta = r0 ? 1.0f : 0.0f;
            int R = catanet_attention_bwd_lse_cpu(rows, T, dqk, dvd, scale, Qh + (size_t)r0 * hq, hq, Kh, hq, Vh,
                                                  hv, dAh + (size_t)r0 * hv, hv, A + (size_t)r0 * hv + h * dvd, hv,
                                                  lse + (size_t)h * T + r0, dQ + (size_t)r0 * hq + h * dqk, hq, 0,
                                                  S, dS);
            if (R > 0) {
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dvd, rows, 1.0f, S, R,
                            dAh + (size_t)r0 * hv, hv, beta, dV + h * dvd, hv);
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dqk, rows, scale, dS, R,
                            Qh + (size_t)r0 * hq, hq, beta, dK + h * dqk, hq);
                continue;
            }
            /* heads wider than the fused kernel takes: GEMMs and the row softmax */
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, T, dqk, scale,
                        Qh + (size_t)r0 * hq, hq, Kh, hq, 0.0f, S, T);
            catanet_softmax_rows_cpu(rows, T, S);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dvd, rows, 1.0f, S, T,
                        dAh + (size_t)r0 * hv, hv, beta, dV + h * dvd, hv);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, T, dvd, 1.0f, dAh + (size_t)r0 * hv,
                        hv, Vh, hv, 0.0f, dS, T);
            catanet_softmax_bwd_rows_cpu(rows, T, S, dS);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dqk, T, scale, dS, T, Kh, hq, 0.0f,
                        dQ + (size_t)r0 * hq + h * dqk, hq);
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dqk, rows, scale, dS, T,
                        Qh + (size_t)r0 * hq, hq, beta, dK + h * dqk, hq);
        }
    }
    catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, hv, T, 1.0f, dY, C, A, hv, 0.0f, gp, hv);
    /* dPn = dQ Wq + dK Wk + dV Wv */
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, hq, 1.0f, dQ, hq, wt->wq, C, 0.0f, dPn, C);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, hq, 1.0f, dK, hq, wt->wk, C, 1.0f, dPn, C);
    catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, hv, 1.0f, dV, hv, wt->wv, C, 1.0f, dPn, C);
    catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hq, C, T, 1.0f, dQ, hq, Pn, C, 0.0f, gq, C);
    catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hq, C, T, 1.0f, dK, hq, Pn, C, 0.0f, gk, C);
    catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hv, C, T, 1.0f, dV, hv, Pn, C, 0.0f, gv, C);
    memset(gnw, 0, sizeof(float) * 2 * C);
    catanet_layernorm_bwd_serial_cpu(T, C, P, wt->norm_w, mean, rstd, dPn, dY, gnw, gnb);
}

void catanet_lrsa_bwd_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          int batch, const float *x, const float *saved, const float *dout, float *dx,
                          const CatanetLrsaGrads *g, float *task_work)
{
    int C = a->c, hq = a->heads * a->dqk, hv = a->heads * a->dv;
    int rs[LRSA_MAX_STARTS], cs[LRSA_MAX_STARTS], nc;
    int np = patch_grid(a, rs, cs, &nc), step = lrsa_step(a->h, a->w, a->ps);
    size_t img = (size_t)a->h * a->w * C, tsz = task_size(a), ssz = patch_saved(a);
    size_t pix = (size_t)a->ps * a->ps * C;
    float wr[4096], wc[4096]; /* H, W <= 4096 is checked by the caller's plan */
    band_weights_with_step(a->h, a->ps, step, wr);
    band_weights_with_step(a->w, a->ps, step, wc);
#pragma omp parallel num_threads(cpu->threads)
    {
        CATANET_BLAS_SERIAL();
        float *buf = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < batch * np; t++) {
            float *dP = task_work + (size_t)t * tsz;
            patch_bwd_cpu(a, wt, x + (size_t)(t / np) * img, saved + (size_t)t * ssz, dout + (size_t)(t / np) * img,
                          wr, wc, rs[t % np / nc], cs[t % np % nc], buf, dP, dP + pix);
        }
        for (int b = 0; b < batch; b++)
            add_patches(a, np, nc, rs, cs, task_work + (size_t)b * np * tsz, tsz, dx + (size_t)b * img, NULL, NULL);
    }
    /* the weight gradients, in patch order */
    for (int t = 0; t < batch * np; t++) {
        const float *gw = task_work + (size_t)t * tsz + pix;
        const float *gnb = gw + C, *gq = gnb + C, *gk = gq + (size_t)hq * C, *gv = gk + (size_t)hq * C;
        const float *gp = gv + (size_t)hv * C;
        for (int i = 0; i < C; i++) {
            g->norm_w[i] += gw[i];
            g->norm_b[i] += gnb[i];
        }
        for (size_t i = 0; i < (size_t)hq * C; i++) {
            g->wq[i] += gq[i];
            g->wk[i] += gk[i];
        }
        for (size_t i = 0; i < (size_t)hv * C; i++) {
            g->wv[i] += gv[i];
            g->wproj[i] += gp[i];
        }
    }
}
