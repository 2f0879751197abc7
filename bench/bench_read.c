/* bench_read.c - sequential read throughput of the engine.
 *
 *   bench_read [-c CHUNK] DISK
 *
 * Opens DISK read-only and reads the whole chain from offset 0 to the
 * capacity in CHUNK-byte requests (default 4 MiB; K/M suffixes) into one
 * reused memory buffer, then prints one line:
 *
 *   bytes=N seconds=S MB/s=R        (MB = 10^6 bytes)
 *
 * Only the read loop is timed (CLOCK_MONOTONIC), not open or close. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    if (*end || v == 0 || v > (1ull << 30))
        return -1;
    *out = (size_t)v;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t chunk = 4u << 20;
    int opt;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt == 'c' && parse_size(optarg, &chunk) == 0)
            continue;
        fprintf(stderr, "usage: bench_read [-c CHUNK] DISK\n");
        return 2;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: bench_read [-c CHUNK] DISK\n");
        return 2;
    }
    const char *path = argv[optind];
    vmdk_disk *d;
    int rc = vmdk_open(path, VMDK_OPEN_RDONLY, &d);
    if (rc < 0) {
        fprintf(stderr, "bench_read: %s: %s\n", path, vd_err_msg());
        return 1;
    }
    uint64_t cap = vmdk_capacity(d);
    uint8_t *buf = aligned_alloc(4096, (chunk + 4095) / 4096 * 4096);
    if (!buf) {
        fprintf(stderr, "bench_read: out of memory\n");
        vmdk_close(d);
        return 1;
    }
    memset(buf, 0, chunk); /* fault the buffer in before timing */

    unsigned sum = 0;
    double t0 = now();
    for (uint64_t off = 0; off < cap;) {
        size_t n = cap - off < chunk ? (size_t)(cap - off) : chunk;
        rc = vmdk_pread(d, buf, n, off);
        if (rc < 0) {
            fprintf(stderr, "bench_read: read at %" PRIu64 ": %s\n", off, vd_err_msg());
            free(buf);
            vmdk_close(d);
            return 1;
        }
        sum += buf[n - 1]; /* keep the reads observable */
        off += n;
    }
    double secs = now() - t0;
    if (secs <= 0)
        secs = 1e-9;
    printf("bytes=%" PRIu64 " seconds=%.6f MB/s=%.1f\n", cap, secs, (double)cap / secs / 1e6);
    fprintf(stderr, "bench_read: checksum byte %u\n", sum & 0xff);
    free(buf);
    return vmdk_close(d) < 0 ? 1 : 0;
}
