/* raw.c - raw images in the high-level API (vddk/disk.h): probing a file's
 * format, opening a raw image as a VixDiskLib handle, cloning a handle into
 * a raw image or a new VMDK.  The work is in vmdk/vdisk_raw.c (the raw
 * disk), ops/clone_raw.c and ops/clone.c. */
#include <stdio.h>
#include <stdlib.h>

#include "vddk/disk.h"
#include "../ops/ops.h"
#include "../vixdisklib/vixdl.h"

#define EXPORT __attribute__((visibility("default")))

struct bridge {
    VixDiskLibProgressFunc fn;
    void *data;
};

static int bridge_cb(void *data, int pct)
{
    struct bridge *b = data;
    return b->fn(b->data, pct) ? 1 : 0;
}

EXPORT VixError vddk_disk_probe(const char *path, vddk_disk_format *format)
{
    const char *op = "vddk_disk_probe";
    if (!path || !*path || !format)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a path and a place for the format are "
                          "required");
    int is_vmdk;
    int rc = vdisk_probe_vmdk(path, &is_vmdk);
    if (rc < 0)
        return vixdl_fail_engine(op, rc);
    *format = is_vmdk ? VDDK_DISK_FORMAT_VMDK : VDDK_DISK_FORMAT_RAW;
    return VIX_OK;
}

EXPORT VixError vddk_disk_open_raw(VixDiskLibConnection conn, const char *path, uint32 flags,
                                   VixDiskLibHandle *handle)
{
    return vixdl_open("vddk_disk_open_raw", conn, path, flags, 1, handle);
}

EXPORT VixError vddk_disk_clone_raw(VixDiskLibHandle src, const char *dstPath, uint32 rawFlags,
                                    VixDiskLibProgressFunc progressFunc,
                                    void *progressCallbackData, Bool overWrite)
{
    const char *op = "vddk_disk_clone_raw";
    VixError e = vixdl_get_disk(op, src);
    if (e != VIX_OK)
        return e;
    if (!dstPath || !*dstPath) {
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "no destination path given");
    } else if (rawFlags & ~VDDK_DISK_RAW_PREALLOCATE) {
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "unknown raw flags 0x%x", (unsigned)rawFlags);
    } else {
        struct bridge b = { progressFunc, progressCallbackData };
        int rc = ops_clone_raw(src->disk, dstPath, (rawFlags & VDDK_DISK_RAW_PREALLOCATE) != 0,
                               progressFunc ? bridge_cb : NULL, &b, overWrite ? 1 : 0);
        if (rc < 0)
            e = vixdl_fail_engine(op, rc);
    }
    vixdl_release(&src->obj);
    return e;
}

EXPORT VixError vddk_disk_clone_handle(VixDiskLibHandle src, VixDiskLibConnection dstConn,
                                       const char *dstPath, const VixDiskLibCreateParams *params,
                                       VixDiskLibProgressFunc progressFunc,
                                       void *progressCallbackData, Bool overWrite)
{
    const char *op = "vddk_disk_clone_handle";
    VixError e = vixdl_get_disk(op, src);
    if (e != VIX_OK)
        return e;
    struct VixDiskLibConnectParam *dc = NULL;
    if (!dstConn || !vixdl_acquire(dstConn, VIXDL_CONN)) {
        vixdl_release(&src->obj);
        return vixdl_fail(op, dstConn ? VIX_E_INVALID_HANDLE : VIX_E_INVALID_ARG,
                          "no valid destination connection given");
    }
    dc = (struct VixDiskLibConnectParam *)dstConn;
    struct vmdk_create_params p;
    if (!dstPath || !*dstPath || !params) {
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "a destination path and create parameters are "
                       "required");
    } else if (dc->remote) {
        e = vixdl_fail(op, VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "%s: only a local "
                       "destination can be created", dstPath);
    } else {
        int rc = vixdl_create_params(params, &p);
        if (rc == 0) {
            struct bridge b = { progressFunc, progressCallbackData };
            rc = ops_clone(src->disk, dstPath, &p, progressFunc ? bridge_cb : NULL, &b,
                           overWrite ? 1 : 0);
        }
        if (rc < 0)
            e = vixdl_fail_engine(op, rc);
    }
    vixdl_release(&dc->obj);
    vixdl_release(&src->obj);
    return e;
}
