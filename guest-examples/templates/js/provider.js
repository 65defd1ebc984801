// tapedeck's JavaScript storage provider, componentized with
// `jco componentize` (the StarlingMonkey engine).
//
// Why not the QuickJS backend (smaller, cheaper per call): it maps WIT `u64`
// to a JavaScript Number, exact only up to 2^53 (componentize-qjs documents
// this), so a timestamp such as 2^63 - 1 would come back changed and the
// conformance suite's `payload/flags-and-directions` and `read/past-end`
// cases fail. StarlingMonkey maps `u64` to BigInt, exactly. Inside, counts,
// sequence numbers and offsets are Numbers (a tape never reaches 2^53
// frames or bytes); timestamps stay BigInt end to end, and are stored as
// decimal strings in JSON.
//
// The same storage design as the Python provider, written against the raw
// `wasi:filesystem` API (JavaScript in a component has no `fs` module).
// Layout under the granted root (`root`, `/tapes` by default):
//
//   tapes/<id>/header.json   the header and a creation stamp, written once
//   tapes/<id>/frames        append-only frame records (below)
//   tapes/<id>/terms         the tape's index terms, each once (below)
//   tapes/<id>/seek          (seq, offset) of every 1024th frame, 16 bytes each
//   tapes/<id>/end.json      how the tape ended, written once, atomically
//   trash/                   tapes being created, saved or deleted
//
// A frame record (little endian): u32 payload length, u32 CRC-32 of the
// rest, u64 seq, u64 timestamp, u8 direction, u8 flags, u16 kind (1), u32
// length of the extras, then the payload, then the extras: the frame's terms
// and attributes as length-prefixed UTF-8 strings (`packStrings`). A torn
// record at the end is ignored by readers and cut off by `resume`.
//
// The `terms` index holds, for each term the first time the tape has it,
// u64 seq, u32 length and the UTF-8 term. Entries are written *before*
// their frames and count only once their frame is stored (seq below the
// frame count): an interrupted append can leave an entry too many, never one
// too few, and `resume` drops such leftovers. Terms are opaque: compared as
// they are, never parsed. Payloads are never parsed either (they may be
// ciphertext).
//
// Tapes written by the previous version (contract 0.1, header `format` 1)
// are read and continued as they are: their records have kind 0 and stop
// after the padding (28 bytes, no extras: no terms, no attributes), and
// their `methods` index is ignored.
//
// Creation and `save` build the directory in `trash/` and rename it into
// place (a rename never replaces a non-empty directory, so one of two
// racers wins), the end is an atomic rename of `end.json`, deletion a
// rename into `trash/`: every instance sees the same facts, whichever
// acknowledged them. Every descriptor is dropped after use (the host caps
// open resources).

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { now } from 'wasi:clocks/wall-clock@0.2.12';

const NAME = 'js';
const VERSION = '0.2.0';
// Written into header.json: 2 since contract 0.2 (terms, attributes,
// envelope, seal); tapes of format 1 are read and continued all the same.
const FORMAT = 2;
const HEADER = 32; // a record's head (kind 1)
const HEADER_V1 = 28; // the previous version's head (kind 0)
const KIND_V1 = 0;
const KIND = 1;
const SEEK_EVERY = 1024;
const CHUNK = 256 * 1024;
const MAX_LIMIT = 1000;

// ---------------------------------------------------------------------------
// Errors

class StoreError {
  constructor(tag, message) {
    this.tag = tag;
    this.val = message;
  }
}
const fail = (tag, message) => {
  throw new StoreError(tag, message);
};
// What a `wasi:filesystem` call threw: its `error-code` string.
const codeOf = (e) => (e && typeof e === 'object' ? (e.payload ?? e.val ?? e.tag ?? `${e}`) : `${e}`);
// The `storage-error` for what was thrown: a storage error as it is, a
// filesystem error `io`, anything else (a bug) `internal`.
function errorOf(e) {
  if (e instanceof StoreError) return { tag: e.tag, val: e.val };
  if (e instanceof Error) return { tag: 'internal', val: `${e.name}: ${e.message}` };
  return { tag: 'io', val: `filesystem error: ${codeOf(e)}` };
}
// Runs `f`, throwing any failure as a `storage-error`: a provider must not trap.
function guarded(f) {
  try {
    return f();
  } catch (e) {
    throw errorOf(e);
  }
}

// ---------------------------------------------------------------------------
// Bytes: UTF-8, CRC-32, little-endian integers

const utf8 = {
  encode(s) {
    if (typeof TextEncoder !== 'undefined') return new TextEncoder().encode(s);
    const out = [];
    for (const ch of s) {
      let c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return new Uint8Array(out);
  },
  // Strict: invalid UTF-8 throws.
  decode(b) {
    if (typeof TextDecoder !== 'undefined') return new TextDecoder('utf-8', { fatal: true }).decode(b);
    let s = '';
    for (let i = 0; i < b.length; ) {
      const c = b[i];
      let n, cp;
      if (c < 0x80) { cp = c; n = 1; }
      else if (c >> 5 === 6) { cp = c & 31; n = 2; }
      else if (c >> 4 === 14) { cp = c & 15; n = 3; }
      else if (c >> 3 === 30) { cp = c & 7; n = 4; }
      else throw new Error('invalid UTF-8');
      if (i + n > b.length) throw new Error('invalid UTF-8');
      for (let k = 1; k < n; k++) {
        if (b[i + k] >> 6 !== 2) throw new Error('invalid UTF-8');
        cp = (cp << 6) | (b[i + k] & 63);
      }
      s += String.fromCodePoint(cp);
      i += n;
    }
    return s;
  },
};

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(bytes, crc = 0) {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const U32 = 2 ** 32;
function putU64(view, at, n) {
  view.setUint32(at, n % U32, true);
  view.setUint32(at + 4, Math.floor(n / U32), true);
}
const getU64 = (view, at) => view.getUint32(at, true) + view.getUint32(at + 4, true) * U32;
const viewOf = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);

// Bytes for a JSON file (the envelope, the seal): hex.
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
function fromHex(s) {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
const hexOrNull = (b) => (b == null ? null : toHex(b));
const bytesOrNull = (s) => (s == null ? null : fromHex(s));
function sameBytes(a, b) {
  if (a == null || b == null) return a == null && b == null;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Frame records

// `items` (strings) as a u32 count, then each as a u32 length and its UTF-8.
function packStrings(items) {
  const parts = [new Uint8Array(4)];
  viewOf(parts[0]).setUint32(0, items.length, true);
  for (const s of items) {
    const b = utf8.encode(s);
    const len = new Uint8Array(4);
    viewOf(len).setUint32(0, b.length, true);
    parts.push(len, b);
  }
  return concat(parts);
}

// The strings `packStrings` wrote at `buf[at..]`: [items, where they end].
function unpackStrings(buf, at) {
  const v = viewOf(buf);
  const n = v.getUint32(at, true);
  at += 4;
  const items = [];
  for (let k = 0; k < n; k++) {
    const len = v.getUint32(at, true);
    items.push(utf8.decode(buf.subarray(at + 4, at + 4 + len)));
    at += 4 + len;
  }
  return [items, at];
}

// A frame as stored: { seq, timestamp, direction (0|1), payload, flags (bit
// 0: not-json), terms (strings), attributes ([key, value] pairs) }.
function encode(f) {
  const extras = concat([packStrings(f.terms), packStrings(f.attributes.flat())]);
  const rec = new Uint8Array(HEADER + f.payload.length + extras.length);
  const v = viewOf(rec);
  v.setUint32(0, f.payload.length, true);
  putU64(v, 8, f.seq);
  v.setBigUint64(16, f.timestamp, true);
  rec[24] = f.direction;
  rec[25] = f.flags;
  v.setUint16(26, KIND, true);
  v.setUint32(28, extras.length, true);
  rec.set(f.payload, HEADER);
  rec.set(extras, HEADER + f.payload.length);
  v.setUint32(4, crc32(rec.subarray(8)), true);
  return rec;
}

// The size of the record that starts with `head` (its first HEADER bytes,
// or fewer at the end of the file), or 0 if `head` is too short to tell.
function recordSize(head) {
  if (head.length < HEADER_V1) return 0;
  const v = viewOf(head);
  if (v.getUint16(26, true) === KIND_V1) return HEADER_V1 + v.getUint32(0, true);
  if (head.length < HEADER) return 0;
  return HEADER + v.getUint32(0, true) + v.getUint32(28, true);
}

// Decodes the record at `buf[at..]`: { frame, end }; or { need } if `buf`
// ends inside it (need: its size from `at`, as far as known); or
// { corrupt: true }.
function decodeAt(buf, at) {
  const rest = buf.subarray(at);
  if (rest.length < HEADER_V1) return { need: HEADER };
  const v = viewOf(rest);
  const kind = v.getUint16(26, true);
  if (kind !== KIND_V1 && kind !== KIND) return { corrupt: true };
  const size = recordSize(rest);
  if (!size || rest.length < size) return { need: size || HEADER };
  if (crc32(rest.subarray(8, size)) !== v.getUint32(4, true)) return { corrupt: true };
  const head = kind === KIND ? HEADER : HEADER_V1;
  const len = v.getUint32(0, true);
  const frame = {
    seq: getU64(v, 8),
    timestamp: v.getBigUint64(16, true),
    direction: rest[24],
    flags: rest[25],
    payload: rest.slice(head, head + len),
    terms: [],
    attributes: [],
  };
  if (kind === KIND) {
    const [terms, i] = unpackStrings(rest, head + len);
    const [flat] = unpackStrings(rest, i);
    frame.terms = terms;
    for (let k = 0; k + 1 < flat.length; k += 2) frame.attributes.push([flat[k], flat[k + 1]]);
  }
  return { frame, end: at + size };
}

// ---------------------------------------------------------------------------
// The terms index

// Entries for the terms of `frames` not in `known` (which this extends),
// each at the first frame that has it.
function termEntries(frames, known) {
  const out = [];
  for (const f of frames) {
    for (const t of f.terms) {
      if (known.has(t)) continue;
      known.add(t);
      out.push(termEntry(f.seq, t));
    }
  }
  return concat(out);
}

function termEntry(seq, term) {
  const b = utf8.encode(term);
  const e = new Uint8Array(12 + b.length);
  putU64(viewOf(e), 0, seq);
  viewOf(e).setUint32(8, b.length, true);
  e.set(b, 12);
  return e;
}

// The index's entries [{ seq, term, end }] up to a torn tail; none if it
// does not exist (a tape of format 1).
function readTerms(dir, path) {
  const data = readAll(dir, path) ?? new Uint8Array(0);
  const v = viewOf(data);
  const entries = [];
  for (let at = 0; at + 12 <= data.length; ) {
    const end = at + 12 + v.getUint32(at + 8, true);
    if (end > data.length) break;
    entries.push({ seq: getU64(v, at), term: utf8.decode(data.subarray(at + 12, end)), end });
    at = end;
  }
  return { entries, size: data.length };
}

// The terms of a tape's first `count` frames (the stored ones).
function termsBelow(dir, path, count) {
  return new Set(readTerms(dir, path).entries.filter((e) => e.seq < count).map((e) => e.term));
}

// Drops the entries of frames at or past `count` (written by an append that
// did not complete) and a torn tail; returns the terms left.
function repairTerms(dir, path, count) {
  const { entries, size } = readTerms(dir, path);
  const kept = entries.filter((e) => e.seq < count);
  const end = entries.length ? entries[entries.length - 1].end : 0;
  if (kept.length !== entries.length || end !== size) {
    writeAtomic(dir, path, concat(kept.map((e) => termEntry(e.seq, e.term))), false);
  }
  return new Set(kept.map((e) => e.term));
}

// ---------------------------------------------------------------------------
// Files

// `wasi:filesystem` sizes and offsets are u64: BigInt in StarlingMonkey.
const rd = (d, len, off) => d.read(BigInt(len), BigInt(off));
const fileSize = (d) => count(d.stat().size);

const FOLLOW = { symlinkFollow: false };
const READ = { read: true };
const WRITE = { read: true, write: true };

function withFile(dir, path, open, flags, f) {
  const d = dir.openAt(FOLLOW, path, open, flags);
  try {
    return f(d);
  } finally {
    d[Symbol.dispose]?.();
  }
}
const missing = (e) => codeOf(e) === 'no-entry';

// The file at `path` (relative to `dir`) from offset `from` to its end, or
// null if it does not exist.
function readAll(dir, path, from = 0) {
  try {
    return withFile(dir, path, {}, READ, (d) => {
      const parts = [];
      let off = from;
      for (;;) {
        const [chunk, eof] = rd(d, CHUNK, off);
        parts.push(chunk);
        off += chunk.length;
        if (eof || chunk.length === 0) break;
      }
      return concat(parts);
    });
  } catch (e) {
    if (missing(e)) return null;
    throw e;
  }
}

function writeAt(d, bytes, offset) {
  let done = 0;
  while (done < bytes.length) {
    done += count(d.write(bytes.subarray(done), BigInt(offset + done)));
  }
}

// Writes `bytes` to `path` through a temporary file and a rename: readers
// see the old file or the new one, never a part.
function writeAtomic(dir, path, bytes, fsync) {
  const tmp = `${path}.tmp-${unique()}`;
  withFile(dir, tmp, { create: true, truncate: true }, WRITE, (d) => {
    writeAt(d, bytes, 0);
    if (fsync) d.syncData();
  });
  dir.renameAt(tmp, dir, path);
}

function appendBytes(dir, path, bytes) {
  withFile(dir, path, { create: true }, WRITE, (d) => writeAt(d, bytes, fileSize(d)));
}

// Cuts the file back to `len` bytes after a failed write; a failure here
// must not hide the failure being reported.
function truncate(dir, path, len) {
  try {
    withFile(dir, path, {}, WRITE, (d) => d.setSize(BigInt(len)));
  } catch {}
}

function listDir(dir, path) {
  return withFile(dir, path, { directory: true }, READ, (d) => {
    const stream = d.readDirectory();
    const names = [];
    try {
      for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) names.push(e);
    } finally {
      stream[Symbol.dispose]?.();
    }
    return names;
  });
}

function removeTree(dir, path) {
  try {
    for (const e of listDir(dir, path)) {
      const p = `${path}/${e.name}`;
      if (e.type === 'directory') removeTree(dir, p);
      else dir.unlinkFileAt(p);
    }
    dir.removeDirectoryAt(path);
  } catch (e) {
    if (!missing(e)) throw e;
  }
}

// A name no other instance picks at the same moment (instances race).
const unique = () => `${nowNs()}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;

// Removes what a failed step left behind; a failure here must not hide the
// failure being reported.
function cleanUp(dir, path) {
  try {
    removeTree(dir, path);
  } catch {}
}

function nowNs() {
  const t = now();
  return Number(t.seconds) * 1e9 + t.nanoseconds;
}

// A `u64` from the host as a Number for counts, seqs and sizes: anything
// beyond 2^53 is more than any tape holds, so it becomes Infinity.
const count = (n) => (n > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(n));

// ---------------------------------------------------------------------------
// The store

const ID_OK = /^[A-Za-z0-9._-]{1,128}$/;
function checkId(id) {
  if (!ID_OK.test(id) || id.startsWith('.') || id.includes('..')) {
    fail('invalid-input', `invalid tape id ${JSON.stringify(id)}: 1 to 128 of A-Z a-z 0-9 - _ ., not starting with '.' and without '..'`);
  }
}

const STATE_OF = { completed: 'finished', crashed: 'crashed', aborted: 'aborted' };

let store = null;

class Store {
  constructor(configJson) {
    let config;
    try {
      config = JSON.parse(configJson || '{}');
    } catch (e) {
      fail('invalid-input', `config is not JSON: ${e.message}`);
    }
    if (!config || typeof config !== 'object' || Array.isArray(config)) fail('invalid-input', 'config must be a JSON object');
    for (const k of Object.keys(config)) {
      if (k !== 'root' && k !== 'fsync') fail('invalid-input', `unknown setting \`${k}\` (known: root, fsync)`);
    }
    const root = config.root ?? '/tapes';
    if (typeof root !== 'string' || !root) fail('invalid-input', 'setting `root` must be a non-empty string');
    this.fsync = config.fsync ?? true;
    if (typeof this.fsync !== 'boolean') fail('invalid-input', 'setting `fsync` must be true or false');
    // The root is a preopen, or a directory below one.
    const pre = getDirectories().find(([, p]) => root === p || root.startsWith(p.endsWith('/') ? p : `${p}/`));
    if (!pre) fail('invalid-input', `setting \`root\`: ${root} is not inside a granted directory`);
    const [dir, at] = pre;
    const rel = root.slice(at.length).replace(/^\/+/, '');
    this.dir = dir;
    this.base = rel ? `${rel}/` : '';
    for (const d of [rel, `${this.base}tapes`, `${this.base}trash`]) {
      if (!d) continue;
      try {
        dir.createDirectoryAt(d);
      } catch (e) {
        if (codeOf(e) !== 'exist') fail('io', `cannot create ${root}/${d}: ${codeOf(e)} (is it granted read-write?)`);
      }
    }
    this.logs = new Map(); // `${id}/${stamp}` -> { count, bytes, validLen }
  }

  path(id, file) {
    return file ? `${this.base}tapes/${id}/${file}` : `${this.base}tapes/${id}`;
  }

  readJson(id, file) {
    const b = readAll(this.dir, this.path(id, file));
    return b === null ? null : JSON.parse(utf8.decode(b));
  }

  // The stored header, its `createdAt` back to a BigInt, its `envelope` to
  // bytes (null for a tape of format 1, which had none).
  header(id) {
    const stored = this.readJson(id, 'header.json');
    if (stored) {
      stored.header.createdAt = BigInt(stored.header.createdAt);
      stored.header.envelope = bytesOrNull(stored.header.envelope);
    }
    return stored;
  }

  // The end record, its `endedAt` back to a BigInt, its `seal` to bytes.
  end(id) {
    const end = this.readJson(id, 'end.json');
    if (end) {
      end.endedAt = BigInt(end.endedAt);
      end.seal = bytesOrNull(end.seal);
    }
    return end;
  }

  require(id) {
    checkId(id);
    const h = this.header(id);
    if (h === null) fail('not-found', `no tape ${id}`);
    return h;
  }

  // Counts the intact frames of a tape, reading only what is new.
  log(id, stored) {
    const key = `${id}/${stored.stamp}`;
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = { count: 0, bytes: 0, validLen: 0 }));
    const data = readAll(this.dir, this.path(id, 'frames'), log.validLen);
    if (data === null) fail('not-found', `no tape ${id}`);
    let at = 0;
    for (;;) {
      const r = decodeAt(data, at);
      if (!r.frame) break;
      log.count++;
      log.bytes += r.frame.payload.length;
      at = r.end;
    }
    log.validLen += at;
    return log;
  }

  info(id, stored) {
    stored = stored ?? this.require(id);
    const end = this.end(id);
    if (end) {
      return { header: stored.header, state: end.state, frameCount: end.frameCount, byteCount: end.byteCount, endedAt: end.endedAt, digest: end.digest, seal: end.seal, stamp: stored.stamp };
    }
    const log = this.log(id, stored);
    return { header: stored.header, state: 'recording', frameCount: log.count, byteCount: log.bytes, endedAt: null, digest: null, seal: null, stamp: stored.stamp };
  }

  // The tape's directory is built in the trash and renamed into place, as
  // `save` does: a rename never replaces a non-empty directory, so of two
  // instances creating (or saving) the same id exactly one wins, and no
  // reader ever sees a half-made tape.
  create(header) {
    checkId(header.id);
    if (this.header(header.id) !== null) fail('already-exists', `tape ${header.id} exists already`);
    const staging = `${this.base}trash/create-${header.id}-${unique()}`;
    const stored = { format: FORMAT, header: plainHeader(header), stamp: nowNs() };
    try {
      this.dir.createDirectoryAt(staging);
      for (const f of ['frames', 'terms', 'seek']) {
        withFile(this.dir, `${staging}/${f}`, { create: true }, WRITE, () => {});
      }
      writeAtomic(this.dir, `${staging}/header.json`, headerJson(stored), this.fsync);
      this.dir.renameAt(staging, this.dir, this.path(header.id));
    } catch (e) {
      cleanUp(this.dir, staging);
      const taken = ['exist', 'not-empty'].includes(codeOf(e)) || this.header(header.id) !== null;
      if (taken) fail('already-exists', `tape ${header.id} exists already`);
      throw e;
    }
    return new Writer(this, header.id, stored, { count: 0, bytes: 0, validLen: 0 }, new Set());
  }

  resume(id) {
    const stored = this.require(id);
    if (this.end(id)) fail('invalid-input', `tape ${id} has ended; only a recording tape can be resumed`);
    const log = this.log(id, stored);
    // Cut off a torn record left by an instance that stopped mid-append, and
    // index entries written for frames that were not stored.
    withFile(this.dir, this.path(id, 'frames'), {}, WRITE, (d) => {
      if (fileSize(d) > log.validLen) d.setSize(BigInt(log.validLen));
    });
    const known = repairTerms(this.dir, this.path(id, 'terms'), log.count);
    return new Writer(this, id, stored, { ...log }, known);
  }

  save(header, frames, summary, reason) {
    checkId(header.id);
    checkConsecutive(frames, 0);
    checkSummary(summary, frames.length, frames.reduce((n, f) => n + f.payload.length, 0), header.id);
    if (this.header(header.id) !== null) fail('already-exists', `tape ${header.id} exists already`);
    const staging = `${this.base}trash/save-${header.id}-${unique()}`;
    const stored = { format: FORMAT, header: plainHeader(header), stamp: nowNs() };
    try {
      this.dir.createDirectoryAt(staging);
      const records = frames.map(encode);
      withFile(this.dir, `${staging}/frames`, { create: true }, WRITE, (d) => {
        writeAt(d, concat(records), 0);
        if (this.fsync) d.syncData();
      });
      appendBytes(this.dir, `${staging}/terms`, termEntries(frames, new Set()));
      appendBytes(this.dir, `${staging}/seek`, seekEntries(frames, records, 0));
      writeAtomic(this.dir, `${staging}/header.json`, headerJson(stored), this.fsync);
      writeAtomic(this.dir, `${staging}/end.json`, endJson(summary, reason), this.fsync);
      this.dir.renameAt(staging, this.dir, this.path(header.id));
    } catch (e) {
      cleanUp(this.dir, staging);
      // The rename refuses an existing directory: another instance created
      // or saved the id meanwhile (maybe still writing its header).
      const taken = ['exist', 'not-empty'].includes(codeOf(e)) || this.header(header.id) !== null;
      if (taken) fail('already-exists', `tape ${header.id} exists already`);
      throw e;
    }
    return this.info(header.id);
  }

  delete(id) {
    this.require(id);
    const gone = `${this.base}trash/${id}-${unique()}`;
    try {
      this.dir.renameAt(this.path(id), this.dir, gone);
    } catch (e) {
      if (missing(e)) fail('not-found', `no tape ${id}`);
      throw e;
    }
    cleanUp(this.dir, gone);
  }

  readFrames(id, fromSeq, maxFrames, maxBytes) {
    if (maxFrames < 1) fail('invalid-input', `read of tape ${id}: max-frames must be at least 1`);
    this.require(id);
    const out = [];
    let total = 0;
    try {
      withFile(this.dir, this.path(id, 'frames'), {}, READ, (d) => {
        let off = this.seekStart(id, d, fromSeq);
        // Hop over earlier frames by their heads, without reading their
        // payloads (a tape of 1 MiB frames read one frame at a time).
        for (;;) {
          const [head] = rd(d, HEADER, off);
          const size = recordSize(head);
          if (!size) return;
          if (getU64(viewOf(head), 8) >= fromSeq) break;
          off += size;
        }
        let buf = new Uint8Array(0);
        let at = 0;
        let eof = false;
        for (;;) {
          const r = decodeAt(buf, at);
          if (!r.frame) {
            if (r.corrupt || eof) return;
            const [chunk, e] = rd(d, Math.max(CHUNK, r.need), off);
            off += chunk.length;
            eof = e || chunk.length === 0;
            buf = concat([buf.subarray(at), chunk]);
            at = 0;
            continue;
          }
          at = r.end;
          const f = r.frame;
          if (f.seq < fromSeq) continue;
          if (out.length && total + f.payload.length > maxBytes) return;
          out.push(f);
          total += f.payload.length;
          if (out.length >= maxFrames || total >= maxBytes) return;
        }
      });
    } catch (e) {
      if (missing(e)) fail('not-found', `no tape ${id}`);
      throw e;
    }
    return out;
  }

  // The offset of the last indexed frame at or before `fromSeq`, if the
  // record there really is that frame; else 0.
  seekStart(id, d, fromSeq) {
    const idx = readAll(this.dir, this.path(id, 'seek'));
    if (!idx) return 0;
    const v = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
    let best = null;
    for (let k = 0; k + 16 <= idx.length; k += 16) {
      const seq = getU64(v, k);
      if (seq > fromSeq) break;
      best = [seq, getU64(v, k + 8)];
    }
    if (!best) return 0;
    const [head] = rd(d, HEADER, best[1]);
    const size = recordSize(head);
    if (!size) return 0;
    const [rec] = rd(d, size, best[1]);
    const r = decodeAt(rec, 0);
    return r.frame && r.frame.seq === best[0] ? best[1] : 0;
  }

  allInfos() {
    const infos = [];
    for (const e of listDir(this.dir, `${this.base}tapes`)) {
      try {
        const stored = this.header(e.name);
        if (stored) infos.push(this.info(e.name, stored));
      } catch (err) {
        if (!(err instanceof StoreError && err.tag === 'not-found') && !missing(err)) throw err;
      }
    }
    return infos;
  }

  page(matches, cursor, limit) {
    if (!(limit >= 1 && limit <= MAX_LIMIT)) fail('invalid-input', `limit ${limit} is out of range 1..=${MAX_LIMIT}`);
    let snapshot = nowNs();
    let after = null;
    if (cursor !== undefined && cursor !== null) [snapshot, after] = parseCursor(cursor);
    let infos = this.allInfos().filter((i) => i.stamp <= snapshot && matches(i));
    infos.sort((a, b) => -compareKey(a, b));
    if (after) infos = infos.filter((i) => compareKey(i, after) < 0);
    const page = infos.slice(0, limit);
    let next;
    if (infos.length > limit) {
      const last = page[page.length - 1].header;
      next = `js1:${snapshot}:${last.createdAt}:${last.id}`;
    }
    return { tapes: page.map(infoOut), nextCursor: next };
  }

  // Whether every one of `terms` is among the terms of the tape's stored
  // frames (exact equality; not necessarily the same frame).
  hasTerms(info, terms) {
    if (!terms.length) return true;
    const known = termsBelow(this.dir, this.path(info.header.id, 'terms'), info.frameCount);
    return terms.every((t) => known.has(t));
  }

  containsText(id, needle) {
    const data = readAll(this.dir, this.path(id, 'frames'));
    if (!data) return false;
    for (let at = 0; ; ) {
      const r = decodeAt(data, at);
      if (!r.frame) return false;
      if (indexOf(r.frame.payload, needle) >= 0) return true;
      at = r.end;
    }
  }

  stats() {
    const infos = this.allInfos();
    let stored = 0;
    // A tape deleted while we walk (its directory renamed away) is skipped,
    // not the rest of the walk.
    const walk = (path) => {
      let entries;
      try {
        entries = listDir(this.dir, path);
      } catch (err) {
        if (missing(err)) return;
        throw err;
      }
      for (const e of entries) {
        const p = `${path}/${e.name}`;
        if (e.type === 'directory') walk(p);
        else {
          try {
            stored += count(this.dir.statAt(FOLLOW, p).size);
          } catch (err) {
            if (!missing(err)) throw err;
          }
        }
      }
    };
    walk(`${this.base}tapes`);
    return {
      tapeCount: BigInt(infos.length),
      recordingCount: BigInt(infos.filter((i) => i.state === 'recording').length),
      frameCount: BigInt(infos.reduce((n, i) => n + i.frameCount, 0)),
      byteCount: BigInt(infos.reduce((n, i) => n + i.byteCount, 0)),
      storedBytes: BigInt(stored),
    };
  }
}

function indexOf(hay, needle) {
  if (needle.length === 0) return 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

function compareKey(a, b) {
  const ha = a.header ?? a;
  const hb = b.header ?? b;
  if (ha.createdAt !== hb.createdAt) return ha.createdAt < hb.createdAt ? -1 : 1;
  return ha.id < hb.id ? -1 : ha.id > hb.id ? 1 : 0;
}

function parseCursor(cursor) {
  const m = /^js1:(\d+):(\d+):(.+)$/.exec(cursor);
  if (!m || !ID_OK.test(m[3])) fail('invalid-input', `cursor ${JSON.stringify(cursor)} was not issued by this provider`);
  return [Number(m[1]), { createdAt: BigInt(m[2]), id: m[3] }];
}

function checkConsecutive(frames, first) {
  frames.forEach((f, i) => {
    if (f.seq !== first + i) {
      fail('invalid-input', `frame ${i} of the batch has seq ${f.seq}, expected ${first + i} (sequence numbers must be consecutive)`);
    }
  });
}

function checkSummary(s, n, bytes, id) {
  if (count(s.frameCount) !== n || count(s.byteCount) !== bytes) {
    fail('invalid-input', `summary of tape ${id} says ${s.frameCount} frames and ${s.byteCount} bytes; stored are ${n} frames and ${bytes} bytes`);
  }
}

// JSON with every BigInt as a decimal string.
const toJson = (v) => utf8.encode(JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x)));

// header.json's bytes; the envelope as hex.
const headerJson = (stored) => toJson({ ...stored, header: { ...stored.header, envelope: hexOrNull(stored.header.envelope) } });

// end.json's bytes: the end state and the summary, the seal as hex.
function endJson(s, reason) {
  return toJson({ state: STATE_OF[reason], frameCount: count(s.frameCount), byteCount: count(s.byteCount), endedAt: s.endedAt, digest: s.digest ?? null, seal: hexOrNull(s.seal) });
}

// Whether an end record says what finishing with summary `s` would.
function sameEnd(end, s, reason) {
  return end.state === STATE_OF[reason] && end.frameCount === count(s.frameCount) && end.byteCount === count(s.byteCount) && (end.digest ?? null) === (s.digest ?? null) && sameBytes(end.seal, s.seal);
}

// Index entries for every SEEK_EVERY-th of `frames` (encoded as `records`),
// written from `offset` on.
function seekEntries(frames, records, offset) {
  const out = [];
  frames.forEach((f, i) => {
    if (f.seq % SEEK_EVERY === 0) {
      const e = new Uint8Array(16);
      putU64(viewOf(e), 0, f.seq);
      putU64(viewOf(e), 8, offset);
      out.push(e);
    }
    offset += records[i].length;
  });
  return concat(out);
}

// ---------------------------------------------------------------------------
// Conversions between the component's values and the store's

const DIRECTIONS = ['client-to-server', 'server-to-client'];

function frameIn(f) {
  return {
    seq: count(f.seq),
    timestamp: f.timestamp,
    direction: DIRECTIONS.indexOf(f.direction),
    payload: f.payload,
    flags: f.flags?.notJson ? 1 : 0,
    terms: [...f.terms],
    attributes: f.attributes.map(([k, v]) => [k, v]),
  };
}

function frameOut(f) {
  return { seq: BigInt(f.seq), timestamp: f.timestamp, direction: DIRECTIONS[f.direction], payload: f.payload, flags: { notJson: (f.flags & 1) === 1 }, terms: f.terms, attributes: f.attributes };
}

function plainHeader(h) {
  return { id: h.id, sessionId: h.sessionId, name: h.name, tags: h.tags.map(([k, v]) => [k, v]), createdAt: h.createdAt, envelope: h.envelope ?? null };
}

function infoOut(i) {
  const header = { ...i.header, envelope: i.header.envelope ?? undefined };
  return { header, state: i.state, frameCount: BigInt(i.frameCount), byteCount: BigInt(i.byteCount), endedAt: i.endedAt ?? undefined, digest: i.digest ?? undefined, seal: i.seal ?? undefined };
}

function filterMatches(f) {
  const name = f.nameContains != null ? f.nameContains.toLowerCase() : null;
  return (i) => {
    const h = i.header;
    if (f.sessionId != null && h.sessionId !== f.sessionId) return false;
    if (name !== null && !h.name.toLowerCase().includes(name)) return false;
    if (!f.tags.every(([k, v]) => h.tags.some(([hk, hv]) => hk === k && hv === v))) return false;
    if (f.createdSince != null && h.createdAt < f.createdSince) return false;
    if (f.createdUntil != null && h.createdAt >= f.createdUntil) return false;
    if (f.state != null && i.state !== f.state) return false;
    return true;
  };
}

function theStore() {
  if (!store) fail('invalid-input', 'init was not called');
  return store;
}

// ---------------------------------------------------------------------------
// The exports

class Writer {
  constructor(s, id, stored, log, known) {
    this.s = s;
    this.id = id;
    this.stored = stored;
    this.log = log;
    this.known = known; // the terms already in the tape's index
  }

  ended() {
    if (this.s.header(this.id) === null) fail('not-found', `tape ${this.id} was deleted`);
    return this.s.end(this.id);
  }

  append(frames) {
    if (!frames.length) return this.log.count;
    if (this.ended()) fail('invalid-input', `tape ${this.id} has ended; nothing can be appended`);
    checkConsecutive(frames, frames[0].seq);
    const fresh = frames.filter((f) => f.seq >= this.log.count);
    if (!fresh.length) return this.log.count;
    if (fresh[0].seq !== this.log.count) {
      fail('invalid-input', `append to tape ${this.id}: first new frame has seq ${fresh[0].seq}, expected ${this.log.count} (a gap)`);
    }
    const records = fresh.map(encode);
    const data = concat(records);
    const known = new Set(this.known);
    const entries = termEntries(fresh, known);
    const path = this.s.path(this.id, 'frames');
    const termsPath = this.s.path(this.id, 'terms');
    // The index entries go first: they count only once their frames are
    // stored, so a failure in between leaves nothing visible.
    let termsLen = null;
    try {
      if (entries.length) {
        withFile(this.s.dir, termsPath, { create: true }, WRITE, (d) => {
          termsLen = fileSize(d);
          writeAt(d, entries, termsLen);
        });
      }
      withFile(this.s.dir, path, {}, WRITE, (d) => writeAt(d, data, this.log.validLen));
    } catch (e) {
      truncate(this.s.dir, path, this.log.validLen);
      if (termsLen !== null) truncate(this.s.dir, termsPath, termsLen);
      throw e;
    }
    this.known = known;
    appendBytes(this.s.dir, this.s.path(this.id, 'seek'), seekEntries(fresh, records, this.log.validLen));
    this.log.count += fresh.length;
    this.log.bytes += fresh.reduce((n, f) => n + f.payload.length, 0);
    this.log.validLen += data.length;
    return this.log.count;
  }

  // Records `summary` (with its digest and seal) and ends the tape as
  // `reason` says; the same finish again is a no-op.
  finish(summary, reason) {
    const end = this.ended();
    if (end) {
      if (sameEnd(end, summary, reason)) return this.s.info(this.id);
      fail('invalid-input', `tape ${this.id} has ended already, differently`);
    }
    checkSummary(summary, this.log.count, this.log.bytes, this.id);
    if (this.s.fsync) withFile(this.s.dir, this.s.path(this.id, 'frames'), {}, WRITE, (d) => d.syncData());
    writeAtomic(this.s.dir, this.s.path(this.id, 'end.json'), endJson(summary, reason), this.s.fsync);
    return this.s.info(this.id);
  }

  abort() {
    if (this.ended()) return;
    const summary = { frameCount: BigInt(this.log.count), byteCount: BigInt(this.log.bytes), endedAt: BigInt(Math.floor(nowNs() / 1000)), digest: null, seal: null };
    writeAtomic(this.s.dir, this.s.path(this.id, 'end.json'), endJson(summary, 'aborted'), this.s.fsync);
  }
}

class TapeWriter {
  constructor(writer) {
    this.w = writer;
  }
  nextSeq() {
    return BigInt(this.w.log.count);
  }
  append(frames) {
    return guarded(() => BigInt(this.w.append(frames.map(frameIn))));
  }
  finish(summary, reason) {
    return guarded(() => infoOut(this.w.finish(summary, reason)));
  }
  abort(reason) {
    guarded(() => this.w.abort(reason));
  }
}

export const tapeStorage = {
  TapeWriter,
  init(config) {
    return guarded(() => {
      store = new Store(config);
      return { name: NAME, version: VERSION, capabilities: { delete: true, search: true, textSearch: true } };
    });
  },
  create(header) {
    return guarded(() => new TapeWriter(theStore().create(header)));
  },
  resume(id) {
    return guarded(() => new TapeWriter(theStore().resume(id)));
  },
  save(header, frames, summary, reason) {
    return guarded(() => infoOut(theStore().save(header, frames.map(frameIn), summary, reason)));
  },
  get(id) {
    return guarded(() => infoOut(theStore().info(id)));
  },
  // Every entry has its own result (`{ tag: 'ok', val }` or `{ tag: 'err',
  // val }`), and one failing changes nothing for the others.
  appendMany(appends) {
    const seen = new Set();
    return appends.map(({ id, frames }) => {
      try {
        if (seen.has(id)) fail('invalid-input', `tape ${id} appears more than once in one append-many`);
        seen.add(id);
        return { tag: 'ok', val: BigInt(theStore().resume(id).append(frames.map(frameIn))) };
      } catch (e) {
        return { tag: 'err', val: errorOf(e) };
      }
    });
  },
  readFrames(id, fromSeq, maxFrames, maxBytes) {
    return guarded(() => theStore().readFrames(id, count(fromSeq), maxFrames, count(maxBytes)).map(frameOut));
  },
  delete(id) {
    guarded(() => theStore().delete(id));
  },
  list(filter, cursor, limit) {
    return guarded(() => theStore().page(filterMatches(filter), cursor, limit));
  },
  search(query, cursor, limit) {
    return guarded(() => {
      const s = theStore();
      const base = filterMatches(query.filter);
      const needle = query.text != null ? utf8.encode(query.text) : null;
      return s.page(
        (i) => base(i) && s.hasTerms(i, query.terms) && (needle === null || s.containsText(i.header.id, needle)),
        cursor,
        limit,
      );
    });
  },
  stats() {
    return guarded(() => theStore().stats());
  },
};
