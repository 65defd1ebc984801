//! The hostile-provider suite: filesystem escapes, limit bombs and malformed
//! answers from providers written to attack the sandbox
//! (`tests/programs/hostile`, and the WebAssembly-text
//! `table-bomb`). Network attacks are in `network.rs`.
//!
//! Every attack runs while a healthy embedded fs provider, in the same
//! process, on the same runtime thread and the same engine, records a
//! session; each test asserts:
//!
//! (a) the attack is refused (`refused: …` from the guest, which reports
//!     what it saw) or stopped with a typed, readable [`ProviderError`];
//! (b) the host is unchanged: the read-only grant is byte-for-byte and
//!     timestamp-for-timestamp intact, and nothing appeared outside the
//!     read-write grant (next to it, or in the other provider's directory);
//! (c) the next call on the hostile provider works (its instance recycled);
//! (d) the healthy recording stored every frame intact (digest verified),
//!     and never stalled (went without running, or waited for an answer)
//!     longer than [`HEALTHY_LATENCY`] during the attack.
//!
//! Each test names, in a comment, the protection it depends on: removing
//! that protection makes the test fail.

mod paging;
mod spool;
mod text;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant, SystemTime};
use tapedeck::embedded;
use tapedeck::error::ProviderError;
use tapedeck::recorder::{DigestChain, Recorder, RecorderOptions, TapeMeta};
use tapedeck::sandbox::{
    Allocator, ComponentSource, DirGrant, Grants, Limits, Protection, ProviderSpec, Sandbox,
    WasmProvider,
};
use tapedeck::store::{ProviderResult, TapeStore};
use tapedeck::units::{ByteSize, Millis};
use tapedeck_tests::{artifacts, recording};
use tapedeck_types::{Direction, Frame, TapeState};

// The `tapedeck` binary, for the modules' tests of the command.
use crate::tapedeck_in;

// ---------------------------------------------------------------------------
// The environment: directories, the healthy provider, snapshots

/// What the read-only grant holds, as the tests create it.
const RO_CONTENT: &[u8] = b"read-only content that must never change\n";
/// What the other provider's directory holds that the attacker wants.
const SECRET: &[u8] = b"the other provider's secret\n";

/// A temporary root holding `data` (granted read-write at `/data`), `ro`
/// (granted read-only at `/ro`) and `other`, the healthy provider's
/// directory, which the hostile provider is never granted; plus one
/// sandbox shared by both providers.
struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    ro: PathBuf,
    other: PathBuf,
    sandbox: Sandbox,
    healthy: Arc<WasmProvider>,
}

impl Env {
    async fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (data, ro, other) = (root.join("data"), root.join("ro"), root.join("other"));
        for d in [&data, &ro, &other, &ro.join("empty")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(ro.join("file.txt"), RO_CONTENT).unwrap();
        std::fs::write(other.join("secret.txt"), SECRET).unwrap();
        // Links the host planted, pointing out of the grants.
        std::os::unix::fs::symlink("../other", data.join("host-up")).unwrap();
        std::os::unix::fs::symlink("/etc", ro.join("host-etc")).unwrap();
        std::os::unix::fs::symlink(&other, ro.join("host-abs")).unwrap();
        // The pooling allocator, as `tapedeck` itself uses: every attack here
        // must be stopped by it too. Sized for a few providers at once.
        let d = Limits::default();
        let sandbox = Sandbox::builder()
            .pooling_for([&d, &d, &d, &d])
            .build()
            .unwrap();
        assert!(
            matches!(sandbox.engine().allocator(), Allocator::Pooling(_)),
            "this machine should allow the pooling allocator: {}",
            sandbox.engine().allocator()
        );
        let healthy = WasmProvider::start(&sandbox, &embedded::fs_provider_spec(&other), &root)
            .await
            .unwrap();
        Env {
            _tmp: tmp,
            root,
            data,
            ro,
            other,
            sandbox,
            healthy: Arc::new(healthy),
        }
    }

    /// The hostile provider's spec: `/data` read-write, `/ro` read-only,
    /// told where the other provider's directory is.
    fn hostile_spec(&self, limits: Limits) -> ProviderSpec {
        self.hostile_spec_with(
            vec![
                DirGrant::read_write(&self.data, "/data"),
                DirGrant::read_only(&self.ro, "/ro"),
            ],
            limits,
        )
    }

    /// The hostile provider with the given directory grants.
    fn hostile_spec_with(&self, dirs: Vec<DirGrant>, limits: Limits) -> ProviderSpec {
        ProviderSpec::new(
            "hostile",
            ComponentSource::File(artifacts::HOSTILE_PROVIDER.into()),
        )
        .with_config(serde_json::json!({ "other": self.other.display().to_string() }))
        .with_grants(Grants {
            dirs,
            ..Grants::default()
        })
        .with_limits(limits)
    }

    async fn start(&self, spec: &ProviderSpec) -> WasmProvider {
        WasmProvider::start(&self.sandbox, spec, &self.root)
            .await
            .unwrap_or_else(|e| panic!("start {}: {e}", spec.name))
    }

    async fn hostile(&self, limits: Limits) -> WasmProvider {
        self.start(&self.hostile_spec(limits)).await
    }

    /// What an attack must not change: every entry of the read-only grant
    /// (type, contents, link target, size, mode, modification time), the
    /// names next to the grants, and the other provider's secret and every
    /// name in its directory that its fs store did not write.
    fn snapshot(&self) -> Snapshot {
        let mut ro = Vec::new();
        walk(&self.ro, &self.ro, &mut ro);
        let mut root: Vec<String> = names(&self.root);
        root.sort();
        let mut other = Vec::new();
        walk(&self.other, &self.other, &mut other);
        // The fs store's own files (`index.log`, `tapes/`, `tmp/`) change as
        // the healthy provider records; anything else is an intruder.
        other.retain(|(path, _)| {
            !(path == "index.log"
                || path == "tapes"
                || path == "tmp"
                || path.starts_with("tapes/")
                || path.starts_with("tmp/"))
        });
        Snapshot { ro, root, other }
    }

    /// (b): the host is as it was.
    fn assert_host_unchanged(&self, before: &Snapshot) {
        let after = self.snapshot();
        assert_eq!(before.ro, after.ro, "the read-only grant changed");
        assert_eq!(before.root, after.root, "names appeared next to the grants");
        assert_eq!(
            before.other, after.other,
            "the other provider's directory changed"
        );
    }

    /// Runs `attack` on `p` while the healthy provider records (d), checks
    /// the host is unchanged (b) and that the next call on `p` works (c).
    async fn run<T>(
        &self,
        p: &WasmProvider,
        attack: impl Future<Output = ProviderResult<T>>,
    ) -> ProviderResult<T> {
        let before = self.snapshot();
        // A safety net: an attack the host failed to stop fails the test
        // instead of hanging it.
        let r = tokio::time::timeout(ATTACK_DEADLINE, alongside(&self.healthy, attack))
            .await
            .expect("the attack was neither refused nor stopped in time");
        self.assert_host_unchanged(&before);
        p.stats()
            .await
            .unwrap_or_else(|e| panic!("(c) the next call works on a fresh instance: {e}"));
        r
    }

    /// (a) for attacks the guest reports on: `get(id)` answers, and what
    /// the guest saw starts with `refused: `. Returns what it saw.
    async fn refused(&self, p: &WasmProvider, id: &str) -> String {
        let seen = self
            .run(p, p.get(id))
            .await
            .unwrap_or_else(|e| panic!("attack {id}: {e}"))
            .header
            .name;
        assert!(
            seen.starts_with("refused: ") && !seen.contains("ESCAPED"),
            "attack {id} was not refused: {seen}"
        );
        seen
    }

    /// (a) for attacks the host must stop: the call fails, the instance is
    /// recycled, the protection is counted. Returns the error.
    async fn stopped<T: std::fmt::Debug>(
        &self,
        p: &WasmProvider,
        protection: Protection,
        attack: impl Future<Output = ProviderResult<T>>,
    ) -> ProviderError {
        let (_, recycled) = p.instance_counts();
        let tripped = p.protection_report().count(protection);
        let e = self
            .run(p, attack)
            .await
            .expect_err("the attack was stopped");
        assert!(e.recycled_instance(), "{e}");
        assert_eq!(
            p.instance_counts().1,
            recycled + 1,
            "instance recycled: {e}"
        );
        assert_eq!(
            p.protection_report().count(protection),
            tripped + 1,
            "{protection} counted once: {} ({e})",
            p.protection_report()
        );
        e
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    ro: Vec<(String, String)>,
    root: Vec<String>,
    other: Vec<(String, String)>,
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every entry under `dir` (not following links), relative to `base`, with
/// a description of what it is.
fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mtime = meta
            .modified()
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        let ft = meta.file_type();
        let what = if ft.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if ft.is_dir() {
            format!("dir mode {mode:o} mtime {mtime}")
        } else if ft.is_file() {
            let content = std::fs::read(&path).unwrap();
            format!(
                "file mode {mode:o} mtime {mtime} {:?}",
                String::from_utf8_lossy(&content)
            )
        } else {
            format!("special mode {mode:o} mtime {mtime}")
        };
        out.push((rel, what));
        if ft.is_dir() {
            walk(base, &path, out);
        }
    }
}

// ---------------------------------------------------------------------------
// (d): a healthy recording alongside every attack

/// The longest the healthy recording may stall (not run, or wait for an
/// answer) while an attack runs. Generous, so that a slow or busy machine
/// does not fail the test: the attack that spins is given a CPU budget of
/// 5 s, so a provider that did not yield would hold the runtime thread
/// clearly longer than this.
const HEALTHY_LATENCY: Duration = Duration::from_millis(3000);

/// The longest any attack may take before the test gives up on it (well
/// above every limit the tests configure, below the default timeout).
const ATTACK_DEADLINE: Duration = Duration::from_secs(25);

/// Frame `n` of the healthy recording.
fn healthy_frame(n: u64) -> (Direction, Vec<u8>) {
    let dir = if n.is_multiple_of(2) {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    let payload = match n % 3 {
        0 => format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call"}}"#).into_bytes(),
        1 => format!(r#"{{"jsonrpc":"2.0","id":{n},"result":{{"x":"é😀"}}}}"#).into_bytes(),
        _ => vec![0xff, 0xfe, n as u8, b'\r', 0],
    };
    (dir, payload)
}

/// Runs `attack` while the healthy provider records a session, then checks
/// the session was stored whole and never stalled longer than
/// [`HEALTHY_LATENCY`].
async fn alongside<T>(healthy: &Arc<WasmProvider>, attack: impl Future<Output = T>) -> T {
    let recorder = Recorder::new(healthy.clone(), RecorderOptions::default());
    let rec = Arc::new(
        recorder
            .start(TapeMeta {
                name: "healthy session".into(),
                ..TapeMeta::default()
            })
            .await
            .expect("the healthy provider creates its tape"),
    );
    let id = rec.id().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    // Records a frame every 2 ms and asks the healthy provider for the tape
    // every 10th frame. `worst` is the longest the feeder went without
    // running (a starved runtime thread) or waited for an answer.
    let feeder = {
        let (rec, stop, worst, healthy, id) = (
            rec.clone(),
            stop.clone(),
            worst.clone(),
            healthy.clone(),
            id.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut last = Instant::now();
            while !stop.load(SeqCst) || n < 20 {
                let (dir, payload) = healthy_frame(n);
                rec.record(dir, payload);
                n += 1;
                if n.is_multiple_of(10) {
                    healthy
                        .get(&id)
                        .await
                        .expect("the healthy provider answers");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                worst.fetch_max(last.elapsed().as_millis() as u64, SeqCst);
                last = Instant::now();
            }
            n
        })
    };
    // The recording is under way before the attack starts.
    let t = Instant::now();
    while healthy.get(&id).await.unwrap().frame_count == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "healthy recording never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let out = attack.await;
    stop.store(true, SeqCst);
    let recorded = feeder.await.unwrap();
    let rec = Arc::into_inner(rec).expect("the feeder is done with the recording");
    let outcome = rec
        .finish()
        .await
        .unwrap_or_else(|e| panic!("(d) the healthy recording was stored: {e}"));
    assert_eq!(outcome.tape.frame_count, recorded, "(d) every frame stored");
    let frames = read_all(healthy, &id).await;
    assert_eq!(frames.len() as u64, recorded, "(d) every frame readable");
    for (i, f) in frames.iter().enumerate() {
        let (dir, payload) = healthy_frame(i as u64);
        assert_eq!(
            (f.seq, f.direction, &f.payload),
            (i as u64, dir, &payload),
            "(d) frame {i}"
        );
    }
    let info = healthy.get(&id).await.unwrap();
    assert_eq!(info.state, TapeState::Finished);
    DigestChain::verify(&frames, info.digest.as_deref().unwrap())
        .unwrap_or_else(|e| panic!("(d) digest: {e}"));
    let worst = Duration::from_millis(worst.load(SeqCst));
    assert!(
        worst < HEALTHY_LATENCY,
        "(d) the healthy recording stalled for {worst:?} during the attack"
    );
    out
}

async fn read_all(store: &WasmProvider, id: &str) -> Vec<Frame> {
    recording::read_all(store, id).await
}

/// Every attempt the guest reports, as (what, error): the text after
/// `refused: `, split at `; `, without the trailing `[links: …]` note.
fn refusals(seen: &str) -> Vec<(String, String)> {
    let body = seen.strip_prefix("refused: ").expect(seen);
    let body = body.split(" [links: ").next().unwrap();
    body.split("; ")
        .map(|a| {
            let (what, err) = a.rsplit_once(": ").unwrap_or_else(|| panic!("{a}"));
            (what.to_string(), err.to_string())
        })
        .collect()
}

/// Checks that each of `attempts` was made and refused, and that every
/// refusal is one of `errors` (as the guest saw them: WASI error names and
/// the matching `std::io` messages).
fn assert_refused(seen: &str, attempts: &[&str], errors: &[&str]) {
    let got = refusals(seen);
    for want in attempts {
        assert!(
            got.iter().any(|(what, _)| what == want),
            "attempt {want:?} missing from {seen}"
        );
    }
    for (what, err) in &got {
        assert!(
            errors.iter().any(|e| err.contains(e)),
            "{what}: refused with {err:?}, expected one of {errors:?}"
        );
    }
}

/// `std::io` and WASI names of "not permitted" and "no such file".
const NOT_PERMITTED: &[&str] = &["Operation not permitted", "not-permitted"];
const NOT_THERE: &[&str] = &["No such file or directory", "no-entry"];

fn escape_errors() -> Vec<&'static str> {
    [NOT_PERMITTED, NOT_THERE].concat()
}

/// The hostile provider with default limits, in a fresh environment.
async fn hostile_env() -> (Env, WasmProvider) {
    let env = Env::new().await;
    let p = env.hostile(Limits::default()).await;
    (env, p)
}

// ---------------------------------------------------------------------------
// Filesystem: nothing outside the grants

// Protection: the WasiCtx is built from the grants only (`state.rs`): no
// preopen covers `/etc`, so every path there names nothing.
#[tokio::test(flavor = "current_thread")]
async fn passwd_is_not_readable() {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, "passwd").await;
    assert_refused(
        &seen,
        &[
            "read /etc/passwd",
            "read /../etc/passwd",
            "read //etc/passwd",
            "read ../etc/passwd",
        ],
        NOT_THERE,
    );
}

// Protection: wasmtime-wasi resolves every path beneath its preopen with
// cap-std, which refuses a `..` that would leave it.
#[tokio::test(flavor = "current_thread")]
async fn dotdot_cannot_leave_a_grant() {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, "dotdot").await;
    assert_refused(
        &seen,
        &[
            "read /data/../../etc/passwd",
            "list /data/sub/../../..",
            "read /data/../other/secret.txt",
            "open-at /data \"..\" OpenFlags(DIRECTORY) DescriptorFlags(READ)",
            "open-at /data \"sub/../../other/secret.txt\" OpenFlags(0x0) DescriptorFlags(READ)",
            "create /data/../pwned.txt",
            "write /data/../other/pwned.txt",
        ],
        NOT_PERMITTED,
    );
}

// Protection: absolute guest paths resolve only against preopens, and
// `open-at` refuses absolute paths: the host's own paths (even of the other
// provider's directory, which the attacker was told) reach nothing.
#[tokio::test(flavor = "current_thread")]
async fn absolute_paths_reach_nothing_ungranted() {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, "absolute").await;
    let other = env.other.display().to_string();
    assert_refused(
        &seen,
        &[
            "read /etc/hostname",
            "read /proc/self/environ",
            "list /",
            &format!("read {other}/secret.txt"),
            &format!("write {other}/pwned.txt"),
            "open-at /data \"/etc/passwd\" OpenFlags(0x0) DescriptorFlags(READ)",
        ],
        &escape_errors(),
    );
}

// Protection: wasmtime-wasi refuses to create a symlink with an absolute
// target, and cap-std follows a link only while it stays beneath the
// preopen, so links the provider makes (up, sideways into the other
// provider's directory, chained) lead nowhere. Creating a relative one is
// allowed: its target is only text.
#[tokio::test(flavor = "current_thread")]
async fn symlinks_the_provider_creates_lead_nowhere() {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, "symlink-out").await;
    assert_refused(
        &seen,
        &[
            "read /data/to-etc/passwd",
            "list /data/to-up",
            "read /data/to-other-abs/secret.txt",
            "read /data/to-other-rel/secret.txt",
            "read /data/to-chain/secret.txt",
            "write /data/to-chain/pwned.txt",
            "open-at /data \"to-other-rel/secret.txt\" OpenFlags(0x0) DescriptorFlags(READ)",
        ],
        &escape_errors(),
    );
    assert!(
        seen.contains("to-etc->/etc not created (not-permitted"),
        "{seen}"
    );
    assert!(seen.contains("to-other-rel->../other,"), "{seen}");
    // The links exist on the host, inside the grant only.
    let link = std::fs::read_link(env.data.join("to-other-rel")).unwrap();
    assert_eq!(link, Path::new("../other"));
}

// Protection: the same cap-std resolution, for links the host planted in
// the grants (`/data/host-up -> ../other`, `/ro/host-etc -> /etc`,
// `/ro/host-abs -> <other>`).
#[tokio::test(flavor = "current_thread")]
async fn symlinks_planted_in_the_grants_lead_nowhere() {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, "symlink-planted").await;
    assert_refused(
        &seen,
        &[
            "read /data/host-up/secret.txt",
            "read /ro/host-etc/passwd",
            "read /ro/host-abs/secret.txt",
            "write /data/host-up/pwned.txt",
        ],
        NOT_PERMITTED,
    );
}

// Protection: each provider's WasiCtx holds only its own grants: two
// providers share a directory only when both are granted it.
#[tokio::test(flavor = "current_thread")]
async fn providers_share_a_directory_only_when_both_are_granted_it() {
    let env = Env::new().await;
    let b_dir = env.root.join("b");
    std::fs::create_dir(&b_dir).unwrap();
    let a = env.hostile(Limits::default()).await;
    let grant = |dir: &Path| vec![DirGrant::read_write(dir, "/data")];
    let b = env
        .start(&env.hostile_spec_with(grant(&b_dir), Limits::default()))
        .await;
    let c = env
        .start(&env.hostile_spec_with(grant(&env.data), Limits::default()))
        .await;
    let outcome = |p: &WasmProvider, id: &'static str| {
        let p = p.clone();
        async move { p.get(id).await.unwrap().header.name }
    };
    let wrote = alongside(&env.healthy, outcome(&a, "write-marker")).await;
    assert_eq!(wrote, "ok: wrote /data/marker.txt");
    assert_eq!(
        outcome(&b, "list-data").await,
        "listed: ",
        "b sees only its own"
    );
    let listed = outcome(&c, "list-data").await;
    assert!(
        listed.contains("marker.txt"),
        "c shares a's directory: {listed}"
    );
    assert!(b_dir.read_dir().unwrap().next().is_none());
}

// A control: the grants do work (so the refusals above mean something):
// `/ro` reads, `/data` writes, a link inside `/data` is followed.
#[tokio::test(flavor = "current_thread")]
async fn the_grants_allow_what_they_grant() {
    let (env, p) = hostile_env().await;
    let seen = env.run(&p, p.get("rw-ok")).await.unwrap().header.name;
    let ro = String::from_utf8_lossy(RO_CONTENT);
    let rw = "written by the hostile provider";
    assert_eq!(seen, format!("ok: ro={ro}; data={rw}; link={rw}"));
    assert_eq!(
        std::fs::read(env.data.join("ok.txt")).unwrap(),
        rw.as_bytes()
    );
}

// ---------------------------------------------------------------------------
// Filesystem: read-only grants are read-only

/// Runs a read-only attack; every attempt must be refused as not permitted
/// and the file must be intact (the snapshot also checks times and modes).
async fn ro_attack(id: &str, attempts: &[&str]) {
    let (env, p) = hostile_env().await;
    let seen = env.refused(&p, id).await;
    assert_refused(&seen, attempts, NOT_PERMITTED);
    assert_eq!(std::fs::read(env.ro.join("file.txt")).unwrap(), RO_CONTENT);
}

// Protection (all `ro_*` tests): `FsPerms::ReadOnly` on the `/ro` preopen
// (`state.rs`); wasmtime-wasi checks it before the OS sees the operation.
#[tokio::test(flavor = "current_thread")]
async fn ro_write_is_refused() {
    ro_attack(
        "ro-write",
        &[
            "open /ro/file.txt for writing",
            "open /ro/file.txt for appending",
            "open-at /ro \"file.txt\" OpenFlags(0x0) DescriptorFlags(READ | WRITE)",
            "write on a read-only descriptor",
            "write-via-stream on a read-only descriptor",
        ],
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn ro_create_is_refused() {
    ro_attack(
        "ro-create",
        &[
            "create_new /ro/new.txt",
            "open-at /ro \"new.txt\" OpenFlags(CREATE) DescriptorFlags(READ)",
            "symlink-at /ro/new-link",
        ],
    )
    .await;
}

// `O_TRUNC` with read-only access truncates on Linux: the host must refuse
// it, not the OS.
#[tokio::test(flavor = "current_thread")]
async fn ro_truncate_is_refused() {
    ro_attack(
        "ro-truncate",
        &[
            "open-at /ro \"file.txt\" OpenFlags(TRUNCATE) DescriptorFlags(READ)",
            "File::create /ro/file.txt",
            "set-size 0 on a read-only descriptor",
        ],
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn ro_rename_is_refused() {
    ro_attack(
        "ro-rename",
        &[
            "rename /ro/file.txt -> /ro/moved.txt",
            "rename /ro/file.txt -> /data/stolen.txt",
            "rename /data/decoy.txt -> /ro/file.txt (replace)",
        ],
    )
    .await;
}

// A hard link from `/ro` into `/data` would make the read-only file
// writable through the link.
#[tokio::test(flavor = "current_thread")]
async fn ro_link_is_refused() {
    ro_attack(
        "ro-link",
        &[
            "link /ro/file.txt -> /ro/link.txt",
            "link /ro/file.txt -> /data/link.txt",
            "link /data/decoy.txt -> /ro/new-link.txt",
        ],
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn ro_remove_is_refused() {
    ro_attack(
        "ro-remove",
        &[
            "remove_file /ro/file.txt",
            "remove_dir /ro/empty",
            "unlink-file-at /ro file.txt",
        ],
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn ro_set_times_is_refused() {
    ro_attack(
        "ro-set-times",
        &[
            "set-times-at /ro file.txt",
            "set-times on the /ro directory",
            "set-times on a read-only descriptor",
            "File::set_modified /ro/file.txt",
        ],
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn ro_mkdir_is_refused() {
    ro_attack(
        "ro-mkdir",
        &["create_dir /ro/newdir", "create-directory-at /ro newdir2"],
    )
    .await;
}

// ---------------------------------------------------------------------------
// Limits

// Protection: the CPU budget (epoch deadline callback in `pool.rs`), which
// also yields to the runtime every tick: without the yield the healthy
// provider, on the same runtime thread, would wait the full 5 s.
#[tokio::test(flavor = "current_thread")]
async fn an_infinite_loop_hits_the_cpu_budget_without_starving_others() {
    let env = Env::new().await;
    let cpu = Limits {
        cpu_per_call: Millis(5_000),
        ..Limits::default()
    };
    let p = env.hostile(cpu).await;
    let t = Instant::now();
    let e = env
        .stopped(&p, Protection::CpuLimit, p.get("infinite-loop"))
        .await;
    assert!(
        matches!(e, ProviderError::CpuLimit { call: "get", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("CPU budget of 5s"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "not run to a timeout"
    );
}

// Protection: the wall-clock timeout (`guest_call!` in `pool.rs`) around a
// call blocked in an asynchronous host call (a poll that never fires).
#[tokio::test(flavor = "current_thread")]
async fn a_host_call_that_never_completes_hits_the_timeout() {
    let env = Env::new().await;
    let short = Limits {
        timeout_per_call: Millis(500),
        ..Limits::default()
    };
    let p = env.hostile(short).await;
    let e = env
        .stopped(&p, Protection::Timeout, p.get("hang-poll"))
        .await;
    assert!(
        matches!(e, ProviderError::Timeout { call: "get", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("within 500ms"), "{e}");
}

// Protection: the checked `open-at` (`sandbox/special_files.rs`). File I/O
// runs on the runtime thread, so opening a FIFO (which blocks until a
// writer comes) would block that thread past every timeout: without the
// check this test hangs until its watchdog opens the FIFO for writing
// (10 s), and then fails. A host-planted link to the FIFO is refused too.
#[tokio::test(flavor = "current_thread")]
#[allow(unsafe_code, reason = "mkfifo has no safe wrapper in std")]
async fn a_read_that_never_completes_is_refused() {
    let env = Env::new().await;
    let fifo = env.ro.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    std::os::unix::fs::symlink("fifo", env.ro.join("fifo-link")).unwrap();
    let watchdog = Watchdog::new(fifo, Duration::from_secs(10));
    let short = Limits {
        timeout_per_call: Millis(500),
        ..Limits::default()
    };
    let p = env.hostile(short).await;
    let t = Instant::now();
    let seen = env.refused(&p, "hang-read").await;
    assert!(!watchdog.finish(), "a reader was stuck on the FIFO");
    assert_refused(
        &seen,
        &["read /ro/fifo", "read /ro/fifo-link", "open-at /ro fifo"],
        &["Not supported", "unsupported"],
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// Unblocks a reader stuck opening a FIFO after `after`, by opening it for
/// writing (non-blocking), so a broken test fails instead of hanging.
struct Watchdog {
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn new(fifo: PathBuf, after: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let thread = std::thread::spawn(move || {
            use std::os::unix::fs::OpenOptionsExt;
            let t = Instant::now();
            while !flag.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                if t.elapsed() > after
                    && std::fs::OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&fifo)
                        .is_ok()
                {
                    return true;
                }
            }
            false
        });
        Watchdog { done, thread }
    }

    /// Stops the watchdog; true if it had to release a stuck reader.
    fn finish(self) -> bool {
        self.done.store(true, SeqCst);
        self.thread.join().unwrap()
    }
}

// Protection: the memory limit (`Limiter::memory_growing` in `state.rs`):
// growing past it traps.
#[tokio::test(flavor = "current_thread")]
async fn a_memory_bomb_hits_the_memory_limit() {
    let env = Env::new().await;
    let small = Limits {
        memory: ByteSize(32 << 20),
        ..Limits::default()
    };
    let p = env.hostile(small).await;
    let e = env
        .stopped(&p, Protection::MemoryLimit, p.get("memory-bomb"))
        .await;
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("over the limit of 33554432 bytes (limit `memory`)"),
        "{msg}"
    );
}

// Protection: the table limit (`Limiter::table_growing` in `state.rs`):
// growing past it traps. The attacker is `table-bomb.wat` (Rust cannot
// emit `table.grow`), built into a component by `tests/build.rs`.
#[tokio::test(flavor = "current_thread")]
async fn a_table_bomb_hits_the_table_limit() {
    let env = Env::new().await;
    let spec = ProviderSpec::new(
        "table-bomb",
        ComponentSource::File(artifacts::TABLE_BOMB_PROVIDER.into()),
    )
    .with_limits(Limits {
        table_elements: 100_000,
        ..Limits::default()
    });
    let p = env.start(&spec).await;
    let e = env
        .stopped(&p, Protection::TableLimit, p.get("table-bomb"))
        .await;
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("over the limit of 100000 (limit `table-elements`)"),
        "{msg}"
    );
}

// Protection: the core-instance limit (`Limiter::instances` in `state.rs`):
// a component needing more core instances than allowed does not start.
#[tokio::test(flavor = "current_thread")]
async fn the_core_instance_limit_refuses_to_start_a_component() {
    let env = Env::new().await;
    let spec = env.hostile_spec(Limits {
        core_instances: 1,
        ..Limits::default()
    });
    let e = WasmProvider::start(&env.sandbox, &spec, &env.root)
        .await
        .err()
        .expect("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("instantiation failed")
            && msg.contains(
                "more than 1 core instances, tables or memories (limit `core-instances`)"
            ),
        "{msg}"
    );
}

// Protection: the `instances` limit (the pool's fixed slots): however many
// calls arrive at once, at most that many instances exist.
#[tokio::test(flavor = "current_thread")]
async fn the_instance_limit_bounds_parallel_instances() {
    let env = Env::new().await;
    let spec = env
        .hostile_spec(Limits {
            instances: 2,
            ..Limits::default()
        })
        .with_config(serde_json::json!({ "slow-ms": 100 }));
    let p = env.start(&spec).await;
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move { p.get(&format!("no-such-tape-{i}")).await })
        })
        .collect();
    for c in calls {
        let e = c.await.unwrap().unwrap_err();
        assert_eq!(e.storage_kind(), Some(tapedeck::types::ErrorKind::NotFound));
    }
    assert_eq!(
        p.instance_counts(),
        (2, 0),
        "two instances served eight calls"
    );
}

// Protection: a trap discards the instance (`settle` in `pool.rs`). Rust
// guests keep a shadow stack in linear memory: overflowing it is an
// out-of-bounds access before the wasm call stack is exhausted.
#[tokio::test(flavor = "current_thread")]
async fn deep_recursion_traps() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::Trap, p.get("deep-recursion"))
        .await;
    let msg = e.to_string();
    assert!(matches!(e, ProviderError::Trap { call: "get", .. }), "{e}");
    assert!(
        msg.contains("call stack exhausted") || msg.contains("out of bounds memory access"),
        "{msg}"
    );
}

// Protection: a trap discards the instance; its stderr explains it.
#[tokio::test(flavor = "current_thread")]
async fn a_panic_traps_with_its_message() {
    let (env, p) = hostile_env().await;
    let e = env.stopped(&p, Protection::Trap, p.get("panic")).await;
    assert!(matches!(e, ProviderError::Trap { call: "get", .. }), "{e}");
    assert!(
        e.to_string().contains("hostile provider: asked to panic"),
        "{e}"
    );
}

// Protection: `max-return`, as wasmtime's hostcall fuel
// (`set_hostcall_fuel` in `pool.rs`), which bounds the bytes lifted from an
// export's result as well as import arguments: one million frames aliasing
// one 1 MiB payload (a TiB once copied out) are refused after 8 MiB, before
// the host allocates the rest. Without it the host would abort on allocation.
#[tokio::test(flavor = "current_thread")]
async fn a_huge_aliased_list_is_refused_by_max_return() {
    let env = Env::new().await;
    let small = Limits {
        max_return: ByteSize(8 << 20),
        ..Limits::default()
    };
    let p = env.hostile(small).await;
    let e = env
        .stopped(
            &p,
            Protection::MaxReturn,
            p.read_frames("huge-list", 0, 100, 1 << 20),
        )
        .await;
    assert!(
        matches!(
            e,
            ProviderError::Contract {
                call: "read-frames",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("more than 8MiB to the host in one call (limit `max-return`)"),
        "{msg}"
    );
}

// Protection: `max-return` is the provider's own setting: an honest 16 MiB
// frame is refused under 8 MiB and read back under the default (64 MiB).
#[tokio::test(flavor = "current_thread")]
async fn max_return_is_configured_per_provider() {
    let env = Env::new().await;
    let frame = Frame {
        seq: 0,
        timestamp_us: 1,
        direction: Direction::ServerToClient,
        payload: vec![b'y'; 16 << 20],
        not_json: true,
        terms: Vec::new(),
        attributes: Vec::new(),
    };
    for (max_return, fits) in [(ByteSize(8 << 20), false), (ByteSize(64 << 20), true)] {
        let limits = Limits {
            max_return,
            instances: 1,
            ..Limits::default()
        };
        let p = env.hostile(limits).await;
        let header = tapedeck_types::TapeHeader {
            id: "big".into(),
            session_id: String::new(),
            name: String::new(),
            tags: Vec::new(),
            created_at_us: 1,
            envelope: None,
        };
        let summary = tapedeck_types::TapeSummary {
            frame_count: 1,
            byte_count: frame.payload.len() as u64,
            ended_at_us: 2,
            digest: None,
            seal: None,
        };
        p.save(
            header,
            std::slice::from_ref(&frame),
            summary,
            tapedeck_types::EndReason::Completed,
        )
        .await
        .unwrap();
        let r = p.read_frames("big", 0, 1, u64::MAX).await;
        match (fits, r) {
            (true, Ok(frames)) => assert_eq!(frames, vec![frame.clone()]),
            (false, Err(e)) => assert!(e.to_string().contains("limit `max-return`"), "{e}"),
            (_, r) => panic!("max-return {max_return}: {r:?}"),
        }
    }
}

// Protection: the host's check of `get`'s answer (`provider.rs`).
#[tokio::test(flavor = "current_thread")]
async fn wrong_id_is_a_contract_violation() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::ContractViolation, p.get("wrong-id"))
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("asked for tape `wrong-id`, answered with tape `some-other-tape`"),
        "{msg}"
    );
}

// Protection: the host's check of a page of frames (`check_frames` in
// `provider.rs`).
#[tokio::test(flavor = "current_thread")]
async fn frames_out_of_order_are_a_contract_violation() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(
            &p,
            Protection::ContractViolation,
            p.read_frames("out-of-order", 0, 100, 1 << 20),
        )
        .await;
    assert!(
        matches!(
            e,
            ProviderError::Contract {
                call: "read-frames",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("returned frame seq 5 at position 0, expected 0"),
        "{msg}"
    );
}

// Protection: wasmtime validates UTF-8 while lifting a string; the pool
// (`classify`) reports it as a contract violation rather than a bare trap.
#[tokio::test(flavor = "current_thread")]
async fn invalid_utf8_is_a_contract_violation() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::ContractViolation, p.get("bad-utf8"))
        .await;
    assert!(
        matches!(e, ProviderError::Contract { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("returned a string that is not valid UTF-8 (invalid utf-8 sequence"),
        "{msg}"
    );
}

// Protection: `max-resources`, as the capacity of the host's WASI resource
// table (`state.rs`); the message reads the capacity back from the table.
#[tokio::test(flavor = "current_thread")]
async fn a_million_descriptors_hit_max_resources() {
    let env = Env::new().await;
    let few = Limits {
        max_resources: 256,
        ..Limits::default()
    };
    let p = env.hostile(few).await;
    let e = env
        .stopped(&p, Protection::ResourceLimit, p.get("million-resources"))
        .await;
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("more than 256 open WASI resources (limit `max-resources`)"),
        "{msg}"
    );
}

// Protection: `max-resources`, as the store's component handle limit
// (`set_max_component_handles` in `pool.rs`, twice `max-resources`): the
// provider's own resources count too. Without it wasmtime's default
// (100,000) applies and the message names that number instead.
#[tokio::test(flavor = "current_thread")]
async fn a_million_handles_hit_max_resources() {
    let env = Env::new().await;
    let few = Limits {
        max_resources: 256,
        ..Limits::default()
    };
    let p = env.hostile(few).await;
    let e = env
        .stopped(&p, Protection::ResourceLimit, p.get("million-handles"))
        .await;
    let msg = e.to_string();
    assert!(
        msg.contains("more than 512 component handles (limit `max-resources`)"),
        "{msg}"
    );
}

// Protection: the per-call random budget (`sandbox/random.rs`): 1 MiB
// requests, each within `max-random`, stop at `random-per-call`.
#[tokio::test(flavor = "current_thread")]
async fn random_bytes_are_budgeted_per_call() {
    let env = Env::new().await;
    let budget = Limits {
        random_per_call: ByteSize(4 << 20),
        ..Limits::default()
    };
    let p = env.hostile(budget).await;
    let e = env
        .stopped(&p, Protection::RandomLimit, p.get("random-bomb"))
        .await;
    assert!(
        matches!(e, ProviderError::ResourceLimit { call: "get", .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("more than 4194304 random bytes in one call (limit `random-per-call`)"),
        "{msg}"
    );
}

// Protection: the per-request random cap (`sandbox/random.rs`).
#[tokio::test(flavor = "current_thread")]
async fn a_huge_random_request_is_refused() {
    let (env, p) = hostile_env().await;
    let e = env
        .stopped(&p, Protection::RandomLimit, p.get("random-huge"))
        .await;
    let msg = e.to_string();
    assert!(
        msg.contains("asked for 1073741824 random bytes in one request, over the limit of 1048576 (limit `max-random`)"),
        "{msg}"
    );
}

// Protection: the per-call line budget and the line-length cap
// (`sandbox/log.rs`): of 110,008 lines, 200 reach the host log, each at most
// 4 KiB; the rest are dropped, counted, and reported once.
#[tokio::test(flavor = "current_thread")]
async fn a_log_flood_is_capped() {
    let captured = tapedeck_tests::log_capture::CapturedLog::start();
    let (env, p) = hostile_env().await;
    let seen = env.run(&p, p.get("log-flood")).await.unwrap().header.name;
    assert!(seen.starts_with("flooded: "), "{seen}");
    let log = captured.text();
    let from_guest: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tapedeck::provider") && l.contains("provider=\"hostile\""))
        .filter(|l| !l.contains("dropped"))
        .collect();
    assert_eq!(from_guest.len(), 200, "the per-call budget");
    let longest = from_guest.iter().map(|l| l.len()).max().unwrap();
    assert!(longest < 4096 + 200, "lines are cut at 4 KiB: {longest}");
    assert!(
        from_guest[0].contains(&format!("{}… ", "x".repeat(64))),
        "marked cut: {}",
        &from_guest[0][from_guest[0].len() - 100..]
    );
    assert!(
        log.contains("dropped 109808 log lines over the per-call limit during `get`"),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert_eq!(
        p.protection_report().count(Protection::LogLinesDropped),
        109_808
    );
}

// Protection: the recorder never waits on storage (frames are queued), the
// per-call timeout is above the provider's latency, and a slow provider only
// occupies its own instance slots: a provider taking 300 ms for every call
// still stores every frame, while the healthy provider is unaffected.
#[tokio::test(flavor = "current_thread")]
async fn a_provider_slow_on_every_call_still_stores_everything() {
    let env = Env::new().await;
    let spec = env
        .hostile_spec(Limits {
            timeout_per_call: Millis(5_000),
            instances: 1,
            ..Limits::default()
        })
        .with_config(serde_json::json!({ "slow-ms": 300 }));
    let slow = Arc::new(env.start(&spec).await);
    let (recorded, elapsed) = alongside(&env.healthy, async {
        let t = Instant::now();
        let recorder = Recorder::new(slow.clone(), RecorderOptions::default());
        let rec = recorder.start(TapeMeta::default()).await.unwrap();
        for n in 0..200 {
            let (dir, payload) = healthy_frame(n);
            rec.record(dir, payload);
            if n.is_multiple_of(50) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let outcome = rec.finish().await.expect("every frame stored");
        (outcome, t.elapsed())
    })
    .await;
    assert_eq!(recorded.tape.frame_count, 200);
    assert!(
        elapsed >= Duration::from_millis(600),
        "create and finish were slow: {elapsed:?}"
    );
    let frames = read_all(&slow, &recorded.tape.header.id).await;
    assert_eq!(frames.len(), 200);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!((f.direction, f.payload.clone()), healthy_frame(i as u64));
    }
    DigestChain::verify(&frames, recorded.summary.digest.as_deref().unwrap()).unwrap();
    assert!(
        slow.protection_report().is_empty(),
        "{}",
        slow.protection_report()
    );
}
