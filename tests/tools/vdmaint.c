/* vdmaint.c - drive the engine's maintenance operations from scripts.
 *
 *   vdmaint grow DISK SIZE [geometry]     Grow (SIZE in bytes, K/M/G suffixes)
 *   vdmaint shrink DISK                   Shrink the top link
 *   vdmaint defrag DISK                   Defragment the top link
 *   vdmaint check DISK [repair]           CheckRepair; findings on stdout
 *   vdmaint zero DISK OFFSET LEN          store zeros (allocated grains of zeros)
 *   vdmaint steps OP DISK                 run OP (shrink|defrag), print the
 *                                         number of progress callbacks
 *   vdmaint kill OP DISK N                run OP and SIGKILL this process
 *                                         at progress callback N
 *
 * Exit status: 0 success, 1 engine error (message on stderr), 2 usage,
 * 4 check found problems it did not repair. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "vdmaint: %s: %s: %s\n", what, vd_err_name(rc), vd_err_msg());
    return 1;
}

static uint64_t size_arg(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 10);
    switch (*end) {
    case 'K': case 'k': v <<= 10; break;
    case 'M': case 'm': v <<= 20; break;
    case 'G': case 'g': v <<= 30; break;
    default: break;
    }
    return v;
}

struct counter {
    long calls, kill_at;
};

static int count_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct counter *c = ctx;
    (void)done;
    (void)total;
    if (++c->calls == c->kill_at)
        kill(getpid(), SIGKILL);
    return 1;
}

static int run_op(const char *op, const char *disk, struct counter *c)
{
    vmdk_disk *d;
    int rc = vmdk_open(disk, 0, &d);
    if (rc < 0)
        return fail(disk, rc);
    if (!strcmp(op, "shrink"))
        rc = vmdk_shrink(d, count_cb, c);
    else if (!strcmp(op, "defrag"))
        rc = vmdk_defragment(d, count_cb, c);
    else
        rc = vd_err_set(VD_E_INVAL, "unknown operation %s", op);
    if (rc < 0) {
        vmdk_close(d);
        return fail(op, rc);
    }
    rc = vmdk_close(d);
    return rc < 0 ? fail(disk, rc) : 0;
}

static void report(void *ctx, int level, const char *msg)
{
    (void)ctx;
    static const char *tag[] = { "info", "problem", "repaired" };
    printf("%s: %s\n", tag[level >= 0 && level <= 2 ? level : 0], msg);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "grow")) {
        int rc = vmdk_grow(argv[2], size_arg(argv[3]), argc >= 5, NULL, NULL);
        return rc < 0 ? fail("grow", rc) : 0;
    }
    if (argc == 3 && (!strcmp(argv[1], "shrink") || !strcmp(argv[1], "defrag"))) {
        struct counter c = { 0, -1 };
        return run_op(argv[1], argv[2], &c);
    }
    if (argc >= 3 && !strcmp(argv[1], "check")) {
        struct vmdk_check_result r;
        int rc = vmdk_check(argv[2], argc >= 4, report, NULL, &r);
        if (rc < 0)
            return fail("check", rc);
        return r.unrepaired ? 4 : 0;
    }
    if (argc == 5 && !strcmp(argv[1], "zero")) {
        uint64_t off = size_arg(argv[3]), len = size_arg(argv[4]);
        vmdk_disk *d;
        int rc = vmdk_open(argv[2], 0, &d);
        if (rc < 0)
            return fail(argv[2], rc);
        /* Zeros written into unallocated grains store nothing, so data
         * goes first: the grains end up allocated and holding zeros, which
         * is what shrink looks for. */
        unsigned char *z = calloc(1, 1 << 20), *x = malloc(1 << 20);
        memset(x, 0x5a, 1 << 20);
        for (uint64_t o = off; rc == 0 && o < off + len;) {
            size_t n = off + len - o < (1u << 20) ? (size_t)(off + len - o) : (1u << 20);
            rc = vmdk_pwrite(d, x, n, o);
            if (rc == 0)
                rc = vmdk_pwrite(d, z, n, o);
            o += n;
        }
        free(z);
        free(x);
        int crc = vmdk_close(d);
        if (rc < 0 || crc < 0)
            return fail(argv[2], rc < 0 ? rc : crc);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "steps")) {
        struct counter c = { 0, -1 };
        int rc = run_op(argv[2], argv[3], &c);
        if (rc == 0)
            printf("%ld\n", c.calls);
        return rc;
    }
    if (argc == 5 && !strcmp(argv[1], "kill")) {
        struct counter c = { 0, strtol(argv[4], NULL, 10) };
        return run_op(argv[2], argv[3], &c);
    }
    fprintf(stderr, "usage: vdmaint grow DISK SIZE [geometry] | shrink DISK | defrag DISK |\n"
                    "       check DISK [repair] | zero DISK OFFSET LEN | steps OP DISK |\n"
                    "       kill OP DISK N\n");
    return 2;
}
