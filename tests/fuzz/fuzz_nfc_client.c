/* fuzz_nfc_client.c - the NFC client's frame parsing against arbitrary
 * server bytes.
 *
 * The input is everything a server sends after authd: the classic
 * handshake replies, the AIO prologue replies, then replies to a fixed
 * script of requests (DDB_GET, a read with the codec chosen by the first
 * byte, QUERY_ALLOCATED_BLOCKS, a write, close).  The client runs over an
 * in-memory stream: what it sends is dropped, what it reads comes from
 * the input, and the end of the input is the server hanging up.  Any
 * input must end in errors or success, never in a crash, a hang or a
 * memory error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "net/net_io.h"
#include "nfc/nfc_client.h"

struct feed {
    const uint8_t *p;
    size_t n;
};

static ssize_t feed_recv(void *ctx, void *buf, size_t len)
{
    struct feed *f = ctx;
    if (f->n == 0)
        return 0;
    size_t k = len < f->n ? len : f->n;
    memcpy(buf, f->p, k);
    f->p += k;
    f->n -= k;
    return (ssize_t)k;
}

static ssize_t sink_send(void *ctx, const void *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    return (ssize_t)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int codec = data[0] & 3;
    struct feed f = { data + 1, size - 1 };
    struct net_stream s;
    net_stream_init(&s, -1, "fuzz");
    s.xrecv = feed_recv;
    s.xsend = sink_send;
    s.xctx = &f;
    s.rd_timeout_ms = 1000;
    s.wr_timeout_ms = 1000;
    struct nfc_params p = { .lib_version = 11, .buf_size = 65536, .buf_count = 4,
                            .max_request = 131072, .read_timeout_ms = 2000,
                            .connect_timeout_ms = 1000 };
    struct nfc_client *c;
    if (nfc_client_open_stream(&s, &p, "[ds] vm/disk.vmdk", 1, &c) < 0)
        return 0;
    char *v = NULL;
    if (nfc_client_ddb_get(c, "adapterType", &v) == 0)
        free(v);
    static unsigned char buf[200000];
    uint64_t cap = nfc_client_info(c)->capacity;
    if (cap >= sizeof buf)
        nfc_client_pread(c, buf, sizeof buf, 0, codec);
    unsigned char *bm = NULL;
    if (nfc_client_qab(c, 65536, 0, 100, &bm) == 0)
        free(bm);
    if (cap >= 4096)
        nfc_client_pwrite(c, buf, 4096, 0, codec);
    nfc_client_close(c);
    return 0;
}
