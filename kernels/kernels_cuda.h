/*
 * kernels_cuda.h: the CUDA twins of the forward ops in kernels.h (kernels/cuda/<op>.cu, same stem
 * as kernels/cpu/<op>.c), as extern "C" launchers callable from C.
 *
 * Every launcher takes the CPU twin's arguments (device pointers instead of host ones) plus a
 * CatanetCudaCtx (stream, cuBLAS handle, scratch). The backward twins (the section at the end) follow
 * the same rules. It only enqueues work on cx->stream: no
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
    int attn_fp16;           /* LRSA/IASA attention on tensor cores: Q/K/V/P in fp16, softmax and
                                accumulation in fp32 (kernels/cuda/attn_tc.cuh); 0: fp32 CUDA cores */
    int attn_exp2_fma;       /* with attn_fp16: one softmax exp2 in four on the FMA pipe (attn_tc.cuh's
                                exp2_fma), the rest on the XU pipe; an option the GPU's timings decide */
    int qkv_fp16;            /* the q, k, v given to catanet_iasa_fwd_cuda / catanet_lrsa_attend_fwd_cuda
                                hold __half values behind their float pointers (either attention
                                kernel); forward only, not with catanet_lrsa_fwd_cuda's own projections */
    int iasa_out_fp16;       /* catanet_iasa_fwd_cuda stores its output as __half (forward only) */
    int lrsa_out_fp16;       /* catanet_lrsa_attend_fwd_cuda stores its output as __half (out must not
                                be x; forward only) */
    int lrsa_x_fp16;         /* the residual x given to catanet_lrsa_attend_fwd_cuda holds __half */
    int lrsa_asum_fp16;      /* LRSA's per-token sums of its patches' attention outputs (the scratch's
                                asum) stored as __half between the attention and the combine
                                (each add in fp32; forward only) */
    int conv_in_fp16;        /* the input of the forward convs holds __half, and */
    int conv_out_fp16;       /* their output, residuals included (a shuffled output too): the kernels
                                catanet_conv2d_takes_fp16 names take them; other shapes give
                                CATANET_ERR_UNSUPPORTED, the im2col path an argument error */
    const void *conv_wh;     /* the forward conv's weights for the tensor-core implicit GEMM, made once
                                from the same wt by catanet_conv2d_weights_half_cuda, or NULL: made
                                from wt into work on each call (one launch more) */
    const float *conv_wp;    /* the same for the fp32 implicit GEMM and the im2col path: wt permuted
                                once by catanet_conv2d_weights_permute_cuda, or NULL */
    const float *cluster_cn; /* catanet_cluster_fwd_cuda's centers normalised once by
                                catanet_cluster_centers_norm_cuda (16-byte aligned), or NULL: now */
    float *work;             /* device scratch, work_floats floats (see the *_cuda_work functions) */
    size_t work_floats;
    char err[256];           /* detail of the last failure */
} CatanetCudaCtx;

/* rows of output pixels per im2col chunk in conv2d: bounds the scratch, independent of the frame */
#define CATANET_CUDA_CONV_ROWS 32768

/* ---- linear.cu: y[n][o] = sum_i x[n][i] w[o][i] + b[o] (cuBLAS) ---- */
int catanet_linear_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y);

/* the same layer fused with its neighbours in one kernel (fp32 on CUDA cores in both precisions):
 * y = [res +] gelu?(LN?(x) w^T + b), the CPU sequence layernorm -> linear -> gelu -> add of
 * forward_cpu.c in one pass over the tokens. Every part but the product is optional. y may alias
 * res, not x. */
typedef struct CatanetLinearFusion {
    const float *ln_w, *ln_b; /* LayerNorm of each x row (eps CATANET_LN_EPS) first, or both NULL */
    const float *bias;        /* [out], or NULL */
    int gelu;                 /* exact (erf) GELU after the bias */
    const float *res;         /* [n,out] added last, or NULL (not with a split) */
    float *ln_out;            /* [n,in]: the LayerNorm rows written too (with ln_w), or NULL */
    int split[2];             /* {0, 0}: every output to y. Else 0 < split[0] < split[1] <= out:
                                 outputs [0, split[0]) go to y, [split[0], split[1]) to y1 and
                                 [split[1], out) to y2, each row-major at its own width (one pass
                                 for q, k and v of LN(x) with their weights stacked) */
    float *y1, *y2;
    int x_fp16, y_fp16;       /* x / y hold __half values behind their float pointers (activations
                                 stored as fp16; with a split, y1 and y2 hold y's type too) */
    int res_fp16;             /* res holds __half values (y may be res only when of res's type) */
    /* LRSA's overlapping-patch combine, or all NULL: y = wr[r] wc[c] (cr[r] cc[c] res + v) for the
     * token t = r band_w + c (v: the product and bias; needs res, no split, no GELU) */
    const float *band_wr, *band_wc, *band_cr, *band_cc;
    int band_w;
} CatanetLinearFusion;
int catanet_linear_fused_fwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x,
                                  const float *w, const CatanetLinearFusion *f, float *y);

/* ---- conv2d.cu: direct kernels (few channels), implicit GEMM, im2col in fixed chunks + cuBLAS ---- */
size_t catanet_conv2d_cuda_work(const CatanetConv2dArgs *a);  /* floats of cx->work */
int catanet_conv2d_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);
/* out = (res + conv(in) + bias) + res2 (res may be out, not in; res2 NULL, or neither in nor out): a conv
 * with its residual adds in the epilogue (the residual groups' last conv; res2: the network's global
 * residual, in the last group's). im2col: the im2col + cuBLAS path (residuals and bias written
 * first, the GEMM adds), else the kernel catanet_conv2d_fwd_cuda picks (the direct few-channel
 * kernels excepted: those shapes take im2col) */
int catanet_conv2d_res_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                                const float *bias, const float *res, const float *res2, float *out, int im2col);
/* the upsampler's conv, PixelShuffle(r) and LeakyReLU(0.1) in one pass (twin of catanet_conv2d_fwd_ref,
 * catanet_pixel_shuffle_fwd_ref, catanet_lrelu_fwd_ref): the implicit-GEMM kernels store each output
 * at its shuffled place, so the [B,H,W,cout] conv output is never written. out [B,H r,W r,cout/r^2].
 * CATANET_ERR_UNSUPPORTED (nothing launched) for the shapes only im2col takes: then run the conv and
 * catanet_pixel_shuffle_lrelu_fwd_cuda apart */
int catanet_conv2d_shuffle_lrelu_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                                          const float *wt, const float *bias, int r, float *out);
/* the tensor-core implicit GEMM's weights: wt [cout][cin][3][3] -> wh [9][cin][cout] in fp16, both
 * counts rounded up to 16 with zeros (catanet_conv2d_weights_half_count halves; wh 32-byte aligned).
 * Weights do not change between frames: made once and given as cx->conv_wh, they spare each conv a
 * launch */
size_t catanet_conv2d_weights_half_count(const CatanetConv2dArgs *a);
int catanet_conv2d_weights_half_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *wt, void *wh);
/* the fp32 implicit GEMM's and the im2col path's weights: wt [cout][cin][k][k] -> wp [cout][k][k][cin]
 * (cout cin k^2 floats, wp 16-byte aligned): made once and given as cx->conv_wp, likewise */
int catanet_conv2d_weights_permute_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *wt, float *wp);
/* whether a forward conv of this shape takes fp16 storage (cx->conv_in_fp16 when in_fp16,
 * cx->conv_out_fp16 when out_fp16; with_res: residuals in the epilogue, of the output's type): with an
 * fp16 input, the fp16 mode's tensor-core implicit GEMM (3x3, cin % 4 == 0; any output, residuals, a
 * shuffle) or, into fp32 without residuals, the direct kernel for cout <= 4; with an fp32 input and
 * an fp16 output, the direct kernel for cin <= 4 (no residual, cout % 4 == 0). The buffers 8-byte
 * aligned */
int catanet_conv2d_takes_fp16(const CatanetCudaCtx *cx, const CatanetConv2dArgs *a, int in_fp16, int out_fp16,
                              int with_res);
/* the im2col + cuBLAS path alone (catanet_conv2d_fwd_cuda takes it for the shapes its direct and
 * implicit-GEMM kernels do not): its twin test and test_twins --bench's baseline */
int catanet_conv2d_im2col_fwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in,
                                   const float *wt, const float *bias, float *out);

/* ---- dwconv.cu ---- */
int catanet_dwconv_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);
/* ConvFFN's middle, fused: out = in + gelu(dwconv(in)) (out must not alias in) */
int catanet_dwconv_gelu_add_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                                     const float *wt, const float *bias, float *out);
/* the same with in and out stored as fp16 (__half; fp32 arithmetic): the tiled kernel only
 * (k 3 or 5, c % 4 == 0, in 8-byte aligned) */
int catanet_dwconv_gelu_add_fp16_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const void *in,
                                          const float *wt, const float *bias, void *out);
/* the same with the per-warp kernel alone (the tiled kernel's fallback for other shapes): the
 * baseline of test_twins --bench, and a second CUDA twin for the tests */
int catanet_dwconv_gelu_add_pixelwarp_fwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in,
                                               const float *wt, const float *bias, float *out);

/* ---- convffn.cu: the fp16 mode's whole ConvFFN (LN, fc1, GELU, 5x5 dwconv, GELU, add, fc2, residual)
 * in one kernel, fc1 and fc2 on tensor cores with the fp16 mode's rounding points; twin of
 * catanet_convffn_fwd_ref, which works in place: here y != x (other blocks read x around their tile).
 * dim <= 64 and a multiple of 4, hidden <= 128, x 16-byte aligned (x_fp16: x holds __half values
 * behind its float pointer, 8-byte aligned; widened to fp32 as loaded; y_fp16, only with x_fp16: y
 * holds __half, the fp32 result rounded). The kernel needs
 * catanet_convffn_fp16_smem bytes of shared memory a block (96 KB for CATANet):
 * catanet_convffn_fp16_setup, once per device and outside a graph capture, raises the kernel's
 * limit, or returns CATANET_ERR_UNSUPPORTED where the device has too little. ---- */
size_t catanet_convffn_fp16_smem(int dim, int hidden);
int catanet_convffn_fp16_setup(CatanetCudaCtx *cx, int dim, int hidden);
int catanet_convffn_fp16_fwd_cuda(CatanetCudaCtx *cx, const CatanetConvffnArgs *a, const CatanetConvffnWeights *w,
                                  const float *x, int x_fp16, float *y, int y_fp16);

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
 * out planar [3][crop_h][crop_w]; nonfinite: NULL, or a device counter that gets the number of
 * NaN/Inf outputs added */
int catanet_bilinear_add_fwd_cuda(CatanetCudaCtx *cx, int h, int w, int s, const float *in,
                                  const float *res, int crop_h, int crop_w, float *out, unsigned *nonfinite);

/* ---- cluster.cu: similarity + argmax in fp32, stable counting sort; m <= CATANET_MAX_CENTERS ---- */
size_t catanet_cluster_cuda_work(int n, int c, int m);  /* floats of cx->work */
/* F.normalize of each center row, centers [m][c] -> cn [m][c]: centers are weights at inference, so
 * made once and given as cx->cluster_cn they spare each catanet_cluster_fwd_cuda a launch */
int catanet_cluster_centers_norm_cuda(CatanetCudaCtx *cx, int m, int c, const float *centers, float *cn);
int catanet_cluster_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const float *xn,
                             const float *centers, int32_t *cid, int32_t *ord);
/* the same with the LayerNorm applied inside (x [N,C], stored as fp16 when x_fp16; ln_w, ln_b [C]):
 * TAB's LN(x) then need not be stored for the clustering. One thread a row, in a fixed fp32 order.
 * Dims <= 64 and a multiple of 4 (catanet_cluster_ln_takes; CATANET_ERR_UNSUPPORTED otherwise); x and
 * cx->cluster_cn 16-byte aligned (x 8 when fp16) */
int catanet_cluster_ln_takes(int c);
int catanet_cluster_ln_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const void *x, int x_fp16,
                                const float *ln_w, const float *ln_b, const float *centers, int32_t *cid,
                                int32_t *ord);

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
 * v, asum [H*W,heads*dv]. proj is not used by the forward (the projection and the band-weighted
 * combine are one fused pass now); the training step's layout still carries it. out may alias x. */
typedef struct CatanetLrsaCudaScratch {
    float *ln, *q, *k, *v, *asum, *proj;
} CatanetLrsaCudaScratch;
size_t catanet_lrsa_cuda_table_bytes(const CatanetLrsaArgs *a);
int catanet_lrsa_cuda_table_fill(const CatanetLrsaArgs *a, void *host_table);
int catanet_lrsa_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                          float *out);
/* its second half, for a caller that made s->q, s->k, s->v itself (the engine: LayerNorm and the
 * three projections in one fused pass): patch attention, the projection wproj, the band-weighted
 * combine and the residual x. s->ln is not used. */
int catanet_lrsa_attend_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const float *wproj,
                                 const void *dev_table, const CatanetLrsaCudaScratch *s, const float *x,
                                 float *out);
/* the fp16 mode's whole LRSA with its LayerNorm and q, k, v made inside the attention kernel from x
 * (tensor cores; C <= 48, dqk <= 16, dv < 16: catanet_lrsa_fused_takes): no q, k, v pass. asum [H*W,heads*dv] is scratch;
 * cx->lrsa_x_fp16 / lrsa_asum_fp16 / lrsa_out_fp16 / attn_exp2_fma as for catanet_lrsa_attend_fwd_cuda.
 * Its kernel takes catanet_lrsa_fused_smem(ps) bytes of shared memory a block, more than the default:
 * catanet_lrsa_fused_setup raises the limit for patches up to max_ps once, outside any graph capture
 * (CATANET_ERR_UNSUPPORTED where the device cannot give that much) */
int catanet_lrsa_fused_takes(int c, int dqk, int dv); /* the shapes it takes */
size_t catanet_lrsa_fused_smem(int ps);
int catanet_lrsa_fused_setup(CatanetCudaCtx *cx, int max_ps);
int catanet_lrsa_fused_fwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                                const void *dev_table, float *asum, const float *x, float *out);

/* ---- frame.cu (twin: engine/forward_cpu.c's input staging) ----
 * in planar [3][in_h][in_w] -> xin NHWC [h][w][3] mirrored up to h x w (catanet_mirror_index),
 * and, when src_pad is not NULL, the mirrored planar frame [3][h][w] too */
int catanet_frame_in_fwd_cuda(CatanetCudaCtx *cx, int in_h, int in_w, int h, int w, const float *in,
                              float *xin, float *src_pad);

/* ---- image.cu (twin: engine/image.c) ---- strided device images <-> planar float RGB */
int catanet_image_to_rgb_cuda(CatanetCudaCtx *cx, const CatanetImage *im, float *rgb);
int catanet_image_from_rgb_cuda(CatanetCudaCtx *cx, const float *rgb, const CatanetImage *im);

/* ================= backward twins: the CUDA side of kernels.h's _bwd_ref ops =================
 * catanet_<op>_bwd_cuda takes the CPU twin's arguments (device pointers) and has its semantics:
 * gradients ACCUMULATE (+=) exactly where the CPU op accumulates (and are overwritten where it
 * overwrites: gate_branch's dr), NULL outputs are skipped where the CPU op allows NULL. Scratch
 * comes from cx->work (the *_bwd_cuda_work functions give the floats needed) or, where the CPU
 * op has a scratch argument (center_iter's dsum_work), from that argument.
 * Precision: always fp32 (backward GEMMs are plain cublasSgemm whatever cx->gemm_fp16 says);
 * reductions that the CPU does in double are done in double here too.
 * Determinism: no atomics anywhere. Weight gradients are cuBLAS GEMMs (bit-reproducible run to
 * run on one GPU model) or fixed-order reductions (reduce.cuh); scatter-adds (IASA keys, LRSA
 * patches, conv input gradients) are gathers or non-overlapping launches in a fixed order. Two
 * runs on one GPU give the same bits; the bits are not the CPU's (summation order differs), hence
 * the per-op tolerances of tests/test_twins.c. */

/* linear.cu: dx += dy w, dw += dy^T x (cuBLAS), db += column sums of dy (each may be NULL) */
int catanet_linear_bwd_cuda(CatanetCudaCtx *cx, int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db);

/* conv2d.cu: din via im2col of dout with flipped weights + GEMM, dwt via im2col + GEMM, both in
 * fixed chunks of CATANET_CUDA_CONV_BWD_ROWS pixels; dbias a column reduction. in != din. */
#define CATANET_CUDA_CONV_BWD_ROWS 8192
size_t catanet_conv2d_bwd_cuda_work(const CatanetConv2dArgs *a); /* floats of cx->work */
int catanet_conv2d_bwd_cuda(CatanetCudaCtx *cx, const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias);

/* dwconv.cu: din gathered per input pixel; dwt, dbias column reductions (din, dwt, dbias may be NULL) */
int catanet_dwconv_bwd_cuda(CatanetCudaCtx *cx, const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias);

/* layernorm.cu: the forward keeping mean/rstd [n] (twin of catanet_layernorm_fwd_stats_cpu), and
 * the backward (dx, dg, db may be NULL); c <= CATANET_MAX_DIM */
int catanet_layernorm_fwd_stats_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                                     const float *b, float *y, float *mean, float *rstd);
int catanet_layernorm_bwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, const float *g,
                               const float *mean, const float *rstd, const float *dy, float *dx, float *dg,
                               float *db);

/* activation.cu: dx += dy gelu'(x);  dx += dy lrelu'(y) (from the output, as the CPU twin) */
int catanet_gelu_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *x, const float *dy, float *dx);
int catanet_lrelu_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *y, const float *dy, float *dx);

/* pixel_shuffle.cu: din += the inverse permutation of dout */
int catanet_pixel_shuffle_bwd_cuda(CatanetCudaCtx *cx, const CatanetShuffleArgs *a, const float *dout,
                                   float *din);

/* center_iter.cu: dx += normalize backward (one warp per row, double dot); the differentiable
 * center step: dsum_work [M,C] device scratch, dxu [n,C] += dsum_work[bucket] (m <= CATANET_MAX_CENTERS) */
int catanet_normalize_bwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *y, const float *norm,
                               const float *dy, float *dx);
int catanet_center_iter_bwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const int32_t *bucket,
                                 const float *sum, const int32_t *count, const float *cu_out,
                                 const float *dcu_out, float *dsum_work, float *dxu);
/* center_iter.cu, the training-mode forwards (the _ref twins' bits: same sums, same order, no FMA):
 * y = normalize(x) per row, norm [n] (may be NULL); c0 [M,C] = the average-pool center init of
 * xn [B,N,C]; one k-means step of xu [n,C] on cu_in [M,C] -> bucket [n], sum [M,C], count [M],
 * cu_out [M,C] (must not alias cu_in). No scratch. */
int catanet_normalize_fwd_cuda(CatanetCudaCtx *cx, int n, int c, const float *x, float *y, float *norm);
int catanet_center_init_cuda(CatanetCudaCtx *cx, int batch, int n, int c, int m, const float *xn, float *c0);
int catanet_center_iter_fwd_cuda(CatanetCudaCtx *cx, int n, int c, int m, const float *xu, const float *cu_in,
                                 int32_t *bucket, float *sum, int32_t *count, float *cu_out);
/* the EMA of a TAB's `means` after a training step: means = 0.999 means + (1 - 0.999) xg, element-
 * wise (training/model_train.c's tab_update_means, the same bits) */
int catanet_center_ema_cuda(CatanetCudaCtx *cx, size_t n, float *means, const float *xg);

/* loss.cu: dout += scale sign(out - target) / n */
int catanet_l1_loss_bwd_cuda(CatanetCudaCtx *cx, size_t n, const float *out, const float *target, float scale,
                             float *dout);

/* adam.cu: torch.optim.Adam step t >= 1, elementwise; the same float operations as the CPU twin
 * with the contraction into FMAs disabled (__fmul_rn etc.), so the same bits */
int catanet_adam_update_cuda(CatanetCudaCtx *cx, size_t n, float *p, const float *g, float *m, float *v,
                             float lr, float b1, float b2, float eps, int64_t t);

/* fakd.cu: dfs [N,cs] += weight d loss / d fs; affinity rows in chunks of CATANET_CUDA_FAKD_ROWS
 * (cuBLAS), never N x N in memory */
#define CATANET_CUDA_FAKD_ROWS 512
size_t catanet_fakd_bwd_cuda_work(int n, int cs, int ct); /* floats of cx->work */
int catanet_fakd_bwd_cuda(CatanetCudaCtx *cx, int n, int cs, int ct, const float *fs, const float *ft,
                          float weight, float *dfs);

/* gumbel.cu: the depth-mask ops (k, l small: one block each for the first two) */
int catanet_gumbel_softmax_bwd_cuda(CatanetCudaCtx *cx, int k, const float *y_soft, const float *dy, float scale,
                                    float tau, float *dlogits);
int catanet_mask_compose_bwd_cuda(CatanetCudaCtx *cx, int k, int l, const float *opt, const float *dm, float *dy);
int catanet_gated_residual_bwd_cuda(CatanetCudaCtx *cx, int batch, size_t n, const float *m, const float *x,
                                    const float *gx, const float *dy, float *dx, float *dgx, float *dm);
int catanet_gate_branch_bwd_cuda(CatanetCudaCtx *cx, int batch, size_t n, const float *m, const float *r,
                                 const float *dy, float *dr, float *dm);

/* iasa.cu: softmaxes recomputed; per-query statistics and per-(subgroup, key) partial gradients
 * in cx->work, then gathered per token in a fixed order (dq, dk, dv, dkg, dvg accumulate) */
size_t catanet_iasa_bwd_cuda_work(const CatanetIasaArgs *a); /* floats of cx->work */
int catanet_iasa_bwd_cuda(CatanetCudaCtx *cx, const CatanetIasaArgs *a, const float *q, const float *k,
                          const float *v, const int32_t *ord, const float *kg, const float *vg,
                          const float *dout, float *dq, float *dk, float *dv, float *dkg, float *dvg);

/* lrsa.cu: activations recomputed from x; dev_table as for the forward; dx (!= x) and the weight
 * gradients accumulate; ps * ps <= 4096 */
size_t catanet_lrsa_bwd_cuda_work(const CatanetLrsaArgs *a); /* floats of cx->work */
int catanet_lrsa_bwd_cuda(CatanetCudaCtx *cx, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          const void *dev_table, const float *x, const float *dout, float *dx,
                          const CatanetLrsaGrads *g);

#ifdef __cplusplus
}
#endif

#endif /* CATANET_KERNELS_CUDA_H */
