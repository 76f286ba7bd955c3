/*
 * conv2d.cu: dense KxK convolution, stride 1, zero padding K/2, NHWC (twin of kernels/cpu/conv2d.c):
 * direct kernels for 3x3 convs with few input or output channels (the first and the last conv), an
 * implicit GEMM for the other 3x3 convs (fp32 on CUDA cores, or fp16 on tensor cores in fp16 mode),
 * and else im2col of a fixed chunk of output pixels
 * into cx->work, then one cuBLAS GEMM per chunk.
 * defines: catanet_conv2d_cuda_work, catanet_conv2d_fwd_cuda, catanet_conv2d_res_fwd_cuda,
 *          catanet_conv2d_weights_half_count, catanet_conv2d_weights_half_cuda,
 *          catanet_conv2d_weights_permute_cuda,
 *          catanet_conv2d_shuffle_lrelu_fwd_cuda, catanet_conv2d_im2col_fwd_cuda,
 *          catanet_conv2d_bwd_cuda_work, catanet_conv2d_bwd_cuda
 */
#include <stdint.h>

#include <cuda_fp16.h>
#include <mma.h>

#include "cuda_common.cuh"
#include "gemm.cuh"

/* weights permuted to [cout][k][k][cin] (so that im2col copies contiguous channel runs), then
 * the im2col chunk */
static size_t wperm_floats(const CatanetConv2dArgs *a)
{
    return ((size_t)a->cout * a->cin * a->ksize * a->ksize + 63) & ~(size_t)63;
}

__host__ __device__ static inline int round16(int n)
{
    return (n + 15) & ~15;
}

/* one output (img, y, x, co) of the implicit-GEMM kernels with its epilogue: + res (which may be out)
 * and then + res2 (CATANet's global residual, in the last group's conv), or, with shuf = r > 0, the
 * upsampler's PixelShuffle(r) and LeakyReLU(0.1) (co = c r^2 + i r + j goes to
 * out[img][y r + i][x r + j][c], PyTorch's order), so the conv's [N, C r^2] output is never stored */
template <typename TO>
__device__ static inline void conv_put(const CatanetConv2dArgs &a, int shuf, const TO *res, const TO *res2,
                                       TO *out, int img, int y, int x, int co, float v)
{
    if (shuf) {
        int rr = shuf * shuf, c = co / rr, ij = co - c * rr, i = ij / shuf, j = ij - i * shuf;
        size_t oy = (size_t)img * a.h * shuf + (size_t)y * shuf + i, ox = (size_t)x * shuf + j;
        st_act(out + (oy * a.w * shuf + ox) * (a.cout / rr) + c, v >= 0.0f ? v : CATANET_LRELU_SLOPE * v);
        return;
    }
    size_t at = (((size_t)img * a.h + y) * a.w + x) * a.cout + co;
    if (res)
        v = ld_act(res + at) + v; /* res may be out */
    if (res2)
        v += ld_act(res2 + at);   /* the order of the separate add it replaces: (res + conv) + res2 */
    st_act(out + at, v);
}

/* fp16 weights of the tensor-core path: [9][cin rounded to 16][cout rounded to 16] halves, + 32 bytes
 * to align them */
size_t catanet_conv2d_weights_half_count(const CatanetConv2dArgs *a)
{
    return (size_t)9 * round16(a->cin) * round16(a->cout);
}

static size_t whalf_floats(const CatanetConv2dArgs *a)
{
    return (catanet_conv2d_weights_half_count(a) + 1) / 2 + 8;
}

size_t catanet_conv2d_cuda_work(const CatanetConv2dArgs *a)
{
    size_t im2col = wperm_floats(a) + (size_t)CATANET_CUDA_CONV_ROWS * a->cin * a->ksize * a->ksize;
    return im2col > whalf_floats(a) ? im2col : whalf_floats(a);
}

/* w [cout][cin][kk] -> wp [cout][kk][cin] */
__global__ void conv_permute_kernel(int cout, int cin, int kk, const float *w, float *wp)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        wp[(size_t)o * cin * kk + t * cin + c] = w[i];
    }
}

/* col [rows][k*k*cin] for output pixels p0.. (one warp per pixel, 8 per block), columns ordered
 * [ky][kx][cin] like the permuted weights; taps outside the image are 0 */
__global__ void im2col_kernel(CatanetConv2dArgs a, const float *in, int p0, int rows, float *col)
{
    int r = blockIdx.x * blockDim.y + threadIdx.y;
    if (r >= rows)
        return;
    int k = a.ksize, p = k / 2, cin = a.cin, ncol = cin * k * k;
    int pix = p0 + r, hw = a.h * a.w;
    int img = pix / hw, rem = pix - img * hw, y = rem / a.w, x = rem - y * a.w;
    float *cr = col + (size_t)r * ncol;
    for (int j = threadIdx.x; j < ncol; j += blockDim.x) {
        int t = j / cin, c = j - t * cin, ky = t / k, kx = t - ky * k;
        int yy = y + ky - p, xx = x + kx - p;
        float v = 0.0f;
        if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w)
            v = in[(((size_t)img * a.h + yy) * a.w + xx) * cin + c];
        cr[j] = v;
    }
}

/* Small convs (the first, 3 -> C, and the last, C -> 3): direct, one thread per output element,
 * no im2col round trip. Sum per tap over the channels (contiguous reads). */
__global__ void conv_direct_kernel(CatanetConv2dArgs a, const float *in, const float *wt, const float *bias,
                                   float *out)
{
    int k = a.ksize, p = k / 2, kk = k * k, cin = a.cin, hw = a.h * a.w, total = a.batch * hw * a.cout;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int o = i % a.cout, pix = i / a.cout, img = pix / hw, rem = pix - img * hw, y = rem / a.w, x = rem - y * a.w;
        float acc = bias ? bias[o] : 0.0f;
        const float *wo = wt + (size_t)o * cin * kk;
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - p;
            if (yy < 0 || yy >= a.h)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - p;
                if (xx < 0 || xx >= a.w)
                    continue;
                const float *src = in + (((size_t)img * a.h + yy) * a.w + xx) * cin;
                const float *wk = wo + ky * k + kx;
                for (int c = 0; c < cin; c++)
                    acc += src[c] * wk[c * kk];
            }
        }
        out[i] = acc;
    }
}

#define CONV_DIRECT_MAX 4 /* cin or cout at most this: the direct kernel */


/* ---- direct 3x3 conv with cout <= 4 (the last conv, C -> 3 at the output size) ----
 * The old one-thread-per-output kernel above reads 9 cin inputs per output from global memory, each
 * input 3 x 9 times over. Here a block owns a 32 x 32 tile of output pixels: the tile plus its
 * 1-pixel halo is staged in shared memory CO_CC channels at a time (one float4 per pixel, stored as
 * CO_CC planes so that lanes, which own consecutive columns, read consecutive words), the weights of
 * all taps sit in shared memory as one float4 (the COUT outputs) per (channel, tap), and each thread
 * computes CO_RY pixels of one column for all COUT outputs, loading each window row once for them.
 * Per output the sum runs in the CPU twin's order (bias, then channel, ky, kx; a tap outside the image
 * adds 0 * w, which leaves the sum unchanged, as the CPU's skipped tap does). */
#define CO_TW 32           /* tile width: one column per lane */
#define CO_RY 4            /* rows per thread */
#define CO_TH (8 * CO_RY)  /* 8 warps */
#define CO_CC 4            /* channels per staged slice */
#define CO_PLANE ((CO_TH + 2) * (CO_TW + 2))

static size_t co_smem(int cin)
{
    return sizeof(float) * (CO_CC * CO_PLANE + (size_t)cin * 9 * 4); /* 18.5 KB + 5.8 KB for cin = 40 */
}

/* the direct few-output-channel kernel takes it (its input fp32, 16-byte aligned, or fp16, 8) */
static bool co_takes(const CatanetConv2dArgs *a, const void *in, int in_fp16)
{
    return a->ksize == 3 && a->batch <= 65535 && a->cout <= 4 && a->cin % 4 == 0 &&
           ((uintptr_t)in & (in_fp16 ? 7 : 15)) == 0 && co_smem(a->cin) <= 48 * 1024 &&
           (a->h + CO_TH - 1) / CO_TH <= 65535;
}

template <int COUT, typename TI>
__global__ void __launch_bounds__(256)
    conv_cout_small_kernel(CatanetConv2dArgs a, const TI *in, const float *wt, const float *bias, float *out)
{
    extern __shared__ float4 co_smem_f4[];
    constexpr int SW = CO_TW + 2;
    float *planes = (float *)co_smem_f4;        /* [CO_CC][CO_TH + 2][SW] */
    float4 *ws = co_smem_f4 + CO_CC * CO_PLANE / 4; /* [cin][9]: the COUT weights of a tap, padded to 4 */
    const int tid = threadIdx.y * 32 + threadIdx.x, cin = a.cin;
    for (int i = tid; i < cin * 9; i += 256) {
        int c = i / 9, t = i - c * 9;
        float v[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
#pragma unroll
        for (int o = 0; o < COUT; o++)
            v[o] = wt[((size_t)o * cin + c) * 9 + t];
        float4 w4 = { v[0], v[1], v[2], v[3] };
        ws[i] = w4;
    }
    const int img = blockIdx.z, x0 = blockIdx.x * CO_TW, y0 = blockIdx.y * CO_TH;
    const int lx = threadIdx.x, ly = threadIdx.y * CO_RY;
    const TI *src = in + (size_t)img * a.h * a.w * cin;
    float acc[CO_RY][COUT];
#pragma unroll
    for (int r = 0; r < CO_RY; r++)
#pragma unroll
        for (int o = 0; o < COUT; o++)
            acc[r][o] = bias ? bias[o] : 0.0f;
    for (int c0 = 0; c0 < cin; c0 += CO_CC) {
        __syncthreads(); /* the previous slice is no longer read (and the weights are in) */
        for (int p = tid; p < CO_PLANE; p += 256) {
            int sy = p / SW, sx = p - sy * SW, gy = y0 + sy - 1, gx = x0 + sx - 1;
            float4 v = { 0.0f, 0.0f, 0.0f, 0.0f };
            if ((unsigned)gy < (unsigned)a.h && (unsigned)gx < (unsigned)a.w)
                v = ld_act4(src + ((size_t)gy * a.w + gx) * cin + c0);
            planes[p] = v.x;
            planes[CO_PLANE + p] = v.y;
            planes[2 * CO_PLANE + p] = v.z;
            planes[3 * CO_PLANE + p] = v.w;
        }
        __syncthreads();
#pragma unroll
        for (int cc = 0; cc < CO_CC; cc++) {
            const float *pl = planes + cc * CO_PLANE + ly * SW + lx;
            const float4 *wc = ws + (c0 + cc) * 9;
            /* window row j feeds output row r = j - ky: per output, ky then kx increase */
#pragma unroll
            for (int j = 0; j < CO_RY + 2; j++) {
                float v[3] = { pl[j * SW], pl[j * SW + 1], pl[j * SW + 2] };
#pragma unroll
                for (int ky = 2; ky >= 0; ky--) {
                    int r = j - ky;
                    if (r < 0 || r >= CO_RY)
                        continue;
#pragma unroll
                    for (int kx = 0; kx < 3; kx++) {
                        float4 w4 = wc[ky * 3 + kx];
                        float wv[4] = { w4.x, w4.y, w4.z, w4.w };
#pragma unroll
                        for (int o = 0; o < COUT; o++)
                            acc[r][o] += v[kx] * wv[o];
                    }
                }
            }
        }
    }
    int x = x0 + lx;
#pragma unroll
    for (int r = 0; r < CO_RY; r++) {
        int y = y0 + ly + r;
        if (x < a.w && y < a.h)
#pragma unroll
            for (int o = 0; o < COUT; o++)
                out[(((size_t)img * a.h + y) * a.w + x) * COUT + o] = acc[r][o];
    }
}

template <typename TI>
static void co_launch(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const TI *in, const float *wt,
                      const float *bias, float *out)
{
    dim3 grid((a->w + CO_TW - 1) / CO_TW, (a->h + CO_TH - 1) / CO_TH, a->batch), th(32, 8);
    size_t smem = co_smem(a->cin);
    if (a->cout == 1)
        conv_cout_small_kernel<1, TI><<<grid, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->cout == 2)
        conv_cout_small_kernel<2, TI><<<grid, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->cout == 3)
        conv_cout_small_kernel<3, TI><<<grid, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else
        conv_cout_small_kernel<4, TI><<<grid, th, smem, cx->stream>>>(*a, in, wt, bias, out);
}

/* ---- direct 3x3 conv with cin <= 4 (the first conv, 3 -> C) ----
 * A block owns 16 x 16 output pixels, one per thread: the input tile plus halo (3 channels a pixel)
 * is staged in shared memory, each thread keeps its 9 cin inputs in registers and walks the outputs
 * four at a time with one broadcast float4 weight load per tap (weights in shared memory as
 * [cin][ky][kx][cout]), and writes them as float4. The sum runs in the CPU twin's order. */
#define CI_T 16

static size_t ci_smem(int cin, int cout)
{
    return sizeof(float) * ((size_t)9 * cin * cout + (size_t)(CI_T + 2) * (CI_T + 2) * cin);
}

template <int CIN, typename TO>
__global__ void __launch_bounds__(256)
    conv_cin_small_kernel(CatanetConv2dArgs a, const float *in, const float *wt, const float *bias, TO *out)
{
    extern __shared__ float4 ci_smem_f4[];
    constexpr int S = CI_T + 2, KK = 9 * CIN;
    const int cq = a.cout / 4, tid = threadIdx.x;
    float4 *ws = ci_smem_f4;                  /* [KK][cq]: tap t = (c, ky, kx), outputs 4q..4q+3 */
    float *tile = (float *)(ci_smem_f4 + KK * cq); /* [S][S][CIN] */
    for (int i = tid; i < KK * cq; i += 256) {
        int t = i / cq, q = i - t * cq;
        float4 w4 = { wt[(size_t)(4 * q) * KK + t], wt[(size_t)(4 * q + 1) * KK + t], wt[(size_t)(4 * q + 2) * KK + t],
                      wt[(size_t)(4 * q + 3) * KK + t] };
        ws[i] = w4;
    }
    const int img = blockIdx.z, x0 = blockIdx.x * CI_T, y0 = blockIdx.y * CI_T;
    const float *src = in + (size_t)img * a.h * a.w * CIN;
    for (int i = tid; i < S * S * CIN; i += 256) {
        int pix = i / CIN, c = i - pix * CIN, sy = pix / S, sx = pix - sy * S, gy = y0 + sy - 1, gx = x0 + sx - 1;
        tile[i] = (unsigned)gy < (unsigned)a.h && (unsigned)gx < (unsigned)a.w ? src[((size_t)gy * a.w + gx) * CIN + c]
                                                                              : 0.0f;
    }
    __syncthreads();
    const int tx = tid % CI_T, ty = tid / CI_T, x = x0 + tx, y = y0 + ty;
    if (x >= a.w || y >= a.h)
        return; /* no barrier follows */
    float v[KK];
#pragma unroll
    for (int c = 0; c < CIN; c++)
#pragma unroll
        for (int ky = 0; ky < 3; ky++)
#pragma unroll
            for (int kx = 0; kx < 3; kx++)
                v[c * 9 + ky * 3 + kx] = tile[((ty + ky) * S + tx + kx) * CIN + c];
    TO *dst = out + (((size_t)img * a.h + y) * a.w + x) * a.cout;
    for (int q = 0; q < cq; q++) {
        float o0 = bias ? bias[4 * q] : 0.0f, o1 = bias ? bias[4 * q + 1] : 0.0f;
        float o2 = bias ? bias[4 * q + 2] : 0.0f, o3 = bias ? bias[4 * q + 3] : 0.0f;
#pragma unroll
        for (int t = 0; t < KK; t++) {
            float4 w4 = ws[t * cq + q];
            o0 += v[t] * w4.x;
            o1 += v[t] * w4.y;
            o2 += v[t] * w4.z;
            o3 += v[t] * w4.w;
        }
        st_act4(dst + 4 * q, make_float4(o0, o1, o2, o3));
    }
}

/* ---- implicit-GEMM 3x3 conv, fp32 on CUDA cores (the mid 40 -> 40 and upconv 40 -> 160 convs) ----
 * out[pixel][co] = bias[co] + sum over (tap, c) of in[pixel shifted by the tap][c] wp[co][tap][c]:
 * a GEMM whose A rows (im2col rows) are never written out (im2col of 40 -> 40 at 960x540 writes and
 * reads back 746 MB). A block owns IG_TW x IG_TH = 128 output pixels: their input tile plus halo is
 * staged in shared memory once, all cin channels, pixel rows padded to IG_CSP floats (so that the 8
 * lanes of a float4 quarter-warp, reading 8 consecutive pixels, hit 8 distinct bank quads); then for
 * each group of IG_BN outputs and each tap, that tap's weights [IG_BN][cin] are staged (from the
 * permuted weights wp in cx->work) and every thread accumulates 4 pixels x 5 outputs, reading 4
 * channels per float4: lane -> pixels (lane, lane + 32, ...), warp -> outputs (warp*5 .. warp*5+4,
 * broadcast weight loads). Per output the sum runs tap by tap, channels in order (the CPU twin sums
 * channel by channel: the same terms in another order, fp32 rounding apart). */
#define IG_TW 16
#define IG_TH 8
#define IG_TM 4                     /* pixels per thread */
#define IG_TN 5                     /* outputs per thread */
#define IG_BN (8 * IG_TN)           /* outputs per group: 8 warps */

static int ig_csp(int cin)
{
    return (cin / 4) % 2 ? cin : cin + 4; /* a pixel stride of an odd number of float4s */
}

static size_t ig_smem(int cin)
{
    return sizeof(float) * ((size_t)(IG_TH + 2) * (IG_TW + 2) * ig_csp(cin) + (size_t)IG_BN * cin);
}

__global__ void __launch_bounds__(256)
    conv_igemm_kernel(CatanetConv2dArgs a, int csp, const float *in, const float *wp, const float *bias,
                      const float *res, const float *res2, int shuf, float *out)
{
    extern __shared__ float4 ig_smem_f4[];
    constexpr int SW = IG_TW + 2, SH = IG_TH + 2;
    const int cin = a.cin, c4n = cin / 4, csp4 = csp / 4, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    float4 *tile = ig_smem_f4;                  /* [SH][SW][csp / 4] */
    float4 *ws = ig_smem_f4 + SH * SW * csp4;   /* [IG_BN][cin / 4] */
    const int img = blockIdx.z, x0 = blockIdx.x * IG_TW, y0 = blockIdx.y * IG_TH;
    const float *src = in + (size_t)img * a.h * a.w * cin;
    for (int i = tid; i < SH * SW * c4n; i += 256) {
        int pix = i / c4n, g = i - pix * c4n, sy = pix / SW, sx = pix - sy * SW, gy = y0 + sy - 1, gx = x0 + sx - 1;
        float4 v = { 0.0f, 0.0f, 0.0f, 0.0f };
        if ((unsigned)gy < (unsigned)a.h && (unsigned)gx < (unsigned)a.w)
            v = *(const float4 *)(src + ((size_t)gy * a.w + gx) * cin + 4 * g);
        tile[pix * csp4 + g] = v;
    }
    int prow[IG_TM], pcol[IG_TM];
#pragma unroll
    for (int m = 0; m < IG_TM; m++) {
        int p = lane + 32 * m;
        prow[m] = p / IG_TW;
        pcol[m] = p % IG_TW;
    }
    for (int n0 = 0; n0 < a.cout; n0 += IG_BN) {
        float acc[IG_TM][IG_TN];
#pragma unroll
        for (int n = 0; n < IG_TN; n++) {
            int co = n0 + warp * IG_TN + n;
            float b = bias && co < a.cout ? bias[co] : 0.0f;
#pragma unroll
            for (int m = 0; m < IG_TM; m++)
                acc[m][n] = b;
        }
        for (int t = 0; t < 9; t++) {
            __syncthreads(); /* the previous tap's weights are no longer read (first time: the tile is in) */
            for (int i = tid; i < IG_BN * c4n; i += 256) {
                int j = i / c4n, g = i - j * c4n, co = n0 + j;
                float4 w = { 0.0f, 0.0f, 0.0f, 0.0f };
                if (co < a.cout)
                    w = *(const float4 *)(wp + ((size_t)co * 9 + t) * cin + 4 * g);
                ws[i] = w;
            }
            __syncthreads();
            const int ky = t / 3, kx = t - ky * 3;
            const float4 *arow[IG_TM];
#pragma unroll
            for (int m = 0; m < IG_TM; m++)
                arow[m] = tile + ((prow[m] + ky) * SW + pcol[m] + kx) * csp4;
            const float4 *brow = ws + warp * IG_TN * c4n;
            for (int g = 0; g < c4n; g++) {
                float4 av[IG_TM], bv[IG_TN];
#pragma unroll
                for (int m = 0; m < IG_TM; m++)
                    av[m] = arow[m][g];
#pragma unroll
                for (int n = 0; n < IG_TN; n++)
                    bv[n] = brow[n * c4n + g];
#pragma unroll
                for (int m = 0; m < IG_TM; m++)
#pragma unroll
                    for (int n = 0; n < IG_TN; n++) {
                        acc[m][n] += av[m].x * bv[n].x;
                        acc[m][n] += av[m].y * bv[n].y;
                        acc[m][n] += av[m].z * bv[n].z;
                        acc[m][n] += av[m].w * bv[n].w;
                    }
            }
        }
#pragma unroll
        for (int m = 0; m < IG_TM; m++) {
            int y = y0 + prow[m], x = x0 + pcol[m];
            if (y >= a.h || x >= a.w)
                continue;
#pragma unroll
            for (int n = 0; n < IG_TN; n++)
                if (n0 + warp * IG_TN + n < a.cout)
                    conv_put(a, shuf, res, res2, out, img, y, x, n0 + warp * IG_TN + n, acc[m][n]);
        }
    }
}

/* ---- implicit-GEMM 3x3 conv on tensor cores (fp16 mode): nvcuda::wmma m16n16k16 ----
 * The same GEMM as conv_igemm_kernel with fp16 inputs and weights and fp32 accumulation (what the
 * fp16 mode's cuBLAS GEMMs do): a block owns TC_TW x TC_TH = 16 x 16 output pixels; their input tile
 * plus halo is staged once in shared memory as fp16 [row][col][channel], channels zero-padded to a
 * multiple of 16 (cin = 40 -> 48: a pixel's row of an A fragment is 96 bytes, 32-byte aligned as
 * wmma needs). A row of 16 pixels shifted by a tap is then an A fragment read in place (ldm = the
 * padded channel count), so the im2col matrix exists only in fragments. B fragments come straight
 * from the fp16 weights [tap][channel][cout] in cx->work (138 KB for 40 -> 160, L1/L2-resident,
 * shared by all warps). Each warp owns TC_MR rows of the tile and up to NF 16-output fragments per
 * pass; accumulators go through a per-warp 16x16 staging tile in shared memory so that the bias,
 * the image's right and bottom edges and cout's padding are handled per element.
 * The input may be stored as fp16 (cx->conv_in_fp16: the fp16 mode's residual stream): the staging
 * rounds it to fp16 anyway, so the result is the same as from the same values stored as fp32. */
#define TC_TW 16          /* one A fragment: 16 pixels of a row */
#define TC_MR 2           /* tile rows per warp */
#define TC_TH (8 * TC_MR) /* 8 warps */

static size_t tc_smem(int cin)
{
    return sizeof(__half) * (TC_TH + 2) * (TC_TW + 2) * round16(cin) + sizeof(float) * 8 * 256; /* 39.3 KB for 40 */
}

/* wt [cout][cin][3][3] -> wh [9][cinp][coutp] in fp16, zero padded */
__global__ void conv_weights_half_kernel(int cout, int cin, int coutp, int cinp, const float *wt, __half *wh)
{
    int n = 9 * cinp * coutp;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int t = i / (cinp * coutp), r = i - t * cinp * coutp, c = r / coutp, o = r - c * coutp;
        wh[i] = __float2half_rn(c < cin && o < cout ? wt[((size_t)o * cin + c) * 9 + t] : 0.0f);
    }
}

int catanet_conv2d_weights_half_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *wt, void *wh)
{
    CUDA_REQUIRE(cx, a->ksize == 3 && a->cin > 0 && a->cout > 0 && wt && ((uintptr_t)wh & 31) == 0,
                 "conv2d_weights_half_cuda");
    int cinp = round16(a->cin), coutp = round16(a->cout);
    conv_weights_half_kernel<<<grid_for((size_t)9 * cinp * coutp, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(
        a->cout, a->cin, coutp, cinp, wt, (__half *)wh);
    CUDA_LAUNCHED(cx, "conv2d fp16 weights");
    return 0;
}

namespace wmma = nvcuda::wmma;

template <int NF, typename TI, typename TO>
__global__ void __launch_bounds__(256) conv_igemm_tc_kernel(CatanetConv2dArgs a, const TI *in, const __half *wh,
                                                            const float *bias, const TO *res, const TO *res2,
                                                            int shuf, TO *out)
{
    extern __shared__ float4 tc_smem_f4[]; /* 128-byte aligned (no static shared memory here) */
    constexpr int SW = TC_TW + 2, SH = TC_TH + 2;
    const int cin = a.cin, cinp = round16(cin), coutp = round16(a.cout), c4n = cinp / 4;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    __half *tile = (__half *)tc_smem_f4;                         /* [SH][SW][cinp] */
    float *st = (float *)(tile + SH * SW * cinp) + warp * 256;   /* this warp's [16][16] */
    const int img = blockIdx.z, x0 = blockIdx.x * TC_TW, y0 = blockIdx.y * TC_TH;
    const TI *src = in + (size_t)img * a.h * a.w * cin;
    for (int i = tid; i < SH * SW * c4n; i += 256) {
        int pix = i / c4n, g = i - pix * c4n, sy = pix / SW, sx = pix - sy * SW, gy = y0 + sy - 1, gx = x0 + sx - 1;
        float4 v = { 0.0f, 0.0f, 0.0f, 0.0f };
        if (4 * g < cin && (unsigned)gy < (unsigned)a.h && (unsigned)gx < (unsigned)a.w)
            v = ld_act4(src + ((size_t)gy * a.w + gx) * cin + 4 * g);
        __half *d = tile + pix * cinp + 4 * g;
        d[0] = __float2half_rn(v.x);
        d[1] = __float2half_rn(v.y);
        d[2] = __float2half_rn(v.z);
        d[3] = __float2half_rn(v.w);
    }
    __syncthreads();
    for (int n0 = 0; n0 < coutp; n0 += 16 * NF) {
        const int nf = (coutp - n0) / 16 < NF ? (coutp - n0) / 16 : NF;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[TC_MR][NF];
#pragma unroll
        for (int r = 0; r < TC_MR; r++)
#pragma unroll
            for (int f = 0; f < NF; f++)
                wmma::fill_fragment(acc[r][f], 0.0f);
        for (int t = 0; t < 9; t++) {
            const int ky = t / 3, kx = t - ky * 3;
            for (int k0 = 0; k0 < cinp; k0 += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> af[TC_MR];
#pragma unroll
                for (int r = 0; r < TC_MR; r++)
                    wmma::load_matrix_sync(af[r], tile + ((warp * TC_MR + r + ky) * SW + kx) * cinp + k0, cinp);
#pragma unroll
                for (int f = 0; f < NF; f++) {
                    if (f >= nf)
                        break;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> bf;
                    wmma::load_matrix_sync(bf, wh + ((size_t)t * cinp + k0) * coutp + n0 + 16 * f, coutp);
#pragma unroll
                    for (int r = 0; r < TC_MR; r++)
                        wmma::mma_sync(acc[r][f], af[r], bf, acc[r][f]);
                }
            }
        }
#pragma unroll
        for (int r = 0; r < TC_MR; r++) {
            const int y = y0 + warp * TC_MR + r;
#pragma unroll
            for (int f = 0; f < NF; f++) {
                if (f >= nf)
                    break;
                wmma::store_matrix_sync(st, acc[r][f], 16, wmma::mem_row_major);
                __syncwarp();
                for (int e = lane; e < 256; e += 32) {
                    int x = x0 + (e >> 4), co = n0 + 16 * f + (e & 15);
                    if (y < a.h && x < a.w && co < a.cout)
                        conv_put(a, shuf, res, res2, out, img, y, x, co, st[e] + (bias ? bias[co] : 0.0f));
                }
                __syncwarp(); /* read before the next fragment is stored */
            }
        }
    }
}

/* y [rows][cout] = bias (or 0) + res (or 0) + res2 (or 0), rows over blockIdx/threadIdx.y, columns
 * over threadIdx.x (the GEMM then accumulates with beta = 1; res may be y) */
__global__ void conv_bias_kernel(int rows, int cout, const float *b, const float *res, const float *res2, float *y)
{
    for (int r = blockIdx.x * blockDim.y + threadIdx.y; r < rows; r += gridDim.x * blockDim.y)
        for (int o = threadIdx.x; o < cout; o += blockDim.x) {
            size_t at = (size_t)r * cout + o;
            y[at] = (res ? res[at] : 0.0f) + (res2 ? res2[at] : 0.0f) + (b ? b[o] : 0.0f);
        }
}

static int check_fwd(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *out)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->cin > 0 && a->cout > 0, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_conv2d_cuda_work(a), "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "conv2d_fwd_cuda"); /* later chunks read rows earlier ones would overwrite */
    return 0;
}

int catanet_conv2d_weights_permute_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *wt, float *wp)
{
    CUDA_REQUIRE(cx, a->ksize > 0 && a->cin > 0 && a->cout > 0 && wt && ((uintptr_t)wp & 15) == 0,
                 "conv2d_weights_permute_cuda");
    int kk = a->ksize * a->ksize;
    conv_permute_kernel<<<grid_for((size_t)a->cout * a->cin * kk, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(
        a->cout, a->cin, kk, wt, wp);
    CUDA_LAUNCHED(cx, "conv2d permute");
    return 0;
}

static int im2col_fwd(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                      const float *bias, const float *res, const float *res2, float *out)
{
    CUDA_REQUIRE(cx, !cx->conv_in_fp16 && !cx->conv_out_fp16,
                 "conv2d im2col (fp32 only: unset cx->conv_in_fp16 and conv_out_fp16)");
    int total = a->batch * a->h * a->w, ncol = a->cin * a->ksize * a->ksize, ret;
    const float *wp = cx->conv_wp ? cx->conv_wp : cx->work; /* permuted once by the caller, or now */
    float *col = cx->work + wperm_floats(a);
    if (!cx->conv_wp && (ret = catanet_conv2d_weights_permute_cuda(cx, a, wt, cx->work)) < 0)
        return ret;
    if (bias || res) {
        unsigned blocks = (unsigned)((total + 7) / 8 < 65535 * 16 ? (total + 7) / 8 : 65535 * 16);
        conv_bias_kernel<<<blocks, dim3(32, 8), 0, cx->stream>>>(total, a->cout, bias, res, res2, out);
        CUDA_LAUNCHED(cx, "conv2d bias");
    }
    for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_ROWS) {
        int rows = total - p0 < CATANET_CUDA_CONV_ROWS ? total - p0 : CATANET_CUDA_CONV_ROWS;
        im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(*a, in, p0, rows, col);
        CUDA_LAUNCHED(cx, "conv2d im2col");
        ret = catanet_cuda_gemm_rm(cx, rows, a->cout, ncol, col, ncol, wp, ncol, bias || res ? 1.0f : 0.0f,
                                   out + (size_t)p0 * a->cout, a->cout);
        if (ret < 0)
            return ret;
    }
    return 0;
}

static bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15) == 0;
}

/* the tensor-core implicit GEMM takes this conv (with fp16 input when in_fp16: 8-byte alignment) */
static bool tc_takes(const CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const void *in, int in_fp16)
{
    return a->ksize == 3 && a->batch <= 65535 && cx->gemm_fp16 && a->cin % 4 == 0 &&
           ((uintptr_t)in & (in_fp16 ? 7 : 15)) == 0 && tc_smem(a->cin) <= 48 * 1024 &&
           (a->h + TC_TH - 1) / TC_TH <= 65535;
}
/* the direct few-input-channel kernel takes it (fp32 input, no residual; fp16 output: 8-byte aligned) */
static bool ci_takes(const CatanetConv2dArgs *a, const void *out, int out_fp16)
{
    return a->ksize == 3 && a->batch <= 65535 && a->cin <= 4 && a->cout % 4 == 0 &&
           ((uintptr_t)out & (out_fp16 ? 7 : 15)) == 0 && ci_smem(a->cin, a->cout) <= 48 * 1024 &&
           (a->h + CI_T - 1) / CI_T <= 65535;
}

int catanet_conv2d_takes_fp16(const CatanetCudaCtx *cx, const CatanetConv2dArgs *a, int in_fp16, int out_fp16,
                              int with_res)
{
    if (in_fp16) /* the tensor cores (any output, residuals, a shuffle), or few outputs into fp32 */
        return tc_takes(cx, a, NULL, 1) || (!out_fp16 && !with_res && co_takes(a, NULL, 1));
    return !out_fp16 || (!with_res && ci_takes(a, NULL, 1)); /* fp16 out of fp32 in: few inputs only */
}

template <typename TO>
static void ci_launch(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                      const float *bias, TO *out)
{
    dim3 grid((a->w + CI_T - 1) / CI_T, (a->h + CI_T - 1) / CI_T, a->batch);
    size_t smem = ci_smem(a->cin, a->cout);
    if (a->cin == 1)
        conv_cin_small_kernel<1, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->cin == 2)
        conv_cin_small_kernel<2, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->cin == 3)
        conv_cin_small_kernel<3, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wt, bias, out);
    else
        conv_cin_small_kernel<4, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wt, bias, out);
}

template <typename TI, typename TO>
static void tc_launch(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const TI *in, const __half *wh,
                      const float *bias, const TO *res, const TO *res2, int shuf, TO *out)
{
    dim3 grid((a->w + TC_TW - 1) / TC_TW, (a->h + TC_TH - 1) / TC_TH, a->batch);
    size_t smem = tc_smem(a->cin);
    if (round16(a->cout) <= 48)
        conv_igemm_tc_kernel<3, TI, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wh, bias, res, res2, shuf, out);
    else
        conv_igemm_tc_kernel<5, TI, TO><<<grid, 256, smem, cx->stream>>>(*a, in, wh, bias, res, res2, shuf, out);
}

/* in [B,H,W,cin], wt [cout,cin,k,k], bias [cout] or NULL, res [B,H,W,cout] or NULL (may be out), res2
 * (only with res, not out) -> out [B,H,W,cout]; the direct kernels take no residual (their shapes go
 * to im2col with one).
 * shuf = r > 0: PixelShuffle(r) + LeakyReLU in the epilogue (no res), out [B,H r,W r,cout/r^2]; only
 * the implicit-GEMM kernels have it: CATANET_ERR_UNSUPPORTED where neither applies */
static int conv_fwd(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                    const float *bias, const float *res, const float *res2, int shuf, float *out)
{
    int ret = check_fwd(cx, a, in, out);
    if (ret < 0)
        return ret;
    CUDA_REQUIRE(cx, res != in, "conv2d_fwd_cuda");
    int total = a->batch * a->h * a->w;
    bool k3 = a->ksize == 3 && a->batch <= 65535;
    const int ih = cx->conv_in_fp16, oh = cx->conv_out_fp16;
    if (ih || oh) { /* fp16 storage (the kernels catanet_conv2d_takes_fp16 names) */
        if (!ih && !res && !shuf && ci_takes(a, out, oh)) { /* few inputs, fp16 out */
            if (oh)
                ci_launch(cx, a, in, wt, bias, (__half *)out);
            else
                ci_launch(cx, a, in, wt, bias, out);
            CUDA_LAUNCHED(cx, "conv2d direct (cin <= 4)");
            return 0;
        }
        if (ih && !oh && !res && !shuf && co_takes(a, in, 1)) { /* few outputs, fp16 in */
            co_launch(cx, a, (const __half *)in, wt, bias, out);
            CUDA_LAUNCHED(cx, "conv2d direct (cout <= 4)");
            return 0;
        }
        if (!ih || !tc_takes(cx, a, in, 1))
            return cuda_fail(cx, CATANET_ERR_UNSUPPORTED, "conv2d: fp16 storage only on the tensor-core implicit "
                             "GEMM (fp16 mode, 3x3, cin %% 4 == 0, fp16 input) or the direct kernels for cin <= 4 "
                             "(fp32 in) and cout <= 4 (fp32 out): %d -> %d, k %d, in %s, out %s", a->cin, a->cout,
                             a->ksize, ih ? "fp16" : "fp32", oh ? "fp16" : "fp32");
        goto gemm;
    }
    if (res || shuf)
        goto gemm;
    if (co_takes(a, in, 0)) {
        co_launch(cx, a, in, wt, bias, out);
        CUDA_LAUNCHED(cx, "conv2d direct (cout <= 4)");
        return 0;
    }
    if (ci_takes(a, out, 0)) {
        ci_launch(cx, a, in, wt, bias, out);
        CUDA_LAUNCHED(cx, "conv2d direct (cin <= 4)");
        return 0;
    }
    if ((a->cout <= CONV_DIRECT_MAX || a->cin <= CONV_DIRECT_MAX) && (size_t)total * a->cout < ((size_t)1 << 31)) {
        size_t n = (size_t)total * a->cout;
        conv_direct_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, in, wt, bias, out);
        CUDA_LAUNCHED(cx, "conv2d direct");
        return 0;
    }
gemm:
    if (tc_takes(cx, a, in, ih)) {
        const __half *wh = (const __half *)cx->conv_wh; /* made once by the caller, or now from wt */
        CUDA_REQUIRE(cx, ((uintptr_t)wh & 31) == 0, "conv2d_fwd_cuda (cx->conv_wh: 32-byte aligned)");
        if (!wh) {
            __half *w16 = (__half *)(((uintptr_t)cx->work + 31) & ~(uintptr_t)31);
            if ((ret = catanet_conv2d_weights_half_cuda(cx, a, wt, w16)) < 0)
                return ret;
            wh = w16;
        }
        /* the forms the engine uses: fp32 -> fp32; fp16 -> fp32 (a group conv into an fp32 stream, the
         * upsampler into fp32 features); fp16 -> fp16 (a group conv in the fp16 stream, the upsampler
         * into fp16 features) */
        const __half *inh = (const __half *)in;
        if (oh)
            tc_launch(cx, a, inh, wh, bias, (const __half *)res, (const __half *)res2, shuf, (__half *)out);
        else if (ih)
            tc_launch(cx, a, inh, wh, bias, res, res2, shuf, out);
        else
            tc_launch(cx, a, in, wh, bias, res, res2, shuf, out);
        CUDA_LAUNCHED(cx, "conv2d implicit GEMM (tensor cores)");
        return 0;
    }
    const float *wp = cx->conv_wp ? cx->conv_wp : cx->work; /* permuted once by the caller, or below */
    if (k3 && !cx->gemm_fp16 && a->cin % 4 == 0 && aligned16(in) && aligned16(wp) &&
        ig_smem(a->cin) <= 48 * 1024 && (a->h + IG_TH - 1) / IG_TH <= 65535) {
        if (!cx->conv_wp && (ret = catanet_conv2d_weights_permute_cuda(cx, a, wt, cx->work)) < 0)
            return ret;
        dim3 grid((a->w + IG_TW - 1) / IG_TW, (a->h + IG_TH - 1) / IG_TH, a->batch);
        conv_igemm_kernel<<<grid, 256, ig_smem(a->cin), cx->stream>>>(*a, ig_csp(a->cin), in, wp, bias, res, res2,
                                                                      shuf, out);
        CUDA_LAUNCHED(cx, "conv2d implicit GEMM");
        return 0;
    }
    if (shuf)
        return cuda_fail(cx, CATANET_ERR_UNSUPPORTED,
                         "conv2d_shuffle_lrelu_fwd_cuda: no implicit-GEMM kernel for %d -> %d, k %d", a->cin, a->cout,
                         a->ksize);
    return im2col_fwd(cx, a, in, wt, bias, res, res2, out);
}

int catanet_conv2d_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    return conv_fwd(cx, a, in, wt, bias, NULL, NULL, 0, out);
}

int catanet_conv2d_shuffle_lrelu_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                                          const float *wt, const float *bias, int r, float *out)
{
    CUDA_REQUIRE(cx, r > 0 && a->cout % (r * r) == 0, "conv2d_shuffle_lrelu_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w * r * r < ((size_t)1 << 31), "conv2d_shuffle_lrelu_fwd_cuda");
    return conv_fwd(cx, a, in, wt, bias, NULL, NULL, r, out);
}

int catanet_conv2d_res_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                                const float *bias, const float *res, const float *res2, float *out, int im2col)
{
    CUDA_REQUIRE(cx, res && res2 != in && res2 != out, "conv2d_res_fwd_cuda");
    if (!im2col)
        return conv_fwd(cx, a, in, wt, bias, res, res2, 0, out);
    int ret = check_fwd(cx, a, in, out);
    if (ret < 0)
        return ret;
    CUDA_REQUIRE(cx, res != in, "conv2d_res_fwd_cuda");
    return im2col_fwd(cx, a, in, wt, bias, res, res2, out);
}

/* the im2col + cuBLAS path alone, whatever the shape: its twin test and the bench's baseline */
int catanet_conv2d_im2col_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                                   const float *wt, const float *bias, float *out)
{
    int ret = check_fwd(cx, a, in, out);
    return ret < 0 ? ret : im2col_fwd(cx, a, in, wt, bias, NULL, NULL, out);
}

/* ---------------- backward (twin of catanet_conv2d_bwd_ref) ----------------
 * din: the transposed convolution = a forward convolution of dout with the weights flipped and
 * in/out swapped: im2col of dout (columns [ky][kx][cout]) times wf [cin][ky][kx][cout] with
 * wf[c][ky][kx][o] = wt[o][c][k-1-ky][k-1-kx], added (beta = 1) per fixed chunk of pixels.
 * dwt: dwp [cout][ky][kx][cin] = sum over fixed pixel chunks of dout^T im2col(in) (GEMMs in chunk
 * order, beta = 1 after the first), then permuted and added into PyTorch's [cout][cin][k][k].
 * dbias: the fixed-order column reduction. All GEMMs are cublasSgemm: the same bits on every run. */
#include "reduce.cuh"

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

size_t catanet_conv2d_bwd_cuda_work(const CatanetConv2dArgs *a)
{
    size_t kk = (size_t)a->ksize * a->ksize, wide = (size_t)(a->cin > a->cout ? a->cin : a->cout);
    return 2 * round64((size_t)a->cin * a->cout * kk) + (size_t)CATANET_CUDA_CONV_BWD_ROWS * kk * wide;
}

/* wt [cout][cin][kk] -> wf [cin][kk][cout], taps reversed */
__global__ void conv_flip_kernel(int cout, int cin, int kk, const float *wt, float *wf)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        wf[((size_t)c * kk + (kk - 1 - t)) * cout + o] = wt[i];
    }
}

/* dwt [cout][cin][kk] += dwp [cout][kk][cin] */
__global__ void conv_dw_add_kernel(int cout, int cin, int kk, const float *dwp, float *dwt)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        dwt[i] += dwp[((size_t)o * kk + t) * cin + c];
    }
}

int catanet_conv2d_bwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->cin > 0 && a->cout > 0, "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_conv2d_bwd_cuda_work(a), "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, dout && (!din || wt) && (!dwt || in) && (!din || (din != dout && din != in)),
                 "conv2d_bwd_cuda");
    int total = a->batch * a->h * a->w, k = a->ksize, kk = k * k, cin = a->cin, cout = a->cout, ret;
    size_t wsz = round64((size_t)cin * cout * kk);
    float *wf = cx->work, *dwp = cx->work + wsz, *col = cx->work + 2 * wsz;
    unsigned wblocks = grid_for((size_t)cout * cin * kk, CUDA_THREADS);
    if (din) {
        CatanetConv2dArgs t = { a->batch, a->h, a->w, cout, cin, k }; /* im2col of dout: cout columns per tap */
        conv_flip_kernel<<<wblocks, CUDA_THREADS, 0, cx->stream>>>(cout, cin, kk, wt, wf);
        CUDA_LAUNCHED(cx, "conv2d_bwd flip");
        for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_BWD_ROWS) {
            int rows = total - p0 < CATANET_CUDA_CONV_BWD_ROWS ? total - p0 : CATANET_CUDA_CONV_BWD_ROWS;
            im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(t, dout, p0, rows, col);
            CUDA_LAUNCHED(cx, "conv2d_bwd im2col(dout)");
            if ((ret = catanet_cuda_sgemm_rm(cx, 0, 1, rows, cin, kk * cout, 1.0f, col, kk * cout, wf, kk * cout, 1.0f,
                                             din + (size_t)p0 * cin, cin)) < 0)
                return ret;
        }
    }
    if (dwt) {
        int ncol = kk * cin;
        for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_BWD_ROWS) {
            int rows = total - p0 < CATANET_CUDA_CONV_BWD_ROWS ? total - p0 : CATANET_CUDA_CONV_BWD_ROWS;
            im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(*a, in, p0, rows, col);
            CUDA_LAUNCHED(cx, "conv2d_bwd im2col(in)");
            if ((ret = catanet_cuda_sgemm_rm(cx, 1, 0, cout, ncol, rows, 1.0f, dout + (size_t)p0 * cout, cout, col, ncol,
                                             p0 ? 1.0f : 0.0f, dwp, ncol)) < 0)
                return ret;
        }
        conv_dw_add_kernel<<<wblocks, CUDA_THREADS, 0, cx->stream>>>(cout, cin, kk, dwp, dwt);
        CUDA_LAUNCHED(cx, "conv2d_bwd dwt");
    }
    if (dbias) {
        ColTerm t = { dout, cout };
        if ((ret = launch_colsum(cx, total, cout, t, dbias, 1, "conv2d_bwd dbias")) < 0)
            return ret;
    }
    return 0;
}
