//! What a provider is granted: capabilities as data.
//!
//! Default deny: a provider sees exactly the directories listed here, at the
//! guest paths listed here, with the mode listed here. No environment
//! variables, no arguments, no stdin, no sockets, no name lookups. Its stdout
//! and stderr go to the host log (capped). It sees the real wall and monotonic
//! clocks (needed for timestamps and timeouts; they reveal nothing beyond the
//! time) and a random source (needed for hash seeds and ids; capped per call).

use serde::{Deserialize, Serialize};
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
}

impl Grants {
    /// Resolves relative host paths against `base`, creates directories that
    /// ask for it, and checks the grants: guest paths absolute and distinct,
    /// host directories existing. Errors name the offending grant.
    pub fn prepare(&self, base: &Path) -> Result<Grants, String> {
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
                    format!("cannot create granted directory {}: {e}", host.display())
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
            out.push(DirGrant { host, ..g.clone() });
        }
        Ok(Grants { dirs: out })
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
        };
        let ready = grants.prepare(tmp.path()).unwrap();
        assert_eq!(ready.dirs[0].host, tmp.path().join("tapes"));
        assert!(tmp.path().join("tapes").is_dir());

        let missing = Grants {
            dirs: vec![DirGrant::read_only("nope", "/x")],
        };
        let err = missing.prepare(tmp.path()).unwrap_err();
        assert!(
            err.contains("nope") && err.contains("not accessible"),
            "{err}"
        );

        let relative_guest = Grants {
            dirs: vec![DirGrant::read_only(".", "data")],
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
        };
        assert!(dup.prepare(tmp.path()).unwrap_err().contains("two grants"));
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
