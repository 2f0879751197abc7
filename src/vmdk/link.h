/* link.h - one link of a chain: a descriptor and its extents. */
#ifndef VD_VMDK_LINK_H
#define VD_VMDK_LINK_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "descriptor.h"
#include "extent.h"
#include "../util/vfile.h"
#include "vmdk.h"

struct link {
    char *path;               /* descriptor path as opened */
    char *dir;                /* its directory (relative names resolve here) */
    struct vd_fs *fs;         /* where its files are read from */
    int remote;               /* fs is not the local file system: read-only,
                               * no locks, no fd (every read via vd_file) */
    struct descriptor desc;
    int embedded;             /* descriptor lives inside extent 0's file */
    struct vd_file *desc_file;/* local separate descriptor file (owns desc_fd) */
    int desc_fd;              /* its fd; -1 when embedded or remote */
    uint64_t desc_bytes;      /* size of a separate descriptor file */
    uint64_t desc_area_off;   /* embedded: bytes */
    uint64_t desc_area_len;
    struct extent *ext;
    size_t next;
    uint64_t capacity;        /* bytes */
    uint32_t cid, parent_cid;
    int writable;
    int lock;                 /* take OFD locks */
    dev_t dev;                /* identity of the descriptor file (local) */
    ino_t ino;
    char *create_type;
    enum vmdk_type type;
    pthread_mutex_t wlock;    /* first-write transition and descriptor rewrite */
    atomic_int write_started;
    atomic_int desc_dirty;
};

/* Open one link.  writable: open its files read-write. */
int link_open(const char *path, int writable, int lock, int direct, struct link **out);
/* The same on the file system fs; on a non-local one the link is always
 * read-only, takes no locks and uses no O_DIRECT. */
int link_open_fs(struct vd_fs *fs, const char *path, int writable, int lock, int direct,
                 struct link **out);
/* VD_E_READONLY for a write to a link that was not opened writable (says
 * so for a link read through a read-only transport). */
int link_readonly_err(const struct link *l);
void link_close(struct link *l);
/* Rewrite the link's descriptor from l->desc (in place or temp+rename). */
int link_write_descriptor(struct link *l);
/* Find the extent holding link offset off (binary search). */
struct extent *link_find_extent(struct link *l, uint64_t off);
/* The one-time transition before the first write: unclean flags and CID. */
int link_begin_write(struct link *l);
/* Flush every dirty file of the link. */
int link_flush(struct link *l);
/* Clear unclean flags after a final flush. */
int link_end_write(struct link *l);
/* Total allocated bytes of the link's files (st_blocks). */
uint64_t link_allocated_bytes(const struct link *l);
/* parentFileNameHint for a child at child pointing at parent (malloc'd):
 * the base name when both share a directory, else an absolute path. */
char *vmdk_parent_hint_for(const char *child, const char *parent);
/* Lock a file descriptor with an OFD lock (shared or exclusive). */
int vd_lock_fd(int fd, int exclusive, const char *path);

#endif
