/* links.c - per-link details for vddk/disk.h (what GetInfo cannot carry). */
#include <stdio.h>
#include <stdlib.h>

#include "vddk/disk.h"
#include "disk_priv.h"
#include "../ops/ops.h"
#include "../plugin/vdplugin.h"
#include "../util/fileio.h"
#include "../vixdisklib/vixdl.h"
#include "../vmdk/vmdk.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT VixError vddk_disk_get_link_info(VixDiskLibHandle h, int link, vddk_link_info **out)
{
    const char *op = "vddk_disk_get_link_info";
    if (!out)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "no place to return the information");
    *out = NULL;
    VixError e = vixdl_get_disk(op, h);
    if (e != VIX_OK)
        return e;
    vmdk_disk *eng = vdisk_engine(h->disk);
    struct vmdk_link_info li;
    if (!eng) {
        e = vixdl_fail(op, VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "%s: link details are only "
                       "known for local disks", h->path);
    } else if (link < 0 || link >= vmdk_num_links(eng)) {
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "%s: no link %d (the chain has %d)", h->path,
                       link, vmdk_num_links(eng));
    } else if (vmdk_link_info(eng, link, &li) < 0) {
        e = vixdl_fail_engine(op, -vd_err_code());
    } else {
        vddk_link_info *i = calloc(1, sizeof *i);
        if (i) {
            i->path = vd_strdup(li.path);
            i->createType = vd_strdup(li.create_type);
            i->parentFileNameHint = vd_strdup(li.parent_hint);
        }
        if (!i || !i->path || !i->createType || (li.parent_hint && !i->parentFileNameHint)) {
            vddk_disk_free_link_info(i);
            e = vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
        } else {
            int t = (int)li.type;
            i->diskType = t >= VIXDISKLIB_DISK_MONOLITHIC_SPARSE && t <= VIXDISKLIB_DISK_VMFS_SPARSE
                              ? (VixDiskLibDiskType)t : VIXDISKLIB_DISK_UNKNOWN;
            i->cid = li.cid;
            i->parentCid = li.parent_cid;
            i->capacity = li.capacity / VIXDISKLIB_SECTOR_SIZE;
            i->allocatedBytes = li.allocated_bytes;
            struct vdplugin_stat st;
            if (ops_plugin_link_stat(eng, link, &st) == 0) {
                i->nasPlugin = vd_strdup(st.plugin);
                i->nasTotalBytes = st.total;
                i->nasAllocatedBytes = st.allocated;
                i->nasUniqueBytes = st.unique;
            }
            vd_err_clear();
            *out = i;
        }
    }
    vixdl_release(&h->obj);
    return e;
}

EXPORT void vddk_disk_free_link_info(vddk_link_info *info)
{
    if (!info)
        return;
    free(info->path);
    free(info->createType);
    free(info->parentFileNameHint);
    free(info->nasPlugin);
    free(info);
}

EXPORT VixError vddk_disk_create_child(const char *parentPath, const char *childPath,
                                       VixDiskLibDiskType diskType, const char *parentHint)
{
    const char *op = "vddk_disk_create_child";
    if (!parentPath || !childPath)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "parent and child paths are required");
    if (diskType != VIXDISKLIB_DISK_MONOLITHIC_SPARSE && diskType != VIXDISKLIB_DISK_SPLIT_SPARSE)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "%s: a child disk must be monolithicSparse "
                          "or twoGbMaxExtentSparse", childPath);
    int rc = vmdk_create_child_hint(childPath, parentPath, (enum vmdk_type)diskType, parentHint);
    if (rc < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s: %s", op, vd_err_msg());
        disk_note_error(vixdl_from_vd(rc), msg);
        return vixdl_fail_engine(op, rc);
    }
    return VIX_OK;
}
