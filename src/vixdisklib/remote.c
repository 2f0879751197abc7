/* remote.c - ConnectEx for a server name: the NBD transport.
 *
 * The connection parameters and the config file become a struct
 * nbd_remote (where the server is, TLS, thumbprint, PSK credentials,
 * timeouts); the transport modes the caller lists are tried in order
 * ("nbdssl" falls through to a later "nbd" only when the server does not
 * offer TLS at all, never after a failed TLS handshake); a probe
 * connection checks the server, its certificate and the credentials
 * before ConnectEx returns.  Each Open makes its own connection. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vixdl.h"
#include "../net/nbd_proto.h"
#include "../net/net_tls.h"
#include "../util/fileio.h"

void vixdl_remote_free(struct nbd_remote *r)
{
    if (!r)
        return;
    free(r->host);
    free(r->unix_path);
    free(r->thumbprint);
    free(r->ca_file);
    free(r->psk_identity);
    if (r->psk_key)
        memset(r->psk_key, 0, strlen(r->psk_key));
    free(r->psk_key);
    free(r);
}

/* The modes to try, in order: 1 = nbdssl, 0 = nbd. */
static int parse_modes(const char *modes, int out[2], int *n)
{
    *n = 0;
    if (!modes || !*modes) {
        out[(*n)++] = 1;
        out[(*n)++] = 0;
        return 0;
    }
    char *copy = vd_strdup(modes);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        int m = strcasecmp(t, "nbdssl") == 0 ? 1 : strcasecmp(t, "nbd") == 0 ? 0 : -1;
        if (m < 0) {
            vixdl_log("ConnectEx: transport mode \"%s\" does not apply to a remote server "
                      "(this library offers nbdssl and nbd)", t);
            continue;
        }
        int dup = 0;
        for (int i = 0; i < *n; i++)
            dup |= out[i] == m;
        if (!dup && *n < 2)
            out[(*n)++] = m;
    }
    free(copy);
    return 0;
}

VixError vixdl_remote_connect(const VixDiskLibConnectParams *cp, const char *modes,
                              struct nbd_remote **out, const char **mode)
{
    const char *op = "ConnectEx";
    *out = NULL;
    struct nbd_remote *r = calloc(1, sizeof *r);
    if (!r)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    const char *sn = cp->serverName;
    int ok = 1;
    if (strncmp(sn, "unix:", 5) == 0) {
        ok = (r->unix_path = vd_strdup(sn + 5)) != NULL;
    } else if (sn[0] == '[' && sn[strlen(sn) - 1] == ']') {
        ok = (r->host = vd_asprintf("%.*s", (int)strlen(sn) - 2, sn + 1)) != NULL;
    } else {
        ok = (r->host = vd_strdup(sn)) != NULL;
    }
    if (cp->port > 65535) {
        vixdl_remote_free(r);
        return vixdl_fail(op, VIX_E_INVALID_ARG, "server %s: port %u is not a TCP port", sn,
                          (unsigned)cp->port);
    }
    r->port = cp->port ? cp->port : NBD_DEFAULT_PORT;
    if (cp->thumbPrint && *cp->thumbPrint) {
        unsigned char fp[32];
        if (net_tls_parse_thumbprint(cp->thumbPrint, fp) < 0) {
            vixdl_remote_free(r);
            return vixdl_fail(op, VIX_E_INVALID_ARG, "thumbPrint \"%s\" is neither a SHA-1 "
                              "nor a SHA-256 fingerprint (colon-separated hex)",
                              cp->thumbPrint);
        }
        ok = ok && (r->thumbprint = vd_strdup(cp->thumbPrint)) != NULL;
    }
    if (cp->credType == VIXDISKLIB_CRED_UID && cp->creds.uid.userName &&
        *cp->creds.uid.userName) {
        ok = ok && (r->psk_identity = vd_strdup(cp->creds.uid.userName)) != NULL;
        ok = ok && (r->psk_key = vd_strdup(cp->creds.uid.password ? cp->creds.uid.password
                                                                  : "")) != NULL;
    } else if (cp->credType == VIXDISKLIB_CRED_SESSIONID) {
        vixdl_log("ConnectEx: session-id credentials have no meaning for an NBD server; "
                  "not used");
    }
    const char *ca = vd_config_get("openvddk.net.CAFile");
    if (ca && *ca)
        ok = ok && (r->ca_file = vd_strdup(ca)) != NULL;
    if (!ok) {
        vixdl_remote_free(r);
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    r->verify_chain = vd_config_bool("openvddk.net.VerifyCertificate",
                            vd_config_bool("vixDiskLib.linuxSSL.verifyCertificates", 1));
    r->connect_timeout_ms = vd_config_ms("openvddk.net.ConnectTimeoutMs",
                                         "vixDiskLib.nfc.AcceptTimeoutMs", 30000);
    r->read_timeout_ms = vd_config_ms("openvddk.net.ReadTimeoutMs", "vixDiskLib.nfc.ReadTimeoutMs",
                                      60000);
    r->write_timeout_ms = vd_config_ms("openvddk.net.WriteTimeoutMs",
                                       "vixDiskLib.nfc.WriteTimeoutMs", 60000);
    long inflight = vd_config_long("openvddk.net.MaxInFlight", 64);
    r->max_inflight = inflight < 1 ? 1 : inflight > 1024 ? 1024 : (unsigned)inflight;
    long rq = vd_config_long("openvddk.net.RequestSize", 2l << 20);
    r->max_request = rq < 4096 ? 4096 : rq > (long)NBD_MAX_PAYLOAD ? NBD_MAX_PAYLOAD
                                                                  : (uint32_t)rq;

    int list[2], n;
    if (parse_modes(modes, list, &n) < 0) {
        vixdl_remote_free(r);
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    if (n == 0) {
        vixdl_remote_free(r);
        return vixdl_fail(op, VIX_E_CANNOT_CONNECT_TO_HOST, "server %s: none of the transport "
                          "modes \"%s\" reaches a remote server (available: nbdssl, nbd)", sn,
                          modes);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        r->tls = list[i];
        if (!r->tls && r->psk_identity)
            vixdl_log("ConnectEx: server %s: transport nbd sends no credentials (TLS-PSK "
                      "needs nbdssl)", sn);
        int no_tls = 0;
        vd_err_clear();
        rc = nbd_client_probe(r, &no_tls);
        if (rc == 0) {
            *mode = r->tls ? "nbdssl" : "nbd";
            vixdl_log("ConnectEx: server %s: transport %s", sn, *mode);
            *out = r;
            return VIX_OK;
        }
        if (r->tls && no_tls && i + 1 < n) {
            vixdl_warn("ConnectEx: %s; continuing without TLS (transport nbd, as the "
                       "transport modes allow)", vd_err_msg());
            continue;
        }
        break;
    }
    VixError e = vixdl_fail_engine(op, rc);
    vixdl_remote_free(r);
    return e;
}
