/* clone.c - copy a disk (any vdisk: a chain, a single link, a remote disk)
 * into a new disk of a chosen type.  Only data runs of the source are read;
 * all-zero blocks are not written, so sparse destinations stay sparse. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops.h"
#include "../util/fileio.h"

#define COPY_CHUNK (1u << 20)
#define ZERO_UNIT (64u << 10)

static int report(ops_progress_fn progress, void *data, int *last, uint64_t done, uint64_t total)
{
    int pct = total ? (int)(done * 100 / total) : 100;
    if (!progress || pct == *last)
        return 0;
    *last = pct;
    if (!progress(data, pct))
        return vd_err_set(VD_E_CANCELLED, "clone cancelled by the progress callback at %d%%",
                          pct);
    return 0;
}

static int copy_all(struct vdisk *src, vmdk_disk *dst, ops_progress_fn progress, void *data)
{
    uint64_t cap = src->capacity, off = 0;
    int last = -1, rc = report(progress, data, &last, 0, cap);
    unsigned char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    while (rc == 0 && off < cap) {
        uint64_t run;
        int st;
        if ((rc = src->ops->block_status(src, off, cap - off, 0, &run, &st)) < 0)
            break;
        uint64_t end = off + run;
        while (st == VMDK_DATA && off < end && rc == 0) {
            size_t n = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
            if ((rc = src->ops->pread(src, buf, n, off)) < 0)
                break;
            /* Write only the non-zero parts, in 64 KiB units. */
            for (size_t u = 0; u < n && rc == 0; u += ZERO_UNIT) {
                size_t m = n - u < ZERO_UNIT ? n - u : ZERO_UNIT;
                if (!vd_is_zero(buf + u, m))
                    rc = vmdk_pwrite(dst, buf + u, m, off + u);
            }
            off += n;
            if (rc == 0)
                rc = report(progress, data, &last, off, cap);
        }
        off = end;
        if (rc == 0)
            rc = report(progress, data, &last, off, cap);
    }
    free(buf);
    return rc;
}

int ops_clone(struct vdisk *src, const char *dst, const struct vmdk_create_params *p,
              ops_progress_fn progress, void *data, int overwrite)
{
    if (!src || !dst || !p)
        return vd_err_set(VD_E_INVAL, "clone needs a source, a destination and parameters");
    struct vmdk_create_params cp = *p;
    cp.capacity = src->capacity;
    if (access(dst, F_OK) == 0) {
        if (!overwrite)
            return vd_err_set(VD_E_EXISTS, "%s: destination already exists", dst);
        int rc = ops_unlink(dst);
        if (rc < 0)
            return rc;
    }
    int rc = vmdk_create(dst, &cp);
    if (rc < 0)
        return rc;
    vmdk_disk *d;
    if ((rc = vmdk_open(dst, 0, &d)) < 0) {
        ops_unlink(dst);
        return rc;
    }
    rc = copy_all(src, d, progress, data);
    if (rc == 0)
        rc = vmdk_flush(d);
    int crc = vmdk_close(d);
    if (rc == 0)
        rc = crc;
    if (rc < 0) {
        /* Keep the first error's message while removing the partial copy. */
        char msg[1024];
        int code = vd_err_code();
        strncpy(msg, vd_err_msg(), sizeof msg - 1);
        msg[sizeof msg - 1] = '\0';
        ops_unlink(dst);
        vd_err_set(code, "%s", msg);
    }
    return rc;
}
