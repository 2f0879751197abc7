/*
 * test_init.c - VixDiskLib_InitEx / Init / Exit: reference counting, the
 * libDir forms real consumers pass, the config file, API versions, and the
 * log/warn/panic callbacks (reference vddk-api.md section 6.1).
 *
 * Unlike the other ABI tests this executable has no group-wide InitEx:
 * every test starts with the library uninitialised and brings it back to
 * that state (teardown calls Exit for any InitEx a failed test left).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_util.h"

static char *g_dir;
static int g_inits;   /* successful InitEx calls not yet matched by Exit */

static const char *path_in(const char *name)
{
    static char ring[8][PATH_MAX];
    static unsigned next;
    char *b = ring[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", g_dir, name);
    return b;
}

static VixError init_ex(uint32 major, uint32 minor, VixDiskLibGenericLogFunc *log,
                        VixDiskLibGenericLogFunc *warn, VixDiskLibGenericLogFunc *panic,
                        const char *libdir, const char *config)
{
    VixError e = VixDiskLib_InitEx(major, minor, log, warn, panic, libdir, config);
    if (e == VIX_OK)
        g_inits++;
    return e;
}

static void exit_lib(void)
{
    VixDiskLib_Exit();
    if (g_inits > 0)
        g_inits--;
}

static int setup(void **state)
{
    (void)state;
    g_inits = 0;
    abi_reset_messages();
    g_dir = abi_mkdtemp("vdabi-init");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    while (g_inits > 0)
        exit_lib();
    abi_rmtree(g_dir);
    free(g_dir);
    g_dir = NULL;
    return 0;
}

/* Is the library initialised?  A local ConnectEx works only then. */
static int usable(void)
{
    VixDiskLibConnection c = NULL;
    VixError e = VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c);
    if (e == VIX_OK) {
        assert_non_null(c);
        VixDiskLib_Disconnect(c);
        return 1;
    }
    assert_null(c);
    return 0;
}

/* Create, write, read back, unlink a small disk. */
static void use_disk(const char *name)
{
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    cp.capacity = 2048;
    const char *path = path_in(name);
    ABI_OK(VixDiskLib_Create(c, path, &cp, NULL, NULL));
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(c, path, 0, &h));
    uint8 buf[2 * VIXDISKLIB_SECTOR_SIZE];
    abi_fill(buf, sizeof buf, 512 * 10, 3);
    ABI_OK(VixDiskLib_Write(h, 10, 2, buf));
    memset(buf, 0, sizeof buf);
    ABI_OK(VixDiskLib_Read(h, 10, 2, buf));
    assert_int_equal(abi_check(buf, sizeof buf, 512 * 10, 3), -1);
    ABI_OK(VixDiskLib_Close(h));
    ABI_OK(VixDiskLib_Unlink(c, path));
    ABI_OK(VixDiskLib_Disconnect(c));
}

/* ---- capture of stderr (the default logger's output) ------------------------- */

struct capture {
    int saved;
    char path[PATH_MAX];
};

static void capture_start(struct capture *cap)
{
    snprintf(cap->path, sizeof cap->path, "%s/stderr.txt", g_dir);
    fflush(stderr);
    cap->saved = dup(2);
    assert_true(cap->saved >= 0);
    int fd = open(cap->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_true(dup2(fd, 2) == 2);
    close(fd);
}

/* Restore stderr; returns what was written (malloc'd). */
static char *capture_end(struct capture *cap)
{
    fflush(stderr);
    dup2(cap->saved, 2);
    close(cap->saved);
    FILE *f = fopen(cap->path, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    unlink(cap->path);
    return text;
}

/* A failing call that makes the library warn. */
static void provoke_failure(const char *missing_name)
{
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    VixDiskLibHandle h = NULL;
    ABI_ERR(VixDiskLib_Open(c, path_in(missing_name), 0, &h), VIX_E_FILE_NOT_FOUND);
    ABI_OK(VixDiskLib_Disconnect(c));
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_not_initialised(void **state)
{
    (void)state;
    /* First test of the executable: InitEx was never called. */
    assert_false(usable());
    /* Exit without InitEx is harmless. */
    VixDiskLib_Exit();
    VixDiskLib_Exit();
    assert_false(usable());
    ABI_OK(init_ex(8, 0, NULL, NULL, NULL, NULL, NULL));
    assert_true(usable());
    exit_lib();
    assert_false(usable());
}

static void test_refcount(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        ABI_OK(init_ex(7, 0, NULL, NULL, NULL, NULL, NULL));
        assert_true(usable());
    }
    use_disk("r1.vmdk");
    for (int i = 0; i < 4; i++) {
        exit_lib();
        if (!usable())
            fail_msg("library unusable after %d of 5 Exit calls", i + 1);
    }
    use_disk("r2.vmdk");
    exit_lib();
    assert_false(usable());
    /* A sixth (and seventh) Exit is harmless. */
    VixDiskLib_Exit();
    VixDiskLib_Exit();
    assert_false(usable());
    /* And the library initialises again. */
    ABI_OK(init_ex(8, 0, NULL, NULL, NULL, NULL, NULL));
    use_disk("r3.vmdk");
    exit_lib();
    assert_false(usable());
}

/* Open handles keep working while other InitEx/Exit pairs come and go. */
static void test_refcount_with_open_disk(void **state)
{
    (void)state;
    ABI_OK(init_ex(6, 5, NULL, NULL, NULL, NULL, NULL));
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    cp.capacity = 2048;
    ABI_OK(VixDiskLib_Create(c, path_in("o.vmdk"), &cp, NULL, NULL));
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(c, path_in("o.vmdk"), 0, &h));
    for (int i = 0; i < 7; i++)   /* gvddk: Init in every test, no Exit */
        ABI_OK(init_ex(7, 0, NULL, NULL, NULL, NULL, NULL));
    for (int i = 0; i < 7; i++)
        exit_lib();
    uint8 buf[512];
    abi_fill(buf, sizeof buf, 0, 1);
    ABI_OK(VixDiskLib_Write(h, 0, 1, buf));
    ABI_OK(VixDiskLib_Read(h, 0, 1, buf));
    assert_int_equal(abi_check(buf, sizeof buf, 0, 1), -1);
    ABI_OK(VixDiskLib_Close(h));
    ABI_OK(VixDiskLib_Disconnect(c));
    exit_lib();
}

static void test_libdir_variants(void **state)
{
    (void)state;
    char lib64[PATH_MAX], bogus[PATH_MAX];
    snprintf(lib64, sizeof lib64, "%s/lib64", g_dir);
    assert_int_equal(mkdir(lib64, 0700), 0);
    snprintf(bogus, sizeof bogus, "%s/does/not/exist", g_dir);
    /* cloudbase: NULL; nbdkit: the distrib root; astrolabe: its lib64;
     * a missing directory, an empty string and a relative path. */
    const char *dirs[] = { NULL, g_dir, lib64, bogus, "", "lib64" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        abi_reset_messages();
        VixError e = init_ex(7, 0, abi_log_cb, abi_warn_cb, abi_panic_cb, dirs[i], NULL);
        if (e != VIX_OK)
            fail_msg("InitEx with libDir '%s' returned %lu", dirs[i] ? dirs[i] : "(NULL)",
                     (unsigned long)e);
        char name[32];
        snprintf(name, sizeof name, "d%zu.vmdk", i);
        use_disk(name);
        /* nbdkit's real-VDDK test fails on this text in the log. */
        assert_int_equal(abi_bad_message_count(), 0);
        assert_int_equal(abi_panic_count(), 0);
        exit_lib();
        assert_false(usable());
    }
    /* The deprecated Init, as astrolabe / virtual-disks call it. */
    ABI_OK(VixDiskLib_Init(6, 7, NULL, NULL, NULL, lib64));
    g_inits++;
    use_disk("deprecated.vmdk");
    exit_lib();
    ABI_OK(VixDiskLib_Init(7, 0, NULL, NULL, NULL, NULL));
    g_inits++;
    assert_true(usable());
    exit_lib();
    assert_false(usable());
}

static void test_versions(void **state)
{
    (void)state;
    static const uint32 ok[][2] = { { 1, 0 }, { 5, 5 }, { 6, 0 }, { 6, 5 }, { 6, 7 },
                                    { 6, 8 }, { 7, 0 }, { 8, 0 }, { 8, 2 } };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        VixError e = init_ex(ok[i][0], ok[i][1], NULL, NULL, NULL, NULL, NULL);
        if (e != VIX_OK)
            fail_msg("InitEx(%u, %u) returned %lu", ok[i][0], ok[i][1], (unsigned long)e);
        assert_true(usable());
        exit_lib();
        assert_false(usable());
    }
    /* A newer API than the library's may be refused; if so, the failed
     * call must not leave the library initialised. */
    static const uint32 newer[][2] = { { 9, 0 }, { 100, 0 } };
    for (size_t i = 0; i < 2; i++) {
        VixError e = init_ex(newer[i][0], newer[i][1], abi_log_cb, abi_warn_cb, abi_panic_cb,
                             NULL, NULL);
        if (e == VIX_OK) {
            exit_lib();
        } else if (usable()) {
            fail_msg("InitEx(%u, %u) failed (%lu) but left the library initialised",
                     newer[i][0], newer[i][1], (unsigned long)e);
        }
    }
}

static const char *config_text(const char *level)
{
    static char text[8192];
    char longline[5000];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    snprintf(text, sizeof text,
             "# openvddk ABI test configuration\n"
             "\n"
             "tmpDirectory = \"%s\"\n"
             "vixDiskLib.transport.LogLevel = \"%s\"\n"
             "vixDiskLib.nfc.LogLevel = \"4\"\n"
             "vixDiskLib.nfc.AcceptTimeoutMs = \"180000\"\n"
             "vixDiskLib.nfc.RequestTimeoutMs = \"180000\"\n"
             "vixDiskLib.nfc.ReadTimeoutMs = \"60000\"\n"
             "vixDiskLib.nfc.WriteTimeoutMs = \"600000\"\n"
             "vixDiskLib.nfcFssrvr.TimeoutMs = \"0\"\n"
             "vixDiskLib.nfcFssrvrWrite.TimeoutMs = \"0\"\n"
             "vixDiskLib.nfcAio.Session.BufSizeIn64KB = \"16\"\n"
             "vixDiskLib.nfcAio.Session.BufCount = \"4\"\n"
             "vixDiskLib.transport.san.blacklist = \"/dev/sda\"\n"
             "vixDiskLib.transport.san.allowList = \"/dev/sdb\"\n"
             "some.unknown.key = \"value\"\n"
             "another.unknown = unquoted value\n"
             "  spaced.key   =   \"  spaced value  \"  \r\n"
             "empty.value = \"\"\n"
             "= \"no key\"\n"
             "line without equals sign\n"
             "unterminated = \"abc\n"
             "very.long = \"%s\"\n"
             "no.trailing.newline = \"1\"",
             g_dir, level, longline);
    return text;
}

static void test_config_file(void **state)
{
    (void)state;
    const char *cfg = path_in("vddk.conf");

    /* Known keys, unknown keys and junk: accepted; the known LogLevel key
     * takes effect -- at level 0 the default logger prints no warning. */
    abi_write_file(cfg, config_text("0"));
    ABI_OK(init_ex(8, 0, NULL, NULL, NULL, g_dir, cfg));
    use_disk("c0.vmdk");
    struct capture cap;
    capture_start(&cap);
    provoke_failure("quiet-missing.vmdk");
    char *out = capture_end(&cap);
    if (out[0] != '\0')
        fail_msg("LogLevel 0, yet the default logger printed: %s", out);
    free(out);
    exit_lib();

    /* Level 3 (the default): the failure is reported on stderr. */
    abi_write_file(cfg, config_text("3"));
    ABI_OK(init_ex(8, 0, NULL, NULL, NULL, NULL, cfg));
    capture_start(&cap);
    provoke_failure("loud-missing.vmdk");
    out = capture_end(&cap);
    if (!strstr(out, "loud-missing.vmdk"))
        fail_msg("LogLevel 3: the default logger did not report the failure (got '%s')", out);
    free(out);
    exit_lib();

    /* A missing config file, a directory, an empty file: not fatal. */
    const char *odd[] = { path_in("no-such.conf"), g_dir, path_in("empty.conf") };
    abi_write_file(path_in("empty.conf"), "");
    for (size_t i = 0; i < 3; i++) {
        VixError e = init_ex(8, 0, abi_log_cb, abi_warn_cb, abi_panic_cb, NULL, odd[i]);
        if (e != VIX_OK)
            fail_msg("InitEx with config '%s' returned %lu", odd[i], (unsigned long)e);
        use_disk("c1.vmdk");
        exit_lib();
    }
    assert_int_equal(abi_panic_count(), 0);
}

static void test_warn_callback(void **state)
{
    (void)state;
    ABI_OK(init_ex(8, 0, abi_log_cb, abi_warn_cb, abi_panic_cb, NULL, NULL));
    abi_reset_messages();

    /* A failed Open: one line with the detail (the path) reaches warn. */
    provoke_failure("nosuch-4711.vmdk");
    assert_true(abi_warn_count() >= 1);
    const char *w = abi_last_warn();
    if (!strstr(w, "nosuch-4711.vmdk"))
        fail_msg("warning '%s' does not name the missing file", w);
    size_t wl = strlen(w);
    assert_true(wl > strlen("nosuch-4711.vmdk"));
    /* One message per call: at most a trailing newline. */
    char *nl = strchr(w, '\n');
    assert_true(nl == NULL || nl == w + wl - 1);

    /* Other failures warn as well. */
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp.adapterType = VIXDISKLIB_ADAPTER_IDE;
    cp.capacity = 256;
    ABI_OK(VixDiskLib_Create(c, path_in("w.vmdk"), &cp, NULL, NULL));
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(c, path_in("w.vmdk"), 0, &h));
    uint8 buf[2 * 512];
    unsigned before = abi_warn_count();
    ABI_ERR(VixDiskLib_Read(h, 255, 2, buf), VIX_E_DISK_OUTOFRANGE);
    assert_true(abi_warn_count() > before);
    assert_true(abi_last_warn()[0] != '\0');
    before = abi_warn_count();
    VixDiskLibBlockList *bl = NULL;
    ABI_ERR(VixDiskLib_QueryAllocatedBlocks(h, 0, 256, 64, &bl), VIX_E_INVALID_ARG);
    assert_true(abi_warn_count() > before);
    before = abi_warn_count();
    ABI_ERR(VixDiskLib_Read(NULL, 0, 1, buf), VIX_E_INVALID_ARG);
    assert_true(abi_warn_count() > before);
    ABI_OK(VixDiskLib_Close(h));
    ABI_OK(VixDiskLib_Disconnect(c));
    assert_int_equal(abi_panic_count(), 0);
    assert_int_equal(abi_bad_message_count(), 0);
    exit_lib();
}

static unsigned warn_b;
static void warn_cb_b(const char *fmt, va_list ap)
{
    char b[1024];
    vsnprintf(b, sizeof b, fmt, ap);
    warn_b++;
}

/* While initialised, a second InitEx keeps the first callbacks; after the
 * last Exit the next InitEx installs its own. */
static void test_first_callbacks_kept(void **state)
{
    (void)state;
    warn_b = 0;
    ABI_OK(init_ex(8, 0, NULL, abi_warn_cb, NULL, NULL, NULL));
    ABI_OK(init_ex(8, 0, NULL, warn_cb_b, NULL, NULL, NULL));
    abi_reset_messages();
    provoke_failure("first.vmdk");
    assert_true(abi_warn_count() >= 1);
    assert_int_equal(warn_b, 0);
    exit_lib();
    /* Still initialised by the first call; still its callbacks. */
    provoke_failure("first2.vmdk");
    assert_int_equal(warn_b, 0);
    exit_lib();
    assert_false(usable());

    ABI_OK(init_ex(8, 0, NULL, warn_cb_b, NULL, NULL, NULL));
    unsigned a = abi_warn_count();
    provoke_failure("second.vmdk");
    assert_true(warn_b >= 1);
    assert_int_equal(abi_warn_count(), a);
    exit_lib();
}

/* ---- VixDiskLibCreateParams of a 6.x header ------------------------------------- */

/* A create-parameters object of `size` bytes ending exactly where readable
 * memory ends: the page after it is PROT_NONE, so reading past the end
 * faults.  *map receives the two-page mapping (munmap 2 pages). */
static VixDiskLibCreateParams *params_at_page_end(size_t size, void **map)
{
    long pg = sysconf(_SC_PAGESIZE);
    assert_true(pg > 0);
    unsigned char *m = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    *map = m;
    VixDiskLibCreateParams *cp = (VixDiskLibCreateParams *)(m + pg - size);
    memset(cp, 0, size);
    /* Only the fields of the 6.x layout (the first 24 bytes) are set. */
    cp->diskType = VIXDISKLIB_DISK_MONOLITHIC_SPARSE;
    cp->adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp->hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    cp->capacity = 2048;
    return cp;
}

static uint32 logical_sector_size(VixDiskLibConnection c, const char *path)
{
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(c, path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h));
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    uint32 ls = info->logicalSectorSize;
    assert_int_equal(info->capacity, 2048);
    VixDiskLib_FreeInfo(info);
    ABI_OK(VixDiskLib_Close(h));
    return ls;
}

/* A program built with a VDDK 6.x header (InitEx major 6) passes a 24-byte
 * VixDiskLibCreateParams: Create and Clone must not read the 7.0 sector
 * size fields past its end (here they would fault), and make 512-byte
 * sector disks. */
static void test_create_params_6x(void **state)
{
    (void)state;
    assert_int_equal(offsetof(VixDiskLibCreateParams, logicalSectorSize), 24);
    ABI_OK(init_ex(6, 7, NULL, NULL, NULL, NULL, NULL));
    VixDiskLibConnection c = NULL;
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    void *map;
    VixDiskLibCreateParams *cp = params_at_page_end(24, &map);
    ABI_OK(VixDiskLib_Create(c, path_in("six.vmdk"), cp, NULL, NULL));
    assert_int_equal(logical_sector_size(c, path_in("six.vmdk")), 512);
    cp->diskType = VIXDISKLIB_DISK_STREAM_OPTIMIZED;
    ABI_OK(VixDiskLib_Clone(c, path_in("six-clone.vmdk"), c, path_in("six.vmdk"), cp, NULL,
                            NULL, FALSE));
    assert_int_equal(logical_sector_size(c, path_in("six-clone.vmdk")), 512);
    munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
    ABI_OK(VixDiskLib_Disconnect(c));
    exit_lib();

    /* Initialised for 8: the whole 32-byte struct is read (4Kn recorded). */
    ABI_OK(init_ex(8, 0, NULL, NULL, NULL, NULL, NULL));
    ABI_OK(VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &c));
    cp = params_at_page_end(sizeof *cp, &map);
    cp->logicalSectorSize = 4096;
    cp->physicalSectorSize = 4096;
    ABI_OK(VixDiskLib_Create(c, path_in("eight.vmdk"), cp, NULL, NULL));
    assert_int_equal(logical_sector_size(c, path_in("eight.vmdk")), 4096);
    munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
    ABI_OK(VixDiskLib_Disconnect(c));
    exit_lib();
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_not_initialised),   /* must stay first */
        T(test_refcount),
        T(test_refcount_with_open_disk),
        T(test_libdir_variants),
        T(test_versions),
        T(test_config_file),
        T(test_warn_callback),
        T(test_first_callbacks_kept),
        T(test_create_params_6x),
    };
    abi_filters(argc, argv);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
