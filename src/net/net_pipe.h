/* net_pipe.h - requests in flight on one connection, as the NBD and NFC
 * clients pipeline them.
 *
 * Callers split an operation into requests that share a batch; each
 * request is registered in flight (net_pipe_add_locked, after waiting for
 * room), its reply is matched by the client's reader thread, which
 * completes it.  The caller waits for the whole batch.  A connection made
 * dead (a broken socket, a protocol violation, no reply for the timeout)
 * fails every request in flight and every later one with the same code and
 * message.  All *_locked functions expect pp->lock held.
 *
 * A request the reader is receiving into is "claimed": a kill leaves it
 * alone and the reader completes it when it stops. */
#ifndef VD_NET_NET_PIPE_H
#define VD_NET_NET_PIPE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "net_io.h"

#define NET_PIPE_MSG 512

struct net_pipe_batch {
    int remaining;
    int rc;                      /* first failure (negative vd_err) */
    char msg[NET_PIPE_MSG];
    pthread_cond_t cond;
    /* Set by net_pipe_batch_init_done: called (with the pipe's lock held)
     * instead of signalling cond when the last request completes.  It may
     * free the batch and its requests; it must only take leaf locks. */
    void (*done)(struct net_pipe_batch *b);
};

struct net_pipe_req {
    struct net_pipe_req *next;
    struct net_pipe_batch *b;
    int claimed;
    int is_write;                /* counted in nwrites while in flight */
};

struct net_pipe {
    pthread_mutex_t lock;
    pthread_cond_t slot;         /* room for a request; writes drained */
    struct net_pipe_req *inflight;
    unsigned ninflight, max_inflight, nwrites;
    int dead, closing, dead_rc;
    char dead_msg[NET_PIPE_MSG];
    _Atomic int64_t last_rx;     /* last reply bytes (monotonic ms); no lock needed */
    int timeout_ms;
    const char *what;            /* "server", "NFC server": starts messages */
    struct net_stream *st;       /* shut down when the connection dies */
};

void net_pipe_init(struct net_pipe *pp, struct net_stream *st, const char *what,
                   int timeout_ms, unsigned max_inflight);
void net_pipe_destroy(struct net_pipe *pp);
void net_pipe_batch_init(struct net_pipe_batch *b);
/* A batch nobody waits for: done(b) runs when its last request completes
 * (no cond to destroy).  Nothing waits for its replies either, so the
 * reader must call net_pipe_expire to time them out. */
void net_pipe_batch_init_done(struct net_pipe_batch *b, void (*done)(struct net_pipe_batch *b));

/* Wait for room (failing the connection after timeout_ms without any
 * reply), then count r in b and put it in flight.  Returns 0, or -1 when
 * the connection is dead (b then holds its failure). */
int net_pipe_add_locked(struct net_pipe *pp, struct net_pipe_req *r);
/* Take r out of flight with rc (0 or a negative vd_err and its message). */
void net_pipe_complete_locked(struct net_pipe *pp, struct net_pipe_req *r, int rc,
                              const char *msg);
/* The same, taking the lock and unclaiming r. */
void net_pipe_finish(struct net_pipe *pp, struct net_pipe_req *r, int rc, const char *msg);
/* Unclaim r after a partial reply; if the connection died meanwhile, r
 * fails with it. */
void net_pipe_release(struct net_pipe *pp, struct net_pipe_req *r);
/* Make the connection dead with code (positive vd_err) and msg. */
void net_pipe_kill_locked(struct net_pipe *pp, int code, const char *msg);
void net_pipe_kill(struct net_pipe *pp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fail a claimed r with the connection's failure (after a kill). */
void net_pipe_fail_claimed(struct net_pipe *pp, struct net_pipe_req *r);
/* Wait until b completes; 0 or its first failure (detail set). */
int net_pipe_wait(struct net_pipe *pp, struct net_pipe_batch *b);
/* Wait until no write is in flight; 0 or the connection's failure. */
int net_pipe_drain_writes(struct net_pipe *pp);
/* Note reply bytes arriving (resets the no-reply clock). */
void net_pipe_progress(struct net_pipe *pp);
/* For the reader, between replies: -1 when nothing is in flight, else the
 * ms left before the requests in flight time out (>= 1), or 0 when the
 * connection is dead (made dead here when nothing arrived for the
 * timeout, as the waiters do). */
int net_pipe_expire(struct net_pipe *pp);
int net_pipe_is_dead(struct net_pipe *pp);

#endif
