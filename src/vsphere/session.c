/* session.c - a vim25 session: log in (or adopt a session cookie), read
 * the service content, resolve VMs, snapshots and their disks, log out. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"
#include "../util/log.h"

int vs_curl_global(void);
int vs_share_init(struct vs_session *s);
void vs_share_free(struct vs_session *s);
int vs_check_thumbprint(struct vs_session *s);

#define NOMEM() vd_err_set(VD_E_NOMEM, "out of memory")

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && *src && !(*dst = vd_strdup(src)))
        return -1;
    return 0;
}

/* ---- service content, login, logout ------------------------------- */

static int service_content(struct vs_session *s)
{
    static const char body[] = "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type="
                               "\"ServiceInstance\">ServiceInstance</_this>"
                               "</RetrieveServiceContent>";
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "RetrieveServiceContent", body, 1, &doc, &r);
    if (rc < 0)
        return rc;
    xmlNode *sc = vs_xml_child(r, "returnval");
    xmlNode *about = vs_xml_child(sc, "about");
    s->session_mgr = vs_xml_child_text(sc, "sessionManager");
    s->prop_collector = vs_xml_child_text(sc, "propertyCollector");
    s->root_folder = vs_xml_child_text(sc, "rootFolder");
    s->view_mgr = vs_xml_child_text(sc, "viewManager");
    s->auth_mgr = vs_xml_child_text(sc, "authorizationManager");
    s->api_type = vs_xml_child_text(about, "apiType");
    s->server_api_version = vs_xml_child_text(about, "apiVersion");
    xmlFreeDoc(doc);
    if (!s->session_mgr || !s->prop_collector || !s->root_folder)
        return vd_err_set(VD_E_NET_CONNECT, "server %s: the service content lacks the session "
                          "manager, property collector or root folder", s->peer);
    return 0;
}

static int login(struct vs_session *s)
{
    char *u = vs_xml_escape(s->user), *p = vs_xml_escape(s->password ? s->password : "");
    char *sm = vs_xml_escape(s->session_mgr);
    char *body = u && p && sm ? vd_asprintf("<Login xmlns=\"urn:vim25\"><_this type=\""
                                            "SessionManager\">%s</_this><userName>%s"
                                            "</userName><password>%s</password></Login>",
                                            sm, u, p)
                              : NULL;
    if (p)
        memset(p, 0, strlen(p));
    free(u);
    free(p);
    free(sm);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "Login", body, 1, &doc, &r);
    memset(body, 0, strlen(body));
    free(body);
    if (rc < 0) {
        if (rc == -VD_E_AUTH)
            vd_err_set(VD_E_AUTH, "server %s: login as %s refused: wrong user name or password",
                       s->peer, s->user);
        return rc;
    }
    xmlFreeDoc(doc);
    pthread_mutex_lock(&s->lock);
    int have = s->cookie != NULL;
    pthread_mutex_unlock(&s->lock);
    if (!have)
        return vd_err_set(VD_E_AUTH, "server %s: Login succeeded but set no "
                          "vmware_soap_session cookie", s->peer);
    s->logged_in = 1;
    return 0;
}

int vs_relogin(struct vs_session *s, unsigned gen)
{
    if (!s->user)
        return vd_err_set(VD_E_AUTH, "server %s: the session has expired and there is no "
                          "password to log in again", s->peer);
    pthread_mutex_lock(&s->lock);
    int done = s->cookie_gen != gen;    /* another thread logged in already */
    if (!done) {
        free(s->cookie);
        s->cookie = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    if (done)
        return 0;
    int rc = login(s);
    if (rc < 0)
        vd_err_prefix("session expired; logging in again failed");
    else
        vd_log("server %s: the session had expired; logged in again as %s", s->peer, s->user);
    return rc;
}

/* Is the adopted session alive?  Reads SessionManager.currentSession. */
static int check_session(struct vs_session *s)
{
    char *sm = vs_xml_escape(s->session_mgr), *pc = vs_xml_escape(s->prop_collector);
    char *body = sm && pc ? vd_asprintf(
        "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">%s"
        "</_this><specSet><propSet><type>SessionManager</type><pathSet>currentSession"
        "</pathSet></propSet><objectSet><obj type=\"SessionManager\">%s</obj></objectSet>"
        "</specSet><options/></RetrievePropertiesEx>", pc, sm) : NULL;
    free(sm);
    free(pc);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "RetrievePropertiesEx", body, 1, &doc, &r);
    free(body);
    if (rc < 0) {
        if (rc == -VD_E_AUTH)
            vd_err_set(VD_E_AUTH, "server %s: the session cookie given is not (or no longer) a "
                       "valid session", s->peer);
        return rc;
    }
    xmlNode *cs = vs_xml_find(r, "val");
    int alive = cs && vs_xml_child(cs, "key");
    xmlFreeDoc(doc);
    if (!alive)
        return vd_err_set(VD_E_AUTH, "server %s: the session cookie given is not (or no longer) "
                          "a valid session", s->peer);
    return 0;
}

static void logout(struct vs_session *s)
{
    char *sm = vs_xml_escape(s->session_mgr);
    char *body = sm ? vd_asprintf("<Logout xmlns=\"urn:vim25\"><_this type=\"SessionManager\">"
                                  "%s</_this></Logout>", sm) : NULL;
    free(sm);
    if (!body)
        return;
    xmlDoc *doc;
    xmlNode *r;
    if (vs_soap_call(s, "Logout", body, 1, &doc, &r) == 0)
        xmlFreeDoc(doc);
    free(body);
}

void vs_session_close(struct vs_session *s)
{
    if (!s)
        return;
    if (s->logged_in && s->session_mgr)
        logout(s);
    if (s->soap)
        curl_easy_cleanup(s->soap);
    vs_share_free(s);
    pthread_mutex_destroy(&s->lock);
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    char **strs[] = { &s->server, &s->thumbprint, &s->ca_file, &s->user, &s->password,
                      &s->api_version, &s->base, &s->peer, &s->pin, &s->cookie,
                      &s->session_mgr, &s->prop_collector, &s->root_folder, &s->view_mgr,
                      &s->auth_mgr, &s->api_type, &s->server_api_version, &s->nfc_service,
                      &s->dc_vm, &s->dc_path };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    free(s);
}

int vs_session_open(const struct vs_conf *c, struct vs_session **out)
{
    *out = NULL;
    int rc = vs_curl_global();
    if (rc < 0)
        return rc;
    if (!c->server || !*c->server)
        return vd_err_set(VD_E_INVAL, "no server name given");
    struct vs_session *s = calloc(1, sizeof *s);
    if (!s)
        return NOMEM();
    pthread_mutex_init(&s->lock, NULL);
    s->port = c->port ? c->port : 443;
    s->verify_chain = c->verify_chain;
    s->connect_timeout_ms = c->connect_timeout_ms > 0 ? c->connect_timeout_ms : 30000;
    s->read_timeout_ms = c->read_timeout_ms > 0 ? c->read_timeout_ms : 60000;
    s->parallel = c->parallel ? c->parallel : 4;
    s->range_bytes = c->range_bytes >= 65536 ? c->range_bytes : 4u << 20;
    const char *srv = c->server;
    size_t sl = strlen(srv);
    int ok = 1;
    if (srv[0] == '[' && sl > 2 && srv[sl - 1] == ']')
        ok = (s->server = vd_asprintf("%.*s", (int)sl - 2, srv + 1)) != NULL;
    else
        ok = dup_opt(&s->server, srv) == 0;
    ok = ok && dup_opt(&s->thumbprint, c->thumbprint) == 0 &&
         dup_opt(&s->ca_file, c->ca_file) == 0 && dup_opt(&s->user, c->user) == 0 &&
         dup_opt(&s->api_version, c->api_version) == 0;
    if (ok && c->user && c->password)
        ok = (s->password = vd_strdup(c->password)) != NULL;
    if (ok && c->cookie && *c->cookie) {
        /* Callers pass the cookie's value or the whole "name=value". */
        ok = (s->cookie = strchr(c->cookie, '=')
                              ? vd_strdup(c->cookie)
                              : vd_asprintf("vmware_soap_session=%s", c->cookie)) != NULL;
    }
    int v6 = ok && strchr(s->server, ':') != NULL;
    ok = ok && (s->peer = vd_asprintf(v6 ? "[%s]:%u" : "%s:%u", s->server, s->port)) != NULL;
    ok = ok && (s->base = vd_asprintf("https://%s", s->peer)) != NULL;
    if (!ok) {
        vs_session_close(s);
        return NOMEM();
    }
    if ((rc = vs_share_init(s)) < 0 || (rc = vs_check_thumbprint(s)) < 0) {
        vs_session_close(s);
        return rc;
    }
    if (!(s->soap = vs_curl_new(s))) {
        vs_session_close(s);
        return NOMEM();
    }
    if ((rc = service_content(s)) < 0) {
        vs_session_close(s);
        return rc;
    }
    if (s->cookie && !s->user) {
        rc = check_session(s);
    } else if (s->user) {
        /* A cookie and a password: try the cookie, log in if it is stale. */
        rc = s->cookie ? check_session(s) : -1;
        if (rc < 0) {
            free(s->cookie);
            s->cookie = NULL;
            rc = login(s);
        }
    } else {
        rc = vd_err_set(VD_E_AUTH, "server %s: no credentials: give a user name and password "
                        "or a session cookie", s->peer);
    }
    if (rc < 0) {
        vs_session_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

const char *vs_session_api_type(const struct vs_session *s) { return s->api_type; }
const char *vs_session_api_version(const struct vs_session *s) { return s->server_api_version; }
const char *vs_session_cookie(const struct vs_session *s) { return s->cookie; }

/* ---- properties ----------------------------------------------------- */

/* RetrievePropertiesEx of some properties of one object; *objs is the
 * <objects> element (NULL when the server returned none). */
int vs_get_props(struct vs_session *s, const char *type, const char *moref,
                 const char *const *paths, xmlDoc **doc, xmlNode **objs)
{
    char pathset[1024] = "";
    for (size_t i = 0; paths[i]; i++) {
        size_t n = strlen(pathset);
        snprintf(pathset + n, sizeof pathset - n, "<pathSet>%s</pathSet>", paths[i]);
    }
    char *m = vs_xml_escape(moref), *pc = vs_xml_escape(s->prop_collector);
    char *body = m && pc ? vd_asprintf(
        "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">%s</_this>"
        "<specSet><propSet><type>%s</type>%s</propSet><objectSet><obj type=\"%s\">%s</obj>"
        "</objectSet></specSet><options/></RetrievePropertiesEx>", pc, type, pathset, type, m)
        : NULL;
    free(m);
    free(pc);
    if (!body)
        return NOMEM();
    xmlNode *r;
    int rc = vs_soap_call(s, "RetrievePropertiesEx", body, 0, doc, &r);
    free(body);
    if (rc < 0) {
        if (rc == -VD_E_NOTFOUND)
            vd_err_set(VD_E_NOTFOUND, "server %s: there is no %s %s", s->peer, type, moref);
        return rc;
    }
    xmlNode *rv = vs_xml_child(r, "returnval");
    xmlNode *o = vs_xml_child(rv, "objects");
    /* An object that vanished may come back with only a missingSet. */
    xmlNode *miss = o ? vs_xml_child(o, "missingSet") : NULL;
    if (!o || (miss && !vs_xml_child(o, "propSet") &&
               vs_xml_find(miss, "ManagedObjectNotFound"))) {
        xmlFreeDoc(*doc);
        return vd_err_set(VD_E_NOTFOUND, "server %s: there is no %s %s", s->peer, type, moref);
    }
    *objs = o;
    return 0;
}

/* The <val> of property name in an <objects> element, or NULL. */
xmlNode *vs_prop_val(xmlNode *objs, const char *name)
{
    for (xmlNode *ps = vs_xml_child(objs, "propSet"); ps; ps = vs_xml_next(ps, "propSet")) {
        char *n = vs_xml_child_text(ps, "name");
        int hit = n && strcmp(n, name) == 0;
        free(n);
        if (hit)
            return vs_xml_child(ps, "val");
    }
    return NULL;
}

/* ---- disks ------------------------------------------------------------ */

static void disk_free(struct vs_disk *d)
{
    for (size_t i = 0; i < d->nchain; i++)
        free(d->chain[i]);
    free(d->chain);
    free(d->datastore);
    free(d->label);
}

static int parse_disk(xmlNode *dev, struct vs_disk *d)
{
    memset(d, 0, sizeof *d);
    char *key = vs_xml_child_text(dev, "key");
    d->key = key ? atoi(key) : 0;
    free(key);
    char *cb = vs_xml_child_text(dev, "capacityInBytes");
    char *ck = vs_xml_child_text(dev, "capacityInKB");
    d->capacity = cb && *cb ? strtoull(cb, NULL, 10) : ck ? strtoull(ck, NULL, 10) * 1024 : 0;
    free(cb);
    free(ck);
    xmlNode *info = vs_xml_child(dev, "deviceInfo");
    d->label = info ? vs_xml_child_text(info, "label") : NULL;
    xmlNode *b = vs_xml_child(dev, "backing");
    d->datastore = b ? vs_xml_child_text(b, "datastore") : NULL;
    for (int depth = 0; b && depth < 256; depth++, b = vs_xml_child(b, "parent")) {
        char *f = vs_xml_child_text(b, "fileName");
        if (!f)
            break;
        char **nc = realloc(d->chain, (d->nchain + 1) * sizeof *nc);
        if (!nc) {
            free(f);
            disk_free(d);
            return NOMEM();
        }
        d->chain = nc;
        d->chain[d->nchain++] = f;
    }
    d->file = d->nchain ? d->chain[0] : NULL;
    return 0;
}

/* The VirtualDisks in a config.hardware.device value. */
static int parse_disks(xmlNode *val, struct vs_disk **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    for (xmlNode *c = val ? val->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        char *t = vs_xml_type(c);
        int disk = t && strcmp(t, "VirtualDisk") == 0;
        free(t);
        if (!disk)
            continue;
        struct vs_disk *nd = realloc(*out, (*n + 1) * sizeof *nd);
        if (!nd)
            return NOMEM();
        *out = nd;
        int rc = parse_disk(c, &nd[*n]);
        if (rc < 0)
            return rc;
        if (nd[*n].file)
            (*n)++;
        else
            disk_free(&nd[*n]);
    }
    return 0;
}

/* ---- snapshots -------------------------------------------------------- */

static int add_snaps(struct vs_vm *vm, xmlNode *list_parent, const char *elem, int depth)
{
    for (xmlNode *t = vs_xml_child(list_parent, elem); t && depth < 512;
         t = vs_xml_next(t, elem)) {
        struct vs_snapshot *ns = realloc(vm->snaps, (vm->nsnaps + 1) * sizeof *ns);
        if (!ns)
            return NOMEM();
        vm->snaps = ns;
        struct vs_snapshot *sn = &ns[vm->nsnaps++];
        sn->moref = vs_xml_child_text(t, "snapshot");
        sn->name = vs_xml_child_text(t, "name");
        sn->created = vs_xml_child_text(t, "createTime");
        sn->description = vs_xml_child_text(t, "description");
        if (sn->description && !*sn->description) {   /* empty: none */
            free(sn->description);
            sn->description = NULL;
        }
        sn->depth = depth;
        int rc = add_snaps(vm, t, "childSnapshotList", depth + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- the datacenter of a VM ------------------------------------------ */

/* Inventory path of the datacenter above obj ("DC0", "Folder/DC1"). */
static int dc_path_of(struct vs_session *s, const char *type, const char *moref, char **out)
{
    static const char *const paths[] = { "parent", "name", NULL };
    char *cur_type = vd_strdup(type), *cur = vd_strdup(moref), *path = NULL;
    int found_dc = 0, rc = 0;
    for (int depth = 0; cur && cur_type && depth < 64; depth++) {
        xmlDoc *doc;
        xmlNode *o;
        if ((rc = vs_get_props(s, cur_type, cur, paths, &doc, &o)) < 0)
            break;
        xmlNode *pv = vs_prop_val(o, "parent");
        char *name = vs_xml_text(vs_prop_val(o, "name"));
        /* <val xsi:type="ManagedObjectReference" type="Folder">: the plain
         * attribute is the object's type. */
        char *ptype = NULL;
        if (pv) {
            xmlChar *t = xmlGetNoNsProp(pv, (const xmlChar *)"type");
            ptype = t ? vd_strdup((const char *)t) : NULL;
            xmlFree(t);
        }
        char *parent = pv ? vs_xml_text(pv) : NULL;
        xmlFreeDoc(doc);
        if (strcmp(cur_type, "Datacenter") == 0)
            found_dc = 1;
        if (found_dc && pv) {   /* the root folder itself has no parent and no name in paths */
            char *np = path ? vd_asprintf("%s/%s", name, path) : vd_strdup(name);
            free(path);
            path = np;
        }
        free(name);
        free(cur);
        free(cur_type);
        cur = parent;
        cur_type = ptype;
        if (!pv)
            break;
    }
    free(cur);
    free(cur_type);
    if (rc < 0) {
        free(path);
        return rc;
    }
    if (!found_dc || !path) {
        free(path);
        return vd_err_set(VD_E_NOTFOUND, "server %s: %s %s is in no datacenter", s->peer, type,
                          moref);
    }
    *out = path;
    return 0;
}

/* dc_path_of for a VM, through the session's one-entry cache. */
static int vm_dc_path(struct vs_session *s, const char *moref, char **out)
{
    pthread_mutex_lock(&s->lock);
    char *hit = s->dc_vm && strcmp(s->dc_vm, moref) == 0 ? vd_strdup(s->dc_path) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (hit) {
        *out = hit;
        return 0;
    }
    int rc = dc_path_of(s, "VirtualMachine", moref, out);
    if (rc < 0)
        return rc;
    char *vm = vd_strdup(moref), *path = vd_strdup(*out);
    pthread_mutex_lock(&s->lock);
    if (vm && path) {
        free(s->dc_vm);
        free(s->dc_path);
        s->dc_vm = vm;
        s->dc_path = path;
        vm = path = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    free(vm);
    free(path);
    return 0;
}

/* ---- VMs ------------------------------------------------------------------ */

void vs_vm_free(struct vs_vm *vm)
{
    if (!vm)
        return;
    for (size_t i = 0; i < vm->ndisks; i++)
        disk_free(&vm->disks[i]);
    free(vm->disks);
    for (size_t i = 0; i < vm->nsnaps; i++) {
        free(vm->snaps[i].moref);
        free(vm->snaps[i].name);
        free(vm->snaps[i].created);
        free(vm->snaps[i].description);
    }
    free(vm->snaps);
    free(vm->moref);
    free(vm->name);
    free(vm->host);
    free(vm->power);
    free(vm->uuid);
    free(vm->dc_path);
    free(vm->snapshot);
    free(vm);
}

void vs_vm_list_free(struct vs_vm **vms, size_t count)
{
    for (size_t i = 0; i < count; i++)
        vs_vm_free(vms[i]);
    free(vms);
}

static const char *const vm_paths[] = { "name", "runtime.host", "runtime.powerState",
                                        "config.uuid", "config.hardware.device", "snapshot",
                                        NULL };

/* Fill vm from an <objects> element holding vm_paths. */
static int vm_from_objs(xmlNode *o, struct vs_vm *vm)
{
    vm->moref = vs_xml_child_text(o, "obj");
    vm->name = vs_xml_text(vs_prop_val(o, "name"));
    xmlNode *h = vs_prop_val(o, "runtime.host");
    vm->host = h ? vs_xml_text(h) : NULL;
    vm->power = vs_xml_text(vs_prop_val(o, "runtime.powerState"));
    xmlNode *u = vs_prop_val(o, "config.uuid");
    vm->uuid = u ? vs_xml_text(u) : NULL;
    int rc = parse_disks(vs_prop_val(o, "config.hardware.device"), &vm->disks, &vm->ndisks);
    xmlNode *si = vs_prop_val(o, "snapshot");
    if (rc == 0 && si)
        rc = add_snaps(vm, si, "rootSnapshotList", 0);
    if (rc == 0 && (!vm->moref || !vm->name || !vm->power))
        rc = NOMEM();
    return rc;
}

int vs_vm_get(struct vs_session *s, const char *moref, const char *snapshot,
              struct vs_vm **out)
{
    *out = NULL;
    if (!moref || !*moref)
        return vd_err_set(VD_E_INVAL, "no VM moref given");
    struct vs_vm *vm = calloc(1, sizeof *vm);
    if (!vm)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *o;
    int rc = vs_get_props(s, "VirtualMachine", moref, vm_paths, &doc, &o);
    if (rc < 0) {
        free(vm);
        if (rc == -VD_E_NOTFOUND)
            vd_err_set(VD_E_NOTFOUND, "server %s: there is no virtual machine with moref %s",
                       s->peer, moref);
        return rc;
    }
    rc = vm_from_objs(o, vm);
    xmlFreeDoc(doc);
    if (rc == 0)
        rc = vm_dc_path(s, moref, &vm->dc_path);
    if (rc == 0 && snapshot && *snapshot) {
        int known = 0;
        for (size_t i = 0; i < vm->nsnaps; i++)
            known |= vm->snaps[i].moref && strcmp(vm->snaps[i].moref, snapshot) == 0;
        if (!known) {
            rc = vd_err_set(VD_E_NOTFOUND, "server %s: %s is not a snapshot of virtual machine "
                            "%s (%s)", s->peer, snapshot, moref, vm->name);
        } else {
            static const char *const sp[] = { "config.hardware.device", NULL };
            rc = vs_get_props(s, "VirtualMachineSnapshot", snapshot, sp, &doc, &o);
            if (rc == 0) {
                for (size_t i = 0; i < vm->ndisks; i++)
                    disk_free(&vm->disks[i]);
                free(vm->disks);
                vm->disks = NULL;
                vm->ndisks = 0;
                rc = parse_disks(vs_prop_val(o, "config.hardware.device"), &vm->disks,
                                 &vm->ndisks);
                xmlFreeDoc(doc);
            }
            if (rc == 0 && !(vm->snapshot = vd_strdup(snapshot)))
                rc = NOMEM();
        }
    }
    if (rc < 0) {
        vs_vm_free(vm);
        return rc;
    }
    *out = vm;
    return 0;
}

int vs_vm_list(struct vs_session *s, struct vs_vm ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    if (!s->view_mgr)
        return vd_err_set(VD_E_UNSUPPORTED, "server %s has no view manager", s->peer);
    char *vmgr = vs_xml_escape(s->view_mgr), *root = vs_xml_escape(s->root_folder);
    char *body = vmgr && root ? vd_asprintf(
        "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">%s</_this>"
        "<container type=\"Folder\">%s</container><type>VirtualMachine</type>"
        "<recursive>true</recursive></CreateContainerView>", vmgr, root) : NULL;
    free(vmgr);
    free(root);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, "CreateContainerView", body, 0, &doc, &r);
    free(body);
    if (rc < 0)
        return rc;
    char *view = vs_xml_child_text(r, "returnval");
    xmlFreeDoc(doc);
    if (!view)
        return NOMEM();
    char pathset[512] = "";
    for (size_t i = 0; vm_paths[i]; i++) {
        size_t n = strlen(pathset);
        snprintf(pathset + n, sizeof pathset - n, "<pathSet>%s</pathSet>", vm_paths[i]);
    }
    char *pc = vs_xml_escape(s->prop_collector), *v = vs_xml_escape(view);
    body = pc && v ? vd_asprintf(
        "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">%s</_this>"
        "<specSet><propSet><type>VirtualMachine</type>%s</propSet><objectSet>"
        "<obj type=\"ContainerView\">%s</obj><skip>true</skip><selectSet xsi:type="
        "\"TraversalSpec\"><name>view</name><type>ContainerView</type><path>view</path>"
        "<skip>false</skip></selectSet></objectSet></specSet><options/>"
        "</RetrievePropertiesEx>", pc, pathset, v) : NULL;
    struct vs_vm **vms = NULL;
    size_t nvm = 0;
    const char *method = "RetrievePropertiesEx";
    while (rc == 0 && body) {
        rc = vs_soap_call(s, method, body, 0, &doc, &r);
        free(body);
        body = NULL;
        if (rc < 0)
            break;
        xmlNode *rv = vs_xml_child(r, "returnval");
        for (xmlNode *o = vs_xml_child(rv, "objects"); o && rc == 0;
             o = vs_xml_next(o, "objects")) {
            struct vs_vm *vm = calloc(1, sizeof *vm);
            struct vs_vm **nv = vm ? realloc(vms, (nvm + 1) * sizeof *nv) : NULL;
            if (!nv) {
                free(vm);
                rc = NOMEM();
                break;
            }
            vms = nv;
            vms[nvm++] = vm;
            rc = vm_from_objs(o, vm);
        }
        char *token = rv ? vs_xml_child_text(rv, "token") : NULL;
        xmlFreeDoc(doc);
        if (rc == 0 && token) {
            char *t = vs_xml_escape(token);
            body = t ? vd_asprintf("<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\"><_this "
                                   "type=\"PropertyCollector\">%s</_this><token>%s</token>"
                                   "</ContinueRetrievePropertiesEx>", pc, t) : NULL;
            method = "ContinueRetrievePropertiesEx";
            free(t);
            if (!body)
                rc = NOMEM();
        }
        free(token);
    }
    if (rc == 0 && !pc)
        rc = NOMEM();
    for (size_t i = 0; rc == 0 && i < nvm; i++)
        rc = dc_path_of(s, "VirtualMachine", vms[i]->moref, &vms[i]->dc_path);
    /* The view is ours: remove it whatever happened. */
    char *dbody = v ? vd_asprintf("<DestroyView xmlns=\"urn:vim25\"><_this type=\"ContainerView"
                                  "\">%s</_this></DestroyView>", v) : NULL;
    if (dbody) {
        int saved = rc;
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        if (vs_soap_call(s, "DestroyView", dbody, 0, &doc, &r) == 0)
            xmlFreeDoc(doc);
        if (saved < 0)
            vd_err_set(-saved, "%s", msg);
        free(dbody);
    }
    free(pc);
    free(v);
    free(view);
    if (rc < 0) {
        vs_vm_list_free(vms, nvm);
        return rc;
    }
    *out = vms;
    *count = nvm;
    return 0;
}

/* ---- paths ------------------------------------------------------------- */

int vs_split_ds_path(const char *path, char **ds, char **rel)
{
    *ds = *rel = NULL;
    const char *p = path;
    while (*p == ' ')
        p++;
    const char *close = *p == '[' ? strchr(p, ']') : NULL;
    if (!close || close == p + 1)
        return vd_err_set(VD_E_INVAL, "%s: not a datastore path (\"[datastore] dir/file.vmdk\")",
                          path);
    const char *r = close + 1;
    while (*r == ' ')
        r++;
    while (*r == '/')
        r++;
    if (!*r)
        return vd_err_set(VD_E_INVAL, "%s: names no file on the datastore", path);
    *ds = vd_asprintf("%.*s", (int)(close - p - 1), p + 1);
    *rel = vd_strdup(r);
    if (!*ds || !*rel) {
        free(*ds);
        free(*rel);
        *ds = *rel = NULL;
        return NOMEM();
    }
    return 0;
}

static int same_ds_path(const char *a, const char *b)
{
    char *da, *ra, *db, *rb;
    if (vs_split_ds_path(a, &da, &ra) < 0)
        return 0;
    if (vs_split_ds_path(b, &db, &rb) < 0) {
        free(da);
        free(ra);
        return 0;
    }
    int same = strcmp(da, db) == 0 && strcmp(ra, rb) == 0;
    free(da);
    free(ra);
    free(db);
    free(rb);
    return same;
}

const struct vs_disk *vs_vm_find_disk(const struct vs_vm *vm, const char *path,
                                      size_t *chain_index)
{
    for (size_t i = 0; i < vm->ndisks; i++)
        for (size_t j = 0; j < vm->disks[i].nchain; j++)
            if (same_ds_path(vm->disks[i].chain[j], path)) {
                if (chain_index)
                    *chain_index = j;
                return &vm->disks[i];
            }
    return NULL;
}

/* ---- method blocking -------------------------------------------------- */

static int methods_call(struct vs_session *s, const char *vm, int disable, const char *reason)
{
    if (!s->auth_mgr)
        return vd_err_set(VD_E_UNSUPPORTED, "server %s has no authorization manager", s->peer);
    static const char *const methods[] = { "RelocateVM_Task", "MigrateVM_Task",
                                           "ReconfigVM_Task", NULL };
    char ms[512] = "";
    for (size_t i = 0; methods[i]; i++) {
        size_t n = strlen(ms);
        snprintf(ms + n, sizeof ms - n, "<method>%s</method>", methods[i]);
    }
    char *am = vs_xml_escape(s->auth_mgr), *v = vs_xml_escape(vm);
    char *why = vs_xml_escape(reason ? reason : "openvddk");
    char *body = NULL;
    if (am && v && why) {
        if (disable)
            body = vd_asprintf("<DisableMethods xmlns=\"urn:vim25\"><_this type=\""
                               "AuthorizationManager\">%s</_this><entity type=\"VirtualMachine"
                               "\">%s</entity>%s<sourceId>%s</sourceId></DisableMethods>", am,
                               v, ms, why);
        else
            body = vd_asprintf("<EnableMethods xmlns=\"urn:vim25\"><_this type=\""
                               "AuthorizationManager\">%s</_this><entity type=\"VirtualMachine"
                               "\">%s</entity>%s<sourceId>%s</sourceId></EnableMethods>",
                               am, v, ms, why);
    }
    free(am);
    free(v);
    free(why);
    if (!body)
        return NOMEM();
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, disable ? "DisableMethods" : "EnableMethods", body, 0, &doc, &r);
    free(body);
    if (rc == 0)
        xmlFreeDoc(doc);
    return rc;
}

int vs_vm_disable_methods(struct vs_session *s, const char *vm, const char *reason)
{
    return methods_call(s, vm, 1, reason);
}

int vs_vm_enable_methods(struct vs_session *s, const char *vm, const char *source)
{
    return methods_call(s, vm, 0, source);
}
