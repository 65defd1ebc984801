//! `provider new`: the skeletons, embedded at build time (see `build.rs`)
//! from `guest-examples/skeletons/` and the files they share with the rest
//! of the repository.

use crate::ScaffoldError;
use std::path::{Path, PathBuf};

/// One file of a skeleton.
pub(crate) struct SkeletonFile {
    /// Where it goes, relative to the project directory.
    pub path: &'static str,
    pub contents: &'static [u8],
    /// Written with the executable bits (build scripts).
    pub executable: bool,
}

mod embedded {
    use super::SkeletonFile;
    include!(concat!(env!("OUT_DIR"), "/skeletons.rs"));
}

/// The placeholder name in the skeletons' sources, replaced by the
/// provider's name (and its `_` form, for Rust's crate and file names).
pub(crate) const PLACEHOLDER: &str = "my-provider";
const PLACEHOLDER_SNAKE: &str = "my_provider";

/// The languages `provider new` writes a skeleton in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Rust on the guest SDK (vendored), built with cargo for `wasm32-wasip2`.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with jco (StarlingMonkey).
    JavaScript,
    /// C, built with clang and wasi-libc, then made a component by tapedeck.
    C,
}

impl Language {
    /// Every language, in the order of the docs.
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::C,
    ];

    /// The short name `--lang` takes: `rust`, `python`, `js`, `c`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::C => "c",
        }
    }

    /// Parses a short name (`javascript` is accepted for `js`).
    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "rust" => Some(Language::Rust),
            "python" => Some(Language::Python),
            "js" | "javascript" => Some(Language::JavaScript),
            "c" => Some(Language::C),
            _ => None,
        }
    }

    fn files(self) -> &'static [SkeletonFile] {
        match self {
            Language::Rust => embedded::RUST,
            Language::Python => embedded::PYTHON,
            Language::JavaScript => embedded::JAVASCRIPT,
            Language::C => embedded::C,
        }
    }

    /// The one command that builds the component, run in the project.
    pub fn build_command(self) -> &'static str {
        match self {
            Language::Rust => "cargo build --release",
            Language::Python => "./build.sh",
            Language::JavaScript => "npm run build",
            Language::C => "make",
        }
    }

    /// What the build needs installed, besides the project's files.
    pub fn toolchain(self) -> &'static str {
        match self {
            Language::Rust => "Rust 1.95 or later with `rustup target add wasm32-wasip2`",
            Language::Python => {
                "Python 3 with venv (the build installs componentize-py 0.25.1 into .venv)"
            }
            Language::JavaScript => {
                "Node.js 20 with npm (the build installs jco 1.34.0 into node_modules)"
            }
            Language::C => {
                "make, clang-19, lld-19, wasi-libc and libclang-rt-19-dev-wasm32 (Debian), \
                 and `tapedeck` on PATH (it makes the component)"
            }
        }
    }

    /// Where the build puts the component, relative to the project.
    pub fn component_path(self, name: &str) -> PathBuf {
        match self {
            Language::Rust => PathBuf::from(format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            )),
            _ => PathBuf::from(format!("{name}.wasm")),
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a provider name: what `provider-info` accepts (1 to 64 lowercase
/// letters, digits and inner hyphens), starting with a letter (it also
/// names a Rust crate and files).
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |why: &str| {
        Err(ScaffoldError::InvalidName {
            name: name.to_string(),
            why: why.to_string(),
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("it must be 1 to 64 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("it must start with a lowercase letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("use lowercase letters, digits and hyphens only (e.g. `s3-store`)");
    }
    if name.ends_with('-') || name.contains("--") {
        return bad("hyphens go between letters or digits, one at a time");
    }
    Ok(())
}

/// What [`new_provider`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    /// The project directory.
    pub dir: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// The command that builds the component, run in `dir`.
    pub build: &'static str,
    /// Where the build puts the component, relative to `dir`.
    pub component: PathBuf,
}

/// Writes the skeleton of a provider named `name` in `language` into `dir`,
/// which must not exist or be empty. Files are created, never overwritten.
pub fn new_provider(dir: &Path, name: &str, language: Language) -> Result<Created, ScaffoldError> {
    validate_name(name)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ScaffoldError::Io { path, source }
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(ScaffoldError::NotEmpty(dir.to_path_buf()));
        }
    }
    let snake = name.replace('-', "_");
    let mut files = Vec::new();
    for file in language.files() {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let contents = personalized(file, name, &snake);
        write_new(&path, &contents, file.executable).map_err(io(&path))?;
        files.push(PathBuf::from(file.path));
    }
    Ok(Created {
        dir: dir.to_path_buf(),
        files,
        build: language.build_command(),
        component: language.component_path(name),
    })
}

/// The file with the placeholder name replaced, in the project's own files
/// (not in the copies of tapedeck's contract, SDK or bindings).
fn personalized(file: &SkeletonFile, name: &str, snake: &str) -> Vec<u8> {
    let shared = ["wit/", "vendor/", "gen/"]
        .iter()
        .any(|p| file.path.starts_with(p));
    match std::str::from_utf8(file.contents) {
        Ok(text) if !shared => text
            .replace(PLACEHOLDER, name)
            .replace(PLACEHOLDER_SNAKE, snake)
            .into_bytes(),
        _ => file.contents.to_vec(),
    }
}

fn write_new(path: &Path, contents: &[u8], executable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    let mut f = options.open(path)?;
    f.write_all(contents)
}
