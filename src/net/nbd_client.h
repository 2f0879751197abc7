/* nbd_client.h - an NBD client: one connection to one export.
 *
 * Negotiation: fixed newstyle, STARTTLS when asked (refusing to go on in
 * clear text), STRUCTURED_REPLY, SET_META_CONTEXT base:allocation, GO with
 * block size and description requests (EXPORT_NAME when the server does
 * not know GO).  Transmission: requests are pipelined on the connection
 * (any number of threads may call in; each large transfer is split into
 * requests that are all in flight at once) and a reader thread matches
 * replies, simple or structured, to requests.  A request without any
 * reply for the read timeout, a broken socket or a protocol violation
 * makes the connection dead: everything in flight and everything after
 * fails with VD_E_NET_LOST naming the server and the reason. */
#ifndef VD_NET_NBD_CLIENT_H
#define VD_NET_NBD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* How to reach a server (built by ConnectEx from its parameters and the
 * config file). */
struct nbd_remote {
    char *host;                 /* name or address; NULL with unix_path */
    char *unix_path;
    unsigned port;
    int tls;                    /* nbdssl: STARTTLS is required */
    char *thumbprint;           /* expected certificate fingerprint, or NULL */
    char *ca_file;              /* trust for chain verification, or NULL */
    int verify_chain;           /* without thumbprint: check chain and name */
    char *psk_identity;         /* TLS-PSK credentials, or NULL */
    char *psk_key;
    int connect_timeout_ms;
    int read_timeout_ms;        /* longest wait for a reply */
    int write_timeout_ms;
    unsigned max_inflight;      /* requests in flight per connection */
    uint32_t max_request;       /* bytes per READ/WRITE request */
};

struct nbd_extent {
    uint64_t length;
    uint32_t flags;             /* NBD_STATE_* */
};

struct nbd_client;

/* Connect, negotiate TLS as r asks, and leave again (ABORT): checks the
 * server, its certificate and our credentials.  *no_tls is set when the
 * failure is only that the server does not offer TLS. */
int nbd_client_probe(const struct nbd_remote *r, int *no_tls);
/* Connect and enter transmission on export `name`. */
int nbd_client_open(const struct nbd_remote *r, const char *name, struct nbd_client **out);
/* Send DISC, close, free.  Returns an earlier connection failure, if any. */
int nbd_client_close(struct nbd_client *c);

uint64_t nbd_client_size(const struct nbd_client *c);
uint16_t nbd_client_tflags(const struct nbd_client *c);
int nbd_client_has_meta(const struct nbd_client *c);
const char *nbd_client_description(const struct nbd_client *c);   /* or NULL */
const char *nbd_client_peer(const struct nbd_client *c);
int nbd_client_is_tls(const struct nbd_client *c);

int nbd_client_pread(struct nbd_client *c, void *buf, size_t len, uint64_t off);
int nbd_client_pwrite(struct nbd_client *c, const void *buf, size_t len, uint64_t off);
/* Make the range read as zeros (WRITE_ZEROES, else plain writes). */
int nbd_client_zero(struct nbd_client *c, uint64_t off, uint64_t len);
int nbd_client_flush(struct nbd_client *c);
/* base:allocation extents from off (at most len bytes; at least one
 * extent).  *ext is malloc'd. */
int nbd_client_block_status(struct nbd_client *c, uint64_t off, uint64_t len,
                            struct nbd_extent **ext, size_t *n);

#endif
