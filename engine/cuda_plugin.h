/*
 * cuda_plugin.h: the table of entry points of the CUDA plugin (libcatanet-cuda.so.MAJOR).
 *
 * The CUDA backend (engine/backend_cuda.c, training/model_train_cuda.c, kernels/cuda/ *.cu) is built
 * as a shared object of its own, linked against cudart and cuBLAS; libcatanet has no link
 * dependency on CUDA and dlopens the plugin when a CUDA engine, a CUDA training plan or
 * catanet_cuda_device_count asks for it (engine/cuda_dl.c), then reads this one table.
 * The plugin shares the engine's and the model's struct layouts, so it must come from the same
 * build as the library: the loader checks abi, version and the sizes before using it.
 */
#ifndef CATANET_CUDA_PLUGIN_H
#define CATANET_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "engine_internal.h"
#include "model.h"

/* raised whenever the table or a struct the plugin shares with the library changes shape */
#define CATANET_CUDA_PLUGIN_ABI 1
/* the one symbol the plugin exports */
#define CATANET_CUDA_PLUGIN_SYMBOL "catanet_cuda_plugin_v1"

typedef struct CatanetTrainCuda CatanetTrainCuda;

typedef struct CatanetCudaPlugin {
    int abi;                     /* CATANET_CUDA_PLUGIN_ABI */
    const char *version;         /* catanet_version() of the build */
    size_t engine_size, model_size;
    /* the engine backend (backend_cuda.h) */
    int (*device_count)(void);
    int (*usable)(char *why, size_t size);
    int (*open)(CatanetEngine *e);
    void (*close)(CatanetEngine *e);
    int (*prepare)(CatanetEngine *e, int width, int height);
    int (*process)(CatanetEngine *e, const float *in, float *out);
    int (*process_image)(CatanetEngine *e, const CatanetImage *in, CatanetImage *out);
    int64_t (*memory_bytes)(const CatanetEngine *e);
    int (*profile)(CatanetEngine *e, char *report, size_t size);
    const char *(*device_name)(const CatanetEngine *e);
    int (*debug_cid)(CatanetEngine *e, int32_t *cid, size_t n);
    /* the training plan (training/model_train_cuda.h) */
    int (*train_create)(CatanetTrainCuda **out, CatanetModel *m, int batch, int h, int w, char *err, size_t es);
    void (*train_free)(CatanetTrainCuda *p);
    int (*train_forward)(CatanetTrainCuda *p, const float *lr, const float *hr, float *out, double *loss);
    int (*train_backward)(CatanetTrainCuda *p);
    int (*train_zero_grads)(CatanetTrainCuda *p);
    int (*train_step)(CatanetTrainCuda *p, const float *lr, const float *hr, double *loss, double *gnorm);
    int (*train_undo)(CatanetTrainCuda *p);
    int (*train_adam)(CatanetTrainCuda *p, float lr, float b1, float b2, float eps, int64_t t, float gscale);
    int (*train_get_adam)(CatanetTrainCuda *p, CatanetModel *m, CatanetModel *v);
    int (*train_set_adam)(CatanetTrainCuda *p, const CatanetModel *m, const CatanetModel *v);
    int (*train_get_weights)(CatanetTrainCuda *p, CatanetModel *m);
    int (*train_set_weights)(CatanetTrainCuda *p, const CatanetModel *m);
    int (*train_get_grads)(CatanetTrainCuda *p, CatanetModel *grads);
    int (*train_sync)(CatanetTrainCuda *p);
    const char *(*train_device)(const CatanetTrainCuda *p);
    const char *(*train_error)(const CatanetTrainCuda *p);
} CatanetCudaPlugin;

/* The plugin's table, loaded once per process; NULL when it cannot be used, with the reason
 * (dlerror's text, a missing file, a plugin of another build) copied to err. */
const CatanetCudaPlugin *catanet_cuda_plugin(char *err, size_t es);

#endif
