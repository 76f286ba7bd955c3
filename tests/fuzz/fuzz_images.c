/*
 * fuzz_images.c: libFuzzer target over the image codec: the tools' image_read and image_read_alpha (NPY;
 * PNG, JPEG and BMP through the training loader) and the training loader itself, which tells PNG, JPEG
 * and BMP apart by content; and its writers on what was read. The readers take paths, so each input is
 * written to a file of this process (TMPDIR, /tmp otherwise) named .npy when it starts like one and .png
 * else (image_read goes by extension, the loader by content). Every failure must come with a message;
 * every success must give a size within the caps and values the reader promises (alpha included); a
 * small decoded image (at most 4096 pixels) written as PNG must read back exactly, and as JPEG must read
 * back at its size. An input that decodes to more than 1 Mpixel is decoded once (the time per input). Build: make fuzz (clang, ASan + UBSan); make check runs it briefly.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imageio.h"
#include "imgload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require_message(int ret, const char *err)
{
    if (ret < 0 && (!err[0] || !memchr(err, 0, 512)))
        abort();
}

static void require_size(int w, int h)
{
    if (catanet_raster_size_refusal(w, h))
        abort();
}

/* the writers on a decoded image: PNG back exactly, JPEG back at its size without alpha */
static void round_trip(const CatanetRaster *r)
{
    static char out[2][256];
    if (!out[0][0]) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(out[0], sizeof(out[0]), "%s/fuzz_images-%d-out.png", dir, (int)getpid());
        snprintf(out[1], sizeof(out[1]), "%s/fuzz_images-%d-out.jpg", dir, (int)getpid());
    }
    char err[512] = "";
    CatanetRaster b;
    size_t n = (size_t)(3 + r->alpha) * r->w * r->h;
    if (catanet_raster_write(out[0], r, CATANET_IMG_PNG, 0, err, sizeof(err)) < 0 ||
        catanet_raster_load_alpha(out[0], &b, 1, err, sizeof(err)) < 0)
        abort();
    if (b.w != r->w || b.h != r->h || b.maxval != r->maxval || b.alpha != r->alpha ||
        memcmp(b.px, r->px, sizeof(uint16_t) * n))
        abort();
    catanet_raster_free(&b);
    if (catanet_raster_write(out[1], r, CATANET_IMG_JPEG, 90, err, sizeof(err)) < 0 ||
        catanet_raster_load_alpha(out[1], &b, 1, err, sizeof(err)) < 0)
        abort();
    if (b.w != r->w || b.h != r->h || b.maxval != 255 || b.alpha)
        abort();
    catanet_raster_free(&b);
    unlink(out[0]);
    unlink(out[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[2][256];
    if (!path[0][0]) {
        const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(path[0], sizeof(path[0]), "%s/fuzz_images-%d.png", dir, (int)getpid());
        snprintf(path[1], sizeof(path[1]), "%s/fuzz_images-%d.npy", dir, (int)getpid());
    }
    const char *p = path[size >= 6 && !memcmp(data, "\x93NUMPY", 6)];
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort(); /* the harness's own failure, not a finding: make it loud */
    char err[512];
    err[0] = 0;
    float *rgb = NULL;
    int w = 0, h = 0, bits = 0;
    int ret = image_read(p, &rgb, &w, &h, &bits, err, sizeof(err));
    require_message(ret, err);
    if (ret == 0) {
        require_size(w, h);
        size_t n = (size_t)3 * w * h;
        volatile float sum = 0; /* every value readable (ASan), PNG values in [0,1] */
        for (size_t i = 0; i < n; i++) {
            sum += rgb[i];
            if (p == path[0] && !(rgb[i] >= 0 && rgb[i] <= 1))
                abort();
        }
        free(rgb);
    }
    /* The other paths decode again: only images of at most 1 Mpixel, so that each input costs at most
     * one large decode. A few hundred bytes of progressive JPEG can describe tens of Mpixel (0.2 s
     * natively, seconds under this instrumentation); the large sizes run the same code as the small. */
    if (p == path[0] && (ret < 0 || (size_t)w * h <= ((size_t)1 << 20))) {
        /* (image_read above went through the loader without alpha: catanet_raster_load's path) */
        CatanetRaster r;
        err[0] = 0;
        int alpha = 0;
        ret = image_read_alpha(p, &rgb, &w, &h, &bits, &alpha, err, sizeof(err));
        require_message(ret, err);
        if (ret == 0) {
            require_size(w, h);
            for (size_t i = 0; i < (size_t)(3 + alpha) * w * h; i++)
                if (!(rgb[i] >= 0 && rgb[i] <= 1))
                    abort();
            free(rgb);
        }
        err[0] = 0;
        ret = catanet_raster_load_alpha(p, &r, 1, err, sizeof(err));
        require_message(ret, err);
        if (ret == 0) {
            require_size(r.w, r.h);
            for (size_t i = 0; i < (size_t)(3 + r.alpha) * r.w * r.h; i++)
                if (r.px[i] > r.maxval)
                    abort();
            if ((size_t)r.w * r.h <= 4096)
                round_trip(&r);
            catanet_raster_free(&r);
        }
    }
    unlink(p);
    return 0;
}
