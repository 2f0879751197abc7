/* fuzz_repair.c - CheckRepair on mutated disks, against what repair promises.
 *
 * A few healthy disks are made once (templates, each with grains of known
 * content): a monolithicSparse disk, one with two grain tables, one with
 * 8 KiB grains, a child on a parent, and a split sparse disk.  An input
 * picks a template and says how to damage it (bytes written anywhere, most
 * often in the metadata; header fields set to chosen values; the file
 * truncated or extended).  Then, on the damaged disk:
 *
 *   - before: every 64 KiB chunk that reads back as the healthy disk had
 *     it is noted ("read correctly");
 *   - a check without repair changes no byte; if it finds nothing, the
 *     disk must open;
 *   - a repair that does not succeed (cannot repair, or the check could
 *     not run) leaves every file byte-identical and no journal;
 *   - a repair that succeeds leaves no journal, a disk the next check
 *     finds clean, that opens, and where every chunk that read correctly
 *     before still does; a repair that found nothing changed no byte;
 *   - for some inputs the repair is first killed after a few writes (the
 *     test hook OPENVDDK_TEST_REPAIR_ABORT_AFTER, in a child process): the
 *     next repair must roll it back and end with exactly the bytes an
 *     uninterrupted repair gives.
 *
 * Input: byte 0 template, byte 1 flags (bit 0: kill test, bits 4-7 mod 6:
 * kill after that many writes), then mutations of 6 bytes + data:
 * kind, file, u32 offset, then (kinds 0, 1) a length byte and the bytes.
 * kind % 5: 0 bytes in the metadata (offset modulo the overhead), 1 bytes
 * anywhere, 2 a header field set to the offset's value, 3 a header field
 * moved by a small delta, 4 truncate or extend the file.
 *
 * Built as a libFuzzer target (scripts/fuzz.sh) and, with
 * -DFUZZ_REPAIR_STANDALONE, as a program that runs N pseudo-random inputs
 * (ctest runs a few hundred; `fuzz_repair_standalone N SEED` runs more). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmdk/vmdk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK 65536u
#define MAX_FILES 3
#define FSIZE_LIMIT (96u << 20)

struct tfile {
    char name[32];
    unsigned char *bytes;
    size_t len;
    int mutable_;            /* the parent of a child is never damaged */
};

struct template {
    const char *name;
    const char *disk;        /* the descriptor (or monolithic file) name */
    struct tfile f[MAX_FILES];
    int nf;
    uint64_t cap;
    unsigned char *content;  /* what the healthy disk reads */
    uint64_t overhead;       /* bytes, of the first file (for metadata offsets) */
};

#define NT 5
static struct template T[NT];
static char tdir[160], rdir[200], cdir[200];
static unsigned char *rbuf;
static int verbose;

static __attribute__((noreturn)) void fail(const char *what, const struct template *t,
                                            const char *detail)
{
    fprintf(stderr, "FUZZ-CHECK: template %s: %s%s%s\n", t ? t->name : "?", what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

static __attribute__((noreturn)) void die(const char *what)
{
    fprintf(stderr, "fuzz_repair: setup: %s: %s\n", what, vd_err_msg());
    abort();
}

static void rm_rf(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_repair: cannot remove %s\n", dir);
}

static void cleanup(void)
{
    if (tdir[0])
        rm_rf(tdir);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return NULL;
    }
    unsigned char *b = malloc(st.st_size ? (size_t)st.st_size : 1);
    size_t done = 0;
    while (b && done < (size_t)st.st_size) {
        ssize_t n = pread(fd, b + done, (size_t)st.st_size - done, (off_t)done);
        if (n <= 0) {
            free(b);
            b = NULL;
            break;
        }
        done += (size_t)n;
    }
    close(fd);
    *len = done;
    return b;
}

static int spit(const char *path, const unsigned char *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, b + done, len - done);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return close(fd);
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Write len bytes of pattern seed at off into d. */
static void put(vmdk_disk *d, uint64_t off, size_t len, uint64_t seed)
{
    unsigned char *b = malloc(len);
    if (!b)
        die("malloc");
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = mix(seed * 1000003u + (off + i) / 8);
        memcpy(b + i, &v, len - i < 8 ? len - i : 8);
    }
    if (vmdk_pwrite(d, b, len, off) < 0)
        die("write");
    free(b);
}

static void make_templates(void)
{
    char p[400], q[300];
    struct vmdk_create_params cp;
    vmdk_disk *d;
    /* 0: monolithicSparse, 4 MiB. */
    T[0].name = "sparse";
    T[0].disk = "s.vmdk";
    snprintf(p, sizeof p, "%s/s.vmdk", tdir);
    memset(&cp, 0, sizeof cp);
    cp.type = VMDK_TYPE_MONOLITHIC_SPARSE;
    cp.capacity = 4u << 20;
    if (vmdk_create(p, &cp) < 0 || vmdk_open(p, 0, &d) < 0)
        die("template sparse");
    put(d, 0, 3 * CHUNK, 1);
    put(d, 16 * CHUNK + 100, 2 * CHUNK, 2);
    put(d, 48 * CHUNK, CHUNK, 3);
    put(d, 63 * CHUNK, CHUNK, 4);
    vmdk_close(d);
    /* 1: two grain tables, 40 MiB. */
    T[1].name = "sparse2gt";
    T[1].disk = "t.vmdk";
    snprintf(p, sizeof p, "%s/t.vmdk", tdir);
    cp.capacity = 40u << 20;
    if (vmdk_create(p, &cp) < 0 || vmdk_open(p, 0, &d) < 0)
        die("template sparse2gt");
    put(d, 0, CHUNK, 5);
    put(d, 5 * CHUNK, CHUNK, 6);
    put(d, 511 * CHUNK, 2 * CHUNK, 7);
    put(d, 600 * CHUNK, CHUNK, 8);
    put(d, 639 * CHUNK, CHUNK, 9);
    vmdk_close(d);
    /* 2: 8 KiB grains. */
    T[2].name = "grain16";
    T[2].disk = "g.vmdk";
    snprintf(p, sizeof p, "%s/g.vmdk", tdir);
    cp.capacity = 2u << 20;
    cp.grain_sectors = 16;
    if (vmdk_create(p, &cp) < 0 || vmdk_open(p, 0, &d) < 0)
        die("template grain16");
    put(d, 0, 40000, 10);
    put(d, 1u << 20, 8192, 11);
    put(d, (2u << 20) - 8192, 8192, 12);
    vmdk_close(d);
    cp.grain_sectors = 0;
    /* 3: a child on a parent. */
    T[3].name = "child";
    T[3].disk = "c.vmdk";
    snprintf(q, sizeof q, "%s/b.vmdk", tdir);
    snprintf(p, sizeof p, "%s/c.vmdk", tdir);
    cp.capacity = 4u << 20;
    if (vmdk_create(q, &cp) < 0 || vmdk_open(q, 0, &d) < 0)
        die("template parent");
    put(d, 0, 8 * CHUNK, 13);
    put(d, 40 * CHUNK, CHUNK, 14);
    vmdk_close(d);
    if (vmdk_create_child(p, q, VMDK_TYPE_MONOLITHIC_SPARSE) < 0 || vmdk_open(p, 0, &d) < 0)
        die("template child");
    put(d, CHUNK + 4096, CHUNK, 15);
    put(d, 20 * CHUNK, CHUNK, 16);
    vmdk_close(d);
    /* 4: split sparse, 4 MiB in 2 MiB extents. */
    T[4].name = "split";
    T[4].disk = "p.vmdk";
    snprintf(p, sizeof p, "%s/p.vmdk", tdir);
    cp.type = VMDK_TYPE_SPLIT_SPARSE;
    cp.split_size = 2u << 20;
    if (vmdk_create(p, &cp) < 0 || vmdk_open(p, 0, &d) < 0)
        die("template split");
    put(d, 0, CHUNK, 17);
    put(d, (2u << 20) - CHUNK, 2 * CHUNK, 18);
    put(d, 50 * CHUNK, CHUNK, 19);
    vmdk_close(d);

    static const char *files[NT][MAX_FILES] = {
        { "s.vmdk" }, { "t.vmdk" }, { "g.vmdk" }, { "c.vmdk", "b.vmdk" },
        { "p-s001.vmdk", "p-s002.vmdk", "p.vmdk" },
    };
    for (int t = 0; t < NT; t++) {
        for (int i = 0; i < MAX_FILES && files[t][i]; i++) {
            struct tfile *f = &T[t].f[T[t].nf++];
            snprintf(f->name, sizeof f->name, "%s", files[t][i]);
            snprintf(p, sizeof p, "%s/%s", tdir, f->name);
            if (!(f->bytes = slurp(p, &f->len)))
                die("reading a template");
            f->mutable_ = !(t == 3 && i == 1);
        }
        snprintf(p, sizeof p, "%s/%s", tdir, T[t].disk);
        if (vmdk_open(p, VMDK_OPEN_RDONLY, &d) < 0)
            die("opening a template");
        T[t].cap = vmdk_capacity(d);
        if (!(T[t].content = malloc(T[t].cap)) || vmdk_pread(d, T[t].content, T[t].cap, 0) < 0)
            die("reading a template");
        vmdk_close(d);
        const unsigned char *h = T[t].f[0].bytes;
        uint64_t ovh = 0;
        if (T[t].f[0].len >= 512 && !memcmp(h, "KDMV", 4))
            memcpy(&ovh, h + 64, 8);
        T[t].overhead = ovh && ovh * 512 <= T[t].f[0].len ? ovh * 512 : 65536;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%.100s/openvddk-fuzzrepair-%ld", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    snprintf(rdir, sizeof rdir, "%s/run", tdir);
    snprintf(cdir, sizeof cdir, "%s/kill", tdir);
    rm_rf(tdir);
    if (mkdir(tdir, 0700) < 0 || mkdir(rdir, 0700) < 0 || mkdir(cdir, 0700) < 0)
        die("mkdir");
    atexit(cleanup);
    if (!(rbuf = malloc(CHUNK)))
        die("malloc");
    /* A repair may try to grow a file without bound: keep it small. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { FSIZE_LIMIT, FSIZE_LIMIT };
    setrlimit(RLIMIT_FSIZE, &rl);
    make_templates();
    return 0;
}

/* ---- one input -------------------------------------------------------------- */

static void lay_out(const struct template *t, const char *dir, unsigned char **bytes,
                    size_t *lens)
{
    char p[400];
    for (int i = 0; i < t->nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, t->f[i].name);
        unlink(p);
        if (spit(p, bytes[i], lens[i]) < 0)
            fail("writing the damaged files", t, strerror(errno));
    }
    snprintf(p, sizeof p, "%s/%s.repair-undo", dir, t->disk);
    unlink(p);
}

/* Are the files in dir byte for byte bytes[]? */
static int same_files(const struct template *t, const char *dir, unsigned char **bytes,
                      size_t *lens)
{
    char p[400];
    for (int i = 0; i < t->nf; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, t->f[i].name);
        size_t n = 0;
        unsigned char *b = slurp(p, &n);
        int same = b && n == lens[i] && !memcmp(b, bytes[i], n);
        free(b);
        if (!same)
            return 0;
    }
    return 1;
}

static int journal_left(const struct template *t, const char *dir)
{
    char p[400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.repair-undo", dir, t->disk);
    return lstat(p, &st) == 0;
}

/* Which chunks read as the healthy disk; 0 when the disk does not open. */
static int read_ok(const struct template *t, const char *path, unsigned char *ok)
{
    vmdk_disk *d;
    uint64_t n = (t->cap + CHUNK - 1) / CHUNK;
    memset(ok, 0, n);
    if (vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK, &d) < 0)
        return 0;
    uint64_t cap = vmdk_capacity(d);
    for (uint64_t c = 0; c < n; c++) {
        uint64_t off = c * CHUNK, len = t->cap - off < CHUNK ? t->cap - off : CHUNK;
        if (off + len > cap)
            break;
        ok[c] = vmdk_pread(d, rbuf, len, off) == 0 && !memcmp(rbuf, t->content + off, len);
    }
    vmdk_close(d);
    return 1;
}

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                         (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void mutate(const struct template *t, const uint8_t *data, size_t size,
                   unsigned char **bytes, size_t *lens)
{
    static const struct { unsigned off, len; } fields[] = {
        { 4, 4 }, { 8, 4 }, { 12, 8 }, { 20, 8 }, { 28, 8 }, { 36, 8 }, { 44, 4 }, { 48, 8 },
        { 56, 8 }, { 64, 8 }, { 72, 1 }, { 73, 4 }, { 77, 2 },
    };
    const size_t nfields = sizeof fields / sizeof fields[0];
    size_t pos = 2;
    for (int m = 0; m < 6 && pos + 6 <= size; m++) {
        uint8_t kind = data[pos] % 5, fsel = data[pos + 1];
        uint32_t v = rd32(data + pos + 2);
        pos += 6;
        int fi = fsel % t->nf;
        if (!t->f[fi].mutable_)
            fi = 0;
        unsigned char **b = &bytes[fi];
        size_t *len = &lens[fi];
        if (kind <= 1) {
            if (pos >= size)
                break;
            size_t n = data[pos++] % 16 + 1;
            if (pos + n > size)
                n = size - pos;
            uint64_t lim = kind == 0 && fi == 0 ? t->overhead : *len;
            if (lim > *len)
                lim = *len;
            if (!lim)
                continue;
            uint64_t off = v % lim;
            if (verbose > 1)
                fprintf(stderr, "mutation: %s: %zu bytes at %" PRIu64 "\n", t->f[fi].name, n,
                        off);
            for (size_t i = 0; i < n && off + i < *len; i++)
                (*b)[off + i] = data[pos + i];
            pos += n;
        } else if (kind <= 3) {
            if (*len < 512 || memcmp(*b, "KDMV", 4))
                continue;
            unsigned fo = fields[fsel / t->nf % nfields].off;
            unsigned fl = fields[fsel / t->nf % nfields].len;
            uint64_t val = 0;
            memcpy(&val, *b + fo, fl);
            if (kind == 2)
                val = v & 1 ? (uint64_t)v << (v >> 27) : v;   /* some huge values */
            else
                val += (int32_t)(int8_t)(v & 0xff);
            if (verbose > 1)
                fprintf(stderr, "mutation: %s: header offset %u = %" PRIu64 "\n", t->f[fi].name,
                        fo, val);
            memcpy(*b + fo, &val, fl);
        } else {
            size_t nl = v & 1 ? *len + (v >> 1) % (4u << 20) : (v >> 1) % (*len + 1);
            unsigned char *nb = realloc(*b, nl ? nl : 1);
            if (!nb)
                continue;
            if (nl > *len)
                memset(nb + *len, 0, nl - *len);
            *b = nb;
            *len = nl;
            if (verbose > 1)
                fprintf(stderr, "mutation: %s: size %zu\n", t->f[fi].name, nl);
        }
    }
}

/* What the inputs led to (printed by the standalone runner). */
static unsigned long n_clean, n_repaired, n_refused, n_norun, n_killed;

struct run {
    int rc;
    struct vmdk_check_result res;
};

/* FUZZ_REPAIR_VERBOSE=1: print why repairs were refused. */
static void report(void *ctx, int level, const char *msg)
{
    (void)ctx;
    size_t n = strlen(msg);
    if (verbose > 1)
        fprintf(stderr, "  [%d] %s\n", level, msg);
    else if (level == VMDK_REPORT_PROBLEM && n > 15 && !strcmp(msg + n - 15, "(cannot repair)"))
        fprintf(stderr, "refused: %s\n", msg);
}

static void check(const char *path, int repair, struct run *r)
{
    memset(r, 0, sizeof *r);
    r->rc = vmdk_check(path, repair, (verbose && repair) || verbose > 1 ? report : NULL, NULL,
                       &r->res);
    if (verbose && repair && r->rc < 0)
        fprintf(stderr, "no run: %s\n", vd_err_msg());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const struct template *t = &T[data[0] % NT];
    unsigned char *bytes[MAX_FILES] = { 0 };
    size_t lens[MAX_FILES] = { 0 };
    for (int i = 0; i < t->nf; i++) {
        lens[i] = t->f[i].len;
        if (!(bytes[i] = malloc(lens[i] ? lens[i] : 1)))
            abort();
        memcpy(bytes[i], t->f[i].bytes, lens[i]);
    }
    mutate(t, data, size, bytes, lens);
    lay_out(t, rdir, bytes, lens);
    char path[400];
    snprintf(path, sizeof path, "%s/%s", rdir, t->disk);
    uint64_t nch = (t->cap + CHUNK - 1) / CHUNK;
    unsigned char *ok0 = calloc(nch, 1), *ok1 = calloc(nch, 1);
    if (!ok0 || !ok1)
        abort();
    int opened = read_ok(t, path, ok0);

    /* A check writes nothing; a clean check means the disk opens. */
    struct run c0, r1, c2;
    check(path, 0, &c0);
    if (!same_files(t, rdir, bytes, lens))
        fail("a check without repair changed a file", t, NULL);
    if (c0.rc == 0 && c0.res.problems == 0 && !opened)
        fail("check found no problem in a disk that does not open", t, NULL);

    /* Repair. */
    check(path, 1, &r1);
    int success = r1.rc == 0 && r1.res.unrepaired == 0;
    if (r1.rc < 0)
        n_norun++;
    else if (!success)
        n_refused++;
    else if (r1.res.problems)
        n_repaired++;
    else
        n_clean++;
    if (!success) {
        if (journal_left(t, rdir))
            fail("a repair that did not succeed left its journal", t, NULL);
        if (!same_files(t, rdir, bytes, lens))
            fail("a repair that did not succeed changed a file", t,
                 r1.rc < 0 ? vd_err_msg() : "cannot repair");
    } else {
        if (journal_left(t, rdir))
            fail("a successful repair left its journal", t, NULL);
        if (r1.res.problems == 0 && !same_files(t, rdir, bytes, lens))
            fail("a repair that found nothing changed a file", t, NULL);
        check(path, 0, &c2);
        if (c2.rc != 0 || c2.res.problems != 0)
            fail("the check after a successful repair is not clean", t,
                 c2.rc < 0 ? vd_err_msg() : NULL);
        if (!read_ok(t, path, ok1))
            fail("the disk does not open after a successful repair", t, vd_err_msg());
        for (uint64_t c = 0; c < nch; c++)
            if (ok0[c] && !ok1[c]) {
                char m[64];
                snprintf(m, sizeof m, "chunk %" PRIu64, c);
                fail("a chunk that read correctly before the repair does not after it", t, m);
            }
    }

    /* Killed repair: rolled back and redone, it must give the same bytes. */
    unsigned kill_after = (data[1] >> 4) % 6;
    if ((data[1] & 1) && success && r1.res.problems) {
        unsigned char *after[MAX_FILES] = { 0 };
        size_t alens[MAX_FILES] = { 0 };
        char p[400];
        for (int i = 0; i < t->nf; i++) {
            snprintf(p, sizeof p, "%s/%s", rdir, t->f[i].name);
            after[i] = slurp(p, &alens[i]);
        }
        lay_out(t, cdir, bytes, lens);
        char kpath[400];
        snprintf(kpath, sizeof kpath, "%s/%s", cdir, t->disk);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            char v[16];
            snprintf(v, sizeof v, "%u", kill_after);
            setenv("OPENVDDK_TEST_REPAIR_ABORT_AFTER", v, 1);
            struct vmdk_check_result res;
            vmdk_check(kpath, 1, NULL, NULL, &res);
            _exit(0);
        }
        int st = 0;
        pid_t w = -1;
        if (pid > 0)
            do
                w = waitpid(pid, &st, 0);
            while (w < 0 && errno == EINTR);    /* libFuzzer's timer */
        if (pid < 0 || w != pid)
            fail("fork", t, strerror(errno));
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            n_killed++;
            struct run k;
            check(kpath, 0, &k);
            if (k.rc != 0 || k.res.problems == 0)
                fail("a check after a killed repair does not report it", t, NULL);
            check(kpath, 1, &k);
            if (journal_left(t, cdir))
                fail("the repair after a killed one left a journal", t, NULL);
            if (!same_files(t, cdir, after, alens))
                fail("rolled back and repaired again, the disk differs from an uninterrupted "
                     "repair", t, NULL);
        }
        for (int i = 0; i < t->nf; i++)
            free(after[i]);
    }

    for (int i = 0; i < t->nf; i++)
        free(bytes[i]);
    free(ok0);
    free(ok1);
    return 0;
}

#ifdef FUZZ_REPAIR_STANDALONE
/* Pseudo-random inputs: N of them from SEED (default 200, 1). */
int main(int argc, char **argv)
{
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    (void)seed;
    LLVMFuzzerInitialize(&argc, &argv);
    const char *v = getenv("FUZZ_REPAIR_VERBOSE");
    verbose = v ? atoi(v) : 0;
    const char *save = getenv("FUZZ_REPAIR_SAVE");     /* keep refused inputs there */
    uint8_t in[256];
    if (argc > 2 && !strcmp(argv[1], "--replay")) {     /* one saved input */
        FILE *f = fopen(argv[2], "rb");
        size_t len = f ? fread(in, 1, sizeof in, f) : 0;
        if (f)
            fclose(f);
        verbose = 2;
        LLVMFuzzerTestOneInput(in, len);
        return 0;
    }
    for (unsigned long i = 0; i < n; i++) {
        uint64_t s = mix(seed * 7919u + i);
        size_t len = 8 + s % 120;
        for (size_t k = 0; k < len; k++)
            in[k] = (uint8_t)(mix(s + k) >> 24);
        /* Half of them one mutation, a quarter two: damage that a repair
         * is expected to undo; the rest heavier. */
        if (s % 4 < 2)
            len = 2 + 6 + 1 + (s >> 8) % 16;
        else if (s % 4 == 2)
            len = 2 + 2 * (6 + 1) + (s >> 8) % 16;
        unsigned long refused = n_refused;
        if (save) {             /* the input under test, should it fail */
            char p[400];
            snprintf(p, sizeof p, "%s/current.bin", save);
            FILE *f = fopen(p, "wb");
            if (f) {
                fwrite(in, 1, len, f);
                fclose(f);
            }
        }
        LLVMFuzzerTestOneInput(in, len);
        if (save && n_refused != refused) {
            char p[400];
            snprintf(p, sizeof p, "%s/refused-%lu.bin", save, i);
            FILE *f = fopen(p, "wb");
            if (f) {
                fwrite(in, 1, len, f);
                fclose(f);
            }
        }
    }
    printf("fuzz_repair: %lu inputs from seed %" PRIu64 ": %lu found clean, %lu repaired "
           "(%lu of those also killed half way and recovered), %lu refused (cannot repair), "
           "%lu where the check could not run; all properties held\n", n, seed, n_clean,
           n_repaired, n_killed, n_refused, n_norun);
    return 0;
}
#endif
