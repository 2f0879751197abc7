/* vdisk_nfc.c - struct vdisk_ops over an NFC client connection.
 *
 * Data moves with the codec chosen at open; allocation comes from
 * QUERY_ALLOCATED_BLOCKS in 64 KiB chunks (the smallest VDDK asks for),
 * a window at a time, dropped on writes; GetInfo comes from the OPEN_FILE
 * reply and the disk database (DDB_GET) read at open. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nfc_client.h"
#include "nfc_codec.h"
#include "nfc_proto.h"
#include "vdisk_nfc.h"
#include "../util/err.h"
#include "../util/log.h"
#include "../vmdk/vmdk.h"

#define QAB_CHUNK 65536u
#define QAB_WINDOW_CHUNKS 131072u      /* 8 GiB of disk per query */

/* Disk database keys GetInfo and GetMetadataKeys ask for (without
 * "ddb."); the server answers each one or says it is absent. */
static const char *const known_keys[] = {
    "adapterType", "geometry.biosCylinders", "geometry.biosHeads", "geometry.biosSectors",
    "geometry.cylinders", "geometry.heads", "geometry.sectors", "uuid", "longContentID",
    "virtualHWVersion", "toolsVersion", "toolsInstallType", "thinProvisioned", "deletable",
    "encoding", "iofilters", "logicalSectorSize", "physicalSectorSize", "sidecars",
};
#define NKEYS (sizeof known_keys / sizeof known_keys[0])

struct nv {
    struct nfc_client *c;
    int codec;
    char *path;
    char *ddb[NKEYS];                  /* values read at open (NULL: absent) */
    pthread_mutex_t lock;              /* the allocation window */
    uint64_t gen;                      /* bumped by every write */
    unsigned char *bm;
    uint64_t bm_start, bm_count, bm_gen;
};

static struct nv *impl(struct vdisk *d) { return d->impl; }

static const char *ddb(struct nv *n, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(known_keys[i], key) == 0)
            return n->ddb[i];
    return NULL;
}

static int r_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
    return nfc_client_pread(impl(d)->c, buf, len, off, impl(d)->codec);
}

static int r_pread_start(struct vdisk *d, void *buf, size_t len, uint64_t off,
                         void (*done)(void *arg, int rc, const char *msg), void *arg)
{
    return nfc_client_pread_start(impl(d)->c, buf, len, off, impl(d)->codec, done, arg);
}

static int r_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
    struct nv *n = impl(d);
    if (d->readonly)
        return vd_err_set(VD_E_READONLY, "%s: opened read-only over NFC", n->path);
    pthread_mutex_lock(&n->lock);
    n->gen++;
    pthread_mutex_unlock(&n->lock);
    return nfc_client_pwrite(n->c, buf, len, off, n->codec);
}

static int r_flush(struct vdisk *d)
{
    return nfc_client_flush(impl(d)->c);
}

/* The run of equal status from off inside the cached window; 1 if answered. */
static int from_window(struct nv *n, uint64_t off, uint64_t len, uint64_t *run, int *status)
{
    if (!n->bm || n->bm_gen != n->gen || off < n->bm_start)
        return 0;
    uint64_t i = (off - n->bm_start) / QAB_CHUNK;
    if (i >= n->bm_count)
        return 0;
    int bit = nfc_qab_bit(n->bm, i);
    uint64_t j = i + 1;
    while (j < n->bm_count && nfc_qab_bit(n->bm, j) == bit)
        j++;
    uint64_t end = n->bm_start + j * QAB_CHUNK;
    *run = end - off < len ? end - off : len;
    *status = bit ? VMDK_DATA : VMDK_HOLE;
    return 1;
}

static int r_block_status(struct vdisk *d, uint64_t off, uint64_t len, int single,
                          uint64_t *run, int *status)
{
    (void)single;   /* the server answers for the whole chain */
    struct nv *n = impl(d);
    if (len == 0 || off >= d->capacity || len > d->capacity - off)
        return vd_err_set(VD_E_RANGE, "block status %llu+%llu is past the end of the disk",
                          (unsigned long long)off, (unsigned long long)len);
    pthread_mutex_lock(&n->lock);
    int hit = from_window(n, off, len, run, status);
    uint64_t gen = n->gen;
    pthread_mutex_unlock(&n->lock);
    if (hit)
        return 0;
    uint64_t start = off - off % QAB_CHUNK;
    uint64_t count = (d->capacity - start + QAB_CHUNK - 1) / QAB_CHUNK;
    if (count > QAB_WINDOW_CHUNKS)
        count = QAB_WINDOW_CHUNKS;
    unsigned char *bm;
    int rc = nfc_client_qab(n->c, QAB_CHUNK, start, count, &bm);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&n->lock);
    free(n->bm);
    n->bm = bm;
    n->bm_start = start;
    n->bm_count = count;
    n->bm_gen = gen;
    /* Answer from this reply even if a write has made it stale since. */
    uint64_t g = n->gen;
    n->gen = gen;
    hit = from_window(n, off, len, run, status);
    n->gen = g;
    pthread_mutex_unlock(&n->lock);
    if (!hit) {
        *run = len;
        *status = VMDK_DATA;
    }
    return 0;
}

static uint32_t num(const char *v, uint32_t dflt)
{
    return v ? (uint32_t)strtoul(v, NULL, 10) : dflt;
}

static int r_info(struct vdisk *d, struct vdisk_info *info)
{
    struct nv *n = impl(d);
    const struct nfc_file_info *fi = nfc_client_info(n->c);
    memset(info, 0, sizeof *info);
    info->capacity = d->capacity;
    info->num_links = 1;
    const char *v;
    if ((v = ddb(n, "uuid")) && !(info->uuid = strdup(v)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    enum vmdk_adapter a = (v = ddb(n, "adapterType")) ? vmdk_adapter_from_name(v)
                                                       : VMDK_ADAPTER_LSILOGIC;
    info->adapter = (int)a;
    info->phys = (struct vdisk_geometry){ fi->cylinders, fi->heads, fi->sectors };
    /* VDDK reports an absent BIOS geometry as zeros. */
    info->bios = (struct vdisk_geometry){ num(ddb(n, "geometry.biosCylinders"), 0),
                                          num(ddb(n, "geometry.biosHeads"), 0),
                                          num(ddb(n, "geometry.biosSectors"), 0) };
    info->hw_version = (int)num(ddb(n, "virtualHWVersion"), 4);
    info->disk_type = 256;            /* NFC does not say how the disk is stored */
    info->logical_sector = num(ddb(n, "logicalSectorSize"), fi->sector_size) == 4096 ? 4096
                                                                                    : 512;
    info->physical_sector = num(ddb(n, "physicalSectorSize"), 512) == 4096 ? 4096 : 512;
    return 0;
}

static int r_meta_get(struct vdisk *d, const char *key, char **value)
{
    struct nv *n = impl(d);
    const char *k = strncmp(key, "ddb.", 4) == 0 ? key + 4 : key;
    return nfc_client_ddb_get(n->c, k, value);
}

static int r_meta_set(struct vdisk *d, const char *key, const char *value)
{
    (void)value;
    return vd_err_set(VD_E_UNSUPPORTED, "%s: cannot write \"%s\" over NFC: the protocol as "
                      "known has no disk-database write", impl(d)->path, key);
}

static int r_meta_keys(struct vdisk *d, char ***keys, size_t *count)
{
    struct nv *n = impl(d);
    char **v = calloc(NKEYS, sizeof *v);
    if (!v)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (!n->ddb[i])
            continue;
        if (!(v[k] = strdup(known_keys[i]))) {
            vmdk_strv_free(v, k);
            return vd_err_set(VD_E_NOMEM, "out of memory");
        }
        k++;
    }
    *keys = v;
    *count = k;
    return 0;
}

static void free_nv(struct nv *n)
{
    for (size_t i = 0; i < NKEYS; i++)
        free(n->ddb[i]);
    free(n->bm);
    free(n->path);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

static int r_close(struct vdisk *d)
{
    struct nv *n = impl(d);
    uint64_t sent, received;
    nfc_client_traffic(n->c, &sent, &received);
    vd_log("%s: NFC connection to %s (%s, codec %s) closed: %llu bytes sent, %llu received",
           n->path, nfc_client_peer(n->c), d->ops->transport, nfc_codec_name(n->codec),
           (unsigned long long)sent, (unsigned long long)received);
    int rc = nfc_client_close(n->c);
    free_nv(n);
    free(d);
    return rc;
}

static const struct vdisk_ops nbd_ops = {
    .pread = r_pread, .pwrite = r_pwrite, .flush = r_flush, .block_status = r_block_status,
    .info = r_info, .meta_get = r_meta_get, .meta_set = r_meta_set, .meta_keys = r_meta_keys,
    .close = r_close, .pread_start = r_pread_start, .transport = "nbd",
};
static const struct vdisk_ops nbdssl_ops = {
    .pread = r_pread, .pwrite = r_pwrite, .flush = r_flush, .block_status = r_block_status,
    .info = r_info, .meta_get = r_meta_get, .meta_set = r_meta_set, .meta_keys = r_meta_keys,
    .close = r_close, .pread_start = r_pread_start, .transport = "nbdssl",
};

int vdisk_is_nfc(const struct vdisk *d)
{
    return d && (d->ops == &nbd_ops || d->ops == &nbdssl_ops);
}

/* Read the disk database keys GetInfo needs, all in one round trip. */
static int read_ddb(struct nv *n)
{
    return nfc_client_ddb_get_many(n->c, known_keys, NKEYS, n->ddb);
}

int vdisk_from_nfc(struct nfc_client *c, const char *path, int rw, int codec,
                   struct vdisk **out)
{
    *out = NULL;
    struct vdisk *d = calloc(1, sizeof *d);
    struct nv *n = calloc(1, sizeof *n);
    if (!d || !n || !(n->path = strdup(path))) {
        free(d);
        if (n)
            free(n->path);
        free(n);
        nfc_client_close(c);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    n->c = c;
    n->codec = codec;
    pthread_mutex_init(&n->lock, NULL);
    int rc = read_ddb(n);
    if (rc < 0) {
        nfc_client_close(c);
        free_nv(n);
        free(d);
        return rc;
    }
    d->ops = nfc_client_is_ssl(c) ? &nbdssl_ops : &nbd_ops;
    d->capacity = nfc_client_info(c)->capacity;
    d->readonly = !rw;
    d->impl = n;
    *out = d;
    return 0;
}

int vdisk_open_nfc(const struct nfc_params *p, const char *path, int rw, int codec,
                   struct vdisk **out)
{
    struct nfc_client *c;
    int rc = nfc_client_open(p, path, rw, &c);
    if (rc < 0)
        return rc;
    return vdisk_from_nfc(c, path, rw, codec, out);
}
