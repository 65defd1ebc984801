//! Attacks through the text a provider hands the host: terminal control
//! sequences and sheer size in what `init` says about the provider, in a
//! tape's digest, in error messages and in a trap's stderr, and an argument
//! to a host call larger than `max-return`.
//!
//! The escape sequences are the ones a terminal acts on: clear the screen
//! (`ESC [2J`), retitle the window (`OSC 0`), write the clipboard
//! (`OSC 52`), ring the bell, plus a carriage return that lets a fake
//! "integrity verified" line overwrite the real one. A host that prints any
//! of them raw has been breached; a host that escapes them shows `\u{1b}`.
//!
//! * config `info-attack`: what `init` answers as the provider's name and
//!   version (`escape-name`, `huge-name`, `bad-name`, `escape-version`,
//!   `huge-version`);
//! * `get(id)` for the ids of [`get`]: a tape with a hostile digest, an
//!   error with a hostile or huge message, a panic whose stderr is hostile,
//!   a tape answered under a hostile id, a 32 MiB `log` argument, a tape
//!   planted with a hostile digest for `list` to return;
//! * `read-frames` of those ids answers no frames, so a client that
//!   accepted the tape goes on to check it against its digest.

use crate::exports::tapedeck::storage::tape_storage::{
    EndReason, ProviderInfo, StorageError, TapeHeader, TapeInfo, TapeSummary,
};
use crate::tapedeck::storage::log::{Level, emit};
use crate::tapedeck::storage::types::TapeState;

/// Clear screen, retitle the terminal, write the clipboard (OSC 52: base64
/// of "pwned"), ring the bell, and a carriage return to overwrite the line.
pub const ESCAPES: &str =
    "\u{1b}[2J\u{1b}[H\u{1b}]0;pwned\u{7}\u{1b}]52;c;cHduZWQ=\u{7}\u{7}\r\u{9b}31m";

/// A line meant to pass for the host's own verdict.
pub const FAKE_VERDICT: &str = "\rintegrity verified: 3 frames match the recorded digest\n";

/// One mebibyte.
const MIB: usize = 1 << 20;

/// Applies the `info-attack` named `attack` to what `init` answers.
pub fn info_attack(attack: &str, info: &mut ProviderInfo) {
    match attack {
        "escape-name" => info.name = format!("fs{ESCAPES}{FAKE_VERDICT}"),
        "huge-name" => info.name = "a".repeat(MIB),
        "bad-name" => info.name = "Not A Name!".into(),
        "escape-version" => info.version = format!("1.0.0{ESCAPES}{FAKE_VERDICT}"),
        "huge-version" => info.version = "1".repeat(MIB),
        _ => {}
    }
}

/// True for the ids [`get`] answers.
pub fn is_attack(id: &str) -> bool {
    matches!(
        id,
        "digest-escape"
            | "digest-not-hex"
            | "digest-huge"
            | "error-escape"
            | "error-huge"
            | "panic-escape"
            | "wrong-id-escape"
            | "log-huge"
            | "plant-digest"
    )
}

/// `get(id)` for the text attacks; `None` if `id` is not one.
pub fn get(id: &str) -> Option<Result<TapeInfo, StorageError>> {
    let answer = match id {
        // A finished tape whose digest is a terminal attack.
        "digest-escape" => Ok(tape(id, Some(format!("{ESCAPES}{FAKE_VERDICT}")))),
        // The right length, not hex.
        "digest-not-hex" => Ok(tape(id, Some("zz".repeat(32)))),
        // Hex, a mebibyte of it.
        "digest-huge" => Ok(tape(id, Some("ab".repeat(MIB / 2)))),
        // An error message that attacks the terminal.
        "error-escape" => Err(StorageError::Io(format!(
            "disk on fire{ESCAPES}{FAKE_VERDICT}"
        ))),
        // An error message of 30 MiB (under the default `max-return`).
        "error-huge" => Err(StorageError::Internal(format!(
            "{}{ESCAPES}",
            "E".repeat(30 * MIB)
        ))),
        // A trap explained by hostile stderr.
        "panic-escape" => panic!("{ESCAPES}{FAKE_VERDICT}"),
        // Another tape than asked for, under an id that attacks the
        // terminal: the host's contract-violation message quotes it.
        "wrong-id-escape" => Ok(tape(&format!("other{ESCAPES}{FAKE_VERDICT}"), None)),
        // A host call with a 32 MiB argument.
        "log-huge" => {
            emit(Level::Info, &"x".repeat(32 * MIB));
            let mut info = tape(id, None);
            info.header.name = "ESCAPED: the host took a 32 MiB log argument".into();
            Ok(info)
        }
        // Stores a tape `planted` whose digest attacks the terminal, for
        // `list` (and `search`) to return among the others.
        "plant-digest" => {
            let summary = TapeSummary {
                frame_count: 0,
                byte_count: 0,
                ended_at: 1,
                digest: Some(format!("{ESCAPES}{FAKE_VERDICT}")),
                seal: None,
            };
            let planted = tape("planted", None).header;
            crate::store::save(planted, Vec::new(), summary, EndReason::Completed)
                .map(|_| tape(id, None))
        }
        _ => return None,
    };
    Some(answer)
}

/// A finished, empty tape `id` with `digest`.
fn tape(id: &str, digest: Option<String>) -> TapeInfo {
    TapeInfo {
        header: TapeHeader {
            id: id.to_string(),
            session_id: String::new(),
            name: String::new(),
            tags: Vec::new(),
            created_at: 0,
            envelope: None,
        },
        state: TapeState::Finished,
        frame_count: 0,
        byte_count: 0,
        ended_at: Some(0),
        digest,
        seal: None,
    }
}
