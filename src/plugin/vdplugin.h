/* vdplugin.h - NAS offload plugins inside the library: loading, datastores
 * and sessions, and the primitives as the rest of the library uses them.
 *
 * Plugins are loaded at the first VixDiskLib_InitEx and unloaded at the
 * last VixDiskLib_Exit (vdplugin_load / vdplugin_unload, called by init.c).
 * Every other function may be called at any time from any thread: with no
 * plugin loaded, or none serving the file's datastore, or the primitive not
 * supported there, it returns -VD_E_UNSUPPORTED and the caller does the
 * work itself.  Other negative vd_err codes are real failures (the detail
 * is in vd_err_msg()); VD_E_CANCELLED means the progress callback asked to
 * stop.  See docs/plugins.md. */
#ifndef VD_PLUGIN_VDPLUGIN_H
#define VD_PLUGIN_VDPLUGIN_H

#include <stdint.h>

#include "vixDiskLibNasPlugin.h"
#include "../ops/ops.h"

/* ---- lifetime (init.c) ---- */

/* Load the plugins of <lib_dir>/lib64/plugins (or <lib_dir>/plugins when
 * lib_dir is the lib64 directory; the directory of libvixDiskLib itself
 * when lib_dir is NULL) and of the directory named by the config key
 * openvddk.plugin.dir.  Failures are logged and skipped. */
void vdplugin_load(const char *lib_dir);
/* End every session, call every plugin's Done, close the libraries. */
void vdplugin_unload(void);
/* Number of NAS plugins loaded and initialised. */
int vdplugin_count(void);

/* ---- primitives ---- */

/* flags: VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED, _LAZY, _SKIPZEROES,
 * and _DRYRUN to only ask whether the clone would be offloaded.  A LAZY
 * clone the datastore cannot do is asked for again as a full clone.
 * progress gets 0..100 for this file and may return 0 to cancel. */
int vdplugin_clone_file(const char *src, const char *dst, unsigned flags,
                        ops_progress_fn progress, void *data);

/* DRYRUN of vdplugin_clone_file: 0 when the plugin would clone src to dst,
 * with *granted the flags it would be done with (without LAZY when only a
 * full clone is possible there). */
int vdplugin_clone_probe(const char *src, const char *dst, unsigned flags, unsigned *granted);

/* The CLONEFILE flags for extents of a new disk of type t: LAZY unless
 * the type is vmfs (thick, cloned in full) or the config key
 * openvddk.plugin.lazyClone says "always" / "never"; SKIPZEROES for
 * vmfsThin. */
unsigned vdplugin_clone_flags_for(enum vmdk_type t);

/* Reserve the space of file (made bytes long first if it is shorter)
 * without writing data; the file keeps its content and reads as before. */
int vdplugin_reserve_space(const char *file, uint64_t bytes);

struct vdplugin_stat {
    uint64_t total;      /* logical size */
    uint64_t allocated;  /* storage used */
    uint64_t unique;     /* storage not shared with another file */
    int alloc_type;      /* VixDiskLibNasPluginAllocType */
    char plugin[64];     /* name of the plugin that answered */
};
int vdplugin_statx(const char *file, struct vdplugin_stat *out);

/* While set (per thread), vdplugin_reserve_space succeeds without doing
 * anything: used while creating files whose content a clone is about to
 * replace, so their space is not reserved only to be released again. */
void vdplugin_defer_reserve(int on);

/* Library log lines and warnings: vd_log / vd_warn (util/log.h), which
 * InitEx sends to the VixDiskLib log / warn callbacks. */
void vdplugin_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vdplugin_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- datastores (mountinfo.c; exposed for tests) ---- */

struct vdplugin_mount {
    unsigned id;          /* mount id */
    char *mount_point;    /* unescaped */
    char *fstype;         /* "xfs", "nfs4" */
    char *source;         /* "/dev/loop0", "server:/export" */
    char *super_opts;     /* "rw,vers=4.2,addr=10.0.0.1" */
};
void vdplugin_mount_free(struct vdplugin_mount *m);
/* Parse one line of /proc/self/mountinfo. */
int vdplugin_mount_parse(const char *line, struct vdplugin_mount *m);
/* The mount holding the absolute, resolved path in mountinfo text (the
 * longest mount point that is a prefix of path; the later of equals). */
int vdplugin_mount_find(const char *mountinfo, const char *path, struct vdplugin_mount *m);
/* The datastore parameters a plugin is given for a mount: fsType "NFS" /
 * "NFS41" with remoteIP and remoteMountPoint for NFS, else the Linux type
 * name.  Strings are malloc'd; free with vdplugin_ds_params_free. */
int vdplugin_ds_params(const struct vdplugin_mount *m, VixDiskLibNasPluginDataStoreParams *p);
void vdplugin_ds_params_free(VixDiskLibNasPluginDataStoreParams *p);

#endif
