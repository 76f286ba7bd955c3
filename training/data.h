/*
 * data.h: training patches for catanet-train.
 *
 * Loads every image of the given folders once (PNG 8/16-bit, JPEG, BMP; see imgload.h),
 * downscales JPEG photographs 2-4x with the MATLAB-compatible bicubic (bicubic.h) so that
 * the network does not learn JPEG artefacts, modcrops each HR image to the scale and makes
 * its LR image once with the same bicubic (as DIV2K's LR_bicubic is made). Everything is
 * kept in memory as uint8.
 *
 * Batches: random scale-aligned crops, hflip / vflip / transpose each with p = 0.5 applied
 * identically to the LR/HR pair (BasicSR's paired_random_crop + augment). Images are drawn
 * epoch by epoch in a seeded random order, every image once per epoch.
 *
 * Determinism: sample i of the infinite sample stream (batch k holds samples k*B .. k*B+B-1)
 * is a pure function of (seed, i), so the batches depend only on the seed and the position,
 * never on timing or on the number of prefetch threads. The state string stores the position;
 * a resumed run reproduces the uninterrupted one exactly.
 *
 * One CatanetData is used from one thread (next, get_state, set_state); its own prefetch threads
 * are internal.
 *
 * defines: CatanetDataConfig, catanet_data_config_default, catanet_data_open,
 *          catanet_data_next, catanet_data_get_state, catanet_data_set_state,
 *          catanet_data_close, and a few getters.
 */
#ifndef CATANET_TRAINING_DATA_H
#define CATANET_TRAINING_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "catanet.h"

typedef struct CatanetDataConfig {
    int scale;                     /* 2, 3 or 4 */
    int lr_patch;                  /* LR patch side p; the HR patch is scale*p */
    int batch;                     /* B >= 1 */
    uint64_t seed;
    int prefetch_threads;          /* 0: batches are made inside catanet_data_next; N >= 1: N
                                      threads make the next batches while the trainer works */
    int photo_downscale;           /* JPEG inputs: 0 = automatic (2..4, short side <= ~1000 px),
                                      1 = use as is, 2..4 = that factor */
    int load_threads;              /* threads decoding/resizing at open; 0 = 2 */
    const char *cache_dir;         /* optional: downscaled photos are cached here as PNG
                                      (created if missing); NULL = no cache */
    int lr_resize_flags;           /* CATANET_RESIZE_* flags (bicubic.h) for making LR: 0 = the Set14
                                      LRbicx convention (double between passes); ROUND_BETWEEN |
                                      TIES_AWAY = MATLAB on uint8 images, as DIV2K's LR_bicubic */
    CatanetLogFn log;              /* optional progress/warnings (images skipped as too small) */
    void *log_opaque;
} CatanetDataConfig;

typedef struct CatanetData CatanetData;

/* scale 2, lr_patch 64, batch 16, seed 3407 (the official manual_seed), 1 prefetch thread,
 * automatic photo downscale, 2 load threads, no cache, no log */
void catanet_data_config_default(CatanetDataConfig *cfg);

/*
 * Load every image file (.png, .jpg/.jpeg, .bmp; other files ignored) of the folders, not recursive.
 * Images whose LR side is smaller than lr_patch are skipped (reported through log); it is an
 * error when none is left. Returns 0 or a negative CatanetError; err gets the detail.
 */
int catanet_data_open(CatanetData **out, const char *const *dirs, int n_dirs, const CatanetDataConfig *cfg,
                      char *err, size_t es);

/* The next batch: lr [B,3,p,p] and hr [B,3,s*p,s*p], NCHW float in [0,1] (caller's buffers). */
int catanet_data_next(CatanetData *d, float *lr, float *hr);

/*
 * The position as a short NUL-terminated string ("catanet-data 1 seed=... next=... images=... hash=...";
 * under CATANET_DATA_STATE_MAX bytes). set_state accepts only a state of the same seed and the same
 * image set (count and a hash of names and sizes) and discards batches already prefetched.
 */
#define CATANET_DATA_STATE_MAX 256
int catanet_data_get_state(const CatanetData *d, char *buf, size_t n);
int catanet_data_set_state(CatanetData *d, const char *state);
/* The same, but with allow_other_images a state of another image set is accepted: the run goes on
 * at the same sample number in the new set (its crops are then new, not a replay). */
int catanet_data_set_state_ex(CatanetData *d, const char *state, int allow_other_images);

/* Detail of the last failure of next/set_state ("" when none). */
const char *catanet_data_last_error(const CatanetData *d);

int catanet_data_num_images(const CatanetData *d);
int64_t catanet_data_num_pixels(const CatanetData *d);   /* HR pixels in memory (after downscale) */
int64_t catanet_data_batches_served(const CatanetData *d);
double catanet_data_load_seconds(const CatanetData *d);  /* wall time of catanet_data_open */

/* NULL-safe; joins the prefetch threads. */
void catanet_data_close(CatanetData *d);

#endif
