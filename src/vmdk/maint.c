/* maint.c - Shrink, Defragment and Attach on open disks.
 *
 * Shrink and Defragment work on the hosted sparse extents of the top link
 * of an open, writable disk.  Each extent is marked busy (concurrent I/O on
 * the handle fails with VD_E_LOCKED instead of racing), its cached tables
 * are flushed and dropped, and its metadata is loaded whole (sx) and
 * checked; an inconsistent extent is refused with VD_E_NEEDSREPAIR.  Every
 * relocation follows the rule of maint_priv.h (copy, sync, switch the
 * entry, sync; reuse only what no durable entry names), so a kill at any
 * moment leaves an extent that opens and reads exactly as before.  The
 * content ID does not change: the content does not. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "maint_priv.h"
#include "sparse_priv.h"
#include "stream_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define BATCH 256u          /* grains moved per synced step */
#define SCAN_REPORT 256u    /* grains scanned between progress calls */

/* ---- progress across extents ---------------------------------------------- */

struct prog {
    vmdk_progress_fn fn;
    void *ctx;
    uint64_t ext, next;     /* extent being worked on, of next */
    uint64_t last;
    int cancelled;
};

#define PROG_UNIT 1000000ull

/* done/total within the current extent; returns 0 to stop. */
static int prog(struct prog *p, uint64_t done, uint64_t total)
{
    if (!p->fn || p->cancelled)
        return !p->cancelled;
    uint64_t within = total ? (done >= total ? PROG_UNIT : done * PROG_UNIT / total) : PROG_UNIT;
    uint64_t v = p->ext * PROG_UNIT + within;
    if (v < p->last)
        v = p->last;
    p->last = v;
    if (!p->fn(p->ctx, v, p->next * PROG_UNIT)) {
        p->cancelled = 1;
        return 0;
    }
    return 1;
}

static int cancelled(const char *path, const char *what)
{
    return vd_err_set(VD_E_CANCELLED, "%s: %s cancelled by the progress callback", path, what);
}

/* ---- an extent taken over for maintenance --------------------------------- */

static void drop_cache(struct sparse *s)
{
    gt_cache_forget(&s->cache);
}

static int set_busy(struct extent *e, int busy)
{
    struct sparse *s = e->priv;
    pthread_mutex_lock(&s->lock);
    int rc = 0;
    if (busy && s->busy)
        rc = vd_err_set(VD_E_LOCKED, "%s: another shrink or defragment is running", e->path);
    else
        s->busy = busy;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Load and check e (busy, flushed).  Sets uncleanShutdown for the time of
 * the work unless it is set already (*mine tells give_back to clear it). */
static int take(struct extent *e, struct sx *x, const char *what, int *mine)
{
    *mine = 0;
    struct sparse *s = e->priv;
    pthread_mutex_lock(&s->lock);
    drop_cache(s);
    pthread_mutex_unlock(&s->lock);
    int rc = sx_load(x, e->fd, e->path);
    if (rc < 0)
        return rc;
    struct sx_report rep = { .path = e->path };
    if ((rc = sx_check(x, 0, 0, 1, &rep)) < 0)
        return rc;
    if (rep.problems)
        return vd_err_set(VD_E_NEEDSREPAIR, "%s: %u metadata inconsistencies; run CheckRepair "
                          "before %s", e->path, rep.problems, what);
    if (!x->h.unclean) {
        x->h.unclean = 1;
        rc = sx_write_header(x);
        *mine = rc == 0;
    }
    return rc;
}

/* Hand e back to normal I/O with the state x left in the file.  The
 * unclean flag set by take() is cleared unless the link's own writes
 * need it until close. */
static int give_back(struct extent *e, struct sx *x, int rc, int mine)
{
    struct sparse *s = e->priv;
    if (mine && !s->began_write) {
        char msg[1024];
        int code = vd_err_code();
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        x->h.unclean = 0;
        int r = sx_write_header(x);
        if (rc == 0)
            rc = r;
        else
            vd_err_set(code, "%s", msg);
    }
    pthread_mutex_lock(&s->lock);
    if (x->gd) {
        s->version = x->h.version;
        s->flags = x->h.flags;
        s->file_size = x->file_size;
        uint64_t end = s->file_size > s->overhead * 512 ? s->file_size : s->overhead * 512;
        s->next_free = (end + s->grain_bytes - 1) / s->grain_bytes * s->grain_bytes;
    }
    drop_cache(s);
    s->busy = 0;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Metadata regions (bytes) at or above the overhead, sorted: usually none. */
struct spans {
    uint64_t (*v)[2];
    size_t n;
};

static int span_cmp(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

static int high_meta(const struct sx *x, struct spans *sp)
{
    uint64_t base = x->h.overhead * 512, tb = (uint64_t)x->h.num_gtes * 4;
    size_t cap = 2 + 2 * (size_t)x->n_gd;
    sp->v = malloc(cap * sizeof *sp->v);
    sp->n = 0;
    if (!sp->v)
        return vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
#define ADD(a, len) do { uint64_t a_ = (a); if (a_ + (len) > base) { \
        sp->v[sp->n][0] = a_; sp->v[sp->n][1] = a_ + (len); sp->n++; } } while (0)
    ADD(x->h.gd_off * 512, x->n_gd * 4);
    if (x->rgd)
        ADD(x->h.rgd_off * 512, x->n_gd * 4);
    for (uint64_t i = 0; i < x->n_gd; i++) {
        if (x->gd[i])
            ADD((uint64_t)x->gd[i] * 512, tb);
        if (x->rgd && x->rgd[i])
            ADD((uint64_t)x->rgd[i] * 512, tb);
    }
#undef ADD
    qsort(sp->v, sp->n, sizeof *sp->v, span_cmp);
    return 0;
}

static int spans_hit(const struct spans *sp, uint64_t a, uint64_t b)
{
    for (size_t i = 0; i < sp->n && sp->v[i][0] < b; i++)
        if (sp->v[i][1] > a)
            return 1;
    return 0;
}

/* End of the last grain (bytes), 0 if none. */
static uint64_t grains_end(const struct sx *x)
{
    uint64_t end = 0;
    for (uint64_t g = 0; g < sx_grains(x); g++) {
        uint32_t v = sx_gte(x, g);
        if (v > 1 && (uint64_t)v * 512 + x->grain_bytes > end)
            end = (uint64_t)v * 512 + x->grain_bytes;
    }
    return end;
}

struct mv {
    uint64_t g;
    uint64_t from, to;      /* bytes */
};

/* Copy every grain of m, sync, switch the entries, write the tables
 * (synced).  The sources stay valid until the switch is durable. */
static int apply_moves(struct sx *x, const struct mv *m, size_t n, void *buf)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int rc = sx_copy(x, m[i].from, m[i].to, x->grain_bytes, buf);
        if (rc < 0)
            return rc;
    }
    int rc = sx_sync(x);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        sx_set_gte(x, m[i].g, (uint32_t)(m[i].to / 512));
    return sx_write_tables(x);
}

/* ---- shrink ------------------------------------------------------------------ */

struct gpos {
    uint64_t pos;   /* bytes */
    uint64_t g;
};

static int gpos_cmp(const void *a, const void *b)
{
    const struct gpos *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Move the last grains into the holes below them, then truncate.
 * Progress runs from n to 2n of 2n. */
static int compact(struct sx *x, struct prog *p, void *buf, uint64_t n)
{
    const uint64_t gb = x->grain_bytes, base = x->h.overhead * 512;
    struct spans sp = { 0 };
    struct gpos *u = NULL;
    struct mv *m = NULL;
    size_t nu = 0;
    int rc = high_meta(x, &sp);
    if (rc < 0)
        return rc;
    for (uint64_t g = 0; g < sx_grains(x); g++)
        nu += sx_gte(x, g) > 1;
    u = malloc((nu ? nu : 1) * sizeof *u);
    m = malloc(BATCH * sizeof *m);
    if (!u || !m) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
        goto out;
    }
    nu = 0;
    for (uint64_t g = 0; g < sx_grains(x); g++) {
        uint32_t v = sx_gte(x, g);
        if (v > 1)
            u[nu++] = (struct gpos){ (uint64_t)v * 512, g };
    }
    qsort(u, nu, sizeof *u, gpos_cmp);
    /* Free slots on the grid base + k*gb, lowest first; movers from the top. */
    uint64_t slot = base;
    size_t j = 0, top = nu, nm = 0, moved = 0;
    while (top > 0) {
        struct gpos *mover = &u[top - 1];
        /* Find the next free slot below the mover. */
        for (;;) {
            while (j < nu && u[j].pos + gb <= slot)
                j++;
            if (j < nu && u[j].pos < slot + gb && j < top) {
                uint64_t e = u[j].pos + gb;
                slot = base + (e - base + gb - 1) / gb * gb;
                continue;
            }
            if (spans_hit(&sp, slot, slot + gb)) {
                slot += gb;
                continue;
            }
            break;
        }
        if (slot + gb > mover->pos)
            break;
        m[nm++] = (struct mv){ mover->g, mover->pos, slot };
        slot += gb;
        top--;
        if (nm == BATCH) {
            if ((rc = apply_moves(x, m, nm, buf)) < 0)
                goto out;
            moved += nm;
            nm = 0;
            if (!prog(p, n + moved * n / (nu ? nu : 1), 2 * n)) {
                rc = cancelled(x->path, "shrink");
                break;
            }
        }
    }
    if (rc == 0 && (rc = apply_moves(x, m, nm, buf)) == 0)
        rc = sx_truncate(x, grains_end(x));
out:
    free(sp.v);
    free(u);
    free(m);
    return rc;
}

static int shrink_extent(vmdk_disk *d, struct link *l, struct extent *e, struct prog *p)
{
    struct sx x;
    memset(&x, 0, sizeof x);
    x.fd = -1;
    int mine = 0;
    int rc = take(e, &x, "shrinking", &mine);
    void *buf = NULL, *pbuf = NULL;
    if (rc < 0)
        goto out;
    const uint64_t gb = x.grain_bytes;
    int child = desc_get(&l->desc, "parentFileNameHint") != NULL || l->parent_cid != 0xffffffffu;
    int see_parent = child && vmdk_num_links(d) > 1;
    uint64_t visible = e->size < x.h.capacity * 512 ? e->size : x.h.capacity * 512;
    buf = malloc(gb);
    pbuf = see_parent ? malloc(gb) : NULL;
    if (!buf || (see_parent && !pbuf)) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        goto out;
    }
    /* 1. Find the grains that read as zeros. */
    uint64_t n = sx_grains(&x), zeroed = 0;
    int need_flag = 0;
    for (uint64_t g = 0; g < n; g++) {
        if (g % SCAN_REPORT == 0 && !prog(p, g, 2 * n)) {
            rc = cancelled(e->path, "shrink");
            goto out;
        }
        uint32_t v = sx_gte(&x, g);
        if (v == 0 || (v == 1 && child))
            continue;
        uint64_t start = g * gb;
        uint32_t nv = 0;
        if (v > 1 && start < visible) {
            uint64_t len = visible - start < gb ? visible - start : gb;
            if (vd_pread_full(x.fd, buf, len, (uint64_t)v * 512, 0) < 0) {
                rc = vd_err_errno(errno ? errno : EIO, "%s: reading grain %" PRIu64, e->path, g);
                goto out;
            }
            if (!vd_is_zero(buf, len))
                continue;
            if (child) {
                nv = 1;
                if (see_parent) {
                    if ((rc = vmdk_read_from_link(d, 1, pbuf, len, e->start + start)) < 0)
                        goto out;
                    if (vd_is_zero(pbuf, len))
                        nv = 0;
                }
            }
        }
        if (nv == 1)
            need_flag = 1;
        sx_set_gte(&x, g, nv);
        zeroed++;
    }
    /* 2. Drop them: zeroed-grain entries need flag 0x4 (and version 2)
     * before any entry 1 is written. */
    if (need_flag && !(x.h.flags & KDMV_FLAG_ZERO_GTE)) {
        x.h.flags |= KDMV_FLAG_ZERO_GTE;
        if (x.h.version < 2)
            x.h.version = 2;
        if ((rc = sx_write_header(&x)) < 0)
            goto out;
    }
    if (zeroed && (rc = sx_write_tables(&x)) < 0)
        goto out;
    if (!prog(p, n, 2 * n)) {
        rc = cancelled(e->path, "shrink");
        goto out;
    }
    /* 3. Compact and truncate. */
    rc = compact(&x, p, buf, n);
    /* A base left without zeroed-grain entries is plain version 1 again. */
    if (rc == 0 && !child && (x.h.flags & KDMV_FLAG_ZERO_GTE) && x.h.version == 2) {
        int any = 0;
        for (uint64_t g = 0; !any && g < n; g++)
            any = sx_gte(&x, g) == 1;
        if (!any) {
            x.h.flags &= ~KDMV_FLAG_ZERO_GTE;
            x.h.version = 1;
            rc = sx_write_header(&x);
        }
    }
out:
    rc = give_back(e, &x, rc, mine);
    sx_free(&x);
    free(buf);
    free(pbuf);
    return rc;
}

/* ---- defragment ---------------------------------------------------------------- */

#define SLOT_FREE 0
#define SLOT_META UINT64_MAX
#define SLOT_STACKED (UINT64_MAX - 1)

struct slots {
    uint64_t *owner;        /* grain + 1, SLOT_FREE, SLOT_META, SLOT_STACKED */
    uint64_t n, cap;
    uint64_t *stack;        /* freed slots past the target area */
    uint64_t ns;
    uint64_t cursor;
};

static int slots_ensure(struct slots *s, uint64_t n, const char *path)
{
    if (n <= s->n)
        return 0;
    if (n > s->cap) {
        uint64_t nc = s->cap ? s->cap : 1024;
        while (nc < n)
            nc *= 2;
        uint64_t *no = realloc(s->owner, nc * sizeof *no);
        uint64_t *nst = realloc(s->stack, nc * sizeof *nst);
        if (no)
            s->owner = no;
        if (nst)
            s->stack = nst;
        if (!no || !nst)
            return vd_err_set(VD_E_NOMEM, "%s: out of memory", path);
        s->cap = nc;
    }
    memset(s->owner + s->n, 0, (n - s->n) * sizeof *s->owner);
    s->n = n;
    return 0;
}

/* A free slot at or past `from` (outside the target area). */
static int slot_spill(struct slots *s, uint64_t from, uint64_t *out, const char *path)
{
    if (s->ns) {
        *out = s->stack[--s->ns];
        s->owner[*out] = SLOT_FREE;
        return 0;
    }
    if (s->cursor < from)
        s->cursor = from;
    while (s->cursor < s->n && s->owner[s->cursor] != SLOT_FREE)
        s->cursor++;
    int rc = slots_ensure(s, s->cursor + 1, path);
    if (rc < 0)
        return rc;
    *out = s->cursor++;
    return 0;
}

static int defrag_extent(struct extent *e, struct prog *p)
{
    struct sx x;
    memset(&x, 0, sizeof x);
    x.fd = -1;
    struct spans sp = { 0 };
    struct slots sl = { 0 };
    uint64_t *L = NULL;
    struct mv *m = NULL;
    void *buf = NULL;
    int mine = 0;
    int rc = take(e, &x, "defragmenting", &mine);
    if (rc < 0)
        goto out;
    const uint64_t gb = x.grain_bytes, base = x.h.overhead * 512;
    uint64_t n = sx_grains(&x), U = 0;
    for (uint64_t g = 0; g < n; g++)
        U += sx_gte(&x, g) > 1;
    L = malloc((U ? U : 1) * sizeof *L);
    m = malloc(BATCH * sizeof *m);
    buf = malloc(gb);
    if (!L || !m || !buf) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", e->path);
        goto out;
    }
    if ((rc = high_meta(&x, &sp)) < 0)
        goto out;
    if (spans_hit(&sp, base, base + U * gb)) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: grain tables lie among the grains (a layout "
                        "VMware does not make); clone the disk instead of defragmenting it",
                        e->path);
        goto out;
    }
    U = 0;
    for (uint64_t g = 0; g < n; g++)
        if (sx_gte(&x, g) > 1)
            L[U++] = g;

    /* Already in order and without a tail? */
    int done = 1;
    for (uint64_t k = 0; done && k < U; k++)
        done = (uint64_t)sx_gte(&x, L[k]) * 512 == base + k * gb;
    uint64_t end = base + U * gb, meta = sx_meta_end(&x);
    if (done) {
        rc = sx_truncate(&x, end > meta ? end : meta);
        goto out;
    }

    /* Grains off the grid base + k*gb go to grid slots past everything. */
    uint64_t top = x.file_size > grains_end(&x) ? x.file_size : grains_end(&x);
    if (top < base)
        top = base;
    uint64_t spill = base + (top - base + gb - 1) / gb * gb;
    size_t nm = 0;
    for (uint64_t k = 0; k < U; k++) {
        uint64_t pos = (uint64_t)sx_gte(&x, L[k]) * 512;
        if (pos >= base && (pos - base) % gb == 0)
            continue;
        m[nm++] = (struct mv){ L[k], pos, spill };
        spill += gb;
        if (nm == BATCH) {
            if ((rc = apply_moves(&x, m, nm, buf)) < 0)
                goto out;
            nm = 0;
        }
    }
    if ((rc = apply_moves(&x, m, nm, buf)) < 0)
        goto out;
    nm = 0;
    if (spill / 512 > UINT32_MAX) {
        rc = vd_err_set(VD_E_NOSPACE, "%s: no room to defragment", e->path);
        goto out;
    }

    /* Who owns each slot. */
    uint64_t maxslot = (spill - base) / gb;
    if ((rc = slots_ensure(&sl, maxslot + 1, e->path)) < 0)
        goto out;
    for (size_t i = 0; i < sp.n; i++)
        for (uint64_t a = sp.v[i][0] < base ? 0 : (sp.v[i][0] - base) / gb;
             a < sl.n && base + a * gb < sp.v[i][1]; a++)
            sl.owner[a] = SLOT_META;
    for (uint64_t k = 0; k < U; k++)
        sl.owner[((uint64_t)sx_gte(&x, L[k]) * 512 - base) / gb] = L[k] + 1;
    sl.cursor = U;

    uint64_t nb = (U + BATCH - 1) / BATCH, step = 0;
    for (uint64_t k0 = 0; k0 < U; k0 += BATCH) {
        uint64_t k1 = k0 + BATCH < U ? k0 + BATCH : U;
        /* Evict whatever sits in the window and does not belong there. */
        nm = 0;
        for (uint64_t j = k0; j < k1; j++) {
            uint64_t o = sl.owner[j];
            if (o == SLOT_FREE || o == L[j] + 1)
                continue;
            uint64_t to;
            if ((rc = slot_spill(&sl, U, &to, e->path)) < 0)
                goto out;
            if ((base + to * gb) / 512 + x.h.grain > UINT32_MAX) {
                rc = vd_err_set(VD_E_NOSPACE, "%s: no room to defragment", e->path);
                goto out;
            }
            sl.owner[to] = o;
            m[nm++] = (struct mv){ o - 1, base + j * gb, base + to * gb };
        }
        if ((rc = apply_moves(&x, m, nm, buf)) < 0)
            goto out;
        for (size_t i = 0; i < nm; i++)
            sl.owner[(m[i].from - base) / gb] = SLOT_FREE;
        if (!prog(p, ++step, 2 * nb + 1)) {
            rc = cancelled(e->path, "defragment");
            goto out;
        }
        /* Bring each grain of the window home. */
        nm = 0;
        for (uint64_t j = k0; j < k1; j++) {
            if (sl.owner[j] == L[j] + 1)
                continue;
            uint64_t from = (uint64_t)sx_gte(&x, L[j]) * 512;
            sl.owner[j] = L[j] + 1;
            m[nm++] = (struct mv){ L[j], from, base + j * gb };
        }
        if ((rc = apply_moves(&x, m, nm, buf)) < 0)
            goto out;
        for (size_t i = 0; i < nm; i++) {
            uint64_t s = (m[i].from - base) / gb;
            if (s >= U) {
                sl.owner[s] = SLOT_STACKED;
                sl.stack[sl.ns++] = s;
            } else {
                sl.owner[s] = SLOT_FREE;
            }
        }
        if (!prog(p, ++step, 2 * nb + 1)) {
            rc = cancelled(e->path, "defragment");
            goto out;
        }
    }
    rc = sx_truncate(&x, end > meta ? end : meta);
out:
    rc = give_back(e, &x, rc, mine);
    sx_free(&x);
    free(sp.v);
    free(sl.owner);
    free(sl.stack);
    free(L);
    free(m);
    free(buf);
    return rc;
}

/* ---- the two operations on a disk ------------------------------------------------ */

typedef int (*extent_fn)(vmdk_disk *d, struct link *l, struct extent *e, struct prog *p);

static int shrink_one(vmdk_disk *d, struct link *l, struct extent *e, struct prog *p)
{
    return shrink_extent(d, l, e, p);
}

static int defrag_one(vmdk_disk *d, struct link *l, struct extent *e, struct prog *p)
{
    (void)d;
    (void)l;
    return defrag_extent(e, p);
}

static int each_sparse_extent(vmdk_disk *d, extent_fn fn, const char *what, int none_is_error,
                              vmdk_progress_fn progress, void *ctx)
{
    vd_err_clear();
    if (!d)
        return vd_err_set(VD_E_INVAL, "no disk given");
    struct link *l = vmdk_disk_link(d, 0);
    if (!l)
        return vd_err_set(VD_E_INVAL, "the disk handle no longer has a chain (attached)");
    if (!l->writable && l->remote)
        return link_readonly_err(l);
    if (!l->writable)
        return vd_err_set(VD_E_READONLY, "%s: disk is open read-only; %s needs it writable",
                          l->path, what);
    /* A streamOptimized file is rewritten with only the latest copy of
     * each grain, in grain order: that both shrinks and defragments it. */
    int rc = 0, streams = 0;
    for (size_t i = 0; rc == 0 && i < l->next; i++) {
        if (!extent_is_writable_stream(&l->ext[i]))
            continue;
        if (!streams++ && (rc = link_flush(l)) < 0)
            break;
        rc = extent_stream_compact(&l->ext[i], l->dir);
    }
    if (streams) {
        if (rc == 0 && progress)
            progress(ctx, 1, 1);
        return rc;
    }
    size_t nsparse = 0;
    for (size_t i = 0; i < l->next; i++)
        nsparse += extent_is_hosted_sparse(&l->ext[i]) && l->ext[i].writable;
    if (!nsparse) {
        if (none_is_error)
            return vd_err_set(VD_E_CANTSHRINK, "%s: a %s disk has no unused space to reclaim "
                              "(only hosted sparse disks can shrink)", l->path, l->create_type);
        if (progress)
            progress(ctx, 1, 1);
        return 0;
    }
    /* Busy first (new I/O now fails), then flush what earlier writes left
     * in the table caches; each extent stays busy until fn is done with it
     * (give_back clears it). */
    size_t marked = 0;
    for (; marked < l->next; marked++) {
        struct extent *e = &l->ext[marked];
        if (extent_is_hosted_sparse(e) && e->writable && (rc = set_busy(e, 1)) < 0)
            break;
    }
    struct prog p = { progress, ctx, 0, nsparse, 0, 0 };
    if (rc == 0)
        rc = link_flush(l);
    if (rc == 0 && !prog(&p, 0, 1))
        rc = cancelled(l->path, what);
    for (size_t i = 0; i < marked; i++) {
        struct extent *e = &l->ext[i];
        if (!extent_is_hosted_sparse(e) || !e->writable)
            continue;
        if (rc < 0) {
            set_busy(e, 0);
            continue;
        }
        rc = fn(d, l, e, &p);
        p.ext++;
    }
    if (rc == 0 && progress)
        progress(ctx, nsparse * PROG_UNIT, nsparse * PROG_UNIT);
    return rc;
}

int vmdk_shrink(vmdk_disk *d, vmdk_progress_fn progress, void *ctx)
{
    return each_sparse_extent(d, shrink_one, "shrink", 1, progress, ctx);
}

int vmdk_defragment(vmdk_disk *d, vmdk_progress_fn progress, void *ctx)
{
    return each_sparse_extent(d, defrag_one, "defragment", 0, progress, ctx);
}

/* ---- attach ------------------------------------------------------------------------ */

static int is_delta(const struct link *l)
{
    return desc_get(&l->desc, "parentFileNameHint") != NULL || l->parent_cid != 0xffffffffu;
}

int vmdk_attach_possible(vmdk_disk *parent, vmdk_disk *child)
{
    vd_err_clear();
    if (!parent || !child)
        return vd_err_set(VD_E_INVAL, "Attach needs a parent and a child disk");
    if (parent == child)
        return vd_err_set(VD_E_INVAL, "a disk cannot be attached to itself");
    int nc = vmdk_num_links(child), np = vmdk_num_links(parent);
    struct link *lb = vmdk_disk_link(child, nc - 1), *pt = vmdk_disk_link(parent, 0);
    if (!lb || !pt)
        return vd_err_set(VD_E_INVAL, "a disk handle no longer has a chain (already attached)");
    if (lb->remote)
        return link_readonly_err(lb);
    if (pt->remote)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: the parent is read through a read-only "
                          "transport (%s); a local child cannot name it", pt->path,
                          pt->fs->ops->name);
    if (!is_delta(lb))
        return vd_err_set(VD_E_ATTACH_ROOTLINK, "%s is a base disk (no parentCID or "
                          "parentFileNameHint): only a delta link can be attached to a parent; "
                          "open the child with the single-link flag", lb->path);
    for (size_t i = 0; i < lb->next; i++)
        if (strcmp(lb->ext[i].kind, "FLAT") == 0 || strcmp(lb->ext[i].kind, "VMFS") == 0)
            return vd_err_set(VD_E_UNSUPPORTED, "%s has flat extents and cannot lie on a parent",
                              lb->path);
    if (lb->capacity != pt->capacity)
        return vd_err_set(VD_E_CAPACITY_MISMATCH, "%s has %" PRIu64 " bytes but the parent %s "
                          "has %" PRIu64, lb->path, lb->capacity, pt->path, pt->capacity);
    for (int i = 0; i < nc; i++) {
        struct link *a = vmdk_disk_link(child, i);
        for (int j = 0; j < np; j++) {
            struct link *b = vmdk_disk_link(parent, j);
            if (a->dev == b->dev && a->ino == b->ino)
                return vd_err_set(VD_E_PARENT_LOOP, "%s is part of both chains", a->path);
        }
    }
    if (nc + np > 256)
        return vd_err_set(VD_E_PARENT_LOOP, "%s: the combined chain would be longer than 256 "
                          "links", lb->path);
    if (!lb->writable)
        return vd_err_set(VD_E_READONLY, "%s is open read-only; Attach rewrites its descriptor",
                          lb->path);
    return 0;
}

int vmdk_attach(vmdk_disk *parent, vmdk_disk *child)
{
    int rc = vmdk_attach_possible(parent, child);
    if (rc < 0)
        return rc;
    struct link *lb = vmdk_disk_link(child, vmdk_num_links(child) - 1);
    struct link *pt = vmdk_disk_link(parent, 0);
    /* The parent becomes a read-only member: finish its writes. */
    if (atomic_load(&pt->write_started)) {
        if ((rc = link_flush(pt)) < 0 || (rc = link_end_write(pt)) < 0)
            return rc;
        atomic_store(&pt->write_started, 0);
    }
    char *hint = vmdk_parent_hint_for(lb->path, pt->path);
    if (!hint)
        return vd_err_set(VD_E_NOTFOUND, "%s: cannot resolve the parent's path", pt->path);
    char cid[16];
    snprintf(cid, sizeof cid, "%08x", pt->cid);
    pthread_mutex_lock(&lb->wlock);
    char *old_hint = vd_strdup(desc_get(&lb->desc, "parentFileNameHint"));
    char *old_cid = vd_strdup(desc_get(&lb->desc, "parentCID"));
    if ((rc = desc_set(&lb->desc, "parentFileNameHint", hint)) == 0 &&
        (rc = desc_set(&lb->desc, "parentCID", cid)) == 0)
        rc = link_write_descriptor(lb);
    if (rc < 0) {
        char msg[1024];
        int code = vd_err_code();
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        desc_set(&lb->desc, "parentFileNameHint", old_hint);
        desc_set(&lb->desc, "parentCID", old_cid);
        vd_err_set(code, "%s", msg);
    } else {
        lb->parent_cid = pt->cid;
    }
    pthread_mutex_unlock(&lb->wlock);
    free(old_hint);
    free(old_cid);
    free(hint);
    if (rc < 0)
        return rc;
    return vmdk_chain_append(child, parent);
}
