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
//   tapes/<id>/methods       the tape's JSON-RPC methods, one JSON string per line
//   tapes/<id>/seek          (seq, offset) of every 1024th frame, 16 bytes each
//   tapes/<id>/end.json      how the tape ended, written once, atomically
//   trash/                   tapes being deleted or saved
//
// A frame record: u32 payload length, u32 CRC-32 of the rest, u64 seq,
// u64 timestamp, u8 direction, u8 flags, 2 bytes padding, then the payload
// (little endian). A torn record at the end is ignored by readers and cut off
// by `resume`. Creation and `save` build the directory in `trash/` and rename
// it into place (a rename never replaces a non-empty directory, so one of
// two racers wins), the end is an atomic rename of `end.json`, deletion a
// rename into `trash/`: every instance sees the same facts, whichever
// acknowledged them. Every descriptor is dropped after use
// (the host caps open resources).

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { now } from 'wasi:clocks/wall-clock@0.2.12';

const NAME = 'js';
const VERSION = '0.1.0';
const HEADER = 28;
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
// Runs `f`; anything that is not already a storage error becomes `io` (a
// filesystem error) or `internal` (a bug): a provider must not trap.
function guarded(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof StoreError) throw { tag: e.tag, val: e.val };
    if (e instanceof Error) throw { tag: 'internal', val: `${e.name}: ${e.message}` };
    throw { tag: 'io', val: `filesystem error: ${codeOf(e)}` };
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
  // Strict: invalid UTF-8 throws (a payload that is not text has no method).
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

// A frame as stored: { seq, timestamp, direction (0|1), payload, flags (bit 0: not-json) }.
function encode(f) {
  const rec = new Uint8Array(HEADER + f.payload.length);
  const v = new DataView(rec.buffer);
  v.setUint32(0, f.payload.length, true);
  putU64(v, 8, f.seq);
  v.setBigUint64(16, f.timestamp, true);
  rec[24] = f.direction;
  rec[25] = f.flags;
  rec.set(f.payload, HEADER);
  v.setUint32(4, crc32(rec.subarray(8)), true);
  return rec;
}

// Decodes the record at `buf[at..]`: { frame, end }, or null if it is torn
// (incomplete) or corrupt; `need` says how many bytes a torn one needs.
function decodeAt(buf, at) {
  if (buf.length - at < HEADER) return { need: HEADER };
  const v = new DataView(buf.buffer, buf.byteOffset + at);
  const len = v.getUint32(0, true);
  if (buf.length - at < HEADER + len) return { need: HEADER + len };
  const body = buf.subarray(at + 8, at + HEADER + len);
  if (crc32(body) !== v.getUint32(4, true)) return { corrupt: true };
  return {
    frame: {
      seq: getU64(v, 8),
      timestamp: v.getBigUint64(16, true),
      direction: buf[at + 24],
      flags: buf[at + 25],
      payload: buf.slice(at + HEADER, at + HEADER + len),
    },
    end: at + HEADER + len,
  };
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

function jsonRpcMethod(payload) {
  let i = 0;
  while (i < payload.length && (payload[i] === 32 || payload[i] === 9 || payload[i] === 10 || payload[i] === 13)) i++;
  if (payload[i] !== 123) return null; // '{'
  try {
    const v = JSON.parse(utf8.decode(payload));
    return v && typeof v === 'object' && !Array.isArray(v) && typeof v.method === 'string' ? v.method : null;
  } catch {
    return null;
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

  // The stored header, its `createdAt` back to a BigInt.
  header(id) {
    const stored = this.readJson(id, 'header.json');
    if (stored) stored.header.createdAt = BigInt(stored.header.createdAt);
    return stored;
  }

  // The end record, its `endedAt` back to a BigInt.
  end(id) {
    const end = this.readJson(id, 'end.json');
    if (end) end.endedAt = BigInt(end.endedAt);
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
      return { header: stored.header, state: end.state, frameCount: end.frameCount, byteCount: end.byteCount, endedAt: end.endedAt, digest: end.digest ?? undefined, stamp: stored.stamp };
    }
    const log = this.log(id, stored);
    return { header: stored.header, state: 'recording', frameCount: log.count, byteCount: log.bytes, endedAt: undefined, digest: undefined, stamp: stored.stamp };
  }

  // The tape's directory is built in the trash and renamed into place, as
  // `save` does: a rename never replaces a non-empty directory, so of two
  // instances creating (or saving) the same id exactly one wins, and no
  // reader ever sees a half-made tape.
  create(header) {
    checkId(header.id);
    if (this.header(header.id) !== null) fail('already-exists', `tape ${header.id} exists already`);
    const staging = `${this.base}trash/create-${header.id}-${unique()}`;
    const stored = { format: 1, header: plainHeader(header), stamp: nowNs() };
    try {
      this.dir.createDirectoryAt(staging);
      for (const f of ['frames', 'methods', 'seek']) {
        withFile(this.dir, `${staging}/${f}`, { create: true }, WRITE, () => {});
      }
      writeAtomic(this.dir, `${staging}/header.json`, toJson(stored), this.fsync);
      this.dir.renameAt(staging, this.dir, this.path(header.id));
    } catch (e) {
      cleanUp(this.dir, staging);
      const taken = ['exist', 'not-empty'].includes(codeOf(e)) || this.header(header.id) !== null;
      if (taken) fail('already-exists', `tape ${header.id} exists already`);
      throw e;
    }
    return new Writer(this, header.id, stored, { count: 0, bytes: 0, validLen: 0 });
  }

  resume(id) {
    const stored = this.require(id);
    if (this.end(id)) fail('invalid-input', `tape ${id} has ended; only a recording tape can be resumed`);
    const log = this.log(id, stored);
    withFile(this.dir, this.path(id, 'frames'), {}, WRITE, (d) => {
      if (fileSize(d) > log.validLen) d.setSize(BigInt(log.validLen));
    });
    return new Writer(this, id, stored, { ...log });
  }

  save(header, frames, summary, reason) {
    checkId(header.id);
    checkConsecutive(frames, 0);
    checkSummary(summary, frames.length, frames.reduce((n, f) => n + f.payload.length, 0), header.id);
    if (this.header(header.id) !== null) fail('already-exists', `tape ${header.id} exists already`);
    const staging = `${this.base}trash/save-${header.id}-${unique()}`;
    const stored = { format: 1, header: plainHeader(header), stamp: nowNs() };
    try {
      this.dir.createDirectoryAt(staging);
      const records = frames.map(encode);
      withFile(this.dir, `${staging}/frames`, { create: true }, WRITE, (d) => {
        writeAt(d, concat(records), 0);
        if (this.fsync) d.syncData();
      });
      appendBytes(this.dir, `${staging}/methods`, methodLines(frames, new Set()));
      appendBytes(this.dir, `${staging}/seek`, seekEntries(frames, 0));
      writeAtomic(this.dir, `${staging}/header.json`, (toJson(stored)), this.fsync);
      writeAtomic(this.dir, `${staging}/end.json`, (toJson(endRecord(summary, reason))), this.fsync);
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
        // Hop over earlier frames by their headers, without reading their
        // payloads (a tape of 1 MiB frames read one frame at a time).
        for (;;) {
          const [head] = rd(d, HEADER, off);
          if (head.length < HEADER) return;
          const hv = new DataView(head.buffer, head.byteOffset);
          if (getU64(hv, 8) >= fromSeq) break;
          off += HEADER + hv.getUint32(0, true);
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
    if (head.length < HEADER) return 0;
    const len = new DataView(head.buffer, head.byteOffset).getUint32(0, true);
    const [rec] = rd(d, HEADER + len, best[1]);
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

  methods(id) {
    const b = readAll(this.dir, this.path(id, 'methods'));
    if (!b) return new Set();
    return new Set(utf8.decode(b).split('\n').filter(Boolean).map((l) => JSON.parse(l)));
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

function endRecord(s, reason) {
  return { state: STATE_OF[reason], frameCount: count(s.frameCount), byteCount: count(s.byteCount), endedAt: s.endedAt, digest: s.digest ?? null };
}

function methodLines(frames, known) {
  const lines = [];
  for (const f of frames) {
    if (f.flags & 1) continue;
    const m = jsonRpcMethod(f.payload);
    if (m !== null && !known.has(m)) {
      known.add(m);
      lines.push(JSON.stringify(m));
    }
  }
  return utf8.encode(lines.length ? `${lines.join('\n')}\n` : '');
}

function seekEntries(frames, offset) {
  const out = [];
  for (const f of frames) {
    if (f.seq % SEEK_EVERY === 0) {
      const e = new Uint8Array(16);
      const v = new DataView(e.buffer);
      putU64(v, 0, f.seq);
      putU64(v, 8, offset);
      out.push(e);
    }
    offset += HEADER + f.payload.length;
  }
  return concat(out);
}

// ---------------------------------------------------------------------------
// Conversions between the component's values and the store's

const DIRECTIONS = ['client-to-server', 'server-to-client'];

function frameIn(f) {
  return { seq: count(f.seq), timestamp: f.timestamp, direction: DIRECTIONS.indexOf(f.direction), payload: f.payload, flags: f.flags?.notJson ? 1 : 0 };
}

function frameOut(f) {
  return { seq: BigInt(f.seq), timestamp: f.timestamp, direction: DIRECTIONS[f.direction], payload: f.payload, flags: { notJson: (f.flags & 1) === 1 } };
}

function plainHeader(h) {
  return { id: h.id, sessionId: h.sessionId, name: h.name, tags: h.tags.map(([k, v]) => [k, v]), createdAt: h.createdAt };
}

function infoOut(i) {
  return { header: i.header, state: i.state, frameCount: BigInt(i.frameCount), byteCount: BigInt(i.byteCount), endedAt: i.endedAt ?? undefined, digest: i.digest ?? undefined };
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
  constructor(s, id, stored, log) {
    this.s = s;
    this.id = id;
    this.stored = stored;
    this.log = log;
    this.known = null;
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
    const data = concat(fresh.map(encode));
    const path = this.s.path(this.id, 'frames');
    try {
      withFile(this.s.dir, path, {}, WRITE, (d) => writeAt(d, data, this.log.validLen));
    } catch (e) {
      try {
        withFile(this.s.dir, path, {}, WRITE, (d) => d.setSize(BigInt(this.log.validLen)));
      } catch {}
      throw e;
    }
    appendBytes(this.s.dir, this.s.path(this.id, 'seek'), seekEntries(fresh, this.log.validLen));
    if (!this.known) this.known = this.s.methods(this.id);
    appendBytes(this.s.dir, this.s.path(this.id, 'methods'), methodLines(fresh, this.known));
    this.log.count += fresh.length;
    this.log.bytes += fresh.reduce((n, f) => n + f.payload.length, 0);
    this.log.validLen += data.length;
    return this.log.count;
  }

  finish(summary, reason) {
    if (reason === 'aborted') {
      this.abort('finished with reason aborted');
      return this.s.info(this.id);
    }
    const end = this.ended();
    if (end) {
      if (end.state === STATE_OF[reason] && end.frameCount === count(summary.frameCount) && end.byteCount === count(summary.byteCount) && (end.digest ?? null) === (summary.digest ?? null)) {
        return this.s.info(this.id);
      }
      fail('invalid-input', `tape ${this.id} has ended already, differently`);
    }
    checkSummary(summary, this.log.count, this.log.bytes, this.id);
    if (this.s.fsync) withFile(this.s.dir, this.s.path(this.id, 'frames'), {}, WRITE, (d) => d.syncData());
    writeAtomic(this.s.dir, this.s.path(this.id, 'end.json'), (toJson(endRecord(summary, reason))), this.s.fsync);
    return this.s.info(this.id);
  }

  abort() {
    if (this.ended()) return;
    const summary = { frameCount: BigInt(this.log.count), byteCount: BigInt(this.log.bytes), endedAt: BigInt(Math.floor(nowNs() / 1000)), digest: null };
    writeAtomic(this.s.dir, this.s.path(this.id, 'end.json'), (toJson(endRecord(summary, 'aborted'))), this.s.fsync);
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
        (i) => base(i) && (query.method == null || s.methods(i.header.id).has(query.method)) && (needle === null || s.containsText(i.header.id, needle)),
        cursor,
        limit,
      );
    });
  },
  stats() {
    return guarded(() => theStore().stats());
  },
};
