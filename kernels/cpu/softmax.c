/*
 * softmax.c: row softmax for the fast attention paths, with an exp the compiler can vectorise.
 * The attention score matrices make exp the hottest function of the whole CPU forward (about
 * half the time with libm's scalar expf), so the fast path uses its own: Cody-Waite range
 * reduction and a degree-6 polynomial, within 2 ulp of expf on the range softmax uses
 * (x <= 0 after subtracting the row maximum). The reference paths keep libm's exp.
 * defines: catanet_softmax_rows_cpu
 */
#include <stdint.h>

#include "kernels.h"

/* exp(x) for x in [-87.3, 0]; smaller x gives exp(-87.3) ~ 1e-38, below anything a softmax
 * keeps. A macro, not a function: an inline function would not be inlined into the avx2 clone
 * (target mismatch), and the call would stop the loop from vectorising. */
#define EXP_POLY(out, xin)                                                                    \
    do {                                                                                      \
        float x_ = (xin) < -87.3f ? -87.3f : (xin);                                           \
        /* round to nearest by the 1.5*2^23 trick: plain IEEE adds, so it vectorises */       \
        float n_ = (x_ * 1.44269504088896341f + 12582912.0f) - 12582912.0f;                   \
        float r_ = x_ - n_ * 0.693145751953125f; /* ln2 in two parts (Cody-Waite) */          \
        r_ = r_ - n_ * 1.42860682030941723212e-6f;                                            \
        float p_ = 1.0f / 720.0f;                                                             \
        p_ = p_ * r_ + 1.0f / 120.0f;                                                         \
        p_ = p_ * r_ + 1.0f / 24.0f;                                                          \
        p_ = p_ * r_ + 1.0f / 6.0f;                                                           \
        p_ = p_ * r_ + 0.5f;                                                                  \
        p_ = p_ * r_ + 1.0f;                                                                  \
        p_ = p_ * r_ + 1.0f;                                                                  \
        union { int32_t i; float f; } s_ = { ((int32_t)n_ + 127) << 23 }; /* 2^n, n <= 0 */   \
        (out) = p_ * s_.f;                                                                    \
    } while (0)

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

/* s [rows, len]: each row replaced by softmax(row) */
#define LANES 8

/* s [rows, len]: each row replaced by softmax(row). Max and sum use 8 lanes (a fixed order,
 * so the result does not depend on threads) so that every loop vectorises. */
CLONES void catanet_softmax_rows_cpu(int rows, int len, float *s)
{
    for (int r = 0; r < rows; r++) {
        float *x = s + (size_t)r * len;
        float lane[LANES];
        int i = 0, body = len - len % LANES;
        for (int j = 0; j < LANES; j++)
            lane[j] = x[0];
        for (; i < body; i += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
        float mx = lane[0];
        for (int j = 1; j < LANES; j++)
            mx = lane[j] > mx ? lane[j] : mx;
        for (; i < len; i++)
            mx = x[i] > mx ? x[i] : mx;
        for (i = 0; i < len; i++)
            EXP_POLY(x[i], x[i] - mx);
        for (int j = 0; j < LANES; j++)
            lane[j] = 0.0f;
        for (i = 0; i < body; i += LANES)
            for (int j = 0; j < LANES; j++)
                lane[j] += x[i + j];
        float sum = 0.0f;
        for (int j = 0; j < LANES; j++)
            sum += lane[j];
        for (; i < len; i++)
            sum += x[i];
        float inv = 1.0f / sum;
        for (i = 0; i < len; i++)
            x[i] *= inv;
    }
}
