/* nfc_codec.h - the data codecs of NFC I/O fragments.
 *
 * Every read-reply and write fragment of an NFC AIO session carries a
 * codec number in the high half of its direction word: 0 raw, 1 zlib
 * (an RFC 1950 stream, made with libdeflate), 2 FastLZ (one raw FastLZ
 * block, level 1 or 2, no length prefix), 3 SkipZ (the non-zero runs of
 * the fragment).  A fragment is at most one session buffer (64 KiB to
 * 2 MiB) of raw data; the decoder is always told that raw length.
 *
 * SkipZ layout: u32 fragLen, u32 0, then runs of u32 off, u32 len, len
 * bytes, with ascending, non-overlapping offsets inside fragLen; bytes not
 * in a run are zero.  An all-zero fragment is the 8-byte header alone.
 *
 * All functions are thread-safe. */
#ifndef VD_NFC_CODEC_H
#define VD_NFC_CODEC_H

#include <stddef.h>
#include <stdint.h>

enum nfc_codec {
    NFC_CODEC_RAW = 0,
    NFC_CODEC_ZLIB = 1,
    NFC_CODEC_FASTLZ = 2,
    NFC_CODEC_SKIPZ = 3,
};

/* "raw", "zlib", "fastlz", "skipz" ("?" for others). */
const char *nfc_codec_name(int codec);

/* Room enough for any encoding of len bytes under codec. */
size_t nfc_codec_bound(int codec, size_t len);

/* Encode len bytes of src into dst (cap bytes).  Returns the encoded
 * size, or 0 when the codec does not make the fragment smaller than len
 * (or cap is too small): the caller then sends the fragment raw (codec 0).
 * FastLZ uses level 2 for fragments of 64 KiB and more, level 1 below,
 * and never encodes fewer than 16 bytes. */
size_t nfc_encode(int codec, const void *src, size_t len, void *dst, size_t cap);

/* Decode srclen bytes of src into exactly outlen bytes at dst.  Returns 0,
 * or -VD_E_CORRUPT with a detail saying what is wrong (bad stream, wrong
 * decoded length, SkipZ run out of order or past the fragment) when the
 * input is not a valid encoding of outlen bytes.  Never reads past
 * src + srclen nor writes past dst + outlen. */
int nfc_decode(int codec, const void *src, size_t srclen, void *dst, size_t outlen);

/* FastLZ block format, on its own (fastlz.c).  fastlz_compress needs out
 * to hold fastlz_bound(len) bytes and len >= 16; it returns the block
 * size.  level is 1 or 2; the level is recorded in the top three bits of
 * the first byte.  fastlz_decompress returns the decoded size, or -1 when
 * the block is malformed or would decode past maxout. */
size_t fastlz_bound(size_t len);
size_t fastlz_compress(int level, const void *in, size_t len, void *out);
long fastlz_decompress(const void *in, size_t len, void *out, size_t maxout);

#endif
