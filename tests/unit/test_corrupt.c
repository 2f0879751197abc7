/* test_corrupt.c - malformed input fails cleanly: a negative code, a detail
 * message naming the file, and not a single byte written (the disks are
 * opened read-write on purpose).  Corrupt files are valid disks made with
 * vmdk_create and then patched at the offsets of reference section 2.1. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define G (64 * KiB)
#define CAP (4 * MiB)

/* d.vmdk: monolithicSparse 4 MiB with data in grains 0 and 1.  Layout:
 * header 0, descriptor 1-20, RGD 21, RGTs 22-25, GD 26, GTs 27-30,
 * overHead 128. */
static const char *make_sparse(void)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, CAP, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 0, 2 * G, 1);
    TU_OK(vmdk_close(d));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.gd, 26);
    assert_int_equal(h.rgd, 21);
    assert_int_equal(h.overhead, 128);
    return p;
}

/* Opening (read-write, then read-only) fails with code (0: any error), the
 * message names the file, and the directory is byte-for-byte unchanged. */
static void expect_open_fails(const char *path, int code, const char *name)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    static const unsigned flags[] = {0, VMDK_OPEN_RDONLY};
    for (int i = 0; i < 2; i++) {
        vmdk_disk *d = NULL;
        vd_err_clear();
        int rc = vmdk_open(path, flags[i], &d);
        if (rc == 0) {
            vmdk_close(d);
            fail_msg("%s opened (flags %u) although it is corrupt", name, flags[i]);
        }
        if (code && rc != -code)
            fail_msg("open of %s returned %d (%s), expected %d (%s): %s", name, rc,
                     vd_err_name(rc), -code, vd_err_name(code), vd_err_msg());
        TU_MSG_HAS(name);
    }
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void expect_io_fails(const char *p, uint64_t off, size_t len, int write);

static void test_bad_magic(void **state)
{
    const char *p = make_sparse();
    tu_put_u32(p, TU_H_MAGIC, 0x12345678);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_pwrite(p, 0, "COWD", 4); /* right family, wrong magic for its content */
    expect_open_fails(p, 0, "d.vmdk");
}

static void test_truncated_header(void **state)
{
    const char *p = make_sparse();
    tu_truncate(p, 300);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_truncate(p, 511);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_truncate(p, 4);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
}

static void test_truncated_metadata(void **state)
{
    /* header intact, file cut inside the grain tables */
    const char *p = make_sparse();
    tu_truncate(p, 28 * 512);
    expect_io_fails(p, 0, 100, 0);
}

static void test_grain_size(void **state)
{
    static const uint64_t bad[] = {0, 100, 3, 1ull << 40};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_teardown(NULL);
        assert_int_equal(tu_setup(NULL), 0);
        const char *p = make_sparse();
        tu_put_u64(p, TU_H_GRAIN, bad[i]);
        expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    }
}

static void test_capacity_overflow(void **state)
{
    static const uint64_t bad[] = {1ull << 63, UINT64_MAX, 1ull << 55, 1ull << 40};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_teardown(NULL);
        assert_int_equal(tu_setup(NULL), 0);
        const char *p = make_sparse();
        tu_put_u64(p, TU_H_CAPACITY, bad[i]);
        expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    }
}

static void test_num_gtes(void **state)
{
    static const uint32_t bad[] = {0, 0x80000000u};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_teardown(NULL);
        assert_int_equal(tu_setup(NULL), 0);
        const char *p = make_sparse();
        tu_put_u32(p, TU_H_NUM_GTES, bad[i]);
        expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    }
}

static void test_gd_offset_past_eof(void **state)
{
    const char *p = make_sparse();
    tu_put_u64(p, TU_H_GD, 1ull << 30);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_put_u64(p, TU_H_GD, UINT64_MAX - 5);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
}

/* Read of [off, off+len) fails with VD_E_CORRUPT naming the file, or the
 * open already did; either way the directory is unchanged. */
static void expect_io_fails(const char *p, uint64_t off, size_t len, int write)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d = NULL;
    vd_err_clear();
    int rc = vmdk_open(p, 0, &d);
    if (rc == 0) {
        uint8_t *b = malloc(len);
        assert_non_null(b);
        memset(b, 0x5c, len);
        rc = write ? vmdk_pwrite(d, b, len, off) : vmdk_pread(d, b, len, off);
        free(b);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
        int crc = vmdk_close(d);
        if (rc == 0)
            fail_msg("%s of %zu bytes at %llu succeeded on a corrupt disk",
                     write ? "write" : "read", len, (unsigned long long)off);
        if (rc != -VD_E_CORRUPT)
            fail_msg("%s returned %d (%s), expected VD_E_CORRUPT: %s",
                     write ? "write" : "read", rc, vd_err_name(rc), msg);
        if (!strstr(msg, "d.vmdk"))
            fail_msg("message \"%s\" does not name d.vmdk", msg);
        (void)crc;
    } else {
        if (rc != -VD_E_CORRUPT)
            fail_msg("open returned %d (%s), expected VD_E_CORRUPT: %s", rc,
                     vd_err_name(rc), vd_err_msg());
        TU_MSG_HAS("d.vmdk");
    }
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void test_gd_entry_past_eof(void **state)
{
    const char *p = make_sparse();
    tu_put_u32(p, 26 * 512, 0x00ffff00u);
    tu_put_u32(p, 21 * 512, 0x00ffff00u);
    expect_io_fails(p, 0, 100, 0);
    expect_io_fails(p, G + 5, 100, 0);
    expect_io_fails(p, 3 * G, 100, 1);
}

static void test_gt_entry_past_eof(void **state)
{
    const char *p = make_sparse();
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    tu_set_gte(p, &h, 0, 0, 0x00ffff80u);
    tu_set_gte(p, &h, 0, 1, 0x00ffff80u);

    /* the open itself is fine (grain tables are checked as they are used)
     * and so are reads of other grains */
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    uint8_t b[100];
    vd_err_clear();
    TU_ERR(vmdk_pread(d, b, sizeof b, 10), VD_E_CORRUPT);
    TU_MSG_HAS("d.vmdk");
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void test_gt_entry_past_eof_write(void **state)
{
    const char *p = make_sparse();
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    tu_set_gte(p, &h, 0, 0, 0x00ffff80u);
    tu_set_gte(p, &h, 0, 1, 0x00ffff80u);
    expect_io_fails(p, 10, 100, 1);       /* an overwrite of "allocated" grain 0 */
    expect_io_fails(p, 3 * G, 100, 1);    /* a new grain in the same grain table */
}

/* A grain entry pointing into the metadata: writing through it would
 * overwrite the grain directory. */
static void test_gt_entry_into_metadata(void **state)
{
    const char *p = make_sparse();
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    tu_set_gte(p, &h, 2, 0, 26);
    tu_set_gte(p, &h, 2, 1, 26);
    expect_io_fails(p, 2 * G, G, 1);
}

static void test_newline_bytes(void **state)
{
    static const struct { uint64_t off; uint8_t v; } bad[] = {
        {TU_H_NL1, '\r'}, {TU_H_NL2, '\n'}, {TU_H_NL3, '\n'}, {TU_H_NL4, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_teardown(NULL);
        assert_int_equal(tu_setup(NULL), 0);
        const char *p = make_sparse();
        tu_put_u8(p, bad[i].off, bad[i].v);
        expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    }
    /* without flag bit 0 the bytes mean nothing */
    tu_teardown(NULL);
    assert_int_equal(tu_setup(NULL), 0);
    const char *p = make_sparse();
    tu_put_u8(p, TU_H_NL1, '\r');
    tu_put_u32(p, TU_H_FLAGS, 0x2);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 0, 2 * G, 1);
    TU_OK(vmdk_close(d));
}

static void test_embedded_descriptor(void **state)
{
    const char *p = make_sparse();
    tu_put_u64(p, TU_H_DESC_OFF, 1ull << 20);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_put_u64(p, TU_H_DESC_OFF, UINT64_MAX - 1);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    tu_put_u64(p, TU_H_DESC_OFF, 1);
    tu_put_u64(p, TU_H_DESC_SIZE, 1ull << 40);   /* absurd size */
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
}

static void test_garbage_embedded_descriptor(void **state)
{
    const char *p = make_sparse();
    uint8_t junk[20 * 512];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)((x >> 16) % 255 + 1);
    }
    tu_pwrite(p, 512, junk, sizeof junk);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
}

static void test_garbage_text_descriptor(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_FLAT, MiB, 0));
    uint8_t junk[3000];
    uint32_t x = 7;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    tu_write_all(p, junk, sizeof junk);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    /* text, but not a descriptor */
    static const char text[] = "hello\nthis is not a descriptor\n";
    tu_write_all(p, text, strlen(text));
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    /* a descriptor without extents */
    static const char noext[] = "# Disk DescriptorFile\nversion=1\nCID=12345678\n"
                                "parentCID=ffffffff\ncreateType=\"monolithicFlat\"\n";
    tu_write_all(p, noext, strlen(noext));
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
    /* an empty file */
    tu_write_all(p, "", 0);
    expect_open_fails(p, VD_E_CORRUPT, "d.vmdk");
}

static void test_missing_extent(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_FLAT, MiB, 0));
    tu_unlink(tu_path("d-flat.vmdk"));
    expect_open_fails(p, VD_E_NOTFOUND, "d-flat.vmdk");

    tu_teardown(NULL);
    assert_int_equal(tu_setup(NULL), 0);
    p = tu_path("d.vmdk");
    struct vmdk_create_params cp = {.type = VMDK_TYPE_SPLIT_SPARSE, .capacity = 3 * MiB,
                                    .split_size = MiB};
    TU_OK(vmdk_create(p, &cp));
    tu_unlink(tu_path("d-s002.vmdk"));
    expect_open_fails(p, VD_E_NOTFOUND, "d-s002.vmdk");
}

static void test_split_extent_header_bad(void **state)
{
    const char *p = tu_path("d.vmdk");
    struct vmdk_create_params cp = {.type = VMDK_TYPE_SPLIT_SPARSE, .capacity = 3 * MiB,
                                    .split_size = MiB};
    TU_OK(vmdk_create(p, &cp));
    tu_put_u64(tu_path("d-s003.vmdk"), TU_H_GRAIN, 0);
    expect_open_fails(p, VD_E_CORRUPT, "d-s003.vmdk");
}

/* The descriptor's extent size is authoritative (reference 5: "readers must
 * take sizes from the descriptor lines"); the engine documents that a
 * sparse extent larger in the descriptor than in its header reads as a hole
 * past the header's capacity and refuses writes there. */
static void test_extent_size_mismatch_smaller(void **state)
{
    const char *p = make_sparse();
    tu_replace_in_embedded(p, "RW 8192 SPARSE", "RW 4096 SPARSE");
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    assert_int_equal(vmdk_capacity(d), 2 * MiB);
    tu_expect_pattern(d, 0, 2 * G, 1);
    uint8_t b[10];
    TU_ERR(vmdk_pread(d, b, sizeof b, 2 * MiB), VD_E_RANGE);
    tu_write_pattern(d, 2 * MiB - 10, 10, 2);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 2 * MiB - 10, 10, 2);
    TU_OK(vmdk_close(d));
}

static void test_extent_size_mismatch_larger(void **state)
{
    const char *p = make_sparse();
    tu_replace_in_embedded(p, "RW 8192 SPARSE", "RW 16384 SPARSE");
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d;
    int rc = vmdk_open(p, 0, &d);
    if (rc != 0) {
        /* refusing the disk is also acceptable, if clean */
        assert_int_equal(rc, -VD_E_CORRUPT);
        TU_MSG_HAS("d.vmdk");
        tu_assert_dir_unchanged(snap, tu_dir());
        tu_dirsnap_free(snap);
        return;
    }
    assert_int_equal(vmdk_capacity(d), 8 * MiB);
    tu_expect_pattern(d, 0, 2 * G, 1);
    tu_expect_zero(d, 4 * MiB - 100, 4 * MiB + 100);
    uint8_t b[100];
    memset(b, 1, sizeof b);
    vd_err_clear();
    TU_ERR(vmdk_pwrite(d, b, sizeof b, 5 * MiB), VD_E_CORRUPT);
    TU_MSG_HAS("d.vmdk");
    TU_OK(vmdk_close(d));
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_magic, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_header, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_metadata, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_grain_size, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_capacity_overflow, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_num_gtes, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gd_offset_past_eof, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gd_entry_past_eof, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gt_entry_past_eof, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gt_entry_past_eof_write, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_gt_entry_into_metadata, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_newline_bytes, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_embedded_descriptor, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_embedded_descriptor, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_text_descriptor, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_extent, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_split_extent_header_bad, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_extent_size_mismatch_smaller, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_extent_size_mismatch_larger, tu_setup,
                                        tu_teardown),
    };
    return cmocka_run_group_tests_name("corrupt", tests, NULL, NULL);
}
