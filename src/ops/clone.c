/* clone.c - copy a disk (any vdisk: a chain, a single link, a remote disk)
 * into a new disk of a chosen type.
 *
 * Only data runs of the source are read and all-zero blocks are not
 * written, so sparse destinations stay sparse.  The destination is built
 * under a hidden temporary name in the destination directory and linked
 * into place only when complete: an interrupted clone leaves either no
 * destination or a whole one, and never touches the source.
 *
 * streamOptimized destinations go through the pipeline of stream_pipe.c:
 * worker threads (one per core) read and compress batches of grains, the
 * calling thread writes them in order.  Memory is bounded by the number of
 * batches in flight, whatever the size of the disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "stream_pipe.h"
#include "../plugin/vdplugin.h"
#include "../util/fileio.h"
#include "../vmdk/link.h"

#define COPY_CHUNK (1u << 20)
#define ZERO_UNIT (64u << 10)

struct progress {
    ops_progress_fn fn;
    void *data;
    int last;
};

static int report(struct progress *pr, uint64_t done, uint64_t total)
{
    int pct = total ? (int)(done * 100 / total) : 100;
    if (!pr->fn || pct == pr->last)
        return 0;
    pr->last = pct;
    if (!pr->fn(pr->data, pct))
        return vd_err_set(VD_E_CANCELLED, "clone cancelled by the progress callback at %d%%",
                          pct);
    return 0;
}

/* ---- plain destinations ------------------------------------------------ */

/* Bytes from disk offset pos to the next 64 KiB boundary, at most left. */
static size_t unit_len(uint64_t pos, size_t left)
{
    size_t to_boundary = ZERO_UNIT - (size_t)(pos % ZERO_UNIT);
    return left < to_boundary ? left : to_boundary;
}

static int copy_all(struct vdisk *src, struct vdisk *dst, struct progress *pr)
{
    uint64_t cap = src->capacity, off = 0;
    int rc = report(pr, 0, cap);
    unsigned char *buf = malloc(COPY_CHUNK);
    if (!buf)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    while (rc == 0 && off < cap) {
        uint64_t run;
        int st;
        if ((rc = src->ops->block_status(src, off, cap - off, 0, &run, &st)) < 0)
            break;
        uint64_t end = off + run;
        while (st == VMDK_DATA && off < end && rc == 0) {
            size_t n = end - off < COPY_CHUNK ? (size_t)(end - off) : COPY_CHUNK;
            if ((rc = src->ops->pread(src, buf, n, off)) < 0)
                break;
            /* Write only the non-zero parts: runs of 64 KiB units (aligned
             * to the disk, so a unit never straddles two grains) that are
             * not all zero, each run in one call. */
            for (size_t u = 0; u < n && rc == 0;) {
                size_t m = unit_len(off + u, n - u);
                if (vd_is_zero(buf + u, m)) {
                    u += m;
                    continue;
                }
                size_t end_u = u + m;
                while (end_u < n) {
                    size_t k = unit_len(off + end_u, n - end_u);
                    if (vd_is_zero(buf + end_u, k))
                        break;
                    end_u += k;
                }
                rc = dst->ops->pwrite(dst, buf + u, end_u - u, off + u);
                u = end_u;
            }
            off += n;
            if (rc == 0)
                rc = report(pr, off, cap);
        }
        off = end;
        if (rc == 0)
            rc = report(pr, off, cap);
    }
    free(buf);
    return rc;
}

static int clone_plain(struct vdisk *src, const char *tmp, const struct vmdk_create_params *p,
                       struct progress *pr)
{
    int rc = vmdk_create(tmp, p);
    if (rc < 0)
        return rc;
    struct vdisk *d;
    if ((rc = vdisk_open_local(tmp, 0, &d)) < 0)
        return rc;
    rc = copy_all(src, d, pr);
    if (rc == 0)
        rc = d->ops->flush(d);
    int crc = d->ops->close(d);
    return rc ? rc : crc;
}

int ops_copy_data(struct vdisk *src, struct vdisk *dst, ops_progress_fn progress, void *data)
{
    struct progress pr = { progress, data, -1 };
    return copy_all(src, dst, &pr);
}

/* ---- streamOptimized: the compression pipeline (stream_pipe.c) ---------- */

/* Pull-mode filler: read batch b of the source on a worker thread. */
static int fill_from_source(void *ctx, struct sp_batch *b)
{
    struct vdisk *src = ctx;
    uint64_t off = b->index * SP_BATCH_BYTES;
    uint64_t len = src->capacity - off < SP_BATCH_BYTES ? src->capacity - off : SP_BATCH_BYTES;
    b->len = 0;
    /* Skip the read when the whole batch holds no data. */
    uint64_t run;
    int st, rc = src->ops->block_status(src, off, len, 0, &run, &st);
    if (rc < 0)
        return rc;
    if (st != VMDK_DATA && run >= len)
        return 0;
    if ((rc = src->ops->pread(src, b->raw, len, off)) < 0)
        return rc;
    b->len = (size_t)len;
    return 0;
}

static int clone_stream(struct vdisk *src, const char *tmp, const char *final_name,
                        const struct vmdk_create_params *p, struct progress *pr)
{
    struct vmdk_create_params cp = *p;
    char *desc;
    size_t dlen;
    int rc = vmdk_stream_descriptor(final_name, &cp, &desc, &dlen);
    if (rc < 0)
        return rc;
    struct vmdk_stream *w;
    rc = vmdk_stream_create(tmp, desc, dlen, src->capacity, &w);
    free(desc);
    if (rc < 0)
        return rc;

    uint64_t nbatches = (src->capacity + SP_BATCH_BYTES - 1) / SP_BATCH_BYTES;
    struct stream_pipe *pl = NULL;
    rc = sp_start(w, fill_from_source, src, nbatches, &pl);
    if (rc == 0)
        rc = report(pr, 0, src->capacity);
    /* Write batches in order as they complete. */
    for (uint64_t k = 0; rc == 0 && k < nbatches; k++) {
        rc = sp_write_next(pl);
        uint64_t done = (k + 1) * SP_BATCH_BYTES;
        if (rc == 0)
            rc = report(pr, done < src->capacity ? done : src->capacity, src->capacity);
    }
    sp_stop(pl);
    if (rc < 0) {
        vmdk_stream_abort(w);
        return rc;
    }
    return vmdk_stream_finish(w);
}

/* ---- placing the result -------------------------------------------------- */

/* "<dir>/.<name>.partial-XXXXXX.vmdk": hidden, unique, same directory (so
 * the final link is a rename within one filesystem). */
char *ops_temp_name(const char *dst)
{
    char *dir = vd_path_dir(dst), *stem = vd_path_stem(vd_path_base(dst));
    char *t = NULL;
    if (dir && stem) {
        unsigned r;
        vd_random(&r, sizeof r);
        t = vd_asprintf("%s/.%s.partial-%08x.vmdk", dir, stem, r);
    }
    free(dir);
    free(stem);
    return t;
}

/* Is name one of our temporaries for stem: 1 for a descriptor
 * ".<stem>.partial-XXXXXXXX.vmdk" (".plugin-" for the plugin path), 2 for
 * an extent file of one (".<stem>.partial-XXXXXXXX-flat.vmdk", "-s001",
 * ...), with *desc_len the length of the descriptor's name before
 * ".vmdk"; 0 otherwise. */
static int temp_kind(const char *name, const char *stem, size_t *desc_len)
{
    size_t sl = strlen(stem), nl = strlen(name);
    if (name[0] != '.' || strncmp(name + 1, stem, sl) != 0 || name[1 + sl] != '.')
        return 0;
    const char *p = name + 2 + sl;
    if (strncmp(p, "partial-", 8) == 0)
        p += 8;
    else if (strncmp(p, "plugin-", 7) == 0)
        p += 7;
    else
        return 0;
    for (int i = 0; i < 8; i++, p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    *desc_len = (size_t)(p - name);
    if (strcmp(p, ".vmdk") == 0)
        return 1;
    return p[0] == '-' && nl > 5 && strcmp(name + nl - 5, ".vmdk") == 0 ? 2 : 0;
}

/* A clone (or a one-pass stream, stream_out.c) that was killed leaves its
 * hidden temporary disk behind, and only a later one can tidy up.  Before
 * one to dst, remove the temporaries of the same name that nobody holds: a
 * running clone keeps
 * its temporary descriptor locked, and the moment between making the
 * files and opening them is covered by leaving anything modified in the
 * last STALE_SECONDS alone.  Extent files whose descriptor is gone (a
 * clone killed while creating them) go too.  Best effort: failures change
 * nothing. */
#define STALE_SECONDS 600

/* Old enough and not locked by anyone. */
static int is_stale(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    struct stat st;
    int stale = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                time(NULL) - st.st_mtime >= STALE_SECONDS && vd_lock_fd(fd, 1, path) == 0;
    close(fd);
    return stale;
}

void ops_sweep_temps(const char *dst)
{
    char *dir = vd_path_dir(dst), *stem = vd_path_stem(vd_path_base(dst));
    /* Pass 1: whole temporary disks; pass 2: extents left without one. */
    for (int pass = 1; pass <= 2 && dir && stem; pass++) {
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            size_t dl;
            if (temp_kind(de->d_name, stem, &dl) != pass)
                continue;
            char *path = vd_path_join(dir, de->d_name);
            char *desc = pass == 2 ? vd_asprintf("%s/%.*s.vmdk", dir, (int)dl, de->d_name)
                                   : NULL;
            if (path && (pass == 1 || (desc && access(desc, F_OK) != 0)) && is_stale(path)) {
                /* A stream temporary is one file with no valid header
                 * yet: if it cannot be opened as a disk, it goes alone. */
                if (pass == 2 || ops_unlink(path) < 0)
                    unlink(path);
                vdplugin_log("Clone %s: removed %s, left by a clone that did not finish", dst,
                             path);
            }
            free(path);
            free(desc);
        }
        if (d)
            closedir(d);
    }
    free(dir);
    free(stem);
    vd_err_clear();
}

int ops_link_temp(const char *tmp, const char *dst)
{
    int rc = 0;
    if (link(tmp, dst) < 0)
        rc = vd_err_errno(errno, "%s: cannot create", dst);
    unlink(tmp);
    if (rc < 0)
        return rc;
    char *dir = vd_path_dir(dst);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd < 0 || fsync(dfd) < 0) {
        rc = dir ? vd_err_errno(errno, "%s: syncing the directory %s", dst, dir)
                 : vd_err_set(VD_E_NOMEM, "out of memory");
        unlink(dst);
    }
    if (dfd >= 0)
        close(dfd);
    free(dir);
    return rc;
}

/* Keep the first error's message while cleaning up after it. */
static void remove_keeping_error(const char *tmp, int stream)
{
    char msg[1024];
    int code = vd_err_code();
    snprintf(msg, sizeof msg, "%s", vd_err_msg());
    if (stream)
        unlink(tmp);
    else
        ops_unlink(tmp);
    vd_err_set(code, "%s", msg);
}

int ops_clone(struct vdisk *src, const char *dst, const struct vmdk_create_params *p,
              ops_progress_fn progress, void *data, int overwrite)
{
    if (!src || !dst || !*dst || !p)
        return vd_err_set(VD_E_INVAL, "clone needs a source, a destination and parameters");
    /* The temporary disk is made under another name: check dst's own. */
    int nrc = vd_check_desc_name(dst, vd_path_base(dst), NULL);
    if (nrc < 0)
        return nrc;
    ops_sweep_temps(dst);
    /* NAS plugin fast path (clone_plugin.c): flat disks cloned by the
     * storage; -VD_E_UNSUPPORTED means copy here as usual. */
    int prc = ops_clone_via_plugin(src, NULL, dst, p, progress, data, overwrite);
    if (prc != -VD_E_UNSUPPORTED)
        return prc;
    struct vmdk_create_params cp = *p;
    cp.capacity = src->capacity;
    int exists = access(dst, F_OK) == 0;
    if (exists && !overwrite)
        return vd_err_set(VD_E_EXISTS, "%s: destination already exists", dst);
    int stream = cp.type == VMDK_TYPE_STREAM_OPTIMIZED;
    char *tmp = ops_temp_name(dst);
    if (!tmp)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    struct progress pr = { progress, data, -1 };
    int rc = stream ? clone_stream(src, tmp, vd_path_base(dst), &cp, &pr)
                    : clone_plain(src, tmp, &cp, &pr);
    if (rc < 0) {
        remove_keeping_error(tmp, stream);
        free(tmp);
        return rc;
    }
    /* Complete: replace an old destination, then link the new one in. */
    if (exists && (rc = ops_unlink(dst)) < 0) {
        remove_keeping_error(tmp, stream);
        free(tmp);
        return rc;
    }
    if (stream) {
        rc = ops_link_temp(tmp, dst);
    } else {
        rc = ops_rename(tmp, dst);
        if (rc < 0)
            remove_keeping_error(tmp, 0);
    }
    free(tmp);
    return rc;
}
