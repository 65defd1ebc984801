//! What a provider is granted: capabilities as data.
//!
//! Default deny: a provider sees exactly the directories listed here, at the
//! guest paths listed here, with the mode listed here, and reaches exactly the
//! network destinations listed here (see [`super::network`]). No environment
//! variables, no arguments, no stdin; no sockets, name lookups or HTTP
//! requests without a `network` grant. Its stdout and stderr go to the host
//! log (capped). It sees the real wall and monotonic clocks (needed for
//! timestamps and timeouts; they reveal nothing beyond the time) and a random
//! source (needed for hash seeds and ids; capped per call).

use super::network::{GrantError, NetworkPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Access mode of a directory grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirMode {
    /// Read files and list directories; every change is refused.
    #[serde(alias = "ro")]
    ReadOnly,
    /// Read, create, write, rename and remove within the directory.
    #[serde(alias = "rw")]
    ReadWrite,
}

/// One directory of the host, visible to the provider at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Directory on the host. Relative paths are resolved against the
    /// configuration file's directory (or the working directory).
    pub host: PathBuf,
    /// Absolute path under which the provider sees it, e.g. `/tapes`.
    pub guest: String,
    /// Access mode.
    pub mode: DirMode,
    /// Create the host directory if it does not exist (read-write grants only).
    #[serde(default)]
    pub create: bool,
}

impl DirGrant {
    /// A read-write grant of `host` at `guest`, created if missing.
    pub fn read_write(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        DirGrant {
            host: host.into(),
            guest: guest.into(),
            mode: DirMode::ReadWrite,
            create: true,
        }
    }

    /// A read-only grant of `host` at `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        DirGrant {
            host: host.into(),
            guest: guest.into(),
            mode: DirMode::ReadOnly,
            create: false,
        }
    }
}

/// Everything a provider may touch outside its own memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grants {
    /// Directories, each at its own guest path.
    pub dirs: Vec<DirGrant>,
    /// Network destinations (`wasi:sockets`, `wasi:http`), as allow-list
    /// entries such as `"tcp://127.0.0.1:5432"` or `"https://api.example.com"`
    /// (syntax in [`super::network::allow`]). Empty: no network at all.
    pub network: Vec<String>,
    /// Test hook: when not empty, names resolve from this map only, never
    /// through DNS. Not configurable.
    #[doc(hidden)]
    #[serde(skip)]
    pub network_test_hosts: BTreeMap<String, Vec<IpAddr>>,
}

impl Grants {
    /// The network grants, parsed (`None` when there are none).
    pub fn network_policy(&self) -> Result<Option<NetworkPolicy>, GrantError> {
        if self.network.is_empty() {
            return Ok(None);
        }
        let policy = NetworkPolicy::parse(&self.network)?;
        Ok(Some(if self.network_test_hosts.is_empty() {
            policy
        } else {
            policy.with_static_hosts(self.network_test_hosts.clone())
        }))
    }

    /// Resolves relative host paths against `base`, creates directories that
    /// ask for it, and checks the grants: guest paths absolute and distinct,
    /// host directories existing, network entries well-formed. Errors name
    /// the offending grant.
    pub fn prepare(&self, base: &Path) -> Result<Grants, String> {
        self.network_policy().map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(self.dirs.len());
        for g in &self.dirs {
            if !g.guest.starts_with('/') || g.guest.split('/').any(|c| c == "..") {
                return Err(format!(
                    "grant for {}: guest path {:?} must be absolute and must not contain '..'",
                    g.host.display(),
                    g.guest
                ));
            }
            if out.iter().any(|o: &DirGrant| o.guest == g.guest) {
                return Err(format!("two grants use the guest path {:?}", g.guest));
            }
            let host = if g.host.is_absolute() {
                g.host.clone()
            } else {
                base.join(&g.host)
            };
            if g.create && g.mode == DirMode::ReadWrite && !host.exists() {
                std::fs::create_dir_all(&host).map_err(|e| {
                    let why = match e.kind() {
                        std::io::ErrorKind::PermissionDenied => format!(
                            "this user may not create it ({e}); grant a directory this user can write"
                        ),
                        std::io::ErrorKind::ReadOnlyFilesystem => format!(
                            "the file system is read-only ({e}); grant a directory on a writable one"
                        ),
                        _ => e.to_string(),
                    };
                    format!(
                        "cannot create the read-write granted directory {} (guest {}): {why}",
                        host.display(),
                        g.guest
                    )
                })?;
            }
            let meta = std::fs::metadata(&host).map_err(|e| {
                format!(
                    "granted directory {} (guest {}) is not accessible: {e}",
                    host.display(),
                    g.guest
                )
            })?;
            if !meta.is_dir() {
                return Err(format!(
                    "granted path {} (guest {}) is not a directory",
                    host.display(),
                    g.guest
                ));
            }
            #[cfg(unix)]
            if g.mode == DirMode::ReadWrite
                && let Err(e) = rustix::fs::access(&host, rustix::fs::Access::WRITE_OK)
            {
                return Err(format!(
                    "granted directory {} (guest {}) is granted read-write, but this user cannot write to it ({}); fix its permissions or grant another directory",
                    host.display(),
                    g.guest,
                    std::io::Error::from(e)
                ));
            }
            out.push(DirGrant { host, ..g.clone() });
        }
        Ok(Grants {
            dirs: out,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_resolves_creates_and_checks() {
        let tmp = tempfile::tempdir().unwrap();
        let grants = Grants {
            dirs: vec![
                DirGrant::read_write("tapes", "/tapes"),
                DirGrant::read_only(".", "/ro"),
            ],
            ..Default::default()
        };
        let ready = grants.prepare(tmp.path()).unwrap();
        assert_eq!(ready.dirs[0].host, tmp.path().join("tapes"));
        assert!(tmp.path().join("tapes").is_dir());

        let missing = Grants {
            dirs: vec![DirGrant::read_only("nope", "/x")],
            ..Default::default()
        };
        let err = missing.prepare(tmp.path()).unwrap_err();
        assert!(
            err.contains("nope") && err.contains("not accessible"),
            "{err}"
        );

        let relative_guest = Grants {
            dirs: vec![DirGrant::read_only(".", "data")],
            ..Default::default()
        };
        assert!(
            relative_guest
                .prepare(tmp.path())
                .unwrap_err()
                .contains("absolute")
        );

        let dup = Grants {
            dirs: vec![
                DirGrant::read_only(".", "/a"),
                DirGrant::read_only(".", "/a"),
            ],
            ..Default::default()
        };
        assert!(dup.prepare(tmp.path()).unwrap_err().contains("two grants"));
    }

    #[test]
    fn network_entries_parse_from_toml_and_are_checked() {
        let g: Grants =
            toml::from_str(r#"network = ["tcp://127.0.0.1:5432", "https://api.example.com"]"#)
                .unwrap();
        assert_eq!(g.network.len(), 2);
        assert_eq!(g.network_policy().unwrap().unwrap().rules().len(), 2);
        assert!(Grants::default().network_policy().unwrap().is_none());
        let tmp = tempfile::tempdir().unwrap();
        let bad = Grants {
            network: vec!["tcp://db".into()],
            ..Default::default()
        };
        let err = bad.prepare(tmp.path()).unwrap_err();
        assert!(
            err.contains("\"tcp://db\"") && err.contains("port"),
            "{err}"
        );
        assert!(toml::from_str::<Grants>("network_test_hosts = {}").is_err());
    }

    #[test]
    fn modes_parse_long_and_short() {
        #[derive(Deserialize)]
        struct W {
            mode: DirMode,
        }
        let m = |s: &str| toml::from_str::<W>(&format!("mode = {s:?}")).unwrap().mode;
        assert_eq!(m("ro"), DirMode::ReadOnly);
        assert_eq!(m("read-write"), DirMode::ReadWrite);
    }
}
