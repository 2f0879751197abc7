/* test_net_io.c - the read-ahead of net_stream and net_ready.
 *
 * Real sockets: a socketpair for the byte-level cases, a TCP connection on
 * loopback for a reset.  Checked: small reads served from one receive,
 * reads larger than the buffer (straight into the caller's buffer, the
 * rest kept), net_ready without waiting (nothing there, bytes buffered,
 * bytes in the socket, the end), and a receive error net_ready meets
 * reported by the next read instead of being lost. */
#include "test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/net_io.h"
#include "util/err.h"

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* A stream with a 64-byte read-ahead on one end of a socketpair. */
static void pair(struct net_stream *s, int *peer)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    net_stream_init(s, sv[0], "pair");
    assert_int_equal(net_stream_readahead(s, 64), 0);
    *peer = sv[1];
}

static void test_small_reads(void **state)
{
    (void)state;
    struct net_stream s;
    int peer;
    pair(&s, &peer);
    assert_int_equal(net_ready(&s), 0);             /* nothing sent yet */
    send_all(peer, "hello world", 11);
    assert_int_equal(net_ready(&s), 1);             /* now in the buffer */
    char b[16] = { 0 };
    assert_int_equal(net_read(&s, b, 5), NET_OK);
    assert_memory_equal(b, "hello", 5);
    assert_int_equal(net_ready(&s), 1);             /* " world" is buffered */
    assert_int_equal(net_read(&s, b, 6), NET_OK);
    assert_memory_equal(b, " world", 6);
    assert_int_equal(net_ready(&s), 0);
    close(peer);
    assert_int_equal(net_ready(&s), 1);             /* the end is news too */
    assert_int_equal(net_read(&s, b, 1), NET_EOF);
    net_close(&s);
}

static void test_large_reads(void **state)
{
    (void)state;
    struct net_stream s;
    int peer;
    pair(&s, &peer);
    /* Three messages: 10 bytes, 100000 bytes, 7 bytes, sent at once. */
    size_t big = 100000;
    unsigned char *msg = malloc(10 + big + 7), *got = malloc(big);
    assert_non_null(msg);
    assert_non_null(got);
    for (size_t i = 0; i < 10 + big + 7; i++)
        msg[i] = (unsigned char)(i * 7 + 3);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {                   /* more than a socket buffer holds */
        send_all(peer, msg, 10 + big + 7);
        _exit(0);
    }
    unsigned char h[10], t[7];
    assert_int_equal(net_read(&s, h, sizeof h), NET_OK);
    assert_memory_equal(h, msg, sizeof h);
    assert_int_equal(net_read(&s, got, big), NET_OK);
    assert_memory_equal(got, msg + 10, big);
    assert_int_equal(net_read(&s, t, sizeof t), NET_OK);
    assert_memory_equal(t, msg + 10 + big, sizeof t);
    close(peer);
    assert_int_equal(net_read(&s, t, 1), NET_EOF);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    free(msg);
    free(got);
    net_close(&s);
}

/* An end in the middle of a message is an error, not an end. */
static void test_truncated(void **state)
{
    (void)state;
    struct net_stream s;
    int peer;
    pair(&s, &peer);
    send_all(peer, "abc", 3);
    close(peer);
    assert_int_equal(net_ready(&s), 1);
    char b[8];
    vd_err_clear();
    assert_int_equal(net_read(&s, b, 8), NET_ERR);
    assert_non_null(strstr(vd_err_msg(), "in the middle of a message"));
    net_close(&s);
}

/* A reset seen by net_ready's receive: the next read reports it. */
static void test_reset_kept(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    assert_true(ls >= 0);
    assert_int_equal(setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    int srv = accept(ls, NULL, NULL);
    assert_true(srv >= 0);
    close(ls);
    struct net_stream s;
    net_stream_init(&s, c, "tcp");
    assert_int_equal(net_stream_readahead(&s, 64), 0);
    struct linger lg = { 1, 0 };      /* close with RST */
    assert_int_equal(setsockopt(srv, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(srv);
    for (int i = 0; i < 200 && !net_ready(&s); i++)
        usleep(10000);
    char b[4];
    vd_err_clear();
    assert_int_equal(net_read(&s, b, sizeof b), NET_ERR);
    assert_non_null(strstr(vd_err_msg(), "reset"));
    net_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_reads),
        cmocka_unit_test(test_large_reads),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_reset_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
