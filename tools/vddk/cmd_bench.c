/* cmd_bench.c - `vddk bench`: sequential and random read and write
 * throughput and IOPS of a disk through VixDiskLib_ReadAsync/WriteAsync,
 * with a chosen block size and number of requests in flight. */
#include "vddk.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int run_bench(int argc, char **argv);

const struct vddk_cmd vddk_cmd_bench = {
    .name = "bench",
    .summary = "measure read and write throughput and IOPS of a disk",
    .help =
        "usage: vddk bench [-t TESTS] [-b SIZE] [-d DEPTH] [-l LENGTH] [--seed N]\n"
        "                  [--json] [--progress | -q] DISK\n"
        "\n"
        "Run each test on the first LENGTH bytes of DISK through libvixDiskLib's\n"
        "asynchronous I/O (ReadAsync/WriteAsync) with DEPTH requests of SIZE bytes\n"
        "in flight, and print the bytes per second and I/O operations per second\n"
        "of each.  A test issues LENGTH / SIZE requests: in order for seq-*, at\n"
        "block-aligned pseudo-random offsets (which may repeat) for rand-*.\n"
        "Write tests overwrite that range with pseudo-random data and include\n"
        "the final flush in their time.  The disk is opened read-only unless a\n"
        "write test is asked for.\n"
        "\n"
        "Options:\n"
        "  -t, --tests LIST        comma-separated tests among seq-read, rand-read,\n"
        "                          seq-write, rand-write, or all (default:\n"
        "                          seq-read,rand-read)\n"
        "  -b, --block-size SIZE   bytes per request, a multiple of 512 up to 16M\n"
        "                          (default 64K)\n"
        "  -d, --queue-depth N     requests in flight, 1 to 256 (default 8)\n"
        "  -l, --length LENGTH     bytes per test (default: the disk, at most 256M);\n"
        "                          rounded down to a multiple of SIZE\n"
        "      --seed N            seed of the random offsets and data (default 1)\n"
        "      --json              print a JSON object (see vddk(1))\n"
        VDDK_PROGRESS_HELP
        "  -h, --help              show this help\n"
        "SIZE and LENGTH are bytes or take a K, M, G or T suffix (powers of 1024).\n",
    .run = run_bench,
};

enum { T_SEQ_READ = 1, T_RAND_READ = 2, T_SEQ_WRITE = 4, T_RAND_WRITE = 8 };

static const struct {
    const char *name;
    int bit, write, random;
} tests[] = {
    { "seq-read", T_SEQ_READ, 0, 0 },
    { "rand-read", T_RAND_READ, 0, 1 },
    { "seq-write", T_SEQ_WRITE, 1, 0 },
    { "rand-write", T_RAND_WRITE, 1, 1 },
};
#define NTESTS (sizeof tests / sizeof tests[0])

struct bstate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inflight;
    VixError err;
};

struct slot {
    struct bstate *st;
    uint8 *buf;
    int busy;
};

static void completed(void *data, VixError result)
{
    struct slot *s = data;
    struct bstate *st = s->st;
    pthread_mutex_lock(&st->lock);
    if (result != VIX_OK && st->err == VIX_OK)
        st->err = result;
    s->busy = 0;
    st->inflight--;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct result {
    const char *name;
    uint64_t bytes, ops;
    double seconds;
};

struct params {
    const char *path;
    uint64_t block, length;
    int depth, progress;
    uint64_t seed;
};

static int run_test(struct vddk_h *d, const struct params *p, int t, struct slot *slots,
                    struct bstate *st, struct result *res)
{
    uint64_t nops = p->length / p->block, nblocks = p->length / p->block;
    VixDiskLibSectorType ns = p->block / VIXDISKLIB_SECTOR_SIZE;
    uint64_t rng = p->seed * 0x100000001b3ull + (uint64_t)t;
    int ret = 0;

    if (tests[t].write)
        for (int i = 0; i < p->depth; i++)
            for (uint64_t k = 0; k < p->block; k += 8) {
                uint64_t v = splitmix64(&rng);
                memcpy(slots[i].buf + k, &v, 8);
            }
    st->err = VIX_OK;
    st->inflight = 0;
    vddk_warn_clear();
    struct vddk_progress *pg = vddk_progress_start(p->progress, tests[t].name, nops * p->block);
    double t0 = vddk_now();
    uint64_t issued = 0;
    pthread_mutex_lock(&st->lock);
    while (issued < nops && st->err == VIX_OK && !vddk_interrupted()) {
        int free_slot = -1;
        for (int i = 0; i < p->depth && free_slot < 0; i++)
            if (!slots[i].busy)
                free_slot = i;
        if (free_slot < 0) {
            pthread_cond_wait(&st->cond, &st->lock);
            continue;
        }
        struct slot *s = &slots[free_slot];
        s->busy = 1;
        st->inflight++;
        pthread_mutex_unlock(&st->lock);
        uint64_t blk = tests[t].random ? splitmix64(&rng) % nblocks : issued;
        VixDiskLibSectorType sec = blk * ns;
        VixError e = tests[t].write
                         ? VixDiskLib_WriteAsync(d->h, sec, ns, s->buf, completed, s)
                         : VixDiskLib_ReadAsync(d->h, sec, ns, s->buf, completed, s);
        pthread_mutex_lock(&st->lock);
        if (e != VIX_ASYNC) {
            /* Not queued: no callback will come. */
            s->busy = 0;
            st->inflight--;
            if (st->err == VIX_OK)
                st->err = e == VIX_OK ? VIX_E_FAIL : e;
            break;
        }
        issued++;
        uint64_t finished = issued - (uint64_t)st->inflight;
        pthread_mutex_unlock(&st->lock);
        vddk_progress_set(pg, finished * p->block);
        pthread_mutex_lock(&st->lock);
    }
    while (st->inflight > 0)
        pthread_cond_wait(&st->cond, &st->lock);
    VixError e = st->err;
    pthread_mutex_unlock(&st->lock);
    if (e == VIX_OK && tests[t].write)
        e = VixDiskLib_Flush(d->h);
    double t1 = vddk_now();
    vddk_progress_end(pg, e == VIX_OK && !vddk_interrupted());
    if (e != VIX_OK)
        ret = vddk_vix_error(e, p->path);
    else if (vddk_interrupted())
        ret = vddk_fail("%s: interrupted", p->path);
    res->name = tests[t].name;
    res->ops = issued;
    res->bytes = issued * p->block;
    res->seconds = t1 - t0;
    return ret;
}

static int parse_tests(const char *text, int *mask)
{
    *mask = 0;
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        if (n == 3 && strncmp(p, "all", 3) == 0) {
            *mask |= T_SEQ_READ | T_RAND_READ | T_SEQ_WRITE | T_RAND_WRITE;
            found = 1;
        }
        for (size_t i = 0; i < NTESTS && !found; i++)
            if (strlen(tests[i].name) == n && strncmp(p, tests[i].name, n) == 0) {
                *mask |= tests[i].bit;
                found = 1;
            }
        if (!found)
            return -1;
        p += n;
        if (*p == ',')
            p++;
    }
    return *mask ? 0 : -1;
}

static int run_bench(int argc, char **argv)
{
    enum { OPT_TESTS = 1, OPT_BLOCK, OPT_DEPTH, OPT_LENGTH, OPT_SEED, OPT_JSON };
    static const struct vddk_opt opts[] = {
        { 't', "tests", 1, OPT_TESTS },
        { 'b', "block-size", 1, OPT_BLOCK },
        { 'd', "queue-depth", 1, OPT_DEPTH },
        { 'l', "length", 1, OPT_LENGTH },
        { 0, "seed", 1, OPT_SEED },
        { 0, "json", 0, OPT_JSON },
        VDDK_PROGRESS_OPTS,
        { 0, NULL, 0, 0 },
    };
    const struct vddk_cmd *cmd = &vddk_cmd_bench;
    struct vddk_optstate st;
    struct params p = { NULL, 65536, 0, 8, VDDK_PROGRESS_AUTO, 1 };
    int o, ret = VDDK_EXIT_OK, mask = T_SEQ_READ | T_RAND_READ, json = 0, have_len = 0;
    uint64_t v;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    while (ret == VDDK_EXIT_OK && (o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        switch (o) {
        case VDDK_OPT_HELP:
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        case VDDK_OPT_ERROR: ret = VDDK_EXIT_USAGE; break;
        case OPT_TESTS:
            if (parse_tests(st.arg, &mask) < 0)
                ret = vddk_usage_error(cmd, "invalid test list '%s' (seq-read, rand-read, "
                                            "seq-write, rand-write or all)", st.arg);
            break;
        case OPT_BLOCK:
            if (vddk_parse_size(st.arg, &p.block) < 0 || p.block == 0 ||
                p.block % VIXDISKLIB_SECTOR_SIZE || p.block > (16u << 20))
                ret = vddk_usage_error(cmd, "invalid block size '%s' (a multiple of 512 up "
                                            "to 16M)", st.arg);
            break;
        case OPT_DEPTH:
            if (vddk_parse_uint(st.arg, 256, &v) < 0 || v == 0)
                ret = vddk_usage_error(cmd, "invalid queue depth '%s' (1 to 256)", st.arg);
            else
                p.depth = (int)v;
            break;
        case OPT_LENGTH:
            if (vddk_parse_size(st.arg, &p.length) < 0)
                ret = vddk_usage_error(cmd, "invalid length '%s'", st.arg);
            have_len = 1;
            break;
        case OPT_SEED:
            if (vddk_parse_uint(st.arg, UINT64_MAX, &p.seed) < 0)
                ret = vddk_usage_error(cmd, "invalid seed '%s'", st.arg);
            break;
        case OPT_JSON: json = 1; break;
        case VDDK_OPT_PROGRESS: p.progress = VDDK_PROGRESS_ON; break;
        case VDDK_OPT_QUIET: p.progress = VDDK_PROGRESS_OFF; break;
        }
    }
    if (ret == VDDK_EXIT_OK)
        ret = vddk_operands(cmd, &st, 1, 1, "DISK");
    if (ret == VDDK_EXIT_OK)
        p.path = st.operands[0];
    vddk_opt_free(&st);
    if (ret != VDDK_EXIT_OK)
        return ret;

    int writes = (mask & (T_SEQ_WRITE | T_RAND_WRITE)) != 0;
    struct vddk_h d;
    if (vddk_open(p.path, writes ? 0 : VIXDISKLIB_FLAG_OPEN_READ_ONLY, &d) != 0)
        return VDDK_EXIT_FAIL;
    if (!have_len)
        p.length = d.capacity < (256u << 20) ? d.capacity : (256u << 20);
    if (p.length > d.capacity)
        ret = vddk_fail("%s: length %llu is larger than the disk (%llu bytes)", p.path,
                        (unsigned long long)p.length, (unsigned long long)d.capacity);
    else if (p.length < p.block)
        ret = vddk_fail("%s: length %llu is smaller than one block of %llu bytes", p.path,
                        (unsigned long long)p.length, (unsigned long long)p.block);
    p.length = p.length / p.block * p.block;

    struct bstate bs;
    pthread_mutex_init(&bs.lock, NULL);
    pthread_cond_init(&bs.cond, NULL);
    struct slot *slots = calloc((size_t)p.depth, sizeof *slots);
    if (ret == 0 && !slots)
        ret = vddk_fail("out of memory");
    for (int i = 0; ret == 0 && i < p.depth; i++) {
        slots[i].st = &bs;
        if (!(slots[i].buf = malloc(p.block)))
            ret = vddk_fail("out of memory");
    }
    struct result res[NTESTS];
    int nres = 0;
    for (size_t t = 0; ret == 0 && t < NTESTS; t++)
        if (mask & tests[t].bit)
            ret = run_test(&d, &p, (int)t, slots, &bs, &res[nres++]);
    for (int i = 0; slots && i < p.depth; i++)
        free(slots[i].buf);
    free(slots);
    pthread_cond_destroy(&bs.cond);
    pthread_mutex_destroy(&bs.lock);
    if (vddk_close(&d) != 0 && ret == 0)
        ret = VDDK_EXIT_FAIL;
    if (ret != 0)
        return ret;

    char h1[VDDK_HUMAN_LEN], h2[VDDK_HUMAN_LEN], h3[VDDK_HUMAN_LEN];
    if (json) {
        fputs("{\n  \"path\": ", stdout);
        vddk_json_str(stdout, p.path);
        printf(",\n  \"block_size\": %llu,\n  \"queue_depth\": %d,\n  \"length\": %llu",
               (unsigned long long)p.block, p.depth, (unsigned long long)p.length);
        fputs(",\n  \"tests\": [", stdout);
    } else {
        printf("%s: %s blocks, queue depth %d, %s per test\n", p.path, vddk_human(p.block, h1),
               p.depth, vddk_human(p.length, h2));
    }
    for (int i = 0; i < nres; i++) {
        double secs = res[i].seconds > 1e-9 ? res[i].seconds : 1e-9;
        double bps = (double)res[i].bytes / secs, iops = (double)res[i].ops / secs;
        if (json)
            printf("%s\n    {\"test\": \"%s\", \"bytes\": %llu, \"ops\": %llu, "
                   "\"seconds\": %.6f, \"bytes_per_second\": %.0f, \"iops\": %.1f}",
                   i ? "," : "", res[i].name, (unsigned long long)res[i].bytes,
                   (unsigned long long)res[i].ops, res[i].seconds, bps, iops);
        else
            printf("%-11s %s in %.3f s: %s/s, %.0f IOPS\n", res[i].name,
                   vddk_human(res[i].bytes, h1), res[i].seconds,
                   vddk_human((uint64_t)bps, h3), iops);
    }
    if (json)
        fputs("\n  ]\n}\n", stdout);
    return VDDK_EXIT_OK;
}
