/* cmd_meta.c - `vddk meta list|get|set`: the disk database (ddb.*) keys of
 * a disk, through GetMetadataKeys, ReadMetadata and WriteMetadata. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_meta(int argc, char **argv);

const struct vddk_cmd vddk_cmd_meta = {
    .name = "meta",
    .summary = "list, read or write the disk database (ddb) keys of a disk",
    .help =
        "usage: vddk meta list [--json] DISK\n"
        "       vddk meta get DISK KEY\n"
        "       vddk meta set DISK KEY VALUE\n"
        "\n"
        "The disk database of a VMDK descriptor: lines `ddb.KEY = \"VALUE\"`.  KEY\n"
        "is given without the \"ddb.\" prefix (uuid, adapterType, geometry.heads,\n"
        "...).\n"
        "  list  every key of DISK's own link and its value, one `KEY = VALUE`\n"
        "        line each, in descriptor order\n"
        "  get   the value of KEY, looked up from DISK down through its parents\n"
        "  set   write KEY = VALUE into DISK's own link (a new key is added; keys\n"
        "        cannot be removed, but VALUE may be empty)\n"
        "Header entries such as CID, parentCID and createType are not disk\n"
        "database keys.  list and get open the disk read-only.\n"
        "\n"
        "Options:\n"
        "  --json      list: print a JSON object of KEY: VALUE (see vddk(1))\n"
        "  -h, --help  show this help\n",
    .run = run_meta,
};

/* The keys of d: a malloc'ed list of NUL-terminated strings ending with an
 * empty one. */
static int read_keys(struct vddk_h *d, char **out)
{
    size_t need = 0;
    vddk_warn_clear();
    VixError e = VixDiskLib_GetMetadataKeys(d->h, NULL, 0, &need);
    if (e != VIX_OK && VIX_ERROR_CODE(e) != VIX_E_BUFFER_TOOSMALL)
        return vddk_vix_error(e, d->path);
    char *buf = calloc(1, need ? need : 1);
    if (!buf)
        return vddk_fail("out of memory");
    if (need > 1 && (e = VixDiskLib_GetMetadataKeys(d->h, buf, need, &need)) != VIX_OK) {
        free(buf);
        return vddk_vix_error(e, d->path);
    }
    *out = buf;
    return 0;
}

static int meta_list(const char *path, int json)
{
    struct vddk_h d;
    if (vddk_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    char *keys = NULL;
    int ret = read_keys(&d, &keys);
    /* Gather the values first: a failure leaves nothing on stdout. */
    size_t n = 0;
    for (char *k = keys; ret == 0 && *k; k += strlen(k) + 1)
        n++;
    char **vals = ret == 0 ? calloc(n + 1, sizeof *vals) : NULL;
    if (ret == 0 && !vals)
        ret = vddk_fail("out of memory");
    size_t i = 0;
    for (char *k = keys; ret == 0 && *k; k += strlen(k) + 1, i++) {
        int rc = vddk_meta_read(d.h, path, k, &vals[i]);
        if (rc == 1)
            ret = vddk_fail("%s: key %s is listed but cannot be read", path, k);
        else if (rc != 0)
            ret = rc;
    }
    if (ret == 0) {
        if (json)
            fputs("{", stdout);
        i = 0;
        for (char *k = keys; *k; k += strlen(k) + 1, i++) {
            if (json) {
                fputs(i ? ",\n  " : "\n  ", stdout);
                vddk_json_str(stdout, k);
                fputs(": ", stdout);
                vddk_json_str(stdout, vals[i]);
            } else {
                printf("%s = %s\n", k, vals[i]);
            }
        }
        if (json)
            fputs(n ? "\n}\n" : "}\n", stdout);
    }
    for (i = 0; vals && i < n; i++)
        free(vals[i]);
    free(vals);
    free(keys);
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    return ret;
}

static int meta_get(const char *path, const char *key)
{
    struct vddk_h d;
    if (vddk_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    char *v = NULL;
    int ret = vddk_meta_read(d.h, path, key, &v);
    if (ret == 1)
        ret = vddk_fail("%s: no metadata key %s", path, key);
    if (ret == 0)
        printf("%s\n", v);
    free(v);
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    return ret;
}

static int meta_set(const char *path, const char *key, const char *value)
{
    struct vddk_h d;
    if (vddk_open(path, 0, &d) != 0)
        return VDDK_EXIT_FAIL;
    vddk_warn_clear();
    VixError e = VixDiskLib_WriteMetadata(d.h, key, value);
    int ret = e == VIX_OK ? 0 : vddk_vix_error(e, path);
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    return ret;
}

static int run_meta(int argc, char **argv)
{
    enum { OPT_JSON = 1 };
    static const struct vddk_opt opts[] = {
        { 0, "json", 0, OPT_JSON },
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_meta;
    struct vddk_optstate st;
    int o, json = 0, ret = VDDK_EXIT_OK;
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
    const char *action = st.noperands > 0 ? st.operands[0] : NULL;
    if (ret == VDDK_EXIT_OK && !action) {
        ret = vddk_usage_error(cmd, "missing list, get or set");
    } else if (ret == VDDK_EXIT_OK && strcmp(action, "list") == 0) {
        if ((ret = vddk_operands(cmd, &st, 2, 2, "DISK after 'list'")) == VDDK_EXIT_OK)
            ret = meta_list(st.operands[1], json);
    } else if (ret == VDDK_EXIT_OK && json) {
        ret = vddk_usage_error(cmd, "--json goes with 'list' only");
    } else if (ret == VDDK_EXIT_OK && strcmp(action, "get") == 0) {
        if ((ret = vddk_operands(cmd, &st, 3, 3, "DISK and KEY after 'get'")) == VDDK_EXIT_OK)
            ret = meta_get(st.operands[1], st.operands[2]);
    } else if (ret == VDDK_EXIT_OK && strcmp(action, "set") == 0) {
        if ((ret = vddk_operands(cmd, &st, 4, 4, "DISK, KEY and VALUE after 'set'")) ==
            VDDK_EXIT_OK)
            ret = meta_set(st.operands[1], st.operands[2], st.operands[3]);
    } else if (ret == VDDK_EXIT_OK) {
        ret = vddk_usage_error(cmd, "unknown action '%s' (use list, get or set)", action);
    }
    vddk_opt_free(&st);
    return ret;
}
