/* nfc_client.h - an NFC client: one connection to an ESXi host's NFC
 * service (authd, port 902) with one disk file open.
 *
 * nfc_client_open dials the host, runs the authd exchange inside TLS
 * (checking the ticket's certificate thumbprint, and the SHA-256 the
 * daemon reports when it offers one), asks authd for the NFC service
 * (nbd: plain TCP after the exchange; nbdssl: a second TLS handshake),
 * runs the classic handshake, opens an AIO session and the file.
 *
 * Requests are pipelined: any number of threads may call in; each call is
 * split into requests of at most max_request bytes, all in flight at once,
 * and a reader thread places reply fragments (in any order) and matches
 * acknowledgements.  A request without any reply for the read timeout, a
 * broken socket or a protocol violation makes the connection dead:
 * everything in flight and after fails with VD_E_NET_LOST (or
 * VD_E_NET_SHUTDOWN when the host no longer accepts connections on its
 * NFC port).  An ERROR frame fails only its request: VD_E_READONLY for
 * code 0x0b, VD_E_IO otherwise, the server's code in the text. */
#ifndef VD_NFC_CLIENT_H
#define VD_NFC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct net_stream;

struct nfc_params {
    const char *host;            /* ESXi host (name or address) */
    unsigned port;               /* authd port (902) */
    int ssl;                     /* nbdssl: NFC runs inside a second TLS */
    const char *service;         /* the ticket's service ("nfc", "vpxa-nfc") */
    const char *session;         /* the ticket's one-time session id */
    const char *thumbprint;      /* the ticket's SHA-1 thumbprint; NULL: verify the chain */
    const char *ca_file;         /* with verify_chain */
    int verify_chain;
    unsigned lib_version;        /* server's NFC library version; >= 11 sends CLIENT_RANDOM */
    uint32_t buf_size;           /* session buffer: bytes per fragment (64 KiB .. 2 MiB) */
    uint32_t buf_count;          /* session buffer count */
    uint32_t max_request;        /* bytes per IO request (multiple of buf_size) */
    unsigned max_inflight;       /* requests in flight */
    int connect_timeout_ms;
    int read_timeout_ms;
};

struct nfc_file_info {
    uint64_t capacity;           /* bytes */
    uint32_t sector_size;
    uint32_t cylinders, heads, sectors;
};

struct nfc_client;

/* Connect and open path ("[ds] dir/disk.vmdk") read-only or read-write. */
int nfc_client_open(const struct nfc_params *p, const char *path, int rw,
                    struct nfc_client **out);
/* The same from the classic handshake on, over a stream already past
 * authd (s is taken over; tests and the fuzzer use this). */
int nfc_client_open_stream(struct net_stream *s, const struct nfc_params *p, const char *path,
                           int rw, struct nfc_client **out);
/* Close the file and the session, end the connection, free.  Returns an
 * earlier connection failure, if any. */
int nfc_client_close(struct nfc_client *c);

const struct nfc_file_info *nfc_client_info(const struct nfc_client *c);
const char *nfc_client_peer(const struct nfc_client *c);
int nfc_client_is_ssl(const struct nfc_client *c);

/* Bytes at a byte offset; codec is enum nfc_codec (the server may answer
 * any fragment raw). */
int nfc_client_pread(struct nfc_client *c, void *buf, size_t len, uint64_t off, int codec);
/* Start a read of at most the request size (nfc_params.max_request) and
 * return without waiting: done(arg, rc, msg) runs exactly once, on the
 * connection's reader thread (or a thread that finds the connection
 * dead), with rc 0 once buf holds the bytes, else a negative vd_err and
 * its text.  done must not block or call into the client.  Returns 0 when
 * started; 1 when it was not (out of range, too large, the connection dead
 * or all request slots in use): done is not called, and nfc_client_pread
 * is the way to do (or fail) it.  Nothing waits for the reply, so the
 * reader enforces the read timeout too. */
typedef void (*nfc_done_fn)(void *arg, int rc, const char *msg);
int nfc_client_pread_start(struct nfc_client *c, void *buf, size_t len, uint64_t off, int codec,
                           nfc_done_fn done, void *arg);
/* Returns once the server acknowledged every byte. */
int nfc_client_pwrite(struct nfc_client *c, const void *buf, size_t len, uint64_t off,
                      int codec);
/* Wait until no write is in flight. */
int nfc_client_flush(struct nfc_client *c);
/* A disk database value (key without "ddb."); VD_E_NOTFOUND_KEY when the
 * server says it is absent.  *value is malloc'd. */
int nfc_client_ddb_get(struct nfc_client *c, const char *key, char **value);
/* Several keys with all requests in flight at once; values[i] is NULL
 * for an absent key. */
int nfc_client_ddb_get_many(struct nfc_client *c, const char *const *keys, size_t n,
                            char **values);
/* Allocation of count chunks of chunk_bytes from start_bytes (aligned):
 * *bitmap (malloc'd) has one bit per chunk, LSB first, 1 = allocated. */
int nfc_client_qab(struct nfc_client *c, uint64_t chunk_bytes, uint64_t start_bytes,
                   uint64_t count, unsigned char **bitmap);

/* Bytes sent and received on the connection so far (headers included). */
void nfc_client_traffic(const struct nfc_client *c, uint64_t *sent, uint64_t *received);

#endif
