/*
 * census: the launch census of one frame of the CUDA engine, under the host emulator, at frame sizes
 * the emulator could never compute (tools/census.sh turns it into a table; docs/roofline.md).
 *   census MODEL WxH [fp16|fp32] [primary|fallback]
 * Runs the engine as catanet-gpubench does (NV12 device frames in and out, process_image), but dry:
 * no kernel and no GEMM runs (emu_census), so what comes out is the shape of the work, not its
 * result. Prints, on stdout, one tab-separated line per kernel, GEMM, async copy and memset of one
 * frame after prepare (the CUDA graph's replay), in order: "kernel NAME BLOCKS THREADS SMEM GRID
 * BLOCK", "gemm M N K", "memcpy BYTES", "memset BYTES". The kernel picks are the given kind's
 * (default primary: what the GPU picks for the kernels it times is unknown here, and the emulator's
 * timings mean nothing). Test infrastructure: built only against the emulator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "catanet.h"

static void log_stderr(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    fprintf(stderr, "%s\n", msg);
}

/* an NV12 device frame, as catanet-gpubench's */
static int nv12_alloc(CatanetImage *im, int w, int h)
{
    memset(im, 0, sizeof(*im));
    im->width = w;
    im->height = h;
    im->on_device = 1;
    im->format = CATANET_PIX_NV12;
    im->bits = 8;
    im->matrix = CATANET_MATRIX_BT709;
    im->range = CATANET_RANGE_LIMITED;
    im->chroma_loc = CATANET_CHROMA_LEFT;
    for (int p = 0; p < 2; p++) {
        size_t pitch, wb = (size_t)(p ? 2 * ((w + 1) / 2) : w);
        int ph = p ? (h + 1) / 2 : h;
        if (cudaMallocPitch(&im->data[p], &pitch, wb, ph) != cudaSuccess)
            return -1;
        im->linesize[p] = (ptrdiff_t)pitch;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int w, h;
    if (argc < 3 || sscanf(argv[2], "%dx%d", &w, &h) != 2 || w < 1 || h < 1) {
        fprintf(stderr, "usage: census MODEL WxH [fp16|fp32] [primary|fallback]\n");
        return 2;
    }
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.device = CATANET_DEVICE_CUDA;
    cfg.precision = argc > 3 && !strcmp(argv[3], "fp32") ? CATANET_PRECISION_FP32 : CATANET_PRECISION_FP16;
    cfg.kernels = argc > 4 && !strcmp(argv[4], "fallback") ? CATANET_KERNELS_FALLBACK : CATANET_KERNELS_PRIMARY;
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_INFO;
    emu_census(NULL, 1); /* nothing runs from here on: prepare's forward and timings included */
    CatanetEngine *e = NULL;
    CatanetImage in, out;
    char msg[256] = "";
    int ret = catanet_engine_open(&e, argv[1], &cfg, msg, sizeof(msg));
    if (ret == 0)
        ret = catanet_engine_prepare(e, w, h);
    int s = e ? catanet_engine_scale(e) : 0;
    if (ret == 0 && (nv12_alloc(&in, w, h) || nv12_alloc(&out, w * s, h * s)))
        ret = -1;
    if (ret == 0) {
        printf("# census %s %dx%d %s %s\n", argv[1], w, h, argc > 3 ? argv[3] : "fp16", argc > 4 ? argv[4] : "primary");
        emu_census(stdout, 1);
        ret = catanet_engine_process_image(e, &in, &out);
        if (ret == 0 && cudaDeviceSynchronize() != cudaSuccess)
            ret = -1;
        emu_census(NULL, 1);
    }
    if (ret)
        fprintf(stderr, "census: failed (%d): %s\n", ret, e ? catanet_engine_last_error(e) : msg);
    catanet_engine_close(&e);
    return ret ? 1 : 0;
}
