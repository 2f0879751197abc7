/* cmd_vsphere.c - vSphere disks for every read-only subcommand, and the
 * `vsphere` and `thumbprint` subcommands.
 *
 * The connection options may stand anywhere after the subcommand name:
 *   --server HOST[:PORT] --user USER --password-file FILE --thumbprint TP
 *   --vm MOREF --snapshot MOREF --transport MODES --nfc-port PORT
 * (environment: VDDK_SERVER, VDDK_USER, VDDK_PASSWORD, VDDK_PASSWORD_FILE,
 * VDDK_THUMBPRINT).  A password is never taken from the command line.
 * With a server set, a disk argument written "[datastore] path" is a disk
 * of the VM on that server; any other argument stays a local file. */
#include "vddk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct {
    char *server, *user, *password, *thumb, *vm, *snapshot, *modes;
    unsigned port, nfc_port;
    VixDiskLibConnectParams *cp;
    VixDiskLibConnection conn;
    char **vms;                    /* every --vm given, in order */
    size_t nvms;
} R;

static char *read_password_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        vddk_fail("%s: cannot read the password file: %s", path, strerror(errno));
        return NULL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* One line: the first line break ends it. */
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

static int set_server(const char *v)
{
    free(R.server);
    R.server = strdup(v);
    if (!R.server)
        return vddk_fail("out of memory");
    /* HOST:PORT, [V6]:PORT; a bare IPv6 address has several colons. */
    char *colon = strrchr(R.server, ':');
    char *bracket = strrchr(R.server, ']');
    if (colon && (bracket ? colon > bracket : strchr(R.server, ':') == colon)) {
        uint64_t port;
        if (vddk_parse_uint(colon + 1, 65535, &port) < 0 || port == 0) {
            fprintf(stderr, "vddk: --server %s: bad port\n", v);
            return VDDK_EXIT_USAGE;
        }
        R.port = (unsigned)port;
        *colon = '\0';
    }
    return 0;
}

/* Take the vSphere options out of argv[2..] (argv[1] is the subcommand). */
int vddk_remote_options(int *argc, char **argv)
{
    static const char *const names[] = { "server", "host", "user", "password-file",
                                         "thumbprint", "vm", "snapshot", "transport",
                                         "nfc-port", "password", NULL };
    int out = 2, rc = 0;
    const char *pwfile = getenv("VDDK_PASSWORD_FILE");
    for (int i = 2; i < *argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        const char *name = NULL, *val = NULL;
        if (strncmp(a, "--", 2) == 0)
            for (int k = 0; names[k]; k++) {
                size_t l = strlen(names[k]);
                if (strncmp(a + 2, names[k], l) == 0 && (a[2 + l] == '\0' || a[2 + l] == '=')) {
                    name = names[k];
                    val = a[2 + l] == '=' ? a + 3 + l : NULL;
                }
            }
        if (!name) {
            argv[out++] = a;
            continue;
        }
        if (strcmp(name, "password") == 0) {
            fprintf(stderr, "vddk: --password: a password is never taken from the command line "
                    "(others can read it); use --password-file FILE or VDDK_PASSWORD\n");
            return VDDK_EXIT_USAGE;
        }
        if (!val) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "vddk: --%s needs a value\n", name);
                return VDDK_EXIT_USAGE;
            }
            val = argv[++i];
        }
        char **dst = !strcmp(name, "user") ? &R.user : !strcmp(name, "thumbprint") ? &R.thumb
                   : !strcmp(name, "vm") ? &R.vm : !strcmp(name, "snapshot") ? &R.snapshot
                   : !strcmp(name, "transport") ? &R.modes : NULL;
        if (!strcmp(name, "server") || !strcmp(name, "host")) {
            if ((rc = set_server(val)) != 0)
                return rc;
        } else if (!strcmp(name, "password-file")) {
            pwfile = val;
        } else if (!strcmp(name, "nfc-port")) {
            uint64_t port;
            if (vddk_parse_uint(val, 65535, &port) < 0 || port == 0) {
                fprintf(stderr, "vddk: --nfc-port %s: bad port\n", val);
                return VDDK_EXIT_USAGE;
            }
            R.nfc_port = (unsigned)port;
        } else if (dst) {
            free(*dst);
            if (!(*dst = strdup(val)))
                return vddk_fail("out of memory");
            if (dst == &R.vm) {
                char **nv = realloc(R.vms, (R.nvms + 1) * sizeof *nv);
                if (!nv || !(nv[R.nvms] = strdup(val))) {
                    if (nv)
                        R.vms = nv;
                    return vddk_fail("out of memory");
                }
                R.vms = nv;
                R.nvms++;
            }
        }
    }
    argv[out] = NULL;
    *argc = out;
    if (!R.server && getenv("VDDK_SERVER") && (rc = set_server(getenv("VDDK_SERVER"))) != 0)
        return rc;
    if (!R.user && getenv("VDDK_USER"))
        R.user = strdup(getenv("VDDK_USER"));
    if (!R.thumb && getenv("VDDK_THUMBPRINT"))
        R.thumb = strdup(getenv("VDDK_THUMBPRINT"));
    if (R.server && pwfile) {
        if (!(R.password = read_password_file(pwfile)))
            return VDDK_EXIT_FAIL;
    } else if (R.server && getenv("VDDK_PASSWORD")) {
        R.password = strdup(getenv("VDDK_PASSWORD"));
    }
    if (!R.server && (R.vm || R.snapshot || R.user)) {
        fprintf(stderr, "vddk: --vm, --snapshot and --user need --server (or VDDK_SERVER)\n");
        return VDDK_EXIT_USAGE;
    }
    return 0;
}

const char *const *vddk_remote_vms(size_t *n)
{
    *n = R.nvms;
    return (const char *const *)R.vms;
}

int vddk_remote_set(void)
{
    return R.server != NULL;
}

/* ConnectParams for the server (library-independent struct of ours). */
static VixDiskLibConnectParams *params(void)
{
    if (R.cp)
        return R.cp;
    VixDiskLibConnectParams *cp = VixDiskLib_AllocateConnectParams();
    if (!cp)
        return NULL;
    static char vmspec[256];
    if (R.vm)
        snprintf(vmspec, sizeof vmspec, "%s%s", strncmp(R.vm, "moref=", 6) ? "moref=" : "",
                 R.vm);
    cp->serverName = R.server;
    cp->port = R.port;
    cp->nfcHostPort = R.nfc_port;
    cp->thumbPrint = R.thumb;
    cp->vmxSpec = R.vm ? vmspec : NULL;
    cp->specType = VIXDISKLIB_SPEC_VMX;
    cp->credType = VIXDISKLIB_CRED_UID;
    cp->creds.uid.userName = R.user ? R.user : (char *)"";
    cp->creds.uid.password = R.password ? R.password : (char *)"";
    R.cp = cp;
    return cp;
}

const VixDiskLibConnectParams *vddk_remote_params(const char **snapshot, const char **modes)
{
    if (snapshot)
        *snapshot = R.snapshot;
    if (modes)
        *modes = R.modes;
    return R.server ? params() : NULL;
}

int vddk_is_remote_path(const char *path)
{
    return R.server && path && path[0] == '[';
}

VixDiskLibConnection vddk_conn_for(const char *path)
{
    if (!vddk_is_remote_path(path))
        return vddk_conn();
    if (R.conn)
        return R.conn;
    if (!vddk_conn())               /* initialises the library */
        return NULL;
    if (!R.vm) {
        vddk_fail("%s: a vSphere disk needs --vm MOREF (see 'vddk vsphere' to find it)", path);
        return NULL;
    }
    VixDiskLibConnectParams *cp = params();
    if (!cp) {
        vddk_fail("out of memory");
        return NULL;
    }
    vddk_warn_clear();
    /* Read-write: each open says read-only unless the subcommand writes
     * (which then needs transport nbd or nbdssl). */
    VixError e = VixDiskLib_ConnectEx(cp, FALSE, R.snapshot, R.modes, &R.conn);
    if (e != VIX_OK) {
        R.conn = NULL;
        vddk_vix_error(e, R.server);
        return NULL;
    }
    return R.conn;
}

void vddk_remote_exit(void)
{
    if (R.conn)
        VixDiskLib_Disconnect(R.conn);
    R.conn = NULL;
    if (R.cp)
        VixDiskLib_FreeConnectParams(R.cp);
    R.cp = NULL;
    if (R.password)
        memset(R.password, 0, strlen(R.password));
    for (size_t i = 0; i < R.nvms; i++)
        free(R.vms[i]);
    free(R.vms);
    R.vms = NULL;
    R.nvms = 0;
    char **s[] = { &R.server, &R.user, &R.password, &R.thumb, &R.vm, &R.snapshot, &R.modes };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        free(*s[i]);
        *s[i] = NULL;
    }
}

/* ---- vddk vsphere ---------------------------------------------------------- */

enum { OPT_JSON = 1 };

static void json_vm(FILE *f, const vddk_vsphere_vm *v, int last)
{
    fputs(" {\"moref\": ", f);
    vddk_json_str(f, v->moref);
    fputs(", \"name\": ", f);
    vddk_json_str(f, v->name);
    fputs(", \"powerState\": ", f);
    vddk_json_str(f, v->powerState);
    fputs(", \"host\": ", f);
    vddk_json_str(f, v->host);
    fputs(", \"datacenter\": ", f);
    vddk_json_str(f, v->datacenter);
    fputs(",\n  \"disks\": [", f);
    for (uint32 i = 0; i < v->numDisks; i++) {
        const vddk_vsphere_disk *d = &v->disks[i];
        fprintf(f, "%s{\"key\": %d, \"path\": ", i ? ", " : "", (int)d->key);
        vddk_json_str(f, d->path);
        fprintf(f, ", \"capacity\": %llu, \"chain\": [", (unsigned long long)d->capacity);
        for (uint32 j = 0; j < d->numChain; j++) {
            fputs(j ? ", " : "", f);
            vddk_json_str(f, d->chain[j]);
        }
        fputs("]}", f);
    }
    fputs("],\n  \"snapshots\": [", f);
    for (uint32 i = 0; i < v->numSnapshots; i++) {
        const vddk_vsphere_snapshot *s = &v->snapshots[i];
        fprintf(f, "%s{\"moref\": ", i ? ", " : "");
        vddk_json_str(f, s->moref);
        fputs(", \"name\": ", f);
        vddk_json_str(f, s->name);
        fputs(", \"created\": ", f);
        vddk_json_str(f, s->createTime);
        fprintf(f, ", \"depth\": %u}", (unsigned)s->depth);
    }
    fprintf(f, "]}%s\n", last ? "" : ",");
}

static int run_vsphere(int argc, char **argv)
{
    static const struct vddk_opt opts[] = { { 0, "json", 0, OPT_JSON }, { 0, NULL, 0, 0 } };
    const struct vddk_cmd *cmd = &vddk_cmd_vsphere;
    struct vddk_optstate st;
    int json = 0, o, ret = VDDK_EXIT_OK;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return vddk_fail("out of memory");
    while ((o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        if (o == VDDK_OPT_HELP) {
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        }
        if (o == VDDK_OPT_ERROR) {
            vddk_opt_free(&st);
            return VDDK_EXIT_USAGE;
        }
        if (o == OPT_JSON)
            json = 1;
    }
    if ((ret = vddk_operands(cmd, &st, 0, 0, "")) != 0) {
        vddk_opt_free(&st);
        return ret;
    }
    vddk_opt_free(&st);
    if (!R.server)
        return vddk_usage_error(cmd, "no server: give --server HOST (or VDDK_SERVER)");
    if (!vddk_conn())
        return VDDK_EXIT_FAIL;
    const VixDiskLibConnectParams *cp = params();
    if (!cp)
        return vddk_fail("out of memory");
    vddk_vsphere_vm *vms = NULL;
    uint32 n = 0;
    vddk_warn_clear();
    VixError e = vddk_disk_vsphere_list(cp, R.snapshot, &vms, &n);
    if (e != VIX_OK)
        return vddk_vix_error(e, R.server);
    if (json) {
        puts("[");
        for (uint32 i = 0; i < n; i++)
            json_vm(stdout, &vms[i], i + 1 == n);
        puts("]");
    } else {
        for (uint32 i = 0; i < n; i++) {
            const vddk_vsphere_vm *v = &vms[i];
            printf("%s%s  %s  %s  host %s  datacenter %s\n", i ? "\n" : "", v->moref, v->name,
                   v->powerState, v->host ? v->host : "-", v->datacenter);
            for (uint32 j = 0; j < v->numDisks; j++) {
                char h[VDDK_HUMAN_LEN];
                printf("  disk %d  %s  %s\n", (int)v->disks[j].key, v->disks[j].path,
                       vddk_human(v->disks[j].capacity, h));
                for (uint32 k = 1; k < v->disks[j].numChain; k++)
                    printf("      parent %s\n", v->disks[j].chain[k]);
            }
            for (uint32 j = 0; j < v->numSnapshots; j++)
                printf("  %*ssnapshot %s  %s  %s\n", 2 * (int)v->snapshots[j].depth, "",
                       v->snapshots[j].moref, v->snapshots[j].name,
                       v->snapshots[j].createTime ? v->snapshots[j].createTime : "");
        }
    }
    vddk_disk_vsphere_free(vms, n);
    return ret;
}

const struct vddk_cmd vddk_cmd_vsphere = {
    .name = "vsphere",
    .summary = "list the VMs of a vCenter or ESXi host with their snapshots and disks",
    .help =
        "usage: vddk vsphere --server HOST[:PORT] --user USER [--password-file FILE]\n"
        "                    [--thumbprint TP] [--vm MOREF [--snapshot MOREF]] [--json]\n"
        "\n"
        "List the virtual machines the user can see: moref, name, power state,\n"
        "host and datacenter; each disk with its device key, datastore path,\n"
        "capacity and parent (delta) files; and the snapshot tree.  With --vm,\n"
        "only that VM; with --snapshot too, its disks as that snapshot recorded\n"
        "them.  These are what the other subcommands take: --vm MOREF and a\n"
        "\"[datastore] path\" as DISK.  The password comes from --password-file or\n"
        "VDDK_PASSWORD, never from the command line.  Without --thumbprint the\n"
        "server's certificate must be trusted by the system CA store ('vddk\n"
        "thumbprint HOST' prints what to pin).\n"
        "  --json   one JSON array of VMs (see the man page)\n",
    .run = run_vsphere,
};

/* ---- vddk thumbprint --------------------------------------------------------- */

static int run_thumbprint(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_thumbprint;
    static const struct vddk_opt opts[] = { { 0, NULL, 0, 0 } };
    struct vddk_optstate st;
    int o, ret;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return vddk_fail("out of memory");
    while ((o = vddk_getopt(&st, opts, cmd)) != VDDK_OPT_END) {
        if (o == VDDK_OPT_HELP) {
            vddk_opt_free(&st);
            return vddk_print_help(cmd, stdout);
        }
        if (o == VDDK_OPT_ERROR) {
            vddk_opt_free(&st);
            return VDDK_EXIT_USAGE;
        }
    }
    if ((ret = vddk_operands(cmd, &st, 1, 1, "HOST[:PORT]")) != 0) {
        vddk_opt_free(&st);
        return ret;
    }
    char *target = strdup(st.operands[0]);
    vddk_opt_free(&st);
    if (!target)
        return vddk_fail("out of memory");
    free(R.server);
    R.server = NULL;
    R.port = 0;
    if ((ret = set_server(target)) != 0) {
        free(target);
        return ret;
    }
    char host[512];
    snprintf(host, sizeof host, "%s", R.server);
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    if (!vddk_conn()) {
        free(target);
        return VDDK_EXIT_FAIL;
    }
    char sha1[64], sha256[112];
    vddk_warn_clear();
    VixError e = vddk_disk_server_thumbprints(host, R.port, sha1, sha256);
    if (e != VIX_OK)
        ret = vddk_vix_error(e, target);
    else
        printf("SHA-1   %s\nSHA-256 %s\n", sha1, sha256);
    free(target);
    return ret;
}

const struct vddk_cmd vddk_cmd_thumbprint = {
    .name = "thumbprint",
    .summary = "print the SHA-1 and SHA-256 thumbprints of a server's certificate",
    .help =
        "usage: vddk thumbprint HOST[:PORT]\n"
        "\n"
        "Connect to HOST (port 443 unless given), read the TLS certificate it\n"
        "presents and print its SHA-1 and SHA-256 thumbprints, as --thumbprint\n"
        "(and VixDiskLib's thumbPrint) take them.  Nothing but the TLS handshake\n"
        "is sent.  Compare them with what the server's console shows before\n"
        "trusting them.\n",
    .run = run_thumbprint,
};
