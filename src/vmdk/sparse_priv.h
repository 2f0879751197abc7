/* sparse_priv.h - the state of an open hosted sparse extent, shared by
 * extent_sparse.c (I/O) and the maintenance code (maint*.c: shrink,
 * defragment), which works on the extent's file while the disk is open.
 * Nothing outside src/vmdk includes this. */
#ifndef VD_VMDK_SPARSE_PRIV_H
#define VD_VMDK_SPARSE_PRIV_H

#include <pthread.h>
#include <stdint.h>

#include "extent.h"
#include "gt_cache.h"

#define GT_CACHE_SLOTS 64     /* whole grain tables kept per extent */

struct sparse {
    uint32_t version, flags;
    uint64_t capacity;        /* sectors, from the header */
    uint64_t grain;           /* sectors */
    uint64_t grain_bytes;
    uint32_t num_gtes;
    uint64_t gt_cover;        /* bytes covered by one GT */
    uint64_t rgd_off, gd_off, overhead;   /* sectors */
    uint64_t n_gd;
    uint32_t *gd, *rgd;       /* host order; rgd NULL when not used */
    int unclean_at_open;
    uint64_t file_size;       /* bytes at open */

    pthread_mutex_t lock;     /* cache and allocation */
    struct gt_cache cache;    /* tables of num_gtes 32-bit entries */
    uint64_t next_free;       /* bytes: where the next grain goes */
    int began_write;
    int busy;                 /* a maintenance operation owns the file (maint.c) */
};

/* Is e an uncompressed hosted sparse extent (struct sparse in e->priv)? */
int extent_is_hosted_sparse(const struct extent *e);

#endif
