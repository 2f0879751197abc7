/* ops.h - whole-disk operations on top of the engine and vdisk objects.
 * All return 0 or a negative vd_err code with the detail in vd_err_msg(). */
#ifndef VD_OPS_H
#define VD_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "../util/vdisk.h"
#include "../vmdk/vmdk.h"

/* Progress: called with increasing percentages 0..100; return 0 to cancel. */
typedef int (*ops_progress_fn)(void *data, int percent);

/* Delete every file of the link at path (children are not touched). */
int ops_unlink(const char *path);
/* Rename the disk at src (descriptor and its extent files) to dst. */
int ops_rename(const char *src, const char *dst);
/* Copy the content of src into a new disk at dst created with p (its
 * capacity is taken from src).  overwrite: replace an existing dst. */
int ops_clone(struct vdisk *src, const char *dst, const struct vmdk_create_params *p,
              ops_progress_fn progress, void *data, int overwrite);
/* The copy loop of ops_clone: read src's data runs and write into dst
 * (same or larger capacity) the 64 KiB units of them that are not all
 * zeros; everything else of dst is left as it is (a new disk: holes).
 * No flush. */
int ops_copy_data(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data);
/* Copy src into a raw image at dst (clone_raw.c): a new regular file built
 * under a temporary name, sparse (holes where src reads zeros) or, with
 * preallocate, fully allocated; or, when dst is an existing block device,
 * written in place (it must be at least src's size; the rest of it is not
 * touched).  An existing dst (block device included) needs overwrite. */
int ops_clone_raw(struct vdisk *src, const char *dst, int preallocate,
                  ops_progress_fn progress, void *data, int overwrite);
/* Temporaries of ops_clone (clone.c), also used by the one-pass writer:
 * a hidden unique name for a disk being built for dst in dst's directory
 * (malloc'd, NULL without memory); removal of such leftovers of killed
 * runs that nobody holds (best effort); and placing a finished one-file
 * disk: link tmp at dst (which must not exist), remove tmp, sync the
 * directory (on failure dst is removed again). */
char *ops_temp_name(const char *dst);
void ops_sweep_temps(const char *dst);
int ops_link_temp(const char *tmp, const char *dst);

/* A new streamOptimized disk written in one pass from data the caller
 * pushes in increasing offsets (stream_out.c; vddk/disk.h
 * vddk_disk_stream_*).  p->type must be VMDK_TYPE_STREAM_OPTIMIZED. */
struct ops_stream;
int ops_stream_create(const char *path, const struct vmdk_create_params *p,
                      struct ops_stream **out);
int ops_stream_write(struct ops_stream *s, uint64_t off, const void *buf, size_t len);
/* commit: finish, sync and link at the path; else (or after an error)
 * remove everything.  Always frees s. */
int ops_stream_close(struct ops_stream *s, int commit);

/* Copy the content of src over dst, an existing disk of the same capacity
 * (runs without data become zeros in dst); flushes dst. */
int ops_copy_into(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data);
/* The same over a dst at least as large as src: [0, src capacity) of dst
 * becomes src's content, the rest of dst is not touched. */
int ops_copy_over(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data);
/* The NAS plugin fast path of ops_clone (clone_plugin.c): clone the extent
 * files of a single-link flat src through a plugin into a new flat disk
 * dst.  -VD_E_UNSUPPORTED (nothing changed, reason logged) when it does not
 * apply or the plugin failed: the caller then copies by itself.  src_path
 * may be NULL (taken from src).  Other errors (VD_E_CANCELLED) are final. */
int ops_clone_via_plugin(struct vdisk *src, const char *src_path, const char *dst,
                         const struct vmdk_create_params *p, ops_progress_fn progress,
                         void *data, int overwrite);

/* NAS plugin figures (clone_plugin.c).  -VD_E_UNSUPPORTED when no plugin
 * answers.  ops_plugin_link_stat: STATX of the files of link `link` of
 * eng, summed (all must be answered by one plugin).
 * ops_plugin_clone_space: when a clone of d to type (a flat VMDK type)
 * next to d would be done by the plugin, the new bytes the copy's extent
 * files would take on the datastore (shared blocks of a lazy clone take
 * none); the reason is logged either way. */
struct vdplugin_stat;
int ops_plugin_link_stat(vmdk_disk *eng, int link, struct vdplugin_stat *sum);
int ops_plugin_clone_space(struct vdisk *d, int type, uint64_t *bytes);

/* Disk maintenance (ops/maint.c, ops/space.c; docs/maintenance.md). */
/* Enlarge the disk at path (not open) to capacity bytes. */
int ops_grow(const char *path, uint64_t capacity, int update_geometry,
             ops_progress_fn progress, void *data);
/* Reclaim the space of all-zero grains in the top link (sparse only:
 * VD_E_CANTSHRINK otherwise). */
int ops_shrink(struct vdisk *d, ops_progress_fn progress, void *data);
/* Grains of the top link in logical order, no gaps (flat: nothing to do). */
int ops_defragment(struct vdisk *d, ops_progress_fn progress, void *data);
int ops_is_attach_possible(struct vdisk *parent, struct vdisk *child);
/* On success parent's links belong to child: close parent's vdisk (it is
 * empty) and use child for the combined chain. */
int ops_attach(struct vdisk *parent, struct vdisk *child);
/* Bytes a clone of d to disk_type (VixDiskLibDiskType; UNKNOWN (256) or 0:
 * d's own type)
 * will occupy: the sum of the sizes of the files ops_clone makes. */
int ops_space_needed_for_clone(struct vdisk *d, int disk_type, uint64_t *bytes);
/* Findings, one line each; level is enum vmdk_report_level. */
typedef void (*ops_report_fn)(void *data, int level, const char *msg);
/* Check (and with repair, fix) the link at path.  0: consistent, or every
 * problem repaired; VD_E_NEEDSREPAIR: problems found, repair off;
 * VD_E_CANTREPAIR: some could not be repaired; other codes: the check
 * could not run. */
int ops_check_repair(const char *path, int repair, ops_report_fn report, void *data);

#endif
