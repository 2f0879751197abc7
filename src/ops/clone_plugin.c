/* clone_plugin.c - the clone fast path: let a NAS plugin clone the extent
 * files of a flat disk instead of copying its bytes.
 *
 * Applies when the source is a single local link (no parent) made only of
 * FLAT/VMFS extents, each a whole file, and the destination is a flat type
 * (monolithicFlat, twoGbMaxExtentFlat, vmfs, vmfsThin) whose extents have
 * the same sizes, and the plugin serving the destination's datastore says
 * (DRYRUN) it would clone every file.  Then the engine creates the new
 * disk under a hidden temporary name (descriptor, new CID and UUID, empty
 * extent files whose space is not reserved), each extent file's content is
 * replaced by a plugin CLONEFILE of the matching source file, and the disk
 * is renamed to its name.  A failure removes the temporary disk; the caller
 * then copies by itself, except after a cancel.  When the fast path does
 * not apply it returns -VD_E_UNSUPPORTED having changed nothing. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "../plugin/vdplugin.h"
#include "../util/fileio.h"
#include "../vmdk/link.h"

#define SPLIT_SECTORS 4192256ull   /* 2047 MiB: create.c's default split */
#define MAX_EXTENTS 4096

struct fp_extent {
    char *src, *dst;
    uint64_t len;
};

struct fp {
    struct fp_extent *ext;
    int n;
    uint64_t total, done;     /* bytes, for overall progress */
    uint64_t cur;             /* length of the extent being cloned */
    ops_progress_fn progress;
    void *data;
    int last;
};

static void fp_free(struct fp *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->ext[i].src);
        free(f->ext[i].dst);
    }
    free(f->ext);
}

static int not_here(const char *src, const char *dst, const char *why)
{
    vdplugin_log("Clone %s -> %s: no plugin offload (%s); the library copies the data", src,
                 dst, why);
    return vd_err_set(VD_E_UNSUPPORTED, "no plugin offload: %s", why);
}

static int is_flat_type(enum vmdk_type t)
{
    return t == VMDK_TYPE_MONOLITHIC_FLAT || t == VMDK_TYPE_SPLIT_FLAT ||
           t == VMDK_TYPE_VMFS_FLAT || t == VMDK_TYPE_VMFS_THIN;
}

/* Per-file percentages of vdplugin_clone_file -> overall percentages. */
static int fp_progress(void *data, int pct)
{
    struct fp *f = data;
    uint64_t done = f->done + f->cur * (uint64_t)pct / 100;
    int all = f->total ? (int)(done * 100 / f->total) : 100;
    if (!f->progress || all == f->last)
        return 1;
    f->last = all;
    return f->progress(f->data, all);
}

/* Extent sizes vmdk_create gives a new disk of this type and capacity. */
static int expected_layout(const struct vmdk_create_params *p, uint64_t capacity, int n,
                           const struct fp_extent *ext)
{
    uint64_t sectors = (capacity + 511) / 512;
    uint64_t per = sectors;
    if (p->type == VMDK_TYPE_SPLIT_FLAT)
        per = p->split_size ? (p->split_size + 511) / 512 : SPLIT_SECTORS;
    if (per == 0)
        return 0;
    uint64_t pieces = (sectors + per - 1) / per;
    if (pieces != (uint64_t)n)
        return 0;
    for (int i = 0; i < n; i++) {
        uint64_t s = i == n - 1 ? sectors - (uint64_t)i * per : per;
        if (s * 512 != ext[i].len)
            return 0;
    }
    return 1;
}

/* "<dir>/.<name>.plugin-XXXXXXXX.vmdk": hidden, unique, in the
 * destination's directory (the final rename stays in one file system). */
static char *temp_name(const char *dst)
{
    char *dir = vd_path_dir(dst), *stem = vd_path_stem(vd_path_base(dst));
    char *t = NULL;
    if (dir && stem) {
        unsigned r;
        vd_random(&r, sizeof r);
        t = vd_asprintf("%s/.%s.plugin-%08x.vmdk", dir, stem, r);
    }
    free(dir);
    free(stem);
    return t;
}

/* Keep the first error's message while the partial copy is removed. */
static void remove_keeping_error(const char *tmp)
{
    char msg[1024];
    int code = vd_err_code();
    snprintf(msg, sizeof msg, "%s", vd_err_msg());
    ops_unlink(tmp);
    vd_err_clear();
    if (code)
        vd_err_set(code, "%s", msg);
}

/* The extent files of the new disk at path, checked against the source's
 * extent sizes. */
static int new_extent_names(const char *path, struct fp *f)
{
    vmdk_disk *dd;
    int rc = vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK | VMDK_OPEN_NOLOCK, &dd);
    if (rc < 0)
        return rc;
    struct vmdk_link_info dl;
    rc = vmdk_link_info(dd, 0, &dl);
    if (rc == 0 && dl.num_extents != f->n)
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: created with %d extents, the source has %d",
                        path, dl.num_extents, f->n);
    for (int i = 0; i < f->n && rc == 0; i++) {
        struct vmdk_extent_info ei;
        if ((rc = vmdk_extent_info(dd, 0, i, &ei)) < 0)
            break;
        if (ei.length != f->ext[i].len || !ei.path)
            rc = vd_err_set(VD_E_UNSUPPORTED, "%s: extent %d differs from the source's", path,
                            i);
        else if (!(f->ext[i].dst = vd_strdup(ei.path)))
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
    }
    vmdk_close(dd);
    return rc;
}

/* Can the extent files of eng (a single local link) be cloned one by one
 * into a new disk made with p?  Fills f with the source files and their
 * lengths.  0 with *why NULL: yes; 0 with *why: no, and why; < 0: error. */
static int fp_sources(struct vdisk *src_disk, vmdk_disk *eng, const struct vmdk_link_info *li,
                      const struct vmdk_create_params *p, struct fp *f, const char **why)
{
    *why = NULL;
    if (vdplugin_count() == 0)
        *why = "no NAS plugin is loaded";
    else if (vmdk_num_links(eng) != 1 || li->parent_cid != 0xffffffffu)
        *why = "the source has a parent";
    else if (!is_flat_type(p->type))
        *why = "the destination type is not flat";
    else if (li->num_extents < 1 || li->num_extents > MAX_EXTENTS)
        *why = "the source has too many extents";
    if (*why)
        return 0;
    if (!(f->ext = calloc((size_t)li->num_extents, sizeof *f->ext)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    for (int i = 0; i < li->num_extents && !*why; i++) {
        struct vmdk_extent_info ei;
        struct stat st;
        if (vmdk_extent_info(eng, 0, i, &ei) < 0 || !ei.path)
            *why = "a source extent has no file";
        else if (strcmp(ei.kind, "FLAT") != 0 && strcmp(ei.kind, "VMFS") != 0)
            *why = "the source has extents that are not flat";
        else if (strcmp(ei.access, "NOACCESS") == 0)
            *why = "a source extent is NOACCESS";
        else if (ei.file_offset != 0)
            *why = "a source extent starts inside its file";
        else if (stat(ei.path, &st) < 0 || !S_ISREG(st.st_mode) ||
                 (uint64_t)st.st_size != ei.length)
            *why = "a source extent file is not exactly the extent's size";
        else if (!(f->ext[i].src = vd_strdup(ei.path)))
            return vd_err_set(VD_E_NOMEM, "out of memory");
        f->ext[i].len = ei.length;
        f->total += ei.length;
        f->n = i + 1;
    }
    if (!*why && !expected_layout(p, src_disk->capacity, f->n, f->ext))
        *why = "the destination's extents would have other sizes than the source's";
    return 0;
}

int ops_clone_via_plugin(struct vdisk *src_disk, const char *src_path, const char *dst,
                         const struct vmdk_create_params *p, ops_progress_fn progress,
                         void *data, int overwrite)
{
    if (!src_disk || !dst || !p)
        return vd_err_set(VD_E_UNSUPPORTED, "no plugin offload: missing arguments");
    vmdk_disk *eng = vdisk_local_engine(src_disk);
    struct vmdk_link_info li;
    if (!eng || vmdk_link_info(eng, 0, &li) < 0)
        return not_here(src_path ? src_path : "(remote)", dst, "the source is not a local disk");
    if (!src_path)
        src_path = li.path;

    struct fp f = { .progress = progress, .data = data, .last = -1 };
    const char *why;
    int rc = fp_sources(src_disk, eng, &li, p, &f, &why);
    if (rc < 0) {
        fp_free(&f);
        return rc;
    }
    if (!why && access(dst, F_OK) == 0) {
        char *a = realpath(dst, NULL), *b = realpath(src_path, NULL);
        if (!overwrite || !a || !b || strcmp(a, b) == 0)
            why = overwrite ? "the destination is the source" : "the destination exists";
        free(a);
        free(b);
    }
    /* Would the plugin clone each file?  Asked with the destination's
     * descriptor name, in the directory where the extents will be. */
    unsigned flags = vdplugin_clone_flags_for(p->type);
    for (int i = 0; i < f.n && !why; i++) {
        if (vdplugin_clone_file(f.ext[i].src, dst, flags |
                                VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN, NULL, NULL) < 0)
            why = vd_err_msg()[0] ? vd_err_msg() : "the plugin refuses the clone";
    }
    if (why) {
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", why);
        fp_free(&f);
        return not_here(src_path, dst, reason);
    }

    /* Build the copy under a hidden temporary name in the destination's
     * directory and give it its name only when complete, as ops_clone
     * does: a failure or a crash never leaves a half-made destination. */
    char *tmp = temp_name(dst);
    if (!tmp) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    struct vmdk_create_params cp = *p;
    cp.capacity = src_disk->capacity;
    vdplugin_defer_reserve(1);
    rc = vmdk_create(tmp, &cp);
    vdplugin_defer_reserve(0);
    if (rc == 0)
        rc = new_extent_names(tmp, &f);
    /* Held while the plugin works, so that no other clone takes the
     * temporary disk for a killed clone's leftover (clone.c). */
    int lfd = rc == 0 ? open(tmp, O_RDWR | O_CLOEXEC) : -1;
    if (lfd >= 0 && vd_lock_fd(lfd, 1, tmp) < 0)
        vd_err_clear();
    if (rc == 0 && progress && !progress(data, 0))
        rc = vd_err_set(VD_E_CANCELLED, "clone cancelled by the progress callback at 0%%");
    f.last = 0;
    /* Each new extent file is ours and empty: replace it (not GUARDED). */
    for (int i = 0; i < f.n && rc == 0; i++) {
        f.cur = f.ext[i].len;
        rc = vdplugin_clone_file(f.ext[i].src, f.ext[i].dst, flags, fp_progress, &f);
        f.done += f.ext[i].len;
        /* Thick types: reserve what the clone left unallocated, as a
         * create would (best effort: the data is complete either way). */
        if (rc == 0 && p->type != VMDK_TYPE_VMFS_THIN &&
            vdplugin_reserve_space(f.ext[i].dst, f.ext[i].len) < 0)
            vdplugin_log("Clone %s: space of %s not reserved (%s)", dst, f.ext[i].dst,
                         vd_err_msg());
    }
    if (rc == 0 && progress && f.last != 100 && !progress(data, 100))
        rc = vd_err_set(VD_E_CANCELLED, "clone cancelled by the progress callback at 100%%");
    if (lfd >= 0)
        close(lfd);
    /* Complete: replace an old destination, then link the new one in. */
    if (rc == 0 && access(dst, F_OK) == 0)
        rc = ops_unlink(dst);
    if (rc == 0)
        rc = ops_rename(tmp, dst);
    if (rc < 0 && access(tmp, F_OK) == 0)
        remove_keeping_error(tmp);
    free(tmp);
    if (rc == 0)
        vdplugin_log("Clone %s -> %s: %d extent file%s cloned by the NAS plugin", src_path, dst,
                     f.n, f.n == 1 ? "" : "s");
out:
    fp_free(&f);
    if (rc < 0 && rc != -VD_E_CANCELLED) {
        /* Not cancelled: the library's own copy gets its turn. */
        vdplugin_warn("Clone %s -> %s: plugin offload failed (%s); the library copies the data "
                      "instead", src_path, dst, vd_err_msg());
        return vd_err_set(VD_E_UNSUPPORTED, "plugin offload failed");
    }
    return rc;
}

/* ---- what the plugin knows about the space of a disk's files ---- */

int ops_plugin_link_stat(vmdk_disk *eng, int link, struct vdplugin_stat *sum)
{
    memset(sum, 0, sizeof *sum);
    if (vdplugin_count() == 0)
        return vd_err_set(VD_E_UNSUPPORTED, "no NAS plugin is loaded");
    struct vmdk_link_info li;
    int rc = vmdk_link_info(eng, link, &li);
    if (rc < 0)
        return rc;
    /* The descriptor, then each extent file (a monolithic disk's
     * descriptor is its extent; extents in one file follow each other). */
    const char *prev = NULL;
    for (int i = -1; i < li.num_extents; i++) {
        const char *file = li.path;
        if (i >= 0) {
            struct vmdk_extent_info ei;
            if ((rc = vmdk_extent_info(eng, link, i, &ei)) < 0)
                return rc;
            file = ei.path;
            if (!file || strcmp(file, li.path) == 0 || (prev && strcmp(file, prev) == 0))
                continue;
        }
        struct vdplugin_stat st;
        if ((rc = vdplugin_statx(file, &st)) < 0)
            return rc;
        if (prev && strcmp(st.plugin, sum->plugin) != 0)
            return vd_err_set(VD_E_UNSUPPORTED, "the files of %s are on datastores of "
                              "different plugins", li.path);
        memcpy(sum->plugin, st.plugin, sizeof sum->plugin);
        sum->total += st.total;
        sum->allocated += st.allocated;
        sum->unique += st.unique;
        sum->alloc_type = st.alloc_type;
        prev = file;
    }
    return 0;
}

int ops_plugin_clone_space(struct vdisk *d, int type, uint64_t *bytes)
{
    vmdk_disk *eng = vdisk_local_engine(d);
    struct vmdk_link_info li;
    if (!eng || vmdk_link_info(eng, 0, &li) < 0)
        return vd_err_set(VD_E_UNSUPPORTED, "not a local disk");
    struct vmdk_create_params p = { .type = (enum vmdk_type)type, .capacity = d->capacity };
    struct fp f = { .last = -1 };
    const char *why;
    int rc = fp_sources(d, eng, &li, &p, &f, &why);
    /* The clone is asked about as if made next to the source, where a
     * clone to the same datastore would be. */
    char *dir = vd_path_dir(li.path), *stem = vd_path_stem(vd_path_base(li.path));
    char *probe = dir && stem ? vd_asprintf("%s/.%s.space-probe.vmdk", dir, stem) : NULL;
    if (rc == 0 && !why && !probe)
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    unsigned flags = vdplugin_clone_flags_for(p.type), kind = 0;
    uint64_t need = 0, total = 0, alloc = 0, uniq = 0;
    char plugin[64] = "";
    for (int i = 0; i < f.n && rc == 0 && !why; i++) {
        unsigned granted;
        struct vdplugin_stat st;
        if (vdplugin_clone_probe(f.ext[i].src, probe, flags, &granted) < 0 ||
            vdplugin_statx(f.ext[i].src, &st) < 0) {
            why = vd_err_msg()[0] ? vd_err_msg() : "the plugin refuses";
            break;
        }
        /* Lazy clones share the source's blocks: a thin copy needs nothing
         * new, a thick one gets the source's holes reserved.  Full clones
         * keep holes: a thin copy takes what the source has allocated, a
         * thick one its whole length. */
        uint64_t a = st.allocated < st.total ? st.allocated : st.total;
        int lazy = (granted & VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY) != 0;
        int thin = p.type == VMDK_TYPE_VMFS_THIN;
        need += lazy ? (thin ? 0 : st.total - a) : (thin ? a : st.total);
        kind |= lazy ? 1u : 2u;
        total += st.total;
        alloc += st.allocated;
        uniq += st.unique;
        snprintf(plugin, sizeof plugin, "%s", st.plugin);
    }
    if (rc == 0 && why) {
        vdplugin_log("SpaceNeededForClone %s: no plugin offload (%s); counting the full size",
                     li.path, why);
        rc = vd_err_set(VD_E_UNSUPPORTED, "no plugin offload");
    } else if (rc == 0) {
        vdplugin_log("SpaceNeededForClone %s: NAS plugin %s would clone its %d extent file%s "
                     "(%s); they hold %" PRIu64 " bytes, %" PRIu64 " allocated, %" PRIu64
                     " unique: the copy's data needs %" PRIu64 " new bytes", li.path, plugin,
                     f.n, f.n == 1 ? "" : "s",
                     kind == 1 ? "lazy" : kind == 2 ? "full" : "lazy and full", total, alloc,
                     uniq, need);
        *bytes = need;
    }
    free(dir);
    free(stem);
    free(probe);
    fp_free(&f);
    return rc;
}
