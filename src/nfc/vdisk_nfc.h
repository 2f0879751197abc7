/* vdisk_nfc.h - a disk on an ESXi host reached over NFC (transport modes
 * nbd and nbdssl) as a vdisk object.  The transport is "nbdssl" when NFC
 * runs inside TLS, "nbd" otherwise.  Disk-database writes fail: the
 * protocol as known has none. */
#ifndef VD_NFC_VDISK_NFC_H
#define VD_NFC_VDISK_NFC_H

#include "nfc_client.h"
#include "../util/vdisk.h"

/* Connect with p, open path; codec (enum nfc_codec) is used for all data. */
int vdisk_open_nfc(const struct nfc_params *p, const char *path, int rw, int codec,
                   struct vdisk **out);
/* The same over a client already open on path (taken over, closed on failure). */
int vdisk_from_nfc(struct nfc_client *c, const char *path, int rw, int codec,
                   struct vdisk **out);
int vdisk_is_nfc(const struct vdisk *d);

#endif
