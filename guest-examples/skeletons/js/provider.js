// my-provider: a tapedeck storage provider, made by `tapedeck provider new`.
// Built with `npm run build` (jco componentize, the StarlingMonkey engine);
// the contract is wit/deps/tapedeck-storage/tape-storage.wit.
//
// One directory per tape under the granted root (`root`, default /tapes):
//
//   <id>/header   written once (the tape's directory is built under a
//                 temporary name and renamed into place: atomic)
//   <id>/frames   frame records, one write per append
//   <id>/end      written by finish or abort (temporary file + rename)
//
// Files, little-endian; a string or byte string is a u32 length and its
// bytes, a list a u32 count and its items, an option u8 0 or u8 1 and the
// value:
//   header: u64 stamp (when this provider stored the tape, for paging), id,
//           session id, name, tags, u64 created-at, envelope (option);
//   frames: per frame u8 0xF5, u8 1 on the last frame of an append (else 0),
//           u32 body length, body: u64 seq, u64 timestamp, u8 direction,
//           u8 not-json, payload, terms, attributes. Bytes after the last
//           record marked 1 are a torn append: readers ignore them, `resume`
//           cuts them off;
//   end:    u8 state (1 finished, 2 aborted, 3 crashed), then u8 1 and the
//           summary (u64 frames, u64 bytes, u64 ended-at, digest, seal) or u8 0.
//
// WIT u64 values are BigInt here; counts and offsets are Numbers inside.
// Simple rather than fast: each instance keeps an index of every tape's
// records it has looked at (extended by what was appended since), and every
// listing reads every tape. Replace what you need and keep
// `tapedeck provider test` passing.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import { now } from 'wasi:clocks/wall-clock@0.2.12';

const NAME = 'my-provider';
const VERSION = '0.1.0';
const MAGIC = 0xf5;
const STATES = ['recording', 'finished', 'aborted', 'crashed'];
const END_STATE = { completed: 'finished', aborted: 'aborted', crashed: 'crashed' };
const DIRECTIONS = ['client-to-server', 'server-to-client'];

// --- errors: a `storage-error` is thrown as { tag, val } --------------------

const fail = (tag, val) => {
  throw { tag, val };
};
const invalid = (msg) => fail('invalid-input', msg);
const STORAGE_ERRORS = ['not-found', 'already-exists', 'invalid-input', 'unsupported', 'quota-exceeded', 'io', 'internal'];
// What a `wasi:filesystem` call threw: its `error-code`.
const codeOf = (e) => (e && typeof e === 'object' ? (e.payload ?? e.val ?? `${e}`) : `${e}`);
function errorOf(e) {
  if (e && STORAGE_ERRORS.includes(e.tag) && typeof e.val === 'string') return e;
  if (e instanceof Error) return { tag: 'internal', val: `${e.name}: ${e.message}` };
  return { tag: 'io', val: `filesystem error: ${codeOf(e)}` };
}
// Runs `f`, turning any failure into a `storage-error` (never a trap).
function guarded(f) {
  try {
    return f();
  } catch (e) {
    throw errorOf(e);
  }
}

// --- encoding ----------------------------------------------------------------

const utf8In = new TextEncoder();
const utf8Out = new TextDecoder('utf-8', { fatal: true });

class Out {
  constructor() {
    this.parts = [];
    this.length = 0;
  }
  raw(b) {
    this.parts.push(b);
    this.length += b.length;
  }
  u8(v) {
    this.raw(Uint8Array.of(v));
  }
  u32(v) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.raw(b);
  }
  u64(v) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.raw(b);
  }
  bytes(v) {
    this.u32(v.length);
    this.raw(v);
  }
  str(v) {
    this.bytes(utf8In.encode(v));
  }
  pairs(v) {
    this.u32(v.length);
    for (const [k, val] of v) {
      this.str(k);
      this.str(val);
    }
  }
  opt(v, put) {
    if (v == null) this.u8(0);
    else {
      this.u8(1);
      put.call(this, v);
    }
  }
  done() {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

class In {
  constructor(buf, at = 0) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.at = at;
  }
  take(n) {
    if (this.at + n > this.buf.length) fail('io', 'a stored file is damaged (truncated)');
    this.at += n;
    return this.at - n;
  }
  u8() {
    return this.buf[this.take(1)];
  }
  u32() {
    return this.view.getUint32(this.take(4), true);
  }
  u64() {
    return this.view.getBigUint64(this.take(8), true);
  }
  bytes() {
    const n = this.u32();
    const at = this.take(n);
    return this.buf.slice(at, at + n);
  }
  str() {
    return utf8Out.decode(this.bytes());
  }
  pairs() {
    const out = [];
    for (let n = this.u32(); n > 0; n--) out.push([this.str(), this.str()]);
    return out;
  }
  opt(get) {
    return this.u8() ? get.call(this) : undefined;
  }
}

function encodeHeader(stamp, h) {
  const o = new Out();
  o.u64(stamp);
  o.str(h.id);
  o.str(h.sessionId);
  o.str(h.name);
  o.pairs(h.tags);
  o.u64(h.createdAt);
  o.opt(h.envelope, o.bytes);
  return o.done();
}

function decodeHeader(buf) {
  const i = new In(buf);
  const stamp = i.u64();
  const header = { id: i.str(), sessionId: i.str(), name: i.str(), tags: i.pairs(), createdAt: i.u64(), envelope: i.opt(i.bytes) };
  return { stamp, header };
}

function encodeFrames(frames) {
  const o = new Out();
  frames.forEach((f, n) => {
    const b = new Out();
    b.u64(f.seq);
    b.u64(f.timestamp);
    b.u8(DIRECTIONS.indexOf(f.direction));
    b.u8(f.flags?.notJson ? 1 : 0);
    b.bytes(f.payload);
    b.u32(f.terms.length);
    for (const t of f.terms) b.str(t);
    b.pairs(f.attributes);
    o.u8(MAGIC);
    o.u8(n === frames.length - 1 ? 1 : 0);
    o.bytes(b.done());
  });
  return o.done();
}

function decodeFrame(buf, start) {
  const i = new In(buf, start);
  const seq = i.u64();
  const timestamp = i.u64();
  const direction = DIRECTIONS[i.u8()];
  const flags = { notJson: i.u8() === 1 };
  const payload = i.bytes();
  const terms = [];
  for (let n = i.u32(); n > 0; n--) terms.push(i.str());
  return { seq, timestamp, direction, payload, flags, terms, attributes: i.pairs() };
}


function encodeEnd(state, summary) {
  const o = new Out();
  o.u8(STATES.indexOf(state));
  if (summary == null) o.u8(0);
  else {
    o.u8(1);
    o.u64(summary.frameCount);
    o.u64(summary.byteCount);
    o.u64(summary.endedAt);
    o.opt(summary.digest, o.str);
    o.opt(summary.seal, o.bytes);
  }
  return o.done();
}

function decodeEnd(buf) {
  const i = new In(buf);
  const state = STATES[i.u8()];
  const summary = i.u8()
    ? { frameCount: i.u64(), byteCount: i.u64(), endedAt: i.u64(), digest: i.opt(i.str), seal: i.opt(i.bytes) }
    : null;
  return { state, summary };
}

// --- files (wasi:filesystem; every descriptor is dropped after use: the host
// caps the resources an instance holds) ---------------------------------------

const NOFOLLOW = { symlinkFollow: false };

function withFile(dir, path, open, flags, f) {
  const d = dir.openAt(NOFOLLOW, path, open, flags);
  try {
    return f(d);
  } finally {
    d[Symbol.dispose]();
  }
}

// The whole file, or null if it does not exist.
function readFile(dir, path) {
  try {
    return withFile(dir, path, {}, { read: true }, (d) => {
      const parts = [];
      let size = 0;
      for (;;) {
        const [chunk, eof] = d.read(1n << 20n, BigInt(size));
        parts.push(chunk);
        size += chunk.length;
        if (eof || chunk.length === 0) break;
      }
      const out = new Uint8Array(size);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    });
  } catch (e) {
    if (codeOf(e) === 'no-entry') return null;
    throw e;
  }
}

function writeAt(d, bytes, offset) {
  for (let done = 0; done < bytes.length; ) {
    done += Number(d.write(bytes.subarray(done), BigInt(offset + done)));
  }
}

function writeNew(dir, path, bytes, sync) {
  withFile(dir, path, { create: true, exclusive: true }, { read: true, write: true }, (d) => {
    writeAt(d, bytes, 0);
    if (sync) d.syncData();
  });
}

// Writes `bytes` through a temporary file and a rename: all or nothing.
function writeAtomic(dir, path, bytes) {
  const tmp = `${path}.${scratchName('tmp')}`;
  writeNew(dir, tmp, bytes, true);
  dir.renameAt(tmp, dir, path);
}

function listDir(dir, path) {
  return withFile(dir, path, { directory: true }, { read: true }, (d) => {
    const stream = d.readDirectory();
    try {
      const names = [];
      for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) names.push(e);
      return names;
    } finally {
      stream[Symbol.dispose]();
    }
  });
}

function removeTree(dir, path) {
  for (const e of listDir(dir, path)) {
    const p = `${path}/${e.name}`;
    if (e.type === 'directory') removeTree(dir, p);
    else dir.unlinkFileAt(p);
  }
  dir.removeDirectoryAt(path);
}

function nowNs() {
  const t = now();
  return t.seconds * 1000000000n + BigInt(t.nanoseconds);
}

// A name no other instance picks (instances race).
const scratchName = (prefix) => `.${prefix}-${nowNs()}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`;

// --- the store ---------------------------------------------------------------

const ID_OK = /^[A-Za-z0-9._-]{1,128}$/;
function checkId(id) {
  if (!ID_OK.test(id) || id.startsWith('.') || id.includes('..')) {
    invalid(`invalid tape id ${JSON.stringify(id.slice(0, 40))}: use 1-128 of A-Z a-z 0-9 - _ ., not starting with . and without ..`);
  }
}

function checkConsecutive(frames, first) {
  frames.forEach((f, n) => {
    if (f.seq !== BigInt(first + n)) {
      invalid(`frame ${n} has seq ${f.seq}, expected ${first + n} (frames must be consecutive, without gaps)`);
    }
  });
}

function checkSummary(s, frames, bytes) {
  if (s.frameCount !== BigInt(frames) || s.byteCount !== BigInt(bytes)) {
    invalid(`the summary says ${s.frameCount} frames and ${s.byteCount} bytes, ${frames} frames and ${bytes} bytes are stored`);
  }
}

const sameBytes = (a, b) => (a == null ? b == null : b != null && a.length === b.length && a.every((x, i) => x === b[i]));
const sameSummary = (a, b) =>
  a.frameCount === b.frameCount && a.byteCount === b.byteCount && a.endedAt === b.endedAt && (a.digest ?? null) === (b.digest ?? null) && sameBytes(a.seal, b.seal);

function filterMatches(f, info) {
  const h = info.header;
  if (f.sessionId != null && h.sessionId !== f.sessionId) return false;
  if (f.nameContains != null && !h.name.toLowerCase().includes(f.nameContains.toLowerCase())) return false;
  if (!f.tags.every(([k, v]) => h.tags.some(([hk, hv]) => hk === k && hv === v))) return false;
  if (f.createdSince != null && h.createdAt < f.createdSince) return false;
  if (f.createdUntil != null && h.createdAt >= f.createdUntil) return false;
  if (f.state != null && info.state !== f.state) return false;
  return true;
}

function parseCursor(cursor) {
  const m = /^v1\.(\d+)\.(\d+)\.(.+)$/.exec(cursor);
  if (!m || !ID_OK.test(m[3]) || m[3].startsWith('.') || m[3].includes('..')) {
    invalid(`cursor ${JSON.stringify(cursor.slice(0, 80))} was not issued by this provider`);
  }
  return { snapshot: BigInt(m[1]), createdAt: BigInt(m[2]), id: m[3] };
}

// (created-at, id) descending: newest first.
const newestFirst = (a, b) => (a.createdAt !== b.createdAt ? (a.createdAt > b.createdAt ? -1 : 1) : a.id > b.id ? -1 : a.id < b.id ? 1 : 0);

class Store {
  constructor(configJson) {
    let config;
    try {
      config = JSON.parse(configJson);
    } catch (e) {
      invalid(`config is not JSON: ${e.message}`);
    }
    if (!config || typeof config !== 'object' || Array.isArray(config)) invalid('config must be a JSON object');
    for (const k of Object.keys(config)) {
      if (k !== 'root') invalid(`unknown config setting \`${k}\` (this provider knows \`root\`)`);
    }
    const root = config.root ?? '/tapes';
    if (typeof root !== 'string') invalid('config `root` must be a string');
    // The root is a granted directory (a preopen) or one below it.
    const pre = getDirectories().find(([, p]) => root === p || root.startsWith(p.endsWith('/') ? p : `${p}/`));
    if (!pre) invalid(`config \`root\`: ${root} is not inside a granted directory`);
    this.dir = pre[0];
    this.indexes = new Map(); // tape id -> its frame index (see `index`)
    const rel = root.slice(pre[1].length).replace(/^\/+/, '');
    this.base = rel ? `${rel}/` : '';
    if (rel) {
      try {
        this.dir.createDirectoryAt(rel);
      } catch (e) {
        if (codeOf(e) !== 'exist') throw e;
      }
    }
  }

  path(id, file) {
    return file ? `${this.base}${id}/${file}` : `${this.base}${id}`;
  }

  load(id) {
    checkId(id);
    const head = readFile(this.dir, this.path(id, 'header'));
    if (head === null) fail('not-found', `no tape \`${id}\``);
    const { stamp, header } = decodeHeader(head);
    const end = readFile(this.dir, this.path(id, 'end'));
    return { id, stamp, header, end: end === null ? null : decodeEnd(end) };
  }

  // Where the whole appends' records of a tape are: { starts, ends (body
  // offsets), lens (payload lengths), count, bytes, committed, size }.
  // Kept per tape between calls and extended by reading only what was
  // appended since (the file only grows past `committed`), in 1 MiB chunks:
  // a tape is never held in memory whole.
  index(tape) {
    const path = this.path(tape.id, 'frames');
    return withFile(this.dir, path, {}, { read: true }, (d) => {
      const size = Number(d.stat().size);
      let ix = this.indexes.get(tape.id);
      if (!ix || ix.stamp !== tape.stamp || size < ix.committed) {
        ix = { stamp: tape.stamp, starts: [], ends: [], lens: [], count: 0, bytes: 0, committed: 0 };
        this.indexes.set(tape.id, ix);
      }
      // Records after `committed` not yet known to end an append.
      const pending = [];
      let at = ix.committed;
      let chunk = new Uint8Array(0);
      let chunkAt = at;
      const bytesAt = (off, n) => {
        if (off < chunkAt || off + n > chunkAt + chunk.length) {
          chunkAt = off;
          chunk = d.read(BigInt(Math.max(n, 1 << 20)), BigInt(off))[0];
        }
        return chunk.subarray(off - chunkAt, off - chunkAt + n);
      };
      while (at + 6 <= size) {
        const head = bytesAt(at, 6);
        if (head.length < 6 || head[0] !== MAGIC) break;
        const len = new DataView(head.buffer, head.byteOffset, 6).getUint32(2, true);
        const start = at + 6;
        const end = start + len;
        if (end > size) break;
        const payload = bytesAt(start + 18, 4);
        if (payload.length < 4) break;
        pending.push([start, end, new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true)]);
        at = end;
        if (head[1] === 1) {
          for (const [s0, e0, l0] of pending) {
            ix.starts.push(s0);
            ix.ends.push(e0);
            ix.lens.push(l0);
            ix.bytes += l0;
          }
          ix.count += pending.length;
          pending.length = 0;
          ix.committed = at;
        }
      }
      ix.size = size;
      return ix;
    });
  }

  // The bytes of frames `from` to `to` (exclusive) of an index, decoded.
  readRange(tape, ix, from, to) {
    if (from >= to) return [];
    const first = ix.starts[from] - 6;
    const last = ix.ends[to - 1];
    const buf = withFile(this.dir, this.path(tape.id, 'frames'), {}, { read: true }, (d) => {
      const parts = [];
      let n = 0;
      while (n < last - first) {
        const [part, eof] = d.read(BigInt(last - first - n), BigInt(first + n));
        parts.push(part);
        n += part.length;
        if (eof || part.length === 0) break;
      }
      const out = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    });
    const frames = [];
    for (let i = from; i < to; i++) frames.push(decodeFrame(buf, ix.starts[i] - first));
    return frames;
  }

  info(tape) {
    const summary = tape.end?.summary ?? null;
    let frameCount;
    let byteCount;
    if (summary) {
      frameCount = summary.frameCount;
      byteCount = summary.byteCount;
    } else {
      const ix = this.index(tape);
      frameCount = BigInt(ix.count);
      byteCount = BigInt(ix.bytes);
    }
    return {
      header: tape.header,
      state: tape.end?.state ?? 'recording',
      frameCount,
      byteCount,
      endedAt: summary?.endedAt,
      digest: summary?.digest,
      seal: summary?.seal,
    };
  }

  // Builds the tape's directory under a temporary name, then renames it to
  // the id: it appears whole or not at all (a rename never replaces a
  // directory that has files).
  publish(id, files) {
    const exists = () => fail('already-exists', `tape \`${id}\` exists`);
    if (readFile(this.dir, this.path(id, 'header')) !== null) exists();
    const tmp = `${this.base}${scratchName('new')}`;
    this.dir.createDirectoryAt(tmp);
    try {
      for (const [name, bytes] of files) writeNew(this.dir, `${tmp}/${name}`, bytes, true);
      try {
        this.dir.renameAt(tmp, this.dir, this.path(id));
      } catch {
        exists();
      }
    } catch (e) {
      try {
        removeTree(this.dir, tmp);
      } catch {}
      throw e;
    }
  }

  create(header) {
    checkId(header.id);
    this.publish(header.id, [['header', encodeHeader(nowNs(), header)], ['frames', new Uint8Array(0)]]);
    return new Writer(this, header.id, 0, 0);
  }

  resume(id) {
    const tape = this.load(id);
    if (tape.end) invalid(`tape \`${id}\` is ${tape.end.state}, not recording`);
    const ix = this.index(tape);
    if (ix.committed < ix.size) {
      // Cut off a torn append.
      withFile(this.dir, this.path(id, 'frames'), {}, { write: true }, (d) => d.setSize(BigInt(ix.committed)));
    }
    return new Writer(this, id, ix.count, ix.committed);
  }

  save(header, frames, summary, reason) {
    checkId(header.id);
    checkConsecutive(frames, 0);
    checkSummary(summary, frames.length, frames.reduce((n, f) => n + f.payload.length, 0));
    this.publish(header.id, [
      ['header', encodeHeader(nowNs(), header)],
      ['frames', encodeFrames(frames)],
      ['end', encodeEnd(END_STATE[reason], summary)],
    ]);
    return this.info(this.load(header.id));
  }

  readFrames(id, fromSeq, maxFrames, maxBytes) {
    if (maxFrames === 0) invalid('max-frames must be at least 1');
    const tape = this.load(id);
    const ix = this.index(tape);
    let count = ix.count;
    if (tape.end?.summary) count = Math.min(count, Number(tape.end.summary.frameCount));
    if (fromSeq >= BigInt(count)) return [];
    const from = Number(fromSeq);
    let to = from;
    let bytes = 0n;
    while (to < count) {
      bytes += BigInt(ix.lens[to]);
      to++;
      if (to - from >= maxFrames || bytes >= maxBytes) break;
    }
    const out = this.readRange(tape, ix, from, to);
    return out;
  }

  delete(id) {
    this.load(id);
    const gone = `${this.base}${scratchName('deleted')}`;
    this.dir.renameAt(this.path(id), this.dir, gone);
    removeTree(this.dir, gone);
  }

  all() {
    const tapes = [];
    for (const e of listDir(this.dir, this.base || '.')) {
      if (e.name.startsWith('.')) continue;
      try {
        tapes.push(this.load(e.name));
      } catch (err) {
        if (err?.tag !== 'not-found' && err?.tag !== 'invalid-input') throw err;
      }
    }
    return tapes;
  }

  // One page of the tapes `keep(tape, info)` accepts, newest first. The
  // cursor is `v1.<stamp>.<created-at>.<id>`: the first page's time (tapes
  // stored later never appear on the next pages) and the last tape given.
  page(keep, cursor, limit) {
    if (limit < 1 || limit > 1000) invalid(`limit ${limit} is not within 1..=1000`);
    const after = cursor == null ? null : parseCursor(cursor);
    const snapshot = after ? after.snapshot : nowNs();
    const key = (t) => ({ createdAt: t.header.createdAt, id: t.header.id });
    const tapes = this.all()
      .filter((t) => t.stamp <= snapshot && (!after || newestFirst(key(t), after) > 0))
      .sort((a, b) => newestFirst(key(a), key(b)));
    const tapesOut = [];
    let nextCursor;
    for (const tape of tapes) {
      const info = this.info(tape);
      if (!keep(tape, info)) continue;
      if (tapesOut.length === limit) {
        const last = tapesOut[tapesOut.length - 1].header;
        nextCursor = `v1.${snapshot}.${last.createdAt}.${last.id}`;
        break;
      }
      tapesOut.push(info);
    }
    return { tapes: tapesOut, nextCursor };
  }

  search(query, cursor, limit) {
    const needle = query.text != null ? utf8In.encode(query.text) : null;
    return this.page(
      (tape, info) => {
        if (!filterMatches(query.filter, info)) return false;
        const missing = new Set(query.terms);
        let found = !needle || needle.length === 0;
        const ix = this.index(tape);
        for (const frame of this.readRange(tape, ix, 0, Math.min(ix.count, Number(info.frameCount)))) {
          for (const t of frame.terms) missing.delete(t);
          found = found || indexOf(frame.payload, needle) >= 0;
          if (missing.size === 0 && found) return true;
        }
        return missing.size === 0 && found;
      },
      cursor,
      limit,
    );
  }

  stats() {
    const s = { tapeCount: 0n, recordingCount: 0n, frameCount: 0n, byteCount: 0n, storedBytes: 0n };
    for (const tape of this.all()) {
      const info = this.info(tape);
      s.tapeCount += 1n;
      if (info.state === 'recording') s.recordingCount += 1n;
      s.frameCount += info.frameCount;
      s.byteCount += info.byteCount;
      for (const name of ['header', 'frames', 'end']) {
        try {
          s.storedBytes += this.dir.statAt(NOFOLLOW, this.path(tape.id, name)).size;
        } catch {}
      }
    }
    return s;
  }
}

function indexOf(hay, needle) {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

// A tape being written (behind the `tape-writer` resource).
class Writer {
  constructor(store, id, nextSeq, committed) {
    this.store = store;
    this.id = id;
    this.nextSeq = nextSeq;
    this.committed = committed; // length of `frames` after the last whole append
  }

  ended() {
    return this.store.load(this.id).end;
  }

  // Catches up with appends made through another writer of this tape.
  refresh() {
    const size = Number(this.store.dir.statAt(NOFOLLOW, this.store.path(this.id, 'frames')).size);
    if (size !== this.committed) {
      const ix = this.store.index(this.store.load(this.id));
      this.nextSeq = ix.count;
      this.committed = ix.committed;
    }
  }

  append(frames) {
    const end = this.ended();
    if (end) invalid(`the tape is ${end.state}, not recording`);
    this.refresh();
    let skip = 0; // a redelivery: frames below next-seq are stored already
    while (skip < frames.length && frames[skip].seq < BigInt(this.nextSeq)) skip++;
    const fresh = frames.slice(skip);
    checkConsecutive(fresh, this.nextSeq);
    if (fresh.length === 0) return this.nextSeq;
    const data = encodeFrames(fresh);
    withFile(this.store.dir, this.store.path(this.id, 'frames'), {}, { read: true, write: true }, (d) => {
      try {
        writeAt(d, data, this.committed);
      } catch (e) {
        d.setSize(BigInt(this.committed)); // nothing of a failed append stays
        throw e;
      }
    });
    this.committed += data.length;
    this.nextSeq += fresh.length;
    return this.nextSeq;
  }

  finish(summary, reason) {
    const state = END_STATE[reason];
    const end = this.ended();
    if (end) {
      if (end.state === state && end.summary && sameSummary(end.summary, summary)) return this.store.info(this.store.load(this.id));
      invalid(`the tape is ${end.state} already, with another summary`);
    }
    this.refresh();
    const ix = this.store.index(this.store.load(this.id));
    checkSummary(summary, ix.count, ix.bytes);
    withFile(this.store.dir, this.store.path(this.id, 'frames'), {}, { read: true, write: true }, (d) => d.syncData());
    writeAtomic(this.store.dir, this.store.path(this.id, 'end'), encodeEnd(state, summary));
    return this.store.info(this.store.load(this.id));
  }

  abort() {
    if (!this.ended()) writeAtomic(this.store.dir, this.store.path(this.id, 'end'), encodeEnd('aborted', null));
  }
}

// --- the exports -------------------------------------------------------------

let store = null;
function theStore() {
  if (!store) fail('internal', 'called before a successful init');
  return store;
}

class TapeWriter {
  constructor(writer) {
    this.w = writer;
  }
  nextSeq() {
    return BigInt(this.w.nextSeq);
  }
  append(frames) {
    return guarded(() => BigInt(this.w.append(frames)));
  }
  finish(summary, reason) {
    return guarded(() => this.w.finish(summary, reason));
  }
  abort(_reason) {
    guarded(() => this.w.abort());
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
    return guarded(() => theStore().save(header, frames, summary, reason));
  },
  // One result per entry ({ tag: 'ok' | 'err', val }); an entry failing
  // changes nothing for the others.
  appendMany(appends) {
    const seen = new Set();
    return appends.map(({ id, frames }) => {
      try {
        if (seen.has(id)) invalid(`tape \`${id}\` appears more than once in one append-many`);
        seen.add(id);
        return { tag: 'ok', val: BigInt(theStore().resume(id).append(frames)) };
      } catch (e) {
        return { tag: 'err', val: errorOf(e) };
      }
    });
  },
  get(id) {
    return guarded(() => theStore().info(theStore().load(id)));
  },
  readFrames(id, fromSeq, maxFrames, maxBytes) {
    return guarded(() => theStore().readFrames(id, fromSeq, maxFrames, maxBytes));
  },
  delete(id) {
    guarded(() => theStore().delete(id));
  },
  list(filter, cursor, limit) {
    return guarded(() => theStore().page((_, info) => filterMatches(filter, info), cursor, limit));
  },
  search(query, cursor, limit) {
    return guarded(() => theStore().search(query, cursor, limit));
  },
  stats() {
    return guarded(() => theStore().stats());
  },
};
