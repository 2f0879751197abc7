/* manifest.c - reading and writing backup-set manifests (see manifest.h)
 * with json-c.  Parsing checks every field a reader relies on (types,
 * ranges, hash lengths, the block count against the capacity, paths that
 * stay inside the set), so the rest of the tool can trust the structure. */
#include "manifest.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MANIFEST (1u << 30)

uint64_t mf_blocks_for(uint64_t capacity, uint64_t block_size)
{
    return capacity / block_size + (capacity % block_size != 0);
}

void mf_hex(const uint8_t h[MF_HASH_LEN], char out[2 * MF_HASH_LEN + 1])
{
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < MF_HASH_LEN; i++) {
        out[2 * i] = x[h[i] >> 4];
        out[2 * i + 1] = x[h[i] & 15];
    }
    out[2 * MF_HASH_LEN] = '\0';
}

static int unhex(const char *s, uint8_t h[MF_HASH_LEN])
{
    if (strlen(s) != 2 * MF_HASH_LEN)
        return -1;
    for (int i = 0; i < 2 * MF_HASH_LEN; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            h[i / 2] = (uint8_t)(v << 4);
        else
            h[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* Components: each non-empty, not "." and not ".." (".." allowed only as
 * leading components when up is set). */
static int path_ok(const char *p, int up)
{
    if (!p || !*p || p[0] == '/')
        return 0;
    int leading = 1, names = 0;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.'))
            return 0;
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (!up || !leading)
                return 0;
        } else {
            leading = 0;
            names++;
        }
        if (!e)
            break;
        p = e + 1;
        if (!*p)
            return 0;          /* trailing slash */
    }
    return names > 0;
}

int mf_safe_path(const char *p) { return path_ok(p, 0); }
int mf_safe_base(const char *p) { return path_ok(p, 1); }

/* ---- parsing -------------------------------------------------------------- */

struct ctx {
    const char *name;
    char *err;
    size_t errlen;
    int failed;
};

__attribute__((format(printf, 2, 3)))
static int bad(struct ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return -1;
    c->failed = 1;
    int n = snprintf(c->err, c->errlen, "%s: ", c->name);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static json_object *field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? v : NULL;
}

/* A string field: required (NULL is an error) or optional (absent or null
 * gives NULL).  *out is malloc'ed. */
static int get_str(struct ctx *c, json_object *o, const char *where, const char *k,
                   int required, char **out)
{
    json_object *v = field(o, k);
    *out = NULL;
    if (!v || json_object_is_type(v, json_type_null)) {
        if (required)
            return bad(c, "%s: \"%s\" is missing", where, k);
        return 0;
    }
    if (!json_object_is_type(v, json_type_string))
        return bad(c, "%s: \"%s\" is not a string", where, k);
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return bad(c, "%s: \"%s\" holds a NUL character", where, k);
    if (!(*out = strdup(s)))
        return bad(c, "out of memory");
    return 0;
}

static int get_u64(struct ctx *c, json_object *o, const char *where, const char *k,
                   uint64_t max, uint64_t *out)
{
    json_object *v = field(o, k);
    if (!v)
        return bad(c, "%s: \"%s\" is missing", where, k);
    if (!json_object_is_type(v, json_type_int))
        return bad(c, "%s: \"%s\" is not an integer", where, k);
    errno = 0;
    uint64_t u = json_object_get_uint64(v);
    if (errno || json_object_get_int64(v) < 0 || u > max)
        return bad(c, "%s: \"%s\" is out of range", where, k);
    *out = u;
    return 0;
}

static int parse_disk(struct ctx *c, json_object *o, const char *vmwhere, size_t i,
                      uint64_t bs, struct mf_disk *d)
{
    char where[160];
    snprintf(where, sizeof where, "%s disk %zu", vmwhere, i);
    if (!json_object_is_type(o, json_type_object))
        return bad(c, "%s is not an object", where);
    uint64_t key;
    char *hex = NULL;
    if (get_u64(c, o, where, "key", INT32_MAX, &key) < 0 ||
        get_str(c, o, where, "label", 0, &d->label) < 0 ||
        get_str(c, o, where, "source", 1, &d->source) < 0 ||
        get_str(c, o, where, "file", 1, &d->file) < 0 ||
        get_str(c, o, where, "format", 1, &d->format) < 0 ||
        get_str(c, o, where, "base", 0, &d->base) < 0 ||
        get_u64(c, o, where, "capacity", UINT64_MAX / 2, &d->capacity) < 0 ||
        get_u64(c, o, where, "allocated", UINT64_MAX, &d->allocated) < 0 ||
        get_u64(c, o, where, "stored", UINT64_MAX, &d->stored) < 0 ||
        get_str(c, o, where, "sha256", 1, &hex) < 0)
        return -1;
    d->key = (int)key;
    int rc = unhex(hex, d->sha256);
    free(hex);
    if (rc < 0)
        return bad(c, "%s: \"sha256\" is not 64 hex digits", where);
    if (!mf_safe_path(d->file))
        return bad(c, "%s: \"file\" %s leaves the set directory", where, d->file);
    if (d->base && !mf_safe_base(d->base))
        return bad(c, "%s: \"base\" %s is not a relative path", where, d->base);
    if (strcmp(d->format, "streamOptimized") && strcmp(d->format, "monolithicSparse"))
        return bad(c, "%s: unknown \"format\" %s", where, d->format);
    if (d->capacity % 512)
        return bad(c, "%s: \"capacity\" %llu is not a whole number of sectors", where,
                   (unsigned long long)d->capacity);
    json_object *bl = field(o, "blocks");
    if (!bl || !json_object_is_type(bl, json_type_array))
        return bad(c, "%s: \"blocks\" is missing or not an array", where);
    d->nblocks = mf_blocks_for(d->capacity, bs);
    if ((uint64_t)json_object_array_length(bl) != d->nblocks)
        return bad(c, "%s: %zu block hashes for a capacity of %llu bytes (%llu expected)",
                   where, json_object_array_length(bl), (unsigned long long)d->capacity,
                   (unsigned long long)d->nblocks);
    if (d->nblocks && !(d->blocks = malloc(d->nblocks * sizeof *d->blocks)))
        return bad(c, "out of memory");
    for (uint64_t b = 0; b < d->nblocks; b++) {
        json_object *v = json_object_array_get_idx(bl, (size_t)b);
        if (!json_object_is_type(v, json_type_string) ||
            unhex(json_object_get_string(v), d->blocks[b]) < 0)
            return bad(c, "%s: block %llu: not 64 hex digits", where, (unsigned long long)b);
    }
    return 0;
}

static int parse_vm(struct ctx *c, json_object *o, size_t i, uint64_t bs, struct mf_vm *vm)
{
    char where[64];
    snprintf(where, sizeof where, "vm %zu", i);
    if (!json_object_is_type(o, json_type_object))
        return bad(c, "%s is not an object", where);
    if (get_str(c, o, where, "moref", 1, &vm->moref) < 0 ||
        get_str(c, o, where, "name", 1, &vm->name) < 0 ||
        get_str(c, o, where, "uuid", 0, &vm->uuid) < 0 ||
        get_str(c, o, where, "host", 0, &vm->host) < 0 ||
        get_str(c, o, where, "snapshot", 1, &vm->snapshot) < 0 ||
        get_str(c, o, where, "config", 1, &vm->config) < 0)
        return -1;
    snprintf(where, sizeof where, "vm %.40s", vm->moref);
    if (!mf_safe_path(vm->config))
        return bad(c, "%s: \"config\" %s leaves the set directory", where, vm->config);
    json_object *disks = field(o, "disks");
    if (!disks || !json_object_is_type(disks, json_type_array))
        return bad(c, "%s: \"disks\" is missing or not an array", where);
    size_t n = json_object_array_length(disks);
    if (n && !(vm->disks = calloc(n, sizeof *vm->disks)))
        return bad(c, "out of memory");
    for (size_t k = 0; k < n; k++) {
        vm->ndisks = k + 1;
        if (parse_disk(c, json_object_array_get_idx(disks, k), where, k, bs, &vm->disks[k]) < 0)
            return -1;
        for (size_t j = 0; j < k; j++)
            if (vm->disks[j].key == vm->disks[k].key)
                return bad(c, "%s: device key %d appears twice", where, vm->disks[k].key);
    }
    return 0;
}

int mf_parse(const char *text, size_t len, const char *name, struct manifest **out,
             char *err, size_t errlen)
{
    struct ctx c = { name, err, errlen, 0 };
    *out = NULL;
    if (len > MAX_MANIFEST || len > INT32_MAX)
        return bad(&c, "too large to be a manifest");
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return bad(&c, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || je != json_tokener_success) {
        json_object_put(root);
        return bad(&c, "not valid JSON (%s at byte %zu)",
                   je == json_tokener_continue ? "unexpected end"
                   : json_tokener_error_desc(je), used);
    }
    for (; used < len; used++)
        if (!strchr(" \t\r\n", text[used])) {
            json_object_put(root);
            return bad(&c, "text after the JSON document at byte %zu", used);
        }
    struct manifest *m = calloc(1, sizeof *m);
    if (!m) {
        json_object_put(root);
        return bad(&c, "out of memory");
    }
    char *fmt = NULL;
    uint64_t version = 0;
    json_object *vms;
    if (!json_object_is_type(root, json_type_object)) {
        bad(&c, "not a JSON object");
    } else if (get_str(&c, root, "manifest", "format", 1, &fmt) == 0 && strcmp(fmt, MF_FORMAT)) {
        bad(&c, "not a backup-set manifest (format \"%s\")", fmt);
    } else if (c.failed || get_u64(&c, root, "manifest", "version", UINT32_MAX, &version) < 0) {
        /* reported */
    } else if (version != MF_VERSION) {
        bad(&c, "manifest version %llu is not supported (this vddk reads version %d)",
            (unsigned long long)version, MF_VERSION);
    } else if (get_str(&c, root, "manifest", "tool", 0, &m->tool) < 0 ||
               get_str(&c, root, "manifest", "server", 0, &m->server) < 0 ||
               get_str(&c, root, "manifest", "started", 0, &m->started) < 0 ||
               get_str(&c, root, "manifest", "finished", 0, &m->finished) < 0 ||
               get_str(&c, root, "manifest", "base", 0, &m->base) < 0 ||
               get_u64(&c, root, "manifest", "block_size", 1u << 30, &m->block_size) < 0) {
        /* reported */
    } else if (m->block_size < 4096 || (m->block_size & (m->block_size - 1))) {
        bad(&c, "\"block_size\" %llu is not a power of two of at least 4096",
            (unsigned long long)m->block_size);
    } else if (m->base && !mf_safe_base(m->base)) {
        bad(&c, "\"base\" %s is not a relative path", m->base);
    } else if (!(vms = field(root, "vms")) || !json_object_is_type(vms, json_type_array)) {
        bad(&c, "\"vms\" is missing or not an array");
    } else {
        size_t n = json_object_array_length(vms);
        if (n && !(m->vms = calloc(n, sizeof *m->vms)))
            bad(&c, "out of memory");
        for (size_t i = 0; !c.failed && i < n; i++) {
            m->nvms = i + 1;
            if (parse_vm(&c, json_object_array_get_idx(vms, i), i, m->block_size, &m->vms[i]) < 0)
                break;
            for (size_t j = 0; j < i; j++)
                if (strcmp(m->vms[j].moref, m->vms[i].moref) == 0)
                    bad(&c, "vm %s appears twice", m->vms[i].moref);
        }
    }
    free(fmt);
    json_object_put(root);
    if (c.failed) {
        mf_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int mf_load(const char *dir, struct manifest **out, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, MF_NAME);
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 errno == ENOENT ? " (not a complete backup set)" : "");
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= MAX_MANIFEST) {
            free(buf);
            buf = NULL;
            break;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
        cap *= 2;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        snprintf(err, errlen, "%s: %s", path, buf ? "read error" : "too large or out of memory");
        free(buf);
        return -1;
    }
    int rc = mf_parse(buf, n, path, out, err, errlen);
    free(buf);
    return rc;
}

/* ---- writing -------------------------------------------------------------- */

/* json-c writes a NULL value as null. */
static json_object *str_or_null(const char *s, int *is_null)
{
    *is_null = !s;
    return s ? json_object_new_string(s) : NULL;
}

static json_object *hex_obj(const uint8_t h[MF_HASH_LEN])
{
    char x[2 * MF_HASH_LEN + 1];
    mf_hex(h, x);
    return json_object_new_string(x);
}

/* json-c takes ownership of v; a NULL v (out of memory) is remembered. */
static void add(json_object *o, const char *k, json_object *v, int *ok)
{
    if (!v || json_object_object_add(o, k, v) < 0)
        *ok = 0;
}

/* A string member, null when s is NULL. */
static void add_str(json_object *o, const char *k, const char *s, int *ok)
{
    int is_null;
    json_object *v = str_or_null(s, &is_null);
    if (is_null) {
        if (json_object_object_add(o, k, NULL) < 0)
            *ok = 0;
        return;
    }
    add(o, k, v, ok);
}

static json_object *disk_json(const struct mf_disk *d, int *ok)
{
    json_object *o = json_object_new_object();
    if (!o) {
        *ok = 0;
        return NULL;
    }
    add(o, "key", json_object_new_int(d->key), ok);
    add_str(o, "label", d->label, ok);
    add_str(o, "source", d->source, ok);
    add(o, "capacity", json_object_new_uint64(d->capacity), ok);
    add_str(o, "file", d->file, ok);
    add_str(o, "format", d->format, ok);
    add_str(o, "base", d->base, ok);
    add(o, "allocated", json_object_new_uint64(d->allocated), ok);
    add(o, "stored", json_object_new_uint64(d->stored), ok);
    add(o, "sha256", hex_obj(d->sha256), ok);
    json_object *bl = json_object_new_array_ext((int)(d->nblocks < INT32_MAX ? d->nblocks : 0));
    for (uint64_t b = 0; bl && *ok && b < d->nblocks; b++) {
        json_object *h = hex_obj(d->blocks[b]);
        if (!h || json_object_array_add(bl, h) < 0)
            *ok = 0;
    }
    add(o, "blocks", bl, ok);
    return o;
}

char *mf_format(const struct manifest *m)
{
    int ok = 1;
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    add(root, "format", json_object_new_string(MF_FORMAT), &ok);
    add(root, "version", json_object_new_int(MF_VERSION), &ok);
    add_str(root, "tool", m->tool, &ok);
    add_str(root, "server", m->server, &ok);
    add_str(root, "started", m->started, &ok);
    add_str(root, "finished", m->finished, &ok);
    add(root, "block_size", json_object_new_uint64(m->block_size), &ok);
    add_str(root, "base", m->base, &ok);
    json_object *vms = json_object_new_array();
    for (size_t i = 0; vms && ok && i < m->nvms; i++) {
        const struct mf_vm *v = &m->vms[i];
        json_object *o = json_object_new_object(), *disks = json_object_new_array();
        if (!o || !disks) {
            json_object_put(o);
            json_object_put(disks);
            ok = 0;
            break;
        }
        add_str(o, "moref", v->moref, &ok);
        add_str(o, "name", v->name, &ok);
        add_str(o, "uuid", v->uuid, &ok);
        add_str(o, "host", v->host, &ok);
        add_str(o, "snapshot", v->snapshot, &ok);
        add_str(o, "config", v->config, &ok);
        for (size_t k = 0; ok && k < v->ndisks; k++) {
            json_object *d = disk_json(&v->disks[k], &ok);
            if (d && json_object_array_add(disks, d) < 0) {
                json_object_put(d);
                ok = 0;
            }
        }
        add(o, "disks", disks, &ok);
        if (json_object_array_add(vms, o) < 0) {
            json_object_put(o);
            ok = 0;
        }
    }
    add(root, "vms", vms, &ok);
    const char *s = ok ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                        JSON_C_TO_STRING_SPACED |
                                                        JSON_C_TO_STRING_NOSLASHESCAPE)
                       : NULL;
    char *text = s ? strdup(s) : NULL;
    json_object_put(root);
    return text;
}

/* ---- lookup and freeing ------------------------------------------------------ */

const struct mf_vm *mf_find_vm(const struct manifest *m, const char *moref)
{
    for (size_t i = 0; m && i < m->nvms; i++)
        if (strcmp(m->vms[i].moref, moref) == 0)
            return &m->vms[i];
    return NULL;
}

const struct mf_disk *mf_find_disk(const struct mf_vm *vm, int key)
{
    for (size_t i = 0; vm && i < vm->ndisks; i++)
        if (vm->disks[i].key == key)
            return &vm->disks[i];
    return NULL;
}

void mf_free(struct manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nvms; i++) {
        struct mf_vm *v = &m->vms[i];
        for (size_t k = 0; k < v->ndisks; k++) {
            struct mf_disk *d = &v->disks[k];
            free(d->label);
            free(d->source);
            free(d->file);
            free(d->format);
            free(d->base);
            free(d->blocks);
        }
        free(v->disks);
        free(v->moref);
        free(v->name);
        free(v->uuid);
        free(v->host);
        free(v->snapshot);
        free(v->config);
    }
    free(m->vms);
    free(m->tool);
    free(m->server);
    free(m->started);
    free(m->finished);
    free(m->base);
    free(m);
}
