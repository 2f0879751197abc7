/* test_maint.c - Grow, Shrink, Defragment, IsAttachPossible/Attach,
 * SpaceNeededForClone and CheckRepair through the public API only, on
 * every disk type each applies to, with content checked against an
 * in-memory reference.  Semantics: reference/vddk-api.md section 5 rows
 * 28-38 and docs/maintenance.md. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_util.h"

#define SECTOR 512u
#define CAP 16384u              /* sectors: 8 MiB */
#define GRAIN_SECTORS 128u

static const struct {
    VixDiskLibDiskType type;
    const char *name;
    int sparse;
} types[] = {
    { VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "monolithicSparse", 1 },
    { VIXDISKLIB_DISK_MONOLITHIC_FLAT, "monolithicFlat", 0 },
    { VIXDISKLIB_DISK_SPLIT_SPARSE, "splitSparse", 1 },
    { VIXDISKLIB_DISK_SPLIT_FLAT, "splitFlat", 0 },
    { VIXDISKLIB_DISK_VMFS_FLAT, "vmfsFlat", 0 },
    { VIXDISKLIB_DISK_VMFS_THIN, "vmfsThin", 0 },
};
#define NTYPES (sizeof types / sizeof types[0])

/* ---- helpers ---------------------------------------------------------------- */

struct model {
    uint8 *buf;
    uint64 sectors;
};

static void model_init(struct model *m, uint64 sectors)
{
    m->sectors = sectors;
    m->buf = calloc(sectors, SECTOR);
    assert_non_null(m->buf);
}

static void model_grow(struct model *m, uint64 sectors)
{
    m->buf = realloc(m->buf, sectors * SECTOR);
    assert_non_null(m->buf);
    memset(m->buf + m->sectors * SECTOR, 0, (sectors - m->sectors) * SECTOR);
    m->sectors = sectors;
}

static void model_write(VixDiskLibHandle h, struct model *m, uint64 s, uint64 n, uint32_t seed)
{
    assert_true(s + n <= m->sectors);
    abi_fill(m->buf + s * SECTOR, n * SECTOR, s * SECTOR, seed);
    ABI_OK(VixDiskLib_Write(h, s, n, m->buf + s * SECTOR));
}

/* Zeros stored in grains, as shrink finds them: a write of zeros into
 * unallocated grains stores nothing, so data goes there first. */
static void model_zero(VixDiskLibHandle h, struct model *m, uint64 s, uint64 n)
{
    memset(m->buf + s * SECTOR, 0x5a, n * SECTOR);
    ABI_OK(VixDiskLib_Write(h, s, n, m->buf + s * SECTOR));
    memset(m->buf + s * SECTOR, 0, n * SECTOR);
    ABI_OK(VixDiskLib_Write(h, s, n, m->buf + s * SECTOR));
}

static void model_verify(VixDiskLibHandle h, const struct model *m, const char *what)
{
    assert_int_equal(abi_capacity(h), m->sectors);
    const uint64 piece = 2048;
    uint8 *buf = malloc(piece * SECTOR);
    assert_non_null(buf);
    for (uint64 s = 0; s < m->sectors; s += piece) {
        uint64 n = m->sectors - s < piece ? m->sectors - s : piece;
        VixError e = VixDiskLib_Read(h, s, n, buf);
        if (e != VIX_OK) {
            free(buf);
            fail_msg("%s: Read(%lu, %lu) returned %lu (%s)", what, (unsigned long)s,
                     (unsigned long)n, (unsigned long)e, abi_err_text(e));
        }
        for (uint64 i = 0; i < n; i++) {
            if (memcmp(buf + i * SECTOR, m->buf + (s + i) * SECTOR, SECTOR) != 0) {
                free(buf);
                fail_msg("%s: sector %lu differs from the expected content", what,
                         (unsigned long)(s + i));
            }
        }
    }
    free(buf);
}

static void verify_path(const char *path, const struct model *m, const char *what)
{
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    model_verify(h, m, what);
    abi_close(h);
}

static VixError create(const char *path, VixDiskLibDiskType type, uint64 sectors)
{
    return abi_create(path, type, sectors);
}

/* Sum of the sizes of the regular files in dir whose names start with
 * prefix. */
static uint64_t bytes_of(const char *prefix)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) != 0)
            continue;
        struct stat st;
        if (stat(abi_path(names[i]), &st) == 0)
            total += (uint64_t)st.st_size;
    }
    abi_free_list(names, n);
    return total;
}

/* Byte-for-byte snapshot of the files starting with prefix. */
static char *snapshot(const char *prefix, size_t *len)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    char *all = NULL;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) != 0)
            continue;
        FILE *f = fopen(abi_path(names[i]), "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        all = realloc(all, used + strlen(names[i]) + 1 + (size_t)sz);
        assert_non_null(all);
        memcpy(all + used, names[i], strlen(names[i]) + 1);
        used += strlen(names[i]) + 1;
        assert_int_equal(fread(all + used, 1, (size_t)sz, f), (size_t)sz);
        used += (size_t)sz;
        fclose(f);
    }
    abi_free_list(names, n);
    *len = used;
    return all;
}

static void expect_unchanged(const char *prefix, const char *before, size_t blen, const char *what)
{
    size_t alen;
    char *after = snapshot(prefix, &alen);
    if (alen != blen || memcmp(before, after, blen) != 0)
        fail_msg("%s: the files of %s changed", what, prefix);
    free(after);
}

struct progress {
    int calls, last, bad, cancel_at;
};

static void progress_init(struct progress *p, int cancel_at)
{
    memset(p, 0, sizeof *p);
    p->last = -1;
    p->cancel_at = cancel_at;
}

static Bool progress_cb(void *data, int pct)
{
    struct progress *p = data;
    if (pct < 0 || pct > 100 || pct <= p->last)
        p->bad++;
    p->last = pct;
    p->calls++;
    return p->cancel_at && p->calls >= p->cancel_at ? FALSE : TRUE;
}

static void progress_ok(const struct progress *p, const char *what)
{
    if (p->bad || p->calls < 2 || p->last != 100)
        fail_msg("%s: %d progress calls (%d bad), last %d%%", what, p->calls, p->bad, p->last);
}

/* Some data, then zeros over part of it (allocated zero grains). */
static void fill_with_zeros(VixDiskLibHandle h, struct model *m)
{
    for (uint64 s = 0; s + 300 < m->sectors; s += 700)
        model_write(h, m, s, 300, (uint32_t)s + 1);
    model_zero(h, m, 0, 4 * GRAIN_SECTORS);
    model_zero(h, m, m->sectors / 2, 8 * GRAIN_SECTORS);
    model_zero(h, m, m->sectors - 2 * GRAIN_SECTORS, 2 * GRAIN_SECTORS);
}

/* ---- grow ---------------------------------------------------------------------- */

static void test_grow_types(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTYPES; t++) {
        char name[64];
        snprintf(name, sizeof name, "g-%s.vmdk", types[t].name);
        const char *path = abi_path(name);
        ABI_OK(create(path, types[t].type, CAP));
        struct model m;
        model_init(&m, CAP);
        VixDiskLibHandle h = abi_open(path, 0);
        model_write(h, &m, 0, 1000, 1);
        model_write(h, &m, CAP - 300, 300, 2);
        VixDiskLibInfo *info;
        ABI_OK(VixDiskLib_GetInfo(h, &info));
        uint32 cyl0 = info->physGeo.cylinders;
        VixDiskLib_FreeInfo(info);
        abi_close(h);

        int geo = t % 2 == 0;
        uint64 newcap = 3 * CAP + 77;
        struct progress pr;
        progress_init(&pr, 0);
        ABI_OK(VixDiskLib_Grow(abi_conn(), path, newcap, geo, progress_cb, &pr));
        progress_ok(&pr, name);
        model_grow(&m, newcap);
        h = abi_open(path, 0);
        model_verify(h, &m, name);
        ABI_OK(VixDiskLib_GetInfo(h, &info));
        assert_int_equal(info->capacity, newcap);
        if (geo)
            assert_int_equal(info->physGeo.cylinders, newcap / (255 * 63));
        else
            assert_int_equal(info->physGeo.cylinders, cyl0);
        VixDiskLib_FreeInfo(info);
        model_write(h, &m, newcap - 1000, 1000, 3);     /* the new area takes data */
        abi_close(h);
        verify_path(path, &m, name);
        /* A second grow of the grown disk. */
        ABI_OK(VixDiskLib_Grow(abi_conn(), path, newcap + 2048, FALSE, NULL, NULL));
        model_grow(&m, newcap + 2048);
        verify_path(path, &m, name);
        ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
        free(m.buf);
    }
}

static void test_grow_errors(void **state)
{
    (void)state;
    const char *path = abi_path("e.vmdk");
    ABI_OK(create(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP));
    size_t blen;
    char *before = snapshot("e", &blen);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), path, CAP - 1, FALSE, NULL, NULL), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), NULL, 2 * CAP, FALSE, NULL, NULL), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Grow(NULL, path, 2 * CAP, FALSE, NULL, NULL), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), abi_path("none.vmdk"), 2 * CAP, FALSE, NULL, NULL),
            VIX_E_FILE_NOT_FOUND);
    /* The disk must not be open. */
    VixDiskLibHandle h = abi_open(path, 0);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), path, 2 * CAP, FALSE, NULL, NULL),
            VIX_E_FILE_ALREADY_LOCKED);
    abi_close(h);
    /* Cancelled at the first callback: nothing changes. */
    struct progress pr;
    progress_init(&pr, 1);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), path, 2 * CAP, FALSE, progress_cb, &pr), VIX_E_CANCELLED);
    expect_unchanged("e", before, blen, "refused grows");
    free(before);
    /* A disk with a child: refused (the child would break). */
    h = abi_open(path, 0);
    ABI_OK(VixDiskLib_CreateChild(h, abi_path("e-child.vmdk"), VIXDISKLIB_DISK_MONOLITHIC_SPARSE,
                                  NULL, NULL));
    abi_close(h);
    ABI_ERR(VixDiskLib_Grow(abi_conn(), path, 2 * CAP, FALSE, NULL, NULL),
            VIX_E_DISK_NOTSUPPORTED);
    /* streamOptimized (if this build can make one) cannot grow. */
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_STREAM_OPTIMIZED;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp.capacity = CAP;
    if (VixDiskLib_Clone(abi_conn(), abi_path("st.vmdk"), abi_conn(), path, &cp, NULL, NULL,
                         FALSE) == VIX_OK)
        ABI_ERR(VixDiskLib_Grow(abi_conn(), abi_path("st.vmdk"), 2 * CAP, FALSE, NULL, NULL),
                VIX_E_DISK_NOTSUPPORTED);
}

/* ---- shrink ------------------------------------------------------------------------ */

static void test_shrink_types(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTYPES; t++) {
        char name[64];
        snprintf(name, sizeof name, "s-%s", types[t].name);
        char file[80];
        snprintf(file, sizeof file, "%s.vmdk", name);
        const char *path = abi_path(file);
        ABI_OK(create(path, types[t].type, CAP));
        struct model m;
        model_init(&m, CAP);
        VixDiskLibHandle h = abi_open(path, 0);
        fill_with_zeros(h, &m);
        abi_close(h);
        uint64_t before = bytes_of(name);
        h = abi_open(path, 0);
        struct progress pr;
        progress_init(&pr, 0);
        if (!types[t].sparse) {
            size_t blen;
            char *snap = snapshot(name, &blen);
            ABI_ERR(VixDiskLib_Shrink(h, progress_cb, &pr), VIX_E_DISK_CANTSHRINK);
            abi_close(h);
            expect_unchanged(name, snap, blen, "Shrink of a flat disk");
            free(snap);
            free(m.buf);
            continue;
        }
        ABI_OK(VixDiskLib_Shrink(h, progress_cb, &pr));
        progress_ok(&pr, name);
        model_verify(h, &m, name);               /* the handle stays usable */
        model_write(h, &m, 5000, 100, 9);
        abi_close(h);
        verify_path(path, &m, name);
        uint64_t after = bytes_of(name);
        if (after >= before)
            fail_msg("%s: %lu bytes before Shrink, %lu after", name, (unsigned long)before,
                     (unsigned long)after);
        ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
        free(m.buf);
    }
}

static void test_shrink_child_and_errors(void **state)
{
    (void)state;
    const char *base = abi_path("b.vmdk"), *child = abi_path("c.vmdk");
    ABI_OK(create(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP));
    struct model m;
    model_init(&m, CAP);
    VixDiskLibHandle h = abi_open(base, 0);
    model_write(h, &m, 0, 2048, 1);
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_SPLIT_SPARSE, NULL, NULL));
    abi_close(h);
    h = abi_open(child, 0);
    model_zero(h, &m, 256, 512);          /* zeros over parent data */
    model_zero(h, &m, 8192, 512);         /* zeros over parent zeros */
    model_write(h, &m, 10000, 10, 2);
    abi_close(h);
    uint64_t before = bytes_of("c");
    h = abi_open(child, 0);
    ABI_OK(VixDiskLib_Shrink(h, NULL, NULL));
    model_verify(h, &m, "shrunk child");
    abi_close(h);
    verify_path(child, &m, "shrunk child, reopened");
    assert_true(bytes_of("c") < before);
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), child, FALSE));

    /* Read-only handle; cancel. */
    h = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_ERR(VixDiskLib_Shrink(h, NULL, NULL), VIX_E_FILE_READ_ONLY);
    ABI_ERR(VixDiskLib_Defragment(h, NULL, NULL), VIX_E_FILE_READ_ONLY);
    abi_close(h);
    h = abi_open(child, 0);
    struct progress pr;
    progress_init(&pr, 2);
    ABI_ERR(VixDiskLib_Shrink(h, progress_cb, &pr), VIX_E_CANCELLED);
    model_verify(h, &m, "cancelled shrink");
    ABI_ERR(VixDiskLib_Shrink(NULL, NULL, NULL), VIX_E_INVALID_ARG);
    abi_close(h);
    free(m.buf);
}

/* ---- defragment ------------------------------------------------------------------- */

static void test_defragment_types(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTYPES; t++) {
        char name[64], file[80];
        snprintf(name, sizeof name, "d-%s", types[t].name);
        snprintf(file, sizeof file, "%s.vmdk", name);
        const char *path = abi_path(file);
        ABI_OK(create(path, types[t].type, CAP));
        struct model m;
        model_init(&m, CAP);
        VixDiskLibHandle h = abi_open(path, 0);
        /* Grains allocated in reverse order, some zeroed and shrunk away. */
        for (uint64 s = CAP; s >= GRAIN_SECTORS; s -= GRAIN_SECTORS)
            if ((s / GRAIN_SECTORS) % 4 != 1)
                model_write(h, &m, s - GRAIN_SECTORS + 3, 50, (uint32_t)s);
        for (uint64 s = 0; s < CAP; s += 5 * GRAIN_SECTORS)
            model_zero(h, &m, s, GRAIN_SECTORS);
        if (types[t].sparse)
            ABI_OK(VixDiskLib_Shrink(h, NULL, NULL));
        abi_close(h);
        uint64_t before = bytes_of(name);
        h = abi_open(path, 0);
        struct progress pr;
        progress_init(&pr, 0);
        ABI_OK(VixDiskLib_Defragment(h, progress_cb, &pr));
        if (pr.bad || pr.last != 100)
            fail_msg("%s: bad progress (%d calls, last %d%%)", name, pr.calls, pr.last);
        model_verify(h, &m, name);
        abi_close(h);
        verify_path(path, &m, name);
        assert_true(bytes_of(name) <= before);
        ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
        free(m.buf);
    }
}

/* ---- attach ------------------------------------------------------------------------ */

static void test_attach(void **state)
{
    (void)state;
    const char *base = abi_path("ab.vmdk"), *child = abi_path("ac.vmdk");
    ABI_OK(create(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP));
    struct model m;
    model_init(&m, CAP);
    VixDiskLibHandle parent = abi_open(base, 0);
    model_write(parent, &m, 0, 4000, 1);
    ABI_OK(VixDiskLib_CreateChild(parent, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    /* The parent stays open: the child can only be opened as one link. */
    VixDiskLibHandle ch = abi_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK);
    ABI_OK(VixDiskLib_IsAttachPossible(parent, ch));
    ABI_ERR(VixDiskLib_IsAttachPossible(parent, parent), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_IsAttachPossible(ch, parent), VIX_E_DISK_ATTACH_ROOTLINK);
    ABI_OK(VixDiskLib_Attach(parent, ch));
    /* The parent handle is consumed; the child is the whole chain. */
    abi_untrack(parent);
    ABI_ERR(VixDiskLib_Close(parent), VIX_E_INVALID_HANDLE);
    VixDiskLibInfo *info;
    ABI_OK(VixDiskLib_GetInfo(ch, &info));
    assert_int_equal(info->numLinks, 2);
    assert_non_null(info->parentFileNameHint);
    assert_string_equal(info->parentFileNameHint, "ab.vmdk");
    VixDiskLib_FreeInfo(info);
    model_verify(ch, &m, "attached chain");
    model_write(ch, &m, 3000, 2000, 2);
    model_verify(ch, &m, "attached chain after a write");
    abi_close(ch);
    verify_path(child, &m, "child reopened");
    /* The parent was not written through the child. */
    struct model pm;
    model_init(&pm, CAP);
    memcpy(pm.buf, m.buf, CAP * SECTOR);
    abi_fill(pm.buf + 3000 * SECTOR, 2000 * SECTOR, 3000 * SECTOR, 1);
    memset(pm.buf + 4000 * SECTOR, 0, 1000 * SECTOR);
    verify_path(base, &pm, "parent after the attach");
    free(pm.buf);
    free(m.buf);
}

static void test_attach_errors(void **state)
{
    (void)state;
    const char *base = abi_path("eb.vmdk"), *child = abi_path("ec.vmdk");
    const char *big = abi_path("big.vmdk");
    ABI_OK(create(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP));
    ABI_OK(create(big, VIXDISKLIB_DISK_MONOLITHIC_FLAT, 2 * CAP));
    VixDiskLibHandle b = abi_open(base, 0);
    ABI_OK(VixDiskLib_CreateChild(b, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(b);
    VixDiskLibHandle p = abi_open(big, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibHandle c = abi_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK);
    ABI_ERR(VixDiskLib_IsAttachPossible(p, c), VIX_E_DISK_CAPACITY_MISMATCH);
    ABI_ERR(VixDiskLib_Attach(p, c), VIX_E_DISK_CAPACITY_MISMATCH);
    ABI_ERR(VixDiskLib_Attach(p, NULL), VIX_E_INVALID_ARG);
    /* Both handles still work after a refused attach. */
    VixDiskLibInfo *info;
    ABI_OK(VixDiskLib_GetInfo(p, &info));
    VixDiskLib_FreeInfo(info);
    ABI_OK(VixDiskLib_GetInfo(c, &info));
    assert_int_equal(info->numLinks, 1);
    VixDiskLib_FreeInfo(info);
    abi_close(p);
    abi_close(c);
    /* Read-only child: its descriptor cannot be rewritten. */
    p = abi_open(base, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    c = abi_open(child, VIXDISKLIB_FLAG_OPEN_SINGLE_LINK | VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_ERR(VixDiskLib_Attach(p, c), VIX_E_FILE_READ_ONLY);
    abi_close(c);
    abi_close(p);
}

/* ---- space needed for a clone ---------------------------------------------------------- */

/* A base and a child with data, zero blocks and holes; returns the child. */
static const char *make_source(uint64 sectors, int mixed)
{
    const char *base = abi_path("srcbase.vmdk"), *child = abi_path("srcchild.vmdk");
    ABI_OK(create(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, sectors));
    VixDiskLibHandle h = abi_open(base, 0);
    uint8 *buf = malloc(2048 * SECTOR);
    assert_non_null(buf);
    uint64_t rng = 42;
    for (uint64 s = 0; s + 2048 <= sectors; s += 2048) {
        int kind = mixed ? (int)((s / 2048) % 4) : 0;
        if (kind == 3)
            continue;                                  /* a hole */
        for (size_t i = 0; i < 2048 * SECTOR; i += 8) {
            uint64_t r = abi_rand(&rng);
            if (kind == 0 || kind == 2) {              /* random */
                memcpy(buf + i, &r, 8);
            } else {                                   /* text-like */
                static const char words[] = "the quick brown fox jumps over a lazy dog ";
                memcpy(buf + i, words + (r % 30), 8);
            }
        }
        if (kind == 2)
            memset(buf + 1024 * SECTOR, 0, 1024 * SECTOR);   /* zeros written */
        ABI_OK(VixDiskLib_Write(h, s, 2048, buf));
    }
    ABI_OK(VixDiskLib_CreateChild(h, child, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL, NULL));
    abi_close(h);
    h = abi_open(child, 0);
    memset(buf, 0x5a, 2048 * SECTOR);
    ABI_OK(VixDiskLib_Write(h, sectors / 3, 700, buf));
    memset(buf, 0, 2048 * SECTOR);
    ABI_OK(VixDiskLib_Write(h, 0, 300, buf));
    abi_close(h);
    free(buf);
    return child;
}

static void space_check(const char *src, VixDiskLibDiskType type, const char *tag)
{
    VixDiskLibHandle h = abi_open(src, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    uint64 need = 0;
    ABI_OK(VixDiskLib_SpaceNeededForClone(h, type, &need));
    abi_close(h);
    char name[80], prefix[64];
    snprintf(prefix, sizeof prefix, "cl%s%d", tag, (int)type);
    snprintf(name, sizeof name, "%s.vmdk", prefix);
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = type;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
    VixError e = VixDiskLib_Clone(abi_conn(), abi_path(name), abi_conn(), src, &cp, NULL, NULL,
                                  FALSE);
    if (e == VIX_E_DISK_NOTSUPPORTED || e == VIX_E_NOT_SUPPORTED) {
        fprintf(stderr, "note: cloning to type %d is not supported; estimate %lu unchecked\n",
                (int)type, (unsigned long)need);
        return;
    }
    ABI_OK(e);
    uint64_t real = bytes_of(prefix);
    double diff = real > need ? (double)(real - need) : (double)(need - real);
    if (getenv("ABI_SPACE_VERBOSE"))
        fprintf(stderr, "space: type %d: estimate %lu, clone %lu\n", (int)type,
                (unsigned long)need, (unsigned long)real);
    if (diff > real * 0.01)
        fail_msg("type %d: SpaceNeededForClone said %lu bytes, the clone takes %lu (%.2f%%)",
                 (int)type, (unsigned long)need, (unsigned long)real, 100.0 * diff / real);
    ABI_OK(VixDiskLib_Unlink(abi_conn(), abi_path(name)));
}

static void test_space_needed(void **state)
{
    (void)state;
    const char *src = make_source(CAP, 0);
    for (int t = VIXDISKLIB_DISK_MONOLITHIC_SPARSE; t <= VIXDISKLIB_DISK_VMFS_SPARSE; t++)
        space_check(src, (VixDiskLibDiskType)t, "a");
    /* DISK_UNKNOWN: the source's own type (the child is monolithicSparse). */
    VixDiskLibHandle h = abi_open(src, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    uint64 a = 0, b = 0;
    ABI_OK(VixDiskLib_SpaceNeededForClone(h, VIXDISKLIB_DISK_UNKNOWN, &a));
    ABI_OK(VixDiskLib_SpaceNeededForClone(h, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, &b));
    assert_int_equal(a, b);
    ABI_ERR(VixDiskLib_SpaceNeededForClone(h, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, NULL),
            VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_SpaceNeededForClone(h, (VixDiskLibDiskType)77, &a), VIX_E_INVALID_ARG);
    abi_close(h);
}

/* Mixed data large enough that the streamOptimized estimate samples. */
static void test_space_needed_mixed(void **state)
{
    (void)state;
    const char *src = make_source(512u * 2048, 1);      /* 512 MiB, 320 MiB of non-zero data */
    space_check(src, VIXDISKLIB_DISK_STREAM_OPTIMIZED, "m");
    space_check(src, VIXDISKLIB_DISK_SPLIT_SPARSE, "m");
}

/* ---- check and repair --------------------------------------------------------------- */

static uint32_t rd32(const char *path, uint64_t off)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t b[4];
    fseek(f, (long)off, SEEK_SET);
    assert_int_equal(fread(b, 1, 4, f), 4);
    fclose(f);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void wr32(const char *path, uint64_t off, uint32_t v)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    fseek(f, (long)off, SEEK_SET);
    assert_int_equal(fwrite(b, 1, 4, f), 4);
    fclose(f);
}

static void test_check_repair(void **state)
{
    (void)state;
    const char *path = abi_path("k.vmdk");
    ABI_OK(create(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP));
    struct model m;
    model_init(&m, CAP);
    VixDiskLibHandle h = abi_open(path, 0);
    model_write(h, &m, 0, 1024, 1);
    abi_close(h);
    unsigned logs = abi_log_count();
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    assert_true(abi_log_count() > logs);

    /* Primary grain table entry of grain 1 pointing past the end; the
     * redundant copy is intact.  Header: gdOffset at byte 56. */
    uint32_t gd = rd32(path, 56), gt = rd32(path, (uint64_t)gd * 512);
    uint32_t good = rd32(path, (uint64_t)gt * 512 + 4);
    wr32(path, (uint64_t)gt * 512 + 4, 0x7fffff00u);
    size_t blen;
    char *before = snapshot("k", &blen);
    unsigned warns = abi_warn_count();
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, FALSE), VIX_E_DISK_NEEDSREPAIR);
    assert_true(abi_warn_count() >= warns + 2);     /* the finding and the verdict */
    expect_unchanged("k", before, blen, "CheckRepair without repair");
    free(before);
    warns = abi_warn_count();
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    assert_true(abi_warn_count() > warns);           /* what was repaired */
    assert_int_equal(rd32(path, (uint64_t)gt * 512 + 4), good);
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
    verify_path(path, &m, "repaired disk");

    /* Unclean shutdown flag (byte 72). */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 72, SEEK_SET);
    fputc(1, f);
    fclose(f);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, FALSE), VIX_E_DISK_NEEDSREPAIR);
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));

    /* overHead (byte 64) damaged: the header is put back, nothing else
     * changes, and the warn callback said where the undo journal was. */
    char *healthy = snapshot("k", &blen);
    wr32(path, 64 + 4, 0x100);                       /* overHead 2^40 */
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, FALSE), VIX_E_DISK_NEEDSREPAIR);
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    assert_non_null(strstr(abi_last_warn(), "k.vmdk.repair-undo removed"));
    expect_unchanged("k", healthy, blen, "CheckRepair of a damaged overHead");
    verify_path(path, &m, "disk repaired from overHead 2^40");

    /* Damage no repair can fix (sparse version 9) next to damage one can
     * (the unclean flag): a check says so (CANTREPAIR, not NEEDSREPAIR),
     * a repair changes nothing, Open gives the reason check gave. */
    wr32(path, 4, 9);
    f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 72, SEEK_SET);
    fputc(1, f);
    fclose(f);
    before = snapshot("k", &blen);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, FALSE), VIX_E_DISK_CANTREPAIR);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, TRUE), VIX_E_DISK_CANTREPAIR);
    expect_unchanged("k", before, blen, "a refused repair");
    free(before);
    VixDiskLibHandle hv = NULL;
    assert_true(VixDiskLib_Open(abi_conn(), path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &hv) !=
                VIX_OK);
    assert_non_null(strstr(abi_last_warn(), "version 9"));
    wr32(path, 4, 1);
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    expect_unchanged("k", healthy, blen, "the disk after the version came back");
    free(healthy);

    /* Open for writing: no check. */
    h = abi_open(path, 0);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), path, FALSE), VIX_E_FILE_ALREADY_LOCKED);
    abi_close(h);
    /* Arguments, missing disk, damage beyond repair. */
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), NULL, FALSE), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_CheckRepair(NULL, path, FALSE), VIX_E_INVALID_ARG);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), abi_path("none.vmdk"), FALSE),
            VIX_E_FILE_NOT_FOUND);
    const char *sf = abi_path("kf.vmdk");
    ABI_OK(create(sf, VIXDISKLIB_DISK_SPLIT_FLAT, CAP));
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), sf, FALSE));
    assert_int_equal(unlink(abi_path("kf-f001.vmdk")), 0);
    ABI_ERR(VixDiskLib_CheckRepair(abi_conn(), sf, TRUE), VIX_E_DISK_CANTREPAIR);
    free(m.buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, abi_setup, abi_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_grow_types),
        T(test_grow_errors),
        T(test_shrink_types),
        T(test_shrink_child_and_errors),
        T(test_defragment_types),
        T(test_attach),
        T(test_attach_errors),
        T(test_space_needed),
        T(test_space_needed_mixed),
        T(test_check_repair),
    };
    abi_filters(argc, argv);
    return cmocka_run_group_tests(tests, abi_lib_setup, abi_lib_teardown);
}
