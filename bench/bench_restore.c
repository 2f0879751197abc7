/* bench_restore.c - a restore as backup tools and nbdkit's vddk plugin make
 * it: a raw image written into a new disk through the public ABI.
 *
 *   bench_restore [-t TYPE] [-r BYTES] [-d DEPTH] IMAGE DISK
 *
 * Creates DISK (TYPE: sparse (default), stream, thin, flat) with the
 * image's capacity, opens it read-write, reads IMAGE front to back and
 * writes every piece of BYTES (default 1 MiB), zeros included, with
 * WriteAsync keeping DEPTH (default 8) requests in flight; then Flush and
 * Close.  Prints "restore: bytes=N seconds=S MB/s=R" (MB = 10^6 bytes).
 * Links only libvixDiskLib, so LD_LIBRARY_PATH can point it at another
 * build of the library for a before/after comparison. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vixDiskLib.h"

static void die(const char *what, VixError e)
{
    char *t = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "bench_restore: %s: %s\n", what, t ? t : "?");
    VixDiskLib_FreeErrorText(t);
    exit(1);
}

static void quiet(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int free_bufs[256], nfree;
static VixError first_err = VIX_OK;

struct slot {
    int index;
};

static void done(void *data, VixError err)
{
    struct slot *s = data;
    pthread_mutex_lock(&lock);
    if (err != VIX_OK && first_err == VIX_OK)
        first_err = err;
    free_bufs[nfree++] = s->index;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv)
{
    const char *type = "sparse";
    size_t req = 1 << 20;
    int depth = 8, opt;
    while ((opt = getopt(argc, argv, "t:r:d:")) != -1) {
        if (opt == 't')
            type = optarg;
        else if (opt == 'r')
            req = strtoul(optarg, NULL, 0);
        else if (opt == 'd')
            depth = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 2 || depth < 1 || depth > 256 || req < 512 || req % 512) {
        fprintf(stderr, "usage: bench_restore [-t sparse|stream|thin|flat] [-r BYTES] "
                        "[-d DEPTH] IMAGE DISK\n");
        return 2;
    }
    VixDiskLibDiskType dt = strcmp(type, "stream") == 0 ? VIXDISKLIB_DISK_STREAM_OPTIMIZED
                            : strcmp(type, "thin") == 0 ? VIXDISKLIB_DISK_VMFS_THIN
                            : strcmp(type, "flat") == 0 ? VIXDISKLIB_DISK_MONOLITHIC_FLAT
                                                        : VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    int fd = open(argv[optind], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[optind]);
        return 1;
    }
    uint64_t cap = (uint64_t)st.st_size;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    VixError e = VixDiskLib_InitEx(8, 0, quiet, quiet, quiet, NULL, NULL);
    if (e != VIX_OK)
        die("InitEx", e);
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    VixDiskLibConnection conn;
    if ((e = VixDiskLib_ConnectEx(&cp, FALSE, NULL, NULL, &conn)) != VIX_OK)
        die("ConnectEx", e);
    VixDiskLibCreateParams p;
    memset(&p, 0, sizeof p);
    p.diskType = dt;
    p.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    p.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
    p.capacity = (cap + 511) / 512;
    p.logicalSectorSize = p.physicalSectorSize = 512;
    const char *disk = argv[optind + 1];
    if ((e = VixDiskLib_Create(conn, disk, &p, NULL, NULL)) != VIX_OK)
        die("Create", e);
    VixDiskLibHandle h;
    if ((e = VixDiskLib_Open(conn, disk, 0, &h)) != VIX_OK)
        die("Open", e);
    unsigned char **bufs = malloc(sizeof *bufs * (size_t)depth);
    struct slot *slots = calloc((size_t)depth, sizeof *slots);
    for (int i = 0; i < depth; i++) {
        bufs[i] = aligned_alloc(4096, req);
        slots[i].index = i;
        free_bufs[nfree++] = i;
    }
    for (uint64_t off = 0; off < cap; off += req) {
        size_t n = cap - off < req ? (size_t)(cap - off) : req;
        n = (n + 511) / 512 * 512;
        pthread_mutex_lock(&lock);
        while (!nfree)
            pthread_cond_wait(&cond, &lock);
        int b = free_bufs[--nfree];
        VixError err = first_err;
        pthread_mutex_unlock(&lock);
        if (err != VIX_OK)
            die("WriteAsync", err);
        memset(bufs[b], 0, n);
        if (pread(fd, bufs[b], n, (off_t)off) < 0) {
            perror(argv[optind]);
            return 1;
        }
        e = VixDiskLib_WriteAsync(h, off / 512, n / 512, bufs[b], done, &slots[b]);
        if (e != VIX_ASYNC && e != VIX_OK)
            die("WriteAsync", e);
    }
    if ((e = VixDiskLib_Wait(h)) != VIX_OK || (e = first_err) != VIX_OK)
        die("Wait", e);
    if ((e = VixDiskLib_Flush(h)) != VIX_OK)
        die("Flush", e);
    if ((e = VixDiskLib_Close(h)) != VIX_OK)
        die("Close", e);
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("restore: bytes=%llu seconds=%.3f MB/s=%.1f\n", (unsigned long long)cap, s,
           (double)cap / s / 1e6);
    for (int i = 0; i < depth; i++)
        free(bufs[i]);
    free(bufs);
    free(slots);
    close(fd);
    return 0;
}
