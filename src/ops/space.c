/* space.c - SpaceNeededForClone: the bytes ops_clone's files will take.
 *
 * The answer is the sum of the sizes (st_size) of the files a clone to
 * that type makes, computed the way clone.c writes them:
 *  - flat types: the capacity, plus the descriptor file;
 *  - hosted sparse (monolithic, split): per extent file the metadata
 *    (overHead) plus one 64 KiB grain for every grain a non-zero 64 KiB
 *    write unit of the copy touches (clone.c writes only those), plus the
 *    descriptor file for split disks;
 *  - vmfsSparse (COWD, 1-sector grains): header and directory, one 16 KiB
 *    table per 2 MiB range written, the written sectors, the descriptor;
 *  - streamOptimized: the fixed 64 KiB head, one padded record (12-byte
 *    marker + zlib data) per non-zero grain, a table for every 32 MiB with
 *    data, directory, footer and end marker.  The compressed sizes come
 *    from compressing the grains as clone.c does (libdeflate, level 6):
 *    all of them up to SAMPLE_MAX, beyond that an evenly spread sample
 *    (every k-th non-zero grain) whose mean is scaled to the count.
 * When a NAS plugin would do a flat clone (clone_plugin.c), the extent
 * files count for the new space the plugin's clone takes instead: nothing
 * for the blocks a lazy clone shares.
 * Source data is read like the clone reads it (data runs from
 * block_status, then a zero test), so the figure is exact for every type
 * but streamOptimized, where it is within a fraction of a percent for
 * disks whose data is not all sampled. */
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "../util/fileio.h"
#include "../vmdk/descriptor.h"
#include "../vmdk/extent.h"

#define COPY_CHUNK (1u << 20)          /* as clone.c */
#define ZERO_UNIT (64u << 10)          /* as clone.c */
#define SPARSE_GRAIN 128u              /* sectors, vmdk_create's default */
#define SPLIT_SECTORS 4192256ull       /* vmdk_create's default split */
#define COWD_GRAIN 1u                  /* sectors, vmdk_create's default for vmfsSparse */
#define COWD_GTES 4096u
#define STREAM_GRAIN VMDK_STREAM_GRAIN_BYTES
#define STREAM_BATCH (16u * STREAM_GRAIN)
#define STREAM_HEAD (128u * 512u)      /* header + descriptor area */
#define COMPRESSION_LEVEL 6            /* as clone.c */
#define SAMPLE_MAX 4096u

static uint64_t pad512(uint64_t v) { return (v + 511) / 512 * 512; }

/* Grains of `grain` bytes touched by the non-zero 64 KiB units of the copy:
 * counts per extent of ext_bytes (0: one extent), and per group of
 * group_grains grains (COWD tables; 0: not counted). */
struct touch {
    uint64_t grain, ext_bytes, group_grains;
    uint64_t *per_ext;
    size_t next;
    uint64_t groups;
    uint64_t last_g, last_group;
    int any;
};

static void touch_range(struct touch *t, uint64_t a, uint64_t len)
{
    for (uint64_t g = a / t->grain; g <= (a + len - 1) / t->grain; g++) {
        if (t->any && g <= t->last_g)
            continue;
        t->any = 1;
        t->last_g = g;
        size_t e = t->ext_bytes ? (size_t)(g * t->grain / t->ext_bytes) : 0;
        if (e < t->next)
            t->per_ext[e]++;
        if (t->group_grains) {
            uint64_t grp = g / t->group_grains + 1;
            if (grp != t->last_group) {
                t->last_group = grp;
                t->groups++;
            }
        }
    }
}

static int scan_plain(struct vdisk *d, struct touch *t)
{
    uint64_t cap = d->capacity, off = 0;
    unsigned char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0;
    while (rc == 0 && off < cap) {
        uint64_t run;
        int st;
        if ((rc = d->ops->block_status(d, off, cap - off, 0, &run, &st)) < 0)
            break;
        uint64_t end = off + run;
        while (st == VMDK_DATA && off < end) {
            size_t n = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
            if ((rc = d->ops->pread(d, buf, n, off)) < 0)
                break;
            for (size_t u = 0; u < n; u += ZERO_UNIT) {
                size_t m = n - u < ZERO_UNIT ? n - u : ZERO_UNIT;
                if (!vd_is_zero(buf + u, m))
                    touch_range(t, off + u, m);
            }
            off += n;
        }
        off = end;
    }
    free(buf);
    return rc;
}

/* Descriptor text as vmdk_create writes it for this type (names use stem;
 * the destination's real name may differ by a few bytes per line). */
static uint64_t descriptor_bytes(int type, uint64_t sectors, const char *stem,
                                 enum vmdk_adapter adapter, int hw)
{
    static const char *ctypes[] = { "", "monolithicSparse", "monolithicFlat",
                                    "twoGbMaxExtentSparse", "twoGbMaxExtentFlat", "vmfs",
                                    "streamOptimized", "vmfs", "vmfsSparse" };
    struct descriptor dd;
    if (desc_init_new(&dd, 0x12345678u, 0xffffffffu, ctypes[type], NULL) < 0)
        return 0;
    int split = type == VMDK_TYPE_SPLIT_SPARSE || type == VMDK_TYPE_SPLIT_FLAT;
    uint64_t per = split ? SPLIT_SECTORS : sectors;
    uint64_t pieces = (sectors + per - 1) / per;
    for (uint64_t i = 0; i < pieces; i++) {
        char *name = type == VMDK_TYPE_SPLIT_SPARSE ? vd_asprintf("%s-s%03llu.vmdk", stem,
                                                                  (unsigned long long)i + 1)
                   : type == VMDK_TYPE_SPLIT_FLAT ? vd_asprintf("%s-f%03llu.vmdk", stem,
                                                                (unsigned long long)i + 1)
                   : type == VMDK_TYPE_VMFS_SPARSE ? vd_asprintf("%s-delta.vmdk", stem)
                                                   : vd_asprintf("%s-flat.vmdk", stem);
        int vmfs = type == VMDK_TYPE_VMFS_FLAT || type == VMDK_TYPE_VMFS_THIN;
        struct desc_extent e = {
            .access = DESC_RW,
            .sectors = i + 1 < pieces ? per : sectors - per * i,
            .type = type == VMDK_TYPE_SPLIT_SPARSE ? "SPARSE" : vmfs ? "VMFS"
                  : type == VMDK_TYPE_VMFS_SPARSE ? "VMFSSPARSE" : "FLAT",
            .file = name,
            .has_offset = type == VMDK_TYPE_MONOLITHIC_FLAT || type == VMDK_TYPE_SPLIT_FLAT,
        };
        int rc = name ? desc_add_extent(&dd, &e) : -1;
        free(name);
        if (rc < 0) {
            desc_free(&dd);
            return 0;
        }
    }
    struct vmdk_geometry g;
    vmdk_geometry_for(sectors * 512, adapter, &g);
    char buf[64];
    desc_set(&dd, "ddb.longContentID", "0123456789abcdef0123456789abcdef");
    desc_set(&dd, "ddb.uuid", "60 00 c2 9a 1f 2b 3c 4d-5e 6f 70 81 92 a3 b4 c5");
    snprintf(buf, sizeof buf, "%u", g.cylinders);
    desc_set(&dd, "ddb.geometry.cylinders", buf);
    snprintf(buf, sizeof buf, "%u", g.heads);
    desc_set(&dd, "ddb.geometry.heads", buf);
    snprintf(buf, sizeof buf, "%u", g.sectors);
    desc_set(&dd, "ddb.geometry.sectors", buf);
    desc_set(&dd, "ddb.adapterType", vmdk_adapter_name(adapter));
    snprintf(buf, sizeof buf, "%d", hw);
    desc_set(&dd, "ddb.virtualHWVersion", buf);
    desc_set(&dd, "ddb.toolsVersion", "2147483647");
    if (type == VMDK_TYPE_VMFS_THIN)
        desc_set(&dd, "ddb.thinProvisioned", "1");
    size_t len = 0;
    char *text = desc_format(&dd, &len);
    free(text);
    desc_free(&dd);
    return text ? len : 0;
}

/* Sampled compressed sizes of the non-zero grains. */
struct sampler {
    uint64_t *idx;          /* non-zero grain ordinal of each sample */
    uint64_t *rec;          /* its record size (bytes, padded) */
    size_t n;
    uint64_t stride;
};

static void sampler_thin(struct sampler *s)
{
    s->stride *= 2;
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->idx[i] % s->stride == 0) {
            s->idx[w] = s->idx[i];
            s->rec[w++] = s->rec[i];
        }
    }
    s->n = w;
}

static int scan_stream(struct vdisk *d, uint64_t *out)
{
    uint64_t cap = d->capacity, sectors = (cap + 511) / 512;
    uint64_t nb = (cap + STREAM_BATCH - 1) / STREAM_BATCH;
    uint64_t gt_cover = 512ull * STREAM_GRAIN;          /* bytes per grain table */
    uint64_t n_gd = (sectors + 128ull * 512 - 1) / (128ull * 512);
    size_t zbound = libdeflate_zlib_compress_bound(NULL, STREAM_GRAIN);
    unsigned char *raw = malloc(STREAM_BATCH), *z = malloc(zbound);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(COMPRESSION_LEVEL);
    struct sampler s = { malloc(SAMPLE_MAX * sizeof(uint64_t)),
                         malloc(SAMPLE_MAX * sizeof(uint64_t)), 0, 1 };
    int rc = 0;
    if (!raw || !z || !c || !s.idx || !s.rec) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    uint64_t nz = 0, tables = 0, last_table = UINT64_MAX;
    for (uint64_t b = 0; b < nb; b++) {
        uint64_t off = b * STREAM_BATCH;
        uint64_t len = cap - off < STREAM_BATCH ? cap - off : STREAM_BATCH;
        uint64_t run;
        int st;
        if ((rc = d->ops->block_status(d, off, len, 0, &run, &st)) < 0)
            goto out;
        if (st != VMDK_DATA && run >= len)
            continue;
        if ((rc = d->ops->pread(d, raw, len, off)) < 0)
            goto out;
        if (len < STREAM_BATCH)
            memset(raw + len, 0, STREAM_BATCH - len);
        unsigned ngr = (unsigned)((len + STREAM_GRAIN - 1) / STREAM_GRAIN);
        for (unsigned g = 0; g < ngr; g++) {
            const unsigned char *in = raw + (size_t)g * STREAM_GRAIN;
            if (vd_is_zero(in, STREAM_GRAIN))
                continue;
            uint64_t table = (off + (uint64_t)g * STREAM_GRAIN) / gt_cover;
            if (table != last_table) {
                last_table = table;
                tables++;
            }
            if (nz % s.stride == 0) {
                size_t zl = libdeflate_zlib_compress(c, in, STREAM_GRAIN, z, zbound);
                if (!zl)
                    zl = STREAM_GRAIN;
                if (s.n == SAMPLE_MAX)
                    sampler_thin(&s);
                if (nz % s.stride == 0) {
                    s.idx[s.n] = nz;
                    s.rec[s.n++] = pad512(12 + zl);
                }
            }
            nz++;
        }
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < s.n; i++)
        sum += s.rec[i];
    uint64_t grains = s.n ? (uint64_t)((long double)sum * nz / s.n + 0.5L) : 0;
    *out = STREAM_HEAD + grains + tables * (512 + 2048) + 512 + pad512(n_gd * 4) + 512 + 512 +
           512;
out:
    if (c)
        libdeflate_free_compressor(c);
    free(raw);
    free(z);
    free(s.idx);
    free(s.rec);
    return rc;
}

int ops_space_needed_for_clone(struct vdisk *d, int disk_type, uint64_t *bytes)
{
    if (!d || !bytes)
        return vd_err_set(VD_E_INVAL, "a disk and a place for the result are required");
    struct vdisk_info info;
    int rc = d->ops->info(d, &info);
    if (rc < 0)
        return rc;
    int type = disk_type;
    if (type == 0 || type == 256)       /* VIXDISKLIB_DISK_UNKNOWN: the source's type */
        type = info.disk_type >= 1 && info.disk_type <= 8 ? info.disk_type
                                                          : VMDK_TYPE_MONOLITHIC_SPARSE;
    enum vmdk_adapter adapter = info.adapter == VMDK_ADAPTER_IDE ||
                                info.adapter == VMDK_ADAPTER_BUSLOGIC
                                    ? (enum vmdk_adapter)info.adapter : VMDK_ADAPTER_LSILOGIC;
    int hw = info.hw_version > 0 ? info.hw_version : 4;
    vdisk_info_free(&info);
    if (type < 1 || type > 8)
        return vd_err_set(VD_E_INVAL, "unknown disk type %d", disk_type);
    uint64_t sectors = (d->capacity + 511) / 512;
    if (type == VMDK_TYPE_STREAM_OPTIMIZED)
        return scan_stream(d, bytes);

    const char *stem = "clone";
    uint64_t desc = type == VMDK_TYPE_MONOLITHIC_SPARSE
                        ? 0 : descriptor_bytes(type, sectors, stem, adapter, hw);
    switch (type) {
    case VMDK_TYPE_MONOLITHIC_FLAT: case VMDK_TYPE_SPLIT_FLAT:
    case VMDK_TYPE_VMFS_FLAT: case VMDK_TYPE_VMFS_THIN: {
        /* Where a NAS plugin would clone the extent files, what it says
         * they take counts instead of their length. */
        uint64_t data;
        *bytes = (ops_plugin_clone_space(d, type, &data) == 0 ? data : sectors * 512) + desc;
        vd_err_clear();
        return 0;
    }
    default:
        break;
    }
    int split = type == VMDK_TYPE_SPLIT_SPARSE, cowd = type == VMDK_TYPE_VMFS_SPARSE;
    uint64_t per = split ? SPLIT_SECTORS : sectors;
    struct touch t = {
        .grain = (cowd ? COWD_GRAIN : SPARSE_GRAIN) * 512ull,
        .ext_bytes = split ? SPLIT_SECTORS * 512 : 0,
        .group_grains = cowd ? COWD_GTES : 0,
        .next = (size_t)((sectors + per - 1) / per),
    };
    t.per_ext = calloc(t.next ? t.next : 1, sizeof *t.per_ext);
    if (!t.per_ext)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    if ((rc = scan_plain(d, &t)) < 0) {
        free(t.per_ext);
        return rc;
    }
    uint64_t total = desc;
    if (cowd) {
        uint64_t cover = (uint64_t)COWD_GRAIN * COWD_GTES;
        uint64_t n_gd = (sectors + cover - 1) / cover;
        total += (4 + (n_gd * 4 + 511) / 512) * 512 + t.groups * COWD_GTES * 4 +
                 t.per_ext[0] * t.grain;
    } else {
        for (size_t i = 0; i < t.next; i++) {
            uint64_t es = i + 1 < t.next ? per : sectors - per * i;
            struct sparse_layout l;
            sparse_layout_compute(es, SPARSE_GRAIN, !split, &l);
            total += l.overhead * 512 + t.per_ext[i] * t.grain;
        }
    }
    free(t.per_ext);
    *bytes = total;
    return 0;
}
