/* tests/cuda_emu: the driver-API types tests/test_twins.c names (no driver calls are emulated). */
#ifndef EMU_CUDA_H
#define EMU_CUDA_H
#include "cuda_runtime.h"
typedef struct CUctx_st *CUcontext;
typedef int CUresult;
#define CUDA_SUCCESS 0
#endif
