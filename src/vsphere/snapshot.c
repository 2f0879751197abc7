/* snapshot.c - snapshots of a VM (create, remove), the tasks they start,
 * and a VM's configuration as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define NOMEM() vd_err_set(VD_E_NOMEM, "out of memory")

#define TASK_TIMEOUT_S (30 * 60)   /* a task still running then is given up on */
#define POLL_FIRST_MS 20
#define POLL_MAX_MS 1000

/* The vd_err code for a vim25 fault type. */
static int fault_code(const char *type)
{
    if (!type)
        return VD_E_REMOTE;
    if (strcmp(type, "ManagedObjectNotFound") == 0 || strcmp(type, "NotFound") == 0)
        return VD_E_NOTFOUND;
    if (strcmp(type, "NoPermission") == 0)
        return VD_E_ACCESS;
    if (strcmp(type, "NotSupported") == 0 || strcmp(type, "NotImplemented") == 0 ||
        strcmp(type, "SnapshotDisabled") == 0)
        return VD_E_UNSUPPORTED;
    if (strcmp(type, "InvalidArgument") == 0 || strcmp(type, "InvalidName") == 0)
        return VD_E_INVAL;
    return VD_E_REMOTE;
}

static double elapsed_s(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (now.tv_nsec - since->tv_nsec) / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Poll Task.info until the task ends.  what names the operation for
 * messages ("CreateSnapshot_Task on VM vm-12").  On success *result (when
 * not NULL) is the text of info.result (a moref), or NULL when it has none. */
static int task_wait(struct vs_session *s, const char *task, const char *what, char **result)
{
    static const char *const paths[] = { "info", NULL };
    if (result)
        *result = NULL;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    long delay = POLL_FIRST_MS;
    for (;;) {
        xmlDoc *doc;
        xmlNode *o;
        int rc = vs_get_props(s, "Task", task, paths, &doc, &o);
        if (rc < 0) {
            vd_err_prefix("%s: reading task %s", what, task);
            return rc;
        }
        xmlNode *info = vs_prop_val(o, "info");
        char *state = info ? vs_xml_child_text(info, "state") : NULL;
        if (state && strcmp(state, "success") == 0) {
            if (result)
                *result = vs_xml_child_text(info, "result");
            xmlFreeDoc(doc);
            free(state);
            return 0;
        }
        if (state && strcmp(state, "error") == 0) {
            xmlNode *err = vs_xml_child(info, "error");
            xmlNode *fault = vs_xml_child(err, "fault");
            char *type = fault ? vs_xml_type(fault) : NULL;
            char *msg = err ? vs_xml_child_text(err, "localizedMessage") : NULL;
            rc = vd_err_set(fault_code(type), "server %s: %s failed: %s%s%s%s", s->peer, what,
                            type ? type : "unknown fault", msg && *msg ? " (" : "",
                            msg && *msg ? msg : "", msg && *msg ? ")" : "");
            free(type);
            free(msg);
            xmlFreeDoc(doc);
            free(state);
            return rc;
        }
        int waiting = state && (strcmp(state, "queued") == 0 || strcmp(state, "running") == 0);
        xmlFreeDoc(doc);
        if (!waiting) {
            rc = vd_err_set(VD_E_REMOTE, "server %s: %s: task %s is in state \"%s\"", s->peer,
                            what, task, state ? state : "(none)");
            free(state);
            return rc;
        }
        if (elapsed_s(&start) >= TASK_TIMEOUT_S) {
            rc = vd_err_set(VD_E_REMOTE, "server %s: %s: task %s is still %s after %d minutes; "
                            "giving up waiting (the server may still finish it)", s->peer,
                            what, task, state, TASK_TIMEOUT_S / 60);
            free(state);
            return rc;
        }
        free(state);
        sleep_ms(delay);
        delay = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
    }
}

/* Call a *_Task method and wait for its task.  kind/moref name the object
 * the method runs on ("virtual machine", "vm-12") for a not-found message. */
static int run_task(struct vs_session *s, const char *method, const char *body,
                    const char *kind, const char *moref, char **result)
{
    char what[256];
    snprintf(what, sizeof what, "%s on %s %s", method, kind, moref);
    xmlDoc *doc;
    xmlNode *r;
    int rc = vs_soap_call(s, method, body, 0, &doc, &r);
    if (rc < 0) {
        if (rc == -VD_E_NOTFOUND) {
            /* "server P: M failed: ManagedObjectNotFound (...)" -> the part after "P: " */
            char detail[512];
            const char *m = vd_err_msg();
            size_t pl = strlen(s->peer);
            if (strncmp(m, "server ", 7) == 0 && strncmp(m + 7, s->peer, pl) == 0 &&
                strncmp(m + 7 + pl, ": ", 2) == 0)
                m += 7 + pl + 2;
            snprintf(detail, sizeof detail, "%s", m);
            vd_err_set(VD_E_NOTFOUND, "server %s: there is no %s %s (%s)", s->peer, kind,
                       moref, detail);
        }
        return rc;
    }
    char *task = vs_xml_child_text(r, "returnval");
    xmlFreeDoc(doc);
    if (!task || !*task) {
        free(task);
        return vd_err_set(VD_E_REMOTE, "server %s: %s returned no task", s->peer, what);
    }
    rc = task_wait(s, task, what, result);
    free(task);
    return rc;
}

int vs_snapshot_create(struct vs_session *s, const char *vm, const char *name,
                       const char *description, int memory, int quiesce, char **snapshot)
{
    *snapshot = NULL;
    if (!vm || !*vm)
        return vd_err_set(VD_E_INVAL, "no VM moref given");
    if (!name || !*name)
        return vd_err_set(VD_E_INVAL, "a snapshot needs a name");
    char *v = vs_xml_escape(vm), *n = vs_xml_escape(name);
    char *d = description ? vs_xml_escape(description) : NULL;
    char *desc = d ? vd_asprintf("<description>%s</description>", d) : NULL;
    char *body = v && n && (!description || desc)
        ? vd_asprintf("<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">"
                      "%s</_this><name>%s</name>%s<memory>%s</memory><quiesce>%s</quiesce>"
                      "</CreateSnapshot_Task>", v, n, desc ? desc : "",
                      memory ? "true" : "false", quiesce ? "true" : "false")
        : NULL;
    free(v);
    free(n);
    free(d);
    free(desc);
    if (!body)
        return NOMEM();
    char *ref = NULL;
    int rc = run_task(s, "CreateSnapshot_Task", body, "virtual machine", vm, &ref);
    free(body);
    if (rc < 0)
        return rc;
    if (!ref || !*ref) {
        free(ref);
        return vd_err_set(VD_E_REMOTE, "server %s: CreateSnapshot_Task on virtual machine %s "
                          "succeeded but named no snapshot", s->peer, vm);
    }
    *snapshot = ref;
    return 0;
}

int vs_snapshot_remove(struct vs_session *s, const char *snapshot, int remove_children)
{
    if (!snapshot || !*snapshot)
        return vd_err_set(VD_E_INVAL, "no snapshot moref given");
    char *sn = vs_xml_escape(snapshot);
    char *body = sn ? vd_asprintf("<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\""
                                  "VirtualMachineSnapshot\">%s</_this><removeChildren>%s"
                                  "</removeChildren><consolidate>true</consolidate>"
                                  "</RemoveSnapshot_Task>", sn,
                                  remove_children ? "true" : "false")
                    : NULL;
    free(sn);
    if (!body)
        return NOMEM();
    int rc = run_task(s, "RemoveSnapshot_Task", body, "snapshot", snapshot, NULL);
    free(body);
    return rc;
}

int vs_vm_config_json(struct vs_session *s, const char *vm, char **json)
{
    static const char *const paths[] = { "config", NULL };
    *json = NULL;
    if (!vm || !*vm)
        return vd_err_set(VD_E_INVAL, "no VM moref given");
    xmlDoc *doc;
    xmlNode *o;
    int rc = vs_get_props(s, "VirtualMachine", vm, paths, &doc, &o);
    if (rc < 0) {
        if (rc == -VD_E_NOTFOUND)
            vd_err_set(VD_E_NOTFOUND, "server %s: there is no virtual machine with moref %s",
                       s->peer, vm);
        return rc;
    }
    xmlNode *val = vs_prop_val(o, "config");
    if (!val)
        rc = vd_err_set(VD_E_NOTFOUND, "server %s: virtual machine %s has no configuration "
                        "(yet)", s->peer, vm);
    else if ((rc = vs_xml_to_json(val, json)) < 0)
        vd_err_prefix("server %s: configuration of virtual machine %s", s->peer, vm);
    xmlFreeDoc(doc);
    return rc;
}
