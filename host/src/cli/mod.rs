//! Command-line interface: argument parsing and dispatch.

mod provider_test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Record MCP / JSON-RPC sessions into sandboxed WebAssembly storage providers.
#[derive(Debug, Parser)]
#[command(name = "tapedeck", version, about)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with provider components.
    #[command(subcommand)]
    Provider(ProviderCommand),
}

#[derive(Debug, Subcommand)]
enum ProviderCommand {
    /// Run the conformance suite against a provider (default: the embedded
    /// fs provider), in a scratch directory granted at /tapes.
    Test(provider_test::TestArgs),
}

/// Sets up `tracing` output on stderr.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Provider(ProviderCommand::Test(args)) => provider_test::run(args).await,
    }
}
