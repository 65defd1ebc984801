/* A small, strict JSON reader (RFC 8259: UTF-8 checked, nesting bounded)
 * and the writer side: string escaping. Enough for the provider's config
 * and its own files (header, end, term index). It never reads a payload:
 * payloads may be ciphertext, and search matches the host's terms. */
#ifndef TAPESTORE_JSON_H
#define TAPESTORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } json_kind;

/* A parsed value. Strings are decoded and NUL-terminated (they may also
 * contain NUL: use `len`). Numbers keep an exact `u64` when they are a
 * non-negative integer that fits. */
typedef struct json {
  json_kind kind;
  bool boolean;
  bool is_u64;
  uint64_t u64;
  char *str;
  size_t len;         /* string length, or number of items / members */
  struct json *items; /* array items or member values */
  char **keys;        /* member names (objects) */
  size_t *key_lens;
} json;

/* Parses all of `p[0..n]` (whitespace around one value). On failure returns
 * false with `*why` naming the problem and its byte offset (malloc'ed). */
bool json_parse(const uint8_t *p, size_t n, json *out, char **why);
void json_free(json *v);
/* The member `key` of an object (the last one, if repeated), or NULL. */
const json *json_get(const json *obj, const char *key);

/* Appends `s[0..n]` as a JSON string literal. */
void buf_json_string(buf_t *b, const char *s, size_t n);

#endif
