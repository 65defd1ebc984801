//! Driving `tapedeck record` with real MCP clients and servers: the official
//! Python and TypeScript SDKs' programs in `tests/mcp-sdk/` (installed, pinned,
//! by `scripts/mcp-sdks.sh`, part of `./scripts/guest-toolchains.sh`), and
//! [`Mimic`], a client that ends a session the way those SDKs do (close the
//! server's stdin, wait 2 s, `SIGTERM`, wait 2 s, `SIGKILL`), timed.
//!
//! Everything runs isolated in a [`Workspace`]: its own spool, tapes
//! directory, `HOME` and pid directory (the test servers write their pid
//! there, so a test can check that none survives).

use crate::cli;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The command that installs the SDKs (and the other test toolchains).
pub const INSTALL: &str = "./scripts/guest-toolchains.sh";

/// How long the official SDKs wait after closing the server's stdin before
/// `SIGTERM`, and after `SIGTERM` before `SIGKILL`.
pub const SDK_GRACE: Duration = Duration::from_secs(2);

/// Names another `tapedeck` binary for these tests (e.g. an older build, to
/// see what they catch); by default the one next to the test
/// ([`cli::binary`]).
pub const BINARY_ENV: &str = "TAPEDECK_MCP_TEST_BINARY";

/// The `tapedeck` binary the sessions run: [`BINARY_ENV`], else
/// [`cli::binary`].
pub fn binary() -> PathBuf {
    match std::env::var_os(BINARY_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{BINARY_ENV}: no file at {}",
                path.display()
            );
            path
        }
        None => cli::binary(),
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/mcp-sdk`: the SDK programs, `requirements.txt`, `package.json`.
pub fn sdk_dir() -> PathBuf {
    repo_root().join("tests").join("mcp-sdk")
}

/// A path where no server script exists (for "a server that cannot start").
pub fn missing_server_script() -> PathBuf {
    let path = sdk_dir().join("no-such-server.py");
    assert!(!path.exists(), "{} must not exist", path.display());
    path
}

/// The pinned version of `package` in a pin file's `name==version` or
/// `"name": "version"` line.
fn pinned(file: &Path, package: &str) -> String {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let eq = format!("{package}==");
    let quoted = format!("\"{package}\": \"");
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix(&eq) {
            return v.to_string();
        }
        if let Some(v) = line.strip_prefix(&quoted) {
            return v.trim_end_matches([',', '"']).to_string();
        }
    }
    panic!("{} pins no {package}", file.display());
}

/// The venv's Python with the pinned `mcp` installed; panics naming
/// [`INSTALL`] when it is missing or at another version.
pub fn python() -> PathBuf {
    let venv = repo_root().join("target/guest-tools/mcp-python");
    let python = venv.join("bin/python");
    let want = pinned(&sdk_dir().join("requirements.txt"), "mcp");
    let lib = venv.join("lib");
    let installed = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.flatten().find_map(|d| {
            let dist = d.path().join(format!("site-packages/mcp-{want}.dist-info"));
            dist.is_dir().then_some(dist)
        })
    });
    assert!(
        python.is_file() && installed.is_some(),
        "the MCP Python SDK (mcp=={want}) is not installed in {}: run `{INSTALL}` first",
        venv.display()
    );
    python
}

/// `node` (from `PATH`, as an absolute path) with the pinned
/// `@modelcontextprotocol/sdk` installed in `tests/mcp-sdk/node_modules`;
/// panics naming [`INSTALL`] when either is missing or at another version.
pub fn node() -> PathBuf {
    let want = pinned(&sdk_dir().join("package.json"), "@modelcontextprotocol/sdk");
    let manifest = sdk_dir().join("node_modules/@modelcontextprotocol/sdk/package.json");
    let have = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    assert!(
        have.as_deref() == Some(want.as_str()),
        "the MCP TypeScript SDK (@modelcontextprotocol/sdk {want}) is not installed in {} (found {have:?}): run `{INSTALL}` first",
        sdk_dir().join("node_modules").display()
    );
    let node = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("node"))
        .find(|p| p.is_file());
    node.unwrap_or_else(|| panic!("node is not on PATH: install Node.js 20 and run `{INSTALL}`"))
}

/// One of the official SDKs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// `mcp` (Python): `server.py`, `client.py`.
    Python,
    /// `@modelcontextprotocol/sdk`: `server.mjs`, `client.mjs`.
    TypeScript,
}

/// What a test server does on `SIGTERM`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnSigterm {
    /// Dies at once.
    Default,
    /// Ignores it.
    Ignore,
    /// Exits 0 this many seconds after the first one.
    ExitAfter(f64),
}

/// How a test server behaves (see the options in `tests/mcp-sdk/server.py`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerOptions {
    /// Seconds it takes to exit after its stdin closed.
    pub exit_delay: f64,
    /// What it does on `SIGTERM`.
    pub on_sigterm: OnSigterm,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            exit_delay: 0.0,
            on_sigterm: OnSigterm::Default,
        }
    }
}

impl Sdk {
    /// Its name in test output.
    pub fn name(self) -> &'static str {
        match self {
            Sdk::Python => "python",
            Sdk::TypeScript => "typescript",
        }
    }

    /// The interpreter and script of its `file`; panics naming [`INSTALL`]
    /// when the SDK is not installed.
    fn program(self, file: &str) -> Vec<String> {
        let interpreter = match self {
            Sdk::Python => python(),
            Sdk::TypeScript => node(),
        };
        vec![
            interpreter.display().to_string(),
            sdk_dir().join(file).display().to_string(),
        ]
    }

    /// The command line of its test server (an `echo`, `big`, `sleep` and
    /// `crash` tool).
    pub fn server(self, options: ServerOptions) -> Vec<String> {
        let mut argv = self.program(match self {
            Sdk::Python => "server.py",
            Sdk::TypeScript => "server.mjs",
        });
        if options.exit_delay > 0.0 {
            argv.extend(["--exit-delay".into(), options.exit_delay.to_string()]);
        }
        match options.on_sigterm {
            OnSigterm::Default => {}
            OnSigterm::Ignore => argv.extend(["--on-sigterm".into(), "ignore".into()]),
            OnSigterm::ExitAfter(s) => {
                argv.extend(["--on-sigterm".into(), format!("exit-after:{s}")]);
            }
        }
        argv
    }

    /// The command line of its test client (options in `tests/mcp-sdk/client.*`).
    pub fn client(self) -> Vec<String> {
        self.program(match self {
            Sdk::Python => "client.py",
            Sdk::TypeScript => "client.mjs",
        })
    }

    /// The script name that appears in its server's command line.
    pub fn server_script(self) -> &'static str {
        match self {
            Sdk::Python => "server.py",
            Sdk::TypeScript => "server.mjs",
        }
    }
}

/// A temporary directory where `tapedeck` runs isolated: the spool in
/// `spool/`, tapes in `tapes/`, `HOME` the directory itself, server pids in
/// `pids/`.
pub struct Workspace {
    dir: tempfile::TempDir,
    cache: PathBuf,
}

impl Workspace {
    /// A new workspace; compiled components are cached in `cache` (share one
    /// per test target so the provider compiles once).
    pub fn new(cache: &Path) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("pids")).expect("pids dir");
        Workspace {
            dir,
            cache: cache.to_path_buf(),
        }
    }

    /// A new workspace with a component cache of its own, empty: the first
    /// `tapedeck` commands compile the provider (as on first use).
    pub fn with_cold_cache() -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("pids")).expect("pids dir");
        let cache = dir.path().join("component-cache");
        Workspace { dir, cache }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the test servers write their pids.
    pub fn pid_dir(&self) -> PathBuf {
        self.path().join("pids")
    }

    /// The environment a launched `tapedeck` gets (an SDK client passes it
    /// on; the SDKs add only `HOME`, `PATH`, `USER` and the like).
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |s: &str| self.path().join(s).display().to_string();
        vec![
            ("TAPEDECK_SPOOL_DIR".into(), p("spool")),
            (
                "TAPEDECK_CACHE_DIR".into(),
                self.cache.display().to_string(),
            ),
            ("TAPEDECK_TAPES_DIR".into(), p("tapes")),
            ("MCP_TEST_PID_DIR".into(), p("pids")),
            ("HOME".into(), self.path().display().to_string()),
        ]
    }

    /// [`binary`] in the workspace, isolated ([`Workspace::isolate`]).
    fn isolated(&self) -> cli::Tapedeck {
        let mut tapedeck = cli::Tapedeck::new(binary(), self.path(), &self.cache).envs(self.env());
        for var in [
            "XDG_STATE_HOME",
            "XDG_DATA_HOME",
            "XDG_CACHE_HOME",
            "XDG_CONFIG_HOME",
        ] {
            tapedeck = tapedeck.env_remove(var);
        }
        tapedeck
    }

    /// Runs `cmd` in the workspace, isolated as [`cli::Tapedeck`] isolates
    /// `tapedeck` (no configuration, provider or log filter from the
    /// environment; the workspace's spool and the shared component cache),
    /// plus [`Workspace::env`] (tapes directory, `HOME`, pid directory) and
    /// no `XDG_*` directories.
    pub fn isolate(&self, cmd: &mut Command) {
        self.isolated().isolate(cmd);
    }

    /// `tapedeck record --name NAME -- SERVER…` as a command line.
    pub fn record_argv(&self, name: &str, server: &[String]) -> Vec<String> {
        let mut argv = vec![
            binary().display().to_string(),
            "record".into(),
            "--name".into(),
            name.into(),
            "--".into(),
        ];
        argv.extend(server.iter().cloned());
        argv
    }

    /// Runs `tapedeck ARGS` to completion; panics with its output unless it
    /// succeeds. Returns stdout.
    pub fn run(&self, args: &[&str]) -> String {
        self.isolated().ok(args)
    }

    /// Loads the provider once (`tapedeck list`), so the sessions that follow
    /// find its compiled component in the cache instead of all compiling it.
    pub fn warm_up(&self) {
        self.run(&["list", "--json"]);
    }

    /// `tapedeck list --json`.
    pub fn list(&self) -> Vec<Value> {
        let out = self.run(&["list", "--json"]);
        match serde_json::from_str(&out) {
            Ok(Value::Array(tapes)) => tapes,
            other => panic!("list --json is not an array: {other:?}\n{out}"),
        }
    }

    /// `tapedeck show ID --json --frames`.
    pub fn show(&self, id: &str) -> Value {
        let out = self.run(&["show", id, "--json", "--frames"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("show --json: {e}\n{out}"))
    }

    /// The pids the test servers wrote so far.
    pub fn server_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = std::fs::read_dir(self.pid_dir())
            .expect("read pid dir")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".pid")?.parse().ok())
            .collect();
        pids.sort_unstable();
        pids
    }
}

/// A recorded tape's frames, as `show --json --frames` gives them.
#[derive(Debug, Default)]
pub struct TapeFrames {
    /// JSON messages client → server.
    pub c2s: Vec<Value>,
    /// JSON messages server → client.
    pub s2c: Vec<Value>,
    /// Events tapedeck recorded itself (`tapedeck:event` frames), parsed.
    pub events: Vec<Value>,
    /// Any other frame (neither JSON nor an event), as JSON text.
    pub other: Vec<String>,
}

/// The prefix of a host event frame's payload.
const EVENT_PREFIX: &str = "tapedeck:event\n";

impl TapeFrames {
    /// Sorts the `frame_list` of `show` into messages and events.
    pub fn of(show: &Value) -> TapeFrames {
        let mut frames = TapeFrames::default();
        for f in show["frame_list"].as_array().into_iter().flatten() {
            let dir = f["dir"].as_str().unwrap_or("?");
            if let Some(msg) = f.get("msg") {
                match dir {
                    "c2s" => frames.c2s.push(msg.clone()),
                    _ => frames.s2c.push(msg.clone()),
                }
            } else if let Some(event) = f["text"]
                .as_str()
                .and_then(|t| t.strip_prefix(EVENT_PREFIX))
            {
                frames
                    .events
                    .push(serde_json::from_str(event).unwrap_or_else(|_| json!(event)));
            } else {
                frames.other.push(f.to_string());
            }
        }
        frames
    }

    /// What is wrong with these frames for a session in which the client
    /// wrote `sent` messages and read `received` back: counts that differ, a
    /// request without its response, frames that are neither. Empty if
    /// nothing.
    pub fn problems(&self, sent: usize, received: usize) -> Vec<String> {
        let mut problems = Vec::new();
        if self.c2s.len() != sent {
            problems.push(format!(
                "{} client→server messages recorded, the client sent {sent}",
                self.c2s.len()
            ));
        }
        if self.s2c.len() != received {
            problems.push(format!(
                "{} server→client messages recorded, the client received {received}",
                self.s2c.len()
            ));
        }
        let requests: BTreeSet<String> = self
            .c2s
            .iter()
            .filter(|m| m.get("method").is_some())
            .filter_map(|m| m.get("id").map(Value::to_string))
            .collect();
        let responses: BTreeSet<String> = self
            .s2c
            .iter()
            .filter(|m| m.get("result").is_some() || m.get("error").is_some())
            .filter_map(|m| m.get("id").map(Value::to_string))
            .collect();
        let unanswered: Vec<_> = requests.difference(&responses).collect();
        if !unanswered.is_empty() {
            problems.push(format!(
                "requests without a recorded response: {unanswered:?}"
            ));
        }
        if !self.other.is_empty() {
            problems.push(format!(
                "{} frames neither JSON nor a tapedeck event, first: {}",
                self.other.len(),
                self.other[0].chars().take(200).collect::<String>()
            ));
        }
        problems
    }
}

/// The tapes of `list` by name; a name recorded more than once maps to all.
pub fn tapes_by_name(tapes: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut by_name: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for t in tapes {
        by_name
            .entry(t["name"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(t.clone());
    }
    by_name
}

/// True if `pid` is a live process (not a zombie) whose command line
/// contains `needle` (so a reused pid does not count).
pub fn alive(pid: u32, needle: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    if matches!(state, Some(Some('Z' | 'X'))) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

/// Of `pids`, those still alive (see [`alive`]) after up to `within`.
pub fn survivors(pids: &[u32], needle: &str, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p, needle)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `SIGKILL`s each of `pids` still alive with `needle` in its command line
/// (cleanup after a failed check; these are the test's own processes).
pub fn kill_survivors(pids: &[u32], needle: &str) {
    for &pid in pids {
        if alive(pid, needle) {
            signal(pid, rustix::process::Signal::KILL, false);
        }
    }
}

/// Sends `sig` to `pid`, or to the process group `pid` leads.
fn signal(pid: u32, sig: rustix::process::Signal, group: bool) {
    use rustix::process::{Pid, kill_process, kill_process_group};
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = if group {
        kill_process_group(pid, sig)
    } else {
        kill_process(pid, sig)
    };
}

/// How an SDK client run went: its JSON summary (see `tests/mcp-sdk/client.*`)
/// and its stderr (tapedeck's and the servers' stderr pass through it).
pub struct ClientRun {
    /// The summary the client printed.
    pub summary: Value,
    /// The client's stderr.
    pub stderr: String,
    /// Its exit status.
    pub status: ExitStatus,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `sdk`'s test client with `args` (its `--command`s launch
/// `tapedeck record` in `ws`, with [`Workspace::env`] and `ws` as the working
/// directory); kills it after `timeout`.
pub fn run_client(sdk: Sdk, ws: &Workspace, args: &[String], timeout: Duration) -> ClientRun {
    let argv = sdk.client();
    let stdout_path = ws.path().join(format!("{}-client.stdout", sdk.name()));
    let stderr_path = ws.path().join(format!("{}-client.stderr", sdk.name()));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).args(args).arg("--cwd").arg(ws.path());
    for (k, v) in ws.env() {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.current_dir(sdk_dir())
        .env("HOME", ws.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("client stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("client stderr file"));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the SDK client");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the {} SDK client ran longer than {timeout:?}; its stderr:\n{}",
                sdk.name(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "the {} SDK client printed no summary ({e}; {status}):\nstdout: {stdout}\nstderr: {stderr}",
            sdk.name()
        )
    });
    ClientRun {
        summary,
        stderr,
        status,
        elapsed,
    }
}

/// Where the shutdown signals of a [`Mimic`] go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalTarget {
    /// To tapedeck's pid (the TypeScript SDK: `child.kill('SIGTERM')`).
    Process,
    /// To the process group tapedeck leads (the Python SDK starts the server
    /// command in a new session and uses `killpg`).
    Group,
}

/// A client that writes JSON-RPC lines to `tapedeck record` and reads its
/// answers, then ends the session as the official SDKs do ([`Mimic::shutdown`]).
pub struct Mimic {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    reader: Option<JoinHandle<()>>,
    target: SignalTarget,
    stderr_path: PathBuf,
    next_id: u64,
    /// Lines written to tapedeck.
    pub sent: usize,
    /// Lines read from tapedeck.
    pub received: usize,
}

/// How a [`Mimic`] session ended.
#[derive(Debug)]
pub struct Ended {
    /// tapedeck's exit status.
    pub status: ExitStatus,
    /// From closing tapedeck's stdin to its exit.
    pub close_to_exit: Duration,
    /// If tapedeck was still running [`SDK_GRACE`] after its stdin closed:
    /// from the `SIGTERM` to its exit.
    pub sigterm_to_exit: Option<Duration>,
    /// True if it was still running [`SDK_GRACE`] after the `SIGTERM` and got
    /// `SIGKILL`.
    pub killed: bool,
    /// Lines written to tapedeck, in all.
    pub sent: usize,
    /// Lines read from tapedeck, in all (also after its stdin closed).
    pub received: usize,
    /// tapedeck's stderr.
    pub stderr: String,
}

impl Ended {
    /// What is wrong with how tapedeck ended for an SDK client: it had to be
    /// killed, a signal ended it, or it took longer than [`SDK_GRACE`] after
    /// the `SIGTERM`. Empty if nothing.
    pub fn problems(&self) -> Vec<String> {
        use std::os::unix::process::ExitStatusExt;
        let mut problems = Vec::new();
        if self.killed {
            problems.push(format!(
                "tapedeck was still running {SDK_GRACE:?} after SIGTERM and got SIGKILL ({})",
                self.status
            ));
        } else if let Some(sig) = self.status.signal() {
            problems.push(format!("tapedeck was killed by signal {sig}"));
        }
        if let Some(t) = self.sigterm_to_exit
            && t > SDK_GRACE
        {
            problems.push(format!("tapedeck exited {t:?} after SIGTERM"));
        }
        problems
    }
}

/// How long a [`Mimic`] waits for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

impl Mimic {
    /// Starts `argv` (a `tapedeck record` command line, isolated by
    /// [`Workspace::isolate`]) with piped stdin and stdout; its
    /// stderr goes to a file named after `name` in the workspace. With
    /// [`SignalTarget::Group`] it leads a new process group.
    pub fn spawn(ws: &Workspace, name: &str, argv: &[String], target: SignalTarget) -> Mimic {
        use std::os::unix::process::CommandExt;
        let stderr_path = ws.path().join(format!("{name}.stderr"));
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        ws.isolate(&mut cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        if target == SignalTarget::Group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().expect("start tapedeck record");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 20, stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Mimic {
            child,
            stdin,
            lines,
            reader: Some(reader),
            target,
            stderr_path,
            next_id: 1,
            sent: 0,
            received: 0,
        }
    }

    /// tapedeck's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Writes one line (a `\n` is added).
    pub fn send_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        if let Err(e) = stdin.write_all(&buf).and_then(|()| stdin.flush()) {
            panic!("writing to tapedeck failed: {e}\nstderr: {}", self.stderr());
        }
        self.sent += 1;
    }

    /// Writes a notification.
    pub fn notify(&mut self, method: &str, params: Value) {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_line(msg.to_string().as_bytes());
    }

    /// A request with the next id, as a line.
    pub fn request_line(&mut self, method: &str, params: Value) -> (u64, Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        (id, msg.to_string().into_bytes())
    }

    /// Reads lines until the response to `id`; panics on a timeout or the end
    /// of tapedeck's output.
    fn answer(&mut self, id: u64) -> Value {
        loop {
            let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
                Ok(line) => line,
                Err(e) => panic!(
                    "no answer to request {id} from tapedeck ({e:?}; {} lines so far)\nstderr: {}",
                    self.received,
                    self.stderr()
                ),
            };
            self.received += 1;
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if msg["id"] == json!(id) && (msg.get("result").is_some() || msg.get("error").is_some())
            {
                return msg;
            }
        }
    }

    /// Sends a request and waits for its response.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let (id, line) = self.request_line(method, params);
        self.send_line(&line);
        self.answer(id)
    }

    /// `initialize` (protocol 2025-11-25) and `notifications/initialized`.
    pub fn handshake(&mut self) -> Value {
        let answer = self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "tapedeck-mimic", "version": "1.0.0"},
            }),
        );
        assert!(
            answer.get("result").is_some(),
            "initialize failed: {answer}"
        );
        self.notify("notifications/initialized", json!({}));
        answer
    }

    /// Calls a tool and returns the concatenated text of its result; panics
    /// on an error.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> String {
        let answer = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        text_of(&answer)
    }

    /// Sends all `requests` (method, params) at once from a writer thread
    /// while reading their responses; returns them in request order.
    pub fn pipeline(&mut self, requests: Vec<(String, Value)>) -> Vec<Value> {
        let lines: Vec<(u64, Vec<u8>)> = requests
            .into_iter()
            .map(|(method, params)| self.request_line(&method, params))
            .collect();
        let ids: Vec<u64> = lines.iter().map(|(id, _)| *id).collect();
        let mut stdin = self.stdin.take().expect("stdin still open");
        let count = lines.len();
        let writer = std::thread::spawn(move || {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut stdin);
            for (_, line) in &lines {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            drop(out);
            Ok::<_, std::io::Error>(stdin)
        });
        let mut answers: BTreeMap<u64, Value> = BTreeMap::new();
        while answers.len() < count {
            let line = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
                Ok(line) => line,
                Err(e) => panic!(
                    "pipeline: {} of {count} answers, then none ({e:?})\nstderr: {}",
                    answers.len(),
                    self.stderr()
                ),
            };
            self.received += 1;
            if let Ok(msg) = serde_json::from_slice::<Value>(&line)
                && let Some(id) = msg["id"].as_u64()
            {
                answers.insert(id, msg);
            }
        }
        match writer.join().expect("writer thread") {
            Ok(stdin) => self.stdin = Some(stdin),
            Err(e) => panic!("pipeline: writing failed: {e}\nstderr: {}", self.stderr()),
        }
        self.sent += count;
        ids.iter()
            .map(|id| answers.remove(id).expect("an answer per id"))
            .collect()
    }

    /// Ends the session as the official SDKs do: close tapedeck's stdin,
    /// wait up to [`SDK_GRACE`] for it to exit, then `SIGTERM` (to the
    /// process or its group), wait up to [`SDK_GRACE`] again, then `SIGKILL`.
    /// Lines tapedeck still writes meanwhile are read and counted.
    pub fn shutdown(mut self) -> Ended {
        use rustix::process::Signal;
        let group = self.target == SignalTarget::Group;
        drop(self.stdin.take());
        let closed = Instant::now();
        let mut status = self.wait_for(SDK_GRACE);
        let mut sigterm_to_exit = None;
        let mut killed = false;
        if status.is_none() {
            signal(self.pid(), Signal::TERM, group);
            let termed = Instant::now();
            status = self.wait_for(SDK_GRACE);
            if status.is_some() {
                sigterm_to_exit = Some(termed.elapsed());
            } else {
                sigterm_to_exit = Some(termed.elapsed());
                killed = true;
                signal(self.pid(), Signal::KILL, group);
                status = Some(self.child.wait().expect("wait for tapedeck"));
            }
        }
        let close_to_exit = closed.elapsed();
        // tapedeck's stdout is closed once it exited (nothing else holds it).
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(_line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.received += 1;
        }
        if let Some(reader) = self.reader.take()
            && reader.is_finished()
        {
            let _ = reader.join();
        }
        Ended {
            status: status.expect("exited"),
            close_to_exit,
            sigterm_to_exit,
            killed,
            sent: self.sent,
            received: self.received,
            stderr: self.stderr(),
        }
    }

    /// Polls for tapedeck's exit for up to `limit`.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for tapedeck") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Mimic {
    fn drop(&mut self) {
        // A test that panicked mid-session leaves nothing running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The text of a `tools/call` answer; panics on an error.
pub fn text_of(answer: &Value) -> String {
    let result = answer
        .get("result")
        .unwrap_or_else(|| panic!("tools/call failed: {}", short(answer)));
    assert_ne!(
        result["isError"],
        json!(true),
        "tool error: {}",
        short(answer)
    );
    result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect()
}

/// `v` as JSON text, cut to 300 characters.
pub fn short(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}
