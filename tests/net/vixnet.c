/* vixnet.c - a VDDK-style client of remote disks for the net tests.
 *
 * Uses only the public API (vixDiskLib.h).  Every failure prints
 *   vixnet: COMMAND: error N: TEXT
 * on stderr and exits 1, so scripts can check the exact VixError.
 *
 *   vixnet [-s SERVER] [-p PORT] [-m MODES] [-u USER] [-w PASSWORD]
 *          [-t THUMBPRINT] [-c CONFIG] [-r] [-v VMSPEC] [-S SNAPSHOT]
 *          [-k COOKIE] [-T SPECTYPE] [-1] [-N NFCPORT] [-z CODEC] [-b SECTORS]
 *          COMMAND ARGS...
 *
 * -v "moref=vm-N" makes it a vSphere connection (vmxSpec), -S the
 * snapshotRef, -k connects with a session cookie (VIXDISKLIB_CRED_SESSIONID)
 * instead of user and password, -T sets specType (0 VMX, 1 vStorageObject,
 * 2 datastore), -1 opens with SINGLE_LINK, -N sets nfcHostPort, -z opens
 * with wire compression (zlib, fastlz, skipz), -b is the request size of
 * read, aread, write and readloop in sectors (default 2048).  The password may also come from
 * the environment (VIXNET_PASSWORD), as tools should take it.  VIXNET_LOG=1
 * prints the library's log lines on stderr.
 *
 *   connect                      ConnectEx, then Disconnect
 *   info EXPORT                  capacity, links, geometry, adapter, transport
 *   read EXPORT OUT.raw          copy the disk (allocated blocks only; holes
 *                                stay holes in OUT) with synchronous Read
 *   aread EXPORT OUT.raw DEPTH   the same with ReadAsync, DEPTH requests in flight
 *   write EXPORT IN.raw          write IN over the whole disk (WriteAsync), Flush
 *   map EXPORT                   QueryAllocatedBlocks: "offset length" in bytes
 *   meta EXPORT KEY              ReadMetadata
 *   setmeta EXPORT KEY VALUE     WriteMetadata
 *   readloop EXPORT              read the disk over and over until an error;
 *                                prints "reading" once the first pass started
 *   backup EXPORT LOCAL [TYPE]   Clone remote -> local (TYPE: sparse|stream)
 *   restore LOCAL EXPORT         Clone local -> remote (overWrite)
 *   keys EXPORT                  GetMetadataKeys, one key a line
 *   space EXPORT TYPE            SpaceNeededForClone (TYPE: sparse|stream|flat)
 *   mode EXPORT                  GetTransportMode after Open
 *   swrite EXPORT                Write one sector at 0 (expected to fail remotely)
 *   prepare | endaccess | cleanup   PrepareForAccess / EndAccess / Cleanup
 *                                with the connection's parameters
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vixDiskLib.h"

static VixDiskLibSectorType CHUNK_SECTORS = 2048;   /* -b; 1 MiB */
static uint32 open_extra;                           /* -z: compression flags */
#define SECTOR VIXDISKLIB_SECTOR_SIZE

static const char *cmd = "";
static char last_warn[2048];

static void logf_(const char *fmt, va_list ap)
{
    if (getenv("VIXNET_LOG")) {
        fprintf(stderr, "vixnet: log: ");
        vfprintf(stderr, fmt, ap);
    }
}

static void warnf(const char *fmt, va_list ap)
{
    vsnprintf(last_warn, sizeof last_warn, fmt, ap);
    if (getenv("VIXNET_VERBOSE"))
        fprintf(stderr, "vixnet: warning: %s", last_warn);
}

static int fail(VixError e, const char *what)
{
    char *t = VixDiskLib_GetErrorText(e, NULL);
    size_t n = strlen(last_warn);
    while (n && (last_warn[n - 1] == '\n'))
        last_warn[--n] = '\0';
    fprintf(stderr, "vixnet: %s: error %lu: %s: %s [%s]\n", cmd, (unsigned long)VIX_ERROR_CODE(e),
            what, t ? t : "?", last_warn);
    VixDiskLib_FreeErrorText(t);
    return 1;
}

static int die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vixnet: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

struct opts {
    const char *server, *modes, *user, *password, *thumb, *config, *vmspec, *snapshot;
    const char *cookie;
    unsigned port, nfc_port;
    int readonly, spectype, single;
};

static VixDiskLibConnectParams *make_params(const struct opts *o)
{
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    cp->serverName = (char *)o->server;
    cp->port = o->port;
    cp->nfcHostPort = o->nfc_port;
    cp->thumbPrint = (char *)o->thumb;
    cp->vmxSpec = (char *)o->vmspec;
    cp->specType = (VixDiskLibSpecType)o->spectype;
    if (o->cookie) {
        cp->credType = VIXDISKLIB_CRED_SESSIONID;
        cp->creds.sessionId.cookie = (char *)o->cookie;
        cp->creds.sessionId.userName = (char *)(o->user ? o->user : "");
        cp->creds.sessionId.key = (char *)"";
    } else if (o->user) {
        cp->credType = VIXDISKLIB_CRED_UID;
        cp->creds.uid.userName = (char *)o->user;
        cp->creds.uid.password = (char *)(o->password ? o->password : "");
    }
    return cp;
}

static VixError connect_remote(const struct opts *o, VixDiskLibConnection *c)
{
    VixDiskLibConnectParams *cp = make_params(o);
    VixError e = VixDiskLib_ConnectEx(cp, o->readonly, o->snapshot, o->modes, c);
    VixDiskLib_FreeConnectParams(cp);
    return e;
}

static VixError connect_local(VixDiskLibConnection *c)
{
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    VixError e = VixDiskLib_ConnectEx(cp, FALSE, NULL, NULL, c);
    VixDiskLib_FreeConnectParams(cp);
    return e;
}

static int write_full(int fd, const void *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w <= 0)
            return -1;
        p = (const char *)p + w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int is_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Copy allocated blocks of h into out (sparse). */
static int do_read(VixDiskLibHandle h, const char *out)
{
    VixDiskLibInfo *info;
    VixError e = VixDiskLib_GetInfo(h, &info);
    if (e != VIX_OK)
        return fail(e, "GetInfo");
    VixDiskLibSectorType cap = info->capacity;
    VixDiskLib_FreeInfo(info);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)cap * SECTOR) < 0)
        return die("%s: %s", out, strerror(errno));
    unsigned char *buf = malloc(CHUNK_SECTORS * SECTOR);
    VixDiskLibSectorType chunk = VIXDISKLIB_MIN_CHUNK_SIZE * 16;   /* 64 KiB */
    for (VixDiskLibSectorType s = 0; s < cap;) {
        VixDiskLibSectorType span = cap - s;
        VixDiskLibSectorType maxspan = chunk * VIXDISKLIB_MAX_CHUNK_NUMBER;
        if (span > maxspan)
            span = maxspan;
        VixDiskLibSectorType q = (span + chunk - 1) / chunk * chunk;
        VixDiskLibBlockList *bl;
        e = VixDiskLib_QueryAllocatedBlocks(h, s, q, chunk, &bl);
        if (e != VIX_OK) {
            free(buf);
            close(fd);
            return fail(e, "QueryAllocatedBlocks");
        }
        for (uint32 i = 0; i < bl->numBlocks; i++) {
            VixDiskLibSectorType b = bl->blocks[i].offset, end = b + bl->blocks[i].length;
            if (end > cap)
                end = cap;
            while (b < end) {
                VixDiskLibSectorType n = end - b < CHUNK_SECTORS ? end - b : CHUNK_SECTORS;
                if ((e = VixDiskLib_Read(h, b, n, buf)) != VIX_OK) {
                    VixDiskLib_FreeBlockList(bl);
                    free(buf);
                    close(fd);
                    return fail(e, "Read");
                }
                if (!is_zero(buf, n * SECTOR) && write_full(fd, buf, n * SECTOR, (off_t)b * SECTOR))
                    return die("%s: write failed", out);
                b += n;
            }
        }
        VixDiskLib_FreeBlockList(bl);
        s += span;
    }
    free(buf);
    close(fd);
    return 0;
}

/* ---- async -------------------------------------------------------------------- */

struct aslot {
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    int *outstanding;
    VixError *first;
    unsigned char *buf;
    VixDiskLibSectorType start, n;
    int fd;
    int busy;
};

static void done_cb(void *data, VixError result)
{
    struct aslot *s = data;
    /* The slot is ours until busy is cleared: write outside the lock, so
     * that completions do not queue behind each other's file writes. */
    if (result == VIX_OK && s->fd >= 0 && !is_zero(s->buf, s->n * SECTOR))
        write_full(s->fd, s->buf, s->n * SECTOR, (off_t)s->start * SECTOR);
    pthread_mutex_lock(s->lock);
    if (result != VIX_OK && *s->first == VIX_OK)
        *s->first = result;
    s->busy = 0;
    (*s->outstanding)--;
    pthread_cond_broadcast(s->cond);
    pthread_mutex_unlock(s->lock);
}

/* Read (fd >= 0: into fd) or write (from in) every sector with depth requests in flight. */
static int async_all(VixDiskLibHandle h, int write, int fd, const unsigned char *in, int depth)
{
    VixDiskLibInfo *info;
    VixError e = VixDiskLib_GetInfo(h, &info);
    if (e != VIX_OK)
        return fail(e, "GetInfo");
    VixDiskLibSectorType cap = info->capacity;
    VixDiskLib_FreeInfo(info);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    int outstanding = 0;
    VixError first = VIX_OK;
    struct aslot *slots = calloc((size_t)depth, sizeof *slots);
    for (int i = 0; i < depth; i++)
        slots[i] = (struct aslot){ &lock, &cond, &outstanding, &first,
                                   malloc(CHUNK_SECTORS * SECTOR), 0, 0, write ? -1 : fd, 0 };
    for (VixDiskLibSectorType s = 0; s < cap && first == VIX_OK;) {
        pthread_mutex_lock(&lock);
        int k = -1;
        while (first == VIX_OK) {
            for (int i = 0; i < depth && k < 0; i++)
                if (!slots[i].busy)
                    k = i;
            if (k >= 0)
                break;
            pthread_cond_wait(&cond, &lock);
        }
        if (k < 0) {
            pthread_mutex_unlock(&lock);
            break;
        }
        struct aslot *sl = &slots[k];
        sl->busy = 1;
        sl->start = s;
        sl->n = cap - s < CHUNK_SECTORS ? cap - s : CHUNK_SECTORS;
        outstanding++;
        pthread_mutex_unlock(&lock);
        if (write)
            memcpy(sl->buf, in + (size_t)s * SECTOR, sl->n * SECTOR);
        e = write ? VixDiskLib_WriteAsync(h, s, sl->n, sl->buf, done_cb, sl)
                  : VixDiskLib_ReadAsync(h, s, sl->n, sl->buf, done_cb, sl);
        if (e != VIX_ASYNC) {
            pthread_mutex_lock(&lock);
            outstanding--;
            sl->busy = 0;
            if (first == VIX_OK)
                first = e;
            pthread_mutex_unlock(&lock);
        }
        s += sl->n;
    }
    VixDiskLib_Wait(h);
    pthread_mutex_lock(&lock);
    while (outstanding > 0)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < depth; i++)
        free(slots[i].buf);
    free(slots);
    if (first != VIX_OK)
        return fail(first, write ? "WriteAsync" : "ReadAsync");
    return 0;
}

static int open_disk(VixDiskLibConnection c, const char *path, uint32 flags, VixDiskLibHandle *h)
{
    VixError e = VixDiskLib_Open(c, path, flags | open_extra, h);
    return e == VIX_OK ? 0 : fail(e, "Open");
}

static Bool progress(void *d, int pct)
{
    (void)d;
    (void)pct;
    return TRUE;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(const struct opts *o, int argc, char **argv)
{
    cmd = argv[0];
    VixDiskLibConnection c = NULL;
    VixError e;
    if (!strcmp(cmd, "prepare") || !strcmp(cmd, "endaccess") || !strcmp(cmd, "cleanup")) {
        VixDiskLibConnectParams *cp = make_params(o);
        uint32 done = 99, left = 99;
        e = !strcmp(cmd, "prepare") ? VixDiskLib_PrepareForAccess(cp, "vixnet")
            : !strcmp(cmd, "endaccess") ? VixDiskLib_EndAccess(cp, "vixnet")
                                        : VixDiskLib_Cleanup(cp, &done, &left);
        VixDiskLib_FreeConnectParams(cp);
        if (e != VIX_OK)
            return fail(e, cmd);
        if (!strcmp(cmd, "cleanup"))
            printf("cleaned %u remaining %u\n", done, left);
        else
            printf("ok\n");
        return 0;
    }
    e = connect_remote(o, &c);
    if (e != VIX_OK)
        return fail(e, "ConnectEx");
    int rc = 0;
    VixDiskLibHandle h = NULL;
    uint32 rdflag = VIXDISKLIB_FLAG_OPEN_READ_ONLY |
                    (o->single ? VIXDISKLIB_FLAG_OPEN_SINGLE_LINK : 0);
    if (strcmp(cmd, "connect") == 0) {
        printf("connected\n");
    } else if (strcmp(cmd, "info") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            VixDiskLibInfo *i;
            if ((e = VixDiskLib_GetInfo(h, &i)) != VIX_OK) {
                rc = fail(e, "GetInfo");
            } else {
                printf("capacity %llu\nlinks %d\ngeometry %u/%u/%u\nadapter %d\ntransport %s\n"
                       "uuid %s\n", (unsigned long long)i->capacity, i->numLinks,
                       i->physGeo.cylinders, i->physGeo.heads, i->physGeo.sectors,
                       (int)i->adapterType, VixDiskLib_GetTransportMode(h),
                       i->uuid ? i->uuid : "-");
                VixDiskLib_FreeInfo(i);
            }
        }
    } else if (strcmp(cmd, "read") == 0 && argc == 3) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h)))
            rc = do_read(h, argv[2]);
    } else if (strcmp(cmd, "aread") == 0 && argc == 4) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            VixDiskLibInfo *i;
            if (fd < 0 || VixDiskLib_GetInfo(h, &i) != VIX_OK) {
                rc = die("%s: cannot create", argv[2]);
            } else {
                if (ftruncate(fd, (off_t)i->capacity * SECTOR) < 0)
                    rc = die("%s: %s", argv[2], strerror(errno));
                VixDiskLib_FreeInfo(i);
                double t0 = now();
                if (!rc)
                    rc = async_all(h, 0, fd, NULL, atoi(argv[3]));
                if (!rc && getenv("VIXNET_TIME"))
                    fprintf(stderr, "vixnet: aread %.3f s\n", now() - t0);
                close(fd);
            }
        }
    } else if (strcmp(cmd, "write") == 0 && argc == 3) {
        if (!(rc = open_disk(c, argv[1], 0, &h))) {
            FILE *f = fopen(argv[2], "rb");
            struct stat st;
            unsigned char *in = NULL;
            if (!f || fstat(fileno(f), &st) < 0 || !(in = malloc((size_t)st.st_size + 1)) ||
                fread(in, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
                rc = die("%s: cannot read", argv[2]);
            if (f)
                fclose(f);
            VixDiskLibInfo *i;
            if (!rc && (e = VixDiskLib_GetInfo(h, &i)) == VIX_OK) {
                if ((uint64)st.st_size != i->capacity * SECTOR)
                    rc = die("%s is %lld bytes, the disk %llu", argv[2], (long long)st.st_size,
                             (unsigned long long)(i->capacity * SECTOR));
                VixDiskLib_FreeInfo(i);
            }
            if (!rc)
                rc = async_all(h, 1, -1, in, 8);
            if (!rc && (e = VixDiskLib_Flush(h)) != VIX_OK)
                rc = fail(e, "Flush");
            free(in);
        }
    } else if (strcmp(cmd, "map") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            VixDiskLibInfo *i;
            VixDiskLib_GetInfo(h, &i);
            VixDiskLibSectorType cap = i->capacity, chunk = 128;
            VixDiskLib_FreeInfo(i);
            VixDiskLibBlockList *bl;
            e = VixDiskLib_QueryAllocatedBlocks(h, 0, (cap + chunk - 1) / chunk * chunk, chunk,
                                                &bl);
            if (e != VIX_OK) {
                rc = fail(e, "QueryAllocatedBlocks");
            } else {
                for (uint32 k = 0; k < bl->numBlocks; k++)
                    printf("%llu %llu\n", (unsigned long long)bl->blocks[k].offset * SECTOR,
                           (unsigned long long)bl->blocks[k].length * SECTOR);
                VixDiskLib_FreeBlockList(bl);
            }
        }
    } else if (strcmp(cmd, "meta") == 0 && argc == 3) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            char buf[4096];
            size_t need = 0;
            if ((e = VixDiskLib_ReadMetadata(h, argv[2], buf, sizeof buf, &need)) != VIX_OK)
                rc = fail(e, "ReadMetadata");
            else
                printf("%s\n", buf);
        }
    } else if (strcmp(cmd, "setmeta") == 0 && argc == 4) {
        if (!(rc = open_disk(c, argv[1], 0, &h)) &&
            (e = VixDiskLib_WriteMetadata(h, argv[2], argv[3])) != VIX_OK)
            rc = fail(e, "WriteMetadata");
    } else if (strcmp(cmd, "readloop") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            VixDiskLibInfo *i;
            VixDiskLib_GetInfo(h, &i);
            VixDiskLibSectorType cap = i->capacity;
            VixDiskLib_FreeInfo(i);
            unsigned char *buf = malloc(CHUNK_SECTORS * SECTOR);
            int said = 0;
            for (;;) {
                for (VixDiskLibSectorType s = 0; s < cap; s += CHUNK_SECTORS) {
                    VixDiskLibSectorType n = cap - s < CHUNK_SECTORS ? cap - s : CHUNK_SECTORS;
                    if ((e = VixDiskLib_Read(h, s, n, buf)) != VIX_OK)
                        break;
                    if (!said) {
                        printf("reading\n");
                        fflush(stdout);
                        said = 1;
                    }
                }
                if (e != VIX_OK)
                    break;
            }
            free(buf);
            rc = fail(e, "Read");
        }
    } else if (strcmp(cmd, "backup") == 0 && (argc == 3 || argc == 4)) {
        VixDiskLibConnection lc;
        if ((e = connect_local(&lc)) != VIX_OK)
            return fail(e, "ConnectEx(local)");
        VixDiskLibCreateParams p = { 0 };
        p.diskType = argc == 4 && strcmp(argv[3], "sparse") == 0
                         ? VIXDISKLIB_DISK_MONOLITHIC_SPARSE : VIXDISKLIB_DISK_STREAM_OPTIMIZED;
        p.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
        p.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
        if ((e = VixDiskLib_Clone(lc, argv[2], c, argv[1], &p, progress, NULL, TRUE)) != VIX_OK)
            rc = fail(e, "Clone");
        VixDiskLib_Disconnect(lc);
    } else if (strcmp(cmd, "restore") == 0 && argc == 3) {
        VixDiskLibConnection lc;
        if ((e = connect_local(&lc)) != VIX_OK)
            return fail(e, "ConnectEx(local)");
        VixDiskLibCreateParams p = { 0 };
        p.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
        p.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
        if ((e = VixDiskLib_Clone(c, argv[2], lc, argv[1], &p, progress, NULL, TRUE)) != VIX_OK)
            rc = fail(e, "Clone");
        VixDiskLib_Disconnect(lc);
    } else if (strcmp(cmd, "keys") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            char buf[65536];
            size_t need = 0;
            if ((e = VixDiskLib_GetMetadataKeys(h, buf, sizeof buf, &need)) != VIX_OK)
                rc = fail(e, "GetMetadataKeys");
            for (char *k = buf; !rc && *k; k += strlen(k) + 1)
                printf("%s\n", k);
        }
    } else if (strcmp(cmd, "space") == 0 && argc == 3) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            VixDiskLibDiskType t = !strcmp(argv[2], "stream") ? VIXDISKLIB_DISK_STREAM_OPTIMIZED
                                   : !strcmp(argv[2], "flat") ? VIXDISKLIB_DISK_MONOLITHIC_FLAT
                                                              : VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
            uint64 need = 0;
            if ((e = VixDiskLib_SpaceNeededForClone(h, t, &need)) != VIX_OK)
                rc = fail(e, "SpaceNeededForClone");
            else
                printf("%llu\n", (unsigned long long)need);
        }
    } else if (strcmp(cmd, "mode") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], rdflag, &h))) {
            const char *m = VixDiskLib_GetTransportMode(h);
            printf("%s\n", m ? m : "(null)");
        }
    } else if (strcmp(cmd, "swrite") == 0 && argc == 2) {
        if (!(rc = open_disk(c, argv[1], 0, &h))) {
            static uint8 sector[SECTOR];
            if ((e = VixDiskLib_Write(h, 0, 1, sector)) != VIX_OK)
                rc = fail(e, "Write");
        }
    } else {
        rc = die("unknown command or wrong arguments");
    }
    if (h && (e = VixDiskLib_Close(h)) != VIX_OK && !rc)
        rc = fail(e, "Close");
    VixDiskLib_Disconnect(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = { .server = "127.0.0.1" };
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] && !argv[i][2]; i++) {
        char f = argv[i][1];
        if (f == 'r' || f == '1') {
            if (f == 'r')
                o.readonly = 1;
            else
                o.single = 1;
            continue;
        }
        if (i + 1 >= argc)
            return die("option -%c needs a value", f);
        const char *v = argv[++i];
        switch (f) {
        case 's': o.server = v; break;
        case 'p': o.port = (unsigned)atoi(v); break;
        case 'm': o.modes = v; break;
        case 'u': o.user = v; break;
        case 'w': o.password = v; break;
        case 't': o.thumb = v; break;
        case 'c': o.config = v; break;
        case 'v': o.vmspec = v; break;
        case 'S': o.snapshot = v; break;
        case 'k': o.cookie = v; break;
        case 'T': o.spectype = atoi(v); break;
        case 'N': o.nfc_port = (unsigned)atoi(v); break;
        case 'b': CHUNK_SECTORS = (VixDiskLibSectorType)atoi(v); break;
        case 'z':
            open_extra = !strcmp(v, "zlib") ? VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB
                         : !strcmp(v, "fastlz") ? VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ
                         : !strcmp(v, "skipz") ? VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ : 0;
            if (!open_extra && strcmp(v, "none"))
                return die("-z %s: zlib, fastlz, skipz or none", v);
            break;
        default: return die("unknown option -%c", f);
        }
    }
    if (i >= argc)
        return die("usage: vixnet [options] COMMAND ARGS...");
    if (!o.password)
        o.password = getenv("VIXNET_PASSWORD");
    VixError e = VixDiskLib_InitEx(8, 0, logf_, warnf, warnf, NULL, o.config);
    if (e != VIX_OK)
        return fail(e, "InitEx");
    int rc = run(&o, argc - i, argv + i);
    VixDiskLib_Exit();
    return rc;
}
