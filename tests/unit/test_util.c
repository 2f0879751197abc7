/* test_util.c - temp directories and file crafting for the unit tests. */
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[PATH_MAX];

struct tu_dirsnap {
    char **names;
    unsigned char **data;
    size_t *len;
    size_t n;
    struct tu_dirsnap *next;   /* live snapshots, freed at teardown */
};

static struct tu_dirsnap *g_snaps;

/* ---- temp directory --------------------------------------------------- */

int tu_setup(void **state)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/vdunit.XXXXXX", base);
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", g_dir, strerror(errno));
        return -1;
    }
    vd_err_clear();
    if (state)
        *state = g_dir;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
    return 0;
}

int tu_teardown(void **state)
{
    (void)state;
    while (g_snaps)
        tu_dirsnap_free(g_snaps);
    if (g_dir[0])
        nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    g_dir[0] = '\0';
    return 0;
}

const char *tu_dir(void) { return g_dir; }

const char *tu_path(const char *name)
{
    static char ring[32][PATH_MAX];
    static unsigned next;
    char *b = ring[next++ % 32];
    int n = snprintf(b, PATH_MAX, "%s/%s", g_dir, name);
    if (n < 0 || n >= PATH_MAX)
        fail_msg("path too long: %s/%s", g_dir, name);
    return b;
}

/* ---- files ------------------------------------------------------------ */

int tu_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

uint64_t tu_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

unsigned char *tu_read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0)
        fail_msg("fstat %s: %s", path, strerror(errno));
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    assert_non_null(buf);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r <= 0)
            fail_msg("read %s: %s", path, r < 0 ? strerror(errno) : "short file");
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

void tu_write_all(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        fail_msg("create %s: %s", path, strerror(errno));
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w <= 0)
            fail_msg("write %s: %s", path, strerror(errno));
        done += (size_t)w;
    }
    close(fd);
}

void tu_pwrite(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    ssize_t w = pwrite(fd, buf, len, (off_t)off);
    if (w < 0 || (size_t)w != len)
        fail_msg("pwrite %s @%llu: %s", path, (unsigned long long)off, strerror(errno));
    close(fd);
}

void tu_pread(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    ssize_t r = pread(fd, buf, len, (off_t)off);
    if (r < 0 || (size_t)r != len)
        fail_msg("pread %s @%llu len %zu: %s", path, (unsigned long long)off, len,
                 r < 0 ? strerror(errno) : "short read");
    close(fd);
}

static void put_le(const char *path, uint64_t off, uint64_t v, size_t n)
{
    unsigned char b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    tu_pwrite(path, off, b, n);
}

void tu_put_u8(const char *path, uint64_t off, uint8_t v) { put_le(path, off, v, 1); }
void tu_put_u16(const char *path, uint64_t off, uint16_t v) { put_le(path, off, v, 2); }
void tu_put_u32(const char *path, uint64_t off, uint32_t v) { put_le(path, off, v, 4); }
void tu_put_u64(const char *path, uint64_t off, uint64_t v) { put_le(path, off, v, 8); }

static uint64_t get_le(const unsigned char *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

uint32_t tu_get_u32(const char *path, uint64_t off)
{
    unsigned char b[4];
    tu_pread(path, off, b, 4);
    return (uint32_t)get_le(b, 4);
}

uint64_t tu_get_u64(const char *path, uint64_t off)
{
    unsigned char b[8];
    tu_pread(path, off, b, 8);
    return get_le(b, 8);
}

void tu_truncate(const char *path, uint64_t len)
{
    if (truncate(path, (off_t)len) != 0)
        fail_msg("truncate %s: %s", path, strerror(errno));
}

void tu_unlink(const char *path)
{
    if (unlink(path) != 0)
        fail_msg("unlink %s: %s", path, strerror(errno));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tu_list_dir(const char *dir, char ***names)
{
    DIR *dp = opendir(dir);
    if (!dp)
        fail_msg("opendir %s: %s", dir, strerror(errno));
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    assert_non_null(v);
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            assert_non_null(v);
        }
        v[n] = strdup(de->d_name);
        assert_non_null(v[n]);
        n++;
    }
    closedir(dp);
    qsort(v, n, sizeof *v, cmp_names);
    *names = v;
    return n;
}

void tu_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}


struct tu_dirsnap *tu_dir_snapshot(const char *dir)
{
    struct tu_dirsnap *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->n = tu_list_dir(dir, &s->names);
    s->data = calloc(s->n ? s->n : 1, sizeof *s->data);
    s->len = calloc(s->n ? s->n : 1, sizeof *s->len);
    assert_non_null(s->data);
    assert_non_null(s->len);
    char p[PATH_MAX];
    for (size_t i = 0; i < s->n; i++) {
        if (snprintf(p, sizeof p, "%s/%s", dir, s->names[i]) >= (int)sizeof p)
            fail_msg("path too long");
        s->data[i] = tu_read_all(p, &s->len[i]);
    }
    s->next = g_snaps;
    g_snaps = s;
    return s;
}

void tu_assert_dir_unchanged(const struct tu_dirsnap *s, const char *dir)
{
    char **names;
    size_t n = tu_list_dir(dir, &names);
    char why[2048] = "";
    if (n != s->n) {
        int k = snprintf(why, sizeof why, "directory had %zu files, now %zu:", s->n, n);
        for (size_t i = 0; i < n && k > 0 && (size_t)k < sizeof why; i++)
            k += snprintf(why + k, sizeof why - (size_t)k, " %s", names[i]);
    }
    char p[PATH_MAX];
    for (size_t i = 0; i < n && !why[0]; i++) {
        if (strcmp(names[i], s->names[i]) != 0) {
            snprintf(why, sizeof why, "file %s replaced by %s", s->names[i], names[i]);
            break;
        }
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p)
            fail_msg("path too long");
        size_t len;
        unsigned char *now = tu_read_all(p, &len);
        if (len != s->len[i])
            snprintf(why, sizeof why, "%s changed size: %zu -> %zu", names[i], s->len[i], len);
        for (size_t j = 0; j < len && !why[0]; j++)
            if (now[j] != s->data[i][j])
                snprintf(why, sizeof why, "%s changed at byte %zu: 0x%02x -> 0x%02x",
                         names[i], j, s->data[i][j], now[j]);
        free(now);
    }
    tu_free_names(names, n);
    if (why[0])
        fail_msg("%s", why);
}

void tu_dirsnap_free(struct tu_dirsnap *s)
{
    if (!s)
        return;
    for (struct tu_dirsnap **pp = &g_snaps; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->data);
    free(s->len);
    tu_free_names(s->names, s->n);
    free(s);
}

/* ---- text edits -------------------------------------------------------- */

void tu_replace_in_file(const char *path, const char *old, const char *new_text)
{
    size_t len;
    char *t = (char *)tu_read_all(path, &len);
    char *hit = strstr(t, old);
    if (!hit)
        fail_msg("\"%s\" not found in %s", old, path);
    size_t pre = (size_t)(hit - t), ol = strlen(old), nl = strlen(new_text);
    char *out = malloc(len - ol + nl + 1);
    assert_non_null(out);
    memcpy(out, t, pre);
    memcpy(out + pre, new_text, nl);
    memcpy(out + pre + nl, hit + ol, len - pre - ol);
    tu_write_all(path, out, len - ol + nl);
    free(out);
    free(t);
}

int tu_desc_value(const char *text, const char *key, char *buf, size_t size)
{
    size_t kl = strlen(key);
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            if (*v == '"')
                v++;
            size_t n = strcspn(v, "\"\r\n");
            if (n >= size)
                return -1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* ---- sparse extents ----------------------------------------------------- */

void tu_read_sparse_hdr(const char *path, struct tu_sparse_hdr *h)
{
    unsigned char b[512];
    tu_pread(path, 0, b, sizeof b);
    h->magic = (uint32_t)get_le(b + TU_H_MAGIC, 4);
    h->version = (uint32_t)get_le(b + TU_H_VERSION, 4);
    h->flags = (uint32_t)get_le(b + TU_H_FLAGS, 4);
    h->capacity = get_le(b + TU_H_CAPACITY, 8);
    h->grain = get_le(b + TU_H_GRAIN, 8);
    h->desc_off = get_le(b + TU_H_DESC_OFF, 8);
    h->desc_size = get_le(b + TU_H_DESC_SIZE, 8);
    h->num_gtes = (uint32_t)get_le(b + TU_H_NUM_GTES, 4);
    h->rgd = get_le(b + TU_H_RGD, 8);
    h->gd = get_le(b + TU_H_GD, 8);
    h->overhead = get_le(b + TU_H_OVERHEAD, 8);
    h->unclean = b[TU_H_UNCLEAN];
    memcpy(h->nl, b + TU_H_NL1, 4);
    h->compress = (uint16_t)get_le(b + TU_H_COMPRESS, 2);
}

uint32_t tu_gde(const char *path, const struct tu_sparse_hdr *h, uint64_t gt, int redundant)
{
    uint64_t base = redundant ? h->rgd : h->gd;
    return tu_get_u32(path, base * 512 + gt * 4);
}

uint64_t tu_gte_offset(const char *path, const struct tu_sparse_hdr *h, uint64_t g,
                       int redundant)
{
    assert_true(h->num_gtes > 0);
    uint32_t gt = tu_gde(path, h, g / h->num_gtes, redundant);
    assert_true(gt != 0);
    return (uint64_t)gt * 512 + (g % h->num_gtes) * 4;
}

uint32_t tu_gte(const char *path, const struct tu_sparse_hdr *h, uint64_t g, int redundant)
{
    return tu_get_u32(path, tu_gte_offset(path, h, g, redundant));
}

void tu_set_gte(const char *path, const struct tu_sparse_hdr *h, uint64_t g, int redundant,
                uint32_t v)
{
    tu_put_u32(path, tu_gte_offset(path, h, g, redundant), v);
}

char *tu_embedded_desc(const char *path)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(path, &h);
    assert_true(h.desc_off > 0 && h.desc_size > 0 && h.desc_size < 10000);
    size_t n = (size_t)h.desc_size * 512;
    char *t = calloc(1, n + 1);
    assert_non_null(t);
    tu_pread(path, h.desc_off * 512, t, n);
    return t; /* NUL-terminated at the first NUL of the area */
}

void tu_set_embedded_desc(const char *path, const char *text)
{
    struct tu_sparse_hdr h;
    tu_read_sparse_hdr(path, &h);
    size_t n = (size_t)h.desc_size * 512, tl = strlen(text);
    if (tl > n)
        fail_msg("crafted descriptor (%zu bytes) exceeds the %zu-byte area", tl, n);
    char *area = calloc(1, n);
    assert_non_null(area);
    memcpy(area, text, tl);
    tu_pwrite(path, h.desc_off * 512, area, n);
    free(area);
}

void tu_replace_in_embedded(const char *path, const char *old, const char *new_text)
{
    char *t = tu_embedded_desc(path);
    char *hit = strstr(t, old);
    if (!hit)
        fail_msg("\"%s\" not found in the embedded descriptor of %s", old, path);
    size_t pre = (size_t)(hit - t), ol = strlen(old), nl = strlen(new_text);
    size_t len = strlen(t);
    char *out = malloc(len - ol + nl + 1);
    assert_non_null(out);
    memcpy(out, t, pre);
    memcpy(out + pre, new_text, nl);
    memcpy(out + pre + nl, hit + ol, len - pre - ol + 1);
    tu_set_embedded_desc(path, out);
    free(out);
    free(t);
}

/* ---- patterns ------------------------------------------------------------ */

static uint8_t pat_byte(uint64_t off, uint32_t seed)
{
    uint64_t x = off * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed << 32 | seed);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    uint8_t b = (uint8_t)x;
    return b ? b : 0x5a; /* never zero, so a zero read is always a mismatch */
}

void tu_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = pat_byte(off + i, seed);
}

long tu_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pat_byte(off + i, seed))
            return (long)i;
    return -1;
}

int tu_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- engine shortcuts ----------------------------------------------------- */

int tu_create(const char *path, enum vmdk_type type, uint64_t capacity, uint64_t split)
{
    struct vmdk_create_params p;
    memset(&p, 0, sizeof p);
    p.type = type;
    p.capacity = capacity;
    p.split_size = split;
    return vmdk_create(path, &p);
}

void tu_write_pattern(vmdk_disk *d, uint64_t off, size_t len, uint32_t seed)
{
    void *b = malloc(len ? len : 1);
    assert_non_null(b);
    tu_fill(b, len, off, seed);
    int rc = vmdk_pwrite(d, b, len, off);
    if (rc != 0)
        fail_msg("vmdk_pwrite(off %llu, len %zu) = %d: %s", (unsigned long long)off, len,
                 rc, vd_err_msg());
    free(b);
}

void tu_expect_pattern(vmdk_disk *d, uint64_t off, size_t len, uint32_t seed)
{
    void *b = malloc(len ? len : 1);
    assert_non_null(b);
    memset(b, 0, len);
    int rc = vmdk_pread(d, b, len, off);
    if (rc != 0)
        fail_msg("vmdk_pread(off %llu, len %zu) = %d: %s", (unsigned long long)off, len, rc,
                 vd_err_msg());
    long bad = tu_check(b, len, off, seed);
    if (bad >= 0)
        fail_msg("pattern %u mismatch at disk offset %llu (read of %zu at %llu)", seed,
                 (unsigned long long)(off + (uint64_t)bad), len, (unsigned long long)off);
    free(b);
}

void tu_expect_zero(vmdk_disk *d, uint64_t off, size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    memset(b, 0xee, len);
    int rc = vmdk_pread(d, b, len, off);
    if (rc != 0)
        fail_msg("vmdk_pread(off %llu, len %zu) = %d: %s", (unsigned long long)off, len, rc,
                 vd_err_msg());
    for (size_t i = 0; i < len; i++)
        if (b[i])
            fail_msg("expected zeros, byte at disk offset %llu is 0x%02x",
                     (unsigned long long)(off + i), b[i]);
    free(b);
}

void tu_status_map(vmdk_disk *d, uint64_t off, uint64_t unit, size_t units,
                   int single_link, int *st)
{
    for (size_t i = 0; i < units; i++)
        st[i] = -1;
    uint64_t end = off + unit * units, pos = off;
    while (pos < end) {
        uint64_t run = 0;
        int s = -1;
        int rc = vmdk_block_status(d, pos, end - pos, single_link, &run, &s);
        if (rc != 0)
            fail_msg("vmdk_block_status(%llu, %llu) = %d: %s", (unsigned long long)pos,
                     (unsigned long long)(end - pos), rc, vd_err_msg());
        if (run < 1 || run > end - pos)
            fail_msg("block_status at %llu: run %llu outside 1..%llu",
                     (unsigned long long)pos, (unsigned long long)run,
                     (unsigned long long)(end - pos));
        if (s != VMDK_DATA && s != VMDK_ZERO && s != VMDK_HOLE)
            fail_msg("block_status at %llu: bad status %d", (unsigned long long)pos, s);
        for (uint64_t u = (pos - off) / unit; u <= (pos + run - 1 - off) / unit; u++) {
            if (st[u] != -1 && st[u] != s)
                fail_msg("unit %llu reported both %d and %d", (unsigned long long)u, st[u], s);
            st[u] = s;
        }
        pos += run;
    }
}

void tu_shadow_init(struct tu_shadow *s, uint64_t cap)
{
    s->cap = cap;
    s->buf = calloc(1, cap ? cap : 1);
    assert_non_null(s->buf);
}

void tu_shadow_free(struct tu_shadow *s)
{
    free(s->buf);
    s->buf = NULL;
}

void tu_shadow_write(vmdk_disk *d, struct tu_shadow *s, uint64_t off, size_t len,
                     uint32_t seed)
{
    assert_true(off + len <= s->cap);
    tu_write_pattern(d, off, len, seed);
    tu_fill(s->buf + off, len, off, seed);
}

void tu_shadow_verify_range(vmdk_disk *d, const struct tu_shadow *s, uint64_t off,
                            size_t len)
{
    uint8_t *b = malloc(len ? len : 1);
    assert_non_null(b);
    memset(b, 0xee, len);
    int rc = vmdk_pread(d, b, len, off);
    if (rc != 0)
        fail_msg("vmdk_pread(off %llu, len %zu) = %d: %s", (unsigned long long)off, len, rc,
                 vd_err_msg());
    for (size_t i = 0; i < len; i++)
        if (b[i] != s->buf[off + i])
            fail_msg("disk offset %llu reads 0x%02x, expected 0x%02x (read of %zu at %llu)",
                     (unsigned long long)(off + i), b[i], s->buf[off + i], len,
                     (unsigned long long)off);
    free(b);
}

void tu_shadow_verify(vmdk_disk *d, const struct tu_shadow *s)
{
    /* odd piece size so reads start at every kind of misalignment */
    const size_t piece = 3 * 65536 + 4097;
    for (uint64_t off = 0; off < s->cap; off += piece) {
        size_t n = (size_t)(s->cap - off < piece ? s->cap - off : piece);
        tu_shadow_verify_range(d, s, off, n);
    }
}

uint32_t tu_cid(vmdk_disk *d, int link)
{
    struct vmdk_link_info li;
    TU_OK(vmdk_link_info(d, link, &li));
    return li.cid;
}

uint32_t tu_cid_of(const char *path)
{
    vmdk_disk *d = NULL;
    TU_OK(vmdk_open(path, VMDK_OPEN_RDONLY | VMDK_OPEN_NOLOCK | VMDK_OPEN_SINGLE_LINK, &d));
    uint32_t c = tu_cid(d, 0);
    TU_OK(vmdk_close(d));
    return c;
}
