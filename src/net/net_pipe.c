/* net_pipe.c - requests in flight on one connection (see net_pipe.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net_pipe.h"
#include "../util/err.h"

static pthread_condattr_t mono_attr;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;

static void mono_init(void)
{
    pthread_condattr_init(&mono_attr);
    pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC);
}

static struct timespec abs_ms(int64_t ms_from_now)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms_from_now / 1000;
    ts.tv_nsec += (ms_from_now % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

void net_pipe_init(struct net_pipe *pp, struct net_stream *st, const char *what,
                   int timeout_ms, unsigned max_inflight)
{
    pthread_once(&mono_once, mono_init);
    memset(pp, 0, sizeof *pp);
    pthread_mutex_init(&pp->lock, NULL);
    pthread_cond_init(&pp->slot, &mono_attr);
    pp->st = st;
    pp->what = what;
    pp->timeout_ms = timeout_ms > 0 ? timeout_ms : 60000;
    pp->max_inflight = max_inflight ? max_inflight : 64;
    pp->last_rx = net_now_ms();
}

void net_pipe_destroy(struct net_pipe *pp)
{
    pthread_mutex_destroy(&pp->lock);
    pthread_cond_destroy(&pp->slot);
}

void net_pipe_batch_init(struct net_pipe_batch *b)
{
    pthread_once(&mono_once, mono_init);
    memset(b, 0, sizeof *b);
    pthread_cond_init(&b->cond, &mono_attr);
}

void net_pipe_batch_init_done(struct net_pipe_batch *b, void (*done)(struct net_pipe_batch *b))
{
    memset(b, 0, sizeof *b);
    b->done = done;
}

/* Kill the connection when nothing arrived for the timeout; ms left. */
static int64_t expire_locked(struct net_pipe *pp)
{
    int64_t left = pp->timeout_ms - (net_now_ms() - pp->last_rx);
    if (left <= 0 && !pp->dead) {
        char m[NET_PIPE_MSG];
        snprintf(m, sizeof m, "%s %s: no reply for %d ms (timed out)", pp->what,
                 pp->st->peer, pp->timeout_ms);
        net_pipe_kill_locked(pp, VD_E_NET_LOST, m);
    }
    return left;
}

/* One timed wait on cond; kills the connection when nothing arrived for
 * the timeout. */
static void timed_wait_locked(struct net_pipe *pp, pthread_cond_t *cond)
{
    struct timespec ts = abs_ms(pp->timeout_ms);
    if (pthread_cond_timedwait(cond, &pp->lock, &ts) == ETIMEDOUT && !pp->dead)
        expire_locked(pp);
}

int net_pipe_expire(struct net_pipe *pp)
{
    pthread_mutex_lock(&pp->lock);
    int ms = 0;
    if (!pp->dead && pp->ninflight == 0) {
        ms = -1;
    } else if (!pp->dead) {
        int64_t left = expire_locked(pp);
        ms = pp->dead ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
    }
    pthread_mutex_unlock(&pp->lock);
    return ms;
}

int net_pipe_add_locked(struct net_pipe *pp, struct net_pipe_req *r)
{
    struct net_pipe_batch *b = r->b;
    while (!pp->dead && pp->ninflight >= pp->max_inflight)
        timed_wait_locked(pp, &pp->slot);
    if (pp->dead) {
        if (b->rc == 0) {
            b->rc = pp->dead_rc;
            snprintf(b->msg, sizeof b->msg, "%s", pp->dead_msg);
        }
        return -1;
    }
    if (pp->ninflight == 0)
        pp->last_rx = net_now_ms();      /* the clock starts with the first request */
    b->remaining++;
    r->claimed = 0;
    r->next = pp->inflight;
    pp->inflight = r;
    pp->ninflight++;
    if (r->is_write)
        pp->nwrites++;
    return 0;
}

void net_pipe_complete_locked(struct net_pipe *pp, struct net_pipe_req *r, int rc,
                              const char *msg)
{
    struct net_pipe_req **rp = &pp->inflight;
    while (*rp && *rp != r)
        rp = &(*rp)->next;
    if (*rp) {
        *rp = r->next;
        pp->ninflight--;
        if (r->is_write)
            pp->nwrites--;
        pthread_cond_broadcast(&pp->slot);
    }
    struct net_pipe_batch *b = r->b;
    if (rc < 0 && b->rc == 0) {
        b->rc = rc;
        snprintf(b->msg, sizeof b->msg, "%s", msg);
    }
    if (--b->remaining == 0) {
        if (b->done)
            b->done(b);             /* may free b and r */
        else
            pthread_cond_broadcast(&b->cond);
    }
}

void net_pipe_finish(struct net_pipe *pp, struct net_pipe_req *r, int rc, const char *msg)
{
    pthread_mutex_lock(&pp->lock);
    r->claimed = 0;
    net_pipe_complete_locked(pp, r, rc, msg);
    pthread_mutex_unlock(&pp->lock);
}

void net_pipe_release(struct net_pipe *pp, struct net_pipe_req *r)
{
    pthread_mutex_lock(&pp->lock);
    r->claimed = 0;
    if (pp->dead)
        net_pipe_complete_locked(pp, r, pp->dead_rc, pp->dead_msg);
    pthread_mutex_unlock(&pp->lock);
}

void net_pipe_fail_claimed(struct net_pipe *pp, struct net_pipe_req *r)
{
    pthread_mutex_lock(&pp->lock);
    r->claimed = 0;
    net_pipe_complete_locked(pp, r, pp->dead_rc, pp->dead_msg);
    pthread_mutex_unlock(&pp->lock);
}

void net_pipe_kill_locked(struct net_pipe *pp, int code, const char *msg)
{
    if (!pp->dead) {
        pp->dead = 1;
        pp->dead_rc = -code;
        snprintf(pp->dead_msg, sizeof pp->dead_msg, "%s", msg);
        net_shutdown(pp->st);
    }
    struct net_pipe_req *r = pp->inflight;
    while (r) {
        struct net_pipe_req *n = r->next;
        if (!r->claimed)
            net_pipe_complete_locked(pp, r, pp->dead_rc, pp->dead_msg);
        r = n;
    }
    pthread_cond_broadcast(&pp->slot);
}

void net_pipe_kill(struct net_pipe *pp, int code, const char *fmt, ...)
{
    char m[NET_PIPE_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&pp->lock);
    net_pipe_kill_locked(pp, code, m);
    pthread_mutex_unlock(&pp->lock);
}

int net_pipe_wait(struct net_pipe *pp, struct net_pipe_batch *b)
{
    pthread_mutex_lock(&pp->lock);
    while (b->remaining > 0)
        timed_wait_locked(pp, &b->cond);
    pthread_mutex_unlock(&pp->lock);
    if (b->rc < 0)
        return vd_err_set(-b->rc, "%s", b->msg);
    return 0;
}

int net_pipe_drain_writes(struct net_pipe *pp)
{
    pthread_mutex_lock(&pp->lock);
    while (pp->nwrites > 0 && !pp->dead)
        timed_wait_locked(pp, &pp->slot);
    int rc = pp->dead ? pp->dead_rc : 0;
    char m[NET_PIPE_MSG];
    snprintf(m, sizeof m, "%s", pp->dead_msg);
    pthread_mutex_unlock(&pp->lock);
    return rc < 0 ? vd_err_set(-rc, "%s", m) : 0;
}

void net_pipe_progress(struct net_pipe *pp)
{
    /* Called for every piece of every reply: an atomic store, no lock. */
    atomic_store_explicit(&pp->last_rx, net_now_ms(), memory_order_relaxed);
}

int net_pipe_is_dead(struct net_pipe *pp)
{
    pthread_mutex_lock(&pp->lock);
    int d = pp->dead;
    pthread_mutex_unlock(&pp->lock);
    return d;
}
