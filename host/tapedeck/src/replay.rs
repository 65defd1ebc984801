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

/// A live MCP server beside a tape (`verify`, `replay --on-miss
/// passthrough`, `record --mode new-episodes`): its stdin and stdout piped,
/// its stderr passed through, killed if it outlives its use.
pub struct LiveServer {
    child: tokio::process::Child,
}

impl LiveServer {
    /// Starts `command` (program and arguments).
    pub fn start(command: &[std::ffi::OsString]) -> std::io::Result<LiveServer> {
        let (program, args) = command.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given")
        })?;
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        Ok(LiveServer { child })
    }

    /// Its stdin and its stdout (buffered), once.
    pub fn pipes(
        &mut self,
    ) -> std::io::Result<(
        tokio::process::ChildStdin,
        tokio::io::BufReader<tokio::process::ChildStdout>,
    )> {
        match (self.child.stdin.take(), self.child.stdout.take()) {
            (Some(i), Some(o)) => Ok((i, tokio::io::BufReader::new(o))),
            _ => Err(std::io::Error::other("no pipes to the server")),
        }
    }

    /// Waits up to 2 s for it to exit (its stdin closed), then kills it.
    pub async fn stop(mut self) {
        if tokio::time::timeout(std::time::Duration::from_secs(2), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
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
    let mut live = LiveServer::start(command).map_err(server_error)?;
    let (stdin, stdout) = live.pipes().map_err(server_error)?;
    let report = drift::check(&frames, options, stdout, stdin, patience)
        .await
        .map_err(server_error)?;
    // Its stdin closed (dropped with `check`): give it a moment to exit.
    live.stop().await;
    Ok((report, verification))
}

/// A real value to put back where the recording has a redaction
/// placeholder (`--secret KIND=env:VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The placeholder's kind (`[REDACTED:<kind>:…]`, e.g. `bearer`), or a
    /// whole placeholder for one value only.
    pub placeholder: String,
    /// The value (never printed).
    pub value: String,
}

/// A transformation for [`Replayer::with_outgoing`]: each placeholder named
/// by `secrets` is replaced by its value, JSON-escaped (placeholders sit
/// inside JSON strings).
pub fn fill_secrets(secrets: Vec<Secret>) -> impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static {
    use crate::redact::PLACEHOLDER_PREFIX;
    let secrets: Vec<(Vec<u8>, bool, Vec<u8>)> = secrets
        .into_iter()
        .map(|s| {
            let whole = s.placeholder.starts_with(PLACEHOLDER_PREFIX);
            let pattern = if whole {
                s.placeholder.into_bytes()
            } else {
                format!("{PLACEHOLDER_PREFIX}{}:", s.placeholder).into_bytes()
            };
            let escaped = serde_json::to_string(&s.value).unwrap_or_default();
            let inner = escaped.len().saturating_sub(1).max(1);
            let escaped = escaped.as_bytes()[1..inner].to_vec();
            (pattern, whole, escaped)
        })
        .collect();
    move |bytes: &[u8]| {
        let mut out = bytes.to_vec();
        for (pattern, whole, value) in &secrets {
            let mut i = 0;
            while let Some(at) = find(&out[i..], pattern).map(|p| p + i) {
                // A kind: `[REDACTED:kind:` then 16 hex digits and `]`.
                let end = if *whole {
                    Some(at + pattern.len())
                } else {
                    let tail = out.get(at + pattern.len()..at + pattern.len() + 17);
                    tail.filter(|t| t[..16].iter().all(u8::is_ascii_hexdigit) && t[16] == b']')
                        .map(|_| at + pattern.len() + 17)
                };
                match end {
                    Some(end) => {
                        out.splice(at..end, value.iter().copied());
                        i = at + value.len();
                    }
                    None => i = at + 1,
                }
            }
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_replace_their_placeholders_json_escaped() {
        let fill = fill_secrets(vec![
            Secret {
                placeholder: "bearer".into(),
                value: "tok\"en".into(),
            },
            Secret {
                placeholder: "[REDACTED:password:00112233445566ff]".into(),
                value: "hunter2".into(),
            },
        ]);
        let answer = br#"{"a":"Bearer [REDACTED:bearer:0123456789abcdef]","b":"[REDACTED:password:00112233445566ff]","c":"[REDACTED:password:ffffffffffffffff]","d":"[REDACTED:bearer:short]"}"#;
        assert_eq!(
            String::from_utf8(fill(answer)).unwrap(),
            r#"{"a":"Bearer tok\"en","b":"hunter2","c":"[REDACTED:password:ffffffffffffffff]","d":"[REDACTED:bearer:short]"}"#
        );
    }
}
