/* link.c - open a link (descriptor + extents), rewrite its descriptor, and
 * manage its first-write transition (unclean flags, new CID) and locks. */
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/fileio.h"
#include "sparse_header.h"

#define MAX_TEXT_DESCRIPTOR (1u << 20)
#define MAX_EMBEDDED_SECTORS 20480u

int vd_lock_fd(int fd, int exclusive, const char *path)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES)
            return vd_err_set(VD_E_LOCKED, "%s: already locked by another open (%s)", path,
                              exclusive ? "cannot open for writing" : "it is open for writing");
        return vd_err_errno(errno, "%s: locking", path);
    }
    return 0;
}

/* Every local file of a link is opened here: fs's path policy first, never
 * blocking, regular files and block devices only (util/vfile.h). */
static int open_file(struct vd_fs *fs, const char *path, int writable, int direct, int *fdp,
                     struct stat *st)
{
    return vd_open_disk_file(fs, path, (writable ? O_RDWR : O_RDONLY) | (direct ? O_DIRECT : 0),
                             fdp, st);
}

static const struct { const char *name; enum vmdk_type type; } type_names[] = {
    { "monolithicSparse", VMDK_TYPE_MONOLITHIC_SPARSE },
    { "monolithicFlat", VMDK_TYPE_MONOLITHIC_FLAT },
    { "twoGbMaxExtentSparse", VMDK_TYPE_SPLIT_SPARSE },
    { "2GbMaxExtentSparse", VMDK_TYPE_SPLIT_SPARSE },
    { "twoGbMaxExtentFlat", VMDK_TYPE_SPLIT_FLAT },
    { "2GbMaxExtentFlat", VMDK_TYPE_SPLIT_FLAT },
    { "vmfs", VMDK_TYPE_VMFS_FLAT },
    { "vmfsPreallocated", VMDK_TYPE_VMFS_FLAT },
    { "vmfsEagerZeroedThick", VMDK_TYPE_VMFS_FLAT },
    { "vmfsThick", VMDK_TYPE_VMFS_FLAT },
    { "vmfsThin", VMDK_TYPE_VMFS_THIN },
    { "streamOptimized", VMDK_TYPE_STREAM_OPTIMIZED },
    { "vmfsSparse", VMDK_TYPE_VMFS_SPARSE },
    { "seSparse", VMDK_TYPE_SESPARSE },
    { "vmfsSeSparse", VMDK_TYPE_SESPARSE },
};

enum vmdk_type vmdk_type_from_name(const char *name)
{
    if (!name)
        return VMDK_TYPE_UNKNOWN;
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(name, type_names[i].name) == 0)
            return type_names[i].type;
    return VMDK_TYPE_UNKNOWN;
}

const char *vmdk_type_name(enum vmdk_type t)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == t)
            return type_names[i].name;
    return "unknown";
}

int link_readonly_err(const struct link *l)
{
    if (l->remote)
        return vd_err_set(VD_E_READONLY, "%s: disk is read through a read-only transport "
                          "(%s); it cannot be written", l->path, l->fs->ops->name);
    return vd_err_set(VD_E_READONLY, "%s: disk is open read-only", l->path);
}

/* Open extent i described by de; file_in reuses an already open file (the
 * monolithic file holding the embedded descriptor; the caller gives it to
 * the extent whatever happens). */
static int open_extent(struct link *l, struct extent *e, const struct desc_extent *de,
                       uint64_t start, struct vd_file *file_in, int direct)
{
    e->fd = -1;
    if (file_in) {
        e->file = file_in;
        e->fd = file_in->fd;
    }
    e->start = start;
    e->size = de->sectors * 512;
    e->access = de->access;
    int rw = l->writable && de->access == DESC_RW;
    if (strcmp(de->type, "ZERO") == 0) {
        e->kind = "ZERO";
        return extent_zero_open(e);
    }
    int sparse = strcmp(de->type, "SPARSE") == 0;
    int cowd = strcmp(de->type, "VMFSSPARSE") == 0;
    int sesparse = strcmp(de->type, "SESPARSE") == 0;
    if (strcmp(de->type, "FLAT") == 0)
        e->kind = "FLAT";
    else if (strcmp(de->type, "VMFS") == 0)
        e->kind = "VMFS";
    else if (sparse)
        e->kind = "SPARSE";
    else if (cowd)
        e->kind = "VMFSSPARSE";
    else if (sesparse)
        e->kind = "SESPARSE";
    else if (!strcmp(de->type, "VMFSRDM") || !strcmp(de->type, "VMFSRAW"))
        return vd_err_set(VD_E_UNSUPPORTED, "%s: %s extents are not supported yet", l->path,
                          de->type);
    else
        return vd_err_set(VD_E_CORRUPT, "%s: unknown extent type %s", l->path, de->type);

    if (file_in) {
        e->path = vd_strdup(l->path);
        if (!e->path)
            return vd_err_set(VD_E_NOMEM, "out of memory");
    } else {
        e->path = vd_path_join(l->dir, de->file);
        if (!e->path)
            return vd_err_set(VD_E_NOMEM, "out of memory");
        if (sesparse && rw)     /* before opening (and locking) it read-write */
            return vd_err_set(VD_E_READONLY, "%s: seSparse extents can only be read; open "
                              "the disk read-only", e->path);
        int rc;
        if (l->remote) {
            if ((rc = l->fs->ops->open(l->fs, e->path, &e->file)) < 0)
                return rc;
            e->own_fd = 1;
            e->fd = -1;
        } else {
            int fd;
            rc = open_file(l->fs, e->path, rw, direct && !sparse && !cowd && !sesparse, &fd,
                           NULL);
            if (rc < 0)
                return rc;
            if ((rc = vd_file_from_fd(fd, 1, e->path, &e->file)) < 0)
                return rc;
            e->own_fd = 1;
            e->fd = fd;
            if (l->lock && (rc = vd_lock_fd(e->fd, rw, e->path)) < 0)
                return rc;
        }
    }
    e->writable = rw;
    if (sparse) {
        struct kdmv_header kh;
        unsigned char hb[512];
        if (vd_file_pread(e->file, hb, sizeof hb, 0, 1) == 0 &&
            kdmv_header_decode(hb, e->path, "header", &kh) == 0 &&
            (kh.flags & KDMV_FLAG_COMPRESSED))
            return extent_stream_open(e);
        return extent_sparse_open(e);
    }
    if (cowd)
        return extent_cowd_open(e);
    if (sesparse)
        return extent_sesparse_open(e);
    e->file_off = de->has_offset ? de->offset * 512 : 0;
    return extent_flat_open(e);
}

static int read_text_descriptor(struct link *l, struct vd_file *f)
{
    uint64_t fsize;
    int rc = vd_file_size(f, &fsize);
    if (rc < 0)
        return rc;
    if (fsize > MAX_TEXT_DESCRIPTOR)
        return vd_err_set(VD_E_CORRUPT, "%s: not a VMDK descriptor (%" PRIu64 " bytes is too "
                          "large for one and it has no sparse header)", l->path, fsize);
    l->desc_bytes = fsize;
    size_t n = (size_t)fsize;
    char *text = malloc(n + 1);
    if (!text)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    if ((rc = vd_file_pread(f, text, n, 0, 1)) < 0) {
        rc = vd_file_read_err(f, rc, "%s: reading descriptor", l->path);
        free(text);
        return rc;
    }
    rc = desc_parse(&l->desc, text, n, l->path);
    free(text);
    return rc;
}

static int read_embedded_descriptor(struct link *l, struct vd_file *f)
{
    struct sparse_header_info hi;
    int rc = sparse_read_header_info(f, l->path, &hi);
    if (rc < 0)
        return rc;
    if (hi.desc_off == 0)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: sparse extent without an embedded "
                          "descriptor; open the descriptor file that names it", l->path);
    uint64_t fsize;
    if ((rc = vd_file_size(f, &fsize)) < 0)
        return rc;
    if (hi.desc_size == 0 || hi.desc_size > MAX_EMBEDDED_SECTORS)
        return vd_err_set(VD_E_CORRUPT, "%s: embedded descriptor size %" PRIu64 " sectors is "
                          "invalid", l->path, hi.desc_size);
    if (hi.desc_off >= fsize / 512)
        return vd_err_set(VD_E_CORRUPT, "%s: embedded descriptor at sector %" PRIu64
                          " is past end of file", l->path, hi.desc_off);
    l->embedded = 1;
    l->desc_area_off = hi.desc_off * 512;
    l->desc_area_len = hi.desc_size * 512;
    uint64_t avail = fsize - l->desc_area_off;
    size_t n = (size_t)(avail < l->desc_area_len ? avail : l->desc_area_len);
    char *text = malloc(n + 1);
    if (!text)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    if ((rc = vd_file_pread(f, text, n, l->desc_area_off, 1)) < 0) {
        rc = vd_file_read_err(f, rc, "%s: reading embedded descriptor", l->path);
        free(text);
        return rc;
    }
    rc = desc_parse(&l->desc, text, n, l->path);
    free(text);
    return rc;
}

int link_open_fs(struct vd_fs *fs, const char *path, int writable, int lock, int direct,
                 struct link **out)
{
    struct link *l = calloc(1, sizeof *l);
    if (!l)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    pthread_mutex_init(&l->wlock, NULL);
    l->fs = fs ? fs : vd_fs_local();
    l->remote = !vd_fs_is_local(l->fs);
    if (l->remote)              /* read-only, no locks, no O_DIRECT */
        writable = lock = direct = 0;
    l->desc_fd = -1;
    l->writable = writable;
    l->lock = lock;
    l->path = vd_strdup(path);
    l->dir = vd_path_dir(path);
    struct vd_file *f = NULL;   /* the file at path until a link or extent owns it */
    int rc;
    uint64_t fsize = 0;
    if (!l->path || !l->dir) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto fail;
    }
    if (l->remote) {
        if ((rc = fs->ops->open(fs, path, &f)) < 0 || (rc = vd_file_size(f, &fsize)) < 0)
            goto fail;
    } else {
        int fd;
        struct stat st;
        if ((rc = open_file(l->fs, path, writable, 0, &fd, &st)) < 0)
            goto fail;
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        fsize = (uint64_t)st.st_size;
        if (lock && (rc = vd_lock_fd(fd, writable, path)) < 0) {
            close(fd);
            goto fail;
        }
        /* A repair killed half way left its undo journal (maint_journal.c):
         * the files may be half repaired until CheckRepair rolls it back. */
        char *jp = lock ? vd_asprintf("%s.repair-undo", path) : NULL;
        struct stat jst;
        if (jp && lstat(jp, &jst) == 0) {
            rc = vd_err_set(VD_E_NEEDSREPAIR, "%s: a repair of this disk was interrupted "
                            "(%s is left); run CheckRepair with repair to roll it back",
                            path, jp);
            free(jp);
            close(fd);
            goto fail;
        }
        free(jp);
        if ((rc = vd_file_from_fd(fd, 1, path, &f)) < 0)
            goto fail;
    }
    unsigned char magic[4] = { 0 };
    if (fsize >= 4 && (rc = vd_file_pread(f, magic, 4, 0, 1)) < 0) {
        rc = vd_file_read_err(f, rc, "%s: reading", path);
        goto fail;
    }
    if (!memcmp(magic, "KDMV", 4)) {
        rc = read_embedded_descriptor(l, f);
    } else if (!memcmp(magic, "COWD", 4)) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: a vmfsSparse (COWD) extent; open the "
                        "descriptor file that names it", path);
    } else if (!memcmp(magic, "\xbe\xba\xfe\xca", 4)) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: a seSparse extent; open the descriptor file "
                        "that names it", path);
    } else {
        rc = read_text_descriptor(l, f);
        if (rc == 0 && !l->remote) {
            l->desc_file = f;       /* kept open (and locked) for rewrites */
            l->desc_fd = f->fd;
            f = NULL;
        }
    }
    if (rc < 0)
        goto fail;
    if (!l->embedded) {         /* a remote descriptor file is not needed any more */
        vd_file_close(f);
        f = NULL;
    }

    size_t n = desc_num_extents(&l->desc);
    if (n == 0) {
        rc = vd_err_set(VD_E_CORRUPT, "%s: descriptor lists no extents", path);
        goto fail;
    }
    l->ext = calloc(n, sizeof *l->ext);
    if (!l->ext) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto fail;
    }
    uint64_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const struct desc_extent *de = desc_extent(&l->desc, i);
        int reuse = l->embedded && i == 0;
        if (reuse && strcmp(de->type, "SPARSE") != 0) {
            rc = vd_err_set(VD_E_CORRUPT, "%s: embedded descriptor's first extent is %s, "
                            "not SPARSE", path, de->type);
            goto fail;
        }
        if (de->sectors > (UINT64_MAX >> 10) / 2 - start / 512) {
            rc = vd_err_set(VD_E_CORRUPT, "%s: extent sizes overflow", path);
            goto fail;
        }
        l->next = i + 1;
        rc = open_extent(l, &l->ext[i], de, start, reuse ? f : NULL, direct);
        if (reuse) {
            l->ext[i].own_fd = 1;   /* the link's only handle on that file */
            f = NULL;
        }
        if (rc < 0)
            goto fail;
        start += l->ext[i].size;
    }
    l->capacity = start;

    const char *ct = desc_get(&l->desc, "createType");
    l->create_type = vd_strdup(ct ? ct : "custom");
    l->type = vmdk_type_from_name(ct);
    const char *thin = desc_get(&l->desc, "ddb.thinProvisioned");
    if (l->type == VMDK_TYPE_VMFS_FLAT && thin && strcmp(thin, "1") == 0)
        l->type = VMDK_TYPE_VMFS_THIN;
    rc = desc_get_u32_hex(&l->desc, "CID", &l->cid);
    if (rc == -VD_E_NOTFOUND_KEY)
        l->cid = 0xfffffffeu;
    else if (rc < 0)
        goto fail_prefix;
    rc = desc_get_u32_hex(&l->desc, "parentCID", &l->parent_cid);
    if (rc == -VD_E_NOTFOUND_KEY)
        l->parent_cid = 0xffffffffu;
    else if (rc < 0)
        goto fail_prefix;
    *out = l;
    return 0;

fail_prefix:
    vd_err_prefix("%s", path);
fail:
    vd_file_close(f);
    link_close(l);
    return rc;
}

int link_open(const char *path, int writable, int lock, int direct, struct link **out)
{
    return link_open_fs(vd_fs_local(), path, writable, lock, direct, out);
}

void link_close(struct link *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->next; i++)
        extent_destroy(&l->ext[i]);
    free(l->ext);
    vd_file_close(l->desc_file);    /* closes desc_fd */
    desc_free(&l->desc);
    pthread_mutex_destroy(&l->wlock);
    free(l->create_type);
    free(l->path);
    free(l->dir);
    free(l);
}

struct extent *link_find_extent(struct link *l, uint64_t off)
{
    size_t lo = 0, hi = l->next;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct extent *e = &l->ext[mid];
        if (off < e->start)
            hi = mid;
        else if (off >= e->start + e->size)
            lo = mid + 1;
        else
            return e;
    }
    return NULL;
}

static int write_separate_descriptor(struct link *l, const char *text, size_t len)
{
    char *tmp = vd_asprintf("%s.tmp-XXXXXX", l->path);
    if (!tmp)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rc = vd_err_errno(errno, "%s: creating temporary descriptor", l->path);
        free(tmp);
        return rc;
    }
    int rc = 0;
    struct stat st;
    if (fstat(l->desc_fd, &st) == 0)
        (void)fchmod(fd, st.st_mode & 07777);
    if (vd_pwrite_full(fd, text, len, 0) < 0 || fsync(fd) < 0) {
        rc = vd_err_errno(errno, "%s: writing temporary descriptor", tmp);
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    if (l->lock && (rc = vd_lock_fd(fd, 1, tmp)) < 0) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    if (rename(tmp, l->path) < 0) {
        rc = vd_err_errno(errno, "%s: replacing descriptor", l->path);
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    free(tmp);
    /* The new file is already locked through fd; it replaces the old one. */
    close(l->desc_fd);
    l->desc_fd = l->desc_file->fd = fd;
    if (fstat(fd, &st) == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
    }
    int dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int link_write_descriptor(struct link *l)
{
    if (!l->writable)
        return link_readonly_err(l);
    size_t len;
    char *text = desc_format(&l->desc, &len);
    if (!text)
        return -VD_E_NOMEM;
    int rc = 0;
    if (l->embedded) {
        if (len > l->desc_area_len) {
            rc = vd_err_set(VD_E_NOSPACE, "%s: descriptor needs %zu bytes but the embedded "
                            "area holds %" PRIu64, l->path, len, l->desc_area_len);
        } else {
            char *area = calloc(1, l->desc_area_len);
            if (!area) {
                rc = vd_err_set(VD_E_NOMEM, "out of memory");
            } else {
                memcpy(area, text, len);
                if (vd_pwrite_full(l->ext[0].fd, area, l->desc_area_len, l->desc_area_off) < 0 ||
                    fdatasync(l->ext[0].fd) < 0)
                    rc = vd_err_errno(errno, "%s: writing embedded descriptor", l->path);
                free(area);
            }
        }
    } else {
        rc = write_separate_descriptor(l, text, len);
    }
    free(text);
    return rc;
}

int link_begin_write(struct link *l)
{
    if (atomic_load(&l->write_started))
        return 0;
    pthread_mutex_lock(&l->wlock);
    int rc = 0;
    if (atomic_load(&l->write_started))
        goto out;
    for (size_t i = 0; i < l->next; i++) {
        struct extent *e = &l->ext[i];
        if (e->writable && e->ops->begin_write && (rc = e->ops->begin_write(e)) < 0)
            goto out;
    }
    /* A new content ID before the first data write, as VMware does. */
    uint32_t cid = vd_random_cid();
    char buf[16];
    snprintf(buf, sizeof buf, "%08x", cid);
    char *old = vd_strdup(desc_get(&l->desc, "CID"));
    char *oldlong = vd_strdup(desc_get(&l->desc, "ddb.longContentID"));
    if ((rc = desc_set(&l->desc, "CID", buf)) < 0)
        goto restore;
    if (oldlong && strlen(oldlong) == 32) {
        char nl[40];
        snprintf(nl, sizeof nl, "%.24s%08x", oldlong, cid);
        if ((rc = desc_set(&l->desc, "ddb.longContentID", nl)) < 0)
            goto restore;
    }
    if ((rc = link_write_descriptor(l)) < 0)
        goto restore;
    l->cid = cid;
    atomic_store(&l->write_started, 1);
    free(old);
    free(oldlong);
    goto out;
restore:
    if (old)
        desc_set(&l->desc, "CID", old);
    if (oldlong)
        desc_set(&l->desc, "ddb.longContentID", oldlong);
    free(old);
    free(oldlong);
out:
    pthread_mutex_unlock(&l->wlock);
    return rc;
}

int link_flush(struct link *l)
{
    int rc = 0;
    for (size_t i = 0; i < l->next; i++) {
        struct extent *e = &l->ext[i];
        if (e->fd >= 0 && atomic_exchange(&e->dirty, 0)) {
            int r = e->ops->flush ? e->ops->flush(e)
                                  : fdatasync(e->fd) < 0
                                        ? vd_err_errno(errno, "%s: flushing", e->path) : 0;
            if (r < 0) {
                atomic_store(&e->dirty, 1);
                if (rc == 0)
                    rc = r;
            }
        }
    }
    return rc;
}

int link_end_write(struct link *l)
{
    if (!atomic_load(&l->write_started))
        return 0;
    int rc = 0;
    for (size_t i = 0; i < l->next; i++) {
        struct extent *e = &l->ext[i];
        if (e->writable && e->ops->end_write) {
            int r = e->ops->end_write(e);
            if (r < 0 && rc == 0)
                rc = r;
        }
    }
    return rc;
}

/* A remote link: the files' sizes (their allocation is not known). */
static uint64_t remote_bytes(const struct link *l)
{
    uint64_t total = l->embedded ? 0 : l->desc_bytes, size;
    for (size_t i = 0; i < l->next; i++) {
        const struct extent *e = &l->ext[i];
        if (!e->file || !e->own_fd)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (l->ext[j].path && e->path && strcmp(l->ext[j].path, e->path) == 0)
                seen = 1;
        if (!seen && vd_file_size(e->file, &size) == 0)
            total += size;
    }
    return total;
}

uint64_t link_allocated_bytes(const struct link *l)
{
    if (l->remote)
        return remote_bytes(l);
    uint64_t total = 0;
    struct stat st;
    if (!l->embedded && l->desc_fd >= 0 && fstat(l->desc_fd, &st) == 0)
        total += (uint64_t)st.st_blocks * 512;
    for (size_t i = 0; i < l->next; i++) {
        const struct extent *e = &l->ext[i];
        if (e->fd < 0 || !e->own_fd)
            continue;
        /* Count a file once even if several extents use it. */
        int seen = 0;
        for (size_t j = 0; j < i; j++)
            if (l->ext[j].path && e->path && strcmp(l->ext[j].path, e->path) == 0)
                seen = 1;
        if (!seen && fstat(e->fd, &st) == 0)
            total += (uint64_t)st.st_blocks * 512;
    }
    return total;
}
