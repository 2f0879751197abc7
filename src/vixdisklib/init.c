/* init.c - InitEx/Init/Exit, the config file, and log routing.
 *
 * Initialisation is reference counted: callers such as gvddk call InitEx
 * many times without Exit.  The first call's callbacks and configuration
 * stay in force until the matching last Exit.  The configuration itself
 * is kept in util/config.c, and lower layers log through util/log.h's
 * sinks, which the first InitEx points at the caller's callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vixdl.h"
#include "../plugin/vdplugin.h"
#include "../plugin/vixerr.h"
#include "../util/fileio.h"
#include "../util/log.h"

#ifndef OPENVDDK_REVISION
#define OPENVDDK_REVISION "unknown"
#endif

#define OUR_MAJOR 8

static struct {
    pthread_mutex_t lock;
    int refs;
    VixDiskLibGenericLogFunc *log, *warn, *panic;
    int log_level;            /* vixDiskLib.transport.LogLevel, 0..6 */
    char *lib_dir;
    uint32 major;             /* the lowest API major version of the InitEx calls in force */
} G = { .lock = PTHREAD_MUTEX_INITIALIZER, .log_level = 3 };

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* The default logger: one line per message on stderr, never interleaved. */
static void default_out(const char *prefix, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    pthread_mutex_lock(&out_lock);
    fprintf(stderr, "openvddk: %s%s\n", prefix, buf);
    pthread_mutex_unlock(&out_lock);
}

static void default_log(const char *fmt, va_list ap)
{
    if (G.log_level >= 4)
        default_out("", fmt, ap);
}

static void default_warn(const char *fmt, va_list ap)
{
    if (G.log_level >= 2)
        default_out("warning: ", fmt, ap);
}

static void call_cb(VixDiskLibGenericLogFunc *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f(fmt, ap);
    va_end(ap);
}

static void emit(VixDiskLibGenericLogFunc *cb, VixDiskLibGenericLogFunc *dflt, const char *fmt,
                 va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    call_cb(cb ? cb : dflt, "%s\n", msg);
}

void vixdl_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(G.log, default_log, fmt, ap);
    va_end(ap);
}

void vixdl_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(G.warn, default_warn, fmt, ap);
    va_end(ap);
}

VixError vixdl_fail(const char *op, VixError code, const char *fmt, ...)
{
    char detail[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    vixdl_warn("VixDiskLib_%s: %s (error %lu)", op, detail, (unsigned long)code);
    return code;
}

VixError vixdl_from_vd(int rc)
{
    switch (rc < 0 ? -rc : rc) {
    case VD_OK: return VIX_OK;
    case VD_E_INVAL: return VIX_E_INVALID_ARG;
    case VD_E_NOMEM: return VIX_E_OUT_OF_MEMORY;
    case VD_E_IO: return VIX_E_FILE_ERROR;
    case VD_E_NOTFOUND: return VIX_E_FILE_NOT_FOUND;
    case VD_E_EXISTS: return VIX_E_FILE_ALREADY_EXISTS;
    case VD_E_CORRUPT: return VIX_E_DISK_INVALIDDISK;
    case VD_E_UNSUPPORTED: return VIX_E_DISK_NOTSUPPORTED;
    case VD_E_RANGE: return VIX_E_DISK_OUTOFRANGE;
    case VD_E_READONLY: return VIX_E_FILE_READ_ONLY;
    case VD_E_LOCKED: return VIX_E_FILE_ALREADY_LOCKED;
    case VD_E_CID_MISMATCH: return VIX_E_DISK_CID_MISMATCH;
    case VD_E_PARENT_LOOP: return VIX_E_DISK_INVALIDCHAIN;
    case VD_E_NOSPACE: return VIX_E_DISK_FULL;
    case VD_E_NOTFOUND_KEY: return VIX_E_DISK_KEY_NOTFOUND;
    case VD_E_BUFSIZE: return VIX_E_BUFFER_TOOSMALL;
    case VD_E_CANCELLED: return VIX_E_CANCELLED;
    case VD_E_NET_CONNECT: return VIX_E_CANNOT_CONNECT_TO_HOST;
    case VD_E_NET_LOST: return VIX_E_HOST_TCP_CONN_LOST;
    case VD_E_AUTH: return VIX_E_AUTHENTICATION_FAIL;
    case VD_E_CERT: return VIX_E_NET_HTTP_SSL_SECURITY;
    case VD_E_ACCESS: return VIX_E_FILE_ACCESS_ERROR;
    case VD_E_CANTSHRINK: return VIX_E_DISK_CANTSHRINK;
    case VD_E_NEEDSREPAIR: return VIX_E_DISK_NEEDSREPAIR;
    case VD_E_CANTREPAIR: return VIX_E_DISK_CANTREPAIR;
    case VD_E_CAPACITY_MISMATCH: return VIX_E_DISK_CAPACITY_MISMATCH;
    case VD_E_ATTACH_ROOTLINK: return VIX_E_DISK_ATTACH_ROOTLINK;
    case VD_E_NET_REFUSED: return VIX_E_HOST_NETWORK_CONN_REFUSED;
    case VD_E_NET_SHUTDOWN: return VIX_E_HOST_SERVER_SHUTDOWN;
    default: return VIX_E_FAIL;
    }
}

VixError vixdl_fail_engine(const char *op, int rc)
{
    VixError e = vixdl_from_vd(rc);
    return vixdl_fail(op, e, "%s", vd_err_msg()[0] ? vd_err_msg() : vd_err_name(rc));
}

uint32 vixdl_api_major(void)
{
    pthread_mutex_lock(&G.lock);
    uint32 m = G.refs > 0 ? G.major : OUR_MAJOR;
    pthread_mutex_unlock(&G.lock);
    return m;
}

int vixdl_initialised(void)
{
    pthread_mutex_lock(&G.lock);
    int r = G.refs > 0;
    pthread_mutex_unlock(&G.lock);
    return r;
}

/* Lower layers' log lines and warnings (util/log.h) go to the caller's
 * log and warn callbacks. */
static void log_sink(const char *line)
{
    vixdl_log("%s", line);
}

static void warn_sink(const char *line)
{
    vixdl_warn("%s", line);
}

VIXDL_EXPORT VixError VixDiskLib_InitEx(uint32 majorVersion, uint32 minorVersion,
                                        VixDiskLibGenericLogFunc *log,
                                        VixDiskLibGenericLogFunc *warn,
                                        VixDiskLibGenericLogFunc *panic,
                                        const char *libDir, const char *configFile)
{
    if (majorVersion > OUR_MAJOR)
        return vixdl_fail("InitEx", VIX_E_NOT_SUPPORTED, "version %u.%u requested; this "
                          "library implements the VixDiskLib %d API", majorVersion,
                          minorVersion, OUR_MAJOR);
    pthread_mutex_lock(&G.lock);
    /* A caller built with an older header passes older (shorter) structs:
     * the lowest version asked for decides which fields are read. */
    if (G.refs == 0 || majorVersion < G.major)
        G.major = majorVersion;
    if (G.refs++ > 0) {
        pthread_mutex_unlock(&G.lock);
        return VIX_OK;
    }
    G.log = log;
    G.warn = warn;
    /* Kept for completeness: this library has no condition it treats as
     * fatal, so the panic callback is never called. */
    G.panic = panic;
    G.log_level = 3;
    G.lib_dir = vd_strdup(libDir);
    /* Before the config file and the plugins, which log through them. */
    vd_log_set_sink(log_sink);
    vd_warn_set_sink(warn_sink);
    if (configFile && *configFile && vd_config_load(configFile) < 0)
        vixdl_warn("VixDiskLib_InitEx: cannot read config file %s; continuing without it",
                   configFile);
    G.log_level = (int)vd_config_long("vixDiskLib.transport.LogLevel", 3);
    /* NAS plugins (src/plugin): loaded once, failures logged and skipped. */
    vdplugin_load(libDir);
    pthread_mutex_unlock(&G.lock);
    vixdl_log("openvddk %s (revision %s): initialised for API %u.%u, libDir %s",
              OPENVDDK_VERSION, OPENVDDK_REVISION,
              majorVersion, minorVersion, libDir ? libDir : "(none)");
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_Init(uint32 majorVersion, uint32 minorVersion,
                                      VixDiskLibGenericLogFunc *log,
                                      VixDiskLibGenericLogFunc *warn,
                                      VixDiskLibGenericLogFunc *panic, const char *libDir)
{
    return VixDiskLib_InitEx(majorVersion, minorVersion, log, warn, panic, libDir, NULL);
}

VIXDL_EXPORT void VixDiskLib_Exit(void)
{
    pthread_mutex_lock(&G.lock);
    if (G.refs == 0 || --G.refs > 0) {
        pthread_mutex_unlock(&G.lock);
        return;
    }
    pthread_mutex_unlock(&G.lock);
    vixdl_async_shutdown();
    pthread_mutex_lock(&G.lock);
    if (G.refs == 0) {
        vdplugin_unload();   /* ends sessions, Done, dlclose */
        vixdl_registry_release();
        vd_config_clear();
        free(G.lib_dir);
        G.lib_dir = NULL;
        vd_log_set_sink(NULL);
        vd_warn_set_sink(NULL);
        G.log = G.warn = G.panic = NULL;
    }
    pthread_mutex_unlock(&G.lock);
}

VIXDL_EXPORT const char *VixDiskLib_ListTransportModes(void)
{
    return "file:nbdssl:nbd:https";
}

VIXDL_EXPORT char *VixDiskLib_GetErrorText(VixError err, const char *locale)
{
    (void)locale;
    const char *t = vix_error_text(err);
    char *s = t ? vd_asprintf("%s", t)
                : vd_asprintf("Unknown error %lu", (unsigned long)VIX_ERROR_CODE(err));
    return s;
}

VIXDL_EXPORT void VixDiskLib_FreeErrorText(char *errMsg)
{
    free(errMsg);
}
