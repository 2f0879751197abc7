/* nbd_proto.c - NBD message encoders and decoders (no I/O). */
#include <stdlib.h>
#include <string.h>

#include "nbd_proto.h"

void nbd_enc_hello(unsigned char out[NBD_HELLO_LEN], uint16_t flags)
{
    nbd_put64(out, NBD_MAGIC);
    nbd_put64(out + 8, NBD_OPT_MAGIC);
    nbd_put16(out + 16, flags);
}

void nbd_enc_option(unsigned char out[NBD_OPT_HDR_LEN], uint32_t opt, uint32_t len)
{
    nbd_put64(out, NBD_OPT_MAGIC);
    nbd_put32(out + 8, opt);
    nbd_put32(out + 12, len);
}

void nbd_enc_opt_reply(unsigned char out[NBD_REP_HDR_LEN], uint32_t opt, uint32_t type,
                       uint32_t len)
{
    nbd_put64(out, NBD_REP_MAGIC);
    nbd_put32(out + 8, opt);
    nbd_put32(out + 12, type);
    nbd_put32(out + 16, len);
}

void nbd_enc_request(unsigned char out[NBD_REQ_LEN], const struct nbd_request *r)
{
    nbd_put32(out, NBD_REQUEST_MAGIC);
    nbd_put16(out + 4, r->flags);
    nbd_put16(out + 6, r->type);
    nbd_put64(out + 8, r->cookie);
    nbd_put64(out + 16, r->offset);
    nbd_put32(out + 24, r->length);
}

void nbd_enc_simple_reply(unsigned char out[NBD_SIMPLE_REPLY_LEN], uint32_t error,
                          uint64_t cookie)
{
    nbd_put32(out, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(out + 4, error);
    nbd_put64(out + 8, cookie);
}

void nbd_enc_chunk(unsigned char out[NBD_CHUNK_HDR_LEN], const struct nbd_chunk *c)
{
    nbd_put32(out, NBD_STRUCT_REPLY_MAGIC);
    nbd_put16(out + 4, c->flags);
    nbd_put16(out + 6, c->type);
    nbd_put64(out + 8, c->cookie);
    nbd_put32(out + 16, c->length);
}

int nbd_dec_option(const unsigned char in[NBD_OPT_HDR_LEN], uint32_t *opt, uint32_t *len)
{
    if (nbd_get64(in) != NBD_OPT_MAGIC)
        return -1;
    *opt = nbd_get32(in + 8);
    *len = nbd_get32(in + 12);
    return 0;
}

int nbd_dec_opt_reply(const unsigned char in[NBD_REP_HDR_LEN], struct nbd_opt_reply *r)
{
    if (nbd_get64(in) != NBD_REP_MAGIC)
        return -1;
    r->opt = nbd_get32(in + 8);
    r->type = nbd_get32(in + 12);
    r->length = nbd_get32(in + 16);
    return 0;
}

int nbd_dec_request(const unsigned char in[NBD_REQ_LEN], struct nbd_request *r)
{
    if (nbd_get32(in) != NBD_REQUEST_MAGIC)
        return -1;
    r->flags = nbd_get16(in + 4);
    r->type = nbd_get16(in + 6);
    r->cookie = nbd_get64(in + 8);
    r->offset = nbd_get64(in + 16);
    r->length = nbd_get32(in + 24);
    return 0;
}

void nbd_dec_simple_rest(const unsigned char in[12], uint32_t *error, uint64_t *cookie)
{
    *error = nbd_get32(in);
    *cookie = nbd_get64(in + 4);
}

void nbd_dec_chunk_rest(const unsigned char in[16], struct nbd_chunk *c)
{
    c->flags = nbd_get16(in);
    c->type = nbd_get16(in + 2);
    c->cookie = nbd_get64(in + 4);
    c->length = nbd_get32(in + 12);
}

/* ---- cursor ------------------------------------------------------------ */

void nbd_cur_init(struct nbd_cur *c, const void *p, size_t len)
{
    c->p = p;
    c->left = len;
    c->bad = 0;
}

static const unsigned char *take(struct nbd_cur *c, size_t n)
{
    if (c->bad || c->left < n) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

uint16_t nbd_cur_u16(struct nbd_cur *c)
{
    const unsigned char *p = take(c, 2);
    return p ? nbd_get16(p) : 0;
}

uint32_t nbd_cur_u32(struct nbd_cur *c)
{
    const unsigned char *p = take(c, 4);
    return p ? nbd_get32(p) : 0;
}

uint64_t nbd_cur_u64(struct nbd_cur *c)
{
    const unsigned char *p = take(c, 8);
    return p ? nbd_get64(p) : 0;
}

char *nbd_cur_str(struct nbd_cur *c, uint32_t n)
{
    if (n > NBD_MAX_STRING) {
        c->bad = 1;
        return NULL;
    }
    const unsigned char *p = take(c, n);
    if (!p || memchr(p, 0, n)) {
        c->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->bad = 1;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* ---- output buffer ------------------------------------------------------- */

static unsigned char *grow(struct nbd_buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    unsigned char *at = b->p + b->len;
    b->len += n;
    return at;
}

void nbd_buf_u16(struct nbd_buf *b, uint16_t v)
{
    unsigned char *p = grow(b, 2);
    if (p)
        nbd_put16(p, v);
}

void nbd_buf_u32(struct nbd_buf *b, uint32_t v)
{
    unsigned char *p = grow(b, 4);
    if (p)
        nbd_put32(p, v);
}

void nbd_buf_u64(struct nbd_buf *b, uint64_t v)
{
    unsigned char *p = grow(b, 8);
    if (p)
        nbd_put64(p, v);
}

void nbd_buf_mem(struct nbd_buf *b, const void *src, size_t n)
{
    unsigned char *p = grow(b, n);
    if (p && n)
        memcpy(p, src, n);
}

void nbd_buf_free(struct nbd_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- names --------------------------------------------------------------- */

const char *nbd_opt_name(uint32_t opt)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME: return "EXPORT_NAME";
    case NBD_OPT_ABORT: return "ABORT";
    case NBD_OPT_LIST: return "LIST";
    case NBD_OPT_STARTTLS: return "STARTTLS";
    case NBD_OPT_INFO: return "INFO";
    case NBD_OPT_GO: return "GO";
    case NBD_OPT_STRUCTURED_REPLY: return "STRUCTURED_REPLY";
    case NBD_OPT_LIST_META_CONTEXT: return "LIST_META_CONTEXT";
    case NBD_OPT_SET_META_CONTEXT: return "SET_META_CONTEXT";
    case NBD_OPT_EXTENDED_HEADERS: return "EXTENDED_HEADERS";
    default: return "unknown option";
    }
}

const char *nbd_cmd_name(uint16_t cmd)
{
    switch (cmd) {
    case NBD_CMD_READ: return "READ";
    case NBD_CMD_WRITE: return "WRITE";
    case NBD_CMD_DISC: return "DISC";
    case NBD_CMD_FLUSH: return "FLUSH";
    case NBD_CMD_TRIM: return "TRIM";
    case NBD_CMD_CACHE: return "CACHE";
    case NBD_CMD_WRITE_ZEROES: return "WRITE_ZEROES";
    case NBD_CMD_BLOCK_STATUS: return "BLOCK_STATUS";
    default: return "unknown command";
    }
}

const char *nbd_rep_name(uint32_t type)
{
    switch (type) {
    case NBD_REP_ACK: return "ACK";
    case NBD_REP_SERVER: return "SERVER";
    case NBD_REP_INFO: return "INFO";
    case NBD_REP_META_CONTEXT: return "META_CONTEXT";
    case NBD_REP_ERR_UNSUP: return "ERR_UNSUP";
    case NBD_REP_ERR_POLICY: return "ERR_POLICY";
    case NBD_REP_ERR_INVALID: return "ERR_INVALID";
    case NBD_REP_ERR_PLATFORM: return "ERR_PLATFORM";
    case NBD_REP_ERR_TLS_REQD: return "ERR_TLS_REQD";
    case NBD_REP_ERR_UNKNOWN: return "ERR_UNKNOWN";
    case NBD_REP_ERR_SHUTDOWN: return "ERR_SHUTDOWN";
    case NBD_REP_ERR_BLOCK_SIZE_REQD: return "ERR_BLOCK_SIZE_REQD";
    case NBD_REP_ERR_TOO_BIG: return "ERR_TOO_BIG";
    default: return "unknown reply";
    }
}

const char *nbd_err_name(uint32_t err)
{
    switch (err) {
    case 0: return "success";
    case NBD_EPERM: return "EPERM";
    case NBD_EIO: return "EIO";
    case NBD_ENOMEM: return "ENOMEM";
    case NBD_EINVAL: return "EINVAL";
    case NBD_ENOSPC: return "ENOSPC";
    case NBD_EOVERFLOW: return "EOVERFLOW";
    case NBD_ENOTSUP: return "ENOTSUP";
    case NBD_ESHUTDOWN: return "ESHUTDOWN";
    default: return "unknown error";
    }
}
