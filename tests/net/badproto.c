/* badproto.c - feed bad NBD protocol input to a running server.
 *
 *   nbd_badproto PORT EXPORT
 *
 * Opens one well-behaved connection first and keeps it for the whole run.
 * Then, each on a connection of its own, sends malformed or hostile input
 * (requests before negotiation, unknown flags, oversized and truncated
 * options, malformed GO and meta-context payloads, oversized and
 * out-of-range requests, unknown commands and flags, bad magic, truncated
 * headers and payloads) and checks that the server answers with the
 * right error or closes that connection.  After every case the
 * well-behaved connection must still read the same data, and at the end a
 * new connection must work.  Prints one line per case; exits 1 on the
 * first failure.  Written from the protocol description, no NBD library.
 *
 *   nbd_badproto PORT --go EXPORT...
 *
 * Sends NBD_OPT_GO for each export name, each on a connection of its own,
 * and prints the server's final reply exactly: "ACK <size>" or, for an
 * error, its type in hex and its message ("80000006 no such disk ...").
 * Exits 1 when the server does not answer.
 *
 *   nbd_badproto PORT --hold EXPORT
 *
 * The same for one export, then keeps the connection (and so the server's
 * open disk) until standard input reaches end of file. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NBDMAGIC 0x4e42444d41474943ull
#define IHAVEOPT 0x49484156454f5054ull
#define REPMAGIC 0x0003e889045565a9ull
#define REQMAGIC 0x25609513u
#define SIMPLE 0x67446698u
#define CHUNK 0x668e33efu

enum { ABORT = 2, LIST = 3, STARTTLS = 5, GO = 7, SR = 8, LISTMETA = 9, SETMETA = 10 };
enum { READ = 0, WRITE = 1, DISC = 2, FLUSH = 3, TRIM = 4, BSTATUS = 7 };
#define ERR_UNSUP 0x80000001u
#define ERR_POLICY 0x80000002u
#define ERR_INVALID 0x80000003u
#define EINVAL_ 22u
#define ENOSPC_ 28u

static unsigned port;
static const char *export_name;
static int failures;

static void put16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = (unsigned char)v; }
static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = (unsigned char)(v >> 16); p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("badproto: connect");
        exit(1);
    }
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int rd(int fd, void *b, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0)
            return -1;
        b = (char *)b + r;
        n -= (size_t)r;
    }
    return 0;
}

static int wr(int fd, const void *b, size_t n)
{
    while (n) {
        ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
        if (r <= 0)
            return -1;
        b = (const char *)b + r;
        n -= (size_t)r;
    }
    return 0;
}

/* The server closes the connection (within the receive timeout); data
 * it still sends (a last reply) is read and dropped. */
static int closed(int fd)
{
    char buf[4096];
    for (int i = 0; i < 100000; i++) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0;       /* timeout: still open */
    }
    return 0;
}

static int hello(int fd, uint32_t cflags)
{
    unsigned char h[18], f[4];
    if (rd(fd, h, 18) || get64(h) != NBDMAGIC || get64(h + 8) != IHAVEOPT)
        return -1;
    put32(f, cflags);
    return wr(fd, f, 4);
}

static int opt(int fd, uint32_t o, const void *data, uint32_t len)
{
    unsigned char h[16];
    put64(h, IHAVEOPT);
    put32(h + 8, o);
    put32(h + 12, len);
    return wr(fd, h, 16) || (len && wr(fd, data, len)) ? -1 : 0;
}

/* Read option replies for o until a final one; returns its type. */
static int64_t final_reply(int fd, uint32_t o)
{
    for (int i = 0; i < 10000; i++) {
        unsigned char h[20];
        if (rd(fd, h, 20) || get64(h) != REPMAGIC || get32(h + 8) != o)
            return -1;
        uint32_t type = get32(h + 12), len = get32(h + 16);
        if (len > 65536)
            return -1;
        unsigned char *d = malloc(len + 1);
        if (!d || rd(fd, d, len)) {
            free(d);
            return -1;
        }
        free(d);
        if (type != 2 && type != 3 && type != 4)   /* SERVER, INFO, META_CONTEXT */
            return type;
    }
    return -1;
}

/* Negotiate into transmission: returns the export size or 0. */
static uint64_t go2(int fd, int structured, int meta)
{
    if (hello(fd, 3))
        return 0;
    if (structured && (opt(fd, SR, NULL, 0) || final_reply(fd, SR) != 1))
        return 0;
    unsigned char b[512];
    size_t nl = strlen(export_name), n;
    if (meta) {
        put32(b, (uint32_t)nl);
        memcpy(b + 4, export_name, nl);
        n = 4 + nl;
        put32(b + n, 1);
        put32(b + n + 4, 15);
        memcpy(b + n + 8, "base:allocation", 15);
        n += 23;
        if (opt(fd, SETMETA, b, (uint32_t)n) || final_reply(fd, SETMETA) != 1)
            return 0;
    }
    put32(b, (uint32_t)nl);
    memcpy(b + 4, export_name, nl);
    put16(b + 4 + nl, 0);
    if (opt(fd, GO, b, (uint32_t)(6 + nl)))
        return 0;
    uint64_t size = 0;
    for (int i = 0; i < 100; i++) {
        unsigned char h[20];
        if (rd(fd, h, 20) || get64(h) != REPMAGIC)
            return 0;
        uint32_t type = get32(h + 12), len = get32(h + 16);
        unsigned char d[4096];
        if (len > sizeof d || rd(fd, d, len))
            return 0;
        if (type == 3 && len >= 12 && get16(d) == 0)
            size = get64(d + 2);
        if (type == 1)
            return size;
        if (type & 0x80000000u)
            return 0;
    }
    return 0;
}

static int request(int fd, uint16_t flags, uint16_t type, uint64_t cookie, uint64_t off,
                   uint32_t len, const void *payload, size_t plen)
{
    unsigned char h[28];
    put32(h, REQMAGIC);
    put16(h + 4, flags);
    put16(h + 6, type);
    put64(h + 8, cookie);
    put64(h + 16, off);
    put32(h + 24, len);
    return wr(fd, h, 28) || (plen && wr(fd, payload, plen)) ? -1 : 0;
}

/* Read the whole reply for cookie: returns the NBD error (0 ok), -1 on a
 * broken stream.  READ data goes to buf (len bytes). */
static int64_t reply(int fd, uint64_t cookie, void *buf, uint32_t len)
{
    for (int i = 0; i < 100000; i++) {
        unsigned char m[4];
        if (rd(fd, m, 4))
            return -1;
        if (get32(m) == SIMPLE) {
            unsigned char r[12];
            if (rd(fd, r, 12) || get64(r + 4) != cookie)
                return -1;
            uint32_t err = get32(r);
            if (!err && buf && rd(fd, buf, len))
                return -1;
            return err;
        }
        if (get32(m) != CHUNK)
            return -1;
        unsigned char c[16];
        if (rd(fd, c, 16) || get64(c + 4) != cookie)
            return -1;
        uint16_t flags = get16(c), type = get16(c + 2);
        uint32_t clen = get32(c + 12);
        if (clen > (33u << 20))
            return -1;
        unsigned char *d = malloc(clen + 1);
        if (!d || rd(fd, d, clen)) {
            free(d);
            return -1;
        }
        int64_t err = 0;
        if (type & 0x8000)
            err = clen >= 4 ? (int64_t)get32(d) : -1;
        else if (type == 1 && buf && clen >= 8)
            memcpy(buf, d + 8, clen - 8 < len ? clen - 8 : len);
        else if (type == 2 && buf)
            memset(buf, 0, len);
        free(d);
        if (err)
            return err;      /* error chunks here are final */
        if (flags & 1)
            return 0;
    }
    return -1;
}

/* ---- the well-behaved connection ------------------------------------------ */

static int good_fd;
static unsigned char good_ref[65536];
static uint64_t good_cookie = 1000;

static int good_read(unsigned char *out)
{
    uint64_t ck = good_cookie++;
    if (request(good_fd, 0, READ, ck, 0, sizeof good_ref, NULL, 0))
        return -1;
    return reply(good_fd, ck, out, sizeof good_ref) == 0 ? 0 : -1;
}

static void result(const char *name, int pass, const char *why)
{
    unsigned char now[65536];
    int still = good_read(now) == 0 && memcmp(now, good_ref, sizeof now) == 0;
    if (pass && still) {
        printf("ok   %s\n", name);
    } else {
        printf("FAIL %s: %s\n", name, !pass ? why : "the good connection stopped working");
        failures++;
    }
    fflush(stdout);
}

/* ---- cases ------------------------------------------------------------------ */

static void expect_closed(const char *name, int fd)
{
    result(name, closed(fd), "the server kept the connection open");
    close(fd);
}

static void opt_case(const char *name, uint32_t o, const void *data, uint32_t len,
                     int structured, uint32_t want)
{
    int fd = dial();
    int pass = hello(fd, 3) == 0;
    if (pass && structured)
        pass = opt(fd, SR, NULL, 0) == 0 && final_reply(fd, SR) == 1;
    int64_t got = -2;
    if (pass) {
        pass = opt(fd, o, data, len) == 0;
        got = pass ? final_reply(fd, o) : -2;
        pass = got == want;
    }
    /* the connection is still usable: ABORT is acknowledged */
    if (pass)
        pass = opt(fd, ABORT, NULL, 0) == 0 && final_reply(fd, ABORT) == 1;
    char why[128];
    snprintf(why, sizeof why, "expected reply 0x%x, got 0x%llx", want, (unsigned long long)got);
    result(name, pass, why);
    close(fd);
}

static void cmd_case(const char *name, int structured, uint16_t flags, uint16_t type,
                     uint64_t off, uint32_t len, size_t plen, uint32_t want)
{
    int fd = dial();
    uint64_t size = go2(fd, structured, structured);
    int pass = size > 0;
    int64_t got = -2;
    unsigned char *payload = plen ? calloc(1, plen) : NULL;
    if (pass && request(fd, flags, type, 7, off, len, payload, plen) == 0)
        got = reply(fd, 7, NULL, 0);
    pass = pass && got == want;
    /* and the same connection still serves a good read */
    unsigned char b[4096];
    if (pass)
        pass = request(fd, 0, READ, 8, 0, sizeof b, NULL, 0) == 0 && reply(fd, 8, b, sizeof b) == 0 &&
               memcmp(b, good_ref, sizeof b) == 0;
    free(payload);
    char why[128];
    snprintf(why, sizeof why, "expected error %u, got %lld (or the connection broke)", want,
             (long long)got);
    result(name, pass, why);
    close(fd);
}

/* --go: the final reply to NBD_OPT_GO for name, printed; with hold, the
 * connection stays open until standard input ends. */
static int show_go_reply(const char *name, int hold)
{
    int fd = dial();
    unsigned char b[4096 + 6];
    size_t nl = strlen(name);
    if (nl > 4096 || hello(fd, 3))
        return -1;
    put32(b, (uint32_t)nl);
    memcpy(b + 4, name, nl);
    put16(b + 4 + nl, 0);
    if (opt(fd, GO, b, (uint32_t)(6 + nl)))
        return -1;
    uint64_t size = 0;
    for (int i = 0; i < 100; i++) {
        unsigned char h[20];
        if (rd(fd, h, 20) || get64(h) != REPMAGIC)
            return -1;
        uint32_t type = get32(h + 12), len = get32(h + 16);
        unsigned char d[4097];
        if (len >= sizeof d || rd(fd, d, len))
            return -1;
        d[len] = '\0';
        if (type == 3 && len >= 12 && get16(d) == 0)
            size = get64(d + 2);
        if (type == 1 || (type & 0x80000000u)) {
            if (type == 1)
                printf("ACK %llu\n", (unsigned long long)size);
            else
                printf("%08x %s\n", type, (const char *)d);
            fflush(stdout);
            char c;
            while (hold && read(0, &c, 1) > 0)
                ;
            close(fd);
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && (strcmp(argv[2], "--go") == 0 || strcmp(argv[2], "--hold") == 0)) {
        int hold = strcmp(argv[2], "--hold") == 0;
        port = (unsigned)atoi(argv[1]);
        if (hold && argc != 4) {
            fprintf(stderr, "usage: nbd_badproto PORT --hold EXPORT\n");
            return 2;
        }
        for (int i = 3; i < argc; i++)
            if (show_go_reply(argv[i], hold) < 0) {
                fprintf(stderr, "badproto: no reply to GO for \"%s\"\n", argv[i]);
                return 1;
            }
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: nbd_badproto PORT EXPORT | PORT --go EXPORT... | "
                "PORT --hold EXPORT\n");
        return 2;
    }
    port = (unsigned)atoi(argv[1]);
    export_name = argv[2];

    good_fd = dial();
    uint64_t size = go2(good_fd, 1, 1);
    if (size < sizeof good_ref) {
        fprintf(stderr, "badproto: cannot negotiate the good connection\n");
        return 1;
    }
    if (good_read(good_ref)) {
        fprintf(stderr, "badproto: the good connection cannot read\n");
        return 1;
    }

    /* negotiation */
    int fd = dial();
    if (hello(fd, 3) == 0)
        request(fd, 0, READ, 1, 0, 512, NULL, 0);
    expect_closed("request before negotiation", fd);

    fd = dial();
    hello(fd, 0xfffffff0u);
    expect_closed("unknown client flags", fd);

    fd = dial();
    if (hello(fd, 3) == 0) {
        unsigned char h[16];
        put64(h, IHAVEOPT);
        put32(h + 8, 42);
        put32(h + 12, 0xffffffffu);
        wr(fd, h, 16);
    }
    expect_closed("option with a 4 GiB length", fd);

    fd = dial();
    if (hello(fd, 3) == 0) {
        unsigned char junk[1000];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)(i * 37 + 11);
        wr(fd, junk, sizeof junk);
    }
    expect_closed("garbage instead of an option", fd);

    fd = dial();
    if (hello(fd, 3) == 0) {
        unsigned char h[16];
        put64(h, IHAVEOPT);
        put32(h + 8, GO);
        put32(h + 12, 100);
        wr(fd, h, 16);
        wr(fd, "0123456789", 10);
        shutdown(fd, SHUT_WR);
    }
    expect_closed("truncated option", fd);

    unsigned char d[64];
    memset(d, 'x', sizeof d);
    opt_case("unknown option", 42, d, 8, 0, ERR_UNSUP);
    opt_case("LIST with data", LIST, d, 4, 0, ERR_INVALID);
    opt_case("STARTTLS on a server without TLS", STARTTLS, NULL, 0, 0, ERR_POLICY);
    put32(d, 1000);                            /* name length past the payload */
    opt_case("GO with a name longer than its data", GO, d, 12, 0, ERR_INVALID);
    put32(d, 3);
    memcpy(d + 4, "a\0b", 3);
    put16(d + 7, 0);
    opt_case("GO with a NUL in the name", GO, d, 9, 0, ERR_INVALID);
    put32(d, 0);
    put16(d + 4, 60000);                       /* info requests past the payload */
    opt_case("GO with too many info requests", GO, d, 6, 0, ERR_INVALID);
    put32(d, 0);
    put32(d + 4, 0);
    opt_case("SET_META_CONTEXT before STRUCTURED_REPLY", SETMETA, d, 8, 0, ERR_INVALID);
    put32(d, 0);
    put32(d + 4, 5);                           /* five queries, none present */
    opt_case("meta context queries missing", LISTMETA, d, 8, 1, ERR_INVALID);
    opt_case("STRUCTURED_REPLY with data", SR, d, 4, 0, ERR_INVALID);

    fd = dial();
    if (hello(fd, 3) == 0)
        opt(fd, 1, "no/such/export", 14);       /* EXPORT_NAME cannot be refused politely */
    expect_closed("EXPORT_NAME of a missing export", fd);

    /* transmission, structured replies */
    cmd_case("READ larger than the maximum", 1, 0, READ, 0, 64u << 20, 0, EINVAL_);
    cmd_case("READ past the end", 1, 0, READ, size - 512, 1024, 0, EINVAL_);
    cmd_case("READ with an offset that overflows", 1, 0, READ, UINT64_MAX - 511, 1024, 0, EINVAL_);
    cmd_case("WRITE past the end", 1, 0, WRITE, size, 512, 512, ENOSPC_);
    cmd_case("TRIM past the end", 1, 0, TRIM, size - 4096, 8192, 0, ENOSPC_);
    cmd_case("unknown command", 1, 0, 99, 0, 512, 0, EINVAL_);
    cmd_case("unknown command flags", 1, 0x8000, READ, 0, 512, 0, EINVAL_);
    cmd_case("REQ_ONE on READ", 1, 8, READ, 0, 512, 0, EINVAL_);
    cmd_case("FLUSH with an offset", 1, 0, FLUSH, 4096, 0, 0, EINVAL_);
    cmd_case("BLOCK_STATUS of length 0", 1, 0, BSTATUS, 0, 0, 0, EINVAL_);
    cmd_case("BLOCK_STATUS past the end", 1, 0, BSTATUS, size, 512, 0, EINVAL_);
    /* simple replies */
    cmd_case("READ past the end (simple replies)", 0, 0, READ, size, 512, 0, EINVAL_);
    cmd_case("BLOCK_STATUS without a context", 0, 0, BSTATUS, 0, 512, 0, EINVAL_);
    cmd_case("DF without structured replies", 0, 4, READ, 0, 512, 0, EINVAL_);

    fd = dial();
    if (go2(fd, 1, 1))
        request(fd, 0, WRITE, 1, 0, 0xffffffffu, NULL, 0);
    expect_closed("WRITE of 4 GiB", fd);

    fd = dial();
    if (go2(fd, 1, 1)) {
        unsigned char h[28] = { 0xde, 0xad, 0xbe, 0xef };
        wr(fd, h, sizeof h);
    }
    expect_closed("bad request magic", fd);

    fd = dial();
    if (go2(fd, 1, 1)) {
        unsigned char h[28];
        put32(h, REQMAGIC);
        wr(fd, h, 10);
        shutdown(fd, SHUT_WR);
    }
    expect_closed("truncated request header", fd);

    fd = dial();
    if (go2(fd, 1, 1)) {
        unsigned char p[100] = { 0 };
        request(fd, 0, WRITE, 1, 0, 4096, p, sizeof p);
        shutdown(fd, SHUT_WR);
    }
    expect_closed("truncated WRITE payload", fd);

    for (int i = 0; i < 50; i++) {
        fd = dial();
        if (i % 2) {
            unsigned char h[5];
            rd(fd, h, 5);
        }
        close(fd);
    }
    result("50 connections dropped during the greeting", 1, "");

    fd = dial();
    int pass = go2(fd, 1, 1) == size;
    unsigned char b[65536];
    pass = pass && request(fd, 0, READ, 1, 0, sizeof b, NULL, 0) == 0 &&
           reply(fd, 1, b, sizeof b) == 0 && memcmp(b, good_ref, sizeof b) == 0;
    request(fd, 0, DISC, 2, 0, 0, NULL, 0);
    result("a new connection after all that", pass, "it does not work");
    close(fd);
    request(good_fd, 0, DISC, 3, 0, 0, NULL, 0);
    close(good_fd);
    printf("%s\n", failures ? "badproto: FAILED" : "badproto: all cases passed");
    return failures ? 1 : 0;
}
