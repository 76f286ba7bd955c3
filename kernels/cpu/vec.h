/*
 * vec.h: 16-float vectors with GCC's vector extensions, for the fast CPU paths written once for
 * every ISA: a function marked CLONES_FMA is compiled for x86-64-v4 (AVX-512), x86-64-v3 (AVX2 +
 * FMA) and the baseline, and the loader picks the best the CPU has. Between FAST_BEGIN and
 * FAST_END, FMA contraction is on: a clone's a * b + c is one rounding (the reference paths
 * outside keep the file's default, no contraction).
 * Lane reductions are written out lane by lane, in a fixed order.
 */
#ifndef CATANET_VEC_H
#define CATANET_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES_FMA __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FAST_BEGIN _Pragma("GCC push_options") _Pragma("GCC optimize(\"fp-contract=fast\")")
#define FAST_END _Pragma("GCC pop_options")
#else
#define CLONES_FMA
#define FAST_BEGIN
#define FAST_END
#endif

#define VL 16
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(float))));
typedef uint32_t vu __attribute__((vector_size(VL * sizeof(float))));

#define VLOAD(dst, p) memcpy(&(dst), (p), sizeof(vf))
#define VSTORE(p, src) memcpy((p), &(src), sizeof(vf))
#define VSELECT(mask, a, b) ((vf)(((mask) & (vi)(a)) | (~(mask) & (vi)(b))))

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
        vu s_ = (vu)(__builtin_convertvector(n_, vi) + 127) << 23;                            \
        (out) = p_ * (vf)s_;                                                                  \
    } while (0)

#endif
