/* nbd_server.c - the NBD server core: negotiation, request validation and
 * execution, replies, connections, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbd_proto.h"
#include "nbd_server.h"
#include "../util/err.h"
#include "../vmdk/vmdk.h"

#define MAX_LISTENERS 16
#define MAX_OPTIONS 512                /* options per negotiation */
#define INFLIGHT_BYTES (64u << 20)     /* payload bytes queued per connection */
#define ZERO_BUF (1u << 20)
#define META_ID_ALLOC 1u
#define PREFERRED_BLOCK 4096u
#define HEADROOM 32u                   /* room for a reply header before data */

/* ---- state ---------------------------------------------------------------- */

struct export {
    struct export *next;
    char *key;
    struct vdisk *disk;
    char *desc;
    int refs;
};

struct job {
    struct job *next;
    struct nbd_request req;
    void *payload;                 /* WRITE data */
};

struct conn {
    struct nbd_server *srv;
    struct conn *next, *prev;
    struct net_stream st;
    int fd_gone;                   /* st.fd closed (under the server lock) */
    char who[288];                 /* peer, for messages */
    int fixed, no_zeroes, tls_done, structured;
    enum net_tls_mode tls_mode;    /* the server's TLS when the connection came */
    struct net_tls_server *tls;
    char *meta_export;             /* export the contexts were selected for */
    int meta_alloc;
    /* transmission */
    struct export *exp;
    char *export_name;
    uint16_t tflags;
    int readonly;
    /* queue between the reader and the workers */
    pthread_mutex_t qlock;
    pthread_cond_t qcond, space;
    struct job *qhead, *qtail;
    unsigned inflight;
    uint64_t inflight_bytes;
    int closing;
    /* replies */
    pthread_mutex_t wlock;
    int broken;
};

struct nbd_server {
    struct nbd_server_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct export *exports;
    struct conn *conns;
    int nconns;
    int stopping;
    int stop_pipe[2];
    int listen_fds[MAX_LISTENERS];
    int nlisten;
};

static const unsigned char zeros[ZERO_BUF];

static void slog(struct nbd_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void slog(struct nbd_server *s, int level, const char *fmt, ...)
{
    if (level > s->cfg.log_level || !s->cfg.log)
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_ctx, level, msg);
}

/* ---- exports (shared between connections) ------------------------------------ */

static struct export *export_get(struct nbd_server *s, const char *key, uint32_t *err,
                                 char *msg, size_t msglen)
{
    pthread_mutex_lock(&s->lock);
    struct export *e = s->exports;
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    if (e) {
        e->refs++;
        pthread_mutex_unlock(&s->lock);
        return e;
    }
    e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        pthread_mutex_unlock(&s->lock);
        *err = NBD_REP_ERR_UNKNOWN;
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    /* Opened under the lock so that one disk is never opened twice. */
    *err = s->cfg.backend.open(s->cfg.backend.ctx, key, &e->disk, msg, msglen);
    if (*err) {
        free(e->key);
        free(e);
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    if (s->cfg.backend.describe)
        e->desc = s->cfg.backend.describe(s->cfg.backend.ctx, key, e->disk);
    e->refs = 1;
    e->next = s->exports;
    s->exports = e;
    pthread_mutex_unlock(&s->lock);
    slog(s, NBD_LOG_DEBUG, "opened %s", key);
    return e;
}

static void export_put(struct nbd_server *s, struct export *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&s->lock);
    if (--e->refs > 0) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    struct export **pp = &s->exports;
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    /* Flush and close under the lock: a new open of the same disk waits. */
    vd_err_clear();
    int rc = e->disk->ops->close(e->disk);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        slog(s, NBD_LOG_ERR, "closing %s: %s", e->key, vd_err_msg());
    else
        slog(s, NBD_LOG_DEBUG, "closed %s", e->key);
    free(e->key);
    free(e->desc);
    free(e);
}

/* ---- replies ------------------------------------------------------------------ */

static int send_locked(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    if (c->broken)
        return -1;
    if (net_write2(&c->st, a, alen, b, blen) != NET_OK) {
        c->broken = 1;
        slog(c->srv, NBD_LOG_INFO, "%s: %s", c->who, vd_err_msg());
        net_shutdown(&c->st);
        return -1;
    }
    return 0;
}

static int reply_send(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    pthread_mutex_lock(&c->wlock);
    int r = send_locked(c, a, alen, b, blen);
    pthread_mutex_unlock(&c->wlock);
    return r;
}

static int opt_reply(struct conn *c, uint32_t opt, uint32_t type, const void *data,
                     uint32_t len)
{
    unsigned char h[NBD_REP_HDR_LEN];
    nbd_enc_opt_reply(h, opt, type, len);
    return reply_send(c, h, sizeof h, data, len);
}

static int opt_error(struct conn *c, uint32_t opt, uint32_t type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int opt_error(struct conn *c, uint32_t opt, uint32_t type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    slog(c->srv, NBD_LOG_INFO, "%s: option %s refused (%s): %s", c->who, nbd_opt_name(opt),
         nbd_rep_name(type), msg);
    return opt_reply(c, opt, type, msg, (uint32_t)strlen(msg));
}

static int reply_ok(struct conn *c, uint64_t cookie)
{
    unsigned char h[NBD_SIMPLE_REPLY_LEN];
    nbd_enc_simple_reply(h, 0, cookie);
    return reply_send(c, h, sizeof h, NULL, 0);
}

static int reply_error(struct conn *c, const struct nbd_request *r, uint32_t err,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int reply_error(struct conn *c, const struct nbd_request *r, uint32_t err,
                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    slog(c->srv, NBD_LOG_DEBUG, "%s: %s of %u bytes at %llu: %s: %s", c->who,
         nbd_cmd_name(r->type), r->length, (unsigned long long)r->offset, nbd_err_name(err), msg);
    if (!c->structured) {
        unsigned char h[NBD_SIMPLE_REPLY_LEN];
        nbd_enc_simple_reply(h, err, r->cookie);
        return reply_send(c, h, sizeof h, NULL, 0);
    }
    size_t ml = strlen(msg);
    unsigned char h[NBD_CHUNK_HDR_LEN + 6];
    struct nbd_chunk ch = { NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, r->cookie,
                            (uint32_t)(6 + ml) };
    nbd_enc_chunk(h, &ch);
    nbd_put32(h + NBD_CHUNK_HDR_LEN, err);
    nbd_put16(h + NBD_CHUNK_HDR_LEN + 4, (uint16_t)ml);
    return reply_send(c, h, sizeof h, msg, ml);
}

/* ---- commands ------------------------------------------------------------------ */

static uint32_t vd_to_nbd(int rc)
{
    switch (rc < 0 ? -rc : rc) {
    case VD_E_READONLY: return NBD_EPERM;
    case VD_E_NOSPACE: return NBD_ENOSPC;
    case VD_E_NOMEM: return NBD_ENOMEM;
    case VD_E_RANGE: case VD_E_INVAL: return NBD_EINVAL;
    default: return NBD_EIO;
    }
}

static int in_range(const struct conn *c, uint64_t off, uint64_t len)
{
    uint64_t size = c->exp->disk->capacity;
    return off <= size && len <= size - off;
}

static int do_read(struct conn *c, const struct nbd_request *r, void **wbuf, size_t *wcap)
{
    struct vdisk *d = c->exp->disk;
    uint32_t len = r->length;
    if (len == 0) {
        if (!c->structured)
            return reply_ok(c, r->cookie);
        unsigned char h[NBD_CHUNK_HDR_LEN];
        struct nbd_chunk ch = { NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, r->cookie, 0 };
        nbd_enc_chunk(h, &ch);
        return reply_send(c, h, sizeof h, NULL, 0);
    }
    if (c->structured) {
        /* A range with no data anywhere goes out as one hole chunk. */
        uint64_t run;
        int st;
        if (d->ops->block_status(d, r->offset, len, 0, &run, &st) == 0 && st != VMDK_DATA &&
            run >= len) {
            unsigned char h[NBD_CHUNK_HDR_LEN + 12];
            struct nbd_chunk ch = { NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE, r->cookie,
                                    12 };
            nbd_enc_chunk(h, &ch);
            nbd_put64(h + NBD_CHUNK_HDR_LEN, r->offset);
            nbd_put32(h + NBD_CHUNK_HDR_LEN + 8, len);
            return reply_send(c, h, sizeof h, NULL, 0);
        }
    }
    /* Header and data go out as one buffer (one TLS record stream, one
     * system call): the data is read HEADROOM bytes into the buffer. */
    if (*wcap < (size_t)len + HEADROOM) {
        void *nb = realloc(*wbuf, (size_t)len + HEADROOM);
        if (!nb)
            return reply_error(c, r, NBD_ENOMEM, "out of memory for a %u-byte read", len);
        *wbuf = nb;
        *wcap = (size_t)len + HEADROOM;
    }
    unsigned char *data = (unsigned char *)*wbuf + HEADROOM;
    vd_err_clear();
    int rc = d->ops->pread(d, data, len, r->offset);
    if (rc < 0)
        return reply_error(c, r, vd_to_nbd(rc), "read failed: %s", vd_err_msg());
    if (!c->structured) {
        unsigned char *h = data - NBD_SIMPLE_REPLY_LEN;
        nbd_enc_simple_reply(h, 0, r->cookie);
        return reply_send(c, h, NBD_SIMPLE_REPLY_LEN + (size_t)len, NULL, 0);
    }
    unsigned char *h = data - (NBD_CHUNK_HDR_LEN + 8);
    struct nbd_chunk ch = { NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, r->cookie,
                            8 + len };
    nbd_enc_chunk(h, &ch);
    nbd_put64(h + NBD_CHUNK_HDR_LEN, r->offset);
    return reply_send(c, h, NBD_CHUNK_HDR_LEN + 8 + (size_t)len, NULL, 0);
}

static int flush_disk(struct conn *c, const struct nbd_request *r)
{
    vd_err_clear();
    int rc = c->exp->disk->ops->flush(c->exp->disk);
    if (rc < 0)
        return reply_error(c, r, vd_to_nbd(rc), "flush failed: %s", vd_err_msg());
    return reply_ok(c, r->cookie);
}

static int do_write(struct conn *c, const struct nbd_request *r, const void *data)
{
    struct vdisk *d = c->exp->disk;
    if (r->length) {
        vd_err_clear();
        int rc = d->ops->pwrite(d, data, r->length, r->offset);
        if (rc < 0)
            return reply_error(c, r, vd_to_nbd(rc), "write failed: %s", vd_err_msg());
    }
    if (r->flags & NBD_CMD_FLAG_FUA)
        return flush_disk(c, r);
    return reply_ok(c, r->cookie);
}

static int do_zeroes(struct conn *c, const struct nbd_request *r)
{
    struct vdisk *d = c->exp->disk;
    uint64_t off = r->offset, end = r->offset + r->length;
    if (r->flags & NBD_CMD_FLAG_FAST_ZERO) {
        /* Fast only where nothing is stored: check before touching anything. */
        for (uint64_t o = off; o < end;) {
            uint64_t run;
            int st;
            int rc = d->ops->block_status(d, o, end - o, 0, &run, &st);
            if (rc < 0)
                return reply_error(c, r, vd_to_nbd(rc), "%s", vd_err_msg());
            if (st == VMDK_DATA)
                return reply_error(c, r, NBD_ENOTSUP, "the range holds data: zeroing it "
                                   "would be a write, not fast");
            o += run;
        }
    }
    while (off < end) {
        uint64_t run;
        int st;
        vd_err_clear();
        int rc = d->ops->block_status(d, off, end - off, 0, &run, &st);
        if (rc < 0)
            return reply_error(c, r, vd_to_nbd(rc), "%s", vd_err_msg());
        if (st == VMDK_DATA) {
            for (uint64_t o = off; o < off + run;) {
                size_t n = off + run - o < ZERO_BUF ? (size_t)(off + run - o) : ZERO_BUF;
                if ((rc = d->ops->pwrite(d, zeros, n, o)) < 0)
                    return reply_error(c, r, vd_to_nbd(rc), "write failed: %s", vd_err_msg());
                o += n;
            }
        }
        off += run;
    }
    if (r->flags & NBD_CMD_FLAG_FUA)
        return flush_disk(c, r);
    return reply_ok(c, r->cookie);
}

static uint32_t state_flags(int st)
{
    return st == VMDK_HOLE ? NBD_STATE_HOLE | NBD_STATE_ZERO
         : st == VMDK_ZERO ? NBD_STATE_ZERO : 0;
}

static int do_block_status(struct conn *c, const struct nbd_request *r)
{
    struct vdisk *d = c->exp->disk;
    unsigned maxd = (r->flags & NBD_CMD_FLAG_REQ_ONE) ? 1 : NBD_MAX_DESCRIPTORS;
    unsigned char *p = malloc(4 + (size_t)maxd * 8);
    if (!p)
        return reply_error(c, r, NBD_ENOMEM, "out of memory");
    nbd_put32(p, META_ID_ALLOC);
    unsigned n = 0;
    uint64_t off = r->offset, end = r->offset + r->length;
    uint32_t cur_len = 0, cur_flags = 0;
    while (off < end) {
        uint64_t run;
        int st;
        vd_err_clear();
        int rc = d->ops->block_status(d, off, end - off, 0, &run, &st);
        if (rc < 0) {
            free(p);
            return reply_error(c, r, vd_to_nbd(rc), "block status failed: %s", vd_err_msg());
        }
        if (run == 0 || run > end - off)
            run = end - off;          /* never trust a backend to make progress */
        uint32_t fl = state_flags(st);
        if (cur_len && fl == cur_flags) {
            cur_len += (uint32_t)run;  /* r->length is 32-bit: no overflow */
        } else {
            if (cur_len) {
                nbd_put32(p + 4 + 8 * n, cur_len);
                nbd_put32(p + 8 + 8 * n, cur_flags);
                if (++n == maxd)
                    break;
            }
            cur_len = (uint32_t)run;
            cur_flags = fl;
        }
        off += run;
    }
    if (n < maxd && cur_len) {
        nbd_put32(p + 4 + 8 * n, cur_len);
        nbd_put32(p + 8 + 8 * n, cur_flags);
        n++;
    }
    unsigned char h[NBD_CHUNK_HDR_LEN];
    struct nbd_chunk ch = { NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, r->cookie,
                            4 + 8 * n };
    nbd_enc_chunk(h, &ch);
    int ret = reply_send(c, h, sizeof h, p, 4 + 8 * (size_t)n);
    free(p);
    return ret;
}

/* Validate and execute one request; send its reply.  Returns -1 when the
 * connection can no longer be written to. */
static int execute(struct conn *c, const struct nbd_request *r, const void *payload,
                   void **wbuf, size_t *wcap)
{
    uint16_t allowed;
    switch (r->type) {
    case NBD_CMD_READ:
        allowed = NBD_CMD_FLAG_FUA | (c->structured ? NBD_CMD_FLAG_DF : 0);
        break;
    case NBD_CMD_WRITE: case NBD_CMD_TRIM: case NBD_CMD_FLUSH: case NBD_CMD_CACHE:
        allowed = NBD_CMD_FLAG_FUA;
        break;
    case NBD_CMD_WRITE_ZEROES:
        allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
        break;
    case NBD_CMD_BLOCK_STATUS:
        allowed = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
        break;
    default:
        return reply_error(c, r, NBD_EINVAL, "unknown command %u", r->type);
    }
    if (r->flags & ~allowed)
        return reply_error(c, r, NBD_EINVAL, "flags 0x%x are not valid for %s", r->flags,
                           nbd_cmd_name(r->type));
    uint64_t size = c->exp->disk->capacity;
    int writes = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM ||
                 r->type == NBD_CMD_WRITE_ZEROES;
    if (writes && c->readonly)
        return reply_error(c, r, NBD_EPERM, "the export is read-only");
    if (r->type == NBD_CMD_FLUSH) {
        if (r->offset || r->length)
            return reply_error(c, r, NBD_EINVAL, "FLUSH needs offset and length 0");
        return flush_disk(c, r);
    }
    if (!in_range(c, r->offset, r->length))
        return reply_error(c, r, writes ? NBD_ENOSPC : NBD_EINVAL,
                           "range %llu+%u is past the end of the export (%llu bytes)",
                           (unsigned long long)r->offset, r->length, (unsigned long long)size);
    switch (r->type) {
    case NBD_CMD_READ:
        if (r->length > NBD_MAX_PAYLOAD)
            return reply_error(c, r, NBD_EINVAL, "read of %u bytes is larger than the "
                               "maximum %u", r->length, NBD_MAX_PAYLOAD);
        return do_read(c, r, wbuf, wcap);
    case NBD_CMD_WRITE:
        return do_write(c, r, payload);
    case NBD_CMD_TRIM:
        /* A hint: nothing is discarded (the engine cannot punch grains). */
        return (r->flags & NBD_CMD_FLAG_FUA) ? flush_disk(c, r) : reply_ok(c, r->cookie);
    case NBD_CMD_CACHE:
        return reply_ok(c, r->cookie);
    case NBD_CMD_WRITE_ZEROES:
        return do_zeroes(c, r);
    case NBD_CMD_BLOCK_STATUS:
        if (!c->structured || !c->meta_alloc)
            return reply_error(c, r, NBD_EINVAL, "no metadata context was selected");
        if (r->length == 0)
            return reply_error(c, r, NBD_EINVAL, "BLOCK_STATUS needs a non-zero length");
        return do_block_status(c, r);
    }
    return 0;
}

/* ---- transmission: reader and workers ------------------------------------------- */

static void job_done(struct conn *c, struct job *j)
{
    uint64_t cost = j->req.type == NBD_CMD_WRITE || j->req.type == NBD_CMD_READ
                        ? j->req.length : 0;
    free(j->payload);
    free(j);
    pthread_mutex_lock(&c->qlock);
    c->inflight--;
    c->inflight_bytes -= cost;
    pthread_cond_broadcast(&c->space);
    pthread_mutex_unlock(&c->qlock);
}

static void *worker_main(void *arg)
{
    struct conn *c = arg;
    void *wbuf = NULL;
    size_t wcap = 0;
    for (;;) {
        pthread_mutex_lock(&c->qlock);
        while (!c->qhead && !c->closing)
            pthread_cond_wait(&c->qcond, &c->qlock);
        struct job *j = c->qhead;
        if (!j) {
            pthread_mutex_unlock(&c->qlock);
            break;
        }
        c->qhead = j->next;
        if (!c->qhead)
            c->qtail = NULL;
        pthread_mutex_unlock(&c->qlock);
        execute(c, &j->req, j->payload, &wbuf, &wcap);
        /* Keep a buffer for the usual sizes; give back big ones. */
        if (wcap > (4u << 20)) {
            free(wbuf);
            wbuf = NULL;
            wcap = 0;
        }
        job_done(c, j);
    }
    free(wbuf);
    return NULL;
}

/* Read requests until DISC, end of stream or unreadable input. */
static void transmission(struct conn *c, int inline_mode)
{
    struct nbd_server *s = c->srv;
    unsigned nworkers = inline_mode ? 0 : (s->cfg.workers ? s->cfg.workers : 4);
    unsigned max_inflight = s->cfg.max_inflight ? s->cfg.max_inflight : 64;
    pthread_t th[64];
    unsigned started = 0;
    if (nworkers > 64)
        nworkers = 64;
    for (; started < nworkers; started++)
        if (pthread_create(&th[started], NULL, worker_main, c) != 0)
            break;
    if (nworkers && !started)
        slog(s, NBD_LOG_WARN, "%s: cannot start worker threads; serving one request at a "
             "time", c->who);
    void *ibuf = NULL;
    size_t icap = 0;
    c->st.rd_timeout_ms = -1;      /* idle clients may stay connected */
    for (;;) {
        unsigned char hdr[NBD_REQ_LEN];
        int r = net_read(&c->st, hdr, sizeof hdr);
        if (r == NET_EOF) {
            slog(s, NBD_LOG_DEBUG, "%s: closed the connection", c->who);
            break;
        }
        if (r != NET_OK) {
            slog(s, NBD_LOG_INFO, "%s", vd_err_msg());
            break;
        }
        struct nbd_request req;
        if (nbd_dec_request(hdr, &req) < 0) {
            slog(s, NBD_LOG_WARN, "%s: bad request magic 0x%08x; closing the connection",
                 c->who, nbd_get32(hdr));
            break;
        }
        if (req.type == NBD_CMD_DISC) {
            slog(s, NBD_LOG_DEBUG, "%s: disconnect requested", c->who);
            break;
        }
        uint64_t cost = req.type == NBD_CMD_WRITE || req.type == NBD_CMD_READ ? req.length : 0;
        if (req.type == NBD_CMD_WRITE && req.length > NBD_MAX_PAYLOAD) {
            /* The payload cannot be taken in, and skipping gigabytes is not
             * worth it: the stream cannot continue. */
            slog(s, NBD_LOG_WARN, "%s: WRITE of %u bytes is larger than the maximum %u; "
                 "closing the connection", c->who, req.length, NBD_MAX_PAYLOAD);
            break;
        }
        if (cost > NBD_MAX_PAYLOAD)
            cost = 0;                  /* refused without a buffer */
        struct job *j = calloc(1, sizeof *j);
        if (!j) {
            slog(s, NBD_LOG_ERR, "%s: out of memory", c->who);
            break;
        }
        j->req = req;
        if (!inline_mode && started) {
            pthread_mutex_lock(&c->qlock);
            while (c->inflight >= max_inflight ||
                   (c->inflight && c->inflight_bytes + cost > INFLIGHT_BYTES))
                pthread_cond_wait(&c->space, &c->qlock);
            c->inflight++;
            c->inflight_bytes += cost;
            pthread_mutex_unlock(&c->qlock);
        }
        if (req.type == NBD_CMD_WRITE && req.length) {
            j->payload = malloc(req.length);
            r = j->payload ? net_read(&c->st, j->payload, req.length) : NET_ERR;
            if (r != NET_OK) {
                if (!j->payload)
                    slog(s, NBD_LOG_ERR, "%s: out of memory for a WRITE payload", c->who);
                else
                    slog(s, NBD_LOG_INFO, "%s: %s", c->who,
                         r == NET_EOF ? "connection closed inside a WRITE payload"
                                      : vd_err_msg());
                if (!inline_mode && started) {
                    pthread_mutex_lock(&c->qlock);
                    c->inflight--;
                    c->inflight_bytes -= cost;
                    pthread_mutex_unlock(&c->qlock);
                }
                free(j->payload);
                free(j);
                break;
            }
        }
        if (inline_mode || !started) {
            int er = execute(c, &j->req, j->payload, &ibuf, &icap);
            free(j->payload);
            free(j);
            if (er < 0 || c->broken)
                break;
            continue;
        }
        pthread_mutex_lock(&c->qlock);
        if (c->qtail)
            c->qtail->next = j;
        else
            c->qhead = j;
        c->qtail = j;
        pthread_cond_signal(&c->qcond);
        pthread_mutex_unlock(&c->qlock);
        if (c->broken)
            break;
    }
    /* Requests already read still get their replies. */
    pthread_mutex_lock(&c->qlock);
    c->closing = 1;
    pthread_cond_broadcast(&c->qcond);
    pthread_mutex_unlock(&c->qlock);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(ibuf);
}

/* ---- negotiation ------------------------------------------------------------------ */

static uint16_t transmission_flags(int readonly, int structured)
{
    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
    if (readonly)
        f |= NBD_FLAG_READ_ONLY;
    else
        f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    if (structured)
        f |= NBD_FLAG_SEND_DF;
    return f;
}

/* Resolve and open the export; on failure err/msg say why. */
static struct export *open_export(struct conn *c, const char *name, uint32_t *err, char *msg,
                                  size_t msglen)
{
    struct nbd_server *s = c->srv;
    char *key = NULL;
    *err = s->cfg.backend.resolve(s->cfg.backend.ctx, name, &key, msg, msglen);
    if (*err)
        return NULL;
    struct export *e = export_get(s, key, err, msg, msglen);
    free(key);
    return e;
}

static void bind_export(struct conn *c, struct export *e, const char *name)
{
    c->exp = e;
    free(c->export_name);
    c->export_name = strdup(name);
    c->readonly = c->srv->cfg.readonly || e->disk->readonly;
    c->tflags = transmission_flags(c->readonly, c->structured);
}

struct list_ctx {
    struct conn *c;
    int failed;
};

static int emit_export(void *arg, const char *name)
{
    struct list_ctx *lc = arg;
    size_t n = strlen(name);
    if (lc->failed || n > NBD_MAX_STRING)
        return lc->failed ? -1 : 0;
    struct nbd_buf b = { 0 };
    nbd_buf_u32(&b, (uint32_t)n);
    nbd_buf_mem(&b, name, n);
    if (b.oom || opt_reply(lc->c, NBD_OPT_LIST, NBD_REP_SERVER, b.p, (uint32_t)b.len) < 0)
        lc->failed = 1;
    nbd_buf_free(&b);
    return lc->failed ? -1 : 0;
}

static int info_reply(struct conn *c, uint32_t opt, const struct nbd_buf *b)
{
    return b->oom ? -1 : opt_reply(c, opt, NBD_REP_INFO, b->p, (uint32_t)b->len);
}

/* INFO and GO.  Returns 1 to enter transmission, 0 to go on negotiating,
 * -1 to close. */
static int opt_info_go(struct conn *c, uint32_t opt, const unsigned char *data, uint32_t len)
{
    struct nbd_cur cur;
    nbd_cur_init(&cur, data, len);
    uint32_t nl = nbd_cur_u32(&cur);
    char *name = nbd_cur_str(&cur, nl);
    uint16_t nreq = nbd_cur_u16(&cur);
    int want_name = 0, want_desc = 0;
    for (unsigned i = 0; i < nreq && !cur.bad; i++) {
        uint16_t t = nbd_cur_u16(&cur);
        want_name |= t == NBD_INFO_NAME;
        want_desc |= t == NBD_INFO_DESCRIPTION;
    }
    if (cur.bad || cur.left) {
        free(name);
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed %s request (%u bytes)",
                         nbd_opt_name(opt), len) < 0 ? -1 : 0;
    }
    uint32_t err = 0;
    char msg[512] = "";
    struct export *e = open_export(c, name, &err, msg, sizeof msg);
    if (!e) {
        int r = opt_error(c, opt, err, "%s", msg);
        free(name);
        return r < 0 ? -1 : 0;
    }
    uint16_t tflags = transmission_flags(c->srv->cfg.readonly || e->disk->readonly,
                                         c->structured);
    struct nbd_buf b = { 0 };
    nbd_buf_u16(&b, NBD_INFO_EXPORT);
    nbd_buf_u64(&b, e->disk->capacity);
    nbd_buf_u16(&b, tflags);
    int r = info_reply(c, opt, &b);
    nbd_buf_free(&b);
    if (r == 0 && want_name) {
        nbd_buf_u16(&b, NBD_INFO_NAME);
        nbd_buf_mem(&b, name, strlen(name));
        r = info_reply(c, opt, &b);
        nbd_buf_free(&b);
    }
    if (r == 0 && want_desc && e->desc) {
        size_t dl = strlen(e->desc);
        nbd_buf_u16(&b, NBD_INFO_DESCRIPTION);
        nbd_buf_mem(&b, e->desc, dl > NBD_MAX_STRING ? NBD_MAX_STRING : dl);
        r = info_reply(c, opt, &b);
        nbd_buf_free(&b);
    }
    if (r == 0) {
        nbd_buf_u16(&b, NBD_INFO_BLOCK_SIZE);
        nbd_buf_u32(&b, 1);
        nbd_buf_u32(&b, PREFERRED_BLOCK);
        nbd_buf_u32(&b, NBD_MAX_PAYLOAD);
        r = info_reply(c, opt, &b);
        nbd_buf_free(&b);
    }
    if (r == 0)
        r = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    if (r < 0 || opt == NBD_OPT_INFO) {
        export_put(c->srv, e);
        free(name);
        return r < 0 ? -1 : 0;
    }
    /* Contexts selected for another export do not apply to this one. */
    if (c->meta_alloc && (!c->meta_export || strcmp(c->meta_export, name) != 0))
        c->meta_alloc = 0;
    bind_export(c, e, name);
    free(name);
    return 1;
}

static int opt_meta(struct conn *c, uint32_t opt, const unsigned char *data, uint32_t len)
{
    if (!c->structured)
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "negotiate STRUCTURED_REPLY first");
    struct nbd_cur cur;
    nbd_cur_init(&cur, data, len);
    uint32_t nl = nbd_cur_u32(&cur);
    char *name = nbd_cur_str(&cur, nl);
    uint32_t nq = nbd_cur_u32(&cur);
    int sel = 0;
    int list_all = opt == NBD_OPT_LIST_META_CONTEXT && nq == 0;
    for (uint32_t i = 0; i < nq && !cur.bad; i++) {
        uint32_t ql = nbd_cur_u32(&cur);
        char *q = nbd_cur_str(&cur, ql);
        if (!q)
            break;
        if (strcmp(q, NBD_META_BASE_ALLOCATION) == 0 ||
            (opt == NBD_OPT_LIST_META_CONTEXT && strcmp(q, "base:") == 0))
            sel = 1;
        free(q);
    }
    if (cur.bad || cur.left) {
        free(name);
        return opt_error(c, opt, NBD_REP_ERR_INVALID, "malformed %s request (%u bytes)",
                         nbd_opt_name(opt), len);
    }
    /* The export must be one we would serve. */
    char *key = NULL;
    char msg[512] = "";
    uint32_t err = c->srv->cfg.backend.resolve(c->srv->cfg.backend.ctx, name, &key, msg,
                                               sizeof msg);
    free(key);
    if (err) {
        free(name);
        return opt_error(c, opt, err, "%s", msg);
    }
    int r = 0;
    if (sel || list_all) {
        struct nbd_buf b = { 0 };
        nbd_buf_u32(&b, opt == NBD_OPT_SET_META_CONTEXT ? META_ID_ALLOC : 0);
        nbd_buf_mem(&b, NBD_META_BASE_ALLOCATION, strlen(NBD_META_BASE_ALLOCATION));
        r = b.oom ? -1 : opt_reply(c, opt, NBD_REP_META_CONTEXT, b.p, (uint32_t)b.len);
        nbd_buf_free(&b);
    }
    if (opt == NBD_OPT_SET_META_CONTEXT) {
        free(c->meta_export);
        c->meta_export = name;
        c->meta_alloc = sel;
        name = NULL;
    }
    free(name);
    if (r == 0)
        r = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
    return r;
}

/* Returns 0 with c->exp bound (transmission), or -1 to close. */
static int negotiate(struct conn *c)
{
    struct nbd_server *s = c->srv;
    c->st.rd_timeout_ms = s->cfg.handshake_timeout_ms > 0 ? s->cfg.handshake_timeout_ms : 30000;
    c->st.wr_timeout_ms = c->st.rd_timeout_ms;
    unsigned char hello[NBD_HELLO_LEN];
    nbd_enc_hello(hello, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    if (reply_send(c, hello, sizeof hello, NULL, 0) < 0)
        return -1;
    unsigned char cf[4];
    int r = net_read(&c->st, cf, 4);
    if (r != NET_OK) {
        if (r != NET_EOF)
            slog(s, NBD_LOG_INFO, "%s", vd_err_msg());
        return -1;
    }
    uint32_t cflags = nbd_get32(cf);
    if (cflags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        slog(s, NBD_LOG_WARN, "%s: unknown client flags 0x%x; closing", c->who, cflags);
        return -1;
    }
    c->fixed = (cflags & NBD_FLAG_C_FIXED_NEWSTYLE) != 0;
    c->no_zeroes = (cflags & NBD_FLAG_C_NO_ZEROES) != 0;
    for (int n = 0; n < MAX_OPTIONS; n++) {
        unsigned char oh[NBD_OPT_HDR_LEN];
        r = net_read(&c->st, oh, sizeof oh);
        if (r != NET_OK) {
            if (r != NET_EOF)
                slog(s, NBD_LOG_INFO, "%s", vd_err_msg());
            return -1;
        }
        uint32_t opt, len;
        if (nbd_dec_option(oh, &opt, &len) < 0) {
            slog(s, NBD_LOG_WARN, "%s: expected an option (IHAVEOPT), got 0x%016llx; closing",
                 c->who, (unsigned long long)nbd_get64(oh));
            return -1;
        }
        if (!c->fixed && opt != NBD_OPT_EXPORT_NAME) {
            slog(s, NBD_LOG_WARN, "%s: option %u from a client without fixed newstyle; "
                 "closing", c->who, opt);
            return -1;
        }
        if (len > NBD_MAX_OPTION_LEN) {
            if (opt == NBD_OPT_EXPORT_NAME || len > (1u << 20)) {
                slog(s, NBD_LOG_WARN, "%s: option %s with %u bytes of data; closing",
                     c->who, nbd_opt_name(opt), len);
                return -1;
            }
            if (net_skip(&c->st, len) != NET_OK)
                return -1;
            if (opt_error(c, opt, NBD_REP_ERR_TOO_BIG, "option data of %u bytes is too large",
                          len) < 0)
                return -1;
            continue;
        }
        unsigned char *data = malloc(len ? len : 1);
        if (!data || net_read(&c->st, data, len) != NET_OK) {
            slog(s, NBD_LOG_INFO, "%s: %s", c->who, data ? "truncated option" : "out of memory");
            free(data);
            return -1;
        }
        int ret = 0;   /* -1 close, 1 transmission */
        if (c->tls_mode == NET_TLS_REQUIRE && !c->tls_done &&
            opt != NBD_OPT_STARTTLS && opt != NBD_OPT_ABORT) {
            if (opt == NBD_OPT_EXPORT_NAME) {
                slog(s, NBD_LOG_INFO, "%s: EXPORT_NAME without TLS on a TLS-only server; "
                     "closing", c->who);
                ret = -1;
            } else {
                ret = opt_error(c, opt, NBD_REP_ERR_TLS_REQD, "this server requires TLS: "
                                "send STARTTLS first") < 0 ? -1 : 0;
            }
            free(data);
            if (ret < 0)
                return -1;
            continue;
        }
        switch (opt) {
        case NBD_OPT_EXPORT_NAME: {
            struct nbd_cur cur;
            nbd_cur_init(&cur, data, len);
            char *name = nbd_cur_str(&cur, len);
            uint32_t err = 0;
            char msg[512] = "";
            struct export *e = name ? open_export(c, name, &err, msg, sizeof msg) : NULL;
            if (!e) {
                slog(s, NBD_LOG_INFO, "%s: EXPORT_NAME refused: %s; closing", c->who,
                     name ? msg : "malformed name");
                ret = -1;
            } else {
                bind_export(c, e, name);
                unsigned char rep[10 + 124] = { 0 };
                nbd_put64(rep, e->disk->capacity);
                nbd_put16(rep + 8, c->tflags);
                ret = reply_send(c, rep, c->no_zeroes ? 10 : sizeof rep, NULL, 0) < 0 ? -1 : 1;
            }
            free(name);
            break;
        }
        case NBD_OPT_ABORT:
            opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
            slog(s, NBD_LOG_DEBUG, "%s: aborted negotiation", c->who);
            ret = -1;
            break;
        case NBD_OPT_LIST:
            if (len) {
                ret = opt_error(c, opt, NBD_REP_ERR_INVALID, "LIST takes no data");
            } else {
                struct list_ctx lc = { c, 0 };
                if (s->cfg.backend.list)
                    s->cfg.backend.list(s->cfg.backend.ctx, emit_export, &lc);
                ret = lc.failed ? -1 : opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
            }
            break;
        case NBD_OPT_STARTTLS:
            if (c->tls_mode == NET_TLS_OFF || !c->tls) {
                ret = opt_error(c, opt, NBD_REP_ERR_POLICY, "TLS is not enabled on this server");
            } else if (c->tls_done) {
                ret = opt_error(c, opt, NBD_REP_ERR_INVALID, "TLS is already active");
            } else if (len) {
                ret = opt_error(c, opt, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
            } else if (opt_reply(c, opt, NBD_REP_ACK, NULL, 0) < 0) {
                ret = -1;
            } else {
                char who[96] = "";
                vd_err_clear();
                if (net_tls_server_start(c->tls, &c->st, c->st.rd_timeout_ms, who,
                                         sizeof who) < 0) {
                    slog(s, NBD_LOG_WARN, "%s", vd_err_msg());
                    ret = -1;
                } else {
                    c->tls_done = 1;
                    /* Nothing negotiated in clear text carries over. */
                    c->structured = 0;
                    c->meta_alloc = 0;
                    slog(s, NBD_LOG_INFO, "%s: TLS established (%s)", c->who, who);
                    size_t wl = strlen(c->who);
                    snprintf(c->who + wl, sizeof c->who - wl, " (%s)", who);
                }
            }
            break;
        case NBD_OPT_INFO: case NBD_OPT_GO:
            ret = opt_info_go(c, opt, data, len);
            break;
        case NBD_OPT_STRUCTURED_REPLY:
            if (len) {
                ret = opt_error(c, opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
            } else {
                c->structured = 1;
                ret = opt_reply(c, opt, NBD_REP_ACK, NULL, 0);
            }
            break;
        case NBD_OPT_LIST_META_CONTEXT: case NBD_OPT_SET_META_CONTEXT:
            ret = opt_meta(c, opt, data, len);
            break;
        default:
            ret = opt_error(c, opt, NBD_REP_ERR_UNSUP, "option %u is not supported", opt);
            break;
        }
        free(data);
        if (ret < 0)
            return -1;
        if (ret == 1)
            return 0;
    }
    slog(s, NBD_LOG_WARN, "%s: more than %d options; closing", c->who, MAX_OPTIONS);
    return -1;
}

/* ---- connections ---------------------------------------------------------------- */

static void serve_conn(struct conn *c, int inline_mode)
{
    struct nbd_server *s = c->srv;
    if (negotiate(c) == 0) {
        slog(s, NBD_LOG_INFO, "%s: serving %s (%s, %llu bytes%s)", c->who, c->export_name,
             c->readonly ? "read-only" : "read-write",
             (unsigned long long)c->exp->disk->capacity,
             c->structured ? ", structured replies" : "");
        transmission(c, inline_mode);
    }
    /* The stop path shuts down sockets of listed connections: mark this
     * one gone before its descriptor can be reused. */
    pthread_mutex_lock(&s->lock);
    c->fd_gone = 1;
    pthread_mutex_unlock(&s->lock);
    net_close(&c->st);
    export_put(s, c->exp);
    c->exp = NULL;
    free(c->meta_export);
    free(c->export_name);
    struct job *j = c->qhead;
    while (j) {
        struct job *n = j->next;
        free(j->payload);
        free(j);
        j = n;
    }
    pthread_mutex_destroy(&c->qlock);
    pthread_cond_destroy(&c->qcond);
    pthread_cond_destroy(&c->space);
    pthread_mutex_destroy(&c->wlock);
}

static struct conn *conn_new(struct nbd_server *s, const struct net_stream *st)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    c->st = *st;
    snprintf(c->who, sizeof c->who, "%s", st->peer);
    pthread_mutex_lock(&s->lock);
    c->tls_mode = s->cfg.tls_mode;
    c->tls = s->cfg.tls;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_init(&c->qlock, NULL);
    pthread_cond_init(&c->qcond, NULL);
    pthread_cond_init(&c->space, NULL);
    pthread_mutex_init(&c->wlock, NULL);
    return c;
}

void nbd_server_serve_inline(struct nbd_server *s, struct net_stream *st)
{
    struct conn *c = conn_new(s, st);
    if (!c) {
        net_close(st);
        return;
    }
    serve_conn(c, 1);
    free(c);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct nbd_server *s = c->srv;
    serve_conn(c, 0);
    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    free(c);
    return NULL;
}

int nbd_server_new(const struct nbd_server_config *cfg, struct nbd_server **out)
{
    if (!cfg->backend.resolve || !cfg->backend.open)
        return vd_err_set(VD_E_INVAL, "the server needs a backend");
    if (cfg->tls_mode != NET_TLS_OFF && !cfg->tls)
        return vd_err_set(VD_E_INVAL, "TLS is enabled but no credentials were given");
    struct nbd_server *s = calloc(1, sizeof *s);
    if (!s)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    s->cfg = *cfg;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        int e = errno;
        free(s);
        return vd_err_errno(e, "pipe");
    }
    *out = s;
    return 0;
}

int nbd_server_add_listener(struct nbd_server *s, int fd)
{
    if (s->nlisten >= MAX_LISTENERS)
        return vd_err_set(VD_E_INVAL, "too many listening sockets");
    s->listen_fds[s->nlisten++] = fd;
    return 0;
}

void nbd_server_set_tls(struct nbd_server *s, enum net_tls_mode mode,
                        struct net_tls_server *tls)
{
    pthread_mutex_lock(&s->lock);
    s->cfg.tls_mode = tls ? mode : NET_TLS_OFF;
    s->cfg.tls = tls;
    pthread_mutex_unlock(&s->lock);
}

void nbd_server_stop(struct nbd_server *s)
{
    char b = 1;
    ssize_t n = write(s->stop_pipe[1], &b, 1);
    (void)n;
}

int nbd_server_connections(struct nbd_server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->nconns;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void accept_one(struct nbd_server *s, int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED)
            slog(s, NBD_LOG_WARN, "accept: %s", strerror(errno));
        if (errno == EMFILE || errno == ENFILE)
            usleep(100 * 1000);
        return;
    }
    net_socket_setup(fd);
    char peer[160];
    net_peer_name(fd, peer, sizeof peer);
    unsigned max = s->cfg.max_conns ? s->cfg.max_conns : 256;
    pthread_mutex_lock(&s->lock);
    int full = (unsigned)s->nconns >= max;
    pthread_mutex_unlock(&s->lock);
    if (full) {
        slog(s, NBD_LOG_WARN, "%s: refused: already %u connections", peer, max);
        close(fd);
        return;
    }
    struct net_stream st;
    net_stream_init(&st, fd, peer);
    struct conn *c = conn_new(s, &st);
    if (!c) {
        close(fd);
        return;
    }
    slog(s, NBD_LOG_DEBUG, "%s: connected", peer);
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    pthread_mutex_unlock(&s->lock);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    if (pthread_create(&th, &at, conn_main, c) != 0) {
        slog(s, NBD_LOG_ERR, "%s: cannot start a thread for the connection", peer);
        pthread_mutex_lock(&s->lock);
        if (c->prev)
            c->prev->next = c->next;
        else
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->nconns--;
        pthread_mutex_unlock(&s->lock);
        net_close(&c->st);
        pthread_mutex_destroy(&c->qlock);
        pthread_cond_destroy(&c->qcond);
        pthread_cond_destroy(&c->space);
        pthread_mutex_destroy(&c->wlock);
        free(c);
    }
    pthread_attr_destroy(&at);
}

int nbd_server_run(struct nbd_server *s)
{
    struct pollfd pf[MAX_LISTENERS + 1];
    for (;;) {
        int n = 0;
        pf[n++] = (struct pollfd){ .fd = s->stop_pipe[0], .events = POLLIN };
        for (int i = 0; i < s->nlisten; i++)
            pf[n++] = (struct pollfd){ .fd = s->listen_fds[i], .events = POLLIN };
        int r = poll(pf, (nfds_t)n, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            slog(s, NBD_LOG_ERR, "poll: %s", strerror(errno));
            break;
        }
        if (pf[0].revents)
            break;
        for (int i = 1; i < n; i++)
            if (pf[i].revents & POLLIN)
                accept_one(s, pf[i].fd);
    }
    /* Stop: no new connections, no new requests; in-flight requests finish
     * and are answered, then each connection closes its disk reference. */
    for (int i = 0; i < s->nlisten; i++)
        close(s->listen_fds[i]);
    s->nlisten = 0;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    int busy = s->nconns;
    for (struct conn *c = s->conns; c; c = c->next)
        if (!c->fd_gone && c->st.fd >= 0)
            shutdown(c->st.fd, SHUT_RD);
    pthread_mutex_unlock(&s->lock);
    if (busy)
        slog(s, NBD_LOG_INFO, "stopping: waiting for %d connection%s to finish", busy,
             busy == 1 ? "" : "s");
    pthread_mutex_lock(&s->lock);
    while (s->nconns > 0)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
    /* Every disk was closed (flushed) with its last connection. */
    return 0;
}

void nbd_server_free(struct nbd_server *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nlisten; i++)
        close(s->listen_fds[i]);
    while (s->exports) {
        struct export *e = s->exports;
        s->exports = e->next;
        e->disk->ops->close(e->disk);
        free(e->key);
        free(e->desc);
        free(e);
    }
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
