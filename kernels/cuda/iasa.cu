/*
 * iasa.cu: the Token Aggregation Block's attention, fused (twin of kernels/cpu/iasa.c): for each
 * query of a subgroup of the cluster-sorted sequence, IASA over its own and the next subgroup's
 * keys (mirror-padded past N, gathered through ord on the fly) and, in a separate softmax, IRCA
 * over the M centers; the two results are summed and written back in token order.
 * One block per (subgroup or run of small subgroups, head, chunk of queries), one query per thread,
 * keys streamed through shared memory with an online softmax: the 2gs-wide score rows never exist
 * in memory. In the fp16 precision mode (cx->attn_fp16) iasa_tc_kernel does the same on tensor cores
 * (fp16 Q/K/V/P, fp32 softmaxes and accumulation; attn_tc.cuh). Both kernels read q, k and v as
 * fp32 or, when the caller stored them so (cx->qkv_fp16), as fp16: half the bytes of the gathers;
 * and write the output as fp16 when cx->iasa_out_fp16 says so.
 * defines: catanet_iasa_fwd_cuda, catanet_mirror_index_cuda, catanet_iasa_bwd_cuda_work, catanet_iasa_bwd_cuda
 */
#include "attn_tc.cuh"
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
template <int DQK, int DV, typename T, typename TO>
__global__ void __launch_bounds__(IASA_QUERIES)
iasa_kernel(CatanetIasaArgs a, int gs, int ng, int spb, float scale, const T *q, const T *k,
            const T *v, const int32_t *ord, const float *kg, const float *vg, TO *out)
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
    TO *o = out + (size_t)tq * hv + h * dv;
#pragma unroll
    for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
        if (DV || e < dv)
            st_act(o + e, loc.acc[e] * il + glb.acc[e] * ig);
}

/* sorted position -> token */
struct SortedRow {
    const int32_t *ord;
    __device__ int operator()(int p) const { return ord[p]; }
};

/* The fp16 mode's IASA + IRCA (cx->attn_fp16), on tensor cores (attn_tc.cuh): a block takes TC_ROWS
 * consecutive sorted positions, each warp 16 of them, inside one subgroup (gs % 16 == 0). The block
 * streams the union of its subgroups' windows, [jf gs, (jl + 2) gs) (mirror-padded, through ord),
 * and each warp attends to the keys of its own 2gs window in it; then the M centers, in a second,
 * separate softmax. The two results are summed as in iasa_kernel. */
template <typename T, typename TO, bool EXP_FMA>
__global__ void __launch_bounds__(TC_THREADS, TC_MIN_BLOCKS_IASA)
iasa_tc_kernel(CatanetIasaArgs a, int gs, float qscale, const T *q, const T *k, const T *v,
               const int32_t *ord, const float *kg, const float *vg, TO *out)
{
    __shared__ TcSmem sm;
    const int dqk = a.dqk, dv = a.dv, hq = a.heads * dqk, hv = a.heads * dv, h = blockIdx.y;
    const int qb = (int)blockIdx.x * TC_ROWS, q0 = qb + (int)(threadIdx.x >> 5) * 16;
    const bool busy = q0 < a.n; /* warp-uniform: a warp past the end only helps staging */
    const int jf = qb / gs, jl = ((qb + TC_ROWS < a.n ? qb + TC_ROWS : a.n) - 1) / gs;
    const int nkeys = (jl - jf + 2) * gs, lo = (q0 / gs - jf) * gs, hi = lo + 2 * gs; /* the warp's window */
    SortedRow qrow = { ord };
    TcFragQ fq;
    if (busy)
        tc_load_query(fq, q0, a.n, qrow, q, hq, h * dqk, dqk, qscale);
    TcRow loc, glb;
    tc_row_init(loc);
    WindowRow wr = { ord, (long long)jf * gs, a.n };
    for (int t0 = 0; t0 < nkeys; t0 += TC_KEYS) {
        int cnt = nkeys - t0 < TC_KEYS ? nkeys - t0 : TC_KEYS;
        int l0 = lo - t0 > 0 ? lo - t0 : 0, h0 = hi - t0 < cnt ? hi - t0 : cnt;
        __syncthreads(); /* the previous tile is no longer read */
        tc_stage(sm, t0, cnt, wr, k, hq, h * dqk, v, hv, h * dv, dqk, dv);
        __syncthreads();
        if (busy && l0 < h0)
            tc_attend<EXP_FMA>(loc, fq, sm, l0, h0);
    }
    /* the window's result, normalised, so that its running max and sums are free for the centers */
    float res[2][4];
    if (busy) {
        const TcSums ls = tc_row_sums(loc);
#pragma unroll
        for (int n = 0; n < 2; n++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                res[n][i] = loc.o[n][i] / ls.l[i >> 1];
    }
    tc_row_init(glb);
    for (int t0 = 0; t0 < a.m; t0 += TC_KEYS) {
        int cnt = a.m - t0 < TC_KEYS ? a.m - t0 : TC_KEYS;
        __syncthreads();
        tc_stage(sm, t0, cnt, IdentityRow(), kg, hq, h * dqk, vg, hv, h * dv, dqk, dv);
        __syncthreads();
        if (busy)
            tc_attend<EXP_FMA>(glb, fq, sm, 0, cnt);
    }
    if (!busy)
        return;
    const TcSums cs = tc_row_sums(glb);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int qi = q0 + tc_out_row(i);
        if (qi >= a.n)
            continue;
        TO *o = out + (size_t)ord[qi] * hv + h * dv;
        float ig = 1.0f / cs.l[i >> 1];
#pragma unroll
        for (int n = 0; n < 2; n++) {
            int e = tc_out_dim(n, i);
            if (e < dv)
                st_act(o + e, res[n][i] + glb.o[n][i] * ig);
        }
    }
}

/* q,k [N,heads*dqk], v [N,heads*dv], ord [N], kg [M,heads*dqk], vg [M,heads*dv] -> out [N,heads*dv]
 * (q, k, v hold __half values when cx->qkv_fp16, out when cx->iasa_out_fp16; kg, vg are always fp32) */
template <typename T, typename TO>
static void iasa_launch(CatanetCudaCtx *cx, const CatanetIasaArgs *a, bool tc, dim3 grid, int threads, int gs,
                        int ng, int spb, float scale, const float *q, const float *k, const float *v,
                        const int32_t *ord, const float *kg, const float *vg, float *out)
{
    const T *qt = (const T *)q, *kt = (const T *)k, *vt = (const T *)v;
    TO *ot = (TO *)out;
    if (tc) {
        dim3 tgrid((unsigned)((a->n + TC_ROWS - 1) / TC_ROWS), (unsigned)a->heads);
        float qscale = scale * 1.4426950408889634f;
        if (cx->attn_exp2_fma)
            iasa_tc_kernel<T, TO, true><<<tgrid, TC_THREADS, 0, cx->stream>>>(*a, gs, qscale, qt, kt, vt, ord, kg, vg,
                                                                              ot);
        else
            iasa_tc_kernel<T, TO, false><<<tgrid, TC_THREADS, 0, cx->stream>>>(*a, gs, qscale, qt, kt, vt, ord, kg, vg,
                                                                               ot);
    } else if (a->dqk == 9 && a->dv == 10)
        iasa_kernel<9, 10, T, TO><<<grid, threads, 0, cx->stream>>>(*a, gs, ng, spb, scale, qt, kt, vt, ord, kg, vg, ot);
    else
        iasa_kernel<0, 0, T, TO><<<grid, threads, 0, cx->stream>>>(*a, gs, ng, spb, scale, qt, kt, vt, ord, kg, vg, ot);
}

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
    /* fp16 mode: tensor cores when the head dims fit one mma k step with a padding dim to spare for
     * the row sums (attn_tc.cuh) and a warp's 16 queries always share a subgroup (CATANet's head
     * dims 9/10 and group sizes 32..256 do); else the fp32 kernel below */
    const bool tc = cx->attn_fp16 && a->dqk <= TC_D && a->dv < TC_D && gs % 16 == 0;
    if (cx->qkv_fp16 && cx->iasa_out_fp16)
        iasa_launch<__half, __half>(cx, a, tc, grid, threads, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
    else if (cx->qkv_fp16)
        iasa_launch<__half, float>(cx, a, tc, grid, threads, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
    else if (cx->iasa_out_fp16)
        iasa_launch<float, __half>(cx, a, tc, grid, threads, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
    else
        iasa_launch<float, float>(cx, a, tc, grid, threads, gs, ng, spb, scale, q, k, v, ord, kg, vg, out);
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

/* ---------------- backward (twin of catanet_iasa_bwd_ref) ----------------
 * The plainest correct form, softmaxes recomputed from q, k, v, no atomics:
 *  1. query pass, one thread per (real query, head) of a subgroup: the local (2gs window) and
 *     global (M centers) softmax statistics (max, sum, D = sum_p P_p dp_p with dp_p = dO.v_p) into
 *     cx->work, and dq += scale sum_p P_p (dp_p - D) k_p for both softmaxes (each query row belongs
 *     to one subgroup: no write conflicts);
 *  2. key pass, one thread per (subgroup, head, window key or center): dK_p = scale sum_i P_ip
 *     (dp_ip - D_i) q_i and dV_p = sum_i P_ip dO_i over the subgroup's queries, into a partial per
 *     (subgroup, window position) / (subgroup, center) in cx->work (the CPU fast path's task_work);
 *  3. gather, one thread per (sorted position, column): the partials of every copy of that token
 *     (the padded positions that mirror to it, each in the two windows that hold it), in increasing
 *     padded position, added into dk/dv once; centers: one thread per (center, column) adds its
 *     subgroup partials in subgroup order.
 * fp32 with expf; the order is fixed by the shapes: the same bits on every run. */
#define IASA_BWD_THREADS 128
#define IASA_ST 6 /* per (query, head): local max, sum, D; global max, sum, D */

size_t catanet_iasa_bwd_cuda_work(const CatanetIasaArgs *a)
{
    size_t n = (size_t)a->n, gs = a->group_size < a->n ? (size_t)a->group_size : n;
    size_t ng = gs ? (n + gs - 1) / gs : 0, hqv = (size_t)a->heads * (a->dqk + a->dv);
    return n * a->heads * IASA_ST + ng * (2 * gs + a->m) * hqv;
}

__device__ static inline float dot_rt(const float *a, const float *b, int d)
{
    float s = 0.0f;
    for (int e = 0; e < d; e++)
        s += a[e] * b[e];
    return s;
}

/* softmax statistics of one query over nk keys (rowof(p) the key/value row) and its dq share */
template <class RowOf>
__device__ static void iasa_query_softmax(const float *qv, const float *dov, int nk, RowOf rowof, const float *K,
                                          const float *V, int hq, int hv, int dqk, int dv, float scale,
                                          float *stat, float *dqa)
{
    float mx = -INFINITY;
    for (int p = 0; p < nk; p++)
        mx = fmaxf(mx, dot_rt(qv, K + (size_t)rowof(p) * hq, dqk) * scale);
    float l = 0.0f, dacc = 0.0f;
    for (int p = 0; p < nk; p++) {
        int r = rowof(p);
        float e = expf(dot_rt(qv, K + (size_t)r * hq, dqk) * scale - mx);
        l += e;
        dacc += e * dot_rt(dov, V + (size_t)r * hv, dv);
    }
    float D = dacc / l;
    for (int p = 0; p < nk; p++) {
        int r = rowof(p);
        const float *kp = K + (size_t)r * hq;
        float P = expf(dot_rt(qv, kp, dqk) * scale - mx) / l;
        float ds = P * (dot_rt(dov, V + (size_t)r * hv, dv) - D) * scale;
        for (int e = 0; e < dqk; e++)
            dqa[e] += ds * kp[e];
    }
    stat[0] = mx;
    stat[1] = l;
    stat[2] = D;
}

struct CenterRow {
    __device__ int operator()(int p) const { return p; }
};

/* grid (subgroups, heads) */
__global__ void __launch_bounds__(IASA_BWD_THREADS)
iasa_bwd_query_kernel(CatanetIasaArgs a, int gs, float scale, const float *q, const float *k, const float *v,
                      const int32_t *ord, const float *kg, const float *vg, const float *dout, float *st, float *dq)
{
    const int j = blockIdx.x, h = blockIdx.y, n = a.n, dqk = a.dqk, dv = a.dv;
    const int hq = a.heads * dqk, hv = a.heads * dv;
    const int rows = n - j * gs < gs ? n - j * gs : gs;
    WindowRow win = { ord, (long long)j * gs, n };
    for (int i = threadIdx.x; i < rows; i += blockDim.x) {
        int qp = j * gs + i, tq = ord[qp];
        float qv[ATT_MAX_HEAD], dov[ATT_MAX_HEAD], dqa[ATT_MAX_HEAD];
        for (int e = 0; e < dqk; e++) {
            qv[e] = q[(size_t)tq * hq + h * dqk + e];
            dqa[e] = 0.0f;
        }
        for (int e = 0; e < dv; e++)
            dov[e] = dout[(size_t)tq * hv + h * dv + e];
        float *s = st + ((size_t)qp * a.heads + h) * IASA_ST;
        iasa_query_softmax(qv, dov, 2 * gs, win, k + h * dqk, v + h * dv, hq, hv, dqk, dv, scale, s, dqa);
        CenterRow cen;
        iasa_query_softmax(qv, dov, a.m, cen, kg + h * dqk, vg + h * dv, hq, hv, dqk, dv, scale, s + 3, dqa);
        float *d = dq + (size_t)tq * hq + h * dqk;
        for (int e = 0; e < dqk; e++)
            d[e] += dqa[e];
    }
}

/* grid (subgroups, heads); task < 2gs: window key p, else center task - 2gs */
__global__ void __launch_bounds__(IASA_BWD_THREADS)
iasa_bwd_key_kernel(CatanetIasaArgs a, int gs, float scale, const float *q, const float *k, const float *v,
                    const int32_t *ord, const float *kg, const float *vg, const float *dout, const float *st,
                    float *wpart, float *gpart)
{
    const int j = blockIdx.x, h = blockIdx.y, n = a.n, dqk = a.dqk, dv = a.dv;
    const int hq = a.heads * dqk, hv = a.heads * dv, hqv = hq + hv;
    const int rows = n - j * gs < gs ? n - j * gs : gs;
    for (int task = threadIdx.x; task < 2 * gs + a.m; task += blockDim.x) {
        const bool local = task < 2 * gs;
        const float *kp, *vp;
        float *out;
        if (local) {
            int t = ord[mirror_index((long long)j * gs + task, n)];
            kp = k + (size_t)t * hq + h * dqk;
            vp = v + (size_t)t * hv + h * dv;
            out = wpart + ((size_t)j * 2 * gs + task) * hqv;
        } else {
            int c = task - 2 * gs;
            kp = kg + (size_t)c * hq + h * dqk;
            vp = vg + (size_t)c * hv + h * dv;
            out = gpart + ((size_t)j * a.m + c) * hqv;
        }
        float kv[ATT_MAX_HEAD], vv[ATT_MAX_HEAD], dka[ATT_MAX_HEAD], dva[ATT_MAX_HEAD];
        for (int e = 0; e < dqk; e++) {
            kv[e] = kp[e];
            dka[e] = 0.0f;
        }
        for (int e = 0; e < dv; e++) {
            vv[e] = vp[e];
            dva[e] = 0.0f;
        }
        for (int i = 0; i < rows; i++) {
            int qp = j * gs + i, tq = ord[qp];
            const float *qv = q + (size_t)tq * hq + h * dqk, *dov = dout + (size_t)tq * hv + h * dv;
            const float *s = st + ((size_t)qp * a.heads + h) * IASA_ST + (local ? 0 : 3);
            float P = expf(dot_rt(qv, kv, dqk) * scale - s[0]) / s[1];
            float ds = P * (dot_rt(dov, vv, dv) - s[2]) * scale;
            for (int e = 0; e < dqk; e++)
                dka[e] += ds * qv[e];
            for (int e = 0; e < dv; e++)
                dva[e] += P * dov[e];
        }
        for (int e = 0; e < dqk; e++)
            out[h * dqk + e] = dka[e];
        for (int e = 0; e < dv; e++)
            out[hq + h * dv + e] = dva[e];
    }
}

/* dk/dv of the token at sorted position s, column col of [hq | hv]: every padded position P that
 * mirrors to s (P = s, 2n-1-s, then + 2n ...: increasing), in each of the two windows holding P */
__global__ void iasa_bwd_gather_kernel(CatanetIasaArgs a, int gs, int ng, const int32_t *ord, const float *wpart,
                                       float *dk, float *dv)
{
    const int n = a.n, hq = a.heads * a.dqk, hv = a.heads * a.dv, hqv = hq + hv;
    const long long L = (long long)(ng + 1) * gs; /* padded positions the windows cover */
    GRID_STRIDE(idx, (size_t)n * hqv) {
        int s = (int)(idx / hqv), col = (int)(idx - (size_t)s * hqv);
        float acc = 0.0f;
        for (long long base = 0; base + s < L; base += 2 * (long long)n) {
            long long cand[2] = { base + s, base + 2 * (long long)n - 1 - s };
            for (int u = 0; u < 2; u++) {
                long long P = cand[u];
                if (P >= L)
                    continue;
                long long jb = P / gs, off = P - jb * gs;
                if (jb >= 1 && jb - 1 < ng)
                    acc += wpart[((size_t)(jb - 1) * 2 * gs + gs + off) * hqv + col];
                if (jb < ng)
                    acc += wpart[((size_t)jb * 2 * gs + off) * hqv + col];
            }
        }
        int t = ord[s];
        if (col < hq)
            dk[(size_t)t * hq + col] += acc;
        else
            dv[(size_t)t * hv + col - hq] += acc;
    }
}

/* dkg/dvg: the subgroup partials of center c, column col, in subgroup order */
__global__ void iasa_bwd_centers_kernel(CatanetIasaArgs a, int ng, const float *gpart, float *dkg, float *dvg)
{
    const int hq = a.heads * a.dqk, hv = a.heads * a.dv, hqv = hq + hv;
    GRID_STRIDE(idx, (size_t)a.m * hqv) {
        int c = (int)(idx / hqv), col = (int)(idx - (size_t)c * hqv);
        float acc = 0.0f;
        for (int j = 0; j < ng; j++)
            acc += gpart[((size_t)j * a.m + c) * hqv + col];
        if (col < hq)
            dkg[(size_t)c * hq + col] += acc;
        else
            dvg[(size_t)c * hv + col - hq] += acc;
    }
}

int catanet_iasa_bwd_cuda(CatanetCudaCtx *cx, const CatanetIasaArgs *a, const float *q, const float *k,
                          const float *v, const int32_t *ord, const float *kg, const float *vg,
                          const float *dout, float *dq, float *dk, float *dv, float *dkg, float *dvg)
{
    CUDA_REQUIRE(cx, a->n > 0 && a->group_size > 0 && a->m > 0 && a->heads > 0, "iasa_bwd_cuda");
    CUDA_REQUIRE(cx, a->dqk > 0 && a->dqk <= ATT_MAX_HEAD && a->dv > 0 && a->dv <= ATT_MAX_HEAD, "iasa_bwd_cuda");
    CUDA_REQUIRE(cx, q && k && v && ord && kg && vg && dout && dq && dk && dv && dkg && dvg, "iasa_bwd_cuda");
    CUDA_REQUIRE(cx, !cx->qkv_fp16 && !cx->iasa_out_fp16, "iasa_bwd_cuda (fp32 in training)");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_iasa_bwd_cuda_work(a), "iasa_bwd_cuda");
    int n = a->n, gs = a->group_size < n ? a->group_size : n, ng = (n + gs - 1) / gs;
    CUDA_REQUIRE(cx, a->heads <= 65535, "iasa_bwd_cuda"); /* grid.y; grid.x = ng is far below its limit */
    size_t hqv = (size_t)a->heads * (a->dqk + a->dv);
    float *st = cx->work, *wpart = st + (size_t)n * a->heads * IASA_ST, *gpart = wpart + (size_t)ng * 2 * gs * hqv;
    float scale = 1.0f / sqrtf((float)a->dqk);
    dim3 grid((unsigned)ng, (unsigned)a->heads);
    iasa_bwd_query_kernel<<<grid, IASA_BWD_THREADS, 0, cx->stream>>>(*a, gs, scale, q, k, v, ord, kg, vg, dout, st, dq);
    CUDA_LAUNCHED(cx, "iasa_bwd queries");
    iasa_bwd_key_kernel<<<grid, IASA_BWD_THREADS, 0, cx->stream>>>(*a, gs, scale, q, k, v, ord, kg, vg, dout, st,
                                                                   wpart, gpart);
    CUDA_LAUNCHED(cx, "iasa_bwd keys");
    iasa_bwd_gather_kernel<<<grid_for((size_t)n * hqv, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, gs, ng, ord,
                                                                                                     wpart, dk, dv);
    CUDA_LAUNCHED(cx, "iasa_bwd gather");
    iasa_bwd_centers_kernel<<<grid_for((size_t)a->m * hqv, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, ng, gpart,
                                                                                                         dkg, dvg);
    CUDA_LAUNCHED(cx, "iasa_bwd centers");
    return 0;
}
