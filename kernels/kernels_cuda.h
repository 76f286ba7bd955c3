/*
 * kernels_cuda.h: the CUDA twins of the forward ops in kernels.h (kernels/cuda/<op>.cu, same stem
 * as kernels/cpu/<op>.c), as extern "C" launchers callable from C.
 *
 * Every launcher takes the CPU twin's arguments (device pointers instead of host ones) plus a
 * CatanetCudaCtx (stream, cuBLAS handle, scratch). It only enqueues work on cx->stream: no
 * allocation, no host synchronisation, so a whole forward can be captured into a CUDA graph.
 * It returns 0, or a negative CatanetError with a detail message in cx->err:
 *   CATANET_ERR_INVALID_ARG / UNSUPPORTED  shapes the kernels do not handle (checked before launching)
 *   CATANET_ERR_CUDA                       a launch failed (cudaGetLastError after every launch)
 *   CATANET_ERR_CUBLAS                     a cuBLAS call failed
 * Layouts are the CPU twins' (kernels.h): NHWC tokens, planar NCHW images, PyTorch weights.
 */
#ifndef CATANET_KERNELS_CUDA_H
#define CATANET_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "catanet.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "kernels.h" /* C declarations without their own extern "C" */

typedef struct CatanetCudaCtx {
    cudaStream_t stream;
    cublasHandle_t blas;     /* bound to stream by the owner */
    int gemm_fp16;           /* GEMMs on tensor cores with inputs rounded to fp16, fp32 accumulation
                                (CUBLAS_COMPUTE_32F_FAST_16F); 0: pure fp32 GEMMs */
    float *work;             /* device scratch, work_floats floats (see the *_cuda_work functions) */
    size_t work_floats;
    char err[256];           /* detail of the last failure */
} CatanetCudaCtx;

/* rows of output pixels per im2col chunk in conv2d: bounds the scratch, independent of the frame */
#define CATANET_CUDA_CONV_ROWS 32768

/* ---- linear.cu: y[n][o] = sum_i x[n][i] w[o][i] + b[o] (cuBLAS) ---- */
int catanet_linear_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y);

/* ---- conv2d.cu: im2col in fixed chunks + cuBLAS ---- */
size_t catanet_conv2d_cuda_work(const CatanetConv2dArgs *a);  /* floats of cx->work */
int catanet_conv2d_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);

/* ---- dwconv.cu ---- */
int catanet_dwconv_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);
/* ConvFFN's middle, fused: out = in + gelu(dwconv(in)) (out must not alias in) */
int catanet_dwconv_gelu_add_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                                     const float *wt, const float *bias, float *out);

/* ---- layernorm.cu: statistics in fp32, one warp per row; c <= CATANET_MAX_DIM ---- */
int catanet_layernorm_fwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                               const float *b, float *y);

/* ---- activation.cu: elementwise (y may alias x) ---- */
int catanet_gelu_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, float *y);
int catanet_lrelu_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, float *y);
/* out = x + y (out may alias x or y): the residual adds of forward_cpu.c */
int catanet_add_fwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, const float *y, float *out);

/* ---- pixel_shuffle.cu ---- */
int catanet_pixel_shuffle_fwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *in,
                                   float *out);
/* the upsampler's PixelShuffle followed by LeakyReLU(0.1), fused */
int catanet_pixel_shuffle_lrelu_fwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a,
                                         const float *in, float *out);

/* ---- bilinear.cu ---- */
int catanet_bilinear_fwd_cuda(CatanetCudaCtx *cx, int planes, int h, int w, int s, const float *in,
                              float *out);
/* the network's tail: out[c][y][x] = bilinear(in)[c][y][x] + res[(y*s*w + x)*3 + c] for the
 * top-left crop_h x crop_w of the s*h x s*w result; in planar [3][h][w], res NHWC [s h][s w][3],
 * out planar [3][crop_h][crop_w] */
int catanet_bilinear_add_fwd_cuda(CatanetCudaCtx *cx, int h, int w, int s, const float *in,
                                  const float *res, int crop_h, int crop_w, float *out);

/* ---- cluster.cu: similarity + argmax in fp32, stable counting sort; m <= CATANET_MAX_CENTERS ---- */
size_t catanet_cluster_cuda_work(int n, int c, int m);  /* floats of cx->work */
int catanet_cluster_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const float *xn,
                             const float *centers, int32_t *cid, int32_t *ord);

/* ---- iasa.cu: fused IASA + IRCA, online softmax, one block per (subgroup, head, query chunk) ---- */
int catanet_iasa_fwd_cuda(CatanetCudaCtx *cx, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, float *out);
/* the mirror rule of catanet_mirror_index, evaluated on the device (for the twin test) */
int catanet_mirror_index_cuda(CatanetCudaCtx *cx, const int64_t *i, int n, int count, int32_t *out);

/* ---- lrsa.cu ----
 * The patch geometry (starts, band weights, coverage counts) depends only on the size: built on
 * the host once (catanet_lrsa_cuda_table_fill, from catanet_lrsa_starts/_band_weights) and
 * uploaded by the caller. Scratch buffers are the caller's: ln [H*W,C], q,k [H*W,heads*dqk],
 * v, asum, proj [H*W,heads*dv] (proj: [H*W,C]). out may alias x. */
typedef struct CatanetLrsaCudaScratch {
    float *ln, *q, *k, *v, *asum, *proj;
} CatanetLrsaCudaScratch;
size_t catanet_lrsa_cuda_table_bytes(const CatanetLrsaArgs *a);
int catanet_lrsa_cuda_table_fill(const CatanetLrsaArgs *a, void *host_table);
int catanet_lrsa_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                          float *out);

/* ---- frame.cu (twin: engine/forward_cpu.c's input staging) ----
 * in planar [3][in_h][in_w] -> xin NHWC [h][w][3] mirrored up to h x w (catanet_mirror_index),
 * and, when src_pad is not NULL, the mirrored planar frame [3][h][w] too */
int catanet_frame_in_fwd_cuda(CatanetCudaCtx *cx, int in_h, int in_w, int h, int w, const float *in,
                              float *xin, float *src_pad);

/* ---- image.cu (twin: engine/image.c) ---- strided device images <-> planar float RGB */
int catanet_image_to_rgb_cuda(CatanetCudaCtx *cx, const CatanetImage *im, float *rgb);
int catanet_image_from_rgb_cuda(CatanetCudaCtx *cx, const float *rgb, const CatanetImage *im);

#ifdef __cplusplus
}
#endif

#endif /* CATANET_KERNELS_CUDA_H */
