/* disk.c - the high-level API (vddk/disk.h) on top of the VixDiskLib
 * functions: open with rollback, byte-addressed I/O with read-modify-write
 * of partial sectors, a shared position, and range locks so that
 * overlapping writes from several threads never interleave. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vddk/disk.h"
#include "disk_priv.h"

#define EXPORT __attribute__((visibility("default")))
#define SECTOR VIXDISKLIB_SECTOR_SIZE

struct range {                 /* a write in progress, in sectors [s0, s1) */
    struct range *next;
    uint64 s0, s1;
};

struct vddk_disk {
    VixDiskLibConnectParams *cparams;   /* library copy, for EndAccess */
    char *identity;
    VixDiskLibConnection conn;
    VixDiskLibHandle handle;
    uint64 capacity;
    pthread_mutex_t pos_lock;
    int64 pos;
    pthread_mutex_t range_lock;
    pthread_cond_t range_cond;
    struct range *ranges;
};

static _Thread_local VixError last_err;
static _Thread_local char last_msg[512];

static VixError set_err(VixError e, const char *what)
{
    last_err = e;
    char *t = VixDiskLib_GetErrorText(e, NULL);
    snprintf(last_msg, sizeof last_msg, "%s: %s", what, t ? t : "unknown error");
    VixDiskLib_FreeErrorText(t);
    return e;
}

VixError disk_note_error(VixError e, const char *detail)
{
    last_err = e;
    snprintf(last_msg, sizeof last_msg, "%s", detail);
    return e;
}

static int errno_for(VixError e)
{
    switch (VIX_ERROR_CODE(e)) {
    case VIX_E_INVALID_ARG: case VIX_E_INVALID_HANDLE: return EINVAL;
    case VIX_E_OUT_OF_MEMORY: return ENOMEM;
    case VIX_E_FILE_NOT_FOUND: return ENOENT;
    case VIX_E_FILE_READ_ONLY: return EROFS;
    case VIX_E_FILE_ALREADY_LOCKED: return EBUSY;
    case VIX_E_DISK_OUTOFRANGE: return ENOSPC;
    case VIX_E_DISK_FULL: return ENOSPC;
    default: return EIO;
    }
}

/* Record e from a POSIX-like call and return -1 with errno set. */
static int fail_io(VixError e, const char *what)
{
    set_err(e, what);
    errno = errno_for(e);
    return -1;
}

EXPORT VixError vddk_disk_last_error(const char **detail)
{
    if (detail)
        *detail = last_msg;
    return last_err;
}

EXPORT VixError vddk_disk_open(const vddk_disk_params *p, vddk_disk **out)
{
    if (!p || !out || !p->path)
        return set_err(VIX_E_INVALID_ARG, "vddk_disk_open");
    *out = NULL;
    vddk_disk *d = calloc(1, sizeof *d);
    if (!d)
        return set_err(VIX_E_OUT_OF_MEMORY, "vddk_disk_open");
    d->identity = strdup(p->identity ? p->identity : "openvddk");
    if (!d->identity) {
        free(d);
        return set_err(VIX_E_OUT_OF_MEMORY, "vddk_disk_open");
    }
    VixError e = VixDiskLib_PrepareForAccess(p->connect, d->identity);
    if (e != VIX_OK)
        goto fail;
    e = VixDiskLib_ConnectEx(p->connect, p->readOnly, p->snapshotRef, p->transportModes,
                             &d->conn);
    if (e != VIX_OK)
        goto undo_prepare;
    e = VixDiskLib_GetConnectParams(d->conn, &d->cparams);
    if (e != VIX_OK)
        goto undo_connect;
    e = (p->flags & VDDK_DISK_FLAG_OPEN_RAW)
            ? vddk_disk_open_raw(d->conn, p->path, p->flags & ~VDDK_DISK_FLAG_OPEN_RAW,
                                 &d->handle)
            : VixDiskLib_Open(d->conn, p->path, p->flags, &d->handle);
    if (e != VIX_OK)
        goto undo_connect;
    VixDiskLibInfo *info;
    e = VixDiskLib_GetInfo(d->handle, &info);
    if (e != VIX_OK)
        goto undo_open;
    d->capacity = info->capacity * SECTOR;
    VixDiskLib_FreeInfo(info);
    pthread_mutex_init(&d->pos_lock, NULL);
    pthread_mutex_init(&d->range_lock, NULL);
    pthread_cond_init(&d->range_cond, NULL);
    *out = d;
    last_err = VIX_OK;
    return VIX_OK;

    /* Undo in reverse order; the first error is the one reported. */
undo_open:
    VixDiskLib_Close(d->handle);
undo_connect:
    VixDiskLib_Disconnect(d->conn);
undo_prepare:
    VixDiskLib_EndAccess(p->connect, d->identity);
fail:
    VixDiskLib_FreeConnectParams(d->cparams);
    free(d->identity);
    free(d);
    return set_err(e, "vddk_disk_open");
}

EXPORT VixError vddk_disk_close(vddk_disk *d)
{
    if (!d)
        return set_err(VIX_E_INVALID_ARG, "vddk_disk_close");
    VixError e = VixDiskLib_Close(d->handle);
    if (e == VIX_OK)
        e = VixDiskLib_Disconnect(d->conn);
    if (e == VIX_OK)
        e = VixDiskLib_EndAccess(d->cparams, d->identity);
    VixDiskLib_FreeConnectParams(d->cparams);
    pthread_mutex_destroy(&d->pos_lock);
    pthread_mutex_destroy(&d->range_lock);
    pthread_cond_destroy(&d->range_cond);
    free(d->identity);
    free(d);
    return e == VIX_OK ? VIX_OK : set_err(e, "vddk_disk_close");
}

EXPORT uint64 vddk_disk_capacity(const vddk_disk *d)
{
    return d ? d->capacity : 0;
}

EXPORT VixDiskLibHandle vddk_disk_handle(vddk_disk *d)
{
    return d ? d->handle : NULL;
}

/* Read [off, off+len), both inside the capacity. */
static VixError read_range(vddk_disk *d, unsigned char *buf, uint64 len, uint64 off)
{
    uint8 sec[SECTOR];
    uint64 head = off % SECTOR;
    if (head) {
        VixError e = VixDiskLib_Read(d->handle, off / SECTOR, 1, sec);
        if (e != VIX_OK)
            return e;
        uint64 n = SECTOR - head < len ? SECTOR - head : len;
        memcpy(buf, sec + head, n);
        buf += n;
        off += n;
        len -= n;
    }
    uint64 whole = len / SECTOR;
    if (whole) {
        VixError e = VixDiskLib_Read(d->handle, off / SECTOR, whole, buf);
        if (e != VIX_OK)
            return e;
        buf += whole * SECTOR;
        off += whole * SECTOR;
        len -= whole * SECTOR;
    }
    if (len) {
        VixError e = VixDiskLib_Read(d->handle, off / SECTOR, 1, sec);
        if (e != VIX_OK)
            return e;
        memcpy(buf, sec, len);
    }
    return VIX_OK;
}

EXPORT ssize_t vddk_disk_pread(vddk_disk *d, void *buf, size_t len, uint64 off)
{
    if (!d || (!buf && len))
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_pread");
    if (off >= d->capacity || len == 0)
        return 0;
    if (len > d->capacity - off)
        len = (size_t)(d->capacity - off);
    if (len > SSIZE_MAX)
        len = SSIZE_MAX / SECTOR * SECTOR;
    VixError e = read_range(d, buf, len, off);
    if (e != VIX_OK)
        return fail_io(e, "vddk_disk_pread");
    return (ssize_t)len;
}

/* Wait until no write in progress overlaps sectors [s0, s1), then claim it. */
static void range_claim(vddk_disk *d, struct range *r)
{
    pthread_mutex_lock(&d->range_lock);
    for (;;) {
        struct range *o = d->ranges;
        while (o && (o->s1 <= r->s0 || o->s0 >= r->s1))
            o = o->next;
        if (!o)
            break;
        pthread_cond_wait(&d->range_cond, &d->range_lock);
    }
    r->next = d->ranges;
    d->ranges = r;
    pthread_mutex_unlock(&d->range_lock);
}

static void range_release(vddk_disk *d, struct range *r)
{
    pthread_mutex_lock(&d->range_lock);
    for (struct range **pp = &d->ranges; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_cond_broadcast(&d->range_cond);
    pthread_mutex_unlock(&d->range_lock);
}

/* Read-modify-write of part of one sector. */
static VixError patch_sector(vddk_disk *d, uint64 sector, uint64 at, const void *src, uint64 n)
{
    uint8 sec[SECTOR];
    VixError e = VixDiskLib_Read(d->handle, sector, 1, sec);
    if (e != VIX_OK)
        return e;
    memcpy(sec + at, src, n);
    return VixDiskLib_Write(d->handle, sector, 1, sec);
}

static VixError write_range(vddk_disk *d, const unsigned char *buf, uint64 len, uint64 off)
{
    uint64 head = off % SECTOR;
    if (head) {
        uint64 n = SECTOR - head < len ? SECTOR - head : len;
        VixError e = patch_sector(d, off / SECTOR, head, buf, n);
        if (e != VIX_OK)
            return e;
        buf += n;
        off += n;
        len -= n;
    }
    uint64 whole = len / SECTOR;
    if (whole) {
        VixError e = VixDiskLib_Write(d->handle, off / SECTOR, whole, buf);
        if (e != VIX_OK)
            return e;
        buf += whole * SECTOR;
        off += whole * SECTOR;
        len -= whole * SECTOR;
    }
    if (len)
        return patch_sector(d, off / SECTOR, 0, buf, len);
    return VIX_OK;
}

EXPORT ssize_t vddk_disk_pwrite(vddk_disk *d, const void *buf, size_t len, uint64 off)
{
    if (!d || (!buf && len) || len > SSIZE_MAX)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_pwrite");
    if (off > d->capacity || len > d->capacity - off)
        return fail_io(VIX_E_DISK_OUTOFRANGE, "vddk_disk_pwrite");
    if (len == 0)
        return 0;
    struct range r = { NULL, off / SECTOR, (off + len + SECTOR - 1) / SECTOR };
    range_claim(d, &r);
    VixError e = write_range(d, buf, len, off);
    range_release(d, &r);
    if (e != VIX_OK)
        return fail_io(e, "vddk_disk_pwrite");
    return (ssize_t)len;
}

EXPORT ssize_t vddk_disk_read(vddk_disk *d, void *buf, size_t len)
{
    if (!d)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_read");
    pthread_mutex_lock(&d->pos_lock);
    ssize_t n = vddk_disk_pread(d, buf, len, (uint64)d->pos);
    if (n > 0)
        d->pos += n;
    pthread_mutex_unlock(&d->pos_lock);
    return n;
}

EXPORT ssize_t vddk_disk_write(vddk_disk *d, const void *buf, size_t len)
{
    if (!d)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_write");
    pthread_mutex_lock(&d->pos_lock);
    ssize_t n = vddk_disk_pwrite(d, buf, len, (uint64)d->pos);
    if (n > 0)
        d->pos += n;
    pthread_mutex_unlock(&d->pos_lock);
    return n;
}

EXPORT int64 vddk_disk_seek(vddk_disk *d, int64 offset, int whence)
{
    if (!d)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_seek");
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_seek");
    pthread_mutex_lock(&d->pos_lock);
    int64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? d->pos : (int64)d->capacity;
    int64 np;
    int bad = __builtin_add_overflow(base, offset, &np) || np < 0;
    if (!bad)
        d->pos = np;
    pthread_mutex_unlock(&d->pos_lock);
    if (bad)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_seek");
    return np;
}

EXPORT int vddk_disk_flush(vddk_disk *d)
{
    if (!d)
        return fail_io(VIX_E_INVALID_ARG, "vddk_disk_flush");
    VixError e = VixDiskLib_Flush(d->handle);
    return e == VIX_OK ? 0 : fail_io(e, "vddk_disk_flush");
}

EXPORT VixError vddk_disk_query_allocated_blocks(vddk_disk *d, VixDiskLibSectorType start,
                                                 VixDiskLibSectorType n,
                                                 VixDiskLibSectorType chunk,
                                                 VixDiskLibBlockList **list)
{
    if (!d)
        return set_err(VIX_E_INVALID_ARG, "vddk_disk_query_allocated_blocks");
    VixError e = VixDiskLib_QueryAllocatedBlocks(d->handle, start, n, chunk, list);
    return e == VIX_OK ? VIX_OK : set_err(e, "vddk_disk_query_allocated_blocks");
}
