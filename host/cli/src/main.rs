//! The `tapedeck` command.

mod cli;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let args = match cli::Cli::try_parse_from(&argv) {
        Ok(args) => args,
        Err(e) => {
            let hint = record_hint(&e, &argv);
            // Help and --version go to stdout, usage errors to stderr.
            let _ = e.print();
            if let Some(hint) = hint {
                eprintln!("\n{hint}");
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    cli::init_logging(args.verbose);
    // Recording holds files open; do not stop at the common soft limit.
    tapedeck::rlimit::raise_open_files();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Do not wait on work left running (a write to a client that stopped
    // reading, a provider call after `record` was told to stop): what
    // matters is durable in the spool, and MCP clients kill a process that
    // lingers.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// For `tapedeck record python3 srv.py` (the server command without `--`
/// before it, which clap refuses as an unexpected argument): the same
/// command line with the `--` where it belongs. `None` for any other error.
fn record_hint(e: &clap::Error, argv: &[OsString]) -> Option<String> {
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    // The usage of the subcommand that refused the argument.
    let usage = e.get(ContextKind::Usage)?.to_string();
    if !usage.contains("tapedeck record") {
        return None;
    }
    let ContextValue::String(bad) = e.get(ContextKind::InvalidArg)? else {
        return None;
    };
    // An unknown option (`--nmae`) is a typo, not a server command.
    if bad.starts_with('-') {
        return None;
    }
    let record = argv.iter().position(|a| a == "record")?;
    let at = record + 1 + argv[record + 1..].iter().position(|a| a == bad.as_str())?;
    let command: Vec<String> = argv[at..].iter().map(shell_word).collect();
    Some(format!(
        "hint: put the server command after --: tapedeck record [OPTIONS] -- {}",
        command.join(" ")
    ))
}

/// `arg` as one word a POSIX shell reads back unchanged (single-quoted when
/// it has anything but letters, digits and `_-./=:,@+%`).
fn shell_word(arg: &OsString) -> String {
    let s = arg.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,@+%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(args: &[&str]) -> Option<String> {
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let e = cli::Cli::try_parse_from(&argv).expect_err("a usage error");
        record_hint(&e, &argv)
    }

    #[test]
    fn a_server_command_without_dashes_gets_a_hint() {
        assert_eq!(
            hint(&["tapedeck", "record", "python3", "srv.py"]).as_deref(),
            Some(
                "hint: put the server command after --: tapedeck record [OPTIONS] -- python3 srv.py"
            )
        );
        assert_eq!(
            hint(&[
                "tapedeck", "--json", "record", "--name", "x", "node", "a b.js", "it's"
            ])
            .as_deref(),
            Some(
                r"hint: put the server command after --: tapedeck record [OPTIONS] -- node 'a b.js' 'it'\''s'"
            )
        );
        // Other mistakes get clap's message alone.
        assert_eq!(hint(&["tapedeck", "record", "--nmae", "x"]), None);
        assert_eq!(hint(&["tapedeck", "show", "a", "b"]), None);
        assert_eq!(hint(&["tapedeck", "recrod", "python3"]), None);
    }
}
