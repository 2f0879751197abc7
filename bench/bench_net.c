/* bench_net.c - remote read throughput through libvixDiskLib, the way a
 * backup reads a disk: QueryAllocatedBlocks, then ReadAsync over the
 * allocated blocks with DEPTH requests of CHUNK bytes in flight.
 *
 *   bench_net [-s SERVER] [-p PORT] [-m MODES] [-t THUMBPRINT]
 *             [-u USER -w PASSWORD] [-d DEPTH] [-k CHUNK_KIB] EXPORT
 *
 * Prints "bytes=N seconds=S MB/s=R" for the whole run (Open to Close);
 * data read is discarded.  Public API only (vixDiskLib.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vixDiskLib.h"

static void quiet(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static void warn(const char *fmt, va_list ap)
{
    vfprintf(stderr, fmt, ap);
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int outstanding;
static VixError first_err = VIX_OK;

struct slot {
    unsigned char *buf;
    int busy;
};

static void done(void *data, VixError e)
{
    struct slot *s = data;
    pthread_mutex_lock(&lock);
    if (e != VIX_OK && first_err == VIX_OK)
        first_err = e;
    s->busy = 0;
    outstanding--;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(const char *what, VixError e)
{
    char *t = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "bench_net: %s: error %lu: %s\n", what, (unsigned long)VIX_ERROR_CODE(e),
            t ? t : "?");
    VixDiskLib_FreeErrorText(t);
    return 1;
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *modes = NULL, *thumb = NULL, *user = NULL, *pw = NULL;
    unsigned port = 0;
    int depth = 16;
    unsigned chunk_kib = 1024;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        const char *v = argv[i + 1];
        switch (argv[i][1]) {
        case 's': server = v; break;
        case 'p': port = (unsigned)atoi(v); break;
        case 'm': modes = v; break;
        case 't': thumb = v; break;
        case 'u': user = v; break;
        case 'w': pw = v; break;
        case 'd': depth = atoi(v); break;
        case 'k': chunk_kib = (unsigned)atoi(v); break;
        default: fprintf(stderr, "bench_net: unknown option %s\n", argv[i]); return 2;
        }
    }
    if (i != argc - 1 || depth < 1 || depth > 256 || chunk_kib < 4 || chunk_kib > 32768) {
        fprintf(stderr, "usage: bench_net [-s SERVER] [-p PORT] [-m MODES] [-t THUMB] "
                "[-u USER -w PW] [-d DEPTH] [-k CHUNK_KIB] EXPORT\n");
        return 2;
    }
    const char *export_name = argv[i];
    VixError e = VixDiskLib_InitEx(8, 0, quiet, warn, warn, NULL, NULL);
    if (e != VIX_OK)
        return fail("InitEx", e);
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    cp->serverName = (char *)server;
    cp->port = port;
    cp->thumbPrint = (char *)thumb;
    if (user) {
        cp->credType = VIXDISKLIB_CRED_UID;
        cp->creds.uid.userName = (char *)user;
        cp->creds.uid.password = (char *)(pw ? pw : "");
    }
    VixDiskLibConnection c;
    e = VixDiskLib_ConnectEx(cp, TRUE, NULL, modes, &c);
    VixDiskLib_FreeConnectParams(cp);
    if (e != VIX_OK)
        return fail("ConnectEx", e);
    double t0 = now();
    VixDiskLibHandle h;
    if ((e = VixDiskLib_Open(c, export_name, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h)) != VIX_OK)
        return fail("Open", e);
    VixDiskLibInfo *info;
    if ((e = VixDiskLib_GetInfo(h, &info)) != VIX_OK)
        return fail("GetInfo", e);
    VixDiskLibSectorType cap = info->capacity;
    VixDiskLib_FreeInfo(info);
    VixDiskLibSectorType csec = (VixDiskLibSectorType)chunk_kib * 2;
    struct slot *slots = calloc((size_t)depth, sizeof *slots);
    for (int k = 0; k < depth; k++)
        slots[k].buf = malloc(csec * VIXDISKLIB_SECTOR_SIZE);
    unsigned long long bytes = 0;
    VixDiskLibSectorType qchunk = 128;   /* 64 KiB */
    VixDiskLibSectorType window = qchunk * VIXDISKLIB_MAX_CHUNK_NUMBER;
    for (VixDiskLibSectorType s = 0; s < cap && first_err == VIX_OK; s += window) {
        VixDiskLibSectorType span = cap - s < window ? cap - s : window;
        span = (span + qchunk - 1) / qchunk * qchunk;
        VixDiskLibBlockList *bl;
        if ((e = VixDiskLib_QueryAllocatedBlocks(h, s, span, qchunk, &bl)) != VIX_OK)
            return fail("QueryAllocatedBlocks", e);
        for (uint32 b = 0; b < bl->numBlocks && first_err == VIX_OK; b++) {
            VixDiskLibSectorType o = bl->blocks[b].offset;
            VixDiskLibSectorType end = o + bl->blocks[b].length;
            if (end > cap)
                end = cap;
            while (o < end) {
                pthread_mutex_lock(&lock);
                int k = -1;
                while (first_err == VIX_OK) {
                    for (int j = 0; j < depth && k < 0; j++)
                        if (!slots[j].busy)
                            k = j;
                    if (k >= 0)
                        break;
                    pthread_cond_wait(&cond, &lock);
                }
                if (k < 0) {
                    pthread_mutex_unlock(&lock);
                    break;
                }
                slots[k].busy = 1;
                outstanding++;
                pthread_mutex_unlock(&lock);
                VixDiskLibSectorType n = end - o < csec ? end - o : csec;
                e = VixDiskLib_ReadAsync(h, o, n, slots[k].buf, done, &slots[k]);
                if (e != VIX_ASYNC)
                    return fail("ReadAsync", e);
                bytes += n * VIXDISKLIB_SECTOR_SIZE;
                o += n;
            }
        }
        VixDiskLib_FreeBlockList(bl);
    }
    VixDiskLib_Wait(h);
    pthread_mutex_lock(&lock);
    while (outstanding > 0)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    if (first_err != VIX_OK)
        return fail("ReadAsync", first_err);
    VixDiskLib_Close(h);
    double secs = now() - t0;
    VixDiskLib_Disconnect(c);
    VixDiskLib_Exit();
    for (int k = 0; k < depth; k++)
        free(slots[k].buf);
    free(slots);
    printf("bytes=%llu seconds=%.3f MB/s=%.1f\n", bytes, secs, bytes / secs / 1e6);
    return 0;
}
