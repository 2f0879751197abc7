/*
 * test_dlopen.c - load the library the way dlopen-based consumers do
 * (nbdkit, VMware's sample, ctypes bindings) and resolve every name.
 *
 *   test_dlopen [LIBDIR]     LIBDIR defaults to the build's dist/lib64
 *
 * The 43 names come from abi_functions.h.  Opening libvixDiskLib.so.7 and
 * .so.9 must give the same library (callers hard-coding another soname).
 * A few resolved functions are called, so the symbols are known to be the
 * working functions and not just present.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "vixDiskLib.h"
#include "vddk/disk.h"

#ifndef ABI_LIBDIR
#error "ABI_LIBDIR must name the directory holding libvixDiskLib.so.8"
#endif

static const char *g_libdir = ABI_LIBDIR;

static const char *const names[] = {
#define ABI_FN(n) #n,
#include "abi_functions.h"
#undef ABI_FN
};
#define NNAMES (sizeof names / sizeof names[0])

static void *open_lib(const char *file)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", g_libdir, file);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        fail_msg("dlopen(%s): %s", path, dlerror());
    return h;
}

/* Resolve every name; returns how many were found. */
static size_t resolve_all(void *h, const char *file)
{
    size_t found = 0;
    for (size_t i = 0; i < NNAMES; i++) {
        dlerror();
        void *p = dlsym(h, names[i]);
        if (p)
            found++;
        else
            fprintf(stderr, "%s: %s not found: %s\n", file, names[i], dlerror());
    }
    return found;
}

static void test_name_list(void **state)
{
    (void)state;
    assert_int_equal(NNAMES, 43);
    /* No duplicates in the list itself. */
    for (size_t i = 0; i < NNAMES; i++)
        for (size_t j = i + 1; j < NNAMES; j++)
            if (strcmp(names[i], names[j]) == 0)
                fail_msg("%s listed twice", names[i]);
}

static void test_so8_all_symbols(void **state)
{
    (void)state;
    void *h = open_lib("libvixDiskLib.so.8");
    assert_int_equal(resolve_all(h, "libvixDiskLib.so.8"), NNAMES);
    /* The high-level API is exported too. */
    static const char *const hl[] = {
        "vddk_disk_open", "vddk_disk_close", "vddk_disk_capacity", "vddk_disk_pread",
        "vddk_disk_pwrite", "vddk_disk_read", "vddk_disk_write", "vddk_disk_seek",
        "vddk_disk_flush", "vddk_disk_query_allocated_blocks", "vddk_disk_handle",
        "vddk_disk_last_error",
    };
    for (size_t i = 0; i < sizeof hl / sizeof hl[0]; i++)
        if (!dlsym(h, hl[i]))
            fail_msg("%s not found: %s", hl[i], dlerror());
    /* Internal names stay hidden. */
    assert_null(dlsym(h, "vixdl_fail"));
    assert_null(dlsym(h, "vdisk_open_local"));
    dlclose(h);
}

/* Call through the resolved pointers, typed from the header's prototypes. */
#define SYM(h, var, name)                                                      \
    do {                                                                       \
        *(void **)(&(var)) = dlsym((h), name);                                 \
        if (!(var))                                                            \
            fail_msg("%s not found", name);                                    \
    } while (0)

static void test_so8_calls(void **state)
{
    (void)state;
    void *h = open_lib("libvixDiskLib.so.8");
    VixError (*initex)(uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                       VixDiskLibGenericLogFunc *, const char *, const char *);
    void (*exitf)(void);
    const char *(*modes)(void);
    char *(*errtext)(VixError, const char *);
    void (*freetext)(char *);
    VixError (*connectex)(const VixDiskLibConnectParams *, Bool, const char *, const char *,
                          VixDiskLibConnection *);
    VixError (*disconnect)(VixDiskLibConnection);
    VixDiskLibConnectParams *(*alloccp)(void);
    void (*freecp)(VixDiskLibConnectParams *);
    VixError (*lasterr)(const char **);
    SYM(h, initex, "VixDiskLib_InitEx");
    SYM(h, exitf, "VixDiskLib_Exit");
    SYM(h, modes, "VixDiskLib_ListTransportModes");
    SYM(h, errtext, "VixDiskLib_GetErrorText");
    SYM(h, freetext, "VixDiskLib_FreeErrorText");
    SYM(h, connectex, "VixDiskLib_ConnectEx");
    SYM(h, disconnect, "VixDiskLib_Disconnect");
    SYM(h, alloccp, "VixDiskLib_AllocateConnectParams");
    SYM(h, freecp, "VixDiskLib_FreeConnectParams");
    SYM(h, lasterr, "vddk_disk_last_error");

    /* nbdkit's sequence: InitEx(6, 5, ..., libdir, NULL) with the distrib root. */
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s/..", g_libdir);
    assert_true(initex(6, 5, NULL, NULL, NULL, root, NULL) == VIX_OK);
    const char *m = modes();
    assert_non_null(m);
    assert_non_null(strstr(m, "file"));
    char *t = errtext(VIX_E_DISK_OUTOFRANGE, NULL);
    assert_non_null(t);
    assert_true(t[0] != '\0');
    freetext(t);
    VixDiskLibConnectParams *cp = alloccp();
    assert_non_null(cp);
    VixDiskLibConnection conn = NULL;
    assert_true(connectex(cp, FALSE, NULL, NULL, &conn) == VIX_OK);
    assert_non_null(conn);
    assert_true(disconnect(conn) == VIX_OK);
    freecp(cp);
    assert_true(lasterr(NULL) == VIX_OK);
    exitf();
    dlclose(h);
}

static void test_other_sonames(void **state)
{
    (void)state;
    void *h8 = open_lib("libvixDiskLib.so.8");
    void *ref = dlsym(h8, "VixDiskLib_InitEx");
    assert_non_null(ref);
    static const char *const files[] = { "libvixDiskLib.so.7", "libvixDiskLib.so.9",
                                         "libvixDiskLib.so" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        void *h = open_lib(files[i]);
        assert_int_equal(resolve_all(h, files[i]), NNAMES);
        /* The same file: the loader hands out the already loaded library. */
        void *p = dlsym(h, "VixDiskLib_InitEx");
        if (p != ref)
            fail_msg("%s is a different library from libvixDiskLib.so.8", files[i]);
        dlclose(h);
    }
    dlclose(h8);
}

/* A fresh process view: .so.7 alone (no .so.8 loaded first) also works. */
static void test_so7_alone(void **state)
{
    (void)state;
    void *h = open_lib("libvixDiskLib.so.7");
    assert_int_equal(resolve_all(h, "libvixDiskLib.so.7"), NNAMES);
    VixError (*initex)(uint32, uint32, VixDiskLibGenericLogFunc *, VixDiskLibGenericLogFunc *,
                       VixDiskLibGenericLogFunc *, const char *, const char *);
    void (*exitf)(void);
    SYM(h, initex, "VixDiskLib_InitEx");
    SYM(h, exitf, "VixDiskLib_Exit");
    /* gvddk's Init(7, 0, LIBPATH) with the lib64 directory itself. */
    assert_true(initex(7, 0, NULL, NULL, NULL, g_libdir, NULL) == VIX_OK);
    exitf();
    dlclose(h);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_libdir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_list),
        cmocka_unit_test(test_so7_alone),
        cmocka_unit_test(test_so8_all_symbols),
        cmocka_unit_test(test_so8_calls),
        cmocka_unit_test(test_other_sonames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
