/* fuzz_cowd.c - libFuzzer target for vmfsSparse (COWD) and seSparse
 * extents.
 *
 * The input is the extent file: it is written to a per-process file
 * /tmp/openvddk-fuzz-cowd-PID-delta.vmdk, and a text descriptor next to it
 * (/tmp/openvddk-fuzz-cowd-PID.vmdk) names it as the one VMFSSPARSE extent
 * (input starting with "COWD") or SESPARSE extent (input starting with the
 * seSparse magic), sized from the header's capacity so the header and the
 * descriptor agree.  The descriptor is opened read-only, without locks, as
 * a single link; then information calls, reads (start, across grains and
 * grain tables, middle, end) and block status over the capacity (bounded
 * number of calls), each answer checked against the API contract. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char desc_path[96], ext_path[96], ext_name[96];
static uint8_t *buf;
#define BUFLEN (1u << 20)
#define MAX_STATUS_CALLS 4096
#define MAX_SECTORS (1ull << 40)

static void check_failed(const char *what)
{
    fprintf(stderr, "FUZZ-CHECK: %s\n", what);
    abort();
}

static void cleanup(void)
{
    if (desc_path[0])
        unlink(desc_path);
    if (ext_path[0])
        unlink(ext_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    long pid = (long)getpid();
    snprintf(ext_name, sizeof ext_name, "openvddk-fuzz-cowd-%ld-delta.vmdk", pid);
    snprintf(ext_path, sizeof ext_path, "/tmp/%s", ext_name);
    snprintf(desc_path, sizeof desc_path, "/tmp/openvddk-fuzz-cowd-%ld.vmdk", pid);
    buf = malloc(BUFLEN);
    if (!buf)
        abort();
    atexit(cleanup);
    return 0;
}

static int write_file(const char *path, const void *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, p + done, size - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
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
    static const uint8_t ses_magic[8] = {0xbe, 0xba, 0xfe, 0xca, 0, 0, 0, 0};
    const char *type;
    uint64_t sectors;
    if (size >= 16 && memcmp(data, "COWD", 4) == 0) {
        type = "VMFSSPARSE";
        sectors = le(data + 12, 4);
    } else if (size >= 24 && memcmp(data, ses_magic, 8) == 0) {
        type = "SESPARSE";
        sectors = le(data + 16, 8);
    } else {
        return 0;
    }
    if (sectors == 0)
        sectors = 1;
    if (sectors > MAX_SECTORS)
        sectors = MAX_SECTORS;
    char desc[512];
    int n = snprintf(desc, sizeof desc,
                     "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
                     "createType=\"%s\"\n\nRW %llu %s \"%s\"\n\nddb.adapterType = \"lsilogic\"\n",
                     type[0] == 'V' ? "vmfsSparse" : "seSparse", (unsigned long long)sectors,
                     type, ext_name);
    if (write_file(ext_path, data, size) < 0 || write_file(desc_path, desc, (size_t)n) < 0)
        abort();

    vmdk_disk *d = NULL;
    if (vmdk_open(desc_path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK,
                  &d) < 0)
        return 0;

    uint64_t cap = vmdk_capacity(d);
    if (cap != sectors * 512)
        check_failed("capacity differs from the descriptor");
    struct vmdk_link_info li;
    if (vmdk_link_info(d, 0, &li) < 0)
        check_failed("vmdk_link_info failed on an open disk");
    struct vmdk_extent_info ei;
    if (vmdk_extent_info(d, 0, 0, &ei) < 0)
        check_failed("vmdk_extent_info failed on an open disk");

    /* Reads: start, a grain straddle, a grain-table straddle (COWD at grain
     * 1 and seSparse), the middle, the end. */
    read_range(d, cap, 0, 65536);
    read_range(d, cap, 511, 3);
    read_range(d, cap, 65536 - 700, 1400);
    read_range(d, cap, (2u << 20) - 4096, 8192);
    read_range(d, cap, (16u << 20) - 4096, 8192);
    read_range(d, cap, cap / 2 - cap / 2 % 512, 200000);
    read_range(d, cap, cap > 70000 ? cap - 70000 : 0, 70000);
    if (vmdk_pread(d, buf, 2, cap - 1) == 0)
        check_failed("a read past the capacity succeeded");
    if (vmdk_pwrite(d, buf, 1, 0) == 0)
        check_failed("a write to a read-only disk succeeded");

    uint64_t off = 0;
    for (int calls = 0; off < cap && calls < MAX_STATUS_CALLS; calls++) {
        uint64_t run = 0;
        int st = -1;
        if (vmdk_block_status(d, off, cap - off, 1, &run, &st) < 0)
            break;
        if (run < 1 || run > cap - off || st < VMDK_DATA || st > VMDK_HOLE)
            check_failed("vmdk_block_status answer out of contract");
        off += run;
    }

    vmdk_close(d);
    return 0;
}
