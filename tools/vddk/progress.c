/* progress.c - the progress bar of long operations, and their clean
 * cancellation on SIGINT/SIGTERM.
 *
 *   clone  42% [##########              ] 118.3 MiB/s, 0:07 left
 *
 * drawn on stderr, redrawn in place at most ten times a second, when
 * stderr is a terminal (or --progress); the last state stays on its own
 * line.  When the amount of work is unknown (check), an elapsed-time
 * indicator is drawn by a helper thread instead. */
#include "vddk.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_CELLS 24

struct vddk_progress {
    pthread_mutex_t lock;
    int draw;                 /* drawing at all */
    const char *label;
    uint64_t total, done;
    double start, last;       /* vddk_now() at start and at the last draw */
    size_t last_len;          /* length of the line drawn last */
    int drawn;
    /* unknown total: a ticking thread */
    pthread_t thread;
    int have_thread, stop;
    pthread_cond_t cond;
};

static volatile sig_atomic_t interrupted;
static struct sigaction old_int, old_term;
static int handlers_set;

static void on_signal(int sig)
{
    if (interrupted) {
        /* A second signal: stop now, the default way. */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

int vddk_interrupted(void)
{
    return interrupted != 0;
}

double vddk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void format_time(double secs, char *buf, size_t n)
{
    if (secs < 0)
        secs = 0;
    unsigned long s = (unsigned long)(secs + 0.5);
    if (s >= 3600)
        snprintf(buf, n, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%lu:%02lu", s / 60, s % 60);
}

/* Draw the current state; final adds the newline. Called with the lock. */
static void draw(struct vddk_progress *p, int final, int ok)
{
    double now = vddk_now(), el = now - p->start;
    char line[256], t[32], h[VDDK_HUMAN_LEN];
    if (p->total) {
        uint64_t done = p->done < p->total ? p->done : p->total;
        if (final && ok)
            done = p->total;
        int pct = (int)((double)done * 100.0 / (double)p->total);
        int cells = (int)((double)done * BAR_CELLS / (double)p->total);
        char bar[BAR_CELLS + 1];
        for (int i = 0; i < BAR_CELLS; i++)
            bar[i] = i < cells ? '#' : ' ';
        bar[BAR_CELLS] = '\0';
        double rate = el > 0 ? (double)done / el : 0;
        int n = snprintf(line, sizeof line, "%s %3d%% [%s] %s/s", p->label, pct, bar,
                         vddk_human((uint64_t)rate, h));
        if (final) {
            format_time(el, t, sizeof t);
            snprintf(line + n, sizeof line - (size_t)n, ", %s elapsed", t);
        } else if (done > 0 && el >= 0.3 && rate > 0) {
            format_time((double)(p->total - done) / rate, t, sizeof t);
            snprintf(line + n, sizeof line - (size_t)n, ", %s left", t);
        } else {
            snprintf(line + n, sizeof line - (size_t)n, ", --:-- left");
        }
    } else {
        /* A marker moving to and fro. */
        char bar[BAR_CELLS + 1];
        int period = 2 * (BAR_CELLS - 3);
        int step = (int)(el * 8) % period;
        int at = step < BAR_CELLS - 3 ? step : period - step;
        for (int i = 0; i < BAR_CELLS; i++)
            bar[i] = i >= at && i < at + 3 ? '=' : ' ';
        bar[BAR_CELLS] = '\0';
        format_time(el, t, sizeof t);
        snprintf(line, sizeof line, "%s [%s] %s elapsed%s", p->label,
                 final && ok ? "########################" : bar, t,
                 final ? (ok ? ", done" : "") : "");
    }
    size_t len = strlen(line);
    size_t pad = p->last_len > len ? p->last_len - len : 0;
    fprintf(stderr, "\r%s%*s%s", line, (int)pad, "", final ? "\n" : "");
    fflush(stderr);
    p->last_len = len;
    p->last = now;
    p->drawn = 1;
}

static void *ticker(void *arg)
{
    struct vddk_progress *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        draw(p, 0, 0);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cond, &p->lock, &ts);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct vddk_progress *vddk_progress_start(int mode, const char *label, uint64_t total)
{
    interrupted = 0;
    if (!handlers_set) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
        handlers_set = 1;
    }
    struct vddk_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->label = label;
    p->total = total;
    p->start = p->last = vddk_now();
    p->draw = mode == VDDK_PROGRESS_ON ||
              (mode == VDDK_PROGRESS_AUTO && isatty(STDERR_FILENO));
    if (p->draw) {
        pthread_mutex_lock(&p->lock);
        draw(p, 0, 0);
        pthread_mutex_unlock(&p->lock);
        if (total == 0 && pthread_create(&p->thread, NULL, ticker, p) == 0)
            p->have_thread = 1;
    }
    return p;
}

void vddk_progress_set(struct vddk_progress *p, uint64_t done)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->done = done;
    if (p->draw && p->total && vddk_now() - p->last >= 0.1)
        draw(p, 0, 0);
    pthread_mutex_unlock(&p->lock);
}

Bool vddk_progress_cb(void *data, int percent)
{
    struct vddk_progress *p = data;
    if (p && p->total) {
        if (percent < 0)
            percent = 0;
        if (percent > 100)
            percent = 100;
        vddk_progress_set(p, (uint64_t)((double)p->total * percent / 100.0));
    }
    return interrupted ? FALSE : TRUE;
}

void vddk_progress_end(struct vddk_progress *p, int ok)
{
    if (p) {
        if (p->have_thread) {
            pthread_mutex_lock(&p->lock);
            p->stop = 1;
            pthread_cond_signal(&p->cond);
            pthread_mutex_unlock(&p->lock);
            pthread_join(p->thread, NULL);
        }
        if (p->draw) {
            pthread_mutex_lock(&p->lock);
            draw(p, 1, ok);
            pthread_mutex_unlock(&p->lock);
        }
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
    }
    if (handlers_set) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        handlers_set = 0;
    }
}
