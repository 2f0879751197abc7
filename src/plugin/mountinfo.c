/* mountinfo.c - which file system (datastore) holds a path, from the text
 * of /proc/self/mountinfo, and the datastore parameters a NAS plugin gets
 * for it. */
#include <stdlib.h>
#include <string.h>

#include "vdplugin.h"
#include "../util/err.h"
#include "../util/fileio.h"

void vdplugin_mount_free(struct vdplugin_mount *m)
{
    if (!m)
        return;
    free(m->mount_point);
    free(m->fstype);
    free(m->source);
    free(m->super_opts);
    memset(m, 0, sizeof *m);
}

/* Copy the field [s, e) undoing the kernel's octal escapes (\040 for a
 * space, \011, \012, \134). */
static char *unescape(const char *s, const char *e)
{
    char *out = malloc((size_t)(e - s) + 1), *o = out;
    if (!out)
        return NULL;
    while (s < e) {
        if (*s == '\\' && e - s >= 4 && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
            s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 4;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

int vdplugin_mount_parse(const char *line, struct vdplugin_mount *m)
{
    memset(m, 0, sizeof *m);
    /* Split on spaces: id parent maj:min root mountpoint options
     * [optional...] - fstype source superoptions */
    const char *f[64][2];
    int n = 0;
    const char *p = line;
    while (*p && *p != '\n' && n < 64) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            break;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\n')
            p++;
        f[n][0] = s;
        f[n][1] = p;
        n++;
    }
    int sep = -1;
    for (int i = 6; i < n; i++) {
        if (f[i][1] - f[i][0] == 1 && f[i][0][0] == '-') {
            sep = i;
            break;
        }
    }
    if (n < 6 || sep < 0)
        return vd_err_set(VD_E_CORRUPT, "mountinfo: malformed line");
    if (n - sep < 3)
        return vd_err_set(VD_E_CORRUPT, "mountinfo: line lacks file-system type or source");
    char *end;
    unsigned long id = strtoul(f[0][0], &end, 10);
    if (end != f[0][1])
        return vd_err_set(VD_E_CORRUPT, "mountinfo: bad mount id");
    m->id = (unsigned)id;
    m->mount_point = unescape(f[4][0], f[4][1]);
    m->fstype = unescape(f[sep + 1][0], f[sep + 1][1]);
    m->source = unescape(f[sep + 2][0], f[sep + 2][1]);
    m->super_opts = sep + 3 < n ? unescape(f[sep + 3][0], f[sep + 3][1]) : vd_strdup("");
    if (!m->mount_point || !m->fstype || !m->source || !m->super_opts) {
        vdplugin_mount_free(m);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    return 0;
}

/* Is mount point mp a path-component prefix of path? */
static size_t prefix_len(const char *mp, const char *path)
{
    size_t n = strlen(mp);
    if (n == 1 && mp[0] == '/')
        return path[0] == '/' ? 1 : 0;
    if (strncmp(mp, path, n) != 0 || (path[n] != '/' && path[n] != '\0'))
        return 0;
    return n;
}

int vdplugin_mount_find(const char *text, const char *path, struct vdplugin_mount *out)
{
    memset(out, 0, sizeof *out);
    size_t best = 0;
    int found = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        struct vdplugin_mount m;
        if (vdplugin_mount_parse(line, &m) == 0) {
            size_t l = prefix_len(m.mount_point, path);
            /* Later lines are mounted on top of earlier ones. */
            if (l > 0 && l >= best) {
                vdplugin_mount_free(out);
                *out = m;
                best = l;
                found = 1;
            } else {
                vdplugin_mount_free(&m);
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    vd_err_clear();
    if (!found)
        return vd_err_set(VD_E_NOTFOUND, "%s: no mount holds this path", path);
    return 0;
}

/* Value of key=... in a comma-separated option list, malloc'd, or NULL. */
static char *opt_value(const char *opts, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = opts; p && *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            char *v = malloc(l - kl);
            if (v) {
                memcpy(v, p + kl + 1, l - kl - 1);
                v[l - kl - 1] = '\0';
            }
            return v;
        }
        p = c ? c + 1 : NULL;
    }
    return NULL;
}

void vdplugin_ds_params_free(VixDiskLibNasPluginDataStoreParams *p)
{
    if (!p)
        return;
    free(p->fsType);
    free(p->remoteIP);
    free(p->remoteMountPoint);
    free(p->localMountPoint);
    memset(p, 0, sizeof *p);
}

int vdplugin_ds_params(const struct vdplugin_mount *m, VixDiskLibNasPluginDataStoreParams *p)
{
    memset(p, 0, sizeof *p);
    int nfs4 = strcmp(m->fstype, "nfs4") == 0;
    int nfs = nfs4 || strcmp(m->fstype, "nfs") == 0;
    p->localMountPoint = vd_strdup(m->mount_point);
    if (!nfs) {
        p->fsType = vd_strdup(m->fstype);
        p->fsVersion = 0;
    } else {
        p->fsType = vd_strdup(nfs4 ? VIXDISKLIB_NASPLUGIN_FSTYPE_NFS41
                                   : VIXDISKLIB_NASPLUGIN_FSTYPE_NFS);
        char *vers = opt_value(m->super_opts, "vers");
        p->fsVersion = vers ? (uint32)strtoul(vers, NULL, 10) : nfs4 ? 4u : 3u;
        free(vers);
        /* source is host:/export, [v6addr]:/export for IPv6. */
        const char *s = m->source, *colon;
        char *host = NULL;
        if (s[0] == '[' && (colon = strstr(s, "]:")) != NULL) {
            host = vd_asprintf("%.*s", (int)(colon - s - 1), s + 1);
            colon++;
        } else if ((colon = strchr(s, ':')) != NULL) {
            host = vd_asprintf("%.*s", (int)(colon - s), s);
        }
        p->remoteMountPoint = vd_strdup(colon ? colon + 1 : "");
        /* The kernel records the address it uses as addr=. */
        p->remoteIP = opt_value(m->super_opts, "addr");
        if (!p->remoteIP)
            p->remoteIP = host ? host : vd_strdup(s);
        else
            free(host);
        if (!p->remoteIP || !p->remoteMountPoint) {
            vdplugin_ds_params_free(p);
            return vd_err_set(VD_E_NOMEM, "out of memory");
        }
    }
    if (!p->fsType || !p->localMountPoint) {
        vdplugin_ds_params_free(p);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    return 0;
}
