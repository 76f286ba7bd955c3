/* tests/cuda_emu: the part of cuda_fp16.h that kernels/cuda uses, on the host (see ../emu.cpp).
 * __half is IEEE binary16 stored as its 16 bits; every float -> half conversion rounds to nearest,
 * ties to even (subnormals, overflow to inf and NaN included), as the GPU's __float2half_rn does, so
 * code that stores fp16 sees the GPU's rounding exactly. Arithmetic on __half is not emulated (the
 * kernels convert to float first); what is missing fails to compile rather than computing wrongly. */
#ifndef EMU_CUDA_FP16_H
#define EMU_CUDA_FP16_H
#include <stdint.h>
#include <string.h>

#include "cuda_runtime.h"

namespace emu {
static inline unsigned short float_to_half_rn(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf, NaN (quiet, payload's top bits kept) */
        return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u | ((a >> 13) & 0x3ffu) : 0x7c00u));
    int e = (int)(a >> 23) - 127;
    if (e > 15)
        return (unsigned short)(sign | 0x7c00u);
    uint32_t m = a & 0x7fffffu, q, rem, halfway;
    if (e >= -14) { /* normal half: 10 of 23 mantissa bits kept; a carry may reach the exponent (inf) */
        q = ((uint32_t)(e + 15) << 10) | (m >> 13);
        rem = m & 0x1fffu;
        halfway = 0x1000u;
    } else { /* subnormal half, in units of 2^-24: m_full 2^(e-23) = m_full 2^(e+1) units */
        int shift = -(e + 1);
        if (a == 0 || shift > 25) /* below 2^-25: rounds to zero */
            return (unsigned short)sign;
        m |= 0x800000u;
        q = m >> shift;
        rem = m & ((1u << shift) - 1);
        halfway = 1u << (shift - 1);
    }
    if (rem > halfway || (rem == halfway && (q & 1u)))
        q++;
    return (unsigned short)(sign | q);
}

static inline float half_to_float(unsigned short h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) { /* zero or subnormal: m 2^-24, exact in float */
        float f = (float)m * 5.9604644775390625e-08f;
        return sign ? -f : f;
    }
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else
        u = sign | ((e - 15 + 127) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
} // namespace emu

struct __half {
    unsigned short __x;
    __half() = default;
    __half(float f) : __x(emu::float_to_half_rn(f)) {}
    operator float() const { return emu::half_to_float(__x); }
};
struct __half2 {
    __half x, y;
};
typedef __half half;
typedef __half2 half2;

static inline __half __float2half(float f) { return __half(f); }
static inline __half __float2half_rn(float f) { return __half(f); }
static inline float __half2float(__half h) { return emu::half_to_float(h.__x); }
static inline __half2 __floats2half2_rn(float a, float b) { return __half2{ __half(a), __half(b) }; }
static inline __half2 __float2half2_rn(float a) { return __half2{ __half(a), __half(a) }; }
static inline float2 __half22float2(__half2 h) { return float2{ __half2float(h.x), __half2float(h.y) }; }
static inline float __low2float(__half2 h) { return __half2float(h.x); }
static inline float __high2float(__half2 h) { return __half2float(h.y); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short u)
{
    __half h;
    h.__x = u;
    return h;
}
#endif
