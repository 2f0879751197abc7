/* extent.h - one extent of a link, behind a small table of operations.
 *
 * An extent answers "where does this byte range live?" (map) and, for
 * growable kinds, allocates storage for a range that has none (write_alloc).
 * Offsets given to these operations are relative to the extent's start. */
#ifndef VD_VMDK_EXTENT_H
#define VD_VMDK_EXTENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "descriptor.h"
#include "../util/vfile.h"

enum map_kind {
    MAP_DATA,  /* bytes at file_off in the extent's file */
    MAP_ZERO,  /* reads as zeros, do not look further down the chain */
    MAP_HOLE,  /* nothing here: look in the parent (zeros at the base) */
    MAP_EXT,   /* data the extent must produce itself (ops->read): compressed grains */
};

struct extent_map {
    enum map_kind kind;
    uint64_t file_off;  /* MAP_DATA only */
    uint64_t len;       /* bytes covered, > 0 */
};

struct extent;

/* Reads len bytes at link offset off from the links below the one being
 * written (copy-on-write source).  Returns 0 or a negative vd_err. */
typedef int (*cow_read_fn)(void *ctx, void *buf, size_t len, uint64_t link_off);

struct extent_ops {
    const char *name;
    /* Describe a prefix of [off, off+len). */
    int (*map)(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m);
    /* Read a range that map() reported as MAP_EXT. */
    int (*read)(struct extent *e, uint64_t off, void *buf, size_t len);
    /* Write a range that map() reported as HOLE or ZERO.  NULL: not possible. */
    int (*write_alloc)(struct extent *e, uint64_t off, const void *buf, size_t len,
                       cow_read_fn cow, void *cow_ctx);
    /* Make the whole grains [off, off+len), which map() reported as HOLE,
     * read as zeros without storing data (zeroed-grain entries).  NULL:
     * the kind has no such entries (zeros are then written as data). */
    int (*zero_grains)(struct extent *e, uint64_t off, uint64_t len);
    /* Called once before the first write (sets the unclean-shutdown flag). */
    int (*begin_write)(struct extent *e);
    /* Make every write durable in the right order.  NULL: fdatasync. */
    int (*flush)(struct extent *e);
    /* Called on clean close after a final flush (clears the flag). */
    int (*end_write)(struct extent *e);
    void (*destroy)(struct extent *e);
};

/* Every read of the extent's file goes through file (vd_file_pread/size);
 * fd is for the write, lock and sync paths, which only local files reach
 * (fd == file->fd; -1 for remote files and ZERO extents). */
struct extent {
    const struct extent_ops *ops;
    char *path;             /* file path as resolved; NULL for ZERO */
    struct vd_file *file;   /* NULL for ZERO */
    int fd;                 /* local files: file->fd; else -1 */
    int own_fd;             /* close file (and so fd) on destroy */
    int writable;           /* fd opened read-write and access RW */
    enum desc_access access;
    const char *kind;       /* "SPARSE", "FLAT", ... (static text) */
    uint64_t start;         /* byte offset within the link */
    uint64_t size;          /* bytes */
    uint64_t file_off;      /* flat extents: where data begins in the file */
    uint64_t grain_bytes;   /* sparse extents: allocation unit, else 0 */
    uint64_t write_limit;   /* bytes from the start that can be written */
    atomic_int dirty;       /* written since the last flush */
    void *priv;             /* kind-specific state */
};

/* Constructors.  The extent takes ownership of fd when own_fd is set. */
int extent_flat_open(struct extent *e);
int extent_zero_open(struct extent *e);
/* Parse and validate the hosted sparse header at the start of e->file.
 * name_for_errors is the file name used in messages. */
int extent_sparse_open(struct extent *e);
/* ESX vmfsSparse (COWD) extents, read-write (extent_cowd.c). */
int extent_cowd_open(struct extent *e);
/* Write the header and empty grain directory of a new COWD extent of
 * sectors sectors into the empty file fd (grain: sectors, power of two up
 * to 2048). */
int cowd_extent_write_new(int fd, const char *path, uint64_t sectors, uint32_t grain);
/* seSparse extents, read-only (extent_sesparse.c). */
int extent_sesparse_open(struct extent *e);
/* A compressed (streamOptimized) hosted sparse extent, read-only. */
int extent_stream_open(struct extent *e);

/* Hosted sparse helpers used by the link code for embedded descriptors. */
struct sparse_header_info {
    uint64_t desc_off, desc_size;   /* sectors */
    uint64_t capacity;              /* sectors */
};
int sparse_read_header_info(struct vd_file *f, const char *path, struct sparse_header_info *hi);

/* Hosted sparse layout for a new extent (all in sectors). */
struct sparse_layout {
    uint64_t capacity;
    uint32_t grain;
    uint32_t num_gtes;
    uint64_t n_gt;
    uint64_t gd_sectors;
    uint64_t desc_off, desc_size;
    uint64_t rgd_off, gd_off;
    uint64_t overhead;
};
void sparse_layout_compute(uint64_t capacity, uint32_t grain, int embedded_desc,
                           struct sparse_layout *l);
/* Write a fresh sparse extent with layout l into the empty file fd.
 * desc (may be NULL) goes into the embedded descriptor area. */
int sparse_extent_write_new(int fd, const char *path, const struct sparse_layout *l,
                            const char *desc, size_t desc_len);

void extent_destroy(struct extent *e);

#endif
