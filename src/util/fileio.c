/* fileio.c - file and path helpers. */
#include "fileio.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "err.h"

/* An O_DIRECT file refuses unaligned transfers with EINVAL: drop O_DIRECT
 * on that descriptor and let the caller retry through the page cache. */
static int drop_direct(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || !(fl & O_DIRECT))
        return 0;
    return fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0;
}

int vd_pread_full(int fd, void *buf, size_t len, uint64_t off, int eof_is_error)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR || (errno == EINVAL && drop_direct(fd)))
                continue;
            return -1;
        }
        if (n == 0) {
            if (eof_is_error) {
                errno = 0;
                return -1;
            }
            memset(p, 0, len);
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int vd_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR || (errno == EINVAL && drop_direct(fd)))
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* A datastore path "[ds] dir/name" (or a bare "[ds]"): the length of its
 * "[ds]" prefix, else 0. */
static size_t ds_prefix(const char *path)
{
    if (path[0] != '[')
        return 0;
    const char *end = strchr(path, ']');
    return end && (end[1] == ' ' || end[1] == '\0') ? (size_t)(end - path) + 1 : 0;
}

char *vd_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t ds = ds_prefix(path);
    if (ds && (!slash || slash < path + ds)) {   /* "[ds] name": the datastore's root */
        char *d = malloc(ds + 1);
        if (d) {
            memcpy(d, path, ds);
            d[ds] = '\0';
        }
        return d;
    }
    if (!slash)
        return vd_strdup(".");
    if (slash == path)
        return vd_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

const char *vd_path_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t ds = ds_prefix(path);
    if (ds && (!slash || slash < path + ds)) {
        path += ds;
        while (*path == ' ')
            path++;
        return path;
    }
    return slash ? slash + 1 : path;
}

char *vd_path_join(const char *dir, const char *name)
{
    if (name[0] == '/' || ds_prefix(name) || !dir || !dir[0] || strcmp(dir, ".") == 0)
        return vd_strdup(name);
    size_t ds = ds_prefix(dir);
    if (ds && dir[ds] == '\0')          /* "[ds]" + "name" = "[ds] name" */
        return vd_asprintf("%s %s", dir, name);
    return vd_asprintf("%s/%s", dir, name);
}

char *vd_path_stem(const char *path)
{
    size_t n = strlen(path);
    if (n > 5 && strcasecmp(path + n - 5, ".vmdk") == 0)
        n -= 5;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, path, n);
        s[n] = '\0';
    }
    return s;
}

void vd_random(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (len > 0) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (vd_pread_full(fd, p, len, 0, 1) == 0)
                len = 0;
            close(fd);
        }
    }
    /* Last resort: never leave the buffer undefined. */
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(rand() & 0xff);
}

uint32_t vd_random_cid(void)
{
    uint32_t cid;
    do {
        vd_random(&cid, sizeof cid);
    } while (cid == 0xffffffffu || cid == 0xfffffffeu);
    return cid;
}

char *vd_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

char *vd_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *vd_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int vd_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    /* Check the first 16 bytes byte-wise, then compare the buffer with
     * itself shifted by 16: equal and the head zero means all zero. */
    size_t head = len < 16 ? len : 16;
    for (size_t i = 0; i < head; i++)
        if (p[i])
            return 0;
    if (len <= 16)
        return 1;
    return memcmp(p, p + 16, len - 16) == 0;
}

/* s with control characters escaped, in buf. */
static const char *escaped(const char *s, char *buf, size_t n)
{
    size_t o = 0;
    for (; *s && o + 5 < n; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            o += (size_t)snprintf(buf + o, n - o, "\\n");
        else if (c == '\r')
            o += (size_t)snprintf(buf + o, n - o, "\\r");
        else if (c == '\t')
            o += (size_t)snprintf(buf + o, n - o, "\\t");
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}

int vd_check_desc_name(const char *file, const char *name, const char *what)
{
    const char *bad = NULL;
    char cbuf[32];
    for (const unsigned char *p = (const unsigned char *)name; *p && !bad; p++) {
        if (*p == '"')
            bad = "'\"'";
        else if (*p == '\n')
            bad = "a newline";
        else if (*p == '\r')
            bad = "a carriage return";
        else if (*p < 0x20 || *p == 0x7f) {
            snprintf(cbuf, sizeof cbuf, "a control character (0x%02x)", *p);
            bad = cbuf;
        }
    }
    if (!bad)
        return 0;
    char fb[1024], nb[1024];
    if (!what)
        return vd_err_set(VD_E_INVAL, "%s: a disk file name may not contain %s (a VMDK "
                          "descriptor names its files between double quotes, one to a line)",
                          escaped(file, fb, sizeof fb), bad);
    return vd_err_set(VD_E_INVAL, "%s: the %s %s may not contain %s (a VMDK descriptor names "
                      "files between double quotes, one to a line)", escaped(file, fb, sizeof fb),
                      what, escaped(name, nb, sizeof nb), bad);
}
