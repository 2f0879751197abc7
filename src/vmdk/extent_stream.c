/* extent_stream.c - streamOptimized extents: hosted sparse extents whose
 * grains are zlib-compressed.  This file opens and reads them; writing
 * (grains appended, the metadata rewritten at flush) is in stream_rw.c.
 *
 * Every layout seen in practice is read through the grain directory:
 * VMware's (GD at end, footer, markers, EOS), qemu-img's (GD and GTs at the
 * front, grain markers only), VirtualBox's and python3-vmdkstream's.  A
 * footer, when present, wins over the header.  Grain table entries point
 * at a grain marker (lba, compressed size, zlib data) or, without markers,
 * at a 4-byte size followed by the data.  Decompressed grains are kept in a
 * small cache so small sequential reads do not inflate a grain twice. */
#include "extent.h"
#include "gt_cache.h"
#include "stream_priv.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <libdeflate.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sparse_header.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define GT_SLOTS 32
#define GRAIN_SLOTS STREAM_GRAIN_SLOTS
#define MARKER_FOOTER STREAM_MARKER_FOOTER
#define MAX_DECOMPRESSORS STREAM_MAX_CODECS

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

/* If the file ends with FOOTER marker, footer header, EOS, use the footer. */
static int read_footer(struct extent *e, struct stream *s, int required)
{
    unsigned char t[1536];
    if (s->file_size < 2048) {
        if (!required)
            return 0;
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory is at the end of the file but "
                          "the file is too short for a footer", e->path);
    }
    int rc = vd_file_pread(e->file, t, sizeof t, s->file_size - sizeof t, 1);
    if (rc < 0)
        return vd_file_read_err(e->file, rc, "%s: reading footer", e->path);
    /* Layout: [marker][footer][EOS]; some writers omit the EOS sector. */
    const unsigned char *marker = NULL, *footer = NULL;
    if (rd32(t + 512 + 12) == MARKER_FOOTER && rd32(t + 512 + 8) == 0 &&
        rd32(t + 1024) == KDMV_MAGIC) {
        marker = t + 512;
        footer = t + 1024;
    } else if (rd32(t + 12) == MARKER_FOOTER && rd32(t + 8) == 0 && rd32(t + 512) == KDMV_MAGIC) {
        marker = t;
        footer = t + 512;
    }
    if (!marker) {
        if (!required)
            return 0;
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory is at the end of the file but "
                          "no footer was found there", e->path);
    }
    struct kdmv_header f;
    rc = kdmv_header_decode(footer, e->path, "footer", &f);
    if (rc < 0)
        return rc;
    if (f.gd_off == KDMV_GD_AT_END)
        return vd_err_set(VD_E_CORRUPT, "%s: the footer does not say where the grain "
                          "directory is", e->path);
    s->h = f;
    return 0;
}

static int load_gd(struct extent *e, struct stream *s)
{
    uint64_t bytes = s->n_gd * 4;
    if (s->h.gd_off >= s->file_size / 512 || s->h.gd_off * 512 + bytes > s->file_size)
        return vd_err_set(VD_E_CORRUPT, "%s: grain directory at sector %" PRIu64 " extends "
                          "past end of file", e->path, s->h.gd_off);
    s->gd = malloc(bytes ? bytes : 4);
    if (!s->gd)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory for the grain directory", e->path);
    int rc = vd_file_pread(e->file, s->gd, bytes, s->h.gd_off * 512, 1);
    if (rc < 0)
        return vd_file_read_err(e->file, rc, "%s: reading grain directory", e->path);
    uint64_t gt_bytes = (uint64_t)s->h.num_gtes * 4;
    for (uint64_t i = 0; i < s->n_gd; i++) {
        s->gd[i] = le32toh(s->gd[i]);
        if (s->gd[i] && (uint64_t)s->gd[i] * 512 + gt_bytes > s->file_size)
            return vd_err_set(VD_E_CORRUPT, "%s: grain table %" PRIu64 " at sector %" PRIu32
                              " points past end of file", e->path, i, s->gd[i]);
    }
    return 0;
}

static void stream_destroy(struct extent *e)
{
    struct stream *s = e->priv;
    if (!s)
        return;
    gt_cache_destroy(&s->gts);
    for (int i = 0; i < GRAIN_SLOTS; i++)
        free(s->grains[i].data);
    for (int i = 0; i < s->npool; i++)
        libdeflate_free_decompressor(s->pool[i]);
    free(s->gd);
    stream_rw_destroy(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
    e->priv = NULL;
}

/* Read-only: tables never change, so nothing is written back. */
static int no_writeback(void *ctx, struct gt_slot *sl)
{
    (void)ctx;
    (void)sl;
    return 0;
}

/* Grain table gi, loaded and validated; NULL with *rc = 0 for a GD hole.
 * Caller holds s->lock. */
static uint32_t *gt_get(struct extent *e, struct stream *s, uint64_t gi, int *rc)
{
    *rc = 0;
    if (gi >= s->n_gd || s->gd[gi] == 0)
        return NULL;
    struct gt_slot *sl = gt_cache_find(&s->gts, gi);
    if (sl)
        return sl->tab;
    if (!(sl = gt_cache_take(&s->gts, no_writeback, NULL, e->path, rc)))
        return NULL;
    uint32_t *t = sl->tab;
    int r = gt_cache_read(&s->gts, sl, e->file, (uint64_t)s->gd[gi] * 512, 4);
    if (r < 0) {
        *rc = vd_file_read_err(e->file, r, "%s: reading grain table %" PRIu64, e->path, gi);
        return NULL;
    }
    for (uint32_t i = 0; i < s->h.num_gtes; i++) {
        if (t[i] > 1 && (uint64_t)t[i] * 512 + 12 > s->file_size) {
            *rc = vd_err_set(VD_E_CORRUPT, "%s: grain table %" PRIu64 " entry %" PRIu32
                             " points past end of file (sector %" PRIu32 ")", e->path, gi, i,
                             t[i]);
            return NULL;
        }
    }
    gt_cache_set(&s->gts, sl, gi);
    return t;
}

int64_t stream_gte_of(struct extent *e, struct stream *s, uint64_t g)
{
    uint64_t gi = g / s->h.num_gtes;
    if (s->tabs)            /* writable: every table is in memory */
        return gi < s->n_gd && s->tabs[gi] ? s->tabs[gi][g % s->h.num_gtes] : 0;
    int rc;
    uint32_t *t = gt_get(e, s, gi, &rc);
    if (!t)
        return rc;
    return t[g % s->h.num_gtes];
}

/* How grain g maps: a grain written in part and not yet stored is data
 * the extent produces.  Caller holds s->lock. */
static int64_t grain_kind(struct extent *e, struct stream *s, uint64_t g, enum map_kind *kind)
{
    int64_t v = stream_gte_of(e, s, g);
    if (v >= 0)
        *kind = v > 1 || (s->tabs && stream_pend_find(s, g)) ? MAP_EXT
                : v == 1 ? MAP_ZERO : MAP_HOLE;
    return v;
}

static int stream_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    struct stream *s = e->priv;
    uint64_t cap = s->h.capacity * 512;
    if (off >= cap) {
        m->kind = MAP_HOLE;
        m->len = len;
        return 0;
    }
    if (len > cap - off)
        len = cap - off;
    pthread_mutex_lock(&s->lock);
    uint64_t g = off / s->grain_bytes;
    enum map_kind kind, k2;
    int64_t v = grain_kind(e, s, g, &kind);
    if (v < 0) {
        pthread_mutex_unlock(&s->lock);
        return (int)v;
    }
    uint64_t run = s->grain_bytes - off % s->grain_bytes;
    while (run < len) {
        int64_t w = grain_kind(e, s, ++g, &k2);
        if (w < 0) {
            pthread_mutex_unlock(&s->lock);
            return (int)w;
        }
        if (k2 != kind)
            break;
        run += s->grain_bytes;
    }
    pthread_mutex_unlock(&s->lock);
    m->kind = kind;
    m->len = run < len ? run : len;
    return 0;
}

static struct libdeflate_decompressor *take_decompressor(struct stream *s)
{
    pthread_mutex_lock(&s->lock);
    struct libdeflate_decompressor *d = s->npool ? s->pool[--s->npool] : NULL;
    pthread_mutex_unlock(&s->lock);
    return d ? d : libdeflate_alloc_decompressor();
}

static void give_decompressor(struct stream *s, struct libdeflate_decompressor *d)
{
    pthread_mutex_lock(&s->lock);
    if (s->npool < MAX_DECOMPRESSORS) {
        s->pool[s->npool++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (d)
        libdeflate_free_decompressor(d);
}

int stream_inflate_grain(struct extent *e, struct stream *s, uint64_t g, uint32_t gte,
                         unsigned char *out)
{
    uint64_t pos = (uint64_t)gte * 512;
    unsigned char hdr[12];
    size_t hlen = s->markers ? 12 : 4;
    uint64_t fsize = __atomic_load_n(&s->file_size, __ATOMIC_RELAXED);
    if (pos + hlen > fsize)
        return vd_err_set(VD_E_CORRUPT, "%s: grain %" PRIu64 " at sector %" PRIu32
                          " is truncated", e->path, g, gte);
    int rc = vd_file_pread(e->file, hdr, hlen, pos, 1);
    if (rc < 0)
        return vd_file_read_err(e->file, rc, "%s: reading grain %" PRIu64, e->path, g);
    uint64_t size;
    if (s->markers) {
        uint64_t lba = rd64(hdr);
        size = rd32(hdr + 8);
        if (lba != g * s->h.grain)
            return vd_err_set(VD_E_CORRUPT, "%s: grain marker at sector %" PRIu32 " is for "
                              "sector %" PRIu64 ", expected %" PRIu64, e->path, gte, lba,
                              g * s->h.grain);
    } else {
        size = rd32(hdr);
    }
    /* A compressed grain is never much larger than the grain itself. */
    if (size == 0 || size > 2 * s->grain_bytes + 1024)
        return vd_err_set(VD_E_CORRUPT, "%s: grain %" PRIu64 " claims %" PRIu64 " compressed "
                          "bytes (grain size %" PRIu64 ")", e->path, g, size, s->grain_bytes);
    if (pos + hlen + size > fsize)
        return vd_err_set(VD_E_CORRUPT, "%s: grain %" PRIu64 " (%" PRIu64 " compressed bytes "
                          "at sector %" PRIu32 ") runs past end of file", e->path, g, size, gte);
    unsigned char *in = malloc(size);
    if (!in)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    if ((rc = vd_file_pread(e->file, in, size, pos + hlen, 1)) < 0) {
        rc = vd_file_read_err(e->file, rc, "%s: reading grain %" PRIu64, e->path, g);
        goto out;
    }
    struct libdeflate_decompressor *d = take_decompressor(s);
    if (!d) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory for a decompressor", e->path);
        goto out;
    }
    size_t got = 0;
    enum libdeflate_result r = libdeflate_zlib_decompress(d, in, size, out, s->grain_bytes, &got);
    if (r == LIBDEFLATE_BAD_DATA)      /* some writers emit raw deflate */
        r = libdeflate_deflate_decompress(d, in, size, out, s->grain_bytes, &got);
    give_decompressor(s, d);
    if (r == LIBDEFLATE_SUCCESS || r == LIBDEFLATE_SHORT_OUTPUT) {
        /* A final grain may hold only the bytes up to the capacity. */
        uint64_t valid = s->h.capacity * 512 - g * s->grain_bytes;
        if (valid > s->grain_bytes)
            valid = s->grain_bytes;
        /* Writers that stream a file whose size is not a whole number of
         * sectors (python3-vmdkstream) end the last grain mid-sector. */
        else if (valid > 511)
            valid -= 511;
        if (got < valid)
            rc = vd_err_set(VD_E_CORRUPT, "%s: grain %" PRIu64 " decompresses to %zu bytes, "
                            "expected %" PRIu64, e->path, g, got, valid);
        else
            memset(out + got, 0, s->grain_bytes - got);
    } else {
        rc = vd_err_set(VD_E_CORRUPT, "%s: grain %" PRIu64 " at sector %" PRIu32 " is not "
                        "valid compressed data%s", e->path, g, gte,
                        r == LIBDEFLATE_INSUFFICIENT_SPACE ? " (it expands past a grain)" : "");
    }
out:
    free(in);
    return rc;
}

static int stream_read(struct extent *e, uint64_t off, void *buf, size_t len)
{
    struct stream *s = e->priv;
    unsigned char *p = buf;
    unsigned char *tmp = NULL;
    int rc = 0;
    while (len > 0) {
        uint64_t g = off / s->grain_bytes, in = off % s->grain_bytes;
        size_t n = s->grain_bytes - in < len ? (size_t)(s->grain_bytes - in) : len;
        pthread_mutex_lock(&s->lock);
        int64_t v = stream_gte_of(e, s, g);
        int hit = 0;
        struct stream_pend *pd = s->tabs && v >= 0 ? stream_pend_find(s, g) : NULL;
        if (pd) {
            memcpy(p, pd->data + in, n);
            hit = 1;
        }
        /* Cached grains are known by their place in the file too, so that
         * a grain written meanwhile is never served from an older copy. */
        for (int i = 0; !hit && v > 1 && i < GRAIN_SLOTS; i++) {
            struct stream_grain_slot *sl = &s->grains[i];
            if (sl->data && sl->grain == g && sl->gte == (uint32_t)v) {
                memcpy(p, sl->data + in, n);
                sl->stamp = ++s->clock;
                hit = 1;
                break;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (v < 0) {
            rc = (int)v;
            break;
        }
        if (hit) {
            /* served from a pending grain or the cache */
        } else if (v <= 1) {
            memset(p, 0, n);
        } else {
            /* Whole grains go straight to the caller's buffer. */
            int whole = in == 0 && n == s->grain_bytes;
            if (!whole && !tmp && !(tmp = malloc(s->grain_bytes))) {
                rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
                break;
            }
            unsigned char *dst = whole ? p : tmp;
            if ((rc = stream_inflate_grain(e, s, g, (uint32_t)v, dst)) < 0)
                break;
            if (!whole) {
                memcpy(p, tmp + in, n);
                /* Keep partially read grains for the next small read. */
                pthread_mutex_lock(&s->lock);
                struct stream_grain_slot *victim = &s->grains[0];
                for (int i = 1; i < GRAIN_SLOTS; i++)
                    if (!s->grains[i].data || s->grains[i].stamp < victim->stamp)
                        victim = &s->grains[i];
                if (!victim->data)
                    victim->data = tmp, tmp = NULL;
                else
                    memcpy(victim->data, tmp, s->grain_bytes);
                victim->grain = g;
                victim->gte = (uint32_t)v;
                victim->stamp = ++s->clock;
                pthread_mutex_unlock(&s->lock);
            }
        }
        p += n;
        off += n;
        len -= n;
    }
    free(tmp);
    return rc;
}

static const struct extent_ops stream_ops = {
    .name = "stream",
    .map = stream_map,
    .read = stream_read,
    .destroy = stream_destroy,
};

/* A writable stream extent: new grains are appended (stream_rw.c). */
static const struct extent_ops stream_rw_ops = {
    .name = "stream",
    .map = stream_map,
    .read = stream_read,
    .write_alloc = stream_write_alloc,
    .begin_write = stream_begin_write,
    .flush = stream_flush,
    .destroy = stream_destroy,
};

int extent_is_writable_stream(const struct extent *e)
{
    return e && e->ops == &stream_rw_ops;
}

int extent_stream_open(struct extent *e)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
    pthread_mutex_init(&s->lock, NULL);
    for (int i = 0; i < GRAIN_SLOTS; i++)
        s->grains[i].grain = UINT64_MAX;
    e->priv = s;
    e->ops = &stream_ops;
    int rc;
    unsigned char h[512];
    if ((rc = vd_file_size(e->file, &s->file_size)) < 0)
        goto fail;
    if (s->file_size < 512 || (rc = vd_file_pread(e->file, h, sizeof h, 0, 1)) < 0) {
        if (s->file_size >= 512 && !vd_file_is_local(e->file))
            goto fail;      /* the file system's own error (a lost connection) */
        rc = vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header", e->path);
        goto fail;
    }
    if ((rc = kdmv_header_decode(h, e->path, "header", &s->h)) < 0)
        goto fail;
    /* The spec: a footer, when there is one, takes precedence. */
    if ((rc = read_footer(e, s, s->h.gd_off == KDMV_GD_AT_END)) < 0)
        goto fail;
    if (!(s->h.flags & KDMV_FLAG_COMPRESSED)) {
        rc = vd_err_set(VD_E_CORRUPT, "%s: footer says the grains are not compressed",
                        e->path);
        goto fail;
    }
    s->markers = (s->h.flags & KDMV_FLAG_MARKERS) != 0;
    s->grain_bytes = s->h.grain * 512;
    s->gt_cover = s->grain_bytes * s->h.num_gtes;
    s->n_gd = (s->h.capacity * 512 + s->gt_cover - 1) / s->gt_cover;
    if (s->n_gd > (64u << 20)) {
        rc = vd_err_set(VD_E_CORRUPT, "%s: grain directory of %" PRIu64 " entries is "
                        "implausibly large", e->path, s->n_gd);
        goto fail;
    }
    if ((rc = load_gd(e, s)) < 0 ||
        (rc = gt_cache_init(&s->gts, GT_SLOTS, (size_t)s->h.num_gtes * 4)) < 0)
        goto fail;
    e->grain_bytes = s->grain_bytes;
    e->write_limit = 0;
    if (e->writable) {
        if ((rc = stream_rw_init(e, s)) < 0)
            goto fail;
        e->ops = &stream_rw_ops;
        e->write_limit = e->size < s->h.capacity * 512 ? e->size : s->h.capacity * 512;
    }
    return 0;
fail:
    stream_destroy(e);
    e->ops = NULL;
    return rc;
}
