/* nbd_proto.h - the NBD wire protocol: constants, message layouts, and
 * encode/decode helpers shared by the server (nbd_server.c) and the client
 * (nbd_client.c).
 *
 * Everything on the wire is big-endian.  Decoders take a buffer of exactly
 * the fixed size of the message and never read past it; variable-length
 * payloads are parsed with a bounds-checked cursor (struct nbd_cur).  No
 * function here does I/O. */
#ifndef VD_NET_NBD_PROTO_H
#define VD_NET_NBD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* ---- handshake ------------------------------------------------------- */

#define NBD_MAGIC            0x4e42444d41474943ull   /* "NBDMAGIC" */
#define NBD_OPT_MAGIC        0x49484156454f5054ull   /* "IHAVEOPT" */
#define NBD_OLDSTYLE_MAGIC   0x0000420281861253ull
#define NBD_REP_MAGIC        0x0003e889045565a9ull

#define NBD_DEFAULT_PORT 10809

/* Handshake flags (server) and client flags. */
#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Options. */
enum {
    NBD_OPT_EXPORT_NAME = 1,
    NBD_OPT_ABORT = 2,
    NBD_OPT_LIST = 3,
    NBD_OPT_STARTTLS = 5,
    NBD_OPT_INFO = 6,
    NBD_OPT_GO = 7,
    NBD_OPT_STRUCTURED_REPLY = 8,
    NBD_OPT_LIST_META_CONTEXT = 9,
    NBD_OPT_SET_META_CONTEXT = 10,
    NBD_OPT_EXTENDED_HEADERS = 11,
};

/* Option replies. */
#define NBD_REP_ACK          1u
#define NBD_REP_SERVER       2u
#define NBD_REP_INFO         3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_FLAG_ERROR   (1u << 31)
#define NBD_REP_ERR_UNSUP           (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY          (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID         (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM        (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD        (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN         (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN        (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8u)
#define NBD_REP_ERR_TOO_BIG         (NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO types. */
enum {
    NBD_INFO_EXPORT = 0,
    NBD_INFO_NAME = 1,
    NBD_INFO_DESCRIPTION = 2,
    NBD_INFO_BLOCK_SIZE = 3,
};

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS         (1u << 0)
#define NBD_FLAG_READ_ONLY         (1u << 1)
#define NBD_FLAG_SEND_FLUSH        (1u << 2)
#define NBD_FLAG_SEND_FUA          (1u << 3)
#define NBD_FLAG_ROTATIONAL        (1u << 4)
#define NBD_FLAG_SEND_TRIM         (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF           (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define NBD_FLAG_SEND_RESIZE       (1u << 9)
#define NBD_FLAG_SEND_CACHE        (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* ---- transmission ---------------------------------------------------- */

#define NBD_REQUEST_MAGIC      0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCT_REPLY_MAGIC 0x668e33efu

enum {
    NBD_CMD_READ = 0,
    NBD_CMD_WRITE = 1,
    NBD_CMD_DISC = 2,
    NBD_CMD_FLUSH = 3,
    NBD_CMD_TRIM = 4,
    NBD_CMD_CACHE = 5,
    NBD_CMD_WRITE_ZEROES = 6,
    NBD_CMD_BLOCK_STATUS = 7,
};

/* Command flags. */
#define NBD_CMD_FLAG_FUA       (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define NBD_CMD_FLAG_DF        (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Structured reply chunks. */
#define NBD_REPLY_FLAG_DONE (1u << 0)
enum {
    NBD_REPLY_TYPE_NONE = 0,
    NBD_REPLY_TYPE_OFFSET_DATA = 1,
    NBD_REPLY_TYPE_OFFSET_HOLE = 2,
    NBD_REPLY_TYPE_BLOCK_STATUS = 5,
    NBD_REPLY_TYPE_ERROR = (1 << 15) + 1,
    NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2,
};
#define NBD_REPLY_TYPE_IS_ERR(t) (((t) & (1u << 15)) != 0)

/* base:allocation flags. */
#define NBD_STATE_HOLE (1u << 0)
#define NBD_STATE_ZERO (1u << 1)
#define NBD_META_BASE_ALLOCATION "base:allocation"

/* Error values. */
enum {
    NBD_EPERM = 1,
    NBD_EIO = 5,
    NBD_ENOMEM = 12,
    NBD_EINVAL = 22,
    NBD_ENOSPC = 28,
    NBD_EOVERFLOW = 75,
    NBD_ENOTSUP = 95,
    NBD_ESHUTDOWN = 108,
};

/* Sizes of the fixed parts. */
#define NBD_HELLO_LEN 18          /* NBDMAGIC, IHAVEOPT, u16 flags */
#define NBD_OPT_HDR_LEN 16        /* IHAVEOPT, u32 opt, u32 len */
#define NBD_REP_HDR_LEN 20        /* magic, u32 opt, u32 type, u32 len */
#define NBD_REQ_LEN 28
#define NBD_SIMPLE_REPLY_LEN 16
#define NBD_CHUNK_HDR_LEN 20

/* Limits we apply to both sides. */
#define NBD_MAX_STRING 4096            /* export names, messages */
#define NBD_MAX_OPTION_LEN 65536       /* option payloads we accept */
#define NBD_MAX_PAYLOAD (32u << 20)    /* largest READ/WRITE we serve */
#define NBD_MAX_DESCRIPTORS 2048       /* extents per BLOCK_STATUS reply */

/* ---- big-endian helpers ---------------------------------------------- */

static inline void nbd_put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static inline void nbd_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}
static inline void nbd_put64(unsigned char *p, uint64_t v)
{
    nbd_put32(p, (uint32_t)(v >> 32));
    nbd_put32(p + 4, (uint32_t)v);
}
static inline uint16_t nbd_get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t nbd_get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t nbd_get64(const unsigned char *p)
{
    return ((uint64_t)nbd_get32(p) << 32) | nbd_get32(p + 4);
}

/* ---- messages ---------------------------------------------------------- */

struct nbd_request {
    uint16_t flags, type;
    uint64_t cookie, offset;
    uint32_t length;
};

struct nbd_chunk {            /* structured reply chunk header */
    uint16_t flags, type;
    uint64_t cookie;
    uint32_t length;
};

struct nbd_opt_reply {         /* option reply header */
    uint32_t opt, type, length;
};

/* Encoders write exactly the fixed length. */
void nbd_enc_hello(unsigned char out[NBD_HELLO_LEN], uint16_t flags);
void nbd_enc_option(unsigned char out[NBD_OPT_HDR_LEN], uint32_t opt, uint32_t len);
void nbd_enc_opt_reply(unsigned char out[NBD_REP_HDR_LEN], uint32_t opt, uint32_t type,
                       uint32_t len);
void nbd_enc_request(unsigned char out[NBD_REQ_LEN], const struct nbd_request *r);
void nbd_enc_simple_reply(unsigned char out[NBD_SIMPLE_REPLY_LEN], uint32_t error,
                          uint64_t cookie);
void nbd_enc_chunk(unsigned char out[NBD_CHUNK_HDR_LEN], const struct nbd_chunk *c);

/* Decoders return 0, or -1 when the magic number is wrong. */
int nbd_dec_option(const unsigned char in[NBD_OPT_HDR_LEN], uint32_t *opt, uint32_t *len);
int nbd_dec_opt_reply(const unsigned char in[NBD_REP_HDR_LEN], struct nbd_opt_reply *r);
int nbd_dec_request(const unsigned char in[NBD_REQ_LEN], struct nbd_request *r);
/* After the 4-byte magic of a simple reply: error and cookie (12 bytes). */
void nbd_dec_simple_rest(const unsigned char in[12], uint32_t *error, uint64_t *cookie);
/* After the 4-byte magic of a chunk: the 16 remaining header bytes. */
void nbd_dec_chunk_rest(const unsigned char in[16], struct nbd_chunk *c);

/* A bounds-checked reader over a received payload.  Any read past the end
 * sets bad and yields zeros, so a parser checks bad once at the end. */
struct nbd_cur {
    const unsigned char *p;
    size_t left;
    int bad;
};
void nbd_cur_init(struct nbd_cur *c, const void *p, size_t len);
uint16_t nbd_cur_u16(struct nbd_cur *c);
uint32_t nbd_cur_u32(struct nbd_cur *c);
uint64_t nbd_cur_u64(struct nbd_cur *c);
/* A string of n bytes: NULL (and bad set) if it is longer than what is
 * left, longer than NBD_MAX_STRING or contains a NUL byte; otherwise a
 * malloc'd NUL-terminated copy (NULL with bad clear when out of memory
 * is reported as bad too). */
char *nbd_cur_str(struct nbd_cur *c, uint32_t n);

/* A growable output buffer for option payloads. */
struct nbd_buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
};
void nbd_buf_u16(struct nbd_buf *b, uint16_t v);
void nbd_buf_u32(struct nbd_buf *b, uint32_t v);
void nbd_buf_u64(struct nbd_buf *b, uint64_t v);
void nbd_buf_mem(struct nbd_buf *b, const void *p, size_t n);
void nbd_buf_free(struct nbd_buf *b);

/* Names for messages. */
const char *nbd_opt_name(uint32_t opt);
const char *nbd_cmd_name(uint16_t cmd);
const char *nbd_rep_name(uint32_t type);
const char *nbd_err_name(uint32_t err);

#endif
