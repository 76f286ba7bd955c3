/* imageio.h: images as planar float for the command-line tools: PNG (8/16-bit, grey, grey+alpha, RGB, RGBA,
 * palette), JPEG and BMP in through the project's one image codec (training/imgload.h, shared with training),
 * PNG (8/16-bit, RGB or RGBA) and JPEG out through the same; NPY (float32) in and out here. */
#ifndef CATANET_IMAGEIO_H
#define CATANET_IMAGEIO_H

#include <stddef.h>

enum { IMAGE_UNKNOWN = 0, IMAGE_PNG, IMAGE_JPEG, IMAGE_NPY, IMAGE_BMP };
#define IMAGE_JPEG_QUALITY 95   /* the default JPEG quality */

/* the format by extension (case-insensitive: .png, .jpg/.jpeg, .npy, .bmp), else IMAGE_UNKNOWN */
int image_format(const char *path);
/* the extension written for a format, without the dot: "png", "jpg", "npy" */
const char *image_format_ext(int format);

/* Reads PNG, JPEG or BMP (by content; the extension must be one of theirs) or NPY (by extension) into
 * planar float RGB [3][h][w] (malloc'd), values in [0,1] but NPY's. err gets the reason. Sizes are
 * checked before allocating: the caps of training/imgload.h (a side at most 32768, at most 64 Mpixel;
 * a PNG whose rows cannot fit in its file), NPY shapes (3,H,W) or (1,3,H,W) only, with exactly 3*H*W
 * floats after the header. *bits: 16 for a 16-bit PNG, else 8. An alpha channel is dropped. */
int image_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es);
/* The same, and when the file has an alpha channel (PNG only) *alpha = 1 and a fourth plane of opacity
 * follows the three: [4][h][w]. */
int image_read_alpha(const char *path, float **px, int *w, int *h, int *bits, int *alpha, char *err, size_t es);

/* NULL when a w x h image can be written as format, else why not: PNG and JPEG have the reader's caps
 * (training/imgload.h: 32768 a side, 64 Mpixel), so that every image written can be read back. */
const char *image_write_refusal(int format, int w, int h);
/* Writes planar float [3 + alpha][h][w] as format: IMAGE_NPY raw [1,3,h,w] float32 (alpha not written);
 * IMAGE_PNG clamped and rounded at `bits` (8 or 16), RGBA with alpha; IMAGE_JPEG 8-bit at quality
 * 1..100, alpha not written (JPEG has none). Any other format is refused. */
int image_write_as(const char *path, int format, const float *px, int w, int h, int alpha, int bits, int quality,
                   char *err, size_t es);
/* Writes planar float RGB in the format of path's extension (JPEG at IMAGE_JPEG_QUALITY). */
int image_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es);

/* An alpha plane [h][w] upscaled s times into out [h*s][w*s]: bicubic (training/bicubic.h, MATLAB's
 * imresize, the same half-pixel grid as the network's output), unclamped. 0 or CATANET_ERR_NOMEM. */
int image_alpha_upscale(const float *a, int w, int h, int s, float *out);

int has_ext(const char *path, const char *ext);

#endif
