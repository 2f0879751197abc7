/* conn.c - connections and connect parameters.
 *
 * A connection with no server name (NULL or "") is local: disks are files.
 * A server name makes it remote: disks are NBD exports (remote.c), or,
 * with a "moref=" vmxSpec, the disks of a vSphere VM (vsphere.c).
 * Everything needed from the caller's
 * parameters is copied during the call (callers free their strings right
 * after Connect returns). */
#include <stdlib.h>
#include <string.h>

#include "vixdl.h"
#include "../util/fileio.h"
#include "../vmdk/vmdk.h"

/* Who owns the strings of a VixDiskLibConnectParams: the caller (structs
 * from AllocateConnectParams) or the library (from GetConnectParams). */
struct VixDiskLibConnectParamsState {
    int library_owns_strings;
};
static struct VixDiskLibConnectParamsState caller_owned = { 0 };
static struct VixDiskLibConnectParamsState library_owned = { 1 };

static int is_remote(const VixDiskLibConnectParams *cp)
{
    return cp && cp->serverName && cp->serverName[0];
}

static void free_strings(VixDiskLibConnectParams *p)
{
    free(p->vmxSpec);
    free(p->serverName);
    free(p->thumbPrint);
    if (p->credType == VIXDISKLIB_CRED_SESSIONID) {
        free(p->creds.sessionId.cookie);
        free(p->creds.sessionId.userName);
        free(p->creds.sessionId.key);
    } else if (p->credType == VIXDISKLIB_CRED_UID) {
        free(p->creds.uid.userName);
        free(p->creds.uid.password);
    }
    free(p->vimApiVer);
    if (p->specType == VIXDISKLIB_SPEC_VSTORAGE_OBJECT) {
        free(p->spec.vStorageObjSpec.id);
        free(p->spec.vStorageObjSpec.datastoreMoRef);
        free(p->spec.vStorageObjSpec.ssId);
    } else if (p->specType == VIXDISKLIB_SPEC_DATASTORE) {
        free(p->spec.dsSpec.datastoreMoRef);
        free(p->spec.dsSpec.diskFolder);
    }
}

/* Deep copy.  For local parameters nothing past creds is read, because
 * callers built against old headers pass shorter structures. */
static VixDiskLibConnectParams *copy_params(const VixDiskLibConnectParams *src)
{
    VixDiskLibConnectParams *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->state = &library_owned;
    if (!src)
        return p;
    int ok = 1;
#define DUP(field) do { if (src->field && !(p->field = vd_strdup(src->field))) ok = 0; } while (0)
    DUP(vmxSpec);
    DUP(serverName);
    DUP(thumbPrint);
    p->privateUse = src->privateUse;
    p->credType = src->credType;
    if (src->credType == VIXDISKLIB_CRED_SESSIONID) {
        DUP(creds.sessionId.cookie);
        DUP(creds.sessionId.userName);
        DUP(creds.sessionId.key);
    } else if (src->credType == VIXDISKLIB_CRED_UID) {
        DUP(creds.uid.userName);
        DUP(creds.uid.password);
    }
    if (is_remote(src)) {
        p->port = src->port;
        p->nfcHostPort = src->nfcHostPort;
        DUP(vimApiVer);
        p->specType = src->specType;
        if (src->specType == VIXDISKLIB_SPEC_VSTORAGE_OBJECT) {
            DUP(spec.vStorageObjSpec.id);
            DUP(spec.vStorageObjSpec.datastoreMoRef);
            DUP(spec.vStorageObjSpec.ssId);
        } else if (src->specType == VIXDISKLIB_SPEC_DATASTORE) {
            DUP(spec.dsSpec.datastoreMoRef);
            DUP(spec.dsSpec.diskFolder);
        }
    }
#undef DUP
    if (!ok) {
        free_strings(p);
        free(p);
        return NULL;
    }
    return p;
}

VIXDL_EXPORT VixError VixDiskLib_ConnectEx(const VixDiskLibConnectParams *cp, Bool readOnly,
                                           const char *snapshotRef, const char *transportModes,
                                           VixDiskLibConnection *connection)
{
    if (!connection)
        return vixdl_fail("ConnectEx", VIX_E_INVALID_ARG, "no place to return the connection");
    *connection = NULL;
    if (!vixdl_initialised())
        return vixdl_fail("ConnectEx", VIX_E_DISK_NOINIT, "VixDiskLib_InitEx has not been "
                          "called");
    struct nbd_remote *net = NULL;
    struct vixdl_vsphere *vs = NULL;
    const char *mode = NULL;
    if (vixdl_is_vsphere(cp)) {
        VixError ve = vixdl_vsphere_connect(cp, snapshotRef, transportModes, &vs);
        if (ve != VIX_OK)
            return ve;
        mode = vixdl_vsphere_mode(vs);
    } else if (is_remote(cp)) {
        VixError re = vixdl_remote_connect(cp, transportModes, &net, &mode);
        if (re != VIX_OK)
            return re;
    } else if (transportModes && *transportModes) {
        /* A local connection always uses "file"; other modes in the
         * caller's preference list simply do not apply. */
        vixdl_log("ConnectEx: local connection, transport modes \"%s\" ignored",
                  transportModes);
    }
    struct VixDiskLibConnectParam *c = calloc(1, sizeof *c);
    if (!c || !(c->params = copy_params(cp))) {
        free(c);
        vixdl_remote_free(net);
        vixdl_vsphere_free(vs);
        return vixdl_fail("ConnectEx", VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    c->readonly = readOnly != 0;
    c->remote = net != NULL || vs != NULL;
    c->net = net;
    c->vs = vs;
    c->mode = mode;
    vixdl_async_conn_init(c);
    if (vixdl_register(&c->obj, VIXDL_CONN) < 0) {
        free_strings(c->params);
        free(c->params);
        vixdl_remote_free(net);
        vixdl_vsphere_free(vs);
        free(c);
        return vixdl_fail("ConnectEx", VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    *connection = (VixDiskLibConnection)c;
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_Connect(const VixDiskLibConnectParams *cp,
                                         VixDiskLibConnection *connection)
{
    return VixDiskLib_ConnectEx(cp, FALSE, NULL, NULL, connection);
}

VIXDL_EXPORT VixError VixDiskLib_Disconnect(VixDiskLibConnection connection)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("Disconnect", connection, c);
    vixdl_unregister_wait(&c->obj);
    free_strings(c->params);
    free(c->params);
    vixdl_remote_free(c->net);
    vixdl_vsphere_free(c->vs);
    free(c);
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_GetConnectParams(const VixDiskLibConnection connection,
                                                  VixDiskLibConnectParams **cp)
{
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP("GetConnectParams", connection, c);
    VixError e = VIX_OK;
    if (!cp) {
        e = vixdl_fail("GetConnectParams", VIX_E_INVALID_ARG, "no place to return parameters");
    } else if (!(*cp = copy_params(c->params))) {
        e = vixdl_fail("GetConnectParams", VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    vixdl_release(&c->obj);
    return e;
}

VIXDL_EXPORT VixDiskLibConnectParams *VixDiskLib_AllocateConnectParams(void)
{
    VixDiskLibConnectParams *p = calloc(1, sizeof *p);
    if (p)
        p->state = &caller_owned;
    return p;
}

VIXDL_EXPORT void VixDiskLib_FreeConnectParams(VixDiskLibConnectParams *cp)
{
    if (!cp)
        return;
    /* Strings of structs from AllocateConnectParams (or the caller's own
     * allocation) belong to the caller: only the struct is freed. */
    if (cp->state == &library_owned)
        free_strings(cp);
    free(cp);
}

VIXDL_EXPORT VixError VixDiskLib_PrepareForAccess(const VixDiskLibConnectParams *cp,
                                                  const char *identity)
{
    /* Blocking VM relocation is a vCenter service; locally (and over our
     * NBD transport) there is nothing to block, so this records the call. */
    if (vixdl_is_vsphere(cp))
        return vixdl_vsphere_access(cp, identity, 1);
    vixdl_log("PrepareForAccess(%s): nothing to do for %s", identity ? identity : "",
              is_remote(cp) ? cp->serverName : "local disks");
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_EndAccess(const VixDiskLibConnectParams *cp,
                                           const char *identity)
{
    if (vixdl_is_vsphere(cp))
        return vixdl_vsphere_access(cp, identity, 0);
    vixdl_log("EndAccess(%s): nothing to do for %s", identity ? identity : "",
              is_remote(cp) ? cp->serverName : "local disks");
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_Cleanup(const VixDiskLibConnectParams *cp,
                                         uint32 *numCleanedUp, uint32 *numRemaining)
{
    /* No server-side state is ever left behind by this library; on vSphere
     * the server is still asked, so that bad parameters fail. */
    if (vixdl_is_vsphere(cp) && cp->specType == VIXDISKLIB_SPEC_VMX) {
        VixError e = vixdl_vsphere_cleanup(cp);
        if (e != VIX_OK)
            return e;
    }
    if (numCleanedUp)
        *numCleanedUp = 0;
    if (numRemaining)
        *numRemaining = 0;
    return VIX_OK;
}

int vixdl_conn_open_disk(struct VixDiskLibConnectParam *c, const char *path, unsigned vf,
                         int codec, struct vdisk **out)
{
    if (c->vs)
        return vixdl_vsphere_open(c->vs, path, vf, codec, out);
    if (c->remote)
        return vdisk_open_nbd(c->net, path, (vf & VMDK_OPEN_RDONLY) != 0, out);
    return vdisk_open_local(path, vf, out);
}
