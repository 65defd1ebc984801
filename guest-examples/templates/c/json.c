#include "json.h"

#include <stdlib.h>
#include <string.h>

/* Deeper documents are refused (as serde_json does past 128): recursion in
 * wasm has a small stack, and no config or header is nested that deep. */
#define MAX_DEPTH 128

typedef struct {
  const uint8_t *p, *end, *start;
  const char *error;
} reader;

static bool bad(reader *r, const char *what) {
  if (!r->error) r->error = what;
  return false;
}

static void skip_ws(reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int hex(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_u16(reader *r, uint32_t *out) {
  if (r->end - r->p < 4) return bad(r, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hex(r->p[i]);
    if (h < 0) return bad(r, "bad \\u escape");
    v = v << 4 | (uint32_t)h;
  }
  r->p += 4;
  *out = v;
  return true;
}

static void put_utf8(buf_t *b, uint32_t c) {
  if (c < 0x80) {
    buf_byte(b, (uint8_t)c);
  } else if (c < 0x800) {
    buf_byte(b, (uint8_t)(0xC0 | c >> 6));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    buf_byte(b, (uint8_t)(0xE0 | c >> 12));
    buf_byte(b, (uint8_t)(0x80 | (c >> 6 & 0x3F)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
  } else {
    buf_byte(b, (uint8_t)(0xF0 | c >> 18));
    buf_byte(b, (uint8_t)(0x80 | (c >> 12 & 0x3F)));
    buf_byte(b, (uint8_t)(0x80 | (c >> 6 & 0x3F)));
    buf_byte(b, (uint8_t)(0x80 | (c & 0x3F)));
  }
}

/* Length of the valid UTF-8 sequence at p (non-ASCII lead), or 0. */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end) {
  uint8_t c = p[0];
  size_t n;
  uint32_t min, v;
  if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800, v = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000, v = c & 0x07;
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = v << 6 | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  return n;
}

/* Reads a string literal at r->p (the opening quote); decodes it into `out`
 * unless `out` is NULL. */
static bool read_string(reader *r, buf_t *out) {
  r->p++;
  for (;;) {
    if (r->p >= r->end) return bad(r, "unterminated string");
    uint8_t c = *r->p;
    if (c == '"') {
      r->p++;
      return true;
    }
    if (c < 0x20) return bad(r, "control character in string");
    if (c == '\\') {
      if (r->end - r->p < 2) return bad(r, "truncated escape");
      uint8_t e = r->p[1];
      r->p += 2;
      uint32_t cp;
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (!read_u16(r, &cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return bad(r, "lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') return bad(r, "lone high surrogate");
            r->p += 2;
            if (!read_u16(r, &lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return bad(r, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          break;
        }
        default: return bad(r, "unknown escape");
      }
      if (out) put_utf8(out, cp);
      continue;
    }
    size_t n = 1;
    if (c >= 0x80 && !(n = utf8_seq(r->p, r->end))) return bad(r, "invalid UTF-8");
    if (out) buf_put(out, r->p, n);
    r->p += n;
  }
}

static bool read_number(reader *r, json *out) {
  const uint8_t *s = r->p;
  bool integer = true, negative = false;
  if (r->p < r->end && *r->p == '-') negative = true, r->p++;
  if (r->p >= r->end) return bad(r, "truncated number");
  if (*r->p == '0') {
    r->p++;
  } else if (*r->p >= '1' && *r->p <= '9') {
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  } else {
    return bad(r, "bad number");
  }
  if (r->p < r->end && *r->p == '.') {
    integer = false;
    r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return bad(r, "bad fraction");
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    integer = false;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return bad(r, "bad exponent");
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
  }
  if (out) {
    out->kind = J_NUMBER;
    if (integer && !negative) {
      uint64_t v = 0;
      bool fits = true;
      for (const uint8_t *q = s; q < r->p; q++) {
        uint64_t d = (uint64_t)(*q - '0');
        if (v > (UINT64_MAX - d) / 10) fits = false;
        v = v * 10 + d;
      }
      out->is_u64 = fits;
      out->u64 = fits ? v : 0;
    }
  }
  return true;
}

static bool literal(reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n)) return bad(r, "unexpected character");
  r->p += n;
  return true;
}

static char *take(buf_t *b, size_t *len) {
  buf_byte(b, 0);
  *len = b->len - 1;
  return (char *)b->ptr;
}

/* Reads one value; fills `out` unless it is NULL (then only validates). */
static bool read_value(reader *r, json *out, int depth) {
  if (depth > MAX_DEPTH) return bad(r, "nested too deeply");
  skip_ws(r);
  if (r->p >= r->end) return bad(r, "unexpected end");
  if (out) memset(out, 0, sizeof *out);
  switch (*r->p) {
    case 'n': return literal(r, "null");
    case 't':
      if (out) out->kind = J_BOOL, out->boolean = true;
      return literal(r, "true");
    case 'f':
      if (out) out->kind = J_BOOL;
      return literal(r, "false");
    case '"': {
      if (!out) return read_string(r, NULL);
      buf_t b = {0};
      out->kind = J_STRING;
      bool ok = read_string(r, &b);
      out->str = take(&b, &out->len);
      return ok;
    }
    case '[':
    case '{': {
      bool object = *r->p == '{';
      uint8_t close = object ? '}' : ']';
      if (out) out->kind = object ? J_OBJECT : J_ARRAY;
      r->p++;
      skip_ws(r);
      if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
      }
      for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        if (object) {
          skip_ws(r);
          if (r->p >= r->end || *r->p != '"') return bad(r, "expected a member name");
          buf_t k = {0};
          bool ok = read_string(r, out ? &k : NULL);
          if (out) key = take(&k, &key_len);
          if (!ok) return free(key), false;
          skip_ws(r);
          if (r->p >= r->end || *r->p != ':') return free(key), bad(r, "expected ':'");
          r->p++;
        }
        json item;
        bool ok = read_value(r, out ? &item : NULL, depth + 1);
        if (out) {
          size_t i = out->len++;
          out->items = xrealloc(out->items, out->len * sizeof(json));
          out->items[i] = item;
          if (object) {
            out->keys = xrealloc(out->keys, out->len * sizeof(char *));
            out->key_lens = xrealloc(out->key_lens, out->len * sizeof(size_t));
            out->keys[i] = key;
            out->key_lens[i] = key_len;
          }
        }
        if (!ok) return false;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
          r->p++;
          continue;
        }
        if (r->p < r->end && *r->p == close) {
          r->p++;
          return true;
        }
        return bad(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    default:
      return read_number(r, out);
  }
}

bool json_parse(const uint8_t *p, size_t n, json *out, char **why) {
  reader r = {p, p + n, p, NULL};
  bool ok = read_value(&r, out, 0);
  if (ok) {
    skip_ws(&r);
    if (r.p != r.end) ok = bad(&r, "trailing characters");
  }
  if (!ok) {
    json_free(out);
    if (why) *why = xprintf("%s at byte %zu", r.error, (size_t)(r.p - r.start));
  }
  return ok;
}

void json_free(json *v) {
  if (!v) return;
  for (size_t i = 0; (v->kind == J_ARRAY || v->kind == J_OBJECT) && i < v->len; i++) {
    json_free(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->key_lens);
  free(v->str);
  memset(v, 0, sizeof *v);
}

const json *json_get(const json *obj, const char *key) {
  if (!obj || obj->kind != J_OBJECT) return NULL;
  size_t n = strlen(key);
  for (size_t i = obj->len; i-- > 0;)
    if (obj->key_lens[i] == n && !memcmp(obj->keys[i], key, n)) return &obj->items[i];
  return NULL;
}

void buf_json_string(buf_t *b, const char *s, size_t n) {
  static const char digits[] = "0123456789abcdef";
  buf_byte(b, '"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c == '"' || c == '\\') {
      buf_byte(b, '\\');
      buf_byte(b, c);
    } else if (c < 0x20) {
      uint8_t esc[6] = {'\\', 'u', '0', '0', (uint8_t)digits[c >> 4], (uint8_t)digits[c & 15]};
      buf_put(b, esc, 6);
    } else {
      buf_byte(b, c);
    }
  }
  buf_byte(b, '"');
}
