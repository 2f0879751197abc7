/* cmd_backup.c - `vddk backup`, `vddk verify` and `vddk restore`: whole VMs
 * from vSphere into backup sets and back (the set's layout: manifest.h).
 *
 * backup: for every VM, remove snapshots an earlier killed run of ours left
 * behind, take a snapshot (no memory, no quiescing), write the VM's
 * configuration, and queue its disks; worker threads copy the disks (at
 * most --per-host at a time from one ESXi host), each read once: its
 * allocated blocks are read with several requests in flight, hashed, and
 * written compressed (streamOptimized, one pass) or sparse, or - with
 * --base - only the blocks whose hash differs from the base set's into a
 * sparse child of the base set's disk.  The main thread owns the vSphere
 * session: it removes a VM's snapshot as soon as its last disk is done,
 * and every snapshot it made on failure or interruption.  The set is built
 * in DIR.partial-PID and renamed to DIR when complete. */
#include "vddk.h"
#include "manifest.h"
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)
#define SNAP_NAME "openvddk-backup"
#define REMOTE_READERS 4
#define LOCAL_READERS 2

#ifndef OPENVDDK_VERSION
#define OPENVDDK_VERSION "0"
#endif

/* ---- small helpers ------------------------------------------------------------ */

static volatile sig_atomic_t got_signal;
static struct sigaction old_int, old_term, old_hup;

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
}

static void release_signals(void)
{
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
}

static void iso_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t w = write(fd, text + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    if (fsync(fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return close(fd);
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = xasprintf("%s/%s", path, e->d_name);
        if (p) {
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(p);
            else
                unlink(p);
            free(p);
        }
    }
    closedir(d);
    rmdir(path);
}

/* Path of to relative to directory from (both absolute and canonical). */
static char *relative_path(const char *from, const char *to)
{
    /* Skip the common leading components. */
    size_t i = 0, cut = 0;
    for (;;) {
        char f = from[i], t = to[i];
        if ((f == '/' || !f) && (t == '/' || !t))
            cut = i;
        if (!f || !t || f != t)
            break;
        i++;
    }
    size_t ups = 0;
    for (const char *p = from + cut; *p; p++)
        if (*p == '/' && p[1] && p[1] != '/')
            ups++;
    const char *rest = to + cut;
    while (*rest == '/')
        rest++;
    char *out = malloc(ups * 3 + strlen(rest) + 2);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t k = 0; k < ups; k++) {
        memcpy(o, "../", 3);
        o += 3;
    }
    strcpy(o, rest);
    size_t l = strlen(out);
    if (l && out[l - 1] == '/')
        out[l - 1] = '\0';
    if (!*out)
        strcpy(out, ".");
    return out;
}

/* A directory that does not exist yet: the canonical path of its parent
 * joined with its name. */
static char *canonical_new(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return NULL;
    size_t l = strlen(copy);
    while (l > 1 && copy[l - 1] == '/')
        copy[--l] = '\0';
    char *slash = strrchr(copy, '/');
    const char *name = slash ? slash + 1 : copy;
    char *parent = slash ? (slash == copy ? strdup("/") : strndup(copy, (size_t)(slash - copy)))
                         : strdup(".");
    char *rp = parent ? realpath(parent, NULL) : NULL;
    char *out = NULL;
    if (rp && *name && strcmp(name, ".") && strcmp(name, ".."))
        out = xasprintf("%s%s%s", rp, strcmp(rp, "/") ? "/" : "", name);
    free(rp);
    free(parent);
    free(copy);
    return out;
}

static int pid_alive(long pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* ---- the backup's state ------------------------------------------------------- */

struct bvm;

struct bdisk {
    struct bvm *vm;
    const vddk_vsphere_disk *src;      /* the disk as the snapshot records it */
    struct mf_disk *out;               /* its manifest entry */
    const struct mf_disk *base;        /* the base set's entry, or NULL */
    char *base_path;                   /* the base set's disk file */
    volatile uint64_t done;            /* bytes scanned */
    int state;                         /* 0 queued, 1 running, 2 done */
    double seconds;
};

struct bvm {
    char *moref;
    const vddk_vsphere_vm *info;       /* from the snapshot's listing */
    vddk_vsphere_vm *list;             /* owns info */
    char *snapshot;                    /* ours, while it exists */
    VixDiskLibConnectParams cp;
    char vmspec[160];
    struct bdisk *disks;
    size_t ndisks, pending;
    int prepared, finished, snapshot_removed;
    struct mf_vm *out;
};

struct hostcount {
    char *host;
    int running;
};

struct backup {
    /* options */
    const char *set, *base_dir, *modes;
    int stream, per_host, parallel, json, progress;
    /* derived */
    char *final_dir, *tmp_dir;         /* canonical */
    struct manifest *basem;
    char *base_rel;                    /* base set relative to the set */
    char *base_abs;                    /* canonical base set directory */
    char hostname[256];
    char started[32];
    const VixDiskLibConnectParams *cp;
    vddk_vsphere_session *sess;
    struct bvm *vms;
    size_t nvms;
    /* the queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int all_queued, stop, failed;
    char errmsg[1024];
    struct hostcount *hosts;
    size_t nhosts;
    /* totals */
    uint64_t disks_done, disks_total;
    struct manifest m;
};

static void fail_locked(struct backup *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_locked(struct backup *b, const char *fmt, ...)
{
    if (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->errmsg, sizeof b->errmsg, fmt, ap);
        va_end(ap);
        b->failed = 1;
    }
    b->stop = 1;
    pthread_cond_broadcast(&b->cond);
}

static const char *vix_detail(VixError e, char *buf, size_t n)
{
    const char *d = NULL;
    vddk_disk_last_error(&d);
    if (d && *d) {
        snprintf(buf, n, "%s", d);
    } else {
        char *t = VixDiskLib_GetErrorText(e, NULL);
        snprintf(buf, n, "%s (error %llu)", t ? t : "failed", (unsigned long long)e);
        VixDiskLib_FreeErrorText(t);
    }
    return buf;
}

/* ---- one disk ------------------------------------------------------------------- */

struct copy {
    struct bdisk *bd;
    struct scan_digest *all;
    vddk_disk_stream *stream;          /* full backup, streamOptimized */
    VixDiskLibHandle out;              /* sparse or incremental child */
    const unsigned char *zeros;
    char err[512];
    int werr;
};

static int copy_block(void *ctx, const struct scan_block *b)
{
    struct copy *c = ctx;
    struct mf_disk *d = c->bd->out;
    if (b->data ? scan_digest_add(c->all, b->data, b->len) : scan_digest_zeros(c->all, b->len)) {
        snprintf(c->err, sizeof c->err, "hashing failed");
        return -1;
    }
    memcpy(d->blocks[b->index], b->hash, SCAN_HASH_LEN);
    uint8_t zh[SCAN_HASH_LEN];
    scan_zero_hash(b->len, zh);
    int zero = !b->data || memcmp(b->hash, zh, SCAN_HASH_LEN) == 0;
    int write;
    if (c->bd->base)
        write = memcmp(b->hash, c->bd->base->blocks[b->index], SCAN_HASH_LEN) != 0;
    else
        write = !zero;
    if (!write)
        return 0;
    const unsigned char *data = b->data ? b->data : c->zeros;
    VixError e;
    if (c->stream)
        e = vddk_disk_stream_write(c->stream, b->offset, data, b->len);
    else
        e = VixDiskLib_Write(c->out, b->offset / VIXDISKLIB_SECTOR_SIZE,
                             b->len / VIXDISKLIB_SECTOR_SIZE, data);
    if (e != VIX_OK) {
        char buf[400];
        snprintf(c->err, sizeof c->err, "writing block %llu: %s", (unsigned long long)b->index,
                 vix_detail(e, buf, sizeof buf));
        return -1;
    }
    d->stored += b->len;
    return 0;
}

/* Back up one disk; 0 or -1 with err set. */
static int backup_disk(struct backup *b, struct bdisk *bd, char *err, size_t errlen)
{
    struct bvm *vm = bd->vm;
    struct mf_disk *d = bd->out;
    char detail[600];
    vddk_disk_params p = {
        .connect = &vm->cp,
        .path = bd->src->path,
        .readOnly = TRUE,
        .identity = "openvddk-backup",
        .snapshotRef = vm->snapshot,
        .transportModes = b->modes,
    };
    vddk_disk *src = NULL;
    VixError e = vddk_disk_open(&p, &src);
    if (e != VIX_OK) {
        snprintf(err, errlen, "%s: %s", bd->src->path, vix_detail(e, detail, sizeof detail));
        return -1;
    }
    d->capacity = vddk_disk_capacity(src);
    d->nblocks = mf_blocks_for(d->capacity, BLOCK);
    int ret = -1;
    char *abs = xasprintf("%s/%s", b->tmp_dir, d->file);
    VixDiskLibInfo *info = NULL;
    struct copy c = { .bd = bd };
    if (!abs || !(d->blocks = calloc(d->nblocks ? d->nblocks : 1, sizeof *d->blocks)) ||
        !(c.all = scan_digest_new()) || !(c.zeros = calloc(1, BLOCK))) {
        snprintf(err, errlen, "%s: out of memory", bd->src->path);
        goto out;
    }
    if ((e = VixDiskLib_GetInfo(vddk_disk_handle(src), &info)) != VIX_OK) {
        snprintf(err, errlen, "%s: %s", bd->src->path, vix_detail(e, detail, sizeof detail));
        goto out;
    }
    if (bd->base && bd->base->capacity != d->capacity)
        bd->base = NULL;            /* resized since: a full copy */
    VixDiskLibConnection local = vddk_conn();
    if (!local) {
        snprintf(err, errlen, "cannot open the local connection");
        goto out;
    }
    VixDiskLibCreateParams cp = {
        .diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
        .adapterType = info->adapterType,
        .hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5,
        .capacity = d->capacity / VIXDISKLIB_SECTOR_SIZE,
    };
    if (bd->base) {
        char *from = xasprintf("%s/%s", b->final_dir, vm->moref);
        char *hint = from ? relative_path(from, bd->base_path) : NULL;
        free(from);
        char *hint_rel = hint ? relative_path(b->final_dir, bd->base_path) : NULL;
        if (!hint || !hint_rel) {
            free(hint);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        d->base = hint_rel;
        d->format = strdup("monolithicSparse");
        e = vddk_disk_create_child(bd->base_path, abs, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, hint);
        free(hint);
    } else if (b->stream) {
        d->format = strdup("streamOptimized");
        cp.diskType = VIXDISKLIB_DISK_STREAM_OPTIMIZED;
        e = vddk_disk_stream_create(abs, &cp, &c.stream);
    } else {
        d->format = strdup("monolithicSparse");
        e = VixDiskLib_Create(local, abs, &cp, NULL, NULL);
    }
    if (e == VIX_OK && !c.stream)
        e = VixDiskLib_Open(local, abs, 0, &c.out);
    if (e != VIX_OK || !d->format) {
        snprintf(err, errlen, "%s: %s", abs, vix_detail(e, detail, sizeof detail));
        goto out;
    }
    struct scan_opts so = { .block_size = BLOCK, .readers = REMOTE_READERS, .done = &bd->done,
                            .stop = &b->stop };
    int rc = scan_disk(src, d->capacity, bd->src->path, &so, copy_block, &c, &d->allocated,
                       err, errlen);
    if (rc == 1)
        snprintf(err, errlen, "%s: %s", abs, c.err);
    if (rc != 0)
        goto out;
    scan_digest_end(c.all, d->sha256);
    c.all = NULL;
    if (c.stream) {
        e = vddk_disk_stream_close(c.stream, TRUE);
        c.stream = NULL;
    } else {
        e = VixDiskLib_Close(c.out);
        c.out = NULL;
        if (e == VIX_OK && fsync_path(abs, 0) < 0)
            e = VIX_E_FILE_ERROR;
    }
    if (e != VIX_OK) {
        snprintf(err, errlen, "%s: %s", abs, vix_detail(e, detail, sizeof detail));
        goto out;
    }
    ret = 0;
out:
    if (c.all) {
        uint8_t junk[SCAN_HASH_LEN];
        scan_digest_end(c.all, junk);
    }
    if (c.stream)
        vddk_disk_stream_close(c.stream, FALSE);
    if (c.out)
        VixDiskLib_Close(c.out);
    free((void *)c.zeros);
    if (info)
        VixDiskLib_FreeInfo(info);
    free(abs);
    vddk_disk_close(src);
    return ret;
}

/* ---- the worker pool ---------------------------------------------------------- */

static struct hostcount *host_of(struct backup *b, const char *host)
{
    const char *h = host ? host : "";
    for (size_t i = 0; i < b->nhosts; i++)
        if (!strcmp(b->hosts[i].host, h))
            return &b->hosts[i];
    struct hostcount *n = realloc(b->hosts, (b->nhosts + 1) * sizeof *n);
    if (!n)
        return NULL;
    b->hosts = n;
    n[b->nhosts].host = strdup(h);
    n[b->nhosts].running = 0;
    return n[b->nhosts].host ? &n[b->nhosts++] : NULL;
}

/* The first queued disk whose host has room, or NULL. */
static struct bdisk *next_job(struct backup *b, struct hostcount **hc)
{
    for (size_t i = 0; i < b->nvms; i++) {
        struct bvm *vm = &b->vms[i];
        if (!vm->prepared)
            continue;
        for (size_t k = 0; k < vm->ndisks; k++) {
            if (vm->disks[k].state != 0)
                continue;
            struct hostcount *h = host_of(b, vm->info->host);
            if (!h)
                return NULL;
            if (h->running < b->per_host) {
                *hc = h;
                return &vm->disks[k];
            }
            break;          /* this VM's host is full */
        }
    }
    return NULL;
}

static int queue_empty(struct backup *b)
{
    for (size_t i = 0; i < b->nvms; i++)
        for (size_t k = 0; b->vms[i].prepared && k < b->vms[i].ndisks; k++)
            if (b->vms[i].disks[k].state == 0)
                return 0;
    return 1;
}

static void disk_finished(struct backup *b, struct bdisk *bd)
{
    bd->state = 2;
    if (--bd->vm->pending == 0)
        bd->vm->finished = 1;
    pthread_cond_broadcast(&b->cond);
}

static void *worker(void *arg)
{
    struct backup *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        if (b->stop) {
            /* Give up every queued disk so that their VMs finish. */
            for (size_t i = 0; i < b->nvms; i++)
                for (size_t k = 0; b->vms[i].prepared && k < b->vms[i].ndisks; k++)
                    if (b->vms[i].disks[k].state == 0)
                        disk_finished(b, &b->vms[i].disks[k]);
            if (b->all_queued)
                break;
            pthread_cond_wait(&b->cond, &b->lock);
            continue;
        }
        struct hostcount *hc = NULL;
        struct bdisk *bd = next_job(b, &hc);
        if (!bd) {
            if (b->all_queued && queue_empty(b))
                break;
            pthread_cond_wait(&b->cond, &b->lock);
            continue;
        }
        bd->state = 1;
        hc->running++;
        pthread_mutex_unlock(&b->lock);
        char err[1024] = "";
        double t0 = vddk_now();
        int rc = backup_disk(b, bd, err, sizeof err);
        bd->seconds = vddk_now() - t0;
        pthread_mutex_lock(&b->lock);
        hc->running--;
        if (rc < 0)
            fail_locked(b, "%s disk %d: %s", bd->vm->moref, bd->src->key, err);
        else
            b->disks_done++;
        if (rc == 0 && !b->json && b->progress != VDDK_PROGRESS_OFF && !isatty(2)) {
            char h1[VDDK_HUMAN_LEN], h2[VDDK_HUMAN_LEN];
            fprintf(stderr, "vddk: backup: %s disk %d (%s): %s allocated, %s stored, %.1f s\n",
                    bd->vm->moref, bd->src->key, bd->src->path,
                    vddk_human(bd->out->allocated, h1), vddk_human(bd->out->stored, h2),
                    bd->seconds);
        }
        disk_finished(b, bd);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* ---- progress on a terminal ------------------------------------------------------ */

struct painter {
    struct backup *b;
    pthread_t th;
    int stop, on;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

static void paint(struct backup *b, int final)
{
    char line[512], h1[VDDK_HUMAN_LEN], h2[VDDK_HUMAN_LEN];
    uint64_t done = 0, total = 0, ndisks = 0;
    size_t used;
    /* Only VMs whose preparation is complete (set under the lock) are
     * looked at: the main thread builds the others' disk lists. */
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->nvms; i++)
        for (size_t k = 0; b->vms[i].prepared && k < b->vms[i].ndisks; k++) {
            done += __atomic_load_n(&b->vms[i].disks[k].done, __ATOMIC_RELAXED);
            total += b->vms[i].disks[k].src->capacity;
            ndisks++;
        }
    used = (size_t)snprintf(line, sizeof line, "backup: %llu/%llu disks, %s of %s",
                            (unsigned long long)b->disks_done, (unsigned long long)ndisks,
                            vddk_human(done, h1), vddk_human(total, h2));
    for (size_t i = 0; i < b->nvms && used < 76; i++)
        for (size_t k = 0; b->vms[i].prepared && k < b->vms[i].ndisks && used < 76; k++) {
            struct bdisk *bd = &b->vms[i].disks[k];
            if (bd->state != 1 || !bd->out->capacity)
                continue;
            int pct = (int)(bd->done * 100 / bd->out->capacity);
            used += (size_t)snprintf(line + used, sizeof line - used, "; %s:%d %d%%",
                                     b->vms[i].moref, bd->src->key, pct);
        }
    pthread_mutex_unlock(&b->lock);
    if (used > 78)
        line[78] = '\0';
    fprintf(stderr, "\r%-78s%s", line, final ? "\n" : "");
    fflush(stderr);
}

static void *painter_main(void *arg)
{
    struct painter *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        pthread_mutex_unlock(&p->lock);
        paint(p->b, 0);
        pthread_mutex_lock(&p->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void painter_start(struct painter *p, struct backup *b)
{
    memset(p, 0, sizeof *p);
    p->b = b;
    int want = b->progress == VDDK_PROGRESS_ON ||
               (b->progress == VDDK_PROGRESS_AUTO && isatty(2));
    if (!want)
        return;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->on = pthread_create(&p->th, NULL, painter_main, p) == 0;
}

static void painter_end(struct painter *p)
{
    if (!p->on)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->th, NULL);
    paint(p->b, 1);
}

/* ---- snapshots --------------------------------------------------------------------- */

/* Remove snapshots of ours that a run on this host left behind (its
 * process is gone).  Others are reported, not touched. */
static int sweep_snapshots(struct backup *b, const vddk_vsphere_vm *vm)
{
    for (uint32 i = 0; i < vm->numSnapshots; i++) {
        const vddk_vsphere_snapshot *s = &vm->snapshots[i];
        if (!s->name || strcmp(s->name, SNAP_NAME) != 0)
            continue;
        const char *d = s->description ? s->description : "";
        const char *hp = strstr(d, "host="), *pp = strstr(d, "pid=");
        char host[256] = "";
        long pid = pp ? strtol(pp + 4, NULL, 10) : 0;
        if (hp)
            sscanf(hp + 5, "%255[^;]", host);
        if (strcmp(host, b->hostname) != 0) {
            fprintf(stderr, "vddk: backup: %s: snapshot %s (%s) was made by openvddk on "
                    "host %s; not removed\n", vm->moref, s->moref, s->name,
                    *host ? host : "(unknown)");
            continue;
        }
        if (pid == (long)getpid() || pid_alive(pid))
            continue;     /* a backup running now */
        VixError e = vddk_disk_vsphere_snapshot_remove(b->sess, s->moref, FALSE);
        char buf[600];
        if (e != VIX_OK)
            return vddk_fail("%s: cannot remove snapshot %s left by an earlier backup: %s",
                             vm->moref, s->moref, vix_detail(e, buf, sizeof buf));
        fprintf(stderr, "vddk: backup: %s: removed snapshot %s left by an earlier backup "
                "(pid %ld)\n", vm->moref, s->moref, pid);
    }
    return 0;
}

static int remove_snapshot(struct backup *b, struct bvm *vm)
{
    if (!vm->snapshot || vm->snapshot_removed)
        return 0;
    VixError e = vddk_disk_vsphere_snapshot_remove(b->sess, vm->snapshot, FALSE);
    if (e != VIX_OK) {
        char buf[600];
        return vddk_fail("%s: cannot remove snapshot %s: %s (remove it by hand, or run the "
                         "backup again: it removes snapshots of ours left behind)",
                         vm->moref, vm->snapshot, vix_detail(e, buf, sizeof buf));
    }
    vm->snapshot_removed = 1;
    return 0;
}

/* Snapshot the VM, write its configuration, queue its disks. */
static int prepare_vm(struct backup *b, struct bvm *vm)
{
    char buf[600];
    vddk_vsphere_vm *cur = NULL;
    uint32 n = 0;
    VixError e = vddk_disk_vsphere_session_list(b->sess, vm->moref, NULL, &cur, &n);
    if (e != VIX_OK || n != 1) {
        vddk_disk_vsphere_free(cur, n);
        return vddk_fail("%s: %s", vm->moref,
                         e != VIX_OK ? vix_detail(e, buf, sizeof buf) : "VM not found");
    }
    int rc = sweep_snapshots(b, cur);
    vddk_disk_vsphere_free(cur, n);
    if (rc)
        return rc;
    char desc[512];
    snprintf(desc, sizeof desc, "openvddk backup; host=%s; pid=%ld; started=%s", b->hostname,
             (long)getpid(), b->started);
    e = vddk_disk_vsphere_snapshot_create(b->sess, vm->moref, SNAP_NAME, desc, FALSE, FALSE,
                                          &vm->snapshot);
    if (e != VIX_OK)
        return vddk_fail("%s: cannot create a snapshot: %s", vm->moref,
                         vix_detail(e, buf, sizeof buf));
    e = vddk_disk_vsphere_session_list(b->sess, vm->moref, vm->snapshot, &vm->list, &n);
    if (e != VIX_OK || n != 1)
        return vddk_fail("%s: listing the disks of snapshot %s: %s", vm->moref, vm->snapshot,
                         e != VIX_OK ? vix_detail(e, buf, sizeof buf) : "VM not found");
    vm->info = &vm->list[0];
    char *json = NULL;
    e = vddk_disk_vsphere_vm_config(b->sess, vm->moref, &json);
    if (e != VIX_OK)
        return vddk_fail("%s: reading its configuration: %s", vm->moref,
                         vix_detail(e, buf, sizeof buf));
    struct mf_vm *o = vm->out;
    o->moref = strdup(vm->moref);
    o->name = vm->info->name ? strdup(vm->info->name) : strdup(vm->moref);
    o->uuid = vm->info->uuid ? strdup(vm->info->uuid) : NULL;
    o->host = vm->info->host ? strdup(vm->info->host) : NULL;
    o->snapshot = strdup(vm->snapshot);
    o->config = xasprintf("%s/config.json", vm->moref);
    char *dir = xasprintf("%s/%s", b->tmp_dir, vm->moref);
    char *cfg = xasprintf("%s/%s", b->tmp_dir, o->config ? o->config : "");
    rc = 0;
    if (!o->moref || !o->name || !o->snapshot || !o->config || !dir || !cfg) {
        rc = vddk_fail("out of memory");
    } else if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rc = vddk_fail("%s: cannot create: %s", dir, strerror(errno));
    } else if (write_file(cfg, json) < 0) {
        rc = vddk_fail("%s: cannot write: %s", cfg, strerror(errno));
    }
    free(json);
    free(dir);
    free(cfg);
    if (rc)
        return rc;
    const struct mf_vm *bvm = b->basem ? mf_find_vm(b->basem, vm->moref) : NULL;
    vm->ndisks = vm->info->numDisks;
    if (vm->ndisks && (!(vm->disks = calloc(vm->ndisks, sizeof *vm->disks)) ||
                       !(o->disks = calloc(vm->ndisks, sizeof *o->disks))))
        return vddk_fail("out of memory");
    o->ndisks = vm->ndisks;
    for (size_t k = 0; k < vm->ndisks; k++) {
        struct bdisk *bd = &vm->disks[k];
        const vddk_vsphere_disk *src = &vm->info->disks[k];
        bd->vm = vm;
        bd->src = src;
        bd->out = &o->disks[k];
        bd->out->key = src->key;
        bd->out->label = src->label ? strdup(src->label) : NULL;
        bd->out->source = strdup(src->path ? src->path : "");
        bd->out->file = xasprintf("%s/disk-%d.vmdk", vm->moref, (int)src->key);
        bd->out->capacity = src->capacity;
        if (!bd->out->source || !bd->out->file)
            return vddk_fail("out of memory");
        bd->base = bvm ? mf_find_disk(bvm, src->key) : NULL;
        if (bd->base && !(bd->base_path = xasprintf("%s/%s", b->base_dir, bd->base->file)))
            return vddk_fail("out of memory");
        if (bd->base) {
            char *rp = realpath(bd->base_path, NULL);
            if (!rp)
                return vddk_fail("%s: %s (base set incomplete?)", bd->base_path,
                                 strerror(errno));
            free(bd->base_path);
            bd->base_path = rp;
        }
        b->disks_total++;
    }
    return 0;
}

/* ---- vddk backup ------------------------------------------------------------------- */

/* Remove DIR.partial-PID directories of runs that are gone. */
static void sweep_partials(const char *final_dir)
{
    char *parent = strdup(final_dir);
    if (!parent)
        return;
    char *slash = strrchr(parent, '/');
    if (!slash) {
        free(parent);
        return;
    }
    const char *name = final_dir + (slash - parent) + 1;
    *slash = '\0';
    DIR *d = opendir(*parent ? parent : "/");
    size_t nl = strlen(name);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, name, nl) || strncmp(e->d_name + nl, ".partial-", 9))
            continue;
        char *end;
        long pid = strtol(e->d_name + nl + 9, &end, 10);
        if (*end || pid_alive(pid))
            continue;
        char *p = xasprintf("%s/%s", parent, e->d_name);
        if (p) {
            remove_tree(p);
            fprintf(stderr, "vddk: backup: removed %s left by an interrupted backup\n", p);
        }
        free(p);
    }
    if (d)
        closedir(d);
    free(parent);
}

static int resolve_vms(struct backup *b, int all, const char *name_glob)
{
    size_t ngiven;
    const char *const *given = vddk_remote_vms(&ngiven);
    vddk_vsphere_vm *list = NULL;
    uint32 n = 0;
    char buf[600];
    if (all) {
        VixError e = vddk_disk_vsphere_session_list(b->sess, NULL, NULL, &list, &n);
        if (e != VIX_OK)
            return vddk_fail("listing VMs: %s", vix_detail(e, buf, sizeof buf));
    }
    size_t want = all ? n : ngiven;
    b->vms = calloc(want ? want : 1, sizeof *b->vms);
    b->m.vms = calloc(want ? want : 1, sizeof *b->m.vms);
    if (!b->vms || !b->m.vms) {
        vddk_disk_vsphere_free(list, n);
        return vddk_fail("out of memory");
    }
    for (size_t i = 0; i < want; i++) {
        const char *moref = all ? list[i].moref : given[i];
        if (!strncmp(moref, "moref=", 6))
            moref += 6;
        if (all && name_glob && fnmatch(name_glob, list[i].name ? list[i].name : "", 0) != 0)
            continue;
        int dup = 0;
        for (size_t k = 0; k < b->nvms; k++)
            dup |= !strcmp(b->vms[k].moref, moref);
        if (dup)
            continue;
        struct bvm *vm = &b->vms[b->nvms];
        if (!(vm->moref = strdup(moref))) {
            vddk_disk_vsphere_free(list, n);
            return vddk_fail("out of memory");
        }
        vm->cp = *b->cp;
        snprintf(vm->vmspec, sizeof vm->vmspec, "moref=%s", moref);
        vm->cp.vmxSpec = vm->vmspec;
        vm->out = &b->m.vms[b->nvms];
        b->nvms++;
    }
    vddk_disk_vsphere_free(list, n);
    if (!b->nvms)
        return vddk_fail(all ? "no VM matches" : "no VM given");
    return 0;
}

static void print_json(struct backup *b, double secs, int ok)
{
    uint64_t alloc = 0, stored = 0;
    printf("{\"set\": ");
    vddk_json_str(stdout, b->final_dir);
    printf(", \"ok\": %s, \"incremental\": %s, \"seconds\": %.3f,\n \"vms\": [", ok ? "true" : "false",
           b->basem ? "true" : "false", secs);
    for (size_t i = 0; i < b->nvms; i++) {
        struct bvm *vm = &b->vms[i];
        printf("%s\n  {\"moref\": ", i ? "," : "");
        vddk_json_str(stdout, vm->moref);
        printf(", \"name\": ");
        vddk_json_str(stdout, vm->out->name);
        printf(", \"snapshot\": ");
        vddk_json_str(stdout, vm->snapshot);
        printf(", \"snapshot_removed\": %s, \"disks\": [", vm->snapshot_removed ? "true" : "false");
        for (size_t k = 0; k < vm->ndisks; k++) {
            struct mf_disk *d = vm->disks[k].out;
            printf("%s{\"key\": %d, \"file\": ", k ? ", " : "", d->key);
            vddk_json_str(stdout, d->file);
            printf(", \"capacity\": %llu, \"allocated\": %llu, \"stored\": %llu, \"seconds\": %.3f}",
                   (unsigned long long)d->capacity, (unsigned long long)d->allocated,
                   (unsigned long long)d->stored, vm->disks[k].seconds);
            alloc += d->allocated;
            stored += d->stored;
        }
        printf("]}");
    }
    printf("],\n \"allocated\": %llu, \"stored\": %llu}\n", (unsigned long long)alloc,
           (unsigned long long)stored);
}

static int finish_set(struct backup *b)
{
    char fin[32];
    iso_now(fin);
    b->m.tool = strdup("openvddk " OPENVDDK_VERSION);
    b->m.started = strdup(b->started);
    b->m.finished = strdup(fin);
    b->m.server = b->cp->serverName ? strdup(b->cp->serverName) : NULL;
    b->m.block_size = BLOCK;
    b->m.base = b->base_rel;
    b->m.nvms = b->nvms;
    char *text = mf_format(&b->m);
    b->m.base = NULL;
    if (!text)
        return vddk_fail("out of memory");
    char *path = xasprintf("%s/%s", b->tmp_dir, MF_NAME);
    int rc = 0;
    if (!path || write_file(path, text) < 0)
        rc = vddk_fail("%s: cannot write: %s", path ? path : MF_NAME, strerror(errno));
    free(text);
    free(path);
    for (size_t i = 0; rc == 0 && i < b->nvms; i++) {
        char *d = xasprintf("%s/%s", b->tmp_dir, b->vms[i].moref);
        if (d)
            fsync_path(d, 1);
        free(d);
    }
    if (rc == 0 && fsync_path(b->tmp_dir, 1) < 0)
        rc = vddk_fail("%s: %s", b->tmp_dir, strerror(errno));
    struct stat st;
    if (rc == 0 && lstat(b->final_dir, &st) == 0)
        rc = vddk_fail("%s: appeared while the backup ran; the set stays in %s", b->final_dir,
                       b->tmp_dir);
    if (rc == 0 && rename(b->tmp_dir, b->final_dir) < 0)
        rc = vddk_fail("%s: cannot rename into place: %s", b->final_dir, strerror(errno));
    if (rc == 0) {
        char *parent = strdup(b->final_dir);
        if (parent) {
            char *s = strrchr(parent, '/');
            if (s && s != parent)
                *s = '\0';
            fsync_path(parent, 1);
        }
        free(parent);
    }
    return rc;
}

static void free_backup(struct backup *b)
{
    for (size_t i = 0; i < b->nvms; i++) {
        struct bvm *vm = &b->vms[i];
        for (size_t k = 0; k < vm->ndisks; k++)
            free(vm->disks[k].base_path);
        free(vm->disks);
        free(vm->moref);
        free(vm->snapshot);
        vddk_disk_vsphere_free(vm->list, vm->list ? 1 : 0);
    }
    free(b->vms);
    b->m.base = NULL;
    b->m.nvms = b->nvms;
    /* The manifest's strings and arrays are owned by b->m. */
    struct manifest *m = malloc(sizeof *m);
    if (m) {
        *m = b->m;
        mf_free(m);
    }
    for (size_t i = 0; i < b->nhosts; i++)
        free(b->hosts[i].host);
    free(b->hosts);
    mf_free(b->basem);
    free(b->base_rel);
    free(b->base_abs);
    free(b->final_dir);
    free(b->tmp_dir);
}

enum { OPT_ALL = 1, OPT_NAME, OPT_BASE, OPT_SPARSE, OPT_PER_HOST, OPT_PARALLEL, OPT_JSON,
       OPT_TO, OPT_TO_VM, OPT_TYPE, OPT_SOURCE_VM, OPT_OVERWRITE };

static int run_backup(int argc, char **argv);

const struct vddk_cmd vddk_cmd_backup = {
    "backup", "back up whole VMs from vSphere into a backup set",
    "usage: vddk backup --server HOST --user USER [--password-file F] [--thumbprint TP]\n"
    "                   (--vm MOREF [--vm MOREF...] | --all [--name GLOB])\n"
    "                   [--base SET] [--sparse] [--per-host N] [--parallel N]\n"
    "                   [--transport MODES] [--json] [--progress|-q] DIR\n"
    "\n"
    "For every VM: take a snapshot (no memory, not quiesced), copy the allocated\n"
    "blocks of each of its disks as the snapshot recorded them, remove the\n"
    "snapshot.  DIR becomes a backup set: manifest.json (VMs, snapshots, disks,\n"
    "SHA-256 of each disk and of each 1 MiB block), and for each VM a directory\n"
    "named after its moref with config.json (its vSphere configuration) and\n"
    "disk-KEY.vmdk per disk (streamOptimized; --sparse: monolithicSparse).\n"
    "The set is built in DIR.partial-PID and renamed to DIR only when complete;\n"
    "DIR must not exist.  Snapshots this tool made are always removed, also on\n"
    "failure and Ctrl-C; a run also removes those that an earlier, killed run on\n"
    "this host left behind.\n"
    "\n"
    "      --all            every VM the user can see (with --name: those whose\n"
    "                       name matches GLOB)\n"
    "      --base SET       incremental: store only the 1 MiB blocks whose SHA-256\n"
    "                       differs from SET's manifest, as a sparse child disk of\n"
    "                       SET's disk (which must stay next to DIR: the link is\n"
    "                       relative).  Disks new or resized since are copied whole.\n"
    "      --sparse         store disks as monolithicSparse instead of compressed\n"
    "      --per-host N     disks read at once from one ESXi host (default 4)\n"
    "      --parallel N     disks read at once in all (default 8)\n"
    "      --transport M    transport modes, as ConnectEx (default: the library's\n"
    "                       order nbdssl, nbd, https)\n"
    "      --json           print a summary as JSON on stdout\n"
    VDDK_PROGRESS_HELP,
    run_backup,
};

static int run_backup(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_backup;
    static const struct vddk_opt opts[] = {
        { 0, "all", 0, OPT_ALL },         { 0, "name", 1, OPT_NAME },
        { 0, "base", 1, OPT_BASE },       { 0, "sparse", 0, OPT_SPARSE },
        { 0, "per-host", 1, OPT_PER_HOST }, { 0, "parallel", 1, OPT_PARALLEL },
        { 0, "json", 0, OPT_JSON },       VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct backup b;
    memset(&b, 0, sizeof b);
    b.stream = 1;
    b.per_host = 4;
    b.parallel = 8;
    int all = 0, ret;
    const char *name_glob = NULL;
    struct vddk_optstate st;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    int id;
    uint64_t v;
    while ((id = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (id) {
        case VDDK_OPT_HELP: vddk_opt_free(&st); return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR: vddk_opt_free(&st); return VDDK_EXIT_USAGE;
        case OPT_ALL: all = 1; break;
        case OPT_NAME: name_glob = st.arg; break;
        case OPT_BASE: b.base_dir = st.arg; break;
        case OPT_SPARSE: b.stream = 0; break;
        case OPT_JSON: b.json = 1; break;
        case VDDK_OPT_PROGRESS: b.progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: b.progress = VDDK_PROGRESS_OFF; break;
        case OPT_PER_HOST:
        case OPT_PARALLEL:
            if (vddk_parse_uint(st.arg, 64, &v) < 0 || v == 0) {
                vddk_opt_free(&st);
                return vddk_usage_error(cmd, "--%s %s: a number from 1 to 64",
                                        id == OPT_PER_HOST ? "per-host" : "parallel", st.arg);
            }
            *(id == OPT_PER_HOST ? &b.per_host : &b.parallel) = (int)v;
            break;
        }
    }
    if ((ret = vddk_operands(cmd, &st, 1, 1, "DIR")) != 0) {
        vddk_opt_free(&st);
        return ret;
    }
    b.set = st.operands[0];
    size_t ngiven;
    vddk_remote_vms(&ngiven);
    const char *snap;
    b.cp = vddk_remote_params(&snap, &b.modes);
    ret = VDDK_EXIT_USAGE;
    if (!b.cp)
        vddk_usage_error(cmd, "a backup needs --server (or VDDK_SERVER)");
    else if (!all && !ngiven)
        vddk_usage_error(cmd, "name the VMs with --vm MOREF, or --all");
    else if (all && ngiven)
        vddk_usage_error(cmd, "--all and --vm exclude each other");
    else if (name_glob && !all)
        vddk_usage_error(cmd, "--name filters --all");
    else if (snap)
        vddk_usage_error(cmd, "--snapshot: a backup takes its own snapshot");
    else
        ret = 0;
    if (ret) {
        vddk_opt_free(&st);
        return ret;
    }
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    /* From here on a signal is a request to stop cleanly: the partial set
     * and any snapshot made are removed. */
    catch_signals();
    double t0 = vddk_now();
    iso_now(b.started);
    if (gethostname(b.hostname, sizeof b.hostname - 1) < 0)
        strcpy(b.hostname, "localhost");
    char err[1024];
    struct stat sb;
    ret = VDDK_EXIT_FAIL;
    if (!(b.final_dir = canonical_new(b.set))) {
        vddk_fail("%s: the directory above it must exist", b.set);
        goto out;
    }
    if (lstat(b.final_dir, &sb) == 0) {
        vddk_fail("%s: already exists (a backup set is a new directory)", b.set);
        goto out;
    }
    if (b.base_dir) {
        char *rb = realpath(b.base_dir, NULL);
        if (!rb) {
            vddk_fail("%s: %s", b.base_dir, strerror(errno));
            goto out;
        }
        if (mf_load(rb, &b.basem, err, sizeof err) < 0) {
            free(rb);
            vddk_fail("--base: %s", err);
            goto out;
        }
        b.base_rel = relative_path(b.final_dir, rb);
        b.base_dir = b.base_abs = rb;
        if (!b.base_rel) {
            vddk_fail("out of memory");
            goto out;
        }
    }
    sweep_partials(b.final_dir);
    if (!(b.tmp_dir = xasprintf("%s.partial-%ld", b.final_dir, (long)getpid())) ||
        mkdir(b.tmp_dir, 0755) < 0) {
        vddk_fail("%s: cannot create: %s", b.tmp_dir ? b.tmp_dir : b.set, strerror(errno));
        free(b.tmp_dir);
        b.tmp_dir = NULL;
        goto out;
    }
    if (!vddk_conn())
        goto out;
    VixError e = vddk_disk_vsphere_session_open(b.cp, &b.sess);
    if (e != VIX_OK) {
        vddk_fail("%s: %s", b.cp->serverName, vix_detail(e, err, sizeof err));
        goto out;
    }
    if ((ret = resolve_vms(&b, all, name_glob)) != 0)
        goto out;

    if (got_signal) {
        vddk_fail("backup failed: interrupted");
        ret = VDDK_EXIT_FAIL;
        goto out;
    }
    struct painter pt;
    painter_start(&pt, &b);
    int nworkers = b.parallel;
    pthread_t th[64];
    int started = 0;
    for (; started < nworkers; started++)
        if (pthread_create(&th[started], NULL, worker, &b) != 0)
            break;
    int failed_prepare = !started;
    if (!started)
        vddk_fail("cannot start threads");
    size_t next = 0;
    pthread_mutex_lock(&b.lock);
    for (;;) {
        if (got_signal && !b.stop)
            fail_locked(&b, "interrupted");
        /* Remove the snapshots of VMs whose disks are all done. */
        int removed_any = 0;
        for (size_t i = 0; i < next; i++) {
            struct bvm *vm = &b.vms[i];
            if (vm->prepared && vm->finished && vm->snapshot && !vm->snapshot_removed) {
                pthread_mutex_unlock(&b.lock);
                if (remove_snapshot(&b, vm) != 0)
                    failed_prepare = 1;
                pthread_mutex_lock(&b.lock);
                removed_any = 1;
            }
        }
        if (removed_any)
            continue;
        size_t active = 0;
        for (size_t i = 0; i < next; i++)
            active += b.vms[i].prepared && !b.vms[i].finished;
        if (!b.stop && !failed_prepare && next < b.nvms && active < (size_t)b.parallel) {
            struct bvm *vm = &b.vms[next++];
            pthread_mutex_unlock(&b.lock);
            int rc = prepare_vm(&b, vm);
            pthread_mutex_lock(&b.lock);
            if (rc) {
                failed_prepare = 1;
                b.stop = 1;
                pthread_cond_broadcast(&b.cond);
                continue;
            }
            vm->prepared = 1;
            vm->pending = vm->ndisks;
            vm->finished = vm->ndisks == 0;
            pthread_cond_broadcast(&b.cond);
            continue;
        }
        if (next >= b.nvms || b.stop || failed_prepare) {
            b.all_queued = 1;
            pthread_cond_broadcast(&b.cond);
            if (active == 0)
                break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&b.cond, &b.lock, &ts);
    }
    b.all_queued = 1;
    pthread_cond_broadcast(&b.cond);
    pthread_mutex_unlock(&b.lock);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    /* Snapshots made for VMs that never finished preparing. */
    for (size_t i = 0; i < next; i++)
        if (remove_snapshot(&b, &b.vms[i]) != 0)
            failed_prepare = 1;
    painter_end(&pt);
    if (b.failed)
        vddk_fail("backup failed: %s", b.errmsg);
    ret = b.failed || failed_prepare ? VDDK_EXIT_FAIL : finish_set(&b);
    if (b.json)
        print_json(&b, vddk_now() - t0, ret == 0);
    if (ret == 0 && !b.json && b.progress != VDDK_PROGRESS_OFF) {
        uint64_t stored = 0;
        for (size_t i = 0; i < b.nvms; i++)
            for (size_t k = 0; k < b.vms[i].ndisks; k++)
                stored += b.vms[i].disks[k].out->stored;
        char h[VDDK_HUMAN_LEN];
        printf("backed up %zu VM%s, %llu disk%s, %s stored%s, to %s in %.1f s\n", b.nvms,
               b.nvms == 1 ? "" : "s", (unsigned long long)b.disks_total,
               b.disks_total == 1 ? "" : "s", vddk_human(stored, h),
               b.basem ? " (incremental)" : "", b.set, vddk_now() - t0);
    }
out:
    if (ret != 0 && b.tmp_dir)
        remove_tree(b.tmp_dir);
    release_signals();
    if (b.sess)
        vddk_disk_vsphere_session_close(b.sess);
    vddk_opt_free(&st);
    free_backup(&b);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
    return ret;
}

/* ---- vddk verify --------------------------------------------------------------- */

struct check {
    const struct mf_disk *d;
    struct scan_digest *all;
    uint64_t bad;                 /* first bad block + 1, or 0 */
};

static int check_block(void *ctx, const struct scan_block *b)
{
    struct check *c = ctx;
    if (b->data ? scan_digest_add(c->all, b->data, b->len) : scan_digest_zeros(c->all, b->len))
        return -1;
    if (memcmp(b->hash, c->d->blocks[b->index], SCAN_HASH_LEN) != 0) {
        c->bad = b->index + 1;
        return -1;
    }
    return 0;
}

/* Open a disk of a set read-only (with its chain). */
static int open_set_disk(const char *path, vddk_disk **out)
{
    vddk_disk_params p = { .path = path, .readOnly = TRUE };
    VixError e = vddk_disk_open(&p, out);
    if (e != VIX_OK) {
        char buf[600];
        return vddk_fail("%s: %s", path, vix_detail(e, buf, sizeof buf));
    }
    return 0;
}

static int verify_disk(const char *set, const struct mf_vm *vm, const struct mf_disk *md,
                       int quiet)
{
    char *path = xasprintf("%s/%s", set, md->file);
    if (!path)
        return vddk_fail("out of memory");
    vddk_disk *d = NULL;
    int ret = open_set_disk(path, &d);
    if (ret) {
        free(path);
        return ret;
    }
    struct check c = { .d = md, .all = scan_digest_new() };
    uint64_t cap = vddk_disk_capacity(d), alloc;
    char err[1024];
    if (!c.all) {
        ret = vddk_fail("out of memory");
    } else if (cap != md->capacity) {
        ret = vddk_fail("%s: capacity %llu, the manifest says %llu", path,
                        (unsigned long long)cap, (unsigned long long)md->capacity);
    } else {
        struct scan_opts so = { .block_size = BLOCK, .readers = LOCAL_READERS,
                                .stop = &got_signal };
        int rc = scan_disk(d, cap, path, &so, check_block, &c, &alloc, err, sizeof err);
        if (rc < 0) {
            ret = vddk_fail("%s", err);
        } else if (c.bad) {
            uint64_t blk = c.bad - 1;
            ret = vddk_fail("%s: %s disk %d: block %llu (offset %llu) does not match the "
                            "manifest's SHA-256", path, vm->moref, md->key,
                            (unsigned long long)blk, (unsigned long long)(blk * BLOCK));
        } else if (rc != 0) {
            ret = vddk_fail("%s: hashing failed", path);
        }
    }
    if (c.all) {
        uint8_t h[SCAN_HASH_LEN];
        scan_digest_end(c.all, h);
        if (ret == 0 && memcmp(h, md->sha256, SCAN_HASH_LEN) != 0)
            ret = vddk_fail("%s: %s disk %d: the content's SHA-256 does not match the "
                            "manifest", path, vm->moref, md->key);
    }
    if (ret == 0 && !quiet)
        printf("%s: %s disk %d: ok (%llu blocks)\n", path, vm->moref, md->key,
               (unsigned long long)md->nblocks);
    vddk_disk_close(d);
    free(path);
    return ret;
}

static int verify_set(const char *set, int depth, int quiet)
{
    if (depth > 64)
        return vddk_fail("%s: more than 64 base sets (a loop?)", set);
    struct manifest *m;
    char err[1024];
    if (mf_load(set, &m, err, sizeof err) < 0)
        return vddk_fail("%s", err);
    int ret = 0;
    for (size_t i = 0; ret == 0 && i < m->nvms; i++)
        for (size_t k = 0; ret == 0 && k < m->vms[i].ndisks; k++)
            ret = verify_disk(set, &m->vms[i], &m->vms[i].disks[k], quiet);
    if (ret == 0 && m->base) {
        char *bs = xasprintf("%s/%s", set, m->base);
        ret = bs ? verify_set(bs, depth + 1, quiet) : vddk_fail("out of memory");
        free(bs);
    }
    mf_free(m);
    return ret;
}

static int run_verify(int argc, char **argv);

const struct vddk_cmd vddk_cmd_verify = {
    "verify", "check every block of a backup set against its manifest",
    "usage: vddk verify [-q] SET\n"
    "\n"
    "Reread every disk of the backup set SET (and of the sets it is based on)\n"
    "and compare the SHA-256 of each 1 MiB block and of the whole content with\n"
    "the manifest.  Exit 1 at the first block that differs or cannot be read,\n"
    "naming it.\n"
    "\n"
    "  -q, --quiet          print nothing when the set is good\n",
    run_verify,
};

static int run_verify(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_verify;
    static const struct vddk_opt opts[] = { VDDK_PROGRESS_OPTS, { 0, NULL, 0, 0 } };
    struct vddk_optstate st;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    int id, quiet = 0, ret;
    while ((id = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        if (id == VDDK_OPT_HELP || id == VDDK_OPT_ERROR) {
            vddk_opt_free(&st);
            return id == VDDK_OPT_HELP ? vddk_print_help(cmd, stdout) : VDDK_EXIT_USAGE;
        }
        if (id == VDDK_OPT_QUIET)
            quiet = 1;
    }
    if ((ret = vddk_operands(cmd, &st, 1, 1, "SET")) == 0) {
        ret = vddk_conn() ? 0 : VDDK_EXIT_FAIL;
        catch_signals();
        if (ret == 0)
            ret = verify_set(st.operands[0], 0, quiet);
        release_signals();
        if (ret == 0 && !quiet)
            printf("%s: backup set verified\n", st.operands[0]);
    }
    vddk_opt_free(&st);
    return ret;
}

/* ---- vddk restore ---------------------------------------------------------------- */

static int restore_local(const char *set, const struct mf_vm *vm, const struct mf_disk *md,
                         const char *to, VixDiskLibDiskType type, int overwrite, int progress)
{
    char *src = xasprintf("%s/%s", set, md->file);
    char *dir = xasprintf("%s/%s", to, vm->moref);
    char *dst = xasprintf("%s/%s/disk-%d.vmdk", to, vm->moref, md->key);
    int ret = 0;
    if (!src || !dir || !dst) {
        ret = vddk_fail("out of memory");
        goto out;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        ret = vddk_fail("%s: cannot create: %s", dir, strerror(errno));
        goto out;
    }
    struct vddk_h s;
    if ((ret = vddk_open(src, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &s)) != 0)
        goto out;
    VixDiskLibCreateParams cp = {
        .diskType = type,
        .adapterType = s.info->adapterType,
        .hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5,
        .capacity = s.info->capacity,
    };
    uint64_t cap = s.capacity;
    vddk_close(&s);
    if (cap != md->capacity) {
        ret = vddk_fail("%s: capacity %llu, the manifest says %llu", src,
                        (unsigned long long)cap, (unsigned long long)md->capacity);
        goto out;
    }
    struct vddk_progress *pg = vddk_progress_start(progress, dst, cap);
    VixDiskLibConnection c = vddk_conn();
    vddk_warn_clear();
    VixError e = VixDiskLib_Clone(c, dst, c, src, &cp, vddk_progress_cb, pg,
                                  overwrite ? TRUE : FALSE);
    vddk_progress_end(pg, e == VIX_OK);
    if (e != VIX_OK)
        ret = vddk_vix_error(e, dst);
    else if (progress != VDDK_PROGRESS_OFF)
        printf("restored %s disk %d to %s\n", vm->moref, md->key, dst);
out:
    free(src);
    free(dir);
    free(dst);
    return ret;
}

static int restore_to_vm(const char *set, const struct mf_vm *vm, const char *target,
                         int progress)
{
    const char *snap, *modes;
    const VixDiskLibConnectParams *base = vddk_remote_params(&snap, &modes);
    if (!base)
        return vddk_fail("--to-vm needs --server (or VDDK_SERVER)");
    if (modes && !strstr(modes, "nbd"))
        return vddk_fail("--to-vm writes over nbd or nbdssl; --transport %s cannot write", modes);
    if (!strncmp(target, "moref=", 6))
        target += 6;
    vddk_vsphere_session *sess;
    char buf[600];
    VixError e = vddk_disk_vsphere_session_open(base, &sess);
    if (e != VIX_OK)
        return vddk_fail("%s: %s", base->serverName, vix_detail(e, buf, sizeof buf));
    vddk_vsphere_vm *tv = NULL;
    uint32 n = 0;
    e = vddk_disk_vsphere_session_list(sess, target, NULL, &tv, &n);
    vddk_disk_vsphere_session_close(sess);
    if (e != VIX_OK || n != 1) {
        vddk_disk_vsphere_free(tv, n);
        return vddk_fail("%s: %s", target, e != VIX_OK ? vix_detail(e, buf, sizeof buf)
                                                       : "VM not found");
    }
    int ret = 0;
    /* Every disk must have its place before anything is written. */
    const vddk_vsphere_disk **dst = calloc(vm->ndisks ? vm->ndisks : 1, sizeof *dst);
    if (!dst)
        ret = vddk_fail("out of memory");
    for (size_t k = 0; ret == 0 && k < vm->ndisks; k++) {
        const struct mf_disk *md = &vm->disks[k];
        for (uint32 j = 0; j < tv->numDisks; j++)
            if (tv->disks[j].key == md->key)
                dst[k] = &tv->disks[j];
        if (!dst[k])
            ret = vddk_fail("%s has no disk with device key %d (the set's %s disk %d)", target,
                            md->key, vm->moref, md->key);
        else if (dst[k]->capacity != md->capacity)
            ret = vddk_fail("%s disk %d (%s) holds %llu bytes, the set's disk %llu", target,
                            md->key, dst[k]->path, (unsigned long long)dst[k]->capacity,
                            (unsigned long long)md->capacity);
    }
    VixDiskLibConnectParams cp = *base;
    char spec[160];
    snprintf(spec, sizeof spec, "moref=%s", target);
    cp.vmxSpec = spec;
    VixDiskLibConnection conn = NULL;
    if (ret == 0) {
        vddk_warn_clear();
        e = VixDiskLib_ConnectEx(&cp, FALSE, NULL, modes ? modes : "nbdssl:nbd", &conn);
        if (e != VIX_OK)
            ret = vddk_vix_error(e, base->serverName);
    }
    for (size_t k = 0; ret == 0 && k < vm->ndisks; k++) {
        const struct mf_disk *md = &vm->disks[k];
        char *src = xasprintf("%s/%s", set, md->file);
        if (!src) {
            ret = vddk_fail("out of memory");
            break;
        }
        struct vddk_progress *pg = vddk_progress_start(progress, dst[k]->path, md->capacity);
        vddk_warn_clear();
        /* A remote destination keeps its own type; the parameters are
         * only required to be there. */
        VixDiskLibCreateParams dp = {
            .diskType = VIXDISKLIB_DISK_VMFS_THIN,
            .adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
            .hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5,
            .capacity = md->capacity / VIXDISKLIB_SECTOR_SIZE,
        };
        e = VixDiskLib_Clone(conn, dst[k]->path, vddk_conn(), src, &dp, vddk_progress_cb, pg,
                             TRUE);
        vddk_progress_end(pg, e == VIX_OK);
        if (e != VIX_OK)
            ret = vddk_vix_error(e, dst[k]->path);
        else if (progress != VDDK_PROGRESS_OFF)
            printf("restored %s disk %d to %s %s\n", vm->moref, md->key, target, dst[k]->path);
        free(src);
    }
    if (conn)
        VixDiskLib_Disconnect(conn);
    free(dst);
    vddk_disk_vsphere_free(tv, n);
    return ret;
}

static int run_restore(int argc, char **argv);

const struct vddk_cmd vddk_cmd_restore = {
    "restore", "write the disks of a backup set to local files or into a VM",
    "usage: vddk restore SET --to DIR [-t TYPE] [--source-vm MOREF] [--overwrite]\n"
    "       vddk restore SET --to-vm MOREF [--source-vm MOREF] --server HOST ...\n"
    "\n"
    "--to DIR writes each disk of the set (its full content, through any base\n"
    "sets) as DIR/MOREF/disk-KEY.vmdk of type TYPE (default monolithicSparse;\n"
    "unallocated and zero blocks stay holes in sparse types).\n"
    "--to-vm writes them into the existing disks of a vSphere VM over nbd or\n"
    "nbdssl, matched by device key (capacities must be equal; the VM should be\n"
    "powered off).  Every block is written: what the disk held before is gone.\n"
    "With several VMs in the set, --source-vm picks one.\n"
    "\n"
    "  -t, --type TYPE      disk type of local copies (see 'vddk help create')\n"
    "      --overwrite      replace local files that exist\n"
    VDDK_PROGRESS_HELP,
    run_restore,
};

static int run_restore(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_restore;
    static const struct vddk_opt opts[] = {
        { 0, "to", 1, OPT_TO },           { 0, "to-vm", 1, OPT_TO_VM },
        { 't', "type", 1, OPT_TYPE },     { 0, "source-vm", 1, OPT_SOURCE_VM },
        { 0, "overwrite", 0, OPT_OVERWRITE }, VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct vddk_optstate st;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    const char *to = NULL, *to_vm = NULL, *source = NULL;
    VixDiskLibDiskType type = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    int id, overwrite = 0, progress = VDDK_PROGRESS_AUTO, ret;
    while ((id = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (id) {
        case VDDK_OPT_HELP: vddk_opt_free(&st); return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR: vddk_opt_free(&st); return VDDK_EXIT_USAGE;
        case OPT_TO: to = st.arg; break;
        case OPT_TO_VM: to_vm = st.arg; break;
        case OPT_SOURCE_VM: source = st.arg; break;
        case OPT_OVERWRITE: overwrite = 1; break;
        case VDDK_OPT_PROGRESS: progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: progress = VDDK_PROGRESS_OFF; break;
        case OPT_TYPE:
            type = vddk_parse_type(st.arg);
            if (type == VIXDISKLIB_DISK_UNKNOWN) {
                vddk_opt_free(&st);
                return vddk_usage_error(cmd, "unknown disk type %s (%s)", st.arg,
                                        vddk_type_list());
            }
            break;
        }
    }
    if ((ret = vddk_operands(cmd, &st, 1, 1, "SET")) != 0) {
        vddk_opt_free(&st);
        return ret;
    }
    if (!to == !to_vm) {
        vddk_opt_free(&st);
        return vddk_usage_error(cmd, "give one of --to DIR and --to-vm MOREF");
    }
    const char *set = st.operands[0];
    struct manifest *m = NULL;
    char err[1024];
    if (mf_load(set, &m, err, sizeof err) < 0) {
        vddk_opt_free(&st);
        return vddk_fail("%s", err);
    }
    if (source && !strncmp(source, "moref=", 6))
        source += 6;
    const struct mf_vm *only = source ? mf_find_vm(m, source) : NULL;
    if (source && !only)
        ret = vddk_fail("%s: the set holds no VM %s", set, source);
    else if (to_vm && !only && m->nvms != 1)
        ret = vddk_fail("%s: the set holds %zu VMs; pick one with --source-vm", set, m->nvms);
    else if (!vddk_conn())
        ret = VDDK_EXIT_FAIL;
    else if (to_vm)
        ret = restore_to_vm(set, only ? only : &m->vms[0], to_vm, progress);
    else if (mkdir(to, 0755) < 0 && errno != EEXIST)
        ret = vddk_fail("%s: cannot create: %s", to, strerror(errno));
    for (size_t i = 0; to && ret == 0 && i < m->nvms; i++) {
        if (only && only != &m->vms[i])
            continue;
        for (size_t k = 0; ret == 0 && k < m->vms[i].ndisks; k++)
            ret = restore_local(set, &m->vms[i], &m->vms[i].disks[k], to, type, overwrite,
                                progress);
    }
    mf_free(m);
    vddk_opt_free(&st);
    return ret;
}
