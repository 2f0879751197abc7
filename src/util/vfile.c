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
    (void)fs;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vd_err_errno(errno, "%s: cannot open", path);
    return vd_file_from_fd(fd, 1, path, out);
}

static int lfs_exists(struct vd_fs *fs, const char *path)
{
    (void)fs;
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
