//! Tape keys: the host's key-encryption keys (KEKs), which wrap each
//! encrypted tape's own data key, and the index key that blinds index
//! terms.
//!
//! A key ring is a text file, mode 0600, one key per line:
//!
//! ```text
//! # tapedeck tape keys: without this file, encrypted tapes cannot be read
//! index 3f…(64 hex digits)
//! kek tk-0c1d2e3f4a5b6c7d 9a…(64 hex digits)
//! kek tk-7e8f90a1b2c3d4e5 51…(64 hex digits)
//! ```
//!
//! The last `kek` is the current one: new tapes' data keys are wrapped
//! with it; the others stay to read the tapes they wrapped (rotation adds
//! a key, it never removes one). A KEK's id (`tk-` and 16 hex digits) is a
//! hash of the key, so a ring cannot name a key wrongly. The index key
//! never rotates: the provider matches blinded terms by equality, so a new
//! index key would make every earlier tape unsearchable.

use super::CodecError;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write as _;
use std::path::Path;

const KEK_ID_DOMAIN: &[u8] = b"tapedeck-kek-id-v1\0";
const HEADER: &str =
    "# tapedeck tape keys: keep this file secret; without it, encrypted tapes cannot be read\n";

/// One 32-byte secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) [u8; 32]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Result<Secret, CodecError> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| CodecError::Keys(format!("no randomness: {e}")))?;
        Ok(Secret(b))
    }

    fn parse(hex_text: &str, line: usize) -> Result<Secret, CodecError> {
        let bytes: [u8; 32] = hex::decode(hex_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                CodecError::Keys(format!("line {line}: expected 64 hex digits (32 bytes)"))
            })?;
        Ok(Secret(bytes))
    }
}

/// The id of a KEK: `tk-` and the first 8 bytes of its hash, in hex.
pub fn kek_id(key: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(KEK_ID_DOMAIN);
    h.update(key.0);
    format!("tk-{}", hex::encode(&h.finalize()[..8]))
}

/// The host's tape keys (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub struct TapeKeys {
    index: Secret,
    /// Oldest first; the last is current.
    keks: Vec<(String, Secret)>,
}

impl fmt::Debug for TapeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapeKeys")
            .field("current", &self.current_id())
            .field("keys", &self.ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TapeKeys {
    /// A new ring: a random index key and one random KEK.
    pub fn generate() -> Result<TapeKeys, CodecError> {
        let kek = Secret::generate()?;
        Ok(TapeKeys {
            index: Secret::generate()?,
            keks: vec![(kek_id(&kek), kek)],
        })
    }

    /// Parses a ring's text (see the module docs); `#` lines and blank
    /// lines are ignored.
    pub fn parse(text: &str) -> Result<TapeKeys, CodecError> {
        let mut index = None;
        let mut keks = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["index", hex] => {
                    if index.replace(Secret::parse(hex, line)?).is_some() {
                        return Err(CodecError::Keys(format!(
                            "line {line}: a second `index` key (a ring has one)"
                        )));
                    }
                }
                ["kek", id, hex] => {
                    let key = Secret::parse(hex, line)?;
                    let actual = kek_id(&key);
                    if *id != actual {
                        return Err(CodecError::Keys(format!(
                            "line {line}: the key is {actual}, not {id} (the file was edited or damaged)"
                        )));
                    }
                    if !keks.iter().any(|(k, _)| k == &actual) {
                        keks.push((actual, key));
                    }
                }
                _ => {
                    return Err(CodecError::Keys(format!(
                        "line {line}: expected `index <hex>` or `kek <id> <hex>`"
                    )));
                }
            }
        }
        let index = index.ok_or_else(|| CodecError::Keys("no `index` key".into()))?;
        if keks.is_empty() {
            return Err(CodecError::Keys("no `kek` key".into()));
        }
        Ok(TapeKeys { index, keks })
    }

    /// The ring's text.
    pub fn to_text(&self) -> String {
        let mut s = String::from(HEADER);
        s.push_str(&format!("index {}\n", hex::encode(self.index.0)));
        for (id, k) in &self.keks {
            s.push_str(&format!("kek {id} {}\n", hex::encode(k.0)));
        }
        s
    }

    /// The current KEK's id (new tapes are wrapped with it).
    pub fn current_id(&self) -> &str {
        &self.keks.last().expect("a ring has a KEK").0
    }

    /// The current KEK.
    pub(crate) fn current(&self) -> (&str, &Secret) {
        let (id, k) = self.keks.last().expect("a ring has a KEK");
        (id, k)
    }

    /// The KEK with this id.
    pub(crate) fn kek(&self, id: &str) -> Option<&Secret> {
        self.keks.iter().find(|(k, _)| k == id).map(|(_, s)| s)
    }

    /// The index key.
    pub(crate) fn index(&self) -> &Secret {
        &self.index
    }

    /// Every KEK's id, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keks.iter().map(|(id, _)| id.as_str())
    }

    /// Adds a new random KEK and makes it current; returns its id.
    pub fn rotate(&mut self) -> Result<String, CodecError> {
        let kek = Secret::generate()?;
        let id = kek_id(&kek);
        self.keks.push((id.clone(), kek));
        Ok(id)
    }

    /// Reads the ring in `path`; `Ok(None)` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<TapeKeys>, CodecError> {
        match std::fs::read_to_string(path) {
            Ok(text) => TapeKeys::parse(&text)
                .map(Some)
                .map_err(|e| CodecError::Keys(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CodecError::Keys(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the ring to `path` (mode 0600, its directory 0700 if made),
    /// through a temporary file renamed into place. With `replace` false,
    /// an existing file is an error (so that `keys init` never overwrites
    /// the keys of existing tapes).
    pub fn store(&self, path: &Path, replace: bool) -> Result<(), CodecError> {
        let failed = |detail: String| CodecError::Keys(format!("{}: {detail}", path.display()));
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .map_err(|e| failed(format!("cannot create its directory: {e}")))?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tape-keys");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| failed(e.to_string()))?;
        tmp.write_all(self.to_text().as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| failed(e.to_string()))?;
        let persisted = if replace {
            tmp.persist(path).map(drop).map_err(|e| e.error)
        } else {
            tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
        };
        persisted.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                failed("exists already (its keys may protect tapes: rotate instead)".into())
            }
            _ => failed(e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_round_trips_rotates_and_keeps_old_keys() {
        let mut ring = TapeKeys::generate().unwrap();
        let first = ring.current_id().to_string();
        let second = ring.rotate().unwrap();
        assert_ne!(first, second);
        assert_eq!(ring.current_id(), second);
        let again = TapeKeys::parse(&ring.to_text()).unwrap();
        assert_eq!(again, ring);
        assert!(again.kek(&first).is_some());
        assert!(!format!("{ring:?}").contains(&hex::encode(ring.index().0)));
    }

    #[test]
    fn damaged_rings_say_which_line() {
        let ring = TapeKeys::generate().unwrap();
        let text = ring.to_text().replace("kek tk-", "kek tk-0");
        let e = TapeKeys::parse(&text).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let e = TapeKeys::parse("index 00\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("64 hex"), "{e}");
        let e = TapeKeys::parse("# nothing\n").unwrap_err().to_string();
        assert!(e.contains("no `index`"), "{e}");
    }

    #[test]
    fn a_ring_file_is_private_and_never_overwritten_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/tape-keys");
        assert_eq!(TapeKeys::load(&path).unwrap(), None);
        let ring = TapeKeys::generate().unwrap();
        ring.store(&path, false).unwrap();
        assert_eq!(TapeKeys::load(&path).unwrap(), Some(ring.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let other = TapeKeys::generate().unwrap();
        let e = other.store(&path, false).unwrap_err().to_string();
        assert!(e.contains("exists already"), "{e}");
        other.store(&path, true).unwrap();
        assert_eq!(TapeKeys::load(&path).unwrap(), Some(other));
    }
}
