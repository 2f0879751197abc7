/* test_descriptor.c - the text descriptor parser and writer (descriptor.h). */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

#include "vmdk/descriptor.h"

/* Parse text; fail the test with the detail message on error. */
static void parse_ok(struct descriptor *d, const char *text, const char *name)
{
    memset(d, 0, sizeof *d);
    int rc = desc_parse(d, text, strlen(text), name);
    if (rc != 0)
        fail_msg("desc_parse(%s) = %d: %s", name, rc, vd_err_msg());
}

static char *format_ok(const struct descriptor *d)
{
    size_t len = 0;
    char *s = desc_format(d, &len);
    if (!s)
        fail_msg("desc_format failed: %s", vd_err_msg());
    assert_int_equal(len, strlen(s));
    return s;
}

/* The i-th line whose key equals key (case-sensitive), or NULL. */
static const struct desc_line *find_line(const struct descriptor *d, const char *key)
{
    for (size_t i = 0; i < d->nlines; i++)
        if (d->lines[i].key && strcmp(d->lines[i].key, key) == 0)
            return &d->lines[i];
    return NULL;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Replace the first occurrence of old in s (malloc'd result). */
static char *str_replace(const char *s, const char *old, const char *new_text)
{
    const char *hit = strstr(s, old);
    if (!hit)
        fail_msg("\"%s\" not in expected text", old);
    size_t pre = (size_t)(hit - s), ol = strlen(old), nl = strlen(new_text);
    char *out = malloc(strlen(s) - ol + nl + 1);
    assert_non_null(out);
    memcpy(out, s, pre);
    memcpy(out + pre, new_text, nl);
    strcpy(out + pre + nl, hit + ol);
    return out;
}

static const char FULL[] =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "encoding=\"UTF-8\"\n"
    "CID=0a1b2c3d\n"
    "parentCID=ffffffff\n"
    "isNativeSnapshot=\"no\"\n"
    "createType=\"twoGbMaxExtentSparse\"\n"
    "parentFileNameHint=\"../base/parent.vmdk\"\n"
    "\n"
    "# Extent description\n"
    "RW 4192256 SPARSE \"test-s001.vmdk\"\n"
    "RDONLY 2048 FLAT \"test-f001.vmdk\" 63\n"
    "NOACCESS 1024 VMFS \"test-flat.vmdk\"\n"
    "RW 1985 ZERO\n"
    "RW 8192 VMFSSPARSE \"test-delta.vmdk\"\n"
    "\n"
    "# Change Tracking File\n"
    "changeTrackPath=\"test-ctk.vmdk\"\n"
    "\n"
    "# The Disk Data Base\n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"ide\"\n"
    "ddb.geometry.sectors = \"63\"\n"
    "ddb.geometry.heads = \"16\"\n"
    "ddb.geometry.cylinders = \"10402\"\n"
    "ddb.uuid = \"60 00 c2 9b 1e 7a 45 c4-2b 15 a5 e2 62 94 e6 50\"\n"
    "ddb.virtualHWVersion = \"4\"\n"
    "ddb.longContentID = \"0123456789abcdef0123456789abcdef\"\n";

static void test_header_keys(void **state)
{
    struct descriptor d;
    parse_ok(&d, FULL, "full.vmdk");
    assert_string_equal(desc_get(&d, "version"), "1");
    assert_string_equal(desc_get(&d, "encoding"), "UTF-8");
    assert_string_equal(desc_get(&d, "CID"), "0a1b2c3d");
    assert_string_equal(desc_get(&d, "parentCID"), "ffffffff");
    assert_string_equal(desc_get(&d, "isNativeSnapshot"), "no");
    assert_string_equal(desc_get(&d, "createType"), "twoGbMaxExtentSparse");
    assert_string_equal(desc_get(&d, "parentFileNameHint"), "../base/parent.vmdk");
    assert_string_equal(desc_get(&d, "changeTrackPath"), "test-ctk.vmdk");
    assert_null(desc_get(&d, "noSuchKey"));

    const struct desc_line *l = find_line(&d, "CID");
    assert_non_null(l);
    assert_int_equal(l->kind, DESC_HEADER);
    assert_false(l->quoted);
    l = find_line(&d, "createType");
    assert_non_null(l);
    assert_int_equal(l->kind, DESC_HEADER);
    assert_true(l->quoted);
    assert_int_equal(d.lines[0].kind, DESC_OTHER);
    assert_string_equal(d.lines[0].text, "# Disk DescriptorFile");

    uint32_t v = 0;
    TU_OK(desc_get_u32_hex(&d, "CID", &v));
    assert_int_equal(v, 0x0a1b2c3du);
    TU_OK(desc_get_u32_hex(&d, "parentCID", &v));
    assert_int_equal(v, 0xffffffffu);
    TU_ERR(desc_get_u32_hex(&d, "noSuchKey", &v), VD_E_NOTFOUND_KEY);
    TU_ERR(desc_get_u32_hex(&d, "encoding", &v), VD_E_CORRUPT);
    desc_free(&d);
}

static void test_extent_types(void **state)
{
    struct descriptor d;
    parse_ok(&d, FULL, "full.vmdk");
    assert_int_equal(desc_num_extents(&d), 5);

    struct desc_extent *e = desc_extent(&d, 0);
    assert_non_null(e);
    assert_int_equal(e->access, DESC_RW);
    assert_int_equal(e->sectors, 4192256);
    assert_string_equal(e->type, "SPARSE");
    assert_string_equal(e->file, "test-s001.vmdk");
    assert_false(e->has_offset);

    e = desc_extent(&d, 1);
    assert_int_equal(e->access, DESC_RDONLY);
    assert_int_equal(e->sectors, 2048);
    assert_string_equal(e->type, "FLAT");
    assert_string_equal(e->file, "test-f001.vmdk");
    assert_true(e->has_offset);
    assert_int_equal(e->offset, 63);

    e = desc_extent(&d, 2);
    assert_int_equal(e->access, DESC_NOACCESS);
    assert_int_equal(e->sectors, 1024);
    assert_string_equal(e->type, "VMFS");
    assert_string_equal(e->file, "test-flat.vmdk");
    assert_false(e->has_offset);

    e = desc_extent(&d, 3);
    assert_int_equal(e->access, DESC_RW);
    assert_int_equal(e->sectors, 1985);
    assert_string_equal(e->type, "ZERO");
    assert_null(e->file);

    e = desc_extent(&d, 4);
    assert_int_equal(e->sectors, 8192);
    assert_string_equal(e->type, "VMFSSPARSE");
    assert_string_equal(e->file, "test-delta.vmdk");

    size_t next = 0;
    for (size_t i = 0; i < d.nlines; i++)
        if (d.lines[i].kind == DESC_EXTENT)
            next++;
    assert_int_equal(next, 5);
    desc_free(&d);
}

static void test_ddb_keys(void **state)
{
    struct descriptor d;
    parse_ok(&d, FULL, "full.vmdk");
    static const char *const kv[][2] = {
        {"ddb.adapterType", "ide"},
        {"ddb.geometry.sectors", "63"},
        {"ddb.geometry.heads", "16"},
        {"ddb.geometry.cylinders", "10402"},
        {"ddb.uuid", "60 00 c2 9b 1e 7a 45 c4-2b 15 a5 e2 62 94 e6 50"},
        {"ddb.virtualHWVersion", "4"},
        {"ddb.longContentID", "0123456789abcdef0123456789abcdef"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        const struct desc_line *l = find_line(&d, kv[i][0]);
        if (!l)
            fail_msg("no line for %s", kv[i][0]);
        assert_int_equal(l->kind, DESC_DDB);
        assert_string_equal(l->value, kv[i][1]);
        assert_true(l->quoted);
    }
    /* "#DDB" is a comment, not a key */
    int found = 0;
    for (size_t i = 0; i < d.nlines; i++)
        if (d.lines[i].text && strcmp(d.lines[i].text, "#DDB") == 0) {
            assert_int_equal(d.lines[i].kind, DESC_OTHER);
            found = 1;
        }
    assert_true(found);
    desc_free(&d);
}

static void test_case_insensitive(void **state)
{
    static const char text[] =
        "# Disk DescriptorFile\n"
        "VERSION=1\n"
        "cid=DEADBEEF\n"
        "ParentCid=ffffffff\n"
        "CREATETYPE=\"monolithicFlat\"\n"
        "\n"
        "# Extent description\n"
        "rw 2048 flat \"a-flat.vmdk\" 0\n"
        "rdonly 10 Sparse \"b.vmdk\"\n"
        "NoAccess 5 zero\n"
        "Rw 7 vmfs \"c.vmdk\"\n"
        "\n"
        "DDB.AdapterType = \"lsilogic\"\n";
    struct descriptor d;
    parse_ok(&d, text, "case.vmdk");
    assert_string_equal(desc_get(&d, "version"), "1");
    assert_string_equal(desc_get(&d, "CID"), "DEADBEEF");
    assert_string_equal(desc_get(&d, "cid"), "DEADBEEF");
    assert_string_equal(desc_get(&d, "parentCID"), "ffffffff");
    assert_string_equal(desc_get(&d, "createtype"), "monolithicFlat");
    uint32_t v;
    TU_OK(desc_get_u32_hex(&d, "cId", &v));
    assert_int_equal(v, 0xdeadbeefu);

    assert_int_equal(desc_num_extents(&d), 4);
    assert_int_equal(desc_extent(&d, 0)->access, DESC_RW);
    assert_string_equal(desc_extent(&d, 0)->type, "FLAT");
    assert_true(desc_extent(&d, 0)->has_offset);
    assert_int_equal(desc_extent(&d, 0)->offset, 0);
    assert_int_equal(desc_extent(&d, 1)->access, DESC_RDONLY);
    assert_string_equal(desc_extent(&d, 1)->type, "SPARSE");
    assert_int_equal(desc_extent(&d, 2)->access, DESC_NOACCESS);
    assert_string_equal(desc_extent(&d, 2)->type, "ZERO");
    assert_string_equal(desc_extent(&d, 3)->type, "VMFS");

    const struct desc_line *l = find_line(&d, "DDB.AdapterType");
    assert_non_null(l);
    assert_int_equal(l->kind, DESC_DDB);
    assert_string_equal(l->value, "lsilogic");

    /* untouched lines keep their original spelling */
    char *out = format_ok(&d);
    assert_string_equal(out, text);
    free(out);

    /* setting with another case changes the existing line, not a new one */
    TU_OK(desc_set(&d, "Cid", "01234567"));
    out = format_ok(&d);
    assert_int_equal(count_substr(out, "=01234567\n"), 1);
    assert_null(strstr(out, "DEADBEEF"));
    assert_int_equal(count_substr(out, "\ncid=") + count_substr(out, "\nCid=") +
                         count_substr(out, "\nCID="), 1);
    free(out);
    desc_free(&d);
}

static void test_crlf(void **state)
{
    static const char text[] =
        "# Disk DescriptorFile\r\n"
        "version=1\r\n"
        "CID=12345678\r\n"
        "parentCID=ffffffff\r\n"
        "createType=\"monolithicFlat\"\r\n"
        "\r\n"
        "# Extent description\r\n"
        "RW 2048 FLAT \"x-flat.vmdk\" 0\r\n"
        "RW 4096 FLAT \"y-flat.vmdk\"  16\r\n"
        "\r\n"
        "ddb.adapterType = \"ide\"\r\n"
        "ddb.geometry.cylinders = \"2\"";   /* last line without newline */
    struct descriptor d;
    parse_ok(&d, text, "crlf.vmdk");
    assert_string_equal(desc_get(&d, "version"), "1");
    assert_string_equal(desc_get(&d, "CID"), "12345678");
    assert_string_equal(desc_get(&d, "createType"), "monolithicFlat");
    assert_int_equal(desc_num_extents(&d), 2);
    assert_string_equal(desc_extent(&d, 0)->file, "x-flat.vmdk");
    assert_int_equal(desc_extent(&d, 0)->offset, 0);
    assert_string_equal(desc_extent(&d, 1)->file, "y-flat.vmdk");
    assert_int_equal(desc_extent(&d, 1)->offset, 16);
    const struct desc_line *l = find_line(&d, "ddb.adapterType");
    assert_non_null(l);
    assert_string_equal(l->value, "ide");
    l = find_line(&d, "ddb.geometry.cylinders");
    assert_non_null(l);
    assert_string_equal(l->value, "2");
    for (size_t i = 0; i < d.nlines; i++) {
        const char *t = d.lines[i].text;
        if (t && *t && t[strlen(t) - 1] == '\r')
            fail_msg("line %zu keeps its CR: \"%s\"", i, t);
    }

    /* the formatted text parses back to the same values */
    char *out = format_ok(&d);
    struct descriptor d2;
    parse_ok(&d2, out, "crlf2.vmdk");
    assert_string_equal(desc_get(&d2, "CID"), "12345678");
    assert_int_equal(desc_num_extents(&d2), 2);
    assert_int_equal(desc_extent(&d2, 1)->sectors, 4096);
    assert_string_equal(find_line(&d2, "ddb.geometry.cylinders")->value, "2");
    free(out);
    desc_free(&d2);
    desc_free(&d);
}

static const char ODD[] =
    "# Disk DescriptorFile\n"
    "# a comment with \"quotes\" and = signs, and trailing spaces   \n"
    "version=1\n"
    "CID=fffffffe\n"
    "parentCID=ffffffff\n"
    "unknownKey=someValue\n"
    "anotherUnknown = \"quoted value\"\n"
    "createType=\"monolithicFlat\"\n"
    "\n"
    "#\n"
    "# Extent description\n"
    "RW 2048 FLAT \"x-flat.vmdk\" 0\n"
    "\n"
    "# The Disk Data Base\n"
    "#DDB\n"
    "\n"
    "ddb.adapterType = \"lsilogic\"\n"
    "ddb.vendor.specific=\"keep me\"\n"
    "ddb.toolsInstallType = \"4\"\n"
    "# trailing comment\n";

static void test_roundtrip_exact(void **state)
{
    struct descriptor d;
    parse_ok(&d, ODD, "odd.vmdk");
    char *out = format_ok(&d);
    assert_string_equal(out, ODD);
    free(out);
    assert_string_equal(desc_get(&d, "unknownKey"), "someValue");
    assert_string_equal(desc_get(&d, "anotherUnknown"), "quoted value");
    desc_free(&d);

    parse_ok(&d, FULL, "full.vmdk");
    out = format_ok(&d);
    assert_string_equal(out, FULL);
    free(out);
    desc_free(&d);
}

static void check_set(const char *key, const char *value, const char *old_line,
                      const char *new_line)
{
    struct descriptor d;
    parse_ok(&d, ODD, "odd.vmdk");
    TU_OK(desc_set(&d, key, value));
    char *out = format_ok(&d);
    char *want = str_replace(ODD, old_line, new_line);
    assert_string_equal(out, want);
    free(want);
    free(out);
    desc_free(&d);
}

static void test_set_existing(void **state)
{
    check_set("CID", "12345678", "CID=fffffffe\n", "CID=12345678\n");
    check_set("createType", "vmfs", "createType=\"monolithicFlat\"\n",
              "createType=\"vmfs\"\n");
    check_set("ddb.adapterType", "ide", "ddb.adapterType = \"lsilogic\"\n",
              "ddb.adapterType = \"ide\"\n");
}

/* Setting an unknown header key changes only its own line. */
static void test_set_unknown_value(void **state)
{
    struct descriptor d;
    parse_ok(&d, ODD, "odd.vmdk");
    TU_OK(desc_set(&d, "unknownKey", "other"));
    assert_string_equal(desc_get(&d, "unknownKey"), "other");
    char *out = format_ok(&d);
    struct descriptor d2;
    parse_ok(&d2, out, "odd2.vmdk");
    assert_string_equal(desc_get(&d2, "unknownKey"), "other");
    assert_int_equal(d2.nlines, d.nlines);
    struct descriptor d0;
    parse_ok(&d0, ODD, "odd.vmdk");
    assert_int_equal(d0.nlines, d2.nlines);
    for (size_t i = 0; i < d0.nlines; i++) {
        if (strncmp(d0.lines[i].text, "unknownKey=", 11) == 0)
            continue;
        assert_string_equal(d2.lines[i].text, d0.lines[i].text);
    }
    free(out);
    desc_free(&d0);
    desc_free(&d2);
    desc_free(&d);
}

static void test_set_new(void **state)
{
    /* new header key goes right after the last header line, quoted */
    check_set("parentFileNameHint", "p.vmdk", "createType=\"monolithicFlat\"\n",
              "createType=\"monolithicFlat\"\nparentFileNameHint=\"p.vmdk\"\n");
    /* new ddb key goes right after the last ddb line, in spec form */
    check_set("ddb.newKey", "v 1", "ddb.toolsInstallType = \"4\"\n",
              "ddb.toolsInstallType = \"4\"\nddb.newKey = \"v 1\"\n");

    /* and the values read back */
    struct descriptor d;
    parse_ok(&d, ODD, "odd.vmdk");
    TU_OK(desc_set(&d, "parentFileNameHint", "p.vmdk"));
    TU_OK(desc_set(&d, "ddb.newKey", "v 1"));
    assert_string_equal(desc_get(&d, "parentFileNameHint"), "p.vmdk");
    const struct desc_line *l = find_line(&d, "ddb.newKey");
    assert_non_null(l);
    assert_int_equal(l->kind, DESC_DDB);
    assert_string_equal(l->value, "v 1");
    desc_free(&d);
}

static void test_set_ddb_without_section(void **state)
{
    static const char text[] =
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        "createType=\"monolithicFlat\"\n"
        "\n"
        "# Extent description\n"
        "RW 2048 FLAT \"x-flat.vmdk\" 0\n";
    struct descriptor d;
    parse_ok(&d, text, "noddb.vmdk");
    TU_OK(desc_set(&d, "ddb.uuid", "00 11 22 33 44 55 66 77-88 99 aa bb cc dd ee ff"));
    char *out = format_ok(&d);
    /* the original text is kept as a prefix, the section follows the extents */
    assert_memory_equal(out, text, strlen(text) - 1);
    const char *sec = strstr(out, "# The Disk Data Base");
    const char *key = strstr(out, "ddb.uuid = \"00 11 22 33 44 55 66 77-88 99 aa bb cc dd ee ff\"");
    const char *ext = strstr(out, "RW 2048 FLAT");
    assert_non_null(sec);
    assert_non_null(key);
    assert_true(ext < sec && sec < key);
    struct descriptor d2;
    parse_ok(&d2, out, "noddb2.vmdk");
    assert_int_equal(find_line(&d2, "ddb.uuid")->kind, DESC_DDB);
    assert_int_equal(desc_num_extents(&d2), 1);
    free(out);
    desc_free(&d2);
    desc_free(&d);
}

static void test_remove(void **state)
{
    check_set("ddb.vendor.specific", NULL, "ddb.vendor.specific=\"keep me\"\n", "");
    check_set("unknownKey", NULL, "unknownKey=someValue\n", "");

    struct descriptor d;
    parse_ok(&d, FULL, "full.vmdk");
    TU_OK(desc_set(&d, "parentFileNameHint", NULL));
    assert_null(desc_get(&d, "parentFileNameHint"));
    TU_OK(desc_set(&d, "ddb.uuid", NULL));
    assert_null(find_line(&d, "ddb.uuid"));
    char *out = format_ok(&d);
    char *w1 = str_replace(FULL, "parentFileNameHint=\"../base/parent.vmdk\"\n", "");
    char *w2 = str_replace(w1, "ddb.uuid = \"60 00 c2 9b 1e 7a 45 c4-2b 15 a5 e2 62 94 e6 50\"\n", "");
    assert_string_equal(out, w2);
    free(w1);
    free(w2);
    free(out);
    desc_free(&d);
}

static void test_set_rejects_quote(void **state)
{
    struct descriptor d;
    parse_ok(&d, ODD, "odd.vmdk");
    TU_ERR(desc_set(&d, "ddb.comment", "a \"quoted\" word"), VD_E_INVAL);
    TU_ERR(desc_set(&d, "ddb.comment", "two\nlines"), VD_E_INVAL);
    char *out = format_ok(&d);
    assert_string_equal(out, ODD);
    free(out);
    desc_free(&d);
}

/* Parse must fail with code, leave d empty and name "name:line:". */
static void expect_parse_error(const char *text, size_t len, const char *where, int code)
{
    struct descriptor d;
    memset(&d, 0, sizeof d);
    vd_err_clear();
    int rc = desc_parse(&d, text, len, "bad.vmdk");
    if (rc != -code)
        fail_msg("desc_parse returned %d, expected %d; msg: %s", rc, -code, vd_err_msg());
    assert_int_equal(d.nlines, 0);
    TU_MSG_HAS(where);
    desc_free(&d);
}

static void test_errors(void **state)
{
    static const char size_nan[] =
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        "createType=\"monolithicFlat\"\n"
        "# Extent description\n"
        "RW 20x48 FLAT \"x-flat.vmdk\" 0\n";
    expect_parse_error(size_nan, strlen(size_nan), "bad.vmdk:7:", VD_E_CORRUPT);

    static const char size_big[] =
        "version=1\n"
        "RW 99999999999999999999999 SPARSE \"x.vmdk\"\n";
    expect_parse_error(size_big, strlen(size_big), "bad.vmdk:2:", VD_E_CORRUPT);

    static const char quote_hdr[] =
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=fffffffe\n"
        "createType=\"monolithicSparse\n"
        "parentCID=ffffffff\n";
    expect_parse_error(quote_hdr, strlen(quote_hdr), "bad.vmdk:4:", VD_E_CORRUPT);

    static const char quote_ext[] =
        "version=1\n"
        "CID=fffffffe\n"
        "parentCID=ffffffff\n"
        "createType=\"monolithicFlat\"\n"
        "\n"
        "RW 2048 FLAT \"x-flat.vmdk 0\n";
    expect_parse_error(quote_ext, strlen(quote_ext), "bad.vmdk:6:", VD_E_CORRUPT);

    static const char quote_ddb[] =
        "version=1\n"
        "ddb.adapterType = \"ide\n";
    expect_parse_error(quote_ddb, strlen(quote_ddb), "bad.vmdk:2:", VD_E_CORRUPT);

    static const char bad_offset[] =
        "version=1\n"
        "\n"
        "RW 2048 FLAT \"x-flat.vmdk\" zero\n";
    expect_parse_error(bad_offset, strlen(bad_offset), "bad.vmdk:3:", VD_E_CORRUPT);

    static const char crlf_err[] =
        "version=1\r\n"
        "CID=fffffffe\r\n"
        "RW abc SPARSE \"x.vmdk\"\r\n";
    expect_parse_error(crlf_err, strlen(crlf_err), "bad.vmdk:3:", VD_E_CORRUPT);

    /* A '"' the format cannot escape: refused, so every descriptor we
     * accept can be written back and read again. */
    static const char stray_name[] =
        "version=1\n"
        "RW 100 FLAT abc\"def\" 0\n";
    expect_parse_error(stray_name, strlen(stray_name), "bad.vmdk:2:", VD_E_CORRUPT);
    static const char stray_value[] =
        "version=1\n"
        "encoding=UTF\"8\n";
    expect_parse_error(stray_value, strlen(stray_value), "bad.vmdk:2:", VD_E_CORRUPT);
    /* A quoted type would render as a bare word with spaces in it. */
    static const char quoted_type[] =
        "version=1\n"
        "RW 20 \"x TT W 20 \"x\n";
    expect_parse_error(quoted_type, strlen(quoted_type), "bad.vmdk:2:", VD_E_CORRUPT);
}

static void test_garbage(void **state)
{
    /* binary noise without NULs (so the whole buffer is considered) */
    char buf[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (char)((x >> 16) % 255 + 1);
    }
    struct descriptor d;
    memset(&d, 0, sizeof d);
    int rc = desc_parse(&d, buf, sizeof buf, "garbage.vmdk");
    if (rc >= 0)
        fail_msg("binary garbage parsed as a descriptor (%zu lines)", d.nlines);
    assert_int_equal(rc, -VD_E_CORRUPT);
    assert_int_equal(d.nlines, 0);
    TU_MSG_HAS("garbage.vmdk");
    desc_free(&d);

    /* a KDMV header is not a text descriptor either */
    unsigned char kdmv[512] = {'K', 'D', 'M', 'V', 1, 0, 0, 0, 3, 0, 0, 0};
    memset(kdmv + 12, 0x80, sizeof kdmv - 12);
    memset(&d, 0, sizeof d);
    rc = desc_parse(&d, (const char *)kdmv, sizeof kdmv, "kdmv.vmdk");
    assert_true(rc < 0);
    assert_int_equal(d.nlines, 0);
}

static void test_stops_at_nul(void **state)
{
    static const char text[] = "version=1\nCID=abcdef01\n\0\x01\x02\xff garbage \"\n";
    struct descriptor d;
    memset(&d, 0, sizeof d);
    TU_OK(desc_parse(&d, text, sizeof text - 1, "nul.vmdk"));
    assert_string_equal(desc_get(&d, "CID"), "abcdef01");
    char *out = format_ok(&d);
    assert_string_equal(out, "version=1\nCID=abcdef01\n");
    free(out);
    desc_free(&d);
}

static void test_init_new(void **state)
{
    struct descriptor d;
    memset(&d, 0, sizeof d);
    TU_OK(desc_init_new(&d, 0x1234abcdu, 0xffffffffu, "monolithicSparse", NULL));
    struct desc_extent e = {.access = DESC_RW, .sectors = 2048, .type = "SPARSE",
                            .file = "a.vmdk"};
    TU_OK(desc_add_extent(&d, &e));
    TU_OK(desc_set(&d, "ddb.adapterType", "ide"));
    char *out = format_ok(&d);
    assert_memory_equal(out, "# Disk DescriptorFile\n", 22);
    const char *p[] = {
        "\nversion=1\n", "\nCID=1234abcd\n", "\nparentCID=ffffffff\n",
        "\ncreateType=\"monolithicSparse\"\n", "\n# Extent description\n",
        "\nRW 2048 SPARSE \"a.vmdk\"\n", "\n# The Disk Data Base\n",
        "\nddb.adapterType = \"ide\"\n",
    };
    const char *prev = out;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        const char *hit = strstr(out, p[i]);
        if (!hit)
            fail_msg("\"%s\" missing from new descriptor:\n%s", p[i], out);
        if (hit < prev)
            fail_msg("\"%s\" out of order in new descriptor:\n%s", p[i], out);
        prev = hit;
    }
    assert_null(strstr(out, "parentFileNameHint"));
    free(out);

    /* a second extent goes after the first; rebuilding an extent line */
    struct desc_extent f = {.access = DESC_RW, .sectors = 100, .type = "FLAT",
                            .file = "b-flat.vmdk", .offset = 0, .has_offset = 1};
    TU_OK(desc_add_extent(&d, &f));
    assert_int_equal(desc_num_extents(&d), 2);
    desc_extent(&d, 0)->sectors = 4096;
    TU_OK(desc_extent_changed(&d, 0));
    out = format_ok(&d);
    const char *a = strstr(out, "\nRW 4096 SPARSE \"a.vmdk\"\n");
    const char *b = strstr(out, "\nRW 100 FLAT \"b-flat.vmdk\" 0\n");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_true(b < strstr(out, "# The Disk Data Base"));
    assert_null(strstr(out, "RW 2048"));
    free(out);
    assert_true(desc_extent_changed(&d, 7) < 0);
    desc_free(&d);

    TU_OK(desc_init_new(&d, 0x0000beefu, 0x11112222u, "monolithicSparse", "base.vmdk"));
    out = format_ok(&d);
    const char *c = strstr(out, "\nCID=0000beef\n");
    const char *pc = strstr(out, "\nparentCID=11112222\n");
    const char *ct = strstr(out, "\ncreateType=\"monolithicSparse\"\n");
    const char *h = strstr(out, "\nparentFileNameHint=\"base.vmdk\"\n");
    assert_non_null(c);
    assert_non_null(pc);
    assert_non_null(ct);
    assert_non_null(h);
    assert_true(c < pc && pc < ct && ct < h);
    free(out);
    desc_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_header_keys, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_extent_types, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_ddb_keys, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_case_insensitive, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_crlf, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_exact, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_existing, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_unknown_value, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_new, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_ddb_without_section, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_remove, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_rejects_quote, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_errors, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_garbage, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stops_at_nul, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_init_new, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests_name("descriptor", tests, NULL, NULL);
}
