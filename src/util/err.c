/* err.c - thread-local error detail. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define VD_ERR_MAX 1024

static _Thread_local char err_buf[VD_ERR_MAX];
static _Thread_local int err_code;

int vd_err_setv(int code, const char *fmt, va_list ap)
{
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    err_code = code;
    return -code;
}

int vd_err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vd_err_setv(code, fmt, ap);
    va_end(ap);
    return -code;
}

int vd_err_errno(int errno_value, const char *fmt, ...)
{
    int code;
    switch (errno_value) {
    case ENOENT: code = VD_E_NOTFOUND; break;
    case EEXIST: code = VD_E_EXISTS; break;
    case ENOMEM: code = VD_E_NOMEM; break;
    case ENOSPC: case EDQUOT: code = VD_E_NOSPACE; break;
    case EROFS: case EACCES: case EPERM: code = VD_E_READONLY; break;
    case EAGAIN: code = VD_E_LOCKED; break;
    default: code = VD_E_IO; break;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    size_t n = strlen(err_buf);
    snprintf(err_buf + n, sizeof err_buf - n, ": %s", strerror(errno_value));
    err_code = code;
    return -code;
}

void vd_err_prefix(const char *fmt, ...)
{
    char old[VD_ERR_MAX];
    memcpy(old, err_buf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof err_buf)
        return;
    snprintf(err_buf + n, sizeof err_buf - (size_t)n, ": %.900s", old);
}

const char *vd_err_msg(void) { return err_buf; }
int vd_err_code(void) { return err_code; }

void vd_err_clear(void)
{
    err_buf[0] = '\0';
    err_code = 0;
}

const char *vd_err_name(int code)
{
    if (code < 0)
        code = -code;
    switch (code) {
    case VD_OK: return "success";
    case VD_E_INVAL: return "invalid argument";
    case VD_E_NOMEM: return "out of memory";
    case VD_E_IO: return "input/output error";
    case VD_E_NOTFOUND: return "file not found";
    case VD_E_EXISTS: return "file already exists";
    case VD_E_CORRUPT: return "corrupt disk";
    case VD_E_UNSUPPORTED: return "not supported";
    case VD_E_RANGE: return "out of range";
    case VD_E_READONLY: return "read-only";
    case VD_E_LOCKED: return "already locked";
    case VD_E_CID_MISMATCH: return "parent content ID mismatch";
    case VD_E_PARENT_LOOP: return "parent loop";
    case VD_E_NOSPACE: return "no space";
    case VD_E_NOTFOUND_KEY: return "key not found";
    case VD_E_BUFSIZE: return "buffer too small";
    case VD_E_CANCELLED: return "cancelled";
    case VD_E_NET_CONNECT: return "cannot connect";
    case VD_E_NET_LOST: return "connection lost";
    case VD_E_AUTH: return "authentication failed";
    case VD_E_CERT: return "certificate not accepted";
    case VD_E_ACCESS: return "access denied";
    case VD_E_CANTSHRINK: return "cannot shrink";
    case VD_E_NEEDSREPAIR: return "needs repair";
    case VD_E_CANTREPAIR: return "cannot repair";
    case VD_E_CAPACITY_MISMATCH: return "capacity mismatch";
    case VD_E_ATTACH_ROOTLINK: return "child chain has no parent reference";
    case VD_E_NET_REFUSED: return "connection refused";
    case VD_E_NET_SHUTDOWN: return "server shutting down";
    case VD_E_REMOTE: return "the server failed the operation";
    default: return "unknown error";
    }
}
