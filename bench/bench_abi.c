/* bench_abi.c - costs seen through the public VixDiskLib ABI.
 *
 *   bench_abi [-t TESTS] [-n N] [-r COUNT | -T SECONDS] [-d DEPTH]
 *             [-s SIZE] [-S STEP] [-x SEED] DISK
 *
 * Uses only vixDiskLib.h and links libvixDiskLib (ours, or any VDDK built
 * for the same ABI).  TESTS is a comma list, default "init,open,rand,seq":
 *
 *   init    N x (InitEx + Exit), mean per pair
 *   open    N x (Open + GetInfo + FreeInfo + Close) of DISK, mean per cycle
 *   rand    SIZE-byte ReadAsync requests at uniformly random SIZE-aligned
 *           offsets over the whole disk (splitmix64 of SEED + request index,
 *           so the offset sequence is fixed whatever the thread timing)
 *   seq     the same at offsets 0, SIZE, 2*SIZE, ... wrapping at the end
 *           (what `qemu-img bench` does with its default step)
 *   stride  offset(i) = i * STEP mod capacity, exactly `qemu-img bench -S STEP`
 *
 * Read tests keep DEPTH requests (default 32) outstanding all the time: each
 * completion callback submits the next request before it returns.  They run
 * COUNT requests (default 262144) or for SECONDS.  N defaults to 1000, SIZE
 * to 4096.  DISK is opened read-only through a local connection.
 *
 * One line per test on stdout, key=value (MB = 10^6 bytes):
 *   init: iterations=N mean_us=U
 *   open: iterations=N mean_us=U
 *   rand: reads=C size=B depth=D seconds=S IOPS=I MB/s=R
 * and, once all I/O is done, "exit-after-io: us=U" for the Exit that stops
 * the library's I/O threads. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vixDiskLib.h"

#define MAX_DEPTH 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void quiet_log(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static void loud_log(const char *fmt, va_list ap)
{
    fputs("bench_abi: library: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static int vix_init(void)
{
    VixError e = VixDiskLib_InitEx(8, 0, quiet_log, loud_log, loud_log, NULL, NULL);
    if (VIX_FAILED(e)) {
        fprintf(stderr, "bench_abi: InitEx failed: error %" PRIu64 "\n", (uint64_t)e);
        return -1;
    }
    return 0;
}

static void report(const char *what, VixError e)
{
    char *msg = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "bench_abi: %s: %s (error %" PRIu64 ")\n", what, msg ? msg : "?",
            (uint64_t)e);
    VixDiskLib_FreeErrorText(msg);
}

/* ---- init / open --------------------------------------------------------- */

static int bench_init(long n)
{
    double t0 = now();
    for (long i = 0; i < n; i++) {
        if (vix_init() < 0)
            return -1;
        VixDiskLib_Exit();
    }
    double secs = now() - t0;
    printf("init: iterations=%ld mean_us=%.2f\n", n, secs / (double)n * 1e6);
    return 0;
}

static int bench_open(VixDiskLibConnection conn, const char *path, long n)
{
    double t0 = now();
    for (long i = 0; i < n; i++) {
        VixDiskLibHandle h;
        VixDiskLibInfo *info;
        VixError e = VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h);
        if (VIX_FAILED(e)) {
            report("Open", e);
            return -1;
        }
        e = VixDiskLib_GetInfo(h, &info);
        if (VIX_FAILED(e)) {
            report("GetInfo", e);
            VixDiskLib_Close(h);
            return -1;
        }
        VixDiskLib_FreeInfo(info);
        e = VixDiskLib_Close(h);
        if (VIX_FAILED(e)) {
            report("Close", e);
            return -1;
        }
    }
    double secs = now() - t0;
    printf("open: iterations=%ld mean_us=%.2f\n", n, secs / (double)n * 1e6);
    return 0;
}

/* ---- asynchronous reads -------------------------------------------------- */

enum pattern { PAT_RAND, PAT_SEQ, PAT_STRIDE };

static struct {
    VixDiskLibHandle h;
    enum pattern pat;
    uint64_t nblocks;         /* SIZE-byte blocks in the disk */
    uint64_t stride;          /* in blocks, for PAT_STRIDE */
    uint64_t seed;
    uint64_t secs_per_req;    /* sectors per request */
    uint64_t total;           /* requests to issue; UINT64_MAX = until stop */
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t done;
    atomic_int stop;
    atomic_int active;        /* chains still running, one per slot */
    _Atomic VixError err;
    pthread_mutex_t lock;
    pthread_cond_t idle;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER };

struct slot {
    uint8_t *buf;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t block_of(uint64_t i)
{
    switch (R.pat) {
    case PAT_RAND:
        return splitmix64(R.seed + i) % R.nblocks;
    case PAT_SEQ:
        return i % R.nblocks;
    case PAT_STRIDE:
        return (uint64_t)((unsigned __int128)(i % R.nblocks) * R.stride % R.nblocks);
    }
    return 0;
}

static void chain_end(void)
{
    pthread_mutex_lock(&R.lock);
    if (atomic_fetch_sub(&R.active, 1) == 1)
        pthread_cond_broadcast(&R.idle);
    pthread_mutex_unlock(&R.lock);
}

static void read_done(void *data, VixError result);

/* Submits request number i on slot s; returns 0, or -1 after ending the
 * slot's chain. */
static int submit(struct slot *s, uint64_t i)
{
    VixDiskLibSectorType sector = block_of(i) * R.secs_per_req;
    VixError e = VixDiskLib_ReadAsync(R.h, sector, R.secs_per_req, s->buf, read_done, s);
    if (e == VIX_ASYNC)
        return 0;
    VixError none = VIX_OK;
    atomic_compare_exchange_strong(&R.err, &none, e == VIX_OK ? VIX_E_FAIL : e);
    chain_end();
    return -1;
}

static void read_done(void *data, VixError result)
{
    struct slot *s = data;
    if (VIX_FAILED(result)) {
        VixError none = VIX_OK;
        atomic_compare_exchange_strong(&R.err, &none, result);
    } else {
        atomic_fetch_add(&R.done, 1);
    }
    if (!atomic_load(&R.stop) && atomic_load(&R.err) == VIX_OK) {
        uint64_t i = atomic_fetch_add(&R.next, 1);
        if (i < R.total) {
            submit(s, i);
            return;
        }
    }
    chain_end();
}

static int bench_read(VixDiskLibHandle h, const char *name, enum pattern pat,
                      uint64_t capacity_bytes, size_t size, int depth, uint64_t count,
                      double seconds, uint64_t step, uint64_t seed)
{
    R.h = h;
    R.pat = pat;
    R.nblocks = capacity_bytes / size;
    R.stride = step / size % (R.nblocks ? R.nblocks : 1);
    R.seed = seed;
    R.secs_per_req = size / VIXDISKLIB_SECTOR_SIZE;
    R.total = seconds > 0 ? UINT64_MAX : count;
    atomic_store(&R.done, 0);
    atomic_store(&R.stop, 0);
    atomic_store(&R.err, VIX_OK);
    if (R.nblocks == 0) {
        fprintf(stderr, "bench_abi: disk smaller than one %zu-byte request\n", size);
        return -1;
    }

    struct slot slots[MAX_DEPTH];
    uint8_t *mem = aligned_alloc(4096, (size_t)depth * size);
    if (!mem) {
        fprintf(stderr, "bench_abi: out of memory\n");
        return -1;
    }
    memset(mem, 0, (size_t)depth * size);   /* fault the buffers in first */
    for (int k = 0; k < depth; k++)
        slots[k].buf = mem + (size_t)k * size;

    int first = (uint64_t)depth < R.total ? depth : (int)R.total;
    atomic_store(&R.next, (uint64_t)first);
    atomic_store(&R.active, first);

    double t0 = now();
    for (int k = 0; k < first; k++)
        submit(&slots[k], (uint64_t)k);
    if (seconds > 0) {
        struct timespec ts = { (time_t)seconds,
                               (long)((seconds - (double)(time_t)seconds) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        atomic_store(&R.stop, 1);
    }
    pthread_mutex_lock(&R.lock);
    while (atomic_load(&R.active) > 0)
        pthread_cond_wait(&R.idle, &R.lock);
    pthread_mutex_unlock(&R.lock);
    double secs = now() - t0;
    VixDiskLib_Wait(h);
    free(mem);

    VixError e = atomic_load(&R.err);
    if (VIX_FAILED(e)) {
        report(name, e);
        return -1;
    }
    uint64_t done = atomic_load(&R.done);
    if (secs <= 0)
        secs = 1e-9;
    printf("%s: reads=%" PRIu64 " size=%zu depth=%d seconds=%.6f IOPS=%.0f MB/s=%.1f\n", name,
           done, size, depth, secs, (double)done / secs, (double)done * (double)size / secs / 1e6);
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *s == '-')
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    else if (*end == 'g' || *end == 'G')
        v <<= 30, end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_abi [-t init,open,rand,seq,stride] [-n N] [-r COUNT | -T SECONDS]\n"
                    "                 [-d DEPTH] [-s SIZE] [-S STEP] [-x SEED] DISK\n");
    exit(2);
}

static int has_test(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return 1;
        p += len + (c != NULL);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *tests = "init,open,rand,seq";
    uint64_t iters = 1000, count = 262144, depth = 32, size = 4096, step = 0,
             seed = 0x6f70656e7664646bull;
    double seconds = 0;
    int opt;
    while ((opt = getopt(argc, argv, "t:n:r:T:d:s:S:x:")) != -1) {
        switch (opt) {
        case 't': tests = optarg; break;
        case 'n': if (parse_u64(optarg, &iters) || !iters || iters > LONG_MAX) usage(); break;
        case 'r': if (parse_u64(optarg, &count) || !count) usage(); break;
        case 'T': {
            char *end;
            seconds = strtod(optarg, &end);
            if (*end || !(seconds > 0) || seconds > 1e6)
                usage();
            break;
        }
        case 'd': if (parse_u64(optarg, &depth) || !depth || depth > MAX_DEPTH) usage(); break;
        case 's':
            if (parse_u64(optarg, &size) || !size || size % VIXDISKLIB_SECTOR_SIZE ||
                size > (64u << 20))
                usage();
            break;
        case 'S': if (parse_u64(optarg, &step)) usage(); break;
        case 'x': if (parse_u64(optarg, &seed)) usage(); break;
        default: usage();
        }
    }
    if (optind + 1 != argc)
        usage();
    if (has_test(tests, "stride") && (step == 0 || step % size)) {
        fprintf(stderr, "bench_abi: stride needs -S STEP, a non-zero multiple of SIZE\n");
        return 2;
    }
    /* Local disks are named by absolute path. */
    char *path = realpath(argv[optind], NULL);
    if (!path) {
        fprintf(stderr, "bench_abi: %s: %s\n", argv[optind], strerror(errno));
        return 1;
    }

    int rc = 1;
    if (has_test(tests, "init") && bench_init((long)iters) < 0)
        goto out;

    if (vix_init() < 0)
        goto out;
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    VixDiskLibConnection conn = NULL;
    VixError e = VixDiskLib_ConnectEx(&cp, 1, NULL, NULL, &conn);
    if (VIX_FAILED(e)) {
        report("ConnectEx", e);
        VixDiskLib_Exit();
        goto out;
    }
    int ok = 1;
    if (has_test(tests, "open") && bench_open(conn, path, (long)iters) < 0)
        ok = 0;

    static const struct { const char *name; enum pattern pat; } modes[] = {
        { "rand", PAT_RAND }, { "seq", PAT_SEQ }, { "stride", PAT_STRIDE },
    };
    int want_io = 0;
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        want_io |= has_test(tests, modes[m].name);
    if (ok && want_io) {
        VixDiskLibHandle h;
        VixDiskLibInfo *info;
        e = VixDiskLib_Open(conn, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h);
        if (VIX_FAILED(e)) {
            report("Open", e);
            ok = 0;
        } else {
            e = VixDiskLib_GetInfo(h, &info);
            if (VIX_FAILED(e)) {
                report("GetInfo", e);
                ok = 0;
            } else {
                uint64_t cap = (uint64_t)info->capacity * VIXDISKLIB_SECTOR_SIZE;
                VixDiskLib_FreeInfo(info);
                for (size_t m = 0; ok && m < sizeof modes / sizeof modes[0]; m++)
                    if (has_test(tests, modes[m].name) &&
                        bench_read(h, modes[m].name, modes[m].pat, cap, (size_t)size,
                                   (int)depth, count, seconds, step, seed) < 0)
                        ok = 0;
            }
            VixDiskLib_Close(h);
        }
    }
    VixDiskLib_Disconnect(conn);
    double t0 = now();
    VixDiskLib_Exit();
    if (want_io)
        printf("exit-after-io: us=%.1f\n", (now() - t0) * 1e6);
    rc = ok ? 0 : 1;
out:
    free(path);
    return rc;
}
