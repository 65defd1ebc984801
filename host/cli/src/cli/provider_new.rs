//! `tapedeck provider new` (a project to start a provider from) and
//! `tapedeck provider componentize` (the last build step for languages whose
//! toolchain makes WASI preview 1 core modules, C among them).

use super::{Context, output};
use anyhow::Context as _;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tapedeck::scaffold::{self, Language};

/// Arguments of `provider new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The provider's name: lowercase letters, digits and hyphens, starting
    /// with a letter (it is what `provider-info` reports, e.g. `s3-store`).
    name: String,
    /// The language of the skeleton.
    #[arg(long, value_name = "LANG", default_value = "rust", value_parser = parse_language)]
    lang: Language,
    /// Where to write the project (must not exist, or be empty). Default:
    /// ./NAME.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn parse_language(s: &str) -> Result<Language, String> {
    Language::parse(s).ok_or_else(|| {
        let known: Vec<_> = Language::ALL.iter().map(|l| l.as_str()).collect();
        format!("unknown language `{s}` (known: {})", known.join(", "))
    })
}

pub fn new(ctx: &Context, args: NewArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let created = scaffold::new_provider(&dir, &args.name, args.lang)?;
    let component = created.dir.join(&created.component);
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let line = serde_json::json!({
            "name": args.name,
            "lang": args.lang.as_str(),
            "dir": created.dir,
            "files": created.files,
            "build": created.build,
            "component": component,
            "toolchain": args.lang.toolchain(),
        });
        writeln!(out, "{line}")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "wrote provider `{}` ({}) in {}: {} files (README.md explains them)\n\n\
         needs: {}\n\nnext:\n  cd {}\n  {}\n  tapedeck provider test {}",
        args.name,
        args.lang,
        output::printable(&created.dir.display().to_string()),
        created.files.len(),
        args.lang.toolchain(),
        output::printable(&created.dir.display().to_string()),
        created.build,
        created.component.display(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `provider componentize`.
#[derive(Debug, Args)]
pub struct ComponentizeArgs {
    /// The core module: built for WASI preview 1 as a reactor
    /// (`-mexec-model=reactor`) and linked with the component type of the
    /// `provider` world (wit-bindgen's `provider_component_type.o` for C).
    core: PathBuf,
    /// Where to write the component.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub fn componentize(ctx: &Context, args: ComponentizeArgs) -> anyhow::Result<ExitCode> {
    let core = std::fs::read(&args.core)
        .with_context(|| format!("cannot read the core module {}", args.core.display()))?;
    let component = scaffold::componentize(&core)
        .with_context(|| format!("{} cannot be made a component", args.core.display()))?;
    std::fs::write(&args.output, &component)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let mut out = std::io::stdout().lock();
    if ctx.json {
        let line = serde_json::json!({ "component": args.output, "bytes": component.len() });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "wrote {} ({} bytes); check it with: tapedeck provider test {}",
            args.output.display(),
            component.len(),
            args.output.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
