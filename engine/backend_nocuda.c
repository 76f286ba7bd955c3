/* backend_nocuda.c: the CUDA entry points of a build without the CUDA toolkit. */
#include "backend_cuda.h"
#include "catanet.h"

int catanet_cuda_device_count(void)
{
    return 0;
}

int catanet_cuda_open(CatanetEngine *e)
{
    return catanet_engine_fail(e, CATANET_ERR_NO_DEVICE, "this libcatanet was built without CUDA");
}

void catanet_cuda_close(CatanetEngine *e)
{
}

int catanet_cuda_prepare(CatanetEngine *e, int width, int height)
{
    return CATANET_ERR_NO_DEVICE;
}

int catanet_cuda_process(CatanetEngine *e, const float *in, float *out)
{
    return CATANET_ERR_NO_DEVICE;
}

int catanet_cuda_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out)
{
    return CATANET_ERR_NO_DEVICE;
}

int64_t catanet_cuda_memory_bytes(const CatanetEngine *e)
{
    return 0;
}

const char *catanet_cuda_device_name(const CatanetEngine *e)
{
    return "none";
}

int catanet_cuda_profile(CatanetEngine *e, char *report, size_t size)
{
    return CATANET_ERR_NO_DEVICE;
}

int catanet_cuda_debug_cid(CatanetEngine *e, int32_t *cid, size_t n)
{
    return CATANET_ERR_NO_DEVICE;
}
