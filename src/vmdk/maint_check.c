/* maint_check.c - CheckRepair for one link: its descriptor and extents.
 *
 * The link is not opened through link_open, which refuses damaged
 * metadata: the descriptor is read and parsed here and every extent file
 * is opened raw (read-only without repair, so a check never writes;
 * read-write with repair) and locked like an open of the disk (shared
 * for a check, exclusive for a repair: a disk open for writing elsewhere
 * is VD_E_LOCKED).  Hosted sparse extents get the full check of
 * maint_sx.c after maint_infer.c has chosen which header fields to
 * believe; flat extents are checked against their size in the descriptor
 * (a short file is extended on repair); other kinds are only noted.  A
 * link that shows no problem is then opened as Open opens it: whatever
 * Open refuses is reported with Open's reason.
 *
 * A repair is all or nothing: the link is first checked without writing;
 * if any problem cannot be repaired nothing is written (the files stay
 * byte-identical).  Otherwise every write goes through the undo journal
 * (maint_journal.c), the result is checked again (it must be clean and
 * open), and only then is the journal removed; a result that is not clean
 * is rolled back.  A journal left by a killed repair is rolled back by the
 * next repair (and reported by a check). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "descriptor.h"
#include "extent.h"
#include "link.h"
#include "maint_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define MAX_TEXT_DESCRIPTOR (1u << 20)
#define MAX_EMBEDDED_SECTORS 20480u

static int open_locked(const char *path, int repair, int *fdp)
{
    /* O_NONBLOCK: a FIFO must not hang the check; it is refused below. */
    int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vd_err_errno(errno, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        close(fd);
        return vd_err_set(VD_E_INVAL, "%s: not a regular file or block device", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    int rc = vd_lock_fd(fd, repair, path);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    return 0;
}

/* Parse the embedded descriptor text at sector off (up to its first NUL):
 * 0 with *sectors set when it parses and lists extents, 1 when there is
 * no such text there, or an error. */
static int try_embedded(const char *path, int fd, uint64_t size, uint64_t off,
                        struct descriptor *d, uint64_t *sectors)
{
    if (off == 0 || off >= size / 512)
        return 1;
    uint64_t n = size - off * 512;
    if (n > MAX_TEXT_DESCRIPTOR)
        n = MAX_TEXT_DESCRIPTOR;
    char *text = malloc(n + 1);
    if (!text)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 1;
    if (vd_pread_full(fd, text, n, off * 512, 1) == 0) {
        char *nul = memchr(text, '\0', n);
        uint64_t len = nul ? (uint64_t)(nul - text) : n;
        struct descriptor t = { 0 };
        if (len && desc_parse(&t, text, len, path) == 0 && desc_num_extents(&t) > 0) {
            *d = t;
            *sectors = (len + 511) / 512;
            rc = 0;
        } else {
            desc_free(&t);
        }
    }
    free(text);
    return rc;
}

/* The descriptor of the link whose file is open at fd.  For an embedded
 * descriptor the header's descriptorOffset/Size are only a hint (they may
 * be what is damaged): the text is read up to its end, at
 * descriptorOffset or else at sector 1, and ev says what was found. */
static int read_descriptor(const char *path, int fd, struct descriptor *d, int *embedded,
                           struct sx_evidence *ev)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    uint64_t size = (uint64_t)st.st_size;
    unsigned char magic[4] = { 0 };
    if (size >= 4 && vd_pread_full(fd, magic, 4, 0, 1) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: reading", path);
    *embedded = 0;
    if (!memcmp(magic, "KDMV", 4)) {
        struct sparse_header_info hi;
        struct vd_file *vf;     /* a view of fd, which stays the caller's */
        int rc = vd_file_from_fd(fd, 0, path, &vf);
        if (rc < 0)
            return rc;
        rc = sparse_read_header_info(vf, path, &hi);
        vd_file_close(vf);
        if (rc < 0)
            return rc;
        uint64_t secs = 0;
        if ((rc = try_embedded(path, fd, size, hi.desc_off, d, &secs)) == 0) {
            ev->desc_text_sectors = secs;
            ev->desc_at = hi.desc_off;
        } else if (rc == 1 && hi.desc_off != 1 &&
                   (rc = try_embedded(path, fd, size, 1, d, &secs)) == 0) {
            ev->desc_text_sectors = secs;
            ev->desc_at = 1;
        } else if (rc == 1) {
            if (!hi.desc_off)
                return vd_err_set(VD_E_UNSUPPORTED, "%s: sparse extent without an embedded "
                                  "descriptor; check the descriptor file that names it", path);
            return vd_err_set(VD_E_CORRUPT, "%s: embedded descriptor (sector %" PRIu64 ", %"
                              PRIu64 " sectors) is not usable", path, hi.desc_off,
                              hi.desc_size);
        }
        if (rc < 0)
            return rc;
        *embedded = 1;
        return 0;
    } else if (!memcmp(magic, "COWD", 4) || !memcmp(magic, "\xbe\xba\xfe\xca", 4)) {
        return vd_err_set(VD_E_UNSUPPORTED, "%s: an ESX sparse extent; check the descriptor "
                          "file that names it", path);
    } else if (size > MAX_TEXT_DESCRIPTOR) {
        return vd_err_set(VD_E_CORRUPT, "%s: not a VMDK descriptor (too large and no sparse "
                          "header)", path);
    }
    char *text = malloc(size + 1);
    if (!text)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0;
    if (vd_pread_full(fd, text, size, 0, 1) < 0)
        rc = vd_err_errno(errno ? errno : EIO, "%s: reading descriptor", path);
    else
        rc = desc_parse(d, text, size, path);
    free(text);
    return rc;
}

/* ---- one link ---------------------------------------------------------------- */

struct ck {
    const char *path;
    char *dir;
    int dfd, embedded;
    struct descriptor d;
    struct sx_evidence emb;     /* what the embedded descriptor showed */
    size_t n;
    int *fds;                   /* per extent: -1 ZERO or missing */
    char **paths;               /* per extent: the file's path (NULL for ZERO) */
    int *missing;
    struct jn *jn;
};

static void lost(struct sx_report *r, const char *what)
{
    r->problems++;
    r->unrepaired++;
    r->cantfix++;
    sx_say(r, VMDK_REPORT_PROBLEM, "%s (cannot repair)", what);
}

static int check_flat(struct ck *c, int fd, const char *path, const char *name,
                      const struct desc_extent *de, int repair, struct sx_report *r)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    uint64_t need = ((de->has_offset ? de->offset : 0) + de->sectors) * 512;
    if ((uint64_t)st.st_size >= need || S_ISBLK(st.st_mode))
        return 0;
    r->problems++;
    if (repair) {
        int id = jn_add_file(c->jn, fd, name);
        if (id < 0)
            return id;
        if (jn_ftruncate(c->jn, id, need) < 0)
            return vd_err_errno(errno, "%s: extending to %" PRIu64 " bytes", path, need);
        r->repaired++;
        sx_say(r, VMDK_REPORT_REPAIRED, "the file has %" PRIu64 " bytes but the descriptor "
               "needs %" PRIu64 " (repaired: extended with zeros)", (uint64_t)st.st_size, need);
    } else {
        r->unrepaired++;
        sx_say(r, VMDK_REPORT_PROBLEM, "the file has %" PRIu64 " bytes but the descriptor "
               "needs %" PRIu64, (uint64_t)st.st_size, need);
    }
    return 0;
}

/* A streamOptimized extent: its grain tables against its grain markers
 * (stream_rw.c), rebuilt from the markers when a write was interrupted. */
struct jn_io {
    struct jn *jn;
    int id;
    const char *path;
};

static int jn_io_pwrite(void *ctx, const void *buf, size_t len, uint64_t off)
{
    struct jn_io *j = ctx;
    if (jn_pwrite(j->jn, j->id, buf, len, off) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: writing at offset %" PRIu64, j->path,
                            off);
    return 0;
}

static int jn_io_truncate(void *ctx, uint64_t size)
{
    struct jn_io *j = ctx;
    if (jn_ftruncate(j->jn, j->id, size) < 0)
        return vd_err_errno(errno ? errno : EIO, "%s: cutting the file at %" PRIu64 " bytes",
                            j->path, size);
    return 0;
}

static int check_stream(struct ck *c, int fd, const char *ep, const char *name, int repair,
                        struct sx_report *r)
{
    struct vmdk_stream_scan sc;
    struct jn_io j = { c->jn, -1, ep };
    struct vmdk_stream_io io = { jn_io_pwrite, jn_io_truncate, &j };
    if (repair && (j.id = jn_add_file(c->jn, fd, name)) < 0)
        return j.id;
    int rc = vmdk_stream_scan(fd, ep, repair ? &io : NULL, &sc);
    if (rc == -VD_E_UNSUPPORTED) {
        sx_say(r, VMDK_REPORT_INFO, "compressed extent without grain markers: header is "
               "valid, grains are not checked");
        vd_err_clear();
        return 0;
    }
    if (rc < 0)
        return rc;
    if (!sc.tables_ok) {
        r->problems++;
        if (sc.rebuilt) {
            r->repaired++;
            sx_say(r, VMDK_REPORT_REPAIRED, "the grain tables do not match the grains in the "
                   "file (a write was interrupted) (repaired: tables rebuilt from the %" PRIu64
                   " grains' markers)", sc.grains);
        } else {
            r->unrepaired++;
            sx_say(r, VMDK_REPORT_PROBLEM, "the grain tables do not match the grains in the "
                   "file (a write was interrupted); %" PRIu64 " grains can be recovered by "
                   "their markers", sc.grains);
        }
    }
    if (sc.superseded)
        sx_say(r, VMDK_REPORT_NOTE, "%" PRIu64 " grain%s older copies of rewritten grains "
               "(garbage); shrink or clone the disk to give back their space", sc.superseded,
               sc.superseded == 1 ? " is an" : "s are");
    return 0;
}

static int check_sparse(struct ck *c, size_t i, int fd, const char *ep, const char *name,
                        const struct desc_extent *de, int repair, struct sx_report *r)
{
    struct sx_evidence ev = { .desc_sectors = de->sectors };
    if (c->embedded && i == 0) {
        ev.desc_text_sectors = c->emb.desc_text_sectors;
        ev.desc_at = c->emb.desc_at;
    }
    struct kdmv_header h;
    const char *field = NULL;
    char what[700];
    int rc = sx_infer_header(fd, ep, &ev, &h, &field, what, sizeof what);
    if (rc == -VD_E_UNSUPPORTED || rc == -VD_E_CORRUPT) {
        lost(r, vd_err_msg());
        return 0;
    }
    if (rc < 0)
        return rc;
    if (h.flags & KDMV_FLAG_COMPRESSED)
        return check_stream(c, fd, ep, name, repair, r);
    struct sx x;
    rc = sx_load_with(&x, fd, ep, &h);
    if (rc == -VD_E_CORRUPT || rc == -VD_E_UNSUPPORTED) {
        lost(r, vd_err_msg());
        sx_free(&x);
        return 0;
    }
    if (rc == 0 && field) {
        r->problems++;
        if (repair) {
            r->repaired++;
            sx_say(r, VMDK_REPORT_REPAIRED, "%s (repaired: the header now says so)", what);
            x.hdr_dirty = 1;
        } else {
            r->unrepaired++;
            sx_say(r, VMDK_REPORT_PROBLEM, "%s", what);
        }
    }
    if (rc == 0 && repair) {
        x.jn = c->jn;
        if ((x.jid = jn_add_file(c->jn, fd, name)) < 0)
            rc = x.jid;
    }
    if (rc == 0)
        rc = sx_check(&x, de->sectors, repair, 0, r);
    sx_free(&x);
    return rc;
}

/* One pass over every extent.  fn NULL: silent. */
static int pass(struct ck *c, int repair, vmdk_report_fn fn, void *ctx, struct sx_report *tot)
{
    memset(tot, 0, sizeof *tot);
    tot->fn = fn;
    tot->ctx = ctx;
    tot->path = c->path;
    int rc = 0;
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const struct desc_extent *de = desc_extent(&c->d, i);
        if (!de->file)
            continue;                                  /* ZERO */
        struct sx_report r = { .fn = fn, .ctx = ctx, .path = c->paths[i] };
        const char *name = c->embedded && i == 0 ? "" : de->file;
        int fd = c->fds[i];
        if (c->missing[i]) {
            lost(&r, "extent file is missing");
        } else if (!strcmp(de->type, "SPARSE")) {
            rc = check_sparse(c, i, fd, c->paths[i], name, de, repair, &r);
        } else if (!strcmp(de->type, "FLAT") || !strcmp(de->type, "VMFS")) {
            rc = check_flat(c, fd, c->paths[i], name, de, repair, &r);
        } else {
            sx_say(&r, VMDK_REPORT_INFO, "%s extents are not checked", de->type);
        }
        if (r.suppressed)
            sx_say(&r, VMDK_REPORT_INFO, "%u more findings not listed", r.suppressed);
        tot->problems += r.problems;
        tot->repaired += r.repaired;
        tot->unrepaired += r.unrepaired;
        tot->cantfix += r.cantfix;
    }
    return rc;
}

/* Open the link as Open does (no locks: this process holds them); a
 * refusal becomes a finding that no repair fixes. */
static void probe_open(struct ck *c, struct sx_report *tot)
{
    struct link *l = NULL;
    int rc = link_open(c->path, 0, 0, 0, &l);
    if (rc == 0) {
        link_close(l);
        return;
    }
    /* Open's message names the file at fault first (the link's or one of
     * its extents): the finding names it once. */
    char msg[900];
    const char *m = vd_err_msg(), *who = c->path;
    for (size_t i = 0; i <= c->n; i++) {
        const char *cand = i < c->n ? (c->paths ? c->paths[i] : NULL) : c->path;
        size_t pl = cand ? strlen(cand) : 0;
        if (cand && !strncmp(m, cand, pl) && m[pl] == ':' && m[pl + 1] == ' ') {
            who = cand;
            m += pl + 2;
            break;
        }
    }
    snprintf(msg, sizeof msg, "cannot be opened: %s", m);
    struct sx_report r = { .fn = tot->fn, .ctx = tot->ctx, .path = who };
    lost(&r, msg);
    tot->problems += r.problems;
    tot->unrepaired += r.unrepaired;
    tot->cantfix += r.cantfix;
}

static void ck_free(struct ck *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->fds && c->fds[i] >= 0 && c->fds[i] != c->dfd)
            close(c->fds[i]);
        if (c->paths)
            free(c->paths[i]);
    }
    free(c->fds);
    free(c->paths);
    free(c->missing);
    desc_free(&c->d);
    free(c->dir);
    jn_free(c->jn);
    if (c->dfd >= 0)
        close(c->dfd);
}

static void summary(struct sx_report *t, const char *extra)
{
    if (!t->problems)
        sx_say(t, VMDK_REPORT_INFO, "no problems found");
    else
        sx_say(t, VMDK_REPORT_INFO, "%u problem%s found, %u repaired, %u left%s",
               t->problems, t->problems == 1 ? "" : "s", t->repaired, t->unrepaired,
               extra ? extra : "");
}

int vmdk_check(const char *path, int repair, vmdk_report_fn report, void *ctx,
               struct vmdk_check_result *res)
{
    vd_err_clear();
    if (res)
        memset(res, 0, sizeof *res);
    if (!path || !*path)
        return vd_err_set(VD_E_INVAL, "no disk path given");
    struct ck c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.dfd = -1;
    struct sx_report tot = { .fn = report, .ctx = ctx, .path = path };
    unsigned pre_problems = 0, pre_repaired = 0;
    int rc = open_locked(path, repair, &c.dfd);
    if (rc < 0)
        return rc;
    if (!(c.dir = vd_path_dir(path))) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }

    /* A repair killed earlier: roll it back first (or report it). */
    char *jp = jn_path(path);
    if (!jp) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    struct stat jst;
    int have_journal = lstat(jp, &jst) == 0;
    if (have_journal && !repair) {
        tot.problems = tot.unrepaired = 1;
        sx_say(&tot, VMDK_REPORT_PROBLEM, "a repair was interrupted: %s holds what it "
               "overwrote; the disk may be half repaired (a repair rolls it back, then "
               "repairs again)", jp);
        free(jp);
        summary(&tot, NULL);
        goto result;
    }
    if (have_journal) {
        if ((rc = jn_recover(path)) < 0) {
            free(jp);
            goto out;
        }
        pre_problems = pre_repaired = 1;
        tot.fn = report;
        sx_say(&tot, VMDK_REPORT_REPAIRED, "a repair was interrupted: rolled back from %s "
               "(repaired)", jp);
    }
    free(jp);

    if ((rc = read_descriptor(path, c.dfd, &c.d, &c.embedded, &c.emb)) < 0)
        goto out;
    c.n = desc_num_extents(&c.d);
    if (c.n == 0) {
        rc = vd_err_set(VD_E_CORRUPT, "%s: descriptor lists no extents", path);
        goto out;
    }
    c.fds = malloc(c.n * sizeof *c.fds);
    c.paths = calloc(c.n, sizeof *c.paths);
    c.missing = calloc(c.n, sizeof *c.missing);
    if (!c.fds || !c.paths || !c.missing) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < c.n; i++)
        c.fds[i] = -1;
    for (size_t i = 0; i < c.n && rc == 0; i++) {
        const struct desc_extent *de = desc_extent(&c.d, i);
        if (!de->file)
            continue;
        int emb0 = c.embedded && i == 0;
        c.paths[i] = emb0 ? vd_strdup(path) : vd_path_join(c.dir, de->file);
        if (!c.paths[i]) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            break;
        }
        if (emb0) {
            c.fds[i] = c.dfd;
            continue;
        }
        rc = open_locked(c.paths[i], repair, &c.fds[i]);
        if (rc == -VD_E_NOTFOUND) {
            c.missing[i] = 1;
            rc = 0;
        }
    }
    if (rc < 0)
        goto out;
    sx_say(&tot, VMDK_REPORT_INFO, "checking %zu extent%s%s", c.n, c.n == 1 ? "" : "s",
           repair ? " (repair on)" : "");

    if (!repair) {
        if ((rc = pass(&c, 0, report, ctx, &tot)) < 0)
            goto out;
        if (!tot.problems)
            probe_open(&c, &tot);
        summary(&tot, NULL);
        goto result;
    }

    /* Repair: decide first, without writing. */
    struct sx_report dry;
    if ((rc = pass(&c, 0, NULL, NULL, &dry)) < 0)
        goto out;
    if (!dry.problems) {
        memset(&tot, 0, sizeof tot);
        tot.fn = report;
        tot.ctx = ctx;
        tot.path = path;
        probe_open(&c, &tot);
        tot.problems += pre_problems;
        tot.repaired += pre_repaired;
        summary(&tot, NULL);
        goto result;
    }
    if (dry.cantfix) {
        /* Report every finding as a check does; write nothing. */
        if ((rc = pass(&c, 0, report, ctx, &tot)) < 0)
            goto out;
        tot.problems += pre_problems;
        tot.repaired += pre_repaired;
        summary(&tot, "; nothing was changed, since some problems cannot be repaired");
        goto result;
    }
    if (!(c.jn = jn_new(path, report, ctx))) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    rc = pass(&c, 1, report, ctx, &tot);
    struct sx_report after = { 0 };
    if (rc == 0)
        rc = pass(&c, 0, NULL, NULL, &after);
    if (rc == 0 && !after.problems) {
        probe_open(&c, &after);
        vd_err_clear();
    }
    if (rc < 0 || after.problems) {
        /* Put everything back: the files are as before the repair. */
        char msg[1024];
        int code = rc < 0 ? vd_err_code() : 0;
        snprintf(msg, sizeof msg, "%s", rc < 0 ? vd_err_msg() : "");
        int ur = jn_undo(c.jn);
        if (rc < 0) {
            if (ur < 0)
                vd_err_set(code, "%s (rolling the repair back failed too; its undo journal "
                           "is kept for the next repair)", msg);
            else
                vd_err_set(code, "%s (the repair was rolled back; nothing is changed)", msg);
            goto out;
        }
        if (ur < 0) {
            rc = ur;
            goto out;
        }
        tot.problems += 1;
        tot.unrepaired += 1;
        tot.cantfix += 1;
        sx_say(&tot, VMDK_REPORT_PROBLEM, "the repair did not leave a consistent disk (%u "
               "problem%s remained); it was rolled back and nothing is changed (cannot repair)",
               after.problems, after.problems == 1 ? "" : "s");
        tot.repaired = 0;
        tot.unrepaired = tot.problems;
        tot.problems += pre_problems;
        tot.repaired += pre_repaired;
        summary(&tot, NULL);
        goto result;
    }
    if ((rc = jn_commit(c.jn)) < 0)
        goto out;
    tot.problems += pre_problems;
    tot.repaired += pre_repaired;
    summary(&tot, NULL);

result:
    if (res) {
        res->problems = tot.problems;
        res->repaired = tot.repaired;
        res->unrepaired = tot.unrepaired;
        res->cantfix = tot.cantfix;
    }
out:
    ck_free(&c);
    return rc;
}
