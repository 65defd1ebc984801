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

use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"tapedeck-component-signature-v1\0";
const FILE_MAGIC: &str = "tapedeck-signature v1";

pub use tapedeck_store::keys::{KeyError, PublicKey, SecretKey};

/// Why a key, a signature or a verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A key is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
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
    pub signature: [u8; 64],
}

impl SignatureFile {
    /// Signs `component` with `key`.
    pub fn sign(key: &SecretKey, component: &[u8]) -> SignatureFile {
        let sha256: [u8; 32] = Sha256::digest(component).into();
        SignatureFile {
            key: key.public(),
            sha256,
            signature: key.sign(&message(&sha256)),
        }
    }

    /// The text form (see the module docs).
    pub fn to_text(&self) -> String {
        format!(
            "{FILE_MAGIC}\nkey {}\nsha256 {}\nsignature {}\n",
            self.key,
            hex::encode(self.sha256),
            hex::encode(self.signature)
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
            signature: sig,
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
        if !self.key.verifies(&message(&self.sha256), &self.signature) {
            return Err(SignatureError::Invalid {
                key: self.key.to_string(),
            });
        }
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
        let sig = SignatureFile::sign(&secret, b"component bytes");
        let sig = SignatureFile::parse(&sig.to_text()).unwrap();
        assert_eq!(sig.verify(b"component bytes", &[public]), Ok(public));
    }

    #[test]
    fn refuses_other_bytes_other_keys_and_forgeries() {
        let alice = SecretKey::generate().unwrap();
        let mallory = SecretKey::generate().unwrap();
        let sig = SignatureFile::sign(&alice, b"good");
        let trusted = [alice.public()];

        let e = sig.verify(b"evil", &trusted).unwrap_err();
        assert!(matches!(e, SignatureError::WrongComponent { .. }), "{e}");

        let e = SignatureFile::sign(&mallory, b"good")
            .verify(b"good", &trusted)
            .unwrap_err();
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
        let e = SignatureFile::parse("hello").unwrap_err().to_string();
        assert!(e.contains("first line"), "{e}");
        let text = "tapedeck-signature v1\nkey ed25519:abcd\n";
        let e = SignatureFile::parse(text).unwrap_err().to_string();
        assert!(e.contains("32 bytes"), "{e}");
    }
}
