/*
 * attention.c: fused softmax attention for a block of query rows, the inner loop of LRSA and IASA
 * on the CPU. Per query row: scores s_t = scale q . k_t for every key t, p = softmax(s), out = sum_t
 * p_t v_t. The fast path never stores a score matrix: two rows at a time, the scores of one row
 * pair (2 T floats) stay in L1 between the pass that makes them, the exp pass and the pass that
 * multiplies them into V; no GEMM call, no packing. Keys and values come transposed (kt [dqk][T],
 * vt [dv][T]) so that every inner loop runs along t in whole vectors, and the head dimensions
 * (9-10 in CATANet) are the short loops.
 * The vector code is written with GCC's vector extensions (vec.h), so one source gives the
 * AVX-512, AVX2+FMA and SSE2 clones, with FMA contraction.
 * Lane reductions (max, sums) run in a fixed order: the result does not depend on the thread
 * count, only on the clone the CPU picks.
 * defines: catanet_attention_fwd_ref, catanet_attention_fwd_cpu
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

#include "fastmath.h"
#include "vec.h"

/* ---- reference: plain loops, double sums, libm's exp ---- */
void catanet_attention_fwd_ref(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *kt, int ldk, const float *vt, int ldv, float *out, int ldo,
                               int accumulate, double *work)
{
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (size_t)r * ldq;
        double mx = -INFINITY, sum = 0.0;
        for (int t = 0; t < T; t++) {
            double s = 0.0;
            for (int d = 0; d < dqk; d++)
                s += (double)qr[d] * kt[(size_t)d * ldk + t];
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
                o += work[t] * vt[(size_t)e * ldv + t];
            float *dst = out + (size_t)r * ldo + e;
            *dst = (float)(o / sum) + (accumulate ? *dst : 0.0f);
        }
    }
}

/* ---- fast path ---- */
FAST_BEGIN
/* exp of every lane of x <= 0, the same steps as fastmath.h's EXP_POLY (Cody-Waite, degree 6) */
#define VEXP(out, xin)                                                                        \
    do {                                                                                      \
        vf lo_ = (vf){ 0 } - 87.3f, x_ = (xin);                                               \
        x_ = VSELECT(x_ < lo_, lo_, x_);                                                      \
        vf n_ = (x_ * 1.44269504088896341f + 12582912.0f) - 12582912.0f;                      \
        vf r_ = x_ - n_ * 0.693145751953125f;                                                 \
        r_ = r_ - n_ * 1.42860682030941723212e-6f;                                            \
        vf p_ = r_ * (1.0f / 720.0f) + 1.0f / 120.0f;                                         \
        p_ = p_ * r_ + 1.0f / 24.0f;                                                          \
        p_ = p_ * r_ + 1.0f / 6.0f;                                                           \
        p_ = p_ * r_ + 0.5f;                                                                  \
        p_ = p_ * r_ + 1.0f;                                                                  \
        p_ = p_ * r_ + 1.0f;                                                                  \
        vi s_ = (__builtin_convertvector(n_, vi) + 127) << 23;                                \
        (out) = p_ * (vf)s_;                                                                  \
    } while (0)

/* vectors per step of the long loops: independent FMA chains enough to cover the FMA latency */
#define UNROLL 4

/* rows r0 and r0 + 1 (two == 0: r0 alone): scores into w0 / w1 [T], then exp, then out */
CLONES_FMA static void rows_fwd(int two, int T, int dqk, int dv, float scale, const float *q0, const float *q1,
                                const float *kt, int ldk, const float *vt, int ldv, float *o0, float *o1,
                                int accumulate, float *w0, float *w1)
{
    float qs0[dqk], qs1[dqk];
    for (int d = 0; d < dqk; d++) {
        qs0[d] = q0[d] * scale;
        qs1[d] = two ? q1[d] * scale : 0.0f;
    }
    int body = T - T % VL, t = 0;
    vf m0 = (vf){ 0 } - INFINITY, m1 = m0;
    /* scores: UNROLL vectors of keys at a time, each k load serving both rows */
    for (; t + UNROLL * VL <= body; t += UNROLL * VL) {
        vf s0[UNROLL] = { 0 }, s1[UNROLL] = { 0 };
        for (int d = 0; d < dqk; d++) {
            const float *kd = kt + (size_t)d * ldk + t;
#pragma GCC unroll 4
            for (int u = 0; u < UNROLL; u++) {
                vf kv;
                VLOAD(kv, kd + u * VL);
                s0[u] += qs0[d] * kv;
                s1[u] += qs1[d] * kv;
            }
        }
#pragma GCC unroll 4
        for (int u = 0; u < UNROLL; u++) {
            VSTORE(w0 + t + u * VL, s0[u]);
            VSTORE(w1 + t + u * VL, s1[u]);
            m0 = VSELECT(s0[u] > m0, s0[u], m0);
            m1 = VSELECT(s1[u] > m1, s1[u], m1);
        }
    }
    for (; t < body; t += VL) {
        vf s0 = { 0 }, s1 = { 0 };
        for (int d = 0; d < dqk; d++) {
            vf kv;
            VLOAD(kv, kt + (size_t)d * ldk + t);
            s0 += qs0[d] * kv;
            s1 += qs1[d] * kv;
        }
        VSTORE(w0 + t, s0);
        VSTORE(w1 + t, s1);
        m0 = VSELECT(s0 > m0, s0, m0);
        m1 = VSELECT(s1 > m1, s1, m1);
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
    for (int j = 0; j < VL; j++) {
        mx0 = m0[j] > mx0 ? m0[j] : mx0;
        mx1 = m1[j] > mx1 ? m1[j] : mx1;
    }
    for (; t < T; t++) {
        float s0 = 0.0f, s1 = 0.0f;
        for (int d = 0; d < dqk; d++) {
            s0 += qs0[d] * kt[(size_t)d * ldk + t];
            s1 += qs1[d] * kt[(size_t)d * ldk + t];
        }
        w0[t] = s0;
        w1[t] = s1;
        mx0 = s0 > mx0 ? s0 : mx0;
        mx1 = s1 > mx1 ? s1 : mx1;
    }
    /* exp, in place, and the row sums */
    vf sum0 = { 0 }, sum1 = { 0 };
    for (t = 0; t < body; t += VL) {
        vf s0, s1, e0, e1;
        VLOAD(s0, w0 + t);
        VLOAD(s1, w1 + t);
        VEXP(e0, s0 - mx0);
        VEXP(e1, s1 - mx1);
        sum0 += e0;
        sum1 += e1;
        VSTORE(w0 + t, e0);
        VSTORE(w1 + t, e1);
    }
    float tot0 = 0.0f, tot1 = 0.0f;
    for (int j = 0; j < VL; j++) {
        tot0 += sum0[j];
        tot1 += sum1[j];
    }
    for (; t < T; t++) {
        EXP_POLY(w0[t], w0[t] - mx0);
        EXP_POLY(w1[t], w1[t] - mx1);
        tot0 += w0[t];
        tot1 += w1[t];
    }
    /* out = p V: per value channel, UNROLL accumulators a row, each v load serving both rows */
    float inv0 = 1.0f / tot0, inv1 = 1.0f / tot1;
    for (int e = 0; e < dv; e++) {
        const float *ve = vt + (size_t)e * ldv;
        vf a0[UNROLL] = { 0 }, a1[UNROLL] = { 0 };
        for (t = 0; t + UNROLL * VL <= body; t += UNROLL * VL) {
#pragma GCC unroll 4
            for (int u = 0; u < UNROLL; u++) {
                vf vv, p0, p1;
                VLOAD(vv, ve + t + u * VL);
                VLOAD(p0, w0 + t + u * VL);
                VLOAD(p1, w1 + t + u * VL);
                a0[u] += p0 * vv;
                a1[u] += p1 * vv;
            }
        }
        for (; t < body; t += VL) {
            vf vv, p0, p1;
            VLOAD(vv, ve + t);
            VLOAD(p0, w0 + t);
            VLOAD(p1, w1 + t);
            a0[0] += p0 * vv;
            a1[0] += p1 * vv;
        }
        vf b0 = (a0[0] + a0[1]) + (a0[2] + a0[3]), b1 = (a1[0] + a1[1]) + (a1[2] + a1[3]);
        float r0 = 0.0f, r1 = 0.0f;
        for (int j = 0; j < VL; j++) {
            r0 += b0[j];
            r1 += b1[j];
        }
        for (; t < T; t++) {
            r0 += w0[t] * ve[t];
            r1 += w1[t] * ve[t];
        }
        o0[e] = r0 * inv0 + (accumulate ? o0[e] : 0.0f);
        if (two)
            o1[e] = r1 * inv1 + (accumulate ? o1[e] : 0.0f);
    }
}

void catanet_attention_fwd_cpu(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *kt, int ldk, const float *vt, int ldv, float *out, int ldo,
                               int accumulate, float *work)
{
    float *w0 = work, *w1 = work + T;
    int r = 0;
    for (; r + 2 <= rows; r += 2)
        rows_fwd(1, T, dqk, dv, scale, q + (size_t)r * ldq, q + (size_t)(r + 1) * ldq, kt, ldk, vt, ldv,
                 out + (size_t)r * ldo, out + (size_t)(r + 1) * ldo, accumulate, w0, w1);
    if (r < rows)
        rows_fwd(0, T, dqk, dv, scale, q + (size_t)r * ldq, NULL, kt, ldk, vt, ldv, out + (size_t)r * ldo, NULL,
                 accumulate, w0, w1);
}
FAST_END
