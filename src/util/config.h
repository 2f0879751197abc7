/* config.h - the process's configuration: key/value pairs from a file.
 *
 * The owner of the configuration (the ABI layer's first InitEx) loads a
 * file of `name = "value"` lines; any layer reads keys with the getters
 * below, and the last Exit clears the store.  Keys are compared without
 * regard to case; when a key appears more than once, the first wins.
 *
 * The getters may run on any thread, also while a load or a clear runs on
 * another: the store is under a read-write lock.  A string returned by
 * vd_config_get stays valid until the next vd_config_clear. */
#ifndef VD_UTIL_CONFIG_H
#define VD_UTIL_CONFIG_H

/* Add the `name = "value"` lines of the file at path to the store: blank
 * lines and lines starting with # are skipped, a line without '=' is
 * skipped with a log line (vd_log) naming the file and line, one pair of
 * double quotes around a value is removed, unknown keys are kept.  0, or
 * a negative vd_err code (detail set) when the file cannot be opened. */
int vd_config_load(const char *path);
/* One `key = value` line (in place; a value in double quotes loses them):
 * 0 with *key and *value set, 1 for a blank or '#' line, -1 without '='.
 * The config file and NBD disk descriptions share this syntax. */
int vd_config_split(char *line, char **key, char **value);
/* Forget every key. */
void vd_config_clear(void);

/* The value of key, or NULL when it is not set. */
const char *vd_config_get(const char *key);
/* The value as a decimal integer; dflt when the key is not set, empty or
 * not wholly a number. */
long vd_config_long(const char *key, long dflt);
/* A time in ms: our key when it is above 0, else VDDK's key (vddk may be
 * NULL) when it is above 0, else dflt; capped at one hour (3600000). */
int vd_config_ms(const char *ours, const char *vddk, long dflt);
/* "0", "false", "no" (any case for the words) are false; any other value
 * is true; dflt when the key is not set or empty. */
int vd_config_bool(const char *key, int dflt);

#endif
