/* maint_priv.h - internals shared by the maintenance code (maint*.c):
 * a few accessors into an open chain (defined in chain.c) and "sx", a
 * hosted sparse extent's whole metadata loaded into memory, with the
 * consistency check that CheckRepair, Shrink, Defragment and Grow share.
 *
 * Ordering rule for every writer here: data is made durable (fdatasync)
 * before a table entry points at it, and a location is reused only after
 * no durable entry points at it any more.  Interrupted at any moment, an
 * extent therefore reads exactly as before (at worst it leaks space). */
#ifndef VD_VMDK_MAINT_PRIV_H
#define VD_VMDK_MAINT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "sparse_header.h"
#include "vmdk.h"

struct link;

/* ---- chain.c -------------------------------------------------------- */

/* Link li of an open disk (0 = top), NULL if there is none. */
struct link *vmdk_disk_link(vmdk_disk *d, int li);
/* Read [off, off+len) as seen from link li downwards (zeros below the base). */
int vmdk_read_from_link(vmdk_disk *d, int li, void *buf, size_t len, uint64_t off);
/* Move every link of parent below the links of child; parent is left with
 * no links (only vmdk_close may be called on it). */
int vmdk_chain_append(vmdk_disk *child, vmdk_disk *parent);

/* ---- maint_sx.c: one hosted sparse extent in memory ------------------ */

struct sx {
    int fd;
    const char *path;
    struct kdmv_header h;
    uint64_t file_size;       /* bytes, kept current by the helpers */
    uint64_t grain_bytes;
    uint64_t n_gd;            /* directory entries for h.capacity */
    uint64_t gd_sec;          /* sectors of one directory */
    uint64_t gt_sec;          /* sectors of one grain table (at least 1) */
    uint32_t *gd, *rgd;       /* host order; rgd NULL without a redundant copy */
    uint32_t **gt;            /* content of table i (NULL: none) */
    uint32_t **rgt;           /* redundant content as read (freed by sx_check) */
    unsigned char *dirty;     /* table i must be written (both copies) */
    int rgd_broken;           /* flag 0x2 set but the redundant directory is unreadable */
    int gd_dirty;             /* directories must be written */
    int hdr_dirty;            /* the header must be written (set by CheckRepair's
                               * choice of header fields, maint_infer.c) */
    struct jn *jn;            /* with a repair: every write goes through its undo
                               * journal (maint_journal.c) as file jid */
    int jid;
};

/* Load the header, both directories and every table of the extent in fd
 * (opened by the caller).  Refuses compressed extents; fails with
 * VD_E_CORRUPT when the header or the primary directory is unusable.
 * Table pointers that are out of range are kept but their table is NULL. */
int sx_load(struct sx *x, int fd, const char *path);
/* The same with the header h instead of the one in the file (CheckRepair
 * trying readings of a damaged header). */
int sx_load_with(struct sx *x, int fd, const char *path, const struct kdmv_header *h);
void sx_free(struct sx *x);

static inline uint32_t sx_gte(const struct sx *x, uint64_t g)
{
    const uint32_t *t = x->gt[g / x->h.num_gtes];
    return t ? t[g % x->h.num_gtes] : 0;
}
/* Set the entry of grain g (its table must exist) and mark it dirty. */
void sx_set_gte(struct sx *x, uint64_t g, uint32_t v);
static inline uint64_t sx_grains(const struct sx *x) { return x->n_gd * x->h.num_gtes; }

/* Write every dirty table to its primary and redundant location and, if
 * gd_dirty, both directories; then fdatasync.  Tables go before the
 * directories that point at them. */
int sx_write_tables(struct sx *x);
/* Write the header from x->h and fdatasync. */
int sx_write_header(struct sx *x);
int sx_sync(struct sx *x);
/* Write into the extent's file (through the journal when x->jn is set):
 * 0, or -1 with errno set, like vd_pwrite_full. */
int sx_pwrite(struct sx *x, const void *buf, size_t len, uint64_t off);
/* Copy len bytes inside the file (no sync); bytes past the end of the
 * file read as zeros.  buf holds at least len bytes. */
int sx_copy(struct sx *x, uint64_t from, uint64_t to, uint64_t len, void *buf);
/* Grain-aligned end of the file: where a new grain may be appended. */
uint64_t sx_append_pos(const struct sx *x);
/* ftruncate to size bytes (never below the metadata) and fdatasync. */
int sx_truncate(struct sx *x, uint64_t size);
/* End (bytes) of the metadata: header, descriptor, directories, tables. */
uint64_t sx_meta_end(const struct sx *x);
/* Does [a, b) (bytes) overlap any metadata above the overhead?  Used to
 * refuse layouts with tables after the grains. */
int sx_meta_overlaps(const struct sx *x, uint64_t a, uint64_t b);

/* How findings reach the caller; counts are kept whether or not fn is set. */
struct sx_report {
    vmdk_report_fn fn;
    void *ctx;
    const char *path;         /* names the extent in messages */
    unsigned problems, repaired, unrepaired;
    unsigned cantfix;         /* problems no repair can fix (with or without repair) */
    unsigned lost;            /* entries a repair drops (grains, or whole tables) */
    unsigned shown;           /* detailed messages so far (capped) */
    unsigned suppressed;
};
/* Report one line, prefixed with r->path unless the message already
 * starts with it (messages of lower layers name their file). */
void sx_say(struct sx_report *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check the extent's metadata (tables against each other, entries in
 * range and not shared, header flags, the descriptor's size for the
 * extent when desc_sectors is not 0).  With repair (fd writable) fix what
 * can be fixed, preferring the redundant copy where the primary is bad.
 * structural_only: ignore the unclean flag and size mismatches (used by
 * Shrink, Defragment and Grow before they start).  Returns 0 when the
 * check ran (findings are in r), negative on I/O errors. */
int sx_check(struct sx *x, uint64_t desc_sectors, int repair, int structural_only,
             struct sx_report *r);
/* structural_only = SX_SCORE: as 1, but redundant tables lagging behind a
 * valid primary on an unclean extent are no problem (maint_infer.c judges
 * readings of a header with it).  Never with repair. */
#define SX_SCORE 2

/* ---- maint_infer.c: which header fields to believe -------------------- */

/* Evidence about a hosted sparse extent that its header does not hold. */
struct sx_evidence {
    uint64_t desc_sectors;    /* the descriptor's size for the extent (0: unknown) */
    uint64_t desc_text_sectors; /* embedded descriptor: sectors its text needs (0: none) */
    uint64_t desc_at;         /* embedded descriptor: the sector its text was found at
                               * (0: the extent holds no descriptor) */
};
/* Choose the header to read the extent in fd with: the one in the file
 * when its layout is consistent, else the reading that changes one field
 * of it and makes the whole layout consistent (the descriptor's capacity,
 * the directories and tables, their redundant copies and the file size
 * agreeing), keeping the most data.  *out gets the chosen header; *field
 * names the field changed (NULL: none) and what says why, for the report.
 * Returns 0, or VD_E_UNSUPPORTED / VD_E_CORRUPT (with the message Open
 * gives) when the header cannot be read at all. */
int sx_infer_header(int fd, const char *path, const struct sx_evidence *ev,
                    struct kdmv_header *out, const char **field, char *what, size_t whatlen);

/* ---- maint_journal.c: the undo journal of a repair ---------------------- */

/* Before a repair writes a byte of a link's files, the bytes it overwrites
 * (and each file's size) go to LINK.repair-undo beside the link's
 * descriptor, synced; the journal is removed once the repaired files are
 * synced.  A journal left behind (repair killed) is rolled back by the
 * next CheckRepair with repair; until then Open refuses the link and a
 * check reports it.  Test hook: OPENVDDK_TEST_REPAIR_ABORT_AFTER=N makes
 * the process _exit(77) instead of the (N+1)th write to a disk file. */
struct jn;
/* LINK.repair-undo for the link at link_path (malloc'd). */
char *jn_path(const char *link_path);
/* A journal for a repair of the link at link_path; nothing is created
 * before the first write.  report (may be NULL) announces the journal. */
struct jn *jn_new(const char *link_path, vmdk_report_fn report, void *ctx);
/* Register a file of the link opened read-write at fd, before any write
 * to it; name: as the descriptor names it (relative to the link's
 * directory), "" for the link's own file.  Returns its id (>= 0) or an error. */
int jn_add_file(struct jn *j, int fd, const char *name);
/* Keep [off, off+len) of file id before it is overwritten (appended to
 * the journal; synced before the next write). */
int jn_save(struct jn *j, int id, uint64_t off, uint64_t len);
/* Write / truncate file id, keeping what is overwritten first: 0, or -1
 * with errno set. */
int jn_pwrite(struct jn *j, int id, const void *buf, size_t len, uint64_t off);
int jn_ftruncate(struct jn *j, int id, uint64_t size);
/* Did the repair write anything? */
int jn_used(const struct jn *j);
/* Success: sync the files, remove the journal. */
int jn_commit(struct jn *j);
/* Failure: put every byte and size back, remove the journal. */
int jn_undo(struct jn *j);
void jn_free(struct jn *j);
/* Roll back the journal an interrupted repair of the link at link_path
 * left: 0 none there, 1 rolled back, or an error. */
int jn_recover(const char *link_path);

/* ---- maint_grow.c ------------------------------------------------------ */

/* Enlarge the capacity of the hosted sparse extent x to new_sectors,
 * rebuilding its metadata in the standard contiguous layout (grains below
 * the new overhead move to the end first).  The extent must have passed
 * sx_check.  progress may be NULL. */
int sx_grow(struct sx *x, uint64_t new_sectors, vmdk_progress_fn progress, void *ctx);

#endif
