/* vdp_tool.c - the library's internal plugin API from the command line,
 * for the shell tests.  Linked with the library's sources (not the shared
 * library, whose internals are hidden).
 *
 *   vdp_tool [-L LIBDIR] [-c CONFIG] statx FILE
 *        prints "total=N allocated=N unique=N type=N plugin=NAME"
 *   vdp_tool [-L LIBDIR] [-c CONFIG] reserve FILE BYTES
 *   vdp_tool [-L LIBDIR] [-c CONFIG] clonefile SRC DST [lazy] [guarded] [skipzeroes]
 *   vdp_tool datastore PATH
 *        prints the mount and the parameters a plugin would get
 *
 * Exit: 0 done by a plugin, 4 no plugin applies (-VD_E_UNSUPPORTED),
 * 1 other failure (message on stderr), 2 usage. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin/vdplugin.h"
#include "util/err.h"

static void log_cb(const char *fmt, va_list ap)
{
    fprintf(stderr, "[log] ");
    vfprintf(stderr, fmt, ap);
}

static void warn_cb(const char *fmt, va_list ap)
{
    fprintf(stderr, "[warn] ");
    vfprintf(stderr, fmt, ap);
}

static int result(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    fprintf(stderr, "vdp_tool: %s: %s (%s)\n", what, vd_err_msg(), vd_err_name(-rc));
    return rc == -VD_E_UNSUPPORTED ? 4 : 1;
}

static int datastore(const char *path)
{
    int fd = open("/proc/self/mountinfo", O_RDONLY);
    if (fd < 0)
        return 1;
    static char text[1 << 20];
    ssize_t n = read(fd, text, sizeof text - 1), r;
    while (n > 0 && (r = read(fd, text + n, sizeof text - 1 - (size_t)n)) > 0)
        n += r;
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    char *real = realpath(path, NULL);
    struct vdplugin_mount m;
    if (!real || vdplugin_mount_find(text, real, &m) < 0) {
        fprintf(stderr, "vdp_tool: %s: no mount found\n", path);
        free(real);
        return 1;
    }
    VixDiskLibNasPluginDataStoreParams p;
    if (vdplugin_ds_params(&m, &p) == 0) {
        printf("mount=%s fstype=%s source=%s fsType=%s fsVersion=%u remoteIP=%s "
               "remoteMountPoint=%s\n", m.mount_point, m.fstype, m.source, p.fsType,
               p.fsVersion, p.remoteIP ? p.remoteIP : "-",
               p.remoteMountPoint ? p.remoteMountPoint : "-");
        vdplugin_ds_params_free(&p);
    }
    vdplugin_mount_free(&m);
    free(real);
    return 0;
}

int main(int argc, char **argv)
{
    const char *lib = NULL, *cfg = NULL;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-L"))
            lib = strcmp(argv[i + 1], "-") ? argv[i + 1] : NULL;
        else if (!strcmp(argv[i], "-c"))
            cfg = argv[i + 1];
        else
            break;
    }
    if (i >= argc)
        goto usage;
    const char *cmd = argv[i++];
    if (!strcmp(cmd, "datastore") && i + 1 == argc)
        return datastore(argv[i]);
    if (VixDiskLib_InitEx(8, 0, log_cb, warn_cb, warn_cb, lib, cfg) != VIX_OK)
        return 1;
    int rc = 2;
    if (!strcmp(cmd, "statx") && i + 1 == argc) {
        struct vdplugin_stat st;
        rc = result(vdplugin_statx(argv[i], &st), "statx");
        if (rc == 0)
            printf("total=%llu allocated=%llu unique=%llu type=%d plugin=%s\n",
                   (unsigned long long)st.total, (unsigned long long)st.allocated,
                   (unsigned long long)st.unique, st.alloc_type, st.plugin);
    } else if (!strcmp(cmd, "reserve") && i + 2 == argc) {
        rc = result(vdplugin_reserve_space(argv[i], strtoull(argv[i + 1], NULL, 10)), "reserve");
    } else if (!strcmp(cmd, "clonefile") && i + 2 <= argc) {
        unsigned flags = 0;
        for (int k = i + 2; k < argc; k++) {
            if (!strcmp(argv[k], "lazy"))
                flags |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_LAZY;
            else if (!strcmp(argv[k], "guarded"))
                flags |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_GUARDED;
            else if (!strcmp(argv[k], "skipzeroes"))
                flags |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_SKIPZEROES;
            else if (!strcmp(argv[k], "dryrun"))
                flags |= VIXDISKLIB_NASPLUGIN_CLONEFILE_FLAG_DRYRUN;
        }
        rc = result(vdplugin_clone_file(argv[i], argv[i + 1], flags, NULL, NULL), "clonefile");
    }
    VixDiskLib_Exit();
    if (rc != 2)
        return rc;
usage:
    fprintf(stderr, "usage: vdp_tool [-L LIBDIR] [-c CONFIG] statx FILE | reserve FILE BYTES | "
                    "clonefile SRC DST [flags] | datastore PATH\n");
    return 2;
}
