/* stream_pipe.c - worker threads that fill and compress batches of grains
 * for a streamOptimized writer, and the in-order hand-over to the writer
 * (see stream_pipe.h).
 *
 * Slots form a ring indexed by sequence number: the batch with sequence
 * number q lives in slot q % nslots.  A slot goes FREE -> (FILLING, push
 * mode: the owner fills it) -> READY -> BUSY (a worker fills it in pull
 * mode and compresses it) -> DONE -> FREE (the owner has written it).
 * Workers take sequence numbers in order; the owner writes them in order. */
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream_pipe.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define COMPRESSION_LEVEL 6

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct slot {
    struct sp_batch b;                   /* first: sp_get hands out &slot->b */
    enum slot_state state;
    uint64_t seq;
    unsigned char *z;                    /* SP_BATCH_GRAINS * zbound */
    size_t zlen[SP_BATCH_GRAINS];        /* 0: grain not stored */
};

struct stream_pipe {
    struct vmdk_stream *w;
    sp_fill_fn fill;                     /* NULL: push mode */
    void *ctx;
    uint64_t nbatches;                   /* pull mode */
    size_t zbound;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot *slots;
    int nslots;
    uint64_t next;                       /* next sequence number for a worker */
    uint64_t queued;                     /* push mode: batches handed in */
    uint64_t written;                    /* batches written (owner only) */
    int stop;
    int err;                             /* first worker error */
    char errmsg[1024];
    pthread_t th[SP_MAX_WORKERS];
    int nthreads;
};

/* Compress the grains of s that hold anything but zeros; c compresses,
 * store only wraps data in a zlib stream (level 0). */
static int compress_batch(struct stream_pipe *p, struct slot *s,
                          struct libdeflate_compressor *c, struct libdeflate_compressor *store)
{
    memset(s->zlen, 0, sizeof s->zlen);
    size_t len = s->b.len;
    if (!len)
        return 0;
    unsigned ngr = (unsigned)((len + SP_GRAIN - 1) / SP_GRAIN);
    /* The last grain is compressed whole, zero past the data. */
    memset(s->b.raw + len, 0, (size_t)ngr * SP_GRAIN - len);
    for (unsigned g = 0; g < ngr; g++) {
        const unsigned char *in = s->b.raw + (size_t)g * SP_GRAIN;
        if (vd_is_zero(in, SP_GRAIN))
            continue;
        size_t n = libdeflate_zlib_compress(vmdk_grain_looks_random(in, SP_GRAIN) ? store : c, in, SP_GRAIN,
                                            s->z + g * p->zbound, p->zbound);
        if (!n)
            return vd_err_set(VD_E_IO, "compressing grain %llu failed",
                              (unsigned long long)(s->b.index * SP_BATCH_GRAINS + g));
        s->zlen[g] = n;
    }
    return 0;
}

/* Record the first error and stop everyone; called with the lock held. */
static void fail_locked(struct stream_pipe *p, int code, const char *msg)
{
    if (!p->err) {
        p->err = code;
        snprintf(p->errmsg, sizeof p->errmsg, "%s", msg);
    }
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
}

/* The slot a worker may take next, or NULL; called with the lock held. */
static struct slot *claimable(struct stream_pipe *p)
{
    struct slot *s = &p->slots[p->next % (uint64_t)p->nslots];
    if (p->fill)
        return p->next < p->nbatches && s->state == SLOT_FREE ? s : NULL;
    return p->next < p->queued && s->state == SLOT_READY && s->seq == p->next ? s : NULL;
}

static void *worker(void *arg)
{
    struct stream_pipe *p = arg;
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(COMPRESSION_LEVEL);
    struct libdeflate_compressor *store = libdeflate_alloc_compressor(0);
    pthread_mutex_lock(&p->lock);
    if (!c || !store)
        fail_locked(p, VD_E_NOMEM, "out of memory for a compressor");
    for (;;) {
        struct slot *s = NULL;
        while (!p->stop && !(s = claimable(p)) && !(p->fill && p->next >= p->nbatches))
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stop || !s)
            break;
        s->seq = p->next++;
        if (p->fill)
            s->b.index = s->seq;
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&p->lock);
        int rc = p->fill ? p->fill(p->ctx, &s->b) : 0;
        if (rc == 0)
            rc = compress_batch(p, s, c, store);
        pthread_mutex_lock(&p->lock);
        if (rc < 0)
            fail_locked(p, -rc, vd_err_msg());
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    if (c)
        libdeflate_free_compressor(c);
    if (store)
        libdeflate_free_compressor(store);
    return NULL;
}

static int workers_wanted(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SP_MAX_WORKERS ? SP_MAX_WORKERS : (int)n;
}

int sp_start(struct vmdk_stream *w, sp_fill_fn fill, void *ctx, uint64_t nbatches,
             struct stream_pipe **out)
{
    struct stream_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return vd_err_set(VD_E_NOMEM, "out of memory for the compression pipeline");
    p->w = w;
    p->fill = fill;
    p->ctx = ctx;
    p->nbatches = nbatches;
    p->zbound = libdeflate_zlib_compress_bound(NULL, SP_GRAIN);
    int nw = workers_wanted();
    p->nslots = 2 * nw + 2;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->slots = calloc((size_t)p->nslots, sizeof *p->slots);
    int ok = p->slots != NULL;
    for (int i = 0; ok && i < p->nslots; i++) {
        p->slots[i].b.raw = malloc(SP_BATCH_BYTES);
        p->slots[i].z = malloc(SP_BATCH_GRAINS * p->zbound);
        ok = p->slots[i].b.raw && p->slots[i].z;
    }
    if (!ok) {
        sp_stop(p);
        return vd_err_set(VD_E_NOMEM, "out of memory for the compression pipeline");
    }
    for (; p->nthreads < nw; p->nthreads++)
        if (pthread_create(&p->th[p->nthreads], NULL, worker, p) != 0)
            break;
    if (!p->nthreads) {
        sp_stop(p);
        return vd_err_set(VD_E_NOMEM, "cannot start compression threads");
    }
    *out = p;
    return 0;
}

/* Write slot s (DONE, the oldest) to the stream and free it. */
static int write_slot(struct stream_pipe *p, struct slot *s)
{
    int rc = 0;
    for (unsigned g = 0; rc == 0 && g < SP_BATCH_GRAINS; g++)
        if (s->zlen[g])
            rc = vmdk_stream_add_grain(p->w, s->b.index * SP_BATCH_GRAINS + g,
                                       s->z + g * p->zbound, s->zlen[g]);
    pthread_mutex_lock(&p->lock);
    s->state = SLOT_FREE;
    p->written++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* The oldest unwritten slot if it is compressed; with wait, wait for it.
 * NULL with the error set if a worker failed, NULL alone if not ready. */
static struct slot *oldest_done(struct stream_pipe *p, int wait, int *rc)
{
    struct slot *s = &p->slots[p->written % (uint64_t)p->nslots];
    pthread_mutex_lock(&p->lock);
    int ready;
    while (!(ready = s->state == SLOT_DONE && s->seq == p->written) && !p->err && wait)
        pthread_cond_wait(&p->cond, &p->lock);
    *rc = p->err ? vd_err_set(p->err, "%s", p->errmsg) : 0;
    pthread_mutex_unlock(&p->lock);
    return *rc == 0 && ready ? s : NULL;
}

int sp_write_next(struct stream_pipe *p)
{
    int rc;
    struct slot *s = oldest_done(p, 1, &rc);
    return s ? write_slot(p, s) : rc;
}

int sp_get(struct stream_pipe *p, struct sp_batch **b)
{
    struct slot *s = &p->slots[p->queued % (uint64_t)p->nslots];
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int is_free = s->state == SLOT_FREE;
        if (is_free) {
            s->state = SLOT_FILLING;
            s->seq = p->queued;
        }
        pthread_mutex_unlock(&p->lock);
        if (is_free)
            break;
        /* It holds the oldest batch in flight: write that one out. */
        int rc = sp_write_next(p);
        if (rc < 0)
            return rc;
    }
    s->b.len = 0;
    *b = &s->b;
    return 0;
}

int sp_put(struct stream_pipe *p, struct sp_batch *b)
{
    struct slot *s = (struct slot *)b;
    pthread_mutex_lock(&p->lock);
    s->state = SLOT_READY;
    p->queued++;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    int rc = 0;
    while (rc == 0 && p->written < p->queued && (s = oldest_done(p, 0, &rc)) != NULL)
        rc = write_slot(p, s);
    return rc;
}

int sp_drain(struct stream_pipe *p)
{
    int rc = 0;
    while (rc == 0 && p->written < p->queued)
        rc = sp_write_next(p);
    return rc;
}

void sp_stop(struct stream_pipe *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->th[i], NULL);
    for (int i = 0; p->slots && i < p->nslots; i++) {
        free(p->slots[i].b.raw);
        free(p->slots[i].z);
    }
    free(p->slots);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
