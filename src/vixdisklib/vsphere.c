/* vsphere.c - ConnectEx to vCenter or ESXi: connection parameters and the
 * config file become a vs_conf; the session, the VM (and snapshot) and the
 * datastore file system live as long as the connection.  Open checks the
 * path against the VM's disks and hands the engine the https file system.
 *
 * A connection is a vSphere one when it names a server and its vmxSpec is
 * "moref=..." (or its spec type is not VMX: vStorageObject and datastore
 * specs exist only on vSphere, and are refused as not supported yet). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vixdl.h"
#include "../util/fileio.h"
#include "../vmdk/vmdk.h"
#include "../vsphere/vsphere.h"

struct vixdl_vsphere {
    struct vs_session *s;
    struct vd_fs *fs;
    char *vm, *snapshot, *vm_name;
};

int vixdl_is_vsphere(const VixDiskLibConnectParams *cp)
{
    if (!cp || !cp->serverName || !cp->serverName[0])
        return 0;
    if (cp->specType != VIXDISKLIB_SPEC_VMX)
        return 1;
    return cp->vmxSpec && strncasecmp(cp->vmxSpec, "moref=", 6) == 0;
}

/* What a connection's parameters say about the server, timeouts and
 * credentials.  The strings point into cp. */
void vixdl_vsphere_conf(const VixDiskLibConnectParams *cp, struct vs_conf *c)
{
    memset(c, 0, sizeof *c);
    c->server = cp->serverName;
    c->port = cp->port;
    c->thumbprint = cp->thumbPrint && *cp->thumbPrint ? cp->thumbPrint : NULL;
    const char *ca = vixdl_config("openvddk.net.CAFile");
    c->ca_file = ca && *ca ? ca : NULL;
    c->verify_chain = vixdl_config_bool("openvddk.net.VerifyCertificate",
                                        vixdl_config_bool("vixDiskLib.linuxSSL."
                                                          "verifyCertificates", 1));
    if (cp->credType == VIXDISKLIB_CRED_UID) {
        c->user = cp->creds.uid.userName;
        c->password = cp->creds.uid.password;
    } else if (cp->credType == VIXDISKLIB_CRED_SESSIONID) {
        c->cookie = cp->creds.sessionId.cookie;
    }
    c->api_version = cp->vimApiVer && *cp->vimApiVer ? cp->vimApiVer : NULL;
    c->connect_timeout_ms = vixdl_config_ms("openvddk.net.ConnectTimeoutMs",
                                            "vixDiskLib.nfc.AcceptTimeoutMs", 30000);
    c->read_timeout_ms = vixdl_config_ms("openvddk.net.ReadTimeoutMs",
                                         "vixDiskLib.nfc.ReadTimeoutMs", 60000);
    long par = vixdl_config_long("openvddk.https.Parallel", 4);
    c->parallel = par < 1 ? 1 : par > 16 ? 16 : (unsigned)par;
    long rs = vixdl_config_long("openvddk.https.RangeSize", 4l << 20);
    c->range_bytes = rs < 65536 ? 65536 : rs > (64l << 20) ? (64u << 20) : (size_t)rs;
}

static VixError check_spec(const char *op, const VixDiskLibConnectParams *cp)
{
    if (cp->specType == VIXDISKLIB_SPEC_VSTORAGE_OBJECT)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "server %s: vStorageObject (first class "
                          "disk) connections are not supported yet; connect with "
                          "VIXDISKLIB_SPEC_VMX and vmxSpec \"moref=vm-N\"", cp->serverName);
    if (cp->specType == VIXDISKLIB_SPEC_DATASTORE)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "server %s: datastore connections are not "
                          "supported yet; connect with VIXDISKLIB_SPEC_VMX and vmxSpec "
                          "\"moref=vm-N\"", cp->serverName);
    if (cp->specType != VIXDISKLIB_SPEC_VMX)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "server %s: connection spec type %d is "
                          "unknown; use VIXDISKLIB_SPEC_VMX", cp->serverName,
                          (int)cp->specType);
    if (!cp->vmxSpec || strncasecmp(cp->vmxSpec, "moref=", 6) != 0 || !cp->vmxSpec[6])
        return vixdl_fail(op, VIX_E_INVALID_ARG, "server %s: vmxSpec must be \"moref=vm-N\"",
                          cp->serverName);
    return VIX_OK;
}

/* The transport modes a vSphere connection can serve, in order of the
 * caller's list; only https exists so far. */
static VixError pick_mode(const char *op, const VixDiskLibConnectParams *cp, const char *modes)
{
    if (!modes || !*modes)
        return VIX_OK;
    char *copy = vd_strdup(modes);
    if (!copy)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    int found = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ":", &save); t && !found; t = strtok_r(NULL, ":", &save)) {
        if (strcasecmp(t, "https") == 0)
            found = 1;
        else
            vixdl_log("%s: server %s: transport mode \"%s\" is not available for vSphere "
                      "disks in this library", op, cp->serverName, t);
    }
    free(copy);
    if (!found)
        return vixdl_fail(op, VIX_E_CANNOT_CONNECT_TO_HOST, "server %s: none of the transport "
                          "modes \"%s\" can be served; this library reaches vSphere disks "
                          "through https (nbd and nbdssl, VMware's NFC, are not implemented "
                          "yet; hotadd and san are not offered)", cp->serverName, modes);
    return VIX_OK;
}

void vixdl_vsphere_free(struct vixdl_vsphere *v)
{
    if (!v)
        return;
    vs_https_fs_free(v->fs);
    vs_session_close(v->s);
    free(v->vm);
    free(v->snapshot);
    free(v->vm_name);
    free(v);
}

/* Open a session for cp (ConnectEx, PrepareForAccess, the inventory). */
VixError vixdl_vsphere_session(const char *op, const VixDiskLibConnectParams *cp,
                            struct vs_session **out)
{
    if (cp->credType != VIXDISKLIB_CRED_UID && cp->credType != VIXDISKLIB_CRED_SESSIONID)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "server %s: credential type %d is not "
                          "supported; use VIXDISKLIB_CRED_UID or VIXDISKLIB_CRED_SESSIONID",
                          cp->serverName, (int)cp->credType);
    struct vs_conf conf;
    vixdl_vsphere_conf(cp, &conf);
    int rc = vs_session_open(&conf, out);
    return rc < 0 ? vixdl_fail_engine(op, rc) : VIX_OK;
}

VixError vixdl_vsphere_connect(const VixDiskLibConnectParams *cp, const char *snapshot,
                               const char *modes, struct vixdl_vsphere **out)
{
    const char *op = "ConnectEx";
    *out = NULL;
    VixError e = check_spec(op, cp);
    if (e == VIX_OK)
        e = pick_mode(op, cp, modes);
    if (e != VIX_OK)
        return e;
    struct vixdl_vsphere *v = calloc(1, sizeof *v);
    if (!v)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    if ((e = vixdl_vsphere_session(op, cp, &v->s)) != VIX_OK) {
        free(v);
        return e;
    }
    v->vm = vd_strdup(cp->vmxSpec + 6);
    if (snapshot && *snapshot)
        v->snapshot = vd_strdup(snapshot);
    struct vs_vm *vm = NULL;
    int rc = v->vm && (!snapshot || !*snapshot || v->snapshot) ? 0 : -VD_E_NOMEM;
    if (rc == 0)
        rc = vs_vm_get(v->s, v->vm, v->snapshot, &vm);
    if (rc == 0)
        rc = vs_https_fs(v->s, vm->dc_path, &v->fs);
    if (rc == 0 && !(v->vm_name = vd_strdup(vm->name)))
        rc = -VD_E_NOMEM;
    if (rc < 0) {
        e = rc == -VD_E_NOMEM ? vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory")
                              : vixdl_fail_engine(op, rc);
        vs_vm_free(vm);
        vixdl_vsphere_free(v);
        return e;
    }
    vixdl_log("ConnectEx: server %s (%s %s): VM %s (%s)%s%s, %zu disk(s), datacenter %s, "
              "transport https", cp->serverName, vs_session_api_type(v->s) ?
              vs_session_api_type(v->s) : "?", vs_session_api_version(v->s) ?
              vs_session_api_version(v->s) : "", vm->moref, vm->name,
              v->snapshot ? ", snapshot " : "", v->snapshot ? v->snapshot : "", vm->ndisks,
              vm->dc_path);
    vs_vm_free(vm);
    *out = v;
    return VIX_OK;
}

int vixdl_vsphere_open(struct vixdl_vsphere *v, const char *path, unsigned vf,
                       struct vdisk **out)
{
    /* Re-read the VM: its current disks change as snapshots come and go. */
    struct vs_vm *vm;
    int rc = vs_vm_get(v->s, v->vm, v->snapshot, &vm);
    if (rc < 0)
        return rc;
    const struct vs_disk *d = vs_vm_find_disk(vm, path, NULL);
    if (!d) {
        char list[1024] = "";
        for (size_t i = 0; i < vm->ndisks; i++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", vm->disks[i].file);
        }
        rc = vd_err_set(VD_E_NOTFOUND, "%s is not a disk of VM %s (%s)%s%s; its disks: %s",
                        path, vm->moref, vm->name, v->snapshot ? " as of snapshot " : "",
                        v->snapshot ? v->snapshot : "", vm->ndisks ? list : "none");
        vs_vm_free(vm);
        return rc;
    }
    vixdl_log("Open: %s is disk %d of VM %s%s%s", path, d->key, vm->moref,
              v->snapshot ? ", snapshot " : "", v->snapshot ? v->snapshot : "");
    vs_vm_free(vm);
    return vdisk_open_fs(path, vf | VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, v->fs, "https", out);
}

/* PrepareForAccess / EndAccess: block (or unblock) relocation of the VM
 * while its disks are read. */
VixError vixdl_vsphere_access(const VixDiskLibConnectParams *cp, const char *identity,
                              int prepare)
{
    const char *op = prepare ? "PrepareForAccess" : "EndAccess";
    VixError e = check_spec(op, cp);
    if (e != VIX_OK)
        return e;
    struct vs_session *s;
    if ((e = vixdl_vsphere_session(op, cp, &s)) != VIX_OK)
        return e;
    const char *vm = cp->vmxSpec + 6;
    const char *who = identity && *identity ? identity : "openvddk";
    int rc = prepare ? vs_vm_disable_methods(s, vm, who) : vs_vm_enable_methods(s, vm, who);
    if (rc == -VD_E_UNSUPPORTED) {
        vixdl_log("%s(%s): server %s does not implement %s; VM %s is not protected from "
                  "relocation (%s)", op, who, cp->serverName,
                  prepare ? "DisableMethods" : "EnableMethods", vm, vd_err_msg());
        rc = 0;
    } else if (rc == 0) {
        vixdl_log("%s(%s): relocation of VM %s %s", op, who, vm,
                  prepare ? "blocked" : "allowed again");
    }
    e = rc < 0 ? vixdl_fail_engine(op, rc) : VIX_OK;
    vs_session_close(s);
    return e;
}

/* Cleanup: this library leaves nothing behind on a server (no snapshots,
 * no mounts), so there is nothing to remove; the server is still asked, so
 * that wrong parameters fail as they would with VDDK. */
VixError vixdl_vsphere_cleanup(const VixDiskLibConnectParams *cp)
{
    struct vs_session *s;
    VixError e = vixdl_vsphere_session("Cleanup", cp, &s);
    if (e == VIX_OK)
        vs_session_close(s);
    return e;
}
