/* vsphere.h - the vSphere side of a connection.
 *
 * A vs_session is one vim25 SOAP session with a vCenter or ESXi host over
 * HTTPS: it logs in (or reuses a caller's session cookie), resolves a VM
 * moref and an optional snapshot moref into the VM's disks (device key,
 * file, parent chain), and reads datastore files through the host's file
 * service (/folder) with HTTP Range requests.  vs_https_fs() turns the
 * latter into a vd_fs, so the one VMDK engine reads remote disks.
 *
 * HTTP is libcurl (its GnuTLS build); SOAP replies are parsed with
 * libxml2, by namespace and local name, never by prefix.  A certificate
 * thumbprint (SHA-1 or SHA-256 of the DER certificate) is checked on a
 * probe connection before anything secret is sent; every later connection
 * is pinned to that certificate's public key.
 *
 * Every function returns 0 or a negative vd_err code with the detail in
 * vd_err_msg(): VD_E_NET_REFUSED, VD_E_NET_CONNECT (unreachable, TLS
 * failure), VD_E_CERT (thumbprint or chain), VD_E_AUTH (login), VD_E_NOTFOUND
 * (unknown moref), VD_E_NET_LOST (connection lost or timed out). */
#ifndef VD_VSPHERE_H
#define VD_VSPHERE_H

#include <stddef.h>
#include <stdint.h>

struct vd_fs;

struct vs_conf {
    const char *server;            /* host name or address ("[::1]" allowed) */
    unsigned port;                 /* 0: 443 */
    const char *thumbprint;        /* SHA-1/SHA-256 colon hex; NULL: verify the chain */
    const char *ca_file;           /* extra trust anchors, or NULL */
    int verify_chain;              /* without thumbprint: 0 accepts any certificate */
    const char *user, *password;   /* Login */
    const char *cookie;            /* or: an existing session's cookie */
    const char *api_version;       /* SOAPAction version; NULL: "6.5" */
    int connect_timeout_ms;
    int read_timeout_ms;           /* a transfer that makes no progress this long fails */
    unsigned parallel;             /* range requests in flight for one large read (>= 1) */
    size_t range_bytes;            /* size of each of those requests */
};

struct vs_session;

/* Connect, check the certificate, log in.  The session keeps copies of
 * everything in conf. */
int vs_session_open(const struct vs_conf *conf, struct vs_session **out);
/* Log out (only a session this library logged into) and free. */
void vs_session_close(struct vs_session *s);

/* "VirtualCenter" or "HostAgent", and the API version the server reports. */
const char *vs_session_api_type(const struct vs_session *s);
const char *vs_session_api_version(const struct vs_session *s);
/* The cookie in use ("vmware_soap_session=..."). */
const char *vs_session_cookie(const struct vs_session *s);

/* Thumbprints of the certificate a server presents (no session needed).
 * sha1 holds 60 bytes, sha256 96 (upper-case colon hex). */
int vs_probe_thumbprints(const struct vs_conf *conf, char *sha1, char *sha256);

/* One virtual disk of a VM (or of a snapshot's configuration). */
struct vs_disk {
    int key;                       /* device key (2000 = first SCSI disk) */
    char *file;                    /* "[ds] dir/name.vmdk": the leaf */
    char **chain;                  /* file, then its parents (backing.parent) */
    size_t nchain;
    uint64_t capacity;             /* bytes */
    char *datastore;               /* datastore moref of the leaf, or NULL */
    char *label;                   /* deviceInfo.label, or NULL */
};

struct vs_snapshot {
    char *moref, *name, *created;
    char *description;             /* NULL when empty */
    int depth;                     /* 0 for a root snapshot */
};

struct vs_vm {
    char *moref, *name, *host, *power, *uuid;
    char *dc_path;                 /* inventory path of its datacenter ("DC0") */
    struct vs_disk *disks;         /* the VM's (or the snapshot's) disks */
    size_t ndisks;
    struct vs_snapshot *snaps;     /* the VM's snapshot tree, depth first */
    size_t nsnaps;
    char *snapshot;                /* the snapshot the disks come from, or NULL */
};

/* The VM with this moref and, when snapshot is set, the disks as that
 * snapshot recorded them.  Unknown moref or snapshot: VD_E_NOTFOUND. */
int vs_vm_get(struct vs_session *s, const char *moref, const char *snapshot,
              struct vs_vm **out);
/* Every VM the session can see (disks of the current configuration). */
int vs_vm_list(struct vs_session *s, struct vs_vm ***out, size_t *count);
void vs_vm_free(struct vs_vm *vm);
void vs_vm_list_free(struct vs_vm **vms, size_t count);
/* The disk of vm whose chain contains path (datastore path, compared
 * without regard to the spacing after "]"), or NULL. */
const struct vs_disk *vs_vm_find_disk(const struct vs_vm *vm, const char *path,
                                      size_t *chain_index);

/* VirtualMachine.CreateSnapshot_Task, waiting for the task to end; the new
 * snapshot's moref in *snapshot (malloc'd).  A fault of the task is
 * VD_E_REMOTE (or a closer code: VD_E_NOTFOUND, VD_E_ACCESS,
 * VD_E_UNSUPPORTED) with the fault's type and message. */
int vs_snapshot_create(struct vs_session *s, const char *vm, const char *name,
                       const char *description, int memory, int quiesce, char **snapshot);
/* VirtualMachineSnapshot.RemoveSnapshot_Task (consolidate true), waiting
 * for it.  An unknown snapshot is VD_E_NOTFOUND. */
int vs_snapshot_remove(struct vs_session *s, const char *snapshot, int remove_children);
/* The VM's config property (VirtualMachineConfigInfo) as JSON (malloc'd). */
int vs_vm_config_json(struct vs_session *s, const char *vm, char **json);

/* AuthorizationManager.DisableMethods / EnableMethods on a VM for the
 * methods a backup must block (relocation, disk changes); source is the
 * identity given to PrepareForAccess, the same for both calls.  VD_E_UNSUPPORTED
 * when the server does not implement them. */
int vs_vm_disable_methods(struct vs_session *s, const char *vm, const char *source);
int vs_vm_enable_methods(struct vs_session *s, const char *vm, const char *source);

/* Datastore files of one datacenter as a read-only file system: paths are
 * "[ds] dir/file.vmdk".  The fs lives as long as the session. */
int vs_https_fs(struct vs_session *s, const char *dc_path, struct vd_fs **out);
void vs_https_fs_free(struct vd_fs *fs);

/* An NFC ticket (HostServiceTicket) for the VM's disks. */
struct vs_ticket {
    char *host;                    /* ESXi host to dial; NULL from a host itself */
    unsigned port;                 /* 902 unless the server says otherwise */
    char *service;                 /* "nfc" (ESXi) or "vpxa-nfc" (vCenter) */
    char *session;                 /* one-time session id */
    char *thumbprint;              /* SHA-1 of the host's certificate, or NULL */
    char *version;                 /* serviceVersion ("1.1") */
};
/* disk_key < 0: NfcGetVmFiles (every file of the VM, read-only); else
 * NfcRandomAccessOpenDisk for that disk (read-write), on host (the VM's
 * host moref, or NULL).  The NfcService moref comes from
 * RetrieveInternalContent, once per session. */
int vs_nfc_ticket(struct vs_session *s, const char *vm, int disk_key, const char *host,
                  struct vs_ticket *out);
void vs_ticket_free(struct vs_ticket *t);
/* NfcGetServerNfcLibVersion for a host (after a first ticket). */
int vs_nfc_lib_version(struct vs_session *s, const char *host, unsigned *version);
/* The server name the session was opened with. */
const char *vs_session_server(const struct vs_session *s);

/* Split "[ds] dir/file" into the datastore name and the path inside it
 * (both malloc'd).  Returns 0, or VD_E_INVAL when path has no "[ds]". */
int vs_split_ds_path(const char *path, char **ds, char **rel);

#endif
