/* stream.c - the one-pass streamOptimized writer of vddk/disk.h
 * (vddk_disk_stream_*) over ops/stream_out.c: argument checks, create
 * parameters, and engine errors as VixError with their detail (sent to the
 * warning callback and kept for vddk_disk_last_error). */
#include <stdio.h>
#include <stdlib.h>

#include "vddk/disk.h"
#include "disk_priv.h"
#include "../ops/ops.h"
#include "../vixdisklib/vixdl.h"

#define EXPORT __attribute__((visibility("default")))

struct vddk_disk_stream {
    struct ops_stream *s;
};

/* Report the engine error rc (detail in vd_err_msg()) of operation op. */
static VixError fail(const char *op, int rc)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s: %s", op, vd_err_msg()[0] ? vd_err_msg() : vd_err_name(rc));
    disk_note_error(vixdl_from_vd(rc), msg);
    return vixdl_fail_engine(op, rc);
}

EXPORT VixError vddk_disk_stream_create(const char *path, const VixDiskLibCreateParams *params,
                                        vddk_disk_stream **out)
{
    const char *op = "vddk_disk_stream_create";
    if (out)
        *out = NULL;
    if (!path || !*path || !params || !out)
        return fail(op, vd_err_set(VD_E_INVAL, "a path, create parameters and a place for "
                                   "the stream are required"));
    if (params->diskType != VIXDISKLIB_DISK_STREAM_OPTIMIZED)
        return fail(op, vd_err_set(VD_E_INVAL, "%s: diskType must be "
                                   "VIXDISKLIB_DISK_STREAM_OPTIMIZED (%d), not %d", path,
                                   (int)VIXDISKLIB_DISK_STREAM_OPTIMIZED,
                                   (int)params->diskType));
    struct vmdk_create_params p;
    int rc = vixdl_create_params(params, &p);
    if (rc < 0) {
        vd_err_prefix("%s", path);
        return fail(op, rc);
    }
    vddk_disk_stream *ds = malloc(sizeof *ds);
    if (!ds)
        return fail(op, vd_err_set(VD_E_NOMEM, "out of memory"));
    if ((rc = ops_stream_create(path, &p, &ds->s)) < 0) {
        free(ds);
        return fail(op, rc);
    }
    *out = ds;
    return VIX_OK;
}

EXPORT VixError vddk_disk_stream_write(vddk_disk_stream *ds, uint64 off, const void *buf,
                                       size_t len)
{
    const char *op = "vddk_disk_stream_write";
    if (!ds)
        return fail(op, vd_err_set(VD_E_INVAL, "no stream given"));
    int rc = ops_stream_write(ds->s, off, buf, len);
    return rc < 0 ? fail(op, rc) : VIX_OK;
}

EXPORT VixError vddk_disk_stream_close(vddk_disk_stream *ds, Bool commit)
{
    const char *op = "vddk_disk_stream_close";
    if (!ds)
        return fail(op, vd_err_set(VD_E_INVAL, "no stream given"));
    int rc = ops_stream_close(ds->s, commit ? 1 : 0);
    free(ds);
    return rc < 0 ? fail(op, rc) : VIX_OK;
}
