/*
 * header_check.c - compiled (not run) by tests/abi/test_headers.sh as C99,
 * C11, C17 and C++11/17 with -pedantic -Wall -Wextra -Werror: the plugin
 * headers are self-contained, idempotent, warning-free, keep VMware's
 * values and LP64 layouts in every language mode, and a plugin can be
 * written against them.
 */
#include "vixDiskLibNasPlugin.h"
#include "vixDiskLibNasPlugin.h"
#include "vixDiskLibPlugin.h"

#ifdef __cplusplus
#define CHECK(name, cond) static_assert(cond, #name)
#define PRIVATE_FIELD privateData
#else
#define CHECK(name, cond) typedef char check_##name[(cond) ? 1 : -1]
#define PRIVATE_FIELD private
#endif

/* Versions and enumerations. */
CHECK(plugin_major, VIXDISKLIB_PLUGIN_MAJOR_VERSION == 1);
CHECK(plugin_minor, VIXDISKLIB_PLUGIN_MINOR_VERSION == 0);
CHECK(nas_major, VIXDISKLIB_NASPLUGIN_MAJOR_VERSION == 1);
CHECK(nas_minor, VIXDISKLIB_NASPLUGIN_MINOR_VERSION == 2);
CHECK(type_transport, VIXDISKLIB_PLUGIN_TYPE_TRANSPORT == 0);
CHECK(type_nas, VIXDISKLIB_PLUGIN_TYPE_NAS == 1);
CHECK(type_no_unload, VIXDISKLIB_PLUGIN_TYPE_TRANSPORT_NO_UNLOAD == 2);
CHECK(prim_invalid, VIXDISKLIB_NASPLUGIN_PRIM_INVALID == 0x4E415330);
CHECK(prim_clone, VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE == 0x4E415331);
CHECK(prim_resv, VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE == 0x4E415332);
CHECK(prim_statx, VIXDISKLIB_NASPLUGIN_PRIM_STATX == 0x4E415333);
CHECK(flag_guarded, VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED == 1);
CHECK(flag_lazy, VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY == 2);
CHECK(flag_srcds, VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SRCDATASTORE_VALID == 4);
CHECK(flag_dryrun, VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN == 8);
CHECK(flag_skipzeroes, VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES == 16);
CHECK(alloc_ezt, VIXDISKLIB_NASPLUGIN_FILE_ALLOC_EZT == 0);
CHECK(alloc_lzt, VIXDISKLIB_NASPLUGIN_FILE_ALLOC_LZT == 1);
CHECK(alloc_thin, VIXDISKLIB_NASPLUGIN_FILE_ALLOC_THIN == 2);
CHECK(alloc_unknown, VIXDISKLIB_NASPLUGIN_FILE_ALLOC_UNKNOWN == -1);
CHECK(invalid_session, VIXDISKLIB_NASPLUGIN_INVALID_SESSION_ID == 0);
CHECK(session_size, sizeof(VixDiskLibNasPluginSessionID) == 8);

/* Layouts (Linux x86_64 / LP64). */
CHECK(plugin_size, sizeof(VixDiskLibPlugin) == 40);
CHECK(plugin_type, offsetof(VixDiskLibPlugin, type) == 8);
CHECK(plugin_name, offsetof(VixDiskLibPlugin, name) == 16);
CHECK(plugin_init, offsetof(VixDiskLibPlugin, Init) == 24);
CHECK(plugin_done, offsetof(VixDiskLibPlugin, Done) == 32);
CHECK(ds_size, sizeof(VixDiskLibNasPluginDataStoreParams) == 40);
CHECK(ds_version, offsetof(VixDiskLibNasPluginDataStoreParams, fsVersion) == 8);
CHECK(ds_ip, offsetof(VixDiskLibNasPluginDataStoreParams, remoteIP) == 16);
CHECK(ds_rmp, offsetof(VixDiskLibNasPluginDataStoreParams, remoteMountPoint) == 24);
CHECK(ds_lmp, offsetof(VixDiskLibNasPluginDataStoreParams, localMountPoint) == 32);
CHECK(sp_size, sizeof(VixDiskLibNasPluginSessionParams) == 8);
CHECK(pr_size, sizeof(VixDiskLibNasPluginProgressRecord) == 32);
CHECK(pr_update, offsetof(VixDiskLibNasPluginProgressRecord, updateBytes) == 8);
CHECK(pr_progress, offsetof(VixDiskLibNasPluginProgressRecord, progressBytes) == 16);
CHECK(pr_callback, offsetof(VixDiskLibNasPluginProgressRecord, callback) == 24);
CHECK(res_size, sizeof(VixDiskLibNasPluginResultCommon) == 8);
CHECK(statx_size, sizeof(VixDiskLibNasPluginStatXResult) == 40);
CHECK(statx_total, offsetof(VixDiskLibNasPluginStatXResult, totalBytes) == 8);
CHECK(statx_alloc, offsetof(VixDiskLibNasPluginStatXResult, allocedBytes) == 16);
CHECK(statx_unique, offsetof(VixDiskLibNasPluginStatXResult, uniqueBytes) == 24);
CHECK(statx_type, offsetof(VixDiskLibNasPluginStatXResult, allocType) == 32);
CHECK(common_size, sizeof(VixDiskLibNasPluginCommonParams) == 24);
CHECK(common_rec, offsetof(VixDiskLibNasPluginCommonParams, progressRecord) == 8);
CHECK(common_res, offsetof(VixDiskLibNasPluginCommonParams, result) == 16);
CHECK(clone_size, sizeof(VixDiskLibNasPluginCloneFileParams) == 56);
CHECK(clone_src, offsetof(VixDiskLibNasPluginCloneFileParams, srcFileName) == 24);
CHECK(clone_dst, offsetof(VixDiskLibNasPluginCloneFileParams, dstFileName) == 32);
CHECK(clone_flags, offsetof(VixDiskLibNasPluginCloneFileParams, cloneFlags) == 40);
CHECK(clone_srcds, offsetof(VixDiskLibNasPluginCloneFileParams, srcDataStoreInfo) == 48);
CHECK(resv_size, sizeof(VixDiskLibNasPluginResvSpaceParams) == 32);
CHECK(resv_file, offsetof(VixDiskLibNasPluginResvSpaceParams, fileName) == 24);
CHECK(statxp_size, sizeof(VixDiskLibNasPluginStatXParams) == 32);
CHECK(statxp_file, offsetof(VixDiskLibNasPluginStatXParams, fileName) == 24);
CHECK(nas_size, sizeof(VixDiskLibNasPlugin) == 72);
CHECK(nas_start, offsetof(VixDiskLibNasPlugin, StartSession) == 40);
CHECK(nas_end, offsetof(VixDiskLibNasPlugin, EndSession) == 48);
CHECK(nas_exec, offsetof(VixDiskLibNasPlugin, ExecPrimitive) == 56);
CHECK(nas_support, offsetof(VixDiskLibNasPlugin, SupportStatus) == 64);
CHECK(pr_private, offsetof(VixDiskLibNasPluginProgressRecord, PRIVATE_FIELD) == 0);

/* A minimal plugin written against the headers. */
static VixError check_init(VixDiskLibGenericLogFunc *log, VixDiskLibGenericLogFunc *warn,
                           VixDiskLibGenericLogFunc *panic)
{
    (void)log;
    (void)warn;
    (void)panic;
    return VIX_OK;
}

static void check_done(void)
{
}

static VixError check_start(const VixDiskLibNasPluginDataStoreParams *ds,
                            const VixDiskLibNasPluginSessionParams *sp,
                            VixDiskLibNasPluginSessionID *id)
{
    (void)ds;
    (void)sp;
    *id = 1;
    return VIX_OK;
}

static VixError check_end(VixDiskLibNasPluginSessionID id)
{
    (void)id;
    return VIX_OK;
}

static void check_exec(VixDiskLibNasPluginSessionID id, const VixDiskLibNasPluginCommonParams *p)
{
    (void)id;
    VixDiskLibNasPluginProgressRecord *r = p->progressRecord;
    if (r && r->callback) {
        r->progressBytes = r->updateBytes;
        if (!r->callback(r)) {
            p->result->status = VIX_E_CANCELLED;
            return;
        }
    }
    p->result->status = VIX_OK;
}

static VixError check_support(VixDiskLibNasPluginSessionID id,
                              const VixDiskLibNasPluginPrimitiveID prim)
{
    (void)id;
    return prim == VIXDISKLIB_NASPLUGIN_PRIM_STATX ? VIX_OK : VIX_E_NOT_SUPPORTED;
}

static VixDiskLibNasPlugin check_plugin = {
    { VIXDISKLIB_NASPLUGIN_MAJOR_VERSION, VIXDISKLIB_NASPLUGIN_MINOR_VERSION,
      VIXDISKLIB_PLUGIN_TYPE_NAS, "check", check_init, check_done },
    check_start, check_end, check_exec, check_support,
};

static VixDiskLibPlugin *check_list[] = { &check_plugin.diskLibPlugin, NULL };

VixDiskLibPlugin **VixDiskLibPlugin_EntryPoint = check_list;
