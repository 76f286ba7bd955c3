/*
 * ckpt: the training configuration of catanet-train and the metadata of its checkpoints (the
 * train_config JSON and the training state: step, adam_t, skipped, elapsed_s, data_state), written
 * and read here. The reader trusts nothing: every field has its type and range checked (the same
 * ranges as the command line's options), and a refusal says which field and why. It is the parser
 * tests/fuzz/fuzz_ckpt.c drives.
 */
#ifndef CATANET_TRAIN_CKPT_H
#define CATANET_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "catanet.h"
#include "model.h"

#define MAX_DIRS 16
#define MAX_MILESTONES 16

/* the ranges of the options, shared by the command line and a checkpoint's train_config */
#define TRAIN_MAX_BATCH 4096
#define TRAIN_MAX_PATCH 4096
#define TRAIN_MAX_STEPS INT64_C(1000000000000) /* iterations, milestones, --val-every, --ckpt-every */
#define TRAIN_MAX_THREADS 1024
#define TRAIN_MAX_BAD 1000000
#define TRAIN_MAX_SECONDS 1e9 /* --ckpt-secs, --time-limit */

typedef struct TrainCfg {
    CatanetModelInfo arch;
    int batch, patch, threads;
    int64_t iters;
    double lr, gamma, clip;
    int64_t milestones[MAX_MILESTONES];
    int n_milestones;
    uint64_t seed;
    const char *data[MAX_DIRS];
    int n_data;
    const char *val[MAX_DIRS];
    int n_val;
    int64_t val_every, ckpt_every;
    double ckpt_secs;
    int max_bad;
    const char *ckpt, *log, *from, *cache;
    int quiet;
    int new_data; /* resume: accept a changed image set (--new-data) */
    int cuda;     /* --device cuda: the step on the GPU (training/model_train_cuda.h) */
    double time_limit; /* --time-limit S: stop with a checkpoint S seconds after the program started */
    double t_start;    /* now_s() at the start of the program */
    int resumed;       /* resume: the logs are appended to, never truncated */
    int log_from_ckpt; /* the log path is the checkpoint's (not the command line's): see open_log */
    char *owned[2 * MAX_DIRS + 2]; /* the strings a checkpoint's train_config gave (freed by release) */
    int n_owned;
} TrainCfg;

/* the training state a checkpoint carries besides its tensors */
typedef struct CkptProgress {
    int64_t step, adam_t, skipped;
    double elapsed;
    const char *data_state; /* points into the metadata given to the parser */
} CkptProgress;

enum { CKPT_TRAIN_CONFIG, CKPT_STEP, CKPT_ADAM_T, CKPT_SKIPPED, CKPT_ELAPSED, CKPT_DATA_STATE, CKPT_META_N };
/* the metadata key of each of the above */
extern const char *const catanet_ckpt_meta_keys[CKPT_META_N];

/* the train_config JSON of cfg (malloc'd; NULL when out of memory) */
char *catanet_ckpt_config_json(const TrainCfg *cfg);

/* Reads the train_config JSON into cfg (only the fields it stores; strings are owned by cfg until
 * catanet_ckpt_cfg_release). 0, or -1 with the reason in err. */
int catanet_ckpt_parse_config(const char *json, TrainCfg *cfg, char *err, size_t es);

/* Reads a checkpoint's metadata: meta[k] is the value of catanet_ckpt_meta_keys[k] or NULL where
 * absent (skipped and elapsed_s may be absent: 0). 0, or -1 with the reason in err. */
int catanet_ckpt_parse_meta(const char *const meta[CKPT_META_N], TrainCfg *cfg, CkptProgress *p, char *err,
                            size_t es);

/* frees the strings the parser gave cfg (its data/val/log/cache entries from them become invalid) */
void catanet_ckpt_cfg_release(TrainCfg *cfg);

/* 1 when every tensor of m (parameters and buffers) is finite; else 0 and the first bad one's name */
int catanet_ckpt_finite(const CatanetModel *m, const char **bad_tensor);

#endif
