/* vfile.c - the local file system of the file layer (vfile.h) and the
 * dispatch helpers.  Local files are plain descriptors: vd_file_pread and
 * vd_file_size call vd_pread_full / fstat on them directly. */
#include "vfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileio.h"

struct local_file {
    struct vd_file f;
    int own_fd;
};

/* Failure of a local read: the message names file and offset, errno stays. */
static int local_read_fail(struct vd_file *f, size_t len, uint64_t off)
{
    int e = errno;
    int rc = e ? vd_err_errno(e, "%s: reading %zu bytes at offset %" PRIu64, f->path, len, off)
               : vd_err_set(VD_E_IO, "%s: reading %zu bytes at offset %" PRIu64 ": unexpected "
                            "end of file", f->path, len, off);
    errno = e;
    return rc;
}

static int local_pread(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error)
{
    if (vd_pread_full(f->fd, buf, len, off, eof_is_error) < 0)
        return local_read_fail(f, len, off);
    return 0;
}

static int local_size(struct vd_file *f, uint64_t *size)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0) {
        int e = errno;
        int rc = vd_err_errno(e, "%s: stat", f->path);
        errno = e;
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

static void local_close(struct vd_file *f)
{
    struct local_file *lf = f->impl;
    if (lf->own_fd && f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(lf);
}

const struct vd_file_ops vd_file_local_ops = { local_pread, local_size, local_close };

int vd_file_from_fd(int fd, int own_fd, const char *path, struct vd_file **out)
{
    struct local_file *lf = calloc(1, sizeof *lf);
    char *p = vd_strdup(path ? path : "");
    if (!lf || !p) {
        free(lf);
        free(p);
        if (own_fd && fd >= 0)
            close(fd);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    lf->f.ops = &vd_file_local_ops;
    lf->f.fd = fd;
    lf->f.path = p;
    lf->f.impl = lf;
    lf->own_fd = own_fd;
    *out = &lf->f;
    return 0;
}

static int lfs_open(struct vd_fs *fs, const char *path, struct vd_file **out)
{
    int fd;
    int rc = vd_open_disk_file(fs, path, O_RDONLY, &fd, NULL);
    if (rc < 0)
        return rc;
    return vd_file_from_fd(fd, 1, path, out);
}

static int lfs_exists(struct vd_fs *fs, const char *path)
{
    int rc = vd_fs_check(fs, path);
    if (rc < 0)
        return rc;
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    if (errno == ENOENT || errno == ENOTDIR)
        return 0;
    return vd_err_errno(errno, "%s: stat", path);
}

static const struct vd_fs_ops local_fs_ops = { "file", lfs_open, lfs_exists };
static struct vd_fs local_fs = { &local_fs_ops, NULL };

struct vd_fs *vd_fs_local(void)
{
    return &local_fs;
}

int vd_fs_is_local(const struct vd_fs *fs)
{
    return !fs || fs == &local_fs || fs->ops == &local_fs_ops;
}

void vd_fs_local_confined(struct vd_fs *fs, const struct vd_fs_policy *pol)
{
    fs->ops = &local_fs_ops;
    fs->impl = (void *)pol;
}

int vd_fs_check(struct vd_fs *fs, const char *path)
{
    if (!fs || fs->ops != &local_fs_ops || !fs->impl)
        return 0;
    const struct vd_fs_policy *pol = fs->impl;
    return pol->check ? pol->check(pol->ctx, path) : 0;
}

static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) ? "a character device"
         : S_ISDIR(m) ? "a directory" : "a special file";
}

static int not_a_disk_file(const char *path, mode_t m)
{
    return vd_err_set(VD_E_INVAL, "%s: is %s, not a disk file (a disk must be a regular file "
                      "or a block device)", path, file_kind(m));
}

int vd_open_disk_file(struct vd_fs *fs, const char *path, int flags, int *fdp,
                      struct stat *stp)
{
    int rc = vd_fs_check(fs, path);
    if (rc < 0)
        return rc;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fl = flags | O_CLOEXEC | O_NONBLOCK;
    int fd = open(path, fl);
    if (fd < 0 && (fl & O_DIRECT) && errno == EINVAL)
        fd = open(path, fl & ~O_DIRECT);   /* file system without O_DIRECT */
    if (fd < 0) {
        int e = errno;
        struct stat st;
        /* A socket (ENXIO) or a directory opened for writing (EISDIR). */
        if ((e == ENXIO || e == EISDIR) && stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
            !S_ISBLK(st.st_mode))
            return not_a_disk_file(path, st.st_mode);
        return vd_err_errno(e, "%s: cannot open", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = vd_err_errno(errno, "%s: stat", path);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        close(fd);
        return not_a_disk_file(path, st.st_mode);
    }
    int cur = fcntl(fd, F_GETFL);
    if (cur < 0 || fcntl(fd, F_SETFL, cur & ~O_NONBLOCK) < 0) {
        rc = vd_err_errno(errno, "%s: fcntl", path);
        close(fd);
        return rc;
    }
    if (stp)
        *stp = st;
    *fdp = fd;
    return 0;
}

int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error)
{
    if (vd_file_is_local(f)) {
        if (vd_pread_full(f->fd, buf, len, off, eof_is_error) == 0)
            return 0;
        return local_read_fail(f, len, off);
    }
    return f->ops->pread(f, buf, len, off, eof_is_error);
}

int vd_file_size(struct vd_file *f, uint64_t *size)
{
    if (vd_file_is_local(f))
        return local_size(f, size);
    return f->ops->size(f, size);
}

void vd_file_close(struct vd_file *f)
{
    if (f)
        f->ops->close(f);
}

int vd_file_read_err(const struct vd_file *f, int rc, const char *fmt, ...)
{
    int e = errno;
    if (!vd_file_is_local(f))
        return rc;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vd_err_errno(e ? e : EIO, "%s", msg);
}
