//! `tapedeck keys show`: the host key that seals this host's tapes, and
//! the hosts whose seals it trusts (`[seals]`; see `tapedeck::seals`).

use super::{Context, output};
use std::io::Write as _;
use std::process::ExitCode;

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
    if ctx.json {
        output::print_json(&serde_json::json!({
            "host_key": me.to_string(),
            "key_file": seal.path().display().to_string(),
            "trusted_hosts": others,
            "require_seals": require,
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
    writeln!(
        out,
        "To let another host verify this host's tapes, add the host key to `[seals] trusted-hosts` in its configuration."
    )?;
    Ok(ExitCode::SUCCESS)
}
