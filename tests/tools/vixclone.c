/* vixclone.c - VixDiskLib_Clone from the command line, for the interop
 * scripts.  Uses only the public API (vixDiskLib.h) and links the
 * libvixDiskLib we build.
 *
 *   vixclone [-f] [-p] [-a ADAPTER] SRC DST TYPE
 *
 * TYPE is a createType name (monolithicSparse, monolithicFlat,
 * twoGbMaxExtentSparse, twoGbMaxExtentFlat, vmfs, vmfsThin,
 * streamOptimized, vmfsSparse) or a short name (sparse, flat, splitSparse,
 * splitFlat, vmfsFlat, thin, stream).  -f: overWrite TRUE.  -p: print each
 * progress percentage on stdout, one per line, flushed.  -a: ide,
 * buslogic or lsilogic (default lsilogic).
 *
 * Exit status: 0 done, 1 the clone failed (the library's error text and
 * last warning on stderr), 2 bad usage, 3 VIX_E_DISK_NOTSUPPORTED (a type
 * the library cannot create). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vixDiskLib.h"

static char last_warning[1024];

static void log_cb(const char *fmt, va_list ap)
{
    (void)fmt;
    (void)ap;
}

static void warn_cb(const char *fmt, va_list ap)
{
    vsnprintf(last_warning, sizeof last_warning, fmt, ap);
}

static int print_progress;

static Bool progress_cb(void *data, int pct)
{
    (void)data;
    if (print_progress) {
        printf("%d\n", pct);
        fflush(stdout);
    }
    return TRUE;
}

static const struct {
    const char *name, *alias;
    VixDiskLibDiskType type;
} types[] = {
    { "monolithicSparse", "sparse", VIXDISKLIB_DISK_MONOLITHIC_SPARSE },
    { "monolithicFlat", "flat", VIXDISKLIB_DISK_MONOLITHIC_FLAT },
    { "twoGbMaxExtentSparse", "splitSparse", VIXDISKLIB_DISK_SPLIT_SPARSE },
    { "twoGbMaxExtentFlat", "splitFlat", VIXDISKLIB_DISK_SPLIT_FLAT },
    { "vmfs", "vmfsFlat", VIXDISKLIB_DISK_VMFS_FLAT },
    { "vmfsThin", "thin", VIXDISKLIB_DISK_VMFS_THIN },
    { "streamOptimized", "stream", VIXDISKLIB_DISK_STREAM_OPTIMIZED },
    { "vmfsSparse", "cowd", VIXDISKLIB_DISK_VMFS_SPARSE },
};

static void usage(void)
{
    fprintf(stderr, "usage: vixclone [-f] [-p] [-a ide|buslogic|lsilogic] SRC DST TYPE\n");
}

static void fail(const char *what, VixError e)
{
    char *text = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "vixclone: %s: error %lu (%s)%s%s\n", what, (unsigned long)e,
            text ? text : "?", last_warning[0] ? "; " : "", last_warning);
    VixDiskLib_FreeErrorText(text);
}

int main(int argc, char **argv)
{
    int overwrite = 0, opt;
    VixDiskLibAdapterType adapter = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
    while ((opt = getopt(argc, argv, "fpa:")) != -1) {
        switch (opt) {
        case 'f': overwrite = 1; break;
        case 'p': print_progress = 1; break;
        case 'a':
            if (!strcmp(optarg, "ide"))
                adapter = VIXDISKLIB_ADAPTER_IDE;
            else if (!strcmp(optarg, "buslogic"))
                adapter = VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC;
            else if (!strcmp(optarg, "lsilogic"))
                adapter = VIXDISKLIB_ADAPTER_SCSI_LSILOGIC;
            else {
                usage();
                return 2;
            }
            break;
        default:
            usage();
            return 2;
        }
    }
    if (argc - optind != 3) {
        usage();
        return 2;
    }
    const char *src = argv[optind], *dst = argv[optind + 1], *tname = argv[optind + 2];
    int t = -1;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(tname, types[i].name) || !strcmp(tname, types[i].alias))
            t = (int)i;
    if (t < 0) {
        fprintf(stderr, "vixclone: unknown disk type %s\n", tname);
        return 2;
    }

    VixError e = VixDiskLib_InitEx(8, 0, log_cb, warn_cb, warn_cb, NULL, NULL);
    if (e != VIX_OK) {
        fail("InitEx", e);
        return 1;
    }
    VixDiskLibConnection conn = NULL;
    e = VixDiskLib_ConnectEx(NULL, FALSE, NULL, NULL, &conn);
    if (e != VIX_OK) {
        fail("ConnectEx", e);
        VixDiskLib_Exit();
        return 1;
    }
    VixDiskLibCreateParams cp;
    memset(&cp, 0, sizeof cp);
    cp.diskType = types[t].type;
    cp.adapterType = adapter;
    cp.hwVersion = VIXDISKLIB_HWVERSION_WORKSTATION_5;
    e = VixDiskLib_Clone(conn, dst, conn, src, &cp, progress_cb, NULL, overwrite ? TRUE : FALSE);
    int status = 0;
    if (e != VIX_OK) {
        fail("Clone", e);
        status = VIX_ERROR_CODE(e) == VIX_E_DISK_NOTSUPPORTED ? 3 : 1;
    }
    VixDiskLib_Disconnect(conn);
    VixDiskLib_Exit();
    return status;
}
