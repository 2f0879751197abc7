/* session.c - datastores (mounted file systems holding disk files) and
 * the plugin session of each.
 *
 * The first time a file on a datastore is used, the library offers the
 * datastore to each loaded plugin in load order; the first whose
 * StartSession accepts it gets the session, and SupportStatus is asked
 * once per primitive.  A datastore no plugin accepts is remembered too, so
 * it is not offered again.  Sessions end at the last VixDiskLib_Exit. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "../util/err.h"
#include "../util/fileio.h"

static const VixDiskLibNasPluginPrimitiveID prim_ids[VDP_NPRIM] = {
    VIXDISKLIB_NASPLUGIN_PRIM_CLONEFILE,
    VIXDISKLIB_NASPLUGIN_PRIM_RESVSPACE,
    VIXDISKLIB_NASPLUGIN_PRIM_STATX,
};
static const char *const prim_names[VDP_NPRIM] = { "CLONEFILE", "RESVSPACE", "STATX" };

static char *read_mountinfo(void)
{
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vd_err_errno(errno, "/proc/self/mountinfo: cannot open");
        return NULL;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            vd_err_errno(errno, "/proc/self/mountinfo: cannot read");
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)r;
    }
    if (!buf && vd_err_code() == 0)
        vd_err_set(VD_E_NOMEM, "out of memory");
    close(fd);
    return buf;
}

static void start_session(struct vdp_datastore *ds)
{
    VixDiskLibNasPluginSessionParams sp = { .timeoutMS = 0 };
    for (size_t i = 0; i < vdp.nplugins; i++) {
        struct vdp_plugin *p = &vdp.plugins[i];
        if (atomic_load(&p->disabled))
            continue;
        VixDiskLibNasPluginSessionID sid = VIXDISKLIB_NASPLUGIN_INVALID_SESSION_ID;
        struct vdp_plugin *prev = vdp_enter(p);
        VixError e = p->desc->StartSession(&ds->params, &sp, &sid);
        vdp_leave(prev);
        if (atomic_load(&p->disabled)) {
            vdplugin_warn("NAS plugin %s panicked while starting a session on %s; not used",
                          p->name, ds->params.localMountPoint);
            continue;
        }
        if (e != VIX_OK || sid == VIXDISKLIB_NASPLUGIN_INVALID_SESSION_ID) {
            vdplugin_log("NAS plugin %s does not take datastore %s (%s): %s", p->name,
                         ds->params.localMountPoint, ds->params.fsType,
                         e != VIX_OK ? vdp_vix_text(e) : "no session id returned");
            continue;
        }
        ds->plugin = p;
        ds->sid = sid;
        char list[64] = "";
        for (int k = 0; k < VDP_NPRIM; k++) {
            prev = vdp_enter(p);
            e = p->desc->SupportStatus(sid, prim_ids[k]);
            vdp_leave(prev);
            ds->supported[k] = e == VIX_OK;
            if (ds->supported[k]) {
                strcat(list, list[0] ? " " : "");
                strcat(list, prim_names[k]);
            }
        }
        vdplugin_log("NAS plugin %s: session on datastore %s (%s%s%s%s%s) supports %s", p->name,
                     ds->params.localMountPoint, ds->params.fsType,
                     ds->params.remoteIP ? ", server " : "",
                     ds->params.remoteIP ? ds->params.remoteIP : "",
                     ds->params.remoteMountPoint ? ":" : "",
                     ds->params.remoteMountPoint ? ds->params.remoteMountPoint : "",
                     list[0] ? list : "no primitive");
        return;
    }
    vdplugin_log("no NAS plugin serves datastore %s (%s)", ds->params.localMountPoint,
                 ds->params.fsType);
}

int vdp_datastore_for(const char *path, struct vdp_datastore **out)
{
    char *text = read_mountinfo();
    if (!text)
        return -vd_err_code();
    struct vdplugin_mount m;
    int rc = vdplugin_mount_find(text, path, &m);
    free(text);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&vdp.lock);
    for (size_t i = 0; i < vdp.nds; i++) {
        struct vdp_datastore *d = vdp.ds[i];
        if (d->mount_id == m.id && strcmp(d->params.localMountPoint, m.mount_point) == 0) {
            pthread_mutex_unlock(&vdp.lock);
            vdplugin_mount_free(&m);
            *out = d;
            return 0;
        }
    }
    struct vdp_datastore *d = calloc(1, sizeof *d);
    struct vdp_datastore **nt = realloc(vdp.ds, (vdp.nds + 1) * sizeof *nt);
    if (nt)
        vdp.ds = nt;
    if (!d || !nt || (rc = vdplugin_ds_params(&m, &d->params)) < 0) {
        pthread_mutex_unlock(&vdp.lock);
        free(d);
        vdplugin_mount_free(&m);
        return rc < 0 ? rc : vd_err_set(VD_E_NOMEM, "out of memory");
    }
    d->mount_id = m.id;
    vdplugin_mount_free(&m);
    start_session(d);
    vdp.ds[vdp.nds++] = d;
    pthread_mutex_unlock(&vdp.lock);
    *out = d;
    return 0;
}

void vdp_datastores_release(void)
{
    pthread_mutex_lock(&vdp.lock);
    for (size_t i = 0; i < vdp.nds; i++) {
        struct vdp_datastore *d = vdp.ds[i];
        if (d->plugin) {
            struct vdp_plugin *prev = vdp_enter(d->plugin);
            VixError e = d->plugin->desc->EndSession(d->sid);
            vdp_leave(prev);
            if (e != VIX_OK)
                vdplugin_warn("NAS plugin %s: ending the session on %s failed: %s",
                              d->plugin->name, d->params.localMountPoint, vdp_vix_text(e));
        }
        vdplugin_ds_params_free(&d->params);
        free(d);
    }
    free(vdp.ds);
    vdp.ds = NULL;
    vdp.nds = 0;
    pthread_mutex_unlock(&vdp.lock);
}
