/* sha256.c - SHA-256 written from FIPS 180-4 (Secure Hash Standard).
 *
 * The constants are derived here from their definitions rather than
 * tabulated: K[t] is the first 32 bits of the fractional part of the cube
 * root of the t-th prime (section 4.2.2) and H(0) those of the square roots
 * of the first eight primes (section 5.3.3).  Integer roots are exact, so
 * the derivation has no floating-point rounding. */
#include "sha256.h"

#include <string.h>

static uint32_t K[64];
static uint32_t H0[8];
static int constants_ready;

/* Largest x with x^n <= v, for n = 2 or 3 and x < 2^36. */
static uint64_t iroot(unsigned __int128 v, int n)
{
    uint64_t lo = 0, hi = (uint64_t)1 << 36;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        unsigned __int128 p = (unsigned __int128)mid * mid;
        if (n == 3)
            p *= mid;
        if (p <= v)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static void make_constants(void)
{
    unsigned primes[64], count = 0;
    for (unsigned c = 2; count < 64; c++) {
        unsigned i = 0;
        while (i < count && c % primes[i] != 0)
            i++;
        if (i == count)
            primes[count++] = c;
    }
    /* frac(p^(1/3)) * 2^32 = (cbrt(p * 2^96)) mod 2^32, rounded down. */
    for (unsigned t = 0; t < 64; t++)
        K[t] = (uint32_t)iroot((unsigned __int128)primes[t] << 96, 3);
    for (unsigned t = 0; t < 8; t++)
        H0[t] = (uint32_t)iroot((unsigned __int128)primes[t] << 64, 2);
    constants_ready = 1;
}

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }
static uint32_t ch(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (~x & z); }
static uint32_t maj(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (x & z) ^ (y & z); }
static uint32_t bsig0(uint32_t x) { return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22); }
static uint32_t bsig1(uint32_t x) { return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25); }
static uint32_t ssig0(uint32_t x) { return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3); }
static uint32_t ssig1(uint32_t x) { return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10); }

/* Section 6.2.2: process one 512-bit block. */
static void compress(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++)
        w[t] = ssig1(w[t - 2]) + w[t - 7] + ssig0(w[t - 15]) + w[t - 16];

    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = hh + bsig1(e) + ch(e, f, g) + K[t] + w[t];
        uint32_t t2 = bsig0(a) + maj(a, b, c);
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void sha256_init(struct sha256 *s)
{
    if (!constants_ready)
        make_constants();
    memcpy(s->h, H0, sizeof s->h);
    s->total = 0;
    s->used = 0;
}

void sha256_update(struct sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    if (s->used > 0) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, n);
        s->used += n;
        p += n;
        len -= n;
        if (s->used < 64)
            return;
        compress(s->h, s->block);
        s->used = 0;
    }
    while (len >= 64) {
        compress(s->h, p);
        p += 64;
        len -= 64;
    }
    memcpy(s->block, p, len);
    s->used = len;
}

/* Section 5.1.1 padding: a 1 bit, zeros, then the length in bits. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_DIGEST_LEN])
{
    uint64_t bits = s->total * 8;
    s->block[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->block + s->used, 0, 64 - s->used);
        compress(s->h, s->block);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++)
        s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(s->h, s->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
    memset(s, 0, sizeof *s);
}
