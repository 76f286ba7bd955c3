/*
 * conv2d.cu: dense KxK convolution, stride 1, zero padding K/2, NHWC (twin of kernels/cpu/conv2d.c):
 * im2col of a fixed chunk of output pixels into cx->work, then one cuBLAS GEMM per chunk.
 * defines: catanet_conv2d_cuda_work, catanet_conv2d_fwd_cuda
 */
#include "cuda_common.cuh"
#include "gemm.cuh"

size_t catanet_conv2d_cuda_work(const CatanetConv2dArgs *a)
{
    return (size_t)CATANET_CUDA_CONV_ROWS * a->cin * a->ksize * a->ksize;
}

/* col [rows][cin*k*k] for output pixels p0..p0+rows-1, columns ordered [cin][ky][kx] like the
 * weight rows; taps outside the image are 0 */
__global__ void im2col_kernel(CatanetConv2dArgs a, const float *in, size_t p0, int rows, float *col)
{
    int k = a.ksize, p = k / 2, kk = k * k, ncol = a.cin * kk;
    GRID_STRIDE(idx, (size_t)rows * ncol) {
        size_t r = idx / ncol;
        int j = (int)(idx - r * ncol);
        int c = j / kk, t = j - c * kk, ky = t / k, kx = t - ky * k;
        size_t pix = p0 + r;
        int x = (int)(pix % a.w), y = (int)(pix / a.w % a.h);
        size_t img = pix / ((size_t)a.w * a.h);
        int yy = y + ky - p, xx = x + kx - p;
        float v = 0.0f;
        if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w)
            v = in[((img * a.h + yy) * a.w + xx) * a.cin + c];
        col[idx] = v;
    }
}

__global__ void conv_bias_kernel(size_t rows, int cout, const float *b, float *y)
{
    GRID_STRIDE(i, rows * cout)
        y[i] = b[i % cout];
}

/* in [B,H,W,cin], wt [cout,cin,k,k], bias [cout] or NULL -> out [B,H,W,cout] */
int catanet_conv2d_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->cin > 0 && a->cout > 0, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_conv2d_cuda_work(a), "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "conv2d_fwd_cuda"); /* later chunks read rows earlier ones would overwrite */
    size_t total = (size_t)a->batch * a->h * a->w;
    int ncol = a->cin * a->ksize * a->ksize;
    if (bias) {
        conv_bias_kernel<<<grid_for(total * a->cout, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(
            total, a->cout, bias, out);
        CUDA_LAUNCHED(cx, "conv2d bias");
    }
    for (size_t p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_ROWS) {
        int rows = (int)(total - p0 < CATANET_CUDA_CONV_ROWS ? total - p0 : CATANET_CUDA_CONV_ROWS);
        im2col_kernel<<<grid_for((size_t)rows * ncol, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(
            *a, in, p0, rows, cx->work);
        CUDA_LAUNCHED(cx, "conv2d im2col");
        int ret = catanet_cuda_gemm_rm(cx, rows, a->cout, ncol, cx->work, ncol, wt, ncol,
                                       bias ? 1.0f : 0.0f, out + p0 * a->cout, a->cout);
        if (ret < 0)
            return ret;
    }
    return 0;
}
