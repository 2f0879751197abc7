/* net_tls.h - TLS for NBD with GnuTLS: X.509 and PSK, both sides.
 *
 * The server side holds credentials loaded once (certificate + key, an
 * optional CA that client certificates must chain to, or a PSK file of
 * "identity:hexkey" lines as nbdkit and qemu-nbd use) and runs the
 * handshake on a connection after STARTTLS.  The client side checks the
 * server: a thumbprint (SHA-1 or SHA-256 of the certificate, VDDK style)
 * when given, else the certificate chain and host name against the
 * system trust store and an optional CA file; PSK credentials
 * authenticate both sides. */
#ifndef VD_NET_NET_TLS_H
#define VD_NET_NET_TLS_H

#include <stddef.h>

#include "net_io.h"

enum net_tls_mode { NET_TLS_OFF = 0, NET_TLS_ON = 1, NET_TLS_REQUIRE = 2 };

struct net_tls_server;

/* Either cert+key (ca optional) or psk_file.  Returns 0 or a vd_err code
 * with a message naming the file. */
int net_tls_server_new(const char *cert, const char *key, const char *ca,
                       const char *psk_file, struct net_tls_server **out);
void net_tls_server_free(struct net_tls_server *t);
/* "X.509" or "PSK". */
const char *net_tls_server_kind(const struct net_tls_server *t);
/* Handshake as the server on s.  On success s->tls is set and who holds
 * the client's identity ("PSK identity alice", "X.509 client", ...). */
int net_tls_server_start(struct net_tls_server *t, struct net_stream *s, int timeout_ms,
                         char *who, size_t wholen);

struct net_tls_client {
    const char *hostname;      /* checked against the certificate (no thumbprint) */
    const char *thumbprint;    /* NULL: verify the chain instead */
    const char *ca_file;       /* extra trust anchors, or NULL */
    const char *psk_identity;  /* NULL: no PSK */
    const char *psk_key;       /* hex (as in PSK files) or, if not hex, the raw bytes */
    int verify_chain;          /* without thumbprint: 0 accepts any certificate */
};
/* Handshake as the client on s.  Failures: VD_E_AUTH (credentials
 * rejected), VD_E_CERT (certificate not accepted: the message names the
 * expected and presented fingerprints), VD_E_NET_CONNECT (other). */
int net_tls_client_start(const struct net_tls_client *c, struct net_stream *s, int timeout_ms);

/* SHA-1 and SHA-256 of the certificate the peer of s presented over TLS.
 * Returns 0, or -1 when s runs no TLS or the peer sent no certificate. */
int net_tls_peer_fp(const struct net_stream *s, unsigned char sha1[20],
                    unsigned char sha256[32]);

/* Parse a thumbprint: hex digits with optional ':' / ' ' separators, 20
 * bytes (SHA-1) or 32 bytes (SHA-256).  Returns the byte count or -1. */
int net_tls_parse_thumbprint(const char *text, unsigned char out[32]);
/* "AB:CD:..." of n bytes; out holds 3*n bytes. */
void net_tls_format_fp(const unsigned char *d, size_t n, char *out);

#endif
