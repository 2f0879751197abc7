/* test_flat.c - FLAT and VMFS extents: monolithicFlat, twoGbMaxExtentFlat,
 * vmfs, vmfsThin; flat extents with a file offset; ZERO extents. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define CAP (3 * MiB + 512 * KiB)
#define SPLIT MiB

struct w { uint64_t off; size_t len; };
static const struct w WRITES[] = {
    {12345, 1000},
    {65536 - 100, 300},
    {MiB - 5000, 70000},              /* crosses the first extent boundary */
    {2 * MiB - 1, 2},                 /* one byte each side of a boundary */
    {2 * MiB + 3 * 65536 + 7, 200000},
    {MiB - 100, 50},                  /* overwrite */
    {CAP - 777, 777},                 /* the end of the disk */
};
#define NW (sizeof WRITES / sizeof WRITES[0])

/* The flat files hold exactly the disk's bytes, extent after extent. */
static void check_files(enum vmdk_type type, const struct tu_shadow *s)
{
    if (type != VMDK_TYPE_SPLIT_FLAT) {
        size_t len;
        unsigned char *img = tu_read_all(tu_path("d-flat.vmdk"), &len);
        assert_int_equal(len, CAP);
        assert_memory_equal(img, s->buf, CAP);
        free(img);
        return;
    }
    for (int e = 0; e < 4; e++) {
        char name[32];
        snprintf(name, sizeof name, "d-f%03d.vmdk", e + 1);
        size_t len;
        unsigned char *img = tu_read_all(tu_path(name), &len);
        size_t want = e < 3 ? SPLIT : CAP - 3 * SPLIT;
        assert_int_equal(len, want);
        if (memcmp(img, s->buf + (uint64_t)e * SPLIT, want) != 0)
            fail_msg("%s does not hold bytes %llu.. of the disk", name,
                     (unsigned long long)e * SPLIT);
        free(img);
    }
}

/* A thin flat file reports its holes as zeros (SEEK_DATA); every 4 KiB
 * block holding written data is DATA, and the disk has holes. */
static void check_status_thin(vmdk_disk *d, const struct tu_shadow *s)
{
    static int st[CAP / 4096];
    int holes = 0;
    for (int single = 0; single < 2; single++) {
        tu_status_map(d, 0, 4096, CAP / 4096, single, st);
        for (size_t i = 0; i < CAP / 4096; i++) {
            holes += st[i] == VMDK_ZERO;
            if (st[i] != VMDK_DATA && !tu_is_zero(s->buf + i * 4096, 4096))
                fail_msg("thin disk: block %zu holds data but has status %d", i, st[i]);
        }
    }
    assert_true(holes > 0);
}

static void check_status_data(vmdk_disk *d)
{
    int st[CAP / 65536];
    for (int single = 0; single < 2; single++) {
        tu_status_map(d, 0, 65536, CAP / 65536, single, st);
        for (size_t i = 0; i < CAP / 65536; i++)
            if (st[i] != VMDK_DATA)
                fail_msg("flat disk: unit %zu has status %d, expected DATA", i, st[i]);
    }
}

static void run_io(enum vmdk_type type)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, type, CAP, SPLIT));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    assert_int_equal(vmdk_capacity(d), CAP);
    struct tu_shadow s;
    tu_shadow_init(&s, CAP);
    tu_shadow_verify(d, &s);
    for (size_t i = 0; i < NW; i++)
        tu_shadow_write(d, &s, WRITES[i].off, WRITES[i].len, (uint32_t)i + 1);
    tu_shadow_verify(d, &s);
    for (int e = 1; e < 4; e++)
        tu_shadow_verify_range(d, &s, (uint64_t)e * SPLIT - 3, 6);
    if (type == VMDK_TYPE_VMFS_THIN)
        check_status_thin(d, &s);
    else
        check_status_data(d);

    TU_OK(vmdk_flush(d));
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    uint8_t buf[512];
    memset(buf, 0xab, sizeof buf);
    TU_ERR(vmdk_pwrite(d, buf, 200, CAP - 100), VD_E_RANGE);
    TU_ERR(vmdk_pwrite(d, buf, 1, CAP), VD_E_RANGE);
    TU_ERR(vmdk_pwrite(d, buf, 100, UINT64_MAX - 10), VD_E_RANGE);
    TU_ERR(vmdk_pread(d, buf, 200, CAP - 100), VD_E_RANGE);
    TU_ERR(vmdk_pread(d, buf, 1, CAP), VD_E_RANGE);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    TU_OK(vmdk_close(d));
    check_files(type, &s);

    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    TU_ERR(vmdk_pwrite(d, buf, 10, 0), VD_E_READONLY);
    TU_OK(vmdk_close(d));

    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_write(d, &s, 3 * MiB - 10, 20, 50);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    check_files(type, &s);
    tu_shadow_free(&s);
}

static void test_io_monolithic_flat(void **state) { run_io(VMDK_TYPE_MONOLITHIC_FLAT); }
static void test_io_split_flat(void **state) { run_io(VMDK_TYPE_SPLIT_FLAT); }
static void test_io_vmfs(void **state) { run_io(VMDK_TYPE_VMFS_FLAT); }
static void test_io_vmfs_thin(void **state) { run_io(VMDK_TYPE_VMFS_THIN); }

/* A FLAT extent that starts 64 sectors into its file. */
static void test_flat_offset_mapping(void **state)
{
    const uint64_t skip = 64 * 512, cap = MiB, tail = 4096;
    uint8_t *raw = malloc(skip + cap + tail);
    assert_non_null(raw);
    tu_fill(raw, skip + cap + tail, 0, 77);
    tu_write_all(tu_path("raw.bin"), raw, skip + cap + tail);
    static const char desc[] =
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=12345678\n"
        "parentCID=ffffffff\n"
        "createType=\"monolithicFlat\"\n"
        "\n"
        "# Extent description\n"
        "RW 2048 FLAT \"raw.bin\" 64\n"
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        "ddb.adapterType = \"lsilogic\"\n";
    tu_write_all(tu_path("d.vmdk"), desc, strlen(desc));

    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("d.vmdk"), 0, &d));
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    TU_OK(vmdk_pread(d, b, cap, 0));
    if (memcmp(b, raw + skip, cap) != 0)
        fail_msg("FLAT offset 64: disk byte 0 is not file byte 32768");
    /* a write lands 64 sectors into the file; the bytes around stay */
    uint8_t x[100];
    memset(x, 0x11, sizeof x);
    TU_OK(vmdk_pwrite(d, x, sizeof x, 10));
    memcpy(raw + skip + 10, x, sizeof x);
    TU_OK(vmdk_close(d));
    size_t len;
    unsigned char *img = tu_read_all(tu_path("raw.bin"), &len);
    assert_int_equal(len, skip + cap + tail);
    assert_memory_equal(img, raw, len);
    free(img);
    free(b);
    free(raw);
}

/* A FLAT extent followed by a ZERO extent. */
static void test_zero_extent(void **state)
{
    uint8_t *raw = malloc(MiB);
    assert_non_null(raw);
    tu_fill(raw, MiB, 0, 5);
    tu_write_all(tu_path("d-flat.vmdk"), raw, MiB);
    static const char desc[] =
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=12345678\n"
        "parentCID=ffffffff\n"
        "createType=\"custom\"\n"
        "\n"
        "# Extent description\n"
        "RW 2048 FLAT \"d-flat.vmdk\" 0\n"
        "RW 1024 ZERO\n"
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        "ddb.adapterType = \"lsilogic\"\n";
    tu_write_all(tu_path("d.vmdk"), desc, strlen(desc));
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("d.vmdk"), VMDK_OPEN_RDONLY, &d));
    assert_int_equal(vmdk_capacity(d), MiB + 512 * KiB);
    struct vmdk_extent_info ei;
    TU_OK(vmdk_extent_info(d, 0, 1, &ei));
    assert_string_equal(ei.kind, "ZERO");
    assert_null(ei.path);
    assert_int_equal(ei.start, MiB);
    tu_expect_pattern(d, MiB - 100, 100, 5);
    tu_expect_zero(d, MiB, 512 * KiB);
    uint8_t b[200];
    TU_OK(vmdk_pread(d, b, sizeof b, MiB - 100));
    assert_int_equal(tu_check(b, 100, MiB - 100, 5), -1);
    assert_true(tu_is_zero(b + 100, 100));
    int st[24];
    tu_status_map(d, 0, 65536, 24, 0, st);
    for (int i = 0; i < 24; i++)
        assert_int_equal(st[i], i < 16 ? VMDK_DATA : VMDK_ZERO);
    TU_OK(vmdk_close(d));
    free(raw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_io_monolithic_flat, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_split_flat, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_vmfs, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_vmfs_thin, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_flat_offset_mapping, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_zero_extent, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("flat", tests, NULL, NULL);
}
