/* unlink.c - delete every file of one link. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "ops.h"

int ops_unlink(const char *path)
{
    vmdk_disk *d;
    /* A read-only single-link open checks that this is a disk and that no
     * writer has it open (its shared lock conflicts with a writer's). */
    int rc = vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK | VMDK_OPEN_NOCID, &d);
    if (rc < 0)
        return rc;
    char **files;
    size_t n;
    rc = vmdk_link_files(d, 0, &files, &n);
    vmdk_close(d);
    if (rc < 0)
        return rc;
    /* Descriptor first: once it is gone the disk no longer opens, so a
     * failure half-way never leaves a disk missing some extents. */
    for (size_t i = 0; i < n; i++) {
        if (unlink(files[i]) < 0 && errno != ENOENT && rc == 0)
            rc = vd_err_errno(errno, "%s: cannot delete", files[i]);
    }
    vmdk_strv_free(files, n);
    return rc;
}
