/* stream_writer.c - write a streamOptimized file in one pass.
 *
 * The layout is the one VMware products require: version 3, flags
 * 0x30001, GD_AT_END in the header, the embedded descriptor, compressed
 * grains with markers in increasing LBA order, each grain table behind a GT
 * marker after its grains (all-empty tables omitted), the grain directory
 * behind a GD marker, a footer marker with the footer, and an
 * end-of-stream marker.  The header is written last, so an interrupted
 * write never leaves a file that opens as a valid disk.  The caller
 * compresses grains (zlib format); the writer only places them. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "link.h"
#include "sparse_header.h"
#include "vmdk.h"
#include "../util/err.h"
#include "../util/fileio.h"

#define GRAIN 128u
#define NUM_GTES 512u
#define DESC_OFF 1u
#define DESC_SIZE 20u
#define OVERHEAD 128u
#define OUTBUF (1u << 20)
#define MARKER_EOS 0
#define MARKER_GT 1
#define MARKER_GD 2
#define MARKER_FOOTER 3

struct vmdk_stream {
    char *path;
    int fd;
    uint64_t capacity;        /* sectors */
    uint64_t n_gd;
    uint32_t *gd;
    uint32_t gt[NUM_GTES];
    uint64_t gt_index;        /* table being filled, UINT64_MAX = none */
    int gt_used;
    uint64_t last_grain;      /* for the increasing-order check */
    int any_grain;
    uint64_t pos;             /* file offset where the buffer starts */
    unsigned char *buf;
    size_t used;
};

static void wr32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

static int flush_buf(struct vmdk_stream *w)
{
    if (w->used && vd_pwrite_full(w->fd, w->buf, w->used, w->pos) < 0)
        return vd_err_errno(errno, "%s: writing", w->path);
    w->pos += w->used;
    w->used = 0;
    return 0;
}

/* Append len bytes, then zero padding to a sector boundary. */
static int put(struct vmdk_stream *w, const void *data, size_t len)
{
    size_t padded = (len + 511) / 512 * 512;
    if (w->used + padded > OUTBUF) {
        int rc = flush_buf(w);
        if (rc < 0)
            return rc;
    }
    if (padded > OUTBUF) {       /* larger than the buffer: write through */
        unsigned char *tmp = calloc(1, padded);
        if (!tmp)
            return vd_err_set(VD_E_NOMEM, "out of memory");
        memcpy(tmp, data, len);
        int rc = vd_pwrite_full(w->fd, tmp, padded, w->pos) < 0
                     ? vd_err_errno(errno, "%s: writing", w->path) : 0;
        free(tmp);
        w->pos += padded;
        return rc;
    }
    memcpy(w->buf + w->used, data, len);
    memset(w->buf + w->used + len, 0, padded - len);
    w->used += padded;
    return 0;
}

static uint64_t cur_sector(const struct vmdk_stream *w)
{
    return (w->pos + w->used) / 512;
}

static int put_marker(struct vmdk_stream *w, uint64_t sectors, uint32_t type)
{
    unsigned char m[512];
    memset(m, 0, sizeof m);
    wr64(m, sectors);
    wr32(m + 12, type);
    return put(w, m, sizeof m);
}

/* Close the current grain table: GT marker + table, entry in the GD. */
static int end_gt(struct vmdk_stream *w)
{
    if (w->gt_index == UINT64_MAX || !w->gt_used)
        return 0;
    int rc = put_marker(w, NUM_GTES * 4 / 512, MARKER_GT);
    if (rc < 0)
        return rc;
    w->gd[w->gt_index] = (uint32_t)cur_sector(w);
    uint32_t le[NUM_GTES];
    for (unsigned i = 0; i < NUM_GTES; i++)
        le[i] = htole32(w->gt[i]);
    rc = put(w, le, sizeof le);
    memset(w->gt, 0, sizeof w->gt);
    w->gt_used = 0;
    return rc;
}

int vmdk_stream_create(const char *path, const char *descriptor, size_t desc_len,
                       uint64_t capacity_bytes, struct vmdk_stream **out)
{
    if (desc_len > DESC_SIZE * 512)
        return vd_err_set(VD_E_NOSPACE, "%s: descriptor of %zu bytes does not fit", path,
                          desc_len);
    uint64_t sectors = (capacity_bytes + 511) / 512;
    if (sectors / GRAIN + OVERHEAD > UINT32_MAX / 2)
        return vd_err_set(VD_E_INVAL, "%s: %" PRIu64 " bytes is too large for a "
                          "streamOptimized disk", path, capacity_bytes);
    struct vmdk_stream *w = calloc(1, sizeof *w);
    if (!w)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    w->fd = -1;
    w->capacity = sectors;
    w->n_gd = (sectors + (uint64_t)GRAIN * NUM_GTES - 1) / ((uint64_t)GRAIN * NUM_GTES);
    w->gd = calloc(w->n_gd ? w->n_gd : 1, 4);
    w->buf = malloc(OUTBUF);
    w->path = vd_strdup(path);
    w->gt_index = UINT64_MAX;
    if (!w->gd || !w->buf || !w->path) {
        vmdk_stream_abort(w);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    w->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        int rc = errno == EEXIST ? vd_err_set(VD_E_EXISTS, "%s: file already exists", path)
                                 : vd_err_errno(errno, "%s: cannot create", path);
        free(w->path);
        w->path = NULL;         /* not ours to remove */
        vmdk_stream_abort(w);
        return rc;
    }
    /* Locked while it is written, so that no one takes it for the
     * leftover of a killed clone (ops/clone.c); best effort. */
    if (vd_lock_fd(w->fd, 1, path) < 0)
        vd_err_clear();
    /* Sector 0 stays zero (no valid magic) until finish. */
    unsigned char *area = calloc(1, OVERHEAD * 512);
    if (!area) {
        vmdk_stream_abort(w);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    memcpy(area + DESC_OFF * 512, descriptor, desc_len);
    int rc = vd_pwrite_full(w->fd, area, OVERHEAD * 512, 0) < 0
                 ? vd_err_errno(errno, "%s: writing descriptor", path) : 0;
    free(area);
    if (rc < 0) {
        vmdk_stream_abort(w);
        return rc;
    }
    w->pos = OVERHEAD * 512;
    *out = w;
    return 0;
}

int vmdk_stream_add_grain(struct vmdk_stream *w, uint64_t grain, const void *zdata,
                          size_t zlen)
{
    if (grain * GRAIN >= w->capacity || (w->any_grain && grain <= w->last_grain) || !zlen ||
        zlen > UINT32_MAX)
        return vd_err_set(VD_E_INVAL, "%s: grain %" PRIu64 " out of order or out of range",
                          w->path, grain);
    uint64_t gi = grain / NUM_GTES;
    int rc;
    if (gi != w->gt_index) {
        if ((rc = end_gt(w)) < 0)
            return rc;
        w->gt_index = gi;
    }
    w->gt[grain % NUM_GTES] = (uint32_t)cur_sector(w);
    w->gt_used = 1;
    w->last_grain = grain;
    w->any_grain = 1;
    /* Marker header and data as one padded record. */
    size_t rec = 12 + zlen, padded = (rec + 511) / 512 * 512;
    if (w->used + padded > OUTBUF && (rc = flush_buf(w)) < 0)
        return rc;
    if (padded <= OUTBUF) {
        unsigned char *p = w->buf + w->used;
        wr64(p, grain * GRAIN);
        wr32(p + 8, (uint32_t)zlen);
        memcpy(p + 12, zdata, zlen);
        memset(p + rec, 0, padded - rec);
        w->used += padded;
        return 0;
    }
    unsigned char *tmp = malloc(rec);
    if (!tmp)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    wr64(tmp, grain * GRAIN);
    wr32(tmp + 8, (uint32_t)zlen);
    memcpy(tmp + 12, zdata, zlen);
    rc = put(w, tmp, rec);
    free(tmp);
    return rc;
}

int vmdk_stream_finish(struct vmdk_stream *w)
{
    int rc = end_gt(w);
    uint64_t gd_sectors = (w->n_gd * 4 + 511) / 512;
    uint64_t gd_at = 0;
    if (rc == 0 && (rc = put_marker(w, gd_sectors, MARKER_GD)) == 0) {
        gd_at = cur_sector(w);
        for (uint64_t i = 0; i < w->n_gd; i++)
            w->gd[i] = htole32(w->gd[i]);
        rc = put(w, w->gd, w->n_gd * 4);
    }
    struct kdmv_header h = {
        .version = 3, .flags = KDMV_FLAG_NL_TEST | KDMV_FLAG_COMPRESSED | KDMV_FLAG_MARKERS,
        .capacity = w->capacity, .grain = GRAIN, .desc_off = DESC_OFF,
        .desc_size = DESC_SIZE, .num_gtes = NUM_GTES, .rgd_off = 0, .gd_off = gd_at,
        .overhead = OVERHEAD, .compress = 1,
    };
    unsigned char hb[512];
    kdmv_header_encode(&h, hb);
    if (rc == 0 && (rc = put_marker(w, 1, MARKER_FOOTER)) == 0)
        rc = put(w, hb, sizeof hb);
    unsigned char eos[512] = { 0 };
    if (rc == 0)
        rc = put(w, eos, sizeof eos);       /* end-of-stream marker */
    if (rc == 0)
        rc = flush_buf(w);
    if (rc == 0 && fdatasync(w->fd) < 0)
        rc = vd_err_errno(errno, "%s: sync", w->path);
    h.gd_off = KDMV_GD_AT_END;
    kdmv_header_encode(&h, hb);
    if (rc == 0 && (vd_pwrite_full(w->fd, hb, sizeof hb, 0) < 0 || fsync(w->fd) < 0))
        rc = vd_err_errno(errno, "%s: writing header", w->path);
    if (rc < 0) {
        vmdk_stream_abort(w);
        return rc;
    }
    close(w->fd);
    free(w->gd);
    free(w->buf);
    free(w->path);
    free(w);
    return 0;
}

void vmdk_stream_abort(struct vmdk_stream *w)
{
    if (!w)
        return;
    if (w->fd >= 0) {
        close(w->fd);
        if (w->path)
            unlink(w->path);
    }
    free(w->gd);
    free(w->buf);
    free(w->path);
    free(w);
}
