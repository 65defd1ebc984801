//! Blind index terms: an encrypted tape's terms (`method:tools/call`,
//! `tool:search`, …) stored as keyed hashes, so that a provider matches
//! them by equality, as the contract says, and learns nothing else: not
//! the method, not the tool, only which frames (and tapes) share a term.
//!
//! `b1:` and the first 16 bytes of HMAC-SHA-256(index key, term), in hex.
//! The index key is the key ring's, never rotated (see
//! [`super::keyring`]), so the same term blinds the same way in every
//! tape of the host, and a search blinds its terms the same way.

use super::keyring::Secret;
use hmac::{Hmac, KeyInit, Mac};
use sha2_011::Sha256;

/// The prefix of a blind term.
pub const BLIND_PREFIX: &str = "b1:";

/// `term`, blinded with `index`.
pub fn blind(index: &Secret, term: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&index.0).expect("HMAC takes any key length");
    mac.update(term.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{BLIND_PREFIX}{}", hex::encode(&tag[..16]))
}

/// Every term of `terms`, blinded.
pub fn blind_terms(index: &Secret, terms: &[String]) -> Vec<String> {
    terms.iter().map(|t| blind(index, t)).collect()
}
