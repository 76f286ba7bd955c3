/*
 * conv2d.c: dense KxK convolution, stride 1, zero padding K/2 (nn.Conv2d(cin, cout, k, 1, k//2)),
 * on NHWC activations with PyTorch's [cout][cin][k][k] weights.
 * defines: catanet_conv2d_fwd_ref, catanet_conv2d_work, catanet_conv2d_fwd_cpu, catanet_conv2d_bwd_ref
 */
#include "blas.h"
#include <omp.h>
#include <string.h>

#include "kernels.h"

/* in [B,H,W,cin], wt [cout,cin,k,k], bias [cout] or NULL -> out [B,H,W,cout] */
void catanet_conv2d_fwd_ref(const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *bias, float *out)
{
    int k = a->ksize, p = k / 2;
    for (int bi = 0; bi < a->batch; bi++)
        for (int y = 0; y < a->h; y++)
            for (int x = 0; x < a->w; x++)
                for (int o = 0; o < a->cout; o++) {
                    float acc = bias ? bias[o] : 0.0f;
                    for (int c = 0; c < a->cin; c++)
                        for (int ky = 0; ky < k; ky++) {
                            int yy = y + ky - p;
                            if (yy < 0 || yy >= a->h)
                                continue;
                            for (int kx = 0; kx < k; kx++) {
                                int xx = x + kx - p;
                                if (xx < 0 || xx >= a->w)
                                    continue;
                                acc += in[(((size_t)bi * a->h + yy) * a->w + xx) * a->cin + c] *
                                       wt[(((size_t)o * a->cin + c) * k + ky) * k + kx];
                            }
                        }
                    out[(((size_t)bi * a->h + y) * a->w + x) * a->cout + o] = acc;
                }
}

size_t catanet_conv2d_work(const CatanetConv2dArgs *a)
{
    return (size_t)CATANET_ROW_CHUNK * a->cin * a->ksize * a->ksize;
}

/* im2col of one chunk of output pixels, columns ordered [cin][ky][kx] like the weight rows */
static void im2col_chunk(const CatanetConv2dArgs *a, const float *in, size_t p0, int rows,
                         float *col)
{
    int k = a->ksize, p = k / 2, kk = k * k, ncol = a->cin * kk;
    for (int r = 0; r < rows; r++) {
        size_t pix = p0 + r;
        int x = (int)(pix % a->w), y = (int)(pix / a->w % a->h);
        size_t img = pix / ((size_t)a->w * a->h);
        float *cr = col + (size_t)r * ncol;
        for (int ky = 0; ky < k; ky++) {
            int yy = y + ky - p;
            for (int kx = 0; kx < k; kx++) {
                int xx = x + kx - p;
                int j = ky * k + kx;
                if (yy < 0 || yy >= a->h || xx < 0 || xx >= a->w) {
                    for (int c = 0; c < a->cin; c++)
                        cr[c * kk + j] = 0.0f;
                } else {
                    const float *src = in + ((img * a->h + yy) * a->w + xx) * a->cin;
                    for (int c = 0; c < a->cin; c++)
                        cr[c * kk + j] = src[c];
                }
            }
        }
    }
}

void catanet_conv2d_fwd_cpu(const CatanetCpu *cpu, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out)
{
    size_t npix = (size_t)a->batch * a->h * a->w;
    int ncol = a->cin * a->ksize * a->ksize;
    long nchunks = (long)((npix + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK);
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
#pragma omp for schedule(static)
    for (long ch = 0; ch < nchunks; ch++) {
        float *col = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        size_t p0 = (size_t)ch * CATANET_ROW_CHUNK;
        int rows = npix - p0 < CATANET_ROW_CHUNK ? (int)(npix - p0) : CATANET_ROW_CHUNK;
        float *oc = out + p0 * a->cout;
        float beta = 0.0f;
        if (bias) {
            for (int r = 0; r < rows; r++)
                memcpy(oc + (size_t)r * a->cout, bias, sizeof(*bias) * a->cout);
            beta = 1.0f;
        }
        if (a->ksize == 1) {
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, a->cout, a->cin, 1.0f,
                        in + p0 * a->cin, a->cin, wt, a->cin, beta, oc, a->cout);
            continue;
        }
        im2col_chunk(a, in, p0, rows, col);
        catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, a->cout, ncol, 1.0f, col, ncol,
                    wt, ncol, beta, oc, a->cout);
    }
    }
}

/* forward: out[b,y,x,o] = bias[o] + sum_{c,ky,kx} in[b,y+ky-p,x+kx-p,c] wt[o,c,ky,kx]
 * din (may be NULL) += ..., dwt += ..., dbias (may be NULL) += sum dout */
void catanet_conv2d_bwd_ref(const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias)
{
    int k = a->ksize, p = k / 2;
    for (int bi = 0; bi < a->batch; bi++)
        for (int y = 0; y < a->h; y++)
            for (int x = 0; x < a->w; x++)
                for (int o = 0; o < a->cout; o++) {
                    float g = dout[(((size_t)bi * a->h + y) * a->w + x) * a->cout + o];
                    if (dbias)
                        dbias[o] += g;
                    for (int c = 0; c < a->cin; c++)
                        for (int ky = 0; ky < k; ky++) {
                            int yy = y + ky - p;
                            if (yy < 0 || yy >= a->h)
                                continue;
                            for (int kx = 0; kx < k; kx++) {
                                int xx = x + kx - p;
                                if (xx < 0 || xx >= a->w)
                                    continue;
                                size_t ii = (((size_t)bi * a->h + yy) * a->w + xx) * a->cin + c;
                                size_t wi = (((size_t)o * a->cin + c) * k + ky) * k + kx;
                                if (din)
                                    din[ii] += g * wt[wi];
                                if (dwt)
                                    dwt[wi] += g * in[ii];
                            }
                        }
                }
}

/* pixels per weight-gradient step of the fast backward (their im2col is shared by the threads) */
#define CONV_BWD_PIX 2048
#define CONV_DW_SLICE 16

size_t catanet_conv2d_bwd_work(const CatanetConv2dArgs *a)
{
    return (size_t)CATANET_ROW_CHUNK * a->cout * a->ksize * a->ksize;
}

size_t catanet_conv2d_bwd_scratch(const CatanetConv2dArgs *a)
{
    size_t kk = (size_t)a->ksize * a->ksize;
    return (size_t)a->cin * a->cout * kk + (size_t)CONV_BWD_PIX * a->cin * kk;
}

/* din: the transposed convolution = a forward convolution of dout with the weights flipped
 * and in/out swapped, added with beta = 1 per fixed chunk of output pixels.
 * dwt: dW[o][c,ky,kx] += sum_pix dout[pix][o] col[pix][c,ky,kx], in fixed pixel blocks (the
 * im2col of a block is built by all threads, then each fixed slice of output channels is one
 * sgemm): the summation order does not depend on the thread count.
 * scratch: catanet_conv2d_bwd_scratch(a) floats; cpu->work: catanet_conv2d_bwd_work per thread. */
void catanet_conv2d_bwd_cpu(const CatanetCpu *cpu, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *dout, float *din, float *dwt,
                            float *dbias, float *scratch)
{
    int k = a->ksize, kk = k * k, cin = a->cin, cout = a->cout;
    size_t npix = (size_t)a->batch * a->h * a->w;
    float *wf = scratch, *colbuf = scratch + (size_t)cin * cout * kk;
    CatanetConv2dArgs t = { a->batch, a->h, a->w, cout, cin, k };
    for (int c = 0; c < cin; c++)
        for (int o = 0; o < cout; o++)
            for (int j = 0; j < kk; j++)
                wf[((size_t)c * cout + o) * kk + j] = wt[((size_t)o * cin + c) * kk + (kk - 1 - j)];
    long nchunks = (long)((npix + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK);
    long nblocks = (long)((npix + CONV_BWD_PIX - 1) / CONV_BWD_PIX);
    int nslices = (cout + CONV_DW_SLICE - 1) / CONV_DW_SLICE;
    int ncol = cin * kk;
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
    if (din) {
#pragma omp for schedule(static)
        for (long ch = 0; ch < nchunks; ch++) {
            float *col = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
            size_t p0 = (size_t)ch * CATANET_ROW_CHUNK;
            int rows = npix - p0 < CATANET_ROW_CHUNK ? (int)(npix - p0) : CATANET_ROW_CHUNK;
            if (k == 1) {
                catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cin, cout, 1.0f,
                            dout + p0 * cout, cout, wt, cin, 1.0f, din + p0 * cin, cin);
                continue;
            }
            im2col_chunk(&t, dout, p0, rows, col);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cin, cout * kk, 1.0f, col,
                        cout * kk, wf, cout * kk, 1.0f, din + p0 * cin, cin);
        }
    }
    if (dwt) {
        for (long bl = 0; bl < nblocks; bl++) {
            size_t b0 = (size_t)bl * CONV_BWD_PIX;
            int rows = npix - b0 < CONV_BWD_PIX ? (int)(npix - b0) : CONV_BWD_PIX;
            const float *col = in + b0 * cin;
            if (k > 1) {
                int sub = (rows + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
#pragma omp for schedule(static)
                for (int s = 0; s < sub; s++) {
                    int r0 = s * CATANET_ROW_CHUNK;
                    int rr = rows - r0 < CATANET_ROW_CHUNK ? rows - r0 : CATANET_ROW_CHUNK;
                    im2col_chunk(a, in, b0 + r0, rr, colbuf + (size_t)r0 * ncol);
                }
                col = colbuf;
            }
#pragma omp for schedule(dynamic, 1)
            for (int s = 0; s < nslices; s++) {
                int o0 = s * CONV_DW_SLICE;
                int cnt = cout - o0 < CONV_DW_SLICE ? cout - o0 : CONV_DW_SLICE;
                catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cnt, ncol, rows, 1.0f,
                            dout + b0 * cout + o0, cout, col, ncol, 1.0f, dwt + (size_t)o0 * ncol,
                            ncol);
            }
        }
    }
    if (dbias) {
#pragma omp for schedule(static)
        for (int o = 0; o < cout; o++) {
            double s = 0.0;
            for (size_t r = 0; r < npix; r++)
                s += dout[r * cout + o];
            dbias[o] += (float)s;
        }
    }
    }
}
