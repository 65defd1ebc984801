//! The provider's configuration: the `config` table of its entry in the
//! operator's tapedeck config, given to `init` as a JSON object.
//!
//! ```toml
//! [providers.pg]
//! component = "postgres_provider.wasm"
//! config = { host = "127.0.0.1", port = 5432, database = "tapedeck",
//!            user = "tapedeck", password = "…", schema = "tapedeck" }
//! grants.network = ["tcp://127.0.0.1:5432"]
//! ```

use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;
use tapedeck_types::StorageError;

/// Settings of the PostgreSQL provider.
#[derive(Clone)]
pub struct Config {
    /// Server host: an IP address, or a name the network grant lists.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// Role to log in as.
    pub user: String,
    /// Its password (SCRAM-SHA-256, MD5 or cleartext, as the server asks).
    /// Never logged and never part of an error message.
    pub password: String,
    /// Schema holding tapedeck's tables (created on first use).
    pub schema: String,
    /// How long a call keeps reconnecting and retrying after the connection
    /// broke (a server restart) before it fails with `io`.
    pub retry_for: Duration,
}

/// Redacts the password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("schema", &self.schema)
            .field("retry_for", &self.retry_for)
            .finish()
    }
}

const KNOWN: &[&str] = &[
    "host", "port", "database", "user", "password", "schema", "retry_ms",
];

fn invalid(msg: impl Into<String>) -> StorageError {
    StorageError::invalid_input(msg)
}

fn string(
    obj: &Map<String, Value>,
    key: &str,
    default: Option<&str>,
) -> Result<String, StorageError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() && !s.contains('\0') => Ok(s.clone()),
        Some(_) => Err(invalid(format!(
            "setting `{key}` must be a non-empty string"
        ))),
        None => default
            .map(String::from)
            .ok_or_else(|| invalid(format!("setting `{key}` is required"))),
    }
}

impl Config {
    /// Parses the JSON object `init` receives; every problem is
    /// `invalid-input` naming the setting.
    pub fn from_json(text: &str) -> Result<Config, StorageError> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("config is not JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("config must be a JSON object"))?;
        if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown setting `{k}` (known: {})",
                KNOWN.join(", ")
            )));
        }
        let port = match obj.get("port") {
            None => 5432,
            Some(v) => v
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid("setting `port` must be a number from 1 to 65535"))?,
        };
        let schema = string(obj, "schema", Some("tapedeck"))?;
        let identifier = schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !identifier {
            return Err(invalid(format!(
                "setting `schema` ({schema:?}) must be a lowercase SQL identifier: a-z, 0-9 and _, \
                 not starting with a digit, at most 63 characters"
            )));
        }
        let retry_ms = match obj.get("retry_ms") {
            None => 15_000,
            Some(v) => v.as_u64().filter(|ms| *ms <= 600_000).ok_or_else(|| {
                invalid("setting `retry_ms` must be a number of milliseconds up to 600000")
            })?,
        };
        Ok(Config {
            host: string(obj, "host", Some("127.0.0.1"))?,
            port,
            database: string(obj, "database", Some("tapedeck"))?,
            user: string(obj, "user", Some("tapedeck"))?,
            password: match obj.get("password") {
                None => String::new(),
                Some(Value::String(s)) if !s.contains('\0') => s.clone(),
                Some(_) => return Err(invalid("setting `password` must be a string")),
            },
            schema,
            retry_for: Duration::from_millis(retry_ms),
        })
    }

    /// `host:port`, for messages.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_redaction() {
        let c = Config::from_json(r#"{"password": "hunter2"}"#).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.schema.as_str()),
            ("127.0.0.1", 5432, "tapedeck")
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn bad_settings_are_named() {
        for (cfg, word) in [
            (r#"{"prot": 1}"#, "`prot`"),
            (r#"{"port": 70000}"#, "`port`"),
            (r#"{"schema": "Robert'); drop"}"#, "`schema`"),
            (r#"{"host": ""}"#, "`host`"),
            ("[1]", "JSON object"),
        ] {
            let e = Config::from_json(cfg).unwrap_err();
            assert!(e.message.contains(word), "{cfg}: {e:?}");
        }
    }
}
