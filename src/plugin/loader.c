/* loader.c - find, check, initialise and unload NAS plugin libraries.
 *
 * Every "*.so" file of the plugin directories is opened with dlopen; its
 * VixDiskLibPlugin_EntryPoint array is read; each descriptor must be of
 * type NAS with the NAS major version this library implements and have
 * all four entry points; its Init is called with our log functions.  Any
 * failure skips that plugin (or library) with a log line: a broken plugin
 * never stops the library from working. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "vixerr.h"
#include "../util/config.h"
#include "../util/err.h"
#include "../util/fileio.h"
#include "../util/log.h"

#define MAX_PER_LIB 32
#define MAX_DIRS 4

struct vdp_state vdp = {
    .life = PTHREAD_RWLOCK_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local struct vdp_plugin *current;

struct vdp_plugin *vdp_enter(struct vdp_plugin *p)
{
    struct vdp_plugin *prev = current;
    current = p;
    return prev;
}

void vdp_leave(struct vdp_plugin *prev)
{
    current = prev;
}

void vdplugin_log(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vd_log("%s", buf);
}

void vdplugin_warn(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vd_warn("%s", buf);
}

const char *vdp_vix_text(VixError e)
{
    const char *t = vix_error_text(e);
    return t ? t : "unknown error";
}

int vdp_vd_code(VixError e)
{
    switch (VIX_ERROR_CODE(e)) {
    case VIX_E_CANCELLED: return VD_E_CANCELLED;
    case VIX_E_NOT_SUPPORTED: return VD_E_UNSUPPORTED;
    case VIX_E_FILE_ALREADY_EXISTS: return VD_E_EXISTS;
    case VIX_E_FILE_NOT_FOUND: return VD_E_NOTFOUND;
    case VIX_E_DISK_FULL: return VD_E_NOSPACE;
    case VIX_E_FILE_READ_ONLY: return VD_E_READONLY;
    case VIX_E_OUT_OF_MEMORY: return VD_E_NOMEM;
    case VIX_E_INVALID_ARG: return VD_E_INVAL;
    case VIX_E_FILE_ALREADY_LOCKED: return VD_E_LOCKED;
    default: return VD_E_IO;
    }
}

/* ---- the log functions plugins get ---- */

static void plugin_line(int warn, const char *what, const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    const char *name = current ? current->name : "(unknown)";
    if (warn)
        vd_warn("NAS plugin %s: %s%s", name, what, buf);
    else
        vd_log("NAS plugin %s: %s%s", name, what, buf);
}

static void plugin_log(const char *fmt, va_list ap)
{
    plugin_line(0, "", fmt, ap);
}

static void plugin_warn(const char *fmt, va_list ap)
{
    plugin_line(1, "", fmt, ap);
}

/* A plugin's panic must not end the caller's process: report it and stop
 * using that plugin. */
static void plugin_panic(const char *fmt, va_list ap)
{
    plugin_line(1, "panic (plugin disabled): ", fmt, ap);
    if (current)
        atomic_store(&current->disabled, 1);
}

/* ---- loading ---- */

/* dlerror() text, without the phrase some callers grep their logs for as
 * a sign of a broken installation. */
static void dl_reason(char *out, size_t n)
{
    const char *e = dlerror();
    snprintf(out, n, "%s", e ? e : "unknown reason");
    char *p = strstr(out, "cannot open shared object file");
    if (p)
        snprintf(p, n - (size_t)(p - out), "a library it needs is missing");
}

static int already_loaded(const VixDiskLibPlugin *d, const char *name, const char **where)
{
    for (size_t i = 0; i < vdp.nplugins; i++) {
        if (&vdp.plugins[i].desc->diskLibPlugin == d || strcmp(vdp.plugins[i].name, name) == 0) {
            *where = vdp.plugins[i].path;
            return 1;
        }
    }
    return 0;
}

/* Check and initialise one descriptor; 1 if it was added. */
static int add_plugin(VixDiskLibPlugin *d, const char *path, int *keep)
{
    char name[VDP_NAME_MAX + 1];
    snprintf(name, sizeof name, "%.*s", VDP_NAME_MAX, d->name && d->name[0] ? d->name : "(unnamed)");
    if (d->type == VIXDISKLIB_PLUGIN_TYPE_TRANSPORT_NO_UNLOAD)
        *keep = 1;
    if (d->type != VIXDISKLIB_PLUGIN_TYPE_NAS) {
        vd_log("plugin %s in %s is a transport plugin (type %d); openvddk loads only NAS "
                  "plugins; skipped", name, path, (int)d->type);
        return 0;
    }
    if (d->majorVersion != VIXDISKLIB_NASPLUGIN_MAJOR_VERSION) {
        vd_warn("NAS plugin %s in %s implements NAS plugin interface %d.%d; this library "
                   "implements %d.%d (the major versions must match); skipped", name, path,
                   d->majorVersion, d->minorVersion, VIXDISKLIB_NASPLUGIN_MAJOR_VERSION,
                   VIXDISKLIB_NASPLUGIN_MINOR_VERSION);
        return 0;
    }
    const VixDiskLibNasPlugin *nas = (const VixDiskLibNasPlugin *)d;
    const char *missing = !nas->StartSession ? "StartSession" : !nas->EndSession ? "EndSession"
                        : !nas->ExecPrimitive ? "ExecPrimitive"
                        : !nas->SupportStatus ? "SupportStatus" : NULL;
    if (missing) {
        vd_warn("NAS plugin %s in %s has no %s entry point; skipped", name, path, missing);
        return 0;
    }
    const char *where;
    if (already_loaded(d, name, &where)) {
        vd_log("NAS plugin %s in %s is already loaded from %s; skipped", name, path, where);
        return 0;
    }
    if (vdp.nplugins == VDP_MAX_PLUGINS) {
        vd_warn("NAS plugin %s in %s: more than %d plugins; skipped", name, path,
                   VDP_MAX_PLUGINS);
        return 0;
    }
    struct vdp_plugin *p = &vdp.plugins[vdp.nplugins];
    memset(p, 0, sizeof *p);
    p->desc = nas;
    p->path = path;
    memcpy(p->name, name, sizeof name);
    if (d->Init) {
        struct vdp_plugin *prev = vdp_enter(p);
        VixError e = d->Init(plugin_log, plugin_warn, plugin_panic);
        vdp_leave(prev);
        if (e != VIX_OK) {
            vd_warn("NAS plugin %s in %s: Init failed: %s (error %lu); skipped", name, path,
                       vdp_vix_text(e), (unsigned long)e);
            return 0;
        }
        if (atomic_load(&p->disabled)) {
            if (d->Done) {
                prev = vdp_enter(p);
                d->Done();
                vdp_leave(prev);
            }
            vd_warn("NAS plugin %s in %s panicked in Init; skipped", name, path);
            return 0;
        }
    }
    vdp.nplugins++;
    vd_log("NAS plugin %s %d.%d loaded from %s", name, d->majorVersion, d->minorVersion,
              path);
    return 1;
}

static void load_library(const char *path)
{
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        char why[512];
        dl_reason(why, sizeof why);
        vd_warn("plugin library %s could not be loaded (%s); skipped", path, why);
        return;
    }
    dlerror();
    VixDiskLibPlugin ***sym = dlsym(h, "VixDiskLibPlugin_EntryPoint");
    VixDiskLibPlugin **list = sym ? *sym : NULL;
    if (!sym || !list) {
        vd_warn("plugin library %s %s; skipped", path, !sym ? "exports no "
                   "VixDiskLibPlugin_EntryPoint symbol" : "has a NULL VixDiskLibPlugin_EntryPoint");
        dlclose(h);
        return;
    }
    char *copy = vd_strdup(path);
    struct vdp_lib *nl = realloc(vdp.libs, (vdp.nlibs + 1) * sizeof *nl);
    if (!copy || !nl) {
        free(copy);
        if (nl)
            vdp.libs = nl;
        vd_warn("plugin library %s: out of memory; skipped", path);
        dlclose(h);
        return;
    }
    vdp.libs = nl;
    int added = 0, keep = 0, i;
    for (i = 0; i < MAX_PER_LIB && list[i]; i++)
        added += add_plugin(list[i], copy, &keep);
    if (i == MAX_PER_LIB && list[i])
        vd_warn("plugin library %s: only the first %d plugins are used", path, MAX_PER_LIB);
    if (i == 0)
        vd_warn("plugin library %s lists no plugins; skipped", path);
    if (added == 0 && !keep) {
        free(copy);
        dlclose(h);
        return;
    }
    vdp.libs[vdp.nlibs++] = (struct vdp_lib){ .handle = h, .path = copy, .keep = keep };
}

static int so_filter(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return e->d_name[0] != '.' && n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

static void load_dir(const char *dir, int must_exist)
{
    struct dirent **names;
    int n = scandir(dir, &names, so_filter, alphasort);
    if (n < 0) {
        if (must_exist)
            vd_warn("plugin directory %s cannot be read (%s); no plugins from it", dir,
                       strerror(errno));
        else
            vd_log("no plugin directory %s", dir);
        return;
    }
    vd_log("looking for NAS plugins in %s (%d %s)", dir, n, n == 1 ? "library" : "libraries");
    for (int i = 0; i < n; i++) {
        char *path = vd_path_join(dir, names[i]->d_name);
        struct stat st;
        if (path && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            load_library(path);
        else if (path)
            vd_log("plugin directory %s: %s is not a regular file; skipped", dir,
                      names[i]->d_name);
        free(path);
        free(names[i]);
    }
    free(names);
}

/* Add dir to the list unless it names a directory already listed. */
static void add_dir(char **dirs, int *must, int *n, char *dir, int must_exist)
{
    if (!dir)
        return;
    char *real = realpath(dir, NULL);
    for (int i = 0; i < *n && real; i++) {
        char *r = realpath(dirs[i], NULL);
        int same = r && strcmp(r, real) == 0;
        free(r);
        if (same) {
            free(real);
            free(dir);
            return;
        }
    }
    free(real);
    if (*n == MAX_DIRS) {
        free(dir);
        return;
    }
    must[*n] = must_exist;
    dirs[(*n)++] = dir;
}

void vdplugin_load(const char *lib_dir)
{
    pthread_rwlock_wrlock(&vdp.life);
    if (vdp.loaded) {
        pthread_rwlock_unlock(&vdp.life);
        return;
    }
    vdp.loaded = 1;
    vdp.plugins = calloc(VDP_MAX_PLUGINS, sizeof *vdp.plugins);
    if (!vdp.plugins) {
        vd_warn("NAS plugins: out of memory; none loaded");
        pthread_rwlock_unlock(&vdp.life);
        return;
    }
    char *dirs[MAX_DIRS];
    int must[MAX_DIRS], n = 0;
    if (lib_dir && *lib_dir) {
        /* libDir is the distribution root (…/lib64/plugins) or, as some
         * callers pass it, the lib64 directory itself (…/plugins). */
        add_dir(dirs, must, &n, vd_asprintf("%s/lib64/plugins", lib_dir), 0);
        add_dir(dirs, must, &n, vd_asprintf("%s/plugins", lib_dir), 0);
    } else {
        /* No libDir: the plugins directory next to this library. */
        Dl_info info;
        if (dladdr((void *)vdplugin_load, &info) && info.dli_fname) {
            char *d = vd_path_dir(info.dli_fname);
            if (d)
                add_dir(dirs, must, &n, vd_path_join(d, "plugins"), 0);
            free(d);
        }
    }
    const char *extra = vd_config_get("openvddk.plugin.dir");
    if (extra && *extra)
        add_dir(dirs, must, &n, vd_strdup(extra), 1);
    for (int i = 0; i < n; i++) {
        load_dir(dirs[i], must[i]);
        free(dirs[i]);
    }
    vd_log("%zu NAS plugin%s loaded", vdp.nplugins, vdp.nplugins == 1 ? "" : "s");
    pthread_rwlock_unlock(&vdp.life);
}

void vdplugin_unload(void)
{
    pthread_rwlock_wrlock(&vdp.life);
    if (!vdp.loaded) {
        pthread_rwlock_unlock(&vdp.life);
        return;
    }
    vdp_datastores_release();
    for (size_t i = vdp.nplugins; i-- > 0;) {
        struct vdp_plugin *p = &vdp.plugins[i];
        if (p->desc->diskLibPlugin.Done) {
            struct vdp_plugin *prev = vdp_enter(p);
            p->desc->diskLibPlugin.Done();
            vdp_leave(prev);
        }
        vd_log("NAS plugin %s unloaded", p->name);
    }
    for (size_t i = 0; i < vdp.nlibs; i++) {
        if (!vdp.libs[i].keep)
            dlclose(vdp.libs[i].handle);
        free(vdp.libs[i].path);
    }
    free(vdp.libs);
    free(vdp.plugins);
    vdp.libs = NULL;
    vdp.plugins = NULL;
    vdp.nlibs = vdp.nplugins = 0;
    vdp.loaded = 0;
    pthread_rwlock_unlock(&vdp.life);
}

int vdplugin_count(void)
{
    pthread_rwlock_rdlock(&vdp.life);
    int n = (int)vdp.nplugins;
    pthread_rwlock_unlock(&vdp.life);
    return n;
}
