/* vdisk_nbd.h - a remote disk (an NBD export) as a vdisk object.
 *
 * The disk's transport is "nbdssl" when the connection runs TLS, "nbd"
 * otherwise.  Allocation status comes from base:allocation (cached per
 * query window, dropped on writes); GetInfo geometry, adapter and the
 * disk database come from the export description an openvddk server
 * sends (the disk database in descriptor syntax); for other servers they
 * are derived from the size.  Disk-database writes fail: NBD cannot carry
 * them. */
#ifndef VD_NET_VDISK_NBD_H
#define VD_NET_VDISK_NBD_H

#include "nbd_client.h"
#include "../util/vdisk.h"

int vdisk_open_nbd(const struct nbd_remote *r, const char *export_name, int readonly,
                   struct vdisk **out);
/* Is d a remote disk? */
int vdisk_is_nbd(const struct vdisk *d);

#endif
