/* vddk.h - shared declarations of the vddk command-line tool.
 *
 * main.c owns the command table; each cmd_*.c file implements one group of
 * subcommands; util.c holds argument parsing, size formatting, JSON output
 * and error reporting used by all of them. */
#ifndef VDDK_TOOL_H
#define VDDK_TOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmdk/vmdk.h"

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
extern const struct vddk_cmd vddk_cmd_map;
extern const struct vddk_cmd vddk_cmd_dump;
extern const struct vddk_cmd vddk_cmd_fill;
extern const struct vddk_cmd vddk_cmd_checksum;

/* ---- errors ---------------------------------------------------------- */

/* Print "vddk: <engine message>" for the error rc just returned by the
 * engine and return VDDK_EXIT_FAIL.  path names the file when the engine
 * left no message. */
int vddk_engine_error(int rc, const char *path);
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

/* ---- disk access helpers --------------------------------------------- */

/* Open path with flags, reporting failure.  Returns 0 or VDDK_EXIT_FAIL. */
int vddk_open(const char *path, unsigned flags, vmdk_disk **out);
/* Close, reporting a failed flush.  Returns 0 or VDDK_EXIT_FAIL. */
int vddk_close(vmdk_disk *d, const char *path);

/* Resolve -o/-l against the capacity: *len defaults to the rest of the
 * disk when !have_len.  Reports and returns VDDK_EXIT_FAIL when the range
 * lies past the end. */
int vddk_resolve_range(const char *path, uint64_t capacity, uint64_t off,
                       int have_len, uint64_t *len);

#endif
