/*
 * ffmpeg_ref: the library's answer for one raw frame, for the FFmpeg filter tests
 * (tests/t_ffmpeg_formats.sh compiles it against build/libcatanet.a).
 *
 *   ffmpeg_ref MODEL PIXFMT W H MATRIX RANGE LOC IN.raw OUT.raw
 *       upscale IN (an FFmpeg rawvideo frame: planes one after the other, rows unpadded) with
 *       catanet_engine_process_image and write OUT in the same layout at the output size;
 *       MATRIX 601|709|2020, RANGE limited|full, LOC left|center|topleft.
 *   ffmpeg_ref --precision MODEL PIXFMT W H MATRIX RANGE LOC IN.raw FFOUT.raw
 *       compare FFOUT (the filter's output for IN), read back to R'G'B' with the library, with
 *       the network's float output (clipped to [0,1]); print the max error and the 8-bit
 *       quantisation step; exit 0 when the error is below half of that step (an 8-bit
 *       intermediate could not get there), 1 when it is not.
 * Any error (usage, a file, the library) exits 2, so that the precision check's "1" means
 * only "measured, and too large".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"

typedef struct Fmt {
    const char *name;
    CatanetPixelFormat f;
    int bits, bytes, planes;
    int sx, sy;                    /* chroma shifts */
    int comps[3];                  /* samples per pixel per plane */
    int gbr;                       /* FFmpeg planes G,B,R */
} Fmt;

static const Fmt fmts[] = {
    { "yuv420p",     CATANET_PIX_YUV420P, 8,  1, 3, 1, 1, { 1, 1, 1 }, 0 },
    { "yuvj420p",    CATANET_PIX_YUV420P, 8,  1, 3, 1, 1, { 1, 1, 1 }, 0 },
    { "yuv422p",     CATANET_PIX_YUV422P, 8,  1, 3, 1, 0, { 1, 1, 1 }, 0 },
    { "yuv444p",     CATANET_PIX_YUV444P, 8,  1, 3, 0, 0, { 1, 1, 1 }, 0 },
    { "nv12",        CATANET_PIX_NV12,    8,  1, 2, 1, 1, { 1, 2, 0 }, 0 },
    { "rgb24",       CATANET_PIX_RGB24,   8,  1, 1, 0, 0, { 3, 0, 0 }, 0 },
    { "bgr24",       CATANET_PIX_BGR24,   8,  1, 1, 0, 0, { 3, 0, 0 }, 0 },
    { "gbrp",        CATANET_PIX_RGBP,    8,  1, 3, 0, 0, { 1, 1, 1 }, 1 },
    { "gray",        CATANET_PIX_GRAY,    8,  1, 1, 0, 0, { 1, 0, 0 }, 0 },
    { "yuv420p10le", CATANET_PIX_YUV420P, 10, 2, 3, 1, 1, { 1, 1, 1 }, 0 },
    { "yuv444p10le", CATANET_PIX_YUV444P, 10, 2, 3, 0, 0, { 1, 1, 1 }, 0 },
    { "p010le",      CATANET_PIX_P010,    10, 2, 2, 1, 1, { 1, 2, 0 }, 0 },
    { "yuvj422p",    CATANET_PIX_YUV422P, 8,  1, 3, 1, 0, { 1, 1, 1 }, 0 },
    { "yuvj444p",    CATANET_PIX_YUV444P, 8,  1, 3, 0, 0, { 1, 1, 1 }, 0 },
    { "yuv422p10le", CATANET_PIX_YUV422P, 10, 2, 3, 1, 0, { 1, 1, 1 }, 0 },
    { "yuv420p12le", CATANET_PIX_YUV420P, 12, 2, 3, 1, 1, { 1, 1, 1 }, 0 },
    { "yuv422p12le", CATANET_PIX_YUV422P, 12, 2, 3, 1, 0, { 1, 1, 1 }, 0 },
    { "yuv444p12le", CATANET_PIX_YUV444P, 12, 2, 3, 0, 0, { 1, 1, 1 }, 0 },
    { "gray10le",    CATANET_PIX_GRAY,    10, 2, 1, 0, 0, { 1, 0, 0 }, 0 },
    { "gray16le",    CATANET_PIX_GRAY,    16, 2, 1, 0, 0, { 1, 0, 0 }, 0 },
    { "rgb48le",     CATANET_PIX_RGB48,   16, 2, 1, 0, 0, { 3, 0, 0 }, 0 },
    { "gbrp10le",    CATANET_PIX_RGBP,    10, 2, 3, 0, 0, { 1, 1, 1 }, 1 },
    { "gbrp16le",    CATANET_PIX_RGBP,    16, 2, 3, 0, 0, { 1, 1, 1 }, 1 },
};

typedef struct Frame {
    CatanetImage im;
    unsigned char *buf;
    size_t size;
} Frame;

/* lay out an FFmpeg rawvideo frame (align 1) and describe it to the library */
static int frame_init(Frame *fr, const Fmt *f, int w, int h, CatanetColorMatrix m, CatanetColorRange r,
                      CatanetChromaLoc loc)
{
    size_t off[3], ls[3];
    size_t total = 0;
    memset(fr, 0, sizeof(*fr));
    for (int p = 0; p < f->planes; p++) {
        int pw = p ? (w + (1 << f->sx) - 1) >> f->sx : w, ph = p ? (h + (1 << f->sy) - 1) >> f->sy : h;
        if (f->gbr || f->comps[0] == 3 || f->f == CATANET_PIX_GRAY)
            pw = w, ph = h;
        ls[p] = (size_t)pw * f->comps[p] * f->bytes;
        off[p] = total;
        total += ls[p] * ph;
    }
    fr->buf = malloc(total);
    if (!fr->buf)
        return -1;
    fr->size = total;
    CatanetImage *im = &fr->im;
    im->format = f->f;
    im->bits = f->bits;
    im->width = w;
    im->height = h;
    im->matrix = m;
    im->range = r;
    im->chroma_loc = loc;
    for (int p = 0; p < f->planes; p++) {
        /* gbrp: FFmpeg's planes are G, B, R, the library's R, G, B */
        int q = !f->gbr ? p : p == 0 ? 1 : p == 1 ? 2 : 0;
        im->data[q] = fr->buf + off[p];
        im->linesize[q] = (ptrdiff_t)ls[p];
    }
    return 0;
}

static int read_file(const char *path, Frame *fr)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return -1;
    }
    size_t n = fread(fr->buf, 1, fr->size, fp);
    int extra = fgetc(fp) != EOF;
    fclose(fp);
    if (n != fr->size || extra) {
        fprintf(stderr, "ffmpeg_ref: %s is not one %zu-byte frame\n", path, fr->size);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int precision = argc > 1 && !strcmp(argv[1], "--precision");
    char **a = argv + precision;
    if (argc - precision != 10) {
        fprintf(stderr, "usage: ffmpeg_ref [--precision] MODEL PIXFMT W H 601|709|2020 limited|full "
                        "left|center|topleft IN.raw OUT.raw\n");
        return 2;
    }
    const Fmt *f = NULL;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
        if (!strcmp(fmts[i].name, a[2]))
            f = &fmts[i];
    if (!f) {
        fprintf(stderr, "ffmpeg_ref: unknown pixel format %s\n", a[2]);
        return 2;
    }
    int w = atoi(a[3]), h = atoi(a[4]);
    CatanetColorMatrix m = !strcmp(a[5], "709") ? CATANET_MATRIX_BT709 :
                           !strcmp(a[5], "2020") ? CATANET_MATRIX_BT2020 : CATANET_MATRIX_BT601;
    CatanetColorRange r = !strcmp(a[6], "full") ? CATANET_RANGE_FULL : CATANET_RANGE_LIMITED;
    CatanetChromaLoc loc = !strcmp(a[7], "center") ? CATANET_CHROMA_CENTER :
                           !strcmp(a[7], "topleft") ? CATANET_CHROMA_TOPLEFT : CATANET_CHROMA_LEFT;

    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.threads = 1;  /* results do not depend on it; the tests run beside other work */
    CatanetEngine *e;
    char err[512];
    if (catanet_engine_open(&e, a[1], &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "ffmpeg_ref: %s\n", err);
        return 2;
    }
    int s = catanet_engine_scale(e);
    Frame in, out;
    if (frame_init(&in, f, w, h, m, r, loc) < 0 || frame_init(&out, f, s * w, s * h, m, r, loc) < 0 ||
        read_file(a[8], &in) < 0 || catanet_engine_prepare(e, w, h) < 0) {
        fprintf(stderr, "ffmpeg_ref: setup failed: %s\n", catanet_engine_last_error(e));
        return 2;
    }
    if (!precision) {
        if (catanet_engine_process_image(e, &in.im, &out.im) < 0) {
            fprintf(stderr, "ffmpeg_ref: %s\n", catanet_engine_last_error(e));
            return 2;
        }
        FILE *fp = fopen(a[9], "wb");
        if (!fp || fwrite(out.buf, 1, out.size, fp) != out.size || fclose(fp)) {
            perror(a[9]);
            return 2;
        }
        catanet_engine_close(&e);
        return 0;
    }
    /* precision: the float network output against the filter's frame read back */
    size_t n_in = (size_t)3 * w * h, n_out = n_in * s * s;
    float *rin = malloc(sizeof(float) * n_in), *rnet = malloc(sizeof(float) * n_out),
          *rff = malloc(sizeof(float) * n_out);
    if (!rin || !rnet || !rff || read_file(a[9], &out) < 0 || catanet_image_to_rgb(&in.im, rin) < 0 ||
        catanet_engine_process(e, rin, rnet) < 0 || catanet_image_to_rgb(&out.im, rff) < 0) {
        fprintf(stderr, "ffmpeg_ref: precision check setup failed\n");
        return 2;
    }
    double worst = 0;
    for (size_t i = 0; i < n_out; i++) {
        double v = rnet[i] < 0 ? 0 : rnet[i] > 1 ? 1 : rnet[i];
        double d = rff[i] > v ? rff[i] - v : v - rff[i];
        worst = d > worst ? d : worst;
    }
    /* one 8-bit code of luma (limited: 1/219, full: 1/255) */
    double step8 = r == CATANET_RANGE_FULL ? 1.0 / 255 : 1.0 / 219;
    printf("%s: max |filter - float network| = %.5f, 8-bit code step %.5f\n", f->name, worst, step8);
    catanet_engine_close(&e);
    return worst < 0.5 * step8 ? 0 : 1;
}
