/* vixdisklib_info.c - the smallest VixDiskLib program: open a local disk
 * read-only and print what GetInfo says.  It builds the same way against
 * openvddk and VMware's VDDK:
 *
 *   cc vixdisklib_info.c $(pkg-config --cflags --libs vixDiskLib) -o vixdisklib_info
 *   LD_LIBRARY_PATH=$(pkg-config --variable=libdir vixDiskLib) ./vixdisklib_info disk.vmdk
 *
 * (docs/guide.md; tests/deb/check_deb.sh builds it against the packages). */
#include <stdio.h>
#include <stdlib.h>

#include "vixDiskLib.h"

static int fail(const char *what, VixError err)
{
    char *text = VixDiskLib_GetErrorText(err, NULL);
    fprintf(stderr, "vixdisklib_info: %s: %s\n", what, text ? text : "?");
    VixDiskLib_FreeErrorText(text);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vixdisklib_info DISK\n");
        return 2;
    }
    /* API version 8.0; no log callbacks, libDir or config file. */
    VixError err = VixDiskLib_InitEx(8, 0, NULL, NULL, NULL, NULL, NULL);
    if (VIX_FAILED(err))
        return fail("InitEx", err);
    VixDiskLibConnection conn = NULL;
    VixDiskLibHandle disk = NULL;
    VixDiskLibInfo *info = NULL;
    int rc = 1;
    err = VixDiskLib_ConnectEx(NULL, TRUE, NULL, NULL, &conn);
    if (VIX_FAILED(err)) {
        rc = fail("ConnectEx", err);
        goto out;
    }
    err = VixDiskLib_Open(conn, argv[1], VIXDISKLIB_FLAG_OPEN_READ_ONLY, &disk);
    if (VIX_FAILED(err)) {
        rc = fail(argv[1], err);
        goto out;
    }
    err = VixDiskLib_GetInfo(disk, &info);
    if (VIX_FAILED(err)) {
        rc = fail("GetInfo", err);
        goto out;
    }
    printf("capacity %llu sectors\n", (unsigned long long)info->capacity);
    printf("links %d\n", info->numLinks);
    printf("adapter %d\n", (int)info->adapterType);
    printf("transport %s\n", VixDiskLib_GetTransportMode(disk));
    rc = 0;
out:
    if (info)
        VixDiskLib_FreeInfo(info);
    if (disk)
        VixDiskLib_Close(disk);
    if (conn)
        VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    return rc;
}
