/* diskops.c - the whole-disk VixDiskLib functions: argument checks and
 * translation, then the work in ops/ or the engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vixdl.h"
#include "../ops/ops.h"
#include "../vmdk/vmdk.h"

static VixError local_only(const char *op, struct VixDiskLibConnectParam *c)
{
    if (c->remote)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "only local disks can be "
                          "used here");
    return VIX_OK;
}

int vixdl_create_params(const VixDiskLibCreateParams *cp, struct vmdk_create_params *p)
{
    memset(p, 0, sizeof *p);
    switch (cp->diskType) {
    case VIXDISKLIB_DISK_MONOLITHIC_SPARSE: case VIXDISKLIB_DISK_MONOLITHIC_FLAT:
    case VIXDISKLIB_DISK_SPLIT_SPARSE: case VIXDISKLIB_DISK_SPLIT_FLAT:
    case VIXDISKLIB_DISK_VMFS_FLAT: case VIXDISKLIB_DISK_STREAM_OPTIMIZED:
    case VIXDISKLIB_DISK_VMFS_THIN: case VIXDISKLIB_DISK_VMFS_SPARSE:
        p->type = (enum vmdk_type)cp->diskType;
        break;
    default:
        return vd_err_set(VD_E_INVAL, "unknown disk type %d", (int)cp->diskType);
    }
    switch (cp->adapterType) {
    case VIXDISKLIB_ADAPTER_IDE: case VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC:
    case VIXDISKLIB_ADAPTER_SCSI_LSILOGIC:
        p->adapter = (enum vmdk_adapter)cp->adapterType;
        break;
    default:
        return vd_err_set(VD_E_INVAL, "unknown adapter type %d", (int)cp->adapterType);
    }
    p->hw_version = cp->hwVersion ? cp->hwVersion : VIXDISKLIB_HWVERSION_WORKSTATION_5;
    p->capacity = cp->capacity * VIXDISKLIB_SECTOR_SIZE;
    if (cp->capacity > UINT64_MAX / VIXDISKLIB_SECTOR_SIZE)
        return vd_err_set(VD_E_INVAL, "capacity overflows");
    return 0;
}

/* Translate VixDiskLib create parameters. */
static VixError to_create_params(const char *op, const VixDiskLibCreateParams *cp,
                                 struct vmdk_create_params *p)
{
    int rc = vixdl_create_params(cp, p);
    return rc < 0 ? vixdl_fail_engine(op, rc) : VIX_OK;
}

/* Record 4Kn sector sizes in the disk database (512 is the default).  A
 * caller initialised for an API before 7.0 passes the 24-byte 6.x struct,
 * without the sector-size fields: they are not read, sectors are 512. */
static int apply_sector_sizes(const char *path, const VixDiskLibCreateParams *cp)
{
    if (vixdl_api_major() < 7)
        return 0;
    uint32 ls = cp->logicalSectorSize, ps = cp->physicalSectorSize;
    if (ls != 4096 && ps != 4096)
        return 0;
    vmdk_disk *d;
    int rc = vmdk_open(path, 0, &d);
    if (rc < 0)
        return rc;
    rc = vmdk_meta_set(d, "logicalSectorSize", ls == 4096 ? "4096" : "512");
    if (rc == 0)
        rc = vmdk_meta_set(d, "physicalSectorSize", ps == 4096 ? "4096" : "512");
    int crc = vmdk_close(d);
    return rc ? rc : crc;
}

VIXDL_EXPORT VixError VixDiskLib_Create(const VixDiskLibConnection connection, const char *path,
                                        const VixDiskLibCreateParams *createParams,
                                        VixDiskLibProgressFunc progressFunc,
                                        void *progressCallbackData)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("Create", connection, c);
    struct vmdk_create_params p;
    VixError e = local_only("Create", c);
    if (e == VIX_OK && (!path || !*path || !createParams))
        e = vixdl_fail("Create", VIX_E_INVALID_ARG, "%s", !createParams ? "no create "
                       "parameters given" : "no disk path given");
    if (e == VIX_OK)
        e = to_create_params("Create", createParams, &p);
    if (e == VIX_OK) {
        if (progressFunc)
            progressFunc(progressCallbackData, 0);
        int rc = vmdk_create(path, &p);
        if (rc == 0 && (rc = apply_sector_sizes(path, createParams)) < 0) {
            ops_unlink(path);
        }
        if (rc < 0)
            e = vixdl_fail_engine("Create", rc);
        else if (progressFunc)
            progressFunc(progressCallbackData, 100);
    }
    vixdl_release(&c->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_CreateChild(VixDiskLibHandle h, const char *childPath,
                                             VixDiskLibDiskType diskType,
                                             VixDiskLibProgressFunc progressFunc,
                                             void *progressCallbackData)
{
    VixError e = vixdl_get_disk("CreateChild", h);
    if (e != VIX_OK)
        return e;
    vmdk_disk *eng = vdisk_local_engine(h->disk);
    if (!childPath || !*childPath) {
        e = vixdl_fail("CreateChild", VIX_E_INVALID_ARG, "no child path given");
    } else if (!eng) {
        e = vixdl_fail("CreateChild", VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "child disks can "
                       "only be created for local disks");
    } else if (diskType != VIXDISKLIB_DISK_MONOLITHIC_SPARSE &&
               diskType != VIXDISKLIB_DISK_SPLIT_SPARSE) {
        e = vixdl_fail("CreateChild", VIX_E_INVALID_ARG, "child disk type must be "
                       "MONOLITHIC_SPARSE or SPLIT_SPARSE (got %d)", (int)diskType);
    } else {
        if (progressFunc)
            progressFunc(progressCallbackData, 0);
        int rc = vmdk_create_child_of(eng, childPath, (enum vmdk_type)diskType);
        if (rc < 0)
            e = vixdl_fail_engine("CreateChild", rc);
        else if (progressFunc)
            progressFunc(progressCallbackData, 100);
    }
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Unlink(VixDiskLibConnection connection, const char *path)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("Unlink", connection, c);
    VixError e = local_only("Unlink", c);
    if (e == VIX_OK && (!path || !*path))
        e = vixdl_fail("Unlink", VIX_E_INVALID_ARG, "no disk path given");
    if (e == VIX_OK) {
        int rc = ops_unlink(path);
        if (rc < 0)
            e = vixdl_fail_engine("Unlink", rc);
    }
    vixdl_release(&c->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Rename(const char *srcFileName, const char *dstFileName)
{
    if (!srcFileName || !dstFileName || !*srcFileName || !*dstFileName)
        return vixdl_fail("Rename", VIX_E_INVALID_ARG, "source and destination are required");
    int rc = ops_rename(srcFileName, dstFileName);
    return rc < 0 ? vixdl_fail_engine("Rename", rc) : VIX_OK;
}

struct progress_bridge {
    VixDiskLibProgressFunc fn;
    void *data;
};

static int bridge(void *data, int pct)
{
    struct progress_bridge *b = data;
    return b->fn(b->data, pct) ? 1 : 0;
}

/* Restore: NBD cannot create disks, so the destination is an existing
 * export of the same capacity, overwritten as a whole (overWrite must say
 * so). */
static int clone_to_remote(struct VixDiskLibConnectParam *dc, const char *dst_path,
                           struct vdisk *src, ops_progress_fn progress, void *data,
                           int overwrite)
{
    if (!overwrite)
        return vd_err_set(VD_E_EXISTS, "%s: a remote destination is an existing disk (NBD "
                          "and NFC cannot create disks); pass overWrite=TRUE to write over it",
                          dst_path);
    if (dc->readonly)
        return vd_err_set(VD_E_READONLY, "%s: the destination connection is read-only",
                          dst_path);
    struct vdisk *dst;
    int rc = vixdl_conn_open_disk(dc, dst_path, 0, 0, &dst);
    if (rc < 0)
        return rc;
    rc = ops_copy_into(src, dst, progress, data);
    if (rc < 0)
        vd_err_prefix("%s", dst_path);
    char msg[1024];
    int code = vd_err_code();
    snprintf(msg, sizeof msg, "%s", vd_err_msg());
    int crc = dst->ops->close(dst);
    if (rc < 0) {
        vd_err_set(code, "%s", msg);
        return rc;
    }
    return crc;
}

VIXDL_EXPORT VixError VixDiskLib_Clone(const VixDiskLibConnection dstConnection,
                                       const char *dstPath,
                                       const VixDiskLibConnection srcConnection,
                                       const char *srcPath,
                                       const VixDiskLibCreateParams *vixCreateParams,
                                       VixDiskLibProgressFunc progressFunc,
                                       void *progressCallbackData, Bool overWrite)
{
    struct VixDiskLibConnectParam *dc, *sc;
    VIXDL_CONN_OP("Clone", dstConnection, dc);
    if (!vixdl_acquire(srcConnection, VIXDL_CONN)) {
        vixdl_release(&dc->obj);
        return vixdl_fail("Clone", srcConnection ? VIX_E_INVALID_HANDLE : VIX_E_INVALID_ARG,
                          "no valid source connection given");
    }
    sc = (struct VixDiskLibConnectParam *)srcConnection;
    VixError e = VIX_OK;
    struct vmdk_create_params p;
    if (!dstPath || !*dstPath || !srcPath || !*srcPath || !vixCreateParams)
        e = vixdl_fail("Clone", VIX_E_INVALID_ARG, "source path, destination path and create "
                       "parameters are required");
    /* A remote destination is an existing export: its type is the server's. */
    if (e == VIX_OK && !dc->remote)
        e = to_create_params("Clone", vixCreateParams, &p);
    if (e == VIX_OK) {
        struct vdisk *src;
        int rc = vixdl_conn_open_disk(sc, srcPath, VMDK_OPEN_RDONLY, 0, &src);
        if (rc == 0) {
            struct progress_bridge b = { progressFunc, progressCallbackData };
            if (dc->remote) {
                rc = clone_to_remote(dc, dstPath, src, progressFunc ? bridge : NULL, &b,
                                     overWrite);
            } else {
                rc = ops_clone(src, dstPath, &p, progressFunc ? bridge : NULL, &b, overWrite);
                if (rc == 0)
                    rc = apply_sector_sizes(dstPath, vixCreateParams);
            }
            src->ops->close(src);
        }
        if (rc < 0)
            e = vixdl_fail_engine("Clone", rc);
    }
    vixdl_release(&sc->obj);
    vixdl_release(&dc->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Grow(VixDiskLibConnection connection, const char *path,
                                      VixDiskLibSectorType capacity, Bool updateGeometry,
                                      VixDiskLibProgressFunc progressFunc,
                                      void *progressCallbackData)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("Grow", connection, c);
    VixError e = local_only("Grow", c);
    if (e == VIX_OK && (!path || !*path))
        e = vixdl_fail("Grow", VIX_E_INVALID_ARG, "no disk path given");
    if (e == VIX_OK) {
        struct progress_bridge b = { progressFunc, progressCallbackData };
        int rc = ops_grow(path, capacity * VIXDISKLIB_SECTOR_SIZE, updateGeometry,
                          progressFunc ? bridge : NULL, &b);
        if (rc < 0)
            e = vixdl_fail_engine("Grow", rc);
    }
    vixdl_release(&c->obj);
    return e;
}

typedef int (*handle_op)(struct vdisk *d, ops_progress_fn progress, void *data);

static VixError run_handle_op(const char *op, VixDiskLibHandle h, handle_op fn,
                              VixDiskLibProgressFunc progressFunc, void *progressData)
{
    VixError e = vixdl_get_disk(op, h);
    if (e != VIX_OK)
        return e;
    struct progress_bridge b = { progressFunc, progressData };
    int rc = fn(h->disk, progressFunc ? bridge : NULL, &b);
    if (rc < 0)
        e = vixdl_fail_engine(op, rc);
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Shrink(VixDiskLibHandle h, VixDiskLibProgressFunc progressFunc,
                                        void *progressCallbackData)
{
    return run_handle_op("Shrink", h, ops_shrink, progressFunc, progressCallbackData);
}

VIXDL_EXPORT VixError VixDiskLib_Defragment(VixDiskLibHandle h,
                                            VixDiskLibProgressFunc progressFunc,
                                            void *progressCallbackData)
{
    return run_handle_op("Defragment", h, ops_defragment, progressFunc, progressCallbackData);
}

static VixError two_handles(const char *op, VixDiskLibHandle parent, VixDiskLibHandle child,
                            int (*fn)(struct vdisk *, struct vdisk *))
{
    VixError e = vixdl_get_disk(op, parent);
    if (e != VIX_OK)
        return e;
    if ((e = vixdl_get_disk(op, child)) != VIX_OK) {
        vixdl_release(&parent->obj);
        return e;
    }
    int rc = fn(parent->disk, child->disk);
    if (rc < 0)
        e = vixdl_fail_engine(op, rc);
    vixdl_release(&child->obj);
    vixdl_release(&parent->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_IsAttachPossible(VixDiskLibHandle parent, VixDiskLibHandle child)
{
    return two_handles("IsAttachPossible", parent, child, ops_is_attach_possible);
}

/* Attach consumes the parent handle (the reference's semantics: "the parent
 * handle becomes invalid, the child represents the combined chain"): its
 * links move into the child's chain and the handle is closed here, so a
 * later call with it is VIX_E_INVALID_HANDLE.  On failure both handles are
 * left as they were.  See docs/maintenance.md. */
VIXDL_EXPORT VixError VixDiskLib_Attach(VixDiskLibHandle parent, VixDiskLibHandle child)
{
    VixError e = vixdl_get_disk("Attach", parent);
    if (e != VIX_OK)
        return e;
    if ((e = vixdl_get_disk("Attach", child)) != VIX_OK) {
        vixdl_release(&parent->obj);
        return e;
    }
    int rc = parent == child ? vd_err_set(VD_E_INVAL, "a disk cannot be attached to itself")
                             : ops_is_attach_possible(parent->disk, child->disk);
    if (rc < 0) {
        e = vixdl_fail_engine("Attach", rc);
        vixdl_release(&child->obj);
        vixdl_release(&parent->obj);
        return e;
    }
    /* No new call can start on the parent; running ones finish first. */
    vixdl_async_wait(parent);
    vixdl_unregister_wait(&parent->obj);
    vixdl_async_wait(parent);
    rc = ops_attach(parent->disk, child->disk);
    if (rc < 0) {
        e = vixdl_fail_engine("Attach", rc);
        /* Back in the table: the caller still owns a valid parent handle. */
        if (vixdl_register(&parent->obj, VIXDL_DISK) < 0)
            vixdl_warn("Attach: out of memory; the parent handle %p is lost", (void *)parent);
        vixdl_release(&child->obj);
        return e;
    }
    vixdl_log("Attach: %s now lies on %s; the parent handle is closed", child->path,
              parent->path);
    rc = parent->disk->ops->close(parent->disk);   /* an empty chain: frees it */
    pthread_mutex_destroy(&parent->alock);
    pthread_cond_destroy(&parent->acond);
    free(parent->path);
    free(parent);
    vixdl_release(&child->obj);
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_SpaceNeededForClone(VixDiskLibHandle h,
                                                     VixDiskLibDiskType cloneDiskType,
                                                     uint64 *spaceNeeded)
{
    VixError e = vixdl_get_disk("SpaceNeededForClone", h);
    if (e != VIX_OK)
        return e;
    uint64_t bytes = 0;
    int rc = spaceNeeded ? ops_space_needed_for_clone(h->disk, (int)cloneDiskType, &bytes)
                         : vd_err_set(VD_E_INVAL, "no place to return the size");
    if (rc < 0)
        e = vixdl_fail_engine("SpaceNeededForClone", rc);
    else
        *spaceNeeded = bytes;
    vixdl_release(&h->obj);
    return e;
}

/* Each finding of CheckRepair: problems, repairs, the undo journal and
 * notes (marked "note: ") to the warn callback, the rest to the log
 * callback. */
static void check_report(void *data, int level, const char *msg)
{
    (void)data;
    if (level == VMDK_REPORT_INFO)
        vixdl_log("CheckRepair: %s", msg);
    else if (level == VMDK_REPORT_NOTE)
        vixdl_warn("CheckRepair: note: %s", msg);
    else
        vixdl_warn("CheckRepair: %s", msg);
}

VIXDL_EXPORT VixError VixDiskLib_CheckRepair(const VixDiskLibConnection connection,
                                             const char *filename, Bool repair)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("CheckRepair", connection, c);
    VixError e = local_only("CheckRepair", c);
    if (e == VIX_OK && (!filename || !*filename))
        e = vixdl_fail("CheckRepair", VIX_E_INVALID_ARG, "no disk path given");
    if (e == VIX_OK) {
        int rc = ops_check_repair(filename, repair, check_report, NULL);
        if (rc < 0)
            e = vixdl_fail_engine("CheckRepair", rc);
    }
    vixdl_release(&c->obj);
    return e;
}
