/* cmd_map.c - `vddk map`: which byte ranges of a disk hold data, from
 * VixDiskLib_QueryAllocatedBlocks. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_map(int argc, char **argv);

const struct vddk_cmd vddk_cmd_map = {
    .name = "map",
    .summary = "list the ranges of a disk that hold data",
    .help =
        "usage: vddk map [--json] [--single-link] DISK\n"
        "\n"
        "List the ranges of DISK with their allocation status, merging adjacent\n"
        "ranges of the same status:\n"
        "  data  data is stored (it may happen to be zeros)\n"
        "  hole  no data is stored in the chain (unallocated or zeroed grains):\n"
        "        reads as zeros\n"
        "The status comes from VixDiskLib_QueryAllocatedBlocks in chunks of\n"
        "64 KiB, so a range starts and ends on a 64 KiB boundary (or at the end\n"
        "of the disk).  No data is read.  Flat disks are all data.  The disk is\n"
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
    int data;
};

static const char *status_name(int data)
{
    return data ? "data" : "hole";
}

/* Fill *out with the merged runs of [0, capacity). */
static int collect(struct vddk_h *d, struct run **out, size_t *nout)
{
    struct run *runs = NULL;
    size_t n = 0, alloc = 0;
    struct vddk_runs r;
    uint64_t off, len;
    int data, rc;
    VixError e = VIX_OK;

    vddk_runs_init(&r, d->h, d->capacity, 0, d->capacity);
    while ((rc = vddk_runs_next(&r, &off, &len, &data, &e)) > 0) {
        if (n > 0 && runs[n - 1].data == data) {
            runs[n - 1].length += len;
            continue;
        }
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 64;
            struct run *nr = realloc(runs, na * sizeof *nr);
            if (nr == NULL) {
                vddk_runs_free(&r);
                free(runs);
                return vddk_fail("out of memory");
            }
            runs = nr;
            alloc = na;
        }
        runs[n].start = off;
        runs[n].length = len;
        runs[n].data = data;
        n++;
    }
    vddk_runs_free(&r);
    if (rc < 0) {
        free(runs);
        return vddk_vix_error(e, d->path);
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
               (unsigned long long)runs[i].length, status_name(runs[i].data));
    puts("]");
}

static void print_table(const struct run *runs, size_t n, const char *path,
                        uint64_t cap, int single_link)
{
    char h[VDDK_HUMAN_LEN];
    uint64_t total[2] = { 0, 0 };

    printf("%-20s %-20s %-6s %s\n", "start", "length", "status", "size");
    for (size_t i = 0; i < n; i++) {
        printf("%-20llu %-20llu %-6s %s\n", (unsigned long long)runs[i].start,
               (unsigned long long)runs[i].length, status_name(runs[i].data),
               vddk_human(runs[i].length, h));
        total[runs[i].data] += runs[i].length;
    }
    printf("%s%s: %llu bytes (%s): ", path, single_link ? " (this link only)" : "",
           (unsigned long long)cap, vddk_human(cap, h));
    printf("data %s, ", vddk_human(total[1], h));
    printf("hole %s\n", vddk_human(total[0], h));
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
    int ret = vddk_operands(cmd, &st, 1, 1, "DISK");
    const char *path = ret == VDDK_EXIT_OK ? st.operands[0] : NULL;
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    struct vddk_h d;
    uint32 flags = VIXDISKLIB_FLAG_OPEN_READ_ONLY | (single ? VIXDISKLIB_FLAG_OPEN_SINGLE_LINK : 0);
    if (vddk_open(path, flags | VDDK_OPEN_ANY, &d) != 0)
        return VDDK_EXIT_FAIL;

    struct run *runs = NULL;
    size_t n = 0;
    ret = collect(&d, &runs, &n);
    if (ret == VDDK_EXIT_OK) {
        if (json)
            print_json(runs, n);
        else
            print_table(runs, n, path, d.capacity, single);
    }
    free(runs);
    if (vddk_close(&d) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    return ret;
}
