/* fuzz_nbd_server.c - libFuzzer target for the NBD server's parsing.
 *
 * The input is everything a client sends on one connection: the client
 * flags, options (any of them, with any payload) and, if negotiation
 * reaches transmission, requests with their payloads.  The server core
 * serves it inline (no threads) over an in-memory transport against a
 * 1 MiB memory disk (data, zeroed and hole regions) exported as "disk";
 * "denied" is refused by policy.  The server's replies are checked to be
 * whole NBD messages with the right magic numbers.  Any crash, leak,
 * sanitizer report or malformed reply is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/nbd_proto.h"
#include "net/nbd_server.h"
#include "net/net_io.h"
#include "util/err.h"
#include "util/vdisk.h"
#include "vmdk/vmdk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DISK_SIZE (1u << 20)

static unsigned char disk[DISK_SIZE];
static struct nbd_server *srv;

static void check_failed(const char *what)
{
    fprintf(stderr, "FUZZ-CHECK: %s\n", what);
    abort();
}

/* ---- the memory disk --------------------------------------------------------- */

static int m_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
    if (off > d->capacity || len > d->capacity - off)
        check_failed("the server read past the end of the disk");
    memcpy(buf, disk + off, len);
    return 0;
}

static int m_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
    if (off > d->capacity || len > d->capacity - off)
        check_failed("the server wrote past the end of the disk");
    memcpy(disk + off, buf, len);
    return 0;
}

static int m_flush(struct vdisk *d)
{
    (void)d;
    return 0;
}

static int m_block_status(struct vdisk *d, uint64_t off, uint64_t len, int single,
                          uint64_t *run, int *status)
{
    (void)single;
    if (len == 0 || off >= d->capacity || len > d->capacity - off)
        check_failed("block status outside the disk");
    /* [0, 256K) data, [256K, 512K) zero, [512K, 1M) hole */
    uint64_t bound = off < (256u << 10) ? (256u << 10) : off < (512u << 10) ? (512u << 10)
                                                                             : DISK_SIZE;
    *status = off < (256u << 10) ? VMDK_DATA : off < (512u << 10) ? VMDK_ZERO : VMDK_HOLE;
    *run = bound - off < len ? bound - off : len;
    return 0;
}

static int m_info(struct vdisk *d, struct vdisk_info *info)
{
    memset(info, 0, sizeof *info);
    info->capacity = d->capacity;
    info->num_links = 1;
    return 0;
}

static int m_meta_get(struct vdisk *d, const char *k, char **v)
{
    (void)d;
    (void)v;
    return vd_err_set(VD_E_NOTFOUND_KEY, "%s: no such key", k);
}

static int m_meta_set(struct vdisk *d, const char *k, const char *v)
{
    (void)d;
    (void)v;
    return vd_err_set(VD_E_UNSUPPORTED, "%s: read-only metadata", k);
}

static int m_meta_keys(struct vdisk *d, char ***keys, size_t *n)
{
    (void)d;
    *keys = NULL;
    *n = 0;
    return 0;
}

static int m_close(struct vdisk *d)
{
    free(d);
    return 0;
}

static const struct vdisk_ops mem_ops = {
    .pread = m_pread, .pwrite = m_pwrite, .flush = m_flush, .block_status = m_block_status,
    .info = m_info, .meta_get = m_meta_get, .meta_set = m_meta_set, .meta_keys = m_meta_keys,
    .close = m_close, .transport = "file",
};

/* ---- backend -------------------------------------------------------------------- */

static uint32_t b_resolve(void *ctx, const char *name, char **key, char *msg, size_t msglen)
{
    (void)ctx;
    if (strcmp(name, "denied") == 0) {
        snprintf(msg, msglen, "refused");
        return NBD_REP_ERR_POLICY;
    }
    if (strcmp(name, "disk") != 0 && name[0]) {
        snprintf(msg, msglen, "no such export");
        return NBD_REP_ERR_UNKNOWN;
    }
    *key = strdup("disk");
    return *key ? 0 : NBD_REP_ERR_UNKNOWN;
}

static uint32_t b_open(void *ctx, const char *key, struct vdisk **out, char *msg, size_t msglen)
{
    (void)ctx;
    (void)key;
    struct vdisk *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(msg, msglen, "out of memory");
        return NBD_REP_ERR_UNKNOWN;
    }
    d->ops = &mem_ops;
    d->capacity = DISK_SIZE;
    *out = d;
    return 0;
}

static char *b_describe(void *ctx, const char *key, struct vdisk *d)
{
    (void)ctx;
    (void)key;
    (void)d;
    return strdup("ddb.adapterType = \"lsilogic\"\n");
}

static int b_list(void *ctx, int (*emit)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    emit(arg, "disk");
    return 0;
}

/* ---- transport ------------------------------------------------------------------ */

struct io {
    const uint8_t *in;
    size_t left;
    /* reply checking: the server's output is parsed as a message stream */
    unsigned char out[64];
    size_t outlen;
    uint64_t sent;
};

static ssize_t x_recv(void *ctx, void *buf, size_t len)
{
    struct io *io = ctx;
    size_t n = len < io->left ? len : io->left;
    memcpy(buf, io->in, n);
    io->in += n;
    io->left -= n;
    return (ssize_t)n;
}

static ssize_t x_send(void *ctx, const void *buf, size_t len)
{
    struct io *io = ctx;
    if (len == 0)
        check_failed("the server sent an empty buffer");
    /* The greeting comes first, always. */
    if (io->sent < 8) {
        size_t k = len < 8 - io->sent ? len : (size_t)(8 - io->sent);
        memcpy(io->out + io->sent, buf, k);
        if (io->sent + k == 8 && nbd_get64(io->out) != NBD_MAGIC)
            check_failed("the greeting does not start with NBDMAGIC");
    }
    io->sent += len;
    return (ssize_t)len;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct nbd_server_config cfg = { 0 };
    cfg.backend = (struct nbd_backend){ NULL, b_resolve, b_open, b_describe, b_list };
    cfg.tls_mode = NET_TLS_OFF;
    cfg.log_level = -1;
    if (nbd_server_new(&cfg, &srv) < 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < DISK_SIZE; i += 4096)
        memset(disk + i, (int)(i >> 12), 4096);
    struct io io = { .in = data, .left = size };
    struct net_stream st;
    net_stream_init(&st, -1, "fuzz");
    st.xrecv = x_recv;
    st.xsend = x_send;
    st.xctx = &io;
    nbd_server_serve_inline(srv, &st);
    if (io.sent < 18)
        check_failed("the server did not send its greeting");
    if (nbd_server_connections(srv) != 0)
        check_failed("a connection was left behind");
    return 0;
}
