/* vdisk_raw.c - a raw image (a regular file or a block device) as a vdisk,
 * beside the VMDK chain of vdisk_local.c, so that clone, copy, checksum,
 * compare and map reach raw images through the same operations.
 *
 * The disk's bytes are the file's bytes.  A regular file's capacity is its
 * size rounded up to whole sectors (the tail reads as zeros); a block
 * device's is BLKGETSIZE64.  block_status comes from SEEK_DATA/SEEK_HOLE
 * for regular files (holes are VMDK_HOLE); a block device, and a file
 * system that cannot tell, is all data.  Files are locked with OFD locks
 * as the engine locks VMDK files; a block device opened for writing is
 * also opened O_EXCL, so one that is mounted or in use is refused. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "link.h"
#include "vmdk.h"
#include "../util/fileio.h"
#include "../util/vdisk.h"

#define ZERO_CHUNK (1u << 20)

struct raw {
    int fd;
    int blkdev;
    int no_seek_data;       /* SEEK_DATA is not supported: all data */
    int no_punch;           /* hole punching is not supported */
    int dirty;              /* written since the last flush */
    uint64_t size;          /* the file's own size (capacity may round it up) */
    char path[];
};

static struct raw *R(struct vdisk *d) { return d->impl; }

static int r_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
    struct raw *r = R(d);
    if (off > d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "%s: read of %zu bytes at %llu is past the end (%llu)",
                          r->path, len, (unsigned long long)off,
                          (unsigned long long)d->capacity);
    /* Past the end of a regular file (its last partial sector) reads as
     * zeros: vd_pread_full zero-fills. */
    if (vd_pread_full(r->fd, buf, len, off, r->blkdev) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: reading %zu bytes at offset %llu",
                            r->path, len, (unsigned long long)off);
    return 0;
}

static int r_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
    struct raw *r = R(d);
    if (d->readonly)
        return vd_err_set(VD_E_READONLY, "%s: opened read-only", r->path);
    if (off > d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "%s: write of %zu bytes at %llu is past the end (%llu)",
                          r->path, len, (unsigned long long)off,
                          (unsigned long long)d->capacity);
    r->dirty = 1;
    if (vd_pwrite_full(r->fd, buf, len, off) < 0)
        return vd_err_errno(errno, "%s: writing %zu bytes at offset %llu", r->path, len,
                            (unsigned long long)off);
    return 0;
}

static int r_flush(struct vdisk *d)
{
    struct raw *r = R(d);
    if (d->readonly || !r->dirty)
        return 0;
    if (fdatasync(r->fd) < 0)
        return vd_err_errno(errno, "%s: syncing", r->path);
    r->dirty = 0;
    return 0;
}

static int r_block_status(struct vdisk *d, uint64_t off, uint64_t len, int single,
                          uint64_t *run, int *status)
{
    struct raw *r = R(d);
    (void)single;
    if (len == 0 || off > d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "%s: status of %llu bytes at %llu is outside the disk",
                          r->path, (unsigned long long)len, (unsigned long long)off);
    *run = len;
    *status = VMDK_DATA;
    if (r->blkdev || r->no_seek_data)
        return 0;
    if (off >= r->size) {            /* the rounded-up tail */
        *status = VMDK_HOLE;
        return 0;
    }
    off_t data = lseek(r->fd, (off_t)off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {        /* no data from off to the end */
            *status = VMDK_HOLE;
            return 0;
        }
        if (errno == EINVAL || errno == EOPNOTSUPP) {
            r->no_seek_data = 1;
            return 0;
        }
        return vd_err_errno(errno, "%s: SEEK_DATA at %llu", r->path, (unsigned long long)off);
    }
    if ((uint64_t)data > off) {
        uint64_t n = (uint64_t)data - off;
        *status = VMDK_HOLE;
        *run = n < len ? n : len;
        return 0;
    }
    off_t hole = lseek(r->fd, (off_t)off, SEEK_HOLE);
    if (hole < 0)
        return vd_err_errno(errno, "%s: SEEK_HOLE at %llu", r->path, (unsigned long long)off);
    /* Data runs up to the next hole (the end of file counts as one);
     * round up to a sector so that no run ends inside one. */
    uint64_t end = ((uint64_t)hole + 511) / 512 * 512;
    if (end > off && end - off < len)
        *run = end - off;
    return 0;
}

/* A block device's geometry as a SCSI disk's (the engine's rule). */
static int r_info(struct vdisk *d, struct vdisk_info *info)
{
    memset(info, 0, sizeof *info);
    info->capacity = d->capacity;
    info->num_links = 1;
    struct vmdk_geometry g;
    vmdk_geometry_for(d->capacity, VMDK_ADAPTER_LSILOGIC, &g);
    info->phys = (struct vdisk_geometry){ g.cylinders, g.heads, g.sectors };
    info->bios = info->phys;
    info->adapter = (int)VMDK_ADAPTER_LSILOGIC;
    info->hw_version = 0;
    info->disk_type = 256;
    info->logical_sector = 512;
    info->physical_sector = 512;
    return 0;
}

static int r_meta_get(struct vdisk *d, const char *k, char **v)
{
    *v = NULL;
    return vd_err_set(VD_E_NOTFOUND_KEY, "%s: a raw image has no disk database (key %s)",
                      R(d)->path, k);
}

static int r_meta_set(struct vdisk *d, const char *k, const char *v)
{
    (void)v;
    return vd_err_set(VD_E_UNSUPPORTED, "%s: a raw image has no disk database (key %s)",
                      R(d)->path, k);
}

static int r_meta_keys(struct vdisk *d, char ***keys, size_t *n)
{
    (void)d;
    *keys = NULL;
    *n = 0;
    return 0;
}

static int r_close(struct vdisk *d)
{
    struct raw *r = R(d);
    int rc = r_flush(d);
    if (close(r->fd) < 0 && rc == 0)
        rc = vd_err_errno(errno, "%s: closing", r->path);
    free(r);
    free(d);
    return rc;
}

static int write_zeros(struct raw *r, uint64_t off, uint64_t len)
{
    unsigned char *z = calloc(1, ZERO_CHUNK);
    if (!z)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0;
    while (len && rc == 0) {
        size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;
        if (vd_pwrite_full(r->fd, z, n, off) < 0)
            rc = vd_err_errno(errno, "%s: writing zeros at offset %llu", r->path,
                              (unsigned long long)off);
        off += n;
        len -= n;
    }
    free(z);
    return rc;
}

/* Make [off, off+len) read as zeros: punch a hole in a file, BLKZEROOUT on
 * a block device (which the kernel guarantees to read back as zeros,
 * unlike a discard); where neither works, write zeros. */
static int r_zero(struct vdisk *d, uint64_t off, uint64_t len)
{
    struct raw *r = R(d);
    if (d->readonly)
        return vd_err_set(VD_E_READONLY, "%s: opened read-only", r->path);
    if (off > d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "%s: zeroing past the end", r->path);
    if (len == 0)
        return 0;
    r->dirty = 1;
    if (r->blkdev) {
        uint64_t range[2] = { off, len };
        if (off % 512 == 0 && len % 512 == 0 && ioctl(r->fd, BLKZEROOUT, range) == 0)
            return 0;
    } else if (!r->no_punch && off + len <= r->size) {
        if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                      (off_t)len) == 0)
            return 0;
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            r->no_punch = 1;
    }
    return write_zeros(r, off, len);
}

static const struct vdisk_ops raw_ops = {
    .pread = r_pread,
    .pwrite = r_pwrite,
    .flush = r_flush,
    .block_status = r_block_status,
    .info = r_info,
    .meta_get = r_meta_get,
    .meta_set = r_meta_set,
    .meta_keys = r_meta_keys,
    .close = r_close,
    .zero = r_zero,
    .transport = "file",
};

int vdisk_open_raw(const char *path, unsigned flags, struct vdisk **out)
{
    *out = NULL;
    int writable = !(flags & VMDK_OPEN_RDONLY);
    int fd;
    struct stat st;
    uint64_t size = 0;
    int rc = vd_open_disk_file(NULL, path, writable ? O_RDWR : O_RDONLY, &fd, &st);
    if (rc < 0)
        return rc;
    if (S_ISBLK(st.st_mode)) {
        /* Reopen O_EXCL for writing: refused while mounted or in use. */
        if (writable) {
            int xfd = open(path, O_RDWR | O_CLOEXEC | O_EXCL);
            if (xfd < 0) {
                rc = vd_err_errno(errno, "%s: cannot open the block device exclusively (is "
                                  "it mounted or in use?)", path);
            } else {
                close(fd);
                fd = xfd;
            }
        }
        if (rc == 0 && ioctl(fd, BLKGETSIZE64, &size) < 0)
            rc = vd_err_errno(errno, "%s: BLKGETSIZE64", path);
    } else if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: not a regular file or a block device", path);
    }
    if (rc == 0)
        rc = vd_lock_fd(fd, writable, path);
    size_t pl = strlen(path) + 1;
    struct raw *r = rc == 0 ? calloc(1, sizeof *r + pl) : NULL;
    struct vdisk *d = r ? calloc(1, sizeof *d) : NULL;
    if (rc == 0 && !d)
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    if (rc < 0) {
        free(r);
        close(fd);
        return rc;
    }
    r->fd = fd;
    r->blkdev = S_ISBLK(st.st_mode);
    r->size = size;
    r->dirty = writable;    /* the first flush syncs whatever came before the open */
    memcpy(r->path, path, pl);
    d->ops = &raw_ops;
    d->impl = r;
    d->capacity = (size + 511) / 512 * 512;
    d->readonly = !writable;
    *out = d;
    return 0;
}

int vdisk_is_raw(const struct vdisk *d)
{
    return d && d->ops == &raw_ops;
}

int vdisk_probe_vmdk(const char *path, int *is_vmdk)
{
    *is_vmdk = 0;
    int fd;
    int rc = vd_open_disk_file(NULL, path, O_RDONLY, &fd, NULL);
    if (rc < 0)
        return rc;
    unsigned char buf[4096];
    ssize_t n;
    do
        n = pread(fd, buf, sizeof buf, 0);
    while (n < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (n < 0)
        return vd_err_errno(err, "%s: reading", path);
    /* The magic numbers of the sparse formats: hosted sparse and
     * streamOptimized, COWD (vmfsSparse), seSparse. */
    if (n >= 4 && (!memcmp(buf, "KDMV", 4) || !memcmp(buf, "COWD", 4) ||
                   !memcmp(buf, "\xbe\xba\xfe\xca", 4))) {
        *is_vmdk = 1;
        return 0;
    }
    /* A text descriptor: no NUL byte, and the descriptor's header line or
     * its createType key. */
    if (n == 0 || memchr(buf, 0, (size_t)n))
        return 0;
    char text[sizeof buf + 1];
    memcpy(text, buf, (size_t)n);
    text[n] = '\0';
    if (strstr(text, "# Disk DescriptorFile") || strstr(text, "createType"))
        *is_vmdk = 1;
    return 0;
}
