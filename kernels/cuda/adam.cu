/*
 * adam.cu: the Adam update, elementwise (twin of kernels/cpu/adam.c: torch.optim.Adam,
 * weight_decay 0, amsgrad off).
 * defines: catanet_adam_update_cuda
 */
#include "cuda_common.cuh"

/* The CPU twin's float expressions in its evaluation order, every operation correctly rounded
 * and none contracted into an FMA (the _rn intrinsics; the CPU build has -ffp-contract=off), with
 * step and 1/sqrt(bc2) computed on the host by the same double expressions: the same bits. */
__global__ void adam_kernel(size_t n, float *p, const float *g, float *m, float *v, float b1, float b2, float eps,
                            float step, float inv_sqrt_bc2)
{
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), gi));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), gi), gi));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fmul_rn(__fsqrt_rn(vi), inv_sqrt_bc2), eps);
        p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(step, mi), den));
    }
}

/* step t >= 1 (after incrementing) */
int catanet_adam_update_cuda(CatanetCudaCtx *cx, size_t n, float *p, const float *g, float *m, float *v,
                             float lr, float b1, float b2, float eps, int64_t t)
{
    CUDA_REQUIRE(cx, t >= 1, "adam_update_cuda");
    if (n == 0)
        return 0;
    CUDA_REQUIRE(cx, p && g && m && v, "adam_update_cuda");
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    adam_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(n, p, g, m, v, b1, b2, eps, step,
                                                                            inv_sqrt_bc2);
    CUDA_LAUNCHED(cx, "adam_update");
    return 0;
}
