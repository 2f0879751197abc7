/*
 * header_check.c - compiled (not run) by test_headers.sh as C99, C17 and
 * C++17 with -pedantic -Wall -Wextra -Werror, to prove that the public
 * headers are self-contained, idempotent, warning-free, and keep the ABI
 * in every language mode.  No other header is included: size_t, ssize_t,
 * va_list, free() and offsetof must all arrive through them.
 *
 * -DABI_VIX_H_FIRST simulates a program that includes VMware's vix.h
 * first: VixError and the codes are already defined and vixDiskLib.h must
 * skip its own definitions (the _VIX_H_ guard).
 */
#ifdef ABI_VIX_H_FIRST
#include "vm_basic_types.h"
#define _VIX_H_
typedef uint64 VixError;
#define VIX_ERROR_CODE(err) ((err) & 0xFFFF)
#define VIX_SUCCEEDED(err) (VIX_OK == (err))
#define VIX_FAILED(err) (VIX_OK != (err))
enum { VIX_OK = 0, VIX_E_FAIL = 1, VIX_E_DISK_OUTOFRANGE = 16007, VIX_ASYNC = 25000 };
#endif

#include "vixDiskLib.h"
#include "vddk/disk.h"
/* Include guards. */
#include "vixDiskLib.h"
#include "vddk/disk.h"
#include "vm_basic_types.h"

#ifdef __cplusplus
#define ABI_CHECK(name, cond) static_assert(cond, #name)
#else
#define ABI_CHECK(name, cond) typedef char abi_check_##name[(cond) ? 1 : -1]
#endif

/* ---- layout, in every language mode ------------------------------------- */

ABI_CHECK(bool_size, sizeof(Bool) == 1);
ABI_CHECK(u64_size, sizeof(uint64) == 8);
ABI_CHECK(err_size, sizeof(VixError) == 8);
ABI_CHECK(sector_size, sizeof(VixDiskLibSectorType) == 8);
ABI_CHECK(geo, sizeof(VixDiskLibGeometry) == 12);
ABI_CHECK(create, sizeof(VixDiskLibCreateParams) == 32);
ABI_CHECK(create_cap, offsetof(VixDiskLibCreateParams, capacity) == 16);
ABI_CHECK(create_ls, offsetof(VixDiskLibCreateParams, logicalSectorSize) == 24);
ABI_CHECK(create_ps, offsetof(VixDiskLibCreateParams, physicalSectorSize) == 28);
ABI_CHECK(cp, sizeof(VixDiskLibConnectParams) == 128);
ABI_CHECK(cp_cred, offsetof(VixDiskLibConnectParams, credType) == 32);
ABI_CHECK(cp_creds, offsetof(VixDiskLibConnectParams, creds) == 40);
ABI_CHECK(cp_pw, offsetof(VixDiskLibConnectParams, creds.uid.password) == 48);
ABI_CHECK(cp_key, offsetof(VixDiskLibConnectParams, creds.sessionId.key) == 56);
ABI_CHECK(cp_port, offsetof(VixDiskLibConnectParams, port) == 64);
ABI_CHECK(cp_vim, offsetof(VixDiskLibConnectParams, vimApiVer) == 72);
ABI_CHECK(cp_state, offsetof(VixDiskLibConnectParams, state) == 88);
ABI_CHECK(cp_spec, offsetof(VixDiskLibConnectParams, spec) == 96);
ABI_CHECK(cp_ssid, offsetof(VixDiskLibConnectParams, spec.vStorageObjSpec.ssId) == 112);
ABI_CHECK(cp_spectype, offsetof(VixDiskLibConnectParams, specType) == 120);
ABI_CHECK(info, sizeof(VixDiskLibInfo) == 64);
ABI_CHECK(info_cap, offsetof(VixDiskLibInfo, capacity) == 24);
ABI_CHECK(info_links, offsetof(VixDiskLibInfo, numLinks) == 36);
ABI_CHECK(info_hint, offsetof(VixDiskLibInfo, parentFileNameHint) == 40);
ABI_CHECK(info_ls, offsetof(VixDiskLibInfo, logicalSectorSize) == 56);
ABI_CHECK(block, sizeof(VixDiskLibBlock) == 16);
ABI_CHECK(blocklist, offsetof(VixDiskLibBlockList, blocks) == 8);
ABI_CHECK(vso, sizeof(VixDiskLibVStorageObjectSpec) == 24);
ABI_CHECK(ds, sizeof(VixDiskLibDatastoreSpec) == 16);
ABI_CHECK(spec_union, sizeof(VixDiskLibSpec) == 24);
ABI_CHECK(async, VIX_ASYNC == 25000);
ABI_CHECK(outofrange, VIX_E_DISK_OUTOFRANGE == 16007);
ABI_CHECK(chunk, VIXDISKLIB_MIN_CHUNK_SIZE == 128);
ABI_CHECK(disk_type, VIXDISKLIB_DISK_VMFS_THIN == 7);

/* ---- every prototype, with the exact types of the reference ------------ */

VixError (*abi_p_InitEx)(uint32, uint32, VixDiskLibGenericLogFunc *,
                         VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                         const char *, const char *) = VixDiskLib_InitEx;
VixError (*abi_p_Init)(uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                       VixDiskLibGenericLogFunc *, const char *) = VixDiskLib_Init;
void (*abi_p_Exit)(void) = VixDiskLib_Exit;
const char *(*abi_p_ListTransportModes)(void) = VixDiskLib_ListTransportModes;
VixError (*abi_p_Cleanup)(const VixDiskLibConnectParams *, uint32 *, uint32 *) =
    VixDiskLib_Cleanup;
VixError (*abi_p_Connect)(const VixDiskLibConnectParams *, VixDiskLibConnection *) =
    VixDiskLib_Connect;
VixError (*abi_p_ConnectEx)(const VixDiskLibConnectParams *, Bool, const char *, const char *,
                            VixDiskLibConnection *) = VixDiskLib_ConnectEx;
VixError (*abi_p_Disconnect)(VixDiskLibConnection) = VixDiskLib_Disconnect;
VixError (*abi_p_PrepareForAccess)(const VixDiskLibConnectParams *, const char *) =
    VixDiskLib_PrepareForAccess;
VixError (*abi_p_EndAccess)(const VixDiskLibConnectParams *, const char *) =
    VixDiskLib_EndAccess;
VixError (*abi_p_Create)(const VixDiskLibConnection, const char *,
                         const VixDiskLibCreateParams *, VixDiskLibProgressFunc, void *) =
    VixDiskLib_Create;
VixError (*abi_p_CreateChild)(VixDiskLibHandle, const char *, VixDiskLibDiskType,
                              VixDiskLibProgressFunc, void *) = VixDiskLib_CreateChild;
VixError (*abi_p_Open)(const VixDiskLibConnection, const char *, uint32, VixDiskLibHandle *) =
    VixDiskLib_Open;
VixError (*abi_p_Close)(VixDiskLibHandle) = VixDiskLib_Close;
VixError (*abi_p_GetInfo)(VixDiskLibHandle, VixDiskLibInfo **) = VixDiskLib_GetInfo;
void (*abi_p_FreeInfo)(VixDiskLibInfo *) = VixDiskLib_FreeInfo;
const char *(*abi_p_GetTransportMode)(VixDiskLibHandle) = VixDiskLib_GetTransportMode;
VixError (*abi_p_Read)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType, uint8 *) =
    VixDiskLib_Read;
VixError (*abi_p_Write)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                        const uint8 *) = VixDiskLib_Write;
VixError (*abi_p_ReadAsync)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                            uint8 *, VixDiskLibCompletionCB, void *) = VixDiskLib_ReadAsync;
VixError (*abi_p_WriteAsync)(VixDiskLibHandle, VixDiskLibSectorType, VixDiskLibSectorType,
                             const uint8 *, VixDiskLibCompletionCB, void *) =
    VixDiskLib_WriteAsync;
VixError (*abi_p_Flush)(VixDiskLibHandle) = VixDiskLib_Flush;
VixError (*abi_p_Wait)(VixDiskLibHandle) = VixDiskLib_Wait;
VixError (*abi_p_ReadMetadata)(VixDiskLibHandle, const char *, char *, size_t, size_t *) =
    VixDiskLib_ReadMetadata;
VixError (*abi_p_WriteMetadata)(VixDiskLibHandle, const char *, const char *) =
    VixDiskLib_WriteMetadata;
VixError (*abi_p_GetMetadataKeys)(VixDiskLibHandle, char *, size_t, size_t *) =
    VixDiskLib_GetMetadataKeys;
VixError (*abi_p_Unlink)(VixDiskLibConnection, const char *) = VixDiskLib_Unlink;
VixError (*abi_p_Grow)(VixDiskLibConnection, const char *, VixDiskLibSectorType, Bool,
                       VixDiskLibProgressFunc, void *) = VixDiskLib_Grow;
VixError (*abi_p_Shrink)(VixDiskLibHandle, VixDiskLibProgressFunc, void *) = VixDiskLib_Shrink;
VixError (*abi_p_Defragment)(VixDiskLibHandle, VixDiskLibProgressFunc, void *) =
    VixDiskLib_Defragment;
VixError (*abi_p_Rename)(const char *, const char *) = VixDiskLib_Rename;
VixError (*abi_p_Clone)(const VixDiskLibConnection, const char *, const VixDiskLibConnection,
                        const char *, const VixDiskLibCreateParams *, VixDiskLibProgressFunc,
                        void *, Bool) = VixDiskLib_Clone;
char *(*abi_p_GetErrorText)(VixError, const char *) = VixDiskLib_GetErrorText;
void (*abi_p_FreeErrorText)(char *) = VixDiskLib_FreeErrorText;
VixError (*abi_p_IsAttachPossible)(VixDiskLibHandle, VixDiskLibHandle) =
    VixDiskLib_IsAttachPossible;
VixError (*abi_p_Attach)(VixDiskLibHandle, VixDiskLibHandle) = VixDiskLib_Attach;
VixError (*abi_p_SpaceNeededForClone)(VixDiskLibHandle, VixDiskLibDiskType, uint64 *) =
    VixDiskLib_SpaceNeededForClone;
VixError (*abi_p_CheckRepair)(const VixDiskLibConnection, const char *, Bool) =
    VixDiskLib_CheckRepair;
VixError (*abi_p_GetConnectParams)(const VixDiskLibConnection, VixDiskLibConnectParams **) =
    VixDiskLib_GetConnectParams;
void (*abi_p_FreeConnectParams)(VixDiskLibConnectParams *) = VixDiskLib_FreeConnectParams;
VixDiskLibConnectParams *(*abi_p_AllocateConnectParams)(void) =
    VixDiskLib_AllocateConnectParams;
VixError (*abi_p_QueryAllocatedBlocks)(VixDiskLibHandle, VixDiskLibSectorType,
                                       VixDiskLibSectorType, VixDiskLibSectorType,
                                       VixDiskLibBlockList **) =
    VixDiskLib_QueryAllocatedBlocks;
VixError (*abi_p_FreeBlockList)(VixDiskLibBlockList *) = VixDiskLib_FreeBlockList;

/* vddk/disk.h */
VixError (*abi_p_disk_open)(const vddk_disk_params *, vddk_disk **) = vddk_disk_open;
VixError (*abi_p_disk_close)(vddk_disk *) = vddk_disk_close;
uint64 (*abi_p_disk_capacity)(const vddk_disk *) = vddk_disk_capacity;
ssize_t (*abi_p_disk_pread)(vddk_disk *, void *, size_t, uint64) = vddk_disk_pread;
ssize_t (*abi_p_disk_pwrite)(vddk_disk *, const void *, size_t, uint64) = vddk_disk_pwrite;
ssize_t (*abi_p_disk_read)(vddk_disk *, void *, size_t) = vddk_disk_read;
ssize_t (*abi_p_disk_write)(vddk_disk *, const void *, size_t) = vddk_disk_write;
int64 (*abi_p_disk_seek)(vddk_disk *, int64, int) = vddk_disk_seek;
int (*abi_p_disk_flush)(vddk_disk *) = vddk_disk_flush;
VixError (*abi_p_disk_qab)(vddk_disk *, VixDiskLibSectorType, VixDiskLibSectorType,
                           VixDiskLibSectorType, VixDiskLibBlockList **) =
    vddk_disk_query_allocated_blocks;
VixDiskLibHandle (*abi_p_disk_handle)(vddk_disk *) = vddk_disk_handle;
VixError (*abi_p_disk_last_error)(const char **) = vddk_disk_last_error;

/* ---- the macros as gvddk's C glue writes them --------------------------- */

int abi_use_macros(VixError vErr, va_list ap);
int abi_use_macros(VixError vErr, va_list ap)
{
    int r = 0;
    /* gvddk_c.c: "if VIX_FAILED(vErr) {" -- no parentheses of its own. */
    if VIX_FAILED(vErr) {
        r |= 1;
    }
    if VIX_SUCCEEDED(vErr) {
        r |= 2;
    }
    while VIX_FAILED(vErr) {
        vErr = VIX_OK;
    }
    r |= (int)VIX_ERROR_CODE(vErr);
    /* Types that must come through the headers alone. */
    va_list copy;
    va_copy(copy, ap);
    va_end(copy);
    size_t z = sizeof(VixDiskLibInfo);
    ssize_t s = -1;
    void (*release)(void *) = free;
    r += (int)z + (int)s + (release != NULL);
    struct VixDiskLibConnectParam *opaque_conn = NULL;
    VixDiskLibConnection conn = opaque_conn;
    VixDiskLibHandleStruct *opaque_disk = NULL;
    VixDiskLibHandle h = opaque_disk;
    vddk_disk_params p = { NULL, "/x.vmdk", VIXDISKLIB_FLAG_OPEN_READ_ONLY, FALSE, NULL, NULL,
                           NULL };
    r += (conn == NULL) + (h == NULL) + (p.path != NULL);
    return r;
}
