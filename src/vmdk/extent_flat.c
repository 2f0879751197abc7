/* extent_flat.c - FLAT and VMFS extents (raw bytes in a file at an offset)
 * and ZERO extents (no file, reads as zeros). */
#include "extent.h"

#include "../util/err.h"

static int flat_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    m->kind = MAP_DATA;
    m->file_off = e->file_off + off;
    m->len = len;
    return 0;
}

static const struct extent_ops flat_ops = {
    .name = "flat",
    .map = flat_map,
};

int extent_flat_open(struct extent *e)
{
    if (e->file_off > UINT64_MAX - e->size)
        return vd_err_set(VD_E_CORRUPT, "%s: extent offset overflows", e->path);
    e->ops = &flat_ops;
    e->write_limit = e->size;
    return 0;
}

static int zero_map(struct extent *e, uint64_t off, uint64_t len, struct extent_map *m)
{
    m->kind = MAP_ZERO;
    m->len = len;
    return 0;
}

static const struct extent_ops zero_ops = {
    .name = "zero",
    .map = zero_map,
};

int extent_zero_open(struct extent *e)
{
    e->ops = &zero_ops;
    e->fd = -1;
    return 0;
}
