/* vdisk_nbd.c - struct vdisk_ops over an NBD client connection. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_proto.h"
#include "vdisk_nbd.h"
#include "../util/config.h"
#include "../util/err.h"
#include "../vmdk/vmdk.h"

#define STATUS_WINDOW (256ull << 20)    /* bytes asked for per block status query */

struct kv {
    char *k, *v;
};

struct nd {
    struct nbd_client *c;
    int readonly;
    /* description: key/value pairs in descriptor syntax */
    struct kv *kv;
    size_t nkv;
    /* block status cache */
    pthread_mutex_t lock;
    uint64_t gen;                  /* bumped by every write */
    uint64_t c_gen, c_off;
    struct nbd_extent *c_ext;
    size_t c_n;
};

static struct nd *impl(struct vdisk *d) { return d->impl; }

/* ---- description ------------------------------------------------------------ */

static void parse_desc(struct nd *n, const char *desc)
{
    char *copy = desc ? strdup(desc) : NULL;
    if (!copy)
        return;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *k, *v;
        if (vd_config_split(line, &k, &v) != 0)
            continue;
        if (!*k)
            continue;
        struct kv *nk = realloc(n->kv, (n->nkv + 1) * sizeof *nk);
        if (!nk)
            break;
        n->kv = nk;
        n->kv[n->nkv].k = strdup(k);
        n->kv[n->nkv].v = strdup(v);
        if (n->kv[n->nkv].k && n->kv[n->nkv].v)
            n->nkv++;
        else {
            free(n->kv[n->nkv].k);
            free(n->kv[n->nkv].v);
        }
    }
    free(copy);
}

static const char *get(const struct nd *n, const char *k)
{
    for (size_t i = 0; i < n->nkv; i++)
        if (strcmp(n->kv[i].k, k) == 0)
            return n->kv[i].v;
    return NULL;
}

static const char *ddb(const struct nd *n, const char *k)
{
    char full[300];
    snprintf(full, sizeof full, "ddb.%s", k);
    return get(n, full);
}

/* ---- operations ------------------------------------------------------------- */

static int r_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
    return nbd_client_pread(impl(d)->c, buf, len, off);
}

static void dirty(struct nd *n)
{
    pthread_mutex_lock(&n->lock);
    n->gen++;
    pthread_mutex_unlock(&n->lock);
}

static int r_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
    struct nd *n = impl(d);
    if (n->readonly)
        return vd_err_set(VD_E_READONLY, "server %s: the disk was opened read-only",
                          nbd_client_peer(n->c));
    dirty(n);
    int rc = nbd_client_pwrite(n->c, buf, len, off);
    dirty(n);
    return rc;
}

static int r_zero(struct vdisk *d, uint64_t off, uint64_t len)
{
    struct nd *n = impl(d);
    if (n->readonly)
        return vd_err_set(VD_E_READONLY, "server %s: the disk was opened read-only",
                          nbd_client_peer(n->c));
    dirty(n);
    int rc = nbd_client_zero(n->c, off, len);
    dirty(n);
    return rc;
}

static int r_flush(struct vdisk *d)
{
    return nbd_client_flush(impl(d)->c);
}

static int to_status(uint32_t flags)
{
    if ((flags & NBD_STATE_HOLE) && (flags & NBD_STATE_ZERO))
        return VMDK_HOLE;
    if (flags & NBD_STATE_ZERO)
        return VMDK_ZERO;
    return VMDK_DATA;     /* includes a hole that may not read as zeros */
}

/* Answer from the cache if it covers off; 1 if answered. */
static int from_cache(struct nd *n, uint64_t off, uint64_t len, uint64_t *run, int *status)
{
    if (!n->c_ext || n->c_gen != n->gen || off < n->c_off)
        return 0;
    uint64_t pos = n->c_off;
    size_t i = 0;
    while (i < n->c_n && pos + n->c_ext[i].length <= off)
        pos += n->c_ext[i++].length;
    if (i == n->c_n)
        return 0;
    int st = to_status(n->c_ext[i].flags);
    uint64_t end = pos + n->c_ext[i].length;
    for (i++; i < n->c_n && to_status(n->c_ext[i].flags) == st; i++)
        end += n->c_ext[i].length;
    *run = end - off < len ? end - off : len;
    *status = st;
    return 1;
}

static int r_block_status(struct vdisk *d, uint64_t off, uint64_t len, int single,
                          uint64_t *run, int *status)
{
    (void)single;   /* a server exports whole chains or single links by its own choice */
    struct nd *n = impl(d);
    if (len == 0 || off >= d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "block status %llu+%llu is past the end of the disk",
                          (unsigned long long)off, (unsigned long long)len);
    pthread_mutex_lock(&n->lock);
    int hit = from_cache(n, off, len, run, status);
    uint64_t gen = n->gen;
    pthread_mutex_unlock(&n->lock);
    if (hit)
        return 0;
    uint64_t q = len > STATUS_WINDOW ? len : STATUS_WINDOW;
    if (q > d->capacity - off)
        q = d->capacity - off;
    struct nbd_extent *ext;
    size_t ne;
    int rc = nbd_client_block_status(n->c, off, q, &ext, &ne);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&n->lock);
    free(n->c_ext);
    n->c_ext = ext;
    n->c_n = ne;
    n->c_off = off;
    n->c_gen = gen;
    /* Answer from this reply even if a write has already made it stale
     * for later calls: it was true when asked. */
    uint64_t g = n->gen;
    n->gen = gen;
    hit = from_cache(n, off, len, run, status);
    n->gen = g;
    pthread_mutex_unlock(&n->lock);
    if (!hit) {
        *run = len;
        *status = VMDK_DATA;
    }
    return 0;
}

static int r_info(struct vdisk *d, struct vdisk_info *info)
{
    struct nd *n = impl(d);
    memset(info, 0, sizeof *info);
    info->capacity = d->capacity;
    const char *v;
    info->num_links = (v = get(n, "numLinks")) && atoi(v) > 0 ? atoi(v) : 1;
    if ((v = get(n, "parentFileNameHint")) && *v && !(info->parent_hint = strdup(v)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    if ((v = ddb(n, "uuid")) && !(info->uuid = strdup(v))) {
        vdisk_info_free(info);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    enum vmdk_adapter a = (v = ddb(n, "adapterType")) ? vmdk_adapter_from_name(v)
                                                       : VMDK_ADAPTER_LSILOGIC;
    info->adapter = (int)a;
    const char *gc = ddb(n, "geometry.cylinders"), *gh = ddb(n, "geometry.heads"),
               *gs = ddb(n, "geometry.sectors");
    if (gc && gh && gs) {
        info->phys = (struct vdisk_geometry){ (uint32_t)strtoul(gc, NULL, 10),
                                              (uint32_t)strtoul(gh, NULL, 10),
                                              (uint32_t)strtoul(gs, NULL, 10) };
    } else {
        struct vmdk_geometry g;
        vmdk_geometry_for(d->capacity, a == VMDK_ADAPTER_UNKNOWN ? VMDK_ADAPTER_LSILOGIC : a, &g);
        info->phys = (struct vdisk_geometry){ g.cylinders, g.heads, g.sectors };
    }
    info->bios = info->phys;
    gc = ddb(n, "geometry.biosCylinders");
    gh = ddb(n, "geometry.biosHeads");
    gs = ddb(n, "geometry.biosSectors");
    if (gc && gh && gs)
        info->bios = (struct vdisk_geometry){ (uint32_t)strtoul(gc, NULL, 10),
                                              (uint32_t)strtoul(gh, NULL, 10),
                                              (uint32_t)strtoul(gs, NULL, 10) };
    info->hw_version = (v = ddb(n, "virtualHWVersion")) ? atoi(v) : 4;
    enum vmdk_type t = (v = get(n, "createType")) ? vmdk_type_from_name(v) : VMDK_TYPE_UNKNOWN;
    info->disk_type = t == VMDK_TYPE_UNKNOWN || t > VMDK_TYPE_VMFS_SPARSE ? 256 : (int)t;
    info->logical_sector = (v = ddb(n, "logicalSectorSize")) && strcmp(v, "4096") == 0 ? 4096
                                                                                         : 512;
    info->physical_sector = (v = ddb(n, "physicalSectorSize")) && strcmp(v, "4096") == 0
                                ? 4096 : 512;
    return 0;
}

static int r_meta_get(struct vdisk *d, const char *key, char **value)
{
    struct nd *n = impl(d);
    const char *v = ddb(n, key);
    if (!v)
        return vd_err_set(VD_E_NOTFOUND_KEY, "server %s: key \"%s\" is not in the disk "
                          "database the server reported", nbd_client_peer(n->c), key);
    if (!(*value = strdup(v)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    return 0;
}

static int r_meta_set(struct vdisk *d, const char *key, const char *value)
{
    (void)value;
    return vd_err_set(VD_E_UNSUPPORTED, "server %s: cannot write \"%s\": NBD carries no "
                      "disk-database writes (metadata can be written to local disks only)",
                      nbd_client_peer(impl(d)->c), key);
}

static int r_meta_keys(struct vdisk *d, char ***keys, size_t *count)
{
    struct nd *n = impl(d);
    char **v = calloc(n->nkv ? n->nkv : 1, sizeof *v);
    if (!v)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n->nkv; i++) {
        if (strncmp(n->kv[i].k, "ddb.", 4) != 0)
            continue;
        if (!(v[k] = strdup(n->kv[i].k + 4))) {
            vmdk_strv_free(v, k);
            return vd_err_set(VD_E_NOMEM, "out of memory");
        }
        k++;
    }
    *keys = v;
    *count = k;
    return 0;
}

static int r_close(struct vdisk *d)
{
    struct nd *n = impl(d);
    int rc = nbd_client_close(n->c);
    for (size_t i = 0; i < n->nkv; i++) {
        free(n->kv[i].k);
        free(n->kv[i].v);
    }
    free(n->kv);
    free(n->c_ext);
    pthread_mutex_destroy(&n->lock);
    free(n);
    free(d);
    return rc;
}

static const struct vdisk_ops nbd_ops = {
    .pread = r_pread,
    .pwrite = r_pwrite,
    .flush = r_flush,
    .block_status = r_block_status,
    .info = r_info,
    .meta_get = r_meta_get,
    .meta_set = r_meta_set,
    .meta_keys = r_meta_keys,
    .close = r_close,
    .zero = r_zero,
    .transport = "nbd",
};

static const struct vdisk_ops nbdssl_ops = {
    .pread = r_pread,
    .pwrite = r_pwrite,
    .flush = r_flush,
    .block_status = r_block_status,
    .info = r_info,
    .meta_get = r_meta_get,
    .meta_set = r_meta_set,
    .meta_keys = r_meta_keys,
    .close = r_close,
    .zero = r_zero,
    .transport = "nbdssl",
};

int vdisk_is_nbd(const struct vdisk *d)
{
    return d && (d->ops == &nbd_ops || d->ops == &nbdssl_ops);
}

int vdisk_open_nbd(const struct nbd_remote *r, const char *export_name, int readonly,
                   struct vdisk **out)
{
    struct vdisk *d = calloc(1, sizeof *d);
    struct nd *n = calloc(1, sizeof *n);
    if (!d || !n) {
        free(d);
        free(n);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    int rc = nbd_client_open(r, export_name, &n->c);
    if (rc < 0) {
        free(d);
        free(n);
        return rc;
    }
    pthread_mutex_init(&n->lock, NULL);
    n->gen = 1;
    parse_desc(n, nbd_client_description(n->c));
    n->readonly = readonly || (nbd_client_tflags(n->c) & NBD_FLAG_READ_ONLY);
    d->ops = nbd_client_is_tls(n->c) ? &nbdssl_ops : &nbd_ops;
    d->impl = n;
    d->capacity = nbd_client_size(n->c);
    d->readonly = n->readonly;
    *out = d;
    return 0;
}
