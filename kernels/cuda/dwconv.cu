/*
 * dwconv.cu: depthwise KxK convolution, zero padding K/2, NHWC (twin of kernels/cpu/dwconv.c),
 * plus the ConvFFN middle fused around it: out = in + gelu(dwconv(in)).
 * defines: catanet_dwconv_fwd_cuda, catanet_dwconv_gelu_add_fwd_cuda, catanet_dwconv_gelu_add_fp16_fwd_cuda,
 *          catanet_dwconv_gelu_add_pixelwarp_fwd_cuda, catanet_dwconv_bwd_cuda
 */
#include <stdint.h>

#include "cuda_common.cuh"

/* ---- the per-warp kernel: any k, any c (the fallback of the tiled kernel below) ----
 * One warp per pixel (8 warps per block, each walking many pixels so that the block's copy of the
 * weights, transposed to [k*k][C] in shared memory, is reused), lanes over channels: consecutive
 * lanes read consecutive channels and weights. Tap order (ky, kx) as in the CPU twin. */
template <bool GELU_ADD, int KT>
__global__ void dwconv_kernel(CatanetDwconvArgs a, const float *in, const float *wt, const float *bias,
                              float *out)
{
    extern __shared__ float sw[]; /* [k*k][c] */
    const int k = KT ? KT : a.ksize;
    int kk = k * k, p = k / 2, c = a.c, hw = a.h * a.w, npix = a.batch * hw;
    for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < kk * c; i += blockDim.x * blockDim.y) {
        int ch = i / kk, t = i - ch * kk;
        sw[t * c + ch] = wt[i];
    }
    __syncthreads();
    for (int pix = blockIdx.x * blockDim.y + threadIdx.y; pix < npix; pix += gridDim.x * blockDim.y) {
        int img = pix / hw, rem = pix - img * hw, y = rem / a.w, x = rem - y * a.w;
        const float *base = in + (size_t)img * hw * c;
        for (int ch = threadIdx.x; ch < c; ch += blockDim.x) {
            float acc = bias ? bias[ch] : 0.0f;
            /* each row of taps unrolled with predicated loads (a tap outside the image adds 0 * w,
             * which leaves acc unchanged, as the CPU twin's skipped tap does): a row's loads can be
             * in flight at once */
#pragma unroll 1
            for (int ky = 0; ky < (KT ? KT : 0); ky++) {
                int yy = y + ky - p;
                bool oky = (unsigned)yy < (unsigned)a.h;
#pragma unroll
                for (int kx = 0; kx < (KT ? KT : 0); kx++) {
                    int xx = x + kx - p;
                    bool ok = oky && (unsigned)xx < (unsigned)a.w;
                    float v = ok ? base[((size_t)yy * a.w + xx) * c + ch] : 0.0f;
                    acc += v * sw[(ky * k + kx) * c + ch];
                }
            }
            if (!KT)
                for (int ky = 0; ky < k; ky++) {
                    int yy = y + ky - p;
                    if (yy < 0 || yy >= a.h)
                        continue;
                    for (int kx = 0; kx < k; kx++) {
                        int xx = x + kx - p;
                        if (xx < 0 || xx >= a.w)
                            continue;
                        acc += base[((size_t)yy * a.w + xx) * c + ch] * sw[(ky * k + kx) * c + ch];
                    }
                }
            size_t o = (size_t)pix * c + ch;
            out[o] = GELU_ADD ? in[o] + gelu_exact(acc) : acc;
        }
    }
}


/* ---- the tiled kernel: k = 3 or 5, c % 4 == 0, 16-byte aligned input (every CATANet shape) ----
 * Why the per-warp kernel above is slow (1.166 ms for 5x5 at 960x540x96 on an H200 against a DRAM
 * floor of ~0.13 ms; reasoned from the code, not profiled): every output element issues k*k scalar
 * global loads and k*k shared weight loads (25 + 25 for 5x5: 2.5 G loads per frame-call) and keeps
 * nothing in registers for its neighbours, so each input is fetched 25 times through L1/L2 and the
 * kernel is bound by load-instruction issue and load latency (`#pragma unroll 1` over ky leaves at
 * most k loads in flight per thread, with 64-bit address arithmetic per tap), not by DRAM bytes.
 * Here a block owns a DW_TW x DW_TH tile of output pixels and a DW_CS-channel slice. It stages the
 * tile plus its k/2 halo once in shared memory with float4 loads (8 threads read one pixel's
 * 128-byte run of the slice; zeros outside the image: the CPU twin's skipped taps), then each thread
 * (lane = channel, so shared reads are conflict-free) keeps its k*k weights in registers and computes
 * DW_RX consecutive outputs of one row, loading each window row once for all of them: k (DW_RX +
 * k - 1) / DW_RX shared loads per output (7.5 for 5x5) instead of 25 + 25. DRAM reads each input
 * about once (the halo, 320/192 = 1.67x the tile for 5x5, mostly hits L2 where the neighbouring
 * block read it) and writes each output once; the residual add reads the centre from the tile.
 * Per output the taps are summed in the CPU twin's (ky, kx) order from the bias (a tap outside the
 * image adds 0 * w, which leaves the sum unchanged, as the CPU's skipped tap does). */
#define DW_TW 16  /* tile width (output pixels) */
#define DW_TH 12  /* tile height */
#define DW_CS 32  /* channels per block: one per lane */
#define DW_RX 8   /* consecutive outputs of a row per thread */
#define DW_THREADS 256

static size_t dw_tile_smem(int k)
{
    return sizeof(float) * (DW_TH + k - 1) * (DW_TW + k - 1) * DW_CS; /* 40 KB for 5x5, 31.5 KB for 3x3 */
}

/* T: how in and out are stored (float, or __half in the fp16 mode's ConvFFN); fp32 arithmetic */
template <bool GELU_ADD, int K, typename T>
__global__ void __launch_bounds__(DW_THREADS)
    dwconv_tile_kernel(CatanetDwconvArgs a, const T *in, const float *wt, const float *bias, T *out)
{
    extern __shared__ float4 dw_tile[]; /* [SH][SW][DW_CS / 4] */
    constexpr int P = K / 2, SW = DW_TW + K - 1, SH = DW_TH + K - 1, CG = DW_CS / 4;
    const int slices = (a.c + DW_CS - 1) / DW_CS, img = blockIdx.z / slices;
    const int c0 = (blockIdx.z - img * slices) * DW_CS, x0 = blockIdx.x * DW_TW, y0 = blockIdx.y * DW_TH;
    const T *src = in + (size_t)img * a.h * a.w * a.c;
    for (int i = threadIdx.x; i < SH * SW * CG; i += DW_THREADS) {
        int pix = i / CG, g = i - pix * CG, sy = pix / SW, sx = pix - sy * SW;
        int gy = y0 + sy - P, gx = x0 + sx - P, ch = c0 + 4 * g;
        float4 v = { 0.0f, 0.0f, 0.0f, 0.0f };
        if ((unsigned)gy < (unsigned)a.h && (unsigned)gx < (unsigned)a.w && ch < a.c)
            v = ld_act4(src + ((size_t)gy * a.w + gx) * a.c + ch);
        dw_tile[i] = v;
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, ch = c0 + lane;
    if (ch >= a.c)
        return; /* the last slice of a c that is not a multiple of 32 (no barrier follows) */
    float w[K * K];
#pragma unroll
    for (int t = 0; t < K * K; t++)
        w[t] = wt[(size_t)ch * K * K + t];
    const float b = bias ? bias[ch] : 0.0f;
    const float *s = (const float *)dw_tile + lane;
    constexpr int SEG_X = DW_TW / DW_RX;
    for (int seg = warp; seg < DW_TH * SEG_X; seg += DW_THREADS / 32) {
        int ty = seg / SEG_X, tx = (seg - ty * SEG_X) * DW_RX, y = y0 + ty;
        if (y >= a.h)
            break; /* later segments are lower rows */
        float acc[DW_RX];
#pragma unroll
        for (int i = 0; i < DW_RX; i++)
            acc[i] = b;
#pragma unroll
        for (int ky = 0; ky < K; ky++) {
            const float *row = s + ((ty + ky) * SW + tx) * DW_CS;
            float v[DW_RX + K - 1];
#pragma unroll
            for (int j = 0; j < DW_RX + K - 1; j++)
                v[j] = row[j * DW_CS];
#pragma unroll
            for (int kx = 0; kx < K; kx++)
#pragma unroll
                for (int i = 0; i < DW_RX; i++)
                    acc[i] += v[i + kx] * w[ky * K + kx];
        }
        T *dst = out + (((size_t)img * a.h + y) * a.w + x0 + tx) * a.c + ch;
#pragma unroll
        for (int i = 0; i < DW_RX; i++)
            if (x0 + tx + i < a.w)
                st_act(dst + (size_t)i * a.c,
                       GELU_ADD ? s[((ty + P) * SW + tx + i + P) * DW_CS] + gelu_exact(acc[i]) : acc[i]);
    }
}

static bool tile_fits(const CatanetDwconvArgs *a, const void *in, int elem_bytes)
{
    long long slices = (a->c + DW_CS - 1) / DW_CS;
    return (a->ksize == 3 || a->ksize == 5) && a->c % 4 == 0 && ((uintptr_t)in & (4 * elem_bytes - 1)) == 0 &&
           (a->h + DW_TH - 1) / DW_TH <= 65535 && a->batch * slices <= 65535;
}

static int check_args(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const void *in, const void *out)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "dwconv_fwd_cuda");
    return 0;
}

static int launch_pixelwarp(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *bias, float *out, bool gelu_add)
{
    size_t smem = sizeof(float) * a->ksize * a->ksize * a->c;
    CUDA_REQUIRE(cx, smem <= 48 * 1024, "dwconv_fwd_cuda");
    int pix8 = (a->batch * a->h * a->w + 7) / 8;
    unsigned blocks = (unsigned)(pix8 < 8192 ? pix8 : 8192); /* each block walks a few pixels */
    dim3 th(32, 8);
    if (gelu_add && a->ksize == 5)
        dwconv_kernel<true, 5><<<blocks, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (gelu_add)
        dwconv_kernel<true, 0><<<blocks, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->ksize == 5)
        dwconv_kernel<false, 5><<<blocks, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    else
        dwconv_kernel<false, 0><<<blocks, th, smem, cx->stream>>>(*a, in, wt, bias, out);
    CUDA_LAUNCHED(cx, "dwconv");
    return 0;
}

template <typename T>
static int launch_tiled(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const T *in, const float *wt,
                        const float *bias, T *out, bool gelu_add)
{
    int slices = (a->c + DW_CS - 1) / DW_CS;
    dim3 grid((a->w + DW_TW - 1) / DW_TW, (a->h + DW_TH - 1) / DW_TH, a->batch * slices);
    size_t smem = dw_tile_smem(a->ksize);
    if (gelu_add && a->ksize == 5)
        dwconv_tile_kernel<true, 5, T><<<grid, DW_THREADS, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (gelu_add)
        dwconv_tile_kernel<true, 3, T><<<grid, DW_THREADS, smem, cx->stream>>>(*a, in, wt, bias, out);
    else if (a->ksize == 5)
        dwconv_tile_kernel<false, 5, T><<<grid, DW_THREADS, smem, cx->stream>>>(*a, in, wt, bias, out);
    else
        dwconv_tile_kernel<false, 3, T><<<grid, DW_THREADS, smem, cx->stream>>>(*a, in, wt, bias, out);
    CUDA_LAUNCHED(cx, "dwconv tiled");
    return 0;
}

static int launch(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in, const float *wt,
                  const float *bias, float *out, bool gelu_add)
{
    int ret = check_args(cx, a, in, out);
    if (ret < 0)
        return ret;
    if (!tile_fits(a, in, sizeof(float)))
        return launch_pixelwarp(cx, a, in, wt, bias, out, gelu_add);
    return launch_tiled(cx, a, in, wt, bias, out, gelu_add);
}

/* in [B,H,W,C], wt [C,1,k,k], bias [C] -> out [B,H,W,C] */
int catanet_dwconv_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    return launch(cx, a, in, wt, bias, out, false);
}

int catanet_dwconv_gelu_add_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                                     const float *wt, const float *bias, float *out)
{
    return launch(cx, a, in, wt, bias, out, true);
}

int catanet_dwconv_gelu_add_fp16_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const void *in,
                                          const float *wt, const float *bias, void *out)
{
    int ret = check_args(cx, a, in, out);
    if (ret < 0)
        return ret;
    CUDA_REQUIRE(cx, tile_fits(a, in, sizeof(__half)), "dwconv_gelu_add_fp16_fwd_cuda");
    return launch_tiled(cx, a, (const __half *)in, wt, bias, (__half *)out, true);
}

int catanet_dwconv_gelu_add_pixelwarp_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                                               const float *wt, const float *bias, float *out)
{
    int ret = check_args(cx, a, in, out);
    return ret < 0 ? ret : launch_pixelwarp(cx, a, in, wt, bias, out, true);
}

/* ---------------- backward (twin of catanet_dwconv_bwd_ref) ----------------
 * din: a gather, one thread per input element: the output pixels that read (y, x) through tap
 * (ky, kx) sit at (y - ky + p, x - kx + p); taps summed in fixed order, then added once (+=).
 * dwt, dbias: per tap, the fixed-order column reduction of reduce.cuh over all pixels. No atomics:
 * the same bits on every run. */
#include "reduce.cuh"

__global__ void dwconv_bwd_din_kernel(CatanetDwconvArgs a, const float *wt, const float *dout, float *din)
{
    int k = a.ksize, p = k / 2, c = a.c, H = a.h, W = a.w;
    size_t n = (size_t)a.batch * H * W * c;
    GRID_STRIDE(i, n) {
        int ch = (int)(i % c);
        size_t pix = i / c;
        int x = (int)(pix % W), y = (int)(pix / W % H);
        size_t img = pix / ((size_t)W * H);
        float acc = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int yy = y - ky + p;
            if (yy < 0 || yy >= H)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x - kx + p;
                if (xx < 0 || xx >= W)
                    continue;
                acc += dout[((img * H + yy) * W + xx) * c + ch] * wt[((size_t)ch * k + ky) * k + kx];
            }
        }
        din[i] += acc;
    }
}

/* dwt[ch][ky][kx] term of pixel pix: dout[pix][ch] in[pix shifted by the tap][ch] (0 outside) */
struct DwTapTerm {
    CatanetDwconvArgs a;
    int ky, kx;
    const float *in, *dout;
    __device__ float operator()(int pix, int ch) const
    {
        int p = a.ksize / 2, x = pix % a.w, y = pix / a.w % a.h, img = pix / (a.w * a.h);
        int yy = y + ky - p, xx = x + kx - p;
        if (yy < 0 || yy >= a.h || xx < 0 || xx >= a.w)
            return 0.0f;
        return dout[(size_t)pix * a.c + ch] * in[(((size_t)img * a.h + yy) * a.w + xx) * a.c + ch];
    }
};

int catanet_dwconv_bwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0, "dwconv_bwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "dwconv_bwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "dwconv_bwd_cuda");
    CUDA_REQUIRE(cx, dout && (!din || wt) && (!dwt || in) && (!din || din != dout), "dwconv_bwd_cuda");
    int k = a->ksize, npix = a->batch * a->h * a->w, ret;
    if (din) {
        size_t n = (size_t)npix * a->c;
        dwconv_bwd_din_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, wt, dout, din);
        CUDA_LAUNCHED(cx, "dwconv_bwd din");
    }
    if (dwt)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                DwTapTerm t = { *a, ky, kx, in, dout };
                if ((ret = launch_colsum(cx, npix, a->c, t, dwt + ky * k + kx, k * k, "dwconv_bwd dwt")) < 0)
                    return ret;
            }
    if (dbias) {
        ColTerm t = { dout, a->c };
        if ((ret = launch_colsum(cx, npix, a->c, t, dbias, 1, "dwconv_bwd dbias")) < 0)
            return ret;
    }
    return 0;
}
