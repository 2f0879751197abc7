/* test_stream.c - streamOptimized reading and writing at engine level.
 *
 * Streams made by real producers (qemu-img, python3-vmdkstream, generated
 * into the test's directory at run time; skipped with a message when the
 * producer is missing), by our one-pass writer, and crafted here byte by
 * byte in every layout the reference describes (section 3): VMware's GD at
 * the end with a footer, no EOS sector, no markers (4-byte size prefix), a
 * final partial grain, raw deflate, QEMU's GD at the front with an RGD, Xen
 * Orchestra's single GT blob, version 1, a type-4 marker, small grains with
 * an omitted empty grain table.  Each is read whole (in odd pieces) and its
 * allocation map checked against what was stored.
 *
 * Then corrupt input: every case must fail with a negative code and a
 * message naming the file, never crash or return wrong data.  A stream is
 * never writable, and one handle serves many reading threads at once. */
#include "test_util.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GRAIN_BYTES (64 * KiB)
#define GD_AT_END UINT64_MAX

/* ---- a growable byte buffer of whole sectors ------------------------------ */

struct mb {
    unsigned char *p;
    size_t len, cap;
};

static void mb_reserve(struct mb *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 65536;
    while (nc < b->len + more)
        nc *= 2;
    b->p = realloc(b->p, nc);
    assert_non_null(b->p);
    b->cap = nc;
}

/* Append len bytes and zero padding to the next sector boundary. */
static void mb_put(struct mb *b, const void *data, size_t len)
{
    size_t padded = (len + 511) / 512 * 512;
    mb_reserve(b, padded);
    if (len)
        memcpy(b->p + b->len, data, len);
    memset(b->p + b->len + len, 0, padded - len);
    b->len += padded;
}

static uint64_t mb_sector(const struct mb *b) { return b->len / 512; }

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* ---- crafting streams ----------------------------------------------------- */

enum layout {
    L_END,     /* VMware / spec: grains, GT markers + GTs, GD marker + GD, footer */
    L_FRONT,   /* QEMU: RGD + GD + all GTs before the grains, no metadata markers */
    L_XEN,     /* Xen Orchestra: one GT marker followed by every GT as one blob */
};

struct craft {
    uint64_t cap;            /* sectors */
    uint32_t grain;          /* sectors per grain (0 = 128) */
    uint32_t num_gtes;       /* 0 = 512 */
    uint32_t version;        /* 0 = 3 */
    enum layout layout;
    int no_markers;          /* flag 17 off: grains have a bare 4-byte size */
    int hdr_real_gd;         /* L_END: header carries the real gdOffset */
    int no_footer;           /* L_END: omit footer marker + footer */
    int no_eos;              /* omit the end-of-stream sector */
    int raw_deflate;         /* RFC 1951 grains instead of zlib */
    int short_last;          /* compress only the valid bytes of a partial last grain */
    int progress_marker;     /* a type-4 marker sector after the first grain */
    int rgd;                 /* L_FRONT: flag 1 and a redundant GD/GTs */
    uint32_t footer_flags;   /* 0 = same as header */
};

struct crafted {
    uint64_t ngrains;
    uint64_t *grain_sector;  /* sector of grain g's marker (0 = not stored) */
    size_t *zlen;            /* compressed bytes of grain g */
    uint64_t gd_sector;      /* GD data */
    uint64_t footer_off;     /* byte offset of the footer header, 0 if none */
    uint64_t file_len;
};

static void crafted_free(struct crafted *c)
{
    free(c->grain_sector);
    free(c->zlen);
    memset(c, 0, sizeof *c);
}

static void make_header(unsigned char h[512], const struct craft *o, uint32_t flags,
                        uint64_t desc_off, uint64_t desc_size, uint64_t rgd, uint64_t gd,
                        uint64_t overhead)
{
    memset(h, 0, 512);
    le32(h + 0, TU_KDMV_MAGIC);
    le32(h + 4, o->version);
    le32(h + 8, flags);
    le64(h + 12, o->cap);
    le64(h + 20, o->grain);
    le64(h + 28, desc_off);
    le64(h + 36, desc_size);
    le32(h + 44, o->num_gtes);
    le64(h + 48, rgd);
    le64(h + 56, gd);
    le64(h + 64, overhead);
    h[72] = 0;
    h[73] = '\n';
    h[74] = ' ';
    h[75] = '\r';
    h[76] = '\n';
    le16(h + 77, 1);
}

static void put_meta_marker(struct mb *b, uint64_t sectors, uint32_t type)
{
    unsigned char m[512];
    memset(m, 0, sizeof m);
    le64(m, sectors);
    le32(m + 12, type);
    mb_put(b, m, sizeof m);
}

static char *descriptor_text(const char *name, uint64_t cap)
{
    static char text[1024];
    snprintf(text, sizeof text,
             "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
             "createType=\"streamOptimized\"\n\n# Extent description\n"
             "RW %llu SPARSE \"%s\"\n\n# The Disk Data Base\n#DDB\n\n"
             "ddb.adapterType = \"lsilogic\"\nddb.geometry.cylinders = \"16\"\n"
             "ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n"
             "ddb.virtualHWVersion = \"4\"\n",
             (unsigned long long)cap, name);
    return text;
}

/* Compress one grain's valid bytes. */
static size_t compress_grain(struct libdeflate_compressor *c, int raw, const void *in,
                             size_t len, void *out, size_t outcap)
{
    size_t n = raw ? libdeflate_deflate_compress(c, in, len, out, outcap)
                   : libdeflate_zlib_compress(c, in, len, out, outcap);
    assert_true(n > 0);
    return n;
}

/* Write a crafted stream of content (o->cap sectors) at path.  Grains whose
 * content is all zero are not stored. */
static void craft_stream(const char *path, const struct craft *opt, const unsigned char *content,
                         struct crafted *out)
{
    struct craft o = *opt;
    if (!o.grain)
        o.grain = 128;
    if (!o.num_gtes)
        o.num_gtes = 512;
    if (!o.version)
        o.version = 3;
    uint64_t gbytes = (uint64_t)o.grain * 512;
    uint64_t cap_bytes = o.cap * 512;
    uint64_t ngr = (o.cap + o.grain - 1) / o.grain;
    uint64_t ngt = (ngr + o.num_gtes - 1) / o.num_gtes;
    uint64_t gd_sectors = (ngt * 4 + 511) / 512;
    uint64_t gt_sectors = ((uint64_t)o.num_gtes * 4 + 511) / 512;
    uint32_t flags = 0x10001u | (o.no_markers ? 0 : 0x20000u) | (o.rgd ? 2u : 0);

    memset(out, 0, sizeof *out);
    out->ngrains = ngr;
    out->grain_sector = calloc(ngr, sizeof *out->grain_sector);
    out->zlen = calloc(ngr, sizeof *out->zlen);
    assert_non_null(out->grain_sector);
    assert_non_null(out->zlen);
    uint32_t *gd = calloc(ngt, 4), *gts = calloc(ngt * o.num_gtes, 4);
    assert_non_null(gd);
    assert_non_null(gts);

    struct mb b = {0};
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *desc = descriptor_text(base, o.cap);
    unsigned char hdr[512];
    mb_put(&b, hdr, 512);                      /* header, filled in at the end */
    unsigned char dbuf[20 * 512];
    memset(dbuf, 0, sizeof dbuf);
    memcpy(dbuf, desc, strlen(desc));
    mb_put(&b, dbuf, sizeof dbuf);             /* descriptor: sectors 1..20 */
    uint64_t rgd_at = 0, gd_at = 0, gt_at = 0, rgt_at = 0;
    if (o.layout == L_FRONT) {
        if (o.rgd) {
            rgd_at = mb_sector(&b);
            unsigned char *z = calloc(1, gd_sectors * 512);
            mb_put(&b, z, gd_sectors * 512);
            rgt_at = mb_sector(&b);
            free(z);
            unsigned char *zt = calloc(1, ngt * gt_sectors * 512);
            mb_put(&b, zt, ngt * gt_sectors * 512);
            free(zt);
        }
        gd_at = mb_sector(&b);
        unsigned char *z = calloc(1, (gd_sectors + ngt * gt_sectors) * 512);
        mb_put(&b, z, (gd_sectors + ngt * gt_sectors) * 512);
        free(z);
        gt_at = gd_at + gd_sectors;
    }
    /* overHead: the first grain sector, grain aligned like most writers. */
    uint64_t overhead = (mb_sector(&b) + 127) / 128 * 128;
    {
        unsigned char *z = calloc(1, (overhead - mb_sector(&b)) * 512 + 1);
        mb_put(&b, z, (overhead - mb_sector(&b)) * 512);
        free(z);
    }

    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    assert_non_null(c);
    size_t zcap = libdeflate_zlib_compress_bound(c, gbytes) + 64;
    unsigned char *zbuf = malloc(zcap + 12), *gbuf = malloc(gbytes);
    assert_non_null(zbuf);
    assert_non_null(gbuf);
    int progress_done = 0;
    for (uint64_t gt = 0; gt < ngt; gt++) {
        int any = 0;
        for (uint64_t k = 0; k < o.num_gtes; k++) {
            uint64_t g = gt * o.num_gtes + k;
            if (g >= ngr)
                break;
            uint64_t off = g * gbytes;
            uint64_t valid = cap_bytes - off < gbytes ? cap_bytes - off : gbytes;
            if (tu_is_zero(content + off, valid))
                continue;
            memset(gbuf, 0, gbytes);
            memcpy(gbuf, content + off, valid);
            size_t in_len = o.short_last ? valid : gbytes;
            size_t hl = o.no_markers ? 4 : 12;
            size_t n = compress_grain(c, o.raw_deflate, gbuf, in_len, zbuf + hl, zcap);
            if (o.no_markers) {
                le32(zbuf, (uint32_t)n);
            } else {
                le64(zbuf, g * o.grain);
                le32(zbuf + 8, (uint32_t)n);
            }
            out->grain_sector[g] = mb_sector(&b);
            out->zlen[g] = n;
            gts[gt * o.num_gtes + k] = (uint32_t)mb_sector(&b);
            mb_put(&b, zbuf, hl + n);
            any = 1;
            if (o.progress_marker && !progress_done) {
                put_meta_marker(&b, 0, 4);
                progress_done = 1;
            }
        }
        if (o.layout == L_END && any) {
            if (!o.no_markers)
                put_meta_marker(&b, gt_sectors, 1);
            gd[gt] = (uint32_t)mb_sector(&b);
            unsigned char *t = calloc(1, gt_sectors * 512);
            for (uint32_t k = 0; k < o.num_gtes; k++)
                le32(t + 4 * k, gts[gt * o.num_gtes + k]);
            mb_put(&b, t, gt_sectors * 512);
            free(t);
        }
    }
    if (o.layout == L_XEN) {
        put_meta_marker(&b, ngt * gt_sectors, 1);
        unsigned char *t = calloc(1, gt_sectors * 512);
        for (uint64_t gt = 0; gt < ngt; gt++) {
            gd[gt] = (uint32_t)mb_sector(&b);
            memset(t, 0, gt_sectors * 512);
            for (uint32_t k = 0; k < o.num_gtes; k++)
                le32(t + 4 * k, gts[gt * o.num_gtes + k]);
            mb_put(&b, t, gt_sectors * 512);
        }
        free(t);
    }
    if (o.layout == L_FRONT) {
        /* Fill in the front tables (and their redundant copies). */
        for (uint64_t gt = 0; gt < ngt; gt++) {
            gd[gt] = (uint32_t)(gt_at + gt * gt_sectors);
            for (uint32_t k = 0; k < o.num_gtes; k++)
                le32(b.p + (gt_at + gt * gt_sectors) * 512 + 4 * k, gts[gt * o.num_gtes + k]);
            le32(b.p + gd_at * 512 + 4 * gt, gd[gt]);
            if (o.rgd) {
                le32(b.p + rgd_at * 512 + 4 * gt, (uint32_t)(rgt_at + gt * gt_sectors));
                for (uint32_t k = 0; k < o.num_gtes; k++)
                    le32(b.p + (rgt_at + gt * gt_sectors) * 512 + 4 * k,
                         gts[gt * o.num_gtes + k]);
            }
        }
    } else {
        if (!o.no_markers)
            put_meta_marker(&b, gd_sectors, 2);
        gd_at = mb_sector(&b);
        unsigned char *t = calloc(1, gd_sectors * 512);
        for (uint64_t gt = 0; gt < ngt; gt++)
            le32(t + 4 * gt, gd[gt]);
        mb_put(&b, t, gd_sectors * 512);
        free(t);
    }
    out->gd_sector = gd_at;
    if (o.layout != L_FRONT && !o.no_footer && !o.no_markers) {
        put_meta_marker(&b, 1, 3);
        unsigned char f[512];
        make_header(f, &o, o.footer_flags ? o.footer_flags : flags, 1, 20, 0, gd_at, overhead);
        out->footer_off = b.len;
        mb_put(&b, f, 512);
    }
    if (!o.no_eos) {
        unsigned char eos[512] = {0};
        mb_put(&b, eos, 512);
    }
    uint64_t hdr_gd = o.layout == L_FRONT || o.hdr_real_gd || o.no_markers ? gd_at : GD_AT_END;
    make_header(hdr, &o, flags, 1, 20, o.rgd ? rgd_at : 0, hdr_gd, overhead);
    memcpy(b.p, hdr, 512);
    tu_write_all(path, b.p, b.len);
    out->file_len = b.len;
    free(b.p);
    free(zbuf);
    free(gbuf);
    free(gd);
    free(gts);
    libdeflate_free_compressor(c);
}

/* ---- content --------------------------------------------------------------- */

/* Mixed content, per 64 KiB: pattern, zero, text-like, a few bytes, zero;
 * the last (possibly partial) grain always holds data. */
static unsigned char *make_content(uint64_t bytes, uint32_t seed)
{
    unsigned char *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    for (uint64_t off = 0; off < bytes; off += GRAIN_BYTES) {
        uint64_t n = bytes - off < GRAIN_BYTES ? bytes - off : GRAIN_BYTES;
        switch ((off / GRAIN_BYTES + seed) % 5) {
        case 0:
            tu_fill(p + off, n, off, seed);
            break;
        case 2:
            for (uint64_t i = 0; i < n;) {
                char line[80];
                int k = snprintf(line, sizeof line, "line %llu of disk %u: lorem ipsum\n",
                                 (unsigned long long)(off + i), seed);
                for (int j = 0; j < k && i < n; j++, i++)
                    p[off + i] = (unsigned char)line[j];
            }
            break;
        case 3:
            if (n > 1100)
                tu_fill(p + off + 1000, 100, off + 1000, seed);
            break;
        default:
            break;
        }
    }
    if (bytes) {
        uint64_t last = (bytes - 1) / GRAIN_BYTES * GRAIN_BYTES;
        uint64_t n = bytes - last < 200 ? bytes - last : 200;
        tu_fill(p + last, n, last, seed + 1);
    }
    return p;
}

/* ---- reading back ------------------------------------------------------------ */

/* Open read-only, compare every byte (odd-sized reads, grain-straddling
 * small reads) and, when stored is given, the allocation map per grain of
 * grain_bytes: DATA exactly where stored[g]. */
static void verify_stream(const char *path, const unsigned char *content, uint64_t bytes,
                          uint64_t grain_bytes, const uint64_t *stored)
{
    vmdk_disk *d;
    TU_OK(vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d));
    assert_int_equal(vmdk_capacity(d), bytes);
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, 0, &li));
    assert_int_equal(li.type, VMDK_TYPE_STREAM_OPTIMIZED);
    assert_true(vmdk_is_readonly(d));
    size_t piece = 100003;
    unsigned char *buf = malloc(piece);
    assert_non_null(buf);
    for (uint64_t off = 0; off < bytes; off += piece) {
        size_t n = bytes - off < piece ? (size_t)(bytes - off) : piece;
        TU_OK(vmdk_pread(d, buf, n, off));
        if (memcmp(buf, content + off, n) != 0) {
            size_t i = 0;
            while (buf[i] == content[off + i])
                i++;
            fail_msg("%s: byte %llu reads 0x%02x, expected 0x%02x", path,
                     (unsigned long long)(off + i), buf[i], content[off + i]);
        }
    }
    /* Small reads across grain boundaries (the grain cache path). */
    for (uint64_t g = 1; g * grain_bytes < bytes; g += 3) {
        uint64_t off = g * grain_bytes - 7;
        size_t n = bytes - off < 19 ? (size_t)(bytes - off) : 19;
        TU_OK(vmdk_pread(d, buf, n, off));
        assert_memory_equal(buf, content + off, n);
    }
    /* The last byte alone, and a read past the end fails. */
    TU_OK(vmdk_pread(d, buf, 1, bytes - 1));
    assert_int_equal(buf[0], content[bytes - 1]);
    TU_ERR(vmdk_pread(d, buf, 2, bytes - 1), VD_E_RANGE);
    if (stored) {
        size_t units = (size_t)((bytes + grain_bytes - 1) / grain_bytes);
        int *st = calloc(units, sizeof *st);
        assert_non_null(st);
        /* The last unit may be partial: map only whole units, then the tail. */
        size_t whole = (size_t)(bytes / grain_bytes);
        tu_status_map(d, 0, grain_bytes, whole, 0, st);
        if (whole < units) {
            uint64_t run;
            int s;
            TU_OK(vmdk_block_status(d, whole * grain_bytes, bytes - whole * grain_bytes, 0,
                                    &run, &s));
            assert_int_equal(run, bytes - whole * grain_bytes);
            st[whole] = s;
        }
        for (size_t g = 0; g < units; g++) {
            int want_data = stored[g] != 0;
            if (want_data != (st[g] == VMDK_DATA))
                fail_msg("%s: grain %zu has status %d, expected %s", path, g, st[g],
                         want_data ? "data" : "hole/zero");
        }
        free(st);
    }
    free(buf);
    TU_OK(vmdk_close(d));
}

/* Craft a stream of cap sectors with mixed content and read it back. */
static void craft_and_verify(const struct craft *o, uint32_t seed)
{
    const char *p = tu_path("s.vmdk");
    unlink(p);
    uint64_t bytes = o->cap * 512;
    unsigned char *content = make_content(bytes, seed);
    struct crafted c;
    craft_stream(p, o, content, &c);
    assert_int_equal(tu_file_size(p) % 512, 0);
    verify_stream(p, content, bytes, (uint64_t)(o->grain ? o->grain : 128) * 512,
                  c.grain_sector);
    crafted_free(&c);
    free(content);
}

/* ---- valid layouts ----------------------------------------------------------- */

#define CAP_ALIGNED (48 * 128)          /* 3 MiB */
#define CAP_PARTIAL (48 * 128 + 37)     /* 3 MiB + 37 sectors */

static void test_vmware_footer_eos(void **state)
{
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END };
    craft_and_verify(&o, 1);
}

static void test_vmware_no_eos(void **state)
{
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END, .no_eos = 1 };
    craft_and_verify(&o, 2);
}

static void test_header_real_gd_at_end(void **state)
{
    /* GD after the grains, header already has the real offset, footer too. */
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END, .hdr_real_gd = 1 };
    craft_and_verify(&o, 3);
    /* ... and with no footer at all. */
    struct craft o2 = { .cap = CAP_ALIGNED, .layout = L_END, .hdr_real_gd = 1,
                        .no_footer = 1, .no_eos = 1 };
    craft_and_verify(&o2, 4);
}

static void test_no_markers_size_prefix(void **state)
{
    /* Flag 17 off: each GTE points at a 4-byte size followed by the data. */
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END, .no_markers = 1 };
    craft_and_verify(&o, 5);
    struct craft o2 = { .cap = CAP_PARTIAL, .layout = L_FRONT, .no_markers = 1 };
    craft_and_verify(&o2, 6);
}

static void test_partial_last_grain(void **state)
{
    /* Capacity not a multiple of the grain: last grain compressed whole ... */
    struct craft o = { .cap = CAP_PARTIAL, .layout = L_END };
    craft_and_verify(&o, 7);
    /* ... or only its valid bytes (open-vmdk). */
    struct craft o2 = { .cap = CAP_PARTIAL, .layout = L_END, .short_last = 1 };
    craft_and_verify(&o2, 8);
    /* A disk smaller than one grain. */
    struct craft o3 = { .cap = 77, .layout = L_END, .short_last = 1 };
    craft_and_verify(&o3, 9);
}

static void test_raw_deflate(void **state)
{
    struct craft o = { .cap = CAP_PARTIAL, .layout = L_END, .raw_deflate = 1 };
    craft_and_verify(&o, 10);
}

static void test_qemu_style_front(void **state)
{
    struct craft o = { .cap = CAP_PARTIAL, .layout = L_FRONT, .rgd = 1, .no_eos = 1 };
    craft_and_verify(&o, 11);
    struct craft o2 = { .cap = CAP_ALIGNED, .layout = L_FRONT };
    craft_and_verify(&o2, 12);
}

static void test_xen_gt_blob(void **state)
{
    struct craft o = { .cap = CAP_PARTIAL, .layout = L_XEN };
    craft_and_verify(&o, 13);
}

static void test_version1_and_progress_marker(void **state)
{
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END, .version = 1 };
    craft_and_verify(&o, 14);
    struct craft o2 = { .cap = CAP_ALIGNED, .layout = L_END, .progress_marker = 1 };
    craft_and_verify(&o2, 15);
}

static void test_small_grains_many_tables(void **state)
{
    /* 8 KiB grains, 128 entries per table (1 MiB per table): 6 tables, the
     * all-zero ones omitted (GD entry 0). */
    const char *p = tu_path("s.vmdk");
    struct craft o = { .cap = 6 * 2048 - 3, .grain = 16, .num_gtes = 128, .layout = L_END };
    uint64_t bytes = o.cap * 512;
    unsigned char *content = calloc(1, bytes);
    assert_non_null(content);
    tu_fill(content + 100, 5000, 100, 21);                 /* table 0 */
    tu_fill(content + 3 * MiB + 8192, 9000, 3 * MiB + 8192, 22); /* table 3 */
    tu_fill(content + bytes - 700, 700, bytes - 700, 23);  /* last, partial grain */
    struct crafted c;
    craft_stream(p, &o, content, &c);
    verify_stream(p, content, bytes, 8192, c.grain_sector);
    crafted_free(&c);
    free(content);
}

static void test_empty_stream(void **state)
{
    /* No grains at all: every table omitted, reads zeros, all holes. */
    const char *p = tu_path("s.vmdk");
    struct craft o = { .cap = CAP_PARTIAL, .layout = L_END };
    unsigned char *content = calloc(1, CAP_PARTIAL * 512);
    assert_non_null(content);
    struct crafted c;
    craft_stream(p, &o, content, &c);
    verify_stream(p, content, CAP_PARTIAL * 512, GRAIN_BYTES, c.grain_sector);
    crafted_free(&c);
    free(content);
}

/* ---- producers: qemu-img, python3-vmdkstream ------------------------------- */

static int have_cmd(const char *check)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s >/dev/null 2>&1", check);
    return system(cmd) == 0;
}

static void run_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run_cmd(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fail_msg("command failed (%d): %s", rc, cmd);
}

/* A raw reference file of bytes (mixed content) at name; returns content. */
static unsigned char *make_raw(const char *name, uint64_t bytes, uint32_t seed)
{
    unsigned char *content = make_content(bytes, seed);
    tu_write_all(tu_path(name), content, bytes);
    return content;
}

/* Expected allocation of a producer that skips all-zero grains. */
static uint64_t *nonzero_grains(const unsigned char *content, uint64_t bytes)
{
    uint64_t n = (bytes + GRAIN_BYTES - 1) / GRAIN_BYTES;
    uint64_t *s = calloc(n, sizeof *s);
    assert_non_null(s);
    for (uint64_t g = 0; g < n; g++) {
        uint64_t len = bytes - g * GRAIN_BYTES < GRAIN_BYTES ? bytes - g * GRAIN_BYTES
                                                             : GRAIN_BYTES;
        s[g] = !tu_is_zero(content + g * GRAIN_BYTES, len);
    }
    return s;
}

static void test_qemu_img_stream(void **state)
{
    if (!have_cmd("qemu-img --version")) {
        print_message("SKIP: qemu-img is not installed; qemu-img streams not tested\n");
        skip();
    }
    static const uint64_t sizes[] = { 3 * MiB + 37 * 512, 4 * MiB, 512, 40 * MiB + 512 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *content = make_raw("q.raw", sizes[i], 30 + (uint32_t)i);
        unlink(tu_path("q.vmdk"));
        run_cmd("qemu-img convert -f raw -O vmdk -o subformat=streamOptimized '%s' '%s'",
                tu_path("q.raw"), tu_path("q.vmdk"));
        uint64_t *stored = nonzero_grains(content, sizes[i]);
        verify_stream(tu_path("q.vmdk"), content, sizes[i], GRAIN_BYTES, stored);
        free(stored);
        free(content);
    }
}

static void test_vmdkstream(void **state)
{
    if (!have_cmd("/usr/bin/python3 -c 'import VMDKstream'")) {
        print_message("SKIP: /usr/bin/python3 with the VMDKstream module (python3-vmdkstream) "
                      "is not installed; its streams are not tested\n");
        skip();
    }
    /* Sizes in whole sectors: VMDKstream's capacity is rounded up to a
     * sector but its last grain holds only the file's bytes. */
    static const uint64_t sizes[] = { 3 * MiB + 37 * 512, 4 * MiB, 1024, 33 * MiB + 512 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *content = make_raw("p.raw", sizes[i], 40 + (uint32_t)i);
        unlink(tu_path("p.vmdk"));
        run_cmd("/usr/bin/python3 -c \"import VMDKstream; "
                "VMDKstream.convert_to_stream('%s', '%s')\"",
                tu_path("p.raw"), tu_path("p.vmdk"));
        /* VMDKstream stores a short final grain even when it is zero. */
        uint64_t *stored = nonzero_grains(content, sizes[i]);
        if (sizes[i] % GRAIN_BYTES)
            stored[sizes[i] / GRAIN_BYTES] = 1;
        verify_stream(tu_path("p.vmdk"), content, sizes[i], GRAIN_BYTES, stored);
        free(stored);
        free(content);
    }
}

/* ---- our writer ---------------------------------------------------------------- */

/* Write content as a stream with vmdk_stream_*: zero grains skipped. */
static void write_ours(const char *path, const unsigned char *content, uint64_t bytes)
{
    struct vmdk_create_params p;
    memset(&p, 0, sizeof p);
    p.type = VMDK_TYPE_STREAM_OPTIMIZED;
    p.capacity = bytes;
    char *desc;
    size_t dlen;
    const char *base = strrchr(path, '/') + 1;
    TU_OK(vmdk_stream_descriptor(base, &p, &desc, &dlen));
    struct vmdk_stream *w;
    TU_OK(vmdk_stream_create(path, desc, dlen, bytes, &w));
    free(desc);
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
    assert_non_null(c);
    size_t zcap = libdeflate_zlib_compress_bound(c, GRAIN_BYTES);
    unsigned char *z = malloc(zcap), *g = malloc(GRAIN_BYTES);
    assert_non_null(z);
    assert_non_null(g);
    for (uint64_t off = 0; off < bytes; off += GRAIN_BYTES) {
        uint64_t n = bytes - off < GRAIN_BYTES ? bytes - off : GRAIN_BYTES;
        if (tu_is_zero(content + off, n))
            continue;
        memset(g, 0, GRAIN_BYTES);
        memcpy(g, content + off, n);
        size_t zl = libdeflate_zlib_compress(c, g, GRAIN_BYTES, z, zcap);
        assert_true(zl > 0);
        TU_OK(vmdk_stream_add_grain(w, off / GRAIN_BYTES, z, zl));
    }
    TU_OK(vmdk_stream_finish(w));
    free(z);
    free(g);
    libdeflate_free_compressor(c);
}

static void test_our_writer_layout(void **state)
{
    const char *p = tu_path("w.vmdk");
    uint64_t bytes = 40 * MiB + 37 * 512;  /* two grain tables, partial last grain */
    unsigned char *content = make_content(bytes, 50);
    write_ours(p, content, bytes);
    uint64_t *stored = nonzero_grains(content, bytes);
    verify_stream(p, content, bytes, GRAIN_BYTES, stored);

    /* The layout VMware requires (reference 3.5): version 3, flags 0x30001,
     * GD_AT_END in the header, footer marker + footer + EOS as the last
     * three sectors, length a multiple of 512, markers with the LBA. */
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.version, 3);
    assert_int_equal(h.flags, 0x30001);
    assert_int_equal(h.compress, 1);
    assert_int_equal(h.grain, 128);
    assert_int_equal(h.num_gtes, 512);
    assert_true(h.gd == GD_AT_END);
    assert_int_equal(h.capacity, bytes / 512);
    uint64_t len = tu_file_size(p);
    assert_int_equal(len % 512, 0);
    unsigned char tail[1536];
    tu_pread(p, len - 1536, tail, sizeof tail);
    unsigned char zero[512] = {0};
    assert_memory_equal(tail + 1024, zero, 512);                 /* EOS */
    assert_int_equal(tu_get_u64(p, len - 1536), 1);               /* footer marker */
    assert_int_equal(tu_get_u32(p, len - 1536 + 8), 0);
    assert_int_equal(tu_get_u32(p, len - 1536 + 12), 3);
    assert_int_equal(tu_get_u32(p, len - 1024), TU_KDMV_MAGIC);  /* footer */
    uint64_t gd = tu_get_u64(p, len - 1024 + TU_H_GD);
    assert_true(gd > 0 && gd * 512 < len);
    assert_int_equal(tu_get_u32(p, len - 1024 + TU_H_FLAGS), 0x30001);
    /* The GD marker right before the GD, GT markers before each GT,
     * grain markers carrying their LBA. */
    assert_int_equal(tu_get_u32(p, (gd - 1) * 512 + 12), 2);
    uint64_t ngt = (bytes / 512 + 128 * 512 - 1) / (128 * 512);
    for (uint64_t t = 0; t < ngt; t++) {
        uint32_t gt = tu_get_u32(p, gd * 512 + 4 * t);
        assert_true(gt > 0);
        assert_int_equal(tu_get_u32(p, (uint64_t)(gt - 1) * 512 + 12), 1);
        for (uint32_t k = 0; k < 512; k++) {
            uint64_t g = t * 512 + k;
            uint32_t e = tu_get_u32(p, (uint64_t)gt * 512 + 4 * k);
            if (g * GRAIN_BYTES >= bytes) {
                assert_int_equal(e, 0);
                continue;
            }
            assert_int_equal(e != 0, stored[g] != 0);
            if (e)
                assert_int_equal(tu_get_u64(p, (uint64_t)e * 512), g * 128);
        }
    }
    free(stored);
    free(content);
}

static void test_our_writer_errors(void **state)
{
    const char *p = tu_path("w.vmdk");
    char *desc;
    size_t dlen;
    struct vmdk_create_params cp;
    memset(&cp, 0, sizeof cp);
    cp.type = VMDK_TYPE_STREAM_OPTIMIZED;
    cp.capacity = 4 * MiB;
    TU_OK(vmdk_stream_descriptor("w.vmdk", &cp, &desc, &dlen));
    struct vmdk_stream *w;
    TU_OK(vmdk_stream_create(p, desc, dlen, 4 * MiB, &w));
    unsigned char grain[GRAIN_BYTES];
    tu_fill(grain, sizeof grain, 0, 60);
    unsigned char z[GRAIN_BYTES + 1024];
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(1);
    assert_non_null(c);
    size_t zl = libdeflate_zlib_compress(c, grain, sizeof grain, z, sizeof z);
    assert_true(zl > 0);
    TU_OK(vmdk_stream_add_grain(w, 3, z, zl));
    /* Unfinished: the file exists but is not a disk yet. */
    vmdk_disk *d = NULL;
    int rc = vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d);
    if (rc == 0) {
        vmdk_close(d);
        fail_msg("an unfinished stream opened as a disk");
    }
    TU_MSG_HAS("w.vmdk");
    /* Out of order, repeated, past the capacity, empty. */
    TU_ERR(vmdk_stream_add_grain(w, 3, z, zl), VD_E_INVAL);
    TU_ERR(vmdk_stream_add_grain(w, 2, z, zl), VD_E_INVAL);
    TU_ERR(vmdk_stream_add_grain(w, 64, z, zl), VD_E_INVAL);
    TU_ERR(vmdk_stream_add_grain(w, 5, z, 0), VD_E_INVAL);
    TU_OK(vmdk_stream_add_grain(w, 63, z, zl));
    /* A second writer on the same path is refused, the file untouched. */
    struct vmdk_stream *w2 = NULL;
    TU_ERR(vmdk_stream_create(p, desc, dlen, 4 * MiB, &w2), VD_E_EXISTS);
    TU_OK(vmdk_stream_finish(w));
    unsigned char *content = calloc(1, 4 * MiB);
    assert_non_null(content);
    memcpy(content + 3 * GRAIN_BYTES, grain, GRAIN_BYTES);
    memcpy(content + 63 * GRAIN_BYTES, grain, GRAIN_BYTES);
    verify_stream(p, content, 4 * MiB, GRAIN_BYTES, NULL);
    /* abort removes the file. */
    const char *p2 = tu_path("w2.vmdk");
    TU_OK(vmdk_stream_create(p2, desc, dlen, 4 * MiB, &w));
    TU_OK(vmdk_stream_add_grain(w, 0, z, zl));
    vmdk_stream_abort(w);
    assert_false(tu_exists(p2));
    /* A descriptor that does not fit is refused and nothing is created. */
    char *big = malloc(64 * KiB);
    assert_non_null(big);
    memset(big, '#', 64 * KiB);
    rc = vmdk_stream_create(p2, big, 64 * KiB, 4 * MiB, &w);
    assert_true(rc < 0);
    assert_false(tu_exists(p2));
    free(big);
    free(content);
    free(desc);
    libdeflate_free_compressor(c);
}

static void test_create_stream(void **state)
{
    /* vmdk_create of a stream: an empty disk, VMware's layout. */
    const char *p = tu_path("e.vmdk");
    TU_OK(tu_create(p, VMDK_TYPE_STREAM_OPTIMIZED, 5 * MiB + 512, 0));
    unsigned char *content = calloc(1, 5 * MiB + 512);
    assert_non_null(content);
    uint64_t stored[81] = {0};
    verify_stream(p, content, 5 * MiB + 512, GRAIN_BYTES, stored);
    free(content);
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(p, &h);
    assert_int_equal(h.version, 3);
    /* The last sector is the EOS marker (ESXi needs it, reference 3.5). */
    unsigned char last[512], zero[512] = {0};
    tu_pread(p, tu_file_size(p) - 512, last, 512);
    assert_memory_equal(last, zero, 512);
}

/* ---- read-write opens ------------------------------------------------------------ */

/* Opened read-write and closed without a write, a stream is untouched;
 * one without grain markers is refused for writing with the reason. */
static void test_open_rw(void **state)
{
    const char *p = tu_path("s.vmdk");
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END };
    unsigned char *content = make_content(CAP_ALIGNED * 512, 70);
    struct crafted c;
    craft_stream(p, &o, content, &c);
    struct tu_dirsnap *snap = tu_dir_snapshot(tu_dir());
    static const unsigned flags[] = { 0, VMDK_OPEN_NOLOCK, VMDK_OPEN_SINGLE_LINK };
    for (size_t i = 0; i < 3; i++) {
        vmdk_disk *d = NULL;
        TU_OK(vmdk_open(p, flags[i], &d));
        TU_OK(vmdk_close(d));
    }
    tu_assert_dir_unchanged(snap, tu_dir());
    tu_dirsnap_free(snap);
    verify_stream(p, content, CAP_ALIGNED * 512, GRAIN_BYTES, c.grain_sector);
    const char *nm = tu_path("nm.vmdk");
    struct craft o2 = { .cap = CAP_ALIGNED, .layout = L_END, .hdr_real_gd = 1,
                        .no_markers = 1 };
    struct crafted c2;
    craft_stream(nm, &o2, content, &c2);
    vmdk_disk *d = NULL;
    vd_err_clear();
    int rc = vmdk_open(nm, 0, &d);
    if (rc == 0) {
        vmdk_close(d);
        fail_msg("a stream without grain markers opened read-write");
    }
    assert_int_equal(rc, -VD_E_UNSUPPORTED);
    TU_MSG_HAS("nm.vmdk");
    TU_MSG_HAS("markers");
    crafted_free(&c2);
    /* A child on top of a stream works and gets the writes. */
    const char *ch = tu_path("child.vmdk");
    TU_OK(vmdk_create_child(ch, p, VMDK_TYPE_MONOLITHIC_SPARSE));
    TU_OK(vmdk_open(ch, 0, &d));
    tu_write_pattern(d, 70000, 5000, 71);
    tu_fill(content + 70000, 5000, 70000, 71);
    unsigned char *buf = malloc(CAP_ALIGNED * 512);
    assert_non_null(buf);
    TU_OK(vmdk_pread(d, buf, CAP_ALIGNED * 512, 0));
    assert_memory_equal(buf, content, CAP_ALIGNED * 512);
    TU_OK(vmdk_close(d));
    free(buf);
    crafted_free(&c);
    free(content);
}

/* ---- concurrent readers ----------------------------------------------------- */

struct reader {
    vmdk_disk *d;
    const unsigned char *content;
    uint64_t bytes;
    uint64_t seed;
    int bad;          /* 1: error, 2: wrong data */
    char msg[256];
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    unsigned char *buf = malloc(200000);
    if (!buf) {
        r->bad = 1;
        return NULL;
    }
    uint64_t x = r->seed;
    for (int i = 0; i < 400 && !r->bad; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t len = 1 + (x >> 33) % 200000;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t off = (x >> 20) % (r->bytes - len + 1);
        if (vmdk_pread(r->d, buf, len, off) < 0) {
            r->bad = 1;
            snprintf(r->msg, sizeof r->msg, "read %llu at %llu: %s", (unsigned long long)len,
                     (unsigned long long)off, vd_err_msg());
        } else if (memcmp(buf, r->content + off, len) != 0) {
            r->bad = 2;
            snprintf(r->msg, sizeof r->msg, "read %llu at %llu returned wrong data",
                     (unsigned long long)len, (unsigned long long)off);
        }
    }
    free(buf);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    /* 8 KiB grains and 128-entry tables: 48 tables, more than the reader
     * caches, so tables and grains are evicted while other threads use
     * them. */
    const char *p = tu_path("s.vmdk");
    struct craft o = { .cap = 48 * 2048 - 5, .grain = 16, .num_gtes = 128, .layout = L_END };
    uint64_t bytes = o.cap * 512;
    unsigned char *content = calloc(1, bytes);
    assert_non_null(content);
    for (uint64_t g = 0; g * 8192 < bytes; g += 3) {
        uint64_t n = bytes - g * 8192 < 8192 ? bytes - g * 8192 : 8192;
        tu_fill(content + g * 8192, n, g * 8192, 100);
    }
    struct crafted c;
    craft_stream(p, &o, content, &c);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d));
    struct reader r[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].d = d;
        r[i].content = content;
        r[i].bytes = bytes;
        r[i].seed = 1000 + (uint64_t)i;
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        pthread_join(th[i], NULL);
    TU_OK(vmdk_close(d));
    for (int i = 0; i < 6; i++)
        if (r[i].bad)
            fail_msg("reader %d: %s", i, r[i].msg);
    crafted_free(&c);
    free(content);
}

/* ---- corrupt input ----------------------------------------------------------------- */

/* The file at p must fail cleanly: the open fails, or reading [off,
 * off+len) (and the whole disk) fails, with a negative code and a message
 * naming the file.  Reads that succeed must return the right bytes
 * (content), so a tolerated oddity never turns into wrong data. */
static void expect_fails(const char *p, const unsigned char *content, uint64_t off, size_t len,
                         const char *what)
{
    vmdk_disk *d = NULL;
    vd_err_clear();
    int rc = vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d);
    if (rc < 0) {
        const char *m = vd_err_msg();
        if (!m || !strstr(m, "s.vmdk"))
            fail_msg("%s: open failed but the message \"%s\" does not name the file", what,
                     m ? m : "(null)");
        return;
    }
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    vd_err_clear();
    rc = vmdk_pread(d, buf, len, off);
    if (rc == 0) {
        if (content && memcmp(buf, content + off, len) != 0)
            fail_msg("%s: the read returned wrong data instead of an error", what);
        vmdk_close(d);
        free(buf);
        fail_msg("%s: open and read of %zu bytes at %llu succeeded", what, len,
                 (unsigned long long)off);
    }
    if (rc != -VD_E_CORRUPT && rc != -VD_E_IO)
        fail_msg("%s: read returned %d (%s), expected VD_E_CORRUPT: %s", what, rc,
                 vd_err_name(-rc), vd_err_msg());
    const char *m = vd_err_msg();
    if (!m || !strstr(m, "s.vmdk"))
        fail_msg("%s: message \"%s\" does not name the file", what, m ? m : "(null)");
    /* Block status over the whole disk must not crash (it may fail). */
    uint64_t cap = vmdk_capacity(d), pos = 0;
    while (pos < cap) {
        uint64_t run = 0;
        int st;
        if (vmdk_block_status(d, pos, cap - pos, 0, &run, &st) < 0)
            break;
        assert_true(run >= 1 && run <= cap - pos);
        pos += run;
    }
    free(buf);
    vmdk_close(d);
}

/* A VMware-style stream s.vmdk of CAP_ALIGNED sectors with data in grain 0
 * (random-ish) and grain 5 and 10; c gets the offsets. */
static unsigned char *corrupt_base(struct crafted *c, enum layout layout)
{
    uint64_t bytes = CAP_ALIGNED * 512;
    unsigned char *content = calloc(1, bytes);
    assert_non_null(content);
    tu_fill(content, GRAIN_BYTES, 0, 80);
    tu_fill(content + 5 * GRAIN_BYTES, GRAIN_BYTES, 5 * GRAIN_BYTES, 81);
    tu_fill(content + 10 * GRAIN_BYTES + 300, 3000, 10 * GRAIN_BYTES + 300, 82);
    struct craft o = { .cap = CAP_ALIGNED, .layout = layout };
    craft_stream(tu_path("s.vmdk"), &o, content, c);
    return content;
}

static void reset_dir(void)
{
    tu_teardown(NULL);
    assert_int_equal(tu_setup(NULL), 0);
}

static void test_bad_marker_sizes(void **state)
{
    static const uint32_t bad[] = { 0, 0xffffffffu, 0x80000000u, 2 * GRAIN_BYTES + 2048 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        reset_dir();
        struct crafted c;
        unsigned char *content = corrupt_base(&c, L_END);
        const char *p = tu_path("s.vmdk");
        tu_put_u32(p, c.grain_sector[5] * 512 + 8, bad[i]);
        char what[64];
        snprintf(what, sizeof what, "grain marker size %u", bad[i]);
        expect_fails(p, content, 5 * GRAIN_BYTES, 4096, what);
        crafted_free(&c);
        free(content);
    }
}

static void test_truncated_grain(void **state)
{
    /* GD at the front: the file cut in the middle of the last grain's data. */
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_FRONT);
    const char *p = tu_path("s.vmdk");
    uint64_t cut = c.grain_sector[10] * 512 + 12 + c.zlen[10] / 2;
    tu_truncate(p, cut);
    expect_fails(p, content, 10 * GRAIN_BYTES, GRAIN_BYTES, "grain cut in the middle");
    /* The grains before it still read. */
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d));
    unsigned char *buf = malloc(6 * GRAIN_BYTES);
    assert_non_null(buf);
    TU_OK(vmdk_pread(d, buf, 6 * GRAIN_BYTES, 0));
    assert_memory_equal(buf, content, 6 * GRAIN_BYTES);
    TU_OK(vmdk_close(d));
    /* Cut inside the 12-byte marker itself. */
    tu_truncate(p, c.grain_sector[10] * 512 + 6);
    expect_fails(p, content, 10 * GRAIN_BYTES, GRAIN_BYTES, "grain marker cut");
    free(buf);
    crafted_free(&c);
    free(content);

    /* GD at the end: a cut anywhere loses the footer; the open says so. */
    reset_dir();
    content = corrupt_base(&c, L_END);
    p = tu_path("s.vmdk");
    tu_truncate(p, c.grain_sector[5] * 512 + 12 + c.zlen[5] / 2);
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "stream cut mid-grain");
    crafted_free(&c);
    free(content);
}

static void test_lying_compressed_length(void **state)
{
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    uint64_t m = c.grain_sector[5] * 512;
    uint32_t real = (uint32_t)c.zlen[5];
    /* Smaller than needed: the zlib stream is cut. */
    static const uint32_t smaller[] = { 1, 2, 100, 0 };
    for (size_t i = 0; i < sizeof smaller / sizeof smaller[0]; i++) {
        uint32_t v = smaller[i] ? smaller[i] : real - 4;   /* 0: just the Adler-32 missing */
        tu_put_u32(p, m + 8, v);
        char what[64];
        snprintf(what, sizeof what, "grain size %u < %u", v, real);
        expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, what);
    }
    /* Larger than the file. */
    uint64_t len = tu_file_size(p);
    tu_put_u32(p, m + 8, (uint32_t)(len - m));
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "grain size past end of file");
    /* Larger than the data but inside the file: the zlib stream ends first.
     * Either an error or the right data is acceptable, never wrong data. */
    tu_put_u32(p, m + 8, real + 200);
    vmdk_disk *d;
    TU_OK(vmdk_open(p, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d));
    unsigned char *buf = malloc(GRAIN_BYTES);
    assert_non_null(buf);
    int rc = vmdk_pread(d, buf, GRAIN_BYTES, 5 * GRAIN_BYTES);
    if (rc == 0)
        assert_memory_equal(buf, content + 5 * GRAIN_BYTES, GRAIN_BYTES);
    else
        TU_MSG_HAS("s.vmdk");
    vmdk_close(d);
    free(buf);
    crafted_free(&c);
    free(content);
}

static void test_marker_lba_mismatch(void **state)
{
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    static const uint64_t lbas[] = { 6 * 128, 5 * 128 + 1, 0, UINT64_MAX };
    for (size_t i = 0; i < sizeof lbas / sizeof lbas[0]; i++) {
        tu_put_u64(p, c.grain_sector[5] * 512, lbas[i]);
        expect_fails(p, content, 5 * GRAIN_BYTES, 512, "grain marker LBA");
    }
    crafted_free(&c);
    free(content);
}

static void test_gd_at_end_no_footer(void **state)
{
    /* Header says GD_AT_END, but the file has no footer. */
    uint64_t bytes = CAP_ALIGNED * 512;
    unsigned char *content = make_content(bytes, 90);
    struct craft o = { .cap = CAP_ALIGNED, .layout = L_END, .no_footer = 1 };
    struct crafted c;
    const char *p = tu_path("s.vmdk");
    craft_stream(p, &o, content, &c);
    expect_fails(p, content, 0, 4096, "GD_AT_END without a footer");
    crafted_free(&c);
    /* ... nor an EOS, and so short that no footer can fit. */
    reset_dir();
    p = tu_path("s.vmdk");
    unsigned char *z = calloc(1, bytes);
    assert_non_null(z);
    struct craft o2 = { .cap = CAP_ALIGNED, .layout = L_END, .no_footer = 1, .no_eos = 1 };
    craft_stream(p, &o2, z, &c);
    tu_truncate(p, 1024);
    expect_fails(p, z, 0, 4096, "GD_AT_END in a 2-sector file");
    crafted_free(&c);
    free(z);
    free(content);
}

static void test_footer_bad(void **state)
{
    static const uint64_t gds[] = { GD_AT_END, 0, 1ull << 40, 0 /* EOF */, 1 };
    for (size_t i = 0; i < sizeof gds / sizeof gds[0]; i++) {
        reset_dir();
        struct crafted c;
        unsigned char *content = corrupt_base(&c, L_END);
        const char *p = tu_path("s.vmdk");
        uint64_t gd = gds[i];
        if (i == 3)
            gd = tu_file_size(p) / 512;              /* exactly at EOF */
        tu_put_u64(p, c.footer_off + TU_H_GD, gd);
        char what[64];
        snprintf(what, sizeof what, "footer gdOffset %llu", (unsigned long long)gd);
        expect_fails(p, content, 0, GRAIN_BYTES, what);
        crafted_free(&c);
        free(content);
    }
    /* A footer with a damaged magic: no footer, so GD_AT_END fails. */
    reset_dir();
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    tu_put_u32(p, c.footer_off, 0x12345678);
    expect_fails(p, content, 0, GRAIN_BYTES, "footer magic");
    /* A footer whose grains are not compressed. */
    tu_put_u32(p, c.footer_off, TU_KDMV_MAGIC);
    tu_put_u32(p, c.footer_off + TU_H_FLAGS, 0x3);
    expect_fails(p, content, 0, GRAIN_BYTES, "footer flags uncompressed");
    /* A footer claiming a huge capacity: the GD would run past the end. */
    tu_put_u32(p, c.footer_off + TU_H_FLAGS, 0x30001);
    tu_put_u64(p, c.footer_off + TU_H_CAPACITY, 1ull << 40);
    expect_fails(p, content, 0, GRAIN_BYTES, "footer capacity");
    /* A footer with a bad grain size. */
    tu_put_u64(p, c.footer_off + TU_H_CAPACITY, CAP_ALIGNED);
    tu_put_u64(p, c.footer_off + TU_H_GRAIN, 100);
    expect_fails(p, content, 0, GRAIN_BYTES, "footer grain size");
    crafted_free(&c);
    free(content);
}

static void test_gd_gt_entries_past_eof(void **state)
{
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    uint64_t len = tu_file_size(p);
    uint32_t gt = tu_get_u32(p, c.gd_sector * 512);
    /* A GT entry past the end of the file. */
    static const uint32_t bad[] = { 0, 0xffffffffu, 1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t v = bad[i] == 0 ? (uint32_t)(len / 512) : bad[i] == 1
                   ? (uint32_t)(len / 512 - 1) /* the EOS sector: size 0 */ : bad[i];
        tu_put_u32(p, (uint64_t)gt * 512 + 4 * 5, v);
        char what[64];
        snprintf(what, sizeof what, "GT entry %u (file has %llu sectors)", v,
                 (unsigned long long)(len / 512));
        expect_fails(p, content, 5 * GRAIN_BYTES, 512, what);
    }
    /* A GT entry pointing at the GT marker (a metadata marker, size 0). */
    tu_put_u32(p, (uint64_t)gt * 512 + 4 * 5, gt - 1);
    expect_fails(p, content, 5 * GRAIN_BYTES, 512, "GT entry at a GT marker");
    crafted_free(&c);
    free(content);
    /* A GD entry past the end of the file. */
    reset_dir();
    content = corrupt_base(&c, L_END);
    p = tu_path("s.vmdk");
    len = tu_file_size(p);
    tu_put_u32(p, c.gd_sector * 512, (uint32_t)(len / 512 + 10));
    expect_fails(p, content, 0, 512, "GD entry past EOF");
    tu_put_u32(p, c.gd_sector * 512, (uint32_t)(len / 512 - 2));  /* GT would straddle EOF */
    expect_fails(p, content, 0, 512, "GD entry straddling EOF");
    crafted_free(&c);
    free(content);
}

static void test_garbage_compressed(void **state)
{
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    uint64_t data = c.grain_sector[5] * 512 + 12;
    size_t n = c.zlen[5];
    unsigned char *g = malloc(n);
    assert_non_null(g);
    /* Random bytes ... */
    tu_fill(g, n, 0, 99);
    tu_pwrite(p, data, g, n);
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "random compressed bytes");
    /* ... a valid zlib header followed by garbage ... */
    g[0] = 0x78;
    g[1] = 0x9c;
    tu_pwrite(p, data, g, n);
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "zlib header + garbage");
    /* ... a valid stream of the wrong length (it inflates to 100 bytes) ... */
    struct libdeflate_compressor *cz = libdeflate_alloc_compressor(6);
    assert_non_null(cz);
    unsigned char small[100];
    memset(small, 'x', sizeof small);
    size_t zl = libdeflate_zlib_compress(cz, small, sizeof small, g, n);
    assert_true(zl > 0 && zl < n);
    tu_pwrite(p, data, g, zl);
    tu_put_u32(p, data - 4, (uint32_t)zl);
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "short grain");
    /* ... and one that inflates past the grain. */
    unsigned char *huge = calloc(1, 2 * GRAIN_BYTES);
    assert_non_null(huge);
    zl = libdeflate_zlib_compress(cz, huge, 2 * GRAIN_BYTES, g, n);
    assert_true(zl > 0 && zl < n);
    tu_pwrite(p, data, g, zl);
    tu_put_u32(p, data - 4, (uint32_t)zl);
    expect_fails(p, content, 5 * GRAIN_BYTES, GRAIN_BYTES, "grain inflating past 64 KiB");
    free(huge);
    libdeflate_free_compressor(cz);
    /* An Adler-32 mismatch: one bit of the data flipped in a valid grain. */
    crafted_free(&c);
    free(content);
    reset_dir();
    content = corrupt_base(&c, L_END);
    p = tu_path("s.vmdk");
    data = c.grain_sector[0] * 512 + 12;
    uint8_t last = 0;
    tu_pread(p, data + c.zlen[0] - 1, &last, 1);
    tu_put_u8(p, data + c.zlen[0] - 1, last ^ 0x40);
    expect_fails(p, content, 0, GRAIN_BYTES, "Adler-32 mismatch");
    free(g);
    crafted_free(&c);
    free(content);
}

static void test_header_damage(void **state)
{
    /* Flags 17 without 16, and a short file. */
    struct crafted c;
    unsigned char *content = corrupt_base(&c, L_END);
    const char *p = tu_path("s.vmdk");
    tu_put_u32(p, TU_H_FLAGS, 0x20001);
    tu_put_u32(p, c.footer_off + TU_H_FLAGS, 0x20001);
    expect_fails(p, content, 0, 512, "markers without compression");
    tu_truncate(p, 700);
    expect_fails(p, content, 0, 512, "700-byte stream");
    crafted_free(&c);
    free(content);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
    const struct CMUnitTest tests[] = {
        T(test_vmware_footer_eos),
        T(test_vmware_no_eos),
        T(test_header_real_gd_at_end),
        T(test_no_markers_size_prefix),
        T(test_partial_last_grain),
        T(test_raw_deflate),
        T(test_qemu_style_front),
        T(test_xen_gt_blob),
        T(test_version1_and_progress_marker),
        T(test_small_grains_many_tables),
        T(test_empty_stream),
        T(test_qemu_img_stream),
        T(test_vmdkstream),
        T(test_our_writer_layout),
        T(test_our_writer_errors),
        T(test_create_stream),
        T(test_open_rw),
        T(test_concurrent_readers),
        T(test_bad_marker_sizes),
        T(test_truncated_grain),
        T(test_lying_compressed_length),
        T(test_marker_lba_mismatch),
        T(test_gd_at_end_no_footer),
        T(test_footer_bad),
        T(test_gd_gt_entries_past_eof),
        T(test_garbage_compressed),
        T(test_header_damage),
    };
    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
