/* engine_internal.h: the engine handle, shared by engine.c and the backends. */
#ifndef CATANET_ENGINE_INTERNAL_H
#define CATANET_ENGINE_INTERNAL_H

#include "catanet.h"
#include "forward_cpu.h"
#include "model.h"

#define CATANET_MAX_TILES 1024

struct CatanetEngine {
    CatanetConfig cfg;
    CatanetPrecision precision;
    CatanetModel *model;
    int prepared, width, height;
    CatanetCpuPlan *cpu;
    float *rgb_in, *rgb_out;      /* host staging for process_image on the CPU */
    /* tiling (cfg.tile): the backend is prepared for tile_w x tile_h pieces at these starts */
    int tiled, tile_w, tile_h, n_tx, n_ty;
    int tx[CATANET_MAX_TILES], ty[CATANET_MAX_TILES];
    float *tile_in, *tile_out;
    void *cuda;                   /* backend_cuda's state */
    char cpu_name[64];
    char err[1024];
};

void catanet_log(const CatanetEngine *e, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* sets the detail message, logs it, returns code */
int catanet_engine_fail(CatanetEngine *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
