/* gt_cache.h - the grain-table cache shared by the sparse extent kinds
 * (hosted sparse, streamOptimized, vmfsSparse/COWD, seSparse).
 *
 * A fixed number of slots, each holding one whole table in host byte
 * order, replaced least recently used first.  A slot also records the
 * range of entries changed since the table was last written, so that a
 * table can be written back in one piece when it is evicted or flushed.
 * Where the tables are on disk, what makes an entry valid and how a table
 * is written back stay with each extent kind.  The caller serialises all
 * calls on one cache (its extent's lock). */
#ifndef VD_VMDK_GT_CACHE_H
#define VD_VMDK_GT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/vfile.h"

struct gt_slot {
    uint64_t index;               /* table number; UINT64_MAX: holds none */
    uint64_t stamp;               /* last use */
    void *tab;                    /* the table, host order; NULL until first used */
    uint32_t dirty_lo, dirty_hi;  /* entries [lo, hi) not yet written */
};

struct gt_cache {
    struct gt_slot *slot;
    unsigned n;
    size_t bytes;                 /* of one table */
    uint64_t clock;
};

/* n slots for tables of table_bytes.  0 or -VD_E_NOMEM. */
int gt_cache_init(struct gt_cache *c, unsigned n, size_t table_bytes);
void gt_cache_destroy(struct gt_cache *c);
/* Every slot empty, pending changes dropped (the file was rewritten
 * underneath: maint.c). */
void gt_cache_forget(struct gt_cache *c);

/* The slot holding table gi, now the most recently used; NULL if none. */
struct gt_slot *gt_cache_find(struct gt_cache *c, uint64_t gi);

/* Write back the changed entries of sl (the caller may write more). */
typedef int (*gt_writeback_fn)(void *ctx, struct gt_slot *sl);

/* A slot to load table gi into: an empty one, or the least recently used,
 * whose changes are written back first with wb.  The slot holds no table
 * (index UINT64_MAX) until gt_cache_set; its tab is allocated.  NULL with
 * *rc < 0 (the write-back's error, or VD_E_NOMEM naming path). */
struct gt_slot *gt_cache_take(struct gt_cache *c, gt_writeback_fn wb, void *ctx,
                              const char *path, int *rc);
/* sl now holds table gi. */
void gt_cache_set(struct gt_cache *c, struct gt_slot *sl, uint64_t gi);

/* Read a table of c->bytes at byte offset off of f into sl->tab and turn
 * its entries (width 4 or 8 bytes, little-endian) to host order.  0, or
 * vd_file_pread's error (word it with vd_file_read_err). */
int gt_cache_read(const struct gt_cache *c, struct gt_slot *sl, struct vd_file *f,
                  uint64_t off, unsigned width);

static inline int gt_slot_dirty(const struct gt_slot *sl)
{
    return sl->dirty_hi > sl->dirty_lo;
}
/* Entries [g0, g0 + n) of sl changed. */
void gt_slot_mark_dirty(struct gt_slot *sl, uint64_t g0, uint64_t n);
/* Its changes are written. */
static inline void gt_slot_clean(struct gt_slot *sl)
{
    sl->dirty_lo = sl->dirty_hi = 0;
}

/* The write path of one grain table: for [off, off + len) of the range
 * the table t covers (off relative to the extent, the table covering
 * cover bytes of grain bytes each), grains whose entry is above
 * unallocated (0 for COWD, 1 for hosted sparse, where 1 means a zero
 * grain) are written in place from buf; each maximal run of the others is
 * handed to alloc (grains [g0, g0 + n) of the table, extent offset pos,
 * run_len bytes of data from run_buf).  0 or the first error. */
typedef int (*gt_alloc_fn)(void *ctx, uint64_t g0, uint64_t n, uint64_t pos,
                           const unsigned char *run_buf, uint64_t run_len);
int gt_write_table_range(int fd, const char *path, const uint32_t *t, uint32_t unallocated,
                         uint64_t grain, uint64_t cover, uint64_t off,
                         const unsigned char *buf, uint64_t len, gt_alloc_fn alloc,
                         void *ctx);

#endif
