/* manifest.h - the manifest of a backup set (`vddk backup`, `verify`,
 * `restore`).
 *
 * A backup set is a directory: manifest.json, and for every VM a
 * directory named after its moref holding config.json (the VM's vSphere
 * configuration) and one disk file per virtual disk.  The manifest is
 * written last, so a directory without one is not a set.  Its JSON:
 *
 *   { "format": "openvddk-backup", "version": 1, "tool": "...",
 *     "server": "host", "started": "...Z", "finished": "...Z",
 *     "block_size": 1048576, "base": "../PREVIOUS" | null,
 *     "vms": [ { "moref": "vm-42", "name": "...", "uuid": ..., "host": ...,
 *                "snapshot": "snapshot-7", "config": "vm-42/config.json",
 *                "disks": [ { "key": 2000, "label": ..., "source": "[ds] p.vmdk",
 *                             "capacity": BYTES, "file": "vm-42/disk-2000.vmdk",
 *                             "format": "streamOptimized" | "monolithicSparse",
 *                             "base": "../PREVIOUS/vm-42/disk-2000.vmdk" | null,
 *                             "allocated": BYTES, "stored": BYTES,
 *                             "sha256": HEX, "blocks": [HEX, ...] } ] } ] }
 *
 * "blocks" holds the SHA-256 of every block_size block of the disk's full
 * content (the last one short when the capacity is not a multiple), so
 * that a set can be verified and an incremental set compared with its base
 * without its base's data. */
#ifndef VDDK_MANIFEST_H
#define VDDK_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MF_FORMAT "openvddk-backup"
#define MF_VERSION 1
#define MF_NAME "manifest.json"
#define MF_HASH_LEN 32

struct mf_disk {
    int key;                  /* device key */
    char *label;              /* may be NULL */
    char *source;             /* "[ds] dir/disk.vmdk" read at backup time */
    char *file;               /* relative to the set directory */
    char *format;             /* "streamOptimized" or "monolithicSparse" */
    char *base;               /* parent disk relative to the set, or NULL */
    uint64_t capacity, allocated, stored;
    uint8_t sha256[MF_HASH_LEN];
    uint64_t nblocks;
    uint8_t (*blocks)[MF_HASH_LEN];
};

struct mf_vm {
    char *moref, *name, *uuid, *host, *snapshot, *config;   /* uuid, host may be NULL */
    struct mf_disk *disks;
    size_t ndisks;
};

struct manifest {
    char *tool, *server, *started, *finished;
    char *base;               /* base set relative to this set, or NULL */
    uint64_t block_size;
    struct mf_vm *vms;
    size_t nvms;
};

/* Number of blocks of a disk of capacity bytes. */
uint64_t mf_blocks_for(uint64_t capacity, uint64_t block_size);

/* Parse manifest text.  name is used in messages.  Returns 0, or -1 with a
 * one-line reason (naming name and the field) in err. */
int mf_parse(const char *text, size_t len, const char *name, struct manifest **out,
             char *err, size_t errlen);
/* Read DIR/manifest.json. */
int mf_load(const char *dir, struct manifest **out, char *err, size_t errlen);
/* The JSON text (malloc'ed), or NULL when out of memory. */
char *mf_format(const struct manifest *m);
void mf_free(struct manifest *m);

/* Find a VM by moref / a disk by device key, or NULL. */
const struct mf_vm *mf_find_vm(const struct manifest *m, const char *moref);
const struct mf_disk *mf_find_disk(const struct mf_vm *vm, int key);

/* Whether a path in a manifest may be opened below the set: relative, no
 * "..", no empty components.  Base paths may start with "../" (a sibling
 * set); mf_safe_base allows that one step up. */
int mf_safe_path(const char *p);
int mf_safe_base(const char *p);

void mf_hex(const uint8_t h[MF_HASH_LEN], char out[2 * MF_HASH_LEN + 1]);

#endif
