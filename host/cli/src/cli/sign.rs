//! `tapedeck provider keygen | sign | verify`: detached ed25519 signatures
//! of provider components (see `tapedeck::signing`).

use super::Context;
use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tapedeck::signing::{PublicKey, SecretKey, SignatureFile};

/// Arguments of `provider keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; never
    /// overwritten).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

/// Arguments of `provider sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The component to sign.
    file: PathBuf,
    /// The secret key file (from `provider keygen`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Where to write the signature. Default: FILE.sig.
    #[arg(short, long, value_name = "SIG")]
    output: Option<PathBuf>,
}

/// Arguments of `provider verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The component to check.
    file: PathBuf,
    /// The signature file. Default: FILE.sig.
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key (`ed25519:…`); repeatable. Default: the
    /// configuration's `trusted-keys`.
    #[arg(long = "trusted-key", value_name = "KEY")]
    trusted_keys: Vec<String>,
}

fn sig_path(file: &Path, explicit: Option<&PathBuf>) -> PathBuf {
    explicit.cloned().unwrap_or_else(|| {
        let mut s = file.as_os_str().to_owned();
        s.push(".sig");
        PathBuf::from(s)
    })
}

fn write_new(path: &Path, contents: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// `provider keygen`.
pub fn keygen(ctx: &Context, args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate()?;
    write_new(&args.output, &key.to_file(), true)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({ "secret_key_file": args.output, "public_key": key.public().to_string() })
        );
    } else {
        println!("wrote secret key {}", args.output.display());
        println!("public key: {}", key.public());
        println!("trust it with:  trusted-keys = [\"{}\"]", key.public());
    }
    Ok(ExitCode::SUCCESS)
}

/// `provider sign`.
pub fn sign(ctx: &Context, args: SignArgs) -> anyhow::Result<ExitCode> {
    let secret = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read secret key {}", args.key.display()))?;
    let secret = SecretKey::parse(&secret).with_context(|| args.key.display().to_string())?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read component {}", args.file.display()))?;
    tapedeck::sandbox::load::check_header(&args.file.display().to_string(), &bytes)?;
    let sig = SignatureFile::sign(&secret, &bytes);
    let out = sig_path(&args.file, args.output.as_ref());
    std::fs::write(&out, sig.to_text())
        .with_context(|| format!("cannot write {}", out.display()))?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({ "signature": out, "key": sig.key.to_string(), "sha256": hex::encode(sig.sha256) })
        );
    } else {
        println!(
            "signed {} (sha256 {}) with {} -> {}",
            args.file.display(),
            hex::encode(sig.sha256),
            sig.key,
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `provider verify`.
pub fn verify(ctx: &mut Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trusted: Vec<PublicKey> = if args.trusted_keys.is_empty() {
        let keys = ctx.config()?.trusted_keys.clone();
        if keys.is_empty() {
            bail!(
                "no trusted keys: pass --trusted-key ed25519:… or set `trusted-keys` in the configuration"
            );
        }
        keys
    } else {
        args.trusted_keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<_, _>>()?
    };
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read component {}", args.file.display()))?;
    let path = sig_path(&args.file, args.signature.as_ref());
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read signature {}", path.display()))?;
    let signer = SignatureFile::parse(&text)
        .and_then(|sig| sig.verify(&bytes, &trusted))
        .map_err(|e| anyhow!("{}: {e}", args.file.display()))?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({ "file": args.file, "valid": true, "key": signer.to_string() })
        );
    } else {
        println!("{}: good signature by {signer}", args.file.display());
    }
    Ok(ExitCode::SUCCESS)
}
