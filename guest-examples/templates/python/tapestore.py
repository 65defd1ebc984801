"""The storage logic of tapedeck's Python provider, in plain Python.

Layout under the granted root (the ``root`` setting, ``/tapes`` by default)::

    tapes/<id>/header.json   the header and a creation stamp, written once
    tapes/<id>/frames        append-only frame records (below)
    tapes/<id>/terms         the tape's index terms, each once (index, below)
    tapes/<id>/seek          (seq, offset) of every 1024th frame (index)
    tapes/<id>/end.json      how the tape ended, written once, atomically
    trash/                   tapes being created, saved or deleted

A frame record is a 32-byte head ``<IIQQBBHI`` (payload length, CRC-32 of
everything after the CRC, seq, timestamp, direction, flags, kind 1, length
of the extras) followed by the payload and the extras: the frame's terms
and attributes as length-prefixed UTF-8 strings (see ``pack_strings``). A
torn record at the end of ``frames`` (an instance stopped mid-append) is
ignored by readers and cut off by the next writer.

The ``terms`` index holds one entry ``<QI`` (seq, length) plus the UTF-8
term for each term the first time the tape has it. Entries are written
*before* their frames, and an entry counts only once its frame is stored
(its seq is below the frame count), so an interrupted append can leave an
entry too many, never one too few; ``resume`` drops such leftovers. Terms
are opaque to the provider: compared as they are, never parsed. Payloads
are never parsed either (they may be ciphertext).

Tapes written by the previous version (contract 0.1, header ``format`` 1)
are read and continued as they are: their records have kind 0 and a 28-byte
head (no extras, so no terms or attributes), their CRC covers the head
without its last two bytes, and their ``methods`` index is ignored.

Every fact lives in a file, so any instance (the host runs several, and may
replace one at any time) sees what another acknowledged. Creation and
``save`` build the tape's directory in ``trash/`` and rename it into place
(a rename never replaces a non-empty directory, so one of two racers wins),
the end is the atomic rename of ``end.json`` into place, and deletion the
atomic rename of the directory into ``trash/``. Nothing here imports the
component bindings, so the module also runs under plain CPython (the unit
tests in ``test_tapestore.py`` do).
"""

import errno
import json
import os
import struct
import time
import zlib

# Written into header.json: 2 since contract 0.2 (terms, attributes,
# envelope, seal); tapes of format 1 are read and continued all the same.
FORMAT = 2
HEAD = struct.Struct("<IIQQBBHI")  # a record's head (kind 1)
HEAD_V1 = struct.Struct("<IIQQBBH")  # the previous version's head (kind 0)
KIND_V1, KIND = 0, 1
U32 = struct.Struct("<I")
TERM = struct.Struct("<QI")  # a terms index entry: seq, length of the term
MAX_LIMIT = 1000
SEEK = struct.Struct("<QQ")
SEEK_EVERY = 1024
CHUNK = 256 * 1024
CURSOR_PREFIX = "py1"

# Error kinds, mapped to `storage-error` cases by the export layer.
NOT_FOUND = "not-found"
ALREADY_EXISTS = "already-exists"
INVALID_INPUT = "invalid-input"
UNSUPPORTED = "unsupported"
IO = "io"
INTERNAL = "internal"

# States and end reasons, as the WIT spells them.
RECORDING, FINISHED, ABORTED, CRASHED = "recording", "finished", "aborted", "crashed"
COMPLETED = "completed"


class StoreError(Exception):
    """A failure to report as a `storage-error`: ``kind`` and a message."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


def fail(kind, message):
    raise StoreError(kind, message)


ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def check_id(tape_id):
    """Refuses any string that is not a valid tape id, before it names a path."""
    ok = (
        1 <= len(tape_id.encode("utf-8")) <= 128
        and all(c in ID_CHARS for c in tape_id)
        and not tape_id.startswith(".")
        and ".." not in tape_id
    )
    if not ok:
        fail(INVALID_INPUT, f"invalid tape id {tape_id!r}: 1 to 128 of A-Z a-z 0-9 - _ ., "
             "not starting with '.' and without '..'")


class Frame:
    """One frame: seq, timestamp (µs), direction (0 or 1), payload, flags
    (bit 0: not-json), terms (a list of str) and attributes (a list of
    (key, value) str pairs). Terms and attributes are the host's: kept
    verbatim and in order."""

    __slots__ = ("seq", "timestamp", "direction", "payload", "flags", "terms", "attributes")

    def __init__(self, seq, timestamp, direction, payload, flags, terms=(), attributes=()):
        self.seq = seq
        self.timestamp = timestamp
        self.direction = direction
        self.payload = payload
        self.flags = flags
        self.terms = list(terms)
        self.attributes = [(k, v) for k, v in attributes]


def pack_strings(items):
    """``items`` as a u32 count, then each as a u32 length and its UTF-8."""
    out = [U32.pack(len(items))]
    for s in items:
        b = s.encode("utf-8")
        out.append(U32.pack(len(b)))
        out.append(b)
    return b"".join(out)


def unpack_strings(data, at):
    """The strings ``pack_strings`` wrote at ``data[at:]``, and where they end."""
    (n,), at = U32.unpack_from(data, at), at + U32.size
    items = []
    for _ in range(n):
        (length,), at = U32.unpack_from(data, at), at + U32.size
        items.append(bytes(data[at:at + length]).decode("utf-8"))
        at += length
    return items, at


def encode(frame):
    """The frame's record (kind 1): head, payload, extras."""
    extras = pack_strings(frame.terms) + pack_strings([s for kv in frame.attributes for s in kv])
    rest = struct.pack("<QQBBHI", frame.seq, frame.timestamp, frame.direction, frame.flags,
                       KIND, len(extras)) + frame.payload + extras
    return U32.pack(len(frame.payload)) + U32.pack(zlib.crc32(rest)) + rest


def parse(data, at):
    """Decodes the record at ``data[at:]``. Returns ``(frame, end)``; or
    ``(None, need)`` when ``data`` ends inside the record, ``need`` being how
    many bytes from ``at`` it takes as far as known; or ``(None, 0)`` when the
    record is corrupt."""
    if len(data) - at < HEAD_V1.size:
        return None, HEAD_V1.size
    length, crc, seq, ts, direction, flags, kind = HEAD_V1.unpack_from(data, at)
    if kind == KIND_V1:
        end = at + HEAD_V1.size + length
        if end > len(data):
            return None, end - at
        payload = bytes(data[at + HEAD_V1.size:end])
        # The previous version's CRC: seq, timestamp, direction, flags, payload.
        head = struct.pack("<QQBB", seq, ts, direction, flags)
        if zlib.crc32(payload, zlib.crc32(head)) != crc:
            return None, 0
        return Frame(seq, ts, direction, payload, flags), end
    if kind != KIND:
        return None, 0
    if len(data) - at < HEAD.size:
        return None, HEAD.size
    extras_len = HEAD.unpack_from(data, at)[7]
    start = at + HEAD.size
    end = start + length + extras_len
    if end > len(data):
        return None, end - at
    if zlib.crc32(data[at + 8:end]) != crc:
        return None, 0
    terms, i = unpack_strings(data, start + length)
    flat, _ = unpack_strings(data, i)
    attributes = list(zip(flat[0::2], flat[1::2]))
    return Frame(seq, ts, direction, bytes(data[start:start + length]), flags, terms,
                 attributes), end


def scan(data, offset=0):
    """Yields ``(end_offset, Frame)`` for each intact record from ``offset``;
    stops at the first torn or corrupt one."""
    while True:
        frame, end = parse(data, offset)
        if frame is None:
            return
        yield end, frame
        offset = end


def iter_records(f, offset):
    """Yields the intact frames of open file `f` from `offset`, reading in
    chunks, so a page costs what it returns rather than the whole file."""
    f.seek(offset)
    buf, i = b"", 0
    while True:
        frame, end = parse(buf, i)
        if frame is not None:
            yield frame
            i = end
            continue
        if end == 0:
            return
        more = f.read(max(CHUNK, end - (len(buf) - i)))
        if not more:
            return
        buf, i = buf[i:] + more, 0


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def unique():
    """A name no other instance picks at the same moment (instances race)."""
    return f"{time.time_ns()}-{os.urandom(4).hex()}"


def write_atomic(path, data, fsync):
    tmp = f"{path}.tmp-{unique()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def hex_or_none(b):
    """Bytes for a JSON file (the envelope, the seal): hex, or None."""
    return None if b is None else bytes(b).hex()


def bytes_or_none(s):
    return None if s is None else bytes.fromhex(s)


class FrameLog:
    """What an intact prefix of a tape's ``frames`` file holds."""

    __slots__ = ("count", "bytes", "valid_len")

    def __init__(self):
        self.count = 0
        self.bytes = 0
        self.valid_len = 0


class Store:
    """The tapes under one root directory."""

    def __init__(self, config_json):
        try:
            config = json.loads(config_json or "{}")
        except ValueError as e:
            fail(INVALID_INPUT, f"config is not JSON: {e}")
        if not isinstance(config, dict):
            fail(INVALID_INPUT, "config must be a JSON object")
        unknown = sorted(set(config) - {"root", "fsync"})
        if unknown:
            fail(INVALID_INPUT, f"unknown setting `{unknown[0]}` (known: root, fsync)")
        root = config.get("root", "/tapes")
        if not isinstance(root, str) or not root:
            fail(INVALID_INPUT, "setting `root` must be a non-empty string")
        fsync = config.get("fsync", True)
        if not isinstance(fsync, bool):
            fail(INVALID_INPUT, "setting `fsync` must be true or false")
        self.root = root
        self.fsync = fsync
        self.tapes = os.path.join(root, "tapes")
        self.trash = os.path.join(root, "trash")
        try:
            os.makedirs(self.tapes, exist_ok=True)
            os.makedirs(self.trash, exist_ok=True)
        except OSError as e:
            fail(IO, f"cannot create {self.tapes}: {e} (is `{root}` granted read-write?)")
        # Per instance: what was already scanned of each frames file, keyed by
        # (id, creation stamp) so a deleted and re-created id starts afresh.
        self._logs = {}

    # -- paths and files ---------------------------------------------------

    def _dir(self, tape_id):
        return os.path.join(self.tapes, tape_id)

    def _read_json(self, tape_id, name, what):
        """A tape's JSON file, or None if it does not exist."""
        try:
            return json.loads(read_file(os.path.join(self._dir(tape_id), name)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            fail(IO, f"cannot read the {what} of tape {tape_id!r}: {e}")

    def _header(self, tape_id):
        """The stored header dict (``format``, ``header``, ``stamp``), or None
        if there is no such tape. The header's ``envelope`` comes back as
        bytes (None for a tape of format 1, which had none)."""
        stored = self._read_json(tape_id, "header.json", "header")
        if stored is not None:
            stored["header"]["envelope"] = bytes_or_none(stored["header"].get("envelope"))
        return stored

    def _end(self, tape_id):
        """The end record, its ``seal`` as bytes; None while recording."""
        end = self._read_json(tape_id, "end.json", "end")
        if end is not None:
            end["seal"] = bytes_or_none(end.get("seal"))
        return end

    def _log(self, tape_id, header):
        """Counts the intact frames of a tape, reading only what is new."""
        key = (tape_id, header["stamp"])
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = FrameLog()
        path = os.path.join(self._dir(tape_id), "frames")
        try:
            with open(path, "rb") as f:
                f.seek(log.valid_len)
                data = f.read()
        except FileNotFoundError:
            fail(NOT_FOUND, f"no tape {tape_id!r}")
        consumed = 0
        for end, frame in scan(data):
            log.count += 1
            log.bytes += len(frame.payload)
            consumed = end
        log.valid_len += consumed
        return log

    def _require(self, tape_id):
        check_id(tape_id)
        header = self._header(tape_id)
        if header is None:
            fail(NOT_FOUND, f"no tape {tape_id!r}")
        return header

    def info(self, tape_id, header=None):
        """The tape's info dict: header, state, counts, end, digest, seal."""
        if header is None:
            header = self._require(tape_id)
        end = self._end(tape_id)
        if end is not None:
            return {"header": header["header"], "state": end["state"],
                    "frame_count": end["frame_count"], "byte_count": end["byte_count"],
                    "ended_at": end["ended_at"], "digest": end["digest"], "seal": end["seal"],
                    "stamp": header["stamp"]}
        log = self._log(tape_id, header)
        return {"header": header["header"], "state": RECORDING,
                "frame_count": log.count, "byte_count": log.bytes,
                "ended_at": None, "digest": None, "seal": None, "stamp": header["stamp"]}

    # -- writing -----------------------------------------------------------

    def create(self, header):
        """Creates an empty recording tape; returns its writer.

        The tape's directory is built in the trash and renamed into place, as
        `save` does: a rename never replaces a non-empty directory, so of two
        instances creating (or saving) the same id exactly one wins, and no
        reader ever sees a half-made tape."""
        tape_id = header["id"]
        check_id(tape_id)
        if self._header(tape_id) is not None:
            fail(ALREADY_EXISTS, f"tape {tape_id!r} exists already")
        staging = os.path.join(self.trash, f"create-{tape_id}-{unique()}")
        stored = {"format": FORMAT, "header": header, "stamp": time.time_ns()}
        try:
            os.mkdir(staging)
            for name in ("frames", "terms", "seek"):
                open(os.path.join(staging, name), "wb").close()
            write_atomic(os.path.join(staging, "header.json"), header_json(stored), self.fsync)
            os.rename(staging, self._dir(tape_id))
        except OSError as e:
            remove_tree(staging)
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY) or self._header(tape_id) is not None:
                fail(ALREADY_EXISTS, f"tape {tape_id!r} exists already")
            fail(IO, f"cannot create tape {tape_id!r}: {e}")
        return Writer(self, tape_id, stored, FrameLog(), set())

    def resume(self, tape_id):
        header = self._require(tape_id)
        if self._end(tape_id) is not None:
            fail(INVALID_INPUT, f"tape {tape_id!r} has ended; only a recording tape can be resumed")
        log = self._log(tape_id, header)
        # Cut off a torn record left by an instance that stopped mid-append,
        # and index entries written for frames that were not stored.
        d = self._dir(tape_id)
        path = os.path.join(d, "frames")
        try:
            if os.stat(path).st_size > log.valid_len:
                os.truncate(path, log.valid_len)
                drop_seek_entries_past(os.path.join(d, "seek"), log.valid_len)
            known = repair_terms(os.path.join(d, "terms"), log.count)
        except OSError as e:
            fail(IO, f"cannot repair tape {tape_id!r}: {e}")
        resumed = FrameLog()
        resumed.count, resumed.bytes, resumed.valid_len = log.count, log.bytes, log.valid_len
        return Writer(self, tape_id, header, resumed, known)

    def save(self, header, frames, summary, reason):
        """Stores a whole tape at once: all of it or nothing."""
        tape_id = header["id"]
        check_id(tape_id)
        check_frames(frames, 0)
        check_summary(summary, len(frames), sum(len(f.payload) for f in frames), tape_id)
        if self._header(tape_id) is not None:
            fail(ALREADY_EXISTS, f"tape {tape_id!r} exists already")
        # Built in the trash, then renamed into place: atomic.
        staging = os.path.join(self.trash, f"save-{tape_id}-{unique()}")
        stored = {"format": FORMAT, "header": header, "stamp": time.time_ns()}
        try:
            os.mkdir(staging)
            records = [encode(fr) for fr in frames]
            with open(os.path.join(staging, "frames"), "wb") as f:
                f.write(b"".join(records))
                if self.fsync:
                    os.fsync(f.fileno())
            with open(os.path.join(staging, "terms"), "wb") as f:
                f.write(term_entries(frames, set()))
            write_seek(os.path.join(staging, "seek"), frames, records, 0)
            write_atomic(os.path.join(staging, "header.json"), header_json(stored), self.fsync)
            write_atomic(os.path.join(staging, "end.json"), end_json(summary, reason), self.fsync)
            os.rename(staging, self._dir(tape_id))
        except OSError as e:
            remove_tree(staging)
            # The rename refuses an existing directory: another instance
            # created or saved the id meanwhile (maybe still writing its header).
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY) or self._header(tape_id) is not None:
                fail(ALREADY_EXISTS, f"tape {tape_id!r} exists already")
            fail(IO, f"cannot save tape {tape_id!r}: {e}")
        return self.info(tape_id)

    def append_many(self, appends):
        """Appends ``frames`` to each tape of ``appends`` (pairs ``(id,
        frames)``) as ``resume(id).append(frames)`` would. Returns one result
        per entry, in order: the new next seq, or the entry's ``StoreError``.
        Entries are independent; an id given twice fails the second time."""
        seen, results = set(), []
        for tape_id, frames in appends:
            try:
                if tape_id in seen:
                    fail(INVALID_INPUT, f"tape {tape_id!r} appears more than once in one append-many")
                seen.add(tape_id)
                results.append(self.resume(tape_id).append(frames))
            except StoreError as e:
                results.append(e)
            except OSError as e:
                results.append(StoreError(IO, f"cannot append to tape {tape_id!r}: {e}"))
            except Exception as e:  # noqa: BLE001 - one entry's bug, reported, not the others'
                results.append(StoreError(INTERNAL, f"{type(e).__name__}: {e}"))
        return results

    def delete(self, tape_id):
        self._require(tape_id)
        gone = os.path.join(self.trash, f"{tape_id}-{unique()}")
        try:
            os.rename(self._dir(tape_id), gone)
        except FileNotFoundError:
            fail(NOT_FOUND, f"no tape {tape_id!r}")
        except OSError as e:
            fail(IO, f"cannot delete tape {tape_id!r}: {e}")
        remove_tree(gone)

    # -- reading -----------------------------------------------------------

    def read_frames(self, tape_id, from_seq, max_frames, max_bytes):
        if max_frames < 1:
            fail(INVALID_INPUT, f"read of tape {tape_id!r}: max-frames must be at least 1")
        self._require(tape_id)
        d = self._dir(tape_id)
        out, total = [], 0
        try:
            with open(os.path.join(d, "frames"), "rb") as f:
                start = self._seek_start(d, f, from_seq)
                for frame in iter_records(f, start):
                    if frame.seq < from_seq:
                        continue
                    if out and total + len(frame.payload) > max_bytes:
                        break
                    out.append(frame)
                    total += len(frame.payload)
                    if len(out) >= max_frames or total >= max_bytes:
                        break
        except FileNotFoundError:
            fail(NOT_FOUND, f"no tape {tape_id!r}")
        return out

    def _seek_start(self, d, f, from_seq):
        """The offset of the last indexed frame at or before `from_seq`, if
        the record there really is that frame; else 0 (scan from the start)."""
        try:
            data = read_file(os.path.join(d, "seek"))
        except FileNotFoundError:
            return 0
        best = None
        for k in range(len(data) // SEEK.size):
            seq, offset = SEEK.unpack_from(data, k * SEEK.size)
            if seq > from_seq:
                break
            best = (seq, offset)
        if best is None:
            return 0
        first = next(iter_records(f, best[1]), None)
        return best[1] if first is not None and first.seq == best[0] else 0

    def all_infos(self):
        """Every tape's info (tapes disappearing meanwhile are skipped)."""
        infos = []
        for tape_id in os.listdir(self.tapes):
            try:
                header = self._header(tape_id)
                if header is not None:
                    infos.append(self.info(tape_id, header))
            except StoreError as e:
                if e.kind != NOT_FOUND:
                    raise
        return infos

    def page(self, matches, cursor, limit):
        """One page of matching tapes, newest first, with stable paging."""
        if not 1 <= limit <= MAX_LIMIT:
            fail(INVALID_INPUT, f"limit {limit} is out of range 1..={MAX_LIMIT}")
        snapshot, after = time.time_ns(), None
        if cursor is not None:
            snapshot, after = parse_cursor(cursor)
        infos = [i for i in self.all_infos() if i["stamp"] <= snapshot and matches(i)]
        infos.sort(key=order_key, reverse=True)
        if after is not None:
            infos = [i for i in infos if order_key(i) < after]
        page = infos[:limit]
        next_cursor = None
        if len(infos) > limit:
            last = order_key(page[-1])
            next_cursor = f"{CURSOR_PREFIX}:{snapshot}:{last[0]}:{last[1]}"
        return page, next_cursor

    def stats(self):
        infos = self.all_infos()
        stored = 0
        for root, _, files in os.walk(self.root):
            for name in files:
                try:
                    stored += os.stat(os.path.join(root, name)).st_size
                except OSError:
                    pass
        return {
            "tape_count": len(infos),
            "recording_count": sum(1 for i in infos if i["state"] == RECORDING),
            "frame_count": sum(i["frame_count"] for i in infos),
            "byte_count": sum(i["byte_count"] for i in infos),
            "stored_bytes": stored,
        }

    def has_terms(self, info, terms):
        """Whether every one of ``terms`` is among the terms of the tape's
        stored frames (exact equality; not necessarily the same frame)."""
        if not terms:
            return True
        known = terms_below(os.path.join(self._dir(info["header"]["id"]), "terms"),
                            info["frame_count"])
        return all(t in known for t in terms)

    def contains_text(self, tape_id, needle):
        try:
            data = read_file(os.path.join(self._dir(tape_id), "frames"))
        except FileNotFoundError:
            return False
        return any(needle in frame.payload for _, frame in scan(memoryview(data)))


def order_key(info):
    return (info["header"]["created_at"], info["header"]["id"])


def parse_cursor(cursor):
    parts = cursor.split(":", 3)
    try:
        if len(parts) != 4 or parts[0] != CURSOR_PREFIX:
            raise ValueError
        snapshot, created = int(parts[1]), int(parts[2])
        check_id(parts[3])
    except (ValueError, StoreError):
        fail(INVALID_INPUT, f"cursor {cursor!r} was not issued by this provider")
    return snapshot, (created, parts[3])


def check_frames(frames, first):
    for i, frame in enumerate(frames):
        if frame.seq != first + i:
            fail(INVALID_INPUT, f"frame {i} of the batch has seq {frame.seq}, expected {first + i} "
                 "(sequence numbers must be consecutive)")


def check_summary(summary, count, nbytes, tape_id):
    if summary["frame_count"] != count or summary["byte_count"] != nbytes:
        fail(INVALID_INPUT, f"summary of tape {tape_id!r} says {summary['frame_count']} frames and "
             f"{summary['byte_count']} bytes; stored are {count} frames and {nbytes} bytes")


STATE_OF = {COMPLETED: FINISHED, CRASHED: CRASHED, ABORTED: ABORTED}


def header_json(stored):
    """header.json's bytes; the envelope as hex."""
    h = dict(stored["header"], envelope=hex_or_none(stored["header"]["envelope"]))
    return json.dumps(dict(stored, header=h)).encode()


def end_json(summary, reason):
    """end.json's bytes: the end state and the summary, the seal as hex."""
    return json.dumps({"state": STATE_OF[reason], "frame_count": summary["frame_count"],
                       "byte_count": summary["byte_count"], "ended_at": summary["ended_at"],
                       "digest": summary["digest"], "seal": hex_or_none(summary["seal"])}).encode()


def same_end(end, summary, reason):
    """Whether an end record says what finishing with ``summary`` would."""
    return (end["state"] == STATE_OF[reason] and end["frame_count"] == summary["frame_count"]
            and end["byte_count"] == summary["byte_count"] and end["digest"] == summary["digest"]
            and end["seal"] == summary["seal"])


def term_entry(seq, term):
    b = term.encode("utf-8")
    return TERM.pack(seq, len(b)) + b


def term_entries(frames, known):
    """Terms index entries for the terms of ``frames`` not in ``known``
    (which this extends), each at the first frame that has it."""
    out = []
    for frame in frames:
        for term in frame.terms:
            if term not in known:
                known.add(term)
                out.append(term_entry(frame.seq, term))
    return b"".join(out)


def read_terms(path):
    """The entries ``(seq, term, end offset)`` of a terms index, up to a torn
    tail; none if the file does not exist (a tape of format 1)."""
    try:
        data = read_file(path)
    except FileNotFoundError:
        return []
    entries, at = [], 0
    while at + TERM.size <= len(data):
        seq, length = TERM.unpack_from(data, at)
        end = at + TERM.size + length
        if end > len(data):
            break
        entries.append((seq, data[at + TERM.size:end].decode("utf-8"), end))
        at = end
    return entries


def terms_below(path, count):
    """The terms of a tape's first ``count`` frames (the stored ones)."""
    return {term for seq, term, _ in read_terms(path) if seq < count}


def repair_terms(path, count):
    """Drops the entries of frames at or past ``count`` (written by an
    append that did not complete) and a torn tail; returns the terms left."""
    entries = read_terms(path)
    kept = [e for e in entries if e[0] < count]
    size = os.stat(path).st_size if os.path.exists(path) else 0
    if len(kept) != len(entries) or (entries[-1][2] if entries else 0) != size:
        write_atomic(path, b"".join(term_entry(seq, term) for seq, term, _ in kept), False)
    return {term for _, term, _ in kept}


def write_seek(path, frames, records, offset):
    """Indexes every SEEK_EVERY-th of `frames` (encoded as `records`),
    written from `offset` on."""
    entries = []
    for frame, record in zip(frames, records):
        if frame.seq % SEEK_EVERY == 0:
            entries.append(SEEK.pack(frame.seq, offset))
        offset += len(record)
    if entries:
        with open(path, "ab") as f:
            f.write(b"".join(entries))


def drop_seek_entries_past(path, length):
    """Forgets index entries for records cut off a torn tail."""
    try:
        data = read_file(path)
    except FileNotFoundError:
        return
    kept = [data[k:k + SEEK.size] for k in range(0, len(data) - SEEK.size + 1, SEEK.size)
            if SEEK.unpack_from(data, k)[1] < length]
    write_atomic(path, b"".join(kept), False)


def remove_tree(path):
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            try:
                os.remove(os.path.join(root, name))
            except OSError:
                pass
        for name in dirs:
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


class Writer:
    """Appends to one recording tape."""

    def __init__(self, store, tape_id, header, log, known):
        self.store = store
        self.tape_id = tape_id
        self.header = header
        self.log = log
        self.known = known  # the terms already in the tape's index
        d = store._dir(tape_id)
        self.path = os.path.join(d, "frames")
        self.terms_path = os.path.join(d, "terms")

    def _check_recording(self):
        end = self.store._end(self.tape_id)
        if self.store._header(self.tape_id) is None:
            fail(NOT_FOUND, f"tape {self.tape_id!r} was deleted")
        return end

    def append(self, frames):
        if not frames:
            return self.log.count
        if self._check_recording() is not None:
            fail(INVALID_INPUT, f"tape {self.tape_id!r} has ended; nothing can be appended")
        check_frames(frames, frames[0].seq)
        new = [f for f in frames if f.seq >= self.log.count]
        if not new:
            return self.log.count
        if new[0].seq != self.log.count:
            fail(INVALID_INPUT, f"append to tape {self.tape_id!r}: first new frame has seq "
                 f"{new[0].seq}, expected {self.log.count} (a gap)")
        records = [encode(f) for f in new]
        data = b"".join(records)
        known = set(self.known)
        entries = term_entries(new, known)
        # The index entries go first: they count only once their frames are
        # stored, so a failure in between leaves nothing visible.
        terms_len = os.stat(self.terms_path).st_size if os.path.exists(self.terms_path) else 0
        try:
            if entries:
                with open(self.terms_path, "ab") as f:
                    f.write(entries)
            with open(self.path, "r+b") as f:
                f.seek(self.log.valid_len)
                f.write(data)
                f.flush()
        except OSError as e:
            for path, length in ((self.path, self.log.valid_len), (self.terms_path, terms_len)):
                try:
                    os.truncate(path, length)
                except OSError:
                    pass
            fail(IO, f"cannot append to tape {self.tape_id!r}: {e}")
        self.known = known
        write_seek(os.path.join(self.store._dir(self.tape_id), "seek"), new, records,
                   self.log.valid_len)
        self.log.count += len(new)
        self.log.bytes += sum(len(f.payload) for f in new)
        self.log.valid_len += len(data)
        return self.log.count

    def finish(self, summary, reason):
        """Records ``summary`` (with its digest and seal) and ends the tape
        as ``reason`` says; the same finish again is a no-op."""
        end = self._check_recording()
        if end is not None:
            if same_end(end, summary, reason):
                return self.store.info(self.tape_id)
            fail(INVALID_INPUT, f"tape {self.tape_id!r} has ended already, differently")
        check_summary(summary, self.log.count, self.log.bytes, self.tape_id)
        try:
            if self.store.fsync:
                with open(self.path, "rb") as f:
                    os.fsync(f.fileno())
            write_atomic(os.path.join(self.store._dir(self.tape_id), "end.json"),
                         end_json(summary, reason), self.store.fsync)
        except OSError as e:
            fail(IO, f"cannot finish tape {self.tape_id!r}: {e}")
        return self.store.info(self.tape_id)

    def abort(self, reason):
        end = self._check_recording()
        if end is not None:
            return
        summary = {"frame_count": self.log.count, "byte_count": self.log.bytes,
                   "ended_at": time.time_ns() // 1000, "digest": None, "seal": None}
        try:
            write_atomic(os.path.join(self.store._dir(self.tape_id), "end.json"),
                         end_json(summary, ABORTED), self.store.fsync)
        except OSError as e:
            fail(IO, f"cannot abort tape {self.tape_id!r}: {e}")
