/* https_fs.c - datastore files over the host's file service, as a vd_fs.
 *
 * A file "[ds] dir/x.vmdk" of datacenter DC is
 * https://HOST/folder/dir/x.vmdk?dcPath=DC&dsName=ds.  Open asks for its
 * size (HEAD); a read is one HTTP Range GET, or for a large read several
 * GETs of range_bytes with up to `parallel` in flight.  Every handle uses
 * the session's shared connection pool, so connections stay alive from
 * one read to the next.  The session cookie goes with every request (real
 * hosts require it); a 401 logs in again once. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vs_priv.h"
#include "../util/err.h"
#include "../util/fileio.h"
#include "../util/log.h"
#include "../util/vfile.h"

#define POOL_MAX 32

struct hfs {
    struct vd_fs fs;
    struct vs_session *s;
    char *dc_esc;                 /* URL-escaped datacenter path */
    pthread_mutex_t lock;
    CURL *pool[POOL_MAX];         /* idle easy handles */
    int npool;
    _Atomic unsigned long nget, nconn;  /* range requests, connections they opened */
};

struct hfile {
    struct vd_file f;
    struct hfs *fs;
    char *url;
    uint64_t size;
};

static CURL *handle_get(struct hfs *fs)
{
    pthread_mutex_lock(&fs->lock);
    CURL *h = fs->npool ? fs->pool[--fs->npool] : NULL;
    pthread_mutex_unlock(&fs->lock);
    if (!h)
        h = curl_easy_init();
    return h;
}

static void handle_put(struct hfs *fs, CURL *h)
{
    pthread_mutex_lock(&fs->lock);
    if (fs->npool < POOL_MAX) {
        fs->pool[fs->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&fs->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one ranged request ------------------------------------------------ */

struct piece {
    char *dst;
    size_t want, got;
    uint64_t off;
    int64_t range_start;          /* from Content-Range; -1 when absent */
    CURL *h;
    char errbuf[CURL_ERROR_SIZE];
    char range[64];
    char *cookie;
    unsigned gen;
    int tries;
};

static size_t piece_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct piece *p = ctx;
    size_t n = size * nmemb;
    size_t room = p->want - p->got;
    size_t take = n < room ? n : room;
    memcpy(p->dst + p->got, data, take);
    p->got += take;
    return take == n ? n : 0;     /* more than asked: stop the transfer */
}

static size_t piece_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct piece *p = ctx;
    size_t n = size * nmemb;
    static const char key[] = "content-range:";
    if (n > sizeof key && strncasecmp(data, key, sizeof key - 1) == 0) {
        char line[128];
        size_t l = n - (sizeof key - 1) < sizeof line - 1 ? n - (sizeof key - 1)
                                                          : sizeof line - 1;
        memcpy(line, data + sizeof key - 1, l);
        line[l] = '\0';
        unsigned long long a;
        if (sscanf(line, " bytes %llu-", &a) == 1)
            p->range_start = (int64_t)a;
    }
    return n;
}

/* Called for every connection a file request opens: counts them. */
static int count_socket(void *ctx, curl_socket_t fd, curlsocktype purpose)
{
    (void)fd;
    (void)purpose;
    atomic_fetch_add(&((struct hfs *)ctx)->nconn, 1);
    return CURL_SOCKOPT_OK;
}

static int piece_setup(struct hfile *hf, struct piece *p)
{
    struct hfs *fs = hf->fs;
    if (!p->h && !(p->h = handle_get(fs)))
        return vd_err_set(VD_E_NOMEM, "out of memory");
    vs_curl_setup_again(fs->s, p->h);
    free(p->cookie);
    p->cookie = vs_cookie_get(fs->s, &p->gen);
    p->got = 0;
    p->range_start = -1;
    p->errbuf[0] = '\0';
    snprintf(p->range, sizeof p->range, "%" PRIu64 "-%" PRIu64, p->off, p->off + p->want - 1);
    curl_easy_setopt(p->h, CURLOPT_URL, hf->url);
    curl_easy_setopt(p->h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(p->h, CURLOPT_RANGE, p->range);
    curl_easy_setopt(p->h, CURLOPT_COOKIE, p->cookie);
    curl_easy_setopt(p->h, CURLOPT_WRITEFUNCTION, piece_body);
    curl_easy_setopt(p->h, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(p->h, CURLOPT_HEADERFUNCTION, piece_header);
    curl_easy_setopt(p->h, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(p->h, CURLOPT_ERRORBUFFER, p->errbuf);
    curl_easy_setopt(p->h, CURLOPT_PRIVATE, p);
    curl_easy_setopt(p->h, CURLOPT_SOCKOPTFUNCTION, count_socket);
    curl_easy_setopt(p->h, CURLOPT_SOCKOPTDATA, fs);
    return 0;
}

/* Judge a finished piece: 0 done, 1 retry (after a new login), <0 error. */
static int piece_done(struct hfile *hf, struct piece *p, CURLcode cc)
{
    struct vs_session *s = hf->fs->s;
    long status = 0;
    curl_easy_getinfo(p->h, CURLINFO_RESPONSE_CODE, &status);
    atomic_fetch_add(&hf->fs->nget, 1);
    char what[600];
    snprintf(what, sizeof what, "reading %s at offset %" PRIu64, hf->f.path, p->off);
    if (cc == CURLE_WRITE_ERROR && p->got == p->want && status == 200 && p->off == 0)
        cc = CURLE_OK;   /* a server that ignores Range: we stopped it at what we need */
    if (cc != CURLE_OK)
        return vs_curl_fail(s, p->h, cc, p->errbuf, 1, what);
    if ((status == 401 || status == 403) && p->tries++ == 0) {
        int rc = vs_relogin(s, p->gen);
        return rc < 0 ? rc : 1;
    }
    if (status == 401 || status == 403)
        return vd_err_set(VD_E_AUTH, "server %s: %s: HTTP %ld after logging in again", s->peer,
                          what, status);
    if (status == 404)
        return vd_err_set(VD_E_NOTFOUND, "server %s: %s: the file is gone (HTTP 404)", s->peer,
                          what);
    if (status == 416)
        return vd_err_set(VD_E_IO, "server %s: %s: past the end of the file (HTTP 416; it was "
                          "%" PRIu64 " bytes when opened)", s->peer, what, hf->size);
    if (status == 503)
        return vd_err_set(VD_E_NET_SHUTDOWN, "server %s: %s: service unavailable (HTTP 503)",
                          s->peer, what);
    if (status != 206 && !(status == 200 && p->off == 0))
        return vd_err_set(VD_E_IO, "server %s: %s: HTTP %ld", s->peer, what, status);
    if (status == 206 && p->range_start != (int64_t)p->off)
        return vd_err_set(VD_E_IO, "server %s: %s: the server answered a different range "
                          "(starting at %" PRId64 ")", s->peer, what, p->range_start);
    if (p->got != p->want)
        return vd_err_set(VD_E_NET_LOST, "server %s: %s: the answer ended after %zu of %zu "
                          "bytes", s->peer, what, p->got, p->want);
    return 0;
}

static void piece_release(struct hfs *fs, struct piece *p)
{
    if (p->h) {
        curl_easy_setopt(p->h, CURLOPT_ERRORBUFFER, NULL);
        handle_put(fs, p->h);
    }
    p->h = NULL;
    free(p->cookie);
    p->cookie = NULL;
}

static int read_one(struct hfile *hf, char *dst, size_t len, uint64_t off)
{
    struct piece p;
    memset(&p, 0, sizeof p);
    p.dst = dst;
    p.want = len;
    p.off = off;
    int rc;
    do {
        rc = piece_setup(hf, &p);
        if (rc < 0)
            break;
        rc = piece_done(hf, &p, curl_easy_perform(p.h));
    } while (rc == 1);
    piece_release(hf->fs, &p);
    return rc;
}

/* Several ranges in flight on as many connections. */
static int read_many(struct hfile *hf, char *dst, size_t len, uint64_t off)
{
    struct hfs *fs = hf->fs;
    size_t step = fs->s->range_bytes;
    size_t n = (len + step - 1) / step;
    struct piece *ps = calloc(n, sizeof *ps);
    CURLM *m = curl_multi_init();
    if (!ps || !m) {
        free(ps);
        if (m)
            curl_multi_cleanup(m);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)VS_MAX_CONNECTIONS);
    for (size_t i = 0; i < n; i++) {
        ps[i].dst = dst + i * step;
        ps[i].off = off + i * step;
        ps[i].want = i + 1 < n ? step : len - i * step;
    }
    size_t next = 0, running = 0;
    int rc = 0;
    unsigned limit = fs->s->parallel;
    while (rc == 0 && (next < n || running > 0)) {
        while (rc == 0 && next < n && running < limit) {
            if ((rc = piece_setup(hf, &ps[next])) < 0)
                break;
            curl_multi_add_handle(m, ps[next].h);
            next++;
            running++;
        }
        if (rc < 0)
            break;
        int still = 0;
        CURLMcode mc = curl_multi_perform(m, &still);
        if (mc == CURLM_OK)
            mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
        if (mc != CURLM_OK) {
            rc = vd_err_set(VD_E_NET_LOST, "server %s: reading %s: %s", fs->s->peer, hf->f.path,
                            curl_multi_strerror(mc));
            break;
        }
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct piece *p = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
            CURLcode cc = msg->data.result;
            curl_multi_remove_handle(m, p->h);
            running--;
            int r = piece_done(hf, p, cc);
            if (r == 1) {           /* logged in again: send it once more */
                if ((r = piece_setup(hf, p)) == 0) {
                    curl_multi_add_handle(m, p->h);
                    running++;
                }
            }
            if (r < 0 && rc == 0)
                rc = r;
            if (r <= 0)
                piece_release(fs, p);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (ps[i].h) {
            curl_multi_remove_handle(m, ps[i].h);
            piece_release(fs, &ps[i]);
        }
        free(ps[i].cookie);
    }
    curl_multi_cleanup(m);
    free(ps);
    return rc;
}

/* ---- vd_file ------------------------------------------------------------ */

static int hf_pread(struct vd_file *f, void *buf, size_t len, uint64_t off, int eof_is_error)
{
    struct hfile *hf = f->impl;
    size_t avail = off >= hf->size ? 0 : hf->size - off < len ? (size_t)(hf->size - off) : len;
    if (avail < len) {
        if (eof_is_error)
            return vd_err_set(VD_E_CORRUPT, "%s: %zu bytes at offset %" PRIu64 " are past the "
                              "end of the file (%" PRIu64 " bytes)", f->path, len, off,
                              hf->size);
        memset((char *)buf + avail, 0, len - avail);
    }
    if (avail == 0)
        return 0;
    if (avail > hf->fs->s->range_bytes && hf->fs->s->parallel > 1)
        return read_many(hf, buf, avail, off);
    return read_one(hf, buf, avail, off);
}

static int hf_size(struct vd_file *f, uint64_t *size)
{
    *size = ((struct hfile *)f->impl)->size;
    return 0;
}

static void hf_close(struct vd_file *f)
{
    struct hfile *hf = f->impl;
    free(hf->url);
    free(f->path);
    free(hf);
}

static const struct vd_file_ops hfile_ops = { hf_pread, hf_size, hf_close };

/* HEAD: size of the file, VD_E_NOTFOUND when absent. */
static int head(struct hfs *fs, const char *path, const char *url, uint64_t *size)
{
    struct vs_session *s = fs->s;
    CURL *h = handle_get(fs);
    if (!h)
        return vd_err_set(VD_E_NOMEM, "out of memory");
    char errbuf[CURL_ERROR_SIZE];
    int rc = 0;
    for (int tries = 0;; tries++) {
        unsigned gen;
        char *cookie = vs_cookie_get(s, &gen);
        errbuf[0] = '\0';
        vs_curl_setup_again(s, h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h, CURLOPT_COOKIE, cookie);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode cc = curl_easy_perform(h);
        free(cookie);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        char what[600];
        snprintf(what, sizeof what, "opening %s", path);
        if (cc != CURLE_OK) {
            rc = vs_curl_fail(s, h, cc, errbuf, 1, what);
        } else if ((status == 401 || status == 403) && tries == 0) {
            if ((rc = vs_relogin(s, gen)) == 0)
                continue;
        } else if (status == 401 || status == 403) {
            rc = vd_err_set(VD_E_AUTH, "server %s: %s: HTTP %ld: the session may not read "
                            "this datastore", s->peer, what, status);
        } else if (status == 404) {
            rc = vd_err_set(VD_E_NOTFOUND, "%s: no such file on the datastore (server %s, "
                            "HTTP 404)", path, s->peer);
        } else if (status != 200) {
            rc = vd_err_set(VD_E_IO, "server %s: %s: HTTP %ld", s->peer, what, status);
        } else {
            curl_off_t cl = -1;
            curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
            if (cl < 0)
                rc = vd_err_set(VD_E_IO, "server %s: %s: the server gives no file size", s->peer,
                                what);
            else
                *size = (uint64_t)cl;
        }
        break;
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    handle_put(fs, h);
    return rc;
}

static char *file_url(struct hfs *fs, const char *path)
{
    char *ds, *rel;
    if (vs_split_ds_path(path, &ds, &rel) < 0)
        return NULL;
    char *erel = vs_url_escape(rel), *eds = vs_url_escape(ds);
    char *url = erel && eds ? vd_asprintf("%s/folder/%s?dcPath=%s&dsName=%s", fs->s->base, erel,
                                          fs->dc_esc, eds)
                            : NULL;
    if (!url && erel && eds)
        vd_err_set(VD_E_NOMEM, "out of memory");
    free(erel);
    free(eds);
    free(ds);
    free(rel);
    return url;
}

static int hfs_open(struct vd_fs *vfs, const char *path, struct vd_file **out)
{
    struct hfs *fs = vfs->impl;
    *out = NULL;
    char *url = file_url(fs, path);
    if (!url)
        return -vd_err_code();
    uint64_t size = 0;
    int rc = head(fs, path, url, &size);
    if (rc < 0) {
        free(url);
        return rc;
    }
    struct hfile *hf = calloc(1, sizeof *hf);
    if (!hf || !(hf->f.path = vd_strdup(path))) {
        free(hf);
        free(url);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    hf->f.ops = &hfile_ops;
    hf->f.fd = -1;
    hf->f.impl = hf;
    hf->fs = fs;
    hf->url = url;
    hf->size = size;
    *out = &hf->f;
    return 0;
}

static int hfs_exists(struct vd_fs *vfs, const char *path)
{
    struct hfs *fs = vfs->impl;
    char *url = file_url(fs, path);
    if (!url)
        return vd_err_code() == VD_E_INVAL ? 0 : -vd_err_code();
    uint64_t size;
    int rc = head(fs, path, url, &size);
    free(url);
    if (rc == -VD_E_NOTFOUND) {
        vd_err_clear();
        return 0;
    }
    return rc < 0 ? rc : 1;
}

static const struct vd_fs_ops hfs_ops = { "https", hfs_open, hfs_exists };

int vs_https_fs(struct vs_session *s, const char *dc_path, struct vd_fs **out)
{
    *out = NULL;
    struct hfs *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->dc_esc = vs_url_escape(dc_path))) {
        free(fs);
        return vd_err_set(VD_E_NOMEM, "out of memory");
    }
    pthread_mutex_init(&fs->lock, NULL);
    fs->s = s;
    fs->fs.ops = &hfs_ops;
    fs->fs.impl = fs;
    *out = &fs->fs;
    return 0;
}

void vs_https_fs_free(struct vd_fs *vfs)
{
    if (!vfs)
        return;
    struct hfs *fs = vfs->impl;
    unsigned long nget = atomic_load(&fs->nget), nconn = atomic_load(&fs->nconn);
    if (nget)
        vd_log("server %s: file service: %lu range requests on %lu new connections",
               fs->s->peer, nget, nconn);
    for (int i = 0; i < fs->npool; i++)
        curl_easy_cleanup(fs->pool[i]);
    pthread_mutex_destroy(&fs->lock);
    free(fs->dc_esc);
    free(fs);
}
