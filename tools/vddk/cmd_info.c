/* cmd_info.c - `vddk info`: describe a disk and every link of its chain,
 * as far as the public API tells: GetInfo of the chain, ddb keys, and each
 * link opened on its own (SINGLE_LINK) for its parent hint, content ID and
 * allocation. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_info(int argc, char **argv);

const struct vddk_cmd vddk_cmd_info = {
    .name = "info",
    .summary = "show capacity, geometry, adapter, uuid and the chain of a disk",
    .help =
        "usage: vddk info [--json] DISK\n"
        "\n"
        "Show what libvixDiskLib reports about DISK: capacity, sector sizes,\n"
        "physical and BIOS geometry, adapter, virtual hardware version\n"
        "(ddb.virtualHWVersion), uuid, the data allocated in the whole chain, and\n"
        "each link of the chain from DISK down to its base disk: the link's\n"
        "path, parent file name hint, content ID, capacity and the data it\n"
        "holds itself.  Each link is opened on its own (SINGLE_LINK) to learn\n"
        "this; the path of a parent is its hint, relative to the directory of\n"
        "the child.  For local disks each link also shows its createType, its\n"
        "content ID and its parent's, and the space its files take\n"
        "(vddk_disk_get_link_info); remote disks show the CID recorded at the\n"
        "end of ddb.longContentID.  Allocation is counted in 64 KiB chunks that\n"
        "hold data.  The disk is opened read-only.\n"
        "\n"
        "Options:\n"
        "  --json      print one JSON object instead of text (see vddk(1))\n"
        "  -h, --help  show this help\n",
    .run = run_info,
};

struct link {
    char *path;
    char *hint;            /* parentFileNameHint, or NULL */
    char *cid;             /* 8 hex digits, or NULL */
    uint64_t capacity, allocated;
    vddk_link_info *li;    /* createType, CIDs, file space (local disks) */
};

struct info {
    const char *path;
    uint64_t capacity, allocated;
    VixDiskLibInfo *gi;
    const char *transport; /* "file", "nbd", "nbdssl", "https" */
    char *hw;              /* ddb.virtualHWVersion or NULL */
    int nlinks;
    struct link *links;
};

/* Bytes of [0, capacity) in chunks that hold data. */
static int allocated(struct vddk_h *d, uint64_t *out)
{
    struct vddk_runs r;
    uint64_t off, len, total = 0;
    int data, rc;
    VixError e = VIX_OK;
    vddk_runs_init(&r, d->h, d->capacity, 0, d->capacity);
    while ((rc = vddk_runs_next(&r, &off, &len, &data, &e)) > 0)
        if (data)
            total += len;
    vddk_runs_free(&r);
    if (rc < 0)
        return vddk_vix_error(e, d->path);
    *out = total;
    return 0;
}

/* The content ID recorded at the end of ddb.longContentID. */
static int read_cid(struct vddk_h *d, char **out)
{
    char *lc;
    *out = NULL;
    int rc = vddk_meta_read(d->h, d->path, "longContentID", &lc);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    size_t n = strlen(lc);
    if (n >= 8 && strspn(lc + n - 8, "0123456789abcdefABCDEF") == 8)
        *out = strdup(lc + n - 8);
    free(lc);
    return 0;
}

/* parent's path: hint as is when absolute or when child has no directory,
 * else in child's directory. */
static char *parent_path(const char *child, const char *hint)
{
    const char *slash = strrchr(child, '/');
    if (hint[0] == '/' || !slash)
        return strdup(hint);
    size_t dl = (size_t)(slash - child) + 1;
    char *p = malloc(dl + strlen(hint) + 1);
    if (p) {
        memcpy(p, child, dl);
        strcpy(p + dl, hint);
    }
    return p;
}

static int collect_links(struct info *in)
{
    in->links = calloc((size_t)(in->nlinks > 0 ? in->nlinks : 1), sizeof *in->links);
    if (!in->links)
        return vddk_fail("out of memory");
    char *cur = strdup(in->path);
    if (!cur)
        return vddk_fail("out of memory");
    for (int i = 0; i < in->nlinks; i++) {
        struct link *l = &in->links[i];
        l->path = cur;
        struct vddk_h d;
        if (vddk_open(cur, VIXDISKLIB_FLAG_OPEN_READ_ONLY | VIXDISKLIB_FLAG_OPEN_SINGLE_LINK,
                      &d) != 0)
            return VDDK_EXIT_FAIL;
        l->capacity = d.capacity;
        int ret = allocated(&d, &l->allocated);
        /* The link's own descriptor facts; its CID from there, else from
         * the tail of ddb.longContentID. */
        if (ret == 0 && vddk_disk_get_link_info(d.h, 0, &l->li) == VIX_OK) {
            char buf[16];
            snprintf(buf, sizeof buf, "%08x", l->li->cid);
            if (!(l->cid = strdup(buf)))
                ret = vddk_fail("out of memory");
        } else if (ret == 0) {
            ret = read_cid(&d, &l->cid);
        }
        if (ret == 0 && d.info->parentFileNameHint && d.info->parentFileNameHint[0] &&
            !(l->hint = strdup(d.info->parentFileNameHint)))
            ret = vddk_fail("out of memory");
        if (vddk_close(&d) != 0 && ret == 0)
            ret = VDDK_EXIT_FAIL;
        if (ret != 0)
            return ret;
        if (i + 1 < in->nlinks) {
            if (!l->hint)
                return vddk_fail("%s: the chain has %d links but link %d (%s) has no parent",
                                 in->path, in->nlinks, i, cur);
            if (!(cur = parent_path(cur, l->hint)))
                return vddk_fail("out of memory");
        }
    }
    return 0;
}

static void geo_text(const char *label, const VixDiskLibGeometry *g)
{
    printf("%-15s%u cylinders, %u heads, %u sectors\n", label, g->cylinders, g->heads,
           g->sectors);
}

static void print_text(const struct info *in)
{
    char h[VDDK_HUMAN_LEN];
    const VixDiskLibInfo *gi = in->gi;
    printf("disk:          %s\n", in->path);
    if (in->transport && strcmp(in->transport, "file") != 0)
        printf("transport:     %s\n", in->transport);
    if (in->links[0].li)
        printf("type:          %s\n", in->links[0].li->createType);
    printf("capacity:      %llu bytes (%s)\n", (unsigned long long)in->capacity,
           vddk_human(in->capacity, h));
    printf("sector size:   %u bytes logical, %u physical\n",
           gi->logicalSectorSize ? gi->logicalSectorSize : 512,
           gi->physicalSectorSize ? gi->physicalSectorSize : 512);
    geo_text("geometry:", &gi->physGeo);
    geo_text("BIOS geometry:", &gi->biosGeo);
    printf("adapter:       %s\n", vddk_adapter_name(gi->adapterType));
    printf("hw version:    %s\n", in->hw ? in->hw : "unknown");
    printf("uuid:          %s\n", gi->uuid && gi->uuid[0] ? gi->uuid : "(none)");
    printf("allocated:     %llu bytes (%s) in the chain\n", (unsigned long long)in->allocated,
           vddk_human(in->allocated, h));
    printf("chain:         %d link%s\n", in->nlinks, in->nlinks == 1 ? "" : "s");
    for (int i = 0; i < in->nlinks; i++) {
        const struct link *l = &in->links[i];
        printf("\nlink %d:        %s\n", i, l->path);
        if (l->li) {
            printf("  type:        %s\n", l->li->createType);
            printf("  CID:         %s (parent CID %08x)\n", l->cid, l->li->parentCid);
            printf("  file space:  %llu bytes (%s)\n",
                   (unsigned long long)l->li->allocatedBytes,
                   vddk_human(l->li->allocatedBytes, h));
            if (l->li->nasPlugin) {
                char h2[VDDK_HUMAN_LEN];
                printf("  storage:     %llu bytes (%s) allocated, %llu (%s) unique, "
                       "of %llu (NAS plugin %s)\n",
                       (unsigned long long)l->li->nasAllocatedBytes,
                       vddk_human(l->li->nasAllocatedBytes, h),
                       (unsigned long long)l->li->nasUniqueBytes,
                       vddk_human(l->li->nasUniqueBytes, h2),
                       (unsigned long long)l->li->nasTotalBytes, l->li->nasPlugin);
            }
        } else {
            printf("  CID:         %s\n", l->cid ? l->cid : "unknown");
        }
        printf("  parent:      %s\n", l->hint ? l->hint : "(none: base disk)");
        printf("  capacity:    %llu bytes (%s)\n", (unsigned long long)l->capacity,
               vddk_human(l->capacity, h));
        printf("  allocated:   %llu bytes (%s)\n", (unsigned long long)l->allocated,
               vddk_human(l->allocated, h));
    }
}

static void geo_json(const char *key, const VixDiskLibGeometry *g)
{
    printf(",\n  \"%s\": {\"cylinders\": %u, \"heads\": %u, \"sectors\": %u}", key,
           g->cylinders, g->heads, g->sectors);
}

static void print_json(const struct info *in)
{
    char h[VDDK_HUMAN_LEN];
    const VixDiskLibInfo *gi = in->gi;
    fputs("{\n  \"path\": ", stdout);
    vddk_json_str(stdout, in->path);
    fputs(",\n  \"transport\": ", stdout);
    vddk_json_str(stdout, in->transport);
    fputs(",\n  \"type\": ", stdout);
    vddk_json_str(stdout, in->links[0].li ? in->links[0].li->createType : NULL);
    printf(",\n  \"capacity\": %llu", (unsigned long long)in->capacity);
    fputs(",\n  \"capacity_human\": ", stdout);
    vddk_json_str(stdout, vddk_human(in->capacity, h));
    printf(",\n  \"logical_sector_size\": %u,\n  \"physical_sector_size\": %u",
           gi->logicalSectorSize ? gi->logicalSectorSize : 512,
           gi->physicalSectorSize ? gi->physicalSectorSize : 512);
    geo_json("geometry", &gi->physGeo);
    geo_json("bios_geometry", &gi->biosGeo);
    fputs(",\n  \"adapter\": ", stdout);
    vddk_json_str(stdout, vddk_adapter_name(gi->adapterType));
    char *end = NULL;
    long hw = in->hw ? strtol(in->hw, &end, 10) : 0;
    if (in->hw && end != in->hw && *end == '\0' && hw > 0)
        printf(",\n  \"hw_version\": %ld", hw);
    else
        fputs(",\n  \"hw_version\": null", stdout);
    fputs(",\n  \"uuid\": ", stdout);
    vddk_json_str(stdout, gi->uuid && gi->uuid[0] ? gi->uuid : NULL);
    printf(",\n  \"allocated_bytes\": %llu", (unsigned long long)in->allocated);
    printf(",\n  \"num_links\": %d", in->nlinks);
    fputs(",\n  \"links\": [", stdout);
    for (int i = 0; i < in->nlinks; i++) {
        const struct link *l = &in->links[i];
        fputs(i ? ",\n    {\"path\": " : "\n    {\"path\": ", stdout);
        vddk_json_str(stdout, l->path);
        fputs(", \"parent_hint\": ", stdout);
        vddk_json_str(stdout, l->hint);
        fputs(", \"cid\": ", stdout);
        vddk_json_str(stdout, l->cid);
        fputs(", \"type\": ", stdout);
        vddk_json_str(stdout, l->li ? l->li->createType : NULL);
        if (l->li)
            printf(", \"parent_cid\": \"%08x\", \"file_bytes\": %llu", l->li->parentCid,
                   (unsigned long long)l->li->allocatedBytes);
        else
            fputs(", \"parent_cid\": null, \"file_bytes\": null", stdout);
        if (l->li && l->li->nasPlugin) {
            fputs(", \"nas\": {\"plugin\": ", stdout);
            vddk_json_str(stdout, l->li->nasPlugin);
            printf(", \"total_bytes\": %llu, \"allocated_bytes\": %llu, \"unique_bytes\": %llu}",
                   (unsigned long long)l->li->nasTotalBytes,
                   (unsigned long long)l->li->nasAllocatedBytes,
                   (unsigned long long)l->li->nasUniqueBytes);
        } else {
            fputs(", \"nas\": null", stdout);
        }
        printf(", \"capacity\": %llu, \"allocated_bytes\": %llu}",
               (unsigned long long)l->capacity, (unsigned long long)l->allocated);
    }
    fputs(in->nlinks ? "\n  ]\n}\n" : "]\n}\n", stdout);
}

static int run_info(int argc, char **argv)
{
    enum { OPT_JSON = 1 };
    static const struct vddk_opt opts[] = {
        { 0, "json", 0, OPT_JSON },
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_info;
    struct vddk_optstate st;
    int json = 0, o, ret = VDDK_EXIT_OK;

    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while (ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        if (o == VDDK_OPT_HELP) {
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        }
        if (o == VDDK_OPT_ERROR)
            ret = VDDK_EXIT_USAGE;
        else if (o == OPT_JSON)
            json = 1;
    }
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 1, 1, "DISK");
    struct info in;
    memset(&in, 0, sizeof in);
    if (ret == VDDK_EXIT_OK)
        in.path = st.operands[0];
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    struct vddk_h d;
    if (vddk_open(in.path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    in.capacity = d.capacity;
    in.gi = d.info;
    in.transport = VixDiskLib_GetTransportMode(d.h);
    in.nlinks = d.info->numLinks > 0 ? d.info->numLinks : 1;
    ret = vddk_meta_read(d.h, in.path, "virtualHWVersion", &in.hw);
    if (ret == 1)
        ret = 0;
    if (ret == 0)
        ret = allocated(&d, &in.allocated);
    /* The chain handle stays open (read-only: shared locks) while each
     * link is opened on its own. */
    if (ret == 0)
        ret = collect_links(&in);
    if (ret == 0) {
        if (json)
            print_json(&in);
        else
            print_text(&in);
    }
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (in.links)
        for (int i = 0; i < in.nlinks; i++) {
            free(in.links[i].path);
            free(in.links[i].hint);
            free(in.links[i].cid);
            vddk_disk_free_link_info(in.links[i].li);
        }
    free(in.links);
    free(in.hw);
    return ret;
}
