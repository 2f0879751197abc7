/* log.c - the process-wide log sink (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

static _Atomic(vd_log_sink) sink;

void vd_log_set_sink(vd_log_sink s)
{
    atomic_store(&sink, s);
}

void vd_log(const char *fmt, ...)
{
    vd_log_sink s = atomic_load(&sink);
    if (!s)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s(line);
}
