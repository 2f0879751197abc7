/* test_nfc_codec.c - the NFC fragment codecs (raw, zlib, FastLZ, SkipZ).
 *
 * Round trips of every codec over zeros, random bytes, text-like and
 * mixed data at sizes around the edges (0 .. 2 MiB); FastLZ's level tag;
 * FastLZ blocks built by hand from the format description (literal runs,
 * short and long matches of both levels, level 2's multi-byte lengths and
 * far distances) decoding to known bytes; SkipZ's exact byte layout; then
 * corrupt input for every decoder, which must fail with -VD_E_CORRUPT (or
 * -1 from fastlz_decompress) without reading or writing out of bounds; a
 * long randomised round-trip loop with a fixed seed; zlib from several
 * threads at once (per-thread state, freed at thread exit).
 *
 * With NFC_CODEC_BENCH=1 in the environment, test_bench prints encode and
 * decode speeds and ratios for FastLZ and zlib on 64 KiB fragments. */
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nfc/nfc_codec.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* ---- data ------------------------------------------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s ? s : 0x9e3779b97f4a7c15ull;
}

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng() % n) : 0;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng() >> 24);
}

/* Log-like lines: a few words, numbers, punctuation. */
static void fill_text(uint8_t *p, size_t n)
{
    static const char *words[] = {
        "disk", "sector", "grain", "vmdk", "extent", "read", "write", "error", "ok",
        "the", "of", "to", "NFC", "session", "open", "close", "file", "datastore",
        "[datastore1]", "vm-42/", "flat", "delta", "INFO", "WARN", "0x", "=", ":",
    };
    size_t i = 0;
    while (i < n) {
        /* One rng call per statement: the same bytes whatever order a
         * compiler evaluates arguments in. */
        char line[160];
        unsigned day = (unsigned)rng_below(28) + 1;
        unsigned hh = (unsigned)rng_below(24);
        unsigned mm = (unsigned)rng_below(60);
        unsigned ss = (unsigned)rng_below(60);
        int k = snprintf(line, sizeof line, "2024-05-%02u %02u:%02u:%02u ", day, hh, mm, ss);
        size_t nw = 4 + rng_below(8);
        for (size_t w = 0; w < nw && k < 140; w++) {
            const char *word = words[rng_below(sizeof words / sizeof *words)];
            const char *sep = rng_below(4) ? " " : "1 ";
            k += snprintf(line + k, sizeof line - (size_t)k, "%s%s", word, sep);
        }
        line[k++] = '\n';
        size_t m = (size_t)k < n - i ? (size_t)k : n - i;
        memcpy(p + i, line, m);
        i += m;
    }
}

/* Records of a disk-like binary: small integers, repeated structures with
 * some changed fields. */
static void fill_records(uint8_t *p, size_t n)
{
    uint8_t rec[48];
    fill_random(rec, sizeof rec);
    memset(rec + 16, 0, 16);
    for (size_t i = 0; i < n; i += sizeof rec) {
        uint32_t id = (uint32_t)(i / sizeof rec);
        memcpy(rec, &id, sizeof id);
        rec[8 + rng_below(8)] = (uint8_t)rng();
        size_t m = sizeof rec < n - i ? sizeof rec : n - i;
        memcpy(p + i, rec, m);
    }
}

/* Mixed 4 KiB blocks: zeros, text, records, random, plus short zero holes. */
static void fill_mixed(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 4096) {
        size_t m = n - i < 4096 ? n - i : 4096;
        switch (rng_below(10)) {
        case 0: case 1: case 2: memset(p + i, 0, m); break;
        case 3: case 4: fill_text(p + i, m); break;
        case 5: case 6: case 7: fill_records(p + i, m); break;
        default: fill_random(p + i, m); break;
        }
        if (m > 64 && rng_below(3) == 0) {
            size_t at = rng_below(m - 64);
            memset(p + i + at, 0, rng_below(64));
        }
    }
}

enum pattern { PAT_ZERO, PAT_RANDOM, PAT_TEXT, PAT_MIXED, PAT__COUNT };
static const char *pattern_name[] = { "zeros", "random", "text", "mixed" };

static void fill(enum pattern pat, uint8_t *p, size_t n)
{
    switch (pat) {
    case PAT_ZERO: memset(p, 0, n); break;
    case PAT_RANDOM: fill_random(p, n); break;
    case PAT_TEXT: fill_text(p, n); break;
    default: fill_mixed(p, n); break;
    }
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

static void expect_same(const uint8_t *a, const uint8_t *b, size_t n, const char *what)
{
    if (memcmp(a, b, n) == 0)
        return;
    size_t i = 0;
    while (a[i] == b[i])
        i++;
    fail_msg("%s: first difference at byte %zu of %zu (%#x vs %#x)", what, i, n, a[i], b[i]);
}

static const int codecs[] = { NFC_CODEC_ZLIB, NFC_CODEC_FASTLZ, NFC_CODEC_SKIPZ };

/* Encode into a buffer of exactly len bytes (enough for anything worth
 * sending), decode back, compare.  Returns the encoded size (0: raw). */
static size_t round_trip(int codec, const uint8_t *src, size_t len, const char *what)
{
    size_t cap = len;
    uint8_t *enc = xmalloc(cap);
    uint8_t *dec = xmalloc(len + 1);
    size_t n = nfc_encode(codec, src, len, enc, cap);
    if (n) {
        if (n >= len)
            fail_msg("%s/%s: encoded %zu bytes from %zu", nfc_codec_name(codec), what, n, len);
        assert_true(n <= nfc_codec_bound(codec, len));
        dec[len] = 0xA5;
        int rc = nfc_decode(codec, enc, n, dec, len);
        if (rc != 0)
            fail_msg("%s/%s (%zu bytes): decode failed %d: %s", nfc_codec_name(codec), what,
                     len, rc, vd_err_msg());
        assert_int_equal(dec[len], 0xA5);
        expect_same(src, dec, len, what);
        /* One byte short or long is always an error. */
        TU_ERR(nfc_decode(codec, enc, n, dec, len + 1), VD_E_CORRUPT);
        if (len)
            TU_ERR(nfc_decode(codec, enc, n, dec, len - 1), VD_E_CORRUPT);
    }
    free(enc);
    free(dec);
    return n;
}

/* ---- names, bounds --------------------------------------------------------- */

static void test_names_bounds(void **state)
{
    (void)state;
    assert_string_equal(nfc_codec_name(NFC_CODEC_RAW), "raw");
    assert_string_equal(nfc_codec_name(NFC_CODEC_ZLIB), "zlib");
    assert_string_equal(nfc_codec_name(NFC_CODEC_FASTLZ), "fastlz");
    assert_string_equal(nfc_codec_name(NFC_CODEC_SKIPZ), "skipz");
    assert_string_equal(nfc_codec_name(4), "?");
    assert_string_equal(nfc_codec_name(-1), "?");
    static const size_t sizes[] = { 0, 1, 16, 65536, 2 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        assert_int_equal(nfc_codec_bound(NFC_CODEC_RAW, n), n);
        assert_true(nfc_codec_bound(NFC_CODEC_ZLIB, n) > n);
        assert_true(nfc_codec_bound(NFC_CODEC_FASTLZ, n) >= n + n / 32 + 1);
        assert_true(nfc_codec_bound(NFC_CODEC_FASTLZ, n) >= fastlz_bound(n));
        assert_true(nfc_codec_bound(NFC_CODEC_SKIPZ, n) >= 8 + 9 * n);
    }
    assert_int_equal(nfc_codec_bound(NFC_CODEC_SKIPZ, SIZE_MAX / 2), SIZE_MAX);
    assert_int_equal(nfc_codec_bound(7, 100), 0);
}

/* ---- round trips ----------------------------------------------------------- */

static void test_round_trips(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 15, 16, 17, 4095, 65535, 65536, 65537, MiB, 2 * MiB };
    uint8_t *src = xmalloc(2 * MiB);
    rng_seed(12345);
    for (int pat = 0; pat < PAT__COUNT; pat++) {
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t len = sizes[si];
            fill((enum pattern)pat, src, len);
            for (size_t c = 0; c < sizeof codecs / sizeof *codecs; c++) {
                int codec = codecs[c];
                char what[64];
                snprintf(what, sizeof what, "%s %zu", pattern_name[pat], len);
                size_t n = round_trip(codec, src, len, what);
                /* What must and must not compress. */
                if (pat == PAT_RANDOM && codec != NFC_CODEC_SKIPZ && len)
                    if (n != 0)
                        fail_msg("%s: random data encoded to %zu bytes", what, n);
                if (pat == PAT_RANDOM && codec == NFC_CODEC_SKIPZ && len >= 64)
                    assert_int_equal(n, 0);
                /* libdeflate stores inputs of up to about 32 bytes. */
                if (pat == PAT_ZERO && len >= (codec == NFC_CODEC_ZLIB ? 64 : 17) && n == 0)
                    fail_msg("%s/%s: zeros not encoded", nfc_codec_name(codec), what);
                if (pat == PAT_ZERO && codec == NFC_CODEC_SKIPZ && len > 8)
                    assert_int_equal(n, 8);
                /* Mixed data is 4 KiB blocks, one in five random: many
                 * blocks always compress. */
                if (((pat == PAT_TEXT && codec != NFC_CODEC_SKIPZ && len >= 4095) ||
                     (pat == PAT_MIXED && len >= 65535)) && n == 0)
                    fail_msg("%s/%s: not encoded", nfc_codec_name(codec), what);
                if (codec == NFC_CODEC_FASTLZ && len < 16)
                    assert_int_equal(n, 0);
            }
            /* Raw: never "smaller", decodes only at its own length. */
            assert_int_equal(nfc_encode(NFC_CODEC_RAW, src, len, src, len), 0);
            uint8_t *copy = xmalloc(len);
            TU_OK(nfc_decode(NFC_CODEC_RAW, src, len, copy, len));
            expect_same(src, copy, len, "raw");
            free(copy);
        }
    }
    free(src);
}

/* A small cap gives 0, never a partial encoding; the full bound always
 * works with the FastLZ API even for incompressible data. */
static void test_caps(void **state)
{
    (void)state;
    size_t len = 65536;
    uint8_t *src = xmalloc(len), *dst = xmalloc(fastlz_bound(len));
    rng_seed(7);
    fill_mixed(src, len);
    for (size_t c = 0; c < sizeof codecs / sizeof *codecs; c++) {
        assert_int_equal(nfc_encode(codecs[c], src, len, dst, 10), 0);
        assert_int_equal(nfc_encode(codecs[c], src, len, dst, 0), 0);
        size_t full = nfc_encode(codecs[c], src, len, dst, len);
        assert_true(full > 0);
        assert_int_equal(nfc_encode(codecs[c], src, len, dst, full - 1), 0);
        assert_int_equal(nfc_encode(codecs[c], src, len, dst, full), full);
    }
    /* zlib: VDDK's streams start 78 01 (level 1). */
    size_t z = nfc_encode(NFC_CODEC_ZLIB, src, len, dst, len);
    assert_true(z > 2);
    assert_int_equal(dst[0], 0x78);
    assert_int_equal(dst[1], 0x01);
    /* FastLZ at the block API: random data expands within the bound. */
    fill_random(src, len);
    for (int level = 1; level <= 2; level++) {
        size_t n = fastlz_compress(level, src, len, dst);
        assert_true(n > len && n <= fastlz_bound(len));
        uint8_t *back = xmalloc(len);
        assert_int_equal(fastlz_decompress(dst, n, back, len), (long)len);
        expect_same(src, back, len, "fastlz random");
        assert_int_equal(fastlz_decompress(dst, n, back, len - 1), -1);
        free(back);
    }
    /* Under 16 bytes FastLZ is never used, even for zeros. */
    memset(src, 0, 15);
    assert_int_equal(nfc_encode(NFC_CODEC_FASTLZ, src, 15, dst, 15), 0);
    assert_true(nfc_encode(NFC_CODEC_FASTLZ, src, 16, dst, 16) > 0);
    free(src);
    free(dst);
}

/* ---- FastLZ ------------------------------------------------------------------ */

static void test_fastlz_level_tag(void **state)
{
    (void)state;
    static const size_t sizes[] = { 16, 4096, 65535, 65536, 65537, 2 * MiB };
    uint8_t *src = xmalloc(2 * MiB), *dst = xmalloc(2 * MiB);
    for (size_t i = 0; i < 2 * MiB; i++)
        src[i] = (uint8_t)("abcd"[i % 4] + i / 4096);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = nfc_encode(NFC_CODEC_FASTLZ, src, sizes[i], dst, sizes[i]);
        assert_true(n > 0);
        unsigned want = sizes[i] >= 65536 ? 1 : 0;
        if ((unsigned)(dst[0] >> 5) != want)
            fail_msg("%zu bytes: level tag %u, expected %u", sizes[i], dst[0] >> 5, want);
    }
    /* The block API records whichever level it is asked for. */
    for (int level = 1; level <= 2; level++) {
        size_t n = fastlz_compress(level, src, 1000, dst);
        assert_int_equal(dst[0] >> 5, level - 1);
        uint8_t back[1000];
        assert_int_equal(fastlz_decompress(dst, n, back, sizeof back), 1000);
        expect_same(src, back, 1000, "level");
    }
    assert_int_equal(fastlz_compress(3, src, 1000, dst), 0);
    free(src);
    free(dst);
}

/* Decode a hand-made block and compare with the expected bytes. */
static void expect_block(const uint8_t *blk, size_t n, const uint8_t *want, size_t wn,
                         const char *what)
{
    uint8_t *out = xmalloc(wn + 16);
    long got = fastlz_decompress(blk, n, out, wn + 16);
    if (got != (long)wn)
        fail_msg("%s: decoded %ld bytes, expected %zu", what, got, wn);
    expect_same(want, out, wn, what);
    /* Exactly enough room works; one byte less does not. */
    assert_int_equal(fastlz_decompress(blk, n, out, wn), (long)wn);
    if (wn)
        assert_int_equal(fastlz_decompress(blk, n, out, wn - 1), -1);
    /* And through the codec layer. */
    TU_OK(nfc_decode(NFC_CODEC_FASTLZ, blk, n, out, wn));
    expect_same(want, out, wn, what);
    /* Every truncation fails. */
    for (size_t k = 0; k < n; k++) {
        long r = fastlz_decompress(blk, k, out, wn + 16);
        if (r == (long)wn)
            fail_msg("%s: truncated to %zu of %zu bytes still decodes", what, k, n);
    }
    free(out);
}

/* Known answers, level 1 (the examples of the format description and
 * some of our own). */
static void test_fastlz_vectors_l1(void **state)
{
    (void)state;
    /* Literal run of 3. */
    static const uint8_t b1[] = { 0x02, 'A', 'B', 'C' };
    expect_block(b1, sizeof b1, (const uint8_t *)"ABC", 3, "l1 literals");
    /* Literals ABCD, then a 3-byte match 3 back (offset code 2). */
    static const uint8_t b2[] = { 0x03, 'A', 'B', 'C', 'D', 0x20, 0x02 };
    expect_block(b2, sizeof b2, (const uint8_t *)"ABCDBCD", 7, "l1 short match");
    /* 'a', then a 4-byte match 1 back: an overlapping copy. */
    static const uint8_t b3[] = { 0x00, 'a', 0x40, 0x00 };
    expect_block(b3, sizeof b3, (const uint8_t *)"aaaaa", 5, "l1 overlap");
    /* 'DE', long match: length byte 1 -> 10 bytes, 2 back. */
    static const uint8_t b4[] = { 0x01, 'D', 'E', 0xE0, 0x01, 0x01 };
    expect_block(b4, sizeof b4, (const uint8_t *)"DEDEDEDEDEDE", 12, "l1 long match");
    /* Longest short match (8), longest long match (9 + 255 = 264). */
    static const uint8_t b5[] = { 0x01, 'x', 'y', 0xC0, 0x01, 0xE0, 0xFF, 0x00 };
    uint8_t w5[2 + 8 + 264];
    w5[0] = 'x';
    w5[1] = 'y';
    for (size_t i = 2; i < 10; i++)
        w5[i] = w5[i - 2];
    for (size_t i = 10; i < sizeof w5; i++)
        w5[i] = w5[i - 1];
    expect_block(b5, sizeof b5, w5, sizeof w5, "l1 longest matches");
    /* A 32-byte literal run, then a second literal run. */
    uint8_t b6[1 + 32 + 1 + 2];
    b6[0] = 31;
    for (int i = 0; i < 32; i++)
        b6[1 + i] = (uint8_t)(0x80 + i);
    b6[33] = 1;
    b6[34] = 'q';
    b6[35] = 'r';
    uint8_t w6[34];
    memcpy(w6, b6 + 1, 32);
    w6[32] = 'q';
    w6[33] = 'r';
    expect_block(b6, sizeof b6, w6, sizeof w6, "l1 32-byte literal run");
}

/* A level 1 block reaching back 8192 bytes: 8192 literals (256 runs of
 * 32), then offset code 8191 (high bits 31, low byte 255) with length 3.
 * At level 1 that is a plain distance, not an escape. */
static void test_fastlz_l1_max_distance(void **state)
{
    (void)state;
    size_t nlit = 8192;
    uint8_t *blk = xmalloc(nlit + nlit / 32 + 8), *want = xmalloc(nlit + 3);
    rng_seed(5);
    fill_random(want, nlit);
    size_t k = 0;
    for (size_t i = 0; i < nlit; i += 32) {
        blk[k++] = 31;
        memcpy(blk + k, want + i, 32);
        k += 32;
    }
    blk[k++] = (1 << 5) | 31;
    blk[k++] = 0xFF;
    for (size_t i = 0; i < 3; i++)
        want[nlit + i] = want[i];
    expect_block(blk, k, want, nlit + 3, "l1 distance 8192");
    /* One further (impossible to express) is tested as "before start": a
     * match 2 back right after a single literal. */
    static const uint8_t bad[] = { 0x00, 'a', 0x20, 0x01 };
    uint8_t out[16];
    assert_int_equal(fastlz_decompress(bad, sizeof bad, out, sizeof out), -1);
    free(blk);
    free(want);
}

/* Known answers, level 2. */
static void test_fastlz_vectors_l2(void **state)
{
    (void)state;
    /* Tag 1 in the top bits of the first literal opcode. */
    static const uint8_t b1[] = { 0x22, 'A', 'B', 'C' };
    expect_block(b1, sizeof b1, (const uint8_t *)"ABC", 3, "l2 literals");
    static const uint8_t b2[] = { 0x23, 'A', 'B', 'C', 'D', 0x20, 0x02 };
    expect_block(b2, sizeof b2, (const uint8_t *)"ABCDBCD", 7, "l2 short match");
    /* Long match, one length byte: 9 + 1 = 10. */
    static const uint8_t b3[] = { 0x21, 'D', 'E', 0xE0, 0x01, 0x01 };
    expect_block(b3, sizeof b3, (const uint8_t *)"DEDEDEDEDEDE", 12, "l2 long match");
    /* Multi-byte length: 9 + 255 + 255 + 7 = 526, distance 1. */
    static const uint8_t b4[] = { 0x20, 'z', 0xE0, 0xFF, 0xFF, 0x07, 0x00 };
    uint8_t w4[1 + 526];
    memset(w4, 'z', sizeof w4);
    expect_block(b4, sizeof b4, w4, sizeof w4, "l2 multi-byte length");
    /* A length byte of exactly 255 then 0: 9 + 255 + 0 = 264. */
    static const uint8_t b5[] = { 0x20, 'y', 0xE0, 0xFF, 0x00, 0x00 };
    uint8_t w5[1 + 264];
    memset(w5, 'y', sizeof w5);
    expect_block(b5, sizeof b5, w5, sizeof w5, "l2 length 255,0");
    /* Then a literal after the match. */
    static const uint8_t b6[] = { 0x21, 'a', 'b', 0x40, 0x01, 0x00, '!' };
    expect_block(b6, sizeof b6, (const uint8_t *)"ababab!", 7, "l2 match then literal");
}

/* Level 2 far distances: offset code 8191 escapes to a big-endian 16-bit
 * value V and distance V + 8192.  Built over 70000 literal bytes. */
static void test_fastlz_l2_far(void **state)
{
    (void)state;
    size_t nlit = 70000;
    size_t cap = nlit + nlit / 32 + 64;
    uint8_t *blk = xmalloc(cap), *want = xmalloc(nlit + 1024);
    rng_seed(77);
    fill_random(want, nlit);
    size_t k = 0;
    for (size_t i = 0; i < nlit; i += 32) {
        size_t run = nlit - i < 32 ? nlit - i : 32;
        blk[k++] = (uint8_t)(run - 1);
        memcpy(blk + k, want + i, run);
        k += run;
    }
    blk[0] |= 0x20;
    size_t w = nlit;
    /* Short far match: length 5 (code 3), V = 0x0010: distance 8208. */
    blk[k++] = (3 << 5) | 31;
    blk[k++] = 0xFF;
    blk[k++] = 0x00;
    blk[k++] = 0x10;
    for (size_t i = 0; i < 5; i++, w++)
        want[w] = want[w - 8208];
    /* Long far match: 9 + 255 + 3 = 267 bytes, V = 0x0102: 8192 + 258. */
    blk[k++] = (7 << 5) | 31;
    blk[k++] = 0xFF;
    blk[k++] = 0x03;
    blk[k++] = 0xFF;
    blk[k++] = 0x01;
    blk[k++] = 0x02;
    for (size_t i = 0; i < 267; i++, w++)
        want[w] = want[w - (8192 + 258)];
    /* Back to byte 0: the distance is the whole output so far (70272). */
    size_t far = w;
    blk[k++] = (1 << 5) | 31;
    blk[k++] = 0xFF;
    blk[k++] = (uint8_t)((far - 8192) >> 8);
    blk[k++] = (uint8_t)(far - 8192);
    for (size_t i = 0; i < 3; i++, w++)
        want[w] = want[w - far];
    /* Near, just under the escape: code 8190 -> distance 8191. */
    blk[k++] = (1 << 5) | 31;
    blk[k++] = 0xFE;
    for (size_t i = 0; i < 3; i++, w++)
        want[w] = want[w - 8191];
    expect_block(blk, k, want, w, "l2 far distances");

    /* One byte farther than the output: before the start. */
    size_t k2 = k;
    blk[k2++] = (1 << 5) | 31;
    blk[k2++] = 0xFF;
    blk[k2++] = (uint8_t)((w + 1 - 8192) >> 8);
    blk[k2++] = (uint8_t)(w + 1 - 8192);
    uint8_t *out = xmalloc(w + 64);
    assert_int_equal(fastlz_decompress(blk, k2, out, w + 64), -1);
    /* Truncated escape: only one of the two offset bytes. */
    assert_int_equal(fastlz_decompress(blk, k2 - 1, out, w + 64), -1);
    /* The same bytes at level 1 mean distance 8192, not an escape. */
    blk[0] &= 0x1F;
    long l1 = fastlz_decompress(blk, nlit + nlit / 32 + (nlit % 32 != 0) + 2, out, w + 64);
    assert_int_equal(l1, (long)nlit + 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(out[nlit + i], want[nlit + i - 8192]);
    free(out);
    free(blk);
    free(want);
}

/* Our level 2 encoder uses far matches: data repeating with a period
 * above 8191 only compresses through them. */
static void test_fastlz_encoder_far(void **state)
{
    (void)state;
    size_t period = 20000, len = 4 * period;
    uint8_t *src = xmalloc(len), *dst = xmalloc(fastlz_bound(len)), *back = xmalloc(len);
    rng_seed(3);
    fill_random(src, period);
    for (size_t i = period; i < len; i++)
        src[i] = src[i - period];
    size_t n2 = fastlz_compress(2, src, len, dst);
    assert_true(n2 < period + period / 8);
    assert_int_equal(fastlz_decompress(dst, n2, back, len), (long)len);
    expect_same(src, back, len, "far encode");
    /* Level 1 cannot reach: about the size of the input. */
    size_t n1 = fastlz_compress(1, src, len, dst);
    assert_true(n1 > len);
    assert_int_equal(fastlz_decompress(dst, n1, back, len), (long)len);
    expect_same(src, back, len, "level 1 encode");
    free(src);
    free(dst);
    free(back);
}

static void test_fastlz_corrupt(void **state)
{
    (void)state;
    uint8_t out[64] = { 0 };
    /* Empty block; bad level tags 2..7. */
    assert_int_equal(fastlz_decompress(out, 0, out, sizeof out), -1);
    for (unsigned tag = 2; tag < 8; tag++) {
        uint8_t b[] = { (uint8_t)(tag << 5), 'a' };
        assert_int_equal(fastlz_decompress(b, sizeof b, out, sizeof out), -1);
    }
    /* Literal run longer than the input. */
    static const uint8_t t1[] = { 0x05, 'a', 'b' };
    assert_int_equal(fastlz_decompress(t1, sizeof t1, out, sizeof out), -1);
    /* Match before the start: first byte, 1 back from nothing... */
    static const uint8_t t2[] = { 0x00, 'a', 0x20, 0x05 };
    assert_int_equal(fastlz_decompress(t2, sizeof t2, out, sizeof out), -1);
    /* ...and far back via the high offset bits. */
    static const uint8_t t3[] = { 0x00, 'a', 0x3F, 0x00 };
    assert_int_equal(fastlz_decompress(t3, sizeof t3, out, sizeof out), -1);
    /* Output overflow: a 264-byte match into 64 bytes. */
    static const uint8_t t4[] = { 0x00, 'a', 0xE0, 0xFF, 0x00 };
    assert_int_equal(fastlz_decompress(t4, sizeof t4, out, sizeof out), -1);
    /* Level 2: an endless run of 255 length bytes. */
    uint8_t t5[600];
    t5[0] = 0x20;
    t5[1] = 'a';
    t5[2] = 0xE0;
    memset(t5 + 3, 0xFF, sizeof t5 - 3);
    assert_int_equal(fastlz_decompress(t5, sizeof t5, out, sizeof out), -1);
    uint8_t *big = xmalloc(1 * MiB);
    assert_int_equal(fastlz_decompress(t5, sizeof t5, big, 1 * MiB), -1);
    free(big);
    /* A lone byte after the last instruction (a truncated opcode). */
    static const uint8_t t6[] = { 0x00, 'a', 0x40, 0x00, 0x00 };
    assert_int_equal(fastlz_decompress(t6, sizeof t6, out, sizeof out), -1);
    /* Truncated: match opcode without its offset byte; long match without
     * its length byte. */
    static const uint8_t t7[] = { 0x00, 'a', 0x40 };
    assert_int_equal(fastlz_decompress(t7, sizeof t7, out, sizeof out), -1);
    static const uint8_t t8[] = { 0x00, 'a', 0xE0 };
    assert_int_equal(fastlz_decompress(t8, sizeof t8, out, sizeof out), -1);
    static const uint8_t t9[] = { 0x20, 'a', 0xE0, 0xFF };
    assert_int_equal(fastlz_decompress(t9, sizeof t9, out, sizeof out), -1);
    /* No room at all. */
    static const uint8_t lit1[] = { 0x00, 'a' };
    assert_int_equal(fastlz_decompress(lit1, sizeof lit1, out, 1), 1);
    assert_int_equal(fastlz_decompress(lit1, sizeof lit1, out, 0), -1);
    assert_int_equal(fastlz_decompress(lit1, sizeof lit1, NULL, 0), -1);

    /* Through the codec layer: -VD_E_CORRUPT with a FastLZ detail. */
    TU_ERR(nfc_decode(NFC_CODEC_FASTLZ, t2, sizeof t2, out, 5), VD_E_CORRUPT);
    TU_MSG_HAS("FastLZ");
    TU_ERR(nfc_decode(NFC_CODEC_FASTLZ, t4, sizeof t4, out, sizeof out), VD_E_CORRUPT);
    static const uint8_t ok[] = { 0x00, 'a', 0x40, 0x00 };
    TU_ERR(nfc_decode(NFC_CODEC_FASTLZ, ok, sizeof ok, out, 6), VD_E_CORRUPT);
    TU_MSG_HAS("decodes to 5 bytes, expected 6");
    TU_ERR(nfc_decode(NFC_CODEC_FASTLZ, ok, 0, out, 0), VD_E_CORRUPT);
}

/* ---- SkipZ --------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_skipz_layout(void **state)
{
    (void)state;
    uint8_t src[256], enc[256], dec[256];
    /* All zeros: the header alone, fragment length little-endian. */
    memset(src, 0, sizeof src);
    assert_int_equal(nfc_encode(NFC_CODEC_SKIPZ, src, 200, enc, sizeof enc), 8);
    static const uint8_t h200[] = { 200, 0, 0, 0, 0, 0, 0, 0 };
    assert_memory_equal(enc, h200, 8);
    TU_OK(nfc_decode(NFC_CODEC_SKIPZ, enc, 8, dec, 200));
    expect_same(src, dec, 200, "zeros");
    /* 8 bytes or fewer: the header is not smaller. */
    assert_int_equal(nfc_encode(NFC_CODEC_SKIPZ, src, 8, enc, sizeof enc), 0);
    assert_int_equal(nfc_encode(NFC_CODEC_SKIPZ, src, 9, enc, sizeof enc), 8);

    /* One run of 4 bytes at offset 10. */
    src[10] = 1, src[11] = 2, src[12] = 3, src[13] = 4;
    static const uint8_t one[] = { 64, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4 };
    assert_int_equal(nfc_encode(NFC_CODEC_SKIPZ, src, 64, enc, sizeof enc), sizeof one);
    assert_memory_equal(enc, one, sizeof one);

    /* A 15-byte zero gap stays inside a run; a 16-byte gap splits it.  Runs: [10, 14) + 15 zeros + [29, 30) = [10, 30); then 16
     * zeros; then [46, 48). */
    src[29] = 5;
    src[46] = 6, src[47] = 7;
    size_t n = nfc_encode(NFC_CODEC_SKIPZ, src, 128, enc, sizeof enc);
    assert_int_equal(n, 8 + 8 + 20 + 8 + 2);
    uint8_t want[8 + 8 + 20 + 8 + 2];
    put32(want, 128);
    put32(want + 4, 0);
    put32(want + 8, 10);
    put32(want + 12, 20);
    memcpy(want + 16, src + 10, 20);
    put32(want + 36, 46);
    put32(want + 40, 2);
    want[44] = 6, want[45] = 7;
    assert_memory_equal(enc, want, n);
    TU_OK(nfc_decode(NFC_CODEC_SKIPZ, enc, n, dec, 128));
    expect_same(src, dec, 128, "two runs");

    /* Offsets and lengths past 16 bits: little-endian bytes. */
    size_t big = 0x20000;
    uint8_t *s = calloc(1, big), *e = xmalloc(big), *d = xmalloc(big);
    assert_non_null(s);
    s[0x10203] = 0xAB;
    n = nfc_encode(NFC_CODEC_SKIPZ, s, big, e, big);
    assert_int_equal(n, 17);
    static const uint8_t wbig[] = { 0, 0, 2, 0, 0, 0, 0, 0, 0x03, 0x02, 0x01, 0, 1, 0, 0, 0, 0xAB };
    assert_memory_equal(e, wbig, sizeof wbig);
    memset(d, 0x55, big);
    TU_OK(nfc_decode(NFC_CODEC_SKIPZ, e, n, d, big));
    expect_same(s, d, big, "big offsets");
    /* Adjacent runs (one ends where the next starts) are valid. */
    static const uint8_t adj[] = { 6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,
                                   'a', 2, 0, 0, 0, 2, 0, 0, 0, 'b', 'c' };
    TU_OK(nfc_decode(NFC_CODEC_SKIPZ, adj, sizeof adj, dec, 6));
    static const uint8_t adjw[] = { 0, 'a', 'b', 'c', 0, 0 };
    assert_memory_equal(dec, adjw, 6);
    free(s);
    free(e);
    free(d);
}

/* A header then runs (off, len, data filled with 0x11). */
static size_t skipz_make(uint8_t *p, uint32_t flen, uint32_t pad, const uint32_t *runs,
                         size_t nruns)
{
    put32(p, flen);
    put32(p + 4, pad);
    size_t k = 8;
    for (size_t i = 0; i < nruns; i++) {
        put32(p + k, runs[2 * i]);
        put32(p + k + 4, runs[2 * i + 1]);
        k += 8;
        memset(p + k, 0x11, runs[2 * i + 1]);
        k += runs[2 * i + 1];
    }
    return k;
}

static void expect_skipz_corrupt(const uint8_t *p, size_t n, size_t outlen, const char *needle)
{
    uint8_t *out = xmalloc(outlen);
    TU_ERR(nfc_decode(NFC_CODEC_SKIPZ, p, n, out, outlen), VD_E_CORRUPT);
    TU_MSG_HAS("SkipZ");
    TU_MSG_HAS(needle);
    free(out);
}

static void test_skipz_corrupt(void **state)
{
    (void)state;
    uint8_t p[512];
    size_t n;
    /* Shorter than the header. */
    n = skipz_make(p, 100, 0, NULL, 0);
    expect_skipz_corrupt(p, 7, 100, "header");
    expect_skipz_corrupt(p, 0, 100, "header");
    /* Wrong fragment length. */
    expect_skipz_corrupt(p, n, 99, "fragment length 100, expected 99");
    /* Second word not zero. */
    n = skipz_make(p, 100, 1, NULL, 0);
    expect_skipz_corrupt(p, n, 100, "second word");
    /* Runs out of order, overlapping, past the end, empty. */
    static const uint32_t order[] = { 50, 4, 10, 4 };
    n = skipz_make(p, 100, 0, order, 2);
    expect_skipz_corrupt(p, n, 100, "out of order");
    static const uint32_t overlap[] = { 10, 10, 15, 4 };
    n = skipz_make(p, 100, 0, overlap, 2);
    expect_skipz_corrupt(p, n, 100, "overlapping");
    static const uint32_t past[] = { 96, 5 };
    n = skipz_make(p, 100, 0, past, 1);
    expect_skipz_corrupt(p, n, 100, "past the fragment end");
    static const uint32_t wrap[] = { 0xFFFFFFF0u, 0x20 };
    n = skipz_make(p, 100, 0, wrap, 1);
    expect_skipz_corrupt(p, 16, 100, "past the fragment end");
    static const uint32_t empty[] = { 10, 0 };
    n = skipz_make(p, 100, 0, empty, 1);
    expect_skipz_corrupt(p, n, 100, "empty");
    /* Run data truncated; run header truncated; trailing bytes. */
    static const uint32_t one[] = { 10, 20 };
    n = skipz_make(p, 100, 0, one, 1);
    expect_skipz_corrupt(p, n - 1, 100, "remain");
    expect_skipz_corrupt(p, 12, 100, "trailing");
    p[n] = 0;
    expect_skipz_corrupt(p, n + 1, 100, "trailing");
    uint8_t out[100];
    TU_OK(nfc_decode(NFC_CODEC_SKIPZ, p, n, out, 100));
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(out[i], i >= 10 && i < 30 ? 0x11 : 0);
}

/* ---- zlib and raw corrupt input ------------------------------------------------ */

static void test_zlib_corrupt(void **state)
{
    (void)state;
    size_t len = 65536;
    uint8_t *src = xmalloc(len), *enc = xmalloc(len + 16), *out = xmalloc(len + 1);
    rng_seed(11);
    fill_mixed(src, len);
    size_t n = nfc_encode(NFC_CODEC_ZLIB, src, len, enc, len);
    assert_true(n > 16);
    TU_OK(nfc_decode(NFC_CODEC_ZLIB, enc, n, out, len));
    expect_same(src, out, len, "zlib");
    /* Garbage; empty; truncated at several points. */
    static const uint8_t junk[] = { 0x12, 0x34, 0x56, 0x78, 0x9a };
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, junk, sizeof junk, out, len), VD_E_CORRUPT);
    TU_MSG_HAS("zlib");
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, 0, out, len), VD_E_CORRUPT);
    static const size_t cuts[] = { 1, 2, 10 };
    for (size_t i = 0; i < 3; i++)
        TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, cuts[i], out, len), VD_E_CORRUPT);
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n / 2, out, len), VD_E_CORRUPT);
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n - 1, out, len), VD_E_CORRUPT);
    /* Adler-32 mismatch. */
    enc[n - 1] ^= 1;
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n, out, len), VD_E_CORRUPT);
    enc[n - 1] ^= 1;
    /* Wrong decoded length, both ways. */
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n, out, len - 1), VD_E_CORRUPT);
    TU_MSG_HAS("more than");
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n, out, len + 1), VD_E_CORRUPT);
    TU_MSG_HAS("expected");
    /* Bytes after the end of the stream. */
    enc[n] = 0;
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc, n + 1, out, len), VD_E_CORRUPT);
    TU_MSG_HAS("follow the end");
    /* A raw deflate stream (no zlib header) is not zlib. */
    TU_ERR(nfc_decode(NFC_CODEC_ZLIB, enc + 2, n - 6, out, len), VD_E_CORRUPT);
    /* Raw and unknown codecs. */
    TU_ERR(nfc_decode(NFC_CODEC_RAW, src, 10, out, 11), VD_E_CORRUPT);
    TU_MSG_HAS("raw");
    TU_ERR(nfc_decode(9, src, 10, out, 10), VD_E_CORRUPT);
    assert_int_equal(nfc_encode(9, src, 100, enc, 100), 0);
    free(src);
    free(enc);
    free(out);
}

/* ---- randomised ------------------------------------------------------------------ */

/* Random sizes and content; every codec round-trips, and randomly damaged
 * encodings decode to an error or to some bytes, never out of bounds (the
 * sanitizer build checks that). */
static void test_random_loop(void **state)
{
    (void)state;
    size_t maxlen = 2 * MiB;
    uint8_t *src = xmalloc(maxlen), *enc = xmalloc(maxlen), *out = xmalloc(maxlen);
    rng_seed(0x5eed);
    int iters = getenv("NFC_CODEC_ITERS") ? atoi(getenv("NFC_CODEC_ITERS")) : 400;
    for (int it = 0; it < iters; it++) {
        size_t len;
        switch (rng_below(4)) {
        case 0: len = rng_below(300); break;
        case 1: len = rng_below(70000); break;
        case 2: len = 65536 * (1 + rng_below(4)); break;
        default: len = it % 40 == 0 ? maxlen - rng_below(3) : rng_below(300000); break;
        }
        /* Stitch segments of the four patterns. */
        for (size_t i = 0; i < len;) {
            size_t m = 1 + rng_below(it % 2 ? 40000 : 600);
            if (m > len - i)
                m = len - i;
            fill((enum pattern)rng_below(PAT__COUNT), src + i, m);
            i += m;
        }
        int codec = codecs[rng_below(3)];
        char what[64];
        snprintf(what, sizeof what, "iteration %d", it);
        size_t n = round_trip(codec, src, len, what);
        if (!n)
            continue;
        n = nfc_encode(codec, src, len, enc, len);
        for (int damage = 0; damage < 4; damage++) {
            size_t at = rng_below(n);
            uint8_t old = enc[at];
            enc[at] ^= (uint8_t)(1 + rng_below(255));
            int rc = nfc_decode(codec, enc, n, out, len);
            assert_true(rc == 0 || rc == -VD_E_CORRUPT);
            enc[at] = old;
            size_t cut = rng_below(n);
            rc = nfc_decode(codec, enc, cut, out, len);
            assert_true(rc == 0 || rc == -VD_E_CORRUPT);
        }
    }
    free(src);
    free(enc);
    free(out);
}

/* ---- threads ----------------------------------------------------------------------- */

static void *zlib_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    size_t len = 65536;
    uint8_t *src = malloc(len), *enc = malloc(len), *out = malloc(len);
    int bad = !src || !enc || !out;
    for (int i = 0; i < 20 && !bad; i++) {
        for (size_t k = 0; k < len; k++)
            src[k] = (uint8_t)((k / 64) * seed + i);
        size_t n = nfc_encode(NFC_CODEC_ZLIB, src, len, enc, len);
        bad = n == 0 || nfc_decode(NFC_CODEC_ZLIB, enc, n, out, len) != 0 ||
              memcmp(src, out, len) != 0;
    }
    free(src);
    free(enc);
    free(out);
    return (void *)(uintptr_t)bad;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[6];
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&t[i], NULL, zlib_worker, (void *)(uintptr_t)(i + 3)), 0);
    for (int i = 0; i < 6; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
}

/* ---- speed (NFC_CODEC_BENCH=1) -------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_one(const char *name, int codec, const uint8_t *src, size_t total, size_t frag)
{
    size_t nfrag = total / frag;
    uint8_t *enc = xmalloc(total);
    size_t *sizes = xmalloc(nfrag * sizeof *sizes);
    uint8_t *out = xmalloc(frag);
    size_t encoded = 0, packed = 0;
    int reps = 0;
    double t0 = now(), t;
    do {
        encoded = packed = 0;
        for (size_t f = 0; f < nfrag; f++) {
            sizes[f] = nfc_encode(codec, src + f * frag, frag, enc + f * frag, frag);
            encoded += sizes[f] ? sizes[f] : frag;
            packed += sizes[f] != 0;
        }
        reps++;
    } while ((t = now() - t0) < 1.0);
    double enc_mbs = (double)total * reps / t / 1e6;
    reps = 0;
    t0 = now();
    do {
        for (size_t f = 0; f < nfrag; f++)
            if (sizes[f])
                TU_OK(nfc_decode(codec, enc + f * frag, sizes[f], out, frag));
        reps++;
    } while ((t = now() - t0) < 1.0);
    /* Decode speed over the fragments that were encoded (raw ones cost a
     * memcpy, not counted). */
    double dec_mbs = packed ? (double)packed * frag * reps / t / 1e6 : 0;
    printf("  %-8s %-7s %3zu KiB frags: ratio %5.1f%% (%zu of %zu encoded), "
           "encode %7.0f MB/s, decode %7.0f MB/s\n",
           name, nfc_codec_name(codec), frag / KiB, 100.0 * (double)encoded / (double)total,
           packed, nfrag, enc_mbs, dec_mbs);
    free(enc);
    free(sizes);
    free(out);
}

/* Up to total bytes of this system's shared libraries and binaries, as a
 * stand-in for real disk contents; 0 if none. */
static size_t read_system_files(uint8_t *p, size_t total)
{
    static const char *files[] = {
        "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/cmake", "/usr/bin/bash",
        "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/bin/gcc", "/usr/share/dict/words",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/bin/perl", "/usr/bin/python3",
    };
    size_t got = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files && got < total; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f)
            continue;
        got += fread(p + got, 1, total - got, f);
        fclose(f);
    }
    return got;
}

static void test_bench(void **state)
{
    (void)state;
    if (!getenv("NFC_CODEC_BENCH"))
        skip();
    size_t total = 32 * MiB;
    uint8_t *src = xmalloc(total);
    rng_seed(2024);
    printf("\n");
    fill_mixed(src, total);
    for (int c = 1; c <= 3; c++)
        bench_one("mixed", c, src, total, 64 * KiB);
    bench_one("mixed", NFC_CODEC_FASTLZ, src, total, 2 * MiB);
    bench_one("mixed", NFC_CODEC_ZLIB, src, total, 2 * MiB);
    fill_text(src, total);
    bench_one("text", NFC_CODEC_FASTLZ, src, total, 64 * KiB);
    bench_one("text", NFC_CODEC_ZLIB, src, total, 64 * KiB);
    size_t sys = read_system_files(src, total) / (64 * KiB) * (64 * KiB);
    if (sys >= 4 * MiB) {
        bench_one("binaries", NFC_CODEC_FASTLZ, src, sys, 64 * KiB);
        bench_one("binaries", NFC_CODEC_ZLIB, src, sys, 64 * KiB);
    }
    fill_random(src, total);
    bench_one("random", NFC_CODEC_FASTLZ, src, total, 64 * KiB);
    bench_one("random", NFC_CODEC_ZLIB, src, total, 64 * KiB);
    memset(src, 0, total);
    bench_one("zeros", NFC_CODEC_FASTLZ, src, total, 64 * KiB);
    bench_one("zeros", NFC_CODEC_ZLIB, src, total, 64 * KiB);
    bench_one("zeros", NFC_CODEC_SKIPZ, src, total, 64 * KiB);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_bounds),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_fastlz_level_tag),
        cmocka_unit_test(test_fastlz_vectors_l1),
        cmocka_unit_test(test_fastlz_l1_max_distance),
        cmocka_unit_test(test_fastlz_vectors_l2),
        cmocka_unit_test(test_fastlz_l2_far),
        cmocka_unit_test(test_fastlz_encoder_far),
        cmocka_unit_test(test_fastlz_corrupt),
        cmocka_unit_test(test_skipz_layout),
        cmocka_unit_test(test_skipz_corrupt),
        cmocka_unit_test(test_zlib_corrupt),
        cmocka_unit_test(test_random_loop),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
