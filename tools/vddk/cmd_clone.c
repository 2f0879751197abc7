/* cmd_clone.c - `vddk clone` (alias `vddk convert`): copy a disk into a new
 * disk of any type with VixDiskLib_Clone; with --single-link, only the data
 * of the named link, copied through a handle opened SINGLE_LINK.  Raw
 * images (vddk/disk.h): a SOURCE that is not a VMDK is opened raw and
 * cloned from its handle; -t raw writes a raw image or block device. */
#include "vddk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int run_clone(int argc, char **argv);

#define CLONE_HELP(name, what)                                                               \
    "usage: vddk " name " [-t TYPE] [-a ADAPTER] [--hwversion N] [--overwrite]\n"            \
    "                  [--preallocate] [--single-link] [--progress | -q] SOURCE DEST\n"      \
    "\n"                                                                                     \
    what                                                                                     \
    "Copy what SOURCE reads (its whole chain) into DEST, a new disk of TYPE\n"               \
    "with the same capacity.  Ranges that hold no data or only zeros are not\n"              \
    "written.  DEST is built under a temporary name and put in place when\n"                 \
    "complete: a failed or interrupted clone (Ctrl-C) leaves no DEST.\n"                     \
    "SOURCE may be a raw image (a file or block device that is not a VMDK\n"                \
    "by its content and not named *.vmdk).\n"                                                \
    "With -t raw, DEST is a raw image: a sparse file (holes where SOURCE\n"                  \
    "has no data), or an existing block device written in place (it must be\n"              \
    "at least SOURCE's size, and needs --overwrite).\n"                                      \
    "\n"                                                                                     \
    "Options:\n"                                                                             \
    "  -t, --type TYPE      type of DEST (default monolithicSparse):\n"                      \
    "                         raw                   (a plain image)\n"                       \
    "                         monolithicSparse      (alias: sparse)\n"                       \
    "                         monolithicFlat        (alias: flat)\n"                         \
    "                         twoGbMaxExtentSparse  (alias: split-sparse)\n"                 \
    "                         twoGbMaxExtentFlat    (alias: split-flat)\n"                   \
    "                         vmfs\n"                                                        \
    "                         vmfsThin              (alias: thin)\n"                         \
    "                         vmfsSparse\n"                                                  \
    "                         streamOptimized       (alias: stream)\n"                       \
    "  -a, --adapter NAME   ide, buslogic or lsilogic (default: SOURCE's)\n"                 \
    "      --hwversion N    virtual hardware version (default: SOURCE's, else 4)\n"          \
    "      --overwrite      replace DEST if it exists (only once the copy is\n"              \
    "                       complete)\n"                                                     \
    "      --preallocate    with -t raw: allocate the whole file (no holes)\n"               \
    "      --single-link    copy only the data SOURCE's own link holds, not its\n"           \
    "                       parents': the rest of DEST reads as zeros\n"                     \
    VDDK_PROGRESS_HELP                                                                       \
    "  -h, --help           show this help\n"

const struct vddk_cmd vddk_cmd_clone = {
    .name = "clone",
    .summary = "copy a disk (its chain or one link) into a new disk of any type",
    .help = CLONE_HELP("clone", ""),
    .run = run_clone,
};

const struct vddk_cmd vddk_cmd_convert = {
    .name = "convert",
    .summary = "the same as clone",
    .help = CLONE_HELP("convert", "The same as `vddk clone`.\n\n"),
    .run = run_clone,
};

struct clone_args {
    const char *src, *dst;
    VixDiskLibCreateParams p;
    int have_adapter, have_hw, overwrite, single, progress;
    int raw, preallocate;      /* -t raw, --preallocate */
};

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* The copy of --single-link: the data of src's own link into a new
 * disk at path (type p), which is removed again on failure. */
static int copy_single_link(struct vddk_h *s, const char *path, const VixDiskLibCreateParams *p,
                            struct vddk_progress *pg, uint64_t base, uint64_t span)
{
    VixDiskLibConnection c = vddk_conn();
    vddk_warn_clear();
    VixError e = VixDiskLib_Create(c, path, p, NULL, NULL);
    if (e != VIX_OK)
        return vddk_vix_error(e, path);
    struct vddk_h d;
    int ret = vddk_open(path, 0, &d);
    uint8_t *buf = NULL, *zeros = NULL;
    const size_t chunk = 1u << 20;
    if (ret == 0 && (!(buf = malloc(chunk)) || !(zeros = calloc(1, chunk))))
        ret = vddk_fail("out of memory");
    struct vddk_runs r;
    vddk_runs_init(&r, s->h, s->capacity, 0, s->capacity);
    uint64_t off, len;
    int data, rc;
    while (ret == 0 && (rc = vddk_runs_next(&r, &off, &len, &data, &e)) != 0) {
        if (rc < 0) {
            ret = vddk_vix_error(e, s->path);
            break;
        }
        while (ret == 0 && data && len > 0) {
            if (vddk_interrupted()) {
                ret = vddk_fail("%s: cancelled", path);
                break;
            }
            /* Chunks are whole sectors: the capacity is a multiple of 512. */
            size_t n = len < chunk ? (size_t)len : chunk;
            VixDiskLibSectorType sec = off / VIXDISKLIB_SECTOR_SIZE;
            VixDiskLibSectorType ns = n / VIXDISKLIB_SECTOR_SIZE;
            vddk_warn_clear();
            if ((e = VixDiskLib_Read(s->h, sec, ns, buf)) != VIX_OK)
                ret = vddk_vix_error(e, s->path);
            else if (memcmp(buf, zeros, n) != 0 &&
                     (e = VixDiskLib_Write(d.h, sec, ns, buf)) != VIX_OK)
                ret = vddk_vix_error(e, path);
            off += n;
            len -= n;
            vddk_progress_set(pg, base + (uint64_t)((double)off / (double)s->capacity * span));
        }
    }
    vddk_runs_free(&r);
    free(buf);
    free(zeros);
    if (d.h && vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (ret != 0) {
        vddk_warn_clear();
        VixDiskLib_Unlink(c, path);
        vddk_warn_clear();
    }
    return ret;
}

/* A hidden temporary name in the directory of dst. */
static char *temp_name(const char *dst)
{
    const char *slash = strrchr(dst, '/');
    size_t dl = slash ? (size_t)(slash - dst) + 1 : 0;
    size_t n = dl + 64;
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%.*s.vddk-single-link-%ld.vmdk", (int)dl, dst, (long)getpid());
    return t;
}

/* The second half of the bar: VixDiskLib_Clone's percentages. */
struct phase {
    struct vddk_progress *pg;
    uint64_t base, span;
};

static Bool phase_cb(void *data, int percent)
{
    struct phase *ph = data;
    vddk_progress_set(ph->pg, ph->base + (uint64_t)((double)ph->span * percent / 100.0));
    return vddk_progress_cb(NULL, percent);
}

static int clone_single_link(const struct clone_args *a, struct vddk_h *s,
                             struct vddk_progress *pg)
{
    /* A new destination of a writable type is written directly; otherwise
     * (streamOptimized, or --overwrite of an existing one) the link goes
     * into a temporary sparse disk that VixDiskLib_Clone then converts and
     * puts in place. */
    if (!exists(a->dst) && a->p.diskType != VIXDISKLIB_DISK_STREAM_OPTIMIZED)
        return copy_single_link(s, a->dst, &a->p, pg, 0, s->capacity);
    if (exists(a->dst) && !a->overwrite) {
        errno = EEXIST;
        return vddk_fail("%s: file already exists (use --overwrite to replace it)", a->dst);
    }
    char *tmp = temp_name(a->dst);
    if (!tmp)
        return vddk_fail("out of memory");
    VixDiskLibCreateParams tp = a->p;
    tp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    uint64_t half = s->capacity / 2;
    int ret = copy_single_link(s, tmp, &tp, pg, 0, half);
    if (ret == 0) {
        VixDiskLibConnection c = vddk_conn();
        struct phase ph = { pg, half, s->capacity - half };
        vddk_warn_clear();
        VixError e = VixDiskLib_Clone(c, a->dst, c, tmp, &a->p, phase_cb, &ph,
                                      a->overwrite ? TRUE : FALSE);
        if (e != VIX_OK)
            ret = vddk_vix_error(e, a->dst);
        vddk_warn_clear();
        VixDiskLib_Unlink(c, tmp);
        vddk_warn_clear();
    }
    free(tmp);
    return ret;
}

static int run_clone(int argc, char **argv)
{
    enum { OPT_TYPE = 1, OPT_ADAPTER, OPT_HW, OPT_OVERWRITE, OPT_SINGLE, OPT_PREALLOC };
    static const struct vddk_opt opts[] = {
        { 't', "type", 1, OPT_TYPE },
        { 'a', "adapter", 1, OPT_ADAPTER },
        { 0, "hwversion", 1, OPT_HW },
        { 0, "overwrite", 0, OPT_OVERWRITE },
        { 0, "single-link", 0, OPT_SINGLE },
        { 0, "preallocate", 0, OPT_PREALLOC },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = strcmp(argv[0], "convert") == 0 ? &vddk_cmd_convert
                                                                   : &vddk_cmd_clone;
    struct vddk_optstate st;
    struct clone_args a;
    int o, ret = VDDK_EXIT_OK;
    uint64_t v;

    memset(&a, 0, sizeof a);
    a.p.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
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
            a.raw = strcasecmp(st.arg, "raw") == 0;
            a.p.diskType = a.raw ? VIXDISKLIB_DISK_MONOLITHIC_SPARSE : vddk_parse_type(st.arg);
            if (a.p.diskType == VIXDISKLIB_DISK_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown disk type '%s'", st.arg);
            break;
        case OPT_ADAPTER:
            a.p.adapterType = vddk_parse_adapter(st.arg);
            a.have_adapter = 1;
            if (a.p.adapterType == VIXDISKLIB_ADAPTER_UNKNOWN)
                ret = vddk_usage_error(cmd, "unknown adapter '%s' (use ide, buslogic or lsilogic)",
                                       st.arg);
            break;
        case OPT_HW:
            if (vddk_parse_uint(st.arg, 255, &v) < 0 || v == 0)
                ret = vddk_usage_error(cmd, "invalid hardware version '%s' (1 to 255)", st.arg);
            a.p.hwVersion = (uint16)v;
            a.have_hw = 1;
            break;
        case OPT_OVERWRITE: a.overwrite = 1; break;
        case OPT_SINGLE: a.single = 1; break;
        case OPT_PREALLOC: a.preallocate = 1; break;
        case VDDK_OPT_PROGRESS: a.progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: a.progress = VDDK_PROGRESS_OFF; break;
        }
    }
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 2, 2, "SOURCE and DEST");
    if (ret == VDDK_EXIT_OK) {
        a.src = st.operands[0];
        a.dst = st.operands[1];
        if (strcmp(a.src, a.dst) == 0)
            ret = vddk_usage_error(cmd, "SOURCE and DEST are the same file");
        else if (a.preallocate && !a.raw)
            ret = vddk_usage_error(cmd, "--preallocate needs -t raw (the VMDK types say "
                                   "themselves whether they are preallocated)");
        else if (a.raw && vddk_is_remote_path(a.dst))
            ret = vddk_usage_error(cmd, "-t raw writes local files and block devices only");
    }
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    /* The source's capacity, adapter and hardware version are the
     * defaults of the copy's. */
    struct vddk_h s;
    uint32 flags = VIXDISKLIB_FLAG_OPEN_READ_ONLY | VDDK_OPEN_ANY |
                   (a.single ? VIXDISKLIB_FLAG_OPEN_SINGLE_LINK : 0);
    if (vddk_open(a.src, flags, &s) != 0)
        return VDDK_EXIT_FAIL;
    if (s.raw && a.single)
        a.single = 0;            /* a raw image is one link */
    a.p.capacity = s.info->capacity;
    if (!a.have_adapter)
        a.p.adapterType = s.info->adapterType;
    if (!a.have_hw) {
        char *hw;
        ret = vddk_meta_read(s.h, a.src, "virtualHWVersion", &hw);
        if (ret == 0) {
            char *end;
            long n = strtol(hw, &end, 10);
            if (end != hw && *end == '\0' && n > 0 && n < 256)
                a.p.hwVersion = (uint16)n;
            free(hw);
        }
        ret = ret == 1 ? 0 : ret;
    }
    if (!a.p.hwVersion)
        a.p.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    uint64_t capacity = s.capacity;

    struct vddk_progress *pg = NULL;
    if (ret == VDDK_EXIT_OK) {
        pg = vddk_progress_start(a.progress, cmd->name, capacity);
        if (a.raw || s.raw) {
            /* From the open handle: into a raw image, or a raw image into
             * a new VMDK. */
            vddk_warn_clear();
            VixDiskLibConnection c = vddk_conn_for(a.dst);
            VixError e = !c ? VIX_E_FAIL
                         : a.raw ? vddk_disk_clone_raw(s.h, a.dst,
                                                       a.preallocate ? VDDK_DISK_RAW_PREALLOCATE : 0,
                                                       vddk_progress_cb, pg,
                                                       a.overwrite ? TRUE : FALSE)
                                 : vddk_disk_clone_handle(s.h, c, a.dst, &a.p, vddk_progress_cb,
                                                          pg, a.overwrite ? TRUE : FALSE);
            if (e != VIX_OK)
                ret = vddk_vix_error(e, a.dst);
        } else if (a.single) {
            ret = clone_single_link(&a, &s, pg);
        } else {
            /* Clone opens the source itself. */
            vddk_close(&s);
            /* A "[ds] path" destination is an existing vSphere disk
             * (a restore over NFC); anything else a new local disk. */
            VixDiskLibConnection c = vddk_conn_for(a.dst), sc = vddk_conn_for(a.src);
            vddk_warn_clear();
            VixError e = !sc || !c ? VIX_E_FAIL
                             : VixDiskLib_Clone(c, a.dst, sc, a.src, &a.p, vddk_progress_cb, pg,
                                          a.overwrite ? TRUE : FALSE);
            if (e != VIX_OK)
                ret = vddk_vix_error(e, a.dst);
        }
        vddk_progress_end(pg, ret == VDDK_EXIT_OK);
    }
    if (s.h && vddk_close(&s) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    if (ret == VDDK_EXIT_OK) {
        char h[VDDK_HUMAN_LEN];
        printf("cloned %s%s to %s: %s, %llu bytes (%s)\n", a.src,
               a.single ? " (this link only)" : "", a.dst,
               a.raw ? (a.preallocate ? "raw, preallocated" : "raw")
                     : vddk_type_name(a.p.diskType),
               (unsigned long long)capacity, vddk_human(capacity, h));
    }
    return ret;
}
