//! Secrets in a provider's `config`: any value may be read from an
//! environment variable or a file instead of being written in the
//! configuration file.
//!
//! ```toml
//! [providers.pg]
//! config = { user = "tapedeck", password = { env = "PGPASSWORD" } }
//! # or: password = { file = "/run/secrets/pg-password" }  (relative: to this file)
//! ```
//!
//! A table whose only key is `env` or `file` (a string) is such a reference.
//! The value is read when the provider starts ([`crate::config::Config::provider_spec`]);
//! a file's content loses one trailing newline. The values become the
//! spec's [`Secrets`]: the sandbox scrubs them from every error and log line,
//! `Debug` hides them, and the spool's provider key leaves them out
//! ([`crate::spool::provider_key`]), so rotating a password does not strand
//! spooled tapes.

use crate::sandbox::Secrets;
use serde_json::Value;
use std::path::Path;

/// A secret reference found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    /// `{ env = "NAME" }`.
    Env(String),
    /// `{ file = "path" }`.
    File(String),
}

impl SecretRef {
    /// `value` as a reference, if it is one: an object with the single key
    /// `env` or `file`. `Err` when it has that shape but the name is not a
    /// non-empty string.
    fn of(value: &Value) -> Result<Option<SecretRef>, String> {
        let Value::Object(o) = value else {
            return Ok(None);
        };
        if o.len() != 1 {
            return Ok(None);
        }
        let (k, v) = o.iter().next().expect("one member");
        let make: fn(String) -> SecretRef = match k.as_str() {
            "env" => SecretRef::Env,
            "file" => SecretRef::File,
            _ => return Ok(None),
        };
        match v {
            Value::String(s) if !s.trim().is_empty() => Ok(Some(make(s.clone()))),
            _ => Err(format!(
                "`{{ {k} = … }}` reads a secret and needs a non-empty string (e.g. `{{ env = \"PGPASSWORD\" }}`)"
            )),
        }
    }

    fn read(&self, base_dir: &Path) -> Result<String, String> {
        match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) => Ok(v),
                Err(std::env::VarError::NotPresent) => Err(format!(
                    "environment variable {name} is not set; set it, or change the reference"
                )),
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(format!("environment variable {name} is not valid UTF-8"))
                }
            },
            SecretRef::File(path) => {
                let full = base_dir.join(path);
                let mut text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read secret file {}: {e}", full.display()))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
        }
    }
}

/// Checks the shape of every secret reference in `config` (without reading
/// any): `Err((key, detail))` for the first bad one.
pub(crate) fn check(config: &Value) -> Result<(), (String, String)> {
    walk(config, "", &mut |key, r| match r {
        Err(detail) => Err((key.to_string(), detail)),
        Ok(_) => Ok(None),
    })
    .map(|_| ())
}

/// `config` with every secret reference replaced by its value, and the
/// values read. `Err((key, detail))` names the reference that failed.
pub(crate) fn resolve(
    config: &Value,
    base_dir: &Path,
) -> Result<(Value, Secrets), (String, String)> {
    let mut values = Vec::new();
    let resolved = walk(config, "", &mut |key, r| match r {
        Err(detail) => Err((key.to_string(), detail)),
        Ok(r) => {
            let v = r.read(base_dir).map_err(|d| (key.to_string(), d))?;
            values.push(v.clone());
            Ok(Some(Value::String(v)))
        }
    })?;
    Ok((resolved, Secrets::new(values)))
}

type Visit<'a> =
    dyn FnMut(&str, Result<SecretRef, String>) -> Result<Option<Value>, (String, String)> + 'a;

/// Rebuilds `v`, giving every secret reference (or malformed one) to
/// `visit` with its dotted key; `Some` replaces it.
fn walk(v: &Value, key: &str, visit: &mut Visit<'_>) -> Result<Value, (String, String)> {
    match SecretRef::of(v) {
        Ok(Some(r)) => {
            return Ok(visit(key, Ok(r))?.unwrap_or_else(|| v.clone()));
        }
        Err(detail) => return Ok(visit(key, Err(detail))?.unwrap_or_else(|| v.clone())),
        Ok(None) => {}
    }
    Ok(match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let key = if key.is_empty() {
                        k.clone()
                    } else {
                        format!("{key}.{k}")
                    };
                    Ok((k.clone(), walk(v, &key, visit)?))
                })
                .collect::<Result<_, (String, String)>>()?,
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| walk(v, &format!("{key}[{i}]"), visit))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_read_from_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-file\n").unwrap();
        // A variable every test environment has, so no test sets one.
        let home = std::env::var("HOME").unwrap_or_default();
        let cfg = json!({
            "user": "u",
            "password": {"file": "pw"},
            "nested": {"token": {"env": "HOME"}},
            "list": [{"file": "pw"}],
            "not-a-ref": {"env": "X", "other": 1},
        });
        let (resolved, secrets) = resolve(&cfg, dir.path()).unwrap();
        assert_eq!(resolved["password"], "from-file");
        assert_eq!(resolved["list"][0], "from-file");
        assert_eq!(resolved["nested"]["token"], home.as_str());
        assert_eq!(resolved["not-a-ref"], json!({"env": "X", "other": 1}));
        assert!(secrets.contains("from-file"));
        let shown = format!("{:?}", secrets);
        assert!(!shown.contains("from-file"), "{shown}");
    }

    #[test]
    fn failures_name_the_key_and_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let (key, detail) = resolve(
            &json!({"a": {"b": {"env": "TAPEDECK_TEST_SURELY_UNSET_9f3e"}}}),
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(key, "a.b");
        assert!(
            detail.contains("TAPEDECK_TEST_SURELY_UNSET_9f3e is not set"),
            "{detail}"
        );
        let (key, detail) = resolve(&json!({"pw": {"file": "missing"}}), dir.path()).unwrap_err();
        assert_eq!(key, "pw");
        assert!(detail.contains("cannot read secret file"), "{detail}");
        let (key, detail) = check(&json!({"pw": {"env": ""}})).unwrap_err();
        assert_eq!(key, "pw");
        assert!(detail.contains("non-empty string"), "{detail}");
        assert!(check(&json!({"pw": {"env": "X"}, "n": [1, {"file": "f"}]})).is_ok());
    }
}
