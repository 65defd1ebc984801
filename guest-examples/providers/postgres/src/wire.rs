//! A small synchronous PostgreSQL client over a `std` TCP stream (which is
//! `wasi:sockets` in the component): startup, authentication (SCRAM-SHA-256,
//! MD5, cleartext), the simple query protocol, and pipelines of the
//! extended protocol. Message encoding and SCRAM come from
//! `postgres-protocol`.
//!
//! All parameters and results use the binary format. A pipeline sends every
//! statement and one `Sync`: PostgreSQL runs them as one implicit
//! transaction, so a failing statement rolls back the ones before it, and
//! the whole pipeline costs one round trip.

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::{IsNull, Oid, types};
use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::config::Config;

/// Type ids of the parameters used here.
pub mod oid {
    use postgres_protocol::Oid;
    /// `bool`
    pub const BOOL: Oid = 16;
    /// `bytea`
    pub const BYTEA: Oid = 17;
    /// `int8`
    pub const INT8: Oid = 20;
    /// `int2`
    pub const INT2: Oid = 21;
    /// `text`
    pub const TEXT: Oid = 25;
    /// `jsonb`
    pub const JSONB: Oid = 3802;
    /// `int4`
    pub const INT4: Oid = 23;
    /// `bool[]`
    pub const BOOL_ARRAY: Oid = 1000;
    /// `bytea[]`
    pub const BYTEA_ARRAY: Oid = 1001;
    /// `int2[]`
    pub const INT2_ARRAY: Oid = 1005;
    /// `int4[]`
    pub const INT4_ARRAY: Oid = 1007;
    /// `int8[]`
    pub const INT8_ARRAY: Oid = 1016;
}

/// Why a request failed.
#[derive(Debug)]
pub enum PgError {
    /// The connection failed or broke: the outcome of the request is
    /// unknown, and the connection must be dropped.
    Connection(io::Error),
    /// The server answered with an error; the connection is still usable.
    Server {
        /// SQLSTATE, e.g. `23505`.
        code: String,
        /// The primary message.
        message: String,
    },
    /// The server said something this client does not understand.
    Protocol(String),
}

impl PgError {
    /// Was the connection lost (so a reconnect and a retry may help)?
    /// Includes the server's own "shutting down" and "starting up" errors.
    pub fn is_connection(&self) -> bool {
        match self {
            PgError::Connection(_) => true,
            PgError::Server { code, .. } => {
                code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
            }
            PgError::Protocol(_) => false,
        }
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Connection(e) => write!(f, "connection: {e}"),
            PgError::Server { code, message } => write!(f, "{message} (SQLSTATE {code})"),
            PgError::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

impl From<io::Error> for PgError {
    fn from(e: io::Error) -> Self {
        PgError::Connection(e)
    }
}

/// A statement parameter, sent in binary.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// SQL `NULL`.
    Null,
    /// `int8`
    I64(i64),
    /// `text` (or `jsonb` text, see [`Param::Json`]).
    Text(&'a str),
    /// `jsonb`: the JSON text.
    Json(&'a str),
    /// `bytea`
    Bytes(&'a [u8]),
    /// An array, already in binary format (see [`array`]).
    Array(&'a [u8]),
}

/// A one-dimensional array of `element` values in the binary format, from
/// the elements' own binary forms (none NULL); an empty array has no
/// dimension.
pub fn array<E: AsRef<[u8]>>(
    element: Oid,
    items: impl IntoIterator<Item = E>,
) -> Result<Vec<u8>, PgError> {
    let too_big = || PgError::Protocol("an array or array element over 2 GiB".into());
    let mut body = Vec::new();
    let mut count: i32 = 0;
    for item in items {
        let item = item.as_ref();
        body.extend_from_slice(
            &i32::try_from(item.len())
                .map_err(|_| too_big())?
                .to_be_bytes(),
        );
        body.extend_from_slice(item);
        count = count.checked_add(1).ok_or_else(too_big)?;
    }
    let mut out = Vec::with_capacity(20 + body.len());
    out.extend_from_slice(&i32::from(count > 0).to_be_bytes()); // dimensions
    out.extend_from_slice(&0i32.to_be_bytes()); // no NULLs
    out.extend_from_slice(&element.to_be_bytes());
    if count > 0 {
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes()); // lower bound
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A statement: its SQL and parameter types. Named statements are prepared
/// once per connection; unnamed ones are parsed on every use.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Prepared-statement name, or empty for the unnamed statement.
    pub name: String,
    /// The SQL text.
    pub sql: String,
    /// Parameter types.
    pub types: Vec<Oid>,
}

impl Statement {
    /// A statement prepared once per connection under `name`.
    pub fn named(name: &str, sql: String, types: &[Oid]) -> Statement {
        Statement {
            name: name.into(),
            sql,
            types: types.to_vec(),
        }
    }

    /// A one-off statement (dynamic SQL).
    pub fn unnamed(sql: String, types: Vec<Oid>) -> Statement {
        Statement {
            name: String::new(),
            sql,
            types,
        }
    }
}

/// One result row, columns in binary format.
#[derive(Debug)]
pub struct Row {
    cols: Vec<Option<Vec<u8>>>,
}

impl Row {
    /// A row with these columns, for tests of what reads rows.
    #[cfg(test)]
    pub fn for_tests(cols: Vec<Option<Vec<u8>>>) -> Row {
        Row { cols }
    }

    fn col(&self, i: usize) -> Result<&[u8], PgError> {
        self.cols
            .get(i)
            .and_then(|c| c.as_deref())
            .ok_or_else(|| PgError::Protocol(format!("column {i} is missing or NULL")))
    }

    /// Is column `i` NULL?
    pub fn is_null(&self, i: usize) -> bool {
        self.cols.get(i).is_none_or(|c| c.is_none())
    }

    /// An `int8` column.
    pub fn i64(&self, i: usize) -> Result<i64, PgError> {
        let b = self.col(i)?;
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| {
            PgError::Protocol(format!("column {i} is not an int8"))
        })?))
    }

    /// An `int2` column.
    pub fn i16(&self, i: usize) -> Result<i16, PgError> {
        let b = self.col(i)?;
        Ok(i16::from_be_bytes(b.try_into().map_err(|_| {
            PgError::Protocol(format!("column {i} is not an int2"))
        })?))
    }

    /// A `text` column.
    pub fn text(&self, i: usize) -> Result<String, PgError> {
        String::from_utf8(self.col(i)?.to_vec())
            .map_err(|_| PgError::Protocol(format!("column {i} is not UTF-8")))
    }

    /// A `jsonb` column, as JSON text.
    pub fn json(&self, i: usize) -> Result<String, PgError> {
        match self.col(i)?.split_first() {
            Some((1, text)) => String::from_utf8(text.to_vec())
                .map_err(|_| PgError::Protocol(format!("column {i} is not UTF-8 JSON"))),
            _ => Err(PgError::Protocol(format!(
                "column {i} is not jsonb version 1"
            ))),
        }
    }

    /// A `bytea` column, copied.
    pub fn bytes(&self, i: usize) -> Result<Vec<u8>, PgError> {
        Ok(self.col(i)?.to_vec())
    }

    /// A one-dimensional array column without NULLs (e.g. `bytea[]`):
    /// its elements in order.
    pub fn byte_array(&self, i: usize) -> Result<Vec<Vec<u8>>, PgError> {
        let bad = |e: &dyn std::fmt::Display| PgError::Protocol(format!("column {i}: {e}"));
        let array = types::array_from_sql(self.col(i)?).map_err(|e| bad(&e))?;
        if array.dimensions().count().map_err(|e| bad(&e))? > 1 {
            return Err(bad(&"not a one-dimensional array"));
        }
        let mut values = array.values();
        let mut out = Vec::new();
        while let Some(v) = values.next().map_err(|e| bad(&e))? {
            out.push(v.ok_or_else(|| bad(&"a NULL element"))?.to_vec());
        }
        Ok(out)
    }

    /// A `bytea` column, moved out of the row.
    pub fn take_bytes(&mut self, i: usize) -> Result<Vec<u8>, PgError> {
        self.cols
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| PgError::Protocol(format!("column {i} is missing or NULL")))
    }
}

/// The outcome of one statement of a pipeline.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows returned.
    pub rows: Vec<Row>,
    /// Rows affected (from the command tag: `INSERT 0 5`, `DELETE 1`, ...).
    pub affected: u64,
}

/// An open, authenticated connection.
pub struct Conn {
    stream: TcpStream,
    rb: BytesMut,
    wb: BytesMut,
    chunk: Vec<u8>,
    /// Named statements this connection has prepared.
    prepared: HashSet<String>,
}

impl Conn {
    /// Connects and logs in. `schema` is put first on the search path.
    pub fn connect(cfg: &Config) -> Result<Conn, PgError> {
        let stream = TcpStream::connect((cfg.host.as_str(), cfg.port))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            rb: BytesMut::new(),
            wb: BytesMut::new(),
            chunk: vec![0; 64 * 1024],
            prepared: HashSet::new(),
        };
        let options = format!("-c search_path={},public", cfg.schema);
        let params = [
            ("user", cfg.user.as_str()),
            ("database", cfg.database.as_str()),
            ("application_name", "tapedeck"),
            ("client_encoding", "UTF8"),
            ("options", options.as_str()),
        ];
        frontend::startup_message(params, &mut conn.wb)?;
        conn.flush()?;
        conn.authenticate(cfg)?;
        Ok(conn)
    }

    fn authenticate(&mut self, cfg: &Config) -> Result<(), PgError> {
        let mut scram: Option<sasl::ScramSha256> = None;
        let mut encoding_ok = false;
        loop {
            match self.read()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(cfg.password.as_bytes(), &mut self.wb)?;
                    self.flush()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(cfg.user.as_bytes(), cfg.password.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.wb)?;
                    self.flush()?;
                }
                Message::AuthenticationSasl(body) => {
                    let mechanisms: Vec<&str> = body.mechanisms().collect()?;
                    if !mechanisms.contains(&sasl::SCRAM_SHA_256) {
                        return Err(PgError::Protocol(format!(
                            "the server offers SASL {mechanisms:?}; only SCRAM-SHA-256 is supported"
                        )));
                    }
                    let s = sasl::ScramSha256::new(
                        cfg.password.as_bytes(),
                        sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.wb,
                    )?;
                    self.flush()?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| PgError::Protocol("SASL continue before start".into()))?;
                    s.update(body.data())?;
                    frontend::sasl_response(s.message(), &mut self.wb)?;
                    self.flush()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    scram
                        .as_mut()
                        .ok_or_else(|| PgError::Protocol("SASL final before start".into()))?
                        .finish(body.data())?;
                }
                Message::ParameterStatus(body) => {
                    if body.name()? == "server_encoding" {
                        encoding_ok = body.value()? == "UTF8";
                    }
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(body) => return Err(server_error(&body)),
                _ => return Err(PgError::Protocol("unexpected message during login".into())),
            }
        }
        if !encoding_ok {
            return Err(PgError::Protocol(format!(
                "database {:?} is not UTF8-encoded (create it with ENCODING 'UTF8')",
                cfg.database
            )));
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let out = self.wb.split();
        self.stream.write_all(&out)
    }

    fn read(&mut self) -> Result<Message, PgError> {
        loop {
            if let Some(m) = Message::parse(&mut self.rb)? {
                return Ok(m);
            }
            let n = self.stream.read(&mut self.chunk)?;
            if n == 0 {
                return Err(PgError::Connection(io::ErrorKind::UnexpectedEof.into()));
            }
            self.rb.extend_from_slice(&self.chunk[..n]);
        }
    }

    /// Runs `sql` (one or more statements, no parameters) with the simple
    /// query protocol; returns the first error.
    pub fn simple(&mut self, sql: &str) -> Result<(), PgError> {
        frontend::query(sql, &mut self.wb)?;
        self.flush()?;
        let mut error = None;
        loop {
            match self.read()? {
                Message::ErrorResponse(body) => error = Some(server_error(&body)),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        error.map_or(Ok(()), Err)
    }

    /// Runs one statement.
    pub fn query(&mut self, stmt: &Statement, params: &[Param]) -> Result<Outcome, PgError> {
        let mut out = self.pipeline(&[(stmt, params)])?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Sends all statements with one `Sync` and reads every outcome: one
    /// round trip, one implicit transaction (unless a `BEGIN` is open). On a
    /// server error nothing of the pipeline is kept.
    pub fn pipeline(&mut self, steps: &[(&Statement, &[Param])]) -> Result<Vec<Outcome>, PgError> {
        // Checked before anything is written, so a refused pipeline leaves
        // nothing half-encoded in the buffer.
        if let Some((stmt, params)) = steps.iter().find(|(s, p)| p.len() != s.types.len()) {
            return Err(PgError::Protocol(format!(
                "{} parameters for a statement with {}",
                params.len(),
                stmt.types.len()
            )));
        }
        let mut parsing = Vec::new();
        for (stmt, params) in steps {
            let named = !stmt.name.is_empty();
            let ready =
                named && (self.prepared.contains(&stmt.name) || parsing.contains(&stmt.name));
            if !ready {
                if named {
                    // It may exist from a pipeline that failed after its Parse.
                    frontend::close(b'S', &stmt.name, &mut self.wb)?;
                }
                frontend::parse(
                    &stmt.name,
                    &stmt.sql,
                    stmt.types.iter().copied(),
                    &mut self.wb,
                )?;
                parsing.push(stmt.name.clone());
            }
            frontend::bind(
                "",
                &stmt.name,
                Some(1),
                params.iter(),
                |p, buf| Ok(encode(p, buf)),
                Some(1),
                &mut self.wb,
            )
            .map_err(|e| match e {
                frontend::BindError::Conversion(e) => PgError::Protocol(e.to_string()),
                frontend::BindError::Serialization(e) => PgError::Connection(e),
            })?;
            frontend::execute("", 0, &mut self.wb)?;
        }
        frontend::sync(&mut self.wb);
        self.flush()?;
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut error = None;
        let mut parsed = 0;
        loop {
            match self.read()? {
                Message::ParseComplete => {
                    if let Some(name) = parsing.get(parsed).filter(|n| !n.is_empty()) {
                        self.prepared.insert(name.clone());
                    }
                    parsed += 1;
                }
                Message::BindComplete => outcomes.push(Outcome::default()),
                Message::DataRow(row) => {
                    let buf = row.buffer();
                    let cols = row
                        .ranges()
                        .map(|r| Ok(r.map(|r| buf[r].to_vec())))
                        .collect()?;
                    if let Some(o) = outcomes.last_mut() {
                        o.rows.push(Row { cols });
                    }
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag()?;
                    if let Some(o) = outcomes.last_mut() {
                        o.affected = tag
                            .rsplit(' ')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                    }
                }
                Message::ErrorResponse(body) => error = Some(server_error(&body)),
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        frontend::terminate(&mut self.wb);
        let _ = self.flush();
    }
}

fn encode(p: &Param, buf: &mut BytesMut) -> IsNull {
    match *p {
        Param::Null => return IsNull::Yes,
        Param::I64(v) => buf.put_i64(v),
        Param::Text(s) => buf.put_slice(s.as_bytes()),
        Param::Json(s) => {
            buf.put_u8(1);
            buf.put_slice(s.as_bytes());
        }
        Param::Bytes(b) | Param::Array(b) => buf.put_slice(b),
    }
    IsNull::No
}

fn server_error(body: &ErrorResponseBody) -> PgError {
    let mut code = String::new();
    let mut message = String::new();
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    PgError::Server { code, message }
}
