/*
 * pixel_shuffle.cu: PixelShuffle(r) on NHWC (twin of kernels/cpu/pixel_shuffle.c), and the
 * upsampler's PixelShuffle + LeakyReLU(0.1) fused.
 * defines: catanet_pixel_shuffle_fwd_cuda, catanet_pixel_shuffle_lrelu_fwd_cuda
 */
#include "cuda_common.cuh"

/* in [B,H,W,C*r*r] -> out [B,H*r,W*r,C]; out[b][h*r+i][w*r+j][c] = in[b][h][w][c*r*r+i*r+j];
 * one thread per output element (writes coalesced) */
template <bool LRELU>
__global__ void shuffle_kernel(CatanetShuffleArgs a, const float *in, float *out)
{
    int r = a.r, c = a.c, ow = a.w * r, oh = a.h * r;
    GRID_STRIDE(idx, (size_t)a.batch * oh * ow * c) {
        int ch = (int)(idx % c);
        size_t opix = idx / c;
        int ox = (int)(opix % ow), oy = (int)(opix / ow % oh);
        size_t b = opix / ((size_t)ow * oh);
        int h = oy / r, i = oy - h * r, w = ox / r, j = ox - w * r;
        float v = in[((b * a.h + h) * a.w + w) * ((size_t)c * r * r) + (size_t)ch * r * r + i * r + j];
        out[idx] = LRELU ? (v >= 0.0f ? v : CATANET_LRELU_SLOPE * v) : v;
    }
}

static int launch(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *in, float *out, bool lrelu)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->c > 0 && a->r > 0, "pixel_shuffle_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "pixel_shuffle_fwd_cuda");
    size_t n = (size_t)a->batch * a->h * a->w * a->c * a->r * a->r;
    if (lrelu)
        shuffle_kernel<true><<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, in, out);
    else
        shuffle_kernel<false><<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, in, out);
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
