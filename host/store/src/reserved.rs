//! Host-only directories: no provider may be granted one of them, a
//! directory inside one, or a directory that contains one.
//!
//! The spool holds every recorded frame in clear (secrets included) and is
//! what recovery trusts, so a provider that could read it would see other
//! providers' sessions, and one that could write it could erase them. The
//! rule is enforced here, below both the sandbox and the recorder, for
//! every provider start (`tapedeck`'s `WasmProvider::start` calls
//! [`check_grants`]) and every spool opening (`Spool::open` calls
//! [`reserve`]), in whichever order they happen in a process:
//!
//! - [`default_spool_dir`] is always reserved, whether or not this process
//!   uses it (another `tapedeck` may be recording into it);
//! - [`reserve`] adds a directory (a spool about to be opened) and refuses
//!   it if a running provider of this process is granted it;
//! - [`check_grants`] refuses a provider whose grants meet a reserved
//!   directory, and otherwise registers its grants until it is dropped.
//!
//! Paths are compared in canonical form (symlinks resolved; a directory that
//! does not exist yet is resolved through its nearest existing parent).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Why a grant or a reserved directory was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "provider `{provider}` is granted {}, which {relation} the {what} {}: a provider must never see it; grant another directory, or move the {what} ([recorder] spool-dir, TAPEDECK_SPOOL_DIR or --spool-dir)",
    grant.display(), reserved.display()
)]
pub struct ReservedError {
    /// The provider.
    pub provider: String,
    /// The granted directory (canonical).
    pub grant: PathBuf,
    /// The reserved directory (canonical).
    pub reserved: PathBuf,
    /// What the reserved directory is ("spool directory").
    pub what: &'static str,
    /// "contains" or "is inside".
    pub relation: &'static str,
}

struct Registry {
    /// Reserved directories (canonical) and what they are.
    reserved: Vec<(PathBuf, &'static str)>,
    /// Directories granted to running providers: (registration, provider,
    /// canonical path).
    granted: Vec<(u64, String, PathBuf)>,
    next: u64,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    reserved: Vec::new(),
    granted: Vec::new(),
    next: 0,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a spool directory is called in messages.
pub const SPOOL: &str = "spool directory";

/// The spool directory `tapedeck` uses unless told otherwise:
/// `$XDG_STATE_HOME/tapedeck/spool`, else `~/.local/state/tapedeck/spool`,
/// else `.tapedeck-spool`.
pub fn default_spool_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        });
    match state {
        Some(s) => s.join("tapedeck/spool"),
        None => PathBuf::from(".tapedeck-spool"),
    }
}

/// How `grant` and `reserved` (both canonical) meet, if they do.
fn relation(grant: &Path, reserved: &Path) -> Option<&'static str> {
    if reserved.starts_with(grant) {
        Some("contains")
    } else if grant.starts_with(reserved) {
        Some("is inside")
    } else {
        None
    }
}

/// Reserves `dir` as a host-only directory (`what`, e.g. [`SPOOL`]) for the
/// rest of the process. Refused if a running provider is granted it (or a
/// directory around or inside it).
pub fn reserve(dir: &Path, what: &'static str) -> Result<(), ReservedError> {
    let dir = canonical(dir);
    let mut r = registry();
    for (_, provider, grant) in &r.granted {
        if let Some(relation) = relation(grant, &dir) {
            return Err(ReservedError {
                provider: provider.clone(),
                grant: grant.clone(),
                reserved: dir,
                what,
                relation,
            });
        }
    }
    if !r.reserved.iter().any(|(d, _)| *d == dir) {
        r.reserved.push((dir, what));
    }
    Ok(())
}

/// Checks the host directories granted to `provider` (absolute) against
/// every reserved directory and [`default_spool_dir`]; on success, keeps
/// them registered (so a later [`reserve`] sees them) until the returned
/// registration is dropped.
pub fn check_grants<'a>(
    provider: &str,
    dirs: impl IntoIterator<Item = &'a Path>,
) -> Result<Registration, ReservedError> {
    let dirs: Vec<PathBuf> = dirs.into_iter().map(canonical).collect();
    let mut r = registry();
    let default = (canonical(&default_spool_dir()), SPOOL);
    for grant in &dirs {
        for (reserved, what) in r.reserved.iter().chain(std::iter::once(&default)) {
            if let Some(relation) = relation(grant, reserved) {
                return Err(ReservedError {
                    provider: provider.to_string(),
                    grant: grant.clone(),
                    reserved: reserved.clone(),
                    what,
                    relation,
                });
            }
        }
    }
    let id = r.next;
    r.next += 1;
    for grant in dirs {
        r.granted.push((id, provider.to_string(), grant));
    }
    Ok(Registration(Arc::new(id)))
}

/// A provider's grants, registered by [`check_grants`]; dropping the last
/// clone forgets them.
#[derive(Debug, Clone)]
pub struct Registration(Arc<u64>);

impl Drop for Registration {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            let id = *self.0;
            registry().granted.retain(|(r, _, _)| *r != id);
        }
    }
}

/// `p` made absolute.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The canonical form of `p`, or of its nearest existing ancestor joined
/// with the rest (a granted directory may not exist yet).
pub fn canonical(p: &Path) -> PathBuf {
    let p = absolute(p);
    let mut rest = Vec::new();
    let mut cur = p.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_meeting_a_reserved_dir_are_refused_in_either_order() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = tmp.path().join("state/spool");
        reserve(&spool, SPOOL).unwrap();
        for bad in [
            tmp.path().to_path_buf(),
            tmp.path().join("state"),
            spool.clone(),
            spool.join("inside"),
        ] {
            let e = check_grants("evil", [bad.as_path()]).unwrap_err();
            assert!(e.to_string().contains("spool directory"), "{e}");
        }
        // A symlink to the spool's parent is the parent.
        let link = tmp.path().join("link");
        std::fs::create_dir_all(tmp.path().join("state")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("state"), &link).unwrap();
        assert!(check_grants("evil", [link.as_path()]).is_err());
        let ok = check_grants("fine", [tmp.path().join("tapes").as_path()]).unwrap();

        // The other order: a provider granted a directory, then a spool in it.
        let other = tempfile::tempdir().unwrap();
        let granted = check_grants("early", [other.path()]).unwrap();
        let e = reserve(&other.path().join("spool"), SPOOL).unwrap_err();
        assert_eq!(e.provider, "early");
        assert_eq!(e.relation, "contains");
        drop(granted);
        reserve(&other.path().join("spool"), SPOOL).unwrap();
        drop(ok);
    }

    #[test]
    fn the_default_spool_dir_is_always_reserved() {
        let default = default_spool_dir();
        let parent = default.parent().unwrap();
        let e = check_grants("home", [parent]).unwrap_err();
        assert_eq!(e.relation, "contains");
    }
}
