/* fuzz_sparse.c - libFuzzer target for opening and reading sparse files.
 *
 * The input is written to a per-process file /tmp/openvddk-fuzz-PID.vmdk and
 * opened read-only (no locks, single link, so a fuzzed parentFileNameHint
 * cannot send the engine to arbitrary files).  Only binary extents are
 * tried (KDMV / COWD magic); text descriptors are the descriptor target's
 * job.  If the file opens: information calls, a few reads (start, middle,
 * end, crossing grains) and block status over the capacity (bounded number
 * of calls), each answer checked against the API contract, then close. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static uint8_t *buf;
#define BUFLEN (1u << 20)
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
    snprintf(path, sizeof path, "/tmp/openvddk-fuzz-%ld.vmdk", (long)getpid());
    buf = malloc(BUFLEN);
    if (!buf)
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

static void read_range(vmdk_disk *d, uint64_t cap, uint64_t off, uint64_t len)
{
    if (off >= cap)
        return;
    if (len > cap - off)
        len = cap - off;
    if (len > BUFLEN)
        len = BUFLEN;
    (void)vmdk_pread(d, buf, (size_t)len, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || (memcmp(data, "KDMV", 4) != 0 && memcmp(data, "COWD", 4) != 0))
        return 0;
    if (write_input(data, size) < 0)
        abort();

    vmdk_disk *d = NULL;
    if (vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK, &d) < 0)
        return 0;

    uint64_t cap = vmdk_capacity(d);
    int nlinks = vmdk_num_links(d);
    if (nlinks < 1)
        check_failed("vmdk_num_links < 1");
    for (int l = 0; l < nlinks; l++) {
        struct vmdk_link_info li;
        if (vmdk_link_info(d, l, &li) < 0)
            continue;
        for (int e = 0; e < li.num_extents; e++) {
            struct vmdk_extent_info ei;
            (void)vmdk_extent_info(d, l, e, &ei);
        }
    }
    struct vmdk_geometry g;
    (void)vmdk_geometry(d, &g);
    char **keys = NULL;
    size_t nkeys = 0;
    if (vmdk_meta_keys(d, &keys, &nkeys) == 0) {
        for (size_t i = 0; i < nkeys; i++) {
            char *v = NULL;
            if (vmdk_meta_get(d, keys[i], &v) == 0)
                free(v);
        }
        vmdk_strv_free(keys, nkeys);
    }

    /* Reads: the start, a grain straddle, the middle, the end. */
    read_range(d, cap, 0, 65536);
    read_range(d, cap, 65536 - 700, 1400);
    read_range(d, cap, cap / 2 - cap / 2 % 512, 200000);
    read_range(d, cap, cap > 70000 ? cap - 70000 : 0, 70000);
    read_range(d, cap, 1, 3);
    /* Past the end must fail without touching anything. */
    if (cap > 0 && vmdk_pread(d, buf, 2, cap - 1) == 0)
        check_failed("a read past the capacity succeeded");

    /* Block status: runs must be >= 1, within the range, status 0..2. */
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
    return 0;
}
