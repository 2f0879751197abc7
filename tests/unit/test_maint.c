/* test_maint.c - the maintenance operations at engine level: Shrink,
 * Defragment, Grow, Attach and CheckRepair (src/vmdk/maint*.c).
 *
 * Content is always checked against an in-memory model of the disk
 * (tu_shadow); layouts are checked by reading the KDMV header and tables;
 * CheckRepair gets crafted corruptions (reference section 2) and must find
 * each one, change nothing without repair, and leave a clean disk with
 * repair.  Forking tests SIGKILL a defragment (and a grow) at every
 * progress step and at a few random moments, then check the disk opens,
 * reads as before and passes CheckRepair's structural check and (when
 * installed) `qemu-img check`. */
#include "test_util.h"
#include "vmdk/maint_priv.h"      /* jn_recover: roll a killed repair back */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define G (64 * KiB)

/* ---- helpers ---------------------------------------------------------------- */

/* Zeros stored in grains, as shrink finds them: a write of zeros into
 * unallocated grains stores nothing, so data goes there first. */
static void zero_write(vmdk_disk *d, struct tu_shadow *s, uint64_t off, size_t len)
{
    void *z = malloc(len);
    assert_non_null(z);
    memset(z, 0x5a, len);
    TU_OK(vmdk_pwrite(d, z, len, off));
    memset(z, 0, len);
    TU_OK(vmdk_pwrite(d, z, len, off));
    if (s)
        memset(s->buf + off, 0, len);
    free(z);
}

static void verify_path(const char *path, unsigned flags, const struct tu_shadow *s)
{
    vmdk_disk *d;
    TU_OK(vmdk_open(path, flags | VMDK_OPEN_RDONLY, &d));
    assert_int_equal(vmdk_capacity(d), s->cap);
    tu_shadow_verify(d, s);
    TU_OK(vmdk_close(d));
}

struct findings {
    unsigned lines, problems, repaired;
    char last[1024];
    char all[16384];
};

static void collect(void *ctx, int level, const char *msg)
{
    struct findings *f = ctx;
    f->lines++;
    if (level == VMDK_REPORT_PROBLEM)
        f->problems++;
    if (level == VMDK_REPORT_REPAIRED)
        f->repaired++;
    snprintf(f->last, sizeof f->last, "%s", msg);
    size_t n = strlen(f->all);
    snprintf(f->all + n, sizeof f->all - n, "%s\n", msg);
}

/* CheckRepair without repair must find something (needle in a message)
 * and change no byte; with repair it must fix everything; afterwards the
 * disk checks clean. */
static void check_finds_and_repairs(const char *path, const char *needle)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(path, 0, collect, &f, &r));
    if (r.problems == 0)
        fail_msg("no problem found in %s; report:\n%s", path, f.all);
    assert_int_equal(r.repaired, 0);
    assert_int_equal(r.unrepaired, r.problems);
    if (needle && !strstr(f.all, needle))
        fail_msg("no finding mentions \"%s\"; report:\n%s", needle, f.all);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);

    memset(&f, 0, sizeof f);
    TU_OK(vmdk_check(path, 1, collect, &f, &r));
    if (r.unrepaired || r.repaired != r.problems || !r.problems)
        fail_msg("repair left %u of %u problems; report:\n%s", r.unrepaired, r.problems, f.all);
    memset(&f, 0, sizeof f);
    TU_OK(vmdk_check(path, 0, collect, &f, &r));
    if (r.problems)
        fail_msg("still %u problems after repair; report:\n%s", r.problems, f.all);
}

static void expect_clean(const char *path)
{
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(path, 0, collect, &f, &r));
    if (r.problems)
        fail_msg("%u problems in %s; report:\n%s", r.problems, path, f.all);
}

/* Every allocated grain of extent file path, as (file sector) per grain
 * index; count in *n.  Checks the redundant table equals the primary. */
static uint32_t *grain_map(const char *path, uint64_t *n)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(path, &h);
    uint64_t cover = (uint64_t)h.num_gtes * h.grain;
    uint64_t ngt = (h.capacity + cover - 1) / cover;
    *n = ngt * h.num_gtes;
    uint32_t *m = calloc(*n, 4);
    assert_non_null(m);
    for (uint64_t i = 0; i < ngt; i++) {
        uint32_t p = tu_gde(path, &h, i, 0), q = tu_gde(path, &h, i, 1);
        tu_pread(path, (uint64_t)p * 512, m + i * h.num_gtes, h.num_gtes * 4);
        uint32_t *r = malloc(h.num_gtes * 4);
        tu_pread(path, (uint64_t)q * 512, r, h.num_gtes * 4);
        if (memcmp(r, m + i * h.num_gtes, h.num_gtes * 4) != 0)
            fail_msg("%s: grain table %llu and its redundant copy differ", path,
                     (unsigned long long)i);
        free(r);
    }
    return m;
}

/* The grains of path lie in logical order right after overHead, no gaps,
 * and the file ends after the last one (or at overHead). */
static void expect_defragmented(const char *path)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(path, &h);
    uint64_t n, k = 0;
    uint32_t *m = grain_map(path, &n);
    for (uint64_t g = 0; g < n; g++) {
        if (m[g] <= 1)
            continue;
        if (m[g] != h.overhead + k * h.grain)
            fail_msg("%s: grain %llu at sector %u, expected %llu", path, (unsigned long long)g,
                     m[g], (unsigned long long)(h.overhead + k * h.grain));
        k++;
    }
    free(m);
    assert_int_equal(tu_file_size(path), (h.overhead + k * h.grain) * 512);
}

static uint64_t count_grains(const char *path, uint32_t value)
{
    uint64_t n, c = 0;
    uint32_t *m = grain_map(path, &n);
    for (uint64_t g = 0; g < n; g++)
        c += value == 2 ? m[g] > 1 : m[g] == value;
    free(m);
    return c;
}

static int have_qemu_img(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void qemu_check(const char *path)
{
    if (!have_qemu_img())
        return;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "qemu-img check -f vmdk '%s' >/dev/null 2>&1", path);
    if (system(cmd) != 0)
        fail_msg("qemu-img check %s failed", path);
}

static int cb_ok(void *ctx, uint64_t done, uint64_t total)
{
    uint64_t *last = ctx;
    assert_true(done <= total);
    assert_true(done >= *last);
    *last = done;
    return 1;
}

/* A monolithicSparse disk of cap bytes: data, then zeros over some of it. */
static void make_sparse_with_zeros(const char *p, uint64_t cap, struct tu_shadow *s)
{
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    tu_shadow_init(s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (uint64_t g = 0; g + 1 < cap / G; g += 3)
        tu_shadow_write(d, s, g * G + 100, G, (uint32_t)g + 1);
    zero_write(d, s, 0, 4 * G);               /* grains 0-4 data -> zeros */
    zero_write(d, s, 20 * G, 10 * G);
    zero_write(d, s, cap - 2 * G, 2 * G);
    TU_OK(vmdk_close(d));
}

/* ---- shrink ------------------------------------------------------------------- */

static void test_shrink_base(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 8 * MiB, &s);
    uint64_t before = tu_file_size(p), grains = count_grains(p, 2);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    uint64_t last = 0;
    TU_OK(vmdk_shrink(d, cb_ok, &last));
    /* The handle keeps working: read, write a new grain, read again. */
    tu_shadow_verify(d, &s);
    tu_shadow_write(d, &s, 5 * MiB + 7, 3 * G, 99);
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    uint64_t after_grains = count_grains(p, 2);
    assert_true(after_grains < grains);
    assert_int_equal(count_grains(p, 1), 0);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.flags & 4, 0);
    assert_int_equal(h.unclean, 0);
    /* Compacted: no hole below the end of the file. */
    assert_int_equal(tu_file_size(p), (h.overhead + after_grains * h.grain) * 512);
    assert_true(tu_file_size(p) < before);
    expect_clean(p);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_shrink_keeps_cid(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 4 * MiB, &s);
    uint32_t cid = tu_cid_of(p);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_shrink(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    /* Content is unchanged, so children stay valid: no new CID. */
    assert_int_equal(tu_cid_of(p), cid);
    tu_shadow_free(&s);
}

/* A flag left by an earlier crash is CheckRepair's to clear, not Shrink's;
 * a refused shrink writes nothing, not even the flag. */
static void test_shrink_keeps_unclean(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 4 * MiB, &s);
    tu_put_u8(p, TU_H_UNCLEAN, 1);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_shrink(d, NULL, NULL));
    TU_OK(vmdk_defragment(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.unclean, 1);
    verify_path(p, 0, &s);
    /* Refused (tables disagree): not a byte written. */
    uint64_t g = 0;
    while (tu_gte(p, &h, g, 0) <= 1)
        g++;
    tu_set_gte(p, &h, g, 1, 0);
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_OK(vmdk_open(p, 0, &d));
    TU_ERR(vmdk_shrink(d, NULL, NULL), VD_E_NEEDSREPAIR);
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    tu_shadow_free(&s);
}

/* An unclean extent whose redundant table lags behind a valid primary (a
 * write stopped between the two copies) is one problem, the unclean
 * shutdown; repair levels the copies.  A clean extent with the same lag
 * reports the disagreement itself. */
static void test_check_unclean_lag(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 4 * MiB, &s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    uint64_t g = 0;
    while (tu_gte(p, &h, g, 0) <= 1)
        g++;
    tu_set_gte(p, &h, g, 1, 0);
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(p, 0, collect, &f, &r));
    assert_int_equal(r.problems, 1);
    assert_non_null(strstr(f.all, "disagree"));
    tu_put_u8(p, TU_H_UNCLEAN, 1);
    memset(&f, 0, sizeof f);
    TU_OK(vmdk_check(p, 0, collect, &f, &r));
    assert_int_equal(r.problems, 1);
    assert_non_null(strstr(f.all, "lag behind"));
    assert_null(strstr(f.all, "disagree"));
    check_finds_and_repairs(p, "uncleanShutdown");
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(tu_gte(p, &h, g, 1), tu_gte(p, &h, g, 0));
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

static void test_shrink_child(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, 4 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    tu_shadow_write(d, &s, 0, 8 * G, 1);           /* parent data in grains 0-7 */
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(vmdk_open(child, 0, &d));
    zero_write(d, &s, 2 * G, 2 * G);               /* zeros over parent data: GTE 1 */
    zero_write(d, &s, 20 * G, 3 * G);              /* zeros over parent zeros: GTE 0 */
    tu_shadow_write(d, &s, 30 * G, G, 2);          /* real data stays */
    TU_OK(vmdk_close(d));
    assert_int_equal(count_grains(child, 2), 6);

    TU_OK(vmdk_open(child, 0, &d));
    TU_OK(vmdk_shrink(d, NULL, NULL));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    verify_path(child, 0, &s);
    assert_int_equal(count_grains(child, 2), 1);
    assert_int_equal(count_grains(child, 1), 2);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(child, &h);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.flags & 4, 4);
    assert_int_equal(tu_file_size(child), (h.overhead + h.grain) * 512);
    expect_clean(child);
    qemu_check(child);
    tu_shadow_free(&s);
}

/* Opened as a single link the parent is unknown: every zero grain keeps
 * reading as zeros through a zeroed-grain entry. */
static void test_shrink_child_single_link(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 2 * MiB, 0));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    vmdk_disk *d;
    TU_OK(vmdk_open(child, 0, &d));
    zero_write(d, NULL, 0, 3 * G);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &d));
    TU_OK(vmdk_shrink(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    assert_int_equal(count_grains(child, 1), 3);
    assert_int_equal(count_grains(child, 2), 0);
}

static void test_shrink_split(void **state)
{
    const char *p = tu_path("s.vmdk");
    uint64_t cap = 6 * MiB;
    TU_OK(tu_create(p, VMDK_TYPE_SPLIT_SPARSE, cap, 2 * MiB));
    struct tu_shadow s;
    tu_shadow_init(&s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, &s, 0, cap, 5);
    zero_write(d, &s, 1 * MiB, 2 * MiB);           /* spans extents 1 and 2 */
    zero_write(d, &s, 5 * MiB, 512 * KiB);
    TU_OK(vmdk_close(d));
    uint64_t s2 = tu_file_size(tu_path("s-s002.vmdk"));
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_shrink(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    assert_true(tu_file_size(tu_path("s-s002.vmdk")) < s2);
    assert_int_equal(count_grains(tu_path("s-s002.vmdk"), 2), 16);
    expect_clean(p);
    tu_shadow_free(&s);
}

static void test_shrink_refusals(void **state)
{
    const char *f = tu_path("f.vmdk");
    TU_OK(tu_create(f, VMDK_TYPE_MONOLITHIC_FLAT, 1 * MiB, 0));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d;
    TU_OK(vmdk_open(f, 0, &d));
    TU_ERR(vmdk_shrink(d, NULL, NULL), VD_E_CANTSHRINK);
    TU_MSG_HAS("f.vmdk");
    TU_OK(vmdk_defragment(d, NULL, NULL));      /* flat: nothing to do */
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);

    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 2 * MiB, &s);
    snap = tu_dir_snapshot(tu_dir());
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    TU_ERR(vmdk_shrink(d, NULL, NULL), VD_E_READONLY);
    TU_ERR(vmdk_defragment(d, NULL, NULL), VD_E_READONLY);
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    tu_shadow_free(&s);
}

/* Primary and redundant tables that disagree: refused before any change. */
static void test_shrink_needs_repair(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 2 * MiB, &s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    tu_set_gte(p, &h, 3, 1, tu_gte(p, &h, 6, 1));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_ERR(vmdk_shrink(d, NULL, NULL), VD_E_NEEDSREPAIR);
    TU_ERR(vmdk_defragment(d, NULL, NULL), VD_E_NEEDSREPAIR);
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    tu_shadow_free(&s);
}

static int cancel_at_2(void *ctx, uint64_t done, uint64_t total)
{
    (void)done;
    (void)total;
    return ++*(int *)ctx < 2;
}

static void test_shrink_cancel(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_sparse_with_zeros(p, 8 * MiB, &s);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    int calls = 0;
    TU_ERR(vmdk_shrink(d, cancel_at_2, &calls), VD_E_CANCELLED);
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    expect_clean(p);
    tu_shadow_free(&s);
}

/* ---- defragment --------------------------------------------------------------- */

/* Grains written in reverse order, with holes left by a shrink. */
static void make_fragmented(const char *p, uint64_t cap, struct tu_shadow *s)
{
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    tu_shadow_init(s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (uint64_t g = cap / G; g-- > 0;)
        if (g % 5 != 2)
            tu_shadow_write(d, s, g * G + (g % 7) * 100, G / 2 + g, (uint32_t)g + 11);
    for (uint64_t g = 1; g < cap / G; g += 9)
        zero_write(d, s, g * G, G);
    TU_OK(vmdk_shrink(d, NULL, NULL));          /* leaves the order scrambled */
    TU_OK(vmdk_close(d));
}

static void test_defrag(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_fragmented(p, 24 * MiB, &s);
    uint32_t cid = tu_cid_of(p);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    uint64_t last = 0;
    TU_OK(vmdk_defragment(d, cb_ok, &last));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    expect_defragmented(p);
    verify_path(p, 0, &s);
    assert_int_equal(tu_cid_of(p), cid);
    expect_clean(p);
    qemu_check(p);
    /* Again: nothing moves, not a byte changes. */
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_defragment(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_defragment(d, NULL, NULL));
    tu_shadow_write(d, &s, 3, 10, 4);           /* and the handle still writes */
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

static void test_defrag_child_and_split(void **state)
{
    const char *base = tu_path("b.vmdk"), *child = tu_path("c.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_SPLIT_SPARSE, 6 * MiB, 2 * MiB));
    struct tu_shadow s;
    tu_shadow_init(&s, 6 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    for (uint64_t g = 6 * MiB / G; g-- > 0;)
        tu_shadow_write(d, &s, g * G, 100, (uint32_t)g);
    TU_OK(vmdk_close(d));
    TU_ERR(vmdk_defragment(NULL, NULL, NULL), VD_E_INVAL);
    TU_OK(vmdk_open(base, 0, &d));
    TU_OK(vmdk_defragment(d, NULL, NULL));
    TU_OK(vmdk_close(d));
    for (int i = 1; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "b-s%03d.vmdk", i);
        expect_defragmented(tu_path(name));
    }
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(vmdk_open(child, 0, &d));
    for (uint64_t g = 6 * MiB / G; g-- > 0;)
        if (g % 3 == 0)
            tu_shadow_write(d, &s, g * G + 1000, 200, (uint32_t)g + 100);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(child, 0, &d));
    TU_OK(vmdk_defragment(d, NULL, NULL));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    expect_defragmented(child);
    verify_path(child, 0, &s);
    tu_shadow_free(&s);
}

/* Concurrent I/O during the operation fails cleanly (busy) instead of
 * racing; here simulated from the progress callback. */
static int io_in_callback(void *ctx, uint64_t done, uint64_t total)
{
    vmdk_disk *d = ctx;
    char b[512];
    (void)done;
    (void)total;
    int rc = vmdk_pread(d, b, sizeof b, 0);
    if (rc == 0 && done > 0 && done < total)
        fail_msg("a read during the defragment succeeded");
    return 1;
}

static void test_defrag_busy(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct tu_shadow s;
    make_fragmented(p, 4 * MiB, &s);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_defragment(d, io_in_callback, d));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    tu_shadow_free(&s);
}

/* ---- kill -9 in the middle ---------------------------------------------------- */

struct killer {
    long calls, at;
};

static int kill_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct killer *k = ctx;
    (void)done;
    (void)total;
    if (++k->calls == k->at)
        kill(getpid(), SIGKILL);
    return 1;
}

/* Run op (0 defrag, 1 shrink) on p in a child killed at callback `at`
 * (0: not killed; -1: killed after delay_us).  Returns the callbacks seen
 * by an uninterrupted run (at == 0) via the exit status's pipe. */
static long run_in_child(const char *p, int op, long at, long delay_us)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        vmdk_disk *d;
        if (vmdk_open(p, 0, &d) < 0)
            _exit(3);
        struct killer k = { 0, at };
        int rc = op ? vmdk_shrink(d, kill_cb, &k) : vmdk_defragment(d, kill_cb, &k);
        if (vmdk_close(d) < 0 || rc < 0)
            _exit(4);
        if (write(fds[1], &k.calls, sizeof k.calls) != sizeof k.calls)
            _exit(5);
        _exit(0);
    }
    close(fds[1]);
    if (delay_us > 0) {
        struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    long calls = -1;
    if (read(fds[0], &calls, sizeof calls) != sizeof calls)
        calls = -1;
    close(fds[0]);
    if (at > 0 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        fail_msg("the child was not killed at callback %ld (status %d)", at, status);
    if (at == 0 && delay_us == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fail_msg("uninterrupted run failed (status %d)", status);
    return calls;
}

/* After a kill: opens, reads as before, structurally consistent. */
static void after_kill(const char *p, const struct tu_shadow *s, const char *what)
{
    vmdk_disk *d;
    int rc = vmdk_open(p, VMDK_OPEN_RDONLY, &d);
    if (rc < 0)
        fail_msg("%s: the disk does not open: %s", what, vd_err_msg());
    tu_shadow_verify(d, s);
    TU_OK(vmdk_close(d));
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(p, 0, collect, &f, &r));
    /* An interruption may leave only the unclean flag set. */
    if (r.problems > 1 || (r.problems == 1 && !strstr(f.all, "uncleanShutdown")))
        fail_msg("%s: inconsistent after the kill:\n%s", what, f.all);
    qemu_check(p);
}

static void kill_test(int op)
{
    const char *p = tu_path("d.vmdk"), *orig = tu_path("orig.vmdk");
    struct tu_shadow s;
    /* More than one batch of 256 grains so the kills land between batches. */
    make_fragmented(p, 40 * MiB, &s);
    if (op == 1) {
        vmdk_disk *d;
        TU_OK(vmdk_open(p, 0, &d));
        for (uint64_t g = 0; g < 40 * MiB / G; g += 2)
            zero_write(d, &s, g * G, G);
        TU_OK(vmdk_close(d));
    }
    size_t n;
    unsigned char *img = tu_read_all(p, &n);
    tu_write_all(orig, img, n);
    long steps = run_in_child(p, op, 0, 0);
    assert_true(steps >= 4);
    after_kill(p, &s, "uninterrupted");
    char what[64];
    for (long at = 1; at <= steps; at++) {
        tu_write_all(p, img, n);
        run_in_child(p, op, at, 0);
        snprintf(what, sizeof what, "killed at step %ld of %ld", at, steps);
        after_kill(p, &s, what);
        /* And the operation completes on the interrupted disk. */
        if (at == steps / 2) {
            assert_int_equal(run_in_child(p, op, 0, 0) >= 1, 1);
            after_kill(p, &s, "rerun after a kill");
            if (op == 0)
                expect_defragmented(p);
        }
    }
    /* A few kills at arbitrary moments (no assertion on timing: wherever
     * they land, the disk must be intact). */
    struct timespec t0, t1;
    tu_write_all(p, img, n);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_in_child(p, op, 0, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long span = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    unsigned seed = 12345;
    for (int i = 0; i < 12; i++) {
        tu_write_all(p, img, n);
        seed = seed * 1103515245u + 12345u;
        long delay = 1 + (long)(seed % (unsigned long)(span > 1 ? span : 1));
        run_in_child(p, op, -1, delay);
        snprintf(what, sizeof what, "killed after %ld us", delay);
        after_kill(p, &s, what);
    }
    free(img);
    tu_shadow_free(&s);
}

static void test_defrag_kill(void **state) { kill_test(0); }
static void test_shrink_kill(void **state) { kill_test(1); }

/* ---- grow ------------------------------------------------------------------------ */

static void expect_standard_layout(const char *path, uint64_t sectors, int embedded)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(path, &h);
    assert_int_equal(h.capacity, sectors);
    assert_int_equal(h.flags & 3, 3);
    uint64_t cover = (uint64_t)h.num_gtes * h.grain, ngt = (sectors + cover - 1) / cover;
    uint64_t gds = (ngt * 4 + 511) / 512, gts = h.num_gtes * 4 / 512;
    assert_int_equal(h.rgd, embedded ? 21 : 1);
    assert_int_equal(h.gd, h.rgd + gds + ngt * gts);
    for (uint64_t i = 0; i < ngt; i++) {
        assert_int_equal(tu_gde(path, &h, i, 1), h.rgd + gds + i * gts);
        assert_int_equal(tu_gde(path, &h, i, 0), h.gd + gds + i * gts);
    }
    assert_int_equal(h.overhead, (h.gd + gds + ngt * gts + h.grain - 1) / h.grain * h.grain);
    assert_int_equal(h.unclean, 0);
}

static void grow_model(struct tu_shadow *s, uint64_t cap)
{
    uint8_t *b = realloc(s->buf, cap);
    assert_non_null(b);
    memset(b + s->cap, 0, cap - s->cap);
    s->buf = b;
    s->cap = cap;
}

static void test_grow_sparse(void **state)
{
    const char *p = tu_path("d.vmdk");
    uint64_t cap = 40 * MiB;
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (uint64_t o = 0; o < cap; o += 3 * MiB + 4321)
        tu_shadow_write(d, &s, o, 70000, (uint32_t)o);
    tu_shadow_write(d, &s, cap - 1000, 1000, 3);
    TU_OK(vmdk_close(d));
    struct vmdk_geometry g0, g1;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    TU_OK(vmdk_geometry(d, &g0));
    TU_OK(vmdk_close(d));

    /* Within the last table's reach: only the header and descriptor. */
    TU_OK(vmdk_grow(p, cap + 512 * 3, 0, NULL, NULL));
    grow_model(&s, cap + 512 * 3);
    verify_path(p, 0, &s);
    /* Several more tables (grains below the new overHead move). */
    uint64_t last = 0;
    TU_OK(vmdk_grow(p, 1100 * MiB + 512, 1, cb_ok, &last));
    assert_int_equal(last, 100);
    grow_model(&s, 1100 * MiB + 512);
    verify_path(p, 0, &s);
    expect_standard_layout(p, (1100 * MiB + 512) / 512, 1);
    expect_clean(p);
    qemu_check(p);
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_geometry(d, &g1));
    assert_int_equal(g1.cylinders, (1100 * MiB / 512 + 1) / (255 * 63));
    assert_true(g1.cylinders > g0.cylinders);
    tu_shadow_write(d, &s, 1098 * MiB, 2 * MiB, 7);   /* the new area takes data */
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_grow_types(void **state)
{
    static const enum vmdk_type types[] = {
        VMDK_TYPE_SPLIT_SPARSE, VMDK_TYPE_SPLIT_FLAT, VMDK_TYPE_MONOLITHIC_FLAT,
        VMDK_TYPE_VMFS_FLAT, VMDK_TYPE_VMFS_THIN,
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        char name[32];
        snprintf(name, sizeof name, "t%zu.vmdk", t);
        const char *p = tu_path(name);
        uint64_t cap = 5 * MiB + 512;
        TU_OK(tu_create(p, types[t], cap, 2 * MiB));
        struct tu_shadow s;
        tu_shadow_init(&s, cap);
        vmdk_disk *d;
        TU_OK(vmdk_open(p, 0, &d));
        tu_shadow_write(d, &s, 0, 100000, 1);
        tu_shadow_write(d, &s, cap - 70000, 70000, 2);
        TU_OK(vmdk_close(d));
        TU_OK(vmdk_grow(p, 11 * MiB, 0, NULL, NULL));
        grow_model(&s, 11 * MiB);
        verify_path(p, 0, &s);
        TU_OK(vmdk_open(p, 0, &d));
        tu_shadow_write(d, &s, 10 * MiB, MiB, 3);
        struct vmdk_link_info li;
        TU_OK(vmdk_link_info(d, 0, &li));
        if (types[t] == VMDK_TYPE_SPLIT_SPARSE || types[t] == VMDK_TYPE_SPLIT_FLAT) {
            /* 2 MiB pieces: the last one filled up, then new ones. */
            assert_int_equal(li.num_extents, 6);
            for (int e = 0; e < 6; e++) {
                struct vmdk_extent_info ei;
                TU_OK(vmdk_extent_info(d, 0, e, &ei));
                assert_int_equal(ei.length, e < 5 ? 2 * MiB : MiB);
            }
        } else {
            assert_int_equal(li.num_extents, 1);
        }
        TU_OK(vmdk_close(d));
        verify_path(p, 0, &s);
        expect_clean(p);
        tu_shadow_free(&s);
    }
}

static void test_grow_refusals(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_ERR(vmdk_grow(p, 2 * MiB, 0, NULL, NULL), VD_E_INVAL);
    TU_MSG_HAS("d.vmdk");
    TU_ERR(vmdk_grow(NULL, 2 * MiB, 0, NULL, NULL), VD_E_INVAL);
    TU_ERR(vmdk_grow(tu_path("missing.vmdk"), 8 * MiB, 0, NULL, NULL), VD_E_NOTFOUND);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));       /* open elsewhere: locked */
    TU_ERR(vmdk_grow(p, 8 * MiB, 0, NULL, NULL), VD_E_LOCKED);
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    /* A child in the same directory. */
    TU_OK(vmdk_create_child(tu_path("c.vmdk"), p, VMDK_TYPE_MONOLITHIC_SPARSE));
    snap = tu_dir_snapshot(tu_dir());
    TU_ERR(vmdk_grow(p, 8 * MiB, 0, NULL, NULL), VD_E_UNSUPPORTED);
    TU_MSG_HAS("c.vmdk");
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    /* The child itself may grow (it reads zeros past its parent's end). */
    TU_OK(vmdk_grow(tu_path("c.vmdk"), 8 * MiB, 0, NULL, NULL));
    TU_OK(vmdk_open(tu_path("c.vmdk"), 0, &d));
    assert_int_equal(vmdk_capacity(d), 8 * MiB);
    tu_expect_zero(d, 4 * MiB, 4 * MiB);
    TU_OK(vmdk_close(d));
}

static void test_grow_kill(void **state)
{
    const char *p = tu_path("d.vmdk");
    uint64_t cap = 30 * MiB;
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (uint64_t o = 0; o < cap; o += MiB)
        tu_shadow_write(d, &s, o, 3 * G, (uint32_t)o + 1);
    TU_OK(vmdk_close(d));
    size_t n;
    unsigned char *img = tu_read_all(p, &n);
    for (long at = 1; at <= 12; at++) {
        tu_write_all(p, img, n);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            struct killer k = { 0, at };
            _exit(vmdk_grow(p, 2 * 1024 * MiB, 0, kill_cb, &k) == 0 ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
        uint64_t c = vmdk_capacity(d);
        assert_true(c == cap || c == 2 * 1024 * MiB);
        for (uint64_t o = 0; o < cap; o += MiB)
            tu_shadow_verify_range(d, &s, o, 3 * G + 1);
        TU_OK(vmdk_close(d));
        qemu_check(p);
        if (WIFEXITED(status))
            break;        /* the grow finished before callback `at` */
    }
    free(img);
    tu_shadow_free(&s);
}

/* ---- attach ------------------------------------------------------------------------ */

static void test_attach(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, 4 * MiB);
    vmdk_disk *pd, *cd;
    TU_OK(vmdk_open(base, 0, &pd));
    tu_shadow_write(pd, &s, 0, MiB, 1);
    /* The child is made while the parent is open (as CreateChild does). */
    TU_OK(vmdk_create_child_of(pd, child, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &cd));
    TU_OK(vmdk_attach_possible(pd, cd));
    TU_ERR(vmdk_attach_possible(pd, pd), VD_E_INVAL);
    TU_ERR(vmdk_attach_possible(cd, pd), VD_E_ATTACH_ROOTLINK);
    TU_OK(vmdk_attach(pd, cd));
    assert_int_equal(vmdk_num_links(cd), 2);
    TU_OK(vmdk_close(pd));                      /* empty: only close */
    tu_shadow_verify(cd, &s);
    tu_shadow_write(cd, &s, 100, 5000, 2);      /* copy-on-write from the parent */
    tu_shadow_verify(cd, &s);
    TU_OK(vmdk_close(cd));
    verify_path(child, 0, &s);
    tu_shadow_free(&s);
}

/* A child re-pointed at another parent with the same content. */
static void test_attach_repoint(void **state)
{
    const char *a = tu_path("a.vmdk"), *child = tu_path("c.vmdk");
    char *bdir = strdup(tu_path("sub"));
    assert_int_equal(mkdir(bdir, 0755), 0);
    char *b = strdup(tu_path("sub/b.vmdk"));
    TU_OK(tu_create(a, VMDK_TYPE_MONOLITHIC_SPARSE, 2 * MiB, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, 2 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(a, 0, &d));
    tu_shadow_write(d, &s, 0, 2 * MiB, 9);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, a, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(tu_create(b, VMDK_TYPE_MONOLITHIC_SPARSE, 2 * MiB, 0));
    TU_OK(vmdk_open(b, 0, &d));
    tu_write_pattern(d, 0, 2 * MiB, 9);         /* same content, other CID */
    TU_OK(vmdk_close(d));
    vmdk_disk *pd, *cd;
    TU_OK(vmdk_open(b, VMDK_OPEN_RDONLY, &pd));
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &cd));
    TU_OK(vmdk_attach(pd, cd));
    TU_OK(vmdk_close(pd));
    TU_OK(vmdk_close(cd));
    char *text = tu_embedded_desc(child);
    char hint[512], pcid[32], want[32];
    assert_int_equal(tu_desc_value(text, "parentFileNameHint", hint, sizeof hint), 0);
    assert_true(hint[0] == '/');                /* another directory: absolute */
    assert_non_null(strstr(hint, "sub/b.vmdk"));
    assert_int_equal(tu_desc_value(text, "parentCID", pcid, sizeof pcid), 0);
    snprintf(want, sizeof want, "%08x", tu_cid_of(b));
    assert_string_equal(pcid, want);
    free(text);
    /* A normal open now follows the new hint and CID. */
    TU_OK(vmdk_open(child, 0, &d));
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 1, &li));
    assert_non_null(strstr(li.path, "sub/b.vmdk"));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    free(b);
    free(bdir);
    tu_shadow_free(&s);
}

static void test_attach_refusals(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    const char *other = tu_path("other.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    TU_OK(tu_create(other, VMDK_TYPE_MONOLITHIC_SPARSE, 8 * MiB, 0));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *pd, *cd;
    TU_OK(vmdk_open(other, VMDK_OPEN_RDONLY, &pd));
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &cd));
    TU_ERR(vmdk_attach(pd, cd), VD_E_CAPACITY_MISMATCH);
    TU_MSG_HAS("child.vmdk");
    TU_OK(vmdk_close(pd));
    TU_OK(vmdk_close(cd));
    /* A child opened with its parent: its bottom link is the base. */
    TU_OK(vmdk_open(base, VMDK_OPEN_RDONLY, &pd));
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &cd));
    TU_ERR(vmdk_attach_possible(pd, cd), VD_E_ATTACH_ROOTLINK);
    TU_OK(vmdk_close(cd));
    /* The child onto a chain that contains it. */
    vmdk_disk *loop;
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &loop));
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK | VMDK_OPEN_NOLOCK, &cd));
    TU_ERR(vmdk_attach_possible(loop, cd), VD_E_PARENT_LOOP);
    TU_OK(vmdk_close(cd));
    TU_OK(vmdk_close(loop));
    /* Read-only child: Attach would have to rewrite its descriptor. */
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &cd));
    TU_ERR(vmdk_attach(pd, cd), VD_E_READONLY);
    TU_OK(vmdk_close(cd));
    TU_OK(vmdk_close(pd));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

/* ---- check / repair ------------------------------------------------------------------ */

/* d.vmdk: monolithicSparse 4 MiB, data in grains 0-5 (header: RGD 21,
 * GD 26, overhead 128). */
static const char *make_checked(struct tu_shadow *s)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    tu_shadow_init(s, 4 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, s, 0, 6 * G, 1);
    TU_OK(vmdk_close(d));
    expect_clean(p);
    return p;
}

static void test_check_clean(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(p, 1, collect, &f, &r));
    assert_int_equal(r.problems, 0);
    assert_true(f.lines >= 2);
    assert_non_null(strstr(f.all, "no problems found"));
    TU_ERR(vmdk_check(tu_path("nothere.vmdk"), 0, NULL, NULL, &r), VD_E_NOTFOUND);
    TU_ERR(vmdk_check(NULL, 0, NULL, NULL, &r), VD_E_INVAL);
    /* Open for writing elsewhere: no check (the metadata is in flux). */
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_ERR(vmdk_check(p, 0, NULL, NULL, &r), VD_E_LOCKED);
    TU_OK(vmdk_close(d));
    tu_shadow_free(&s);
}

static void test_check_gt_rgt_disagree(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    uint32_t good = tu_gte(p, &h, 2, 0);
    tu_set_gte(p, &h, 2, 0, 0x7fffff00u);          /* primary: past the end of the file */
    check_finds_and_repairs(p, "disagree");
    assert_int_equal(tu_gte(p, &h, 2, 0), good);   /* from the redundant copy */
    assert_int_equal(tu_gte(p, &h, 2, 1), good);
    verify_path(p, 0, &s);
    /* Both valid but different: the primary (what readers use) wins. */
    uint32_t g3 = tu_gte(p, &h, 3, 0);
    tu_set_gte(p, &h, 3, 1, tu_gte(p, &h, 4, 0) + 0);
    tu_set_gte(p, &h, 4, 1, g3);
    check_finds_and_repairs(p, "disagree");
    assert_int_equal(tu_gte(p, &h, 3, 1), g3);
    verify_path(p, 0, &s);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_check_out_of_range(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    /* Grain 40 (unallocated) points past the end in both copies. */
    tu_set_gte(p, &h, 40, 0, 900000);
    tu_set_gte(p, &h, 40, 1, 900000);
    /* Grain 41 points into the metadata. */
    tu_set_gte(p, &h, 41, 0, 30);
    tu_set_gte(p, &h, 41, 1, 30);
    check_finds_and_repairs(p, "past the end");
    assert_int_equal(tu_gte(p, &h, 40, 0), 0);
    assert_int_equal(tu_gte(p, &h, 41, 1), 0);
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

static void test_check_overlap(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    /* Grain 50 shares grain 1's storage: both read grain 1's data. */
    uint32_t g1 = tu_gte(p, &h, 1, 0);
    tu_set_gte(p, &h, 50, 0, g1);
    tu_set_gte(p, &h, 50, 1, g1);
    memcpy(s.buf + 50 * G, s.buf + 1 * G, G);
    verify_path(p, 0, &s);
    check_finds_and_repairs(p, "overlap");
    assert_int_equal(tu_gte(p, &h, 1, 0), g1);
    assert_true(tu_gte(p, &h, 50, 0) != g1 && tu_gte(p, &h, 50, 0) > 1);
    verify_path(p, 0, &s);
    /* They are independent now. */
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, &s, 50 * G, G, 77);
    TU_OK(vmdk_close(d));
    verify_path(p, 0, &s);
    expect_clean(p);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_check_unclean(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    tu_put_u8(p, TU_H_UNCLEAN, 1);
    check_finds_and_repairs(p, "uncleanShutdown");
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.unclean, 0);
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

static void test_check_size_mismatch(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    /* Header says less than the descriptor (still within its tables). */
    tu_put_u64(p, TU_H_CAPACITY, 4 * MiB / 512 - 256);
    check_finds_and_repairs(p, "descriptor");
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.capacity, 4 * MiB / 512);
    verify_path(p, 0, &s);
    /* Header says more than the descriptor. */
    tu_put_u64(p, TU_H_CAPACITY, 4 * MiB / 512 + 128);
    check_finds_and_repairs(p, "descriptor");
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.capacity, 4 * MiB / 512);
    /* Descriptor beyond what the header's tables cover: the extent grows. */
    tu_replace_in_embedded(p, "RW 8192 SPARSE", "RW 204800 SPARSE");
    grow_model(&s, 100 * MiB);
    check_finds_and_repairs(p, "descriptor");
    expect_standard_layout(p, 204800, 1);
    verify_path(p, 0, &s);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_check_directories(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    uint32_t gd0 = tu_gde(p, &h, 0, 0), rgd0 = tu_gde(p, &h, 0, 1);
    /* Primary directory entry ruined: rebuilt from the redundant table. */
    tu_put_u32(p, h.gd * 512, 0x7ffffff0u);
    check_finds_and_repairs(p, "directory entry");
    assert_int_equal(tu_gde(p, &h, 0, 0), gd0);
    verify_path(p, 0, &s);
    /* Redundant directory entry missing. */
    tu_put_u32(p, h.rgd * 512, 0);
    check_finds_and_repairs(p, "redundant directory entry");
    assert_int_equal(tu_gde(p, &h, 0, 1), rgd0);
    verify_path(p, 0, &s);
    /* Both pointing at the same table. */
    tu_put_u32(p, h.rgd * 512, gd0);
    check_finds_and_repairs(p, NULL);
    assert_true(tu_gde(p, &h, 0, 1) != tu_gde(p, &h, 0, 0));
    verify_path(p, 0, &s);
    qemu_check(p);
    tu_shadow_free(&s);
}

static void test_check_zero_flag(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    tu_set_gte(p, &h, 60, 0, 1);
    tu_set_gte(p, &h, 60, 1, 1);
    check_finds_and_repairs(p, "0x4");
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.flags & 4, 4);
    assert_int_equal(h.version, 2);
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

static void test_check_flat_and_missing(void **state)
{
    const char *p = tu_path("f.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_SPLIT_FLAT, 3 * MiB, MiB));
    expect_clean(p);
    tu_truncate(tu_path("f-f002.vmdk"), 1000);
    check_finds_and_repairs(p, "bytes");
    assert_int_equal(tu_file_size(tu_path("f-f002.vmdk")), MiB);
    tu_unlink(tu_path("f-f003.vmdk"));
    struct vmdk_check_result r;
    struct findings f;
    memset(&f, 0, sizeof f);
    TU_OK(vmdk_check(p, 1, collect, &f, &r));
    assert_int_equal(r.unrepaired, 1);
    assert_non_null(strstr(f.all, "f-f003.vmdk"));
    /* Not a disk at all: the check cannot run. */
    tu_write_all(tu_path("junk.vmdk"), "\x01\x02garbage", 9);
    assert_true(vmdk_check(tu_path("junk.vmdk"), 0, NULL, NULL, &r) < 0);
    /* A directory offset the rest of the extent contradicts is put back. */
    struct tu_shadow s;
    const char *d = make_checked(&s);
    tu_put_u64(d, TU_H_GD, 1ull << 40);
    check_finds_and_repairs(d, "gdOffset");
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(d, &h);
    assert_int_equal(h.gd, 26);
    verify_path(d, 0, &s);
    /* A header beyond repair is reported, never "fixed", and nothing is
     * written, even for the problems a repair could fix. */
    tu_put_u32(d, TU_H_VERSION, 9);
    tu_put_u8(d, TU_H_UNCLEAN, 1);
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_OK(vmdk_check(d, 1, NULL, NULL, &r));
    assert_int_equal(r.unrepaired, 1);
    assert_int_equal(r.cantfix, 1);
    assert_int_equal(r.repaired, 0);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    tu_shadow_free(&s);
}

/* Split sparse: each extent checked against its descriptor line. */
static void test_check_split(void **state)
{
    const char *p = tu_path("s.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_SPLIT_SPARSE, 4 * MiB, 2 * MiB));
    struct tu_shadow s;
    tu_shadow_init(&s, 4 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, &s, 0, 4 * MiB, 3);
    TU_OK(vmdk_close(d));
    const char *e2 = tu_path("s-s002.vmdk");
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(e2, &h);
    tu_set_gte(e2, &h, 7, 1, 0);
    tu_put_u8(e2, TU_H_UNCLEAN, 1);
    check_finds_and_repairs(p, "s-s002.vmdk");
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

/* ---- repair that never loses data (issue 13) ------------------------------------------ */

/* Set one header field (width 4 or 8 bytes at off) to v: the check names
 * field, the repair puts the original header back byte for byte, keeps the
 * file's size and every byte the disk reads, and the disk checks clean. */
static void header_field_case(const char *p, const struct tu_shadow *s, uint64_t off,
                              int width, uint64_t v, const char *field)
{
    unsigned char orig[512], now[512];
    tu_pread(p, 0, orig, sizeof orig);
    uint64_t size = tu_file_size(p);
    if (width == 8)
        tu_put_u64(p, off, v);
    else
        tu_put_u32(p, off, (uint32_t)v);
    check_finds_and_repairs(p, field);
    tu_pread(p, 0, now, sizeof now);
    if (memcmp(orig, now, sizeof now))
        fail_msg("%s = %llu: the repaired header differs from the original", field,
                 (unsigned long long)v);
    assert_int_equal(tu_file_size(p), size);
    verify_path(p, 0, s);
}

/* One damaged field, the rest of the extent healthy: that field is fixed
 * and nothing is dropped (it used to drop every grain for overHead 2^40,
 * grain 0 for rgdOffset one sector off, grow the file to 67 MB for
 * capacity 0x7fffffff, and "repair" grainSize by copying grains). */
static void test_repair_header_fields(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    header_field_case(p, &s, TU_H_OVERHEAD, 8, 1ull << 40, "overHead");
    header_field_case(p, &s, TU_H_RGD, 8, 22, "rgdOffset");
    header_field_case(p, &s, TU_H_RGD, 8, 20, "rgdOffset");
    header_field_case(p, &s, TU_H_GD, 8, 27, "gdOffset");
    header_field_case(p, &s, TU_H_CAPACITY, 8, 0x7fffffff, "capacity");
    header_field_case(p, &s, TU_H_NUM_GTES, 4, 65536, "numGTEsPerGT");
    header_field_case(p, &s, TU_H_NUM_GTES, 4, 64, "numGTEsPerGT");
    header_field_case(p, &s, TU_H_NUM_GTES, 4, 500, "numGTEsPerGT");
    header_field_case(p, &s, TU_H_GRAIN, 8, 256, "grainSize");
    header_field_case(p, &s, TU_H_GRAIN, 8, 64, "grainSize");
    header_field_case(p, &s, TU_H_GRAIN, 8, 100, "grainSize");
    header_field_case(p, &s, TU_H_DESC_SIZE, 8, 21, "descriptorSize");
    header_field_case(p, &s, TU_H_DESC_OFF, 8, 3000000, "descriptorOffset");
    qemu_check(p);
    tu_shadow_free(&s);
}

/* A child whose descriptorSize is damaged: repaired, and it still reads
 * its own grains over its parent (it used to be "cannot repair" with grain
 * table 0 dropped, so that the child read as its parent). */
static void test_repair_child_descriptor_size(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, 4 * MiB);
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    tu_shadow_write(d, &s, 0, 8 * G, 1);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(vmdk_open(child, 0, &d));
    tu_shadow_write(d, &s, G, 2 * G, 2);
    tu_shadow_write(d, &s, 30 * G, G, 3);
    TU_OK(vmdk_close(d));
    uint64_t sizes[] = { 21, 100, 0, 30000 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char orig[512], now[512];
        tu_pread(child, 0, orig, sizeof orig);
        tu_put_u64(child, TU_H_DESC_SIZE, sizes[i]);
        check_finds_and_repairs(child, "descriptorSize");
        tu_pread(child, 0, now, sizeof now);
        assert_memory_equal(orig, now, sizeof now);
        verify_path(child, 0, &s);
    }
    tu_shadow_free(&s);
}

/* The primary entry of grain 3 names grain 1's storage, the redundant one
 * is right: the redundant entry wins (it used to keep the primary and give
 * grain 3 a copy of grain 1, losing grain 3). */
static void test_repair_prefers_entry_without_collision(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    uint32_t g1 = tu_gte(p, &h, 1, 0), g3 = tu_gte(p, &h, 3, 0);
    tu_set_gte(p, &h, 3, 0, g1);
    check_finds_and_repairs(p, "disagree");
    assert_int_equal(tu_gte(p, &h, 3, 0), g3);
    assert_int_equal(tu_gte(p, &h, 3, 1), g3);
    assert_int_equal(tu_gte(p, &h, 1, 0), g1);
    verify_path(p, 0, &s);
    /* The same with the redundant entry damaged: the primary stays. */
    tu_set_gte(p, &h, 4, 1, g1);
    check_finds_and_repairs(p, "disagree");
    verify_path(p, 0, &s);
    tu_shadow_free(&s);
}

/* What Open refuses, check reports with Open's reason, as a problem no
 * repair fixes; a repair then writes nothing; each line names the file
 * once. */
static void expect_open_refusal_reported(const char *disk, const char *reason)
{
    vmdk_disk *d;
    assert_true(vmdk_open(disk, VMDK_OPEN_RDONLY, &d) < 0);
    TU_MSG_HAS(reason);
    struct findings f;
    memset(&f, 0, sizeof f);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(disk, 0, collect, &f, &r));
    if (r.problems == 0 || r.cantfix != r.problems || !strstr(f.all, reason))
        fail_msg("%s: check does not report \"%s\" as beyond repair:\n%s", disk, reason, f.all);
    for (char *line = f.all; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *first = strstr(line, tu_dir());
        if (first && first < line + n) {
            char *second = strstr(first + 1, tu_dir());
            if (second && second < line + n)
                fail_msg("a line names a file twice: %.*s", (int)n, line);
        }
        line += n + (nl ? 1 : 0);
    }
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    memset(&f, 0, sizeof f);
    TU_OK(vmdk_check(disk, 1, collect, &f, &r));
    assert_int_equal(r.repaired, 0);
    assert_true(r.cantfix > 0);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void test_check_reports_open_refusals(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s);
    tu_put_u32(p, TU_H_VERSION, 4);
    expect_open_refusal_reported(p, "version 4 is not supported");
    tu_put_u32(p, TU_H_VERSION, 1);
    tu_put_u32(p, TU_H_FLAGS, 3 | 0x40000);
    expect_open_refusal_reported(p, "unknown incompatible flags");
    tu_put_u32(p, TU_H_FLAGS, 3);
    expect_clean(p);
    tu_shadow_free(&s);

    /* vmfsSparse: a COWD extent of an unknown version, then cut short. */
    const char *v = tu_path("v.vmdk"), *ve = tu_path("v-delta.vmdk");
    TU_OK(tu_create(v, VMDK_TYPE_VMFS_SPARSE, 2 * MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(v, 0, &d));
    tu_write_pattern(d, 0, 8192, 5);
    TU_OK(vmdk_close(d));
    expect_clean(v);
    tu_put_u32(ve, 4, 2);
    expect_open_refusal_reported(v, "COWD version 2 is not supported");
    tu_put_u32(ve, 4, 1);
    expect_clean(v);
    tu_truncate(ve, 300);
    expect_open_refusal_reported(v, "too short");
}

/* A repair killed after k writes (the test hook, in a child process):
 * the disk cannot be opened, a check reports the interrupted repair,
 * rolling the journal back gives the damaged file byte for byte, and the
 * next repair ends with the bytes of an uninterrupted repair. */
static void test_repair_killed(void **state)
{
    struct tu_shadow s;
    const char *p = make_checked(&s), *ref = tu_path("ref.vmdk");
    char journal[600];
    snprintf(journal, sizeof journal, "%s.repair-undo", p);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    /* Grain 50 shares grain 1's storage (a copy is made), the redundant
     * directory offset is one sector off, the extent is unclean. */
    uint32_t g1 = tu_gte(p, &h, 1, 0);
    tu_set_gte(p, &h, 50, 0, g1);
    tu_set_gte(p, &h, 50, 1, g1);
    memcpy(s.buf + 50 * G, s.buf + G, G);
    tu_put_u8(p, TU_H_UNCLEAN, 1);
    tu_put_u64(p, TU_H_RGD, h.rgd + 1);
    size_t dlen, rlen;
    unsigned char *damaged = tu_read_all(p, &dlen);
    tu_write_all(ref, damaged, dlen);
    struct vmdk_check_result r;
    TU_OK(vmdk_check(ref, 1, NULL, NULL, &r));
    assert_int_equal(r.unrepaired, 0);
    unsigned char *repaired = tu_read_all(ref, &rlen);
    unsigned killed = 0;
    for (unsigned k = 0; k < 64; k++) {
        for (int rollback_only = 0; rollback_only < 2; rollback_only++) {
            tu_write_all(p, damaged, dlen);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                char n[16];
                snprintf(n, sizeof n, "%u", k);
                setenv("OPENVDDK_TEST_REPAIR_ABORT_AFTER", n, 1);
                struct vmdk_check_result cr;
                _exit(vmdk_check(p, 1, NULL, NULL, &cr) == 0 ? 0 : 1);
            }
            int st;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            assert_true(WIFEXITED(st));
            if (WEXITSTATUS(st) == 0) {
                assert_false(tu_exists(journal));
                goto done;               /* k writes were all it took */
            }
            assert_int_equal(WEXITSTATUS(st), 77);
            assert_true(tu_exists(journal));
            killed++;
            vmdk_disk *d;
            TU_ERR(vmdk_open(p, VMDK_OPEN_RDONLY, &d), VD_E_NEEDSREPAIR);
            TU_MSG_HAS("repair-undo");
            struct findings f;
            memset(&f, 0, sizeof f);
            TU_OK(vmdk_check(p, 0, collect, &f, &r));
            assert_true(r.problems == 1 && strstr(f.all, "interrupted"));
            size_t n;
            unsigned char *now;
            if (rollback_only) {
                assert_int_equal(jn_recover(p), 1);
                now = tu_read_all(p, &n);
                assert_true(n == dlen && !memcmp(now, damaged, n));
            } else {
                TU_OK(vmdk_check(p, 1, NULL, NULL, &r));
                assert_int_equal(r.unrepaired, 0);
                now = tu_read_all(p, &n);
                assert_true(n == rlen && !memcmp(now, repaired, n));
                verify_path(p, 0, &s);
            }
            assert_false(tu_exists(journal));
            free(now);
        }
    }
    fail_msg("the repair never completed");
done:
    assert_true(killed >= 6);            /* copy, tables, directories, header */
    free(damaged);
    free(repaired);
    tu_shadow_free(&s);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_shrink_base),
        T(test_shrink_keeps_cid),
        T(test_shrink_keeps_unclean),
        T(test_shrink_child),
        T(test_shrink_child_single_link),
        T(test_shrink_split),
        T(test_shrink_refusals),
        T(test_shrink_needs_repair),
        T(test_shrink_cancel),
        T(test_defrag),
        T(test_defrag_child_and_split),
        T(test_defrag_busy),
        T(test_defrag_kill),
        T(test_shrink_kill),
        T(test_check_unclean_lag),
        T(test_grow_sparse),
        T(test_grow_types),
        T(test_grow_refusals),
        T(test_grow_kill),
        T(test_attach),
        T(test_attach_repoint),
        T(test_attach_refusals),
        T(test_check_clean),
        T(test_check_gt_rgt_disagree),
        T(test_check_out_of_range),
        T(test_check_overlap),
        T(test_check_unclean),
        T(test_check_size_mismatch),
        T(test_check_directories),
        T(test_check_zero_flag),
        T(test_check_flat_and_missing),
        T(test_check_split),
        T(test_repair_header_fields),
        T(test_repair_child_descriptor_size),
        T(test_repair_prefers_entry_without_collision),
        T(test_check_reports_open_refusals),
        T(test_repair_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
