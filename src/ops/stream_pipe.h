/* stream_pipe.h - the compression pipeline behind every streamOptimized
 * file the library writes (ops/stream_pipe.c).
 *
 * The disk is cut into batches of SP_BATCH_GRAINS grains.  Worker threads
 * (one per core, at most SP_MAX_WORKERS) compress batches; the thread that
 * owns the pipeline hands the compressed grains to the stream writer in
 * batch order.  The batches come from one of two places:
 *
 *  - pull (clone): the workers fill batches 0, 1, 2, ... themselves with
 *    the fill function, reading the source in parallel;
 *  - push (the one-pass writer): the owner takes a free batch (sp_get),
 *    fills it with any increasing batch number and hands it in (sp_put).
 *
 * Memory is bounded by the slots in flight (2 * workers + 2 batches of
 * raw and compressed data), whatever the size of the disk.  Every call
 * except the fill function runs on the owner's thread. */
#ifndef VD_STREAM_PIPE_H
#define VD_STREAM_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "../vmdk/vmdk.h"

#define SP_GRAIN VMDK_STREAM_GRAIN_BYTES
#define SP_BATCH_GRAINS 16u                 /* 1 MiB per batch */
#define SP_BATCH_BYTES ((uint64_t)SP_GRAIN * SP_BATCH_GRAINS)
#define SP_MAX_WORKERS 8

/* One batch as its filler sees it: disk bytes [index * SP_BATCH_BYTES,
 * + len) are in raw[0, len); raw past len is the pipeline's.  len 0: the
 * batch stores nothing.  Grains that are all zero are never stored. */
struct sp_batch {
    uint64_t index;
    unsigned char *raw;                     /* SP_BATCH_BYTES */
    size_t len;
};

/* Pull mode: fill b (b->index is set) on a worker thread; 0 or a negative
 * vd_err code with the detail set. */
typedef int (*sp_fill_fn)(void *ctx, struct sp_batch *b);

struct stream_pipe;

/* Start the workers for the writer w.  fill given: pull mode over batches
 * 0 .. nbatches - 1; fill NULL: push mode (nbatches unused). */
int sp_start(struct vmdk_stream *w, sp_fill_fn fill, void *ctx, uint64_t nbatches,
             struct stream_pipe **out);
/* Write the oldest batch not yet written, waiting for its compression
 * (pull mode: call once per batch, in order). */
int sp_write_next(struct stream_pipe *p);
/* Push mode: a free batch to fill (older batches are written as needed to
 * free one); its len is 0. */
int sp_get(struct stream_pipe *p, struct sp_batch **b);
/* Push mode: hand in the batch from sp_get, then write whatever batches
 * are compressed, in order, without waiting. */
int sp_put(struct stream_pipe *p, struct sp_batch *b);
/* Push mode: write every batch handed in. */
int sp_drain(struct stream_pipe *p);
/* Stop the workers and free the pipeline; the writer stays the caller's. */
void sp_stop(struct stream_pipe *p);

#endif
