/* lib.c - the tool's session with libvixDiskLib: initialisation, the local
 * connection, the warn callback that keeps the library's messages for our
 * one-line errors, opening disks, ddb keys, allocated ranges and the names
 * of disk types and adapters. */
#include "vddk.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- initialisation and the warn callback ------------------------------- */

static struct {
    pthread_mutex_t lock;
    int initialised;
    VixDiskLibConnection conn;
    char last[2048];          /* the last warning line */
    int collect;
    char **lines;
    size_t nlines, alloc;
    void (*hook)(const char *line);
} L = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Warnings come from the caller's thread or, for asynchronous I/O, from a
 * library worker: keep the last one (and the collected list) under a lock. */
static void on_warn(const char *fmt, va_list ap)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    pthread_mutex_lock(&L.lock);
    memcpy(L.last, buf, n + 1);
    if (L.collect) {
        if (L.nlines == L.alloc) {
            size_t na = L.alloc ? L.alloc * 2 : 16;
            char **nv = realloc(L.lines, na * sizeof *nv);
            if (nv) {
                L.lines = nv;
                L.alloc = na;
            }
        }
        if (L.nlines < L.alloc && (L.lines[L.nlines] = strdup(buf)) != NULL)
            L.nlines++;
    }
    void (*hook)(const char *) = L.hook;
    pthread_mutex_unlock(&L.lock);
    if (hook)
        hook(buf);
}

/* Log lines (what was opened, plugins found) are not the tool's output. */
static void on_log(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

VixDiskLibConnection vddk_conn(void)
{
    if (L.conn)
        return L.conn;
    vddk_warn_clear();
    VixError e;
    if (!L.initialised) {
        e = VixDiskLib_InitEx(8, 0, on_log, on_warn, on_warn, NULL, NULL);
        if (e != VIX_OK) {
            vddk_vix_error(e, "libvixDiskLib");
            return NULL;
        }
        L.initialised = 1;
    }
    e = VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &L.conn);
    if (e != VIX_OK) {
        L.conn = NULL;
        vddk_vix_error(e, "local connection");
        return NULL;
    }
    return L.conn;
}

void vddk_lib_exit(void)
{
    if (L.conn)
        VixDiskLib_Disconnect(L.conn);
    L.conn = NULL;
    if (L.initialised)
        VixDiskLib_Exit();
    L.initialised = 0;
    pthread_mutex_lock(&L.lock);
    for (size_t i = 0; i < L.nlines; i++)
        free(L.lines[i]);
    free(L.lines);
    L.lines = NULL;
    L.nlines = L.alloc = 0;
    pthread_mutex_unlock(&L.lock);
}

void vddk_warn_clear(void)
{
    pthread_mutex_lock(&L.lock);
    L.last[0] = '\0';
    pthread_mutex_unlock(&L.lock);
}

void vddk_warn_collect(int collect)
{
    pthread_mutex_lock(&L.lock);
    L.collect = collect;
    pthread_mutex_unlock(&L.lock);
}

void vddk_warn_hook(void (*fn)(const char *line))
{
    pthread_mutex_lock(&L.lock);
    L.hook = fn;
    pthread_mutex_unlock(&L.lock);
}

char **vddk_warn_take(size_t *n)
{
    pthread_mutex_lock(&L.lock);
    char **v = L.lines;
    *n = L.nlines;
    L.lines = NULL;
    L.nlines = L.alloc = 0;
    pthread_mutex_unlock(&L.lock);
    return v;
}

const char *vddk_warn_detail(char *buf, size_t n)
{
    pthread_mutex_lock(&L.lock);
    snprintf(buf, n, "%s", L.last);
    pthread_mutex_unlock(&L.lock);
    if (buf[0] == '\0')
        return NULL;
    /* "VixDiskLib_Open: <detail> (error 4)" -> "<detail>" */
    char *p = buf;
    if (strncmp(p, "VixDiskLib_", 11) == 0) {
        char *colon = strstr(p, ": ");
        if (colon)
            p = colon + 2;
    }
    size_t len = strlen(p);
    char *tail = len ? strrchr(p, '(') : NULL;
    if (tail && tail > p && tail[-1] == ' ' && strncmp(tail, "(error ", 7) == 0 &&
        p[len - 1] == ')')
        tail[-1] = '\0';
    return *p ? p : NULL;
}

/* Does text name path (as given, or its last component)?  The library
 * shows control characters in names escaped (\n, \t, \x01): so is path. */
static int names_file(const char *text, const char *path)
{
    char esc[4096];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 5 < sizeof esc; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            esc[o++] = '\\';
            esc[o++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(esc + o, sizeof esc - o, "\\x%02x", *p);
        } else {
            esc[o++] = (char)*p;
        }
    }
    esc[o] = '\0';
    if (strstr(text, path) || strstr(text, esc))
        return 1;
    const char *base = strrchr(esc, '/');
    return base && base[1] && strstr(text, base + 1);
}

static int report(VixError e, const char *path, const char *fallback)
{
    char buf[2048];
    const char *detail = vddk_warn_detail(buf, sizeof buf);
    char *text = NULL;
    if (!detail && VIX_ERROR_CODE(e) == VIX_E_CANCELLED)
        detail = "cancelled";
    if (!detail && fallback && *fallback)
        detail = fallback;
    if (!detail) {
        text = VixDiskLib_GetErrorText(e, NULL);
        detail = text ? text : "failed";
    }
    fflush(stdout);
    if (path && !names_file(detail, path))
        fprintf(stderr, "vddk: %s: %s\n", path, detail);
    else
        fprintf(stderr, "vddk: %s\n", detail);
    VixDiskLib_FreeErrorText(text);
    vddk_warn_clear();
    return VDDK_EXIT_FAIL;
}

int vddk_vix_error(VixError e, const char *path)
{
    return report(e, path, NULL);
}

int vddk_disk_error(const char *path)
{
    const char *detail = NULL;
    VixError e = vddk_disk_last_error(&detail);
    /* The high-level API's detail is "function: error text"; the library's
     * warning (when there was one) says more. */
    const char *text = detail;
    if (text) {
        const char *colon = strstr(text, ": ");
        if (colon)
            text = colon + 2;
    }
    return report(e == VIX_OK ? VIX_E_FAIL : e, path, text);
}

/* ---- opening disks -------------------------------------------------------- */

int vddk_is_raw(const char *path)
{
    /* A name ending in .vmdk is always a VMDK: a damaged descriptor (or
     * an extent file given by mistake) must fail, not read as raw. */
    size_t n = strlen(path);
    if (vddk_is_remote_path(path) || (n >= 5 && strcasecmp(path + n - 5, ".vmdk") == 0) ||
        !vddk_conn())
        return 0;
    vddk_disk_format f;
    vddk_warn_clear();
    VixError e = vddk_disk_probe(path, &f);
    vddk_warn_clear();
    return e == VIX_OK && f == VDDK_DISK_FORMAT_RAW;
}

int vddk_open(const char *path, uint32 flags, struct vddk_h *d)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    VixDiskLibConnection c = vddk_conn_for(path);
    if (!c)
        return VDDK_EXIT_FAIL;
    d->raw = (flags & VDDK_OPEN_ANY) && vddk_is_raw(path);
    flags &= ~VDDK_OPEN_ANY;
    vddk_warn_clear();
    VixError e = d->raw ? vddk_disk_open_raw(c, path, flags, &d->h)
                        : VixDiskLib_Open(c, path, flags, &d->h);
    if (e != VIX_OK) {
        d->h = NULL;
        return vddk_vix_error(e, path);
    }
    e = VixDiskLib_GetInfo(d->h, &d->info);
    if (e != VIX_OK) {
        vddk_vix_error(e, path);
        VixDiskLib_Close(d->h);
        d->h = NULL;
        return VDDK_EXIT_FAIL;
    }
    d->capacity = d->info->capacity * VIXDISKLIB_SECTOR_SIZE;
    return 0;
}

int vddk_close(struct vddk_h *d)
{
    int ret = 0;
    if (d->info)
        VixDiskLib_FreeInfo(d->info);
    d->info = NULL;
    if (d->h) {
        vddk_warn_clear();
        VixError e = VixDiskLib_Close(d->h);
        if (e != VIX_OK)
            ret = vddk_vix_error(e, d->path);
    }
    d->h = NULL;
    return ret;
}

int vddk_hl_open(const char *path, int read_only, uint32 flags, vddk_disk **out)
{
    if (!vddk_conn())
        return VDDK_EXIT_FAIL;
    vddk_disk_params p;
    memset(&p, 0, sizeof p);
    p.path = path;
    if ((flags & VDDK_OPEN_ANY) && vddk_is_raw(path))
        flags |= VDDK_DISK_FLAG_OPEN_RAW;
    flags &= ~VDDK_OPEN_ANY;
    p.flags = flags | (read_only ? VIXDISKLIB_FLAG_OPEN_READ_ONLY : 0);
    p.readOnly = read_only ? TRUE : FALSE;
    p.identity = "vddk";
    if (vddk_is_remote_path(path))
        p.connect = vddk_remote_params(&p.snapshotRef, &p.transportModes);
    vddk_warn_clear();
    VixError e = vddk_disk_open(&p, out);
    if (e != VIX_OK)
        return vddk_vix_error(e, path);
    return 0;
}

int vddk_hl_close(vddk_disk *d, const char *path)
{
    vddk_warn_clear();
    VixError e = vddk_disk_close(d);
    return e == VIX_OK ? 0 : vddk_vix_error(e, path);
}

int vddk_meta_read(VixDiskLibHandle h, const char *path, const char *key, char **out)
{
    *out = NULL;
    size_t need = 0;
    vddk_warn_clear();
    VixError e = VixDiskLib_ReadMetadata(h, key, NULL, 0, &need);
    if (VIX_ERROR_CODE(e) == VIX_E_DISK_KEY_NOTFOUND) {
        vddk_warn_clear();
        return 1;
    }
    if (e != VIX_OK && VIX_ERROR_CODE(e) != VIX_E_BUFFER_TOOSMALL)
        return vddk_vix_error(e, path);
    char *buf = malloc(need ? need : 1);
    if (!buf)
        return vddk_fail("out of memory");
    e = VixDiskLib_ReadMetadata(h, key, buf, need ? need : 1, &need);
    if (e != VIX_OK) {
        free(buf);
        return vddk_vix_error(e, path);
    }
    *out = buf;
    return 0;
}

/* ---- allocated ranges ----------------------------------------------------- */

void vddk_runs_init(struct vddk_runs *r, VixDiskLibHandle h, uint64_t capacity,
                    uint64_t start, uint64_t end)
{
    memset(r, 0, sizeof *r);
    r->h = h;
    r->capacity = capacity;
    r->pos = start;
    r->end = end < capacity ? end : capacity;
    r->win_end = start;
}

/* Query the window that starts at the chunk holding r->pos. */
static int load_window(struct vddk_runs *r, VixError *err)
{
    if (r->bl)
        VixDiskLib_FreeBlockList(r->bl);
    r->bl = NULL;
    r->idx = 0;
    const uint64_t chunk = VDDK_CHUNK_BYTES;
    uint64_t ws = r->pos / chunk * chunk;
    uint64_t we = (r->end + chunk - 1) / chunk * chunk;
    uint64_t max = (uint64_t)VIXDISKLIB_MAX_CHUNK_NUMBER * chunk;
    if (we - ws > max)
        we = ws + max;
    VixError e = VixDiskLib_QueryAllocatedBlocks(r->h, ws / VIXDISKLIB_SECTOR_SIZE,
                                                 (we - ws) / VIXDISKLIB_SECTOR_SIZE,
                                                 VIXDISKLIB_MIN_CHUNK_SIZE, &r->bl);
    if (e != VIX_OK) {
        r->bl = NULL;
        *err = e;
        return -1;
    }
    r->win_end = we < r->end ? we : r->end;
    return 0;
}

int vddk_runs_next(struct vddk_runs *r, uint64_t *off, uint64_t *len, int *data,
                   VixError *err)
{
    if (r->pos >= r->end)
        return 0;
    if (r->pos >= r->win_end && load_window(r, err) < 0)
        return -1;
    /* Skip blocks that end before pos. */
    while (r->bl && r->idx < r->bl->numBlocks) {
        const VixDiskLibBlock *b = &r->bl->blocks[r->idx];
        uint64_t bend = (b->offset + b->length) * VIXDISKLIB_SECTOR_SIZE;
        if (bend > r->pos)
            break;
        r->idx++;
    }
    uint64_t limit = r->win_end;
    *off = r->pos;
    *data = 0;
    if (r->bl && r->idx < r->bl->numBlocks) {
        const VixDiskLibBlock *b = &r->bl->blocks[r->idx];
        uint64_t bs = b->offset * VIXDISKLIB_SECTOR_SIZE;
        uint64_t be = (b->offset + b->length) * VIXDISKLIB_SECTOR_SIZE;
        if (bs <= r->pos) {
            *data = 1;
            limit = be < limit ? be : limit;
        } else {
            limit = bs < limit ? bs : limit;
        }
    }
    *len = limit - r->pos;
    r->pos = limit;
    return 1;
}

void vddk_runs_free(struct vddk_runs *r)
{
    if (r->bl)
        VixDiskLib_FreeBlockList(r->bl);
    r->bl = NULL;
}

/* ---- names ---------------------------------------------------------------- */

static const struct {
    const char *name, *alias;
    VixDiskLibDiskType type;
} type_names[] = {
    { "monolithicSparse", "sparse", VIXDISKLIB_DISK_MONOLITHIC_SPARSE },
    { "monolithicFlat", "flat", VIXDISKLIB_DISK_MONOLITHIC_FLAT },
    { "twoGbMaxExtentSparse", "split-sparse", VIXDISKLIB_DISK_SPLIT_SPARSE },
    { "twoGbMaxExtentFlat", "split-flat", VIXDISKLIB_DISK_SPLIT_FLAT },
    { "vmfs", NULL, VIXDISKLIB_DISK_VMFS_FLAT },
    { "vmfsThin", "thin", VIXDISKLIB_DISK_VMFS_THIN },
    { "vmfsSparse", NULL, VIXDISKLIB_DISK_VMFS_SPARSE },
    { "streamOptimized", "stream", VIXDISKLIB_DISK_STREAM_OPTIMIZED },
};

VixDiskLibDiskType vddk_parse_type(const char *text)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(text, type_names[i].name) == 0 ||
            (type_names[i].alias != NULL && strcasecmp(text, type_names[i].alias) == 0))
            return type_names[i].type;
    return VIXDISKLIB_DISK_UNKNOWN;
}

const char *vddk_type_name(VixDiskLibDiskType t)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == t)
            return type_names[i].name;
    return "unknown";
}

const char *vddk_type_list(void)
{
    return "                         monolithicSparse      (alias: sparse)\n"
           "                         monolithicFlat        (alias: flat)\n"
           "                         twoGbMaxExtentSparse  (alias: split-sparse)\n"
           "                         twoGbMaxExtentFlat    (alias: split-flat)\n"
           "                         vmfs\n"
           "                         vmfsThin              (alias: thin)\n"
           "                         vmfsSparse\n"
           "                         streamOptimized       (alias: stream)\n";
}

static const struct {
    const char *name;
    VixDiskLibAdapterType adapter;
} adapter_names[] = {
    { "ide", VIXDISKLIB_ADAPTER_IDE },
    { "buslogic", VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC },
    { "lsilogic", VIXDISKLIB_ADAPTER_SCSI_LSILOGIC },
};

VixDiskLibAdapterType vddk_parse_adapter(const char *text)
{
    for (size_t i = 0; i < sizeof adapter_names / sizeof adapter_names[0]; i++)
        if (strcasecmp(text, adapter_names[i].name) == 0)
            return adapter_names[i].adapter;
    return VIXDISKLIB_ADAPTER_UNKNOWN;
}

const char *vddk_adapter_name(VixDiskLibAdapterType a)
{
    for (size_t i = 0; i < sizeof adapter_names / sizeof adapter_names[0]; i++)
        if (adapter_names[i].adapter == a)
            return adapter_names[i].name;
    return "unknown";
}
