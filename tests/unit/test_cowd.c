/* test_cowd.c - vmfsSparse (COWD) extents: creation layout, I/O with
 * unaligned and partial-grain writes checked against a model and against
 * the on-disk tables, deferred and ordered table write-back, the
 * uncleanShutdown flag, copy-on-write from a monolithicSparse parent, a
 * simulated crash (only leaks), and corrupt headers and tables (clear
 * error naming the file, not a byte written).  Offsets are those of
 * reference section 4.1. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define CAP (5 * MiB + 3 * 512)          /* 10243 sectors: 3 GTs at grain 1 */

/* COWD header fields. */
enum {
    C_MAGIC = 0, C_VERSION = 4, C_FLAGS = 8, C_SECTORS = 12, C_GRAIN = 16, C_GD = 20,
    C_NGD = 24, C_FREE = 28, C_SAVED_GEN = 1636, C_UNCLEAN = 1648,
};
#define COWD_MAGIC 0x44574f43u

static int create_cowd(const char *path, uint64_t cap, uint32_t grain)
{
    struct vmdk_create_params p;
    memset(&p, 0, sizeof p);
    p.type = VMDK_TYPE_VMFS_SPARSE;
    p.capacity = cap;
    p.grain_sectors = grain;
    return vmdk_create(path, &p);
}

static uint32_t hdr(const char *delta, uint64_t field) { return tu_get_u32(delta, field); }

/* File sector of the grain holding disk byte off, 0 if unallocated.  Also
 * returns the GT's sector in *gt (0 if none). */
static uint32_t grain_sector(const char *delta, uint64_t off, uint32_t *gt)
{
    uint64_t grain = hdr(delta, C_GRAIN);
    uint64_t g = off / (grain * 512);
    uint32_t gde = tu_get_u32(delta, (uint64_t)hdr(delta, C_GD) * 512 + (g / 4096) * 4);
    *gt = gde;
    if (!gde)
        return 0;
    return tu_get_u32(delta, (uint64_t)gde * 512 + (g % 4096) * 4);
}

/* The delta file's tables against the model: every grain touched by a
 * write is allocated past its GT (GT written first), holds the model's
 * bytes, and is used once; every other grain is unallocated. */
static void check_delta(const char *delta, const struct tu_shadow *s, const uint8_t *touched)
{
    uint64_t gb = (uint64_t)hdr(delta, C_GRAIN) * 512;
    uint64_t ngr = (s->cap + gb - 1) / gb;
    size_t flen;
    unsigned char *img = tu_read_all(delta, &flen);
    uint8_t *used = calloc(flen / 512 + 1, 1);
    assert_non_null(used);
    for (uint64_t g = 0; g < ngr; g++) {
        uint32_t gt, e = grain_sector(delta, g * gb, &gt);
        if (!touched[g]) {
            if (e != 0)
                fail_msg("%s: grain %llu never written but GTE is %u", delta,
                         (unsigned long long)g, e);
            continue;
        }
        if (gt == 0 || e == 0)
            fail_msg("%s: written grain %llu is not allocated (GDE %u, GTE %u)", delta,
                     (unsigned long long)g, gt, e);
        if (e <= gt || (uint64_t)e * 512 + gb > flen)
            fail_msg("%s: grain %llu at sector %u (GT at %u, file %zu bytes)", delta,
                     (unsigned long long)g, e, gt, flen);
        if (used[e])
            fail_msg("%s: sector %u used by two grains", delta, e);
        used[e] = 1;
        uint64_t n = s->cap - g * gb < gb ? s->cap - g * gb : gb;
        if (memcmp(img + (uint64_t)e * 512, s->buf + g * gb, n) != 0)
            fail_msg("%s: grain %llu (sector %u) does not hold the written data", delta,
                     (unsigned long long)g, e);
    }
    free(used);
    free(img);
}

static void mark(uint8_t *touched, uint64_t off, size_t len, uint64_t gb)
{
    for (uint64_t g = off / gb; g <= (off + len - 1) / gb; g++)
        touched[g] = 1;
}

/* ---- creation ------------------------------------------------------------ */

static void test_create_layout(void **state)
{
    const char *p = tu_path("d.vmdk"), *delta = tu_path("d-delta.vmdk");
    TU_OK(create_cowd(p, CAP, 0));
    char **names;
    size_t n = tu_list_dir(tu_dir(), &names);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "d-delta.vmdk");
    assert_string_equal(names[1], "d.vmdk");
    tu_free_names(names, n);

    char *text = (char *)tu_read_all(p, NULL);
    if (!strstr(text, "createType=\"vmfsSparse\"") ||
        !strstr(text, "RW 10243 VMFSSPARSE \"d-delta.vmdk\"\n"))
        fail_msg("unexpected descriptor:\n%s", text);
    free(text);

    assert_int_equal(hdr(delta, C_MAGIC), COWD_MAGIC);
    unsigned char m[4];
    tu_pread(delta, 0, m, 4);
    assert_memory_equal(m, "COWD", 4);
    assert_int_equal(hdr(delta, C_VERSION), 1);
    assert_int_equal(hdr(delta, C_FLAGS), 3);
    assert_int_equal(hdr(delta, C_SECTORS), 10243);
    assert_int_equal(hdr(delta, C_GRAIN), 1);
    assert_int_equal(hdr(delta, C_GD), 4);
    assert_int_equal(hdr(delta, C_NGD), 3);
    assert_int_equal(hdr(delta, C_FREE), 5);
    assert_int_equal(hdr(delta, C_SAVED_GEN), 0);
    assert_int_equal(hdr(delta, C_UNCLEAN), 0);
    assert_int_equal(tu_file_size(delta), 5 * 512);

    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.type, VMDK_TYPE_VMFS_SPARSE);
    assert_string_equal(li.create_type, "vmfsSparse");
    assert_int_equal(li.grain_size, 512);
    assert_int_equal(li.capacity, CAP);
    struct vmdk_extent_info ei;
    TU_OK(vmdk_extent_info(d, 0, 0, &ei));
    assert_string_equal(ei.kind, "VMFSSPARSE");
    tu_expect_zero(d, 0, CAP);
    uint64_t run;
    int st;
    TU_OK(vmdk_block_status(d, 0, CAP, 0, &run, &st));
    assert_int_equal(run, CAP);
    assert_int_equal(st, VMDK_HOLE);
    TU_OK(vmdk_close(d));

    /* The delta file itself is not a disk. */
    TU_ERR(vmdk_open(delta, VMDK_OPEN_RDONLY, &d), VD_E_UNSUPPORTED);
    TU_MSG_HAS("COWD");
    TU_MSG_HAS("d-delta.vmdk");

    /* Limits. */
    TU_ERR(create_cowd(tu_path("big.vmdk"), (uint64_t)UINT32_MAX * 512 + 512, 0), VD_E_INVAL);
    TU_ERR(create_cowd(tu_path("g.vmdk"), MiB, 4096), VD_E_INVAL);
    assert_false(tu_exists(tu_path("big-delta.vmdk")));
    assert_false(tu_exists(tu_path("g-delta.vmdk")));
    TU_ERR(create_cowd(p, CAP, 0), VD_E_EXISTS);
}

/* ---- I/O on a base vmfsSparse disk --------------------------------------- */

struct w { uint64_t off; size_t len; };

static const struct w WRITES[] = {
    {12345, 1000},                      /* inside one 4 KiB area, unaligned */
    {2 * MiB - 700, 1400},              /* crosses the GT 0/1 boundary */
    {100, 10},                          /* inside a sector (partial grain) */
    {4 * MiB + 3 * 512 + 7, 300000},    /* many grains, into the last GT */
    {CAP - 1, 1},                       /* the last byte */
    {12000, 2000},                      /* overwrites allocated grains and more */
    {3 * MiB, 64 * KiB},                /* aligned */
};
#define NW (sizeof WRITES / sizeof WRITES[0])

static void run_io(uint32_t grain)
{
    const char *p = tu_path("d.vmdk"), *delta = tu_path("d-delta.vmdk");
    TU_OK(create_cowd(p, CAP, grain));
    tu_put_u32(delta, C_SAVED_GEN, 0x12345678);   /* must survive untouched */
    uint64_t gb = (uint64_t)(grain ? grain : 1) * 512;
    uint8_t *touched = calloc(CAP / gb + 1, 1);
    assert_non_null(touched);
    struct tu_shadow s;
    tu_shadow_init(&s, CAP);
    uint32_t free0 = hdr(delta, C_FREE);

    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (size_t i = 0; i < NW; i++) {
        tu_shadow_write(d, &s, WRITES[i].off, WRITES[i].len, (uint32_t)i + 1);
        mark(touched, WRITES[i].off, WRITES[i].len, gb);
        tu_shadow_verify_range(d, &s, WRITES[i].off > 5000 ? WRITES[i].off - 5000 : 0,
                               10000 + WRITES[i].len > CAP - WRITES[i].off
                                   ? CAP - (WRITES[i].off > 5000 ? WRITES[i].off - 5000 : 0)
                                   : 10000 + WRITES[i].len);
    }
    tu_shadow_verify(d, &s);
    /* Before a flush the tables on disk are untouched (they are written
     * only after the grains they point at are durable). */
    assert_int_equal(hdr(delta, C_UNCLEAN), 1);
    assert_int_equal(hdr(delta, C_FREE), free0);
    for (int g = 0; g < 3; g++)
        assert_int_equal(tu_get_u32(delta, 4 * 512 + g * 4), 0);
    TU_OK(vmdk_flush(d));
    assert_int_equal(hdr(delta, C_FREE) * 512ull, tu_file_size(delta));
    check_delta(delta, &s, touched);
    assert_int_equal(hdr(delta, C_UNCLEAN), 1);
    TU_OK(vmdk_close(d));
    assert_int_equal(hdr(delta, C_UNCLEAN), 0);
    assert_int_equal(hdr(delta, C_SAVED_GEN), 0x12345678);
    assert_int_equal(hdr(delta, C_FREE) * 512ull, tu_file_size(delta));
    check_delta(delta, &s, touched);

    /* Reopen: same content; more writes over allocated and new grains. */
    TU_OK(vmdk_open(p, 0, &d));
    tu_shadow_verify(d, &s);
    tu_shadow_write(d, &s, 12300, 100000, 77);
    mark(touched, 12300, 100000, gb);
    tu_shadow_write(d, &s, 2 * MiB + 1, 511, 78);
    mark(touched, 2 * MiB + 1, 511, gb);
    TU_OK(vmdk_close(d));
    check_delta(delta, &s, touched);
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    /* Block status from the tables only. */
    size_t units = CAP / gb;
    int *st = calloc(units, sizeof *st);
    assert_non_null(st);
    tu_status_map(d, 0, gb, units, 0, st);
    for (size_t g = 0; g < units; g++)
        if (st[g] != (touched[g] ? VMDK_DATA : VMDK_HOLE))
            fail_msg("grain %zu: status %d, expected %s", g, st[g],
                     touched[g] ? "DATA" : "HOLE");
    free(st);
    TU_OK(vmdk_close(d));
    assert_int_equal(hdr(delta, C_SAVED_GEN), 0x12345678);
    free(touched);
    tu_shadow_free(&s);
}

static void test_io_grain1(void **state) { run_io(0); }
static void test_io_grain16(void **state) { run_io(16); }

/* More grain tables than the cache holds: dirty tables are written back
 * on eviction and read back correctly. */
static void test_many_tables(void **state)
{
    const uint64_t cap = 160 * MiB;           /* 80 GTs at grain 1 */
    const char *p = tu_path("d.vmdk"), *delta = tu_path("d-delta.vmdk");
    TU_OK(create_cowd(p, cap, 0));
    struct tu_shadow s;
    tu_shadow_init(&s, cap);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    for (uint64_t gt = 0; gt < 80; gt++)
        tu_shadow_write(d, &s, gt * 2 * MiB + 1000 + gt, 700, (uint32_t)gt + 1);
    for (uint64_t gt = 0; gt < 80; gt += 7)
        tu_shadow_write(d, &s, gt * 2 * MiB + 1200, 5000, (uint32_t)gt + 100);
    for (uint64_t gt = 0; gt < 80; gt++)
        tu_shadow_verify_range(d, &s, gt * 2 * MiB, 8192);
    TU_OK(vmdk_close(d));
    assert_int_equal(hdr(delta, C_FREE) * 512ull, tu_file_size(delta));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    for (uint64_t gt = 0; gt < 80; gt++)
        tu_shadow_verify_range(d, &s, gt * 2 * MiB, 8192);
    TU_OK(vmdk_close(d));
    for (uint64_t gt = 0; gt < 80; gt++) {
        uint32_t gde, e = grain_sector(delta, gt * 2 * MiB + 1000 + gt, &gde);
        assert_int_not_equal(gde, 0);
        assert_int_not_equal(e, 0);
    }
    tu_shadow_free(&s);
}

/* ---- as the child of a monolithicSparse parent --------------------------- */

static void make_child(uint32_t grain, uint64_t cap, struct tu_shadow *s)
{
    const char *pp = tu_path("p.vmdk"), *cp = tu_path("c.vmdk");
    TU_OK(tu_create(pp, VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(pp, 0, &d));
    tu_shadow_init(s, cap);
    tu_shadow_write(d, s, 0, (size_t)cap, 9);
    TU_OK(vmdk_close(d));
    TU_OK(create_cowd(cp, cap, grain));
    char repl[128];
    snprintf(repl, sizeof repl, "parentCID=%08x\nparentFileNameHint=\"p.vmdk\"", tu_cid_of(pp));
    tu_replace_in_file(cp, "parentCID=ffffffff", repl);
}

static void run_child(uint32_t grain)
{
    const uint64_t cap = 3 * MiB + 512;
    const char *pp = tu_path("p.vmdk"), *cp = tu_path("c.vmdk"), *delta = tu_path("c-delta.vmdk");
    struct tu_shadow s;
    make_child(grain, cap, &s);
    size_t plen;
    unsigned char *pimg = tu_read_all(pp, &plen);
    uint64_t gb = (uint64_t)(grain ? grain : 1) * 512;
    uint8_t *touched = calloc(cap / gb + 1, 1);
    assert_non_null(touched);

    vmdk_disk *d;
    TU_OK(vmdk_open(cp, 0, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    tu_shadow_verify(d, &s);
    static const struct w cw[] = {
        {3, 5}, {1000, 3000}, {8192 + 100, 8192}, {2 * MiB - 10, 20}, {cap - 700, 700},
        {600 * KiB + 1, 1},
    };
    for (size_t i = 0; i < sizeof cw / sizeof cw[0]; i++) {
        tu_shadow_write(d, &s, cw[i].off, cw[i].len, (uint32_t)i + 40);
        mark(touched, cw[i].off, cw[i].len, gb);
    }
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));

    /* The parent is untouched. */
    size_t plen2;
    unsigned char *pimg2 = tu_read_all(pp, &plen2);
    assert_int_equal(plen, plen2);
    assert_memory_equal(pimg, pimg2, plen);
    free(pimg2);

    /* Reopened: the same through the chain. */
    TU_OK(vmdk_open(cp, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    /* The delta alone: touched grains are complete copies (written bytes
     * plus the parent's around them); the rest is holes. */
    check_delta(delta, &s, touched);
    TU_OK(vmdk_open(cp, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &d));
    unsigned char *buf = malloc(gb);
    assert_non_null(buf);
    for (uint64_t g = 0; g < cap / gb; g++) {
        TU_OK(vmdk_pread(d, buf, gb, g * gb));
        if (touched[g] ? memcmp(buf, s.buf + g * gb, gb) != 0 : !tu_is_zero(buf, gb))
            fail_msg("single-link read of grain %llu is wrong (touched %d)",
                     (unsigned long long)g, touched[g]);
    }
    free(buf);
    TU_OK(vmdk_close(d));

    /* A partial-grain write needs the parent: refused as a single link. */
    TU_OK(vmdk_open(cp, VMDK_OPEN_SINGLE_LINK, &d));
    uint64_t fresh = 0;
    while (touched[fresh / gb] || touched[fresh / gb + 1])
        fresh += gb;
    unsigned char b3[3] = {1, 2, 3};
    TU_ERR(vmdk_pwrite(d, b3, 3, fresh + 1), VD_E_UNSUPPORTED);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(cp, VMDK_OPEN_RDONLY, &d));
    tu_shadow_verify(d, &s);
    TU_OK(vmdk_close(d));
    free(pimg);
    free(touched);
    tu_shadow_free(&s);
}

static void test_child_grain1(void **state) { run_child(0); }
static void test_child_grain16(void **state) { run_child(16); }

/* ---- crash: unflushed allocations only leak ------------------------------ */

static void test_crash_leaks(void **state)
{
    const char *p = tu_path("d.vmdk"), *delta = tu_path("d-delta.vmdk");
    TU_OK(create_cowd(p, CAP, 0));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        vmdk_disk *d;
        unsigned char a[5000], b[5000];
        memset(a, 0xaa, sizeof a);
        memset(b, 0xbb, sizeof b);
        if (vmdk_open(p, 0, &d) < 0 || vmdk_pwrite(d, a, sizeof a, 100000) < 0 ||
            vmdk_flush(d) < 0 || vmdk_pwrite(d, b, sizeof b, 3 * MiB) < 0 ||
            vmdk_pwrite(d, b, sizeof b, 98000) < 0)
            _exit(1);
        _exit(0);                           /* no flush, no close */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(hdr(delta, C_UNCLEAN), 1);
    /* The flushed write is there; the unflushed allocation (in GT 1) is not,
     * and the overwrite of grains allocated and flushed before is. */
    assert_true(tu_file_size(delta) > (uint64_t)hdr(delta, C_FREE) * 512);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    unsigned char buf[5000], want[5000];
    TU_OK(vmdk_pread(d, buf, sizeof buf, 3 * MiB));
    assert_true(tu_is_zero(buf, sizeof buf));
    TU_OK(vmdk_pread(d, buf, sizeof buf, 100000));
    memset(want, 0xaa, sizeof want);
    memset(want, 0xbb, 3000);               /* 98000..103000 overwrote in place */
    assert_memory_equal(buf, want, sizeof want);
    /* New writes go past the leaked space and everything still reads. */
    memset(want, 0xcc, sizeof want);
    TU_OK(vmdk_pwrite(d, want, sizeof want, 3 * MiB));
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    TU_OK(vmdk_pread(d, buf, sizeof buf, 3 * MiB));
    assert_memory_equal(buf, want, sizeof want);
    TU_OK(vmdk_close(d));
    assert_int_equal(hdr(delta, C_UNCLEAN), 0);
    assert_int_equal(hdr(delta, C_FREE) * 512ull, tu_file_size(delta));
}

/* ---- corrupt input --------------------------------------------------------- */

/* d.vmdk with data in GT 0 (at 0) and GT 1 (at 3 MiB); returns the delta. */
static const char *make_corruptible(void)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(create_cowd(p, CAP, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 0, 4096, 1);
    tu_write_pattern(d, 3 * MiB, 4096, 2);
    TU_OK(vmdk_close(d));
    return tu_path("d-delta.vmdk");
}

/* Opening (read-write, then read-only) fails with code, the message names
 * the delta file, and the directory is byte-for-byte unchanged. */
static void expect_open_fails(int code, const char *needle)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    static const unsigned flags[] = {0, VMDK_OPEN_RDONLY};
    for (int i = 0; i < 2; i++) {
        vmdk_disk *d = NULL;
        vd_err_clear();
        int rc = vmdk_open(tu_path("d.vmdk"), flags[i], &d);
        if (rc == 0) {
            vmdk_close(d);
            fail_msg("corrupt disk opened (flags %u); expected %s", flags[i], needle);
        }
        if (rc != -code)
            fail_msg("open returned %d (%s), expected %d (%s): %s", rc, vd_err_name(rc), -code,
                     vd_err_name(code), vd_err_msg());
        TU_MSG_HAS("d-delta.vmdk");
        TU_MSG_HAS(needle);
    }
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

static void test_corrupt_header(void **state)
{
    const char *delta = make_corruptible();
    size_t len;
    unsigned char *orig = tu_read_all(delta, &len);
    uint32_t fsec = (uint32_t)(len / 512);
    static const struct {
        uint64_t field;
        uint32_t value;
        int code;
        const char *needle;
    } cases[] = {
        {C_MAGIC, 0x12345678, VD_E_CORRUPT, "bad magic"},
        {C_VERSION, 2, VD_E_UNSUPPORTED, "version 2"},
        {C_GRAIN, 0, VD_E_CORRUPT, "grain size 0"},
        {C_GRAIN, 3, VD_E_CORRUPT, "grain size 3"},
        {C_GRAIN, 4096, VD_E_CORRUPT, "grain size 4096"},
        {C_NGD, 2, VD_E_CORRUPT, "need 3"},
        {C_NGD, 0, VD_E_CORRUPT, "need 3"},
        {C_GD, 2, VD_E_CORRUPT, "overlaps the header"},
        {C_GD, UINT32_MAX, VD_E_CORRUPT, "past end of file"},
        {C_FREE, 4, VD_E_CORRUPT, "freeSector 4"},
        {C_SECTORS, UINT32_MAX, VD_E_CORRUPT, "need"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_write_all(delta, orig, len);
        tu_put_u32(delta, cases[i].field, cases[i].value);
        expect_open_fails(cases[i].code, cases[i].needle);
    }
    /* gdOffset and freeSector just past the end of file. */
    tu_write_all(delta, orig, len);
    tu_put_u32(delta, C_GD, fsec);
    expect_open_fails(VD_E_CORRUPT, "past end of file");
    tu_write_all(delta, orig, len);
    tu_put_u32(delta, C_FREE, fsec + 1);
    expect_open_fails(VD_E_CORRUPT, "past end of file");
    /* A header cut short. */
    tu_write_all(delta, orig, len);
    tu_truncate(delta, 1000);
    expect_open_fails(VD_E_CORRUPT, "too short");
    free(orig);
}

static void test_corrupt_gd(void **state)
{
    const char *delta = make_corruptible();
    size_t len;
    unsigned char *orig = tu_read_all(delta, &len);
    uint32_t fsec = (uint32_t)(len / 512);
    uint64_t gd = 4 * 512;
    /* A GT that would extend past the end of the file. */
    tu_put_u32(delta, gd, fsec - 8);
    expect_open_fails(VD_E_CORRUPT, "past end of file");
    tu_write_all(delta, orig, len);
    tu_put_u32(delta, gd + 8, UINT32_MAX);   /* a GD entry for an empty GT */
    expect_open_fails(VD_E_CORRUPT, "past end of file");
    tu_write_all(delta, orig, len);
    tu_put_u32(delta, gd + 4, 1);            /* into the header */
    expect_open_fails(VD_E_CORRUPT, "header or grain directory");
    free(orig);
}

/* Bad grain-table entries are found when the table is first needed: reads
 * and writes touching it fail, nothing is written. */
static void test_corrupt_gt(void **state)
{
    const char *p = tu_path("d.vmdk");
    const char *delta = make_corruptible();
    size_t len;
    unsigned char *orig = tu_read_all(delta, &len);
    uint32_t fsec = (uint32_t)(len / 512);
    uint32_t gt1;
    uint32_t e = grain_sector(delta, 3 * MiB, &gt1);
    assert_int_not_equal(e, 0);
    uint64_t slot = (uint64_t)gt1 * 512 + ((3 * MiB / 512) % 4096) * 4;
    static const uint32_t bad[] = {UINT32_MAX, 0, 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_all(delta, orig, len);
        uint32_t v = bad[i] ? bad[i] : fsec;    /* 0: exactly the end of file */
        tu_put_u32(delta, slot + 160, v);        /* an unwritten entry of GT 1 */
        struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
        vmdk_disk *d;
        TU_OK(vmdk_open(p, 0, &d));
        tu_expect_pattern(d, 0, 4096, 1);        /* GT 0 is fine */
        unsigned char buf[512];
        TU_ERR(vmdk_pread(d, buf, sizeof buf, 3 * MiB), VD_E_CORRUPT);
        TU_MSG_HAS("d-delta.vmdk");
        TU_MSG_HAS(v < 5 ? "header or grain directory" : "past end of file");
        memset(buf, 0x5a, sizeof buf);
        TU_ERR(vmdk_pwrite(d, buf, sizeof buf, 3 * MiB + 100 * KiB), VD_E_CORRUPT);
        TU_MSG_HAS("d-delta.vmdk");
        uint64_t run;
        int st;
        TU_ERR(vmdk_block_status(d, 2 * MiB, MiB, 0, &run, &st), VD_E_CORRUPT);
        TU_OK(vmdk_close(d));
        tu_assert_dir_unchanged(snap, tu_dir());
        tu_dirsnap_free(snap);
    }
    /* After an unclean shutdown an entry past the end of file is an
     * interrupted allocation: read as unallocated instead of refused. */
    tu_write_all(delta, orig, len);
    tu_put_u32(delta, slot + 160, fsec + 100);
    tu_put_u32(delta, C_UNCLEAN, 1);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 3 * MiB, 4096, 2);
    tu_expect_zero(d, 3 * MiB + 4096, 64 * KiB);
    free(orig);
    TU_OK(vmdk_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_layout, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_grain1, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_io_grain16, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_many_tables, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_child_grain1, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_child_grain16, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_crash_leaks, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gd, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_gt, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
