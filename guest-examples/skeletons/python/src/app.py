"""my-provider: a tapedeck storage provider, made by `tapedeck provider new`.

The `tape-storage` export of wit/tape-storage.wit. Every call runs through
`guarded`, which turns an unexpected exception into a `storage-error` (a
provider must never trap for an ordinary failure). The storage logic is in
`store`; the `tape-writer` resource is in `tape_storage` (componentize-py
looks for a resource's class in the module named after its interface).
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import types

import store
import tape_storage

NAME = "my-provider"
VERSION = "0.1.0"

_store = None


def guarded(call):
    try:
        return call()
    except Err:
        raise
    except OSError as e:
        raise Err(types.StorageError_Io(str(e)))
    except Exception as e:  # noqa: BLE001 - reported, never a trap
        raise Err(types.StorageError_Internal(f"{type(e).__name__}: {e}"))


def the_store():
    if _store is None:
        raise Err(types.StorageError_Internal("called before a successful init"))
    return _store


class TapeStorage(exports.TapeStorage):
    def init(self, config):
        def go():
            global _store
            _store = store.Store(config)
            caps = (types.Capabilities.DELETE | types.Capabilities.SEARCH
                    | types.Capabilities.TEXT_SEARCH)
            return types.ProviderInfo(NAME, VERSION, caps)

        return guarded(go)

    def create(self, header):
        return guarded(lambda: tape_storage.TapeWriter(the_store().create(header)))

    def resume(self, id):
        return guarded(lambda: tape_storage.TapeWriter(the_store().resume(id)))

    def save(self, header, frames, summary, reason):
        return guarded(lambda: the_store().save(header, frames, summary, reason))

    def append_many(self, appends):
        # One result per entry; an entry failing changes nothing for the others.
        results, seen = [], set()
        for a in appends:
            def one(a=a):
                if a.id in seen:
                    raise store.invalid(f"tape `{a.id}` appears more than once in one append-many")
                seen.add(a.id)
                return the_store().resume(a.id).append(a.frames)
            try:
                results.append(Ok(guarded(one)))
            except Err as e:
                results.append(e)
        return results

    def get(self, id):
        return guarded(lambda: the_store().get(id))

    def read_frames(self, id, from_seq, max_frames, max_bytes):
        return guarded(lambda: the_store().read_frames(id, from_seq, max_frames, max_bytes))

    def delete(self, id):
        return guarded(lambda: the_store().delete(id))

    def list(self, filter, cursor, limit):
        return guarded(lambda: the_store().list(filter, cursor, limit))

    def search(self, query, cursor, limit):
        return guarded(lambda: the_store().search(query, cursor, limit))

    def stats(self):
        return guarded(lambda: the_store().stats())
