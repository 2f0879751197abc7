/* rename.c - rename a disk: its descriptor and the extent files it names.
 *
 * Order for a separate descriptor: hard-link every extent under its new
 * name, write the new descriptor, remove the old descriptor, remove the old
 * extent names.  An interruption leaves the old disk intact (and at worst
 * some extra links).  A monolithic file is renamed in one step after its
 * embedded extent line is updated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "../util/fileio.h"
#include "../vmdk/link.h"

/* New base name for an extent file: the old stem replaced by the new. */
static char *new_extent_name(const char *old_base, const char *src_stem, const char *dst_stem)
{
    size_t sl = strlen(src_stem);
    if (strncmp(old_base, src_stem, sl) == 0)
        return vd_asprintf("%s%s", dst_stem, old_base + sl);
    return vd_strdup(old_base);
}

static int write_new_file(const char *path, const char *text, size_t len, mode_t mode)
{
    char *tmp = vd_asprintf("%s.tmp-XXXXXX", path);
    if (!tmp)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = vd_err_errno(errno, "%s: cannot create", tmp);
        free(tmp);
        return rc;
    }
    int rc = 0;
    /* mkstemp makes 0600 files; a descriptor is as readable as its extents. */
    (void)fchmod(fd, mode);
    if (vd_pwrite_full(fd, text, len, 0) < 0 || fsync(fd) < 0)
        rc = vd_err_errno(errno, "%s: writing", tmp);
    close(fd);
    /* link() refuses an existing target, so a racing creator is not lost. */
    if (rc == 0 && link(tmp, path) < 0)
        rc = vd_err_errno(errno, "%s: cannot create", path);
    unlink(tmp);
    free(tmp);
    return rc;
}

int ops_rename(const char *src, const char *dst)
{
    if (!src || !dst || !*src || !*dst)
        return vd_err_set(VD_E_INVAL, "source and destination names are required");
    int nrc = vd_check_desc_name(dst, vd_path_base(dst), NULL);
    if (nrc < 0)
        return nrc;
    if (access(dst, F_OK) == 0)
        return vd_err_set(VD_E_EXISTS, "%s: file already exists", dst);
    struct link *l;
    int rc = link_open(src, 1, 1, 0, &l);
    if (rc < 0)
        return rc;
    char *src_stem = vd_path_stem(vd_path_base(src));
    char *dst_stem = vd_path_stem(vd_path_base(dst));
    char *dst_dir = vd_path_dir(dst);
    size_t n = desc_num_extents(&l->desc);
    char **old_paths = calloc(n + 1, sizeof *old_paths);
    char **new_paths = calloc(n + 1, sizeof *new_paths);
    size_t linked = 0;
    if (!src_stem || !dst_stem || !dst_dir || !old_paths || !new_paths) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
        goto out;
    }

    /* A child keeps pointing at the same parent from its new place. */
    const char *hint = desc_get(&l->desc, "parentFileNameHint");
    if (hint && hint[0] != '/') {
        char *parent = vd_path_join(l->dir, hint);
        char *nh = parent ? vmdk_parent_hint_for(dst, parent) : NULL;
        if (!nh) {
            rc = parent && access(parent, F_OK) != 0
                     ? vd_err_set(VD_E_NOTFOUND, "%s: parent %s not found; cannot keep the "
                                  "child linked to it after the rename", src, parent)
                     : vd_err_set(VD_E_NOMEM, "out of memory");
            free(parent);
            goto out;
        }
        free(parent);
        rc = vd_check_desc_name(dst, nh, "parent hint");
        if (rc == 0)
            rc = desc_set(&l->desc, "parentFileNameHint", nh);
        free(nh);
        if (rc < 0)
            goto out;
    }

    if (l->embedded) {
        struct desc_extent *e = desc_extent(&l->desc, 0);
        char *nn = vd_strdup(vd_path_base(dst));
        if (!nn) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out;
        }
        free(e->file);
        e->file = nn;
        if ((rc = desc_extent_changed(&l->desc, 0)) < 0 ||
            (rc = link_write_descriptor(l)) < 0)
            goto out;
        /* link+unlink instead of rename(2): it never replaces a dst
         * that appeared meanwhile. */
        if (link(src, dst) < 0) {
            rc = vd_err_errno(errno, "%s: cannot rename to %s", src, dst);
            goto out;
        }
        if (unlink(src) < 0)
            rc = vd_err_errno(errno, "%s: renamed to %s but the old name remains", src, dst);
        goto out;
    }

    /* Separate descriptor: new names for every extent file. */
    for (size_t i = 0; i < n; i++) {
        struct desc_extent *e = desc_extent(&l->desc, i);
        if (!e->file || e->file[0] == '/')
            continue;   /* ZERO extents and absolute paths stay as they are */
        char *nb = new_extent_name(vd_path_base(e->file), src_stem, dst_stem);
        if (!nb) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out;
        }
        old_paths[i] = vd_path_join(l->dir, e->file);
        new_paths[i] = vd_path_join(dst_dir, nb);
        free(e->file);
        e->file = nb;
        if (!old_paths[i] || !new_paths[i]) {
            rc = vd_err_set(VD_E_NOMEM, "out of memory");
            goto out;
        }
        if ((rc = desc_extent_changed(&l->desc, i)) < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++, linked = i) {
        if (!old_paths[i] || strcmp(old_paths[i], new_paths[i]) == 0)
            continue;
        if (link(old_paths[i], new_paths[i]) < 0) {
            rc = vd_err_errno(errno, "%s: cannot create %s", old_paths[i], new_paths[i]);
            goto undo;
        }
    }
    linked = n;
    size_t len;
    char *text = desc_format(&l->desc, &len);
    if (!text) {
        rc = -VD_E_NOMEM;
        goto undo;
    }
    struct stat st;
    mode_t mode = fstat(l->desc_fd, &st) == 0 ? st.st_mode & 0777 : 0644;
    rc = write_new_file(dst, text, len, mode);
    free(text);
    if (rc < 0)
        goto undo;
    /* The new disk is complete; drop the old names. */
    unlink(src);
    for (size_t i = 0; i < n; i++)
        if (old_paths[i] && strcmp(old_paths[i], new_paths[i]) != 0)
            unlink(old_paths[i]);
    goto out;
undo:
    for (size_t i = 0; i < linked; i++)
        if (old_paths[i] && strcmp(old_paths[i], new_paths[i]) != 0)
            unlink(new_paths[i]);
out:
    for (size_t i = 0; i < n && old_paths && new_paths; i++) {
        free(old_paths[i]);
        free(new_paths[i]);
    }
    free(old_paths);
    free(new_paths);
    free(src_stem);
    free(dst_stem);
    free(dst_dir);
    link_close(l);
    return rc;
}
