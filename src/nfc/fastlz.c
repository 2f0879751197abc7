/* fastlz.c - the FastLZ block format: an encoder and a strictly checked
 * decoder, written here from the format's description.
 *
 * The format, as we understand it (facts from the FastLZ project's README
 * "Block Format" section for level 1 and the tag, and from the behaviour of
 * its reference implementation for level 2):
 *
 *   A block is a sequence of instructions.  The top three bits of byte 0
 *   hold the level minus one (0 = level 1, 1 = level 2); the first
 *   instruction is always a literal run, so its opcode is byte 0 with those
 *   three bits cleared.  Each opcode byte c:
 *
 *   c >> 5 == 0      literal run: (c & 31) + 1 bytes (1..32) follow and are
 *                    copied to the output.
 *   c >> 5 in 1..6   short match of (c >> 5) + 2 bytes (3..8); the next
 *                    byte is the low half of a 13-bit offset R whose high
 *                    five bits are c & 31.  The copy starts R + 1 bytes
 *                    back from the current output position.
 *   c >> 5 == 7      long match.  Level 1: one length byte L follows, the
 *                    match is L + 9 bytes (9..264), then the offset's low
 *                    byte.  Level 2: length bytes follow, each added to 9,
 *                    continuing while the byte is 255; then the offset's
 *                    low byte.
 *
 *   Level 2 only: a 13-bit offset of 8191 (high bits 31, low byte 255) is
 *   an escape: two more bytes follow, a big-endian 16-bit value V, and the
 *   copy starts V + 8192 bytes back.  So level 2 reaches 8191 bytes with
 *   the plain form and 8192..73727 with the far form; level 1 reaches
 *   1..8192.  Copies may overlap their own output (offset 0 repeats the
 *   last byte).
 *
 * The encoder is a greedy LZ77 over a hash table of 4-byte sequences, with
 * a growing step through data that does not match.  The decoder checks
 * every read against the input, every write against maxout, and every back
 * reference against the start of the output. */
#include "nfc_codec.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LIT_MAX 32            /* longest literal run */
#define SHORT_MAX 8           /* longest match without a length byte */
#define L1_LEN_MAX 264        /* longest level 1 match */
#define L1_DIST_MAX 8192      /* level 1 reach */
#define L2_NEAR_MAX 8191      /* level 2 reach without the far escape */
#define L2_DIST_MAX (8192 + 65535)
#define MIN_MATCH 4           /* what the hash table finds */
#define FAR_MIN_MATCH 5       /* a far match costs 4 bytes: take it only if shorter */

/* ---- small helpers -------------------------------------------------------- */

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Number of equal leading bytes of a and b, with b + n never past bend.  a
 * lies before b in the same buffer, so a's reads stay inside it too. */
static size_t common_len(const uint8_t *a, const uint8_t *b, const uint8_t *bend)
{
    const uint8_t *start = b;
    while (bend - b >= 8) {
        uint64_t x = load64(a) ^ load64(b);
        if (x) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            return (size_t)(b - start) + (size_t)(__builtin_clzll(x) >> 3);
#else
            return (size_t)(b - start) + (size_t)(__builtin_ctzll(x) >> 3);
#endif
        }
        a += 8;
        b += 8;
    }
    while (b < bend && *a == *b) {
        a++;
        b++;
    }
    return (size_t)(b - start);
}

/* ---- encoder --------------------------------------------------------------- */

struct enc {
    const uint8_t *in;
    size_t len;
    uint8_t *out;
    size_t cap;               /* bytes out may hold */
    size_t op;                /* bytes written */
    int level;
};

/* Append n literal bytes from in + from; false if out is full. */
static bool put_literals(struct enc *e, size_t from, size_t n)
{
    if (n + (n + LIT_MAX - 1) / LIT_MAX > e->cap - e->op)
        return false;
    while (n) {
        size_t run = n < LIT_MAX ? n : LIT_MAX;
        e->out[e->op++] = (uint8_t)(run - 1);
        memcpy(e->out + e->op, e->in + from, run);
        e->op += run;
        from += run;
        n -= run;
    }
    return true;
}

/* One level 1 match instruction, 3 <= len <= 264, 1 <= dist <= 8192. */
static bool put_l1_piece(struct enc *e, size_t len, size_t dist)
{
    size_t r = dist - 1;
    if ((len <= SHORT_MAX ? 2u : 3u) > e->cap - e->op)
        return false;
    uint8_t *o = e->out + e->op;
    if (len <= SHORT_MAX) {
        o[0] = (uint8_t)(((len - 2) << 5) | (r >> 8));
        o[1] = (uint8_t)r;
        e->op += 2;
    } else {
        o[0] = (uint8_t)((7u << 5) | (r >> 8));
        o[1] = (uint8_t)(len - 9);
        o[2] = (uint8_t)r;
        e->op += 3;
    }
    return true;
}

/* A level 1 match of any length >= 3, split into pieces of at most 264
 * bytes, never leaving a tail shorter than 3. */
static bool put_l1_match(struct enc *e, size_t len, size_t dist)
{
    while (len > L1_LEN_MAX) {
        size_t piece = len - L1_LEN_MAX >= 3 ? L1_LEN_MAX : len - 3;
        if (!put_l1_piece(e, piece, dist))
            return false;
        len -= piece;
    }
    return put_l1_piece(e, len, dist);
}

/* A level 2 match, len >= 3, 1 <= dist <= 73727. */
static bool put_l2_match(struct enc *e, size_t len, size_t dist)
{
    bool far = dist > L2_NEAR_MAX;
    size_t r = far ? 8191 : dist - 1;
    size_t need = 2 + (far ? 2 : 0) + (len > SHORT_MAX ? (len - 9) / 255 + 1 : 0);
    if (need > e->cap - e->op)
        return false;
    uint8_t *o = e->out + e->op;
    size_t k = 0;
    if (len <= SHORT_MAX) {
        o[k++] = (uint8_t)(((len - 2) << 5) | (r >> 8));
    } else {
        o[k++] = (uint8_t)((7u << 5) | (r >> 8));
        size_t rest = len - 9;
        for (; rest >= 255; rest -= 255)
            o[k++] = 255;
        o[k++] = (uint8_t)rest;
    }
    o[k++] = (uint8_t)r;
    if (far) {
        size_t v = dist - 8192;
        o[k++] = (uint8_t)(v >> 8);
        o[k++] = (uint8_t)v;
    }
    e->op += k;
    return true;
}

static bool put_match(struct enc *e, size_t len, size_t dist)
{
    return e->level == 1 ? put_l1_match(e, len, dist) : put_l2_match(e, len, dist);
}

/* log2 of the hash table size for len input bytes: about a quarter as many
 * slots as bytes, 256 to 32768 slots. */
static unsigned hash_bits(size_t len)
{
    unsigned b = 8;
    while (b < 15 && ((size_t)1 << (b + 2)) < len)
        b++;
    return b;
}

static inline uint32_t hash4(uint32_t v, unsigned bits)
{
    return (v * 2654435761u) >> (32 - bits);
}

/* The match search.  tab holds 1 << bits input positions.  Returns false if
 * out fills up. */
static bool encode_block(struct enc *e, uint32_t *tab, unsigned bits)
{
    const uint8_t *in = e->in;
    size_t len = e->len;
    size_t max_dist = e->level == 1 ? L1_DIST_MAX : L2_DIST_MAX;
    size_t anchor = 0, ip = 1;   /* byte 0 always opens a literal run */
    size_t misses = 0;

    while (len >= MIN_MATCH && ip <= len - MIN_MATCH) {
        uint32_t v = load32(in + ip);
        uint32_t h = hash4(v, bits);
        size_t cand = tab[h];
        tab[h] = (uint32_t)ip;
        size_t dist = ip - cand;
        if (cand >= ip || dist > max_dist || load32(in + cand) != v) {
            ip += 1 + (misses++ >> 5);
            continue;
        }
        /* Grow the match backwards over bytes still pending as literals. */
        while (ip > anchor && cand > 0 && in[ip - 1] == in[cand - 1]) {
            ip--;
            cand--;
        }
        size_t mlen = common_len(in + cand, in + ip, in + len);
        /* A rejected far match is exactly 4 bytes long, so the backward
         * step above did not move ip: the search still goes forward. */
        if (e->level == 2 && dist > L2_NEAR_MAX && mlen < FAR_MIN_MATCH) {
            ip += 1 + (misses++ >> 5);
            continue;
        }
        if (!put_literals(e, anchor, ip - anchor) || !put_match(e, mlen, dist))
            return false;
        ip += mlen;
        anchor = ip;
        misses = 0;
        /* Index the last two positions of the match for the next search. */
        if (ip <= len - MIN_MATCH) {
            tab[hash4(load32(in + ip - 2), bits)] = (uint32_t)(ip - 2);
            tab[hash4(load32(in + ip - 1), bits)] = (uint32_t)(ip - 1);
        }
    }
    return put_literals(e, anchor, len - anchor);
}

/* Encode into at most cap bytes; 0 if that is not enough (or no memory). */
static size_t encode_capped(int level, const void *in, size_t len, void *out, size_t cap)
{
    if (len == 0 || len > UINT32_MAX || (level != 1 && level != 2))
        return 0;
    unsigned bits = hash_bits(len);
    uint32_t *tab = calloc((size_t)1 << bits, sizeof *tab);
    if (!tab)
        return 0;
    struct enc e = { in, len, out, cap, 0, level };
    bool ok = encode_block(&e, tab, bits);
    free(tab);
    if (!ok)
        return 0;
    if (level == 2)
        e.out[0] |= 1u << 5;   /* the first opcode is a literal run: top bits free */
    return e.op;
}

size_t fastlz_bound(size_t len)
{
    /* All literals cost len + len / 32 rounded up; every match we emit is
     * shorter than the bytes it covers.  The slack also covers other
     * encoders, which are documented to need 5 % and 66 bytes. */
    return len + len / 16 + 66;
}

size_t fastlz_compress(int level, const void *in, size_t len, void *out)
{
    return encode_capped(level, in, len, out, fastlz_bound(len));
}

/* Internal to the codec layer: stop as soon as the block would reach cap
 * bytes (declared in nfc_codec.c, not part of the public header). */
size_t fastlz_compress_capped(int level, const void *in, size_t len, void *out, size_t cap);

size_t fastlz_compress_capped(int level, const void *in, size_t len, void *out, size_t cap)
{
    return encode_capped(level, in, len, out, cap);
}

/* ---- decoder --------------------------------------------------------------- */

struct dec {
    const uint8_t *in;
    size_t len, ip;
    uint8_t *out;
    size_t maxout, op;
    bool level2;
};

/* The next input byte into *b; false at the end of the input. */
static inline bool next_byte(struct dec *d, unsigned *b)
{
    if (d->ip >= d->len)
        return false;
    *b = d->in[d->ip++];
    return true;
}

static bool copy_literals(struct dec *d, unsigned ctrl)
{
    size_t n = (size_t)ctrl + 1;
    if (n > d->len - d->ip || n > d->maxout - d->op)
        return false;
    /* A fixed 32-byte copy is faster when both sides have the room; the
     * bytes past n are rewritten later. */
    if (d->len - d->ip >= LIT_MAX && d->maxout - d->op >= LIT_MAX)
        memcpy(d->out + d->op, d->in + d->ip, LIT_MAX);
    else
        memcpy(d->out + d->op, d->in + d->ip, n);
    d->ip += n;
    d->op += n;
    return true;
}

/* Length and distance of the match whose opcode is ctrl. */
static bool read_match(struct dec *d, unsigned ctrl, size_t *len, size_t *dist)
{
    unsigned b;
    size_t n = (ctrl >> 5) + 2;
    if ((ctrl >> 5) == 7) {
        if (!d->level2) {
            if (!next_byte(d, &b))
                return false;
            n += b;
        } else {
            do {
                if (!next_byte(d, &b))
                    return false;
                n += b;
                if (n > d->maxout)   /* too long anyway; also bounds n */
                    return false;
            } while (b == 255);
        }
    }
    if (!next_byte(d, &b))
        return false;
    size_t r = ((size_t)(ctrl & 31) << 8) | b;
    if (d->level2 && r == 8191) {
        unsigned hi, lo;
        if (!next_byte(d, &hi) || !next_byte(d, &lo))
            return false;
        *dist = ((size_t)hi << 8 | lo) + 8192;
    } else {
        *dist = r + 1;
    }
    *len = n;
    return true;
}

/* Copy len bytes from dist back; the source may overlap the destination,
 * in which case the copy repeats the last dist bytes.  room is the space
 * left at dst (>= len): with 16 bytes to spare, whole 8- or 16-byte chunks
 * are copied, each reading only bytes already written. */
static void copy_back(uint8_t *dst, size_t dist, size_t len, size_t room)
{
    const uint8_t *src = dst - dist;
    if (room - len >= 16 && dist >= 8) {
        size_t step = dist >= 16 ? 16 : 8;
        for (size_t i = 0; i < len; i += step)
            memcpy(dst + i, src + i, step);
        return;
    }
    if (dist >= len) {
        memcpy(dst, src, len);
        return;
    }
    if (dist == 1) {
        memset(dst, src[0], len);
        return;
    }
    /* [src, dst) holds whole periods: copying from src doubles them. */
    while (len) {
        size_t n = (size_t)(dst - src) < len ? (size_t)(dst - src) : len;
        memcpy(dst, src, n);
        dst += n;
        len -= n;
    }
}

static bool do_match(struct dec *d, unsigned ctrl)
{
    size_t len, dist;
    if (!read_match(d, ctrl, &len, &dist))
        return false;
    if (dist > d->op || len > d->maxout - d->op)
        return false;
    copy_back(d->out + d->op, dist, len, d->maxout - d->op);
    d->op += len;
    return true;
}

long fastlz_decompress(const void *in, size_t len, void *out, size_t maxout)
{
    if (len == 0 || !in)
        return -1;
    const uint8_t *p = in;
    unsigned tag = p[0] >> 5;
    if (tag > 1)
        return -1;
    if (maxout > (size_t)LONG_MAX)
        maxout = (size_t)LONG_MAX;
    if (!out)
        maxout = 0;
    struct dec d = { p, len, 1, out, maxout, 0, tag == 1 };
    unsigned ctrl = p[0] & 31;
    for (;;) {
        bool ok = ctrl < 32 ? copy_literals(&d, ctrl) : do_match(&d, ctrl);
        if (!ok)
            return -1;
        if (d.ip == d.len)
            break;
        ctrl = p[d.ip++];
    }
    return (long)d.op;
}
