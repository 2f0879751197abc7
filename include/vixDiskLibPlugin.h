/*
 * vixDiskLibPlugin.h - the descriptor every VixDiskLib plugin library
 * exports, as provided by openvddk.
 *
 * This text is openvddk's own.  The names, numeric values, types and
 * structure layouts are those of VMware's plugin interface, so plugins
 * written for VDDK build against this header and load into openvddk.
 *
 * A plugin library is a shared object that exports one data symbol,
 * VixDiskLibPlugin_EntryPoint: a pointer to an array of pointers to plugin
 * descriptors, ended by a NULL pointer (one library may hold several
 * plugins).  At VixDiskLib_InitEx the disk library opens the library, reads
 * the array, checks each descriptor's type and major version and calls its
 * Init; at the last VixDiskLib_Exit it calls Done and closes the library.
 * A specialised descriptor (vixDiskLibNasPlugin.h) starts with this one.
 */
#ifndef _VIXDISKLIBPLUGIN_H_
#define _VIXDISKLIBPLUGIN_H_

#include "vixDiskLib.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the generic plugin interface described here. */
#define VIXDISKLIB_PLUGIN_MAJOR_VERSION 1
#define VIXDISKLIB_PLUGIN_MINOR_VERSION 0

/* What a descriptor describes. */
typedef enum {
   VIXDISKLIB_PLUGIN_TYPE_TRANSPORT,           /* 0: a transport module */
   VIXDISKLIB_PLUGIN_TYPE_NAS,                 /* 1: a NAS offload plugin */
   VIXDISKLIB_PLUGIN_TYPE_TRANSPORT_NO_UNLOAD, /* 2: a transport never unloaded */
} VixDiskLibPluginType;

/*
 * Called once after loading, with the disk library's logging functions
 * (each takes a printf format and a va_list).  A result other than VIX_OK
 * means the plugin is not used (and Done is not called).
 */
typedef VixError (VixDiskLibPluginInit)(VixDiskLibGenericLogFunc *log,
                                        VixDiskLibGenericLogFunc *warn,
                                        VixDiskLibGenericLogFunc *panic);

/* Called once before the library is unloaded. */
typedef void (VixDiskLibPluginDone)(void);

/* The generic part of every plugin descriptor (40 bytes on LP64). */
typedef struct {
   int majorVersion;            /* interface major version the plugin implements */
   int minorVersion;            /* interface minor version */
   VixDiskLibPluginType type;
   const char *name;            /* short name, used in log messages */
   VixDiskLibPluginInit *Init;  /* may be NULL */
   VixDiskLibPluginDone *Done;  /* may be NULL */
} VixDiskLibPlugin;

/*
 * The symbol a plugin library defines: a pointer to a NULL-terminated
 * array of descriptor pointers.
 */
extern VixDiskLibPlugin **VixDiskLibPlugin_EntryPoint;

#ifdef __cplusplus
}
#endif

#endif /* _VIXDISKLIBPLUGIN_H_ */
