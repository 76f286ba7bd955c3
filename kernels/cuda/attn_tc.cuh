/*
 * attn_tc.cuh: flash attention on tensor cores (mma.sync m16n8k16, mma_16816.cuh) for the fp16
 * precision mode of LRSA and IASA (cx->attn_fp16). The fp32 mode keeps cuda_common.cuh's
 * CUDA-core attend(), the twin that matches the CPU to 2e-5.
 *
 * A block of TC_WARPS warps; each warp owns 16 queries. Keys and values stream through shared
 * memory in tiles of TC_KEYS, as fp16 with the head dims zero-padded to TC_D = 16 (one k step of
 * the multiply: CATANet's 9/10, XS/S's 9/9). Everything else stays in registers, in the fragment
 * layout the PTX ISA documents (FlashAttention-2's scheme): per tile and warp
 *   S = Q K^T         8 mma (keys 8j .. 8j+7 each), fp16 inputs, fp32 accumulate; lane (g, t) =
 *                     (lane >> 2, lane % 4) holds rows g and g + 8, keys 8j + 2t and 8j + 2t + 1
 *   online softmax    fp32, per row (running max m in fp32, spec §8.10: softmax stays fp32); the
 *                     four lanes of a row (a quad) share its max through two shuffles; P =
 *                     exp2(S - m) rounded to fp16
 *   O = O corr + P V  8 mma (16 keys x 8 output dims each): the S accumulators of keys 16c .. 16c+15
 *                     are, once packed to fp16, exactly the A operand of that step; O's accumulator
 *                     rows are the lane's two rows, so the rescale by corr is per register
 * The row sums l come out of the same multiply: V's last padding dim (TC_D - 1, so dv < TC_D) is
 * staged as 1 for every key of the tile, which makes O[:, TC_D - 1] = sum of the rounded P, in
 * fp32 (the weights that multiply V are exactly the ones normalised), with no per-score work.
 * Tiles whose keys are all valid (every LRSA tile but a patch's last, most of IASA's) skip the
 * per-key masks.
 * The scale and log2(e) are folded into Q before its fp16 rounding (exp2 instead of exp). Keys
 * outside [lo, hi) of a tile get weight 0 (patch end, IASA window); their K/V entries are staged as
 * zeros so that 0 * V stays 0. Shared memory per block: 5.3 KB (was 36 KB with wmma, whose S and P
 * went through shared memory because its fragment layout is unspecified).
 */
#ifndef CATANET_ATTN_TC_CUH
#define CATANET_ATTN_TC_CUH

#include "cuda_common.cuh"
#include "mma_16816.cuh"

#define TC_D 16                  /* head dims padded to one mma k step */
#define TC_KEYS 64               /* keys per shared-memory tile */
#define TC_WARPS 8
#define TC_THREADS (32 * TC_WARPS)
#define TC_ROWS (16 * TC_WARPS) /* queries per block */
#define TC_MIN_BLOCKS 3          /* per SM, for __launch_bounds__: <= 80 registers a thread (ptxas,
                                    sm_75 to sm_90: LRSA uses 79-80, no spills) */
#define TC_MIN_BLOCKS_IASA 2     /* IASA keeps a second softmax state: 105 registers, no spills (at
                                    80 it spills 64 bytes a thread on sm_90) */
/* row strides of the tiles in 32-bit words (pairs of halves), padded so that the fragment loads
 * below hit 32 different banks: K [key][dim pair] 12 (8 + 4), V^T [dim][key pair] 36 (32 + 4) */
#define TC_KW 12
#define TC_VW 36

struct TcSmem {
    uint32_t k[TC_KEYS * TC_KW]; /* k[p * TC_KW + e / 2]: dims e, e + 1 of key p */
    uint32_t vt[TC_D * TC_VW];   /* vt[e * TC_VW + p / 2]: dim e of keys p, p + 1 */
};

/* a warp's 16 queries as the A operand (fp16, scaled) */
struct TcFragQ {
    uint32_t a[4];
};

/* a lane's share of rows g and g + 8: running max (base 2) per row and the accumulators of output
 * dims 8n + 2t, 8n + 2t + 1 (n = 0, 1; dim TC_D - 1 is the row sum, read out by tc_row_sums) */
struct TcRow {
    float m[2], o[2][4];
};
/* the row sums of rows g and g + 8, every lane */
struct TcSums {
    float l[2];
};

__device__ static inline void tc_row_init(TcRow &st)
{
#pragma unroll
    for (int r = 0; r < 2; r++)
        st.m[r] = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; n++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            st.o[n][i] = 0.0f;
}

/* block-wide, between __syncthreads: keys t0 .. t0 + cnt - 1 (rowof(p): row of key p in K [*, ldk]
 * and V [*, ldv], the head's columns from kcol/vcol; T float, or __half when stored so) into the
 * tile as fp16, zero-padded, with V's dim TC_D - 1 set to 1 for the keys p < cnt (the row sums;
 * dv < TC_D) */
template <class RowOf, typename T>
__device__ static inline void tc_stage(TcSmem &sm, int t0, int cnt, RowOf rowof, const T *K, int ldk, int kcol,
                                       const T *V, int ldv, int vcol, int dqk, int dv)
{
    for (int idx = threadIdx.x; idx < TC_KEYS * (TC_D / 2); idx += blockDim.x) {
        int p = idx / (TC_D / 2), e = 2 * (idx - p * (TC_D / 2));
        float k0 = 0.0f, k1 = 0.0f;
        if (p < cnt) {
            const T *kr = K + (size_t)rowof(t0 + p) * ldk + kcol;
            if (e < dqk)
                k0 = ld_act(kr + e);
            if (e + 1 < dqk)
                k1 = ld_act(kr + e + 1);
        }
        sm.k[p * TC_KW + e / 2] = mma_pack_half2(k0, k1);
    }
    for (int idx = threadIdx.x; idx < TC_D * (TC_KEYS / 2); idx += blockDim.x) { /* neighbours read one row */
        int p = 2 * (idx / TC_D), e = idx - p / 2 * TC_D;
        float v0 = 0.0f, v1 = 0.0f;
        if (e < dv) {
            if (p < cnt)
                v0 = ld_act(V + (size_t)rowof(t0 + p) * ldv + vcol + e);
            if (p + 1 < cnt)
                v1 = ld_act(V + (size_t)rowof(t0 + p + 1) * ldv + vcol + e);
        } else if (e == TC_D - 1) {
            v0 = p < cnt ? 1.0f : 0.0f;
            v1 = p + 1 < cnt ? 1.0f : 0.0f;
        }
        sm.vt[e * TC_VW + p / 2] = mma_pack_half2(v0, v1);
    }
}

/* warp-wide: queries q0 .. q0 + 15 (those < nq; the rest zero) times qscale, as fp16, straight from
 * Q [*, ldq] into the lane's fragment registers */
template <class RowOf, typename T>
__device__ static inline void tc_load_query(TcFragQ &fq, int q0, int nq, RowOf rowof, const T *Q, int ldq,
                                            int qcol, int dqk, float qscale)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < 4; i++) { /* a[i]: row g + 8 (i & 1), dims 2t + 8 (i >> 1) and one more */
        int r = g + 8 * (i & 1), e = 2 * t + 8 * (i >> 1);
        float x0 = 0.0f, x1 = 0.0f;
        if (q0 + r < nq) {
            const T *qr = Q + (size_t)rowof(q0 + r) * ldq + qcol;
            if (e < dqk)
                x0 = ld_act(qr + e) * qscale;
            if (e + 1 < dqk)
                x1 = ld_act(qr + e + 1) * qscale;
        }
        fq.a[i] = mma_pack_half2(x0, x1);
    }
}

/* 2^x for x <= 0 on the FMA pipe, not the XU pipe (MUFU.EX2) that exp2f uses: the softmax of the
 * fp16 attention computes one exp2 a score, and the XU pipe does 16 a clock per SM against the FMA
 * pipe's 128 lanes, so a share of them done here may finish sooner (FlashAttention-4 does this).
 * x = j + f with j = round(x) (the 1.5 * 2^23 trick: adds and an integer subtract, no conversion
 * instruction) and f in [-0.5, 0.5]; 2^f by a degree-4 polynomial (interpolating 2^f at the
 * Chebyshev nodes of [-0.5, 0.5]: relative error <= 3.5e-6, far under the fp16 rounding of P, 2.4e-4);
 * then j added to the exponent. x below -125 gives 2^-125 (> 0, far under fp16's smallest value:
 * P rounds to 0 as exp2f's would). NaN is not expected (x = s - max of finite scores). */
__device__ static inline float exp2_fma(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: x + magic rounds x to an integer in the low bits */
    x = fmaxf(x, -125.0f);
    float t = x + magic;
    int j = __float_as_int(t) - __float_as_int(magic);
    float f = x - (t - magic);
    float p = fmaf(fmaf(fmaf(fmaf(0.00966636852f, f, 0.0559219758f), f, 0.24022349f), f, 0.693121045f), f, 1.0f);
    return __int_as_float(__float_as_int(p) + (int)((unsigned)j << 23));
}

/* warp-wide: the staged tile's keys lo <= p < hi (at least one) into the warp's 16 rows; MASK false:
 * every key of the tile (lo = 0, hi = TC_KEYS). EXP_FMA: one score in four takes its exp2 on the FMA
 * pipe (exp2_fma; cx->attn_exp2_fma), the rest on the XU pipe */
template <bool MASK, bool EXP_FMA>
__device__ static inline void tc_attend_keys(TcRow &st, const TcFragQ &fq, const uint32_t *kt, const uint32_t *vt,
                                             int vw, int lo, int hi)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float s[TC_KEYS / 8][4];
#pragma unroll
    for (int j = 0; j < TC_KEYS / 8; j++) { /* B = K^T: column g is key 8j + g */
        const uint32_t *kr = kt + (8 * j + g) * TC_KW + t;
        uint32_t b[2] = { kr[0], kr[4] };
#pragma unroll
        for (int i = 0; i < 4; i++)
            s[j][i] = 0.0f;
        mma_16816(s[j], fq.a, b);
    }
    /* row maxima over the valid keys: s[j][i] is row g + 8 (i >> 1), key 8j + 2t + (i & 1) */
    float mx[2] = { -INFINITY, -INFINITY };
#pragma unroll
    for (int j = 0; j < TC_KEYS / 8; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int p = 8 * j + 2 * t + (i & 1);
            if (!MASK || (p >= lo && p < hi))
                mx[i >> 1] = fmaxf(mx[i >> 1], s[j][i]);
        }
    float corr[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        float mnew = fmaxf(st.m[r], mx[r]);
        corr[r] = exp2f(st.m[r] - mnew); /* 0 on the first tile (m = -inf) */
        st.m[r] = mnew;
    }
#pragma unroll
    for (int n = 0; n < 2; n++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            st.o[n][i] *= corr[i >> 1];
    /* P V, 16 keys at a time: P's A operand for keys 16c .. 16c + 15 is s[2c] (dims 2t, 2t+1 of
     * the k step) and s[2c + 1] (2t + 8, 2t + 9), rows g and g + 8 */
#pragma unroll
    for (int c = 0; c < TC_KEYS / 16; c++) {
        uint32_t pa[4];
#pragma unroll
        for (int h = 0; h < 2; h++) /* h: s[2c + h] */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float pv[2];
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    int p = 16 * c + 8 * h + 2 * t + x;
                    float arg = s[2 * c + h][2 * r + x] - st.m[r];
                    pv[x] = !MASK || (p >= lo && p < hi) ? (EXP_FMA && h == 1 && x == 1 ? exp2_fma(arg) : exp2f(arg))
                                                         : 0.0f;
                }
                pa[2 * h + r] = mma_pack_half2(pv[0], pv[1]);
            }
#pragma unroll
        for (int n = 0; n < 2; n++) { /* B = V rows 16c .., columns (output dims) 8n + g */
            const uint32_t *vr = vt + (8 * n + g) * vw + 8 * c + t;
            uint32_t b[2] = { vr[0], vr[4] };
            mma_16816(st.o[n], pa, b);
        }
    }
}

/* the tile at kt (TC_KEYS rows of TC_KW words) and vt (TC_D rows of the key pairs, vw words apart:
 * vw % 32 == 4 keeps the fragment loads on 32 banks): a staged TcSmem, or a slice of a whole patch's
 * keys kept in shared memory (lrsa.cu's fused kernel) */
template <bool EXP_FMA = false>
__device__ static inline void tc_attend_at(TcRow &st, const TcFragQ &fq, const uint32_t *kt, const uint32_t *vt, int vw,
                                           int lo, int hi)
{
    if (lo == 0 && hi == TC_KEYS)
        tc_attend_keys<false, EXP_FMA>(st, fq, kt, vt, vw, lo, hi);
    else
        tc_attend_keys<true, EXP_FMA>(st, fq, kt, vt, vw, lo, hi);
}
template <bool EXP_FMA = false>
__device__ static inline void tc_attend(TcRow &st, const TcFragQ &fq, const TcSmem &sm, int lo, int hi)
{
    tc_attend_at<EXP_FMA>(st, fq, sm.k, sm.vt, TC_VW, lo, hi);
}

/* warp-wide, once after the last tile: the row sums, from the lane of the quad that holds output
 * dim TC_D - 1 (= 8 + 2t + 1 for t = 3: o[1][1] and o[1][3]) */
__device__ static inline TcSums tc_row_sums(const TcRow &st)
{
    const bool has = (threadIdx.x & 3) == 3;
    TcSums s;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        s.l[r] = has ? st.o[1][2 * r + 1] : 0.0f;
        s.l[r] += __shfl_xor_sync(0xffffffffu, s.l[r], 1);
        s.l[r] += __shfl_xor_sync(0xffffffffu, s.l[r], 2);
    }
    return s;
}

/* where a lane's accumulator st.o[n][i] lands: row (0..15) of the warp's queries, output dim */
__device__ static inline int tc_out_row(int i) { return ((threadIdx.x & 31) >> 2) + 8 * (i >> 1); }
__device__ static inline int tc_out_dim(int n, int i) { return 8 * n + 2 * (threadIdx.x & 3) + (i & 1); }

#endif /* CATANET_ATTN_TC_CUH */
