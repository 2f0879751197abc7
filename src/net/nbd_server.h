/* nbd_server.h - an NBD server over vdisk objects.
 *
 * Fixed newstyle negotiation (EXPORT_NAME, ABORT, LIST, STARTTLS, INFO, GO,
 * STRUCTURED_REPLY, LIST/SET_META_CONTEXT with base:allocation) and the
 * transmission commands READ, WRITE (FUA), FLUSH, TRIM, WRITE_ZEROES (NO_HOLE,
 * FAST_ZERO), CACHE, BLOCK_STATUS and DISC.  Each connection has a reader
 * thread and a few worker threads, so several requests are in flight per
 * connection and replies go out as they complete.  Connections to one
 * export share one open vdisk, so a flush on any connection covers writes
 * from all of them (CAN_MULTI_CONN).
 *
 * Every length and offset a client sends is checked before use: bad
 * requests get an error reply (with a message when structured replies are
 * on), and input that makes the stream unreadable (bad magic, oversized
 * payloads, truncated messages) closes that connection only. */
#ifndef VD_NET_NBD_SERVER_H
#define VD_NET_NBD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "net_io.h"
#include "net_tls.h"
#include "../util/vdisk.h"

/* Where the disks come from (vddk serve: datastore directories; tests and
 * the fuzzer: memory disks).  Error returns are NBD_REP_ERR_* codes with a
 * message for the client. */
struct nbd_backend {
    void *ctx;
    /* Map a client's export name to a key naming one disk (two names for
     * the same disk must give the same key). */
    uint32_t (*resolve)(void *ctx, const char *name, char **key, char *msg, size_t msglen);
    uint32_t (*open)(void *ctx, const char *key, struct vdisk **out, char *msg, size_t msglen);
    /* Text for NBD_INFO_DESCRIPTION (malloc'd), or NULL. */
    char *(*describe)(void *ctx, const char *key, struct vdisk *d);
    /* Call emit for each export name; optional. */
    int (*list)(void *ctx, int (*emit)(void *arg, const char *name), void *arg);
};

enum { NBD_LOG_ERR = 0, NBD_LOG_WARN = 1, NBD_LOG_INFO = 2, NBD_LOG_DEBUG = 3 };

struct nbd_server_config {
    struct nbd_backend backend;
    enum net_tls_mode tls_mode;
    struct net_tls_server *tls;     /* required unless tls_mode is OFF */
    int readonly;
    unsigned workers;               /* threads per connection; 0: 4 */
    unsigned max_conns;             /* 0: 256 */
    unsigned max_inflight;          /* requests per connection; 0: 64 */
    int handshake_timeout_ms;       /* per read while negotiating; 0: 30000 */
    int log_level;                  /* messages up to this level are logged */
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
};

struct nbd_server;

int nbd_server_new(const struct nbd_server_config *cfg, struct nbd_server **out);
/* Accept connections on a listening socket (owned by the server from now). */
int nbd_server_add_listener(struct nbd_server *s, int fd);
/* Accept and serve until nbd_server_stop; then stop reading new requests,
 * let the ones in flight finish, flush and close every open disk. */
int nbd_server_run(struct nbd_server *s);
/* TLS for the connections accepted from now on (a reload); connections
 * already open keep the credentials they started with, so the caller
 * frees the previous ones only after nbd_server_run has returned. */
void nbd_server_set_tls(struct nbd_server *s, enum net_tls_mode mode,
                        struct net_tls_server *tls);
/* Ask run to return.  Async-signal-safe. */
void nbd_server_stop(struct nbd_server *s);
void nbd_server_free(struct nbd_server *s);

/* Serve one connection in the calling thread, one request at a time (no
 * worker threads).  For tests and the fuzzer; st is closed at the end. */
void nbd_server_serve_inline(struct nbd_server *s, struct net_stream *st);

/* Number of connections being served (tests). */
int nbd_server_connections(struct nbd_server *s);

#endif
