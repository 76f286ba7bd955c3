/*
 * fuzz_images.c: libFuzzer target over the image readers: the tools' image_read (NPY; PNG through the
 * training loader) and the training loader itself, which tells PNG, JPEG and BMP apart by content. The
 * readers take paths, so each input is written to a file of this process (TMPDIR, /tmp otherwise) named
 * .npy when it starts like one and .png else (image_read goes by extension, the loader by content).
 * Every failure must come with a message; every success must give a size within the caps and values
 * the reader promises. Build: make fuzz (clang, ASan + UBSan); make check runs it briefly.
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
    if (p == path[0]) {
        CatanetRaster r;
        err[0] = 0;
        ret = catanet_raster_load(p, &r, err, sizeof(err));
        require_message(ret, err);
        if (ret == 0) {
            require_size(r.w, r.h);
            for (size_t i = 0; i < (size_t)3 * r.w * r.h; i++)
                if (r.px[i] > r.maxval)
                    abort();
            catanet_raster_free(&r);
        }
    }
    unlink(p);
    return 0;
}
