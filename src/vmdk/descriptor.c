/* descriptor.c - parse and rewrite VMDK text descriptors.
 *
 * Every line is kept, in order, with its original text.  Only lines whose
 * value changes are re-rendered, so comments, blank lines, unknown header
 * keys and unknown ddb keys survive a rewrite untouched. */
#include "descriptor.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../util/err.h"
#include "../util/fileio.h"

static void line_free(struct desc_line *l)
{
    free(l->text);
    free(l->key);
    free(l->value);
    free(l->ext.type);
    free(l->ext.file);
    memset(l, 0, sizeof *l);
}

void desc_free(struct descriptor *d)
{
    for (size_t i = 0; i < d->nlines; i++)
        line_free(&d->lines[i]);
    free(d->lines);
    memset(d, 0, sizeof *d);
}

/* Insert an empty line at index pos; returns it or NULL. */
static struct desc_line *insert_line(struct descriptor *d, size_t pos)
{
    if (d->nlines == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 32;
        struct desc_line *n = realloc(d->lines, ncap * sizeof *n);
        if (!n)
            return NULL;
        d->lines = n;
        d->cap = ncap;
    }
    memmove(&d->lines[pos + 1], &d->lines[pos], (d->nlines - pos) * sizeof *d->lines);
    d->nlines++;
    memset(&d->lines[pos], 0, sizeof d->lines[pos]);
    return &d->lines[pos];
}

static const char *access_name(enum desc_access a)
{
    switch (a) {
    case DESC_RDONLY: return "RDONLY";
    case DESC_NOACCESS: return "NOACCESS";
    default: return "RW";
    }
}

/* Header keys VMware writes without quotes. */
static int header_key_bare(const char *key)
{
    return strcasecmp(key, "version") == 0 || strcasecmp(key, "CID") == 0 ||
           strcasecmp(key, "parentCID") == 0;
}

static int is_ddb_key(const char *key)
{
    return strncasecmp(key, "ddb.", 4) == 0;
}

static int render(struct desc_line *l)
{
    char *t = NULL;
    switch (l->kind) {
    case DESC_HEADER:
        t = l->quoted ? vd_asprintf("%s=\"%s\"", l->key, l->value)
                      : vd_asprintf("%s=%s", l->key, l->value);
        break;
    case DESC_DDB:
        t = vd_asprintf("%s = \"%s\"", l->key, l->value);
        break;
    case DESC_EXTENT:
        if (!l->ext.file)
            t = vd_asprintf("%s %" PRIu64 " %s", access_name(l->ext.access),
                            l->ext.sectors, l->ext.type);
        else if (l->ext.has_offset)
            t = vd_asprintf("%s %" PRIu64 " %s \"%s\" %" PRIu64, access_name(l->ext.access),
                            l->ext.sectors, l->ext.type, l->ext.file, l->ext.offset);
        else
            t = vd_asprintf("%s %" PRIu64 " %s \"%s\"", access_name(l->ext.access),
                            l->ext.sectors, l->ext.type, l->ext.file);
        break;
    default:
        t = vd_strdup(l->text ? l->text : "");
        break;
    }
    if (!t)
        return vd_err_set(VD_E_NOMEM, "out of memory rendering descriptor line");
    free(l->text);
    l->text = t;
    return 0;
}

static char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Cut the next token (quoted or bare) from *pp.  Returns NULL at end of
 * line, sets *err on an unterminated quote. */
static char *next_token(char **pp, int *quoted, int *err)
{
    char *p = skip_ws(*pp);
    *quoted = 0;
    if (!*p)
        return NULL;
    char *start;
    if (*p == '"') {
        start = ++p;
        char *q = strchr(p, '"');
        if (!q) {
            *err = 1;
            return NULL;
        }
        *q = '\0';
        *pp = q + 1;
        *quoted = 1;
        return start;
    }
    start = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    *pp = p;
    return start;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_extent(struct desc_line *l, char *p, const char *name, size_t lineno)
{
    int quoted, qerr = 0;
    char *acc = next_token(&p, &quoted, &qerr);
    if (strcasecmp(acc, "RW") == 0)
        l->ext.access = DESC_RW;
    else if (strcasecmp(acc, "RDONLY") == 0)
        l->ext.access = DESC_RDONLY;
    else
        l->ext.access = DESC_NOACCESS;

    char *size = next_token(&p, &quoted, &qerr);
    if (!size || parse_u64(size, &l->ext.sectors) < 0)
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: extent line has no valid size in sectors",
                          name, lineno);
    if (l->ext.sectors > (UINT64_MAX >> 10))
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: extent size %" PRIu64 " sectors is too large",
                          name, lineno, l->ext.sectors);
    char *type = next_token(&p, &quoted, &qerr);
    if (!type)
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: extent line has no type", name, lineno);
    /* Types are bare words (FLAT, SPARSE, VMFSSPARSE, ...). */
    if (quoted || !*type || strspn(type, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789_") != strlen(type))
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: extent type is not a word", name, lineno);
    l->ext.type = vd_strdup(type);
    if (!l->ext.type)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    for (char *c = l->ext.type; *c; c++)
        *c = (char)toupper((unsigned char)*c);

    char *file = next_token(&p, &quoted, &qerr);
    if (qerr)
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: unterminated quote in extent file name",
                          name, lineno);
    if (file) {
        if (!*file)
            return vd_err_set(VD_E_CORRUPT, "%s:%zu: empty extent file name", name, lineno);
        /* The format has no escape for '"': a name holding one could not be
         * written back. */
        if (strchr(file, '"'))
            return vd_err_set(VD_E_CORRUPT, "%s:%zu: stray quote in extent file name",
                              name, lineno);
        l->ext.file = vd_strdup(file);
        if (!l->ext.file)
            return vd_err_set(VD_E_NOMEM, "out of memory");
        char *off = next_token(&p, &quoted, &qerr);
        if (qerr || (off && strchr(off, '"')))
            return vd_err_set(VD_E_CORRUPT, "%s:%zu: stray quote after extent file name",
                              name, lineno);
        if (off) {
            if (parse_u64(off, &l->ext.offset) < 0)
                return vd_err_set(VD_E_CORRUPT, "%s:%zu: extent offset '%s' is not a number",
                                  name, lineno, off);
            l->ext.has_offset = 1;
            /* Windows hosts may append partition UUID / device id fields:
             * tolerated and kept in the original text. */
        }
    } else if (strcmp(l->ext.type, "ZERO") != 0) {
        return vd_err_set(VD_E_CORRUPT, "%s:%zu: %s extent has no file name", name, lineno,
                          l->ext.type);
    }
    return 0;
}

static int parse_line(struct desc_line *l, const char *raw, size_t n, const char *name,
                      size_t lineno)
{
    l->text = malloc(n + 1);
    char *work = malloc(n + 1);
    if (!l->text || !work) {
        free(work);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    memcpy(l->text, raw, n);
    l->text[n] = '\0';
    memcpy(work, raw, n);
    work[n] = '\0';

    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)work[i];
        if (c < 0x20 && c != '\t') {
            rc = vd_err_set(VD_E_CORRUPT, "%s:%zu: control character 0x%02x in descriptor",
                            name, lineno, c);
            goto out;
        }
    }
    char *p = skip_ws(work);
    if (*p == '\0' || *p == '#') {
        l->kind = DESC_OTHER;
        goto out;
    }
    size_t wl = strcspn(p, " \t");
    if ((wl == 2 && strncasecmp(p, "RW", 2) == 0) ||
        (wl == 6 && strncasecmp(p, "RDONLY", 6) == 0) ||
        (wl == 8 && strncasecmp(p, "NOACCESS", 8) == 0)) {
        l->kind = DESC_EXTENT;
        rc = parse_extent(l, p, name, lineno);
        goto out;
    }
    char *eq = strchr(p, '=');
    if (!eq) {
        rc = vd_err_set(VD_E_CORRUPT, "%s:%zu: expected key=value, an extent or a comment",
                        name, lineno);
        goto out;
    }
    char *kend = eq;
    while (kend > p && (kend[-1] == ' ' || kend[-1] == '\t'))
        kend--;
    *kend = '\0';
    if (!*p || strchr(p, '"')) {
        rc = vd_err_set(VD_E_CORRUPT, "%s:%zu: %s key", name, lineno, *p ? "quote in" : "empty");
        goto out;
    }
    char *v = skip_ws(eq + 1);
    if (*v == '"') {
        char *q = strchr(v + 1, '"');
        if (!q) {
            rc = vd_err_set(VD_E_CORRUPT, "%s:%zu: unterminated quote in value of %s",
                            name, lineno, p);
            goto out;
        }
        *q = '\0';
        v++;
        l->quoted = 1;
    } else {
        char *e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        if (strchr(v, '"')) {
            rc = vd_err_set(VD_E_CORRUPT, "%s:%zu: stray quote in value of %s", name, lineno, p);
            goto out;
        }
    }
    l->kind = is_ddb_key(p) ? DESC_DDB : DESC_HEADER;
    l->key = vd_strdup(p);
    l->value = vd_strdup(v);
    if (!l->key || !l->value)
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
out:
    free(work);
    return rc;
}

int desc_parse(struct descriptor *d, const char *text, size_t len, const char *name)
{
    memset(d, 0, sizeof *d);
    const char *nul = memchr(text, '\0', len);
    if (nul)
        len = (size_t)(nul - text);
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        struct desc_line *l = insert_line(d, d->nlines);
        if (!l) {
            desc_free(d);
            return vd_err_set(VD_E_NOMEM, "out of memory parsing %s", name);
        }
        int rc = parse_line(l, start, n, name, lineno);
        if (rc < 0) {
            desc_free(d);
            return rc;
        }
    }
    return 0;
}

char *desc_format(const struct descriptor *d, size_t *lenp)
{
    size_t len = 0;
    for (size_t i = 0; i < d->nlines; i++)
        len += strlen(d->lines[i].text ? d->lines[i].text : "") + 1;
    char *s = malloc(len + 1);
    if (!s) {
        vd_err_set(VD_E_NOMEM, "out of memory formatting descriptor");
        return NULL;
    }
    size_t pos = 0;
    for (size_t i = 0; i < d->nlines; i++) {
        const char *t = d->lines[i].text ? d->lines[i].text : "";
        size_t n = strlen(t);
        memcpy(s + pos, t, n);
        pos += n;
        s[pos++] = '\n';
    }
    s[pos] = '\0';
    if (lenp)
        *lenp = pos;
    return s;
}

static struct desc_line *find_key(const struct descriptor *d, const char *key)
{
    for (size_t i = 0; i < d->nlines; i++) {
        struct desc_line *l = &d->lines[i];
        if ((l->kind == DESC_HEADER || l->kind == DESC_DDB) && strcasecmp(l->key, key) == 0)
            return l;
    }
    return NULL;
}

const char *desc_get(const struct descriptor *d, const char *key)
{
    struct desc_line *l = find_key(d, key);
    return l ? l->value : NULL;
}

static ssize_t last_of(const struct descriptor *d, enum desc_line_kind k)
{
    for (size_t i = d->nlines; i > 0; i--)
        if (d->lines[i - 1].kind == k)
            return (ssize_t)(i - 1);
    return -1;
}

/* Insert a comment/blank line with the given text at pos. */
static int insert_text(struct descriptor *d, size_t pos, const char *text)
{
    struct desc_line *l = insert_line(d, pos);
    if (!l)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    l->kind = DESC_OTHER;
    l->text = vd_strdup(text);
    return l->text ? 0 : vd_err_set(VD_E_NOMEM, "out of memory");
}

/* Index where new header lines go: after the last header line, else after
 * the leading comments. */
static size_t header_insert_pos(const struct descriptor *d)
{
    ssize_t h = last_of(d, DESC_HEADER);
    if (h >= 0)
        return (size_t)h + 1;
    size_t i = 0;
    while (i < d->nlines && d->lines[i].kind == DESC_OTHER && d->lines[i].text[0] == '#')
        i++;
    return i;
}

int desc_set(struct descriptor *d, const char *key, const char *value)
{
    struct desc_line *l = find_key(d, key);
    if (!value) {
        if (l) {
            size_t i = (size_t)(l - d->lines);
            line_free(l);
            memmove(&d->lines[i], &d->lines[i + 1], (d->nlines - i - 1) * sizeof *l);
            d->nlines--;
        }
        return 0;
    }
    if (strchr(value, '"') || strchr(value, '\n') || strchr(value, '\r'))
        return vd_err_set(VD_E_INVAL, "value for %s contains a quote or newline", key);
    if (!l) {
        int ddb = is_ddb_key(key);
        size_t pos;
        if (ddb) {
            ssize_t last = last_of(d, DESC_DDB);
            if (last >= 0) {
                pos = (size_t)last + 1;
            } else {
                int rc;
                pos = d->nlines;
                if ((rc = insert_text(d, pos++, "")) < 0 ||
                    (rc = insert_text(d, pos++, "# The Disk Data Base")) < 0 ||
                    (rc = insert_text(d, pos++, "#DDB")) < 0 ||
                    (rc = insert_text(d, pos++, "")) < 0)
                    return rc;
            }
        } else {
            pos = header_insert_pos(d);
        }
        l = insert_line(d, pos);
        if (!l)
            return vd_err_set(VD_E_NOMEM, "out of memory");
        l->kind = ddb ? DESC_DDB : DESC_HEADER;
        l->quoted = ddb || !header_key_bare(key);
        l->key = vd_strdup(key);
        if (!l->key)
            return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    char *nv = vd_strdup(value);
    if (!nv)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    free(l->value);
    l->value = nv;
    return render(l);
}

size_t desc_num_extents(const struct descriptor *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nlines; i++)
        if (d->lines[i].kind == DESC_EXTENT)
            n++;
    return n;
}

static struct desc_line *extent_line(const struct descriptor *d, size_t idx)
{
    for (size_t i = 0; i < d->nlines; i++)
        if (d->lines[i].kind == DESC_EXTENT && idx-- == 0)
            return &d->lines[i];
    return NULL;
}

struct desc_extent *desc_extent(const struct descriptor *d, size_t i)
{
    struct desc_line *l = extent_line(d, i);
    return l ? &l->ext : NULL;
}

int desc_extent_changed(struct descriptor *d, size_t i)
{
    struct desc_line *l = extent_line(d, i);
    if (!l)
        return vd_err_set(VD_E_INVAL, "no extent %zu in descriptor", i);
    int rc = l->ext.file ? vd_check_desc_name(l->ext.file, l->ext.file, NULL) : 0;
    return rc < 0 ? rc : render(l);
}

int desc_add_extent(struct descriptor *d, const struct desc_extent *e)
{
    int nrc = e->file ? vd_check_desc_name(e->file, e->file, NULL) : 0;
    if (nrc < 0)
        return nrc;
    ssize_t last = last_of(d, DESC_EXTENT);
    size_t pos;
    if (last >= 0) {
        pos = (size_t)last + 1;
    } else {
        pos = header_insert_pos(d);
        int rc;
        if ((rc = insert_text(d, pos++, "")) < 0 ||
            (rc = insert_text(d, pos++, "# Extent description")) < 0)
            return rc;
    }
    struct desc_line *l = insert_line(d, pos);
    if (!l)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    l->kind = DESC_EXTENT;
    l->ext = *e;
    l->ext.type = vd_strdup(e->type);
    l->ext.file = vd_strdup(e->file);
    if (!l->ext.type || (e->file && !l->ext.file))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    return render(l);
}

int desc_get_u32_hex(const struct descriptor *d, const char *key, uint32_t *out)
{
    const char *v = desc_get(d, key);
    if (!v)
        return vd_err_set(VD_E_NOTFOUND_KEY, "descriptor has no %s", key);
    size_t n = strlen(v);
    if (n == 0 || n > 8 || strspn(v, "0123456789abcdefABCDEF") != n)
        return vd_err_set(VD_E_CORRUPT, "%s value '%s' is not 1-8 hex digits", key, v);
    *out = (uint32_t)strtoul(v, NULL, 16);
    return 0;
}

int desc_init_new(struct descriptor *d, uint32_t cid, uint32_t parent_cid,
                  const char *create_type, const char *parent_hint)
{
    char cidbuf[16], pcidbuf[16];
    memset(d, 0, sizeof *d);
    snprintf(cidbuf, sizeof cidbuf, "%08x", cid);
    snprintf(pcidbuf, sizeof pcidbuf, "%08x", parent_cid);
    int rc;
    if ((rc = insert_text(d, 0, "# Disk DescriptorFile")) < 0 ||
        (rc = desc_set(d, "version", "1")) < 0 ||
        (rc = desc_set(d, "CID", cidbuf)) < 0 ||
        (rc = desc_set(d, "parentCID", pcidbuf)) < 0 ||
        (rc = desc_set(d, "createType", create_type)) < 0 ||
        (parent_hint && (rc = desc_set(d, "parentFileNameHint", parent_hint)) < 0)) {
        desc_free(d);
        return rc;
    }
    return 0;
}
