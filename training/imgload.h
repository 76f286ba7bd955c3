/*
 * imgload.h: decoding the training and evaluation images (PNG 8/16-bit, JPEG, BMP) into planar RGB.
 *
 * Libraries: libpng (already a dependency) and libjpeg (libjpeg62-turbo on Debian). BMP is read by
 * a small reader here: the only BMPs we meet are T91's uncompressed 24-bit files, a validated
 * ~100-line reader of the uncompressed variants (1/4/8-bit palette, 24/32-bit) costs less than a
 * dependency (libstb-dev's stb_image is a header-only copy that Debian patches separately from its
 * other users) and lets every size be checked against the file's length.
 *
 * It is the one image codec of the project: training, evaluation and the command-line tools
 * (tools/imageio.c adds NPY and the float conversions on top) all decode and encode through it.
 * Writing: PNG (8/16-bit, RGB or RGBA) and JPEG (8-bit, a quality), with libpng and libjpeg.
 *
 * defines: CatanetRaster, catanet_raster_load, catanet_raster_load_alpha, catanet_raster_write,
 *          catanet_raster_save_png, catanet_raster_alloc, catanet_raster_alloc_planes, catanet_raster_free,
 *          catanet_raster_to_float, catanet_raster_from_float, catanet_is_image_file
 */
#ifndef CATANET_TRAINING_IMGLOAD_H
#define CATANET_TRAINING_IMGLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Size caps, checked from the file's header before any pixel memory is allocated, so a small file
 * that claims a huge image is refused at a few kB of memory: each side at most 32768 and at most
 * 64 Mpixel in all (8192x8192; an 8K UHD frame is 33 Mpixel), i.e. at most 384 MB of raster and
 * 768 MB as float RGB. A PNG must also be able to hold what it claims: deflate expands at most 1032:1,
 * so a PNG whose rows (filter bytes included) exceed 1032 times its file size is refused. */
#define CATANET_RASTER_MAX_SIDE 32768
#define CATANET_RASTER_MAX_PIXELS ((int64_t)1 << 26)
#define CATANET_PNG_MAX_RATIO 1032

/* NULL when w x h is within the caps, else why not */
static inline const char *catanet_raster_size_refusal(int64_t w, int64_t h)
{
    if (w < 1 || h < 1)
        return "empty image";
    if (w > CATANET_RASTER_MAX_SIDE || h > CATANET_RASTER_MAX_SIDE)
        return "a side exceeds 32768 pixels";
    if (w * h > CATANET_RASTER_MAX_PIXELS)
        return "more than 64 Mpixel (the cap)";
    return NULL;
}

/* An RGB image in planar samples [3][h][w], values 0..maxval (255 for 8-bit sources, 65535 for
 * 16-bit PNG). Greyscale sources are expanded to three equal planes. With alpha = 1 a fourth plane,
 * the opacity (straight, not premultiplied, as PNG stores it), follows the three: [4][h][w]. */
typedef struct CatanetRaster {
    int w, h;
    int maxval;
    uint16_t *px;
    int alpha;
} CatanetRaster;

enum { CATANET_IMG_UNKNOWN = 0, CATANET_IMG_PNG, CATANET_IMG_JPEG, CATANET_IMG_BMP };

/* The kind of image file by extension (.png, .jpg/.jpeg, .bmp; case-insensitive), else UNKNOWN. */
int catanet_is_image_file(const char *path);

/* Decode path (type by content, not extension) to RGB; an alpha channel is dropped. 0 or a negative
 * CatanetError with the detail in err. */
int catanet_raster_load(const char *path, CatanetRaster *img, char *err, size_t es);
/* The same; with keep_alpha, a PNG with an alpha channel or a tRNS chunk (grey+alpha, RGBA, a palette
 * with transparency, a transparent colour key) gives img->alpha = 1 and its opacity as a fourth plane.
 * JPEG and BMP have none. */
int catanet_raster_load_alpha(const char *path, CatanetRaster *img, int keep_alpha, char *err, size_t es);

int catanet_raster_alloc(CatanetRaster *img, int w, int h, int maxval);
/* with alpha: four planes, img->alpha = 1 */
int catanet_raster_alloc_planes(CatanetRaster *img, int w, int h, int maxval, int alpha);
void catanet_raster_free(CatanetRaster *img);

/* Write img to path as kind: CATANET_IMG_PNG, 8- or 16-bit by maxval, RGBA when img->alpha; or
 * CATANET_IMG_JPEG at quality 1..100 (4:4:4 chroma from 90 up), 8-bit (16-bit samples rounded to 8)
 * and without the alpha plane (JPEG has none: callers that have one say so). Writes path directly:
 * callers that must never leave a partial file write to a temporary name and rename it. */
int catanet_raster_write(const char *path, const CatanetRaster *img, int kind, int quality, char *err, size_t es);
/* Write an 8-bit (maxval 255) or 16-bit PNG, atomically: a temporary file in the same folder, then rename. */
int catanet_raster_save_png(const char *path, const CatanetRaster *img, char *err, size_t es);

/* planar float [3 + alpha][h][w] = px / maxval */
void catanet_raster_to_float(const CatanetRaster *img, float *rgb);
/* px = round(clamp(rgb, 0, 1) * maxval), all 3 + alpha planes */
void catanet_raster_from_float(const float *rgb, CatanetRaster *img);

#endif
