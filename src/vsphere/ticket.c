/* ticket.c - NFC tickets from the vim25 session: the NfcService moref
 * (RetrieveInternalContent, never assumed), the ticket calls VDDK makes
 * (NfcGetVmFiles for read-only opens, NfcRandomAccessOpenDisk for
 * read-write ones) and the host's NFC library version. */
#include <stdlib.h>
#include <string.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define NOMEM() vd_err_set(VD_E_NOMEM, "out of memory")

static int nfc_service(struct vs_session *s, char **out)
{
    *out = NULL;
    static const char body[] = "<RetrieveInternalContent xmlns=\"urn:vim25\"><_this type="
                               "\"ServiceInstance\">ServiceInstance</_this>"
                               "</RetrieveInternalContent>";
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "RetrieveInternalContent", body, 0, &doc, &r);
    if (rc < 0) {
        if (rc == -VD_E_UNSUPPORTED)
            vd_err_prefix("server %s offers no NFC service (RetrieveInternalContent)", s->peer);
        return rc;
    }
    xmlNode *rv = vs_xml_child(r, "returnval");
    char *id = rv ? vs_xml_child_text(rv, "nfcService") : NULL;
    xmlFreeDoc(doc);
    if (!id || !*id) {
        free(id);
        return vd_err_set(VD_E_UNSUPPORTED, "server %s: its internal content names no "
                          "nfcService", s->peer);
    }
    *out = id;
    return 0;
}

void vs_ticket_free(struct vs_ticket *t)
{
    if (!t)
        return;
    free(t->host);
    free(t->service);
    free(t->session);
    free(t->thumbprint);
    free(t->version);
    memset(t, 0, sizeof *t);
}

int vs_parse_ticket(struct vs_session *s, const char *method, xmlNode *r,
                    struct vs_ticket *t)
{
    xmlNode *rv = vs_xml_child(r, "returnval");
    if (!rv)
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s returned no ticket", s->peer,
                          method);
    char *port = vs_xml_child_text(rv, "port");
    t->host = vs_xml_child_text(rv, "host");
    t->service = vs_xml_child_text(rv, "service");
    t->session = vs_xml_child_text(rv, "sessionId");
    t->thumbprint = vs_xml_child_text(rv, "sslThumbprint");
    t->version = vs_xml_child_text(rv, "serviceVersion");
    long p = port ? strtol(port, NULL, 10) : 0;
    free(port);
    t->port = p > 0 && p < 65536 ? (unsigned)p : 902;
    if (t->host && !*t->host) {
        free(t->host);
        t->host = NULL;
    }
    if (!t->service || !*t->service || !t->session || !*t->session)
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s returned a ticket without %s",
                          s->peer, method, !t->service || !*t->service ? "service"
                                                                       : "sessionId");
    return 0;
}

int vs_nfc_ticket(struct vs_session *s, const char *vm, int disk_key, const char *host,
                  struct vs_ticket *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    char *svc = s->nfc_service ? vd_strdup(s->nfc_service) : NULL;
    pthread_mutex_unlock(&s->lock);
    int rc = 0;
    if (!svc) {
        if ((rc = nfc_service(s, &svc)) < 0)
            return rc;
        pthread_mutex_lock(&s->lock);
        if (!s->nfc_service)
            s->nfc_service = vd_strdup(svc);
        pthread_mutex_unlock(&s->lock);
    }
    const char *method = disk_key < 0 ? "NfcGetVmFiles" : "NfcRandomAccessOpenDisk";
    char *esvc = vs_xml_escape(svc), *evm = vs_xml_escape(vm);
    char *ehost = host ? vs_xml_escape(host) : NULL;
    char *body = NULL;
    if (esvc && evm && (!host || ehost)) {
        if (disk_key < 0)
            body = vd_asprintf("<NfcGetVmFiles xmlns=\"urn:vim25\"><_this type=\"NfcService\">"
                               "%s</_this><vm type=\"VirtualMachine\">%s</vm></NfcGetVmFiles>",
                               esvc, evm);
        else
            body = vd_asprintf("<NfcRandomAccessOpenDisk xmlns=\"urn:vim25\"><_this type=\""
                               "NfcService\">%s</_this><vm type=\"VirtualMachine\">%s</vm>"
                               "<diskDeviceKey>%d</diskDeviceKey>%s%s%s"
                               "</NfcRandomAccessOpenDisk>", esvc, evm, disk_key,
                               ehost ? "<hostForAccess type=\"HostSystem\">" : "",
                               ehost ? ehost : "", ehost ? "</hostForAccess>" : "");
    }
    free(esvc);
    free(evm);
    free(ehost);
    free(svc);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    rc = vs_soap_call(s, method, body, 0, &doc, &r);
    free(body);
    if (rc < 0) {
        vd_err_prefix("NFC ticket (%s for VM %s)", method, vm);
        return rc;
    }
    rc = vs_parse_ticket(s, method, r, out);
    xmlFreeDoc(doc);
    if (rc < 0)
        vs_ticket_free(out);
    return rc;
}

int vs_nfc_lib_version(struct vs_session *s, const char *host, unsigned *version)
{
    *version = 0;
    pthread_mutex_lock(&s->lock);
    char *svc = s->nfc_service ? vd_strdup(s->nfc_service) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!svc)
        return vd_err_set(VD_E_INVAL, "no NFC service known yet");
    char *esvc = vs_xml_escape(svc), *eh = vs_xml_escape(host);
    char *body = esvc && eh ? vd_asprintf("<NfcGetServerNfcLibVersion xmlns=\"urn:vim25\">"
                                          "<_this type=\"NfcService\">%s</_this><hostForAccess "
                                          "type=\"HostSystem\">%s</hostForAccess>"
                                          "</NfcGetServerNfcLibVersion>", esvc, eh)
                            : NULL;
    free(svc);
    free(esvc);
    free(eh);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "NfcGetServerNfcLibVersion", body, 0, &doc, &r);
    free(body);
    if (rc < 0)
        return rc;
    char *v = vs_xml_child_text(r, "returnval");
    xmlFreeDoc(doc);
    char *end = NULL;
    long n = v ? strtol(v, &end, 10) : -1;
    int ok = v && end != v && !*end && n >= 0 && n < 1000;
    free(v);
    if (!ok)
        return vd_err_set(VD_E_NET_CONNECT, "server %s: NfcGetServerNfcLibVersion returned no "
                          "number", s->peer);
    *version = (unsigned)n;
    return 0;
}

const char *vs_session_server(const struct vs_session *s) { return s->server; }
