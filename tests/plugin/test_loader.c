/* test_loader.c - NAS plugins through the public API (libvixDiskLib.so):
 * loading and skipping broken plugins, libDir forms, the clone fast path
 * with nas-localfs on the build's file system (no reflink: full clones by
 * copy_file_range), its fallbacks, thin and thick results, and cancel.
 *
 * Each test runs its own InitEx (with a config file naming a plugin
 * directory made of links to the test plugins) and Exit, captures every
 * log line, and checks both the result and what the log says happened. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vixDiskLib.h"

#ifndef TP_DIR
#error "TP_DIR (directory of the test plugins) must be defined"
#endif

/* ---- captured log ---- */

static char *logbuf;
static size_t loglen;

static void capture(const char *tag, const char *fmt, va_list ap)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "[%s] ", tag);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t l = strlen(line);
    if (l == 0 || line[l - 1] != '\n')
        line[l++] = '\n', line[l] = '\0';
    char *nb = realloc(logbuf, loglen + l + 1);
    assert_non_null(nb);
    logbuf = nb;
    memcpy(logbuf + loglen, line, l + 1);
    loglen += l;
    if (getenv("VDP_TEST_VERBOSE"))
        fputs(line, stderr);
}

static void log_cb(const char *fmt, va_list ap) { capture("log", fmt, ap); }
static void warn_cb(const char *fmt, va_list ap) { capture("warn", fmt, ap); }
static void panic_cb(const char *fmt, va_list ap) { capture("panic", fmt, ap); }

static int has_log(const char *s)
{
    return logbuf && strstr(logbuf, s) != NULL;
}

/* A line containing both a and b. */
static int has_line(const char *a, const char *b)
{
    for (const char *p = logbuf; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, n);
        int ok = strstr(line, a) && strstr(line, b);
        free(line);
        if (ok)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

#define ASSERT_LOG(s)                                                                  \
    do {                                                                               \
        if (!has_log(s))                                                               \
            fail_msg("log lacks \"%s\"; log was:\n%s", (s), logbuf ? logbuf : "");    \
    } while (0)
#define ASSERT_NO_LOG(s)                                                               \
    do {                                                                               \
        if (has_log(s))                                                                \
            fail_msg("log has \"%s\"; log was:\n%s", (s), logbuf ? logbuf : "");      \
    } while (0)
#define ASSERT_LINE(a, b)                                                              \
    do {                                                                               \
        if (!has_line((a), (b)))                                                       \
            fail_msg("no log line with \"%s\" and \"%s\"; log was:\n%s", (a), (b),     \
                     logbuf ? logbuf : "");                                            \
    } while (0)

#define VOK(expr)                                                                      \
    do {                                                                               \
        VixError e_ = (expr);                                                          \
        if (e_ != VIX_OK)                                                              \
            fail_msg("%s returned %lu; log was:\n%s", #expr, (unsigned long)e_,        \
                     logbuf ? logbuf : "");                                            \
    } while (0)

/* ---- scratch directory, plugin directory, config ---- */

static char scratch[512], plugdir[600], cfgfile[600], emptydir[600];
static VixDiskLibConnection conn;
static int inited;   /* InitEx done and not yet Exit (a failed test skips finish) */

static const char *path_in(const char *name)
{
    static char ring[8][700];
    static int k;
    char *p = ring[k++ % 8];
    snprintf(p, sizeof ring[0], "%s/%s", scratch, name);
    return p;
}

static int rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/vdplugin.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(scratch))
        return -1;
    snprintf(plugdir, sizeof plugdir, "%s/plugins", scratch);
    snprintf(emptydir, sizeof emptydir, "%s/nolib", scratch);
    snprintf(cfgfile, sizeof cfgfile, "%s/vddk.conf", scratch);
    mkdir(plugdir, 0755);
    mkdir(emptydir, 0755);
    free(logbuf);
    logbuf = NULL;
    loglen = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (inited) {
        if (conn)
            VixDiskLib_Disconnect(conn);
        conn = NULL;
        VixDiskLib_Exit();
        inited = 0;
    }
    rm_tree(scratch);
    return 0;
}

/* Put links to the named plugin libraries (TP_DIR/<name>) in plugdir. */
static void plugins(const char *const *names)
{
    for (; *names; names++) {
        char from[700], to[800];
        const char *base = strrchr(*names, '/');
        snprintf(from, sizeof from, "%s/%s", TP_DIR, *names);
        if ((*names)[0] == '/')
            snprintf(from, sizeof from, "%s", *names);
        snprintf(to, sizeof to, "%s/%s", plugdir, base ? base + 1 : *names);
        assert_int_equal(symlink(from, to), 0);
    }
}

/* InitEx with the config file (plugin directory + extra lines). */
static void init_with(const char *lib_dir, const char *extra)
{
    FILE *f = fopen(cfgfile, "w");
    assert_non_null(f);
    fprintf(f, "openvddk.plugin.dir = \"%s\"\n%s", plugdir, extra ? extra : "");
    fclose(f);
    VOK(VixDiskLib_InitEx(8, 0, log_cb, warn_cb, panic_cb, lib_dir, cfgfile));
    inited = 1;
    VOK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn));
}

static void finish(void)
{
    VixDiskLib_Disconnect(conn);
    conn = NULL;
    VixDiskLib_Exit();
    inited = 0;
    if (has_log("cannot open shared object file"))
        fail_msg("a log line says \"cannot open shared object file\":\n%s", logbuf);
}

/* ---- disks ---- */

static void create(const char *name, VixDiskLibDiskType t, uint64_t mib)
{
    VixDiskLibCreateParams cp = { .diskType = t, .adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                  .hwVersion = 7, .capacity = mib * 2048 };
    VOK(VixDiskLib_Create(conn, path_in(name), &cp, NULL, NULL));
}

static void pattern(unsigned char *b, size_t n, uint64_t off, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(((off + i) * 2654435761u >> 13) ^ seed) | 1;
}

/* Write pattern data into sectors [first, first+count). */
static void fill(const char *name, uint64_t first, uint64_t count, unsigned seed)
{
    VixDiskLibHandle h;
    VOK(VixDiskLib_Open(conn, path_in(name), 0, &h));
    unsigned char *b = malloc(2048 * 512);
    assert_non_null(b);
    for (uint64_t s = first; s < first + count; s += 2048) {
        uint64_t n = first + count - s < 2048 ? first + count - s : 2048;
        pattern(b, n * 512, s * 512, seed);
        VOK(VixDiskLib_Write(h, s, n, b));
    }
    free(b);
    VOK(VixDiskLib_Close(h));
}

static void assert_same(const char *a, const char *b)
{
    VixDiskLibHandle ha, hb;
    VixDiskLibInfo *ia, *ib;
    VOK(VixDiskLib_Open(conn, path_in(a), VIXDISKLIB_FLAG_OPEN_READ_ONLY, &ha));
    VOK(VixDiskLib_Open(conn, path_in(b), VIXDISKLIB_FLAG_OPEN_READ_ONLY, &hb));
    VOK(VixDiskLib_GetInfo(ha, &ia));
    VOK(VixDiskLib_GetInfo(hb, &ib));
    assert_int_equal(ia->capacity, ib->capacity);
    unsigned char *x = malloc(2048 * 512), *y = malloc(2048 * 512);
    assert_true(x && y);
    for (uint64_t s = 0; s < ia->capacity; s += 2048) {
        uint64_t n = ia->capacity - s < 2048 ? ia->capacity - s : 2048;
        VOK(VixDiskLib_Read(ha, s, n, x));
        VOK(VixDiskLib_Read(hb, s, n, y));
        if (memcmp(x, y, n * 512) != 0)
            fail_msg("%s and %s differ in sectors %llu..%llu", a, b, (unsigned long long)s,
                     (unsigned long long)(s + n - 1));
    }
    free(x);
    free(y);
    VixDiskLib_FreeInfo(ia);
    VixDiskLib_FreeInfo(ib);
    VixDiskLib_Close(ha);
    VixDiskLib_Close(hb);
}

static VixError clone_to(const char *src, const char *dst, VixDiskLibDiskType t, Bool over,
                         VixDiskLibProgressFunc pf, void *pd)
{
    VixDiskLibCreateParams cp = { .diskType = t, .adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC,
                                  .hwVersion = 7 };
    return VixDiskLib_Clone(conn, path_in(dst), conn, path_in(src), &cp, pf, pd, over);
}

static uint64_t allocated(const char *name)
{
    struct stat st;
    assert_int_equal(stat(path_in(name), &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* Files in the scratch directory other than the given ones (and the
 * plugin directory, config and empty libDir). */
static void assert_only_files(const char *const *expected)
{
    DIR *d = opendir(scratch);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "plugins") ||
            !strcmp(n, "nolib") || !strcmp(n, "vddk.conf"))
            continue;
        int ok = 0;
        for (const char *const *x = expected; *x && !ok; x++)
            ok = strcmp(*x, n) == 0;
        if (!ok) {
            closedir(d);
            fail_msg("unexpected file %s left in %s", n, scratch);
        }
    }
    closedir(d);
}

/* Create a 16 MiB monolithicFlat disk with data, clone it with the library
 * and check the copy; the log must say the library copied it. */
static void clone_falls_back(const char *why)
{
    create("src.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 16);
    fill("src.vmdk", 0, 16 * 2048, 7);
    VOK(clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE, NULL, NULL));
    assert_same("src.vmdk", "dst.vmdk");
    ASSERT_LINE("no plugin offload", why);
    ASSERT_LOG("the library copies the data");
    static const char *const files[] = { "src.vmdk", "src-flat.vmdk", "dst.vmdk",
                                         "dst-flat.vmdk", NULL };
    assert_only_files(files);
}

/* ---- loading ---- */

static void test_wrong_major(void **state)
{
    (void)state;
    static const char *const p[] = { "major/libtp-major.so", NULL };
    plugins(p);
    init_with(emptydir, NULL);
    ASSERT_LINE("tp-major", "major versions must match");
    ASSERT_LINE("tp-major", "skipped");
    ASSERT_NO_LOG("tp-major Init called");
    ASSERT_LOG("0 NAS plugins loaded");
    clone_falls_back("no NAS plugin is loaded");
    finish();
    ASSERT_NO_LOG("tp-major Done called");
}

static void test_failing_init(void **state)
{
    (void)state;
    static const char *const p[] = { "init/libtp-init.so", NULL };
    plugins(p);
    init_with(emptydir, NULL);
    ASSERT_LOG("tp-init Init called");
    ASSERT_LINE("tp-init", "Init failed");
    ASSERT_LOG("0 NAS plugins loaded");
    clone_falls_back("no NAS plugin is loaded");
    finish();
    ASSERT_NO_LOG("tp-init Done called");
}

static void test_missing_entry_points(void **state)
{
    (void)state;
    static const char *const p[] = { "noentry/libtp-noentry.so", "nullfn/libtp-nullfn.so",
                                     NULL };
    plugins(p);
    init_with(emptydir, NULL);
    ASSERT_LINE("libtp-noentry.so", "exports no VixDiskLibPlugin_EntryPoint symbol; skipped");
    ASSERT_LINE("tp-nullfn", "has no ExecPrimitive entry point; skipped");
    ASSERT_NO_LOG("tp-nullfn Init called");
    ASSERT_LOG("0 NAS plugins loaded");
    clone_falls_back("no NAS plugin is loaded");
    finish();
}

static void test_not_a_library(void **state)
{
    (void)state;
    char junk[800];
    snprintf(junk, sizeof junk, "%s/libjunk.so", plugdir);
    FILE *f = fopen(junk, "w");
    assert_non_null(f);
    fputs("this is not an ELF file\n", f);
    fclose(f);
    /* A dangling link is skipped as well. */
    char dangling[800];
    snprintf(dangling, sizeof dangling, "%s/libgone.so", plugdir);
    assert_int_equal(symlink("/nonexistent/libgone.so", dangling), 0);
    init_with(emptydir, NULL);
    ASSERT_LINE("libjunk.so", "could not be loaded");
    ASSERT_LINE("libgone.so", "skipped");
    ASSERT_LOG("0 NAS plugins loaded");
    clone_falls_back("no NAS plugin is loaded");
    finish();
}

static void test_exec_errors_fall_back(void **state)
{
    (void)state;
    static const char *const p[] = { "exec/libtp-exec.so", NULL };
    plugins(p);
    init_with(emptydir, NULL);
    ASSERT_LOG("tp-exec Init called");
    ASSERT_LOG("1 NAS plugin loaded");
    /* A thick create: RESVSPACE fails, the library reserves by itself. */
    create("thick.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 8);
    ASSERT_LOG("tp-exec RESVSPACE: failing on purpose");
    ASSERT_LINE("could not reserve the space", "tp-exec");
    assert_true(allocated("thick-flat.vmdk") >= 8u << 20);
    /* A clone: the plugin says yes to the dry run, then fails and leaves
     * junk; the library removes it and copies by itself. */
    create("src.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 16);
    fill("src.vmdk", 0, 16 * 2048, 3);
    VOK(clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE, NULL, NULL));
    ASSERT_LOG("tp-exec CLONEFILE dry run: yes");
    ASSERT_LINE("tp-exec", "failing on purpose");
    ASSERT_LINE("plugin offload failed", "the library copies the data instead");
    assert_same("src.vmdk", "dst.vmdk");
    static const char *const files[] = { "thick.vmdk", "thick-flat.vmdk", "src.vmdk",
                                         "src-flat.vmdk", "dst.vmdk", "dst-flat.vmdk", NULL };
    assert_only_files(files);
    finish();
    ASSERT_LOG("tp-exec EndSession 42");
    ASSERT_LOG("tp-exec Done called");
}

static void test_panic_disables(void **state)
{
    (void)state;
    static const char *const p[] = { "panic/libtp-panic.so", NULL };
    plugins(p);
    init_with(emptydir, NULL);
    ASSERT_LOG("1 NAS plugin loaded");
    clone_falls_back("no NAS plugin serves datastore");
    ASSERT_LINE("tp-panic", "panic (plugin disabled)");
    finish();
}

/* Broken plugins next to the good one: the good one is used. */
static void test_good_among_broken(void **state)
{
    (void)state;
    static const char *const p[] = { "major/libtp-major.so", "init/libtp-init.so",
                                     "noentry/libtp-noentry.so", "nullfn/libtp-nullfn.so",
                                     "exec/libtp-exec.so", LOCALFS_SO, NULL };
    plugins(p);
    init_with(emptydir, NULL);
    /* nas-localfs sorts first, so it takes the datastore; tp-exec loads
     * but gets no session. */
    ASSERT_LOG("2 NAS plugins loaded");
    create("src.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 16);
    fill("src.vmdk", 0, 16 * 2048, 5);
    VOK(clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE, NULL, NULL));
    ASSERT_LOG("1 extent file cloned by the NAS plugin");
    ASSERT_NO_LOG("tp-exec StartSession");
    assert_same("src.vmdk", "dst.vmdk");
    finish();
}

/* libDir as the distribution root, its lib64, NULL, or somewhere odd. */
static void test_libdir_forms(void **state)
{
    (void)state;
    const char *forms[] = { DIST_DIR, DIST_DIR "/lib64", NULL, "/nonexistent/vddk" };
    for (int i = 0; i < 4; i++) {
        free(logbuf);
        logbuf = NULL;
        loglen = 0;
        init_with(forms[i], NULL);
        if (i < 3) {
            ASSERT_LINE("NAS plugin nas-localfs", "loaded from");
            ASSERT_LOG("1 NAS plugin loaded");
        } else {
            ASSERT_LOG("0 NAS plugins loaded");
        }
        finish();
        if (i < 3)
            ASSERT_LOG("NAS plugin nas-localfs unloaded");
    }
}

/* Two Init calls load once; the last Exit unloads; a new Init reloads. */
static void test_refcounted(void **state)
{
    (void)state;
    init_with(DIST_DIR, NULL);
    VOK(VixDiskLib_InitEx(8, 0, log_cb, warn_cb, panic_cb, DIST_DIR, NULL));
    VixDiskLib_Exit();
    ASSERT_NO_LOG("unloaded");
    finish();
    ASSERT_LOG("NAS plugin nas-localfs unloaded");
    free(logbuf);
    logbuf = NULL;
    loglen = 0;
    init_with(DIST_DIR, NULL);
    ASSERT_LOG("1 NAS plugin loaded");
    finish();
}

/* ---- the fast path with nas-localfs (this file system: no reflink) ---- */

static void test_clone_full_and_thin(void **state)
{
    (void)state;
    init_with(DIST_DIR, NULL);
    /* Thick create goes through RESVSPACE. */
    create("src.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 32);
    ASSERT_LINE("RESVSPACE", "src-flat.vmdk");
    fill("src.vmdk", 0, 32 * 2048, 11);
    VOK(clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE, NULL, NULL));
    ASSERT_LOG("1 extent file cloned by the NAS plugin");
    ASSERT_LINE("RESVSPACE", ".dst.plugin-");   /* a thick copy is reserved */
    assert_same("src.vmdk", "dst.vmdk");

    /* A thin source with 1 MiB of data: a vmfsThin copy stays thin
     * (SKIPZEROES), a vmfs (thick) copy is fully allocated. */
    create("thin.vmdk", VIXDISKLIB_DISK_VMFS_THIN, 64);
    fill("thin.vmdk", 32 * 2048, 2048, 13);
    VOK(clone_to("thin.vmdk", "thin2.vmdk", VIXDISKLIB_DISK_VMFS_THIN, FALSE, NULL, NULL));
    ASSERT_LINE("CLONEFILE", "skipping zeroes");
    assert_same("thin.vmdk", "thin2.vmdk");
    assert_true(allocated("thin2-flat.vmdk") < 8u << 20);
    VOK(clone_to("thin.vmdk", "thick2.vmdk", VIXDISKLIB_DISK_VMFS_FLAT, FALSE, NULL, NULL));
    ASSERT_LINE(".thick2.plugin-", "(full) done");
    assert_same("thin.vmdk", "thick2.vmdk");
    assert_true(allocated("thick2-flat.vmdk") >= 64u << 20);

    /* Existing destination: refused without overWrite, replaced with it. */
    assert_int_equal(clone_to("src.vmdk", "thin2.vmdk", VIXDISKLIB_DISK_VMFS_THIN, FALSE, NULL,
                              NULL), VIX_E_FILE_ALREADY_EXISTS);
    assert_same("thin.vmdk", "thin2.vmdk");
    VOK(clone_to("src.vmdk", "thin2.vmdk", VIXDISKLIB_DISK_VMFS_THIN, TRUE, NULL, NULL));
    assert_same("src.vmdk", "thin2.vmdk");

    /* Not applicable: a sparse destination is copied by the library. */
    VOK(clone_to("src.vmdk", "sparse.vmdk", VIXDISKLIB_DISK_MONOLITHIC_SPARSE, FALSE, NULL,
                 NULL));
    ASSERT_LINE("sparse.vmdk", "the destination type is not flat");
    assert_same("src.vmdk", "sparse.vmdk");
    static const char *const files[] = {
        "src.vmdk", "src-flat.vmdk", "dst.vmdk", "dst-flat.vmdk", "thin.vmdk",
        "thin-flat.vmdk", "thin2.vmdk", "thin2-flat.vmdk", "thick2.vmdk", "thick2-flat.vmdk",
        "sparse.vmdk", NULL };
    assert_only_files(files);
    finish();
    ASSERT_LINE("nas-localfs", "session on");
    ASSERT_LINE("nas-localfs", "ended");
}

struct cancel {
    int at, calls, last;
};

static Bool cancel_cb(void *data, int pct)
{
    struct cancel *c = data;
    c->calls++;
    c->last = pct;
    return pct < c->at;
}

static void test_cancel_full_clone(void **state)
{
    (void)state;
    init_with(DIST_DIR, "openvddk.plugin.lazyClone = \"never\"\n");
    create("src.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, 128);
    fill("src.vmdk", 0, 128 * 2048, 17);
    struct cancel c = { .at = 10 };
    VixError e = clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE,
                          cancel_cb, &c);
    if (VIX_ERROR_CODE(e) != VIX_E_CANCELLED)
        fail_msg("clone returned %lu, not VIX_E_CANCELLED; log:\n%s", (unsigned long)e, logbuf);
    /* Cancelled inside the plugin's chunked copy, not before or after. */
    assert_true(c.last >= 10 && c.last < 100);
    assert_true(c.calls >= 2);
    ASSERT_LINE("nas-localfs", "cancelled; nothing left behind");
    ASSERT_LINE("by NAS plugin nas-localfs cancelled", "progress callback");
    ASSERT_NO_LOG("the library copies the data");
    static const char *const files[] = { "src.vmdk", "src-flat.vmdk", NULL };
    assert_only_files(files);
    /* The same clone without cancelling works, in full. */
    c = (struct cancel){ .at = 101 };
    VOK(clone_to("src.vmdk", "dst.vmdk", VIXDISKLIB_DISK_MONOLITHIC_FLAT, FALSE, cancel_cb, &c));
    assert_int_equal(c.last, 100);
    ASSERT_LINE(".dst.plugin-", "(full) done");
    assert_same("src.vmdk", "dst.vmdk");
    finish();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wrong_major, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_entry_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_library, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_errors_fall_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_panic_disables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_among_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libdir_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcounted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_full_and_thin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_full_clone, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
