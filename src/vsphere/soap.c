/* soap.c - vim25 SOAP calls: one envelope per call, posted on the
 * session's handle with its cookie; replies and faults parsed with
 * libxml2 by local name (servers differ in the prefixes they use). */
#include <libxml/parser.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define MAX_REPLY (64u << 20)   /* a larger SOAP reply is refused */

char *vs_xml_escape(const char *str)
{
    size_t n = 0;
    for (const char *p = str; *p; p++)
        n += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : (*p == '"' || *p == '\'') ? 6 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = str; *p; p++) {
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;"
                        : *p == '"' ? "&quot;" : *p == '\'' ? "&apos;" : NULL;
        if (rep) {
            memcpy(o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

xmlNode *vs_xml_next(xmlNode *n, const char *name)
{
    for (n = n ? n->next : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

xmlNode *vs_xml_child(xmlNode *n, const char *name)
{
    if (!n)
        return NULL;
    for (xmlNode *c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

xmlNode *vs_xml_find(xmlNode *n, const char *name)
{
    if (!n)
        return NULL;
    for (xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp((const char *)c->name, name) == 0)
            return c;
        xmlNode *r = vs_xml_find(c, name);
        if (r)
            return r;
    }
    return NULL;
}

char *vs_xml_text(xmlNode *n)
{
    xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
    char *r = vd_strdup(t ? (const char *)t : "");
    xmlFree(t);
    return r;
}

char *vs_xml_child_text(xmlNode *n, const char *name)
{
    xmlNode *c = vs_xml_child(n, name);
    return c ? vs_xml_text(c) : NULL;
}

char *vs_xml_type(xmlNode *n)
{
    xmlChar *t = xmlGetNsProp(n, (const xmlChar *)"type",
                              (const xmlChar *)"http://www.w3.org/2001/XMLSchema-instance");
    if (!t)
        return NULL;
    const char *v = (const char *)t;
    const char *colon = strchr(v, ':');   /* "vim25:VirtualDisk" */
    char *r = vd_strdup(colon ? colon + 1 : v);
    xmlFree(t);
    return r;
}

struct reply_buf {
    char *p;
    size_t n, cap;
    int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct reply_buf *b = ctx;
    size_t n = size * nmemb;
    if (b->n + n > MAX_REPLY) {
        b->too_big = 1;
        return 0;
    }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

/* Keep the session cookie the server sets (Login). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct vs_session *s = ctx;
    size_t n = size * nmemb;
    static const char key[] = "set-cookie:";
    if (n > sizeof key - 1 && strncasecmp(data, key, sizeof key - 1) == 0) {
        const char *v = data + sizeof key - 1;
        const char *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        if (end - v > 20 && strncmp(v, "vmware_soap_session=", 20) == 0) {
            const char *e = v;
            while (e < end && *e != ';' && *e != '\r' && *e != '\n')
                e++;
            char *c = vd_asprintf("%.*s", (int)(e - v), v);
            if (c) {
                /* Called with s->lock held (vs_soap_call). */
                free(s->cookie);
                s->cookie = c;
                s->cookie_gen++;
            }
        }
    }
    return n;
}

/* The fault's type (detail's first element, or the faultstring) and text. */
static int fault_to_err(struct vs_session *s, xmlNode *fault, const char *method, int *relogin)
{
    char *text = vs_xml_child_text(fault, "faultstring");
    xmlNode *detail = vs_xml_child(fault, "detail");
    xmlNode *d = NULL;
    for (xmlNode *c = detail ? detail->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) {
            d = c;
            break;
        }
    char *type = d ? vs_xml_type(d) : NULL;
    if (!type && d) {
        type = vd_strdup((const char *)d->name);
        size_t n = type ? strlen(type) : 0;
        if (n > 5 && strcmp(type + n - 5, "Fault") == 0)   /* NotAuthenticatedFault */
            type[n - 5] = '\0';
    }
    const char *t = type ? type : "";
    const char *msg = text && *text ? text : t;
    int code = VD_E_NET_CONNECT;
    if (strcmp(t, "NotAuthenticated") == 0) {
        *relogin = 1;
        code = VD_E_AUTH;
    } else if (strcmp(t, "InvalidLogin") == 0 || strcmp(t, "NoPermission") == 0 ||
               strcmp(t, "InvalidLocale") == 0) {
        code = strcmp(t, "NoPermission") == 0 ? VD_E_ACCESS : VD_E_AUTH;
    } else if (strcmp(t, "ManagedObjectNotFound") == 0) {
        code = VD_E_NOTFOUND;
    } else if (strcmp(t, "MethodNotFound") == 0 || strstr(msg, "no vmomi type") ||
               strstr(msg, "not implemented") || strcmp(t, "NotImplemented") == 0 ||
               strcmp(t, "NotSupported") == 0) {
        code = VD_E_UNSUPPORTED;
    }
    int rc = vd_err_set(code, "server %s: %s failed: %s%s%s%s", s->peer, method,
                        *t ? t : "fault", *t && msg != t ? " (" : "", msg != t ? msg : "",
                        *t && msg != t ? ")" : "");
    free(text);
    free(type);
    return rc;
}

int vs_soap_parse(struct vs_session *s, const char *method, const char *data, size_t n,
                  long status, xmlDoc **docp, xmlNode **reply, int *relogin)
{
    *docp = NULL;
    *reply = NULL;
    xmlDoc *doc = data && n && n <= INT32_MAX
                      ? xmlReadMemory(data, (int)n, "reply.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOBLANKS |
                                      XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
                      : NULL;
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *bodyn = root ? vs_xml_child(root, "Body") : NULL;
    if (!bodyn) {
        if (doc)
            xmlFreeDoc(doc);
        if (status == 401 || status == 403) {
            *relogin = 1;
            return vd_err_set(VD_E_AUTH, "server %s: %s: HTTP %ld (not logged in)", s->peer,
                              method, status);
        }
        if (status == 404)
            return vd_err_set(VD_E_NET_CONNECT, "server %s: no vSphere API at /sdk (HTTP 404); "
                              "is this a vCenter or ESXi host?", s->peer);
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s: the reply is not a SOAP envelope "
                          "(HTTP %ld)", s->peer, method, status);
    }
    xmlNode *first = NULL;
    for (xmlNode *c = bodyn->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE) {
            first = c;
            break;
        }
    if (first && strcmp((const char *)first->name, "Fault") == 0) {
        int r = fault_to_err(s, first, method, relogin);
        xmlFreeDoc(doc);
        return r;
    }
    if (!first) {
        xmlFreeDoc(doc);
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s: empty SOAP body (HTTP %ld)",
                          s->peer, method, status);
    }
    *docp = doc;
    *reply = first;
    return 0;
}

static int soap_once(struct vs_session *s, const char *method, const char *body, xmlDoc **docp,
                     xmlNode **reply, int *relogin)
{
    static const char head[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
        "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" "
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>";
    static const char tail[] = "</soapenv:Body></soapenv:Envelope>";
    char *env = vd_asprintf("%s%s%s", head, body, tail);
    char *action = vd_asprintf("SOAPAction: \"urn:vim25/%s\"",
                               s->api_version ? s->api_version : "6.5");
    char *url = vd_asprintf("%s/sdk", s->base);
    if (!env || !action || !url) {
        free(env);
        free(action);
        free(url);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    hdrs = curl_slist_append(hdrs, action);
    struct reply_buf rb = { 0 };
    char errbuf[CURL_ERROR_SIZE] = "";

    pthread_mutex_lock(&s->lock);
    CURL *h = s->soap;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, env);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(env));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_COOKIE, s->cookie);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK && !(rb.too_big && cc == CURLE_WRITE_ERROR)) {
        char what[128];
        snprintf(what, sizeof what, "%s", method);
        rc = vs_curl_fail(s, h, cc, errbuf, 0, what);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    pthread_mutex_unlock(&s->lock);
    curl_slist_free_all(hdrs);
    free(env);
    free(action);
    free(url);
    if (rc < 0) {
        free(rb.p);
        return rc;
    }
    if (rb.too_big) {
        free(rb.p);
        return vd_err_set(VD_E_NET_CONNECT, "server %s: %s: reply larger than %u MiB", s->peer,
                          method, MAX_REPLY >> 20);
    }
    rc = vs_soap_parse(s, method, rb.p, rb.n, status, docp, reply, relogin);
    free(rb.p);
    return rc;
}

int vs_soap_call(struct vs_session *s, const char *method, const char *body, int no_relogin,
                 xmlDoc **doc, xmlNode **reply)
{
    unsigned gen;
    free(vs_cookie_get(s, &gen));
    int relogin = 0;
    int rc = soap_once(s, method, body, doc, reply, &relogin);
    if (rc < 0 && relogin && !no_relogin && s->user) {
        /* The server forgot the session: log in again once and retry. */
        int r = vs_relogin(s, gen);
        if (r < 0)
            return r;
        relogin = 0;
        rc = soap_once(s, method, body, doc, reply, &relogin);
    }
    return rc;
}
