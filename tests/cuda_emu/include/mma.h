/* tests/cuda_emu: nvcuda::wmma (mma.h) on the host, for the tensor-core kernels (see ../emu.cpp).
 * Emulated: fragment<matrix_a | matrix_b, 16, 16, 16, __half, row_major | col_major> and
 * fragment<accumulator, 16, 16, 16, float>, fill_fragment, load_matrix_sync, store_matrix_sync
 * (mem_row_major / mem_col_major), mma_sync (fp32 accumulation of exact half x half products, in
 * k order; the tensor cores' own summation order and internal rounding are not modelled).
 * As on the GPU:
 * - load/store/mma are warp-collective: each is a warp barrier that needs all 32 lanes of the warp,
 *   in the same call with the same pointer, ldm and layout; a divergent or partial-warp call aborts.
 * - load reads the lane's own elements before the barrier and store writes them after it, so a
 *   missing __syncwarp/__syncthreads between other lanes' writes and a load (or between a store and
 *   other lanes' reads) reads stale or NaN-filled memory here too.
 * - pointers must be 32-byte aligned and ldm a multiple of 16 bytes (checked, abort).
 * - which element of the 16x16 tile a lane's x[i] holds is unspecified by CUDA: here it is a fixed,
 *   deliberately scrambled permutation (an A/B element is held twice, in two unrelated (lane, i)
 *   slots, as the GPU's 16-element A/B fragments duplicate theirs), so code that assumes a layout
 *   computes garbage here. Elementwise code that treats every x[i] alike is fine; an A/B fragment
 *   whose two copies of an element disagree at mma_sync aborts.
 * Also here: PTX's mma.sync m16n8k16 (fp16 in, fp32 accumulate), whose layout is documented (below).
 * Not emulated: other shapes and types (tf32, bf16, int, half accumulators), satf, the
 * experimental APIs; they fail to compile. */
#ifndef EMU_MMA_H
#define EMU_MMA_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "cuda_fp16.h"

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
    static constexpr bool acc = std::is_same<Use, accumulator>::value;
    static_assert(M == 16 && N == 16 && K == 16, "tests/cuda_emu: only wmma m16n16k16 is emulated");
    static_assert(acc ? std::is_same<T, float>::value : std::is_same<T, __half>::value,
                  "tests/cuda_emu: only __half A/B fragments and float accumulators are emulated");
    static_assert(acc == std::is_same<Layout, void>::value,
                  "wmma: A/B fragments take row_major/col_major, accumulators no layout");

public:
    enum { num_elements = acc ? 8 : 16 };
    T x[num_elements];
};
} // namespace wmma
} // namespace nvcuda

namespace emu {
namespace wmma_detail {
enum { USE_A, USE_B, USE_C };
/* elem[use][lane][i]: the element (row * 16 + col of the tile) that lane's x[i] holds; odd
 * multipliers make each copy a bijection of the 256 elements onto 256 slots */
struct Map {
    unsigned char elem[3][32][16];
    Map()
    {
        static const int mul[3][2] = { { 37, 53 }, { 77, 21 }, { 91, 0 } }, add[3][2] = { { 11, 101 }, { 5, 200 }, { 29, 0 } };
        for (int u = 0; u < 3; u++)
            for (int copy = 0; copy < (u == USE_C ? 1 : 2); copy++)
                for (int e = 0; e < 256; e++) {
                    int s = (e * mul[u][copy] + add[u][copy]) & 255;
                    elem[u][s & 31][8 * copy + (s >> 5)] = (unsigned char)e;
                }
    }
};
static inline const Map &map()
{
    static const Map m;
    return m;
}
template <class Use> struct UseOf;
template <> struct UseOf<nvcuda::wmma::matrix_a> { enum { v = USE_A }; };
template <> struct UseOf<nvcuda::wmma::matrix_b> { enum { v = USE_B }; };
template <> struct UseOf<nvcuda::wmma::accumulator> { enum { v = USE_C }; };

[[noreturn]] static inline void fail(const char *what)
{
    fprintf(stderr, "emu: wmma: %s\n", what);
    abort();
}

struct MemOp : WarpOp {
    const void *mem;
    unsigned ldm;
    int col_major;
};
static inline void mem_release(const WarpOp *const *lanes)
{
    const MemOp *o = (const MemOp *)lanes[0];
    for (int l = 1; l < 32; l++) {
        const MemOp *p = (const MemOp *)lanes[l];
        if (p->mem != o->mem || p->ldm != o->ldm || p->col_major != o->col_major)
            fail("load/store_matrix_sync: the lanes of a warp passed different pointers, ldm or layouts");
    }
}
static inline void check_mem(const void *p, unsigned ldm, size_t elem_bytes)
{
    if ((uintptr_t)p % 32)
        fail("load/store_matrix_sync: the pointer is not 256-bit (32-byte) aligned");
    if (ldm * elem_bytes % 16)
        fail("load/store_matrix_sync: ldm is not a multiple of 16 bytes (8 halves, 4 floats)");
}
static const char load_name[] = "wmma::load_matrix_sync", store_name[] = "wmma::store_matrix_sync",
                  mma_name[] = "wmma::mma_sync";

template <class F, class T> static inline void load(F &f, const T *p, unsigned ldm, int use, int col_major)
{
    check_mem(p, ldm, sizeof(T));
    const Map &m = map();
    int lane = lane_id();
    for (int i = 0; i < F::num_elements; i++) {
        int e = m.elem[use][lane][i], r = e >> 4, c = e & 15;
        f.x[i] = col_major ? p[(size_t)c * ldm + r] : p[(size_t)r * ldm + c];
    }
    MemOp op;
    op.name = load_name;
    op.release = mem_release;
    op.mem = p;
    op.ldm = ldm;
    op.col_major = col_major;
    warp_collective(&op);
}

struct MmaOp : WarpOp {
    float *d;
    const __half *a, *b;
    const float *c;
};
static inline void mma_release(const WarpOp *const *lanes)
{
    const Map &m = map();
    unsigned short Ab[256], Bb[256];
    float A[256], B[256], C[256], D[256];
    for (int l = 0; l < 32; l++) {
        const MmaOp *o = (const MmaOp *)lanes[l];
        for (int i = 0; i < 8; i++) {
            Ab[m.elem[USE_A][l][i]] = o->a[i].__x;
            Bb[m.elem[USE_B][l][i]] = o->b[i].__x;
            C[m.elem[USE_C][l][i]] = o->c[i];
        }
    }
    /* the second copies (x[8..15]) must hold the same bits: else x[i] was written by an assumed layout */
    for (int l = 0; l < 32; l++) {
        const MmaOp *o = (const MmaOp *)lanes[l];
        for (int i = 8; i < 16; i++)
            if (o->a[i].__x != Ab[m.elem[USE_A][l][i]] || o->b[i].__x != Bb[m.elem[USE_B][l][i]])
                fail("mma_sync: an A/B fragment holds two different values for one element (x[i] was "
                     "written by an assumed element layout; the layout is unspecified)");
    }
    for (int e = 0; e < 256; e++) {
        A[e] = half_to_float(Ab[e]);
        B[e] = half_to_float(Bb[e]);
    }
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            float s = C[r * 16 + c];
            for (int k = 0; k < 16; k++)
                s += A[r * 16 + k] * B[k * 16 + c];
            D[r * 16 + c] = s;
        }
    for (int l = 0; l < 32; l++) {
        const MmaOp *o = (const MmaOp *)lanes[l];
        for (int i = 0; i < 8; i++)
            o->d[i] = D[m.elem[USE_C][l][i]];
    }
}
} // namespace wmma_detail
} // namespace emu

namespace nvcuda {
namespace wmma {
template <class Use, class T, class Layout, class V>
static inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout> &f, const V &v)
{
    for (int i = 0; i < f.num_elements; i++)
        f.x[i] = T(v);
}
template <class Use, class Layout>
static inline void load_matrix_sync(fragment<Use, 16, 16, 16, __half, Layout> &f, const __half *p, unsigned ldm)
{
    emu::wmma_detail::load(f, p, ldm, emu::wmma_detail::UseOf<Use>::v, std::is_same<Layout, col_major>::value);
}
static inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm,
                                    layout_t layout)
{
    emu::wmma_detail::load(f, p, ldm, emu::wmma_detail::USE_C, layout == mem_col_major);
}
static inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                                     layout_t layout)
{
    using namespace emu::wmma_detail;
    check_mem(p, ldm, sizeof(float));
    MemOp op;
    op.name = store_name;
    op.release = mem_release;
    op.mem = p;
    op.ldm = ldm;
    op.col_major = layout == mem_col_major;
    emu::warp_collective(&op);
    const Map &m = map();
    int lane = emu::lane_id();
    for (int i = 0; i < 8; i++) {
        int e = m.elem[USE_C][lane][i], r = e >> 4, c = e & 15;
        p[op.col_major ? (size_t)c * ldm + r : (size_t)r * ldm + c] = f.x[i];
    }
}
template <class LA, class LB>
static inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, __half, LA> &a,
                            const fragment<matrix_b, 16, 16, 16, __half, LB> &b,
                            const fragment<accumulator, 16, 16, 16, float> &c)
{
    emu::wmma_detail::MmaOp op;
    op.name = emu::wmma_detail::mma_name;
    op.release = emu::wmma_detail::mma_release;
    op.d = d.x;
    op.a = a.x;
    op.b = b.x;
    op.c = c.x;
    emu::warp_collective(&op);
}
} // namespace wmma
} // namespace nvcuda

/* PTX mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 (D = A B + C; A 16x16, B 16x8, C/D 16x8),
 * as kernels/cuda/mma_16816.cuh issues it. Unlike wmma's, this instruction's fragment layout is
 * documented (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), and kernels
 * rely on it; it is modelled as written there, with g = lane >> 2, t = lane % 4:
 *   A: a[0] = (A[g][2t], A[g][2t+1]), a[1] = rows g+8, a[2] = (A[g][2t+8], A[g][2t+9]), a[3] = rows g+8
 *   B: b[0] = (B[2t][g], B[2t+1][g]), b[1] = (B[2t+8][g], B[2t+9][g])
 *   C, D: c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1]
 * (each 32-bit register holds two halves, the lower-numbered element in the low 16 bits). A
 * warp-collective op, as the wmma calls above: all 32 lanes, else abort. Sums exact half products
 * in fp32 in k order from C (the tensor cores' own order and internal rounding are not modelled). */
namespace emu {
namespace mma_ptx {
struct Op : WarpOp {
    float *d;
    uint32_t a[4], b[2];
    float c[4];
};
static const char name[] = "mma.sync.m16n8k16";
static inline void release(const WarpOp *const *lanes)
{
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; l++) {
        const Op *o = (const Op *)lanes[l];
        int g = l >> 2, t = l & 3;
        for (int i = 0; i < 8; i++) { /* a_i: register i / 2, half i % 2 */
            int row = g + ((i >> 1) & 1) * 8, col = 2 * t + (i & 1) + (i >> 2) * 8;
            A[row][col] = half_to_float((unsigned short)(o->a[i >> 1] >> (16 * (i & 1))));
        }
        for (int i = 0; i < 4; i++)
            B[2 * t + (i & 1) + (i >> 1) * 8][g] = half_to_float((unsigned short)(o->b[i >> 1] >> (16 * (i & 1))));
        for (int i = 0; i < 4; i++)
            C[g + (i >> 1) * 8][2 * t + (i & 1)] = o->c[i];
    }
    for (int l = 0; l < 32; l++) {
        const Op *o = (const Op *)lanes[l];
        int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; i++) {
            int row = g + (i >> 1) * 8, col = 2 * t + (i & 1);
            float s = C[row][col];
            for (int k = 0; k < 16; k++)
                s += A[row][k] * B[k][col];
            o->d[i] = s;
        }
    }
}
} // namespace mma_ptx
/* d = a b + d for the calling lane's fragments (see above) */
static inline void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2])
{
    mma_ptx::Op op;
    op.name = mma_ptx::name;
    op.release = mma_ptx::release;
    op.d = d;
    memcpy(op.a, a, sizeof op.a);
    memcpy(op.b, b, sizeof op.b);
    memcpy(op.c, d, sizeof op.c);
    warp_collective(&op);
}
} // namespace emu
#endif
