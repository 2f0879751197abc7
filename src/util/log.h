/* log.h - log lines and warnings from any layer.
 *
 * Lower layers (the engine, transports, the plugin layer) log through
 * vd_log and warn through vd_warn; whoever owns the process's logging (the
 * ABI layer's InitEx, a tool) installs a sink for each.  Without a sink,
 * lines of that level are dropped.  A sink is called on the logging thread
 * and must be thread-safe.  Lines longer than 2047 bytes are cut. */
#ifndef VD_UTIL_LOG_H
#define VD_UTIL_LOG_H

typedef void (*vd_log_sink)(const char *line);

/* Install (or, with NULL, remove) the sink of log lines. */
void vd_log_set_sink(vd_log_sink sink);
/* Install (or, with NULL, remove) the sink of warnings. */
void vd_warn_set_sink(vd_log_sink sink);
void vd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
