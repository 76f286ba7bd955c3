/*
 * lrsa.c: Local-Region Self-Attention, the attention half of the LRSA module: overlapping
 * ps x ps patches (2-pixel overlap, the last patch shifted to the edge), each
 * P + proj(MHSA(LN(P))), summed back into the image and divided band by band exactly as the
 * official patch_reverse does (weights 0.5, and 0.75/0.5625 at the quirk sizes, spec §1.4).
 * defines: catanet_lrsa_starts, catanet_lrsa_band_weights, catanet_lrsa_fwd_ref,
 *          catanet_lrsa_work, catanet_lrsa_fwd_cpu
 */
#include <cblas.h>
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

size_t catanet_lrsa_work(const CatanetLrsaArgs *a)
{
    size_t T = (size_t)a->ps * a->ps, hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    size_t patch = T * a->c * 3 + T * (2 * hq + 2 * hv) + T * T;
    size_t bands = (size_t)a->h + a->w; /* the band weights reuse thread 0's slice */
    return patch > bands ? patch : bands;
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

/* one patch: P + proj(MHSA(LN(P))) added into out (no band weights yet) */
static void patch_cpu(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                      int top, int left, float *buf, float *out)
{
    int W = a->w, C = a->c, ps = a->ps, T = ps * ps;
    int hq = a->heads * a->dqk, hv = a->heads * a->dv;
    float *P = buf, *Pn = P + (size_t)T * C, *Y = Pn + (size_t)T * C;
    float *Qm = Y + (size_t)T * C, *Km = Qm + (size_t)T * hq, *Vm = Km + (size_t)T * hq;
    float *A = Vm + (size_t)T * hv, *S = A + (size_t)T * hv;
    CatanetCpu one = { 1, NULL, 0 };
    for (int r = 0; r < ps; r++)
        memcpy(P + (size_t)r * ps * C, x + ((size_t)(top + r) * W + left) * C,
               sizeof(float) * ps * C);
    catanet_layernorm_fwd_cpu(&one, T, C, P, wt->norm_w, wt->norm_b, Pn);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hq, C, 1.0f, Pn, C, wt->wq, C, 0.0f,
                Qm, hq);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hq, C, 1.0f, Pn, C, wt->wk, C, 0.0f,
                Km, hq);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, hv, C, 1.0f, Pn, C, wt->wv, C, 0.0f,
                Vm, hv);
    float scale = 1.0f / sqrtf((float)a->dqk);
    for (int h = 0; h < a->heads; h++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, a->dqk, scale, Qm + h * a->dqk,
                    hq, Km + h * a->dqk, hq, 0.0f, S, T);
        softmax_rows(T, T, S);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, a->dv, T, 1.0f, S, T,
                    Vm + h * a->dv, hv, 0.0f, A + h * a->dv, hv);
    }
    memcpy(Y, P, sizeof(float) * (size_t)T * C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, C, hv, 1.0f, A, hv, wt->wproj, hv,
                1.0f, Y, C);
    for (int r = 0; r < ps; r++) {
        float *o = out + ((size_t)(top + r) * W + left) * C;
        const float *y = Y + (size_t)r * ps * C;
        for (int i = 0; i < ps * C; i++)
            o[i] += y[i];
    }
}

#define LRSA_MAX_STARTS 4096

/* Rows of patches overlap only their neighbours (at most two rows back, for the shifted last
 * one), so rows in the same class mod 3 never touch the same pixel: three parallel phases,
 * each row's patches in order. The sum order per pixel does not depend on the thread count. */
void catanet_lrsa_fwd_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a,
                          const CatanetLrsaWeights *wt, const float *x, float *out)
{
    int H = a->h, W = a->w, C = a->c, ps = a->ps;
    int step = lrsa_step(H, W, ps);
    int rs[LRSA_MAX_STARTS], cs[LRSA_MAX_STARTS];
    int nr = starts_with_step(H, ps, step, rs, LRSA_MAX_STARTS);
    int nc = starts_with_step(W, ps, step, cs, LRSA_MAX_STARTS);
    memset(out, 0, sizeof(float) * (size_t)H * W * C);
    for (int phase = 0; phase < 3; phase++) {
#pragma omp parallel num_threads(cpu->threads)
        {
        CATANET_BLAS_SERIAL();
#pragma omp for schedule(dynamic, 1)
        for (int pr = phase; pr < nr; pr += 3) {
            float *buf = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
            for (int pc = 0; pc < nc; pc++)
                patch_cpu(a, wt, x, rs[pr], cs[pc], buf, out);
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
