/* cmd_maint.c - whole-disk maintenance through VixDiskLib: `vddk grow`,
 * `shrink`, `defrag`, `rename`, `rm`, `attach` and `check`. */
#include "vddk.h"

#include <stdlib.h>
#include <string.h>

static int run_grow(int argc, char **argv);
static int run_shrink(int argc, char **argv);
static int run_defrag(int argc, char **argv);
static int run_rename(int argc, char **argv);
static int run_rm(int argc, char **argv);
static int run_attach(int argc, char **argv);
static int run_check(int argc, char **argv);

const struct vddk_cmd vddk_cmd_grow = {
    .name = "grow",
    .summary = "increase the capacity of a disk",
    .help =
        "usage: vddk grow -s SIZE [--update-geometry] [--progress | -q] DISK\n"
        "\n"
        "Grow DISK (the link named, not its parents) to SIZE bytes, or by SIZE\n"
        "bytes when SIZE starts with '+'.  The new space reads as zeros.  DISK\n"
        "must not be open elsewhere and must have no child disk (a child would\n"
        "no longer match it); streamOptimized disks cannot grow.\n"
        "\n"
        "Options:\n"
        "  -s, --size [+]SIZE   the new capacity, or the amount to add; rounded up\n"
        "                       to a multiple of 512 bytes\n"
        "      --update-geometry\n"
        "                       also set the disk's geometry (ddb.geometry.*) for\n"
        "                       the new capacity\n"
        VDDK_PROGRESS_HELP
        "  -h, --help           show this help\n"
        "SIZE is bytes (decimal or 0x hex) or takes a K, M, G or T suffix (powers\n"
        "of 1024).\n",
    .run = run_grow,
};

const struct vddk_cmd vddk_cmd_shrink = {
    .name = "shrink",
    .summary = "give back the space of zero data in a sparse disk",
    .help =
        "usage: vddk shrink [--progress | -q] DISK\n"
        "\n"
        "Reclaim space in the top link of DISK: grains that read as zeros are\n"
        "dropped and the remaining ones are moved down so that the file can be\n"
        "truncated.  What DISK reads and its capacity do not change.  Only\n"
        "sparse links can be shrunk.\n"
        "\n"
        "Options:\n"
        VDDK_PROGRESS_HELP
        "  -h, --help           show this help\n",
    .run = run_shrink,
};

const struct vddk_cmd vddk_cmd_defrag = {
    .name = "defrag",
    .summary = "put the grains of a sparse disk in order",
    .help =
        "usage: vddk defrag [--progress | -q] DISK\n"
        "\n"
        "Rewrite the grains of the top link of DISK in the order of their disk\n"
        "offsets, without gaps, and truncate its files.  What DISK reads does\n"
        "not change.  Flat disks have nothing to defragment.\n"
        "\n"
        "Options:\n"
        VDDK_PROGRESS_HELP
        "  -h, --help           show this help\n",
    .run = run_defrag,
};

const struct vddk_cmd vddk_cmd_rename = {
    .name = "rename",
    .summary = "rename a disk and its extent files",
    .help =
        "usage: vddk rename OLD NEW\n"
        "\n"
        "Rename the disk OLD to NEW: its descriptor and every extent file named\n"
        "after it.  A child disk moved to another directory keeps pointing at\n"
        "its parent.  Children of OLD are not updated: they would no longer\n"
        "find it.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n",
    .run = run_rename,
};

const struct vddk_cmd vddk_cmd_rm = {
    .name = "rm",
    .summary = "delete disks with all their files",
    .help =
        "usage: vddk rm DISK...\n"
        "\n"
        "Delete each DISK: its descriptor and all its extent files (one link;\n"
        "its parents stay).  A disk that another program has open for writing is\n"
        "refused.  Children of a deleted disk can no longer be opened.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n",
    .run = run_rm,
};

const struct vddk_cmd vddk_cmd_attach = {
    .name = "attach",
    .summary = "make a delta disk the child of another parent",
    .help =
        "usage: vddk attach PARENT CHILD\n"
        "\n"
        "Put the chain of CHILD on top of PARENT: the bottom link of CHILD's\n"
        "chain, which must be a delta disk (not a base disk), gets PARENT as its\n"
        "parent, recorded in its parentFileNameHint and parentCID.  The\n"
        "capacities must be equal.  Use it for a delta whose parent moved or\n"
        "was restored elsewhere with the same content; the combined disk is\n"
        "only meaningful if the delta was taken against that content.  PARENT\n"
        "is not modified.\n"
        "\n"
        "Options:\n"
        "  -h, --help  show this help\n",
    .run = run_attach,
};

const struct vddk_cmd vddk_cmd_check = {
    .name = "check",
    .summary = "check a disk's structure, and repair it",
    .help =
        "usage: vddk check [--repair] [--json] [--progress | -q] DISK\n"
        "\n"
        "Check the structure of DISK (the link named: its descriptor and every\n"
        "extent; parents are not checked) and print one line per problem found;\n"
        "\"(cannot repair)\" marks those no repair can fix.  A disk that shows no\n"
        "problem is also opened as any program opens it: a refusal is a problem.\n"
        "Without --repair nothing is changed.  A repair changes nothing unless it\n"
        "can repair every problem; before it writes, it keeps what it overwrites\n"
        "in DISK.repair-undo (said on stderr) and removes that file when it is\n"
        "done.  If a repair is killed, the disk cannot be opened until the next\n"
        "'vddk check --repair DISK' rolls it back and repairs again.  Exit status:\n"
        "0 when the disk is consistent or every problem was repaired, 1 when\n"
        "problems remain (or the check could not run), 2 for a usage error.  The\n"
        "library reports no percentage for this operation: the progress\n"
        "indicator shows the time elapsed.\n"
        "\n"
        "Options:\n"
        "      --repair         repair what can be repaired\n"
        "      --json           print a JSON object (see vddk(1))\n"
        VDDK_PROGRESS_HELP
        "  -h, --help           show this help\n",
    .run = run_check,
};

/* Parse the options of a subcommand that takes only --progress/--quiet,
 * plus extra ones; operands between min and max.  Returns -1 when the
 * caller should return *ret. */
struct simple_args {
    int progress;
    int flags[4];            /* set by extra options with ids 1..4 */
    const char *size_arg;    /* argument of the option with id 1, if any */
    const char *ops[8];
    int nops;
    char **more;             /* every operand (rm) */
};

static int parse_simple(int argc, char **argv, const struct vddk_cmd *cmd,
                        const struct vddk_opt *opts, int min, int max, const char *what,
                        struct simple_args *a, int *ret, struct vddk_optstate *st)
{
    int o;
    memset(a, 0, sizeof *a);
    *ret = VDDK_EXIT_OK;
    if (vddk_opt_init(st, argc, argv) < 0) {
        *ret = VDDK_EXIT_FAIL;
        return -1;
    }
    while (*ret == VDDK_EXIT_OK && (o = vddk_getopt(st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(st);
            *ret = vddk_print_help(cmd, stdout);
            return -1;
        case VDDK_OPT_ERROR: *ret = VDDK_EXIT_USAGE; break;
        case VDDK_OPT_PROGRESS: a->progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: a->progress = VDDK_PROGRESS_OFF; break;
        default:
            if (o >= 1 && o <= 4) {
                a->flags[o - 1] = 1;
                if (o == 1 && st->arg)
                    a->size_arg = st->arg;
            }
        }
    }
    if (*ret == VDDK_EXIT_OK)
        *ret = vddk_operands(cmd, st, min, max, what);
    if (*ret != VDDK_EXIT_OK) {
        vddk_opt_free(st);
        return -1;
    }
    for (int i = 0; i < st->noperands && i < 8; i++)
        a->ops[i] = st->operands[i];
    a->nops = st->noperands;
    a->more = st->operands;
    return 0;
}

/* ---- grow ----------------------------------------------------------------- */

static int run_grow(int argc, char **argv)
{
    enum { OPT_SIZE = 1, OPT_GEOMETRY };
    static const struct vddk_opt opts[] = {
        { 's', "size", 1, OPT_SIZE },
        { 0, "update-geometry", 0, OPT_GEOMETRY },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_grow;
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, cmd, opts, 1, 1, "DISK", &a, &ret, &st) < 0)
        return ret;
    const char *path = a.ops[0];
    int relative = 0;
    uint64_t size = 0;
    if (!a.size_arg) {
        ret = vddk_usage_error(cmd, "missing -s SIZE");
    } else {
        const char *t = a.size_arg;
        if (*t == '+') {
            relative = 1;
            t++;
        }
        if (vddk_parse_size(t, &size) < 0 || size > UINT64_MAX - 511)
            ret = vddk_usage_error(cmd, "invalid size '%s'", a.size_arg);
        else if (size == 0)
            ret = vddk_usage_error(cmd, "size must be greater than zero");
    }
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    struct vddk_h d;
    if (vddk_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY | VIXDISKLIB_FLAG_OPEN_SINGLE_LINK,
                  &d) != 0)
        return VDDK_EXIT_FAIL;
    uint64_t old = d.capacity;
    if (vddk_close(&d) != 0)
        return VDDK_EXIT_FAIL;
    if (relative && size > UINT64_MAX - 511 - old)
        return vddk_fail("%s: capacity + %s is too large", path, a.size_arg);
    uint64_t want = relative ? old + size : size;
    VixDiskLibSectorType sectors = (want + VIXDISKLIB_SECTOR_SIZE - 1) / VIXDISKLIB_SECTOR_SIZE;
    if (sectors * VIXDISKLIB_SECTOR_SIZE <= old)
        return vddk_fail("%s: the new capacity %llu bytes is not larger than the current "
                         "%llu bytes (grow never shrinks a disk)", path,
                         (unsigned long long)(sectors * VIXDISKLIB_SECTOR_SIZE),
                         (unsigned long long)old);

    VixDiskLibConnection c = vddk_conn();
    if (!c)
        return VDDK_EXIT_FAIL;
    struct vddk_progress *pg = vddk_progress_start(a.progress, "grow",
                                                   sectors * VIXDISKLIB_SECTOR_SIZE - old);
    vddk_warn_clear();
    VixError e = VixDiskLib_Grow(c, path, sectors, a.flags[OPT_GEOMETRY - 1] ? TRUE : FALSE,
                                 vddk_progress_cb, pg);
    vddk_progress_end(pg, e == VIX_OK);
    if (e != VIX_OK)
        return vddk_vix_error(e, path);
    char h1[VDDK_HUMAN_LEN], h2[VDDK_HUMAN_LEN];
    uint64_t now = sectors * VIXDISKLIB_SECTOR_SIZE;
    printf("grew %s from %llu bytes (%s) to %llu bytes (%s)\n", path, (unsigned long long)old,
           vddk_human(old, h1), (unsigned long long)now, vddk_human(now, h2));
    return VDDK_EXIT_OK;
}

/* ---- shrink, defrag ------------------------------------------------------- */

/* Data in the top link, in 64 KiB chunks. */
static int top_link_data(const char *path, uint64_t *out)
{
    struct vddk_h d;
    if (vddk_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY | VIXDISKLIB_FLAG_OPEN_SINGLE_LINK,
                  &d) != 0)
        return VDDK_EXIT_FAIL;
    struct vddk_runs r;
    uint64_t off, len, total = 0;
    int data, rc;
    VixError e = VIX_OK;
    vddk_runs_init(&r, d.h, d.capacity, 0, d.capacity);
    while ((rc = vddk_runs_next(&r, &off, &len, &data, &e)) > 0)
        if (data)
            total += len;
    vddk_runs_free(&r);
    int ret = rc < 0 ? vddk_vix_error(e, path) : 0;
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    *out = total;
    return ret;
}

static int handle_op(int argc, char **argv, const struct vddk_cmd *cmd,
                     VixError (*fn)(VixDiskLibHandle, VixDiskLibProgressFunc, void *),
                     const char *done)
{
    static const struct vddk_opt opts[] = {
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, cmd, opts, 1, 1, "DISK", &a, &ret, &st) < 0)
        return ret;
    const char *path = a.ops[0];
    vddk_opt_free(&st);

    uint64_t before = 0, after = 0;
    if (top_link_data(path, &before) != 0)
        return VDDK_EXIT_FAIL;
    struct vddk_h d;
    if (vddk_open(path, 0, &d) != 0)
        return VDDK_EXIT_FAIL;
    struct vddk_progress *pg = vddk_progress_start(a.progress, cmd->name, d.capacity);
    vddk_warn_clear();
    VixError e = fn(d.h, vddk_progress_cb, pg);
    vddk_progress_end(pg, e == VIX_OK);
    ret = e == VIX_OK ? 0 : vddk_vix_error(e, path);
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (ret == 0 && top_link_data(path, &after) != 0)
        ret = VDDK_EXIT_FAIL;
    if (ret == 0) {
        char h1[VDDK_HUMAN_LEN], h2[VDDK_HUMAN_LEN];
        printf("%s %s: data in its link %s before, %s after\n", done, path,
               vddk_human(before, h1), vddk_human(after, h2));
    }
    return ret;
}

static int run_shrink(int argc, char **argv)
{
    return handle_op(argc, argv, &vddk_cmd_shrink, VixDiskLib_Shrink, "shrank");
}

static int run_defrag(int argc, char **argv)
{
    return handle_op(argc, argv, &vddk_cmd_defrag, VixDiskLib_Defragment, "defragmented");
}

/* ---- rename, rm ----------------------------------------------------------- */

static const struct vddk_opt no_opts[] = {
    { 0, NULL, 0, 0 },
};

static int run_rename(int argc, char **argv)
{
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, &vddk_cmd_rename, no_opts, 2, 2, "OLD and NEW", &a, &ret,
                     &st) < 0)
        return ret;
    const char *from = a.ops[0], *to = a.ops[1];
    vddk_opt_free(&st);
    if (!vddk_conn())
        return VDDK_EXIT_FAIL;
    vddk_warn_clear();
    VixError e = VixDiskLib_Rename(from, to);
    if (e != VIX_OK)
        return vddk_vix_error(e, from);
    printf("renamed %s to %s\n", from, to);
    return VDDK_EXIT_OK;
}

static int run_rm(int argc, char **argv)
{
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, &vddk_cmd_rm, no_opts, 1, argc, "DISK", &a, &ret, &st) < 0)
        return ret;
    VixDiskLibConnection c = vddk_conn();
    if (!c)
        ret = VDDK_EXIT_FAIL;
    for (int i = 0; c && i < a.nops; i++) {
        vddk_warn_clear();
        VixError e = VixDiskLib_Unlink(c, a.more[i]);
        if (e != VIX_OK)
            ret = vddk_vix_error(e, a.more[i]);
        else
            printf("removed %s\n", a.more[i]);
    }
    vddk_opt_free(&st);
    return ret;
}

/* ---- attach --------------------------------------------------------------- */

static int run_attach(int argc, char **argv)
{
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, &vddk_cmd_attach, no_opts, 2, 2, "PARENT and CHILD", &a,
                     &ret, &st) < 0)
        return ret;
    const char *parent = a.ops[0], *child = a.ops[1];
    vddk_opt_free(&st);

    struct vddk_h p, ch;
    if (vddk_open(parent, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &p) != 0)
        return VDDK_EXIT_FAIL;
    if (vddk_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, &ch) != 0) {
        vddk_close(&p);
        return VDDK_EXIT_FAIL;
    }
    vddk_warn_clear();
    VixError e = VixDiskLib_IsAttachPossible(p.h, ch.h);
    if (e == VIX_OK) {
        vddk_warn_clear();
        e = VixDiskLib_Attach(p.h, ch.h);
        if (e == VIX_OK) {
            /* Attach consumed the parent handle. */
            VixDiskLib_FreeInfo(p.info);
            p.info = NULL;
            p.h = NULL;
        }
    }
    ret = e == VIX_OK ? 0 : vddk_vix_error(e, child);
    if (vddk_close(&ch) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (vddk_close(&p) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (ret == 0)
        printf("attached %s to %s: it now reads through %s\n", child, parent, parent);
    return ret;
}

/* ---- check ---------------------------------------------------------------- */

#define JOURNAL_PREFIX "CheckRepair: journal: "
#define NOTE_PREFIX "CheckRepair: note: "

/* Where a repair keeps what it overwrites: said as it happens (a killed
 * repair must have said it). */
static int check_json;
static void check_hook(const char *line)
{
    if (!check_json && !strncmp(line, JOURNAL_PREFIX, strlen(JOURNAL_PREFIX))) {
        fprintf(stderr, "vddk: %s\n", line + strlen(JOURNAL_PREFIX));
        fflush(stderr);
    }
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static int run_check(int argc, char **argv)
{
    enum { OPT_REPAIR = 1, OPT_JSON };
    static const struct vddk_opt opts[] = {
        { 0, "repair", 0, OPT_REPAIR },
        { 0, "json", 0, OPT_JSON },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct vddk_optstate st;
    struct simple_args a;
    int ret;
    if (parse_simple(argc, argv, &vddk_cmd_check, opts, 1, 1, "DISK", &a, &ret, &st) < 0)
        return ret;
    const char *path = a.ops[0];
    int repair = a.flags[OPT_REPAIR - 1], json = a.flags[OPT_JSON - 1];
    vddk_opt_free(&st);

    VixDiskLibConnection c = vddk_conn();
    if (!c)
        return VDDK_EXIT_FAIL;
    struct vddk_progress *pg = vddk_progress_start(a.progress, repair ? "repair" : "check", 0);
    vddk_warn_clear();
    vddk_warn_collect(1);
    check_json = json;
    vddk_warn_hook(check_hook);
    VixError e = VixDiskLib_CheckRepair(c, path, repair ? TRUE : FALSE);
    vddk_warn_hook(NULL);
    vddk_warn_collect(0);
    vddk_progress_end(pg, e == VIX_OK);
    size_t n = 0, nf = 0, nj = 0, nn = 0, ncant = 0;
    char **lines = vddk_warn_take(&n);
    char **jl = calloc(n ? n : 1, sizeof *jl), **notes = calloc(n ? n : 1, sizeof *notes);
    if (!jl || !notes) {
        free(jl);
        free(notes);
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
        free(lines);
        return vddk_fail("out of memory");
    }
    /* Findings come as "CheckRepair: <finding>", the undo journal of a
     * repair as "CheckRepair: journal: <what>", notes (not problems) as
     * "CheckRepair: note: <what>", the final failure (if any) as
     * "VixDiskLib_CheckRepair: ... (error N)". */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(lines[i], NOTE_PREFIX, strlen(NOTE_PREFIX)) == 0) {
            memmove(lines[i], lines[i] + strlen(NOTE_PREFIX),
                    strlen(lines[i] + strlen(NOTE_PREFIX)) + 1);
            notes[nn++] = lines[i];
        } else if (strncmp(lines[i], JOURNAL_PREFIX, strlen(JOURNAL_PREFIX)) == 0) {
            memmove(lines[i], lines[i] + strlen(JOURNAL_PREFIX),
                    strlen(lines[i] + strlen(JOURNAL_PREFIX)) + 1);
            jl[nj++] = lines[i];
        } else if (strncmp(lines[i], "CheckRepair: ", 13) == 0) {
            memmove(lines[i], lines[i] + 13, strlen(lines[i] + 13) + 1);
            ncant += ends_with(lines[i], "(cannot repair)");
            lines[nf++] = lines[i];
        } else {
            free(lines[i]);
        }
    }

    const char *status = NULL;
    switch (VIX_ERROR_CODE(e)) {
    case VIX_OK: status = nf && repair ? "repaired" : "clean"; break;
    case VIX_E_DISK_NEEDSREPAIR: status = "needs-repair"; break;
    case VIX_E_DISK_CANTREPAIR: status = "cannot-repair"; break;
    }
    if (!status) {
        ret = vddk_vix_error(e, path);
    } else if (json) {
        fputs("{\n  \"path\": ", stdout);
        vddk_json_str(stdout, path);
        printf(",\n  \"repair\": %s,\n  \"status\": \"%s\",\n  \"findings\": [",
               repair ? "true" : "false", status);
        for (size_t i = 0; i < nf; i++) {
            fputs(i ? ",\n    " : "\n    ", stdout);
            vddk_json_str(stdout, lines[i]);
        }
        fputs(nf ? "\n  ],\n  \"journal\": [" : "],\n  \"journal\": [", stdout);
        for (size_t i = 0; i < nj; i++) {
            fputs(i ? ",\n    " : "\n    ", stdout);
            vddk_json_str(stdout, jl[i]);
        }
        fputs(nj ? "\n  ],\n  \"notes\": [" : "],\n  \"notes\": [", stdout);
        for (size_t i = 0; i < nn; i++) {
            fputs(i ? ",\n    " : "\n    ", stdout);
            vddk_json_str(stdout, notes[i]);
        }
        fputs(nn ? "\n  ]\n}\n" : "]\n}\n", stdout);
    } else {
        for (size_t i = 0; i < nf; i++)
            printf("%s\n", lines[i]);
        for (size_t i = 0; i < nn; i++)
            printf("%s (note)\n", notes[i]);
        if (e == VIX_OK && !nf)
            printf("%s: no problems found\n", path);
        else if (e == VIX_OK)
            printf("%s: %zu problem%s repaired\n", path, nf, nf == 1 ? "" : "s");
    }
    if (status && e == VIX_E_DISK_NEEDSREPAIR)
        ret = vddk_fail("%s: %zu problem%s found; 'vddk check --repair %s' repairs them", path,
                        nf, nf == 1 ? "" : "s", path);
    else if (status && e != VIX_OK && !repair)
        ret = vddk_fail("%s: %zu problem%s found; %zu cannot be repaired, so a repair would "
                        "change nothing", path, nf, nf == 1 ? "" : "s", ncant);
    else if (status && e != VIX_OK)
        ret = vddk_fail("%s: %zu problem%s cannot be repaired; nothing was changed", path,
                        ncant, ncant == 1 ? "" : "s");
    for (size_t i = 0; i < nf; i++)
        free(lines[i]);
    for (size_t i = 0; i < nj; i++)
        free(jl[i]);
    for (size_t i = 0; i < nn; i++)
        free(notes[i]);
    free(jl);
    free(notes);
    free(lines);
    return ret;
}
