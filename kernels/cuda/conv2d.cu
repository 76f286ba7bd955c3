/*
 * conv2d.cu: dense KxK convolution, stride 1, zero padding K/2, NHWC (twin of kernels/cpu/conv2d.c):
 * im2col of a fixed chunk of output pixels into cx->work, then one cuBLAS GEMM per chunk.
 * defines: catanet_conv2d_cuda_work, catanet_conv2d_fwd_cuda, catanet_conv2d_bwd_cuda_work,
 *          catanet_conv2d_bwd_cuda
 */
#include "cuda_common.cuh"
#include "gemm.cuh"

/* weights permuted to [cout][k][k][cin] (so that im2col copies contiguous channel runs), then
 * the im2col chunk */
static size_t wperm_floats(const CatanetConv2dArgs *a)
{
    return ((size_t)a->cout * a->cin * a->ksize * a->ksize + 63) & ~(size_t)63;
}

size_t catanet_conv2d_cuda_work(const CatanetConv2dArgs *a)
{
    return wperm_floats(a) + (size_t)CATANET_CUDA_CONV_ROWS * a->cin * a->ksize * a->ksize;
}

/* w [cout][cin][kk] -> wp [cout][kk][cin] */
__global__ void conv_permute_kernel(int cout, int cin, int kk, const float *w, float *wp)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        wp[(size_t)o * cin * kk + t * cin + c] = w[i];
    }
}

/* col [rows][k*k*cin] for output pixels p0.. (one warp per pixel, 8 per block), columns ordered
 * [ky][kx][cin] like the permuted weights; taps outside the image are 0 */
__global__ void im2col_kernel(CatanetConv2dArgs a, const float *in, int p0, int rows, float *col)
{
    int r = blockIdx.x * blockDim.y + threadIdx.y;
    if (r >= rows)
        return;
    int k = a.ksize, p = k / 2, cin = a.cin, ncol = cin * k * k;
    int pix = p0 + r, hw = a.h * a.w;
    int img = pix / hw, rem = pix - img * hw, y = rem / a.w, x = rem - y * a.w;
    float *cr = col + (size_t)r * ncol;
    for (int j = threadIdx.x; j < ncol; j += blockDim.x) {
        int t = j / cin, c = j - t * cin, ky = t / k, kx = t - ky * k;
        int yy = y + ky - p, xx = x + kx - p;
        float v = 0.0f;
        if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w)
            v = in[(((size_t)img * a.h + yy) * a.w + xx) * cin + c];
        cr[j] = v;
    }
}

/* Small convs (the first, 3 -> C, and the last, C -> 3): direct, one thread per output element,
 * no im2col round trip. Sum per tap over the channels (contiguous reads). */
__global__ void conv_direct_kernel(CatanetConv2dArgs a, const float *in, const float *wt, const float *bias,
                                   float *out)
{
    int k = a.ksize, p = k / 2, kk = k * k, cin = a.cin, hw = a.h * a.w, total = a.batch * hw * a.cout;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int o = i % a.cout, pix = i / a.cout, img = pix / hw, rem = pix - img * hw, y = rem / a.w, x = rem - y * a.w;
        float acc = bias ? bias[o] : 0.0f;
        const float *wo = wt + (size_t)o * cin * kk;
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - p;
            if (yy < 0 || yy >= a.h)
                continue;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - p;
                if (xx < 0 || xx >= a.w)
                    continue;
                const float *src = in + (((size_t)img * a.h + yy) * a.w + xx) * cin;
                const float *wk = wo + ky * k + kx;
                for (int c = 0; c < cin; c++)
                    acc += src[c] * wk[c * kk];
            }
        }
        out[i] = acc;
    }
}

#define CONV_DIRECT_MAX 4 /* cin or cout at most this: the direct kernel */

/* y [rows][cout] = bias, rows over blockIdx/threadIdx.y, columns over threadIdx.x */
__global__ void conv_bias_kernel(int rows, int cout, const float *b, float *y)
{
    for (int r = blockIdx.x * blockDim.y + threadIdx.y; r < rows; r += gridDim.x * blockDim.y)
        for (int o = threadIdx.x; o < cout; o += blockDim.x)
            y[(size_t)r * cout + o] = b[o];
}

/* in [B,H,W,cin], wt [cout,cin,k,k], bias [cout] or NULL -> out [B,H,W,cout] */
int catanet_conv2d_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->cin > 0 && a->cout > 0, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_conv2d_cuda_work(a), "conv2d_fwd_cuda");
    CUDA_REQUIRE(cx, in != out, "conv2d_fwd_cuda"); /* later chunks read rows earlier ones would overwrite */
    int total = a->batch * a->h * a->w, kk = a->ksize * a->ksize, ncol = a->cin * kk;
    if ((a->cout <= CONV_DIRECT_MAX || a->cin <= CONV_DIRECT_MAX) && (size_t)total * a->cout < ((size_t)1 << 31)) {
        size_t n = (size_t)total * a->cout;
        conv_direct_kernel<<<grid_for(n, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(*a, in, wt, bias, out);
        CUDA_LAUNCHED(cx, "conv2d direct");
        return 0;
    }
    float *wp = cx->work, *col = cx->work + wperm_floats(a);
    conv_permute_kernel<<<grid_for((size_t)a->cout * ncol, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(
        a->cout, a->cin, kk, wt, wp);
    CUDA_LAUNCHED(cx, "conv2d permute");
    if (bias) {
        unsigned blocks = (unsigned)((total + 7) / 8 < 65535 * 16 ? (total + 7) / 8 : 65535 * 16);
        conv_bias_kernel<<<blocks, dim3(32, 8), 0, cx->stream>>>(total, a->cout, bias, out);
        CUDA_LAUNCHED(cx, "conv2d bias");
    }
    for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_ROWS) {
        int rows = total - p0 < CATANET_CUDA_CONV_ROWS ? total - p0 : CATANET_CUDA_CONV_ROWS;
        im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(*a, in, p0, rows, col);
        CUDA_LAUNCHED(cx, "conv2d im2col");
        int ret = catanet_cuda_gemm_rm(cx, rows, a->cout, ncol, col, ncol, wp, ncol, bias ? 1.0f : 0.0f,
                                       out + (size_t)p0 * a->cout, a->cout);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* ---------------- backward (twin of catanet_conv2d_bwd_ref) ----------------
 * din: the transposed convolution = a forward convolution of dout with the weights flipped and
 * in/out swapped: im2col of dout (columns [ky][kx][cout]) times wf [cin][ky][kx][cout] with
 * wf[c][ky][kx][o] = wt[o][c][k-1-ky][k-1-kx], added (beta = 1) per fixed chunk of pixels.
 * dwt: dwp [cout][ky][kx][cin] = sum over fixed pixel chunks of dout^T im2col(in) (GEMMs in chunk
 * order, beta = 1 after the first), then permuted and added into PyTorch's [cout][cin][k][k].
 * dbias: the fixed-order column reduction. All GEMMs are cublasSgemm: the same bits on every run. */
#include "reduce.cuh"

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

size_t catanet_conv2d_bwd_cuda_work(const CatanetConv2dArgs *a)
{
    size_t kk = (size_t)a->ksize * a->ksize, wide = (size_t)(a->cin > a->cout ? a->cin : a->cout);
    return 2 * round64((size_t)a->cin * a->cout * kk) + (size_t)CATANET_CUDA_CONV_BWD_ROWS * kk * wide;
}

/* wt [cout][cin][kk] -> wf [cin][kk][cout], taps reversed */
__global__ void conv_flip_kernel(int cout, int cin, int kk, const float *wt, float *wf)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        wf[((size_t)c * kk + (kk - 1 - t)) * cout + o] = wt[i];
    }
}

/* dwt [cout][cin][kk] += dwp [cout][kk][cin] */
__global__ void conv_dw_add_kernel(int cout, int cin, int kk, const float *dwp, float *dwt)
{
    int n = cout * cin * kk;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        int o = i / (cin * kk), r = i - o * cin * kk, c = r / kk, t = r - c * kk;
        dwt[i] += dwp[((size_t)o * kk + t) * cin + c];
    }
}

int catanet_conv2d_bwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias)
{
    CUDA_REQUIRE(cx, a->batch > 0 && a->h > 0 && a->w > 0 && a->cin > 0 && a->cout > 0, "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, a->ksize > 0 && a->ksize % 2 == 1, "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, (size_t)a->batch * a->h * a->w < ((size_t)1 << 31), "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, cx->work && cx->work_floats >= catanet_conv2d_bwd_cuda_work(a), "conv2d_bwd_cuda");
    CUDA_REQUIRE(cx, dout && (!din || wt) && (!dwt || in) && (!din || (din != dout && din != in)),
                 "conv2d_bwd_cuda");
    int total = a->batch * a->h * a->w, k = a->ksize, kk = k * k, cin = a->cin, cout = a->cout, ret;
    size_t wsz = round64((size_t)cin * cout * kk);
    float *wf = cx->work, *dwp = cx->work + wsz, *col = cx->work + 2 * wsz;
    unsigned wblocks = grid_for((size_t)cout * cin * kk, CUDA_THREADS);
    if (din) {
        CatanetConv2dArgs t = { a->batch, a->h, a->w, cout, cin, k }; /* im2col of dout: cout columns per tap */
        conv_flip_kernel<<<wblocks, CUDA_THREADS, 0, cx->stream>>>(cout, cin, kk, wt, wf);
        CUDA_LAUNCHED(cx, "conv2d_bwd flip");
        for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_BWD_ROWS) {
            int rows = total - p0 < CATANET_CUDA_CONV_BWD_ROWS ? total - p0 : CATANET_CUDA_CONV_BWD_ROWS;
            im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(t, dout, p0, rows, col);
            CUDA_LAUNCHED(cx, "conv2d_bwd im2col(dout)");
            if ((ret = catanet_cuda_sgemm_rm(cx, 0, 1, rows, cin, kk * cout, 1.0f, col, kk * cout, wf, kk * cout, 1.0f,
                                             din + (size_t)p0 * cin, cin)) < 0)
                return ret;
        }
    }
    if (dwt) {
        int ncol = kk * cin;
        for (int p0 = 0; p0 < total; p0 += CATANET_CUDA_CONV_BWD_ROWS) {
            int rows = total - p0 < CATANET_CUDA_CONV_BWD_ROWS ? total - p0 : CATANET_CUDA_CONV_BWD_ROWS;
            im2col_kernel<<<(rows + 7) / 8, dim3(32, 8), 0, cx->stream>>>(*a, in, p0, rows, col);
            CUDA_LAUNCHED(cx, "conv2d_bwd im2col(in)");
            if ((ret = catanet_cuda_sgemm_rm(cx, 1, 0, cout, ncol, rows, 1.0f, dout + (size_t)p0 * cout, cout, col, ncol,
                                             p0 ? 1.0f : 0.0f, dwp, ncol)) < 0)
                return ret;
        }
        conv_dw_add_kernel<<<wblocks, CUDA_THREADS, 0, cx->stream>>>(cout, cin, kk, dwp, dwt);
        CUDA_LAUNCHED(cx, "conv2d_bwd dwt");
    }
    if (dbias) {
        ColTerm t = { dout, cout };
        if ((ret = launch_colsum(cx, total, cout, t, dbias, 1, "conv2d_bwd dbias")) < 0)
            return ret;
    }
    return 0;
}
