/* maint_sx.c - a hosted sparse extent's whole metadata in memory, the
 * helpers the maintenance operations write it back with, and the
 * consistency check (and repair) they all start from.
 *
 * The check looks at: the redundant directory being readable; every table
 * pointer (in the file, not overlapping the header, the descriptor, the
 * directories or another table); primary and redundant tables entry by
 * entry; every entry (0, 1 only with flag 0x4, else a grain that starts
 * at or after overHead and before the end of the file); grains shared by
 * two entries or overlapping metadata; the descriptor's size for the
 * extent against the header's capacity; the uncleanShutdown flag.
 *
 * Repairs, in this order so that an interruption never makes things
 * worse: a grain shared by two entries is copied to the end of the file
 * for the second one (both keep reading what they read before); a table
 * whose pointer is bad is rewritten from its good copy (at its standard
 * position when that is free, else at the end of the file); entries that
 * disagree take the primary's value unless it is invalid and the
 * redundant one is valid; invalid entries become unallocated; then the
 * tables (synced), the directories (synced) and last the header. */
#include "maint_priv.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/fileio.h"

#define MAX_SHOWN 50u

/* ---- loading -------------------------------------------------------------- */

static int read_dir(struct sx *x, uint64_t off, uint32_t **out)
{
    uint64_t bytes = x->n_gd * 4;
    *out = NULL;
    if (off == 0 || off > x->file_size / 512 || off * 512 + bytes > x->file_size)
        return 1;
    uint32_t *d = malloc(bytes ? bytes : 4);
    if (!d)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for the grain directory", x->path);
    if (vd_pread_full(x->fd, d, bytes, off * 512, 1) < 0) {
        free(d);
        return vd_err_errno(errno ? errno : EIO, "%s: reading grain directory", x->path);
    }
    for (uint64_t i = 0; i < x->n_gd; i++)
        d[i] = le32toh(d[i]);
    *out = d;
    return 0;
}

/* Table at sector p, or NULL (with *rc 0) when p is 0 or out of the file. */
static uint32_t *read_table(struct sx *x, uint32_t p, uint64_t *budget, int *rc)
{
    uint64_t bytes = (uint64_t)x->h.num_gtes * 4;
    *rc = 0;
    if (p == 0 || (uint64_t)p * 512 + bytes > x->file_size)
        return NULL;
    if (bytes > *budget) {
        *rc = vd_err_set(VD_E_CORRUPT, "%s: the grain directories point at more table data "
                         "than the file holds (tables overlap)", x->path);
        return NULL;
    }
    *budget -= bytes;
    uint32_t *t = malloc(bytes);
    if (!t) {
        *rc = vd_err_set(VD_E_NOMEM, "%s: out of memory for grain tables", x->path);
        return NULL;
    }
    if (vd_pread_full(x->fd, t, bytes, (uint64_t)p * 512, 1) < 0) {
        free(t);
        *rc = vd_err_errno(errno ? errno : EIO, "%s: reading grain table at sector %" PRIu32,
                           x->path, p);
        return NULL;
    }
    for (uint32_t i = 0; i < x->h.num_gtes; i++)
        t[i] = le32toh(t[i]);
    return t;
}

static int load(struct sx *x, int fd, const char *path, const struct kdmv_header *h)
{
    memset(x, 0, sizeof *x);
    x->fd = fd;
    x->path = path;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    x->file_size = (uint64_t)st.st_size;
    unsigned char hb[512];
    if (x->file_size < 512)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header", path);
    int rc = 0;
    if (h) {
        x->h = *h;
    } else {
        if (vd_pread_full(fd, hb, sizeof hb, 0, 1) < 0)
            return vd_err_errno(errno ? errno : EIO, "%s: reading sparse header", path);
        if ((rc = kdmv_header_decode(hb, path, "header", &x->h)) < 0)
            return rc;
    }
    if (x->h.flags & KDMV_FLAG_COMPRESSED)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: a compressed (streamOptimized) extent", path);
    if (x->h.gd_off == KDMV_GD_AT_END)
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory at end of file in an "
                          "uncompressed extent", path);
    x->grain_bytes = x->h.grain * 512;
    uint64_t cover = (uint64_t)x->h.num_gtes * x->h.grain;
    x->n_gd = x->h.capacity / cover + (x->h.capacity % cover != 0);
    if (x->n_gd > x->file_size / 4)
        return vd_err_set(VD_E_CORRUPT, "%s: a grain directory of %" PRIu64 " entries cannot "
                          "fit in a file of %" PRIu64 " bytes (capacity %" PRIu64 " sectors)",
                          path, x->n_gd, x->file_size, x->h.capacity);
    x->gd_sec = (x->n_gd * 4 + 511) / 512;
    x->gt_sec = ((uint64_t)x->h.num_gtes * 4 + 511) / 512;
    if ((rc = read_dir(x, x->h.gd_off, &x->gd)) != 0) {
        if (rc > 0)
            rc = vd_err_set(VD_E_CORRUPT, "%s: grain directory at sector %" PRIu64
                            " extends past the end of the file", path, x->h.gd_off);
        return rc;
    }
    if (x->h.flags & KDMV_FLAG_RGD) {
        if ((rc = read_dir(x, x->h.rgd_off, &x->rgd)) < 0)
            return rc;
        x->rgd_broken = rc > 0;
    }
    size_t n = x->n_gd ? (size_t)x->n_gd : 1;
    x->gt = calloc(n, sizeof *x->gt);
    x->dirty = calloc(n, 1);
    if (x->rgd)
        x->rgt = calloc(n, sizeof *x->rgt);
    if (!x->gt || !x->dirty || (x->rgd && !x->rgt))
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", path);
    uint64_t budget = x->file_size, rbudget = x->file_size;
    for (uint64_t i = 0; i < x->n_gd; i++) {
        x->gt[i] = read_table(x, x->gd[i], &budget, &rc);
        if (rc < 0)
            return rc;
        if (x->rgd) {
            x->rgt[i] = read_table(x, x->rgd[i], &rbudget, &rc);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int sx_load(struct sx *x, int fd, const char *path)
{
    return load(x, fd, path, NULL);
}

int sx_load_with(struct sx *x, int fd, const char *path, const struct kdmv_header *h)
{
    return load(x, fd, path, h);
}

void sx_free(struct sx *x)
{
    for (uint64_t i = 0; (x->gt || x->rgt) && i < x->n_gd; i++) {
        if (x->gt)
            free(x->gt[i]);
        if (x->rgt)
            free(x->rgt[i]);
    }
    free(x->gt);
    free(x->rgt);
    free(x->gd);
    free(x->rgd);
    free(x->dirty);
    memset(x, 0, sizeof *x);
    x->fd = -1;
}

/* ---- writing ------------------------------------------------------------- */

void sx_set_gte(struct sx *x, uint64_t g, uint32_t v)
{
    uint64_t i = g / x->h.num_gtes;
    x->gt[i][g % x->h.num_gtes] = v;
    x->dirty[i] = 1;
}

int sx_sync(struct sx *x)
{
    if (fdatasync(x->fd) < 0)
        return vd_err_errno(errno, "%s: flushing", x->path);
    return 0;
}

int sx_pwrite(struct sx *x, const void *buf, size_t len, uint64_t off)
{
    if (x->jn)
        return jn_pwrite(x->jn, x->jid, buf, len, off);
    return vd_pwrite_full(x->fd, buf, len, off);
}

/* Keep what a write of [off, off+len) will overwrite (journal only). */
static int sx_save(struct sx *x, uint64_t off, uint64_t len)
{
    if (x->jn && jn_save(x->jn, x->jid, off, len) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: writing the undo journal", x->path);
    return 0;
}

static int write_table(struct sx *x, const uint32_t *t, uint32_t at, uint32_t *buf)
{
    for (uint32_t k = 0; k < x->h.num_gtes; k++)
        buf[k] = htole32(t ? t[k] : 0);
    uint64_t bytes = (uint64_t)x->h.num_gtes * 4, off = (uint64_t)at * 512;
    if (sx_pwrite(x, buf, bytes, off) < 0)
        return vd_err_errno(errno, "%s: writing grain table at sector %" PRIu32, x->path, at);
    if (off + bytes > x->file_size)
        x->file_size = off + bytes;
    return 0;
}

static int write_dir(struct sx *x, const uint32_t *d, uint64_t at)
{
    uint32_t *buf = calloc(x->gd_sec * 128, 4);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
    for (uint64_t i = 0; i < x->n_gd; i++)
        buf[i] = htole32(d[i]);
    int rc = 0;
    if (sx_pwrite(x, buf, x->n_gd * 4, at * 512) < 0)
        rc = vd_err_errno(errno, "%s: writing grain directory at sector %" PRIu64, x->path, at);
    free(buf);
    return rc;
}

int sx_write_tables(struct sx *x)
{
    uint32_t *buf = malloc((size_t)x->h.num_gtes * 4);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
    int rc = 0, any = 0;
    /* With a journal, everything this call overwrites is kept first (one
     * sync of the journal for the lot). */
    for (uint64_t i = 0; x->jn && rc == 0 && i < x->n_gd; i++) {
        uint64_t tb = (uint64_t)x->h.num_gtes * 4;
        if (x->dirty[i] && x->gd[i])
            rc = sx_save(x, (uint64_t)x->gd[i] * 512, tb);
        if (rc == 0 && x->dirty[i] && x->rgd && x->rgd[i])
            rc = sx_save(x, (uint64_t)x->rgd[i] * 512, tb);
    }
    if (rc == 0 && x->jn && x->gd_dirty) {
        rc = sx_save(x, x->h.gd_off * 512, x->n_gd * 4);
        if (rc == 0 && x->rgd)
            rc = sx_save(x, x->h.rgd_off * 512, x->n_gd * 4);
    }
    for (uint64_t i = 0; rc == 0 && i < x->n_gd; i++) {
        if (!x->dirty[i])
            continue;
        any = 1;
        if (x->gd[i])
            rc = write_table(x, x->gt[i], x->gd[i], buf);
        if (rc == 0 && x->rgd && x->rgd[i])
            rc = write_table(x, x->gt[i], x->rgd[i], buf);
    }
    free(buf);
    if (rc == 0 && any)
        rc = sx_sync(x);
    if (rc == 0 && x->gd_dirty) {
        rc = write_dir(x, x->gd, x->h.gd_off);
        if (rc == 0 && x->rgd)
            rc = write_dir(x, x->rgd, x->h.rgd_off);
        if (rc == 0)
            rc = sx_sync(x);
    }
    if (rc == 0) {
        memset(x->dirty, 0, x->n_gd ? (size_t)x->n_gd : 1);
        x->gd_dirty = 0;
    }
    return rc;
}

int sx_write_header(struct sx *x)
{
    unsigned char hb[512];
    kdmv_header_encode(&x->h, hb);
    if (sx_pwrite(x, hb, sizeof hb, 0) < 0)
        return vd_err_errno(errno, "%s: writing sparse header", x->path);
    return sx_sync(x);
}

int sx_copy(struct sx *x, uint64_t from, uint64_t to, uint64_t len, void *buf)
{
    if (vd_pread_full(x->fd, buf, len, from, 0) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: reading grain at offset %" PRIu64,
                            x->path, from);
    if (sx_pwrite(x, buf, len, to) < 0)
        return vd_err_errno(errno, "%s: writing grain at offset %" PRIu64, x->path, to);
    if (to + len > x->file_size)
        x->file_size = to + len;
    return 0;
}

uint64_t sx_append_pos(const struct sx *x)
{
    uint64_t end = x->file_size > x->h.overhead * 512 ? x->file_size : x->h.overhead * 512;
    return (end + x->grain_bytes - 1) / x->grain_bytes * x->grain_bytes;
}

uint64_t sx_meta_end(const struct sx *x)
{
    uint64_t end = x->h.overhead * 512;
    uint64_t tb = (uint64_t)x->h.num_gtes * 4;
#define UPTO(v) do { uint64_t v_ = (v); if (v_ > end) end = v_; } while (0)
    UPTO(512);
    if (x->h.desc_off && x->h.desc_off < (1ull << 40) && x->h.desc_size < (1ull << 40))
        UPTO((x->h.desc_off + x->h.desc_size) * 512);
    UPTO(x->h.gd_off * 512 + x->n_gd * 4);
    if (x->rgd)
        UPTO(x->h.rgd_off * 512 + x->n_gd * 4);
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gd[i])
            UPTO((uint64_t)x->gd[i] * 512 + tb);
        if (x->rgd && x->rgd[i])
            UPTO((uint64_t)x->rgd[i] * 512 + tb);
    }
#undef UPTO
    return end;
}

static int overlaps(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    return a < d && c < b;
}

int sx_meta_overlaps(const struct sx *x, uint64_t a, uint64_t b)
{
    uint64_t tb = (uint64_t)x->h.num_gtes * 4;
    if (overlaps(a, b, 0, x->h.overhead * 512))
        return 1;
    if (overlaps(a, b, x->h.gd_off * 512, x->h.gd_off * 512 + x->n_gd * 4))
        return 1;
    if (x->rgd && overlaps(a, b, x->h.rgd_off * 512, x->h.rgd_off * 512 + x->n_gd * 4))
        return 1;
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gd[i] && overlaps(a, b, (uint64_t)x->gd[i] * 512, (uint64_t)x->gd[i] * 512 + tb))
            return 1;
        if (x->rgd && x->rgd[i] &&
            overlaps(a, b, (uint64_t)x->rgd[i] * 512, (uint64_t)x->rgd[i] * 512 + tb))
            return 1;
    }
    return 0;
}

int sx_truncate(struct sx *x, uint64_t size)
{
    uint64_t meta = sx_meta_end(x);
    if (size < meta)
        size = meta;
    if (size >= x->file_size)
        return 0;
    if ((x->jn ? jn_ftruncate(x->jn, x->jid, size) : ftruncate(x->fd, (off_t)size)) < 0)
        return vd_err_errno(errno, "%s: truncating to %" PRIu64 " bytes", x->path, size);
    x->file_size = size;
    return sx_sync(x);
}

/* ---- reporting ------------------------------------------------------------ */

void sx_say(struct sx_report *r, int level, const char *fmt, ...)
{
    if (level != VMDK_REPORT_INFO && r->shown >= MAX_SHOWN) {
        r->suppressed++;
        return;
    }
    if (level != VMDK_REPORT_INFO)
        r->shown++;
    if (!r->fn)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[1024];
    size_t pl = strlen(r->path);
    if (!strncmp(msg, r->path, pl) && msg[pl] == ':' && msg[pl + 1] == ' ')
        snprintf(line, sizeof line, "%s", msg);     /* it names the file already */
    else
        snprintf(line, sizeof line, "%s: %s", r->path, msg);
    r->fn(r->ctx, level, line);
}

enum fix { NOFIX = 0, FIXED = 1, CANTFIX = 2 };

/* Count one finding and report it (what + the outcome).  CANTFIX: no
 * repair can fix it, said with or without repair. */
static void finding(struct sx_report *r, enum fix how, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finding(struct sx_report *r, enum fix how, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    r->problems++;
    if (how == FIXED) {
        r->repaired++;
        sx_say(r, VMDK_REPORT_REPAIRED, "%s (repaired)", what);
    } else {
        r->unrepaired++;
        if (how == CANTFIX)
            r->cantfix++;
        sx_say(r, VMDK_REPORT_PROBLEM, "%s%s", what, how == CANTFIX ? " (cannot repair)" : "");
    }
}

/* ---- the check -------------------------------------------------------------- */

/* A region of the file (sectors) for the overlap sweeps. */
struct region {
    uint64_t start, len;
    int kind;        /* R_FIXED, R_GT, R_RGT, R_GRAIN */
    uint64_t index;  /* table index or grain number */
};
enum { R_FIXED, R_GT, R_RGT, R_GRAIN };

static int region_cmp(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    /* Fixed regions first, then primary tables, redundant, grains; then index. */
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

struct regions {
    struct region *v;
    size_t n, cap;
};

static int add_region(struct regions *rs, uint64_t start, uint64_t len, int kind, uint64_t index)
{
    if (rs->n == rs->cap) {
        size_t nc = rs->cap ? rs->cap * 2 : 256;
        struct region *nv = realloc(rs->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        rs->v = nv;
        rs->cap = nc;
    }
    rs->v[rs->n++] = (struct region){ start, len, kind, index };
    return 0;
}

/* The fixed metadata regions: header, descriptor, directories. */
static int add_fixed(struct regions *rs, const struct sx *x)
{
    int rc = add_region(rs, 0, 1, R_FIXED, 0);
    if (rc == 0 && x->h.desc_off && x->h.desc_size && x->h.desc_off < (1ull << 53))
        rc = add_region(rs, x->h.desc_off,
                        x->h.desc_size < (1ull << 53) ? x->h.desc_size : (1ull << 53), R_FIXED, 1);
    if (rc == 0)
        rc = add_region(rs, x->h.gd_off, x->gd_sec, R_FIXED, 2);
    if (rc == 0 && x->rgd)
        rc = add_region(rs, x->h.rgd_off, x->gd_sec, R_FIXED, 3);
    return rc;
}

/* Does [start, start+len) overlap a region of the sorted, non-empty
 * regions rs (other than grain number self)?  Regions may overlap each
 * other; maxlen is the longest of them. */
static int sorted_hit(const struct regions *rs, uint64_t maxlen, uint64_t start, uint64_t len,
                      uint64_t self)
{
    /* First region that could reach start: start - maxlen < r.start. */
    size_t lo = 0, hi = rs->n;
    uint64_t from = start > maxlen ? start - maxlen : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rs->v[mid].start < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < rs->n && rs->v[i].start < start + len; i++) {
        const struct region *c = &rs->v[i];
        if (c->len && overlaps(start, start + len, c->start, c->start + c->len) &&
            !(c->kind == R_GRAIN && c->index == self))
            return 1;
    }
    return 0;
}

struct move {
    uint64_t grain;
    uint32_t from;
};

static int is_free(const struct regions *rs, uint64_t start, uint64_t len)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rs->v[i].len && overlaps(start, start + len, rs->v[i].start, rs->v[i].start + rs->v[i].len))
            return 0;
    return 1;
}

int sx_check(struct sx *x, uint64_t desc_sectors, int repair, int structural_only,
             struct sx_report *r)
{
    const uint32_t N = x->h.num_gtes;
    const uint64_t G = x->h.grain;
    const uint64_t fsz = x->file_size;               /* as it was before any repair */
    const int score = structural_only == SX_SCORE;
    if (score)
        repair = 0;
#define IN_FILE(v) ((uint64_t)(v) * 512 < fsz)
#define VALID(v) ((v) <= 1 || ((v) >= x->h.overhead && IN_FILE(v)))
    enum fix fx = repair ? FIXED : NOFIX;
    int hdr_dirty = x->hdr_dirty, rc = 0;
    struct regions rs = { 0 }, keep = { 0 }, claims = { 0 };
    struct move *moves = NULL;
    size_t nmoves = 0;
    size_t nt = x->n_gd ? (size_t)x->n_gd : 1;
    unsigned char *need_p = calloc(nt, 1);
    unsigned char *need_q = calloc(nt, 1);
    unsigned char *differ = calloc(nt, 1);      /* the two copies of table i differed */
    void *gbuf = NULL;
    if (!need_p || !need_q || !differ) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
        goto out;
    }

    if (x->rgd_broken) {
        finding(r, fx, "redundant grain directory at sector %" PRIu64 " extends past the end of "
                "the file%s", x->h.rgd_off, repair ? "; the redundant copy is dropped" : "");
        if (repair) {
            x->h.flags &= ~KDMV_FLAG_RGD;
            hdr_dirty = 1;
        }
    }

    /* 1. Table pointers: in the file (sx_load), and not overlapping the
     * fixed metadata or each other.  A loser's table is dropped here and,
     * when it has a good twin, rebuilt from it below. */
    if (add_fixed(&rs, x) < 0)
        goto nomem;
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gt[i] && add_region(&rs, x->gd[i], x->gt_sec, R_GT, i) < 0)
            goto nomem;
        if (x->rgt && x->rgt[i] && add_region(&rs, x->rgd[i], x->gt_sec, R_RGT, i) < 0)
            goto nomem;
    }
    qsort(rs.v, rs.n, sizeof *rs.v, region_cmp);
    {
        size_t owner = SIZE_MAX;
        uint64_t owner_end = 0;
        for (size_t k = 0; k < rs.n; k++) {
            struct region *c = &rs.v[k];
            if (owner != SIZE_MAX && c->start < owner_end) {
                struct region *o = &rs.v[owner];
                /* The loser: a table rather than fixed metadata, a redundant
                 * table rather than a primary one, else the later index. */
                struct region *lose = c;
                if (c->kind == R_FIXED && o->kind != R_FIXED)
                    lose = o;
                if (lose->kind == R_FIXED) {
                    finding(r, CANTFIX, "header, descriptor and grain directories overlap "
                            "(sectors %" PRIu64 " and %" PRIu64 ")", o->start, c->start);
                    continue;
                }
                uint32_t **arr = lose->kind == R_GT ? x->gt : x->rgt;
                free(arr[lose->index]);
                arr[lose->index] = NULL;
                sx_say(r, VMDK_REPORT_INFO, "%s grain table %" PRIu64 " at sector %" PRIu64
                       " overlaps other metadata", lose->kind == R_GT ? "primary" : "redundant",
                       lose->index, lose->start);
                if (lose == o) {
                    owner = k;
                    owner_end = c->start + c->len;
                }
                continue;
            }
            if (owner == SIZE_MAX || c->start + c->len > owner_end) {
                owner = k;
                owner_end = c->start + c->len;
            }
        }
    }

    /* 2. Pointer pairs, and copies that are not copies: of two tables that
     * differ, one whose entries cannot be grains, or whose pointer breaks
     * its directory's regular layout while the other's keeps it, is not a
     * grain table at all (a damaged pointer) and its twin is used. */
    for (uint64_t i = 0; i < x->n_gd; i++) {
        int hp = x->gt[i] != NULL, hq = x->rgt && x->rgt[i] != NULL;
        uint32_t p = x->gd[i], q = x->rgd ? x->rgd[i] : 0;
        if (!x->rgd) {
            if (!hp && p) {
                finding(r, fx, "grain table %" PRIu64 ": directory entry %" PRIu32 " is invalid "
                        "and there is no redundant copy%s", i, p,
                        repair ? "; its range is lost (reads as unallocated)" : "");
                r->lost += N;
                need_p[i] = 1;
            }
            continue;
        }
        if (hp && hq) {
            if (!memcmp(x->gt[i], x->rgt[i], (size_t)N * 4))
                continue;
            differ[i] = 1;
            /* junk: most of the differing entries cannot be grains.  A
             * copy off its directory's layout is junk only if it is not
             * ahead of the other (an interrupted write leaves the
             * redundant copy behind the primary, never the reverse). */
            uint32_t nd = 0, bp = 0, bq = 0, p_behind = 0, p_ahead = 0;
            for (uint32_t k = 0; k < N; k++) {
                uint32_t a = x->gt[i][k], b = x->rgt[i][k];
                if (a == b)
                    continue;
                nd++;
                bp += !VALID(a);
                bq += !VALID(b);
                p_behind += a <= 1 && b > 1;
                p_ahead += a > 1 && b <= 1;
            }
            int junk_p = bp >= 8 && (uint64_t)bp * 4 >= (uint64_t)nd * 3;
            int junk_q = bq >= 8 && (uint64_t)bq * 4 >= (uint64_t)nd * 3;
            int onp = p == x->h.gd_off + x->gd_sec + i * x->gt_sec;
            int onq = q == x->h.rgd_off + x->gd_sec + i * x->gt_sec;
            int drop_p = (junk_p && !bq) || (!bp && !bq && !onp && onq && p_behind > p_ahead);
            int drop_q = !drop_p && ((junk_q && !bp) || (!bp && !bq && !onq && onp));
            if (drop_p) {
                finding(r, fx, "grain table %" PRIu64 ": the primary copy at sector %" PRIu32
                        " is not a copy of the redundant one at sector %" PRIu32 " (%s)%s", i,
                        p, q, junk_p ? "most of its entries cannot be grains"
                                     : "its directory entry breaks the directory's layout",
                        repair ? "; rebuilt from the redundant copy" : "");
                free(x->gt[i]);
                x->gt[i] = x->rgt[i];
                x->rgt[i] = NULL;
                need_p[i] = 1;
            } else if (drop_q) {
                finding(r, fx, "grain table %" PRIu64 ": the redundant copy at sector %" PRIu32
                        " is not a copy of the primary one at sector %" PRIu32 " (%s)%s", i,
                        q, p, junk_q ? "most of its entries cannot be grains"
                                     : "its directory entry breaks the directory's layout",
                        repair ? "; rebuilt from the primary copy" : "");
                free(x->rgt[i]);
                x->rgt[i] = NULL;
                need_q[i] = 1;
            }
            continue;
        }
        if (hp && !hq) {
            finding(r, fx, "grain table %" PRIu64 ": redundant directory entry %" PRIu32
                    " is %s; primary entry %" PRIu32 " is good", i, q,
                    q ? "invalid" : "missing", p);
            need_q[i] = 1;
        } else if (!hp && hq) {
            finding(r, fx, "grain table %" PRIu64 ": directory entry %" PRIu32 " is %s; "
                    "redundant entry %" PRIu32 " is good", i, p, p ? "invalid" : "missing", q);
            need_p[i] = 1;
            x->gt[i] = x->rgt[i];          /* the redundant content becomes the content */
            x->rgt[i] = NULL;
        } else if (p || q) {
            finding(r, fx, "grain table %" PRIu64 ": both directory entries (%" PRIu32 ", %"
                    PRIu32 ") are invalid%s", i, p, q,
                    repair ? "; its range is lost (reads as unallocated)" : "");
            r->lost += N;
            need_p[i] = need_q[i] = 1;
        }
    }

    /* 3. Entries.  Where the copies disagree and both entries are valid,
     * the one whose grain no other entry (agreeing in both copies) and no
     * metadata uses wins; else the primary (what readers use). */
    if (add_fixed(&claims, x) < 0)
        goto nomem;
    uint64_t maxlen = x->gd_sec > G ? x->gd_sec : G;
    if (x->gt_sec > maxlen)
        maxlen = x->gt_sec;
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gt[i] && !need_p[i] && add_region(&claims, x->gd[i], x->gt_sec, R_GT, i) < 0)
            goto nomem;
        if (x->rgt && x->rgt[i] && !need_q[i] &&
            add_region(&claims, x->rgd[i], x->gt_sec, R_RGT, i) < 0)
            goto nomem;
        if (x->h.desc_size > maxlen)
            maxlen = x->h.desc_size < (1ull << 53) ? x->h.desc_size : (1ull << 53);
        uint32_t *P = x->gt[i], *Q = x->rgt ? x->rgt[i] : NULL;
        for (uint32_t k = 0; P && k < N; k++)
            if (P[k] > 1 && (!Q || Q[k] == P[k]) && VALID(P[k]) &&
                add_region(&claims, P[k], G, R_GRAIN, i * N + k) < 0)
                goto nomem;
    }
    qsort(claims.v, claims.n, sizeof *claims.v, region_cmp);
    int need_zero_flag = 0;
    uint64_t lagging = 0;       /* redundant entries behind a valid primary, unclean */
    for (uint64_t i = 0; i < x->n_gd; i++) {
        uint32_t *P = x->gt[i], *Q = x->rgt ? x->rgt[i] : NULL;
        if (!P && !Q)
            continue;
        if (!P) {              /* cannot happen after step 2, but stay safe */
            x->gt[i] = P = Q;
            x->rgt[i] = Q = NULL;
        }
        for (uint32_t k = 0; k < N; k++) {
            uint64_t g = i * N + k;
            uint32_t v = P[k];
            if (Q && Q[k] != P[k]) {
                uint32_t p = P[k], q = Q[k];
                int pv = VALID(p), qv = VALID(q);
                int pc = pv && p > 1 && sorted_hit(&claims, maxlen, p, G, g);
                int qc = qv && q > 1 && sorted_hit(&claims, maxlen, q, G, g);
                int keep_p = pv && (!pc || !(qv && !qc));
                v = keep_p ? p : qv ? q : 0;
                /* An extent left unclean may have been stopped between
                 * the primary and the redundant write of a table: a valid
                 * primary entry is then the newer one (it is what reads
                 * use), the lag is part of the unclean shutdown, and any
                 * rewrite of the table brings the redundant copy level.
                 * (Maintenance, structural_only 1, still wants them equal.) */
                if (x->h.unclean && keep_p && !pc && structural_only != 1)
                    lagging++;
                else
                    finding(r, fx, "grain %" PRIu64 ": primary entry %" PRIu32 " and "
                            "redundant entry %" PRIu32 " disagree%s%s%s", g, p, q,
                            repair ? "; keeping " : "",
                            repair ? (keep_p ? "the primary" : qv ? "the redundant" : "neither")
                                   : "",
                            repair && pc && !keep_p ? " (the primary's grain belongs to "
                                                      "another entry)" : "");
                x->dirty[i] = 1;
            }
            if (v == 1 && !(x->h.flags & KDMV_FLAG_ZERO_GTE))
                need_zero_flag = 1;
            if (v > 1 && (v < x->h.overhead || !IN_FILE(v))) {
                finding(r, fx, "grain %" PRIu64 ": entry %" PRIu32 " points %s%s", g, v,
                        v < x->h.overhead ? "into the metadata" : "past the end of the file",
                        repair ? "; the grain is dropped (unallocated)" : "");
                r->lost++;
                v = 0;
                x->dirty[i] = 1;
            }
            P[k] = v;
        }
        if (Q) {
            free(Q);
            x->rgt[i] = NULL;
        }
    }
    if (need_zero_flag) {
        finding(r, fx, "zeroed-grain entries (1) without header flag 0x4%s",
                repair ? "; flag set, version 2" : "");
        if (repair) {
            x->h.flags |= KDMV_FLAG_ZERO_GTE;
            if (x->h.version < 2)
                x->h.version = 2;
            hdr_dirty = 1;
        }
    }

    /* 4. Grains against each other and against the metadata above the
     * overhead.  keep collects every region that stays in use. */
    if (add_fixed(&keep, x) < 0)
        goto nomem;
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gt[i] && !need_p[i] && add_region(&keep, x->gd[i], x->gt_sec, R_GT, i) < 0)
            goto nomem;
        if (x->rgd && x->rgd[i] && !need_q[i] && x->gt[i] &&
            add_region(&keep, x->rgd[i], x->gt_sec, R_RGT, i) < 0)
            goto nomem;
    }
    for (uint64_t i = 0; i < x->n_gd; i++)
        for (uint32_t k = 0; x->gt[i] && k < N; k++)
            if (x->gt[i][k] > 1 && add_region(&keep, x->gt[i][k], G, R_GRAIN, i * N + k) < 0)
                goto nomem;
    qsort(keep.v, keep.n, sizeof *keep.v, region_cmp);
    {
        /* Kept regions never overlap a kept grain.  owner: the kept region
         * reaching furthest so far (anything starting before its end
         * overlaps it). */
        size_t owner = SIZE_MAX;
        uint64_t owner_end = 0;
        for (size_t k = 0; k < keep.n; k++) {
            struct region *c = &keep.v[k];
            struct region *o = owner == SIZE_MAX ? NULL : &keep.v[owner];
            if (o && c->start < owner_end && (c->kind == R_GRAIN || o->kind == R_GRAIN)) {
                struct region *gr = c->kind == R_GRAIN ? c : o;
                struct region *other = gr == c ? o : c;
                /* A grain table whose two copies differed and that has a
                 * twin gives way to a grain: it is rebuilt elsewhere from
                 * the merged content.  Otherwise a grain loses against
                 * metadata; of two grains the later one gets its own copy. */
                if ((other->kind == R_GT || other->kind == R_RGT) && differ[other->index] &&
                    x->rgd) {
                    uint64_t i = other->index;
                    finding(r, fx, "%s grain table %" PRIu64 " at sector %" PRIu64 " overlaps "
                            "grain %" PRIu64 "%s", other->kind == R_GT ? "primary" : "redundant",
                            i, other->start, gr->index,
                            repair ? "; the table is rebuilt elsewhere from its twin" : "");
                    (other->kind == R_GT ? need_p : need_q)[i] = 1;
                    x->dirty[i] = 1;
                    other->len = 0;
                    if (other == c)
                        continue;
                    owner = k;
                    owner_end = c->start + c->len;
                    continue;
                }
                struct region *lose = gr;
                uint64_t g = lose->index;
                if (c->kind != R_GRAIN || o->kind != R_GRAIN) {
                    finding(r, fx, "grain %" PRIu64 ": entry %" PRIu64 " overlaps the grain "
                            "tables or directories%s", g, lose->start,
                            repair ? "; the grain is dropped (unallocated)" : "");
                    r->lost++;
                    x->gt[g / N][g % N] = 0;
                } else {
                    finding(r, fx, "grains %" PRIu64 " and %" PRIu64 " overlap in the file "
                            "(entries %" PRIu64 " and %" PRIu64 ")%s", o->index, g, o->start,
                            c->start, repair ? "; the second gets its own copy" : "");
                    struct move *nm = realloc(moves, (nmoves + 1) * sizeof *moves);
                    if (!nm)
                        goto nomem;
                    moves = nm;
                    moves[nmoves++] = (struct move){ g, (uint32_t)lose->start };
                }
                x->dirty[g / N] = 1;
                lose->len = 0;               /* no longer kept there */
                if (lose == c)
                    continue;
                owner = k;                   /* o lost: nothing kept reaches past it */
                owner_end = c->start + c->len;
                continue;
            }
            if (!o || c->start + c->len > owner_end) {
                owner = k;
                owner_end = c->start + c->len;
            }
        }
    }

    /* 5. Sizes and flags. */
    uint64_t grow_to = 0;
    if (!structural_only && desc_sectors && desc_sectors != x->h.capacity) {
        uint64_t cover = (uint64_t)N * G;
        int fits = (desc_sectors + cover - 1) / cover <= x->n_gd;
        for (uint64_t i = 0; fits && i < (desc_sectors + cover - 1) / cover; i++)
            fits = x->gt[i] != NULL;
        finding(r, fx, "the descriptor gives the extent %" PRIu64 " sectors but its header "
                "says %" PRIu64 "%s", desc_sectors, x->h.capacity,
                repair ? (desc_sectors < x->h.capacity || fits
                              ? "; the header now agrees with the descriptor"
                              : "; the extent grows to the descriptor's size") : "");
        if (repair) {
            if (desc_sectors < x->h.capacity || fits) {
                x->h.capacity = desc_sectors;
                hdr_dirty = 1;
            } else {
                grow_to = desc_sectors;
            }
        }
    }
    if (!structural_only && x->h.unclean) {
        finding(r, fx, "uncleanShutdown is set (the extent was not closed cleanly)%s",
                lagging ? "; the redundant grain tables lag behind the primary ones "
                          "(an interrupted table write)" : "");
        if (repair) {
            x->h.unclean = 0;
            hdr_dirty = 1;
        }
    }
    if (!repair)
        goto out;

    /* ---- repair ---- */
    /* a. Shared grains: a private copy each, durable before any entry
     * points at it. */
    if (nmoves) {
        if (!(gbuf = malloc(x->grain_bytes)))
            goto nomem;
        for (size_t m = 0; m < nmoves; m++) {
            uint64_t to = sx_append_pos(x);
            if (to / 512 + G > UINT32_MAX) {
                rc = vd_err_set(VD_E_NOSPACE, "%s: no room for a copy of grain %" PRIu64,
                                x->path, moves[m].grain);
                goto out;
            }
            if ((rc = sx_copy(x, (uint64_t)moves[m].from * 512, to, x->grain_bytes, gbuf)) < 0)
                goto out;
            uint64_t g = moves[m].grain;
            x->gt[g / N][g % N] = (uint32_t)(to / 512);
            if (add_region(&keep, to / 512, G, R_GRAIN, g) < 0)
                goto nomem;
        }
        if ((rc = sx_sync(x)) < 0)
            goto out;
    }
    /* b. Tables that need a (new) home: the standard position when no
     * kept region uses it, else the end of the file. */
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (!need_p[i] && !need_q[i])
            continue;
        if (!x->gt[i] && !(x->gt[i] = calloc(N, 4)))
            goto nomem;
        for (int red = 0; red < 2; red++) {
            if (!(red ? need_q[i] : need_p[i]) || (red && !x->rgd))
                continue;
            uint64_t base = red ? x->h.rgd_off : x->h.gd_off;
            uint64_t at = base + x->gd_sec + i * x->gt_sec;
            if (at + x->gt_sec > UINT32_MAX || !is_free(&keep, at, x->gt_sec)) {
                at = (x->file_size + 511) / 512;
                if (at + x->gt_sec > UINT32_MAX) {
                    rc = vd_err_set(VD_E_NOSPACE, "%s: no room for grain table %" PRIu64,
                                    x->path, i);
                    goto out;
                }
                x->file_size = (at + x->gt_sec) * 512;
            }
            if (add_region(&keep, at, x->gt_sec, red ? R_RGT : R_GT, i) < 0)
                goto nomem;
            (red ? x->rgd : x->gd)[i] = (uint32_t)at;
            x->gd_dirty = 1;
        }
        x->dirty[i] = 1;
    }
    /* Redundant copies that were equal all along need no write; every
     * dirty table is written to both places by sx_write_tables. */
    if ((rc = sx_write_tables(x)) < 0)
        goto out;
    if (hdr_dirty && (rc = sx_write_header(x)) < 0)
        goto out;
    x->hdr_dirty = 0;
    if (grow_to && (rc = sx_grow(x, grow_to, NULL, NULL)) < 0)
        goto out;
    goto out;

#undef IN_FILE
#undef VALID
nomem:
    rc = vd_err_set(VD_E_NOMEM, "%s: out of memory while checking", x->path);
out:
    if (x->rgt) {
        for (uint64_t i = 0; i < x->n_gd; i++) {
            free(x->rgt[i]);
            x->rgt[i] = NULL;
        }
    }
    free(rs.v);
    free(keep.v);
    free(claims.v);
    free(moves);
    free(need_p);
    free(need_q);
    free(differ);
    free(gbuf);
    return rc;
}
