/* vdtest.c - a test driver over the VMDK engine (src/vmdk/vmdk.h).
 *
 * The interop scripts use it to drive the engine directly and to compare
 * what it reads with what real peers (qemu-img, qemu-io, vmdkinfo) read.
 * Every subcommand exits 0 on success, 1 on a failed check or an engine
 * error (with a message on stderr), 2 on bad usage, 3 when the engine
 * answers VD_E_UNSUPPORTED (a valid input it does not implement).
 *
 *   vdtest create TYPE SIZE DISK             new disk (SIZE takes K/M/G/T)
 *   vdtest child PARENT CHILD [TYPE]         new delta disk on PARENT
 *   vdtest cat DISK OUT.raw                  the whole chain into a raw file
 *   vdtest cmp DISK FILE.raw                 the whole chain equals the file
 *   vdtest randwrite DISK MIRROR.raw SEED COUNT MAXLEN
 *   vdtest threads DISK MIRROR.raw NTHREADS OPS SEED
 *   vdtest status DISK [single]              allocation map (off len status)
 *   vdtest gen FILE OFFSET LEN SEED          PRNG bytes into a plain file
 *
 * randwrite and threads keep MIRROR.raw equal to what the disk must hold:
 * the mirror is created (or extended with zeros) to the disk's capacity and
 * gets the same bytes at the same offsets.  Both are deterministic for a
 * given SEED (threads: the final content is; the interleaving is not). */

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
#include <sys/stat.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

#define CHUNK (4u << 20) /* bytes per read in cat/cmp */

static const char *prog = "vdtest";

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Report an engine error (rc < 0) with its detail; returns the exit status:
 * 3 for VD_E_UNSUPPORTED (scripts may treat it as "not implemented"), else 1. */
static int engine_fail(const char *what, int rc)
{
    msg("%s: %s (%d): %s", what, vd_err_name(-rc), rc, vd_err_msg());
    return rc == -VD_E_UNSUPPORTED ? 3 : 1;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        msg("out of memory (%zu bytes)", n);
        exit(1);
    }
    return p;
}

/* ---- deterministic PRNG (splitmix64 seeding a xorshift64*) ------------ */

struct rng { uint64_t s; };

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
    uint64_t x = seed;
    r->s = splitmix64(&x);
    if (r->s == 0)
        r->s = 0x2545f4914f6cdd1dull;
}

static uint64_t rng_next(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n); n > 0. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

static void rng_fill(struct rng *r, uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i + 8 <= len) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, 8);
        i += 8;
    }
    if (i < len) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, len - i);
    }
}

/* ---- argument parsing ----------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *s == '-')
        return -1;
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1ull << 10; end++; break;
    case 'm': case 'M': mult = 1ull << 20; end++; break;
    case 'g': case 'G': mult = 1ull << 30; end++; break;
    case 't': case 'T': mult = 1ull << 40; end++; break;
    default: return -1;
    }
    if (*end != '\0' || (v && mult > UINT64_MAX / v))
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

static uint64_t arg_u64(const char *name, const char *s)
{
    uint64_t v;
    if (parse_u64(s, &v) < 0) {
        msg("bad %s: %s", name, s);
        exit(2);
    }
    return v;
}

/* ---- file helpers --------------------------------------------------- */

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Reads len bytes; a short file reads as zeros past its end. */
static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int is_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Open (creating if needed) a mirror file at least cap bytes long. */
static int open_mirror(const char *path, uint64_t cap)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        msg("%s: %s", path, strerror(errno));
        exit(1);
    }
    if ((uint64_t)st.st_size < cap && ftruncate(fd, (off_t)cap) < 0) {
        msg("%s: extend to %" PRIu64 ": %s", path, cap, strerror(errno));
        exit(1);
    }
    return fd;
}

/* ---- create / child ------------------------------------------------- */

static int cmd_create(int argc, char **argv)
{
    if (argc != 3) {
        msg("usage: create TYPE SIZE DISK");
        return 2;
    }
    struct vmdk_create_params p;
    memset(&p, 0, sizeof p);
    p.type = vmdk_type_from_name(argv[0]);
    if (p.type == VMDK_TYPE_UNKNOWN) {
        msg("unknown disk type: %s", argv[0]);
        return 2;
    }
    p.capacity = arg_u64("SIZE", argv[1]);
    const char *split = getenv("VDTEST_SPLIT_SIZE");
    if (split)
        p.split_size = arg_u64("VDTEST_SPLIT_SIZE", split);
    const char *grain = getenv("VDTEST_GRAIN_SECTORS");
    if (grain)
        p.grain_sectors = (uint32_t)arg_u64("VDTEST_GRAIN_SECTORS", grain);
    int rc = vmdk_create(argv[2], &p);
    if (rc < 0)
        return engine_fail(argv[2], rc);
    return 0;
}

static int cmd_child(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        msg("usage: child PARENT CHILD [TYPE]");
        return 2;
    }
    enum vmdk_type t = VMDK_TYPE_MONOLITHIC_SPARSE;
    if (argc == 3) {
        t = vmdk_type_from_name(argv[2]);
        if (t == VMDK_TYPE_UNKNOWN) {
            msg("unknown disk type: %s", argv[2]);
            return 2;
        }
    }
    int rc = vmdk_create_child(argv[1], argv[0], t);
    if (rc < 0)
        return engine_fail(argv[1], rc);
    return 0;
}

/* ---- cat / cmp ------------------------------------------------------ */

static vmdk_disk *open_or_die(const char *path, unsigned flags)
{
    vmdk_disk *d;
    int rc = vmdk_open(path, flags, &d);
    if (rc < 0)
        exit(engine_fail(path, rc));
    return d;
}

/* Copies the disk into out.  Zero chunks are not written (the file is
 * truncated to the capacity first), so huge sparse disks stay cheap. */
static int cmd_cat(int argc, char **argv)
{
    if (argc != 2) {
        msg("usage: cat DISK OUT.raw");
        return 2;
    }
    vmdk_disk *d = open_or_die(argv[0], VMDK_OPEN_RDONLY);
    uint64_t cap = vmdk_capacity(d);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)cap) < 0) {
        msg("%s: %s", argv[1], strerror(errno));
        return 1;
    }
    uint8_t *buf = xmalloc(CHUNK);
    int ret = 0;
    for (uint64_t off = 0; off < cap && !ret;) {
        size_t n = cap - off < CHUNK ? (size_t)(cap - off) : CHUNK;
        int rc = vmdk_pread(d, buf, n, off);
        if (rc < 0) {
            char what[64];
            snprintf(what, sizeof what, "read at %" PRIu64, off);
            ret = engine_fail(what, rc);
            break;
        }
        if (!is_zero(buf, n) && full_pwrite(fd, buf, n, off) < 0) {
            msg("%s: %s", argv[1], strerror(errno));
            ret = 1;
        }
        off += n;
    }
    free(buf);
    if (close(fd) < 0 && !ret) {
        msg("%s: %s", argv[1], strerror(errno));
        ret = 1;
    }
    int rc = vmdk_close(d);
    if (rc < 0 && !ret)
        ret = engine_fail("close", rc);
    return ret;
}

/* 0 if the disk equals the file over the whole capacity (a shorter file
 * counts as zero-padded, a longer one must be zero past the capacity). */
static int compare_disk(vmdk_disk *d, int fd, const char *name)
{
    uint64_t cap = vmdk_capacity(d);
    uint8_t *a = xmalloc(CHUNK), *b = xmalloc(CHUNK);
    int ret = 0;
    for (uint64_t off = 0; off < cap && !ret;) {
        size_t n = cap - off < CHUNK ? (size_t)(cap - off) : CHUNK;
        int rc = vmdk_pread(d, a, n, off);
        if (rc < 0) {
            char what[64];
            snprintf(what, sizeof what, "read at %" PRIu64, off);
            ret = engine_fail(what, rc);
            break;
        }
        if (full_pread(fd, b, n, off) < 0) {
            msg("%s: %s", name, strerror(errno));
            ret = 1;
            break;
        }
        if (memcmp(a, b, n) != 0) {
            size_t i = 0;
            while (a[i] == b[i])
                i++;
            msg("%s: differs at byte %" PRIu64 " (disk 0x%02x, file 0x%02x)",
                name, off + i, a[i], b[i]);
            ret = 1;
        }
        off += n;
    }
    struct stat st;
    if (!ret && fstat(fd, &st) == 0 && (uint64_t)st.st_size > cap) {
        size_t n = (uint64_t)st.st_size - cap > CHUNK ? CHUNK
                                                        : (size_t)((uint64_t)st.st_size - cap);
        if (full_pread(fd, b, n, cap) == 0 && !is_zero(b, n)) {
            msg("%s: file has data past the capacity %" PRIu64, name, cap);
            ret = 1;
        }
    }
    free(a);
    free(b);
    return ret;
}

static int cmd_cmp(int argc, char **argv)
{
    if (argc != 2) {
        msg("usage: cmp DISK FILE.raw");
        return 2;
    }
    vmdk_disk *d = open_or_die(argv[0], VMDK_OPEN_RDONLY);
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        msg("%s: %s", argv[1], strerror(errno));
        vmdk_close(d);
        return 1;
    }
    int ret = compare_disk(d, fd, argv[1]);
    close(fd);
    int rc = vmdk_close(d);
    if (rc < 0 && !ret)
        ret = engine_fail("close", rc);
    return ret;
}

/* ---- status --------------------------------------------------------- */

static int cmd_status(int argc, char **argv)
{
    if (argc != 1 && argc != 2) {
        msg("usage: status DISK [single]");
        return 2;
    }
    int single = argc == 2 && strcmp(argv[1], "single") == 0;
    vmdk_disk *d = open_or_die(argv[0], VMDK_OPEN_RDONLY);
    uint64_t cap = vmdk_capacity(d), off = 0;
    static const char *const names[] = { "data", "zero", "hole" };
    int ret = 0, prev = -1;
    uint64_t start = 0;
    while (off < cap) {
        uint64_t run = 0;
        int st = -1;
        int rc = vmdk_block_status(d, off, cap - off, single, &run, &st);
        if (rc < 0) {
            ret = engine_fail("block_status", rc);
            break;
        }
        if (run == 0 || run > cap - off || st < 0 || st > 2) {
            msg("block_status at %" PRIu64 ": bad answer run=%" PRIu64 " status=%d",
                off, run, st);
            ret = 1;
            break;
        }
        if (st != prev) {
            if (prev >= 0)
                printf("%" PRIu64 " %" PRIu64 " %s\n", start, off - start, names[prev]);
            prev = st;
            start = off;
        }
        off += run;
    }
    if (prev >= 0 && !ret)
        printf("%" PRIu64 " %" PRIu64 " %s\n", start, off - start, names[prev]);
    int rc = vmdk_close(d);
    if (rc < 0 && !ret)
        ret = engine_fail("close", rc);
    return ret;
}

/* ---- randwrite ------------------------------------------------------ */

#define GRAIN_BYTES 65536u

/* Offsets worth aiming at: extent and grain-table boundaries of the split
 * sizes in use (2047 MiB VMware style, 2 GiB QEMU style), 32 MiB GT
 * coverage, and the end of the disk. */
static uint64_t pick_offset(struct rng *r, uint64_t cap, uint64_t len)
{
    uint64_t span = cap - len + 1; /* valid offsets: [0, span) */
    uint64_t off;
    switch (rng_below(r, 10)) {
    case 0: case 1: case 2: case 3:
        off = rng_below(r, span);
        break;
    case 4: /* sector aligned */
        off = rng_below(r, span) & ~(uint64_t)(VMDK_SECTOR - 1);
        break;
    case 5: /* grain aligned */
        off = rng_below(r, span) & ~(uint64_t)(GRAIN_BYTES - 1);
        break;
    case 6: { /* straddling a boundary */
        static const uint64_t units[] = { 2047ull << 20, 2048ull << 20, 32ull << 20,
                                          GRAIN_BYTES };
        uint64_t unit = units[rng_below(r, 4)];
        uint64_t nb = cap / unit;
        if (nb == 0) {
            off = rng_below(r, span);
            break;
        }
        uint64_t b = (1 + rng_below(r, nb)) * unit;
        uint64_t back = rng_below(r, len + 1);
        off = b > back ? b - back : 0;
        break;
    }
    case 7: /* at the very end */
        off = span - 1;
        break;
    case 8: /* near the start */
        off = rng_below(r, span < 4 * GRAIN_BYTES ? span : 4 * GRAIN_BYTES);
        break;
    default: /* near the end */
        off = span - 1 - rng_below(r, span < 4 * GRAIN_BYTES ? span : 4 * GRAIN_BYTES);
        break;
    }
    if (off > span - 1)
        off = span - 1;
    return off;
}

static uint64_t pick_length(struct rng *r, uint64_t maxlen)
{
    uint64_t len;
    switch (rng_below(r, 6)) {
    case 0: len = 1 + rng_below(r, 16); break;                      /* tiny */
    case 1: len = VMDK_SECTOR * (1 + rng_below(r, maxlen / VMDK_SECTOR + 1)); break;
    case 2: len = GRAIN_BYTES * (1 + rng_below(r, maxlen / GRAIN_BYTES + 1)); break;
    default: len = 1 + rng_below(r, maxlen); break;
    }
    return len > maxlen ? maxlen : len;
}

static int cmd_randwrite(int argc, char **argv)
{
    if (argc != 5) {
        msg("usage: randwrite DISK MIRROR.raw SEED COUNT MAXLEN");
        return 2;
    }
    uint64_t seed = arg_u64("SEED", argv[2]);
    uint64_t count = arg_u64("COUNT", argv[3]);
    uint64_t maxlen = arg_u64("MAXLEN", argv[4]);
    if (maxlen == 0 || maxlen > (256u << 20)) {
        msg("MAXLEN must be 1..256M");
        return 2;
    }
    vmdk_disk *d = open_or_die(argv[0], 0);
    uint64_t cap = vmdk_capacity(d);
    if (cap == 0) {
        msg("%s: zero capacity", argv[0]);
        vmdk_close(d);
        return 1;
    }
    if (maxlen > cap)
        maxlen = cap;
    int fd = open_mirror(argv[1], cap);
    struct rng r;
    rng_seed(&r, seed);
    uint8_t *buf = xmalloc(maxlen), *chk = xmalloc(maxlen);
    int ret = 0;
    for (uint64_t i = 0; i < count && !ret; i++) {
        uint64_t len = pick_length(&r, maxlen);
        uint64_t off = pick_offset(&r, cap, len);
        if (rng_below(&r, 16) == 0)
            memset(buf, 0, len); /* zero writes too */
        else
            rng_fill(&r, buf, len);
        int rc = vmdk_pwrite(d, buf, len, off);
        if (rc < 0) {
            char what[96];
            snprintf(what, sizeof what, "write %" PRIu64 " at %" PRIu64, len, off);
            ret = engine_fail(what, rc);
            break;
        }
        if (full_pwrite(fd, buf, len, off) < 0) {
            msg("%s: %s", argv[1], strerror(errno));
            ret = 1;
            break;
        }
        /* Read back what was just written (and occasionally flush). */
        rc = vmdk_pread(d, chk, len, off);
        if (rc < 0) {
            char what[96];
            snprintf(what, sizeof what, "read back %" PRIu64 " at %" PRIu64, len, off);
            ret = engine_fail(what, rc);
        } else if (memcmp(buf, chk, len) != 0) {
            msg("write %" PRIu64 " (%" PRIu64 " bytes at %" PRIu64 ") reads back wrong",
                i, len, off);
            ret = 1;
        }
        if (!ret && rng_below(&r, 32) == 0 && (rc = vmdk_flush(d)) < 0)
            ret = engine_fail("flush", rc);
    }
    /* The whole disk must now equal the mirror, before and after reopening. */
    if (!ret)
        ret = compare_disk(d, fd, argv[1]);
    int rc = vmdk_close(d);
    if (rc < 0 && !ret)
        ret = engine_fail("close", rc);
    if (!ret) {
        d = open_or_die(argv[0], VMDK_OPEN_RDONLY);
        ret = compare_disk(d, fd, argv[1]);
        rc = vmdk_close(d);
        if (rc < 0 && !ret)
            ret = engine_fail("close", rc);
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        msg("%s: %s", argv[1], strerror(errno));
        ret = 1;
    }
    free(buf);
    free(chk);
    return ret;
}

/* ---- threads -------------------------------------------------------- */

/* The write window (the first min(capacity, 64 MiB) bytes) is cut at random
 * byte offsets into many small regions; region i belongs to thread
 * i % nthreads.  Neighbouring regions share grains and grain tables, so
 * threads race on allocating, filling and copying the same grains while
 * the final content stays determined by each thread's own writes. */
struct region { uint64_t start, len; };

struct tshared {
    vmdk_disk *disk;
    uint64_t cap, window;
    uint8_t *expect;        /* window bytes; each thread touches its own regions */
    struct region *regions;
    size_t nregions;
    int nthreads;
    uint64_t ops, seed;
    atomic_int failed;
};

struct targ {
    struct tshared *sh;
    int id;
    pthread_t tid;
    uint64_t writes, reads, wide, status, flushes;
};

#define TMAXLEN (256u << 10)

static void tfail(struct targ *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tfail(struct targ *t, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    msg("thread %d: %s", t->id, text);
    atomic_store(&t->sh->failed, 1);
}

static void *thread_main(void *p)
{
    struct targ *t = p;
    struct tshared *sh = t->sh;
    struct rng r;
    rng_seed(&r, sh->seed * 1000003u + (uint64_t)t->id + 1);
    uint8_t *buf = xmalloc(TMAXLEN), *chk = xmalloc(TMAXLEN);
    size_t mine = (sh->nregions + (size_t)sh->nthreads - 1 - (size_t)t->id) / (size_t)sh->nthreads;

    for (uint64_t i = 0; i < sh->ops && !atomic_load(&sh->failed); i++) {
        unsigned op = (unsigned)rng_below(&r, 100);
        size_t ri = (size_t)t->id + (size_t)sh->nthreads * (size_t)rng_below(&r, mine);
        const struct region *rg = &sh->regions[ri];
        uint64_t a = rng_below(&r, rg->len);
        uint64_t n = 1 + rng_below(&r, rg->len - a);
        if (n > TMAXLEN)
            n = TMAXLEN;
        uint64_t off = rg->start + a;
        if (rng_below(&r, 4) == 0) { /* often sector shaped */
            uint64_t al = off & ~(uint64_t)(VMDK_SECTOR - 1);
            if (al >= rg->start)
                off = al;
            if (n >= VMDK_SECTOR)
                n &= ~(uint64_t)(VMDK_SECTOR - 1);
        }
        if (off + n > rg->start + rg->len)
            n = rg->start + rg->len - off;
        if (op < 50) {
            if (rng_below(&r, 10) == 0)
                memset(buf, 0, n);
            else
                rng_fill(&r, buf, n);
            int rc = vmdk_pwrite(sh->disk, buf, n, off);
            if (rc < 0) {
                tfail(t, "write %" PRIu64 " at %" PRIu64 ": %s: %s", n, off,
                      vd_err_name(-rc), vd_err_msg());
                break;
            }
            memcpy(sh->expect + off, buf, n);
            t->writes++;
        } else if (op < 90) {
            int rc = vmdk_pread(sh->disk, chk, n, off);
            if (rc < 0) {
                tfail(t, "read %" PRIu64 " at %" PRIu64 ": %s: %s", n, off,
                      vd_err_name(-rc), vd_err_msg());
                break;
            }
            if (memcmp(chk, sh->expect + off, n) != 0) {
                uint64_t k = 0;
                while (chk[k] == sh->expect[off + k])
                    k++;
                tfail(t, "read %" PRIu64 " at %" PRIu64 ": byte %" PRIu64
                      " is 0x%02x, expected 0x%02x", n, off, off + k, chk[k],
                      sh->expect[off + k]);
                break;
            }
            t->reads++;
        } else if (op < 95) {
            /* A read across other threads' regions: only the result code
             * can be checked while they write. */
            uint64_t wn = 1 + rng_below(&r, TMAXLEN);
            if (wn > sh->cap)
                wn = sh->cap;
            uint64_t woff = rng_below(&r, sh->window - (wn < sh->window ? wn : sh->window) + 1);
            if (woff + wn > sh->cap)
                woff = sh->cap - wn;
            int rc = vmdk_pread(sh->disk, chk, wn, woff);
            if (rc < 0) {
                tfail(t, "wide read %" PRIu64 " at %" PRIu64 ": %s: %s", wn, woff,
                      vd_err_name(-rc), vd_err_msg());
                break;
            }
            t->wide++;
        } else if (op < 98) {
            uint64_t boff = rng_below(&r, sh->window);
            uint64_t run = 0;
            int st = -1;
            int rc = vmdk_block_status(sh->disk, boff, sh->cap - boff, (int)rng_below(&r, 2),
                                       &run, &st);
            if (rc < 0 || run == 0 || run > sh->cap - boff || st < 0 || st > 2) {
                tfail(t, "block_status at %" PRIu64 ": rc %d run %" PRIu64 " status %d: %s",
                      boff, rc, run, st, rc < 0 ? vd_err_msg() : "bad answer");
                break;
            }
            t->status++;
        } else {
            int rc = vmdk_flush(sh->disk);
            if (rc < 0) {
                tfail(t, "flush: %s: %s", vd_err_name(-rc), vd_err_msg());
                break;
            }
            t->flushes++;
        }
    }
    free(buf);
    free(chk);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmd_threads(int argc, char **argv)
{
    if (argc != 5) {
        msg("usage: threads DISK MIRROR.raw NTHREADS OPS SEED");
        return 2;
    }
    uint64_t nth = arg_u64("NTHREADS", argv[2]);
    if (nth < 1 || nth > 256) {
        msg("NTHREADS must be 1..256");
        return 2;
    }
    struct tshared sh;
    memset(&sh, 0, sizeof sh);
    sh.nthreads = (int)nth;
    sh.ops = arg_u64("OPS", argv[3]);
    sh.seed = arg_u64("SEED", argv[4]);
    atomic_init(&sh.failed, 0);

    sh.disk = open_or_die(argv[0], 0);
    sh.cap = vmdk_capacity(sh.disk);
    sh.window = sh.cap < (64u << 20) ? sh.cap : (64u << 20);
    int fd = open_mirror(argv[1], sh.cap);
    sh.expect = xmalloc(sh.window);
    if (full_pread(fd, sh.expect, sh.window, 0) < 0) {
        msg("%s: %s", argv[1], strerror(errno));
        return 1;
    }

    /* Cut the window into regions: at least one per thread, sized from a
     * few bytes to a few grains. */
    struct rng r;
    rng_seed(&r, sh.seed);
    size_t ncuts = (size_t)nth * 64;
    if (ncuts > sh.window / 2)
        ncuts = (size_t)(sh.window / 2);
    uint64_t *cuts = xmalloc((ncuts + 2) * sizeof *cuts);
    /* Cut points concentrate at the start of the window (within 8 MiB) so
     * regions are small and share grains; the last region is large. */
    uint64_t dense = sh.window < (8u << 20) ? sh.window : (8u << 20);
    size_t nc = 0;
    cuts[nc++] = 0;
    for (size_t i = 0; i < ncuts; i++)
        cuts[nc++] = 1 + rng_below(&r, dense - 1);
    cuts[nc++] = sh.window;
    qsort(cuts, nc, sizeof *cuts, cmp_u64);
    sh.regions = xmalloc(nc * sizeof *sh.regions);
    for (size_t i = 0; i + 1 < nc; i++) {
        if (cuts[i + 1] == cuts[i])
            continue;
        sh.regions[sh.nregions].start = cuts[i];
        sh.regions[sh.nregions].len = cuts[i + 1] - cuts[i];
        sh.nregions++;
    }
    free(cuts);
    if (sh.nregions < (size_t)nth) {
        msg("disk too small for %d threads", sh.nthreads);
        return 2;
    }

    struct targ *ts = calloc((size_t)nth, sizeof *ts);
    if (!ts) {
        msg("out of memory");
        return 1;
    }
    int started = 0;
    for (int i = 0; i < sh.nthreads; i++) {
        ts[i].sh = &sh;
        ts[i].id = i;
        int e = pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]);
        if (e) {
            msg("pthread_create: %s", strerror(e));
            atomic_store(&sh.failed, 1);
            break;
        }
        started++;
    }
    uint64_t w = 0, rd = 0, wide = 0, st = 0, fl = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(ts[i].tid, NULL);
        w += ts[i].writes;
        rd += ts[i].reads;
        wide += ts[i].wide;
        st += ts[i].status;
        fl += ts[i].flushes;
    }
    free(ts);
    int ret = atomic_load(&sh.failed) ? 1 : 0;
    fprintf(stderr, "%s: threads: %d threads, %zu regions: %" PRIu64 " writes, %" PRIu64
            " verified reads, %" PRIu64 " wide reads, %" PRIu64 " block_status, %" PRIu64
            " flushes\n", prog, sh.nthreads, sh.nregions, w, rd, wide, st, fl);

    /* Record the final content and check the whole disk: on the same
     * handle, then after a close and reopen. */
    if (full_pwrite(fd, sh.expect, sh.window, 0) < 0 || fsync(fd) < 0) {
        msg("%s: %s", argv[1], strerror(errno));
        ret = 1;
    }
    if (!ret)
        ret = compare_disk(sh.disk, fd, argv[1]);
    int rc = vmdk_close(sh.disk);
    if (rc < 0 && !ret)
        ret = engine_fail("close", rc);
    if (!ret) {
        vmdk_disk *d = open_or_die(argv[0], VMDK_OPEN_RDONLY);
        ret = compare_disk(d, fd, argv[1]);
        rc = vmdk_close(d);
        if (rc < 0 && !ret)
            ret = engine_fail("close", rc);
    }
    close(fd);
    free(sh.expect);
    free(sh.regions);
    return ret;
}

/* ---- gen ------------------------------------------------------------ */

/* Deterministic random bytes into a plain file (created if missing, never
 * truncated), so scripts can build raw images without /dev/urandom. */
static int cmd_gen(int argc, char **argv)
{
    if (argc != 4) {
        msg("usage: gen FILE OFFSET LEN SEED");
        return 2;
    }
    uint64_t off = arg_u64("OFFSET", argv[1]);
    uint64_t len = arg_u64("LEN", argv[2]);
    struct rng r;
    rng_seed(&r, arg_u64("SEED", argv[3]));
    int fd = open(argv[0], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        msg("%s: %s", argv[0], strerror(errno));
        return 1;
    }
    uint8_t *buf = xmalloc(CHUNK);
    int ret = 0;
    while (len && !ret) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        rng_fill(&r, buf, n);
        if (full_pwrite(fd, buf, n, off) < 0) {
            msg("%s: %s", argv[0], strerror(errno));
            ret = 1;
        }
        off += n;
        len -= n;
    }
    free(buf);
    if (close(fd) < 0 && !ret) {
        msg("%s: %s", argv[0], strerror(errno));
        ret = 1;
    }
    return ret;
}

/* ---- main ----------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: vdtest create TYPE SIZE DISK\n"
            "       vdtest child PARENT CHILD [TYPE]\n"
            "       vdtest cat DISK OUT.raw\n"
            "       vdtest cmp DISK FILE.raw\n"
            "       vdtest status DISK [single]\n"
            "       vdtest randwrite DISK MIRROR.raw SEED COUNT MAXLEN\n"
            "       vdtest threads DISK MIRROR.raw NTHREADS OPS SEED\n"
            "       vdtest gen FILE OFFSET LEN SEED\n"
            "create honours VDTEST_SPLIT_SIZE and VDTEST_GRAIN_SECTORS.\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "create", cmd_create },       { "child", cmd_child },
        { "cat", cmd_cat },             { "cmp", cmd_cmp },
        { "status", cmd_status },       { "randwrite", cmd_randwrite },
        { "threads", cmd_threads },     { "gen", cmd_gen },
    };
    if (argc < 2) {
        usage();
        return 2;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 2, argv + 2);
    msg("unknown command: %s", argv[1]);
    usage();
    return 2;
}
