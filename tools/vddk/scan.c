/* scan.c - in-order block scanner with parallel reads and hashing (see
 * scan.h).  SHA-256 comes from GnuTLS, which uses the CPU's SHA
 * instructions where there are any. */
#include "scan.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_READERS 16
#define ZERO_MAX (64u << 20)

static unsigned char *zero_buf;
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;
static void zero_init(void) { zero_buf = calloc(1, ZERO_MAX); }

static const unsigned char *zero_bytes(void)
{
    pthread_once(&zero_once, zero_init);
    return zero_buf;
}

void scan_sha256(const void *data, size_t n, uint8_t out[SCAN_HASH_LEN])
{
    gnutls_hash_fast(GNUTLS_DIG_SHA256, data, n, out);
}

void scan_zero_hash(size_t n, uint8_t out[SCAN_HASH_LEN])
{
    /* The common case, a whole 1 MiB block, is kept. */
    static uint8_t mib[SCAN_HASH_LEN];
    static int have;
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (n == (1u << 20)) {
        pthread_mutex_lock(&lock);
        if (!have) {
            scan_sha256(zero_bytes(), n, mib);
            have = 1;
        }
        memcpy(out, mib, SCAN_HASH_LEN);
        pthread_mutex_unlock(&lock);
        return;
    }
    scan_sha256(zero_bytes(), n, out);
}

struct scan_digest {
    gnutls_hash_hd_t h;
};

struct scan_digest *scan_digest_new(void)
{
    struct scan_digest *d = calloc(1, sizeof *d);
    if (d && gnutls_hash_init(&d->h, GNUTLS_DIG_SHA256) < 0) {
        free(d);
        d = NULL;
    }
    return d;
}

int scan_digest_add(struct scan_digest *h, const void *data, size_t n)
{
    return gnutls_hash(h->h, data, n) < 0 ? -1 : 0;
}

int scan_digest_zeros(struct scan_digest *h, uint64_t n)
{
    const unsigned char *z = zero_bytes();
    if (!z)
        return -1;
    while (n) {
        size_t k = n < ZERO_MAX ? (size_t)n : ZERO_MAX;
        if (scan_digest_add(h, z, k) < 0)
            return -1;
        n -= k;
    }
    return 0;
}

void scan_digest_end(struct scan_digest *h, uint8_t out[SCAN_HASH_LEN])
{
    gnutls_hash_deinit(h->h, out);
    free(h);
}

/* ---- the scanner ------------------------------------------------------------ */

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
    int state;
    uint64_t seq;
    unsigned char *buf;
    uint8_t hash[SCAN_HASH_LEN];
};

struct scan {
    vddk_disk *d;
    uint64_t capacity, bs;
    uint64_t *alist;               /* indexes of the blocks holding data */
    uint64_t nalloc;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot *slots;
    int nslots;
    uint64_t next;                 /* next position of alist to read */
    int stop, failed;
    char errmsg[512];
};

static size_t block_len(const struct scan *s, uint64_t index)
{
    uint64_t off = index * s->bs;
    return s->capacity - off < s->bs ? (size_t)(s->capacity - off) : (size_t)s->bs;
}

static void *reader(void *arg)
{
    struct scan *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->next < s->nalloc &&
               s->slots[s->next % (uint64_t)s->nslots].state != SLOT_FREE)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->stop || s->next >= s->nalloc)
            break;
        uint64_t seq = s->next++;
        struct slot *sl = &s->slots[seq % (uint64_t)s->nslots];
        sl->state = SLOT_BUSY;
        sl->seq = seq;
        pthread_mutex_unlock(&s->lock);
        uint64_t index = s->alist[seq];
        size_t len = block_len(s, index);
        ssize_t got = vddk_disk_pread(s->d, sl->buf, len, index * s->bs);
        const char *detail = NULL;
        if (got != (ssize_t)len)
            vddk_disk_last_error(&detail);
        else
            scan_sha256(sl->buf, len, sl->hash);
        pthread_mutex_lock(&s->lock);
        if (got != (ssize_t)len && !s->failed) {
            s->failed = 1;
            s->stop = 1;
            snprintf(s->errmsg, sizeof s->errmsg, "reading block %llu (offset %llu): %s",
                     (unsigned long long)index, (unsigned long long)(index * s->bs),
                     detail ? detail : got < 0 ? "read error" : "short read");
        }
        sl->state = SLOT_DONE;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Find the blocks holding data with QueryAllocatedBlocks (64 KiB chunks). */
static int find_data(struct scan *s, const char *name, uint64_t *allocated, char *err,
                     size_t errlen)
{
    uint64_t nblocks = s->capacity / s->bs + (s->capacity % s->bs != 0);
    struct vddk_runs r;
    vddk_runs_init(&r, vddk_disk_handle(s->d), s->capacity, 0, s->capacity);
    uint64_t off, len, cap = 0;
    int data, rc;
    VixError e = VIX_OK;
    *allocated = 0;
    while ((rc = vddk_runs_next(&r, &off, &len, &data, &e)) == 1) {
        if (!data || !len)
            continue;
        *allocated += len;
        uint64_t first = off / s->bs, last = (off + len - 1) / s->bs;
        if (s->nalloc && s->alist[s->nalloc - 1] >= first)
            first = s->alist[s->nalloc - 1] + 1;
        for (uint64_t b = first; b <= last && b < nblocks; b++) {
            if (s->nalloc == cap) {
                cap = cap ? cap * 2 : 1024;
                uint64_t *n = realloc(s->alist, cap * sizeof *n);
                if (!n) {
                    vddk_runs_free(&r);
                    snprintf(err, errlen, "%s: out of memory", name);
                    return -1;
                }
                s->alist = n;
            }
            s->alist[s->nalloc++] = b;
        }
    }
    vddk_runs_free(&r);
    if (rc < 0) {
        const char *detail = NULL;
        vddk_disk_last_error(&detail);
        char *t = VixDiskLib_GetErrorText(e, NULL);
        snprintf(err, errlen, "%s: querying allocated blocks: %s", name,
                 detail && *detail ? detail : t ? t : "failed");
        VixDiskLib_FreeErrorText(t);
        return -1;
    }
    return 0;
}

int scan_disk(vddk_disk *d, uint64_t capacity, const char *name, const struct scan_opts *o,
              scan_fn fn, void *ctx, uint64_t *allocated, char *err, size_t errlen)
{
    struct scan s = { .d = d, .capacity = capacity, .bs = o->block_size };
    if (!zero_bytes() || o->block_size > ZERO_MAX) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    if (find_data(&s, name, allocated, err, errlen) < 0)
        return -1;
    int nr = o->readers < 1 ? 1 : o->readers > MAX_READERS ? MAX_READERS : o->readers;
    s.nslots = 2 * nr + 2;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    s.slots = calloc((size_t)s.nslots, sizeof *s.slots);
    int ok = s.slots != NULL, ret = 0;
    for (int i = 0; ok && i < s.nslots; i++)
        ok = (s.slots[i].buf = malloc(s.bs)) != NULL;
    pthread_t th[MAX_READERS];
    int started = 0;
    if (!ok) {
        snprintf(err, errlen, "%s: out of memory", name);
        ret = -1;
    } else {
        for (; started < nr; started++)
            if (pthread_create(&th[started], NULL, reader, &s) != 0)
                break;
        if (!started) {
            snprintf(err, errlen, "%s: cannot start reading threads", name);
            ret = -1;
        }
    }
    uint64_t nblocks = capacity / s.bs + (capacity % s.bs != 0), seq = 0;
    for (uint64_t b = 0; ret == 0 && b < nblocks; b++) {
        if (o->stop && *o->stop) {
            snprintf(err, errlen, "%s: interrupted", name);
            ret = -1;
            break;
        }
        struct scan_block blk = { .index = b, .offset = b * s.bs, .len = block_len(&s, b) };
        struct slot *sl = NULL;
        if (seq < s.nalloc && s.alist[seq] == b) {
            sl = &s.slots[seq % (uint64_t)s.nslots];
            pthread_mutex_lock(&s.lock);
            while (!s.failed && !(sl->state == SLOT_DONE && sl->seq == seq))
                pthread_cond_wait(&s.cond, &s.lock);
            pthread_mutex_unlock(&s.lock);
            if (s.failed) {
                snprintf(err, errlen, "%s: %s", name, s.errmsg);
                ret = -1;
                break;
            }
            blk.data = sl->buf;
            memcpy(blk.hash, sl->hash, SCAN_HASH_LEN);
        } else {
            scan_zero_hash(blk.len, blk.hash);
        }
        if (fn(ctx, &blk) < 0)
            ret = 1;
        if (sl) {
            pthread_mutex_lock(&s.lock);
            sl->state = SLOT_FREE;
            seq++;
            pthread_cond_broadcast(&s.cond);
            pthread_mutex_unlock(&s.lock);
        }
        if (o->done)
            __atomic_store_n(o->done, blk.offset + blk.len, __ATOMIC_RELAXED);
    }
    pthread_mutex_lock(&s.lock);
    s.stop = 1;
    pthread_cond_broadcast(&s.cond);
    pthread_mutex_unlock(&s.lock);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; s.slots && i < s.nslots; i++)
        free(s.slots[i].buf);
    free(s.slots);
    free(s.alist);
    pthread_mutex_destroy(&s.lock);
    pthread_cond_destroy(&s.cond);
    return ret;
}
