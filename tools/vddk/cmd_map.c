/* cmd_map.c - `vddk map`: allocation status of a disk's byte ranges. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_map(int argc, char **argv);

const struct vddk_cmd vddk_cmd_map = {
    .name = "map",
    .summary = "list the data, zero and hole ranges of a disk",
    .help =
        "usage: vddk map [--json] [--single-link] DISK\n"
        "\n"
        "List the ranges of DISK with their allocation status, merging adjacent\n"
        "ranges of the same status:\n"
        "  data  data is stored (it may happen to be zeros)\n"
        "  zero  reads as zeros without stored data (zeroed grain, ZERO extent)\n"
        "  hole  nothing is stored in the chain: reads as zeros\n"
        "The status comes from metadata only; no data is read.  The disk is\n"
        "opened read-only.\n"
        "\n"
        "Options:\n"
        "  --json         print a JSON list of {\"start\", \"length\", \"type\"}\n"
        "  --single-link  look at DISK alone, not its parents: a hole there may\n"
        "                 be data in a parent\n"
        "  -h, --help     show this help\n",
    .run = run_map,
};

struct run {
    uint64_t start, length;
    int status;
};

static const char *status_name(int s)
{
    switch (s) {
    case VMDK_DATA: return "data";
    case VMDK_ZERO: return "zero";
    case VMDK_HOLE: return "hole";
    default: return NULL;
    }
}

/* Fill *out with the merged runs of [0, capacity). */
static int collect(vmdk_disk *d, const char *path, int single_link,
                   struct run **out, size_t *nout)
{
    uint64_t cap = vmdk_capacity(d), off = 0;
    struct run *runs = NULL;
    size_t n = 0, alloc = 0;

    while (off < cap) {
        uint64_t len = 0;
        int status = -1;
        vd_err_clear();
        int rc = vmdk_block_status(d, off, cap - off, single_link, &len, &status);
        if (rc < 0) {
            free(runs);
            return vddk_engine_error(rc, path);
        }
        if (len == 0 || len > cap - off || status_name(status) == NULL) {
            free(runs);
            return vddk_fail("%s: block status at offset %llu returned an invalid run "
                             "(length %llu, status %d)", path,
                             (unsigned long long)off, (unsigned long long)len, status);
        }
        if (n > 0 && runs[n - 1].status == status) {
            runs[n - 1].length += len;
        } else {
            if (n == alloc) {
                size_t na = alloc ? alloc * 2 : 64;
                struct run *r = realloc(runs, na * sizeof *r);
                if (r == NULL) {
                    free(runs);
                    return vddk_fail("out of memory");
                }
                runs = r;
                alloc = na;
            }
            runs[n].start = off;
            runs[n].length = len;
            runs[n].status = status;
            n++;
        }
        off += len;
    }
    *out = runs;
    *nout = n;
    return VDDK_EXIT_OK;
}

static void print_json(const struct run *runs, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf("%s{\"start\": %llu, \"length\": %llu, \"type\": \"%s\"}",
               i ? ",\n " : "", (unsigned long long)runs[i].start,
               (unsigned long long)runs[i].length, status_name(runs[i].status));
    puts("]");
}

static void print_table(const struct run *runs, size_t n, const char *path,
                        uint64_t cap, int single_link)
{
    char h[VDDK_HUMAN_LEN];
    uint64_t total[3] = { 0, 0, 0 };

    printf("%-20s %-20s %-6s %s\n", "start", "length", "status", "size");
    for (size_t i = 0; i < n; i++) {
        printf("%-20llu %-20llu %-6s %s\n", (unsigned long long)runs[i].start,
               (unsigned long long)runs[i].length, status_name(runs[i].status),
               vddk_human(runs[i].length, h));
        total[runs[i].status] += runs[i].length;
    }
    printf("%s%s: %llu bytes (%s): ", path, single_link ? " (this link only)" : "",
           (unsigned long long)cap, vddk_human(cap, h));
    printf("data %s, ", vddk_human(total[VMDK_DATA], h));
    printf("zero %s, ", vddk_human(total[VMDK_ZERO], h));
    printf("hole %s\n", vddk_human(total[VMDK_HOLE], h));
}

static int run_map(int argc, char **argv)
{
    enum { OPT_JSON = 1, OPT_SINGLE };
    static const struct vddk_opt opts[] = {
        { 0, "json", 0, OPT_JSON },
        { 0, "single-link", 0, OPT_SINGLE },
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_map;
    struct vddk_optstate st;
    int json = 0, single = 0, o;

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
        else if (o == OPT_SINGLE)
            single = 1;
    }
    if (st.noperands != 1) {
        int n = st.noperands;
        vddk_opt_free(&st);
        if (n == 0)
            return vddk_usage_error(cmd, "missing DISK");
        return vddk_usage_error(cmd, "expected one DISK, got %d arguments", n);
    }
    const char *path = st.operands[0];
    vddk_opt_free(&st);

    vmdk_disk *d;
    unsigned flags = VMDK_OPEN_RDONLY | (single ? VMDK_OPEN_SINGLE_LINK : 0);
    if (vddk_open(path, flags, &d) != 0)
        return VDDK_EXIT_FAIL;

    struct run *runs = NULL;
    size_t n = 0;
    int ret = collect(d, path, single, &runs, &n);
    if (ret == VDDK_EXIT_OK) {
        if (json)
            print_json(runs, n);
        else
            print_table(runs, n, path, vmdk_capacity(d), single);
    }
    free(runs);
    if (vddk_close(d, path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    return ret;
}
