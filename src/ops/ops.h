/* ops.h - whole-disk operations on top of the engine and vdisk objects.
 * All return 0 or a negative vd_err code with the detail in vd_err_msg(). */
#ifndef VD_OPS_H
#define VD_OPS_H

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

/* The operations of the disk-management work; they report
 * VD_E_UNSUPPORTED until that work lands. */
int ops_grow(const char *path, uint64_t capacity, int update_geometry,
             ops_progress_fn progress, void *data);
int ops_shrink(struct vdisk *d, ops_progress_fn progress, void *data);
int ops_defragment(struct vdisk *d, ops_progress_fn progress, void *data);
int ops_is_attach_possible(struct vdisk *parent, struct vdisk *child);
int ops_attach(struct vdisk *parent, struct vdisk *child);
int ops_space_needed_for_clone(struct vdisk *d, int disk_type, uint64_t *bytes);
int ops_check_repair(const char *path, int repair);

#endif
