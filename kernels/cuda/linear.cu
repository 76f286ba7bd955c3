/*
 * linear.cu: nn.Linear on token rows with cuBLAS (twin of kernels/cpu/linear.c).
 * defines: catanet_linear_fwd_cuda, catanet_linear_fused_fwd_cuda, catanet_cuda_gemm_rm (shared with
 *          conv2d.cu), catanet_cuda_sgemm_rm, catanet_linear_bwd_cuda
 */
#include <mma.h>

#include "cuda_common.cuh"
#include "gemm.cuh"
#include "reduce.cuh"

/* y [rows][out] = bias broadcast (the GEMM then accumulates with beta = 1, as the CPU path does);
 * rows over blockIdx/threadIdx.y, columns over threadIdx.x */
__global__ void bias_rows_kernel(int rows, int out, const float *b, float *y)
{
    for (int r = blockIdx.x * blockDim.y + threadIdx.y; r < rows; r += gridDim.x * blockDim.y)
        for (int o = threadIdx.x; o < out; o += blockDim.x)
            y[(size_t)r * out + o] = b[o];
}

/* Row-major C[m][n] (+)= A[m][k] B[n][k]^T, i.e. x w^T with PyTorch weights. In cuBLAS's
 * column-major view that is C^T (n x m) = B (n x k, stored k-major: op T) * A^T (k x m). */
int catanet_cuda_gemm_rm(CatanetCudaCtx *cx, int m, int n, int k, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc)
{
    const float alpha = 1.0f;
    if (m == 0 || n == 0)
        return 0;
    if (cx->gemm_fp16)
        CUBLAS_TRY(cx, cublasGemmEx(cx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_32F,
                                    ldb, a, CUDA_R_32F, lda, &beta, c, CUDA_R_32F, ldc,
                                    CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_TRY(cx, cublasSgemm(cx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a, lda,
                                   &beta, c, ldc));
    return 0;
}

/* x [n,in], w [out,in], b [out] or NULL -> y [n,out] */
int catanet_linear_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y)
{
    CUDA_REQUIRE(cx, n >= 0 && in > 0 && out > 0, "linear_fwd_cuda");
    if (n == 0)
        return 0;
    if (b) {
        unsigned blocks = (unsigned)((n + 7) / 8 < 65535 * 16 ? (n + 7) / 8 : 65535 * 16);
        bias_rows_kernel<<<blocks, dim3(32, 8), 0, cx->stream>>>(n, out, b, y);
        CUDA_LAUNCHED(cx, "linear bias");
    }
    return catanet_cuda_gemm_rm(cx, n, out, in, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

/* ---------------- fused: [res +] gelu?(LN?(x) w^T + b) in one pass ----------------
 * The token-wise layers around the attention are small GEMMs (in, out <= 96 for CATANet-L) whose
 * cost is memory traffic: LayerNorm, the GEMM, the bias, the GELU and the residual add each read
 * and write the whole [N,C] tensor when run apart. Here a block stages a tile of LF_TOK tokens
 * (LayerNorm applied while staging, statistics from a first pass over the tile's rows) and a
 * chunk of the weights in shared memory, LF_K input channels at a time, and writes each output once
 * with the epilogue applied. fp32 on CUDA cores: 4 x 4 outputs per thread, a thread's tokens
 * ty + 16 i and outputs tx + 16 j (conflict-free shared loads: a warp reads 2 token addresses and
 * 16 consecutive weights). */
#define LF_TOK 64
#define LF_OUT 64
#define LF_K 32

/* LRSA's band weights for the epilogue (CatanetLinearFusion.band_*), or wr == NULL */
struct LfBand {
    const float *wr, *wc, *cr, *cc;
    int w;
};

/* one output of the fused layer: bias, GELU, then the residual (band-weighted for LRSA) and the
 * store, or the split routing */
template <typename TY, typename TR>
__device__ static inline void lf_store(float v, size_t t, int o, int out, const float *bias, int gelu,
                                       const TR *res, TY *y, int s0, int s1, float *y1, float *y2, LfBand band)
{
    if (bias)
        v += bias[o];
    if (gelu)
        v = gelu_exact(v);
    if (s0 == 0) {
        size_t at = t * out + o;
        if (band.wr) { /* as lrsa_combine_kernel: f (cnt x + proj) */
            int r = (int)(t / band.w), c = (int)(t - (size_t)r * band.w);
            v = band.wr[r] * band.wc[c] * (band.cr[r] * band.cc[c] * ld_act(res + at) + v);
        } else if (res) {
            v += ld_act(res + at);
        }
        st_act(y + at, v);
    } else { /* y1 and y2 hold the same type as y (fp16: q, k and v stored as fp16) */
        TY *dst = o < s0 ? y : o >= s1 ? (TY *)y2 : (TY *)y1;
        int col = o < s0 ? o : o >= s1 ? o - s1 : o - s0;
        int width = o < s0 ? s0 : o >= s1 ? out - s1 : s1 - s0;
        st_act(dst + t * width + col, v);
    }
}

/* LayerNorm statistics of a block's rows (as layernorm.cu: a warp per row, two passes in fp32),
 * for a block of 8 warps */
template <typename TX>
__device__ static inline void lf_row_stats(const TX *x, int ntok, int in, float *mean_s, float *rstd_s)
{
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int t = warp; t < ntok; t += 8) {
        const TX *xr = x + (size_t)t * in;
        float s = 0.0f;
        for (int ch = lane; ch < in; ch += 32)
            s += ld_act(xr + ch);
        float mean = warp_sum(s) / in;
        float q = 0.0f;
        for (int ch = lane; ch < in; ch += 32) {
            float d = ld_act(xr + ch) - mean;
            q += d * d;
        }
        float rstd = rsqrtf(warp_sum(q) / in + CATANET_LN_EPS);
        if (lane == 0) {
            mean_s[t] = mean;
            rstd_s[t] = rstd;
        }
    }
}

template <typename TX, typename TY, typename TR>
__global__ void __launch_bounds__(256) linear_fused_kernel(int n, int in, int out, const TX *x,
                                                           const float *w, const float *lnw,
                                                           const float *lnb, const float *bias, int gelu,
                                                           const TR *res, TY *y, float *ln_out,
                                                           int s0, int s1, float *y1, float *y2, LfBand band)
{
    __shared__ float xs[LF_K][LF_TOK + 1]; /* +1: the staging writes (k varies in a warp) spread over banks */
    __shared__ float ws[LF_K][LF_OUT + 1];
    __shared__ float mean_s[LF_TOK], rstd_s[LF_TOK];
    int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    size_t t0 = (size_t)blockIdx.x * LF_TOK;
    int ntok = n - t0 < LF_TOK ? (int)(n - t0) : LF_TOK;
    if (lnw)
        lf_row_stats(x + t0 * in, ntok, in, mean_s, rstd_s);
    for (int o0 = 0; o0 < out; o0 += LF_OUT) {
        float acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int j = 0; j < 4; j++)
                acc[i][j] = 0.0f;
        for (int k0 = 0; k0 < in; k0 += LF_K) {
            __syncthreads(); /* the statistics are written / the previous chunk is consumed */
            for (int e = threadIdx.x; e < LF_TOK * LF_K; e += 256) {
                int t = e / LF_K, k = e % LF_K; /* a warp reads 32 consecutive channels of a row */
                float v = 0.0f;
                if (t < ntok && k0 + k < in) {
                    v = ld_act(x + (t0 + t) * in + k0 + k);
                    if (lnw) {
                        v = (v - mean_s[t]) * rstd_s[t] * lnw[k0 + k] + lnb[k0 + k];
                        if (ln_out && o0 == 0)
                            ln_out[(t0 + t) * in + k0 + k] = v;
                    }
                }
                xs[k][t] = v;
            }
            for (int e = threadIdx.x; e < LF_OUT * LF_K; e += 256) {
                int o = e / LF_K, k = e % LF_K;
                ws[k][o] = o0 + o < out && k0 + k < in ? w[(size_t)(o0 + o) * in + k0 + k] : 0.0f;
            }
            __syncthreads();
            int kn = in - k0 < LF_K ? in - k0 : LF_K;
            for (int k = 0; k < kn; k++) {
                float a[4], b[4];
#pragma unroll
                for (int i = 0; i < 4; i++)
                    a[i] = xs[k][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 4; j++)
                    b[j] = ws[k][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 4; i++)
#pragma unroll
                    for (int j = 0; j < 4; j++)
                        acc[i][j] += a[i] * b[j];
            }
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int t = ty + 16 * i;
            if (t >= ntok)
                continue;
#pragma unroll
            for (int j = 0; j < 4; j++) {
                int o = o0 + tx + 16 * j;
                if (o >= out)
                    continue;
                lf_store(acc[i][j], t0 + t, o, out, bias, gelu, res, y, s0, s1, y1, y2, band);
            }
        }
    }
}

/* ---------------- fused, on tensor cores (the fp16 mode: cx->gemm_fp16) ----------------
 * The same layer with the product on nvcuda::wmma m16n16k16: a block stages LT_TOK tokens of x
 * (LayerNorm applied in fp32 first, then rounded to fp16, as the fp16 mode's cuBLAS GEMMs round
 * their inputs) and the whole weight matrix (fp16, transposed to [k][out], both zero-padded to
 * multiples of 16) in shared memory; each warp owns 16 tokens and walks the 16-output fragments,
 * accumulating in fp32, and the fragment goes through a per-warp 16x16 staging tile to lf_store.
 * The token layers' ~200 GFLOP a 960x540 frame (8 groups) run here instead of on fp32 CUDA cores. */
#define LT_TOK 128 /* 8 warps x 16 tokens */

__host__ __device__ static inline int lt_round16(int v)
{
    return (v + 15) & ~15;
}

static size_t lt_smem(int in, int out)
{
    return sizeof(__half) * ((size_t)LT_TOK * lt_round16(in) + (size_t)lt_round16(in) * lt_round16(out)) +
           sizeof(float) * (8 * 256 + 2 * LT_TOK);
}

template <typename TX, typename TY, typename TR>
__global__ void __launch_bounds__(256) linear_fused_tc_kernel(int n, int in, int out, const TX *x, const float *w,
                                                              const float *lnw, const float *lnb, const float *bias,
                                                              int gelu, const TR *res, TY *y, float *ln_out, int s0,
                                                              int s1, float *y1, float *y2, LfBand band)
{
    namespace wmma = nvcuda::wmma;
    extern __shared__ float4 lt_smem_f4[]; /* dynamic only: 16-byte aligned at least; every part below
                                              starts at a multiple of 32 bytes from it */
    const int kp = lt_round16(in), op = lt_round16(out), tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    __half *xs = (__half *)lt_smem_f4;                /* [LT_TOK][kp] */
    __half *ws = xs + LT_TOK * kp;                     /* [kp][op] */
    float *st = (float *)(ws + (size_t)kp * op);       /* per warp [16][16] */
    float *mean_s = st + 8 * 256, *rstd_s = mean_s + LT_TOK;
    size_t t0 = (size_t)blockIdx.x * LT_TOK;
    int ntok = n - t0 < LT_TOK ? (int)(n - t0) : LT_TOK;
    if (lnw)
        lf_row_stats(x + t0 * in, ntok, in, mean_s, rstd_s);
    for (int i = tid; i < kp * op; i += 256) {
        int k = i / op, o = i - k * op;
        ws[i] = __float2half_rn(k < in && o < out ? w[(size_t)o * in + k] : 0.0f);
    }
    __syncthreads(); /* the statistics */
    for (int i = tid; i < LT_TOK * kp; i += 256) {
        int t = i / kp, k = i - t * kp;
        float v = 0.0f;
        if (t < ntok && k < in) {
            v = ld_act(x + (t0 + t) * in + k);
            if (lnw) {
                v = (v - mean_s[t]) * rstd_s[t] * lnw[k] + lnb[k];
                if (ln_out)
                    ln_out[(t0 + t) * in + k] = v;
            }
        }
        xs[i] = __float2half_rn(v);
    }
    __syncthreads();
    if (warp * 16 >= ntok)
        return; /* no barrier follows */
    float *wst = st + warp * 256;
    for (int n0 = 0; n0 < op; n0 += 16) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k0 = 0; k0 < kp; k0 += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> af;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> bf;
            wmma::load_matrix_sync(af, xs + (size_t)warp * 16 * kp + k0, kp);
            wmma::load_matrix_sync(bf, ws + (size_t)k0 * op + n0, op);
            wmma::mma_sync(acc, af, bf, acc);
        }
        wmma::store_matrix_sync(wst, acc, 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
            int t = warp * 16 + (e >> 4), o = n0 + (e & 15);
            if (t < ntok && o < out)
                lf_store(wst[e], t0 + t, o, out, bias, gelu, res, y, s0, s1, y1, y2, band);
        }
        __syncwarp(); /* read before the next fragment is stored */
    }
}

/* one launch with x, y and res of the types the fusion's flags say (fp32 or __half behind the float
 * pointers): the kernels are instantiated for each combination */
template <typename TX, typename TY, typename TR>
static void lf_launch(CatanetCudaCtx *cx, bool tc, int n, int in, int out, const TX *x, const float *w,
                      const CatanetLinearFusion *f, TY *y)
{
    LfBand band = { f->band_wr, f->band_wc, f->band_cr, f->band_cc, f->band_w };
    const TR *res = (const TR *)f->res;
    unsigned blocks = (unsigned)(((size_t)n + (tc ? LT_TOK : LF_TOK) - 1) / (tc ? LT_TOK : LF_TOK));
    size_t smem = tc ? lt_smem(in, out) : 0;
    if (tc)
        linear_fused_tc_kernel<TX, TY, TR><<<blocks, 256, smem, cx->stream>>>(
            n, in, out, x, w, f->ln_w, f->ln_b, f->bias, f->gelu, res, y, f->ln_out, f->split[0], f->split[1], f->y1,
            f->y2, band);
    else
        linear_fused_kernel<TX, TY, TR><<<blocks, 256, 0, cx->stream>>>(
            n, in, out, x, w, f->ln_w, f->ln_b, f->bias, f->gelu, res, y, f->ln_out, f->split[0], f->split[1], f->y1,
            f->y2, band);
}
template <typename TX, typename TY>
static void lf_launch_r(CatanetCudaCtx *cx, bool tc, int n, int in, int out, const TX *x, const float *w,
                        const CatanetLinearFusion *f, TY *y)
{
    if (f->res_fp16)
        lf_launch<TX, TY, __half>(cx, tc, n, in, out, x, w, f, y);
    else
        lf_launch<TX, TY, float>(cx, tc, n, in, out, x, w, f, y);
}
template <typename TX>
static void lf_launch_y(CatanetCudaCtx *cx, bool tc, int n, int in, int out, const TX *x, const float *w,
                        const CatanetLinearFusion *f, float *y)
{
    if (f->y_fp16)
        lf_launch_r<TX, __half>(cx, tc, n, in, out, x, w, f, (__half *)y);
    else
        lf_launch_r<TX, float>(cx, tc, n, in, out, x, w, f, y);
}

int catanet_linear_fused_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x, const float *w,
                                  const CatanetLinearFusion *f, float *y)
{
    CUDA_REQUIRE(cx, n >= 0 && in > 0 && out > 0 && f && x && w && y, "linear_fused_fwd_cuda");
    CUDA_REQUIRE(cx, (f->ln_w == NULL) == (f->ln_b == NULL), "linear_fused_fwd_cuda");
    /* y may alias res (each output is read and written by one thread), never x: a block reads its
     * rows of x again for every chunk of LF_OUT outputs */
    CUDA_REQUIRE(cx, (const float *)y != x, "linear_fused_fwd_cuda");
    CUDA_REQUIRE(cx, !f->ln_out || (f->ln_w && (const float *)f->ln_out != x), "linear_fused_fwd_cuda");
    int s0 = f->split[0], s1 = f->split[1];
    CUDA_REQUIRE(cx, (s0 == 0 && s1 == 0) || (0 < s0 && s0 < s1 && s1 <= out && f->y1 && (s1 == out || f->y2) &&
                                              !f->res && (const float *)f->y1 != x && (const float *)f->y2 != x),
                 "linear_fused_fwd_cuda");
    /* y in place on res only when both have the same type */
    CUDA_REQUIRE(cx, !f->res || (const float *)y != f->res || f->y_fp16 == f->res_fp16, "linear_fused_fwd_cuda");
    CUDA_REQUIRE(cx, !f->res_fp16 || f->res, "linear_fused_fwd_cuda");
    CUDA_REQUIRE(cx, !f->band_wr || (f->band_wc && f->band_cr && f->band_cc && f->band_w > 0 && n % f->band_w == 0 &&
                                     f->res && s0 == 0 && !f->gelu),
                 "linear_fused_fwd_cuda");
    if (n == 0)
        return 0;
    /* the fp16 mode: tensor cores (while the weights and a tile fit the default shared memory) */
    const bool tc = cx->gemm_fp16 && lt_smem(in, out) <= 48 * 1024;
    if (f->x_fp16)
        lf_launch_y<__half>(cx, tc, n, in, out, (const __half *)x, w, f, y);
    else
        lf_launch_y<float>(cx, tc, n, in, out, x, w, f, y);
    CUDA_LAUNCHED(cx, tc ? "linear_fused (tensor cores)" : "linear_fused");
    return 0;
}

/* ---------------- backward ---------------- */

/* Row-major C = alpha op(A) op(B) + beta C. cuBLAS sees row-major X [r][c] (ld) as the
 * column-major c x r matrix X^T, so C^T (n x m) = op(B)^T op(A)^T: B's operand is N when B is
 * stored [k][n] (its column-major view is already op(B)^T), T when stored [n][k]; A likewise. */
int catanet_cuda_sgemm_rm(CatanetCudaCtx *cx, int ta, int tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m == 0 || n == 0)
        return 0;
    CUBLAS_TRY(cx, cublasSgemm(cx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                               &alpha, b, ldb, a, lda, &beta, c, ldc));
    return 0;
}

/* forward y = x w^T + b:  dx (may be NULL) += dy w;  dw (may be NULL) += dy^T x;  db (may be NULL) +=
 * column sums of dy. dx and dw are cuBLAS GEMMs with beta = 1 (accumulate); db is the fixed-order
 * column reduction of reduce.cuh (double partials): all three are the same bits on every run. */
int catanet_linear_bwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db)
{
    CUDA_REQUIRE(cx, n >= 0 && in > 0 && out > 0, "linear_bwd_cuda");
    CUDA_REQUIRE(cx, dy && (!dx || w) && (!dw || x), "linear_bwd_cuda");
    if (n == 0)
        return 0;
    int ret;
    if (dx && (ret = catanet_cuda_sgemm_rm(cx, 0, 0, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in)) < 0)
        return ret;
    if (dw && (ret = catanet_cuda_sgemm_rm(cx, 1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in)) < 0)
        return ret;
    if (db) {
        ColTerm t = { dy, out };
        return launch_colsum(cx, n, out, t, db, 1, "linear_bwd db");
    }
    return 0;
}
