/* log.c - the process-wide log and warning sinks (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log.h"

static _Atomic(vd_log_sink) log_sink, warn_sink;

void vd_log_set_sink(vd_log_sink s)
{
    atomic_store(&log_sink, s);
}

void vd_warn_set_sink(vd_log_sink s)
{
    atomic_store(&warn_sink, s);
}

static void emit(vd_log_sink s, const char *fmt, va_list ap)
{
    if (!s)
        return;
    /* The size of the ABI layer's own lines (vixdl_log), so that a line
     * passed through a sink is cut where it would be cut there. */
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    s(line);
}

void vd_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(atomic_load(&log_sink), fmt, ap);
    va_end(ap);
}

void vd_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(atomic_load(&warn_sink), fmt, ap);
    va_end(ap);
}
