/* scan.h - read a whole disk block by block, in order, with several reads
 * in flight, hashing each block (SHA-256) on the reading threads.
 *
 * Only the blocks QueryAllocatedBlocks reports as holding data are read;
 * the others are handed over as holes (no data, the hash of zeros).  The
 * callback runs on the calling thread, for every block in increasing
 * order, so it can feed an in-order consumer (a whole-content hash, a
 * one-pass streamOptimized writer). */
#ifndef VDDK_SCAN_H
#define VDDK_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "vddk.h"

#define SCAN_HASH_LEN 32

struct scan_block {
    uint64_t index, offset;
    size_t len;                    /* block size, shorter for the last one */
    const unsigned char *data;     /* NULL for a hole */
    uint8_t hash[SCAN_HASH_LEN];   /* of the block's content (zeros for a hole) */
};

/* Return 0 to go on, -1 to stop (the callback reports its own error). */
typedef int (*scan_fn)(void *ctx, const struct scan_block *b);

struct scan_opts {
    uint64_t block_size;           /* a multiple of 64 KiB */
    int readers;                   /* threads reading (>= 1) */
    volatile uint64_t *done;       /* bytes handed over so far (may be NULL) */
    volatile int *stop;            /* checked between blocks (may be NULL) */
};

/* Scan disk d (capacity bytes; name for messages).  *allocated gets the
 * bytes QueryAllocatedBlocks reports as data.  Returns 0, 1 when the
 * callback stopped, or -1 after writing a reason into err. */
int scan_disk(vddk_disk *d, uint64_t capacity, const char *name, const struct scan_opts *o,
              scan_fn fn, void *ctx, uint64_t *allocated, char *err, size_t errlen);

/* SHA-256 of n bytes. */
void scan_sha256(const void *data, size_t n, uint8_t out[SCAN_HASH_LEN]);
/* SHA-256 of n zero bytes (n <= the largest block size used: 64 MiB). */
void scan_zero_hash(size_t n, uint8_t out[SCAN_HASH_LEN]);

/* An incremental SHA-256 (whole-content digests). */
struct scan_digest;
struct scan_digest *scan_digest_new(void);
int scan_digest_add(struct scan_digest *h, const void *data, size_t n);
/* Add n zero bytes. */
int scan_digest_zeros(struct scan_digest *h, uint64_t n);
void scan_digest_end(struct scan_digest *h, uint8_t out[SCAN_HASH_LEN]);

#endif
