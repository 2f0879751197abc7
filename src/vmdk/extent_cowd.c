/* extent_cowd.c - ESX vmfsSparse extents (COWD header, GD, 4096-entry GTs).
 *
 * Layout (reference section 4.1): a 2048-byte header, the grain directory
 * at gdOffset, then grain tables and grains allocated on demand at
 * freeSector.  No redundant tables, no zeroed-grain entries: a GD or GT
 * entry of 0 is unallocated and reads from the parent.
 *
 * Reading: the GD is loaded and checked at open; grain tables are loaded on
 * demand into a bounded LRU cache and checked as they are loaded.
 * Writing: overwrites go in place.  A new grain table is written zeroed at
 * the end of the file; new grains are appended after it (partial grains
 * completed from the parent chain); their GT entries, then the GD entries
 * and freeSector, reach the disk only at flush (or eviction), after the
 * grains and zeroed tables they point at are durable.  A crash therefore
 * only leaks space.  Allocation is serialised by one mutex per extent. */
#include "extent.h"
#include "gt_cache.h"

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

#define COWD_MAGIC 0x44574f43u        /* "COWD" */
#define COWD_HDR_BYTES 2048u
#define COWD_HDR_SECTORS 4u
#define COWD_GTES 4096u               /* entries per grain table */
#define COWD_GT_BYTES (COWD_GTES * 4u)
#define COWD_GT_SECTORS (COWD_GT_BYTES / 512u)
#define COWD_MAX_GRAIN 2048u          /* sectors (1 MiB) */
/* Header field offsets. */
#define H_VERSION 4
#define H_FLAGS 8
#define H_NUM_SECTORS 12
#define H_GRAIN 16
#define H_GD_OFF 20
#define H_NUM_GDE 24
#define H_FREE 28
#define H_SAVED_GEN 1636              /* left untouched */
#define H_UNCLEAN 1648
#define GT_CACHE_SLOTS 64

struct cowd {
    uint64_t capacity;            /* sectors (numSectors) */
    uint64_t grain;               /* sectors */
    uint64_t grain_bytes;
    uint64_t gt_cover;            /* bytes covered by one GT */
    uint64_t gd_off;              /* sectors */
    uint64_t n_gd;                /* GD entries in use (those covering the capacity) */
    uint64_t data_start;          /* sectors: first sector past the GD */
    uint32_t *gd;                 /* host order */
    uint64_t gd_dirty_lo, gd_dirty_hi;
    int unclean_at_open;
    uint64_t next_free;           /* sectors: where the next GT or grain goes */
    uint64_t free_on_disk;        /* freeSector as last written */

    pthread_mutex_t lock;         /* cache, GD and allocation */
    struct gt_cache cache;        /* COWD_GTES 32-bit entries a table */
    int began_write;
};

static inline uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline void wr32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* ---- header ------------------------------------------------------------ */

static int parse_header(struct extent *e, struct cowd *s)
{
    uint64_t fsize;
    int rc = vd_file_size(e->file, &fsize);
    if (rc < 0)
        return rc;
    uint64_t fsectors = (fsize + 511) / 512;
    if (fsize < COWD_HDR_BYTES)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a vmfsSparse (COWD) header "
                          "(%" PRIu64 " bytes, need %u)", e->path, fsize, COWD_HDR_BYTES);
    unsigned char h[COWD_HDR_BYTES];
    if ((rc = vd_file_pread(e->file, h, sizeof h, 0, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading COWD header", e->path);
    if (rd32(h) != COWD_MAGIC)
        return vd_err_set(VD_E_CORRUPT, "%s: not a vmfsSparse extent (bad magic 0x%08" PRIx32
                          ", expected \"COWD\")", e->path, rd32(h));
    uint32_t version = rd32(h + H_VERSION);
    if (version != 1)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: COWD version %" PRIu32 " is not supported "
                          "(only 1 is)", e->path, version);
    s->capacity = rd32(h + H_NUM_SECTORS);
    s->grain = rd32(h + H_GRAIN);
    if (!is_pow2(s->grain) || s->grain > COWD_MAX_GRAIN)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD grain size %" PRIu64 " sectors is not a "
                          "power of two between 1 and %u", e->path, s->grain, COWD_MAX_GRAIN);
    s->grain_bytes = s->grain * 512;
    s->gt_cover = s->grain_bytes * COWD_GTES;
    uint64_t cover_sectors = s->grain * COWD_GTES;
    uint64_t need = (s->capacity + cover_sectors - 1) / cover_sectors;
    uint64_t n_gd_hdr = rd32(h + H_NUM_GDE);
    if (n_gd_hdr < need)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD grain directory has %" PRIu64 " entries but "
                          "%" PRIu64 " sectors at %" PRIu64 " sectors per grain table need %"
                          PRIu64, e->path, n_gd_hdr, s->capacity, cover_sectors, need);
    s->gd_off = rd32(h + H_GD_OFF);
    uint64_t gd_sectors = (n_gd_hdr * 4 + 511) / 512;
    if (s->gd_off < COWD_HDR_SECTORS)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD grain directory at sector %" PRIu64
                          " overlaps the header", e->path, s->gd_off);
    if (s->gd_off * 512 + n_gd_hdr * 4 > fsize)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD grain directory (sector %" PRIu64 ", %"
                          PRIu64 " entries) extends past end of file (%" PRIu64 " bytes)",
                          e->path, s->gd_off, n_gd_hdr, fsize);
    s->data_start = s->gd_off + gd_sectors;
    uint64_t free_sector = rd32(h + H_FREE);
    if (free_sector > fsectors)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD freeSector %" PRIu64 " is past end of file "
                          "(%" PRIu64 " sectors)", e->path, free_sector, fsectors);
    if (free_sector < s->data_start)
        return vd_err_set(VD_E_CORRUPT, "%s: COWD freeSector %" PRIu64 " lies inside the "
                          "header or grain directory (data starts at sector %" PRIu64 ")",
                          e->path, free_sector, s->data_start);
    s->unclean_at_open = rd32(h + H_UNCLEAN) != 0;
    s->free_on_disk = free_sector;
    /* New space goes past both freeSector and the end of the file, so an
     * allocation never overlaps anything already there. */
    s->next_free = free_sector > fsectors ? free_sector : fsectors;
    e->grain_bytes = s->grain_bytes;
    /* Past the header's capacity the descriptor's extent reads as a hole
     * and cannot be written. */
    e->write_limit = e->size < s->capacity * 512 ? e->size : s->capacity * 512;

    /* The grain directory: only the entries covering the capacity are used. */
    s->n_gd = need;
    s->gd = malloc(need ? need * 4 : 4);
    if (!s->gd)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for grain directory", e->path);
    if (need && (rc = vd_file_pread(e->file, s->gd, need * 4, s->gd_off * 512, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading COWD grain directory", e->path);
    for (uint64_t i = 0; i < need; i++) {
        uint32_t g = s->gd[i] = le32toh(s->gd[i]);
        if (g == 0)
            continue;
        if (g < s->data_start)
            return vd_err_set(VD_E_CORRUPT, "%s: COWD grain directory entry %" PRIu64
                              " (sector %" PRIu32 ") points into the header or grain "
                              "directory", e->path, i, g);
        if (((uint64_t)g + COWD_GT_SECTORS) * 512 > fsize)
            return vd_err_set(VD_E_CORRUPT, "%s: COWD grain table %" PRIu64 " at sector %"
                              PRIu32 " extends past end of file (%" PRIu64 " bytes)",
                              e->path, i, g, fsize);
    }
    s->gd_dirty_lo = s->gd_dirty_hi = 0;
    return 0;
}

/* ---- grain table cache ------------------------------------------------ */

static int writeback(struct extent *e, struct cowd *s, int sync_data);

/* Evicting a changed table writes back everything pending: freeSector,
 * tables and GD go out together (writeback). */
static int writeback_evicted(void *ctx, struct gt_slot *sl)
{
    (void)sl;
    struct extent *e = ctx;
    int rc = writeback(e, e->priv, 1);
    return rc < 0 ? rc : 0;
}

/* The cached GT gi (loaded and checked on a miss), or NULL: *rc < 0 on
 * error, 0 when the GD entry is 0 (no table).  Caller holds s->lock. */
static struct gt_slot *gt_get(struct extent *e, struct cowd *s, uint64_t gi, int *rc)
{
    *rc = 0;
    struct gt_slot *sl = gt_cache_find(&s->cache, gi);
    if (sl)
        return sl;
    if (gi >= s->n_gd || s->gd[gi] == 0)
        return NULL;
    if (!(sl = gt_cache_take(&s->cache, writeback_evicted, e, e->path, rc)))
        return NULL;
    uint32_t *t = sl->tab;
    int r = gt_cache_read(&s->cache, sl, e->file, (uint64_t)s->gd[gi] * 512, 4);
    if (r < 0) {
        *rc = vd_file_read_err(e->file, r, "%s: reading COWD grain table %" PRIu64, e->path,
                               gi);
        return NULL;
    }
    for (uint32_t i = 0; i < COWD_GTES; i++) {
        uint32_t v = t[i];
        if (v == 0)
            continue;
        if (v < s->data_start) {
            *rc = vd_err_set(VD_E_CORRUPT, "%s: COWD grain table %" PRIu64 " entry %" PRIu32
                             " points into the header or grain directory (sector %" PRIu32
                             ")", e->path, gi, i, v);
            return NULL;
        }
        if ((uint64_t)v + s->grain > s->next_free) {
            if (s->unclean_at_open) {
                /* An interrupted allocation by a less careful writer: the
                 * grain never reached the disk; treat it as unallocated. */
                t[i] = 0;
                continue;
            }
            *rc = vd_err_set(VD_E_CORRUPT, "%s: COWD grain table %" PRIu64 " entry %" PRIu32
                             " points past end of file (sector %" PRIu32 ")", e->path, gi, i,
                             v);
            return NULL;
        }
    }
    gt_cache_set(&s->cache, sl, gi);
    return sl;
}

static int cowd_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    struct cowd *s = e->priv;
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
    struct gt_slot *sl = gt_get(e, s, gi, &rc);
    if (!sl) {
        pthread_mutex_unlock(&s->lock);
        if (rc < 0)
            return rc;
        m->kind = MAP_HOLE;
        m->len = len;
        return 0;
    }
    const uint32_t *t = sl->tab;
    uint64_t g = (off % s->gt_cover) / s->grain_bytes;
    uint64_t in = off % s->grain_bytes;
    uint32_t v = t[g];
    enum map_kind kind = v ? MAP_DATA : MAP_HOLE;
    uint64_t run = s->grain_bytes - in;
    uint64_t expect = (uint64_t)v + s->grain;
    /* Extend over following grains of the same kind (data: physically
     * contiguous) so large requests become one system call. */
    for (uint64_t k = g + 1; run < len && k < COWD_GTES; k++) {
        uint32_t w = t[k];
        if (kind == MAP_DATA) {
            if (w != expect)
                break;
            expect += s->grain;
        } else if (w != 0) {
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

/* ---- header updates and ordered write-back ------------------------------ */

static int set_unclean(struct extent *e, uint32_t value)
{
    unsigned char b[4];
    wr32(b, value);
    if (vd_pwrite_full(e->fd, b, 4, H_UNCLEAN) < 0 || fdatasync(e->fd) < 0)
        return vd_err_errno(errno, "%s: updating the COWD unclean-shutdown flag", e->path);
    return 0;
}

static int cowd_begin_write(struct extent *e)
{
    struct cowd *s = e->priv;
    int rc = set_unclean(e, 1);
    if (rc == 0)
        s->began_write = 1;
    return rc;
}

static int cowd_end_write(struct extent *e)
{
    struct cowd *s = e->priv;
    if (!s->began_write)
        return 0;
    return set_unclean(e, 0);
}

static int write_u32s(struct extent *e, const uint32_t *src, uint64_t n, uint64_t file_off,
                      const char *what)
{
    uint32_t buf[512];
    for (uint64_t done = 0; done < n;) {
        uint64_t c = n - done < 512 ? n - done : 512;
        for (uint64_t i = 0; i < c; i++)
            buf[i] = htole32(src[done + i]);
        if (vd_pwrite_full(e->fd, buf, c * 4, file_off + done * 4) < 0)
            return vd_err_errno(errno, "%s: writing %s", e->path, what);
        done += c;
    }
    return 0;
}

/* Write every pending metadata change: freeSector, then the dirty grain
 * table entries, then the dirty GD entries.  Each of them points only at
 * grains and (zeroed) tables written before; sync_data makes those durable
 * first, so a crash in the middle leaks space at worst.  Caller holds
 * s->lock.  Returns 1 if anything was written, 0 if nothing was pending. */
static int writeback(struct extent *e, struct cowd *s, int sync_data)
{
    int any = s->next_free != s->free_on_disk || s->gd_dirty_hi > s->gd_dirty_lo;
    for (unsigned i = 0; !any && i < s->cache.n; i++)
        any = gt_slot_dirty(&s->cache.slot[i]);
    if (!any)
        return 0;
    if (sync_data && fdatasync(e->fd) < 0)
        return vd_err_errno(errno, "%s: flushing grains", e->path);
    if (s->next_free != s->free_on_disk) {
        unsigned char b[4];
        wr32(b, (uint32_t)s->next_free);
        if (vd_pwrite_full(e->fd, b, 4, H_FREE) < 0)
            return vd_err_errno(errno, "%s: writing COWD freeSector", e->path);
        s->free_on_disk = s->next_free;
    }
    for (unsigned i = 0; i < s->cache.n; i++) {
        struct gt_slot *sl = &s->cache.slot[i];
        if (!gt_slot_dirty(sl))
            continue;
        int rc = write_u32s(e, (uint32_t *)sl->tab + sl->dirty_lo, sl->dirty_hi - sl->dirty_lo,
                            (uint64_t)s->gd[sl->index] * 512 + (uint64_t)sl->dirty_lo * 4,
                            "COWD grain table");
        if (rc < 0)
            return rc;
        gt_slot_clean(sl);
    }
    if (s->gd_dirty_hi > s->gd_dirty_lo) {
        int rc = write_u32s(e, s->gd + s->gd_dirty_lo, s->gd_dirty_hi - s->gd_dirty_lo,
                            s->gd_off * 512 + s->gd_dirty_lo * 4, "COWD grain directory");
        if (rc < 0)
            return rc;
        s->gd_dirty_lo = s->gd_dirty_hi = 0;
    }
    return 1;
}

static int cowd_flush(struct extent *e)
{
    struct cowd *s = e->priv;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    if (fdatasync(e->fd) < 0)
        rc = vd_err_errno(errno, "%s: flushing", e->path);
    if (rc == 0)
        rc = writeback(e, s, 0);
    if (rc > 0) {
        rc = 0;
        if (fdatasync(e->fd) < 0)
            rc = vd_err_errno(errno, "%s: flushing COWD tables", e->path);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- allocation ------------------------------------------------------------ */

static int room_for(struct extent *e, struct cowd *s, uint64_t sectors)
{
    if (s->next_free + sectors > UINT32_MAX)
        return vd_err_set(VD_E_NOSPACE, "%s: vmfsSparse extent is full (sector numbers are "
                          "32-bit)", e->path);
    return 0;
}

/* Allocate grain table gi: a zeroed table at the end of the file, cached
 * and recorded in the in-memory GD (written at flush).  Caller holds
 * s->lock. */
static struct gt_slot *gt_new(struct extent *e, struct cowd *s, uint64_t gi, int *rc)
{
    if ((*rc = room_for(e, s, COWD_GT_SECTORS)) < 0)
        return NULL;
    struct gt_slot *sl = gt_cache_take(&s->cache, writeback_evicted, e, e->path, rc);
    if (!sl)
        return NULL;
    memset(sl->tab, 0, COWD_GT_BYTES);
    uint64_t where = s->next_free;
    if (vd_pwrite_full(e->fd, sl->tab, COWD_GT_BYTES, where * 512) < 0) {
        *rc = vd_err_errno(errno, "%s: writing new COWD grain table at sector %" PRIu64,
                           e->path, where);
        return NULL;
    }
    s->next_free = where + COWD_GT_SECTORS;
    s->gd[gi] = (uint32_t)where;
    if (s->gd_dirty_hi <= s->gd_dirty_lo) {
        s->gd_dirty_lo = gi;
        s->gd_dirty_hi = gi + 1;
    } else {
        if (gi < s->gd_dirty_lo)
            s->gd_dirty_lo = gi;
        if (gi + 1 > s->gd_dirty_hi)
            s->gd_dirty_hi = gi + 1;
    }
    gt_cache_set(&s->cache, sl, gi);
    return sl;
}

/* Allocate grains [g0, g0+n) of the cached GT sl (all unallocated) and
 * write the part [off, off+len) of them from buf; the rest of the first and
 * last grain comes from the parent chain (cow) or is zeros. */
static int alloc_run(struct extent *e, struct cowd *s, struct gt_slot *sl, uint64_t g0,
                     uint64_t n, uint64_t off, const unsigned char *buf, uint64_t len,
                     cow_read_fn cow, void *cow_ctx)
{
    uint64_t gb = s->grain_bytes;
    uint64_t run_start = sl->index * s->gt_cover + g0 * gb;   /* extent offset */
    uint64_t head = off - run_start;
    uint64_t tail = n * gb - head - len;
    unsigned char *hbuf = NULL, *tbuf = NULL;
    struct iovec iov[3];
    int niov = 0, rc;

    if ((rc = room_for(e, s, n * s->grain)) < 0)
        return rc;
    if (head) {
        if (!(hbuf = malloc(gb)))
            return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        if (cow)
            rc = cow(cow_ctx, hbuf, gb, e->start + run_start);
        else
            memset(hbuf, 0, gb);
        if (rc < 0)
            goto out;
    }
    if (tail && !(n == 1 && hbuf)) {
        if (!(tbuf = malloc(gb))) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
            goto out;
        }
        if (cow)
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
    uint64_t pos = where * 512;
    int i = 0;
    while (i < niov) {
        ssize_t w = pwritev(e->fd, &iov[i], niov - i, (off_t)pos);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = vd_err_errno(errno, "%s: writing new grains at sector %" PRIu64, e->path,
                              pos / 512);
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
    s->next_free = where + n * s->grain;
    for (uint64_t k = 0; k < n; k++)
        ((uint32_t *)sl->tab)[g0 + k] = (uint32_t)(where + k * s->grain);
    gt_slot_mark_dirty(sl, g0, n);
out:
    free(hbuf);
    free(tbuf);
    return rc;
}

struct run_ctx {
    struct extent *e;
    struct cowd *s;
    struct gt_slot *sl;
    cow_read_fn cow;
    void *cow_ctx;
};

static int alloc_cb(void *ctx, uint64_t g0, uint64_t n, uint64_t pos, const unsigned char *buf,
                    uint64_t len)
{
    struct run_ctx *c = ctx;
    return alloc_run(c->e, c->s, c->sl, g0, n, pos, buf, len, c->cow, c->cow_ctx);
}

static int cowd_write_alloc(struct extent *e, uint64_t off, const void *buf, size_t len,
                            cow_read_fn cow, void *cow_ctx)
{
    struct cowd *s = e->priv;
    const unsigned char *p = buf;
    uint64_t cap = s->capacity * 512;
    if (off > cap || len > cap - off)
        return vd_err_set(VD_E_CORRUPT, "%s: write past the vmfsSparse extent's capacity "
                          "(%" PRIu64 " bytes; descriptor and header disagree)", e->path, cap);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    while (len > 0) {
        uint64_t gi = off / s->gt_cover;
        uint64_t gt_end = (gi + 1) * s->gt_cover;
        uint64_t chunk = len < gt_end - off ? len : gt_end - off;
        if (gi >= s->n_gd) {       /* cannot happen: n_gd covers the capacity */
            rc = vd_err_set(VD_E_CORRUPT, "%s: no grain directory entry for offset %" PRIu64,
                            e->path, off);
            break;
        }
        struct gt_slot *sl = gt_get(e, s, gi, &rc);
        if (!sl && rc == 0)
            sl = gt_new(e, s, gi, &rc);     /* GT first, then the grains */
        if (!sl)
            break;
        struct run_ctx rcx = { e, s, sl, cow, cow_ctx };
        if ((rc = gt_write_table_range(e->fd, e->path, sl->tab, 0, s->grain_bytes, s->gt_cover,
                                       off, p, chunk, alloc_cb, &rcx)) < 0)
            break;
        p += chunk;
        off += chunk;
        len -= chunk;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void cowd_destroy(struct extent *e)
{
    struct cowd *s = e->priv;
    if (!s)
        return;
    gt_cache_destroy(&s->cache);
    free(s->gd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    e->priv = NULL;
}

static const struct extent_ops cowd_ops = {
    .name = "vmfsSparse",
    .map = cowd_map,
    .write_alloc = cowd_write_alloc,
    .begin_write = cowd_begin_write,
    .end_write = cowd_end_write,
    .flush = cowd_flush,
    .destroy = cowd_destroy,
};

int extent_cowd_open(struct extent *e)
{
    struct cowd *s = calloc(1, sizeof *s);
    if (!s)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    pthread_mutex_init(&s->lock, NULL);
    e->priv = s;
    e->ops = &cowd_ops;
    int rc = gt_cache_init(&s->cache, GT_CACHE_SLOTS, COWD_GT_BYTES);
    if (rc == 0)
        rc = parse_header(e, s);
    if (rc < 0) {
        cowd_destroy(e);
        e->ops = NULL;
    }
    return rc;
}

/* ---- creation ---------------------------------------------------------- */

int cowd_extent_write_new(int fd, const char *path, uint64_t sectors, uint32_t grain)
{
    if (!is_pow2(grain) || grain > COWD_MAX_GRAIN)
        return vd_err_set(VD_E_INVAL, "%s: vmfsSparse grain size %" PRIu32 " sectors is not a "
                          "power of two up to %u", path, grain, COWD_MAX_GRAIN);
    uint64_t cover = (uint64_t)grain * COWD_GTES;
    uint64_t n_gd = (sectors + cover - 1) / cover;
    uint64_t gd_sectors = (n_gd * 4 + 511) / 512;
    uint64_t free_sector = COWD_HDR_SECTORS + gd_sectors;
    if (sectors > UINT32_MAX || free_sector + sectors + n_gd * COWD_GT_SECTORS > UINT32_MAX)
        return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " sectors is too large for a vmfsSparse "
                          "extent (sector numbers are 32-bit, limit about 2 TiB)", path, sectors);
    unsigned char h[COWD_HDR_BYTES];
    memset(h, 0, sizeof h);
    wr32(h, COWD_MAGIC);
    wr32(h + H_VERSION, 1);
    wr32(h + H_FLAGS, 3);
    wr32(h + H_NUM_SECTORS, (uint32_t)sectors);
    wr32(h + H_GRAIN, grain);
    wr32(h + H_GD_OFF, COWD_HDR_SECTORS);
    wr32(h + H_NUM_GDE, (uint32_t)n_gd);
    wr32(h + H_FREE, (uint32_t)free_sector);
    /* savedGeneration and uncleanShutdown start at 0. */
    if (ftruncate(fd, (off_t)(free_sector * 512)) < 0)
        return vd_err_errno(errno, "%s: sizing new vmfsSparse extent", path);
    if (vd_pwrite_full(fd, h, sizeof h, 0) < 0)
        return vd_err_errno(errno, "%s: writing COWD header", path);
    return 0;
}
