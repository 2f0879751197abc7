/* lagproxy.c - a TCP relay on loopback that adds a fixed one-way delay.
 *
 *   lagproxy [-p PORT] DELAY_US TARGET_PORT
 *
 * Listens on 127.0.0.1:PORT (0, the default, picks a free port), prints
 * the port on stdout, and relays every accepted connection to
 * 127.0.0.1:TARGET_PORT.  Each chunk read from one side is written to the
 * other DELAY_US microseconds after it arrived, in order, in both
 * directions: a round trip gains 2 x DELAY_US, as over a network link,
 * while bandwidth is left alone (no netem in the test kernel).  The
 * benchmarks use it to show what pipelining buys when replies take time
 * to come back; TLS passes through untouched.
 *
 * The bytes themselves never enter this process: each direction moves
 * them with splice() from the socket into a pipe and, once due, from the
 * pipe to the other socket, while a queue remembers how many arrived
 * when.  So the relay costs little CPU next to the programs measured
 * (two cores shared by all).  A full pipe (1 MiB where the system allows)
 * stops the reading side, and TCP's own flow control takes over.  SIGTERM
 * ends it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PIPE_BYTES (1 << 20)

static long delay_ns;
static int target_port;

struct chunk {
    struct chunk *next;
    struct timespec due;
    size_t len;
};

struct conn;

struct dir {
    struct conn *c;
    int from, to;
    int pipe[2];    /* the bytes in flight */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct chunk *head, *tail;
    int eof;        /* the reader saw the end (or an error) */
    int broken;     /* the writer cannot write any more */
};

struct conn {
    struct dir d[2];
    pthread_mutex_t lock;
    int threads;    /* still running; the last one closes and frees */
    int fds[2];
};

static void conn_leave(struct conn *c)
{
    pthread_mutex_lock(&c->lock);
    int last = --c->threads == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    for (int i = 0; i < 2; i++) {
        struct dir *d = &c->d[i];
        while (d->head) {
            struct chunk *n = d->head->next;
            free(d->head);
            d->head = n;
        }
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->cond);
        close(d->pipe[0]);
        close(d->pipe[1]);
        close(c->fds[i]);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static void *reader(void *arg)
{
    struct dir *d = arg;
    for (;;) {
        /* Wait for data, then for room in the pipe (the writer may be
         * behind), and only then splice without blocking: a splice into
         * a pipe holds the pipe's lock while it waits for the socket,
         * which would stop the writer taking bytes out meanwhile. */
        struct pollfd pf = { .fd = d->from, .events = POLLIN };
        if (poll(&pf, 1, -1) < 0 && errno != EINTR)
            break;
        pf = (struct pollfd){ .fd = d->pipe[1], .events = POLLOUT };
        int r;
        while ((r = poll(&pf, 1, 100)) == 0 || (r < 0 && errno == EINTR)) {
            pthread_mutex_lock(&d->lock);
            int broken = d->broken;     /* nobody will empty the pipe */
            pthread_mutex_unlock(&d->lock);
            if (broken)
                break;
        }
        if (r <= 0)
            break;
        ssize_t n = splice(d->from, NULL, d->pipe[1], NULL, PIPE_BYTES,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        struct chunk *k = malloc(sizeof *k);
        if (!k)
            break;
        clock_gettime(CLOCK_MONOTONIC, &k->due);
        k->due.tv_nsec += delay_ns;
        k->due.tv_sec += k->due.tv_nsec / 1000000000L;
        k->due.tv_nsec %= 1000000000L;
        k->len = (size_t)n;
        k->next = NULL;
        pthread_mutex_lock(&d->lock);
        int broken = d->broken;
        if (!broken) {
            if (d->tail)
                d->tail->next = k;
            else
                d->head = k;
            d->tail = k;
            pthread_cond_broadcast(&d->cond);
        }
        pthread_mutex_unlock(&d->lock);
        if (broken) {
            free(k);
            break;
        }
    }
    pthread_mutex_lock(&d->lock);
    d->eof = 1;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    conn_leave(d->c);
    return NULL;
}

/* Move len bytes from the pipe to the socket. */
static int send_all(struct dir *d, size_t len)
{
    while (len > 0) {
        ssize_t n = splice(d->pipe[0], NULL, d->to, NULL, len, SPLICE_F_MOVE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len -= (size_t)n;
    }
    return 0;
}

static void *writer(void *arg)
{
    struct dir *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (!d->head && !d->eof)
            pthread_cond_wait(&d->cond, &d->lock);
        struct chunk *k = d->head;
        pthread_mutex_unlock(&d->lock);
        if (!k) {                       /* the reader ended and all is sent */
            shutdown(d->to, SHUT_WR);
            break;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &k->due, NULL) == EINTR)
            ;
        int bad = send_all(d, k->len) < 0;
        pthread_mutex_lock(&d->lock);
        d->head = k->next;
        if (!d->head)
            d->tail = NULL;
        pthread_mutex_unlock(&d->lock);
        free(k);
        if (bad) {
            /* The receiving side is gone: stop the reader of this
             * direction and let the other direction see the end too. */
            pthread_mutex_lock(&d->lock);
            d->broken = 1;
            pthread_mutex_unlock(&d->lock);
            shutdown(d->from, SHUT_RDWR);
            shutdown(d->to, SHUT_RDWR);
            break;
        }
    }
    conn_leave(d->c);
    return NULL;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)target_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void relay(int client)
{
    int server = dial();
    if (server < 0) {
        perror("lagproxy: connect to the target");
        close(client);
        return;
    }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(client);
        close(server);
        return;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->fds[0] = client;
    c->fds[1] = server;
    c->threads = 4;
    for (int i = 0; i < 2; i++) {
        struct dir *d = &c->d[i];
        d->c = c;
        d->from = c->fds[i];
        d->to = c->fds[1 - i];
        if (pipe(d->pipe) < 0) {
            perror("lagproxy: pipe");
            exit(1);
        }
        fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_BYTES);   /* the default 64 KiB else */
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->cond, NULL);
    }
    for (int i = 0; i < 2; i++) {
        struct dir *d = &c->d[i];
        pthread_t t;
        /* A thread that cannot start counts as finished at once, and its
         * partner is told: no reader means the end, no writer a break. */
        if (pthread_create(&t, NULL, writer, d) == 0) {
            pthread_detach(t);
        } else {
            pthread_mutex_lock(&d->lock);
            d->broken = 1;
            pthread_mutex_unlock(&d->lock);
            conn_leave(c);
        }
        if (pthread_create(&t, NULL, reader, d) == 0) {
            pthread_detach(t);
        } else {
            pthread_mutex_lock(&d->lock);
            d->eof = 1;
            pthread_cond_broadcast(&d->cond);
            pthread_mutex_unlock(&d->lock);
            conn_leave(c);
        }
    }
}

int main(int argc, char **argv)
{
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "p:")) != -1) {
        if (opt == 'p') {
            port = atoi(optarg);
        } else {
            fprintf(stderr, "usage: lagproxy [-p PORT] DELAY_US TARGET_PORT\n");
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: lagproxy [-p PORT] DELAY_US TARGET_PORT\n");
        return 2;
    }
    delay_ns = atol(argv[optind]) * 1000L;
    target_port = atoi(argv[optind + 1]);
    if (delay_ns < 0 || delay_ns >= 1000000000L || target_port <= 0 || target_port > 65535) {
        fprintf(stderr, "lagproxy: delay must be 0..999999 us and the port 1..65535\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 128) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) < 0) {
        perror("lagproxy: listen");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("lagproxy: accept");
            return 1;
        }
        relay(c);
    }
}
