//! A throwaway PostgreSQL server for tests and benchmarks: a fresh data
//! directory under the system temp dir, listening on 127.0.0.1 only, on a
//! free port, with password (SCRAM-SHA-256) login for the role `tapedeck`;
//! stopped and removed on drop.
//!
//! It uses Debian's `postgresql` package (`/usr/lib/postgresql/<N>/bin`),
//! which `scripts/guest-toolchains.sh` installs. PostgreSQL refuses to run
//! as root, so as root the server runs as the `postgres` user the package
//! creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The install step named when PostgreSQL is missing.
pub const INSTALL: &str = "./scripts/guest-toolchains.sh (apt-get install postgresql)";

/// The login role of test servers.
pub const USER: &str = "tapedeck";

/// A running server.
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    password: String,
    as_postgres: bool,
}

/// The highest installed PostgreSQL's binary directory.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| format!("PostgreSQL is not installed: run {INSTALL}"))?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| format!("PostgreSQL's initdb is not installed: run {INSTALL}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl PgServer {
    /// Initializes and starts a server; the error names what failed (and
    /// the install step, if PostgreSQL is missing).
    pub fn start() -> Result<PgServer, String> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "tapedeck-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let password = format!("pw-{:x}", rand_u64());
        std::fs::write(dir.join("pwfile"), &password).map_err(|e| e.to_string())?;
        let server = PgServer {
            dir,
            bin,
            port: free_port(),
            password,
            as_postgres,
        };
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .map_err(|e| format!("chown: {e}"))?;
            if !status.success() {
                return Err(format!(
                    "cannot hand {} to the postgres user (does it exist? {INSTALL})",
                    server.dir.display()
                ));
            }
        }
        server.run(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                USER,
                "--pwfile",
                &server.dir.join("pwfile").display().to_string(),
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "-N",
            ],
        )?;
        server.pg_ctl_start()?;
        Ok(server)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs a PostgreSQL program (as `postgres` when we are root).
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, String> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "{program} failed: {}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out)
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .map(|_| ())
    }

    /// Stops the server (`mode`: `fast`, or `immediate` for a crash-like
    /// stop whose restart replays the WAL) and starts it again.
    pub fn restart(&self, mode: &str) -> Result<(), String> {
        self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"])?;
        self.pg_ctl_start()
    }

    /// Runs SQL with `psql` as the test role in database `postgres`.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .env("PGPASSWORD", &self.password)
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !out.status.success() {
            return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test role's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The network grant that reaches it.
    pub fn grant(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The postgres provider's config for database `postgres` and `schema`.
    pub fn provider_config(&self, schema: &str) -> serde_json::Value {
        serde_json::json!({
            "host": "127.0.0.1",
            "port": self.port,
            "database": "postgres",
            "user": USER,
            "password": self.password,
            "schema": schema,
        })
    }

    /// Where the server keeps its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
