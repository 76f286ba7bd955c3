/*
 * cluster.cu: CATA token grouping on the GPU (twin of kernels/cpu/cluster.c): each token goes to
 * its most similar center (cosine, fp32, first maximum wins), then a stable counting sort by
 * center: per-chunk histograms, one exclusive scan over (center, chunk), and a scatter in which
 * each warp walks its chunk in token order, so ties keep ascending token order as on the CPU.
 * Nothing here depends on scheduling: the result is deterministic. The similarity has a
 * register-blocked kernel for the model dims (assign_vec_kernel) and a general one.
 * defines: catanet_cluster_cuda_work, catanet_cluster_centers_norm_cuda, catanet_cluster_fwd_cuda,
 *          catanet_cluster_ln_takes, catanet_cluster_ln_fwd_cuda
 */
#include "cuda_common.cuh"

#define CL_CHUNK 1024     /* tokens per chunk of the counting sort */
#define CL_SCAN_THREADS 1024

static size_t n_chunks(int n)
{
    return ((size_t)n + CL_CHUNK - 1) / CL_CHUNK;
}

/* tokens (and centers) per tile of the similarity kernel: keeps shared memory near 33 KB */
static int sim_tile(int c)
{
    return c <= 64 ? 64 : c <= 128 ? 32 : 16;
}

size_t catanet_cluster_cuda_work(int n, int c, int m)
{
    /* normalised centers [m][c] floats, then counts/offsets [m][chunks] int32 */
    return (size_t)m * c + (size_t)m * n_chunks(n);
}

/* F.normalize of each center row: v / max(|v|, 1e-12); one thread per center (m is small) */
__global__ void center_norm_kernel(int m, int c, const float *centers, float *cn)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= m)
        return;
    const float *v = centers + (size_t)j * c;
    float s = 0.0f;
    for (int d = 0; d < c; d++)
        s += v[d] * v[d];
    float nrm = sqrtf(s);
    float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
    for (int d = 0; d < c; d++)
        cn[(size_t)j * c + d] = v[d] * inv;
}

/* xn [n,c], cn [m,c] (unit rows) -> cid [n]. One thread per token; tokens of the block and a
 * tile of centers in shared memory (token rows padded to c+1 floats: no bank conflicts). */
__global__ void assign_kernel(int n, int c, int m, int tile, const float *xn, const float *cn, int32_t *cid)
{
    extern __shared__ float sm[];
    float *u = sm, *ct = sm + (size_t)tile * (c + 1);
    size_t t0 = (size_t)blockIdx.x * tile;
    int rows = (int)((size_t)n - t0 < (size_t)tile ? (size_t)n - t0 : (size_t)tile);
    for (int idx = threadIdx.x; idx < rows * c; idx += blockDim.x) {
        int r = idx / c, d = idx - r * c;
        u[r * (c + 1) + d] = xn[(t0 + r) * c + d];
    }
    __syncthreads();
    int r = threadIdx.x;
    bool active = r < rows;
    if (active) {
        float *ur = u + r * (c + 1);
        float s = 0.0f;
        for (int d = 0; d < c; d++)
            s += ur[d] * ur[d];
        float nrm = sqrtf(s);
        float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
        for (int d = 0; d < c; d++)
            ur[d] *= inv;
    }
    int best = 0;
    float best_s = -INFINITY;
    for (int j0 = 0; j0 < m; j0 += tile) {
        int cnt = m - j0 < tile ? m - j0 : tile;
        __syncthreads();
        for (int idx = threadIdx.x; idx < cnt * c; idx += blockDim.x)
            ct[idx] = cn[(size_t)j0 * c + idx];
        __syncthreads();
        if (!active)
            continue;
        const float *ur = u + r * (c + 1);
        for (int j = 0; j < cnt; j++) {
            float s = 0.0f;
            for (int d = 0; d < c; d++)
                s += ur[d] * ct[j * c + d];
            if (s > best_s) { /* strict: the first maximum wins */
                best_s = s;
                best = j0 + j;
            }
        }
    }
    if (active)
        cid[t0 + r] = best;
}

/* The same assignment for c <= 64, c % 4 == 0 (every CATANet model: dims 36..64): the token row
 * lives in registers and the centers are read as float4 broadcasts, one shared-memory load per 4
 * FMAs instead of two loads per FMA (assign_kernel is bound by those loads: about 0.74 ms of its
 * 0.88 ms for M = 128 at 960x540 by the count). Every sum runs over d in the same order, with
 * the same expression, as assign_kernel's, so cid is the same bits. */
#define CL_VEC_TOKENS 128
#define CL_VEC_MAX_C 64
#define CL_VEC_CENTERS 64 /* centers per shared-memory tile: 64 x 64 floats = 16 KB at most */

/* LN: the rows are x, not LN(x), and the kernel applies the LayerNorm itself (lnw, lnb), one thread
 * per row in a fixed order (two passes in fp32, every step rounded as written: no contraction), so
 * LN(x) is never stored (catanet_cluster_ln_fwd_cuda). x may be stored as fp16 (TX). */
template <typename TX, bool LN>
__global__ void __launch_bounds__(CL_VEC_TOKENS) assign_vec_kernel(int n, int c, int m, const TX *xn,
                                                                   const float *lnw, const float *lnb,
                                                                   const float *cn, int32_t *cid)
{
    __shared__ float4 ct[CL_VEC_CENTERS * CL_VEC_MAX_C / 4];
    __shared__ float4 lw[LN ? CL_VEC_MAX_C / 4 : 1], lb[LN ? CL_VEC_MAX_C / 4 : 1];
    int c4 = c / 4;
    size_t t = (size_t)blockIdx.x * CL_VEC_TOKENS + threadIdx.x;
    bool active = t < (size_t)n;
    float4 u[CL_VEC_MAX_C / 4];
#pragma unroll
    for (int q = 0; q < CL_VEC_MAX_C / 4; q++) {
        u[q] = float4{ 0.0f, 0.0f, 0.0f, 0.0f };
        if (active && q < c4)
            u[q] = ld_act4(xn + t * c + 4 * q);
    }
    if (LN) {
        for (int k = threadIdx.x; k < c; k += blockDim.x) {
            reinterpret_cast<float *>(lw)[k] = lnw[k];
            reinterpret_cast<float *>(lb)[k] = lnb[k];
        }
        __syncthreads();
        float sum = 0.0f, var = 0.0f;
#pragma unroll
        for (int q = 0; q < CL_VEC_MAX_C / 4; q++)
            if (q < c4)
                sum = __fadd_rn(__fadd_rn(__fadd_rn(__fadd_rn(sum, u[q].x), u[q].y), u[q].z), u[q].w);
        float mean = __fdiv_rn(sum, (float)c);
#pragma unroll
        for (int q = 0; q < CL_VEC_MAX_C / 4; q++)
            if (q < c4) {
                float e[4] = { u[q].x, u[q].y, u[q].z, u[q].w };
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float dv = __fsub_rn(e[k], mean);
                    var = __fadd_rn(var, __fmul_rn(dv, dv));
                }
            }
        float rstd = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(var, (float)c), CATANET_LN_EPS)));
#pragma unroll
        for (int q = 0; q < CL_VEC_MAX_C / 4; q++)
            if (q < c4) {
                float4 w4 = lw[q], b4 = lb[q];
                u[q].x = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(u[q].x, mean), rstd), w4.x), b4.x);
                u[q].y = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(u[q].y, mean), rstd), w4.y), b4.y);
                u[q].z = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(u[q].z, mean), rstd), w4.z), b4.z);
                u[q].w = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(u[q].w, mean), rstd), w4.w), b4.w);
            }
        if (!active)
#pragma unroll
            for (int q = 0; q < CL_VEC_MAX_C / 4; q++)
                u[q] = float4{ 0.0f, 0.0f, 0.0f, 0.0f };
    }
    float s = 0.0f;
#pragma unroll
    for (int q = 0; q < CL_VEC_MAX_C / 4; q++) {
        if (active && q < c4) {
            s += u[q].x * u[q].x;
            s += u[q].y * u[q].y;
            s += u[q].z * u[q].z;
            s += u[q].w * u[q].w;
        }
    }
    float nrm = sqrtf(s);
    float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
#pragma unroll
    for (int q = 0; q < CL_VEC_MAX_C / 4; q++) {
        u[q].x *= inv;
        u[q].y *= inv;
        u[q].z *= inv;
        u[q].w *= inv;
    }
    int best = 0;
    float best_s = -INFINITY;
    for (int j0 = 0; j0 < m; j0 += CL_VEC_CENTERS) {
        int cnt = m - j0 < CL_VEC_CENTERS ? m - j0 : CL_VEC_CENTERS;
        __syncthreads();
        for (int idx = threadIdx.x; idx < cnt * c4; idx += blockDim.x)
            ct[idx] = reinterpret_cast<const float4 *>(cn + (size_t)j0 * c)[idx];
        __syncthreads();
        for (int j = 0; j < cnt; j++) {
            const float4 *cj = ct + j * c4;
            float d = 0.0f;
#pragma unroll
            for (int q = 0; q < CL_VEC_MAX_C / 4; q++) {
                if (q < c4) {
                    float4 v = cj[q];
                    d += u[q].x * v.x;
                    d += u[q].y * v.y;
                    d += u[q].z * v.z;
                    d += u[q].w * v.w;
                }
            }
            if (d > best_s) { /* strict: the first maximum wins */
                best_s = d;
                best = j0 + j;
            }
        }
    }
    if (active)
        cid[t] = best;
}

/* counts[j*chunks + ch] = #tokens of chunk ch in center j (shared-memory histogram: order-free) */
__global__ void chunk_hist_kernel(int n, int m, int chunks, const int32_t *cid, int32_t *counts)
{
    extern __shared__ int32_t hist[];
    int ch = blockIdx.x;
    for (int j = threadIdx.x; j < m; j += blockDim.x)
        hist[j] = 0;
    __syncthreads();
    int i0 = ch * CL_CHUNK, i1 = i0 + CL_CHUNK < n ? i0 + CL_CHUNK : n;
    for (int i = i0 + threadIdx.x; i < i1; i += blockDim.x)
        atomicAdd(&hist[cid[i]], 1);
    __syncthreads();
    for (int j = threadIdx.x; j < m; j += blockDim.x)
        counts[(size_t)j * chunks + ch] = hist[j];
}

/* exclusive scan of counts[0..total) in place, one block: each thread scans a contiguous segment;
 * the segments' sums are scanned in shared memory in log2(CL_SCAN_THREADS) steps (Hillis-Steele),
 * not by one thread walking all of them (integers: exact in any order) */
__global__ void scan_kernel(size_t total, int32_t *counts)
{
    __shared__ int32_t part[CL_SCAN_THREADS];
    size_t seg = (total + CL_SCAN_THREADS - 1) / CL_SCAN_THREADS;
    size_t b = threadIdx.x * seg, e = b + seg < total ? b + seg : total;
    int32_t s = 0;
    for (size_t i = b; i < e; i++)
        s += counts[i];
    part[threadIdx.x] = s;
    __syncthreads();
    const int t = (int)threadIdx.x;
    for (int off = 1; off < CL_SCAN_THREADS; off <<= 1) {
        int32_t add = t >= off ? part[t - off] : 0;
        __syncthreads();
        part[t] += add;
        __syncthreads();
    }
    int32_t run = part[t] - s; /* inclusive -> exclusive */
    for (size_t i = b; i < e; i++) {
        int32_t v = counts[i];
        counts[i] = run;
        run += v;
    }
}

/* one warp per chunk, 32 tokens at a time in token order: lanes with the same center get
 * consecutive slots in lane order (match_any + popc), then the center's cursor advances. The
 * chunk's centers are loaded first, all at once (32 loads in flight a lane): the walk then waits on
 * no global load (ord's stores could alias cid for the compiler, which so could not hoist them) */
__global__ void scatter_kernel(int n, int m, int chunks, const int32_t *cid, const int32_t *offsets, int32_t *ord)
{
    extern __shared__ int32_t cursor[];
    int ch = blockIdx.x, lane = threadIdx.x;
    int i0 = ch * CL_CHUNK;
    int32_t cv[CL_CHUNK / 32];
#pragma unroll
    for (int k = 0; k < CL_CHUNK / 32; k++) {
        int i = i0 + k * 32 + lane;
        cv[k] = i < n ? cid[i] : -1;
    }
    for (int j = lane; j < m; j += 32)
        cursor[j] = offsets[(size_t)j * chunks + ch];
    __syncwarp();
    unsigned lt = (1u << lane) - 1u;
#pragma unroll
    for (int k = 0; k < CL_CHUNK / 32; k++) {
        int i = i0 + k * 32 + lane;
        bool valid = i < n;
        int c = cv[k];
        unsigned peers = __match_any_sync(0xffffffffu, c);
        int slot = valid ? cursor[c] + __popc(peers & lt) : 0;
        __syncwarp();
        if (valid) {
            ord[slot] = i;
            if (lane == 31 - __clz(peers)) /* the group's last lane advances the cursor */
                cursor[c] += __popc(peers);
        }
        __syncwarp();
    }
}

int catanet_cluster_centers_norm_cuda(CatanetCudaCtx *cx, int m, int c, const float *centers, float *cn)
{
    CUDA_REQUIRE(cx, m > 0 && c > 0 && centers && cn, "cluster_centers_norm_cuda");
    center_norm_kernel<<<(m + 127) / 128, 128, 0, cx->stream>>>(m, c, centers, cn);
    CUDA_LAUNCHED(cx, "cluster center_norm");
    return 0;
}

/* the stable counting sort of the tokens by center: cid [n] -> ord [n] (scratch after the normalised
 * centers in cx->work) */
static int sort_by_center(CatanetCudaCtx *cx, int n, int c, int m, const int32_t *cid, int32_t *ord)
{
    int chunks = (int)n_chunks(n);
    int32_t *counts = (int32_t *)(cx->work + (size_t)m * c);
    chunk_hist_kernel<<<chunks, 256, sizeof(int32_t) * m, cx->stream>>>(n, m, chunks, cid, counts);
    CUDA_LAUNCHED(cx, "cluster chunk_hist");
    scan_kernel<<<1, CL_SCAN_THREADS, 0, cx->stream>>>((size_t)m * chunks, counts);
    CUDA_LAUNCHED(cx, "cluster scan");
    scatter_kernel<<<chunks, 32, sizeof(int32_t) * m, cx->stream>>>(n, m, chunks, cid, counts, ord);
    CUDA_LAUNCHED(cx, "cluster scatter");
    return 0;
}

/* the centers normalised once by the caller (cx->cluster_cn), or now into the scratch */
static int normalised_centers(CatanetCudaCtx *cx, int m, int c, const float *centers, const float **cn)
{
    *cn = cx->cluster_cn ? cx->cluster_cn : cx->work;
    return cx->cluster_cn ? 0 : catanet_cluster_centers_norm_cuda(cx, m, c, centers, cx->work);
}

/* xn [N,C], centers [M,C] -> cid [N], ord [N] */
int catanet_cluster_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const float *xn,
                             const float *centers, int32_t *cid, int32_t *ord)
{
    CUDA_REQUIRE(cx, n > 0 && c > 0 && c <= CATANET_MAX_DIM, "cluster_fwd_cuda");
    CUDA_REQUIRE(cx, m > 0 && m <= CATANET_MAX_CENTERS, "cluster_fwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_cluster_cuda_work(n, c, m), "cluster_fwd_cuda");
    const float *cn;
    int ret = normalised_centers(cx, m, c, centers, &cn);
    if (ret < 0)
        return ret;
    if (c <= CL_VEC_MAX_C && c % 4 == 0 && (uintptr_t)xn % 16 == 0 && (uintptr_t)cn % 16 == 0) {
        unsigned blocks = (unsigned)(((size_t)n + CL_VEC_TOKENS - 1) / CL_VEC_TOKENS);
        assign_vec_kernel<float, false><<<blocks, CL_VEC_TOKENS, 0, cx->stream>>>(n, c, m, xn, NULL, NULL, cn, cid);
    } else {
        int tile = sim_tile(c);
        size_t smem = sizeof(float) * ((size_t)tile * (c + 1) + (size_t)tile * c);
        unsigned blocks = (unsigned)(((size_t)n + tile - 1) / tile);
        assign_kernel<<<blocks, tile < 32 ? 32 : tile, smem, cx->stream>>>(n, c, m, tile, xn, cn, cid);
    }
    CUDA_LAUNCHED(cx, "cluster assign");
    return sort_by_center(cx, n, c, m, cid, ord);
}

int catanet_cluster_ln_takes(int c)
{
    return c > 0 && c <= CL_VEC_MAX_C && c % 4 == 0;
}

int catanet_cluster_ln_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const void *x, int x_fp16,
                                const float *ln_w, const float *ln_b, const float *centers, int32_t *cid,
                                int32_t *ord)
{
    CUDA_REQUIRE(cx, n > 0 && m > 0 && m <= CATANET_MAX_CENTERS && ln_w && ln_b, "cluster_ln_fwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_cluster_cuda_work(n, c, m), "cluster_ln_fwd_cuda");
    if (!catanet_cluster_ln_takes(c))
        return cuda_fail(cx, CATANET_ERR_UNSUPPORTED, "cluster_ln_fwd_cuda: dim %d (wants <= %d, a multiple of 4)",
                         c, CL_VEC_MAX_C);
    CUDA_REQUIRE(cx, ((uintptr_t)x & (x_fp16 ? 7 : 15)) == 0, "cluster_ln_fwd_cuda (x's alignment)");
    const float *cn;
    int ret = normalised_centers(cx, m, c, centers, &cn);
    if (ret < 0)
        return ret;
    CUDA_REQUIRE(cx, (uintptr_t)cn % 16 == 0, "cluster_ln_fwd_cuda (cx->cluster_cn: 16-byte aligned)");
    unsigned blocks = (unsigned)(((size_t)n + CL_VEC_TOKENS - 1) / CL_VEC_TOKENS);
    if (x_fp16)
        assign_vec_kernel<__half, true><<<blocks, CL_VEC_TOKENS, 0, cx->stream>>>(n, c, m, (const __half *)x, ln_w,
                                                                                ln_b, cn, cid);
    else
        assign_vec_kernel<float, true><<<blocks, CL_VEC_TOKENS, 0, cx->stream>>>(n, c, m, (const float *)x, ln_w,
                                                                               ln_b, cn, cid);
    CUDA_LAUNCHED(cx, "cluster assign (LayerNorm in)");
    return sort_by_center(cx, n, c, m, cid, ord);
}
