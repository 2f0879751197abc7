/* fuzz_descriptor.c - libFuzzer target for the descriptor parser.
 *
 * Arbitrary bytes go through desc_parse.  When they parse, the result is
 * queried and edited through the public descriptor calls, serialised,
 * parsed again, and serialised again: the second text must equal the
 * first (formatting is a fixed point), and nothing may crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "vmdk/descriptor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fixed_point(const struct descriptor *d)
{
    size_t len1 = 0, len2 = 0;
    char *t1 = desc_format(d, &len1);
    if (!t1)
        return; /* out of memory is not a bug here */
    if (strlen(t1) != len1)
        abort();
    struct descriptor d2;
    memset(&d2, 0, sizeof d2);
    if (desc_parse(&d2, t1, len1, "fuzz-reparse") < 0) {
        fprintf(stderr, "FUZZ-CHECK: formatted descriptor does not parse again: %s\n----\n%s\n----\n",
                vd_err_msg(), t1);
        abort();
    }
    char *t2 = desc_format(&d2, &len2);
    if (t2 && (len1 != len2 || memcmp(t1, t2, len1) != 0)) {
        fprintf(stderr, "FUZZ-CHECK: format(parse(format(x))) != format(x)\n----\n%s\n----\n%s\n----\n",
                t1, t2);
        abort();
    }
    free(t2);
    desc_free(&d2);
    free(t1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct descriptor d;
    memset(&d, 0, sizeof d);
    if (desc_parse(&d, (const char *)data, size, "fuzz") < 0)
        return 0;

    check_fixed_point(&d);

    /* Read everything a caller would read. */
    static const char *const keys[] = { "version", "CID", "parentCID", "createType",
                                        "parentFileNameHint", "encoding", "ddb.uuid",
                                        "ddb.adapterType" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = desc_get(&d, keys[i]);
        if (v)
            (void)strlen(v);
    }
    uint32_t cid;
    (void)desc_get_u32_hex(&d, "CID", &cid);
    (void)desc_get_u32_hex(&d, "parentCID", &cid);
    size_t n = desc_num_extents(&d);
    for (size_t i = 0; i < n; i++) {
        struct desc_extent *e = desc_extent(&d, i);
        if (!e)
            abort();
        if (e->type)
            (void)strlen(e->type);
        if (e->file)
            (void)strlen(e->file);
    }

    /* Edit it the way the engine does, then the result must still be a
     * descriptor that formats to a fixed point. */
    (void)desc_set(&d, "CID", "0badc0de");
    (void)desc_set(&d, "parentFileNameHint", NULL);
    (void)desc_set(&d, "ddb.uuid", "60 00 c2 9b 1e 7a 45 c4-2b 15 a5 e2 62 94 e6 50");
    (void)desc_set(&d, "ddb.geometry.cylinders", NULL);
    for (size_t i = 0; i < n; i++) {
        struct desc_extent *e = desc_extent(&d, i);
        e->sectors += 128;
        (void)desc_extent_changed(&d, i);
    }
    struct desc_extent add;
    memset(&add, 0, sizeof add);
    add.access = DESC_RW;
    add.sectors = 2048;
    add.type = (char *)"SPARSE";
    add.file = (char *)"fuzz-s009.vmdk";
    (void)desc_add_extent(&d, &add);
    check_fixed_point(&d);

    desc_free(&d);
    return 0;
}
