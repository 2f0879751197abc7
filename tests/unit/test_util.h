/* test_util.h - shared helpers for the engine unit tests.
 *
 * Every test gets a fresh temporary directory (tu_setup / tu_teardown as
 * cmocka setup/teardown), plus helpers to craft and inspect files: whole-file
 * snapshots, little-endian patches, KDMV header and grain-table access,
 * embedded and text descriptor edits, and deterministic data patterns. */
#ifndef VD_TEST_UTIL_H
#define VD_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/err.h"
#include "vmdk/vmdk.h"

/* ---- per-test temporary directory ------------------------------------ */

/* cmocka setup: creates $TMPDIR/vdunit.XXXXXX (or /tmp/...). */
int tu_setup(void **state);
/* cmocka teardown: removes the directory and everything in it. */
int tu_teardown(void **state);
/* The current test's directory. */
const char *tu_dir(void);
/* dir/name in one of a ring of static buffers (valid for the next 31 calls). */
const char *tu_path(const char *name);

/* ---- assertions ------------------------------------------------------- */

/* Expect success; on failure print the engine's detail message. */
#define TU_OK(expr)                                                            \
    do {                                                                       \
        int tu_rc_ = (expr);                                                   \
        if (tu_rc_ != 0)                                                       \
            fail_msg("%s returned %d (%s): %s", #expr, tu_rc_,                 \
                     vd_err_name(tu_rc_), vd_err_msg());                       \
    } while (0)

/* Expect exactly -code. */
#define TU_ERR(expr, code)                                                     \
    do {                                                                       \
        int tu_rc_ = (expr);                                                   \
        if (tu_rc_ != -(int)(code))                                            \
            fail_msg("%s returned %d (%s), expected %d (%s); msg: %s", #expr,  \
                     tu_rc_, vd_err_name(tu_rc_), -(int)(code),                \
                     vd_err_name(code), vd_err_msg());                         \
    } while (0)

/* Expect the last error message to contain needle. */
#define TU_MSG_HAS(needle)                                                     \
    do {                                                                       \
        const char *tu_m_ = vd_err_msg();                                      \
        if (!tu_m_ || !strstr(tu_m_, (needle)))                                \
            fail_msg("error message \"%s\" does not contain \"%s\"",           \
                     tu_m_ ? tu_m_ : "(null)", (needle));                      \
    } while (0)

/* ---- files ------------------------------------------------------------ */

int tu_exists(const char *path);
uint64_t tu_file_size(const char *path);       /* fails the test if missing */
/* Whole file into a malloc'd buffer (NUL-terminated, len excludes it). */
unsigned char *tu_read_all(const char *path, size_t *len);
void tu_write_all(const char *path, const void *buf, size_t len);
void tu_pwrite(const char *path, uint64_t off, const void *buf, size_t len);
void tu_pread(const char *path, uint64_t off, void *buf, size_t len);
void tu_put_u8(const char *path, uint64_t off, uint8_t v);
void tu_put_u16(const char *path, uint64_t off, uint16_t v);
void tu_put_u32(const char *path, uint64_t off, uint32_t v);
void tu_put_u64(const char *path, uint64_t off, uint64_t v);
uint32_t tu_get_u32(const char *path, uint64_t off);
uint64_t tu_get_u64(const char *path, uint64_t off);
void tu_truncate(const char *path, uint64_t len);
void tu_unlink(const char *path);

/* Names of the regular files in dir, sorted; returns the count. */
size_t tu_list_dir(const char *dir, char ***names);
void tu_free_names(char **names, size_t n);

/* Snapshot of every file in a directory (names and contents). */
struct tu_dirsnap;
struct tu_dirsnap *tu_dir_snapshot(const char *dir);
/* Fails the test (naming the first difference) unless dir matches snap. */
void tu_assert_dir_unchanged(const struct tu_dirsnap *snap, const char *dir);
void tu_dirsnap_free(struct tu_dirsnap *snap);

/* ---- text edits -------------------------------------------------------- */

/* Replace the first occurrence of old in the file by new (fails if absent). */
void tu_replace_in_file(const char *path, const char *old, const char *new_text);
/* The value of header key (exact case) in descriptor text, into buf. */
int tu_desc_value(const char *text, const char *key, char *buf, size_t size);

/* ---- hosted sparse (KDMV) extents -------------------------------------- */

/* Header field offsets (reference section 2.1). */
enum {
    TU_H_MAGIC = 0, TU_H_VERSION = 4, TU_H_FLAGS = 8, TU_H_CAPACITY = 12,
    TU_H_GRAIN = 20, TU_H_DESC_OFF = 28, TU_H_DESC_SIZE = 36,
    TU_H_NUM_GTES = 44, TU_H_RGD = 48, TU_H_GD = 56, TU_H_OVERHEAD = 64,
    TU_H_UNCLEAN = 72, TU_H_NL1 = 73, TU_H_NL2 = 74, TU_H_NL3 = 75,
    TU_H_NL4 = 76, TU_H_COMPRESS = 77,
};
#define TU_KDMV_MAGIC 0x564D444Bu

struct tu_sparse_hdr {
    uint32_t magic, version, flags;
    uint64_t capacity, grain, desc_off, desc_size;
    uint32_t num_gtes;
    uint64_t rgd, gd, overhead;
    uint8_t unclean, nl[4];
    uint16_t compress;
};
void tu_read_sparse_hdr(const char *path, struct tu_sparse_hdr *h);
/* Sector of GT number gt (from the GD, or the RGD when redundant). */
uint32_t tu_gde(const char *path, const struct tu_sparse_hdr *h, uint64_t gt, int redundant);
/* Byte offset of the GTE of grain g (grain index within the extent). */
uint64_t tu_gte_offset(const char *path, const struct tu_sparse_hdr *h, uint64_t g,
                       int redundant);
uint32_t tu_gte(const char *path, const struct tu_sparse_hdr *h, uint64_t g, int redundant);
void tu_set_gte(const char *path, const struct tu_sparse_hdr *h, uint64_t g, int redundant,
                uint32_t v);

/* Embedded descriptor text of a monolithic sparse file (malloc'd). */
char *tu_embedded_desc(const char *path);
/* Overwrite the embedded descriptor area with text, NUL-padded. */
void tu_set_embedded_desc(const char *path, const char *text);
/* Replace the first occurrence of old in the embedded descriptor. */
void tu_replace_in_embedded(const char *path, const char *old, const char *new_text);

/* ---- data patterns ------------------------------------------------------ */

/* Bytes that depend on (disk offset, seed), so misplaced data is detected. */
void tu_fill(void *buf, size_t len, uint64_t off, uint32_t seed);
/* Index of the first byte that differs from tu_fill's, or -1. */
long tu_check(const void *buf, size_t len, uint64_t off, uint32_t seed);
int tu_is_zero(const void *buf, size_t len);

/* ---- engine shortcuts --------------------------------------------------- */

/* vmdk_create with the given type/capacity (other params default). */
int tu_create(const char *path, enum vmdk_type type, uint64_t capacity, uint64_t split);
/* Write a pattern at off, fail the test on error. */
void tu_write_pattern(vmdk_disk *d, uint64_t off, size_t len, uint32_t seed);
/* Read and compare with the pattern, fail the test on error or mismatch. */
void tu_expect_pattern(vmdk_disk *d, uint64_t off, size_t len, uint32_t seed);
void tu_expect_zero(vmdk_disk *d, uint64_t off, size_t len);
/* Per-unit block status of [off, off+units*unit): fills st[] (one status per
 * unit); fails if a run straddles a unit with a different status or breaks
 * the documented run rules. */
void tu_status_map(vmdk_disk *d, uint64_t off, uint64_t unit, size_t units,
                   int single_link, int *st);
/* An in-memory model of a disk's contents. */
struct tu_shadow {
    uint8_t *buf;
    uint64_t cap;
};
void tu_shadow_init(struct tu_shadow *s, uint64_t cap);
void tu_shadow_free(struct tu_shadow *s);
/* Write a pattern to the disk and the model (fails the test on error). */
void tu_shadow_write(vmdk_disk *d, struct tu_shadow *s, uint64_t off, size_t len,
                     uint32_t seed);
/* Read the whole disk in odd-sized pieces and compare with the model. */
void tu_shadow_verify(vmdk_disk *d, const struct tu_shadow *s);
/* Read [off, off+len) and compare with the model. */
void tu_shadow_verify_range(vmdk_disk *d, const struct tu_shadow *s, uint64_t off,
                            size_t len);

/* The link's CID (link_info). */
uint32_t tu_cid(vmdk_disk *d, int link);
/* CID of the disk at path, opened read-only without locks. */
uint32_t tu_cid_of(const char *path);

#endif
