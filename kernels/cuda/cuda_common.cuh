/*
 * cuda_common.cuh: what every kernels/cuda .cu file shares: error reporting into the context
 * (return codes, never exit), launch checks, grid-size helpers, the mirror rule, and the
 * tiled online-softmax attention used by both IASA and LRSA.
 */
#ifndef CATANET_CUDA_COMMON_CUH
#define CATANET_CUDA_COMMON_CUH

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cuda_fp16.h>

#include "kernels_cuda.h"

static inline int cuda_fail(CatanetCudaCtx *cx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cx->err, sizeof(cx->err), fmt, ap);
    va_end(ap);
    return code;
}

/* after every launch: a bad configuration shows up here, asynchronous faults at the next sync */
#define CUDA_LAUNCHED(cx, what)                                                                    \
    do {                                                                                           \
        cudaError_t st_ = cudaGetLastError();                                                      \
        if (st_ != cudaSuccess)                                                                    \
            return cuda_fail((cx), CATANET_ERR_CUDA, "%s: %s (%s:%d)", (what),                     \
                             cudaGetErrorString(st_), __FILE__, __LINE__);                         \
    } while (0)

#define CUDA_TRY(cx, call)                                                                         \
    do {                                                                                           \
        cudaError_t st_ = (call);                                                                  \
        if (st_ != cudaSuccess)                                                                    \
            return cuda_fail((cx), CATANET_ERR_CUDA, "%s: %s (%s:%d)", #call,                      \
                             cudaGetErrorString(st_), __FILE__, __LINE__);                         \
    } while (0)

#define CUBLAS_TRY(cx, call)                                                                       \
    do {                                                                                           \
        cublasStatus_t st_ = (call);                                                               \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                          \
            return cuda_fail((cx), CATANET_ERR_CUBLAS, "%s: cuBLAS status %d (%s:%d)", #call,      \
                             (int)st_, __FILE__, __LINE__);                                        \
    } while (0)

/* shape checks before a launch: a bad argument is an error, never an out-of-bounds kernel */
#define CUDA_REQUIRE(cx, cond, what)                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return cuda_fail((cx), CATANET_ERR_INVALID_ARG, "%s: requirement failed: %s", (what),  \
                             #cond);                                                               \
    } while (0)

/* activations that may be stored as fp16 (the fp16 mode's ConvFFN intermediates): loads widen to
 * fp32, stores round to nearest even; the arithmetic is fp32 either way */
__device__ static inline float ld_act(const float *p) { return *p; }
__device__ static inline float ld_act(const __half *p) { return __half2float(*p); }
__device__ static inline void st_act(float *p, float v) { *p = v; }
__device__ static inline void st_act(__half *p, float v) { *p = __float2half_rn(v); }
/* four consecutive channels in one load (16-byte aligned as float, 8-byte as half: the four halves
 * come as the 8 bytes of a float2, reinterpreted by memcpy, which compiles away) */
__device__ static inline float4 ld_act4(const float *p) { return *(const float4 *)p; }
__device__ static inline float4 ld_act4(const __half *p)
{
    float2 raw = *(const float2 *)p;
    __half2 lo, hi;
    memcpy(&lo, &raw.x, sizeof(lo));
    memcpy(&hi, &raw.y, sizeof(hi));
    float2 a = __half22float2(lo), b = __half22float2(hi);
    return make_float4(a.x, a.y, b.x, b.y);
}
/* ... and stored (16- or 8-byte aligned) */
__device__ static inline void st_act4(float *p, float4 v) { *(float4 *)p = v; }
__device__ static inline void st_act4(__half *p, float4 v)
{
    __half2 lo = __floats2half2_rn(v.x, v.y), hi = __floats2half2_rn(v.z, v.w);
    float2 raw;
    memcpy(&raw.x, &lo, sizeof(lo));
    memcpy(&raw.y, &hi, sizeof(hi));
    *(float2 *)p = raw;
}

#define CUDA_THREADS 256

/* blocks for a 1-D grid-stride loop over n items (capped: the loop covers the rest) */
static inline unsigned grid_for(size_t n, int threads)
{
    size_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    return b > 65535u * 8u ? 65535u * 8u : (unsigned)b;
}

#define GRID_STRIDE(i, n)                                                                          \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n);                \
         i += (size_t)gridDim.x * blockDim.x)

/* catanet_mirror_index (kernels/cpu/iasa.c), the same arithmetic on the device */
__host__ __device__ static inline int mirror_index(long long i, int n)
{
    if (i < 0)
        i = -1 - i;
    long long p = i % (2 * (long long)n);
    return (int)(p < n ? p : 2 * (long long)n - 1 - p);
}

__device__ static inline float gelu_exact(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

/* ---- attention: one query per thread, keys streamed through shared memory in tiles ----
 * Online softmax (running max m, running sum l, running weighted sum acc): the score rows are
 * never stored, so the window can be as wide as the caller likes. DQK/DV are the head dims when
 * known at compile time (9 and 10 for CATANet), 0 for the runtime-sized generic path (<= 32).
 * With known dims the shared-memory rows are padded to a multiple of 4 floats and read as
 * float4 (broadcast: every thread reads the same key), the query is zero-padded to match, and the
 * softmax runs in base 2 (exp2, scale * log2(e) folded into the query) with one rescale per chunk
 * of ATT_CHUNK keys; the generic path updates per key with expf. Both give the same softmax. */
#define ATT_KEY_TILE 128
#define ATT_MAX_HEAD 32
#define ATT_PAD(D) ((D) ? (((D) + 3) & ~3) : ATT_MAX_HEAD)
#define ATT_CHUNK 8 /* keys per rescale in the fixed-dims path */

/* the shared memory one attending block needs: a tile of keys and values, rows padded to
 * ATT_PAD (12 + 12 floats for CATANet's 9/10 head dims: 12.5 KB, so many blocks fit an SM) */
template <int DQK, int DV>
struct AttSmem {
    float4 ks[ATT_KEY_TILE * ATT_PAD(DQK) / 4];
    float4 vs[ATT_KEY_TILE * ATT_PAD(DV) / 4];
    int row[ATT_KEY_TILE];
};

template <int DV>
struct OnlineSoftmax {
    float m, l, acc[DV ? DV : ATT_MAX_HEAD];
};

template <int DV>
__device__ static inline void os_init(OnlineSoftmax<DV> &st, int dv)
{
    st.m = -INFINITY;
    st.l = 0.0f;
#pragma unroll
    for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
        st.acc[e] = 0.0f;
}

/* the query of one head, zero-padded to ATT_PAD(DQK) (T: float, or __half for q stored as fp16) */
template <int DQK, typename T>
__device__ static inline void load_query(float *qv, bool active, const T *src, int dqk_rt)
{
    const int dqk = DQK ? DQK : dqk_rt;
#pragma unroll
    for (int e = 0; e < ATT_PAD(DQK); e++)
        qv[e] = (active && e < dqk) ? ld_act(src + e) : 0.0f;
}

/* one key/value pair into the state */
template <int DV>
__device__ static inline void os_update(OnlineSoftmax<DV> &st, float s, const float *vp, int dv)
{
    if (s > st.m) {
        float corr = expf(st.m - s); /* 0 on the first key (m = -inf) */
        st.l = st.l * corr + 1.0f;
#pragma unroll
        for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
            if (DV || e < dv)
                st.acc[e] = st.acc[e] * corr + vp[e];
        st.m = s;
    } else {
        float w = expf(s - st.m);
        st.l += w;
#pragma unroll
        for (int e = 0; e < (DV ? DV : ATT_MAX_HEAD); e++)
            if (DV || e < dv)
                st.acc[e] += w * vp[e];
    }
}

/* Streams `nkeys` keys through smem. rowof(p) gives the row of key p in K [*, ldk] and
 * V [*, ldv]; the head's columns start at kcol/vcol. Every thread of the block must call this
 * (it synchronises); `active` threads update their state with their (padded) query qv, over
 * their own keys lo <= p < hi (in increasing order). */
template <int DQK, int DV, class RowOf, typename T>
__device__ static void attend(OnlineSoftmax<DV> &st, const float *qv, bool active, int nkeys,
                              RowOf rowof, const T *K, int ldk, int kcol, const T *V,
                              int ldv, int vcol, int dqk_rt, int dv_rt, float scale, AttSmem<DQK, DV> &sm,
                              int lo = 0, int hi = 0x7fffffff)
{
    const int dqk = DQK ? DQK : dqk_rt, dv = DV ? DV : dv_rt;
    const int KS = DQK ? ATT_PAD(DQK) : dqk_rt, VS = DV ? ATT_PAD(DV) : dv_rt; /* smem row strides */
    float *ks = (float *)sm.ks, *vs = (float *)sm.vs;
    float qs[DQK && DV ? ATT_PAD(DQK) : 1];
#pragma unroll
    for (int e = 0; e < (DQK && DV ? ATT_PAD(DQK) : 1); e++)
        qs[e] = qv[e] * (scale * 1.4426950408889634f);
    for (int t0 = 0; t0 < nkeys; t0 += ATT_KEY_TILE) {
        int cnt = nkeys - t0 < ATT_KEY_TILE ? nkeys - t0 : ATT_KEY_TILE;
        __syncthreads(); /* the previous tile is no longer read */
        for (int p = threadIdx.x; p < cnt; p += blockDim.x)
            sm.row[p] = rowof(t0 + p);
        __syncthreads();
        for (int idx = threadIdx.x; idx < cnt * KS; idx += blockDim.x) {
            int p = idx / KS, e = idx - p * KS;
            ks[idx] = e < dqk ? ld_act(K + (size_t)sm.row[p] * ldk + kcol + e) : 0.0f;
        }
        for (int idx = threadIdx.x; idx < cnt * VS; idx += blockDim.x) {
            int p = idx / VS, e = idx - p * VS;
            vs[idx] = e < dv ? ld_act(V + (size_t)sm.row[p] * ldv + vcol + e) : 0.0f;
        }
        __syncthreads();
        if (!active)
            continue;
        int pb = lo - t0 > 0 ? lo - t0 : 0, pe = hi - t0 < cnt ? hi - t0 : cnt;
        if (DQK && DV) {
            /* chunks of ATT_CHUNK keys: scores first, one rescale per chunk, then the weights;
             * base-2 exponent with the scale and log2(e) folded into the query (qs) */
            for (int p = pb; p < pe; p += ATT_CHUNK) {
                int nv = pe - p < ATT_CHUNK ? pe - p : ATT_CHUNK;
                float sc[ATT_CHUNK], cm = -INFINITY;
#pragma unroll
                for (int j = 0; j < ATT_CHUNK; j++) {
                    float s = 0.0f;
                    if (j < nv) {
                        const float4 *k4 = (const float4 *)(ks + (p + j) * KS);
#pragma unroll
                        for (int e4 = 0; e4 < ATT_PAD(DQK) / 4; e4++) {
                            float4 k = k4[e4];
                            s += qs[4 * e4] * k.x;
                            s += qs[4 * e4 + 1] * k.y;
                            s += qs[4 * e4 + 2] * k.z;
                            s += qs[4 * e4 + 3] * k.w;
                        }
                    }
                    sc[j] = j < nv ? s : -INFINITY;
                    cm = fmaxf(cm, sc[j]);
                }
                if (cm > st.m) {
                    float corr = exp2f(st.m - cm); /* 0 on the first chunk (m = -inf) */
                    st.l *= corr;
#pragma unroll
                    for (int e = 0; e < (DV ? DV : 1); e++)
                        st.acc[e] *= corr;
                    st.m = cm;
                }
#pragma unroll
                for (int j = 0; j < ATT_CHUNK; j++) {
                    if (j < nv) {
                        float w = exp2f(sc[j] - st.m);
                        const float4 *v4 = (const float4 *)(vs + (p + j) * VS);
                        st.l += w;
#pragma unroll
                        for (int e4 = 0; e4 < ATT_PAD(DV) / 4; e4++) {
                            float4 v = v4[e4];
                            if (4 * e4 < DV)
                                st.acc[4 * e4] += w * v.x;
                            if (4 * e4 + 1 < DV)
                                st.acc[4 * e4 + 1] += w * v.y;
                            if (4 * e4 + 2 < DV)
                                st.acc[4 * e4 + 2] += w * v.z;
                            if (4 * e4 + 3 < DV)
                                st.acc[4 * e4 + 3] += w * v.w;
                        }
                    }
                }
            }
        } else {
            for (int p = pb; p < pe; p++) {
                const float *kp = ks + p * KS, *vp = vs + p * VS;
                float s = 0.0f;
#pragma unroll
                for (int e = 0; e < ATT_MAX_HEAD; e++)
                    if (e < dqk)
                        s += qv[e] * kp[e];
                os_update(st, s * scale, vp, dv);
            }
        }
    }
}

#endif /* CATANET_CUDA_COMMON_CUH */
