/* bench_clone.c - the clone benchmarks' openvddk side, through the public
 * libvixDiskLib ABI (vixDiskLib.h only).
 *
 *   bench_clone gen FILE SIZE            mixed test data (see below)
 *   bench_clone clone SRC DST TYPE       VixDiskLib_Clone, local, overwrite
 *   bench_clone toraw [-j N] DISK OUT    the disk into a raw file
 *
 * gen: SIZE bytes (K/M/G suffixes) in 4 MiB groups: MiB 0 and 2 pseudo-
 * random (xorshift64*), MiB 1 text-like (lines of words and numbers, about
 * 3:1 under deflate), MiB 3 zero (left as a hole).  Half random, a quarter
 * text, a quarter zero.
 *
 * clone: TYPE is a createType (monolithicSparse, streamOptimized, ...).
 *
 * toraw: N threads (default: online CPUs), each with its own read-only
 * handle, read 4 MiB pieces in turn; all-zero pieces are not written (OUT
 * is truncated to the capacity first, so it is sparse like qemu-img
 * convert's output).
 *
 * Each command prints one line, key=value: seconds (the operation alone,
 * after InitEx/ConnectEx) and maxrss_kb (getrusage peak resident set of the
 * whole process, all threads). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vixDiskLib.h"

#define PIECE (4u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void quiet(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static char last_warning[1024];

static void warn_cb(const char *fmt, va_list ap)
{
    vsnprintf(last_warning, sizeof last_warning, fmt, ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_clone: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (last_warning[0])
        fprintf(stderr, " (%s)", last_warning);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    uint64_t v = strtoull(s, &end, 10);
    if (errno || end == s)
        die("bad size %s", s);
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    case 0: break;
    default: die("bad size %s", s);
    }
    return v;
}

/* ---- gen ------------------------------------------------------------------ */

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static const char *const words[] = {
    "disk", "grain", "table", "sector", "backup", "restore", "snapshot", "virtual",
    "machine", "the", "of", "and", "to", "in", "is", "for", "with", "block", "data",
    "error", "warning", "info", "user", "system", "kernel", "network", "file", "path",
    "config", "value", "started", "stopped", "request", "response", "client", "server",
};

static void text_mib(unsigned char *p, size_t len, uint64_t *s)
{
    size_t i = 0;
    while (i < len) {
        char line[160];
        int n = snprintf(line, sizeof line, "2024-%02u-%02u %02u:%02u:%02u [%s] %s %s %s %s "
                         "id=%u\n", (unsigned)(xs(s) % 12 + 1), (unsigned)(xs(s) % 28 + 1),
                         (unsigned)(xs(s) % 24), (unsigned)(xs(s) % 60),
                         (unsigned)(xs(s) % 60), words[xs(s) % 3 + 19],
                         words[xs(s) % 36], words[xs(s) % 36], words[xs(s) % 36],
                         words[xs(s) % 36], (unsigned)(xs(s) % 100000));
        for (int j = 0; j < n && i < len; j++)
            p[i++] = (unsigned char)line[j];
    }
}

static int cmd_gen(int argc, char **argv)
{
    if (argc != 2)
        die("usage: gen FILE SIZE");
    uint64_t size = parse_size(argv[1]);
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("%s: %s", argv[0], strerror(errno));
    if (ftruncate(fd, (off_t)size) < 0)
        die("%s: truncate: %s", argv[0], strerror(errno));
    unsigned char *b = malloc(1u << 20);
    if (!b)
        die("out of memory");
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (uint64_t off = 0; off < size; off += 1u << 20) {
        size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        switch ((off >> 20) % 4) {
        case 0: case 2:
            for (size_t i = 0; i + 8 <= n; i += 8) {
                uint64_t v = xs(&s);
                memcpy(b + i, &v, 8);
            }
            break;
        case 1:
            text_mib(b, n, &s);
            break;
        default:
            continue;
        }
        for (size_t done = 0; done < n;) {
            ssize_t w = pwrite(fd, b + done, n - done, (off_t)(off + done));
            if (w <= 0)
                die("%s: write: %s", argv[0], strerror(errno));
            done += (size_t)w;
        }
    }
    free(b);
    if (close(fd) < 0)
        die("%s: close: %s", argv[0], strerror(errno));
    return 0;
}

/* ---- library ---------------------------------------------------------------- */

static VixDiskLibConnection conn;

static void lib_init(void)
{
    VixError e = VixDiskLib_InitEx(8, 0, quiet, warn_cb, warn_cb, NULL, NULL);
    if (e != VIX_OK)
        die("InitEx: error %" PRIu64, (uint64_t)e);
    e = VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn);
    if (e != VIX_OK)
        die("ConnectEx: error %" PRIu64, (uint64_t)e);
}

static void lib_exit(void)
{
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
}

static const struct { const char *name; VixDiskLibDiskType type; } types[] = {
    { "monolithicSparse", VIXDISKLIB_DISK_MONOLITHIC_SPARSE },
    { "monolithicFlat", VIXDISKLIB_DISK_MONOLITHIC_FLAT },
    { "twoGbMaxExtentSparse", VIXDISKLIB_DISK_SPLIT_SPARSE },
    { "twoGbMaxExtentFlat", VIXDISKLIB_DISK_SPLIT_FLAT },
    { "vmfs", VIXDISKLIB_DISK_VMFS_FLAT },
    { "vmfsThin", VIXDISKLIB_DISK_VMFS_THIN },
    { "streamOptimized", VIXDISKLIB_DISK_STREAM_OPTIMIZED },
    { "vmfsSparse", VIXDISKLIB_DISK_VMFS_SPARSE },
};

static int cmd_clone(int argc, char **argv)
{
    if (argc != 3)
        die("usage: clone SRC DST TYPE");
    int t = -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(argv[2], types[i].name))
            t = (int)i;
    if (t < 0)
        die("unknown type %s", argv[2]);
    lib_init();
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = types[t].type;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    double t0 = now();
    VixError e = VixDiskLib_Clone(conn, argv[1], conn, argv[0], &cp, NULL, NULL, TRUE);
    double t1 = now();
    if (e != VIX_OK)
        die("Clone %s -> %s: error %" PRIu64, argv[0], argv[1], (uint64_t)e);
    lib_exit();
    printf("clone: type=%s seconds=%.3f maxrss_kb=%ld\n", argv[2], t1 - t0, maxrss_kb());
    return 0;
}

/* ---- toraw -------------------------------------------------------------------- */

struct toraw {
    const char *disk;
    int out;
    uint64 sectors;
    atomic_uint_fast64_t next;
    atomic_int failed;
};

static int is_zero(const unsigned char *p, size_t n)
{
    static const unsigned char z[4096];
    for (size_t i = 0; i < n; i += sizeof z) {
        size_t k = n - i < sizeof z ? n - i : sizeof z;
        if (memcmp(p + i, z, k) != 0)
            return 0;
    }
    return 1;
}

static void *toraw_worker(void *arg)
{
    struct toraw *t = arg;
    VixDiskLibHandle h = NULL;
    VixError e = VixDiskLib_Open(conn, t->disk, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h);
    unsigned char *b = malloc(PIECE);
    if (e != VIX_OK || !b) {
        atomic_store(&t->failed, 1);
        free(b);
        return NULL;
    }
    const uint64 per = PIECE / VIXDISKLIB_SECTOR_SIZE;
    for (;;) {
        uint64 s = atomic_fetch_add(&t->next, per);
        if (s >= t->sectors || atomic_load(&t->failed))
            break;
        uint64 n = t->sectors - s < per ? t->sectors - s : per;
        size_t len = (size_t)n * VIXDISKLIB_SECTOR_SIZE;
        if (VixDiskLib_Read(h, s, n, b) != VIX_OK) {
            atomic_store(&t->failed, 1);
            break;
        }
        if (is_zero(b, len))
            continue;
        for (size_t done = 0; done < len;) {
            ssize_t w = pwrite(t->out, b + done, len - done,
                               (off_t)(s * VIXDISKLIB_SECTOR_SIZE + done));
            if (w <= 0) {
                atomic_store(&t->failed, 1);
                break;
            }
            done += (size_t)w;
        }
    }
    free(b);
    VixDiskLib_Close(h);
    return NULL;
}

static int cmd_toraw(int argc, char **argv)
{
    long nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    if (argc >= 2 && !strcmp(argv[0], "-j")) {
        nthreads = atol(argv[1]);
        argc -= 2;
        argv += 2;
    }
    if (argc != 2 || nthreads < 1 || nthreads > 64)
        die("usage: toraw [-j N] DISK OUT");
    lib_init();
    double t0 = now();
    VixDiskLibHandle h = NULL;
    VixError e = VixDiskLib_Open(conn, argv[0], VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h);
    if (e != VIX_OK)
        die("Open %s: error %" PRIu64, argv[0], (uint64_t)e);
    VixDiskLibInfo *info = NULL;
    if (VixDiskLib_GetInfo(h, &info) != VIX_OK)
        die("GetInfo %s failed", argv[0]);
    struct toraw t = { .disk = argv[0], .sectors = info->capacity };
    VixDiskLib_FreeInfo(info);
    VixDiskLib_Close(h);
    t.out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (t.out < 0 || ftruncate(t.out, (off_t)(t.sectors * VIXDISKLIB_SECTOR_SIZE)) < 0)
        die("%s: %s", argv[1], strerror(errno));
    pthread_t th[64];
    for (long i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, toraw_worker, &t) != 0)
            die("pthread_create failed");
    for (long i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    if (close(t.out) < 0 || atomic_load(&t.failed))
        die("toraw %s -> %s failed", argv[0], argv[1]);
    double t1 = now();
    lib_exit();
    printf("toraw: threads=%ld seconds=%.3f maxrss_kb=%ld\n", nthreads, t1 - t0, maxrss_kb());
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "gen"))
        return cmd_gen(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "clone"))
        return cmd_clone(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "toraw"))
        return cmd_toraw(argc - 2, argv + 2);
    fprintf(stderr, "usage: bench_clone gen FILE SIZE | clone SRC DST TYPE | "
                    "toraw [-j N] DISK OUT\n");
    return 2;
}
