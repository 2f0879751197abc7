/* grain_random.c - whether a grain looks like random bytes.
 *
 * Deflate cannot shrink random bytes (already compressed or encrypted
 * data), and searching them for matches costs as much as compressing real
 * data.  Writers of compressed grains store such grains instead (deflate's
 * stored blocks, level 0: the same format, a few bytes over the grain's
 * size, as compressing would end with).  The test: the byte counts of a
 * 16 KiB sample (four 4 KiB pieces spread over the grain) are as even as
 * random bytes give.  The statistic is chi-square over 255 degrees of
 * freedom: random data scores about 255 +- 23, text, code, tables and
 * images in the thousands; below 400 the grain counts as random. */
#include <stdint.h>

#include "vmdk.h"

int vmdk_grain_looks_random(const unsigned char *g, size_t grain_bytes)
{
    enum { PIECE = 4096, PIECES = 4, EXPECT = PIECE * PIECES / 256 };
    if (grain_bytes < (size_t)PIECE * PIECES)
        return 0;
    uint32_t cnt[256] = { 0 };
    for (int k = 0; k < PIECES; k++) {
        const unsigned char *q = g + (size_t)k * (grain_bytes / PIECES);
        for (int i = 0; i < PIECE; i++)
            cnt[q[i]]++;
    }
    uint64_t chi = 0;
    for (int i = 0; i < 256; i++) {
        int64_t d = (int64_t)cnt[i] - EXPECT;
        chi += (uint64_t)(d * d);
    }
    return chi < 400u * EXPECT;
}
