/*
 * reduce.cuh: the deterministic column reduction the backward twins use for bias-like gradients
 * (sum over rows of a per-(row, column) term), without atomics:
 *   block = RED_X columns x RED_Y row lanes; lane y sums rows y, y + RED_Y, ... in increasing
 *   order in double, then the RED_Y partials of a column are added by a fixed tree.
 * The order depends only on the shape, never on scheduling: the same bits on every run (and on
 * every GPU). The plainest correct form: a thread walks rows/RED_Y rows serially, fine for
 * training-sized tensors; a two-stage version is the obvious speed-up if a profile asks for it.
 */
#ifndef CATANET_REDUCE_CUH
#define CATANET_REDUCE_CUH

#include "cuda_common.cuh"

#define RED_X 32
#define RED_Y 32

/* out[col * ostride] += sum_{r < rows} term(r, col), for col < cols; grid.x = ceil(cols / RED_X),
 * block (RED_X, RED_Y) */
template <class Term>
__global__ void __launch_bounds__(RED_X * RED_Y) colsum_kernel(int rows, int cols, Term term, float *out,
                                                                int ostride)
{
    __shared__ double part[RED_Y][RED_X + 1];
    int tx = threadIdx.x, ty = threadIdx.y, col = blockIdx.x * RED_X + tx;
    double s = 0.0;
    if (col < cols)
        for (int r = ty; r < rows; r += RED_Y)
            s += (double)term(r, col);
    part[ty][tx] = s;
    __syncthreads();
    for (int h = RED_Y / 2; h > 0; h >>= 1) {
        if (ty < h)
            part[ty][tx] += part[ty + h][tx];
        __syncthreads();
    }
    if (ty == 0 && col < cols)
        out[(size_t)col * ostride] += (float)part[0][tx];
}

/* the plain column sum of a row-major matrix m [rows][ld] */
struct ColTerm {
    const float *m;
    int ld;
    __device__ float operator()(int r, int col) const { return m[(size_t)r * ld + col]; }
};

template <class Term>
static inline int launch_colsum(CatanetCudaCtx *cx, int rows, int cols, Term term, float *out, int ostride,
                                const char *what)
{
    if (cols <= 0)
        return 0;
    colsum_kernel<Term><<<(unsigned)((cols + RED_X - 1) / RED_X), dim3(RED_X, RED_Y), 0, cx->stream>>>(
        rows, cols, term, out, ostride);
    CUDA_LAUNCHED(cx, what);
    return 0;
}

/* out[b] += (float) sum_{i < n} term(b, i) for b < gridDim.x: one block of RED_T threads per b,
 * thread t sums i = t, t + RED_T, ... in double, then a fixed tree (the same bits every run) */
#define RED_T 256
template <class Term>
__global__ void __launch_bounds__(RED_T) rowsum_kernel(size_t n, Term term, float *out)
{
    __shared__ double part[RED_T];
    int b = blockIdx.x, t = threadIdx.x;
    double s = 0.0;
    for (size_t i = t; i < n; i += RED_T)
        s += term(b, i);
    part[t] = s;
    __syncthreads();
    for (int h = RED_T / 2; h > 0; h >>= 1) {
        if (t < h)
            part[t] += part[t + h];
        __syncthreads();
    }
    if (t == 0)
        out[b] += (float)part[0];
}

/* float sum over the 32 lanes of a warp (xor butterfly: every lane gets the same bits) */
__device__ static inline float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* double sum over the 32 lanes of a warp (xor butterfly: every lane gets the same bits) */
__device__ static inline double warp_sum_d(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

#endif /* CATANET_REDUCE_CUH */
