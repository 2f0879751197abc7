/* test_lock.c - OFD locking between opens of the same disk (within one
 * process, OFD locks conflict like between processes). */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#define MiB (1024ull * 1024ull)

static const enum vmdk_type TYPES[] = {VMDK_TYPE_MONOLITHIC_SPARSE,
                                       VMDK_TYPE_MONOLITHIC_FLAT, VMDK_TYPE_SPLIT_SPARSE,
                                       VMDK_TYPE_VMFS_FLAT};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

static const char *fresh(size_t i)
{
    static char name[32];
    snprintf(name, sizeof name, "d%zu.vmdk", i);
    const char *p = tu_path(name);
    TU_OK(tu_create(p, TYPES[i], 2 * MiB, MiB));
    return p;
}

static void test_two_writers(void **state)
{
    for (size_t i = 0; i < NTYPES; i++) {
        const char *p = fresh(i);
        vmdk_disk *a = NULL, *b = NULL;
        TU_OK(vmdk_open(p, 0, &a));
        TU_ERR(vmdk_open(p, 0, &b), VD_E_LOCKED);
        assert_true(vd_err_msg()[0] != 0);
        /* the holder still works */
        tu_write_pattern(a, 100, 100, 1);
        TU_OK(vmdk_close(a));
        /* released on close */
        TU_OK(vmdk_open(p, 0, &b));
        tu_expect_pattern(b, 100, 100, 1);
        TU_OK(vmdk_close(b));
    }
}

static void test_two_readers(void **state)
{
    for (size_t i = 0; i < NTYPES; i++) {
        const char *p = fresh(i);
        vmdk_disk *a = NULL, *b = NULL, *c = NULL;
        TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &a));
        TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &b));
        /* no writer while readers hold it */
        TU_ERR(vmdk_open(p, 0, &c), VD_E_LOCKED);
        tu_expect_zero(a, 0, 4096);
        tu_expect_zero(b, 0, 4096);
        TU_OK(vmdk_close(a));
        TU_ERR(vmdk_open(p, 0, &c), VD_E_LOCKED);
        TU_OK(vmdk_close(b));
        TU_OK(vmdk_open(p, 0, &c));
        TU_OK(vmdk_close(c));
    }
}

static void test_reader_vs_writer(void **state)
{
    for (size_t i = 0; i < NTYPES; i++) {
        const char *p = fresh(i);
        vmdk_disk *w = NULL, *r = NULL;
        TU_OK(vmdk_open(p, 0, &w));
        TU_ERR(vmdk_open(p, VMDK_OPEN_RDONLY, &r), VD_E_LOCKED);
        /* tools may opt out of locking */
        TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &r));
        TU_OK(vmdk_close(r));
        TU_OK(vmdk_close(w));
        TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &r));
        TU_OK(vmdk_close(r));
    }
}

/* A metadata change replaces a separate descriptor file (temp + rename):
 * the lock must follow the new file. */
static void test_lock_after_descriptor_rewrite(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_FLAT, 2 * MiB, 0));
    vmdk_disk *a = NULL, *b = NULL;
    TU_OK(vmdk_open(p, 0, &a));
    TU_OK(vmdk_meta_set(a, "custom.key", "v"));
    tu_write_pattern(a, 0, 10, 1);       /* the CID rewrite replaces it again */
    TU_ERR(vmdk_open(p, 0, &b), VD_E_LOCKED);
    TU_ERR(vmdk_open(p, VMDK_OPEN_RDONLY, &b), VD_E_LOCKED);
    TU_OK(vmdk_close(a));
    TU_OK(vmdk_open(p, 0, &b));
    TU_OK(vmdk_close(b));
}

/* Parents are held read-only by an open child. */
static void test_parent_locked_by_child(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, 2 * MiB, 0));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    vmdk_disk *c = NULL, *b = NULL;
    TU_OK(vmdk_open(child, 0, &c));
    TU_ERR(vmdk_open(base, 0, &b), VD_E_LOCKED);
    TU_OK(vmdk_open(base, VMDK_OPEN_RDONLY, &b));
    TU_OK(vmdk_close(b));
    TU_OK(vmdk_close(c));
    TU_OK(vmdk_open(base, 0, &b));
    TU_OK(vmdk_close(b));
}

/* A failed open releases whatever it had locked. */
static void test_failed_open_releases(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_FLAT, 2 * MiB, 0));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));
    /* make the parent's CID disagree: the child open fails after locking */
    vmdk_disk *d = NULL;
    TU_OK(vmdk_open(base, 0, &d));
    tu_write_pattern(d, 0, 10, 1);
    TU_OK(vmdk_close(d));
    TU_ERR(vmdk_open(child, 0, &d), VD_E_CID_MISMATCH);
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &d));
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(base, 0, &d));
    TU_OK(vmdk_close(d));

    /* a missing parent, likewise */
    tu_unlink(tu_path("base-flat.vmdk"));
    assert_true(vmdk_open(child, 0, &d) < 0);
    TU_OK(vmdk_open(child, VMDK_OPEN_SINGLE_LINK, &d));
    TU_OK(vmdk_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_writers, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_two_readers, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_reader_vs_writer, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_lock_after_descriptor_rewrite, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_parent_locked_by_child, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_failed_open_releases, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
