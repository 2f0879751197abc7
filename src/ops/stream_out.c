/* stream_out.c - a new streamOptimized disk written in one pass from data
 * the caller pushes at increasing offsets (vddk_disk_stream_*).
 *
 * Writes are copied into the current batch of the compression pipeline
 * (stream_pipe.c, push mode); a batch is handed to the workers as soon as
 * nothing more can land in it (it is full, or a write starts past it) and
 * the compressed grains go to the stream writer in order.  As for a clone,
 * the file is built under a hidden temporary name in the destination's
 * directory and linked into place only when it is complete and durable;
 * any error, or a close without commit, removes it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ops.h"
#include "stream_pipe.h"
#include "../util/fileio.h"

struct ops_stream {
    char *path;
    char *tmp;
    uint64_t capacity;                   /* bytes */
    struct vmdk_stream *w;
    struct stream_pipe *pipe;
    struct sp_batch *cur;                /* being filled, or NULL */
    uint64_t end;                        /* end of the previous write */
    int err;                             /* first error: the stream is lost */
    char errmsg[1024];
};

int ops_stream_create(const char *path, const struct vmdk_create_params *p,
                      struct ops_stream **out)
{
    if (!path || !*path || !p || !out)
        return vd_err_set(VD_E_INVAL, "a stream needs a path and create parameters");
    if (p->type != VMDK_TYPE_STREAM_OPTIMIZED)
        return vd_err_set(VD_E_INVAL, "%s: a one-pass stream writes only streamOptimized "
                          "disks, not %s", path, vmdk_type_name(p->type));
    int nrc = vd_check_desc_name(path, vd_path_base(path), NULL);
    if (nrc < 0)
        return nrc;
    struct stat st;
    if (lstat(path, &st) == 0)
        return vd_err_set(VD_E_EXISTS, "%s: file already exists", path);
    ops_sweep_temps(path);
    struct ops_stream *s = calloc(1, sizeof *s);
    char *desc = NULL;
    size_t dlen;
    int rc;
    if (!s || !(s->path = vd_strdup(path)) || !(s->tmp = ops_temp_name(path))) {
        rc = vd_err_set(VD_E_NOMEM, "out of memory");
    } else {
        struct vmdk_create_params cp = *p;
        s->capacity = p->capacity;
        rc = vmdk_stream_descriptor(vd_path_base(path), &cp, &desc, &dlen);
    }
    if (rc == 0)
        rc = vmdk_stream_create(s->tmp, desc, dlen, s->capacity, &s->w);
    free(desc);
    if (rc == 0 && (rc = sp_start(s->w, NULL, NULL, 0, &s->pipe)) < 0)
        vmdk_stream_abort(s->w);
    if (rc < 0) {
        if (s) {
            free(s->path);
            free(s->tmp);
        }
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Hand the current batch to the workers. */
static int submit(struct ops_stream *s)
{
    int rc = sp_put(s->pipe, s->cur);
    s->cur = NULL;
    return rc;
}

/* Copy [off, off + len) into batches, in range and not going backwards. */
static int place(struct ops_stream *s, uint64_t off, const unsigned char *buf, size_t len)
{
    int rc = 0;
    while (rc == 0 && len) {
        uint64_t bi = off / SP_BATCH_BYTES, base = bi * SP_BATCH_BYTES;
        if (s->cur && s->cur->index != bi && (rc = submit(s)) < 0)
            break;
        if (!s->cur) {
            if ((rc = sp_get(s->pipe, &s->cur)) < 0)
                break;
            s->cur->index = bi;
        }
        struct sp_batch *b = s->cur;
        size_t at = (size_t)(off - base);
        size_t n = len < SP_BATCH_BYTES - at ? len : (size_t)(SP_BATCH_BYTES - at);
        if (at > b->len)                 /* a gap reads as zeros */
            memset(b->raw + b->len, 0, at - b->len);
        memcpy(b->raw + at, buf, n);
        b->len = at + n;
        off += n;
        buf += n;
        len -= n;
        /* Full, or at the end of the disk: nothing more can come. */
        if (b->len == SP_BATCH_BYTES || base + b->len == s->capacity)
            rc = submit(s);
    }
    return rc;
}

int ops_stream_write(struct ops_stream *s, uint64_t off, const void *buf, size_t len)
{
    if (!s || (!buf && len))
        return vd_err_set(VD_E_INVAL, "a stream write needs a stream and a buffer");
    if (s->err)
        return vd_err_set(s->err, "an earlier write failed: %s", s->errmsg);
    int rc;
    if (off < s->end)
        rc = vd_err_set(VD_E_INVAL, "%s: write at byte %" PRIu64 " goes backwards (the "
                        "previous write ended at byte %" PRIu64 ")", s->path, off, s->end);
    else if (off > s->capacity || len > s->capacity - off)
        rc = vd_err_set(VD_E_RANGE, "%s: write of %zu bytes at byte %" PRIu64 " is past the "
                        "capacity (%" PRIu64 " bytes)", s->path, len, off, s->capacity);
    else if (!len)
        return 0;
    else if ((rc = place(s, off, buf, len)) == 0)
        s->end = off + len;
    else
        vd_err_prefix("%s: writing %zu bytes at byte %" PRIu64, s->path, len, off);
    if (rc < 0) {
        s->err = vd_err_code();
        snprintf(s->errmsg, sizeof s->errmsg, "%s", vd_err_msg());
    }
    return rc;
}

int ops_stream_close(struct ops_stream *s, int commit)
{
    if (!s)
        return vd_err_set(VD_E_INVAL, "no stream to close");
    int rc = s->err ? vd_err_set(s->err, "not committed, an earlier write failed: %s",
                                 s->errmsg) : 0;
    if (rc == 0 && commit) {
        if (s->cur)
            rc = submit(s);
        if (rc == 0)
            rc = sp_drain(s->pipe);
        if (rc < 0)
            vd_err_prefix("%s: writing the last grains", s->path);
    }
    sp_stop(s->pipe);
    if (rc == 0 && commit) {
        /* finish removes the file itself if it fails */
        if ((rc = vmdk_stream_finish(s->w)) == 0)
            rc = ops_link_temp(s->tmp, s->path);
        else
            vd_err_prefix("%s: finishing", s->path);
    } else {
        vmdk_stream_abort(s->w);
    }
    free(s->path);
    free(s->tmp);
    free(s);
    return commit ? rc : 0;
}
