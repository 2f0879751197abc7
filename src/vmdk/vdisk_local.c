/* vdisk_local.c - the local VMDK chain as a vdisk object. */
#include <stdlib.h>
#include <string.h>

#include "vmdk.h"
#include "../util/fileio.h"
#include "../util/vdisk.h"
#include "../util/vfile.h"

void vdisk_info_free(struct vdisk_info *info)
{
    if (!info)
        return;
    free(info->parent_hint);
    free(info->uuid);
    memset(info, 0, sizeof *info);
}

static vmdk_disk *eng(struct vdisk *d) { return d->impl; }

static int l_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
    return vmdk_pread(eng(d), buf, len, off);
}

static int l_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
    return vmdk_pwrite(eng(d), buf, len, off);
}

static int l_flush(struct vdisk *d) { return vmdk_flush(eng(d)); }

static int l_block_status(struct vdisk *d, uint64_t off, uint64_t len, int single,
                          uint64_t *run, int *status)
{
    return vmdk_block_status(eng(d), off, len, single, run, status);
}

static int l_info(struct vdisk *d, struct vdisk_info *info)
{
    vmdk_disk *v = eng(d);
    struct vmdk_link_info li;
    int rc = vmdk_link_info(v, 0, &li);
    if (rc < 0)
        return rc;
    memset(info, 0, sizeof *info);
    info->capacity = vmdk_capacity(v);
    info->num_links = vmdk_num_links(v);
    if (li.parent_hint && !(info->parent_hint = vd_strdup(li.parent_hint)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    char *uuid = NULL;
    if (vmdk_meta_get(v, "uuid", &uuid) == 0)
        info->uuid = uuid;
    vd_err_clear();
    struct vmdk_geometry g;
    vmdk_geometry(v, &g);
    info->phys = (struct vdisk_geometry){ g.cylinders, g.heads, g.sectors };
    info->bios = info->phys;
    char *bc = NULL, *bh = NULL, *bs = NULL;
    if (vmdk_meta_get(v, "geometry.biosCylinders", &bc) == 0 &&
        vmdk_meta_get(v, "geometry.biosHeads", &bh) == 0 &&
        vmdk_meta_get(v, "geometry.biosSectors", &bs) == 0)
        info->bios = (struct vdisk_geometry){ (uint32_t)strtoul(bc, NULL, 10),
                                              (uint32_t)strtoul(bh, NULL, 10),
                                              (uint32_t)strtoul(bs, NULL, 10) };
    free(bc);
    free(bh);
    free(bs);
    vd_err_clear();
    info->adapter = (int)vmdk_adapter_type(v);
    info->hw_version = vmdk_hw_version(v);
    /* seSparse (engine-only type 9) has no VixDiskLibDiskType: UNKNOWN. */
    info->disk_type = li.type == VMDK_TYPE_UNKNOWN || li.type > VMDK_TYPE_VMFS_SPARSE
                          ? 256 : (int)li.type;
    info->logical_sector = 512;
    info->physical_sector = 512;
    char *ss = NULL;
    if (vmdk_meta_get(v, "logicalSectorSize", &ss) == 0 && strcmp(ss, "4096") == 0)
        info->logical_sector = 4096;
    free(ss);
    ss = NULL;
    if (vmdk_meta_get(v, "physicalSectorSize", &ss) == 0 && strcmp(ss, "4096") == 0)
        info->physical_sector = 4096;
    free(ss);
    vd_err_clear();
    return 0;
}

static int l_meta_get(struct vdisk *d, const char *k, char **v)
{
    return vmdk_meta_get(eng(d), k, v);
}

static int l_meta_set(struct vdisk *d, const char *k, const char *v)
{
    return vmdk_meta_set(eng(d), k, v);
}

static int l_meta_keys(struct vdisk *d, char ***keys, size_t *n)
{
    return vmdk_meta_keys(eng(d), keys, n);
}

static int l_close(struct vdisk *d)
{
    int rc = vmdk_close(eng(d));
    free(d);
    return rc;
}

static const struct vdisk_ops local_ops = {
    .pread = l_pread,
    .pwrite = l_pwrite,
    .flush = l_flush,
    .block_status = l_block_status,
    .info = l_info,
    .meta_get = l_meta_get,
    .meta_set = l_meta_set,
    .meta_keys = l_meta_keys,
    .close = l_close,
    .transport = "file",
};

/* A disk with its own copy of the operations, for its transport name (a
 * disk read through a non-local file system).  d comes first: l_close's
 * free(d) frees it all. */
struct fs_vdisk {
    struct vdisk d;
    int local;              /* its files are on the local file system */
    struct vdisk_ops ops;
    char transport[];
};

int vdisk_open_fs(const char *path, unsigned flags, struct vd_fs *fs, const char *transport,
                  struct vdisk **out)
{
    if (!transport)
        transport = local_ops.transport;
    int own = !vd_fs_is_local(fs) || strcmp(transport, local_ops.transport) != 0;
    size_t tlen = strlen(transport) + 1;
    struct fs_vdisk *fd = calloc(1, sizeof *fd + (own ? tlen : 0));
    if (!fd)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    struct vdisk *d = &fd->d;
    vmdk_disk *v;
    int rc = vmdk_open_fs(path, flags, fs, &v);
    if (rc < 0) {
        free(fd);
        return rc;
    }
    if (own) {
        fd->ops = local_ops;
        memcpy(fd->transport, transport, tlen);
        fd->ops.transport = fd->transport;
        d->ops = &fd->ops;
    } else {
        d->ops = &local_ops;
    }
    fd->local = vd_fs_is_local(fs);
    d->impl = v;
    d->capacity = vmdk_capacity(v);
    d->readonly = vmdk_is_readonly(v);
    *out = d;
    return 0;
}

int vdisk_open_local(const char *path, unsigned flags, struct vdisk **out)
{
    return vdisk_open_fs(path, flags, vd_fs_local(), NULL, out);
}

struct vmdk_disk *vdisk_local_engine(struct vdisk *d)
{
    if (!d || (d->ops != &local_ops && d->ops->close != l_close))
        return NULL;
    return ((struct fs_vdisk *)d)->local ? d->impl : NULL;
}

struct vmdk_disk *vdisk_engine(struct vdisk *d)
{
    return d && (d->ops == &local_ops || d->ops->close == l_close) ? d->impl : NULL;
}
