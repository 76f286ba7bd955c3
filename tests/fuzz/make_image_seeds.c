/*
 * make_image_seeds.c: the seed corpus of fuzz_images: small images of every kind the readers take.
 * PNG 8/16-bit RGB, grey, grey+alpha, palette (with and without tRNS), RGBA and Adam7-interlaced
 * (libpng); JPEG baseline, progressive, greyscale, 4:4:4 with restart markers, arithmetic-coded and
 * CMYK (libjpeg); BMP 24-bit and 8-bit palette, bottom-up and top-down; NPY (3,H,W) and (1,3,H,W).
 *   make_image_seeds OUTDIR
 */
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* after stdio.h: it uses FILE and size_t */

enum { W = 13, H = 9 };

static const char *dir;

static FILE *create(const char *name)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    return f;
}

static int sample(int x, int y, int c, int maxv)
{
    return (int)((long)(x * 37 + y * 23 + c * 71) * maxv / (W * 37 + H * 23 + 2 * 71));
}

/* trns: a palette with transparency (tRNS) */
static void png(const char *name, int color, int depth, int interlace, int trns)
{
    FILE *f = create(name);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        exit(1);
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, depth, color, interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        for (int i = 0; i < 16; i++)
            pal[i] = (png_color){ (png_byte)(i * 16), (png_byte)(255 - i * 16), (png_byte)(i * 7) };
        png_set_PLTE(png, info, pal, 16);
        png_byte alpha[16];
        for (int i = 0; i < 16; i++)
            alpha[i] = (png_byte)(i * 17);
        if (trns)
            png_set_tRNS(png, info, alpha, 16, NULL);
    }
    int ch = color == PNG_COLOR_TYPE_RGB ? 3 : color == PNG_COLOR_TYPE_RGBA ? 4 : color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1, bps = depth == 16 ? 2 : 1;
    uint8_t buf[H][W * 4 * 2];
    png_bytep rows[H];
    for (int y = 0; y < H; y++) {
        rows[y] = buf[y];
        for (int x = 0; x < W; x++)
            for (int c = 0; c < ch; c++) {
                int v = color == PNG_COLOR_TYPE_PALETTE ? sample(x, y, c, 15) : sample(x, y, c, depth == 16 ? 65535 : 255);
                uint8_t *q = buf[y] + (x * ch + c) * bps;
                if (bps == 2) {
                    q[0] = (uint8_t)(v >> 8);
                    q[1] = (uint8_t)v;
                } else
                    q[0] = (uint8_t)v;
            }
    }
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
}

/* kind: 0 baseline 4:2:0, 1 progressive, 2 4:4:4 with restart markers and a comment, 3 arithmetic-coded,
 * 4 CMYK (refused by the reader: its refusal path) */
static void jpeg(const char *name, int grey, int kind)
{
    FILE *f = create(name);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = W;
    c.image_height = H;
    c.input_components = grey ? 1 : kind == 4 ? 4 : 3;
    c.in_color_space = grey ? JCS_GRAYSCALE : kind == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 80, TRUE);
    if (kind == 1)
        jpeg_simple_progression(&c);
    if (kind == 2) {
        c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
        c.restart_interval = 1;
    }
    if (kind == 3)
        c.arith_code = TRUE;
    jpeg_start_compress(&c, TRUE);
    if (kind == 2)
        jpeg_write_marker(&c, JPEG_COM, (const JOCTET *)"seed", 4);
    JSAMPLE row[W * 4];
    while (c.next_scanline < H) {
        for (int x = 0; x < W; x++)
            for (int k = 0; k < c.input_components; k++)
                row[x * c.input_components + k] = (JSAMPLE)sample(x, (int)c.next_scanline, k, 255);
        JSAMPROW rp = row;
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void put16(FILE *f, int v) { fputc(v & 255, f); fputc(v >> 8 & 255, f); }
static void put32(FILE *f, long v) { put16(f, (int)(v & 0xffff)); put16(f, (int)(v >> 16 & 0xffff)); }

static void bmp(const char *name, int bpp, int top_down)
{
    FILE *f = create(name);
    int stride = (W * bpp / 8 + 3) / 4 * 4, pal = bpp == 8 ? 256 * 4 : 0;
    fputs("BM", f);
    put32(f, 54 + pal + (long)stride * H);
    put32(f, 0);
    put32(f, 54 + pal);
    put32(f, 40);
    put32(f, W);
    put32(f, top_down ? -H : H);
    put16(f, 1);
    put16(f, bpp);
    put32(f, 0);
    put32(f, (long)stride * H);
    put32(f, 2835);
    put32(f, 2835);
    put32(f, bpp == 8 ? 256 : 0);
    put32(f, 0);
    for (int i = 0; i < pal / 4; i++)
        put32(f, (long)i << 16 | (255 - i) << 8 | (i * 3 & 255));
    for (int y = 0; y < H; y++) {
        int n = 0;
        for (int x = 0; x < W; x++)
            if (bpp == 8)
                fputc(sample(x, y, 0, 255), f), n++;
            else
                for (int c = 2; c >= 0; c--)
                    fputc(sample(x, y, c, 255), f), n++;
        for (; n < stride; n++)
            fputc(0, f);
    }
    fclose(f);
}

static void npy(const char *name, int four)
{
    FILE *f = create(name);
    char hdr[128];
    int n = snprintf(hdr, sizeof(hdr), "{'descr': '<f4', 'fortran_order': False, 'shape': (%s3, %d, %d), }",
                     four ? "1, " : "", H, W);
    int pad = 63 - (10 + n) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    put16(f, n + pad + 1);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float v = sample(x, y, c, 1000) / 1000.0f;
                fwrite(&v, 4, 1, f);
            }
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_image_seeds OUTDIR\n");
        return 2;
    }
    dir = argv[1];
    png("rgb8.png", PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, 0);
    png("rgb16.png", PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, 0);
    png("grey8.png", PNG_COLOR_TYPE_GRAY, 8, PNG_INTERLACE_NONE, 0);
    png("pal4.png", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, 0);
    png("rgba8_adam7.png", PNG_COLOR_TYPE_RGBA, 8, PNG_INTERLACE_ADAM7, 0);
    png("greya8.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, 0);
    png("greya16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, PNG_INTERLACE_NONE, 0);
    png("rgba16.png", PNG_COLOR_TYPE_RGBA, 16, PNG_INTERLACE_NONE, 0);
    png("pal4_trns.png", PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, 1);
    jpeg("rgb.jpg", 0, 0);
    jpeg("prog.jpg", 0, 1);
    jpeg("grey.jpg", 1, 0);
    jpeg("444_restart.jpg", 0, 2);
    jpeg("arith.jpg", 0, 3);
    jpeg("cmyk.jpg", 0, 4);
    bmp("rgb24.bmp", 24, 0);
    bmp("pal8_topdown.bmp", 8, 1);
    npy("chw.npy", 0);
    npy("nchw.npy", 1);
    return 0;
}
