/* vixerr.h - openvddk's own English text for VixError codes.
 *
 * Here, in the lowest layer that speaks VixError (NAS plugins return it),
 * so that the plugin layer and the ABI layer's GetErrorText share it. */
#ifndef VD_PLUGIN_VIXERR_H
#define VD_PLUGIN_VIXERR_H

#include "vixDiskLib.h"

/* Our own one-line English description of a VixError code, or NULL when the
 * code is unknown.  Only the code part, VIX_ERROR_CODE(err), is looked at. */
const char *vix_error_text(VixError err);

#endif
