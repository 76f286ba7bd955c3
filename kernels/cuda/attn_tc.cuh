/*
 * attn_tc.cuh: flash attention on tensor cores (nvcuda::wmma m16n16k16, sm_70+) for the fp16
 * precision mode of LRSA and IASA (cx->attn_fp16). The fp32 mode keeps cuda_common.cuh's
 * CUDA-core attend(), the twin that matches the CPU to 2e-5.
 *
 * A block of TC_WARPS warps; each warp owns 16 queries. Keys and values stream through shared
 * memory in tiles of TC_KEYS, converted to fp16 with the head dims zero-padded to TC_D = 16 (one
 * wmma k step: CATANet's 9/10, XS/S's 9/9). Per tile and warp:
 *   S = Q K^T         4 mma (fp16 inputs, fp32 accumulate) -> the warp's fp32 scratch
 *   online softmax    fp32, per query row (running max m and sum l in fp32, as spec §8.10 asks:
 *                     softmax stays fp32); P = exp2(S - m) rounded to fp16, l sums the rounded P
 *                     (so the weights that multiply V are exactly the ones normalised)
 *   O = O corr + P V  4 mma into a fresh fp32 tile; the rescale and the sum happen per lane in
 *                     fp32 registers (the accumulator fragment's element layout is unspecified, so
 *                     a per-row rescale cannot be done on the fragment itself)
 * Lane pair (2r, 2r+1) owns query row r: keys [0, 32) and [32, 64) of the tile for the softmax,
 * output columns [0, 8) and [8, 16) of the head. The scale and log2(e) are folded into Q before
 * its fp16 rounding (exp2 instead of exp). Keys outside [lo, hi) of a tile get weight 0 (patch
 * end, IASA window); their K/V rows are staged as zeros so that 0 * V stays 0.
 */
#ifndef CATANET_ATTN_TC_CUH
#define CATANET_ATTN_TC_CUH

#include <cuda_fp16.h>
#include <mma.h>

#include "cuda_common.cuh"

#define TC_D 16                  /* head dims padded to one wmma step */
#define TC_KEYS 64               /* keys per shared-memory tile */
#define TC_WARPS 8
#define TC_THREADS (32 * TC_WARPS)
#define TC_ROWS (16 * TC_WARPS) /* queries per block */
#define TC_MIN_BLOCKS 2          /* per SM, for __launch_bounds__: <= 128 registers a thread, 16
                                    warps an SM (ptxas, sm_75 and sm_90: 128 used, no spills; 201-210
                                    without the bound, one block an SM) */

/* 36 KB: the K/V tile (fp16) and per warp an S tile [16][TC_KEYS] fp32 whose first 2 KB are
 * reused for P [16][TC_KEYS] fp16 and the next 1 KB for the P V tile [16][16] fp32 */
struct __align__(32) TcSmem {
    __half k[TC_KEYS * TC_D];
    __half v[TC_KEYS * TC_D];
    float w[TC_WARPS][16 * TC_KEYS];
};

typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __half, nvcuda::wmma::row_major> TcFragQ;

/* a lane's share of its query row: running max (base 2), sum, and 8 output columns */
struct TcRow {
    float m, l, o[8];
};

__device__ static inline void tc_row_init(TcRow &st)
{
    st.m = -INFINITY;
    st.l = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; e++)
        st.o[e] = 0.0f;
}

/* block-wide, between __syncthreads: keys t0 .. t0 + cnt - 1 (rowof(p): row of key p in K [*, ldk]
 * and V [*, ldv], the head's columns from kcol/vcol) into the tile as fp16, zero-padded */
template <class RowOf>
__device__ static inline void tc_stage(TcSmem &sm, int t0, int cnt, RowOf rowof, const float *K, int ldk, int kcol,
                                       const float *V, int ldv, int vcol, int dqk, int dv)
{
    for (int idx = threadIdx.x; idx < TC_KEYS * TC_D; idx += blockDim.x) {
        int p = idx / TC_D, e = idx - p * TC_D;
        float kx = 0.0f, vx = 0.0f;
        if (p < cnt) {
            size_t r = (size_t)rowof(t0 + p);
            if (e < dqk)
                kx = K[r * ldk + kcol + e];
            if (e < dv)
                vx = V[r * ldv + vcol + e];
        }
        sm.k[idx] = __float2half_rn(kx);
        sm.v[idx] = __float2half_rn(vx);
    }
}

/* warp-wide: queries q0 .. q0 + 15 (those < nq; the rest zero) times qscale, as fp16, into fq
 * (staged through the warp's scratch ws) */
template <class RowOf>
__device__ static inline void tc_load_query(TcFragQ &fq, float *ws, int q0, int nq, RowOf rowof, const float *Q,
                                            int ldq, int qcol, int dqk, float qscale)
{
    __half *stage = (__half *)ws;
    for (int idx = threadIdx.x & 31; idx < 16 * TC_D; idx += 32) {
        int r = idx / TC_D, e = idx - r * TC_D;
        float x = 0.0f;
        if (q0 + r < nq && e < dqk)
            x = Q[(size_t)rowof(q0 + r) * ldq + qcol + e] * qscale;
        stage[idx] = __float2half_rn(x);
    }
    __syncwarp();
    nvcuda::wmma::load_matrix_sync(fq, stage, TC_D);
    __syncwarp(); /* ws is overwritten by the first S tile */
}

/* warp-wide: the staged tile's keys lo <= p < hi (at least one) into the warp's 16 rows */
__device__ static inline void tc_attend(TcRow &st, const TcFragQ &fq, const TcSmem &sm, float *ws, int lo, int hi)
{
    using namespace nvcuda;
    const int lane = threadIdx.x & 31, r = lane >> 1, part = lane & 1;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fk; /* K^T: K's rows are B's columns */
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fs;
#pragma unroll
    for (int j = 0; j < TC_KEYS / 16; j++) {
        wmma::fill_fragment(fs, 0.0f);
        wmma::load_matrix_sync(fk, sm.k + j * 16 * TC_D, TC_D);
        wmma::mma_sync(fs, fq, fk, fs);
        wmma::store_matrix_sync(ws + j * 16, fs, TC_KEYS, wmma::mem_row_major);
    }
    __syncwarp();
    /* two passes over the lane's 32 scores (max, then P), read as column pairs starting at the
     * lane's own pair (fewer bank conflicts); P is kept as 16 half2 registers until every lane has
     * read its scores, since P overwrites S in place */
    const float *srow = ws + r * TC_KEYS + part * 32;
    float mx = -INFINITY;
#pragma unroll
    for (int c = 0; c < 16; c++) {
        int cp = (c + lane) & 15, p = part * 32 + 2 * cp;
        float2 sv = *(const float2 *)(srow + 2 * cp);
        if (p >= lo && p < hi)
            mx = fmaxf(mx, sv.x);
        if (p + 1 >= lo && p + 1 < hi)
            mx = fmaxf(mx, sv.y);
    }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float mnew = fmaxf(st.m, mx), corr = exp2f(st.m - mnew); /* 0 on the first tile (m = -inf) */
    __half2 ph[16];
    float sum = 0.0f;
#pragma unroll
    for (int c = 0; c < 16; c++) {
        int cp = (c + lane) & 15, p = part * 32 + 2 * cp;
        float2 sv = *(const float2 *)(srow + 2 * cp);
        ph[c] = __floats2half2_rn(p >= lo && p < hi ? exp2f(sv.x - mnew) : 0.0f,
                                  p + 1 >= lo && p + 1 < hi ? exp2f(sv.y - mnew) : 0.0f);
        sum += __low2float(ph[c]);
        sum += __high2float(ph[c]);
    }
    __syncwarp(); /* every lane has read its scores: P may overwrite them */
    __half2 *prow = (__half2 *)((__half *)ws + r * TC_KEYS + part * 32);
#pragma unroll
    for (int c = 0; c < 16; c++)
        prow[(c + lane) & 15] = ph[c];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1); /* the same sum on both lanes of the pair */
    st.l = st.l * corr + sum;
    st.m = mnew;
#pragma unroll
    for (int e = 0; e < 8; e++)
        st.o[e] *= corr;
    __syncwarp();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fp;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fv;
    wmma::fill_fragment(fs, 0.0f);
#pragma unroll
    for (int j = 0; j < TC_KEYS / 16; j++) {
        wmma::load_matrix_sync(fp, (const __half *)ws + j * 16, TC_KEYS);
        wmma::load_matrix_sync(fv, sm.v + j * 16 * TC_D, TC_D);
        wmma::mma_sync(fs, fp, fv, fs);
    }
    float *pv = ws + 16 * TC_KEYS / 2; /* after P's 16 x TC_KEYS halves */
    wmma::store_matrix_sync(pv, fs, TC_D, wmma::mem_row_major);
    __syncwarp();
#pragma unroll
    for (int e = 0; e < 8; e++)
        st.o[e] += pv[r * TC_D + part * 8 + e];
    __syncwarp(); /* ws is overwritten by the next S tile */
}

#endif /* CATANET_ATTN_TC_CUH */
