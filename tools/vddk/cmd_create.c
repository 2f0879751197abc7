/* cmd_create.c - `vddk create` and `vddk snapshot`: make new disks. */
#include "vddk.h"

#include <string.h>
#include <strings.h>

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
        "leave PARENT unchanged.  PARENT is not modified.\n"
        "\n"
        "Options:\n"
        "  -t, --type TYPE  monolithicSparse (alias: sparse, the default) or\n"
        "                   twoGbMaxExtentSparse (alias: split-sparse)\n"
        "  -h, --help       show this help\n",
    .run = run_snapshot,
};

static const struct {
    const char *name, *alias;
    enum vmdk_type type;
} type_names[] = {
    { "monolithicSparse", "sparse", VMDK_TYPE_MONOLITHIC_SPARSE },
    { "monolithicFlat", "flat", VMDK_TYPE_MONOLITHIC_FLAT },
    { "twoGbMaxExtentSparse", "split-sparse", VMDK_TYPE_SPLIT_SPARSE },
    { "twoGbMaxExtentFlat", "split-flat", VMDK_TYPE_SPLIT_FLAT },
    { "vmfs", NULL, VMDK_TYPE_VMFS_FLAT },
    { "vmfsThin", "thin", VMDK_TYPE_VMFS_THIN },
};

static enum vmdk_type parse_type(const char *text)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(text, type_names[i].name) == 0 ||
            (type_names[i].alias != NULL && strcasecmp(text, type_names[i].alias) == 0))
            return type_names[i].type;
    return VMDK_TYPE_UNKNOWN;
}

static const char *type_text(enum vmdk_type t)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == t)
            return type_names[i].name;
    const char *n = vmdk_type_name(t);
    return n != NULL ? n : "unknown";
}

static const struct {
    const char *name;
    enum vmdk_adapter adapter;
} adapter_names[] = {
    { "ide", VMDK_ADAPTER_IDE },
    { "buslogic", VMDK_ADAPTER_BUSLOGIC },
    { "lsilogic", VMDK_ADAPTER_LSILOGIC },
};

static enum vmdk_adapter parse_adapter(const char *text)
{
    for (size_t i = 0; i < sizeof adapter_names / sizeof adapter_names[0]; i++)
        if (strcasecmp(text, adapter_names[i].name) == 0)
            return adapter_names[i].adapter;
    return VMDK_ADAPTER_UNKNOWN;
}

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
    struct vmdk_create_params p;
    struct vddk_optstate st;
    int have_size = 0, o, ret = VDDK_EXIT_OK;
    uint64_t v;

    memset(&p, 0, sizeof p);
    p.type = VMDK_TYPE_MONOLITHIC_SPARSE;
    p.adapter = VMDK_ADAPTER_LSILOGIC;
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
            p.type = parse_type(st.arg);
            if (p.type == VMDK_TYPE_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown disk type '%s'", st.arg);
            break;
        case OPT_ADAPTER:
            p.adapter = parse_adapter(st.arg);
            if (p.adapter == VMDK_ADAPTER_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown adapter '%s' (use ide, buslogic or lsilogic)",
                                       st.arg);
            break;
        case OPT_SIZE:
            if (vddk_parse_size(st.arg, &p.capacity) < 0)
                ret = vddk_usage_error(cmd, "invalid size '%s'", st.arg);
            else if (p.capacity == 0)
                ret = vddk_usage_error(cmd, "size must be greater than zero");
            else
                have_size = 1;
            break;
        case OPT_HW:
            if (vddk_parse_uint(st.arg, 255, &v) < 0 || v == 0)
                ret = vddk_usage_error(cmd, "invalid hardware version '%s' (1 to 255)", st.arg);
            else
                p.hw_version = (int)v;
            break;
        }
    }
    if (ret == VDDK_EXIT_OK && !have_size)
        ret = vddk_usage_error(cmd, "missing -s SIZE");
    if (ret == VDDK_EXIT_OK && st.noperands != 1) {
        if (st.noperands == 0)
            ret = vddk_usage_error(cmd, "missing DISK");
        else
            ret = vddk_usage_error(cmd, "expected one DISK, got %d arguments", st.noperands);
    }
    if (ret != VDDK_EXIT_OK) {
        vddk_opt_free(&st);
        return ret;
    }
    const char *path = st.operands[0];
    vddk_opt_free(&st);

    vd_err_clear();
    int rc = vmdk_create(path, &p);
    if (rc < 0)
        return vddk_engine_error(rc, path);

    /* Report what was made as the engine now reads it back. */
    vmdk_disk *d;
    if (vddk_open(path, VMDK_OPEN_RDONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    uint64_t cap = vmdk_capacity(d);
    if (vddk_close(d, path) != 0)
        return VDDK_EXIT_FAIL;
    char h[VDDK_HUMAN_LEN];
    printf("created %s: %s, %llu bytes (%s)\n", path, type_text(p.type),
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
    enum vmdk_type type = VMDK_TYPE_MONOLITHIC_SPARSE;
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
            type = parse_type(st.arg);
            if (type != VMDK_TYPE_MONOLITHIC_SPARSE && type != VMDK_TYPE_SPLIT_SPARSE)
                ret = vddk_usage_error(cmd, "child type must be monolithicSparse or "
                                            "twoGbMaxExtentSparse, not '%s'", st.arg);
            break;
        }
    }
    if (ret == VDDK_EXIT_OK && st.noperands != 2)
        ret = vddk_usage_error(cmd, "expected PARENT and CHILD, got %d argument%s",
                               st.noperands, st.noperands == 1 ? "" : "s");
    if (ret != VDDK_EXIT_OK) {
        vddk_opt_free(&st);
        return ret;
    }
    const char *parent = st.operands[0], *child = st.operands[1];
    vddk_opt_free(&st);

    vd_err_clear();
    int rc = vmdk_create_child(child, parent, type);
    if (rc < 0)
        return vddk_engine_error(rc, child);
    printf("created %s: %s child of %s\n", child, type_text(type), parent);
    return VDDK_EXIT_OK;
}
