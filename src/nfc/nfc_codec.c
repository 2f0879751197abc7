/* nfc_codec.c - raw, zlib, FastLZ and SkipZ fragment codecs (see nfc_codec.h).
 *
 * zlib goes through libdeflate, with one compressor and one decompressor
 * per thread: made on first use, freed by a pthread key destructor when
 * the thread ends (and the calling thread's at library unload).  FastLZ is
 * fastlz.c.  SkipZ is here; its integers are little-endian on every host. */
#include "nfc_codec.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* fastlz.c: fastlz_compress that gives up (returns 0) at cap bytes. */
size_t fastlz_compress_capped(int level, const void *in, size_t len, void *out, size_t cap);

#define ZLIB_LEVEL 1          /* VDDK's streams start 78 01 */
#define FASTLZ_MIN_LEN 16     /* shorter fragments go raw */
#define FASTLZ_L2_FROM 65536  /* level 2 from 64 KiB up */
#define SKIPZ_HDR 8
#define SKIPZ_RUN_HDR 8
#define SKIPZ_GAP 16          /* zero gaps shorter than this stay inside a run */

const char *nfc_codec_name(int codec)
{
    switch (codec) {
    case NFC_CODEC_RAW: return "raw";
    case NFC_CODEC_ZLIB: return "zlib";
    case NFC_CODEC_FASTLZ: return "fastlz";
    case NFC_CODEC_SKIPZ: return "skipz";
    default: return "?";
    }
}

/* ---- little-endian words --------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- per-thread libdeflate state ------------------------------------------- */

struct zstate {
    struct libdeflate_compressor *c;
    struct libdeflate_decompressor *d;
    uint8_t *buf;             /* compressor output, see zlib_encode */
    size_t buflen;
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static bool zkey_ok;
static _Thread_local struct zstate *tl_z;

static void zstate_free(void *p)
{
    struct zstate *z = p;
    if (!z)
        return;
    libdeflate_free_compressor(z->c);
    libdeflate_free_decompressor(z->d);
    free(z->buf);
    free(z);
}

static void zkey_create(void)
{
    zkey_ok = pthread_key_create(&zkey, zstate_free) == 0;
}

/* At unload (or exit): free this thread's state and retire the key so no
 * destructor points into an unmapped library.  Threads still running keep
 * their state until the process ends. */
__attribute__((destructor)) static void zkey_retire(void)
{
    if (!zkey_ok)
        return;
    zkey_ok = false;
    pthread_setspecific(zkey, NULL);
    pthread_key_delete(zkey);
    zstate_free(tl_z);
    tl_z = NULL;
}

/* This thread's state, or NULL without memory. */
static struct zstate *zstate_get(void)
{
    if (tl_z)
        return tl_z;
    pthread_once(&zonce, zkey_create);
    if (!zkey_ok)
        return NULL;
    struct zstate *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    if (pthread_setspecific(zkey, z) != 0) {
        free(z);
        return NULL;
    }
    tl_z = z;
    return z;
}


static struct libdeflate_decompressor *zdecompressor(void)
{
    struct zstate *z = zstate_get();
    if (z && !z->d)
        z->d = libdeflate_alloc_decompressor();
    return z ? z->d : NULL;
}

/* ---- bounds ---------------------------------------------------------------- */

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t zlib_bound(size_t len)
{
    /* libdeflate's own bound, or zlib's compressBound plus slack, whichever
     * is larger: the peer may use either library. */
    size_t ours = libdeflate_zlib_compress_bound(NULL, len);
    size_t zlibs = sat_add(len, len / 4096 + len / 16384 + len / 33554432 + 13 + 16);
    return ours > zlibs ? ours : zlibs;
}

/* Every run holds at least one byte and costs 8 header bytes; runs do not
 * overlap: at most len runs. */
static size_t skipz_bound(size_t len)
{
    if (len > (SIZE_MAX - SKIPZ_HDR) / (SKIPZ_RUN_HDR + 1))
        return SIZE_MAX;
    return SKIPZ_HDR + len * (SKIPZ_RUN_HDR + 1);
}

size_t nfc_codec_bound(int codec, size_t len)
{
    switch (codec) {
    case NFC_CODEC_RAW: return len;
    case NFC_CODEC_ZLIB: return zlib_bound(len);
    case NFC_CODEC_FASTLZ: return fastlz_bound(len);
    case NFC_CODEC_SKIPZ: return skipz_bound(len);
    default: return 0;
    }
}

/* ---- SkipZ ----------------------------------------------------------------- */

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* First index >= i with a non-zero byte, or n. */
static size_t next_nonzero(const uint8_t *s, size_t i, size_t n)
{
    while (n - i >= 8 && load64(s + i) == 0)
        i += 8;
    while (i < n && s[i] == 0)
        i++;
    return i;
}

/* First index >= i with a zero byte, or n. */
static size_t next_zero(const uint8_t *s, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (n - i >= 8) {
        uint64_t w = load64(s + i);
        if ((w - ones) & ~w & highs)   /* some byte of w is zero */
            break;
        i += 8;
    }
    while (i < n && s[i] != 0)
        i++;
    return i;
}

/* End of the run that starts with the non-zero byte at i: the first zero
 * gap of SKIPZ_GAP bytes or more, or the fragment's end, closes it. */
static size_t run_end(const uint8_t *s, size_t i, size_t n)
{
    for (;;) {
        size_t z = next_zero(s, i, n);
        if (z == n)
            return n;
        size_t nz = next_nonzero(s, z, n);
        if (nz == n || nz - z >= SKIPZ_GAP)
            return z;
        i = nz;
    }
}

static size_t skipz_encode(const uint8_t *s, size_t len, uint8_t *d, size_t cap)
{
    if (len > UINT32_MAX || cap < SKIPZ_HDR)
        return 0;
    put_le32(d, (uint32_t)len);
    put_le32(d + 4, 0);
    size_t o = SKIPZ_HDR;
    for (size_t i = next_nonzero(s, 0, len); i < len; i = next_nonzero(s, i, len)) {
        size_t end = run_end(s, i, len);
        size_t n = end - i;
        if (SKIPZ_RUN_HDR + n > cap - o)
            return 0;
        put_le32(d + o, (uint32_t)i);
        put_le32(d + o + 4, (uint32_t)n);
        memcpy(d + o + SKIPZ_RUN_HDR, s + i, n);
        o += SKIPZ_RUN_HDR + n;
        i = end;
    }
    return o;
}

static void zero_fill(uint8_t *d, size_t from, size_t to)
{
    if (to > from)
        memset(d + from, 0, to - from);
}

/* Check one run header at s + pos against the previous run's end. */
static int skipz_check_run(uint32_t off, uint32_t n, size_t pos, size_t left, size_t done,
                           size_t outlen)
{
    if (n == 0)
        return vd_err_set(VD_E_CORRUPT, "SkipZ: run at byte %zu (offset %u) is empty", pos, off);
    if (off < done)
        return vd_err_set(VD_E_CORRUPT,
                          "SkipZ: run at offset %u starts before the previous run's end %zu "
                          "(out of order or overlapping)", off, done);
    if ((uint64_t)off + n > outlen)
        return vd_err_set(VD_E_CORRUPT,
                          "SkipZ: run at offset %u of %u bytes goes past the fragment end %zu",
                          off, n, outlen);
    if (n > left)
        return vd_err_set(VD_E_CORRUPT,
                          "SkipZ: run at offset %u has %u bytes but only %zu remain", off, n,
                          left);
    return 0;
}

static int skipz_decode(const uint8_t *s, size_t n, uint8_t *d, size_t outlen)
{
    if (n < SKIPZ_HDR)
        return vd_err_set(VD_E_CORRUPT, "SkipZ: %zu bytes, shorter than the 8-byte header", n);
    uint32_t flen = get_le32(s), pad = get_le32(s + 4);
    if (flen != outlen)
        return vd_err_set(VD_E_CORRUPT, "SkipZ: fragment length %u, expected %zu", flen,
                          outlen);
    if (pad != 0)
        return vd_err_set(VD_E_CORRUPT, "SkipZ: header's second word is %#x, not 0", pad);
    size_t pos = SKIPZ_HDR, done = 0;
    while (pos < n) {
        if (n - pos < SKIPZ_RUN_HDR)
            return vd_err_set(VD_E_CORRUPT, "SkipZ: %zu trailing bytes at byte %zu, not a run",
                              n - pos, pos);
        uint32_t off = get_le32(s + pos), len = get_le32(s + pos + 4);
        pos += SKIPZ_RUN_HDR;
        int rc = skipz_check_run(off, len, pos - SKIPZ_RUN_HDR, n - pos, done, outlen);
        if (rc < 0)
            return rc;
        zero_fill(d, done, off);
        memcpy(d + off, s + pos, len);
        pos += len;
        done = (size_t)off + len;
    }
    zero_fill(d, done, outlen);
    return 0;
}

/* ---- zlib -------------------------------------------------------------------- */

/* libdeflate (1.14) fails unless it has some bytes of room beyond the
 * result, so it writes into a per-thread buffer of its full bound and the
 * result is copied when it fits cap. */
static size_t zlib_encode(const void *src, size_t len, void *dst, size_t cap)
{
    struct zstate *z = zstate_get();
    if (!z)
        return 0;
    if (!z->c && !(z->c = libdeflate_alloc_compressor(ZLIB_LEVEL)))
        return 0;
    size_t need = libdeflate_zlib_compress_bound(z->c, len);
    if (z->buflen < need) {
        uint8_t *b = realloc(z->buf, need);
        if (!b)
            return 0;
        z->buf = b;
        z->buflen = need;
    }
    size_t n = libdeflate_zlib_compress(z->c, src, len, z->buf, z->buflen);
    if (n == 0 || n > cap)
        return 0;
    memcpy(dst, z->buf, n);
    return n;
}

static int zlib_decode(const void *src, size_t srclen, void *dst, size_t outlen)
{
    struct libdeflate_decompressor *d = zdecompressor();
    if (!d)
        return vd_err_set(VD_E_NOMEM, "zlib: no memory for a decompressor");
    size_t in_used = 0, out_got = 0;
    enum libdeflate_result r =
        libdeflate_zlib_decompress_ex(d, src, srclen, dst, outlen, &in_used, &out_got);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
        return vd_err_set(VD_E_CORRUPT, "zlib: stream decodes to more than %zu bytes", outlen);
    if (r != LIBDEFLATE_SUCCESS)
        return vd_err_set(VD_E_CORRUPT, "zlib: bad stream of %zu bytes (libdeflate error %d)",
                          srclen, (int)r);
    if (out_got != outlen)
        return vd_err_set(VD_E_CORRUPT, "zlib: stream decodes to %zu bytes, expected %zu",
                          out_got, outlen);
    if (in_used != srclen)
        return vd_err_set(VD_E_CORRUPT, "zlib: %zu bytes follow the end of the stream",
                          srclen - in_used);
    return 0;
}

/* ---- FastLZ ------------------------------------------------------------------- */

static size_t fastlz_encode(const void *src, size_t len, void *dst, size_t cap)
{
    if (len < FASTLZ_MIN_LEN)
        return 0;
    int level = len >= FASTLZ_L2_FROM ? 2 : 1;
    return fastlz_compress_capped(level, src, len, dst, cap);
}

static int fastlz_decode(const void *src, size_t srclen, void *dst, size_t outlen)
{
    long got = fastlz_decompress(src, srclen, dst, outlen);
    if (got < 0)
        return vd_err_set(VD_E_CORRUPT,
                          "FastLZ: malformed block of %zu bytes (bad level, truncated, "
                          "reference before the start, or more than %zu bytes)", srclen, outlen);
    if ((size_t)got != outlen)
        return vd_err_set(VD_E_CORRUPT, "FastLZ: block decodes to %ld bytes, expected %zu", got,
                          outlen);
    return 0;
}

/* ---- entry points --------------------------------------------------------------- */

size_t nfc_encode(int codec, const void *src, size_t len, void *dst, size_t cap)
{
    if (len == 0 || !src || !dst)
        return 0;
    if (cap > len - 1)
        cap = len - 1;   /* only a smaller result is worth sending */
    switch (codec) {
    case NFC_CODEC_ZLIB: return zlib_encode(src, len, dst, cap);
    case NFC_CODEC_FASTLZ: return fastlz_encode(src, len, dst, cap);
    case NFC_CODEC_SKIPZ: return skipz_encode(src, len, dst, cap);
    default: return 0;   /* raw is never smaller; unknown codecs go raw */
    }
}

static int raw_decode(const void *src, size_t srclen, void *dst, size_t outlen)
{
    if (srclen != outlen)
        return vd_err_set(VD_E_CORRUPT, "raw: fragment of %zu bytes, expected %zu", srclen,
                          outlen);
    if (outlen)
        memmove(dst, src, outlen);
    return 0;
}

int nfc_decode(int codec, const void *src, size_t srclen, void *dst, size_t outlen)
{
    if ((srclen && !src) || (outlen && !dst))
        return vd_err_set(VD_E_INVAL, "nfc_decode: NULL buffer");
    switch (codec) {
    case NFC_CODEC_RAW: return raw_decode(src, srclen, dst, outlen);
    case NFC_CODEC_ZLIB: return zlib_decode(src, srclen, dst, outlen);
    case NFC_CODEC_FASTLZ: return fastlz_decode(src, srclen, dst, outlen);
    case NFC_CODEC_SKIPZ: return skipz_decode(src, srclen, dst, outlen);
    default: return vd_err_set(VD_E_CORRUPT, "unknown NFC codec %d", codec);
    }
}
