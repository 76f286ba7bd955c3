/* imageio.h: PNG (8/16-bit) and NPY (float32) reading/writing for the command-line tools. */
#ifndef CATANET_IMAGEIO_H
#define CATANET_IMAGEIO_H

#include <stddef.h>

/* Reads PNG or NPY (by extension) into planar float RGB [3][h][w] (malloc'd). err gets the reason. */
int image_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es);
/* Writes planar float RGB: NPY raw [1,3,h,w] float32; PNG clamped and rounded at `bits` (8 or 16). */
int image_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es);
int has_ext(const char *path, const char *ext);

#endif
