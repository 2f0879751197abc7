/* test_meta.c - disk database access: get/set/remove/list, embedded and
 * separate descriptors, size limits, lookups through the chain. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024ull * 1024ull)

static char *get(vmdk_disk *d, const char *key)
{
    char *v = NULL;
    int rc = vmdk_meta_get(d, key, &v);
    if (rc != 0)
        fail_msg("vmdk_meta_get(%s) = %d: %s", key, rc, vd_err_msg());
    assert_non_null(v);
    return v;
}

static void expect(vmdk_disk *d, const char *key, const char *want)
{
    char *v = get(d, key);
    if (strcmp(v, want) != 0)
        fail_msg("%s = \"%s\", expected \"%s\"", key, v, want);
    free(v);
}

/* ddb keys (without the prefix) in the order they appear in text. */
static size_t ddb_keys_of(const char *text, char keys[][64], size_t max)
{
    size_t n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "ddb.", 4) != 0)
            continue;
        size_t k = strcspn(p + 4, " =\r\n");
        assert_true(k < 64 && n < max);
        memcpy(keys[n], p + 4, k);
        keys[n][k] = 0;
        n++;
    }
    return n;
}

static char *desc_text(enum vmdk_type t, const char *path)
{
    if (t == VMDK_TYPE_MONOLITHIC_SPARSE)
        return tu_embedded_desc(path);
    return (char *)tu_read_all(path, NULL);
}

static void check_keys(vmdk_disk *d, enum vmdk_type t, const char *path)
{
    char **keys = NULL;
    size_t n = 0;
    TU_OK(vmdk_meta_keys(d, &keys, &n));
    char *text = desc_text(t, path);
    char want[64][64];
    size_t w = ddb_keys_of(text, want, 64);
    free(text);
    if (n != w)
        fail_msg("meta_keys returned %zu keys, the descriptor has %zu", n, w);
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], want[i]) != 0)
            fail_msg("key %zu is \"%s\", descriptor order says \"%s\"", i, keys[i], want[i]);
    vmdk_strv_free(keys, n);
}

static int has_key(vmdk_disk *d, const char *key)
{
    char **keys = NULL;
    size_t n = 0;
    TU_OK(vmdk_meta_keys(d, &keys, &n));
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            found = 1;
    vmdk_strv_free(keys, n);
    return found;
}

static void run_get_set_list(enum vmdk_type t)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, t, 2 * MiB, MiB));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    check_keys(d, t, p);
    static const char *const std[] = {"adapterType", "geometry.cylinders", "geometry.heads",
                                      "geometry.sectors", "virtualHWVersion", "uuid"};
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
        if (!has_key(d, std[i]))
            fail_msg("new disk has no ddb.%s", std[i]);
    char *v = NULL;
    TU_ERR(vmdk_meta_get(d, "no.such.key", &v), VD_E_NOTFOUND_KEY);

    TU_OK(vmdk_meta_set(d, "custom.key", "hello world"));
    expect(d, "custom.key", "hello world");
    TU_OK(vmdk_meta_set(d, "custom.key", "second value"));
    expect(d, "custom.key", "second value");
    TU_OK(vmdk_meta_set(d, "virtualHWVersion", "11"));
    expect(d, "virtualHWVersion", "11");
    TU_OK(vmdk_meta_set(d, "custom.gone", "x"));
    TU_OK(vmdk_meta_set(d, "custom.gone", NULL));
    TU_ERR(vmdk_meta_get(d, "custom.gone", &v), VD_E_NOTFOUND_KEY);
    assert_false(has_key(d, "custom.gone"));
    assert_true(has_key(d, "custom.key"));
    TU_ERR(vmdk_meta_set(d, "custom.bad", "has \"quotes\""), VD_E_INVAL);
    TU_OK(vmdk_close(d));

    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    check_keys(d, t, p);
    expect(d, "custom.key", "second value");
    expect(d, "virtualHWVersion", "11");
    assert_int_equal(vmdk_hw_version(d), 11);
    TU_ERR(vmdk_meta_get(d, "custom.gone", &v), VD_E_NOTFOUND_KEY);
    TU_ERR(vmdk_meta_set(d, "custom.key", "ro"), VD_E_READONLY);
    expect(d, "custom.key", "second value");
    TU_OK(vmdk_close(d));

    char *text = desc_text(t, p);
    if (!strstr(text, "\nddb.custom.key = \"second value\"\n"))
        fail_msg("descriptor lacks the new key in spec form:\n%s", text);
    free(text);
}

static void test_get_set_list_sparse(void **state) { run_get_set_list(VMDK_TYPE_MONOLITHIC_SPARSE); }
static void test_get_set_list_flat(void **state) { run_get_set_list(VMDK_TYPE_MONOLITHIC_FLAT); }
static void test_get_set_list_split(void **state) { run_get_set_list(VMDK_TYPE_SPLIT_SPARSE); }

/* Lines of old (other than CID) appear as whole lines in new, in order. */
static void expect_lines_kept(const char *old, const char *new_text)
{
    const char *pos = new_text; /* always at the start of a line of new_text */
    for (const char *p = old; *p;) {
        size_t n = strcspn(p, "\n");
        if (n > 0 && strncmp(p, "CID=", 4) != 0) {
            const char *q = pos;
            while (*q && !(strncmp(q, p, n) == 0 && (q[n] == '\n' || q[n] == 0)))
                q = strchr(q, '\n') ? strchr(q, '\n') + 1 : q + strlen(q);
            if (!*q)
                fail_msg("line \"%.*s\" lost or reordered in the rewritten descriptor:\n%s",
                         (int)n, p, new_text);
            pos = q + n + (q[n] == '\n');
        }
        p += n;
        if (*p == '\n')
            p++;
    }
}

static void test_embedded_in_place(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, 2 * MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    tu_write_pattern(d, 1000, 5000, 1);
    TU_OK(vmdk_close(d));

    size_t l0;
    unsigned char *b0 = tu_read_all(p, &l0);
    char *old = tu_embedded_desc(p);
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_meta_set(d, "custom.key", "in place"));
    TU_OK(vmdk_close(d));

    size_t l1;
    unsigned char *b1 = tu_read_all(p, &l1);
    assert_int_equal(l0, l1);
    /* only the descriptor area (sectors 1..20) may differ */
    assert_memory_equal(b0, b1, 512);
    assert_memory_equal(b0 + 21 * 512, b1 + 21 * 512, l0 - 21 * 512);
    char *now = tu_embedded_desc(p);
    assert_non_null(strstr(now, "\nddb.custom.key = \"in place\"\n"));
    expect_lines_kept(old, now);
    /* the rest of the area is NUL padding */
    size_t tl = strlen(now);
    assert_true(tl < 20 * 512);
    assert_true(tu_is_zero(b1 + 512 + tl, 20 * 512 - tl));
    free(now);
    free(old);
    free(b0);
    free(b1);

    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    expect(d, "custom.key", "in place");
    tu_expect_pattern(d, 1000, 5000, 1);
    TU_OK(vmdk_close(d));
}

static void expect_dir2(const char *a, const char *b)
{
    char **names;
    size_t n = tu_list_dir(tu_dir(), &names);
    if (n != 2 || strcmp(names[0], a) != 0 || strcmp(names[1], b) != 0)
        fail_msg("directory holds %zu files (first: %s), expected just %s and %s", n,
                 n ? names[0] : "-", a, b);
    tu_free_names(names, n);
}

static void test_separate_descriptor(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_FLAT, MiB, 0));
    size_t fl0;
    unsigned char *flat0 = tu_read_all(tu_path("d-flat.vmdk"), &fl0);
    char *old = (char *)tu_read_all(p, NULL);

    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_meta_set(d, "custom.key", "renamed in"));
    TU_OK(vmdk_meta_set(d, "custom.key2", "v2"));
    TU_OK(vmdk_flush(d));
    expect_dir2("d-flat.vmdk", "d.vmdk");
    TU_OK(vmdk_close(d));
    expect_dir2("d-flat.vmdk", "d.vmdk");

    char *now = (char *)tu_read_all(p, NULL);
    assert_non_null(strstr(now, "\nddb.custom.key = \"renamed in\"\n"));
    assert_non_null(strstr(now, "\nddb.custom.key2 = \"v2\"\n"));
    expect_lines_kept(old, now);
    size_t fl1;
    unsigned char *flat1 = tu_read_all(tu_path("d-flat.vmdk"), &fl1);
    assert_int_equal(fl0, fl1);
    assert_memory_equal(flat0, flat1, fl0);
    free(flat0);
    free(flat1);
    free(now);
    free(old);

    /* removal also rewrites */
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_meta_set(d, "custom.key", NULL));
    TU_OK(vmdk_close(d));
    expect_dir2("d-flat.vmdk", "d.vmdk");
    now = (char *)tu_read_all(p, NULL);
    assert_null(strstr(now, "custom.key ="));
    assert_non_null(strstr(now, "custom.key2 ="));
    free(now);
}

static void test_nospace(void **state)
{
    const char *p = tu_path("d.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    size_t l0;
    unsigned char *b0 = tu_read_all(p, &l0);

    char *big = malloc(11001);
    assert_non_null(big);
    memset(big, 'a', 11000);
    big[11000] = 0;
    vmdk_disk *d;
    TU_OK(vmdk_open(p, 0, &d));
    TU_ERR(vmdk_meta_set(d, "custom.big", big), VD_E_NOSPACE);
    char *v = NULL;
    TU_ERR(vmdk_meta_get(d, "custom.big", &v), VD_E_NOTFOUND_KEY);
    TU_OK(vmdk_close(d));
    size_t l1;
    unsigned char *b1 = tu_read_all(p, &l1);
    assert_int_equal(l0, l1);
    assert_memory_equal(b0, b1, l0);
    free(b1);

    /* a value that fits is fine */
    big[6000] = 0;
    TU_OK(vmdk_open(p, 0, &d));
    TU_OK(vmdk_meta_set(d, "custom.big", big));
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY, &d));
    expect(d, "custom.big", big);
    TU_OK(vmdk_close(d));
    free(b0);
    free(big);
}

static void test_child_walks_to_parent(void **state)
{
    const char *base = tu_path("base.vmdk"), *child = tu_path("child.vmdk");
    TU_OK(tu_create(base, VMDK_TYPE_MONOLITHIC_SPARSE, MiB, 0));
    vmdk_disk *d;
    TU_OK(vmdk_open(base, 0, &d));
    TU_OK(vmdk_meta_set(d, "custom.fromParent", "p"));
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(child, base, VMDK_TYPE_MONOLITHIC_SPARSE));

    TU_OK(vmdk_open(child, 0, &d));
    expect(d, "custom.fromParent", "p");
    /* remove any copy in the child: the parent's value shows through */
    int rc = vmdk_meta_set(d, "custom.fromParent", NULL);
    if (rc != 0 && rc != -VD_E_NOTFOUND_KEY)
        fail_msg("removing an absent key: %d %s", rc, vd_err_msg());
    assert_false(has_key(d, "custom.fromParent"));
    expect(d, "custom.fromParent", "p");
    char *v = get(d, "adapterType");
    free(v);
    /* an override in the child */
    TU_OK(vmdk_meta_set(d, "custom.fromParent", "c"));
    expect(d, "custom.fromParent", "c");
    assert_true(has_key(d, "custom.fromParent"));
    TU_OK(vmdk_close(d));

    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    expect(d, "custom.fromParent", "c");
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_open(base, VMDK_OPEN_RDONLY, &d));
    expect(d, "custom.fromParent", "p");
    TU_OK(vmdk_close(d));
    /* and the chain still opens: metadata is not content */
    TU_OK(vmdk_open(child, VMDK_OPEN_RDONLY, &d));
    assert_int_equal(vmdk_num_links(d), 2);
    TU_OK(vmdk_close(d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_set_list_sparse, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_get_set_list_flat, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_get_set_list_split, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_embedded_in_place, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_separate_descriptor, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_nospace, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_child_walks_to_parent, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("meta", tests, NULL, NULL);
}
