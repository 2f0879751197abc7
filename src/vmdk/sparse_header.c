/* sparse_header.c - encode and validate hosted sparse extent headers. */
#include "sparse_header.h"

#include <endian.h>
#include <inttypes.h>
#include <string.h>

#include "../util/err.h"

static uint32_t rd32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint64_t rd64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static uint16_t rd16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static void wr32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void wr64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static void wr16(unsigned char *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

int kdmv_header_decode(const unsigned char h[512], const char *path, const char *what,
                       struct kdmv_header *o)
{
    if (rd32(h) != KDMV_MAGIC)
        return vd_err_set(VD_E_CORRUPT, "%s: not a hosted sparse extent (bad magic in %s)",
                          path, what);
    memset(o, 0, sizeof *o);
    o->version = rd32(h + 4);
    o->flags = rd32(h + 8);
    o->capacity = rd64(h + 12);
    o->grain = rd64(h + 20);
    o->desc_off = rd64(h + 28);
    o->desc_size = rd64(h + 36);
    o->num_gtes = rd32(h + 44);
    o->rgd_off = rd64(h + 48);
    o->gd_off = rd64(h + 56);
    o->overhead = rd64(h + 64);
    o->unclean = h[72];
    o->compress = rd16(h + 77);
    if (o->version < 1 || o->version > 3)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: sparse extent version %" PRIu32
                          " is not supported (1-3 are)", path, o->version);
    if ((o->flags & KDMV_FLAG_NL_TEST) &&
        (h[73] != '\n' || h[74] != ' ' || h[75] != '\r' || h[76] != '\n'))
        return vd_err_set(VD_E_CORRUPT, "%s: newline detection bytes are damaged (file "
                          "transferred in text mode?)", path);
    uint32_t incompat = o->flags & 0xffff0000u & ~(KDMV_FLAG_COMPRESSED | KDMV_FLAG_MARKERS);
    if (incompat)
        return vd_err_set(VD_E_UNSUPPORTED, "%s: unknown incompatible flags 0x%08" PRIx32,
                          path, incompat);
    if ((o->flags & KDMV_FLAG_MARKERS) && !(o->flags & KDMV_FLAG_COMPRESSED))
        return vd_err_set(VD_E_CORRUPT, "%s: grain markers without compression", path);
    if (!is_pow2(o->grain) || o->grain > KDMV_MAX_GRAIN)
        return vd_err_set(VD_E_CORRUPT, "%s: grain size %" PRIu64 " sectors is not a power "
                          "of two between 1 and %u", path, o->grain, KDMV_MAX_GRAIN);
    if (!is_pow2(o->num_gtes) || o->num_gtes > KDMV_MAX_GTES)
        return vd_err_set(VD_E_CORRUPT, "%s: %" PRIu32 " entries per grain table is not a "
                          "power of two between 1 and %u", path, o->num_gtes, KDMV_MAX_GTES);
    if (o->capacity > (UINT64_MAX >> 10))
        return vd_err_set(VD_E_CORRUPT, "%s: capacity %" PRIu64 " sectors overflows",
                          path, o->capacity);
    return 0;
}

void kdmv_header_encode(const struct kdmv_header *h, unsigned char out[512])
{
    memset(out, 0, 512);
    wr32(out, KDMV_MAGIC);
    wr32(out + 4, h->version);
    wr32(out + 8, h->flags | KDMV_FLAG_NL_TEST);
    wr64(out + 12, h->capacity);
    wr64(out + 20, h->grain);
    wr64(out + 28, h->desc_off);
    wr64(out + 36, h->desc_size);
    wr32(out + 44, h->num_gtes);
    wr64(out + 48, h->rgd_off);
    wr64(out + 56, h->gd_off);
    wr64(out + 64, h->overhead);
    out[72] = h->unclean;
    out[73] = '\n';
    out[74] = ' ';
    out[75] = '\r';
    out[76] = '\n';
    wr16(out + 77, h->compress);
}
