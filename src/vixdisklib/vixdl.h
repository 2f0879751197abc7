/* vixdl.h - internals of the VixDiskLib ABI layer.
 *
 * This layer checks arguments, keeps the handle tables, converts sectors
 * to bytes, runs asynchronous I/O, loads the config file (util/config.h)
 * and routes log messages (its own and util/log.h's) to the caller.  It
 * holds no format logic: disks are vdisk objects. */
#ifndef VD_VIXDL_H
#define VD_VIXDL_H

#include <pthread.h>
#include <stdatomic.h>

#include "vixDiskLib.h"
#include "../util/config.h"
#include "../util/err.h"
#include "../util/vdisk.h"
#include "../net/vdisk_nbd.h"

#define VIXDL_EXPORT __attribute__((visibility("default")))

/* ---- init, config, logging (init.c) ---- */

int vixdl_initialised(void);
/* The API major version the library was initialised for (the lowest of
 * the InitEx calls in force; 8 when not initialised).  Below 7, callers'
 * VixDiskLibCreateParams end before the 7.0 sector-size fields. */
uint32 vixdl_api_major(void);
/* The config file's keys are read with vd_config_* (util/config.h), which
 * the first InitEx loads and the last Exit clears. */
void vixdl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vixdl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a failure of operation op: send "op: detail" to the warn callback
 * and return code.  The detail is printf-formatted. */
VixError vixdl_fail(const char *op, VixError code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Report an engine failure (negative vd_err rc, detail in vd_err_msg()). */
VixError vixdl_fail_engine(const char *op, int rc);
/* The VixError for an engine error code. */
VixError vixdl_from_vd(int rc);
/* VixDiskLib create parameters as the engine's (diskops.c); 0 or
 * -VD_E_INVAL with the detail set. */
struct vmdk_create_params;
int vixdl_create_params(const VixDiskLibCreateParams *cp, struct vmdk_create_params *p);

/* ---- objects and handle tables (registry.c) ---- */

enum vixdl_kind { VIXDL_CONN = 0x434f4e4e, VIXDL_DISK = 0x4449534b };

struct vixdl_obj {
    enum vixdl_kind kind;
    atomic_int refs;          /* calls in progress on this object */
};

int vixdl_register(struct vixdl_obj *o, enum vixdl_kind kind);
/* Take a reference on a live object of this kind; 0 if it is not one. */
int vixdl_acquire(const void *p, enum vixdl_kind kind);
void vixdl_release(struct vixdl_obj *o);
/* Remove from the table (no new acquires), then wait until the caller's
 * reference is the only one left. */
void vixdl_unregister_wait(struct vixdl_obj *o);
/* Free the table at the last Exit if no object is left in it. */
void vixdl_registry_release(void);

/* ---- connections (conn.c) ---- */

struct VixDiskLibConnectParam {
    struct vixdl_obj obj;
    int remote;
    int readonly;
    VixDiskLibConnectParams *params;   /* library-owned deep copy */
    struct nbd_remote *net;            /* remote: how to reach the server */
    struct vixdl_vsphere *vs;          /* vSphere: session, VM, datastore files */
    const char *mode;                  /* remote: "nbdssl", "nbd" or "https" */
    int async_workers[2];              /* async.c: pool size for a request a worker
                                        * carries out [0], or only completes [1] */
};

/* Open a disk of connection c (local file, NBD export or vSphere disk);
 * vf are enum vmdk_open_flags; codec (enum nfc_codec) is the wire
 * compression for NFC opens, ignored elsewhere. */
int vixdl_conn_open_disk(struct VixDiskLibConnectParam *c, const char *path, unsigned vf,
                         int codec, struct vdisk **out);

/* ---- vSphere connections (vsphere.c) ---- */

struct vixdl_vsphere;
/* A server name and a "moref=" vmxSpec (or a non-VMX spec type). */
int vixdl_is_vsphere(const VixDiskLibConnectParams *cp);
VixError vixdl_vsphere_connect(const VixDiskLibConnectParams *cp, const char *snapshot,
                               const char *modes, struct vixdl_vsphere **out);
void vixdl_vsphere_free(struct vixdl_vsphere *v);
/* Open a disk of the VM with the connection's transport modes in order
 * (nbdssl, nbd: NFC; https: datastore files, read-only). */
int vixdl_vsphere_open(struct vixdl_vsphere *v, const char *path, unsigned vf, int codec,
                       struct vdisk **out);
/* The first transport mode of the connection ("nbdssl", "nbd", "https"). */
const char *vixdl_vsphere_mode(const struct vixdl_vsphere *v);
VixError vixdl_vsphere_access(const VixDiskLibConnectParams *cp, const char *identity,
                              int prepare);
VixError vixdl_vsphere_cleanup(const VixDiskLibConnectParams *cp);
struct vs_conf;
struct vs_session;
/* The vs_conf for cp and the config file (strings point into cp). */
void vixdl_vsphere_conf(const VixDiskLibConnectParams *cp, struct vs_conf *c);
/* A logged-in session for cp; failures are reported as operation op. */
VixError vixdl_vsphere_session(const char *op, const VixDiskLibConnectParams *cp,
                               struct vs_session **out);

/* ---- asynchronous I/O (async.c) ---- */

/* Work out, from the configuration, how many workers c's requests want
 * (once per connection: the submit path then reads two ints). */
void vixdl_async_conn_init(struct VixDiskLibConnectParam *c);

/* ---- remote connections (remote.c) ---- */

VixError vixdl_remote_connect(const VixDiskLibConnectParams *cp, const char *modes,
                              struct nbd_remote **out, const char **mode);
void vixdl_remote_free(struct nbd_remote *r);

/* ---- disks (handle.c, async.c) ---- */

struct VixDiskLibHandleStruct {
    struct vixdl_obj obj;
    struct VixDiskLibConnectParam *conn;
    struct vdisk *disk;
    char *path;
    uint32 flags;
    uint64 capacity_sectors;
    pthread_mutex_t alock;    /* async bookkeeping */
    pthread_cond_t acond;
    int pending;              /* async requests not yet completed */
    int nas_logged;           /* GetInfo logged the NAS plugin's figures */
};

#define VIXDL_CONN_OP(op, conn, c)                                           \
    do {                                                                    \
        if (!(conn))                                                        \
            return vixdl_fail(op, VIX_E_INVALID_ARG, "no connection given");\
        if (!vixdl_acquire((conn), VIXDL_CONN))                             \
            return vixdl_fail(op, VIX_E_INVALID_HANDLE,                     \
                              "%p is not an open connection", (void *)(conn)); \
        (c) = (struct VixDiskLibConnectParam *)(conn);                      \
    } while (0)

VixError vixdl_get_disk(const char *op, VixDiskLibHandle h);
/* VixDiskLib_Open as operation op; raw: path is a raw image (a local file
 * or block device, vdisk_open_raw), refused on a remote connection. */
VixError vixdl_open(const char *op, const VixDiskLibConnection connection, const char *path,
                    uint32 flags, int raw, VixDiskLibHandle *diskHandle);
int vixdl_async_submit(VixDiskLibHandle h, int write, uint64 off, uint64 len, void *buf,
                       VixDiskLibCompletionCB cb, void *data);
void vixdl_async_wait(VixDiskLibHandle h);
void vixdl_async_shutdown(void);
/* Synchronous I/O in bytes honouring UNBUFFERED (bounce buffers). */
int vixdl_io(VixDiskLibHandle h, int write, void *buf, uint64 len, uint64 off);

#endif
