"""tapedeck's Python storage provider: the `tape-storage` export.

The storage logic is `tapestore` (plain Python); this module and
`tape_storage` (the `tape-writer` resource, in the module named after its
interface as componentize-py expects) only convert types and errors.
"""

from wit_world import exports
from wit_world.imports import types

import convert
import tapestore
import tape_storage

NAME = "python"
VERSION = "0.2.0"

_store = None


def store():
    if _store is None:
        raise tapestore.StoreError(tapestore.INVALID_INPUT, "init was not called")
    return _store


class TapeStorage(exports.TapeStorage):
    def init(self, config):
        def go():
            global _store
            _store = tapestore.Store(config)
            caps = (types.Capabilities.DELETE | types.Capabilities.SEARCH
                    | types.Capabilities.TEXT_SEARCH)
            return types.ProviderInfo(NAME, VERSION, caps)

        return convert.guarded(go)

    def create(self, header):
        return convert.guarded(
            lambda: tape_storage.TapeWriter(store().create(convert.header_in(header))))

    def resume(self, id):
        return convert.guarded(lambda: tape_storage.TapeWriter(store().resume(id)))

    def save(self, header, frames, summary, reason):
        return convert.guarded(lambda: convert.info_out(store().save(
            convert.header_in(header), [convert.frame_in(f) for f in frames],
            convert.summary_in(summary), convert.REASONS[reason])))

    def append_many(self, appends):
        # No `guarded`: every entry has its own result, and one failing
        # changes nothing for the others.
        try:
            s = store()
            entries = [(a.id, [convert.frame_in(f) for f in a.frames]) for a in appends]
        except Exception as e:  # noqa: BLE001 - every entry fails alike
            return [convert.result_out(e) for _ in appends]
        return [convert.result_out(r) for r in s.append_many(entries)]

    def get(self, id):
        return convert.guarded(lambda: convert.info_out(store().info(id)))

    def read_frames(self, id, from_seq, max_frames, max_bytes):
        return convert.guarded(lambda: [
            convert.frame_out(f) for f in store().read_frames(id, from_seq, max_frames, max_bytes)])

    def delete(self, id):
        return convert.guarded(lambda: store().delete(id))

    def list(self, filter, cursor, limit):
        return convert.guarded(lambda: page_out(
            store().page(convert.filter_matches(filter), cursor, limit)))

    def search(self, query, cursor, limit):
        def go():
            s = store()
            base = convert.filter_matches(query.filter)
            terms, text = list(query.terms), query.text
            needle = text.encode("utf-8") if text is not None else None

            def matches(info):
                if not base(info):
                    return False
                if not s.has_terms(info, terms):
                    return False
                if needle is not None and not s.contains_text(info["header"]["id"], needle):
                    return False
                return True

            return page_out(s.page(matches, cursor, limit))

        return convert.guarded(go)

    def stats(self):
        def go():
            t = store().stats()
            return types.StorageStats(t["tape_count"], t["recording_count"], t["frame_count"],
                                      t["byte_count"], t["stored_bytes"])

        return convert.guarded(go)


def page_out(page):
    infos, cursor = page
    return types.TapePage([convert.info_out(i) for i in infos], cursor)
