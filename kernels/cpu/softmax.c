/*
 * softmax.c: row softmax for the fast attention paths, with an exp the compiler can vectorise.
 * The attention score matrices make exp the hottest function of the whole CPU forward (about
 * half the time with libm's scalar expf), so the fast path uses its own: Cody-Waite range
 * reduction and a degree-6 polynomial, within 2 ulp of expf on the range softmax uses
 * (x <= 0 after subtracting the row maximum). The reference paths keep libm's exp.
 * defines: catanet_softmax_rows_cpu, catanet_softmax_bwd_rows_cpu
 */
#include <math.h>
#include <stdint.h>

#include "kernels.h"

#include "fastmath.h"

#include "vec.h"

#define LANES 8

FAST_BEGIN
/* s [rows, len]: each row replaced by softmax(row). Max and sum in 16 lanes, then across the
 * lanes in a fixed order, so the result does not depend on threads; the exp is vec.h's. */
CLONES_FMA void catanet_softmax_rows_cpu(int rows, int len, float *s)
{
    int body = len - len % VL;
    for (int r = 0; r < rows; r++) {
        float *x = s + (size_t)r * len;
        vf m = (vf){ 0 } - INFINITY, sum = { 0 };
        int i;
        for (i = 0; i < body; i += VL) {
            vf v;
            VLOAD(v, x + i);
            m = VSELECT(v > m, v, m);
        }
        float mx = -INFINITY;
        for (int j = 0; j < VL; j++)
            mx = m[j] > mx ? m[j] : mx;
        for (; i < len; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (i = 0; i < body; i += VL) {
            vf v, e;
            VLOAD(v, x + i);
            VEXP(e, v - mx);
            sum += e;
            VSTORE(x + i, e);
        }
        float tot = 0.0f;
        for (int j = 0; j < VL; j++)
            tot += sum[j];
        for (; i < len; i++) {
            EXP_POLY(x[i], x[i] - mx);
            tot += x[i];
        }
        float inv = 1.0f / tot;
        for (i = 0; i < len; i++)
            x[i] *= inv;
    }
}
FAST_END

/* Backward of the row softmax, given its output: d [rows, len] (dL/dp on entry) becomes
 * dL/ds = p * (d - sum_j p_j d_j). The dot product uses 8 lanes for the same reason as the sums
 * above (a scalar running sum does not vectorise: it was 7% of a training step in lrsa's
 * backward alone). */
CLONES void catanet_softmax_bwd_rows_cpu(int rows, int len, const float *p, float *d)
{
    for (int r = 0; r < rows; r++) {
        const float *pr = p + (size_t)r * len;
        float *dr = d + (size_t)r * len;
        float lane[LANES] = { 0.0f };
        int i = 0, body = len - len % LANES;
        for (; i < body; i += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += pr[i + j] * dr[i + j];
        float dot = 0.0f;
        for (int j = 0; j < LANES; j++)
            dot += lane[j];
        for (; i < len; i++)
            dot += pr[i] * dr[i];
        for (i = 0; i < len; i++)
            dr[i] = pr[i] * (dr[i] - dot);
    }
}
