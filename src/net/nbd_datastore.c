/* nbd_datastore.c - datastore directories as a server backend. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nbd_datastore.h"
#include "nbd_proto.h"
#include "../util/err.h"
#include "../util/fileio.h"
#include "../util/vfile.h"
#include "../vmdk/vmdk.h"

#define LIST_MAX 1000
#define LIST_DEPTH 4
#define DESC_MAX NBD_MAX_STRING

/* The one reply for every name the server will not serve for a reason that
 * involves a path: missing, outside every datastore (through "..", an
 * absolute path or a symbolic link, of the export or of any file of its
 * chain), not a regular file, not readable.  Being the same for all, it
 * tells a client nothing about paths outside the datastores; the server's
 * log says which it was. */
#define REFUSED_TEXT "no such disk (not found, outside every datastore, or not a disk file)"

struct ds {
    char *name;
    char *dir;        /* real path, no trailing slash */
};

struct nbd_datastores {
    struct ds *v;
    int n;
    int single_link, readonly;
    /* Disks are opened through fs: the local file system under a policy
     * (ds_check) that refuses every path outside the datastores before it
     * is opened or even looked for. */
    struct vd_fs fs;
    struct vd_fs_policy pol;
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
    int log_level;
};

static int ds_check(void *ctx, const char *path);

int nbd_ds_new(struct nbd_datastores **out)
{
    struct nbd_datastores *m = calloc(1, sizeof *m);
    if (!m)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    m->pol.check = ds_check;
    m->pol.ctx = m;
    vd_fs_local_confined(&m->fs, &m->pol);
    *out = m;
    return 0;
}

void nbd_ds_set_log(struct nbd_datastores *m, void (*log)(void *ctx, int level, const char *msg),
                    void *ctx, int level)
{
    m->log = log;
    m->log_ctx = ctx;
    m->log_level = level;
}

static void ds_log(const struct nbd_datastores *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ds_log(const struct nbd_datastores *m, int level, const char *fmt, ...)
{
    if (!m->log || level > m->log_level)
        return;
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m->log(m->log_ctx, level, msg);
}

/* Refuse export name with the one reply (REFUSED_TEXT); the log gets why. */
static uint32_t refuse(const struct nbd_datastores *m, const char *name, char *msg,
                       size_t msglen, const char *why)
{
    ds_log(m, NBD_LOG_INFO, "export \"%s\" refused: %s", name, why);
    snprintf(msg, msglen, "%s", REFUSED_TEXT);
    return NBD_REP_ERR_UNKNOWN;
}

void nbd_ds_free(struct nbd_datastores *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].dir);
    }
    free(m->v);
    free(m);
}

int nbd_ds_count(const struct nbd_datastores *m) { return m->n; }
const char *nbd_ds_name(const struct nbd_datastores *m, int i) { return m->v[i].name; }
const char *nbd_ds_dir(const struct nbd_datastores *m, int i) { return m->v[i].dir; }

void nbd_ds_set_mode(struct nbd_datastores *m, int single_link, int readonly)
{
    m->single_link = single_link;
    m->readonly = readonly;
}

int nbd_ds_add(struct nbd_datastores *m, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return vd_err_set(VD_E_INVAL, "datastore \"%s\": expected NAME=DIR", spec);
    size_t nl = (size_t)(eq - spec);
    for (size_t i = 0; i < nl; i++)
        if (spec[i] == '/' || spec[i] == '[' || spec[i] == ']' || spec[i] == '\\' ||
            (unsigned char)spec[i] < 0x20)
            return vd_err_set(VD_E_INVAL, "datastore name \"%.*s\" may not contain '/', '[', "
                              "']' or control characters", (int)nl, spec);
    for (int i = 0; i < m->n; i++)
        if (strlen(m->v[i].name) == nl && strncmp(m->v[i].name, spec, nl) == 0)
            return vd_err_set(VD_E_INVAL, "datastore \"%.*s\" is given twice", (int)nl, spec);
    char *real = realpath(eq + 1, NULL);
    if (!real)
        return vd_err_errno(errno, "datastore %.*s: %s", (int)nl, spec, eq + 1);
    struct stat st;
    if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
        free(real);
        return vd_err_set(VD_E_INVAL, "datastore %.*s: %s is not a directory", (int)nl, spec,
                          eq + 1);
    }
    struct ds *v = realloc(m->v, (size_t)(m->n + 1) * sizeof *v);
    char *name = strndup(spec, nl);
    if (!v || !name) {
        if (v)
            m->v = v;
        free(real);
        free(name);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    m->v = v;
    m->v[m->n++] = (struct ds){ name, real };
    return 0;
}

/* Is the real path p inside dir (strictly below it)? */
static int inside(const char *dir, const char *p)
{
    size_t dl = strlen(dir);
    if (dl == 1 && dir[0] == '/')
        return p[0] == '/' && p[1] != '\0';
    return strncmp(p, dir, dl) == 0 && p[dl] == '/' && p[dl + 1] != '\0';
}

static const struct ds *ds_of(const struct nbd_datastores *m, const char *real)
{
    for (int i = 0; i < m->n; i++)
        if (inside(m->v[i].dir, real))
            return &m->v[i];
    return NULL;
}

/* The file layer's policy (vfile.h): path may be opened, or looked for,
 * only if its real path lies inside a datastore.  A path that does not
 * exist is judged by the real path of its directory; one whose directory
 * does not exist either is refused. */
static int ds_check(void *ctx, const char *path)
{
    const struct nbd_datastores *m = ctx;
    char *real = realpath(path, NULL);
    if (!real && (errno == ENOENT || errno == ENOTDIR)) {
        const char *base = vd_path_base(path);
        char *dir = vd_path_dir(path);
        char *rdir = dir && *base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0
                         ? realpath(dir, NULL) : NULL;
        if (rdir)
            real = vd_asprintf("%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir, base);
        free(dir);
        free(rdir);
    }
    int ok = real && ds_of(m, real);
    free(real);
    if (!ok)
        return vd_err_set(VD_E_ACCESS, "%s is outside every datastore", path);
    return 0;
}

static const struct ds *find(const struct nbd_datastores *m, const char *name, size_t nl)
{
    for (int i = 0; i < m->n; i++)
        if (strlen(m->v[i].name) == nl && strncmp(m->v[i].name, name, nl) == 0)
            return &m->v[i];
    return NULL;
}

static uint32_t resolve(void *ctx, const char *name, char **key, char *msg, size_t msglen)
{
    struct nbd_datastores *m = ctx;
    const char *ds_name, *rel;
    size_t nl;
    if (name[0] == '[') {
        const char *close = strchr(name, ']');
        if (!close) {
            snprintf(msg, msglen, "export \"%s\": missing ']' after the datastore name", name);
            return NBD_REP_ERR_UNKNOWN;
        }
        ds_name = name + 1;
        nl = (size_t)(close - ds_name);
        rel = close + 1;
        while (*rel == ' ')
            rel++;
    } else {
        const char *slash = strchr(name, '/');
        if (!slash) {
            snprintf(msg, msglen, "export \"%s\" names no datastore: use \"[datastore] "
                     "path/disk.vmdk\"", name);
            return NBD_REP_ERR_UNKNOWN;
        }
        ds_name = name;
        nl = (size_t)(slash - name);
        rel = slash + 1;
    }
    const struct ds *d = find(m, ds_name, nl);
    if (!d) {
        snprintf(msg, msglen, "export \"%s\": no datastore named \"%.*s\"", name, (int)nl,
                 ds_name);
        return NBD_REP_ERR_UNKNOWN;
    }
    if (!*rel) {
        snprintf(msg, msglen, "export \"%s\" names no disk", name);
        return NBD_REP_ERR_UNKNOWN;
    }
    if (rel[0] == '/')
        return refuse(m, name, msg, msglen, "the path must be relative to the datastore");
    char *full = vd_asprintf("%s/%s", d->dir, rel);
    if (!full) {
        snprintf(msg, msglen, "out of memory");
        return NBD_REP_ERR_UNKNOWN;
    }
    char *real = realpath(full, NULL);
    int e = errno;
    free(full);
    if (!real)
        return refuse(m, name, msg, msglen, strerror(e));
    char why[256] = "";
    struct stat st;
    if (!inside(d->dir, real))
        snprintf(why, sizeof why, "it resolves outside datastore \"%s\"", d->name);
    else if (stat(real, &st) < 0 || !S_ISREG(st.st_mode))
        snprintf(why, sizeof why, "not a regular file");
    else if (access(real, R_OK) < 0)
        snprintf(why, sizeof why, "%s", strerror(errno));
    if (why[0]) {
        free(real);
        return refuse(m, name, msg, msglen, why);
    }
    *key = real;
    return 0;
}

/* Every file of every link must lie inside a datastore. */
static int chain_inside(const struct nbd_datastores *m, struct vdisk *d, char *msg,
                        size_t msglen)
{
    vmdk_disk *v = vdisk_local_engine(d);
    if (!v)
        return 0;
    int links = vmdk_num_links(v);
    for (int l = 0; l < links; l++) {
        char **files = NULL;
        size_t n = 0;
        if (vmdk_link_files(v, l, &files, &n) < 0) {
            snprintf(msg, msglen, "%s", vd_err_msg());
            return -1;
        }
        int bad = 0;
        for (size_t i = 0; i < n && !bad; i++) {
            char *real = realpath(files[i], NULL);
            if (!real || !ds_of(m, real)) {
                snprintf(msg, msglen, "the disk's chain uses %s, which is outside every "
                         "datastore: refused", vd_path_base(files[i]));
                bad = 1;
            }
            free(real);
        }
        vmdk_strv_free(files, n);
        if (bad)
            return -1;
    }
    return 0;
}

static uint32_t open_disk(void *ctx, const char *key, struct vdisk **out, char *msg,
                          size_t msglen)
{
    struct nbd_datastores *m = ctx;
    unsigned flags = 0;
    if (m->readonly || m->single_link)
        flags |= VMDK_OPEN_RDONLY;
    if (m->single_link)
        flags |= VMDK_OPEN_SINGLE_LINK;
    vd_err_clear();
    struct vdisk *d;
    const struct ds *ds = ds_of(m, key);
    const char *rel = ds ? key + strlen(ds->dir) + 1 : vd_path_base(key);
    /* Every file of the chain is checked by ds_check before it is opened. */
    int rc = vdisk_open_fs(key, flags, &m->fs, NULL, &d);
    if (rc < 0) {
        if (rc == -VD_E_ACCESS || rc == -VD_E_NOTFOUND) {
            ds_log(m, NBD_LOG_INFO, "[%s] %s refused: %s", ds ? ds->name : "?", rel,
                   vd_err_msg());
            snprintf(msg, msglen, "%s", REFUSED_TEXT);
            return NBD_REP_ERR_UNKNOWN;
        }
        snprintf(msg, msglen, "[%s] %s: %s", ds ? ds->name : "?", rel,
                 rc == -VD_E_LOCKED ? "the disk is in use by another program" : vd_err_msg());
        return NBD_REP_ERR_UNKNOWN;
    }
    /* Belt and braces: what was opened is inside. */
    char why[512] = "";
    if (chain_inside(m, d, why, sizeof why) < 0) {
        d->ops->close(d);
        ds_log(m, NBD_LOG_WARN, "[%s] %s refused: %s", ds ? ds->name : "?", rel, why);
        snprintf(msg, msglen, "%s", REFUSED_TEXT);
        return NBD_REP_ERR_UNKNOWN;
    }
    *out = d;
    return 0;
}

/* ---- description: the disk database in descriptor syntax ------------------------ */

struct text {
    char buf[DESC_MAX + 1];
    size_t len;
    int full;
};

static void add_line(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_line(struct text *t, const char *fmt, ...)
{
    if (t->full)
        return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line || t->len + (size_t)n + 1 > DESC_MAX) {
        t->full = 1;        /* whole lines only */
        return;
    }
    memcpy(t->buf + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->buf[t->len++] = '\n';
    t->buf[t->len] = '\0';
}

/* Values never contain quotes or newlines in what we emit. */
static int plain(const char *v)
{
    return v && !strpbrk(v, "\"\n\r");
}

static char *describe(void *ctx, const char *key, struct vdisk *d)
{
    struct nbd_datastores *m = ctx;
    struct vdisk_info info;
    if (d->ops->info(d, &info) < 0)
        return NULL;
    struct text *t = calloc(1, sizeof *t);
    if (!t) {
        vdisk_info_free(&info);
        return NULL;
    }
    const struct ds *ds = ds_of(m, key);
    add_line(t, "# openvddk export [%s] %s", ds ? ds->name : "?",
             ds ? key + strlen(ds->dir) + 1 : vd_path_base(key));
    const char *type = info.disk_type >= 1 && info.disk_type <= 9
                           ? vmdk_type_name((enum vmdk_type)info.disk_type) : NULL;
    if (plain(type))
        add_line(t, "createType=\"%s\"", type);
    add_line(t, "numLinks=\"%d\"", info.num_links);
    if (plain(info.parent_hint)) {
        /* Parents inside a datastore are shown by datastore name; other
         * server paths are not disclosed beyond their base name. */
        char *dir = vd_path_dir(key);
        char *abs = dir ? vd_path_join(dir, info.parent_hint) : NULL;
        char *real = abs ? realpath(abs, NULL) : NULL;
        const struct ds *pds = real ? ds_of(m, real) : NULL;
        if (pds)
            add_line(t, "parentFileNameHint=\"[%s] %s\"", pds->name,
                     real + strlen(pds->dir) + 1);
        else
            add_line(t, "parentFileNameHint=\"%s\"", vd_path_base(info.parent_hint));
        free(dir);
        free(abs);
        free(real);
    }
    char **keys = NULL;
    size_t nk = 0;
    if (d->ops->meta_keys(d, &keys, &nk) == 0) {
        for (size_t i = 0; i < nk; i++) {
            char *v = NULL;
            if (plain(keys[i]) && d->ops->meta_get(d, keys[i], &v) == 0 && plain(v))
                add_line(t, "ddb.%s = \"%s\"", keys[i], v);
            free(v);
        }
        vmdk_strv_free(keys, nk);
    }
    vd_err_clear();
    vdisk_info_free(&info);
    char *s = strdup(t->buf);
    free(t);
    return s;
}

/* ---- list ------------------------------------------------------------------------ */

static int is_extent_name(const char *n)
{
    size_t l = strlen(n);
    if (l < 5 || strcasecmp(n + l - 5, ".vmdk") != 0)
        return 1;     /* not a .vmdk at all */
    static const char *const tails[] = { "-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk",
                                         "-ctk.vmdk", "-rdm.vmdk", "-rdmp.vmdk" };
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        size_t tl = strlen(tails[i]);
        if (l > tl && strcasecmp(n + l - tl, tails[i]) == 0)
            return 1;
    }
    /* name-s001.vmdk, name-f001.vmdk: split extents */
    if (l > 10 && n[l - 10] == '-' && (n[l - 9] == 's' || n[l - 9] == 'f') &&
        n[l - 8] >= '0' && n[l - 8] <= '9' && n[l - 7] >= '0' && n[l - 7] <= '9' &&
        n[l - 6] >= '0' && n[l - 6] <= '9')
        return 1;
    return 0;
}

struct walk {
    int (*emit)(void *arg, const char *name);
    void *arg;
    int count;
    int stop;
};

static void walk_dir(struct walk *w, const struct ds *ds, const char *rel, int depth)
{
    char *path = *rel ? vd_asprintf("%s/%s", ds->dir, rel) : vd_asprintf("%s", ds->dir);
    DIR *dir = path ? opendir(path) : NULL;
    if (!dir) {
        free(path);
        return;
    }
    struct dirent *de;
    while (!w->stop && (de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        char *sub = *rel ? vd_asprintf("%s/%s", rel, de->d_name) : vd_asprintf("%s", de->d_name);
        char *full = sub ? vd_asprintf("%s/%s", ds->dir, sub) : NULL;
        struct stat st;
        if (full && lstat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < LIST_DEPTH) {
                walk_dir(w, ds, sub, depth + 1);
            } else if (S_ISREG(st.st_mode) && !is_extent_name(de->d_name)) {
                char *name = vd_asprintf("[%s] %s", ds->name, sub);
                if (name && (w->emit(w->arg, name) < 0 || ++w->count >= LIST_MAX))
                    w->stop = 1;
                free(name);
            }
        }
        free(sub);
        free(full);
    }
    closedir(dir);
    free(path);
}

static int list(void *ctx, int (*emit)(void *arg, const char *name), void *arg)
{
    struct nbd_datastores *m = ctx;
    struct walk w = { emit, arg, 0, 0 };
    for (int i = 0; i < m->n && !w.stop; i++)
        walk_dir(&w, &m->v[i], "", 0);
    return 0;
}

void nbd_ds_backend(struct nbd_datastores *m, struct nbd_backend *b)
{
    memset(b, 0, sizeof *b);
    b->ctx = m;
    b->resolve = resolve;
    b->open = open_disk;
    b->describe = describe;
    b->list = list;
}
