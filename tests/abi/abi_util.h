/*
 * abi_util.h - helpers for the ABI tests, written against the public
 * headers only (vixDiskLib.h, vddk/disk.h): no library internals.
 *
 * - library life cycle for a whole test executable (cmocka group setup);
 * - a fresh scratch directory and a local connection per test case;
 * - capture of the warn/log/panic callbacks;
 * - assertion macros that print the error text and the last warning;
 * - deterministic data patterns, a PRNG, directory listings.
 */
#ifndef ABI_UTIL_H
#define ABI_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vixDiskLib.h"

/* ---- library and per-test fixtures ----------------------------------- */

/* Group setup: VixDiskLib_InitEx(8, 0) with the capturing callbacks below,
 * no libDir, no config file.  Group teardown: VixDiskLib_Exit. */
int abi_lib_setup(void **state);
int abi_lib_teardown(void **state);

/* Test setup: a scratch directory $TMPDIR/vdabi.XXXXXX (or /tmp) and a
 * local connection.  Teardown closes any handle still registered with
 * abi_track (a failed test may leave some), disconnects and removes the
 * directory. */
int abi_setup(void **state);
int abi_teardown(void **state);

const char *abi_dir(void);
/* dir/name in a ring of static buffers (valid for the next 31 calls). */
const char *abi_path(const char *name);
VixDiskLibConnection abi_conn(void);

/* Remember a handle so teardown closes it if the test fails first. */
void abi_track(VixDiskLibHandle h);
void abi_untrack(VixDiskLibHandle h);

/* Optional command-line filters for a test executable: argv[1] is a
 * cmocka test filter (glob, e.g. "test_qab*"), argv[2] a skip filter. */
void abi_filters(int argc, char **argv);

/* ---- callbacks --------------------------------------------------------- */

void abi_log_cb(const char *fmt, va_list ap);
void abi_warn_cb(const char *fmt, va_list ap);
void abi_panic_cb(const char *fmt, va_list ap);

/* The last warning (copied; "" if none) and the counters. */
const char *abi_last_warn(void);
unsigned abi_warn_count(void);
unsigned abi_log_count(void);
unsigned abi_panic_count(void);
/* Count of log or warn messages containing "cannot open shared object". */
unsigned abi_bad_message_count(void);
void abi_reset_messages(void);

/* ---- errors ------------------------------------------------------------ */

/* Error text of e from VixDiskLib_GetErrorText, in a static ring buffer. */
const char *abi_err_text(VixError e);

#define ABI_OK(expr)                                                           \
    do {                                                                       \
        VixError abi_e_ = (expr);                                              \
        if (abi_e_ != VIX_OK)                                                  \
            fail_msg("%s returned %lu (%s); last warning: %s", #expr,          \
                     (unsigned long)abi_e_, abi_err_text(abi_e_),              \
                     abi_last_warn());                                         \
    } while (0)

#define ABI_ERR(expr, code)                                                    \
    do {                                                                       \
        VixError abi_e_ = (expr);                                              \
        VixError abi_x_ = (VixError)(code);                                    \
        if (abi_e_ != abi_x_)                                                  \
            fail_msg("%s returned %lu (%s), expected %lu (%s); last warning: %s", \
                     #expr, (unsigned long)abi_e_, abi_err_text(abi_e_),       \
                     (unsigned long)abi_x_, abi_err_text(abi_x_),              \
                     abi_last_warn());                                         \
    } while (0)

/* Any failure (not VIX_OK) is expected. */
#define ABI_FAILS(expr)                                                        \
    do {                                                                       \
        VixError abi_e_ = (expr);                                              \
        if (abi_e_ == VIX_OK)                                                  \
            fail_msg("%s succeeded, expected a failure", #expr);               \
    } while (0)

/* ---- disks ------------------------------------------------------------- */

/* Create parameters with an LSI Logic adapter, hwVersion ESX4X and
 * 512-byte sectors. */
VixDiskLibCreateParams abi_create_params(VixDiskLibDiskType type,
                                         VixDiskLibSectorType capacity);
/* VixDiskLib_Create on abi_conn() with abi_create_params. */
VixError abi_create(const char *path, VixDiskLibDiskType type, VixDiskLibSectorType capacity);
/* Create, failing the test on error. */
void abi_create_ok(const char *path, VixDiskLibDiskType type, VixDiskLibSectorType capacity);
/* Open on abi_conn() (tracked), failing the test on error. */
VixDiskLibHandle abi_open(const char *path, uint32 flags);
/* Close a handle from abi_open, failing the test on error. */
void abi_close(VixDiskLibHandle h);
/* Capacity in sectors from GetInfo. */
VixDiskLibSectorType abi_capacity(VixDiskLibHandle h);

/* ---- data -------------------------------------------------------------- */

/* Bytes that depend on (absolute byte offset, seed): misplaced data shows. */
void abi_fill(void *buf, size_t len, uint64_t off, uint32_t seed);
/* Index of the first byte differing from abi_fill's, or -1. */
long abi_check(const void *buf, size_t len, uint64_t off, uint32_t seed);
int abi_is_zero(const void *buf, size_t len);

/* Sector I/O through VixDiskLib_Write/Read with patterns; fail on error
 * or mismatch. */
void abi_write_pattern(VixDiskLibHandle h, uint64 sector, uint64 n, uint32_t seed);
void abi_expect_pattern(VixDiskLibHandle h, uint64 sector, uint64 n, uint32_t seed);
void abi_expect_zero(VixDiskLibHandle h, uint64 sector, uint64 n);

/* splitmix64. */
uint64_t abi_rand(uint64_t *state);

/* ---- files ------------------------------------------------------------- */

int abi_exists(const char *path);
/* Sorted names of the regular files in dir; returns the count. */
size_t abi_list(const char *dir, char ***names);
void abi_free_list(char **names, size_t n);
/* Number of files in dir whose name starts with prefix. */
size_t abi_count_prefix(const char *dir, const char *prefix);
void abi_write_file(const char *path, const char *text);
/* Remove a directory tree (nftw); missing is fine. */
void abi_rmtree(const char *dir);
/* A new scratch directory (malloc'd path) under $TMPDIR or /tmp. */
char *abi_mkdtemp(const char *tag);

#endif
