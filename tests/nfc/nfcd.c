/* nfcd.c - a strict VMware NFC responder (authd + classic NFC + AIO NFC)
 * serving local VMDK disks, for testing NFC clients (nbd / nbdssl).
 *
 * It implements /work/shared/reference/nfc-protocol.md (sections 2-5)
 * independently of the project's NFC client, and checks every byte the
 * reference pins.  On any deviation (wrong order, unknown type, wrong size,
 * a non-zero must-be-zero field, bad magic, unexpected command, wrong opId)
 * it logs "VIOLATION: <what>" and drops the connection, so that client bugs
 * fail tests instead of being tolerated.
 *
 * Usage:
 *   nfcd --listen HOST:PORT --port-file FILE --cert CERT.pem --key KEY.pem
 *        --tickets DIR [--log FILE] [--fail SPEC]... [--no-shuffle] [--quiet]
 *        [--lib-version N] [--seed N] [--idle-timeout SEC]
 *
 *   --listen       address to bind (port 0: any free port)
 *   --port-file    the bound port is written there (atomically) once listening
 *   --cert/--key   the server certificate, used for TLS #1 and TLS #2
 *   --tickets      directory of ticket files DIR/<sessionId> (single use:
 *                  read and unlinked on SESSION); lines "service S",
 *                  "mode ro|rw", "vm MOREF", "file [ds] rel", "ds NAME DIR",
 *                  "busy [ds] rel"
 *   --log          one line per frame received (<) and sent (>) and per
 *                  event, with markers: "VIOLATION:" (client bug, connection
 *                  dropped), "UNCLEAN:" (client left an AIO session without
 *                  CLOSE_SESSION), "REFUSED:" (unknown/used session, bad
 *                  bufSize), "NOTE:" (a tolerance or choice), "INJECT:"
 *                  (failure injection), "EOF:"/"LOST"/"TIMEOUT"; stderr when
 *                  absent
 *   --quiet        log only violations, notes, injections and connection
 *                  events, not every frame (benchmarks)
 *   --no-shuffle   read replies: fragments in order, one request at a time
 *                  (default: fragments of one request in random order, and
 *                  requests served by 4 workers so that opIds interleave)
 *   --lib-version  NFC lib version (default 11): sent in S51; C43 is required
 *                  when >= 11 and must be absent below; below 11 the banner
 *                  lacks "SHA256 supported" and THUMBPRINT_SHA2 is refused
 *   --seed         seed of the random choices (handles, fragment order,
 *                  fragments sent raw); default: from /dev/urandom (logged)
 *   --idle-timeout seconds without data before a connection is dropped
 *                  (default 600)
 *   --fail SPEC    failure injection, repeatable (counters per connection,
 *                  N is 1-based):
 *                    close-at=accept|tls1|session|banner|proxy|tls2|classic|aio|open
 *                    close-at=read:N     after sending the first fragment of the N-th read
 *                    close-at=write:N    after receiving the first fragment of the N-th write
 *                    error-at=open:CODE  AIO ERROR CODE instead of every OPEN_FILE reply
 *                    error-at=read:N:CODE / error-at=write:N:CODE
 *                    stall-at=read:N     never answer the N-th read
 *                    once                failures apply to the first connection only
 *                  (tls2 with nbd: right after the switch to raw TCP;
 *                  classic: after C43 (if expected) and C33;
 *                  aio/open: after receiving the request, before replying)
 * SIGTERM/SIGINT: stop accepting, drop connections, flush and close disks,
 * exit 0.
 *
 * Checked (everything else is a VIOLATION and a drop):
 *  authd: the client must start TLS (first byte 0x16) after the cleartext
 *   banner; CRLF-terminated ASCII lines in the order SESSION <id>, BANNER
 *   (trailing space), optional THUMBPRINT_SHA2 PlainText (once), PROXY
 *   <ticket service> (nbd) or <service>ssl (nbdssl).  Unknown session
 *   (missing or used ticket): PROXY gets "530 Please login with USER and
 *   PASS" and a close (REFUSED, not a violation).  No TLS data may be
 *   pending after PROXY.  nbd: TLS #1 abandoned without close_notify, raw
 *   TCP; nbdssl: TLS #1 abandoned likewise, fresh TLS #2 (same certificate).
 *  classic: C43 ("PlainText", rest zero), C33 (zero), S36 (1 @16), C51
 *   (version >= 3 @4, rest zero), S51, C54 (name/opId lengths 1..256, rest
 *   zero, printable strings), C55 (3 @4, rest zero), C52 (zero), S52.
 *  AIO: magic, known type, exact size per type, opId = previous + 1 (all
 *   fragments of one write share one), prologue OPEN_SESSION, SET_SOCK_OPTS,
 *   SET_RES_POOL in that order, every pinned byte of every request, handles
 *   (unknown or closed handle), ranges, write fragment order and coverage,
 *   strict decoding of encoded write fragments, classic type 4 after
 *   CLOSE_SESSION, then the client must close.
 *
 * Choices where the reference is uncertain (section 7) or silent:
 *  - AIO ERROR frame: header(1, 16, opId of the failing request) + u32 code
 *    @0 + 12 zero bytes.  Codes are VIX error numbers: 3 invalid argument
 *    (bufSize, QUERY_ALLOCATED_BLOCKS parameters), 4 file not found, 7 file
 *    error (engine I/O), 11 read-only (RW open on a ro ticket, write on a RO
 *    handle), 13 access error (path not in the ticket, busy file, locked).
 *  - Classic-phase violations send classic NFC_ERROR (type 20, @4 the
 *    offending type, @8 code 1, @12 length, text + NUL) before closing.
 *  - S36 carries u32 1 @16, nothing else; S51 carries our version only.
 *  - Pipelined classic frames (C51 before S36 arrives, ...) are tolerated
 *    (frames are read in order; timing is not checked).
 *  - Classic type 4 after CLOSE_SESSION: no answer; the client must then
 *    close (a missing type 4 or data after it is a violation).
 *  - Replies: SET_RES_POOL echoes u32 1; CLOSE_FILE echoes the handle;
 *    CLOSE_SESSION u32 0; write ACK @0 = 0, @36 = 0; QUERY_ALLOCATED_BLOCKS
 *    reply all zero except the count @32; OPEN_FILE reply bytes 0-7, 24-27
 *    and 52-59 zero, @20 echoes the request flags, handles random 32-bit
 *    values (>= 0x10000) in a u64.
 *  - OPEN_SESSION: bufSize 0 means 64 KiB; all-zero payload (old clients)
 *    accepted as 64 KiB x 1; bufSize not a multiple of 64 KiB or > 2 MiB ->
 *    ERROR 3 and close; bufCount 0 with bufSize != 0 is a violation;
 *    bufCount is not enforced (in-flight requests are not limited).
 *  - SET_SOCK_OPTS reply: snd 1675000, rcv 1675000, 1.
 *  - Unknown types (6, 8, 10 GET_FILE_INFO, 12, 14-21, >= 23...) and the
 *    classic FSSRVR types are violations.
 *  - OPEN_FILE: only file type 2, only flags 0x1E (RO) and 0x1A (RW).
 *  - Read requests are served concurrently and out of order; some fragments
 *    are sent raw (codec 0) at random even when a codec was asked.  A read
 *    that fails in the engine gets an ERROR 7 (possibly after some fragments).
 *    Unaligned (non-512) offsets/lengths are accepted with a NOTE.
 *  - Writes: fragments of one write must arrive back to back (no other frame
 *    in between), at offsets 0, bufSize, 2 bufSize..., each bufSize long
 *    except the last, @16/@24/handle equal in all fragments; each fragment is
 *    written when received; ONE ACK after the last one is written.  A write
 *    refused (RO handle, error-at) is read to its end, then ONE ERROR frame
 *    replaces the ACK.  An encoded fragment not smaller than raw is a NOTE.
 *  - DDB_GET: keys are printable ASCII without '=', '"' or a "ddb." prefix
 *    (the engine adds it); absent key -> valueLen 0.
 *  - QUERY_ALLOCATED_BLOCKS: chunk a power of two >= 65536 (<= 2^40); start
 *    aligned; 1 <= count <= 524288; start < capacity; only the chunk holding
 *    the end of the disk may run past it; else ERROR 3 (not a drop).  Must-be-
 *    zero fields and handles are violations.  Allocated = any VMDK_DATA byte
 *    in the chain (zeroed grains and holes are not allocated).
 *  - CLOSE_FILE waits for the handle's in-flight reads; CLOSE_SESSION with
 *    files still open is a violation.
 *  - A client closing between frames during the AIO session (before
 *    CLOSE_SESSION) is logged as "UNCLEAN:" (not a violation: clients that
 *    give up on purpose do it; tests of clean runs should check for it);
 *    closing during authd/classic is logged as "EOF:"; closing in the middle
 *    of a frame is a violation.  Data readable after PROXY before our 200
 *    reply (pipelining, a TLS #1 close_notify) is a violation.
 *  - BANNER is required (VDDK 8 sends it); THUMBPRINT_SHA2 is optional and
 *    answered with the upper-case colon SHA-256 of our certificate; another
 *    argument gets "501 Invalid arguments" and is a violation.
 *  - Wrong PROXY service: "530 Please login with USER and PASS", violation.
 *  - Other authd commands (USER, PASS, SESSIONID...): 530, violation.
 *  - AIO-phase violations send nothing (no ERROR frame): the socket is
 *    closed.  Any close by nfcd (violation, injection, SIGTERM) flushes and
 *    closes the connection's disks before the client sees the FIN, so a
 *    client that reconnects at once finds them unlocked.
 *  - DDB_GET values come from the descriptor chain as they are, including
 *    geometry.cylinders/heads/sectors (the reference lists them among keys
 *    ESXi answered "absent" for; clients must take physGeo from OPEN_FILE).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "net/net_io.h"
#include "net/net_tls.h"
#include "nfc/nfc_codec.h"
#include "util/err.h"
#include "util/vdisk.h"
#include "vmdk/vmdk.h"

/* ---- protocol constants ------------------------------------------------ */

#define CLASSIC_LEN 264
#define AIO_MAGIC 0xA100DA7Au
#define KIB64 65536u
#define MAX_BUF (2u << 20)
#define MAX_QAB_CHUNKS 524288u

enum {
    C_SESSION_COMPLETE = 4,
    C_ERROR = 20,
    C_PARAMS = 33,
    C_PARAMS_REPLY = 36,
    C_HANDSHAKE = 43,
    C_VERSION = 51,
    C_AIO_OPEN = 52,
    C_CONN_DATA = 54,
    C_FEATURES = 55,
};

enum {
    A_ERROR = 1,
    A_OPEN_SESSION = 2,
    A_CLOSE_SESSION = 3,
    A_OPEN_FILE = 4,
    A_CLOSE_FILE = 5,
    A_IO = 7,
    A_SET_SOCK_OPTS = 9,
    A_DDB_GET = 11,
    A_QAB = 13,
    A_SET_RES_POOL = 22,
};

/* VIX error numbers used in AIO ERROR frames. */
enum {
    E_FAIL = 1,
    E_INVALID_ARG = 3,
    E_FILE_NOT_FOUND = 4,
    E_FILE_ERROR = 7,
    E_READ_ONLY = 11,
    E_ACCESS = 13,
};

static const char BANNER_11[] =
    "220 VMware Authentication Daemon Version 1.10: SSL Required, "
    "ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported, "
    "NFCSSL supported/t, SHA256 supported\r\n";
static const char BANNER_OLD[] =
    "220 VMware Authentication Daemon Version 1.10: SSL Required, "
    "ServerDaemonProtocol:SOAP, MKSDisplayProtocol:VNC , VMXARGS supported, "
    "NFCSSL supported/t\r\n";
static const char LOGIN_530[] = "530 Please login with USER and PASS\r\n";

/* ---- options ------------------------------------------------------------ */

enum fail_kind { F_CLOSE, F_ERROR, F_STALL };
enum fail_step {
    S_ACCEPT, S_TLS1, S_SESSION, S_BANNER, S_PROXY, S_TLS2, S_CLASSIC, S_AIO, S_OPEN,
    S_READ, S_WRITE,
};
static const char *const step_names[] = {
    "accept", "tls1", "session", "banner", "proxy", "tls2", "classic", "aio", "open",
    "read", "write",
};

struct fail_rule {
    int kind, step;
    unsigned n;         /* 0: any */
    uint32_t code;
};

static struct {
    const char *listen, *port_file, *cert, *key, *tickets, *log;
    int no_shuffle;
    unsigned lib_version;
    uint64_t seed;
    int seed_set;
    int idle_ms;
    struct fail_rule rules[64];
    int nrules;
    int once;
} opt = { .lib_version = 11, .idle_ms = 600000 };

static FILE *g_log;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t t0_ms;
static struct net_tls_server *tls_srv;
static char cert_sha256[100];
static int stop_pipe[2] = { -1, -1 };

/* ---- small helpers ------------------------------------------------------ */

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* First non-zero byte in [from, to), or -1. */
static int nonzero_at(const unsigned char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (p[i])
            return (int)i;
    return -1;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int valid_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        uint32_t cp;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (k >= n - i)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* Printable copy of bytes for the log (non-printables as \xNN). */
static void printable(const unsigned char *p, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", p[i]);
    }
    if (n && o + 5 >= outlen && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* ---- tickets ------------------------------------------------------------ */

struct ticket {
    char service[64];
    int rw;
    char vm[64];
    char **files;
    size_t nfiles;
    char **busy;
    size_t nbusy;
    char **ds_name, **ds_dir;
    size_t nds;
};

static void ticket_free(struct ticket *t)
{
    for (size_t i = 0; i < t->nfiles; i++)
        free(t->files[i]);
    for (size_t i = 0; i < t->nbusy; i++)
        free(t->busy[i]);
    for (size_t i = 0; i < t->nds; i++) {
        free(t->ds_name[i]);
        free(t->ds_dir[i]);
    }
    free(t->files);
    free(t->busy);
    free(t->ds_name);
    free(t->ds_dir);
    memset(t, 0, sizeof *t);
}

static int strv_add(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

/* ---- connections -------------------------------------------------------- */

struct handle {
    struct handle *next;
    uint64_t id;
    struct vdisk *d;
    int rw;
    uint32_t flags;
    uint64_t cap;
    int inflight;              /* read jobs queued or running */
    char *path;
};

struct job {
    struct job *next;
    struct handle *h;
    uint32_t op;
    uint64_t off;
    uint32_t len;
    int codec;
    unsigned nread;            /* 1-based read number on the connection */
    int close_after_first;
};

/* A frame on its way out (see snd_out). */
struct out {
    struct out *next;
    const void *a, *b;         /* header (+ payload), then the extra bytes */
    size_t alen, blen;
    void *own;                 /* sent frames free it (and this); NULL: the caller waits */
    const char *line;          /* log line, also names the frame when sending fails */
    atomic_int state;          /* waited frames: 0 queued, 1 sent, -1 not sent */
    unsigned char head[16 + 64];
    char linebuf[];
};

struct conn {
    struct conn *next;         /* global list (g_mu) */
    int id;
    struct net_stream s;
    int ssl;
    int phase;                 /* 0 authd, 1 classic, 2 AIO, 3 after CLOSE_SESSION */
    int faults;                /* failure injection applies */
    atomic_int dead;
    pthread_mutex_t send_lock; /* the output queue */
    pthread_cond_t sent;       /* a waited frame went out (or will not) */
    struct out *oq_head, *oq_tail;
    int sending;               /* a thread is sending the queue */
    pthread_mutex_t mu;        /* handles' inflight, job queue, rng */
    pthread_cond_t cv;         /* a handle went idle, a worker left (mu) */
    pthread_cond_t jobs;       /* a job was queued, workers stop (mu) */
    uint64_t rng;
    /* authd */
    int have_ticket;
    struct ticket t;
    char session[160];
    /* AIO */
    uint32_t buf_size, buf_count;
    uint32_t next_op;
    unsigned nreads, nwrites;
    struct handle *handles;
    struct job *qhead, *qtail;
    pthread_t workers[4];
    int nworkers;
    int alive;                 /* workers not yet out of worker_main (mu) */
    int stop_workers;
    /* the write being received */
    struct {
        int active;
        uint32_t op;
        struct handle *h;
        uint64_t off;
        uint32_t total, next;
        uint32_t error;        /* non-zero: ERROR code instead of the ACK */
        unsigned nwrite;
    } w;
    unsigned char *raw, *enc;  /* write fragment buffers */
    size_t enc_cap;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static struct conn *g_conns;
static int g_active;
static int g_next_id;

/* ---- logging ------------------------------------------------------------ */

static int g_quiet;

static void vlogm(struct conn *c, const char *fmt, va_list ap)
{
    if (g_quiet && (fmt[0] == '<' || fmt[0] == '>'))
        return;                 /* a frame line: not even formatted */
    if (g_quiet) {
        /* Frame lines start with "<" or ">" (and their fragments); keep
         * everything else. */
        char head[16];
        va_list aq;
        va_copy(aq, ap);
        vsnprintf(head, sizeof head, fmt, aq);
        va_end(aq);
        if (head[0] == '<' || head[0] == '>')
            return;
    }
    pthread_mutex_lock(&log_lock);
    int64_t t = net_now_ms() - t0_ms;
    if (c)
        fprintf(g_log, "%6" PRId64 ".%03d c%d ", t / 1000, (int)(t % 1000), c->id);
    else
        fprintf(g_log, "%6" PRId64 ".%03d -- ", t / 1000, (int)(t % 1000));
    vfprintf(g_log, fmt, ap);
    fputc('\n', g_log);
    fflush(g_log);
    pthread_mutex_unlock(&log_lock);
}

__attribute__((format(printf, 2, 3)))
static void logm(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlogm(c, fmt, ap);
    va_end(ap);
}

/* End the connection: the reader and the workers see dead and stop.  Only
 * the receive side is shut down here (wakes the reader, sends nothing): the
 * client sees the close once the teardown has closed the disks, so a client
 * that reconnects at once finds them unlocked. */
static void kill_conn(struct conn *c)
{
    atomic_store(&c->dead, 1);
    if (c->s.fd >= 0)
        shutdown(c->s.fd, SHUT_RD);
}

/* Log a violation and drop the connection.  Returns -1. */
__attribute__((format(printf, 2, 3)))
static int violation(struct conn *c, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!atomic_load(&c->dead))
        logm(c, "VIOLATION: %s", msg);
    kill_conn(c);
    return -1;
}

/* ---- failure injection -------------------------------------------------- */

static const struct fail_rule *fail_hit(struct conn *c, int kind, int step, unsigned n)
{
    if (!c->faults)
        return NULL;
    for (int i = 0; i < opt.nrules; i++) {
        const struct fail_rule *r = &opt.rules[i];
        if (r->kind == kind && r->step == step && (r->n == 0 || r->n == n))
            return r;
    }
    return NULL;
}

/* close-at=STEP: returns -1 (and drops the connection) when it applies. */
static int inject_close(struct conn *c, int step)
{
    if (!fail_hit(c, F_CLOSE, step, 0))
        return 0;
    logm(c, "INJECT: close-at=%s: closing the connection", step_names[step]);
    kill_conn(c);
    return -1;
}

/* ---- I/O ---------------------------------------------------------------- */

/* Read exactly len bytes.  boundary: a clean EOF here is the client closing
 * between messages (logged, not a violation).  Returns 0 or -1. */
static int rd(struct conn *c, void *buf, size_t len, const char *what, int boundary)
{
    if (atomic_load(&c->dead))
        return -1;
    int r = net_read(&c->s, buf, len);
    if (atomic_load(&c->dead))
        return -1;
    if (r == NET_OK)
        return 0;
    if (r == NET_EOF && boundary && c->phase == 2) {
        int nopen = 0;
        for (struct handle *h = c->handles; h; h = h->next)
            nopen++;
        logm(c, "UNCLEAN: the client closed the connection without CLOSE_SESSION (%d file(s) "
             "open, waiting for %s)", nopen, what);
        kill_conn(c);
        return -1;
    }
    if (r == NET_EOF && boundary) {
        logm(c, "EOF: the client closed the connection (waiting for %s)", what);
        kill_conn(c);
        return -1;
    }
    if (r == NET_EOF)
        return violation(c, "connection closed in the middle of %s", what);
    if (r == NET_TIMEOUT) {
        logm(c, "TIMEOUT waiting for %s: %s", what, vd_err_msg());
        kill_conn(c);
        return -1;
    }
    if (strstr(vd_err_msg(), "middle of a message"))
        return violation(c, "connection closed in the middle of %s", what);
    logm(c, "LOST while reading %s: %s", what, vd_err_msg());
    kill_conn(c);
    return -1;
}

/* Send a batch of queued frames (the caller is the one sender), log them
 * in wire order, settle them: owned frames are freed, waited ones marked
 * (their last use: the waiter may return at once). */
static void send_batch(struct conn *c, struct out *o)
{
    while (o) {
        struct out *batch[32];
        struct iovec iov[64];
        int n = 0, k = 0;
        for (; o && n < 32; o = o->next) {
            batch[n++] = o;
            iov[k++] = (struct iovec){ (void *)o->a, o->alen };
            if (o->blen)
                iov[k++] = (struct iovec){ (void *)o->b, o->blen };
        }
        int ok = !atomic_load(&c->dead);
        if (ok && net_writev(&c->s, iov, k) != NET_OK) {
            logm(c, "LOST while sending (%s%s): %s", batch[0]->line ? batch[0]->line : "a frame",
                 n > 1 ? " and the frames after it" : "", vd_err_msg());
            kill_conn(c);
            ok = 0;
        }
        for (int i = 0; i < n; i++) {
            if (ok && batch[i]->line)
                logm(c, "> %s", batch[i]->line);
            if (batch[i]->own) {
                free(batch[i]->own);
                free(batch[i]);
            } else {
                atomic_store(&batch[i]->state, ok ? 1 : -1);
            }
        }
    }
}

/* Queue a frame; the first thread to find no one sending sends the queue
 * (its own frame and whatever others add meanwhile, several frames a
 * system call), so workers do not wait on each other to send.  The log
 * order is the wire order.  Frames whose memory the caller owns (own
 * NULL) are waited for.  Returns 0, or -1 when the connection is dead (the
 * frame not sent). */
static int snd_out(struct conn *c, struct out *o)
{
    int waited = o->own == NULL;
    o->next = NULL;
    atomic_init(&o->state, 0);
    pthread_mutex_lock(&c->send_lock);
    if (atomic_load(&c->dead)) {
        pthread_mutex_unlock(&c->send_lock);
        if (!waited) {
            free(o->own);
            free(o);
        }
        return -1;
    }
    if (c->oq_tail)
        c->oq_tail->next = o;
    else
        c->oq_head = o;
    c->oq_tail = o;
    if (!c->sending) {
        c->sending = 1;
        while (c->oq_head) {
            struct out *q = c->oq_head;
            c->oq_head = c->oq_tail = NULL;
            pthread_mutex_unlock(&c->send_lock);
            send_batch(c, q);
            pthread_mutex_lock(&c->send_lock);
            pthread_cond_broadcast(&c->sent);
        }
        c->sending = 0;
    }
    int r = 0;
    if (waited) {
        while (atomic_load(&o->state) == 0)
            pthread_cond_wait(&c->sent, &c->send_lock);
        r = atomic_load(&o->state) > 0 ? 0 : -1;
    } else if (atomic_load(&c->dead)) {
        r = -1;
    }
    pthread_mutex_unlock(&c->send_lock);
    return r;
}

/* Send a + b and wait until they are out.  Returns 0 or -1. */
static int snd(struct conn *c, const void *a, size_t alen, const void *b, size_t blen,
               const char *log_line)
{
    struct out o = { .a = a, .alen = alen, .b = b, .blen = blen, .line = log_line };
    return snd_out(c, &o);
}

static int send_line(struct conn *c, const char *line)
{
    char shown[300];
    printable((const unsigned char *)line, strlen(line), shown, sizeof shown);
    return snd(c, line, strlen(line), NULL, 0, shown);
}

/* Read one CRLF-terminated ASCII line (without the CRLF) into out. */
static int read_line(struct conn *c, char *out, size_t outlen, const char *what)
{
    size_t n = 0;
    for (;;) {
        unsigned char ch;
        if (rd(c, &ch, 1, what, n == 0) < 0)
            return -1;
        if (ch == '\r') {
            if (rd(c, &ch, 1, what, 0) < 0)
                return -1;
            if (ch != '\n') {
                out[n] = '\0';
                return violation(c, "authd line '%s': CR not followed by LF", out);
            }
            out[n] = '\0';
            return 0;
        }
        if (ch == '\n') {
            out[n] = '\0';
            return violation(c, "authd line '%s' ends with a bare LF (CRLF required)", out);
        }
        if (ch < 0x20 || ch > 0x7e) {
            out[n] = '\0';
            return violation(c, "authd line '%s': byte 0x%02x is not printable ASCII", out, ch);
        }
        if (n + 1 >= outlen) {
            out[n] = '\0';
            return violation(c, "authd line longer than %zu bytes: '%.60s...'", outlen - 1, out);
        }
        out[n++] = (char)ch;
    }
}

/* ---- authd -------------------------------------------------------------- */

static int valid_session_id(const char *id)
{
    if (!*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 128)
        return 0;
    for (const char *p = id; *p; p++)
        if (*p == '/' || *p <= ' ' || *p > '~')
            return 0;
    return 1;
}

/* Claim DIR/<id> (rename, so two connections cannot both use it), parse,
 * unlink.  Returns 1 with c->t filled, 0 when the session is unknown. */
static int load_ticket(struct conn *c, const char *id)
{
    if (!valid_session_id(id)) {
        logm(c, "NOTE: session id '%s' cannot name a ticket file: unknown session", id);
        return 0;
    }
    char path[4096], claimed[4200];
    snprintf(path, sizeof path, "%s/%s", opt.tickets, id);
    snprintf(claimed, sizeof claimed, "%s/.used.%d.%s", opt.tickets, c->id, id);
    if (rename(path, claimed) != 0) {
        logm(c, "NOTE: no ticket %s (%s): unknown or used session", path, strerror(errno));
        return 0;
    }
    FILE *f = fopen(claimed, "r");
    if (!f) {
        logm(c, "TICKET ERROR: %s: %s", claimed, strerror(errno));
        unlink(claimed);
        return 0;
    }
    struct ticket *t = &c->t;
    char line[4096];
    int ok = 1, have_service = 0, have_mode = 0;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        char *sp = strchr(line, ' ');
        if (!sp) {
            logm(c, "TICKET ERROR: line '%s' has no value", line);
            ok = 0;
            continue;
        }
        *sp = '\0';
        const char *k = line, *v = sp + 1;
        if (strcmp(k, "service") == 0) {
            snprintf(t->service, sizeof t->service, "%s", v);
            have_service = 1;
        } else if (strcmp(k, "mode") == 0) {
            if (strcmp(v, "ro") == 0 || strcmp(v, "rw") == 0) {
                t->rw = strcmp(v, "rw") == 0;
                have_mode = 1;
            } else {
                logm(c, "TICKET ERROR: mode '%s'", v);
                ok = 0;
            }
        } else if (strcmp(k, "vm") == 0) {
            snprintf(t->vm, sizeof t->vm, "%s", v);
        } else if (strcmp(k, "file") == 0) {
            if (strv_add(&t->files, &t->nfiles, v) < 0)
                ok = 0;
        } else if (strcmp(k, "busy") == 0) {
            if (strv_add(&t->busy, &t->nbusy, v) < 0)
                ok = 0;
        } else if (strcmp(k, "ds") == 0) {
            const char *sp2 = strchr(v, ' ');
            if (!sp2 || sp2 == v || !sp2[1]) {
                logm(c, "TICKET ERROR: ds line '%s'", v);
                ok = 0;
                continue;
            }
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(sp2 - v), v);
            if (strv_add(&t->ds_name, &t->nds, name) < 0)
                ok = 0;
            size_t nd = t->nds - 1;
            if (strv_add(&t->ds_dir, &nd, sp2 + 1) < 0)
                ok = 0;
        } else {
            logm(c, "NOTE: ticket key '%s' ignored", k);
        }
    }
    fclose(f);
    unlink(claimed);
    if (!have_service || !have_mode) {
        logm(c, "TICKET ERROR: %s lacks service or mode", path);
        ok = 0;
    }
    if (!ok) {
        ticket_free(t);
        return 0;
    }
    logm(c, "ticket %s: service %s, mode %s, vm %s, %zu file(s), %zu busy, %zu datastore(s)", id,
         t->service, t->rw ? "rw" : "ro", t->vm[0] ? t->vm : "-", t->nfiles, t->nbusy, t->nds);
    return 1;
}

static int authd(struct conn *c)
{
    const char *banner = opt.lib_version >= 11 ? BANNER_11 : BANNER_OLD;
    if (send_line(c, banner) < 0)
        return -1;
    /* The client must start TLS: a handshake record begins with 0x16. */
    int w = net_wait(c->s.fd, POLLIN, opt.idle_ms);
    if (atomic_load(&c->dead))
        return -1;
    if (w <= 0) {
        logm(c, "TIMEOUT waiting for the TLS #1 ClientHello");
        return -1;
    }
    unsigned char first[64];
    ssize_t n = recv(c->s.fd, first, sizeof first, MSG_PEEK);
    if (n == 0) {
        logm(c, "EOF: the client closed the connection (waiting for TLS #1)");
        return -1;
    }
    if (n < 0) {
        logm(c, "LOST waiting for TLS #1: %s", strerror(errno));
        return -1;
    }
    if (first[0] != 0x16) {
        char shown[300];
        printable(first, (size_t)n, shown, sizeof shown);
        return violation(c, "expected a TLS #1 ClientHello (0x16) after the banner, got '%s'",
                         shown);
    }
    char who[256];
    if (net_tls_server_start(tls_srv, &c->s, 30000, who, sizeof who) < 0) {
        if (!atomic_load(&c->dead))
            logm(c, "TLS #1 handshake failed: %s", vd_err_msg());
        return -1;
    }
    logm(c, "TLS #1 up: %s", who);
    if (inject_close(c, S_TLS1) < 0)
        return -1;

    char line[520];
    int state = 0;  /* 0 SESSION, 1 BANNER, 2 THUMBPRINT_SHA2 or PROXY, 3 PROXY */
    int unknown = 0;
    for (;;) {
        static const char *const wants[] = { "SESSION", "BANNER", "THUMBPRINT_SHA2 or PROXY",
                                             "PROXY" };
        if (read_line(c, line, sizeof line, wants[state]) < 0)
            return -1;
        logm(c, "< '%s'", line);
        if (strncmp(line, "SESSION ", 8) == 0) {
            if (state != 0)
                return violation(c, "second SESSION line");
            const char *id = line + 8;
            if (!*id || strchr(id, ' '))
                return violation(c, "SESSION id '%s' is empty or contains spaces", id);
            snprintf(c->session, sizeof c->session, "%.150s", id);
            c->have_ticket = load_ticket(c, id);
            unknown = !c->have_ticket;
            if (inject_close(c, S_SESSION) < 0)
                return -1;
            state = 1;
        } else if (strncmp(line, "BANNER", 6) == 0) {
            if (strcmp(line, "BANNER ") != 0)
                return violation(c, "'%s' is not 'BANNER ' (with one trailing space)", line);
            if (state != 1)
                return violation(c, state == 0 ? "BANNER before SESSION" : "second BANNER");
            if (inject_close(c, S_BANNER) < 0)
                return -1;
            if (send_line(c, banner) < 0)
                return -1;
            state = 2;
        } else if (strncmp(line, "THUMBPRINT_SHA2", 15) == 0) {
            if (state != 2)
                return violation(c, "THUMBPRINT_SHA2 %s",
                                 state < 2 ? "before SESSION/BANNER" : "sent twice");
            if (opt.lib_version < 11) {
                send_line(c, LOGIN_530);
                return violation(c, "THUMBPRINT_SHA2 although the banner lacks 'SHA256 "
                                    "supported' (lib version %u)", opt.lib_version);
            }
            if (strcmp(line, "THUMBPRINT_SHA2 PlainText") != 0) {
                send_line(c, "501 Invalid arguments\r\n");
                return violation(c, "'%s': the only argument is 'PlainText'", line);
            }
            char reply[160];
            snprintf(reply, sizeof reply, "200 %s\r\n", cert_sha256);
            if (send_line(c, reply) < 0)
                return -1;
            state = 3;
        } else if (strncmp(line, "PROXY ", 6) == 0) {
            if (state < 2)
                return violation(c, "PROXY before %s", state == 0 ? "SESSION" : "BANNER");
            if (inject_close(c, S_PROXY) < 0)
                return -1;
            const char *svc = line + 6;
            if (unknown) {
                logm(c, "REFUSED: session '%s' is unknown or already used", c->session);
                send_line(c, LOGIN_530);
                kill_conn(c);
                return -1;
            }
            char ssl_svc[80];
            snprintf(ssl_svc, sizeof ssl_svc, "%sssl", c->t.service);
            if (strcmp(svc, c->t.service) == 0) {
                c->ssl = 0;
            } else if (strcmp(svc, ssl_svc) == 0) {
                c->ssl = 1;
            } else {
                send_line(c, LOGIN_530);
                return violation(c, "PROXY '%s': the ticket's service is '%s' (or '%s')", svc,
                                 c->t.service, ssl_svc);
            }
            gnutls_session_t gs = c->s.tls;
            if (gnutls_record_check_pending(gs) > 0)
                return violation(c, "TLS #1 data pending after PROXY (client pipelined)");
            /* Anything already readable was sent before our reply. */
            if (net_wait(c->s.fd, POLLIN, 0) > 0) {
                unsigned char pb[16];
                ssize_t pn = recv(c->s.fd, pb, sizeof pb, MSG_PEEK);
                if (pn == 0) {
                    logm(c, "EOF: the client closed the connection after PROXY");
                    return -1;
                }
                if (pn > 0) {
                    char shown[80];
                    printable(pb, (size_t)pn, shown, sizeof shown);
                    return violation(c, "data after PROXY before our 200 reply ('%s': "
                                        "pipelined frames or a TLS #1 close_notify)", shown);
                }
            }
            if (send_line(c, c->ssl ? "200 Connect ha-nfcssl\r\n" : "200 Connect ha-nfc\r\n") < 0)
                return -1;
            net_tls_abandon(&c->s);
            if (c->ssl) {
                logm(c, "TLS #1 abandoned; TLS #2 handshake (nbdssl)");
                if (net_tls_server_start(tls_srv, &c->s, 30000, who, sizeof who) < 0) {
                    if (!atomic_load(&c->dead))
                        logm(c, "TLS #2 handshake failed: %s", vd_err_msg());
                    return -1;
                }
                logm(c, "TLS #2 up: %s", who);
            } else {
                logm(c, "TLS #1 abandoned; raw TCP (nbd)");
            }
            if (inject_close(c, S_TLS2) < 0)
                return -1;
            return 0;
        } else {
            send_line(c, LOGIN_530);
            return violation(c, "unexpected authd command '%s' (want %s)", line, wants[state]);
        }
    }
}

/* ---- classic NFC -------------------------------------------------------- */

static int send_classic(struct conn *c, const unsigned char *f, const char *what)
{
    return snd(c, f, CLASSIC_LEN, NULL, 0, what);
}

/* Violation in the classic phase: NFC_ERROR frame, then drop. */
__attribute__((format(printf, 3, 4)))
static int classic_violation(struct conn *c, uint32_t type, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!atomic_load(&c->dead)) {
        unsigned char f[CLASSIC_LEN] = { 0 };
        char text[CLASSIC_LEN - 16];
        snprintf(text, sizeof text, "nfcd: %.200s", msg);
        size_t tl = strlen(text) + 1;
        put32(f, C_ERROR);
        put32(f + 4, type);
        put32(f + 8, 1);
        put32(f + 12, (uint32_t)tl);
        memcpy(f + 16, text, tl);
        logm(c, "VIOLATION: %s", msg);
        char line[80];
        snprintf(line, sizeof line, "CLASSIC 20 NFC_ERROR type=%u code=1 len=%zu", type, tl);
        send_classic(c, f, line);
    }
    kill_conn(c);
    return -1;
}

static int read_classic(struct conn *c, unsigned char *f, const char *what)
{
    if (rd(c, f, CLASSIC_LEN, what, 1) < 0)
        return -1;
    if (get32(f) == AIO_MAGIC)
        return classic_violation(c, get32(f), "AIO frame (magic 0xA100DA7A) while waiting for "
                                              "classic %s", what);
    return 0;
}

static int expect_type(struct conn *c, const unsigned char *f, uint32_t want, const char *what)
{
    uint32_t t = get32(f);
    if (t != want)
        return classic_violation(c, t, "classic frame type %u where %s (type %u) is expected%s", t,
                                 what, want, f[0] >= 0x14 && f[0] <= 0x17 && f[1] == 3
                                 ? " (it looks like a TLS record: TLS #1 not abandoned, a "
                                   "close_notify, or TLS #2 missing?)" : "");
    return 0;
}

static int classic(struct conn *c)
{
    unsigned char f[CLASSIC_LEN];
    int z;
    c->phase = 1;
    if (opt.lib_version >= 11) {
        if (read_classic(c, f, "C43") < 0)
            return -1;
        if (get32(f) == C_PARAMS)
            return classic_violation(c, C_PARAMS, "C33 without C43 (required at lib version "
                                                  "%u >= 11)", opt.lib_version);
        if (expect_type(c, f, C_HANDSHAKE, "C43") < 0)
            return -1;
        if (memcmp(f + 4, "PlainText", 9) != 0) {
            char shown[80];
            printable(f + 4, 9, shown, sizeof shown);
            return classic_violation(c, C_HANDSHAKE, "C43 @4 is '%s', not 'PlainText'", shown);
        }
        if ((z = nonzero_at(f, 13, CLASSIC_LEN)) >= 0)
            return classic_violation(c, C_HANDSHAKE, "C43 byte @%d is non-zero", z);
        logm(c, "< CLASSIC 43 'PlainText'");
    }
    if (read_classic(c, f, "C33") < 0)
        return -1;
    if (get32(f) == C_HANDSHAKE && opt.lib_version < 11)
        return classic_violation(c, C_HANDSHAKE, "C43 sent although our lib version is %u "
                                                 "(< 11)", opt.lib_version);
    if (expect_type(c, f, C_PARAMS, "C33") < 0)
        return -1;
    if ((z = nonzero_at(f, 4, CLASSIC_LEN)) >= 0)
        return classic_violation(c, C_PARAMS, "C33 byte @%d is non-zero", z);
    logm(c, "< CLASSIC 33");
    if (inject_close(c, S_CLASSIC) < 0)
        return -1;

    memset(f, 0, sizeof f);
    put32(f, C_PARAMS_REPLY);
    put32(f + 16, 1);
    if (send_classic(c, f, "CLASSIC 36 (1 @16)") < 0)
        return -1;

    if (read_classic(c, f, "C51") < 0 || expect_type(c, f, C_VERSION, "C51") < 0)
        return -1;
    uint32_t ver = get32(f + 4);
    if (ver < 3)
        return classic_violation(c, C_VERSION, "C51 version %u < 3", ver);
    if ((z = nonzero_at(f, 8, CLASSIC_LEN)) >= 0)
        return classic_violation(c, C_VERSION, "C51 byte @%d is non-zero", z);
    logm(c, "< CLASSIC 51 version=%u", ver);
    memset(f, 0, sizeof f);
    put32(f, C_VERSION);
    put32(f + 4, opt.lib_version);
    char line[100];
    snprintf(line, sizeof line, "CLASSIC 51 version=%u", opt.lib_version);
    if (send_classic(c, f, line) < 0)
        return -1;

    if (read_classic(c, f, "C54") < 0 || expect_type(c, f, C_CONN_DATA, "C54") < 0)
        return -1;
    uint32_t nl = get32(f + 4), ol = get32(f + 8);
    if (nl < 1 || nl > 256 || ol < 1 || ol > 256)
        return classic_violation(c, C_CONN_DATA, "C54 lengths name=%u opId=%u (each 1..256)", nl,
                                 ol);
    if ((z = nonzero_at(f, 12, CLASSIC_LEN)) >= 0)
        return classic_violation(c, C_CONN_DATA, "C54 byte @%d is non-zero", z);
    unsigned char strs[512];
    if (rd(c, strs, nl + ol, "C54 strings", 0) < 0)
        return -1;
    for (uint32_t i = 0; i < nl + ol; i++)
        if (strs[i] < 0x20 || strs[i] > 0x7e)
            return classic_violation(c, C_CONN_DATA, "C54 string byte %u is 0x%02x (not "
                                                     "printable ASCII)", i, strs[i]);
    logm(c, "< CLASSIC 54 name='%.*s' opId='%.*s'", (int)nl, (const char *)strs, (int)ol,
         (const char *)strs + nl);

    if (read_classic(c, f, "C55") < 0 || expect_type(c, f, C_FEATURES, "C55") < 0)
        return -1;
    if (get32(f + 4) != 3)
        return classic_violation(c, C_FEATURES, "C55 features %u, expected 3", get32(f + 4));
    if ((z = nonzero_at(f, 8, CLASSIC_LEN)) >= 0)
        return classic_violation(c, C_FEATURES, "C55 byte @%d is non-zero", z);
    logm(c, "< CLASSIC 55 features=3");

    if (read_classic(c, f, "C52") < 0 || expect_type(c, f, C_AIO_OPEN, "C52") < 0)
        return -1;
    if ((z = nonzero_at(f, 4, CLASSIC_LEN)) >= 0)
        return classic_violation(c, C_AIO_OPEN, "C52 byte @%d is non-zero", z);
    logm(c, "< CLASSIC 52");
    memset(f, 0, sizeof f);
    put32(f, C_AIO_OPEN);
    c->phase = 2;
    return send_classic(c, f, "CLASSIC 52: AIO framing from now on");
}

/* ---- AIO ---------------------------------------------------------------- */

static const char *aio_name(uint32_t t)
{
    switch (t) {
    case A_ERROR: return "ERROR";
    case A_OPEN_SESSION: return "OPEN_SESSION";
    case A_CLOSE_SESSION: return "CLOSE_SESSION";
    case A_OPEN_FILE: return "OPEN_FILE";
    case A_CLOSE_FILE: return "CLOSE_FILE";
    case A_IO: return "IO";
    case A_SET_SOCK_OPTS: return "SET_SOCK_OPTS";
    case A_DDB_GET: return "DDB_GET";
    case A_QAB: return "QUERY_ALLOCATED_BLOCKS";
    case A_SET_RES_POOL: return "SET_RES_POOL";
    default: return "?";
    }
}

static int aio_size(uint32_t t)
{
    switch (t) {
    case A_OPEN_SESSION: return 16;
    case A_CLOSE_SESSION: return 4;
    case A_OPEN_FILE: return 60;
    case A_CLOSE_FILE: return 8;
    case A_IO: return 44;
    case A_SET_SOCK_OPTS: return 12;
    case A_DDB_GET: return 16;
    case A_QAB: return 48;
    case A_SET_RES_POOL: return 4;
    default: return -1;
    }
}

/* header + payload (+ extra) as one message.  own: the malloc'd block
 * holding extra, handed over (the frame is queued, not waited for). */
static int send_aio_own(struct conn *c, uint32_t type, uint32_t op, const unsigned char *pl,
                        uint32_t size, const void *extra, size_t extralen, const char *detail,
                        void *own)
{
    char line[400];
    if (g_quiet)                /* only a lost connection names the frame */
        snprintf(line, sizeof line, "AIO %s op=%u", aio_name(type), op);
    else
        snprintf(line, sizeof line, "AIO %s op=%u size=%u%s%s", aio_name(type), op, size,
                 detail && *detail ? " " : "", detail ? detail : "");
    size_t ll = strlen(line) + 1;
    struct out w = { 0 }, *o = &w;
    if (own && !(o = malloc(sizeof *o + ll))) {
        free(own);
        logm(c, "out of memory for a frame: dropping the connection");
        kill_conn(c);
        return -1;
    }
    *o = (struct out){ .b = extra, .blen = extralen, .own = own, .line = line };
    if (own)
        o->line = memcpy(o->linebuf, line, ll);
    put32(o->head, AIO_MAGIC);
    put32(o->head + 4, type);
    put32(o->head + 8, size);
    put32(o->head + 12, op);
    memcpy(o->head + 16, pl, size);
    o->a = o->head;
    o->alen = 16 + size;
    return snd_out(c, o);
}

static int send_aio(struct conn *c, uint32_t type, uint32_t op, const unsigned char *pl,
                    uint32_t size, const void *extra, size_t extralen, const char *detail)
{
    return send_aio_own(c, type, op, pl, size, extra, extralen, detail, NULL);
}

static int send_error(struct conn *c, uint32_t op, uint32_t code, const char *why)
{
    unsigned char pl[16] = { 0 };
    put32(pl, code);
    char d[300];
    snprintf(d, sizeof d, "code=%u (0x%x) [layout u32 code + 12 zeros is our choice]: %s", code,
             code, why);
    return send_aio(c, A_ERROR, op, pl, 16, NULL, 0, d);
}

static struct handle *find_handle(struct conn *c, uint64_t id)
{
    for (struct handle *h = c->handles; h; h = h->next)
        if (h->id == id)
            return h;
    return NULL;
}

static uint64_t rnd(struct conn *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t v = splitmix(&c->rng);
    pthread_mutex_unlock(&c->mu);
    return v;
}

/* Serve one read: the fragments (in random order unless --no-shuffle). */
static void run_read(struct conn *c, struct job *j)
{
    uint32_t bs = c->buf_size;
    uint32_t nfrag = (uint32_t)(((uint64_t)j->len + bs - 1) / bs);
    uint32_t *order = malloc(nfrag * sizeof *order);
    size_t cap = j->codec ? nfc_codec_bound(j->codec, bs) : 0;
    if (!order) {
        send_error(c, j->op, E_FAIL, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < nfrag; i++)
        order[i] = i;
    if (!opt.no_shuffle)
        for (uint32_t i = nfrag; i > 1; i--) {
            uint32_t k = (uint32_t)(rnd(c) % i);
            uint32_t tmp = order[i - 1];
            order[i - 1] = order[k];
            order[k] = tmp;
        }
    for (uint32_t i = 0; i < nfrag && !atomic_load(&c->dead); i++) {
        uint32_t fo = order[i] * bs;
        uint32_t fl = j->len - fo < bs ? j->len - fo : bs;
        /* Each fragment has its own buffer: the frame is handed to the
         * output queue with it. */
        unsigned char *raw = malloc(fl);
        if (!raw) {
            send_error(c, j->op, E_FAIL, "out of memory");
            break;
        }
        int rc = j->h->d->ops->pread(j->h->d, raw, fl, j->off + fo);
        if (rc < 0) {
            char why[300];
            snprintf(why, sizeof why, "read %u @%" PRIu64 ": %s", fl, j->off + fo, vd_err_msg());
            free(raw);
            send_error(c, j->op, E_FILE_ERROR, why);
            break;
        }
        int codec = j->codec;
        const char *why = "";
        if (codec && rnd(c) % 4 == 0) {
            codec = 0;
            why = " (sent raw at random)";
        }
        unsigned char *data = raw;
        size_t elen = fl;
        if (codec) {
            unsigned char *enc = malloc(cap);
            size_t e = enc ? nfc_encode(codec, raw, fl, enc, cap) : 0;
            if (e == 0) {
                free(enc);
                codec = 0;
                why = " (codec did not shrink it: raw)";
            } else {
                free(raw);
                data = enc;
                elen = e;
            }
        }
        unsigned char pl[44] = { 0 };
        put64(pl + 8, (uint64_t)codec << 32 | 1);
        put64(pl + 16, j->off);
        put32(pl + 24, j->len);
        put32(pl + 28, fo);
        put32(pl + 32, fl);
        put32(pl + 36, (uint32_t)elen);
        char d[300] = "read-fragment";
        if (!g_quiet)           /* frame lines are not logged when quiet */
            snprintf(d, sizeof d, "read-fragment %u/%u off=%" PRIu64 " total=%u fragOff=%u "
                     "raw=%u extra=%zu codec=%s%s", i + 1, nfrag, j->off, j->len, fo, fl, elen,
                     nfc_codec_name(codec), why);
        /* The injected close comes after this fragment is on the wire:
         * wait for it to go out. */
        int wait = i == 0 && j->close_after_first;
        rc = send_aio_own(c, A_IO, j->op, pl, 44, data, elen, d, wait ? NULL : data);
        if (wait)
            free(data);
        if (rc < 0)
            break;
        if (i == 0 && j->close_after_first) {
            logm(c, "INJECT: close-at=read:%u after its first fragment", j->nread);
            kill_conn(c);
            break;
        }
        /* Let other workers' fragments in between this read's (after the
         * last one there is nothing left to interleave). */
        if (!opt.no_shuffle && i + 1 < nfrag)
            sched_yield();
    }
    free(order);
}

static void *worker_main(void *arg)
{
    struct conn *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->qhead && !c->stop_workers)
            pthread_cond_wait(&c->jobs, &c->mu);
        if (!c->qhead)
            break;
        struct job *j = c->qhead;
        c->qhead = j->next;
        if (!c->qhead)
            c->qtail = NULL;
        pthread_mutex_unlock(&c->mu);
        if (!atomic_load(&c->dead))
            run_read(c, j);
        pthread_mutex_lock(&c->mu);
        /* Only wait_idle waits for this: wake it when it may be done. */
        if (--j->h->inflight == 0 || atomic_load(&c->dead))
            pthread_cond_broadcast(&c->cv);
        free(j);
    }
    c->alive--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Wait until no read job uses h (or, h NULL, any handle). */
static int wait_idle(struct conn *c, struct handle *h)
{
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int busy = 0;
        for (struct handle *x = c->handles; x; x = x->next)
            if ((!h || x == h) && x->inflight)
                busy = 1;
        if (!busy || atomic_load(&c->dead))
            break;
        pthread_cond_wait(&c->cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return atomic_load(&c->dead) ? -1 : 0;
}

static int map_path(struct conn *c, const char *dspath, char *out, size_t outlen)
{
    if (dspath[0] != '[')
        return -1;
    const char *e = strchr(dspath, ']');
    if (!e || e == dspath + 1 || e[1] != ' ' || !e[2])
        return -1;
    size_t nl = (size_t)(e - dspath - 1);
    for (size_t i = 0; i < c->t.nds; i++)
        if (strlen(c->t.ds_name[i]) == nl && memcmp(c->t.ds_name[i], dspath + 1, nl) == 0) {
            const char *dir = c->t.ds_dir[i];
            size_t dl = strlen(dir);
            snprintf(out, outlen, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e + 2);
            return 0;
        }
    return -1;
}

static int do_open_file(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint32_t pl_len = get32(pl), ftype = get32(pl + 16), flags = get32(pl + 20);
    int z;
    if (pl_len < 1 || pl_len > 4096)
        return violation(c, "OPEN_FILE op=%u pathLen %u (1..4096)", op, pl_len);
    if ((z = nonzero_at(pl, 4, 16)) >= 0)
        return violation(c, "OPEN_FILE op=%u byte @%d is non-zero (4..15 must be zero)", op, z);
    if (ftype != 2)
        return violation(c, "OPEN_FILE op=%u file type %u @16 (must be 2, NFC_DISK)", op, ftype);
    if (flags != 0x1E && flags != 0x1A)
        return violation(c, "OPEN_FILE op=%u flags 0x%x @20 (0x1E RO or 0x1A RW)", op, flags);
    if ((z = nonzero_at(pl, 24, 60)) >= 0)
        return violation(c, "OPEN_FILE op=%u byte @%d is non-zero (24..59 must be zero)", op, z);
    char path[4097];
    if (rd(c, path, pl_len, "OPEN_FILE path", 0) < 0)
        return -1;
    path[pl_len] = '\0';
    if (!valid_utf8((const unsigned char *)path, pl_len)) {
        char shown[600];
        printable((const unsigned char *)path, pl_len, shown, sizeof shown);
        return violation(c, "OPEN_FILE op=%u path '%s' is not UTF-8 without NUL", op, shown);
    }
    int rw = flags == 0x1A;
    logm(c, "< AIO OPEN_FILE op=%u size=60 pathLen=%u type=2 flags=0x%x (%s) path='%s'", op,
         pl_len, flags, rw ? "RW" : "RO", path);
    if (inject_close(c, S_OPEN) < 0)
        return -1;
    const struct fail_rule *r = fail_hit(c, F_ERROR, S_OPEN, 0);
    if (r) {
        logm(c, "INJECT: error-at=open:%u", r->code);
        return send_error(c, op, r->code, "injected");
    }
    int granted = 0;
    for (size_t i = 0; i < c->t.nfiles; i++)
        if (strcmp(c->t.files[i], path) == 0)
            granted = 1;
    if (!granted)
        return send_error(c, op, E_ACCESS, "path not granted by the ticket");
    for (size_t i = 0; i < c->t.nbusy; i++)
        if (strcmp(c->t.busy[i], path) == 0)
            return send_error(c, op, E_ACCESS, "file busy (running VM)");
    if (rw && !c->t.rw)
        return send_error(c, op, E_READ_ONLY, "RW open on a read-only ticket");
    char local[8192];
    if (map_path(c, path, local, sizeof local) < 0)
        return send_error(c, op, E_FILE_NOT_FOUND, "no datastore mapping for the path");
    struct vdisk *d;
    int rc = vdisk_open_local(local, rw ? 0 : VMDK_OPEN_RDONLY, &d);
    if (rc < 0) {
        char why[600];
        snprintf(why, sizeof why, "open %.250s: %.250s", local, vd_err_msg());
        uint32_t code = rc == -VD_E_NOTFOUND ? E_FILE_NOT_FOUND
                        : rc == -VD_E_LOCKED ? E_ACCESS : E_FILE_ERROR;
        return send_error(c, op, code, why);
    }
    struct vdisk_info info;
    if ((rc = d->ops->info(d, &info)) < 0) {
        char why[600];
        snprintf(why, sizeof why, "info %.250s: %.250s", local, vd_err_msg());
        d->ops->close(d);
        return send_error(c, op, E_FILE_ERROR, why);
    }
    struct handle *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(path))) {
        free(h);
        vdisk_info_free(&info);
        d->ops->close(d);
        return send_error(c, op, E_FAIL, "out of memory");
    }
    do
        h->id = 0x10000 + rnd(c) % (0xFFFFFFFFull - 0x10000);
    while (find_handle(c, h->id));
    h->d = d;
    h->rw = rw;
    h->flags = flags;
    h->cap = d->capacity;
    pthread_mutex_lock(&c->mu);
    h->next = c->handles;
    c->handles = h;
    pthread_mutex_unlock(&c->mu);
    unsigned char rp[60] = { 0 };
    put64(rp + 8, h->id);
    put32(rp + 16, 2);
    put32(rp + 20, flags);
    put64(rp + 28, h->cap);
    put32(rp + 36, 512);
    put32(rp + 40, info.phys.cylinders);
    put32(rp + 44, info.phys.heads);
    put32(rp + 48, info.phys.sectors);
    char det[600];
    snprintf(det, sizeof det, "handle=0x%" PRIx64 " type=2 flags=0x%x capacity=%" PRIu64
             " sector=512 physGeo=%u/%u/%u (%.300s)", h->id, flags, h->cap, info.phys.cylinders,
             info.phys.heads, info.phys.sectors, local);
    vdisk_info_free(&info);
    return send_aio(c, A_OPEN_FILE, op, rp, 60, NULL, 0, det);
}

static struct handle *need_handle(struct conn *c, uint32_t op, const char *what, uint64_t id)
{
    struct handle *h = find_handle(c, id);
    if (!h)
        violation(c, "%s op=%u: handle 0x%" PRIx64 " is not open", what, op, id);
    return h;
}

static int start_workers(struct conn *c)
{
    while (c->nworkers < 4) {
        pthread_mutex_lock(&c->mu);
        c->alive++;
        pthread_mutex_unlock(&c->mu);
        if (pthread_create(&c->workers[c->nworkers], NULL, worker_main, c) != 0) {
            pthread_mutex_lock(&c->mu);
            c->alive--;
            pthread_mutex_unlock(&c->mu);
            logm(c, "cannot start a worker thread");
            return c->nworkers ? 0 : -1;
        }
        c->nworkers++;
    }
    return 0;
}

static int do_read(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint64_t hid = get64(pl), dir = get64(pl + 8), off = get64(pl + 16);
    uint32_t len = get32(pl + 24), f28 = get32(pl + 28), f32 = get32(pl + 32),
             f36 = get32(pl + 36), f40 = get32(pl + 40);
    int codec = (int)(dir >> 32);
    struct handle *h = need_handle(c, op, "IO read", hid);
    if (!h)
        return -1;
    if (dir >> 32 > 3)
        return violation(c, "IO read op=%u: codec %" PRIu64 " (0..3)", op, dir >> 32);
    if (f28 || f40)
        return violation(c, "IO read op=%u: @28=%u @40=%u must be 0", op, f28, f40);
    if (len == 0)
        return violation(c, "IO read op=%u: length 0", op);
    if (f32 != len || f36 != len)
        return violation(c, "IO read op=%u: @32=%u and @36=%u must equal the length %u @24", op,
                         f32, f36, len);
    if (off > h->cap || len > h->cap - off)
        return violation(c, "IO read op=%u: %u bytes @%" PRIu64 " pass the capacity %" PRIu64,
                         op, len, off, h->cap);
    unsigned nread = ++c->nreads;
    logm(c, "< AIO IO op=%u size=44 read #%u handle=0x%" PRIx64 " codec=%s off=%" PRIu64
         " len=%u", op, nread, hid, nfc_codec_name(codec), off, len);
    if (off % 512 || len % 512)
        logm(c, "NOTE: read op=%u is not 512-byte aligned (accepted)", op);
    const struct fail_rule *r;
    if ((r = fail_hit(c, F_ERROR, S_READ, nread))) {
        logm(c, "INJECT: error-at=read:%u:%u", nread, r->code);
        return send_error(c, op, r->code, "injected");
    }
    if (fail_hit(c, F_STALL, S_READ, nread)) {
        logm(c, "INJECT: stall-at=read:%u: never answering op=%u", nread, op);
        return 0;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return send_error(c, op, E_FAIL, "out of memory");
    j->h = h;
    j->op = op;
    j->off = off;
    j->len = len;
    j->codec = codec;
    j->nread = nread;
    j->close_after_first = fail_hit(c, F_CLOSE, S_READ, nread) != NULL;
    if (opt.no_shuffle) {
        run_read(c, j);
        free(j);
        return atomic_load(&c->dead) ? -1 : 0;
    }
    if (start_workers(c) < 0) {
        free(j);
        return send_error(c, op, E_FAIL, "no worker thread");
    }
    pthread_mutex_lock(&c->mu);
    h->inflight++;
    if (c->qtail)
        c->qtail->next = j;
    else
        c->qhead = j;
    c->qtail = j;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_signal(&c->jobs);      /* after the unlock: the worker need not wait for mu */
    return 0;
}

/* One write fragment (the header is already checked: type IO, right opId). */
static int do_write_fragment(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint64_t hid = get64(pl), dir = get64(pl + 8), off = get64(pl + 16);
    uint32_t total = get32(pl + 24), fo = get32(pl + 28), raw = get32(pl + 32),
             extra = get32(pl + 36), f40 = get32(pl + 40);
    int codec = (int)(dir >> 32);
    int first = !c->w.active;
    struct handle *h = need_handle(c, op, "IO write", hid);
    if (!h)
        return -1;
    if (dir >> 32 > 3)
        return violation(c, "IO write op=%u: codec %" PRIu64 " (0..3)", op, dir >> 32);
    if (f40)
        return violation(c, "IO write op=%u: @40=%u must be 0", op, f40);
    if (first) {
        if (fo != 0)
            return violation(c, "IO write op=%u: first fragment at offset %u in the request "
                                "(must be 0)", op, fo);
        if (total == 0)
            return violation(c, "IO write op=%u: total length 0", op);
        if (off > h->cap || total > h->cap - off)
            return violation(c, "IO write op=%u: %u bytes @%" PRIu64 " pass the capacity %"
                             PRIu64, op, total, off, h->cap);
        c->w.active = 1;
        c->w.op = op;
        c->w.h = h;
        c->w.off = off;
        c->w.total = total;
        c->w.next = 0;
        c->w.error = 0;
        c->w.nwrite = ++c->nwrites;
        if (off % 512 || total % 512)
            logm(c, "NOTE: write op=%u is not 512-byte aligned (accepted)", op);
    } else {
        if (h != c->w.h)
            return violation(c, "IO write op=%u: fragment for handle 0x%" PRIx64 ", the write "
                             "started on 0x%" PRIx64, op, hid, c->w.h->id);
        if (off != c->w.off || total != c->w.total)
            return violation(c, "IO write op=%u: fragment says offset %" PRIu64 " total %u, the "
                             "first said %" PRIu64 " %u", op, off, total, c->w.off, c->w.total);
        if (fo != c->w.next)
            return violation(c, "IO write op=%u: fragment at %u, expected %u (in order, each "
                             "bufSize %u)", op, fo, c->w.next, c->buf_size);
    }
    uint32_t want = total - fo < c->buf_size ? total - fo : c->buf_size;
    if (raw != want)
        return violation(c, "IO write op=%u: fragment @%u raw length %u, expected %u "
                         "(bufSize %u, total %u)", op, fo, raw, want, c->buf_size, total);
    if (codec == 0 && extra != raw)
        return violation(c, "IO write op=%u: raw fragment with %u extra bytes for %u raw", op,
                         extra, raw);
    if (codec && (extra == 0 || extra > nfc_codec_bound(codec, raw) || extra > c->enc_cap))
        return violation(c, "IO write op=%u: %s fragment of %u raw bytes claims %u encoded bytes",
                         op, nfc_codec_name(codec), raw, extra);
    logm(c, "< AIO IO op=%u size=44 write #%u fragment handle=0x%" PRIx64 " off=%" PRIu64
         " total=%u fragOff=%u raw=%u extra=%u codec=%s", op, c->w.nwrite, hid, off, total, fo,
         raw, extra, nfc_codec_name(codec));
    if (codec && extra >= raw)
        logm(c, "NOTE: write op=%u fragment @%u: %s encoding (%u) not smaller than raw (%u)", op,
             fo, nfc_codec_name(codec), extra, raw);
    if (rd(c, codec ? c->enc : c->raw, extra, "write fragment data", 0) < 0)
        return -1;
    if (first && fail_hit(c, F_CLOSE, S_WRITE, c->w.nwrite)) {
        logm(c, "INJECT: close-at=write:%u after its first fragment", c->w.nwrite);
        kill_conn(c);
        return -1;
    }
    if (codec) {
        vd_err_clear();
        if (nfc_decode(codec, c->enc, extra, c->raw, raw) < 0)
            return violation(c, "IO write op=%u fragment @%u: invalid %s data (%u bytes for %u): "
                             "%s", op, fo, nfc_codec_name(codec), extra, raw, vd_err_msg());
    }
    if (first) {
        const struct fail_rule *r = fail_hit(c, F_ERROR, S_WRITE, c->w.nwrite);
        if (r) {
            logm(c, "INJECT: error-at=write:%u:%u (data discarded)", c->w.nwrite, r->code);
            c->w.error = r->code;
        } else if (!h->rw) {
            c->w.error = E_READ_ONLY;
        }
    }
    if (!c->w.error) {
        int rc = h->d->ops->pwrite(h->d, c->raw, raw, off + fo);
        if (rc < 0) {
            logm(c, "write op=%u @%" PRIu64 " failed: %s", op, off + fo, vd_err_msg());
            c->w.error = rc == -VD_E_READONLY ? E_READ_ONLY : E_FILE_ERROR;
        }
    }
    c->w.next = fo + raw;
    if (c->w.next < total)
        return 0;
    c->w.active = 0;
    if (c->w.error)
        return send_error(c, op, c->w.error, h->rw ? "write failed" : "write on a RO handle");
    unsigned char rp[44] = { 0 };
    put64(rp + 16, off);
    put32(rp + 24, total);
    put32(rp + 32, total);
    char d[200];
    snprintf(d, sizeof d, "write-ack #%u off=%" PRIu64 " total=%u", c->w.nwrite, off, total);
    return send_aio(c, A_IO, op, rp, 44, NULL, 0, d);
}

static int do_ddb_get(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint64_t hid = get64(pl);
    uint32_t kl = get32(pl + 8), f12 = get32(pl + 12);
    struct handle *h = need_handle(c, op, "DDB_GET", hid);
    if (!h)
        return -1;
    if (f12)
        return violation(c, "DDB_GET op=%u: @12=%u must be 0", op, f12);
    if (kl < 1 || kl > 256)
        return violation(c, "DDB_GET op=%u: key length %u (1..256)", op, kl);
    char key[257];
    if (rd(c, key, kl, "DDB_GET key", 0) < 0)
        return -1;
    key[kl] = '\0';
    for (uint32_t i = 0; i < kl; i++)
        if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] > '~' || key[i] == '=' ||
            key[i] == '"') {
            char shown[1100];
            printable((const unsigned char *)key, kl, shown, sizeof shown);
            return violation(c, "DDB_GET op=%u: key '%s' has a bad byte at %u", op, shown, i);
        }
    if (strncmp(key, "ddb.", 4) == 0)
        return violation(c, "DDB_GET op=%u: key '%s' keeps the 'ddb.' prefix", op, key);
    logm(c, "< AIO DDB_GET op=%u size=16 handle=0x%" PRIx64 " key='%s'", op, hid, key);
    char *v = NULL;
    vd_err_clear();
    int rc = h->d->ops->meta_get(h->d, key, &v);
    if (rc < 0 && rc != -VD_E_NOTFOUND_KEY) {
        char why[400];
        snprintf(why, sizeof why, "meta_get %s: %s", key, vd_err_msg());
        return send_error(c, op, E_FAIL, why);
    }
    size_t vl = v ? strlen(v) : 0;
    unsigned char rp[16] = { 0 };
    put32(rp + 12, (uint32_t)vl);
    char d[400];
    snprintf(d, sizeof d, "key='%s' valueLen=%zu value='%s'", key, vl, v ? v : "(absent)");
    int r = send_aio(c, A_DDB_GET, op, rp, 16, v, vl, d);
    free(v);
    return r;
}

static int do_qab(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint64_t hid = get64(pl), f8 = get64(pl + 8), chunk = get64(pl + 16), start = get64(pl + 24),
             count = get64(pl + 32), f40 = get64(pl + 40);
    struct handle *h = need_handle(c, op, "QUERY_ALLOCATED_BLOCKS", hid);
    if (!h)
        return -1;
    if (f8 || f40)
        return violation(c, "QUERY_ALLOCATED_BLOCKS op=%u: @8=%" PRIu64 " @40=%" PRIu64
                         " must be 0", op, f8, f40);
    logm(c, "< AIO QUERY_ALLOCATED_BLOCKS op=%u size=48 handle=0x%" PRIx64 " chunk=%" PRIu64
         " start=%" PRIu64 " count=%" PRIu64, op, hid, chunk, start, count);
    char why[200] = "";
    uint64_t capr = chunk && chunk <= (1ull << 40) ? (h->cap + chunk - 1) / chunk * chunk : 0;
    if (chunk < KIB64 || chunk > (1ull << 40) || (chunk & (chunk - 1)))
        snprintf(why, sizeof why, "chunk %" PRIu64 " is not a power of two >= 65536", chunk);
    else if (start % chunk)
        snprintf(why, sizeof why, "start %" PRIu64 " is not chunk aligned", start);
    else if (count < 1 || count > MAX_QAB_CHUNKS)
        snprintf(why, sizeof why, "count %" PRIu64 " (1..%u)", count, MAX_QAB_CHUNKS);
    else if (start >= h->cap)
        snprintf(why, sizeof why, "start %" PRIu64 " >= capacity %" PRIu64, start, h->cap);
    else if (count > (capr - start) / chunk)
        snprintf(why, sizeof why, "%" PRIu64 " chunks from %" PRIu64 " pass the end of the disk "
                 "(capacity %" PRIu64 ")", count, start, h->cap);
    if (why[0])
        return send_error(c, op, E_INVALID_ARG, why);
    size_t bytes = (size_t)((count + 7) / 8 + 3) / 4 * 4;
    unsigned char *bm = calloc(1, bytes);
    if (!bm)
        return send_error(c, op, E_FAIL, "out of memory");
    uint64_t end = start + count * chunk, o = start, nalloc = 0;
    if (end > h->cap)
        end = h->cap;
    while (o < end) {
        uint64_t run;
        int st;
        int rc = h->d->ops->block_status(h->d, o, end - o, 0, &run, &st);
        if (rc < 0) {
            free(bm);
            char w[400];
            snprintf(w, sizeof w, "block_status: %s", vd_err_msg());
            return send_error(c, op, E_FILE_ERROR, w);
        }
        if (st == VMDK_DATA)
            for (uint64_t k = (o - start) / chunk; k <= (o + run - 1 - start) / chunk; k++)
                bm[k / 8] |= (unsigned char)(1u << (k % 8));
        o += run;
    }
    for (uint64_t k = 0; k < count; k++)
        nalloc += bm[k / 8] >> (k % 8) & 1;
    unsigned char rp[48] = { 0 };
    put64(rp + 32, count);
    char d[200];
    snprintf(d, sizeof d, "count=%" PRIu64 " allocated=%" PRIu64 " bitmap=%zu bytes", count,
             nalloc, bytes);
    int r = send_aio(c, A_QAB, op, rp, 48, bm, bytes, d);
    free(bm);
    return r;
}

static int close_handle(struct conn *c, struct handle *h, int *flush_rc)
{
    pthread_mutex_lock(&c->mu);
    for (struct handle **pp = &c->handles; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    int rc = h->d->ops->flush(h->d);
    char msg[400] = "";
    if (rc < 0)
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
    int rc2 = h->d->ops->close(h->d);
    if (rc >= 0 && rc2 < 0) {
        rc = rc2;
        snprintf(msg, sizeof msg, "%s", vd_err_msg());
    }
    if (rc < 0)
        logm(c, "closing %s failed: %s", h->path, msg);
    *flush_rc = rc;
    free(h->path);
    free(h);
    return rc;
}

static int do_close_file(struct conn *c, uint32_t op, const unsigned char *pl)
{
    uint64_t hid = get64(pl);
    struct handle *h = need_handle(c, op, "CLOSE_FILE", hid);
    if (!h)
        return -1;
    logm(c, "< AIO CLOSE_FILE op=%u size=8 handle=0x%" PRIx64 " (%s)", op, hid, h->path);
    if (wait_idle(c, h) < 0)
        return -1;
    int rc;
    close_handle(c, h, &rc);
    if (rc < 0)
        return send_error(c, op, E_FILE_ERROR, "flush/close failed");
    unsigned char rp[8];
    put64(rp, hid);
    char d[80];
    snprintf(d, sizeof d, "handle=0x%" PRIx64, hid);
    return send_aio(c, A_CLOSE_FILE, op, rp, 8, NULL, 0, d);
}

/* After the reply to CLOSE_SESSION: classic type 4, then the client closes. */
static int session_end(struct conn *c)
{
    unsigned char f[CLASSIC_LEN];
    int r = net_read(&c->s, f, CLASSIC_LEN);
    if (r == NET_EOF)
        return violation(c, "the client closed without the classic type 4 frame after "
                            "CLOSE_SESSION");
    if (r != NET_OK) {
        if (!atomic_load(&c->dead))
            return violation(c, "reading the classic type 4 frame after CLOSE_SESSION: %s",
                             vd_err_msg());
        return -1;
    }
    if (get32(f) != C_SESSION_COMPLETE)
        return violation(c, "after CLOSE_SESSION: 0x%08x where classic type 4 is expected",
                         get32(f));
    int z = nonzero_at(f, 4, CLASSIC_LEN);
    if (z >= 0)
        return violation(c, "classic type 4 byte @%d is non-zero", z);
    logm(c, "< CLASSIC 4 SESSION_COMPLETE (not answered)");
    /* The client must close now. */
    int save = c->s.rd_timeout_ms;
    c->s.rd_timeout_ms = 30000;
    unsigned char b;
    r = net_read(&c->s, &b, 1);
    c->s.rd_timeout_ms = save;
    if (r == NET_EOF) {
        logm(c, "session complete: the client closed the connection");
        return 0;
    }
    if (r == NET_OK)
        return violation(c, "data (0x%02x...) after the classic type 4 frame", b);
    if (r == NET_TIMEOUT)
        logm(c, "NOTE: the client did not close within 30 s after type 4; closing");
    else
        logm(c, "after type 4: %s", vd_err_msg());
    return 0;
}

static int aio(struct conn *c)
{
    int state = 0;  /* 0 OPEN_SESSION, 1 SET_SOCK_OPTS, 2 SET_RES_POOL, 3 requests */
    /* Requests are small: take whatever is queued in one receive call
     * (plain TCP only; every byte still goes through the checks below). */
    (void)net_stream_readahead(&c->s, 4096);
    static const char *const want[] = { "OPEN_SESSION", "SET_SOCK_OPTS", "SET_RES_POOL" };
    for (;;) {
        unsigned char hdr[16], pl[64];
        if (rd(c, hdr, 16, c->w.active ? "the next write fragment" : "an AIO request",
               !c->w.active) < 0)
            return -1;
        uint32_t magic = get32(hdr), type = get32(hdr + 4), size = get32(hdr + 8),
                 op = get32(hdr + 12);
        if (magic != AIO_MAGIC)
            return violation(c, "bad AIO magic 0x%08x (type %u size %u opId %u)", magic, type,
                             size, op);
        int want_size = aio_size(type);
        if (want_size < 0 || type == A_ERROR)
            return violation(c, "AIO type %u (size %u, opId %u) is unknown or not a request",
                             type, size, op);
        if (size != (uint32_t)want_size)
            return violation(c, "AIO %s op=%u: size %u, expected %d", aio_name(type), op, size,
                             want_size);
        if (rd(c, pl, size, aio_name(type), 0) < 0)
            return -1;
        if (c->w.active) {
            if (type != A_IO || op != c->w.op)
                return violation(c, "AIO %s op=%u while write op=%u has %u of %u bytes (its "
                                 "fragments must follow back to back)", aio_name(type), op,
                                 c->w.op, c->w.next, c->w.total);
            if ((uint32_t)get64(pl + 8) != 0)
                return violation(c, "IO op=%u: continuation fragment of a write has direction "
                                 "%u", op, (uint32_t)get64(pl + 8));
            if (do_write_fragment(c, op, pl) < 0)
                return -1;
            continue;
        }
        if (op != c->next_op)
            return violation(c, "AIO %s: opId %u, expected %u (counter from 0, +1 per request)",
                             aio_name(type), op, c->next_op);
        c->next_op++;
        if (state < 3 && type != (uint32_t)(state == 0 ? A_OPEN_SESSION
                                            : state == 1 ? A_SET_SOCK_OPTS : A_SET_RES_POOL))
            return violation(c, "AIO %s op=%u where %s is expected (prologue)", aio_name(type), op,
                             want[state]);
        int z;
        switch (type) {
        case A_OPEN_SESSION: {
            if (state != 0)
                return violation(c, "second OPEN_SESSION op=%u", op);
            uint32_t bs = get32(pl + 4), bc = get32(pl + 8);
            if (get32(pl) || get32(pl + 12))
                return violation(c, "OPEN_SESSION op=%u: @0=%u @12=%u must be 0", op, get32(pl),
                                 get32(pl + 12));
            logm(c, "< AIO OPEN_SESSION op=%u size=16 bufSize=%u bufCount=%u", op, bs, bc);
            if (inject_close(c, S_AIO) < 0)
                return -1;
            if (bs == 0 && bc == 0) {
                logm(c, "NOTE: all-zero OPEN_SESSION (old client): 64 KiB x 1");
                bs = KIB64;
                bc = 1;
            } else if (bs == 0) {
                logm(c, "NOTE: bufSize 0 taken as 64 KiB");
                bs = KIB64;
            }
            if (bs % KIB64 || bs > MAX_BUF) {
                char why[100];
                snprintf(why, sizeof why, "bufSize %u is not a multiple of 64 KiB <= 2 MiB", bs);
                logm(c, "REFUSED: %s", why);
                send_error(c, op, E_INVALID_ARG, why);
                kill_conn(c);
                return -1;
            }
            if (bc == 0)
                return violation(c, "OPEN_SESSION op=%u: bufCount 0 with bufSize %u", op, bs);
            c->buf_size = bs;
            c->buf_count = bc;
            c->enc_cap = bs;
            for (int k = 1; k <= 3; k++) {
                size_t b = nfc_codec_bound(k, bs);
                if (b > c->enc_cap)
                    c->enc_cap = b;
            }
            c->raw = malloc(bs);
            c->enc = malloc(c->enc_cap);
            if (!c->raw || !c->enc) {
                logm(c, "out of memory");
                return -1;
            }
            unsigned char rp[16] = { 0 };
            char d[80];
            snprintf(d, sizeof d, "(bufSize %u, bufCount %u accepted)", bs, bc);
            if (send_aio(c, A_OPEN_SESSION, op, rp, 16, NULL, 0, d) < 0)
                return -1;
            state = 1;
            break;
        }
        case A_SET_SOCK_OPTS: {
            if (state != 1)
                return violation(c, "SET_SOCK_OPTS op=%u outside the prologue", op);
            if ((z = nonzero_at(pl, 0, 12)) >= 0)
                return violation(c, "SET_SOCK_OPTS op=%u: byte @%d is non-zero", op, z);
            logm(c, "< AIO SET_SOCK_OPTS op=%u size=12", op);
            unsigned char rp[12];
            put32(rp, 1675000);
            put32(rp + 4, 1675000);
            put32(rp + 8, 1);
            if (send_aio(c, A_SET_SOCK_OPTS, op, rp, 12, NULL, 0, "snd=1675000 rcv=1675000 1") < 0)
                return -1;
            state = 2;
            break;
        }
        case A_SET_RES_POOL: {
            if (state != 2)
                return violation(c, "SET_RES_POOL op=%u outside the prologue", op);
            if (get32(pl) != 1)
                return violation(c, "SET_RES_POOL op=%u: value %u, expected 1", op, get32(pl));
            logm(c, "< AIO SET_RES_POOL op=%u size=4 value=1", op);
            unsigned char rp[4];
            put32(rp, 1);
            if (send_aio(c, A_SET_RES_POOL, op, rp, 4, NULL, 0, "value=1 (echo)") < 0)
                return -1;
            state = 3;
            break;
        }
        case A_OPEN_FILE:
            if (do_open_file(c, op, pl) < 0)
                return -1;
            break;
        case A_IO: {
            uint32_t d = (uint32_t)get64(pl + 8);
            if (d == 1) {
                if (do_read(c, op, pl) < 0)
                    return -1;
            } else if (d == 0) {
                if (do_write_fragment(c, op, pl) < 0)
                    return -1;
            } else {
                return violation(c, "IO op=%u: direction %u (1 read, 0 write)", op, d);
            }
            break;
        }
        case A_DDB_GET:
            if (do_ddb_get(c, op, pl) < 0)
                return -1;
            break;
        case A_QAB:
            if (do_qab(c, op, pl) < 0)
                return -1;
            break;
        case A_CLOSE_FILE:
            if (do_close_file(c, op, pl) < 0)
                return -1;
            break;
        case A_CLOSE_SESSION: {
            if (get32(pl))
                return violation(c, "CLOSE_SESSION op=%u: value %u must be 0", op, get32(pl));
            logm(c, "< AIO CLOSE_SESSION op=%u size=4", op);
            if (c->handles)
                return violation(c, "CLOSE_SESSION op=%u with file(s) still open (first: %s, "
                                 "handle 0x%" PRIx64 ")", op, c->handles->path, c->handles->id);
            if (wait_idle(c, NULL) < 0)
                return -1;
            unsigned char rp[4] = { 0 };
            c->phase = 3;
            if (send_aio(c, A_CLOSE_SESSION, op, rp, 4, NULL, 0, "0") < 0)
                return -1;
            return session_end(c);
        }
        }
        if (atomic_load(&c->dead))
            return -1;
    }
}

/* ---- connection thread -------------------------------------------------- */

static void conn_free(struct conn *c)
{
    ticket_free(&c->t);
    free(c->raw);
    free(c->enc);
    pthread_mutex_destroy(&c->send_lock);
    pthread_cond_destroy(&c->sent);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->jobs);
    free(c);
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    logm(c, "accepted %s%s", c->s.peer, c->faults ? "" : " (failure injection off: once)");
    if (inject_close(c, S_ACCEPT) == 0 && authd(c) == 0 && classic(c) == 0)
        aio(c);
    kill_conn(c);
    pthread_mutex_lock(&g_mu);
    for (struct conn **pp = &g_conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&g_mu);
    /* Stop the workers (they drop queued reads once dead is set); one stuck
     * sending to a client that does not read is freed by a full shutdown. */
    pthread_mutex_lock(&c->mu);
    c->stop_workers = 1;
    pthread_cond_broadcast(&c->jobs);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    while (c->alive > 0)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0) {
            pthread_mutex_unlock(&c->mu);
            net_shutdown(&c->s);
            pthread_mutex_lock(&c->mu);
            while (c->alive > 0)
                pthread_cond_wait(&c->cv, &c->mu);
        }
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    c->nworkers = 0;
    /* Flush and close the disks before the client sees the close. */
    while (c->handles) {
        int rc;
        logm(c, "closing %s (handle 0x%" PRIx64 ") at the end of the connection",
             c->handles->path, c->handles->id);
        close_handle(c, c->handles, &rc);
    }
    net_tls_abandon(&c->s);
    net_close(&c->s);
    logm(c, "connection closed");
    conn_free(c);
    pthread_mutex_lock(&g_mu);
    g_active--;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

/* ---- main --------------------------------------------------------------- */

static void on_signal(int sig)
{
    (void)sig;
    char b = 1;
    if (write(stop_pipe[1], &b, 1) < 0) {
        /* nothing to do */
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: nfcd --listen HOST:PORT --port-file FILE --cert CERT --key KEY "
                    "--tickets DIR [--log FILE] [--fail SPEC]... [--no-shuffle] [--quiet] "
                    "[--lib-version N] [--seed N] [--idle-timeout SEC]\n");
    exit(2);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 0);
    if (errno || e == s || *e || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static int parse_fail(const char *spec)
{
    if (strcmp(spec, "once") == 0) {
        opt.once = 1;
        return 0;
    }
    if (opt.nrules >= (int)(sizeof opt.rules / sizeof opt.rules[0]))
        return -1;
    struct fail_rule r = { 0 };
    const char *rest;
    if (strncmp(spec, "close-at=", 9) == 0) {
        r.kind = F_CLOSE;
        rest = spec + 9;
    } else if (strncmp(spec, "error-at=", 9) == 0) {
        r.kind = F_ERROR;
        rest = spec + 9;
    } else if (strncmp(spec, "stall-at=", 9) == 0) {
        r.kind = F_STALL;
        rest = spec + 9;
    } else {
        return -1;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", rest);
    char *parts[4] = { 0 };
    int np = 0;
    for (char *p = strtok(buf, ":"); p && np < 4; p = strtok(NULL, ":"))
        parts[np++] = p;
    if (np == 0)
        return -1;
    r.step = -1;
    for (int i = 0; i < (int)(sizeof step_names / sizeof step_names[0]); i++)
        if (strcmp(parts[0], step_names[i]) == 0)
            r.step = i;
    if (r.step < 0)
        return -1;
    unsigned long long v;
    int counted = r.step == S_READ || r.step == S_WRITE;
    if (r.kind == F_CLOSE) {
        if (counted ? np != 2 : np != 1)
            return -1;
        if (counted) {
            if (parse_uint(parts[1], UINT32_MAX, &v) < 0 || v == 0)
                return -1;
            r.n = (unsigned)v;
        }
    } else if (r.kind == F_ERROR) {
        if (r.step == S_OPEN) {
            if (np != 2 || parse_uint(parts[1], UINT32_MAX, &v) < 0)
                return -1;
            r.code = (uint32_t)v;
        } else if (counted) {
            if (np != 3 || parse_uint(parts[1], UINT32_MAX, &v) < 0 || v == 0)
                return -1;
            r.n = (unsigned)v;
            if (parse_uint(parts[2], UINT32_MAX, &v) < 0)
                return -1;
            r.code = (uint32_t)v;
        } else {
            return -1;
        }
    } else {
        if (r.step != S_READ || np != 2 || parse_uint(parts[1], UINT32_MAX, &v) < 0 || v == 0)
            return -1;
        r.n = (unsigned)v;
    }
    opt.rules[opt.nrules++] = r;
    return 0;
}

static int cert_fingerprint(const char *path)
{
    gnutls_datum_t data = { NULL, 0 };
    gnutls_x509_crt_t crt;
    if (gnutls_load_file(path, &data) < 0)
        return -1;
    int ok = gnutls_x509_crt_init(&crt) >= 0;
    if (ok) {
        unsigned char fp[32];
        size_t n = sizeof fp;
        ok = gnutls_x509_crt_import(crt, &data, GNUTLS_X509_FMT_PEM) >= 0 &&
             gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &n) >= 0 && n == 32;
        if (ok)
            net_tls_format_fp(fp, 32, cert_sha256);
        gnutls_x509_crt_deinit(crt);
    }
    gnutls_free(data.data);
    return ok ? 0 : -1;
}

static int write_port_file(unsigned port)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", opt.port_file, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, opt.port_file) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long n;
        if (strcmp(a, "--no-shuffle") == 0) {
            opt.no_shuffle = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            g_quiet = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--listen") == 0)
            opt.listen = v;
        else if (strcmp(a, "--port-file") == 0)
            opt.port_file = v;
        else if (strcmp(a, "--cert") == 0)
            opt.cert = v;
        else if (strcmp(a, "--key") == 0)
            opt.key = v;
        else if (strcmp(a, "--tickets") == 0)
            opt.tickets = v;
        else if (strcmp(a, "--log") == 0)
            opt.log = v;
        else if (strcmp(a, "--fail") == 0) {
            if (parse_fail(v) < 0) {
                fprintf(stderr, "nfcd: bad --fail spec '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--lib-version") == 0) {
            if (parse_uint(v, 1000, &n) < 0 || n == 0)
                usage();
            opt.lib_version = (unsigned)n;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_uint(v, UINT64_MAX, &n) < 0)
                usage();
            opt.seed = n;
            opt.seed_set = 1;
        } else if (strcmp(a, "--idle-timeout") == 0) {
            if (parse_uint(v, 86400, &n) < 0 || n == 0)
                usage();
            opt.idle_ms = (int)n * 1000;
        } else {
            usage();
        }
    }
    if (!opt.listen || !opt.port_file || !opt.cert || !opt.key || !opt.tickets)
        usage();
    t0_ms = net_now_ms();
    g_log = stderr;
    if (opt.log && !(g_log = fopen(opt.log, "a"))) {
        fprintf(stderr, "nfcd: %s: %s\n", opt.log, strerror(errno));
        return 1;
    }
    if (!opt.seed_set) {
        int fd = open("/dev/urandom", O_RDONLY);
        if (fd < 0 || read(fd, &opt.seed, sizeof opt.seed) != (ssize_t)sizeof opt.seed)
            opt.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
        if (fd >= 0)
            close(fd);
    }
    const char *colon = strrchr(opt.listen, ':');
    unsigned long long port;
    if (!colon || parse_uint(colon + 1, 65535, &port) < 0) {
        fprintf(stderr, "nfcd: --listen wants HOST:PORT\n");
        return 2;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - opt.listen), opt.listen);
    if (host[0] == '[') {   /* [::1]:0 */
        size_t hl = strlen(host);
        if (hl > 2 && host[hl - 1] == ']') {
            memmove(host, host + 1, hl - 2);
            host[hl - 2] = '\0';
        }
    }
    if (net_tls_server_new(opt.cert, opt.key, NULL, NULL, &tls_srv) < 0) {
        fprintf(stderr, "nfcd: %s\n", vd_err_msg());
        return 1;
    }
    if (cert_fingerprint(opt.cert) < 0) {
        fprintf(stderr, "nfcd: cannot read the certificate %s\n", opt.cert);
        return 1;
    }
    if (pipe(stop_pipe) < 0) {
        perror("nfcd: pipe");
        return 1;
    }
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int fds[8];
    unsigned bound = 0;
    int nfds = net_listen_tcp(host[0] ? host : NULL, (unsigned)port, fds, 8, &bound);
    if (nfds < 0) {
        fprintf(stderr, "nfcd: %s\n", vd_err_msg());
        return 1;
    }
    logm(NULL, "nfcd listening on %s port %u (lib version %u, %s, seed %" PRIu64 ", %d failure "
         "rule(s)%s); certificate SHA-256 %s", host, bound, opt.lib_version,
         opt.no_shuffle ? "no shuffle" : "shuffled/interleaved reads", opt.seed, opt.nrules,
         opt.once ? ", once" : "", cert_sha256);
    for (int i = 0; i < opt.nrules; i++)
        logm(NULL, "failure rule: %s-at=%s n=%u code=%u",
             opt.rules[i].kind == F_CLOSE ? "close" : opt.rules[i].kind == F_ERROR ? "error"
                                                                                   : "stall",
             step_names[opt.rules[i].step], opt.rules[i].n, opt.rules[i].code);
    if (write_port_file(bound) < 0) {
        fprintf(stderr, "nfcd: cannot write %s: %s\n", opt.port_file, strerror(errno));
        return 1;
    }

    struct pollfd pfd[9];
    for (;;) {
        for (int i = 0; i < nfds; i++)
            pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        pfd[nfds] = (struct pollfd){ .fd = stop_pipe[0], .events = POLLIN };
        int r = poll(pfd, (nfds_t)nfds + 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (pfd[nfds].revents & POLLIN))
            break;
        for (int i = 0; i < nfds; i++) {
            if (!(pfd[i].revents & POLLIN))
                continue;
            int fd = accept(fds[i], NULL, NULL);
            if (fd < 0)
                continue;
            net_socket_setup(fd);
            struct conn *c = calloc(1, sizeof *c);
            if (!c) {
                close(fd);
                continue;
            }
            char peer[160];
            net_peer_name(fd, peer, sizeof peer);
            net_stream_init(&c->s, fd, peer);
            c->s.rd_timeout_ms = opt.idle_ms;
            c->s.wr_timeout_ms = 60000;
            pthread_mutex_init(&c->send_lock, NULL);
            pthread_cond_init(&c->sent, NULL);
            pthread_mutex_init(&c->mu, NULL);
            pthread_cond_init(&c->cv, NULL);
            pthread_cond_init(&c->jobs, NULL);
            pthread_mutex_lock(&g_mu);
            c->id = ++g_next_id;
            c->faults = !opt.once || c->id == 1;
            uint64_t sd = opt.seed ^ (uint64_t)c->id * 0x9E3779B97F4A7C15ull;
            c->rng = splitmix(&sd);
            c->next = g_conns;
            g_conns = c;
            g_active++;
            pthread_mutex_unlock(&g_mu);
            pthread_attr_t at;
            pthread_attr_init(&at);
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            pthread_t th;
            if (pthread_create(&th, &at, conn_main, c) != 0) {
                pthread_mutex_lock(&g_mu);
                g_conns = c->next;
                g_active--;
                pthread_mutex_unlock(&g_mu);
                close(fd);
                pthread_mutex_destroy(&c->send_lock);
                pthread_cond_destroy(&c->sent);
                pthread_mutex_destroy(&c->mu);
                pthread_cond_destroy(&c->cv);
                pthread_cond_destroy(&c->jobs);
                free(c);
            }
            pthread_attr_destroy(&at);
        }
    }
    logm(NULL, "stopping: dropping %d connection(s)", g_active);
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    pthread_mutex_lock(&g_mu);
    for (struct conn *c = g_conns; c; c = c->next)
        kill_conn(c);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    while (g_active > 0)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &dl) != 0)
            break;
    int left = g_active;
    pthread_mutex_unlock(&g_mu);
    if (left) {
        logm(NULL, "%d connection(s) did not end in 20 s", left);
        return 1;
    }
    net_tls_server_free(tls_srv);
    logm(NULL, "stopped");
    if (g_log != stderr)
        fclose(g_log);
    close(stop_pipe[0]);
    close(stop_pipe[1]);
    return 0;
}
