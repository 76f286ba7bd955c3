/*
 * pixel_shuffle.cu: PixelShuffle(r) on NHWC (twin of kernels/cpu/pixel_shuffle.c), and the
 * upsampler's PixelShuffle + LeakyReLU(0.1) fused.
 * defines: catanet_pixel_shuffle_fwd_cuda, catanet_pixel_shuffle_lrelu_fwd_cuda, catanet_pixel_shuffle_bwd_cuda
 */
#include "cuda_common.cuh"

/* in [B,H,W,C*r*r] -> out [B,H*r,W*r,C]; out[b][h*r+i][w*r+j][c] = in[b][h][w][c*r*r+i*r+j];
 * one warp per output pixel (8 per block), lanes over channels (writes coalesced) */
template <bool LRELU>
__global__ void shuffle_kernel(CatanetShuffleArgs a, const float *in, float *out)
{
    int r = a.r, c = a.c, ow = a.w * r, oh = a.h * r;
    int opix = blockIdx.x * blockDim.y + threadIdx.y;
    if (opix >= a.batch * oh * ow)
        return;
    int ox = opix % ow, t = opix / ow, oy = t % oh, b = t / oh;
    int h = oy / r, i = oy - h * r, w = ox / r, j = ox - w * r;
    const float *src = in + (((size_t)b * a.h + h) * a.w + w) * ((size_t)c * r * r) + i * r + j;
    for (int ch = threadIdx.x; ch < c; ch += blockDim.x) {
        float v = src[(size_t)ch * r * r];
        out[(size_t)opix * c + ch] = LRELU ? (v >= 0.0f ? v : CATANET_LRELU_SLOPE * v) : v;
    }
}

static int launch(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *in, float *out, bool lrelu)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0 && a->r > 0, "pixel_shuffle_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "pixel_shuffle_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w * a->r * a->r < ((size_t)1 << 31), "pixel_shuffle_fwd_cuda");
    unsigned blocks = (unsigned)((a->batch * a->h * a->w * a->r * a->r + 7) / 8);
    if (lrelu)
        shuffle_kernel<true><<<blocks, dim3(32, 8), 0, cx->stream>>>(*a, in, out);
    else
        shuffle_kernel<false><<<blocks, dim3(32, 8), 0, cx->stream>>>(*a, in, out);
    CUDA_LAUNCHED(cx, "pixel_shuffle");
    return 0;
}

int catanet_pixel_shuffle_fwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *in,
                                   float *out)
{
    return launch(cx, a, in, out, false);
}

int catanet_pixel_shuffle_lrelu_fwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a,
                                         const float *in, float *out)
{
    return launch(cx, a, in, out, true);
}

/* ---------------- backward (twin of catanet_pixel_shuffle_bwd_ref) ----------------
 * din[b][h][w][ch*r*r + i*r + j] += dout[b][h*r+i][w*r+j][ch]: one thread per din element, a
 * gather (every din element has exactly one source), so no write conflicts and exact sums. */
__global__ void shuffle_bwd_kernel(CatanetShuffleArgs a, const float *dout, float *din)
{
    int r = a.r, c = a.c, rr = r * r, ow = a.w * r;
    size_t n = (size_t)a.batch * a.h * a.w * c * rr;
    GRID_STRIDE(idx, n) {
        size_t pix = idx / ((size_t)c * rr);
        int k = (int)(idx - pix * c * rr), ch = k / rr, ij = k - ch * rr, i = ij / r, j = ij - i * r;
        int w = (int)(pix % a.w);
        size_t t = pix / a.w;
        int h = (int)(t % a.h), b = (int)(t / a.h);
        size_t src = (((size_t)b * a.h * r + (size_t)h * r + i) * ow + (size_t)w * r + j) * c + ch;
        din[idx] = __fadd_rn(din[idx], dout[src]);
    }
}

int catanet_pixel_shuffle_bwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *dout,
                                   float *din)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0 && a->r > 0, "pixel_shuffle_bwd_cuda");
    CUDA_REQUIRE(cx, dout && din && dout != din, "pixel_shuffle_bwd_cuda");
    size_t n = (size_t)a->batch * a->h * a->w * a->c * a->r * a->r;
    shuffle_bwd_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, dout, din);
    CUDA_LAUNCHED(cx, "pixel_shuffle_bwd");
    return 0;
}
