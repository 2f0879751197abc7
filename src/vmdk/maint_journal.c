/* maint_journal.c - the undo journal of a repair (CheckRepair with repair).
 *
 * LINK.repair-undo (beside the link's descriptor) holds, before any byte
 * of the link's files is overwritten, the bytes that were there and each
 * file's original size.  Layout (little-endian):
 *
 *   "openvddk undo 1\n"                       16 bytes
 *   records: u32 magic 'OVUR', u32 kind (1 file, 2 data), u32 file id,
 *            u32 0, u64 off, u64 len, u64 sum, then len payload bytes
 *     kind 1: a file of the link; off = its size before the repair,
 *             payload = its name relative to the link's directory
 *             (empty for the link's own file)
 *     kind 2: payload = the bytes at [off, off+len) of the file before
 *             the repair touched them
 *   sum: FNV-1a 64 over the first 32 bytes of the record and its payload.
 *
 * A record is synced before the write it protects, so a torn or missing
 * record at the end (the repair killed while appending it) protected no
 * write: reading stops there.  Rollback writes the records back newest
 * first (the oldest copy of a byte is the original), truncates each file
 * to its original size, syncs, and removes the journal; interrupted, it
 * can simply run again. */
#include "maint_priv.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/fileio.h"

#define J_MAGIC "openvddk undo 1\n"
#define J_MAGIC_LEN 16
#define R_MAGIC 0x5255564fu     /* "OVUR" */
#define R_FILE 1u
#define R_DATA 2u
#define R_HDR 40u
#define MAX_FILES 4096
#define ABORT_EXIT 77

struct jfile {
    int fd;
    char *name;
    uint64_t size;          /* before the repair */
    int recorded;           /* its kind 1 record is in the journal */
    uint64_t (*saved)[2];   /* ranges kept so far */
    size_t nsaved, capsaved;
    int written;
};

struct jn {
    char *path;             /* the journal */
    char *link_path, *dir;
    vmdk_report_fn report;
    void *ctx;
    int fd;                 /* -1 until created */
    uint64_t end;           /* append position */
    int unsynced;
    struct jfile *f;
    size_t nf;
    long abort_after;       /* test hook: -1 off */
    long writes;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static void put32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }

char *jn_path(const char *link_path)
{
    return vd_asprintf("%s.repair-undo", link_path);
}

static void announce(struct jn *j, const char *fmt, const char *arg)
{
    if (!j->report)
        return;
    char msg[1200];
    snprintf(msg, sizeof msg, fmt, arg);
    j->report(j->ctx, VMDK_REPORT_JOURNAL, msg);
}

static int sync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

struct jn *jn_new(const char *link_path, vmdk_report_fn report, void *ctx)
{
    struct jn *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fd = -1;
    j->report = report;
    j->ctx = ctx;
    j->abort_after = -1;
    j->path = jn_path(link_path);
    j->link_path = vd_strdup(link_path);
    j->dir = vd_path_dir(link_path);
    const char *hook = getenv("OPENVDDK_TEST_REPAIR_ABORT_AFTER");
    if (hook && *hook) {
        char *end;
        long v = strtol(hook, &end, 10);
        if (*end == '\0' && v >= 0)
            j->abort_after = v;
    }
    if (!j->path || !j->link_path || !j->dir) {
        jn_free(j);
        return NULL;
    }
    return j;
}

void jn_free(struct jn *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    for (size_t i = 0; i < j->nf; i++) {
        free(j->f[i].name);
        free(j->f[i].saved);
    }
    free(j->f);
    free(j->path);
    free(j->link_path);
    free(j->dir);
    free(j);
}

int jn_add_file(struct jn *j, int fd, const char *name)
{
    for (size_t i = 0; i < j->nf; i++)
        if (!strcmp(j->f[i].name, name))
            return (int)i;
    if (j->nf >= MAX_FILES)
        return vd_err_set(VD_E_INVAL, "%s: too many files for one repair", j->link_path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", name);
    struct jfile *nf = realloc(j->f, (j->nf + 1) * sizeof *nf);
    if (!nf)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    j->f = nf;
    struct jfile *f = &j->f[j->nf];
    memset(f, 0, sizeof *f);
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    if (!(f->name = vd_strdup(name)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    return (int)j->nf++;
}

int jn_used(const struct jn *j)
{
    return j && j->fd >= 0;
}

/* Append one record (header + payload) to the journal, unsynced. */
static int append(struct jn *j, uint32_t kind, uint32_t id, uint64_t off, const void *p,
                  uint64_t len)
{
    unsigned char h[R_HDR];
    memset(h, 0, sizeof h);
    put32(h, R_MAGIC);
    put32(h + 4, kind);
    put32(h + 8, id);
    put64(h + 16, off);
    put64(h + 24, len);
    put64(h + 32, fnv(fnv(FNV0, h, 32), p, (size_t)len));
    if (vd_pwrite_full(j->fd, h, sizeof h, j->end) < 0 ||
        (len && vd_pwrite_full(j->fd, p, (size_t)len, j->end + sizeof h) < 0))
        return -1;
    j->end += sizeof h + len;
    j->unsynced = 1;
    return 0;
}

/* Create the journal file (first write of the repair). */
static int create(struct jn *j)
{
    if (j->fd >= 0)
        return 0;
    int fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    j->fd = fd;
    if (vd_pwrite_full(fd, J_MAGIC, J_MAGIC_LEN, 0) < 0 || fdatasync(fd) < 0 ||
        sync_dir(j->dir) < 0) {
        int e = errno;
        close(fd);
        unlink(j->path);
        j->fd = -1;
        errno = e;
        return -1;
    }
    j->end = J_MAGIC_LEN;
    announce(j, "journal: %s keeps what this repair overwrites until the repair is complete",
             j->path);
    return 0;
}

static int ensure_file_record(struct jn *j, int id)
{
    struct jfile *f = &j->f[id];
    if (create(j) < 0)
        return -1;
    if (f->recorded)
        return 0;
    if (append(j, R_FILE, (uint32_t)id, f->size, f->name, strlen(f->name)) < 0)
        return -1;
    f->recorded = 1;
    return 0;
}

static int covered(const struct jfile *f, uint64_t a, uint64_t b)
{
    /* Fully inside one kept range (ranges are few: tables, directories). */
    for (size_t i = 0; i < f->nsaved; i++)
        if (f->saved[i][0] <= a && b <= f->saved[i][1])
            return 1;
    return 0;
}

int jn_save(struct jn *j, int id, uint64_t off, uint64_t len)
{
    if (id < 0 || (size_t)id >= j->nf) {
        errno = EINVAL;
        return -1;
    }
    struct jfile *f = &j->f[id];
    if (ensure_file_record(j, id) < 0)
        return -1;
    if (off >= f->size || len == 0)
        return 0;                    /* past the original end: the rollback truncates */
    uint64_t b = off + len > f->size ? f->size : off + len;
    if (covered(f, off, b))
        return 0;
    uint64_t n = b - off;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        errno = ENOMEM;
        return -1;
    }
    int rc = vd_pread_full(f->fd, buf, n, off, 0);
    if (rc == 0)
        rc = append(j, R_DATA, (uint32_t)id, off, buf, n);
    free(buf);
    if (rc < 0)
        return -1;
    if (f->nsaved == f->capsaved) {
        size_t nc = f->capsaved ? f->capsaved * 2 : 16;
        uint64_t (*ns)[2] = realloc(f->saved, nc * sizeof *ns);
        if (!ns) {
            errno = ENOMEM;
            return -1;
        }
        f->saved = ns;
        f->capsaved = nc;
    }
    f->saved[f->nsaved][0] = off;
    f->saved[f->nsaved][1] = b;
    f->nsaved++;
    return 0;
}

/* Everything kept so far durable; then count the write (test hook). */
static int before_write(struct jn *j)
{
    if (j->unsynced) {
        if (fdatasync(j->fd) < 0)
            return -1;
        j->unsynced = 0;
    }
    if (j->abort_after >= 0 && j->writes >= j->abort_after)
        _exit(ABORT_EXIT);
    j->writes++;
    return 0;
}

int jn_pwrite(struct jn *j, int id, const void *buf, size_t len, uint64_t off)
{
    if (jn_save(j, id, off, len) < 0 || before_write(j) < 0)
        return -1;
    j->f[id].written = 1;
    return vd_pwrite_full(j->f[id].fd, buf, len, off);
}

int jn_ftruncate(struct jn *j, int id, uint64_t size)
{
    struct stat st;
    if (id < 0 || (size_t)id >= j->nf) {
        errno = EINVAL;
        return -1;
    }
    if (fstat(j->f[id].fd, &st) < 0)
        return -1;
    if (size < (uint64_t)st.st_size && jn_save(j, id, size, (uint64_t)st.st_size - size) < 0)
        return -1;
    if (ensure_file_record(j, id) < 0 || before_write(j) < 0)
        return -1;
    j->f[id].written = 1;
    return ftruncate(j->f[id].fd, (off_t)size);
}

static int finish(struct jn *j)
{
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    if (unlink(j->path) < 0 && errno != ENOENT)
        return vd_err_errno(errno, "%s: removing the undo journal", j->path);
    sync_dir(j->dir);
    return 0;
}

int jn_commit(struct jn *j)
{
    if (j->fd < 0)
        return 0;                    /* nothing was written */
    for (size_t i = 0; i < j->nf; i++)
        if (j->f[i].written && fsync(j->f[i].fd) < 0)
            return vd_err_errno(errno, "%s: flushing the repaired file %s", j->link_path,
                                j->f[i].name[0] ? j->f[i].name : j->link_path);
    int rc = finish(j);
    if (rc == 0)
        announce(j, "journal: %s removed (the repair is complete)", j->path);
    return rc;
}

/* ---- rollback ------------------------------------------------------------- */

struct rec {
    uint32_t kind, id;
    uint64_t off, len, at;   /* at: payload position in the journal */
};

/* Read the valid records of the journal at fd (size bytes). */
static int scan(int fd, uint64_t size, const char *jpath, struct rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    unsigned char m[J_MAGIC_LEN];
    if (size < J_MAGIC_LEN || vd_pread_full(fd, m, sizeof m, 0, 1) < 0 ||
        memcmp(m, J_MAGIC, J_MAGIC_LEN) != 0)
        return 0;                    /* torn at creation: nothing was written yet */
    size_t cap = 0;
    uint64_t pos = J_MAGIC_LEN;
    unsigned char *buf = NULL;
    size_t bufcap = 0;
    while (pos + R_HDR <= size) {
        unsigned char h[R_HDR];
        if (vd_pread_full(fd, h, sizeof h, pos, 1) < 0)
            break;
        uint64_t len = get64(h + 24);
        if (get32(h) != R_MAGIC || len > size - pos - R_HDR)
            break;
        if (len > bufcap) {
            unsigned char *nb = realloc(buf, (size_t)len);
            if (!nb) {
                free(buf);
                free(*out);
                return vd_err_set(VD_E_NOMEM, "%s: out of memory", jpath);
            }
            buf = nb;
            bufcap = (size_t)len;
        }
        if (len && vd_pread_full(fd, buf, (size_t)len, pos + R_HDR, 1) < 0)
            break;
        if (fnv(fnv(FNV0, h, 32), buf, (size_t)len) != get64(h + 32))
            break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            struct rec *nr = realloc(*out, cap * sizeof *nr);
            if (!nr) {
                free(buf);
                free(*out);
                return vd_err_set(VD_E_NOMEM, "%s: out of memory", jpath);
            }
            *out = nr;
        }
        (*out)[(*n)++] = (struct rec){ get32(h + 4), get32(h + 8), get64(h + 16), len,
                                       pos + R_HDR };
        pos += R_HDR + len;
    }
    free(buf);
    return 0;
}

/* Apply the journal at jpath to the files of the link in dir (link_path:
 * the link's own file).  known: files already open read-write (may be
 * NULL). */
static int rollback(const char *jpath, const char *link_path, const char *dir,
                    const struct jn *known)
{
    int jfd = open(jpath, O_RDONLY | O_CLOEXEC);
    if (jfd < 0)
        return errno == ENOENT ? 0 : vd_err_errno(errno, "%s: opening the undo journal", jpath);
    struct stat st;
    struct rec *r = NULL;
    size_t n = 0;
    int rc = fstat(jfd, &st) < 0 ? vd_err_errno(errno, "%s: stat", jpath)
                                 : scan(jfd, (uint64_t)st.st_size, jpath, &r, &n);
    /* File ids are small numbers given in order. */
    size_t nfiles = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (r[i].kind == R_FILE && r[i].id >= nfiles)
            nfiles = (size_t)r[i].id + 1;
    int *fds = calloc(nfiles ? nfiles : 1, sizeof *fds);
    int *own = calloc(nfiles ? nfiles : 1, sizeof *own);
    uint64_t *sizes = calloc(nfiles ? nfiles : 1, sizeof *sizes);
    unsigned char *buf = NULL;
    if (rc == 0 && (!fds || !own || !sizes))
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    for (size_t i = 0; i < nfiles && fds; i++)
        fds[i] = -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (r[i].kind != R_FILE)
            continue;
        char *name = calloc(1, (size_t)r[i].len + 1);
        if (!name) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            break;
        }
        if (r[i].len && vd_pread_full(jfd, name, (size_t)r[i].len, r[i].at, 1) < 0) {
            free(name);
            rc = vd_err_errno(errno ? errno : EIO, "%s: reading", jpath);
            break;
        }
        uint32_t id = r[i].id;
        sizes[id] = r[i].off;
        if (fds[id] >= 0) {
            free(name);
            continue;
        }
        for (size_t k = 0; known && k < known->nf; k++)
            if (!strcmp(known->f[k].name, name))
                fds[id] = known->f[k].fd;
        if (fds[id] < 0) {
            char *p = name[0] ? vd_path_join(dir, name) : vd_strdup(link_path);
            if (!p) {
                free(name);
                rc = vd_err_set(VD_E_NOMEM, "out of memory");
                break;
            }
            fds[id] = open(p, O_RDWR | O_CLOEXEC);
            if (fds[id] < 0)
                rc = vd_err_errno(errno, "%s: cannot open it to roll back the repair that "
                                  "%s recorded", p, jpath);
            own[id] = 1;
            free(p);
        }
        free(name);
    }
    /* Newest first: the oldest copy of a byte is what was there before. */
    for (size_t i = n; rc == 0 && i-- > 0;) {
        if (r[i].kind != R_DATA)
            continue;
        if (r[i].id >= nfiles || fds[r[i].id] < 0) {
            rc = vd_err_set(VD_E_CORRUPT, "%s: a record names a file it does not list", jpath);
            break;
        }
        unsigned char *nb = realloc(buf, r[i].len ? (size_t)r[i].len : 1);
        if (!nb) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            break;
        }
        buf = nb;
        if (vd_pread_full(jfd, buf, (size_t)r[i].len, r[i].at, 1) < 0 ||
            vd_pwrite_full(fds[r[i].id], buf, (size_t)r[i].len, r[i].off) < 0)
            rc = vd_err_errno(errno ? errno : EIO, "%s: rolling back", jpath);
    }
    for (size_t id = 0; id < nfiles; id++) {
        if (fds[id] < 0)
            continue;
        if (rc == 0 && (ftruncate(fds[id], (off_t)sizes[id]) < 0 || fsync(fds[id]) < 0))
            rc = vd_err_errno(errno, "%s: rolling back", jpath);
        if (own[id])
            close(fds[id]);
    }
    free(buf);
    free(fds);
    free(own);
    free(sizes);
    free(r);
    close(jfd);
    if (rc == 0) {
        if (unlink(jpath) < 0 && errno != ENOENT)
            return vd_err_errno(errno, "%s: removing the undo journal", jpath);
        sync_dir(dir);
        return 1;
    }
    return rc;
}

int jn_undo(struct jn *j)
{
    if (j->fd < 0)
        return 0;
    /* The in-memory sizes are the truth for files registered but never
     * recorded (nothing written to them). */
    if (j->unsynced && fdatasync(j->fd) < 0)
        return vd_err_errno(errno, "%s: flushing the undo journal", j->path);
    close(j->fd);
    j->fd = -1;
    int rc = rollback(j->path, j->link_path, j->dir, j);
    if (rc >= 0)
        announce(j, "journal: %s: the repair was rolled back and the journal removed",
                 j->path);
    return rc < 0 ? rc : 0;
}

int jn_recover(const char *link_path)
{
    char *jp = jn_path(link_path), *dir = vd_path_dir(link_path);
    int rc = (!jp || !dir) ? vd_err_set(VD_E_NOMEM, "out of memory")
                           : rollback(jp, link_path, dir, NULL);
    free(jp);
    free(dir);
    return rc;
}
