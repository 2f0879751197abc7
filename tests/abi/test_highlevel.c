/*
 * test_highlevel.c - the high-level API (vddk/disk.h): open with rollback,
 * byte-addressed pread/pwrite against an in-memory reference, the shared
 * position, and the concurrent writers of gvddk's Multithread_test
 * (reference vddk-api.md sections 8.4 and 8.5); the one-pass
 * streamOptimized writer (vddk_disk_stream_*) against a reference buffer,
 * VixDiskLib and qemu-img (compare, check; skipped without qemu-img).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_util.h"
#include "vddk/disk.h"

#define SECTOR VIXDISKLIB_SECTOR_SIZE
#define HL_SECTORS 2051u                       /* 1 MiB + 3 sectors */
#define HL_BYTES ((uint64)HL_SECTORS * SECTOR)

/* ---- fixtures -------------------------------------------------------------------- */

#define MAX_DISKS 8
static vddk_disk *g_disks[MAX_DISKS];

static int setup(void **state)
{
    memset(g_disks, 0, sizeof g_disks);
    return abi_setup(state);
}

static int teardown(void **state)
{
    for (int i = 0; i < MAX_DISKS; i++)
        if (g_disks[i])
            vddk_disk_close(g_disks[i]);
    memset(g_disks, 0, sizeof g_disks);
    return abi_teardown(state);
}

static vddk_disk_params params_for(const char *path, uint32 flags)
{
    vddk_disk_params p;
    memset(&p, 0, sizeof p);
    p.path = path;
    p.flags = flags;
    p.identity = "openvddk-abi";
    return p;
}

static vddk_disk *hl_open(const char *path, uint32 flags)
{
    vddk_disk_params p = params_for(path, flags);
    vddk_disk *d = NULL;
    VixError e = vddk_disk_open(&p, &d);
    if (e != VIX_OK) {
        const char *detail = NULL;
        vddk_disk_last_error(&detail);
        fail_msg("vddk_disk_open(%s) returned %lu: %s", path, (unsigned long)e,
                 detail ? detail : "(no detail)");
    }
    assert_non_null(d);
    for (int i = 0; i < MAX_DISKS; i++) {
        if (!g_disks[i]) {
            g_disks[i] = d;
            return d;
        }
    }
    fail_msg("too many open disks");
    return NULL;
}

static void hl_close(vddk_disk *d)
{
    for (int i = 0; i < MAX_DISKS; i++)
        if (g_disks[i] == d)
            g_disks[i] = NULL;
    VixError e = vddk_disk_close(d);
    if (e != VIX_OK)
        fail_msg("vddk_disk_close returned %lu", (unsigned long)e);
}

/* A new disk of HL_SECTORS sectors. */
static const char *new_disk(const char *name, VixDiskLibDiskType type)
{
    const char *path = abi_path(name);
    abi_create_ok(path, type, HL_SECTORS);
    return path;
}

/* Compare the whole disk with ref, reading in odd-sized pieces. */
static void verify_all(vddk_disk *d, const uint8 *ref, const char *what)
{
    const size_t piece = 7777;
    uint8 *buf = malloc(piece);
    assert_non_null(buf);
    for (uint64 off = 0; off < HL_BYTES; off += piece) {
        size_t want = HL_BYTES - off < piece ? (size_t)(HL_BYTES - off) : piece;
        memset(buf, 0xEE, piece);
        ssize_t n = vddk_disk_pread(d, buf, piece, off);
        if (n != (ssize_t)want) {
            free(buf);
            fail_msg("%s: pread(%zu at %lu) returned %zd, expected %zu", what, piece,
                     (unsigned long)off, n, want);
        }
        for (size_t i = 0; i < want; i++) {
            if (buf[i] != ref[off + i]) {
                unsigned got = buf[i];
                free(buf);
                fail_msg("%s: byte %lu is 0x%02x, expected 0x%02x", what,
                         (unsigned long)(off + i), got, ref[off + i]);
            }
        }
    }
    free(buf);
}

/* ---- open, rollback, errors ----------------------------------------------------------- */

struct thread_err {
    VixError err;
    char detail[256];
};

static void *other_thread_last_error(void *arg)
{
    struct thread_err *t = arg;
    const char *detail = NULL;
    t->err = vddk_disk_last_error(&detail);
    snprintf(t->detail, sizeof t->detail, "%s", detail ? detail : "");
    return NULL;
}

static void test_open_rollback(void **state)
{
    (void)state;
    const char *path = abi_path("later.vmdk");
    vddk_disk_params p = params_for(path, 0);
    int dummy;
    vddk_disk *d = (vddk_disk *)(void *)&dummy;
    VixError e = vddk_disk_open(&p, &d);
    assert_int_equal(e, VIX_E_FILE_NOT_FOUND);
    assert_null(d);
    const char *detail = NULL;
    assert_int_equal(vddk_disk_last_error(&detail), VIX_E_FILE_NOT_FOUND);
    assert_non_null(detail);
    assert_true(detail[0] != '\0');
    assert_int_equal(vddk_disk_last_error(NULL), VIX_E_FILE_NOT_FOUND);

    /* The last error belongs to this thread. */
    struct thread_err te = { 12345, "" };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread_last_error, &te), 0);
    pthread_join(t, NULL);
    assert_int_equal(te.err, VIX_OK);

    /* Nothing from the failed attempt remains: the disk, once it exists,
     * opens read-write (and locks) at that path. */
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, HL_SECTORS);
    d = hl_open(path, 0);
    assert_int_equal(vddk_disk_capacity(d), HL_BYTES);

    /* A failure after ConnectEx (the disk is locked): rolled back too. */
    vddk_disk *d2 = (vddk_disk *)(void *)&dummy;
    e = vddk_disk_open(&p, &d2);
    assert_int_equal(e, VIX_E_FILE_ALREADY_LOCKED);
    assert_null(d2);
    assert_int_equal(vddk_disk_last_error(&detail), VIX_E_FILE_ALREADY_LOCKED);
    assert_true(detail[0] != '\0');
    hl_close(d);
    for (int i = 0; i < 3; i++) {   /* repeatedly: no lock or handle leaks */
        d = hl_open(path, 0);
        hl_close(d);
    }

    /* A remote server fails at ConnectEx, cleanly. */
    VixDiskLibConnectParams cp;
    memset(&cp, 0, sizeof cp);
    cp.serverName = (char *)"esx.invalid";
    cp.credType = VIXDISKLIB_CRED_UID;
    cp.creds.uid.userName = (char *)"root";
    cp.creds.uid.password = (char *)"pw";
    p.connect = &cp;
    d2 = (vddk_disk *)(void *)&dummy;
    e = vddk_disk_open(&p, &d2);
    assert_true(e != VIX_OK);
    assert_null(d2);
    vddk_disk_last_error(&detail);
    assert_true(detail[0] != '\0');
    p.connect = NULL;

    /* Argument errors. */
    assert_int_equal(vddk_disk_open(NULL, &d2), VIX_E_INVALID_ARG);
    assert_int_equal(vddk_disk_open(&p, NULL), VIX_E_INVALID_ARG);
    vddk_disk_params np = params_for(NULL, 0);
    assert_int_equal(vddk_disk_open(&np, &d2), VIX_E_INVALID_ARG);
    assert_int_equal(vddk_disk_close(NULL), VIX_E_INVALID_ARG);
}

static void test_null_disk(void **state)
{
    (void)state;
    uint8 b[16];
    errno = 0;
    assert_int_equal(vddk_disk_pread(NULL, b, sizeof b, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vddk_disk_pwrite(NULL, b, sizeof b, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vddk_disk_read(NULL, b, sizeof b), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vddk_disk_write(NULL, b, sizeof b), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vddk_disk_seek(NULL, 0, SEEK_SET), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(vddk_disk_flush(NULL), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(vddk_disk_capacity(NULL), 0);
    assert_null(vddk_disk_handle(NULL));
    VixDiskLibBlockList *bl = NULL;
    assert_int_equal(vddk_disk_query_allocated_blocks(NULL, 0, 128, 128, &bl),
                     VIX_E_INVALID_ARG);
}

static void test_accessors(void **state)
{
    (void)state;
    const char *path = new_disk("acc.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    assert_int_equal(vddk_disk_capacity(d), HL_BYTES);
    VixDiskLibHandle h = vddk_disk_handle(d);
    assert_non_null(h);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->capacity, HL_SECTORS);
    VixDiskLib_FreeInfo(info);

    uint8 buf[1000];
    abi_fill(buf, sizeof buf, 70000, 9);
    assert_int_equal(vddk_disk_pwrite(d, buf, sizeof buf, 70000), (ssize_t)sizeof buf);
    assert_int_equal(vddk_disk_flush(d), 0);
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(vddk_disk_query_allocated_blocks(d, 0, 2048, 128, &bl));
    assert_non_null(bl);
    assert_int_equal(bl->numBlocks, 1);
    assert_int_equal(bl->blocks[0].offset, 128);   /* 70000 / 512 = 136 */
    assert_int_equal(bl->blocks[0].length, 128);
    ABI_OK(VixDiskLib_FreeBlockList(bl));
    assert_int_equal(vddk_disk_query_allocated_blocks(d, 0, 2048, 64, &bl), VIX_E_INVALID_ARG);
    const char *detail = NULL;
    assert_int_equal(vddk_disk_last_error(&detail), VIX_E_INVALID_ARG);
    assert_true(detail[0] != '\0');

    /* The low-level handle sees the bytes at the right place. */
    uint8 sec[3 * SECTOR];
    ABI_OK(VixDiskLib_Read(h, 136, 3, sec));
    assert_int_equal(abi_check(sec + (70000 - 136 * SECTOR), sizeof buf, 70000, 9), -1);
    hl_close(d);
}

/* ---- random unaligned I/O against a reference buffer ---------------------------------- */

static uint64 pick_off(uint64_t *rng)
{
    uint64_t r = abi_rand(rng);
    switch (r % 8) {
    case 0: case 1: return HL_BYTES - abi_rand(rng) % 3000;        /* near the end */
    case 2: return (abi_rand(rng) % HL_SECTORS) * SECTOR;          /* aligned */
    case 3: return (1 + abi_rand(rng) % (HL_SECTORS - 1)) * SECTOR - 1 + (r >> 60 & 1) * 2;
    default: return abi_rand(rng) % HL_BYTES;
    }
}

static size_t pick_len(uint64_t *rng)
{
    uint64_t r = abi_rand(rng);
    switch (r % 6) {
    case 0: return (size_t)(abi_rand(rng) % 17);                    /* tiny, maybe 0 */
    case 1: return SECTOR * (size_t)(1 + abi_rand(rng) % 4);         /* whole sectors */
    case 2: return (size_t)(abi_rand(rng) % 20000);
    default: return (size_t)(abi_rand(rng) % 1500);
    }
}

static void random_io(VixDiskLibDiskType type, const char *name, uint64_t seed)
{
    const char *path = new_disk(name, type);
    uint8 *ref = calloc(1, HL_BYTES);
    uint8 *buf = malloc(40000);
    assert_non_null(ref);
    assert_non_null(buf);
    vddk_disk *d = hl_open(path, 0);
    uint64_t rng = seed;
    int writes = 0, short_reads = 0, refused = 0;

    for (int it = 0; it < 1500; it++) {
        uint64 off = pick_off(&rng);
        size_t len = pick_len(&rng);
        if (abi_rand(&rng) % 2) {
            abi_fill(buf, len, off, (uint32_t)it);
            errno = 0;
            ssize_t n = vddk_disk_pwrite(d, buf, len, off);
            if (off + len <= HL_BYTES) {
                if (n != (ssize_t)len)
                    fail_msg("it %d: pwrite(%zu at %lu) returned %zd (errno %d)", it, len,
                             (unsigned long)off, n, errno);
                memcpy(ref + off, buf, len);
                writes++;
            } else {
                if (n != -1 || errno != ENOSPC)
                    fail_msg("it %d: pwrite(%zu at %lu) past the end returned %zd errno %d, "
                             "expected -1 ENOSPC", it, len, (unsigned long)off, n, errno);
                refused++;
            }
        } else {
            uint64 roff = off + (abi_rand(&rng) % 4 == 0 ? 3000 : 0);   /* sometimes past */
            size_t want = roff >= HL_BYTES ? 0 : (HL_BYTES - roff < len ? (size_t)(HL_BYTES - roff) : len);
            memset(buf, 0xEE, len + 1);
            ssize_t n = vddk_disk_pread(d, buf, len, roff);
            if (n != (ssize_t)want)
                fail_msg("it %d: pread(%zu at %lu) returned %zd, expected %zu", it, len,
                         (unsigned long)roff, n, want);
            if (want && memcmp(buf, ref + roff, want) != 0)
                fail_msg("it %d: pread(%zu at %lu) data differs", it, len, (unsigned long)roff);
            assert_int_equal(buf[want], 0xEE);   /* nothing past what was returned */
            short_reads += want < len;
        }
        if (it % 250 == 249)
            verify_all(d, ref, name);
    }
    /* The cases the random walk must have covered. */
    assert_true(writes > 100);
    assert_true(refused > 10);
    assert_true(short_reads > 10);

    /* Explicit edges: the last partial sector, reads past the end. */
    abi_fill(buf, 100, HL_BYTES - 100, 7);
    assert_int_equal(vddk_disk_pwrite(d, buf, 100, HL_BYTES - 100), 100);
    memcpy(ref + HL_BYTES - 100, buf, 100);
    assert_int_equal(vddk_disk_pread(d, buf, 200, HL_BYTES - 100), 100);
    assert_memory_equal(buf, ref + HL_BYTES - 100, 100);
    assert_int_equal(vddk_disk_pread(d, buf, 10, HL_BYTES), 0);
    assert_int_equal(vddk_disk_pread(d, buf, 10, HL_BYTES + 5000), 0);
    assert_int_equal(vddk_disk_pread(d, buf, 0, 5), 0);
    assert_int_equal(vddk_disk_pwrite(d, buf, 0, 5), 0);
    static const struct {
        uint64 off;
        size_t len;
    } past[] = { { HL_BYTES - 100, 101 }, { HL_BYTES, 1 }, { HL_BYTES + 512, 1 },
                 { HL_BYTES - SECTOR, SECTOR + 1 }, { 0, HL_BYTES + 1 },
                 { UINT64_MAX - 10, 20 } };
    uint8 *big = malloc(HL_BYTES + 1);
    assert_non_null(big);
    memset(big, 0x77, HL_BYTES + 1);
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        errno = 0;
        ssize_t n = vddk_disk_pwrite(d, big, past[i].len, past[i].off);
        if (n != -1 || errno != ENOSPC)
            fail_msg("pwrite(%zu at %lu) returned %zd errno %d, expected -1 ENOSPC",
                     past[i].len, (unsigned long)past[i].off, n, errno);
    }
    free(big);
    verify_all(d, ref, name);

    /* Through the low-level API the sectors hold the same bytes. */
    uint8 *whole = malloc(HL_BYTES);
    assert_non_null(whole);
    ABI_OK(VixDiskLib_Read(vddk_disk_handle(d), 0, HL_SECTORS, whole));
    assert_memory_equal(whole, ref, HL_BYTES);
    free(whole);
    hl_close(d);

    d = hl_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    verify_all(d, ref, name);
    hl_close(d);
    free(buf);
    free(ref);
}

static void test_random_io_sparse(void **state)
{
    (void)state;
    random_io(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "rs.vmdk", 0x0123456789abcdefull);
}

static void test_random_io_flat(void **state)
{
    (void)state;
    random_io(VIXDISKLIB_DISK_MONOLITHIC_FLAT, "rf.vmdk", 0xfeedfacecafebeefull);
}

static void test_read_only(void **state)
{
    (void)state;
    const char *path = new_disk("ro.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    uint8 buf[700];
    abi_fill(buf, sizeof buf, 1000, 1);
    assert_int_equal(vddk_disk_pwrite(d, buf, sizeof buf, 1000), (ssize_t)sizeof buf);
    hl_close(d);

    d = hl_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    uint8 w[700];
    memset(w, 0x11, sizeof w);
    errno = 0;
    assert_int_equal(vddk_disk_pwrite(d, w, sizeof w, 1000), -1);
    assert_true(errno != 0);
    const char *detail = NULL;
    assert_true(vddk_disk_last_error(&detail) != VIX_OK);
    assert_true(detail[0] != '\0');
    memset(w, 0, sizeof w);
    assert_int_equal(vddk_disk_pread(d, w, sizeof w, 1000), (ssize_t)sizeof w);
    assert_memory_equal(w, buf, sizeof buf);
    hl_close(d);
}

/* ---- the shared position ------------------------------------------------------------------ */

static void expect_einval(int64 r, const char *what)
{
    if (r != -1 || errno != EINVAL)
        fail_msg("%s returned %ld errno %d, expected -1 EINVAL", what, (long)r, errno);
}

static void test_shared_position(void **state)
{
    (void)state;
    const char *path = new_disk("pos.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    const int64 cap = (int64)HL_BYTES;
    uint8 buf[2000], back[2000];

    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 0);
    assert_int_equal(vddk_disk_write(d, "hello", 5), 5);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 5);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_SET), 0);
    memset(back, 0, sizeof back);
    assert_int_equal(vddk_disk_read(d, back, 5), 5);
    assert_memory_equal(back, "hello", 5);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 5);

    assert_int_equal(vddk_disk_seek(d, 100, SEEK_SET), 100);
    abi_fill(buf, 1000, 100, 5);
    assert_int_equal(vddk_disk_write(d, buf, 1000), 1000);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 1100);
    assert_int_equal(vddk_disk_seek(d, -1000, SEEK_CUR), 100);
    assert_int_equal(vddk_disk_read(d, back, 1000), 1000);
    assert_memory_equal(back, buf, 1000);
    /* pread/pwrite leave the position alone. */
    assert_int_equal(vddk_disk_pread(d, back, 10, 0), 10);
    assert_int_equal(vddk_disk_pwrite(d, buf, 10, 3000), 10);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 1100);

    /* The end. */
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_END), cap);
    assert_int_equal(vddk_disk_read(d, back, 10), 0);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap);
    errno = 0;
    assert_int_equal(vddk_disk_write(d, buf, 1), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap);
    assert_int_equal(vddk_disk_seek(d, -10, SEEK_END), cap - 10);
    assert_int_equal(vddk_disk_read(d, back, 100), 10);   /* short */
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap);
    assert_int_equal(vddk_disk_seek(d, -10, SEEK_END), cap - 10);
    errno = 0;
    assert_int_equal(vddk_disk_write(d, buf, 11), -1);     /* would pass the end */
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap - 10);
    assert_int_equal(vddk_disk_write(d, buf, 10), 10);
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap);

    /* Negative results: EINVAL, position unchanged. */
    assert_int_equal(vddk_disk_seek(d, 42, SEEK_SET), 42);
    errno = 0;
    expect_einval(vddk_disk_seek(d, -1, SEEK_SET), "seek(-1, SEEK_SET)");
    errno = 0;
    expect_einval(vddk_disk_seek(d, -43, SEEK_CUR), "seek(-43, SEEK_CUR) from 42");
    errno = 0;
    expect_einval(vddk_disk_seek(d, -(cap + 1), SEEK_END), "seek(-(cap+1), SEEK_END)");
    errno = 0;
    expect_einval(vddk_disk_seek(d, INT64_MIN, SEEK_SET), "seek(INT64_MIN, SEEK_SET)");
    errno = 0;
    expect_einval(vddk_disk_seek(d, INT64_MIN, SEEK_CUR), "seek(INT64_MIN, SEEK_CUR)");
    errno = 0;
    expect_einval(vddk_disk_seek(d, 0, 42), "seek with whence 42");
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 42);

    /* Past the end (as lseek allows): reads give 0, writes ENOSPC. */
    int64 r = vddk_disk_seek(d, cap + 4096, SEEK_SET);
    if (r == -1) {
        assert_int_equal(errno, EINVAL);
    } else {
        assert_int_equal(r, cap + 4096);
        assert_int_equal(vddk_disk_read(d, back, 10), 0);
        errno = 0;
        assert_int_equal(vddk_disk_write(d, buf, 1), -1);
        assert_int_equal(errno, ENOSPC);
        assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), cap + 4096);
    }
    hl_close(d);
}

/* Positions that do not fit an int64 are refused (EINVAL), not wrapped.
 * Last in the list: an overflow inside the library is undefined behaviour
 * that aborts the sanitizer build. */
static void test_seek_overflow(void **state)
{
    (void)state;
    const char *path = new_disk("ovf.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    const int64 cap = (int64)HL_BYTES;
    assert_int_equal(vddk_disk_seek(d, 42, SEEK_SET), 42);
    errno = 0;
    expect_einval(vddk_disk_seek(d, INT64_MAX, SEEK_CUR), "seek(INT64_MAX, SEEK_CUR) from 42");
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 42);
    errno = 0;
    expect_einval(vddk_disk_seek(d, INT64_MAX - cap + 1, SEEK_END),
                  "seek(INT64_MAX - cap + 1, SEEK_END)");
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 42);
    /* An invalid whence with an extreme offset. */
    errno = 0;
    expect_einval(vddk_disk_seek(d, INT64_MIN, 42), "seek(INT64_MIN, whence 42)");
    /* The largest position is fine; one more is not. */
    int64 r = vddk_disk_seek(d, INT64_MAX, SEEK_SET);
    if (r == INT64_MAX) {
        errno = 0;
        expect_einval(vddk_disk_seek(d, 1, SEEK_CUR), "seek(1, SEEK_CUR) from INT64_MAX");
        assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), INT64_MAX);
    }
    hl_close(d);
}

/* Several threads append records at the shared position: each record must
 * land whole, once, at its own place. */
#define REC 100
#define RECS_PER_THREAD 60
#define REC_THREADS 4

struct rec_arg {
    vddk_disk *d;
    int id;
    int failed;
};

static void make_record(uint8 *rec, int id, int seq)
{
    for (int i = 0; i < REC; i++)
        rec[i] = (uint8)(id * 61 + seq * 7 + i);
    rec[0] = (uint8)id;
    rec[1] = (uint8)seq;
}

static void *rec_writer(void *p)
{
    struct rec_arg *a = p;
    uint8 rec[REC];
    for (int s = 0; s < RECS_PER_THREAD; s++) {
        make_record(rec, a->id, s);
        if (vddk_disk_write(a->d, rec, REC) != REC)
            a->failed++;
    }
    return NULL;
}

static void test_shared_position_threads(void **state)
{
    (void)state;
    const char *path = new_disk("recs.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    assert_int_equal(vddk_disk_seek(d, 7, SEEK_SET), 7);   /* unaligned start */
    pthread_t t[REC_THREADS];
    struct rec_arg a[REC_THREADS];
    for (int i = 0; i < REC_THREADS; i++) {
        a[i] = (struct rec_arg){ d, i + 1, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, rec_writer, &a[i]), 0);
    }
    for (int i = 0; i < REC_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].failed, 0);
    }
    const int total = REC_THREADS * RECS_PER_THREAD;
    assert_int_equal(vddk_disk_seek(d, 0, SEEK_CUR), 7 + total * REC);
    uint8 *all = malloc((size_t)total * REC);
    assert_non_null(all);
    assert_int_equal(vddk_disk_pread(d, all, (size_t)total * REC, 7), total * REC);
    int seen[REC_THREADS + 1][RECS_PER_THREAD];
    memset(seen, 0, sizeof seen);
    for (int r = 0; r < total; r++) {
        uint8 *rec = all + (size_t)r * REC;
        int id = rec[0], seq = rec[1];
        uint8 expect[REC];
        if (id < 1 || id > REC_THREADS || seq >= RECS_PER_THREAD)
            fail_msg("record %d: bad header %d/%d", r, id, seq);
        make_record(expect, id, seq);
        if (memcmp(rec, expect, REC) != 0)
            fail_msg("record %d (thread %d, #%d) is torn", r, id, seq);
        seen[id][seq]++;
    }
    for (int i = 1; i <= REC_THREADS; i++)
        for (int s = 0; s < RECS_PER_THREAD; s++)
            assert_int_equal(seen[i][s], 1);
    free(all);
    hl_close(d);
}

/* ---- concurrent writers (gvddk Multithread_test) -------------------------------------- */

struct mt_write {
    size_t len;
    char c;
    uint64 off;
};

struct mt_case {
    const char *name;
    struct mt_write w1, w2;
};

/* Reference section 8.5, verbatim. */
static const struct mt_case mt_cases[] = {
    { "Aligned", { 512, 'A', 0 }, { 512, 'B', 0 } },
    { "Miss1", { 526, 'C', 500 }, { 514, 'D', 512 } },
    { "Miss2", { 524, 'E', 500 }, { 526, 'F', 500 } },
    { "Miss3", { 524, 'G', 500 }, { 514, 'H', 512 } },
    { "MissAlign", { 526, 'A', 500 }, { 512, 'B', 512 } },
};

#define MT_ITERATIONS 200
#define MT_AREA (4 * SECTOR)   /* every case stays within sectors 0..3 */

struct mt_thread {
    vddk_disk *d;
    pthread_barrier_t *barrier;
    const struct mt_write *w;
    uint8 buf[1024];
    ssize_t result;
    int err;
};

static void *mt_writer(void *p)
{
    struct mt_thread *t = p;
    pthread_barrier_wait(t->barrier);
    errno = 0;
    t->result = vddk_disk_pwrite(t->d, t->buf, t->w->len, t->w->off);
    t->err = errno;
    return NULL;
}

static void apply(uint8 *area, const struct mt_write *w)
{
    memset(area + w->off, w->c, w->len);
}

/* Run both writes concurrently, n times; after each, every sector must
 * match one of the two serial orders. */
static void run_concurrent(vddk_disk *d, const char *name, const struct mt_write *w1,
                           const struct mt_write *w2, int per_sector)
{
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    struct mt_thread t1 = { d, &barrier, w1, { 0 }, 0, 0 };
    struct mt_thread t2 = { d, &barrier, w2, { 0 }, 0, 0 };
    memset(t1.buf, w1->c, w1->len);
    memset(t2.buf, w2->c, w2->len);
    int order12 = 0, order21 = 0;
    for (int it = 0; it < MT_ITERATIONS; it++) {
        uint8 base[MT_AREA], e12[MT_AREA], e21[MT_AREA], got[MT_AREA];
        abi_fill(base, MT_AREA, 0, 1000u + (uint32_t)it);
        assert_int_equal(vddk_disk_pwrite(d, base, MT_AREA, 0), MT_AREA);
        memcpy(e12, base, MT_AREA);
        apply(e12, w1);
        apply(e12, w2);
        memcpy(e21, base, MT_AREA);
        apply(e21, w2);
        apply(e21, w1);

        pthread_t a, b;
        assert_int_equal(pthread_create(&a, NULL, mt_writer, &t1), 0);
        assert_int_equal(pthread_create(&b, NULL, mt_writer, &t2), 0);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        if (t1.result != (ssize_t)w1->len || t2.result != (ssize_t)w2->len)
            fail_msg("%s iteration %d: pwrite returned %zd (errno %d) and %zd (errno %d)", name,
                     it, t1.result, t1.err, t2.result, t2.err);

        memset(got, 0xEE, MT_AREA);
        assert_int_equal(vddk_disk_pread(d, got, MT_AREA, 0), MT_AREA);
        if (per_sector) {
            for (int s = 0; s < MT_AREA / SECTOR; s++) {
                const uint8 *g = got + s * SECTOR;
                if (memcmp(g, e12 + s * SECTOR, SECTOR) != 0 &&
                    memcmp(g, e21 + s * SECTOR, SECTOR) != 0) {
                    int i = 0;
                    while (g[i] == e12[s * SECTOR + i] || g[i] == e21[s * SECTOR + i])
                        i++;
                    fail_msg("%s iteration %d: sector %d matches neither serial order "
                             "(byte %d is 0x%02x; '%c' then '%c' gives 0x%02x, the other "
                             "order 0x%02x)", name, it, s, i, g[i], w1->c, w2->c,
                             e12[s * SECTOR + i], e21[s * SECTOR + i]);
                }
            }
        } else if (memcmp(got, e12, MT_AREA) != 0) {
            fail_msg("%s iteration %d: disjoint writes, a byte was lost", name, it);
        }
        int is12 = memcmp(got, e12, MT_AREA) == 0, is21 = memcmp(got, e21, MT_AREA) == 0;
        /* disk.h: overlapping writes "are applied one after the other" --
         * so the whole range, not just each sector, is one serial order. */
        if (!is12 && !is21)
            fail_msg("%s iteration %d: each sector matches a serial order but the range as "
                     "a whole mixes the two orders", name, it);
        order12 += is12;
        order21 += is21;
    }
    pthread_barrier_destroy(&barrier);
    fprintf(stderr, "%-14s %d iterations: %d as w1;w2, %d as w2;w1\n", name, MT_ITERATIONS,
            order12, order21);
}

static void test_multithread_gvddk(void **state)
{
    (void)state;
    const char *path = new_disk("mt.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
    vddk_disk *d = hl_open(path, 0);
    for (size_t c = 0; c < sizeof mt_cases / sizeof mt_cases[0]; c++)
        run_concurrent(d, mt_cases[c].name, &mt_cases[c].w1, &mt_cases[c].w2, 1);
    hl_close(d);
}

/* Writes to different bytes of the same sector (each a read-modify-write
 * underneath) must both land. */
static void test_disjoint_same_sector(void **state)
{
    (void)state;
    const char *path = new_disk("dj.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT);
    vddk_disk *d = hl_open(path, 0);
    static const struct mt_write pairs[][2] = {
        { { 10, 'a', 100 }, { 10, 'b', 300 } },          /* same sector */
        { { 15, 'c', 500 }, { 10, 'd', 520 } },          /* both touch sector 1 */
        { { 512, 'e', 0 }, { 1, 'f', 600 } },            /* aligned next to partial */
        { { 5, 'g', 1021 }, { 600, 'h', 1030 } },        /* sector 2 shared */
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "Disjoint%zu", i);
        run_concurrent(d, name, &pairs[i][0], &pairs[i][1], 0);
    }
    hl_close(d);
}

/* ---- one-pass streamOptimized writer -------------------------------------------- */

#define ST_GRAIN 65536u
#define ST_SECTORS (40u * 2048u + 300u)        /* two grain tables, a partial last grain */
#define ST_BYTES ((uint64)ST_SECTORS * SECTOR)

/* A stream write that must succeed; the reference gets the same bytes. */
static void st_write(vddk_disk_stream *st, uint8 *ref, uint64 off, const uint8 *buf,
                     size_t len)
{
    VixError e = vddk_disk_stream_write(st, off, buf, len);
    if (e != VIX_OK) {
        const char *detail = NULL;
        vddk_disk_last_error(&detail);
        fail_msg("vddk_disk_stream_write(%zu at %lu) returned %lu: %s", len,
                 (unsigned long)off, (unsigned long)e, detail ? detail : "(no detail)");
    }
    memcpy(ref + off, buf, len);
}

/* Random bytes, none of them zero (so a grain is a hole only where meant). */
static void st_random(uint8 *buf, size_t len, uint64_t *rng)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8)(abi_rand(rng) % 255 + 1);
}

/* The names in the scratch directory, joined by spaces. */
static void dir_names(char *out, size_t outlen)
{
    char **v;
    size_t n = abi_list(abi_dir(), &v);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? " " : "", v[i]);
    abi_free_list(v, n);
}

static void expect_dir(const char *want)
{
    char names[1024];
    dir_names(names, sizeof names);
    if (strcmp(names, want) != 0)
        fail_msg("directory holds \"%s\", expected \"%s\"", names, want);
}

static int have_qemu_img(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void run_ok(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("`%s` failed (%d)", cmd, rc);
}

static void test_stream_write(void **state)
{
    (void)state;
    const char *path = abi_path("st.vmdk");
    uint8 *ref = calloc(1, ST_BYTES);
    uint8 *buf = malloc(8u << 20);
    assert_non_null(ref);
    assert_non_null(buf);
    uint64_t rng = 0x5eed5eedULL;
    VixDiskLibCreateParams cp = abi_create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED, ST_SECTORS);
    vddk_disk_stream *st = NULL;
    ABI_OK(vddk_disk_stream_create(path, &cp, &st));
    assert_non_null(st);

    /* A partial first grain, then a gap and a write across a grain boundary. */
    st_random(buf, 1000, &rng);
    st_write(st, ref, 0, buf, 1000);
    st_random(buf, 70000, &rng);
    st_write(st, ref, 5000, buf, 70000);
    /* Small back-to-back writes inside grains, then a zero-length one. */
    for (int i = 0; i < 50; i++) {
        st_random(buf, 100, &rng);
        st_write(st, ref, 75000 + 100u * (unsigned)i, buf, 100);
    }
    ABI_OK(vddk_disk_stream_write(st, 80000, buf, 0));
    /* Nothing is at the path yet, only the hidden temporary. */
    assert_false(abi_exists(path));
    assert_int_equal(abi_count_prefix(abi_dir(), ".st.partial-"), 1);
    /* One write over many grains (unaligned both ends), one grain of it zero. */
    st_random(buf, (5u << 20) + 123, &rng);
    memset(buf + (1u << 20) - 17, 0, ST_GRAIN);     /* the grain at 4 MiB */
    st_write(st, ref, (3u << 20) + 17, buf, (5u << 20) + 123);
    /* An explicit all-zero region of two whole batches. */
    memset(buf, 0, 2u << 20);
    st_write(st, ref, 9u << 20, buf, 2u << 20);
    /* A long gap, then writes across the first grain table's end (32 MiB). */
    st_random(buf, 10, &rng);
    st_write(st, ref, (32u << 20) - 5, buf, 10);
    st_random(buf, 20, &rng);
    st_write(st, ref, (33u << 20) - 10, buf, 20);
    /* The last, partial grain, to the end of the disk. */
    uint64 last = ST_BYTES / ST_GRAIN * ST_GRAIN;
    st_random(buf, (size_t)(ST_BYTES - last), &rng);
    st_write(st, ref, last, buf, (size_t)(ST_BYTES - last));
    ABI_OK(vddk_disk_stream_close(st, TRUE));
    expect_dir("st.vmdk");

    /* Every byte through VixDiskLib, read-only. */
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    assert_int_equal(abi_capacity(h), ST_SECTORS);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->adapterType, VIXDISKLIB_ADAPTER_SCSI_LSILOGIC);
    VixDiskLib_FreeInfo(info);
    for (uint64 sec = 0; sec < ST_SECTORS; sec += 2048) {
        uint64 n = ST_SECTORS - sec < 2048 ? ST_SECTORS - sec : 2048;
        memset(buf, 0xEE, n * SECTOR);
        ABI_OK(VixDiskLib_Read(h, sec, n, buf));
        for (uint64 i = 0; i < n * SECTOR; i++)
            if (buf[i] != ref[sec * SECTOR + i])
                fail_msg("byte %lu is 0x%02x, expected 0x%02x",
                         (unsigned long)(sec * SECTOR + i), buf[i], ref[sec * SECTOR + i]);
    }
    /* Grains holding only zeros (gaps, the zero region, the zeroed grain)
     * are holes; every other grain is allocated. */
    uint64 ngr = (ST_BYTES + ST_GRAIN - 1) / ST_GRAIN;
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, 0, ngr * 128, 128, &bl));
    uint8 *alloc = calloc(ngr, 1);
    assert_non_null(alloc);
    for (uint32 i = 0; i < bl->numBlocks; i++)
        for (uint64 g = bl->blocks[i].offset / 128;
             g < (bl->blocks[i].offset + bl->blocks[i].length) / 128; g++)
            alloc[g] = 1;
    ABI_OK(VixDiskLib_FreeBlockList(bl));
    uint64 holes = 0;
    for (uint64 g = 0; g < ngr; g++) {
        size_t glen = (size_t)(ST_BYTES - g * ST_GRAIN < ST_GRAIN ? ST_BYTES - g * ST_GRAIN
                                                                  : ST_GRAIN);
        int data = !abi_is_zero(ref + g * ST_GRAIN, glen);
        if (alloc[g] != data)
            fail_msg("grain %lu: QueryAllocatedBlocks says %s, expected %s",
                     (unsigned long)g, alloc[g] ? "data" : "hole", data ? "data" : "hole");
        holes += !data;
    }
    assert_true(holes > 500);               /* the gaps really are holes */
    free(alloc);
    abi_close(h);

    /* qemu-img reads the same bytes and finds the file consistent. */
    if (!have_qemu_img()) {
        print_message("SKIP (part): qemu-img is not installed; compare/check not run\n");
    } else {
        const char *raw = abi_path("st.raw");
        FILE *f = fopen(raw, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(ref, 1, ST_BYTES, f), ST_BYTES);
        assert_int_equal(fclose(f), 0);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "qemu-img compare -q -f raw -F vmdk '%s' '%s'", raw, path);
        run_ok(cmd);
        snprintf(cmd, sizeof cmd, "qemu-img check -q -f vmdk '%s'", path);
        run_ok(cmd);
    }
    free(buf);
    free(ref);
}

/* The error and detail of the last call, which must name path. */
static void expect_detail(const char *path, const char *text)
{
    const char *detail = NULL;
    vddk_disk_last_error(&detail);
    assert_non_null(detail);
    if (!strstr(detail, path) || !strstr(detail, text))
        fail_msg("detail \"%s\" should name %s and say \"%s\"", detail, path, text);
}

static void test_stream_errors(void **state)
{
    (void)state;
    const char *path = abi_path("se.vmdk");
    uint8 data[4096];
    memset(data, 0x5a, sizeof data);
    vddk_disk_stream *st = NULL;

    /* Wrong disk type, bad arguments. */
    VixDiskLibCreateParams bad = abi_create_params(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 4096);
    ABI_ERR(vddk_disk_stream_create(path, &bad, &st), VIX_E_INVALID_ARG);
    assert_null(st);
    expect_detail(path, "diskType");
    VixDiskLibCreateParams cp = abi_create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 4096);
    ABI_ERR(vddk_disk_stream_create(NULL, &cp, &st), VIX_E_INVALID_ARG);
    ABI_ERR(vddk_disk_stream_create(path, NULL, &st), VIX_E_INVALID_ARG);
    ABI_ERR(vddk_disk_stream_write(NULL, 0, data, 1), VIX_E_INVALID_ARG);
    ABI_ERR(vddk_disk_stream_close(NULL, TRUE), VIX_E_INVALID_ARG);
    expect_dir("");

    /* An existing path is never replaced. */
    abi_write_file(path, "not a disk\n");
    ABI_ERR(vddk_disk_stream_create(path, &cp, &st), VIX_E_FILE_ALREADY_EXISTS);
    assert_null(st);
    expect_detail(path, "exists");
    expect_dir("se.vmdk");
    assert_int_equal(unlink(path), 0);

    /* Going backwards: an error with text; the stream is then lost, and
     * a commit removes everything. */
    ABI_OK(vddk_disk_stream_create(path, &cp, &st));
    ABI_OK(vddk_disk_stream_write(st, 1000, data, 100));
    ABI_OK(vddk_disk_stream_write(st, 1100, data, 100));
    ABI_ERR(vddk_disk_stream_write(st, 1199, data, 10), VIX_E_INVALID_ARG);
    expect_detail(path, "backwards");
    ABI_FAILS(vddk_disk_stream_write(st, 5000, data, 10));
    assert_int_equal(abi_count_prefix(abi_dir(), ".se.partial-"), 1);
    ABI_FAILS(vddk_disk_stream_close(st, TRUE));
    expect_detail(path, "backwards");
    expect_dir("");

    /* Past the capacity: an error, nothing written. */
    ABI_OK(vddk_disk_stream_create(path, &cp, &st));
    ABI_ERR(vddk_disk_stream_write(st, 4096 * SECTOR - 10, data, 20), VIX_E_DISK_OUTOFRANGE);
    expect_detail(path, "capacity");
    ABI_ERR(vddk_disk_stream_write(st, 4096 * SECTOR + 1, data, 0), VIX_E_DISK_OUTOFRANGE);
    ABI_OK(vddk_disk_stream_close(st, FALSE));
    expect_dir("");

    /* close(FALSE) after several MiB of data leaves nothing. */
    VixDiskLibCreateParams big = abi_create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 8u << 11);
    ABI_OK(vddk_disk_stream_create(path, &big, &st));
    for (uint64 off = 0; off < (6u << 20); off += sizeof data)
        ABI_OK(vddk_disk_stream_write(st, off, data, sizeof data));
    ABI_OK(vddk_disk_stream_close(st, FALSE));
    expect_dir("");
    assert_false(abi_exists(path));

    /* An empty stream commits to a valid all-zero disk. */
    ABI_OK(vddk_disk_stream_create(path, &cp, &st));
    ABI_OK(vddk_disk_stream_close(st, TRUE));
    expect_dir("se.vmdk");
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    assert_int_equal(abi_capacity(h), 4096);
    abi_expect_zero(h, 0, 4096);
    abi_close(h);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* vddk_disk_create_child: a relative parent hint keeps the chain valid
 * when both directories move; a hint that does not lead to the parent is
 * refused and creates nothing. */
static void test_create_child_hint(void **state)
{
    (void)state;
    char base[PATH_MAX], kid[PATH_MAX], parent[PATH_MAX + 16], child[PATH_MAX + 16];
    snprintf(base, sizeof base, "%s/mon", abi_dir());
    snprintf(kid, sizeof kid, "%s/tue", abi_dir());
    assert_int_equal(mkdir(base, 0755), 0);
    assert_int_equal(mkdir(kid, 0755), 0);
    snprintf(parent, sizeof parent, "%s/p.vmdk", base);
    snprintf(child, sizeof child, "%s/c.vmdk", kid);
    abi_create_ok(parent, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 2048);
    VixDiskLibHandle h = abi_open(parent, 0);
    abi_write_pattern(h, 0, 256, 7);
    abi_close(h);

    ABI_ERR(vddk_disk_create_child(parent, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                   "../elsewhere/p.vmdk"), VIX_E_INVALID_ARG);
    expect_detail(child, "does not lead to");
    assert_false(abi_exists(child));
    ABI_ERR(vddk_disk_create_child(parent, child, VIXDISKLIB_DISK_MONOLITHIC_FLAT, NULL),
            VIX_E_INVALID_ARG);
    ABI_OK(vddk_disk_create_child(parent, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                  "../mon/p.vmdk"));
    h = abi_open(child, 0);
    abi_expect_pattern(h, 0, 256, 7);
    abi_write_pattern(h, 100, 8, 9);
    abi_close(h);

    /* Both directories move together: the chain still opens. */
    char moved[PATH_MAX], mb[PATH_MAX + 16], mk[PATH_MAX + 16];
    snprintf(moved, sizeof moved, "%s/moved", abi_dir());
    snprintf(mb, sizeof mb, "%s/mon", moved);
    snprintf(mk, sizeof mk, "%s/tue/c.vmdk", moved);
    assert_int_equal(mkdir(moved, 0755), 0);
    assert_int_equal(rename(base, mb), 0);
    snprintf(mb, sizeof mb, "%s/tue", moved);
    assert_int_equal(rename(kid, mb), 0);
    h = abi_open(mk, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_expect_pattern(h, 0, 100, 7);
    abi_expect_pattern(h, 100, 8, 9);
    abi_expect_pattern(h, 108, 148, 7);
    abi_close(h);
}

/* ---- a chain that already has 256 links ------------------------------------------ */

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        fail_msg("%s: cannot write", path);
}

/* The descriptor text of child l001 (twoGbMaxExtentSparse, extent
 * "l001-s001.vmdk", hint "l000.vmdk") as link number i: its own extent
 * name, the hint to link i-1, and one CID for the whole chain. */
static void write_link(const char *l001_text, int i)
{
    char out[1 << 14], line[1024];
    size_t o = 0;
    const char *p = l001_text;
    while (*p) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
        char fixed[1100];
        if (strncmp(line, "CID=", 4) == 0)
            snprintf(fixed, sizeof fixed, "CID=0c1d0c1d");
        else if (strncmp(line, "parentCID=", 10) == 0)
            snprintf(fixed, sizeof fixed, "parentCID=0c1d0c1d");
        else if (strncmp(line, "parentFileNameHint=", 19) == 0)
            snprintf(fixed, sizeof fixed, "parentFileNameHint=\"l%03d.vmdk\"", i - 1);
        else if (strstr(line, "\"l001-s001.vmdk\""))
            snprintf(fixed, sizeof fixed, "%.*s\"l%03d-s001.vmdk\"",
                     (int)(strstr(line, "\"l001") - line), line, i);
        else
            snprintf(fixed, sizeof fixed, "%s", line);
        o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", fixed);
        assert_true(o < sizeof out);
    }
    char name[32];
    snprintf(name, sizeof name, "l%03d.vmdk", i);
    write_bytes(abi_path(name), out, o);
}

/* A child of a chain that already has the 256 links a disk may have could
 * never be opened: vddk_disk_create_child and CreateChild (on a whole
 * chain and on a SINGLE_LINK handle) refuse it with
 * VIX_E_DISK_INVALIDCHAIN and make nothing.  Names a descriptor cannot
 * hold are refused by vddk_disk_create_child (child or hint) and
 * vddk_disk_stream_create. */
static void test_create_child_limits(void **state)
{
    (void)state;
    abi_create_ok(abi_path("l000.vmdk"), VIXDISKLIB_DISK_SPLIT_SPARSE, 128);
    ABI_OK(vddk_disk_create_child(abi_path("l000.vmdk"), abi_path("l001.vmdk"),
                                  VIXDISKLIB_DISK_SPLIT_SPARSE, NULL));
    size_t tlen, elen;
    char *base = read_text(abi_path("l000.vmdk"), &tlen);
    char *cid = strstr(base, "\nCID=");
    assert_non_null(cid);
    memcpy(cid + 5, "0c1d0c1d", 8);     /* CIDs are 8 hex digits */
    write_bytes(abi_path("l000.vmdk"), base, tlen);
    free(base);
    char *text = read_text(abi_path("l001.vmdk"), &tlen);
    char *ext = read_text(abi_path("l001-s001.vmdk"), &elen);
    for (int i = 1; i < 256; i++) {
        write_link(text, i);
        char name[32];
        snprintf(name, sizeof name, "l%03d-s001.vmdk", i);
        write_bytes(abi_path(name), ext, elen);
    }
    free(text);
    free(ext);
    VixDiskLibHandle h = abi_open(abi_path("l255.vmdk"), 0);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 256);
    VixDiskLib_FreeInfo(info);
    abi_write_pattern(h, 0, 8, 3);

    char **before;
    size_t nbefore = abi_list(abi_dir(), &before);
    const char *child = abi_path("l256.vmdk");
    ABI_ERR(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL),
            VIX_E_DISK_INVALIDCHAIN);
    abi_close(h);
    if (!strstr(abi_last_warn(), "l256.vmdk") || !strstr(abi_last_warn(), "256 links"))
        fail_msg("the warning does not explain: %s", abi_last_warn());
    h = abi_open(abi_path("l255.vmdk"), VIXDISKLIB_FLAG_OPEN_SINGLE_LINK |
                                        VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_ERR(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_SPLIT_SPARSE, NULL, NULL),
            VIX_E_DISK_INVALIDCHAIN);
    abi_close(h);
    ABI_ERR(vddk_disk_create_child(abi_path("l255.vmdk"), child,
                                   VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL),
            VIX_E_DISK_INVALIDCHAIN);
    expect_detail(child, "already has 256 links");
    char **after;
    size_t nafter = abi_list(abi_dir(), &after);
    assert_int_equal(nafter, nbefore);
    for (size_t i = 0; i < nafter; i++)
        assert_string_equal(after[i], before[i]);
    abi_free_list(before, nbefore);
    abi_free_list(after, nafter);

    /* One link less: the child is made, and opens as the 256th link. */
    ABI_OK(vddk_disk_create_child(abi_path("l254.vmdk"), abi_path("x255.vmdk"),
                                  VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL));
    h = abi_open(abi_path("x255.vmdk"), VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    abi_close(h);

    /* Names a descriptor cannot hold. */
    ABI_ERR(vddk_disk_create_child(abi_path("l000.vmdk"), abi_path("q\"c.vmdk"),
                                   VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL), VIX_E_INVALID_ARG);
    expect_detail("q\"c.vmdk", "may not contain '\"'");
    assert_false(abi_exists(abi_path("q\"c.vmdk")));
    ABI_ERR(vddk_disk_create_child(abi_path("l000.vmdk"), abi_path("c.vmdk"),
                                   VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "./x\n/../l000.vmdk"),
            VIX_E_INVALID_ARG);
    expect_detail("x\\n/../l000.vmdk", "may not contain a newline");
    assert_false(abi_exists(abi_path("c.vmdk")));
    VixDiskLibCreateParams cp = abi_create_params(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 128);
    vddk_disk_stream *st = NULL;
    ABI_ERR(vddk_disk_stream_create(abi_path("s\n.vmdk"), &cp, &st), VIX_E_INVALID_ARG);
    expect_detail("s\\n.vmdk", "may not contain a newline");
    assert_null(st);
    assert_false(abi_exists(abi_path("s\n.vmdk")));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_open_rollback),
        T(test_null_disk),
        T(test_accessors),
        T(test_random_io_sparse),
        T(test_random_io_flat),
        T(test_read_only),
        T(test_shared_position),
        T(test_shared_position_threads),
        T(test_multithread_gvddk),
        T(test_disjoint_same_sector),
        T(test_stream_write),
        T(test_stream_errors),
        T(test_create_child_hint),
        T(test_create_child_limits),
        T(test_seek_overflow),        /* last: see the comment there */
    };
    abi_filters(argc, argv);
    return cmocka_run_group_tests(tests, abi_lib_setup, abi_lib_teardown);
}
