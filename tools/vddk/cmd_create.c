/* cmd_create.c - `vddk create` and `vddk snapshot`: make new disks with
 * VixDiskLib_Create and VixDiskLib_CreateChild. */
#include "vddk.h"

#include <string.h>

static int run_create(int argc, char **argv);
static int run_snapshot(int argc, char **argv);

const struct vddk_cmd vddk_cmd_create = {
    .name = "create",
    .summary = "create a new empty disk",
    .help =
        "usage: vddk create [-t TYPE] [-a ADAPTER] -s SIZE [--hwversion N] DISK\n"
        "\n"
        "Create a new disk of SIZE bytes whose descriptor is DISK.  Fails if DISK\n"
        "or any of its extent files already exists.\n"
        "\n"
        "Options:\n"
        "  -s, --size SIZE      capacity: bytes (decimal or 0x hex), or a number\n"
        "                       with a K, M, G or T suffix (powers of 1024);\n"
        "                       rounded up to a multiple of 512 bytes\n"
        "  -t, --type TYPE      disk type (default monolithicSparse):\n"
        "                         monolithicSparse      (alias: sparse)\n"
        "                         monolithicFlat        (alias: flat)\n"
        "                         twoGbMaxExtentSparse  (alias: split-sparse)\n"
        "                         twoGbMaxExtentFlat    (alias: split-flat)\n"
        "                         vmfs\n"
        "                         vmfsThin              (alias: thin)\n"
        "                         vmfsSparse\n"
        "                         streamOptimized       (alias: stream; an empty\n"
        "                                               stream, read-only)\n"
        "  -a, --adapter NAME   ide, buslogic or lsilogic (default lsilogic)\n"
        "      --hwversion N    virtual hardware version (default 4)\n"
        "  -h, --help           show this help\n",
    .run = run_create,
};

const struct vddk_cmd vddk_cmd_snapshot = {
    .name = "snapshot",
    .summary = "create a child (delta) disk on top of a parent",
    .help =
        "usage: vddk snapshot [-t TYPE] PARENT CHILD\n"
        "\n"
        "Create CHILD, a new sparse delta disk whose parent is PARENT.  Reads of\n"
        "CHILD fall through to PARENT where CHILD holds no data; writes to CHILD\n"
        "leave PARENT unchanged.  PARENT is opened read-only and not modified.\n"
        "\n"
        "Options:\n"
        "  -t, --type TYPE  monolithicSparse (alias: sparse, the default) or\n"
        "                   twoGbMaxExtentSparse (alias: split-sparse)\n"
        "  -h, --help       show this help\n",
    .run = run_snapshot,
};

static int run_create(int argc, char **argv)
{
    enum { OPT_TYPE = 1, OPT_ADAPTER, OPT_SIZE, OPT_HW };
    static const struct vddk_opt opts[] = {
        { 't', "type", 1, OPT_TYPE },
        { 'a', "adapter", 1, OPT_ADAPTER },
        { 's', "size", 1, OPT_SIZE },
        { 0, "hwversion", 1, OPT_HW },
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_create;
    VixDiskLibCreateParams p;
    struct vddk_optstate st;
    int have_size = 0, o, ret = VDDK_EXIT_OK;
    uint64_t v, size = 0;

    memset(&p, 0, sizeof p);
    p.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    p.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    p.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while (ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR:
            ret = VDDK_EXIT_USAGE;
            break;
        case OPT_TYPE:
            p.diskType = vddk_parse_type(st.arg);
            if (p.diskType == VIXDISKLIB_DISK_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown disk type '%s'", st.arg);
            break;
        case OPT_ADAPTER:
            p.adapterType = vddk_parse_adapter(st.arg);
            if (p.adapterType == VIXDISKLIB_ADAPTER_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown adapter '%s' (use ide, buslogic or lsilogic)",
                                       st.arg);
            break;
        case OPT_SIZE:
            if (vddk_parse_size(st.arg, &size) < 0 || size > UINT64_MAX - 511)
                ret = vddk_usage_error(cmd, "invalid size '%s'", st.arg);
            else if (size == 0)
                ret = vddk_usage_error(cmd, "size must be greater than zero");
            else
                have_size = 1;
            break;
        case OPT_HW:
            if (vddk_parse_uint(st.arg, 255, &v) < 0 || v == 0)
                ret = vddk_usage_error(cmd, "invalid hardware version '%s' (1 to 255)", st.arg);
            else
                p.hwVersion = (uint16)v;
            break;
        }
    }
    if (ret == VDDK_EXIT_OK && !have_size)
        ret = vddk_usage_error(cmd, "missing -s SIZE");
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 1, 1, "DISK");
    const char *path = ret == VDDK_EXIT_OK ? st.operands[0] : NULL;
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;
    p.capacity = (size + VIXDISKLIB_SECTOR_SIZE - 1) / VIXDISKLIB_SECTOR_SIZE;

    VixDiskLibConnection c = vddk_conn();
    if (!c)
        return VDDK_EXIT_FAIL;
    vddk_warn_clear();
    VixError e = VixDiskLib_Create(c, path, &p, NULL, NULL);
    if (e != VIX_OK)
        return vddk_vix_error(e, path);

    /* Report what was made as the library now reads it back. */
    struct vddk_h d;
    if (vddk_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    uint64_t cap = d.capacity;
    if (vddk_close(&d) != 0)
        return VDDK_EXIT_FAIL;
    char h[VDDK_HUMAN_LEN];
    printf("created %s: %s, %llu bytes (%s)\n", path, vddk_type_name(p.diskType),
           (unsigned long long)cap, vddk_human(cap, h));
    return VDDK_EXIT_OK;
}

static int run_snapshot(int argc, char **argv)
{
    enum { OPT_TYPE = 1 };
    static const struct vddk_opt opts[] = {
        { 't', "type", 1, OPT_TYPE },
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_snapshot;
    struct vddk_optstate st;
    VixDiskLibDiskType type = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    int o, ret = VDDK_EXIT_OK;

    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while (ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR:
            ret = VDDK_EXIT_USAGE;
            break;
        case OPT_TYPE:
            type = vddk_parse_type(st.arg);
            if (type != VIXDISKLIB_DISK_MONOLITHIC_SPARSE && type != VIXDISKLIB_DISK_SPLIT_SPARSE)
                ret = vddk_usage_error(cmd, "child type must be monolithicSparse or "
                                            "twoGbMaxExtentSparse, not '%s'", st.arg);
            break;
        }
    }
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 2, 2, "PARENT and CHILD");
    const char *parent = ret == VDDK_EXIT_OK ? st.operands[0] : NULL;
    const char *child = ret == VDDK_EXIT_OK ? st.operands[1] : NULL;
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    struct vddk_h d;
    if (vddk_open(parent, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    vddk_warn_clear();
    VixError e = VixDiskLib_CreateChild(d.h, child, type, NULL, NULL);
    if (e != VIX_OK)
        ret = vddk_vix_error(e, child);
    if (vddk_close(&d) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    if (ret == VDDK_EXIT_OK)
        printf("created %s: %s child of %s\n", child, vddk_type_name(type), parent);
    return ret;
}
