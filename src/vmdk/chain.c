/* chain.c - a disk is a chain of links: the opened link on top, its
 * parents below.  Reads fall through holes to the parent; writes go to the
 * top link, copying the untouched part of a new grain from below. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "link.h"
#include "maint_priv.h"
#include "vmdk.h"
#include "../util/err.h"
#include "../util/fileio.h"
#include "../util/vfile.h"

#define MAX_LINKS VMDK_MAX_LINKS

struct vmdk_disk {
    struct link *links[MAX_LINKS];
    int nlinks;
    unsigned flags;
};

/* Does p exist?  1, 0, or (a remote file system that cannot tell) a
 * negative vd_err. */
static int path_exists(struct vd_fs *fs, const char *p)
{
    if (vd_fs_is_local(fs)) {
        /* Under a path policy a refused path is not even looked at: for
         * this file system it does not exist. */
        if (vd_fs_check(fs, p) < 0) {
            vd_err_clear();
            return 0;
        }
        return access(p, F_OK) == 0;
    }
    return fs->ops->exists(fs, p);
}

/* The parent's path; *found: whether it exists (always 1 when local: the
 * caller's stat tells). */
static int resolve_parent(struct vd_fs *fs, const struct link *child, char **out, int *found)
{
    const char *hint = desc_get(&child->desc, "parentFileNameHint");
    char *p = vd_path_join(child->dir, hint);
    if (!p)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int ex = path_exists(fs, p);
    if (ex < 0) {
        free(p);
        return ex;
    }
    if (!ex) {
        /* A hint written on another host (C:\VMs\base.vmdk, a VMFS path or
         * a datastore path): fall back to its base name in the child's
         * directory. */
        const char *b = vd_path_base(hint);     /* "[ds] base.vmdk": base.vmdk */
        for (const char *c = b; *c; c++)
            if (*c == '/' || *c == '\\')
                b = c + 1;
        char *alt = vd_path_join(child->dir, b);
        int aex = alt ? path_exists(fs, alt) : 0;
        if (aex < 0) {
            free(alt);
            free(p);
            return aex;
        }
        if (aex) {
            free(p);
            p = alt;
            ex = 1;
        } else {
            free(alt);
        }
    }
    *out = p;
    *found = ex;
    return 0;
}

int vmdk_open(const char *path, unsigned flags, vmdk_disk **out)
{
    return vmdk_open_fs(path, flags, vd_fs_local(), out);
}

int vmdk_open_fs(const char *path, unsigned flags, struct vd_fs *fs, vmdk_disk **out)
{
    vd_err_clear();
    if (!path || !*path || !out)
        return vd_err_set(VD_E_INVAL, "no disk path given");
    if (!fs)
        fs = vd_fs_local();
    int remote = !vd_fs_is_local(fs);
    if (remote)     /* a read-only transport: no writes, locks or O_DIRECT */
        flags = (flags | VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK) & ~(unsigned)VMDK_OPEN_DIRECT;
    vmdk_disk *d = calloc(1, sizeof *d);
    if (!d)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    d->flags = flags;
    int lock = !(flags & VMDK_OPEN_NOLOCK);
    int direct = (flags & VMDK_OPEN_DIRECT) != 0;
    int rc = link_open_fs(fs, path, !(flags & VMDK_OPEN_RDONLY), lock, direct, &d->links[0]);
    if (rc < 0)
        goto fail;
    d->nlinks = 1;
    while (!(flags & VMDK_OPEN_SINGLE_LINK)) {
        struct link *child = d->links[d->nlinks - 1];
        if (!desc_get(&child->desc, "parentFileNameHint"))
            break;
        if (d->nlinks == MAX_LINKS) {
            rc = vd_err_set(VD_E_PARENT_LOOP, "%s: chain is longer than %d links", path,
                            MAX_LINKS);
            goto fail;
        }
        char *ppath = NULL;
        int found = 0;
        if ((rc = resolve_parent(fs, child, &ppath, &found)) < 0)
            goto fail;
        int loop = 0;
        if (remote) {
            /* No stat(): the file system's own path names a file. */
            if (!found) {
                rc = vd_err_set(VD_E_NOTFOUND, "%s: parent disk %s: No such file or directory",
                                child->path, ppath);
                free(ppath);
                goto fail;
            }
            for (int i = 0; i < d->nlinks; i++)
                loop |= strcmp(d->links[i]->path, ppath) == 0;
        } else {
            struct stat st;
            if (!found && (rc = vd_fs_check(fs, ppath)) < 0) {
                vd_err_prefix("%s: parent", child->path);
                free(ppath);
                goto fail;
            }
            if (stat(ppath, &st) < 0) {
                rc = vd_err_errno(errno, "%s: parent disk %s", child->path, ppath);
                free(ppath);
                goto fail;
            }
            for (int i = 0; i < d->nlinks; i++)
                loop |= d->links[i]->dev == st.st_dev && d->links[i]->ino == st.st_ino;
        }
        if (loop) {
            rc = vd_err_set(VD_E_PARENT_LOOP, "%s: parent %s is already a link of this "
                            "chain (parent loop)", child->path, ppath);
            free(ppath);
            goto fail;
        }
        struct link *parent;
        rc = link_open_fs(fs, ppath, 0, lock, direct, &parent);
        if (rc < 0) {
            vd_err_prefix("%s: parent", child->path);
            free(ppath);
            goto fail;
        }
        free(ppath);
        d->links[d->nlinks++] = parent;
        if (!(flags & VMDK_OPEN_NOCID) && child->parent_cid != parent->cid) {
            rc = vd_err_set(VD_E_CID_MISMATCH, "%s: parentCID %08x does not match CID %08x "
                            "of parent %s (the parent changed after this child was created)",
                            child->path, child->parent_cid, parent->cid, parent->path);
            goto fail;
        }
    }
    *out = d;
    return 0;
fail:
    for (int i = 0; i < d->nlinks; i++)
        link_close(d->links[i]);
    free(d);
    return rc;
}

int vmdk_flush(vmdk_disk *d)
{
    return link_flush(d->links[0]);
}

int vmdk_close(vmdk_disk *d)
{
    if (!d)
        return 0;
    int rc = 0;
    struct link *top = d->nlinks ? d->links[0] : NULL;   /* none after vmdk_attach */
    if (top && atomic_load(&top->write_started)) {
        rc = link_flush(top);
        if (rc == 0)
            rc = link_end_write(top);
    }
    for (int i = 0; i < d->nlinks; i++)
        link_close(d->links[i]);
    free(d);
    return rc;
}

uint64_t vmdk_capacity(const vmdk_disk *d) { return d->links[0]->capacity; }
int vmdk_is_readonly(const vmdk_disk *d) { return !d->links[0]->writable; }
int vmdk_num_links(const vmdk_disk *d) { return d->nlinks; }

static int check_range(const vmdk_disk *d, size_t len, uint64_t off)
{
    uint64_t cap = d->links[0]->capacity;
    if (off > cap || len > cap - off)
        return vd_err_set(VD_E_RANGE, "%s: range %" PRIu64 "+%zu is past the capacity "
                          "(%" PRIu64 " bytes)", d->links[0]->path, off, len, cap);
    return 0;
}

/* Read [off, off+len) as seen from link li downwards. */
static int read_from(vmdk_disk *d, int li, unsigned char *buf, uint64_t len, uint64_t off)
{
    while (len > 0) {
        if (li >= d->nlinks) {
            memset(buf, 0, len);
            return 0;
        }
        struct link *l = d->links[li];
        if (off >= l->capacity) {   /* a parent smaller than its child */
            memset(buf, 0, len);
            return 0;
        }
        struct extent *e = link_find_extent(l, off);
        uint64_t rel = off - e->start;
        uint64_t want = len < e->size - rel ? len : e->size - rel;
        struct extent_map m;
        int rc = e->ops->map(e, rel, want, &m);
        if (rc < 0)
            return rc;
        switch (m.kind) {
        case MAP_DATA:
            if (e->access == DESC_NOACCESS)
                return vd_err_set(VD_E_IO, "%s: extent is marked NOACCESS", e->path);
            if ((rc = vd_file_pread(e->file, buf, m.len, m.file_off, 0)) < 0)
                return vd_file_read_err(e->file, rc, "%s: reading at offset %" PRIu64, e->path,
                                        m.file_off);
            break;
        case MAP_EXT:
            if ((rc = e->ops->read(e, rel, buf, m.len)) < 0)
                return rc;
            break;
        case MAP_ZERO:
            memset(buf, 0, m.len);
            break;
        case MAP_HOLE:
            if ((rc = read_from(d, li + 1, buf, m.len, off)) < 0)
                return rc;
            break;
        }
        buf += m.len;
        off += m.len;
        len -= m.len;
    }
    return 0;
}

int vmdk_pread(vmdk_disk *d, void *buf, size_t len, uint64_t off)
{
    int rc = check_range(d, len, off);
    if (rc < 0)
        return rc;
    return read_from(d, 0, buf, len, off);
}

struct cow_ctx {
    vmdk_disk *d;
    int li;        /* first link below the one written */
};

static int cow_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct cow_ctx *c = ctx;
    uint64_t cap = c->d->links[c->li - 1]->capacity;
    size_t in = off >= cap ? 0 : (len < cap - off ? len : (size_t)(cap - off));
    memset((char *)buf + in, 0, len - in);
    if (c->li >= c->d->nlinks) {
        if (desc_get(&c->d->links[c->li - 1]->desc, "parentFileNameHint"))
            return vd_err_set(VD_E_UNSUPPORTED, "%s: a partial-grain write into a child "
                              "opened as a single link needs its parent; open the chain",
                              c->d->links[c->li - 1]->path);
        memset(buf, 0, in);
        return 0;
    }
    return read_from(c->d, c->li, buf, in, off);
}

static int status_from(vmdk_disk *d, int li, int single, uint64_t off, uint64_t len,
                       uint64_t *run, int *status);

/* ---- writes of zeros ------------------------------------------------- *
 *
 * A restore writes every block of an image, the empty ones too (nbdkit has
 * no zero call for VDDK, and backup tools write what they read).  So that
 * thin disks stay thin, a write whose data is all zero stores nothing where
 * nothing would change: unallocated grains stay unallocated when the links
 * below read zeros there, become zeroed-grain entries when the links below
 * have data (where the extent kind has such entries), and holes of thin
 * flat files are left alone or punched. */

/* The length of the prefix of buf[0..len) whose units (unit bytes,
 * aligned at multiples of unit counted from pos, the offset of buf[0])
 * are all zero or all hold data; *zero says which. */
static uint64_t zero_class_run(const unsigned char *buf, uint64_t len, uint64_t pos,
                               uint64_t unit, int *zero)
{
    uint64_t n = unit - pos % unit;
    if (n > len)
        n = len;
    *zero = vd_is_zero(buf, n);
    while (n < len) {
        uint64_t k = len - n < unit ? len - n : unit;
        if (vd_is_zero(buf + n, k) != *zero)
            break;
        n += k;
    }
    return n;
}

/* Is the link thin-provisioned (vmfsThin, or a disk that says so)? */
static int link_is_thin(const struct link *l)
{
    const char *t = desc_get(&l->desc, "ddb.thinProvisioned");
    return (l->create_type && strcmp(l->create_type, "vmfsThin") == 0) ||
           (t && strcmp(t, "1") == 0);
}

/* Zeros for [file_off, file_off+len) of a flat extent's file.  Nothing is
 * written where the file has a hole; in a thin link the block-aligned
 * part of a range holding data is punched out. */
static int flat_write_zeros(const struct link *l, struct extent *e, const void *zeros,
                            uint64_t len, uint64_t file_off)
{
    off_t data = lseek(e->fd, (off_t)file_off, SEEK_DATA);
    if (data < 0 && errno == ENXIO)
        return 0;                            /* a hole up to the end of the file */
    if (data >= 0 && (uint64_t)data >= file_off + len)
        return 0;                            /* a hole over the whole range */
    if (link_is_thin(l)) {
        const uint64_t blk = 4096;
        uint64_t a = (file_off + blk - 1) / blk * blk, b = (file_off + len) / blk * blk;
        if (a < b && fallocate(e->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a,
                               (off_t)(b - a)) == 0) {
            if (a > file_off && vd_pwrite_full(e->fd, zeros, a - file_off, file_off) < 0)
                return vd_err_errno(errno, "%s: writing at offset %" PRIu64, e->path,
                                    file_off);
            if (file_off + len > b && vd_pwrite_full(e->fd, zeros, file_off + len - b, b) < 0)
                return vd_err_errno(errno, "%s: writing at offset %" PRIu64, e->path, b);
            return 0;
        }
        /* No punching here (file system, block device): write the zeros. */
    }
    if (vd_pwrite_full(e->fd, zeros, len, file_off) < 0)
        return vd_err_errno(errno, "%s: writing at offset %" PRIu64, e->path, file_off);
    return 0;
}

/* Store zeros (zeros: len zero bytes) over [off, off+len) of the disk,
 * which map() found to be one run of kind (HOLE or ZERO) in extent e of
 * the top link, rel being off relative to the extent. */
static int sparse_write_zeros(vmdk_disk *d, struct extent *e, enum map_kind kind,
                              const unsigned char *zeros, uint64_t len, uint64_t off,
                              uint64_t rel, struct cow_ctx *cc)
{
    if (kind == MAP_ZERO)
        return 0;                             /* reads as zeros already */
    struct link *top = d->links[0];
    /* What the links below hold is known unless a child was opened alone. */
    int below_known = d->nlinks > 1 || !desc_get(&top->desc, "parentFileNameHint");
    uint64_t gb = e->grain_bytes;
    unsigned char *tmp = NULL;
    int rc = 0;
    for (uint64_t done = 0; rc == 0 && done < len;) {
        uint64_t o = off + done, r = rel + done, run = len - done;
        int st = VMDK_DATA;
        if (below_known && d->nlinks > 1 && o < d->links[1]->capacity) {
            if ((rc = status_from(d, 1, 0, o, run, &run, &st)) < 0)
                break;
        } else if (below_known) {
            st = VMDK_HOLE;                   /* past the parent, or no parent */
        }
        if (st != VMDK_DATA) {
            done += run;
            continue;
        }
        /* The links below have data: a partial grain stays untouched if they
         * read zeros in that part; whole grains become zeroed grains. */
        uint64_t head = gb && r % gb ? gb - r % gb : 0;
        if (head > run)
            head = run;
        uint64_t whole = gb ? (run - head) / gb * gb : 0;
        if (head == 0 && whole > 0 && e->ops->zero_grains) {
            rc = e->ops->zero_grains(e, r, whole);
            done += whole;
            continue;
        }
        uint64_t piece = head ? head : whole ? whole : run;
        if (below_known && piece < gb) {
            if (!tmp && !(tmp = malloc(gb))) {
                rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", top->path);
                break;
            }
            if ((rc = read_from(d, 1, tmp, piece, o)) < 0)
                break;
            if (vd_is_zero(tmp, piece)) {
                done += piece;
                continue;
            }
        }
        rc = e->ops->write_alloc(e, r, zeros + done, piece, cow_read, cc);
        done += piece;
    }
    free(tmp);
    return rc;
}

int vmdk_pwrite(vmdk_disk *d, const void *buf, size_t len, uint64_t off)
{
    struct link *l = d->links[0];
    if (!l->writable)
        return link_readonly_err(l);
    int rc = check_range(d, len, off);
    if (rc < 0 || len == 0)
        return rc;
    /* Refuse before any change (no new CID, no unclean flag) if part of
     * the range cannot be written or its metadata is bad: mapping the whole
     * range loads and validates every grain table it touches. */
    for (uint64_t o = off; o < off + len;) {
        struct extent *e = link_find_extent(l, o);
        uint64_t rel = o - e->start;
        uint64_t want = off + len - o < e->size - rel ? off + len - o : e->size - rel;
        if (e->access != DESC_RW)
            return vd_err_set(VD_E_READONLY, "%s: extent at offset %" PRIu64 " is %s", l->path,
                              e->start, e->access == DESC_RDONLY ? "RDONLY" : "NOACCESS");
        if (strcmp(e->kind, "ZERO") == 0)
            return vd_err_set(VD_E_READONLY, "%s: cannot write into a ZERO extent (offset %"
                              PRIu64 ")", l->path, e->start);
        if (rel + want > e->write_limit)
            return vd_err_set(VD_E_CORRUPT, "%s: offset %" PRIu64 " is past the capacity in "
                              "the sparse header of %s (descriptor and header disagree)",
                              l->path, o, e->path);
        struct extent_map m;
        if ((rc = e->ops->map(e, rel, want, &m)) < 0)
            return rc;
        o += m.len;
    }
    if ((rc = link_begin_write(l)) < 0)
        return rc;
    const unsigned char *p = buf;
    struct cow_ctx cc = { d, 1 };
    while (len > 0) {
        struct extent *e = link_find_extent(l, off);
        uint64_t rel = off - e->start;
        uint64_t want = len < e->size - rel ? len : e->size - rel;
        struct extent_map m;
        if ((rc = e->ops->map(e, rel, want, &m)) < 0)
            return rc;
        /* Zero and non-zero parts of the data go their own ways, in units of
         * grains (64 KiB in flat extents). */
        int zero;
        m.len = zero_class_run(p, m.len, rel, e->grain_bytes ? e->grain_bytes : 65536, &zero);
        if (m.kind == MAP_DATA && zero && !e->ops->write_alloc) {
            if ((rc = flat_write_zeros(l, e, p, m.len, m.file_off)) < 0)
                return rc;
        } else if (m.kind == MAP_DATA) {
            if (vd_pwrite_full(e->fd, p, m.len, m.file_off) < 0)
                return vd_err_errno(errno, "%s: writing at offset %" PRIu64, e->path,
                                    m.file_off);
        } else if (zero && m.kind != MAP_EXT && e->ops->write_alloc) {
            if ((rc = sparse_write_zeros(d, e, m.kind, p, m.len, off, rel, &cc)) < 0)
                return rc;
        } else if (e->ops->write_alloc) {
            rc = e->ops->write_alloc(e, rel, p, m.len, cow_read, &cc);
            if (rc < 0)
                return rc;
        } else {
            return vd_err_set(VD_E_READONLY, "%s: extent cannot store data", e->path);
        }
        atomic_store(&e->dirty, 1);
        p += m.len;
        off += m.len;
        len -= m.len;
    }
    return 0;
}

/* Status of a prefix of [off, off+len) seen from link li. */
static int status_from(vmdk_disk *d, int li, int single, uint64_t off, uint64_t len,
                       uint64_t *run, int *status)
{
    struct link *l = d->links[li];
    if (off >= l->capacity) {
        *run = len;
        *status = VMDK_HOLE;
        return 0;
    }
    struct extent *e = link_find_extent(l, off);
    uint64_t rel = off - e->start;
    uint64_t want = len < e->size - rel ? len : e->size - rel;
    struct extent_map m;
    int rc = e->ops->map(e, rel, want, &m);
    if (rc < 0)
        return rc;
    if (m.kind == MAP_HOLE && !single && li + 1 < d->nlinks)
        return status_from(d, li + 1, single, off, m.len, run, status);
    /* A thin flat file's holes read as zeros and store nothing. */
    if (m.kind == MAP_DATA && !e->ops->write_alloc && e->fd >= 0 && link_is_thin(l)) {
        off_t data = lseek(e->fd, (off_t)m.file_off, SEEK_DATA);
        if (data < 0 && errno != ENXIO)
            return vd_err_errno(errno, "%s: SEEK_DATA at %" PRIu64, e->path, m.file_off);
        if (data < 0 || (uint64_t)data > m.file_off) {
            uint64_t hole = data < 0 ? m.len : (uint64_t)data - m.file_off;
            *run = hole < m.len ? hole : m.len;
            *status = VMDK_ZERO;
            return 0;
        }
        off_t hole = lseek(e->fd, (off_t)m.file_off, SEEK_HOLE);
        if (hole > data && (uint64_t)(hole - data) < m.len)
            m.len = (uint64_t)(hole - data);
    }
    *run = m.len;
    *status = m.kind == MAP_ZERO ? VMDK_ZERO : m.kind == MAP_HOLE ? VMDK_HOLE : VMDK_DATA;
    return 0;
}

int vmdk_block_status(vmdk_disk *d, uint64_t off, uint64_t len, int single_link,
                      uint64_t *run, int *status)
{
    if (len == 0)
        return vd_err_set(VD_E_INVAL, "block status of an empty range");
    int rc = check_range(d, len, off);
    if (rc < 0)
        return rc;
    uint64_t r;
    int st;
    if ((rc = status_from(d, 0, single_link, off, len, &r, &st)) < 0)
        return rc;
    /* Merge following pieces with the same status. */
    while (r < len) {
        uint64_t r2;
        int st2;
        if ((rc = status_from(d, 0, single_link, off + r, len - r, &r2, &st2)) < 0)
            return rc;
        if (st2 != st)
            break;
        r += r2;
    }
    *run = r;
    *status = st;
    return 0;
}

/* ---- for the maintenance code (maint_priv.h) ------------------------ */

struct link *vmdk_disk_link(vmdk_disk *d, int li)
{
    return d && li >= 0 && li < d->nlinks ? d->links[li] : NULL;
}

int vmdk_read_from_link(vmdk_disk *d, int li, void *buf, size_t len, uint64_t off)
{
    return read_from(d, li, buf, len, off);
}

int vmdk_chain_append(vmdk_disk *child, vmdk_disk *parent)
{
    if (child->nlinks + parent->nlinks > MAX_LINKS)
        return vd_err_set(VD_E_PARENT_LOOP, "%s: the combined chain would be longer than %d "
                          "links", child->links[0]->path, MAX_LINKS);
    for (int i = 0; i < parent->nlinks; i++)
        child->links[child->nlinks++] = parent->links[i];
    parent->nlinks = 0;
    return 0;
}

/* ---- information ---------------------------------------------------- */

int vmdk_link_info(const vmdk_disk *d, int li, struct vmdk_link_info *info)
{
    if (li < 0 || li >= d->nlinks)
        return vd_err_set(VD_E_INVAL, "no link %d (chain has %d)", li, d->nlinks);
    const struct link *l = d->links[li];
    memset(info, 0, sizeof *info);
    info->path = l->path;
    info->create_type = l->create_type;
    info->type = l->type;
    info->cid = l->cid;
    info->parent_cid = l->parent_cid;
    info->parent_hint = desc_get(&l->desc, "parentFileNameHint");
    info->capacity = l->capacity;
    info->num_extents = (int)l->next;
    for (size_t i = 0; i < l->next; i++) {
        if (l->ext[i].grain_bytes) {
            info->grain_size = (uint32_t)l->ext[i].grain_bytes;
            break;
        }
    }
    info->allocated_bytes = link_allocated_bytes(l);
    return 0;
}

int vmdk_extent_info(const vmdk_disk *d, int li, int ei, struct vmdk_extent_info *info)
{
    if (li < 0 || li >= d->nlinks)
        return vd_err_set(VD_E_INVAL, "no link %d (chain has %d)", li, d->nlinks);
    const struct link *l = d->links[li];
    if (ei < 0 || (size_t)ei >= l->next)
        return vd_err_set(VD_E_INVAL, "no extent %d in %s", ei, l->path);
    const struct extent *e = &l->ext[ei];
    static const char *acc[] = { "RW", "RDONLY", "NOACCESS" };
    memset(info, 0, sizeof *info);
    info->path = e->path;
    info->kind = e->kind;
    info->access = acc[e->access];
    info->start = e->start;
    info->length = e->size;
    info->file_offset = e->file_off;
    return 0;
}

int vmdk_link_files(const vmdk_disk *d, int li, char ***files, size_t *count)
{
    if (li < 0 || li >= d->nlinks)
        return vd_err_set(VD_E_INVAL, "no link %d (chain has %d)", li, d->nlinks);
    const struct link *l = d->links[li];
    char **v = calloc(l->next + 2, sizeof *v);
    if (!v)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    size_t n = 0;
    if (!(v[n++] = vd_strdup(l->path)))
        goto nomem;
    for (size_t i = 0; i < l->next; i++) {
        const char *p = l->ext[i].path;
        int seen = !p;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strcmp(v[j], p) == 0;
        if (!seen && !(v[n++] = vd_strdup(p)))
            goto nomem;
    }
    *files = v;
    *count = n;
    return 0;
nomem:
    vmdk_strv_free(v, n);
    return vd_err_set(VD_E_NOMEM, "out of memory");
}

/* ---- metadata ------------------------------------------------------- */

static char *ddb_key(const char *key)
{
    return vd_asprintf("ddb.%s", key);
}

static const char *chain_get(const vmdk_disk *d, const char *full)
{
    for (int i = 0; i < d->nlinks; i++) {
        const char *v = desc_get(&d->links[i]->desc, full);
        if (v)
            return v;
    }
    return NULL;
}

int vmdk_meta_get(vmdk_disk *d, const char *key, char **value)
{
    if (!key || !*key)
        return vd_err_set(VD_E_INVAL, "empty metadata key");
    char *full = ddb_key(key);
    if (!full)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    pthread_mutex_lock(&d->links[0]->wlock);
    const char *v = chain_get(d, full);
    char *copy = v ? vd_strdup(v) : NULL;
    pthread_mutex_unlock(&d->links[0]->wlock);
    free(full);
    if (!v)
        return vd_err_set(VD_E_NOTFOUND_KEY, "%s: no metadata key %s", d->links[0]->path, key);
    if (!copy)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    *value = copy;
    return 0;
}

int vmdk_meta_set(vmdk_disk *d, const char *key, const char *value)
{
    struct link *l = d->links[0];
    if (!key || !*key || strpbrk(key, " \t=\"\n\r"))
        return vd_err_set(VD_E_INVAL, "invalid metadata key '%s'", key ? key : "");
    if (!l->writable)
        return link_readonly_err(l);
    char *full = ddb_key(key);
    if (!full)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    pthread_mutex_lock(&l->wlock);
    char *old = vd_strdup(desc_get(&l->desc, full));
    int rc = desc_set(&l->desc, full, value);
    if (rc == 0) {
        rc = link_write_descriptor(l);
        if (rc < 0) {
            /* Keep memory equal to what is on disk. */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", vd_err_msg());
            int code = vd_err_code();
            desc_set(&l->desc, full, old);
            vd_err_set(code, "%s", msg);
        }
    }
    pthread_mutex_unlock(&l->wlock);
    free(old);
    free(full);
    return rc;
}

void vmdk_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int vmdk_meta_keys(vmdk_disk *d, char ***keys, size_t *count)
{
    struct link *l = d->links[0];
    pthread_mutex_lock(&l->wlock);
    size_t n = 0;
    for (size_t i = 0; i < l->desc.nlines; i++)
        if (l->desc.lines[i].kind == DESC_DDB)
            n++;
    char **v = calloc(n + 1, sizeof *v);
    size_t k = 0;
    int rc = 0;
    if (!v) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < l->desc.nlines; i++) {
        if (l->desc.lines[i].kind != DESC_DDB)
            continue;
        if (!(v[k] = vd_strdup(l->desc.lines[i].key + 4))) {
            vmdk_strv_free(v, k);
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out;
        }
        k++;
    }
    *keys = v;
    *count = k;
out:
    pthread_mutex_unlock(&l->wlock);
    return rc;
}

int vmdk_geometry(const vmdk_disk *d, struct vmdk_geometry *g)
{
    const char *c = chain_get(d, "ddb.geometry.cylinders");
    const char *h = chain_get(d, "ddb.geometry.heads");
    const char *s = chain_get(d, "ddb.geometry.sectors");
    if (!c || !h || !s) {
        vmdk_geometry_for(vmdk_capacity(d), vmdk_adapter_type(d), g);
        return 0;
    }
    g->cylinders = (uint32_t)strtoul(c, NULL, 10);
    g->heads = (uint32_t)strtoul(h, NULL, 10);
    g->sectors = (uint32_t)strtoul(s, NULL, 10);
    return 0;
}

enum vmdk_adapter vmdk_adapter_type(const vmdk_disk *d)
{
    const char *a = chain_get(d, "ddb.adapterType");
    return a ? vmdk_adapter_from_name(a) : VMDK_ADAPTER_IDE;
}

int vmdk_hw_version(const vmdk_disk *d)
{
    const char *v = chain_get(d, "ddb.virtualHWVersion");
    return v ? atoi(v) : 0;
}
