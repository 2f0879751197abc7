/* extent_sesparse.c - seSparse extents (ESXi space-efficient deltas),
 * read-only.
 *
 * Layout (reference section 4.2): a 512-byte constant header of u64 fields
 * (offsets and sizes in sectors), a volatile header, a journal, the grain
 * directory (u64 entries), the grain tables (4096 u64 entries, 64 sectors
 * each), a free bitmap, a backmap and the grains (4 KiB each).  The free
 * bitmap, backmap and journal formats are not public, so writing is not
 * offered; a file whose journal still needs replaying is refused.
 *
 * GD entry: 0 = no table; else the top 32 bits are 0x10000000 and the low
 * 32 bits are the table's index in the grain-table area.
 * GT entry, by its top nibble: 0 unallocated (whole entry 0; read the
 * parent), 1 unmapped and 2 zeroed (read zeros), 3 allocated (grain index
 * in bits 0-47 (high part) and 48-59 (low 12 bits)); anything else is an
 * error.  The GD is loaded and checked at open, tables on demand. */
#include "extent.h"
#include "gt_cache.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/fileio.h"

#define SES_MAGIC 0x00000000cafebabeull
#define SES_VOLATILE_MAGIC 0x00000000cafecafeull
#define SES_VERSION 0x0000000200000001ull
#define SES_GRAIN 8u                  /* sectors */
#define SES_GT_SECTORS 64u
#define SES_GTES 4096u                /* u64 entries per table */
#define SES_GT_BYTES (SES_GTES * 8u)
#define SES_MAX_CAPACITY (1ull << 40) /* sectors (512 TiB; ESXi stops at 64 TB) */
#define GT_CACHE_SLOTS 32

/* Cached table entries after checking: */
#define E_HOLE 0                      /* unallocated: the parent's data */
#define E_ZERO UINT64_MAX             /* unmapped or zeroed grain */
/* anything else: the grain's sector in the file */

struct sesparse {
    uint64_t capacity;                /* sectors */
    uint64_t gt_cover;                /* bytes covered by one table */
    uint64_t file_sectors;            /* whole sectors in the file */
    uint64_t gts_off, gts_size;       /* grain-table area, sectors */
    uint64_t grains_off, grains_size; /* grain area, sectors */
    uint64_t n_gd;                    /* GD entries used (covering the capacity) */
    uint64_t *gd;                     /* table sector, 0 = none */
    pthread_mutex_t lock;
    struct gt_cache cache;            /* SES_GTES decoded entries a table */
};

static inline uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

/* Does [off, off+size) (sectors) lie inside the file? */
static int inside(const struct sesparse *s, uint64_t off, uint64_t size)
{
    return off <= s->file_sectors && size <= s->file_sectors - off;
}

static int parse_header(struct extent *e, struct sesparse *s)
{
    uint64_t fsize;
    int rc = vd_file_size(e->file, &fsize);
    if (rc < 0)
        return rc;
    s->file_sectors = fsize / 512;
    if (fsize < 512)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a seSparse header (%" PRIu64
                          " bytes)", e->path, fsize);
    unsigned char h[512];
    if ((rc = vd_file_pread(e->file, h, sizeof h, 0, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading seSparse header", e->path);
    if (rd64(h) != SES_MAGIC)
        return vd_err_set(VD_E_CORRUPT, "%s: not a seSparse extent (bad magic 0x%016" PRIx64
                          ")", e->path, rd64(h));
    if (rd64(h + 8) != SES_VERSION)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse version 0x%016" PRIx64 " is not "
                          "supported (0x%016llx is)", e->path, rd64(h + 8), SES_VERSION);
    s->capacity = rd64(h + 16);
    if (rd64(h + 24) != SES_GRAIN)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse grain size %" PRIu64 " sectors is "
                          "not supported (8 is)", e->path, rd64(h + 24));
    if (rd64(h + 32) != SES_GT_SECTORS)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse grain table size %" PRIu64
                          " sectors is not supported (64 is)", e->path, rd64(h + 32));
    if (rd64(h + 40) != 0)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse flags 0x%016" PRIx64 " are not "
                          "supported", e->path, rd64(h + 40));
    for (int i = 0; i < 4; i++)
        if (rd64(h + 48 + 8 * i) != 0)
            return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse reserved field %d is not zero",
                              e->path, i + 1);
    if (s->capacity > SES_MAX_CAPACITY)
        return vd_err_set(VD_E_CORRUPT, "%s: seSparse capacity %" PRIu64 " sectors is "
                          "implausibly large", e->path, s->capacity);
    uint64_t vh_off = rd64(h + 80);
    uint64_t gd_off = rd64(h + 128), gd_size = rd64(h + 136);
    s->gts_off = rd64(h + 144);
    s->gts_size = rd64(h + 152);
    s->grains_off = rd64(h + 192);
    s->grains_size = rd64(h + 200);

    /* The volatile header: a journal that still needs replaying means the
     * tables may not describe the data yet. */
    if (vh_off == 0 || !inside(s, vh_off, 1))
        return vd_err_set(VD_E_CORRUPT, "%s: seSparse volatile header at sector %" PRIu64
                          " is outside the file", e->path, vh_off);
    unsigned char vh[512];
    if ((rc = vd_file_pread(e->file, vh, sizeof vh, vh_off * 512, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading seSparse volatile header", e->path);
    if (rd64(vh) != SES_VOLATILE_MAGIC)
        return vd_err_set(VD_E_CORRUPT, "%s: bad seSparse volatile header magic 0x%016"
                          PRIx64, e->path, rd64(vh));
    if (rd64(vh + 24) != 0)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: seSparse journal must be replayed (the disk "
                          "was not closed cleanly; open it on ESXi first)", e->path);

    if (s->grains_off == 0 || s->gts_off == 0)
        return vd_err_set(VD_E_CORRUPT, "%s: seSparse grain or grain-table area at sector 0",
                          e->path);
    s->gt_cover = (uint64_t)SES_GTES * SES_GRAIN * 512;
    uint64_t cover_sectors = (uint64_t)SES_GTES * SES_GRAIN;
    s->n_gd = (s->capacity + cover_sectors - 1) / cover_sectors;
    if (gd_off == 0 || !inside(s, gd_off, gd_size))
        return vd_err_set(VD_E_CORRUPT, "%s: seSparse grain directory (sector %" PRIu64 ", %"
                          PRIu64 " sectors) is outside the file", e->path, gd_off, gd_size);
    if (gd_size * 64 < s->n_gd)
        return vd_err_set(VD_E_CORRUPT, "%s: seSparse grain directory has %" PRIu64
                          " entries but the capacity of %" PRIu64 " sectors needs %" PRIu64,
                          e->path, gd_size * 64, s->capacity, s->n_gd);
    e->grain_bytes = SES_GRAIN * 512;
    e->write_limit = 0;

    s->gd = malloc(s->n_gd ? s->n_gd * 8 : 8);
    if (!s->gd)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for grain directory", e->path);
    if (s->n_gd && (rc = vd_file_pread(e->file, s->gd, s->n_gd * 8, gd_off * 512, 1)) < 0)
        return vd_file_read_err(e->file, rc, "%s: reading seSparse grain directory", e->path);
    for (uint64_t i = 0; i < s->n_gd; i++) {
        uint64_t v = le64toh(s->gd[i]);
        s->gd[i] = 0;
        if (v == 0)
            continue;
        if ((v >> 32) != 0x10000000u)
            return vd_err_set(VD_E_CORRUPT, "%s: seSparse grain directory entry %" PRIu64
                              " is invalid (0x%016" PRIx64 "; the top bits must be "
                              "0x10000000)", e->path, i, v);
        uint64_t idx = v & 0xffffffffu;
        uint64_t rel = idx * SES_GT_SECTORS;
        if (rel + SES_GT_SECTORS > s->gts_size || s->gts_off > s->file_sectors ||
            !inside(s, s->gts_off + rel, SES_GT_SECTORS))
            return vd_err_set(VD_E_CORRUPT, "%s: seSparse grain directory entry %" PRIu64
                              " names grain table %" PRIu64 ", outside the grain-table area "
                              "or the file", e->path, i, idx);
        s->gd[i] = s->gts_off + rel;
    }
    return 0;
}

/* Read-only: tables never change, so nothing is written back. */
static int no_writeback(void *ctx, struct gt_slot *sl)
{
    (void)ctx;
    (void)sl;
    return 0;
}

/* The checked entries of table gi, or NULL: *rc < 0 on error, 0 when the
 * table is absent.  Caller holds s->lock. */
static const uint64_t *gt_get(struct extent *e, struct sesparse *s, uint64_t gi, int *rc)
{
    *rc = 0;
    struct gt_slot *sl = gt_cache_find(&s->cache, gi);
    if (sl)
        return sl->tab;
    if (gi >= s->n_gd || s->gd[gi] == 0)
        return NULL;
    if (!(sl = gt_cache_take(&s->cache, no_writeback, NULL, e->path, rc)))
        return NULL;
    uint64_t *t = sl->tab;
    int r = gt_cache_read(&s->cache, sl, e->file, s->gd[gi] * 512, 8);
    if (r < 0) {
        *rc = vd_file_read_err(e->file, r, "%s: reading seSparse grain table %" PRIu64,
                               e->path, gi);
        return NULL;
    }
    for (uint32_t i = 0; i < SES_GTES; i++) {
        uint64_t v = t[i];
        switch (v >> 60) {
        case 0:
            if (v != 0) {
                *rc = vd_err_set(VD_E_CORRUPT, "%s: seSparse grain table %" PRIu64 " entry %"
                                 PRIu32 " is unallocated but not zero (0x%016" PRIx64 ")",
                                 e->path, gi, i, v);
                return NULL;
            }
            t[i] = E_HOLE;
            break;
        case 1:             /* unmapped */
        case 2:             /* zeroed */
            t[i] = E_ZERO;
            break;
        case 3: {
            uint64_t g = ((v & 0x0fff000000000000ull) >> 48) |
                         ((v & 0x0000ffffffffffffull) << 12);
            if (g >= s->grains_size / SES_GRAIN || s->grains_off > s->file_sectors ||
                !inside(s, s->grains_off + g * SES_GRAIN, SES_GRAIN)) {
                *rc = vd_err_set(VD_E_CORRUPT, "%s: seSparse grain table %" PRIu64 " entry %"
                                 PRIu32 " points at grain %" PRIu64 ", past the grain area "
                                 "or the end of file", e->path, gi, i, g);
                return NULL;
            }
            t[i] = s->grains_off + g * SES_GRAIN;
            break;
        }
        default:
            *rc = vd_err_set(VD_E_CORRUPT, "%s: seSparse grain table %" PRIu64 " entry %"
                             PRIu32 " has unknown type %" PRIu64 " (0x%016" PRIx64 ")",
                             e->path, gi, i, v >> 60, v);
            return NULL;
        }
    }
    gt_cache_set(&s->cache, sl, gi);
    return t;
}

static enum map_kind kind_of(uint64_t v)
{
    return v == E_HOLE ? MAP_HOLE : v == E_ZERO ? MAP_ZERO : MAP_DATA;
}

static int ses_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    struct sesparse *s = e->priv;
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
    uint64_t gb = SES_GRAIN * 512;

    pthread_mutex_lock(&s->lock);
    int rc;
    const uint64_t *t = gt_get(e, s, gi, &rc);
    if (!t) {
        pthread_mutex_unlock(&s->lock);
        if (rc < 0)
            return rc;
        m->kind = MAP_HOLE;
        m->len = len;
        return 0;
    }
    uint64_t g = (off % s->gt_cover) / gb;
    uint64_t in = off % gb;
    uint64_t v = t[g];
    enum map_kind kind = kind_of(v);
    uint64_t run = gb - in;
    uint64_t expect = v + SES_GRAIN;
    for (uint64_t k = g + 1; run < len && k < SES_GTES; k++) {
        if (kind == MAP_DATA) {
            if (t[k] != expect)
                break;
            expect += SES_GRAIN;
        } else if (kind_of(t[k]) != kind) {
            break;
        }
        run += gb;
    }
    pthread_mutex_unlock(&s->lock);
    m->kind = kind;
    m->file_off = kind == MAP_DATA ? v * 512 + in : 0;
    m->len = run < len ? run : len;
    return 0;
}

static void ses_destroy(struct extent *e)
{
    struct sesparse *s = e->priv;
    if (!s)
        return;
    gt_cache_destroy(&s->cache);
    free(s->gd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    e->priv = NULL;
}

static const struct extent_ops ses_ops = {
    .name = "seSparse",
    .map = ses_map,
    .destroy = ses_destroy,
};

int extent_sesparse_open(struct extent *e)
{
    if (e->writable)
        return vd_err_set(VD_E_READONLY, "%s: seSparse extents can only be read; open the "
                          "disk read-only", e->path);
    struct sesparse *s = calloc(1, sizeof *s);
    if (!s)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    pthread_mutex_init(&s->lock, NULL);
    e->priv = s;
    e->ops = &ses_ops;
    int rc = gt_cache_init(&s->cache, GT_CACHE_SLOTS, SES_GT_BYTES);
    if (rc == 0)
        rc = parse_header(e, s);
    if (rc < 0) {
        ses_destroy(e);
        e->ops = NULL;
    }
    return rc;
}
