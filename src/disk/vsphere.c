/* vsphere.c - the vSphere inventory and certificate thumbprints for
 * callers (vddk/disk.h): what a user needs before ConnectEx. */
#include <stdlib.h>
#include <string.h>

#include "vddk/disk.h"
#include "../util/fileio.h"
#include "../vixdisklib/vixdl.h"
#include "../vsphere/vsphere.h"

#define EXPORT __attribute__((visibility("default")))

static void free_vm(vddk_vsphere_vm *v)
{
    for (uint32 i = 0; i < v->numDisks; i++) {
        for (uint32 j = 0; j < v->disks[i].numChain; j++)
            free(v->disks[i].chain[j]);
        free(v->disks[i].chain);
        free(v->disks[i].label);
    }
    free(v->disks);
    for (uint32 i = 0; i < v->numSnapshots; i++) {
        free(v->snapshots[i].moref);
        free(v->snapshots[i].name);
        free(v->snapshots[i].createTime);
        free(v->snapshots[i].description);
    }
    free(v->snapshots);
    free(v->moref);
    free(v->name);
    free(v->powerState);
    free(v->host);
    free(v->datacenter);
    free(v->uuid);
}

EXPORT void vddk_disk_vsphere_free(vddk_vsphere_vm *vms, uint32 count)
{
    if (!vms)
        return;
    for (uint32 i = 0; i < count; i++)
        free_vm(&vms[i]);
    free(vms);
}

static char *dup_or_null(const char *s, int *ok)
{
    if (!s)
        return NULL;
    char *d = vd_strdup(s);
    if (!d)
        *ok = 0;
    return d;
}

/* Copy the engine-side VM into the public struct. */
static int copy_vm(const struct vs_vm *src, vddk_vsphere_vm *v)
{
    int ok = 1;
    memset(v, 0, sizeof *v);
    v->moref = dup_or_null(src->moref, &ok);
    v->name = dup_or_null(src->name, &ok);
    v->powerState = dup_or_null(src->power, &ok);
    v->host = dup_or_null(src->host, &ok);
    v->datacenter = dup_or_null(src->dc_path, &ok);
    v->uuid = dup_or_null(src->uuid, &ok);
    if (src->ndisks && !(v->disks = calloc(src->ndisks, sizeof *v->disks)))
        ok = 0;
    for (size_t i = 0; ok && i < src->ndisks; i++) {
        const struct vs_disk *d = &src->disks[i];
        vddk_vsphere_disk *o = &v->disks[v->numDisks++];
        o->key = d->key;
        o->capacity = d->capacity;
        o->label = dup_or_null(d->label, &ok);
        if (!(o->chain = calloc(d->nchain ? d->nchain : 1, sizeof *o->chain))) {
            ok = 0;
            break;
        }
        for (size_t j = 0; ok && j < d->nchain; j++)
            o->chain[o->numChain++] = dup_or_null(d->chain[j], &ok);
        o->path = o->numChain ? o->chain[0] : NULL;
    }
    if (ok && src->nsnaps && !(v->snapshots = calloc(src->nsnaps, sizeof *v->snapshots)))
        ok = 0;
    for (size_t i = 0; ok && i < src->nsnaps; i++) {
        vddk_vsphere_snapshot *o = &v->snapshots[v->numSnapshots++];
        o->moref = dup_or_null(src->snaps[i].moref, &ok);
        o->name = dup_or_null(src->snaps[i].name, &ok);
        o->createTime = dup_or_null(src->snaps[i].created, &ok);
        o->description = dup_or_null(src->snaps[i].description, &ok);
        o->depth = (uint32)src->snaps[i].depth;
    }
    return ok ? 0 : -1;
}

/* ---- sessions ---------------------------------------------------------- */

struct vddk_vsphere_session {
    struct vs_session *s;
};

/* Failures of the session calls: an unknown VM or snapshot is
 * VIX_E_OBJECT_NOT_FOUND, a method the server lacks VIX_E_NOT_SUPPORTED. */
static VixError fail_object(const char *op, int rc)
{
    const char *msg = vd_err_msg()[0] ? vd_err_msg() : vd_err_name(rc);
    if (rc == -VD_E_NOTFOUND)
        return vixdl_fail(op, VIX_E_OBJECT_NOT_FOUND, "%s", msg);
    if (rc == -VD_E_UNSUPPORTED)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "%s", msg);
    return vixdl_fail_engine(op, rc);
}

/* "vm-12", also accepted as the vmxSpec form "moref=vm-12". */
static const char *vm_moref(const char *vm)
{
    if (vm && strncmp(vm, "moref=", 6) == 0)
        vm += 6;
    return vm && *vm ? vm : NULL;
}

static VixError session_open(const char *op, const VixDiskLibConnectParams *cp,
                             vddk_vsphere_session **out)
{
    if (!out || !cp || !cp->serverName || !*cp->serverName)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a server name and a place for the session "
                          "are required");
    *out = NULL;
    vddk_vsphere_session *vs = calloc(1, sizeof *vs);
    if (!vs)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    VixError e = vixdl_vsphere_session(op, cp, &vs->s);
    if (e != VIX_OK) {
        free(vs);
        return e;
    }
    *out = vs;
    return VIX_OK;
}

EXPORT VixError vddk_disk_vsphere_session_open(const VixDiskLibConnectParams *cp,
                                               vddk_vsphere_session **out)
{
    return session_open("vddk_disk_vsphere_session_open", cp, out);
}

EXPORT void vddk_disk_vsphere_session_close(vddk_vsphere_session *vs)
{
    if (!vs)
        return;
    vs_session_close(vs->s);
    free(vs);
}

static VixError session_list(const char *op, vddk_vsphere_session *vs, const char *vmMoref,
                             const char *snapshotRef, vddk_vsphere_vm **vms, uint32 *count)
{
    if (!vs || !vms || !count)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a session and places for the result are "
                          "required");
    *vms = NULL;
    *count = 0;
    const char *one = vm_moref(vmMoref);
    if (snapshotRef && *snapshotRef && !one)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a snapshot needs the VM it belongs to "
                          "(vmxSpec \"moref=vm-N\")");
    struct vs_vm **list = NULL, *single = NULL;
    size_t n = 0;
    int rc = one ? vs_vm_get(vs->s, one, snapshotRef, &single) : vs_vm_list(vs->s, &list, &n);
    if (rc == 0 && one) {
        list = &single;
        n = 1;
    }
    vddk_vsphere_vm *out = NULL;
    if (rc == 0 && n && !(out = calloc(n, sizeof *out)))
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (copy_vm(list[i], &out[i]) < 0)
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
    if (one)
        vs_vm_free(single);
    else
        vs_vm_list_free(list, n);
    if (rc < 0) {
        vddk_disk_vsphere_free(out, (uint32)n);   /* calloc'd: unfilled entries are empty */
        return vixdl_fail_engine(op, rc);
    }
    *vms = out;
    *count = (uint32)n;
    return VIX_OK;
}

EXPORT VixError vddk_disk_vsphere_session_list(vddk_vsphere_session *s, const char *vmMoref,
                                               const char *snapshotRef, vddk_vsphere_vm **vms,
                                               uint32 *count)
{
    return session_list("vddk_disk_vsphere_session_list", s, vmMoref, snapshotRef, vms, count);
}

EXPORT VixError vddk_disk_vsphere_list(const VixDiskLibConnectParams *cp,
                                       const char *snapshotRef, vddk_vsphere_vm **vms,
                                       uint32 *count)
{
    const char *op = "vddk_disk_vsphere_list";
    if (!vms || !count || !cp || !cp->serverName || !*cp->serverName)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a server name and places for the result "
                          "are required");
    *vms = NULL;
    *count = 0;
    const char *one = cp->vmxSpec && strncmp(cp->vmxSpec, "moref=", 6) == 0 && cp->vmxSpec[6]
                          ? cp->vmxSpec + 6 : NULL;
    if (snapshotRef && *snapshotRef && !one)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a snapshot needs the VM it belongs to "
                          "(vmxSpec \"moref=vm-N\")");
    vddk_vsphere_session *vs;
    VixError e = session_open(op, cp, &vs);
    if (e == VIX_OK) {
        e = session_list(op, vs, one, snapshotRef, vms, count);
        vddk_disk_vsphere_session_close(vs);
    }
    return e;
}

/* ---- snapshots and configuration -------------------------------------- */

EXPORT VixError vddk_disk_vsphere_snapshot_create(vddk_vsphere_session *s, const char *vmMoref,
                                                  const char *name, const char *description,
                                                  Bool memory, Bool quiesce, char **snapshotRef)
{
    const char *op = "vddk_disk_vsphere_snapshot_create";
    const char *vm = vm_moref(vmMoref);
    if (!s || !vm || !name || !*name || !snapshotRef)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a session, a VM moref, a snapshot name and "
                          "a place for the snapshot's moref are required");
    *snapshotRef = NULL;
    int rc = vs_snapshot_create(s->s, vm, name, description, memory != 0, quiesce != 0,
                                snapshotRef);
    if (rc < 0)
        return fail_object(op, rc);
    vixdl_log("snapshot %s (\"%s\") of VM %s created", *snapshotRef, name, vm);
    return VIX_OK;
}

EXPORT VixError vddk_disk_vsphere_snapshot_remove(vddk_vsphere_session *s,
                                                  const char *snapshotRef, Bool removeChildren)
{
    const char *op = "vddk_disk_vsphere_snapshot_remove";
    if (!s || !snapshotRef || !*snapshotRef)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a session and a snapshot moref are "
                          "required");
    int rc = vs_snapshot_remove(s->s, snapshotRef, removeChildren != 0);
    if (rc < 0)
        return fail_object(op, rc);
    vixdl_log("snapshot %s removed%s", snapshotRef, removeChildren ? " with its children" : "");
    return VIX_OK;
}

EXPORT VixError vddk_disk_vsphere_vm_config(vddk_vsphere_session *s, const char *vmMoref,
                                            char **json)
{
    const char *op = "vddk_disk_vsphere_vm_config";
    const char *vm = vm_moref(vmMoref);
    if (!s || !vm || !json)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a session, a VM moref and a place for the "
                          "JSON are required");
    *json = NULL;
    int rc = vs_vm_config_json(s->s, vm, json);
    return rc < 0 ? fail_object(op, rc) : VIX_OK;
}

EXPORT VixError vddk_disk_server_thumbprints(const char *server, uint32 port, char *sha1,
                                             char *sha256)
{
    const char *op = "vddk_disk_server_thumbprints";
    if (!server || !*server || !sha1 || !sha256)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "a server name and two buffers are required");
    if (port > 65535)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "port %u is not a TCP port", (unsigned)port);
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    cp.serverName = (char *)server;
    cp.port = port;
    struct vs_conf conf;
    vixdl_vsphere_conf(&cp, &conf);
    int rc = vs_probe_thumbprints(&conf, sha1, sha256);
    return rc < 0 ? vixdl_fail_engine(op, rc) : VIX_OK;
}
