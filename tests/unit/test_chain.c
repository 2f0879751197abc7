/* test_chain.c - delta chains: read fall-through, copy-on-write, parent
 * protection, CID protocol, parent resolution, loops. */
#include "test_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define G (64 * KiB)
#define CAP (4 * MiB)

/* base.vmdk with pattern 1 in grains 0..3 and pattern 2 in grain 10. */
static void make_base(enum vmdk_type type)
{
    TU_OK(tu_create(tu_path("base.vmdk"), type, CAP, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("base.vmdk"), 0, &d));
    tu_write_pattern(d, 0, 4 * G, 1);
    tu_write_pattern(d, 10 * G, G, 2);
    TU_OK(vmdk_close(d));
}

static void test_fallthrough_and_cow(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    const char *child = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(child, tu_path("base.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE));
    size_t blen;
    unsigned char *base_before = tu_read_all(tu_path("base.vmdk"), &blen);

    vmdk_disk *d;
    TU_OK(vmdk_open(child, 0, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    assert_int_equal(vmdk_capacity(d), CAP);
    struct vmdk_link_info top, par;
    TU_OK(vmdk_link_info(d, 0, &top));
    TU_OK(vmdk_link_info(d, 1, &par));
    assert_non_null(top.parent_hint);
    assert_int_equal(top.parent_cid, par.cid);
    assert_int_equal(par.parent_cid, 0xffffffffu);
    assert_true(strstr(par.path, "base.vmdk") != NULL);

    /* everything reads through */
    tu_expect_pattern(d, 0, 4 * G, 1);
    tu_expect_pattern(d, 10 * G, G, 2);
    tu_expect_zero(d, 4 * G, 6 * G);

    /* partial write in a grain the parent holds */
    tu_write_pattern(d, G + 1000, 10, 3);
    /* whole-grain write and a write over a parent hole */
    tu_write_pattern(d, 2 * G, G, 4);
    tu_write_pattern(d, 20 * G + 5, 100, 5);
    tu_expect_pattern(d, 0, G + 1000, 1);
    tu_expect_pattern(d, G + 1000, 10, 3);
    tu_expect_pattern(d, G + 1010, G - 1010, 1);
    tu_expect_pattern(d, 2 * G, G, 4);
    tu_expect_pattern(d, 3 * G, G, 1);
    tu_expect_zero(d, 20 * G, 5);
    tu_expect_pattern(d, 20 * G + 5, 100, 5);
    tu_expect_zero(d, 20 * G + 105, G - 105);

    int st[24];
    tu_status_map(d, 0, G, 24, 0, st);
    for (int g = 0; g < 24; g++) {
        int want = (g <= 3 || g == 10 || g == 20) ? VMDK_DATA : VMDK_HOLE;
        if (st[g] != want)
            fail_msg("chain status grain %d: %d, expected %d", g, st[g], want);
    }
    tu_status_map(d, 0, G, 24, 1, st);
    for (int g = 0; g < 24; g++) {
        int want = (g == 1 || g == 2 || g == 20) ? VMDK_DATA : VMDK_HOLE;
        if (st[g] != want)
            fail_msg("single-link status grain %d: %d, expected %d", g, st[g], want);
    }
    TU_OK(vmdk_close(d));

    /* the parent's bytes did not change at all */
    size_t alen;
    unsigned char *base_after = tu_read_all(tu_path("base.vmdk"), &alen);
    assert_int_equal(alen, blen);
    assert_memory_equal(base_before, base_after, blen);
    free(base_before);
    free(base_after);

    /* the child alone holds the whole copied grain */
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &d));
    assert_int_equal(vmdk_num_links(d), 1);
    tu_expect_zero(d, 0, G);                   /* not written in the child */
    tu_expect_pattern(d, G, 1000, 1);          /* copied from the parent */
    tu_expect_pattern(d, G + 1000, 10, 3);
    tu_expect_pattern(d, G + 1010, G - 1010, 1);
    tu_expect_pattern(d, 2 * G, G, 4);
    tu_expect_zero(d, 3 * G, G);
    TU_OK(vmdk_close(d));

    /* and on disk: child GT/RGT agree for the written grains */
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(child, &h);
    for (uint64_t g = 0; g < 24; g++) {
        uint32_t e = tu_gte(child, &h, g, 0);
        assert_int_equal(e, tu_gte(child, &h, g, 1));
        if (g == 1 || g == 2 || g == 20)
            assert_true(e >= h.overhead);
        else
            assert_int_equal(e, 0);
    }
}

static void test_three_links(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_FLAT);
    TU_OK(vmdk_create_child(tu_path("c1.vmdk"), tu_path("base.vmdk"),
                            VMDK_TYPE_MONOLITHIC_SPARSE));
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("c1.vmdk"), 0, &d));
    tu_write_pattern(d, G / 2, G, 6);            /* grains 0 and 1 */
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(tu_path("c2.vmdk"), tu_path("c1.vmdk"),
                            VMDK_TYPE_SPLIT_SPARSE));
    TU_OK(vmdk_open(tu_path("c2.vmdk"), 0, &d));
    assert_int_equal(vmdk_num_links(d), 3);
    tu_write_pattern(d, G + 100, 50, 7);
    tu_expect_pattern(d, 0, G / 2, 1);
    tu_expect_pattern(d, G / 2, G / 2 + 100, 6);
    tu_expect_pattern(d, G + 100, 50, 7);
    tu_expect_pattern(d, G + 150, G / 2 - 150, 6);
    tu_expect_pattern(d, G + G / 2, G / 2, 1);
    tu_expect_pattern(d, 2 * G, 2 * G, 1);
    tu_expect_pattern(d, 10 * G, G, 2);
    tu_expect_zero(d, 11 * G, G);
    int st[12];
    tu_status_map(d, 0, G, 12, 0, st);
    for (int g = 0; g < 12; g++) {
        /* the flat base stores everything */
        if (st[g] != VMDK_DATA)
            fail_msg("grain %d over a flat base: status %d, expected DATA", g, st[g]);
    }
    tu_status_map(d, 0, G, 12, 1, st);
    for (int g = 0; g < 12; g++)
        assert_int_equal(st[g], g == 1 ? VMDK_DATA : VMDK_HOLE);
    TU_OK(vmdk_close(d));

    TU_OK(vmdk_open(tu_path("c2.vmdk"), VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, G + 100, 50, 7);
    tu_expect_pattern(d, G + 150, G / 2 - 150, 6);
    tu_expect_pattern(d, 0, G / 2, 1);
    TU_OK(vmdk_close(d));
}

static void test_child_descriptor(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    TU_OK(vmdk_create_child(tu_path("child.vmdk"), tu_path("base.vmdk"),
                            VMDK_TYPE_SPLIT_SPARSE));
    assert_true(tu_exists(tu_path("child-s001.vmdk")));
    char *text = (char *)tu_read_all(tu_path("child.vmdk"), NULL);
    char v[PATH_MAX];
    assert_int_equal(tu_desc_value(text, "parentFileNameHint", v, sizeof v), 0);
    assert_true(strstr(v, "base.vmdk") != NULL);
    assert_int_equal(tu_desc_value(text, "parentCID", v, sizeof v), 0);
    char want[16];
    snprintf(want, sizeof want, "%08x", tu_cid_of(tu_path("base.vmdk")));
    assert_string_equal(v, want);
    assert_int_equal(tu_desc_value(text, "createType", v, sizeof v), 0);
    assert_string_equal(v, "twoGbMaxExtentSparse");
    free(text);

    /* child must not exist already */
    TU_ERR(vmdk_create_child(tu_path("child.vmdk"), tu_path("base.vmdk"),
                             VMDK_TYPE_SPLIT_SPARSE), VD_E_EXISTS);
    /* parent must exist, and nothing is left behind */
    TU_ERR(vmdk_create_child(tu_path("x.vmdk"), tu_path("nope.vmdk"),
                             VMDK_TYPE_MONOLITHIC_SPARSE), VD_E_NOTFOUND);
    assert_false(tu_exists(tu_path("x.vmdk")));
}

/* Replace the CID line of a text descriptor. */
static void set_text_cid(const char *path, const char *new_cid)
{
    char *text = (char *)tu_read_all(path, NULL);
    char old[16], a[32], b[32];
    assert_int_equal(tu_desc_value(text, "CID", old, sizeof old), 0);
    snprintf(a, sizeof a, "\nCID=%s\n", old);
    snprintf(b, sizeof b, "\nCID=%s\n", new_cid);
    tu_replace_in_file(path, a, b);
    free(text);
}

static void test_cid_mismatch(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_FLAT);
    const char *child = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(child, tu_path("base.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE));
    vmdk_disk *d;
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    TU_OK(vmdk_close(d));

    set_text_cid(tu_path("base.vmdk"), "0badc1d0");
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    TU_ERR(vmdk_open(child, 0, &d), VD_E_CID_MISMATCH);
    TU_ERR(vmdk_open(child, VMDK_OPEN_RDONLY, &d), VD_E_CID_MISMATCH);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);

    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_NOCID, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    tu_expect_pattern(d, 0, G, 1);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &d));
    TU_OK(vmdk_close(d));
}

static void test_cid_mismatch_after_parent_write(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    const char *child = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(child, tu_path("base.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE));
    uint32_t before = tu_cid_of(tu_path("base.vmdk"));
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("base.vmdk"), 0, &d));
    tu_write_pattern(d, 0, 10, 9);
    TU_OK(vmdk_close(d));
    assert_int_not_equal(tu_cid_of(tu_path("base.vmdk")), before);
    TU_ERR(vmdk_open(child, VMDK_OPEN_RDONLY, &d), VD_E_CID_MISMATCH);
}

static void test_missing_parent(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    const char *child = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(child, tu_path("base.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE));
    vmdk_disk *d;
    TU_OK(vmdk_open(child, 0, &d));
    tu_write_pattern(d, 3 * G, 100, 4);
    TU_OK(vmdk_close(d));
    tu_unlink(tu_path("base.vmdk"));

    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vd_err_clear();
    TU_ERR(vmdk_open(child, 0, &d), VD_E_NOTFOUND);
    TU_MSG_HAS("base.vmdk");
    TU_ERR(vmdk_open(child, VMDK_OPEN_RDONLY, &d), VD_E_NOTFOUND);
    TU_MSG_HAS("base.vmdk");
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);

    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &d));
    assert_int_equal(vmdk_num_links(d), 1);
    assert_int_equal(vmdk_capacity(d), CAP);
    tu_expect_pattern(d, 3 * G, 100, 4);
    tu_expect_zero(d, 0, G);
    TU_OK(vmdk_close(d));
}

/* Turn a base split-sparse disk into one whose parent is hint with CID pcid. */
static void set_parent_text(const char *path, const char *hint, uint32_t pcid)
{
    char a[64], b[PATH_MAX + 64];
    snprintf(a, sizeof a, "parentCID=ffffffff\n");
    snprintf(b, sizeof b, "parentCID=%08x\n", pcid);
    tu_replace_in_file(path, a, b);
    snprintf(b, sizeof b, "createType=\"twoGbMaxExtentSparse\"\nparentFileNameHint=\"%s\"\n",
             hint);
    tu_replace_in_file(path, "createType=\"twoGbMaxExtentSparse\"\n", b);
}

static void test_loop_self(void **state)
{
    static const char *const hints[] = {"a.vmdk", "./a.vmdk", NULL};
    for (int i = 0; i < 3; i++) {
        tu_teardown(NULL);
        assert_int_equal(tu_setup(NULL), 0);
        const char *a = tu_path("a.vmdk");
        TU_OK(tu_create(a, VMDK_TYPE_SPLIT_SPARSE, CAP, 0));
        uint32_t cid = tu_cid_of(a);
        set_parent_text(a, hints[i] ? hints[i] : a, cid);
        struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
        vmdk_disk *d = NULL;
        TU_ERR(vmdk_open(a, VMDK_OPEN_RDONLY, &d), VD_E_PARENT_LOOP);
        TU_ERR(vmdk_open(a, 0, &d), VD_E_PARENT_LOOP);
        TU_ERR(vmdk_open(a, VMDK_OPEN_NOCID | VMDK_OPEN_NOLOCK, &d), VD_E_PARENT_LOOP);
        tu_assert_dir_unchanged(snap, tu_dir());
        tu_dirsnap_free(snap);
        TU_OK(vmdk_open(a, VMDK_OPEN_RDONLY | VMDK_OPEN_SINGLE_LINK, &d));
        TU_OK(vmdk_close(d));
    }
}

static void test_loop_two(void **state)
{
    const char *a = tu_path("a.vmdk"), *b = tu_path("b.vmdk");
    TU_OK(tu_create(a, VMDK_TYPE_SPLIT_SPARSE, CAP, 0));
    TU_OK(tu_create(b, VMDK_TYPE_SPLIT_SPARSE, CAP, 0));
    uint32_t ca = tu_cid_of(a), cb = tu_cid_of(b);
    set_parent_text(a, "b.vmdk", cb);
    set_parent_text(b, "a.vmdk", ca);
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    vmdk_disk *d = NULL;
    TU_ERR(vmdk_open(a, VMDK_OPEN_RDONLY, &d), VD_E_PARENT_LOOP);
    TU_ERR(vmdk_open(b, 0, &d), VD_E_PARENT_LOOP);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

/* A monolithic sparse child whose embedded hint names itself. */
static void test_loop_embedded(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    const char *child = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(child, tu_path("base.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE));
    char *text = tu_embedded_desc(child);
    char hint[PATH_MAX], pcid[16], cid[16], a[PATH_MAX + 32];
    assert_int_equal(tu_desc_value(text, "parentFileNameHint", hint, sizeof hint), 0);
    assert_int_equal(tu_desc_value(text, "parentCID", pcid, sizeof pcid), 0);
    assert_int_equal(tu_desc_value(text, "CID", cid, sizeof cid), 0);
    free(text);
    snprintf(a, sizeof a, "parentFileNameHint=\"%s\"", hint);
    tu_replace_in_embedded(child, a, "parentFileNameHint=\"child.vmdk\"");
    snprintf(a, sizeof a, "parentCID=%s", pcid);
    char b[32];
    snprintf(b, sizeof b, "parentCID=%s", cid);
    tu_replace_in_embedded(child, a, b);
    vmdk_disk *d = NULL;
    TU_ERR(vmdk_open(child, VMDK_OPEN_RDONLY, &d), VD_E_PARENT_LOOP);
}

/* A relative hint resolves against the child's directory, not the cwd. */
static void test_relative_hint(void **state)
{
    char pdir[PATH_MAX], cdir[PATH_MAX];
    snprintf(pdir, sizeof pdir, "%s", tu_path("p"));
    snprintf(cdir, sizeof cdir, "%s", tu_path("c"));
    assert_int_equal(mkdir(pdir, 0755), 0);
    assert_int_equal(mkdir(cdir, 0755), 0);
    const char *base = tu_path("p/base.vmdk"), *child = tu_path("c/child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, CAP, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    tu_write_pattern(d, 0, 1000, 1);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_SPLIT_SPARSE));
    char *text = (char *)tu_read_all(child, NULL);
    char hint[PATH_MAX], a[PATH_MAX + 32];
    assert_int_equal(tu_desc_value(text, "parentFileNameHint", hint, sizeof hint), 0);
    free(text);
    snprintf(a, sizeof a, "parentFileNameHint=\"%s\"", hint);
    tu_replace_in_file(child, a, "parentFileNameHint=\"../p/base.vmdk\"");

    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    int rc = vmdk_open(child, VMDK_OPEN_RDONLY, &d);
    if (rc == 0) {
        uint8_t b[1000];
        rc = vmdk_pread(d, b, sizeof b, 0);
        if (rc == 0 && tu_check(b, sizeof b, 0, 1) >= 0)
            rc = -999;
        vmdk_close(d);
    }
    assert_int_equal(chdir(cwd), 0);
    if (rc != 0)
        fail_msg("open/read through hint ../p/base.vmdk failed: %d %s", rc, vd_err_msg());
}

static void test_cid_protocol(void **state)
{
    make_base(VMDK_TYPE_MONOLITHIC_SPARSE);
    const char *child = tu_path("child.vmdk"), *base = tu_path("base.vmdk");
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    const uint32_t pcid = tu_cid_of(base);
    uint32_t c0 = tu_cid_of(child);
    assert_true(c0 != 0xffffffffu && c0 != 0xfffffffeu);
    size_t l0;
    unsigned char *b0 = tu_read_all(child, &l0);

    vmdk_disk *d;
    /* read-only open with reads */
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    tu_expect_pattern(d, 0, G, 1);
    assert_int_equal(tu_cid(d, 0), c0);
    TU_OK(vmdk_close(d));
    /* read-write open without any I/O */
    TU_OK(vmdk_open(child, 0, &d));
    TU_OK(vmdk_close(d));
    /* read-write open with reads and a flush only */
    TU_OK(vmdk_open(child, 0, &d));
    tu_expect_pattern(d, 0, G, 1);
    TU_OK(vmdk_flush(d));
    assert_int_equal(tu_cid(d, 0), c0);
    TU_OK(vmdk_close(d));
    assert_int_equal(tu_cid_of(child), c0);
    size_t l1;
    unsigned char *b1 = tu_read_all(child, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    free(b0);
    free(b1);

    /* the first write changes the CID, the second does not */
    TU_OK(vmdk_open(child, 0, &d));
    tu_write_pattern(d, 5 * G, 10, 3);
    uint32_t c1 = tu_cid(d, 0);
    assert_int_not_equal(c1, c0);
    assert_true(c1 != 0xffffffffu && c1 != 0xfffffffeu);
    tu_write_pattern(d, 6 * G, 10, 3);
    assert_int_equal(tu_cid(d, 0), c1);
    assert_int_equal(tu_cid(d, 1), pcid);
    TU_OK(vmdk_close(d));
    assert_int_equal(tu_cid_of(child), c1);

    /* each new open gets a new CID on its first write */
    TU_OK(vmdk_open(child, 0, &d));
    tu_write_pattern(d, 5 * G, 10, 4);
    uint32_t c2 = tu_cid(d, 0);
    assert_int_not_equal(c2, c1);
    TU_OK(vmdk_close(d));
    assert_int_equal(tu_cid_of(child), c2);

    /* the parent and the link between them never changed */
    assert_int_equal(tu_cid_of(base), pcid);
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.parent_cid, pcid);
    char *lc = NULL;
    if (vmdk_meta_get(d, "longContentID", &lc) == 0) {
        char want[16];
        snprintf(want, sizeof want, "%08x", c2);
        size_t n = strlen(lc);
        if (n < 8 || strcmp(lc + n - 8, want) != 0)
            fail_msg("longContentID %s does not end with the CID %s", lc, want);
        free(lc);
    }
    TU_OK(vmdk_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fallthrough_and_cow, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_three_links, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_child_descriptor, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_cid_mismatch, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_cid_mismatch_after_parent_write, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_parent, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_loop_self, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_loop_two, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_loop_embedded, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_relative_hint, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_cid_protocol, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("chain", tests, NULL, NULL);
}
