/* serve_sys.h - `vddk serve` as a system service.
 *
 * Listening sockets handed over by systemd (socket activation: the
 * LISTEN_PID / LISTEN_FDS protocol, file descriptors from 3 on), state
 * messages to the service manager (NOTIFY_SOCKET datagrams: READY=1,
 * RELOADING=1, STOPPING=1), the config file (`--config FILE`: lines of
 * "key = value", keys named as the long options), and a set of datastores
 * that a reload can replace while connections are using it.  None of it
 * needs libsystemd: the protocols are small and stable, and written here
 * from their documentation. */
#ifndef VDDK_SERVE_SYS_H
#define VDDK_SERVE_SYS_H

#include <stddef.h>

#include "net/nbd_datastore.h"
#include "net/nbd_server.h"

/* The first socket a service manager passes. */
#define SERVE_LISTEN_FDS_START 3

/* Sockets passed to this process: the count (0 when LISTEN_PID does not
 * name this process or LISTEN_FDS is unset), or -1 with the reason in err.
 * The variables are removed from the environment and the descriptors get
 * FD_CLOEXEC. */
int serve_listen_fds(char *err, size_t errlen);
/* fd must be a listening stream socket; it is made non-blocking and its
 * address written to desc ("127.0.0.1:10809", "[::]:10809",
 * "unix:/run/openvddk.sock").  Returns 0, or -1 with the reason in desc. */
int serve_check_listener(int fd, char *desc, size_t desclen);

/* Send "READY=1" and the like to $NOTIFY_SOCKET ("/path" or "@abstract").
 * Returns 1 when sent, 0 when there is no NOTIFY_SOCKET, -1 on error
 * (errno set). */
int serve_notify(const char *state);
/* "RELOADING=1" with the MONOTONIC_USEC of now, as systemd expects. */
int serve_notify_reloading(void);

/* Is stderr the journal's stream (JOURNAL_STREAM names its device and
 * inode)?  Then log lines carry "<N>" priority prefixes, no time. */
int serve_stderr_is_journal(void);

/* Read a config file: "key = value" lines, '#' comments, blank lines.
 * set() is called for each setting in order and returns 0, or -1 with a
 * message in err; the message returned here then reads "FILE:LINE:
 * message".  Returns 0 or -1. */
int serve_conf_read(const char *path,
                    int (*set)(void *ctx, const char *key, const char *value, char *err,
                               size_t errlen),
                    void *ctx, char *err, size_t errlen);
/* yes/no, true/false, on/off, 1/0: 1 or 0, or -1 for anything else. */
int serve_conf_bool(const char *value);

/* Datastores behind a switch: every lookup of the server (resolve, open,
 * describe, list) uses the set current when it starts; replacing the set
 * frees the previous one once the last lookup using it has returned.
 * Open disks do not depend on the set, so connections keep working. */
struct serve_dsw;

int serve_dsw_new(struct nbd_datastores *ds, struct serve_dsw **out);   /* owns ds */
void serve_dsw_set(struct serve_dsw *w, struct nbd_datastores *ds);     /* owns ds */
void serve_dsw_backend(struct serve_dsw *w, struct nbd_backend *b);
void serve_dsw_free(struct serve_dsw *w);

#endif
