/*
 * iasa.cu: the Token Aggregation Block's attention, fused (twin of kernels/cpu/iasa.c): for each
 * query of a subgroup of the cluster-sorted sequence, IASA over its own and the next subgroup's
 * keys (mirror-padded past N, gathered through ord on the fly) and, in a separate softmax, IRCA
 * over the M centers; the two results are summed and written back in token order.
 * One block per (subgroup or run of small subgroups, head, chunk of queries), one query per thread,
 * keys streamed through shared memory with an online softmax: the 2gs-wide score rows never exist
 * in memory.
 * defines: catanet_iasa_fwd_cuda, catanet_mirror_index_cuda
 */
#include "cuda_common.cuh"

#define IASA_QUERIES 256 /* queries (threads) per block */

/* key p of subgroup j's window -> token: the padded sorted position mirrored, then ord */
struct WindowRow {
    const int32_t *ord;
    long long base;
    int n;
    __device__ int operator()(int p) const { return ord[mirror_index(base + p, n)]; }
};

struct IdentityRow {
    __device__ int operator()(int p) const { return p; }
};

/* Block layout: spb = IASA_QUERIES / gs subgroups per block when gs < IASA_QUERIES (their windows
 * overlap: the block streams the union [j0 gs, (j0 + spb + 1) gs) once and each thread takes its
 * own 2gs keys of it), else one subgroup per block in chunks of IASA_QUERIES queries (grid.z). */
template <int DQK, int DV>
__global__ void __launch_bounds__(IASA_QUERIES)
iasa_kernel(CatanetIasaArgs a, int gs, int ng, int spb, float scale, const float *q, const float *k,
            const float *v, const int32_t *ord, const float *kg, const float *vg, float *out)
{
    __shared__ AttSmem<DQK, DV> sm;
    const int dqk = DQK ? DQK : a.dqk, dv = DV ? DV : a.dv;
    const int hq = a.heads * dqk, hv = a.heads * dv;
    const int h = blockIdx.y;
    const int j0 = blockIdx.x * spb;                        /* first subgroup of the block */
    const int nsg = ng - j0 < spb ? ng - j0 : spb;          /* subgroups in this block */
    const int sg = spb > 1 ? threadIdx.x / gs : 0;          /* this thread's subgroup, relative */
    const int qi = spb > 1 ? threadIdx.x - sg * gs : blockIdx.z * blockDim.x + threadIdx.x;
    const long long qp = (long long)(j0 + sg) * gs + qi;
    /* padded query rows (qp >= n) are dropped by the official code: not computed at all */
    const bool active = sg < nsg && qi < gs && qp < a.n;
    int tq = active ? ord[qp] : 0;
    float qv[ATT_PAD(DQK)];
    load_query<DQK>(qv, active, q + (size_t)tq * hq + h * dqk, dqk);

    OnlineSoftmax<DV> loc, glb;
    os_init(loc, dv);
    os_init(glb, dv);
    WindowRow wr = { ord, (long long)j0 * gs, a.n };
    attend<DQK, DV>(loc, qv, active, (nsg + 1) * gs, wr, k, hq, h * dqk, v, hv, h * dv, dqk, dv, scale, sm,
                    sg * gs, sg * gs + 2 * gs);
    attend<DQK, DV>(glb, qv, active, a.m, IdentityRow(), kg, hq, h * dqk, vg, hv, h * dv, dqk, dv, scale, sm);
    if (!active)
        return;
    float il = 1.0f / loc.l, ig = 1.0f / glb.l;
    float *o = out + (size_t)tq * hv + h * dv;
#pragma unroll
    for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
        if (DV || e < dv)
            o[e] = loc.acc[e] * il + glb.acc[e] * ig;
}

/* q,k [N,heads*dqk], v [N,heads*dv], ord [N], kg [M,heads*dqk], vg [M,heads*dv] -> out [N,heads*dv] */
int catanet_iasa_fwd_cuda(CatanetCudaCtx *cx, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, float *out)
{
    CUDA_REQUIRE(cx, a->n > 0 && a->group_size > 0 && a->m > 0 && a->heads > 0, "iasa_fwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD,
                 "iasa_fwd_cuda");
    CUDA_REQUIRE(cx, a->group_size <= (1 << 30) / 2, "iasa_fwd_cuda");
    int gs = a->group_size < a->n ? a->group_size : a->n;
    int ng = (a->n + gs - 1) / gs;
    int spb = gs < IASA_QUERIES ? IASA_QUERIES / gs : 1; /* subgroups per block */
    int threads = spb > 1 ? (spb * gs + 31) / 32 * 32 : gs < IASA_QUERIES ? (gs + 31) / 32 * 32 : IASA_QUERIES;
    dim3 grid((unsigned)((ng + spb - 1) / spb), (unsigned)a->heads,
              (unsigned)(spb > 1 ? 1 : (gs + threads - 1) / threads));
    CUDA_REQUIRE(cx, grid.y <= 65535 && grid.z <= 65535 && threads <= IASA_QUERIES, "iasa_fwd_cuda");
    float scale = 1.0f / sqrtf((float)a->dqk);
    if (a->dqk == 9 && a->dv == 10)
        iasa_kernel<9, 10><<<grid, threads, 0, cx->stream>>>(*a, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
    else
        iasa_kernel<0, 0><<<grid, threads, 0, cx->stream>>>(*a, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
    CUDA_LAUNCHED(cx, "iasa");
    return 0;
}

__global__ void mirror_kernel(const int64_t *i, int n, int count, int32_t *out)
{
    GRID_STRIDE(t, count)
        out[t] = mirror_index(i[t], n);
}

int catanet_mirror_index_cuda(CatanetCudaCtx *cx, const int64_t *i, int n, int count, int32_t *out)
{
    CUDA_REQUIRE(cx, n > 0 && count >= 0, "mirror_index_cuda");
    if (count == 0)
        return 0;
    mirror_kernel<<<grid_for((size_t)count, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(i, n, count, out);
    CUDA_LAUNCHED(cx, "mirror_index");
    return 0;
}
