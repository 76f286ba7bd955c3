/* backend_cuda.h: the engine's CUDA backend (backend_cuda.c when built with CUDA, stubs otherwise). */
#ifndef CATANET_BACKEND_CUDA_H
#define CATANET_BACKEND_CUDA_H

#include "engine_internal.h"

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
