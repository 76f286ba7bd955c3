/*
 * engine_log.c: an engine's log callback and its last-error message (engine_internal.h), apart
 * from engine.c so that the CUDA plugin, which reports through them, links them without the rest.
 */
#include <stdarg.h>
#include <stdio.h>

#include "engine_internal.h"

void catanet_log(const CatanetEngine *e, int level, const char *fmt, ...)
{
    if (!e->cfg.log || level > e->cfg.log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->cfg.log(e->cfg.log_opaque, level, msg);
}

int catanet_engine_fail(CatanetEngine *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->err, sizeof(e->err), fmt, ap);
    va_end(ap);
    catanet_log(e, CATANET_LOG_ERROR, "%s", e->err);
    return code;
}
