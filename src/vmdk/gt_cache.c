/* gt_cache.c - the grain-table cache of the sparse extent kinds. */
#include "gt_cache.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"
#include "../util/fileio.h"

int gt_cache_init(struct gt_cache *c, unsigned n, size_t table_bytes)
{
    memset(c, 0, sizeof *c);
    if (!(c->slot = calloc(n, sizeof *c->slot)))
        return vd_err_set(VD_E_NOMEM, "out of memory for a grain table cache");
    c->n = n;
    c->bytes = table_bytes;
    for (unsigned i = 0; i < n; i++)
        c->slot[i].index = UINT64_MAX;
    return 0;
}

void gt_cache_destroy(struct gt_cache *c)
{
    for (unsigned i = 0; c->slot && i < c->n; i++)
        free(c->slot[i].tab);
    free(c->slot);
    memset(c, 0, sizeof *c);
}

void gt_cache_forget(struct gt_cache *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        c->slot[i].index = UINT64_MAX;
        gt_slot_clean(&c->slot[i]);
    }
}

struct gt_slot *gt_cache_find(struct gt_cache *c, uint64_t gi)
{
    if (gi == UINT64_MAX)
        return NULL;
    for (unsigned i = 0; i < c->n; i++) {
        struct gt_slot *sl = &c->slot[i];
        if (sl->index == gi) {
            sl->stamp = ++c->clock;
            return sl;
        }
    }
    return NULL;
}

struct gt_slot *gt_cache_take(struct gt_cache *c, gt_writeback_fn wb, void *ctx,
                              const char *path, int *rc)
{
    struct gt_slot *victim = NULL;
    for (unsigned i = 0; i < c->n; i++) {
        struct gt_slot *sl = &c->slot[i];
        int empty = sl->index == UINT64_MAX;
        if (empty && !gt_slot_dirty(sl)) {
            victim = sl;
            break;
        }
        if (!victim || sl->stamp < victim->stamp)
            victim = sl;
    }
    if (gt_slot_dirty(victim) && (*rc = wb(ctx, victim)) < 0)
        return NULL;
    gt_slot_clean(victim);
    if (!victim->tab && !(victim->tab = malloc(c->bytes))) {
        *rc = vd_err_set(VD_E_NOMEM, "%s: out of memory for a grain table", path);
        return NULL;
    }
    victim->index = UINT64_MAX;
    return victim;
}

void gt_cache_set(struct gt_cache *c, struct gt_slot *sl, uint64_t gi)
{
    sl->index = gi;
    sl->stamp = ++c->clock;
}

int gt_cache_read(const struct gt_cache *c, struct gt_slot *sl, struct vd_file *f,
                  uint64_t off, unsigned width)
{
    int rc = vd_file_pread(f, sl->tab, c->bytes, off, 1);
    if (rc < 0)
        return rc;
    if (width == 8) {
        uint64_t *t = sl->tab;
        for (size_t i = 0; i < c->bytes / 8; i++)
            t[i] = le64toh(t[i]);
    } else {
        uint32_t *t = sl->tab;
        for (size_t i = 0; i < c->bytes / 4; i++)
            t[i] = le32toh(t[i]);
    }
    return 0;
}

void gt_slot_mark_dirty(struct gt_slot *sl, uint64_t g0, uint64_t n)
{
    uint32_t lo = (uint32_t)g0, hi = (uint32_t)(g0 + n);
    if (!gt_slot_dirty(sl)) {
        sl->dirty_lo = lo;
        sl->dirty_hi = hi;
        return;
    }
    if (lo < sl->dirty_lo)
        sl->dirty_lo = lo;
    if (hi > sl->dirty_hi)
        sl->dirty_hi = hi;
}

int gt_write_table_range(int fd, const char *path, const uint32_t *t, uint32_t unallocated,
                         uint64_t grain, uint64_t cover, uint64_t off,
                         const unsigned char *buf, uint64_t len, gt_alloc_fn alloc,
                         void *ctx)
{
    /* Entries are read as the walk goes: another thread may have
     * allocated some grains since the caller mapped the range. */
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        uint64_t g = (pos % cover) / grain;
        uint64_t gend = (pos / grain + 1) * grain;
        if (gend > end)
            gend = end;
        if (t[g] > unallocated) {
            if (vd_pwrite_full(fd, buf + (pos - off), gend - pos,
                               (uint64_t)t[g] * 512 + pos % grain) < 0)
                return vd_err_errno(errno, "%s: writing grain", path);
            pos = gend;
            continue;
        }
        uint64_t n = 1, rend = gend;
        while (rend < end && t[g + n] <= unallocated) {
            rend = rend + grain < end ? rend + grain : end;
            n++;
        }
        int rc = alloc(ctx, g, n, pos, buf + (pos - off), rend - pos);
        if (rc < 0)
            return rc;
        pos = rend;
    }
    return 0;
}
