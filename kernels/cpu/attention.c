/*
 * attention.c: fused softmax attention for a block of query rows, the inner loop of LRSA and IASA
 * on the CPU. Per query row: scores s_t = scale q . k_t for every key t, p = softmax(s), out = sum_t
 * p_t v_t. The fast path never stores a score matrix: the scores of 16 rows (16 T floats) stay
 * in cache between the pass that makes them, the exp pass and the pass that
 * multiplies them into V; no GEMM call, no packing, no reduction across vector lanes: a block of
 * 16 query rows is one vector, each key a broadcast, so the row maximum, the row sum and the
 * output are lane-wise. The head dimensions (9-10 in CATANet) are register arrays.
 * The vector code is written with GCC's vector extensions (vec.h), so one source gives the
 * AVX-512, AVX2+FMA and SSE2 clones, with FMA contraction.
 * Lane reductions (max, sums) run in a fixed order: the result does not depend on the thread
 * count, only on the clone the CPU picks.
 * defines: catanet_attention_fwd_ref, catanet_attention_fwd_cpu, catanet_attention_bwd_lse_cpu
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

#include "fastmath.h"
#include "vec.h"

/* ---- reference: plain loops, double sums, libm's exp ---- */
void catanet_attention_fwd_ref(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *k, int ldk, const float *v, int ldv, float *out, int ldo,
                               int accumulate, double *work, float *lse)
{
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (size_t)r * ldq;
        double mx = -INFINITY, sum = 0.0;
        for (int t = 0; t < T; t++) {
            double s = 0.0;
            for (int d = 0; d < dqk; d++)
                s += (double)qr[d] * k[(size_t)t * ldk + d];
            work[t] = s * scale;
            mx = work[t] > mx ? work[t] : mx;
        }
        for (int t = 0; t < T; t++) {
            work[t] = exp(work[t] - mx);
            sum += work[t];
        }
        for (int e = 0; e < dv; e++) {
            double o = 0.0;
            for (int t = 0; t < T; t++)
                o += work[t] * v[(size_t)t * ldv + e];
            float *dst = out + (size_t)r * ldo + e;
            *dst = (float)(o / sum) + (accumulate ? *dst : 0.0f);
        }
        if (lse)
            lse[r] = (float)(mx + log(sum));
    }
}

/* ---- fast path ---- */
FAST_BEGIN
/* query rows per block: one row per vector lane, so that max, sum and the output need no
 * reduction across lanes */
#define RB VL
/* head dimensions the block kernel keeps in registers; wider heads take the row loop below */
#define DMAX 16
/* keys per step of the score loop: independent FMA chains */
#define KU 8
/* keys per tile of the backward's two steps (16 KT floats of p and ds stay in L1) */
#define KT 64

/* x[d] = column d of the block's rows (times scale) as a vector over the rows, for d < DMAX;
 * zero past nr rows or n columns */
static inline __attribute__((always_inline)) void rows_to_lanes(int nr, int n, const float *src, int ld, float scale,
                                                               vf *x)
{
    for (int d = 0; d < DMAX; d++)
        for (int r = 0; r < RB; r++)
            x[d][r] = d < n && r < nr ? src[(size_t)r * ld + d] * scale : 0.0f;
}

/* s[u] = sum_{d < n} x[d] key_u[d] for the nk keys (KU or 1) at keys + u ld: the dot products of
 * the block's rows with nk keys, as nk independent FMA chains */
static inline __attribute__((always_inline)) void key_dots(int nk, int n, const vf *x, const float *keys, int ld,
                                                          vf *s)
{
    for (int u = 0; u < nk; u++)
        s[u] = (vf){ 0 };
#pragma GCC unroll 16
    for (int d = 0; d < DMAX; d++)
        if (d < n)
#pragma GCC unroll 8
            for (int u = 0; u < nk; u++)
                s[u] += x[d] * keys[(size_t)u * ld + d];
}

/* scores and softmax numerators of up to RB rows (nr) against all T keys, keys row-major
 * (k + t ldk): P + t stride gets exp(s_t - max) as a vector of the block's rows, *sum the row sums.
 * The forward and the backward both start here. */
CLONES_FMA static void block_exp_scores(int nr, int T, int dqk, float scale, const float *q, int ldq,
                                        const float *k, int ldk, float *P, size_t stride, vf *sum_out,
                                        vf *max_out)
{
    vf qt[DMAX];
    rows_to_lanes(nr, dqk, q, ldq, scale, qt);
    vf mx = (vf){ 0 } - INFINITY;
    int t = 0;
    for (; t + KU <= T; t += KU) {
        vf s[KU];
        key_dots(KU, dqk, qt, k + (size_t)t * ldk, ldk, s);
#pragma GCC unroll 8
        for (int u = 0; u < KU; u++) {
            VSTORE(P + (size_t)(t + u) * stride, s[u]);
            mx = VSELECT(s[u] > mx, s[u], mx);
        }
    }
    for (; t < T; t++) {
        vf s;
        key_dots(1, dqk, qt, k + (size_t)t * ldk, ldk, &s);
        VSTORE(P + (size_t)t * stride, s);
        mx = VSELECT(s > mx, s, mx);
    }
    vf sum = { 0 };
    for (t = 0; t < T; t++) {
        vf x, e;
        VLOAD(x, P + (size_t)t * stride);
        VEXP(e, x - mx);
        sum += e;
        VSTORE(P + (size_t)t * stride, e);
    }
    *sum_out = sum;
    *max_out = mx;
}

/* up to RB rows (nr) against all T keys: keys and values row-major (k + t ldk, v + t ldv),
 * P: RB T floats for the scores, kept key by key as vectors of the block's rows */
CLONES_FMA static void block_fwd(int nr, int T, int dqk, int dv, float scale, const float *q, int ldq,
                                 const float *k, int ldk, const float *v, int ldv, float *out, int ldo,
                                 int accumulate, float *P, float *lse)
{
    vf sum, mx;
    block_exp_scores(nr, T, dqk, scale, q, ldq, k, ldk, P, RB, &sum, &mx);
    vf acc[DMAX] = { 0 };
    for (int t = 0; t < T; t++) {
        vf p;
        VLOAD(p, P + (size_t)t * RB);
        const float *vr = v + (size_t)t * ldv;
#pragma GCC unroll 16
        for (int e = 0; e < DMAX; e++)
            if (e < dv)
                acc[e] += p * vr[e];
    }
    vf inv = 1.0f / sum;
    for (int e = 0; e < dv; e++) {
        vf o = acc[e] * inv;
        for (int r = 0; r < nr; r++) {
            float *dst = out + (size_t)r * ldo + e;
            *dst = o[r] + (accumulate ? *dst : 0.0f);
        }
    }
    if (lse)
        for (int r = 0; r < nr; r++)
            lse[r] = mx[r] + logf(sum[r]);
}

/* heads wider than DMAX: one row at a time, the same steps in scalar code */
static void row_fwd(int T, int dqk, int dv, float scale, const float *q, const float *k, int ldk, const float *v,
                    int ldv, float *out, int accumulate, float *w, float *lse)
{
    float mx = -INFINITY, sum = 0.0f;
    for (int t = 0; t < T; t++) {
        float s = 0.0f;
        for (int d = 0; d < dqk; d++)
            s += q[d] * scale * k[(size_t)t * ldk + d];
        w[t] = s;
        mx = s > mx ? s : mx;
    }
    for (int t = 0; t < T; t++) {
        EXP_POLY(w[t], w[t] - mx);
        sum += w[t];
    }
    for (int e = 0; e < dv; e++) {
        float o = 0.0f;
        for (int t = 0; t < T; t++)
            o += w[t] * v[(size_t)t * ldv + e];
        out[e] = o / sum + (accumulate ? out[e] : 0.0f);
    }
    if (lse)
        *lse = mx + logf(sum);
}

void catanet_attention_fwd_cpu(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *k, int ldk, const float *v, int ldv, float *out, int ldo,
                               int accumulate, float *work, float *lse)
{
    if (dqk > DMAX || dv > DMAX) {
        for (int r = 0; r < rows; r++)
            row_fwd(T, dqk, dv, scale, q + (size_t)r * ldq, k, ldk, v, ldv, out + (size_t)r * ldo, accumulate, work,
                    lse ? lse + r : NULL);
        return;
    }
    for (int r = 0; r < rows; r += RB)
        block_fwd(rows - r < RB ? rows - r : RB, T, dqk, dv, scale, q + (size_t)r * ldq, ldq, k, ldk, v, ldv,
                  out + (size_t)r * ldo, ldo, accumulate, work, lse ? lse + r : NULL);
}

/* ---- backward, from the forward's output and log-sum-exp: the same 16-row blocks ----
 * With lse_r = log sum_t exp(s_rt) kept by the forward and out (the forward's output) given,
 * p_t = exp(s_t - lse) needs no row maximum or sum, and D = dA . out no second product with V;
 * only the scores are recomputed (keeping them would cost T floats per row and head).
 * Pass 1, per tile of keys: s_t and p_t, then dp_t = dA . v_t and ds_t = p_t (dp_t - D), leaving
 * p and ds behind transposed ([T][R]) for the caller's dV and dK GEMMs; pass 2: dq = scale sum_t
 * ds_t k_t (apart, so that the head dimensions of q, dA and dq are not all live at once). */
/* p = exp(s - lse) into *pt */
static inline __attribute__((always_inline)) void bwd_p(vf s, vf lse, float *pt)
{
    vf p;
    VEXP(p, s - lse);
    VSTORE(pt, p);
}

/* ds = p (dp - D) into *dst, p from *pt */
static inline __attribute__((always_inline)) void bwd_ds(vf dp, vf D, const float *pt, float *dst)
{
    vf p;
    VLOAD(p, pt);
    vf ds = p * (dp - D);
    VSTORE(dst, ds);
}

CLONES_FMA static void block_bwd_lse(int nr, int T, int dqk, int dv, float scale, const float *q, int ldq,
                                     const float *k, int ldk, const float *v, int ldv, const float *da, int ldda,
                                     const float *out, int ldo, const float *lse, float *dq, int lddq,
                                     int acc_dq, float *pt, float *dst, int R)
{
    vf qt[DMAX], dat[DMAX], o[DMAX], l, D = { 0 };
    rows_to_lanes(nr, dqk, q, ldq, scale, qt);
    rows_to_lanes(nr, dv, da, ldda, 1.0f, dat);
    rows_to_lanes(nr, dv, out, ldo, 1.0f, o);
    for (int r = 0; r < RB; r++)
        l[r] = r < nr ? lse[r] : 0.0f;
    for (int e = 0; e < dv; e++)
        D += dat[e] * o[e];
    /* keys in tiles that stay in L1 between the two steps; KU keys at a time, so that the dot
     * products are independent FMA chains */
    for (int t0 = 0; t0 < T; t0 += KT) {
        int te = T - t0 < KT ? T : t0 + KT, t = t0;
        for (; t + KU <= te; t += KU) {
            vf s[KU];
            key_dots(KU, dqk, qt, k + (size_t)t * ldk, ldk, s);
#pragma GCC unroll 8
            for (int u = 0; u < KU; u++)
                bwd_p(s[u], l, pt + (size_t)(t + u) * R);
        }
        for (; t < te; t++) {
            vf s;
            key_dots(1, dqk, qt, k + (size_t)t * ldk, ldk, &s);
            bwd_p(s, l, pt + (size_t)t * R);
        }
        for (t = t0; t + KU <= te; t += KU) {
            vf dp[KU];
            key_dots(KU, dv, dat, v + (size_t)t * ldv, ldv, dp);
#pragma GCC unroll 8
            for (int u = 0; u < KU; u++)
                bwd_ds(dp[u], D, pt + (size_t)(t + u) * R, dst + (size_t)(t + u) * R);
        }
        for (; t < te; t++) {
            vf dp;
            key_dots(1, dv, dat, v + (size_t)t * ldv, ldv, &dp);
            bwd_ds(dp, D, pt + (size_t)t * R, dst + (size_t)t * R);
        }
    }
    vf dqa[DMAX] = { 0 };
    for (int t = 0; t < T; t++) {
        const float *kr = k + (size_t)t * ldk;
        vf ds;
        VLOAD(ds, dst + (size_t)t * R);
#pragma GCC unroll 16
        for (int d = 0; d < DMAX; d++)
            if (d < dqk)
                dqa[d] += ds * kr[d];
    }
    for (int r = 0; r < nr; r++)
        for (int d = 0; d < dqk; d++)
            dq[(size_t)r * lddq + d] = dqa[d][r] * scale + (acc_dq ? dq[(size_t)r * lddq + d] : 0.0f);
}

int catanet_attention_bwd_lse_cpu(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                                  const float *k, int ldk, const float *v, int ldv, const float *da, int ldda,
                                  const float *out, int ldo, const float *lse, float *dq, int lddq, int acc_dq,
                                  float *pt, float *dst)
{
    if (dqk > DMAX || dv > DMAX)
        return -1;
    int R = (rows + RB - 1) / RB * RB;
    for (int r = 0; r < rows; r += RB)
        block_bwd_lse(rows - r < RB ? rows - r : RB, T, dqk, dv, scale, q + (size_t)r * ldq, ldq, k, ldk, v, ldv,
                      da + (size_t)r * ldda, ldda, out + (size_t)r * ldo, ldo, lse + r, dq + (size_t)r * lddq, lddq,
                      acc_dq, pt + r, dst + r, R);
    return R;
}
FAST_END
