//! The host-side spool: every recorded frame is on the host's own disk before
//! it is forwarded, and stays there until the provider has the whole tape.
//!
//! # The guarantee
//!
//! A frame is written to the tape's spool file (one `write` call) *before*
//! the recorder forwards it to the other side of the session, and the file
//! is synced (`fdatasync`) at most `spool-sync` (default 20 ms) after that,
//! and always before the frame is delivered to the provider. The file is
//! deleted only after the provider has finished the tape and the host has
//! checked what it holds. Therefore:
//!
//! * if tapedeck itself dies (SIGKILL, panic, OOM kill), no frame that was
//!   forwarded is lost: the file is in the kernel's page cache, and the next
//!   `tapedeck` command using the same storage (or `tapedeck recover`)
//!   delivers it and ends the tape (`crashed`, or how it had ended if the
//!   end was already recorded);
//! * if the machine loses power, the frames lost are at most those
//!   forwarded in the last `spool-sync` interval plus the time one
//!   `fdatasync` takes; everything older is on disk;
//! * if the provider fails (errors, traps, hangs, is unavailable), frames
//!   wait in memory and in the spool and are delivered, in order and exactly
//!   once (appends carry sequence numbers the provider honours), when it
//!   recovers — within the session, or by recovery later.
//!
//! The spool directory is the host's alone: [`Spool::check_not_granted`]
//! refuses a provider whose grants include it or lie inside it.
//!
//! # Layout
//!
//! `<spool-dir>/<provider>-<key>/<tape-id>.spool`, one file per tape, in the
//! format of `record.rs`. `<key>` is the [`ProviderKey`]: recovery delivers a
//! file only to a provider configured for the same storage. A live
//! recording keeps its file locked; recovery skips locked files.

mod entry;
mod file;
mod record;
mod recover;
mod status;

pub use entry::{FrameReader, SpoolEntry};
pub use file::SpoolFile;
pub use record::{Begin, EndRecord};
pub use recover::{Recovered, RecoveryError, RecoveryReport, recover_all, recover_entry};
pub use status::{EntryState, ProviderTotals, SpoolStatus, StatusEntry};

use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// The extension of spool files.
pub const EXTENSION: &str = "spool";

/// Environment variable: the spool directory (overrides `[recorder]
/// spool-dir`).
pub const ENV_SPOOL_DIR: &str = "TAPEDECK_SPOOL_DIR";

/// Why the spool could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file or directory operation failed.
    #[error("spool: {what} {}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done ("cannot create", …).
        what: &'static str,
        /// What the operating system said.
        error: io::Error,
    },
    /// A spool file is not readable as one.
    #[error("spool file {} is damaged: {why}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A provider would be granted the spool directory.
    #[error(
        "provider `{provider}` is granted {}, which {relation} the spool directory {}: a provider must never see it; grant another directory, or move the spool directory ([recorder] spool-dir, {ENV_SPOOL_DIR} or --spool-dir)",
        grant.display(), spool.display()
    )]
    Granted {
        /// The provider.
        provider: String,
        /// The granted directory.
        grant: PathBuf,
        /// The spool directory.
        spool: PathBuf,
        /// "contains" or "is inside".
        relation: &'static str,
    },
}

impl From<tapedeck_store::reserved::ReservedError> for SpoolError {
    fn from(e: tapedeck_store::reserved::ReservedError) -> Self {
        SpoolError::Granted {
            provider: e.provider,
            grant: e.grant,
            spool: e.reserved,
            relation: e.relation,
        }
    }
}

impl SpoolError {
    pub(crate) fn io(path: &Path, what: &'static str, error: io::Error) -> Self {
        SpoolError::Io {
            path: path.to_path_buf(),
            what,
            error,
        }
    }
}

/// Identifies the storage a provider writes to: a SHA-256 over its
/// configured name, its `config` and its grants (host directories made
/// absolute). The component itself is not part of it, so upgrading a
/// provider does not orphan its spooled tapes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderKey {
    name: String,
    hex: String,
}

impl ProviderKey {
    /// The key of the storage a provider configured as `name`, with `config`
    /// (its JSON text) and `grants` (their JSON, host directories absolute)
    /// writes to. `tapedeck::spool::provider_key` makes it from a provider's
    /// spec.
    pub fn for_storage(name: &str, config: &str, grants: &[u8]) -> ProviderKey {
        let mut h = Sha256::new();
        h.update(b"tapedeck-provider-key-v1\0");
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(config.as_bytes());
        h.update(b"\0");
        h.update(grants);
        ProviderKey {
            name: name.to_string(),
            hex: hex::encode(h.finalize()),
        }
    }

    /// A key from its parts (tests, and reading spool files).
    pub fn from_parts(name: impl Into<String>, hex: impl Into<String>) -> ProviderKey {
        ProviderKey {
            name: name.into(),
            hex: hex.into(),
        }
    }

    /// The provider's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key, as lowercase hex.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The directory (under the spool directory) of this provider's files.
    fn dir_name(&self) -> String {
        let safe: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}-{}", &self.hex[..16.min(self.hex.len())])
    }
}

/// The host's spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// The default directory: `$XDG_STATE_HOME/tapedeck/spool`, else
    /// `~/.local/state/tapedeck/spool`, else `.tapedeck-spool`.
    pub fn default_dir() -> PathBuf {
        tapedeck_store::reserved::default_spool_dir()
    }

    /// Opens (creating it, private to this user, if needed) the spool at
    /// `dir`. First reserves it for the rest of the process: no provider
    /// may be granted it from then on, and it is refused if a running
    /// provider already is ([`tapedeck_store::reserved`]).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Spool, SpoolError> {
        let dir = absolute(&dir.into());
        tapedeck_store::reserved::reserve(&dir, tapedeck_store::reserved::SPOOL)?;
        create_private_dir(&dir)?;
        Ok(Spool { dir })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Refuses a provider (`provider`) granted one of `grants` (host
    /// directories, absolute) when it contains the spool or lies inside it.
    pub fn check_not_granted<'a>(
        &self,
        provider: &str,
        grants: impl IntoIterator<Item = &'a Path>,
    ) -> Result<(), SpoolError> {
        let spool = canonical(&self.dir);
        for g in grants {
            let grant = canonical(g);
            let relation = if spool.starts_with(&grant) {
                "contains"
            } else if grant.starts_with(&spool) {
                "is inside"
            } else {
                continue;
            };
            return Err(SpoolError::Granted {
                provider: provider.to_string(),
                grant,
                spool,
                relation,
            });
        }
        Ok(())
    }

    /// The directory of `key`'s spool files (created if needed).
    pub(crate) fn provider_dir(&self, key: &ProviderKey) -> Result<PathBuf, SpoolError> {
        let dir = self.dir.join(key.dir_name());
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// Creates the spool file of a tape about to be recorded to `key`.
    pub fn create_file(
        &self,
        key: &ProviderKey,
        header: &tapedeck_types::TapeHeader,
    ) -> Result<SpoolFile, SpoolError> {
        let dir = self.provider_dir(key)?;
        SpoolFile::create(
            &dir,
            &Begin {
                provider: key.name().to_string(),
                provider_key: key.hex().to_string(),
                pid: std::process::id(),
                header: header.clone(),
            },
        )
    }

    /// Every spool file, of every provider, sorted.
    pub fn files(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut out = Vec::new();
        for sub in read_dir(&self.dir)? {
            if sub.is_dir() {
                out.extend(spool_files_in(&sub)?);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The spool files of `key`, sorted (oldest tape first: ids are
    /// time-ordered).
    pub fn files_of(&self, key: &ProviderKey) -> Result<Vec<PathBuf>, SpoolError> {
        let dir = self.dir.join(key.dir_name());
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = spool_files_in(&dir)?;
        out.sort();
        Ok(out)
    }
}

/// The spool files directly in `dir`.
fn spool_files_in(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    Ok(read_dir(dir)?
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == EXTENSION))
        .collect())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let err = |e: io::Error| SpoolError::io(dir, "cannot read", e);
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(err)? {
        out.push(e.map_err(err)?.path());
    }
    Ok(out)
}

/// Creates `dir` (and parents) with mode 0700 where it is created.
fn create_private_dir(dir: &Path) -> Result<(), SpoolError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| SpoolError::io(dir, "cannot create", e))
}

/// `fsync` of a directory, so a new entry in it survives a power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The canonical form of `p` (see [`tapedeck_store::reserved`]).
fn canonical(p: &Path) -> PathBuf {
    tapedeck_store::reserved::canonical(p)
}

#[cfg(test)]
mod tests;
