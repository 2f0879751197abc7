/* test_sesparse.c - seSparse extents (read-only).  The files are crafted
 * by hand from the layout in reference section 4.2: constant header,
 * volatile header, journal, grain directory, grain tables, free bitmap,
 * backmap and grains, with every kind of grain-table entry; then corrupt
 * variants of them (clear error naming the file, nothing written). */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/vdisk.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GRAIN (4 * KiB)
#define GT_COVER (16 * MiB)
#define CAP_SECTORS 98296ull               /* 3 GTs, the last one not full */
#define CAP (CAP_SECTORS * 512)

/* Layout of the crafted file, in sectors. */
enum {
    L_VH = 1, L_JH = 2, L_J = 3, L_GD = 4, L_GD_SIZE = 1, L_GTS = 8, L_GTS_SIZE = 4 * 64,
    L_BITMAP = 264, L_BACKMAP = 272, L_GRAINS = 280, L_GRAINS_SIZE = 8 * 5000,
};
#define N_GRAINS_IN_FILE 4100ull            /* the file ends after grain 4099 */

/* Constant header field offsets. */
enum {
    S_MAGIC = 0, S_VERSION = 8, S_CAPACITY = 16, S_GRAIN = 24, S_GT_SIZE = 32, S_FLAGS = 40,
    S_RESERVED1 = 48, S_VH = 80, S_VH_SIZE = 88, S_JH = 96, S_JH_SIZE = 104, S_J = 112,
    S_J_SIZE = 120, S_GD = 128, S_GD_SIZE = 136, S_GTS = 144, S_GTS_SIZE = 152,
    S_BITMAP = 160, S_BITMAP_SIZE = 168, S_BACKMAP = 176, S_BACKMAP_SIZE = 184,
    S_GRAINS = 192, S_GRAINS_SIZE = 200,
};
/* Volatile header. */
enum { V_MAGIC = 0, V_FREE_GT = 8, V_NEXT_TXN = 16, V_REPLAY = 24 };

#define GDE(idx) (0x1000000000000000ull | (uint64_t)(idx))
#define T_UNMAPPED 0x1000000000000000ull
#define T_ZERO 0x2000000000000000ull
static uint64_t t_alloc(uint64_t grain)
{
    return 0x3000000000000000ull | ((grain & 0xfff) << 48) | (grain >> 12);
}

/* What the disk must read as, per 4 KiB grain of the extent. */
enum kind { K_HOLE, K_ZERO, K_DATA };
struct expect {
    uint64_t disk_grain;
    enum kind kind;
    uint64_t file_grain;        /* K_DATA */
};

/* GD: table 0 -> GT area index 1, table 1 -> none, table 2 -> index 0. */
static const struct expect LAYOUT[] = {
    {0, K_DATA, 5},
    {1, K_DATA, 6},                     /* contiguous with the previous */
    {2, K_ZERO, 0},                     /* type 1: SCSI unmapped */
    {3, K_ZERO, 0},                     /* type 2: zeroed */
    {4, K_HOLE, 0},                     /* type 0 */
    {5, K_DATA, 4099},                  /* index needs the high bits */
    {6, K_DATA, 2},
    {7, K_DATA, 3},
    {4095, K_DATA, 9},                  /* the last grain of table 0 */
    {8192, K_DATA, 7},                  /* first grain of table 2 */
    {CAP_SECTORS / 8 - 1, K_DATA, 8},   /* the last grain of the disk */
};
#define NL (sizeof LAYOUT / sizeof LAYOUT[0])

static const char *ext_path(void) { return tu_path("s-sesparse.vmdk"); }

static uint64_t gte_offset(uint64_t disk_grain)
{
    uint64_t table = disk_grain / 4096;
    uint64_t area_index = table == 0 ? 1 : 0;      /* see the GD above */
    return (L_GTS + area_index * 64) * 512ull + (disk_grain % 4096) * 8;
}

static void write_descriptor(const char *ctype, const char *parent)
{
    char text[1024];
    char pl[256] = "parentCID=ffffffff\n";
    if (parent)
        snprintf(pl, sizeof pl, "parentCID=%08x\nparentFileNameHint=\"%s\"\n",
                 tu_cid_of(tu_path(parent)), parent);
    int n = snprintf(text, sizeof text,
                     "# Disk DescriptorFile\nversion=1\nCID=1234abcd\n%screateType=\"%s\"\n\n"
                     "# Extent description\nRW %llu SESPARSE \"s-sesparse.vmdk\"\n\n"
                     "# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n",
                     pl, ctype, (unsigned long long)CAP_SECTORS);
    tu_write_all(tu_path("s.vmdk"), text, (size_t)n);
}

/* s.vmdk + s-sesparse.vmdk as in LAYOUT; data grains hold tu_fill(seed 1)
 * for their disk offset. */
static void build(const char *ctype, const char *parent)
{
    const char *p = ext_path();
    unsigned char hdr[512] = {0};
    tu_write_all(p, hdr, sizeof hdr);
    tu_truncate(p, (L_GRAINS + N_GRAINS_IN_FILE * 8) * 512);
    tu_put_u64(p, S_MAGIC, 0xcafebabeull);
    tu_put_u64(p, S_VERSION, 0x0000000200000001ull);
    tu_put_u64(p, S_CAPACITY, CAP_SECTORS);
    tu_put_u64(p, S_GRAIN, 8);
    tu_put_u64(p, S_GT_SIZE, 64);
    tu_put_u64(p, S_VH, L_VH);
    tu_put_u64(p, S_VH_SIZE, 1);
    tu_put_u64(p, S_JH, L_JH);
    tu_put_u64(p, S_JH_SIZE, 1);
    tu_put_u64(p, S_J, L_J);
    tu_put_u64(p, S_J_SIZE, 1);
    tu_put_u64(p, S_GD, L_GD);
    tu_put_u64(p, S_GD_SIZE, L_GD_SIZE);
    tu_put_u64(p, S_GTS, L_GTS);
    tu_put_u64(p, S_GTS_SIZE, L_GTS_SIZE);
    tu_put_u64(p, S_BITMAP, L_BITMAP);
    tu_put_u64(p, S_BITMAP_SIZE, 8);
    tu_put_u64(p, S_BACKMAP, L_BACKMAP);
    tu_put_u64(p, S_BACKMAP_SIZE, 8);
    tu_put_u64(p, S_GRAINS, L_GRAINS);
    tu_put_u64(p, S_GRAINS_SIZE, L_GRAINS_SIZE);
    tu_put_u64(p, L_VH * 512 + V_MAGIC, 0xcafecafeull);
    tu_put_u64(p, L_VH * 512 + V_FREE_GT, 2);
    tu_put_u64(p, L_VH * 512 + V_NEXT_TXN, 1);
    tu_put_u64(p, L_GD * 512 + 0 * 8, GDE(1));
    tu_put_u64(p, L_GD * 512 + 2 * 8, GDE(0));
    unsigned char *g = malloc(GRAIN);
    assert_non_null(g);
    for (size_t i = 0; i < NL; i++) {
        const struct expect *x = &LAYOUT[i];
        uint64_t v = x->kind == K_HOLE ? 0 : x->kind == K_DATA ? t_alloc(x->file_grain)
                     : x->disk_grain == 2 ? T_UNMAPPED : T_ZERO;
        tu_put_u64(p, gte_offset(x->disk_grain), v);
        if (x->kind == K_DATA) {
            tu_fill(g, GRAIN, x->disk_grain * GRAIN, 1);
            tu_pwrite(p, (L_GRAINS + x->file_grain * 8) * 512, g, GRAIN);
        }
    }
    free(g);
    write_descriptor(ctype, parent);
}

/* Expected content of the whole disk; parent: the parent's bytes or NULL. */
static unsigned char *model(const unsigned char *parent)
{
    unsigned char *m = calloc(1, CAP);
    assert_non_null(m);
    if (parent)
        memcpy(m, parent, CAP);
    for (size_t i = 0; i < NL; i++) {
        const struct expect *x = &LAYOUT[i];
        if (x->kind == K_ZERO)
            memset(m + x->disk_grain * GRAIN, 0, GRAIN);
        else if (x->kind == K_DATA)
            tu_fill(m + x->disk_grain * GRAIN, GRAIN, x->disk_grain * GRAIN, 1);
    }
    return m;
}

static void verify(vmdk_disk *d, const unsigned char *m)
{
    static const size_t sizes[] = {1000003, 4096, 777, 3 * 1048576 + 5};
    unsigned char *buf = malloc(3 * MiB + 5);
    assert_non_null(buf);
    uint64_t off = 0;
    for (int i = 0; off < CAP; i++) {
        size_t n = sizes[i % 4];
        if (n > CAP - off)
            n = (size_t)(CAP - off);
        TU_OK(vmdk_pread(d, buf, n, off));
        if (memcmp(buf, m + off, n) != 0) {
            size_t k = 0;
            while (buf[k] == m[off + k])
                k++;
            fail_msg("disk byte %llu differs (read %zu at %llu)",
                     (unsigned long long)(off + k), n, (unsigned long long)off);
        }
        off += n;
    }
    free(buf);
}

static enum kind kind_at(uint64_t disk_grain)
{
    for (size_t i = 0; i < NL; i++)
        if (LAYOUT[i].disk_grain == disk_grain)
            return LAYOUT[i].kind;
    return K_HOLE;
}

static void test_read(void **state)
{
    build("seSparse", NULL);
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d));
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.type, VMDK_TYPE_SESPARSE);
    assert_string_equal(vmdk_type_name(li.type), "seSparse");
    assert_int_equal(li.grain_size, GRAIN);
    assert_int_equal(li.capacity, CAP);
    struct vmdk_extent_info ei;
    TU_OK(vmdk_extent_info(d, 0, 0, &ei));
    assert_string_equal(ei.kind, "SESPARSE");
    unsigned char *m = model(NULL);
    verify(d, m);
    free(m);

    /* Block status per grain, from the tables: data, zero (types 1, 2) and
     * holes (type 0, no table). */
    size_t units = CAP / GRAIN;
    int *st = calloc(units, sizeof *st);
    assert_non_null(st);
    tu_status_map(d, 0, GRAIN, units, 0, st);
    for (size_t g = 0; g < units; g++) {
        enum kind k = kind_at(g);
        int want = k == K_DATA ? VMDK_DATA : k == K_ZERO ? VMDK_ZERO : VMDK_HOLE;
        if (st[g] != want)
            fail_msg("grain %zu: status %d, expected %d", g, st[g], want);
    }
    /* Grains 0 and 1 are contiguous in the file: one run. */
    uint64_t run;
    int s;
    TU_OK(vmdk_block_status(d, 0, CAP, 1, &run, &s));
    assert_int_equal(s, VMDK_DATA);
    assert_int_equal(run, 2 * GRAIN);
    /* No table for 16-32 MiB. */
    TU_OK(vmdk_block_status(d, GT_COVER, GT_COVER, 1, &run, &s));
    assert_int_equal(s, VMDK_HOLE);
    assert_int_equal(run, GT_COVER);
    free(st);
    TU_OK(vmdk_close(d));

    /* GetInfo: no VixDiskLib type for seSparse. */
    struct vdisk *vd;
    TU_OK(vdisk_open_local(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &vd));
    struct vdisk_info info;
    TU_OK(vd->ops->info(vd, &info));
    assert_int_equal(info.disk_type, 256);
    assert_int_equal(info.capacity, CAP);
    vdisk_info_free(&info);
    TU_OK(vd->ops->close(vd));

    /* The spec's createType spelling. */
    write_descriptor("vmfsSeSparse", NULL);
    TU_OK(vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d));
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.type, VMDK_TYPE_SESPARSE);
    TU_OK(vmdk_close(d));
    assert_int_equal(vmdk_type_from_name("seSparse"), VMDK_TYPE_SESPARSE);
    assert_int_equal(vmdk_type_from_name("vmfsSeSparse"), VMDK_TYPE_SESPARSE);
}

/* Holes read the parent, zero grains do not. */
static void test_over_parent(void **state)
{
    const char *pp = tu_path("p.vmdk");
    TU_OK(tu_create(pp, VMDK_TYPE_MONOLITHIC_SPARSE, CAP, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(pp, 0, &d));
    struct tu_shadow ps;
    tu_shadow_init(&ps, CAP);
    tu_shadow_write(d, &ps, 0, 64 * KiB, 7);
    tu_shadow_write(d, &ps, GT_COVER + 12345, 100000, 8);
    tu_shadow_write(d, &ps, CAP - MiB, MiB, 9);
    TU_OK(vmdk_close(d));
    build("seSparse", "p.vmdk");
    TU_OK(vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    unsigned char *m = model(ps.buf);
    verify(d, m);
    free(m);
    TU_OK(vmdk_close(d));

    /* Opening for writing is refused up front, naming the extent. */
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_ERR(vmdk_open(tu_path("s.vmdk"), 0, &d), VD_E_READONLY);
    TU_MSG_HAS("s-sesparse.vmdk");
    TU_MSG_HAS("read-only");
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    /* The extent file itself is not a disk. */
    TU_ERR(vmdk_open(ext_path(), VMDK_OPEN_RDONLY, &d), VD_E_UNSUPPORTED);
    TU_MSG_HAS("seSparse");
    tu_shadow_free(&ps);
}

/* Opening fails (read-only and read-write) with code and a message naming
 * the extent file that contains needle; nothing is written. */
static void expect_open_fails(int code, const char *needle)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d = NULL;
    vd_err_clear();
    int rc = vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d);
    if (rc == 0) {
        vmdk_close(d);
        fail_msg("corrupt seSparse file opened; expected %s", needle);
    }
    if (rc != -code)
        fail_msg("open returned %d (%s), expected %d (%s): %s", rc, vd_err_name(rc), -code,
                 vd_err_name(code), vd_err_msg());
    TU_MSG_HAS("s-sesparse.vmdk");
    TU_MSG_HAS(needle);
    if (vmdk_open(tu_path("s.vmdk"), 0, &d) == 0) {
        vmdk_close(d);
        fail_msg("corrupt seSparse file opened read-write");
    }
    TU_MSG_HAS("s-sesparse.vmdk");
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void test_corrupt_open(void **state)
{
    static const struct {
        uint64_t off, value;
        int code;
        const char *needle;
    } cases[] = {
        {S_MAGIC, 0xcafebabfull, VD_E_CORRUPT, "bad magic"},
        {S_VERSION, 0x0000000100000001ull, VD_E_UNSUPPORTED, "version"},
        {S_GRAIN, 16, VD_E_UNSUPPORTED, "grain size 16"},
        {S_GT_SIZE, 32, VD_E_UNSUPPORTED, "grain table size"},
        {S_FLAGS, 1, VD_E_UNSUPPORTED, "flags"},
        {S_RESERVED1, 1, VD_E_UNSUPPORTED, "reserved"},
        {L_VH * 512 + V_REPLAY, 1, VD_E_UNSUPPORTED, "journal must be replayed"},
        {L_VH * 512 + V_MAGIC, 0xcafebabeull, VD_E_CORRUPT, "volatile header magic"},
        {S_VH, 1ull << 40, VD_E_CORRUPT, "volatile header"},
        {L_GD * 512, 0x2000000000000001ull, VD_E_CORRUPT, "top bits"},
        {L_GD * 512 + 16, 0x1000000100000000ull, VD_E_CORRUPT, "top bits"},
        {L_GD * 512, GDE(4), VD_E_CORRUPT, "outside the grain-table area"},
        {L_GD * 512, GDE(0xffffffffull), VD_E_CORRUPT, "outside the grain-table area"},
        {S_GTS, 1ull << 62, VD_E_CORRUPT, "outside"},
        {S_GD, 1ull << 62, VD_E_CORRUPT, "grain directory"},
        {S_GD_SIZE, 0, VD_E_CORRUPT, "needs 3"},
        {S_CAPACITY, UINT64_MAX, VD_E_CORRUPT, "capacity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build("seSparse", NULL);
        tu_put_u64(ext_path(), cases[i].off, cases[i].value);
        expect_open_fails(cases[i].code, cases[i].needle);
    }
    build("seSparse", NULL);
    tu_truncate(ext_path(), 300);
    expect_open_fails(VD_E_CORRUPT, "too short");
}

/* Bad grain-table entries surface when the table is read: the read and
 * block status fail, other tables still read. */
static void test_corrupt_gt(void **state)
{
    static const struct {
        uint64_t value;
        const char *needle;
    } cases[] = {
        {0x4000000000000000ull, "unknown type 4"},
        {0xf000000000000001ull, "unknown type 15"},
        {0x0000000000000005ull, "unallocated but not zero"},
        {0x3000000000000000ull | (4100ull >> 12) | ((4100ull & 0xfff) << 48), "past the grain"},
        {0x3000ffffffffffffull, "past the grain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        build("seSparse", NULL);
        tu_put_u64(ext_path(), gte_offset(100), cases[i].value);
        struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
        vmdk_disk *d;
        TU_OK(vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d));
        unsigned char buf[512];
        TU_ERR(vmdk_pread(d, buf, sizeof buf, 0), VD_E_CORRUPT);
        TU_MSG_HAS("s-sesparse.vmdk");
        TU_MSG_HAS(cases[i].needle);
        uint64_t run;
        int s;
        TU_ERR(vmdk_block_status(d, 0, GRAIN, 0, &run, &s), VD_E_CORRUPT);
        /* Table 2 is separate and fine. */
        unsigned char *g = malloc(GRAIN), *w = malloc(GRAIN);
        assert_true(g && w);
        TU_OK(vmdk_pread(d, g, GRAIN, 8192 * GRAIN));
        tu_fill(w, GRAIN, 8192 * GRAIN, 1);
        assert_memory_equal(g, w, GRAIN);
        free(g);
        free(w);
        TU_OK(vmdk_close(d));
        tu_assert_dir_unchanged(snap, tu_dir());
        tu_dirsnap_free(snap);
    }
    /* Grain 4099 (table 0) is inside the file but past a smaller grain
     * area. */
    build("seSparse", NULL);
    tu_put_u64(ext_path(), S_GRAINS_SIZE, 8 * 4000);
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("s.vmdk"), VMDK_OPEN_RDONLY, &d));
    unsigned char buf[512];
    TU_ERR(vmdk_pread(d, buf, sizeof buf, 0), VD_E_CORRUPT);
    TU_MSG_HAS("s-sesparse.vmdk");
    TU_MSG_HAS("grain 4099");
    TU_OK(vmdk_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_over_parent, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_open, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gt, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
