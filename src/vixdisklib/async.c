/* async.c - ReadAsync/WriteAsync on a small pool of worker threads.
 *
 * No thread exists until the first asynchronous request.  Local disks get
 * about one worker per CPU; the first request a worker must carry out on a
 * remote disk (NBD, https, NFC writes) grows the pool to
 * openvddk.async.remoteThreads (16), since its workers mostly wait for
 * replies and the transports pipeline whatever is in flight.  Requests from
 * all handles share one FIFO queue; each handle counts its outstanding
 * requests so Wait, Flush and Close can drain exactly that handle.  The
 * completion callback runs on a worker thread, exactly once per request.
 *
 * A read on a disk whose transport can start reads without waiting
 * (vdisk_ops.pread_start: NFC) is sent by the calling thread itself; the
 * transport's reader hands the finished request to the queue, and a
 * worker only runs the callback.  That saves a thread hand-off per request
 * (and a worker parked per request in flight); when the transport cannot
 * take it at once (all its slots in use, connection down) the request
 * goes the usual way. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vixdl.h"

#define MAX_WORKERS 32

struct req {
    struct req *next;
    VixDiskLibHandle h;
    int write;
    uint64 off, len;
    void *buf;
    VixDiskLibCompletionCB cb;
    void *data;
    int done;                   /* the transport did it: rc, msg are the result */
    int rc;
    char *msg;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct req *head, *tail;
    pthread_t threads[MAX_WORKERS];
    int nthreads;
    int stopping;
    int started;                /* requests a transport started and has not handed back */
} P = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void finish(VixDiskLibHandle h)
{
    pthread_mutex_lock(&h->alock);
    if (--h->pending == 0)
        pthread_cond_broadcast(&h->acond);
    pthread_mutex_unlock(&h->alock);
    vixdl_release(&h->obj);
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&P.lock);
        while (!P.head && !(P.stopping && P.started == 0))
            pthread_cond_wait(&P.cond, &P.lock);
        struct req *r = P.head;
        if (!r) {                       /* stopping and nothing left */
            pthread_mutex_unlock(&P.lock);
            return NULL;
        }
        P.head = r->next;
        if (!P.head)
            P.tail = NULL;
        pthread_mutex_unlock(&P.lock);

        int rc;
        if (r->done) {                  /* the transport's result; the detail is ours now */
            rc = r->rc < 0 ? vd_err_set(-r->rc, "%s", r->msg ? r->msg : "") : 0;
            free(r->msg);
        } else {
            rc = vixdl_io(r->h, r->write, r->buf, r->len, r->off);
        }
        VixError e = rc < 0 ? vixdl_fail_engine(r->write ? "WriteAsync" : "ReadAsync", rc)
                            : VIX_OK;
        r->cb(r->data, e);
        VixDiskLibHandle h = r->h;
        free(r);
        finish(h);
    }
}

/* Grow the pool to want threads (under P.lock). */
static int start_workers(int want)
{
    if (want > MAX_WORKERS)
        want = MAX_WORKERS;
    P.stopping = 0;
    while (P.nthreads < want) {
        if (pthread_create(&P.threads[P.nthreads], NULL, worker, NULL) != 0)
            break;
        P.nthreads++;
    }
    return P.nthreads ? 0 : -1;
}

/* Online CPUs, asked once: sysconf reads a /sys file on every call, and
 * this runs for every request. */
static long online_cpus(void)
{
    static _Atomic long cached;
    long n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}

/* Workers for a request: about one per CPU, and remoteThreads for a remote
 * disk's request that a worker must carry out (it mostly waits for the
 * reply).  A read the transport starts itself needs a worker only for its
 * callback, and more of them than CPUs would only spread the wake-ups of
 * short callbacks over threads with cold caches (NFC, 64 KiB reads at
 * depth 16 on 2 CPUs: 0.60 s with 16 workers, 0.47 s with 2).  Worked out
 * once per connection, at ConnectEx: the configuration is loaded at InitEx,
 * and a connection keeps the sizes it was made with. */
void vixdl_async_conn_init(struct VixDiskLibConnectParam *c)
{
    long n = vd_config_long("openvddk.async.threads", 0);
    if (n <= 0) {
        n = online_cpus();
        if (n < 2)
            n = 2;
        if (n > 8)
            n = 8;
    }
    long carried = n;
    if (c->remote) {
        long r = vd_config_long("openvddk.async.remoteThreads", 16);
        if (r > carried)
            carried = r;
    }
    c->async_workers[0] = carried > MAX_WORKERS ? MAX_WORKERS : (int)carried;
    c->async_workers[1] = n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

static int workers_wanted(VixDiskLibHandle h, int started)
{
    return h->conn->async_workers[started ? 1 : 0];
}

/* A transport finished a request it started (on its own thread). */
static void transport_done(void *arg, int rc, const char *msg)
{
    struct req *r = arg;
    r->rc = rc;
    r->msg = rc < 0 ? strdup(msg ? msg : "") : NULL;
    r->done = 1;
    r->next = NULL;
    pthread_mutex_lock(&P.lock);
    if (P.tail)
        P.tail->next = r;
    else
        P.head = r;
    P.tail = r;
    P.started--;
    int all = P.stopping;               /* the workers may leave once all are back */
    pthread_mutex_unlock(&P.lock);
    /* Signalled after the unlock: the woken worker need not wait for the
     * lock this thread still holds. */
    if (all)
        pthread_cond_broadcast(&P.cond);
    else
        pthread_cond_signal(&P.cond);
}

/* Whether the transport may start r itself: a read that vixdl_io would
 * hand to pread as it is (no bounce buffer for UNBUFFERED). */
static int transport_starts(VixDiskLibHandle h, const struct req *r)
{
    return !r->write && h->disk->ops->pread_start &&
           (!(h->flags & VIXDISKLIB_FLAG_OPEN_UNBUFFERED) || ((uintptr_t)r->buf & 4095) == 0);
}

int vixdl_async_submit(VixDiskLibHandle h, int write, uint64 off, uint64 len, void *buf,
                       VixDiskLibCompletionCB cb, void *data)
{
    struct req *r = malloc(sizeof *r);
    if (!r)
        return vd_err_set(VD_E_NOMEM, "out of memory for an asynchronous request");
    *r = (struct req){ NULL, h, write, off, len, buf, cb, data, 0, 0, NULL };
    /* The request holds its own reference on the handle until it is done. */
    atomic_fetch_add(&h->obj.refs, 1);
    pthread_mutex_lock(&h->alock);
    h->pending++;
    pthread_mutex_unlock(&h->alock);

    int starts = transport_starts(h, r);
    int want = workers_wanted(h, starts);
    pthread_mutex_lock(&P.lock);
    if (start_workers(want) < 0) {
        pthread_mutex_unlock(&P.lock);
        free(r);
        finish(h);
        return vd_err_set(VD_E_NOMEM, "cannot start I/O worker threads");
    }
    if (starts) {
        P.started++;                    /* before: it may come back before the call returns */
        pthread_mutex_unlock(&P.lock);
        if (h->disk->ops->pread_start(h->disk, buf, len, off, transport_done, r) == 0)
            return 0;                   /* r belongs to the transport, then a worker */
        pthread_mutex_lock(&P.lock);
        P.started--;
    }
    if (P.tail)
        P.tail->next = r;
    else
        P.head = r;
    P.tail = r;
    pthread_mutex_unlock(&P.lock);
    pthread_cond_signal(&P.cond);       /* after the unlock, as in transport_done */
    return 0;
}

void vixdl_async_wait(VixDiskLibHandle h)
{
    pthread_mutex_lock(&h->alock);
    while (h->pending > 0)
        pthread_cond_wait(&h->acond, &h->alock);
    pthread_mutex_unlock(&h->alock);
}

void vixdl_async_shutdown(void)
{
    pthread_mutex_lock(&P.lock);
    int n = P.nthreads;
    P.stopping = 1;
    pthread_cond_broadcast(&P.cond);
    pthread_mutex_unlock(&P.lock);
    for (int i = 0; i < n; i++)
        pthread_join(P.threads[i], NULL);
    pthread_mutex_lock(&P.lock);
    P.nthreads = 0;
    P.stopping = 0;
    pthread_mutex_unlock(&P.lock);
}
