/* cmd_data.c - `vddk dump`, `vddk fill` and `vddk checksum`: the content
 * of a byte range of a disk. */
#include "vddk.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20) /* bytes per engine call */

static int run_dump(int argc, char **argv);
static int run_fill(int argc, char **argv);
static int run_checksum(int argc, char **argv);

const struct vddk_cmd vddk_cmd_dump = {
    .name = "dump",
    .summary = "hex dump a range of a disk",
    .help =
        "usage: vddk dump [-o OFFSET] [-l LENGTH] DISK\n"
        "\n"
        "Print the content of DISK as hex and text in the layout of\n"
        "`hexdump -C`: 16 bytes a row with their disk offset, and a single `*`\n"
        "row standing for rows that repeat the one above.  The last row is the\n"
        "offset just past the range.  The disk is opened read-only.\n"
        "\n"
        "Options:\n"
        "  -o, --offset OFFSET  where to start (default 0)\n"
        "  -l, --length LENGTH  how much to show (default: to the end of the disk)\n"
        "  -h, --help           show this help\n"
        "OFFSET and LENGTH are bytes (decimal or 0x hex) or take a K, M, G or T\n"
        "suffix (powers of 1024).\n",
    .run = run_dump,
};

const struct vddk_cmd vddk_cmd_fill = {
    .name = "fill",
    .summary = "write a byte pattern or seeded random data into a range",
    .help =
        "usage: vddk fill [-o OFFSET] [-l LENGTH] [-p BYTE | --random [--seed N]] DISK\n"
        "\n"
        "Write LENGTH bytes at OFFSET of DISK (to its top link when it has a\n"
        "parent).  The data is either one repeated byte or pseudo-random data.\n"
        "\n"
        "Options:\n"
        "  -o, --offset OFFSET  where to start (default 0)\n"
        "  -l, --length LENGTH  how much to write (default: to the end of the disk)\n"
        "  -p, --pattern BYTE   the byte to repeat, 0-255 or 0x00-0xff (default 0xcd)\n"
        "      --random         write pseudo-random data instead\n"
        "      --seed N         seed of the random data (default 0)\n"
        "  -h, --help           show this help\n"
        "OFFSET and LENGTH are bytes (decimal or 0x hex) or take a K, M, G or T\n"
        "suffix (powers of 1024).\n"
        "\n"
        "Random data is deterministic: byte X of the disk is byte X mod 8 (least\n"
        "significant first) of the (X div 8)-th output of splitmix64 started from\n"
        "the seed, counting from 0.  So any range gets the same bytes that a fill\n"
        "of the whole disk with the same seed would put there.\n",
    .run = run_fill,
};

const struct vddk_cmd vddk_cmd_checksum = {
    .name = "checksum",
    .summary = "print the SHA-256 of a range of a disk",
    .help =
        "usage: vddk checksum [-o OFFSET] [-l LENGTH] DISK\n"
        "\n"
        "Read the range of DISK (through its whole chain) and print its SHA-256\n"
        "as `sha256sum` does: the hex digest, two spaces, DISK.  The result equals\n"
        "`sha256sum` of the same bytes in a raw image.  The disk is opened\n"
        "read-only.\n"
        "\n"
        "Options:\n"
        "  -o, --offset OFFSET  where to start (default 0)\n"
        "  -l, --length LENGTH  how much to hash (default: to the end of the disk)\n"
        "  -h, --help           show this help\n"
        "OFFSET and LENGTH are bytes (decimal or 0x hex) or take a K, M, G or T\n"
        "suffix (powers of 1024).\n",
    .run = run_checksum,
};

/* ---- shared option handling ------------------------------------------ */

enum { OPT_OFFSET = 1, OPT_LENGTH, OPT_PATTERN, OPT_RANDOM, OPT_SEED };

struct range_args {
    const char *path;
    uint64_t off, len;
    int have_len;
    int have_pattern, random, have_seed;
    uint64_t pattern, seed;
};

/* Parse [-o OFFSET] [-l LENGTH] DISK plus, when opts allow them, the fill
 * options.  Returns -1 when the caller should return *ret. */
static int parse_range_args(int argc, char **argv, const struct vddk_cmd *cmd,
                            const struct vddk_opt *opts, struct range_args *a, int *ret)
{
    struct vddk_optstate st;
    int o;

    memset(a, 0, sizeof *a);
    *ret = VDDK_EXIT_OK;
    if (vddk_opt_init(&st, argc, argv) < 0) {
        *ret = VDDK_EXIT_FAIL;
        return -1;
    }
    while (*ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(&st);
            *ret = vddk_print_help(cmd, stdout);
            return -1;
        case VDDK_OPT_ERROR:
            *ret = VDDK_EXIT_USAGE;
            break;
        case OPT_OFFSET:
            if (vddk_parse_size(st.arg, &a->off) < 0)
                *ret = vddk_usage_error(cmd, "invalid offset '%s'", st.arg);
            break;
        case OPT_LENGTH:
            if (vddk_parse_size(st.arg, &a->len) < 0)
                *ret = vddk_usage_error(cmd, "invalid length '%s'", st.arg);
            a->have_len = 1;
            break;
        case OPT_PATTERN:
            if (vddk_parse_uint(st.arg, 255, &a->pattern) < 0)
                *ret = vddk_usage_error(cmd, "invalid pattern byte '%s' (0-255 or 0x00-0xff)",
                                        st.arg);
            a->have_pattern = 1;
            break;
        case OPT_RANDOM:
            a->random = 1;
            break;
        case OPT_SEED:
            if (vddk_parse_uint(st.arg, UINT64_MAX, &a->seed) < 0)
                *ret = vddk_usage_error(cmd, "invalid seed '%s'", st.arg);
            a->have_seed = 1;
            break;
        }
    }
    if (*ret == VDDK_EXIT_OK && a->have_pattern && a->random)
        *ret = vddk_usage_error(cmd, "-p and --random exclude each other");
    if (*ret == VDDK_EXIT_OK && a->have_seed && !a->random)
        *ret = vddk_usage_error(cmd, "--seed needs --random");
    if (*ret == VDDK_EXIT_OK && st.noperands != 1) {
        if (st.noperands == 0)
            *ret = vddk_usage_error(cmd, "missing DISK");
        else
            *ret = vddk_usage_error(cmd, "expected one DISK, got %d arguments", st.noperands);
    }
    if (*ret == VDDK_EXIT_OK)
        a->path = st.operands[0];
    vddk_opt_free(&st);
    return *ret == VDDK_EXIT_OK ? 0 : -1;
}

/* ---- dump -------------------------------------------------------------- */

struct dumper {
    uint64_t pos;      /* disk offset of row[0] */
    uint8_t row[16];
    size_t fill;       /* bytes in row */
    uint8_t prev[16];  /* the last full row */
    int have_prev;
    int starred;       /* a `*` stands for the rows since prev was printed */
};

static void dump_line(const struct dumper *dp)
{
    printf("%08llx ", (unsigned long long)dp->pos);
    for (size_t i = 0; i < 16; i++) {
        if (i % 8 == 0)
            putchar(' ');
        if (i < dp->fill)
            printf("%02x ", dp->row[i]);
        else
            fputs("   ", stdout);
    }
    fputs(" |", stdout);
    for (size_t i = 0; i < dp->fill; i++)
        putchar(dp->row[i] >= 0x20 && dp->row[i] < 0x7f ? dp->row[i] : '.');
    fputs("|\n", stdout);
}

static void dump_row(struct dumper *dp)
{
    if (dp->have_prev && memcmp(dp->row, dp->prev, 16) == 0) {
        if (!dp->starred)
            puts("*");
        dp->starred = 1;
    } else {
        dump_line(dp);
        memcpy(dp->prev, dp->row, 16);
        dp->have_prev = 1;
        dp->starred = 0;
    }
    dp->pos += 16;
    dp->fill = 0;
}

static void dump_bytes(struct dumper *dp, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t k = 16 - dp->fill < n ? 16 - dp->fill : n;
        memcpy(dp->row + dp->fill, p, k);
        dp->fill += k;
        p += k;
        n -= k;
        if (dp->fill == 16)
            dump_row(dp);
    }
}

/* n zero bytes without touching each row: after one full zero row, every
 * further whole zero row is a repeat. */
static void dump_zeros(struct dumper *dp, uint64_t n)
{
    static const uint8_t zeros[16];
    if (dp->fill > 0) {
        size_t k = 16 - dp->fill < n ? 16 - dp->fill : (size_t)n;
        dump_bytes(dp, zeros, k);
        n -= k;
    }
    if (n >= 16) {
        dump_bytes(dp, zeros, 16);
        n -= 16;
    }
    if (n >= 16) {
        if (!dp->starred)
            puts("*");
        dp->starred = 1;
        dp->pos += n / 16 * 16;
        n %= 16;
    }
    dump_bytes(dp, zeros, (size_t)n);
}

static void dump_finish(struct dumper *dp)
{
    if (dp->fill > 0) {
        dump_line(dp);
        dp->pos += dp->fill;
        dp->fill = 0;
    }
    printf("%08llx\n", (unsigned long long)dp->pos);
}

static int run_dump(int argc, char **argv)
{
    static const struct vddk_opt opts[] = {
        { 'o', "offset", 1, OPT_OFFSET },
        { 'l', "length", 1, OPT_LENGTH },
        { 0, NULL, 0, 0 },
    };
    struct range_args a;
    int ret;
    if (parse_range_args(argc, argv, &vddk_cmd_dump, opts, &a, &ret) < 0)
        return ret;

    vmdk_disk *d;
    if (vddk_open(a.path, VMDK_OPEN_RDONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    ret = vddk_resolve_range(a.path, vmdk_capacity(d), a.off, a.have_len, &a.len);
    uint8_t *buf = NULL;
    if (ret == VDDK_EXIT_OK && (buf = malloc(CHUNK)) == NULL)
        ret = vddk_fail("out of memory");

    struct dumper dp;
    memset(&dp, 0, sizeof dp);
    dp.pos = a.off;
    uint64_t off = a.off, end = a.off + a.len;
    while (ret == VDDK_EXIT_OK && off < end) {
        uint64_t run = 0;
        int status = -1;
        vd_err_clear();
        int rc = vmdk_block_status(d, off, end - off, 0, &run, &status);
        if (rc < 0) {
            ret = vddk_engine_error(rc, a.path);
            break;
        }
        if (run == 0 || run > end - off) {
            ret = vddk_fail("%s: block status at offset %llu returned an invalid run "
                            "length %llu", a.path, (unsigned long long)off,
                            (unsigned long long)run);
            break;
        }
        if (status == VMDK_ZERO || status == VMDK_HOLE) {
            dump_zeros(&dp, run);
            off += run;
            continue;
        }
        while (run > 0) {
            size_t n = run < CHUNK ? (size_t)run : CHUNK;
            vd_err_clear();
            rc = vmdk_pread(d, buf, n, off);
            if (rc < 0) {
                ret = vddk_engine_error(rc, a.path);
                break;
            }
            dump_bytes(&dp, buf, n);
            off += n;
            run -= n;
        }
    }
    if (ret == VDDK_EXIT_OK && a.len > 0)
        dump_finish(&dp);
    free(buf);
    if (vddk_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    return ret;
}

/* ---- fill -------------------------------------------------------------- */

/* Output number idx (from 0) of splitmix64 seeded with seed: the state
 * after idx + 1 increments of the golden-ratio gamma, mixed. */
static uint64_t splitmix64_at(uint64_t seed, uint64_t idx)
{
    uint64_t z = seed + (idx + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The random bytes of disk offsets [pos, pos + n). */
static void random_bytes(uint64_t seed, uint64_t pos, uint8_t *buf, size_t n)
{
    uint64_t word = splitmix64_at(seed, pos / 8);
    for (size_t i = 0; i < n; i++, pos++) {
        if (pos % 8 == 0)
            word = splitmix64_at(seed, pos / 8);
        buf[i] = (uint8_t)(word >> (8 * (pos % 8)));
    }
}

static int run_fill(int argc, char **argv)
{
    static const struct vddk_opt opts[] = {
        { 'o', "offset", 1, OPT_OFFSET },
        { 'l', "length", 1, OPT_LENGTH },
        { 'p', "pattern", 1, OPT_PATTERN },
        { 0, "random", 0, OPT_RANDOM },
        { 0, "seed", 1, OPT_SEED },
        { 0, NULL, 0, 0 },
    };
    struct range_args a;
    int ret;
    if (parse_range_args(argc, argv, &vddk_cmd_fill, opts, &a, &ret) < 0)
        return ret;
    if (!a.have_pattern)
        a.pattern = 0xcd;

    vmdk_disk *d;
    if (vddk_open(a.path, 0, &d) != 0)
        return VDDK_EXIT_FAIL;
    ret = vddk_resolve_range(a.path, vmdk_capacity(d), a.off, a.have_len, &a.len);
    uint8_t *buf = NULL;
    if (ret == VDDK_EXIT_OK && (buf = malloc(CHUNK)) == NULL)
        ret = vddk_fail("out of memory");
    if (buf != NULL && !a.random)
        memset(buf, (int)a.pattern, CHUNK);

    uint64_t off = a.off, end = a.off + a.len;
    while (ret == VDDK_EXIT_OK && off < end) {
        /* Chunks end on CHUNK boundaries of the disk so that unaligned
         * starts cost one short write, not one per chunk. */
        uint64_t lim = (off / CHUNK + 1) * CHUNK;
        size_t n = (size_t)((lim < end ? lim : end) - off);
        if (a.random)
            random_bytes(a.seed, off, buf, n);
        vd_err_clear();
        int rc = vmdk_pwrite(d, buf, n, off);
        if (rc < 0)
            ret = vddk_engine_error(rc, a.path);
        off += n;
    }
    free(buf);
    if (vddk_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    if (ret == VDDK_EXIT_OK) {
        char h[VDDK_HUMAN_LEN];
        printf("wrote %llu bytes (%s) at offset %llu of %s: ", (unsigned long long)a.len,
               vddk_human(a.len, h), (unsigned long long)a.off, a.path);
        if (a.random)
            printf("random data, seed %llu\n", (unsigned long long)a.seed);
        else
            printf("pattern 0x%02x\n", (unsigned)a.pattern);
    }
    return ret;
}

/* ---- checksum ---------------------------------------------------------- */

static int run_checksum(int argc, char **argv)
{
    static const struct vddk_opt opts[] = {
        { 'o', "offset", 1, OPT_OFFSET },
        { 'l', "length", 1, OPT_LENGTH },
        { 0, NULL, 0, 0 },
    };
    struct range_args a;
    int ret;
    if (parse_range_args(argc, argv, &vddk_cmd_checksum, opts, &a, &ret) < 0)
        return ret;

    vmdk_disk *d;
    if (vddk_open(a.path, VMDK_OPEN_RDONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    ret = vddk_resolve_range(a.path, vmdk_capacity(d), a.off, a.have_len, &a.len);
    uint8_t *buf = NULL;
    if (ret == VDDK_EXIT_OK && (buf = malloc(CHUNK)) == NULL)
        ret = vddk_fail("out of memory");

    struct sha256 s;
    sha256_init(&s);
    uint64_t off = a.off, end = a.off + a.len;
    while (ret == VDDK_EXIT_OK && off < end) {
        size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
        vd_err_clear();
        int rc = vmdk_pread(d, buf, n, off);
        if (rc < 0) {
            ret = vddk_engine_error(rc, a.path);
            break;
        }
        sha256_update(&s, buf, n);
        off += n;
    }
    free(buf);
    if (vddk_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    if (ret == VDDK_EXIT_OK) {
        uint8_t md[SHA256_DIGEST_LEN];
        sha256_final(&s, md);
        for (int i = 0; i < SHA256_DIGEST_LEN; i++)
            printf("%02x", md[i]);
        printf("  %s\n", a.path);
    }
    return ret;
}
