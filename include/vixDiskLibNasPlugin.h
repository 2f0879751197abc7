/*
 * vixDiskLibNasPlugin.h - the NAS offload plugin interface, as provided by
 * openvddk.
 *
 * This text is openvddk's own.  The names, numeric values, types and
 * structure layouts are those of VMware's NAS plugin interface, so NAS
 * plugins written for VDDK build against this header and load into
 * openvddk.
 *
 * A NAS plugin lets the storage do work the disk library would otherwise
 * do by moving bytes: clone a file, reserve the space of a file, report how
 * much of a file is allocated and how much of it is shared.  The disk
 * library opens one session per datastore (a mounted file system) with the
 * first plugin that accepts it, asks which primitives the session supports,
 * runs primitives in it, and ends it at VixDiskLib_Exit.
 *
 * Entry points a NAS plugin provides (in VixDiskLibNasPlugin below):
 *   StartSession   accept or refuse a datastore, return a session id
 *   EndSession     end a session
 *   SupportStatus  VIX_OK when a primitive is supported in a session
 *   ExecPrimitive  run one primitive; its status goes to the result record
 */
#ifndef _VIXDISKLIBNASPLUGIN_H_
#define _VIXDISKLIBNASPLUGIN_H_

#include "vixDiskLibPlugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the NAS interface; a NAS plugin's descriptor carries these
 * in its majorVersion / minorVersion fields. */
#define VIXDISKLIB_NASPLUGIN_MAJOR_VERSION 1
#define VIXDISKLIB_NASPLUGIN_MINOR_VERSION 2

/* ESX names of file-system types, as found in fsType. */
#define VIXDISKLIB_NASPLUGIN_FSTYPE_NFS "NFS"
#define VIXDISKLIB_NASPLUGIN_FSTYPE_NFS41 "NFS41"
#define VIXDISKLIB_NASPLUGIN_FSTYPE_VMFS "VMFS"
#define VIXDISKLIB_NASPLUGIN_FSTYPE_VMFSL "VMFS-L"

/* The datastore a session is for (40 bytes on LP64). */
typedef struct {
   char *fsType;            /* file-system type ("NFS", "VMFS"; see below) */
   uint32 fsVersion;        /* major version of the file system */
   char *remoteIP;          /* NAS server address; NULL if not NAS */
   char *remoteMountPoint;  /* exported path on the server; NULL if not NAS */
   char *localMountPoint;   /* where the datastore is mounted here */
} VixDiskLibNasPluginDataStoreParams;

/* Properties of a session. */
typedef struct {
   /* Fail a primitive (or StartSession) when one exchange with the storage
    * takes longer than this many milliseconds; 0 lets the plugin choose. */
   uint64 timeoutMS;
} VixDiskLibNasPluginSessionParams;

/* A session, as returned by StartSession. */
typedef uint64 VixDiskLibNasPluginSessionID;
#define VIXDISKLIB_NASPLUGIN_INVALID_SESSION_ID (0LL)

/* The primitives ('NAS0', then consecutive values). */
typedef enum {
   VIXDISKLIB_NASPLUGIN_PRIM_INVALID = (('N' << 24) | ('A' << 16) | ('S' << 8) | '0'),
   VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE,
   VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE,
   VIXDISKLIB_NASPLUGIN_PRIM_STATX,
} VixDiskLibNasPluginPrimitiveID;

struct VixDiskLibNasPluginProgressRecord;

/* Progress callback given to the plugin; FALSE asks it to stop. */
typedef Bool (VixDiskLibNasPluginPeriodicCallback)(
   struct VixDiskLibNasPluginProgressRecord *pRec);

/* Progress reporting for long primitives (32 bytes on LP64). */
typedef struct VixDiskLibNasPluginProgressRecord {
   /* The disk library's own data; a plugin leaves it alone.  (The field is
    * named "private" in C; C++ reserves that word, so it is spelled
    * privateData there.  The layout is the same.) */
#ifdef __cplusplus
   void *privateData;
#else
   void *private;
#endif
   /* Set by the disk library: call the callback each time this many more
    * bytes are done. */
   uint64 updateBytes;
   /* Set by the plugin before each call: bytes done since the last call. */
   uint64 progressBytes;
   /* Set by the disk library: the function to call.  When it returns
    * FALSE the plugin stops, cleans up, and reports VIX_E_CANCELLED. */
   VixDiskLibNasPluginPeriodicCallback *callback;
} VixDiskLibNasPluginProgressRecord;

/* The first member of every primitive's result. */
typedef struct {
   VixError status;
} VixDiskLibNasPluginResultCommon;

/* How a file's space is provided (the values of disklib's file
 * allocation types). */
typedef enum VixDiskLibNasPluginAllocType {
   VIXDISKLIB_NASPLUGIN_FILE_ALLOC_EZT,   /* eager-zeroed thick */
   VIXDISKLIB_NASPLUGIN_FILE_ALLOC_LZT,   /* lazy-zeroed thick */
   VIXDISKLIB_NASPLUGIN_FILE_ALLOC_THIN,  /* thin */
   VIXDISKLIB_NASPLUGIN_FILE_ALLOC_UNKNOWN = -1,
} VixDiskLibNasPluginAllocType;

/* Result of VIXDISKLIB_NASPLUGIN_PRIM_STATX (40 bytes on LP64). */
typedef struct {
   VixDiskLibNasPluginResultCommon common;
   uint64 totalBytes;      /* logical size of the file */
   uint64 allocedBytes;    /* bytes of storage the file uses (may be less) */
   uint64 uniqueBytes;     /* allocated bytes shared with no other file or
                              snapshot; never more than allocedBytes */
   VixDiskLibNasPluginAllocType allocType;
} VixDiskLibNasPluginStatXResult;

/* The first member of every primitive's parameters (24 bytes on LP64). */
typedef struct {
   VixDiskLibNasPluginPrimitiveID primitiveID;
   VixDiskLibNasPluginProgressRecord *progressRecord;
   /* Where the plugin reports the outcome: a ResultCommon, or a larger
    * result record that starts with one (STATX). */
   VixDiskLibNasPluginResultCommon *result;
} VixDiskLibNasPluginCommonParams;

/* Flags of VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE. */
typedef enum {
   /* Fail if the destination exists (otherwise it is replaced). */
   VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED = (1 << 0),
   /* Finish as fast as possible and move data later, e.g. by sharing
    * blocks copy-on-write.  Without it the data is moved before the
    * primitive completes, for the best I/O on the destination. */
   VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY = (1 << 1),
   /* Source and destination are on different datastores; the
    * srcDataStoreInfo parameter describes the source's. */
   VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SRCDATASTORE_VALID = (1 << 2),
   /* Only say whether this clone (files and flags) would be done
    * natively: VIX_OK if so, an error if not; nothing is changed. */
   VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN = (1 << 3),
   /* Do not allocate the destination where the source is unallocated or
    * zero (a thin source gives a thin copy).  Without it those blocks are
    * allocated as zeros (the copy is thick). */
   VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES = (1 << 4),
} VixDiskLibNasPluginCloneFileFlags;

/* Parameters of VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE (56 bytes on LP64). */
typedef struct {
   VixDiskLibNasPluginCommonParams common;
   /* Absolute local paths, every link resolved. */
   char *srcFileName;
   char *dstFileName;
   VixDiskLibNasPluginCloneFileFlags cloneFlags;
   /* The source's datastore; meaningful only with
    * VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SRCDATASTORE_VALID. */
   VixDiskLibNasPluginDataStoreParams *srcDataStoreInfo;
} VixDiskLibNasPluginCloneFileParams;

/* Parameters of VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE (32 bytes on LP64).
 * The file exists and has its final, non-zero length; the plugin makes
 * the storage back all of that length, keeping any data already in it. */
typedef struct {
   VixDiskLibNasPluginCommonParams common;
   char *fileName;          /* absolute local path, links resolved */
} VixDiskLibNasPluginResvSpaceParams;

/* Parameters of VIXDISKLIB_NASPLUGIN_PRIM_STATX (32 bytes on LP64); the
 * result record is a VixDiskLibNasPluginStatXResult. */
typedef struct {
   VixDiskLibNasPluginCommonParams common;
   char *fileName;          /* absolute local path, links resolved */
} VixDiskLibNasPluginStatXParams;

/*
 * Start a session for a datastore.  May be called for datastores the
 * plugin cannot serve (another vendor's server, a local file system): the
 * plugin checks that it can reach the storage and that the storage offers
 * offloads, and refuses otherwise.  On VIX_OK *sessionID is the context of
 * every later call for this datastore.
 */
typedef VixError (VixDiskLibNasPluginStartSession)(
   const VixDiskLibNasPluginDataStoreParams *nasConfigData,
   const VixDiskLibNasPluginSessionParams *sessionParams,
   VixDiskLibNasPluginSessionID *sessionID);

/* End a session started by StartSession. */
typedef VixError (VixDiskLibNasPluginEndSession)(VixDiskLibNasPluginSessionID sessionID);

/* VIX_OK if primitiveID is supported in the session, an error otherwise. */
typedef VixError (VixDiskLibNasPluginSupportStatus)(
   VixDiskLibNasPluginSessionID sessionID,
   const VixDiskLibNasPluginPrimitiveID primitiveID);

/*
 * Run one primitive.  execParams points to the parameter record of
 * execParams->primitiveID (it starts with this common part).  The call may
 * block until the work is done; meanwhile the plugin calls
 * progressRecord->callback each time progressRecord->updateBytes more bytes
 * are done, and stops (cleaning up) when it returns FALSE.  The outcome is
 * written to execParams->result->status.
 */
typedef void (VixDiskLibNasPluginExecutePrimitive)(
   VixDiskLibNasPluginSessionID sessionID,
   const VixDiskLibNasPluginCommonParams *execParams);

/* The descriptor a NAS plugin exports (72 bytes on LP64): the generic
 * descriptor (type VIXDISKLIB_PLUGIN_TYPE_NAS, NAS major/minor version)
 * first, then the four entry points. */
typedef struct {
   VixDiskLibPlugin diskLibPlugin;
   VixDiskLibNasPluginStartSession *StartSession;
   VixDiskLibNasPluginEndSession *EndSession;
   VixDiskLibNasPluginExecutePrimitive *ExecPrimitive;
   VixDiskLibNasPluginSupportStatus *SupportStatus;
} VixDiskLibNasPlugin;

#ifdef __cplusplus
}
#endif

#endif /* _VIXDISKLIBNASPLUGIN_H_ */
