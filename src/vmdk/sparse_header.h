/* sparse_header.h - the 512-byte hosted sparse (KDMV) extent header, shared
 * by plain sparse extents, streamOptimized extents and the maintenance
 * operations.  All offsets and sizes are in sectors. */
#ifndef VD_VMDK_SPARSE_HEADER_H
#define VD_VMDK_SPARSE_HEADER_H

#include <stdint.h>

#define KDMV_MAGIC 0x564d444bu
#define KDMV_FLAG_NL_TEST 0x1u
#define KDMV_FLAG_RGD 0x2u
#define KDMV_FLAG_ZERO_GTE 0x4u
#define KDMV_FLAG_COMPRESSED 0x10000u
#define KDMV_FLAG_MARKERS 0x20000u
#define KDMV_GD_AT_END UINT64_MAX
#define KDMV_MAX_GRAIN 65536u    /* sectors (32 MiB) */
#define KDMV_MAX_GTES 65536u

struct kdmv_header {
    uint32_t version, flags;
    uint64_t capacity, grain;
    uint64_t desc_off, desc_size;
    uint32_t num_gtes;
    uint64_t rgd_off, gd_off, overhead;
    uint8_t unclean;
    uint16_t compress;
};

/* Decode and check the fields every reader relies on (magic, version 1-3,
 * newline bytes, incompatible flags, grain size, entries per table,
 * capacity).  Compression and GD_AT_END are left for the caller to judge.
 * what names the header in messages ("footer" or "header"). */
int kdmv_header_decode(const unsigned char h[512], const char *path, const char *what,
                       struct kdmv_header *out);
/* Encode with the newline detection bytes set. */
void kdmv_header_encode(const struct kdmv_header *h, unsigned char out[512]);

#endif
