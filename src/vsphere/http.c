/* http.c - HTTPS for the vSphere client: libcurl handles that share one
 * connection pool, certificate checks (thumbprint pinning or the CA
 * store), and the mapping of transfer failures to vd_err codes. */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_priv.h"
#include "../net/net_tls.h"
#include "../util/err.h"
#include "../util/fileio.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int vs_curl_global(void);
int vs_curl_global(void)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return vd_err_set(VD_E_NET_CONNECT, "libcurl cannot be initialised: %s",
                          curl_easy_strerror(global_rc));
    return 0;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h;
    (void)access;
    struct vs_session *s = ctx;
    pthread_mutex_lock(&s->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h;
    struct vs_session *s = ctx;
    pthread_mutex_unlock(&s->share_lock[data]);
}

int vs_share_init(struct vs_session *s);
int vs_share_init(struct vs_session *s)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&s->share_lock[i], NULL);
    s->share = curl_share_init();
    if (!s->share)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    curl_share_setopt(s->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(s->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(s->share, CURLSHOPT_USERDATA, s);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    return 0;
}

void vs_share_free(struct vs_session *s);
void vs_share_free(struct vs_session *s)
{
    if (s->share)
        curl_share_cleanup(s->share);
    s->share = NULL;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&s->share_lock[i]);
}

/* TLS and timeout settings common to every handle of a session. */
static void set_common(struct vs_session *s, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    long secs = (s->read_timeout_ms + 999) / 1000;
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs < 1 ? 1L : secs);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* The session's handles share one connection cache, and a transfer
     * that ends with more than MAXCONNECTS connections in it closes the
     * oldest: libcurl's default (5) would close and reopen a connection,
     * TLS handshake and all, for nearly every request once more than a
     * few threads read at once. */
    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)VS_MAX_CONNECTIONS);
    if (s->pin) {
        /* The thumbprint was checked on the probe connection; every
         * connection must present that certificate's key. */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, s->pin);
        /* No CA store then: libcurl's GnuTLS backend would otherwise read
         * all of /etc/ssl/certs for every new connection, checked or not. */
        curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    } else {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s->verify_chain ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s->verify_chain ? 2L : 0L);
        if (s->ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    }
}

void vs_curl_setup_again(struct vs_session *s, CURL *h)
{
    curl_easy_reset(h);
    set_common(s, h);
    if (s->share)
        curl_easy_setopt(h, CURLOPT_SHARE, s->share);
}

CURL *vs_curl_new(struct vs_session *s)
{
    CURL *h = curl_easy_init();
    if (h)
        vs_curl_setup_again(s, h);
    return h;
}

char *vs_url_escape(const char *str)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(str);
    char *out = malloc(3 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '/') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* ---- certificates ---------------------------------------------------- */

struct peer_cert {
    unsigned char sha1[20], sha256[32], spki256[32];
};

static int cert_digests(const gnutls_datum_t *der, struct peer_cert *pc)
{
    size_t n = sizeof pc->sha1;
    if (gnutls_fingerprint(GNUTLS_DIG_SHA1, der, pc->sha1, &n) < 0)
        return -1;
    n = sizeof pc->sha256;
    if (gnutls_fingerprint(GNUTLS_DIG_SHA256, der, pc->sha256, &n) < 0)
        return -1;
    gnutls_x509_crt_t crt;
    gnutls_pubkey_t key;
    gnutls_datum_t spki = { NULL, 0 };
    int ok = -1;
    if (gnutls_x509_crt_init(&crt) < 0)
        return -1;
    if (gnutls_pubkey_init(&key) < 0) {
        gnutls_x509_crt_deinit(crt);
        return -1;
    }
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_pubkey_import_x509(key, crt, 0) >= 0 &&
        gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &spki) >= 0 &&
        gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, pc->spki256) >= 0)
        ok = 0;
    gnutls_free(spki.data);
    gnutls_pubkey_deinit(key);
    gnutls_x509_crt_deinit(crt);
    return ok;
}

static char *base64(const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        *o++ = tab[v >> 18 & 63];
        *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tab[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Connect once without checking anything and read the certificate the
 * server presents.  Nothing is sent but the TLS handshake. */
static int probe_cert(struct vs_session *s, struct peer_cert *pc)
{
    CURL *h = curl_easy_init();
    if (!h)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, s->base);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        int r = vs_curl_fail(s, h, rc, errbuf, 0, "connecting");
        curl_easy_cleanup(h);
        return r;
    }
    /* libcurl's GnuTLS backend gives no session pointer for a connect-only
     * handle, but it does give the peer's certificates (PEM). */
    struct curl_certinfo *ci = NULL;
    int r = vd_err_set(VD_E_CERT, "server %s presented no certificate", s->peer);
    if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci &&
        ci->num_of_certs > 0) {
        const char *pem = NULL;
        for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
            if (strncmp(l->data, "Cert:", 5) == 0)
                pem = l->data + 5;
        gnutls_x509_crt_t crt;
        gnutls_datum_t in = { (unsigned char *)pem, pem ? (unsigned)strlen(pem) : 0 };
        gnutls_datum_t der = { NULL, 0 };
        if (pem && gnutls_x509_crt_init(&crt) >= 0) {
            if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) >= 0 &&
                gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) >= 0 &&
                cert_digests(&der, pc) == 0)
                r = 0;
            else
                r = vd_err_set(VD_E_CERT, "server %s: its certificate cannot be decoded",
                               s->peer);
            gnutls_free(der.data);
            gnutls_x509_crt_deinit(crt);
        }
    }
    curl_easy_cleanup(h);
    return r;
}

int vs_probe_session_thumbprints(struct vs_session *s, char *sha1, char *sha256);
int vs_probe_session_thumbprints(struct vs_session *s, char *sha1, char *sha256)
{
    struct peer_cert pc;
    int rc = probe_cert(s, &pc);
    if (rc < 0)
        return rc;
    net_tls_format_fp(pc.sha1, sizeof pc.sha1, sha1);
    net_tls_format_fp(pc.sha256, sizeof pc.sha256, sha256);
    return 0;
}

/* With a thumbprint: check it against the certificate the server presents
 * and pin every later connection to that certificate's key. */
int vs_check_thumbprint(struct vs_session *s);
int vs_check_thumbprint(struct vs_session *s)
{
    if (!s->thumbprint)
        return 0;
    unsigned char want[32];
    int n = net_tls_parse_thumbprint(s->thumbprint, want);
    if (n != 20 && n != 32)
        return vd_err_set(VD_E_INVAL, "thumbPrint \"%s\" is neither a SHA-1 nor a SHA-256 "
                          "fingerprint (colon-separated hex)", s->thumbprint);
    struct peer_cert pc;
    int rc = probe_cert(s, &pc);
    if (rc < 0)
        return rc;
    const unsigned char *have = n == 20 ? pc.sha1 : pc.sha256;
    if (memcmp(want, have, (size_t)n) != 0) {
        char exp[3 * 32], act[3 * 32];
        net_tls_format_fp(want, (size_t)n, exp);
        net_tls_format_fp(have, (size_t)n, act);
        return vd_err_set(VD_E_CERT, "server %s: certificate thumbprint mismatch: expected %s, "
                          "the server presented %s", s->peer, exp, act);
    }
    char *b = base64(pc.spki256, sizeof pc.spki256);
    if (!b || !(s->pin = vd_asprintf("sha256//%s", b))) {
        free(b);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    free(b);
    return 0;
}

int vs_probe_thumbprints(const struct vs_conf *conf, char *sha1, char *sha256)
{
    int rc = vs_curl_global();
    if (rc < 0)
        return rc;
    struct vs_session s;
    memset(&s, 0, sizeof s);
    s.port = conf->port ? conf->port : 443;
    s.connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 30000;
    int v6 = strchr(conf->server, ':') && conf->server[0] != '[';
    s.peer = vd_asprintf(v6 ? "[%s]:%u" : "%s:%u", conf->server, s.port);
    s.base = s.peer ? vd_asprintf("https://%s", s.peer) : NULL;
    if (!s.base)
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    else
        rc = vs_probe_session_thumbprints(&s, sha1, sha256);
    free(s.peer);
    free(s.base);
    return rc;
}

/* ---- errors ---------------------------------------------------------- */

int vs_curl_fail(struct vs_session *s, CURL *h, CURLcode rc, const char *errbuf, int transfer,
                 const char *what)
{
    const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);
    long oserr = 0;
    if (h)
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s: the host name does not resolve "
                          "(%s)", s->peer, what, detail);
    case CURLE_COULDNT_CONNECT:
        if (oserr == ECONNREFUSED)
            return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_REFUSED,
                              "server %s: %s: connection refused (nothing listens there%s)",
                              s->peer, what, transfer ? "; the server went away" : "");
        if (oserr)
            return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_CONNECT,
                              "server %s: %s: cannot connect (%s): %s", s->peer, what,
                              strerror((int)oserr), detail);
        return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_CONNECT,
                          "server %s: %s: cannot connect: %s", s->peer, what, detail);
    case CURLE_OPERATION_TIMEDOUT:
        return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_CONNECT,
                          "server %s: %s: timed out (%s; limits: connect %d ms, no progress "
                          "%d ms)", s->peer, what, detail, s->connect_timeout_ms,
                          s->read_timeout_ms);
    case CURLE_PEER_FAILED_VERIFICATION:
#if CURLE_SSL_CACERT != CURLE_PEER_FAILED_VERIFICATION
    case CURLE_SSL_CACERT:
#endif
    {
        char sha1[64] = "", sha256[112] = "";
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", detail);
        if (vs_probe_session_thumbprints(s, sha1, sha256) < 0)
            snprintf(sha1, sizeof sha1, "unknown");
        return vd_err_set(VD_E_CERT, "server %s: %s: its certificate is not trusted (%s); "
                          "pass its thumbprint to pin it (SHA-1 %s, SHA-256 %s), or add its CA",
                          s->peer, what, saved, sha1, sha256);
    }
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return vd_err_set(VD_E_CERT, "server %s: %s: the server now presents a different "
                          "certificate key than the one whose thumbprint was checked", s->peer,
                          what);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
        return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_CONNECT,
                          "server %s: %s: TLS handshake failed: %s", s->peer, what, detail);
    case CURLE_OUT_OF_MEMORY:
        return vd_err_set(VD_E_NOMEM, "out of memory");
    default:
        return vd_err_set(transfer ? VD_E_NET_LOST : VD_E_NET_CONNECT,
                          "server %s: %s: %s", s->peer, what, detail);
    }
}

char *vs_cookie_get(struct vs_session *s, unsigned *gen)
{
    pthread_mutex_lock(&s->lock);
    char *c = s->cookie ? vd_strdup(s->cookie) : NULL;
    if (gen)
        *gen = s->cookie_gen;
    pthread_mutex_unlock(&s->lock);
    return c;
}
