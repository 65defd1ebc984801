//! The provider's configuration.

use serde_json::Value;
use std::path::PathBuf;
use tapedeck_types::StorageError;

/// Settings of the filesystem store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsConfig {
    /// Directory holding the store (created if missing). Default `/tapes`,
    /// which the operator maps to a host directory.
    pub root: PathBuf,
    /// Call `fsync` where durability is promised or a file must not appear
    /// half-written after power loss: a new tape file before it is published,
    /// the frames and the end record at `finish`, a saved tape, and the
    /// catalog log after ends and deletions. Default `true`; `false` trades
    /// power-loss safety for speed (tests, benchmarks).
    pub fsync: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            root: PathBuf::from("/tapes"),
            fsync: true,
        }
    }
}

impl FsConfig {
    /// Parses the provider's `config` JSON object. Keys: `root` (string,
    /// default `/tapes`) and `fsync` (bool, default `true`). An unknown key or
    /// a value of the wrong type is `invalid-input` naming the key.
    pub fn from_json(json: &str) -> Result<FsConfig, StorageError> {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            StorageError::invalid_input(format!("fs provider config is not valid JSON: {e}"))
        })?;
        let Value::Object(map) = value else {
            return Err(StorageError::invalid_input(
                "fs provider config must be a JSON object",
            ));
        };
        let mut config = FsConfig::default();
        for (key, value) in map {
            match key.as_str() {
                "root" => match value {
                    Value::String(s) if !s.is_empty() => config.root = PathBuf::from(s),
                    other => {
                        return Err(StorageError::invalid_input(format!(
                            "fs provider setting \"root\" must be a non-empty string, got {other}"
                        )));
                    }
                },
                "fsync" => match value {
                    Value::Bool(b) => config.fsync = b,
                    other => {
                        return Err(StorageError::invalid_input(format!(
                            "fs provider setting \"fsync\" must be true or false, got {other}"
                        )));
                    }
                },
                other => {
                    return Err(StorageError::invalid_input(format!(
                        "unknown fs provider setting \"{other}\" (known settings: \"root\", \"fsync\")"
                    )));
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapedeck_types::ErrorKind;

    #[test]
    fn defaults_and_keys() {
        assert_eq!(FsConfig::from_json("{}").unwrap(), FsConfig::default());
        let c = FsConfig::from_json(r#"{"root":"/data/t","fsync":false}"#).unwrap();
        assert_eq!(c.root, PathBuf::from("/data/t"));
        assert!(!c.fsync);
    }

    #[test]
    fn rejects_bad_settings_naming_them() {
        for (json, needle) in [
            (r#"{"rot":"/x"}"#, "\"rot\""),
            (r#"{"root":5}"#, "\"root\""),
            (r#"{"root":""}"#, "\"root\""),
            (r#"{"fsync":"yes"}"#, "\"fsync\""),
            ("[]", "JSON object"),
            ("{", "not valid JSON"),
        ] {
            let e = FsConfig::from_json(json).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{json}");
            assert!(e.message.contains(needle), "{json}: {}", e.message);
        }
    }
}
