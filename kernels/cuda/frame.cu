/*
 * frame.cu: the input staging of the forward (twin of engine/forward_cpu.c's prologue): the planar
 * frame mirrored up to the network's minimum size and transposed to NHWC tokens.
 * defines: catanet_frame_in_fwd_cuda
 */
#include "cuda_common.cuh"

/* in [3][in_h][in_w] -> xin [h][w][3] (and src_pad [3][h][w]); one thread per (pixel, channel) */
__global__ void frame_in_kernel(int in_h, int in_w, int h, int w, const float *in, float *xin, float *src_pad)
{
    GRID_STRIDE(idx, (size_t)h * w * 3) {
        int c = (int)(idx % 3);
        size_t pix = idx / 3;
        int x = (int)(pix % w), y = (int)(pix / w);
        float v = in[((size_t)c * in_h + mirror_index(y, in_h)) * in_w + mirror_index(x, in_w)];
        xin[idx] = v;
        if (src_pad)
            src_pad[(size_t)c * h * w + pix] = v;
    }
}

int catanet_frame_in_fwd_cuda(CatanetCudaCtx *cx, int in_h, int in_w, int h, int w, const float *in,
                              float *xin, float *src_pad)
{
    CUDA_REQUIRE(cx, in_h > 0 && in_w > 0 && h >= in_h && w >= in_w, "frame_in_fwd_cuda");
    size_t n = (size_t)h * w * 3;
    frame_in_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(in_h, in_w, h, w, in, xin,
                                                                              src_pad);
    CUDA_LAUNCHED(cx, "frame_in");
    return 0;
}
