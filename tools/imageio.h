/* imageio.h: PNG (8/16-bit) and NPY (float32) reading/writing for the command-line tools. */
#ifndef CATANET_IMAGEIO_H
#define CATANET_IMAGEIO_H

#include <stddef.h>

/* Reads PNG or NPY (by extension) into planar float RGB [3][h][w] (malloc'd). err gets the reason.
 * Sizes are checked before allocating: the caps of training/imgload.h (a side at most 32768, at most
 * 64 Mpixel; a PNG whose rows cannot fit in its file), NPY shapes (3,H,W) or (1,3,H,W) only, with
 * exactly 3*H*W floats after the header (PNG goes through the training loader's decoder). */
int image_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es);
/* Writes planar float RGB: NPY raw [1,3,h,w] float32; PNG clamped and rounded at `bits` (8 or 16). */
int image_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es);
int has_ext(const char *path, const char *ext);

#endif
