//! [`ServerProcess`]: the MCP server, started in a process group of its own
//! so that tapedeck can signal it (and anything it started) as a whole, and
//! never leave it running.
//!
//! - The server leads a new process group: a signal tapedeck forwards, and
//!   the final kill, reach its children too.
//! - On Linux the server gets `SIGTERM` if tapedeck dies (even by `SIGKILL`):
//!   `PR_SET_PDEATHSIG`, set between `fork` and `exec`.
//! - Dropping a `ServerProcess` whose group still has members kills the group
//!   (`SIGKILL`): a cancelled proxy leaves nothing behind.

use super::super::event::{ServerExit, signal_name};
use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// The running server and its pipes.
pub(super) struct ServerProcess {
    child: Child,
    /// The process group (the server's pid), while it may have members.
    group: Option<i32>,
    /// How it ended, once known.
    exit: Option<ServerExit>,
}

/// The server's three pipes.
pub(super) struct Pipes {
    pub(super) stdin: ChildStdin,
    pub(super) stdout: ChildStdout,
    pub(super) stderr: ChildStderr,
}

impl ServerProcess {
    /// Starts `program args` with piped stdin, stdout and stderr in a new
    /// process group.
    pub(super) fn spawn(program: &OsString, args: &[OsString]) -> io::Result<(Self, Pipes)> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        {
            let parent = rustix::process::getpid();
            // SAFETY: the closure runs in the child between fork and exec and
            // makes only async-signal-safe system calls (prctl, getppid).
            #[allow(
                unsafe_code,
                reason = "pre_exec is the only way to arm the parent-death signal in the child"
            )]
            unsafe {
                cmd.pre_exec(move || {
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::TERM,
                    ))?;
                    // tapedeck died before the death signal was armed.
                    if rustix::process::getppid() != Some(parent) {
                        return Err(io::Error::other(
                            "tapedeck exited while starting the server",
                        ));
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            unreachable!("stdin, stdout and stderr were configured as pipes");
        };
        Ok((
            ServerProcess {
                child,
                group,
                exit: None,
            },
            Pipes {
                stdin,
                stdout,
                stderr,
            },
        ))
    }

    /// Waits for the server to exit (cancel-safe).
    pub(super) async fn wait(&mut self) -> ServerExit {
        if let Some(exit) = &self.exit {
            return exit.clone();
        }
        let exit = match self.child.wait().await {
            Ok(status) => exit_of(status),
            Err(e) => {
                tracing::warn!(target: "tapedeck::recorder", "cannot wait for the server: {e}");
                ServerExit::Unknown
            }
        };
        self.exit = Some(exit.clone());
        exit
    }

    /// How the server ended, if it has.
    pub(super) fn exit(&self) -> Option<&ServerExit> {
        self.exit.as_ref()
    }

    /// Sends signal `sig` to the server's process group. Returns false when
    /// the group has no member left.
    pub(super) fn signal_group(&self, sig: i32) -> bool {
        let Some(group) = self.group else {
            return false;
        };
        signal_group(group, sig)
    }

    /// True while any process of the server's group is alive.
    pub(super) fn group_alive(&self) -> bool {
        self.group.is_some_and(|g| signal_group(g, 0))
    }

    /// Ends what is left of the server's group: `SIGTERM`, up to `grace` for
    /// it to go, then `SIGKILL`. Returns true if anything had to be
    /// signalled.
    pub(super) async fn end_group(&mut self, grace: Duration) -> bool {
        if !self.group_alive() {
            self.group = None;
            return false;
        }
        self.signal_group(15);
        let deadline = tokio::time::Instant::now() + grace;
        while self.group_alive() && tokio::time::Instant::now() < deadline {
            if self.exit.is_none() {
                // Reap the leader meanwhile, or it stays a zombie member.
                let _ = tokio::time::timeout(Duration::from_millis(20), self.wait()).await;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if self.group_alive() {
            self.signal_group(9);
        }
        if self.exit.is_none() {
            let _ = tokio::time::timeout(grace.max(Duration::from_millis(100)), self.wait()).await;
        }
        self.group = None;
        true
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            signal_group(group, 9);
        }
    }
}

/// `kill(-group, sig)`; `sig` 0 only checks. False when no member is left.
fn signal_group(group: i32, sig: i32) -> bool {
    #[cfg(unix)]
    {
        use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
        let Some(pid) = Pid::from_raw(group) else {
            return false;
        };
        let result = if sig == 0 {
            test_kill_process_group(pid)
        } else {
            match Signal::from_named_raw(sig) {
                Some(s) => kill_process_group(pid, s),
                None => return false,
            }
        };
        // EPERM: a member exists but is not ours to signal (setuid).
        !matches!(result, Err(rustix::io::Errno::SRCH))
    }
    #[cfg(not(unix))]
    {
        let _ = (group, sig);
        false
    }
}

/// How a process ended.
pub(super) fn exit_of(status: ExitStatus) -> ServerExit {
    if let Some(code) = status.code() {
        return ServerExit::Code(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ServerExit::Signal(signal_name(signal));
        }
    }
    ServerExit::Unknown
}
