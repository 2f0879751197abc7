/* fuzz_nfc_codec.c - libFuzzer target for the NFC fragment codecs.
 *
 * Byte 0 picks the codec (low two bits: raw, zlib, FastLZ, SkipZ) and the
 * output length (the other six bits index a table of lengths, 0 to 256 KiB,
 * around the edges that matter: 16, 4095..4097, 8192 (FastLZ level 1
 * reach), 65536 (FastLZ level 2 from there), 73727 (level 2 reach)).  The
 * rest of the input is:
 *  - decoded with that codec into a buffer of exactly that length, and fed
 *    to fastlz_decompress directly with that maxout; the sanitizers catch
 *    any read or write out of bounds.  A decoder may fail only with
 *    -VD_E_CORRUPT; a SkipZ fragment that decodes must not have more bytes
 *    than runs plus headers can hold;
 *  - encoded with every codec (nfc_encode into exactly its own length, and
 *    fastlz_compress at both levels into fastlz_bound bytes), and each
 *    encoding must decode back to the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nfc/nfc_codec.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_failed(const char *what)
{
    fprintf(stderr, "FUZZ-CHECK: %s\n", what);
    abort();
}

static size_t out_length(unsigned sel)
{
    static const size_t big[] = {
        16, 17, 255, 256, 4095, 4096, 4097, 8191, 8192, 8193, 16384, 65535,
        65536, 65537, 73727, 73728, 100000, 131072, 200000, 262144,
    };
    if (sel < 44)
        return sel * 23;   /* 0 .. 989 */
    return big[(sel - 44) % (sizeof big / sizeof *big)];
}

/* malloc that never returns NULL (n may be 0). */
static uint8_t *xmalloc(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static void decode_side(int codec, const uint8_t *in, size_t n, size_t outlen)
{
    uint8_t *out = xmalloc(outlen);
    int rc = nfc_decode(codec, in, n, out, outlen);
    if (rc != 0 && rc != -VD_E_CORRUPT)
        check_failed("nfc_decode failed with something other than VD_E_CORRUPT");
    if (rc != 0 && vd_err_msg()[0] == '\0')
        check_failed("nfc_decode failed without a detail message");
    if (rc == 0 && codec == NFC_CODEC_SKIPZ && n > nfc_codec_bound(codec, outlen))
        check_failed("SkipZ decoded from more bytes than its bound");
    long got = fastlz_decompress(in, n, out, outlen);
    if (got < -1 || got > (long)outlen)
        check_failed("fastlz_decompress returned an impossible size");
    free(out);
}

static void expect_round_trip(int codec, const uint8_t *in, size_t n)
{
    uint8_t *enc = xmalloc(n), *back = xmalloc(n);
    size_t m = nfc_encode(codec, in, n, enc, n);
    if (m >= n && m)
        check_failed("nfc_encode returned a size that is not smaller");
    if (m) {
        if (nfc_decode(codec, enc, m, back, n) != 0)
            check_failed("an encoding does not decode");
        if (memcmp(in, back, n) != 0)
            check_failed("an encoding decodes to other bytes");
    }
    free(enc);
    free(back);
}

static void expect_fastlz_round_trip(int level, const uint8_t *in, size_t n)
{
    uint8_t *enc = xmalloc(fastlz_bound(n)), *back = xmalloc(n);
    size_t m = fastlz_compress(level, in, n, enc);
    if (m == 0 || m > fastlz_bound(n))
        check_failed("fastlz_compress size out of range");
    if ((enc[0] >> 5) != level - 1)
        check_failed("fastlz_compress level tag");
    if (fastlz_decompress(enc, m, back, n) != (long)n || memcmp(in, back, n) != 0)
        check_failed("fastlz block does not decode back");
    free(enc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int codec = data[0] & 3;
    size_t outlen = out_length(data[0] >> 2);
    const uint8_t *in = data + 1;
    size_t n = size - 1;

    decode_side(codec, in, n, outlen);

    for (int c = NFC_CODEC_ZLIB; c <= NFC_CODEC_SKIPZ; c++)
        expect_round_trip(c, in, n);
    if (n >= 1) {
        expect_fastlz_round_trip(1, in, n);
        expect_fastlz_round_trip(2, in, n);
    }
    return 0;
}
