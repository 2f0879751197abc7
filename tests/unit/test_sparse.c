/* test_sparse.c - hosted sparse (KDMV) extents: I/O, on-disk layout after
 * writes (GT/RGT, grain placement), block status, zeroed grains, the
 * uncleanShutdown flag. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define G (64 * KiB) /* default grain */

struct w { uint64_t off; size_t len; };

/* Writes at unaligned offsets crossing grain and (1 MiB) extent boundaries. */
static const struct w WRITES[] = {
    {12345, 1000},                      /* inside grain 0 */
    {G - 100, 300},                     /* grain 0/1 boundary */
    {MiB - 5000, 70000},                /* extent 1/2 boundary, several grains */
    {2 * MiB + 3 * G + 7, 200000},      /* many grains, unaligned both ends */
    {MiB - 100, 50},                    /* overwrite of an allocated grain */
    {3 * MiB + 512 * KiB - 777, 777},   /* the last bytes of the disk */
    {5 * G, G},                         /* exactly one aligned grain */
};
#define NW (sizeof WRITES / sizeof WRITES[0])
#define CAP (3 * MiB + 512 * KiB)
#define SPLIT MiB

static void mark(uint8_t *touched, uint64_t off, size_t len, uint64_t grain)
{
    for (uint64_t g = off / grain; g <= (off + len - 1) / grain; g++)
        touched[g] = 1;
}

/* Check one sparse extent file against the model: GT == RGT, every written
 * grain allocated at a grain-aligned, unique place past overHead holding the
 * right data, every untouched grain unallocated. */
static void check_extent(const char *file, const struct tu_shadow *s, uint64_t start,
                         uint64_t len, const uint8_t *touched)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(file, &h);
    assert_int_equal(h.magic, TU_KDMV_MAGIC);
    uint64_t gbytes = h.grain * 512;
    uint64_t ngrains = (len + gbytes - 1) / gbytes;
    uint64_t fsize = tu_file_size(file);
    unsigned char *img = tu_read_all(file, NULL);
    uint32_t *seen = calloc(ngrains + 1, sizeof *seen);
    assert_non_null(seen);
    size_t nseen = 0;

    uint64_t ngt = (ngrains + h.num_gtes - 1) / h.num_gtes;
    for (uint64_t t = 0; t < ngt; t++) {
        uint32_t gt = tu_gde(file, &h, t, 0), rgt = tu_gde(file, &h, t, 1);
        assert_true(gt != 0 && rgt != 0 && gt != rgt);
        assert_true(((uint64_t)gt + 4) * 512 <= fsize && ((uint64_t)rgt + 4) * 512 <= fsize);
        if (memcmp(img + (uint64_t)gt * 512, img + (uint64_t)rgt * 512, h.num_gtes * 4) != 0)
            fail_msg("%s: GT %llu differs from its redundant copy", file,
                     (unsigned long long)t);
    }
    for (uint64_t g = 0; g < ngrains; g++) {
        uint32_t e = tu_gte(file, &h, g, 0);
        uint64_t vg = (start + g * gbytes) / gbytes; /* grain index on the disk */
        if (!touched[vg]) {
            if (e != 0)
                fail_msg("%s: grain %llu never written but GTE is %u", file,
                         (unsigned long long)g, e);
            continue;
        }
        if (e < h.overhead || e % h.grain != 0 || ((uint64_t)e + h.grain) * 512 > fsize)
            fail_msg("%s: grain %llu has GTE %u (overHead %llu, grain %llu, file %llu "
                     "sectors)", file, (unsigned long long)g, e,
                     (unsigned long long)h.overhead, (unsigned long long)h.grain,
                     (unsigned long long)(fsize / 512));
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == e)
                fail_msg("%s: GTE %u used twice", file, e);
        seen[nseen++] = e;
        uint64_t n = len - g * gbytes < gbytes ? len - g * gbytes : gbytes;
        if (memcmp(img + (uint64_t)e * 512, s->buf + start + g * gbytes, n) != 0)
            fail_msg("%s: data of grain %llu at sector %u differs from what was written",
                     file, (unsigned long long)g, e);
    }
    free(seen);
    free(img);
}

static void check_files(enum vmdk_type type, const struct tu_shadow *s, const uint8_t *touched)
{
    if (type == VMDK_TYPE_MONOLITHIC_SPARSE) {
        check_extent(tu_path("d.vmdk"), s, 0, CAP, touched);
        return;
    }
    for (int e = 0; e < 4; e++) {
        char name[32];
        snprintf(name, sizeof name, "d-s%03d.vmdk", e + 1);
        check_extent(tu_path(name), s, (uint64_t)e * SPLIT, e < 3 ? SPLIT : CAP - 3 * SPLIT,
                     touched);
    }
}

static void check_status(vmdk_disk *d, const uint8_t *touched)
{
    size_t n = CAP / G;
    int st[64];
    for (int single = 0; single < 2; single++) {
        tu_status_map(d, 0, G, n, single, st);
        for (size_t g = 0; g < n; g++)
            if (st[g] != (touched[g] ? VMDK_DATA : VMDK_HOLE))
                fail_msg("grain %zu: status %d, expected %s", g, st[g],
                         touched[g] ? "DATA" : "HOLE");
    }
}

static void run_io(enum vmdk_type type)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, type, CAP, SPLIT));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    assert_int_equal(vmdk_capacity(d), CAP);
    assert_false(vmdk_is_readonly(d));

    struct tu_shadow s;
    tu_shadow_init(&s, CAP);
    uint8_t touched[CAP / G] = {0};
    tu_shadow_verify(d, &s); /* all zeros */
    for (size_t i = 0; i < NW; i++) {
        tu_shadow_write(d, &s, WRITES[i].off, WRITES[i].len, (uint32_t)i + 1);
        mark(touched, WRITES[i].off, WRITES[i].len, G);
    }
    tu_shadow_verify(d, &s);
    /* reads crossing the extent boundaries */
    for (int e = 1; e < 4; e++)
        tu_shadow_verify_range(d, &s, (uint64_t)e * SPLIT - 3, 6);
    check_status(d, touched);

    /* out of range: nothing transferred, nothing changed */
    TU_OK(vmdk_flush(d));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    uint8_t buf[512];
    memset(buf, 0xab, sizeof buf);
    TU_ERR(vmdk_pwrite(d, buf, 200, CAP - 100), VD_E_RANGE);
    TU_ERR(vmdk_pwrite(d, buf, 1, CAP), VD_E_RANGE);
    TU_ERR(vmdk_pwrite(d, buf, 100, UINT64_MAX - 10), VD_E_RANGE);
    TU_ERR(vmdk_pread(d, buf, 200, CAP - 100), VD_E_RANGE);
    TU_ERR(vmdk_pread(d, buf, 100, UINT64_MAX - 10), VD_E_RANGE);
    TU_ERR(vmdk_pread(d, buf, 1, CAP), VD_E_RANGE);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    check_files(type, &s, touched);

    /* reopen read-only */
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    assert_true(vmdk_is_readonly(d));
    tu_shadow_verify(d, &s);
    check_status(d, touched);
    TU_ERR(vmdk_pwrite(d, buf, 10, 0), VD_E_READONLY);
    TU_OK(vmdk_close(d));

    /* reopen read-write, overwrite and allocate more, reopen again */
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, &s, 12000, 2000, 100);
    tu_shadow_write(d, &s, 2 * MiB - 1, 2, 101);
    mark(touched, 12000, 2000, G);
    mark(touched, 2 * MiB - 1, 2, G);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    check_files(type, &s, touched);
    tu_shadow_free(&s);
}

static void test_io_monolithic(void **state) { run_io(VMDK_TYPE_MONOLITHIC_SPARSE); }
static void test_io_split(void **state) { run_io(VMDK_TYPE_SPLIT_SPARSE); }

/* A write spanning two grain tables (32 MiB coverage each). */
static void test_gt_boundary(void **state)
{
    const char *p = tu_path("d.vmdk");
    const uint64_t cap = 80 * MiB;
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 32 * MiB - 300 * KiB - 5, 700 * KiB, 7);
    tu_write_pattern(d, 80 * MiB - 65 * KiB, 65 * KiB, 8);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 32 * MiB - 300 * KiB - 5, 700 * KiB, 7);
    tu_expect_pattern(d, 80 * MiB - 65 * KiB, 65 * KiB, 8);
    tu_expect_zero(d, 32 * MiB - 300 * KiB - 5 - 4096, 4096);
    tu_expect_zero(d, 32 * MiB + 400 * KiB - 5, 4096);
    TU_OK(vmdk_close(d));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    /* grain 511 (last of GT 0) and 512 (first of GT 1) are both allocated */
    assert_true(tu_gte(p, &h, 511, 0) >= h.overhead);
    assert_true(tu_gte(p, &h, 512, 0) >= h.overhead);
    assert_int_equal(tu_gte(p, &h, 511, 0), tu_gte(p, &h, 511, 1));
    assert_int_equal(tu_gte(p, &h, 512, 0), tu_gte(p, &h, 512, 1));
}

static void test_small_grain(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct vmdk_create_params cp = {.type = VMDK_TYPE_MONOLITHIC_SPARSE,
                                    .capacity = 2 * MiB, .grain_sectors = 16};
    TU_OK(vmdk_create(p, &cp));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.grain, 16);
    assert_int_equal(h.overhead % 16, 0);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.grain_size, 8192);
    tu_write_pattern(d, 8192 - 10, 20, 3);
    int st[4];
    tu_status_map(d, 0, 8192, 4, 0, st);
    assert_int_equal(st[0], VMDK_DATA);
    assert_int_equal(st[1], VMDK_DATA);
    assert_int_equal(st[2], VMDK_HOLE);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 8192 - 10, 20, 3);
    tu_expect_zero(d, 0, 8192 - 10);
    tu_expect_zero(d, 8192 + 10, 8192 - 10);
    TU_OK(vmdk_close(d));
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(tu_gte(p, &h, 0, 0) % 16, 0);
    assert_true(tu_gte(p, &h, 1, 0) >= h.overhead);
    assert_int_equal(tu_gte(p, &h, 2, 0), 0);
}

static void test_block_status(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 2 * G, G, 1);
    tu_write_pattern(d, 5 * G + 300, 100, 2);
    tu_write_pattern(d, 6 * G + G / 2, G / 2 + 10, 3);
    int st[64];
    tu_status_map(d, 0, G, 64, 0, st);
    for (int g = 0; g < 64; g++) {
        int want = (g == 2 || g == 5 || g == 6 || g == 7) ? VMDK_DATA : VMDK_HOLE;
        if (st[g] != want)
            fail_msg("grain %d: status %d, expected %d", g, st[g], want);
    }
    uint64_t run;
    int status;
    /* a range inside one grain */
    TU_OK(vmdk_block_status(d, 5 * G + 300, 50, 0, &run, &status));
    assert_int_equal(run, 50);
    assert_int_equal(status, VMDK_DATA);
    /* starting mid-grain: the run ends on a grain boundary */
    TU_OK(vmdk_block_status(d, 3 * G + 1, 2 * G, 0, &run, &status));
    assert_int_equal(status, VMDK_HOLE);
    assert_true(run == G - 1 || run == 2 * G - 1);
    TU_OK(vmdk_block_status(d, 2 * G + 17, 10 * G, 1, &run, &status));
    assert_int_equal(status, VMDK_DATA);
    assert_int_equal(run, G - 17);
    /* the whole disk in one call starts with a hole of two grains at most */
    TU_OK(vmdk_block_status(d, 0, 4 * MiB, 0, &run, &status));
    assert_int_equal(status, VMDK_HOLE);
    assert_true(run == G || run == 2 * G);
    TU_OK(vmdk_close(d));
}

/* Make a sparse file version 2 with zeroed-grain GTEs allowed and set the
 * GTE (and RGTE) of grain g to 1. */
static void make_zeroed_grain(const char *file, uint64_t g)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(file, &h);
    tu_put_u32(file, TU_H_VERSION, 2);
    tu_put_u32(file, TU_H_FLAGS, h.flags | 0x4);
    tu_set_gte(file, &h, g, 0, 1);
    tu_set_gte(file, &h, g, 1, 1);
}

static void test_zeroed_grain_base(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 0, 2 * G, 1);
    TU_OK(vmdk_close(d));
    make_zeroed_grain(p, 0);

    TU_OK(vmdk_open(p, 0, &d));
    tu_expect_zero(d, 0, G);
    tu_expect_pattern(d, G, G, 1);
    int st[4];
    tu_status_map(d, 0, G, 4, 0, st);
    assert_int_equal(st[0], VMDK_ZERO);
    assert_int_equal(st[1], VMDK_DATA);
    assert_int_equal(st[2], VMDK_HOLE);
    /* a partial write into the zeroed grain: the rest stays zero */
    tu_write_pattern(d, 1000, 10, 9);
    tu_expect_zero(d, 0, 1000);
    tu_expect_pattern(d, 1000, 10, 9);
    tu_expect_zero(d, 1010, G - 1010);
    tu_status_map(d, 0, G, 1, 0, st);
    assert_int_equal(st[0], VMDK_DATA);
    TU_OK(vmdk_close(d));

    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    uint32_t e = tu_gte(p, &h, 0, 0);
    assert_true(e >= h.overhead);
    assert_int_equal(e, tu_gte(p, &h, 0, 1));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_zero(d, 0, 1000);
    tu_expect_pattern(d, 1000, 10, 9);
    tu_expect_zero(d, 1010, G - 1010);
    TU_OK(vmdk_close(d));
}

static void test_zeroed_grain_over_parent(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    tu_write_pattern(d, 0, 4 * G, 1);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    make_zeroed_grain(child, 1);
    size_t blen;
    unsigned char *before = tu_read_all(base, &blen);

    TU_OK(vmdk_open(child, 0, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    tu_expect_pattern(d, 0, G, 1);
    tu_expect_zero(d, G, G);                 /* parent has data there */
    tu_expect_pattern(d, 2 * G, 2 * G, 1);
    int st[6];
    tu_status_map(d, 0, G, 6, 0, st);
    static const int chain[6] = {VMDK_DATA, VMDK_ZERO, VMDK_DATA, VMDK_DATA, VMDK_HOLE,
                                 VMDK_HOLE};
    for (int g = 0; g < 6; g++)
        if (st[g] != chain[g])
            fail_msg("chain status of grain %d: %d, expected %d", g, st[g], chain[g]);
    tu_status_map(d, 0, G, 6, 1, st);
    static const int single[6] = {VMDK_HOLE, VMDK_ZERO, VMDK_HOLE, VMDK_HOLE, VMDK_HOLE,
                                  VMDK_HOLE};
    for (int g = 0; g < 6; g++)
        if (st[g] != single[g])
            fail_msg("single-link status of grain %d: %d, expected %d", g, st[g], single[g]);

    /* partial write into the zeroed grain: zero-filled, not copied from the parent */
    tu_write_pattern(d, G + 1000, 10, 9);
    tu_expect_zero(d, G, 1000);
    tu_expect_pattern(d, G + 1000, 10, 9);
    tu_expect_zero(d, G + 1010, G - 1010);
    TU_OK(vmdk_close(d));

    size_t alen;
    unsigned char *after = tu_read_all(base, &alen);
    assert_int_equal(alen, blen);
    assert_memory_equal(before, after, blen);
    free(before);
    free(after);

    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    tu_expect_zero(d, G, 1000);
    tu_expect_pattern(d, G + 1000, 10, 9);
    tu_expect_zero(d, G + 1010, G - 1010);
    tu_expect_pattern(d, 0, G, 1);
    TU_OK(vmdk_close(d));
}

static void test_unclean_flag(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.unclean, 0);

    /* an open without writes leaves the file as it was */
    size_t l0;
    unsigned char *b0 = tu_read_all(p, &l0);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_expect_zero(d, 0, 4096);
    TU_OK(vmdk_close(d));
    size_t l1;
    unsigned char *b1 = tu_read_all(p, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    free(b0);
    free(b1);

    /* set while written, cleared by a clean close */
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 100, 100, 1);
    TU_OK(vmdk_flush(d));
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.unclean, 1);
    TU_OK(vmdk_close(d));
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.unclean, 0);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.flags, 0x3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_io_monolithic, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_split, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gt_boundary, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_small_grain, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_block_status, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_zeroed_grain_base, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_zeroed_grain_over_parent, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_unclean_flag, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("sparse", tests, NULL, NULL);
}
