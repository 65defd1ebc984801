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

/// The traffic of tape `id` of `store`, read through the verified path,
/// without the host's own event frames (the server's stderr, how the
/// session ended), which were never on the wire.
async fn traffic<S: TapeStore>(
    store: &S,
    id: &str,
) -> Result<(Vec<tapedeck_types::Frame>, Verification), TapeLoadError> {
    let tape = TapeReader::new(store).load(id).await?;
    let frames = tape
        .frames
        .into_iter()
        .filter(|f| HostEvent::of(f).is_none())
        .collect();
    Ok((frames, tape.verification))
}

/// Why a drift check could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the tape failed (the provider, or the integrity check).
    #[error(transparent)]
    Read(#[from] TapeLoadError),
    /// The server could not be started, or talking to it failed.
    #[error("the server `{command}`: {source}")]
    Server {
        /// The command line.
        command: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// Sends the client messages of tape `id` to a live server (`command`,
/// started here, its stderr passed through) and compares its answers with
/// the recorded ones (see [`drift::check`]); `patience` bounds the wait for
/// each answer. The server is stopped at the end.
pub async fn verify<S: TapeStore>(
    store: &S,
    id: &str,
    options: &ReplayOptions,
    command: &[std::ffi::OsString],
    patience: std::time::Duration,
) -> Result<(drift::DriftReport, Verification), VerifyError> {
    let (frames, verification) = traffic(store, id).await?;
    let shown = command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let server_error = |source| VerifyError::Server {
        command: shown.clone(),
        source,
    };
    let (program, args) = command.split_first().ok_or_else(|| {
        server_error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no command given",
        ))
    })?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(server_error)?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(server_error(std::io::Error::other(
            "no pipes to the server",
        )));
    };
    let report = drift::check(
        &frames,
        options,
        tokio::io::BufReader::new(stdout),
        stdin,
        patience,
    )
    .await
    .map_err(server_error)?;
    // Its stdin closed (dropped with `check`): give it a moment to exit.
    if tokio::time::timeout(std::time::Duration::from_secs(2), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    Ok((report, verification))
}

/// Compares tapes `a` and `b` of `store` (see [`compare::compare`]), both
/// read through the verified path.
pub async fn diff<S: TapeStore>(
    store: &S,
    a: &str,
    b: &str,
    options: &ReplayOptions,
) -> Result<compare::TapeDiff, TapeLoadError> {
    let (fa, _) = traffic(store, a).await?;
    let (fb, _) = traffic(store, b).await?;
    Ok(compare::compare(&fa, &fb, options))
}

/// Reads tape `id` from `store` through the verified path and indexes it.
pub async fn load<S: TapeStore>(
    store: &S,
    id: &str,
    options: ReplayOptions,
) -> Result<Loaded, LoadError> {
    let (frames, verification) = traffic(store, id).await?;
    let replayer = Replayer::new(&frames, options)?;
    Ok(Loaded {
        replayer,
        verification,
    })
}
