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

/* Create childPath as a delta disk (monolithicSparse or twoGbMaxExtentSparse)
 * of the local disk at parentPath, as VixDiskLib_CreateChild does, but with
 * the parentFileNameHint chosen: parentHint NULL writes it as VMware does
 * (the bare name in the same directory, else an absolute path); a relative
 * hint ("../base/disk.vmdk") keeps the chain valid when both directories
 * move together, and must lead from childPath's directory to parentPath. */
VixError vddk_disk_create_child(const char *parentPath, const char *childPath,
                                VixDiskLibDiskType diskType, const char *parentHint);

/* ---- raw images ------------------------------------------------------------
 * A raw image is a plain file (or a block device) whose bytes are the
 * disk's, as `qemu-img convert -O raw` writes it.  Opened as raw it is a
 * disk like any other: Read, Write, Flush, GetInfo (one link, lsilogic,
 * no disk database), QueryAllocatedBlocks (from the file's holes),
 * Close.  Local connections only. */
typedef enum {
   VDDK_DISK_FORMAT_VMDK = 1,    /* a descriptor, or a sparse, streamOptimized, COWD or seSparse file */
   VDDK_DISK_FORMAT_RAW = 2,     /* anything else: read byte for byte */
} vddk_disk_format;

/* What the local file (or block device) at path holds, by its content: its
 * first bytes are a VMDK magic number or descriptor text, else it is raw.
 * A file that cannot be read is an error (VIX_E_FILE_NOT_FOUND, ...). */
VixError vddk_disk_probe(const char *path, vddk_disk_format *format);

/* In vddk_disk_params.flags (beside VIXDISKLIB_FLAG_OPEN_*): open path as
 * a raw image (vddk_disk_open_raw) instead of a VMDK. */
#define VDDK_DISK_FLAG_OPEN_RAW (1u << 24)

/* Open the raw image at path (a regular file: its size rounded up to whole
 * sectors, the tail reading as zeros; or a block device) on the local
 * connection conn, as VixDiskLib_Open opens a VMDK; flags are
 * VIXDISKLIB_FLAG_OPEN_* (READ_ONLY matters).  The handle works with every
 * VixDiskLib call that takes one; close it with VixDiskLib_Close. */
VixError vddk_disk_open_raw(VixDiskLibConnection conn, const char *path, uint32 flags,
                            VixDiskLibHandle *handle);

/* Copy what the disk open as src reads into a raw image at dstPath.  A new
 * file is built under a hidden temporary name in dstPath's directory and
 * put in place when complete; it is sparse (holes wherever src has no data
 * or reads zeros) unless rawFlags has VDDK_DISK_RAW_PREALLOCATE (every
 * block allocated).  An existing block device is written in place: it
 * must hold at least src's capacity (the rest of it is not touched).  An
 * existing dstPath (a block device too) is VIX_E_FILE_ALREADY_EXISTS
 * unless overWrite; nothing is written on refusal. */
#define VDDK_DISK_RAW_PREALLOCATE 1u
VixError vddk_disk_clone_raw(VixDiskLibHandle src, const char *dstPath, uint32 rawFlags,
                             VixDiskLibProgressFunc progressFunc, void *progressCallbackData,
                             Bool overWrite);

/* VixDiskLib_Clone from an open handle (a raw image, a single link, ...)
 * rather than a path: a new local disk at dstPath on the local connection
 * dstConn, made with params. */
VixError vddk_disk_clone_handle(VixDiskLibHandle src, VixDiskLibConnection dstConn,
                                const char *dstPath, const VixDiskLibCreateParams *params,
                                VixDiskLibProgressFunc progressFunc,
                                void *progressCallbackData, Bool overWrite);

/* ---- one-pass streamOptimized writer --------------------------------------
 * A new local streamOptimized disk written in one pass from data the caller
 * pushes at increasing offsets (a backup writing what it reads).  Calls on
 * one stream must not run concurrently. */
typedef struct vddk_disk_stream vddk_disk_stream;
/* Start writing path as a new streamOptimized disk described by params
 * (diskType must be VIXDISKLIB_DISK_STREAM_OPTIMIZED; capacity in sectors; adapterType, hwVersion as VixDiskLib_Create).
 * Nothing appears at path until vddk_disk_stream_close commits: the file is built under a hidden temporary name in the same directory. path existing already -> VIX_E_FILE_ALREADY_EXISTS. */
VixError vddk_disk_stream_create(const char *path, const VixDiskLibCreateParams *params, vddk_disk_stream **out);
/* Data at byte offset off, len bytes. Offsets must not go backwards: off >= end of the previous write (gaps read back as zeros); any byte alignment (partial grains are buffered; a grain is complete when the next write starts past it or at close).  All-zero grains are not stored.  Compression (zlib format, libdeflate, same level as clone) runs on worker threads (one per core, at most 8); the call copies buf and returns; memory is bounded (a few MiB per worker).  Past the capacity -> error, nothing written. Going backwards -> VIX_E_INVALID_ARG with text. */
VixError vddk_disk_stream_write(vddk_disk_stream *s, uint64 off, const void *buf, size_t len);
/* commit TRUE: finish the file (grain tables, directory, footer, end-of-stream, header written last), make it durable (fsync file and directory) and link it at path; FALSE (or after any earlier error): remove everything.  Always frees s. */
VixError vddk_disk_stream_close(vddk_disk_stream *s, Bool commit);

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
   char *description;            /* the snapshot's description, or NULL when empty */
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

/* A vSphere session kept open across several calls: the same log-in as
 * ConnectEx with cp (server, port, thumbprint check, VIXDISKLIB_CRED_UID or
 * VIXDISKLIB_CRED_SESSIONID); cp->vmxSpec is not used.  Close logs out
 * when the session was made by open (not for an adopted session cookie).
 * One session serves one thread at a time. */
typedef struct vddk_vsphere_session vddk_vsphere_session;
VixError vddk_disk_vsphere_session_open(const VixDiskLibConnectParams *cp,
                                        vddk_vsphere_session **out);
void vddk_disk_vsphere_session_close(vddk_vsphere_session *s);

/* What vddk_disk_vsphere_list gives, on an open session: vmMoref NULL
 * lists every VM, else that VM ("vm-57"; "moref=vm-57" also does), with
 * its disks as of snapshotRef when that is not NULL. */
VixError vddk_disk_vsphere_session_list(vddk_vsphere_session *s, const char *vmMoref,
                                        const char *snapshotRef, vddk_vsphere_vm **vms,
                                        uint32 *count);

/* Take a snapshot of the VM (VirtualMachine.CreateSnapshot_Task with these
 * name, description (may be NULL), memory and quiesce) and wait until the
 * server's task ends.  *snapshotRef is the new snapshot's moref
 * ("snapshot-12"); free it with free().  An unknown VM is
 * VIX_E_OBJECT_NOT_FOUND; a fault of the task is an error whose text
 * names the method, the VM and the fault. */
VixError vddk_disk_vsphere_snapshot_create(vddk_vsphere_session *s, const char *vmMoref,
                                           const char *name, const char *description,
                                           Bool memory, Bool quiesce, char **snapshotRef);

/* Delete a snapshot (VirtualMachineSnapshot.RemoveSnapshot_Task, its disks
 * consolidated) and wait for the task; removeChildren also deletes the
 * snapshots below it.  An unknown snapshot is VIX_E_OBJECT_NOT_FOUND. */
VixError vddk_disk_vsphere_snapshot_remove(vddk_vsphere_session *s, const char *snapshotRef,
                                           Bool removeChildren);

/* The VM's configuration (its `config` property, VirtualMachineConfigInfo)
 * as a JSON object, malloc'ed: free it with free().  Elements become keys;
 * repeated elements and the known array properties (config.hardware.device,
 * extraConfig, ...) become arrays; values are strings except booleans and
 * integers the server typed as such; an object's vim25 type is its "_type"
 * key ("VirtualDisk").  docs/vsphere.md has the details. */
VixError vddk_disk_vsphere_vm_config(vddk_vsphere_session *s, const char *vmMoref,
                                     char **json);

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
