/* internal.h - state shared by the files of src/plugin. */
#ifndef VD_PLUGIN_INTERNAL_H
#define VD_PLUGIN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "vdplugin.h"

#define VDP_MAX_PLUGINS 64
#define VDP_NAME_MAX 63

/* Primitives the library asks about, as indexes. */
enum { VDP_CLONE, VDP_RESV, VDP_STATX, VDP_NPRIM };

struct vdp_lib {
    void *handle;
    char *path;
    int keep;                 /* a TRANSPORT_NO_UNLOAD plugin lives here */
};

struct vdp_plugin {
    const VixDiskLibNasPlugin *desc;
    char name[VDP_NAME_MAX + 1];
    const char *path;         /* the library's file (owned by vdp_lib) */
    atomic_int disabled;      /* set when it called panic */
};

/* A mounted file system holding disk files, and its session. */
struct vdp_datastore {
    unsigned mount_id;
    VixDiskLibNasPluginDataStoreParams params;
    struct vdp_plugin *plugin;            /* NULL: no plugin accepted it */
    VixDiskLibNasPluginSessionID sid;
    int supported[VDP_NPRIM];
};

struct vdp_state {
    /* Read-held while plugins are used; write-held to load and unload. */
    pthread_rwlock_t life;
    /* Guards the datastore table (sessions start under it). */
    pthread_mutex_t lock;
    int loaded;
    struct vdp_lib *libs;
    size_t nlibs;
    struct vdp_plugin *plugins;
    size_t nplugins;
    struct vdp_datastore **ds;
    size_t nds;
};
extern struct vdp_state vdp;

/* The plugin a thread is calling into (for log prefixes and panic). */
struct vdp_plugin *vdp_enter(struct vdp_plugin *p);
void vdp_leave(struct vdp_plugin *prev);

/* The datastore of an absolute, resolved path with its session started
 * (if any plugin accepts it).  Call with vdp.life read-held. */
int vdp_datastore_for(const char *path, struct vdp_datastore **out);
/* End every session and free the table (vdp.life write-held). */
void vdp_datastores_release(void);

/* Text for a VixError ("The file already exists"), never NULL. */
const char *vdp_vix_text(VixError e);
/* vd_err code for a plugin's failure status. */
int vdp_vd_code(VixError e);

#endif
