/* create.c - new disks of every hosted and flat type, and delta (child)
 * disks.  Every file is created with O_EXCL; on failure every file made so
 * far is removed, so a failed create leaves nothing behind. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "descriptor.h"
#include "extent.h"
#include "link.h"
#include "maint_priv.h"
#include "vmdk.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define DEFAULT_SPLIT_SECTORS 4192256ull   /* 2047 MiB, as VMware splits */
#define MAX_FILES 100000

static const struct { const char *name; enum vmdk_adapter a; } adapters[] = {
    { "ide", VMDK_ADAPTER_IDE },
    { "buslogic", VMDK_ADAPTER_BUSLOGIC },
    { "lsilogic", VMDK_ADAPTER_LSILOGIC },
};

const char *vmdk_adapter_name(enum vmdk_adapter a)
{
    for (size_t i = 0; i < sizeof adapters / sizeof adapters[0]; i++)
        if (adapters[i].a == a)
            return adapters[i].name;
    return "unknown";
}

enum vmdk_adapter vmdk_adapter_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof adapters / sizeof adapters[0]; i++)
        if (strcasecmp(name, adapters[i].name) == 0)
            return adapters[i].a;
    /* Other SCSI controllers seen in the wild behave like lsilogic here. */
    if (!strcasecmp(name, "lsisas1068") || !strcasecmp(name, "pvscsi") ||
        !strcasecmp(name, "legacyESX"))
        return VMDK_ADAPTER_LSILOGIC;
    return VMDK_ADAPTER_UNKNOWN;
}

void vmdk_geometry_for(uint64_t capacity_bytes, enum vmdk_adapter a, struct vmdk_geometry *g)
{
    uint64_t s = capacity_bytes / 512;
    if (a == VMDK_ADAPTER_IDE) {
        g->heads = 16;
        g->sectors = 63;
        uint64_t c = s / (16 * 63);
        g->cylinders = (uint32_t)(c > 16383 ? 16383 : c);
    } else {
        g->heads = 255;
        g->sectors = 63;
        uint64_t c = s / (255 * 63);
        g->cylinders = (uint32_t)(c > 65535 ? 65535 : c);
    }
}

/* Files created so far, removed again on failure. */
struct created {
    char *paths[MAX_FILES];
    int n;
};

static int create_file(struct created *c, const char *path, int *fdp)
{
    if (c->n == MAX_FILES)
        return vd_err_set(VD_E_INVAL, "%s: too many extent files", path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return vd_err_set(VD_E_EXISTS, "%s: file already exists", path);
        return vd_err_errno(errno, "%s: cannot create", path);
    }
    c->paths[c->n] = vd_strdup(path);
    if (!c->paths[c->n]) {
        close(fd);
        unlink(path);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    c->n++;
    *fdp = fd;
    return 0;
}

static void created_finish(struct created *c, int failed)
{
    for (int i = 0; i < c->n; i++) {
        if (failed)
            unlink(c->paths[i]);
        free(c->paths[i]);
    }
    c->n = 0;
}

static void format_uuid(char *out, size_t n)
{
    unsigned char u[16];
    vd_random(u, sizeof u);
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    snprintf(out, n, "%02x %02x %02x %02x %02x %02x %02x %02x-%02x %02x %02x %02x %02x %02x "
             "%02x %02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
}

static int add_ddb(struct descriptor *d, uint64_t capacity, enum vmdk_adapter adapter,
                   int hw, int thin)
{
    struct vmdk_geometry g;
    char buf[96];
    int rc;
    vmdk_geometry_for(capacity, adapter, &g);
    uint32_t cid;
    desc_get_u32_hex(d, "CID", &cid);
    uint32_t r[3];
    vd_random(r, sizeof r);
    snprintf(buf, sizeof buf, "%08x%08x%08x%08x", r[0], r[1], r[2], cid);
    if ((rc = desc_set(d, "ddb.longContentID", buf)) < 0)
        return rc;
    format_uuid(buf, sizeof buf);
    if ((rc = desc_set(d, "ddb.uuid", buf)) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%u", g.cylinders);
    if ((rc = desc_set(d, "ddb.geometry.cylinders", buf)) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%u", g.heads);
    if ((rc = desc_set(d, "ddb.geometry.heads", buf)) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%u", g.sectors);
    if ((rc = desc_set(d, "ddb.geometry.sectors", buf)) < 0)
        return rc;
    if ((rc = desc_set(d, "ddb.adapterType", vmdk_adapter_name(adapter))) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%d", hw);
    if ((rc = desc_set(d, "ddb.virtualHWVersion", buf)) < 0)
        return rc;
    if ((rc = desc_set(d, "ddb.toolsVersion", "2147483647")) < 0)
        return rc;
    if (thin && (rc = desc_set(d, "ddb.thinProvisioned", "1")) < 0)
        return rc;
    return 0;
}

/* Write the descriptor text to a new separate file. */
static int write_desc_file(struct created *c, const char *path, const struct descriptor *d)
{
    size_t len;
    char *text = desc_format(d, &len);
    if (!text)
        return -VD_E_NOMEM;
    int fd = -1, rc = create_file(c, path, &fd);
    if (rc == 0) {
        if (vd_pwrite_full(fd, text, len, 0) < 0 || fsync(fd) < 0)
            rc = vd_err_errno(errno, "%s: writing descriptor", path);
        close(fd);
    }
    free(text);
    return rc;
}

/* RESVSPACE through a NAS plugin (src/plugin/vdplugin.h).  Weak: defined
 * in libvixDiskLib, NULL in programs that link only the engine. */
int vdplugin_reserve_space(const char *file, uint64_t bytes) __attribute__((weak));

/* Make a flat data file of the given size (preallocated when thick). */
static int make_flat(struct created *c, const char *path, uint64_t bytes, int thick)
{
    int fd = -1, rc = create_file(c, path, &fd);
    if (rc < 0)
        return rc;
    /* A NAS plugin reserves the space if it can; else fallocate below. */
    if (thick && bytes > 0 && vdplugin_reserve_space && ftruncate(fd, (off_t)bytes) == 0 &&
        vdplugin_reserve_space(path, bytes) == 0) {
        close(fd);
        return 0;
    }
    if (thick && bytes > 0 && fallocate(fd, 0, 0, (off_t)bytes) == 0) {
        close(fd);
        return 0;
    }
    if (ftruncate(fd, (off_t)bytes) < 0)
        rc = vd_err_errno(errno, "%s: sizing flat extent to %" PRIu64 " bytes", path, bytes);
    if (rc == 0 && fsync(fd) < 0)
        rc = vd_err_errno(errno, "%s: sync", path);
    close(fd);
    return rc;
}

static int make_sparse(struct created *c, const char *path, uint64_t sectors, uint32_t grain,
                       const struct descriptor *embedded)
{
    struct sparse_layout l;
    sparse_layout_compute(sectors, grain, embedded != NULL, &l);
    char *text = NULL;
    size_t len = 0;
    if (embedded && !(text = desc_format(embedded, &len)))
        return -VD_E_NOMEM;
    int fd = -1, rc = create_file(c, path, &fd);
    if (rc == 0) {
        rc = sparse_extent_write_new(fd, path, &l, text, len);
        if (rc == 0 && fsync(fd) < 0)
            rc = vd_err_errno(errno, "%s: sync", path);
        close(fd);
    }
    free(text);
    return rc;
}

static int make_cowd(struct created *c, const char *path, uint64_t sectors, uint32_t grain)
{
    int fd = -1, rc = create_file(c, path, &fd);
    if (rc < 0)
        return rc;
    rc = cowd_extent_write_new(fd, path, sectors, grain);
    if (rc == 0 && fsync(fd) < 0)
        rc = vd_err_errno(errno, "%s: sync", path);
    close(fd);
    return rc;
}

/* Extent file name for piece i (1-based) of a split or flat disk. */
static char *piece_name(const char *stem_base, char letter, int i)
{
    if (letter == 'F')
        return vd_asprintf("%s-flat.vmdk", stem_base);
    if (letter == 'D')
        return vd_asprintf("%s-delta.vmdk", stem_base);
    return vd_asprintf("%s-%c%03d.vmdk", stem_base, letter, i);
}

static int create_with(const char *path, const struct vmdk_create_params *p,
                       uint32_t parent_cid, const char *parent_hint)
{
    if (!path || !*path)
        return vd_err_set(VD_E_INVAL, "no disk path given");
    /* Names go into the descriptor between quotes: refused before any file
     * is made.  Extent names are the base name with a suffix. */
    int nrc = vd_check_desc_name(path, vd_path_base(path), NULL);
    if (nrc == 0 && parent_hint)
        nrc = vd_check_desc_name(path, parent_hint, "parent hint");
    if (nrc < 0)
        return nrc;
    uint64_t sectors = (p->capacity + 511) / 512;
    if (sectors == 0)
        return vd_err_set(VD_E_INVAL, "%s: capacity must be at least one sector", path);
    if (sectors > (1ull << 46))
        return vd_err_set(VD_E_INVAL, "%s: capacity %" PRIu64 " bytes is too large", path,
                          p->capacity);
    uint32_t grain = p->grain_sectors ? p->grain_sectors : 128;
    if (grain & (grain - 1) || grain > 65536)
        return vd_err_set(VD_E_INVAL, "%s: grain size %u sectors is not a power of two up to "
                          "65536", path, grain);
    uint64_t split_sectors = p->split_size ? (p->split_size + 511) / 512 : DEFAULT_SPLIT_SECTORS;
    if (p->type == VMDK_TYPE_SPLIT_SPARSE)
        split_sectors = split_sectors / grain * grain;
    if (split_sectors == 0)
        return vd_err_set(VD_E_INVAL, "%s: split size too small", path);
    enum vmdk_adapter adapter = p->adapter ? p->adapter : VMDK_ADAPTER_LSILOGIC;
    if (adapter != VMDK_ADAPTER_IDE && adapter != VMDK_ADAPTER_BUSLOGIC &&
        adapter != VMDK_ADAPTER_LSILOGIC)
        return vd_err_set(VD_E_INVAL, "%s: unknown adapter type %d", path, (int)adapter);
    int hw = p->hw_version ? p->hw_version : 4;

    const char *ctype;
    switch (p->type) {
    case VMDK_TYPE_MONOLITHIC_SPARSE: ctype = "monolithicSparse"; break;
    case VMDK_TYPE_MONOLITHIC_FLAT: ctype = "monolithicFlat"; break;
    case VMDK_TYPE_SPLIT_SPARSE: ctype = "twoGbMaxExtentSparse"; break;
    case VMDK_TYPE_SPLIT_FLAT: ctype = "twoGbMaxExtentFlat"; break;
    /* ESXi writes createType "vmfs" for thick and thin disks alike (thin is
     * ddb.thinProvisioned); qemu-img knows no "vmfsThin". */
    case VMDK_TYPE_VMFS_FLAT: case VMDK_TYPE_VMFS_THIN: ctype = "vmfs"; break;
    case VMDK_TYPE_STREAM_OPTIMIZED: ctype = "streamOptimized"; break;
    case VMDK_TYPE_VMFS_SPARSE:
        /* As ESX: one COWD extent "name-delta.vmdk", grain 1 sector unless
         * asked otherwise. */
        ctype = "vmfsSparse";
        grain = p->grain_sectors ? p->grain_sectors : 1;
        if (grain > 2048)
            return vd_err_set(VD_E_INVAL, "%s: vmfsSparse grain size %u sectors is larger "
                              "than 2048", path, grain);
        if (sectors > UINT32_MAX)
            return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " bytes is too large for vmfsSparse "
                              "(limit about 2 TiB)", path, p->capacity);
        break;
    default:
        return vd_err_set(VD_E_INVAL, "%s: unknown disk type %d", path, (int)p->type);
    }
    if (p->type == VMDK_TYPE_MONOLITHIC_SPARSE && sectors + (sectors >> 7) + 4096 > UINT32_MAX)
        return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " bytes is too large for monolithicSparse "
                          "(limit about 2 TiB); use twoGbMaxExtentSparse", path, p->capacity);

    struct descriptor d;
    int rc = desc_init_new(&d, vd_random_cid(), parent_cid, ctype, parent_hint);
    if (rc < 0)
        return rc;
    struct created *c = calloc(1, sizeof *c);
    char *stem = vd_path_stem(path);
    if (!c || !stem) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    const char *stem_base = vd_path_base(stem);
    char *dir = vd_path_dir(path);
    if (!dir) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }

    if (p->type == VMDK_TYPE_STREAM_OPTIMIZED) {
        /* An empty stream: the descriptor, then no grains. */
        struct desc_extent se = { .access = DESC_RW, .sectors = sectors, .type = "SPARSE",
                                  .file = (char *)vd_path_base(path) };
        struct vmdk_stream *w;
        char *text = NULL;
        size_t tlen;
        if ((rc = desc_add_extent(&d, &se)) < 0 ||
            (rc = add_ddb(&d, sectors * 512, adapter, hw, 0)) < 0)
            goto out_dir;
        if (!(text = desc_format(&d, &tlen))) {
            rc = -VD_E_NOMEM;
            goto out_dir;
        }
        rc = vmdk_stream_create(path, text, tlen, sectors * 512, &w);
        free(text);
        if (rc == 0)
            rc = vmdk_stream_finish(w);
        goto out_dir;
    }
    int sparse = p->type == VMDK_TYPE_MONOLITHIC_SPARSE || p->type == VMDK_TYPE_SPLIT_SPARSE;
    int split = p->type == VMDK_TYPE_SPLIT_SPARSE || p->type == VMDK_TYPE_SPLIT_FLAT;
    int cowd = p->type == VMDK_TYPE_VMFS_SPARSE;
    char letter = p->type == VMDK_TYPE_SPLIT_SPARSE ? 's' : p->type == VMDK_TYPE_SPLIT_FLAT ? 'f'
                : cowd ? 'D' : 'F';
    uint64_t per = split ? split_sectors : sectors;
    int pieces = (int)((sectors + per - 1) / per);
    if (pieces > MAX_FILES) {
        rc = vd_err_set(VD_E_INVAL, "%s: split size gives too many extents", path);
        goto out_dir;
    }
    /* Extent lines first (the descriptor is complete before any file). */
    for (int i = 0; i < (p->type == VMDK_TYPE_MONOLITHIC_SPARSE ? 1 : pieces); i++) {
        uint64_t n = i == pieces - 1 ? sectors - (uint64_t)i * per : per;
        char *name = p->type == VMDK_TYPE_MONOLITHIC_SPARSE ? vd_strdup(vd_path_base(path))
                                                             : piece_name(stem_base, letter, i + 1);
        if (!name) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out_dir;
        }
        int vmfs = p->type == VMDK_TYPE_VMFS_FLAT || p->type == VMDK_TYPE_VMFS_THIN;
        struct desc_extent e = {
            .access = DESC_RW, .sectors = n,
            .type = sparse ? "SPARSE" : vmfs ? "VMFS" : cowd ? "VMFSSPARSE" : "FLAT",
            .file = name, .offset = 0, .has_offset = !sparse && !vmfs && !cowd,
        };
        rc = desc_add_extent(&d, &e);
        free(name);
        if (rc < 0)
            goto out_dir;
    }
    if ((rc = add_ddb(&d, sectors * 512, adapter, hw, p->type == VMDK_TYPE_VMFS_THIN)) < 0)
        goto out_dir;

    if (p->type == VMDK_TYPE_MONOLITHIC_SPARSE) {
        rc = make_sparse(c, path, sectors, grain, &d);
        goto out_dir;
    }
    /* Separate descriptor: refuse early if it exists, then data files,
     * then the descriptor last so a half-made disk never looks complete. */
    if (access(path, F_OK) == 0) {
        rc = vd_err_set(VD_E_EXISTS, "%s: file already exists", path);
        goto out_dir;
    }
    for (size_t i = 0; i < desc_num_extents(&d); i++) {
        const struct desc_extent *e = desc_extent(&d, i);
        char *fp = vd_path_join(dir, e->file);
        if (!fp) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out_dir;
        }
        if (sparse)
            rc = make_sparse(c, fp, e->sectors, grain, NULL);
        else if (cowd)
            rc = make_cowd(c, fp, e->sectors, grain);
        else
            rc = make_flat(c, fp, e->sectors * 512, p->type != VMDK_TYPE_VMFS_THIN);
        free(fp);
        if (rc < 0)
            goto out_dir;
    }
    rc = write_desc_file(c, path, &d);
out_dir:
    free(dir);
out:
    if (c)
        created_finish(c, rc < 0);
    free(c);
    free(stem);
    desc_free(&d);
    return rc;
}

int vmdk_create(const char *path, const struct vmdk_create_params *p)
{
    vd_err_clear();
    if (!p)
        return vd_err_set(VD_E_INVAL, "no create parameters");
    return create_with(path, p, 0xffffffffu, NULL);
}

/* The parent hint as VMware writes it: the bare name when both files share
 * a directory, else an absolute path. */
char *vmdk_parent_hint_for(const char *child, const char *parent)
{
    char *cd = vd_path_dir(child), *pd = vd_path_dir(parent);
    char *hint = NULL;
    if (cd && pd) {
        char *rc_ = realpath(cd, NULL), *rp = realpath(pd, NULL);
        if (rc_ && rp && strcmp(rc_, rp) == 0)
            hint = vd_strdup(vd_path_base(parent));
        else if (rp)
            hint = vd_path_join(rp, vd_path_base(parent));
        free(rc_);
        free(rp);
    }
    free(cd);
    free(pd);
    return hint;
}

/* The hint a caller chose must lead from the child's directory to the
 * parent's file, or the chain would not open. */
static int check_hint(const char *child_path, const char *hint, const char *parent_path)
{
    if (!*hint)
        return vd_err_set(VD_E_INVAL, "%s: empty parent hint", child_path);
    char *dir = vd_path_dir(child_path);
    char *via = dir ? vd_path_join(dir, hint) : NULL;
    char *a = via ? realpath(via, NULL) : NULL, *b = realpath(parent_path, NULL);
    int same = a && b && strcmp(a, b) == 0;
    free(dir);
    free(via);
    free(a);
    free(b);
    if (!same)
        return vd_err_set(VD_E_INVAL, "%s: parent hint %s does not lead to %s", child_path,
                          hint, parent_path);
    return 0;
}

/* Links in parent's whole chain: vmdk_num_links, or, when parent was
 * opened as a single link and its bottom link names a parent of its own,
 * counted by opening the rest (read-only, no locks).  VMDK_MAX_LINKS + 1
 * when the chain is already too long to open; -1 when it cannot be told. */
static int chain_links(vmdk_disk *parent)
{
    int n = vmdk_num_links(parent);
    const struct link *bottom = vmdk_disk_link(parent, n - 1);
    if (!bottom || !desc_get(&bottom->desc, "parentFileNameHint"))
        return n;
    vmdk_disk *rest;
    int rc = vmdk_open(bottom->path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_NOCID,
                       &rest);
    if (rc < 0) {
        vd_err_clear();
        return rc == -VD_E_PARENT_LOOP ? VMDK_MAX_LINKS + 1 : -1;
    }
    n += vmdk_num_links(rest) - 1;
    vmdk_close(rest);
    return n;
}

static int child_of(vmdk_disk *parent, const char *child_path, enum vmdk_type type,
                    const char *given_hint)
{
    vd_err_clear();
    if (!parent || !child_path)
        return vd_err_set(VD_E_INVAL, "child path and parent disk are required");
    if (type != VMDK_TYPE_MONOLITHIC_SPARSE && type != VMDK_TYPE_SPLIT_SPARSE)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: child disks must be monolithicSparse or "
                          "twoGbMaxExtentSparse", child_path);
    struct vmdk_link_info li;
    int rc = vmdk_link_info(parent, 0, &li);
    if (rc < 0)
        return rc;
    const struct link *pl = vmdk_disk_link(parent, 0);
    if (pl && pl->remote)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: the parent is read through a read-only "
                          "transport (%s); a local child cannot name it", li.path,
                          pl->fs->ops->name);
    struct vmdk_create_params p = {
        .type = type,
        .capacity = li.capacity,
        .adapter = vmdk_adapter_type(parent),
        .hw_version = vmdk_hw_version(parent),
    };
    if (p.adapter == VMDK_ADAPTER_UNKNOWN)
        p.adapter = VMDK_ADAPTER_LSILOGIC;
    if ((rc = vd_check_desc_name(child_path, vd_path_base(child_path), NULL)) < 0 ||
        (given_hint && (rc = vd_check_desc_name(child_path, given_hint, "parent hint")) < 0))
        return rc;
    /* A child of a chain that already has the most links a disk can have
     * could never be opened. */
    int links = chain_links(parent);
    if (links >= VMDK_MAX_LINKS)
        return vd_err_set(VD_E_PARENT_LOOP, "%s: the chain of %s already has %s%d links, the "
                          "most a disk can have; a child of it could never be opened",
                          child_path, li.path, links > VMDK_MAX_LINKS ? "more than " : "",
                          VMDK_MAX_LINKS);
    if (given_hint && (rc = check_hint(child_path, given_hint, li.path)) < 0)
        return rc;
    char *hint = given_hint ? vd_strdup(given_hint) : vmdk_parent_hint_for(child_path, li.path);
    if (!hint)
        return vd_err_set(VD_E_NOTFOUND, "%s: cannot resolve parent path", li.path);
    rc = create_with(child_path, &p, li.cid, hint);
    free(hint);
    return rc;
}

int vmdk_create_child_of(vmdk_disk *parent, const char *child_path, enum vmdk_type type)
{
    return child_of(parent, child_path, type, NULL);
}

int vmdk_create_child(const char *child_path, const char *parent_path, enum vmdk_type type)
{
    return vmdk_create_child_hint(child_path, parent_path, type, NULL);
}

int vmdk_create_child_hint(const char *child_path, const char *parent_path,
                           enum vmdk_type type, const char *hint)
{
    vd_err_clear();
    if (!child_path || !parent_path)
        return vd_err_set(VD_E_INVAL, "child and parent paths are required");
    vmdk_disk *parent;
    int rc = vmdk_open(parent_path, VMDK_OPEN_RDONLY, &parent);
    if (rc < 0)
        return rc;
    rc = child_of(parent, child_path, type, hint);
    vmdk_close(parent);
    return rc;
}

int vmdk_stream_descriptor(const char *name, const struct vmdk_create_params *p, char **text,
                           size_t *len)
{
    uint64_t sectors = (p->capacity + 511) / 512;
    enum vmdk_adapter adapter = p->adapter ? p->adapter : VMDK_ADAPTER_LSILOGIC;
    struct descriptor d;
    int rc = vd_check_desc_name(name, name, NULL);
    if (rc < 0)
        return rc;
    rc = desc_init_new(&d, vd_random_cid(), 0xffffffffu, "streamOptimized", NULL);
    if (rc < 0)
        return rc;
    struct desc_extent se = { .access = DESC_RW, .sectors = sectors, .type = "SPARSE",
                              .file = (char *)name };
    if ((rc = desc_add_extent(&d, &se)) == 0 &&
        (rc = add_ddb(&d, sectors * 512, adapter, p->hw_version ? p->hw_version : 4, 0)) == 0 &&
        !(*text = desc_format(&d, len)))
        rc = -VD_E_NOMEM;
    desc_free(&d);
    return rc;
}
