/* handle.c - Open/Close, sector I/O, info, metadata and allocated blocks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "vixdl.h"
#include "../ops/ops.h"
#include "../plugin/vdplugin.h"
#include "../util/fileio.h"
#include "../vmdk/vmdk.h"

#define BOUNCE_MAX (1u << 20)

VixError vixdl_get_disk(const char *op, VixDiskLibHandle h)
{
    if (!h)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "no disk handle given");
    if (!vixdl_acquire(h, VIXDL_DISK))
        return vixdl_fail(op, VIX_E_INVALID_HANDLE, "%p is not an open disk handle", (void *)h);
    return VIX_OK;
}

#define GET_DISK(op, h)                                                     \
    do {                                                                    \
        VixError e_ = vixdl_get_disk(op, h);                                \
        if (e_ != VIX_OK)                                                   \
            return e_;                                                      \
    } while (0)

VixError vixdl_open(const char *op, const VixDiskLibConnection connection, const char *path,
                    uint32 flags, int raw, VixDiskLibHandle *diskHandle)
{
    if (diskHandle)
        *diskHandle = NULL;
    struct VixDiskLibConnectParam *c;
    VIXDL_CONN_OP(op, connection, c);
    VixError e = VIX_OK;
    if (!diskHandle || !path || !*path) {
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "%s", !diskHandle ? "no place to return the "
                       "handle" : "no disk path given");
        goto out;
    }
    if (raw && c->remote) {
        e = vixdl_fail(op, VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "%s: raw images are local "
                       "files or block devices", path);
        goto out;
    }
    unsigned vf = 0;
    if ((flags & VIXDISKLIB_FLAG_OPEN_READ_ONLY) || c->readonly)
        vf |= VMDK_OPEN_RDONLY;
    if (flags & VIXDISKLIB_FLAG_OPEN_SINGLE_LINK)
        vf |= VMDK_OPEN_SINGLE_LINK;
    if (flags & VIXDISKLIB_FLAG_OPEN_UNBUFFERED)
        vf |= VMDK_OPEN_DIRECT;
    /* COMPRESSION_* flags select wire compression for NFC (nbd, nbdssl);
     * a local open has no wire, NBD has no compression, and https moves
     * files, so there they have no effect. */
    int codec = (flags & VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB)     ? 1
                : (flags & VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ) ? 2
                : (flags & VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ)  ? 3 : 0;
    struct VixDiskLibHandleStruct *h = calloc(1, sizeof *h);
    if (!h || !(h->path = vd_strdup(path))) {
        free(h);
        e = vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    if (c->remote && !c->vs &&
        (flags & (VIXDISKLIB_FLAG_OPEN_SINGLE_LINK | VIXDISKLIB_FLAG_OPEN_COMPRESSION_MASK)))
        /* The export is chosen by name ("[datastore] path"); the server
         * decides whole chain or single link. */
        vixdl_log("Open: %s: SINGLE_LINK and compression flags do not apply to NBD "
                  "(the server chooses the chain; data is not compressed)", path);
    int rc = raw ? vdisk_open_raw(path, vf, &h->disk)
                 : vixdl_conn_open_disk(c, path, vf, codec, &h->disk);
    if (rc < 0) {
        free(h->path);
        free(h);
        e = vixdl_fail_engine(op, rc);
        goto out;
    }
    h->conn = c;
    h->flags = flags;
    h->capacity_sectors = h->disk->capacity / VIXDISKLIB_SECTOR_SIZE;
    pthread_mutex_init(&h->alock, NULL);
    pthread_cond_init(&h->acond, NULL);
    if (vixdl_register(&h->obj, VIXDL_DISK) < 0) {
        h->disk->ops->close(h->disk);
        free(h->path);
        free(h);
        e = vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    vixdl_log("%s: %s (%s%s, %s)", op, path, raw ? "raw, " : "",
              (vf & VMDK_OPEN_RDONLY) ? "read-only" : "read-write", h->disk->ops->transport);
    *diskHandle = h;
out:
    vixdl_release(&c->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Open(const VixDiskLibConnection connection, const char *path,
                                      uint32 flags, VixDiskLibHandle *diskHandle)
{
    return vixdl_open("Open", connection, path, flags, 0, diskHandle);
}

VIXDL_EXPORT VixError VixDiskLib_Close(VixDiskLibHandle h)
{
    GET_DISK("Close", h);
    vixdl_async_wait(h);
    vixdl_unregister_wait(&h->obj);
    int rc = h->disk->ops->close(h->disk);
    VixError e = rc < 0 ? vixdl_fail_engine("Close", rc) : VIX_OK;
    pthread_mutex_destroy(&h->alock);
    pthread_cond_destroy(&h->acond);
    free(h->path);
    free(h);
    return e;
}

/* Byte I/O with bounce buffers when the handle is UNBUFFERED and the
 * caller's buffer is not page aligned (O_DIRECT needs alignment). */
int vixdl_io(VixDiskLibHandle h, int write, void *buf, uint64 len, uint64 off)
{
    struct vdisk *d = h->disk;
    if (!(h->flags & VIXDISKLIB_FLAG_OPEN_UNBUFFERED) || ((uintptr_t)buf & 4095) == 0)
        return write ? d->ops->pwrite(d, buf, len, off) : d->ops->pread(d, buf, len, off);
    void *bounce;
    size_t bsz = len < BOUNCE_MAX ? len : BOUNCE_MAX;
    if (posix_memalign(&bounce, 4096, bsz) != 0)
        return vd_err_set(VD_E_NOMEM, "out of memory for bounce buffer");
    int rc = 0;
    for (uint64 done = 0; done < len && rc == 0;) {
        size_t n = len - done < bsz ? (size_t)(len - done) : bsz;
        if (write) {
            memcpy(bounce, (char *)buf + done, n);
            rc = d->ops->pwrite(d, bounce, n, off + done);
        } else {
            rc = d->ops->pread(d, bounce, n, off + done);
            if (rc == 0)
                memcpy((char *)buf + done, bounce, n);
        }
        done += n;
    }
    free(bounce);
    return rc;
}

static VixError check_range(const char *op, VixDiskLibHandle h, VixDiskLibSectorType start,
                            VixDiskLibSectorType n, const void *buf)
{
    if (start > h->capacity_sectors || n > h->capacity_sectors - start)
        return vixdl_fail(op, VIX_E_DISK_OUTOFRANGE, "%s: sectors %lu+%lu are past the end "
                          "of the disk (%lu sectors)", h->path, (unsigned long)start,
                          (unsigned long)n, (unsigned long)h->capacity_sectors);
    if (n && !buf)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "no buffer given");
    return VIX_OK;
}

/* Writes to vSphere disks need a transport that moves sectors. */
static VixError check_write(const char *op, VixDiskLibHandle h, int write)
{
    if (write && h->conn->vs && strcmp(h->disk->ops->transport, "https") == 0)
        return vixdl_fail(op, VIX_E_NOT_SUPPORTED, "%s: the https transport reads datastore "
                          "files and cannot write; open the disk with transport nbdssl or nbd "
                          "(NFC) to write", h->path);
    return VIX_OK;
}

static VixError sync_io(const char *op, VixDiskLibHandle h, int write,
                        VixDiskLibSectorType start, VixDiskLibSectorType n, void *buf)
{
    GET_DISK(op, h);
    VixError e = check_write(op, h, write);
    if (e == VIX_OK)
        e = check_range(op, h, start, n, buf);
    if (e == VIX_OK && n) {
        int rc = vixdl_io(h, write, buf, n * VIXDISKLIB_SECTOR_SIZE,
                          start * VIXDISKLIB_SECTOR_SIZE);
        if (rc < 0)
            e = vixdl_fail_engine(op, rc);
    }
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_Read(VixDiskLibHandle h, VixDiskLibSectorType startSector,
                                      VixDiskLibSectorType numSectors, uint8 *readBuffer)
{
    return sync_io("Read", h, 0, startSector, numSectors, readBuffer);
}

VIXDL_EXPORT VixError VixDiskLib_Write(VixDiskLibHandle h, VixDiskLibSectorType startSector,
                                       VixDiskLibSectorType numSectors, const uint8 *writeBuffer)
{
    return sync_io("Write", h, 1, startSector, numSectors, (void *)writeBuffer);
}

static VixError async_io(const char *op, VixDiskLibHandle h, int write,
                         VixDiskLibSectorType start, VixDiskLibSectorType n, void *buf,
                         VixDiskLibCompletionCB cb, void *data)
{
    GET_DISK(op, h);
    VixError e = check_write(op, h, write);
    if (e == VIX_OK)
        e = check_range(op, h, start, n, buf);
    if (e == VIX_OK && !cb)
        e = vixdl_fail(op, VIX_E_INVALID_ARG, "no completion callback given");
    if (e == VIX_OK) {
        int rc = vixdl_async_submit(h, write, start * VIXDISKLIB_SECTOR_SIZE,
                                    n * VIXDISKLIB_SECTOR_SIZE, buf, cb, data);
        e = rc < 0 ? vixdl_fail_engine(op, rc) : VIX_ASYNC;
    }
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_ReadAsync(VixDiskLibHandle h, VixDiskLibSectorType startSector,
                                           VixDiskLibSectorType numSectors, uint8 *readBuffer,
                                           VixDiskLibCompletionCB callback, void *cbData)
{
    return async_io("ReadAsync", h, 0, startSector, numSectors, readBuffer, callback, cbData);
}

VIXDL_EXPORT VixError VixDiskLib_WriteAsync(VixDiskLibHandle h, VixDiskLibSectorType startSector,
                                            VixDiskLibSectorType numSectors,
                                            const uint8 *writeBuffer,
                                            VixDiskLibCompletionCB callback, void *cbData)
{
    return async_io("WriteAsync", h, 1, startSector, numSectors, (void *)writeBuffer, callback,
                    cbData);
}

VIXDL_EXPORT VixError VixDiskLib_Wait(VixDiskLibHandle h)
{
    GET_DISK("Wait", h);
    vixdl_async_wait(h);
    vixdl_release(&h->obj);
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_Flush(VixDiskLibHandle h)
{
    GET_DISK("Flush", h);
    vixdl_async_wait(h);
    int rc = h->disk->ops->flush(h->disk);
    VixError e = rc < 0 ? vixdl_fail_engine("Flush", rc) : VIX_OK;
    vixdl_release(&h->obj);
    return e;
}

/* VixDiskLibInfo has no room for what a NAS plugin knows about the
 * files' space, so the first GetInfo of a handle logs it, link by link. */
static void log_nas_figures(VixDiskLibHandle h)
{
    vmdk_disk *eng = vdisk_local_engine(h->disk);
    if (!eng || vdplugin_count() == 0 ||
        __atomic_exchange_n(&h->nas_logged, 1, __ATOMIC_RELAXED))
        return;
    for (int l = 0; l < vmdk_num_links(eng); l++) {
        struct vdplugin_stat st;
        struct vmdk_link_info li;
        if (vmdk_link_info(eng, l, &li) == 0 && ops_plugin_link_stat(eng, l, &st) == 0)
            vixdl_log("GetInfo %s: link %d (%s): NAS plugin %s reports %" PRIu64 " bytes, %"
                      PRIu64 " allocated, %" PRIu64 " unique", h->path, l, li.path, st.plugin,
                      st.total, st.allocated, st.unique);
    }
    vd_err_clear();
}

VIXDL_EXPORT VixError VixDiskLib_GetInfo(VixDiskLibHandle h, VixDiskLibInfo **info)
{
    GET_DISK("GetInfo", h);
    VixError e = VIX_OK;
    struct vdisk_info vi;
    if (!info) {
        e = vixdl_fail("GetInfo", VIX_E_INVALID_ARG, "no place to return the information");
        goto out;
    }
    int rc = h->disk->ops->info(h->disk, &vi);
    if (rc < 0) {
        e = vixdl_fail_engine("GetInfo", rc);
        goto out;
    }
    VixDiskLibInfo *i = calloc(1, sizeof *i);
    if (!i) {
        vdisk_info_free(&vi);
        e = vixdl_fail("GetInfo", VIX_E_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    i->biosGeo = (VixDiskLibGeometry){ vi.bios.cylinders, vi.bios.heads, vi.bios.sectors };
    i->physGeo = (VixDiskLibGeometry){ vi.phys.cylinders, vi.phys.heads, vi.phys.sectors };
    i->capacity = vi.capacity / VIXDISKLIB_SECTOR_SIZE;
    i->adapterType = (VixDiskLibAdapterType)vi.adapter;
    i->numLinks = vi.num_links;
    i->parentFileNameHint = vi.parent_hint;   /* ownership moves to i */
    i->uuid = vi.uuid;
    i->logicalSectorSize = vi.logical_sector;
    i->physicalSectorSize = vi.physical_sector;
    *info = i;
    log_nas_figures(h);
out:
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT void VixDiskLib_FreeInfo(VixDiskLibInfo *info)
{
    if (!info)
        return;
    free(info->parentFileNameHint);
    free(info->uuid);
    free(info);
}

VIXDL_EXPORT const char *VixDiskLib_GetTransportMode(VixDiskLibHandle h)
{
    if (vixdl_get_disk("GetTransportMode", h) != VIX_OK)
        return NULL;
    const char *t = h->disk->ops->transport;
    vixdl_release(&h->obj);
    return t;
}

VIXDL_EXPORT VixError VixDiskLib_ReadMetadata(VixDiskLibHandle h, const char *key, char *buf,
                                              size_t bufLen, size_t *requiredLen)
{
    GET_DISK("ReadMetadata", h);
    VixError e = VIX_OK;
    char *val = NULL;
    if (!key || !*key) {
        e = vixdl_fail("ReadMetadata", VIX_E_INVALID_ARG, "no key given");
        goto out;
    }
    int rc = h->disk->ops->meta_get(h->disk, key, &val);
    if (rc < 0) {
        e = vixdl_fail_engine("ReadMetadata", rc);
        goto out;
    }
    size_t need = strlen(val) + 1;
    if (requiredLen)
        *requiredLen = need;
    if (!buf || bufLen < need) {
        /* Not a failure worth a warning: callers probe the size this way. */
        e = VIX_E_BUFFER_TOOSMALL;
        goto out;
    }
    memcpy(buf, val, need);
out:
    free(val);
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_WriteMetadata(VixDiskLibHandle h, const char *key,
                                               const char *val)
{
    GET_DISK("WriteMetadata", h);
    VixError e = VIX_OK;
    if (!key || !*key || !val) {
        e = vixdl_fail("WriteMetadata", VIX_E_INVALID_ARG, "%s", !val ? "no value given (keys "
                       "cannot be removed; write an empty value)" : "no key given");
    } else if (h->conn->vs) {
        e = vixdl_fail("WriteMetadata", VIX_E_NOT_SUPPORTED, "%s: disk-database writes to "
                       "vSphere disks are not possible here: https cannot write, and NFC as "
                       "known has no disk-database write", h->path);
    } else if (h->conn->remote) {
        e = vixdl_fail("WriteMetadata", VIX_E_NOT_SUPPORTED_ON_REMOTE_OBJECT, "%s: the NBD "
                       "transport carries no disk-database writes", h->path);
    } else {
        int rc = h->disk->ops->meta_set(h->disk, key, val);
        if (rc < 0)
            e = vixdl_fail_engine("WriteMetadata", rc);
    }
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_GetMetadataKeys(VixDiskLibHandle h, char *keys, size_t maxLen,
                                                 size_t *requiredLen)
{
    GET_DISK("GetMetadataKeys", h);
    VixError e = VIX_OK;
    char **v = NULL;
    size_t n = 0;
    int rc = h->disk->ops->meta_keys(h->disk, &v, &n);
    if (rc < 0) {
        e = vixdl_fail_engine("GetMetadataKeys", rc);
        goto out;
    }
    size_t need = 1;
    for (size_t i = 0; i < n; i++)
        need += strlen(v[i]) + 1;
    if (requiredLen)
        *requiredLen = need;
    if (!keys || maxLen < need) {
        e = VIX_E_BUFFER_TOOSMALL;
        goto out;
    }
    char *p = keys;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(p, v[i], l);
        p += l;
    }
    *p = '\0';
out:
    vmdk_strv_free(v, n);
    vixdl_release(&h->obj);
    return e;
}

/* Allocated chunks of [start, start+n): a chunk is reported when any byte
 * of it holds data; adjacent chunks are merged. */
static VixError query_blocks(VixDiskLibHandle h, VixDiskLibSectorType start,
                             VixDiskLibSectorType n, VixDiskLibSectorType chunk,
                             VixDiskLibBlockList **out)
{
    const char *op = "QueryAllocatedBlocks";
    if (!out)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "no place to return the block list");
    *out = NULL;
    if (chunk < VIXDISKLIB_MIN_CHUNK_SIZE || chunk > VIXDISKLIB_MAX_CHUNK_SIZE)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "chunk size %lu sectors is outside %d..%d",
                          (unsigned long)chunk, VIXDISKLIB_MIN_CHUNK_SIZE,
                          VIXDISKLIB_MAX_CHUNK_SIZE);
    if (start % chunk || n % chunk)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "start %lu and length %lu must be multiples "
                          "of the chunk size %lu", (unsigned long)start, (unsigned long)n,
                          (unsigned long)chunk);
    if (n / chunk > VIXDISKLIB_MAX_CHUNK_NUMBER)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "%lu chunks requested; at most %d per call",
                          (unsigned long)(n / chunk), VIXDISKLIB_MAX_CHUNK_NUMBER);
    if (start > UINT64_MAX / 512 - n)
        return vixdl_fail(op, VIX_E_INVALID_ARG, "range overflows");
    uint64 cap = h->disk->capacity;
    uint64 off = start * 512, end = (start + n) * 512, cb = chunk * 512;
    if (end > cap)
        end = cap;   /* past the end: unallocated (callers round the last query up) */
    int single = (h->flags & VIXDISKLIB_FLAG_OPEN_SINGLE_LINK) != 0;
    size_t nb = 0, capb = 16;
    VixDiskLibBlock *blocks = malloc(capb * sizeof *blocks);
    if (!blocks)
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    while (off < end) {
        uint64 run;
        int st;
        int rc = h->disk->ops->block_status(h->disk, off, end - off, single, &run, &st);
        if (rc < 0) {
            free(blocks);
            return vixdl_fail_engine(op, rc);
        }
        if (st == VMDK_DATA) {
            uint64 b0 = off / cb * cb / 512;
            uint64 b1 = ((off + run + cb - 1) / cb * cb) / 512;
            if (nb && blocks[nb - 1].offset + blocks[nb - 1].length >= b0) {
                blocks[nb - 1].length = b1 - blocks[nb - 1].offset;
            } else {
                if (nb == capb) {
                    VixDiskLibBlock *nbk = realloc(blocks, capb * 2 * sizeof *nbk);
                    if (!nbk) {
                        free(blocks);
                        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
                    }
                    blocks = nbk;
                    capb *= 2;
                }
                blocks[nb].offset = b0;
                blocks[nb].length = b1 - b0;
                nb++;
            }
        }
        off += run;
    }
    /* One malloc'd block, so plain free() works as well as FreeBlockList. */
    VixDiskLibBlockList *bl = malloc(sizeof *bl + (nb ? nb - 1 : 0) * sizeof(VixDiskLibBlock));
    if (!bl) {
        free(blocks);
        return vixdl_fail(op, VIX_E_OUT_OF_MEMORY, "out of memory");
    }
    bl->numBlocks = (uint32)nb;
    if (nb)
        memcpy(bl->blocks, blocks, nb * sizeof *blocks);
    free(blocks);
    *out = bl;
    return VIX_OK;
}

VIXDL_EXPORT VixError VixDiskLib_QueryAllocatedBlocks(VixDiskLibHandle h,
                                                      VixDiskLibSectorType startSector,
                                                      VixDiskLibSectorType numSectors,
                                                      VixDiskLibSectorType chunkSize,
                                                      VixDiskLibBlockList **blockList)
{
    GET_DISK("QueryAllocatedBlocks", h);
    VixError e = query_blocks(h, startSector, numSectors, chunkSize, blockList);
    vixdl_release(&h->obj);
    return e;
}

VIXDL_EXPORT VixError VixDiskLib_FreeBlockList(VixDiskLibBlockList *blockList)
{
    free(blockList);
    return VIX_OK;
}
