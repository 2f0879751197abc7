/* fileio.h - small file and path helpers shared by every layer. */
#ifndef VD_UTIL_FILEIO_H
#define VD_UTIL_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Full-length pread/pwrite: retry short transfers and EINTR.  Return 0, or
 * -1 with errno set (a read past end of file gives errno = 0 and returns -1
 * only when eof_is_error; otherwise the rest of buf is zero-filled). */
int vd_pread_full(int fd, void *buf, size_t len, uint64_t off, int eof_is_error);
int vd_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Paths are local ("/a/b.vmdk") or datastore paths ("[ds] dir/b.vmdk").
 * Directory part of path ("." when it has none; "[ds]" for "[ds] b.vmdk");
 * malloc'd. */
char *vd_path_dir(const char *path);
/* Base name of path (pointer into path). */
const char *vd_path_base(const char *path);
/* name if absolute (starts with '/' or "[ds]"), else dir/name ("[ds] name"
 * when dir is a bare "[ds]"); malloc'd. */
char *vd_path_join(const char *dir, const char *name);
/* path without its final ".vmdk" (case-insensitive), malloc'd. */
char *vd_path_stem(const char *path);

/* A descriptor writes file names (extent files, the parent hint) between
 * double quotes, one to a line, so such a name can hold neither '"' nor a
 * control character (a newline would start a descriptor line of its own).
 * Check name, which file (the disk being made) would write into its
 * descriptor: 0, or VD_E_INVAL with a message naming file (control
 * characters shown as \n, \t, \x01) and the character.  what is NULL when
 * name is file's own base name, else what name is ("parent hint"). */
int vd_check_desc_name(const char *file, const char *name, const char *what);

/* Fill buf with random bytes (getrandom, falling back to /dev/urandom). */
void vd_random(void *buf, size_t len);
/* A random CID that is neither ffffffff nor fffffffe. */
uint32_t vd_random_cid(void);

/* malloc'd printf. Returns NULL on allocation failure. */
char *vd_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *vd_strdup(const char *s);
/* s without leading and trailing white space (isspace), in place. */
char *vd_trim(char *s);

/* Is buf entirely zero bytes? */
int vd_is_zero(const void *buf, size_t len);

#endif
