/* fuzz_stream.c - libFuzzer target for streamOptimized files.
 *
 * The input is a monolithic stream file: written to a per-process file
 * /tmp/openvddk-fuzz-stream-PID.vmdk with the header's "compressed" flag
 * (bit 16) forced on, so every input goes to the stream extent rather than
 * the plain sparse one, and opened read-only, without locks, single link.
 * If it opens: information calls, then the whole disk is read (in 1 MiB
 * pieces; for a capacity over 8 MiB the first and last 4 MiB and one MiB
 * in the middle) and block status is walked over the capacity (a bounded
 * number of calls).  Oracles, besides the sanitizers:
 *  - a read past the capacity fails;
 *  - a range that block status calls HOLE or ZERO reads as zeros;
 *  - the same range read again in small odd pieces (the grain cache path)
 *    gives the same bytes, or an error.
 * Then the marker walk of check (vmdk_stream_scan), and, for a disk of at
 * least three grains, a read-write open: a whole grain and part of another
 * written and flushed must read back, also after a reopen. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[80];
static uint8_t *buf, *buf2, *copy;
#define BUFLEN (1u << 20)
#define MAX_INPUT (1u << 20)
#define WHOLE_LIMIT (8ull << 20)
#define MAX_STATUS_CALLS 4096

static void check_failed(const char *what)
{
    fprintf(stderr, "FUZZ-CHECK: %s\n", what);
    abort();
}

static void cleanup(void)
{
    if (path[0])
        unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    snprintf(path, sizeof path, "/tmp/openvddk-fuzz-stream-%ld.vmdk", (long)getpid());
    buf = malloc(BUFLEN);
    buf2 = malloc(BUFLEN);
    copy = malloc(MAX_INPUT);
    if (!buf || !buf2 || !copy)
        abort();
    atexit(cleanup);
    return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Read [off, off+len) (len <= BUFLEN) whole, then again in odd pieces. */
static void read_range(vmdk_disk *d, uint64_t cap, uint64_t off, uint64_t len)
{
    if (off >= cap)
        return;
    if (len > cap - off)
        len = cap - off;
    if (len > BUFLEN)
        len = BUFLEN;
    if (vmdk_pread(d, buf, (size_t)len, off) < 0)
        return;
    /* Status of the range: holes and zero runs must read as zeros. */
    uint64_t pos = off;
    for (int calls = 0; pos < off + len && calls < 64; calls++) {
        uint64_t run = 0;
        int st = -1;
        if (vmdk_block_status(d, pos, off + len - pos, 0, &run, &st) < 0)
            break;
        if (run < 1 || run > off + len - pos || st < VMDK_DATA || st > VMDK_HOLE)
            check_failed("vmdk_block_status answer out of contract");
        if (st != VMDK_DATA && !all_zero(buf + (pos - off), (size_t)run))
            check_failed("a hole or zero run read as non-zero data");
        pos += run;
    }
    /* Small odd pieces must agree with the whole read (or fail). */
    const size_t piece = 4093;
    for (uint64_t p = 0; p < len && p < 3 * 65536; p += piece) {
        size_t n = len - p < piece ? (size_t)(len - p) : piece;
        if (vmdk_pread(d, buf2, n, off + p) < 0)
            continue;
        if (memcmp(buf2, buf + p, n) != 0)
            check_failed("the same bytes read twice differ");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 512 || size > MAX_INPUT || memcmp(data, "KDMV", 4) != 0)
        return 0;
    memcpy(copy, data, size);
    copy[10] |= 0x01;     /* flags bit 16: compressed, i.e. streamOptimized */
    if (write_input(copy, size) < 0)
        abort();

    vmdk_disk *d = NULL;
    if (vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK, &d) < 0)
        return 0;

    uint64_t cap = vmdk_capacity(d);
    struct vmdk_link_info li;
    if (vmdk_link_info(d, 0, &li) == 0) {
        for (int e = 0; e < li.num_extents; e++) {
            struct vmdk_extent_info ei;
            (void)vmdk_extent_info(d, 0, e, &ei);
        }
    }
    struct vmdk_geometry g;
    (void)vmdk_geometry(d, &g);
    char *v = NULL;
    if (vmdk_meta_get(d, "adapterType", &v) == 0)
        free(v);
    if (!vmdk_is_readonly(d))
        check_failed("a stream opened read-only is writable");
    /* Writes must be refused. */
    if (cap > 0 && vmdk_pwrite(d, "x", 1, 0) == 0)
        check_failed("a write to a read-only stream succeeded");

    if (cap <= WHOLE_LIMIT) {
        for (uint64_t off = 0; off < cap; off += BUFLEN)
            read_range(d, cap, off, BUFLEN);
    } else {
        for (uint64_t off = 0; off < (4u << 20); off += BUFLEN)
            read_range(d, cap, off, BUFLEN);
        read_range(d, cap, cap / 2 - cap / 2 % 512, BUFLEN);
        for (uint64_t off = cap - (4u << 20); off < cap; off += BUFLEN)
            read_range(d, cap, off, BUFLEN);
    }
    read_range(d, cap, 65536 - 700, 1400);
    read_range(d, cap, cap > 3 ? cap - 3 : 0, 3);
    if (cap > 0 && vmdk_pread(d, buf, 2, cap - 1) == 0)
        check_failed("a read past the capacity succeeded");

    uint64_t off = 0;
    for (int calls = 0; off < cap && calls < MAX_STATUS_CALLS; calls++) {
        uint64_t run = 0;
        int st = -1;
        if (vmdk_block_status(d, off, cap - off, 0, &run, &st) < 0)
            break;
        if (run < 1 || run > cap - off || st < VMDK_DATA || st > VMDK_HOLE)
            check_failed("vmdk_block_status answer out of contract");
        off += run;
    }

    vmdk_close(d);

    /* The marker walk of check/repair (no oracle but the sanitizers). */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct vmdk_stream_scan sc;
        (void)vmdk_stream_scan(fd, path, NULL, &sc);
        close(fd);
    }
    /* Writing: a whole grain and part of another, flushed; read back they
     * must be what was written. */
    if (cap < 3 * 65536 || vmdk_open(path, VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK, &d) < 0)
        return 0;
    memset(buf2, 0x5c, 65536 + 3000);
    int wrote = vmdk_pwrite(d, buf2, 65536, 65536) == 0 &&
                vmdk_pwrite(d, buf2, 3000, 2 * 65536 + 1000) == 0 && vmdk_flush(d) == 0;
    if (wrote && (vmdk_pread(d, buf, 65536, 65536) < 0 || memcmp(buf, buf2, 65536) != 0 ||
                  vmdk_pread(d, buf, 3000, 2 * 65536 + 1000) < 0 ||
                  memcmp(buf, buf2, 3000) != 0))
        check_failed("a stream does not read back what was written to it");
    if (vmdk_close(d) < 0)
        wrote = 0;
    if (wrote && vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK,
                           &d) == 0) {
        if (vmdk_pread(d, buf, 65536, 65536) < 0 || memcmp(buf, buf2, 65536) != 0)
            check_failed("a written stream reopened does not hold what was written");
        vmdk_close(d);
    }
    return 0;
}
