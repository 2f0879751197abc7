/* test_restore.c - writes as restore tools make them.
 *
 * nbdkit's vddk plugin, fed by nbdcopy from a mostly empty image, makes
 * these calls in this order: InitEx, ConnectEx (zeroed params for local
 * files), Create, Open read-write, GetInfo, WriteAsync/Wait for every
 * block (the empty ones too: it has no zero call), Flush,
 * QueryAllocatedBlocks, Close.  This test makes the same calls on every
 * writable type and checks that the disk stays thin (nothing allocated for
 * the zero blocks) and reads back the image; then zero writes in chains,
 * and writes into streamOptimized disks at any offset. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abi_util.h"

#define MiB (1024u * 1024u)
#define CAP (32u * MiB)
#define REQ (256u * 1024u)       /* nbdcopy's request size */

/* The image: 1 MiB of varied data at 0, 100 KiB at 9 MiB + 4 KiB, a
 * sector at 20 MiB + 512, zeros elsewhere. */
static const struct { uint64_t off, len; } DATA[] = {
    { 0, 1 * MiB }, { 9 * MiB + 4096, 100 * 1024 }, { 20 * MiB + 512, 512 },
};
#define NDATA (sizeof DATA / sizeof DATA[0])

static unsigned char *make_image(void)
{
    unsigned char *img = calloc(1, CAP);
    assert_non_null(img);
    for (size_t i = 0; i < NDATA; i++)
        abi_fill(img + DATA[i].off, DATA[i].len, DATA[i].off, 7);
    return img;
}

static int done_count;
static void on_done(void *data, VixError err)
{
    (void)data;
    assert_int_equal(err, VIX_OK);
    __atomic_add_fetch(&done_count, 1, __ATOMIC_SEQ_CST);
}

/* Write the whole image with WriteAsync, requests of REQ bytes. */
static void restore(VixDiskLibHandle h, const unsigned char *img)
{
    done_count = 0;
    int n = 0;
    for (uint64_t off = 0; off < CAP; off += REQ, n++)
        ABI_ERR(VixDiskLib_WriteAsync(h, off / 512, REQ / 512, img + off, on_done, NULL),
                VIX_ASYNC);
    ABI_OK(VixDiskLib_Wait(h));
    assert_int_equal(done_count, n);
}

/* Bytes allocated by every file in the test directory. */
static uint64_t dir_allocated(void)
{
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(abi_path(names[i]), &st) == 0)
            total += (uint64_t)st.st_blocks * 512;
    }
    abi_free_list(names, n);
    return total;
}

/* Does [off, off+len) touch a data range of the image, rounded out to
 * grain boundaries? */
static int near_data(uint64_t off, uint64_t len, uint64_t grain)
{
    for (size_t i = 0; i < NDATA; i++) {
        uint64_t a = DATA[i].off / grain * grain;
        uint64_t b = (DATA[i].off + DATA[i].len + grain - 1) / grain * grain;
        if (off < b && off + len > a)
            return 1;
    }
    return 0;
}

static void expect_image(VixDiskLibHandle h, const unsigned char *img)
{
    unsigned char *buf = malloc(4 * MiB);
    assert_non_null(buf);
    for (uint64_t off = 0; off < CAP; off += 4 * MiB) {
        ABI_OK(VixDiskLib_Read(h, off / 512, 4 * MiB / 512, buf));
        if (memcmp(buf, img + off, 4 * MiB) != 0) {
            size_t k = 0;
            while (buf[k] == img[off + k])
                k++;
            fail_msg("byte %llu differs from the image", (unsigned long long)(off + k));
        }
    }
    free(buf);
}

static void restore_type(VixDiskLibDiskType type, int thin)
{
    const char *path = abi_path("r.vmdk");
    unsigned char *img = make_image();
    abi_create_ok(path, type, CAP / 512);
    VixDiskLibHandle h = abi_open(path, 0);
    VixDiskLibInfo *info;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_int_equal(info->capacity, CAP / 512);
    VixDiskLib_FreeInfo(info);
    restore(h, img);
    ABI_OK(VixDiskLib_Flush(h));
    VixDiskLibBlockList *bl;
    ABI_OK(VixDiskLib_QueryAllocatedBlocks(h, 0, CAP / 512, 128, &bl));
    uint64_t listed = 0;
    for (uint32 i = 0; thin && i < bl->numBlocks; i++) {
        uint64_t off = bl->blocks[i].offset * 512, len = bl->blocks[i].length * 512;
        listed += len;
        /* Every block listed holds image data (grains are 64 KiB). */
        for (uint64_t o = off; o < off + len; o += 64 * 1024)
            if (!near_data(o, 64 * 1024, 64 * 1024))
                fail_msg("type %d: block at %llu is allocated but the image has only zeros "
                         "there", (int)type, (unsigned long long)o);
    }
    ABI_OK(VixDiskLib_FreeBlockList(bl));
    abi_close(h);
    if (thin) {
        assert_true(listed > 0);
        /* Data is 1.1 MiB; metadata of a 32 MiB disk is well under 1 MiB. */
        uint64_t alloc = dir_allocated();
        if (alloc > 3 * MiB)
            fail_msg("type %d: %llu bytes allocated for 1.1 MiB of data", (int)type,
                     (unsigned long long)alloc);
    }
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    expect_image(h, img);
    abi_close(h);
    free(img);
}

static void test_restore_monolithic_sparse(void **state)
{
    (void)state;
    restore_type(VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 1);
}

static void test_restore_split_sparse(void **state)
{
    (void)state;
    restore_type(VIXDISKLIB_DISK_SPLIT_SPARSE, 1);
}

static void test_restore_vmfs_thin(void **state)
{
    (void)state;
    restore_type(VIXDISKLIB_DISK_VMFS_THIN, 1);
}

static void test_restore_stream(void **state)
{
    (void)state;
    restore_type(VIXDISKLIB_DISK_STREAM_OPTIMIZED, 1);
}

/* Preallocated types: the data must come back; allocation is theirs. */
static void test_restore_thick(void **state)
{
    (void)state;
    static const VixDiskLibDiskType types[] = {
        VIXDISKLIB_DISK_MONOLITHIC_FLAT, VIXDISKLIB_DISK_SPLIT_FLAT, VIXDISKLIB_DISK_VMFS_FLAT,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        restore_type(types[i], 0);
        ABI_OK(VixDiskLib_Unlink(abi_conn(), abi_path("r.vmdk")));
    }
}

/* Zeros written over a parent's data read as zeros; zeros where the
 * parent has none allocate nothing; mixed requests store only their data. */
static void zero_over_parent(VixDiskLibDiskType child_type)
{
    const char *base = abi_path("base.vmdk"), *child = abi_path("child.vmdk");
    abi_create_ok(base, VIXDISKLIB_DISK_MONOLITHIC_SPARSE, 16 * MiB / 512);
    VixDiskLibHandle h = abi_open(base, 0);
    abi_write_pattern(h, 0, 8 * MiB / 512, 3);          /* data in [0, 8 MiB) */
    ABI_OK(VixDiskLib_CreateChild(h, child, child_type, NULL, NULL));
    abi_close(h);

    h = abi_open(child, 0);
    unsigned char *z = calloc(1, 2 * MiB);
    assert_non_null(z);
    ABI_OK(VixDiskLib_Write(h, 1 * MiB / 512, 1 * MiB / 512, z));      /* whole grains */
    ABI_OK(VixDiskLib_Write(h, (3 * MiB + 512) / 512, 2, z));          /* part of a grain */
    ABI_OK(VixDiskLib_Write(h, 10 * MiB / 512, 2 * MiB / 512, z));     /* parent has none */
    /* A request of zeros then data: only the data's grain is stored. */
    unsigned char *mixed = calloc(1, 256 * 1024);
    assert_non_null(mixed);
    abi_fill(mixed + 192 * 1024, 64 * 1024, 12 * MiB + 192 * 1024, 9);
    ABI_OK(VixDiskLib_Write(h, 12 * MiB / 512, 256 * 1024 / 512, mixed));
    ABI_OK(VixDiskLib_Flush(h));

    abi_expect_pattern(h, 0, 1 * MiB / 512, 3);
    abi_expect_zero(h, 1 * MiB / 512, 1 * MiB / 512);
    abi_expect_pattern(h, 2 * MiB / 512, (1 * MiB + 512) / 512, 3);
    abi_expect_zero(h, (3 * MiB + 512) / 512, 2);
    abi_expect_pattern(h, (3 * MiB + 1536) / 512, (5 * MiB - 1536) / 512, 3);
    abi_expect_zero(h, 8 * MiB / 512, 4 * MiB / 512);
    unsigned char *back = malloc(256 * 1024);
    assert_non_null(back);
    ABI_OK(VixDiskLib_Read(h, 12 * MiB / 512, 256 * 1024 / 512, back));
    assert_memory_equal(back, mixed, 256 * 1024);
    abi_close(h);

    /* The child stores at most the partial grain and the mixed request's
     * data grain (and its metadata). */
    char **names;
    size_t n = abi_list(abi_dir(), &names);
    uint64_t alloc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (strncmp(names[i], "child", 5) == 0 && stat(abi_path(names[i]), &st) == 0)
            alloc += (uint64_t)st.st_blocks * 512;
    }
    abi_free_list(names, n);
    if (alloc > 512 * 1024)
        fail_msg("the child's files allocate %llu bytes, expected at most 512 KiB",
                 (unsigned long long)alloc);
    free(z);
    free(mixed);
    free(back);
}

static void test_zero_over_parent_sparse(void **state)
{
    (void)state;
    zero_over_parent(VIXDISKLIB_DISK_MONOLITHIC_SPARSE);
}

static void test_zero_over_parent_split_sparse(void **state)
{
    (void)state;
    zero_over_parent(VIXDISKLIB_DISK_SPLIT_SPARSE);
}

/* Random writes of every shape into a streamOptimized disk, a flush in
 * the middle, overwrites, reopen: the disk holds what a flat copy would. */
static void test_stream_random_writes(void **state)
{
    (void)state;
    const char *path = abi_path("s.vmdk");
    const uint64_t cap = 8 * MiB;
    abi_create_ok(path, VIXDISKLIB_DISK_STREAM_OPTIMIZED, cap / 512);
    unsigned char *shadow = calloc(1, cap), *buf = malloc(cap);
    assert_non_null(shadow);
    assert_non_null(buf);
    uint64_t rs = 42;
    VixDiskLibHandle h = abi_open(path, 0);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 60; i++) {
            uint64_t sectors = 1 + abi_rand(&rs) % (i % 3 == 0 ? 8 : 600);
            uint64_t start = abi_rand(&rs) % (cap / 512 - sectors);
            unsigned char *p = shadow + start * 512;
            if (i % 7 == 0)
                memset(p, 0, sectors * 512);
            else
                abi_fill(p, sectors * 512, start * 512, (uint32_t)(round * 100 + i));
            ABI_OK(VixDiskLib_Write(h, start, sectors, p));
        }
        ABI_OK(VixDiskLib_Read(h, 0, cap / 512, buf));
        assert_memory_equal(buf, shadow, cap);
        ABI_OK(VixDiskLib_Flush(h));
    }
    abi_close(h);
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_OK(VixDiskLib_Read(h, 0, cap / 512, buf));
    assert_memory_equal(buf, shadow, cap);
    abi_close(h);
    free(shadow);
    free(buf);
}

/* A writer killed between flushes (no close, as after kill -9): the file
 * has no footer; CheckRepair rebuilds the tables from the grain markers,
 * and everything flushed (and here everything written) reads back. */
static void test_stream_killed_writer(void **state)
{
    (void)state;
    const char *path = abi_path("k.vmdk");
    const uint64_t cap = 4 * MiB;
    abi_create_ok(path, VIXDISKLIB_DISK_STREAM_OPTIMIZED, cap / 512);
    unsigned char *a = malloc(cap), *b = malloc(cap), *buf = malloc(cap);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(buf);
    abi_fill(a, cap, 0, 1);
    abi_fill(b, cap, 0, 2);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        VixDiskLibHandle h;
        if (VixDiskLib_Open(abi_conn(), path, 0, &h) != VIX_OK ||
            VixDiskLib_Write(h, 0, cap / 512, a) != VIX_OK || VixDiskLib_Flush(h) != VIX_OK ||
            VixDiskLib_Write(h, 1 * MiB / 512, 1 * MiB / 512, b + 1 * MiB) != VIX_OK)
            _exit(1);
        _exit(0);                 /* no Close: the metadata is not rewritten */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    VixDiskLibHandle h;
    ABI_FAILS(VixDiskLib_Open(abi_conn(), path, VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h));
    ABI_FAILS(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, TRUE));
    ABI_OK(VixDiskLib_CheckRepair(abi_conn(), path, FALSE));
    h = abi_open(path, VIXDISKLIB_FLAG_OPEN_READ_ONLY);
    ABI_OK(VixDiskLib_Read(h, 0, cap / 512, buf));
    abi_close(h);
    assert_memory_equal(buf, a, 1 * MiB);
    assert_memory_equal(buf + 1 * MiB, b + 1 * MiB, 1 * MiB);
    assert_memory_equal(buf + 2 * MiB, a + 2 * MiB, 2 * MiB);
    free(a);
    free(b);
    free(buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, abi_setup, abi_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_restore_monolithic_sparse),
        T(test_restore_split_sparse),
        T(test_restore_vmfs_thin),
        T(test_restore_stream),
        T(test_restore_thick),
        T(test_zero_over_parent_sparse),
        T(test_zero_over_parent_split_sparse),
        T(test_stream_random_writes),
        T(test_stream_killed_writer),
    };
    abi_filters(argc, argv);
    return cmocka_run_group_tests(tests, abi_lib_setup, abi_lib_teardown);
}
