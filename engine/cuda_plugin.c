/*
 * cuda_plugin.c: the CUDA plugin's one exported symbol (cuda_plugin.h): the table of the engine
 * backend (backend_cuda.c) and the training plan (training/model_train_cuda.c). Built into
 * libcatanet-cuda.so only, never into libcatanet.
 */
#include "backend_cuda.h"
#include "catanet.h"
#include "cuda_plugin.h"
#include "model_train_cuda.h"

__attribute__((visibility("default"))) const CatanetCudaPlugin catanet_cuda_plugin_v1 = {
    .abi = CATANET_CUDA_PLUGIN_ABI,
    .version = CATANET_VERSION_STRING,
    .engine_size = sizeof(CatanetEngine),
    .model_size = sizeof(CatanetModel),
    .device_count = catanet_cuda_device_count,
    .usable = catanet_cuda_usable,
    .open = catanet_cuda_open,
    .close = catanet_cuda_close,
    .prepare = catanet_cuda_prepare,
    .process = catanet_cuda_process,
    .process_image = catanet_cuda_process_image,
    .memory_bytes = catanet_cuda_memory_bytes,
    .profile = catanet_cuda_profile,
    .device_name = catanet_cuda_device_name,
    .debug_cid = catanet_cuda_debug_cid,
    .train_create = catanet_train_cuda_create,
    .train_free = catanet_train_cuda_free,
    .train_forward = catanet_train_cuda_forward,
    .train_backward = catanet_train_cuda_backward,
    .train_zero_grads = catanet_train_cuda_zero_grads,
    .train_step = catanet_train_cuda_step,
    .train_undo = catanet_train_cuda_undo,
    .train_adam = catanet_train_cuda_adam,
    .train_get_adam = catanet_train_cuda_get_adam,
    .train_set_adam = catanet_train_cuda_set_adam,
    .train_get_weights = catanet_train_cuda_get_weights,
    .train_set_weights = catanet_train_cuda_set_weights,
    .train_get_grads = catanet_train_cuda_get_grads,
    .train_sync = catanet_train_cuda_sync,
    .train_device = catanet_train_cuda_device,
    .train_error = catanet_train_cuda_error,
};
