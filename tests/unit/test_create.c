/* test_create.c - vmdk_create: files, descriptors, headers, geometry, ddb. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024ull)
#define GiB (1024ull * MiB)

struct type_case {
    enum vmdk_type type;
    const char *create_type;
    const char *files[6];  /* expected directory contents, sorted */
    int extents;
    const char *kind;
};

/* capacity 3.5 MiB, split 1 MiB */
static const struct type_case CASES[] = {
    {VMDK_TYPE_MONOLITHIC_SPARSE, "monolithicSparse", {"d.vmdk"}, 1, "SPARSE"},
    {VMDK_TYPE_MONOLITHIC_FLAT, "monolithicFlat", {"d-flat.vmdk", "d.vmdk"}, 1, "FLAT"},
    {VMDK_TYPE_SPLIT_SPARSE, "twoGbMaxExtentSparse",
     {"d-s001.vmdk", "d-s002.vmdk", "d-s003.vmdk", "d-s004.vmdk", "d.vmdk"}, 4, "SPARSE"},
    {VMDK_TYPE_SPLIT_FLAT, "twoGbMaxExtentFlat",
     {"d-f001.vmdk", "d-f002.vmdk", "d-f003.vmdk", "d-f004.vmdk", "d.vmdk"}, 4, "FLAT"},
    {VMDK_TYPE_VMFS_FLAT, "vmfs", {"d-flat.vmdk", "d.vmdk"}, 1, "VMFS"},
    /* ESXi writes createType "vmfs" for thin disks too, marked by
     * ddb.thinProvisioned = "1" (reference 1.3, 4.3); "vmfsThin" is the
     * spec's name.  Both are accepted below. */
    {VMDK_TYPE_VMFS_THIN, "vmfs", {"d-flat.vmdk", "d.vmdk"}, 1, "VMFS"},
};
#define NCASES (sizeof CASES / sizeof CASES[0])
#define CAP (3 * MiB + 512 * 1024)
#define SPLIT (1 * MiB)

static void expect_dir(const char *const *want)
{
    char **names;
    size_t n = tu_list_dir(tu_dir(), &names);
    size_t w = 0;
    while (want[w])
        w++;
    char got[1024] = "";
    for (size_t i = 0; i < n; i++) {
        strncat(got, names[i], sizeof got - strlen(got) - 2);
        strncat(got, " ", sizeof got - strlen(got) - 1);
    }
    if (n != w)
        fail_msg("expected %zu files, found %zu: %s", w, n, got);
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], want[i]) != 0)
            fail_msg("expected file %s, found: %s", want[i], got);
    tu_free_names(names, n);
}

static void remove_all(void)
{
    char **names;
    size_t n = tu_list_dir(tu_dir(), &names);
    for (size_t i = 0; i < n; i++)
        tu_unlink(tu_path(names[i]));
    tu_free_names(names, n);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void test_files_and_info(void **state)
{
    for (size_t c = 0; c < NCASES; c++) {
        const struct type_case *tc = &CASES[c];
        remove_all();
        TU_OK(tu_create(tu_path("d.vmdk"), tc->type, CAP, SPLIT));
        expect_dir(tc->files);

        vmdk_disk *d = NULL;
        TU_OK(vmdk_open(tu_path("d.vmdk"), VMDK_OPEN_RDONLY, &d));
        assert_int_equal(vmdk_capacity(d), CAP);
        assert_int_equal(vmdk_num_links(d), 1);
        assert_true(vmdk_is_readonly(d));
        struct vmdk_link_info li;
        TU_OK(vmdk_link_info(d, 0, &li));
        assert_int_equal(li.type, tc->type);
        if (tc->type == VMDK_TYPE_VMFS_THIN) {
            if (strcmp(li.create_type, "vmfsThin") != 0) {
                assert_string_equal(li.create_type, "vmfs");
                char *thin = NULL;
                TU_OK(vmdk_meta_get(d, "thinProvisioned", &thin));
                assert_string_equal(thin, "1");
                free(thin);
            }
        } else {
            assert_string_equal(li.create_type, tc->create_type);
        }
        if (tc->type == VMDK_TYPE_VMFS_FLAT) {
            char *thin = NULL;
            if (vmdk_meta_get(d, "thinProvisioned", &thin) == 0) {
                assert_string_not_equal(thin, "1");
                free(thin);
            }
        }
        assert_int_equal(li.capacity, CAP);
        assert_int_equal(li.num_extents, tc->extents);
        assert_int_equal(li.parent_cid, 0xffffffffu);
        assert_null(li.parent_hint);
        assert_true(li.cid != 0xffffffffu && li.cid != 0xfffffffeu);
        if (strcmp(tc->kind, "SPARSE") == 0)
            assert_int_equal(li.grain_size, 65536);
        else
            assert_int_equal(li.grain_size, 0);
        assert_true(ends_with(li.path, "d.vmdk"));

        uint64_t start = 0;
        for (int e = 0; e < tc->extents; e++) {
            struct vmdk_extent_info ei;
            TU_OK(vmdk_extent_info(d, 0, e, &ei));
            assert_string_equal(ei.kind, tc->kind);
            assert_string_equal(ei.access, "RW");
            assert_int_equal(ei.start, start);
            uint64_t want_len = tc->extents == 1 ? CAP : (e < 3 ? SPLIT : CAP - 3 * SPLIT);
            assert_int_equal(ei.length, want_len);
            assert_non_null(ei.path);
            const char *want_file = tc->files[tc->extents == 1 && tc->files[1] ? 0 : e];
            if (!ends_with(ei.path, want_file))
                fail_msg("extent %d path %s, expected ...%s", e, ei.path, want_file);
            if (strcmp(tc->kind, "SPARSE") != 0) {
                assert_int_equal(ei.file_offset, 0);
                /* flat files are exactly as long as their extent */
                char full[4096];
                snprintf(full, sizeof full, "%s", ei.path[0] == '/' ? ei.path
                                                                   : tu_path(ei.path));
                assert_int_equal(tu_file_size(full), want_len);
            }
            start += ei.length;
        }
        struct vmdk_extent_info ei;
        assert_true(vmdk_extent_info(d, 0, tc->extents, &ei) < 0);
        assert_true(vmdk_link_info(d, 1, &li) < 0);
        TU_OK(vmdk_close(d));
    }
}

static void test_text_descriptors(void **state)
{
    static const struct { enum vmdk_type t; const char *lines[5]; } want[] = {
        {VMDK_TYPE_MONOLITHIC_FLAT, {"createType=\"monolithicFlat\"\n",
                                     "RW 7168 FLAT \"d-flat.vmdk\" 0\n"}},
        {VMDK_TYPE_SPLIT_FLAT, {"createType=\"twoGbMaxExtentFlat\"\n",
                                "RW 2048 FLAT \"d-f001.vmdk\" 0\n",
                                "RW 2048 FLAT \"d-f003.vmdk\" 0\n",
                                "RW 1024 FLAT \"d-f004.vmdk\" 0\n"}},
        {VMDK_TYPE_SPLIT_SPARSE, {"createType=\"twoGbMaxExtentSparse\"\n",
                                  "RW 2048 SPARSE \"d-s001.vmdk\"\n",
                                  "RW 1024 SPARSE \"d-s004.vmdk\"\n"}},
        {VMDK_TYPE_VMFS_FLAT, {"createType=\"vmfs\"\n", "RW 7168 VMFS \"d-flat.vmdk\"\n"}},
        {VMDK_TYPE_VMFS_THIN, {"RW 7168 VMFS \"d-flat.vmdk\"\n"}},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        remove_all();
        TU_OK(tu_create(tu_path("d.vmdk"), want[i].t, CAP, SPLIT));
        char *text = (char *)tu_read_all(tu_path("d.vmdk"), NULL);
        if (strncmp(text, "# Disk DescriptorFile\n", 22) != 0)
            fail_msg("descriptor does not start with the canonical comment:\n%s", text);
        assert_non_null(strstr(text, "\nversion=1\n"));
        assert_non_null(strstr(text, "\nparentCID=ffffffff\n"));
        const char *cid = strstr(text, "\nCID=");
        assert_non_null(cid);
        assert_true(cid < strstr(text, "\nparentCID="));
        assert_int_equal(strspn(cid + 5, "0123456789abcdef"), 8);
        if (want[i].t == VMDK_TYPE_VMFS_THIN && !strstr(text, "createType=\"vmfsThin\"\n") &&
            !(strstr(text, "createType=\"vmfs\"\n") &&
              strstr(text, "\nddb.thinProvisioned = \"1\"\n")))
            fail_msg("thin disk is neither vmfsThin nor vmfs + thinProvisioned:\n%s", text);
        for (size_t l = 0; want[i].lines[l]; l++)
            if (!strstr(text, want[i].lines[l]))
                fail_msg("descriptor lacks \"%s\":\n%s", want[i].lines[l], text);
        const char *ext = strstr(text, "\nRW ");
        const char *ddb = strstr(text, "\nddb.");
        assert_non_null(ext);
        assert_non_null(ddb);
        assert_true(strstr(text, "createType") < ext && ext < ddb);
        assert_non_null(strstr(text, "# The Disk Data Base"));
        free(text);
    }
}

/* Reference 2.3 worked example: 1 GiB monolithicSparse. */
static void test_sparse_header_1g(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, GiB, 0));
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.magic, TU_KDMV_MAGIC);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.flags, 0x3);
    assert_int_equal(h.capacity, 2097152);
    assert_int_equal(h.grain, 128);
    assert_int_equal(h.desc_off, 1);
    assert_int_equal(h.desc_size, 20);
    assert_int_equal(h.num_gtes, 512);
    assert_int_equal(h.rgd, 21);
    assert_int_equal(h.gd, 150);
    assert_int_equal(h.overhead, 384);
    assert_int_equal(h.unclean, 0);
    assert_int_equal(h.nl[0], '\n');
    assert_int_equal(h.nl[1], ' ');
    assert_int_equal(h.nl[2], '\r');
    assert_int_equal(h.nl[3], '\n');
    assert_int_equal(h.compress, 0);
    unsigned char pad[433];
    tu_pread(p, 79, pad, sizeof pad);
    assert_true(tu_is_zero(pad, sizeof pad));
    assert_true(tu_file_size(p) >= 384 * 512);

    /* GD/RGD point at contiguous, preallocated, empty GTs */
    for (uint64_t i = 0; i < 32; i++) {
        assert_int_equal(tu_gde(p, &h, i, 0), 151 + 4 * i);
        assert_int_equal(tu_gde(p, &h, i, 1), 22 + 4 * i);
    }
    unsigned char *all = tu_read_all(p, NULL);
    assert_true(tu_is_zero(all + 22 * 512, 128 * 512));   /* RGTs */
    assert_true(tu_is_zero(all + 151 * 512, 128 * 512));  /* GTs */
    /* GD entries beyond the 32 used are zero (rest of the GD sector) */
    assert_true(tu_is_zero(all + 150 * 512 + 128, 512 - 128));
    assert_true(tu_is_zero(all + 21 * 512 + 128, 512 - 128));
    free(all);

    char *desc = tu_embedded_desc(p);
    assert_memory_equal(desc, "# Disk DescriptorFile\n", 22);
    assert_non_null(strstr(desc, "createType=\"monolithicSparse\"\n"));
    assert_non_null(strstr(desc, "RW 2097152 SPARSE \"d.vmdk\"\n"));
    assert_non_null(strstr(desc, "ddb.adapterType"));
    free(desc);
}

/* Reference 5: split sparse pieces have no descriptor and rgdOffset 1. */
static void test_split_sparse_headers(void **state)
{
    TU_OK(tu_create(tu_path("d.vmdk"), VMDK_TYPE_SPLIT_SPARSE, CAP, SPLIT));
    static const char *const f[] = {"d-s001.vmdk", "d-s002.vmdk", "d-s003.vmdk",
                                    "d-s004.vmdk"};
    for (int i = 0; i < 4; i++) {
        struct tu_sparse_hdr h;
        tu_read_sparse_hdr(tu_path(f[i]), &h);
        assert_int_equal(h.magic, TU_KDMV_MAGIC);
        assert_int_equal(h.version, 1);
        assert_int_equal(h.flags, 0x3);
        assert_int_equal(h.capacity, i < 3 ? 2048 : 1024);
        assert_int_equal(h.grain, 128);
        assert_int_equal(h.num_gtes, 512);
        assert_int_equal(h.desc_off, 0);
        assert_int_equal(h.rgd, 1);
        assert_int_equal(h.gd, 6);       /* RGD 1, RGT 2-5, GD 6, GT 7-10 */
        assert_int_equal(h.overhead, 128);
        assert_int_equal(tu_gde(tu_path(f[i]), &h, 0, 0), 7);
        assert_int_equal(tu_gde(tu_path(f[i]), &h, 0, 1), 2);
    }
}

static void test_capacity_rounding(void **state)
{
    static const enum vmdk_type types[] = {VMDK_TYPE_MONOLITHIC_SPARSE,
                                           VMDK_TYPE_MONOLITHIC_FLAT};
    for (size_t i = 0; i < 2; i++) {
        remove_all();
        TU_OK(tu_create(tu_path("d.vmdk"), types[i], 1000, 0));
        vmdk_disk *d;
        TU_OK(vmdk_open(tu_path("d.vmdk"), VMDK_OPEN_RDONLY, &d));
        assert_int_equal(vmdk_capacity(d), 1024);
        tu_expect_zero(d, 0, 1024);
        TU_OK(vmdk_close(d));
    }
}

static void test_exists(void **state)
{
    for (size_t c = 0; c < NCASES; c++) {
        remove_all();
        TU_OK(tu_create(tu_path("d.vmdk"), CASES[c].type, CAP, SPLIT));
        struct tu_dirsnap *s = tu_dir_snapshot(tu_dir());
        TU_ERR(tu_create(tu_path("d.vmdk"), CASES[c].type, CAP, SPLIT), VD_E_EXISTS);
        tu_assert_dir_unchanged(s, tu_dir());
        tu_dirsnap_free(s);

        /* only one data file of the new disk exists: still EXISTS, and
         * nothing else is left behind */
        const char *last = NULL;
        for (size_t i = 0; CASES[c].files[i]; i++)
            if (strcmp(CASES[c].files[i], "d.vmdk") != 0)
                last = CASES[c].files[i];
        if (!last)
            continue;
        remove_all();
        tu_write_all(tu_path(last), "precious", 8);
        s = tu_dir_snapshot(tu_dir());
        TU_ERR(tu_create(tu_path("d.vmdk"), CASES[c].type, CAP, SPLIT), VD_E_EXISTS);
        tu_assert_dir_unchanged(s, tu_dir());
        tu_dirsnap_free(s);
    }
}

static void test_create_failures_leave_nothing(void **state)
{
    struct vmdk_create_params p = {.type = VMDK_TYPE_UNKNOWN, .capacity = MiB};
    assert_true(vmdk_create(tu_path("d.vmdk"), &p) < 0);
    const char *none[] = {NULL};
    expect_dir(none);

    p.type = VMDK_TYPE_MONOLITHIC_FLAT;
    TU_ERR(vmdk_create(tu_path("nodir/d.vmdk"), &p), VD_E_NOTFOUND);
    expect_dir(none);
}

static void check_geometry_for(uint64_t sectors, enum vmdk_adapter a, uint32_t c,
                               uint32_t h, uint32_t s)
{
    struct vmdk_geometry g = {0, 0, 0};
    vmdk_geometry_for(sectors * 512, a, &g);
    if (g.cylinders != c || g.heads != h || g.sectors != s)
        fail_msg("%llu sectors, adapter %d: got %u/%u/%u, expected %u/%u/%u",
                 (unsigned long long)sectors, (int)a, g.cylinders, g.heads, g.sectors, c, h, s);
}

static void test_geometry_for(void **state)
{
    /* the spec's ide example */
    check_geometry_for(10485760, VMDK_ADAPTER_IDE, 10402, 16, 63);
    check_geometry_for(2048, VMDK_ADAPTER_IDE, 2, 16, 63);
    /* ide caps the cylinders at 16383 */
    check_geometry_for(16383ull * 16 * 63, VMDK_ADAPTER_IDE, 16383, 16, 63);
    check_geometry_for(16384ull * 16 * 63, VMDK_ADAPTER_IDE, 16383, 16, 63);
    check_geometry_for(83886080, VMDK_ADAPTER_IDE, 16383, 16, 63);
    /* scsi: 255/63 (sizes chosen to be exact multiples) */
    check_geometry_for(16065ull * 100, VMDK_ADAPTER_LSILOGIC, 100, 255, 63);
    check_geometry_for(16065ull * 100, VMDK_ADAPTER_BUSLOGIC, 100, 255, 63);
    check_geometry_for(16065ull * 20000, VMDK_ADAPTER_LSILOGIC, 20000, 255, 63);
}

static char *meta(vmdk_disk *d, const char *key)
{
    char *v = NULL;
    int rc = vmdk_meta_get(d, key, &v);
    if (rc != 0)
        fail_msg("vmdk_meta_get(%s) = %d: %s", key, rc, vd_err_msg());
    return v;
}

static void expect_meta(vmdk_disk *d, const char *key, const char *want)
{
    char *v = meta(d, key);
    if (strcmp(v, want) != 0)
        fail_msg("ddb.%s = \"%s\", expected \"%s\"", key, v, want);
    free(v);
}

static int uuid_ok(const char *u)
{
    /* "xx xx xx xx xx xx xx xx-xx xx xx xx xx xx xx xx" */
    if (strlen(u) != 47)
        return 0;
    for (int i = 0; i < 16; i++) {
        const char *b = u + 3 * i;
        if (!strchr("0123456789abcdefABCDEF", b[0]) || !strchr("0123456789abcdefABCDEF", b[1]))
            return 0;
        if (i < 15 && b[2] != (i == 7 ? '-' : ' '))
            return 0;
    }
    return 1;
}

static void test_ddb_and_geometry(void **state)
{
    static const struct {
        enum vmdk_type type;
        enum vmdk_adapter a;
        int hw;
        uint64_t sectors;
        const char *aname;
        uint32_t c, h, s;
        const char *hws;
    } cases[] = {
        {VMDK_TYPE_MONOLITHIC_SPARSE, VMDK_ADAPTER_IDE, 0, 10485760, "ide", 10402, 16, 63, "4"},
        {VMDK_TYPE_MONOLITHIC_SPARSE, VMDK_ADAPTER_IDE, 13, 83886080, "ide", 16383, 16, 63, "13"},
        {VMDK_TYPE_MONOLITHIC_SPARSE, 0, 0, 16065ull * 100, "lsilogic", 100, 255, 63, "4"},
        {VMDK_TYPE_MONOLITHIC_FLAT, VMDK_ADAPTER_BUSLOGIC, 7, 16065ull * 2, "buslogic", 2, 255,
         63, "7"},
        {VMDK_TYPE_VMFS_THIN, VMDK_ADAPTER_LSILOGIC, 0, 16065ull * 3, "lsilogic", 3, 255, 63,
         "4"},
        {VMDK_TYPE_SPLIT_SPARSE, VMDK_ADAPTER_IDE, 0, 4032, "ide", 4, 16, 63, "4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        remove_all();
        struct vmdk_create_params p = {.type = cases[i].type,
                                       .capacity = cases[i].sectors * 512,
                                       .adapter = cases[i].a,
                                       .hw_version = cases[i].hw};
        TU_OK(vmdk_create(tu_path("d.vmdk"), &p));
        vmdk_disk *d;
        TU_OK(vmdk_open(tu_path("d.vmdk"), VMDK_OPEN_RDONLY, &d));
        assert_int_equal(vmdk_capacity(d), cases[i].sectors * 512);
        struct vmdk_geometry g;
        TU_OK(vmdk_geometry(d, &g));
        if (g.cylinders != cases[i].c || g.heads != cases[i].h || g.sectors != cases[i].s)
            fail_msg("case %zu: geometry %u/%u/%u, expected %u/%u/%u", i, g.cylinders,
                     g.heads, g.sectors, cases[i].c, cases[i].h, cases[i].s);
        assert_int_equal(vmdk_adapter_type(d),
                         cases[i].a ? cases[i].a : VMDK_ADAPTER_LSILOGIC);
        assert_int_equal(vmdk_hw_version(d), cases[i].hw ? cases[i].hw : 4);

        char num[16];
        expect_meta(d, "adapterType", cases[i].aname);
        snprintf(num, sizeof num, "%u", cases[i].c);
        expect_meta(d, "geometry.cylinders", num);
        snprintf(num, sizeof num, "%u", cases[i].h);
        expect_meta(d, "geometry.heads", num);
        snprintf(num, sizeof num, "%u", cases[i].s);
        expect_meta(d, "geometry.sectors", num);
        expect_meta(d, "virtualHWVersion", cases[i].hws);
        char *u = meta(d, "uuid");
        if (!uuid_ok(u))
            fail_msg("ddb.uuid \"%s\" is not 16 hex bytes in VMware's format", u);
        free(u);
        TU_OK(vmdk_close(d));
    }
}

static void test_uuid_and_cid_unique(void **state)
{
    TU_OK(tu_create(tu_path("a.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    TU_OK(tu_create(tu_path("b.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    vmdk_disk *a, *b;
    TU_OK(vmdk_open(tu_path("a.vmdk"), VMDK_OPEN_RDONLY, &a));
    TU_OK(vmdk_open(tu_path("b.vmdk"), VMDK_OPEN_RDONLY, &b));
    char *ua = meta(a, "uuid"), *ub = meta(b, "uuid");
    assert_string_not_equal(ua, ub);
    assert_int_not_equal(tu_cid(a, 0), tu_cid(b, 0));
    free(ua);
    free(ub);
    TU_OK(vmdk_close(a));
    TU_OK(vmdk_close(b));
}

static void test_names(void **state)
{
    static const struct { enum vmdk_type t; const char *n; } tn[] = {
        {VMDK_TYPE_MONOLITHIC_SPARSE, "monolithicSparse"},
        {VMDK_TYPE_MONOLITHIC_FLAT, "monolithicFlat"},
        {VMDK_TYPE_SPLIT_SPARSE, "twoGbMaxExtentSparse"},
        {VMDK_TYPE_SPLIT_FLAT, "twoGbMaxExtentFlat"},
        {VMDK_TYPE_VMFS_FLAT, "vmfs"},
        {VMDK_TYPE_STREAM_OPTIMIZED, "streamOptimized"},
        {VMDK_TYPE_VMFS_THIN, "vmfsThin"},
        {VMDK_TYPE_VMFS_SPARSE, "vmfsSparse"},
    };
    for (size_t i = 0; i < sizeof tn / sizeof tn[0]; i++) {
        assert_string_equal(vmdk_type_name(tn[i].t), tn[i].n);
        assert_int_equal(vmdk_type_from_name(tn[i].n), tn[i].t);
    }
    /* the spec's list spells the split types 2GbMax... */
    assert_int_equal(vmdk_type_from_name("2GbMaxExtentSparse"), VMDK_TYPE_SPLIT_SPARSE);
    assert_int_equal(vmdk_type_from_name("2GbMaxExtentFlat"), VMDK_TYPE_SPLIT_FLAT);
    assert_int_equal(vmdk_type_from_name("noSuchType"), VMDK_TYPE_UNKNOWN);
    assert_string_equal(vmdk_adapter_name(VMDK_ADAPTER_IDE), "ide");
    assert_string_equal(vmdk_adapter_name(VMDK_ADAPTER_BUSLOGIC), "buslogic");
    assert_string_equal(vmdk_adapter_name(VMDK_ADAPTER_LSILOGIC), "lsilogic");
    assert_int_equal(vmdk_adapter_from_name("ide"), VMDK_ADAPTER_IDE);
    assert_int_equal(vmdk_adapter_from_name("lsilogic"), VMDK_ADAPTER_LSILOGIC);
    assert_int_equal(vmdk_adapter_from_name("buslogic"), VMDK_ADAPTER_BUSLOGIC);
    assert_int_equal(vmdk_adapter_from_name("floppy"), VMDK_ADAPTER_UNKNOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_and_info, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_text_descriptors, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_sparse_header_1g, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_split_sparse_headers, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_capacity_rounding, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_exists, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_create_failures_leave_nothing, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_geometry_for, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_ddb_and_geometry, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_uuid_and_cid_unique, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_names, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("create", tests, NULL, NULL);
}
