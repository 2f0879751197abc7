/* maint_infer.c - which header fields of a hosted sparse extent to believe.
 *
 * One damaged header field (overHead, rgdOffset, capacity, grainSize,
 * numGTEsPerGT, ...) makes the rest of a healthy extent look broken: every
 * grain "points into the metadata", the redundant tables look like junk,
 * the directory runs into the tables.  Repairing entry by entry would then
 * drop good data.  So before the check, the header is judged against the
 * rest of the evidence: the descriptor's size for the extent, the
 * directories and tables (each a copy of the other, in a regular layout),
 * the grains and the file size.
 *
 * The header as written is kept when the extent reads consistently with
 * it (CheckRepair's structural check finds nothing).  Otherwise every
 * reading that changes one field to a value the evidence suggests is
 * tried, and the consistent one that keeps the most grains wins (ties: the
 * one that fits the standard layout best: tables right after their
 * directory, the redundant copy right before the primary, overHead at the
 * end of the metadata rounded up to a grain, 512 entries per table, the
 * descriptor's capacity).  When no single change makes the extent
 * consistent, the header stays as it is and the entry-level repair does
 * what it can. */
#include "maint_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../util/err.h"
#include "../util/fileio.h"

struct score {
    int loaded;          /* sx_load_with accepted it */
    int clean;           /* ... and the structural check found nothing */
    uint64_t problems;   /* weighted: a problem no repair fixes counts 1000, a
                          * grain or table entry the repair would drop 1 more */
    uint64_t kept;       /* allocated grains inside the disk */
    int fit;             /* standard-layout relations that hold */
    int fit_max;         /* ... of those that apply */
};

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static int basic_ok(const struct kdmv_header *h)
{
    return is_pow2(h->grain) && h->grain <= KDMV_MAX_GRAIN && is_pow2(h->num_gtes) &&
           h->num_gtes <= KDMV_MAX_GTES && h->capacity <= (UINT64_MAX >> 10) &&
           h->gd_off != KDMV_GD_AT_END && h->gd_off < (1ull << 53) &&
           h->rgd_off < (1ull << 53) && h->overhead < (1ull << 53);
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Standard-layout relations of x (loaded): how many hold, of *max. */
static int layout_fit(const struct sx *x, const struct sx_evidence *ev, int *max)
{
    const struct kdmv_header *h = &x->h;
    int fit = 0, nrel = 0;
#define REL(cond) do { nrel++; fit += (cond) ? 1 : 0; } while (0)
    uint64_t meta = h->gd_off + x->gd_sec + x->n_gd * x->gt_sec;
    if (x->rgd)
        REL(h->rgd_off + x->gd_sec + x->n_gd * x->gt_sec == h->gd_off);
    if (x->n_gd && x->gd[0])
        REL(x->gd[0] == h->gd_off + x->gd_sec);
    if (x->rgd && x->n_gd && x->rgd[0])
        REL(x->rgd[0] == h->rgd_off + x->gd_sec);
    REL(h->overhead == round_up(meta, h->grain));
    if (h->desc_off)
        REL(h->desc_off + h->desc_size == (x->rgd ? h->rgd_off : h->gd_off));
    if (ev->desc_sectors)
        REL(h->capacity == ev->desc_sectors);
    REL(h->num_gtes == 512);
    int aligned = 1;
    uint64_t end = h->overhead, n = 0;
    for (uint64_t i = 0; i < x->n_gd; i++)
        for (uint32_t k = 0; x->gt[i] && k < h->num_gtes; k++) {
            uint32_t v = x->gt[i][k];
            if (v <= 1)
                continue;
            n++;
            aligned &= v % h->grain == 0;
            if (v + h->grain > end)
                end = v + h->grain;
        }
    REL(aligned);
    /* Grains are appended one after the other: the closest two are one
     * grain apart. */
    uint32_t *v = n >= 2 ? malloc(n * sizeof *v) : NULL;
    if (v) {
        uint64_t m = 0;
        for (uint64_t i = 0; i < x->n_gd; i++)
            for (uint32_t k = 0; x->gt[i] && k < h->num_gtes; k++)
                if (x->gt[i][k] > 1)
                    v[m++] = x->gt[i][k];
        qsort(v, m, sizeof *v, cmp_u32);
        uint64_t gap = UINT64_MAX;
        for (uint64_t i = 1; i < m; i++)
            if (v[i] != v[i - 1] && v[i] - v[i - 1] < gap)
                gap = v[i] - v[i - 1];
        REL(gap == h->grain);
        free(v);
    }
    /* Grains are appended: the file ends with the last one. */
    REL(x->file_size == end * 512);
#undef REL
    *max = nrel;
    return fit;
}

static void evaluate(int fd, const char *path, const struct sx_evidence *ev,
                     const struct kdmv_header *h, struct score *s, uint64_t file_size,
                     int candidate)
{
    memset(s, 0, sizeof *s);
    if (!basic_ok(h))
        return;
    /* A reading whose directory would fill more than a quarter of the
     * file is not worth trying (the header as written is always tried). */
    uint64_t cover = (uint64_t)h->num_gtes * h->grain;
    uint64_t ngd = h->capacity / cover + (h->capacity % cover != 0);
    if (candidate && ngd > file_size / 16)
        return;
    struct sx x;
    int rc = sx_load_with(&x, fd, path, h);
    if (rc < 0) {
        sx_free(&x);
        return;
    }
    s->loaded = 1;
    struct sx_report r = { .path = path };
    if (sx_check(&x, 0, 0, SX_SCORE, &r) < 0) {
        s->loaded = 0;
        sx_free(&x);
        return;
    }
    /* On the tables as the check leaves them (entries that cannot be
     * grains dropped): damaged entries are not the header's fault. */
    s->fit = layout_fit(&x, ev, &s->fit_max);
    s->problems = r.problems + 1000ull * r.cantfix + r.lost;
    /* Where Open looks for an embedded descriptor: the header must say
     * where the text is, and a size that holds it and Open accepts. */
    if (ev->desc_at) {
        s->problems += h->desc_off != ev->desc_at;
        s->problems += h->desc_size == 0 || h->desc_size > 20480;
        s->problems += ev->desc_text_sectors > h->desc_size;
    }
    s->clean = s->problems == 0;
    uint64_t bound = h->capacity;
    if (ev->desc_sectors && ev->desc_sectors < bound)
        bound = ev->desc_sectors;
    for (uint64_t i = 0; i < x.n_gd; i++)
        for (uint32_t k = 0; x.gt[i] && k < h->num_gtes; k++)
            if (x.gt[i][k] > 1 && (i * h->num_gtes + k) * h->grain < bound)
                s->kept++;
    sx_free(&x);
}

/* Is a better than b? */
static int better(const struct score *a, const struct score *b)
{
    if (a->clean != b->clean)
        return a->clean;
    if (!a->clean && a->loaded != b->loaded)
        return a->loaded;
    if (!a->clean && a->problems != b->problems)
        return a->problems < b->problems;
    if (a->kept != b->kept)
        return a->kept > b->kept;
    return a->fit > b->fit;
}

enum fld { F_CAP, F_GRAIN, F_GTES, F_GD, F_RGD, F_OVH, F_DSIZE, F_DOFF };
static const char *const fld_name[] = {
    "capacity", "grainSize", "numGTEsPerGT", "gdOffset", "rgdOffset", "overHead",
    "descriptorSize", "descriptorOffset",
};

static uint64_t get_fld(const struct kdmv_header *h, enum fld f)
{
    switch (f) {
    case F_CAP: return h->capacity;
    case F_GRAIN: return h->grain;
    case F_GTES: return h->num_gtes;
    case F_GD: return h->gd_off;
    case F_RGD: return h->rgd_off;
    case F_OVH: return h->overhead;
    case F_DSIZE: return h->desc_size;
    case F_DOFF: return h->desc_off;
    }
    return 0;
}

static void set_fld(struct kdmv_header *h, enum fld f, uint64_t v)
{
    switch (f) {
    case F_CAP: h->capacity = v; break;
    case F_GRAIN: h->grain = v; break;
    case F_GTES: h->num_gtes = (uint32_t)v; break;
    case F_GD: h->gd_off = v; break;
    case F_RGD: h->rgd_off = v; break;
    case F_OVH: h->overhead = v; break;
    case F_DSIZE: h->desc_size = v; break;
    case F_DOFF: h->desc_off = v; break;
    }
}

struct cand {
    struct kdmv_header h;
    enum fld f, f2;          /* f2 == f: one field changed */
    uint64_t from, to, from2, to2;
};

struct cands {
    struct cand *v;
    size_t n, cap;
};

/* Candidate: base with field f set to to. */
static void add(struct cands *c, const struct kdmv_header *base, enum fld f, uint64_t to)
{
    uint64_t from = get_fld(base, f);
    if (to == from || (f == F_GTES && to > UINT32_MAX))
        return;
    struct kdmv_header h = *base;
    set_fld(&h, f, to);
    for (size_t i = 0; i < c->n; i++) {
        int same = 1;
        for (enum fld k = F_CAP; same && k <= F_DOFF; k++)
            same = get_fld(&c->v[i].h, k) == get_fld(&h, k);
        if (same)
            return;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        struct cand *nv = realloc(c->v, nc * sizeof *nv);
        if (!nv)
            return;
        c->v = nv;
        c->cap = nc;
    }
    struct cand *n = &c->v[c->n++];
    n->h = *base;
    set_fld(&n->h, f, to);
    n->f = n->f2 = f;
    n->from = n->from2 = from;
    n->to = n->to2 = to;
}

/* Candidate: base with two fields changed. */
static void add2(struct cands *c, const struct kdmv_header *base, enum fld f, uint64_t to,
                 enum fld f2, uint64_t to2)
{
    if (to2 == get_fld(base, f2)) {
        add(c, base, f, to);
        return;
    }
    struct kdmv_header b = *base;
    set_fld(&b, f2, to2);
    size_t n = c->n;
    add(c, &b, f, to);
    if (c->n == n + 1) {
        c->v[n].f2 = f2;
        c->v[n].from2 = get_fld(base, f2);
        c->v[n].to2 = to2;
    }
}

static void gen(struct cands *c, int fd, const char *path, const struct sx_evidence *ev,
                const struct kdmv_header *h0)
{
    if (ev->desc_sectors)
        add(c, h0, F_CAP, ev->desc_sectors);
    for (uint64_t g = 1; g <= KDMV_MAX_GRAIN; g *= 2)
        add(c, h0, F_GRAIN, g);
    for (uint64_t n = 1; n <= KDMV_MAX_GTES; n *= 2)
        add(c, h0, F_GTES, n);
    int grain_ok = is_pow2(h0->grain) && h0->grain <= KDMV_MAX_GRAIN;
    int gtes_ok = is_pow2(h0->num_gtes) && h0->num_gtes <= KDMV_MAX_GTES;
    if (!grain_ok && !gtes_ok) {
        /* Both sizes gone: one of them standard, the other any. */
        for (uint64_t g = 1; g <= KDMV_MAX_GRAIN; g *= 2)
            add2(c, h0, F_GRAIN, g, F_GTES, 512);
        for (uint64_t n = 1; n <= KDMV_MAX_GTES; n *= 2)
            if (n != 512)
                add2(c, h0, F_GTES, n, F_GRAIN, 128);
    }
    if (!grain_ok || !gtes_ok)
        return;             /* the layout figures below need grain and table sizes */
    uint64_t cover = (uint64_t)h0->num_gtes * h0->grain;
    uint64_t cap = ev->desc_sectors ? ev->desc_sectors : h0->capacity;
    if (cap > (UINT64_MAX >> 10))
        cap = 0;
    uint64_t ngd = cap / cover + (cap % cover != 0);
    uint64_t gd_sec = (ngd * 4 + 511) / 512, gt_sec = ((uint64_t)h0->num_gtes * 4 + 511) / 512;
    uint64_t span = gd_sec + ngd * gt_sec;          /* a directory and its tables */
    if (ngd > (1ull << 32))
        return;
    if ((h0->flags & KDMV_FLAG_RGD) && ev->desc_at) {
        /* Both directory offsets gone: the standard layout after the
         * descriptor. */
        uint64_t r = ev->desc_at + (ev->desc_text_sectors > 20 ? ev->desc_text_sectors : 20);
        add2(c, h0, F_RGD, r, F_GD, r + span);
    }
    if (h0->flags & KDMV_FLAG_RGD) {
        add(c, h0, F_GD, h0->rgd_off + span);
        if (h0->gd_off > span)
            add(c, h0, F_RGD, h0->gd_off - span);
        if (h0->desc_off)
            add(c, h0, F_RGD, h0->desc_off + h0->desc_size);
        if (ev->desc_at && h0->desc_size)
            add(c, h0, F_RGD, ev->desc_at + h0->desc_size);
    } else if (h0->desc_off) {
        add(c, h0, F_GD, h0->desc_off + h0->desc_size);
    }
    for (uint64_t d = 1; d <= 4; d++) {
        add(c, h0, F_GD, h0->gd_off + d);
        if (h0->gd_off > d)
            add(c, h0, F_GD, h0->gd_off - d);
        if (h0->flags & KDMV_FLAG_RGD) {
            add(c, h0, F_RGD, h0->rgd_off + d);
            if (h0->rgd_off > d)
                add(c, h0, F_RGD, h0->rgd_off - d);
        }
    }
    /* overHead: the end of the metadata, as laid out or as the directories
     * and tables in the file say, rounded up to a grain; or where the
     * first grain starts. */
    uint64_t meta = h0->gd_off + span;
    if ((h0->flags & KDMV_FLAG_RGD) && h0->rgd_off + span > meta)
        meta = h0->rgd_off + span;
    add(c, h0, F_OVH, round_up(meta, h0->grain));
    struct sx x;
    memset(&x, 0, sizeof x);
    if (basic_ok(h0) && sx_load_with(&x, fd, path, h0) == 0) {
        struct kdmv_header t = *h0;
        t.overhead = 0;
        struct kdmv_header keep = x.h;
        x.h = t;
        uint64_t end = (sx_meta_end(&x) + 511) / 512;
        x.h = keep;
        uint64_t first = UINT64_MAX;
        for (uint64_t i = 0; i < x.n_gd; i++)
            for (uint32_t k = 0; x.gt[i] && k < h0->num_gtes; k++)
                if (x.gt[i][k] > 1 && x.gt[i][k] >= end && x.gt[i][k] < first)
                    first = x.gt[i][k];
        add(c, h0, F_OVH, round_up(end, h0->grain));
        add(c, h0, F_OVH, end);
        if (first != UINT64_MAX)
            add(c, h0, F_OVH, first);
    }
    sx_free(&x);
    if (ev->desc_at) {
        uint64_t next = (h0->flags & KDMV_FLAG_RGD) ? h0->rgd_off : h0->gd_off;
        if (next > ev->desc_at)
            add(c, h0, F_DSIZE, next - ev->desc_at);
        add(c, h0, F_DSIZE, ev->desc_text_sectors);
        add(c, h0, F_DSIZE, 20);
        add(c, h0, F_DOFF, ev->desc_at);
        if (next > ev->desc_at)
            add2(c, h0, F_DOFF, ev->desc_at, F_DSIZE, next - ev->desc_at);
        add2(c, h0, F_DOFF, ev->desc_at, F_DSIZE, 20);
    } else if (h0->desc_off || h0->desc_size) {
        /* An extent without a descriptor of its own says 0 and 0. */
        add(c, h0, F_DOFF, 0);
        add(c, h0, F_DSIZE, 0);
    }
}

int sx_infer_header(int fd, const char *path, const struct sx_evidence *ev,
                    struct kdmv_header *out, const char **field, char *what, size_t whatlen)
{
    *field = NULL;
    what[0] = '\0';
    unsigned char hb[512];
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    if (st.st_size < 512)
        return vd_err_set(VD_E_CORRUPT, "%s: file too short for a sparse extent header "
                          "(%" PRIu64 " bytes)", path, (uint64_t)st.st_size);
    if (vd_pread_full(fd, hb, sizeof hb, 0, 1) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: reading sparse header", path);
    struct kdmv_header h0;
    memset(&h0, 0, sizeof h0);
    int rc0 = kdmv_header_decode(hb, path, "header", &h0);
    if (rc0 == -VD_E_UNSUPPORTED || (rc0 < 0 && memcmp(hb, "KDMV", 4) != 0))
        return rc0;                  /* not ours to second-guess: Open says the same */
    char msg0[512];
    snprintf(msg0, sizeof msg0, "%s", rc0 < 0 ? vd_err_msg() : "");
    if (h0.flags & KDMV_FLAG_COMPRESSED) {
        if (rc0 < 0)
            return vd_err_set(VD_E_CORRUPT, "%s", msg0);
        *out = h0;
        return 0;                    /* streamOptimized: the caller only notes it */
    }
    /* Damage the decoder refuses although every layout field is fine. */
    const char *base_fix = NULL;
    if ((h0.flags & KDMV_FLAG_NL_TEST) &&
        (hb[73] != '\n' || hb[74] != ' ' || hb[75] != '\r' || hb[76] != '\n'))
        base_fix = "newline detection bytes";
    if (h0.flags & KDMV_FLAG_MARKERS) {
        h0.flags &= ~KDMV_FLAG_MARKERS;
        base_fix = "flags (grain markers without compression)";
    }

    struct score s0, best;
    evaluate(fd, path, ev, &h0, &s0, (uint64_t)st.st_size, 0);
    /* A consistent header is second-guessed only where a wrong value can
     * still look consistent (a smaller grain, fewer entries per table:
     * reads would then map the wrong bytes) and only by a reading that
     * fits the standard layout in every respect where this one does not. */
    if (s0.clean && s0.fit < s0.fit_max && !(ev->desc_sectors > h0.capacity)) {
        struct cands c = { 0 };
        for (uint64_t g = 1; g <= KDMV_MAX_GRAIN; g *= 2)
            add(&c, &h0, F_GRAIN, g);
        for (uint64_t n = 1; n <= KDMV_MAX_GTES; n *= 2)
            add(&c, &h0, F_GTES, n);
        size_t pick = SIZE_MAX;
        best = s0;
        for (size_t i = 0; i < c.n; i++) {
            struct score s;
            evaluate(fd, path, ev, &c.v[i].h, &s, (uint64_t)st.st_size, 1);
            if (s.clean && s.fit == s.fit_max && s.kept >= best.kept && better(&s, &best)) {
                best = s;
                pick = i;
            }
        }
        if (pick != SIZE_MAX) {
            *out = c.v[pick].h;
            *field = fld_name[c.v[pick].f];
            snprintf(what, whatlen, "the header's %s is %" PRIu64 " where the rest of the "
                     "extent (directories, tables, grains, file size, descriptor) says %"
                     PRIu64, fld_name[c.v[pick].f], c.v[pick].from, c.v[pick].to);
            free(c.v);
            return 0;
        }
        free(c.v);
    }
    if (s0.clean && !(ev->desc_sectors > h0.capacity)) {
        *out = h0;
        *field = base_fix;
        if (base_fix)
            snprintf(what, whatlen, "the header's %s are damaged; every layout field agrees "
                     "with the rest of the extent", base_fix);
        return 0;
    }
    /* Rounds of one change each (two fields may be damaged), every round
     * strictly better than the last. */
    struct kdmv_header cur = h0;
    struct score sc = s0;
    size_t wl = 0;
    int changes = 0;
    for (int round = 0; round < 4 && !sc.clean; round++) {
        struct cands c = { 0 };
        gen(&c, fd, path, ev, &cur);
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < c.n; i++) {
            struct score s;
            evaluate(fd, path, ev, &c.v[i].h, &s, (uint64_t)st.st_size, 1);
            if (!s.loaded)
                continue;
            /* A header that can be read at all is changed only for a
             * reading with fewer problems that keeps at least as many
             * grains and fits the standard layout better: damage in the
             * tables must not talk a good header into hiding it (fewer
             * entries per table, say). */
            if (sc.loaded && !(s.problems < sc.problems && s.kept >= sc.kept && s.fit > sc.fit))
                continue;
            if (pick == SIZE_MAX || better(&s, &best)) {
                best = s;
                pick = i;
            }
        }
        if (pick == SIZE_MAX) {
            free(c.v);
            break;
        }
        if (!changes++)
            *field = fld_name[c.v[pick].f];
        for (int k = 0; k < (c.v[pick].f2 != c.v[pick].f ? 2 : 1); k++) {
            const char *fn = fld_name[k ? c.v[pick].f2 : c.v[pick].f];
            uint64_t from = k ? c.v[pick].from2 : c.v[pick].from;
            uint64_t to = k ? c.v[pick].to2 : c.v[pick].to;
            if (wl < whatlen && !wl)
                wl += (size_t)snprintf(what + wl, whatlen - wl, "the header's %s is %" PRIu64
                                       " where the rest of the extent (directories, tables, "
                                       "grains, file size, descriptor) says %" PRIu64, fn,
                                       from, to);
            else if (wl < whatlen)
                wl += (size_t)snprintf(what + wl, whatlen - wl, "; its %s is %" PRIu64
                                       " where it says %" PRIu64, fn, from, to);
        }
        cur = c.v[pick].h;
        sc = best;
        free(c.v);
    }
    if (!changes) {
        if (!s0.loaded && rc0 < 0)
            return vd_err_set(VD_E_CORRUPT, "%s", msg0);
        *out = h0;
        *field = base_fix;
        if (base_fix)
            snprintf(what, whatlen, "the header's %s are damaged", base_fix);
        return 0;
    }
    *out = cur;
    if (base_fix && wl < whatlen)
        snprintf(what + wl, whatlen - wl, "; and its %s are damaged", base_fix);
    return 0;
}
