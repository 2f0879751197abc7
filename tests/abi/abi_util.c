/* abi_util.c - fixtures and helpers for the ABI tests (public API only). */
#include "abi_util.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- callbacks --------------------------------------------------------- */

static pthread_mutex_t msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_warn[2048];
static unsigned n_warn, n_log, n_panic, n_bad;

static void record(const char *fmt, va_list ap, int kind)
{
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    pthread_mutex_lock(&msg_lock);
    if (strstr(buf, "cannot open shared object"))
        n_bad++;
    if (kind == 0) {
        n_log++;
    } else if (kind == 1) {
        n_warn++;
        memcpy(last_warn, buf, sizeof last_warn);
    } else {
        n_panic++;
    }
    pthread_mutex_unlock(&msg_lock);
}

void abi_log_cb(const char *fmt, va_list ap) { record(fmt, ap, 0); }
void abi_warn_cb(const char *fmt, va_list ap) { record(fmt, ap, 1); }
void abi_panic_cb(const char *fmt, va_list ap) { record(fmt, ap, 2); }

const char *abi_last_warn(void)
{
    static char copy[2048];
    pthread_mutex_lock(&msg_lock);
    memcpy(copy, last_warn, sizeof copy);
    pthread_mutex_unlock(&msg_lock);
    return copy;
}

#define COUNTER(name, var)                                                     \
    unsigned name(void)                                                        \
    {                                                                          \
        pthread_mutex_lock(&msg_lock);                                         \
        unsigned v = var;                                                      \
        pthread_mutex_unlock(&msg_lock);                                       \
        return v;                                                              \
    }
COUNTER(abi_warn_count, n_warn)
COUNTER(abi_log_count, n_log)
COUNTER(abi_panic_count, n_panic)
COUNTER(abi_bad_message_count, n_bad)

void abi_reset_messages(void)
{
    pthread_mutex_lock(&msg_lock);
    last_warn[0] = '\0';
    n_warn = n_log = n_panic = n_bad = 0;
    pthread_mutex_unlock(&msg_lock);
}

const char *abi_err_text(VixError e)
{
    static char ring[8][256];
    static unsigned next;
    char *b = ring[next++ % 8];
    char *t = VixDiskLib_GetErrorText(e, NULL);
    snprintf(b, sizeof ring[0], "%s", t ? t : "(no text)");
    VixDiskLib_FreeErrorText(t);
    return b;
}

void abi_filters(int argc, char **argv)
{
    if (argc > 1 && argv[1][0])
        cmocka_set_test_filter(argv[1]);
    if (argc > 2 && argv[2][0])
        cmocka_set_skip_filter(argv[2]);
}

/* ---- fixtures ---------------------------------------------------------- */

int abi_lib_setup(void **state)
{
    (void)state;
    VixError e = VixDiskLib_InitEx(8, 0, abi_log_cb, abi_warn_cb, abi_panic_cb, NULL, NULL);
    if (e != VIX_OK) {
        fprintf(stderr, "VixDiskLib_InitEx failed: %lu\n", (unsigned long)e);
        return -1;
    }
    return 0;
}

int abi_lib_teardown(void **state)
{
    (void)state;
    VixDiskLib_Exit();
    return 0;
}

static char g_dir[PATH_MAX];
static VixDiskLibConnection g_conn;
#define MAX_TRACKED 64
static VixDiskLibHandle g_tracked[MAX_TRACKED];

char *abi_mkdtemp(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 16;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s.XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        fprintf(stderr, "mkdtemp %s: %s\n", p, strerror(errno));
        free(p);
        return NULL;
    }
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
    return 0;
}

void abi_rmtree(const char *dir)
{
    if (dir && dir[0] && access(dir, F_OK) == 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int abi_setup(void **state)
{
    char *d = abi_mkdtemp("vdabi");
    if (!d)
        return -1;
    snprintf(g_dir, sizeof g_dir, "%s", d);
    free(d);
    abi_reset_messages();
    memset(g_tracked, 0, sizeof g_tracked);
    g_conn = NULL;
    VixError e = VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &g_conn);
    if (e != VIX_OK || !g_conn) {
        fprintf(stderr, "VixDiskLib_ConnectEx (local) failed: %lu\n", (unsigned long)e);
        abi_rmtree(g_dir);
        return -1;
    }
    if (state)
        *state = g_dir;
    return 0;
}

int abi_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (g_tracked[i]) {
            VixDiskLib_Close(g_tracked[i]);
            g_tracked[i] = NULL;
        }
    }
    if (g_conn)
        VixDiskLib_Disconnect(g_conn);
    g_conn = NULL;
    abi_rmtree(g_dir);
    g_dir[0] = '\0';
    return 0;
}

const char *abi_dir(void) { return g_dir; }

VixDiskLibConnection abi_conn(void) { return g_conn; }

const char *abi_path(const char *name)
{
    static char ring[32][PATH_MAX];
    static unsigned next;
    char *b = ring[next++ % 32];
    int n = snprintf(b, PATH_MAX, "%s/%s", g_dir, name);
    if (n < 0 || n >= PATH_MAX)
        fail_msg("path too long: %s/%s", g_dir, name);
    return b;
}

void abi_track(VixDiskLibHandle h)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!g_tracked[i]) {
            g_tracked[i] = h;
            return;
        }
    }
    fail_msg("too many open handles in one test");
}

void abi_untrack(VixDiskLibHandle h)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (g_tracked[i] == h) {
            g_tracked[i] = NULL;
            return;
        }
    }
}

/* ---- disks ------------------------------------------------------------- */

VixDiskLibCreateParams abi_create_params(VixDiskLibDiskType type,
                                         VixDiskLibSectorType capacity)
{
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = type;
    cp.adapterType = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    cp.hwVersion = VIXDISKLIB_HWVERSION_ESX4X;
    cp.capacity = capacity;
    cp.logicalSectorSize = 512;
    cp.physicalSectorSize = 512;
    return cp;
}

VixError abi_create(const char *path, VixDiskLibDiskType type, VixDiskLibSectorType capacity)
{
    VixDiskLibCreateParams cp = abi_create_params(type, capacity);
    return VixDiskLib_Create(abi_conn(), path, &cp, NULL, NULL);
}

void abi_create_ok(const char *path, VixDiskLibDiskType type, VixDiskLibSectorType capacity)
{
    ABI_OK(abi_create(path, type, capacity));
}

VixDiskLibHandle abi_open(const char *path, uint32 flags)
{
    VixDiskLibHandle h = NULL;
    ABI_OK(VixDiskLib_Open(abi_conn(), path, flags, &h));
    assert_non_null(h);
    abi_track(h);
    return h;
}

void abi_close(VixDiskLibHandle h)
{
    abi_untrack(h);
    ABI_OK(VixDiskLib_Close(h));
}

VixDiskLibSectorType abi_capacity(VixDiskLibHandle h)
{
    VixDiskLibInfo *info = NULL;
    ABI_OK(VixDiskLib_GetInfo(h, &info));
    assert_non_null(info);
    VixDiskLibSectorType c = info->capacity;
    VixDiskLib_FreeInfo(info);
    return c;
}

/* ---- data -------------------------------------------------------------- */

static inline uint8_t pattern_byte(uint64_t off, uint32_t seed)
{
    uint64_t x = (off + 1) ^ ((uint64_t)seed << 40) ^ ((uint64_t)seed * 0x51ED27u);
    x *= 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return (uint8_t)(x >> 56);
}

void abi_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = pattern_byte(off + i, seed);
}

long abi_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern_byte(off + i, seed))
            return (long)i;
    return -1;
}

int abi_is_zero(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        if (b[i])
            return 0;
    return 1;
}

void abi_write_pattern(VixDiskLibHandle h, uint64 sector, uint64 n, uint32_t seed)
{
    size_t len = (size_t)n * VIXDISKLIB_SECTOR_SIZE;
    uint8 *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    abi_fill(buf, len, sector * VIXDISKLIB_SECTOR_SIZE, seed);
    VixError e = VixDiskLib_Write(h, sector, n, buf);
    free(buf);
    ABI_OK(e);
}

void abi_expect_pattern(VixDiskLibHandle h, uint64 sector, uint64 n, uint32_t seed)
{
    size_t len = (size_t)n * VIXDISKLIB_SECTOR_SIZE;
    uint8 *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memset(buf, 0xEE, len);
    VixError e = VixDiskLib_Read(h, sector, n, buf);
    long bad = e == VIX_OK ? abi_check(buf, len, sector * VIXDISKLIB_SECTOR_SIZE, seed) : -1;
    free(buf);
    ABI_OK(e);
    if (bad >= 0)
        fail_msg("sectors %lu+%lu: pattern %u differs at byte %ld (sector %lu)",
                 (unsigned long)sector, (unsigned long)n, seed, bad,
                 (unsigned long)(sector + (uint64)bad / VIXDISKLIB_SECTOR_SIZE));
}

void abi_expect_zero(VixDiskLibHandle h, uint64 sector, uint64 n)
{
    size_t len = (size_t)n * VIXDISKLIB_SECTOR_SIZE;
    uint8 *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memset(buf, 0xEE, len);
    VixError e = VixDiskLib_Read(h, sector, n, buf);
    int zero = e == VIX_OK && abi_is_zero(buf, len);
    free(buf);
    ABI_OK(e);
    if (!zero)
        fail_msg("sectors %lu+%lu are not all zero", (unsigned long)sector, (unsigned long)n);
}

uint64_t abi_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- files ------------------------------------------------------------- */

int abi_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t abi_list(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("opendir %s: %s", dir, strerror(errno));
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    assert_non_null(v);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof *v);
            assert_non_null(nv);
            v = nv;
        }
        v[n] = strdup(e->d_name);
        assert_non_null(v[n]);
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_names);
    *names = v;
    return n;
}

void abi_free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

size_t abi_count_prefix(const char *dir, const char *prefix)
{
    char **v;
    size_t n = abi_list(dir, &v), c = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(v[i], prefix, strlen(prefix)) == 0)
            c++;
    abi_free_list(v, n);
    return c;
}

void abi_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("fopen %s: %s", path, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0)
        fail_msg("writing %s: %s", path, strerror(errno));
}
