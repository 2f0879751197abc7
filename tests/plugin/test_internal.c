/* test_internal.c - the library's internal plugin API (src/plugin) with
 * the library's sources linked in: mountinfo parsing and datastore
 * parameters, the three primitives through nas-localfs on the build's file
 * system, the error statuses of a failing plugin, cancel, and the
 * deferred reservation used by the clone fast path. */
#include <fcntl.h>
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

#include "plugin/vdplugin.h"
#include "util/err.h"

static char logbuf[1 << 16];

static void capture(const char *fmt, va_list ap)
{
    size_t l = strlen(logbuf);
    vsnprintf(logbuf + l, sizeof logbuf - l, fmt, ap);
}

#define ASSERT_LOG(s)                                                               \
    do {                                                                            \
        if (!strstr(logbuf, (s)))                                                   \
            fail_msg("log lacks \"%s\"; log was:\n%s", (s), logbuf);               \
    } while (0)

static char dir[512];
static int inited;

static const char *in_dir(const char *name)
{
    static char ring[4][700];
    static int k;
    char *p = ring[k++ % 4];
    snprintf(p, sizeof ring[0], "%s/%s", dir, name);
    return p;
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vdpint.XXXXXX", t && *t ? t : "/tmp");
    logbuf[0] = '\0';
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (inited)
        VixDiskLib_Exit();
    inited = 0;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, uint64_t size, uint64_t data_off, size_t data_len)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    unsigned char *b = malloc(data_len);
    for (size_t i = 0; i < data_len; i++)
        b[i] = (unsigned char)(i * 7 + 1);
    assert_int_equal(pwrite(fd, b, data_len, (off_t)data_off), (ssize_t)data_len);
    free(b);
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

static int same_content(const char *a, const char *b)
{
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/* ---- mountinfo ---- */

static const char mountinfo[] =
    "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 0:25 / /proc rw,nosuid - proc proc rw\n"
    "41 22 7:0 / /mnt/with\\040space rw,relatime - xfs /dev/loop0 rw,attr2,inode64\n"
    "42 22 0:50 / /mnt/nfs rw,relatime shared:7 master:3 - nfs fs1:/export/vm "
    "rw,vers=3,rsize=1048576,addr=10.1.2.3\n"
    "43 22 0:51 / /mnt/nfs4 rw - nfs4 [fd00::7]:/tank/ds rw,vers=4.2,clientaddr=fd00::1\n"
    "44 41 7:1 / /mnt/with\\040space/inner rw - tmpfs tmpfs rw\n"
    "45 22 0:52 / /mnt/nfs rw - tmpfs over rw\n"
    "garbage line without separator\n";

static void test_mount_find(void **state)
{
    (void)state;
    struct vdplugin_mount m;
    assert_int_equal(vdplugin_mount_find(mountinfo, "/home/x.vmdk", &m), 0);
    assert_string_equal(m.mount_point, "/");
    assert_string_equal(m.fstype, "ext4");
    assert_int_equal(m.id, 22);
    vdplugin_mount_free(&m);
    assert_int_equal(vdplugin_mount_find(mountinfo, "/mnt/with space/d/x.vmdk", &m), 0);
    assert_string_equal(m.mount_point, "/mnt/with space");
    assert_string_equal(m.fstype, "xfs");
    assert_string_equal(m.source, "/dev/loop0");
    vdplugin_mount_free(&m);
    assert_int_equal(vdplugin_mount_find(mountinfo, "/mnt/with space/inner", &m), 0);
    assert_string_equal(m.fstype, "tmpfs");
    vdplugin_mount_free(&m);
    /* A name that only starts like a mount point is not under it. */
    assert_int_equal(vdplugin_mount_find(mountinfo, "/mnt/with spacex/f", &m), 0);
    assert_string_equal(m.mount_point, "/");
    vdplugin_mount_free(&m);
    /* Mounted over: the later line wins. */
    assert_int_equal(vdplugin_mount_find(mountinfo, "/mnt/nfs/a", &m), 0);
    assert_int_equal(m.id, 45);
    vdplugin_mount_free(&m);
    assert_true(vdplugin_mount_find("1 2 3:4 / /x rw - xfs", "/y", &m) < 0);
}

static void test_ds_params(void **state)
{
    (void)state;
    struct vdplugin_mount m;
    VixDiskLibNasPluginDataStoreParams p;
    const char *nfs3 = "42 22 0:50 / /mnt/nfs rw - nfs fs1:/export/vm rw,vers=3,addr=10.1.2.3";
    assert_int_equal(vdplugin_mount_parse(nfs3, &m), 0);
    assert_int_equal(vdplugin_ds_params(&m, &p), 0);
    assert_string_equal(p.fsType, VIXDISKLIB_NASPLUGIN_FSTYPE_NFS);
    assert_int_equal(p.fsVersion, 3);
    assert_string_equal(p.remoteIP, "10.1.2.3");
    assert_string_equal(p.remoteMountPoint, "/export/vm");
    assert_string_equal(p.localMountPoint, "/mnt/nfs");
    vdplugin_ds_params_free(&p);
    vdplugin_mount_free(&m);

    const char *nfs4 = "43 22 0:51 / /mnt/n4 rw - nfs4 [fd00::7]:/tank/ds rw,vers=4.2";
    assert_int_equal(vdplugin_mount_parse(nfs4, &m), 0);
    assert_int_equal(vdplugin_ds_params(&m, &p), 0);
    assert_string_equal(p.fsType, VIXDISKLIB_NASPLUGIN_FSTYPE_NFS41);
    assert_int_equal(p.fsVersion, 4);
    assert_string_equal(p.remoteIP, "fd00::7");
    assert_string_equal(p.remoteMountPoint, "/tank/ds");
    vdplugin_ds_params_free(&p);
    vdplugin_mount_free(&m);

    const char *xfs = "41 22 7:0 / /data rw - xfs /dev/loop0 rw";
    assert_int_equal(vdplugin_mount_parse(xfs, &m), 0);
    assert_int_equal(vdplugin_ds_params(&m, &p), 0);
    assert_string_equal(p.fsType, "xfs");
    assert_null(p.remoteIP);
    assert_null(p.remoteMountPoint);
    vdplugin_ds_params_free(&p);
    vdplugin_mount_free(&m);

    assert_true(vdplugin_mount_parse("1 2 3:4 / /x rw", &m) < 0);
}

/* ---- primitives ---- */

static void init(const char *plugdir)
{
    FILE *f = fopen(in_dir("cfg"), "w");
    assert_non_null(f);
    if (plugdir)
        fprintf(f, "openvddk.plugin.dir = \"%s\"\n", plugdir);
    fclose(f);
    assert_int_equal(VixDiskLib_InitEx(8, 0, capture, capture, capture,
                                       plugdir ? in_dir("nolib") : DIST_DIR, in_dir("cfg")),
                     VIX_OK);
    inited = 1;
}

static void test_without_plugins(void **state)
{
    (void)state;
    write_file(in_dir("a"), 1 << 20, 0, 4096);
    struct vdplugin_stat st;
    assert_int_equal(vdplugin_statx(in_dir("a"), &st), -VD_E_UNSUPPORTED);
    assert_int_equal(vdplugin_reserve_space(in_dir("a"), 1 << 20), -VD_E_UNSUPPORTED);
    assert_int_equal(vdplugin_clone_file(in_dir("a"), in_dir("b"), 0, NULL, NULL),
                     -VD_E_UNSUPPORTED);
    assert_int_equal(access(in_dir("b"), F_OK), -1);
    assert_int_equal(vdplugin_count(), 0);
}

static void test_localfs_primitives(void **state)
{
    (void)state;
    init(NULL);
    assert_int_equal(vdplugin_count(), 1);
    /* 4 MiB file, 1 MiB of data at 1 MiB. */
    write_file(in_dir("a"), 4 << 20, 1 << 20, 1 << 20);
    struct vdplugin_stat st;
    assert_int_equal(vdplugin_statx(in_dir("a"), &st), 0);
    assert_string_equal(st.plugin, "nas-localfs");
    assert_int_equal(st.total, 4 << 20);
    assert_true(st.allocated >= 1 << 20 && st.allocated < 4 << 20);
    assert_true(st.unique <= st.allocated);
    assert_int_equal(st.alloc_type, VIXDISKLIB_NASPLUGIN_FILE_ALLOC_THIN);

    /* RESVSPACE: fully allocated, same content. */
    write_file(in_dir("ref"), 4 << 20, 1 << 20, 1 << 20);
    assert_int_equal(vdplugin_reserve_space(in_dir("a"), 4 << 20), 0);
    assert_int_equal(vdplugin_statx(in_dir("a"), &st), 0);
    assert_true(st.allocated >= 4 << 20);
    assert_true(st.alloc_type == VIXDISKLIB_NASPLUGIN_FILE_ALLOC_LZT ||
                st.alloc_type == VIXDISKLIB_NASPLUGIN_FILE_ALLOC_EZT);
    assert_true(same_content(in_dir("a"), in_dir("ref")));
    ASSERT_LOG("RESVSPACE");

    /* CLONEFILE: guarded refuses an existing file, plain replaces it. */
    assert_int_equal(vdplugin_clone_file(in_dir("a"), in_dir("ref"),
                                         VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED, NULL, NULL),
                     -VD_E_EXISTS);
    write_file(in_dir("other"), 8192, 0, 8192);
    assert_int_equal(vdplugin_clone_file(in_dir("a"), in_dir("other"), 0, NULL, NULL), 0);
    assert_true(same_content(in_dir("a"), in_dir("other")));
    /* A lazy dry run where reflink may be missing still says yes (a full
     * clone is offered instead), and creates nothing. */
    assert_int_equal(vdplugin_clone_file(in_dir("a"), in_dir("new"),
                                         VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY |
                                         VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN, NULL, NULL),
                     0);
    assert_int_equal(access(in_dir("new"), F_OK), -1);
    /* A source that does not exist is a real error. */
    assert_int_equal(vdplugin_clone_file(in_dir("missing"), in_dir("new"), 0, NULL, NULL),
                     -VD_E_NOTFOUND);

    /* Deferred reservation does nothing and says yes. */
    write_file(in_dir("sparse"), 8 << 20, 0, 4096);
    vdplugin_defer_reserve(1);
    assert_int_equal(vdplugin_reserve_space(in_dir("sparse"), 8 << 20), 0);
    vdplugin_defer_reserve(0);
    assert_int_equal(vdplugin_statx(in_dir("sparse"), &st), 0);
    assert_true(st.allocated < 8 << 20);
    VixDiskLib_Exit();
    inited = 0;
    assert_int_equal(vdplugin_count(), 0);
}

static int stop_at_20(void *data, int pct)
{
    int *calls = data;
    ++*calls;
    return pct < 20;
}

static void test_cancel(void **state)
{
    (void)state;
    init(NULL);
    write_file(in_dir("big"), 64 << 20, 0, 64 << 20);
    int calls = 0;
    assert_int_equal(vdplugin_clone_file(in_dir("big"), in_dir("copy"), 0, stop_at_20, &calls),
                     -VD_E_CANCELLED);
    assert_true(calls >= 2);
    assert_int_equal(access(in_dir("copy"), F_OK), -1);
    ASSERT_LOG("cancelled");
    VixDiskLib_Exit();
    inited = 0;
}

static void test_failing_plugin_statuses(void **state)
{
    (void)state;
    mkdir(in_dir("plugins"), 0755);
    mkdir(in_dir("nolib"), 0755);
    char link[800];
    snprintf(link, sizeof link, "%s/libtp-exec.so", in_dir("plugins"));
    assert_int_equal(symlink(TP_DIR "/exec/libtp-exec.so", link), 0);
    init(in_dir("plugins"));
    assert_int_equal(vdplugin_count(), 1);
    write_file(in_dir("a"), 1 << 20, 0, 4096);
    struct vdplugin_stat st;
    /* STATX without a status is a failure, not garbage figures. */
    assert_true(vdplugin_statx(in_dir("a"), &st) < 0);
    ASSERT_LOG("without a status");
    assert_int_equal(vdplugin_reserve_space(in_dir("a"), 1 << 20), -VD_E_NOSPACE);
    assert_int_equal(vdplugin_clone_file(in_dir("a"), in_dir("b"), 0, NULL, NULL), -VD_E_IO);
    ASSERT_LOG("could not clone");
    VixDiskLib_Exit();
    inited = 0;
    ASSERT_LOG("tp-exec Done called");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mount_find),
        cmocka_unit_test(test_ds_params),
        cmocka_unit_test_setup_teardown(test_without_plugins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_localfs_primitives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_plugin_statuses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
