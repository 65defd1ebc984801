//! The host's spool (crate `tapedeck-recorder`, module `spool`: files,
//! recovery, status), and what ties it to a configured provider: the key of
//! the storage a provider writes to, and the check that its grants keep
//! away from the spool.

pub use tapedeck_recorder::spool::*;

use crate::sandbox::ProviderSpec;
use std::path::{Path, PathBuf};

/// Identifies the storage `spec`'s provider writes to: a SHA-256 over its
/// configured name, its `config` without its secrets
/// ([`ProviderSpec::shown_config`]) and its grants (host directories made
/// absolute against `base_dir`). Neither the component nor a secret is part
/// of it, so upgrading a provider or rotating its password does not orphan
/// its spooled tapes; recovery delivers a spool file only to a provider with
/// the same key.
pub fn provider_key(spec: &ProviderSpec, base_dir: &Path) -> ProviderKey {
    let mut grants = spec.grants.clone();
    for d in &mut grants.dirs {
        d.host = absolute(&base_dir.join(&d.host));
    }
    let grants = serde_json::to_vec(&grants).expect("grants serialize");
    ProviderKey::for_storage(&spec.name, &spec.shown_config().to_string(), &grants)
}

/// Refuses `spec` when one of its directory grants (relative ones resolved
/// against `base_dir`) contains `spool`'s directory or lies inside it. The
/// sandbox refuses such a provider anyway when it starts
/// ([`crate::sandbox::reserved`]); this says so before anything starts.
pub fn check_not_granted(
    spool: &Spool,
    spec: &ProviderSpec,
    base_dir: &Path,
) -> Result<(), SpoolError> {
    let hosts: Vec<PathBuf> = spec
        .grants
        .dirs
        .iter()
        .map(|d| base_dir.join(&d.host))
        .collect();
    spool.check_not_granted(&spec.name, hosts.iter().map(PathBuf::as_path))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{ComponentSource, DirGrant};

    fn bytes(b: &[u8]) -> ComponentSource {
        ComponentSource::Bytes {
            label: "test".into(),
            bytes: b.into(),
        }
    }

    #[test]
    fn provider_keys_follow_the_storage_not_the_component() {
        let spec = |config: serde_json::Value, dir: &str| {
            let mut s = ProviderSpec::new("fs", bytes(&[1, 2, 3])).with_config(config);
            s.grants.dirs.push(DirGrant::read_write(dir, "/tapes"));
            s
        };
        let base = Path::new("/base");
        let a = provider_key(&spec(serde_json::json!({}), "tapes"), base);
        let mut other_component = spec(serde_json::json!({}), "tapes");
        other_component.component = bytes(&[9]);
        assert_eq!(a, provider_key(&other_component, base));
        assert_eq!(
            a,
            provider_key(
                &spec(serde_json::json!({}), "/base/tapes"),
                Path::new("/elsewhere")
            )
        );
        assert_ne!(
            a,
            provider_key(&spec(serde_json::json!({}), "tapes"), Path::new("/other"))
        );
        assert_ne!(
            a,
            provider_key(&spec(serde_json::json!({"fsync": false}), "tapes"), base)
        );
        assert_eq!(a.hex().len(), 64);
        // A secret's value is not part of the key: rotating it keeps it.
        let secret = |pw: &str| {
            spec(serde_json::json!({"password": pw}), "tapes")
                .with_secrets(crate::sandbox::Secrets::new([pw.to_string()]))
        };
        assert_eq!(
            provider_key(&secret("old-password"), base),
            provider_key(&secret("new-password"), base)
        );
        assert_ne!(
            provider_key(&secret("old-password"), base),
            provider_key(
                &spec(serde_json::json!({"password": "old-password"}), "tapes"),
                base
            )
        );
    }

    #[test]
    fn a_provider_may_not_be_granted_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("state/spool")).unwrap();
        let granted = |host: PathBuf| {
            let mut s = ProviderSpec::new("p", bytes(&[]));
            s.grants.dirs.push(DirGrant::read_write(host, "/data"));
            check_not_granted(&spool, &s, dir.path())
        };
        let err = granted(dir.path().join("state")).unwrap_err().to_string();
        assert!(err.contains("contains the spool directory"), "{err}");
        let err = granted(PathBuf::from("state/spool/inner"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("is inside the spool directory"), "{err}");
        granted(dir.path().join("tapes")).unwrap();
        granted(dir.path().join("state/spool-other")).unwrap();
    }
}
