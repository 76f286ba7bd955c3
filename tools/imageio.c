/* imageio.c: images as planar float for the command-line tools and tests: PNG, JPEG and BMP through the
 * project's codec (training/imgload.c), NPY here. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catanet.h"
#include "bicubic.h"
#include "error.h"
#include "imageio.h"
#include "imgload.h"

int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && !strcasecmp(path + n - e, ext);
}

int image_format(const char *path)
{
    if (has_ext(path, ".png"))
        return IMAGE_PNG;
    if (has_ext(path, ".jpg") || has_ext(path, ".jpeg"))
        return IMAGE_JPEG;
    if (has_ext(path, ".npy"))
        return IMAGE_NPY;
    if (has_ext(path, ".bmp"))
        return IMAGE_BMP;
    return IMAGE_UNKNOWN;
}

const char *image_format_ext(int format)
{
    return format == IMAGE_PNG ? "png" : format == IMAGE_JPEG ? "jpg" : format == IMAGE_NPY ? "npy" : "bmp";
}

const char *image_write_refusal(int format, int w, int h)
{
    return format == IMAGE_NPY ? (w < 1 || h < 1 ? "empty image" : NULL) : catanet_raster_size_refusal(w, h);
}

/* PNG, JPEG and BMP: the one codec, training/imgload.c, with its size caps checked before allocating */
static int raster_read(const char *path, float **px, int *w, int *h, int *bits, int *alpha, char *err, size_t es)
{
    CatanetRaster r;
    int ret = catanet_raster_load_alpha(path, &r, alpha != NULL, err, es);
    if (ret < 0)
        return ret;
    float *out = malloc(sizeof(float) * (3 + r.alpha) * (size_t)r.w * r.h);
    if (!out) {
        catanet_raster_free(&r);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "'%s': out of memory", path);
    }
    catanet_raster_to_float(&r, out);
    *px = out;
    *w = r.w;
    *h = r.h;
    *bits = r.maxval == 65535 ? 16 : 8;
    if (alpha)
        *alpha = r.alpha;
    catanet_raster_free(&r);
    return 0;
}

/* Quantised as the engine's image conversion does (engine/image.c: clamp to [0,1], scale, round to
 * nearest even), so that a PNG from here equals, byte for byte, the filter's rgb24 output of the same
 * frame. NaN becomes 0. */
static int raster_write(const char *path, int format, const float *px, int w, int h, int alpha, int bits,
                        int quality, char *err, size_t es)
{
    CatanetRaster r;
    int maxval = bits == 16 && format == IMAGE_PNG ? 65535 : 255;
    const char *why = image_write_refusal(format, w, h);
    if (why)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s': %dx%d: %s", path, w, h, why);
    int ret = catanet_raster_alloc_planes(&r, w, h, maxval, alpha && format == IMAGE_PNG);
    if (ret < 0)
        return catanet_errf(err, es, ret, "'%s': out of memory", path);
    size_t n = (3 + (size_t)r.alpha) * w * h;
    for (size_t i = 0; i < n; i++) {
        float v = px[i] > 0.0f ? (px[i] < 1.0f ? px[i] : 1.0f) : 0.0f;
        r.px[i] = (uint16_t)lrintf(v * (float)maxval);
    }
    ret = catanet_raster_write(path, &r, format == IMAGE_PNG ? CATANET_IMG_PNG : CATANET_IMG_JPEG, quality, err, es);
    catanet_raster_free(&r);
    return ret;
}

/* NPY v1/v2/v3: little-endian float32, C order, shape (3,H,W) or (1,3,H,W) */
static int npy_read(const char *path, float **rgb, int *w, int *h, char *err, size_t es)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot open '%s'", path);
    uint8_t pre[10];
    int ret = CATANET_ERR_FORMAT;
    char *hdr = NULL;
    float *out = NULL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        catanet_errf(err, es, ret, "'%s' is not an NPY file", path);
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1)
        hlen = pre[8] | pre[9] << 8;
    else {
        uint8_t b2[2];
        if (fread(b2, 1, 2, f) != 2)
            goto trunc;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)b2[0] << 16 | (size_t)b2[1] << 24;
    }
    if (hlen > 1 << 20 || !(hdr = calloc(1, hlen + 1)) || fread(hdr, 1, hlen, f) != hlen)
        goto trunc;
    if (!strstr(hdr, "'descr': '<f4'") || strstr(hdr, "'fortran_order': True")) {
        catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': only little-endian float32 C-order NPY is supported", path);
        goto done;
    }
    /* the shape: (3,H,W) or (1,3,H,W), nothing else (a 5th dimension is not ignored) */
    const char *sp = strstr(hdr, "'shape': (");
    long d[5] = { 0 };
    int nd = 0, used = 0;
    if (sp) {
        const char *p = sp + 10;
        while (nd < 5 && sscanf(p, " %ld%n", &d[nd], &used) == 1) {
            nd++;
            p += used;
            while (*p == ' ')
                p++;
            if (*p == ',')
                p++;
        }
        while (*p == ' ')
            p++;
        if (*p != ')')
            nd = -1; /* more than 5 dimensions, or not a tuple of integers */
    }
    long C, H, W;
    if (nd == 4 && d[0] == 1) {
        C = d[1]; H = d[2]; W = d[3];
    } else if (nd == 3) {
        C = d[0]; H = d[1]; W = d[2];
    } else {
        catanet_errf(err, es, ret, "'%s': shape must be (3,H,W) or (1,3,H,W)", path);
        goto done;
    }
    const char *why = C != 3 ? "not 3 channels" : catanet_raster_size_refusal(W, H);
    if (why) {
        catanet_errf(err, es, ret, "'%s': shape (%ld,%ld,%ld): %s", path, C, H, W, why);
        goto done;
    }
    /* the data must be exactly what the shape says: checked against the file size before allocating */
    long here = ftell(f);
    struct stat st;
    long long have = here >= 0 && fstat(fileno(f), &st) == 0 ? (long long)st.st_size - here : -1;
    if (have != 12LL * H * W) {
        catanet_errf(err, es, ret, "'%s': the data (%lld bytes) does not match the shape (3,%ld,%ld) of float32",
                     path, have, H, W);
        goto done;
    }
    size_t n = (size_t)3 * H * W;
    out = malloc(sizeof(float) * n);
    if (!out || fread(out, sizeof(float), n, f) != n)
        goto trunc;
    *rgb = out;
    out = NULL;
    *w = (int)W;
    *h = (int)H;
    ret = 0;
    goto done;
trunc:
    catanet_errf(err, es, ret, "'%s': truncated NPY file", path);
done:
    free(out);
    free(hdr);
    fclose(f);
    return ret;
}

static int npy_write(const char *path, const float *rgb, int w, int h, char *err, size_t es)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot create '%s'", path);
    char dict[128];
    int n = snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, %d, %d), }", h, w);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    uint8_t pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)((n + 1 + pad) & 255), (uint8_t)((n + 1 + pad) >> 8) };
    int bad = fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, n, f) != (size_t)n;
    for (int i = 0; i < pad && !bad; i++)
        bad = fputc(' ', f) == EOF;
    bad = bad || fputc('\n', f) == EOF;
    size_t cnt = (size_t)3 * w * h;
    bad = bad || fwrite(rgb, sizeof(float), cnt, f) != cnt;
    bad = fclose(f) != 0 || bad;
    return bad ? catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'", path) : 0;
}

int image_read_alpha(const char *path, float **px, int *w, int *h, int *bits, int *alpha, char *err, size_t es)
{
    *bits = 8;
    if (alpha)
        *alpha = 0;
    switch (image_format(path)) {
    case IMAGE_NPY: return npy_read(path, px, w, h, err, es);
    case IMAGE_UNKNOWN:
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': input must be .png, .jpg, .jpeg, .bmp or .npy",
                            path);
    default: return raster_read(path, px, w, h, bits, alpha, err, es);
    }
}

int image_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es)
{
    return image_read_alpha(path, rgb, w, h, bits, NULL, err, es);
}

int image_write_as(const char *path, int format, const float *px, int w, int h, int alpha, int bits, int quality,
                   char *err, size_t es)
{
    switch (format) {
    case IMAGE_NPY: return npy_write(path, px, w, h, err, es);
    case IMAGE_PNG: case IMAGE_JPEG: return raster_write(path, format, px, w, h, alpha, bits, quality, err, es);
    default:
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': output must be .png, .jpg, .jpeg or .npy", path);
    }
}

int image_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es)
{
    return image_write_as(path, image_format(path), rgb, w, h, 0, bits, IMAGE_JPEG_QUALITY, err, es);
}

int image_alpha_upscale(const float *a, int w, int h, int s, float *out)
{
    size_t n = (size_t)w * h, m = n * s * s;
    double *in = calloc(n, sizeof(double)), *res = malloc(sizeof(double) * m);
    if (!in || !res) {
        free(in);
        free(res);
        return CATANET_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        in[i] = a[i];
    int ret = catanet_imresize_f64(in, w, h, s, CATANET_RESIZE_MATLAB, res);
    for (size_t i = 0; !ret && i < m; i++)
        out[i] = (float)res[i];   /* overshoot past [0,1] is clamped when written */
    free(in);
    free(res);
    return ret;
}
