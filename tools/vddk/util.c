/* util.c - argument parsing, formatting and usage errors for vddk. */
#include "vddk.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------- */

int vddk_fail(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("vddk: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return VDDK_EXIT_FAIL;
}

int vddk_usage_error(const struct vddk_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "vddk: %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'vddk help %s')\n", cmd->name);
    return VDDK_EXIT_USAGE;
}

int vddk_print_help(const struct vddk_cmd *cmd, FILE *f)
{
    fputs(cmd->help, f);
    return VDDK_EXIT_OK;
}

int vddk_operands(const struct vddk_cmd *cmd, const struct vddk_optstate *st, int min,
                  int max, const char *what)
{
    if (st->noperands < min)
        return vddk_usage_error(cmd, "missing %s", what);
    if (st->noperands > max)
        return vddk_usage_error(cmd, "too many arguments: expected %s, got %d argument%s",
                                what, st->noperands, st->noperands == 1 ? "" : "s");
    return VDDK_EXIT_OK;
}

/* ---- option parsing -------------------------------------------------- */

int vddk_opt_init(struct vddk_optstate *st, int argc, char **argv)
{
    memset(st, 0, sizeof *st);
    st->argc = argc;
    st->argv = argv;
    st->index = 1;
    st->operands = calloc((size_t)(argc > 0 ? argc : 1), sizeof *st->operands);
    if (st->operands == NULL) {
        vddk_fail("out of memory");
        return -1;
    }
    return 0;
}

void vddk_opt_free(struct vddk_optstate *st)
{
    free(st->operands);
    st->operands = NULL;
}

static int long_option(struct vddk_optstate *st, const struct vddk_opt *opts,
                       const struct vddk_cmd *cmd, const char *text)
{
    const char *eq = strchr(text, '=');
    size_t n = eq ? (size_t)(eq - text) : strlen(text);

    st->name = st->argv[st->index - 1];
    if (n == 4 && strncmp(text, "help", 4) == 0 && eq == NULL)
        return VDDK_OPT_HELP;
    for (const struct vddk_opt *o = opts; o->id != 0; o++) {
        if (o->long_name == NULL || strlen(o->long_name) != n ||
            strncmp(o->long_name, text, n) != 0)
            continue;
        if (!o->has_arg) {
            if (eq != NULL) {
                vddk_usage_error(cmd, "option '--%s' takes no argument", o->long_name);
                return VDDK_OPT_ERROR;
            }
            return o->id;
        }
        if (eq != NULL) {
            st->arg = eq + 1;
        } else if (st->index < st->argc) {
            st->arg = st->argv[st->index++];
        } else {
            vddk_usage_error(cmd, "option '--%s' needs an argument", o->long_name);
            return VDDK_OPT_ERROR;
        }
        return o->id;
    }
    vddk_usage_error(cmd, "unknown option '--%.*s'", (int)n, text);
    return VDDK_OPT_ERROR;
}

int vddk_getopt(struct vddk_optstate *st, const struct vddk_opt *opts,
                const struct vddk_cmd *cmd)
{
    st->arg = NULL;
    for (;;) {
        if (st->subpos == 0) {
            if (st->index >= st->argc)
                return VDDK_OPT_END;
            char *a = st->argv[st->index++];
            if (st->only_args || a[0] != '-' || a[1] == '\0') {
                st->operands[st->noperands++] = a;
                continue;
            }
            if (a[1] == '-') {
                if (a[2] == '\0') {
                    st->only_args = 1;
                    continue;
                }
                return long_option(st, opts, cmd, a + 2);
            }
            st->subpos = 1;
        }

        /* Inside a cluster of short options: argv[index - 1][subpos]. */
        char *a = st->argv[st->index - 1];
        char c = a[st->subpos++];
        int last = a[st->subpos] == '\0';
        st->shortbuf[0] = '-';
        st->shortbuf[1] = c;
        st->shortbuf[2] = '\0';
        st->name = st->shortbuf;
        if (c == 'h') {
            st->subpos = 0;
            return VDDK_OPT_HELP;
        }
        const struct vddk_opt *o = opts;
        while (o->id != 0 && o->short_name != c)
            o++;
        if (o->id == 0) {
            st->subpos = 0;
            if (isprint((unsigned char)c))
                vddk_usage_error(cmd, "unknown option '-%c'", c);
            else
                vddk_usage_error(cmd, "unknown option in '%s'", a);
            return VDDK_OPT_ERROR;
        }
        if (!o->has_arg) {
            if (last)
                st->subpos = 0;
            return o->id;
        }
        if (!last) {
            st->arg = a + st->subpos;        /* -s64M */
        } else if (st->index < st->argc) {
            st->arg = st->argv[st->index++]; /* -s 64M */
        } else {
            st->subpos = 0;
            vddk_usage_error(cmd, "option '-%c' needs an argument", c);
            return VDDK_OPT_ERROR;
        }
        st->subpos = 0;
        return o->id;
    }
}

/* ---- numbers --------------------------------------------------------- */

int vddk_parse_size(const char *text, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        return vddk_parse_uint(text, UINT64_MAX, out); /* 0x hex bytes */
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return -1;

    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': shift = 0; end++; goto done_suffix;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -1;
    }
    if (*end != '\0') {
        end++;
        /* K, KB, KiB */
        if (*end == 'i' || *end == 'I') {
            end++;
            if (toupper((unsigned char)*end) != 'B')
                return -1;
            end++;
        } else if (toupper((unsigned char)*end) == 'B') {
            end++;
        }
    }
done_suffix:
    if (*end != '\0')
        return -1;
    if (shift > 0 && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int vddk_parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    if (text == NULL || !isdigit((unsigned char)text[0]))
        return -1;
    int base = 10;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        if (!isxdigit((unsigned char)text[2]))
            return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, base);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- output ---------------------------------------------------------- */

const char *vddk_human(uint64_t bytes, char *buf)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    unsigned u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && (bytes >> (10 * (u + 1))) != 0)
        u++;
    if (u == 0) {
        snprintf(buf, VDDK_HUMAN_LEN, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    uint64_t unit = (uint64_t)1 << (10 * u);
    if (bytes % unit == 0) {
        snprintf(buf, VDDK_HUMAN_LEN, "%llu %s", (unsigned long long)(bytes / unit), units[u]);
        return buf;
    }
    double v = (double)bytes / (double)unit;
    if (v >= 1023.95 && u + 1 < sizeof units / sizeof units[0]) {
        u++;
        v /= 1024.0;
    }
    snprintf(buf, VDDK_HUMAN_LEN, "%.1f %s", v, units[u]);
    return buf;
}

void vddk_json_str(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* ---- ranges ---------------------------------------------------------- */

int vddk_resolve_range(const char *path, uint64_t capacity, uint64_t off,
                       int have_len, uint64_t *len)
{
    if (off > capacity)
        return vddk_fail("%s: offset %llu is past the end of the disk (capacity %llu bytes)",
                         path, (unsigned long long)off, (unsigned long long)capacity);
    if (!have_len) {
        *len = capacity - off;
        return 0;
    }
    if (*len > capacity - off)
        return vddk_fail("%s: range %llu+%llu ends past the end of the disk (capacity %llu bytes)",
                         path, (unsigned long long)off, (unsigned long long)*len,
                         (unsigned long long)capacity);
    return 0;
}
