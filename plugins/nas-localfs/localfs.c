/* localfs.c - nas-localfs, openvddk's reference NAS plugin: the three
 * offload primitives on Linux file systems.
 *
 *   CLONEFILE  LAZY: ioctl FICLONE (XFS with reflink, btrfs, bcachefs,
 *              NFS 4.2 ...): blocks shared copy-on-write, nearly instant.
 *              Full: copy_file_range over the source's data runs (holes
 *              found with SEEK_DATA / SEEK_HOLE stay holes) in chunks of
 *              updateBytes with a progress call after each; read/write
 *              where copy_file_range is not available or only shares
 *              blocks (reflink file systems: a full clone moves data).  Without SKIPZEROES the
 *              holes are then allocated (fallocate), so the copy is thick.
 *              The copy is built in an unnamed temporary file and linked
 *              in at the end: a failure or cancel leaves no destination.
 *              GUARDED: the final link refuses an existing name (O_EXCL
 *              semantics).  DRYRUN: checks the files and, for LAZY, clones
 *              one block into a temporary file to see that it works.
 *   RESVSPACE  fallocate over the whole length: unwritten extents that read
 *              as zeros.  Never falls back to writing zeros.
 *   STATX      statx for size and blocks; FIEMAP for the extents marked
 *              shared: unique = allocated - shared.
 *
 * Every failure is reported as a specific VIX_E_* status with a log line.
 * Sessions: any mounted data file system (not proc, sysfs, ...); the
 * session id is the session's address. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vixDiskLibNasPlugin.h"

#define PLUGIN_NAME "nas-localfs"
#define EXPORT __attribute__((visibility("default")))
#define MIB (1024ull * 1024)
#define RW_BUF (4 * MIB)          /* read/write copy buffer */
#define SESSION_MAGIC 0x6c6f63616c667321ull
#define FIEMAP_BATCH 128

#ifndef XFS_SUPER_MAGIC
#define XFS_SUPER_MAGIC 0x58465342
#endif
#ifndef BCACHEFS_SUPER_MAGIC
#define BCACHEFS_SUPER_MAGIC 0xca451a4e
#endif
#ifndef OCFS2_SUPER_MAGIC
#define OCFS2_SUPER_MAGIC 0x7461636f
#endif
#ifndef F2FS_SUPER_MAGIC
#define F2FS_SUPER_MAGIC 0xF2F52010
#endif
#ifndef GFS2_MAGIC
#define GFS2_MAGIC 0x01161970
#endif

/* ---- logging ---- */

static VixDiskLibGenericLogFunc *log_fn, *warn_fn;

static void say(VixDiskLibGenericLogFunc *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(VixDiskLibGenericLogFunc *f, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    f(fmt, ap);
    va_end(ap);
}
#define LOG(...) say(log_fn, __VA_ARGS__)
#define WARN(...) say(warn_fn, __VA_ARGS__)

/* The VixError for an errno value of a file operation. */
static VixError vix_of(int err)
{
    switch (err) {
    case ENOENT: case ENOTDIR: return VIX_E_FILE_NOT_FOUND;
    case EEXIST: return VIX_E_FILE_ALREADY_EXISTS;
    case EACCES: case EPERM: return VIX_E_FILE_ACCESS_ERROR;
    case EROFS: return VIX_E_FILE_READ_ONLY;
    case ENOSPC: case EDQUOT: return VIX_E_DISK_FULL;
    case EFBIG: return VIX_E_FILE_TOO_BIG;
    case ENAMETOOLONG: return VIX_E_FILE_NAME_INVALID;
    case EBUSY: case ETXTBSY: return VIX_E_OBJECT_IS_BUSY;
    case ENOMEM: return VIX_E_OUT_OF_MEMORY;
    case EISDIR: return VIX_E_INCORRECT_FILE_TYPE;
    case EOPNOTSUPP: case ENOTTY: case ENOSYS: case EXDEV: return VIX_E_NOT_SUPPORTED;
    case ETIMEDOUT: return VIX_E_HOST_CONNECTION_LOST;
    default: return VIX_E_FILE_ERROR;
    }
}

/* Log a failed system call and return its VixError. */
static VixError fail(int err, const char *what, const char *path)
{
    WARN("%s %s: %s", what, path, strerror(err));
    return vix_of(err);
}

/* ---- sessions ---- */

struct session {
    uint64_t magic;
    struct session *next;
    char *mount;         /* localMountPoint */
    long fs_magic;       /* statfs f_type */
    int nfs;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct session *sessions;
static int users;

static struct session *find_session(VixDiskLibNasPluginSessionID id)
{
    pthread_mutex_lock(&lock);
    struct session *s = sessions;
    while (s && (uint64)(uintptr_t)s != id)
        s = s->next;
    if (s && s->magic != SESSION_MAGIC)
        s = NULL;
    pthread_mutex_unlock(&lock);
    return s;
}

/* Is path inside directory dir (both absolute)? */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int pseudo_fs(long m)
{
    switch (m) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case DEVPTS_SUPER_MAGIC: case CGROUP_SUPER_MAGIC:
    case CGROUP2_SUPER_MAGIC: case DEBUGFS_MAGIC: case SECURITYFS_MAGIC: case BPF_FS_MAGIC:
    case TRACEFS_MAGIC: case SELINUX_MAGIC:
        return 1;
    default:
        return 0;
    }
}

/* File systems where fallocate reserves space without writing data. */
static int can_reserve(long m)
{
    switch (m) {
    case XFS_SUPER_MAGIC: case EXT4_SUPER_MAGIC: case BTRFS_SUPER_MAGIC: case TMPFS_MAGIC:
    case F2FS_SUPER_MAGIC: case OCFS2_SUPER_MAGIC: case BCACHEFS_SUPER_MAGIC: case GFS2_MAGIC:
        return 1;
    default:
        return 0;
    }
}

static VixError lf_start(const VixDiskLibNasPluginDataStoreParams *ds,
                         const VixDiskLibNasPluginSessionParams *sp,
                         VixDiskLibNasPluginSessionID *id)
{
    (void)sp;
    if (!ds || !id || !ds->localMountPoint || ds->localMountPoint[0] != '/') {
        WARN("StartSession: no datastore, local mount point or session id given");
        return VIX_E_INVALID_ARG;
    }
    *id = VIXDISKLIB_NASPLUGIN_INVALID_SESSION_ID;
    if (ds->fsType && (!strcmp(ds->fsType, VIXDISKLIB_NASPLUGIN_FSTYPE_VMFS) ||
                       !strcmp(ds->fsType, VIXDISKLIB_NASPLUGIN_FSTYPE_VMFSL))) {
        LOG("datastore %s is %s, not a Linux file system; not taken", ds->localMountPoint,
            ds->fsType);
        return VIX_E_NOT_SUPPORTED;
    }
    struct statfs sf;
    if (statfs(ds->localMountPoint, &sf) < 0)
        return fail(errno, "StartSession: cannot look at", ds->localMountPoint);
    if (pseudo_fs((long)sf.f_type)) {
        LOG("datastore %s is a pseudo file system (magic 0x%lx); not taken",
            ds->localMountPoint, (unsigned long)sf.f_type);
        return VIX_E_NOT_SUPPORTED;
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s || !(s->mount = strdup(ds->localMountPoint))) {
        free(s);
        return VIX_E_OUT_OF_MEMORY;
    }
    s->magic = SESSION_MAGIC;
    s->fs_magic = (long)sf.f_type;
    s->nfs = sf.f_type == NFS_SUPER_MAGIC;
    pthread_mutex_lock(&lock);
    s->next = sessions;
    sessions = s;
    pthread_mutex_unlock(&lock);
    *id = (uint64)(uintptr_t)s;
    LOG("session started on %s (%s, magic 0x%lx)", s->mount, ds->fsType ? ds->fsType : "?",
        (unsigned long)sf.f_type);
    return VIX_OK;
}

static void free_session(struct session *s)
{
    s->magic = 0;
    free(s->mount);
    free(s);
}

static VixError lf_end(VixDiskLibNasPluginSessionID id)
{
    pthread_mutex_lock(&lock);
    struct session **pp = &sessions;
    while (*pp && (uint64)(uintptr_t)*pp != id)
        pp = &(*pp)->next;
    struct session *s = *pp;
    if (s)
        *pp = s->next;
    pthread_mutex_unlock(&lock);
    if (!s) {
        WARN("EndSession: unknown session id 0x%llx", (unsigned long long)id);
        return VIX_E_INVALID_ARG;
    }
    LOG("session on %s ended", s->mount);
    free_session(s);
    return VIX_OK;
}

static VixError lf_support(VixDiskLibNasPluginSessionID id,
                           const VixDiskLibNasPluginPrimitiveID prim)
{
    struct session *s = find_session(id);
    if (!s)
        return VIX_E_INVALID_ARG;
    switch (prim) {
    case VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE:
    case VIXDISKLIB_NASPLUGIN_PRIM_STATX:
        return VIX_OK;
    case VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE:
        return can_reserve(s->fs_magic) ? VIX_OK : VIX_E_NOT_SUPPORTED;
    default:
        return VIX_E_NOT_SUPPORTED;
    }
}

/* ---- progress ---- */

struct prog {
    VixDiskLibNasPluginProgressRecord *rec;
    uint64_t pending;
};

/* Count n more bytes done; call the callback every updateBytes (and at the
 * end when final).  0 when the callback asks to stop. */
static int progress(struct prog *p, uint64_t n, int final)
{
    p->pending += n;
    if (!p->rec || !p->rec->callback)
        return 1;
    uint64_t every = p->rec->updateBytes ? p->rec->updateBytes : 1;
    if (p->pending >= every || (final && p->pending > 0)) {
        p->rec->progressBytes = p->pending;
        p->pending = 0;
        if (!p->rec->callback(p->rec))
            return 0;
    }
    return 1;
}

/* ---- CLONEFILE ---- */

/* The copy under construction: an unnamed O_TMPFILE file, or a named
 * temporary where O_TMPFILE is not available. */
struct tmpfile {
    int fd;
    char *name;
};

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static VixError tmp_open(const char *dir, const char *dst, struct tmpfile *t)
{
    t->name = NULL;
    t->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (t->fd >= 0)
        return VIX_OK;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return fail(errno, "cannot create a temporary file in", dir);
    if (asprintf(&t->name, "%s.nas-localfs-XXXXXX", dst) < 0) {
        t->name = NULL;
        return VIX_E_OUT_OF_MEMORY;
    }
    t->fd = mkostemp(t->name, O_CLOEXEC);
    if (t->fd < 0) {
        VixError e = fail(errno, "cannot create", t->name);
        free(t->name);
        t->name = NULL;
        return e;
    }
    fchmod(t->fd, 0644);
    return VIX_OK;
}

static void tmp_discard(struct tmpfile *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->name)
        unlink(t->name);
    free(t->name);
    t->fd = -1;
    t->name = NULL;
}

/* Give the finished copy its name: refuse an existing one when guarded,
 * else replace it atomically. */
static VixError tmp_publish(struct tmpfile *t, const char *dir, const char *dst, int guarded)
{
    VixError e = VIX_OK;
    if (t->name) {
        if (guarded) {
            if (renameat2(AT_FDCWD, t->name, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
                if (errno != EINVAL && errno != ENOSYS)
                    e = fail(errno, "cannot create", dst);
                else if (link(t->name, dst) < 0)
                    e = fail(errno, "cannot create", dst);
            }
        } else if (rename(t->name, dst) < 0) {
            e = fail(errno, "cannot replace", dst);
        }
    } else {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->fd);
        if (guarded) {
            if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) < 0 &&
                linkat(t->fd, "", AT_FDCWD, dst, AT_EMPTY_PATH) < 0)
                e = fail(errno, "cannot create", dst);
        } else {
            /* Link under a fresh name, then rename over dst. */
            char *side = NULL;
            for (int i = 0; i < 100 && e == VIX_OK; i++) {
                free(side);
                side = NULL;
                if (asprintf(&side, "%s.nas-localfs-%08x", dst, (unsigned)random()) < 0) {
                    side = NULL;
                    e = VIX_E_OUT_OF_MEMORY;
                    break;
                }
                if (linkat(AT_FDCWD, proc, AT_FDCWD, side, AT_SYMLINK_FOLLOW) == 0 ||
                    linkat(t->fd, "", AT_FDCWD, side, AT_EMPTY_PATH) == 0)
                    break;
                if (errno != EEXIST)
                    e = fail(errno, "cannot create", side);
            }
            if (e == VIX_OK && rename(side, dst) < 0) {
                e = fail(errno, "cannot replace", dst);
                unlink(side);
            }
            free(side);
        }
    }
    if (e == VIX_OK) {
        free(t->name);
        t->name = NULL;          /* it is dst now */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return e;
}

/* Copy [off, off+n) by copy_file_range, or read/write once that is found
 * unavailable (*cfr cleared).  skip: leave all-zero blocks unwritten. */
static VixError copy_range(int sfd, int dfd, uint64_t off, uint64_t n, int *cfr,
                           unsigned char **buf, int skip, const char *src)
{
    while (n > 0) {
        if (*cfr) {
            loff_t in = (loff_t)off, out = (loff_t)off;
            ssize_t r = copy_file_range(sfd, &in, dfd, &out, (size_t)(n > 1ull << 30 ? 1ull << 30 : n), 0);
            if (r > 0) {
                off += (uint64_t)r;
                n -= (uint64_t)r;
                continue;
            }
            if (r == 0) {
                WARN("%s ended while being copied", src);
                return VIX_E_FILE_ERROR;
            }
            if (errno == EINTR)
                continue;
            if (errno != EXDEV && errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
                return fail(errno, "copy_file_range from", src);
            LOG("copy_file_range not available for %s (%s); copying through memory", src,
                strerror(errno));
            *cfr = 0;
        }
        if (!*buf && !(*buf = malloc(RW_BUF)))
            return VIX_E_OUT_OF_MEMORY;
        size_t m = n < RW_BUF ? (size_t)n : (size_t)RW_BUF;
        for (size_t got = 0; got < m;) {
            ssize_t r = pread(sfd, *buf + got, m - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return fail(errno, "cannot read", src);
            if (r == 0) {
                WARN("%s ended while being copied", src);
                return VIX_E_FILE_ERROR;
            }
            got += (size_t)r;
        }
        int zero = skip;
        for (size_t i = 0; i < m && zero; i++)
            zero = (*buf)[i] == 0;
        for (size_t put = 0; put < m && !zero;) {
            ssize_t w = pwrite(dfd, *buf + put, m - put, (off_t)(off + put));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return fail(errno, "cannot write the copy of", src);
            put += (size_t)w;
        }
        off += m;
        n -= m;
    }
    return VIX_OK;
}

/* Does any extent of fd in [off, off+len) share its blocks? */
static int range_shared(int fd, uint64_t off, uint64_t len)
{
    enum { N = 32 };
    union {
        struct fiemap fm;
        unsigned char bytes[sizeof(struct fiemap) + N * sizeof(struct fiemap_extent)];
    } m;
    memset(&m, 0, sizeof m);
    m.fm.fm_start = off;
    m.fm.fm_length = len;
    m.fm.fm_extent_count = N;
    if (ioctl(fd, FS_IOC_FIEMAP, &m.fm) < 0)
        return 0;
    for (unsigned i = 0; i < m.fm.fm_mapped_extents && i < N; i++)
        if (m.fm.fm_extents[i].fe_flags & FIEMAP_EXTENT_SHARED)
            return 1;
    return 0;
}

/* A full copy: data runs only, in chunks, with progress and cancel. */
static VixError copy_data(int sfd, int dfd, uint64_t size, int skip, struct prog *pg,
                          const char *src, const char **how)
{
    if (ftruncate(dfd, (off_t)size) < 0)
        return fail(errno, "cannot size the copy of", src);
    uint64_t chunk = pg->rec && pg->rec->updateBytes ? pg->rec->updateBytes : 16 * MIB;
    chunk = chunk < MIB ? MIB : chunk > 256 * MIB ? 256 * MIB : chunk;
    int cfr = 1, checked = 0;
    unsigned char *buf = NULL;
    VixError e = VIX_OK;
    uint64_t off = 0;
    while (off < size && e == VIX_OK) {
        off_t data = lseek(sfd, (off_t)off, SEEK_DATA);
        if (data < 0)
            data = errno == ENXIO ? (off_t)size : (off_t)off;   /* ENXIO: only a hole left */
        if ((uint64_t)data > size)
            data = (off_t)size;
        if ((uint64_t)data > off) {
            if (!progress(pg, (uint64_t)data - off, 0))
                e = VIX_E_CANCELLED;
            off = (uint64_t)data;
            continue;
        }
        off_t hole = lseek(sfd, (off_t)off, SEEK_HOLE);
        uint64_t end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
        if (end <= off)
            end = off + chunk < size ? off + chunk : size;
        while (off < end && e == VIX_OK) {
            uint64_t n = end - off < chunk ? end - off : chunk;
            int by_cfr = cfr;
            e = copy_range(sfd, dfd, off, n, &cfr, &buf, skip, src);
            /* On XFS or btrfs copy_file_range shares the blocks instead of
             * copying them; a full clone moves the data now, so this chunk
             * is written again, and the rest copied, through memory. */
            if (e == VIX_OK && by_cfr && cfr && !checked) {
                checked = 1;
                if (range_shared(dfd, off, n)) {
                    LOG("copy_file_range shares blocks here; copying %s through memory for a "
                        "full clone", src);
                    cfr = 0;
                    e = copy_range(sfd, dfd, off, n, &cfr, &buf, 0, src);
                }
            }
            off += n;
            if (e == VIX_OK && !progress(pg, n, 0))
                e = VIX_E_CANCELLED;
        }
    }
    free(buf);
    if (e == VIX_OK && !progress(pg, 0, 1))
        e = VIX_E_CANCELLED;
    *how = cfr ? "copy_file_range" : checked ? "read/write (copy_file_range only shares here)"
                                             : "read/write";
    return e;
}

/* DRYRUN: would this clone work?  For LAZY, clone one block of the source
 * into a temporary file next to the destination. */
static VixError dry_run(int sfd, const struct stat *sst, const char *dir, int lazy,
                        const char *src)
{
    if (access(dir, W_OK) < 0)
        return fail(errno, "DRYRUN: cannot write in", dir);
    if (!lazy)
        return VIX_OK;
    struct tmpfile t;
    char *probe = NULL;
    if (asprintf(&probe, "%s/.nas-localfs-probe", dir) < 0)
        return VIX_E_OUT_OF_MEMORY;
    VixError e = tmp_open(dir, probe, &t);
    free(probe);
    if (e != VIX_OK)
        return e;
    struct stat tst;
    if (fstat(t.fd, &tst) == 0 && tst.st_dev != sst->st_dev) {
        LOG("DRYRUN: %s and %s are on different file systems; no lazy clone", src, dir);
        tmp_discard(&t);
        return VIX_E_NOT_SUPPORTED;
    }
    uint64_t blk = sst->st_blksize >= 512 ? (uint64_t)sst->st_blksize : 4096;
    struct file_clone_range r = {
        .src_fd = sfd, .src_offset = 0,
        .src_length = (uint64_t)sst->st_size <= blk ? 0 : blk, .dest_offset = 0,
    };
    if (ioctl(t.fd, FICLONERANGE, &r) < 0) {
        int err = errno;
        LOG("DRYRUN: %s cannot be cloned lazily into %s (%s)", src, dir, strerror(err));
        e = vix_of(err) == VIX_E_FILE_ERROR || err == EINVAL || err == EBADF
                ? VIX_E_NOT_SUPPORTED : vix_of(err);
    }
    tmp_discard(&t);
    return e;
}

static VixError clone_file(struct session *s, const VixDiskLibNasPluginCloneFileParams *p)
{
    unsigned f = (unsigned)p->cloneFlags;
    const char *src = p->srcFileName, *dst = p->dstFileName;
    if (!src || !dst || src[0] != '/' || dst[0] != '/') {
        WARN("CLONEFILE: source and destination must be absolute paths");
        return VIX_E_INVALID_ARG;
    }
    const char *smount = s->mount;
    if ((f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SRCDATASTORE_VALID) && p->srcDataStoreInfo &&
        p->srcDataStoreInfo->localMountPoint)
        smount = p->srcDataStoreInfo->localMountPoint;
    if (!under(dst, s->mount) || !under(src, smount)) {
        WARN("CLONEFILE: %s -> %s is not on this session's datastore %s", src, dst, s->mount);
        return VIX_E_INVALID_ARG;
    }
    int lazy = !!(f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY);
    int guarded = !!(f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED);
    int dry = !!(f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN);
    int skip = !!(f & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES);

    int sfd = open(src, O_RDONLY | O_CLOEXEC);
    if (sfd < 0)
        return fail(errno, "CLONEFILE: cannot open source", src);
    struct stat sst, dst_st;
    VixError e = VIX_OK;
    char *dir = NULL;
    if (fstat(sfd, &sst) < 0) {
        e = fail(errno, "CLONEFILE: cannot look at", src);
        goto out;
    }
    if (!S_ISREG(sst.st_mode)) {
        WARN("CLONEFILE: source %s is not a regular file", src);
        e = VIX_E_INCORRECT_FILE_TYPE;
        goto out;
    }
    if (lstat(dst, &dst_st) == 0) {
        if (guarded) {
            LOG("CLONEFILE: %s exists (GUARDED)", dst);
            e = VIX_E_FILE_ALREADY_EXISTS;
            goto out;
        }
        if (!S_ISREG(dst_st.st_mode)) {
            WARN("CLONEFILE: destination %s exists and is not a regular file", dst);
            e = VIX_E_INCORRECT_FILE_TYPE;
            goto out;
        }
        if (dst_st.st_dev == sst.st_dev && dst_st.st_ino == sst.st_ino) {
            WARN("CLONEFILE: %s and %s are the same file", src, dst);
            e = VIX_E_INVALID_ARG;
            goto out;
        }
    } else if (errno != ENOENT) {
        e = fail(errno, "CLONEFILE: cannot look at", dst);
        goto out;
    }
    if (!(dir = dir_of(dst))) {
        e = VIX_E_OUT_OF_MEMORY;
        goto out;
    }
    if (dry) {
        e = dry_run(sfd, &sst, dir, lazy, src);
        goto out;
    }

    struct tmpfile t;
    if ((e = tmp_open(dir, dst, &t)) != VIX_OK)
        goto out;
    struct prog pg = { .rec = p->common.progressRecord };
    uint64_t size = (uint64_t)sst.st_size;
    const char *how = "FICLONE";
    if (lazy) {
        if (ioctl(t.fd, FICLONE, sfd) < 0) {
            int err = errno;
            WARN("CLONEFILE: FICLONE %s -> %s: %s", src, dst, strerror(err));
            e = err == EINVAL || err == EBADF ? VIX_E_NOT_SUPPORTED : vix_of(err);
        } else if (!progress(&pg, size, 1)) {
            e = VIX_E_CANCELLED;
        }
    } else {
        e = copy_data(sfd, t.fd, size, skip, &pg, src, &how);
    }
    /* Thick copy: allocate what is still a hole. */
    if (e == VIX_OK && !skip && size > 0 && fallocate(t.fd, 0, 0, (off_t)size) < 0) {
        if (errno == EOPNOTSUPP)
            LOG("CLONEFILE: %s cannot allocate holes here; the copy stays sparse", dst);
        else
            e = fail(errno, "CLONEFILE: cannot allocate", dst);
    }
    if (e == VIX_OK && fsync(t.fd) < 0)
        e = fail(errno, "CLONEFILE: cannot sync the copy for", dst);
    if (e == VIX_OK)
        e = tmp_publish(&t, dir, dst, guarded);
    if (e == VIX_E_CANCELLED)
        LOG("CLONEFILE %s -> %s cancelled; nothing left behind", src, dst);
    else if (e == VIX_OK)
        LOG("CLONEFILE %s -> %s done (%s%s%s)", src, dst, how,
            skip ? ", zeroes skipped" : "", guarded ? ", guarded" : "");
    tmp_discard(&t);
out:
    free(dir);
    close(sfd);
    return e;
}

/* ---- RESVSPACE ---- */

static VixError resv_space(struct session *s, const VixDiskLibNasPluginResvSpaceParams *p)
{
    const char *file = p->fileName;
    if (!file || !under(file, s->mount)) {
        WARN("RESVSPACE: %s is not on this session's datastore %s", file ? file : "(null)",
             s->mount);
        return VIX_E_INVALID_ARG;
    }
    int fd = open(file, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "RESVSPACE: cannot open", file);
    struct stat st;
    VixError e = VIX_OK;
    if (fstat(fd, &st) < 0) {
        e = fail(errno, "RESVSPACE: cannot look at", file);
    } else if (!S_ISREG(st.st_mode)) {
        WARN("RESVSPACE: %s is not a regular file", file);
        e = VIX_E_INCORRECT_FILE_TYPE;
    } else if (st.st_size == 0) {
        WARN("RESVSPACE: %s is empty; its length must be set first", file);
        e = VIX_E_INVALID_ARG;
    } else if (fallocate(fd, 0, 0, st.st_size) < 0) {
        /* Never fall back to writing zeros: that is not a reservation. */
        e = fail(errno, "RESVSPACE: fallocate failed on", file);
    } else if (fsync(fd) < 0) {
        e = fail(errno, "RESVSPACE: cannot sync", file);
    } else {
        struct prog pg = { .rec = p->common.progressRecord };
        progress(&pg, (uint64_t)st.st_size, 1);
        LOG("RESVSPACE %s: %lld bytes reserved", file, (long long)st.st_size);
    }
    close(fd);
    return e;
}

/* ---- STATX ---- */

static VixError stat_x(struct session *s, const VixDiskLibNasPluginStatXParams *p,
                       VixDiskLibNasPluginStatXResult *r)
{
    const char *file = p->fileName;
    if (!file || !under(file, s->mount)) {
        WARN("STATX: %s is not on this session's datastore %s", file ? file : "(null)",
             s->mount);
        return VIX_E_INVALID_ARG;
    }
    struct statx sx;
    if (statx(AT_FDCWD, file, 0, STATX_TYPE | STATX_SIZE | STATX_BLOCKS, &sx) < 0)
        return fail(errno, "STATX: cannot look at", file);
    if (!S_ISREG(sx.stx_mode)) {
        WARN("STATX: %s is not a regular file", file);
        return VIX_E_INCORRECT_FILE_TYPE;
    }
    uint64_t total = sx.stx_size, alloced = sx.stx_blocks * 512, shared = 0, unwritten = 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(errno, "STATX: cannot open", file);
    size_t sz = sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent);
    struct fiemap *fm = calloc(1, sz);
    VixError e = fm ? VIX_OK : VIX_E_OUT_OF_MEMORY;
    uint64_t start = 0;
    int have_map = 1;
    while (e == VIX_OK && have_map) {
        memset(fm, 0, sz);
        fm->fm_start = start;
        fm->fm_length = FIEMAP_MAX_OFFSET - start;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        fm->fm_extent_count = FIEMAP_BATCH;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
            if (errno == EOPNOTSUPP || errno == ENOTTY || errno == ENOSYS) {
                /* No extent map: nothing is known to be shared. */
                have_map = 0;
                shared = 0;
                break;
            }
            e = fail(errno, "STATX: FIEMAP failed on", file);
            break;
        }
        if (fm->fm_mapped_extents == 0)
            break;
        int last = 0;
        for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
            const struct fiemap_extent *x = &fm->fm_extents[i];
            if (x->fe_flags & FIEMAP_EXTENT_SHARED)
                shared += x->fe_length;
            if (x->fe_flags & FIEMAP_EXTENT_UNWRITTEN)
                unwritten += x->fe_length;
            if (x->fe_flags & FIEMAP_EXTENT_LAST)
                last = 1;
        }
        const struct fiemap_extent *x = &fm->fm_extents[fm->fm_mapped_extents - 1];
        start = x->fe_logical + x->fe_length;
        if (last || start <= x->fe_logical)
            break;
    }
    free(fm);
    close(fd);
    if (e != VIX_OK)
        return e;
    r->totalBytes = total;
    r->allocedBytes = alloced;
    r->uniqueBytes = shared >= alloced ? 0 : alloced - shared;
    r->allocType = alloced >= total ? (unwritten ? VIXDISKLIB_NASPLUGIN_FILE_ALLOC_LZT
                                                 : VIXDISKLIB_NASPLUGIN_FILE_ALLOC_EZT)
                                    : VIXDISKLIB_NASPLUGIN_FILE_ALLOC_THIN;
    return VIX_OK;
}

/* ---- entry points ---- */

static void lf_exec(VixDiskLibNasPluginSessionID id, const VixDiskLibNasPluginCommonParams *cp)
{
    if (!cp || !cp->result) {
        WARN("ExecPrimitive called without a result record; nothing done");
        return;
    }
    struct session *s = find_session(id);
    VixError e;
    if (!s) {
        WARN("ExecPrimitive: unknown session id 0x%llx", (unsigned long long)id);
        e = VIX_E_INVALID_ARG;
    } else {
        switch (cp->primitiveID) {
        case VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE:
            e = clone_file(s, (const VixDiskLibNasPluginCloneFileParams *)cp);
            break;
        case VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE:
            e = can_reserve(s->fs_magic) ? resv_space(s, (const VixDiskLibNasPluginResvSpaceParams *)cp)
                                         : VIX_E_NOT_SUPPORTED;
            break;
        case VIXDISKLIB_NASPLUGIN_PRIM_STATX:
            e = stat_x(s, (const VixDiskLibNasPluginStatXParams *)cp,
                       (VixDiskLibNasPluginStatXResult *)cp->result);
            break;
        default:
            WARN("ExecPrimitive: unknown primitive 0x%x", (unsigned)cp->primitiveID);
            e = VIX_E_NOT_SUPPORTED;
            break;
        }
    }
    cp->result->status = e;
}

static VixError lf_init(VixDiskLibGenericLogFunc *log, VixDiskLibGenericLogFunc *warn,
                        VixDiskLibGenericLogFunc *panic)
{
    (void)panic;
    pthread_mutex_lock(&lock);
    if (users++ == 0) {
        log_fn = log;
        warn_fn = warn;
    }
    pthread_mutex_unlock(&lock);
    LOG("ready (CLONEFILE via FICLONE / copy_file_range, RESVSPACE via fallocate, STATX via "
        "statx + FIEMAP)");
    return VIX_OK;
}

static void lf_done(void)
{
    pthread_mutex_lock(&lock);
    int last = users > 0 && --users == 0;
    struct session *left = last ? sessions : NULL;
    if (last)
        sessions = NULL;
    pthread_mutex_unlock(&lock);
    int n = 0;
    while (left) {
        struct session *next = left->next;
        free_session(left);
        left = next;
        n++;
    }
    if (n)
        WARN("%d session%s still open at Done; ended", n, n == 1 ? "" : "s");
}

static VixDiskLibNasPlugin localfs_plugin = {
    { VIXDISKLIB_NASPLUGIN_MAJOR_VERSION, VIXDISKLIB_NASPLUGIN_MINOR_VERSION,
      VIXDISKLIB_PLUGIN_TYPE_NAS, PLUGIN_NAME, lf_init, lf_done },
    lf_start, lf_end, lf_exec, lf_support,
};

static VixDiskLibPlugin *plugin_list[] = { &localfs_plugin.diskLibPlugin, NULL };

EXPORT VixDiskLibPlugin **VixDiskLibPlugin_EntryPoint = plugin_list;
