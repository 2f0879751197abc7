/* cmd_info.c - `vddk info`: describe a disk and every link of its chain. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_info(int argc, char **argv);

const struct vddk_cmd vddk_cmd_info = {
    .name = "info",
    .summary = "show type, capacity, geometry, chain and extents of a disk",
    .help =
        "usage: vddk info [--json] DISK\n"
        "\n"
        "Show what DISK is: its type, capacity, geometry, adapter, hardware\n"
        "version and uuid, then each link of its chain from DISK down to the\n"
        "base disk with the link's path, CID, parentCID, createType, allocated\n"
        "size and extents.  The type is the createType text, followed by the\n"
        "type it is taken as when that differs: \"vmfs (vmfsThin)\" for a vmfs\n"
        "disk with ddb.thinProvisioned = \"1\".  The disk is opened read-only.\n"
        "\n"
        "Options:\n"
        "  --json      print one JSON object instead of text\n"
        "  -h, --help  show this help\n",
    .run = run_info,
};

struct info {
    const char *path;
    uint64_t capacity;
    int have_geometry;
    struct vmdk_geometry geo;
    char geo_error[256];
    enum vmdk_adapter adapter;
    int hw_version;
    char *uuid; /* NULL when the disk has no ddb.uuid */
    int nlinks;
};

static const char *adapter_text(enum vmdk_adapter a)
{
    const char *n = a == VMDK_ADAPTER_UNKNOWN ? NULL : vmdk_adapter_name(a);
    return n != NULL ? n : "unknown";
}

static const char *null_or(const char *s, const char *dflt)
{
    return s != NULL ? s : dflt;
}

/* "vmfs", or "vmfs (vmfsThin)" when the engine's type (which also reads
 * ddb.thinProvisioned) has a name other than the createType text. */
static const char *type_text(const struct vmdk_link_info *li, char *buf, size_t n)
{
    const char *ct = li->create_type;
    const char *tn = li->type != VMDK_TYPE_UNKNOWN ? vmdk_type_name(li->type) : NULL;
    if (ct == NULL)
        return null_or(tn, "unknown");
    if (tn == NULL || strcmp(tn, ct) == 0)
        return ct;
    snprintf(buf, n, "%s (%s)", ct, tn);
    return buf;
}

/* Kinds of extent that map a byte range of a plain file. */
static int has_file_offset(const struct vmdk_extent_info *e)
{
    return e->kind != NULL &&
           (strcmp(e->kind, "FLAT") == 0 || strcmp(e->kind, "VMFS") == 0 ||
            strcmp(e->kind, "VMFSRDM") == 0 || strcmp(e->kind, "VMFSRAW") == 0);
}

static int print_text(vmdk_disk *d, const struct info *in)
{
    char h[VDDK_HUMAN_LEN];
    struct vmdk_link_info top;
    int rc = vmdk_link_info(d, 0, &top);
    if (rc < 0)
        return vddk_engine_error(rc, in->path);

    printf("disk:         %s\n", in->path);
    char tb[128];
    printf("type:         %s\n", type_text(&top, tb, sizeof tb));
    printf("capacity:     %llu bytes (%s)\n", (unsigned long long)in->capacity,
           vddk_human(in->capacity, h));
    if (in->have_geometry)
        printf("geometry:     %u cylinders, %u heads, %u sectors\n",
               in->geo.cylinders, in->geo.heads, in->geo.sectors);
    else if (in->geo_error[0] != '\0')
        printf("geometry:     unknown (%s)\n", in->geo_error);
    else
        printf("geometry:     unknown\n");
    printf("adapter:      %s\n", adapter_text(in->adapter));
    if (in->hw_version > 0)
        printf("hw version:   %d\n", in->hw_version);
    else
        printf("hw version:   unknown\n");
    printf("uuid:         %s\n", in->uuid != NULL ? in->uuid : "(none)");
    printf("chain:        %d link%s\n", in->nlinks, in->nlinks == 1 ? "" : "s");

    for (int l = 0; l < in->nlinks; l++) {
        struct vmdk_link_info li;
        rc = vmdk_link_info(d, l, &li);
        if (rc < 0)
            return vddk_engine_error(rc, in->path);
        printf("\nlink %d:       %s\n", l, li.path);
        printf("  createType: %s\n", type_text(&li, tb, sizeof tb));
        printf("  CID:        %08x\n", li.cid);
        if (li.parent_cid == 0xffffffffu)
            printf("  parentCID:  ffffffff (no parent)\n");
        else
            printf("  parentCID:  %08x\n", li.parent_cid);
        if (li.parent_hint != NULL)
            printf("  parent:     %s\n", li.parent_hint);
        printf("  capacity:   %llu bytes (%s)\n", (unsigned long long)li.capacity,
               vddk_human(li.capacity, h));
        if (li.grain_size != 0)
            printf("  grain size: %s\n", vddk_human(li.grain_size, h));
        printf("  allocated:  %llu bytes (%s)\n", (unsigned long long)li.allocated_bytes,
               vddk_human(li.allocated_bytes, h));
        for (int e = 0; e < li.num_extents; e++) {
            struct vmdk_extent_info ei;
            rc = vmdk_extent_info(d, l, e, &ei);
            if (rc < 0)
                return vddk_engine_error(rc, in->path);
            printf("  extent %d:   %s %s %s, bytes %llu+%llu (%s)", e,
                   null_or(ei.access, "?"), null_or(ei.kind, "?"),
                   null_or(ei.path, "(none)"), (unsigned long long)ei.start,
                   (unsigned long long)ei.length, vddk_human(ei.length, h));
            if (has_file_offset(&ei))
                printf(", file offset %llu", (unsigned long long)ei.file_offset);
            putchar('\n');
        }
    }
    return VDDK_EXIT_OK;
}

static int print_json(vmdk_disk *d, const struct info *in)
{
    char h[VDDK_HUMAN_LEN];
    struct vmdk_link_info top;
    int rc = vmdk_link_info(d, 0, &top);
    if (rc < 0)
        return vddk_engine_error(rc, in->path);

    /* Collect everything before printing so that a failure leaves no
     * half-written JSON on stdout. */
    struct vmdk_link_info *links = calloc((size_t)in->nlinks, sizeof *links);
    if (links == NULL)
        return vddk_fail("out of memory");
    for (int l = 0; l < in->nlinks; l++) {
        rc = vmdk_link_info(d, l, &links[l]);
        if (rc < 0) {
            free(links);
            return vddk_engine_error(rc, in->path);
        }
        for (int e = 0; e < links[l].num_extents; e++) {
            struct vmdk_extent_info ei;
            rc = vmdk_extent_info(d, l, e, &ei);
            if (rc < 0) {
                free(links);
                return vddk_engine_error(rc, in->path);
            }
        }
    }

    fputs("{\n  \"path\": ", stdout);
    vddk_json_str(stdout, in->path);
    fputs(",\n  \"type\": ", stdout);
    vddk_json_str(stdout, top.create_type);
    fputs(",\n  \"type_name\": ", stdout);
    vddk_json_str(stdout, top.type != VMDK_TYPE_UNKNOWN ? vmdk_type_name(top.type) : NULL);
    printf(",\n  \"type_id\": %d", (int)top.type);
    printf(",\n  \"capacity\": %llu", (unsigned long long)in->capacity);
    fputs(",\n  \"capacity_human\": ", stdout);
    vddk_json_str(stdout, vddk_human(in->capacity, h));
    if (in->have_geometry)
        printf(",\n  \"geometry\": {\"cylinders\": %u, \"heads\": %u, \"sectors\": %u}",
               in->geo.cylinders, in->geo.heads, in->geo.sectors);
    else
        fputs(",\n  \"geometry\": null", stdout);
    fputs(",\n  \"adapter\": ", stdout);
    vddk_json_str(stdout, adapter_text(in->adapter));
    if (in->hw_version > 0)
        printf(",\n  \"hw_version\": %d", in->hw_version);
    else
        fputs(",\n  \"hw_version\": null", stdout);
    fputs(",\n  \"uuid\": ", stdout);
    vddk_json_str(stdout, in->uuid);
    fputs(",\n  \"links\": [", stdout);
    for (int l = 0; l < in->nlinks; l++) {
        const struct vmdk_link_info *li = &links[l];
        fputs(l ? ",\n    {" : "\n    {", stdout);
        fputs("\"path\": ", stdout);
        vddk_json_str(stdout, li->path);
        fputs(", \"create_type\": ", stdout);
        vddk_json_str(stdout, li->create_type);
        fputs(", \"type_name\": ", stdout);
        vddk_json_str(stdout, li->type != VMDK_TYPE_UNKNOWN ? vmdk_type_name(li->type) : NULL);
        printf(", \"type_id\": %d, \"cid\": \"%08x\", \"parent_cid\": \"%08x\", ",
               (int)li->type, li->cid, li->parent_cid);
        fputs("\"parent_hint\": ", stdout);
        vddk_json_str(stdout, li->parent_hint);
        printf(", \"capacity\": %llu, \"grain_size\": %u, \"allocated_bytes\": %llu",
               (unsigned long long)li->capacity, li->grain_size,
               (unsigned long long)li->allocated_bytes);
        fputs(", \"extents\": [", stdout);
        for (int e = 0; e < li->num_extents; e++) {
            struct vmdk_extent_info ei;
            vmdk_extent_info(d, l, e, &ei); /* succeeded above */
            fputs(e ? ",\n      {" : "\n      {", stdout);
            fputs("\"path\": ", stdout);
            vddk_json_str(stdout, ei.path);
            fputs(", \"kind\": ", stdout);
            vddk_json_str(stdout, ei.kind);
            fputs(", \"access\": ", stdout);
            vddk_json_str(stdout, ei.access);
            printf(", \"start\": %llu, \"length\": %llu, \"file_offset\": %llu}",
                   (unsigned long long)ei.start, (unsigned long long)ei.length,
                   (unsigned long long)ei.file_offset);
        }
        fputs(li->num_extents ? "\n    ]}" : "]}", stdout);
    }
    fputs("\n  ]\n}\n", stdout);
    free(links);
    return VDDK_EXIT_OK;
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
    int json = 0, o;

    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while ((o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        if (o == VDDK_OPT_HELP) {
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        }
        if (o == VDDK_OPT_ERROR) {
            vddk_opt_free(&st);
            return VDDK_EXIT_USAGE;
        }
        if (o == OPT_JSON)
            json = 1;
    }
    if (st.noperands != 1) {
        int n = st.noperands;
        vddk_opt_free(&st);
        if (n == 0)
            return vddk_usage_error(cmd, "missing DISK");
        return vddk_usage_error(cmd, "expected one DISK, got %d arguments", n);
    }
    struct info in;
    memset(&in, 0, sizeof in);
    in.path = st.operands[0];
    vddk_opt_free(&st);

    vmdk_disk *d;
    if (vddk_open(in.path, VMDK_OPEN_RDONLY, &d) != 0)
        return VDDK_EXIT_FAIL;

    in.capacity = vmdk_capacity(d);
    in.nlinks = vmdk_num_links(d);
    vd_err_clear();
    if (vmdk_geometry(d, &in.geo) == 0)
        in.have_geometry = 1;
    else
        snprintf(in.geo_error, sizeof in.geo_error, "%s", vd_err_msg());
    in.adapter = vmdk_adapter_type(d);
    in.hw_version = vmdk_hw_version(d);

    int ret;
    vd_err_clear();
    int rc = vmdk_meta_get(d, "uuid", &in.uuid);
    if (rc == -VD_E_NOTFOUND_KEY) {
        in.uuid = NULL;
        ret = VDDK_EXIT_OK;
    } else if (rc < 0) {
        in.uuid = NULL;
        ret = vddk_engine_error(rc, in.path);
    } else {
        ret = VDDK_EXIT_OK;
    }
    if (ret == VDDK_EXIT_OK)
        ret = json ? print_json(d, &in) : print_text(d, &in);

    free(in.uuid);
    if (vddk_close(d, in.path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    return ret;
}
