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
 * known at compile time (9 and 10 for CATANet), 0 for the runtime-sized generic path (<= 32). */
#define ATT_KEY_TILE 128
#define ATT_MAX_HEAD 32

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

/* Streams `nkeys` keys through smem. rowof(p) gives the row of key p in K [*, ldk] and
 * V [*, ldv]; the head's columns start at kcol/vcol. Every thread of the block must call this
 * (it synchronises); `active` threads update their state with their query qv. */
template <int DQK, int DV, class RowOf>
__device__ static void attend(OnlineSoftmax<DV> &st, const float *qv, bool active, int nkeys,
                              RowOf rowof, const float *K, int ldk, int kcol, const float *V,
                              int ldv, int vcol, int dqk_rt, int dv_rt, float scale, float *ks,
                              float *vs)
{
    const int dqk = DQK ? DQK : dqk_rt, dv = DV ? DV : dv_rt;
    for (int t0 = 0; t0 < nkeys; t0 += ATT_KEY_TILE) {
        int cnt = nkeys - t0 < ATT_KEY_TILE ? nkeys - t0 : ATT_KEY_TILE;
        __syncthreads(); /* the previous tile is no longer read */
        for (int idx = threadIdx.x; idx < cnt * dqk; idx += blockDim.x) {
            int p = idx / dqk, e = idx - p * dqk;
            ks[idx] = K[(size_t)rowof(t0 + p) * ldk + kcol + e];
        }
        for (int idx = threadIdx.x; idx < cnt * dv; idx += blockDim.x) {
            int p = idx / dv, e = idx - p * dv;
            vs[idx] = V[(size_t)rowof(t0 + p) * ldv + vcol + e];
        }
        __syncthreads();
        if (!active)
            continue;
        for (int p = 0; p < cnt; p++) {
            const float *kp = ks + p * dqk, *vp = vs + p * dv;
            float s = 0.0f;
#pragma unroll
            for (int e = 0; e < (DQK ? DQK : ATT_MAX_HEAD); e++)
                if (DQK || e < dqk)
                    s += qv[e] * kp[e];
            s *= scale;
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
    }
}

#endif /* CATANET_CUDA_COMMON_CUH */
