/*
 * gumbel.cu: the backward of the learnable depth masks (twin of kernels/cpu/gumbel.c): the
 * straight-through Gumbel-softmax, the mask composition, the gated residual and its branch form.
 * (Sampling and the forwards stay on the host: k and l are a handful of values.)
 * defines: catanet_gumbel_softmax_bwd_cuda, catanet_mask_compose_bwd_cuda, catanet_gated_residual_bwd_cuda,
 *          catanet_gate_branch_bwd_cuda
 */
#include "cuda_common.cuh"
#include "reduce.cuh"

/* one warp: d = <y_soft, dy> in double (butterfly), dlogits += (scale/tau) y (dy - d) */
__global__ void gumbel_bwd_kernel(int k, const float *y, const float *dy, float scale, float tau, float *dl)
{
    int lane = threadIdx.x;
    double d = 0.0;
    for (int i = lane; i < k; i += 32)
        d += (double)y[i] * dy[i];
    d = warp_sum_d(d);
    for (int i = lane; i < k; i += 32)
        dl[i] += (float)((double)scale / tau * y[i] * (dy[i] - d));
}

int catanet_gumbel_softmax_bwd_cuda(CatanetCudaCtx *cx, int k, const float *y_soft, const float *dy, float scale,
                                    float tau, float *dlogits)
{
    CUDA_REQUIRE(cx, k > 0 && tau != 0.0f && y_soft && dy && dlogits, "gumbel_softmax_bwd_cuda");
    gumbel_bwd_kernel<<<1, 32, 0, cx->stream>>>(k, y_soft, dy, scale, tau, dlogits);
    CUDA_LAUNCHED(cx, "gumbel_softmax_bwd");
    return 0;
}

/* dy[i] += sum_j opt[i][j] dm[j], one thread per i, j in order in double, no FMA contraction:
 * the CPU twin's sum, the same bits */
__global__ void mask_compose_bwd_kernel(int k, int l, const float *opt, const float *dm, float *dy)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x) {
        double s = 0.0;
        for (int j = 0; j < l; j++)
            s = __dadd_rn(s, __dmul_rn((double)opt[(size_t)i * l + j], (double)dm[j]));
        dy[i] = __fadd_rn(dy[i], (float)s);
    }
}

int catanet_mask_compose_bwd_cuda(CatanetCudaCtx *cx, int k, int l, const float *opt, const float *dm, float *dy)
{
    CUDA_REQUIRE(cx, k > 0 && l >= 0 && opt && dm && dy, "mask_compose_bwd_cuda");
    mask_compose_bwd_kernel<<<grid_for((size_t)k, 128), 128, 0, cx->stream>>>(k, l, opt, dm, dy);
    CUDA_LAUNCHED(cx, "mask_compose_bwd");
    return 0;
}

/* elementwise parts: the CPU's float expressions, each rounded, no FMA: the same bits */
__global__ void gated_residual_bwd_kernel(int batch, size_t n, const float *m, const float *dy, float *dx, float *dgx)
{
    GRID_STRIDE(i, (size_t)batch * n) {
        float mb = m[i / n], g = dy[i];
        if (dx)
            dx[i] = __fadd_rn(dx[i], __fmul_rn(__fsub_rn(1.0f, mb), g));
        if (dgx)
            dgx[i] = __fadd_rn(dgx[i], __fmul_rn(mb, g));
    }
}

/* dm[b] term: dy (gx - x), the difference in float as the CPU twin */
struct GateDiffTerm {
    size_t n;
    const float *dy, *x, *gx;
    __device__ double operator()(int b, size_t i) const
    {
        size_t j = (size_t)b * n + i;
        return (double)dy[j] * __fsub_rn(gx[j], x[j]);
    }
};

/* dx += (1 - m) dy; dgx += m dy; dm[b] += sum dy (gx - x) (fixed-order double reduction) */
int catanet_gated_residual_bwd_cuda(CatanetCudaCtx *cx, int batch, size_t n, const float *m, const float *x,
                                    const float *gx, const float *dy, float *dx, float *dgx, float *dm)
{
    CUDA_REQUIRE(cx, batch > 0 && m && dy && (!dm || (x && gx)), "gated_residual_bwd_cuda");
    if (n == 0)
        return 0;
    if (dx || dgx) {
        size_t total = (size_t)batch * n;
        gated_residual_bwd_kernel<<<grid_for(total, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(batch, n, m, dy,
                                                                                                  dx, dgx);
        CUDA_LAUNCHED(cx, "gated_residual_bwd");
    }
    if (dm) {
        GateDiffTerm t = { n, dy, x, gx };
        rowsum_kernel<GateDiffTerm><<<(unsigned)batch, RED_T, 0, cx->stream>>>(n, t, dm);
        CUDA_LAUNCHED(cx, "gated_residual_bwd dm");
    }
    return 0;
}

__global__ void gate_branch_bwd_kernel(int batch, size_t n, const float *m, const float *dy, float *dr)
{
    GRID_STRIDE(i, (size_t)batch * n)
        dr[i] = __fmul_rn(m[i / n], dy[i]);
}

struct GateBranchTerm {
    size_t n;
    const float *dy, *r;
    __device__ double operator()(int b, size_t i) const
    {
        size_t j = (size_t)b * n + i;
        return (double)dy[j] * r[j];
    }
};

/* dr = m dy (overwritten, as the CPU twin); dm[b] += sum dy r */
int catanet_gate_branch_bwd_cuda(CatanetCudaCtx *cx, int batch, size_t n, const float *m, const float *r,
                                 const float *dy, float *dr, float *dm)
{
    CUDA_REQUIRE(cx, batch > 0 && m && dy && (!dm || r), "gate_branch_bwd_cuda");
    if (n == 0)
        return 0;
    if (dr) {
        size_t total = (size_t)batch * n;
        gate_branch_bwd_kernel<<<grid_for(total, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(batch, n, m, dy, dr);
        CUDA_LAUNCHED(cx, "gate_branch_bwd");
    }
    if (dm) {
        GateBranchTerm t = { n, dy, r };
        rowsum_kernel<GateBranchTerm><<<(unsigned)batch, RED_T, 0, cx->stream>>>(n, t, dm);
        CUDA_LAUNCHED(cx, "gate_branch_bwd dm");
    }
    return 0;
}
