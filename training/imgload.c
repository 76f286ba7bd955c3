/* imgload.c: PNG (libpng), JPEG (libjpeg) and BMP (own reader) to planar RGB rasters. */
#include <png.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>   /* after stdio.h and stddef.h: it uses FILE and size_t without including them */
#include <jerror.h>

#include "catanet.h"
#include "error.h"
#include "imgload.h"

static int ext_is(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcasecmp(path + n - e, ext);
}

int catanet_is_image_file(const char *path)
{
    if (ext_is(path, ".png"))
        return CATANET_IMG_PNG;
    if (ext_is(path, ".jpg") || ext_is(path, ".jpeg"))
        return CATANET_IMG_JPEG;
    if (ext_is(path, ".bmp"))
        return CATANET_IMG_BMP;
    return CATANET_IMG_UNKNOWN;
}

int catanet_raster_alloc_planes(CatanetRaster *img, int w, int h, int maxval, int alpha)
{
    img->px = NULL;
    if (catanet_raster_size_refusal(w, h))
        return CATANET_ERR_INVALID_ARG;
    img->px = malloc(sizeof(uint16_t) * (3 + !!alpha) * (size_t)w * h);
    if (!img->px)
        return CATANET_ERR_NOMEM;
    img->w = w;
    img->h = h;
    img->maxval = maxval;
    img->alpha = !!alpha;
    return 0;
}

int catanet_raster_alloc(CatanetRaster *img, int w, int h, int maxval)
{
    return catanet_raster_alloc_planes(img, w, h, maxval, 0);
}

void catanet_raster_free(CatanetRaster *img)
{
    if (!img)
        return;
    free(img->px);
    img->px = NULL;
    img->w = img->h = img->alpha = 0;
}

void catanet_raster_to_float(const CatanetRaster *img, float *rgb)
{
    size_t n = (3 + (size_t)img->alpha) * img->w * img->h;
    /* a division, not a multiplication by 1/maxval: 8-bit values then give exactly the k/255.0f
     * that the engine's image conversion and the other tools compute */
    for (size_t i = 0; i < n; i++)
        rgb[i] = (float)img->px[i] / (float)img->maxval;
}

void catanet_raster_from_float(const float *rgb, CatanetRaster *img)
{
    size_t n = (3 + (size_t)img->alpha) * img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        float v = rgb[i];
        v = v > 0.0f ? v : 0.0f;   /* NaN becomes 0 here */
        v = v < 1.0f ? v : 1.0f;
        img->px[i] = (uint16_t)(v * (float)img->maxval + 0.5f);
    }
}

/* ---- PNG ---- */

typedef struct PngErr {
    char msg[200];
} PngErr;

static void png_on_error(png_structp png, png_const_charp msg)
{
    PngErr *pe = png_get_error_ptr(png);
    if (pe)
        snprintf(pe->msg, sizeof(pe->msg), "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;   /* the library never prints; warnings do not stop decoding */
}

static int load_png(FILE *f, const char *path, CatanetRaster *img, int keep_alpha, char *err, size_t es)
{
    PngErr pe = { "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &pe, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* volatile: modified between setjmp and a possible longjmp */
    uint16_t *volatile px = NULL;
    png_bytep volatile rowbuf = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "'%s': out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(px);
        free(rowbuf);
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': bad PNG (%s)", path, pe.msg);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    /* the header's claim checked before any row is allocated (imgload.h's caps) */
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    const char *why = catanet_raster_size_refusal(w, h);
    long fsize = 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0)
        fsize = (long)st.st_size;
    if (!why && (double)h * ((double)png_get_rowbytes(png, info) + 1) > (double)CATANET_PNG_MAX_RATIO * fsize)
        why = "its pixel data cannot fit in the file (deflate expands at most 1032:1)";
    if (why) {
        snprintf(pe.msg, sizeof(pe.msg), "%dx%d: %s", w, h, why);
        longjmp(png_jmpbuf(png), 1);
    }
    /* palette, grey below 8 bits and tRNS expanded: grey, grey+alpha, RGB or RGBA at 8 or 16 bits */
    png_set_expand(png);
    int alpha = keep_alpha && ((png_get_color_type(png, info) & PNG_COLOR_MASK_ALPHA) ||
                               png_get_valid(png, info, PNG_INFO_tRNS));
    if (!alpha)
        png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int depth = png_get_bit_depth(png, info), nc = 3 + alpha;
    if (png_get_channels(png, info) != nc || (depth != 8 && depth != 16))
        png_error(png, "unexpected layout after expansion");
    size_t rb = png_get_rowbytes(png, info);
    rowbuf = malloc(sizeof(png_bytep) * h + rb * h); /* the row pointers, then the rows */
    px = malloc(sizeof(uint16_t) * nc * (size_t)w * h);
    if (!rowbuf || !px)
        png_error(png, "out of memory");
    png_bytepp rows = (png_bytepp)rowbuf;
    for (int y = 0; y < h; y++)
        rows[y] = rowbuf + sizeof(png_bytep) * h + rb * y;
    png_read_image(png, rows);
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const png_byte *r = rows[y];
        for (int x = 0; x < w; x++)
            for (int c = 0; c < nc; c++) {
                size_t i = (size_t)x * nc + c;
                px[c * plane + (size_t)y * w + x] = depth == 16 ? (uint16_t)(r[2 * i] << 8 | r[2 * i + 1]) : r[i];
            }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rowbuf);
    img->w = w;
    img->h = h;
    img->maxval = depth == 16 ? 65535 : 255;
    img->alpha = alpha;
    img->px = px;
    return 0;
}

/* ---- JPEG ---- */

typedef struct JpegErr {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} JpegErr;

static void jpeg_on_error(j_common_ptr cinfo)
{
    JpegErr *je = (JpegErr *)cinfo->err;
    je->mgr.format_message(cinfo, je->msg);
    longjmp(je->jb, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    /* Data that ends before the image does is an error: libjpeg would fill the rest with grey, a silent
     * wrong image, and a few hundred bytes claiming 60 Mpixel would cost the whole decode. Other
     * corrupt-data warnings: libjpeg decodes on; the library never prints. */
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF)
        jpeg_on_error(cinfo);
}

static int load_jpeg(FILE *f, const char *path, CatanetRaster *img, char *err, size_t es)
{
    struct jpeg_decompress_struct cinfo;
    JpegErr je;
    uint16_t *volatile px = NULL;
    JSAMPLE *volatile row = NULL;
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_on_error;
    je.mgr.emit_message = jpeg_on_message;
    je.msg[0] = 0;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        free(row);
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': bad JPEG (%s)", path, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components == 1)
        cinfo.out_color_space = JCS_GRAYSCALE;
    else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB)
        cinfo.out_color_space = JCS_RGB;
    else {
        jpeg_destroy_decompress(&cinfo);
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': CMYK/YCCK JPEG is not supported", path);
    }
    /* the header's claim checked before libjpeg or we allocate for it (imgload.h's caps) */
    const char *why = catanet_raster_size_refusal(cinfo.image_width, cinfo.image_height);
    if (why) {
        snprintf(je.msg, sizeof(je.msg), "%ux%u: %s", (unsigned)cinfo.image_width, (unsigned)cinfo.image_height, why);
        longjmp(je.jb, 1);
    }
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, nc = cinfo.output_components;
    px = malloc(sizeof(uint16_t) * 3 * (size_t)w * h);
    row = malloc((size_t)w * nc);
    if (!px || !row) {
        snprintf(je.msg, sizeof(je.msg), "out of memory");
        longjmp(je.jb, 1);
    }
    size_t plane = (size_t)w * h;
    while (cinfo.output_scanline < (JDIMENSION)h) {
        size_t y = cinfo.output_scanline;
        JSAMPROW rp = row;
        if (jpeg_read_scanlines(&cinfo, &rp, 1) != 1) {
            snprintf(je.msg, sizeof(je.msg), "truncated");
            longjmp(je.jb, 1);
        }
        uint16_t *r = px + y * w, *g = r + plane, *b = g + plane;   /* grey: three equal planes */
        for (int x = 0, s = nc == 1 ? 0 : 1; x < w; x++) {
            r[x] = row[x * nc];
            g[x] = row[x * nc + s];
            b[x] = row[x * nc + 2 * s];
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    img->w = w;
    img->h = h;
    img->maxval = 255;
    img->px = px;
    return 0;
}

/* ---- BMP: uncompressed (BI_RGB) 1/4/8-bit palette, 24 and 32-bit; bottom-up or top-down ---- */

#define BMP_MAX_FILE (1u << 30)

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int load_bmp(FILE *f, const char *path, CatanetRaster *img, char *err, size_t es)
{
    if (fseek(f, 0, SEEK_END) != 0)
        return catanet_errf(err, es, CATANET_ERR_IO, "'%s': cannot seek", path);
    long len = ftell(f);
    rewind(f);
    if (len < 26 || (unsigned long)len > BMP_MAX_FILE)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': bad BMP (file size %ld)", path, len);
    uint8_t *b = malloc((size_t)len);
    if (!b)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "'%s': out of memory", path);
    int ret = CATANET_ERR_FORMAT;
    const char *why = NULL;
    if (fread(b, 1, (size_t)len, f) != (size_t)len) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "'%s': read failed", path);
        goto done;
    }
    size_t n = (size_t)len;
    uint32_t off = rd32(b + 10), hsz = rd32(b + 14);
    int64_t w, h;
    int bpp, comp = 0, pal_entry = 4;
    uint32_t ncolors = 0;
    if (hsz == 12) {
        w = rd16(b + 18);
        h = (int16_t)rd16(b + 20);
        bpp = rd16(b + 24);
        pal_entry = 3;
    } else if ((hsz == 40 || hsz == 52 || hsz == 56 || hsz == 64 || hsz == 108 || hsz == 124) &&
               14 + (size_t)hsz <= n) {
        w = (int32_t)rd32(b + 18);
        h = (int32_t)rd32(b + 22);
        bpp = rd16(b + 28);
        comp = (int)rd32(b + 30);
        ncolors = rd32(b + 46);
    } else {
        why = "unknown header";
        goto bad;
    }
    int top_down = h < 0;
    if (h < 0)
        h = -h;
    if ((why = catanet_raster_size_refusal(w, h)))
        goto bad;
    if (comp != 0) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': compressed BMP (method %d) is not supported",
                           path, comp);
        goto done;
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': %d-bit BMP is not supported", path, bpp);
        goto done;
    }
    const uint8_t *pal = NULL;
    if (bpp <= 8) {
        if (ncolors == 0 || ncolors > (1u << bpp))
            ncolors = 1u << bpp;
        pal = b + 14 + hsz;
        if (14 + (size_t)hsz + (size_t)ncolors * pal_entry > n) {
            why = "truncated palette";
            goto bad;
        }
    }
    size_t stride = ((size_t)w * bpp + 31) / 32 * 4;
    if (off > n || stride * (size_t)h > n - off) {
        why = "truncated pixel data";
        goto bad;
    }
    if ((ret = catanet_raster_alloc(img, (int)w, (int)h, 255)) < 0) {
        ret = catanet_errf(err, es, ret, "'%s': out of memory", path);
        goto done;
    }
    size_t plane = (size_t)w * h;
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *r = b + off + stride * (size_t)(top_down ? y : h - 1 - y);
        for (int64_t x = 0; x < w; x++) {
            uint8_t rgb[3];
            if (bpp == 24 || bpp == 32) {
                const uint8_t *p = r + x * (bpp / 8);
                rgb[0] = p[2], rgb[1] = p[1], rgb[2] = p[0];
            } else {
                unsigned bit = (unsigned)(x * bpp), idx = (r[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
                if (idx >= ncolors) {
                    catanet_raster_free(img);
                    why = "palette index out of range";
                    goto bad;
                }
                const uint8_t *p = pal + (size_t)idx * pal_entry;
                rgb[0] = p[2], rgb[1] = p[1], rgb[2] = p[0];
            }
            for (int c = 0; c < 3; c++)
                img->px[c * plane + (size_t)y * w + x] = rgb[c];
        }
    }
    ret = 0;
    goto done;
bad:
    ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': bad BMP (%s)", path, why);
done:
    free(b);
    return ret;
}

int catanet_raster_load(const char *path, CatanetRaster *img, char *err, size_t es)
{
    return catanet_raster_load_alpha(path, img, 0, err, es);
}

int catanet_raster_load_alpha(const char *path, CatanetRaster *img, int keep_alpha, char *err, size_t es)
{
    img->px = NULL;
    img->w = img->h = img->alpha = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot open '%s'", path);
    uint8_t sig[8] = { 0 };
    size_t got = fread(sig, 1, sizeof(sig), f);
    rewind(f);
    int ret;
    if (got == 8 && !png_sig_cmp(sig, 0, 8))
        ret = load_png(f, path, img, keep_alpha, err, es);
    else if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF)
        ret = load_jpeg(f, path, img, err, es);
    else if (got >= 2 && sig[0] == 'B' && sig[1] == 'M')
        ret = load_bmp(f, path, img, err, es);
    else
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': not a PNG, JPEG or BMP file", path);
    fclose(f);
    return ret;
}

/* ---- writing: PNG (8/16-bit, RGB or RGBA) and JPEG (8-bit RGB) ---- */

static int save_png(FILE *f, const CatanetRaster *img, char *msg, size_t ms)
{
    int w = img->w, h = img->h, bytes = img->maxval == 255 ? 1 : 2, nc = 3 + img->alpha;
    PngErr pe = { "" };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile row = malloc((size_t)w * nc * bytes);
    if (!png || !info || !row || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        snprintf(msg, ms, "%s", pe.msg[0] ? pe.msg : "out of memory");
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bytes * 8, img->alpha ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int c = 0; c < nc; c++) {
                uint16_t v = img->px[c * plane + (size_t)y * w + x];
                size_t i = (size_t)x * nc + c;
                if (bytes == 1)
                    row[i] = (uint8_t)v;
                else {
                    row[2 * i] = (uint8_t)(v >> 8);   /* PNG is big-endian */
                    row[2 * i + 1] = (uint8_t)v;
                }
            }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return 0;
}

static int save_jpeg(FILE *f, const CatanetRaster *img, int quality, char *msg, size_t ms)
{
    struct jpeg_compress_struct cinfo;
    JpegErr je;
    JSAMPLE *volatile row = malloc((size_t)img->w * 3);
    if (!row) {
        snprintf(msg, ms, "out of memory");
        return -1;
    }
    cinfo.err = jpeg_std_error(&je.mgr);
    je.mgr.error_exit = jpeg_on_error;
    je.mgr.emit_message = jpeg_on_message;
    je.msg[0] = 0;
    if (setjmp(je.jb)) {
        jpeg_destroy_compress(&cinfo);
        free(row);
        snprintf(msg, ms, "%s", je.msg);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)img->w;
    cinfo.image_height = (JDIMENSION)img->h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    /* at high qualities full-resolution chroma (4:4:4), as ImageMagick does: halving the chroma of an
     * upscaled image would throw away part of what the upscale made */
    if (quality >= 90)
        cinfo.comp_info[0].h_samp_factor = cinfo.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&cinfo, TRUE);
    size_t plane = (size_t)img->w * img->h;
    unsigned mv = (unsigned)img->maxval;
    while (cinfo.next_scanline < cinfo.image_height) {
        size_t y = cinfo.next_scanline;
        for (int x = 0; x < img->w; x++)
            for (int c = 0; c < 3; c++) {
                unsigned v = img->px[c * plane + y * img->w + x];
                row[3 * x + c] = (JSAMPLE)(mv == 255 ? v : (v * 255 + mv / 2) / mv);
            }
        JSAMPROW rp = row;
        jpeg_write_scanlines(&cinfo, &rp, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    free(row);
    return 0;
}

int catanet_raster_write(const char *path, const CatanetRaster *img, int kind, int quality, char *err, size_t es)
{
    if (!img || !img->px || (img->maxval != 255 && img->maxval != 65535))
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s': only 8- or 16-bit rasters can be written", path);
    if (kind != CATANET_IMG_PNG && kind != CATANET_IMG_JPEG)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "'%s': only PNG and JPEG can be written", path);
    if (kind == CATANET_IMG_JPEG && (quality < 1 || quality > 100))
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s': JPEG quality %d is not in 1..100", path, quality);
    FILE *f = fopen(path, "wb");
    if (!f)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot create '%s'", path);
    char msg[JMSG_LENGTH_MAX + 200] = "";
    int bad = kind == CATANET_IMG_PNG ? save_png(f, img, msg, sizeof(msg)) : save_jpeg(f, img, quality, msg, sizeof(msg));
    bad = fflush(f) != 0 || bad;
    bad = fclose(f) != 0 || bad;
    if (bad)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'%s%s%s", path, msg[0] ? " (" : "", msg,
                            msg[0] ? ")" : "");
    return 0;
}

int catanet_raster_save_png(const char *path, const CatanetRaster *img, char *err, size_t es)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "path too long");
    int ret = catanet_raster_write(tmp, img, CATANET_IMG_PNG, 0, err, es);
    /* durable before the rename: a crash leaves the old file or the new one, never an empty one */
    int fd = ret < 0 ? -1 : open(tmp, O_RDONLY);
    if (ret >= 0 && (fd < 0 || fsync(fd) != 0))
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'", path);
    if (fd >= 0)
        close(fd);
    if (ret >= 0 && rename(tmp, path) != 0)
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s'", path);
    if (ret < 0)
        remove(tmp);
    return ret;
}
