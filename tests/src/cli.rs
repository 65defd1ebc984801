//! Running the `tapedeck` binary from end-to-end tests, isolated from the
//! caller's environment: [`Tapedeck`] is the one place that isolation is
//! written, for every test that runs the binary (`host/cli/tests` with
//! cargo's `CARGO_BIN_EXE_tapedeck`, this crate's tests with [`binary`]).

use crate::tape::Tape;
use std::ffi::{OsStr, OsString};
use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `<target>/<profile>/tapedeck`, from the running test's own path
/// (`<target>/<profile>/deps/<test>`): the one cargo built next to the test
/// (`cargo test --workspace` builds it).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // A test binary is in <target>/<profile>/deps, a program (the benches)
    // in <target>/<profile>.
    let dir = exe.parent().expect("the executable's directory");
    let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("<target>/<profile>")
    } else {
        dir
    };
    let bin = profile_dir.join(format!("tapedeck{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the tapedeck binary is missing at {}: build it first (`cargo build -p tapedeck-cli`, or run `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// The component cache the tests of one target directory share, so each
/// component compiles once: `component-cache` in cargo's temporary
/// directory for tests. Pass `env!("CARGO_TARGET_TMPDIR")` (cargo sets it
/// only when it compiles an integration test or bench).
pub fn shared_cache(target_tmpdir: &str) -> PathBuf {
    Path::new(target_tmpdir).join("component-cache")
}

/// [`binary`] run in `dir`, isolated ([`Tapedeck`]), with compiled
/// components cached in `cache`.
pub fn tapedeck(dir: &Path, cache: &Path) -> Tapedeck {
    Tapedeck::new(binary(), dir, cache)
}

/// [`binary`] as a [`Command`] in `dir`, isolated ([`Tapedeck::command`]).
pub fn command(dir: &Path, cache: &Path) -> Command {
    tapedeck(dir, cache).command()
}

/// A `tapedeck` binary run in a working directory `dir`: no configuration,
/// provider, tapes directory or log filter from the environment, the spool
/// in `dir/spool`, the user's data directory in `dir/data` (where the
/// embedded provider stores unless `dir/tapes` exists: this directory's,
/// not the user's), and compiled components cached in `cache` (share one
/// per target, [`shared_cache`]). Environment added with [`Tapedeck::env`]
/// and [`Tapedeck::env_remove`] comes after, and wins.
#[derive(Clone, Debug)]
pub struct Tapedeck {
    binary: PathBuf,
    dir: PathBuf,
    cache: PathBuf,
    /// Set (`Some`) or removed (`None`), in order.
    env: Vec<(OsString, Option<OsString>)>,
    /// A program (and its arguments) that runs the binary, which follows
    /// them with its own arguments.
    launcher: Option<(OsString, Vec<OsString>)>,
}

impl Tapedeck {
    /// `binary` in `dir`, caching components in `cache`.
    pub fn new(
        binary: impl Into<PathBuf>,
        dir: impl Into<PathBuf>,
        cache: impl Into<PathBuf>,
    ) -> Tapedeck {
        Tapedeck {
            binary: binary.into(),
            dir: dir.into(),
            cache: cache.into(),
            env: Vec::new(),
            launcher: None,
        }
    }

    /// Sets `key` to `value` as well.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Tapedeck {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    /// Sets each of `vars` as well.
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Tapedeck {
        vars.into_iter().fold(self, |t, (k, v)| t.env(k, v))
    }

    /// Removes `key` as well (also one the isolation sets).
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Tapedeck {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// Runs the binary through `program ARGS… <binary> <its arguments>`
    /// (e.g. `sh -c 'ulimit -v N && exec "$0" "$@"'`).
    pub fn launcher(mut self, program: impl AsRef<OsStr>, args: &[&str]) -> Tapedeck {
        self.launcher = Some((
            program.as_ref().to_os_string(),
            args.iter().map(OsString::from).collect(),
        ));
        self
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Gives `cmd` (the binary, or a program that starts it) the working
    /// directory and the isolated environment.
    pub fn isolate(&self, cmd: &mut Command) {
        cmd.current_dir(&self.dir)
            .env_remove("TAPEDECK_CONFIG")
            .env_remove("TAPEDECK_PROVIDER")
            .env_remove("TAPEDECK_TAPES_DIR")
            .env_remove("RUST_LOG")
            .env_remove("TAPEDECK_HOST_KEY")
            .env_remove("TAPEDECK_TAPE_KEYS")
            .env_remove("TAPEDECK_TAPE_KEYS_FILE")
            .env("TAPEDECK_SPOOL_DIR", self.dir.join("spool"))
            .env("TAPEDECK_CACHE_DIR", &self.cache)
            .env("XDG_DATA_HOME", self.dir.join("data"));
        for (key, value) in &self.env {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
    }

    /// The binary (through the launcher, if any), isolated, without
    /// arguments yet.
    pub fn command(&self) -> Command {
        let mut cmd = match &self.launcher {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.binary);
                cmd
            }
            None => Command::new(&self.binary),
        };
        self.isolate(&mut cmd);
        cmd
    }

    /// Runs `tapedeck ARGS` to its end, stdin empty; stdout and stderr
    /// captured.
    pub fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command().args(args).output().expect("run tapedeck")
    }

    /// [`Tapedeck::output`] with `input` written to stdin (then closed),
    /// from a thread, so a large input cannot block on a full stdout.
    pub fn output_with_input<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run tapedeck");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            // The server may be gone before it read everything.
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// Runs `tapedeck ARGS`; panics, showing both outputs, unless it exits
    /// with `code`.
    pub fn expect<S: AsRef<OsStr> + Debug>(&self, args: &[S], code: i32) -> Output {
        exited(format!("tapedeck {args:?}"), self.output(args), code)
    }

    /// Runs `tapedeck ARGS`, expecting success; returns stdout.
    pub fn ok<S: AsRef<OsStr> + Debug>(&self, args: &[S]) -> String {
        text(&self.expect(args, 0).stdout)
    }

    /// This host's key (`keys show --json`): what seals the tapes it ends.
    pub fn host_key(&self) -> String {
        let out = self.ok(&["keys", "show", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("keys show --json");
        v["host_key"].as_str().expect("host_key").to_string()
    }

    /// What `show` says of a tape of `frames` frames sealed by this host.
    pub fn verified(&self, frames: u64) -> String {
        format!(
            "verified (sealed by {}, sha256 chain over {frames} frames)",
            self.host_key()
        )
    }

    /// Writes each of `tapes` to `ID.jsonl` in the working directory
    /// ([`Tape::write`]) and runs `tapedeck OPTIONS… import ID.jsonl…`
    /// (e.g. `--provider NAME`, `--json`), expecting success; returns stdout.
    pub fn import(&self, options: &[&str], tapes: &[Tape]) -> String {
        let mut args: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        args.push("import".into());
        args.extend(tapes.iter().map(|t| t.write(&self.dir)));
        self.ok(&args)
    }
}

/// `out`, of the run `what` names; panics, showing its stdout and stderr,
/// unless it exited with `code`.
pub fn exited(what: impl std::fmt::Display, out: Output, code: i32) -> Output {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Output as text, invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A `[providers.NAME]` table for a configuration file: `component`
/// granted `./DIR` read-write (created) at `/tapes`, its config
/// `{ root = "/tapes" }` with `config` appended inside the braces (e.g.
/// `, tamper = { mode = "alter" }`).
pub fn provider_table(name: &str, component: &str, dir: &str, config: &str) -> String {
    format!(
        "[providers.{name}]\ncomponent = {component:?}\nconfig = {{ root = \"/tapes\"{config} }}\n\
         [[providers.{name}.grants.dirs]]\nhost = \"{dir}\"\nguest = \"/tapes\"\nmode = \"rw\"\ncreate = true\n\n"
    )
}

/// The `error: …` lines of `stderr` (a test provider also logs there),
/// each with its newline.
pub fn error_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(|l| format!("{l}\n"))
        .collect()
}
