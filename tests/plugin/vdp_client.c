/* vdp_client.c - a small VixDiskLib client for the plugin tests and
 * bench/plugin.sh.  Public API only (vixDiskLib.h, libvixDiskLib.so).
 *
 *   vdp_client [-L LIBDIR] [-c CONFIG] [-q] COMMAND ARGS
 *     create PATH TYPE MIB            new disk of MIB MiB
 *     fill PATH SEED                  pattern over the whole disk
 *     write PATH OFF_MIB LEN_MIB SEED pattern over part of it
 *     clone SRC DST TYPE [-o] [-x PCT] -o: overwrite; -x: the progress
 *                                     callback cancels at PCT percent
 *     cmp A B                         exit 0 when the contents are equal
 *     zeros PATH                      exit 0 when the disk reads as zeros
 *     space PATH TYPE                 SpaceNeededForClone: "space=N"
 *     info PATH                       link 0's NAS figures (vddk/disk.h):
 *                                     "plugin=NAME total=N allocated=N unique=N"
 *                                     or "plugin=none"
 *
 * -L is InitEx's libDir ("-" for NULL, the default), -c its config file.
 * Every library log line goes to stderr as "[log] ..." or "[warn] ...";
 * -q keeps them for errors only.  Exit: 0 ok, 1 failure, 2 usage,
 * 3 cancelled. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vixDiskLib.h"
#include "vddk/disk.h"

#define CHUNK_SECTORS 2048u   /* 1 MiB */

static int quiet;

static void out_line(const char *tag, const char *fmt, va_list ap)
{
    char buf[4096];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    fprintf(stderr, "[%s] %s\n", tag, buf);
}

static void log_cb(const char *fmt, va_list ap)
{
    if (!quiet)
        out_line("log", fmt, ap);
}

static void warn_cb(const char *fmt, va_list ap)
{
    out_line("warn", fmt, ap);
}

static void panic_cb(const char *fmt, va_list ap)
{
    out_line("panic", fmt, ap);
}

static int check(VixError e, const char *what)
{
    if (e == VIX_OK)
        return 0;
    char *t = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "vdp_client: %s: error %lu: %s\n", what, (unsigned long)e, t ? t : "?");
    VixDiskLib_FreeErrorText(t);
    return VIX_ERROR_CODE(e) == VIX_E_CANCELLED ? 3 : 1;
}

static int type_of(const char *name)
{
    static const struct { const char *n; int t; } types[] = {
        { "monolithicSparse", VIXDISKLIB_DISK_MONOLITHIC_SPARSE },
        { "monolithicFlat", VIXDISKLIB_DISK_MONOLITHIC_FLAT },
        { "twoGbMaxExtentSparse", VIXDISKLIB_DISK_SPLIT_SPARSE },
        { "twoGbMaxExtentFlat", VIXDISKLIB_DISK_SPLIT_FLAT },
        { "vmfs", VIXDISKLIB_DISK_VMFS_FLAT },
        { "vmfsThin", VIXDISKLIB_DISK_VMFS_THIN },
        { "streamOptimized", VIXDISKLIB_DISK_STREAM_OPTIMIZED },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].n, name) == 0)
            return types[i].t;
    return -1;
}

/* Deterministic non-zero content: a 64-bit mix of seed and byte offset. */
static void pattern(unsigned char *buf, size_t len, uint64_t off, uint64_t seed)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull ^ (seed + 1) * 0xbf58476d1ce4e5b9ull;
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 29;
        x |= 1;
        memcpy(buf + i, &x, len - i < 8 ? len - i : 8);
    }
}

static VixDiskLibConnection conn;

static int open_disk(const char *path, uint32 flags, VixDiskLibHandle *h, uint64_t *sectors)
{
    int rc = check(VixDiskLib_Open(conn, path, flags, h), path);
    if (rc)
        return rc;
    VixDiskLibInfo *info;
    if ((rc = check(VixDiskLib_GetInfo(*h, &info), "GetInfo")) != 0) {
        VixDiskLib_Close(*h);
        return rc;
    }
    *sectors = info->capacity;
    VixDiskLib_FreeInfo(info);
    return 0;
}

static int do_write(const char *path, uint64_t first, uint64_t count, uint64_t seed)
{
    VixDiskLibHandle h;
    uint64_t cap;
    int rc = open_disk(path, 0, &h, &cap);
    if (rc)
        return rc;
    if (count == UINT64_MAX || first + count > cap)
        count = first < cap ? cap - first : 0;
    unsigned char *buf = malloc(CHUNK_SECTORS * 512);
    for (uint64_t s = first; buf && s < first + count && rc == 0; s += CHUNK_SECTORS) {
        uint64_t n = first + count - s < CHUNK_SECTORS ? first + count - s : CHUNK_SECTORS;
        pattern(buf, n * 512, s * 512, seed);
        rc = check(VixDiskLib_Write(h, s, n, buf), "Write");
    }
    free(buf);
    int crc = check(VixDiskLib_Close(h), "Close");
    return rc ? rc : crc;
}

static int do_cmp(const char *a, const char *b, int zeros)
{
    VixDiskLibHandle ha, hb = NULL;
    uint64_t ca, cb = 0;
    int rc = open_disk(a, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &ha, &ca);
    if (rc)
        return rc;
    if (!zeros && (rc = open_disk(b, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &hb, &cb)) != 0) {
        VixDiskLib_Close(ha);
        return rc;
    }
    if (!zeros && ca != cb) {
        fprintf(stderr, "vdp_client: capacities differ: %" PRIu64 " and %" PRIu64 " sectors\n",
                ca, cb);
        rc = 1;
    }
    unsigned char *x = malloc(CHUNK_SECTORS * 512), *y = calloc(CHUNK_SECTORS, 512);
    for (uint64_t s = 0; rc == 0 && x && y && s < ca; s += CHUNK_SECTORS) {
        uint64_t n = ca - s < CHUNK_SECTORS ? ca - s : CHUNK_SECTORS;
        rc = check(VixDiskLib_Read(ha, s, n, x), "Read");
        if (rc == 0 && hb)
            rc = check(VixDiskLib_Read(hb, s, n, y), "Read");
        if (rc == 0 && memcmp(x, y, n * 512) != 0) {
            fprintf(stderr, "vdp_client: contents differ in sectors %" PRIu64 "..%" PRIu64 "\n",
                    s, s + n - 1);
            rc = 1;
        }
    }
    free(x);
    free(y);
    VixDiskLib_Close(ha);
    if (hb)
        VixDiskLib_Close(hb);
    return rc;
}

static int do_space(const char *path, int type)
{
    VixDiskLibHandle h;
    uint64_t cap;
    int rc = open_disk(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h, &cap);
    if (rc)
        return rc;
    uint64 need = 0;
    rc = check(VixDiskLib_SpaceNeededForClone(h, (VixDiskLibDiskType)type, &need),
               "SpaceNeededForClone");
    if (rc == 0)
        printf("space=%" PRIu64 "\n", (uint64_t)need);
    VixDiskLib_Close(h);
    return rc;
}

static int do_info(const char *path)
{
    VixDiskLibHandle h;
    uint64_t cap;
    int rc = open_disk(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h, &cap);
    if (rc)
        return rc;
    vddk_link_info *li = NULL;
    rc = check(vddk_disk_get_link_info(h, 0, &li), "vddk_disk_get_link_info");
    if (rc == 0 && li->nasPlugin)
        printf("plugin=%s total=%" PRIu64 " allocated=%" PRIu64 " unique=%" PRIu64 "\n",
               li->nasPlugin, (uint64_t)li->nasTotalBytes, (uint64_t)li->nasAllocatedBytes,
               (uint64_t)li->nasUniqueBytes);
    else if (rc == 0)
        printf("plugin=none\n");
    vddk_disk_free_link_info(li);
    VixDiskLib_Close(h);
    return rc;
}

struct prog {
    int cancel_at;   /* -1: never */
    int calls, last;
};

static Bool on_progress(void *data, int pct)
{
    struct prog *p = data;
    p->calls++;
    if (pct < p->last)
        fprintf(stderr, "vdp_client: progress went back from %d to %d\n", p->last, pct);
    p->last = pct;
    return !(p->cancel_at >= 0 && pct >= p->cancel_at);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(stderr, "usage: vdp_client [-L LIBDIR] [-c CONFIG] [-q] create|fill|write|clone|"
                    "cmp|zeros|space|info ARGS (see the source)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *lib = NULL, *cfg = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-L") && i + 1 < argc)
            lib = strcmp(argv[++i], "-") ? argv[i] : NULL;
        else if (!strcmp(argv[i], "-c") && i + 1 < argc)
            cfg = argv[++i];
        else if (!strcmp(argv[i], "-q"))
            quiet = 1;
        else
            return usage();
    }
    if (i >= argc)
        return usage();
    const char *cmd = argv[i++];
    int n = argc - i;
    char **a = argv + i;
    int rc = check(VixDiskLib_InitEx(8, 0, log_cb, warn_cb, panic_cb, lib, cfg), "InitEx");
    if (rc)
        return rc;
    if ((rc = check(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn), "ConnectEx")) != 0) {
        VixDiskLib_Exit();
        return rc;
    }
    if (!strcmp(cmd, "create") && n == 3) {
        int t = type_of(a[1]);
        VixDiskLibCreateParams cp = {
            .diskType = (VixDiskLibDiskType)t, .adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
            .hwVersion = 7, .capacity = strtoull(a[2], NULL, 10) * 2048,
        };
        rc = t < 0 ? usage() : check(VixDiskLib_Create(conn, a[0], &cp, NULL, NULL), "Create");
    } else if (!strcmp(cmd, "fill") && n == 2) {
        rc = do_write(a[0], 0, UINT64_MAX, strtoull(a[1], NULL, 10));
    } else if (!strcmp(cmd, "write") && n == 4) {
        rc = do_write(a[0], strtoull(a[1], NULL, 10) * 2048, strtoull(a[2], NULL, 10) * 2048,
                      strtoull(a[3], NULL, 10));
    } else if (!strcmp(cmd, "clone") && n >= 3) {
        int t = type_of(a[2]), over = 0;
        struct prog p = { .cancel_at = -1, .last = -1 };
        for (int k = 3; k < n; k++) {
            if (!strcmp(a[k], "-o"))
                over = 1;
            else if (!strcmp(a[k], "-x") && k + 1 < n)
                p.cancel_at = atoi(a[++k]);
            else
                t = -1;
        }
        VixDiskLibCreateParams cp = {
            .diskType = (VixDiskLibDiskType)t, .adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
            .hwVersion = 7,
        };
        if (t < 0) {
            rc = usage();
        } else {
            double t0 = now();
            rc = check(VixDiskLib_Clone(conn, a[1], conn, a[0], &cp, on_progress, &p, over),
                       "Clone");
            printf("clone: %s seconds=%.3f progress_calls=%d last=%d\n",
                   rc == 0 ? "ok" : rc == 3 ? "cancelled" : "failed", now() - t0, p.calls,
                   p.last);
        }
    } else if (!strcmp(cmd, "cmp") && n == 2) {
        rc = do_cmp(a[0], a[1], 0);
    } else if (!strcmp(cmd, "zeros") && n == 1) {
        rc = do_cmp(a[0], NULL, 1);
    } else if (!strcmp(cmd, "space") && n == 2) {
        int t = type_of(a[1]);
        rc = t < 0 ? usage() : do_space(a[0], t);
    } else if (!strcmp(cmd, "info") && n == 1) {
        rc = do_info(a[0]);
    } else {
        rc = usage();
    }
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    return rc;
}
