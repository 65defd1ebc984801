//! `tapedeck keys show|init|rotate`: the host key that seals this host's
//! tapes and the hosts whose seals it trusts (`[seals]`; see
//! `tapedeck::seals`), and the tape keys that encrypt them
//! (`[encryption]`; see `tapedeck::encryption`).

use super::{Context, output};
use anyhow::bail;
use std::io::Write as _;
use std::process::ExitCode;
use tapedeck::encryption::{ENV_TAPE_KEYS, KeysSource};
use tapedeck::store::codec::TapeKeys;

/// `tapedeck keys init`: makes the tape key ring where `[encryption]`
/// says, refusing to replace one.
pub fn init(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let settings = ctx.config()?.encryption.clone();
    let path = match settings.source() {
        KeysSource::Environment => bail!(
            "the tape keys come from ${ENV_TAPE_KEYS} here; unset it to make a key file, or put a ring's text in it (`tapedeck keys init` elsewhere, then the file's contents)"
        ),
        KeysSource::File(p) => p,
    };
    if path.exists() {
        bail!(
            "{} exists already: its keys may encrypt tapes, so it is never replaced (`tapedeck keys rotate` adds a key)",
            path.display()
        );
    }
    let ring = TapeKeys::generate()?;
    ring.store(&path, false)?;
    // The host key too, so that both exist from now on.
    let seal = ctx.host_seal()?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "tape_keys_file": path.display().to_string(),
            "current": ring.current_id(),
            "host_key": seal.public().to_string(),
        }))?;
    } else {
        println!(
            "made tape key {} in {} (mode 0600): every new tape is stored encrypted from now on",
            ring.current_id(),
            output::printable(&path.display().to_string())
        );
        println!(
            "Keep a copy of that file somewhere safe: without it, the tapes it encrypts cannot be read."
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tapedeck keys rotate`: a new current KEK in the ring file; the old
/// ones stay for reading.
pub fn rotate(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let settings = ctx.config()?.encryption.clone();
    let path = match settings.source() {
        KeysSource::Environment => bail!(
            "the tape keys come from ${ENV_TAPE_KEYS} here: rotate the file they came from, then update the variable"
        ),
        KeysSource::File(p) => p,
    };
    let Some(mut ring) = TapeKeys::load(&path)? else {
        bail!(
            "there are no tape keys in {} yet: `tapedeck keys init` makes them",
            path.display()
        );
    };
    let old = ring.current_id().to_string();
    let new = ring.rotate()?;
    ring.store(&path, true)?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "tape_keys_file": path.display().to_string(),
            "current": new,
            "previous": old,
            "keys": ring.ids().collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "tape key {new} is current in {}: new tapes are encrypted with it; {old} and older keys stay to read the tapes they encrypted",
            output::printable(&path.display().to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `tapedeck keys show`: loads (on first use, makes) the host key and
/// prints its public half, to give to the hosts that should trust this
/// one's tapes (`[seals] trusted-hosts` there).
pub fn show(ctx: &mut Context) -> anyhow::Result<ExitCode> {
    let seal = ctx.host_seal()?;
    let me = seal.public();
    let others: Vec<String> = seal
        .trusted()
        .keys()
        .iter()
        .filter(|k| **k != me)
        .map(ToString::to_string)
        .collect();
    let require = seal.trusted().requires_seals();
    let source = ctx.config()?.encryption.source();
    let tape_keys = ctx.tape_keys()?;
    if ctx.json {
        output::print_json(&serde_json::json!({
            "host_key": me.to_string(),
            "key_file": seal.path().display().to_string(),
            "trusted_hosts": others,
            "require_seals": require,
            "tape_keys": tape_keys.as_ref().map(|k| serde_json::json!({
                "source": source.to_string(),
                "current": k.current_id(),
                "keys": k.ids().collect::<Vec<_>>(),
            })),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "host key:      {me}")?;
    writeln!(
        out,
        "key file:      {}",
        output::printable(&seal.path().display().to_string())
    )?;
    if others.is_empty() {
        writeln!(
            out,
            "trusted hosts: none besides this one ([seals] trusted-hosts)"
        )?;
    } else {
        writeln!(out, "trusted hosts: {}", others.join(", "))?;
    }
    writeln!(
        out,
        "unsealed tapes: {}",
        if require {
            "refused ([seals] require = true)"
        } else {
            "read and shown as unsealed, never as verified ([seals] require = false)"
        }
    )?;
    match &tape_keys {
        None => writeln!(
            out,
            "tape keys:     none ({}): tapes are stored compressed, not encrypted; `tapedeck keys init` makes them",
            output::printable(&source.to_string())
        )?,
        Some(k) => {
            let older: Vec<&str> = k.ids().filter(|id| *id != k.current_id()).collect();
            writeln!(
                out,
                "tape keys:     {} (current){} in {}",
                k.current_id(),
                if older.is_empty() {
                    String::new()
                } else {
                    format!(", older {}", older.join(", "))
                },
                output::printable(&source.to_string())
            )?;
        }
    }
    writeln!(
        out,
        "To let another host verify this host's tapes, add the host key to `[seals] trusted-hosts` in its configuration."
    )?;
    Ok(ExitCode::SUCCESS)
}
