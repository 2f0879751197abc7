/* stream_priv.h - the state of an open streamOptimized extent, shared by
 * extent_stream.c (opening and reading) and stream_rw.c (writing).
 * Nothing outside src/vmdk includes this. */
#ifndef VD_VMDK_STREAM_PRIV_H
#define VD_VMDK_STREAM_PRIV_H

#include <libdeflate.h>
#include <pthread.h>
#include <stdint.h>

#include "extent.h"
#include "gt_cache.h"
#include "sparse_header.h"

#define STREAM_GRAIN_SLOTS 4
#define STREAM_MAX_CODECS 16
#define STREAM_PEND_SLOTS 8
#define STREAM_MARKER_EOS 0
#define STREAM_MARKER_GT 1
#define STREAM_MARKER_GD 2
#define STREAM_MARKER_FOOTER 3

struct stream_grain_slot {
    uint64_t grain;          /* grain number, UINT64_MAX = empty */
    uint32_t gte;            /* where the copy came from */
    uint64_t stamp;
    unsigned char *data;     /* grain_bytes */
};

/* A grain written in part and not yet compressed: its whole content (the
 * old content where not written) and which sectors were written. */
struct stream_pend {
    uint64_t grain;          /* UINT64_MAX = empty */
    uint64_t stamp;
    unsigned char *data;
    uint64_t *written;       /* one bit per sector */
};

struct stream {
    struct kdmv_header h;    /* the footer's values when there is one */
    uint64_t file_size;      /* grows as records are appended (under lock) */
    uint64_t grain_bytes, gt_cover, n_gd;
    uint32_t *gd;
    int markers;
    pthread_mutex_t lock;    /* caches, pools and all write state */
    uint64_t clock;
    struct gt_cache gts;     /* read-only: num_gtes 32-bit entries a table */
    struct stream_grain_slot grains[STREAM_GRAIN_SLOTS];
    struct libdeflate_decompressor *pool[STREAM_MAX_CODECS];
    int npool;

    /* Writing (stream_rw.c); tabs is NULL in a read-only extent. */
    uint32_t **tabs;         /* every grain table, NULL while all entries are 0 */
    uint64_t append;         /* file offset of the next record */
    uint64_t inflight;       /* records being written outside the lock */
    pthread_cond_t idle;     /* inflight dropped to 0 */
    int began;               /* the header was made ours (first write) */
    int meta_valid;          /* the file ends with valid metadata */
    uint64_t superseded;     /* grain records replaced since open */
    struct stream_pend pend[STREAM_PEND_SLOTS];
    struct libdeflate_compressor *zpool[STREAM_MAX_CODECS], *spool[STREAM_MAX_CODECS];
    int nzpool, nspool;
};

/* extent_stream.c */
/* The table entry of grain g, or a negative error.  Caller holds s->lock. */
int64_t stream_gte_of(struct extent *e, struct stream *s, uint64_t g);
/* Inflate grain g whose entry is sector gte into out (grain_bytes). */
int stream_inflate_grain(struct extent *e, struct stream *s, uint64_t g, uint32_t gte,
                         unsigned char *out);

/* stream_rw.c */
/* Make the open extent writable: every table into memory, find where new
 * records go.  Called by extent_stream_open for a read-write open. */
int stream_rw_init(struct extent *e, struct stream *s);
void stream_rw_destroy(struct stream *s);
/* The pending grain g, or NULL.  Caller holds s->lock. */
struct stream_pend *stream_pend_find(struct stream *s, uint64_t g);
/* Is e a writable stream extent (extent_stream.c)? */
int extent_is_writable_stream(const struct extent *e);
/* Rewrite the file with only the latest copy of each grain, in grain
 * order (shrink and defragment); dir is its directory (synced after the
 * new file takes the old one's name). */
int extent_stream_compact(struct extent *e, const char *dir);
/* The extent operations of a writable stream extent. */
int stream_write_alloc(struct extent *e, uint64_t off, const void *buf, size_t len,
                       cow_read_fn cow, void *cow_ctx);
int stream_begin_write(struct extent *e);
int stream_flush(struct extent *e);

#endif
