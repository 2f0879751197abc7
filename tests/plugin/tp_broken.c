/* tp_broken.c - deliberately broken NAS plugins for the loader tests.
 * Built once per kind (CMake defines TP_KIND):
 *
 *   1 tp-major   NAS interface major version 2: must be skipped, its Init
 *                never called
 *   2 tp-init    Init fails: skipped, Done never called
 *   3 tp-noentry no VixDiskLibPlugin_EntryPoint symbol at all
 *   4 tp-nullfn  ExecPrimitive entry point is NULL: skipped
 *   5 tp-exec    loads and takes every datastore, says it supports every
 *                primitive, then fails them: a DRYRUN clone succeeds and
 *                the real one leaves junk in the destination and reports
 *                VIX_E_FILE_ERROR; RESVSPACE reports VIX_E_DISK_FULL;
 *                STATX returns without setting a status
 *   6 tp-panic   calls panic from StartSession (then claims success)
 *
 * Each logs what it is asked through the library's log callback, so tests
 * can see which entry points were called. */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "vixDiskLibNasPlugin.h"

#define EXPORT __attribute__((visibility("default")))

#if TP_KIND == 1
#define TP_NAME "tp-major"
#elif TP_KIND == 2
#define TP_NAME "tp-init"
#elif TP_KIND == 3
#define TP_NAME "tp-noentry"
#elif TP_KIND == 4
#define TP_NAME "tp-nullfn"
#elif TP_KIND == 5
#define TP_NAME "tp-exec"
#elif TP_KIND == 6
#define TP_NAME "tp-panic"
#else
#error "TP_KIND must be 1..6"
#endif

static VixDiskLibGenericLogFunc *log_fn, *panic_fn;

static void say(VixDiskLibGenericLogFunc *f, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    f(fmt, ap);
    va_end(ap);
}

static VixError tp_init(VixDiskLibGenericLogFunc *log, VixDiskLibGenericLogFunc *warn,
                        VixDiskLibGenericLogFunc *panic)
{
    (void)warn;
    log_fn = log;
    panic_fn = panic;
    say(log_fn, TP_NAME " Init called");
    return TP_KIND == 2 ? VIX_E_FAIL : VIX_OK;
}

static void tp_done(void)
{
    say(log_fn, TP_NAME " Done called");
}

static VixError tp_start(const VixDiskLibNasPluginDataStoreParams *ds,
                         const VixDiskLibNasPluginSessionParams *sp,
                         VixDiskLibNasPluginSessionID *id)
{
    (void)sp;
    say(log_fn, TP_NAME " StartSession %s", ds->localMountPoint);
    if (TP_KIND == 6)
        say(panic_fn, TP_NAME " cannot go on");
    *id = 42;
    return VIX_OK;
}

static VixError tp_end(VixDiskLibNasPluginSessionID id)
{
    say(log_fn, TP_NAME " EndSession %llu", (unsigned long long)id);
    return VIX_OK;
}

static VixError tp_support(VixDiskLibNasPluginSessionID id,
                           const VixDiskLibNasPluginPrimitiveID prim)
{
    (void)id;
    (void)prim;
    return VIX_OK;
}

static void tp_exec(VixDiskLibNasPluginSessionID id, const VixDiskLibNasPluginCommonParams *cp)
{
    (void)id;
    switch (cp->primitiveID) {
    case VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE: {
        const VixDiskLibNasPluginCloneFileParams *p =
            (const VixDiskLibNasPluginCloneFileParams *)cp;
        if (p->cloneFlags & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN) {
            say(log_fn, TP_NAME " CLONEFILE dry run: yes");
            cp->result->status = VIX_OK;
            return;
        }
        int fd = open(p->dstFileName, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char junk[4096];
            memset(junk, 0xEE, sizeof junk);
            if (pwrite(fd, junk, sizeof junk, 0) < 0)
                say(log_fn, TP_NAME " could not even write junk");
            close(fd);
        }
        say(log_fn, TP_NAME " CLONEFILE %s: failing on purpose", p->dstFileName);
        cp->result->status = VIX_E_FILE_ERROR;
        return;
    }
    case VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE:
        say(log_fn, TP_NAME " RESVSPACE: failing on purpose");
        cp->result->status = VIX_E_DISK_FULL;
        return;
    case VIXDISKLIB_NASPLUGIN_PRIM_STATX:
        say(log_fn, TP_NAME " STATX: returning without a status");
        return;
    default:
        cp->result->status = VIX_E_NOT_SUPPORTED;
        return;
    }
}

static VixDiskLibNasPlugin tp_plugin = {
    { TP_KIND == 1 ? 2 : VIXDISKLIB_NASPLUGIN_MAJOR_VERSION, VIXDISKLIB_NASPLUGIN_MINOR_VERSION,
      VIXDISKLIB_PLUGIN_TYPE_NAS, TP_NAME, tp_init, tp_done },
    tp_start, tp_end, TP_KIND == 4 ? NULL : tp_exec, tp_support,
};

static VixDiskLibPlugin *tp_list[] = { &tp_plugin.diskLibPlugin, NULL };

#if TP_KIND == 3
/* A near miss: the loader looks for VixDiskLibPlugin_EntryPoint. */
EXPORT VixDiskLibPlugin **VixDiskLibPlugin_Entrypoint = tp_list;
#else
EXPORT VixDiskLibPlugin **VixDiskLibPlugin_EntryPoint = tp_list;
#endif
