/*
 * fakd.cu: the FAKD spatial-affinity loss's gradient w.r.t. the student features, one image (twin
 * of kernels/cpu/fakd.c's catanet_fakd_bwd_ref):
 *   U = rows normalised, G = sign(U_s U_s^T - U_t U_t^T) 2 weight / N^2, dU_s = G U_s,
 *   dfs += normalize backward of dU_s.
 * G is built CATANET_CUDA_FAKD_ROWS rows at a time (two cuBLAS GEMMs, a sign kernel, one GEMM
 * into dU), so only 2 x ROWS x N floats of it exist. All GEMMs are cublasSgemm (pure fp32): the
 * same bits on every run. The sign of an affinity difference within fp32 rounding of zero can
 * differ from the CPU's (double) one; the diagonal (A_ii = 1 on both sides) is such a tie, but its
 * term lies along U_s[i] and the normalize backward projects it out.
 * defines: catanet_fakd_bwd_cuda_work, catanet_fakd_bwd_cuda
 */
#include "cuda_common.cuh"
#include "gemm.cuh"
#include "reduce.cuh"

#define FK_WARPS 8

static size_t r64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* us, ut, ns, du, then the two row-chunk tiles of the affinities */
size_t catanet_fakd_bwd_cuda_work(int n, int cs, int ct)
{
    size_t N = (size_t)n, rows = N < CATANET_CUDA_FAKD_ROWS ? N : CATANET_CUDA_FAKD_ROWS;
    return r64(N * cs) + r64(N * ct) + r64(N) + r64(N * cs) + 2 * r64(rows * N);
}

/* F.normalize per row, the CPU twin's catanet_normalize_fwd_ref (double norm, float inverse) */
__global__ void fakd_unit_rows_kernel(int n, int c, const float *x, float *y, float *norm)
{
    int lane = threadIdx.x & 31;
    size_t row = (size_t)blockIdx.x * FK_WARPS + (threadIdx.x >> 5);
    if (row >= (size_t)n)
        return;
    const float *xr = x + row * c;
    double s = 0.0;
    for (int i = lane; i < c; i += 32)
        s += (double)xr[i] * xr[i];
    double nr = sqrt(warp_sum_d(s));
    float inv = (float)(1.0 / (nr > CATANET_NORM_EPS ? nr : CATANET_NORM_EPS));
    for (int i = lane; i < c; i += 32)
        y[row * c + i] = __fmul_rn(xr[i], inv);
    if (norm && lane == 0)
        norm[row] = (float)nr;
}

/* as = g sign(as - at), g = 2 weight / N^2 (rounded to float as the CPU twin) */
__global__ void fakd_sign_kernel(size_t count, float *as, const float *at, float g)
{
    GRID_STRIDE(i, count) {
        float d = as[i] - at[i];
        as[i] = d > 0.0f ? g : d < 0.0f ? -g : 0.0f;
    }
}

int catanet_fakd_bwd_cuda(CatanetCudaCtx *cx, int n, int cs, int ct, const float *fs, const float *ft,
                          float weight, float *dfs)
{
    CUDA_REQUIRE(cx, n > 0 && cs > 0 && ct > 0 && fs && ft && dfs, "fakd_bwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_fakd_bwd_cuda_work(n, cs, ct), "fakd_bwd_cuda");
    size_t N = (size_t)n;
    float *us = cx->work, *ut = us + r64(N * cs), *ns = ut + r64(N * ct), *du = ns + r64(N);
    size_t R = N < CATANET_CUDA_FAKD_ROWS ? N : CATANET_CUDA_FAKD_ROWS;
    float *as = du + r64(N * cs), *at = as + r64(R * N);
    unsigned rb = (unsigned)((N + FK_WARPS - 1) / FK_WARPS);
    fakd_unit_rows_kernel<<<rb, 32 * FK_WARPS, 0, cx->stream>>>(n, cs, fs, us, ns);
    CUDA_LAUNCHED(cx, "fakd_bwd unit rows (student)");
    fakd_unit_rows_kernel<<<rb, 32 * FK_WARPS, 0, cx->stream>>>(n, ct, ft, ut, NULL);
    CUDA_LAUNCHED(cx, "fakd_bwd unit rows (teacher)");
    float g = (float)(2.0 * weight / ((double)n * n));
    int ret;
    for (int i0 = 0; i0 < n; i0 += (int)R) {
        int rows = n - i0 < (int)R ? n - i0 : (int)R;
        if ((ret = catanet_cuda_sgemm_rm(cx, 0, 1, rows, n, cs, 1.0f, us + (size_t)i0 * cs, cs, us, cs, 0.0f, as, n)) < 0 ||
            (ret = catanet_cuda_sgemm_rm(cx, 0, 1, rows, n, ct, 1.0f, ut + (size_t)i0 * ct, ct, ut, ct, 0.0f, at, n)) < 0)
            return ret;
        size_t cnt = (size_t)rows * N;
        fakd_sign_kernel<<<grid_for(cnt, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(cnt, as, at, g);
        CUDA_LAUNCHED(cx, "fakd_bwd sign");
        if ((ret = catanet_cuda_sgemm_rm(cx, 0, 0, rows, cs, n, 1.0f, as, n, us, cs, 0.0f, du + (size_t)i0 * cs, cs)) < 0)
            return ret;
    }
    return catanet_normalize_bwd_cuda(cx, n, cs, us, ns, du, dfs);
}
