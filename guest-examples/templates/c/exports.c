/* The exports of the `provider` world: each takes ownership of its
 * arguments (and frees them), calls the store, and hands back results
 * whose memory the generated post-return code frees. */
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define NAME "c"
#define VERSION "0.2.0"

typedef exports_tapedeck_storage_tape_storage_own_tape_writer_t own_writer_t;

/* The `tape-writer` resource's representation. */
struct exports_tapedeck_storage_tape_storage_tape_writer_t {
  writer_t *w;
};

static bool ready;

/* Every call but `init` needs the store open (the host calls `init` first):
 * `(ready || not_ready(err)) && ...`. */
static bool not_ready(err_t *err) {
  return fail(err, TAPEDECK_STORAGE_TYPES_STORAGE_ERROR_INTERNAL,
              "the provider was called before init");
}

/* An id argument, checked, as a C string; frees the argument. */
static char *take_id(provider_string_t *id, err_t *err) {
  char *s = check_id(id, err) ? strndup((const char *)id->ptr, id->len) : NULL;
  provider_string_free(id);
  return s;
}

bool exports_tapedeck_storage_tape_storage_init(provider_string_t *config,
                                                tapedeck_storage_types_provider_info_t *ret,
                                                err_t *err) {
  ready = store_open(config, err);
  provider_string_free(config);
  if (!ready) return false;
  provider_string_dup(&ret->name, NAME);
  provider_string_dup(&ret->version, VERSION);
  ret->capabilities = TAPEDECK_STORAGE_TYPES_CAPABILITIES_DELETE |
                      TAPEDECK_STORAGE_TYPES_CAPABILITIES_SEARCH |
                      TAPEDECK_STORAGE_TYPES_CAPABILITIES_TEXT_SEARCH;
  return true;
}

static own_writer_t new_resource(writer_t *w) {
  exports_tapedeck_storage_tape_storage_tape_writer_t *rep = malloc(sizeof *rep);
  if (!rep) abort();
  rep->w = w;
  return exports_tapedeck_storage_tape_storage_tape_writer_new(rep);
}

void exports_tapedeck_storage_tape_storage_tape_writer_destructor(
    exports_tapedeck_storage_tape_storage_tape_writer_t *rep) {
  writer_free(rep->w);
  free(rep);
}

uint64_t exports_tapedeck_storage_tape_storage_method_tape_writer_next_seq(
    exports_tapedeck_storage_tape_storage_borrow_tape_writer_t self) {
  return writer_next_seq(self->w);
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_append(
    exports_tapedeck_storage_tape_storage_borrow_tape_writer_t self,
    exports_tapedeck_storage_tape_storage_list_frame_t *frames, uint64_t *ret, err_t *err) {
  bool ok = writer_append(self->w, frames->ptr, frames->len, ret, err);
  exports_tapedeck_storage_tape_storage_list_frame_free(frames);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_finish(
    exports_tapedeck_storage_tape_storage_borrow_tape_writer_t self, summary_t *summary,
    uint8_t reason, info_t *ret, err_t *err) {
  bool ok = writer_finish(self->w, summary, reason, ret, err);
  tapedeck_storage_types_tape_summary_free(summary);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_method_tape_writer_abort(
    exports_tapedeck_storage_tape_storage_borrow_tape_writer_t self, provider_string_t *reason,
    err_t *err) {
  provider_string_free(reason);
  return writer_abort(self->w, err);
}

bool exports_tapedeck_storage_tape_storage_create(header_t *header, own_writer_t *ret,
                                                  err_t *err) {
  writer_t *w = NULL;
  bool ok = (ready || not_ready(err)) && store_create(header, &w, err);
  tapedeck_storage_types_tape_header_free(header);
  if (ok) *ret = new_resource(w);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_resume(provider_string_t *id, own_writer_t *ret,
                                                  err_t *err) {
  char *tape = take_id(id, err);
  writer_t *w = NULL;
  bool ok = tape && (ready || not_ready(err)) &&
            store_resume(tape, &w, err);
  free(tape);
  if (ok) *ret = new_resource(w);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_save(
    header_t *header, exports_tapedeck_storage_tape_storage_list_frame_t *frames,
    summary_t *summary, uint8_t reason, info_t *ret, err_t *err) {
  bool ok = (ready || not_ready(err)) && store_save(header, frames->ptr, frames->len, summary, reason, ret, err);
  tapedeck_storage_types_tape_header_free(header);
  exports_tapedeck_storage_tape_storage_list_frame_free(frames);
  tapedeck_storage_types_tape_summary_free(summary);
  return ok;
}

void exports_tapedeck_storage_tape_storage_append_many(
    exports_tapedeck_storage_tape_storage_list_tape_append_t *appends,
    exports_tapedeck_storage_tape_storage_list_result_u64_storage_error_t *ret) {
  ret->len = appends->len;
  ret->ptr = appends->len ? xmalloc(appends->len * sizeof *ret->ptr) : NULL;
  if (ready) {
    store_append_many(appends->ptr, appends->len, ret->ptr);
  } else {
    for (size_t i = 0; i < ret->len; i++) {
      not_ready(&ret->ptr[i].val.err);
      ret->ptr[i].is_err = true;
    }
  }
  exports_tapedeck_storage_tape_storage_list_tape_append_free(appends);
}

bool exports_tapedeck_storage_tape_storage_get(provider_string_t *id, info_t *ret, err_t *err) {
  char *tape = take_id(id, err);
  if (!tape) return false;
  bool ok = (ready || not_ready(err)) && store_info(tape, ret, err);
  free(tape);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_read_frames(
    provider_string_t *id, uint64_t from_seq, uint32_t max_frames, uint64_t max_bytes,
    exports_tapedeck_storage_tape_storage_list_frame_t *ret, err_t *err) {
  char *tape = take_id(id, err);
  if (!tape) return false;
  bool ok = (ready || not_ready(err)) && store_read(tape, from_seq, max_frames, max_bytes, &ret->ptr, &ret->len, err);
  free(tape);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_delete(provider_string_t *id, err_t *err) {
  char *tape = take_id(id, err);
  if (!tape) return false;
  bool ok = (ready || not_ready(err)) && store_delete(tape, err);
  free(tape);
  return ok;
}

static bool match_filter(const info_t *info, void *filter) {
  return filter_matches(filter, info);
}

bool exports_tapedeck_storage_tape_storage_list(filter_t *filter, provider_string_t *cursor,
                                                uint32_t limit, page_t *ret, err_t *err) {
  bool ok = (ready || not_ready(err)) && store_page(match_filter, filter, cursor, limit, ret, err);
  tapedeck_storage_types_tape_filter_free(filter);
  if (cursor) provider_string_free(cursor);
  return ok;
}

static bool match_query(const info_t *info, void *ctx) {
  const tapedeck_storage_types_search_query_t *q = ctx;
  char *id = strndup((const char *)info->header.id.ptr, info->header.id.len);
  bool ok = filter_matches(&q->filter, info) &&
            store_has_terms(id, info->frame_count, &q->terms) &&
            (!q->text.is_some || store_contains_text(id, &q->text.val));
  free(id);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_search(
    tapedeck_storage_types_search_query_t *query, provider_string_t *cursor, uint32_t limit,
    page_t *ret, err_t *err) {
  bool ok = (ready || not_ready(err)) && store_page(match_query, query, cursor, limit, ret, err);
  tapedeck_storage_types_search_query_free(query);
  if (cursor) provider_string_free(cursor);
  return ok;
}

bool exports_tapedeck_storage_tape_storage_stats(stats_t *ret, err_t *err) {
  return (ready || not_ready(err)) && store_stats(ret, err);
}
