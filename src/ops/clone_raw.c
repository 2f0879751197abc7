/* clone_raw.c - copy a disk into a raw image: a new regular file (sparse,
 * or fully allocated on request) built under a temporary name and put in
 * place when complete, or an existing block device written in place.
 *
 * Both go through the raw vdisk (vmdk/vdisk_raw.c) and the copy loops the
 * other clones use: ops_copy_data (data runs only, all-zero 64 KiB units
 * skipped, so a new file keeps holes) for files, ops_copy_over (every byte
 * of the source's size written or zeroed) for block devices, whose old
 * content must not show through. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "../util/fileio.h"

#define ZERO_CHUNK (1u << 20)

/* Keep the first error's message while cleaning up after it. */
static int keep_error(int rc, const char *tmp)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vd_err_msg());
    unlink(tmp);
    vd_err_set(-rc, "%s", msg);
    return rc;
}

static int close_keeping(struct vdisk *d, int rc)
{
    if (rc == 0)
        return d->ops->close(d);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vd_err_msg());
    d->ops->close(d);
    vd_err_set(-rc, "%s", msg);
    return rc;
}

static int to_block_device(struct vdisk *src, const char *dst, ops_progress_fn progress,
                           void *data, int overwrite)
{
    if (!overwrite)
        return vd_err_set(VD_E_EXISTS, "%s: a block device; writing the copy over its "
                          "content needs overwrite (vddk: --overwrite)", dst);
    struct vdisk *d;
    int rc = vdisk_open_raw(dst, 0, &d);
    if (rc < 0)
        return rc;
    if (d->capacity < src->capacity) {
        rc = vd_err_set(VD_E_NOSPACE, "%s: the block device holds %llu bytes, the source "
                        "%llu: too small (nothing was written)", dst,
                        (unsigned long long)d->capacity, (unsigned long long)src->capacity);
        return close_keeping(d, rc);
    }
    rc = ops_copy_over(src, d, progress, data);
    if (rc == 0)
        rc = d->ops->flush(d);
    return close_keeping(d, rc);
}

/* A new file of size bytes at tmp: sparse, or with every block allocated. */
static int make_file(const char *tmp, uint64_t size, int preallocate)
{
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0)
        return vd_err_errno(errno, "%s: cannot create", tmp);
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0)
        rc = vd_err_errno(errno, "%s: setting the size to %llu", tmp,
                          (unsigned long long)size);
    if (rc == 0 && preallocate && size > 0 && fallocate(fd, 0, 0, (off_t)size) < 0) {
        if (errno != EOPNOTSUPP && errno != ENOSYS) {
            rc = vd_err_errno(errno, "%s: allocating %llu bytes", tmp,
                              (unsigned long long)size);
        } else {
            /* No fallocate on this file system: zeros written allocate. */
            unsigned char *z = calloc(1, ZERO_CHUNK);
            if (!z)
                rc = vd_err_set(VD_E_NOMEM, "out of memory");
            for (uint64_t off = 0; rc == 0 && off < size;) {
                size_t n = size - off < ZERO_CHUNK ? (size_t)(size - off) : ZERO_CHUNK;
                if (vd_pwrite_full(fd, z, n, off) < 0)
                    rc = vd_err_errno(errno, "%s: writing zeros at offset %llu", tmp,
                                      (unsigned long long)off);
                off += n;
            }
            free(z);
        }
    }
    if (close(fd) < 0 && rc == 0)
        rc = vd_err_errno(errno, "%s: closing", tmp);
    return rc;
}

/* Replace dst (a raw file or a VMDK with its extent files) by tmp. */
static int replace(const char *tmp, const char *dst)
{
    int is_vmdk = 0;
    if (vdisk_probe_vmdk(dst, &is_vmdk) == 0 && is_vmdk) {
        int rc = ops_unlink(dst);
        if (rc < 0)
            return rc;
        return ops_link_temp(tmp, dst);
    }
    vd_err_clear();
    if (rename(tmp, dst) < 0)
        return vd_err_errno(errno, "%s: cannot replace", dst);
    char *dir = vd_path_dir(dst);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    int rc = 0;
    if (dfd < 0 || fsync(dfd) < 0)
        rc = dir ? vd_err_errno(errno, "%s: syncing the directory %s", dst, dir)
                 : vd_err_set(VD_E_NOMEM, "out of memory");
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

int ops_clone_raw(struct vdisk *src, const char *dst, int preallocate,
                  ops_progress_fn progress, void *data, int overwrite)
{
    if (!src || !dst || !*dst)
        return vd_err_set(VD_E_INVAL, "clone needs a source and a destination");
    struct stat st;
    int exists = stat(dst, &st) == 0;
    if (!exists && errno != ENOENT)
        return vd_err_errno(errno, "%s: stat", dst);
    if (exists && S_ISBLK(st.st_mode))
        return to_block_device(src, dst, progress, data, overwrite);
    if (exists && !S_ISREG(st.st_mode))
        return vd_err_set(VD_E_UNSUPPORTED, "%s: not a regular file or a block device", dst);
    if (exists && !overwrite)
        return vd_err_set(VD_E_EXISTS, "%s: destination already exists", dst);
    ops_sweep_temps(dst);
    char *tmp = ops_temp_name(dst);
    if (!tmp)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = make_file(tmp, src->capacity, preallocate);
    struct vdisk *d = NULL;
    if (rc == 0)
        rc = vdisk_open_raw(tmp, 0, &d);
    if (rc == 0) {
        rc = ops_copy_data(src, d, progress, data);
        if (rc == 0)
            rc = d->ops->flush(d);
        rc = close_keeping(d, rc);
    }
    if (rc == 0)
        rc = exists ? replace(tmp, dst) : ops_link_temp(tmp, dst);
    if (rc < 0)
        keep_error(rc, tmp);
    free(tmp);
    return rc;
}
