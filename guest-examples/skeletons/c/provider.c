/* my-provider: a tapedeck storage provider, made by `tapedeck provider new`.
 *
 * The exports of gen/provider.h (wit-bindgen's C bindings of wit/): each
 * export owns its arguments (and frees them); what it returns is malloc'ed,
 * and the generated code frees it after the call. That includes an error's
 * message: always build it with fail(), never point it at a string literal.
 *
 * One directory per tape under the granted root (`root`, default /tapes):
 *
 *   <id>/header   written once (the tape's directory is built under a
 *                 temporary name and renamed into place: atomic)
 *   <id>/frames   frame records, one write per append
 *   <id>/end      written by finish or abort (temporary file + rename)
 *
 * Files, little-endian; a string or byte string is a u32 length and its
 * bytes, a list a u32 count and its items, an option u8 0 or u8 1 and the
 * value:
 *   header: u64 stamp (when this provider stored the tape, for paging), id,
 *           session id, name, tags, u64 created-at, envelope (option);
 *   frames: per frame u8 0xF5, u8 1 on the last frame of an append (else 0),
 *           u32 body length, body: u64 seq, u64 timestamp, u8 direction,
 *           u8 not-json, payload, terms, attributes. Bytes after the last
 *           record marked 1 are a torn append: readers ignore them, `resume`
 *           cuts them off;
 *   end:    u8 state (1 finished, 2 aborted, 3 crashed), then u8 1 and the
 *           summary (u64 frames, u64 bytes, u64 ended-at, digest, seal) or u8 0.
 *
 * Simple rather than fast: every read scans the tape's `frames` file and
 * every listing reads every tape. Replace what you need and keep
 * `tapedeck provider test` passing. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gen/provider.h"

#define NAME "my-provider"
#define VERSION "0.1.0"
#define MAGIC 0xF5

typedef tapedeck_storage_types_storage_error_t err_t;
typedef tapedeck_storage_types_frame_t frame_t;
typedef tapedeck_storage_types_tape_header_t header_t;
typedef tapedeck_storage_types_tape_summary_t summary_t;
typedef tapedeck_storage_types_tape_info_t info_t;
typedef tapedeck_storage_types_tape_filter_t filter_t;
typedef tapedeck_storage_types_tape_page_t page_t;
typedef provider_string_t str_t;
typedef exports_tapedeck_storage_tape_storage_list_frame_t frames_arg_t;

enum {
  E_NOT_FOUND = TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_NOT_FOUND,
  E_EXISTS = TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_ALREADY_EXISTS,
  E_INVALID = TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_INVALID_INPUT,
  E_IO = TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_IO,
  E_INTERNAL = TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_INTERNAL,
};

/* ---- memory and errors ---------------------------------------------------- */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort(); /* out of memory: the host recycles the instance */
  return p;
}

/* Sets *err (every variant's payload is a string at the same place) to a
 * malloc'ed message and returns false: `return fail(err, E_INVALID, ...)`. */
static bool fail(err_t *err, uint8_t tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  err->tag = tag;
  err->val.io.ptr = (uint8_t *)msg;
  err->val.io.len = (size_t)n;
  return false;
}

static bool fail_errno(err_t *err, const char *what, const char *path) {
  return fail(err, errno == ENOENT ? E_NOT_FOUND : E_IO, "%s %s: %s", what, path, strerror(errno));
}

static void str_copy(str_t *out, const uint8_t *p, size_t n) {
  out->ptr = xmalloc(n);
  memcpy(out->ptr, p, n);
  out->len = n;
}

static bool str_eq(const str_t *a, const str_t *b) {
  return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

/* ---- byte buffers ---------------------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}
static void put_u8(buf_t *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf_t *b, uint32_t v) { /* wasm is little-endian */ put(b, &v, 4); }
static void put_u64(buf_t *b, uint64_t v) { put(b, &v, 8); }
static void put_bytes(buf_t *b, const uint8_t *p, size_t n) {
  put_u32(b, (uint32_t)n);
  put(b, p, n);
}
static void put_str(buf_t *b, const str_t *s) { put_bytes(b, s->ptr, s->len); }
static void put_pairs(buf_t *b, const provider_list_tuple2_string_string_t *v) {
  put_u32(b, (uint32_t)v->len);
  for (size_t i = 0; i < v->len; i++) {
    put_str(b, &v->ptr[i].f0);
    put_str(b, &v->ptr[i].f1);
  }
}

/* Reads values back, each checking the bounds: `ok` turns false on a
 * damaged file, and the reads after that return zeros. */
typedef struct {
  const uint8_t *p;
  size_t len, at;
  bool ok;
} in_t;

static const uint8_t *take(in_t *r, size_t n) {
  if (!r->ok || n > r->len - r->at) {
    r->ok = false;
    return NULL;
  }
  r->at += n;
  return r->p + r->at - n;
}
static uint8_t get_u8(in_t *r) {
  const uint8_t *p = take(r, 1);
  return p ? *p : 0;
}
static uint32_t get_u32(in_t *r) {
  uint32_t v = 0;
  const uint8_t *p = take(r, 4);
  if (p) memcpy(&v, p, 4);
  return v;
}
static uint64_t get_u64(in_t *r) {
  uint64_t v = 0;
  const uint8_t *p = take(r, 8);
  if (p) memcpy(&v, p, 8);
  return v;
}
static void get_str(in_t *r, str_t *out) {
  size_t n = get_u32(r);
  const uint8_t *p = take(r, n);
  str_copy(out, p ? p : (const uint8_t *)"", p ? n : 0);
}
static void get_pairs(in_t *r, provider_list_tuple2_string_string_t *out) {
  size_t n = get_u32(r);
  if (n > r->len) n = 0, r->ok = false;
  out->ptr = xmalloc(n * sizeof *out->ptr);
  out->len = n;
  for (size_t i = 0; i < n; i++) {
    get_str(r, &out->ptr[i].f0);
    get_str(r, &out->ptr[i].f1);
  }
}

/* ---- files ------------------------------------------------------------------ */

static char *root;

static char *path_of(const char *id, const char *file) {
  char *p;
  if (asprintf(&p, file ? "%s/%s/%s" : "%s/%s", root, id, file) < 0) abort();
  return p;
}

/* The whole file into *out: 0, or -1 with errno set. */
static int read_file(const char *path, buf_t *out) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  *out = (buf_t){0};
  uint8_t chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0) {
      int e = errno;
      close(fd);
      free(out->p);
      errno = e;
      return -1;
    }
    if (n == 0) break;
    put(out, chunk, (size_t)n);
  }
  close(fd);
  return 0;
}

static bool write_file(const char *path, const uint8_t *p, size_t n, int flags, err_t *err) {
  int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
  if (fd < 0) return fail_errno(err, "creating", path);
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, p + done, n - done);
    if (w < 0) {
      close(fd);
      return fail_errno(err, "writing", path);
    }
    done += (size_t)w;
  }
  bool ok = fsync(fd) == 0 || fail_errno(err, "syncing", path);
  close(fd);
  return ok;
}

static char *scratch_name(const char *prefix) {
  uint64_t r = 0;
  getentropy(&r, sizeof r);
  char *p;
  if (asprintf(&p, "%s/.%s-%016llx", root, prefix, (unsigned long long)r) < 0) abort();
  return p;
}

/* Writes the file through a temporary file and a rename: all or nothing. */
static bool write_atomic(const char *path, const buf_t *b, err_t *err) {
  char *tmp = scratch_name("tmp");
  bool ok = write_file(tmp, b->p, b->len, O_EXCL, err) &&
            (rename(tmp, path) == 0 || fail_errno(err, "renaming", path));
  if (!ok) unlink(tmp);
  free(tmp);
  return ok;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char *p;
      if (asprintf(&p, "%s/%s", path, e->d_name) < 0) abort();
      unlink(p);
      free(p);
    }
    closedir(d);
  }
  rmdir(path);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- tapes ------------------------------------------------------------------ */

static bool valid_id(const uint8_t *p, size_t n) {
  if (n < 1 || n > 128 || p[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    if (!(isalnum(p[i]) || p[i] == '-' || p[i] == '_' || p[i] == '.')) return false;
    if (p[i] == '.' && i + 1 < n && p[i + 1] == '.') return false;
  }
  return true;
}

/* The id as a C string, or NULL with *err set. */
static char *check_id(const str_t *id, err_t *err) {
  if (!valid_id(id->ptr, id->len)) {
    fail(err, E_INVALID, "invalid tape id \"%.*s\": use 1-128 of A-Z a-z 0-9 - _ ., not starting with . and without ..",
         (int)(id->len > 40 ? 40 : id->len), (const char *)id->ptr);
    return NULL;
  }
  return strndup((const char *)id->ptr, id->len);
}

typedef struct {
  uint64_t stamp;
  header_t header;
  bool ended;
  uint8_t state;
  bool has_summary;
  summary_t summary;
} tape_t;

static void tape_free(tape_t *t) {
  tapedeck_storage_types_tape_header_free(&t->header);
  if (t->has_summary) tapedeck_storage_types_tape_summary_free(&t->summary);
}

static void encode_header(buf_t *b, uint64_t stamp, const header_t *h) {
  put_u64(b, stamp);
  put_str(b, &h->id);
  put_str(b, &h->session_id);
  put_str(b, &h->name);
  put_pairs(b, &h->tags);
  put_u64(b, h->created_at);
  put_u8(b, h->envelope.is_some);
  if (h->envelope.is_some) put_bytes(b, h->envelope.val.ptr, h->envelope.val.len);
}

static void encode_end(buf_t *b, uint8_t state, const summary_t *s) {
  put_u8(b, state);
  put_u8(b, s != NULL);
  if (!s) return;
  put_u64(b, s->frame_count);
  put_u64(b, s->byte_count);
  put_u64(b, s->ended_at);
  put_u8(b, s->digest.is_some);
  if (s->digest.is_some) put_str(b, &s->digest.val);
  put_u8(b, s->seal.is_some);
  if (s->seal.is_some) put_bytes(b, s->seal.val.ptr, s->seal.val.len);
}

static void decode_end(in_t *r, tape_t *t) {
  t->ended = true;
  t->state = get_u8(r);
  t->has_summary = get_u8(r) == 1;
  if (!t->has_summary) return;
  summary_t *s = &t->summary;
  s->frame_count = get_u64(r);
  s->byte_count = get_u64(r);
  s->ended_at = get_u64(r);
  s->digest.is_some = get_u8(r);
  if (s->digest.is_some) get_str(r, &s->digest.val);
  s->seal.is_some = get_u8(r);
  if (s->seal.is_some) get_str(r, (str_t *)&s->seal.val);
}

/* Reads a tape's header and end: false with `not-found` if it is not there. */
static bool load(const char *id, tape_t *t, err_t *err) {
  *t = (tape_t){0};
  char *path = path_of(id, "header");
  buf_t b;
  if (read_file(path, &b) < 0) {
    bool r = errno == ENOENT ? fail(err, E_NOT_FOUND, "no tape `%s`", id) : fail_errno(err, "reading", path);
    free(path);
    return r;
  }
  in_t r = {b.p, b.len, 0, true};
  t->stamp = get_u64(&r);
  get_str(&r, &t->header.id);
  get_str(&r, &t->header.session_id);
  get_str(&r, &t->header.name);
  get_pairs(&r, &t->header.tags);
  t->header.created_at = get_u64(&r);
  t->header.envelope.is_some = get_u8(&r);
  if (t->header.envelope.is_some) get_str(&r, (str_t *)&t->header.envelope.val);
  free(b.p);
  free(path);
  path = path_of(id, "end");
  if (read_file(path, &b) == 0) {
    in_t e = {b.p, b.len, 0, true};
    decode_end(&e, t);
    r.ok = r.ok && e.ok;
    free(b.p);
  }
  free(path);
  if (!r.ok) {
    tape_free(t);
    return fail(err, E_IO, "the files of tape `%s` are damaged", id);
  }
  return true;
}

/* Where the frame records of a `frames` file are: the bodies of whole
 * appends only, and the length they fill. */
typedef struct {
  buf_t file;
  size_t *starts, *ends, count, committed;
} frames_t;

static bool scan_frames(const char *id, frames_t *f, err_t *err) {
  *f = (frames_t){0};
  char *path = path_of(id, "frames");
  if (read_file(path, &f->file) < 0) {
    bool r = fail_errno(err, "reading", path);
    free(path);
    return r;
  }
  free(path);
  size_t cap = 0, n = 0, at = 0;
  while (at + 6 <= f->file.len && f->file.p[at] == MAGIC) {
    bool last = f->file.p[at + 1] == 1;
    uint32_t len;
    memcpy(&len, f->file.p + at + 2, 4);
    if (len > f->file.len - at - 6) break;
    if (n == cap) {
      cap = cap * 2 + 64;
      f->starts = realloc(f->starts, cap * sizeof(size_t));
      f->ends = realloc(f->ends, cap * sizeof(size_t));
      if (!f->starts || !f->ends) abort();
    }
    f->starts[n] = at + 6;
    f->ends[n] = at + 6 + len;
    n++;
    at += 6 + len;
    if (last) f->count = n, f->committed = at;
  }
  return true;
}

static void frames_free(frames_t *f) {
  free(f->file.p);
  free(f->starts);
  free(f->ends);
}

static uint64_t payload_len(const frames_t *f, size_t i) {
  in_t r = {f->file.p + f->starts[i], f->ends[i] - f->starts[i], 18, true};
  return get_u32(&r);
}

static uint64_t payload_bytes(const frames_t *f) {
  uint64_t n = 0;
  for (size_t i = 0; i < f->count; i++) n += payload_len(f, i);
  return n;
}

static bool decode_frame(const frames_t *f, size_t i, frame_t *out) {
  in_t r = {f->file.p + f->starts[i], f->ends[i] - f->starts[i], 0, true};
  out->seq = get_u64(&r);
  out->timestamp = get_u64(&r);
  out->direction = get_u8(&r);
  out->flags = get_u8(&r) ? TAPEDECK_STORAGE_TYPES_FRAME_FLAGS_NOT_JSON : 0;
  get_str(&r, (str_t *)&out->payload);
  size_t n = get_u32(&r);
  if (n > r.len) n = 0, r.ok = false;
  out->terms.ptr = xmalloc(n * sizeof(str_t));
  out->terms.len = n;
  for (size_t t = 0; t < n; t++) get_str(&r, &out->terms.ptr[t]);
  get_pairs(&r, &out->attributes);
  return r.ok;
}

static void encode_frames(buf_t *b, const frame_t *frames, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const frame_t *f = &frames[i];
    buf_t body = {0};
    put_u64(&body, f->seq);
    put_u64(&body, f->timestamp);
    put_u8(&body, f->direction);
    put_u8(&body, (f->flags & TAPEDECK_STORAGE_TYPES_FRAME_FLAGS_NOT_JSON) ? 1 : 0);
    put_bytes(&body, f->payload.ptr, f->payload.len);
    put_u32(&body, (uint32_t)f->terms.len);
    for (size_t t = 0; t < f->terms.len; t++) put_str(&body, &f->terms.ptr[t]);
    put_pairs(&body, &f->attributes);
    put_u8(b, MAGIC);
    put_u8(b, i + 1 == n);
    put_bytes(b, body.p, body.len);
    free(body.p);
  }
}

/* Fills *out (fresh memory, moving the header out of *t). */
static bool tape_info(const char *id, tape_t *t, info_t *out, err_t *err) {
  *out = (info_t){0};
  if (t->has_summary) {
    out->frame_count = t->summary.frame_count;
    out->byte_count = t->summary.byte_count;
    out->ended_at.is_some = true;
    out->ended_at.val = t->summary.ended_at;
    out->digest = t->summary.digest;
    out->seal = t->summary.seal;
    t->has_summary = false; /* moved */
  } else {
    frames_t f;
    if (!scan_frames(id, &f, err)) return false;
    out->frame_count = f.count;
    out->byte_count = payload_bytes(&f);
    frames_free(&f);
  }
  out->state = t->ended ? t->state : TAPEDECK_STORAGE_TYPES_TAPE_STATE_RECORDING;
  out->header = t->header;
  t->header = (header_t){0}; /* moved */
  return true;
}

static bool get_info(const char *id, info_t *out, err_t *err) {
  tape_t t;
  if (!load(id, &t, err)) return false;
  bool ok = tape_info(id, &t, out, err);
  tape_free(&t);
  return ok;
}

static bool check_consecutive(const frame_t *frames, size_t n, uint64_t first, err_t *err) {
  for (size_t i = 0; i < n; i++) {
    if (frames[i].seq != first + i) {
      return fail(err, E_INVALID, "frame %zu has seq %llu, expected %llu (frames must be consecutive, without gaps)", i,
                  (unsigned long long)frames[i].seq, (unsigned long long)(first + i));
    }
  }
  return true;
}

static bool check_summary(const summary_t *s, uint64_t frames, uint64_t bytes, err_t *err) {
  if (s->frame_count == frames && s->byte_count == bytes) return true;
  return fail(err, E_INVALID, "the summary says %llu frames and %llu bytes, %llu frames and %llu bytes are stored",
              (unsigned long long)s->frame_count, (unsigned long long)s->byte_count, (unsigned long long)frames,
              (unsigned long long)bytes);
}

/* Builds the tape's directory under a temporary name with the files, then
 * renames it to the id: it appears whole or not at all. */
static bool publish(const char *id, const char **names, buf_t *files, size_t n, err_t *err) {
  char *dir = path_of(id, NULL);
  struct stat st;
  bool ok = true;
  if (stat(dir, &st) == 0) {
    ok = fail(err, E_EXISTS, "tape `%s` exists", id);
  } else {
    char *tmp = scratch_name("new");
    ok = mkdir(tmp, 0755) == 0 || fail_errno(err, "creating", tmp);
    for (size_t i = 0; ok && i < n; i++) {
      char *p;
      if (asprintf(&p, "%s/%s", tmp, names[i]) < 0) abort();
      ok = write_file(p, files[i].p, files[i].len, O_EXCL, err);
      free(p);
    }
    /* A rename never replaces a directory that has files. */
    if (ok && (stat(dir, &st) == 0 || rename(tmp, dir) != 0)) ok = fail(err, E_EXISTS, "tape `%s` exists", id);
    if (!ok) remove_tree(tmp);
    free(tmp);
  }
  free(dir);
  return ok;
}

/* ---- the writer --------------------------------------------------------------- */

struct exports_tapedeck_storage_tape_storage_tape_writer_t {
  char *id;
  uint64_t next_seq;
  size_t committed; /* length of `frames` after the last whole append */
};
typedef exports_tapedeck_storage_tape_storage_tape_writer_t writer_t;
typedef exports_tapedeck_storage_tape_storage_own_tape_writer_t own_writer_t;

static own_writer_t new_writer(const char *id, uint64_t next_seq, size_t committed) {
  writer_t *w = xmalloc(sizeof *w);
  w->id = strdup(id);
  w->next_seq = next_seq;
  w->committed = committed;
  return exports_tapedeck_storage_tape_storage_tape_writer_new(w);
}

void exports_tapedeck_storage_tape_storage_tape_writer_destructor(writer_t *w) {
  free(w->id);
  free(w);
}

uint64_t exports_tapedeck_storage_tape_storage_method_tape_writer_next_seq(writer_t *w) {
  return w->next_seq;
}

static const char *STATE_NAMES[] = {"recording", "finished", "aborted", "crashed"};

/* The tape's state now: false if it is gone. */
static bool current(writer_t *w, tape_t *t, err_t *err) {
  return load(w->id, t, err);
}

static bool writer_append(writer_t *w, const frame_t *frames, size_t n, uint64_t *ret, err_t *err) {
  tape_t t;
  if (!current(w, &t, err)) return false;
  bool ended = t.ended;
  uint8_t state = t.state;
  tape_free(&t);
  if (ended) return fail(err, E_INVALID, "tape `%s` is %s, not recording", w->id, STATE_NAMES[state & 3]);
  char *path = path_of(w->id, "frames");
  struct stat st;
  if (stat(path, &st) != 0) {
    bool r = fail_errno(err, "reading", path);
    free(path);
    return r;
  }
  if ((size_t)st.st_size != w->committed) { /* appended through another writer */
    frames_t f;
    if (!scan_frames(w->id, &f, err)) return free(path), false;
    w->next_seq = f.count;
    w->committed = f.committed;
    frames_free(&f);
  }
  size_t skip = 0; /* a redelivery: frames below next-seq are stored already */
  while (skip < n && frames[skip].seq < w->next_seq) skip++;
  bool ok = check_consecutive(frames + skip, n - skip, w->next_seq, err);
  if (ok && skip < n) {
    buf_t b = {0};
    encode_frames(&b, frames + skip, n - skip);
    int fd = open(path, O_WRONLY);
    ok = fd >= 0 || fail_errno(err, "opening", path);
    size_t done = 0;
    while (ok && done < b.len) {
      ssize_t wr = pwrite(fd, b.p + done, b.len - done, (off_t)(w->committed + done));
      if (wr < 0) {
        ok = fail_errno(err, "writing", path);
        if (ftruncate(fd, (off_t)w->committed) != 0) { /* reported: the write failed */ }
      } else {
        done += (size_t)wr;
      }
    }
    if (fd >= 0) close(fd);
    if (ok) {
      w->committed += b.len;
      w->next_seq += n - skip;
    }
    free(b.p);
  }
  free(path);
  *ret = w->next_seq;
  return ok;
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_append(writer_t *w, frames_arg_t *frames, uint64_t *ret,
                                                                     err_t *err) {
  bool ok = writer_append(w, frames->ptr, frames->len, ret, err);
  exports_tapedeck_storage_tape_storage_list_frame_free(frames);
  return ok;
}

static bool same_summary(const summary_t *a, const summary_t *b) {
  return a->frame_count == b->frame_count && a->byte_count == b->byte_count && a->ended_at == b->ended_at &&
         a->digest.is_some == b->digest.is_some && (!a->digest.is_some || str_eq(&a->digest.val, &b->digest.val)) &&
         a->seal.is_some == b->seal.is_some &&
         (!a->seal.is_some || str_eq((const str_t *)&a->seal.val, (const str_t *)&b->seal.val));
}

static const uint8_t END_STATE[] = {
    [TAPEDECK_STORAGE_TYPES_END_REASON_COMPLETED] = TAPEDECK_STORAGE_TYPES_TAPE_STATE_FINISHED,
    [TAPEDECK_STORAGE_TYPES_END_REASON_CRASHED] = TAPEDECK_STORAGE_TYPES_TAPE_STATE_CRASHED,
    [TAPEDECK_STORAGE_TYPES_END_REASON_ABORTED] = TAPEDECK_STORAGE_TYPES_TAPE_STATE_ABORTED,
};

static bool writer_finish(writer_t *w, const summary_t *s, uint8_t reason, info_t *ret, err_t *err) {
  uint8_t state = END_STATE[reason];
  tape_t t;
  if (!current(w, &t, err)) return false;
  if (t.ended) {
    bool same = t.state == state && t.has_summary && same_summary(&t.summary, s);
    tape_free(&t);
    if (!same) return fail(err, E_INVALID, "tape `%s` is %s already, with another summary", w->id, STATE_NAMES[t.state & 3]);
    return get_info(w->id, ret, err);
  }
  tape_free(&t);
  frames_t f;
  if (!scan_frames(w->id, &f, err)) return false;
  bool ok = check_summary(s, f.count, payload_bytes(&f), err);
  frames_free(&f);
  if (!ok) return false;
  char *path = path_of(w->id, "frames");
  int fd = open(path, O_RDWR);
  ok = (fd >= 0 && fsync(fd) == 0) || fail_errno(err, "syncing", path);
  if (fd >= 0) close(fd);
  free(path);
  if (!ok) return false;
  buf_t b = {0};
  encode_end(&b, state, s);
  path = path_of(w->id, "end");
  ok = write_atomic(path, &b, err);
  free(path);
  free(b.p);
  return ok && get_info(w->id, ret, err);
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_finish(writer_t *w, summary_t *summary,
                                                                     uint8_t reason, info_t *ret, err_t *err) {
  bool ok = writer_finish(w, summary, reason, ret, err);
  tapedeck_storage_types_tape_summary_free(summary);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_abort(writer_t *w, str_t *reason, err_t *err) {
  provider_string_free(reason);
  tape_t t;
  if (!current(w, &t, err)) return false;
  bool ended = t.ended;
  tape_free(&t);
  if (ended) return true; /* idempotent; a tape that ended stays as it is */
  buf_t b = {0};
  encode_end(&b, TAPEDECK_STORAGE_TYPES_TAPE_STATE_ABORTED, NULL);
  char *path = path_of(w->id, "end");
  bool ok = write_atomic(path, &b, err);
  free(path);
  free(b.p);
  return ok;
}

/* ---- the interface ------------------------------------------------------------ */

static bool ready;

static bool not_ready(err_t *err) {
  return fail(err, E_INTERNAL, "called before a successful init");
}

/* The config: a JSON object whose only setting is "root", a string. */
static bool parse_config(const str_t *config, err_t *err) {
  const char *p = (const char *)config->ptr, *end = p + config->len;
#define SKIP_WS() while (p < end && isspace((unsigned char)*p)) p++
  SKIP_WS();
  if (p == end || *p++ != '{') return fail(err, E_INVALID, "config must be a JSON object");
  for (bool first = true;; first = false) {
    SKIP_WS();
    if (p < end && *p == '}') break;
    if (!first) {
      if (p == end || *p++ != ',') return fail(err, E_INVALID, "config is not valid JSON");
      SKIP_WS();
    }
    if (p == end || *p++ != '"') return fail(err, E_INVALID, "config is not valid JSON");
    const char *key = p;
    while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
    if (p >= end) return fail(err, E_INVALID, "config is not valid JSON");
    size_t key_len = (size_t)(p++ - key);
    if (key_len != 4 || memcmp(key, "root", 4) != 0) {
      return fail(err, E_INVALID, "unknown config setting `%.*s` (this provider knows `root`)", (int)key_len, key);
    }
    SKIP_WS();
    if (p == end || *p++ != ':') return fail(err, E_INVALID, "config is not valid JSON");
    SKIP_WS();
    if (p == end || *p++ != '"') return fail(err, E_INVALID, "config `root` must be a string");
    buf_t v = {0};
    while (p < end && *p != '"') {
      if (*p == '\\') {
        if (++p == end || !strchr("\"\\/", *p)) {
          free(v.p);
          return fail(err, E_INVALID, "config `root`: only \\\" \\\\ and \\/ escapes are supported");
        }
      }
      put(&v, p++, 1);
    }
    if (p++ >= end) return free(v.p), fail(err, E_INVALID, "config is not valid JSON");
    put_u8(&v, 0);
    free(root);
    root = (char *)v.p;
  }
#undef SKIP_WS
  if (!root) root = strdup("/tapes");
  return true;
}

bool exports_tapedeck_storage_tape_storage_init(str_t *config, tapedeck_storage_types_provider_info_t *ret,
                                                err_t *err) {
  free(root);
  root = NULL;
  bool ok = parse_config(config, err);
  provider_string_free(config);
  if (ok && mkdir(root, 0755) != 0 && errno != EEXIST) ok = fail_errno(err, "creating", root);
  if (!ok) return false;
  ready = true;
  provider_string_dup(&ret->name, NAME);
  provider_string_dup(&ret->version, VERSION);
  ret->capabilities = TAPEDECK_STORAGE_TYPES_CAPABILITIES_DELETE | TAPEDECK_STORAGE_TYPES_CAPABILITIES_SEARCH |
                      TAPEDECK_STORAGE_TYPES_CAPABILITIES_TEXT_SEARCH;
  return true;
}

bool exports_tapedeck_storage_tape_storage_create(header_t *header, own_writer_t *ret, err_t *err) {
  char *id = ready ? check_id(&header->id, err) : (not_ready(err), NULL);
  bool ok = id != NULL;
  if (ok) {
    buf_t files[2] = {{0}, {0}};
    const char *names[2] = {"header", "frames"};
    encode_header(&files[0], now_ns(), header);
    ok = publish(id, names, files, 2, err);
    free(files[0].p);
    if (ok) *ret = new_writer(id, 0, 0);
  }
  free(id);
  tapedeck_storage_types_tape_header_free(header);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_resume(str_t *id_arg, own_writer_t *ret, err_t *err) {
  char *id = ready ? check_id(id_arg, err) : (not_ready(err), NULL);
  provider_string_free(id_arg);
  tape_t t;
  bool ok = id && load(id, &t, err);
  if (ok) {
    if (t.ended) ok = fail(err, E_INVALID, "tape `%s` is %s, not recording", id, STATE_NAMES[t.state & 3]);
    tape_free(&t);
  }
  frames_t f;
  if (ok && (ok = scan_frames(id, &f, err))) {
    if (f.committed < f.file.len) { /* cut off a torn append */
      char *path = path_of(id, "frames");
      ok = truncate(path, (off_t)f.committed) == 0 || fail_errno(err, "truncating", path);
      free(path);
    }
    if (ok) *ret = new_writer(id, f.count, f.committed);
    frames_free(&f);
  }
  free(id);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_save(header_t *header, frames_arg_t *frames,
                                                summary_t *summary, uint8_t reason, info_t *ret, err_t *err) {
  char *id = ready ? check_id(&header->id, err) : (not_ready(err), NULL);
  bool ok = id && check_consecutive(frames->ptr, frames->len, 0, err);
  if (ok) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < frames->len; i++) bytes += frames->ptr[i].payload.len;
    ok = check_summary(summary, frames->len, bytes, err);
  }
  if (ok) {
    buf_t files[3] = {{0}, {0}, {0}};
    const char *names[3] = {"header", "frames", "end"};
    encode_header(&files[0], now_ns(), header);
    encode_frames(&files[1], frames->ptr, frames->len);
    encode_end(&files[2], END_STATE[reason], summary);
    ok = publish(id, names, files, 3, err) && get_info(id, ret, err);
    for (int i = 0; i < 3; i++) free(files[i].p);
  }
  free(id);
  tapedeck_storage_types_tape_header_free(header);
  exports_tapedeck_storage_tape_storage_list_frame_free(frames);
  tapedeck_storage_types_tape_summary_free(summary);
  return ok;
}

void exports_tapedeck_storage_tape_storage_append_many(
    exports_tapedeck_storage_tape_storage_list_tape_append_t *appends,
    exports_tapedeck_storage_tape_storage_list_result_u64_storage_error_t *ret) {
  ret->len = appends->len;
  ret->ptr = xmalloc(appends->len * sizeof *ret->ptr);
  for (size_t i = 0; i < appends->len; i++) {
    /* Each entry: what resume then append would do; one failing changes
     * nothing for the others. */
    const tapedeck_storage_types_tape_append_t *a = &appends->ptr[i];
    err_t *err = &ret->ptr[i].val.err;
    bool ok = ready || not_ready(err);
    for (size_t j = 0; ok && j < i; j++) {
      if (str_eq(&appends->ptr[j].id, &a->id)) {
        ok = fail(err, E_INVALID, "tape `%.*s` appears more than once in one append-many", (int)a->id.len,
                  (const char *)a->id.ptr);
      }
    }
    char *id = ok ? check_id(&a->id, err) : NULL;
    tape_t t;
    ok = id && load(id, &t, err);
    if (ok) {
      tape_free(&t);
      frames_t f;
      ok = scan_frames(id, &f, err);
      if (ok) {
        writer_t w = {id, f.count, f.committed};
        frames_free(&f);
        ok = writer_append(&w, a->frames.ptr, a->frames.len, &ret->ptr[i].val.ok, err);
      }
    }
    free(id);
    ret->ptr[i].is_err = !ok;
  }
  exports_tapedeck_storage_tape_storage_list_tape_append_free(appends);
}

bool exports_tapedeck_storage_tape_storage_get(str_t *id_arg, info_t *ret, err_t *err) {
  char *id = ready ? check_id(id_arg, err) : (not_ready(err), NULL);
  provider_string_free(id_arg);
  bool ok = id && get_info(id, ret, err);
  free(id);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_read_frames(str_t *id_arg, uint64_t from_seq, uint32_t max_frames,
                                                       uint64_t max_bytes, frames_arg_t *ret, err_t *err) {
  char *id = ready ? check_id(id_arg, err) : (not_ready(err), NULL);
  provider_string_free(id_arg);
  bool ok = id != NULL;
  if (ok && max_frames == 0) ok = fail(err, E_INVALID, "max-frames must be at least 1");
  tape_t t;
  bool loaded = ok && load(id, &t, err);
  ok = loaded;
  frames_t f;
  if (ok && (ok = scan_frames(id, &f, err))) {
    uint64_t count = f.count;
    if (t.has_summary && t.summary.frame_count < count) count = t.summary.frame_count;
    *ret = (frames_arg_t){0};
    size_t want = from_seq < count ? (size_t)(count - from_seq) : 0;
    if (want > max_frames) want = max_frames;
    ret->ptr = xmalloc(want * sizeof(frame_t));
    uint64_t bytes = 0;
    while (ok && ret->len < want) {
      frame_t *fr = &ret->ptr[ret->len];
      ok = decode_frame(&f, (size_t)(from_seq + ret->len), fr) ||
           fail(err, E_IO, "the frames of tape `%s` are damaged", id);
      ret->len++;
      bytes += fr->payload.len;
      if (bytes >= max_bytes) break;
    }
    if (!ok) exports_tapedeck_storage_tape_storage_list_frame_free(ret);
    frames_free(&f);
  }
  if (loaded) tape_free(&t);
  free(id);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_delete(str_t *id_arg, err_t *err) {
  char *id = ready ? check_id(id_arg, err) : (not_ready(err), NULL);
  provider_string_free(id_arg);
  tape_t t;
  bool ok = id && load(id, &t, err);
  if (ok) {
    tape_free(&t);
    char *dir = path_of(id, NULL), *gone = scratch_name("deleted");
    /* Renamed away first: the tape vanishes at once, even if removing its
     * files is interrupted. */
    ok = rename(dir, gone) == 0 || fail_errno(err, "renaming", dir);
    if (ok) remove_tree(gone);
    free(dir);
    free(gone);
  }
  free(id);
  return ok;
}

static bool filter_matches(const filter_t *f, const info_t *i) {
  const header_t *h = &i->header;
  if (f->session_id.is_some && !str_eq(&f->session_id.val, &h->session_id)) return false;
  if (f->name_contains.is_some) {
    /* Case-insensitive for ASCII letters. */
    const str_t *n = &f->name_contains.val;
    bool found = n->len == 0;
    for (size_t at = 0; !found && at + n->len <= h->name.len; at++) {
      found = strncasecmp((const char *)h->name.ptr + at, (const char *)n->ptr, n->len) == 0;
    }
    if (!found) return false;
  }
  for (size_t t = 0; t < f->tags.len; t++) {
    bool found = false;
    for (size_t u = 0; !found && u < h->tags.len; u++) {
      found = str_eq(&f->tags.ptr[t].f0, &h->tags.ptr[u].f0) && str_eq(&f->tags.ptr[t].f1, &h->tags.ptr[u].f1);
    }
    if (!found) return false;
  }
  if (f->created_since.is_some && h->created_at < f->created_since.val) return false;
  if (f->created_until.is_some && h->created_at >= f->created_until.val) return false;
  if (f->state.is_some && i->state != f->state.val) return false;
  return true;
}

/* The search conditions on frames: every term among the terms of some
 * frame, and the text (if any) in some payload. */
static bool frames_match(const char *id, uint64_t frame_count, const tapedeck_storage_types_search_query_t *q,
                         err_t *err, bool *match) {
  frames_t f;
  if (!scan_frames(id, &f, err)) return false;
  bool *seen = calloc(q->terms.len + 1, 1);
  size_t missing = q->terms.len;
  bool text = !q->text.is_some || q->text.val.len == 0;
  bool ok = true;
  for (size_t i = 0; ok && i < f.count && i < frame_count && (missing || !text); i++) {
    frame_t fr = {0};
    ok = decode_frame(&f, i, &fr) || fail(err, E_IO, "the frames of tape `%s` are damaged", id);
    for (size_t t = 0; t < q->terms.len; t++) {
      for (size_t u = 0; !seen[t] && u < fr.terms.len; u++) {
        if (str_eq(&q->terms.ptr[t], &fr.terms.ptr[u])) seen[t] = true, missing--;
      }
    }
    if (!text) text = memmem(fr.payload.ptr, fr.payload.len, q->text.val.ptr, q->text.val.len) != NULL;
    tapedeck_storage_types_frame_free(&fr);
  }
  *match = missing == 0 && text;
  free(seen);
  frames_free(&f);
  return ok;
}

typedef struct {
  uint64_t created_at;
  char *id;
} key_t;

/* (created-at, id) descending: newest first. */
static int newest_first(const void *a, const void *b) {
  const key_t *x = a, *y = b;
  if (x->created_at != y->created_at) return x->created_at > y->created_at ? -1 : 1;
  return -strcmp(x->id, y->id);
}

/* One page of the tapes matching `filter` (and `query`, for search), newest
 * first. The cursor is `v1.<stamp>.<created-at>.<id>`: the first page's time
 * (tapes stored later never appear on the next pages) and the last tape. */
static bool page(const filter_t *filter, const tapedeck_storage_types_search_query_t *query, const str_t *cursor,
                 uint32_t limit, page_t *ret, err_t *err) {
  if (limit < 1 || limit > 1000) return fail(err, E_INVALID, "limit %u is not within 1..=1000", limit);
  uint64_t snapshot = now_ns();
  key_t after = {0};
  if (cursor) {
    char *c = strndup((const char *)cursor->ptr, cursor->len);
    unsigned long long s, t;
    int used = 0;
    bool good = sscanf(c, "v1.%llu.%llu.%n", &s, &t, &used) == 2 && used > 0 &&
                valid_id((const uint8_t *)c + used, strlen(c + used));
    if (!good) {
      fail(err, E_INVALID, "cursor \"%.80s\" was not issued by this provider", c);
      free(c);
      return false;
    }
    snapshot = s;
    after.created_at = t;
    after.id = strdup(c + used);
    free(c);
  }
  DIR *d = opendir(root);
  if (!d) return free(after.id), fail_errno(err, "listing", root);
  key_t *keys = NULL;
  size_t n = 0, cap = 0;
  bool ok = true;
  struct dirent *e;
  while (ok && (e = readdir(d))) {
    if (e->d_name[0] == '.' || !valid_id((const uint8_t *)e->d_name, strlen(e->d_name))) continue;
    tape_t t;
    err_t ignored = {0};
    if (!load(e->d_name, &t, &ignored)) { /* deleted meanwhile */
      free(ignored.val.io.ptr);
      continue;
    }
    key_t k = {t.header.created_at, strdup(e->d_name)};
    if (t.stamp <= snapshot && (!cursor || newest_first(&k, &after) > 0)) {
      if (n == cap) keys = realloc(keys, (cap = cap * 2 + 64) * sizeof *keys);
      if (!keys) abort();
      keys[n++] = k;
    } else {
      free(k.id);
    }
    tape_free(&t);
  }
  closedir(d);
  qsort(keys, n, sizeof *keys, newest_first);
  *ret = (page_t){0};
  ret->tapes.ptr = xmalloc((limit < n ? limit : n) * sizeof(info_t));
  for (size_t i = 0; ok && i < n; i++) {
    info_t info;
    err_t gone = {0};
    if (!get_info(keys[i].id, &info, &gone)) { /* deleted meanwhile */
      free(gone.val.io.ptr);
      continue;
    }
    bool match = filter_matches(filter, &info);
    if (match && query) ok = frames_match(keys[i].id, info.frame_count, query, err, &match);
    if (ok && match && ret->tapes.len == limit) {
      const header_t *last = &ret->tapes.ptr[limit - 1].header;
      char *c;
      int len = asprintf(&c, "v1.%llu.%llu.%.*s", (unsigned long long)snapshot, (unsigned long long)last->created_at,
                         (int)last->id.len, (const char *)last->id.ptr);
      if (len < 0) abort();
      ret->next_cursor.is_some = true;
      ret->next_cursor.val.ptr = (uint8_t *)c;
      ret->next_cursor.val.len = (size_t)len;
      tapedeck_storage_types_tape_info_free(&info);
      break;
    }
    if (ok && match) {
      ret->tapes.ptr[ret->tapes.len++] = info;
    } else {
      tapedeck_storage_types_tape_info_free(&info);
    }
  }
  for (size_t i = 0; i < n; i++) free(keys[i].id);
  free(keys);
  free(after.id);
  if (!ok) tapedeck_storage_types_tape_page_free(ret);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_list(filter_t *filter, str_t *cursor, uint32_t limit, page_t *ret,
                                                err_t *err) {
  bool ok = (ready || not_ready(err)) && page(filter, NULL, cursor, limit, ret, err);
  tapedeck_storage_types_tape_filter_free(filter);
  if (cursor) provider_string_free(cursor);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_search(tapedeck_storage_types_search_query_t *query, str_t *cursor,
                                                  uint32_t limit, page_t *ret, err_t *err) {
  bool ok = (ready || not_ready(err)) && page(&query->filter, query, cursor, limit, ret, err);
  tapedeck_storage_types_search_query_free(query);
  if (cursor) provider_string_free(cursor);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_stats(tapedeck_storage_types_storage_stats_t *ret, err_t *err) {
  if (!ready) return not_ready(err);
  *ret = (tapedeck_storage_types_storage_stats_t){0};
  DIR *d = opendir(root);
  if (!d) return fail_errno(err, "listing", root);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !valid_id((const uint8_t *)e->d_name, strlen(e->d_name))) continue;
    info_t info;
    err_t gone = {0};
    if (!get_info(e->d_name, &info, &gone)) { /* deleted meanwhile */
      free(gone.val.io.ptr);
      continue;
    }
    ret->tape_count++;
    ret->recording_count += info.state == TAPEDECK_STORAGE_TYPES_TAPE_STATE_RECORDING;
    ret->frame_count += info.frame_count;
    ret->byte_count += info.byte_count;
    tapedeck_storage_types_tape_info_free(&info);
    static const char *files[] = {"header", "frames", "end"};
    for (int i = 0; i < 3; i++) {
      char *p = path_of(e->d_name, files[i]);
      struct stat st;
      if (stat(p, &st) == 0) ret->stored_bytes += (uint64_t)st.st_size;
      free(p);
    }
  }
  closedir(d);
  return true;
}
