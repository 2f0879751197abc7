/* maint_check.c - CheckRepair for one link: its descriptor and extents.
 *
 * The link is not opened through link_open, which refuses damaged
 * metadata: the descriptor is read and parsed here and every extent file
 * is opened raw (read-only without repair, so a check never writes;
 * read-write with repair) and locked like an open of the disk (shared
 * for a check, exclusive for a repair: a disk open for writing elsewhere
 * is VD_E_LOCKED).  Hosted sparse extents get the full check of
 * maint_sx.c; flat extents are checked against their size in the
 * descriptor (a short file is extended on repair); compressed and ESX
 * sparse extents are only noted. */
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
    int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return vd_err_errno(errno, "%s: cannot open", path);
    int rc = vd_lock_fd(fd, repair, path);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    *fdp = fd;
    return 0;
}

/* The descriptor of the link whose file is open at fd. */
static int read_descriptor(const char *path, int fd, struct descriptor *d, int *embedded)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    uint64_t size = (uint64_t)st.st_size, off = 0, n = size;
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
        if (!hi.desc_off)
            return vd_err_set(VD_E_UNSUPPORTED, "%s: sparse extent without an embedded "
                              "descriptor; check the descriptor file that names it", path);
        if (!hi.desc_size || hi.desc_size > MAX_EMBEDDED_SECTORS || hi.desc_off >= size / 512)
            return vd_err_set(VD_E_CORRUPT, "%s: embedded descriptor (sector %" PRIu64 ", %"
                              PRIu64 " sectors) is not usable", path, hi.desc_off,
                              hi.desc_size);
        *embedded = 1;
        off = hi.desc_off * 512;
        n = size - off < hi.desc_size * 512 ? size - off : hi.desc_size * 512;
    } else if (!memcmp(magic, "COWD", 4) || !memcmp(magic, "\xbe\xba\xfe\xca", 4)) {
        return vd_err_set(VD_E_UNSUPPORTED, "%s: an ESX sparse extent; check the descriptor "
                          "file that names it", path);
    } else if (size > MAX_TEXT_DESCRIPTOR) {
        return vd_err_set(VD_E_CORRUPT, "%s: not a VMDK descriptor (too large and no sparse "
                          "header)", path);
    }
    char *text = malloc(n + 1);
    if (!text)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int rc = 0;
    if (vd_pread_full(fd, text, n, off, 1) < 0)
        rc = vd_err_errno(errno ? errno : EIO, "%s: reading descriptor", path);
    else
        rc = desc_parse(d, text, n, path);
    free(text);
    return rc;
}

static int check_flat(int fd, const char *path, const struct desc_extent *de, int repair,
                      struct sx_report *r)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vd_err_errno(errno, "%s: stat", path);
    uint64_t need = ((de->has_offset ? de->offset : 0) + de->sectors) * 512;
    if ((uint64_t)st.st_size >= need)
        return 0;
    r->problems++;
    if (repair) {
        if (ftruncate(fd, (off_t)need) < 0 || fsync(fd) < 0)
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

static void lost(struct sx_report *r, int repair, const char *what)
{
    r->problems++;
    r->unrepaired++;
    sx_say(r, VMDK_REPORT_PROBLEM, "%s%s", what, repair ? " (cannot repair)" : "");
}

int vmdk_check(const char *path, int repair, vmdk_report_fn report, void *ctx,
               struct vmdk_check_result *res)
{
    vd_err_clear();
    if (res)
        memset(res, 0, sizeof *res);
    if (!path || !*path)
        return vd_err_set(VD_E_INVAL, "no disk path given");
    int dfd = -1, rc = open_locked(path, repair, &dfd);
    if (rc < 0)
        return rc;
    struct descriptor d = { 0 };
    int embedded = 0;
    char *dir = vd_path_dir(path);
    if (!dir) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = read_descriptor(path, dfd, &d, &embedded)) < 0)
        goto out;
    size_t n = desc_num_extents(&d);
    if (n == 0) {
        rc = vd_err_set(VD_E_CORRUPT, "%s: descriptor lists no extents", path);
        goto out;
    }
    struct sx_report total = { .fn = report, .ctx = ctx, .path = path };
    sx_say(&total, VMDK_REPORT_INFO, "checking %zu extent%s%s", n, n == 1 ? "" : "s",
           repair ? " (repair on)" : "");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct desc_extent *de = desc_extent(&d, i);
        if (!de->file) {
            continue;                                  /* ZERO */
        }
        char *ep = embedded && i == 0 ? vd_strdup(path) : vd_path_join(dir, de->file);
        if (!ep) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            break;
        }
        struct sx_report r = { .fn = report, .ctx = ctx, .path = ep };
        int fd = -1, own = 0;
        if (embedded && i == 0) {
            fd = dfd;
        } else {
            rc = open_locked(ep, repair, &fd);
            own = 1;
            if (rc == -VD_E_NOTFOUND) {
                lost(&r, repair, "extent file is missing");
                rc = 0;
                fd = -1;
            }
        }
        if (rc == 0 && fd >= 0) {
            if (!strcmp(de->type, "SPARSE")) {
                struct sx x;
                int lr = sx_load(&x, fd, ep);
                if (lr == -VD_E_UNSUPPORTED) {
                    sx_say(&r, VMDK_REPORT_INFO, "compressed (streamOptimized) extent: header "
                           "is valid, grains are not checked");
                } else if (lr == -VD_E_CORRUPT) {
                    lost(&r, repair, vd_err_msg());
                } else if (lr < 0) {
                    rc = lr;
                } else {
                    rc = sx_check(&x, de->sectors, repair, 0, &r);
                }
                sx_free(&x);
            } else if (!strcmp(de->type, "FLAT") || !strcmp(de->type, "VMFS")) {
                rc = check_flat(fd, ep, de, repair, &r);
            } else {
                sx_say(&r, VMDK_REPORT_INFO, "%s extents are not checked", de->type);
            }
        }
        if (r.suppressed)
            sx_say(&r, VMDK_REPORT_INFO, "%u more findings not listed", r.suppressed);
        total.problems += r.problems;
        total.repaired += r.repaired;
        total.unrepaired += r.unrepaired;
        if (own && fd >= 0)
            close(fd);
        free(ep);
    }
    if (rc == 0) {
        if (!total.problems)
            sx_say(&total, VMDK_REPORT_INFO, "no problems found");
        else
            sx_say(&total, VMDK_REPORT_INFO, "%u problem%s found, %u repaired, %u left",
                   total.problems, total.problems == 1 ? "" : "s", total.repaired,
                   total.unrepaired);
        if (res) {
            res->problems = total.problems;
            res->repaired = total.repaired;
            res->unrepaired = total.unrepaired;
        }
    }
out:
    desc_free(&d);
    free(dir);
    close(dfd);
    return rc;
}
