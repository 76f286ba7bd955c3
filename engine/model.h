/*
 * model.h: a CATANet network as data: the architecture (CatanetModelInfo) and one arena of
 * float32 tensors with the official names, bound to per-module pointers. Shared by the
 * engine (inference) and the training module (which adds gradient and optimizer arenas of
 * the same layout: tensor i sits at the same offset in each).
 */
#ifndef CATANET_MODEL_H
#define CATANET_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "catanet.h"

#define CATANET_NAME_MAX 96
#define CATANET_ARCH_KEY "catanet_arch" /* __metadata__ key holding the architecture JSON */

typedef struct CatanetTensorDef {
    char name[CATANET_NAME_MAX];
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset;      /* in floats, into the arena */
    int is_buffer;      /* `means`: state, not a learnable parameter */
} CatanetTensorDef;

/* ConvFFN with its PreNorm LayerNorm */
typedef struct CatanetFfnW {
    float *norm_w, *norm_b, *fc1_w, *fc1_b, *dw_w, *dw_b, *fc2_w, *fc2_b;
} CatanetFfnW;

typedef struct CatanetTabW {
    float *means;                      /* [M, dim] */
    float *norm_w, *norm_b;
    CatanetFfnW mlp;
    float *irca_k, *irca_v;            /* [qk, dim], [dim, dim] */
    float *q, *k, *v, *proj;           /* [qk, dim] x2, [dim, dim] x2 */
    float *conv1x1;                    /* [dim, dim, 1, 1] */
} CatanetTabW;

typedef struct CatanetLrsaW {
    float *norm_w, *norm_b, *q, *k, *v, *proj;
    CatanetFfnW ffn;
} CatanetLrsaW;

typedef struct CatanetGroupW {
    CatanetTabW tab;
    CatanetLrsaW lrsa;
    float *mid_w, *mid_b;              /* [dim, dim, 3, 3], [dim] */
} CatanetGroupW;

typedef struct CatanetModel {
    CatanetModelInfo info;
    int n_tensors;
    CatanetTensorDef *tensors;
    float *arena;
    size_t arena_floats;
    uint8_t initted[CATANET_MAX_GROUPS]; /* the `initted` bool buffers */
    float *first_w, *first_b;
    CatanetGroupW *groups;
    float *up_w[2], *up_b[2];          /* upconv (x2, x3) or upconv1/upconv2 (x4); NULL for x1 */
    float *last_w, *last_b;
} CatanetModel;

/* Checks an architecture; err gets the reason. */
int catanet_arch_validate(const CatanetModelInfo *info, char *err, size_t es);
/* The official CATANet-L configuration for a scale (1..4). */
void catanet_arch_default(CatanetModelInfo *info, int upscale);
/* JSON text of an architecture (caller frees), and its parser. */
char *catanet_arch_to_json(const CatanetModelInfo *info);
int catanet_arch_from_json(CatanetModelInfo *info, const char *json, char *err, size_t es);

/* Builds the tensor table and a zeroed arena for an architecture. */
int catanet_model_create(CatanetModel **out, const CatanetModelInfo *info, char *err, size_t es);
/* Loads a model (a name or a path: catanet_model_resolve; safetensors or an official .pth checkpoint,
 * told apart by content): architecture from metadata (or inferred from shapes), every tensor
 * checked for presence, shape and finiteness. */
int catanet_model_load(CatanetModel **out, const char *path, char *err, size_t es);
/* The same from an already parsed container (a safetensors file or a converted .pth); what names
 * the source in messages. The model copies the data: st may be closed afterwards. */
struct CatanetSt;
int catanet_model_from_st(CatanetModel **out, const struct CatanetSt *st, const char *what, char *err, size_t es);
/* Writes the model (official names) with the architecture in metadata plus extra key/values. */
int catanet_model_save(const CatanetModel *m, const char *path, const char *const *keys,
                       const char *const *vals, int n_extra, char *err, size_t es);
/* The model's tensors as write entries in the official order (each TAB's `initted` BOOL right after
 * its `means`). e needs n_tensors + num_groups slots, initted_names num_groups names (the entries
 * point into them, into m's arena and into m->initted). Returns the number of entries. */
struct CatanetStEntry;
int catanet_model_entries(const CatanetModel *m, struct CatanetStEntry *e, char (*initted_names)[CATANET_NAME_MAX]);
void catanet_model_free(CatanetModel *m);
/* Model surgery: a model made of src's residual groups keep[0..n_keep) in that order, each with its
 * own num_tokens, group_size, patch_size, weights, `means` and `initted`; everything outside the
 * groups (first_conv, upsampler, last_conv) is copied; each mid_conv follows its group. */
int catanet_model_extract(CatanetModel **out, const CatanetModel *src, const int *keep, int n_keep, char *err,
                          size_t es);
/* Fine-tuning to another scale or width: every tensor of dst with the same name and shape in src is
 * copied from it (with the groups' `initted`), the rest of dst is left as it is (freshly initialised
 * by the caller). For an x4 dst from an x2 src, upconv1 comes from src's upconv: the x2 upsampler is
 * the first of x4's two conv + shuffle-by-2 stages. Returns the number of tensors copied. */
int catanet_model_copy_matching(CatanetModel *dst, const CatanetModel *src);
const CatanetTensorDef *catanet_model_find(const CatanetModel *m, const char *name);

#endif
