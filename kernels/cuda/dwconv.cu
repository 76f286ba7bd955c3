/*
 * dwconv.cu: depthwise KxK convolution, zero padding K/2, NHWC (twin of kernels/cpu/dwconv.c),
 * plus the ConvFFN middle fused around it: out = in + gelu(dwconv(in)).
 * defines: catanet_dwconv_fwd_cuda, catanet_dwconv_gelu_add_fwd_cuda, catanet_dwconv_bwd_cuda
 */
#include "cuda_common.cuh"

/* One warp per pixel (8 warps per block, each walking many pixels so that the block's copy of the
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

static int launch(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in, const float *wt,
                  const float *bias, float *out, bool gelu_add)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "dwconv_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "dwconv_fwd_cuda");
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
