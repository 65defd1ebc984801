//! The storage operations, in SQL over one connection per instance (see
//! `schema.rs` for the tables). Every acknowledged change is committed, so
//! every instance, in any recorder process, sees it.
//!
//! A call that loses its connection (a server restart, a network blip)
//! reconnects and retries until `retry_ms` has passed. Every operation is
//! safe to retry: appends are checked against the stored frame count (a
//! batch that was committed before the reply was lost is recognized and
//! skipped), and creations carry a random token, so a retried `create`
//! knows its own row from someone else's.
//!
//! Frames are written in bulk: a batch is one `INSERT … SELECT FROM
//! unnest(…)` over array parameters, one per column. Terms and attributes,
//! lists per frame, travel as one flat array per batch with each frame's
//! bounds in it.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tapedeck_types::{
    EndReason, Frame, SearchQuery, StorageError, StorageStats, TapeAppend, TapeFilter, TapeHeader,
    TapeInfo, TapePage, TapeState, TapeSummary, validate_tape_id,
};

use crate::config::Config;
use crate::schema;
use crate::wire::{Conn, Outcome, Param, PgError, Row, Statement, array, oid};

const MAX_LIMIT: u32 = 1000;
const INFO: &str = "id, session_id, name, tags, created_at, state, frame_count, byte_count, \
                    ended_at, digest, envelope, seal";
/// The column after [`INFO`]'s in a listing: the snapshot.
const SNAPSHOT_COLUMN: usize = 12;

/// Inserts a batch of frames of tape `$1` (see [`FrameArrays`]).
const INSERT_FRAMES: &str = "INSERT INTO frames \
       (tape_id, seq, ts, direction, flags, payload, is_text, terms, attributes) \
     SELECT $1, x.seq, x.ts, x.direction, x.flags, x.payload, x.is_text, \
            $8[x.t0:x.t1], $9[x.a0:x.a1] \
     FROM unnest($2, $3, $4, $5, $6, $7, $10, $11, $12, $13) \
       AS x(seq, ts, direction, flags, payload, is_text, t0, t1, a0, a1)";

/// Why an operation failed: a database error (mapped by [`PgStore::run`])
/// or a contract error decided here.
enum Fail {
    Pg(PgError),
    Storage(StorageError),
}

impl From<PgError> for Fail {
    fn from(e: PgError) -> Self {
        Fail::Pg(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Fail::Storage(e)
    }
}

type Op<T> = Result<T, Fail>;

/// The named statements, built once with the schema's names.
struct Statements {
    get: Statement,
    create: Statement,
    creator: Statement,
    save: Statement,
    exists: Statement,
    check_append: Statement,
    insert_frames: Statement,
    insert_frames_if: Statement,
    count_frames: Statement,
    count_frames_if: Statement,
    resume: Statement,
    lock: Statement,
    finish: Statement,
    abort: Statement,
    read: Statement,
    delete: Statement,
    stats: Statement,
}

impl Statements {
    fn new() -> Statements {
        use oid::*;
        let s = Statement::named;
        Statements {
            get: s("get", format!("SELECT {INFO} FROM tapes WHERE id = $1"), &[TEXT]),
            create: s(
                "create",
                "INSERT INTO tapes (id, session_id, name, tags, created_at, state, creator, envelope) \
                 VALUES ($1, $2, $3, $4, $5, 'recording', $6, $7)"
                    .into(),
                &[TEXT, TEXT, TEXT, JSONB, INT8, TEXT, BYTEA],
            ),
            creator: s("creator", "SELECT creator FROM tapes WHERE id = $1".into(), &[TEXT]),
            save: s(
                "save",
                "INSERT INTO tapes (id, session_id, name, tags, created_at, state, frame_count, \
                 byte_count, ended_at, digest, creator, envelope, seal) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                    .into(),
                &[
                    TEXT, TEXT, TEXT, JSONB, INT8, TEXT, INT8, INT8, INT8, TEXT, TEXT, BYTEA,
                    BYTEA,
                ],
            ),
            exists: s("exists", "SELECT 1 FROM tapes WHERE id = $1".into(), &[TEXT]),
            check_append: s(
                "check_append",
                "SELECT check_append($1, $2)".into(),
                &[TEXT, INT8],
            ),
            insert_frames: s("insert_frames", INSERT_FRAMES.into(), &FrameArrays::TYPES),
            // The same, only while the tape is recording with `$14` frames
            // (append-many: nothing is inserted when that guess was wrong).
            insert_frames_if: s(
                "insert_frames_if",
                format!(
                    "{INSERT_FRAMES} WHERE EXISTS (SELECT 1 FROM tapes \
                       WHERE id = $1 AND state = 'recording' AND frame_count = $14)"
                ),
                &[&FrameArrays::TYPES[..], &[INT8]].concat(),
            ),
            count_frames: s(
                "count_frames",
                "UPDATE tapes SET frame_count = $2, byte_count = byte_count + $3 WHERE id = $1"
                    .into(),
                &[TEXT, INT8, INT8],
            ),
            count_frames_if: s(
                "count_frames_if",
                "UPDATE tapes SET frame_count = $2, byte_count = byte_count + $3 \
                 WHERE id = $1 AND state = 'recording' AND frame_count = $4"
                    .into(),
                &[TEXT, INT8, INT8, INT8],
            ),
            resume: s(
                "resume",
                "SELECT state, frame_count FROM tapes WHERE id = $1".into(),
                &[TEXT],
            ),
            lock: s(
                "lock",
                "SELECT state, frame_count FROM tapes WHERE id = $1 FOR UPDATE".into(),
                &[TEXT],
            ),
            finish: s(
                "finish",
                "SELECT finish_tape($1, $2, $3, $4, $5, $6, $7)".into(),
                &[TEXT, TEXT, INT8, INT8, INT8, TEXT, BYTEA],
            ),
            abort: s("abort", "SELECT abort_tape($1, $2)".into(), &[TEXT, INT8]),
            // The frame that reaches max-bytes is included, the first frame
            // always; the window runs over at most max-frames rows.
            read: s(
                "read",
                "SELECT seq, ts, direction, flags, payload, terms, attributes FROM ( \
                   SELECT seq, ts, direction, flags, payload, terms, attributes, \
                          row_number() OVER w AS n, \
                          sum(octet_length(payload)) OVER w - octet_length(payload) AS before \
                   FROM frames WHERE tape_id = $1 AND seq >= $2 \
                   WINDOW w AS (ORDER BY seq) ORDER BY seq LIMIT $3) f \
                 WHERE n = 1 OR before < $4 ORDER BY seq"
                    .into(),
                &[TEXT, INT8, INT8, INT8],
            ),
            delete: s("delete", "DELETE FROM tapes WHERE id = $1".into(), &[TEXT]),
            stats: s(
                "stats",
                "SELECT count(*), count(*) FILTER (WHERE state = 'recording'), \
                        coalesce(sum(frame_count), 0)::bigint, coalesce(sum(byte_count), 0)::bigint, \
                        pg_total_relation_size('tapes'::regclass) \
                          + pg_total_relation_size('frames'::regclass) \
                 FROM tapes"
                    .into(),
                &[],
            ),
        }
    }
}

/// An open recording: the tape and the number of frames stored.
pub struct WriterState {
    id: String,
    count: u64,
}

impl WriterState {
    /// The sequence number the next frame must carry.
    pub fn next_seq(&self) -> u64 {
        self.count
    }
}

/// The tapes in one PostgreSQL schema.
pub struct PgStore {
    cfg: Config,
    conn: Option<Conn>,
    stmts: Statements,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// 128 random bits (std's hasher keys come from `wasi:random`), as hex.
fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let r = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", r(), r())
}

/// u64 values are stored in bigint with the same bits.
fn i(v: u64) -> i64 {
    v as i64
}

fn u(v: i64) -> u64 {
    v as u64
}

fn check_id(id: &str) -> Result<(), StorageError> {
    validate_tape_id(id).map_err(StorageError::invalid_input)
}

/// PostgreSQL text cannot hold NUL, and header times must sort as bigint.
fn check_header(h: &TapeHeader) -> Result<(), StorageError> {
    check_id(&h.id)?;
    let strings = [("session-id", &h.session_id), ("name", &h.name)];
    if let Some((field, _)) = strings.iter().find(|(_, s)| s.contains('\0')) {
        return Err(StorageError::invalid_input(format!(
            "tape {:?}: {field} contains a NUL character, which PostgreSQL text cannot store",
            h.id
        )));
    }
    if h.tags
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(StorageError::invalid_input(format!(
            "tape {:?}: a tag contains a NUL character, which PostgreSQL text cannot store",
            h.id
        )));
    }
    if h.created_at_us > i64::MAX as u64 {
        return Err(StorageError::invalid_input(format!(
            "tape {:?}: created-at {} is beyond what this provider stores (at most 2^63 - 1 µs)",
            h.id, h.created_at_us
        )));
    }
    Ok(())
}

fn tags_json(tags: &[(String, String)]) -> String {
    serde_json::Value::Array(
        tags.iter()
            .map(|(k, v)| serde_json::json!({ "k": k, "v": v }))
            .collect(),
    )
    .to_string()
}

fn tags_from(json: &str) -> Result<Vec<(String, String)>, PgError> {
    let tags: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| PgError::Protocol(format!("tags: {e}")))?;
    tags.into_iter()
        .map(|t| match (t.get("k"), t.get("v")) {
            (Some(serde_json::Value::String(k)), Some(serde_json::Value::String(v))) => {
                Ok((k.clone(), v.clone()))
            }
            _ => Err(PgError::Protocol("a stored tag is not {k, v}".into())),
        })
        .collect()
}

fn info_from(row: &Row) -> Result<TapeInfo, PgError> {
    let state = row.text(5)?;
    Ok(TapeInfo {
        header: TapeHeader {
            id: row.text(0)?,
            session_id: row.text(1)?,
            name: row.text(2)?,
            tags: tags_from(&row.json(3)?)?,
            created_at_us: u(row.i64(4)?),
            envelope: optional_bytes(row, 10)?,
        },
        state: TapeState::parse(&state)
            .ok_or_else(|| PgError::Protocol(format!("unknown state {state:?}")))?,
        frame_count: u(row.i64(6)?),
        byte_count: u(row.i64(7)?),
        ended_at_us: if row.is_null(8) {
            None
        } else {
            Some(u(row.i64(8)?))
        },
        digest: if row.is_null(9) {
            None
        } else {
            Some(row.text(9)?)
        },
        seal: optional_bytes(row, 11)?,
    })
}

fn optional_bytes(row: &Row, i: usize) -> Result<Option<Vec<u8>>, PgError> {
    if row.is_null(i) {
        Ok(None)
    } else {
        row.bytes(i).map(Some)
    }
}

fn not_found(id: &str) -> StorageError {
    StorageError::not_found(format!("no tape {id:?}"))
}

fn check_consecutive(frames: &[Frame], first: u64) -> Result<(), StorageError> {
    for (n, f) in frames.iter().enumerate() {
        if f.seq != first + n as u64 {
            return Err(StorageError::invalid_input(format!(
                "frame {n} of the batch has seq {}, expected {} (sequence numbers must be consecutive)",
                f.seq,
                first + n as u64
            )));
        }
    }
    Ok(())
}

/// Is the payload text the text index can hold (UTF-8 without NUL)?
fn is_text(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok_and(|s| !s.contains('\0'))
}

/// A batch of frames of one tape as the array parameters of
/// [`INSERT_FRAMES`]: one array per column, and the terms and attributes
/// of all frames each flat in one array (attributes as key, value, key,
/// value, ...) with every frame's first and last position in it (1-based;
/// first > last for none).
struct FrameArrays {
    seq: Vec<u8>,
    ts: Vec<u8>,
    direction: Vec<u8>,
    flags: Vec<u8>,
    payload: Vec<u8>,
    is_text: Vec<u8>,
    terms: Vec<u8>,
    attributes: Vec<u8>,
    t0: Vec<u8>,
    t1: Vec<u8>,
    a0: Vec<u8>,
    a1: Vec<u8>,
}

impl FrameArrays {
    /// The parameter types of [`INSERT_FRAMES`].
    const TYPES: [u32; 13] = {
        use oid::*;
        [
            TEXT,
            INT8_ARRAY,
            INT8_ARRAY,
            INT2_ARRAY,
            INT2_ARRAY,
            BYTEA_ARRAY,
            BOOL_ARRAY,
            BYTEA_ARRAY,
            BYTEA_ARRAY,
            INT4_ARRAY,
            INT4_ARRAY,
            INT4_ARRAY,
            INT4_ARRAY,
        ]
    };

    fn new(frames: &[Frame]) -> Result<FrameArrays, PgError> {
        let too_many = || PgError::Protocol("more than 2^31 terms or attributes in a batch".into());
        let bounds =
            |lens: &mut dyn Iterator<Item = usize>| -> Result<(Vec<u8>, Vec<u8>), PgError> {
                let (mut first, mut last) = (Vec::new(), Vec::new());
                let mut at: i32 = 0;
                for len in lens {
                    let len = i32::try_from(len).map_err(|_| too_many())?;
                    first.push(at.checked_add(1).ok_or_else(too_many)?.to_be_bytes());
                    at = at.checked_add(len).ok_or_else(too_many)?;
                    last.push(at.to_be_bytes());
                }
                Ok((array(oid::INT4, first)?, array(oid::INT4, last)?))
            };
        let (t0, t1) = bounds(&mut frames.iter().map(|f| f.terms.len()))?;
        let (a0, a1) = bounds(&mut frames.iter().map(|f| 2 * f.attributes.len()))?;
        Ok(FrameArrays {
            seq: array(oid::INT8, frames.iter().map(|f| i(f.seq).to_be_bytes()))?,
            ts: array(
                oid::INT8,
                frames.iter().map(|f| i(f.timestamp_us).to_be_bytes()),
            )?,
            direction: array(
                oid::INT2,
                frames.iter().map(|f| {
                    match f.direction {
                        tapedeck_types::Direction::ClientToServer => 0i16,
                        tapedeck_types::Direction::ServerToClient => 1,
                    }
                    .to_be_bytes()
                }),
            )?,
            flags: array(
                oid::INT2,
                frames.iter().map(|f| i16::from(f.not_json).to_be_bytes()),
            )?,
            payload: array(oid::BYTEA, frames.iter().map(|f| &f.payload))?,
            is_text: array(
                oid::BOOL,
                frames.iter().map(|f| [u8::from(is_text(&f.payload))]),
            )?,
            terms: array(
                oid::BYTEA,
                frames
                    .iter()
                    .flat_map(|f| f.terms.iter().map(String::as_bytes)),
            )?,
            attributes: array(
                oid::BYTEA,
                frames.iter().flat_map(|f| {
                    f.attributes
                        .iter()
                        .flat_map(|(k, v)| [k.as_bytes(), v.as_bytes()])
                }),
            )?,
            t0,
            t1,
            a0,
            a1,
        })
    }

    /// The parameters of [`INSERT_FRAMES`] for tape `id`.
    fn params<'a>(&'a self, id: &'a str) -> [Param<'a>; 13] {
        [
            Param::Text(id),
            Param::Array(&self.seq),
            Param::Array(&self.ts),
            Param::Array(&self.direction),
            Param::Array(&self.flags),
            Param::Array(&self.payload),
            Param::Array(&self.is_text),
            Param::Array(&self.terms),
            Param::Array(&self.attributes),
            Param::Array(&self.t0),
            Param::Array(&self.t1),
            Param::Array(&self.a0),
            Param::Array(&self.a1),
        ]
    }
}

fn strings(column: Vec<Vec<u8>>, what: &str) -> Result<Vec<String>, PgError> {
    column
        .into_iter()
        .map(|b| {
            String::from_utf8(b)
                .map_err(|_| PgError::Protocol(format!("a stored {what} is not UTF-8")))
        })
        .collect()
}

fn frame_from(mut row: Row) -> Result<Frame, PgError> {
    let terms = strings(row.byte_array(5)?, "term")?;
    let flat = strings(row.byte_array(6)?, "attribute")?;
    if flat.len() % 2 != 0 {
        return Err(PgError::Protocol(
            "stored attributes are not key/value pairs".into(),
        ));
    }
    let mut flat = flat.into_iter();
    let mut attributes = Vec::with_capacity(flat.len() / 2);
    while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
        attributes.push((k, v));
    }
    Ok(Frame {
        seq: u(row.i64(0)?),
        timestamp_us: u(row.i64(1)?),
        direction: if row.i16(2)? == 0 {
            tapedeck_types::Direction::ClientToServer
        } else {
            tapedeck_types::Direction::ServerToClient
        },
        not_json: row.i16(3)? & 1 == 1,
        payload: row.take_bytes(4)?,
        terms,
        attributes,
    })
}

/// `LIKE` pattern for a substring: `%`, `_` and `\` escaped.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// A listing cursor: the first page's snapshot and the last tape shown.
struct Cursor {
    snapshot: String,
    created_at: u64,
    id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        format!("pg1;{};{};{}", self.snapshot, self.created_at, self.id)
    }

    fn parse(c: &str) -> Result<Cursor, StorageError> {
        let bad =
            || StorageError::invalid_input(format!("cursor {c:?} was not issued by this provider"));
        let mut parts = c.splitn(4, ';');
        if parts.next() != Some("pg1") {
            return Err(bad());
        }
        let snapshot = parts.next().ok_or_else(bad)?;
        // xmin:xmax:xip,xip,...
        let mut sp = snapshot.splitn(3, ':');
        let number = |s: Option<&str>| {
            s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        };
        let xip_ok = |x: Option<&str>| {
            x.is_some_and(|x| x.is_empty() || x.split(',').all(|n| number(Some(n))))
        };
        if !number(sp.next()) || !number(sp.next()) || !xip_ok(sp.next()) {
            return Err(bad());
        }
        let created_at = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let id = parts.next().ok_or_else(bad)?;
        check_id(id).map_err(|_| bad())?;
        Ok(Cursor {
            snapshot: snapshot.into(),
            created_at,
            id: id.into(),
        })
    }
}

/// A parameter of the dynamic query, owned.
enum Value {
    Text(String),
    Json(String),
    Int(i64),
    Bytes(Vec<u8>),
}

/// Builds the dynamic `list` / `search` query.
struct Query {
    sql: String,
    values: Vec<Value>,
}

impl Query {
    fn new() -> Query {
        Query {
            sql: format!("SELECT {INFO}, pg_current_snapshot()::text FROM tapes t WHERE true"),
            values: Vec::new(),
        }
    }

    /// Adds a parameter; returns its `$n`.
    fn push(&mut self, v: Value) -> String {
        self.values.push(v);
        format!("${}", self.values.len())
    }

    fn text(&mut self, v: &str) -> String {
        self.push(Value::Text(v.into()))
    }

    fn int(&mut self, v: u64) -> String {
        self.push(Value::Int(i(v)))
    }

    fn bytes(&mut self, v: &[u8]) -> String {
        self.push(Value::Bytes(v.to_vec()))
    }

    fn and(&mut self, cond: String) {
        self.sql.push_str(" AND ");
        self.sql.push_str(&cond);
    }

    fn filter(&mut self, f: &TapeFilter) {
        if let Some(s) = &f.session_id {
            let p = self.text(s);
            self.and(format!("t.session_id = {p}"));
        }
        if let Some(n) = &f.name_contains {
            let p = self.text(n);
            self.and(format!("strpos(lower(t.name), lower({p})) > 0"));
        }
        if !f.tags.is_empty() {
            let p = self.push(Value::Json(tags_json(&f.tags)));
            self.and(format!("t.tags @> {p}"));
        }
        if let Some(t) = f.created_since_us {
            if t > i64::MAX as u64 {
                self.and("false".into());
            } else {
                let p = self.int(t);
                self.and(format!("t.created_at >= {p}"));
            }
        }
        if let Some(t) = f.created_until_us.filter(|t| *t <= i64::MAX as u64) {
            let p = self.int(t);
            self.and(format!("t.created_at < {p}"));
        }
        if let Some(s) = f.state {
            let p = self.text(s.as_str());
            self.and(format!("t.state = {p}"));
        }
    }

    fn types(&self) -> Vec<u32> {
        self.values
            .iter()
            .map(|v| match v {
                Value::Text(_) => oid::TEXT,
                Value::Json(_) => oid::JSONB,
                Value::Int(_) => oid::INT8,
                Value::Bytes(_) => oid::BYTEA,
            })
            .collect()
    }

    fn params(&self) -> Vec<Param<'_>> {
        self.values
            .iter()
            .map(|v| match v {
                Value::Text(t) => Param::Text(t),
                Value::Json(j) => Param::Json(j),
                Value::Int(n) => Param::I64(*n),
                Value::Bytes(b) => Param::Bytes(b),
            })
            .collect()
    }
}

impl PgStore {
    /// Connects (unless the server is unreachable: then the first call
    /// connects) and brings the schema up to date.
    pub fn open(cfg: Config) -> Result<PgStore, StorageError> {
        let mut store = PgStore {
            cfg,
            conn: None,
            stmts: Statements::new(),
        };
        match store.connect() {
            Ok(()) => {}
            // The server may be restarting: recording must not fail to
            // start for that; the first call retries.
            Err(PgError::Connection(e)) if e.kind() != std::io::ErrorKind::PermissionDenied => {
                tapedeck_guest_sdk::log::warn(&format!(
                    "postgres at {} is not reachable yet ({e}); calls will retry",
                    store.cfg.endpoint()
                ));
            }
            Err(e) => return Err(store.error(e)),
        }
        Ok(store)
    }

    fn connect(&mut self) -> Result<(), PgError> {
        let mut conn = Conn::connect(&self.cfg)?;
        schema::migrate(&mut conn, &self.cfg.schema)?;
        self.conn = Some(conn);
        Ok(())
    }

    /// The server's error as a contract error, naming the endpoint; never
    /// the password.
    fn error(&self, e: PgError) -> StorageError {
        let at = format!("postgres at {}", self.cfg.endpoint());
        match e {
            PgError::Server { code, message } => match code.as_str() {
                "TD404" => StorageError::not_found(message),
                "TD409" | "TD422" => StorageError::invalid_input(message),
                c if c.starts_with("53") => {
                    StorageError::quota_exceeded(format!("{at}: {message}"))
                }
                c if c.starts_with("28") => StorageError::io(format!(
                    "{at}: login as {:?} to database {:?} failed: {message}",
                    self.cfg.user, self.cfg.database
                )),
                "3D000" => StorageError::invalid_input(format!("{at}: {message}")),
                _ => StorageError::io(format!("{at}: {message} (SQLSTATE {code})")),
            },
            PgError::Connection(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                StorageError::io(format!(
                    "{at}: connection refused by the sandbox: the provider's network grant \
                     must allow tcp://{}",
                    self.cfg.endpoint()
                ))
            }
            e => StorageError::io(format!("{at}: {e}")),
        }
    }

    /// Runs `op` on the connection, reconnecting and retrying while the
    /// connection fails, up to `retry_ms`.
    fn run<T>(
        &mut self,
        mut op: impl FnMut(&mut Conn, &Statements) -> Op<T>,
    ) -> Result<T, StorageError> {
        let deadline = Instant::now() + self.cfg.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let result = match self.conn.as_mut() {
                Some(conn) => op(conn, &self.stmts),
                None => match self.connect() {
                    Ok(()) => continue,
                    Err(e) => Err(Fail::Pg(e)),
                },
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(Fail::Storage(e)) => return Err(e),
                Err(Fail::Pg(e)) => e,
            };
            let sandbox_refused = matches!(&e, PgError::Connection(io) if io.kind() == std::io::ErrorKind::PermissionDenied);
            if !e.is_connection() {
                return Err(self.error(e));
            }
            self.conn = None;
            if sandbox_refused || Instant::now() + pause > deadline {
                return Err(self.error(e));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Header, state and totals of a tape.
    pub fn get(&mut self, id: &str) -> Result<TapeInfo, StorageError> {
        check_id(id)?;
        self.run(|c, s| get(c, s, id))
    }

    /// A new, empty recording tape.
    pub fn create(&mut self, header: &TapeHeader) -> Result<WriterState, StorageError> {
        check_header(header)?;
        let token = token();
        let tags = tags_json(&header.tags);
        self.run(|c, s| {
            let h = header;
            let inserted = c.query(
                &s.create,
                &[
                    Param::Text(&h.id),
                    Param::Text(&h.session_id),
                    Param::Text(&h.name),
                    Param::Json(&tags),
                    Param::I64(i(h.created_at_us)),
                    Param::Text(&token),
                    h.envelope.as_deref().map_or(Param::Null, Param::Bytes),
                ],
            );
            mine_or_exists(c, s, inserted, &h.id, &token)
        })?;
        Ok(WriterState {
            id: header.id.clone(),
            count: 0,
        })
    }

    /// Continues a recording tape.
    pub fn resume(&mut self, id: &str) -> Result<WriterState, StorageError> {
        check_id(id)?;
        self.run(|c, s| {
            let out = c.query(&s.resume, &[Param::Text(id)])?;
            let row = out.rows.first().ok_or_else(|| not_found(id))?;
            if row.text(0)? != "recording" {
                return Err(StorageError::invalid_input(format!(
                    "tape {id:?} has ended; only a recording tape can be resumed"
                ))
                .into());
            }
            Ok(WriterState {
                id: id.into(),
                count: u(row.i64(1)?),
            })
        })
    }

    /// Appends the frames at or after the writer's count, in one
    /// transaction: all of them or none.
    pub fn append(&mut self, w: &mut WriterState, frames: &[Frame]) -> Result<u64, StorageError> {
        let Some(first) = frames.first() else {
            return Ok(w.count);
        };
        check_consecutive(frames, first.seq)?;
        let id = w.id.clone();
        let count = self.run(|c, s| {
            let mut count = w.count;
            // At most twice: a TD412 tells the stored count (another
            // instance appended, or our last reply was lost).
            for _ in 0..2 {
                let skip = frames.iter().take_while(|f| f.seq < count).count();
                let fresh = &frames[skip..];
                let Some(f0) = fresh.first() else {
                    return Ok(count);
                };
                if f0.seq != count {
                    return Err(StorageError::invalid_input(format!(
                        "append to tape {id:?}: first new frame has seq {}, expected {count} (a gap)",
                        f0.seq
                    ))
                    .into());
                }
                let bytes: u64 = fresh.iter().map(|f| f.payload.len() as u64).sum();
                let new_count = count + fresh.len() as u64;
                let check = [Param::Text(&id), Param::I64(i(count))];
                let arrays = FrameArrays::new(fresh)?;
                let rows = arrays.params(&id);
                let update = [Param::Text(&id), Param::I64(i(new_count)), Param::I64(i(bytes))];
                let steps: [(&Statement, &[Param]); 3] = [
                    (&s.check_append, &check),
                    (&s.insert_frames, &rows),
                    (&s.count_frames, &update),
                ];
                match c.pipeline(&steps) {
                    Ok(_) => return Ok(new_count),
                    Err(PgError::Server { code, message }) if code == "TD412" => {
                        count = message.parse().map_err(|_| {
                            PgError::Protocol(format!("bad stored count {message:?}"))
                        })?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(StorageError::io(format!(
                "append to tape {id:?}: its frame count keeps changing (another writer?)"
            ))
            .into())
        })?;
        w.count = count;
        Ok(count)
    }

    /// `append-many`: for each entry what `resume` then `append` would do,
    /// one result per entry in order.
    ///
    /// Entries that pass the checks here (a valid id, not repeated,
    /// consecutive frames) go to the server in one pipeline, so one round
    /// trip and one transaction, in the order of their ids (so that two
    /// batches never wait for each other's locks in a cycle). Each entry
    /// locks its tape and inserts its frames only while the tape is
    /// recording with as many frames as the entry's first `seq`, so no
    /// entry can make the transaction fail; what each entry found decides
    /// its result. An entry that repeats frames stored already and brings
    /// new ones continues as a plain `append`, on its own. Should the
    /// transaction fail all the same, each entry runs on its own.
    pub fn append_many(&mut self, appends: &[TapeAppend]) -> Vec<Result<u64, StorageError>> {
        let mut results: Vec<Option<Result<u64, StorageError>>> = Vec::with_capacity(appends.len());
        let mut batch = Vec::new();
        let mut seen = HashSet::new();
        for (n, a) in appends.iter().enumerate() {
            let checked = if seen.insert(a.id.as_str()) {
                check_id(&a.id).and_then(|()| match a.frames.first() {
                    Some(f) => check_consecutive(&a.frames, f.seq),
                    None => Ok(()),
                })
            } else {
                Err(StorageError::invalid_input(format!(
                    "tape {:?} appears more than once in one append-many",
                    a.id
                )))
            };
            match checked {
                Ok(()) => {
                    batch.push(n);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        batch.sort_by(|x, y| appends[*x].id.cmp(&appends[*y].id));
        let entries: Vec<&TapeAppend> = batch.iter().map(|n| &appends[*n]).collect();
        match self.run(|c, s| append_batch(c, s, &entries)) {
            Ok(Some(found)) => {
                for (n, found) in batch.iter().zip(found) {
                    let a = &appends[*n];
                    results[*n] = Some(match found {
                        Found::Done(count) => Ok(count),
                        Found::Failed(e) => Err(e),
                        Found::Behind(count) => {
                            let mut w = WriterState {
                                id: a.id.clone(),
                                count,
                            };
                            self.append(&mut w, &a.frames)
                        }
                    });
                }
            }
            Ok(None) => {
                for n in &batch {
                    let a = &appends[*n];
                    results[*n] = Some(
                        self.resume(&a.id)
                            .and_then(|mut w| self.append(&mut w, &a.frames)),
                    );
                }
            }
            Err(e) => {
                for n in &batch {
                    results[*n] = Some(Err(e.clone()));
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(StorageError::internal(
                        "append-many left an entry without a result",
                    ))
                })
            })
            .collect()
    }

    /// Ends the tape, checking the summary against what is stored and
    /// recording it (also for reason `aborted`).
    pub fn finish(
        &mut self,
        w: &WriterState,
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        let id = w.id.as_str();
        let state = reason.end_state().as_str();
        self.run(|c, s| {
            let args = [
                Param::Text(id),
                Param::Text(state),
                Param::I64(i(summary.frame_count)),
                Param::I64(i(summary.byte_count)),
                Param::I64(i(summary.ended_at_us)),
                summary.digest.as_deref().map_or(Param::Null, Param::Text),
                summary.seal.as_deref().map_or(Param::Null, Param::Bytes),
            ];
            let out = c.pipeline(&[(&s.finish, &args), (&s.get, &[Param::Text(id)])])?;
            first_info(&out[1], id)
        })
    }

    /// Gives up the recording, keeping its frames. Idempotent.
    pub fn abort(&mut self, w: &WriterState) -> Result<(), StorageError> {
        let ended = now_us();
        self.run(|c, s| {
            c.query(&s.abort, &[Param::Text(&w.id), Param::I64(i(ended))])?;
            Ok(())
        })
    }

    /// Stores a whole tape at once, in one transaction.
    pub fn save(
        &mut self,
        header: &TapeHeader,
        frames: &[Frame],
        summary: &TapeSummary,
        reason: EndReason,
    ) -> Result<TapeInfo, StorageError> {
        check_header(header)?;
        check_consecutive(frames, 0)?;
        let bytes: u64 = frames.iter().map(|f| f.payload.len() as u64).sum();
        if summary.frame_count != frames.len() as u64 || summary.byte_count != bytes {
            return Err(StorageError::invalid_input(format!(
                "summary of tape {:?} says {} frames and {} bytes; given are {} frames and {bytes} bytes",
                header.id,
                summary.frame_count,
                summary.byte_count,
                frames.len()
            )));
        }
        let token = token();
        let tags = tags_json(&header.tags);
        let h = header;
        let state = reason.end_state().as_str();
        self.run(|c, s| {
            let tape = [
                Param::Text(&h.id),
                Param::Text(&h.session_id),
                Param::Text(&h.name),
                Param::Json(&tags),
                Param::I64(i(h.created_at_us)),
                Param::Text(state),
                Param::I64(i(summary.frame_count)),
                Param::I64(i(summary.byte_count)),
                Param::I64(i(summary.ended_at_us)),
                summary.digest.as_deref().map_or(Param::Null, Param::Text),
                Param::Text(&token),
                h.envelope.as_deref().map_or(Param::Null, Param::Bytes),
                summary.seal.as_deref().map_or(Param::Null, Param::Bytes),
            ];
            let arrays = FrameArrays::new(frames)?;
            let rows = arrays.params(&h.id);
            let mut steps: Vec<(&Statement, &[Param])> = vec![(&s.save, &tape)];
            if !frames.is_empty() {
                steps.push((&s.insert_frames, &rows));
            }
            let saved = c.pipeline(&steps).map(|_| Outcome::default());
            mine_or_exists(c, s, saved, &h.id, &token)?;
            get(c, s, &h.id)
        })
    }

    /// Frames from `from_seq` on, bounded by count and bytes.
    pub fn read_frames(
        &mut self,
        id: &str,
        from_seq: u64,
        max_frames: u32,
        max_bytes: u64,
    ) -> Result<Vec<Frame>, StorageError> {
        if max_frames == 0 {
            return Err(StorageError::invalid_input(format!(
                "read of tape {id:?}: max-frames must be at least 1"
            )));
        }
        check_id(id)?;
        let from = i(from_seq.min(i64::MAX as u64));
        let max_bytes = i(max_bytes.min(i64::MAX as u64));
        self.run(|c, s| {
            let key = [Param::Text(id)];
            let args = [
                Param::Text(id),
                Param::I64(from),
                Param::I64(i64::from(max_frames)),
                Param::I64(max_bytes),
            ];
            let mut out = c.pipeline(&[(&s.exists, &key), (&s.read, &args)])?;
            if out[0].rows.is_empty() {
                return Err(not_found(id).into());
            }
            let rows = std::mem::take(&mut out[1].rows);
            Ok(rows
                .into_iter()
                .map(frame_from)
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Removes a tape and its frames.
    pub fn delete(&mut self, id: &str) -> Result<(), StorageError> {
        check_id(id)?;
        self.run(|c, s| {
            if c.query(&s.delete, &[Param::Text(id)])?.affected == 0 {
                return Err(not_found(id).into());
            }
            Ok(())
        })
    }

    /// Tapes matching `filter`, newest first.
    pub fn list(
        &mut self,
        filter: &TapeFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.page(
            &SearchQuery {
                filter: filter.clone(),
                terms: Vec::new(),
                text: None,
            },
            cursor,
            limit,
        )
    }

    /// Tapes matching `query`, newest first.
    pub fn search(
        &mut self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        self.page(query, cursor, limit)
    }

    fn page(
        &mut self,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<TapePage, StorageError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(StorageError::invalid_input(format!(
                "limit {limit} is out of range 1..={MAX_LIMIT}"
            )));
        }
        let cursor = cursor.map(Cursor::parse).transpose()?;
        let mut q = Query::new();
        q.filter(&query.filter);
        // Each term on some frame, by equality of bytes; `terms <> '{}'`
        // is the terms index's predicate.
        let mut seen = HashSet::new();
        for term in query.terms.iter().filter(|t| seen.insert(t.as_str())) {
            let p = q.bytes(term.as_bytes());
            q.and(format!(
                "EXISTS (SELECT 1 FROM frames f WHERE f.tape_id = t.id \
                   AND f.terms <> '{{}}' AND f.terms @> ARRAY[{p}])"
            ));
        }
        if let Some(text) = &query.text {
            let needle = q.bytes(text.as_bytes());
            let binary = format!(
                "t.id IN (SELECT f.tape_id FROM frames f WHERE NOT f.is_text AND position({needle} in f.payload) > 0)"
            );
            if text.contains('\0') {
                // Text payloads hold no NUL: only binary ones can match.
                q.and(binary);
            } else {
                let pattern = q.text(&like_pattern(text));
                q.and(format!(
                    "(t.id IN (SELECT f.tape_id FROM frames f WHERE f.is_text AND payload_text(f.payload) LIKE {pattern}) OR {binary})"
                ));
            }
        }
        if let Some(c) = &cursor {
            let snap = q.text(&c.snapshot);
            let created = q.int(c.created_at);
            let id = q.text(&c.id);
            q.and(format!(
                "pg_visible_in_snapshot(t.created_xid, {snap}::pg_snapshot) AND (t.created_at, t.id) < ({created}, {id})"
            ));
        }
        q.sql.push_str(&format!(
            " ORDER BY t.created_at DESC, t.id DESC LIMIT {}",
            limit + 1
        ));
        let stmt = Statement::unnamed(q.sql.clone(), q.types());
        let params = q.params();
        let rows = self.run(|c, _| Ok(c.query(&stmt, &params)?.rows))?;
        let mut tapes = Vec::with_capacity(rows.len().min(limit as usize));
        let mut snapshot = cursor.as_ref().map(|c| c.snapshot.clone());
        for row in rows.iter().take(limit as usize) {
            tapes.push(info_from(row).map_err(|e| self.error(e))?);
            if snapshot.is_none() {
                snapshot = Some(row.text(SNAPSHOT_COLUMN).map_err(|e| self.error(e))?);
            }
        }
        let next_cursor = match (rows.len() > limit as usize, tapes.last(), snapshot) {
            (true, Some(last), Some(snapshot)) => Some(
                Cursor {
                    snapshot,
                    created_at: last.header.created_at_us,
                    id: last.header.id.clone(),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(TapePage { tapes, next_cursor })
    }

    /// Totals over all tapes.
    pub fn stats(&mut self) -> Result<StorageStats, StorageError> {
        self.run(|c, s| {
            let out = c.query(&s.stats, &[])?;
            let r = out
                .rows
                .first()
                .ok_or_else(|| PgError::Protocol("stats returned no row".into()))?;
            Ok(StorageStats {
                tape_count: u(r.i64(0)?),
                recording_count: u(r.i64(1)?),
                frame_count: u(r.i64(2)?),
                byte_count: u(r.i64(3)?),
                stored_bytes: u(r.i64(4)?),
            })
        })
    }
}

/// What one entry of an `append-many` batch found.
enum Found {
    /// Its frames are stored (or were already): the new count.
    Done(u64),
    /// It failed; nothing of it was stored.
    Failed(StorageError),
    /// The tape holds this many frames, more than the entry's first `seq`
    /// but fewer than its last: it appends the rest on its own.
    Behind(u64),
}

/// One entry of a batch, encoded.
struct Planned<'a> {
    entry: &'a TapeAppend,
    first: u64,
    arrays: Option<FrameArrays>,
    bytes: u64,
}

/// Sends the whole `append-many` batch in one pipeline (one transaction):
/// per entry, its tape's state and count (locked when it brings frames),
/// its frames inserted and its count updated only if the tape is recording
/// with exactly `first` frames. `None` if the server failed the
/// transaction (nothing was stored).
fn append_batch(c: &mut Conn, s: &Statements, entries: &[&TapeAppend]) -> Op<Option<Vec<Found>>> {
    let planned = entries
        .iter()
        .map(|entry| {
            Ok(Planned {
                entry,
                first: entry.frames.first().map_or(0, |f| f.seq),
                arrays: if entry.frames.is_empty() {
                    None
                } else {
                    Some(FrameArrays::new(&entry.frames)?)
                },
                bytes: entry.frames.iter().map(|f| f.payload.len() as u64).sum(),
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    // The parameters of each entry's statements: key, insert, update.
    type Params<'a> = ([Param<'a>; 1], Vec<Param<'a>>, [Param<'a>; 4]);
    let params: Vec<Params> = planned
        .iter()
        .map(|p| {
            let id = p.entry.id.as_str();
            let new_count = p.first + p.entry.frames.len() as u64;
            let insert = p.arrays.as_ref().map_or_else(Vec::new, |a| {
                let mut v = a.params(id).to_vec();
                v.push(Param::I64(i(p.first)));
                v
            });
            let update = [
                Param::Text(id),
                Param::I64(i(new_count)),
                Param::I64(i(p.bytes)),
                Param::I64(i(p.first)),
            ];
            ([Param::Text(id)], insert, update)
        })
        .collect();
    let mut steps: Vec<(&Statement, &[Param])> = Vec::with_capacity(3 * planned.len());
    let mut at = Vec::with_capacity(planned.len());
    for (p, (key, insert, update)) in planned.iter().zip(&params) {
        at.push(steps.len());
        if p.arrays.is_some() {
            steps.push((&s.lock, key));
            steps.push((&s.insert_frames_if, insert));
            steps.push((&s.count_frames_if, update));
        } else {
            steps.push((&s.resume, key));
        }
    }
    let out = match c.pipeline(&steps) {
        Ok(out) => out,
        Err(PgError::Server { code, message }) => {
            warn(&format!(
                "append-many of {} tapes failed as a whole ({message}, SQLSTATE {code}); \
                 appending to each on its own",
                entries.len()
            ));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let mut found = Vec::with_capacity(planned.len());
    for (p, at) in planned.iter().zip(at) {
        let id = &p.entry.id;
        let n = p.entry.frames.len() as u64;
        let Some(row) = out.get(at).and_then(|o| o.rows.first()) else {
            found.push(Found::Failed(not_found(id)));
            continue;
        };
        let state = row.text(0)?;
        let count = u(row.i64(1)?);
        found.push(if state != "recording" {
            Found::Failed(StorageError::invalid_input(format!(
                "tape {id:?} has ended ({state}); nothing can be appended"
            )))
        } else if n == 0 || count >= p.first + n {
            Found::Done(count)
        } else if count == p.first {
            let updated = out.get(at + 2).map_or(0, |o| o.affected);
            if updated != 1 {
                return Err(PgError::Protocol(format!(
                    "append-many: the count of tape {id:?} was not updated"
                ))
                .into());
            }
            Found::Done(p.first + n)
        } else if count < p.first {
            Found::Failed(StorageError::invalid_input(format!(
                "append to tape {id:?}: first new frame has seq {}, expected {count} (a gap)",
                p.first
            )))
        } else {
            Found::Behind(count)
        });
    }
    Ok(Some(found))
}

/// A warning for the host's log (on the console in native tests).
fn warn(message: &str) {
    #[cfg(target_arch = "wasm32")]
    tapedeck_guest_sdk::log::warn(message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("warn: {message}");
}

fn get(c: &mut Conn, s: &Statements, id: &str) -> Op<TapeInfo> {
    let out = c.query(&s.get, &[Param::Text(id)])?;
    first_info(&out, id)
}

fn first_info(out: &Outcome, id: &str) -> Op<TapeInfo> {
    let row = out.rows.first().ok_or_else(|| not_found(id))?;
    Ok(info_from(row)?)
}

/// A unique violation on the tape is `already-exists`, unless the row is
/// our own (a retry after a reply we never got).
fn mine_or_exists(
    c: &mut Conn,
    s: &Statements,
    result: Result<Outcome, PgError>,
    id: &str,
    token: &str,
) -> Op<()> {
    match result {
        Ok(_) => Ok(()),
        Err(PgError::Server { code, .. }) if code == "23505" => {
            let out = c.query(&s.creator, &[Param::Text(id)])?;
            let ours = out.rows.first().map(|r| r.text(0)).transpose()?.as_deref() == Some(token);
            if ours {
                Ok(())
            } else {
                Err(StorageError::already_exists(format!("tape {id:?} exists already")).into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\d"), "%a\\%b\\_c\\\\d%");
        assert_eq!(like_pattern(""), "%%");
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let c = Cursor {
            snapshot: "100:105:101,103".into(),
            created_at: 42,
            id: "tape-1".into(),
        };
        let back = Cursor::parse(&c.encode()).unwrap();
        assert_eq!(
            (back.snapshot.as_str(), back.created_at, back.id.as_str()),
            ("100:105:101,103", 42, "tape-1")
        );
        assert!(Cursor::parse("pg1;7:7:;0;x").is_ok());
        for bad in [
            "",
            "rs1:1:2:x",
            "pg1;1:2;3;x",
            "pg1;1:2:;3;../x",
            "pg1;1:2:a;3;x",
            "pg1;1:2:;-3;x",
            "pg1;1:2:;3",
            "pg1;1:2:3'); DROP TABLE tapes;--;3;x",
        ] {
            let e = Cursor::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(e.message.contains("not issued"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn headers_postgres_cannot_hold_are_refused_by_name() {
        let h = |name: &str, created: u64| TapeHeader {
            id: "t".into(),
            session_id: String::new(),
            name: name.into(),
            tags: vec![],
            created_at_us: created,
            envelope: None,
        };
        assert!(check_header(&h("fine ☃", 1)).is_ok());
        assert!(
            check_header(&h("nul\0", 1))
                .unwrap_err()
                .message
                .contains("name")
        );
        assert!(
            check_header(&h("x", u64::MAX))
                .unwrap_err()
                .message
                .contains("created-at")
        );
    }

    fn frame(seq: u64, payload: &[u8], terms: &[&str], attributes: &[(&str, &str)]) -> Frame {
        Frame {
            terms: terms.iter().map(|t| t.to_string()).collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Frame::new(
                seq,
                seq * 10,
                tapedeck_types::Direction::ServerToClient,
                payload.to_vec(),
                false,
            )
        }
    }

    #[test]
    fn frames_know_whether_they_are_text() {
        assert!(is_text(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#
        ));
        assert!(is_text("☃".as_bytes()));
        assert!(!is_text(b"a\0b"));
        assert!(!is_text(&[0xff, 0xfe]));
    }

    /// Reads a binary one-dimensional array back: its elements.
    fn elements(a: &[u8]) -> Vec<Vec<u8>> {
        let row = Row::for_tests(vec![Some(a.to_vec())]);
        row.byte_array(0).unwrap()
    }

    fn ints(a: &[u8]) -> Vec<i32> {
        elements(a)
            .into_iter()
            .map(|e| i32::from_be_bytes(e.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn a_batch_flattens_terms_and_attributes_with_each_frames_bounds() {
        let frames = [
            frame(4, b"a", &["method:x", "tool:\0y"], &[("k", ""), ("k", "☃")]),
            frame(5, b"", &[], &[]),
            frame(6, b"\xff", &["t"], &[("", "v")]),
        ];
        let a = FrameArrays::new(&frames).unwrap();
        let b = |s: &str| s.as_bytes().to_vec();
        assert_eq!(elements(&a.terms), [b("method:x"), b("tool:\0y"), b("t")]);
        assert_eq!(
            elements(&a.attributes),
            [b("k"), b(""), b("k"), b("☃"), b(""), b("v")]
        );
        // Frame 5 has none: its first position is after its last.
        assert_eq!((ints(&a.t0), ints(&a.t1)), (vec![1, 3, 3], vec![2, 2, 3]));
        assert_eq!((ints(&a.a0), ints(&a.a1)), (vec![1, 5, 5], vec![4, 4, 6]));
        assert_eq!(elements(&a.payload), [b("a"), vec![], vec![0xff]]);
        assert_eq!(elements(&a.is_text), [vec![1], vec![1], vec![0]]);
        assert_eq!(elements(&a.seq)[2], 6i64.to_be_bytes());
        // An empty batch is empty arrays, without a dimension.
        let empty = FrameArrays::new(&[]).unwrap();
        assert_eq!(&empty.terms[..4], &0i32.to_be_bytes());
        assert!(elements(&empty.terms).is_empty());
    }

    #[test]
    fn stored_frames_read_back_verbatim() {
        let bytea = |items: &[&[u8]]| array(oid::BYTEA, items.iter()).unwrap();
        let row = Row::for_tests(vec![
            Some(7i64.to_be_bytes().to_vec()),
            Some(70i64.to_be_bytes().to_vec()),
            Some(1i16.to_be_bytes().to_vec()),
            Some(1i16.to_be_bytes().to_vec()),
            Some(b"payload".to_vec()),
            Some(bytea(&[b"b", b"a", b"b"])),
            Some(bytea(&[b"k", b"1", b"k", b""])),
        ]);
        let f = frame_from(row).unwrap();
        assert_eq!(f.terms, ["b", "a", "b"]);
        assert_eq!(
            f.attributes,
            [
                ("k".to_string(), "1".to_string()),
                ("k".to_string(), String::new())
            ]
        );
        assert!(f.not_json);
        let odd = Row::for_tests(vec![
            Some(7i64.to_be_bytes().to_vec()),
            Some(70i64.to_be_bytes().to_vec()),
            Some(0i16.to_be_bytes().to_vec()),
            Some(0i16.to_be_bytes().to_vec()),
            Some(Vec::new()),
            Some(bytea(&[])),
            Some(bytea(&[b"k"])),
        ]);
        assert!(frame_from(odd).is_err());
    }
}
