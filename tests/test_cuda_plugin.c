/*
 * test_cuda_plugin.c: the library's side of the CUDA plugin (engine/cuda_dl.c) and device=auto.
 *
 *   test_cuda_plugin                      whatever this machine has: with a GPU (and the plugin),
 *                                         auto picks CUDA; without, auto picks the CPU and says why,
 *                                         and device=cuda fails with CATANET_ERR_NO_DEVICE and a reason
 *   test_cuda_plugin --unavailable TEXT   CUDA must be unusable here (tests/t_cuda_plugin.sh hides the
 *                                         CUDA libraries or the plugin) and every reason must hold TEXT
 *   test_cuda_plugin --available          CUDA must be usable (tests/t_cuda_emu.sh: the emulated plugin)
 *
 * Runs the shipped XS model on a 5x4 frame: the CPU path must work whatever happens to CUDA.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "testutil.h"

#define MODEL "weights/catanet_xs_x2.safetensors"

static char logged[4096];

static void log_cb(void *opaque, int level, const char *msg)
{
    if (level == CATANET_LOG_INFO && strlen(logged) + strlen(msg) + 2 < sizeof(logged)) {
        strcat(logged, msg);
        strcat(logged, "\n");
    }
}

/* one 5x4 frame on e: the output must be finite */
static int run_frame(CatanetEngine *e)
{
    float in[3 * 5 * 4], out[3 * 10 * 8];
    for (int i = 0; i < 3 * 5 * 4; i++)
        in[i] = (float)(i % 7) / 7.0f;
    if (catanet_engine_prepare(e, 5, 4) < 0 || catanet_engine_process(e, in, out) < 0)
        return -1;
    for (int i = 0; i < 3 * 10 * 8; i++)
        if (!isfinite(out[i]))
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *want = argc == 3 && !strcmp(argv[1], "--unavailable") ? argv[2] : NULL;
    int need = argc == 2 && !strcmp(argv[1], "--available");
    if (argc != 1 && !want && !need) {
        fprintf(stderr, "usage: test_cuda_plugin [--unavailable TEXT | --available]\n");
        return 2;
    }
    int ndev = catanet_cuda_device_count();
    if (want)
        test_check(ndev == 0, "CUDA made unreachable: catanet_cuda_device_count() = %d (want 0)", ndev);
    if (need)
        test_check(ndev > 0, "CUDA must be usable here: catanet_cuda_device_count() = %d", ndev);

    /* auto: the choice, logged at INFO, and what the engine reports */
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.device = CATANET_DEVICE_AUTO;
    cfg.log = log_cb;
    cfg.log_level = CATANET_LOG_INFO;
    char err[1024];
    CatanetEngine *e = NULL;
    int r = catanet_engine_open(&e, MODEL, &cfg, err, sizeof(err));
    test_check(r == 0, "device=auto opens (%s)", r ? err : "ok");
    if (r == 0) {
        CatanetDevice d = catanet_engine_device(e);
        const char *name = catanet_engine_device_name(e);
        if (ndev > 0)
            test_check(d == CATANET_DEVICE_CUDA && strstr(logged, "device auto: CUDA"),
                       "device=auto with %d GPU(s): CUDA, on %s; logged: %s", ndev, name, logged);
        else
            test_check(d == CATANET_DEVICE_CPU && !strncmp(name, "cpu", 3) && strstr(logged, "device auto: the CPU (") &&
                           (!want || strstr(logged, want)),
                       "device=auto without CUDA: the CPU (%s), the reason logged at INFO: %s", name, logged);
        test_check(run_frame(e) == 0, "device=auto: a frame runs, finite (%s)", catanet_engine_last_error(e));
        catanet_engine_close(&e);
    }

    /* fp16 is CUDA only: auto falling back to the CPU must refuse it, not run fp32 silently */
    if (ndev == 0) {
        cfg.precision = CATANET_PRECISION_FP16;
        r = catanet_engine_open(&e, MODEL, &cfg, err, sizeof(err));
        test_check(r == CATANET_ERR_UNSUPPORTED && !e, "device=auto, precision=fp16 without CUDA: refused (%s)", err);
        cfg.precision = CATANET_PRECISION_AUTO;

        /* cuda: never a fallback; the reason is the loader's or cudart's */
        cfg.device = CATANET_DEVICE_CUDA;
        r = catanet_engine_open(&e, MODEL, &cfg, err, sizeof(err));
        test_check(r == CATANET_ERR_NO_DEVICE && !e && (strstr(err, "CUDA is not available") || strstr(err, "no CUDA device")) &&
                       (!want || strstr(err, want)),
                   "device=cuda without CUDA: CATANET_ERR_NO_DEVICE (%s)", err);
    }

    /* the CPU, whatever CUDA does */
    cfg.device = CATANET_DEVICE_CPU;
    r = catanet_engine_open(&e, MODEL, &cfg, err, sizeof(err));
    test_check(r == 0 && run_frame(e) == 0, "device=cpu runs (%s)", r ? err : catanet_engine_last_error(e));
    catanet_engine_close(&e);
    return test_finish();
}
