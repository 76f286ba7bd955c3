/* error.h: helpers to fill caller-supplied error buffers (no global state). */
#ifndef CATANET_ERROR_H
#define CATANET_ERROR_H

#include <stddef.h>

#if defined(__GNUC__)
#define CATANET_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CATANET_PRINTF(a, b)
#endif

/* writes the message to buf (if not NULL) and returns code */
int catanet_errf(char *buf, size_t size, int code, const char *fmt, ...) CATANET_PRINTF(4, 5);

#endif
