/* vdisk.h - a disk as an object with operations.
 *
 * The ABI layer, the high-level API, ops/ and the tools talk to disks only
 * through this table.  The local VMDK chain implements it (vmdk/vdisk_local.c);
 * the network transport implements it for remote disks.  All offsets and
 * lengths are bytes; functions return 0 or a negative vd_err code with the
 * detail in vd_err_msg(). */
#ifndef VD_UTIL_VDISK_H
#define VD_UTIL_VDISK_H

#include <stddef.h>
#include <stdint.h>

struct vdisk_geometry { uint32_t cylinders, heads, sectors; };

struct vdisk_info {
    uint64_t capacity;               /* bytes */
    int num_links;
    char *parent_hint;               /* malloc'd or NULL */
    char *uuid;                      /* malloc'd or NULL */
    struct vdisk_geometry phys, bios;
    int adapter;                     /* VixDiskLibAdapterType values */
    int hw_version;
    int disk_type;                   /* VixDiskLibDiskType values, 256 unknown */
    uint32_t logical_sector, physical_sector;
};
void vdisk_info_free(struct vdisk_info *info);

struct vdisk;

struct vdisk_ops {
    int (*pread)(struct vdisk *d, void *buf, size_t len, uint64_t off);
    int (*pwrite)(struct vdisk *d, const void *buf, size_t len, uint64_t off);
    int (*flush)(struct vdisk *d);
    /* See vmdk_block_status; status values are enum vmdk_status. */
    int (*block_status)(struct vdisk *d, uint64_t off, uint64_t len, int single_link,
                        uint64_t *run, int *status);
    int (*info)(struct vdisk *d, struct vdisk_info *info);
    int (*meta_get)(struct vdisk *d, const char *key, char **value);
    int (*meta_set)(struct vdisk *d, const char *key, const char *value);
    int (*meta_keys)(struct vdisk *d, char ***keys, size_t *count);
    int (*close)(struct vdisk *d);          /* frees d */
    /* Optional (NULL: write zeros): make the range read as zeros. */
    int (*zero)(struct vdisk *d, uint64_t off, uint64_t len);
    /* Optional (NULL: none), for transports that pipeline: start a read
     * and return without waiting.  0: started, and done(arg, rc, msg)
     * runs exactly once on a thread of the transport (rc 0 or a negative
     * vd_err, msg its text); done must not block or call into the disk.
     * Non-zero: not started (done is not called); pread does it. */
    int (*pread_start)(struct vdisk *d, void *buf, size_t len, uint64_t off,
                       void (*done)(void *arg, int rc, const char *msg), void *arg);
    const char *transport;                  /* "file", "nbd", "nbdssl", "https" */
};

struct vdisk {
    const struct vdisk_ops *ops;
    uint64_t capacity;      /* bytes, fixed while open */
    int readonly;
    void *impl;
};

/* Open a local disk (path to a descriptor or monolithic file); flags are
 * enum vmdk_open_flags. */
int vdisk_open_local(const char *path, unsigned flags, struct vdisk **out);
/* Open a disk whose files are read from fs (util/vfile.h) with the one VMDK
 * engine (vmdk_open_fs); d->ops->transport is transport (copied; NULL:
 * "file").  On a non-local fs the disk is read-only: pwrite, zero and
 * meta_set fail with VD_E_READONLY. */
struct vd_fs;
int vdisk_open_fs(const char *path, unsigned flags, struct vd_fs *fs, const char *transport,
                  struct vdisk **out);
/* Open a raw image (a regular file or a block device, vmdk/vdisk_raw.c):
 * the disk's bytes are the file's; flags are enum vmdk_open_flags (only
 * VMDK_OPEN_RDONLY matters). */
int vdisk_open_raw(const char *path, unsigned flags, struct vdisk **out);
/* Whether d is a raw image of vdisk_open_raw. */
int vdisk_is_raw(const struct vdisk *d);
/* *is_vmdk = 1 when the file at path is a VMDK by its content (a text
 * descriptor, or the magic of a sparse, streamOptimized, COWD or seSparse
 * file), else 0 (a raw image).  0, or an error when it cannot be read. */
int vdisk_probe_vmdk(const char *path, int *is_vmdk);
/* The local engine disk behind d, or NULL if d is not a local disk (a disk
 * read through a non-local vd_fs is not local: its files have no paths on
 * this host). */
struct vmdk_disk *vdisk_local_engine(struct vdisk *d);
/* The engine disk behind d for any disk of vdisk_open_local/vdisk_open_fs
 * (read-only use: link information), NULL for other disks. */
struct vmdk_disk *vdisk_engine(struct vdisk *d);

#endif
