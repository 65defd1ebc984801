"""The storage logic: one directory per tape under the granted root.

    <root>/<id>/header   written once (the tape's directory is built under a
                         temporary name and renamed into place: atomic)
    <root>/<id>/frames   frame records, one write per append
    <root>/<id>/end      written by finish or abort (temporary file + rename)

Files, little-endian; a string or byte string is a u32 length and its bytes,
a list a u32 count and its items, an option u8 0 or u8 1 and the value:
  header: u64 stamp (when this provider stored the tape, for paging), id,
          session id, name, tags, u64 created-at, envelope (option);
  frames: per frame u8 0xF5, u8 1 on the last frame of an append (else 0),
          u32 body length, body: u64 seq, u64 timestamp, u8 direction,
          u8 not-json, payload, terms, attributes. Bytes after the last
          record marked 1 are a torn append: readers ignore them, `resume`
          cuts them off;
  end:    u8 state (1 finished, 2 aborted, 3 crashed), then u8 1 and the
          summary (u64 frames, u64 bytes, u64 ended-at, digest, seal) or u8 0.

Simple rather than fast: every read scans the tape's `frames` file and every
listing reads every tape. Replace what you need and keep
`tapedeck provider test` passing.
"""

import json
import os
import re
import struct
import time

from componentize_py_types import Err
from wit_world.imports import types

MAGIC = 0xF5
ID = re.compile(r"[A-Za-z0-9_.-]{1,128}\Z")
STATES = [types.TapeState.RECORDING, types.TapeState.FINISHED, types.TapeState.ABORTED,
          types.TapeState.CRASHED]
END_STATES = {types.EndReason.COMPLETED: types.TapeState.FINISHED,
              types.EndReason.ABORTED: types.TapeState.ABORTED,
              types.EndReason.CRASHED: types.TapeState.CRASHED}
DIRECTIONS = [types.Direction.CLIENT_TO_SERVER, types.Direction.SERVER_TO_CLIENT]


def invalid(msg):
    return Err(types.StorageError_InvalidInput(msg))


def check_id(tape_id):
    if not ID.match(tape_id) or tape_id.startswith(".") or ".." in tape_id:
        raise invalid(f"invalid tape id {tape_id[:40]!r}: use 1-128 of A-Z a-z 0-9 - _ ., "
                      "not starting with . and without ..")


def scratch_name(prefix):
    return f".{prefix}-{os.urandom(8).hex()}"


# --- encoding ---------------------------------------------------------------

class Out:
    def __init__(self):
        self.parts = []

    def u8(self, v):
        self.parts.append(bytes([v]))

    def u32(self, v):
        self.parts.append(struct.pack("<I", v))

    def u64(self, v):
        self.parts.append(struct.pack("<Q", v))

    def bytes(self, v):
        self.u32(len(v))
        self.parts.append(bytes(v))

    def str(self, v):
        self.bytes(v.encode("utf-8"))

    def pairs(self, v):
        self.u32(len(v))
        for k, val in v:
            self.str(k)
            self.str(val)

    def opt(self, v, put):
        if v is None:
            self.u8(0)
        else:
            self.u8(1)
            put(v)

    def done(self):
        return b"".join(self.parts)


class In:
    def __init__(self, buf, at=0):
        self.buf, self.at = buf, at

    def take(self, n):
        if self.at + n > len(self.buf):
            raise Err(types.StorageError_Io("a stored file is damaged (truncated)"))
        out = self.buf[self.at:self.at + n]
        self.at += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def bytes(self):
        return bytes(self.take(self.u32()))

    def str(self):
        return self.bytes().decode("utf-8")

    def pairs(self):
        return [(self.str(), self.str()) for _ in range(self.u32())]

    def opt(self, get):
        return get() if self.u8() else None


def encode_header(stamp, h):
    o = Out()
    o.u64(stamp)
    o.str(h.id)
    o.str(h.session_id)
    o.str(h.name)
    o.pairs(h.tags)
    o.u64(h.created_at)
    o.opt(h.envelope, o.bytes)
    return o.done()


def decode_header(buf):
    i = In(buf)
    stamp = i.u64()
    h = types.TapeHeader(i.str(), i.str(), i.str(), i.pairs(), i.u64(), i.opt(i.bytes))
    return stamp, h


def encode_frames(frames):
    out = []
    for n, f in enumerate(frames):
        o = Out()
        o.u64(f.seq)
        o.u64(f.timestamp)
        o.u8(DIRECTIONS.index(f.direction))
        o.u8(1 if types.FrameFlags.NOT_JSON in f.flags else 0)
        o.bytes(f.payload)
        o.u32(len(f.terms))
        for t in f.terms:
            o.str(t)
        o.pairs(f.attributes)
        body = o.done()
        out.append(struct.pack("<BBI", MAGIC, 1 if n == len(frames) - 1 else 0, len(body)))
        out.append(body)
    return b"".join(out)


def scan_frames(buf):
    """The record bodies of the whole appends, as (start, end), and the
    length those appends fill."""
    bodies, committed, at = [], (0, 0), 0
    while at + 6 <= len(buf) and buf[at] == MAGIC:
        last = buf[at + 1] == 1
        (length,) = struct.unpack_from("<I", buf, at + 2)
        start, end = at + 6, at + 6 + length
        if end > len(buf):
            break
        bodies.append((start, end))
        at = end
        if last:
            committed = (len(bodies), at)
    return bodies[:committed[0]], committed[1]


def decode_frame(buf, start):
    i = In(buf, start)
    seq, ts, direction, not_json = i.u64(), i.u64(), i.u8(), i.u8()
    payload = i.bytes()
    terms = [i.str() for _ in range(i.u32())]
    flags = types.FrameFlags.NOT_JSON if not_json else types.FrameFlags(0)
    return types.Frame(seq, ts, DIRECTIONS[direction], payload, flags, terms, i.pairs())


def payload_len(buf, start):
    return struct.unpack_from("<I", buf, start + 18)[0]


def encode_end(state, summary):
    o = Out()
    o.u8(STATES.index(state))
    if summary is None:
        o.u8(0)
    else:
        o.u8(1)
        o.u64(summary.frame_count)
        o.u64(summary.byte_count)
        o.u64(summary.ended_at)
        o.opt(summary.digest, o.str)
        o.opt(summary.seal, o.bytes)
    return o.done()


def decode_end(buf):
    i = In(buf)
    state = STATES[i.u8()]
    summary = None
    if i.u8():
        summary = types.TapeSummary(i.u64(), i.u64(), i.u64(), i.opt(i.str), i.opt(i.bytes))
    return state, summary


# --- files ------------------------------------------------------------------

def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write_atomic(directory, name, data):
    tmp = os.path.join(directory, scratch_name("tmp"))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(directory, name))


def read_frames_file(directory):
    buf = read_file(os.path.join(directory, "frames")) or b""
    bodies, committed = scan_frames(buf)
    return buf, bodies, committed


def check_consecutive(frames, first):
    for n, f in enumerate(frames):
        if f.seq != first + n:
            raise invalid(f"frame {n} has seq {f.seq}, expected {first + n} "
                          "(frames must be consecutive, without gaps)")


def check_summary(summary, frames, nbytes):
    if summary.frame_count != frames or summary.byte_count != nbytes:
        raise invalid(f"the summary says {summary.frame_count} frames and "
                      f"{summary.byte_count} bytes, {frames} frames and {nbytes} bytes are stored")


# --- the store --------------------------------------------------------------

class Tape:
    def __init__(self, directory, stamp, header, end):
        self.dir, self.stamp, self.header, self.end = directory, stamp, header, end


class Store:
    def __init__(self, config):
        try:
            settings = json.loads(config)
        except ValueError as e:
            raise invalid(f"config is not JSON: {e}")
        if not isinstance(settings, dict):
            raise invalid("config must be a JSON object")
        self.root = "/tapes"
        for key, value in settings.items():
            if key == "root":
                if not isinstance(value, str):
                    raise invalid("config `root` must be a string")
                self.root = value
            else:
                raise invalid(f"unknown config setting `{key}` (this provider knows `root`)")
        try:
            os.mkdir(self.root)  # not makedirs: WASI has no "/" to walk down from
        except FileExistsError:
            pass

    def load(self, tape_id):
        check_id(tape_id)
        directory = os.path.join(self.root, tape_id)
        head = read_file(os.path.join(directory, "header"))
        if head is None:
            raise Err(types.StorageError_NotFound(f"no tape `{tape_id}`"))
        stamp, header = decode_header(head)
        end = read_file(os.path.join(directory, "end"))
        return Tape(directory, stamp, header, decode_end(end) if end is not None else None)

    def info(self, tape):
        state, summary = tape.end if tape.end else (types.TapeState.RECORDING, None)
        if summary is not None:
            frames, nbytes = summary.frame_count, summary.byte_count
        else:
            buf, bodies, _ = read_frames_file(tape.dir)
            frames, nbytes = len(bodies), sum(payload_len(buf, s) for s, _ in bodies)
        return types.TapeInfo(tape.header, state, frames, nbytes,
                              summary.ended_at if summary else None,
                              summary.digest if summary else None,
                              summary.seal if summary else None)

    def publish(self, tape_id, files):
        """Builds the tape's directory under a temporary name, then renames
        it to the id: it appears whole or not at all."""
        directory = os.path.join(self.root, tape_id)
        exists = Err(types.StorageError_AlreadyExists(f"tape `{tape_id}` exists"))
        if os.path.exists(directory):
            raise exists
        tmp = os.path.join(self.root, scratch_name("new"))
        os.mkdir(tmp)
        try:
            for name, data in files:
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            if os.path.exists(directory):
                raise exists
            try:
                os.rename(tmp, directory)
            except OSError:
                raise exists
        except BaseException:
            remove_tree(tmp)
            raise

    def create(self, header):
        check_id(header.id)
        self.publish(header.id, [("header", encode_header(time.time_ns(), header)),
                                 ("frames", b"")])
        return Writer(os.path.join(self.root, header.id), 0, 0)

    def resume(self, tape_id):
        tape = self.load(tape_id)
        if tape.end is not None:
            raise invalid(f"tape `{tape_id}` is {tape.end[0].name.lower()}, not recording")
        buf, bodies, committed = read_frames_file(tape.dir)
        if committed < len(buf):
            os.truncate(os.path.join(tape.dir, "frames"), committed)
        return Writer(tape.dir, len(bodies), committed)

    def save(self, header, frames, summary, reason):
        check_id(header.id)
        check_consecutive(frames, 0)
        check_summary(summary, len(frames), sum(len(f.payload) for f in frames))
        self.publish(header.id, [("header", encode_header(time.time_ns(), header)),
                                 ("frames", encode_frames(frames)),
                                 ("end", encode_end(END_STATES[reason], summary))])
        return self.get(header.id)

    def get(self, tape_id):
        return self.info(self.load(tape_id))

    def read_frames(self, tape_id, from_seq, max_frames, max_bytes):
        if max_frames == 0:
            raise invalid("max-frames must be at least 1")
        tape = self.load(tape_id)
        buf, bodies, _ = read_frames_file(tape.dir)
        count = len(bodies)
        if tape.end and tape.end[1] is not None:
            count = min(count, tape.end[1].frame_count)
        out, nbytes, seq = [], 0, from_seq
        while seq < count:
            frame = decode_frame(buf, bodies[seq][0])
            out.append(frame)
            nbytes += len(frame.payload)
            seq += 1
            if len(out) >= max_frames or nbytes >= max_bytes:
                break
        return out

    def delete(self, tape_id):
        tape = self.load(tape_id)
        gone = os.path.join(self.root, scratch_name("deleted"))
        os.rename(tape.dir, gone)
        remove_tree(gone)

    def all(self):
        tapes = []
        for name in os.listdir(self.root):
            if name.startswith("."):
                continue
            try:
                tapes.append(self.load(name))
            except Err as e:
                if not isinstance(e.value, types.StorageError_NotFound):
                    raise
        return tapes

    def page(self, keep, cursor, limit):
        """One page of the tapes `keep(tape, info)` accepts, newest first
        (created-at, then id, both descending). The cursor is
        `v1.<stamp>.<created-at>.<id>`: the first page's time (tapes stored
        later never appear on the next pages) and the last tape given."""
        if not 1 <= limit <= 1000:
            raise invalid(f"limit {limit} is not within 1..=1000")
        if cursor is None:
            snapshot, after = time.time_ns(), None
        else:
            snapshot, after = parse_cursor(cursor)
        tapes = [t for t in self.all() if t.stamp <= snapshot
                 and (after is None or (t.header.created_at, t.header.id) < after)]
        tapes.sort(key=lambda t: (t.header.created_at, t.header.id), reverse=True)
        page, next_cursor = [], None
        for tape in tapes:
            info = self.info(tape)
            if not keep(tape, info):
                continue
            if len(page) == limit:
                last = page[-1].header
                next_cursor = f"v1.{snapshot}.{last.created_at}.{last.id}"
                break
            page.append(info)
        return types.TapePage(page, next_cursor)

    def list(self, flt, cursor, limit):
        return self.page(lambda tape, info: filter_matches(flt, info), cursor, limit)

    def search(self, query, cursor, limit):
        needle = query.text.encode("utf-8") if query.text is not None else None

        def keep(tape, info):
            if not filter_matches(query.filter, info):
                return False
            missing = set(query.terms)
            found = not needle
            buf, bodies, _ = read_frames_file(tape.dir)
            for start, _ in bodies[:info.frame_count]:
                frame = decode_frame(buf, start)
                missing.difference_update(frame.terms)
                found = found or needle in frame.payload
                if not missing and found:
                    return True
            return not missing and found

        return self.page(keep, cursor, limit)

    def stats(self):
        tapes = frames = nbytes = recording = stored = 0
        for tape in self.all():
            info = self.info(tape)
            tapes += 1
            recording += info.state == types.TapeState.RECORDING
            frames += info.frame_count
            nbytes += info.byte_count
            for name in ("header", "frames", "end"):
                try:
                    stored += os.stat(os.path.join(tape.dir, name)).st_size
                except FileNotFoundError:
                    pass
        return types.StorageStats(tapes, recording, frames, nbytes, stored)


def parse_cursor(cursor):
    bad = invalid(f"cursor {cursor[:80]!r} was not issued by this provider")
    parts = cursor.split(".", 3)
    if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit() or not parts[2].isdigit():
        raise bad
    try:
        check_id(parts[3])
    except Err:
        raise bad
    return int(parts[1]), (int(parts[2]), parts[3])


def filter_matches(flt, info):
    h = info.header
    if flt.session_id is not None and h.session_id != flt.session_id:
        return False
    if flt.name_contains is not None and flt.name_contains.lower() not in h.name.lower():
        return False
    if any(tuple(t) not in [tuple(x) for x in h.tags] for t in flt.tags):
        return False
    if flt.created_since is not None and h.created_at < flt.created_since:
        return False
    if flt.created_until is not None and h.created_at >= flt.created_until:
        return False
    if flt.state is not None and info.state != flt.state:
        return False
    return True


def remove_tree(path):
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            remove_tree(full)
        else:
            os.remove(full)
    os.rmdir(path)


class Writer:
    """A tape being written (behind the `tape-writer` resource)."""

    def __init__(self, directory, next_seq, committed):
        self.dir, self.next_seq, self.committed = directory, next_seq, committed

    def end(self):
        buf = read_file(os.path.join(self.dir, "end"))
        return decode_end(buf) if buf is not None else None

    def refresh(self):
        """Catches up with appends made through another writer."""
        if os.stat(os.path.join(self.dir, "frames")).st_size != self.committed:
            _, bodies, self.committed = read_frames_file(self.dir)
            self.next_seq = len(bodies)

    def append(self, frames):
        ended = self.end()
        if ended is not None:
            raise invalid(f"the tape is {ended[0].name.lower()}, not recording")
        self.refresh()
        skip = 0  # a redelivery: frames below next-seq are stored already
        while skip < len(frames) and frames[skip].seq < self.next_seq:
            skip += 1
        new = frames[skip:]
        check_consecutive(new, self.next_seq)
        if not new:
            return self.next_seq
        data = encode_frames(new)
        path = os.path.join(self.dir, "frames")
        with open(path, "ab") as f:
            try:
                f.write(data)
                f.flush()
            except BaseException:
                os.truncate(path, self.committed)  # nothing of a failed append stays
                raise
        self.committed += len(data)
        self.next_seq += len(new)
        return self.next_seq

    def finish(self, store, summary, reason):
        state = END_STATES[reason]
        ended = self.end()
        tape_id = os.path.basename(self.dir)
        if ended is not None:
            if ended[0] == state and ended[1] == summary:
                return store.get(tape_id)
            raise invalid(f"the tape is {ended[0].name.lower()} already, with another summary")
        self.refresh()
        buf, bodies, _ = read_frames_file(self.dir)
        check_summary(summary, len(bodies), sum(payload_len(buf, s) for s, _ in bodies))
        with open(os.path.join(self.dir, "frames"), "rb+") as f:
            os.fsync(f.fileno())
        write_atomic(self.dir, "end", encode_end(state, summary))
        return store.get(tape_id)

    def abort(self):
        if self.end() is None:
            write_atomic(self.dir, "end", encode_end(types.TapeState.ABORTED, None))
