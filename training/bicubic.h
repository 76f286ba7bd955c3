/*
 * bicubic.h: MATLAB's imresize(img, scale, 'bicubic'), the resize every SR benchmark's LR images
 * come from (DIV2K LR_bicubic, Set5/Set14 LRbic*).
 *
 * Keys cubic with a = -0.5; when shrinking (scale < 1) the kernel is widened by 1/scale and scaled
 * by scale (antialiasing); per output pixel the weights are normalised to sum 1; out-of-range taps
 * mirror symmetrically (edge sample repeated); separable, one dimension after the other in double,
 * rounded and saturated at the end. Rounding is to nearest with ties to even: with that, Set14's
 * LRbicx{2,3,4} are reproduced bit for bit on 41 of 42 images (with MATLAB uint8()'s ties away from
 * zero, 11 of the 14 x2 images differ in a few exact-tie pixels).
 *
 * MATLAB itself, given a uint8 image, rounds after each pass (ties away from zero): flags
 * CATANET_RESIZE_ROUND_BETWEEN | CATANET_RESIZE_TIES_AWAY reproduce Set5's LR_bicubic X2/X3/X4 bit for
 * bit (15 of 15), and only with the vertical pass first, which settles MATLAB's order for equal scales.
 *
 * defines: catanet_imresize_size, catanet_imresize, catanet_imresize_ex, catanet_imresize_f64, CATANET_RESIZE_*
 */
#ifndef CATANET_TRAINING_BICUBIC_H
#define CATANET_TRAINING_BICUBIC_H

#include "imgload.h"

/* Output length for an input of n samples: ceil(n * scale), as MATLAB computes it. */
int catanet_imresize_size(int n, double scale);

/* Which dimension is resized first. MATLAB: the one with the smaller scale factor, the vertical one
 * on a tie (a stable sort of the two scales). */
enum {
    CATANET_RESIZE_MATLAB = 0,
    CATANET_RESIZE_VERTICAL_FIRST = 1,
    CATANET_RESIZE_HORIZONTAL_FIRST = 2,
};

/*
 * out = imresize(in, scale, 'bicubic'), same scale both ways; out is allocated here
 * (catanet_raster_free it), out->maxval = in->maxval. scale in (0, 64].
 */
int catanet_imresize(const CatanetRaster *in, double scale, CatanetRaster *out);

/* flags for catanet_imresize_ex, to test which convention a data set follows */
enum {
    CATANET_RESIZE_ROUND_BETWEEN = 1,   /* round the first pass to integers (MATLAB on uint8 input) */
    CATANET_RESIZE_TIES_AWAY = 2,       /* round ties away from zero (MATLAB's uint8()) */
};
int catanet_imresize_ex(const CatanetRaster *in, double scale, int order, int flags, CatanetRaster *out);

/* One plane of doubles, no rounding: in [h][w] -> out [ceil(h*scale)][ceil(w*scale)]. */
int catanet_imresize_f64(const double *in, int w, int h, double scale, int order, double *out);

#endif
