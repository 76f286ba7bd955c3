/*
 * exp2_selftest.cu: attn_tc.cuh's exp2_fma (2^x on the FMA pipe, cx->attn_exp2_fma) against exp2 in
 * double. Built by `make emu-build` against the emulator's headers, run by tests/t_cuda_emu.sh.
 * exp2_fma uses only IEEE round-to-nearest adds, fmaf, fmaxf and bit casts, which the host computes
 * as the GPU does (built with -ffp-contract=off: no contraction the GPU would not make), so its
 * values here are the GPU's. PASS/FAIL lines, exit 1 on any FAIL.
 *   1. every float in [-1, 0] (2^30 values would be too many: every 64th bit pattern) and 2^24
 *      evenly spaced x in [-125, 0], the integers and the half-integers (the rounding ties):
 *      relative error <= 4e-6 (the polynomial's 3.5e-6 and a few float roundings);
 *   2. below -125 (down to -1e30 and -inf): a positive value no larger than 2^-124, which fp16 (the
 *      type P is rounded to) holds as 0, as it holds exp2f's;
 *   3. P as the attention uses it, rounded to fp16: against exp2f rounded to fp16 over [-20, 0], the
 *      share of values one fp16 step apart (where the two sit either side of a rounding boundary)
 *      is printed, and must stay under 1%; none may be further apart.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cuda_fp16.h>

#include "attn_tc.cuh"

static int fails;

static void check(bool ok, const char *what, double got, double bound)
{
    printf("%s: exp2_fma %s: %.3g (bound %.3g)\n", ok ? "PASS" : "FAIL", what, got, bound);
    fails += !ok;
}

static double rel_err(float x)
{
    double want = exp2((double)x), got = exp2_fma(x);
    return fabs(got - want) / want;
}

int main(void)
{
    /* 1. relative error over the range the softmax uses */
    double worst = 0, worst_x = 0;
    for (unsigned u = 0x80000000u; u <= 0xBF800000u; u += 64) { /* -0 .. -1, every 64th float */
        float x;
        memcpy(&x, &u, sizeof(x));
        double e = rel_err(x);
        if (!(e <= worst)) {
            worst = e;
            worst_x = x;
        }
    }
    for (int i = 0; i <= (1 << 24); i++) {
        float x = -125.0f * (float)i / (float)(1 << 24);
        double e = rel_err(x);
        if (!(e <= worst)) {
            worst = e;
            worst_x = x;
        }
    }
    for (int k = 0; k <= 250; k++) { /* integers and ties */
        float x = -0.5f * (float)k;
        double e = rel_err(x);
        if (!(e <= worst)) {
            worst = e;
            worst_x = x;
        }
    }
    printf("  worst relative error at x = %.9g\n", worst_x);
    check(worst <= 4e-6, "relative error over [-125, 0]", worst, 4e-6);

    /* 2. far below: tiny and positive (fp16 holds it as 0) */
    const float far[] = { -125.5f, -126.0f, -149.0f, -1000.0f, -1e30f, -INFINITY };
    double big = 0;
    bool positive = true;
    for (float x : far) {
        double v = exp2_fma(x);
        positive = positive && v > 0;
        big = v > big ? v : big;
    }
    check(positive && big <= ldexp(1.0, -124), "below -125: positive, at most 2^-124", big, ldexp(1.0, -124));
    check(__half2float(__float2half_rn((float)big)) == 0.0f, "below -125: 0 as fp16", big, 0);

    /* 3. P as fp16 against exp2f's */
    long n = 0, one_step = 0, more = 0;
    for (int i = 0; i <= (1 << 22); i++) {
        float x = -20.0f * (float)i / (float)(1 << 22);
        __half a = __float2half_rn(exp2_fma(x)), b = __float2half_rn(exp2f(x));
        unsigned short ha, hb;
        memcpy(&ha, &a, 2);
        memcpy(&hb, &b, 2);
        int d = (int)ha - (int)hb;
        n++;
        one_step += d == 1 || d == -1;
        more += d > 1 || d < -1;
    }
    printf("  fp16 P: %ld of %ld values one fp16 step from exp2f's, %ld further\n", one_step, n, more);
    check(more == 0 && one_step <= n / 100, "fp16 P one step from exp2f's (share)", (double)one_step / n, 0.01);
    printf("%s: exp2_selftest\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
