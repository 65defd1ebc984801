//! Detached ed25519 signatures of provider components.
//!
//! An operator who configures `trusted-keys` accepts a component file only
//! with a signature, made by one of those keys, over exactly its bytes. The
//! check runs before the component is compiled.
//!
//! What is signed is `"tapedeck-component-signature-v1\0"` followed by the
//! SHA-256 of the component: the prefix keeps these signatures from being
//! valid for anything else. A signature file is text:
//!
//! ```text
//! tapedeck-signature v1
//! key ed25519:<public key, 64 hex digits>
//! sha256 <hash of the component, 64 hex digits>
//! signature <ed25519 signature, 128 hex digits>
//! ```
//!
//! A secret key file holds `ed25519-secret:<32-byte seed, 64 hex digits>`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

const DOMAIN: &[u8] = b"tapedeck-component-signature-v1\0";
const FILE_MAGIC: &str = "tapedeck-signature v1";
const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// Why a key, a signature or a verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A public key is not `ed25519:<64 hex digits>` or not a valid point.
    #[error("invalid public key {key:?}: {why}")]
    BadPublicKey {
        /// The text given.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A secret key file is malformed.
    #[error("invalid secret key: {0}")]
    BadSecretKey(String),
    /// A signature file is malformed.
    #[error("invalid signature file: {0}")]
    BadSignatureFile(String),
    /// The signature names another component (its hash differs).
    #[error(
        "the signature is for a component with SHA-256 {signed}, but this component has {actual}"
    )]
    WrongComponent {
        /// Hash in the signature file.
        signed: String,
        /// Hash of the bytes given.
        actual: String,
    },
    /// The signing key is not among the trusted keys.
    #[error("the component is signed by {key}, which is not a trusted key (trusted: {trusted})")]
    UntrustedKey {
        /// The key that signed.
        key: String,
        /// The trusted keys.
        trusted: String,
    },
    /// The signature does not verify.
    #[error("the signature by {key} does not verify: the component or the signature was altered")]
    Invalid {
        /// The key that claims to have signed.
        key: String,
    },
}

/// An ed25519 public key, written `ed25519:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses `ed25519:<hex>`.
    pub fn parse(s: &str) -> Result<PublicKey, SignatureError> {
        let bad = |why: &str| SignatureError::BadPublicKey {
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
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| bad("not a valid ed25519 key"))
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

/// A secret signing key.
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "SecretKey({})", self.public())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, SignatureError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| SignatureError::BadSecretKey(format!("no randomness available: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Parses the contents of a secret key file.
    pub fn parse(s: &str) -> Result<SecretKey, SignatureError> {
        let bad = |why: &str| SignatureError::BadSecretKey(why.to_string());
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

    /// The contents of a secret key file for this key.
    pub fn to_file(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", hex::encode(self.0.to_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `component`.
    pub fn sign(&self, component: &[u8]) -> SignatureFile {
        let sha256: [u8; 32] = Sha256::digest(component).into();
        SignatureFile {
            key: self.public(),
            sha256,
            signature: self.0.sign(&message(&sha256)),
        }
    }
}

fn message(sha256: &[u8; 32]) -> Vec<u8> {
    [DOMAIN, sha256.as_slice()].concat()
}

/// A detached signature of one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// Who signed.
    pub key: PublicKey,
    /// SHA-256 of the signed component.
    pub sha256: [u8; 32],
    /// The signature.
    pub signature: Signature,
}

impl SignatureFile {
    /// The text form (see the module docs).
    pub fn to_text(&self) -> String {
        format!(
            "{FILE_MAGIC}\nkey {}\nsha256 {}\nsignature {}\n",
            self.key,
            hex::encode(self.sha256),
            hex::encode(self.signature.to_bytes())
        )
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<SignatureFile, SignatureError> {
        let bad = |why: String| SignatureError::BadSignatureFile(why);
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(FILE_MAGIC) {
            return Err(bad(format!("the first line must be `{FILE_MAGIC}`")));
        }
        let mut field = |name: &str| -> Result<String, SignatureError> {
            let line = lines
                .next()
                .ok_or_else(|| bad(format!("missing the `{name}` line")))?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_string)
                .ok_or_else(|| bad(format!("expected a `{name} …` line, found {line:?}")))
        };
        let key = PublicKey::parse(&field("key")?)?;
        let sha256: [u8; 32] = hex::decode(field("sha256")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("`sha256` is not 64 hex digits".into()))?;
        let sig: [u8; 64] = hex::decode(field("signature")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("`signature` is not 128 hex digits".into()))?;
        Ok(SignatureFile {
            key,
            sha256,
            signature: Signature::from_bytes(&sig),
        })
    }

    /// Checks that this signature covers exactly `component` and was made by
    /// one of `trusted`. Returns the key that signed.
    pub fn verify(
        &self,
        component: &[u8],
        trusted: &[PublicKey],
    ) -> Result<PublicKey, SignatureError> {
        let actual: [u8; 32] = Sha256::digest(component).into();
        if actual != self.sha256 {
            return Err(SignatureError::WrongComponent {
                signed: hex::encode(self.sha256),
                actual: hex::encode(actual),
            });
        }
        if !trusted.contains(&self.key) {
            return Err(SignatureError::UntrustedKey {
                key: self.key.to_string(),
                trusted: trusted
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        self.key
            .0
            .verify_strict(&message(&self.sha256), &self.signature)
            .map_err(|_| SignatureError::Invalid {
                key: self.key.to_string(),
            })?;
        Ok(self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_through_text() {
        let secret = SecretKey::generate().unwrap();
        let secret = SecretKey::parse(&secret.to_file()).unwrap();
        let public = PublicKey::parse(&secret.public().to_string()).unwrap();
        let sig = secret.sign(b"component bytes");
        let sig = SignatureFile::parse(&sig.to_text()).unwrap();
        assert_eq!(sig.verify(b"component bytes", &[public]), Ok(public));
    }

    #[test]
    fn refuses_other_bytes_other_keys_and_forgeries() {
        let alice = SecretKey::generate().unwrap();
        let mallory = SecretKey::generate().unwrap();
        let sig = alice.sign(b"good");
        let trusted = [alice.public()];

        let e = sig.verify(b"evil", &trusted).unwrap_err();
        assert!(matches!(e, SignatureError::WrongComponent { .. }), "{e}");

        let e = mallory.sign(b"good").verify(b"good", &trusted).unwrap_err();
        assert!(matches!(e, SignatureError::UntrustedKey { .. }), "{e}");
        assert!(e.to_string().contains(&alice.public().to_string()));

        // Mallory rewrites the hash and keeps Alice's key and signature.
        let mut forged = sig.clone();
        forged.sha256 = Sha256::digest(b"evil").into();
        let e = forged.verify(b"evil", &trusted).unwrap_err();
        assert!(matches!(e, SignatureError::Invalid { .. }), "{e}");
    }

    #[test]
    fn malformed_inputs_say_what_is_wrong() {
        let e = PublicKey::parse("rsa:abcd").unwrap_err().to_string();
        assert!(e.contains("ed25519:"), "{e}");
        let e = PublicKey::parse("ed25519:abcd").unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
        let e = SignatureFile::parse("hello").unwrap_err().to_string();
        assert!(e.contains("first line"), "{e}");
        let e = SecretKey::parse("ed25519:00").unwrap_err().to_string();
        assert!(e.contains("ed25519-secret"), "{e}");
    }
}
