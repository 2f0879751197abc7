/* vmdk.h - the VMDK format engine: the interface every upper layer uses.
 *
 * A vmdk_disk is an open chain of links (the opened file on top, then its
 * parents).  It is addressed in bytes; reads fall through the chain, writes
 * go to the top link.  All functions return 0 or a negative vd_err code with
 * the detail in vd_err_msg().  One vmdk_disk may be used from many threads
 * at once for pread/pwrite/flush/block_status/meta_get. */
#ifndef VD_VMDK_H
#define VD_VMDK_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define VMDK_SECTOR 512u

/* Disk types; the numbers equal VixDiskLibDiskType. */
enum vmdk_type {
    VMDK_TYPE_UNKNOWN = 0,
    VMDK_TYPE_MONOLITHIC_SPARSE = 1,
    VMDK_TYPE_MONOLITHIC_FLAT = 2,
    VMDK_TYPE_SPLIT_SPARSE = 3,
    VMDK_TYPE_SPLIT_FLAT = 4,
    VMDK_TYPE_VMFS_FLAT = 5,
    VMDK_TYPE_STREAM_OPTIMIZED = 6,
    VMDK_TYPE_VMFS_THIN = 7,
    VMDK_TYPE_VMFS_SPARSE = 8,
    /* Engine only: VixDiskLib has no seSparse type (GetInfo reports
     * VIXDISKLIB_DISK_UNKNOWN); seSparse disks open read-only. */
    VMDK_TYPE_SESPARSE = 9,
};

/* Adapter types; the numbers equal VixDiskLibAdapterType. */
enum vmdk_adapter {
    VMDK_ADAPTER_IDE = 1,
    VMDK_ADAPTER_BUSLOGIC = 2,
    VMDK_ADAPTER_LSILOGIC = 3,
    VMDK_ADAPTER_UNKNOWN = 256,
};

enum vmdk_open_flags {
    VMDK_OPEN_RDONLY = 1u << 0,      /* open every link read-only */
    VMDK_OPEN_SINGLE_LINK = 1u << 1, /* do not open parents */
    VMDK_OPEN_NOLOCK = 1u << 2,      /* take no file locks (tools, tests) */
    VMDK_OPEN_DIRECT = 1u << 3,      /* O_DIRECT on extent files */
    VMDK_OPEN_NOCID = 1u << 4,       /* do not check parentCID against CID */
};

typedef struct vmdk_disk vmdk_disk;

/* The most links a chain may have (vmdk_open refuses longer ones, and no
 * child is created below a chain that has them all). */
#define VMDK_MAX_LINKS 256

/* ---- open / close ---------------------------------------------------- */

/* Open the disk whose descriptor (or monolithic sparse file) is at path.
 * Parents named by parentFileNameHint are opened read-only below it. */
int vmdk_open(const char *path, unsigned flags, vmdk_disk **out);
/* The same with every file of the chain read from fs (util/vfile.h; NULL or
 * vd_fs_local(): vmdk_open).  path and parent hints are resolved in fs's
 * own names ("[ds] dir/x.vmdk").  On a non-local fs the disk is always
 * read-only (writes are VD_E_READONLY), takes no locks and ignores
 * VMDK_OPEN_DIRECT; read errors keep the code fs gave (VD_E_NET_LOST). */
struct vd_fs;
int vmdk_open_fs(const char *path, unsigned flags, struct vd_fs *fs, vmdk_disk **out);
/* Flush, clear the unclean-shutdown flags, release locks, free.  Returns
 * the first error met while flushing; the disk is freed either way. */
int vmdk_close(vmdk_disk *d);

/* ---- I/O (bytes) ----------------------------------------------------- */

/* Whole-range I/O: either everything is transferred or an error returns.
 * off+len past the capacity is VD_E_RANGE with nothing transferred. */
int vmdk_pread(vmdk_disk *d, void *buf, size_t len, uint64_t off);
int vmdk_pwrite(vmdk_disk *d, const void *buf, size_t len, uint64_t off);
/* fdatasync every file written since the last flush. */
int vmdk_flush(vmdk_disk *d);

/* ---- allocation status ----------------------------------------------- */

enum vmdk_status {
    VMDK_DATA = 0, /* stored data (may happen to be zeros) */
    VMDK_ZERO = 1, /* reads as zeros without data stored (zeroed grain, ZERO extent) */
    VMDK_HOLE = 2, /* nothing stored anywhere in the chain: reads as zeros */
};

/* Status of the range starting at off: *status for the first *run bytes
 * (1 <= *run <= len; runs are grain aligned except at the range ends).
 * single_link: look at the top link only (a hole there may hold parent
 * data).  Computed from metadata only. */
int vmdk_block_status(vmdk_disk *d, uint64_t off, uint64_t len, int single_link,
                      uint64_t *run, int *status);

/* ---- information ----------------------------------------------------- */

uint64_t vmdk_capacity(const vmdk_disk *d);       /* bytes */
int vmdk_is_readonly(const vmdk_disk *d);
int vmdk_num_links(const vmdk_disk *d);           /* >= 1 */

struct vmdk_link_info {
    const char *path;          /* descriptor path as opened */
    const char *create_type;   /* createType text ("monolithicSparse") */
    enum vmdk_type type;
    uint32_t cid, parent_cid;  /* parent_cid 0xffffffff = no parent */
    const char *parent_hint;   /* parentFileNameHint or NULL */
    uint64_t capacity;         /* bytes */
    int num_extents;
    uint32_t grain_size;       /* bytes; 0 for links without sparse extents */
    uint64_t allocated_bytes;  /* space used by all files of this link */
};
/* Link 0 is the top (the opened file).  Pointers stay valid until close. */
int vmdk_link_info(const vmdk_disk *d, int link, struct vmdk_link_info *info);

struct vmdk_extent_info {
    const char *path;       /* absolute or descriptor-relative file, NULL for ZERO */
    const char *kind;       /* "SPARSE", "FLAT", "VMFS", "ZERO", ... */
    const char *access;     /* "RW", "RDONLY", "NOACCESS" */
    uint64_t start, length; /* position in the link, bytes */
    uint64_t file_offset;   /* bytes, flat extents */
};
int vmdk_extent_info(const vmdk_disk *d, int link, int extent,
                     struct vmdk_extent_info *info);

struct vmdk_geometry { uint32_t cylinders, heads, sectors; };
/* Physical geometry from the disk database (walks the chain). */
int vmdk_geometry(const vmdk_disk *d, struct vmdk_geometry *g);
enum vmdk_adapter vmdk_adapter_type(const vmdk_disk *d);
int vmdk_hw_version(const vmdk_disk *d);

/* ---- metadata (disk database, ddb.* keys) ----------------------------- */

/* Keys are given without the "ddb." prefix, as VixDiskLib does ("uuid",
 * "geometry.cylinders").  get walks the chain from the top; set and remove
 * change the top link only. */
int vmdk_meta_get(vmdk_disk *d, const char *key, char **value /* malloc'd */);
int vmdk_meta_set(vmdk_disk *d, const char *key, const char *value);
/* value NULL removes the key. */
/* Keys of the top link, in descriptor order; free with vmdk_strv_free. */
int vmdk_meta_keys(vmdk_disk *d, char ***keys, size_t *count);
void vmdk_strv_free(char **v, size_t count);

/* Every file of one link (descriptor first, then extent files, each once);
 * free with vmdk_strv_free. */
int vmdk_link_files(const vmdk_disk *d, int link, char ***files, size_t *count);

/* ---- create ------------------------------------------------------------ */

struct vmdk_create_params {
    enum vmdk_type type;
    uint64_t capacity;          /* bytes, rounded up to a sector */
    enum vmdk_adapter adapter;  /* 0 means lsilogic */
    int hw_version;             /* 0 means 4 */
    uint32_t grain_sectors;     /* 0 means 128 (sparse types) */
    uint64_t split_size;        /* bytes per split extent, 0 = 2047 MiB */
};
/* Create a new disk at path (the descriptor); fails with VD_E_EXISTS if any
 * file of it already exists.  Nothing is left behind on failure. */
int vmdk_create(const char *path, const struct vmdk_create_params *p);
/* Create a delta disk at child_path (monolithicSparse, or twoGbMaxExtentSparse
 * when type says so) whose parent is the disk at parent_path. */
int vmdk_create_child(const char *child_path, const char *parent_path,
                      enum vmdk_type type);
/* The same with the parentFileNameHint given (NULL: as VMware writes it);
 * it must lead from child_path's directory to parent_path, as a relative
 * hint does for disks that move together. */
int vmdk_create_child_hint(const char *child_path, const char *parent_path,
                           enum vmdk_type type, const char *hint);
/* The same for a parent that is already open (its top link is the parent). */
int vmdk_create_child_of(vmdk_disk *parent, const char *child_path, enum vmdk_type type);

/* ---- streamOptimized writing ------------------------------------------ */

/* One-pass writer of a streamOptimized file (64 KiB grains).  Grains are
 * given compressed (zlib format, one stream per grain, the whole grain
 * including any part past the capacity) in strictly increasing order;
 * grains never given read as zeros.  finish writes the metadata and makes
 * the file valid; abort removes it. */
#define VMDK_STREAM_GRAIN_BYTES 65536u
/* Whether a grain of grain_bytes looks like random bytes, which deflate
 * cannot shrink: store it (level 0) rather than compress it. */
int vmdk_grain_looks_random(const unsigned char *g, size_t grain_bytes);
struct vmdk_stream;
int vmdk_stream_create(const char *path, const char *descriptor, size_t desc_len,
                       uint64_t capacity_bytes, struct vmdk_stream **out);
int vmdk_stream_add_grain(struct vmdk_stream *w, uint64_t grain, const void *zdata,
                          size_t zlen);
int vmdk_stream_finish(struct vmdk_stream *w);
void vmdk_stream_abort(struct vmdk_stream *w);
/* The descriptor for a new streamOptimized disk whose file will be called
 * name (malloc'd text). */
int vmdk_stream_descriptor(const char *name, const struct vmdk_create_params *p,
                           char **text, size_t *len);

/* Names for enum values ("monolithicSparse", "lsilogic"); parse helpers
 * return VMDK_TYPE_UNKNOWN / VMDK_ADAPTER_UNKNOWN for unknown text. */
const char *vmdk_type_name(enum vmdk_type t);
enum vmdk_type vmdk_type_from_name(const char *create_type);
const char *vmdk_adapter_name(enum vmdk_adapter a);
enum vmdk_adapter vmdk_adapter_from_name(const char *name);
/* Geometry VMware assigns to a new disk of this size and adapter. */
void vmdk_geometry_for(uint64_t capacity_bytes, enum vmdk_adapter a,
                       struct vmdk_geometry *g);

/* ---- maintenance (maint*.c; docs/maintenance.md) ------------------------ */

/* Progress of a long operation: called after every durable step with
 * done <= total (done never decreases).  Return 0 to stop: the operation
 * ends at that consistent point with VD_E_CANCELLED. */
typedef int (*vmdk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* Reclaim space in the top link of an open, writable disk: grains that
 * read as zeros are dropped (a base: unallocated; a child: unallocated
 * where the parent chain reads zeros too, else a zeroed-grain entry, which
 * makes the extent version 2), then the file is compacted and truncated.
 * Content is unchanged.  VD_E_CANTSHRINK when the link has no hosted
 * sparse extent; VD_E_NEEDSREPAIR when its metadata is inconsistent. */
int vmdk_shrink(vmdk_disk *d, vmdk_progress_fn progress, void *ctx);
/* Rewrite the grains of the top link's sparse extents in logical order
 * directly after the metadata, without gaps, and truncate.  Content is
 * unchanged; safe to interrupt at any moment.  Flat links: nothing to do. */
int vmdk_defragment(vmdk_disk *d, vmdk_progress_fn progress, void *ctx);
/* Enlarge the disk at path (not open elsewhere: it is locked) to capacity
 * bytes; update_geometry rewrites ddb.geometry.*.  Refuses to reduce the
 * capacity, streamOptimized and ESX sparse links, and a disk that has a
 * child in its directory. */
int vmdk_grow(const char *path, uint64_t capacity, int update_geometry,
              vmdk_progress_fn progress, void *ctx);
/* Can the chain child (its bottom link a delta whose parent is not open,
 * i.e. opened with VMDK_OPEN_SINGLE_LINK) be put on top of parent? */
int vmdk_attach_possible(vmdk_disk *parent, vmdk_disk *child);
/* Do it: the child's bottom link gets parentFileNameHint and parentCID of
 * parent's top link (descriptor rewritten), and parent's links move into
 * child's chain.  On success parent has no links left: only vmdk_close
 * may be called on it. */
int vmdk_attach(vmdk_disk *parent, vmdk_disk *child);

/* CheckRepair.  Findings go to report (may be NULL) one line each. */
enum vmdk_report_level {
    VMDK_REPORT_INFO = 0,      /* what was checked, summaries */
    VMDK_REPORT_PROBLEM = 1,   /* an inconsistency */
    VMDK_REPORT_REPAIRED = 2,  /* what a repair changed */
    VMDK_REPORT_JOURNAL = 3,   /* where a repair keeps what it overwrites, and when
                                * that undo journal is removed (not a finding) */
    VMDK_REPORT_NOTE = 4,      /* worth knowing, not a problem: space a shrink would
                                * give back (not a finding) */
};
typedef void (*vmdk_report_fn)(void *ctx, int level, const char *msg);
struct vmdk_check_result {
    unsigned problems;         /* inconsistencies found */
    unsigned repaired;         /* of those, repaired */
    unsigned unrepaired;       /* of those, left (repair off, or impossible) */
    unsigned cantfix;          /* of those left, the ones no repair can fix (a
                                * repair that meets one writes nothing at all) */
};
/* Check the metadata of the link at path (its descriptor and every extent;
 * parents are not checked) and, with repair, fix what can be fixed.
 * Without repair the files are opened read-only: nothing changes.  A
 * repair writes nothing unless it can repair every problem, keeps what it
 * overwrites in PATH.repair-undo until it is done (maint_journal.c), and
 * first rolls back such a journal left by a killed repair.
 * Returns 0 when the check ran (the verdict is in *res), else an error
 * (file missing, not a disk, locked by a writer). */
/* A streamOptimized extent file read record by record (grain markers):
 * the latest copy of each grain, whether the file's own grain tables (the
 * footer's, else the header's) point at exactly those, and with repair,
 * new tables, directory and footer written after the last valid record
 * when they do not (a write interrupted between flushes).  The records
 * themselves are never changed. */
struct vmdk_stream_scan {
    uint64_t grains;        /* grains found */
    uint64_t superseded;    /* older copies of rewritten grains: garbage */
    uint64_t end;           /* byte after the last valid record */
    int eos;                /* the walk ended at an end-of-stream marker */
    int tables_ok;          /* the file's tables agree with the markers */
    int rebuilt;            /* repair wrote new tables */
};
/* How a repair writes (the caller may keep what it overwrites). */
struct vmdk_stream_io {
    int (*pwrite)(void *ctx, const void *buf, size_t len, uint64_t off);
    int (*truncate)(void *ctx, uint64_t size);
    void *ctx;
};
/* repair: NULL to only check. */
int vmdk_stream_scan(int fd, const char *path, const struct vmdk_stream_io *repair,
                     struct vmdk_stream_scan *res);

int vmdk_check(const char *path, int repair, vmdk_report_fn report, void *ctx,
               struct vmdk_check_result *res);

#endif
