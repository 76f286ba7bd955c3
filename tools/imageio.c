/* imageio.c: PNG (libpng) and NPY images for the command-line tools and tests. */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catanet.h"
#include "error.h"
#include "imageio.h"
#include "imgload.h"

int has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && !strcasecmp(path + n - e, ext);
}

/* the training loader's PNG reader: one decoder, with its size caps checked before allocating */
static int png_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es)
{
    CatanetRaster r;
    int ret = catanet_raster_load(path, &r, err, es);
    if (ret < 0)
        return ret;
    float *out = malloc(sizeof(float) * 3 * (size_t)r.w * r.h);
    if (!out) {
        catanet_raster_free(&r);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "'%s': out of memory", path);
    }
    catanet_raster_to_float(&r, out);
    *rgb = out;
    *w = r.w;
    *h = r.h;
    *bits = r.maxval == 65535 ? 16 : 8;
    catanet_raster_free(&r);
    return 0;
}

static int png_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot create '%s'", path);
    int bpp = bits == 16 ? 6 : 3;
    uint8_t *buf = malloc((size_t)w * h * bpp);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!buf || !rows || !png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        free(buf);
        free(rows);
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'", path);
    }
    CatanetImage im = { .format = bits == 16 ? CATANET_PIX_RGB48 : CATANET_PIX_RGB24, .bits = bits, .width = w,
                        .height = h, .data = { buf }, .linesize = { (ptrdiff_t)w * bpp } };
    catanet_image_from_rgb(rgb, &im);
    if (bits == 16) /* PNG is big-endian */
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            uint16_t v = ((uint16_t *)buf)[i];
            buf[2 * i] = (uint8_t)(v >> 8);
            buf[2 * i + 1] = (uint8_t)v;
        }
    for (int y = 0; y < h; y++)
        rows[y] = buf + (size_t)y * w * bpp;
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bits, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    int bad = fclose(f) != 0;
    free(buf);
    free(rows);
    return bad ? catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'", path) : 0;
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

int image_read(const char *path, float **rgb, int *w, int *h, int *bits, char *err, size_t es)
{
    *bits = 8;
    if (has_ext(path, ".npy"))
        return npy_read(path, rgb, w, h, err, es);
    if (has_ext(path, ".png"))
        return png_read(path, rgb, w, h, bits, err, es);
    return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': input must be .png or .npy", path);
}

int image_write(const char *path, const float *rgb, int w, int h, int bits, char *err, size_t es)
{
    if (has_ext(path, ".npy"))
        return npy_write(path, rgb, w, h, err, es);
    if (has_ext(path, ".png"))
        return png_write(path, rgb, w, h, bits == 16 ? 16 : 8, err, es);
    return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': output must be .png or .npy", path);
}
