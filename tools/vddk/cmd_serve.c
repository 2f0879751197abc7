/* cmd_serve.c - `vddk serve`: export VMDK disks over NBD. */
#include "vddk.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "serve_sys.h"

static int run_serve(int argc, char **argv);

const struct vddk_cmd vddk_cmd_serve = {
    .name = "serve",
    .summary = "export disks over NBD (for remote VixDiskLib clients and NBD tools)",
    .help =
        "usage: vddk serve --datastore NAME=DIR [--datastore NAME=DIR...] [OPTIONS]\n"
        "       vddk serve --config FILE [OPTIONS]\n"
        "\n"
        "Serve the VMDK disks under each DIR over the NBD protocol.  A client\n"
        "names a disk as VixDiskLib does, \"[NAME] vm/disk.vmdk\" (or, convenient\n"
        "in nbd:// URIs, \"NAME/vm/disk.vmdk\").  Names that resolve outside every\n"
        "DIR, through \"..\" or symbolic links, are refused, and so is a disk\n"
        "whose chain uses a file outside the datastores (no such file is ever\n"
        "opened); a client gets the same reply as for a missing disk, the log\n"
        "says why.  Every connection to one disk shares one open chain (clients\n"
        "may use several connections); a disk is closed, flushed, when its last\n"
        "client leaves.\n"
        "\n"
        "Options:\n"
        "  --config FILE         read settings from FILE, lines of \"key = value\"\n"
        "                        where the keys are the long options below (flags\n"
        "                        take yes or no); re-read on SIGHUP\n"
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
        "closed before it exits.  SIGHUP reloads: the command line and the config\n"
        "file are read again, and new connections get the new datastores and TLS\n"
        "credentials; open connections are kept.\n"
        "\n"
        "Under systemd, sockets passed by a socket unit (LISTEN_FDS) are used\n"
        "instead of --port, --bind and --unix, readiness and reloads are reported\n"
        "to NOTIFY_SOCKET (Type=notify), and log lines go to the journal.\n",
    .run = run_serve,
};

enum {
    O_DATASTORE = 1, O_SINGLE, O_READONLY, O_PORT, O_BIND, O_UNIX, O_TLS, O_CERT, O_KEY, O_CA,
    O_PSK, O_THREADS, O_MAXCONN, O_DAEMON, O_PIDFILE, O_VERBOSE, O_QUIET, O_CONFIG,
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
    { 0, "config", 1, O_CONFIG },
    { 0, NULL, 0, 0 },
};

static struct nbd_server *the_server;
static int use_syslog;
static int use_journal;   /* stderr is the journal: "<N>" priorities, no time */

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
    if (use_journal) {
        fprintf(stderr, "<%d>%s\n", level == NBD_LOG_ERR ? 3 : level == NBD_LOG_WARN ? 4
                : level == NBD_LOG_INFO ? 6 : 7, msg);
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

/* ---- settings: the command line and the config file ------------------------------ */

/* Everything the options set.  `--config FILE` applies the file's settings
 * where it stands on the command line; a reload (SIGHUP) parses the same
 * command line again, so the file is read again. */
struct serve_set {
    struct nbd_datastores *ds;
    int single, readonly, daemon_mode, level, tls_set, port_set;
    enum net_tls_mode tls;
    uint64_t port, threads, maxconn;
    char *bind_addr, *unix_path, *cert, *key, *ca, *psk, *pid_file, *config;
    int reloading;          /* errors are logged: the server keeps running */
};

static void serve_set_free(struct serve_set *s)
{
    nbd_ds_free(s->ds);
    s->ds = NULL;
    char **strs[] = { &s->bind_addr, &s->unix_path, &s->cert, &s->key, &s->ca, &s->psk,
                      &s->pid_file, &s->config };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}

static int set_str(char **dst, const char *v, char *err, size_t errlen)
{
    char *c = strdup(v);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(*dst);
    *dst = c;
    return 0;
}

/* One option, from the command line (flags: arg NULL) or the config file
 * (flags: "1" or "0").  Returns 0, or -1 with the reason in err. */
static int serve_apply(struct serve_set *s, int opt, const char *arg, char *err, size_t errlen)
{
    int on = !arg || strcmp(arg, "0") != 0;
    switch (opt) {
    case O_DATASTORE:
        vd_err_clear();
        if (nbd_ds_add(s->ds, arg) < 0) {
            snprintf(err, errlen, "%s", vd_err_msg());
            return -1;
        }
        return 0;
    case O_SINGLE: s->single = on; return 0;
    case O_READONLY: s->readonly = on; return 0;
    case O_PORT:
        s->port_set = 1;
        if (vddk_parse_uint(arg, 65535, &s->port) < 0) {
            snprintf(err, errlen, "bad port '%s'", arg);
            return -1;
        }
        return 0;
    case O_BIND: s->port_set = 1; return set_str(&s->bind_addr, arg, err, errlen);
    case O_UNIX: return set_str(&s->unix_path, arg, err, errlen);
    case O_TLS:
        s->tls_set = 1;
        if (strcmp(arg, "off") == 0)
            s->tls = NET_TLS_OFF;
        else if (strcmp(arg, "on") == 0)
            s->tls = NET_TLS_ON;
        else if (strcmp(arg, "require") == 0)
            s->tls = NET_TLS_REQUIRE;
        else {
            snprintf(err, errlen, "--tls is off, on or require, not '%s'", arg);
            return -1;
        }
        return 0;
    case O_CERT: return set_str(&s->cert, arg, err, errlen);
    case O_KEY: return set_str(&s->key, arg, err, errlen);
    case O_CA: return set_str(&s->ca, arg, err, errlen);
    case O_PSK: return set_str(&s->psk, arg, err, errlen);
    case O_THREADS:
        if (vddk_parse_uint(arg, 64, &s->threads) < 0 || s->threads == 0) {
            snprintf(err, errlen, "--threads is 1..64, not '%s'", arg);
            return -1;
        }
        return 0;
    case O_MAXCONN:
        if (vddk_parse_uint(arg, 100000, &s->maxconn) < 0 || s->maxconn == 0) {
            snprintf(err, errlen, "bad --max-connections '%s'", arg);
            return -1;
        }
        return 0;
    case O_DAEMON: s->daemon_mode = on; return 0;
    case O_PIDFILE: return set_str(&s->pid_file, arg, err, errlen);
    case O_VERBOSE: s->level = on ? NBD_LOG_DEBUG : NBD_LOG_INFO; return 0;
    case O_QUIET: s->level = on ? NBD_LOG_WARN : NBD_LOG_INFO; return 0;
    }
    snprintf(err, errlen, "unknown option");
    return -1;
}

/* A "key = value" line of the config file: the keys are the long options,
 * flags take yes or no; not config (no nesting) nor daemon. */
static int conf_setting(void *ctx, const char *key, const char *value, char *err,
                        size_t errlen)
{
    const struct vddk_opt *o = serve_opts;
    while (o->id && strcmp(o->long_name, key) != 0)
        o++;
    if (!o->id || o->id == O_CONFIG || o->id == O_DAEMON) {
        snprintf(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    if (!o->has_arg) {
        int b = serve_conf_bool(value);
        if (b < 0) {
            snprintf(err, errlen, "%s takes yes or no, not '%s'", key, value);
            return -1;
        }
        return serve_apply(ctx, o->id, b ? "1" : "0", err, errlen);
    }
    if (!*value) {
        snprintf(err, errlen, "%s needs a value", key);
        return -1;
    }
    return serve_apply(ctx, o->id, value, err, errlen);
}

/* Report an error: a usage error or a failure at start, a log line on a
 * reload.  Returns the exit status. */
static int serve_error(const struct serve_set *s, int usage, const char *msg)
{
    if (s->reloading) {
        say(NBD_LOG_ERR, "reload: %s; the configuration in force is kept", msg);
        return VDDK_EXIT_FAIL;
    }
    return usage ? vddk_usage_error(&vddk_cmd_serve, "%s", msg) : vddk_fail("serve: %s", msg);
}

/* Parse the command line (and the config files it names) into s, which
 * serve_set_free releases whatever the result.  Returns VDDK_EXIT_OK, -1
 * for --help, or an exit status after reporting the error. */
static int serve_parse(int argc, char **argv, int reloading, struct serve_set *s)
{
    const struct vddk_cmd *cmd = &vddk_cmd_serve;
    memset(s, 0, sizeof *s);
    s->reloading = reloading;
    s->level = NBD_LOG_INFO;
    s->port = NBD_DEFAULT_PORT;
    s->threads = 4;
    s->maxconn = 256;
    struct vddk_optstate st;
    if (vddk_opt_init(&st, argc, argv) < 0)
        return VDDK_EXIT_FAIL;
    if (nbd_ds_new(&s->ds) < 0) {
        vddk_opt_free(&st);
        return serve_error(s, 0, "out of memory");
    }
    char err[1024];
    int rc = VDDK_EXIT_OK, opt;
    while (rc == VDDK_EXIT_OK && (opt = vddk_getopt(&st, serve_opts, cmd)) != VDDK_OPT_END) {
        err[0] = '\0';
        if (opt == VDDK_OPT_HELP)
            rc = -1;
        else if (opt == VDDK_OPT_ERROR)
            rc = VDDK_EXIT_USAGE;
        else if (opt == O_CONFIG) {
            if (set_str(&s->config, st.arg, err, sizeof err) < 0 ||
                serve_conf_read(st.arg, conf_setting, s, err, sizeof err) < 0)
                rc = serve_error(s, 0, err);
        } else if (serve_apply(s, opt, st.arg, err, sizeof err) < 0)
            rc = serve_error(s, 1, err);
    }
    if (rc == VDDK_EXIT_OK && st.noperands) {
        snprintf(err, sizeof err, "unexpected argument '%s'", st.operands[0]);
        rc = serve_error(s, 1, err);
    }
    vddk_opt_free(&st);
    if (rc != VDDK_EXIT_OK)
        return rc;
    const char *bad = NULL;
    int creds = s->cert || s->key || s->ca || s->psk;
    if (creds && !s->tls_set)
        s->tls = NET_TLS_REQUIRE;
    if (nbd_ds_count(s->ds) == 0)
        bad = "at least one --datastore NAME=DIR is needed";
    else if (s->tls != NET_TLS_OFF && !s->psk && !(s->cert && s->key))
        bad = s->tls == NET_TLS_ON ? "--tls=on needs --tls-cert and --tls-key, or --tls-psk"
                                   : "--tls=require needs --tls-cert and --tls-key, or --tls-psk";
    else if (s->psk && (s->cert || s->key || s->ca))
        bad = "use either X.509 (--tls-cert/--tls-key) or --tls-psk";
    else if ((s->cert && !s->key) || (s->key && !s->cert))
        bad = "--tls-cert and --tls-key go together";
    else if (s->tls == NET_TLS_OFF && creds)
        bad = "TLS credentials given with --tls=off";
    return bad ? serve_error(s, 1, bad) : VDDK_EXIT_OK;
}

/* ---- reload (SIGHUP) ------------------------------------------------------------ */

/* SIGHUP is blocked in every thread and taken by this one with sigwait:
 * the command line is parsed again (re-reading the config file and the TLS
 * files), and the datastores and TLS credentials are replaced for the
 * connections that come next.  Connections already open keep their disks
 * and their TLS session.  Settings of the process itself (addresses,
 * threads, limits, modes, logging) take effect at the next start. */
struct reloader {
    int argc;
    char **argv;
    const struct serve_set *start;   /* settings the server started with */
    struct nbd_server *srv;
    struct serve_dsw *dsw;
    struct net_tls_server *tls;      /* in force */
    struct net_tls_server **retired; /* replaced, freed when the server is done */
    size_t nretired;
    atomic_int quit;
    pthread_t th;
    int running;
};

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void reload(struct reloader *r)
{
    serve_notify_reloading();
    say(NBD_LOG_INFO, "SIGHUP: reloading%s%s", r->start->config ? " " : "",
        r->start->config ? r->start->config : "");
    struct serve_set n;
    struct net_tls_server *tlsc = NULL;
    if (serve_parse(r->argc, r->argv, 1, &n) != VDDK_EXIT_OK)
        goto done;
    if (n.tls != NET_TLS_OFF) {
        vd_err_clear();
        if (net_tls_server_new(n.cert, n.key, n.ca, n.psk, &tlsc) < 0) {
            serve_error(&n, 0, vd_err_msg());
            goto done;
        }
    }
    struct net_tls_server **rv = NULL;
    if (r->tls) {
        rv = realloc(r->retired, (r->nretired + 1) * sizeof *rv);
        if (!rv) {
            net_tls_server_free(tlsc);
            serve_error(&n, 0, "out of memory");
            goto done;
        }
        r->retired = rv;
        r->retired[r->nretired++] = r->tls;
    }
    const struct serve_set *o = r->start;
    const char *fixed = o->port != n.port || o->port_set != n.port_set ? "port"
        : !same_str(o->bind_addr, n.bind_addr) ? "bind"
        : !same_str(o->unix_path, n.unix_path) ? "unix"
        : o->threads != n.threads ? "threads"
        : o->maxconn != n.maxconn ? "max-connections"
        : o->single != n.single ? "single-link"
        : o->readonly != n.readonly ? "readonly"
        : o->level != n.level ? "verbose/quiet"
        : !same_str(o->pid_file, n.pid_file) ? "pid-file" : NULL;
    if (fixed)
        say(NBD_LOG_WARN, "reload: '%s' changed, which takes effect only when the server "
            "starts again", fixed);
    /* Modes stay as started (open disks are shared between connections). */
    nbd_ds_set_mode(n.ds, o->single, o->readonly);
    nbd_ds_set_log(n.ds, log_line, NULL, o->level);
    for (int i = 0; i < nbd_ds_count(n.ds); i++)
        say(NBD_LOG_INFO, "datastore [%s] = %s%s", nbd_ds_name(n.ds, i), nbd_ds_dir(n.ds, i),
            o->single ? " (single links, read-only)" : o->readonly ? " (read-only)" : "");
    say(NBD_LOG_INFO, "TLS %s%s%s", n.tls == NET_TLS_OFF ? "off" : n.tls == NET_TLS_ON ? "on"
        : "required", tlsc ? " with " : "", tlsc ? net_tls_server_kind(tlsc) : "");
    serve_dsw_set(r->dsw, n.ds);
    n.ds = NULL;
    nbd_server_set_tls(r->srv, n.tls, tlsc);
    r->tls = tlsc;
    say(NBD_LOG_INFO, "reloaded: new connections use this configuration");
done:
    serve_set_free(&n);
    fflush(stderr);
    serve_notify("READY=1\nSTATUS=serving");
}

static void *reloader_main(void *arg)
{
    struct reloader *r = arg;
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    for (;;) {
        int sig = 0;
        if (sigwait(&hup, &sig) != 0)
            continue;
        if (atomic_load(&r->quit))
            break;
        reload(r);
    }
    return NULL;
}

/* Block SIGHUP here (so in every thread started from now on) and start
 * the thread that takes it.  Call before the server starts threads. */
static void reloader_start(struct reloader *r)
{
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    atomic_init(&r->quit, 0);
    if (pthread_create(&r->th, NULL, reloader_main, r) == 0) {
        r->running = 1;
    } else {
        say(NBD_LOG_WARN, "cannot start a thread for reloads: SIGHUP is ignored");
        signal(SIGHUP, SIG_IGN);
    }
}

/* After nbd_server_run: end the thread, free the replaced credentials.
 * Returns the credentials in force. */
static struct net_tls_server *reloader_stop(struct reloader *r)
{
    if (r->running) {
        atomic_store(&r->quit, 1);
        pthread_kill(r->th, SIGHUP);
        pthread_join(r->th, NULL);
    }
    for (size_t i = 0; i < r->nretired; i++)
        net_tls_server_free(r->retired[i]);
    free(r->retired);
    return r->tls;
}

static int run_serve(int argc, char **argv)
{
    const struct vddk_cmd *cmd = &vddk_cmd_serve;
    struct serve_set S;
    struct serve_dsw *dsw = NULL;
    use_journal = serve_stderr_is_journal();
    int rc = serve_parse(argc, argv, 0, &S);
    if (rc == -1) {
        rc = vddk_print_help(cmd, stdout);
        goto out;
    }
    if (rc != VDDK_EXIT_OK)
        goto out;
    struct nbd_datastores *ds = S.ds;
    int single = S.single, readonly = S.readonly, daemon_mode = S.daemon_mode, level = S.level;
    int port_set = S.port_set;
    enum net_tls_mode tls = S.tls;
    uint64_t port = S.port, threads = S.threads, maxconn = S.maxconn;
    const char *bind_addr = S.bind_addr, *unix_path = S.unix_path, *cert = S.cert;
    const char *key = S.key, *ca = S.ca, *psk = S.psk, *pid_file = S.pid_file;
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
    S.ds = NULL;     /* the switch owns the datastores from here */
    if (serve_dsw_new(ds, &dsw) < 0) {
        net_tls_server_free(tlsc);
        rc = vddk_fail("serve: %s", vd_err_msg());
        goto out;
    }
    serve_dsw_backend(dsw, &cfg.backend);
    cfg.tls_mode = tls;
    cfg.tls = tlsc;
    cfg.readonly = readonly || single;
    cfg.workers = (unsigned)threads;
    cfg.max_conns = (unsigned)maxconn;
    cfg.log_level = level;
    cfg.log = log_line;
    nbd_ds_set_log(ds, log_line, NULL, level);
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
    char sderr[256];
    int nsd = serve_listen_fds(sderr, sizeof sderr);
    if (nsd < 0) {
        rc = vddk_fail("serve: %s", sderr);
        goto free_srv;
    }
    for (int i = 0; i < nsd; i++) {
        int fd = SERVE_LISTEN_FDS_START + i;
        if (serve_check_listener(fd, sderr, sizeof sderr) < 0) {
            rc = vddk_fail("serve: %s", sderr);
            goto free_srv;
        }
        nbd_server_add_listener(srv, fd);
        say(NBD_LOG_INFO, "listening on %s (socket passed by the service manager)", sderr);
        listening++;
    }
    if (!nsd && unix_path) {
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
    if (!nsd && (!unix_path || port_set)) {
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
    struct reloader rl = { .argc = argc, .argv = argv, .start = &S, .srv = srv, .dsw = dsw,
                           .tls = tlsc };
    reloader_start(&rl);
    if (serve_notify("READY=1\nSTATUS=serving") < 0)
        say(NBD_LOG_WARN, "NOTIFY_SOCKET: %s", strerror(errno));
    nbd_server_run(srv);
    serve_notify("STOPPING=1");
    tlsc = reloader_stop(&rl);
    say(NBD_LOG_INFO, "stopped: every open disk was flushed and closed");
    the_server = NULL;
    if (pid_file)
        unlink(pid_file);
    if (unix_path && !nsd)
        unlink(unix_path);
free_srv:
    (void)listening;
    nbd_server_free(srv);
    net_tls_server_free(tlsc);
out:
    serve_dsw_free(dsw);
    serve_set_free(&S);
    return rc;
}
