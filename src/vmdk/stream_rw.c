/* stream_rw.c - writing into an existing streamOptimized extent.
 *
 * A streamOptimized file is written once, front to back, so its grains
 * cannot be changed in place.  Here a write becomes new compressed grains
 * (marker + zlib data) appended after everything the file still uses; the
 * grain tables live in memory, and a flush writes every table, the grain
 * directory, the footer and the end-of-stream marker after the last grain,
 * then cuts the file there.  The next write overwrites that metadata; the
 * next flush writes it again.  So after each flush the file is a complete
 * streamOptimized disk in VMware's layout, the replaced copies of grains
 * are garbage inside it (check reports them, clone and shrink drop them),
 * and between flushes the grain markers alone describe the data (repair
 * rebuilds the tables from them).
 *
 * Whole grains are compressed by the writing thread outside the lock, so
 * the workers of WriteAsync compress in parallel.  A write covering part
 * of a grain fills an in-memory copy of that grain, which is compressed
 * once every sector of it was written, or when the copy is evicted, or at
 * flush; small sequential writes thus compress each grain once. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "link.h"
#include "stream_priv.h"
#include "vmdk.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define LEVEL 6

static void wr32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint64_t pad512(uint64_t n) { return (n + 511) / 512 * 512; }

/* ---- set up ------------------------------------------------------------ */

void stream_rw_destroy(struct stream *s)
{
    if (!s->tabs)
        return;
    for (uint64_t i = 0; i < s->n_gd; i++)
        free(s->tabs[i]);
    free(s->tabs);
    s->tabs = NULL;
    for (int i = 0; i < STREAM_PEND_SLOTS; i++) {
        free(s->pend[i].data);
        free(s->pend[i].written);
    }
    for (int i = 0; i < s->nzpool; i++)
        libdeflate_free_compressor(s->zpool[i]);
    for (int i = 0; i < s->nspool; i++)
        libdeflate_free_compressor(s->spool[i]);
    pthread_cond_destroy(&s->idle);
}

/* The byte just past the record (grain marker + data) at sector gte. */
static int record_end(struct extent *e, struct stream *s, uint32_t gte, uint64_t *end)
{
    unsigned char m[12];
    int rc = vd_file_pread(e->file, m, sizeof m, (uint64_t)gte * 512, 1);
    if (rc < 0)
        return vd_file_read_err(e->file, rc, "%s: reading the grain at sector %" PRIu32,
                                e->path, gte);
    uint32_t size;
    memcpy(&size, m + 8, 4);
    *end = pad512((uint64_t)gte * 512 + 12 + le32toh(size));
    return 0;
}

int stream_rw_init(struct extent *e, struct stream *s)
{
    if (!s->markers)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: this streamOptimized file has no grain "
                          "markers and cannot be written in place; clone it to write it",
                          e->path);
    if (e->fd < 0 || s->h.num_gtes % 128)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: this streamOptimized file cannot be written "
                          "in place; clone it to write it", e->path);
    pthread_cond_init(&s->idle, NULL);
    s->tabs = calloc(s->n_gd ? s->n_gd : 1, sizeof *s->tabs);
    if (!s->tabs)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for the grain tables", e->path);
    for (int i = 0; i < STREAM_PEND_SLOTS; i++)
        s->pend[i].grain = UINT64_MAX;
    size_t tbytes = (size_t)s->h.num_gtes * 4;
    /* New records go after every grain and table the file still uses. */
    uint64_t end = s->h.overhead * 512;
    uint32_t last = 0;
    for (uint64_t gi = 0; gi < s->n_gd; gi++) {
        if (!s->gd[gi])
            continue;
        uint32_t *t = malloc(tbytes);
        if (!t)
            return vd_err_set(VD_E_NOMEM, "%s: out of memory for the grain tables", e->path);
        int rc = vd_file_pread(e->file, t, tbytes, (uint64_t)s->gd[gi] * 512, 1);
        if (rc < 0) {
            free(t);
            return vd_file_read_err(e->file, rc, "%s: reading grain table %" PRIu64, e->path,
                                    gi);
        }
        int any = 0;
        for (uint32_t i = 0; i < s->h.num_gtes; i++) {
            t[i] = le32toh(t[i]);
            if (t[i] > 1 && (uint64_t)t[i] * 512 + 12 > s->file_size) {
                free(t);
                return vd_err_set(VD_E_CORRUPT, "%s: grain table %" PRIu64 " entry %" PRIu32
                                  " points past end of file", e->path, gi, i);
            }
            if (t[i] > last)
                last = t[i];
            any |= t[i] != 0;
        }
        if (any)
            s->tabs[gi] = t;
        else
            free(t);
        uint64_t tend = (uint64_t)s->gd[gi] * 512 + tbytes;
        if (tend > end)
            end = tend;
    }
    if (last > 1) {
        uint64_t rend = 0;
        int rc = record_end(e, s, last, &rend);
        if (rc < 0)
            return rc;
        if (rend > end)
            end = rend;
    }
    s->append = pad512(end);
    s->meta_valid = 1;
    return 0;
}

/* ---- compressing -------------------------------------------------------- */

/* A compressor from the pool (or a new one); locked: the caller holds
 * s->lock already. */
static struct libdeflate_compressor *take_comp(struct stream *s, int store, int locked)
{
    struct libdeflate_compressor **pool = store ? s->spool : s->zpool;
    int *n = store ? &s->nspool : &s->nzpool;
    if (!locked)
        pthread_mutex_lock(&s->lock);
    struct libdeflate_compressor *c = *n ? pool[--*n] : NULL;
    if (!locked)
        pthread_mutex_unlock(&s->lock);
    return c ? c : libdeflate_alloc_compressor(store ? 0 : LEVEL);
}

static void give_comp(struct stream *s, int store, struct libdeflate_compressor *c, int locked)
{
    struct libdeflate_compressor **pool = store ? s->spool : s->zpool;
    int *n = store ? &s->nspool : &s->nzpool;
    if (!locked)
        pthread_mutex_lock(&s->lock);
    if (*n < STREAM_MAX_CODECS) {
        pool[(*n)++] = c;
        c = NULL;
    }
    if (!locked)
        pthread_mutex_unlock(&s->lock);
    if (c)
        libdeflate_free_compressor(c);
}

/* Bytes a record buffer needs (marker, compressed grain, padding). */
static size_t record_cap(const struct stream *s)
{
    return (size_t)pad512(12 + libdeflate_zlib_compress_bound(NULL, s->grain_bytes));
}

/* Compress grain g (grain_bytes of data) into rec (record_cap bytes) as a
 * marker record padded to whole sectors; its size in *len.  Called with or
 * without s->lock: locked says which (the compressor pool takes it). */
static int make_record(struct extent *e, struct stream *s, uint64_t g, const unsigned char *data,
                       unsigned char *rec, size_t *len, int locked)
{
    int store = vmdk_grain_looks_random(data, s->grain_bytes);
    struct libdeflate_compressor *c = take_comp(s, store, locked);
    if (!c)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for a compressor", e->path);
    size_t cap = record_cap(s);
    size_t n = libdeflate_zlib_compress(c, data, s->grain_bytes, rec + 12, cap - 12);
    give_comp(s, store, c, locked);
    if (!n)
        return vd_err_set(VD_E_IO, "%s: compressing grain %" PRIu64 " failed", e->path, g);
    wr64(rec, g * s->h.grain);
    wr32(rec + 8, (uint32_t)n);
    size_t padded = (size_t)pad512(12 + n);
    memset(rec + 12 + n, 0, padded - 12 - n);
    *len = padded;
    return 0;
}

/* ---- placing records ------------------------------------------------------ */

static void drop_pend(struct stream_pend *p)
{
    p->grain = UINT64_MAX;
}

struct stream_pend *stream_pend_find(struct stream *s, uint64_t g)
{
    for (int i = 0; i < STREAM_PEND_SLOTS; i++)
        if (s->pend[i].grain == g)
            return &s->pend[i];
    return NULL;
}

/* Point grain g at sector sec (0: unallocated).  Caller holds s->lock. */
static int set_gte(struct extent *e, struct stream *s, uint64_t g, uint32_t sec)
{
    uint64_t gi = g / s->h.num_gtes;
    uint32_t *t = s->tabs[gi];
    if (!t) {
        if (!sec)
            return 0;
        if (!(t = s->tabs[gi] = calloc(s->h.num_gtes, 4)))
            return vd_err_set(VD_E_NOMEM, "%s: out of memory for a grain table", e->path);
    }
    uint32_t *slot = &t[g % s->h.num_gtes];
    if (*slot > 1)
        s->superseded++;
    *slot = sec;
    s->meta_valid = 0;
    return 0;
}

/* Reserve len bytes for a record.  Caller holds s->lock. */
static int reserve(struct extent *e, struct stream *s, size_t len, uint64_t *pos)
{
    if ((s->append + len) / 512 > UINT32_MAX)
        return vd_err_set(VD_E_NOSPACE, "%s: the streamOptimized file is full (grain "
                          "offsets are 32-bit sector numbers)", e->path);
    *pos = s->append;
    s->append += len;
    s->meta_valid = 0;
    return 0;
}

static void grew(struct stream *s, uint64_t end)
{
    if (end > s->file_size)
        __atomic_store_n(&s->file_size, end, __ATOMIC_RELAXED);
}

/* Append the record rec (len bytes) for grain g and point g at it; the
 * whole-grain write it comes from replaces any pending copy of g.  Called
 * without s->lock; the data is written outside it. */
static int append_record(struct extent *e, struct stream *s, uint64_t g,
                         const unsigned char *rec, size_t len)
{
    uint64_t pos = 0;
    pthread_mutex_lock(&s->lock);
    int rc = reserve(e, s, len, &pos);
    if (rc == 0)
        s->inflight++;
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        return rc;
    if (vd_pwrite_full(e->fd, rec, len, pos) < 0)
        rc = vd_err_errno(errno, "%s: writing grain %" PRIu64 " at offset %" PRIu64, e->path,
                          g, pos);
    pthread_mutex_lock(&s->lock);
    if (rc == 0) {
        grew(s, pos + len);
        struct stream_pend *p = stream_pend_find(s, g);
        if (p)
            drop_pend(p);
        rc = set_gte(e, s, g, (uint32_t)(pos / 512));
    }
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Compress and store the pending grain p.  Caller holds s->lock. */
static int store_pend(struct extent *e, struct stream *s, struct stream_pend *p)
{
    unsigned char *rec = malloc(record_cap(s));
    if (!rec)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    size_t len;
    uint64_t pos = 0;
    int rc = make_record(e, s, p->grain, p->data, rec, &len, 1);
    if (rc == 0)
        rc = reserve(e, s, len, &pos);
    if (rc == 0 && vd_pwrite_full(e->fd, rec, len, pos) < 0)
        rc = vd_err_errno(errno, "%s: writing grain %" PRIu64 " at offset %" PRIu64, e->path,
                          p->grain, pos);
    if (rc == 0) {
        grew(s, pos + len);
        rc = set_gte(e, s, p->grain, (uint32_t)(pos / 512));
    }
    if (rc == 0)
        drop_pend(p);
    free(rec);
    return rc;
}

/* ---- the extent operations ------------------------------------------------ */

int stream_begin_write(struct extent *e)
{
    struct stream *s = e->priv;
    /* The header in VMware's form: directory at the end (in the footer this
     * extent writes at each flush), grain markers, no redundant tables. */
    struct kdmv_header h = s->h;
    h.version = 3;
    h.flags = KDMV_FLAG_NL_TEST | KDMV_FLAG_COMPRESSED | KDMV_FLAG_MARKERS;
    h.rgd_off = 0;
    h.gd_off = KDMV_GD_AT_END;
    h.compress = 1;
    h.unclean = 0;
    unsigned char want[512], have[512];
    kdmv_header_encode(&h, want);
    int rc = vd_file_pread(e->file, have, sizeof have, 0, 1);
    if (rc < 0)
        return vd_file_read_err(e->file, rc, "%s: reading the header", e->path);
    if (memcmp(want, have, sizeof want) != 0 &&
        (vd_pwrite_full(e->fd, want, sizeof want, 0) < 0 || fdatasync(e->fd) < 0))
        return vd_err_errno(errno, "%s: writing the header", e->path);
    pthread_mutex_lock(&s->lock);
    s->h.version = h.version;
    s->h.flags = h.flags;
    s->h.rgd_off = 0;
    s->began = 1;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* A pending slot for grain g holding its content: the old grain, what the
 * links below hold (cow), or zeros.  NULL with *rc on failure.  Caller
 * holds s->lock, which is released while the old content is read. */
static struct stream_pend *pend_get(struct extent *e, struct stream *s, uint64_t g,
                                    cow_read_fn cow, void *cow_ctx, int *rc)
{
    *rc = 0;
    struct stream_pend *p = stream_pend_find(s, g);
    if (p)
        return p;
    uint64_t gb = s->grain_bytes;
    unsigned char *data = malloc(gb);
    uint64_t *bits = calloc((s->h.grain + 63) / 64, 8);
    if (!data || !bits) {
        free(data);
        free(bits);
        *rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        return NULL;
    }
    /* Read the old content unlocked; if another write of a different part
     * of the grain stored it meanwhile, read again (its data must stay). */
    for (;;) {
        int64_t v = stream_gte_of(e, s, g);
        pthread_mutex_unlock(&s->lock);
        if (v > 1)
            *rc = stream_inflate_grain(e, s, g, (uint32_t)v, data);
        else if (v == 0 && cow)
            *rc = cow(cow_ctx, data, gb, e->start + g * gb);
        else
            memset(data, 0, gb);
        pthread_mutex_lock(&s->lock);
        if (*rc < 0 || (p = stream_pend_find(s, g))) {   /* failed, or pending meanwhile */
            free(data);
            free(bits);
            return p;
        }
        if (stream_gte_of(e, s, g) == v)
            break;
    }
    p = NULL;
    for (int i = 0; i < STREAM_PEND_SLOTS; i++) {
        struct stream_pend *q = &s->pend[i];
        if (q->grain == UINT64_MAX) {
            p = q;
            break;
        }
        if (!p || q->stamp < p->stamp)
            p = q;
    }
    if (p->grain != UINT64_MAX && (*rc = store_pend(e, s, p)) < 0) {
        free(data);
        free(bits);
        return NULL;
    }
    free(p->data);
    free(p->written);
    p->data = data;
    p->written = bits;
    p->grain = g;
    return p;
}

/* Write len bytes at in into part of grain g.  Caller holds s->lock. */
static int write_part(struct extent *e, struct stream *s, uint64_t g, uint64_t in,
                      const unsigned char *buf, uint64_t len, cow_read_fn cow, void *cow_ctx)
{
    int rc;
    struct stream_pend *p = pend_get(e, s, g, cow, cow_ctx, &rc);
    if (!p)
        return rc;
    memcpy(p->data + in, buf, len);
    p->stamp = ++s->clock;
    /* Sectors written whole count towards completing the grain. */
    uint64_t first = (in + 511) / 512, end = (in + len) / 512, full = 1;
    for (uint64_t k = first; k < end; k++)
        p->written[k / 64] |= 1ull << (k % 64);
    for (uint64_t k = 0; k < s->h.grain && full; k++)
        full = (p->written[k / 64] >> (k % 64)) & 1;
    return full ? store_pend(e, s, p) : 0;
}

int stream_write_alloc(struct extent *e, uint64_t off, const void *buf, size_t len,
                       cow_read_fn cow, void *cow_ctx)
{
    struct stream *s = e->priv;
    const unsigned char *p = buf;
    uint64_t gb = s->grain_bytes;
    unsigned char *rec = NULL;
    int rc = 0;
    while (rc == 0 && len > 0) {
        uint64_t g = off / gb, in = off % gb;
        uint64_t n = gb - in < len ? gb - in : len;
        if (n < gb) {
            pthread_mutex_lock(&s->lock);
            rc = write_part(e, s, g, in, p, n, cow, cow_ctx);
            pthread_mutex_unlock(&s->lock);
        } else {
            /* Whole grains, zeros included: a grain that held data and now
             * holds zeros gets a (one-sector) record too, since only
             * records tell a repair what the latest content is. */
            size_t rlen;
            if (!rec && !(rec = malloc(record_cap(s))))
                rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
            if (rc == 0)
                rc = make_record(e, s, g, p, rec, &rlen, 0);
            if (rc == 0)
                rc = append_record(e, s, g, rec, rlen);
        }
        p += n;
        off += n;
        len -= n;
    }
    free(rec);
    return rc;
}

/* Write grain tables tabs (n_gd of them, num_gtes entries each; NULL or
 * all-zero ones are left out), the grain directory, the footer (h with the
 * directory's place) and the end-of-stream marker at byte at_byte through
 * io, and end the file there; *end gets that size and *gd_sec the
 * directory's sector. */
static int put_metadata(const struct vmdk_stream_io *io, const char *path,
                        const struct kdmv_header *h, uint32_t *const *tabs, uint64_t n_gd,
                        uint64_t at_byte, uint64_t *end, uint64_t *gd_sec_out)
{
    uint64_t tbytes = (uint64_t)h->num_gtes * 4;
    uint64_t ntab = 0;
    for (uint64_t gi = 0; gi < n_gd; gi++) {
        int any = 0;
        for (uint32_t i = 0; tabs[gi] && i < h->num_gtes && !any; i++)
            any = tabs[gi][i] != 0;
        ntab += any;
    }
    uint64_t gd_bytes = pad512(n_gd * 4);
    uint64_t total = ntab * (512 + tbytes) + 512 + gd_bytes + 512 + 512 + 512;
    unsigned char *buf = calloc(1, total);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for the metadata", path);
    uint64_t at = 0, base = at_byte / 512;
    unsigned char *gd = NULL;
    /* The directory goes after the tables: fill it in a second pass. */
    for (int pass = 0; pass < 2; pass++) {
        at = 0;
        for (uint64_t gi = 0; gi < n_gd; gi++) {
            int any = 0;
            for (uint32_t i = 0; tabs[gi] && i < h->num_gtes && !any; i++)
                any = tabs[gi][i] != 0;
            if (!any)
                continue;
            wr64(buf + at, tbytes / 512);
            wr32(buf + at + 12, STREAM_MARKER_GT);
            at += 512;
            if (gd)
                wr32(gd + gi * 4, (uint32_t)(base + at / 512));
            for (uint32_t i = 0; i < h->num_gtes; i++)
                wr32(buf + at + i * 4, tabs[gi][i]);
            at += tbytes;
        }
        if (!gd) {
            wr64(buf + at, gd_bytes / 512);
            wr32(buf + at + 12, STREAM_MARKER_GD);
            gd = buf + at + 512;
        }
    }
    at += 512;
    uint64_t gd_sec = base + at / 512;
    at += gd_bytes;
    wr64(buf + at, 1);
    wr32(buf + at + 12, STREAM_MARKER_FOOTER);
    at += 512;
    struct kdmv_header f = *h;
    f.gd_off = gd_sec;
    f.rgd_off = 0;
    f.unclean = 0;
    kdmv_header_encode(&f, buf + at);
    at += 512;
    at += 512;                /* end-of-stream: an all-zero sector */
    int rc = 0;
    if (gd_sec + gd_bytes / 512 > UINT32_MAX)
        rc = vd_err_set(VD_E_NOSPACE, "%s: the streamOptimized file is full", path);
    else if ((rc = io->pwrite(io->ctx, buf, at, at_byte)) == 0)
        rc = io->truncate(io->ctx, at_byte + at);
    free(buf);
    if (rc == 0) {
        *end = at_byte + at;
        *gd_sec_out = gd_sec;
    }
    return rc;
}

struct fd_io {
    int fd;
    const char *path;
};

static int fd_pwrite(void *ctx, const void *buf, size_t len, uint64_t off)
{
    struct fd_io *f = ctx;
    if (vd_pwrite_full(f->fd, buf, len, off) < 0)
        return vd_err_errno(errno, "%s: writing at offset %" PRIu64, f->path, off);
    return 0;
}

static int fd_truncate(void *ctx, uint64_t size)
{
    struct fd_io *f = ctx;
    if (ftruncate(f->fd, (off_t)size) < 0)
        return vd_err_errno(errno, "%s: cutting the file at %" PRIu64 " bytes", f->path, size);
    return 0;
}

/* The metadata at s->append.  Caller holds s->lock. */
static int write_metadata(struct extent *e, struct stream *s)
{
    for (uint64_t gi = 0; gi < s->n_gd; gi++) {
        int any = 0;
        for (uint32_t i = 0; s->tabs[gi] && i < s->h.num_gtes && !any; i++)
            any = s->tabs[gi][i] != 0;
        if (!any) {
            free(s->tabs[gi]);
            s->tabs[gi] = NULL;
        }
    }
    uint64_t end, gd_sec;
    struct fd_io f = { e->fd, e->path };
    struct vmdk_stream_io io = { fd_pwrite, fd_truncate, &f };
    int rc = put_metadata(&io, e->path, &s->h, s->tabs, s->n_gd, s->append, &end, &gd_sec);
    if (rc == 0) {
        __atomic_store_n(&s->file_size, end, __ATOMIC_RELAXED);
        s->h.gd_off = gd_sec;
        s->meta_valid = 1;
    }
    return rc;
}

/* Wait for records being written and store every pending grain: after
 * this the tables describe every completed write.  Caller holds s->lock. */
static int settle(struct extent *e, struct stream *s)
{
    int rc = 0;
    while (s->inflight)
        pthread_cond_wait(&s->idle, &s->lock);
    for (int i = 0; rc == 0 && i < STREAM_PEND_SLOTS; i++)
        if (s->pend[i].grain != UINT64_MAX)
            rc = store_pend(e, s, &s->pend[i]);
    return rc;
}

int stream_flush(struct extent *e)
{
    struct stream *s = e->priv;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    rc = settle(e, s);
    if (rc == 0 && s->began && !s->meta_valid)
        rc = write_metadata(e, s);
    if (rc == 0 && fdatasync(e->fd) < 0)
        rc = vd_err_errno(errno, "%s: flushing", e->path);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- check and repair by the grain markers -------------------------------- */

/* Is the record at pos (marker m already read) a valid grain of h?  Its
 * data must inflate to a grain. */
static int grain_record_ok(int fd, const struct kdmv_header *h, uint64_t fsize, uint64_t pos,
                           const unsigned char *m, struct libdeflate_decompressor *d,
                           unsigned char *zbuf, unsigned char *out)
{
    uint64_t lba, gb = h->grain * 512;
    uint32_t size;
    memcpy(&lba, m, 8);
    memcpy(&size, m + 8, 4);
    lba = le64toh(lba);
    size = le32toh(size);
    if (lba % h->grain || lba >= h->capacity || size > 2 * gb + 1024 ||
        pos + 12 + size > fsize)
        return 0;
    if (vd_pread_full(fd, zbuf, size, pos + 12, 1) < 0)
        return 0;
    size_t got;
    enum libdeflate_result r = libdeflate_zlib_decompress(d, zbuf, size, out, gb, &got);
    return r == LIBDEFLATE_SUCCESS || r == LIBDEFLATE_SHORT_OUTPUT;
}

int vmdk_stream_scan(int fd, const char *path, const struct vmdk_stream_io *repair,
                     struct vmdk_stream_scan *res)
{
    memset(res, 0, sizeof *res);
    struct stat st;
    unsigned char hb[512];
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    uint64_t fsize = (uint64_t)st.st_size;
    if (fsize < 512 || vd_pread_full(fd, hb, sizeof hb, 0, 1) < 0)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header", path);
    struct kdmv_header h;
    int rc = kdmv_header_decode(hb, path, "header", &h);
    if (rc < 0)
        return rc;
    if (!(h.flags & KDMV_FLAG_COMPRESSED) || !(h.flags & KDMV_FLAG_MARKERS))
        return vd_err_set(VD_E_UNSUPPORTED, "%s: not a streamOptimized extent with grain "
                          "markers", path);
    uint64_t gb = h.grain * 512, cover = gb * h.num_gtes;
    uint64_t n_gd = (h.capacity * 512 + cover - 1) / cover;
    uint64_t ngrains = (h.capacity + h.grain - 1) / h.grain;
    if (n_gd > (64u << 20) || h.num_gtes % 128)
        return vd_err_set(VD_E_CORRUPT, "%s: implausible grain table geometry", path);
    uint32_t *latest = calloc(ngrains ? ngrains : 1, 4);
    unsigned char *zbuf = malloc(2 * gb + 1024), *out = malloc(gb);
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    uint32_t **tabs = calloc(n_gd ? n_gd : 1, sizeof *tabs);
    if (!latest || !zbuf || !out || !d || !tabs) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Walk the records from the end of the header area. */
    uint64_t pos = h.overhead * 512;
    while (pos + 512 <= fsize) {
        unsigned char m[512];
        if (vd_pread_full(fd, m, sizeof m, pos, 1) < 0)
            break;
        uint64_t val;
        uint32_t size, type;
        memcpy(&val, m, 8);
        memcpy(&size, m + 8, 4);
        memcpy(&type, m + 12, 4);
        val = le64toh(val);
        size = le32toh(size);
        type = le32toh(type);
        if (size) {
            if (!grain_record_ok(fd, &h, fsize, pos, m, d, zbuf, out))
                break;
            uint64_t g = val / h.grain;
            if (latest[g])
                res->superseded++;
            else
                res->grains++;
            latest[g] = (uint32_t)(pos / 512);
            pos = pad512(pos + 12 + size);
        } else if (type == STREAM_MARKER_EOS && val == 0) {
            res->eos = 1;
            break;
        } else if ((type == STREAM_MARKER_GT || type == STREAM_MARKER_GD ||
                    type == STREAM_MARKER_FOOTER) && val > 0 && val <= (64u << 20) / 128 &&
                   pos + 512 + val * 512 <= fsize) {
            pos += 512 + val * 512;
        } else {
            break;
        }
    }
    res->end = pos;
    /* Do the file's own tables (footer first, as readers do) say the same? */
    uint64_t gd_off = h.gd_off;
    if (fsize >= 1536) {
        unsigned char t[1536];
        struct kdmv_header f;
        /* [footer marker][footer][end-of-stream], or without the last. */
        for (int k = 0; k < 2 && vd_pread_full(fd, t, sizeof t, fsize - sizeof t, 1) == 0;
             k++) {
            const unsigned char *mk = t + (k ? 512 : 0);
            uint32_t ty;
            memcpy(&ty, mk + 12, 4);
            if (le32toh(ty) == STREAM_MARKER_FOOTER &&
                kdmv_header_decode(mk + 512, path, "footer", &f) == 0) {
                gd_off = f.gd_off;
                break;
            }
        }
        vd_err_clear();
    }
    int agree = gd_off != KDMV_GD_AT_END && gd_off * 512 + n_gd * 4 <= fsize;
    uint32_t *gd = agree ? malloc(n_gd * 4 + 4) : NULL;
    uint32_t *t = malloc((size_t)h.num_gtes * 4);
    if (agree && (!gd || !t || vd_pread_full(fd, gd, n_gd * 4, gd_off * 512, 1) < 0))
        agree = 0;
    for (uint64_t gi = 0; agree && gi < n_gd; gi++) {
        uint32_t gde = le32toh(gd[gi]);
        if (gde && ((uint64_t)gde * 512 + h.num_gtes * 4 > fsize ||
                    vd_pread_full(fd, t, (size_t)h.num_gtes * 4, (uint64_t)gde * 512, 1) < 0)) {
            agree = 0;
            break;
        }
        for (uint32_t i = 0; i < h.num_gtes; i++) {
            uint64_t g = gi * h.num_gtes + i;
            uint32_t v = gde ? le32toh(t[i]) : 0;
            uint32_t want = g < ngrains ? latest[g] : 0;
            if (v != want && !(v == 1 && want == 0))
                agree = 0;
        }
    }
    free(gd);
    free(t);
    res->tables_ok = agree;
    if (agree || !repair)
        goto out;
    /* Rebuild: tables from the latest copy of every grain, written after
     * the last valid record. */
    for (uint64_t g = 0; g < ngrains; g++) {
        if (!latest[g])
            continue;
        uint64_t gi = g / h.num_gtes;
        if (!tabs[gi] && !(tabs[gi] = calloc(h.num_gtes, 4))) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", path);
            goto out;
        }
        tabs[gi][g % h.num_gtes] = latest[g];
    }
    struct kdmv_header nh = h;
    nh.version = 3;
    nh.flags = KDMV_FLAG_NL_TEST | KDMV_FLAG_COMPRESSED | KDMV_FLAG_MARKERS;
    nh.rgd_off = 0;
    nh.compress = 1;
    nh.unclean = 0;
    uint64_t end, gd_sec;
    if ((rc = put_metadata(repair, path, &nh, tabs, n_gd, pad512(res->end), &end,
                           &gd_sec)) < 0)
        goto out;
    nh.gd_off = KDMV_GD_AT_END;
    kdmv_header_encode(&nh, hb);
    if ((rc = repair->pwrite(repair->ctx, hb, sizeof hb, 0)) == 0)
        res->rebuilt = 1;
out:
    for (uint64_t gi = 0; tabs && gi < n_gd; gi++)
        free(tabs[gi]);
    free(tabs);
    free(latest);
    free(zbuf);
    free(out);
    if (d)
        libdeflate_free_decompressor(d);
    return rc;
}

/* ---- compaction (shrink and defragment) ------------------------------------- */

int extent_stream_compact(struct extent *e, const char *dir)
{
    struct stream *s = e->priv;
    if (!s->tabs)
        return vd_err_set(VD_E_READONLY, "%s: disk is open read-only", e->path);
    char *tmp = NULL;
    int nfd = -1, rc = 0;
    uint32_t **nt = calloc(s->n_gd ? s->n_gd : 1, sizeof *nt);
    unsigned char *rec = malloc(record_cap(s));
    size_t tb = (size_t)s->h.num_gtes * 4;
    pthread_mutex_lock(&s->lock);
    if ((rc = settle(e, s)) < 0)
        goto out;
    if (!nt || !rec || !(tmp = vd_asprintf("%s.compact-%ld", e->path, (long)getpid()))) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        goto out;
    }
    nfd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (nfd < 0) {
        rc = vd_err_errno(errno, "%s: creating", tmp);
        goto out;
    }
    if ((rc = vd_lock_fd(nfd, 1, tmp)) < 0)
        goto out;
    /* The header area (header, embedded descriptor) as it is; then every
     * grain's latest record in grain order, copied without inflating. */
    uint64_t pos = s->h.overhead * 512;
    unsigned char *head = malloc(pos);
    if (!head) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        goto out;
    }
    if (vd_pread_full(e->fd, head, pos, 0, 0) < 0 || vd_pwrite_full(nfd, head, pos, 0) < 0)
        rc = vd_err_errno(errno ? errno : EIO, "%s: copying the header area", tmp);
    free(head);
    size_t cap = record_cap(s);
    for (uint64_t gi = 0; rc == 0 && gi < s->n_gd; gi++) {
        if (!s->tabs[gi])
            continue;
        if (!(nt[gi] = calloc(1, tb))) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
            break;
        }
        for (uint32_t i = 0; rc == 0 && i < s->h.num_gtes; i++) {
            uint32_t v = s->tabs[gi][i];
            if (v <= 1) {
                nt[gi][i] = v;
                continue;
            }
            uint32_t size;
            if (vd_pread_full(e->fd, rec, 12, (uint64_t)v * 512, 1) < 0) {
                rc = vd_err_errno(errno ? errno : EIO, "%s: reading the grain at sector %"
                                  PRIu32, e->path, v);
                break;
            }
            memcpy(&size, rec + 8, 4);
            size_t len = (size_t)pad512(12 + (uint64_t)le32toh(size));
            if (len > cap) {
                rc = vd_err_set(VD_E_CORRUPT, "%s: the grain at sector %" PRIu32 " claims %"
                                PRIu32 " bytes", e->path, v, le32toh(size));
                break;
            }
            if (vd_pread_full(e->fd, rec, len, (uint64_t)v * 512, 0) < 0 ||
                vd_pwrite_full(nfd, rec, len, pos) < 0) {
                rc = vd_err_errno(errno ? errno : EIO, "%s: copying a grain", tmp);
                break;
            }
            nt[gi][i] = (uint32_t)(pos / 512);
            pos += len;
        }
    }
    uint64_t end = 0, gd_sec = 0;
    struct fd_io f = { nfd, tmp };
    struct vmdk_stream_io io = { fd_pwrite, fd_truncate, &f };
    if (rc == 0)
        rc = put_metadata(&io, tmp, &s->h, nt, s->n_gd, pos, &end, &gd_sec);
    if (rc == 0) {
        struct kdmv_header h = s->h;
        h.gd_off = KDMV_GD_AT_END;
        unsigned char hb[512];
        kdmv_header_encode(&h, hb);
        if (vd_pwrite_full(nfd, hb, sizeof hb, 0) < 0 || fsync(nfd) < 0)
            rc = vd_err_errno(errno, "%s: writing the header", tmp);
    }
    /* The new file takes the old one's name, and its place in the extent. */
    if (rc == 0 && rename(tmp, e->path) < 0)
        rc = vd_err_errno(errno, "%s: renaming to %s", tmp, e->path);
    if (rc < 0)
        goto out;
    free(tmp);
    tmp = NULL;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    struct vd_file *nf;
    if ((rc = vd_file_from_fd(nfd, 1, e->path, &nf)) < 0)
        goto out;
    vd_file_close(e->file);
    e->file = nf;
    e->fd = nfd;
    nfd = -1;
    for (uint64_t gi = 0; gi < s->n_gd; gi++) {
        free(s->tabs[gi]);
        s->tabs[gi] = nt[gi];
        nt[gi] = NULL;
    }
    __atomic_store_n(&s->file_size, end, __ATOMIC_RELAXED);
    s->append = pos;
    s->h.gd_off = gd_sec;
    s->meta_valid = 1;
    s->superseded = 0;
    for (int i = 0; i < STREAM_GRAIN_SLOTS; i++)
        s->grains[i].grain = UINT64_MAX;
out:
    pthread_mutex_unlock(&s->lock);
    if (nfd >= 0)
        close(nfd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    for (uint64_t gi = 0; nt && gi < s->n_gd; gi++)
        free(nt[gi]);
    free(nt);
    free(rec);
    return rc;
}
