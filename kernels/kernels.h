/*
 * kernels.h: every numerical op of CATANet, one file per op in kernels/cpu
 * (and its twin in kernels/cuda), forward and backward side by side.
 *
 * Naming: catanet_<op>_<fwd|bwd>_<ref|cpu|cuda>
 *   _ref  the plain reference: readable loops, the spec every other path is tested against
 *   _cpu  the fast CPU path used by default (OpenBLAS GEMMs, OpenMP); bit-identical for any
 *         thread count because work is split in fixed-size chunks, never by thread count
 *   _cuda the GPU twin (kernels/cuda), same argument struct
 *
 * Layouts: row-major, outermost first. The network body works on tokens:
 * NHWC, i.e. [B][H][W][C] with the channel contiguous ("[N,C]" with N = B*H*W).
 * The network's input and output images are planar NCHW ([B][3][H][W]).
 * Weights keep PyTorch's layouts: Linear [out][in], Conv2d [out][in/groups][kh][kw].
 * Backward functions accumulate (+=) into parameter gradients; the caller zeroes them.
 */
#ifndef CATANET_KERNELS_H
#define CATANET_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <omp.h>

/* upper bounds the reference paths use for stack buffers (checked when a model is loaded) */
#define CATANET_MAX_DIM 256
#define CATANET_MAX_CENTERS 1024
#define CATANET_MAX_GROUP_SIZE 4096

/* Scratch memory and threading for the fast CPU paths. `work` holds `threads`
 * slices of `work_per_thread` floats; a kernel documents what it needs per thread. */
typedef struct CatanetCpu {
    int threads;
    float *work;
    size_t work_per_thread;
} CatanetCpu;

/* Our parallel regions call the BLAS, which must then run on one thread whatever its build
 * (OpenMP, pthreads, serial): blas_threads.c says how. Call at the start of every region (or
 * function) that calls a GEMM. catanet_blas_describe names the BLAS build linked at run time. */
void catanet_blas_serial(void);
const char *catanet_blas_describe(void);
#define CATANET_BLAS_SERIAL() catanet_blas_serial()

/* ---------------- attention.c: fused softmax attention of a block of query rows ----------------
 * out[r][e] (+)= sum_t softmax_t(scale q_r . k_t) v_t[e] for r < rows, t < T, e < dv; q [rows][ldq],
 * keys [T][ldk], values [T][ldv]; accumulate: add into out instead of overwriting it.
 * lse (NULL: not wanted) gets each row's log sum_t exp(scale q_r . k_t), for a backward that needs
 * no second pass over the scores. work: 16 T floats (ref: T doubles). */
void catanet_attention_fwd_ref(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *k, int ldk, const float *v, int ldv, float *out, int ldo,
                               int accumulate, double *work, float *lse);
void catanet_attention_fwd_cpu(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                               const float *k, int ldk, const float *v, int ldv, float *out, int ldo,
                               int accumulate, float *work, float *lse);

/* Backward of the fused attention (dqk, dv <= 16) from the forward's output out and its lse,
 * given dA = dL/dout [rows][ldda]: writes dq = dL/dq (acc_dq: adds into dq); leaves the
 * probabilities and dL/dscores transposed in pt, dst [T][R], R = rows rounded up to 16, for the
 * caller's GEMMs dv += pt dA (over the rows) and dk += scale dst q. Only the scores are
 * recomputed. Returns R, or -1 for a shape it does not take (the caller then uses GEMMs).
 * pt, dst: T R floats each. */
#define CATANET_ATT_BWD_ROWS 64 /* the row block LRSA's backward gives it */
int catanet_attention_bwd_lse_cpu(int rows, int T, int dqk, int dv, float scale, const float *q, int ldq,
                                  const float *k, int ldk, const float *v, int ldv, const float *da, int ldda,
                                  const float *out, int ldo, const float *lse, float *dq, int lddq, int acc_dq,
                                  float *pt, float *dst);

/* rows per GEMM chunk in the fast paths: fixed, so results do not depend on the thread count */
#define CATANET_ROW_CHUNK 256

/* ---------------- linear.c: y[n][o] = sum_i x[n][i] w[o][i] + b[o] ---------------- */
void catanet_linear_fwd_ref(int n, int in, int out, const float *x, const float *w,
                            const float *b, float *y);
void catanet_linear_fwd_cpu(const CatanetCpu *cpu, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y);
/* dx (may be NULL) += dy w; dw += dy^T x; db (may be NULL) += sum_n dy */
void catanet_linear_bwd_ref(int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db);
/* the same, OpenBLAS + OpenMP; bit-identical for any thread count */
void catanet_linear_bwd_cpu(const CatanetCpu *cpu, int n, int in, int out, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db);

/* ---------------- conv2d.c: dense KxK conv, stride 1, zero padding K/2, NHWC ---------------- */
typedef struct CatanetConv2dArgs {
    int batch, h, w;      /* in and out spatial size */
    int cin, cout, ksize; /* ksize odd */
} CatanetConv2dArgs;
/* in [B,H,W,cin], wt [cout,cin,k,k], bias [cout] or NULL -> out [B,H,W,cout] */
void catanet_conv2d_fwd_ref(const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *bias, float *out);
/* per thread: CATANET_ROW_CHUNK * cin * k * k floats */
size_t catanet_conv2d_work(const CatanetConv2dArgs *a);
void catanet_conv2d_fwd_cpu(const CatanetCpu *cpu, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);
void catanet_conv2d_bwd_ref(const CatanetConv2dArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias);
/* fast backward: cpu->work needs catanet_conv2d_bwd_work per thread, scratch
 * catanet_conv2d_bwd_scratch floats (shared) */
size_t catanet_conv2d_bwd_work(const CatanetConv2dArgs *a);
size_t catanet_conv2d_bwd_scratch(const CatanetConv2dArgs *a);
void catanet_conv2d_bwd_cpu(const CatanetCpu *cpu, const CatanetConv2dArgs *a, const float *in,
                            const float *wt, const float *dout, float *din, float *dwt,
                            float *dbias, float *scratch);

/* ---------------- dwconv.c: depthwise KxK conv, zero padding K/2, NHWC ---------------- */
typedef struct CatanetDwconvArgs {
    int batch, h, w, c, ksize;
} CatanetDwconvArgs;
/* in [B,H,W,C], wt [C,1,k,k], bias [C] -> out [B,H,W,C] */
void catanet_dwconv_fwd_ref(const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *bias, float *out);
void catanet_dwconv_fwd_cpu(const CatanetCpu *cpu, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *bias, float *out);
/* the fast rows' weights as [tap][channel] (wt [C,1,k,k] -> wtt [k k, C]); -1 when C k k is over
 * CATANET_DW_MAX_WEIGHTS, the largest copy the callers keep on their stack */
#define CATANET_DW_MAX_WEIGHTS 16384
int catanet_dwconv_taps(const CatanetDwconvArgs *a, const float *wt, float *wtt);
/* one output row y of one image img [H,W,C] -> orow [W,C], with wtt from catanet_dwconv_taps */
void catanet_dwconv_row_cpu(const CatanetDwconvArgs *a, int y, const float *img, const float *wtt,
                            const float *bias, float *orow);
void catanet_dwconv_bwd_ref(const CatanetDwconvArgs *a, const float *in, const float *wt,
                            const float *dout, float *din, float *dwt, float *dbias);
size_t catanet_dwconv_bwd_scratch(const CatanetDwconvArgs *a);
void catanet_dwconv_bwd_cpu(const CatanetCpu *cpu, const CatanetDwconvArgs *a, const float *in,
                            const float *wt, const float *dout, float *din, float *dwt,
                            float *dbias, float *scratch);

/* ---------------- layernorm.c: over the last dim C, eps 1e-5, affine ---------------- */
#define CATANET_LN_EPS 1e-5f
/* x [N,C] -> y [N,C]; mean/rstd [N] may be NULL (kept for backward) */
void catanet_layernorm_fwd_ref(int n, int c, const float *x, const float *g, const float *b,
                               float *y, float *mean, float *rstd);
/* the fast rows on the calling thread (for callers' own parallel tasks) */
void catanet_layernorm_fwd_serial_cpu(int n, int c, const float *x, const float *g, const float *b, float *y,
                                      float *mean, float *rstd);
void catanet_layernorm_bwd_serial_cpu(int n, int c, const float *x, const float *g, const float *mean,
                                      const float *rstd, const float *dy, float *dx, float *dg, float *db);
void catanet_layernorm_fwd_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                               const float *g, const float *b, float *y);
void catanet_layernorm_bwd_ref(int n, int c, const float *x, const float *g, const float *mean,
                               const float *rstd, const float *dy, float *dx, float *dg, float *db);
void catanet_layernorm_fwd_stats_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                                     const float *g, const float *b, float *y, float *mean,
                                     float *rstd);
size_t catanet_layernorm_bwd_scratch(int n, int c);
void catanet_layernorm_bwd_cpu(const CatanetCpu *cpu, int n, int c, const float *x,
                               const float *g, const float *mean, const float *rstd,
                               const float *dy, float *dx, float *dg, float *db, float *scratch);

/* ---------------- activation.c: exact GELU, LeakyReLU(0.1) ---------------- */
float catanet_gelu(float x);
void catanet_gelu_fwd_ref(size_t n, const float *x, float *y);
/* vectorised erf (|error| <= 1.5e-7): the fast path */
void catanet_gelu_fwd_cpu(size_t n, const float *x, float *y);
void catanet_gelu_bwd_ref(size_t n, const float *x, const float *dy, float *dx);
/* fast twin of catanet_gelu_bwd_ref (vectorised erf/exp, as catanet_gelu_fwd_cpu) */
void catanet_gelu_bwd_cpu(size_t n, const float *x, const float *dy, float *dx);
#define CATANET_LRELU_SLOPE 0.1f
void catanet_lrelu_fwd_ref(size_t n, const float *x, float *y);
void catanet_lrelu_bwd_ref(size_t n, const float *y, const float *dy, float *dx);

/* ---------------- convffn.c: the ConvFFN with its PreNorm and residual, one op ---------------- */
typedef struct CatanetConvffnArgs {
    int h, w, dim, hidden; /* one image of h x w tokens; hidden: fc1's outputs (mlp_dim) */
} CatanetConvffnArgs;
typedef struct CatanetConvffnWeights {
    const float *norm_w, *norm_b; /* [dim] */
    const float *fc1_w, *fc1_b;   /* [hidden, dim], [hidden] */
    const float *dw_w, *dw_b;     /* [hidden, 1, 5, 5], [hidden] */
    const float *fc2_w, *fc2_b;   /* [dim, hidden], [dim] */
} CatanetConvffnWeights;
/* x [H,W,dim] += fc2(a + gelu(dwconv5x5(a))), a = gelu(fc1(LN(x))); scratch t [H W, dim], h and
 * hd [H W, hidden] */
void catanet_convffn_fwd_ref(const CatanetConvffnArgs *a, const CatanetConvffnWeights *w, float *x, float *t,
                             float *h, float *hd);
/* The fast twin in two passes over the image instead of eight: row chunks (LayerNorm, fc1, GELU
 * into h [H W, hidden]), then image rows (depthwise conv, GELU, + a, fc2, + x) on the row while
 * it is in cache. Per thread cpu->work_per_thread >= catanet_convffn_work(a) floats; -1 when
 * the depthwise weights are wider than CATANET_DW_MAX_WEIGHTS (nothing done). */
size_t catanet_convffn_work(const CatanetConvffnArgs *a);
int catanet_convffn_fwd_cpu(const CatanetCpu *cpu, const CatanetConvffnArgs *a, const CatanetConvffnWeights *w,
                            float *x, float *h);

/* ---------------- pixel_shuffle.c (NHWC) ----------------
 * out[b][h*r+i][w*r+j][c] = in[b][h][w][c*r*r + i*r + j]   (PyTorch PixelShuffle, in NHWC) */
typedef struct CatanetShuffleArgs {
    int batch, h, w, c, r; /* h, w: input size; c: output channels */
} CatanetShuffleArgs;
void catanet_pixel_shuffle_fwd_ref(const CatanetShuffleArgs *a, const float *in, float *out);
void catanet_pixel_shuffle_bwd_ref(const CatanetShuffleArgs *a, const float *dout, float *din);

/* ---------------- bilinear.c: PyTorch bilinear, align_corners=False, integer scale, NCHW planes ---------------- */
/* in [P][H][W] -> out [P][sH][sW] (P planes) */
void catanet_bilinear_fwd_ref(int planes, int h, int w, int s, const float *in, float *out);

/* ---------------- softmax.c: rows of s [rows,len] -> softmax, fast vectorisable exp (within 2 ulp) */
void catanet_softmax_rows_cpu(int rows, int len, float *s);
void catanet_softmax_bwd_rows_cpu(int rows, int len, const float *p, float *d);

/* ---------------- cluster.c: token -> nearest center (cosine), stable sort by center ----------------
 * xn [N,C] (LayerNorm output), centers [M,C] raw.
 * cid[n] = first argmax_j <xn_n/|xn_n|, c_j/|c_j|>; ord = stable argsort of cid (counting sort).
 * The similarity uses the normalised vectors and float accumulation in a fixed order. */
void catanet_cluster_fwd_ref(int n, int c, int m, const float *xn, const float *centers,
                             int32_t *cid, int32_t *ord);
/* per thread: catanet_cluster_work(c, m) floats */
size_t catanet_cluster_work(int c, int m);
void catanet_cluster_fwd_cpu(const CatanetCpu *cpu, int n, int c, int m, const float *xn,
                             const float *centers, int32_t *cid, int32_t *ord);

/* ---------------- iasa.c: intra-group self-attention + inter-group cross-attention ----------------
 * One image. q,k [N, heads*dqk], v [N, heads*dv] in token order; ord [N] the cluster sort;
 * kg [M, heads*dqk], vg [M, heads*dv] from the centers.
 * For the sorted sequence, subgroups of gs = min(N, group_size) tokens attend to their own and
 * the next subgroup's keys (mirror-padded past N), plus, in a separate softmax, to the M centers;
 * the two outputs are summed, heads merged, and scattered back to token order: out [N, heads*dv].
 * Scale 1/sqrt(dqk). */
typedef struct CatanetIasaArgs {
    int n, group_size, m, heads, dqk, dv;
} CatanetIasaArgs;
/* symmetric mirror extension of [0,n): i -> i for i < n, n-1-(i-n) beyond, reflecting again
 * as often as needed (the reference stops after one reflection and crashes; see docs) */
int catanet_mirror_index(int64_t i, int n);
void catanet_iasa_fwd_ref(const CatanetIasaArgs *a, const float *q, const float *k, const float *v,
                          const int32_t *ord, const float *kg, const float *vg, float *out);
/* per thread: see catanet_iasa_work. saved (NULL outside training): catanet_iasa_saved floats,
 * what the fast backward needs besides out (the window's output, both softmaxes' log-sum-exps) */
size_t catanet_iasa_work(const CatanetIasaArgs *a);
size_t catanet_iasa_saved(const CatanetIasaArgs *a);
void catanet_iasa_fwd_cpu(const CatanetCpu *cpu, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, float *out, float *saved);
/* Backward: dq, dk, dv [N,...] and dkg, dvg [M,...] accumulate (the reference recomputes the forward).
 * Every copy of a key/value (two windows, mirror duplicates) adds into its token. */
void catanet_iasa_bwd_ref(const CatanetIasaArgs *a, const float *q, const float *k, const float *v,
                          const int32_t *ord, const float *kg, const float *vg, const float *dout,
                          float *dq, float *dk, float *dv, float *dkg, float *dvg);
/* the fast backward from the forward's out and saved (catanet_iasa_fwd_cpu): only the scores
 * are recomputed. per thread: catanet_iasa_bwd_work; task_work: catanet_iasa_bwd_task_work floats */
size_t catanet_iasa_bwd_work(const CatanetIasaArgs *a);
size_t catanet_iasa_bwd_task_work(const CatanetIasaArgs *a);
void catanet_iasa_bwd_cpu(const CatanetCpu *cpu, const CatanetIasaArgs *a, const float *q,
                          const float *k, const float *v, const int32_t *ord, const float *kg,
                          const float *vg, const float *out, const float *saved, const float *dout, float *dq,
                          float *dk, float *dv, float *dkg, float *dvg, float *task_work);

/* ---------------- lrsa.c: local-region self-attention over overlapping patches ----------------
 * One image x [H,W,C] (NHWC). For each ps x ps patch P (step ps-2, last one shifted to the edge):
 * P + proj(MHSA(LN(P))), summed into out, then the official band halving (spec §1.4), so
 * out = x-weighted sum of the patch results. Requires H, W >= ps. */
typedef struct CatanetLrsaArgs {
    int h, w, c, ps, heads, dqk, dv;
} CatanetLrsaArgs;
typedef struct CatanetLrsaWeights {
    const float *norm_w, *norm_b; /* [C] */
    const float *wq, *wk;         /* [heads*dqk, C] */
    const float *wv;              /* [heads*dv, C] */
    const float *wproj;           /* [C, heads*dv] */
} CatanetLrsaWeights;
/* patch start positions along a side of length len (official patch_divide); returns the count */
int catanet_lrsa_starts(int len, int ps, int *starts, int max_starts);
/* per-row (or column) weight after the official band halving (0.5, 0.25, 0.75 quirk...) */
void catanet_lrsa_band_weights(int len, int ps, float *weight);
void catanet_lrsa_fwd_ref(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                          float *out);
size_t catanet_lrsa_work(const CatanetLrsaArgs *a);
void catanet_lrsa_fwd_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a,
                          const CatanetLrsaWeights *wt, const float *x, float *out);

/* Backward: dx and the weight gradients accumulate; the band factors apply to dout, patch
 * gradients scatter-add into dx. The reference recomputes the activations from x. */
typedef struct CatanetLrsaGrads {
    float *norm_w, *norm_b, *wq, *wk, *wv, *wproj;
} CatanetLrsaGrads;
void catanet_lrsa_bwd_ref(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, const float *x,
                          const float *dout, float *dx, const CatanetLrsaGrads *g);
/* Training on a batch x [B,H,W,C], one patch per task: the forward computes what
 * catanet_lrsa_fwd_cpu does and keeps per patch what the backward needs (Q, K, V, the attention
 * output and its log-sum-exp: catanet_lrsa_saved floats per image), so that the backward
 * recomputes only the LayerNorm and the scores. per thread: catanet_lrsa_train_work floats;
 * task_work: batch * catanet_lrsa_task_work floats; H, W <= 4096. */
size_t catanet_lrsa_saved(const CatanetLrsaArgs *a);
size_t catanet_lrsa_train_work(const CatanetLrsaArgs *a);
size_t catanet_lrsa_task_work(const CatanetLrsaArgs *a);
void catanet_lrsa_fwd_train_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                                int batch, const float *x, float *out, float *saved, float *task_work);
void catanet_lrsa_bwd_cpu(const CatanetCpu *cpu, const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt,
                          int batch, const float *x, const float *saved, const float *dout, float *dx,
                          const CatanetLrsaGrads *g, float *task_work);

/* ---------------- center_iter.c: token centers in training mode (spec §1.3, §1.7) ---------------- */
#define CATANET_NORM_EPS 1e-12 /* F.normalize */
/* y = x / max(|x|, eps) per row of [n,c]; norm [n] = |x| (may be NULL) */
void catanet_normalize_fwd_ref(int n, int c, const float *x, float *y, float *norm);
/* dx += (dy - y (y.dy)) / |x|  (dy / eps below eps) */
void catanet_normalize_bwd_ref(int n, int c, const float *y, const float *norm, const float *dy,
                               float *dx);
/* first training step: average pooling of xn [B,N,C] over M mirror-padded raster chunks,
 * pooled over the batch -> c0 [M,C] */
void catanet_center_init_ref(int batch, int n, int c, int m, const float *xn, float *c0);
/* one hard k-means step on the unit sphere pooled over all n = B*N tokens:
 * xu [n,C] unit tokens, cu_in [M,C] unit centers -> bucket [n], count [M], sum [M,C],
 * cu_out [M,C] = normalize(sum) (cu_in where count == 0) */
void catanet_center_iter_fwd_ref(int n, int c, int m, const float *xu, const float *cu_in,
                                 int32_t *bucket, float *sum, int32_t *count, float *cu_out);
size_t catanet_center_iter_work(int m); /* per thread, fast path */
void catanet_center_iter_fwd_cpu(const CatanetCpu *cpu, int n, int c, int m, const float *xu,
                                 const float *cu_in, int32_t *bucket, float *sum, int32_t *count,
                                 float *cu_out);
/* dxu [n,C] += gradient through cu_out = normalize(sum) (the differentiable fifth step);
 * dsum_work [M,C] scratch */
void catanet_center_iter_bwd_ref(int n, int c, int m, const int32_t *bucket, const float *sum,
                                 const int32_t *count, const float *cu_out, const float *dcu_out,
                                 float *dsum_work, float *dxu);

/* ---------------- loss.c: L1 (mean absolute error) ---------------- */
double catanet_l1_loss_fwd_ref(size_t n, const float *out, const float *target);
/* dout += scale * sign(out - target) / n */
void catanet_l1_loss_bwd_ref(size_t n, const float *out, const float *target, float scale,
                             float *dout);

/* ---------------- adam.c: torch.optim.Adam step t >= 1 (no weight decay) ---------------- */
void catanet_adam_update_ref(size_t n, float *p, const float *g, float *m, float *v, float lr,
                             float b1, float b2, float eps, int64_t t);

/* ---------------- fakd.c: FAKD spatial-affinity loss, one image (training-spec §1, §5.5) ----------------
 * fs [N,cs] student, ft [N,ct] teacher features (NHWC tokens). U = rows normalised (F.normalize),
 * A = U U^T [N,N]; loss = mean_{i,j} |A_s - A_t|. The _cpu paths tile A (never N x N in memory). */
double catanet_fakd_fwd_ref(int n, int cs, int ct, const float *fs, const float *ft, float *work);
/* dfs += weight * d loss/d fs; work: N*(2cs+ct+2) floats */
void catanet_fakd_bwd_ref(int n, int cs, int ct, const float *fs, const float *ft, float weight, float *dfs,
                          float *work);
/* work for both fast paths (floats, shared by the threads) */
size_t catanet_fakd_work(int n, int cs, int ct, int threads);
double catanet_fakd_fwd_cpu(int threads, int n, int cs, int ct, const float *fs, const float *ft, float *work);
void catanet_fakd_bwd_cpu(int threads, int n, int cs, int ct, const float *fs, const float *ft, float weight,
                          float *dfs, float *work);

/* ---------------- gumbel.c: learnable depth masks (hard Gumbel-softmax, straight-through) ---------------- */
/* k Gumbel(0,1) samples from a caller-owned splitmix64 state */
void catanet_gumbel_noise(uint64_t *state, int k, float *g);
/* y_soft = softmax((scale*logits + noise)/tau) (noise may be NULL); returns argmax = the hard sample */
int catanet_gumbel_softmax_fwd_ref(int k, const float *logits, const float *noise, float scale, float tau,
                                   float *y_soft);
/* straight-through: dlogits += (scale/tau) y_soft (dy - <y_soft,dy>), dy = d loss / d (hard one-hot) */
void catanet_gumbel_softmax_bwd_ref(int k, const float *y_soft, const float *dy, float scale, float tau,
                                    float *dlogits);
/* m [l] = y^T opt (opt [k][l] candidate masks); backward dy [k] += opt dm */
void catanet_mask_compose_fwd_ref(int k, int l, const float *y, const float *opt, float *m);
void catanet_mask_compose_bwd_ref(int k, int l, const float *opt, const float *dm, float *dy);
/* per image b of n values: y = x + m[b] (gx - x); backward dx += (1-m) dy, dgx += m dy,
 * dm[b] += sum dy (gx - x) (outputs may be NULL) */
void catanet_gated_residual_fwd_ref(int batch, size_t n, const float *m, const float *x, const float *gx, float *y);
void catanet_gated_residual_bwd_ref(int batch, size_t n, const float *m, const float *x, const float *gx,
                                    const float *dy, float *dx, float *dgx, float *dm);
/* branch form y = x + m[b] r (r = gx - x); backward dr = m dy (overwritten), dm[b] += sum dy r */
void catanet_gate_branch_fwd_ref(int batch, size_t n, const float *m, const float *x, const float *r, float *y);
void catanet_gate_branch_bwd_ref(int batch, size_t n, const float *m, const float *r, const float *dy, float *dr,
                                 float *dm);

#endif /* CATANET_KERNELS_H */
