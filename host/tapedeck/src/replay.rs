//! Replay: a stored tape answers an MCP client again, without its server
//! (crate `tapedeck-replay`, re-exported here), read through the verified
//! path: the frames are decrypted by the store's codec and checked against
//! the tape's digest and seal before anything is answered, and client
//! requests are redacted with the recording's rules before they are
//! matched, so a secret never has to be in the tape for replay to match.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tapedeck::Deck;
//! use tapedeck::replay::{self, OnMiss, ReplayOptions};
//!
//! let deck = Deck::builder().tapes_dir("tapes").open().await?;
//! let loaded = replay::load(deck.store(), "my-tape-id", ReplayOptions::default()).await?;
//! // With the recording's redactor (`RedactionSettings::redactor`) instead
//! // of `None`, requests are redacted as the tape was before matching.
//! let mut replayer = loaded.with_incoming(None);
//! // Serve it on stdio (an MCP client launched this program) ...
//! let stdin = tokio::io::BufReader::new(tokio::io::stdin());
//! let report = replay::serve(&mut replayer, stdin, tokio::io::stdout(), OnMiss::Error, |miss| {
//!     eprintln!("{miss}")
//! })
//! .await?;
//! // ... or answer messages one by one: replayer.handle(line).
//! assert!(report.clean(false));
//! # Ok(()) }
//! ```

use crate::recorder::HostEvent;
use crate::redact::Redactor;
use std::sync::Arc;
pub use tapedeck_replay::*;
use tapedeck_store::TapeStore;
use tapedeck_store::read::{TapeLoadError, TapeReader, Verification};

/// Why a tape could not be loaded for replay.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading it failed (the provider, or the integrity check).
    #[error(transparent)]
    Read(#[from] TapeLoadError),
    /// It holds nothing to answer with.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// A tape loaded and indexed for replay, with how it was verified.
pub struct Loaded {
    /// The indexed tape.
    pub replayer: Replayer,
    /// What the integrity check found (a tape without a digest, from before
    /// seals, is `Unverified`; a tampered one is refused before this).
    pub verification: Verification,
}

impl Loaded {
    /// Redacts each client message with `redactor` (the recording's rules,
    /// keyed by this host) before matching it; `None` leaves them as they
    /// are.
    pub fn with_incoming(self, redactor: Option<Arc<Redactor>>) -> Replayer {
        match redactor {
            Some(r) => self
                .replayer
                .with_incoming(move |line: &[u8]| r.redact(line).payload.into_owned()),
            None => self.replayer,
        }
    }
}

/// Reads tape `id` from `store` through the verified path and indexes it.
pub async fn load<S: TapeStore>(
    store: &S,
    id: &str,
    options: ReplayOptions,
) -> Result<Loaded, LoadError> {
    let tape = TapeReader::new(store).load(id).await?;
    // The host's own event frames (the server's stderr, how the session
    // ended) were never on the wire: only the traffic is replayed.
    let traffic: Vec<_> = tape
        .frames
        .into_iter()
        .filter(|f| HostEvent::of(f).is_none())
        .collect();
    let replayer = Replayer::new(&traffic, options)?;
    Ok(Loaded {
        replayer,
        verification: tape.verification,
    })
}
