/* nfc_proto.h - the frames of VMware's NFC protocol (ESXi port 902), as
 * ../shared/reference/nfc-protocol.md restates them: the classic 264-byte
 * frames of the handshake, and the 16-byte-header frames of an AIO
 * session.  Pure encoding and decoding, no I/O; every integer on the wire
 * is little-endian.
 *
 * AIO frame: header (magic, type, size of the fixed payload, opId), the
 * fixed payload, then "extras" (path, key, value, data, bitmap) whose
 * length the payload gives and which `size` does not count. */
#ifndef VD_NFC_PROTO_H
#define VD_NFC_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* ---- classic frames ---------------------------------------------------------- */

#define NFC_CLASSIC_LEN 264

enum nfc_classic_type {
    NFC_C_SESSION_COMPLETE = 4,   /* client's last frame */
    NFC_C_ERROR = 20,             /* type@4 code@8 len@12, then text */
    NFC_C_SESSION_PARAMS = 33,    /* zeros */
    NFC_C_PARAMS_REPLY = 36,      /* u32 1 @16 */
    NFC_C_CLIENT_RANDOM = 43,     /* "PlainText" @4; NFC library version >= 11 only */
    NFC_C_VERSION = 51,           /* u32 version @4 */
    NFC_C_AIO_OPEN = 52,          /* zeros; echoed by the server */
    NFC_C_CONN_DATA = 54,         /* nameLen @4, opIdLen @8, then both strings */
    NFC_C_FEATURES = 55,          /* u32 feature bits @4 */
};

#define NFC_CLIENT_VERSION 11u
#define NFC_MIN_SERVER_VERSION 3u
#define NFC_FEATURES 3u           /* interruption | host switch */

/* A zeroed frame of type t. */
void nfc_classic_init(unsigned char f[NFC_CLASSIC_LEN], uint32_t t);

/* ---- AIO frames --------------------------------------------------------------- */

#define NFC_AIO_MAGIC 0xA100DA7Au
#define NFC_HDR_LEN 16

enum nfc_aio_type {
    NFC_AIO_ERROR = 1,
    NFC_AIO_OPEN_SESSION = 2,
    NFC_AIO_CLOSE_SESSION = 3,
    NFC_AIO_OPEN_FILE = 4,
    NFC_AIO_CLOSE_FILE = 5,
    NFC_AIO_IO = 7,
    NFC_AIO_SET_SOCK_OPTS = 9,
    NFC_AIO_DDB_GET = 11,
    NFC_AIO_QAB = 13,             /* QUERY_ALLOCATED_BLOCKS */
    NFC_AIO_SET_RES_POOL = 22,
};

/* Fixed payload sizes (requests and replies alike, except where noted). */
enum {
    NFC_OPEN_SESSION_LEN = 16,
    NFC_CLOSE_SESSION_LEN = 4,
    NFC_OPEN_FILE_LEN = 60,
    NFC_CLOSE_FILE_LEN = 8,
    NFC_IO_LEN = 44,
    NFC_SOCK_OPTS_LEN = 12,
    NFC_DDB_LEN = 16,
    NFC_QAB_LEN = 48,
    NFC_RES_POOL_LEN = 4,
    NFC_MAX_FIXED = 60,
};

/* NFC file type of a virtual disk, and OPEN_FILE flags. */
#define NFC_FILE_DISK 2u
#define NFC_OPEN_RO 0x1Eu
#define NFC_OPEN_RW 0x1Au

/* Codec word of an IO payload: direction in the low half, codec above. */
#define NFC_DIR_WRITE 0u
#define NFC_DIR_READ 1u

struct nfc_hdr {
    uint32_t type, size, op;
};

void nfc_put_hdr(unsigned char h[NFC_HDR_LEN], uint32_t type, uint32_t size, uint32_t op);
/* 0, or -1 when the magic is wrong. */
int nfc_get_hdr(const unsigned char h[NFC_HDR_LEN], struct nfc_hdr *out);
/* Name of an AIO type for messages ("IO", "OPEN_FILE", "type 17"). */
const char *nfc_aio_name(uint32_t type, char buf[16]);
/* The fixed payload size a reply of this type has, or -1 for a type
 * that is never a reply (or unknown). */
int nfc_reply_len(uint32_t type);

/* IO payload (44 bytes). */
struct nfc_io {
    uint64_t handle;
    uint32_t dir, codec;         /* @8 low and high half */
    uint64_t offset;             /* of the whole request, bytes */
    uint32_t total;              /* bytes of the whole request */
    uint32_t frag_off;           /* this fragment's offset in the request */
    uint32_t frag_len;           /* raw bytes of this fragment */
    uint32_t extra;              /* bytes following the payload */
    uint32_t pad;                /* @40, zero */
};
void nfc_put_io(unsigned char p[NFC_IO_LEN], const struct nfc_io *io);
void nfc_get_io(const unsigned char p[NFC_IO_LEN], struct nfc_io *io);

/* OPEN_SESSION payload: buffer size (bytes) and count. */
void nfc_put_open_session(unsigned char p[NFC_OPEN_SESSION_LEN], uint32_t buf_size,
                          uint32_t buf_count);

/* OPEN_FILE request payload for a path of path_len bytes. */
void nfc_put_open_file(unsigned char p[NFC_OPEN_FILE_LEN], uint32_t path_len, uint32_t flags);

struct nfc_open_reply {
    uint64_t handle;
    uint32_t type, flags;
    uint64_t capacity;           /* bytes */
    uint32_t sector_size;        /* 0 reads as 512 */
    uint32_t cylinders, heads, sectors;
};
void nfc_get_open_reply(const unsigned char p[NFC_OPEN_FILE_LEN], struct nfc_open_reply *r);

/* DDB_GET request (u64 handle | u32 keyLen | u32 0) and reply (valueLen @12). */
void nfc_put_ddb(unsigned char p[NFC_DDB_LEN], uint64_t handle, uint32_t key_len);
uint32_t nfc_get_ddb_value_len(const unsigned char p[NFC_DDB_LEN]);

/* QUERY_ALLOCATED_BLOCKS request; reply echoes count @32 and is followed
 * by nfc_qab_bitmap_len(count) bytes. */
void nfc_put_qab(unsigned char p[NFC_QAB_LEN], uint64_t handle, uint64_t chunk_bytes,
                 uint64_t start_bytes, uint64_t chunk_count);
uint64_t nfc_get_qab_count(const unsigned char p[NFC_QAB_LEN]);
size_t nfc_qab_bitmap_len(uint64_t chunk_count);
/* Is chunk i allocated in a QAB bitmap? */
int nfc_qab_bit(const unsigned char *bitmap, uint64_t i);

/* The server code of an AIO ERROR payload (first word; 0 when shorter). */
uint32_t nfc_get_error_code(const unsigned char *p, size_t len);

/* Check one read-reply fragment against its request: offset, total and
 * fragment placement (fragments start at multiples of buf_size and hold
 * min(buf_size, rest) bytes), codec and encoded size.  NULL when it is
 * well formed, else what is wrong (static text). */
const char *nfc_check_read_frag(const struct nfc_io *f, uint64_t off, uint32_t total,
                                uint32_t buf_size);
/* Check a write acknowledgement; NULL or what is wrong. */
const char *nfc_check_write_ack(const struct nfc_io *f, uint64_t off, uint32_t total);

/* ---- authd -------------------------------------------------------------------- */

/* The three-digit code at the start of an authd reply line, or -1. */
int nfc_authd_code(const char *line);

/* ---- little-endian access ------------------------------------------------------ */

static inline void nfc_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static inline void nfc_put64(unsigned char *p, uint64_t v)
{
    nfc_put32(p, (uint32_t)v);
    nfc_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t nfc_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t nfc_get64(const unsigned char *p)
{
    return (uint64_t)nfc_get32(p) | (uint64_t)nfc_get32(p + 4) << 32;
}

#endif
