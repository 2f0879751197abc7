/* errtext.h - openvddk's own English text for VixError codes. */
#ifndef VIXDL_ERRTEXT_H
#define VIXDL_ERRTEXT_H

#include "vixDiskLib.h"

/* Our own one-line English description of a VixError code, or NULL when the
 * code is unknown.  Only the code part, VIX_ERROR_CODE(err), is looked at. */
const char *vixdl_error_text(VixError err);

#endif
