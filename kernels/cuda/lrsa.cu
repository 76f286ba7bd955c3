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
 *          catanet_lrsa_attend_fwd_cuda,
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
    if (!busy)
        return;
    const TcSums ss = tc_row_sums(st);
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
    int N = a->h * a->w, C = a->c, hv = a->heads * a->dv;
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
    /* the projection and the band-weighted combine in one pass: out = f (cnt x + asum wproj^T)
     * (linear.cu's fused layer; on tensor cores in the fp16 mode, as the cuBLAS GEMM was), stored as
     * fp16 when cx->lrsa_out_fp16 says so, from an fp16 x when cx->lrsa_x_fp16 does, and an fp16
     * asum when cx->lrsa_asum_fp16 does */
    CatanetLinearFusion comb = { .res = x, .x_fp16 = cx->lrsa_asum_fp16, .y_fp16 = cx->lrsa_out_fp16,
                                 .res_fp16 = cx->lrsa_x_fp16,
                                 .band_wr = tb.wr, .band_wc = tb.wc, .band_cr = tb.cr, .band_cc = tb.cc,
                                 .band_w = a->w };
    return catanet_linear_fused_fwd_cuda(cx, N, hv, C, s->asum, wproj, &comb, out);
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
