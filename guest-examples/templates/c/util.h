/* Small helpers of the C provider: growable buffers, errors, CRC-32, time,
 * unique names and whole-file operations over WASI preview 1 (wasi-libc). */
#ifndef TAPESTORE_UTIL_H
#define TAPESTORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gen/provider.h"

/* A `storage-error` of the contract; its message is malloc'ed (the
 * generated post-return code frees what an export returns). */
typedef tapedeck_storage_types_storage_error_t err_t;

#define E_NOT_FOUND TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_NOT_FOUND
#define E_EXISTS TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_ALREADY_EXISTS
#define E_INVALID TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_INVALID_INPUT
#define E_UNSUPPORTED TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_UNSUPPORTED
#define E_IO TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_IO

/* Sets `*err` to the error `tag` with a printf-style message; returns false
 * so that callers can write `return fail(err, ...)`. */
bool fail(err_t *err, uint8_t tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like `fail` with tag `io`, appending strerror(errno). */
bool fail_errno(err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Frees an error's message (for errors that are handled, not returned). */
void err_clear(err_t *err);

/* malloc/realloc that never return NULL: running out of memory traps, and
 * the host recycles the instance (storage is consistent at every point). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);
/* A malloc'ed printf. */
char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. */
typedef struct {
  uint8_t *ptr;
  size_t len, cap;
} buf_t;

void buf_put(buf_t *b, const void *p, size_t n);
void buf_byte(buf_t *b, uint8_t c);
void buf_str(buf_t *b, const char *s);
void buf_u32le(buf_t *b, uint32_t v);
void buf_u64le(buf_t *b, uint64_t v);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(buf_t *b);

uint32_t get_u32le(const uint8_t *p);
uint64_t get_u64le(const uint8_t *p);
void set_u32le(uint8_t *p, uint32_t v);

/* CRC-32 (IEEE), as zlib computes it. */
uint32_t crc32(const uint8_t *p, size_t n);

/* Wall-clock time in nanoseconds since the Unix epoch. */
uint64_t now_ns(void);
/* A name no other instance picks at the same moment (instances race): the
 * time and 64 random bits from `wasi:random`. Malloc'ed. */
char *unique_name(void);

/* Reads a whole file. Returns 1 and the malloc'ed contents, 0 if it does
 * not exist, -1 on another error (errno set). */
int read_file(const char *path, buf_t *out);
/* Reads up to `n` bytes at `off`; returns how many (short only at EOF), or
 * -1 (errno set). */
long pread_full(int fd, uint8_t *p, size_t n, uint64_t off);
/* Writes all of `n` bytes at `off`. */
bool pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off);
/* Writes `path` as a whole via a temporary file and a rename, so a reader
 * sees the old or the new contents, never a part. */
bool write_atomic(const char *path, const uint8_t *p, size_t n, bool fsync);
/* Appends to a file, creating it. */
bool append_file(const char *path, const uint8_t *p, size_t n);
/* Creates a file with the given contents (no rename; for staging dirs). */
bool write_new_file(const char *path, const uint8_t *p, size_t n, bool fsync);
/* mkdir -p. */
bool mkdir_all(const char *path);
/* rm -rf, best effort. */
void remove_tree(const char *path);

#endif
