/* vddk.h - shared declarations of the vddk command-line tool.
 *
 * main.c owns the command table; each cmd_*.c file implements one group of
 * subcommands; util.c holds argument parsing, size formatting and JSON
 * output; lib.c the session with libvixDiskLib (initialisation, the local
 * connection, opening disks, error messages, allocated ranges); progress.c
 * the progress bar.
 *
 * The tool is a client of the public API only: vixDiskLib.h and
 * vddk/disk.h.  The one exception is `vddk serve` (cmd_serve.c), which
 * exports disks with the NBD server of src/net; it is built as a separate
 * component (see CMakeLists.txt) and only it is compiled with
 * VDDK_TOOL_SERVE and the engine's headers. */
#ifndef VDDK_TOOL_H
#define VDDK_TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vixDiskLib.h"
#include "vddk/disk.h"

#ifdef VDDK_TOOL_SERVE
#include "util/err.h"   /* vd_err_msg() for cmd_serve.c */
#endif

/* Exit statuses of every subcommand. */
enum {
    VDDK_EXIT_OK = 0,
    VDDK_EXIT_FAIL = 1,  /* the operation failed (I/O, bad disk, ...) */
    VDDK_EXIT_USAGE = 2, /* the command line was wrong */
};

struct vddk_cmd {
    const char *name;
    const char *summary;   /* one line for `vddk --help` */
    const char *help;      /* full text for `vddk help NAME` (starts "usage:") */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
};

extern const struct vddk_cmd vddk_cmd_info;
extern const struct vddk_cmd vddk_cmd_create;
extern const struct vddk_cmd vddk_cmd_snapshot;
extern const struct vddk_cmd vddk_cmd_clone;
extern const struct vddk_cmd vddk_cmd_convert;
extern const struct vddk_cmd vddk_cmd_grow;
extern const struct vddk_cmd vddk_cmd_shrink;
extern const struct vddk_cmd vddk_cmd_defrag;
extern const struct vddk_cmd vddk_cmd_rename;
extern const struct vddk_cmd vddk_cmd_rm;
extern const struct vddk_cmd vddk_cmd_attach;
extern const struct vddk_cmd vddk_cmd_check;
extern const struct vddk_cmd vddk_cmd_meta;
extern const struct vddk_cmd vddk_cmd_map;
extern const struct vddk_cmd vddk_cmd_dump;
extern const struct vddk_cmd vddk_cmd_fill;
extern const struct vddk_cmd vddk_cmd_checksum;
extern const struct vddk_cmd vddk_cmd_compare;
extern const struct vddk_cmd vddk_cmd_bench;
extern const struct vddk_cmd vddk_cmd_serve;
extern const struct vddk_cmd vddk_cmd_vsphere;
extern const struct vddk_cmd vddk_cmd_thumbprint;
extern const struct vddk_cmd vddk_cmd_backup;
extern const struct vddk_cmd vddk_cmd_verify;
extern const struct vddk_cmd vddk_cmd_restore;

/* vSphere disks (cmd_vsphere.c): the connection options of every
 * subcommand, taken out of argv before the subcommand parses it. */
int vddk_remote_options(int *argc, char **argv);
int vddk_remote_set(void);
/* Every --vm given (several for `vddk backup`), in order. */
const char *const *vddk_remote_vms(size_t *n);
int vddk_is_remote_path(const char *path);
/* The connection for path: the vSphere one for "[ds] path" when a server
 * is set, else the local one. */
VixDiskLibConnection vddk_conn_for(const char *path);
const VixDiskLibConnectParams *vddk_remote_params(const char **snapshot, const char **modes);
void vddk_remote_exit(void);

/* ---- errors ---------------------------------------------------------- */

/* Print "vddk: <message>" and return VDDK_EXIT_FAIL. */
int vddk_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "vddk: CMD: <message> (see 'vddk help CMD')" and return
 * VDDK_EXIT_USAGE. */
int vddk_usage_error(const struct vddk_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- option parsing -------------------------------------------------- */

/* Options a subcommand accepts.  has_arg: 0 none, 1 required. */
struct vddk_opt {
    char short_name;        /* 0 when there is only a long form */
    const char *long_name;  /* without "--"; NULL when only short */
    int has_arg;
    int id;                 /* returned by vddk_getopt */
};

struct vddk_optstate {
    int argc;
    char **argv;
    int index;        /* next argv element to look at */
    int subpos;       /* position inside a cluster of short options, or 0 */
    int only_args;    /* "--" seen: the rest are operands */
    const char *arg;  /* argument of the option just returned */
    const char *name; /* how the option was spelled, for messages */
    char shortbuf[3];
    char **operands;  /* non-option arguments, in order */
    int noperands;
};

enum {
    VDDK_OPT_END = -1,     /* every argument has been consumed */
    VDDK_OPT_HELP = -2,    /* -h / --help */
    VDDK_OPT_ERROR = -3,   /* a usage error was already reported */
};

/* Start parsing argv[1..argc-1] (argv[0] is the subcommand).  Options and
 * operands may be mixed; "--" ends the options.  Returns 0 or -1 when out
 * of memory (reported). */
int vddk_opt_init(struct vddk_optstate *st, int argc, char **argv);
/* Next option id, or one of the VDDK_OPT_* values.  Errors (unknown
 * option, missing argument) are reported against cmd. */
int vddk_getopt(struct vddk_optstate *st, const struct vddk_opt *opts,
                const struct vddk_cmd *cmd);
void vddk_opt_free(struct vddk_optstate *st);
/* Common epilogue: --help prints the help and returns VDDK_EXIT_OK. */
int vddk_print_help(const struct vddk_cmd *cmd, FILE *f);
/* Check the operand count: between min and max (inclusive).  Reports
 * "missing WHAT" or "too many arguments" and returns VDDK_EXIT_USAGE, or
 * returns VDDK_EXIT_OK. */
int vddk_operands(const struct vddk_cmd *cmd, const struct vddk_optstate *st, int min,
                  int max, const char *what);

/* Parse a size or offset: decimal digits with an optional power-of-two
 * suffix K, M, G, T (also KB/KiB, ...; case-insensitive); "B" or no
 * suffix means bytes; 0x-prefixed hex (no suffix) is bytes too.  Returns
 * 0, or -1 for malformed or overflowing text. */
int vddk_parse_size(const char *text, uint64_t *out);
/* Parse an unsigned integer: decimal or 0x-prefixed hex. */
int vddk_parse_uint(const char *text, uint64_t max, uint64_t *out);

/* ---- output helpers -------------------------------------------------- */

/* "64 MiB", "1.5 GiB", "512 B".  buf must hold VDDK_HUMAN_LEN bytes. */
#define VDDK_HUMAN_LEN 32
const char *vddk_human(uint64_t bytes, char *buf);
/* Write s as a JSON string literal (with quotes); NULL writes null. */
void vddk_json_str(FILE *f, const char *s);

/* ---- the library (lib.c) --------------------------------------------- */

/* InitEx (once per process, with log and warn callbacks of the tool) and
 * a local ConnectEx.  Returns the connection, or NULL after reporting. */
VixDiskLibConnection vddk_conn(void);
/* Disconnect and Exit if vddk_conn() was used. */
void vddk_lib_exit(void);

/* Forget the library's last warning; call before a library call whose
 * failure will be reported with vddk_vix_error. */
void vddk_warn_clear(void);
/* The reason of the last failure the library reported through its warn
 * callback ("VixDiskLib_Op: " and " (error N)" removed), or NULL. */
const char *vddk_warn_detail(char *buf, size_t n);
/* Keep every warning line the library sends from now on (collect=1) or
 * stop (0).  vddk_warn_take() hands the lines over (caller frees each and
 * the array) and empties the list. */
void vddk_warn_collect(int collect);
char **vddk_warn_take(size_t *n);
/* Also hand every warning line to fn as it arrives (NULL: stop). */
void vddk_warn_hook(void (*fn)(const char *line));

/* Report the failure e of an operation on path in one line:
 * "vddk: <path>: <reason>", the reason being the library's own message
 * (which usually names the file already) or its error text.  Returns
 * VDDK_EXIT_FAIL. */
int vddk_vix_error(VixError e, const char *path);
/* The same for a vddk_disk_* call that returned -1. */
int vddk_disk_error(const char *path);

/* A disk opened through the shared connection. */
struct vddk_h {
    VixDiskLibHandle h;
    const char *path;
    uint64_t capacity;        /* bytes */
    VixDiskLibInfo *info;
    int raw;                  /* opened as a raw image */
};
/* In the flags of vddk_open and vddk_hl_open (the tool's own bit): a local
 * file or block device that is not a VMDK by its content opens as a raw
 * image (vddk_disk_probe, vddk_disk_open_raw). */
#define VDDK_OPEN_ANY (1u << 30)
/* Whether path is a local raw image by its content (0 when it is a VMDK,
 * remote, named *.vmdk, or cannot be read: the VMDK open then reports
 * why). */
int vddk_is_raw(const char *path);
/* Open path (VIXDISKLIB_FLAG_OPEN_* flags, VDDK_OPEN_ANY) and GetInfo;
 * reports failure.  Returns 0 or VDDK_EXIT_FAIL. */
int vddk_open(const char *path, uint32 flags, struct vddk_h *d);
/* Close (NULL handle: nothing); reports failure.  0 or VDDK_EXIT_FAIL. */
int vddk_close(struct vddk_h *d);

/* A disk opened through vddk/disk.h (byte-addressed I/O).  read_only also
 * makes the connection read-only. */
int vddk_hl_open(const char *path, int read_only, uint32 flags, vddk_disk **out);
int vddk_hl_close(vddk_disk *d, const char *path);

/* Read a ddb key (through the chain) into a malloc'ed string: 0, 1 when
 * the key does not exist (*out NULL), or VDDK_EXIT_FAIL (reported). */
int vddk_meta_read(VixDiskLibHandle h, const char *path, const char *key, char **out);

/* Walk the data and hole runs of [start, end) of an open disk, using
 * QueryAllocatedBlocks in 64 KiB chunks: a run is "data" when some chunk
 * of it holds data in the opened chain (or link, for a SINGLE_LINK open);
 * holes (unallocated or zeroed grains) read as zeros. */
struct vddk_runs {
    VixDiskLibHandle h;
    uint64_t capacity, pos, end;
    VixDiskLibBlockList *bl;
    uint32 idx;
    uint64_t win_end;          /* end of the range bl describes */
};
#define VDDK_CHUNK_BYTES ((uint64_t)VIXDISKLIB_MIN_CHUNK_SIZE * VIXDISKLIB_SECTOR_SIZE)
void vddk_runs_init(struct vddk_runs *r, VixDiskLibHandle h, uint64_t capacity,
                    uint64_t start, uint64_t end);
/* The next run: returns 1 and sets *off, *len, *data; 0 at the end; or -1
 * with *err set. */
int vddk_runs_next(struct vddk_runs *r, uint64_t *off, uint64_t *len, int *data,
                   VixError *err);
void vddk_runs_free(struct vddk_runs *r);

/* Resolve -o/-l against the capacity: *len defaults to the rest of the
 * disk when !have_len.  Reports and returns VDDK_EXIT_FAIL when the range
 * lies past the end. */
int vddk_resolve_range(const char *path, uint64_t capacity, uint64_t off,
                       int have_len, uint64_t *len);

/* Disk types and adapters by name. */
VixDiskLibDiskType vddk_parse_type(const char *text);
const char *vddk_type_name(VixDiskLibDiskType t);
const char *vddk_type_list(void);  /* help text listing the names */
VixDiskLibAdapterType vddk_parse_adapter(const char *text);
const char *vddk_adapter_name(VixDiskLibAdapterType a);

/* ---- progress (progress.c) ------------------------------------------- */

enum { VDDK_PROGRESS_AUTO = 0, VDDK_PROGRESS_ON, VDDK_PROGRESS_OFF };

/* The --progress / -q,--quiet options every long operation takes; ids
 * above 1000 so they do not collide with a subcommand's own. */
enum { VDDK_OPT_PROGRESS = 1001, VDDK_OPT_QUIET = 1002 };
#define VDDK_PROGRESS_OPTS { 0, "progress", 0, VDDK_OPT_PROGRESS }, \
                           { 'q', "quiet", 0, VDDK_OPT_QUIET }
#define VDDK_PROGRESS_HELP \
    "      --progress       show a progress bar even when stderr is not a terminal\n" \
    "  -q, --quiet          never show a progress bar\n"

struct vddk_progress;
/* Start a bar labelled label over total bytes (0: unknown, an elapsed-time
 * indicator only).  mode AUTO draws on stderr when it is a terminal.
 * Also catches SIGINT/SIGTERM while the operation runs so that it can be
 * cancelled cleanly (vddk_interrupted()).  Never fails; NULL is a valid
 * "no bar". */
struct vddk_progress *vddk_progress_start(int mode, const char *label, uint64_t total);
/* Bytes done so far. */
void vddk_progress_set(struct vddk_progress *p, uint64_t done);
/* A VixDiskLibProgressFunc: data is the struct vddk_progress (may be
 * NULL); returns FALSE, cancelling, after SIGINT/SIGTERM. */
Bool vddk_progress_cb(void *data, int percent);
/* Finish: the last state and a newline on the terminal; restores the
 * signal handlers.  ok says whether to draw the bar as complete. */
void vddk_progress_end(struct vddk_progress *p, int ok);
/* Whether SIGINT/SIGTERM arrived since the last vddk_progress_start. */
int vddk_interrupted(void);
/* Seconds on a monotonic clock. */
double vddk_now(void);

#endif
