/* nbd_datastore.h - VMDK files in datastore directories as NBD exports.
 *
 * `--datastore NAME=DIR` makes DIR's disks available under VDDK-style names
 * "[NAME] vm/disk.vmdk" (also "NAME/vm/disk.vmdk", which fits in nbd://
 * URIs).  A name resolves to a file only if its real path (symbolic links
 * and ".." resolved) lies inside DIR, and a disk is served only if every
 * file of its chain lies inside some datastore: disks are opened through
 * the file layer under a policy that checks each file (extents, parents)
 * before it is opened, so no file outside is ever opened.  Every name
 * refused for a reason involving a path (missing, outside, not a regular
 * file, not readable) gets one and the same reply, NBD_REP_ERR_UNKNOWN
 * "no such disk (...)"; the log (nbd_ds_set_log) says why. */
#ifndef VD_NET_NBD_DATASTORE_H
#define VD_NET_NBD_DATASTORE_H

#include "nbd_server.h"

struct nbd_datastores;

int nbd_ds_new(struct nbd_datastores **out);
void nbd_ds_free(struct nbd_datastores *m);
/* "NAME=DIR"; DIR must be an existing directory. */
int nbd_ds_add(struct nbd_datastores *m, const char *spec);
int nbd_ds_count(const struct nbd_datastores *m);
/* single_link: serve the named file alone, not its parents (read-only);
 * readonly: open every disk read-only. */
void nbd_ds_set_mode(struct nbd_datastores *m, int single_link, int readonly);
/* Where the real reason for a refused export is logged (NBD_LOG_INFO),
 * for messages up to level. */
void nbd_ds_set_log(struct nbd_datastores *m, void (*log)(void *ctx, int level, const char *msg),
                    void *ctx, int level);
/* A backend for the server over these datastores. */
void nbd_ds_backend(struct nbd_datastores *m, struct nbd_backend *b);
/* The datastore name and directory of entry i (for logs). */
const char *nbd_ds_name(const struct nbd_datastores *m, int i);
const char *nbd_ds_dir(const struct nbd_datastores *m, int i);

#endif
