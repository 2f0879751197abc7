/* prim.c - CLONEFILE, RESVSPACE and STATX as the library uses them: find
 * the file's datastore and session, build the parameter and progress
 * records, run the primitive, turn its status into a vd_err code. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "../util/config.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define MIB (1024ull * 1024)
/* A status no plugin reports: the plugin returned without setting one. */
#define STATUS_UNSET ((VixError)0xdeadbeefdeadbeefull)

static _Thread_local int defer_reserve;

void vdplugin_defer_reserve(int on)
{
    defer_reserve = on;
}

/* The absolute path with every link resolved; for a name that does not
 * exist yet, its resolved directory joined with the name. */
static char *resolve(const char *path)
{
    char *r = realpath(path, NULL);
    if (r)
        return r;
    if (errno != ENOENT) {
        vd_err_errno(errno, "%s: cannot resolve path", path);
        return NULL;
    }
    char *dir = vd_path_dir(path);
    char *rdir = dir ? realpath(dir, NULL) : NULL;
    if (!rdir)
        vd_err_errno(dir ? errno : ENOMEM, "%s: cannot resolve directory", path);
    else if (!(r = vd_path_join(rdir, vd_path_base(path))))
        vd_err_set(VD_E_NOMEM, "out of memory");
    free(dir);
    free(rdir);
    return r;
}

static const char *prim_name(int k)
{
    return k == VDP_CLONE ? "CLONEFILE" : k == VDP_RESV ? "RESVSPACE" : "STATX";
}

/* The datastore of path if a plugin offers primitive k there, else
 * -VD_E_UNSUPPORTED with the reason.  vdp.life is read-held. */
static int usable(const char *path, int k, struct vdp_datastore **out)
{
    if (vdp.nplugins == 0)
        return vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin is loaded");
    struct vdp_datastore *d;
    int rc = vdp_datastore_for(path, &d);
    if (rc < 0)
        return vd_err_set(VD_E_UNSUPPORTED, "datastore of %s unknown (%s)", path, vd_err_msg());
    if (!d->plugin)
        return vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin serves datastore %s (%s)",
                          d->params.localMountPoint, d->params.fsType);
    if (atomic_load(&d->plugin->disabled))
        return vd_err_set(VD_E_UNSUPPORTED, "NAS plugin %s is disabled after a panic",
                          d->plugin->name);
    if (!d->supported[k])
        return vd_err_set(VD_E_UNSUPPORTED, "NAS plugin %s does not offer %s on datastore %s",
                          d->plugin->name, prim_name(k), d->params.localMountPoint);
    *out = d;
    return 0;
}

static VixError run(struct vdp_datastore *d, VixDiskLibNasPluginCommonParams *cp)
{
    cp->result->status = STATUS_UNSET;
    struct vdp_plugin *prev = vdp_enter(d->plugin);
    d->plugin->desc->ExecPrimitive(d->sid, cp);
    vdp_leave(prev);
    VixError e = cp->result->status;
    if (e == STATUS_UNSET) {
        vdplugin_warn("NAS plugin %s returned from ExecPrimitive without a status; taken as "
                      "a failure", d->plugin->name);
        e = VIX_E_FAIL;
    }
    if (e == VIX_OK && atomic_load(&d->plugin->disabled))
        e = VIX_E_FAIL;
    return e;
}

/* ---- progress ---- */

struct progress {
    ops_progress_fn fn;
    void *data;
    uint64_t total, done;
    int last;          /* last percentage reported */
    int cancelled;
    int calls;
};

static Bool on_progress(VixDiskLibNasPluginProgressRecord *r)
{
    struct progress *pg = r->private;
    if (!pg)
        return TRUE;
    pg->calls++;
    pg->done += r->progressBytes;
    if (pg->done > pg->total)
        pg->done = pg->total;
    if (pg->cancelled)
        return FALSE;
    int pct = pg->total ? (int)(pg->done * 100 / pg->total) : 100;
    if (pg->fn && pct != pg->last) {
        pg->last = pct;
        if (!pg->fn(pg->data, pct)) {
            pg->cancelled = 1;
            return FALSE;
        }
    }
    return TRUE;
}

static uint64_t update_bytes(uint64_t total)
{
    uint64_t u = (total / 100 + MIB - 1) / MIB * MIB;
    return u < MIB ? MIB : u > 64 * MIB ? 64 * MIB : u;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* ---- CLONEFILE ---- */

static const char *clone_kind(unsigned f)
{
    if (f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY)
        return f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES ? "lazy, skipping zeroes"
                                                                  : "lazy";
    return f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES ? "full, skipping zeroes" : "full";
}

static int clone_file(const char *src, const char *dst, unsigned flags,
                      ops_progress_fn progress, void *data, unsigned *granted)
{
    if (!src || !dst)
        return vd_err_set(VD_E_INVAL, "clone needs a source and a destination file");
    pthread_rwlock_rdlock(&vdp.life);
    int rc;
    char *rs = NULL, *rd = NULL;
    struct vdp_datastore *dd, *sd;
    struct stat st;
    if (vdp.nplugins == 0) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin is loaded");
        goto out;
    }
    if (!(rs = resolve(src)) || !(rd = resolve(dst))) {
        rc = -vd_err_code();
        goto out;
    }
    if (stat(rs, &st) < 0) {
        rc = vd_err_errno(errno, "%s: cannot clone", src);
        goto out;
    }
    if ((rc = usable(rd, VDP_CLONE, &dd)) < 0)
        goto out;
    if ((rc = vdp_datastore_for(rs, &sd)) < 0) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "datastore of %s unknown (%s)", src, vd_err_msg());
        goto out;
    }
    const char *pname = dd->plugin->name;
    unsigned base = flags & (VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED |
                             VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY |
                             VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES);
    struct progress pg = { .fn = progress, .data = data, .total = (uint64_t)st.st_size,
                           .last = -1 };
    VixDiskLibNasPluginProgressRecord rec = {
        .private = &pg, .updateBytes = update_bytes((uint64_t)st.st_size),
        .callback = on_progress,
    };
    VixDiskLibNasPluginResultCommon res;
    VixDiskLibNasPluginCloneFileParams cp = {
        .common = { VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE, &rec, &res },
        .srcFileName = rs, .dstFileName = rd,
    };
    if (sd != dd) {
        base |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SRCDATASTORE_VALID;
        cp.srcDataStoreInfo = &sd->params;
    }
    /* Ask first (DRYRUN); a lazy clone the storage cannot do is asked for
     * again as a full one. */
    cp.cloneFlags = (VixDiskLibNasPluginCloneFileFlags)(base |
                                                        VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN);
    VixError e = run(dd, &cp.common);
    if (e != VIX_OK && (base & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY)) {
        vdplugin_log("NAS plugin %s cannot clone %s to %s lazily (%s); asking for a full clone",
                     pname, rs, rd, vdp_vix_text(e));
        base &= ~(unsigned)VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY;
        cp.cloneFlags = (VixDiskLibNasPluginCloneFileFlags)(
            base | VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN);
        e = run(dd, &cp.common);
    }
    if (e != VIX_OK) {
        /* An existing destination of a GUARDED clone is the caller's
         * answer; anything else means "not offloaded here". */
        int code = VIX_ERROR_CODE(e) == VIX_E_FILE_ALREADY_EXISTS &&
                   (base & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED) ? VD_E_EXISTS
                                                                       : VD_E_UNSUPPORTED;
        rc = vd_err_set(code, "NAS plugin %s will not clone %s to %s: %s (error %lu)",
                        pname, rs, rd, vdp_vix_text(e), (unsigned long)e);
        vdplugin_log("%s", vd_err_msg());
        goto out;
    }
    if (flags & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN) {
        if (granted)
            *granted = base;
        rc = 0;
        goto out;
    }
    cp.cloneFlags = (VixDiskLibNasPluginCloneFileFlags)base;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (progress && !progress(data, 0)) {
        rc = vd_err_set(VD_E_CANCELLED, "clone of %s cancelled by the progress callback at 0%%",
                        src);
        goto out;
    }
    pg.last = 0;
    e = run(dd, &cp.common);
    if (pg.cancelled || VIX_ERROR_CODE(e) == VIX_E_CANCELLED) {
        rc = vd_err_set(VD_E_CANCELLED, "clone of %s by NAS plugin %s cancelled by the progress "
                        "callback at %d%%", src, pname, pg.last < 0 ? 0 : pg.last);
        vdplugin_log("%s", vd_err_msg());
    } else if (e != VIX_OK) {
        rc = vd_err_set(vdp_vd_code(e), "NAS plugin %s could not clone %s to %s: %s (error %lu)",
                        pname, rs, rd, vdp_vix_text(e), (unsigned long)e);
        vdplugin_warn("%s", vd_err_msg());
    } else {
        rc = 0;
        if (progress && pg.last != 100 && !progress(data, 100))
            rc = vd_err_set(VD_E_CANCELLED, "clone of %s cancelled by the progress callback at "
                            "100%%", src);
        vdplugin_log("NAS plugin %s: CLONEFILE %s -> %s (%s) done in %ld ms, %d progress "
                     "callbacks", pname, rs, rd, clone_kind(base), ms_since(&t0), pg.calls);
    }
out:
    pthread_rwlock_unlock(&vdp.life);
    free(rs);
    free(rd);
    return rc;
}

int vdplugin_clone_file(const char *src, const char *dst, unsigned flags,
                        ops_progress_fn progress, void *data)
{
    return clone_file(src, dst, flags, progress, data, NULL);
}

int vdplugin_clone_probe(const char *src, const char *dst, unsigned flags, unsigned *granted)
{
    unsigned g = 0;
    int rc = clone_file(src, dst, flags | VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN, NULL, NULL,
                        &g);
    if (granted)
        *granted = rc == 0 ? g : 0;
    return rc;
}

/* ---- RESVSPACE ---- */

static Bool keep_going(VixDiskLibNasPluginProgressRecord *r)
{
    (void)r;
    return TRUE;
}

int vdplugin_reserve_space(const char *file, uint64_t bytes)
{
    if (!file)
        return vd_err_set(VD_E_INVAL, "no file given");
    if (defer_reserve)
        return 0;
    pthread_rwlock_rdlock(&vdp.life);
    int rc;
    char *rf = NULL;
    struct vdp_datastore *d;
    struct stat st;
    if (vdp.nplugins == 0) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin is loaded");
        goto out;
    }
    if (!(rf = resolve(file))) {
        rc = -vd_err_code();
        goto out;
    }
    if (stat(rf, &st) < 0) {
        rc = vd_err_errno(errno, "%s: cannot reserve space", file);
        goto out;
    }
    if ((uint64_t)st.st_size < bytes && truncate(rf, (off_t)bytes) < 0) {
        rc = vd_err_errno(errno, "%s: cannot extend to %llu bytes", file,
                          (unsigned long long)bytes);
        goto out;
    }
    if (st.st_size == 0 && bytes == 0) {
        rc = vd_err_set(VD_E_INVAL, "%s: an empty file has no space to reserve", file);
        goto out;
    }
    if ((rc = usable(rf, VDP_RESV, &d)) < 0)
        goto out;
    VixDiskLibNasPluginProgressRecord rec = { .updateBytes = UINT64_MAX, .callback = keep_going };
    VixDiskLibNasPluginResultCommon res;
    VixDiskLibNasPluginResvSpaceParams rp = {
        .common = { VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE, &rec, &res }, .fileName = rf,
    };
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    VixError e = run(d, &rp.common);
    if (e != VIX_OK) {
        rc = vd_err_set(vdp_vd_code(e), "NAS plugin %s could not reserve the space of %s: %s "
                        "(error %lu)", d->plugin->name, rf, vdp_vix_text(e), (unsigned long)e);
        vdplugin_warn("%s", vd_err_msg());
        goto out;
    }
    vdplugin_log("NAS plugin %s: RESVSPACE %s (%llu bytes) done in %ld ms", d->plugin->name, rf,
                 (unsigned long long)(bytes > (uint64_t)st.st_size ? bytes : (uint64_t)st.st_size),
                 ms_since(&t0));
    rc = 0;
out:
    pthread_rwlock_unlock(&vdp.life);
    free(rf);
    return rc;
}

/* ---- STATX ---- */

int vdplugin_statx(const char *file, struct vdplugin_stat *out)
{
    if (!file || !out)
        return vd_err_set(VD_E_INVAL, "no file or result given");
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&vdp.life);
    int rc;
    char *rf = NULL;
    struct vdp_datastore *d;
    if (vdp.nplugins == 0) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin is loaded");
        goto out;
    }
    if (!(rf = resolve(file))) {
        rc = -vd_err_code();
        goto out;
    }
    if ((rc = usable(rf, VDP_STATX, &d)) < 0)
        goto out;
    VixDiskLibNasPluginProgressRecord rec = { .updateBytes = UINT64_MAX, .callback = keep_going };
    VixDiskLibNasPluginStatXResult res;
    memset(&res, 0, sizeof res);
    res.allocType = VIXDISKLIB_NASPLUGIN_FILE_ALLOC_UNKNOWN;
    VixDiskLibNasPluginStatXParams sp = {
        .common = { VIXDISKLIB_NASPLUGIN_PRIM_STATX, &rec, &res.common }, .fileName = rf,
    };
    VixError e = run(d, &sp.common);
    if (e != VIX_OK) {
        rc = vd_err_set(vdp_vd_code(e), "NAS plugin %s: STATX of %s failed: %s (error %lu)",
                        d->plugin->name, rf, vdp_vix_text(e), (unsigned long)e);
        vdplugin_warn("%s", vd_err_msg());
        goto out;
    }
    if (res.uniqueBytes > res.allocedBytes) {
        rc = vd_err_set(VD_E_IO, "NAS plugin %s: STATX of %s says %llu unique bytes of %llu "
                        "allocated; ignored", d->plugin->name, rf,
                        (unsigned long long)res.uniqueBytes, (unsigned long long)res.allocedBytes);
        vdplugin_warn("%s", vd_err_msg());
        goto out;
    }
    out->total = res.totalBytes;
    out->allocated = res.allocedBytes;
    out->unique = res.uniqueBytes;
    out->alloc_type = (int)res.allocType;
    snprintf(out->plugin, sizeof out->plugin, "%s", d->plugin->name);
    rc = 0;
out:
    pthread_rwlock_unlock(&vdp.life);
    free(rf);
    return rc;
}

/* ---- policy ---- */

unsigned vdplugin_clone_flags_for(enum vmdk_type t)
{
    const char *v = vd_config_get("openvddk.plugin.lazyClone");
    int lazy;
    if (v && (!strcasecmp(v, "always") || !strcasecmp(v, "true") || !strcmp(v, "1")))
        lazy = 1;
    else if (v && (!strcasecmp(v, "never") || !strcasecmp(v, "false") || !strcmp(v, "0")))
        lazy = 0;
    else
        lazy = t != VMDK_TYPE_VMFS_FLAT;
    unsigned f = lazy ? VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY : 0;
    if (t == VMDK_TYPE_VMFS_THIN)
        f |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES;
    return f;
}
