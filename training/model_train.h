/*
 * model_train.h: CATANet in training mode on a batch (spec §1.3 training-mode TAB, §1.7):
 * a forward that keeps every activation the backward needs in one arena planned from
 * (batch, patch size, architecture), the L1 loss, and the backward in exact mirror order,
 * accumulating into a gradient model (a CatanetModel of the same architecture whose arena
 * holds the gradients at the same offsets as the weights).
 */
#ifndef CATANET_MODEL_TRAIN_H
#define CATANET_MODEL_TRAIN_H

#include <stdint.h>

#include "kernels.h"
#include "model.h"

typedef struct CatanetFfnAct {
    float *ln, *mean, *rstd;   /* LayerNorm output and statistics [BN,C], [BN], [BN] */
    float *a, *d;              /* fc1 and depthwise conv pre-activations [BN,mlp] */
} CatanetFfnAct;

typedef struct CatanetGroupAct {
    /* TAB */
    float *tab_in;             /* [BN,C] the group's input (also the residual) */
    float *xn, *xn_mean, *xn_rstd;
    float *xu, *xu_norm;       /* normalize(xn) and |xn| */
    float *xg, *sum5;          /* [M,C] refined unit centers (5th step) and their member sums */
    int32_t *bucket5, *count5; /* [BN], [M] */
    float *kg, *vg;            /* [M,qk], [M,C] */
    int32_t *ord;              /* [BN] per image, indices within the image */
    float *q, *k, *v, *att, *y1; /* [BN,qk] x2, [BN,C] x3: IASA output and proj output */
    float *t2;                 /* [BN,C] after the attention residual */
    CatanetFfnAct ffn1;
    /* LRSA */
    float *lrsa_in;            /* [BN,C] the TAB output */
    float *x1;                 /* [BN,C] after the patch attention */
    CatanetFfnAct ffn2;
    float *mid_in;             /* [BN,C] the LRSA output */
    float *iasa_saved, *lrsa_saved; /* what the fast IASA and LRSA forwards keep for their backward
                                * (catanet_iasa_saved, catanet_lrsa_saved per image; in saved_block,
                                * not in the layout) */
} CatanetGroupAct;

typedef struct CatanetTrainPlan {
    CatanetModel *model;       /* weights and `means` buffers (updated by the forward's EMA) */
    int batch, h, w, scale;
    int use_ref;               /* plain reference ops (tests) instead of the fast paths */
    CatanetCpu cpu;
    float *scratch;            /* shared scratch of the fast backward ops */
    size_t scratch_floats;
    float *saved_block;        /* the groups' iasa_saved and lrsa_saved (fast CPU path only) */
    CatanetGroupAct *g;
    float *xin, *f0, *fsum;    /* [BN,3], [BN,C], [BN,C] */
    float *up_in[2], *up_u[2], *up_s[2]; /* upsampler stage input, conv output, shuffled+lrelu */
    float *feat;               /* input of last_conv (up_s[last] or fsum) */
    float *out_nhwc;           /* [B*sN,3] last_conv output */
    float *out;                /* [B,3,sH,sW] network output */
    /* temporaries, reused by every group (forward and backward) */
    float *tm[4];              /* [BN,mlp] */
    float *tc[4];              /* [BN,C] */
    float *dq, *dk, *dv;       /* [BN,qk], [BN,qk], [BN,C] */
    float *dkg, *dvg, *dxg, *cwork, *c0; /* [M,qk], [M,C], [M,C], [M,C], [M,C] */
    float *dbig[2];            /* [B*sN*C]-sized gradient buffers for the upsampler */
    float *dout;               /* [B*sN,3] */
    float *block;
    int32_t *count_tmp, *bucket_tmp;
    double loss;
    /* ---- hooks for depth pruning and distillation (training/prune.c, distill.c). All NULL/0 by
     * default except hr_weight = 1, which leaves the forward and backward above unchanged. ---- */
    const float *gate;         /* [G][B] per-image gates m: h_{g+1} = h_g + m * branch_g(h_g); NULL = 1 */
    float *dgate;              /* [G][B] the backward accumulates d loss / d m here (when gate is set) */
    float *body_out;           /* [BN,C] the forward copies the body's output (before the long skip) here */
    float **dfeat;             /* [G+1] NULL-able [BN,C] gradients the backward adds: [g] w.r.t. group g's
                                * input h_g (g->tab_in), [G] w.r.t. the body's output */
    const float *kd_target;    /* [B,3,sH,sW]: the backward adds kd_weight * d L1(out, kd_target) */
    float hr_weight, kd_weight;
} CatanetTrainPlan;

int catanet_train_plan_create(CatanetTrainPlan **out, CatanetModel *m, int batch, int h, int w,
                              int threads, int use_ref, char *err, size_t es);
void catanet_train_plan_free(CatanetTrainPlan *p);

/* The buffer layout of a training step, shared with the device plan (model_train_cuda.c): sets
 * p->g[*] and every activation/temporary pointer above (not model, use_ref, cpu, scratch, block,
 * the attentions' saved activations or the hooks) to slices of one block at base, each rounded up to `align` floats (a power of two),
 * from p->model's architecture and p->batch, h, w, scale; base NULL only counts. Returns the
 * floats the block needs. The pointers may be device addresses: nothing is dereferenced. */
size_t catanet_train_plan_layout(CatanetTrainPlan *p, float *base, size_t align);

/* The five 3x3 convolution shapes of a training step (first, mid, upconv, the x4 second upconv,
 * last), for sizing the CPU and the device work areas alike */
void catanet_train_conv_shapes(const CatanetModelInfo *a, int batch, int h, int w, CatanetConv2dArgs convs[5]);

/* Training-mode forward of lr [B,3,h,w] (NCHW, [0,1]): p->out gets [B,3,sh,sw]. Updates the
 * `means` buffers (EMA 0.999, or set on the first step) and `initted`. When hr is not NULL
 * returns the L1 loss against hr [B,3,sh,sw] (else 0). */
double catanet_train_forward(CatanetTrainPlan *p, const float *lr, const float *hr);

/* Backward of the L1 loss of the last forward (hr as given to it); gradients accumulate into
 * grads (a model of the same architecture; its `means` slots are left alone). */
void catanet_train_backward(CatanetTrainPlan *p, const float *hr, CatanetModel *grads);

/* Initialisation from scratch, spec §1.5: Linear weights trunc_normal(std 0.02, bounds +-2) and
 * biases 0; LayerNorm 1 and 0; convolutions PyTorch's default (U(+-1/sqrt(fan_in)) for weight and
 * bias); `means` randn; `initted` False. Deterministic in seed. */
void catanet_train_init_weights(CatanetModel *m, uint64_t seed);
/* uniform in (0,1) from a splitmix64 state */
double catanet_train_rng_uniform(uint64_t *state);

/* zero every tensor of a model arena */
void catanet_model_zero(CatanetModel *m);

#endif
