/* backend_cuda.h: the engine's CUDA backend: backend_cuda.c in the CUDA plugin; in libcatanet,
 * cuda_dl.c's functions of the same names, which load the plugin and forward to it. */
#ifndef CATANET_BACKEND_CUDA_H
#define CATANET_BACKEND_CUDA_H

#include "engine_internal.h"

/* the number of usable CUDA devices; 0 with the reason (the plugin's loader's, cudart's) in why */
int catanet_cuda_usable(char *why, size_t size);
int catanet_cuda_open(CatanetEngine *e);
void catanet_cuda_close(CatanetEngine *e);
int catanet_cuda_prepare(CatanetEngine *e, int width, int height);
int catanet_cuda_process(CatanetEngine *e, const float *in, float *out);
int catanet_cuda_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out);
/* device bytes planned for the prepared size, weights included (0 before prepare) */
int64_t catanet_cuda_memory_bytes(const CatanetEngine *e);
/* one eager forward with an event after each step: the step table into report */
int catanet_cuda_profile(CatanetEngine *e, char *report, size_t size);
/* the GPU's name, e.g. "NVIDIA H100 80GB HBM3" (valid while the engine lives) */
const char *catanet_cuda_device_name(const CatanetEngine *e);
/* tests only (tests/test_twins.c): the last residual group's token centers (cid) of the last frame,
 * n = the prepared width x height, copied to the host */
int catanet_cuda_debug_cid(CatanetEngine *e, int32_t *cid, size_t n);

#endif
