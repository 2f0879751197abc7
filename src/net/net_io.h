/* net_io.h - byte streams over sockets (plain or TLS), with timeouts.
 *
 * A net_stream is one connection.  Reads and writes move whole buffers or
 * fail; a wait longer than the stream's timeout without progress fails
 * too, so no call blocks forever unless the timeout is -1.  One thread may
 * read while another writes (GnuTLS allows one sender and one receiver on
 * a session); writers must serialise among themselves.
 *
 * Failures set the thread's vd_err detail ("peer: reason") with code
 * VD_E_NET_LOST and return NET_ERR; a clean end of stream before the first
 * byte of a read returns NET_EOF without touching the detail. */
#ifndef VD_NET_NET_IO_H
#define VD_NET_NET_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum { NET_OK = 0, NET_EOF = -1, NET_ERR = -2, NET_TIMEOUT = -3 };

struct net_stream {
    int fd;                       /* -1 when a custom transport is used */
    void *tls;                    /* gnutls_session_t once TLS is up */
    void *tls_creds;              /* freed by tls_free after the session */
    void (*tls_free)(void *creds);
    int rd_timeout_ms;            /* -1: wait forever */
    int wr_timeout_ms;
    char peer[160];               /* "127.0.0.1:10809", "unix:/run/x.sock" */
    /* Custom transport (tests, fuzzing): used when fd < 0.  recv returns
     * bytes, 0 at end, -1 on error; send likewise. */
    ssize_t (*xrecv)(void *ctx, void *buf, size_t len);
    ssize_t (*xsend)(void *ctx, const void *buf, size_t len);
    void *xctx;
    /* Read-ahead (net_stream_readahead): bytes received beyond what a
     * read asked for, handed out first by the next reads. */
    unsigned char *ra;
    size_t ra_cap, ra_pos, ra_end;
    int ra_errno;                 /* a receive error net_ready met, for the next read */
};

void net_stream_init(struct net_stream *s, int fd, const char *peer);
/* From now on let each receive system call on a plain socket take up to
 * cap bytes beyond what the read asked for: a small message's header and
 * payload, or a large read's end and the next header, arrive in one call.
 * A no-op for TLS and custom transports.  The socket must from then on be
 * read only through net_read (net_close frees the buffer).  0, or -1 when
 * out of memory (the stream then reads as before). */
int net_stream_readahead(struct net_stream *s, size_t cap);
int net_read(struct net_stream *s, void *buf, size_t len);
/* Wait up to timeout_ms (-1: no limit) until a read of s would make
 * progress (bytes buffered, readable, or the end of the stream): 1 ready,
 * 0 timeout, -1 error (errno).  Custom transports are always ready. */
int net_readable(struct net_stream *s, int timeout_ms);
/* Without waiting: 1 when a read of s would make progress now (bytes
 * buffered, or on a read-ahead stream a receive that found bytes, the
 * end or an error, which the next read reports), else 0.  Saves a
 * reader that is usually behind the sender a poll() per message. */
int net_ready(struct net_stream *s);
int net_write(struct net_stream *s, const void *buf, size_t len);
/* Two buffers as one message (header + data), in one system call when
 * the stream is plain. */
int net_write2(struct net_stream *s, const void *a, size_t alen, const void *b, size_t blen);
/* Several buffers as one stream of bytes (messages queued by several
 * threads): on a plain stream in as few system calls as the socket
 * allows; TLS and custom transports send them one by one. */
struct iovec;
int net_writev(struct net_stream *s, const struct iovec *iov, int n);
/* Record a protocol violation by the peer of s as VD_E_NET_CONNECT:
 * "WHO PEER: protocol error: ..." (who: "server", "NFC server"). */
int net_proto_err(const struct net_stream *s, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read and drop n bytes. */
int net_skip(struct net_stream *s, uint64_t n);
/* Shut down both directions (wakes a thread blocked in net_read). */
void net_shutdown(struct net_stream *s);
/* Drop the TLS session without close_notify and go on with the plain
 * socket (both peers agree to leave TLS at this point of a protocol). */
void net_tls_abandon(struct net_stream *s);
/* Shut down TLS (best effort, bounded), close the socket. */
void net_close(struct net_stream *s);

/* Wait until fd is readable (events POLLIN) or writable (POLLOUT):
 * 1 ready, 0 timeout, -1 error (errno). */
int net_wait(int fd, short events, int timeout_ms);

/* Connect to host:port (TCP; host may be a name or an address) or, when
 * unix_path is set, to a Unix socket.  Returns a connected non-blocking
 * socket, or -1 with VD_E_NET_CONNECT (VD_E_NET_REFUSED when the host refused
 * the connection) set naming the peer and the reason. */
int net_dial(const char *host, unsigned port, const char *unix_path, int timeout_ms,
             char *peer, size_t peerlen);

/* Listening sockets.  TCP: every address bind resolves to (NULL: all);
 * port 0 picks a free port, reported in *bound_port.  Returns the number
 * of sockets (>= 1) placed in fds, or -1 with the detail set. */
int net_listen_tcp(const char *bind, unsigned port, int *fds, int maxfds, unsigned *bound_port);
int net_listen_unix(const char *path);
/* Make an accepted socket non-blocking, TCP_NODELAY. */
void net_socket_setup(int fd);
/* "addr:port" or "unix:path" of the peer of fd. */
void net_peer_name(int fd, char *out, size_t outlen);

/* Monotonic milliseconds. */
int64_t net_now_ms(void);

#endif
