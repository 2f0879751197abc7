/* log.h - log lines from any layer.
 *
 * Lower layers (the engine, transports) log through vd_log; whoever owns
 * the process's logging (the ABI layer's InitEx, a tool) installs a sink.
 * Without a sink, lines are dropped.  The sink is called on the logging
 * thread and must be thread-safe. */
#ifndef VD_UTIL_LOG_H
#define VD_UTIL_LOG_H

typedef void (*vd_log_sink)(const char *line);

/* Install (or, with NULL, remove) the sink. */
void vd_log_set_sink(vd_log_sink sink);
void vd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
