/*
 * loss.cu: the L1 training loss's gradient (twin of kernels/cpu/loss.c, backward only: the loss
 * value itself is a host-side double sum in training).
 * defines: catanet_l1_loss_bwd_cuda
 */
#include "cuda_common.cuh"

/* dout += sign(out - target) g, g = scale / n computed on the host exactly as the CPU twin does;
 * sign(0) = 0. Every operation is the CPU's, rounded the same way: the same bits. */
__global__ void l1_bwd_kernel(size_t n, const float *out, const float *target, float g, float *dout)
{
    GRID_STRIDE(i, n) {
        float d = __fsub_rn(out[i], target[i]);
        dout[i] = __fadd_rn(dout[i], d > 0.0f ? g : d < 0.0f ? -g : 0.0f);
    }
}

int catanet_l1_loss_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *out, const float *target, float scale,
                             float *dout)
{
    if (n == 0)
        return 0;
    CUDA_REQUIRE(cx, out && target && dout, "l1_loss_bwd_cuda");
    float g = scale / (float)n;
    l1_bwd_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, out, target, g, dout);
    CUDA_LAUNCHED(cx, "l1_loss_bwd");
    return 0;
}
