/* vixdisklib-sample - a small VixDiskLib client, the way backup software
 * uses the library: InitEx, ConnectEx to the local host, Open read-only,
 * GetInfo, QueryAllocatedBlocks, then read every allocated block with
 * ReadAsync (several requests in flight) and print a SHA-256 of the whole
 * disk content (unallocated blocks count as zeros).
 *
 *   vixdisklib-sample DISK
 *
 * It includes only vixDiskLib.h (and our SHA-256), exactly as a program
 * written for VMware's VDDK would, and links libvixDiskLib.so.8. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vixDiskLib.h"
#include "sha256.h"

#define CHUNK 2048u          /* sectors per request (1 MiB) */
#define INFLIGHT 8

struct slot {
    uint8 buf[CHUNK * VIXDISKLIB_SECTOR_SIZE];
    atomic_int done;
    VixError err;
};

static void completed(void *data, VixError err)
{
    struct slot *s = data;
    s->err = err;
    atomic_store(&s->done, 1);
}

static int fail(const char *what, VixError err)
{
    char *text = VixDiskLib_GetErrorText(err, NULL);
    fprintf(stderr, "vixdisklib-sample: %s: %s (error %lu)\n", what, text ? text : "?",
            (unsigned long)err);
    VixDiskLib_FreeErrorText(text);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vixdisklib-sample DISK\n");
        return 2;
    }
    VixError err = VixDiskLib_InitEx(8, 0, NULL, NULL, NULL, NULL, NULL);
    if (err != VIX_OK)
        return fail("InitEx", err);
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    VixDiskLibConnection conn;
    err = VixDiskLib_ConnectEx(cp, TRUE, NULL, NULL, &conn);
    VixDiskLib_FreeConnectParams(cp);
    if (err != VIX_OK)
        return fail("ConnectEx", err);
    VixDiskLibHandle h;
    if ((err = VixDiskLib_Open(conn, argv[1], VIXDISKLIB_FLAG_OPEN_READ_ONLY, &h)) != VIX_OK)
        return fail("Open", err);
    VixDiskLibInfo *info;
    if ((err = VixDiskLib_GetInfo(h, &info)) != VIX_OK)
        return fail("GetInfo", err);
    VixDiskLibSectorType cap = info->capacity;
    printf("disk %s: %lu sectors, %d link(s), transport %s, geometry %u/%u/%u, parent %s\n",
           argv[1], (unsigned long)cap, info->numLinks, VixDiskLib_GetTransportMode(h),
           info->physGeo.cylinders, info->physGeo.heads, info->physGeo.sectors,
           info->parentFileNameHint ? info->parentFileNameHint : "(none)");
    VixDiskLib_FreeInfo(info);

    /* Allocated blocks in 64 KiB chunks; the tail that is not a whole
     * chunk is treated as allocated, as VMware's sample does. */
    VixDiskLibSectorType whole = cap / VIXDISKLIB_MIN_CHUNK_SIZE * VIXDISKLIB_MIN_CHUNK_SIZE;
    VixDiskLibBlockList *bl = NULL;
    if (whole && (err = VixDiskLib_QueryAllocatedBlocks(h, 0, whole, VIXDISKLIB_MIN_CHUNK_SIZE,
                                                        &bl)) != VIX_OK)
        return fail("QueryAllocatedBlocks", err);
    uint32 nb = bl ? bl->numBlocks : 0;
    uint64 allocated = 0;
    for (uint32 i = 0; i < nb; i++)
        allocated += bl->blocks[i].length;
    printf("allocated: %u block(s), %lu of %lu sectors\n", nb, (unsigned long)allocated,
           (unsigned long)cap);

    /* Read the disk in order; allocated ranges through ReadAsync, holes as
     * zeros, hashing as we go. */
    struct slot *slots = calloc(INFLIGHT, sizeof *slots);
    static const uint8 zeros[CHUNK * VIXDISKLIB_SECTOR_SIZE];
    struct sha256 sh;
    sha256_init(&sh);
    VixDiskLibSectorType pos = 0;
    uint32 bi = 0;
    while (pos < cap) {
        VixDiskLibSectorType bstart = bi < nb ? bl->blocks[bi].offset : whole;
        VixDiskLibSectorType bend = bi < nb ? bstart + bl->blocks[bi].length : cap;
        if (pos < bstart) {          /* a hole */
            VixDiskLibSectorType n = bstart - pos < CHUNK ? bstart - pos : CHUNK;
            sha256_update(&sh, zeros, n * VIXDISKLIB_SECTOR_SIZE);
            pos += n;
            continue;
        }
        /* Up to INFLIGHT requests over this block, then hash them in order. */
        int used = 0;
        VixDiskLibSectorType at = pos;
        while (used < INFLIGHT && at < bend) {
            VixDiskLibSectorType n = bend - at < CHUNK ? bend - at : CHUNK;
            atomic_store(&slots[used].done, 0);
            err = VixDiskLib_ReadAsync(h, at, n, slots[used].buf, completed, &slots[used]);
            if (err != VIX_ASYNC)
                return fail("ReadAsync", err);
            used++;
            at += n;
        }
        if ((err = VixDiskLib_Wait(h)) != VIX_OK)
            return fail("Wait", err);
        for (int i = 0; i < used; i++) {
            VixDiskLibSectorType n = at - pos < CHUNK ? at - pos : CHUNK;
            if (!atomic_load(&slots[i].done) || slots[i].err != VIX_OK)
                return fail("ReadAsync completion", slots[i].err);
            sha256_update(&sh, slots[i].buf, n * VIXDISKLIB_SECTOR_SIZE);
            pos += n;
        }
        if (pos >= bend)
            bi++;
    }
    uint8_t digest[32];
    sha256_final(&sh, digest);
    for (int i = 0; i < 32; i++)
        printf("%02x", digest[i]);
    printf("  %s\n", argv[1]);

    free(slots);
    VixDiskLib_FreeBlockList(bl);
    VixDiskLib_Close(h);
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    return 0;
}
