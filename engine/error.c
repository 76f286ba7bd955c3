/* error.c: error strings and messages. */
#include <stdarg.h>
#include <stdio.h>

#include "catanet.h"
#include "error.h"

const char *catanet_strerror(int err)
{
    switch (err) {
    case CATANET_OK: return "success";
    case CATANET_ERR_INVALID_ARG: return "invalid argument";
    case CATANET_ERR_NOMEM: return "out of memory";
    case CATANET_ERR_IO: return "input/output error";
    case CATANET_ERR_FORMAT: return "malformed model or checkpoint file";
    case CATANET_ERR_UNSUPPORTED: return "unsupported";
    case CATANET_ERR_NO_DEVICE: return "no usable CUDA device";
    case CATANET_ERR_CUDA: return "CUDA error";
    case CATANET_ERR_CUBLAS: return "cuBLAS error";
    case CATANET_ERR_STATE: return "call out of order";
    case CATANET_ERR_NONFINITE: return "non-finite output (NaN or Inf)";
    }
    return "unknown error";
}

const char *catanet_version(void)
{
    return CATANET_VERSION_STRING;
}

int catanet_errf(char *buf, size_t size, int code, const char *fmt, ...)
{
    if (buf && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
    }
    return code;
}
