/* disk_priv.h - shared between the files of the high-level API (src/disk). */
#ifndef VD_DISK_PRIV_H
#define VD_DISK_PRIV_H

#include "vixDiskLib.h"

/* Make e and the one-line detail the calling thread's last error, as
 * vddk_disk_last_error reports it; returns e. */
VixError disk_note_error(VixError e, const char *detail);

#endif
