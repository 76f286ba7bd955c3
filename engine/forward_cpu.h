/*
 * forward_cpu.h: the CATANet eval-mode forward on the CPU, with memory planned once per size.
 */
#ifndef CATANET_FORWARD_CPU_H
#define CATANET_FORWARD_CPU_H

#include <stdint.h>

#include "kernels.h"
#include "model.h"

typedef struct CatanetCpuPlan {
    int in_w, in_h;        /* the caller's frame */
    int w, h;              /* the network's frame: the caller's, mirrored up to the minimum side */
    int scale;
    int use_ref;           /* run the plain reference ops (tests) instead of the fast ones */
    CatanetCpu cpu;
    const CatanetModel *model;
    float **kg, **vg;      /* per group: centers through IRCA's to_k / to_v, [M,qk], [M,dim] */
    /* activations, [N, ...] with N = w*h (NHWC) */
    float *in_pad;         /* planar [3][h][w] (only when padding) */
    float *out_pad;        /* planar [3][s h][s w] (only when padding) */
    float *xin, *f0, *f, *res, *t1, *q, *k, *v, *att, *y, *a, *d;
    int32_t *cid, *ord;
    float *u, *us, *out;   /* upsampler: conv output, shuffled, last conv output (NHWC) */
    float *block;          /* the one allocation behind all of the above */
    float *kgvg_mem;       /* behind kg/vg */
    size_t block_floats, kgvg_floats;
} CatanetCpuPlan;

/* smallest input side the network runs on: the largest patch size (spec §1.8) */
int catanet_min_side(const CatanetModelInfo *info);

int catanet_cpu_plan_create(CatanetCpuPlan **out, const CatanetModel *m, int width, int height,
                            int threads, char *err, size_t es);
void catanet_cpu_plan_free(CatanetCpuPlan *p);
/* host bytes the plan holds */
int64_t catanet_cpu_plan_bytes(const CatanetCpuPlan *p);
/* in: planar [3][in_h][in_w]; out: planar [3][s in_h][s in_w] (unclamped) */
void catanet_cpu_forward(CatanetCpuPlan *p, const float *in, float *out);

/* Per-stage activations for tests: called after each stage with the NHWC [N,C] tensor
 * (N = w*h at the stage's resolution). */
typedef void (*CatanetActHook)(void *opaque, const char *name, const float *x, int h, int w, int c);
void catanet_cpu_forward_hooked(CatanetCpuPlan *p, const float *in, float *out, CatanetActHook hook,
                                void *opaque);

#endif
