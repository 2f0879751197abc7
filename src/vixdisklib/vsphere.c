/* vsphere.c - ConnectEx to vCenter or ESXi: connection parameters and the
 * config file become a vs_conf; the session, the VM (and snapshot) and the
 * datastore file system live as long as the connection.  Open checks the
 * path against the VM's (or snapshot's) disks, then tries the
 * connection's transport modes in order: nbdssl and nbd get an NFC ticket
 * and open the disk on its ESXi host (src/nfc); https hands the engine the
 * datastore file system (read-only).
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
#include "../nfc/vdisk_nfc.h"
#include "../vmdk/vmdk.h"
#include "../vsphere/vsphere.h"

enum vsmode { MODE_NBDSSL, MODE_NBD, MODE_HTTPS };
static const char *const mode_names[] = { "nbdssl", "nbd", "https" };

struct vixdl_vsphere {
    struct vs_session *s;
    struct vd_fs *fs;
    char *vm, *snapshot, *vm_name;
    enum vsmode modes[3];
    int nmodes;
    /* NFC: where and how. */
    unsigned nfc_port;                 /* ConnectParams.nfcHostPort; 0: the ticket's */
    unsigned lib_version;              /* the host's NFC library version; 0: not asked yet */
    int verify_chain, connect_timeout_ms, read_timeout_ms;
    char *ca_file;
    uint32_t buf_size, buf_count;
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
    const char *ca = vd_config_get("openvddk.net.CAFile");
    c->ca_file = ca && *ca ? ca : NULL;
    c->verify_chain = vd_config_bool("openvddk.net.VerifyCertificate",
                                     vd_config_bool("vixDiskLib.linuxSSL."
                                                    "verifyCertificates", 1));
    if (cp->credType == VIXDISKLIB_CRED_UID) {
        c->user = cp->creds.uid.userName;
        c->password = cp->creds.uid.password;
    } else if (cp->credType == VIXDISKLIB_CRED_SESSIONID) {
        c->cookie = cp->creds.sessionId.cookie;
    }
    c->api_version = cp->vimApiVer && *cp->vimApiVer ? cp->vimApiVer : NULL;
    c->connect_timeout_ms = vd_config_ms("openvddk.net.ConnectTimeoutMs",
                                         "vixDiskLib.nfc.AcceptTimeoutMs", 30000);
    c->read_timeout_ms = vd_config_ms("openvddk.net.ReadTimeoutMs",
                                      "vixDiskLib.nfc.ReadTimeoutMs", 60000);
    long par = vd_config_long("openvddk.https.Parallel", 4);
    c->parallel = par < 1 ? 1 : par > 16 ? 16 : (unsigned)par;
    long rs = vd_config_long("openvddk.https.RangeSize", 4l << 20);
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

/* The transport modes of a vSphere connection, in the order of the
 * caller's list (none given: nbdssl, nbd, https, as VDDK tries them).
 * Modes this library does not offer for vSphere (hotadd, san, file) are
 * skipped with a log line. */
static VixError pick_modes(const char *op, const VixDiskLibConnectParams *cp, const char *modes,
                           struct vixdl_vsphere *v)
{
    if (!modes || !*modes) {
        v->modes[0] = MODE_NBDSSL;
        v->modes[1] = MODE_NBD;
        v->modes[2] = MODE_HTTPS;
        v->nmodes = 3;
        return VIX_OK;
    }
    char *copy = vd_strdup(modes);
    if (!copy)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    char *save = NULL;
    for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save)) {
        int m = -1;
        for (int i = 0; i < 3; i++)
            if (strcasecmp(t, mode_names[i]) == 0)
                m = i;
        int dup = 0;
        for (int i = 0; i < v->nmodes; i++)
            dup |= (int)v->modes[i] == m;
        if (m < 0)
            vixdl_log("%s: server %s: transport mode \"%s\" is not available for vSphere "
                      "disks in this library", op, cp->serverName, t);
        else if (!dup)
            v->modes[v->nmodes++] = (enum vsmode)m;
    }
    free(copy);
    if (!v->nmodes)
        return vixdl_fail(op, VIX_E_CANNOT_CONNECT_TO_HOST, "server %s: none of the transport "
                          "modes \"%s\" can be served; this library reaches vSphere disks "
                          "through nbdssl, nbd (NFC) and https (hotadd and san are not "
                          "offered)", cp->serverName, modes);
    return VIX_OK;
}

const char *vixdl_vsphere_mode(const struct vixdl_vsphere *v)
{
    return mode_names[v->modes[0]];
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
    free(v->ca_file);
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
    if (e != VIX_OK)
        return e;
    struct vixdl_vsphere *v = calloc(1, sizeof *v);
    if (!v)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    if ((e = pick_modes(op, cp, modes, v)) != VIX_OK ||
        (e = vixdl_vsphere_session(op, cp, &v->s)) != VIX_OK) {
        free(v);
        return e;
    }
    struct vs_conf conf;
    vixdl_vsphere_conf(cp, &conf);
    v->ca_file = conf.ca_file ? vd_strdup(conf.ca_file) : NULL;
    v->verify_chain = conf.verify_chain;
    v->connect_timeout_ms = conf.connect_timeout_ms;
    v->read_timeout_ms = conf.read_timeout_ms;
    v->nfc_port = cp->nfcHostPort;
    long bs = vd_config_long("vixDiskLib.nfcAio.Session.BufSizeIn64KB", 1);
    long bc = vd_config_long("vixDiskLib.nfcAio.Session.BufCount", 4);
    v->buf_size = (uint32_t)(bs < 1 ? 1 : bs > 32 ? 32 : bs) * 65536u;
    v->buf_count = (uint32_t)(bc < 1 ? 1 : bc > 64 ? 64 : bc);
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
    char ml[32] = "";
    for (int i = 0; i < v->nmodes; i++)
        snprintf(ml + strlen(ml), sizeof ml - strlen(ml), "%s%s", i ? ":" : "",
                 mode_names[v->modes[i]]);
    vixdl_log("ConnectEx: server %s (%s %s): VM %s (%s)%s%s, %zu disk(s), datacenter %s, "
              "transport modes %s", cp->serverName, vs_session_api_type(v->s) ?
              vs_session_api_type(v->s) : "?", vs_session_api_version(v->s) ?
              vs_session_api_version(v->s) : "", vm->moref, vm->name,
              v->snapshot ? ", snapshot " : "", v->snapshot ? v->snapshot : "", vm->ndisks,
              vm->dc_path, ml);
    vs_vm_free(vm);
    *out = v;
    return VIX_OK;
}

/* Open path on its ESXi host over NFC with a fresh ticket. */
static int open_nfc(struct vixdl_vsphere *v, const struct vs_vm *vm, const struct vs_disk *d,
                    const char *path, int rw, int ssl, int codec, struct vdisk **out)
{
    struct vs_ticket t;
    int rc = vs_nfc_ticket(v->s, v->vm, rw ? d->key : -1, rw ? vm->host : NULL, &t);
    if (rc < 0)
        return rc;
    if (!v->lib_version) {
        unsigned lv = 0;
        if (vm->host && vs_nfc_lib_version(v->s, vm->host, &lv) == 0 && lv) {
            v->lib_version = lv;
        } else {
            /* Every host this library can reach speaks NFC AIO; without an
             * answer, assume the current ESXi (8: version 11). */
            vixdl_log("Open: %s: NFC library version of host %s unknown (%s); assuming 11",
                      path, vm->host ? vm->host : "?", vm->host ? vd_err_msg() : "no host");
            v->lib_version = 11;
        }
    }
    /* A ticket from a host itself names no host: dial the server we are
     * logged into (without any port of its own). */
    char *host = t.host ? vd_strdup(t.host) : vd_strdup(vs_session_server(v->s));
    if (!host) {
        vs_ticket_free(&t);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    struct nfc_params p = {
        .host = host, .port = v->nfc_port ? v->nfc_port : t.port, .ssl = ssl,
        .service = t.service, .session = t.session, .thumbprint = t.thumbprint,
        .ca_file = v->ca_file, .verify_chain = v->verify_chain,
        .lib_version = v->lib_version, .buf_size = v->buf_size, .buf_count = v->buf_count,
        .connect_timeout_ms = v->connect_timeout_ms,
        .read_timeout_ms = v->read_timeout_ms,
    };
    vixdl_log("Open: %s: NFC ticket for %s:%u (service %s, %s), %s", path, host, p.port,
              t.service, rw ? "read-write" : "read-only", ssl ? "nbdssl" : "nbd");
    rc = vdisk_open_nfc(&p, path, rw, codec, out);
    free(host);
    vs_ticket_free(&t);
    return rc;
}

int vixdl_vsphere_open(struct vixdl_vsphere *v, const char *path, unsigned vf, int codec,
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
    int rw = !(vf & VMDK_OPEN_RDONLY);
    char tried[1024] = "";
    rc = -VD_E_UNSUPPORTED;
    for (int i = 0; i < v->nmodes; i++) {
        enum vsmode m = v->modes[i];
        if (m == MODE_HTTPS) {
            /* Always read-only; a write through it fails then (check_write). */
            rc = vdisk_open_fs(path, vf | VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, v->fs, "https",
                               out);
        } else {
            rc = open_nfc(v, vm, d, path, rw, m == MODE_NBDSSL, codec, out);
        }
        if (rc == 0)
            break;
        size_t n = strlen(tried);
        snprintf(tried + n, sizeof tried - n, "%s%s: %s", n ? "; " : "", mode_names[m],
                 vd_err_msg());
        if (rc == -VD_E_NOMEM)
            break;
        if (i + 1 < v->nmodes)
            vixdl_log("Open: %s: transport %s failed (%s); trying %s", path, mode_names[m],
                      vd_err_msg(), mode_names[v->modes[i + 1]]);
    }
    if (rc < 0 && v->nmodes > 1) {
        int code = vd_err_code();
        vd_err_set(code ? code : VD_E_NET_CONNECT, "%s", tried);
    }
    vs_vm_free(vm);
    return rc;
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
