/* vsnap.c - the vSphere session calls of vddk/disk.h (session, snapshots,
 * VM configuration) for tests/vsphere/snapshot.sh.  Public API only.
 *
 *   vsnap -s HOST -p PORT -u USER -t THUMBPRINT COMMAND ARGS...
 *
 * The password comes from VSNAP_PASSWORD.  Every command opens its own
 * session and closes it; a failure prints
 *   vsnap: COMMAND: error N: TEXT [last warning of the library]
 * on stderr and exits 1 (2 for a usage error).
 *
 *   open                          session_open, session_close
 *   create VM NAME [DESC]         snapshot_create; prints the snapshot moref
 *   remove SNAP [children]        snapshot_remove
 *   list [VM [SNAP]]              session_list: "vm MOREF NAME", then
 *                                 "  disk KEY PATH" and
 *                                 "  snapshot MOREF DEPTH NAME|DESC" lines
 *   config VM                     vm_config: the JSON document
 *   cycle VM NAME                 create, list, config, remove, list in one
 *                                 session; prints the snapshot moref
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vixDiskLib.h"
#include "vddk/disk.h"

static const char *cmd = "";
static char last_warn[2048];

static void logf_(const char *fmt, va_list ap)
{
    if (getenv("VSNAP_LOG")) {
        fprintf(stderr, "vsnap: log: ");
        vfprintf(stderr, fmt, ap);
    }
}

static void warnf(const char *fmt, va_list ap)
{
    vsnprintf(last_warn, sizeof last_warn, fmt, ap);
    size_t n = strlen(last_warn);
    while (n && last_warn[n - 1] == '\n')
        last_warn[--n] = '\0';
}

static int fail(VixError e, const char *what)
{
    char *t = VixDiskLib_GetErrorText(e, NULL);
    fprintf(stderr, "vsnap: %s: error %lu: %s: %s [%s]\n", cmd,
            (unsigned long)VIX_ERROR_CODE(e), what, t ? t : "?", last_warn);
    VixDiskLib_FreeErrorText(t);
    return 1;
}

static void print_list(const vddk_vsphere_vm *vms, uint32 n)
{
    for (uint32 i = 0; i < n; i++) {
        const vddk_vsphere_vm *v = &vms[i];
        printf("vm %s %s\n", v->moref, v->name);
        for (uint32 j = 0; j < v->numDisks; j++)
            printf("  disk %d %s\n", (int)v->disks[j].key, v->disks[j].path);
        for (uint32 j = 0; j < v->numSnapshots; j++)
            printf("  snapshot %s %u %s|%s\n", v->snapshots[j].moref,
                   (unsigned)v->snapshots[j].depth, v->snapshots[j].name,
                   v->snapshots[j].description ? v->snapshots[j].description : "(null)");
    }
}

static int run(vddk_vsphere_session *s, int argc, char **argv)
{
    VixError e;
    if (strcmp(cmd, "open") == 0)
        return 0;
    if (strcmp(cmd, "create") == 0 && (argc == 2 || argc == 3)) {
        char *ref = NULL;
        e = vddk_disk_vsphere_snapshot_create(s, argv[0], argv[1], argc == 3 ? argv[2] : NULL,
                                              FALSE, FALSE, &ref);
        if (e != VIX_OK)
            return fail(e, "snapshot_create");
        printf("%s\n", ref);
        free(ref);
        return 0;
    }
    if (strcmp(cmd, "remove") == 0 && (argc == 1 || argc == 2)) {
        e = vddk_disk_vsphere_snapshot_remove(s, argv[0],
                                              argc == 2 && strcmp(argv[1], "children") == 0);
        return e != VIX_OK ? fail(e, "snapshot_remove") : 0;
    }
    if (strcmp(cmd, "list") == 0 && argc <= 2) {
        vddk_vsphere_vm *vms = NULL;
        uint32 n = 0;
        e = vddk_disk_vsphere_session_list(s, argc > 0 ? argv[0] : NULL,
                                           argc > 1 ? argv[1] : NULL, &vms, &n);
        if (e != VIX_OK)
            return fail(e, "session_list");
        print_list(vms, n);
        vddk_disk_vsphere_free(vms, n);
        return 0;
    }
    if (strcmp(cmd, "config") == 0 && argc == 1) {
        char *json = NULL;
        e = vddk_disk_vsphere_vm_config(s, argv[0], &json);
        if (e != VIX_OK)
            return fail(e, "vm_config");
        printf("%s\n", json);
        free(json);
        return 0;
    }
    if (strcmp(cmd, "cycle") == 0 && argc == 2) {
        char *ref = NULL, *json = NULL;
        vddk_vsphere_vm *vms = NULL;
        uint32 n = 0;
        if ((e = vddk_disk_vsphere_snapshot_create(s, argv[0], argv[1], "cycle", FALSE, TRUE,
                                                   &ref)) != VIX_OK)
            return fail(e, "snapshot_create");
        int found = 0;
        if ((e = vddk_disk_vsphere_session_list(s, argv[0], ref, &vms, &n)) != VIX_OK)
            return fail(e, "session_list");
        for (uint32 j = 0; n == 1 && j < vms[0].numSnapshots; j++)
            found |= strcmp(vms[0].snapshots[j].moref, ref) == 0;
        vddk_disk_vsphere_free(vms, n);
        if (!found) {
            fprintf(stderr, "vsnap: cycle: %s not in the list\n", ref);
            return 1;
        }
        if ((e = vddk_disk_vsphere_vm_config(s, argv[0], &json)) != VIX_OK)
            return fail(e, "vm_config");
        free(json);
        if ((e = vddk_disk_vsphere_snapshot_remove(s, ref, FALSE)) != VIX_OK)
            return fail(e, "snapshot_remove");
        if ((e = vddk_disk_vsphere_session_list(s, argv[0], NULL, &vms, &n)) != VIX_OK)
            return fail(e, "session_list");
        for (uint32 j = 0; n == 1 && j < vms[0].numSnapshots; j++)
            if (strcmp(vms[0].snapshots[j].moref, ref) == 0) {
                fprintf(stderr, "vsnap: cycle: %s still listed after removal\n", ref);
                return 1;
            }
        vddk_disk_vsphere_free(vms, n);
        printf("%s\n", ref);
        free(ref);
        return 0;
    }
    fprintf(stderr, "vsnap: %s: bad command or arguments\n", cmd);
    return 2;
}

int main(int argc, char **argv)
{
    const char *server = NULL, *user = NULL, *thumb = NULL;
    unsigned port = 0;
    int c;
    while ((c = getopt(argc, argv, "s:p:u:t:")) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'u': user = optarg; break;
        case 't': thumb = optarg; break;
        default: return 2;
        }
    }
    if (optind >= argc || !server || !user) {
        fprintf(stderr, "usage: vsnap -s HOST [-p PORT] -u USER [-t TP] COMMAND ARGS...\n");
        return 2;
    }
    cmd = argv[optind];
    VixError e = VixDiskLib_InitEx(8, 0, logf_, warnf, warnf, NULL, NULL);
    if (e != VIX_OK)
        return fail(e, "InitEx");
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    cp->serverName = (char *)server;
    cp->port = port;
    cp->thumbPrint = (char *)thumb;
    cp->credType = VIXDISKLIB_CRED_UID;
    cp->creds.uid.userName = (char *)user;
    const char *pw = getenv("VSNAP_PASSWORD");
    cp->creds.uid.password = (char *)(pw ? pw : "");
    vddk_vsphere_session *s = NULL;
    e = vddk_disk_vsphere_session_open(cp, &s);
    int rc = e != VIX_OK ? fail(e, "session_open") : run(s, argc - optind - 1, argv + optind + 1);
    vddk_disk_vsphere_session_close(s);
    cp->serverName = NULL;
    cp->thumbPrint = NULL;
    cp->creds.uid.userName = NULL;
    cp->creds.uid.password = NULL;
    VixDiskLib_FreeConnectParams(cp);
    VixDiskLib_Exit();
    return rc;
}
