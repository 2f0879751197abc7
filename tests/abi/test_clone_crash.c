/* test_clone_crash.c - kill -9 a clone half-way (public API only).
 *
 * A 256 MiB monolithicSparse source (3/4 of it written: pseudo-random,
 * text-like and nearly empty MiBs) is cloned by a child process -- this
 * executable re-executed with "--clone-child" -- that reports every
 * progress percentage through a pipe.  The parent kills it with SIGKILL:
 *
 *   stop  at 30% and 60%: the child blocks inside the progress callback
 *         (a fixed point in the copy; the compression workers of a stream
 *         clone keep running while it waits), then is killed;
 *   race  at 30%, 60% and 100%: the parent kills as soon as it reads the
 *         percentage while the child carries on, so the kill lands
 *         somewhere later in the copy -- at 100%, while the destination is
 *         being finished, renamed or closed.
 *
 * After each kill: the source files are untouched (same inode, size,
 * mtime and ctime; at the end the same bytes as before the first clone) and
 * pass `qemu-img check` (skipped with a message without qemu-img); the
 * destination either does not exist or opens read-only and reads exactly
 * as the source; no visible file other than the source and the complete
 * destination is left.  Hidden temporary files (".NAME.partial-*") cannot
 * be removed by a killed process: they are listed and must not stop a new
 * clone to the same name, which is done last and checked.  That clone
 * also tidies up: leftovers older than ten minutes (their times set back
 * here) are removed, and so is an old extent file whose descriptor is
 * gone, while a young one and a locked one (as a running clone holds its
 * temporary), with its extent, are kept.
 * Destinations: monolithicSparse and streamOptimized at every point,
 * twoGbMaxExtentSparse (descriptor + extent renamed separately) at 30%
 * blocked and 100%. */
#include "abi_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB_SECTORS 2048u
#define CAP (256u * MIB_SECTORS)            /* sectors: 256 MiB */
#define SECTOR VIXDISKLIB_SECTOR_SIZE
#define DONE_BYTE 255

/* ---- the reference content -------------------------------------------- */

/* The bytes of MiB number mib: 0 pseudo-random, 1 text-like, 2 a little
 * data at the start of each 64 KiB grain, 3 zero (never written). */
static void reference(uint8_t *buf, uint64 mib)
{
    const size_t len = MIB_SECTORS * SECTOR;
    uint64 off = mib * len;
    memset(buf, 0, len);
    switch (mib % 4) {
    case 0:
        abi_fill(buf, len, off, 7);
        break;
    case 1:
        for (size_t i = 0; i < len;) {
            char line[96];
            int k = snprintf(line, sizeof line, "%010llu backup of the disk, block %llu\n",
                             (unsigned long long)(off + i), (unsigned long long)(i / 4096));
            for (int j = 0; j < k && i < len; j++)
                buf[i++] = (uint8_t)line[j];
        }
        break;
    case 2:
        for (size_t g = 0; g < len; g += 65536)
            abi_fill(buf + g, 4096, off + g, 8);
        break;
    default:
        break;
    }
}

static void make_source(const char *path)
{
    abi_create_ok(path, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, CAP);
    VixDiskLibHandle h = abi_open(path, 0);
    uint8_t *buf = malloc(MIB_SECTORS * SECTOR);
    assert_non_null(buf);
    for (uint64 m = 0; m < CAP / MIB_SECTORS; m++) {
        if (m % 4 == 3)
            continue;
        reference(buf, m);
        ABI_OK(VixDiskLib_Write(h, m * MIB_SECTORS, MIB_SECTORS, buf));
    }
    free(buf);
    abi_close(h);
}

/* The disk at path reads exactly as the reference. */
static void verify_disk(const char *path, const char *what)
{
    VixDiskLibHandle h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    if (info->capacity != CAP)
        fail_msg("%s: capacity %llu sectors, expected %u", what,
                 (unsigned long long)info->capacity, CAP);
    VixDiskLib_FreeInfo(info);
    uint8_t *buf = malloc(MIB_SECTORS * SECTOR), *ref = malloc(MIB_SECTORS * SECTOR);
    assert_non_null(buf);
    assert_non_null(ref);
    for (uint64 m = 0; m < CAP / MIB_SECTORS; m++) {
        ABI_OK(VixDiskLib_Read(h, m * MIB_SECTORS, MIB_SECTORS, buf));
        reference(ref, m);
        if (memcmp(buf, ref, MIB_SECTORS * SECTOR) != 0)
            fail_msg("%s: MiB %llu differs from the source", what, (unsigned long long)m);
    }
    free(buf);
    free(ref);
    abi_close(h);
}

/* ---- the child: one clone, progress through a pipe ---------------------- */

static int child_fd = -1;
static int child_stop_at = -1;

static void quiet(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static Bool child_progress(void *data, int pct)
{
    (void)data;
    unsigned char b = (unsigned char)(pct < 0 ? 0 : pct > 100 ? 100 : pct);
    if (write(child_fd, &b, 1) != 1)
        _exit(20);
    if (child_stop_at >= 0 && pct >= child_stop_at)
        for (;;)
            pause();             /* wait here for SIGKILL */
    return TRUE;
}

/* argv: --clone-child FD STOP_AT SRC DST TYPE */
static int child_main(char **argv)
{
    child_fd = atoi(argv[2]);
    child_stop_at = atoi(argv[3]);
    if (VixDiskLib_InitEx(8, 0, quiet, quiet, quiet, NULL, NULL) != VIX_OK)
        return 10;
    VixDiskLibConnection conn = NULL;
    if (VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn) != VIX_OK)
        return 11;
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = (VixDiskLibDiskType)atoi(argv[6]);
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
    cp.capacity = CAP;
    VixError e = VixDiskLib_Clone(conn, argv[5], conn, argv[4], &cp, child_progress, NULL,
                                  FALSE);
    unsigned char b = DONE_BYTE;
    if (write(child_fd, &b, 1) != 1)
        return 21;
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    return e == VIX_OK ? 0 : 12;
}

/* ---- the parent ------------------------------------------------------------ */

static char self_exe[4096];

/* Run a clone in a child; kill it when it reports >= kill_at.  stop: the
 * child blocks in the callback at kill_at.  Returns 1 if it was killed, 0
 * if it finished first (then it must have succeeded). */
static int clone_and_kill(const char *src, const char *dst, VixDiskLibDiskType type,
                          int kill_at, int stop, int *seen)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        char fd[16], at[16], t[16];
        snprintf(fd, sizeof fd, "%d", fds[1]);
        snprintf(at, sizeof at, "%d", stop ? kill_at : -1);
        snprintf(t, sizeof t, "%d", (int)type);
        execl(self_exe, self_exe, "--clone-child", fd, at, src, dst, t, (char *)NULL);
        _exit(30);
    }
    close(fds[1]);
    int killed = 0, last = -1;
    unsigned char b;
    ssize_t n;
    while ((n = read(fds[0], &b, 1)) == 1) {
        if (b == DONE_BYTE)
            break;
        if ((int)b < last)
            fail_msg("child progress went from %d%% to %d%%", last, b);
        last = b;
        if (b >= kill_at) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *seen = last;
    if (killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;          /* finished before the kill landed */
    fail_msg("clone child ended with status 0x%x (killed %d, last %d%%)", status, killed, last);
    return -1;
}

struct fstamp {
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

static void stamp(const char *path, struct fstamp *s)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    s->ctime = st.st_ctim;
}

static int same_stamp(const struct fstamp *a, const struct fstamp *b)
{
    return a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static uint64_t file_hash(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("open %s: %s", path, strerror(errno));
    uint64_t h = 1469598103934665603ull;
    static unsigned char buf[1 << 20];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    fclose(f);
    return h;
}

static int have_qemu_img(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

static void qemu_check(const char *path)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "qemu-img check -f vmdk '%s' >/dev/null 2>&1", path);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "qemu-img check -f vmdk '%s' >&2", path);
        (void)system(cmd);
        fail_msg("qemu-img check %s failed (%d)", path, rc);
    }
}

/* Files left besides the source: the destination's own files are allowed
 * when it is complete; hidden temporaries are counted and removed. */
static size_t sweep(const char *src_name, const char *dst_stem, int dst_exists,
                    const char *what)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names), hidden = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = names[i];
        if (strcmp(f, src_name) == 0)
            continue;
        if (f[0] == '.') {
            hidden++;
            print_message("  %s: left behind by the killed clone: %s\n", what, f);
            if (remove(abi_path(f)) != 0)
                fail_msg("remove %s: %s", f, strerror(errno));
            continue;
        }
        if (dst_exists && strncmp(f, dst_stem, strlen(dst_stem)) == 0)
            continue;
        fail_msg("%s: visible file %s left in the directory (destination %s)", what, f,
                 dst_exists ? "complete" : "absent");
    }
    abi_free_list(names, n);
    return hidden;
}

/* Hidden files whose names start with prefix: set their times back an
 * hour; returns how many. */
static size_t age_hidden(const char *prefix)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names), k = 0;
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 3600;
    ts[1] = ts[0];
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], prefix, strlen(prefix)) != 0)
            continue;
        if (utimensat(AT_FDCWD, abi_path(names[i]), ts, 0) != 0)
            fail_msg("utimensat %s: %s", names[i], strerror(errno));
        k++;
    }
    abi_free_list(names, n);
    return k;
}

/* A file named like a clone's temporary: an hour old and locked as a
 * running clone locks it (the descriptor returned keeps the lock), or
 * just made. */
static int fake_temp(const char *name, int old_and_locked)
{
    int fd = open(abi_path(name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        fail_msg("create %s: %s", name, strerror(errno));
    if (!old_and_locked) {
        close(fd);
        return -1;
    }
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0)
        fail_msg("lock %s: %s", name, strerror(errno));
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= 3600;
    ts[1] = ts[0];
    if (futimens(fd, ts) != 0)
        fail_msg("futimens %s: %s", name, strerror(errno));
    return fd;
}

static void test_kill_clone(void **state)
{
    (void)state;
    char src[4096];
    snprintf(src, sizeof src, "%s", abi_path("src.vmdk"));
    make_source(src);
    int qemu = have_qemu_img();
    if (!qemu)
        print_message("SKIP (part): qemu-img is not installed; the source is checked by "
                      "content only\n");
    else
        qemu_check(src);
    struct fstamp before;
    stamp(src, &before);
    uint64_t hash = file_hash(src);

    /* all: every kill point; else only the first and the last. */
    static const struct { VixDiskLibDiskType type; const char *name; int all; } types[] = {
        { VIXDISKLIB_DISK_MONOLITHIC_SPARSE, "monolithicSparse", 1 },
        { VIXDISKLIB_DISK_STREAM_OPTIMIZED, "streamOptimized", 1 },
        { VIXDISKLIB_DISK_SPLIT_SPARSE, "twoGbMaxExtentSparse", 0 },
    };
    static const struct { int at, stop; } points[] = {
        { 30, 1 }, { 60, 1 }, { 30, 0 }, { 60, 0 }, { 100, 0 },
    };
    const size_t npoints = sizeof points / sizeof points[0];
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t leftovers = 0;
        for (size_t k = 0; k < npoints; k++) {
            if (!types[t].all && k != 0 && k != npoints - 1)
                continue;
            char dst[4096], what[128];
            snprintf(dst, sizeof dst, "%s", abi_path("dst.vmdk"));
            snprintf(what, sizeof what, "%s, kill at %d%% (%s)", types[t].name, points[k].at,
                     points[k].stop ? "blocked in the callback" : "while copying");
            int seen = -1;
            int killed = clone_and_kill(src, dst, types[t].type, points[k].at, points[k].stop,
                                        &seen);
            /* The source: untouched and clean. */
            struct fstamp now;
            stamp(src, &now);
            if (!same_stamp(&before, &now))
                fail_msg("%s: the source file changed (size/mtime/ctime/inode)", what);
            if (qemu)
                qemu_check(src);
            /* The destination: absent, or complete and equal. */
            int exists = abi_exists(dst);
            if (exists)
                verify_disk(dst, what);
            leftovers += sweep("src.vmdk", "dst", exists, what);
            print_message("  %s: %s at %d%%, destination %s\n", what,
                          killed ? "killed" : "finished", seen, exists ? "complete" : "absent");
            if (!killed && !exists)
                fail_msg("%s: the clone finished but left no destination", what);
            if (points[k].stop && exists)
                fail_msg("%s: a destination exists although the clone was killed half-way",
                         what);
            if (exists) {
                /* Remove it for the next round (its files: dst.vmdk, dst-s*.vmdk). */
                ABI_OK(VixDiskLib_Unlink(abi_conn(), dst));
                assert_int_equal(abi_count_prefix(abi_dir(), "dst"), 0);
            }
        }
        print_message("  %s: %zu hidden temporary file(s) left by the killed clones\n",
                      types[t].name, leftovers);
    }
    /* Leftovers (even when not swept) do not block a new clone. */
    for (size_t t = 0; t < 2; t++) {
        char dst[4096];
        snprintf(dst, sizeof dst, "%s", abi_path("final.vmdk"));
        int seen;
        assert_int_equal(clone_and_kill(src, dst, types[t].type, 50, 1, &seen), 1);
        /* a hidden temporary of the killed clone is still there; made
         * old, it goes at the next clone, unlike a young or a locked one */
        size_t aged = age_hidden(".final.");
        assert_true(aged > 0);
        int lfd = fake_temp(".final.partial-0badf00d.vmdk", 1);
        fake_temp(".final.plugin-0000beef.vmdk", 0);
        /* old extent files: one of the locked temporary, one orphan */
        close(fake_temp(".final.partial-0badf00d-flat.vmdk", 1));
        close(fake_temp(".final.partial-00c0ffee-s001.vmdk", 1));
        assert_int_equal(clone_and_kill(src, dst, types[t].type, 101, 0, &seen), 0);
        assert_int_equal(abi_count_prefix(abi_dir(), ".final."), 3);
        assert_true(abi_exists(abi_path(".final.partial-0badf00d.vmdk")));
        assert_true(abi_exists(abi_path(".final.partial-0badf00d-flat.vmdk")));
        assert_true(abi_exists(abi_path(".final.plugin-0000beef.vmdk")));
        print_message("  %s: the next clone removed %zu stale file(s) and an orphan extent, "
                      "kept the young and the locked one\n", types[t].name, aged);
        close(lfd);
        remove(abi_path(".final.partial-0badf00d.vmdk"));
        remove(abi_path(".final.partial-0badf00d-flat.vmdk"));
        remove(abi_path(".final.plugin-0000beef.vmdk"));
        verify_disk(dst, "clone after a killed clone of the same name");
        if (qemu)
            qemu_check(dst);
        ABI_OK(VixDiskLib_Unlink(abi_conn(), dst));
    }
    /* The source, byte for byte. */
    struct fstamp now;
    stamp(src, &now);
    assert_true(same_stamp(&before, &now));
    if (file_hash(src) != hash)
        fail_msg("the source file's bytes changed");
    verify_disk(src, "source after all the kills");
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "--clone-child") == 0)
        return child_main(argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "readlink /proc/self/exe failed\n");
        return 1;
    }
    self_exe[n] = '\0';
    abi_filters(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_clone, abi_setup, abi_teardown),
    };
    return cmocka_run_group_tests_name("clone_crash", tests, abi_lib_setup, abi_lib_teardown);
}
