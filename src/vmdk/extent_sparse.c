/* extent_sparse.c - hosted sparse extents (KDMV header, GD/GT, grains).
 *
 * Reading: the grain directory is loaded at open; grain tables are loaded
 * on demand into a bounded LRU cache and validated as they are loaded.
 * Writing: overwrites go in place; a new grain is appended at the end of the
 * file (grain aligned), filled from the parent chain or with zeros, and only
 * then are its entries written to the primary and redundant grain tables.
 * Allocation is serialised by a mutex; everything else runs concurrently. */
#include "extent.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/fileio.h"
#include "sparse_header.h"
#include "sparse_priv.h"

#define FLAG_RGD KDMV_FLAG_RGD
#define FLAG_COMPRESSED KDMV_FLAG_COMPRESSED
#define GD_AT_END KDMV_GD_AT_END
static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

int sparse_read_header_info(struct vd_file *f, const char *path, struct sparse_header_info *hi)
{
    unsigned char h[512];
    int rc = vd_file_pread(f, h, sizeof h, 0, 1);
    if (rc < 0 && !vd_file_is_local(f))
        return rc;
    if (rc < 0)
        return errno ? vd_err_errno(errno, "%s: reading sparse header", path)
                     : vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header",
                                  path);
    if (rd32(h) != KDMV_MAGIC)
        return vd_err_set(VD_E_CORRUPT, "%s: not a hosted sparse extent (bad magic)", path);
    hi->capacity = rd64(h + 12);
    hi->desc_off = rd64(h + 28);
    hi->desc_size = rd64(h + 36);
    return 0;
}

/* ---- header parsing and validation ----------------------------------- */

static int load_dir(struct extent *e, struct sparse *s, uint64_t off_sectors, uint32_t **out,
                    const char *what)
{
    uint64_t bytes = s->n_gd * 4;
    if (off_sectors > s->file_size / 512 || off_sectors * 512 + bytes > s->file_size)
        return vd_err_set(VD_E_CORRUPT, "%s: %s at sector %" PRIu64 " extends past end of file",
                          e->path, what, off_sectors);
    uint32_t *gd = malloc(bytes ? bytes : 4);
    if (!gd)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for %s", e->path, what);
    int rc = vd_file_pread(e->file, gd, bytes, off_sectors * 512, 1);
    if (rc < 0) {
        rc = vd_file_read_err(e->file, rc, "%s: reading %s", e->path, what);
        free(gd);
        return rc;
    }
    uint64_t gt_bytes = (uint64_t)s->num_gtes * 4;
    for (uint64_t i = 0; i < s->n_gd; i++) {
        gd[i] = le32toh(gd[i]);
        if (gd[i] && ((uint64_t)gd[i] * 512 + gt_bytes > s->file_size)) {
            rc = vd_err_set(VD_E_CORRUPT,
                                "%s: grain table %" PRIu64 " (%s entry) at sector %" PRIu32
                                " points past end of file", e->path, i, what, gd[i]);
            free(gd);
            return rc;
        }
    }
    *out = gd;
    return 0;
}

static int parse_header(struct extent *e, struct sparse *s)
{
    int rc = vd_file_size(e->file, &s->file_size);
    if (rc < 0)
        return rc;
    unsigned char h[512];
    if (s->file_size < 512)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header "
                          "(%" PRIu64 " bytes)", e->path, s->file_size);
    if ((rc = vd_file_pread(e->file, h, sizeof h, 0, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading sparse header", e->path);
    struct kdmv_header kh;
    rc = kdmv_header_decode(h, e->path, "header", &kh);
    if (rc < 0)
        return rc;
    s->version = kh.version;
    s->flags = kh.flags;
    s->capacity = kh.capacity;
    s->grain = kh.grain;
    s->num_gtes = kh.num_gtes;
    s->rgd_off = kh.rgd_off;
    s->gd_off = kh.gd_off;
    s->overhead = kh.overhead;
    s->unclean_at_open = kh.unclean != 0;
    if (s->flags & FLAG_COMPRESSED)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: compressed grains need the streamOptimized "
                          "reader", e->path);
    if (s->gd_off == GD_AT_END)
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory at end of file in an "
                          "uncompressed extent", e->path);
    s->grain_bytes = s->grain * 512;
    s->gt_cover = s->grain_bytes * s->num_gtes;
    e->grain_bytes = s->grain_bytes;
    /* Past the header's capacity the descriptor's extent reads as a hole
     * and cannot be written. */
    e->write_limit = e->size < s->capacity * 512 ? e->size : s->capacity * 512;
    s->n_gd = (s->capacity * 512 + s->gt_cover - 1) / s->gt_cover;
    if (s->n_gd > (64u << 20))
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory of %" PRIu64 " entries is "
                          "implausibly large", e->path, s->n_gd);

    rc = load_dir(e, s, s->gd_off, &s->gd, "grain directory");
    if (rc < 0)
        return rc;
    if (s->flags & FLAG_RGD) {
        rc = load_dir(e, s, s->rgd_off, &s->rgd, "redundant grain directory");
        if (rc < 0)
            return rc;
    }
    uint64_t end = s->file_size > s->overhead * 512 ? s->file_size : s->overhead * 512;
    if (s->overhead > s->file_size / 512 + (1u << 20))
        end = s->file_size;
    s->next_free = (end + s->grain_bytes - 1) / s->grain_bytes * s->grain_bytes;
    return 0;
}

/* ---- grain table cache ------------------------------------------------ */

static int writeback_slot(struct extent *e, struct sparse *s, struct gt_slot *sl, int sync_data);

static int writeback_evicted(void *ctx, struct gt_slot *sl)
{
    struct extent *e = ctx;
    return writeback_slot(e, e->priv, sl, 1);
}

/* Return the cached GT for index gi (loading it), or NULL with *rc set.
 * Caller holds s->lock.  A GD entry of 0 yields NULL with *rc = 0. */
static uint32_t *gt_get(struct extent *e, struct sparse *s, uint64_t gi, int *rc)
{
    *rc = 0;
    struct gt_slot *sl = gt_cache_find(&s->cache, gi);
    if (sl)
        return sl->tab;
    if (gi >= s->n_gd || s->gd[gi] == 0)
        return NULL;
    if (!(sl = gt_cache_take(&s->cache, writeback_evicted, e, e->path, rc)))
        return NULL;
    uint32_t *t = sl->tab;
    int r = gt_cache_read(&s->cache, sl, e->file, (uint64_t)s->gd[gi] * 512, 4);
    if (r < 0) {
        *rc = vd_file_read_err(e->file, r, "%s: reading grain table %" PRIu64, e->path, gi);
        return NULL;
    }
    uint64_t limit = s->next_free > s->file_size ? s->next_free : s->file_size;
    for (uint32_t i = 0; i < s->num_gtes; i++) {
        if (t[i] > 1 && (uint64_t)t[i] * 512 >= limit) {
            if (s->unclean_at_open) {
                /* An interrupted allocation may leave an entry whose grain
                 * never reached the disk: treat it as unallocated. */
                t[i] = 0;
                continue;
            }
            *rc = vd_err_set(VD_E_CORRUPT, "%s: grain table %" PRIu64 " entry %" PRIu32
                             " points past end of file (sector %" PRIu32 ")",
                             e->path, gi, i, t[i]);
            return NULL;
        }
        if (t[i] > 1 && t[i] < s->overhead && s->overhead * 512 <= s->file_size) {
            *rc = vd_err_set(VD_E_CORRUPT, "%s: grain table %" PRIu64 " entry %" PRIu32
                             " points into the metadata (sector %" PRIu32 ", grains start at %"
                             PRIu64 ")", e->path, gi, i, t[i], s->overhead);
            return NULL;
        }
    }
    gt_cache_set(&s->cache, sl, gi);
    return t;
}

static int sparse_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    struct sparse *s = e->priv;
    uint64_t cap = s->capacity * 512;
    if (off >= cap) {              /* descriptor larger than header: a hole */
        m->kind = MAP_HOLE;
        m->len = len;
        return 0;
    }
    if (len > cap - off)
        len = cap - off;
    uint64_t gi = off / s->gt_cover;
    uint64_t gt_end = (gi + 1) * s->gt_cover;
    if (len > gt_end - off)
        len = gt_end - off;

    pthread_mutex_lock(&s->lock);
    int rc;
    if (s->busy) {
        pthread_mutex_unlock(&s->lock);
        return vd_err_set(VD_E_LOCKED, "%s: busy (a shrink or defragment is running on this "
                          "disk)", e->path);
    }
    uint32_t *t = gt_get(e, s, gi, &rc);
    if (!t) {
        pthread_mutex_unlock(&s->lock);
        if (rc < 0)
            return rc;
        m->kind = MAP_HOLE;
        m->len = len;
        return 0;
    }
    uint64_t g = (off % s->gt_cover) / s->grain_bytes;
    uint64_t in = off % s->grain_bytes;
    uint32_t v = t[g];
    enum map_kind kind = v == 0 ? MAP_HOLE : v == 1 ? MAP_ZERO : MAP_DATA;
    uint64_t run = s->grain_bytes - in;
    uint64_t expect = (uint64_t)v + s->grain;
    /* Extend over following grains of the same kind (and, for data,
     * physically contiguous ones) so large requests become one syscall. */
    for (uint64_t k = g + 1; run < len && k < s->num_gtes; k++) {
        uint32_t w = t[k];
        if (kind == MAP_DATA) {
            if (w != expect)
                break;
            expect += s->grain;
        } else if ((w == 0 ? MAP_HOLE : w == 1 ? MAP_ZERO : MAP_DATA) != kind) {
            break;
        }
        run += s->grain_bytes;
    }
    pthread_mutex_unlock(&s->lock);
    m->kind = kind;
    m->file_off = (uint64_t)v * 512 + in;
    m->len = run < len ? run : len;
    return 0;
}

/* Write the header's uncleanShutdown byte and sync. */
static int set_unclean(struct extent *e, int value)
{
    unsigned char b = value ? 1 : 0;
    if (vd_pwrite_full(e->fd, &b, 1, 72) < 0 || fdatasync(e->fd) < 0)
        return vd_err_errno(errno, "%s: updating unclean-shutdown flag", e->path);
    return 0;
}

static int sparse_begin_write(struct extent *e)
{
    struct sparse *s = e->priv;
    int rc = set_unclean(e, 1);
    if (rc == 0)
        s->began_write = 1;
    return rc;
}

static int sparse_end_write(struct extent *e)
{
    struct sparse *s = e->priv;
    if (!s->began_write)
        return 0;
    return set_unclean(e, 0);
}

/* Write entries [g0, g0+n) of the cached table t (GT gi) to the primary
 * and the redundant grain table. */
static int write_gtes(struct extent *e, struct sparse *s, uint64_t gi, const uint32_t *t,
                      uint64_t g0, uint64_t n)
{
    uint32_t buf[512];
    uint64_t done = 0;
    while (done < n) {
        uint64_t c = n - done < 512 ? n - done : 512;
        for (uint64_t i = 0; i < c; i++)
            buf[i] = htole32(t[g0 + done + i]);
        uint64_t rel = (g0 + done) * 4;
        if (vd_pwrite_full(e->fd, buf, c * 4, (uint64_t)s->gd[gi] * 512 + rel) < 0)
            return vd_err_errno(errno, "%s: writing grain table %" PRIu64, e->path, gi);
        if (s->rgd && s->rgd[gi] &&
            vd_pwrite_full(e->fd, buf, c * 4, (uint64_t)s->rgd[gi] * 512 + rel) < 0)
            return vd_err_errno(errno, "%s: writing redundant grain table %" PRIu64,
                                e->path, gi);
        done += c;
    }
    return 0;
}

/* Write the dirty entries of one cached table.  New entries only ever
 * point at grains written before them, so the data is made durable first
 * (sync_data): a crash can leak a grain but never expose garbage. */
static int writeback_slot(struct extent *e, struct sparse *s, struct gt_slot *sl, int sync_data)
{
    if (!gt_slot_dirty(sl))
        return 0;
    if (sync_data && fdatasync(e->fd) < 0)
        return vd_err_errno(errno, "%s: flushing grains", e->path);
    int rc = write_gtes(e, s, sl->index, sl->tab, sl->dirty_lo, sl->dirty_hi - sl->dirty_lo);
    if (rc == 0)
        gt_slot_clean(sl);
    return rc;
}

/* Flush: data, then the grain tables that point at it, then those. */
static int sparse_flush(struct extent *e)
{
    struct sparse *s = e->priv;
    int rc = 0, any = 0;
    pthread_mutex_lock(&s->lock);
    if (fdatasync(e->fd) < 0)
        rc = vd_err_errno(errno, "%s: flushing", e->path);
    for (unsigned i = 0; rc == 0 && i < s->cache.n; i++) {
        struct gt_slot *sl = &s->cache.slot[i];
        if (gt_slot_dirty(sl)) {
            any = 1;
            rc = writeback_slot(e, s, sl, 0);
        }
    }
    if (rc == 0 && any && fdatasync(e->fd) < 0)
        rc = vd_err_errno(errno, "%s: flushing grain tables", e->path);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Record entries [g0, g0+n) of the cached GT t as changed. */
static void mark_dirty(struct sparse *s, const uint32_t *t, uint64_t g0, uint64_t n)
{
    for (unsigned i = 0; i < s->cache.n; i++)
        if (s->cache.slot[i].tab == t) {
            gt_slot_mark_dirty(&s->cache.slot[i], g0, n);
            return;
        }
}

/* Allocate grains [g0, g0+n) of GT gi (all unallocated) and write the part
 * [off, off+len) of them from buf; the rest of the first and last grain is
 * filled from the parent (cow) or with zeros. */
static int alloc_run(struct extent *e, struct sparse *s, uint32_t *t, uint64_t gi,
                     uint64_t g0, uint64_t n, uint64_t off, const unsigned char *buf,
                     uint64_t len, cow_read_fn cow, void *cow_ctx)
{
    uint64_t gb = s->grain_bytes;
    uint64_t run_start = gi * s->gt_cover + g0 * gb;     /* extent offset */
    uint64_t head = off - run_start;                     /* bytes before off */
    uint64_t tail = n * gb - head - len;                 /* bytes after */
    unsigned char *hbuf = NULL, *tbuf = NULL;
    struct iovec iov[3];
    int niov = 0, rc = 0;

    /* Partial first grain. */
    if (head) {
        hbuf = malloc(gb);
        if (!hbuf)
            return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        if (t[g0] == 0 && cow)
            rc = cow(cow_ctx, hbuf, gb, e->start + run_start);
        else
            memset(hbuf, 0, gb);
        if (rc < 0)
            goto out;
    }
    /* Partial last grain (may be the same grain as the first). */
    uint64_t last_g = g0 + n - 1;
    if (tail && !(n == 1 && hbuf)) {
        tbuf = malloc(gb);
        if (!tbuf) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
            goto out;
        }
        if (t[last_g] == 0 && cow)
            rc = cow(cow_ctx, tbuf, gb, e->start + run_start + (n - 1) * gb);
        else
            memset(tbuf, 0, gb);
        if (rc < 0)
            goto out;
    }
    if (n == 1 && hbuf) {
        memcpy(hbuf + head, buf, len);
        iov[niov++] = (struct iovec){ hbuf, gb };
    } else {
        uint64_t mid = len;
        if (hbuf) {
            memcpy(hbuf + head, buf, gb - head);
            iov[niov++] = (struct iovec){ hbuf, gb };
            mid -= gb - head;
        }
        uint64_t tail_part = tbuf ? gb - tail : 0;
        mid -= tail_part;
        if (mid)
            iov[niov++] = (struct iovec){ (void *)(buf + (hbuf ? gb - head : 0)), mid };
        if (tbuf) {
            memcpy(tbuf, buf + len - tail_part, tail_part);
            iov[niov++] = (struct iovec){ tbuf, gb };
        }
    }

    uint64_t where = s->next_free;
    if (where / 512 + n * s->grain > UINT32_MAX) {
        rc = vd_err_set(VD_E_NOSPACE, "%s: sparse extent is full (grain offsets are 32-bit)",
                        e->path);
        goto out;
    }
    /* Data first ... */
    uint64_t pos = where;
    int i = 0;
    while (i < niov) {
        ssize_t w = pwritev(e->fd, &iov[i], niov - i, (off_t)pos);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = vd_err_errno(errno, "%s: writing new grains at offset %" PRIu64, e->path, pos);
            goto out;
        }
        pos += (uint64_t)w;
        while (i < niov && (size_t)w >= iov[i].iov_len) {
            w -= (ssize_t)iov[i].iov_len;
            i++;
        }
        if (i < niov && w > 0) {
            iov[i].iov_base = (char *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    s->next_free = where + n * gb;
    /* ... then the grain table entries. */
    for (uint64_t k = 0; k < n; k++)
        t[g0 + k] = (uint32_t)(where / 512 + k * s->grain);
    (void)gi;
    mark_dirty(s, t, g0, n);
out:
    free(hbuf);
    free(tbuf);
    return rc;
}

struct run_ctx {
    struct extent *e;
    struct sparse *s;
    uint32_t *t;
    uint64_t gi;
    cow_read_fn cow;
    void *cow_ctx;
};

static int alloc_cb(void *ctx, uint64_t g0, uint64_t n, uint64_t pos, const unsigned char *buf,
                    uint64_t len)
{
    struct run_ctx *c = ctx;
    return alloc_run(c->e, c->s, c->t, c->gi, g0, n, pos, buf, len, c->cow, c->cow_ctx);
}

/* Grain table gi for a write: loaded, or NULL with *rc set (a table the
 * directory does not point at cannot be written).  Caller holds s->lock. */
static uint32_t *gt_for_write(struct extent *e, struct sparse *s, uint64_t gi, int *rc)
{
    if (gi >= s->n_gd || s->gd[gi] == 0) {
        *rc = vd_err_set(VD_E_UNSUPPORTED, "%s: grain table %" PRIu64 " is not allocated "
                         "(non-standard layout); convert the disk first", e->path, gi);
        return NULL;
    }
    return gt_get(e, s, gi, rc);
}

static int sparse_write_alloc(struct extent *e, uint64_t off, const void *buf, size_t len,
                              cow_read_fn cow, void *cow_ctx)
{
    struct sparse *s = e->priv;
    const unsigned char *p = buf;
    uint64_t cap = s->capacity * 512;
    if (off + len > cap)
        return vd_err_set(VD_E_CORRUPT, "%s: write past the sparse extent's capacity "
                          "(%" PRIu64 " bytes; descriptor and header disagree)", e->path, cap);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->busy)
        rc = vd_err_set(VD_E_LOCKED, "%s: busy (a shrink or defragment is running on this "
                        "disk)", e->path);
    while (rc == 0 && len > 0) {
        uint64_t gi = off / s->gt_cover;
        uint64_t gt_end = (gi + 1) * s->gt_cover;
        uint64_t chunk = len < gt_end - off ? len : gt_end - off;
        uint32_t *t = gt_for_write(e, s, gi, &rc);
        if (!t)
            break;
        struct run_ctx rcx = { e, s, t, gi, cow, cow_ctx };
        if ((rc = gt_write_table_range(e->fd, e->path, t, 1, s->grain_bytes, s->gt_cover, off,
                                       p, chunk, alloc_cb, &rcx)) < 0)
            break;
        p += chunk;
        off += chunk;
        len -= chunk;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Zeroed-grain entries need header flag 0x4 and, in a version 1 extent,
 * version 2.  The header is made durable before any entry of 1 can reach
 * the file.  Caller holds s->lock. */
static int enable_zeroed_grains(struct extent *e, struct sparse *s)
{
    if (s->flags & KDMV_FLAG_ZERO_GTE)
        return 0;
    uint32_t version = s->version < 2 ? 2 : s->version;
    uint32_t flags = s->flags | KDMV_FLAG_ZERO_GTE;
    uint32_t le[2] = { htole32(version), htole32(flags) };
    if (vd_pwrite_full(e->fd, le, sizeof le, 4) < 0 || fdatasync(e->fd) < 0)
        return vd_err_errno(errno, "%s: enabling zeroed-grain entries in the header",
                            e->path);
    s->version = version;
    s->flags = flags;
    return 0;
}

static int sparse_zero_grains(struct extent *e, uint64_t off, uint64_t len)
{
    struct sparse *s = e->priv;
    if (off % s->grain_bytes || len % s->grain_bytes || off + len > s->capacity * 512)
        return vd_err_set(VD_E_INVAL, "%s: zeroed grains need a whole-grain range "
                          "(offset %" PRIu64 ", %" PRIu64 " bytes)", e->path, off, len);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (s->busy)
        rc = vd_err_set(VD_E_LOCKED, "%s: busy (a shrink or defragment is running on this "
                        "disk)", e->path);
    if (rc == 0)
        rc = enable_zeroed_grains(e, s);
    while (rc == 0 && len > 0) {
        uint64_t gi = off / s->gt_cover;
        uint64_t g0 = (off % s->gt_cover) / s->grain_bytes;
        uint64_t n = (s->gt_cover - off % s->gt_cover) / s->grain_bytes;
        if (n > len / s->grain_bytes)
            n = len / s->grain_bytes;
        uint32_t *t = gt_for_write(e, s, gi, &rc);
        if (!t)
            break;
        /* Only holes change: a grain that an overlapping write allocated
         * meanwhile keeps that write's data (such writes have no order). */
        for (uint64_t k = g0; k < g0 + n; k++)
            if (t[k] == 0)
                t[k] = 1;
        mark_dirty(s, t, g0, n);
        off += n * s->grain_bytes;
        len -= n * s->grain_bytes;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void sparse_destroy(struct extent *e)
{
    struct sparse *s = e->priv;
    if (!s)
        return;
    gt_cache_destroy(&s->cache);
    free(s->gd);
    free(s->rgd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    e->priv = NULL;
}

static const struct extent_ops sparse_ops = {
    .name = "sparse",
    .map = sparse_map,
    .write_alloc = sparse_write_alloc,
    .zero_grains = sparse_zero_grains,
    .begin_write = sparse_begin_write,
    .end_write = sparse_end_write,
    .flush = sparse_flush,
    .destroy = sparse_destroy,
};

int extent_is_hosted_sparse(const struct extent *e)
{
    return e && e->ops == &sparse_ops;
}

int extent_sparse_open(struct extent *e)
{
    struct sparse *s = calloc(1, sizeof *s);
    if (!s)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    pthread_mutex_init(&s->lock, NULL);
    e->priv = s;
    e->ops = &sparse_ops;
    int rc = parse_header(e, s);
    if (rc == 0)
        rc = gt_cache_init(&s->cache, GT_CACHE_SLOTS, (size_t)s->num_gtes * 4);
    if (rc < 0) {
        sparse_destroy(e);
        e->ops = NULL;
    }
    return rc;
}

/* ---- creation ---------------------------------------------------------- */

void sparse_layout_compute(uint64_t capacity, uint32_t grain, int embedded_desc,
                           struct sparse_layout *l)
{
    memset(l, 0, sizeof *l);
    l->capacity = capacity;
    l->grain = grain;
    l->num_gtes = 512;
    uint64_t cover = (uint64_t)l->num_gtes * grain;
    l->n_gt = (capacity + cover - 1) / cover;
    l->gd_sectors = (l->n_gt * 4 + 511) / 512;
    l->desc_off = embedded_desc ? 1 : 0;
    l->desc_size = embedded_desc ? 20 : 0;
    l->rgd_off = embedded_desc ? 21 : 1;
    uint64_t gt_sectors = l->n_gt * ((uint64_t)l->num_gtes * 4 / 512);
    l->gd_off = l->rgd_off + l->gd_sectors + gt_sectors;
    uint64_t meta_end = l->gd_off + l->gd_sectors + gt_sectors;
    l->overhead = (meta_end + grain - 1) / grain * grain;
}

static int write_dir(int fd, const char *path, uint64_t dir_off, uint64_t n_gt,
                     uint64_t gt_sectors_each, uint64_t gd_sectors)
{
    uint32_t *d = calloc(gd_sectors * 128, 4);
    if (!d)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n_gt; i++)
        d[i] = htole32((uint32_t)(dir_off + gd_sectors + i * gt_sectors_each));
    int rc = 0;
    if (vd_pwrite_full(fd, d, gd_sectors * 512, dir_off * 512) < 0)
        rc = vd_err_errno(errno, "%s: writing grain directory", path);
    free(d);
    return rc;
}

int sparse_extent_write_new(int fd, const char *path, const struct sparse_layout *l,
                            const char *desc, size_t desc_len)
{
    if (l->overhead + l->capacity > UINT32_MAX)
        return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " sectors is too large for one hosted "
                          "sparse extent (limit about 2 TiB); use a split type", path,
                          l->capacity);
    if (desc && desc_len > l->desc_size * 512)
        return vd_err_set(VD_E_NOSPACE, "%s: descriptor of %zu bytes does not fit in %" PRIu64
                          " sectors", path, desc_len, l->desc_size);
    if (ftruncate(fd, (off_t)(l->overhead * 512)) < 0)
        return vd_err_errno(errno, "%s: sizing new sparse extent", path);
    uint64_t gt_each = (uint64_t)l->num_gtes * 4 / 512;
    int rc = write_dir(fd, path, l->rgd_off, l->n_gt, gt_each, l->gd_sectors);
    if (rc == 0)
        rc = write_dir(fd, path, l->gd_off, l->n_gt, gt_each, l->gd_sectors);
    if (rc < 0)
        return rc;
    if (desc && vd_pwrite_full(fd, desc, desc_len, l->desc_off * 512) < 0)
        return vd_err_errno(errno, "%s: writing embedded descriptor", path);
    struct kdmv_header kh = {
        .version = 1, .flags = KDMV_FLAG_NL_TEST | KDMV_FLAG_RGD, .capacity = l->capacity,
        .grain = l->grain, .desc_off = l->desc_off, .desc_size = l->desc_size,
        .num_gtes = l->num_gtes, .rgd_off = l->rgd_off, .gd_off = l->gd_off,
        .overhead = l->overhead,
    };
    unsigned char h[512];
    kdmv_header_encode(&kh, h);
    if (vd_pwrite_full(fd, h, sizeof h, 0) < 0)
        return vd_err_errno(errno, "%s: writing sparse header", path);
    return 0;
}

void extent_destroy(struct extent *e)
{
    if (e->ops && e->ops->destroy)
        e->ops->destroy(e);
    if (e->own_fd && e->file)
        vd_file_close(e->file);     /* closes fd too */
    free(e->path);
    memset(e, 0, sizeof *e);
    e->fd = -1;
}
