/* net_io.c - sockets and streams (plain or TLS) with timeouts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net_io.h"
#include "../util/err.h"

int64_t net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void net_stream_init(struct net_stream *s, int fd, const char *peer)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->rd_timeout_ms = -1;
    s->wr_timeout_ms = -1;
    snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "peer");
}

int net_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = events };
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        return r > 0;
    }
}

static int lost(struct net_stream *s, const char *what, const char *why)
{
    vd_err_set(VD_E_NET_LOST, "%s: %s: %s", s->peer, what, why);
    return NET_ERR;
}

static int timed_out(struct net_stream *s, const char *what, int ms)
{
    vd_err_set(VD_E_NET_LOST, "%s: %s: no progress for %d ms (timed out)", s->peer, what, ms);
    return NET_TIMEOUT;
}

/* One wait for the socket; returns NET_OK, or an error already reported. */
static int wait_io(struct net_stream *s, short events, const char *what)
{
    int ms = events == POLLIN ? s->rd_timeout_ms : s->wr_timeout_ms;
    int r = net_wait(s->fd, events, ms);
    if (r < 0)
        return lost(s, what, strerror(errno));
    if (r == 0)
        return timed_out(s, what, ms);
    return NET_OK;
}

/* A plain receive on s failed (errno set): NET_OK to try it again
 * (interrupted, or the socket is readable now), else the error to return. */
static int recv_retry(struct net_stream *s)
{
    if (errno == EINTR)
        return NET_OK;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return wait_io(s, POLLIN, "receive");
    return lost(s, "receive", strerror(errno));
}

int net_stream_readahead(struct net_stream *s, size_t cap)
{
    if (s->fd < 0 || s->tls || s->ra || cap == 0)
        return 0;
    if (!(s->ra = malloc(cap)))
        return -1;
    s->ra_cap = cap;
    s->ra_pos = s->ra_end = 0;
    return 0;
}

/* net_read with read-ahead: what is buffered first, then receive calls
 * that fill the rest of buf (large reads) and the buffer behind it. */
static int ra_read(struct net_stream *s, unsigned char *buf, size_t len)
{
    size_t done = s->ra_end - s->ra_pos;
    if (done > len)
        done = len;
    memcpy(buf, s->ra + s->ra_pos, done);
    s->ra_pos += done;
    if (done < len && s->ra_errno) {
        errno = s->ra_errno;
        s->ra_errno = 0;
        return lost(s, "receive", strerror(errno));
    }
    while (done < len) {
        /* The buffer is empty here. */
        size_t want = len - done;
        int direct = want >= s->ra_cap;     /* large: straight into buf */
        struct iovec iov[2] = { { buf + done, want }, { s->ra, s->ra_cap } };
        struct msghdr m = { .msg_iov = direct ? iov : iov + 1,
                            .msg_iovlen = direct ? 2 : 1 };
        ssize_t n = recvmsg(s->fd, &m, 0);
        if (n < 0) {
            int r = recv_retry(s);
            if (r != NET_OK)
                return r;
            continue;
        }
        if (n == 0)
            return done == 0 ? NET_EOF
                             : lost(s, "receive", "connection closed in the middle of a message");
        size_t got = (size_t)n, take = got < want ? got : want;
        if (!direct)
            memcpy(buf + done, s->ra, take);
        done += take;
        s->ra_pos = direct ? 0 : take;
        s->ra_end = direct ? got - take : got;
    }
    return NET_OK;
}

int net_read(struct net_stream *s, void *buf, size_t len)
{
    if (s->ra)
        return ra_read(s, buf, len);
    size_t done = 0;
    gnutls_session_t tls = s->tls;
    while (done < len) {
        ssize_t n;
        if (s->fd < 0) {
            n = s->xrecv(s->xctx, (char *)buf + done, len - done);
            if (n < 0)
                return lost(s, "receive", "transport error");
        } else if (tls) {
            n = gnutls_record_recv(tls, (char *)buf + done, len - done);
            if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                if (gnutls_record_check_pending(tls) == 0) {
                    int r = wait_io(s, POLLIN, "receive");
                    if (r != NET_OK)
                        return r;
                }
                continue;
            }
            if (n == GNUTLS_E_PREMATURE_TERMINATION)
                n = 0;
            if (n < 0)
                return lost(s, "TLS receive", gnutls_strerror((int)n));
        } else {
            n = recv(s->fd, (char *)buf + done, len - done, 0);
            if (n < 0) {
                int r = recv_retry(s);
                if (r != NET_OK)
                    return r;
                continue;
            }
        }
        if (n == 0) {
            if (done == 0)
                return NET_EOF;
            return lost(s, "receive", "connection closed in the middle of a message");
        }
        done += (size_t)n;
    }
    return NET_OK;
}

int net_readable(struct net_stream *s, int timeout_ms)
{
    if (s->fd < 0 || (s->ra && s->ra_pos < s->ra_end) || s->ra_errno)
        return 1;
    if (s->tls && gnutls_record_check_pending((gnutls_session_t)s->tls) > 0)
        return 1;
    return net_wait(s->fd, POLLIN, timeout_ms);
}

int net_ready(struct net_stream *s)
{
    if (s->fd < 0 || (s->ra && s->ra_pos < s->ra_end) || s->ra_errno)
        return 1;
    if (s->tls)
        return gnutls_record_check_pending((gnutls_session_t)s->tls) > 0;
    if (!s->ra)
        return 0;
    ssize_t n = recv(s->fd, s->ra, s->ra_cap, MSG_DONTWAIT);
    if (n > 0) {
        s->ra_pos = 0;
        s->ra_end = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (n < 0)
        s->ra_errno = errno;
    return 1;                     /* the end stays for the next receive to see */
}

static int tls_send(struct net_stream *s, const char *p, size_t len)
{
    gnutls_session_t tls = s->tls;
    size_t done = 0;
    while (done < len) {
        ssize_t n = gnutls_record_send(tls, p + done, len - done);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
            int r = wait_io(s, POLLOUT, "TLS send");
            if (r != NET_OK)
                return r;
            continue;
        }
        if (n < 0)
            return lost(s, "TLS send", gnutls_strerror((int)n));
        done += (size_t)n;
    }
    return NET_OK;
}

/* Send all of v[0..k) on a plain socket, in as few sendmsg calls as it
 * takes; v is used up (advanced) on the way. */
static int send_iov(struct net_stream *s, struct iovec *v, int k)
{
    int idx = 0;
    while (idx < k) {
        if (v[idx].iov_len == 0) {
            idx++;
            continue;
        }
        struct msghdr m = { .msg_iov = v + idx, .msg_iovlen = (size_t)(k - idx) };
        ssize_t w = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_io(s, POLLOUT, "send");
            if (r != NET_OK)
                return r;
            continue;
        }
        if (w < 0)
            return lost(s, "send", strerror(errno));
        size_t left = (size_t)w;
        while (idx < k && left >= v[idx].iov_len)
            left -= v[idx++].iov_len;
        if (idx < k) {
            v[idx].iov_base = (char *)v[idx].iov_base + left;
            v[idx].iov_len -= left;
        }
    }
    return NET_OK;
}

int net_write2(struct net_stream *s, const void *a, size_t alen, const void *b, size_t blen)
{
    if (s->fd < 0) {
        const void *bufs[2] = { a, b };
        size_t lens[2] = { alen, blen };
        for (int i = 0; i < 2; i++)
            for (size_t done = 0; done < lens[i];) {
                ssize_t n = s->xsend(s->xctx, (const char *)bufs[i] + done, lens[i] - done);
                if (n <= 0)
                    return lost(s, "send", "transport error");
                done += (size_t)n;
            }
        return NET_OK;
    }
    if (s->tls) {
        int r = alen ? tls_send(s, a, alen) : NET_OK;
        if (r == NET_OK && blen)
            r = tls_send(s, b, blen);
        return r;
    }
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    return send_iov(s, iov, 2);
}

int net_writev(struct net_stream *s, const struct iovec *iov, int n)
{
    if (s->fd < 0 || s->tls) {
        for (int i = 0; i < n; i++) {
            int r = net_write2(s, iov[i].iov_base, iov[i].iov_len, NULL, 0);
            if (r != NET_OK)
                return r;
        }
        return NET_OK;
    }
    struct iovec v[64];
    for (int i = 0; i < n;) {
        int k = n - i < 64 ? n - i : 64;
        memcpy(v, iov + i, (size_t)k * sizeof *v);
        i += k;
        int r = send_iov(s, v, k);
        if (r != NET_OK)
            return r;
    }
    return NET_OK;
}

int net_write(struct net_stream *s, const void *buf, size_t len)
{
    return net_write2(s, buf, len, NULL, 0);
}

int net_skip(struct net_stream *s, uint64_t n)
{
    char tmp[4096];
    while (n > 0) {
        size_t k = n < sizeof tmp ? (size_t)n : sizeof tmp;
        int r = net_read(s, tmp, k);
        if (r == NET_EOF)
            return lost(s, "receive", "connection closed in the middle of a message");
        if (r != NET_OK)
            return r;
        n -= k;
    }
    return NET_OK;
}

int net_proto_err(const struct net_stream *s, const char *who, const char *fmt, ...)
{
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    return vd_err_set(VD_E_NET_CONNECT, "%s %s: protocol error: %s", who, s->peer, m);
}

void net_shutdown(struct net_stream *s)
{
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR);
}

void net_tls_abandon(struct net_stream *s)
{
    if (!s->tls)
        return;
    /* No close_notify: the peer stops using TLS at the same point (NFC's
     * authd hands the plain socket on after PROXY). */
    gnutls_deinit((gnutls_session_t)s->tls);
    s->tls = NULL;
    if (s->tls_free)
        s->tls_free(s->tls_creds);
    s->tls_creds = NULL;
    s->tls_free = NULL;
}

void net_close(struct net_stream *s)
{
    if (s->tls) {
        gnutls_session_t tls = s->tls;
        if (s->fd >= 0) {
            /* Best effort close_notify; never wait long for it. */
            for (int i = 0; i < 20; i++) {
                int r = gnutls_bye(tls, GNUTLS_SHUT_WR);
                if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED)
                    break;
                if (net_wait(s->fd, POLLOUT, 50) <= 0)
                    break;
            }
        }
        gnutls_deinit(tls);
        s->tls = NULL;
        if (s->tls_free)
            s->tls_free(s->tls_creds);
        s->tls_creds = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    free(s->ra);
    s->ra = NULL;
    s->ra_cap = s->ra_pos = s->ra_end = 0;
}

/* ---- sockets ---------------------------------------------------------------- */

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void tune_tcp(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void net_socket_setup(int fd)
{
    set_nonblock(fd);
    tune_tcp(fd);
}

void net_peer_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, outlen, "peer");
        return;
    }
    char host[INET6_ADDRSTRLEN + 2] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    } else {
        snprintf(out, outlen, "unix socket client");
    }
}

int net_dial(const char *host, unsigned port, const char *unix_path, int timeout_ms,
             char *peer, size_t peerlen)
{
    if (unix_path) {
        snprintf(peer, peerlen, "unix:%s", unix_path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(unix_path) >= sizeof sa.sun_path) {
            vd_err_set(VD_E_NET_CONNECT, "%s: socket path is too long", peer);
            return -1;
        }
        strcpy(sa.sun_path, unix_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            vd_err_set(VD_E_NET_CONNECT, "%s: socket: %s", peer, strerror(errno));
            return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            vd_err_set(VD_E_NET_CONNECT, "cannot connect to %s: %s", peer, strerror(errno));
            close(fd);
            return -1;
        }
        set_nonblock(fd);
        return fd;
    }
    /* A bare IPv6 address is shown in brackets. */
    snprintf(peer, peerlen, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, portstr, &hints, &res);
    if (g != 0) {
        vd_err_set(VD_E_NET_CONNECT, "cannot resolve server name %s: %s", host,
                   g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
        return -1;
    }
    char why[256] = "no address";
    int fd = -1, refused = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            snprintf(why, sizeof why, "socket: %s", strerror(errno));
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int w = net_wait(fd, POLLOUT, timeout_ms);
            if (w <= 0) {
                snprintf(why, sizeof why, "%s", w == 0 ? "connection timed out" : strerror(errno));
                close(fd);
                fd = -1;
                continue;
            }
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
            r = err ? -1 : 0;
            errno = err;
        }
        if (r < 0) {
            refused = errno == ECONNREFUSED;
            snprintf(why, sizeof why, "%s", strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        vd_err_set(refused ? VD_E_NET_REFUSED : VD_E_NET_CONNECT, "cannot connect to %s: %s",
                   peer, why);
        return -1;
    }
    tune_tcp(fd);
    return fd;
}

int net_listen_tcp(const char *bind_addr, unsigned port, int *fds, int maxfds,
                   unsigned *bound_port)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(bind_addr, portstr, &hints, &res);
    if (g != 0) {
        vd_err_set(VD_E_INVAL, "cannot resolve bind address %s: %s",
                   bind_addr ? bind_addr : "(any)", gai_strerror(g));
        return -1;
    }
    int n = 0;
    unsigned chosen = port;
    char why[256] = "no address";
    for (struct addrinfo *ai = res; ai && n < maxfds; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            snprintf(why, sizeof why, "socket: %s", strerror(errno));
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        /* With port 0, every address family gets the port the first one got. */
        if (chosen != port) {
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)chosen);
            else if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)chosen);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            snprintf(why, sizeof why, "%s", strerror(errno));
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET)
                chosen = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            else if (ss.ss_family == AF_INET6)
                chosen = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        set_nonblock(fd);
        fds[n++] = fd;
    }
    freeaddrinfo(res);
    if (n == 0) {
        vd_err_set(VD_E_IO, "cannot listen on %s port %u: %s",
                   bind_addr ? bind_addr : "all addresses", port, why);
        return -1;
    }
    if (bound_port)
        *bound_port = chosen;
    return n;
}

int net_listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        vd_err_set(VD_E_INVAL, "%s: socket path is too long", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        vd_err_set(VD_E_IO, "%s: socket: %s", path, strerror(errno));
        return -1;
    }
    /* Replace a stale socket file, never any other kind of file. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        vd_err_set(VD_E_IO, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}
