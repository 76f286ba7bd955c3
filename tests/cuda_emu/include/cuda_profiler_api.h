/* The host emulator's cuda_profiler_api.h (tests/cuda_emu): cudaProfilerStart/Stop mark the range a
 * profiler records (catanet-gpubench -P). The emulator counts the kernels that run inside it and
 * says so on stderr at the stop, so a test can check that the range holds one frame's launches. */
#ifndef CATANET_EMU_CUDA_PROFILER_API_H
#define CATANET_EMU_CUDA_PROFILER_API_H
#include "cuda_runtime.h"
#ifdef __cplusplus
extern "C" {
#endif
cudaError_t cudaProfilerStart(void);
cudaError_t cudaProfilerStop(void);
#ifdef __cplusplus
}
#endif
#endif
