/* test_manifest.c - backup-set manifests (tools/vddk/manifest.c): a
 * round trip, and every kind of bad input giving a message that names the
 * file and the field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manifest.h"

static struct manifest *sample(void)
{
    struct manifest *m = calloc(1, sizeof *m);
    m->tool = strdup("openvddk test");
    m->server = strdup("vc.example");
    m->started = strdup("2026-12-05T10:00:00Z");
    m->finished = strdup("2026-12-05T10:01:00Z");
    m->base = strdup("../monday");
    m->block_size = 1u << 20;
    m->nvms = 1;
    m->vms = calloc(1, sizeof *m->vms);
    struct mf_vm *v = &m->vms[0];
    v->moref = strdup("vm-42");
    v->name = strdup("web \"one\"\n");
    v->snapshot = strdup("snapshot-7");
    v->config = strdup("vm-42/config.json");
    v->ndisks = 2;
    v->disks = calloc(2, sizeof *v->disks);
    for (int k = 0; k < 2; k++) {
        struct mf_disk *d = &v->disks[k];
        d->key = 2000 + k;
        d->source = strdup("[datastore1] web/web.vmdk");
        d->file = k ? strdup("vm-42/disk-2001.vmdk") : strdup("vm-42/disk-2000.vmdk");
        d->format = strdup(k ? "monolithicSparse" : "streamOptimized");
        d->base = k ? strdup("../monday/vm-42/disk-2001.vmdk") : NULL;
        d->capacity = (3u << 20) + 512 * k;
        d->allocated = 1u << 20;
        d->stored = 65536;
        memset(d->sha256, 0xa0 + k, sizeof d->sha256);
        d->nblocks = mf_blocks_for(d->capacity, m->block_size);
        d->blocks = calloc(d->nblocks, sizeof *d->blocks);
        for (uint64_t b = 0; b < d->nblocks; b++)
            memset(d->blocks[b], (int)b, MF_HASH_LEN);
    }
    return m;
}

static void round_trip(void **state)
{
    (void)state;
    struct manifest *m = sample();
    char *text = mf_format(m);
    assert_non_null(text);
    struct manifest *r;
    char err[512];
    assert_int_equal(mf_parse(text, strlen(text), "m.json", &r, err, sizeof err), 0);
    assert_string_equal(r->vms[0].name, m->vms[0].name);
    assert_string_equal(r->base, "../monday");
    assert_int_equal(r->vms[0].ndisks, 2);
    assert_int_equal(r->vms[0].disks[1].nblocks, 4);
    assert_int_equal(r->vms[0].disks[1].capacity, (3u << 20) + 512);
    assert_null(r->vms[0].disks[0].base);
    assert_string_equal(r->vms[0].disks[1].base, "../monday/vm-42/disk-2001.vmdk");
    assert_memory_equal(r->vms[0].disks[1].sha256, m->vms[0].disks[1].sha256, MF_HASH_LEN);
    assert_memory_equal(r->vms[0].disks[1].blocks[3], m->vms[0].disks[1].blocks[3], MF_HASH_LEN);
    assert_ptr_equal(mf_find_disk(mf_find_vm(r, "vm-42"), 2001), &r->vms[0].disks[1]);
    assert_null(mf_find_vm(r, "vm-43"));
    mf_free(r);
    mf_free(m);
    free(text);
}

/* Replace the first occurrence of from by to in the sample's JSON and
 * expect a parse failure whose message contains want. */
static void expect_bad(const char *from, const char *to, const char *want)
{
    struct manifest *m = sample();
    char *text = mf_format(m);
    mf_free(m);
    char *at = strstr(text, from);
    assert_non_null(at);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *bad = malloc(n);
    memcpy(bad, text, (size_t)(at - text));
    strcpy(bad + (at - text), to);
    strcat(bad, at + strlen(from));
    struct manifest *r = (struct manifest *)1;
    char err[512] = "";
    int rc = mf_parse(bad, strlen(bad), "set/manifest.json", &r, err, sizeof err);
    if (rc == 0 || !strstr(err, want) || !strstr(err, "set/manifest.json"))
        fail_msg("%s -> %s: rc %d, message \"%s\", wanted \"%s\"", from, to, rc, err, want);
    assert_null(r);
    free(bad);
    free(text);
}

static void corrupt(void **state)
{
    (void)state;
    expect_bad("\"openvddk-backup\"", "\"something-else\"", "not a backup-set manifest");
    expect_bad("\"version\": 1", "\"version\": 2", "version 2 is not supported");
    expect_bad("\"version\": 1", "\"version\": \"1\"", "\"version\" is not an integer");
    expect_bad("\"block_size\": 1048576", "\"block_size\": 1000", "power of two");
    expect_bad("\"block_size\": 1048576", "\"block_size\": -4096", "out of range");
    expect_bad("\"moref\": \"vm-42\"", "\"moref\": 42", "\"moref\" is not a string");
    expect_bad("\"moref\": \"vm-42\"", "\"mo\": \"vm-42\"", "\"moref\" is missing");
    expect_bad("\"vm-42/disk-2000.vmdk\"", "\"../../etc/passwd\"", "leaves the set directory");
    expect_bad("\"vm-42/disk-2000.vmdk\"", "\"/etc/passwd\"", "leaves the set directory");
    expect_bad("\"vm-42/disk-2000.vmdk\"", "\"vm-42/../../x\"", "leaves the set directory");
    expect_bad("\"vm-42/config.json\"", "\"a//b\"", "leaves the set directory");
    expect_bad("\"../monday/vm-42/disk-2001.vmdk\"", "\"/abs/x.vmdk\"", "not a relative path");
    expect_bad("\"../monday\"", "\"../a/../b\"", "not a relative path");
    expect_bad("\"streamOptimized\"", "\"vmfs\"", "unknown \"format\"");
    expect_bad("\"capacity\": 3145728", "\"capacity\": 3145729", "whole number of sectors");
    expect_bad("\"capacity\": 3145728", "\"capacity\": 4194304", "block hashes for a capacity");
    expect_bad("\"key\": 2001", "\"key\": 2000", "device key 2000 appears twice");
    expect_bad("\"key\": 2001", "\"key\": -1", "out of range");
    expect_bad("\"sha256\": \"a0a0", "\"sha256\": \"zza0", "not 64 hex digits");
    expect_bad("\"0000000000000000000000000000000000000000000000000000000000000000\"",
               "\"00\"", "block 0: not 64 hex digits");
    expect_bad("\"blocks\": [", "\"blocks\": 7, \"x\": [", "\"blocks\" is missing");
    expect_bad("\"vms\": [", "\"vms\": {}, \"x\": [", "\"vms\" is missing");
    expect_bad("{", "[", "not valid JSON");
    expect_bad("\"tool\"", "\"tool\" \"", "not valid JSON");
}

static void truncated_and_trailing(void **state)
{
    (void)state;
    struct manifest *m = sample();
    char *text = mf_format(m);
    mf_free(m);
    size_t n = strlen(text);
    struct manifest *r;
    char err[512];
    /* Every prefix fails cleanly. */
    for (size_t cut = 0; cut < n - 1; cut += 7)
        assert_int_equal(mf_parse(text, cut, "m", &r, err, sizeof err), -1);
    char *more = malloc(n + 8);
    memcpy(more, text, n);
    strcpy(more + n, "\n{}");
    assert_int_equal(mf_parse(more, strlen(more), "m", &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "text after the JSON document"));
    strcpy(more + n, " \n");
    assert_int_equal(mf_parse(more, strlen(more), "m", &r, err, sizeof err), 0);
    mf_free(r);
    const char *empty = "{\"format\":\"openvddk-backup\",\"version\":1,\"block_size\":4096,"
                        "\"vms\":[]}";
    assert_int_equal(mf_parse(empty, strlen(empty), "m", &r, err, sizeof err), 0);
    assert_int_equal(r->nvms, 0);
    mf_free(r);
    free(more);
    free(text);
}

static void paths(void **state)
{
    (void)state;
    assert_true(mf_safe_path("a/b.vmdk"));
    assert_false(mf_safe_path(""));
    assert_false(mf_safe_path("a/"));
    assert_false(mf_safe_path("./a"));
    assert_false(mf_safe_path(".."));
    assert_true(mf_safe_base("../../x/y"));
    assert_false(mf_safe_base(".."));
    assert_false(mf_safe_base("x/../y"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(corrupt),
        cmocka_unit_test(truncated_and_trailing),
        cmocka_unit_test(paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
