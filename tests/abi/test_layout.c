/*
 * test_layout.c - the binary interface of vixDiskLib.h on Linux x86_64:
 * sizes and field offsets of every public struct, the base types, and the
 * value of every constant, enum member and error code listed in the
 * reference (vddk-api.md sections 1 to 4).  Checked at run time so that a
 * difference shows as a failed test naming the field, not a broken build.
 */
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "vixDiskLib.h"

#define EQ(actual, expected)                                                   \
    do {                                                                       \
        unsigned long a_ = (unsigned long)(actual);                            \
        unsigned long x_ = (unsigned long)(expected);                          \
        if (a_ != x_)                                                          \
            fail_msg("%s is %lu, expected %lu", #actual, a_, x_);              \
    } while (0)

#define SIZE(type, n) EQ(sizeof(type), n)
#define OFF(type, member, n) EQ(offsetof(type, member), n)
#define MSIZE(type, member, n) EQ(sizeof(((type *)0)->member), n)

/* ---- base types (vm_basic_types.h) ------------------------------------- */

#define TYPE_NAME(x) _Generic((x),                                             \
    char: "char", signed char: "signed char", unsigned char: "unsigned char",  \
    short: "short", unsigned short: "unsigned short",                          \
    int: "int", unsigned int: "unsigned int",                                  \
    long: "long", unsigned long: "unsigned long",                              \
    long long: "long long", unsigned long long: "unsigned long long",          \
    default: "other")

#define IS_TYPE(x, name)                                                       \
    do {                                                                       \
        if (strcmp(TYPE_NAME(x), name) != 0)                                   \
            fail_msg("%s has type %s, expected %s", #x, TYPE_NAME(x), name);   \
    } while (0)

static void test_base_types(void **state)
{
    (void)state;
    SIZE(Bool, 1);
    IS_TYPE((Bool)0, "char");
    EQ(TRUE, 1);
    EQ(FALSE, 0);

    /* LP64 without HAVE_STDINT_H: the VMware header's own typedefs. */
    IS_TYPE((uint64)0, "unsigned long");
    IS_TYPE((int64)0, "long");
    IS_TYPE((uint32)0, "unsigned int");
    IS_TYPE((int32)0, "int");
    IS_TYPE((uint16)0, "unsigned short");
    IS_TYPE((int16)0, "short");
    IS_TYPE((uint8)0, "unsigned char");
    IS_TYPE((int8)0, "signed char");
    IS_TYPE((SectorType)0, "unsigned long");
    SIZE(uint64, 8);
    SIZE(int64, 8);
    SIZE(uint32, 4);
    SIZE(int32, 4);
    SIZE(uint16, 2);
    SIZE(int16, 2);
    SIZE(uint8, 1);
    SIZE(int8, 1);

    IS_TYPE((VixError)0, "unsigned long");
    IS_TYPE((VixDiskLibSectorType)0, "unsigned long");

    /* printf helpers and constant macros. */
    assert_string_equal(FMT64, "l");
    assert_string_equal(FMTSZ, "z");
    assert_string_equal(FMTPD, "l");
    char buf[64];
    snprintf(buf, sizeof buf, "%" FMT64 "u/%" FMT64 "d/%" FMTSZ "u", (uint64)18446744073709551615ul,
             (int64)-5, sizeof(VixDiskLibInfo));
    assert_string_equal(buf, "18446744073709551615/-5/64");
    IS_TYPE(CONST64(1), "long");
    IS_TYPE(CONST64U(1), "unsigned long");
    EQ(CONST64U(0x123456789a), 0x123456789aul);

    assert_true(MIN_INT8 == -128 && MAX_INT8 == 127);
    assert_true(MIN_UINT8 == 0 && MAX_UINT8 == 255);
    assert_true(MIN_INT16 == -32768 && MAX_INT16 == 32767);
    assert_true(MIN_UINT16 == 0 && MAX_UINT16 == 65535);
    assert_true(MIN_INT32 == INT_MIN && MAX_INT32 == INT_MAX);
    assert_true(MIN_UINT32 == 0 && MAX_UINT32 == UINT_MAX);
    assert_true(MIN_INT64 == LONG_MIN && MAX_INT64 == LONG_MAX);
    assert_true(MIN_UINT64 == 0 && MAX_UINT64 == ULONG_MAX);

    /* That vixDiskLib.h brings stdlib.h and stdarg.h (gvddk's cgo relies
     * on it) is checked by header_check.c (abi.headers). */
}

/* ---- structs (reference section 4) -------------------------------------- */

static void test_geometry(void **state)
{
    (void)state;
    SIZE(VixDiskLibGeometry, 12);
    EQ(alignof(VixDiskLibGeometry), 4);
    OFF(VixDiskLibGeometry, cylinders, 0);
    OFF(VixDiskLibGeometry, heads, 4);
    OFF(VixDiskLibGeometry, sectors, 8);
}

static void test_create_params(void **state)
{
    (void)state;
    SIZE(VixDiskLibCreateParams, 32);
    EQ(alignof(VixDiskLibCreateParams), 8);
    OFF(VixDiskLibCreateParams, diskType, 0);
    OFF(VixDiskLibCreateParams, adapterType, 4);
    OFF(VixDiskLibCreateParams, hwVersion, 8);
    MSIZE(VixDiskLibCreateParams, hwVersion, 2);
    OFF(VixDiskLibCreateParams, capacity, 16);
    MSIZE(VixDiskLibCreateParams, capacity, 8);
    OFF(VixDiskLibCreateParams, logicalSectorSize, 24);
    OFF(VixDiskLibCreateParams, physicalSectorSize, 28);
    MSIZE(VixDiskLibCreateParams, logicalSectorSize, 4);
    MSIZE(VixDiskLibCreateParams, physicalSectorSize, 4);
}

static void test_specs(void **state)
{
    (void)state;
    SIZE(VixDiskLibVStorageObjectSpec, 24);
    OFF(VixDiskLibVStorageObjectSpec, id, 0);
    OFF(VixDiskLibVStorageObjectSpec, datastoreMoRef, 8);
    OFF(VixDiskLibVStorageObjectSpec, ssId, 16);
    SIZE(VixDiskLibDatastoreSpec, 16);
    OFF(VixDiskLibDatastoreSpec, datastoreMoRef, 0);
    OFF(VixDiskLibDatastoreSpec, diskFolder, 8);
    SIZE(VixDiskLibSpec, 24);
    OFF(VixDiskLibSpec, vmxSpec, 0);
    OFF(VixDiskLibSpec, vStorageObjSpec, 0);
}

static void test_connect_params(void **state)
{
    (void)state;
    SIZE(VixDiskLibConnectParams, 128);
    EQ(alignof(VixDiskLibConnectParams), 8);
    OFF(VixDiskLibConnectParams, vmxSpec, 0);
    OFF(VixDiskLibConnectParams, serverName, 8);
    OFF(VixDiskLibConnectParams, thumbPrint, 16);
    OFF(VixDiskLibConnectParams, privateUse, 24);
    MSIZE(VixDiskLibConnectParams, privateUse, 8);
    OFF(VixDiskLibConnectParams, credType, 32);
    MSIZE(VixDiskLibConnectParams, credType, 4);
    OFF(VixDiskLibConnectParams, creds, 40);
    MSIZE(VixDiskLibConnectParams, creds, 24);
    OFF(VixDiskLibConnectParams, creds.uid.userName, 40);
    OFF(VixDiskLibConnectParams, creds.uid.password, 48);
    OFF(VixDiskLibConnectParams, creds.sessionId.cookie, 40);
    OFF(VixDiskLibConnectParams, creds.sessionId.userName, 48);
    OFF(VixDiskLibConnectParams, creds.sessionId.key, 56);
    OFF(VixDiskLibConnectParams, creds.ticketId, 40);
    OFF(VixDiskLibConnectParams, port, 64);
    MSIZE(VixDiskLibConnectParams, port, 4);
    OFF(VixDiskLibConnectParams, nfcHostPort, 68);
    MSIZE(VixDiskLibConnectParams, nfcHostPort, 4);
    OFF(VixDiskLibConnectParams, vimApiVer, 72);
    OFF(VixDiskLibConnectParams, reserved, 80);
    MSIZE(VixDiskLibConnectParams, reserved, 8);
    OFF(VixDiskLibConnectParams, state, 88);
    OFF(VixDiskLibConnectParams, spec, 96);
    MSIZE(VixDiskLibConnectParams, spec, 24);
    OFF(VixDiskLibConnectParams, spec.vStorageObjSpec.id, 96);
    OFF(VixDiskLibConnectParams, spec.vStorageObjSpec.datastoreMoRef, 104);
    OFF(VixDiskLibConnectParams, spec.vStorageObjSpec.ssId, 112);
    OFF(VixDiskLibConnectParams, spec.dsSpec.datastoreMoRef, 96);
    OFF(VixDiskLibConnectParams, spec.dsSpec.diskFolder, 104);
    OFF(VixDiskLibConnectParams, specType, 120);
    MSIZE(VixDiskLibConnectParams, specType, 4);

    /* The nested tags are part of the C source API. */
    SIZE(union VixDiskLibCreds, 24);
    SIZE(struct VixDiskLibUidPasswdCreds, 16);
    OFF(struct VixDiskLibUidPasswdCreds, userName, 0);
    OFF(struct VixDiskLibUidPasswdCreds, password, 8);
    SIZE(struct VixDiskLibSessionIdCreds, 24);
    OFF(struct VixDiskLibSessionIdCreds, cookie, 0);
    OFF(struct VixDiskLibSessionIdCreds, userName, 8);
    OFF(struct VixDiskLibSessionIdCreds, key, 16);
    struct VixDiskLibTicketIdCreds *t = NULL;
    VixDiskLibConnectParams cp;
    cp.creds.ticketId = t;
    assert_null(cp.creds.ticketId);
    VixDiskLibConnectParamsState *st = NULL;
    cp.state = st;
    assert_null(cp.state);
}

static void test_info(void **state)
{
    (void)state;
    SIZE(VixDiskLibInfo, 64);
    EQ(alignof(VixDiskLibInfo), 8);
    OFF(VixDiskLibInfo, biosGeo, 0);
    OFF(VixDiskLibInfo, biosGeo.cylinders, 0);
    OFF(VixDiskLibInfo, biosGeo.heads, 4);
    OFF(VixDiskLibInfo, biosGeo.sectors, 8);
    OFF(VixDiskLibInfo, physGeo, 12);
    OFF(VixDiskLibInfo, physGeo.cylinders, 12);
    OFF(VixDiskLibInfo, physGeo.heads, 16);
    OFF(VixDiskLibInfo, physGeo.sectors, 20);
    OFF(VixDiskLibInfo, capacity, 24);
    MSIZE(VixDiskLibInfo, capacity, 8);
    OFF(VixDiskLibInfo, adapterType, 32);
    OFF(VixDiskLibInfo, numLinks, 36);
    IS_TYPE(((VixDiskLibInfo *)0)->numLinks, "int");
    OFF(VixDiskLibInfo, parentFileNameHint, 40);
    OFF(VixDiskLibInfo, uuid, 48);
    OFF(VixDiskLibInfo, logicalSectorSize, 56);
    OFF(VixDiskLibInfo, physicalSectorSize, 60);
    MSIZE(VixDiskLibInfo, logicalSectorSize, 4);
    MSIZE(VixDiskLibInfo, physicalSectorSize, 4);
}

static void test_blocks(void **state)
{
    (void)state;
    SIZE(VixDiskLibBlock, 16);
    OFF(VixDiskLibBlock, offset, 0);
    OFF(VixDiskLibBlock, length, 8);
    SIZE(VixDiskLibBlockList, 24);
    OFF(VixDiskLibBlockList, numBlocks, 0);
    MSIZE(VixDiskLibBlockList, numBlocks, 4);
    OFF(VixDiskLibBlockList, blocks, 8);
    SIZE(VixDiskLibHandle, 8);
    SIZE(VixDiskLibConnection, 8);
}

/* ---- enums and constants (reference section 3) ------------------------- */

static void test_enums(void **state)
{
    (void)state;
    SIZE(VixDiskLibDiskType, 4);
    EQ(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 1);
    EQ(VIXDISKLIB_DISK_MONOLITHIC_FLAT, 2);
    EQ(VIXDISKLIB_DISK_SPLIT_SPARSE, 3);
    EQ(VIXDISKLIB_DISK_SPLIT_FLAT, 4);
    EQ(VIXDISKLIB_DISK_VMFS_FLAT, 5);
    EQ(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 6);
    EQ(VIXDISKLIB_DISK_VMFS_THIN, 7);
    EQ(VIXDISKLIB_DISK_VMFS_SPARSE, 8);
    EQ(VIXDISKLIB_DISK_UNKNOWN, 256);

    SIZE(VixDiskLibAdapterType, 4);
    EQ(VIXDISKLIB_ADAPTER_IDE, 1);
    EQ(VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC, 2);
    EQ(VIXDISKLIB_ADAPTER_SCSI_LSILOGIC, 3);
    EQ(VIXDISKLIB_ADAPTER_UNKNOWN, 256);

    SIZE(VixDiskLibCredType, 4);
    EQ(VIXDISKLIB_CRED_UID, 1);
    EQ(VIXDISKLIB_CRED_SESSIONID, 2);
    EQ(VIXDISKLIB_CRED_TICKETID, 3);
    EQ(VIXDISKLIB_CRED_SSPI, 4);
    EQ(VIXDISKLIB_CRED_UNKNOWN, 256);

    /* 8.0.1 numbering: DATASTORE = 2, UNKNOWN last. */
    SIZE(VixDiskLibSpecType, 4);
    EQ(VIXDISKLIB_SPEC_VMX, 0);
    EQ(VIXDISKLIB_SPEC_VSTORAGE_OBJECT, 1);
    EQ(VIXDISKLIB_SPEC_DATASTORE, 2);
    assert_true(VIXDISKLIB_SPEC_UNKNOWN > VIXDISKLIB_SPEC_DATASTORE);
}

static void test_constants(void **state)
{
    (void)state;
    EQ(VIXDISKLIB_SECTOR_SIZE, 512);
    EQ(VIXDISKLIB_FLAG_OPEN_UNBUFFERED, 1);
    EQ(VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, 2);
    EQ(VIXDISKLIB_FLAG_OPEN_READ_ONLY, 4);
    EQ(VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB, 16);
    EQ(VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ, 32);
    EQ(VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ, 64);
    EQ(VIXDISKLIB_FLAG_OPEN_COMPRESSION_MASK, 0x03f0);
    EQ(VIXDISKLIB_MIN_CHUNK_SIZE, 128);
    EQ(VIXDISKLIB_MAX_CHUNK_SIZE, 131072);
    EQ(VIXDISKLIB_MAX_CHUNK_NUMBER, 524288);
    /* The macros must expand to parenthesised expressions: each of these
     * gives a different value if they do not. */
    EQ(256 / VIXDISKLIB_MIN_CHUNK_SIZE, 2);
    EQ(262144 / VIXDISKLIB_MAX_CHUNK_SIZE, 2);
    EQ(VIXDISKLIB_MAX_CHUNK_NUMBER % 1000, 288);
    EQ(~VIXDISKLIB_FLAG_OPEN_UNBUFFERED & 3, 2);
    EQ(VIXDISKLIB_FLAG_OPEN_SINGLE_LINK * 3, 6);
    EQ(VIXDISKLIB_FLAG_OPEN_READ_ONLY * 3, 12);
    EQ(VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ * 3, 192);

    EQ(VIXDISKLIB_HWVERSION_WORKSTATION_4, 3);
    EQ(VIXDISKLIB_HWVERSION_WORKSTATION_5, 4);
    EQ(VIXDISKLIB_HWVERSION_WORKSTATION_6, 6);
    EQ(VIXDISKLIB_HWVERSION_ESX30, 4);
    EQ(VIXDISKLIB_HWVERSION_ESX4X, 7);
    EQ(VIXDISKLIB_HWVERSION_ESX50, 8);
    EQ(VIXDISKLIB_HWVERSION_ESX51, 9);
    EQ(VIXDISKLIB_HWVERSION_ESX55, 10);
    EQ(VIXDISKLIB_HWVERSION_ESX60, 11);
    EQ(VIXDISKLIB_HWVERSION_ESX65, 13);
    EQ(VIXDISKLIB_HWVERSION_CURRENT, 13);
}

/* ---- error codes (reference section 2) ---------------------------------- */

struct code {
    const char *name;
    unsigned long value, expected;
};
#define CODE(name, n) { #name, (unsigned long)(name), (n) }

static const struct code codes[] = {
    CODE(VIX_OK, 0),
    CODE(VIX_E_FAIL, 1),
    CODE(VIX_E_OUT_OF_MEMORY, 2),
    CODE(VIX_E_INVALID_ARG, 3),
    CODE(VIX_E_FILE_NOT_FOUND, 4),
    CODE(VIX_E_OBJECT_IS_BUSY, 5),
    CODE(VIX_E_NOT_SUPPORTED, 6),
    CODE(VIX_E_FILE_ERROR, 7),
    CODE(VIX_E_DISK_FULL, 8),
    CODE(VIX_E_INCORRECT_FILE_TYPE, 9),
    CODE(VIX_E_CANCELLED, 10),
    CODE(VIX_E_FILE_READ_ONLY, 11),
    CODE(VIX_E_FILE_ALREADY_EXISTS, 12),
    CODE(VIX_E_FILE_ACCESS_ERROR, 13),
    CODE(VIX_E_REQUIRES_LARGE_FILES, 14),
    CODE(VIX_E_FILE_ALREADY_LOCKED, 15),
    CODE(VIX_E_VMDB, 16),
    CODE(VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, 20),
    CODE(VIX_E_FILE_TOO_BIG, 21),
    CODE(VIX_E_FILE_NAME_INVALID, 22),
    CODE(VIX_E_ALREADY_EXISTS, 23),
    CODE(VIX_E_BUFFER_TOOSMALL, 24),
    CODE(VIX_E_OBJECT_NOT_FOUND, 25),
    CODE(VIX_E_HOST_NOT_CONNECTED, 26),
    CODE(VIX_E_INVALID_UTF8_STRING, 27),
    CODE(VIX_E_UNFINISHED_JOB, 29),
    CODE(VIX_E_NEED_KEY, 30),
    CODE(VIX_E_OPERATION_ALREADY_IN_PROGRESS, 31),
    CODE(VIX_E_LICENSE, 32),
    CODE(VIX_E_VM_HOST_DISCONNECTED, 34),
    CODE(VIX_E_AUTHENTICATION_FAIL, 35),
    CODE(VIX_E_HOST_CONNECTION_LOST, 36),
    CODE(VIX_E_DUPLICATE_NAME, 41),
    CODE(VIX_E_ARGUMENT_TOO_BIG, 44),
    CODE(VIX_E_INVALID_HANDLE, 1000),
    CODE(VIX_E_NOT_SUPPORTED_ON_HANDLE_TYPE, 1001),
    CODE(VIX_E_TOO_MANY_HANDLES, 1002),
    CODE(VIX_E_NOT_FOUND, 2000),
    CODE(VIX_E_TYPE_MISMATCH, 2001),
    CODE(VIX_E_INVALID_XML, 2002),
    CODE(VIX_E_TIMEOUT_WAITING_FOR_TOOLS, 3000),
    CODE(VIX_E_UNRECOGNIZED_COMMAND, 3001),
    CODE(VIX_E_OP_NOT_SUPPORTED_ON_GUEST, 3003),
    CODE(VIX_E_PROGRAM_NOT_STARTED, 3004),
    CODE(VIX_E_CANNOT_START_READ_ONLY_VM, 3005),
    CODE(VIX_E_VM_NOT_RUNNING, 3006),
    CODE(VIX_E_VM_IS_RUNNING, 3007),
    CODE(VIX_E_CANNOT_CONNECT_TO_VM, 3008),
    CODE(VIX_E_POWEROP_SCRIPTS_NOT_AVAILABLE, 3009),
    CODE(VIX_E_NO_GUEST_OS_INSTALLED, 3010),
    CODE(VIX_E_VM_INSUFFICIENT_HOST_MEMORY, 3011),
    CODE(VIX_E_SUSPEND_ERROR, 3012),
    CODE(VIX_E_VM_NOT_ENOUGH_CPUS, 3013),
    CODE(VIX_E_HOST_USER_PERMISSIONS, 3014),
    CODE(VIX_E_GUEST_USER_PERMISSIONS, 3015),
    CODE(VIX_E_TOOLS_NOT_RUNNING, 3016),
    CODE(VIX_E_GUEST_OPERATIONS_PROHIBITED, 3017),
    CODE(VIX_E_ANON_GUEST_OPERATIONS_PROHIBITED, 3018),
    CODE(VIX_E_ROOT_GUEST_OPERATIONS_PROHIBITED, 3019),
    CODE(VIX_E_MISSING_ANON_GUEST_ACCOUNT, 3023),
    CODE(VIX_E_CANNOT_AUTHENTICATE_WITH_GUEST, 3024),
    CODE(VIX_E_UNRECOGNIZED_COMMAND_IN_GUEST, 3025),
    CODE(VIX_E_CONSOLE_GUEST_OPERATIONS_PROHIBITED, 3026),
    CODE(VIX_E_MUST_BE_CONSOLE_USER, 3027),
    CODE(VIX_E_VMX_MSG_DIALOG_AND_NO_UI, 3028),
    CODE(VIX_E_OPERATION_NOT_ALLOWED_FOR_LOGIN_TYPE, 3031),
    CODE(VIX_E_LOGIN_TYPE_NOT_SUPPORTED, 3032),
    CODE(VIX_E_EMPTY_PASSWORD_NOT_ALLOWED_IN_GUEST, 3033),
    CODE(VIX_E_INTERACTIVE_SESSION_NOT_PRESENT, 3034),
    CODE(VIX_E_INTERACTIVE_SESSION_USER_MISMATCH, 3035),
    CODE(VIX_E_CANNOT_POWER_ON_VM, 3041),
    CODE(VIX_E_NO_DISPLAY_SERVER, 3043),
    CODE(VIX_E_TOO_MANY_LOGONS, 3046),
    CODE(VIX_E_INVALID_AUTHENTICATION_SESSION, 3047),
    CODE(VIX_E_VM_NOT_FOUND, 4000),
    CODE(VIX_E_NOT_SUPPORTED_FOR_VM_VERSION, 4001),
    CODE(VIX_E_CANNOT_READ_VM_CONFIG, 4002),
    CODE(VIX_E_TEMPLATE_VM, 4003),
    CODE(VIX_E_VM_ALREADY_LOADED, 4004),
    CODE(VIX_E_VM_ALREADY_UP_TO_DATE, 4006),
    CODE(VIX_E_VM_UNSUPPORTED_GUEST, 4011),
    CODE(VIX_E_UNRECOGNIZED_PROPERTY, 6000),
    CODE(VIX_E_INVALID_PROPERTY_VALUE, 6001),
    CODE(VIX_E_READ_ONLY_PROPERTY, 6002),
    CODE(VIX_E_MISSING_REQUIRED_PROPERTY, 6003),
    CODE(VIX_E_INVALID_SERIALIZED_DATA, 6004),
    CODE(VIX_E_PROPERTY_TYPE_MISMATCH, 6005),
    CODE(VIX_E_BAD_VM_INDEX, 8000),
    CODE(VIX_E_INVALID_MESSAGE_HEADER, 10000),
    CODE(VIX_E_INVALID_MESSAGE_BODY, 10001),
    CODE(VIX_E_SNAPSHOT_INVAL, 13000),
    CODE(VIX_E_SNAPSHOT_DUMPER, 13001),
    CODE(VIX_E_SNAPSHOT_DISKLIB, 13002),
    CODE(VIX_E_SNAPSHOT_NOTFOUND, 13003),
    CODE(VIX_E_SNAPSHOT_EXISTS, 13004),
    CODE(VIX_E_SNAPSHOT_VERSION, 13005),
    CODE(VIX_E_SNAPSHOT_NOPERM, 13006),
    CODE(VIX_E_SNAPSHOT_CONFIG, 13007),
    CODE(VIX_E_SNAPSHOT_NOCHANGE, 13008),
    CODE(VIX_E_SNAPSHOT_CHECKPOINT, 13009),
    CODE(VIX_E_SNAPSHOT_LOCKED, 13010),
    CODE(VIX_E_SNAPSHOT_INCONSISTENT, 13011),
    CODE(VIX_E_SNAPSHOT_NAMETOOLONG, 13012),
    CODE(VIX_E_SNAPSHOT_VIXFILE, 13013),
    CODE(VIX_E_SNAPSHOT_DISKLOCKED, 13014),
    CODE(VIX_E_SNAPSHOT_DUPLICATEDDISK, 13015),
    CODE(VIX_E_SNAPSHOT_INDEPENDENTDISK, 13016),
    CODE(VIX_E_SNAPSHOT_NONUNIQUE_NAME, 13017),
    CODE(VIX_E_SNAPSHOT_MEMORY_ON_INDEPENDENT_DISK, 13018),
    CODE(VIX_E_SNAPSHOT_MAXSNAPSHOTS, 13019),
    CODE(VIX_E_SNAPSHOT_MIN_FREE_SPACE, 13020),
    CODE(VIX_E_SNAPSHOT_HIERARCHY_TOODEEP, 13021),
    CODE(VIX_E_SNAPSHOT_RRSUSPEND, 13022),
    CODE(VIX_E_SNAPSHOT_NOT_REVERTABLE, 13024),
    CODE(VIX_E_HOST_DISK_INVALID_VALUE, 14003),
    CODE(VIX_E_HOST_DISK_SECTORSIZE, 14004),
    CODE(VIX_E_HOST_FILE_ERROR_EOF, 14005),
    CODE(VIX_E_HOST_NETBLKDEV_HANDSHAKE, 14006),
    CODE(VIX_E_HOST_SOCKET_CREATION_ERROR, 14007),
    CODE(VIX_E_HOST_SERVER_NOT_FOUND, 14008),
    CODE(VIX_E_HOST_NETWORK_CONN_REFUSED, 14009),
    CODE(VIX_E_HOST_TCP_SOCKET_ERROR, 14010),
    CODE(VIX_E_HOST_TCP_CONN_LOST, 14011),
    CODE(VIX_E_HOST_NBD_HASHFILE_VOLUME, 14012),
    CODE(VIX_E_HOST_NBD_HASHFILE_INIT, 14013),
    CODE(VIX_E_HOST_SERVER_SHUTDOWN, 14014),
    CODE(VIX_E_HOST_SERVER_NOT_AVAILABLE, 14015),
    CODE(VIX_E_DISK_INVAL, 16000),
    CODE(VIX_E_DISK_NOINIT, 16001),
    CODE(VIX_E_DISK_NOIO, 16002),
    CODE(VIX_E_DISK_PARTIALCHAIN, 16003),
    CODE(VIX_E_DISK_NEEDSREPAIR, 16006),
    CODE(VIX_E_DISK_OUTOFRANGE, 16007),
    CODE(VIX_E_DISK_CID_MISMATCH, 16008),
    CODE(VIX_E_DISK_CANTSHRINK, 16009),
    CODE(VIX_E_DISK_PARTMISMATCH, 16010),
    CODE(VIX_E_DISK_UNSUPPORTEDDISKVERSION, 16011),
    CODE(VIX_E_DISK_OPENPARENT, 16012),
    CODE(VIX_E_DISK_NOTSUPPORTED, 16013),
    CODE(VIX_E_DISK_NEEDKEY, 16014),
    CODE(VIX_E_DISK_NOKEYOVERRIDE, 16015),
    CODE(VIX_E_DISK_NOTENCRYPTED, 16016),
    CODE(VIX_E_DISK_NOKEY, 16017),
    CODE(VIX_E_DISK_INVALIDPARTITIONTABLE, 16018),
    CODE(VIX_E_DISK_NOTNORMAL, 16019),
    CODE(VIX_E_DISK_NOTENCDESC, 16020),
    CODE(VIX_E_DISK_NEEDVMFS, 16022),
    CODE(VIX_E_DISK_RAWTOOBIG, 16024),
    CODE(VIX_E_DISK_TOOMANYOPENFILES, 16027),
    CODE(VIX_E_DISK_TOOMANYREDO, 16028),
    CODE(VIX_E_DISK_RAWTOOSMALL, 16029),
    CODE(VIX_E_DISK_INVALIDCHAIN, 16030),
    CODE(VIX_E_DISK_KEY_NOTFOUND, 16052),
    CODE(VIX_E_DISK_SUBSYSTEM_INIT_FAIL, 16053),
    CODE(VIX_E_DISK_INVALID_CONNECTION, 16054),
    CODE(VIX_E_DISK_ENCODING, 16061),
    CODE(VIX_E_DISK_CANTREPAIR, 16062),
    CODE(VIX_E_DISK_INVALIDDISK, 16063),
    CODE(VIX_E_DISK_NOLICENSE, 16064),
    CODE(VIX_E_DISK_NODEVICE, 16065),
    CODE(VIX_E_DISK_UNSUPPORTEDDEVICE, 16066),
    CODE(VIX_E_DISK_CAPACITY_MISMATCH, 16067),
    CODE(VIX_E_DISK_PARENT_NOTALLOWED, 16068),
    CODE(VIX_E_DISK_ATTACH_ROOTLINK, 16069),
    CODE(VIX_E_CRYPTO_UNKNOWN_ALGORITHM, 17000),
    CODE(VIX_E_CRYPTO_BAD_BUFFER_SIZE, 17001),
    CODE(VIX_E_CRYPTO_INVALID_OPERATION, 17002),
    CODE(VIX_E_CRYPTO_RANDOM_DEVICE, 17003),
    CODE(VIX_E_CRYPTO_NEED_PASSWORD, 17004),
    CODE(VIX_E_CRYPTO_BAD_PASSWORD, 17005),
    CODE(VIX_E_CRYPTO_NOT_IN_DICTIONARY, 17006),
    CODE(VIX_E_CRYPTO_NO_CRYPTO, 17007),
    CODE(VIX_E_CRYPTO_ERROR, 17008),
    CODE(VIX_E_CRYPTO_BAD_FORMAT, 17009),
    CODE(VIX_E_CRYPTO_LOCKED, 17010),
    CODE(VIX_E_CRYPTO_EMPTY, 17011),
    CODE(VIX_E_CRYPTO_KEYSAFE_LOCATOR, 17012),
    CODE(VIX_E_CANNOT_CONNECT_TO_HOST, 18000),
    CODE(VIX_E_NOT_FOR_REMOTE_HOST, 18001),
    CODE(VIX_E_INVALID_HOSTNAME_SPECIFICATION, 18002),
    CODE(VIX_E_SCREEN_CAPTURE_ERROR, 19000),
    CODE(VIX_E_SCREEN_CAPTURE_BAD_FORMAT, 19001),
    CODE(VIX_E_SCREEN_CAPTURE_COMPRESSION_FAIL, 19002),
    CODE(VIX_E_SCREEN_CAPTURE_LARGE_DATA, 19003),
    CODE(VIX_E_GUEST_VOLUMES_NOT_FROZEN, 20000),
    CODE(VIX_E_NOT_A_FILE, 20001),
    CODE(VIX_E_NOT_A_DIRECTORY, 20002),
    CODE(VIX_E_NO_SUCH_PROCESS, 20003),
    CODE(VIX_E_FILE_NAME_TOO_LONG, 20004),
    CODE(VIX_E_OPERATION_DISABLED, 20005),
    CODE(VIX_E_TOOLS_INSTALL_NO_IMAGE, 21000),
    CODE(VIX_E_TOOLS_INSTALL_IMAGE_INACCESIBLE, 21001),
    CODE(VIX_E_TOOLS_INSTALL_NO_DEVICE, 21002),
    CODE(VIX_E_TOOLS_INSTALL_DEVICE_NOT_CONNECTED, 21003),
    CODE(VIX_E_TOOLS_INSTALL_CANCELLED, 21004),
    CODE(VIX_E_TOOLS_INSTALL_INIT_FAILED, 21005),
    CODE(VIX_E_TOOLS_INSTALL_AUTO_NOT_SUPPORTED, 21006),
    CODE(VIX_E_TOOLS_INSTALL_GUEST_NOT_READY, 21007),
    CODE(VIX_E_TOOLS_INSTALL_SIG_CHECK_FAILED, 21008),
    CODE(VIX_E_TOOLS_INSTALL_ERROR, 21009),
    CODE(VIX_E_TOOLS_INSTALL_ALREADY_UP_TO_DATE, 21010),
    CODE(VIX_E_TOOLS_INSTALL_IN_PROGRESS, 21011),
    CODE(VIX_E_TOOLS_INSTALL_IMAGE_COPY_FAILED, 21012),
    CODE(VIX_E_WRAPPER_WORKSTATION_NOT_INSTALLED, 22001),
    CODE(VIX_E_WRAPPER_VERSION_NOT_FOUND, 22002),
    CODE(VIX_E_WRAPPER_SERVICEPROVIDER_NOT_FOUND, 22003),
    CODE(VIX_E_WRAPPER_PLAYER_NOT_INSTALLED, 22004),
    CODE(VIX_E_WRAPPER_RUNTIME_NOT_INSTALLED, 22005),
    CODE(VIX_E_WRAPPER_MULTIPLE_SERVICEPROVIDERS, 22006),
    CODE(VIX_E_MNTAPI_MOUNTPT_NOT_FOUND, 24000),
    CODE(VIX_E_MNTAPI_MOUNTPT_IN_USE, 24001),
    CODE(VIX_E_MNTAPI_DISK_NOT_FOUND, 24002),
    CODE(VIX_E_MNTAPI_DISK_NOT_MOUNTED, 24003),
    CODE(VIX_E_MNTAPI_DISK_IS_MOUNTED, 24004),
    CODE(VIX_E_MNTAPI_DISK_NOT_SAFE, 24005),
    CODE(VIX_E_MNTAPI_DISK_CANT_OPEN, 24006),
    CODE(VIX_E_MNTAPI_CANT_READ_PARTS, 24007),
    CODE(VIX_E_MNTAPI_UMOUNT_APP_NOT_FOUND, 24008),
    CODE(VIX_E_MNTAPI_UMOUNT, 24009),
    CODE(VIX_E_MNTAPI_NO_MOUNTABLE_PARTITONS, 24010),
    CODE(VIX_E_MNTAPI_PARTITION_RANGE, 24011),
    CODE(VIX_E_MNTAPI_PERM, 24012),
    CODE(VIX_E_MNTAPI_DICT, 24013),
    CODE(VIX_E_MNTAPI_DICT_LOCKED, 24014),
    CODE(VIX_E_MNTAPI_OPEN_HANDLES, 24015),
    CODE(VIX_E_MNTAPI_CANT_MAKE_VAR_DIR, 24016),
    CODE(VIX_E_MNTAPI_NO_ROOT, 24017),
    CODE(VIX_E_MNTAPI_LOOP_FAILED, 24018),
    CODE(VIX_E_MNTAPI_DAEMON, 24019),
    CODE(VIX_E_MNTAPI_INTERNAL, 24020),
    CODE(VIX_E_MNTAPI_SYSTEM, 24021),
    CODE(VIX_E_MNTAPI_NO_CONNECTION_DETAILS, 24022),
    CODE(VIX_E_MNTAPI_INCOMPATIBLE_VERSION, 24300),
    CODE(VIX_E_MNTAPI_OS_ERROR, 24301),
    CODE(VIX_E_MNTAPI_DRIVE_LETTER_IN_USE, 24302),
    CODE(VIX_E_MNTAPI_DRIVE_LETTER_ALREADY_ASSIGNED, 24303),
    CODE(VIX_E_MNTAPI_VOLUME_NOT_MOUNTED, 24304),
    CODE(VIX_E_MNTAPI_VOLUME_ALREADY_MOUNTED, 24305),
    CODE(VIX_E_MNTAPI_FORMAT_FAILURE, 24306),
    CODE(VIX_E_MNTAPI_NO_DRIVER, 24307),
    CODE(VIX_E_MNTAPI_ALREADY_OPENED, 24308),
    CODE(VIX_E_MNTAPI_ITEM_NOT_FOUND, 24309),
    CODE(VIX_E_MNTAPI_UNSUPPROTED_BOOT_LOADER, 24310),
    CODE(VIX_E_MNTAPI_UNSUPPROTED_OS, 24311),
    CODE(VIX_E_MNTAPI_CODECONVERSION, 24312),
    CODE(VIX_E_MNTAPI_REGWRITE_ERROR, 24313),
    CODE(VIX_E_MNTAPI_UNSUPPORTED_FT_VOLUME, 24314),
    CODE(VIX_E_MNTAPI_PARTITION_NOT_FOUND, 24315),
    CODE(VIX_E_MNTAPI_PUTFILE_ERROR, 24316),
    CODE(VIX_E_MNTAPI_GETFILE_ERROR, 24317),
    CODE(VIX_E_MNTAPI_REG_NOT_OPENED, 24318),
    CODE(VIX_E_MNTAPI_REGDELKEY_ERROR, 24319),
    CODE(VIX_E_MNTAPI_CREATE_PARTITIONTABLE_ERROR, 24320),
    CODE(VIX_E_MNTAPI_OPEN_FAILURE, 24321),
    CODE(VIX_E_MNTAPI_VOLUME_NOT_WRITABLE, 24322),
    CODE(VIX_ASYNC, 25000),
    CODE(VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, 26000),
    CODE(VIX_E_NET_HTTP_UNSUPPORTED_PROTOCOL, 30001),
    CODE(VIX_E_NET_HTTP_URL_MALFORMAT, 30003),
    CODE(VIX_E_NET_HTTP_COULDNT_RESOLVE_PROXY, 30005),
    CODE(VIX_E_NET_HTTP_COULDNT_RESOLVE_HOST, 30006),
    CODE(VIX_E_NET_HTTP_COULDNT_CONNECT, 30007),
    CODE(VIX_E_NET_HTTP_HTTP_RETURNED_ERROR, 30022),
    CODE(VIX_E_NET_HTTP_OPERATION_TIMEDOUT, 30028),
    CODE(VIX_E_NET_HTTP_SSL_CONNECT_ERROR, 30035),
    CODE(VIX_E_NET_HTTP_TOO_MANY_REDIRECTS, 30047),
    CODE(VIX_E_NET_HTTP_TRANSFER, 30200),
    CODE(VIX_E_NET_HTTP_SSL_SECURITY, 30201),
    CODE(VIX_E_NET_HTTP_GENERIC, 30202),
};

static void test_error_codes(void **state)
{
    (void)state;
    size_t n = sizeof codes / sizeof codes[0];
    assert_int_equal(n, 269);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (codes[i].value != codes[i].expected) {
            fprintf(stderr, "%s is %lu, expected %lu\n", codes[i].name, codes[i].value,
                    codes[i].expected);
            bad++;
        }
    }
    assert_int_equal(bad, 0);

    /* The ones every consumer compares against, spelled out. */
    EQ(VIX_OK, 0);
    EQ(VIX_E_FAIL, 1);
    EQ(VIX_E_INVALID_ARG, 3);
    EQ(VIX_E_FILE_NOT_FOUND, 4);
    EQ(VIX_E_CANCELLED, 10);
    EQ(VIX_E_FILE_ALREADY_LOCKED, 15);
    EQ(VIX_E_BUFFER_TOOSMALL, 24);
    EQ(VIX_E_INVALID_HANDLE, 1000);
    EQ(VIX_E_DISK_NOINIT, 16001);
    EQ(VIX_E_DISK_OUTOFRANGE, 16007);
    EQ(VIX_E_DISK_KEY_NOTFOUND, 16052);
    EQ(VIX_ASYNC, 25000);
    EQ(VIX_E_ASYNC_MIXEDMODE_UNSUPPORTED, 26000);
    EQ(VIX_E_NET_HTTP_GENERIC, 30202);
}

static void test_error_macros(void **state)
{
    (void)state;
    VixError e = ((VixError)0xABCD1234u << 16) | VIX_E_DISK_OUTOFRANGE;
    EQ(VIX_ERROR_CODE(e), VIX_E_DISK_OUTOFRANGE);
    EQ(VIX_ERROR_CODE(VIX_OK), 0);
    assert_true(VIX_SUCCEEDED(VIX_OK));
    assert_false(VIX_SUCCEEDED(VIX_E_FAIL));
    assert_false(VIX_SUCCEEDED(e));
    assert_true(VIX_FAILED(e));
    assert_false(VIX_FAILED(VIX_OK));
    /* VIX_ASYNC is a success status for the async calls but is not VIX_OK. */
    assert_true(VIX_FAILED(VIX_ASYNC));
    /* Macro arguments are parenthesised: an expression argument works. */
    EQ(VIX_ERROR_CODE(e | 0x1), (VIX_E_DISK_OUTOFRANGE | 0x1) & 0xFFFF);
    assert_true(VIX_FAILED(0 ? VIX_OK : VIX_E_FAIL));
    /* ... and the result is a parenthesised expression ("if VIX_FAILED(e)"
     * without parentheses of its own is compiled by header_check.c). */
    assert_int_equal(2 * VIX_FAILED(VIX_E_FAIL), 2);
    assert_int_equal(2 * VIX_SUCCEEDED(VIX_OK), 2);
    assert_int_equal(2 * VIX_ERROR_CODE(VIX_E_FAIL), 2);
}

/* ---- callback types -------------------------------------------------------- */

static int log_calls;
static void my_log(const char *fmt, va_list ap)
{
    char b[32];
    vsnprintf(b, sizeof b, fmt, ap);
    if (strcmp(b, "x=7") == 0)
        log_calls++;
}
static void call_log(VixDiskLibGenericLogFunc *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f(fmt, ap);
    va_end(ap);
}
static void my_logv(int routing, const char *fmt, va_list ap)
{
    (void)routing; (void)fmt; (void)ap;
}
static Bool my_progress(void *data, int pct)
{
    *(int *)data = pct;
    return TRUE;
}
static void my_done(void *data, VixError result)
{
    *(VixError *)data = result;
}

static void test_callback_types(void **state)
{
    (void)state;
    VixDiskLibGenericLogFunc *lf = my_log;
    call_log(lf, "x=%d", 7);
    assert_int_equal(log_calls, 1);
    VixDiskLibGenericLogVFunc *lvf = my_logv;
    assert_non_null(lvf);
    VixDiskLibProgressFunc pf = my_progress;
    int pct = 0;
    assert_int_equal(pf(&pct, 42), TRUE);
    assert_int_equal(pct, 42);
    VixDiskLibCompletionCB cb = my_done;
    VixError r = VIX_E_FAIL;
    cb(&r, VIX_OK);
    assert_true(r == VIX_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_types),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_create_params),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_connect_params),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_error_codes),
        cmocka_unit_test(test_error_macros),
        cmocka_unit_test(test_callback_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
