/* descriptor.h - the text descriptor of one link, parsed and rewritable.
 *
 * The parser keeps every line (comments, blank lines, unknown keys) in
 * order so that rewriting a descriptor changes only what was changed. */
#ifndef VD_VMDK_DESCRIPTOR_H
#define VD_VMDK_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

enum desc_line_kind {
    DESC_OTHER,   /* comment, blank line, or unparsable-but-harmless text */
    DESC_HEADER,  /* key=value in the header section */
    DESC_EXTENT,  /* RW 2048 SPARSE "file.vmdk" */
    DESC_DDB,     /* ddb.key = "value" */
};

enum desc_access { DESC_RW, DESC_RDONLY, DESC_NOACCESS };

struct desc_extent {
    enum desc_access access;
    uint64_t sectors;
    char *type;        /* upper-case: FLAT SPARSE ZERO VMFS VMFSSPARSE ... */
    char *file;        /* NULL for ZERO */
    uint64_t offset;   /* sectors, FLAT only */
    int has_offset;
};

struct desc_line {
    enum desc_line_kind kind;
    char *text;        /* the line as read, without its newline; rebuilt on change */
    char *key;         /* HEADER / DDB: key as written ("CID", "ddb.uuid") */
    char *value;       /* HEADER / DDB: unquoted value */
    int quoted;        /* value was written in quotes */
    struct desc_extent ext;  /* EXTENT */
};

struct descriptor {
    struct desc_line *lines;
    size_t nlines, cap;
};

/* Parse text (len bytes, stops at the first NUL).  name is used in error
 * messages ("disk.vmdk:7: extent line has no size").  On error returns a
 * negative vd_err code and leaves *d empty. */
int desc_parse(struct descriptor *d, const char *text, size_t len, const char *name);
void desc_free(struct descriptor *d);
/* Serialise into a malloc'd NUL-terminated string. */
char *desc_format(const struct descriptor *d, size_t *len);

/* Header keys (case-insensitive lookup).  get returns NULL when absent. */
const char *desc_get(const struct descriptor *d, const char *key);
/* Set a header or ddb key (ddb keys include the "ddb." prefix).  New header
 * keys go after the last header line, new ddb keys after the last ddb line
 * (creating a "# The Disk Data Base" section if needed).  value NULL removes.
 * Header values that VMware quotes (createType, parentFileNameHint, ...) are
 * quoted; CID/parentCID/version are bare; ddb values are always quoted. */
int desc_set(struct descriptor *d, const char *key, const char *value);

size_t desc_num_extents(const struct descriptor *d);
struct desc_extent *desc_extent(const struct descriptor *d, size_t i);
/* Append an extent line after the last extent (or after the header). */
int desc_add_extent(struct descriptor *d, const struct desc_extent *e);
/* Rebuild the text of extent line i after its fields were changed. */
int desc_extent_changed(struct descriptor *d, size_t i);

/* Parse helpers. */
int desc_get_u32_hex(const struct descriptor *d, const char *key, uint32_t *out);

/* A new descriptor with the canonical VMware section labels and order:
 * version, CID, parentCID, createType (and parentFileNameHint when given).
 * Extents and ddb keys are added with desc_add_extent / desc_set. */
int desc_init_new(struct descriptor *d, uint32_t cid, uint32_t parent_cid,
                  const char *create_type, const char *parent_hint);

#endif
