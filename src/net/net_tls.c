/* net_tls.c - GnuTLS credentials and handshakes for NBD (STARTTLS). */
#include <ctype.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_tls.h"
#include "../util/err.h"

#define PRIO_CERT "NORMAL"
#define PRIO_PSK "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"

struct psk_entry {
    char *identity;
    unsigned char *key;
    size_t keylen;
};

struct net_tls_server {
    gnutls_certificate_credentials_t cert;
    gnutls_psk_server_credentials_t psk;
    int require_client_cert;
    struct psk_entry *keys;
    size_t nkeys;
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Hex text (no separators) to bytes; -1 if not even-length hex. */
static long hex_decode(const char *s, size_t n, unsigned char *out)
{
    if (n == 0 || n % 2)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int a = hexval((unsigned char)s[i]), b = hexval((unsigned char)s[i + 1]);
        if (a < 0 || b < 0)
            return -1;
        out[i / 2] = (unsigned char)(a << 4 | b);
    }
    return (long)(n / 2);
}

int net_tls_parse_thumbprint(const char *text, unsigned char out[32])
{
    char hex[65];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == ':' || *p == ' ' || *p == '-')
            continue;
        if (n >= 64)
            return -1;
        hex[n++] = *p;
    }
    if (n != 40 && n != 64)
        return -1;
    return (int)hex_decode(hex, n, out);
}

void net_tls_format_fp(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        out[3 * i] = digits[d[i] >> 4];
        out[3 * i + 1] = digits[d[i] & 15];
        out[3 * i + 2] = i + 1 < n ? ':' : '\0';
    }
    if (n == 0)
        out[0] = '\0';
}

/* ---- server ---------------------------------------------------------------- */

static void free_keys(struct net_tls_server *t)
{
    for (size_t i = 0; i < t->nkeys; i++) {
        free(t->keys[i].identity);
        if (t->keys[i].key)
            memset(t->keys[i].key, 0, t->keys[i].keylen);
        free(t->keys[i].key);
    }
    free(t->keys);
    t->keys = NULL;
    t->nkeys = 0;
}

static int load_psk_file(struct net_tls_server *t, const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return vd_err_errno(errno, "%s: cannot open PSK file", path);
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            rc = vd_err_set(VD_E_INVAL, "%s:%d: expected identity:hexkey", path, lineno);
            break;
        }
        *colon = '\0';
        const char *hex = colon + 1;
        size_t hl = strlen(hex);
        unsigned char *key = malloc(hl / 2 + 1);
        long kl = key ? hex_decode(hex, hl, key) : -1;
        if (kl <= 0) {
            free(key);
            rc = vd_err_set(VD_E_INVAL, "%s:%d: the key of identity '%s' is not hex", path,
                            lineno, line);
            break;
        }
        struct psk_entry *nk = realloc(t->keys, (t->nkeys + 1) * sizeof *nk);
        char *id = strdup(line);
        if (!nk || !id) {
            free(key);
            free(id);
            if (nk)
                t->keys = nk;
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            break;
        }
        t->keys = nk;
        t->keys[t->nkeys++] = (struct psk_entry){ id, key, (size_t)kl };
    }
    fclose(f);
    if (rc == 0 && t->nkeys == 0)
        rc = vd_err_set(VD_E_INVAL, "%s: no identity:hexkey lines", path);
    return rc;
}

static int psk_lookup(gnutls_session_t session, const gnutls_datum_t *username,
                      gnutls_datum_t *key)
{
    struct net_tls_server *t = gnutls_session_get_ptr(session);
    for (size_t i = 0; t && i < t->nkeys; i++) {
        const char *id = t->keys[i].identity;
        if (strlen(id) == username->size && memcmp(id, username->data, username->size) == 0) {
            key->data = gnutls_malloc(t->keys[i].keylen);
            if (!key->data)
                return -1;
            memcpy(key->data, t->keys[i].key, t->keys[i].keylen);
            key->size = (unsigned)t->keys[i].keylen;
            return 0;
        }
    }
    /* An unknown identity gets a random key: the handshake then fails
     * exactly as for a wrong key, and identities cannot be probed. */
    key->data = gnutls_malloc(32);
    if (!key->data)
        return -1;
    if (gnutls_rnd(GNUTLS_RND_NONCE, key->data, 32) < 0) {
        gnutls_free(key->data);
        key->data = NULL;
        return -1;
    }
    key->size = 32;
    return 0;
}

int net_tls_server_new(const char *cert, const char *key, const char *ca,
                       const char *psk_file, struct net_tls_server **out)
{
    struct net_tls_server *t = calloc(1, sizeof *t);
    if (!t)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0, g;
    if (psk_file) {
        if ((rc = load_psk_file(t, psk_file)) < 0)
            goto fail;
        if ((g = gnutls_psk_allocate_server_credentials(&t->psk)) < 0) {
            rc = vd_err_set(VD_E_NOMEM, "TLS: %s", gnutls_strerror(g));
            goto fail;
        }
        gnutls_psk_set_server_credentials_function2(t->psk, psk_lookup);
    } else {
        if (!cert || !key) {
            rc = vd_err_set(VD_E_INVAL, "TLS needs a certificate and a key, or a PSK file");
            goto fail;
        }
        if ((g = gnutls_certificate_allocate_credentials(&t->cert)) < 0) {
            rc = vd_err_set(VD_E_NOMEM, "TLS: %s", gnutls_strerror(g));
            goto fail;
        }
        g = gnutls_certificate_set_x509_key_file(t->cert, cert, key, GNUTLS_X509_FMT_PEM);
        if (g < 0) {
            rc = vd_err_set(VD_E_INVAL, "TLS certificate %s / key %s: %s", cert, key,
                            gnutls_strerror(g));
            goto fail;
        }
        if (ca) {
            g = gnutls_certificate_set_x509_trust_file(t->cert, ca, GNUTLS_X509_FMT_PEM);
            if (g <= 0) {
                rc = vd_err_set(VD_E_INVAL, "TLS CA file %s: %s", ca,
                                g == 0 ? "no certificates" : gnutls_strerror(g));
                goto fail;
            }
            t->require_client_cert = 1;
        }
    }
    *out = t;
    return 0;
fail:
    net_tls_server_free(t);
    return rc;
}

void net_tls_server_free(struct net_tls_server *t)
{
    if (!t)
        return;
    if (t->cert)
        gnutls_certificate_free_credentials(t->cert);
    if (t->psk)
        gnutls_psk_free_server_credentials(t->psk);
    free_keys(t);
    free(t);
}

const char *net_tls_server_kind(const struct net_tls_server *t)
{
    return t->psk ? "PSK" : "X.509";
}

/* Run the handshake on a non-blocking socket with an overall deadline. */
static int handshake(gnutls_session_t sess, struct net_stream *s, int timeout_ms,
                     int *gerr)
{
    int64_t deadline = net_now_ms() + timeout_ms;
    for (;;) {
        int g = gnutls_handshake(sess);
        if (g == GNUTLS_E_SUCCESS)
            return 0;
        if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED) {
            int64_t left = deadline - net_now_ms();
            if (left <= 0) {
                *gerr = GNUTLS_E_TIMEDOUT;
                return -1;
            }
            short ev = gnutls_record_get_direction(sess) ? POLLOUT : POLLIN;
            if (net_wait(s->fd, ev, (int)left) <= 0) {
                *gerr = GNUTLS_E_TIMEDOUT;
                return -1;
            }
            continue;
        }
        if (!gnutls_error_is_fatal(g))
            continue;
        *gerr = g;
        return -1;
    }
}

static const char *alert_text(gnutls_session_t sess, int g)
{
    if (g == GNUTLS_E_FATAL_ALERT_RECEIVED || g == GNUTLS_E_WARNING_ALERT_RECEIVED) {
        const char *a = gnutls_alert_get_name(gnutls_alert_get(sess));
        return a ? a : "unknown alert";
    }
    return gnutls_strerror(g);
}

int net_tls_server_start(struct net_tls_server *t, struct net_stream *s, int timeout_ms,
                         char *who, size_t wholen)
{
    gnutls_session_t sess;
    int g = gnutls_init(&sess, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (g < 0)
        return vd_err_set(VD_E_NOMEM, "%s: TLS: %s", s->peer, gnutls_strerror(g));
    gnutls_session_set_ptr(sess, t);
    if (t->psk) {
        g = gnutls_priority_set_direct(sess, PRIO_PSK, NULL);
        if (g >= 0)
            g = gnutls_credentials_set(sess, GNUTLS_CRD_PSK, t->psk);
    } else {
        g = gnutls_priority_set_direct(sess, PRIO_CERT, NULL);
        if (g >= 0)
            g = gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, t->cert);
        if (g >= 0 && t->require_client_cert) {
            gnutls_certificate_server_set_request(sess, GNUTLS_CERT_REQUIRE);
            gnutls_session_set_verify_cert(sess, NULL, 0);
        }
    }
    if (g < 0) {
        gnutls_deinit(sess);
        return vd_err_set(VD_E_NET_CONNECT, "%s: TLS setup: %s", s->peer, gnutls_strerror(g));
    }
    gnutls_transport_set_int(sess, s->fd);
    gnutls_handshake_set_timeout(sess, 0);
    int gerr = 0;
    if (handshake(sess, s, timeout_ms, &gerr) < 0) {
        const char *why = alert_text(sess, gerr);
        /* Tell the client why (bad key, no common cipher...), best effort. */
        if (gerr != GNUTLS_E_TIMEDOUT && gerr != GNUTLS_E_PREMATURE_TERMINATION)
            gnutls_alert_send_appropriate(sess, gerr);
        int code = VD_E_NET_CONNECT;
        if (t->psk && (gerr == GNUTLS_E_DECRYPTION_FAILED ||
                       gerr == GNUTLS_E_INSUFFICIENT_CREDENTIALS))
            code = VD_E_AUTH;
        gnutls_deinit(sess);
        return vd_err_set(code, "%s: TLS handshake failed: %s", s->peer, why);
    }
    if (t->psk) {
        gnutls_datum_t u = { NULL, 0 };
        if (gnutls_psk_server_get_username2(sess, &u) == 0 && u.data)
            snprintf(who, wholen, "PSK identity %.*s", (int)u.size, (const char *)u.data);
        else
            snprintf(who, wholen, "PSK");
    } else {
        snprintf(who, wholen, "%s", t->require_client_cert ? "X.509, verified client certificate"
                                                           : "X.509");
    }
    /* The negotiated protocol and cipher, for the connection log line. */
    char *desc = gnutls_session_get_desc(sess);
    if (desc) {
        size_t l = strlen(who);
        snprintf(who + l, wholen - l, ", %s", desc);
        gnutls_free(desc);
    }
    s->tls = sess;
    return 0;
}

/* ---- client ---------------------------------------------------------------- */

static int fingerprints(gnutls_session_t sess, unsigned char sha1[20], unsigned char sha256[32])
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(sess, &n);
    if (!certs || n == 0)
        return -1;
    size_t l1 = 20, l2 = 32;
    if (gnutls_fingerprint(GNUTLS_DIG_SHA1, &certs[0], sha1, &l1) < 0 ||
        gnutls_fingerprint(GNUTLS_DIG_SHA256, &certs[0], sha256, &l2) < 0)
        return -1;
    return 0;
}

int net_tls_peer_fp(const struct net_stream *s, unsigned char sha1[20],
                    unsigned char sha256[32])
{
    if (!s->tls)
        return -1;
    return fingerprints((gnutls_session_t)s->tls, sha1, sha256);
}

static int check_server(const struct net_tls_client *c, gnutls_session_t sess,
                        struct net_stream *s)
{
    if (gnutls_auth_get_type(sess) == GNUTLS_CRD_PSK)
        return 0;     /* the pre-shared key authenticated the server */
    unsigned char sha1[20], sha256[32];
    char f1[61], f2[97];
    if (fingerprints(sess, sha1, sha256) < 0)
        return vd_err_set(VD_E_CERT, "%s: the server presented no certificate", s->peer);
    net_tls_format_fp(sha1, 20, f1);
    net_tls_format_fp(sha256, 32, f2);
    if (c->thumbprint) {
        unsigned char want[32];
        int n = net_tls_parse_thumbprint(c->thumbprint, want);
        if (n < 0)
            return vd_err_set(VD_E_INVAL, "thumbPrint \"%s\" is neither a SHA-1 nor a SHA-256 "
                              "fingerprint (colon-separated hex)", c->thumbprint);
        if (memcmp(want, n == 20 ? sha1 : sha256, (size_t)n) == 0)
            return 0;
        char w[97];
        net_tls_format_fp(want, (size_t)n, w);
        return vd_err_set(VD_E_CERT, "%s: server certificate thumbprint mismatch: expected "
                          "%s %s, the server presented %s %s (SHA-256 %s)", s->peer,
                          n == 20 ? "SHA-1" : "SHA-256", w, n == 20 ? "SHA-1" : "SHA-256",
                          n == 20 ? f1 : f2, f2);
    }
    if (!c->verify_chain)
        return 0;
    unsigned status = 0;
    int g = gnutls_certificate_verify_peers3(sess, c->hostname, &status);
    if (g < 0 || status != 0) {
        gnutls_datum_t txt = { NULL, 0 };
        if (g >= 0)
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0);
        int rc = vd_err_set(VD_E_CERT, "%s: server certificate not trusted (%s); give its "
                            "thumbprint (SHA-1 %s) or a CA file", s->peer,
                            g < 0 ? gnutls_strerror(g) : txt.data ? (char *)txt.data : "invalid",
                            f1);
        gnutls_free(txt.data);
        return rc;
    }
    return 0;
}

struct client_creds {
    gnutls_certificate_credentials_t cert;
    gnutls_psk_client_credentials_t psk;
};

static void free_client_creds(void *p)
{
    struct client_creds *h = p;
    if (!h)
        return;
    gnutls_certificate_free_credentials(h->cert);
    if (h->psk)
        gnutls_psk_free_client_credentials(h->psk);
    free(h);
}

static int is_auth_alert(gnutls_session_t sess, int g)
{
    if (g == GNUTLS_E_DECRYPTION_FAILED)
        return 1;
    if (g != GNUTLS_E_FATAL_ALERT_RECEIVED)
        return 0;
    switch (gnutls_alert_get(sess)) {
    case GNUTLS_A_UNKNOWN_PSK_IDENTITY: case GNUTLS_A_DECRYPT_ERROR:
    case GNUTLS_A_BAD_RECORD_MAC: case GNUTLS_A_ILLEGAL_PARAMETER:
    case GNUTLS_A_ACCESS_DENIED: case GNUTLS_A_CERTIFICATE_REQUIRED:
    case GNUTLS_A_HANDSHAKE_FAILURE: case GNUTLS_A_DECRYPTION_FAILED:
        return 1;
    default:
        return 0;
    }
}

int net_tls_client_start(const struct net_tls_client *c, struct net_stream *s, int timeout_ms)
{
    gnutls_session_t sess = NULL;
    gnutls_certificate_credentials_t cert = NULL;
    gnutls_psk_client_credentials_t psk = NULL;
    int rc = 0;
    int g = gnutls_init(&sess, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (g < 0)
        return vd_err_set(VD_E_NOMEM, "%s: TLS: %s", s->peer, gnutls_strerror(g));
    if ((g = gnutls_certificate_allocate_credentials(&cert)) < 0)
        goto gfail;
    if (!c->thumbprint && c->verify_chain) {
        gnutls_certificate_set_x509_system_trust(cert);
        if (c->ca_file) {
            g = gnutls_certificate_set_x509_trust_file(cert, c->ca_file, GNUTLS_X509_FMT_PEM);
            if (g < 0) {
                rc = vd_err_set(VD_E_INVAL, "TLS CA file %s: %s", c->ca_file, gnutls_strerror(g));
                goto out;
            }
        }
    }
    if ((g = gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cert)) < 0)
        goto gfail;
    if (c->psk_identity) {
        if ((g = gnutls_psk_allocate_client_credentials(&psk)) < 0)
            goto gfail;
        const char *k = c->psk_key ? c->psk_key : "";
        size_t kl = strlen(k);
        unsigned char *raw = malloc(kl / 2 + 1);
        long n = raw ? hex_decode(k, kl, raw) : -1;
        gnutls_datum_t key;
        if (n > 0) {
            key = (gnutls_datum_t){ raw, (unsigned)n };
        } else {
            /* Not hex: the password's own bytes are the key. */
            key = (gnutls_datum_t){ (unsigned char *)k, (unsigned)kl };
        }
        g = kl ? gnutls_psk_set_client_credentials(psk, c->psk_identity, &key, GNUTLS_PSK_KEY_RAW)
               : GNUTLS_E_INVALID_REQUEST;
        if (raw) {
            memset(raw, 0, kl / 2 + 1);
            free(raw);
        }
        if (g < 0) {
            rc = vd_err_set(VD_E_AUTH, "%s: cannot use the credentials of '%s' as a TLS "
                            "pre-shared key: %s", s->peer, c->psk_identity,
                            kl ? gnutls_strerror(g) : "empty password");
            goto out;
        }
        if ((g = gnutls_credentials_set(sess, GNUTLS_CRD_PSK, psk)) < 0)
            goto gfail;
    }
    if ((g = gnutls_priority_set_direct(sess, psk ? PRIO_PSK : PRIO_CERT, NULL)) < 0)
        goto gfail;
    if (c->hostname && !c->thumbprint)
        gnutls_server_name_set(sess, GNUTLS_NAME_DNS, c->hostname, strlen(c->hostname));
    gnutls_transport_set_int(sess, s->fd);
    gnutls_handshake_set_timeout(sess, 0);
    int gerr = 0;
    if (handshake(sess, s, timeout_ms, &gerr) < 0) {
        const char *why = alert_text(sess, gerr);
        if (psk && is_auth_alert(sess, gerr))
            rc = vd_err_set(VD_E_AUTH, "%s: the server rejected the credentials of '%s' "
                            "(TLS-PSK handshake failed: %s)", s->peer, c->psk_identity, why);
        else if (gerr == GNUTLS_E_FATAL_ALERT_RECEIVED &&
                 gnutls_alert_get(sess) == GNUTLS_A_CERTIFICATE_REQUIRED)
            rc = vd_err_set(VD_E_AUTH, "%s: the server requires a client certificate", s->peer);
        else
            rc = vd_err_set(VD_E_NET_CONNECT, "%s: TLS handshake failed: %s", s->peer, why);
        goto out;
    }
    s->tls = sess;
    if ((rc = check_server(c, sess, s)) < 0) {
        s->tls = NULL;
        goto out;
    }
    /* The session uses the credentials until it is freed (net_close). */
    struct client_creds *h = malloc(sizeof *h);
    if (!h) {
        s->tls = NULL;
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    h->cert = cert;
    h->psk = psk;
    s->tls_creds = h;
    s->tls_free = free_client_creds;
    return 0;
gfail:
    rc = vd_err_set(VD_E_NET_CONNECT, "%s: TLS setup: %s", s->peer, gnutls_strerror(g));
out:
    if (sess)
        gnutls_deinit(sess);
    if (cert)
        gnutls_certificate_free_credentials(cert);
    if (psk)
        gnutls_psk_free_client_credentials(psk);
    return rc;
}
