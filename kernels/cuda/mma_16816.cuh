/*
 * mma_16816.cuh: one warp-wide tensor-core multiply, D = A B + D with A 16x16 and B 16x8 in fp16 and
 * D 16x8 in fp32 (PTX mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32). Used where a kernel keeps
 * its operands in registers in the instruction's documented fragment layout (attn_tc.cuh: the
 * scores go from the S accumulator to the P operand without leaving registers), which wmma cannot
 * do: wmma's fragment layout is unspecified.
 *
 * Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), g = lane >> 2,
 * t = lane % 4; each uint32_t holds two halves, the lower-numbered element in the low 16 bits:
 *   a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]    a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
 *   b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
 *   d[0..1] = D[g][2t, 2t+1]                           d[2..3] = D[g+8][2t, 2t+1]
 * m16n8k16 needs sm_80; on sm_75 the same product is two m16n8k8 (k 0..7: a[0], a[1], b[0]; k 8..15:
 * a[2], a[3], b[1]), whose fragments are exactly these halves. The host emulator
 * (tests/cuda_emu/include/mma.h) models the layout as documented; tests/cuda_emu/wmma_selftest.cu
 * checks it against a product built from the formulas above.
 */
#ifndef CATANET_MMA_16816_CUH
#define CATANET_MMA_16816_CUH

#include <stdint.h>

#include <cuda_fp16.h>
#include <mma.h>

/* two floats rounded to fp16 (nearest even) and packed as one fragment register */
__device__ static inline uint32_t mma_pack_half2(float lo, float hi)
{
    return (uint32_t)__half_as_ushort(__float2half_rn(lo)) | (uint32_t)__half_as_ushort(__float2half_rn(hi)) << 16;
}

__device__ static inline void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2])
{
#if defined(CATANET_CUDA_EMU)
    emu::mma_m16n8k16(d, a, b);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(b[0]));
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[2]), "r"(a[3]), "r"(b[1]));
#endif
}

#endif /* CATANET_MMA_16816_CUH */
