/* cmd_data.c - `vddk dump`, `vddk fill`, `vddk checksum` and
 * `vddk compare`: the content of a byte range of a disk, through the
 * byte-addressed API of vddk/disk.h, with VixDiskLib_QueryAllocatedBlocks
 * to skip what holds no data. */
#include "vddk.h"
#include "sha256.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20) /* bytes per library call */

static int run_dump(int argc, char **argv);
static int run_fill(int argc, char **argv);
static int run_checksum(int argc, char **argv);
static int run_compare(int argc, char **argv);

#define RANGE_HELP \
    "OFFSET, LENGTH and SIZE are bytes (decimal or 0x hex) or take a K, M, G\n" \
    "or T suffix (powers of 1024).\n"

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
        RANGE_HELP,
    .run = run_dump,
};

const struct vddk_cmd vddk_cmd_fill = {
    .name = "fill",
    .summary = "write a byte pattern or seeded random data into a range",
    .help =
        "usage: vddk fill [-o OFFSET] [-l LENGTH] [-p BYTE | --random [--seed N]]\n"
        "                 [--progress | -q] DISK\n"
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
        VDDK_PROGRESS_HELP
        "  -h, --help           show this help\n"
        RANGE_HELP
        "\n"
        "Random data is deterministic: byte X of the disk is byte X mod 8 (least\n"
        "significant first) of the (X div 8)-th output of splitmix64 started from\n"
        "the seed, counting from 0.  So any range gets the same bytes that a fill\n"
        "of the whole disk with the same seed would put there.\n",
    .run = run_fill,
};

const struct vddk_cmd vddk_cmd_checksum = {
    .name = "checksum",
    .summary = "print the SHA-256 of a range of a disk, or of each block",
    .help =
        "usage: vddk checksum [-o OFFSET] [-l LENGTH] [-b SIZE] [--json]\n"
        "                     [--progress | -q] DISK\n"
        "\n"
        "Read the range of DISK (through its whole chain) and print its SHA-256\n"
        "as `sha256sum` does: the hex digest, two spaces, DISK.  The result equals\n"
        "`sha256sum` of the same bytes in a raw image.  With -b, first one line\n"
        "per block of SIZE bytes (the last one may be shorter), the digest, two\n"
        "spaces and DISK@OFFSET+LENGTH, then the line of the whole range.  The\n"
        "disk is opened read-only.\n"
        "\n"
        "Options:\n"
        "  -o, --offset OFFSET    where to start (default 0)\n"
        "  -l, --length LENGTH    how much to hash (default: to the end of the disk)\n"
        "  -b, --block-size SIZE  also hash each block of SIZE bytes\n"
        "      --json             print a JSON object (see vddk(1))\n"
        VDDK_PROGRESS_HELP
        "  -h, --help             show this help\n"
        RANGE_HELP,
    .run = run_checksum,
};

const struct vddk_cmd vddk_cmd_compare = {
    .name = "compare",
    .summary = "compare the content of two disks of any types",
    .help =
        "usage: vddk compare [-s] [--json] [--progress | -q] DISK1 DISK2\n"
        "\n"
        "Compare what DISK1 and DISK2 read (each through its whole chain; the\n"
        "types may differ) and print either that they are identical or the\n"
        "first offset at which they differ.  When the capacities differ, the\n"
        "part of the larger disk past the end of the smaller one must read as\n"
        "zeros for the disks to be identical, unless -s is given.  Ranges where\n"
        "neither disk holds data are not read.  Both disks are opened read-only.\n"
        "Exit status: 0 identical, 1 different (or an error), 2 usage error.\n"
        "\n"
        "Options:\n"
        "  -s, --strict   disks of different capacities are different\n"
        "      --json     print a JSON object (see vddk(1))\n"
        VDDK_PROGRESS_HELP
        "  -h, --help     show this help\n",
    .run = run_compare,
};

/* ---- shared option handling ------------------------------------------ */

enum { OPT_OFFSET = 1, OPT_LENGTH, OPT_PATTERN, OPT_RANDOM, OPT_SEED, OPT_BLOCK, OPT_JSON,
       OPT_STRICT };

struct range_args {
    const char *path;
    uint64_t off, len;
    int have_len;
    int have_pattern, random, have_seed;
    uint64_t pattern, seed, block;
    int json, progress;
};

/* Parse [-o OFFSET] [-l LENGTH] DISK plus, when opts allow them, the fill
 * and checksum options.  Returns -1 when the caller should return *ret. */
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
        case OPT_BLOCK:
            if (vddk_parse_size(st.arg, &a->block) < 0 || a->block == 0)
                *ret = vddk_usage_error(cmd, "invalid block size '%s'", st.arg);
            break;
        case OPT_JSON:
            a->json = 1;
            break;
        case VDDK_OPT_PROGRESS:
            a->progress = VDDK_PROGRESS_ON;
            break;
        case VDDK_OPT_QUIET:
            a->progress = VDDK_PROGRESS_OFF;
            break;
        }
    }
    if (*ret == VDDK_EXIT_OK && a->have_pattern && a->random)
        *ret = vddk_usage_error(cmd, "-p and --random exclude each other");
    if (*ret == VDDK_EXIT_OK && a->have_seed && !a->random)
        *ret = vddk_usage_error(cmd, "--seed needs --random");
    if (*ret == VDDK_EXIT_OK)
        *ret = vddk_operands(cmd, &st, 1, 1, "DISK");
    if (*ret == VDDK_EXIT_OK)
        a->path = st.operands[0];
    vddk_opt_free(&st);
    return *ret == VDDK_EXIT_OK ? 0 : -1;
}

/* Open a disk for a range command and resolve the range. */
static int open_range(struct range_args *a, int read_only, vddk_disk **d)
{
    /* Reading commands take raw images too; fill writes VMDKs only. */
    if (vddk_hl_open(a->path, read_only, read_only ? VDDK_OPEN_ANY : 0, d) != 0)
        return VDDK_EXIT_FAIL;
    int ret = vddk_resolve_range(a->path, vddk_disk_capacity(*d), a->off, a->have_len, &a->len);
    if (ret != VDDK_EXIT_OK) {
        vddk_hl_close(*d, a->path);
        *d = NULL;
    }
    return ret;
}

/* Read exactly n bytes at off. */
static int read_full(vddk_disk *d, const char *path, uint8_t *buf, size_t n, uint64_t off)
{
    vddk_warn_clear();
    ssize_t got = vddk_disk_pread(d, buf, n, off);
    if (got < 0)
        return vddk_disk_error(path);
    if ((size_t)got != n)
        return vddk_fail("%s: short read at offset %llu", path, (unsigned long long)off);
    return 0;
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

    vddk_disk *d;
    if ((ret = open_range(&a, 1, &d)) != VDDK_EXIT_OK)
        return ret;
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        ret = vddk_fail("out of memory");

    struct dumper dp;
    memset(&dp, 0, sizeof dp);
    dp.pos = a.off;
    struct vddk_runs r;
    vddk_runs_init(&r, vddk_disk_handle(d), vddk_disk_capacity(d), a.off, a.off + a.len);
    uint64_t off, run;
    int data, rc;
    VixError e = VIX_OK;
    while (ret == VDDK_EXIT_OK && (rc = vddk_runs_next(&r, &off, &run, &data, &e)) != 0) {
        if (rc < 0) {
            ret = vddk_vix_error(e, a.path);
            break;
        }
        if (!data) {
            dump_zeros(&dp, run);
            continue;
        }
        while (ret == VDDK_EXIT_OK && run > 0) {
            size_t n = run < CHUNK ? (size_t)run : CHUNK;
            ret = read_full(d, a.path, buf, n, off);
            if (ret == VDDK_EXIT_OK)
                dump_bytes(&dp, buf, n);
            off += n;
            run -= n;
        }
    }
    vddk_runs_free(&r);
    if (ret == VDDK_EXIT_OK && a.len > 0)
        dump_finish(&dp);
    free(buf);
    if (vddk_hl_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
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
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct range_args a;
    int ret;
    if (parse_range_args(argc, argv, &vddk_cmd_fill, opts, &a, &ret) < 0)
        return ret;
    if (!a.have_pattern)
        a.pattern = 0xcd;

    vddk_disk *d;
    if ((ret = open_range(&a, 0, &d)) != VDDK_EXIT_OK)
        return ret;
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL)
        ret = vddk_fail("out of memory");
    else if (!a.random)
        memset(buf, (int)a.pattern, CHUNK);

    struct vddk_progress *pg = vddk_progress_start(a.progress, "fill", a.len);
    uint64_t off = a.off, end = a.off + a.len;
    while (ret == VDDK_EXIT_OK && off < end) {
        if (vddk_interrupted()) {
            ret = vddk_fail("%s: interrupted after writing %llu bytes", a.path,
                            (unsigned long long)(off - a.off));
            break;
        }
        /* Chunks end on CHUNK boundaries of the disk so that unaligned
         * starts cost one short write, not one per chunk. */
        uint64_t lim = (off / CHUNK + 1) * CHUNK;
        size_t n = (size_t)((lim < end ? lim : end) - off);
        if (a.random)
            random_bytes(a.seed, off, buf, n);
        vddk_warn_clear();
        if (vddk_disk_pwrite(d, buf, n, off) < 0)
            ret = vddk_disk_error(a.path);
        off += n;
        vddk_progress_set(pg, off - a.off);
    }
    if (ret == VDDK_EXIT_OK) {
        vddk_warn_clear();
        if (vddk_disk_flush(d) < 0)
            ret = vddk_disk_error(a.path);
    }
    vddk_progress_end(pg, ret == VDDK_EXIT_OK);
    free(buf);
    if (vddk_hl_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
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

static void hex_digest(struct sha256 *s, char out[2 * SHA256_DIGEST_LEN + 1])
{
    uint8_t md[SHA256_DIGEST_LEN];
    sha256_final(s, md);
    for (int i = 0; i < SHA256_DIGEST_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct hasher {
    const struct range_args *a;
    struct sha256 all, blk;
    uint64_t pos;              /* disk offset of the next byte */
    uint64_t blk_start;
    int nblocks;
};

static void block_done(struct hasher *hs)
{
    char hex[2 * SHA256_DIGEST_LEN + 1];
    hex_digest(&hs->blk, hex);
    uint64_t len = hs->pos - hs->blk_start;
    if (hs->a->json) {
        printf("%s\n    {\"offset\": %llu, \"length\": %llu, \"sha256\": \"%s\"}",
               hs->nblocks ? "," : "", (unsigned long long)hs->blk_start,
               (unsigned long long)len, hex);
    } else {
        printf("%s  %s@%llu+%llu\n", hex, hs->a->path, (unsigned long long)hs->blk_start,
               (unsigned long long)len);
    }
    hs->nblocks++;
    sha256_init(&hs->blk);
    hs->blk_start = hs->pos;
}

static void hash_bytes(struct hasher *hs, const uint8_t *p, size_t n)
{
    sha256_update(&hs->all, p, n);
    if (!hs->a->block) {
        hs->pos += n;
        return;
    }
    while (n > 0) {
        uint64_t left = hs->blk_start + hs->a->block - hs->pos;
        size_t k = n < left ? n : (size_t)left;
        sha256_update(&hs->blk, p, k);
        hs->pos += k;
        p += k;
        n -= k;
        if (hs->pos == hs->blk_start + hs->a->block)
            block_done(hs);
    }
}

static int run_checksum(int argc, char **argv)
{
    static const struct vddk_opt opts[] = {
        { 'o', "offset", 1, OPT_OFFSET },
        { 'l', "length", 1, OPT_LENGTH },
        { 'b', "block-size", 1, OPT_BLOCK },
        { 0, "json", 0, OPT_JSON },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    struct range_args a;
    int ret;
    if (parse_range_args(argc, argv, &vddk_cmd_checksum, opts, &a, &ret) < 0)
        return ret;

    vddk_disk *d;
    if ((ret = open_range(&a, 1, &d)) != VDDK_EXIT_OK)
        return ret;
    uint8_t *buf = malloc(CHUNK), *zeros = calloc(1, CHUNK);
    if (buf == NULL || zeros == NULL)
        ret = vddk_fail("out of memory");

    struct hasher hs;
    memset(&hs, 0, sizeof hs);
    hs.a = &a;
    hs.pos = hs.blk_start = a.off;
    sha256_init(&hs.all);
    sha256_init(&hs.blk);
    if (ret == VDDK_EXIT_OK && a.json) {
        fputs("{\n  \"path\": ", stdout);
        vddk_json_str(stdout, a.path);
        printf(",\n  \"offset\": %llu,\n  \"length\": %llu", (unsigned long long)a.off,
               (unsigned long long)a.len);
        if (a.block)
            printf(",\n  \"block_size\": %llu,\n  \"blocks\": [", (unsigned long long)a.block);
    }

    struct vddk_progress *pg = vddk_progress_start(a.progress, "checksum", a.len);
    struct vddk_runs r;
    vddk_runs_init(&r, vddk_disk_handle(d), vddk_disk_capacity(d), a.off, a.off + a.len);
    uint64_t off, run;
    int data, rc;
    VixError e = VIX_OK;
    while (ret == VDDK_EXIT_OK && (rc = vddk_runs_next(&r, &off, &run, &data, &e)) != 0) {
        if (rc < 0) {
            ret = vddk_vix_error(e, a.path);
            break;
        }
        while (ret == VDDK_EXIT_OK && run > 0) {
            if (vddk_interrupted()) {
                ret = vddk_fail("%s: interrupted", a.path);
                break;
            }
            size_t n = run < CHUNK ? (size_t)run : CHUNK;
            if (data)
                ret = read_full(d, a.path, buf, n, off);
            if (ret == VDDK_EXIT_OK)
                hash_bytes(&hs, data ? buf : zeros, n);
            off += n;
            run -= n;
            vddk_progress_set(pg, off - a.off);
        }
    }
    vddk_runs_free(&r);
    vddk_progress_end(pg, ret == VDDK_EXIT_OK);
    free(buf);
    free(zeros);
    if (vddk_hl_close(d, a.path) != 0 && ret == VDDK_EXIT_OK)
        ret = VDDK_EXIT_FAIL;
    if (ret == VDDK_EXIT_OK) {
        if (a.block && hs.pos > hs.blk_start)
            block_done(&hs);
        char hex[2 * SHA256_DIGEST_LEN + 1];
        hex_digest(&hs.all, hex);
        if (a.json) {
            if (a.block)
                fputs(hs.nblocks ? "\n  ]" : "]", stdout);
            printf(",\n  \"sha256\": \"%s\"\n}\n", hex);
        } else {
            printf("%s  %s\n", hex, a.path);
        }
    }
    return ret;
}

/* ---- compare ----------------------------------------------------------- */

struct side {
    const char *path;
    vddk_disk *d;
    uint64_t cap;
    struct vddk_runs r;
    uint64_t run_end;    /* end of the current run */
    int data;            /* its status */
    int done;
};

/* Make s's current run cover pos.  Returns 0 or VDDK_EXIT_FAIL. */
static int side_at(struct side *s, uint64_t pos)
{
    while (!s->done && s->run_end <= pos) {
        uint64_t off, len;
        VixError e = VIX_OK;
        int rc = vddk_runs_next(&s->r, &off, &len, &s->data, &e);
        if (rc < 0)
            return vddk_vix_error(e, s->path);
        if (rc == 0)
            s->done = 1;
        else
            s->run_end = off + len;
    }
    return 0;
}

static uint64_t first_diff(const uint8_t *x, const uint8_t *y, size_t n)
{
    size_t i = 0;
    while (i < n && x[i] == y[i])
        i++;
    return i;
}

/* Compare [from, to) of a and b (b NULL: a must read zeros there).  *diff
 * is set to the first differing offset, or UINT64_MAX. */
static int compare_range(struct side *a, struct side *b, uint64_t from, uint64_t to,
                         uint8_t *ba, uint8_t *bb, const uint8_t *zeros,
                         struct vddk_progress *pg, uint64_t *progress_base, uint64_t *diff)
{
    uint64_t pos = from;
    *diff = UINT64_MAX;
    vddk_runs_init(&a->r, vddk_disk_handle(a->d), a->cap, from, to);
    a->run_end = from;
    a->done = 0;
    if (b) {
        vddk_runs_init(&b->r, vddk_disk_handle(b->d), b->cap, from, to);
        b->run_end = from;
        b->done = 0;
    }
    int ret = 0;
    while (pos < to) {
        if (vddk_interrupted()) {
            ret = vddk_fail("%s: interrupted", a->path);
            break;
        }
        if ((ret = side_at(a, pos)) != 0 || (b && (ret = side_at(b, pos)) != 0))
            break;
        uint64_t lim = to;
        if (!a->done && a->run_end < lim)
            lim = a->run_end;
        if (b && !b->done && b->run_end < lim)
            lim = b->run_end;
        int da = !a->done && a->data, db = b && !b->done && b->data;
        if (!da && !db) {
            pos = lim;
        } else {
            size_t n = lim - pos < CHUNK ? (size_t)(lim - pos) : CHUNK;
            const uint8_t *pa = zeros, *pb = zeros;
            if (da && (ret = read_full(a->d, a->path, ba, n, pos)) == 0)
                pa = ba;
            if (ret == 0 && db && (ret = read_full(b->d, b->path, bb, n, pos)) == 0)
                pb = bb;
            if (ret != 0)
                break;
            uint64_t k = first_diff(pa, pb, n);
            if (k < n) {
                *diff = pos + k;
                break;
            }
            pos += n;
        }
        vddk_progress_set(pg, *progress_base + (pos - from));
    }
    *progress_base += to - from;
    vddk_runs_free(&a->r);
    if (b)
        vddk_runs_free(&b->r);
    return ret;
}

static int run_compare(int argc, char **argv)
{
    static const struct vddk_opt opts[] = {
        { 's', "strict", 0, OPT_STRICT },
        { 0, "json", 0, OPT_JSON },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_compare;
    struct vddk_optstate st;
    int o, ret = VDDK_EXIT_OK, json = 0, strict = 0, progress = VDDK_PROGRESS_AUTO;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while (ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR: ret = VDDK_EXIT_USAGE; break;
        case OPT_STRICT: strict = 1; break;
        case OPT_JSON: json = 1; break;
        case VDDK_OPT_PROGRESS: progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: progress = VDDK_PROGRESS_OFF; break;
        }
    }
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 2, 2, "DISK1 and DISK2");
    struct side s[2];
    memset(s, 0, sizeof s);
    if (ret == VDDK_EXIT_OK) {
        s[0].path = st.operands[0];
        s[1].path = st.operands[1];
    }
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    if (vddk_hl_open(s[0].path, 1, VDDK_OPEN_ANY, &s[0].d) != 0)
        return VDDK_EXIT_FAIL;
    if (vddk_hl_open(s[1].path, 1, VDDK_OPEN_ANY, &s[1].d) != 0) {
        vddk_hl_close(s[0].d, s[0].path);
        return VDDK_EXIT_FAIL;
    }
    s[0].cap = vddk_disk_capacity(s[0].d);
    s[1].cap = vddk_disk_capacity(s[1].d);
    uint64_t common = s[0].cap < s[1].cap ? s[0].cap : s[1].cap;
    uint64_t larger = s[0].cap < s[1].cap ? s[1].cap : s[0].cap;
    struct side *big = s[0].cap < s[1].cap ? &s[1] : &s[0];

    uint8_t *ba = malloc(CHUNK), *bb = malloc(CHUNK), *zeros = calloc(1, CHUNK);
    if (!ba || !bb || !zeros)
        ret = vddk_fail("out of memory");
    uint64_t diff = UINT64_MAX, base = 0;
    int size_differs = s[0].cap != s[1].cap;
    struct vddk_progress *pg = vddk_progress_start(progress, "compare",
                                                   strict && size_differs ? 0 : larger);
    if (ret == VDDK_EXIT_OK && !(strict && size_differs))
        ret = compare_range(&s[0], &s[1], 0, common, ba, bb, zeros, pg, &base, &diff);
    if (ret == VDDK_EXIT_OK && diff == UINT64_MAX && size_differs && !strict)
        ret = compare_range(big, NULL, common, larger, ba, bb, zeros, pg, &base, &diff);
    vddk_progress_end(pg, ret == VDDK_EXIT_OK);
    free(ba);
    free(bb);
    free(zeros);
    for (int i = 0; i < 2; i++)
        if (vddk_hl_close(s[i].d, s[i].path) != 0 && ret == VDDK_EXIT_OK)
            ret = VDDK_EXIT_FAIL;
    if (ret != VDDK_EXIT_OK)
        return ret;

    int identical = diff == UINT64_MAX && !(strict && size_differs);
    if (json) {
        fputs("{\n  \"disk1\": ", stdout);
        vddk_json_str(stdout, s[0].path);
        fputs(",\n  \"disk2\": ", stdout);
        vddk_json_str(stdout, s[1].path);
        printf(",\n  \"capacity1\": %llu,\n  \"capacity2\": %llu",
               (unsigned long long)s[0].cap, (unsigned long long)s[1].cap);
        printf(",\n  \"identical\": %s", identical ? "true" : "false");
        if (diff != UINT64_MAX)
            printf(",\n  \"first_difference\": %llu", (unsigned long long)diff);
        else
            fputs(",\n  \"first_difference\": null", stdout);
        printf(",\n  \"capacity_differs\": %s\n}\n", size_differs ? "true" : "false");
    } else if (identical) {
        printf("%s and %s are identical", s[0].path, s[1].path);
        if (size_differs) {
            char h[VDDK_HUMAN_LEN];
            printf(" (the last %s of %s read as zeros)", vddk_human(larger - common, h),
                   big->path);
        }
        putchar('\n');
    } else if (diff != UINT64_MAX) {
        printf("%s and %s differ at offset %llu (0x%llx)\n", s[0].path, s[1].path,
               (unsigned long long)diff, (unsigned long long)diff);
    } else {
        printf("%s and %s differ in capacity: %llu and %llu bytes\n", s[0].path, s[1].path,
               (unsigned long long)s[0].cap, (unsigned long long)s[1].cap);
    }
    return identical ? VDDK_EXIT_OK : VDDK_EXIT_FAIL;
}
