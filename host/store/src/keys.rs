//! ed25519 keys, in tapedeck's text forms: a public key is
//! `ed25519:<64 hex digits>`, a secret key file holds
//! `ed25519-secret:<32-byte seed, 64 hex digits>`.
//!
//! The same keys sign provider components (`tapedeck::signing`) and seal
//! tapes ([`crate::seal`]); what a signature covers always starts with a
//! domain string of its own, so a signature made for one purpose is never
//! valid for another.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::io::Write as _;
use std::path::Path;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// Why a key could not be read, parsed or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A public key is not `ed25519:<64 hex digits>` or not a valid point.
    #[error("invalid public key {key:?}: {why}")]
    BadPublicKey {
        /// The text given.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A secret key (file) is malformed.
    #[error("invalid secret key: {0}")]
    BadSecretKey(String),
    /// A key file could not be read or written.
    #[error("key file {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

/// An ed25519 public key, written `ed25519:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses `ed25519:<hex>`.
    pub fn parse(s: &str) -> Result<PublicKey, KeyError> {
        let bad = |why: &str| KeyError::BadPublicKey {
            key: s.to_string(),
            why: why.to_string(),
        };
        let hex_part = s
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| bad("expected it to start with `ed25519:`"))?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .map_err(|_| bad("not hexadecimal"))?
            .try_into()
            .map_err(|_| bad("expected 32 bytes (64 hex digits)"))?;
        PublicKey::from_bytes(&bytes).ok_or_else(|| bad("not a valid ed25519 key"))
    }

    /// The key of 32 raw bytes, if they are a valid point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<PublicKey> {
        VerifyingKey::from_bytes(bytes).ok().map(PublicKey)
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// True when `signature` is this key's (strict) signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A secret signing key. `Debug` shows only its public key.
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| KeyError::BadSecretKey(format!("no randomness available: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Parses the contents of a secret key file.
    pub fn parse(s: &str) -> Result<SecretKey, KeyError> {
        let bad = |why: &str| KeyError::BadSecretKey(why.to_string());
        let hex_part = s
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| bad("expected `ed25519-secret:<64 hex digits>`"))?;
        let seed: [u8; 32] = hex::decode(hex_part)
            .map_err(|_| bad("not hexadecimal"))?
            .try_into()
            .map_err(|_| bad("expected 32 bytes (64 hex digits)"))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Reads the key in `path`, or, when there is no such file, makes a new
    /// one and writes it there first: created with mode 0600 (on Unix)
    /// under a temporary name and linked into place, so two processes
    /// starting at once end up with the same key and nobody ever reads a
    /// half-written one. The parent directory is created (0700) if needed.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, KeyError> {
        let failed = |detail: String| KeyError::File {
            path: path.display().to_string(),
            detail,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return SecretKey::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e.to_string())),
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(|e| failed(format!("cannot create its directory: {e}")))?;
        let key = SecretKey::generate()?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".host-key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o600));
        }
        let mut tmp = builder
            .tempfile_in(dir)
            .map_err(|e| failed(e.to_string()))?;
        tmp.write_all(key.to_file().as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| failed(e.to_string()))?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(key),
            // Another process made one first: use theirs.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
                SecretKey::parse(&text)
            }
            Err(e) => Err(failed(e.error.to_string())),
        }
    }

    /// The contents of a secret key file for this key.
    pub fn to_file(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", hex::encode(self.0.to_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// A 32-byte secret for another purpose, derived from this key:
    /// SHA-256 over `domain` (which names the purpose and ends with a NUL)
    /// and the key's seed. Different domains give unrelated secrets, and
    /// none of them reveals the key.
    pub fn derive(&self, domain: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(domain);
        h.update(self.0.to_bytes());
        h.finalize().into()
    }

    /// Signs `message` (which starts with its purpose's domain string).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_text_and_sign() {
        let secret = SecretKey::generate().unwrap();
        let again = SecretKey::parse(&secret.to_file()).unwrap();
        let public = PublicKey::parse(&secret.public().to_string()).unwrap();
        assert_eq!(again.public(), public);
        let sig = secret.sign(b"domain\0message");
        assert!(public.verifies(b"domain\0message", &sig));
        assert!(!public.verifies(b"domain\0other", &sig));
        assert!(!format!("{secret:?}").contains(&secret.to_file()[15..]));
        assert_eq!(secret.derive(b"a\0"), again.derive(b"a\0"));
        assert_ne!(secret.derive(b"a\0"), secret.derive(b"b\0"));
    }

    #[test]
    fn malformed_keys_say_what_is_wrong() {
        let e = PublicKey::parse("rsa:abcd").unwrap_err().to_string();
        assert!(e.contains("ed25519:"), "{e}");
        let e = PublicKey::parse("ed25519:abcd").unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        let e = SecretKey::parse("ed25519:00").unwrap_err().to_string();
        assert!(e.contains("ed25519-secret"), "{e}");
    }

    #[test]
    fn a_host_key_is_made_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/host-key");
        let first = SecretKey::load_or_create(&path).unwrap();
        let second = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(first.public(), second.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
            let dmode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700, "{dmode:o}");
        }
        std::fs::write(&path, "garbage").unwrap();
        let e = SecretKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("ed25519-secret"), "{e}");
    }
}
