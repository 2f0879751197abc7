/* test_clone.c - VixDiskLib_Clone through the public API only.
 *
 * The source is a chain of three links (a monolithicSparse base and two
 * children with overlapping writes, explicit zeros over parent data and
 * an all-zero but allocated region), 24 MiB plus 37 sectors so the last
 * grain is partial; an in-memory model holds what the chain reads.  Each
 * destination type the library can create is cloned, read back whole and
 * compared with the model; sparse destinations must hold exactly the
 * 64 KiB chunks with non-zero data (QueryAllocatedBlocks); the progress
 * callback sees non-decreasing percentages ending at 100; cancelling at
 * 50% or more gives VIX_E_CANCELLED and leaves no file (hidden temporary
 * files included); overWrite FALSE keeps an existing destination byte for
 * byte, TRUE replaces it without stale files.  streamOptimized: Create
 * makes an empty read-only disk, a stream is a valid clone source, and no
 * stream opens for writing.  VMFS_SPARSE is skipped with a message while
 * the library answers VIX_E_DISK_NOTSUPPORTED. */
#include "abi_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CAP ((24u << 20) / 512 + 37)    /* sectors; partial last grain */
#define CHUNK 128                       /* sectors: one 64 KiB grain */
#define SECTOR VIXDISKLIB_SECTOR_SIZE

static const struct dtype {
    VixDiskLibDiskType type;
    const char *name;
    int sparse;            /* QueryAllocatedBlocks must be exact */
} dtypes[] = {
    { VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "monolithicSparse", 1 },
    { VIXDISKLIB_DISK_MONOLITHIC_FLAT, "monolithicFlat", 0 },
    { VIXDISKLIB_DISK_SPLIT_SPARSE, "splitSparse", 1 },
    { VIXDISKLIB_DISK_SPLIT_FLAT, "splitFlat", 0 },
    { VIXDISKLIB_DISK_VMFS_FLAT, "vmfsFlat", 0 },
    { VIXDISKLIB_DISK_VMFS_THIN, "vmfsThin", 0 },
    { VIXDISKLIB_DISK_STREAM_OPTIMIZED, "streamOptimized", 1 },
    { VIXDISKLIB_DISK_VMFS_SPARSE, "vmfsSparse", 1 },
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* ---- model --------------------------------------------------------------- */

static uint8_t *model;     /* CAP sectors: what the source chain reads */

static void model_reset(void)
{
    free(model);
    model = calloc(CAP, SECTOR);
    assert_non_null(model);
}

/* kind 0: pattern(seed), 1: zeros, 2: text-like lines */
static void fill(uint8_t *buf, uint64 sector, uint64 n, int kind, uint32_t seed)
{
    size_t len = (size_t)n * SECTOR;
    if (kind == 0) {
        abi_fill(buf, len, sector * SECTOR, seed);
    } else if (kind == 1) {
        memset(buf, 0, len);
    } else {
        for (size_t i = 0; i < len;) {
            char line[96];
            int k = snprintf(line, sizeof line, "%08llx: the quick brown fox %u\n",
                             (unsigned long long)(sector * SECTOR + i), seed);
            for (int j = 0; j < k && i < len; j++)
                buf[i++] = (uint8_t)line[j];
        }
    }
}

/* Write to the disk and the model. */
static void mwrite(VixDiskLibHandle h, uint64 sector, uint64 n, int kind, uint32_t seed)
{
    uint8_t *buf = malloc((size_t)n * SECTOR);
    assert_non_null(buf);
    fill(buf, sector, n, kind, seed);
    ABI_OK(VixDiskLib_Write(h, sector, n, buf));
    memcpy(model + sector * SECTOR, buf, (size_t)n * SECTOR);
    free(buf);
}

/* Read the whole disk and compare with the model. */
static void verify(VixDiskLibHandle h, const char *what)
{
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    if (info->capacity != CAP)
        fail_msg("%s: capacity %llu sectors, expected %u", what,
                 (unsigned long long)info->capacity, CAP);
    VixDiskLib_FreeInfo(info);
    const uint64 step = 2053;    /* odd, so reads straddle grains */
    uint8_t *buf = malloc(step * SECTOR);
    assert_non_null(buf);
    for (uint64 s = 0; s < CAP; s += step) {
        uint64 n = CAP - s < step ? CAP - s : step;
        ABI_OK(VixDiskLib_Read(h, s, n, buf));
        if (memcmp(buf, model + s * SECTOR, (size_t)n * SECTOR) != 0) {
            size_t i = 0;
            while (buf[i] == model[s * SECTOR + i])
                i++;
            fail_msg("%s: byte %llu reads 0x%02x, expected 0x%02x", what,
                     (unsigned long long)(s * SECTOR + i), buf[i], model[s * SECTOR + i]);
        }
    }
    free(buf);
}

static void verify_path(const char *path, const char *what)
{
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    verify(h, what);
    abi_close(h);
}

/* Chunks (CHUNK sectors) of the model holding any non-zero byte. */
static int chunk_nonzero(uint64 c)
{
    uint64 s = c * CHUNK, n = CAP - s < CHUNK ? CAP - s : CHUNK;
    return !abi_is_zero(model + s * SECTOR, (size_t)n * SECTOR);
}

/* QueryAllocatedBlocks of a sparse destination covers exactly the chunks
 * with non-zero data. */
static void check_allocation(VixDiskLibHandle h, const char *what)
{
    uint64 nchunks = (CAP + CHUNK - 1) / CHUNK;
    uint8_t *alloc = calloc(nchunks, 1);
    assert_non_null(alloc);
    for (uint64 c0 = 0; c0 < nchunks; c0 += VIXDISKLIB_MAX_CHUNK_NUMBER) {
        uint64 nc = nchunks - c0 < VIXDISKLIB_MAX_CHUNK_NUMBER ? nchunks - c0
                                                                 : VIXDISKLIB_MAX_CHUNK_NUMBER;
        VixDiskLibBlockList *bl = NULL;
        ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, c0 * CHUNK, nc * CHUNK, CHUNK, &bl));
        for (uint32 i = 0; i < bl->numBlocks; i++) {
            uint64 off = bl->blocks[i].offset, len = bl->blocks[i].length;
            assert_int_equal(off % CHUNK, 0);
            assert_int_equal(len % CHUNK, 0);
            for (uint64 c = off / CHUNK; c < (off + len) / CHUNK && c < nchunks; c++)
                alloc[c] = 1;
        }
        VixDiskLib_FreeBlockList(bl);
    }
    char msg[256] = "";
    for (uint64 c = 0; c < nchunks && !msg[0]; c++) {
        int nz = chunk_nonzero(c);
        if (alloc[c] && !nz)
            snprintf(msg, sizeof msg, "all-zero chunk %llu (sectors %llu..%llu) is allocated",
                     (unsigned long long)c, (unsigned long long)(c * CHUNK),
                     (unsigned long long)(c * CHUNK + CHUNK - 1));
        if (!alloc[c] && nz)
            snprintf(msg, sizeof msg, "chunk %llu holds data but is not reported allocated",
                     (unsigned long long)c);
    }
    free(alloc);
    if (msg[0])
        fail_msg("%s: %s", what, msg);
}

static uint64 nonzero_chunks(void)
{
    uint64 n = 0;
    for (uint64 c = 0; c < (CAP + CHUNK - 1) / CHUNK; c++)
        n += (uint64)chunk_nonzero(c);
    return n;
}

/* ---- the source chain ----------------------------------------------------- */

/* A path that outlives abi_path's ring of buffers. */
static const char *keep(const char *path)
{
    static char ring[64][4096];
    static unsigned next;
    char *b = ring[next++ % 64];
    snprintf(b, sizeof ring[0], "%s", path);
    return b;
}

/* base.vmdk <- c1.vmdk <- c2.vmdk (all monolithicSparse) in the test dir;
 * returns the top link's path. */
static const char *make_chain(void)
{
    model_reset();
    const char *base = abi_path("base.vmdk"), *c1 = abi_path("c1.vmdk");
    const char *c2 = abi_path("c2.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(base, 0);
    mwrite(h, 0, 2048, 0, 1);                 /* 1 MiB of pattern */
    mwrite(h, 6000, 3000, 2, 2);              /* text, unaligned */
    for (uint64 s = 16384; s < 32768; s += 512)
        mwrite(h, s, 64, 0, 3);               /* every 4th grain half full */
    mwrite(h, 40000, 1000, 0, 4);             /* overwritten to zeros below */
    mwrite(h, CAP - 10, 10, 0, 5);            /* the partial last grain */
    ABI_OK(VixDiskLib_CreateChild(h, c1, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);

    h = abi_open(c1, 0);
    mwrite(h, 1000, 2000, 0, 11);             /* overlaps the base's first MiB */
    mwrite(h, 40000, 1000, 1, 0);             /* explicit zeros over base data */
    mwrite(h, 20096, 1024, 1, 0);             /* allocated, all zero, no data below */
    mwrite(h, 45000, 3, 2, 12);
    ABI_OK(VixDiskLib_CreateChild(h, c2, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);

    h = abi_open(c2, 0);
    mwrite(h, 2500, 100, 0, 21);              /* overlaps both parents */
    mwrite(h, 12000, 2048, 0, 22);
    mwrite(h, 8990, 20, 1, 0);                /* zeros inside the base's text */
    mwrite(h, CAP - 200, 195, 2, 23);         /* over the base's tail, not all of it */
    abi_close(h);

    h = abi_open(c2, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 3);
    VixDiskLib_FreeInfo(info);
    verify(h, "source chain");
    abi_close(h);
    return keep(c2);
}

/* ---- whole-file snapshots (source unchanged, destination unchanged) ------ */

struct snap {
    char **names;
    uint8_t **data;
    size_t *len;
    size_t n;
};

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(l > 0 ? (size_t)l : 1);
    assert_non_null(b);
    if (l > 0 && fread(b, 1, (size_t)l, f) != (size_t)l)
        fail_msg("cannot read %s", path);
    fclose(f);
    *len = (size_t)l;
    return b;
}

static void snap_take(struct snap *s)
{
    s->n = abi_list(abi_dir(), &s->names);
    s->data = calloc(s->n + 1, sizeof *s->data);
    s->len = calloc(s->n + 1, sizeof *s->len);
    for (size_t i = 0; i < s->n; i++)
        s->data[i] = slurp(abi_path(s->names[i]), &s->len[i]);
}

static void snap_check(const struct snap *s, const char *what)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    if (n != s->n) {
        for (size_t i = 0; i < n; i++)
            print_message("  now: %s\n", names[i]);
        fail_msg("%s: %zu files in the directory, expected %zu", what, n, s->n);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], s->names[i]) != 0)
            fail_msg("%s: file %s appeared (expected %s)", what, names[i], s->names[i]);
        size_t len;
        uint8_t *b = slurp(abi_path(names[i]), &len);
        if (len != s->len[i] || memcmp(b, s->data[i], len) != 0)
            fail_msg("%s: %s changed", what, names[i]);
        free(b);
    }
    abi_free_list(names, n);
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->data);
    free(s->len);
    abi_free_list(s->names, s->n);
    memset(s, 0, sizeof *s);
}

/* ---- progress ---------------------------------------------------------------- */

struct progress {
    int calls, last, bad;
    int cancel_at;          /* return FALSE at the first call >= this (-1: never) */
    int cancelled_at;       /* the percentage FALSE was returned at, -1 */
    int after_cancel;       /* calls after returning FALSE */
};

static void progress_init(struct progress *p, int cancel_at)
{
    memset(p, 0, sizeof *p);
    p->last = -1;
    p->cancel_at = cancel_at;
    p->cancelled_at = -1;
}

static Bool progress_cb(void *data, int pct)
{
    struct progress *p = data;
    if (p->cancelled_at >= 0)
        p->after_cancel++;
    if (pct < 0 || pct > 100 || pct < p->last)
        p->bad++;
    p->calls++;
    p->last = pct;
    if (p->cancel_at >= 0 && pct >= p->cancel_at && p->cancelled_at < 0) {
        p->cancelled_at = pct;
        return FALSE;
    }
    return TRUE;
}

static void check_progress(const struct progress *p, const char *what)
{
    if (p->bad)
        fail_msg("%s: %d progress percentages out of range or decreasing", what, p->bad);
    if (p->calls < 2 || p->last != 100)
        fail_msg("%s: %d progress calls, the last %d%% (expected >= 2 ending at 100)", what,
                 p->calls, p->last);
}

/* ---- clone helpers -------------------------------------------------------------- */

static void params(VixDiskLibCreateParams *cp, VixDiskLibDiskType t)
{
    memset(cp, 0, sizeof *cp);
    cp->diskType = t;
    cp->adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp->hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
    cp->capacity = CAP;
}

/* Clone; VIX_E_DISK_NOTSUPPORTED for VMFS_SPARSE returns 0 (skip) with a
 * message, anything else but VIX_OK fails the test. */
static int clone_to(const char *src, const char *dst, const struct dtype *t,
                    struct progress *pr, Bool overwrite)
{
    VixDiskLibCreateParams cp;
    params(&cp, t->type);
    VixError e = VixDiskLib_Clone(abi_conn(), dst, abi_conn(), src, &cp,
                                  pr ? progress_cb : NULL, pr, overwrite);
    if (t->type == VIXDISKLIB_DISK_VMFS_SPARSE &&
        VIX_ERROR_CODE(e) == VIX_E_DISK_NOTSUPPORTED) {
        print_message("SKIP: Clone to VMFS_SPARSE is not supported by this library yet "
                      "(%s)\n", abi_err_text(e));
        return 0;
    }
    if (e != VIX_OK)
        fail_msg("Clone %s -> %s (%s): %lu (%s); last warning: %s", src, dst, t->name,
                 (unsigned long)e, abi_err_text(e), abi_last_warn());
    return 1;
}

/* Allocated bytes of the files whose names start with prefix. */
static uint64 allocated_bytes(const char *prefix)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    uint64 total = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) != 0)
            continue;
        struct stat st;
        if (stat(abi_path(names[i]), &st) == 0)
            total += (uint64)st.st_blocks * 512;
    }
    abi_free_list(names, n);
    return total;
}

/* Everything a fresh clone must satisfy. */
static void check_clone(const char *dst_in, const struct dtype *t, const char *what)
{
    const char *dst = keep(dst_in);
    VixDiskLibHandle h = abi_open(dst, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->numLinks, 1);
    assert_null(info->parentFileNameHint);
    VixDiskLib_FreeInfo(info);
    verify(h, what);
    if (t->sparse)
        check_allocation(h, what);
    abi_close(h);
    if (t->type == VIXDISKLIB_DISK_VMFS_THIN) {
        /* Thin: the flat file has holes where the source is zero. */
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(strrchr(dst, '/') + 1) - 5),
                 strrchr(dst, '/') + 1);
        uint64 used = allocated_bytes(prefix), data = nonzero_chunks() * CHUNK * SECTOR;
        if (used > data + (1u << 20))
            fail_msg("%s: %llu bytes allocated on disk for %llu bytes of data", what,
                     (unsigned long long)used, (unsigned long long)data);
    }
    if (t->type == VIXDISKLIB_DISK_STREAM_OPTIMIZED) {
        /* Streams open read-write; closed without a write they stay as
         * they are (the caller verifies the content again). */
        VixDiskLibHandle w = NULL;
        ABI_OK(VixDiskLib_Open(abi_conn(), dst, 0, &w));
        ABI_OK(VixDiskLib_Close(w));
    }
}

/* ---- tests ----------------------------------------------------------------- */

static void test_clone_chain_every_type(void **state)
{
    (void)state;
    const char *src = make_chain();
    struct snap before;
    snap_take(&before);
    for (size_t i = 0; i < NDTYPES; i++) {
        char name[64];
        snprintf(name, sizeof name, "out-%s.vmdk", dtypes[i].name);
        struct progress pr;
        progress_init(&pr, -1);
        if (!clone_to(src, abi_path(name), &dtypes[i], &pr, FALSE))
            continue;
        check_progress(&pr, name);
        check_clone(abi_path(name), &dtypes[i], name);
    }
    /* The source files are byte for byte what they were (the clones are
     * the only new files). */
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    for (size_t i = 0; i < n; i++)
        if (names[i][0] == '.')
            fail_msg("hidden file %s left in the directory", names[i]);
    abi_free_list(names, n);
    for (size_t i = 0; i < before.n; i++) {
        size_t len;
        uint8_t *b = slurp(abi_path(before.names[i]), &len);
        if (len != before.len[i] || memcmp(b, before.data[i], len) != 0)
            fail_msg("source file %s changed during the clones", before.names[i]);
        free(b);
    }
    snap_free(&before);
    verify_path(src, "source chain after the clones");
}

static void test_clone_from_stream(void **state)
{
    (void)state;
    const char *src = make_chain();
    const char *s = keep(abi_path("s.vmdk"));
    assert_true(clone_to(src, s, &dtypes[6], NULL, FALSE));
    /* The stream to every type, and to a stream again. */
    for (size_t i = 0; i < NDTYPES; i++) {
        char name[64];
        snprintf(name, sizeof name, "fs-%s.vmdk", dtypes[i].name);
        struct progress pr;
        progress_init(&pr, -1);
        if (!clone_to(s, abi_path(name), &dtypes[i], &pr, FALSE))
            continue;
        check_progress(&pr, name);
        check_clone(abi_path(name), &dtypes[i], name);
    }
    /* A single link of the chain as source: the base alone. */
    model_reset();
    VixDiskLibHandle h = abi_open(abi_path("base.vmdk"), VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_OK(VixDiskLib_Read(h, 0, CAP, model));
    abi_close(h);
    assert_true(clone_to(abi_path("base.vmdk"), abi_path("b.vmdk"), &dtypes[6], NULL, FALSE));
    check_clone(abi_path("b.vmdk"), &dtypes[6], "base alone to stream");
}

static void test_clone_overwrite(void **state)
{
    (void)state;
    const char *src = make_chain();
    const char *dst = keep(abi_path("d.vmdk"));
    /* An existing two-file disk (descriptor + flat extent) of another size. */
    abi_create_ok(dst, VIXDISKLIB_DISK_MONOLITHIC_FLAT, 4096);
    VixDiskLibHandle h = abi_open(dst, 0);
    abi_write_pattern(h, 0, 8, 77);
    abi_close(h);
    for (size_t i = 0; i < NDTYPES; i++) {
        struct snap s;
        snap_take(&s);
        VixDiskLibCreateParams cp;
        params(&cp, dtypes[i].type);
        VixError e = VixDiskLib_Clone(abi_conn(), dst, abi_conn(), src, &cp, NULL, NULL, FALSE);
        if (e == VIX_OK)
            fail_msg("overWrite FALSE onto an existing disk succeeded (%s)", dtypes[i].name);
        snap_check(&s, "after a refused clone");
        snap_free(&s);
    }
    /* TRUE: replaced, the old extent file gone, nothing else left. */
    size_t before = abi_count_prefix(abi_dir(), "");
    struct progress pr;
    progress_init(&pr, -1);
    assert_true(clone_to(src, dst, &dtypes[0], &pr, TRUE));
    check_progress(&pr, "overwrite");
    check_clone(dst, &dtypes[0], "overwritten by monolithicSparse");
    assert_false(abi_exists(abi_path("d-flat.vmdk")));
    assert_int_equal(abi_count_prefix(abi_dir(), ""), before - 1);
    /* Again, stream over sparse, then split flat over stream. */
    assert_true(clone_to(src, dst, &dtypes[6], NULL, TRUE));
    check_clone(dst, &dtypes[6], "overwritten by streamOptimized");
    assert_int_equal(abi_count_prefix(abi_dir(), ""), before - 1);
    assert_true(clone_to(src, dst, &dtypes[3], NULL, TRUE));
    check_clone(dst, &dtypes[3], "overwritten by splitFlat");
    assert_true(abi_count_prefix(abi_dir(), "d-") >= 1);
    assert_int_equal(abi_count_prefix(abi_dir(), "."), 0);
    /* overWrite TRUE with no destination is a plain clone. */
    assert_true(clone_to(src, abi_path("new.vmdk"), &dtypes[0], NULL, TRUE));
    check_clone(abi_path("new.vmdk"), &dtypes[0], "overWrite TRUE, no destination");
}

static void test_clone_cancel_half_way(void **state)
{
    (void)state;
    const char *src = make_chain();
    struct snap s;
    snap_take(&s);
    for (size_t i = 0; i < NDTYPES; i++) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s", abi_path("cancelled.vmdk"));
        VixDiskLibCreateParams cp;
        params(&cp, dtypes[i].type);
        struct progress pr;
        progress_init(&pr, 50);
        VixError e = VixDiskLib_Clone(abi_conn(), dst, abi_conn(), src, &cp, progress_cb, &pr,
                                      FALSE);
        if (dtypes[i].type == VIXDISKLIB_DISK_VMFS_SPARSE &&
            VIX_ERROR_CODE(e) == VIX_E_DISK_NOTSUPPORTED) {
            print_message("SKIP: VMFS_SPARSE not supported: %s\n", abi_err_text(e));
            continue;
        }
        if (e != VIX_E_CANCELLED)
            fail_msg("%s: cancelled clone returned %lu (%s), expected VIX_E_CANCELLED; "
                     "last warning: %s", dtypes[i].name, (unsigned long)e, abi_err_text(e),
                     abi_last_warn());
        if (pr.cancelled_at < 50 || pr.cancelled_at >= 100)
            fail_msg("%s: cancelled at %d%%: expected a call between 50 and 99", dtypes[i].name,
                     pr.cancelled_at);
        if (pr.after_cancel)
            fail_msg("%s: %d progress calls after the callback returned FALSE", dtypes[i].name,
                     pr.after_cancel);
        if (pr.bad)
            fail_msg("%s: decreasing or out-of-range percentages", dtypes[i].name);
        /* No destination, no hidden .*.partial-* file, sources unchanged. */
        snap_check(&s, dtypes[i].name);
    }
    snap_free(&s);
    /* The same name clones fine afterwards. */
    assert_true(clone_to(src, abi_path("cancelled.vmdk"), &dtypes[6], NULL, FALSE));
    check_clone(abi_path("cancelled.vmdk"), &dtypes[6], "stream after cancelled clones");
}

static void test_create_stream_empty(void **state)
{
    (void)state;
    const char *p = abi_path("empty.vmdk");
    abi_create_ok(p, VIXDISKLIB_DISK_STREAM_OPTIMIZED, CAP);
    /* One file: the stream. */
    assert_int_equal(abi_count_prefix(abi_dir(), ""), 1);
    VixDiskLibHandle w = NULL;
    ABI_OK(VixDiskLib_Open(abi_conn(), p, 0, &w));      /* writable; not written */
    ABI_OK(VixDiskLib_Close(w));
    VixDiskLibHandle h = abi_open(p, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    model_reset();
    verify(h, "empty stream");
    VixDiskLibBlockList *bl = NULL;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, 0, (CAP + CHUNK - 1) / CHUNK * CHUNK, CHUNK, &bl));
    assert_int_equal(bl->numBlocks, 0);
    VixDiskLib_FreeBlockList(bl);
    uint8_t sec[SECTOR] = {1};
    ABI_FAILS(VixDiskLib_Write(h, 0, 1, sec));
    abi_close(h);
    /* Its create type and capacity are reported. */
    h = abi_open(p, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->capacity, CAP);
    VixDiskLib_FreeInfo(info);
    abi_close(h);
    /* Metadata cannot change either. */
    h = abi_open(p, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_FAILS(VixDiskLib_WriteMetadata(h, "foo", "bar"));
    abi_close(h);
}

/* Read-write opens of a stream closed without a write change nothing. */
static void test_open_stream_rw(void **state)
{
    (void)state;
    const char *src = make_chain();
    const char *s = keep(abi_path("s.vmdk"));
    assert_true(clone_to(src, s, &dtypes[6], NULL, FALSE));
    struct snap snap;
    snap_take(&snap);
    static const uint32 flags[] = { 0, VIXDISKLIB_FLAG_OPEN_UNBUFFERED,
                                    VIXDISKLIB_FLAG_OPEN_SINGLE_LINK };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        VixDiskLibHandle h = NULL;
        ABI_OK(VixDiskLib_Open(abi_conn(), s, flags[i], &h));
        ABI_OK(VixDiskLib_Close(h));
    }
    snap_check(&snap, "after read-write opens without writes");
    snap_free(&snap);
    verify_path(s, "stream after read-write opens");
}

/* A vmfsSparse (COWD, 1-sector grains) source has allocation runs that do
 * not start on 64 KiB boundaries; a sparse clone of it must still leave
 * all-zero grains unallocated. */
static void test_clone_unaligned_source_runs(void **state)
{
    (void)state;
    model_reset();
    const char *src = keep(abi_path("cowd.vmdk"));
    VixError e = abi_create(src, VIXDISKLIB_DISK_VMFS_SPARSE, CAP);
    if (VIX_ERROR_CODE(e) == VIX_E_DISK_NOTSUPPORTED) {
        print_message("SKIP: VMFS_SPARSE cannot be created yet: %s\n", abi_err_text(e));
        skip();
    }
    ABI_OK(e);
    VixDiskLibHandle h = abi_open(src, 0);
    mwrite(h, 120, 8, 1, 0);          /* explicit zeros ending at a grain boundary */
    mwrite(h, 128, 12, 0, 1);         /* data right after it */
    mwrite(h, 1000, 30, 0, 2);        /* data ... */
    mwrite(h, 1030, 200, 1, 0);       /* ... then zeros running into the next grains */
    mwrite(h, 5000, 1, 0, 3);
    abi_close(h);
    verify_path(src, "vmfsSparse source");
    for (size_t i = 0; i < NDTYPES; i++) {
        if (!dtypes[i].sparse)
            continue;
        char name[64];
        snprintf(name, sizeof name, "u-%s.vmdk", dtypes[i].name);
        if (!clone_to(src, abi_path(name), &dtypes[i], NULL, FALSE))
            continue;
        check_clone(abi_path(name), &dtypes[i], name);
    }
}

int main(int argc, char **argv)
{
    abi_filters(argc, argv);
#define T(f) cmocka_unit_test_setup_teardown(f, abi_setup, abi_teardown)
    const struct CMUnitTest tests[] = {
        T(test_clone_chain_every_type),
        T(test_clone_from_stream),
        T(test_clone_overwrite),
        T(test_clone_cancel_half_way),
        T(test_create_stream_empty),
        T(test_open_stream_rw),
        T(test_clone_unaligned_source_runs),
    };
    int rc = cmocka_run_group_tests_name("clone", tests, abi_lib_setup, abi_lib_teardown);
    free(model);
    return rc;
}
