/* config.c - the key/value store of the configuration file (see config.h).
 *
 * A load parses the whole file into a table of its own first, logging as
 * it goes with no lock held, then adds that table to the store under the
 * write lock.  Values are separate allocations that only a clear frees, so
 * growing the table never moves a string a reader holds. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "err.h"
#include "fileio.h"
#include "log.h"

struct cfg_entry {
    char *key, *value;
};

static struct {
    pthread_rwlock_t lock;
    struct cfg_entry *e;
    size_t n;
} S = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static void free_entries(struct cfg_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].key);
        free(e[i].value);
    }
    free(e);
}

int vd_config_split(char *line, char **key, char **value)
{
    char *s = vd_trim(line);
    if (!*s || *s == '#')
        return 1;
    char *eq = strchr(s, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    char *k = vd_trim(s), *v = vd_trim(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
        v[vl - 1] = '\0';
        v++;
    }
    *key = k;
    *value = v;
    return 0;
}

int vd_config_load(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return vd_err_errno(errno, "config file %s", path);
    struct cfg_entry *tab = NULL;
    size_t n = 0;
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *k, *v;
        int r = vd_config_split(line, &k, &v);
        if (r == 1)
            continue;
        if (r < 0) {
            vd_log("config %s:%d: ignoring line without '='", path, lineno);
            continue;
        }
        struct cfg_entry *grown = realloc(tab, (n + 1) * sizeof *grown);
        if (!grown)
            break;
        tab = grown;
        tab[n].key = vd_strdup(k);
        tab[n].value = vd_strdup(v);
        if (tab[n].key && tab[n].value) {
            n++;
        } else {
            free(tab[n].key);
            free(tab[n].value);
        }
    }
    fclose(f);
    if (n == 0) {
        free(tab);
        return 0;
    }
    pthread_rwlock_wrlock(&S.lock);
    if (S.n == 0) {
        free(S.e);
        S.e = tab;
        S.n = n;
        tab = NULL;
    } else {
        struct cfg_entry *all = realloc(S.e, (S.n + n) * sizeof *all);
        if (all) {
            memcpy(all + S.n, tab, n * sizeof *tab);
            S.e = all;
            S.n += n;
            free(tab);
            tab = NULL;
        }
    }
    pthread_rwlock_unlock(&S.lock);
    if (tab)
        free_entries(tab, n);
    return 0;
}

void vd_config_clear(void)
{
    pthread_rwlock_wrlock(&S.lock);
    struct cfg_entry *e = S.e;
    size_t n = S.n;
    S.e = NULL;
    S.n = 0;
    pthread_rwlock_unlock(&S.lock);
    free_entries(e, n);
}

/* The value of key; the caller holds the lock. */
static const char *lookup(const char *key)
{
    for (size_t i = 0; i < S.n; i++)
        if (strcasecmp(S.e[i].key, key) == 0)
            return S.e[i].value;
    return NULL;
}

const char *vd_config_get(const char *key)
{
    pthread_rwlock_rdlock(&S.lock);
    const char *v = lookup(key);
    pthread_rwlock_unlock(&S.lock);
    return v;
}

static long to_long(const char *v, long dflt)
{
    if (!v || !*v)
        return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    return *end ? dflt : n;
}

long vd_config_long(const char *key, long dflt)
{
    pthread_rwlock_rdlock(&S.lock);
    long n = to_long(lookup(key), dflt);
    pthread_rwlock_unlock(&S.lock);
    return n;
}

int vd_config_ms(const char *ours, const char *vddk, long dflt)
{
    pthread_rwlock_rdlock(&S.lock);
    long v = to_long(lookup(ours), -1);
    if (v <= 0 && vddk)
        v = to_long(lookup(vddk), -1);
    pthread_rwlock_unlock(&S.lock);
    if (v <= 0)
        v = dflt;
    return v > 3600000 ? 3600000 : (int)v;
}

int vd_config_bool(const char *key, int dflt)
{
    pthread_rwlock_rdlock(&S.lock);
    const char *v = lookup(key);
    int r = dflt;
    if (v && *v)
        r = !(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0);
    pthread_rwlock_unlock(&S.lock);
    return r;
}
