/* tests/cuda_emu: the driver-API types engine/backend_cuda.c and tests/test_twins.c name. No libcuda:
 * they resolve cuCtxGetCurrent/cuCtxPushCurrent/cuCtxPopCurrent through
 * cudaGetDriverEntryPointByVersion, which ../emu_runtime.cpp answers with emulated ones (one fake
 * primary context). C and C++. */
#ifndef EMU_CUDA_H
#define EMU_CUDA_H
#include "cuda_runtime.h"
#ifdef __cplusplus
extern "C" {
#endif
typedef struct CUctx_st *CUcontext;
typedef int CUresult;
#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_CONTEXT 201
/* emulator only: pushes minus pops of the emulated contexts so far (0: every push had its pop) */
int emu_ctx_depth(void);
#ifdef __cplusplus
}
#endif
#endif
