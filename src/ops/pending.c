/* pending.c - operations whose implementation belongs to the disk-management
 * work (grow, shrink, defragment, attach, space estimate, check/repair).
 * Until then they refuse clearly instead of pretending to succeed. */
#include "ops.h"

static int not_yet(const char *what)
{
    return vd_err_set(VD_E_UNSUPPORTED, "%s is not implemented in this version of openvddk",
                      what);
}

int ops_grow(const char *path, uint64_t capacity, int update_geometry,
             ops_progress_fn progress, void *data)
{
    (void)path; (void)capacity; (void)update_geometry; (void)progress; (void)data;
    return not_yet("growing a disk");
}

int ops_shrink(struct vdisk *d, ops_progress_fn progress, void *data)
{
    (void)d; (void)progress; (void)data;
    return not_yet("shrinking a disk");
}

int ops_defragment(struct vdisk *d, ops_progress_fn progress, void *data)
{
    (void)d; (void)progress; (void)data;
    return not_yet("defragmenting a disk");
}

int ops_is_attach_possible(struct vdisk *parent, struct vdisk *child)
{
    (void)parent; (void)child;
    return not_yet("attaching a child chain");
}

int ops_attach(struct vdisk *parent, struct vdisk *child)
{
    (void)parent; (void)child;
    return not_yet("attaching a child chain");
}

int ops_space_needed_for_clone(struct vdisk *d, int disk_type, uint64_t *bytes)
{
    (void)d; (void)disk_type; (void)bytes;
    return not_yet("estimating the space for a clone");
}

int ops_check_repair(const char *path, int repair)
{
    (void)path; (void)repair;
    return not_yet("checking and repairing a disk");
}
