/* nfc_client.c - NFC client: authd, the classic handshake, the AIO
 * session, pipelined requests and the reply reader (see nfc_client.h). */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "nfc_client.h"
#include "nfc_codec.h"
#include "nfc_proto.h"
#include "../net/net_io.h"
#include "../net/net_pipe.h"
#include "../net/net_tls.h"
#include "../util/err.h"

#define ERRMSG 512
#define MAX_LINE 1024
#define MAX_ERROR_PAYLOAD 4096
#define MAX_DDB_VALUE 65536u
#define NFC_READAHEAD 256        /* > header + the largest fixed payload */

struct pend {
    struct net_pipe_req q;       /* first: the pipe's view */
    uint32_t op, type;
    uint64_t off;
    uint32_t len;
    unsigned char *dst;          /* read destination */
    uint32_t got;                /* read bytes placed */
    unsigned char *seen;         /* read fragments placed (bitmap) */
    uint64_t count;              /* QAB chunk count */
    unsigned char *result;       /* DDB value / QAB bitmap (malloc'd) */
    size_t result_len;
};

struct nfc_client {
    struct net_stream st;
    char *host;
    unsigned port;
    int ssl;
    uint32_t buf_size, buf_count, max_req;
    unsigned max_inflight;
    int timeout_ms;
    struct nfc_file_info info;
    uint64_t handle;
    int file_open;

    struct net_pipe pp;          /* requests in flight */
    pthread_mutex_t send_lock;   /* frames of one request stay together, opIds in order */
    uint32_t next_op;
    pthread_t reader;
    int reader_started;
    unsigned char *scratch;      /* reader: one encoded fragment */
    size_t scratch_len;
    _Atomic uint64_t sent, received;
};

/* ---- I/O with accounting -------------------------------------------------------- */

static int c_read(struct nfc_client *c, void *buf, size_t len)
{
    int r = net_read(&c->st, buf, len);
    if (r == NET_OK)
        atomic_fetch_add(&c->received, len);
    return r;
}

static int c_write2(struct nfc_client *c, const void *a, size_t alen, const void *b, size_t blen)
{
    int r = net_write2(&c->st, a, alen, b, blen);
    if (r == NET_OK)
        atomic_fetch_add(&c->sent, alen + blen);
    return r;
}

#define proto_err(s, ...) net_proto_err(s, "NFC server", __VA_ARGS__)

/* A failed read during the handshake: EOF is the server hanging up. */
static int hs_io_fail(struct net_stream *s, int r, const char *when)
{
    if (r == NET_EOF)
        return vd_err_set(VD_E_NET_CONNECT, "NFC server %s closed the connection %s", s->peer,
                          when);
    /* The connection never became usable: a connect failure, not a lost
     * connection. */
    char m[400];
    snprintf(m, sizeof m, "%s", vd_err_msg());
    return vd_err_set(VD_E_NET_CONNECT, "NFC server %s: connection failed %s: %s", s->peer,
                      when, m);
}

/* ---- authd ------------------------------------------------------------------------ */

/* One CRLF-terminated line (CR and LF removed). */
static int read_line(struct net_stream *s, char *line, size_t cap, const char *when)
{
    size_t n = 0;
    for (;;) {
        char ch;
        int r = net_read(s, &ch, 1);
        if (r != NET_OK)
            return hs_io_fail(s, r, when);
        if (ch == '\n')
            break;
        if (n + 1 >= cap)
            return proto_err(s, "authd line longer than %zu bytes %s", cap, when);
        line[n++] = ch;
    }
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return 0;
}

static int send_line(struct net_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int send_line(struct net_stream *s, const char *fmt, ...)
{
    char line[MAX_LINE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        return vd_err_set(VD_E_INVAL, "authd command too long");
    memcpy(line + n, "\r\n", 2);
    int r = net_write(s, line, (size_t)n + 2);
    return r == NET_OK ? 0 : hs_io_fail(s, r, "sending an authd command");
}

static int tls_up(const struct nfc_params *p, struct net_stream *s, const char *which)
{
    struct net_tls_client tc = {
        .hostname = p->host,
        .thumbprint = p->thumbprint && *p->thumbprint ? p->thumbprint : NULL,
        .ca_file = p->ca_file,
        .verify_chain = p->verify_chain,
    };
    int rc = net_tls_client_start(&tc, s, p->connect_timeout_ms);
    if (rc < 0)
        vd_err_prefix("NFC %s", which);
    return rc;
}

/* The authd exchange up to the NFC service: TLS #1, SESSION, BANNER,
 * THUMBPRINT_SHA2 (when offered), PROXY, then the switch. */
static int authd(const struct nfc_params *p, struct net_stream *s)
{
    char line[MAX_LINE];
    int rc = read_line(s, line, sizeof line, "before its greeting");
    if (rc < 0)
        return rc;
    if (nfc_authd_code(line) != 220)
        return proto_err(s, "not a VMware authentication daemon (greeting \"%.80s\")", line);
    int sha256 = strstr(line, "SHA256 supported") != NULL;
    if ((rc = tls_up(p, s, "authd TLS")) < 0)
        return rc;
    if ((rc = send_line(s, "SESSION %s", p->session)) < 0 ||
        (rc = send_line(s, "BANNER ")) < 0 ||
        (rc = read_line(s, line, sizeof line, "after BANNER")) < 0)
        return rc;
    if (nfc_authd_code(line) != 220)
        return proto_err(s, "BANNER answered \"%.80s\"", line);
    if (sha256) {
        if ((rc = send_line(s, "THUMBPRINT_SHA2 PlainText")) < 0 ||
            (rc = read_line(s, line, sizeof line, "after THUMBPRINT_SHA2")) < 0)
            return rc;
        unsigned char fp1[20], fp2[32], said[32];
        if (nfc_authd_code(line) != 200 || net_tls_parse_thumbprint(line + 4, said) != 32)
            return proto_err(s, "THUMBPRINT_SHA2 answered \"%.120s\"", line);
        if (net_tls_peer_fp(s, fp1, fp2) == 0 && memcmp(fp2, said, 32) != 0) {
            char a[97], b[97];
            net_tls_format_fp(said, 32, a);
            net_tls_format_fp(fp2, 32, b);
            return vd_err_set(VD_E_CERT, "NFC server %s: authd reports certificate SHA-256 %s "
                              "but presented SHA-256 %s", s->peer, a, b);
        }
    }
    if ((rc = send_line(s, "PROXY %s%s", p->service, p->ssl ? "ssl" : "")) < 0 ||
        (rc = read_line(s, line, sizeof line, "after PROXY")) < 0)
        return rc;
    int code = nfc_authd_code(line);
    if (code == 530)
        return vd_err_set(VD_E_AUTH, "NFC server %s refused the ticket for service %s%s "
                          "(\"%.120s\"): tickets are single-use, or it expired", s->peer,
                          p->service, p->ssl ? "ssl" : "", line);
    if (code != 200 || strncmp(line + 4, "Connect ", 8) != 0)
        return proto_err(s, "PROXY %s%s answered \"%.120s\"", p->service, p->ssl ? "ssl" : "",
                         line);
    /* The daemon hands the socket to the NFC service: TLS #1 ends here
     * without close_notify; nbdssl starts a fresh TLS session. */
    net_tls_abandon(s);
    if (p->ssl && (rc = tls_up(p, s, "service TLS")) < 0)
        return rc;
    return 0;
}

/* ---- classic handshake ------------------------------------------------------------- */

static int classic_send(struct net_stream *s, const unsigned char *f, const void *extra,
                        size_t elen)
{
    int r = net_write2(s, f, NFC_CLASSIC_LEN, extra, elen);
    return r == NET_OK ? 0 : hs_io_fail(s, r, "in the NFC handshake");
}

static int classic_recv(struct net_stream *s, unsigned char *f, uint32_t want)
{
    int r = net_read(s, f, NFC_CLASSIC_LEN);
    if (r != NET_OK)
        return hs_io_fail(s, r, "in the NFC handshake");
    uint32_t t = nfc_get32(f);
    if (t == NFC_C_ERROR) {
        uint32_t len = nfc_get32(f + 12);
        if (len > NFC_CLASSIC_LEN - 16)
            len = NFC_CLASSIC_LEN - 16;
        return vd_err_set(VD_E_NET_CONNECT, "NFC server %s: error %u (type %u) in the "
                          "handshake: %.*s", s->peer, nfc_get32(f + 8), nfc_get32(f + 4),
                          (int)strnlen((const char *)f + 16, len), (const char *)f + 16);
    }
    if (t != want)
        return proto_err(s, "handshake frame type %u where %u was expected", t, want);
    return 0;
}

static int classic(const struct nfc_params *p, struct net_stream *s)
{
    unsigned char f[NFC_CLASSIC_LEN];
    int rc;
    if (p->lib_version >= 11) {
        nfc_classic_init(f, NFC_C_CLIENT_RANDOM);
        memcpy(f + 4, "PlainText", 9);
        if ((rc = classic_send(s, f, NULL, 0)) < 0)
            return rc;
    }
    nfc_classic_init(f, NFC_C_SESSION_PARAMS);
    if ((rc = classic_send(s, f, NULL, 0)) < 0 ||
        (rc = classic_recv(s, f, NFC_C_PARAMS_REPLY)) < 0)
        return rc;
    nfc_classic_init(f, NFC_C_VERSION);
    nfc_put32(f + 4, NFC_CLIENT_VERSION);
    if ((rc = classic_send(s, f, NULL, 0)) < 0 || (rc = classic_recv(s, f, NFC_C_VERSION)) < 0)
        return rc;
    uint32_t v = nfc_get32(f + 4);
    if (v < NFC_MIN_SERVER_VERSION)
        return vd_err_set(VD_E_NET_CONNECT, "NFC server %s speaks NFC version %u; at least %u "
                          "is needed", s->peer, v, NFC_MIN_SERVER_VERSION);
    static const char name[] = "vddk", mode[] = "nbdmode";
    unsigned char cd[sizeof name - 1 + sizeof mode - 1];
    memcpy(cd, name, sizeof name - 1);
    memcpy(cd + sizeof name - 1, mode, sizeof mode - 1);
    nfc_classic_init(f, NFC_C_CONN_DATA);
    nfc_put32(f + 4, sizeof name - 1);
    nfc_put32(f + 8, sizeof mode - 1);
    if ((rc = classic_send(s, f, cd, sizeof cd)) < 0)
        return rc;
    nfc_classic_init(f, NFC_C_FEATURES);
    nfc_put32(f + 4, NFC_FEATURES);
    if ((rc = classic_send(s, f, NULL, 0)) < 0)
        return rc;
    nfc_classic_init(f, NFC_C_AIO_OPEN);
    if ((rc = classic_send(s, f, NULL, 0)) < 0 || (rc = classic_recv(s, f, NFC_C_AIO_OPEN)) < 0)
        return rc;
    return 0;
}

/* ---- synchronous AIO calls (before the reader runs) --------------------------------- */

/* An AIO ERROR frame's code.  The one code seen from ESXi, 0x0b for a
 * write on a read-only ticket, is VIX_E_FILE_READ_ONLY: codes are taken as
 * VIX error numbers, and the common ones keep their meaning. */
static int server_error(struct nfc_client *c, uint32_t type, uint32_t code)
{
    char nb[16];
    int vd = code == 11 ? VD_E_READONLY : code == 4 ? VD_E_NOTFOUND : code == 13 ? VD_E_ACCESS
             : code == 3 ? VD_E_INVAL : VD_E_IO;
    const char *what = code == 11 ? " (read-only: the ticket does not allow writing)"
                       : code == 4 ? " (file not found)" : code == 13 ? " (access denied)"
                       : code == 3 ? " (invalid argument)" : "";
    return vd_err_set(vd, "NFC server %s: %s failed: server error 0x%x%s", c->st.peer,
                      nfc_aio_name(type, nb), code, what);
}

static int sync_call(struct nfc_client *c, uint32_t type, const unsigned char *payload,
                     uint32_t psize, const void *extra, size_t elen, unsigned char *reply)
{
    unsigned char msg[NFC_HDR_LEN + NFC_MAX_FIXED];
    uint32_t op = c->next_op++;
    nfc_put_hdr(msg, type, psize, op);
    memcpy(msg + NFC_HDR_LEN, payload, psize);
    int r = c_write2(c, msg, NFC_HDR_LEN + psize, extra, elen);
    if (r != NET_OK)
        return hs_io_fail(&c->st, r, "sending an NFC request");
    unsigned char h[NFC_HDR_LEN];
    struct nfc_hdr hd;
    char nb[16];
    if ((r = c_read(c, h, sizeof h)) != NET_OK)
        return hs_io_fail(&c->st, r, "waiting for an NFC reply");
    if (nfc_get_hdr(h, &hd) < 0)
        return proto_err(&c->st, "invalid message header magic 0x%08x", nfc_get32(h));
    if (hd.op != op)
        return proto_err(&c->st, "reply for opId %u while %u was expected", hd.op, op);
    if (hd.type == NFC_AIO_ERROR) {
        unsigned char e[MAX_ERROR_PAYLOAD];
        if (hd.size > sizeof e)
            return proto_err(&c->st, "ERROR frame of %u bytes", hd.size);
        if ((r = c_read(c, e, hd.size)) != NET_OK)
            return hs_io_fail(&c->st, r, "in an ERROR frame");
        return server_error(c, type, nfc_get_error_code(e, hd.size));
    }
    if (hd.type != type || (int)hd.size != nfc_reply_len(type))
        return proto_err(&c->st, "%s reply where %s (%d bytes) was expected, %u bytes",
                         nfc_aio_name(hd.type, nb), nfc_aio_name(type, nb + 0),
                         nfc_reply_len(type), hd.size);
    if ((r = c_read(c, reply, hd.size)) != NET_OK)
        return hs_io_fail(&c->st, r, "in an NFC reply");
    return 0;
}

static int prologue(struct nfc_client *c, const char *path, int rw)
{
    unsigned char p[NFC_MAX_FIXED], rep[NFC_MAX_FIXED];
    nfc_put_open_session(p, c->buf_size, c->buf_count);
    int rc = sync_call(c, NFC_AIO_OPEN_SESSION, p, NFC_OPEN_SESSION_LEN, NULL, 0, rep);
    if (rc < 0)
        return rc;
    memset(p, 0, NFC_SOCK_OPTS_LEN);
    if ((rc = sync_call(c, NFC_AIO_SET_SOCK_OPTS, p, NFC_SOCK_OPTS_LEN, NULL, 0, rep)) < 0)
        return rc;
    nfc_put32(p, 1);
    if ((rc = sync_call(c, NFC_AIO_SET_RES_POOL, p, NFC_RES_POOL_LEN, NULL, 0, rep)) < 0)
        return rc;
    size_t plen = strlen(path);
    nfc_put_open_file(p, (uint32_t)plen, rw ? NFC_OPEN_RW : NFC_OPEN_RO);
    if ((rc = sync_call(c, NFC_AIO_OPEN_FILE, p, NFC_OPEN_FILE_LEN, path, plen, rep)) < 0) {
        vd_err_prefix("%s", path);
        return rc;
    }
    struct nfc_open_reply o;
    nfc_get_open_reply(rep, &o);
    if (o.capacity == 0 || o.capacity > INT64_MAX)
        return proto_err(&c->st, "%s: disk capacity %llu bytes", path,
                         (unsigned long long)o.capacity);
    if (o.sector_size != 0 && o.sector_size != 512 && o.sector_size != 4096)
        return proto_err(&c->st, "%s: sector size %u", path, o.sector_size);
    c->handle = o.handle;
    c->file_open = 1;
    c->info = (struct nfc_file_info){ o.capacity, o.sector_size ? o.sector_size : 512,
                                      o.cylinders, o.heads, o.sectors };
    return 0;
}

/* ---- transmission ----------------------------------------------------------------- */

/* The connection ended under us: a host that no longer accepts
 * connections on its NFC port went away; otherwise the connection was
 * lost. */
static void lost(struct nfc_client *c, const char *why)
{
    pthread_mutex_lock(&c->pp.lock);
    int closing = c->pp.closing, dead = c->pp.dead;
    pthread_mutex_unlock(&c->pp.lock);
    if (closing || dead) {
        net_pipe_kill(&c->pp, VD_E_NET_LOST, "connection to NFC server %s closed", c->st.peer);
        return;
    }
    char peer[160];
    int fd = c->host ? net_dial(c->host, c->port ? c->port : 902, NULL, 2000, peer,
                                sizeof peer) : -1;
    int alive = 0, refused = fd < 0 && vd_err_code() == VD_E_NET_REFUSED;
    if (fd >= 0) {
        /* Alive means authd still greets: a process being torn down can
         * still complete a connection on its listening socket. */
        char g[4];
        alive = net_wait(fd, POLLIN, 2000) > 0 && recv(fd, g, sizeof g, 0) == (ssize_t)sizeof g &&
                memcmp(g, "220 ", 4) == 0;
        refused = !alive;
        close(fd);
    }
    if (alive) {
        net_pipe_kill(&c->pp, VD_E_NET_LOST, "NFC server %s: connection lost: %s", c->st.peer, why);
    } else if (refused) {
        net_pipe_kill(&c->pp, VD_E_NET_SHUTDOWN, "NFC server %s went away (%s; its NFC port no longer answers "
                  "as authd)", c->st.peer, why);
    } else {
        net_pipe_kill(&c->pp, VD_E_NET_LOST, "NFC server %s: connection lost: %s", c->st.peer, why);
    }
}

static struct pend *lookup_locked(struct nfc_client *c, uint32_t op)
{
    for (struct net_pipe_req *q = c->pp.inflight; q; q = q->next)
        if (((struct pend *)q)->op == op)
            return (struct pend *)q;
    return NULL;
}

static void finish(struct nfc_client *c, struct pend *p, int rc, const char *msg)
{
    net_pipe_finish(&c->pp, &p->q, rc, msg);
}

/* Fail p and the connection with a protocol error; returns -1. */
static int reader_violation(struct nfc_client *c, struct pend *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reader_violation(struct nfc_client *c, struct pend *p, const char *fmt, ...)
{
    char m[ERRMSG];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(m, sizeof m, "NFC server %s: protocol error: ", c->st.peer);
    vsnprintf(m + n, sizeof m - (size_t)n, fmt, ap);
    va_end(ap);
    net_pipe_kill(&c->pp, VD_E_NET_LOST, "%s", m);
    if (p)
        net_pipe_fail_claimed(&c->pp, &p->q);
    return -1;
}

static int reader_read(struct nfc_client *c, struct pend *p, void *buf, size_t len)
{
    int r = c_read(c, buf, len);
    if (r == NET_OK) {
        net_pipe_progress(&c->pp);
        return 0;
    }
    char why[ERRMSG];
    snprintf(why, sizeof why, "%s", r == NET_EOF ? "the server closed the connection"
                                                 : vd_err_msg());
    lost(c, why);
    if (p)
        net_pipe_fail_claimed(&c->pp, &p->q);
    return -1;
}

/* One IO reply frame (payload in pl) for p.  0, or -1 (connection dead). */
static int io_reply(struct nfc_client *c, struct pend *p, const unsigned char *pl)
{
    struct nfc_io f;
    nfc_get_io(pl, &f);
    const char *bad;
    if (!p->dst) {                                  /* a write's acknowledgement */
        if ((bad = nfc_check_write_ack(&f, p->off, p->len)))
            return reader_violation(c, p, "write acknowledgement for opId %u: %s", p->op, bad);
        finish(c, p, 0, NULL);
        return 0;
    }
    if ((bad = nfc_check_read_frag(&f, p->off, p->len, c->buf_size)))
        return reader_violation(c, p, "read reply for opId %u (%u bytes at %llu), fragment at "
                                "%u of %u bytes: %s", p->op, p->len,
                                (unsigned long long)p->off, f.frag_off, f.frag_len, bad);
    uint32_t idx = f.frag_off / c->buf_size;
    if (p->seen[idx / 8] & (1u << (idx % 8)))
        return reader_violation(c, p, "read reply for opId %u: fragment at %u sent twice",
                                p->op, f.frag_off);
    unsigned char *dst = p->dst + f.frag_off;
    if (f.codec == NFC_CODEC_RAW) {
        if (reader_read(c, p, dst, f.frag_len) < 0)
            return -1;
    } else {
        if (f.extra > c->scratch_len) {
            /* Grown on demand: the bound of a codec can be several times
             * the fragment (SkipZ), and most sessions use one codec. */
            unsigned char *n = realloc(c->scratch, f.extra);
            if (!n)
                return reader_violation(c, p, "out of memory for a %u-byte fragment", f.extra);
            c->scratch = n;
            c->scratch_len = f.extra;
        }
        if (reader_read(c, p, c->scratch, f.extra) < 0)
            return -1;
        if (nfc_decode((int)f.codec, c->scratch, f.extra, dst, f.frag_len) < 0)
            return reader_violation(c, p, "read reply for opId %u: %s fragment at %u: %s",
                                    p->op, nfc_codec_name((int)f.codec), f.frag_off,
                                    vd_err_msg());
    }
    p->seen[idx / 8] |= (unsigned char)(1u << (idx % 8));
    p->got += f.frag_len;
    if (p->got == p->len)
        finish(c, p, 0, NULL);
    else
        net_pipe_release(&c->pp, &p->q);
    return 0;
}

/* A reply with a malloc'd extra (DDB value, QAB bitmap). */
static int result_reply(struct nfc_client *c, struct pend *p, size_t len)
{
    p->result = malloc(len + 1);
    if (!p->result)
        return reader_violation(c, p, "out of memory for a %zu-byte reply", len);
    if (reader_read(c, p, p->result, len) < 0)
        return -1;
    p->result[len] = 0;
    p->result_len = len;
    finish(c, p, 0, NULL);
    return 0;
}

static void *reader_main(void *arg)
{
    struct nfc_client *c = arg;
    for (;;) {
        unsigned char h[NFC_HDR_LEN], pl[MAX_ERROR_PAYLOAD];
        struct nfc_hdr hd;
        char nb[16], nb2[16];
        /* Between replies: wait for the next one, and time out the
         * requests in flight when none comes (no one waits for a started
         * read's reply); a second at a time, as requests may be sent
         * while this waits.  Under load the next reply is usually there
         * already: then neither the clock nor poll() is needed. */
        while (!net_ready(&c->st)) {
            int ms = net_pipe_expire(&c->pp);
            if (net_readable(&c->st, ms < 0 || ms > 1000 ? 1000 : ms) != 0 || ms == 0)
                break;
        }
        if (reader_read(c, NULL, h, sizeof h) < 0)
            break;
        if (nfc_get_hdr(h, &hd) < 0) {
            reader_violation(c, NULL, "invalid message header magic 0x%08x", nfc_get32(h));
            break;
        }
        pthread_mutex_lock(&c->pp.lock);
        struct pend *p = lookup_locked(c, hd.op);
        if (p)
            p->q.claimed = 1;
        pthread_mutex_unlock(&c->pp.lock);
        if (!p) {
            reader_violation(c, NULL, "%s reply for opId %u, which is not in flight",
                             nfc_aio_name(hd.type, nb), hd.op);
            break;
        }
        if (hd.type == NFC_AIO_ERROR) {
            if (hd.size > sizeof pl) {
                reader_violation(c, p, "ERROR frame of %u bytes", hd.size);
                break;
            }
            if (reader_read(c, p, pl, hd.size) < 0)
                break;
            server_error(c, p->type, nfc_get_error_code(pl, hd.size));
            char m[ERRMSG];
            snprintf(m, sizeof m, "%s (opId %u)", vd_err_msg(), p->op);
            finish(c, p, -vd_err_code(), m);
            continue;
        }
        if (hd.type != p->type || (int)hd.size != nfc_reply_len(p->type)) {
            reader_violation(c, p, "%s reply of %u bytes for opId %u, a %s request",
                             nfc_aio_name(hd.type, nb), hd.size, hd.op,
                             nfc_aio_name(p->type, nb2));
            break;
        }
        if (reader_read(c, p, pl, hd.size) < 0)
            break;
        int rc = 0, last = 0;
        switch (p->type) {
        case NFC_AIO_IO:
            rc = io_reply(c, p, pl);
            break;
        case NFC_AIO_DDB_GET: {
            uint32_t vlen = nfc_get_ddb_value_len(pl);
            if (vlen > MAX_DDB_VALUE)
                rc = reader_violation(c, p, "DDB_GET value of %u bytes", vlen);
            else
                rc = result_reply(c, p, vlen);
            break;
        }
        case NFC_AIO_QAB:
            if (nfc_get_qab_count(pl) != p->count)
                rc = reader_violation(c, p, "QUERY_ALLOCATED_BLOCKS reply for %llu chunks, "
                                      "%llu asked", (unsigned long long)nfc_get_qab_count(pl),
                                      (unsigned long long)p->count);
            else
                rc = result_reply(c, p, nfc_qab_bitmap_len(p->count));
            break;
        case NFC_AIO_CLOSE_SESSION:
            last = 1;
            finish(c, p, 0, NULL);
            break;
        default:
            finish(c, p, 0, NULL);
            break;
        }
        if (rc < 0 || last)
            break;
    }
    return NULL;
}

/* Wait for room, register p (part of batch b) with the next opId and send
 * its frames: hdr + payload (+ extra), or for a write its fragments. */
struct frag {
    uint32_t codec, len;
    const unsigned char *data;
};

/* Returns 0 once p is in flight (its batch hears of it, even when the
 * send fails), -1 when the connection is dead (the batch holds why) and,
 * with nowait, 1 when there is no room now (nothing happened).  Once p is
 * in flight another thread may complete it at any time (a kill): only
 * copies of its fields are used from then on. */
static int submit(struct nfc_client *c, struct pend *p, const unsigned char *payload,
                  uint32_t psize, const void *extra, size_t elen, const struct frag *frags,
                  size_t nfrags, int nowait)
{
    pthread_mutex_lock(&c->send_lock);
    pthread_mutex_lock(&c->pp.lock);
    p->q.is_write = frags != NULL;
    if (nowait && !c->pp.dead && c->pp.ninflight >= c->pp.max_inflight) {
        pthread_mutex_unlock(&c->pp.lock);
        pthread_mutex_unlock(&c->send_lock);
        return 1;
    }
    if (net_pipe_add_locked(&c->pp, &p->q) < 0) {
        pthread_mutex_unlock(&c->pp.lock);
        pthread_mutex_unlock(&c->send_lock);
        return -1;
    }
    uint32_t op = p->op = c->next_op++, type = p->type, len = p->len;
    uint64_t off = p->off;
    pthread_mutex_unlock(&c->pp.lock);

    unsigned char msg[NFC_HDR_LEN + NFC_MAX_FIXED];
    int r = NET_OK;
    if (!frags) {
        nfc_put_hdr(msg, type, psize, op);
        memcpy(msg + NFC_HDR_LEN, payload, psize);
        r = c_write2(c, msg, NFC_HDR_LEN + psize, extra, elen);
    } else {
        uint32_t fo = 0;
        for (size_t i = 0; i < nfrags && r == NET_OK; i++) {
            const struct frag *f = &frags[i];
            uint32_t raw = len - fo < c->buf_size ? len - fo : c->buf_size;
            struct nfc_io io = { c->handle, NFC_DIR_WRITE, f->codec, off, len, fo, raw,
                                 f->len, 0 };
            nfc_put_hdr(msg, NFC_AIO_IO, NFC_IO_LEN, op);
            nfc_put_io(msg + NFC_HDR_LEN, &io);
            r = c_write2(c, msg, NFC_HDR_LEN + NFC_IO_LEN, f->data, f->len);
            fo += raw;
        }
    }
    pthread_mutex_unlock(&c->send_lock);
    if (r != NET_OK) {
        char why[ERRMSG];
        snprintf(why, sizeof why, "%s", vd_err_msg());
        lost(c, why);
    }
    return 0;
}

/* One request of any type but IO, waited for. */
static int call(struct nfc_client *c, struct pend *p, const unsigned char *payload,
                uint32_t psize, const void *extra, size_t elen)
{
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    p->q.b = &b;
    submit(c, p, payload, psize, extra, elen, NULL, 0, 0);
    int rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    return rc;
}

static int check_range(struct nfc_client *c, size_t len, uint64_t off)
{
    if (off > c->info.capacity || len > c->info.capacity - off)
        return vd_err_set(VD_E_RANGE, "NFC server %s: %zu bytes at offset %llu are past the "
                          "end of the disk (%llu bytes)", c->st.peer, len,
                          (unsigned long long)off, (unsigned long long)c->info.capacity);
    return 0;
}

int nfc_client_pread(struct nfc_client *c, void *buf, size_t len, uint64_t off, int codec)
{
    int rc = check_range(c, len, off);
    if (rc < 0 || len == 0)
        return rc;
    size_t n = (len + c->max_req - 1) / c->max_req;
    uint32_t maxfrags = (c->max_req + c->buf_size - 1) / c->buf_size;
    struct pend *ps = calloc(n, sizeof *ps);
    unsigned char *seen = calloc(n, (maxfrags + 7) / 8);
    if (!ps || !seen) {
        free(ps);
        free(seen);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        uint64_t o = (uint64_t)i * c->max_req;
        uint32_t l = (uint32_t)(len - o < c->max_req ? len - o : c->max_req);
        ps[i] = (struct pend){ .q.b = &b, .type = NFC_AIO_IO, .off = off + o, .len = l,
                               .dst = (unsigned char *)buf + o,
                               .seen = seen + i * ((maxfrags + 7) / 8) };
        unsigned char pl[NFC_IO_LEN];
        struct nfc_io io = { c->handle, NFC_DIR_READ, (uint32_t)codec, off + o, l, 0, l, l, 0 };
        nfc_put_io(pl, &io);
        submit(c, &ps[i], pl, NFC_IO_LEN, NULL, 0, NULL, 0, 0);
        if (net_pipe_is_dead(&c->pp))
            break;
    }
    rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    free(ps);
    free(seen);
    return rc;
}

/* A read in flight that nobody waits for (nfc_client_pread_start). */
struct aread {
    struct pend p;
    struct net_pipe_batch b;
    nfc_done_fn done;
    void *arg;
    unsigned char seen[];        /* fragments placed (bitmap) */
};

/* The pipe completed the read (its lock held): tell the caller, free it. */
static void aread_done(struct net_pipe_batch *b)
{
    struct aread *a = (struct aread *)((char *)b - offsetof(struct aread, b));
    a->done(a->arg, b->rc, b->rc < 0 ? b->msg : NULL);
    free(a);
}

int nfc_client_pread_start(struct nfc_client *c, void *buf, size_t len, uint64_t off, int codec,
                           nfc_done_fn done, void *arg)
{
    if (len == 0 || len > c->max_req || off > c->info.capacity ||
        len > c->info.capacity - off)
        return 1;                       /* nfc_client_pread says what is wrong */
    uint32_t nfrags = (uint32_t)((len + c->buf_size - 1) / c->buf_size);
    struct aread *a = calloc(1, sizeof *a + (nfrags + 7) / 8);
    if (!a)
        return 1;
    net_pipe_batch_init_done(&a->b, aread_done);
    a->done = done;
    a->arg = arg;
    a->p = (struct pend){ .q.b = &a->b, .type = NFC_AIO_IO, .off = off, .len = (uint32_t)len,
                          .dst = buf, .seen = a->seen };
    unsigned char pl[NFC_IO_LEN];
    struct nfc_io io = { c->handle, NFC_DIR_READ, (uint32_t)codec, off, (uint32_t)len, 0,
                         (uint32_t)len, (uint32_t)len, 0 };
    nfc_put_io(pl, &io);
    if (submit(c, &a->p, pl, NFC_IO_LEN, NULL, 0, NULL, 0, 1) != 0) {
        free(a);                        /* not in flight: the caller reads the usual way */
        return 1;
    }
    return 0;                           /* a may be gone already */
}

/* Encode the fragments of one write request. */
static int encode_frags(struct nfc_client *c, const unsigned char *src, uint32_t len, int codec,
                        struct frag *frags, size_t nfrags, unsigned char **enc)
{
    *enc = NULL;
    if (codec == NFC_CODEC_RAW) {
        for (size_t i = 0; i < nfrags; i++) {
            uint32_t fo = (uint32_t)i * c->buf_size;
            uint32_t l = len - fo < c->buf_size ? len - fo : c->buf_size;
            frags[i] = (struct frag){ NFC_CODEC_RAW, l, src + fo };
        }
        return 0;
    }
    size_t bound = nfc_codec_bound(codec, c->buf_size);
    unsigned char *buf = malloc(bound * nfrags);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "out of memory for compressed write fragments");
    for (size_t i = 0; i < nfrags; i++) {
        uint32_t fo = (uint32_t)i * c->buf_size;
        uint32_t l = len - fo < c->buf_size ? len - fo : c->buf_size;
        unsigned char *d = buf + i * bound;
        size_t e = nfc_encode(codec, src + fo, l, d, bound);
        frags[i] = e ? (struct frag){ (uint32_t)codec, (uint32_t)e, d }
                     : (struct frag){ NFC_CODEC_RAW, l, src + fo };
    }
    *enc = buf;
    return 0;
}

int nfc_client_pwrite(struct nfc_client *c, const void *buf, size_t len, uint64_t off,
                      int codec)
{
    int rc = check_range(c, len, off);
    if (rc < 0 || len == 0)
        return rc;
    size_t n = (len + c->max_req - 1) / c->max_req;
    size_t maxfrags = (c->max_req + c->buf_size - 1) / c->buf_size;
    struct pend *ps = calloc(n, sizeof *ps);
    struct frag *frags = calloc(maxfrags, sizeof *frags);
    if (!ps || !frags) {
        free(ps);
        free(frags);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t o = (uint64_t)i * c->max_req;
        uint32_t l = (uint32_t)(len - o < c->max_req ? len - o : c->max_req);
        size_t nf = (l + c->buf_size - 1) / c->buf_size;
        unsigned char *enc;
        if ((rc = encode_frags(c, (const unsigned char *)buf + o, l, codec, frags, nf,
                               &enc)) < 0)
            break;
        ps[i] = (struct pend){ .q.b = &b, .type = NFC_AIO_IO, .off = off + o, .len = l };
        submit(c, &ps[i], NULL, 0, NULL, 0, frags, nf, 0);
        free(enc);
        if (net_pipe_is_dead(&c->pp))
            break;
    }
    int wr = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    free(ps);
    free(frags);
    return rc < 0 ? rc : wr;
}

int nfc_client_flush(struct nfc_client *c)
{
    /* NFC has no flush message: the server writes what it acknowledges.
     * Wait for the acknowledgements of writes other threads have in
     * flight. */
    return net_pipe_drain_writes(&c->pp);
}

int nfc_client_ddb_get_many(struct nfc_client *c, const char *const *keys, size_t n,
                            char **values)
{
    for (size_t i = 0; i < n; i++) {
        values[i] = NULL;
        const char *k = strncasecmp(keys[i], "ddb.", 4) == 0 ? keys[i] + 4 : keys[i];
        if (!*k || strlen(k) > 1024)
            return vd_err_set(VD_E_INVAL, "disk database key \"%s\" is not valid", keys[i]);
    }
    struct pend *ps = calloc(n ? n : 1, sizeof *ps);
    if (!ps)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    /* All requests in flight at once: one round trip for the lot. */
    struct net_pipe_batch b;
    net_pipe_batch_init(&b);
    for (size_t i = 0; i < n; i++) {
        const char *k = strncasecmp(keys[i], "ddb.", 4) == 0 ? keys[i] + 4 : keys[i];
        unsigned char pl[NFC_DDB_LEN];
        nfc_put_ddb(pl, c->handle, (uint32_t)strlen(k));
        ps[i] = (struct pend){ .q.b = &b, .type = NFC_AIO_DDB_GET };
        submit(c, &ps[i], pl, NFC_DDB_LEN, k, strlen(k), NULL, 0, 0);
        if (net_pipe_is_dead(&c->pp))
            break;
    }
    int rc = net_pipe_wait(&c->pp, &b);
    pthread_cond_destroy(&b.cond);
    for (size_t i = 0; i < n; i++) {
        struct pend *p = &ps[i];
        if (rc == 0 && p->result && p->result_len && !memchr(p->result, 0, p->result_len))
            values[i] = (char *)p->result;     /* absent: no value, or an empty one */
        else
            free(p->result);
    }
    free(ps);
    return rc;
}

int nfc_client_ddb_get(struct nfc_client *c, const char *key, char **value)
{
    int rc = nfc_client_ddb_get_many(c, &key, 1, value);
    if (rc == 0 && !*value)
        return vd_err_set(VD_E_NOTFOUND_KEY, "NFC server %s: the disk database has no key %s",
                          c->st.peer, strncasecmp(key, "ddb.", 4) == 0 ? key + 4 : key);
    return rc;
}

int nfc_client_qab(struct nfc_client *c, uint64_t chunk_bytes, uint64_t start_bytes,
                   uint64_t count, unsigned char **bitmap)
{
    *bitmap = NULL;
    unsigned char pl[NFC_QAB_LEN];
    nfc_put_qab(pl, c->handle, chunk_bytes, start_bytes, count);
    struct pend p = { .type = NFC_AIO_QAB, .count = count };
    int rc = call(c, &p, pl, NFC_QAB_LEN, NULL, 0);
    if (rc < 0) {
        free(p.result);
        return rc;
    }
    *bitmap = p.result;
    return 0;
}

/* ---- open and close ------------------------------------------------------------------ */

static void free_client(struct nfc_client *c)
{
    free(c->scratch);
    free(c->host);
    free(c);
}

static int start(struct nfc_client *c, const struct nfc_params *p, const char *path, int rw)
{
    int rc = classic(p, &c->st);
    if (rc == 0)
        rc = prologue(c, path, rw);
    if (rc < 0)
        return rc;
    /* From here the reader's waits between replies and the callers' waits
     * enforce the read timeout; this bounds a reply stalling midway. */
    c->st.rd_timeout_ms = c->timeout_ms;
    /* A reply's header and payload in one receive call, and a fragment's
     * end with the next header (the reader is the socket's only reader
     * from here on; without the buffer it reads as before). */
    (void)net_stream_readahead(&c->st, NFC_READAHEAD);
    net_pipe_init(&c->pp, &c->st, "NFC server", c->timeout_ms, c->max_inflight);
    pthread_mutex_init(&c->send_lock, NULL);
    if (pthread_create(&c->reader, NULL, reader_main, c) != 0) {
        net_pipe_destroy(&c->pp);
        pthread_mutex_destroy(&c->send_lock);
        return vd_err_set(VD_E_NOMEM, "cannot start the NFC reply reader thread");
    }
    c->reader_started = 1;
    return 0;
}

static struct nfc_client *new_client(const struct nfc_params *p)
{
    struct nfc_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ssl = p->ssl;
    c->port = p->port;
    uint32_t bs = p->buf_size ? p->buf_size : 65536;
    c->buf_size = bs;
    c->buf_count = p->buf_count ? p->buf_count : 4;
    uint32_t mr = p->max_request ? p->max_request : 32u << 20;
    mr -= mr % bs;
    c->max_req = mr ? mr : bs;
    c->max_inflight = p->max_inflight ? p->max_inflight : 64;
    c->timeout_ms = p->read_timeout_ms > 0 ? p->read_timeout_ms : 60000;
    if (p->host && !(c->host = strdup(p->host))) {
        free_client(c);
        return NULL;
    }
    return c;
}

static int check_params(const struct nfc_params *p)
{
    if (p->buf_size % 65536 || p->buf_size > (2u << 20))
        return vd_err_set(VD_E_INVAL, "NFC buffer size %u: must be a multiple of 64 KiB, at "
                          "most 2 MiB", p->buf_size);
    return 0;
}

int nfc_client_open_stream(struct net_stream *s, const struct nfc_params *p, const char *path,
                           int rw, struct nfc_client **out)
{
    *out = NULL;
    int rc = check_params(p);
    struct nfc_client *c = rc < 0 ? NULL : new_client(p);
    if (!c) {
        net_close(s);
        return rc < 0 ? rc : vd_err_set(VD_E_NOMEM, "out of memory");
    }
    c->st = *s;
    if ((rc = start(c, p, path, rw)) < 0) {
        net_close(&c->st);
        free_client(c);
        return rc;
    }
    *out = c;
    return 0;
}

int nfc_client_open(const struct nfc_params *p, const char *path, int rw,
                    struct nfc_client **out)
{
    *out = NULL;
    if (!p->host || !p->service || !p->session)
        return vd_err_set(VD_E_INVAL, "NFC ticket without host, service or session");
    int rc = check_params(p);
    if (rc < 0)
        return rc;
    struct net_stream s;
    char peer[160];
    vd_err_clear();
    int fd = net_dial(p->host, p->port ? p->port : 902, NULL, p->connect_timeout_ms, peer,
                      sizeof peer);
    if (fd < 0) {
        vd_err_prefix("NFC");
        return -vd_err_code();
    }
    net_stream_init(&s, fd, peer);
    s.rd_timeout_ms = p->connect_timeout_ms > 0 ? p->connect_timeout_ms : 30000;
    s.wr_timeout_ms = p->read_timeout_ms > 0 ? p->read_timeout_ms : 60000;
    if ((rc = authd(p, &s)) < 0) {
        net_close(&s);
        return rc;
    }
    s.rd_timeout_ms = p->read_timeout_ms > 0 ? p->read_timeout_ms : 60000;
    return nfc_client_open_stream(&s, p, path, rw, out);
}

int nfc_client_close(struct nfc_client *c)
{
    if (!c)
        return 0;
    int rc = 0;
    char msg[ERRMSG] = "";
    if (c->reader_started) {
        if (!net_pipe_is_dead(&c->pp)) {
            unsigned char pl[NFC_CLOSE_FILE_LEN];
            nfc_put64(pl, c->handle);
            struct pend p = { .type = NFC_AIO_CLOSE_FILE };
            rc = call(c, &p, pl, NFC_CLOSE_FILE_LEN, NULL, 0);
            if (rc == 0) {
                unsigned char z[NFC_CLOSE_SESSION_LEN] = { 0 };
                struct pend q = { .type = NFC_AIO_CLOSE_SESSION };
                rc = call(c, &q, z, NFC_CLOSE_SESSION_LEN, NULL, 0);
            }
            if (rc == 0) {
                unsigned char f[NFC_CLASSIC_LEN];
                nfc_classic_init(f, NFC_C_SESSION_COMPLETE);
                pthread_mutex_lock(&c->send_lock);
                c_write2(c, f, sizeof f, NULL, 0);
                pthread_mutex_unlock(&c->send_lock);
            }
            if (rc < 0)
                snprintf(msg, sizeof msg, "%s", vd_err_msg());
        } else {
            pthread_mutex_lock(&c->pp.lock);
            rc = c->pp.dead_rc;
            snprintf(msg, sizeof msg, "%s", c->pp.dead_msg);
            pthread_mutex_unlock(&c->pp.lock);
        }
        pthread_mutex_lock(&c->pp.lock);
        c->pp.closing = 1;
        pthread_mutex_unlock(&c->pp.lock);
        net_shutdown(&c->st);
        pthread_join(c->reader, NULL);
        net_pipe_destroy(&c->pp);
        pthread_mutex_destroy(&c->send_lock);
    }
    net_close(&c->st);
    free_client(c);
    return rc < 0 ? vd_err_set(-rc, "%s", msg) : 0;
}

const struct nfc_file_info *nfc_client_info(const struct nfc_client *c) { return &c->info; }
const char *nfc_client_peer(const struct nfc_client *c) { return c->st.peer; }
int nfc_client_is_ssl(const struct nfc_client *c) { return c->ssl; }

void nfc_client_traffic(const struct nfc_client *c, uint64_t *sent, uint64_t *received)
{
    *sent = atomic_load(&c->sent);
    *received = atomic_load(&c->received);
}
