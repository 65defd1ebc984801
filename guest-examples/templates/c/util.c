#include "util.h"

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

static char *vxprintf(const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) n = 0;
  char *s = xmalloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

static bool set_error(err_t *err, uint8_t tag, char *msg) {
  err->tag = tag;
  /* Every case of the variant carries a string at the same place. */
  err->val.io.ptr = (uint8_t *)msg;
  err->val.io.len = strlen(msg);
  return false;
}

bool fail(err_t *err, uint8_t tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = vxprintf(fmt, ap);
  va_end(ap);
  return set_error(err, tag, msg);
}

bool fail_errno(err_t *err, const char *fmt, ...) {
  const char *why = strerror(errno);
  va_list ap;
  va_start(ap, fmt);
  char *what = vxprintf(fmt, ap);
  va_end(ap);
  char *msg = xprintf("%s: %s", what, why);
  free(what);
  return set_error(err, E_IO, msg);
}

void err_clear(err_t *err) {
  free(err->val.io.ptr);
  err->val.io.ptr = NULL;
  err->val.io.len = 0;
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) abort();
  return p;
}

char *xstrndup(const char *s, size_t n) {
  char *d = xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

char *xprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vxprintf(fmt, ap);
  va_end(ap);
  return s;
}

void buf_put(buf_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    b->ptr = xrealloc(b->ptr, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->ptr + b->len, p, n);
  b->len += n;
}

void buf_byte(buf_t *b, uint8_t c) { buf_put(b, &c, 1); }

void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

void buf_u32le(buf_t *b, uint32_t v) {
  uint8_t x[4];
  set_u32le(x, v);
  buf_put(b, x, 4);
}

void buf_u64le(buf_t *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  buf_put(b, x, 8);
}

void buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vxprintf(fmt, ap);
  va_end(ap);
  buf_str(b, s);
  free(s);
}

void buf_free(buf_t *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

uint32_t get_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t get_u64le(const uint8_t *p) {
  return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

void set_u32le(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t crc32(const uint8_t *p, size_t n) {
  static uint32_t table[256];
  static bool ready;
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint64_t now_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

char *unique_name(void) {
  uint64_t random = 0;
  if (getentropy(&random, sizeof random) != 0) random = (uint64_t)(uintptr_t)&random;
  return xprintf("%llu-%016llx", (unsigned long long)now_ns(), (unsigned long long)random);
}

int read_file(const char *path, buf_t *out) {
  memset(out, 0, sizeof *out);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  for (;;) {
    if (out->cap - out->len < 4096) {
      out->cap = out->cap ? out->cap * 2 : 4096;
      out->ptr = xrealloc(out->ptr, out->cap);
    }
    ssize_t n = read(fd, out->ptr + out->len, out->cap - out->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      buf_free(out);
      errno = e;
      return -1;
    }
    if (n == 0) break;
    out->len += (size_t)n;
  }
  close(fd);
  return 1;
}

long pread_full(int fd, uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = pread(fd, p + done, n - done, (off_t)(off + done));
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (k == 0) break;
    done += (size_t)k;
  }
  return (long)done;
}

bool pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = pwrite(fd, p + done, n - done, (off_t)(off + done));
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += (size_t)k;
  }
  return true;
}

static bool write_fd(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += k;
    n -= (size_t)k;
  }
  return true;
}

bool write_new_file(const char *path, const uint8_t *p, size_t n, bool fsync) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  bool ok = write_fd(fd, p, n) && (!fsync || fdatasync(fd) == 0);
  int e = errno;
  close(fd);
  errno = e;
  return ok;
}

bool write_atomic(const char *path, const uint8_t *p, size_t n, bool fsync) {
  char *name = unique_name();
  char *tmp = xprintf("%s.tmp-%s", path, name);
  free(name);
  bool ok = write_new_file(tmp, p, n, fsync) && rename(tmp, path) == 0;
  if (!ok) {
    int e = errno;
    unlink(tmp);
    errno = e;
  }
  free(tmp);
  return ok;
}

bool append_file(const char *path, const uint8_t *p, size_t n) {
  if (n == 0) return true;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return false;
  bool ok = write_fd(fd, p, n);
  int e = errno;
  close(fd);
  errno = e;
  return ok;
}

bool mkdir_all(const char *path) {
  char *p = xstrndup(path, strlen(path));
  bool ok = true;
  for (char *s = p + 1; ok; s++) {
    if (*s == '/' || *s == 0) {
      char c = *s;
      *s = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST) ok = false;
      *s = c;
      if (c == 0) break;
    }
  }
  free(p);
  return ok;
}

void remove_tree(const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    unlink(path);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *child = xprintf("%s/%s", path, e->d_name);
    if (e->d_type == DT_DIR)
      remove_tree(child);
    else
      unlink(child);
    free(child);
  }
  closedir(d);
  rmdir(path);
}
