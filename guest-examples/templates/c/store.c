#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wctype.h>

#include "json.h"

#define HEADER 28
#define SEEK_EVERY 1024
#define MAX_LIMIT 1000
#define CHUNK (256 * 1024)
/* Record flag bits: the payload is not JSON; the body carries terms and
 * attributes after the payload. */
#define FLAG_NOT_JSON 1
#define FLAG_EXTENDED 2

#define STATE_RECORDING TAPEDECK_STORAGE_TYPES_TAPE_STATE_RECORDING
#define STATE_FINISHED TAPEDECK_STORAGE_TYPES_TAPE_STATE_FINISHED
#define STATE_ABORTED TAPEDECK_STORAGE_TYPES_TAPE_STATE_ABORTED
#define STATE_CRASHED TAPEDECK_STORAGE_TYPES_TAPE_STATE_CRASHED

static struct {
  char *tapes, *trash;
  bool fsync;
} S;

static const char *STATE_NAMES[] = {"recording", "finished", "aborted", "crashed"};

/* ---- small pieces ------------------------------------------------------ */

static char *file_of(const char *id, const char *name) {
  return xprintf("%s/%s/%s", S.tapes, id, name);
}

static bool not_found(err_t *err, const char *id) {
  return fail(err, E_NOT_FOUND, "no tape \"%s\"", id);
}

static char *dup_string(const provider_string_t *s) {
  return xstrndup((const char *)s->ptr, s->len);
}

static provider_string_t own_string(const char *s, size_t n) {
  return (provider_string_t){(uint8_t *)xstrndup(s, n), n};
}

bool check_id(const provider_string_t *id, err_t *err) {
  bool ok = id->len >= 1 && id->len <= 128 && id->ptr[0] != '.';
  for (size_t i = 0; ok && i < id->len; i++) {
    uint8_t c = id->ptr[i];
    ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
    if (ok && c == '.' && i + 1 < id->len && id->ptr[i + 1] == '.') ok = false;
  }
  if (ok) return true;
  buf_t shown = {0};
  buf_json_string(&shown, (const char *)id->ptr, id->len);
  buf_byte(&shown, 0);
  fail(err, E_INVALID,
       "invalid tape id %s: 1 to 128 of A-Z a-z 0-9 - _ ., not starting with '.' and without '..'",
       (char *)shown.ptr);
  buf_free(&shown);
  return false;
}

static bool valid_id(const char *id) {
  provider_string_t s = {(uint8_t *)id, strlen(id)};
  err_t e;
  if (check_id(&s, &e)) return true;
  err_clear(&e);
  return false;
}

static uint8_t end_state(uint8_t reason) {
  switch (reason) {
    case TAPEDECK_STORAGE_TYPES_END_REASON_CRASHED: return STATE_CRASHED;
    case TAPEDECK_STORAGE_TYPES_END_REASON_ABORTED: return STATE_ABORTED;
    default: return STATE_FINISHED;
  }
}

static uint8_t state_from(const json *v) {
  for (uint8_t i = 0; v && v->kind == J_STRING && i < 4; i++)
    if (!strcmp(v->str, STATE_NAMES[i])) return i;
  return STATE_RECORDING;
}

/* ---- frame records ----------------------------------------------------- */

/* Does the frame need an extended record (it has terms or attributes)? */
static bool extended(const frame_t *f) { return f->terms.len || f->attributes.len; }

/* The length of the frame's record. */
static uint64_t record_size(const frame_t *f) {
  uint64_t n = HEADER + (uint64_t)f->payload.len;
  if (!extended(f)) return n;
  n += 12;
  for (size_t i = 0; i < f->terms.len; i++) n += 4 + (uint64_t)f->terms.ptr[i].len;
  for (size_t i = 0; i < f->attributes.len; i++)
    n += 8 + (uint64_t)f->attributes.ptr[i].f0.len + f->attributes.ptr[i].f1.len;
  return n;
}

/* A length-prefixed field of an extended body. */
static void put_field(buf_t *b, const uint8_t *p, size_t n) {
  buf_u32le(b, (uint32_t)n);
  buf_put(b, p, n);
}

static void encode(const frame_t *f, buf_t *out) {
  size_t start = out->len;
  bool ext = extended(f);
  buf_u32le(out, 0); /* the body length, set below */
  buf_u32le(out, 0);
  buf_u64le(out, f->seq);
  buf_u64le(out, f->timestamp);
  buf_byte(out, f->direction);
  buf_byte(out, (f->flags & TAPEDECK_STORAGE_TYPES_FRAME_FLAGS_NOT_JSON ? FLAG_NOT_JSON : 0) |
                    (ext ? FLAG_EXTENDED : 0));
  buf_put(out, "\0\0", 2);
  if (ext) {
    put_field(out, f->payload.ptr, f->payload.len);
    buf_u32le(out, (uint32_t)f->terms.len);
    for (size_t i = 0; i < f->terms.len; i++) put_field(out, f->terms.ptr[i].ptr, f->terms.ptr[i].len);
    buf_u32le(out, (uint32_t)f->attributes.len);
    for (size_t i = 0; i < f->attributes.len; i++) {
      const provider_tuple2_string_string_t *a = &f->attributes.ptr[i];
      put_field(out, a->f0.ptr, a->f0.len);
      put_field(out, a->f1.ptr, a->f1.len);
    }
  } else {
    buf_put(out, f->payload.ptr, f->payload.len);
  }
  set_u32le(out->ptr + start, (uint32_t)(out->len - start - HEADER));
  set_u32le(out->ptr + start + 4, crc32(out->ptr + start + 8, out->len - start - 8));
}

/* Reads the fields of an extended body in order. */
typedef struct {
  const uint8_t *p, *end;
} fields;

static bool next_count(fields *f, uint32_t *n) {
  if (f->end - f->p < 4) return false;
  *n = get_u32le(f->p);
  f->p += 4;
  return true;
}

static bool next_field(fields *f, const uint8_t **p, size_t *n) {
  uint32_t k;
  if (!next_count(f, &k) || (size_t)(f->end - f->p) < k) return false;
  *p = f->p, *n = k;
  f->p += k;
  return true;
}

/* The payload of the record with header `head` and a body of `len` bytes
 * (which follows the header); false if the body is malformed. */
static bool payload_of(const uint8_t *head, uint32_t len, const uint8_t **p, size_t *n) {
  if (!(head[25] & FLAG_EXTENDED)) {
    *p = head + HEADER, *n = len;
    return true;
  }
  fields f = {head + HEADER, head + HEADER + len};
  return next_field(&f, p, n);
}

/* Empty strings and lists are NULL: the generated post-return code frees
 * only non-empty ones. */
static provider_string_t copy_string(const uint8_t *p, size_t n) {
  return (provider_string_t){n ? (uint8_t *)xstrndup((const char *)p, n) : NULL, n};
}

/* The frame of a record (everything malloc'ed), or false if its body is
 * malformed (then nothing is left allocated). */
static bool frame_of(const uint8_t *head, uint32_t len, frame_t *out) {
  memset(out, 0, sizeof *out);
  out->seq = get_u64le(head + 8);
  out->timestamp = get_u64le(head + 16);
  out->direction = head[24] ? TAPEDECK_STORAGE_TYPES_DIRECTION_SERVER_TO_CLIENT
                            : TAPEDECK_STORAGE_TYPES_DIRECTION_CLIENT_TO_SERVER;
  out->flags = head[25] & FLAG_NOT_JSON ? TAPEDECK_STORAGE_TYPES_FRAME_FLAGS_NOT_JSON : 0;
  const uint8_t *p;
  size_t n;
  if (!payload_of(head, len, &p, &n)) return false;
  out->payload = (provider_list_u8_t){copy_string(p, n).ptr, n};
  if (!(head[25] & FLAG_EXTENDED)) return true;
  fields f = {head + HEADER + 4 + n, head + HEADER + len};
  uint32_t k;
  /* Counts are checked against what is left before anything is allocated. */
  bool ok = next_count(&f, &k) && k <= (size_t)(f.end - f.p) / 4;
  if (ok && k) out->terms.ptr = xmalloc(k * sizeof *out->terms.ptr);
  for (uint32_t i = 0; ok && i < k; i++) {
    ok = next_field(&f, &p, &n);
    if (ok) out->terms.ptr[out->terms.len++] = copy_string(p, n);
  }
  ok = ok && next_count(&f, &k) && k <= (size_t)(f.end - f.p) / 8;
  if (ok && k) out->attributes.ptr = xmalloc(k * sizeof *out->attributes.ptr);
  for (uint32_t i = 0; ok && i < k; i++) {
    const uint8_t *v;
    size_t vn;
    ok = next_field(&f, &p, &n) && next_field(&f, &v, &vn);
    if (ok) {
      provider_tuple2_string_string_t *a = &out->attributes.ptr[out->attributes.len++];
      a->f0 = copy_string(p, n);
      a->f1 = copy_string(v, vn);
    }
  }
  ok = ok && f.p == f.end;
  if (!ok) tapedeck_storage_types_frame_free(out);
  return ok;
}

/* Reads a frame file through a buffer: `get` returns bytes [off, off+n). */
typedef struct {
  int fd;
  uint64_t size, base;
  buf_t b;
  bool failed;
} frames_reader;

static bool reader_open(frames_reader *r, const char *path) {
  memset(r, 0, sizeof *r);
  r->fd = open(path, O_RDONLY);
  if (r->fd < 0) return false;
  struct stat st;
  if (fstat(r->fd, &st) != 0) {
    int e = errno;
    close(r->fd);
    errno = e;
    return false;
  }
  r->size = (uint64_t)st.st_size;
  return true;
}

static void reader_close(frames_reader *r) {
  close(r->fd);
  buf_free(&r->b);
}

static const uint8_t *reader_get(frames_reader *r, uint64_t off, uint64_t n) {
  if (off + n > r->size) return NULL; /* past the end: torn, never allocated */
  if (off >= r->base && off + n <= r->base + r->b.len) return r->b.ptr + (off - r->base);
  size_t want = n > CHUNK ? (size_t)n : CHUNK;
  if (r->b.cap < want) {
    r->b.ptr = xrealloc(r->b.ptr, want);
    r->b.cap = want;
  }
  long k = pread_full(r->fd, r->b.ptr, want, off);
  if (k < 0) {
    r->failed = true;
    r->b.len = 0;
    return NULL;
  }
  r->base = off;
  r->b.len = (size_t)k;
  return (uint64_t)k >= n ? r->b.ptr : NULL;
}

/* The intact record at `off`: its header and body length (the body follows
 * the header in the reader's buffer, valid until the next get), or false if
 * torn or corrupt. */
static bool record_at(frames_reader *r, uint64_t off, const uint8_t **head, uint32_t *len) {
  const uint8_t *h = reader_get(r, off, HEADER);
  if (!h) return false;
  uint32_t n = get_u32le(h);
  const uint8_t *all = reader_get(r, off, (uint64_t)HEADER + n);
  if (!all) return false;
  /* The CRC covers header bytes 8..28 and the body. */
  if (crc32(all + 8, HEADER - 8 + (size_t)n) != get_u32le(all + 4)) return false;
  *head = all;
  *len = n;
  return true;
}

/* Intact frames of a tape's file: count, payload bytes, valid length. */
static bool scan(const char *id, uint64_t *count, uint64_t *bytes, uint64_t *valid, err_t *err) {
  char *path = file_of(id, "frames");
  frames_reader r;
  if (!reader_open(&r, path)) {
    bool missing = errno == ENOENT;
    bool ok = missing ? not_found(err, id) : fail_errno(err, "open %s", path);
    free(path);
    return ok;
  }
  uint64_t c = 0, b = 0, at = 0;
  const uint8_t *head, *payload;
  uint32_t n;
  size_t size;
  while (record_at(&r, at, &head, &n) && payload_of(head, n, &payload, &size)) {
    c++;
    b += size;
    at += HEADER + (uint64_t)n;
  }
  bool failed = r.failed;
  reader_close(&r);
  if (failed) {
    fail(err, E_IO, "read %s failed", path);
    free(path);
    return false;
  }
  free(path);
  *count = c, *bytes = b, *valid = at;
  return true;
}

/* ---- header and end files ---------------------------------------------- */

/* An optional byte string of the provider's own files: hex, or null. */
static void bytes_json(buf_t *b, const provider_option_list_u8_t *v) {
  static const char digits[] = "0123456789abcdef";
  if (!v || !v->is_some) {
    buf_str(b, "null");
    return;
  }
  buf_byte(b, '"');
  for (size_t i = 0; i < v->val.len; i++) {
    buf_byte(b, (uint8_t)digits[v->val.ptr[i] >> 4]);
    buf_byte(b, (uint8_t)digits[v->val.ptr[i] & 15]);
  }
  buf_byte(b, '"');
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Reads what `bytes_json` wrote; absent (files of the previous format) is
 * none as well. False if it is something else. */
static bool bytes_of(const json *v, provider_option_list_u8_t *out) {
  memset(out, 0, sizeof *out);
  if (!v || v->kind == J_NULL) return true;
  if (v->kind != J_STRING || v->len % 2) return false;
  uint8_t *b = v->len ? xmalloc(v->len / 2) : NULL;
  for (size_t i = 0; i < v->len / 2; i++) {
    int hi = hex_digit(v->str[2 * i]), lo = hex_digit(v->str[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      free(b);
      return false;
    }
    b[i] = (uint8_t)(hi << 4 | lo);
  }
  out->is_some = true;
  out->val = (provider_list_u8_t){b, v->len / 2};
  return true;
}

static bool same_bytes(const provider_option_list_u8_t *a, const provider_option_list_u8_t *b) {
  if (a->is_some != b->is_some) return false;
  return !a->is_some || (a->val.len == b->val.len && !memcmp(a->val.ptr, b->val.ptr, a->val.len));
}

static void header_json(buf_t *b, const header_t *h) {
  buf_str(b, "{\"id\":");
  buf_json_string(b, (const char *)h->id.ptr, h->id.len);
  buf_str(b, ",\"session_id\":");
  buf_json_string(b, (const char *)h->session_id.ptr, h->session_id.len);
  buf_str(b, ",\"name\":");
  buf_json_string(b, (const char *)h->name.ptr, h->name.len);
  buf_str(b, ",\"tags\":[");
  for (size_t i = 0; i < h->tags.len; i++) {
    buf_str(b, i ? ",[" : "[");
    buf_json_string(b, (const char *)h->tags.ptr[i].f0.ptr, h->tags.ptr[i].f0.len);
    buf_byte(b, ',');
    buf_json_string(b, (const char *)h->tags.ptr[i].f1.ptr, h->tags.ptr[i].f1.len);
    buf_byte(b, ']');
  }
  buf_printf(b, "],\"created_at\":%llu,\"envelope\":", (unsigned long long)h->created_at);
  bytes_json(b, &h->envelope);
  buf_byte(b, '}');
}

static void header_file(buf_t *b, const header_t *h, uint64_t stamp) {
  buf_str(b, "{\"format\":2,\"header\":");
  header_json(b, h);
  buf_printf(b, ",\"stamp\":\"%llu\"}", (unsigned long long)stamp);
}

static bool string_of(const json *v, provider_string_t *out) {
  if (!v || v->kind != J_STRING) return false;
  *out = own_string(v->str, v->len);
  return true;
}

static bool header_from(const json *v, header_t *h) {
  memset(h, 0, sizeof *h);
  const json *tags = json_get(v, "tags"), *created = json_get(v, "created_at");
  if (!tags || tags->kind != J_ARRAY || !created || !created->is_u64) return false;
  bool ok = string_of(json_get(v, "id"), &h->id) &&
            string_of(json_get(v, "session_id"), &h->session_id) &&
            string_of(json_get(v, "name"), &h->name);
  h->created_at = created->u64;
  if (ok && tags->len) h->tags.ptr = xmalloc(tags->len * sizeof *h->tags.ptr);
  for (size_t i = 0; ok && i < tags->len; i++) {
    const json *t = &tags->items[i];
    ok = t->kind == J_ARRAY && t->len == 2 && t->items[0].kind == J_STRING &&
         t->items[1].kind == J_STRING;
    if (!ok) break;
    string_of(&t->items[0], &h->tags.ptr[i].f0);
    string_of(&t->items[1], &h->tags.ptr[i].f1);
    h->tags.len++;
  }
  ok = ok && bytes_of(json_get(v, "envelope"), &h->envelope);
  if (!ok) tapedeck_storage_types_tape_header_free(h);
  return ok;
}

/* Reads `<id>/<name>` as JSON: 1 parsed, 0 missing, -1 failed (err set). */
static int read_json(const char *id, const char *name, json *out, err_t *err) {
  char *path = file_of(id, name);
  buf_t data;
  int r = read_file(path, &data);
  if (r < 0) fail_errno(err, "read %s", path);
  if (r > 0) {
    char *why = NULL;
    if (!json_parse(data.ptr, data.len, out, &why)) {
      fail(err, E_IO, "%s is damaged: %s", path, why);
      free(why);
      r = -1;
    }
    buf_free(&data);
  }
  free(path);
  return r;
}

/* The tape's header and stamp: 1, 0 if there is no such tape, -1. */
static int read_header(const char *id, header_t *h, uint64_t *stamp, err_t *err) {
  json v;
  int r = read_json(id, "header.json", &v, err);
  if (r <= 0) return r;
  const json *s = json_get(&v, "stamp");
  *stamp = s && s->kind == J_STRING ? strtoull(s->str, NULL, 10) : 0;
  if (!header_from(json_get(&v, "header"), h)) {
    json_free(&v);
    fail(err, E_IO, "header of tape \"%s\" is damaged", id);
    return -1;
  }
  json_free(&v);
  return 1;
}

/* Does the tape exist: 1, 0, or -1 (err set)? Its header file is written
 * before the directory is renamed into place, so its presence is enough;
 * the hot paths (append, read) need not read and parse it. */
static int tape_exists(const char *id, err_t *err) {
  char *path = file_of(id, "header.json");
  int r = access(path, F_OK) == 0 ? 1 : errno == ENOENT ? 0 : -1;
  if (r < 0) fail_errno(err, "stat %s", path);
  free(path);
  return r;
}

static void end_json(buf_t *b, uint8_t state, uint64_t frames, uint64_t bytes, uint64_t ended_at,
                     const provider_option_string_t *digest,
                     const provider_option_list_u8_t *seal) {
  buf_printf(b, "{\"state\":\"%s\",\"frame_count\":%llu,\"byte_count\":%llu,\"ended_at\":%llu,\"digest\":",
             STATE_NAMES[state], (unsigned long long)frames, (unsigned long long)bytes,
             (unsigned long long)ended_at);
  if (digest && digest->is_some)
    buf_json_string(b, (const char *)digest->val.ptr, digest->val.len);
  else
    buf_str(b, "null");
  buf_str(b, ",\"seal\":");
  bytes_json(b, seal);
  buf_byte(b, '}');
}

/* The end file of a tape that ended with `s`. */
static void summary_json(buf_t *b, uint8_t state, const summary_t *s) {
  end_json(b, state, s->frame_count, s->byte_count, s->ended_at, &s->digest, &s->seal);
}

static uint64_t u64_of(const json *v) { return v && v->is_u64 ? v->u64 : 0; }

/* Fills `info` (its header already set) from end.json or by scanning. */
static bool fill_state(const char *id, info_t *info, err_t *err) {
  json end;
  int r = read_json(id, "end.json", &end, err);
  if (r < 0) return false;
  if (r > 0) {
    info->state = state_from(json_get(&end, "state"));
    info->frame_count = u64_of(json_get(&end, "frame_count"));
    info->byte_count = u64_of(json_get(&end, "byte_count"));
    const json *at = json_get(&end, "ended_at");
    info->ended_at.is_some = at && at->is_u64;
    info->ended_at.val = u64_of(at);
    info->digest.is_some = string_of(json_get(&end, "digest"), &info->digest.val);
    bool ok = bytes_of(json_get(&end, "seal"), &info->seal) ||
              fail(err, E_IO, "end of tape \"%s\" is damaged", id);
    json_free(&end);
    return ok;
  }
  uint64_t valid;
  info->state = STATE_RECORDING;
  info->ended_at.is_some = false;
  info->digest.is_some = false;
  info->seal.is_some = false;
  return scan(id, &info->frame_count, &info->byte_count, &valid, err);
}

/* A tape's info and stamp: 1, 0 if there is no such tape, -1. */
static int found(const char *id, info_t *info, uint64_t *stamp, err_t *err) {
  memset(info, 0, sizeof *info);
  int r = read_header(id, &info->header, stamp, err);
  if (r <= 0) return r;
  if (!fill_state(id, info, err)) {
    tapedeck_storage_types_tape_info_free(info);
    return -1;
  }
  return 1;
}

bool store_info(const char *id, info_t *out, err_t *err) {
  uint64_t stamp;
  int r = found(id, out, &stamp, err);
  return r > 0 ? true : r == 0 ? not_found(err, id) : false;
}

/* ---- opening ----------------------------------------------------------- */

bool store_open(const provider_string_t *config, err_t *err) {
  json cfg;
  char *why = NULL;
  const uint8_t *text = config->len ? config->ptr : (const uint8_t *)"{}";
  if (!json_parse(text, config->len ? config->len : 2, &cfg, &why)) {
    fail(err, E_INVALID, "config is not JSON: %s", why);
    free(why);
    return false;
  }
  bool ok = cfg.kind == J_OBJECT || fail(err, E_INVALID, "config must be a JSON object");
  for (size_t i = 0; ok && i < cfg.len; i++)
    if (strcmp(cfg.keys[i], "root") && strcmp(cfg.keys[i], "fsync"))
      ok = fail(err, E_INVALID, "unknown setting `%s` (known: root, fsync)", cfg.keys[i]);
  const json *root = json_get(&cfg, "root"), *fsync = json_get(&cfg, "fsync");
  if (ok && root && (root->kind != J_STRING || !root->len || strlen(root->str) != root->len))
    ok = fail(err, E_INVALID, "setting `root` must be a non-empty string");
  if (ok && fsync && fsync->kind != J_BOOL)
    ok = fail(err, E_INVALID, "setting `fsync` must be true or false");
  if (ok) {
    const char *dir = root ? root->str : "/tapes";
    free(S.tapes);
    free(S.trash);
    S.tapes = xprintf("%s/tapes", dir);
    S.trash = xprintf("%s/trash", dir);
    S.fsync = fsync ? fsync->boolean : true;
    if (!mkdir_all(S.tapes) || !mkdir_all(S.trash))
      ok = fail_errno(err, "create %s/tapes and %s/trash (is %s granted read-write?)", dir, dir, dir);
  }
  json_free(&cfg);
  return ok;
}

/* ---- writing ----------------------------------------------------------- */

/* A set of strings (the terms a writer has indexed). */
typedef struct {
  char **slots;
  size_t *lens;
  size_t cap, n;
} strset;

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
  return h;
}

/* Adds `s`; true if it was new. Takes ownership of `s` either way. */
static bool strset_add(strset *set, char *s, size_t n) {
  if ((set->n + 1) * 2 > set->cap) {
    strset bigger = {0};
    bigger.cap = set->cap ? set->cap * 2 : 16;
    bigger.slots = calloc(bigger.cap, sizeof(char *));
    bigger.lens = calloc(bigger.cap, sizeof(size_t));
    if (!bigger.slots || !bigger.lens) abort();
    for (size_t i = 0; i < set->cap; i++)
      if (set->slots[i]) strset_add(&bigger, set->slots[i], set->lens[i]);
    free(set->slots);
    free(set->lens);
    *set = bigger;
  }
  size_t i = fnv1a(s, n) & (set->cap - 1);
  for (; set->slots[i]; i = (i + 1) & (set->cap - 1)) {
    if (set->lens[i] == n && !memcmp(set->slots[i], s, n)) {
      free(s);
      return false;
    }
  }
  set->slots[i] = s;
  set->lens[i] = n;
  set->n++;
  return true;
}

static bool strset_has(const strset *set, const uint8_t *s, size_t n) {
  if (!set->cap) return false;
  for (size_t i = fnv1a((const char *)s, n) & (set->cap - 1); set->slots[i];
       i = (i + 1) & (set->cap - 1))
    if (set->lens[i] == n && !memcmp(set->slots[i], s, n)) return true;
  return false;
}

static void strset_free(strset *set) {
  for (size_t i = 0; i < set->cap; i++) free(set->slots[i]);
  free(set->slots);
  free(set->lens);
  memset(set, 0, sizeof *set);
}

/* The term index. Each line of `terms` is `["<term>",<seq>]`: a term of
 * the tape and the first frame that has it. A line is written *before* its
 * frame and counts only once that frame is stored (seq below the tape's
 * frame count), so an interrupted append never makes a tape match a term it
 * does not hold, nor leaves a stored frame's term out; `resume` (and a
 * writer whose append failed) drops lines whose frame is not stored. */

static void add_known(char *s, size_t n, void *set) { strset_add(set, s, n); }

/* A parsed line of `terms`: the term (malloc'ed) and its seq; false for a
 * torn or foreign line. */
static bool term_line(const uint8_t *p, size_t n, char **term, size_t *len, uint64_t *seq) {
  json v;
  if (!json_parse(p, n, &v, NULL)) return false;
  bool ok = v.kind == J_ARRAY && v.len == 2 && v.items[0].kind == J_STRING && v.items[1].is_u64;
  if (ok) {
    *term = v.items[0].str, *len = v.items[0].len, *seq = v.items[1].u64;
    v.items[0].str = NULL;
  }
  json_free(&v);
  return ok;
}

/* Calls `each` for every term of the tape whose frame is stored (seq below
 * `count`): the lines of `terms`, and for a tape of the previous format
 * `method:<m>` for each line of its `methods` (the JSON-RPC methods that
 * format found itself; `method:` is the host's term for a method). */
static void read_terms(const char *id, uint64_t count, void (*each)(char *s, size_t n, void *ctx),
                       void *ctx) {
  char *path = file_of(id, "terms");
  buf_t data;
  if (read_file(path, &data) > 0) {
    size_t start = 0;
    for (size_t i = 0; i < data.len; i++) {
      if (data.ptr[i] != '\n') continue;
      char *term;
      size_t len;
      uint64_t seq;
      if (term_line(data.ptr + start, i - start, &term, &len, &seq)) {
        if (seq < count)
          each(term, len, ctx);
        else
          free(term);
      }
      start = i + 1;
    }
    buf_free(&data);
  }
  free(path);
  path = file_of(id, "methods");
  if (read_file(path, &data) > 0) {
    size_t start = 0;
    for (size_t i = 0; i < data.len; i++) {
      if (data.ptr[i] != '\n') continue;
      json v;
      if (json_parse(data.ptr + start, i - start, &v, NULL)) {
        if (v.kind == J_STRING) {
          buf_t t = {0};
          buf_str(&t, "method:");
          buf_put(&t, v.str, v.len);
          buf_byte(&t, 0);
          each((char *)t.ptr, t.len - 1, ctx);
        }
        json_free(&v);
      }
      start = i + 1;
    }
    buf_free(&data);
  }
  free(path);
}

/* Drops the lines of `terms` whose frame is not stored (seq at or above
 * `count`), left by an interrupted or failed append. */
static bool prune_terms(const char *id, uint64_t count, err_t *err) {
  char *path = file_of(id, "terms");
  buf_t data, kept = {0};
  int r = read_file(path, &data);
  bool ok = r >= 0 || fail_errno(err, "read %s", path);
  if (r > 0) {
    size_t start = 0, dropped = 0;
    for (size_t i = 0; i < data.len; i++) {
      if (data.ptr[i] != '\n') continue;
      char *term;
      size_t len;
      uint64_t seq;
      if (term_line(data.ptr + start, i - start, &term, &len, &seq)) {
        free(term);
        if (seq < count)
          buf_put(&kept, data.ptr + start, i + 1 - start);
        else
          dropped++;
      }
      start = i + 1;
    }
    if (dropped || start != data.len)
      ok = write_atomic(path, kept.ptr, kept.len, S.fsync) || fail_errno(err, "repair %s", path);
    buf_free(&data);
  }
  buf_free(&kept);
  free(path);
  return ok;
}

/* Index lines for the terms of `frames` not yet in `known`, each with the
 * seq of the first frame that has it. */
static void terms_of(const frame_t *frames, size_t n, strset *known, buf_t *out) {
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < frames[i].terms.len; j++) {
      const provider_string_t *t = &frames[i].terms.ptr[j];
      if (strset_add(known, xstrndup((const char *)t->ptr, t->len), t->len)) {
        buf_byte(out, '[');
        buf_json_string(out, (const char *)t->ptr, t->len);
        buf_printf(out, ",%llu]\n", (unsigned long long)frames[i].seq);
      }
    }
  }
}

static void seek_entries(const frame_t *frames, size_t n, uint64_t offset, buf_t *out) {
  for (size_t i = 0; i < n; i++) {
    if (frames[i].seq % SEEK_EVERY == 0) {
      buf_u64le(out, frames[i].seq);
      buf_u64le(out, offset);
    }
    offset += record_size(&frames[i]);
  }
}

static bool check_consecutive(const frame_t *frames, size_t n, uint64_t first, err_t *err) {
  for (size_t i = 0; i < n; i++)
    if (frames[i].seq != first + i)
      return fail(err, E_INVALID,
                  "frame %zu of the batch has seq %llu, expected %llu (sequence numbers must be "
                  "consecutive)",
                  i, (unsigned long long)frames[i].seq, (unsigned long long)(first + i));
  return true;
}

static bool check_summary(const summary_t *s, uint64_t frames, uint64_t bytes, const char *id,
                          err_t *err) {
  if (s->frame_count == frames && s->byte_count == bytes) return true;
  return fail(err, E_INVALID,
              "summary of tape \"%s\" says %llu frames and %llu bytes; stored are %llu frames and "
              "%llu bytes",
              id, (unsigned long long)s->frame_count, (unsigned long long)s->byte_count,
              (unsigned long long)frames, (unsigned long long)bytes);
}

/* What goes into a new tape directory besides its header. */
typedef struct {
  const frame_t *frames;
  size_t n;
  const summary_t *summary;
  uint8_t reason;
  bool ended;
} contents;

static bool fill_dir(const char *dir, const header_t *h, uint64_t stamp, const contents *c) {
  buf_t data = {0}, terms = {0}, seek = {0}, text = {0};
  strset known = {0};
  for (size_t i = 0; i < c->n; i++) encode(&c->frames[i], &data);
  terms_of(c->frames, c->n, &known, &terms);
  seek_entries(c->frames, c->n, 0, &seek);
  char *frames = xprintf("%s/frames", dir), *tpath = xprintf("%s/terms", dir),
       *spath = xprintf("%s/seek", dir), *end = xprintf("%s/end.json", dir),
       *head = xprintf("%s/header.json", dir);
  bool ok = write_new_file(frames, data.ptr, data.len, S.fsync && c->ended) &&
            write_new_file(tpath, terms.ptr, terms.len, false) &&
            write_new_file(spath, seek.ptr, seek.len, false);
  if (ok && c->ended) {
    summary_json(&text, end_state(c->reason), c->summary);
    ok = write_atomic(end, text.ptr, text.len, S.fsync);
  }
  if (ok) {
    text.len = 0;
    header_file(&text, h, stamp);
    ok = write_atomic(head, text.ptr, text.len, S.fsync);
  }
  int e = errno;
  free(frames), free(tpath), free(spath), free(end), free(head);
  buf_free(&data), buf_free(&terms), buf_free(&seek), buf_free(&text);
  strset_free(&known);
  errno = e;
  return ok;
}

/* Builds the tape's directory in the trash and renames it into place;
 * `already-exists` if the id is taken, now or meanwhile. */
static bool build(const header_t *h, const contents *c, err_t *err) {
  if (!check_id(&h->id, err)) return false;
  char *id = dup_string(&h->id);
  int r = tape_exists(id, err);
  if (r != 0) {
    if (r > 0) fail(err, E_EXISTS, "tape \"%s\" exists already", id);
    free(id);
    return false;
  }
  char *name = unique_name();
  char *staging = xprintf("%s/new-%s-%s", S.trash, id, name);
  char *target = xprintf("%s/%s", S.tapes, id);
  free(name);
  bool ok = mkdir(staging, 0755) == 0 && fill_dir(staging, h, now_ns(), c) &&
            rename(staging, target) == 0;
  if (!ok) {
    int e = errno;
    remove_tree(staging);
    err_t ignored;
    int exists = tape_exists(id, &ignored);
    if (exists < 0) err_clear(&ignored);
    bool taken = e == EEXIST || e == ENOTEMPTY || exists > 0;
    if (taken)
      fail(err, E_EXISTS, "tape \"%s\" exists already", id);
    else {
      errno = e;
      fail_errno(err, "create tape \"%s\"", id);
    }
  }
  free(id), free(staging), free(target);
  return ok;
}

struct writer {
  char *id;
  uint64_t count, bytes, len;
  strset known;
  bool known_loaded;
  /* An append failed after writing index lines: drop them first. */
  bool prune;
};

static writer_t *new_writer(char *id, uint64_t count, uint64_t bytes, uint64_t len) {
  writer_t *w = xmalloc(sizeof *w);
  memset(w, 0, sizeof *w);
  w->id = id, w->count = count, w->bytes = bytes, w->len = len;
  return w;
}

void writer_free(writer_t *w) {
  if (!w) return;
  strset_free(&w->known);
  free(w->id);
  free(w);
}

uint64_t writer_next_seq(const writer_t *w) { return w->count; }

bool store_create(const header_t *h, writer_t **out, err_t *err) {
  contents c = {0};
  if (!build(h, &c, err)) return false;
  *out = new_writer(dup_string(&h->id), 0, 0, 0);
  return true;
}

bool store_resume(const char *id, writer_t **out, err_t *err) {
  int r = tape_exists(id, err);
  if (r <= 0) return r == 0 ? not_found(err, id) : false;
  char *end = file_of(id, "end.json");
  bool ended = access(end, F_OK) == 0;
  free(end);
  if (ended)
    return fail(err, E_INVALID, "tape \"%s\" has ended; only a recording tape can be resumed", id);
  uint64_t count, bytes, len;
  if (!scan(id, &count, &bytes, &len, err)) return false;
  char *path = file_of(id, "frames");
  struct stat st;
  /* Cut off a torn record at the end, left by an interrupted append. */
  if (stat(path, &st) == 0 && (uint64_t)st.st_size > len && truncate(path, (off_t)len) != 0) {
    fail_errno(err, "repair %s", path);
    free(path);
    return false;
  }
  free(path);
  if (!prune_terms(id, count, err)) return false;
  *out = new_writer(xstrndup(id, strlen(id)), count, bytes, len);
  return true;
}

bool store_save(const header_t *h, const frame_t *frames, size_t n, const summary_t *s,
                uint8_t reason, info_t *out, err_t *err) {
  if (!check_id(&h->id, err) || !check_consecutive(frames, n, 0, err)) return false;
  uint64_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += frames[i].payload.len;
  char *id = dup_string(&h->id);
  contents c = {frames, n, s, reason, true};
  bool ok = check_summary(s, n, bytes, id, err) && build(h, &c, err) && store_info(id, out, err);
  free(id);
  return ok;
}

bool store_delete(const char *id, err_t *err) {
  int r = tape_exists(id, err);
  if (r <= 0) return r == 0 ? not_found(err, id) : false;
  char *name = unique_name();
  char *gone = xprintf("%s/%s-%s", S.trash, id, name);
  char *dir = xprintf("%s/%s", S.tapes, id);
  free(name);
  bool ok = rename(dir, gone) == 0;
  if (!ok) {
    if (errno == ENOENT)
      not_found(err, id);
    else
      fail_errno(err, "delete tape \"%s\"", id);
  } else {
    remove_tree(gone);
  }
  free(gone), free(dir);
  return ok;
}

/* The tape's end.json: 1 (parsed into *end), 0 still recording, -1. Also
 * `not-found` if the tape was deleted under the writer. */
static int writer_end(const writer_t *w, json *end, err_t *err) {
  int r = tape_exists(w->id, err);
  if (r == 0) fail(err, E_NOT_FOUND, "tape \"%s\" was deleted", w->id);
  if (r <= 0) return -1;
  return read_json(w->id, "end.json", end, err);
}


bool writer_append(writer_t *w, const frame_t *frames, size_t n, uint64_t *next, err_t *err) {
  *next = w->count;
  if (n == 0) return true;
  json end;
  int r = writer_end(w, &end, err);
  if (r < 0) return false;
  if (r > 0) {
    json_free(&end);
    return fail(err, E_INVALID, "tape \"%s\" has ended; nothing can be appended", w->id);
  }
  if (!check_consecutive(frames, n, frames[0].seq, err)) return false;
  size_t skip = 0;
  while (skip < n && frames[skip].seq < w->count) skip++; /* redelivered */
  const frame_t *fresh = frames + skip;
  size_t m = n - skip;
  if (m == 0) return true;
  if (fresh[0].seq != w->count)
    return fail(err, E_INVALID,
                "append to tape \"%s\": first new frame has seq %llu, expected %llu (a gap)", w->id,
                (unsigned long long)fresh[0].seq, (unsigned long long)w->count);
  if (w->prune) {
    if (!prune_terms(w->id, w->count, err)) return false;
    w->prune = false;
  }
  if (!w->known_loaded) {
    read_terms(w->id, w->count, add_known, &w->known);
    w->known_loaded = true;
  }
  buf_t data = {0}, seek = {0}, terms = {0};
  uint64_t bytes = 0;
  for (size_t i = 0; i < m; i++) {
    encode(&fresh[i], &data);
    bytes += fresh[i].payload.len;
  }
  seek_entries(fresh, m, w->len, &seek);
  terms_of(fresh, m, &w->known, &terms);
  /* The index lines first (they count only once their frames are stored),
   * then the frames, then the seek entries (checked before use). */
  char *path = file_of(w->id, "frames"), *tpath = file_of(w->id, "terms"),
       *spath = file_of(w->id, "seek");
  bool indexed = append_file(tpath, terms.ptr, terms.len);
  int fd = indexed ? open(path, O_WRONLY) : -1;
  bool ok = fd >= 0 && pwrite_full(fd, data.ptr, data.len, w->len) &&
            append_file(spath, seek.ptr, seek.len);
  if (!ok) {
    /* None of the batch is stored: the frames are cut off again (readers
     * ignore a torn tail anyway), and the writer forgets the terms it
     * thought indexed and drops their lines before its next append. */
    fail_errno(err, "append to tape \"%s\"", w->id);
    if (fd >= 0 && ftruncate(fd, (off_t)w->len) != 0) {
    }
    strset_free(&w->known);
    w->known_loaded = false;
    w->prune = terms.len > 0;
  } else {
    w->count += m;
    w->bytes += bytes;
    w->len += data.len;
  }
  if (fd >= 0) close(fd);
  free(path), free(tpath), free(spath);
  buf_free(&data), buf_free(&seek), buf_free(&terms);
  *next = w->count;
  return ok;
}

static bool same_string(const json *v, const provider_option_string_t *s) {
  if (!s->is_some) return !v || v->kind == J_NULL;
  return v && v->kind == J_STRING && v->len == s->val.len && !memcmp(v->str, s->val.ptr, v->len);
}

bool writer_abort(writer_t *w, err_t *err) {
  json end;
  int r = writer_end(w, &end, err);
  if (r < 0) return false;
  if (r > 0) {
    json_free(&end);
    return true;
  }
  buf_t text = {0};
  end_json(&text, STATE_ABORTED, w->count, w->bytes, now_ns() / 1000, NULL, NULL);
  char *path = file_of(w->id, "end.json");
  bool ok = write_atomic(path, text.ptr, text.len, S.fsync) ||
            fail_errno(err, "abort tape \"%s\"", w->id);
  free(path);
  buf_free(&text);
  return ok;
}

bool writer_finish(writer_t *w, const summary_t *s, uint8_t reason, info_t *out, err_t *err) {
  json end;
  int r = writer_end(w, &end, err);
  if (r < 0) return false;
  if (r > 0) {
    bool same = state_from(json_get(&end, "state")) == end_state(reason) &&
                u64_of(json_get(&end, "frame_count")) == s->frame_count &&
                u64_of(json_get(&end, "byte_count")) == s->byte_count &&
                same_string(json_get(&end, "digest"), &s->digest);
    provider_option_list_u8_t seal;
    if (same && bytes_of(json_get(&end, "seal"), &seal)) {
      same = same_bytes(&seal, &s->seal);
      provider_option_list_u8_free(&seal);
    } else {
      same = false;
    }
    json_free(&end);
    if (!same) return fail(err, E_INVALID, "tape \"%s\" has ended already, differently", w->id);
    return store_info(w->id, out, err);
  }
  if (!check_summary(s, w->count, w->bytes, w->id, err)) return false;
  bool ok = true;
  if (S.fsync) {
    char *path = file_of(w->id, "frames");
    int fd = open(path, O_RDONLY);
    ok = fd >= 0 && fdatasync(fd) == 0;
    if (fd >= 0) close(fd);
    free(path);
  }
  buf_t text = {0};
  summary_json(&text, end_state(reason), s);
  char *path = file_of(w->id, "end.json");
  ok = ok && write_atomic(path, text.ptr, text.len, S.fsync);
  if (!ok) fail_errno(err, "finish tape \"%s\"", w->id);
  free(path);
  buf_free(&text);
  return ok && store_info(w->id, out, err);
}

/* ---- reading ----------------------------------------------------------- */

/* The offset of the last indexed frame at or before `from`, if that record
 * really is the frame; else 0. */
static uint64_t seek_start(const char *id, frames_reader *r, uint64_t from) {
  char *path = file_of(id, "seek");
  buf_t idx;
  uint64_t best_seq = 0, best = 0;
  bool any = false;
  if (read_file(path, &idx) > 0) {
    for (size_t i = 0; i + 16 <= idx.len; i += 16) {
      uint64_t seq = get_u64le(idx.ptr + i);
      if (seq > from) break;
      best_seq = seq, best = get_u64le(idx.ptr + i + 8), any = true;
    }
    buf_free(&idx);
  }
  free(path);
  if (!any) return 0;
  const uint8_t *head = reader_get(r, best, HEADER);
  return head && get_u64le(head + 8) == best_seq ? best : 0;
}

bool store_read(const char *id, uint64_t from, uint32_t max_frames, uint64_t max_bytes,
                frame_t **out, size_t *n, err_t *err) {
  *out = NULL;
  *n = 0;
  if (max_frames == 0)
    return fail(err, E_INVALID, "read of tape \"%s\": max-frames must be at least 1", id);
  int exists = tape_exists(id, err);
  if (exists <= 0) return exists == 0 ? not_found(err, id) : false;
  char *path = file_of(id, "frames");
  frames_reader r;
  if (!reader_open(&r, path)) {
    bool ok = errno == ENOENT ? not_found(err, id) : fail_errno(err, "open %s", path);
    free(path);
    return ok;
  }
  /* Hop over earlier frames by their headers, from the seek index on. */
  uint64_t at = seek_start(id, &r, from);
  const uint8_t *head;
  for (;;) {
    head = reader_get(&r, at, HEADER);
    if (!head || get_u64le(head + 8) >= from) break;
    at += HEADER + (uint64_t)get_u32le(head);
  }
  size_t cap = 0;
  uint64_t total = 0;
  uint32_t len;
  bool damaged = false;
  while (head && record_at(&r, at, &head, &len)) {
    const uint8_t *payload;
    size_t size;
    if (!payload_of(head, len, &payload, &size)) break; /* as if torn */
    if (*n && total + size > max_bytes) break;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      if (cap > max_frames) cap = max_frames;
      *out = xrealloc(*out, cap * sizeof(frame_t));
    }
    if (!frame_of(head, len, &(*out)[*n])) {
      damaged = true;
      break;
    }
    (*n)++;
    total += size;
    at += HEADER + (uint64_t)len;
    if (*n >= max_frames || total >= max_bytes) break;
  }
  bool failed = r.failed || damaged;
  reader_close(&r);
  if (failed) {
    for (size_t i = 0; i < *n; i++) tapedeck_storage_types_frame_free(&(*out)[i]);
    free(*out);
    *out = NULL, *n = 0;
    fail(err, E_IO, "read %s failed%s", path, damaged ? ": a frame record is damaged" : "");
  }
  free(path);
  return !failed;
}

/* ---- listing and searching --------------------------------------------- */

/* The lowercase of UTF-8 text (towlower per code point), malloc'ed. */
static char *lower(const uint8_t *s, size_t n, size_t *out_len) {
  buf_t b = {0};
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    uint32_t cp = c;
    size_t k = 1;
    if (c >= 0xF0 && i + 3 < n) cp = (c & 7u) << 18 | (s[i + 1] & 63u) << 12 | (s[i + 2] & 63u) << 6 | (s[i + 3] & 63u), k = 4;
    else if (c >= 0xE0 && i + 2 < n) cp = (c & 15u) << 12 | (s[i + 1] & 63u) << 6 | (s[i + 2] & 63u), k = 3;
    else if (c >= 0xC0 && i + 1 < n) cp = (c & 31u) << 6 | (s[i + 1] & 63u), k = 2;
    if (k == 1) {
      buf_byte(&b, (uint8_t)towlower(c));
    } else {
      uint32_t l = (uint32_t)towlower((wint_t)cp);
      uint8_t enc[4];
      size_t m;
      if (l < 0x800) enc[0] = (uint8_t)(0xC0 | l >> 6), enc[1] = (uint8_t)(0x80 | (l & 63)), m = 2;
      else if (l < 0x10000) enc[0] = (uint8_t)(0xE0 | l >> 12), enc[1] = (uint8_t)(0x80 | (l >> 6 & 63)), enc[2] = (uint8_t)(0x80 | (l & 63)), m = 3;
      else enc[0] = (uint8_t)(0xF0 | l >> 18), enc[1] = (uint8_t)(0x80 | (l >> 12 & 63)), enc[2] = (uint8_t)(0x80 | (l >> 6 & 63)), enc[3] = (uint8_t)(0x80 | (l & 63)), m = 4;
      if (l < 0x80) enc[0] = (uint8_t)l, m = 1;
      buf_put(&b, enc, m);
    }
    i += k;
  }
  buf_byte(&b, 0);
  *out_len = b.len - 1;
  return (char *)b.ptr;
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k) {
  if (k == 0) return true;
  for (size_t i = 0; i + k <= n; i++)
    if (hay[i] == needle[0] && !memcmp(hay + i, needle, k)) return true;
  return false;
}

static bool same(const provider_string_t *a, const provider_string_t *b) {
  return a->len == b->len && !memcmp(a->ptr, b->ptr, a->len);
}

bool filter_matches(const filter_t *f, const info_t *info) {
  const header_t *h = &info->header;
  if (f->session_id.is_some && !same(&f->session_id.val, &h->session_id)) return false;
  if (f->name_contains.is_some) {
    size_t hn, nn;
    char *hay = lower(h->name.ptr, h->name.len, &hn);
    char *needle = lower(f->name_contains.val.ptr, f->name_contains.val.len, &nn);
    bool ok = contains((uint8_t *)hay, hn, (uint8_t *)needle, nn);
    free(hay), free(needle);
    if (!ok) return false;
  }
  for (size_t i = 0; i < f->tags.len; i++) {
    bool found = false;
    for (size_t j = 0; !found && j < h->tags.len; j++)
      found = same(&f->tags.ptr[i].f0, &h->tags.ptr[j].f0) &&
              same(&f->tags.ptr[i].f1, &h->tags.ptr[j].f1);
    if (!found) return false;
  }
  if (f->created_since.is_some && h->created_at < f->created_since.val) return false;
  if (f->created_until.is_some && h->created_at >= f->created_until.val) return false;
  if (f->state.is_some && info->state != f->state.val) return false;
  return true;
}

bool store_has_terms(const char *id, uint64_t count, const provider_list_string_t *terms) {
  if (!terms->len) return true;
  strset set = {0};
  read_terms(id, count, add_known, &set);
  bool all = true;
  for (size_t i = 0; all && i < terms->len; i++)
    all = strset_has(&set, terms->ptr[i].ptr, terms->ptr[i].len);
  strset_free(&set);
  return all;
}

bool store_contains_text(const char *id, const provider_string_t *needle) {
  char *path = file_of(id, "frames");
  frames_reader r;
  bool found = false;
  if (reader_open(&r, path)) {
    uint64_t at = 0;
    const uint8_t *head, *payload;
    uint32_t len;
    size_t size;
    while (!found && record_at(&r, at, &head, &len) && payload_of(head, len, &payload, &size)) {
      found = contains(payload, size, needle->ptr, needle->len);
      at += HEADER + (uint64_t)len;
    }
    reader_close(&r);
  }
  free(path);
  return found;
}

typedef struct {
  uint64_t stamp;
  info_t info;
} entry;

static void free_entries(entry *e, size_t n) {
  for (size_t i = 0; i < n; i++) tapedeck_storage_types_tape_info_free(&e[i].info);
  free(e);
}

/* Every tape, as found on disk now. */
static bool all(entry **out, size_t *n, err_t *err) {
  *out = NULL;
  *n = 0;
  DIR *d = opendir(S.tapes);
  if (!d) return fail_errno(err, "list tapes in %s", S.tapes);
  size_t cap = 0;
  struct dirent *e;
  bool ok = true;
  while (ok && (e = readdir(d))) {
    if (!valid_id(e->d_name)) continue;
    entry t;
    int r = found(e->d_name, &t.info, &t.stamp, err);
    if (r < 0 && err->tag == E_NOT_FOUND) { /* deleted meanwhile */
      err_clear(err);
      continue;
    }
    if (r < 0) ok = false;
    if (r <= 0) continue;
    if (*n == cap) *out = xrealloc(*out, (cap = cap ? cap * 2 : 32) * sizeof(entry));
    (*out)[(*n)++] = t;
  }
  closedir(d);
  if (!ok) free_entries(*out, *n), *out = NULL, *n = 0;
  return ok;
}

/* Order: created-at descending, then id descending. */
static int newest_first(const void *a, const void *b) {
  const header_t *x = &((const entry *)a)->info.header, *y = &((const entry *)b)->info.header;
  if (x->created_at != y->created_at) return x->created_at < y->created_at ? 1 : -1;
  size_t n = x->id.len < y->id.len ? x->id.len : y->id.len;
  int c = memcmp(x->id.ptr, y->id.ptr, n);
  if (c == 0) c = x->id.len < y->id.len ? -1 : x->id.len > y->id.len;
  return -c;
}

/* Is (created, id) strictly after the cursor's last tape in list order? */
static bool after(const header_t *h, uint64_t created, const char *id) {
  if (h->created_at != created) return h->created_at < created;
  size_t k = strlen(id), n = h->id.len < k ? h->id.len : k;
  int c = memcmp(h->id.ptr, id, n);
  if (c == 0) c = h->id.len < k ? -1 : h->id.len > k;
  return c < 0;
}

bool store_page(match_fn match, void *ctx, const provider_string_t *cursor, uint32_t limit,
                page_t *out, err_t *err) {
  memset(out, 0, sizeof *out);
  if (limit < 1 || limit > MAX_LIMIT)
    return fail(err, E_INVALID, "limit %u is out of range 1..=%d", limit, MAX_LIMIT);
  uint64_t snapshot = now_ns(), last_created = 0;
  char *last_id = NULL;
  if (cursor) {
    /* c1:<snapshot>:<created-at>:<id> */
    char *c = dup_string(cursor), *p = c, *end;
    bool ok = cursor->len == strlen(c) && !strncmp(p, "c1:", 3);
    if (ok) snapshot = strtoull(p += 3, &end, 10), ok = end != p && *end == ':';
    if (ok) last_created = strtoull(p = end + 1, &end, 10), ok = end != p && *end == ':';
    if (ok) ok = valid_id(last_id = end + 1);
    if (!ok) {
      buf_t shown = {0};
      buf_json_string(&shown, (const char *)cursor->ptr, cursor->len);
      buf_byte(&shown, 0);
      fail(err, E_INVALID, "cursor %s was not issued by this provider", (char *)shown.ptr);
      buf_free(&shown);
      free(c);
      return false;
    }
    last_id = xstrndup(last_id, strlen(last_id));
    free(c);
  }
  entry *tapes;
  size_t n;
  if (!all(&tapes, &n, err)) {
    free(last_id);
    return false;
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    bool keep = tapes[i].stamp <= snapshot && match(&tapes[i].info, ctx) &&
                (!last_id || after(&tapes[i].info.header, last_created, last_id));
    if (keep)
      tapes[kept++] = tapes[i];
    else
      tapedeck_storage_types_tape_info_free(&tapes[i].info);
  }
  free(last_id);
  qsort(tapes, kept, sizeof(entry), newest_first);
  size_t shown = kept < limit ? kept : limit;
  out->tapes.ptr = shown ? xmalloc(shown * sizeof(info_t)) : NULL;
  out->tapes.len = shown;
  for (size_t i = 0; i < shown; i++) out->tapes.ptr[i] = tapes[i].info;
  if (kept > limit) {
    const header_t *h = &tapes[shown - 1].info.header;
    char *c = xprintf("c1:%llu:%llu:%.*s", (unsigned long long)snapshot,
                      (unsigned long long)h->created_at, (int)h->id.len, (const char *)h->id.ptr);
    out->next_cursor.is_some = true;
    out->next_cursor.val = (provider_string_t){(uint8_t *)c, strlen(c)};
  }
  for (size_t i = shown; i < kept; i++) tapedeck_storage_types_tape_info_free(&tapes[i].info);
  free(tapes);
  return true;
}

bool store_stats(stats_t *out, err_t *err) {
  entry *tapes;
  size_t n;
  if (!all(&tapes, &n, err)) return false;
  memset(out, 0, sizeof *out);
  out->tape_count = n;
  for (size_t i = 0; i < n; i++) {
    const info_t *t = &tapes[i].info;
    out->recording_count += t->state == STATE_RECORDING;
    out->frame_count += t->frame_count;
    out->byte_count += t->byte_count;
    char *id = dup_string(&t->header.id);
    char *dir = xprintf("%s/%s", S.tapes, id);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      struct stat st;
      char *file = xprintf("%s/%s", dir, e->d_name);
      if (e->d_type == DT_REG && stat(file, &st) == 0) out->stored_bytes += (uint64_t)st.st_size;
      free(file);
    }
    if (d) closedir(d);
    free(dir), free(id);
  }
  free_entries(tapes, n);
  return true;
}

void store_append_many(const append_t *appends, size_t n, append_result_t *out) {
  strset seen = {0};
  for (size_t i = 0; i < n; i++) {
    const append_t *a = &appends[i];
    append_result_t *r = &out[i];
    memset(r, 0, sizeof *r);
    bool ok;
    if (!strset_add(&seen, xstrndup((const char *)a->id.ptr, a->id.len), a->id.len)) {
      buf_t shown = {0};
      buf_json_string(&shown, (const char *)a->id.ptr, a->id.len);
      buf_byte(&shown, 0);
      ok = fail(&r->val.err, E_INVALID, "tape %s appears more than once in one append-many",
                (char *)shown.ptr);
      buf_free(&shown);
    } else {
      /* What `resume` then `append` would do. */
      char *id = check_id(&a->id, &r->val.err) ? dup_string(&a->id) : NULL;
      writer_t *w = NULL;
      ok = id && store_resume(id, &w, &r->val.err) &&
           writer_append(w, a->frames.ptr, a->frames.len, &r->val.ok, &r->val.err);
      writer_free(w);
      free(id);
    }
    r->is_err = !ok;
  }
  strset_free(&seen);
}
