/* The storage logic: the same design as tapedeck's Rust, Python and
 * JavaScript templates.
 *
 *   <root>/tapes/<id>/header.json   the header and a creation stamp, written once
 *   <root>/tapes/<id>/frames        append-only frame records
 *   <root>/tapes/<id>/terms         the tape's index terms, one JSON line each
 *   <root>/tapes/<id>/seek          (seq, offset) of every 1024th frame, 16 bytes each
 *   <root>/tapes/<id>/end.json      how the tape ended, written once, atomically
 *   <root>/trash/                   tapes being created, saved or deleted
 *
 * A frame record is a 28-byte header (u32 body length, u32 CRC-32 of the
 * rest, u64 seq, u64 timestamp, u8 direction, u8 flags, 2 bytes padding,
 * little endian) and the body. Flag bit 0 is `not-json`; without flag bit 1
 * the body is the payload, with it the body is the payload's length (u32),
 * the payload, and the frame's terms and attributes (a u32 count, then each
 * string as a u32 length and its bytes; an attribute is two strings). A
 * frame without terms and attributes is written the first way, which is
 * also how the previous format wrote every frame. A torn record at the end
 * is ignored by readers and cut off by `resume`.
 *
 * The provider never parses a payload: search matches the host's terms,
 * kept per tape in `terms` (a tape has a term when any of its frames
 * does), one `["<term>",<seq of its first frame>]` per line, written before
 * the frames and counted only once they are stored. Tapes of the previous format have a `methods` file instead (the
 * JSON-RPC methods it found itself); its lines count as terms `method:<m>`.
 * The header's envelope and the summary's seal are kept, as hex, in
 * header.json and end.json. Creation and `save` build the directory
 * in trash/ and rename it into place (a rename never replaces a non-empty
 * directory, so one of two racing instances wins); the end is an atomic
 * rename of end.json; deletion a rename into trash/. Every fact is in a
 * file, so every instance sees what any other acknowledged. */
#ifndef TAPESTORE_STORE_H
#define TAPESTORE_STORE_H

#include "util.h"

typedef tapedeck_storage_types_tape_header_t header_t;
typedef tapedeck_storage_types_tape_info_t info_t;
typedef tapedeck_storage_types_frame_t frame_t;
typedef tapedeck_storage_types_tape_summary_t summary_t;
typedef tapedeck_storage_types_tape_filter_t filter_t;
typedef tapedeck_storage_types_tape_page_t page_t;
typedef tapedeck_storage_types_storage_stats_t stats_t;
typedef tapedeck_storage_types_tape_append_t append_t;
typedef exports_tapedeck_storage_tape_storage_result_u64_storage_error_t append_result_t;

/* The contract's id rule; `invalid-input` naming the id otherwise. */
bool check_id(const provider_string_t *id, err_t *err);

/* Opens the store the JSON object `config` names ({"root": "/tapes",
 * "fsync": true}), creating its folders. */
bool store_open(const provider_string_t *config, err_t *err);

/* An open recording: where its frame file ends. */
typedef struct writer writer_t;

bool store_create(const header_t *h, writer_t **out, err_t *err);
bool store_resume(const char *id, writer_t **out, err_t *err);
bool store_save(const header_t *h, const frame_t *frames, size_t n, const summary_t *s,
                uint8_t reason, info_t *out, err_t *err);
bool store_info(const char *id, info_t *out, err_t *err);
/* Frames from `from` on, bounded by count and bytes; payloads malloc'ed. */
bool store_read(const char *id, uint64_t from, uint32_t max_frames, uint64_t max_bytes,
                frame_t **out, size_t *n, err_t *err);
bool store_delete(const char *id, err_t *err);
/* For each of the `n` entries, what `resume` then `append` would do, into
 * `out[i]`; an id seen earlier in the same call is `invalid-input`. */
void store_append_many(const append_t *appends, size_t n, append_result_t *out);

/* One page of the tapes `match` accepts, newest first, stable across pages. */
typedef bool (*match_fn)(const info_t *info, void *ctx);
bool store_page(match_fn match, void *ctx, const provider_string_t *cursor, uint32_t limit,
                page_t *out, err_t *err);
/* Does `filter` accept `info`? */
bool filter_matches(const filter_t *filter, const info_t *info);
/* Is every one of `terms` in the term index of the tape, which has `count`
 * frames (exact equality)? */
bool store_has_terms(const char *id, uint64_t count, const provider_list_string_t *terms);
/* Does any payload of the tape contain `needle`? */
bool store_contains_text(const char *id, const provider_string_t *needle);
bool store_stats(stats_t *out, err_t *err);

uint64_t writer_next_seq(const writer_t *w);
bool writer_append(writer_t *w, const frame_t *frames, size_t n, uint64_t *next, err_t *err);
bool writer_finish(writer_t *w, const summary_t *s, uint8_t reason, info_t *out, err_t *err);
bool writer_abort(writer_t *w, err_t *err);
void writer_free(writer_t *w);

#endif
