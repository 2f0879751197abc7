/*
 * vddk/disk.h - openvddk's high-level disk API.
 *
 * The C counterpart of gvddk's DiskReaderWriter: one call opens a disk with
 * everything VixDiskLib needs around it (PrepareForAccess, ConnectEx, Open,
 * GetInfo), undoing what was done if a step fails; then reads and writes
 * at any byte offset and length, from any number of threads.
 *
 * POSIX-like calls (pread, pwrite, read, write, seek, flush) return -1 and
 * set errno on failure; vddk_disk_last_error() then gives the VixError and
 * a one-line detail for the calling thread.  The library must have been
 * initialised with VixDiskLib_InitEx first.
 */
#ifndef OPENVDDK_VDDK_DISK_H
#define OPENVDDK_VDDK_DISK_H

#include <sys/types.h>
#include "vixDiskLib.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vddk_disk vddk_disk;

typedef struct {
   const VixDiskLibConnectParams *connect; /* NULL: local disks */
   const char *path;                       /* disk path (local absolute or "[ds] x.vmdk") */
   uint32 flags;                           /* VIXDISKLIB_FLAG_OPEN_* */
   Bool readOnly;                          /* ConnectEx readOnly */
   const char *identity;                   /* PrepareForAccess identity; NULL: "openvddk" */
   const char *snapshotRef;                /* ConnectEx snapshot; may be NULL */
   const char *transportModes;             /* ConnectEx modes; may be NULL */
} vddk_disk_params;

/* Open a disk.  On failure nothing stays connected or prepared. */
VixError vddk_disk_open(const vddk_disk_params *params, vddk_disk **disk);

/* Close the disk, disconnect, end access; stops at the first error but
 * always frees the vddk_disk. */
VixError vddk_disk_close(vddk_disk *disk);

/* Capacity in bytes. */
uint64 vddk_disk_capacity(const vddk_disk *disk);

/* Read up to len bytes at off.  Returns the bytes read (short at the end
 * of the disk, 0 at or past it) or -1. */
ssize_t vddk_disk_pread(vddk_disk *disk, void *buf, size_t len, uint64 off);

/* Write len bytes at off; a range past the capacity fails with ENOSPC and
 * writes nothing.  Returns len or -1.  Concurrent writes that overlap are
 * applied one after the other, never interleaved within a sector. */
ssize_t vddk_disk_pwrite(vddk_disk *disk, const void *buf, size_t len, uint64 off);

/* read/write at the disk's shared position, advancing it. */
ssize_t vddk_disk_read(vddk_disk *disk, void *buf, size_t len);
ssize_t vddk_disk_write(vddk_disk *disk, const void *buf, size_t len);

/* Move the shared position (SEEK_SET, SEEK_CUR, SEEK_END); returns the
 * new position or -1 (EINVAL for a negative result). */
int64 vddk_disk_seek(vddk_disk *disk, int64 offset, int whence);

/* Make written data durable. 0 or -1. */
int vddk_disk_flush(vddk_disk *disk);

/* Allocated blocks, as VixDiskLib_QueryAllocatedBlocks (sectors); free the
 * list with VixDiskLib_FreeBlockList. */
VixError vddk_disk_query_allocated_blocks(vddk_disk *disk, VixDiskLibSectorType startSector,
                                          VixDiskLibSectorType numSectors,
                                          VixDiskLibSectorType chunkSize,
                                          VixDiskLibBlockList **blockList);

/* The low-level handle, for any other VixDiskLib call. */
VixDiskLibHandle vddk_disk_handle(vddk_disk *disk);

/* Details of one link of a disk's chain that VixDiskLib_GetInfo does not
 * carry.  Link 0 is the opened link, then its parents. */
typedef struct {
   char *path;                   /* the link's descriptor (or monolithic) file */
   char *createType;             /* "monolithicSparse", "vmfs", ... */
   VixDiskLibDiskType diskType;  /* VIXDISKLIB_DISK_UNKNOWN when VixDiskLib has no name */
   uint32 cid;                   /* content ID */
   uint32 parentCid;             /* 0xffffffff for a base disk */
   char *parentFileNameHint;     /* NULL for a base disk */
   VixDiskLibSectorType capacity;
   uint64 allocatedBytes;        /* space its files take on the host */
   /* What the NAS plugin serving the link's datastore reports (STATX) for
    * the link's files together; nasPlugin is NULL and the figures 0 when
    * no plugin answers for all of them. */
   char *nasPlugin;              /* the plugin's name */
   uint64 nasTotalBytes;         /* logical size of the files */
   uint64 nasAllocatedBytes;     /* storage they use */
   uint64 nasUniqueBytes;        /* storage not shared with other files */
} vddk_link_info;

/* Fill *info for link `link` of the disk open as handle (a handle from
 * VixDiskLib_Open or vddk_disk_handle).  Local disks only
 * (VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT otherwise); VIX_E_INVALID_ARG for
 * a link past the chain.  Free with vddk_disk_free_link_info. */
VixError vddk_disk_get_link_info(VixDiskLibHandle handle, int link, vddk_link_info **info);
void vddk_disk_free_link_info(vddk_link_info *info);

/* ---- vSphere inventory --------------------------------------------------
 * What a user needs to find a disk to open on a vCenter or ESXi host: its
 * VMs, their snapshots and their disks.  cp names the server, credentials
 * and thumbprint as for ConnectEx; with vmxSpec "moref=vm-N" only that VM
 * is listed, and snapshotRef (may be NULL) lists its disks as of that
 * snapshot.  Free with vddk_disk_vsphere_free. */
typedef struct {
   char *moref;                  /* "snapshot-12" */
   char *name;
   char *createTime;             /* as the server gives it (xsd:dateTime) */
   uint32 depth;                 /* 0 for a root snapshot, 1 for its children, ... */
} vddk_vsphere_snapshot;

typedef struct {
   int32 key;                    /* device key (2000 = first SCSI disk) */
   char *path;                   /* "[datastore] vm/vm.vmdk": open this */
   uint64 capacity;              /* bytes */
   char **chain;                 /* path, then its parents (delta chain) */
   uint32 numChain;
   char *label;                  /* "Hard disk 1", or NULL */
} vddk_vsphere_disk;

typedef struct {
   char *moref;                  /* "vm-57": vmxSpec "moref=vm-57" */
   char *name;
   char *powerState;             /* "poweredOn", "poweredOff", "suspended" */
   char *host;                   /* moref of its host, or NULL */
   char *datacenter;             /* inventory path of its datacenter */
   char *uuid;                   /* config.uuid, or NULL */
   vddk_vsphere_disk *disks;
   uint32 numDisks;
   vddk_vsphere_snapshot *snapshots;   /* the snapshot tree, depth first */
   uint32 numSnapshots;
} vddk_vsphere_vm;

VixError vddk_disk_vsphere_list(const VixDiskLibConnectParams *cp, const char *snapshotRef,
                                vddk_vsphere_vm **vms, uint32 *count);
void vddk_disk_vsphere_free(vddk_vsphere_vm *vms, uint32 count);

/* The SHA-1 and SHA-256 thumbprints ("AB:CD:...", upper case) of the
 * certificate a TLS server presents on server:port (port 0: 443).  Nothing
 * is checked or sent beyond the TLS handshake.  sha1 holds 60 bytes,
 * sha256 96. */
VixError vddk_disk_server_thumbprints(const char *server, uint32 port, char *sha1,
                                      char *sha256);

/* The last failure on this thread: its VixError (VIX_OK if none) and, if
 * detail is not NULL, a one-line description valid until the next call. */
VixError vddk_disk_last_error(const char **detail);

#ifdef __cplusplus
}
#endif

#endif /* OPENVDDK_VDDK_DISK_H */
