/* nfc_proto.c - NFC frame encoding and decoding (see nfc_proto.h). */
#include <stdio.h>
#include <string.h>

#include "nfc_codec.h"
#include "nfc_proto.h"

void nfc_classic_init(unsigned char f[NFC_CLASSIC_LEN], uint32_t t)
{
    memset(f, 0, NFC_CLASSIC_LEN);
    nfc_put32(f, t);
}

void nfc_put_hdr(unsigned char h[NFC_HDR_LEN], uint32_t type, uint32_t size, uint32_t op)
{
    nfc_put32(h, NFC_AIO_MAGIC);
    nfc_put32(h + 4, type);
    nfc_put32(h + 8, size);
    nfc_put32(h + 12, op);
}

int nfc_get_hdr(const unsigned char h[NFC_HDR_LEN], struct nfc_hdr *out)
{
    if (nfc_get32(h) != NFC_AIO_MAGIC)
        return -1;
    out->type = nfc_get32(h + 4);
    out->size = nfc_get32(h + 8);
    out->op = nfc_get32(h + 12);
    return 0;
}

const char *nfc_aio_name(uint32_t type, char buf[16])
{
    switch (type) {
    case NFC_AIO_ERROR: return "ERROR";
    case NFC_AIO_OPEN_SESSION: return "OPEN_SESSION";
    case NFC_AIO_CLOSE_SESSION: return "CLOSE_SESSION";
    case NFC_AIO_OPEN_FILE: return "OPEN_FILE";
    case NFC_AIO_CLOSE_FILE: return "CLOSE_FILE";
    case NFC_AIO_IO: return "IO";
    case NFC_AIO_SET_SOCK_OPTS: return "SET_SOCK_OPTS";
    case NFC_AIO_DDB_GET: return "DDB_GET";
    case NFC_AIO_QAB: return "QUERY_ALLOCATED_BLOCKS";
    case NFC_AIO_SET_RES_POOL: return "SET_RES_POOL";
    default:
        snprintf(buf, 16, "type %u", type);
        return buf;
    }
}

int nfc_reply_len(uint32_t type)
{
    switch (type) {
    case NFC_AIO_OPEN_SESSION: return NFC_OPEN_SESSION_LEN;
    case NFC_AIO_CLOSE_SESSION: return NFC_CLOSE_SESSION_LEN;
    case NFC_AIO_OPEN_FILE: return NFC_OPEN_FILE_LEN;
    case NFC_AIO_CLOSE_FILE: return NFC_CLOSE_FILE_LEN;
    case NFC_AIO_IO: return NFC_IO_LEN;
    case NFC_AIO_SET_SOCK_OPTS: return NFC_SOCK_OPTS_LEN;
    case NFC_AIO_DDB_GET: return NFC_DDB_LEN;
    case NFC_AIO_QAB: return NFC_QAB_LEN;
    case NFC_AIO_SET_RES_POOL: return NFC_RES_POOL_LEN;
    default: return -1;
    }
}

void nfc_put_io(unsigned char p[NFC_IO_LEN], const struct nfc_io *io)
{
    nfc_put64(p, io->handle);
    nfc_put32(p + 8, io->dir);
    nfc_put32(p + 12, io->codec);
    nfc_put64(p + 16, io->offset);
    nfc_put32(p + 24, io->total);
    nfc_put32(p + 28, io->frag_off);
    nfc_put32(p + 32, io->frag_len);
    nfc_put32(p + 36, io->extra);
    nfc_put32(p + 40, io->pad);
}

void nfc_get_io(const unsigned char p[NFC_IO_LEN], struct nfc_io *io)
{
    io->handle = nfc_get64(p);
    io->dir = nfc_get32(p + 8);
    io->codec = nfc_get32(p + 12);
    io->offset = nfc_get64(p + 16);
    io->total = nfc_get32(p + 24);
    io->frag_off = nfc_get32(p + 28);
    io->frag_len = nfc_get32(p + 32);
    io->extra = nfc_get32(p + 36);
    io->pad = nfc_get32(p + 40);
}

void nfc_put_open_session(unsigned char p[NFC_OPEN_SESSION_LEN], uint32_t buf_size,
                          uint32_t buf_count)
{
    memset(p, 0, NFC_OPEN_SESSION_LEN);
    nfc_put32(p + 4, buf_size);
    nfc_put32(p + 8, buf_count);
}

void nfc_put_open_file(unsigned char p[NFC_OPEN_FILE_LEN], uint32_t path_len, uint32_t flags)
{
    memset(p, 0, NFC_OPEN_FILE_LEN);
    nfc_put32(p, path_len);
    nfc_put32(p + 16, NFC_FILE_DISK);
    nfc_put32(p + 20, flags);
}

void nfc_get_open_reply(const unsigned char p[NFC_OPEN_FILE_LEN], struct nfc_open_reply *r)
{
    r->handle = nfc_get64(p + 8);
    r->type = nfc_get32(p + 16);
    r->flags = nfc_get32(p + 20);
    r->capacity = nfc_get64(p + 28);
    r->sector_size = nfc_get32(p + 36);
    r->cylinders = nfc_get32(p + 40);
    r->heads = nfc_get32(p + 44);
    r->sectors = nfc_get32(p + 48);
}

void nfc_put_ddb(unsigned char p[NFC_DDB_LEN], uint64_t handle, uint32_t key_len)
{
    memset(p, 0, NFC_DDB_LEN);
    nfc_put64(p, handle);
    nfc_put32(p + 8, key_len);
}

uint32_t nfc_get_ddb_value_len(const unsigned char p[NFC_DDB_LEN])
{
    return nfc_get32(p + 12);
}

void nfc_put_qab(unsigned char p[NFC_QAB_LEN], uint64_t handle, uint64_t chunk_bytes,
                 uint64_t start_bytes, uint64_t chunk_count)
{
    memset(p, 0, NFC_QAB_LEN);
    nfc_put64(p, handle);
    nfc_put64(p + 16, chunk_bytes);
    nfc_put64(p + 24, start_bytes);
    nfc_put64(p + 32, chunk_count);
}

uint64_t nfc_get_qab_count(const unsigned char p[NFC_QAB_LEN])
{
    return nfc_get64(p + 32);
}

size_t nfc_qab_bitmap_len(uint64_t chunk_count)
{
    size_t bytes = (size_t)((chunk_count + 7) / 8);
    return (bytes + 3) & ~(size_t)3;
}

int nfc_qab_bit(const unsigned char *bitmap, uint64_t i)
{
    return (bitmap[i / 8] >> (i % 8)) & 1;
}

uint32_t nfc_get_error_code(const unsigned char *p, size_t len)
{
    return len >= 4 ? nfc_get32(p) : 0;
}

const char *nfc_check_read_frag(const struct nfc_io *f, uint64_t off, uint32_t total,
                                uint32_t buf_size)
{
    if (f->dir != NFC_DIR_READ)
        return "direction is not read";
    if (f->codec > NFC_CODEC_SKIPZ)
        return "unknown codec";
    if (f->offset != off || f->total != total)
        return "offset or length differ from the request";
    if (f->frag_off >= total || f->frag_off % buf_size)
        return "fragment offset is not a buffer boundary inside the request";
    uint32_t want = total - f->frag_off < buf_size ? total - f->frag_off : buf_size;
    if (f->frag_len != want)
        return "fragment length is not the buffer size (or the rest of the request)";
    if (f->codec == NFC_CODEC_RAW ? f->extra != f->frag_len
                                  : f->extra > nfc_codec_bound(f->codec, f->frag_len))
        return "encoded fragment size does not fit its raw length";
    if (f->pad)
        return "reserved word is not zero";
    return NULL;
}

const char *nfc_check_write_ack(const struct nfc_io *f, uint64_t off, uint32_t total)
{
    if (f->dir != NFC_DIR_WRITE)
        return "direction is not write";
    if (f->offset != off || f->total != total)
        return "offset or length differ from the request";
    if (f->frag_len != total)
        return "acknowledged length differs from the request";
    return NULL;
}

int nfc_authd_code(const char *line)
{
    if (line[0] < '1' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
        line[2] > '9' || (line[3] != ' ' && line[3] != '\0' && line[3] != '\r'))
        return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}
