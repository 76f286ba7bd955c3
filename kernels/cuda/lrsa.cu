/*
 * lrsa.cu: Local-Region Self-Attention (twin of kernels/cpu/lrsa.c).
 * LayerNorm and the q/k/v projections act per token, so they run once over the whole image
 * (a token's LN(P) and projections are the same in every patch that covers it). The attention of
 * every (patch, head) is one fused kernel (online softmax over the patch's keys, streamed through
 * shared memory); its outputs are summed per token into asum. Patches whose row and column indices
 * are equal mod 3 never overlap, so nine launches (one per class) add without atomics, in a fixed
 * order. By linearity sum_p (P + proj(A_p)) = cnt * x + proj(sum_p A_p): one projection GEMM, then
 * the coverage count and the official band weights (built on the host by catanet_lrsa_starts and
 * catanet_lrsa_band_weights, uploaded once per size).
 * defines: catanet_lrsa_cuda_table_bytes, catanet_lrsa_cuda_table_fill, catanet_lrsa_fwd_cuda
 */
#include <stdlib.h>
#include <string.h>

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

/* one (patch, head, query chunk) per block; the patches of class (cr0, cc0) mod 3 */
template <int DQK, int DV>
__global__ void __launch_bounds__(LRSA_QUERIES)
lrsa_attn_kernel(CatanetLrsaArgs a, LrsaTable tb, int nr, int nc, int cr0, int cc0, float scale,
                 const float *q, const float *k, const float *v, float *asum)
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
    float *o = asum + (size_t)tok * hv + h * dv;
#pragma unroll
    for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
        if (DV || e < dv)
            o[e] += st.acc[e] * il;
}

/* out = wr[y] wc[x] (cr[y] cc[x] x + proj); out may alias x. Pixels over blockIdx/threadIdx.y,
 * channels over threadIdx.x */
__global__ void lrsa_combine_kernel(int h, int w, int c, LrsaTable tb, const float *x, const float *proj,
                                    float *out)
{
    for (int pix = blockIdx.x * blockDim.y + threadIdx.y; pix < h * w; pix += gridDim.x * blockDim.y) {
        int y = pix / w, xx = pix - y * w;
        float f = tb.wr[y] * tb.wc[xx], cnt = tb.cr[y] * tb.cc[xx];
        for (int ch = threadIdx.x; ch < c; ch += blockDim.x) {
            size_t i = (size_t)pix * c + ch;
            out[i] = f * (cnt * x[i] + proj[i]);
        }
    }
}

/* x [H,W,C] -> out [H,W,C] */
int catanet_lrsa_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                          float *out)
{
    CUDA_REQUIRE(cx, a->h >= a->ps && a->w >= a->ps && a->ps >= 3 && a->c > 0 && a->heads > 0, "lrsa_fwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD, "lrsa_fwd_cuda");
    CUDA_REQUIRE(cx, dev_table && s->ln && s->q && s->k && s->v && s->asum && s->proj, "lrsa_fwd_cuda");
    int N = a->h * a->w, C = a->c, hq = a->heads * a->dqk, hv = a->heads * a->dv, T = a->ps * a->ps;
    int nr, nc;
    starts_count(a, &nr, &nc);
    LrsaTable tb = table_view(a, dev_table);
    int ret;
    if ((ret = catanet_layernorm_fwd_cuda(cx, N, C, x, wt->norm_w, wt->norm_b, s->ln)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hq, s->ln, wt->wq, NULL, s->q)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hq, s->ln, wt->wk, NULL, s->k)) < 0 ||
        (ret = catanet_linear_fwd_cuda(cx, N, C, hv, s->ln, wt->wv, NULL, s->v)) < 0)
        return ret;
    CUDA_TRY(cx, cudaMemsetAsync(s->asum, 0, sizeof(float) * (size_t)N * hv, cx->stream));
    float scale = 1.0f / sqrtf((float)a->dqk);
    int threads = T < LRSA_QUERIES ? (T + 31) / 32 * 32 : LRSA_QUERIES;
    for (int cr0 = 0; cr0 < 3 && cr0 < nr; cr0++)
        for (int cc0 = 0; cc0 < 3 && cc0 < nc; cc0++) {
            int nrp = (nr - cr0 + 2) / 3, ncp = (nc - cc0 + 2) / 3;
            dim3 grid((unsigned)(nrp * ncp), (unsigned)a->heads, (unsigned)((T + threads - 1) / threads));
            if (a->dqk == 9 && a->dv == 10)
                lrsa_attn_kernel<9, 10><<<grid, threads, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0, scale, s->q,
                                                                         s->k, s->v, s->asum);
            else
                lrsa_attn_kernel<0, 0><<<grid, threads, 0, cx->stream>>>(*a, tb, nr, nc, cr0, cc0, scale, s->q,
                                                                       s->k, s->v, s->asum);
            CUDA_LAUNCHED(cx, "lrsa attention");
        }
    if ((ret = catanet_linear_fwd_cuda(cx, N, hv, C, s->asum, wt->wproj, NULL, s->proj)) < 0)
        return ret;
    unsigned blocks = (unsigned)((N + 7) / 8 < 65535 * 16 ? (N + 7) / 8 : 65535 * 16);
    lrsa_combine_kernel<<<blocks, dim3(32, 8), 0, cx->stream>>>(a->h, a->w, C, tb, x, s->proj, out);
    CUDA_LAUNCHED(cx, "lrsa combine");
    return 0;
}
