/* vs_priv.h - what the files of src/vsphere share. */
#ifndef VD_VSPHERE_PRIV_H
#define VD_VSPHERE_PRIV_H

#include <curl/curl.h>
#include <libxml/tree.h>
#include <pthread.h>

#include "vsphere.h"

/* Idle connections a session keeps open for reuse: enough for every
 * async worker (openvddk.async.remoteThreads) times a few ranges each. */
#define VS_MAX_CONNECTIONS 64

struct vs_session {
    /* Copies of the configuration. */
    char *server, *thumbprint, *ca_file, *user, *password, *api_version;
    unsigned port;
    int verify_chain, connect_timeout_ms, read_timeout_ms;
    unsigned parallel;
    size_t range_bytes;

    char *base;             /* "https://host:port" */
    char *peer;             /* "host:port" for messages */
    char *pin;              /* "sha256//BASE64" of the checked key, or NULL */
    CURLSH *share;          /* connections and TLS sessions of every handle */
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

    pthread_mutex_t lock;   /* cookie, soap handle, relogin */
    CURL *soap;
    char *cookie;           /* "vmware_soap_session=..." */
    unsigned cookie_gen;    /* bumped on every relogin */
    int logged_in;          /* we made the session: log out at close */

    /* From RetrieveServiceContent. */
    char *session_mgr, *prop_collector, *root_folder, *view_mgr, *auth_mgr;
    char *api_type, *server_api_version;
    char *nfc_service;      /* NfcService moref, once asked for (under lock) */
    /* The datacenter path of the last VM looked up (under lock): a VM does
     * not change datacenter under its moref, and the walk up the inventory
     * costs a call per level on every Open. */
    char *dc_vm, *dc_path;
};

/* ---- http.c ---- */

/* A new easy handle with the session's TLS, timeout and share settings. */
CURL *vs_curl_new(struct vs_session *s);
/* Reset h (curl_easy_reset) and apply those settings again. */
void vs_curl_setup_again(struct vs_session *s, CURL *h);
/* Map a failed transfer to a vd_err (message: "server PEER: what: ...").
 * transfer: the failure happened after the connection was up (mid-read),
 * so connection errors become VD_E_NET_LOST. */
int vs_curl_fail(struct vs_session *s, CURL *h, CURLcode rc, const char *errbuf, int transfer,
                 const char *what);
/* Copy of the current cookie header value (malloc'd) and its generation. */
char *vs_cookie_get(struct vs_session *s, unsigned *gen);
/* Log in again after the server forgot the session, unless another thread
 * already did since generation gen.  VD_E_AUTH when there is no password. */
int vs_relogin(struct vs_session *s, unsigned gen);
char *vs_url_escape(const char *s);

/* ---- soap.c ---- */

char *vs_xml_escape(const char *s);
/* POST one method body; *reply is the parsed <soap:Body> child on success
 * (free with xmlFreeDoc(*doc)).  Faults become vd_err codes:
 * NotAuthenticated -> relogin once and retry (unless no_relogin),
 * InvalidLogin -> VD_E_AUTH, ManagedObjectNotFound -> VD_E_NOTFOUND,
 * "no vmomi type"/MethodNotFound -> VD_E_UNSUPPORTED. */
int vs_soap_call(struct vs_session *s, const char *method, const char *body, int no_relogin,
                 xmlDoc **doc, xmlNode **reply);

/* A reply's bytes (HTTP status) as soap_call sees them: the first element
 * of the SOAP body in *reply, or a fault, a non-envelope or an empty body
 * as a vd_err (*relogin set when a new login may help). */
int vs_soap_parse(struct vs_session *s, const char *method, const char *data, size_t n,
                  long status, xmlDoc **docp, xmlNode **reply, int *relogin);
/* ---- session.c ---- */
/* RetrievePropertiesEx of some properties (paths, NULL-terminated) of one
 * object; *objs is its <objects> element (free with xmlFreeDoc(*doc)).
 * An unknown object is VD_E_NOTFOUND. */
int vs_get_props(struct vs_session *s, const char *type, const char *moref,
                 const char *const *paths, xmlDoc **doc, xmlNode **objs);
/* The <val> of property name in an <objects> element, or NULL. */
xmlNode *vs_prop_val(xmlNode *objs, const char *name);

/* ---- json.c ---- */
/* A vim25 data object (an element of a reply, e.g. a property's <val>) as
 * a JSON document, malloc'd in *out.  The rules are in json.c.  VD_E_NOMEM,
 * or VD_E_CORRUPT for nesting deeper than the converter follows. */
int vs_xml_to_json(xmlNode *n, char **out);

/* ---- ticket.c ---- */
/* The HostServiceTicket in a ticket method's reply. */
int vs_parse_ticket(struct vs_session *s, const char *method, xmlNode *reply,
                    struct vs_ticket *t);

/* libxml2 helpers: by local name, any namespace. */
xmlNode *vs_xml_child(xmlNode *n, const char *name);
xmlNode *vs_xml_next(xmlNode *n, const char *name);   /* next sibling of that name */
xmlNode *vs_xml_find(xmlNode *n, const char *name);   /* depth first, n excluded */
char *vs_xml_text(xmlNode *n);                        /* malloc'd content, "" if empty */
char *vs_xml_child_text(xmlNode *n, const char *name);/* NULL when absent */
/* xsi:type of n ("VirtualDisk"), by namespace; NULL when absent. */
char *vs_xml_type(xmlNode *n);

#endif
