/*
 * lrsa.cu: Local-Region Self-Attention (twin of kernels/cpu/lrsa.c).
 * LayerNorm and the q/k/v projections act per token, so they run once over the whole image
 * (a token's LN(P) and projections are the same in every patch that covers it). The attention of
 * every (patch, head) is one fused kernel (online softmax over the patch's keys, streamed through
 * shared memory); its outputs are summed per token into asum (written by the first patch to
 * reach a token, no memset). Patches whose row and column indices are equal mod 3 never overlap,
 * so nine launches (one per class) add without atomics, in a fixed order. By linearity
 * sum_p (P + proj(A_p)) = cnt * x + proj(sum_p A_p): one projection GEMM, then the coverage count
 * and the official band weights (built on the host by catanet_lrsa_starts and
 * catanet_lrsa_band_weights, uploaded once per size).
 * In the fp16 precision mode (cx->attn_fp16) the attention runs on tensor cores instead
 * (lrsa_attn_tc_kernel: fp16 Q/K/V/P, fp32 softmax and accumulation, attn_tc.cuh); everything
 * else, the nine patch classes and the band weights included, is the same code. The attention
 * reads q, k and v as fp16 when the caller stored them so (cx->qkv_fp16; catanet_lrsa_attend_fwd_cuda
 * only): half the bytes of the ~1.3 patches' re-reads. With cx->lrsa_asum_fp16 asum is stored as
 * fp16 (each patch's add in fp32, then rounded): the combine's tensor cores round it to fp16 anyway,
 * and its write, ~0.3 read-modify-writes and read a token are half the bytes.
 * defines: catanet_lrsa_cuda_table_bytes, catanet_lrsa_cuda_table_fill, catanet_lrsa_fwd_cuda,
 *          catanet_lrsa_attend_fwd_cuda, catanet_lrsa_fused_takes, catanet_lrsa_fused_smem,
 *          catanet_lrsa_fused_setup,
 *          catanet_lrsa_fused_fwd_cuda,
 *          catanet_lrsa_bwd_cuda_work, catanet_lrsa_bwd_cuda
 */
#include <stdlib.h>
#include <string.h>

#include "attn_tc.cuh"
#include "cuda_common.cuh"
#include "gemm.cuh"

#define LRSA_QUERIES 256

/* table: int32 rs[nr], cs[nc]; float wr[h], wc[w], cr[h], cc[w] (cr/cc: patches covering a row/col) */
typedef struct LrsaTable {
    const int32_t *rs, *cs;
    const float *wr, *wc, *cr, *cc;
} LrsaTable;

static void starts_count(const CatanetLrsaArgs *a, int *nr, int *nc)
{
    *nr = catanet_lrsa_starts(a->h, a->ps, NULL, 0);
    *nc = catanet_lrsa_starts(a->w, a->ps, NULL, 0);
}

size_t catanet_lrsa_cuda_table_bytes(const CatanetLrsaArgs *a)
{
    int nr, nc;
    starts_count(a, &nr, &nc);
    return sizeof(int32_t) * ((size_t)nr + nc) + sizeof(float) * 2 * ((size_t)a->h + a->w);
}

static LrsaTable table_view(const CatanetLrsaArgs *a, const void *base)
{
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable t;
    t.rs = (const int32_t *)base;
    t.cs = t.rs + nr;
    t.wr = (const float *)(t.cs + nc);
    t.wc = t.wr + a->h;
    t.cr = t.wc + a->w;
    t.cc = t.cr + a->h;
    return t;
}

int catanet_lrsa_cuda_table_fill(const CatanetLrsaArgs *a, void *host_table)
{
    if (a->h < a->ps || a->w < a->ps || a->ps < 3)
        return CATANET_ERR_INVALID_ARG;
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable t = table_view(a, host_table);
    int32_t *rs = (int32_t *)t.rs, *cs = (int32_t *)t.cs;
    float *wr = (float *)t.wr, *wc = (float *)t.wc, *cr = (float *)t.cr, *cc = (float *)t.cc;
    int *tmp = (int *)malloc(sizeof(int) * ((size_t)nr + nc));
    if (!tmp)
        return CATANET_ERR_NOMEM;
    catanet_lrsa_starts(a->h, a->ps, tmp, nr);
    catanet_lrsa_starts(a->w, a->ps, tmp + nr, nc);
    for (int i = 0; i < nr; i++)
        rs[i] = tmp[i];
    for (int i = 0; i < nc; i++)
        cs[i] = tmp[nr + i];
    free(tmp);
    catanet_lrsa_band_weights(a->h, a->ps, wr);
    catanet_lrsa_band_weights(a->w, a->ps, wc);
    memset(cr, 0, sizeof(float) * a->h);
    memset(cc, 0, sizeof(float) * a->w);
    for (int i = 0; i < nr; i++)
        for (int r = rs[i]; r < rs[i] + a->ps; r++)
            cr[r] += 1.0f;
    for (int i = 0; i < nc; i++)
        for (int r = cs[i]; r < cs[i] + a->ps; r++)
            cc[r] += 1.0f;
    return 0;
}

/* key/query t of the patch at (top, left) -> token row */
struct PatchRow {
    int top, left, ps, w;
    __device__ int operator()(int t) const { return (top + t / ps) * w + left + t % ps; }
};

/* The nine class launches share asum without a memset: the first launch to reach a token writes
 * its entries, the later ones add (launch order: class index cr0 * 3 + cc0). A token (r, c) of
 * patch (pr, pc) was reached before when a patch of an earlier class covers it too. The patches
 * covering row r are a run of consecutive indices around pr (the starts never decrease, and nor do
 * the ends), likewise for column c: one to three of each. Saves the memset and the first read of
 * asum, 320 bytes a token. */
__device__ static bool lrsa_reached_before(const LrsaTable &tb, int nr, int nc, int ps, int pr, int pc, int r, int c)
{
    int i0 = pr, i1 = pr, j0 = pc, j1 = pc;
    while (i0 > 0 && tb.rs[i0 - 1] + ps > r)
        i0--;
    while (i1 + 1 < nr && tb.rs[i1 + 1] <= r)
        i1++;
    while (j0 > 0 && tb.cs[j0 - 1] + ps > c)
        j0--;
    while (j1 + 1 < nc && tb.cs[j1 + 1] <= c)
        j1++;
    const int cls = (pr % 3) * 3 + pc % 3;
    for (int i = i0; i <= i1; i++)
        for (int j = j0; j <= j1; j++)
            if ((i % 3) * 3 + j % 3 < cls)
                return true;
    return false;
}

/* one (patch, head, query chunk) per block; the patches of class (cr0, cc0) mod 3 */
template <int DQK, int DV, typename TQ, typename TA>
__global__ void __launch_bounds__(LRSA_QUERIES)
lrsa_attn_kernel(CatanetLrsaArgs a, LrsaTable tb, int nr, int nc, int cr0, int cc0, float scale,
                 const TQ *q, const TQ *k, const TQ *v, TA *asum)
{
    __shared__ AttSmem<DQK, DV> sm;
    const int dqk = DQK ? DQK : a.dqk, dv = DV ? DV : a.dv;
    const int hq = a.heads * dqk, hv = a.heads * dv, T = a.ps * a.ps;
    const int ncp = (nc - cc0 + 2) / 3;
    const int pr = cr0 + 3 * (int)(blockIdx.x / ncp), pc = cc0 + 3 * (int)(blockIdx.x % ncp);
    const int h = blockIdx.y;
    const int t = blockIdx.z * blockDim.x + threadIdx.x;
    const bool active = t < T;
    PatchRow rowof = { tb.rs[pr], tb.cs[pc], a.ps, a.w };
    int tok = active ? rowof(t) : 0;
    float qv[ATT_PAD(DQK)];
    load_query<DQK>(qv, active, q + (size_t)tok * hq + h * dqk, dqk);
    OnlineSoftmax<DV> st;
    os_init(st, dv);
    attend<DQK, DV>(st, qv, active, T, rowof, k, hq, h * dqk, v, hv, h * dv, dqk, dv, scale, sm);
    if (!active)
        return;
    float il = 1.0f / st.l;
    TA *o = asum + (size_t)tok * hv + h * dv;
    const bool add = lrsa_reached_before(tb, nr, nc, a.ps, pr, pc, rowof.top + t / a.ps, rowof.left + t % a.ps);
#pragma unroll
    for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
        if (DV || e < dv)
            st_act(o + e, (add ? ld_act(o + e) : 0.0f) + st.acc[e] * il);
}

/* warp-wide, after a warp's last key tile: its 16 queries q0 .. (those in the patch) normalised into
 * asum, written by the first patch to reach a token and added by the later ones */
template <typename TA>
__device__ static inline void lrsa_tc_store(const TcRow &st, int q0, const CatanetLrsaArgs &a, const LrsaTable &tb,
                                            int nr, int nc, int pr, int pc, int h, PatchRow rowof, TA *asum)
{
    const TcSums ss = tc_row_sums(st);
    const int T = a.ps * a.ps, hv = a.heads * a.dv;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int qi = q0 + tc_out_row(i);
        if (qi >= T)
            continue;
        float il = 1.0f / ss.l[i >> 1];
        TA *o = asum + (size_t)rowof(qi) * hv + h * a.dv;
        const bool add = lrsa_reached_before(tb, nr, nc, a.ps, pr, pc, rowof.top + qi / a.ps, rowof.left + qi % a.ps);
#pragma unroll
        for (int n = 0; n < 2; n++) {
            int e = tc_out_dim(n, i);
            if (e < a.dv)
                st_act(o + e, (add ? ld_act(o + e) : 0.0f) + st.o[n][i] * il);
        }
    }
}

/* the fp16 mode's attention (cx->attn_fp16): the same blocks, on tensor cores (attn_tc.cuh); one
 * (patch, head, chunk of TC_ROWS queries) per block, every key of the patch streamed in tiles */
template <typename TQ, typename TA, bool EXP_FMA>
__global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS)
lrsa_attn_tc_kernel(CatanetLrsaArgs a, LrsaTable tb, int nr, int nc, int cr0, int cc0, float qscale, const TQ *q,
                    const TQ *k, const TQ *v, TA *asum)
{
    __shared__ TcSmem sm;
    const int hq = a.heads * a.dqk, hv = a.heads * a.dv, T = a.ps * a.ps;
    const int ncp = (nc - cc0 + 2) / 3;
    const int pr = cr0 + 3 * (int)(blockIdx.x / ncp), pc = cc0 + 3 * (int)(blockIdx.x % ncp);
    const int h = blockIdx.y;
    const int q0 = (int)blockIdx.z * TC_ROWS + (int)(threadIdx.x >> 5) * 16; /* the warp's first query */
    const bool busy = q0 < T; /* warp-uniform: a warp past the patch's end only helps staging */
    PatchRow rowof = { tb.rs[pr], tb.cs[pc], a.ps, a.w };
    TcFragQ fq;
    if (busy)
        tc_load_query(fq, q0, T, rowof, q, hq, h * a.dqk, a.dqk, qscale);
    TcRow st;
    tc_row_init(st);
    for (int t0 = 0; t0 < T; t0 += TC_KEYS) {
        int cnt = T - t0 < TC_KEYS ? T - t0 : TC_KEYS;
        __syncthreads(); /* the previous tile is no longer read */
        tc_stage(sm, t0, cnt, rowof, k, hq, h * a.dqk, v, hv, h * a.dv, a.dqk, a.dv);
        __syncthreads();
        if (busy)
            tc_attend<EXP_FMA>(st, fq, sm, 0, cnt);
    }
    if (busy)
        lrsa_tc_store(st, q0, a, tb, nr, nc, pr, pc, h, rowof, asum);
}

/* the nine patch classes' attention into asum (q, k, v as TQ: float, or __half when stored so; asum
 * as TA: float, or __half when cx->lrsa_asum_fp16 says so) */
template <typename TQ, typename TA>
static int lrsa_attend_classes(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, LrsaTable tb, int nr, int nc, bool tc,
                               const CatanetLrsaCudaScratch *s)
{
    const TQ *q = (const TQ *)s->q, *k = (const TQ *)s->k, *v = (const TQ *)s->v;
    TA *asum = (TA *)s->asum;
    float scale = 1.0f / sqrtf((float)a->dqk);
    int T = a->ps * a->ps, threads = T < LRSA_QUERIES ? (T + 31) / 32 * 32 : LRSA_QUERIES;
    for (int cr0 = 0; cr0 < 3 && cr0 < nr; cr0++)
        for (int cc0 = 0; cc0 < 3 && cc0 < nc; cc0++) {
            int nrp = (nr - cr0 + 2) / 3, ncp = (nc - cc0 + 2) / 3;
            dim3 grid((unsigned)(nrp * ncp), (unsigned)a->heads, (unsigned)((T + threads - 1) / threads));
            if (tc) {
                grid.z = (unsigned)((T + TC_ROWS - 1) / TC_ROWS);
                float qscale = scale * 1.4426950408889634f;
                if (cx->attn_exp2_fma)
                    lrsa_attn_tc_kernel<TQ, TA, true><<<grid, TC_THREADS, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0,
                                                                                       qscale, q, k, v, asum);
                else
                    lrsa_attn_tc_kernel<TQ, TA, false><<<grid, TC_THREADS, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0,
                                                                                        qscale, q, k, v, asum);
            } else if (a->dqk == 9 && a->dv == 10)
                lrsa_attn_kernel<9, 10, TQ, TA><<<grid, threads, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0, scale, q,
                                                                                k, v, asum);
            else
                lrsa_attn_kernel<0, 0, TQ, TA><<<grid, threads, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0, scale, q,
                                                                              k, v, asum);
            CUDA_LAUNCHED(cx, "lrsa attention");
        }
    return 0;
}

/* ---------------- the fp16 mode's LRSA with its LayerNorm and q, k, v made in the attention ----------------
 * lrsa_fused_tc_kernel: one block per (patch, head) of a patch class. The separate path writes q, k
 * and v of every token (224 bytes a token in fp16) and the attention reads them back for each of the
 * ~1.3 patches covering a token; here the block reads the patch's x (80 bytes a token in fp16) and
 * makes its head's q, k and v itself, on the tensor cores:
 *   0. the head's rows of Wq, Wk, Wv as fp16 in shared memory, zero-padded to 16 outputs each and
 *      48 inputs (C <= 48: three k steps);
 *   1. every key of the patch, a warp per 16 tokens: LayerNorm in fp32 (the four lanes of a quad hold
 *      a row's C values between them, in the A fragment's columns), rounded to fp16 as the A
 *      operand; k and v by mma.sync; stored as fp16 in the attention's tile layouts (attn_tc.cuh:
 *      K rows of TC_KW words, V^T rows of vw words with dim TC_D - 1 set to 1 for the row sums), the
 *      whole patch at once (tpad = T rounded up to TC_KEYS keys; rows past T are zeros);
 *   2. each warp's 16-query tiles: their LayerNorm and q again by mma.sync (scale folded in, as the
 *      separate path's attention does when it loads q), the accumulators packed to fp16 as the A
 *      fragment of Q K^T; the online softmax over the patch's keys straight from shared memory
 *      (tc_attend_at), the outputs into asum as lrsa_attn_tc_kernel writes them.
 * The rounding points are the separate path's (LN(x), the weights, k, v and the scaled q in fp16; every
 * sum in fp32), but q is rounded once instead of twice. Shared memory: 5.25 KB of weights, tpad * 48 B
 * of K and 64 (tpad / 2 + 4) B of V^T: 71 KB for patch 28, above the default 48 KB, so
 * catanet_lrsa_fused_setup raises the limit once, outside any graph capture. A block per (patch,
 * head) instead of per (patch, head, 128 queries): the keys are made once for all the patch's
 * queries. */
#define LF_KS 3                /* k steps of the projection: C <= 48 */
#define LF_N 48                /* projection outputs: q [0, 16), k [16, 32), v [32, 48) */
#define LF_WS 56               /* row stride of the staged weights in halves: 28 words, conflict-free B loads */

/* the shared-memory geometry of a patch of ps x ps keys, for the host's size and the kernel's layout
 * alike: the keys rounded up to whole tiles, and V^T's row stride in words (vw % 32 == 4) */
__host__ __device__ static inline int lf_tpad(int ps) { return (ps * ps + TC_KEYS - 1) / TC_KEYS * TC_KEYS; }
__host__ __device__ static inline int lf_vw(int ps) { return lf_tpad(ps) / 2 + 4; }

int catanet_lrsa_fused_takes(int c, int dqk, int dv)
{
    return c > 0 && c <= 16 * LF_KS && dqk > 0 && dqk <= TC_D && dv > 0 && dv < TC_D;
}

size_t catanet_lrsa_fused_smem(int ps)
{
    return sizeof(__half) * LF_N * LF_WS + sizeof(uint32_t) * ((size_t)lf_tpad(ps) * TC_KW + (size_t)TC_D * lf_vw(ps));
}

/* the channel of a lane's j-th value (0..3) in k step ks: the A fragment's columns 2t, 2t + 1, 2t + 8,
 * 2t + 9 */
__device__ static inline int lf_col(int ks, int j, int t) { return 16 * ks + 2 * t + (j & 1) + 8 * (j >> 1); }

/* the A fragments of LN(x) for the warp's 16 patch tokens r0 .. r0 + 15 (rows >= T: zeros). Lane (g, t)
 * holds columns 16 ks + 2t + {0, 1, 8, 9} of rows g and g + 8, so a quad holds whole rows: the sums
 * for the mean and the variance (two passes, fp32) close with two shuffles */
template <typename TX>
__device__ static inline void lf_ln_rows(uint32_t af[LF_KS][4], int r0, int T, PatchRow rowof, const TX *x, int C,
                                         const float *lnw, const float *lnb)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    float v[2][LF_KS][4];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int r = r0 + g + 8 * hr;
        const bool ok = r < T;
        const TX *xr = x + (size_t)(ok ? rowof(r) : 0) * C;
        float s = 0.0f;
#pragma unroll
        for (int ks = 0; ks < LF_KS; ks++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int col = lf_col(ks, j, t);
                v[hr][ks][j] = ok && col < C ? ld_act(xr + col) : 0.0f;
                s += v[hr][ks][j];
            }
        s += __shfl_xor_sync(0xffffffffu, s, 1);
        s += __shfl_xor_sync(0xffffffffu, s, 2);
        const float mean = s / C;
        float q = 0.0f;
#pragma unroll
        for (int ks = 0; ks < LF_KS; ks++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int col = lf_col(ks, j, t);
                float d = v[hr][ks][j] - mean;
                q += col < C ? d * d : 0.0f;
            }
        q += __shfl_xor_sync(0xffffffffu, q, 1);
        q += __shfl_xor_sync(0xffffffffu, q, 2);
        const float rstd = rsqrtf(q / C + CATANET_LN_EPS);
#pragma unroll
        for (int ks = 0; ks < LF_KS; ks++)
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int col = lf_col(ks, j, t);
                v[hr][ks][j] = ok && col < C ? (v[hr][ks][j] - mean) * rstd * lnw[col] + lnb[col] : 0.0f;
            }
    }
#pragma unroll
    for (int ks = 0; ks < LF_KS; ks++) { /* a[i]: row g + 8 (i & 1), columns 2t + 8 (i >> 1) and one more */
        af[ks][0] = mma_pack_half2(v[0][ks][0], v[0][ks][1]);
        af[ks][1] = mma_pack_half2(v[1][ks][0], v[1][ks][1]);
        af[ks][2] = mma_pack_half2(v[0][ks][2], v[0][ks][3]);
        af[ks][3] = mma_pack_half2(v[1][ks][2], v[1][ks][3]);
    }
}

/* outputs n0 .. n0 + 7 of the projection for the warp's 16 rows: acc[0..1] row g, acc[2..3] row g + 8,
 * columns n0 + 2t and n0 + 2t + 1 */
__device__ static inline void lf_mma(float acc[4], const uint32_t af[LF_KS][4], const __half *ws, int n0)
{
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    acc[0] = acc[1] = acc[2] = acc[3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < LF_KS; ks++) {
        const __half *p = ws + (n0 + g) * LF_WS + 16 * ks + 2 * t;
        uint32_t b[2] = { *(const uint32_t *)p, *(const uint32_t *)(p + 8) };
        mma_16816(acc, af[ks], b);
    }
}

template <typename TX, typename TA, bool EXP_FMA>
__global__ void __launch_bounds__(TC_THREADS)
lrsa_fused_tc_kernel(CatanetLrsaArgs a, LrsaTable tb, int nr, int nc, int cr0, int cc0, float qscale, const TX *x,
                     const float *lnw, const float *lnb, const float *wq, const float *wk, const float *wv,
                     TA *asum)
{
    extern __shared__ uint32_t lf_smem[];
    const int T = a.ps * a.ps, tpad = lf_tpad(a.ps), vw = lf_vw(a.ps), C = a.c;
    const int dqk = a.dqk, dv = a.dv, h = blockIdx.y;
    __half *ws = (__half *)lf_smem;
    uint32_t *kt = lf_smem + LF_N * LF_WS / 2, *vt = kt + (size_t)tpad * TC_KW;
    __half *vth = (__half *)vt;
    const int ncp = (nc - cc0 + 2) / 3;
    const int pr = cr0 + 3 * (int)(blockIdx.x / ncp), pc = cc0 + 3 * (int)(blockIdx.x % ncp);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    PatchRow rowof = { tb.rs[pr], tb.cs[pc], a.ps, a.w };
    /* 0. the head's weights */
    for (int i = threadIdx.x; i < LF_N * LF_WS; i += blockDim.x) {
        int n = i / LF_WS, c = i - n * LF_WS, part = n >> 4, e = n & 15;
        float w = 0.0f;
        if (c < C && part < 2 && e < dqk)
            w = (part ? wk : wq)[(size_t)(h * dqk + e) * C + c];
        else if (c < C && part == 2 && e < dv)
            w = wv[(size_t)(h * dv + e) * C + c];
        ws[i] = __float2half_rn(w);
    }
    __syncthreads();
    /* 1. k and v of the patch's keys */
    for (int mt = warp; mt < tpad / 16; mt += TC_WARPS) {
        const int r0 = mt * 16;
        uint32_t af[LF_KS][4];
        lf_ln_rows<TX>(af, r0, T, rowof, x, C, lnw, lnb);
#pragma unroll
        for (int nt = 0; nt < 4; nt++) { /* k dims 0..15, then v dims 0..15 */
            float acc[4];
            lf_mma(acc, af, ws, 16 + 8 * nt);
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int p = r0 + g + 8 * hr;
                const bool ok = p < T;
                const float c0 = ok ? acc[2 * hr] : 0.0f, c1 = ok ? acc[2 * hr + 1] : 0.0f;
                if (nt < 2) {
                    kt[p * TC_KW + 4 * nt + t] = mma_pack_half2(c0, c1);
                } else {
                    const int e = 8 * (nt - 2) + 2 * t;
                    vth[(size_t)e * 2 * vw + p] = __float2half_rn(c0);
                    /* dim TC_D - 1 is never a value dim (dv < TC_D): the row sums' ones */
                    vth[(size_t)(e + 1) * 2 * vw + p] = __float2half_rn(e + 1 == TC_D - 1 ? (ok ? 1.0f : 0.0f) : c1);
                }
            }
        }
    }
    __syncthreads();
    /* 2. the warp's query tiles against every key of the patch */
    for (int mt = warp; mt < (T + 15) / 16; mt += TC_WARPS) {
        const int q0 = mt * 16;
        uint32_t af[LF_KS][4];
        lf_ln_rows<TX>(af, q0, T, rowof, x, C, lnw, lnb);
        float qa[4], qb[4];
        lf_mma(qa, af, ws, 0);
        lf_mma(qb, af, ws, 8);
        TcFragQ fq; /* a[i]: row g + 8 (i & 1), dims 2t + 8 (i >> 1): the accumulators' own places */
        fq.a[0] = mma_pack_half2(qa[0] * qscale, qa[1] * qscale);
        fq.a[1] = mma_pack_half2(qa[2] * qscale, qa[3] * qscale);
        fq.a[2] = mma_pack_half2(qb[0] * qscale, qb[1] * qscale);
        fq.a[3] = mma_pack_half2(qb[2] * qscale, qb[3] * qscale);
        TcRow st;
        tc_row_init(st);
        for (int t0 = 0; t0 < T; t0 += TC_KEYS)
            tc_attend_at<EXP_FMA>(st, fq, kt + (size_t)t0 * TC_KW, vt + t0 / 2, vw, 0,
                                  T - t0 < TC_KEYS ? T - t0 : TC_KEYS);
        lrsa_tc_store(st, q0, a, tb, nr, nc, pr, pc, h, rowof, asum);
    }
}

/* the shared-memory limit of every instantiation lrsa_fused_classes may launch */
template <typename TX, typename TA>
static cudaError_t lf_raise(int smem)
{
    cudaError_t e = cudaFuncSetAttribute(lrsa_fused_tc_kernel<TX, TA, false>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    return e != cudaSuccess ? e
                            : cudaFuncSetAttribute(lrsa_fused_tc_kernel<TX, TA, true>,
                                                   cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
}

int catanet_lrsa_fused_setup(CatanetCudaCtx *cx, int max_ps)
{
    CUDA_REQUIRE(cx, max_ps >= 3, "lrsa_fused_setup");
    size_t smem = catanet_lrsa_fused_smem(max_ps);
    int dev = 0, optin = 0;
    CUDA_TRY(cx, cudaGetDevice(&dev));
    CUDA_TRY(cx, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return cuda_fail(cx, CATANET_ERR_UNSUPPORTED,
                         "lrsa_fused: patch %d needs %zu bytes of shared memory a block, the device allows %d", max_ps,
                         smem, optin);
    CUDA_TRY(cx, (lf_raise<float, float>((int)smem)));
    CUDA_TRY(cx, (lf_raise<float, __half>((int)smem)));
    CUDA_TRY(cx, (lf_raise<__half, float>((int)smem)));
    CUDA_TRY(cx, (lf_raise<__half, __half>((int)smem)));
    return 0;
}

template <typename TX, typename TA>
static int lrsa_fused_classes(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, LrsaTable tb,
                               int nr, int nc, const float *x, float *asum)
{
    const float qscale = 1.0f / sqrtf((float)a->dqk) * 1.4426950408889634f;
    const size_t smem = catanet_lrsa_fused_smem(a->ps);
    for (int cr0 = 0; cr0 < 3 && cr0 < nr; cr0++)
        for (int cc0 = 0; cc0 < 3 && cc0 < nc; cc0++) {
            int nrp = (nr - cr0 + 2) / 3, ncp = (nc - cc0 + 2) / 3;
            dim3 grid((unsigned)(nrp * ncp), (unsigned)a->heads);
            if (cx->attn_exp2_fma)
                lrsa_fused_tc_kernel<TX, TA, true><<<grid, TC_THREADS, smem, cx->stream>>>(
                    *a, tb, nr, nc, cr0, cc0, qscale, (const TX *)x, wt->norm_w, wt->norm_b, wt->wq, wt->wk, wt->wv,
                    (TA *)asum);
            else
                lrsa_fused_tc_kernel<TX, TA, false><<<grid, TC_THREADS, smem, cx->stream>>>(
                    *a, tb, nr, nc, cr0, cc0, qscale, (const TX *)x, wt->norm_w, wt->norm_b, wt->wq, wt->wk, wt->wv,
                    (TA *)asum);
            CUDA_LAUNCHED(cx, "lrsa fused attention");
        }
    return 0;
}

/* the projection and the band-weighted combine in one pass: out = f (cnt x + asum wproj^T)
 * (linear.cu's fused layer; on tensor cores in the fp16 mode, as the cuBLAS GEMM was), stored as
 * fp16 when cx->lrsa_out_fp16 says so, from an fp16 x when cx->lrsa_x_fp16 does, and an fp16
 * asum when cx->lrsa_asum_fp16 does */
static int lrsa_combine(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const float *wproj, LrsaTable tb,
                        const float *asum, const float *x, float *out)
{
    CatanetLinearFusion comb = { .res = x, .x_fp16 = cx->lrsa_asum_fp16, .y_fp16 = cx->lrsa_out_fp16,
                                 .res_fp16 = cx->lrsa_x_fp16, .band_wr = tb.wr, .band_wc = tb.wc, .band_cr = tb.cr,
                                 .band_cc = tb.cc, .band_w = a->w };
    return catanet_linear_fused_fwd_cuda(cx, a->h * a->w, a->heads * a->dv, a->c, asum, wproj, &comb, out);
}

int catanet_lrsa_fused_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                                const void *dev_table, float *asum, const float *x, float *out)
{
    CUDA_REQUIRE(cx, a->h >= a->ps && a->w >= a->ps && a->ps >= 3 && a->heads > 0, "lrsa_fused_fwd_cuda");
    CUDA_REQUIRE(cx, catanet_lrsa_fused_takes(a->c, a->dqk, a->dv),
                 "lrsa_fused_fwd_cuda (C <= 48, head dims <= 16 and < 16)");
    CUDA_REQUIRE(cx, dev_table && asum && x && out && wt && wt->norm_w && wt->norm_b && wt->wq && wt->wk && wt->wv &&
                     wt->wproj, "lrsa_fused_fwd_cuda");
    CUDA_REQUIRE(cx, !cx->lrsa_out_fp16 || (const float *)out != x, "lrsa_fused_fwd_cuda (an fp16 out apart from x)");
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable tb = table_view(a, dev_table);
    int ret = cx->lrsa_x_fp16 ? (cx->lrsa_asum_fp16 ? lrsa_fused_classes<__half, __half>(cx, a, wt, tb, nr, nc, x, asum)
                                                    : lrsa_fused_classes<__half, float>(cx, a, wt, tb, nr, nc, x, asum))
                              : (cx->lrsa_asum_fp16 ? lrsa_fused_classes<float, __half>(cx, a, wt, tb, nr, nc, x, asum)
                                                    : lrsa_fused_classes<float, float>(cx, a, wt, tb, nr, nc, x, asum));
    if (ret < 0)
        return ret;
    return lrsa_combine(cx, a, wt->wproj, tb, asum, x, out);
}

/* x [H,W,C] -> out [H,W,C] */
int catanet_lrsa_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                          float *out)
{
    CUDA_REQUIRE(cx, a->h >= a->ps && a->w >= a->ps && a->ps >= 3 && a->c > 0 && a->heads > 0, "lrsa_fwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD, "lrsa_fwd_cuda");
    CUDA_REQUIRE(cx, dev_table && s->ln && s->q && s->k && s->v && s->asum, "lrsa_fwd_cuda");
    CUDA_REQUIRE(cx, !cx->qkv_fp16 && !cx->lrsa_x_fp16,
                 "lrsa_fwd_cuda (its LayerNorm and projections are fp32: unset cx->qkv_fp16, lrsa_x_fp16)");
    int N = a->h * a->w, C = a->c, hq = a->heads * a->dqk, hv = a->heads * a->dv;
    int ret;
    if ((ret = catanet_layernorm_fwd_cuda(cx, N, C, x, wt->norm_w, wt->norm_b, s->ln)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hq, s->ln, wt->wq, NULL, s->q)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hq, s->ln, wt->wk, NULL, s->k)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hv, s->ln, wt->wv, NULL, s->v)) < 0)
        return ret;
    return catanet_lrsa_attend_fwd_cuda(cx, a, wt->wproj, dev_table, s, x, out);
}

int catanet_lrsa_attend_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const float *wproj,
                                 const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                                 float *out)
{
    CUDA_REQUIRE(cx, a->h >= a->ps && a->w >= a->ps && a->ps >= 3 && a->c > 0 && a->heads > 0, "lrsa_attend_fwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD, "lrsa_attend_fwd_cuda");
    CUDA_REQUIRE(cx, dev_table && wproj && s->q && s->k && s->v && s->asum, "lrsa_attend_fwd_cuda");
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable tb = table_view(a, dev_table);
    /* no memset of asum: each token's first patch writes it (lrsa_reached_before) */
    /* fp16 mode: tensor cores when the head dims fit one mma k step with a padding dim to spare for
     * the row sums (attn_tc.cuh; CATANet's 9/10 do) */
    const bool tc = cx->attn_fp16 && a->dqk <= TC_D && a->dv < TC_D;
    int ret = cx->qkv_fp16 ? (cx->lrsa_asum_fp16 ? lrsa_attend_classes<__half, __half>(cx, a, tb, nr, nc, tc, s)
                                                 : lrsa_attend_classes<__half, float>(cx, a, tb, nr, nc, tc, s))
                           : (cx->lrsa_asum_fp16 ? lrsa_attend_classes<float, __half>(cx, a, tb, nr, nc, tc, s)
                                                 : lrsa_attend_classes<float, float>(cx, a, tb, nr, nc, tc, s));
    if (ret < 0)
        return ret;
    return lrsa_combine(cx, a, wproj, tb, s->asum, x, out);
}

/* ---------------- backward (twin of catanet_lrsa_bwd_ref) ----------------
 * The CPU reference differentiates every patch on its own. Everything but the attention acts per
 * token with the same values in every patch that covers the token (LN(P), its projections, the
 * band-weighted dY = dout wr wc, dA = dY Wproj), and every step after the attention is linear in
 * the patch gradients, so the sums over patches can be taken per token first:
 *   dQ, dK, dV, asum = sums over the covering patches of the attention backward (and of A);
 *   gproj += dY^T asum;  dPn = dQ Wq + dK Wk + dV Wv;  gq += dQ^T LN(x) (k, v alike);
 *   dx += cnt dY + LN_bwd(dPn)   (cnt = patches covering the pixel; g->norm_w/b from LN_bwd).
 * The attention backward runs one block per (patch, head) in the forward's nine non-overlapping
 * patch classes (fixed order, no atomics): phase 1, a thread per query: softmax statistics (max,
 * sum, D = dA.A) into shared memory, A added into asum, dq += scale sum_j P (dA.v_j - D) k_j;
 * phase 2, a thread per key: dk += scale sum_i P (dA_i.v - D_i) q_i, dv += sum_i P dA_i.
 * GEMMs are cublasSgemm (fp32 whatever cx->gemm_fp16 says). The same bits on every run. */
#include "reduce.cuh"

#define LRSA_BWD_THREADS 256
#define LRSA_BWD_MAX_T 4096 /* 3 T floats of shared memory: 48 KB */

/* work: ln [N,C], mean, rstd [N], q, k [N,hq], v [N,hv], dy [N,C], da, asum [N,hv], dq, dk [N,hq],
 * dv [N,hv], dpn [N,C] */
size_t catanet_lrsa_bwd_cuda_work(const CatanetLrsaArgs *a)
{
    size_t N = (size_t)a->h * a->w, hq = (size_t)a->heads * a->dqk, hv = (size_t)a->heads * a->dv;
    return N * (3 * (size_t)a->c + 2 + 4 * hq + 4 * hv);
}

__device__ static inline float ldot(const float *a, const float *b, int d)
{
    float s = 0.0f;
    for (int e = 0; e < d; e++)
        s += a[e] * b[e];
    return s;
}

__global__ void __launch_bounds__(LRSA_BWD_THREADS)
lrsa_attn_bwd_kernel(CatanetLrsaArgs a, LrsaTable tb, int nc, int cr0, int cc0, float scale, const float *q,
                     const float *k, const float *v, const float *da, float *asum, float *dq, float *dk, float *dv)
{
    extern __shared__ float st[]; /* [3][T]: max, sum, D per query */
    const int dqk = a.dqk, dvd = a.dv, hq = a.heads * dqk, hv = a.heads * dvd, T = a.ps * a.ps;
    const int ncp = (nc - cc0 + 2) / 3;
    const int pr = cr0 + 3 * (int)(blockIdx.x / ncp), pc = cc0 + 3 * (int)(blockIdx.x % ncp);
    const int h = blockIdx.y;
    PatchRow rowof = { tb.rs[pr], tb.cs[pc], a.ps, a.w };
    const float *K = k + h * dqk, *V = v + h * dvd, *Q = q + h * dqk, *DA = da + h * dvd;
    for (int i = threadIdx.x; i < T; i += blockDim.x) {
        int ti = rowof(i);
        const float *qi = Q + (size_t)ti * hq, *dai = DA + (size_t)ti * hv;
        float mx = -INFINITY;
        for (int j = 0; j < T; j++)
            mx = fmaxf(mx, ldot(qi, K + (size_t)rowof(j) * hq, dqk) * scale);
        float l = 0.0f, acc[ATT_MAX_HEAD];
        for (int e = 0; e < dvd; e++)
            acc[e] = 0.0f;
        for (int j = 0; j < T; j++) {
            int tj = rowof(j);
            float ex = expf(ldot(qi, K + (size_t)tj * hq, dqk) * scale - mx);
            l += ex;
            const float *vj = V + (size_t)tj * hv;
            for (int e = 0; e < dvd; e++)
                acc[e] += ex * vj[e];
        }
        float D = 0.0f, *as = asum + (size_t)ti * hv + h * dvd;
        for (int e = 0; e < dvd; e++) {
            acc[e] /= l; /* A_i */
            D += dai[e] * acc[e];
            as[e] += acc[e];
        }
        float dqa[ATT_MAX_HEAD];
        for (int e = 0; e < dqk; e++)
            dqa[e] = 0.0f;
        for (int j = 0; j < T; j++) {
            int tj = rowof(j);
            const float *kj = K + (size_t)tj * hq;
            float P = expf(ldot(qi, kj, dqk) * scale - mx) / l;
            float ds = P * (ldot(dai, V + (size_t)tj * hv, dvd) - D) * scale;
            for (int e = 0; e < dqk; e++)
                dqa[e] += ds * kj[e];
        }
        float *d = dq + (size_t)ti * hq + h * dqk;
        for (int e = 0; e < dqk; e++)
            d[e] += dqa[e];
        st[i] = mx;
        st[T + i] = l;
        st[2 * T + i] = D;
    }
    __syncthreads();
    for (int j = threadIdx.x; j < T; j += blockDim.x) {
        int tj = rowof(j);
        float kj[ATT_MAX_HEAD], vj[ATT_MAX_HEAD], dka[ATT_MAX_HEAD], dva[ATT_MAX_HEAD];
        for (int e = 0; e < dqk; e++) {
            kj[e] = K[(size_t)tj * hq + e];
            dka[e] = 0.0f;
        }
        for (int e = 0; e < dvd; e++) {
            vj[e] = V[(size_t)tj * hv + e];
            dva[e] = 0.0f;
        }
        for (int i = 0; i < T; i++) {
            int ti = rowof(i);
            const float *qi = Q + (size_t)ti * hq, *dai = DA + (size_t)ti * hv;
            float P = expf(ldot(qi, kj, dqk) * scale - st[i]) / st[T + i];
            float ds = P * (ldot(dai, vj, dvd) - st[2 * T + i]) * scale;
            for (int e = 0; e < dqk; e++)
                dka[e] += ds * qi[e];
            for (int e = 0; e < dvd; e++)
                dva[e] += P * dai[e];
        }
        float *o = dk + (size_t)tj * hq + h * dqk;
        for (int e = 0; e < dqk; e++)
            o[e] += dka[e];
        o = dv + (size_t)tj * hv + h * dvd;
        for (int e = 0; e < dvd; e++)
            o[e] += dva[e];
    }
}

/* dy = dout wr[y] wc[x] (the band factors, as the CPU twin: dout * (wr * wc)) */
__global__ void lrsa_bwd_dy_kernel(int h, int w, int c, LrsaTable tb, const float *dout, float *dy)
{
    GRID_STRIDE(i, (size_t)h * w * c) {
        size_t pix = i / c;
        int y = (int)(pix / w), xx = (int)(pix - (size_t)y * w);
        dy[i] = __fmul_rn(dout[i], __fmul_rn(tb.wr[y], tb.wc[xx]));
    }
}

/* dx += cnt dy, cnt = the number of patches covering the pixel (the residual path of each) */
__global__ void lrsa_bwd_residual_kernel(int h, int w, int c, LrsaTable tb, const float *dy, float *dx)
{
    GRID_STRIDE(i, (size_t)h * w * c) {
        size_t pix = i / c;
        int y = (int)(pix / w), xx = (int)(pix - (size_t)y * w);
        dx[i] += tb.cr[y] * tb.cc[xx] * dy[i];
    }
}

int catanet_lrsa_bwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const float *x, const float *dout, float *dx,
                          const CatanetLrsaGrads *g)
{
    CUDA_REQUIRE(cx, a->h >= a->ps && a->w >= a->ps && a->ps >= 3 && a->c > 0 && a->heads > 0, "lrsa_bwd_cuda");
    CUDA_REQUIRE(cx, a->c <= CATANET_MAX_DIM && a->ps * a->ps <= LRSA_BWD_MAX_T, "lrsa_bwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD, "lrsa_bwd_cuda");
    CUDA_REQUIRE(cx, dev_table && x && dout && dx && dx != x && dx != dout && g, "lrsa_bwd_cuda");
    CUDA_REQUIRE(cx, g->norm_w && g->norm_b && g->wq && g->wk && g->wv && g->wproj, "lrsa_bwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_lrsa_bwd_cuda_work(a), "lrsa_bwd_cuda");
    int N = a->h * a->w, C = a->c, hq = a->heads * a->dqk, hv = a->heads * a->dv, T = a->ps * a->ps, ret;
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable tb = table_view(a, dev_table);
    float *ln = cx->work, *mean = ln + (size_t)N * C, *rstd = mean + N, *q = rstd + N, *k = q + (size_t)N * hq;
    float *v = k + (size_t)N * hq, *dy = v + (size_t)N * hv, *da = dy + (size_t)N * C, *asum = da + (size_t)N * hv;
    float *dq = asum + (size_t)N * hv, *dk = dq + (size_t)N * hq, *dv = dk + (size_t)N * hq, *dpn = dv + (size_t)N * hv;
    /* the per-token forward, recomputed (fp32 GEMMs) */
    if ((ret = catanet_layernorm_fwd_stats_cuda(cx, N, C, x, wt->norm_w, wt->norm_b, ln, mean, rstd)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 1, N, hq, C, 1.0f, ln, C, wt->wq, C, 0.0f, q, hq)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 1, N, hq, C, 1.0f, ln, C, wt->wk, C, 0.0f, k, hq)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 1, N, hv, C, 1.0f, ln, C, wt->wv, C, 0.0f, v, hv)) < 0)
        return ret;
    size_t nel = (size_t)N * C;
    lrsa_bwd_dy_kernel<<<grid_for(nel, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(a->h, a->w, C, tb, dout, dy);
    CUDA_LAUNCHED(cx, "lrsa_bwd dy");
    /* dA = dY Wproj (Wproj [C, hv]) */
    if ((ret = catanet_cuda_sgemm_rm(cx, 0, 0, N, hv, C, 1.0f, dy, C, wt->wproj, hv, 0.0f, da, hv)) < 0)
        return ret;
    /* asum, dq, dk, dv are contiguous: one memset */
    CUDA_TRY(cx, cudaMemsetAsync(asum, 0, sizeof(float) * (size_t)N * (2 * hv + 2 * hq), cx->stream));
    float scale = 1.0f / sqrtf((float)a->dqk);
    size_t smem = sizeof(float) * 3 * (size_t)T;
    for (int cr0 = 0; cr0 < 3 && cr0 < nr; cr0++)
        for (int cc0 = 0; cc0 < 3 && cc0 < nc; cc0++) {
            int nrp = (nr - cr0 + 2) / 3, ncp = (nc - cc0 + 2) / 3;
            dim3 grid((unsigned)(nrp * ncp), (unsigned)a->heads);
            lrsa_attn_bwd_kernel<<<grid, LRSA_BWD_THREADS, smem, cx->stream>>>(*a, tb, nc, cr0, cc0, scale, q, k, v, da,
                                                                              asum, dq, dk, dv);
            CUDA_LAUNCHED(cx, "lrsa_bwd attention");
        }
    /* weight gradients (accumulate) and dPn */
    if ((ret = catanet_cuda_sgemm_rm(cx, 1, 0, C, hv, N, 1.0f, dy, C, asum, hv, 1.0f, g->wproj, hv)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 0, N, C, hq, 1.0f, dq, hq, wt->wq, C, 0.0f, dpn, C)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 0, N, C, hq, 1.0f, dk, hq, wt->wk, C, 1.0f, dpn, C)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 0, 0, N, C, hv, 1.0f, dv, hv, wt->wv, C, 1.0f, dpn, C)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 1, 0, hq, C, N, 1.0f, dq, hq, ln, C, 1.0f, g->wq, C)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 1, 0, hq, C, N, 1.0f, dk, hq, ln, C, 1.0f, g->wk, C)) < 0 ||
        (ret = catanet_cuda_sgemm_rm(cx, 1, 0, hv, C, N, 1.0f, dv, hv, ln, C, 1.0f, g->wv, C)) < 0)
        return ret;
    lrsa_bwd_residual_kernel<<<grid_for(nel, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(a->h, a->w, C, tb, dy, dx);
    CUDA_LAUNCHED(cx, "lrsa_bwd residual");
    return catanet_layernorm_bwd_cuda(cx, N, C, x, wt->norm_w, mean, rstd, dpn, dx, g->norm_w, g->norm_b);
}
