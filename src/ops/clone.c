/* clone.c - copy a disk (any vdisk: a chain, a single link, a remote disk)
 * into a new disk of a chosen type.
 *
 * Only data runs of the source are read and all-zero blocks are not
 * written, so sparse destinations stay sparse.  The destination is built
 * under a hidden temporary name in the destination directory and linked
 * into place only when complete: an interrupted clone leaves either no
 * destination or a whole one, and never touches the source.
 *
 * streamOptimized destinations go through a pipeline: worker threads (one
 * per core) read and compress batches of grains, the calling thread writes
 * them in order.  Memory is bounded by the number of batches in flight,
 * whatever the size of the disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops.h"
#include "../plugin/vdplugin.h"
#include "../util/fileio.h"
#include "../vmdk/link.h"

#define COPY_CHUNK (1u << 20)
#define ZERO_UNIT (64u << 10)
#define GRAIN VMDK_STREAM_GRAIN_BYTES
#define BATCH_GRAINS 16u                 /* 1 MiB per batch */
#define BATCH_BYTES ((uint64_t)GRAIN * BATCH_GRAINS)
#define MAX_WORKERS 8
#define COMPRESSION_LEVEL 6

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

static int copy_all(struct vdisk *src, vmdk_disk *dst, struct progress *pr)
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
                rc = vmdk_pwrite(dst, buf + u, end_u - u, off + u);
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
    vmdk_disk *d;
    if ((rc = vmdk_open(tmp, 0, &d)) < 0)
        return rc;
    rc = copy_all(src, d, pr);
    if (rc == 0)
        rc = vmdk_flush(d);
    int crc = vmdk_close(d);
    return rc ? rc : crc;
}

/* ---- streamOptimized: the compression pipeline ------------------------- */

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
    enum slot_state state;
    uint64_t batch;
    unsigned char *raw;                  /* BATCH_BYTES */
    unsigned char *z;                    /* BATCH_GRAINS * zbound */
    size_t zlen[BATCH_GRAINS];           /* 0: grain is all zero */
};

struct pipeline {
    struct vdisk *src;
    uint64_t nbatches;
    size_t zbound;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct slot *slots;
    int nslots;
    uint64_t next;                       /* next batch to claim */
    int stop;
    int err;                             /* first worker error */
    char errmsg[1024];
};

/* Read and compress one batch into s. */
static int do_batch(struct pipeline *pl, struct slot *s, struct libdeflate_compressor *c)
{
    struct vdisk *src = pl->src;
    uint64_t off = s->batch * BATCH_BYTES;
    uint64_t len = src->capacity - off < BATCH_BYTES ? src->capacity - off : BATCH_BYTES;
    memset(s->zlen, 0, sizeof s->zlen);
    /* Skip the read when the whole batch holds no data. */
    uint64_t run;
    int st, rc = src->ops->block_status(src, off, len, 0, &run, &st);
    if (rc < 0)
        return rc;
    if (st != VMDK_DATA && run >= len)
        return 0;
    if ((rc = src->ops->pread(src, s->raw, len, off)) < 0)
        return rc;
    if (len < BATCH_BYTES)                 /* the last grain is compressed whole */
        memset(s->raw + len, 0, BATCH_BYTES - len);
    unsigned ngr = (unsigned)((len + GRAIN - 1) / GRAIN);
    for (unsigned g = 0; g < ngr; g++) {
        const unsigned char *in = s->raw + (size_t)g * GRAIN;
        if (vd_is_zero(in, GRAIN))
            continue;
        size_t n = libdeflate_zlib_compress(c, in, GRAIN, s->z + g * pl->zbound, pl->zbound);
        if (!n)
            return vd_err_set(VD_E_IO, "compressing grain %llu failed",
                              (unsigned long long)(s->batch * BATCH_GRAINS + g));
        s->zlen[g] = n;
    }
    return 0;
}

static void *worker(void *arg)
{
    struct pipeline *pl = arg;
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(COMPRESSION_LEVEL);
    pthread_mutex_lock(&pl->lock);
    if (!c && !pl->err) {
        pl->err = VD_E_NOMEM;
        snprintf(pl->errmsg, sizeof pl->errmsg, "out of memory for a compressor");
        pl->stop = 1;
        pthread_cond_broadcast(&pl->cond);
    }
    for (;;) {
        while (!pl->stop && pl->next < pl->nbatches &&
               pl->slots[pl->next % (uint64_t)pl->nslots].state != SLOT_FREE)
            pthread_cond_wait(&pl->cond, &pl->lock);
        if (pl->stop || pl->next >= pl->nbatches)
            break;
        struct slot *s = &pl->slots[pl->next % (uint64_t)pl->nslots];
        s->batch = pl->next++;
        s->state = SLOT_BUSY;
        pthread_mutex_unlock(&pl->lock);
        int rc = do_batch(pl, s, c);
        pthread_mutex_lock(&pl->lock);
        if (rc < 0 && !pl->err) {
            pl->err = -rc;
            snprintf(pl->errmsg, sizeof pl->errmsg, "%s", vd_err_msg());
            pl->stop = 1;
        }
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&pl->cond);
    }
    pthread_mutex_unlock(&pl->lock);
    if (c)
        libdeflate_free_compressor(c);
    return NULL;
}

static int workers_wanted(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (int)n;
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

    struct pipeline pl = { .src = src };
    pl.nbatches = (src->capacity + BATCH_BYTES - 1) / BATCH_BYTES;
    pl.zbound = libdeflate_zlib_compress_bound(NULL, GRAIN);
    int nw = workers_wanted();
    pl.nslots = 2 * nw + 2;
    pthread_mutex_init(&pl.lock, NULL);
    pthread_cond_init(&pl.cond, NULL);
    pl.slots = calloc((size_t)pl.nslots, sizeof *pl.slots);
    int ok = pl.slots != NULL;
    for (int i = 0; ok && i < pl.nslots; i++) {
        pl.slots[i].raw = malloc(BATCH_BYTES);
        pl.slots[i].z = malloc(BATCH_GRAINS * pl.zbound);
        ok = pl.slots[i].raw && pl.slots[i].z;
    }
    pthread_t th[MAX_WORKERS];
    int started = 0;
    if (!ok) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory for the compression pipeline");
    } else {
        for (; started < nw; started++)
            if (pthread_create(&th[started], NULL, worker, &pl) != 0)
                break;
        if (!started)
            rc = vd_err_set(VD_E_NOMEM, "cannot start compression threads");
    }
    if (rc == 0)
        rc = report(pr, 0, src->capacity);

    /* Write batches in order as they complete. */
    for (uint64_t k = 0; rc == 0 && k < pl.nbatches; k++) {
        struct slot *s = &pl.slots[k % (uint64_t)pl.nslots];
        pthread_mutex_lock(&pl.lock);
        while (!pl.err && !(s->state == SLOT_DONE && s->batch == k))
            pthread_cond_wait(&pl.cond, &pl.lock);
        if (pl.err) {
            rc = vd_err_set(pl.err, "%s", pl.errmsg);
            pthread_mutex_unlock(&pl.lock);
            break;
        }
        pthread_mutex_unlock(&pl.lock);
        for (unsigned g = 0; rc == 0 && g < BATCH_GRAINS; g++)
            if (s->zlen[g])
                rc = vmdk_stream_add_grain(w, k * BATCH_GRAINS + g, s->z + g * pl.zbound,
                                           s->zlen[g]);
        pthread_mutex_lock(&pl.lock);
        s->state = SLOT_FREE;
        pthread_cond_broadcast(&pl.cond);
        pthread_mutex_unlock(&pl.lock);
        uint64_t done = (k + 1) * BATCH_BYTES;
        if (rc == 0)
            rc = report(pr, done < src->capacity ? done : src->capacity, src->capacity);
    }

    pthread_mutex_lock(&pl.lock);
    pl.stop = 1;
    pthread_cond_broadcast(&pl.cond);
    pthread_mutex_unlock(&pl.lock);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; pl.slots && i < pl.nslots; i++) {
        free(pl.slots[i].raw);
        free(pl.slots[i].z);
    }
    free(pl.slots);
    pthread_mutex_destroy(&pl.lock);
    pthread_cond_destroy(&pl.cond);
    if (rc < 0) {
        vmdk_stream_abort(w);
        return rc;
    }
    return vmdk_stream_finish(w);
}

/* ---- placing the result -------------------------------------------------- */

/* "<dir>/.<name>.partial-XXXXXX.vmdk": hidden, unique, same directory (so
 * the final link is a rename within one filesystem). */
static char *temp_name(const char *dst)
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

/* A clone that was killed leaves its hidden temporary disk behind, and
 * only a later clone can tidy up.  Before a clone to dst, remove the
 * temporaries of the same name that nobody holds: a running clone keeps
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

static void sweep_stale_temps(const char *dst)
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
    sweep_stale_temps(dst);
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
    char *tmp = temp_name(dst);
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
        if (link(tmp, dst) < 0)
            rc = vd_err_errno(errno, "%s: cannot create", dst);
        unlink(tmp);
    } else {
        rc = ops_rename(tmp, dst);
        if (rc < 0)
            remove_keeping_error(tmp, 0);
    }
    free(tmp);
    return rc;
}
