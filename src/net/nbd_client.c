/* nbd_client.c - NBD client: negotiation, pipelined requests, the reply
 * reader, timeouts. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "nbd_client.h"
#include "nbd_proto.h"
#include "net_io.h"
#include "net_pipe.h"
#include "net_tls.h"
#include "../util/err.h"

#define DEFAULT_MAX_REQUEST (2u << 20)
#define MAX_EXTENTS 65536u
#define ERRMSG 512

struct pend {
    struct net_pipe_req q;       /* first: the pipe's view */
    uint64_t cookie;
    uint16_t type, flags;
    uint64_t off;
    uint32_t len;
    void *buf;                   /* READ destination / WRITE source */
    uint64_t got;                /* READ bytes received */
    uint32_t err;                /* NBD error from the server */
    char msg[256];
    struct nbd_extent *ext;      /* BLOCK_STATUS result */
    size_t n_ext;
    int seen_status;
};

struct nbd_client {
    struct net_stream st;
    uint64_t size;
    uint16_t tflags;
    int structured, have_meta;
    uint32_t meta_id;
    uint32_t min_bs, max_bs;
    char *desc;
    char *name;
    uint32_t max_req;
    struct net_pipe pp;          /* requests in flight */
    pthread_mutex_t send_lock;
    uint64_t next_cookie;
    pthread_t reader;
    int reader_started;
};

/* ---- negotiation helpers ------------------------------------------------------ */

#define proto_err(s, ...) net_proto_err(s, "server", __VA_ARGS__)

static int io_fail(struct net_stream *s, int r, const char *when)
{
    if (r == NET_EOF)
        return vd_err_set(VD_E_NET_CONNECT, "server %s closed the connection %s", s->peer, when);
    /* vd_err already names the peer and the reason */
    char m[ERRMSG];
    snprintf(m, sizeof m, "%s", vd_err_msg());
    return vd_err_set(VD_E_NET_CONNECT, "%s (%s)", m, when);
}

static int send_option(struct net_stream *s, uint32_t opt, const void *data, uint32_t len)
{
    unsigned char h[NBD_OPT_HDR_LEN];
    nbd_enc_option(h, opt, len);
    int r = net_write2(s, h, sizeof h, data, len);
    return r == NET_OK ? 0 : io_fail(s, r, "while negotiating");
}

/* Read one option reply for opt; *data is malloc'd (NUL-terminated). */
static int read_reply(struct net_stream *s, uint32_t opt, uint32_t *type, unsigned char **data,
                      uint32_t *len)
{
    unsigned char h[NBD_REP_HDR_LEN];
    int r = net_read(s, h, sizeof h);
    if (r != NET_OK)
        return io_fail(s, r, "while negotiating");
    struct nbd_opt_reply rep;
    if (nbd_dec_opt_reply(h, &rep) < 0)
        return proto_err(s, "bad option reply magic");
    if (rep.opt != opt)
        return proto_err(s, "reply for option %u while waiting for %s", rep.opt,
                         nbd_opt_name(opt));
    if (rep.length > NBD_MAX_OPTION_LEN)
        return proto_err(s, "option reply of %u bytes", rep.length);
    unsigned char *d = malloc((size_t)rep.length + 1);
    if (!d)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    if ((r = net_read(s, d, rep.length)) != NET_OK) {
        free(d);
        return io_fail(s, r, "while negotiating");
    }
    d[rep.length] = '\0';
    *type = rep.type;
    *data = d;
    *len = rep.length;
    return 0;
}

/* Error text from an error reply's payload. */
static const char *reply_text(const unsigned char *d, uint32_t len)
{
    return len && !memchr(d, 0, len) ? (const char *)d : "no message";
}

static int refused(struct net_stream *s, uint32_t opt, uint32_t type, const unsigned char *d,
                   uint32_t len, const char *export_name)
{
    const char *m = reply_text(d, len);
    switch (type) {
    case NBD_REP_ERR_TLS_REQD:
        return vd_err_set(VD_E_NET_CONNECT, "server %s requires TLS (use transport mode "
                          "\"nbdssl\"): %s", s->peer, m);
    case NBD_REP_ERR_UNKNOWN:
        return vd_err_set(VD_E_NOTFOUND, "server %s has no export \"%s\": %s", s->peer,
                          export_name ? export_name : "", m);
    case NBD_REP_ERR_POLICY:
        return vd_err_set(VD_E_ACCESS, "server %s refused %s%s%s: %s", s->peer,
                          export_name ? "export \"" : nbd_opt_name(opt),
                          export_name ? export_name : "", export_name ? "\"" : "", m);
    case NBD_REP_ERR_SHUTDOWN:
        return vd_err_set(VD_E_NET_LOST, "server %s is shutting down: %s", s->peer, m);
    default:
        return vd_err_set(VD_E_NET_CONNECT, "server %s refused option %s (%s): %s", s->peer,
                          nbd_opt_name(opt), nbd_rep_name(type), m);
    }
}

/* The first part of every connection: hello, flags, optional TLS.
 * *fixed: the server speaks fixed newstyle.  *no_tls: TLS was wanted but
 * the server does not offer it. */
static int greet(const struct nbd_remote *r, struct net_stream *s, int *fixed, int *no_zeroes,
                 int *no_tls)
{
    unsigned char hello[NBD_HELLO_LEN];
    int rr = net_read(s, hello, sizeof hello);
    if (rr != NET_OK)
        return io_fail(s, rr, "before the NBD greeting");
    if (nbd_get64(hello) != NBD_MAGIC)
        return vd_err_set(VD_E_NET_CONNECT, "server %s is not an NBD server (no NBDMAGIC)",
                          s->peer);
    if (nbd_get64(hello + 8) == NBD_OLDSTYLE_MAGIC)
        return vd_err_set(VD_E_NET_CONNECT, "server %s speaks the oldstyle NBD handshake, "
                          "which is not supported", s->peer);
    if (nbd_get64(hello + 8) != NBD_OPT_MAGIC)
        return proto_err(s, "bad newstyle magic");
    uint16_t hf = nbd_get16(hello + 16);
    *fixed = (hf & NBD_FLAG_FIXED_NEWSTYLE) != 0;
    *no_zeroes = (hf & NBD_FLAG_NO_ZEROES) != 0;
    unsigned char cf[4];
    nbd_put32(cf, (*fixed ? NBD_FLAG_C_FIXED_NEWSTYLE : 0) |
                  (*no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
    if ((rr = net_write(s, cf, 4)) != NET_OK)
        return io_fail(s, rr, "while negotiating");
    if (!r->tls)
        return 0;
    if (!*fixed) {
        *no_tls = 1;
        return vd_err_set(VD_E_NET_CONNECT, "server %s does not offer TLS (no fixed newstyle "
                          "negotiation)", s->peer);
    }
    int rc = send_option(s, NBD_OPT_STARTTLS, NULL, 0);
    uint32_t type, len;
    unsigned char *d = NULL;
    if (rc == 0)
        rc = read_reply(s, NBD_OPT_STARTTLS, &type, &d, &len);
    if (rc < 0)
        return rc;
    if (type != NBD_REP_ACK) {
        if (type == NBD_REP_ERR_UNSUP || type == NBD_REP_ERR_POLICY)
            *no_tls = 1;
        rc = vd_err_set(VD_E_NET_CONNECT, "server %s does not offer TLS (STARTTLS: %s: %s)",
                        s->peer, nbd_rep_name(type), reply_text(d, len));
        free(d);
        return rc;
    }
    free(d);
    struct net_tls_client tc = {
        .hostname = r->host,
        .thumbprint = r->thumbprint,
        .ca_file = r->ca_file,
        .psk_identity = r->psk_identity,
        .psk_key = r->psk_key,
        .verify_chain = r->verify_chain,
    };
    return net_tls_client_start(&tc, s, r->connect_timeout_ms > 0 ? r->connect_timeout_ms
                                                                   : 30000);
}

static int dial(const struct nbd_remote *r, struct net_stream *s)
{
    char peer[160];
    int fd = net_dial(r->host, r->port ? r->port : NBD_DEFAULT_PORT, r->unix_path,
                      r->connect_timeout_ms > 0 ? r->connect_timeout_ms : 30000, peer,
                      sizeof peer);
    if (fd < 0)
        return -VD_E_NET_CONNECT;
    net_stream_init(s, fd, peer);
    s->rd_timeout_ms = r->read_timeout_ms > 0 ? r->read_timeout_ms : 60000;
    s->wr_timeout_ms = r->write_timeout_ms > 0 ? r->write_timeout_ms : 60000;
    return 0;
}

int nbd_client_probe(const struct nbd_remote *r, int *no_tls)
{
    struct net_stream s;
    *no_tls = 0;
    vd_err_clear();
    int rc = dial(r, &s);
    if (rc < 0)
        return rc;
    int fixed, nz;
    rc = greet(r, &s, &fixed, &nz, no_tls);
    if (rc == 0 && fixed) {
        /* A harmless option shows whether the server talks to us in this
         * mode (a TLS-only server answers TLS_REQD). */
        uint32_t type, len;
        unsigned char *d = NULL;
        rc = send_option(&s, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
        if (rc == 0)
            rc = read_reply(&s, NBD_OPT_STRUCTURED_REPLY, &type, &d, &len);
        if (rc == 0 && type == NBD_REP_ERR_TLS_REQD)
            rc = refused(&s, NBD_OPT_STRUCTURED_REPLY, type, d, len, NULL);
        free(d);
        if (rc == 0 && send_option(&s, NBD_OPT_ABORT, NULL, 0) == 0) {
            s.rd_timeout_ms = 1000;     /* the ACK is a courtesy */
            if (read_reply(&s, NBD_OPT_ABORT, &type, &d, &len) == 0)
                free(d);
            vd_err_clear();
        }
    }
    net_close(&s);
    return rc;
}

/* SET_META_CONTEXT for base:allocation. */
static int select_meta(struct nbd_client *c, const char *name)
{
    struct nbd_buf b = { 0 };
    size_t nl = strlen(name), ql = strlen(NBD_META_BASE_ALLOCATION);
    nbd_buf_u32(&b, (uint32_t)nl);
    nbd_buf_mem(&b, name, nl);
    nbd_buf_u32(&b, 1);
    nbd_buf_u32(&b, (uint32_t)ql);
    nbd_buf_mem(&b, NBD_META_BASE_ALLOCATION, ql);
    if (b.oom) {
        nbd_buf_free(&b);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    int rc = send_option(&c->st, NBD_OPT_SET_META_CONTEXT, b.p, (uint32_t)b.len);
    nbd_buf_free(&b);
    for (int n = 0; rc == 0; n++) {
        uint32_t type, len;
        unsigned char *d = NULL;
        if ((rc = read_reply(&c->st, NBD_OPT_SET_META_CONTEXT, &type, &d, &len)) < 0)
            break;
        if (type == NBD_REP_ACK) {
            free(d);
            break;
        }
        if (type == NBD_REP_META_CONTEXT) {
            if (len < 4) {
                free(d);
                rc = proto_err(&c->st, "short META_CONTEXT reply");
                break;
            }
            if (len - 4 == ql && memcmp(d + 4, NBD_META_BASE_ALLOCATION, ql) == 0) {
                c->meta_id = nbd_get32(d);
                c->have_meta = 1;
            }
        } else if (type == NBD_REP_ERR_UNKNOWN || type == NBD_REP_ERR_POLICY ||
                   type == NBD_REP_ERR_TLS_REQD) {
            rc = refused(&c->st, NBD_OPT_SET_META_CONTEXT, type, d, len, name);
        } else if (type & NBD_REP_FLAG_ERROR) {
            c->have_meta = 0;     /* no block status; not fatal */
            free(d);
            break;
        } else if (n > 1000) {
            rc = proto_err(&c->st, "endless META_CONTEXT replies");
        }
        free(d);
    }
    return rc;
}

/* GO; *unsupported when the server does not know it. */
static int go(struct nbd_client *c, const char *name, int *unsupported)
{
    struct nbd_buf b = { 0 };
    size_t nl = strlen(name);
    nbd_buf_u32(&b, (uint32_t)nl);
    nbd_buf_mem(&b, name, nl);
    nbd_buf_u16(&b, 2);
    nbd_buf_u16(&b, NBD_INFO_BLOCK_SIZE);
    nbd_buf_u16(&b, NBD_INFO_DESCRIPTION);
    if (b.oom) {
        nbd_buf_free(&b);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    int rc = send_option(&c->st, NBD_OPT_GO, b.p, (uint32_t)b.len);
    nbd_buf_free(&b);
    int have_export = 0;
    for (int n = 0; rc == 0; n++) {
        uint32_t type, len;
        unsigned char *d = NULL;
        if ((rc = read_reply(&c->st, NBD_OPT_GO, &type, &d, &len)) < 0)
            break;
        if (type == NBD_REP_ACK) {
            free(d);
            if (!have_export)
                rc = proto_err(&c->st, "GO acknowledged without export information");
            break;
        }
        if (type == NBD_REP_INFO) {
            struct nbd_cur cur;
            nbd_cur_init(&cur, d, len);
            uint16_t it = nbd_cur_u16(&cur);
            if (it == NBD_INFO_EXPORT) {
                c->size = nbd_cur_u64(&cur);
                c->tflags = nbd_cur_u16(&cur);
                have_export = !cur.bad;
                if (cur.bad)
                    rc = proto_err(&c->st, "short INFO_EXPORT");
            } else if (it == NBD_INFO_BLOCK_SIZE) {
                uint32_t mn = nbd_cur_u32(&cur);
                nbd_cur_u32(&cur);
                uint32_t mx = nbd_cur_u32(&cur);
                if (cur.bad || mn == 0 || mn > (64u << 10) || (mn & (mn - 1)) || mx < mn)
                    rc = proto_err(&c->st, "bad INFO_BLOCK_SIZE");
                c->min_bs = mn;
                c->max_bs = mx;
            } else if (it == NBD_INFO_DESCRIPTION && len > 2 && !c->desc) {
                c->desc = strndup((const char *)d + 2, len - 2);
            }
        } else if (type == NBD_REP_ERR_UNSUP) {
            *unsupported = 1;
        } else if (type & NBD_REP_FLAG_ERROR) {
            rc = refused(&c->st, NBD_OPT_GO, type, d, len, name);
        } else if (n > 1000) {
            rc = proto_err(&c->st, "endless GO replies");
        }
        free(d);
        if (*unsupported)
            break;
    }
    return rc;
}

static int export_name(struct nbd_client *c, const char *name, int no_zeroes)
{
    int rc = send_option(&c->st, NBD_OPT_EXPORT_NAME, name, (uint32_t)strlen(name));
    if (rc < 0)
        return rc;
    unsigned char rep[10 + 124];
    int r = net_read(&c->st, rep, no_zeroes ? 10 : sizeof rep);
    if (r == NET_EOF)
        return vd_err_set(VD_E_NOTFOUND, "server %s closed the connection: no export \"%s\"",
                          c->st.peer, name);
    if (r != NET_OK)
        return io_fail(&c->st, r, "after EXPORT_NAME");
    c->size = nbd_get64(rep);
    c->tflags = nbd_get16(rep + 8);
    return 0;
}

static void *reader_main(void *arg);

int nbd_client_open(const struct nbd_remote *r, const char *name, struct nbd_client **out)
{
    if (strlen(name) > NBD_MAX_STRING)
        return vd_err_set(VD_E_INVAL, "export name is longer than %d bytes", NBD_MAX_STRING);
    struct nbd_client *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    vd_err_clear();
    int rc = dial(r, &c->st);
    if (rc < 0) {
        free(c->name);
        free(c);
        return rc;
    }
    int fixed = 0, nz = 0, no_tls = 0;
    rc = greet(r, &c->st, &fixed, &nz, &no_tls);
    int unsupported = !fixed;
    if (rc == 0 && fixed) {
        uint32_t type, len;
        unsigned char *d = NULL;
        rc = send_option(&c->st, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
        if (rc == 0)
            rc = read_reply(&c->st, NBD_OPT_STRUCTURED_REPLY, &type, &d, &len);
        if (rc == 0) {
            if (type == NBD_REP_ACK)
                c->structured = 1;
            else if (type == NBD_REP_ERR_TLS_REQD)
                rc = refused(&c->st, NBD_OPT_STRUCTURED_REPLY, type, d, len, NULL);
        }
        free(d);
        if (rc == 0 && c->structured)
            rc = select_meta(c, name);
        if (rc == 0)
            rc = go(c, name, &unsupported);
    }
    if (rc == 0 && unsupported)
        rc = export_name(c, name, nz);
    if (rc == 0 && c->size > INT64_MAX)
        rc = proto_err(&c->st, "export size %llu", (unsigned long long)c->size);
    if (rc < 0) {
        net_close(&c->st);
        free(c->desc);
        free(c->name);
        free(c);
        return rc;
    }
    if (!c->structured)
        c->have_meta = 0;
    if (!c->min_bs)
        c->min_bs = 1;
    uint32_t mr = r->max_request ? r->max_request : DEFAULT_MAX_REQUEST;
    if (c->max_bs && c->max_bs < mr)
        mr = c->max_bs;
    if (mr > NBD_MAX_PAYLOAD)
        mr = NBD_MAX_PAYLOAD;
    mr &= ~(c->min_bs - 1);
    c->max_req = mr ? mr : c->min_bs;
    c->st.rd_timeout_ms = -1;          /* the waiters enforce timeouts */
    c->next_cookie = 1;
    net_pipe_init(&c->pp, &c->st, "server", r->read_timeout_ms, r->max_inflight);
    pthread_mutex_init(&c->send_lock, NULL);
    if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
        net_close(&c->st);
        net_pipe_destroy(&c->pp);
        pthread_mutex_destroy(&c->send_lock);
        free(c->desc);
        free(c->name);
        free(c);
        return vd_err_set(VD_E_NOMEM, "cannot start the reply reader thread");
    }
    c->reader_started = 1;
    *out = c;
    return 0;
}

/* ---- transmission --------------------------------------------------------------- */

static struct pend *lookup_locked(struct nbd_client *c, uint64_t cookie)
{
    for (struct net_pipe_req *q = c->pp.inflight; q; q = q->next)
        if (((struct pend *)q)->cookie == cookie)
            return (struct pend *)q;
    return NULL;
}

static int nbd_to_vd(uint32_t err)
{
    switch (err) {
    case NBD_EPERM: return VD_E_READONLY;
    case NBD_ENOSPC: return VD_E_NOSPACE;
    case NBD_ENOMEM: return VD_E_NOMEM;
    case NBD_EINVAL: case NBD_EOVERFLOW: return VD_E_INVAL;
    case NBD_ENOTSUP: return VD_E_UNSUPPORTED;
    case NBD_ESHUTDOWN: return VD_E_NET_LOST;
    default: return VD_E_IO;
    }
}

/* The result of a request whose last reply arrived. */
static void finish_pend(struct nbd_client *c, struct pend *p)
{
    char m[ERRMSG];
    int rc = 0;
    if (p->err) {
        snprintf(m, sizeof m, "server %s: %s of %u bytes at offset %llu failed: %s%s%s",
                 c->st.peer, nbd_cmd_name(p->type), p->len, (unsigned long long)p->off,
                 nbd_err_name(p->err), p->msg[0] ? ": " : "", p->msg);
        rc = -nbd_to_vd(p->err);
    } else if (p->type == NBD_CMD_READ && p->got != p->len) {
        snprintf(m, sizeof m, "server %s: READ of %u bytes at offset %llu returned %llu bytes",
                 c->st.peer, p->len, (unsigned long long)p->off, (unsigned long long)p->got);
        rc = -VD_E_IO;
    } else if (p->type == NBD_CMD_BLOCK_STATUS && !p->seen_status) {
        snprintf(m, sizeof m, "server %s: BLOCK_STATUS reply without extents", c->st.peer);
        rc = -VD_E_IO;
    }
    net_pipe_finish(&c->pp, &p->q, rc, m);
}

/* Receive one chunk payload for p (already claimed). 0, or -1 (the
 * connection is dead; p failed). */
static int chunk(struct nbd_client *c, struct pend *p, const struct nbd_chunk *ch)
{
    struct net_stream *s = &c->st;
    unsigned char hdr[16];
    const char *bad = NULL;
    int r = NET_OK;
    switch (ch->type) {
    case NBD_REPLY_TYPE_NONE:
        if (ch->length != 0 || !(ch->flags & NBD_REPLY_FLAG_DONE))
            bad = "NONE chunk with data or without DONE";
        break;
    case NBD_REPLY_TYPE_OFFSET_DATA: {
        if (p->type != NBD_CMD_READ || ch->length < 9 || ch->length - 8 > p->len) {
            bad = "unexpected OFFSET_DATA chunk";
            break;
        }
        if ((r = net_read(s, hdr, 8)) != NET_OK)
            break;
        uint64_t off = nbd_get64(hdr);
        uint32_t n = ch->length - 8;
        if (off < p->off || off - p->off > p->len - n) {
            bad = "OFFSET_DATA outside the request";
            break;
        }
        r = net_read(s, (char *)p->buf + (off - p->off), n);
        p->got += n;
        break;
    }
    case NBD_REPLY_TYPE_OFFSET_HOLE: {
        if (p->type != NBD_CMD_READ || ch->length != 12) {
            bad = "unexpected OFFSET_HOLE chunk";
            break;
        }
        if ((r = net_read(s, hdr, 12)) != NET_OK)
            break;
        uint64_t off = nbd_get64(hdr);
        uint32_t n = nbd_get32(hdr + 8);
        if (n == 0 || off < p->off || n > p->len || off - p->off > p->len - n) {
            bad = "OFFSET_HOLE outside the request";
            break;
        }
        memset((char *)p->buf + (off - p->off), 0, n);
        p->got += n;
        break;
    }
    case NBD_REPLY_TYPE_BLOCK_STATUS: {
        if (p->type != NBD_CMD_BLOCK_STATUS || ch->length < 12 || (ch->length - 4) % 8 ||
            (ch->length - 4) / 8 > MAX_EXTENTS) {
            bad = "unexpected BLOCK_STATUS chunk";
            break;
        }
        unsigned char *d = malloc(ch->length);
        if (!d) {
            bad = "out of memory";
            break;
        }
        if ((r = net_read(s, d, ch->length)) != NET_OK) {
            free(d);
            break;
        }
        if (nbd_get32(d) == c->meta_id && !p->seen_status) {
            size_t n = (ch->length - 4) / 8;
            p->ext = malloc(n * sizeof *p->ext);
            if (p->ext) {
                uint64_t sum = 0;
                for (size_t i = 0; i < n; i++) {
                    uint32_t l = nbd_get32(d + 4 + 8 * i);
                    if (l == 0 || sum >= p->len)
                        break;           /* tolerate; never trust beyond the request */
                    if (l > p->len - sum)
                        l = (uint32_t)(p->len - sum);
                    p->ext[p->n_ext++] = (struct nbd_extent){ l, nbd_get32(d + 8 + 8 * i) };
                    sum += l;
                }
                p->seen_status = p->n_ext > 0;
            }
        }
        free(d);
        break;
    }
    default:
        if (NBD_REPLY_TYPE_IS_ERR(ch->type)) {
            if (ch->length < 6 || ch->length > 6 + NBD_MAX_STRING + 8) {
                bad = "malformed error chunk";
                break;
            }
            unsigned char *d = malloc(ch->length + 1);
            if (!d) {
                bad = "out of memory";
                break;
            }
            if ((r = net_read(s, d, ch->length)) != NET_OK) {
                free(d);
                break;
            }
            uint32_t err = nbd_get32(d);
            uint16_t ml = nbd_get16(d + 4);
            if (ml > ch->length - 6) {
                free(d);
                bad = "error message longer than its chunk";
                break;
            }
            if (!p->err) {
                p->err = err ? err : NBD_EIO;
                snprintf(p->msg, sizeof p->msg, "%.*s", (int)ml, (const char *)d + 6);
            }
            free(d);
        } else {
            bad = "unknown chunk type";
        }
    }
    if (bad || r != NET_OK) {
        if (bad)
            net_pipe_kill(&c->pp, VD_E_NET_LOST, "server %s: protocol error: %s (chunk type %u, %u bytes)",
                      s->peer, bad, ch->type, ch->length);
        else
            net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", r == NET_EOF ? "server closed the connection"
                                                          : vd_err_msg());
        net_pipe_fail_claimed(&c->pp, &p->q);
        return -1;
    }
    return 0;
}

static void *reader_main(void *arg)
{
    struct nbd_client *c = arg;
    struct net_stream *s = &c->st;
    for (;;) {
        unsigned char m[4];
        int r = net_read(s, m, 4);
        if (r != NET_OK) {
            char msg[ERRMSG];
            if (r == NET_EOF)
                snprintf(msg, sizeof msg, "server %s closed the connection", s->peer);
            else
                snprintf(msg, sizeof msg, "%s", vd_err_msg());
            pthread_mutex_lock(&c->pp.lock);
            if (c->pp.closing && !c->pp.dead)
                snprintf(msg, sizeof msg, "connection to %s closed", s->peer);
            net_pipe_kill_locked(&c->pp, VD_E_NET_LOST, msg);
            pthread_mutex_unlock(&c->pp.lock);
            break;
        }
        uint32_t magic = nbd_get32(m);
        if (magic == NBD_SIMPLE_REPLY_MAGIC) {
            unsigned char rest[12];
            if ((r = net_read(s, rest, 12)) != NET_OK) {
                net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", r == NET_EOF ? "server closed the connection"
                                                              : vd_err_msg());
                break;
            }
            uint32_t err;
            uint64_t cookie;
            nbd_dec_simple_rest(rest, &err, &cookie);
            pthread_mutex_lock(&c->pp.lock);
            c->pp.last_rx = net_now_ms();
            struct pend *p = lookup_locked(c, cookie);
            if (p)
                p->q.claimed = 1;
            pthread_mutex_unlock(&c->pp.lock);
            if (!p) {
                net_pipe_kill(&c->pp, VD_E_NET_LOST, "server %s: protocol error: reply for unknown "
                          "request %llu", s->peer, (unsigned long long)cookie);
                break;
            }
            p->err = err;
            if (!err && p->type == NBD_CMD_READ) {
                if ((r = net_read(s, p->buf, p->len)) != NET_OK) {
                    net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", r == NET_EOF ? "server closed the "
                              "connection in a READ reply" : vd_err_msg());
                    net_pipe_fail_claimed(&c->pp, &p->q);
                    break;
                }
                p->got = p->len;
            }
            if (!err && p->type == NBD_CMD_BLOCK_STATUS) {
                net_pipe_kill(&c->pp, VD_E_NET_LOST, "server %s: protocol error: simple reply to "
                          "BLOCK_STATUS", s->peer);
                net_pipe_fail_claimed(&c->pp, &p->q);
                break;
            }
            finish_pend(c, p);
        } else if (magic == NBD_STRUCT_REPLY_MAGIC && c->structured) {
            unsigned char rest[16];
            if ((r = net_read(s, rest, 16)) != NET_OK) {
                net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", r == NET_EOF ? "server closed the connection"
                                                              : vd_err_msg());
                break;
            }
            struct nbd_chunk ch;
            nbd_dec_chunk_rest(rest, &ch);
            pthread_mutex_lock(&c->pp.lock);
            c->pp.last_rx = net_now_ms();
            struct pend *p = lookup_locked(c, ch.cookie);
            if (p)
                p->q.claimed = 1;
            pthread_mutex_unlock(&c->pp.lock);
            if (!p) {
                net_pipe_kill(&c->pp, VD_E_NET_LOST, "server %s: protocol error: reply for unknown "
                          "request %llu", s->peer, (unsigned long long)ch.cookie);
                break;
            }
            if (chunk(c, p, &ch) < 0)
                break;
            if (ch.flags & NBD_REPLY_FLAG_DONE) {
                finish_pend(c, p);
            } else {
                net_pipe_release(&c->pp, &p->q);
            }
        } else {
            net_pipe_kill(&c->pp, VD_E_NET_LOST, "server %s: protocol error: bad reply magic 0x%08x",
                      s->peer, magic);
            break;
        }
    }
    return NULL;
}

/* Queue p (its batch set) and send its request. */
static void submit(struct nbd_client *c, struct pend *p)
{
    pthread_mutex_lock(&c->pp.lock);
    if (net_pipe_add_locked(&c->pp, &p->q) < 0) {
        pthread_mutex_unlock(&c->pp.lock);
        return;
    }
    p->cookie = c->next_cookie++;
    pthread_mutex_unlock(&c->pp.lock);

    unsigned char h[NBD_REQ_LEN];
    struct nbd_request rq = { p->flags, p->type, p->cookie, p->off, p->len };
    nbd_enc_request(h, &rq);
    pthread_mutex_lock(&c->send_lock);
    int r = net_write2(&c->st, h, sizeof h, p->type == NBD_CMD_WRITE ? p->buf : NULL,
                       p->type == NBD_CMD_WRITE ? p->len : 0);
    pthread_mutex_unlock(&c->send_lock);
    if (r != NET_OK)
        net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", vd_err_msg());
}

/* One command over [off, off+len) split into requests of at most max_req. */
static int transfer(struct nbd_client *c, uint16_t type, uint16_t flags, void *buf,
                    uint64_t len, uint64_t off)
{
    if (len == 0)
        return 0;
    if (off > c->size || len > c->size - off)
        return vd_err_set(VD_E_RANGE, "server %s: %llu bytes at offset %llu are past the end "
                          "of the export (%llu bytes)", c->st.peer, (unsigned long long)len,
                          (unsigned long long)off, (unsigned long long)c->size);
    uint64_t step = type == NBD_CMD_WRITE_ZEROES ? 0x40000000u : c->max_req;
    size_t n = (size_t)((len + step - 1) / step);
    struct pend *ps = calloc(n, sizeof *ps);
    if (!ps)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        uint64_t o = (uint64_t)i * step;
        ps[i] = (struct pend){ .type = type, .flags = flags, .off = off + o,
                               .len = (uint32_t)(len - o < step ? len - o : step),
                               .buf = buf ? (char *)buf + o : NULL, .q.b = &b };
        submit(c, &ps[i]);
        if (net_pipe_is_dead(&c->pp))
            break;
    }
    int rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    free(ps);
    return rc;
}

int nbd_client_pread(struct nbd_client *c, void *buf, size_t len, uint64_t off)
{
    return transfer(c, NBD_CMD_READ, 0, buf, len, off);
}

int nbd_client_pwrite(struct nbd_client *c, const void *buf, size_t len, uint64_t off)
{
    if (c->tflags & NBD_FLAG_READ_ONLY)
        return vd_err_set(VD_E_READONLY, "server %s: export \"%s\" is read-only", c->st.peer,
                          c->name);
    return transfer(c, NBD_CMD_WRITE, 0, (void *)buf, len, off);
}

int nbd_client_zero(struct nbd_client *c, uint64_t off, uint64_t len)
{
    if (c->tflags & NBD_FLAG_READ_ONLY)
        return vd_err_set(VD_E_READONLY, "server %s: export \"%s\" is read-only", c->st.peer,
                          c->name);
    if (c->tflags & NBD_FLAG_SEND_WRITE_ZEROES)
        return transfer(c, NBD_CMD_WRITE_ZEROES, 0, NULL, len, off);
    static const unsigned char z[1u << 20];
    for (uint64_t o = 0; o < len;) {
        size_t k = len - o < sizeof z ? (size_t)(len - o) : sizeof z;
        int rc = transfer(c, NBD_CMD_WRITE, 0, (void *)z, k, off + o);
        if (rc < 0)
            return rc;
        o += k;
    }
    return 0;
}

int nbd_client_flush(struct nbd_client *c)
{
    if (!(c->tflags & NBD_FLAG_SEND_FLUSH))
        return 0;       /* the server has no write cache to flush */
    struct pend p = { .type = NBD_CMD_FLUSH };
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    p.q.b = &b;
    submit(c, &p);
    int rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    return rc;
}

int nbd_client_block_status(struct nbd_client *c, uint64_t off, uint64_t len,
                            struct nbd_extent **ext, size_t *n)
{
    *ext = NULL;
    *n = 0;
    if (off >= c->size || len == 0)
        return vd_err_set(VD_E_RANGE, "block status at %llu is past the end of the export",
                          (unsigned long long)off);
    if (len > c->size - off)
        len = c->size - off;
    if (!c->have_meta) {
        *ext = malloc(sizeof **ext);
        if (!*ext)
            return vd_err_set(VD_E_NOMEM, "out of memory");
        (*ext)[0] = (struct nbd_extent){ len, 0 };
        *n = 1;
        return 0;
    }
    /* At most 2 GiB per query, aligned to the server's block size unless
     * it reaches the end of the export. */
    uint64_t q = len < 0x80000000u ? len : 0x80000000u;
    uint64_t align = c->min_bs > 512 ? c->min_bs : 512;
    if (off + q < c->size && q > align)
        q -= (off + q) % align;
    struct pend p = { .type = NBD_CMD_BLOCK_STATUS, .off = off, .len = (uint32_t)q };
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    p.q.b = &b;
    submit(c, &p);
    int rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    if (rc < 0) {
        free(p.ext);
        return rc;
    }
    *ext = p.ext;
    *n = p.n_ext;
    return 0;
}

uint64_t nbd_client_size(const struct nbd_client *c) { return c->size; }
uint16_t nbd_client_tflags(const struct nbd_client *c) { return c->tflags; }
int nbd_client_has_meta(const struct nbd_client *c) { return c->have_meta; }
const char *nbd_client_description(const struct nbd_client *c) { return c->desc; }
const char *nbd_client_peer(const struct nbd_client *c) { return c->st.peer; }
int nbd_client_is_tls(const struct nbd_client *c) { return c->st.tls != NULL; }

int nbd_client_close(struct nbd_client *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->pp.lock);
    int was_dead = c->pp.dead;
    int rc = c->pp.dead_rc;
    char msg[ERRMSG];
    snprintf(msg, sizeof msg, "%s", c->pp.dead_msg);
    c->pp.closing = 1;
    pthread_mutex_unlock(&c->pp.lock);
    if (!was_dead) {
        unsigned char h[NBD_REQ_LEN];
        struct nbd_request rq = { 0, NBD_CMD_DISC, 0, 0, 0 };
        nbd_enc_request(h, &rq);
        pthread_mutex_lock(&c->send_lock);
        c->st.wr_timeout_ms = 1000;
        net_write(&c->st, h, sizeof h);
        pthread_mutex_unlock(&c->send_lock);
        vd_err_clear();
    }
    if (c->st.fd >= 0)
        shutdown(c->st.fd, SHUT_RD);       /* wakes the reader */
    if (c->reader_started)
        pthread_join(c->reader, NULL);
    net_close(&c->st);
    if (c->reader_started)
        net_pipe_destroy(&c->pp);
    pthread_mutex_destroy(&c->send_lock);
    free(c->desc);
    free(c->name);
    free(c);
    if (was_dead && rc < 0)
        return vd_err_set(-rc, "%s", msg);
    return 0;
}
