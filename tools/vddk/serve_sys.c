/* serve_sys.c - `vddk serve` as a system service: sockets from systemd,
 * notifications, the config file, replaceable datastores (serve_sys.h). */
#include "serve_sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/err.h"

/* ---- socket activation ------------------------------------------------------- */

/* A decimal number in [1, max]; -1 otherwise. */
static long parse_pos(const char *s, long max)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > max)
        return -1;
    return v;
}

int serve_listen_fds(char *err, size_t errlen)
{
    const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
    long n = 0;
    int rc = 0;
    if (pid_s && fds_s) {
        long pid = parse_pos(pid_s, LONG_MAX);
        if (pid < 0) {
            snprintf(err, errlen, "LISTEN_PID=\"%s\" is not a process id", pid_s);
            rc = -1;
        } else if (pid == (long)getpid()) {
            n = parse_pos(fds_s, 16);
            if (n < 0) {
                snprintf(err, errlen, "LISTEN_FDS=\"%s\": expected 1 to 16 sockets", fds_s);
                rc = -1;
            }
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (rc < 0)
        return -1;
    for (int fd = SERVE_LISTEN_FDS_START; fd < SERVE_LISTEN_FDS_START + n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
            snprintf(err, errlen, "LISTEN_FDS=%ld, but descriptor %d is not open", n, fd);
            return -1;
        }
    }
    return (int)n;
}

int serve_check_listener(int fd, char *desc, size_t desclen)
{
    int type = 0, acc = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0) {
        snprintf(desc, desclen, "descriptor %d is not a socket: %s", fd, strerror(errno));
        return -1;
    }
    l = sizeof acc;
    if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) < 0 ||
        !acc) {
        snprintf(desc, desclen, "descriptor %d is not a listening stream socket "
                 "(ListenStream= and Accept=no in the socket unit)", fd);
        return -1;
    }
    struct sockaddr_storage ss;
    l = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) {
        snprintf(desc, desclen, "descriptor %d: getsockname: %s", fd, strerror(errno));
        return -1;
    }
    char a[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        snprintf(desc, desclen, "%s:%u", a, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
        snprintf(desc, desclen, "[%s]:%u", a, ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t pl = l > offsetof(struct sockaddr_un, sun_path)
                        ? l - offsetof(struct sockaddr_un, sun_path) : 0;
        if (pl > 0 && un->sun_path[0] == '\0')    /* abstract */
            snprintf(desc, desclen, "unix:@%.*s", (int)(pl - 1), un->sun_path + 1);
        else
            snprintf(desc, desclen, "unix:%.*s", (int)strnlen(un->sun_path, pl), un->sun_path);
    } else {
        snprintf(desc, desclen, "descriptor %d: address family %d is not supported", fd,
                 ss.ss_family);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    return 0;
}

/* ---- notifications ----------------------------------------------------------- */

int serve_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t pl = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || pl >= sizeof sa.sun_path) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    memcpy(sa.sun_path, path, pl);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t len = strlen(state);
    ssize_t w = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, sl);
    int e = errno;
    close(fd);
    if (w < 0 || (size_t)w != len) {
        errno = w < 0 ? e : EMSGSIZE;
        return -1;
    }
    return 1;
}

int serve_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char m[64];
    snprintf(m, sizeof m, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    return serve_notify(m);
}

int serve_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* ---- the config file ------------------------------------------------------------ */

#define CONF_LINE_MAX 4096

int serve_conf_bool(const char *v)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return 1;
        if (strcasecmp(v, no[i]) == 0)
            return 0;
    }
    return -1;
}

int serve_conf_read(const char *path,
                    int (*set)(void *ctx, const char *key, const char *value, char *err,
                               size_t errlen),
                    void *ctx, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the config file: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    char msg[512];
    while (rc == 0 && (got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        if (strlen(line) != n) {
            snprintf(err, errlen, "%s:%d: the line holds a NUL byte", path, lineno);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n > CONF_LINE_MAX) {
            snprintf(err, errlen, "%s:%d: the line is longer than %d bytes", path, lineno,
                     CONF_LINE_MAX);
            rc = -1;
            break;
        }
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        char *key = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
            p++;
        char *key_end = p;
        while (*p == ' ' || *p == '\t')
            p++;
        if (key_end == key || *p != '=') {
            snprintf(err, errlen, "%s:%d: expected \"key = value\", not \"%.80s\"", path,
                     lineno, key);
            rc = -1;
            break;
        }
        *key_end = '\0';
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        msg[0] = '\0';
        if (set(ctx, key, p, msg, sizeof msg) < 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: cannot read the config file: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- replaceable datastores ----------------------------------------------------- */

struct dsgen {
    struct nbd_datastores *ds;
    struct nbd_backend be;
    unsigned users;
};

struct serve_dsw {
    pthread_mutex_t lock;
    struct dsgen *cur;
};

static struct dsgen *gen_new(struct nbd_datastores *ds)
{
    struct dsgen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ds = ds;
    nbd_ds_backend(ds, &g->be);
    return g;
}

static void gen_free(struct dsgen *g)
{
    nbd_ds_free(g->ds);
    free(g);
}

static struct dsgen *gen_get(struct serve_dsw *w)
{
    pthread_mutex_lock(&w->lock);
    struct dsgen *g = w->cur;
    g->users++;
    pthread_mutex_unlock(&w->lock);
    return g;
}

static void gen_put(struct serve_dsw *w, struct dsgen *g)
{
    pthread_mutex_lock(&w->lock);
    int gone = --g->users == 0 && g != w->cur;
    pthread_mutex_unlock(&w->lock);
    if (gone)
        gen_free(g);
}

int serve_dsw_new(struct nbd_datastores *ds, struct serve_dsw **out)
{
    struct serve_dsw *w = calloc(1, sizeof *w);
    struct dsgen *g = w ? gen_new(ds) : NULL;
    if (!g) {
        free(w);
        nbd_ds_free(ds);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&w->lock, NULL);
    w->cur = g;
    *out = w;
    return 0;
}

void serve_dsw_set(struct serve_dsw *w, struct nbd_datastores *ds)
{
    struct dsgen *g = gen_new(ds);
    if (!g) {                /* out of memory: keep the current set */
        nbd_ds_free(ds);
        return;
    }
    pthread_mutex_lock(&w->lock);
    struct dsgen *old = w->cur;
    w->cur = g;
    int gone = old->users == 0;
    pthread_mutex_unlock(&w->lock);
    if (gone)
        gen_free(old);
}

void serve_dsw_free(struct serve_dsw *w)
{
    if (!w)
        return;
    gen_free(w->cur);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

static uint32_t dsw_resolve(void *ctx, const char *name, char **key, char *msg, size_t msglen)
{
    struct dsgen *g = gen_get(ctx);
    uint32_t r = g->be.resolve(g->be.ctx, name, key, msg, msglen);
    gen_put(ctx, g);
    return r;
}

static uint32_t dsw_open(void *ctx, const char *key, struct vdisk **out, char *msg,
                         size_t msglen)
{
    struct dsgen *g = gen_get(ctx);
    uint32_t r = g->be.open(g->be.ctx, key, out, msg, msglen);
    gen_put(ctx, g);
    return r;
}

static char *dsw_describe(void *ctx, const char *key, struct vdisk *d)
{
    struct dsgen *g = gen_get(ctx);
    char *r = g->be.describe ? g->be.describe(g->be.ctx, key, d) : NULL;
    gen_put(ctx, g);
    return r;
}

static int dsw_list(void *ctx, int (*emit)(void *arg, const char *name), void *arg)
{
    struct dsgen *g = gen_get(ctx);
    int r = g->be.list ? g->be.list(g->be.ctx, emit, arg) : 0;
    gen_put(ctx, g);
    return r;
}

void serve_dsw_backend(struct serve_dsw *w, struct nbd_backend *b)
{
    memset(b, 0, sizeof *b);
    b->ctx = w;
    b->resolve = dsw_resolve;
    b->open = dsw_open;
    b->describe = dsw_describe;
    b->list = dsw_list;
}
