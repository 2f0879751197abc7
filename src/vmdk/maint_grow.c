/* maint_grow.c - Grow: a larger capacity for a disk that is not open.
 *
 * Hosted sparse extent (reference section 8, keeping the standard
 * contiguous layout, section 2.3):
 *   0. uncleanShutdown set while the metadata moves;
 *   1. grains lying below the new overHead are copied to the end of the
 *      file (synced), then their entries are switched (synced);
 *   2. a complete new directory and tables are written after the last grain
 *      (synced) -- the old metadata is still what the header names;
 *   3. the header is switched to that copy with the new capacity and
 *      overHead (one sector: the first commit);
 *   4. the standard metadata (redundant directory and tables, directory and
 *      tables, contiguous from where the old ones began) is written over the
 *      old, no longer referenced, metadata (synced);
 *   5. the header is switched to it (the second commit);
 *   6. the temporary copy at the end is truncated away.
 * Interrupted anywhere, the extent opens and reads as before (old capacity
 * until step 3, new capacity after it).
 *
 * Disk: new extent files first (split types), then the last extent grows
 * (sparse as above; flat files are extended), then the descriptor is
 * rewritten with the new extent sizes (and geometry): that rewrite is what
 * makes the new capacity visible. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "descriptor.h"
#include "extent.h"
#include "link.h"
#include "maint_priv.h"
#include "sparse_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define DEFAULT_SPLIT_SECTORS 4192256ull   /* 2047 MiB, as VMware splits */
#define ZERO_CHUNK (1u << 20)
#define MAX_DESC_PROBE (1u << 20)

static int step(vmdk_progress_fn progress, void *ctx, uint64_t done, uint64_t total)
{
    return progress ? progress(ctx, done, total) : 1;
}

static int write_zeros(struct sx *x, uint64_t from, uint64_t to)
{
    void *z = calloc(1, ZERO_CHUNK);
    if (!z)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0;
    for (uint64_t o = from; rc == 0 && o < to;) {
        uint64_t n = to - o < ZERO_CHUNK ? to - o : ZERO_CHUNK;
        if (sx_pwrite(x, z, n, o) < 0)
            rc = vd_err_errno(errno, "%s: writing at offset %" PRIu64, x->path, o);
        o += n;
    }
    free(z);
    if (rc == 0 && to > x->file_size)
        x->file_size = to;
    return rc;
}

/* Write tables 0..n-1 (content from x, zeros past it) at first + i*gt_sec
 * and a directory pointing at them at dir. */
static int write_meta_copy(struct sx *x, uint64_t n, uint64_t dir, uint64_t dir_sec,
                           uint64_t first)
{
    uint32_t *buf = malloc((size_t)x->h.num_gtes * 4);
    uint32_t *d = calloc(dir_sec * 128, 4);
    int rc = 0;
    if (!buf || !d) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
        goto out;
    }
    uint64_t tb = (uint64_t)x->h.num_gtes * 4;
    for (uint64_t i = 0; i < n; i++) {
        const uint32_t *t = i < x->n_gd ? x->gt[i] : NULL;
        for (uint32_t k = 0; k < x->h.num_gtes; k++)
            buf[k] = htole32(t ? t[k] : 0);
        uint64_t at = first + i * x->gt_sec;
        d[i] = htole32((uint32_t)at);
        if (sx_pwrite(x, buf, tb, at * 512) < 0) {
            rc = vd_err_errno(errno, "%s: writing grain table at sector %" PRIu64, x->path, at);
            goto out;
        }
        if (at * 512 + tb > x->file_size)
            x->file_size = at * 512 + tb;
    }
    if (sx_pwrite(x, d, dir_sec * 512, dir * 512) < 0) {
        rc = vd_err_errno(errno, "%s: writing grain directory at sector %" PRIu64, x->path, dir);
        goto out;
    }
    if ((dir + dir_sec) * 512 > x->file_size)
        x->file_size = (dir + dir_sec) * 512;
out:
    free(buf);
    free(d);
    return rc;
}

int sx_grow(struct sx *x, uint64_t new_sectors, vmdk_progress_fn progress, void *ctx)
{
    const uint32_t N = x->h.num_gtes;
    const uint64_t G = x->h.grain, gb = x->grain_bytes, cover = (uint64_t)N * G;
    const uint64_t total = 6;
    if (new_sectors <= x->h.capacity)
        return 0;
    uint64_t new_n = (new_sectors + cover - 1) / cover;
    int rc;

    /* Entries past the old capacity were never visible: keep it so. */
    for (uint64_t g = (x->h.capacity + G - 1) / G; g < sx_grains(x); g++)
        if (x->gt[g / N] && sx_gte(x, g) != 0)
            sx_set_gte(x, g, 0);
    if ((rc = sx_write_tables(x)) < 0)
        return rc;
    if (new_n <= x->n_gd) {       /* the tables already cover it */
        x->h.capacity = new_sectors;
        return sx_write_header(x);
    }

    uint64_t desc_end = x->h.desc_off ? x->h.desc_off + x->h.desc_size : 1;
    uint64_t ms = x->h.gd_off;
    if (x->rgd && x->h.rgd_off < ms)
        ms = x->h.rgd_off;
    if (ms < desc_end)
        ms = desc_end;
    uint64_t gd_sec2 = (new_n * 4 + 511) / 512, gts = x->gt_sec;
    uint64_t rgd2 = ms, gd2 = rgd2 + gd_sec2 + new_n * gts;
    uint64_t ovh2 = (gd2 + gd_sec2 + new_n * gts + G - 1) / G * G;
    if (ovh2 < x->h.overhead)
        ovh2 = x->h.overhead;
    if (ovh2 + new_sectors + new_n * gts + gd_sec2 > UINT32_MAX)
        return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " sectors is too large for one hosted "
                          "sparse extent (limit about 2 TiB); use a split type", x->path,
                          new_sectors);
    int was_unclean = x->h.unclean;
    void *buf = malloc(gb);
    uint32_t *moved_to = NULL;
    uint64_t *moved_g = NULL;
    size_t nmoved = 0;
    uint32_t *ngd = calloc(new_n, 4), *nrgd = calloc(new_n, 4);
    uint32_t **ngt = calloc(new_n, sizeof *ngt);
    unsigned char *ndirty = calloc(new_n, 1);
    if (!buf || !ngd || !nrgd || !ngt || !ndirty) {
        rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
        goto out;
    }

    /* 0. */
    x->h.unclean = 1;
    if ((rc = sx_write_header(x)) < 0)
        goto out;
    /* 1. Grains below the new overhead go to the end. */
    uint64_t lim = ovh2 * 512, pos = sx_append_pos(x);
    if (pos < lim)
        pos = lim;
    for (uint64_t g = 0; g < sx_grains(x); g++) {
        uint32_t v = sx_gte(x, g);
        if (v <= 1 || (uint64_t)v * 512 >= lim)
            continue;
        uint32_t *nt = realloc(moved_to, (nmoved + 1) * sizeof *nt);
        if (nt)
            moved_to = nt;
        uint64_t *ng = realloc(moved_g, (nmoved + 1) * sizeof *ng);
        if (ng)
            moved_g = ng;
        if (!nt || !ng) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
            goto out;
        }
        if ((rc = sx_copy(x, (uint64_t)v * 512, pos, gb, buf)) < 0)
            goto out;
        moved_g[nmoved] = g;
        moved_to[nmoved++] = (uint32_t)(pos / 512);
        pos += gb;
    }
    if (nmoved) {
        if ((rc = sx_sync(x)) < 0)
            goto out;
        for (size_t m = 0; m < nmoved; m++)
            sx_set_gte(x, moved_g[m], moved_to[m]);
        if ((rc = sx_write_tables(x)) < 0)
            goto out;
    }
    if (!step(progress, ctx, 1, total)) {
        rc = vd_err_set(VD_E_CANCELLED, "%s: grow cancelled by the progress callback", x->path);
        goto restore_flag;
    }

    /* 2. A temporary copy of the new metadata after everything. */
    uint64_t tpos = (x->file_size + 511) / 512;
    if (tpos < ovh2)
        tpos = ovh2;
    if (tpos + gd_sec2 + new_n * gts > UINT32_MAX) {
        rc = vd_err_set(VD_E_NOSPACE, "%s: no room for the new grain tables", x->path);
        goto out;
    }
    if ((rc = write_meta_copy(x, new_n, tpos, gd_sec2, tpos + gd_sec2)) < 0 ||
        (rc = sx_sync(x)) < 0)
        goto out;
    step(progress, ctx, 2, total);

    /* 3. First commit. */
    struct kdmv_header old = x->h;
    x->h.gd_off = tpos;
    x->h.rgd_off = 0;
    x->h.flags &= ~KDMV_FLAG_RGD;
    x->h.capacity = new_sectors;
    x->h.overhead = ovh2;
    if ((rc = sx_write_header(x)) < 0) {
        x->h = old;
        goto out;
    }
    step(progress, ctx, 3, total);

    /* 4. The standard layout over the old metadata. */
    if ((rc = write_zeros(x, ms * 512, ovh2 * 512)) < 0 ||
        (rc = write_meta_copy(x, new_n, rgd2, gd_sec2, rgd2 + gd_sec2)) < 0 ||
        (rc = write_meta_copy(x, new_n, gd2, gd_sec2, gd2 + gd_sec2)) < 0 ||
        (rc = sx_sync(x)) < 0)
        goto out;
    step(progress, ctx, 4, total);

    /* 5. Second commit. */
    x->h.gd_off = gd2;
    x->h.rgd_off = rgd2;
    x->h.flags |= KDMV_FLAG_RGD;
    x->h.unclean = (uint8_t)was_unclean;
    if ((rc = sx_write_header(x)) < 0)
        goto out;
    step(progress, ctx, 5, total);

    /* The in-memory view follows the file. */
    for (uint64_t i = 0; i < new_n; i++) {
        ngd[i] = (uint32_t)(gd2 + gd_sec2 + i * gts);
        nrgd[i] = (uint32_t)(rgd2 + gd_sec2 + i * gts);
        if (i < x->n_gd && x->gt[i]) {
            ngt[i] = x->gt[i];
            x->gt[i] = NULL;
        } else if (!(ngt[i] = calloc(N, 4))) {
            rc = vd_err_set(VD_E_NOMEM, "%s: out of memory", x->path);
            goto out;
        }
    }
    for (uint64_t i = 0; i < x->n_gd; i++) {
        free(x->gt[i]);
        if (x->rgt)
            free(x->rgt[i]);
    }
    free(x->gt);
    free(x->rgt);
    free(x->gd);
    free(x->rgd);
    free(x->dirty);
    x->gt = ngt;
    x->rgt = NULL;
    x->gd = ngd;
    x->rgd = nrgd;
    x->dirty = ndirty;
    x->rgd_broken = 0;
    ngt = NULL;
    ngd = nrgd = NULL;
    ndirty = NULL;
    x->n_gd = new_n;
    x->gd_sec = gd_sec2;

    /* 6. Drop the temporary copy (it lies after every grain). */
    uint64_t end = 0;
    for (uint64_t g = 0; g < sx_grains(x); g++) {
        uint32_t v = sx_gte(x, g);
        if (v > 1 && (uint64_t)v * 512 + gb > end)
            end = (uint64_t)v * 512 + gb;
    }
    if (end > tpos * 512)
        end = tpos * 512;
    rc = sx_truncate(x, end);
    step(progress, ctx, 6, total);
    goto out;

restore_flag:
    x->h.unclean = (uint8_t)was_unclean;
    {
        char msg[512];
        int code = vd_err_code();
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        if (sx_write_header(x) == 0)
            vd_err_set(code, "%s", msg);
    }
out:
    if (ngt) {
        for (uint64_t i = 0; i < new_n; i++)
            free(ngt[i]);
        free(ngt);
    }
    free(ngd);
    free(nrgd);
    free(ndirty);
    free(moved_to);
    free(moved_g);
    free(buf);
    return rc;
}

/* ---- the disk ------------------------------------------------------------ */

/* Read the descriptor text of a candidate file, or NULL. */
static char *probe_descriptor(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *text = NULL;
    struct stat st;
    unsigned char magic[4] = { 0 };
    if (fstat(fd, &st) < 0 || st.st_size < 4 || vd_pread_full(fd, magic, 4, 0, 1) < 0)
        goto out;
    uint64_t off = 0, n = (uint64_t)st.st_size;
    if (!memcmp(magic, "KDMV", 4)) {
        struct sparse_header_info hi;
        struct vd_file *vf = NULL;
        int hr = vd_file_from_fd(fd, 0, path, &vf);
        if (hr == 0) {
            hr = sparse_read_header_info(vf, path, &hi);
            vd_file_close(vf);
        }
        if (hr < 0 || !hi.desc_off || !hi.desc_size ||
            hi.desc_size > MAX_DESC_PROBE / 512 || hi.desc_off >= n / 512)
            goto out;
        off = hi.desc_off * 512;
        n = hi.desc_size * 512;
    } else if (n > MAX_DESC_PROBE) {
        goto out;
    }
    text = malloc(n + 1);
    if (text && vd_pread_full(fd, text, n, off, 0) < 0) {
        free(text);
        text = NULL;
    }
    if (text) {
        text[n] = '\0';
        *len = strlen(text);
    }
out:
    close(fd);
    return text;
}

static int ends_with_vmdk(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcasecmp(name + n - 5, ".vmdk") == 0;
}

/* A disk in l's directory whose parentFileNameHint names l (malloc'd). */
static char *find_child(const struct link *l)
{
    DIR *dp = opendir(l->dir);
    if (!dp)
        return NULL;
    char *found = NULL;
    struct dirent *de;
    int saved_code = vd_err_code();
    char saved[512];
    snprintf(saved, sizeof saved, "%s", vd_err_msg());
    while (!found && (de = readdir(dp)) != NULL) {
        if (!ends_with_vmdk(de->d_name))
            continue;
        char *p = vd_path_join(l->dir, de->d_name);
        struct stat st;
        if (!p || stat(p, &st) < 0 || !S_ISREG(st.st_mode) ||
            (st.st_dev == l->dev && st.st_ino == l->ino)) {
            free(p);
            continue;
        }
        size_t len = 0;
        char *text = probe_descriptor(p, &len);
        struct descriptor d = { 0 };
        if (text && strstr(text, "parentFileNameHint") && desc_parse(&d, text, len, p) == 0) {
            const char *hint = desc_get(&d, "parentFileNameHint");
            if (hint && *hint) {
                char *hp = vd_path_join(l->dir, hint);
                struct stat ps;
                int hit = hp && stat(hp, &ps) == 0 && ps.st_dev == l->dev && ps.st_ino == l->ino;
                if (!hit) {
                    const char *b = hint;
                    for (const char *c = hint; *c; c++)
                        if (*c == '/' || *c == '\\')
                            b = c + 1;
                    char *alt = vd_path_join(l->dir, b);
                    hit = alt && (!hp || stat(hp, &ps) < 0) && stat(alt, &ps) == 0 &&
                          ps.st_dev == l->dev && ps.st_ino == l->ino;
                    free(alt);
                }
                free(hp);
                if (hit)
                    found = vd_strdup(p);
            }
            desc_free(&d);
        }
        free(text);
        free(p);
    }
    closedir(dp);
    vd_err_set(saved_code, "%s", saved);
    return found;
}

/* Name of the extent file after `last` ("x-s003.vmdk" -> "x-s004.vmdk"),
 * keeping its directory part; fallback: <stem>-<letter>NNN.vmdk. */
static char *next_extent_name(const char *last, const char *desc_path, char letter, size_t index)
{
    size_t n = strlen(last);
    if (n > 5 && strcasecmp(last + n - 5, ".vmdk") == 0) {
        size_t e = n - 5, b = e;
        while (b > 0 && last[b - 1] >= '0' && last[b - 1] <= '9')
            b--;
        if (b < e && e - b <= 9) {
            unsigned long v = strtoul(last + b, NULL, 10) + 1;
            return vd_asprintf("%.*s%0*lu%s", (int)b, last, (int)(e - b), v, last + e);
        }
    }
    char *stem = vd_path_stem(vd_path_base(desc_path));
    char *r = stem ? vd_asprintf("%s-%c%03zu.vmdk", stem, letter, index) : NULL;
    free(stem);
    return r;
}

static int extend_file(int fd, const char *path, uint64_t bytes, int thick)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    if ((uint64_t)st.st_size >= bytes)
        return 0;
    if (thick && fallocate(fd, 0, st.st_size, (off_t)(bytes - (uint64_t)st.st_size)) == 0)
        return fsync(fd) < 0 ? vd_err_errno(errno, "%s: sync", path) : 0;
    if (ftruncate(fd, (off_t)bytes) < 0)
        return vd_err_errno(errno, "%s: extending to %" PRIu64 " bytes", path, bytes);
    return fsync(fd) < 0 ? vd_err_errno(errno, "%s: sync", path) : 0;
}

struct newfile {
    char *path;    /* full path, removed again on failure */
    char *name;    /* as written in the descriptor */
    uint64_t sectors;
};

static int create_extent_file(const struct newfile *nf, int sparse, uint32_t grain, int thick)
{
    int fd = open(nf->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? vd_err_set(VD_E_EXISTS, "%s: file already exists (left by an "
                                            "interrupted grow?); remove it first", nf->path)
                               : vd_err_errno(errno, "%s: cannot create", nf->path);
    int rc = 0;
    if (sparse) {
        struct sparse_layout lay;
        sparse_layout_compute(nf->sectors, grain, 0, &lay);
        rc = sparse_extent_write_new(fd, nf->path, &lay, NULL, 0);
        if (rc == 0 && fsync(fd) < 0)
            rc = vd_err_errno(errno, "%s: sync", nf->path);
    } else {
        rc = extend_file(fd, nf->path, nf->sectors * 512, thick);
    }
    close(fd);
    return rc;
}

static int set_geometry(struct link *l, uint64_t bytes)
{
    const char *a = desc_get(&l->desc, "ddb.adapterType");
    enum vmdk_adapter ad = a ? vmdk_adapter_from_name(a) : VMDK_ADAPTER_IDE;
    if (ad == VMDK_ADAPTER_UNKNOWN)
        ad = VMDK_ADAPTER_LSILOGIC;
    struct vmdk_geometry g;
    vmdk_geometry_for(bytes, ad, &g);
    char buf[32];
    int rc;
    snprintf(buf, sizeof buf, "%u", g.cylinders);
    if ((rc = desc_set(&l->desc, "ddb.geometry.cylinders", buf)) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%u", g.heads);
    if ((rc = desc_set(&l->desc, "ddb.geometry.heads", buf)) < 0)
        return rc;
    snprintf(buf, sizeof buf, "%u", g.sectors);
    return desc_set(&l->desc, "ddb.geometry.sectors", buf);
}

/* The sparse steps of sx_grow as 10..80 of the disk's 0..100. */
struct sub {
    vmdk_progress_fn fn;
    void *ctx;
};

static int sub_step(void *ctx, uint64_t done, uint64_t total)
{
    struct sub *s = ctx;
    return s->fn(s->ctx, 10 + (total ? done * 70 / total : 70), 100);
}

int vmdk_grow(const char *path, uint64_t capacity, int update_geometry,
              vmdk_progress_fn progress, void *ctx)
{
    vd_err_clear();
    if (!path || !*path)
        return vd_err_set(VD_E_INVAL, "no disk path given");
    uint64_t new_sectors = capacity / 512 + (capacity % 512 != 0);
    if (new_sectors == 0 || new_sectors > (1ull << 46))
        return vd_err_set(VD_E_INVAL, "%s: capacity %" PRIu64 " bytes is out of range", path,
                          capacity);
    struct link *l;
    int rc = link_open(path, 1, 1, 0, &l);
    if (rc == -VD_E_READONLY) {
        /* Refused for writing: a streamOptimized disk deserves the reason. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        struct link *ro;
        if (link_open(path, 0, 1, 0, &ro) == 0) {
            if (ro->type == VMDK_TYPE_STREAM_OPTIMIZED)
                rc = vd_err_set(VD_E_UNSUPPORTED, "%s: a streamOptimized disk cannot grow; "
                                "clone it to another type first", path);
            link_close(ro);
        }
        if (rc == -VD_E_READONLY)
            vd_err_set(VD_E_READONLY, "%s", msg);
    }
    if (rc < 0)
        return rc;
    struct newfile *nf = NULL;
    size_t nnew = 0, created = 0;
    struct sx x;
    int have_sx = 0;
    memset(&x, 0, sizeof x);
    uint64_t old_sectors = l->capacity / 512;
    if (l->type == VMDK_TYPE_STREAM_OPTIMIZED) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: a streamOptimized disk cannot grow; clone it to "
                        "another type first", path);
        goto out;
    }
    if (new_sectors < old_sectors) {
        rc = vd_err_set(VD_E_INVAL, "%s: new capacity %" PRIu64 " sectors is smaller than the "
                        "current %" PRIu64 " (Grow cannot reduce a disk)", path, new_sectors,
                        old_sectors);
        goto out;
    }
    size_t nx = l->next;
    struct extent *last = &l->ext[nx - 1];
    struct desc_extent *dl = desc_extent(&l->desc, nx - 1);
    int sparse = extent_is_hosted_sparse(last);
    int flat = !strcmp(last->kind, "FLAT") || !strcmp(last->kind, "VMFS");
    if (new_sectors > old_sectors && !sparse && !flat) {
        rc = vd_err_set(VD_E_UNSUPPORTED, "%s: its last extent is %s; only hosted sparse, "
                        "FLAT and VMFS extents can grow", path, last->kind);
        goto out;
    }
    if (new_sectors > old_sectors) {
        char *child = find_child(l);
        if (child) {
            rc = vd_err_set(VD_E_UNSUPPORTED, "%s: %s is a child of this disk; growing a disk "
                            "that has children would break them", path, child);
            free(child);
            goto out;
        }
    }
    for (size_t i = 0; flat && i + 1 < nx; i++) {
        if (l->ext[i].path && last->path && !strcmp(l->ext[i].path, last->path)) {
            rc = vd_err_set(VD_E_UNSUPPORTED, "%s: its last extent shares %s with another "
                            "extent and cannot grow in place", path, last->path);
            goto out;
        }
    }

    /* Plan: how much the last extent takes, then new extents. */
    uint64_t add = new_sectors - old_sectors, grow_last = add;
    int split = l->type == VMDK_TYPE_SPLIT_SPARSE || l->type == VMDK_TYPE_SPLIT_FLAT;
    uint32_t grain = 128;
    if (sparse) {
        struct sparse *s = last->priv;
        grain = (uint32_t)s->grain;
        if ((rc = sx_load(&x, last->fd, last->path)) < 0)
            goto out;
        have_sx = 1;
        struct sx_report rep = { .path = last->path };
        if ((rc = sx_check(&x, 0, 0, 1, &rep)) < 0)
            goto out;
        if (rep.problems) {
            rc = vd_err_set(VD_E_NEEDSREPAIR, "%s: %u metadata inconsistencies; run CheckRepair "
                            "before growing", last->path, rep.problems);
            goto out;
        }
        if (x.h.capacity != dl->sectors) {
            rc = vd_err_set(VD_E_NEEDSREPAIR, "%s: descriptor says %" PRIu64 " sectors, header "
                            "%" PRIu64 "; run CheckRepair before growing", last->path,
                            dl->sectors, x.h.capacity);
            goto out;
        }
    }
    if (split && add) {
        uint64_t per = nx >= 2 ? desc_extent(&l->desc, 0)->sectors : DEFAULT_SPLIT_SECTORS;
        if (sparse)
            per = per / grain * grain;
        if (per == 0)
            per = DEFAULT_SPLIT_SECTORS;
        grow_last = dl->sectors < per ? per - dl->sectors : 0;
        if (grow_last > add)
            grow_last = add;
        uint64_t rest = add - grow_last;
        nnew = (size_t)((rest + per - 1) / per);
        if (nnew > 100000) {
            rc = vd_err_set(VD_E_INVAL, "%s: the new capacity needs too many extents", path);
            goto out;
        }
        nf = calloc(nnew ? nnew : 1, sizeof *nf);
        if (!nf) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out;
        }
        const char *prev = dl->file;
        for (size_t i = 0; i < nnew; i++) {
            nf[i].sectors = i + 1 < nnew ? per : rest - per * (nnew - 1);
            nf[i].name = next_extent_name(prev, path, sparse ? 's' : 'f', nx + i + 1);
            nf[i].path = nf[i].name ? vd_path_join(l->dir, nf[i].name) : NULL;
            if (!nf[i].name || !nf[i].path) {
                rc = vd_err_set(VD_E_NOMEM, "out of memory");
                goto out;
            }
            prev = nf[i].name;
        }
    }
    if (!step(progress, ctx, 0, 100)) {
        rc = vd_err_set(VD_E_CANCELLED, "%s: grow cancelled by the progress callback", path);
        goto out;
    }

    /* 1. New extent files. */
    int thick = l->type != VMDK_TYPE_VMFS_THIN;
    for (; created < nnew; created++)
        if ((rc = create_extent_file(&nf[created], sparse, grain, thick)) < 0)
            goto out;
    step(progress, ctx, 10, 100);
    /* 2. The last extent. */
    if (grow_last) {
        struct sub sb = { progress, ctx };
        if (sparse)
            rc = sx_grow(&x, dl->sectors + grow_last, progress ? sub_step : NULL, &sb);
        else
            rc = extend_file(last->fd, last->path,
                             last->file_off + (dl->sectors + grow_last) * 512, thick);
        if (rc < 0)
            goto out;
    }
    step(progress, ctx, 80, 100);
    /* 3. The descriptor: the commit. */
    dl->sectors += grow_last;
    if ((rc = desc_extent_changed(&l->desc, nx - 1)) < 0)
        goto out;
    for (size_t i = 0; i < nnew; i++) {
        struct desc_extent e = {
            .access = DESC_RW, .sectors = nf[i].sectors, .type = dl->type,
            .file = nf[i].name, .offset = 0, .has_offset = !sparse && dl->has_offset,
        };
        if ((rc = desc_add_extent(&l->desc, &e)) < 0)
            goto out;
    }
    if (update_geometry && (rc = set_geometry(l, new_sectors * 512)) < 0)
        goto out;
    if ((rc = link_write_descriptor(l)) < 0)
        goto out;
    created = 0;              /* part of the disk now */
    step(progress, ctx, 100, 100);
out:
    if (rc < 0 && created) {
        char msg[1024];
        int code = vd_err_code();
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        for (size_t i = 0; i < created; i++)
            unlink(nf[i].path);
        vd_err_set(code, "%s", msg);
    }
    for (size_t i = 0; nf && i < nnew; i++) {
        free(nf[i].name);
        free(nf[i].path);
    }
    free(nf);
    if (have_sx)
        sx_free(&x);
    link_close(l);
    return rc;
}
