/*
 * metrics.h: PSNR and SSIM as the paper measures them, and whole validation sets.
 *
 * Protocol (catanet-spec.md §6, BasicSR calculate_psnr_pt / calculate_ssim_pt):
 *   - Y channel, BT.601: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 for RGB in [0,1],
 *     then divided by 255 (Y in [0,1]);
 *   - a border of `border` (= scale) pixels cropped on every side;
 *   - PSNR = 10 log10(1 / (mse + 1e-8)) on the float, unclamped, unrounded output;
 *   - SSIM on Y*255 with an 11x11 Gaussian window (sigma 1.5), valid positions only,
 *     C1 = (0.01*255)^2, C2 = (0.03*255)^2, the mean of the SSIM map;
 *   - per image, then averaged over the set.
 * Images are planar float RGB [3][h][w] (the engine's layout).
 *
 * defines: catanet_rgb_to_y, catanet_psnr_y, catanet_ssim_y, CatanetEvalSet,
 *          catanet_evalset_open, catanet_eval_set, catanet_eval_bicubic, catanet_evalset_close
 */
#ifndef CATANET_TRAINING_METRICS_H
#define CATANET_TRAINING_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* y[i] = BT.601 luma of pixel i scaled to [0,1] (no clamping); rgb planar [3][n] */
void catanet_rgb_to_y(const float *rgb, size_t n, double *y);

/* PSNR / SSIM between sr and hr (both planar RGB [3][h][w]) on Y with `border` cropped.
 * Negative CatanetError when the cropped image is empty (SSIM: smaller than 11x11) or on no memory. */
int catanet_psnr_y(const float *sr, const float *hr, int w, int h, int border, double *psnr);
int catanet_ssim_y(const float *sr, const float *hr, int w, int h, int border, double *ssim);

/* ---- validation sets ---- */

typedef struct CatanetEvalImage {
    char name[128];
    int w, h;                      /* HR size, modcropped to the scale */
    float *hr;                     /* [3][h][w] */
    float *lr;                     /* [3][h/s][w/s], given by the set or made with the bicubic */
} CatanetEvalImage;

typedef struct CatanetEvalSet {
    char name[128];                /* the folder's last component, e.g. "Set5" */
    int scale;
    int n;
    int lr_given;                  /* 1: LR read from the set's LR folder; 0: made with the bicubic */
    CatanetEvalImage *images;
} CatanetEvalSet;

/*
 * Load a set. dir is a folder of HR images, or a benchmark layout: dir/HR or dir/GTmod12 for the
 * HR images, with LR in dir/LR_bicubic/X{s}/{name}x{s}.png, dir/LR_bicubic/X{s}/{name}.png or
 * dir/LRbicx{s}/{name}.png when present (otherwise made with catanet_imresize). HR is modcropped
 * to the scale; a given LR must be exactly HR/s in size. Greyscale images become RGB.
 */
int catanet_evalset_open(CatanetEvalSet **out, const char *dir, int scale, char *err, size_t es);
void catanet_evalset_close(CatanetEvalSet *set);

/* Upscales one image: lr [3][h][w] -> sr [3][scale*h][scale*w] (float, need not be clamped).
 * Returns 0 or a negative error code. */
typedef int (*CatanetUpscaleFn)(void *opaque, const float *lr, int w, int h, float *sr);

typedef struct CatanetEvalResult {
    double psnr, ssim;             /* means over the set */
    int n;
    double *psnr_each, *ssim_each; /* optional, caller's arrays of set->n (may be NULL) */
} CatanetEvalResult;

/* Run fn on every LR image of the set and measure it against HR (border = scale). */
int catanet_eval_set(const CatanetEvalSet *set, CatanetUpscaleFn fn, void *opaque, CatanetEvalResult *res,
                     char *err, size_t es);

/* The baseline upscaler for catanet_eval_set: MATLAB imresize(lr, s, 'bicubic'), rounded to 8 bit as
 * MATLAB does for uint8 images. opaque points to an int holding the scale s. */
int catanet_eval_bicubic(void *opaque, const float *lr, int w, int h, float *sr);

#endif
