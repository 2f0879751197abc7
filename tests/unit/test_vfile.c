/* test_vfile.c - the file layer (util/vfile.h) under the engine.
 *
 * A test file system that is not local: its files are named as datastore
 * paths ("[TestDS] vm/x.vmdk", mapped to the test's directory) and read
 * through pread on descriptors it keeps to itself; its vd_files have fd =
 * -1, so engine code that still read through an fd would fail.  Every kind
 * of disk the engine reads is opened both ways (vmdk_open on the local
 * path, vmdk_open_fs through the test file system) and must give the same
 * bytes, block status, information and metadata; writes are refused;
 * missing files and read errors keep their code and message. */
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/vdisk.h"
#include "util/vfile.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define G (64 * KiB)
#define PREFIX "[TestDS] vm/"

/* ---- the test file system ------------------------------------------------- */

struct tfs {
    struct vd_fs fs;
    char missing[256];        /* this path is reported missing ("" none) */
    char fail_path[256];      /* reads of this file fail ("" none; "*" any) */
    int fail_code;            /* with this code */
    int opens, reads, exists_calls;
};

struct tfile {
    struct vd_file f;
    int priv_fd;              /* the test's own descriptor, never shown */
    struct tfs *fs;
};

/* "[TestDS] vm/x" -> the test directory's x; NULL for anything else. */
static const char *local_of(const char *path)
{
    if (strncmp(path, PREFIX, strlen(PREFIX)) != 0)
        return NULL;
    return tu_path(path + strlen(PREFIX));
}

static int tf_pread(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error)
{
    struct tfile *t = f->impl;
    assert_int_equal(f->fd, -1);
    t->fs->reads++;
    if (t->fs->fail_path[0] &&
        (strcmp(t->fs->fail_path, "*") == 0 || strcmp(t->fs->fail_path, f->path) == 0))
        return vd_err_set(t->fs->fail_code, "%s: test server dropped the connection at "
                          "offset %" PRIu64, f->path, off);
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(t->priv_fd, p, len, (off_t)off);
        if (n < 0)
            return vd_err_set(VD_E_IO, "%s: test read failed at offset %" PRIu64, f->path,
                              off);
        if (n == 0) {
            if (eof_is_error)
                return vd_err_set(VD_E_CORRUPT, "%s: past the end at offset %" PRIu64,
                                  f->path, off);
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int tf_size(struct vd_file *f, uint64_t *size)
{
    struct tfile *t = f->impl;
    struct stat st;
    if (fstat(t->priv_fd, &st) < 0)
        return vd_err_set(VD_E_IO, "%s: test size failed", f->path);
    *size = (uint64_t)st.st_size;
    return 0;
}

static void tf_close(struct vd_file *f)
{
    struct tfile *t = f->impl;
    close(t->priv_fd);
    free(f->path);
    free(t);
}

static const struct vd_file_ops tfile_ops = { tf_pread, tf_size, tf_close };

static int tfs_open(struct vd_fs *fs, const char *path, struct vd_file **out)
{
    struct tfs *t = fs->impl;
    t->opens++;
    const char *lp = local_of(path);
    if (!lp || strcmp(path, t->missing) == 0)
        return vd_err_set(VD_E_NOTFOUND, "%s: no such file on the test datastore", path);
    int fd = open(lp, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vd_err_set(VD_E_NOTFOUND, "%s: no such file on the test datastore", path);
    struct tfile *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->f.ops = &tfile_ops;
    f->f.fd = -1;
    f->f.path = strdup(path);
    f->f.impl = f;
    f->priv_fd = fd;
    f->fs = t;
    *out = &f->f;
    return 0;
}

static int tfs_exists(struct vd_fs *fs, const char *path)
{
    struct tfs *t = fs->impl;
    t->exists_calls++;
    const char *lp = local_of(path);
    return lp && strcmp(path, t->missing) != 0 && access(lp, F_OK) == 0;
}

static const struct vd_fs_ops tfs_ops = { "test", tfs_open, tfs_exists };

static void tfs_init(struct tfs *t)
{
    memset(t, 0, sizeof *t);
    t->fs.ops = &tfs_ops;
    t->fs.impl = t;
}

/* "[TestDS] vm/name" in a ring of static buffers. */
static const char *rpath(const char *name)
{
    static char ring[8][512];
    static int i;
    char *b = ring[i++ % 8];
    snprintf(b, sizeof ring[0], PREFIX "%s", name);
    return b;
}

/* ---- comparing a local open with one through the test fs ------------------ */

static void same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_true(a == b);
    else
        assert_string_equal(a, b);
}

static void compare_engine(vmdk_disk *l, vmdk_disk *r)
{
    assert_true(vmdk_is_readonly(r));
    uint64_t cap = vmdk_capacity(l);
    assert_int_equal(vmdk_capacity(r), cap);
    assert_int_equal(vmdk_num_links(r), vmdk_num_links(l));

    /* Bytes, in pieces of odd sizes. */
    size_t piece = 300 * KiB + 512;
    unsigned char *a = malloc(piece), *b = malloc(piece);
    assert_non_null(a);
    assert_non_null(b);
    for (uint64_t off = 0; off < cap;) {
        size_t n = cap - off < piece ? (size_t)(cap - off) : piece;
        TU_OK(vmdk_pread(l, a, n, off));
        memset(b, 0xa5, n);
        TU_OK(vmdk_pread(r, b, n, off));
        if (memcmp(a, b, n) != 0)
            fail_msg("bytes at %" PRIu64 "+%zu differ", off, n);
        off += n;
    }
    free(a);
    free(b);

    /* Block status, through the chain and of the top link alone.  A local
     * thin flat file also reports its holes (SEEK_DATA), which a remote
     * file system cannot tell: there local ZERO may meet remote DATA. */
    for (int single = 0; single < 2; single++) {
        for (uint64_t off = 0; off < cap;) {
            uint64_t ra, rb;
            int sa, sb;
            TU_OK(vmdk_block_status(l, off, cap - off, single, &ra, &sa));
            TU_OK(vmdk_block_status(r, off, cap - off, single, &rb, &sb));
            if (sa == VMDK_ZERO && sb == VMDK_DATA) {
                off += ra < rb ? ra : rb;
                continue;
            }
            if (sb == VMDK_DATA && ra < rb) {    /* local DATA before a local hole */
                off += ra;
                continue;
            }
            assert_int_equal(ra, rb);
            assert_int_equal(sa, sb);
            off += ra;
        }
    }

    /* Link and extent information. */
    for (int i = 0; i < vmdk_num_links(l); i++) {
        struct vmdk_link_info la, lb;
        TU_OK(vmdk_link_info(l, i, &la));
        TU_OK(vmdk_link_info(r, i, &lb));
        assert_string_equal(lb.path, rpath(vd_path_base(la.path)));
        assert_string_equal(lb.create_type, la.create_type);
        assert_int_equal(lb.type, la.type);
        assert_int_equal(lb.cid, la.cid);
        assert_int_equal(lb.parent_cid, la.parent_cid);
        same_str(lb.parent_hint, la.parent_hint);
        assert_int_equal(lb.capacity, la.capacity);
        assert_int_equal(lb.num_extents, la.num_extents);
        assert_int_equal(lb.grain_size, la.grain_size);
        assert_true(lb.allocated_bytes > 0);
        for (int e = 0; e < la.num_extents; e++) {
            struct vmdk_extent_info ea, eb;
            TU_OK(vmdk_extent_info(l, i, e, &ea));
            TU_OK(vmdk_extent_info(r, i, e, &eb));
            if (ea.path)
                assert_string_equal(eb.path, rpath(vd_path_base(ea.path)));
            else
                assert_null(eb.path);
            assert_string_equal(eb.kind, ea.kind);
            assert_string_equal(eb.access, ea.access);
            assert_int_equal(eb.start, ea.start);
            assert_int_equal(eb.length, ea.length);
            assert_int_equal(eb.file_offset, ea.file_offset);
        }
        char **fa, **fb;
        size_t na, nb;
        TU_OK(vmdk_link_files(l, i, &fa, &na));
        TU_OK(vmdk_link_files(r, i, &fb, &nb));
        assert_int_equal(na, nb);
        for (size_t k = 0; k < na; k++)
            assert_string_equal(fb[k], rpath(vd_path_base(fa[k])));
        vmdk_strv_free(fa, na);
        vmdk_strv_free(fb, nb);
    }
    struct vmdk_geometry ga, gb;
    TU_OK(vmdk_geometry(l, &ga));
    TU_OK(vmdk_geometry(r, &gb));
    assert_memory_equal(&ga, &gb, sizeof ga);
    assert_int_equal(vmdk_adapter_type(r), vmdk_adapter_type(l));
    assert_int_equal(vmdk_hw_version(r), vmdk_hw_version(l));

    /* Metadata. */
    char **ka, **kb;
    size_t na, nb;
    TU_OK(vmdk_meta_keys(l, &ka, &na));
    TU_OK(vmdk_meta_keys(r, &kb, &nb));
    assert_int_equal(na, nb);
    for (size_t k = 0; k < na; k++) {
        assert_string_equal(ka[k], kb[k]);
        char *va, *vb;
        TU_OK(vmdk_meta_get(l, ka[k], &va));
        TU_OK(vmdk_meta_get(r, kb[k], &vb));
        assert_string_equal(va, vb);
        free(va);
        free(vb);
    }
    vmdk_strv_free(ka, na);
    vmdk_strv_free(kb, nb);

    /* Writes are refused, saying why; nothing changes. */
    unsigned char sec[512] = { 1 };
    TU_ERR(vmdk_pwrite(r, sec, sizeof sec, 0), VD_E_READONLY);
    TU_MSG_HAS("read-only transport (test)");
    TU_ERR(vmdk_meta_set(r, "uuid", "x"), VD_E_READONLY);
    TU_MSG_HAS("read-only transport");
    TU_OK(vmdk_flush(r));
}

static void compare_vdisk(const char *local, const char *remote, struct tfs *t)
{
    struct vdisk *a, *b;
    TU_OK(vdisk_open_local(local, VMDK_OPEN_RDONLY, &a));
    TU_OK(vdisk_open_fs(remote, 0, &t->fs, "https", &b));
    assert_string_equal(a->ops->transport, "file");
    assert_string_equal(b->ops->transport, "https");
    assert_true(b->readonly);
    assert_int_equal(b->capacity, a->capacity);
    assert_non_null(vdisk_local_engine(a));
    assert_null(vdisk_local_engine(b));        /* no local paths behind it */
    assert_non_null(vdisk_engine(b));
    struct vdisk_info ia, ib;
    TU_OK(a->ops->info(a, &ia));
    TU_OK(b->ops->info(b, &ib));
    assert_int_equal(ib.capacity, ia.capacity);
    assert_int_equal(ib.num_links, ia.num_links);
    same_str(ib.parent_hint, ia.parent_hint);
    same_str(ib.uuid, ia.uuid);
    assert_memory_equal(&ib.phys, &ia.phys, sizeof ia.phys);
    assert_memory_equal(&ib.bios, &ia.bios, sizeof ia.bios);
    assert_int_equal(ib.adapter, ia.adapter);
    assert_int_equal(ib.hw_version, ia.hw_version);
    assert_int_equal(ib.disk_type, ia.disk_type);
    assert_int_equal(ib.logical_sector, ia.logical_sector);
    assert_int_equal(ib.physical_sector, ia.physical_sector);
    vdisk_info_free(&ia);
    vdisk_info_free(&ib);
    uint64_t ra, rb;
    int sa, sb;
    TU_OK(a->ops->block_status(a, 0, a->capacity, 0, &ra, &sa));
    TU_OK(b->ops->block_status(b, 0, b->capacity, 0, &rb, &sb));
    /* (Local thin flat files end a data run at their first hole.) */
    if (!(sa == sb && ra < rb && sb == VMDK_DATA) && !(sa == VMDK_ZERO && sb == VMDK_DATA)) {
        assert_int_equal(ra, rb);
        assert_int_equal(sa, sb);
    }
    char **ka, **kb;
    size_t na, nb;
    TU_OK(a->ops->meta_keys(a, &ka, &na));
    TU_OK(b->ops->meta_keys(b, &kb, &nb));
    assert_int_equal(na, nb);
    for (size_t k = 0; k < na; k++) {
        char *va, *vb;
        TU_OK(a->ops->meta_get(a, ka[k], &va));
        TU_OK(b->ops->meta_get(b, kb[k], &vb));
        assert_string_equal(va, vb);
        free(va);
        free(vb);
    }
    vmdk_strv_free(ka, na);
    vmdk_strv_free(kb, nb);
    unsigned char buf[4096], buf2[4096];
    TU_OK(a->ops->pread(a, buf, sizeof buf, 0));
    TU_OK(b->ops->pread(b, buf2, sizeof buf2, 0));
    assert_memory_equal(buf, buf2, sizeof buf);
    TU_ERR(b->ops->pwrite(b, buf, sizeof buf, 0), VD_E_READONLY);
    TU_MSG_HAS("read-only transport");
    TU_ERR(b->ops->meta_set(b, "uuid", "x"), VD_E_READONLY);
    if (b->ops->zero)
        TU_ERR(b->ops->zero(b, 0, 4096), VD_E_READONLY);
    TU_OK(a->ops->close(a));
    TU_OK(b->ops->close(b));
}

/* Open name both ways and compare; nothing in the directory may change. */
static void compare(const char *name, int links)
{
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    struct tfs t;
    tfs_init(&t);
    vmdk_disk *l, *r;
    TU_OK(vmdk_open(tu_path(name), VMDK_OPEN_RDONLY, &l));
    TU_OK(vmdk_open_fs(rpath(name), 0, &t.fs, &r));   /* asks for writing: still read-only */
    assert_int_equal(vmdk_num_links(l), links);
    assert_true(t.opens > 0);
    assert_true(t.reads > 0);
    compare_engine(l, r);
    TU_OK(vmdk_close(r));
    TU_OK(vmdk_close(l));
    compare_vdisk(tu_path(name), rpath(name), &t);
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
}

/* ---- disks -------------------------------------------------------------- */

/* Patterns at a few places, leaving holes between them. */
static void scribble(const char *name, uint32_t seed, uint64_t cap)
{
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path(name), 0, &d));
    tu_write_pattern(d, 0, 3 * G, seed);
    tu_write_pattern(d, 5 * G + 512, 7 * 512, seed + 1);
    tu_write_pattern(d, cap / 2 - 4096, 3 * G, seed + 2);
    tu_write_pattern(d, cap - G, G, seed + 3);
    TU_OK(vmdk_close(d));
}

static void make(const char *name, enum vmdk_type type, uint64_t cap, uint64_t split)
{
    TU_OK(tu_create(tu_path(name), type, cap, split));
    scribble(name, 10, cap);
}

static void test_monolithic_sparse(void **state)
{
    (void)state;
    make("ms.vmdk", VMDK_TYPE_MONOLITHIC_SPARSE, 4 * MiB + 512, 0);
    compare("ms.vmdk", 1);
}

static void test_monolithic_flat(void **state)
{
    (void)state;
    make("mf.vmdk", VMDK_TYPE_MONOLITHIC_FLAT, 3 * MiB, 0);
    compare("mf.vmdk", 1);
}

static void test_split_sparse(void **state)
{
    (void)state;
    make("ss.vmdk", VMDK_TYPE_SPLIT_SPARSE, 5 * MiB + 4096, 2 * MiB);
    compare("ss.vmdk", 1);
}

static void test_split_flat(void **state)
{
    (void)state;
    make("sf.vmdk", VMDK_TYPE_SPLIT_FLAT, 5 * MiB, 2 * MiB);
    compare("sf.vmdk", 1);
}

static void test_vmfs(void **state)
{
    (void)state;
    make("v.vmdk", VMDK_TYPE_VMFS_FLAT, 3 * MiB, 0);
    compare("v.vmdk", 1);
    make("t.vmdk", VMDK_TYPE_VMFS_THIN, 3 * MiB, 0);
    compare("t.vmdk", 1);
}

static void test_stream_optimized(void **state)
{
    (void)state;
    const uint64_t cap = 3 * MiB + 4096;
    struct vmdk_create_params p = { .type = VMDK_TYPE_STREAM_OPTIMIZED, .capacity = cap };
    char *desc;
    size_t dlen;
    TU_OK(vmdk_stream_descriptor("so.vmdk", &p, &desc, &dlen));
    struct vmdk_stream *w;
    TU_OK(vmdk_stream_create(tu_path("so.vmdk"), desc, dlen, cap, &w));
    free(desc);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    assert_non_null(c);
    size_t gb = VMDK_STREAM_GRAIN_BYTES, zcap = libdeflate_zlib_compress_bound(c, gb);
    unsigned char *g = malloc(gb), *z = malloc(zcap);
    assert_non_null(g);
    assert_non_null(z);
    const uint64_t grains[] = { 0, 1, 2, 7, 20, 48 };     /* 48: the last, partial */
    for (size_t i = 0; i < sizeof grains / sizeof grains[0]; i++) {
        tu_fill(g, gb, grains[i] * gb, 3);
        size_t zn = libdeflate_zlib_compress(c, g, gb, z, zcap);
        assert_true(zn > 0);
        TU_OK(vmdk_stream_add_grain(w, grains[i], z, zn));
    }
    TU_OK(vmdk_stream_finish(w));
    libdeflate_free_compressor(c);
    free(g);
    free(z);
    compare("so.vmdk", 1);
}

static void test_vmfs_sparse_delta(void **state)
{
    (void)state;
    const uint64_t cap = 3 * MiB + 512;
    make("p.vmdk", VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0);
    struct vmdk_create_params p = { .type = VMDK_TYPE_VMFS_SPARSE, .capacity = cap };
    TU_OK(vmdk_create(tu_path("c.vmdk"), &p));
    char repl[128];
    snprintf(repl, sizeof repl, "parentCID=%08x\nparentFileNameHint=\"p.vmdk\"",
             tu_cid_of(tu_path("p.vmdk")));
    tu_replace_in_file(tu_path("c.vmdk"), "parentCID=ffffffff", repl);
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("c.vmdk"), 0, &d));
    tu_write_pattern(d, G + 1024, 5000, 40);
    tu_write_pattern(d, 2 * MiB, 3 * G, 41);
    TU_OK(vmdk_close(d));
    compare("c.vmdk", 2);
}

/* A small seSparse extent (layout of test_sesparse.c, one grain table) on
 * a monolithicSparse parent: data, zeroed, unmapped and hole entries. */
static void test_sesparse(void **state)
{
    (void)state;
    const uint64_t cap_sectors = 8192, cap = cap_sectors * 512;
    make("sp.vmdk", VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0);
    const char *x = tu_path("se-sesparse.vmdk");
    enum { VH = 1, JH = 2, J = 3, GD = 4, GTS = 8, BM = 72, BK = 80, GR = 88, NG = 16 };
    unsigned char zero[512] = { 0 };
    tu_write_all(x, zero, sizeof zero);
    tu_truncate(x, (GR + NG * 8) * 512);
    tu_put_u64(x, 0, 0xcafebabeull);
    tu_put_u64(x, 8, 0x0000000200000001ull);
    tu_put_u64(x, 16, cap_sectors);
    tu_put_u64(x, 24, 8);
    tu_put_u64(x, 32, 64);
    const uint64_t areas[][3] = { { 80, VH, 1 }, { 96, JH, 1 }, { 112, J, 1 }, { 128, GD, 1 },
                                  { 144, GTS, 64 }, { 160, BM, 8 }, { 176, BK, 8 },
                                  { 192, GR, NG * 8 } };
    for (size_t i = 0; i < sizeof areas / sizeof areas[0]; i++) {
        tu_put_u64(x, areas[i][0], areas[i][1]);
        tu_put_u64(x, areas[i][0] + 8, areas[i][2]);
    }
    tu_put_u64(x, VH * 512, 0xcafecafeull);
    tu_put_u64(x, VH * 512 + 8, 1);
    tu_put_u64(x, VH * 512 + 16, 1);
    tu_put_u64(x, GD * 512, 0x1000000000000000ull);     /* table 0 at GT index 0 */
    /* disk grain -> file grain (data), or a special entry. */
    const struct { uint64_t disk, file, special; } map[] = {
        { 0, 0, 0 }, { 1, 1, 0 }, { 2, 0, 0x2000000000000000ull }, { 4, 5, 0 },
        { 6, 0, 0x1000000000000000ull }, { 1023, 9, 0 },
    };
    unsigned char g[4096];
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        uint64_t v = map[i].special;
        if (!v) {
            v = 0x3000000000000000ull | ((map[i].file & 0xfff) << 48) | (map[i].file >> 12);
            tu_fill(g, sizeof g, map[i].disk * 4096, 50);
            tu_pwrite(x, (GR + map[i].file * 8) * 512, g, sizeof g);
        }
        tu_put_u64(x, GTS * 512 + map[i].disk * 8, v);
    }
    char text[1024];
    int n = snprintf(text, sizeof text,
                     "# Disk DescriptorFile\nversion=1\nCID=1234abcd\nparentCID=%08x\n"
                     "parentFileNameHint=\"sp.vmdk\"\ncreateType=\"seSparse\"\n\n"
                     "# Extent description\nRW %" PRIu64 " SESPARSE \"se-sesparse.vmdk\"\n\n"
                     "# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n",
                     tu_cid_of(tu_path("sp.vmdk")), cap_sectors);
    tu_write_all(tu_path("se.vmdk"), text, (size_t)n);
    compare("se.vmdk", 2);
}

/* base <- mid <- top, each written at places of its own; mid's hint is a
 * path from another host, resolved by its base name in mid's directory. */
static void make_chain(void)
{
    const uint64_t cap = 4 * MiB;
    make("base.vmdk", VMDK_TYPE_MONOLITHIC_SPARSE, cap, 0);
    TU_OK(vmdk_create_child(tu_path("mid.vmdk"), tu_path("base.vmdk"),
                            VMDK_TYPE_MONOLITHIC_SPARSE));
    tu_replace_in_embedded(tu_path("mid.vmdk"), "parentFileNameHint=\"base.vmdk\"",
                           "parentFileNameHint=\"/vmfs/volumes/ds1/vm/base.vmdk\"");
    vmdk_disk *d;
    TU_OK(vmdk_open(tu_path("mid.vmdk"), 0, &d));
    tu_write_pattern(d, G, 2 * G, 20);
    tu_write_pattern(d, 3 * MiB, G + 512, 21);
    TU_OK(vmdk_close(d));
    TU_OK(vmdk_create_child(tu_path("top.vmdk"), tu_path("mid.vmdk"),
                            VMDK_TYPE_SPLIT_SPARSE));
    TU_OK(vmdk_open(tu_path("top.vmdk"), 0, &d));
    tu_write_pattern(d, 2 * G - 4096, 8192, 30);
    tu_write_pattern(d, 3 * MiB + G, G, 31);
    TU_OK(vmdk_close(d));
}

static void test_chain_of_three(void **state)
{
    (void)state;
    make_chain();
    compare("top.vmdk", 3);
    /* A remote chain opened as one link. */
    struct tfs t;
    tfs_init(&t);
    vmdk_disk *r;
    TU_OK(vmdk_open_fs(rpath("top.vmdk"), VMDK_OPEN_SINGLE_LINK, &t.fs, &r));
    assert_int_equal(vmdk_num_links(r), 1);
    TU_OK(vmdk_close(r));
    /* No child of a remote parent on this host. */
    TU_OK(vmdk_open_fs(rpath("top.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r));
    TU_ERR(vmdk_create_child_of(r, tu_path("new.vmdk"), VMDK_TYPE_MONOLITHIC_SPARSE),
           VD_E_UNSUPPORTED);
    assert_false(tu_exists(tu_path("new.vmdk")));
    TU_ERR(vmdk_shrink(r, NULL, NULL), VD_E_READONLY);
    TU_OK(vmdk_close(r));
}

/* ---- errors ---------------------------------------------------------------- */

static void test_missing_files(void **state)
{
    (void)state;
    make_chain();
    make("mf.vmdk", VMDK_TYPE_MONOLITHIC_FLAT, MiB, 0);
    struct tfs t;
    tfs_init(&t);
    vmdk_disk *r;
    TU_ERR(vmdk_open_fs(rpath("none.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r), VD_E_NOTFOUND);
    TU_MSG_HAS(rpath("none.vmdk"));
    /* A missing parent. */
    snprintf(t.missing, sizeof t.missing, "%s", rpath("mid.vmdk"));
    TU_ERR(vmdk_open_fs(rpath("top.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r), VD_E_NOTFOUND);
    TU_MSG_HAS(rpath("mid.vmdk"));
    assert_true(t.exists_calls > 0);
    /* A missing extent file. */
    snprintf(t.missing, sizeof t.missing, "%s", rpath("mf-flat.vmdk"));
    TU_ERR(vmdk_open_fs(rpath("mf.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r), VD_E_NOTFOUND);
    TU_MSG_HAS(rpath("mf-flat.vmdk"));
    struct vdisk *v;
    TU_ERR(vdisk_open_fs(rpath("mf.vmdk"), VMDK_OPEN_RDONLY, &t.fs, "https", &v),
           VD_E_NOTFOUND);
}

/* The file system's read error reaches the caller of vmdk_pread as it was. */
static void expect_lost(vmdk_disk *r, struct tfs *t, const char *file, uint64_t off)
{
    snprintf(t->fail_path, sizeof t->fail_path, "%s", file);
    t->fail_code = VD_E_NET_LOST;
    unsigned char buf[8192];
    TU_ERR(vmdk_pread(r, buf, sizeof buf, off), VD_E_NET_LOST);
    char want[512];
    snprintf(want, sizeof want, "%s: test server dropped the connection at offset", file);
    if (strncmp(vd_err_msg(), want, strlen(want)) != 0)
        fail_msg("message \"%s\" is not the file system's \"%s ...\"", vd_err_msg(), want);
    t->fail_path[0] = '\0';
    TU_OK(vmdk_pread(r, buf, sizeof buf, off));      /* the next read works again */
}

static void test_read_errors_keep_code(void **state)
{
    (void)state;
    make_chain();
    make("mf.vmdk", VMDK_TYPE_MONOLITHIC_FLAT, MiB, 0);
    struct tfs t;
    tfs_init(&t);
    vmdk_disk *r;
    /* Flat data. */
    TU_OK(vmdk_open_fs(rpath("mf.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r));
    expect_lost(r, &t, rpath("mf-flat.vmdk"), 4096);
    TU_OK(vmdk_close(r));
    /* A grain table loaded on demand, then grain data, in a parent link. */
    TU_OK(vmdk_open_fs(rpath("top.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r));
    expect_lost(r, &t, rpath("base.vmdk"), 2 * MiB);     /* GT of base not yet loaded */
    expect_lost(r, &t, rpath("base.vmdk"), 2 * MiB);     /* now cached: the grain read */
    TU_OK(vmdk_close(r));
    /* At open: the error of the file system, not a "corrupt" verdict. */
    snprintf(t.fail_path, sizeof t.fail_path, "*");
    t.fail_code = VD_E_NET_LOST;
    TU_ERR(vmdk_open_fs(rpath("top.vmdk"), VMDK_OPEN_RDONLY, &t.fs, &r), VD_E_NET_LOST);
    TU_MSG_HAS("test server dropped the connection");
}

/* ---- local files and paths ------------------------------------------------ */

static void test_local_layer(void **state)
{
    (void)state;
    struct vd_fs *fs = vd_fs_local();
    assert_true(vd_fs_is_local(fs));
    assert_true(vd_fs_is_local(NULL));
    struct tfs t;
    tfs_init(&t);
    assert_false(vd_fs_is_local(&t.fs));
    const char *p = tu_path("f.bin");
    tu_write_all(p, "0123456789", 10);
    assert_int_equal(fs->ops->exists(fs, p), 1);
    assert_int_equal(fs->ops->exists(fs, tu_path("nope")), 0);
    struct vd_file *f;
    TU_ERR(fs->ops->open(fs, tu_path("nope"), &f), VD_E_NOTFOUND);
    TU_MSG_HAS(tu_path("nope"));
    TU_OK(fs->ops->open(fs, p, &f));
    assert_true(f->fd >= 0);
    assert_true(vd_file_is_local(f));
    uint64_t size;
    TU_OK(vd_file_size(f, &size));
    assert_int_equal(size, 10);
    char b[16];
    TU_OK(vd_file_pread(f, b, 4, 3, 1));
    assert_memory_equal(b, "3456", 4);
    TU_OK(vd_file_pread(f, b, 8, 6, 0));
    assert_memory_equal(b, "6789\0\0\0\0", 8);
    TU_ERR(vd_file_pread(f, b, 8, 6, 1), VD_E_IO);
    TU_MSG_HAS(p);
    TU_MSG_HAS("offset 6");
    errno = 0;      /* end of file: worded as EIO */
    assert_int_equal(vd_file_read_err(f, -VD_E_IO, "%s: reading thing", "x"), -VD_E_IO);
    assert_string_equal(vd_err_msg(), "x: reading thing: Input/output error");
    vd_file_close(f);

    /* Datastore paths. */
    char *s;
    assert_string_equal((s = vd_path_dir("[LocalDS_0] DC0_H0_VM0/disk1.vmdk")),
                        "[LocalDS_0] DC0_H0_VM0");
    free(s);
    assert_string_equal((s = vd_path_join("[LocalDS_0] DC0_H0_VM0", "disk1-flat.vmdk")),
                        "[LocalDS_0] DC0_H0_VM0/disk1-flat.vmdk");
    free(s);
    assert_string_equal((s = vd_path_join("[LocalDS_0] DC0_H0_VM0", "[ds2] b/p.vmdk")),
                        "[ds2] b/p.vmdk");
    free(s);
    assert_string_equal((s = vd_path_join("[LocalDS_0] DC0_H0_VM0", "/vmfs/volumes/x.vmdk")),
                        "/vmfs/volumes/x.vmdk");
    free(s);
    assert_string_equal((s = vd_path_dir("[ds] d.vmdk")), "[ds]");
    free(s);
    assert_string_equal((s = vd_path_join("[ds]", "d-flat.vmdk")), "[ds] d-flat.vmdk");
    free(s);
    assert_string_equal(vd_path_base("[ds] d.vmdk"), "d.vmdk");
    assert_string_equal(vd_path_base("[ds] a/d.vmdk"), "d.vmdk");
    /* Local names are untouched. */
    assert_string_equal((s = vd_path_dir("[x].vmdk")), ".");
    free(s);
    assert_string_equal((s = vd_path_join("/a", "[x].vmdk")), "/a/[x].vmdk");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_local_layer, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_monolithic_sparse, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_monolithic_flat, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_split_sparse, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_split_flat, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_vmfs, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stream_optimized, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_vmfs_sparse_delta, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_sesparse, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_chain_of_three, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_files, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_read_errors_keep_code, tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
