/* err.h - error codes and the per-thread detail message.
 *
 * Every engine function that can fail returns 0 on success or a negative
 * vd_err code.  Before returning an error it records a one-line detail
 * ("disk.vmdk: grain table 12 points past end of file") in a thread-local
 * buffer that the caller reads with vd_err_msg().  The buffer belongs to the
 * calling thread, so concurrent failures never mix their messages. */
#ifndef VD_UTIL_ERR_H
#define VD_UTIL_ERR_H

#include <stdarg.h>

enum vd_err {
    VD_OK = 0,
    VD_E_INVAL = 1,       /* bad argument from the caller */
    VD_E_NOMEM,           /* allocation failed */
    VD_E_IO,              /* a system call failed (errno kept in the message) */
    VD_E_NOTFOUND,        /* a file does not exist */
    VD_E_EXISTS,          /* a file that must not exist does */
    VD_E_CORRUPT,         /* on-disk data is malformed */
    VD_E_UNSUPPORTED,     /* valid but not something we implement */
    VD_E_RANGE,           /* offset or length past the capacity */
    VD_E_READONLY,        /* write on a read-only disk or extent */
    VD_E_LOCKED,          /* another open holds a conflicting lock */
    VD_E_CID_MISMATCH,    /* child's parentCID differs from the parent's CID */
    VD_E_PARENT_LOOP,     /* the chain refers back to one of its own links */
    VD_E_NOSPACE,         /* no room (descriptor area full, disk full) */
    VD_E_NOTFOUND_KEY,    /* metadata key absent */
    VD_E_BUFSIZE,         /* caller's buffer too small */
    VD_E_CANCELLED,       /* a progress callback asked to stop */
    VD_E_NET_CONNECT,     /* cannot reach or negotiate with a server */
    VD_E_NET_LOST,        /* an established connection failed or timed out */
    VD_E_AUTH,            /* the server rejected our credentials */
    VD_E_CERT,            /* the server's certificate was not accepted */
    VD_E_ACCESS,          /* refused by policy (e.g. outside every datastore) */
    VD_E_CANTSHRINK,      /* the disk has no space that Shrink can reclaim (flat) */
    VD_E_NEEDSREPAIR,     /* metadata is inconsistent: run CheckRepair */
    VD_E_CANTREPAIR,      /* CheckRepair found damage it cannot repair */
    VD_E_CAPACITY_MISMATCH, /* parent and child capacities differ */
    VD_E_ATTACH_ROOTLINK, /* the child chain ends in a base disk, not a delta */
    VD_E_NET_REFUSED,     /* the server's host refused the TCP connection */
    VD_E_NET_SHUTDOWN,    /* the server said it is going away */
    VD_E_REMOTE,          /* the server failed an operation (a vSphere task's fault) */
    VD_E__COUNT
};

/* Record a detail message and return -code.  printf-style. */
int vd_err_set(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int vd_err_setv(int code, const char *fmt, va_list ap);
/* Like vd_err_set but appends ": strerror(errno_value)". */
int vd_err_errno(int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prefix the current message with "prefix: " (used to add a file name). */
void vd_err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The detail of the last error on this thread ("" if none). */
const char *vd_err_msg(void);
/* The code of the last error on this thread (positive, 0 if none). */
int vd_err_code(void);
/* Short fixed text for a code ("file not found"). */
const char *vd_err_name(int code);
void vd_err_clear(void);

#endif
