/* vfile.h - the file layer under the engine.
 *
 * The VMDK engine parses every disk itself; where the bytes of its files
 * come from is this layer's business.  A vd_fs is a place files are opened
 * from: the local file system (vd_fs_local(), plain descriptors) or a
 * remote one, such as a vSphere datastore read through HTTP Range requests
 * (src/vsphere/https_fs.c).  A vd_file is one open file of it.
 *
 * Local files keep their descriptor in fd, so the write, lock and sync paths
 * of the engine (which only ever apply to local files) use it directly;
 * remote files have fd = -1 and are read-only.  Every function returns 0 or
 * a negative vd_err code with the detail in vd_err_msg().
 *
 * Paths are the file system's own strings: "/a/b.vmdk" locally, a datastore
 * path "[ds] dir/b.vmdk" for vSphere.  vd_path_dir/vd_path_join (fileio.h)
 * handle both: the directory of "[ds] dir/b.vmdk" is "[ds] dir", of
 * "[ds] b.vmdk" it is "[ds]", and a name starting with '/' or "[ds]" is
 * absolute. */
#ifndef VD_UTIL_VFILE_H
#define VD_UTIL_VFILE_H

#include <stddef.h>
#include <stdint.h>

struct vd_file;
struct vd_fs;

struct vd_file_ops {
    /* Read len bytes at off.  A read that reaches past the end of the file
     * is an error when eof_is_error, else the missing tail is zero-filled.
     * Errors name the file (f->path). */
    int (*pread)(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error);
    /* Current size of the file in bytes. */
    int (*size)(struct vd_file *f, uint64_t *size);
    /* Release everything (f included). */
    void (*close)(struct vd_file *f);
};

struct vd_file {
    const struct vd_file_ops *ops;
    int fd;             /* local: the open descriptor; remote: -1 */
    char *path;         /* as the engine named it (malloc'd) */
    void *impl;
};

struct vd_fs_ops {
    const char *name;   /* "file", "https" */
    /* Open path read-only. */
    int (*open)(struct vd_fs *fs, const char *path, struct vd_file **out);
    /* 1 if path names an existing file, 0 if not, negative vd_err when that
     * cannot be told (server unreachable). */
    int (*exists)(struct vd_fs *fs, const char *path);
};

struct vd_fs {
    const struct vd_fs_ops *ops;
    void *impl;
};

/* The local file system (a static object; never freed). */
struct vd_fs *vd_fs_local(void);
/* fs is the local file system (NULL counts as local). */
int vd_fs_is_local(const struct vd_fs *fs);

/* A path policy on the local file system: check(ctx, path) returns 0 to
 * allow path, or a negative vd_err (message set) to refuse it.  The engine
 * asks it before it opens any file of a disk (descriptor, extents,
 * parents) or tests whether one exists, so a refused file is never
 * touched (`vddk serve` confines disks to its datastores this way). */
struct vd_fs_policy {
    int (*check)(void *ctx, const char *path);
    void *ctx;
};
/* Make *fs the local file system under pol (both stay the caller's and
 * must outlive every disk opened through fs).  vd_fs_is_local(fs) is true:
 * disks are writable, locked, as on vd_fs_local(). */
void vd_fs_local_confined(struct vd_fs *fs, const struct vd_fs_policy *pol);
/* fs's policy on path: 0 when allowed (always on vd_fs_local() and on a
 * non-local fs, which has its own names), else the policy's error. */
int vd_fs_check(struct vd_fs *fs, const char *path);

/* Open an existing local file of a disk; flags: O_RDONLY or O_RDWR, with
 * O_DIRECT or O_EXCL if wanted (O_CLOEXEC is added).  fs's policy (NULL:
 * none) is asked first.  The open never blocks: a FIFO, socket, character
 * device or directory is refused with VD_E_INVAL ("PATH: is a FIFO, not a
 * disk file (a disk must be a regular file or a block device)"); a
 * regular file or block device is returned in *fdp in blocking mode, with
 * its fstat in *st when st is not NULL. */
struct stat;
int vd_open_disk_file(struct vd_fs *fs, const char *path, int flags, int *fdp,
                      struct stat *st);

/* Wrap an open local descriptor (the vd_file owns it when own_fd).  path is
 * copied.  On failure a descriptor it would own is closed. */
int vd_file_from_fd(int fd, int own_fd, const char *path, struct vd_file **out);

/* The operations of local files (vd_fs_local, vd_file_from_fd). */
extern const struct vd_file_ops vd_file_local_ops;

/* A local file: reads go straight to pread on fd. */
static inline int vd_file_is_local(const struct vd_file *f)
{
    return f->fd >= 0 && f->ops == &vd_file_local_ops;
}

/* Dispatch helpers (local files go straight to pread/fstat).  A local
 * failure is the errno mapped as vd_err_errno does (end of file when
 * eof_is_error: VD_E_IO, "unexpected end of file"), with a message naming
 * the file and offset; errno is left as the system call set it (0 for end
 * of file), so a caller may word its own message (vd_file_read_err). */
int vd_file_pread(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error);
int vd_file_size(struct vd_file *f, uint64_t *size);
void vd_file_close(struct vd_file *f);

/* The error to return after vd_file_pread/vd_file_size on f failed with
 * rc: for a local file the caller's message, fmt followed by
 * ": strerror(errno)" (EIO when errno is 0), as vd_err_errno words it; for
 * any other file rc itself, keeping the file system's code and message
 * (VD_E_NET_LOST stays VD_E_NET_LOST).  Call it right after the failure. */
int vd_file_read_err(const struct vd_file *f, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
