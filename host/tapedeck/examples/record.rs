//! Records one MCP stdio session through the embedded fs provider, with the
//! spool and recovery in place: what `tapedeck record` does, in a handful of
//! lines of the library.
//!
//! ```sh
//! cargo run -p tapedeck --example record -- python3 tests/fixtures/echo_server.py \
//!     < tests/fixtures/demo-session.jsonl
//! ```
//!
//! Tapes go to `./tapes`; the spool is tapedeck's default one.

use std::ffi::OsString;
use tapedeck::Deck;
use tapedeck::recorder::TapeMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server: Vec<OsString> = std::env::args_os().skip(1).collect();
    if server.is_empty() {
        return Err("usage: record SERVER [ARGS...]".into());
    }
    let deck = Deck::builder()
        .tapes_dir("tapes")
        .catch_signals(true)
        .open()
        .await?;
    let outcome = deck
        .record(
            &server,
            TapeMeta::named("example"),
            tokio::io::stdin(),
            tokio::io::stdout(),
        )
        .await?;
    eprintln!(
        "recorded tape {} ({} frames); the server {}",
        outcome.tape_id, outcome.frames, outcome.server
    );
    Ok(())
}
