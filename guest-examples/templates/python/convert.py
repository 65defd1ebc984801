"""Conversions between the component's generated types and `tapestore`'s
plain values, and errors to `storage-error`."""

from componentize_py_types import Err, Ok
from wit_world.imports import types

import tapestore

DIRECTIONS = [types.Direction.CLIENT_TO_SERVER, types.Direction.SERVER_TO_CLIENT]
STATES = {
    tapestore.RECORDING: types.TapeState.RECORDING,
    tapestore.FINISHED: types.TapeState.FINISHED,
    tapestore.ABORTED: types.TapeState.ABORTED,
    tapestore.CRASHED: types.TapeState.CRASHED,
}
STATE_NAMES = {v: k for k, v in STATES.items()}
REASONS = {
    types.EndReason.COMPLETED: tapestore.COMPLETED,
    types.EndReason.CRASHED: tapestore.CRASHED,
    types.EndReason.ABORTED: tapestore.ABORTED,
}
ERRORS = {
    tapestore.NOT_FOUND: types.StorageError_NotFound,
    tapestore.ALREADY_EXISTS: types.StorageError_AlreadyExists,
    tapestore.INVALID_INPUT: types.StorageError_InvalidInput,
    tapestore.UNSUPPORTED: types.StorageError_Unsupported,
    tapestore.IO: types.StorageError_Io,
    tapestore.INTERNAL: types.StorageError_Internal,
}


def error_out(e):
    """The `storage-error` for exception `e`: a `StoreError` keeps its
    kind, an `OSError` is `io`, anything else is `internal`."""
    if isinstance(e, tapestore.StoreError):
        return ERRORS[e.kind](e.message)
    if isinstance(e, OSError):
        return types.StorageError_Io(f"{e}")
    return types.StorageError_Internal(f"{type(e).__name__}: {e}")


def guarded(call):
    """Runs `call`, turning every failure into a `storage-error` (a
    provider must not trap for an ordinary failure)."""
    try:
        return call()
    except Err:
        raise
    except Exception as e:  # noqa: BLE001 - reported, never a trap
        raise Err(error_out(e))


def result_out(value):
    """One entry of `append-many`'s results: `Ok(next-seq)` or `Err(error)`."""
    if isinstance(value, Exception):
        return Err(error_out(value))
    return Ok(value)


def frame_in(f):
    flags = 1 if types.FrameFlags.NOT_JSON in f.flags else 0
    return tapestore.Frame(f.seq, f.timestamp, DIRECTIONS.index(f.direction), f.payload, flags,
                           f.terms, f.attributes)


def frame_out(f):
    flags = types.FrameFlags.NOT_JSON if f.flags & 1 else types.FrameFlags(0)
    return types.Frame(f.seq, f.timestamp, DIRECTIONS[f.direction], f.payload, flags,
                       list(f.terms), [(k, v) for k, v in f.attributes])


def header_in(h):
    return {"id": h.id, "session_id": h.session_id, "name": h.name,
            "tags": [[k, v] for k, v in h.tags], "created_at": h.created_at,
            "envelope": h.envelope}


def header_out(h):
    return types.TapeHeader(h["id"], h["session_id"], h["name"],
                            [(k, v) for k, v in h["tags"]], h["created_at"], h["envelope"])


def summary_in(s):
    return {"frame_count": s.frame_count, "byte_count": s.byte_count,
            "ended_at": s.ended_at, "digest": s.digest, "seal": s.seal}


def info_out(i):
    return types.TapeInfo(header_out(i["header"]), STATES[i["state"]], i["frame_count"],
                          i["byte_count"], i["ended_at"], i["digest"], i["seal"])


def filter_matches(flt):
    """A predicate over tapestore infos for a `tape-filter`."""
    name = flt.name_contains.lower() if flt.name_contains is not None else None
    state = STATE_NAMES[flt.state] if flt.state is not None else None

    def matches(info):
        h = info["header"]
        if flt.session_id is not None and h["session_id"] != flt.session_id:
            return False
        if name is not None and name not in h["name"].lower():
            return False
        tags = [tuple(t) for t in h["tags"]]
        if any((k, v) not in tags for k, v in flt.tags):
            return False
        if flt.created_since is not None and h["created_at"] < flt.created_since:
            return False
        if flt.created_until is not None and h["created_at"] >= flt.created_until:
            return False
        if state is not None and info["state"] != state:
            return False
        return True

    return matches
