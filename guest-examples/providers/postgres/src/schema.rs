//! The database schema, created on first use and versioned: each
//! migration runs once, in order, recorded in `schema_migrations`. Instances
//! starting together serialize on an advisory lock, so exactly one applies
//! a migration and the others see it done.
//!
//! Every table lives in the configured schema (first on the connection's
//! search path). Unsigned 64-bit values (sequence numbers, timestamps,
//! counts) are stored in `bigint` with the same bits; every real value is
//! below 2^63 and so reads back as the same number in SQL. Header
//! timestamps above 2^63 − 1 are refused at `create` (their order would be
//! wrong).

use crate::wire::{Conn, PgError, Statement};

/// One migration: its version, a name for humans, and its SQL.
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// The migrations, in order. Never edit a released one: add another.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tapes and frames",
        sql: r#"
CREATE TABLE tapes (
    id           text COLLATE "C" PRIMARY KEY,
    session_id   text NOT NULL,
    name         text NOT NULL,
    tags         jsonb NOT NULL,              -- [[key, value], ...] in the given order
    created_at   bigint NOT NULL,             -- µs since the Unix epoch
    state        text NOT NULL CHECK (state IN ('recording', 'finished', 'aborted', 'crashed')),
    frame_count  bigint NOT NULL DEFAULT 0,
    byte_count   bigint NOT NULL DEFAULT 0,
    ended_at     bigint,
    digest       text,
    -- The creating transaction: a listing's cursor carries the first
    -- page's snapshot, and later pages leave out tapes it could not see.
    created_xid  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- A random token of the call that created the row, so that a retried
    -- create (after a lost reply) recognizes its own row.
    creator      text NOT NULL
);
CREATE INDEX tapes_newest ON tapes (created_at DESC, id DESC);
CREATE INDEX tapes_session ON tapes (session_id, created_at DESC);
CREATE INDEX tapes_state ON tapes (state) WHERE state = 'recording';
CREATE INDEX tapes_tags ON tapes USING gin (tags jsonb_path_ops);

CREATE TABLE frames (
    tape_id    text COLLATE "C" NOT NULL REFERENCES tapes (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    ts         bigint NOT NULL,
    direction  smallint NOT NULL,             -- 0 client to server, 1 server to client
    flags      smallint NOT NULL,             -- bit 0: not JSON
    payload    bytea NOT NULL,
    method     text,                          -- the JSON-RPC "method", for search
    is_text    boolean NOT NULL,              -- payload is UTF-8 without NUL
    PRIMARY KEY (tape_id, seq)                -- a redelivered frame cannot be stored twice
);
CREATE INDEX frames_method ON frames (method, tape_id) WHERE method IS NOT NULL;
CREATE INDEX frames_binary ON frames (tape_id) WHERE NOT is_text;

-- The payload as text, for the text index (only called where is_text).
CREATE FUNCTION payload_text(p bytea) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT convert_from(p, 'UTF8') $$;

-- Locks a recording tape for an append whose first new frame is
-- `expected`; raises TD404 (gone), TD409 (ended) or TD412 (the count moved:
-- its message is the stored count).
CREATE FUNCTION check_append(p_id text, p_expected bigint) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE s text; n bigint;
BEGIN
    SELECT state, frame_count INTO s, n FROM tapes WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TD404', MESSAGE = format('tape %s was deleted', to_json(p_id));
    END IF;
    IF s <> 'recording' THEN
        RAISE EXCEPTION USING ERRCODE = 'TD409',
            MESSAGE = format('tape %s has ended; nothing can be appended', to_json(p_id));
    END IF;
    IF n <> p_expected THEN
        RAISE EXCEPTION USING ERRCODE = 'TD412', MESSAGE = n::text;
    END IF;
END $$;

-- Ends a recording tape after checking the summary; finishing again the
-- same way is a no-op. Raises TD404, TD409 (ended differently) or TD422.
CREATE FUNCTION finish_tape(p_id text, p_state text, p_frames bigint, p_bytes bigint,
                            p_ended bigint, p_digest text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE t tapes%ROWTYPE;
BEGIN
    SELECT * INTO t FROM tapes WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TD404', MESSAGE = format('tape %s was deleted', to_json(p_id));
    END IF;
    IF t.state <> 'recording' THEN
        IF t.state = p_state AND t.frame_count = p_frames AND t.byte_count = p_bytes
           AND t.digest IS NOT DISTINCT FROM p_digest THEN
            RETURN;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'TD409',
            MESSAGE = format('tape %s has ended already, differently', to_json(p_id));
    END IF;
    IF t.frame_count <> p_frames OR t.byte_count <> p_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'TD422',
            MESSAGE = format('summary of tape %s says %s frames and %s bytes; stored are %s frames and %s bytes',
                             to_json(p_id), p_frames, p_bytes, t.frame_count, t.byte_count);
    END IF;
    UPDATE tapes SET state = p_state, ended_at = p_ended, digest = p_digest WHERE id = p_id;
END $$;

-- Aborts a recording tape; a no-op on an ended one. Raises TD404.
CREATE FUNCTION abort_tape(p_id text, p_ended bigint) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tapes SET state = 'aborted', ended_at = p_ended WHERE id = p_id AND state = 'recording';
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM tapes WHERE id = p_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'TD404', MESSAGE = format('tape %s was deleted', to_json(p_id));
    END IF;
END $$;
"#,
    },
    Migration {
        version: 2,
        name: "text index over payloads",
        // Trigram GIN index: `LIKE '%needle%'` over payloads that are text
        // uses it. pg_trgm ships with PostgreSQL (a trusted extension, so
        // a database owner may create it). It is installed once per
        // database, in whatever schema it was first created in, so its
        // operator class is named with that schema (`{trgm}`).
        sql: r#"
CREATE INDEX frames_text ON frames USING gin (payload_text(payload) {trgm}.gin_trgm_ops) WHERE is_text;
"#,
    },
    Migration {
        version: 3,
        name: "contract 0.2: terms, attributes, envelope, seal",
        // Adding a column with a constant default rewrites no row; the
        // index build reads the frames once (as version 2's did).
        sql: r#"
-- What the host gives is kept as bytes, verbatim (a string from the host
-- may even hold a NUL, which text cannot):
--   terms       the frame's index terms, in the given order; `search`
--               matches them by equality of their bytes
--   attributes  key, value, key, value, ... in the given order
--   envelope    the header's envelope; seal: the summary's seal
-- Rows stored before this version keep empty lists and NULLs: their frames
-- have no terms, so a terms search does not find them. They are not
-- backfilled: that would mean parsing every stored payload (the provider
-- never parses payloads), under this lock.
ALTER TABLE tapes ADD COLUMN envelope bytea, ADD COLUMN seal bytea;
ALTER TABLE frames
    ADD COLUMN terms bytea[] NOT NULL DEFAULT '{}',
    ADD COLUMN attributes bytea[] NOT NULL DEFAULT '{}';
-- Only frames with terms are indexed (responses have none); a search
-- repeats the predicate so that the planner can use the index.
CREATE INDEX frames_terms ON frames USING gin (terms) WHERE terms <> '{}';

-- The `method` column, its index and the six-argument finish_tape are no
-- longer used; they stay for instances of the previous provider version
-- still connected while a deployment upgrades (their frames get no terms).

-- Ends a recording tape after checking the summary, recording its digest
-- and seal, in any end state (`aborted` too); finishing again the same way
-- is a no-op. Raises TD404, TD409 (ended differently) or TD422.
CREATE FUNCTION finish_tape(p_id text, p_state text, p_frames bigint, p_bytes bigint,
                            p_ended bigint, p_digest text, p_seal bytea) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE t tapes%ROWTYPE;
BEGIN
    IF p_state IS NULL OR p_state NOT IN ('finished', 'crashed', 'aborted') THEN
        RAISE EXCEPTION USING ERRCODE = 'TD422',
            MESSAGE = format('finish of tape %s: %s is not an end state', to_json(p_id), to_json(p_state));
    END IF;
    SELECT * INTO t FROM tapes WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TD404', MESSAGE = format('tape %s was deleted', to_json(p_id));
    END IF;
    IF t.state <> 'recording' THEN
        IF t.state = p_state AND t.frame_count = p_frames AND t.byte_count = p_bytes
           AND t.digest IS NOT DISTINCT FROM p_digest AND t.seal IS NOT DISTINCT FROM p_seal THEN
            RETURN;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'TD409',
            MESSAGE = format('tape %s has ended already, differently', to_json(p_id));
    END IF;
    IF t.frame_count <> p_frames OR t.byte_count <> p_bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'TD422',
            MESSAGE = format('summary of tape %s says %s frames and %s bytes; stored are %s frames and %s bytes',
                             to_json(p_id), p_frames, p_bytes, t.frame_count, t.byte_count);
    END IF;
    UPDATE tapes SET state = p_state, ended_at = p_ended, digest = p_digest, seal = p_seal
        WHERE id = p_id;
END $$;
"#,
    },
];

/// The newest schema version this provider knows.
pub const LATEST: i64 = 3;

/// Brings the schema to [`LATEST`]: creates it on first use, applies what
/// is missing, and refuses a database migrated by a newer provider.
pub fn migrate(conn: &mut Conn, schema: &str) -> Result<(), PgError> {
    debug_assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST));
    migrate_to(conn, schema, LATEST)
}

/// Brings the schema to version `target` (tests make older databases with
/// it).
pub(crate) fn migrate_to(conn: &mut Conn, schema: &str, target: i64) -> Result<(), PgError> {
    // One transaction: the advisory lock (keyed by schema) makes concurrent
    // instances wait for the one migrating.
    conn.simple(&format!(
        "BEGIN; \
         SELECT pg_advisory_xact_lock(7402885, hashtext('{schema}')); \
         CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ( \
             version bigint PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())"
    ))
    .inspect_err(|_| {
        let _ = conn.simple("ROLLBACK");
    })?;
    let result = (|| {
        let current = conn
            .query(
                &Statement::unnamed(
                    format!("SELECT coalesce(max(version), 0) FROM {schema}.schema_migrations"),
                    vec![],
                ),
                &[],
            )?
            .rows
            .first()
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        if current > LATEST {
            return Err(PgError::Protocol(format!(
                "schema {schema} is at version {current}, newer than this provider knows ({LATEST}): \
                 upgrade the provider"
            )));
        }
        for m in MIGRATIONS
            .iter()
            .filter(|m| m.version > current && m.version <= target)
        {
            let mut sql = m.sql.to_string();
            if sql.contains("{trgm}") {
                sql = sql.replace("{trgm}", &trigram_schema(conn)?);
            }
            conn.simple(&format!("SET LOCAL search_path = {schema}, public; {sql}"))?;
            conn.simple(&format!(
                "INSERT INTO {schema}.schema_migrations (version, name) VALUES ({}, '{}')",
                m.version, m.name
            ))?;
        }
        conn.simple("COMMIT")
    })();
    if result.is_err() {
        let _ = conn.simple("ROLLBACK");
    }
    result
}

/// Creates pg_trgm in `public` unless the database has it already, and
/// returns the (quoted) schema it lives in.
fn trigram_schema(conn: &mut Conn) -> Result<String, PgError> {
    conn.simple("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")?;
    let out = conn.query(
        &Statement::unnamed(
            "SELECT quote_ident(n.nspname) FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
                .into(),
            vec![],
        ),
        &[],
    )?;
    out.rows
        .first()
        .map(|r| r.text(0))
        .transpose()?
        .ok_or_else(|| PgError::Protocol("pg_trgm was created but is not listed".into()))
}
