/*
 * prune.h: learnable depth pruning of CATANet's residual groups (TinyFusion / TinySR,
 * training-spec §2, §5.2-5.4) and the model surgery command.
 *
 * Unit: a whole residual group, gated on its residual, h_{g+1} = h_g + m_g * branch_g(h_g)
 * (= h_g + m_g (group_g(h_g) - h_g)), every group computed so that every gate gets a gradient.
 * Parameterisation: option A of §5.2, one flat categorical over all C(G,K) subsets of K kept
 * groups (70 candidates at most for 8 groups), sampled per image with the hard Gumbel-softmax
 * and the straight-through gradient; logits scaled by 100, tau linear 4 -> 0.1 over the global
 * step, logits lr 10x the weights', an EMA of the logits gives the decision. The weights of the
 * masked model are fine-tuned together (full fine-tuning, the recoverability estimate ΔΦ) and
 * thrown away at the end: the student is extracted from the original teacher.
 *
 * The library functions return 0 or a negative CatanetError and report through a log callback.
 *
 * defines: CatanetPruneCand, catanet_prune_candidates, catanet_prune_main, catanet_extract_main,
 *          and helpers shared with distill.c (catanet_kd_*).
 */
#ifndef CATANET_TRAINING_PRUNE_H
#define CATANET_TRAINING_PRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "catanet.h"
#include "model.h"

typedef struct CatanetPruneCand {
    int n_keep;
    int keep[CATANET_MAX_GROUPS];  /* kept group indices, ascending */
    int64_t params;                /* learnable parameters of the extracted student */
} CatanetPruneCand;

/* Every K-subset of the teacher's groups in lexicographic order (itertools.combinations), with the
 * parameter count of its student (built with catanet_model_create); only those with params <=
 * max_params (<= 0: no limit) are kept. *out is malloc'd. */
int catanet_prune_candidates(const CatanetModelInfo *teacher, int n_keep, int64_t max_params,
                             CatanetPruneCand **out, int *n_out, char *err, size_t es);

/* The architecture of the student made of `keep` (each group keeps its own hyperparameters). */
void catanet_prune_student_info(const CatanetModelInfo *teacher, const int *keep, int n_keep,
                                CatanetModelInfo *out);

/* `catanet-train prune ...` and `catanet-train extract ...` (argv[0] is the subcommand name).
 * Return 0, or a negative CatanetError (the reason went to log). */
int catanet_prune_main(int argc, char **argv, CatanetLogFn log, void *opaque);
int catanet_extract_main(int argc, char **argv, CatanetLogFn log, void *opaque);

/* ---- shared with distill.c ---- */
/* printf-style message through the callback (level CATANET_LOG_INFO or _ERROR) */
void catanet_kd_log(CatanetLogFn log, void *opaque, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "a,b,c" -> ints; returns the count or -1 */
int catanet_kd_parse_ints(const char *s, int *out, int max);
/* one Adam step (0.9, 0.99, 1e-8) on every learnable tensor of m */
void catanet_kd_adam(CatanetModel *m, const CatanetModel *g, CatanetModel *am, CatanetModel *av, float lr,
                     int64_t t);
/* scales g so that its global L2 norm is at most clip (clip <= 0: no-op); returns the norm before */
double catanet_kd_clip(CatanetModel *g, double clip);
/* The provenance keys catanet_kd_save_student writes, in this order (catanet-train carries them from a
 * `train --from` student through its checkpoint to `export`); the note is the last */
#define CATANET_KD_PROV_KEYS 4
#define CATANET_KD_PROV_NOTE 3
extern const char *const catanet_kd_prov_keys[CATANET_KD_PROV_KEYS];
/* Saves a student with its provenance: kept groups (indices into the teacher), the same groups as
 * indices into the original model ("catanet_origin_groups": the teacher's own origin composed with
 * keep, through every pruning stage) and extra keys. */
int catanet_kd_save_student(const CatanetModel *m, const char *path, const int *keep, int n_keep,
                            const char *teacher, const char *note, char *err, size_t es);
/* The kept indices stored by catanet_kd_save_student ("catanet_kept_groups"); returns n or < 0. */
int catanet_kd_read_kept(const char *path, int *keep, int max);
/* "catanet_origin_groups" (indices into the original model); returns n or < 0 when absent. */
int catanet_kd_read_origin(const char *path, int *origin, int max);
/* PSNR/SSIM of m (eval-mode engine forward) on a benchmark set folder */
int catanet_kd_eval(const CatanetModel *m, const char *dir, int threads, double *psnr, double *ssim, char *err,
                    size_t es);

#endif
