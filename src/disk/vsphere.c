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
        o->depth = (uint32)src->snaps[i].depth;
    }
    return ok ? 0 : -1;
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
    struct vs_session *s;
    VixError e = vixdl_vsphere_session(op, cp, &s);
    if (e != VIX_OK)
        return e;
    struct vs_vm **list = NULL, *single = NULL;
    size_t n = 0;
    int rc = one ? vs_vm_get(s, one, snapshotRef, &single) : vs_vm_list(s, &list, &n);
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
        e = vixdl_fail_engine(op, rc);
        vddk_disk_vsphere_free(out, (uint32)n);   /* calloc'd: unfilled entries are empty */
    } else {
        *vms = out;
        *count = (uint32)n;
    }
    vs_session_close(s);
    return e;
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
