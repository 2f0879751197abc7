/* cmd_serve.c - `vddk serve`: export VMDK disks over NBD. */
#include "vddk.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "net/nbd_datastore.h"
#include "net/nbd_proto.h"
#include "net/nbd_server.h"
#include "net/net_io.h"
#include "net/net_tls.h"

static int run_serve(int argc, char **argv);

const struct vddk_cmd vddk_cmd_serve = {
    .name = "serve",
    .summary = "export disks over NBD (for remote VixDiskLib clients and NBD tools)",
    .help =
        "usage: vddk serve --datastore NAME=DIR [--datastore NAME=DIR...] [OPTIONS]\n"
        "\n"
        "Serve the VMDK disks under each DIR over the NBD protocol.  A client\n"
        "names a disk as VixDiskLib does, \"[NAME] vm/disk.vmdk\" (or, convenient\n"
        "in nbd:// URIs, \"NAME/vm/disk.vmdk\").  Names that resolve outside every\n"
        "DIR, through \"..\" or symbolic links, are refused, and so is a disk\n"
        "whose chain uses a file outside the datastores.  Every connection to\n"
        "one disk shares one open chain (clients may use several connections);\n"
        "a disk is closed, flushed, when its last client leaves.\n"
        "\n"
        "Options:\n"
        "  --datastore NAME=DIR  export the disks under DIR as [NAME] (repeatable)\n"
        "  --single-link         serve the named file alone, not its parents\n"
        "                        (implies --readonly)\n"
        "  -r, --readonly        refuse writes\n"
        "  -p, --port PORT       TCP port (default 10809; 0 picks a free port, shown\n"
        "                        in the \"listening on\" line)\n"
        "  -b, --bind ADDR       listen on ADDR only (default: all addresses)\n"
        "  -u, --unix PATH       listen on a Unix socket (only there, unless --port\n"
        "                        or --bind is given too)\n"
        "  --tls=MODE            off, on (clients choose) or require (nothing but\n"
        "                        STARTTLS before TLS); default off, or require when\n"
        "                        credentials are given\n"
        "  --tls-cert FILE       X.509 certificate (PEM) ...\n"
        "  --tls-key FILE        ... and its private key\n"
        "  --tls-ca FILE         require client certificates signed by this CA\n"
        "  --tls-psk FILE        pre-shared keys, lines of identity:hexkey\n"
        "  --threads N           worker threads per connection (default 4)\n"
        "  --max-connections N   at most N clients at once (default 256)\n"
        "  --daemon              run in the background (logs go to syslog)\n"
        "  --pid-file FILE       write the server's process id to FILE\n"
        "  -v, --verbose         log every connection and failed request\n"
        "  -q, --quiet           log warnings and errors only\n"
        "  -h, --help            show this help\n"
        "\n"
        "SIGTERM or SIGINT stops the server: no new connections or requests are\n"
        "taken, requests in flight finish, and every open disk is flushed and\n"
        "closed before it exits.\n",
    .run = run_serve,
};

enum {
    O_DATASTORE = 1, O_SINGLE, O_READONLY, O_PORT, O_BIND, O_UNIX, O_TLS, O_CERT, O_KEY, O_CA,
    O_PSK, O_THREADS, O_MAXCONN, O_DAEMON, O_PIDFILE, O_VERBOSE, O_QUIET,
};

static const struct vddk_opt serve_opts[] = {
    { 0, "datastore", 1, O_DATASTORE },
    { 0, "single-link", 0, O_SINGLE },
    { 'r', "readonly", 0, O_READONLY },
    { 'p', "port", 1, O_PORT },
    { 'b', "bind", 1, O_BIND },
    { 'u', "unix", 1, O_UNIX },
    { 0, "tls", 1, O_TLS },
    { 0, "tls-cert", 1, O_CERT },
    { 0, "tls-key", 1, O_KEY },
    { 0, "tls-ca", 1, O_CA },
    { 0, "tls-psk", 1, O_PSK },
    { 0, "threads", 1, O_THREADS },
    { 0, "max-connections", 1, O_MAXCONN },
    { 0, "daemon", 0, O_DAEMON },
    { 0, "pid-file", 1, O_PIDFILE },
    { 'v', "verbose", 0, O_VERBOSE },
    { 'q', "quiet", 0, O_QUIET },
    { 0, NULL, 0, 0 },
};

static struct nbd_server *the_server;
static int use_syslog;

static void on_signal(int sig)
{
    (void)sig;
    if (the_server)
        nbd_server_stop(the_server);
}

static void log_line(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (use_syslog) {
        int pri = level == NBD_LOG_ERR ? LOG_ERR : level == NBD_LOG_WARN ? LOG_WARNING
                : level == NBD_LOG_INFO ? LOG_INFO : LOG_DEBUG;
        syslog(pri, "%s", msg);
        return;
    }
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%H:%M:%S", localtime_r(&now, &tm));
    fprintf(stderr, "vddk serve: %s %s%s\n", ts,
            level == NBD_LOG_ERR ? "error: " : level == NBD_LOG_WARN ? "warning: " : "", msg);
}

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(int level, const char *fmt, ...)
{
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    log_line(NULL, level, m);
}

/* Fork into the background; the parent exits once the child is ready
 * (pid file written) so the caller can connect right away. */
static int daemonize(const char *pid_file)
{
    int p[2];
    if (pipe(p) < 0)
        return vddk_fail("serve: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return vddk_fail("serve: fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        char b = 0;
        ssize_t n;
        do
            n = read(p[0], &b, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 && b == 'R' ? VDDK_EXIT_OK : VDDK_EXIT_FAIL);
    }
    close(p[0]);
    setsid();
    if (pid_file) {
        FILE *f = fopen(pid_file, "we");
        if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, "vddk: serve: cannot write pid file %s: %s\n", pid_file,
                    strerror(errno));
            _exit(VDDK_EXIT_FAIL);
        }
    }
    if (chdir("/") < 0) {
        /* not fatal: every path in use is absolute by now */
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    openlog("vddk-serve", LOG_PID, LOG_DAEMON);
    use_syslog = 1;
    char r = 'R';
    ssize_t w = write(p[1], &r, 1);
    (void)w;
    close(p[1]);
    return 0;
}

static int run_serve(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_serve;
    struct vddk_optstate st;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    struct nbd_datastores *ds = NULL;
    if (nbd_ds_new(&ds) < 0) {
        vddk_opt_free(&st);
        return vddk_fail("out of memory");
    }
    int single = 0, readonly = 0, daemon_mode = 0, level = NBD_LOG_INFO, tls_set = 0;
    int port_set = 0;
    enum net_tls_mode tls = NET_TLS_OFF;
    uint64_t port = NBD_DEFAULT_PORT, threads = 4, maxconn = 256;
    const char *bind_addr = NULL, *unix_path = NULL, *cert = NULL, *key = NULL, *ca = NULL;
    const char *psk = NULL, *pid_file = NULL;
    int rc = VDDK_EXIT_OK, opt;
    while (rc == VDDK_EXIT_OK && (opt = vddk_getopt(&st, serve_opts, cmd)) != VDDK_OPT_END) {
        switch (opt) {
        case VDDK_OPT_HELP: rc = -1; break;
        case VDDK_OPT_ERROR: rc = VDDK_EXIT_USAGE; break;
        case O_DATASTORE:
            vd_err_clear();
            if (nbd_ds_add(ds, st.arg) < 0)
                rc = vddk_usage_error(cmd, "%s", vd_err_msg());
            break;
        case O_SINGLE: single = 1; break;
        case O_READONLY: readonly = 1; break;
        case O_PORT:
            if (vddk_parse_uint(st.arg, 65535, &port) < 0)
                rc = vddk_usage_error(cmd, "bad port '%s'", st.arg);
            port_set = 1;
            break;
        case O_BIND: bind_addr = st.arg; port_set = 1; break;
        case O_UNIX: unix_path = st.arg; break;
        case O_TLS:
            tls_set = 1;
            if (strcmp(st.arg, "off") == 0)
                tls = NET_TLS_OFF;
            else if (strcmp(st.arg, "on") == 0)
                tls = NET_TLS_ON;
            else if (strcmp(st.arg, "require") == 0)
                tls = NET_TLS_REQUIRE;
            else
                rc = vddk_usage_error(cmd, "--tls is off, on or require, not '%s'", st.arg);
            break;
        case O_CERT: cert = st.arg; break;
        case O_KEY: key = st.arg; break;
        case O_CA: ca = st.arg; break;
        case O_PSK: psk = st.arg; break;
        case O_THREADS:
            if (vddk_parse_uint(st.arg, 64, &threads) < 0 || threads == 0)
                rc = vddk_usage_error(cmd, "--threads is 1..64, not '%s'", st.arg);
            break;
        case O_MAXCONN:
            if (vddk_parse_uint(st.arg, 100000, &maxconn) < 0 || maxconn == 0)
                rc = vddk_usage_error(cmd, "bad --max-connections '%s'", st.arg);
            break;
        case O_DAEMON: daemon_mode = 1; break;
        case O_PIDFILE: pid_file = st.arg; break;
        case O_VERBOSE: level = NBD_LOG_DEBUG; break;
        case O_QUIET: level = NBD_LOG_WARN; break;
        }
    }
    if (rc == -1) {
        rc = vddk_print_help(cmd, stdout);
        goto out;
    }
    if (rc != VDDK_EXIT_OK)
        goto out;
    if (st.noperands) {
        rc = vddk_usage_error(cmd, "unexpected argument '%s'", st.operands[0]);
        goto out;
    }
    if (nbd_ds_count(ds) == 0) {
        rc = vddk_usage_error(cmd, "at least one --datastore NAME=DIR is needed");
        goto out;
    }
    int creds = cert || key || ca || psk;
    if (creds && !tls_set)
        tls = NET_TLS_REQUIRE;
    if (tls != NET_TLS_OFF && !psk && !(cert && key)) {
        rc = vddk_usage_error(cmd, "--tls=%s needs --tls-cert and --tls-key, or --tls-psk",
                              tls == NET_TLS_ON ? "on" : "require");
        goto out;
    }
    if (psk && (cert || key || ca)) {
        rc = vddk_usage_error(cmd, "use either X.509 (--tls-cert/--tls-key) or --tls-psk");
        goto out;
    }
    if ((cert && !key) || (key && !cert)) {
        rc = vddk_usage_error(cmd, "--tls-cert and --tls-key go together");
        goto out;
    }
    if (tls == NET_TLS_OFF && creds) {
        rc = vddk_usage_error(cmd, "TLS credentials given with --tls=off");
        goto out;
    }
    if (pid_file && !daemon_mode) {
        /* allowed: a pid file for a foreground server is written below */
    }
    nbd_ds_set_mode(ds, single, readonly);

    struct net_tls_server *tlsc = NULL;
    if (tls != NET_TLS_OFF) {
        vd_err_clear();
        if (net_tls_server_new(cert, key, ca, psk, &tlsc) < 0) {
            rc = vddk_fail("serve: %s", vd_err_msg());
            goto out;
        }
    }
    struct nbd_server_config cfg = { 0 };
    nbd_ds_backend(ds, &cfg.backend);
    cfg.tls_mode = tls;
    cfg.tls = tlsc;
    cfg.readonly = readonly || single;
    cfg.workers = (unsigned)threads;
    cfg.max_conns = (unsigned)maxconn;
    cfg.log_level = level;
    cfg.log = log_line;
    struct nbd_server *srv = NULL;
    vd_err_clear();
    if (nbd_server_new(&cfg, &srv) < 0) {
        net_tls_server_free(tlsc);
        rc = vddk_fail("serve: %s", vd_err_msg());
        goto out;
    }
    /* Listening sockets first: errors are reported before going to the
     * background, and "listening on" names the port really bound. */
    int listening = 0;
    if (unix_path) {
        vd_err_clear();
        int fd = net_listen_unix(unix_path);
        if (fd < 0) {
            rc = vddk_fail("serve: %s", vd_err_msg());
            goto free_srv;
        }
        nbd_server_add_listener(srv, fd);
        say(NBD_LOG_INFO, "listening on unix:%s", unix_path);
        listening++;
    }
    if (!unix_path || port_set) {
        int fds[8];
        unsigned bound = 0;
        vd_err_clear();
        int n = net_listen_tcp(bind_addr, (unsigned)port, fds, 8, &bound);
        if (n < 0) {
            rc = vddk_fail("serve: %s", vd_err_msg());
            goto free_srv;
        }
        for (int i = 0; i < n; i++)
            nbd_server_add_listener(srv, fds[i]);
        say(NBD_LOG_INFO, "listening on %s%s%s:%u", bind_addr && strchr(bind_addr, ':') ? "[" : "",
            bind_addr ? bind_addr : "*", bind_addr && strchr(bind_addr, ':') ? "]" : "", bound);
        listening++;
    }
    for (int i = 0; i < nbd_ds_count(ds); i++)
        say(NBD_LOG_INFO, "datastore [%s] = %s%s", nbd_ds_name(ds, i), nbd_ds_dir(ds, i),
            single ? " (single links, read-only)" : readonly ? " (read-only)" : "");
    say(NBD_LOG_INFO, "TLS %s%s%s", tls == NET_TLS_OFF ? "off" : tls == NET_TLS_ON ? "on"
        : "required", tlsc ? " with " : "", tlsc ? net_tls_server_kind(tlsc) : "");
    fflush(stderr);
    if (daemon_mode) {
        if (daemonize(pid_file) != 0) {
            rc = VDDK_EXIT_FAIL;
            goto free_srv;
        }
    } else if (pid_file) {
        FILE *f = fopen(pid_file, "we");
        if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
            rc = vddk_fail("serve: cannot write pid file %s: %s", pid_file, strerror(errno));
            goto free_srv;
        }
    }
    the_server = srv;
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    nbd_server_run(srv);
    say(NBD_LOG_INFO, "stopped: every open disk was flushed and closed");
    the_server = NULL;
    if (pid_file)
        unlink(pid_file);
    if (unix_path)
        unlink(unix_path);
free_srv:
    (void)listening;
    nbd_server_free(srv);
    net_tls_server_free(tlsc);
out:
    nbd_ds_free(ds);
    vddk_opt_free(&st);
    return rc;
}
