/* copy_into.c - copy a disk's content over another existing disk of the
 * same capacity (a restore into a remote export, which cannot be created
 * over NBD).
 *
 * Data runs of the source are read and written; every other run is made
 * to read as zeros in the destination (its zero operation when it has one,
 * such as NBD WRITE_ZEROES, else zero writes), so whatever the destination
 * held before does not survive. */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define CHUNK (4u << 20)

static int zero_range(struct vdisk *dst, uint64_t off, uint64_t len, const unsigned char *z)
{
    if (dst->ops->zero)
        return dst->ops->zero(dst, off, len);
    while (len) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        int rc = dst->ops->pwrite(dst, z, n, off);
        if (rc < 0)
            return rc;
        off += n;
        len -= n;
    }
    return 0;
}

int ops_copy_into(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data)
{
    if (src->capacity != dst->capacity)
        return vd_err_set(VD_E_INVAL, "the destination holds %llu bytes, the source %llu: "
                          "a disk can only be copied over one of the same capacity",
                          (unsigned long long)dst->capacity, (unsigned long long)src->capacity);
    return ops_copy_over(src, dst, progress, data);
}

int ops_copy_over(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data)
{
    if (src->capacity > dst->capacity)
        return vd_err_set(VD_E_NOSPACE, "the destination holds %llu bytes, the source %llu: "
                          "too small", (unsigned long long)dst->capacity,
                          (unsigned long long)src->capacity);
    unsigned char *buf = malloc(CHUNK);
    unsigned char *z = dst->ops->zero ? NULL : calloc(1, CHUNK);
    if (!buf || (!dst->ops->zero && !z)) {
        free(buf);
        free(z);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    uint64_t cap = src->capacity, off = 0;
    int last = -1, rc = 0;
    while (rc == 0 && off < cap) {
        uint64_t run;
        int st;
        if ((rc = src->ops->block_status(src, off, cap - off, 0, &run, &st)) < 0)
            break;
        uint64_t end = off + run;
        if (st != VMDK_DATA) {
            rc = zero_range(dst, off, run, z);
            off = end;
        }
        while (rc == 0 && off < end) {
            size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
            if ((rc = src->ops->pread(src, buf, n, off)) == 0)
                rc = dst->ops->pwrite(dst, buf, n, off);
            off += n;
        }
        int pct = cap ? (int)(off * 100 / cap) : 100;
        if (rc == 0 && progress && pct != last) {
            last = pct;
            if (!progress(data, pct))
                rc = vd_err_set(VD_E_CANCELLED, "copy cancelled by the progress callback at "
                                "%d%%", pct);
        }
    }
    if (rc == 0)
        rc = dst->ops->flush(dst);
    free(buf);
    free(z);
    return rc;
}
