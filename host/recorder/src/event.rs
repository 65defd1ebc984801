//! [`HostEvent`]: what the host itself records into a tape, beside the
//! traffic: the server's stderr, why and how the session ended, lines that
//! could no longer be delivered.
//!
//! # Representation (from contract 0.1, kept under 0.2)
//!
//! Contract 0.1 had no per-frame attributes, so an event is a frame whose
//! payload is [`EVENT_PREFIX`] (which ends in `\n`) followed by the event as
//! one JSON object, flagged `not-json`. On the stdio transport every recorded
//! line is split at `\n`, so no payload a client or server sends can contain
//! one: a peer cannot forge an event. Direction: events about the server side
//! (its stderr, its exit, the session end) travel `server-to-client`; a line
//! the server could no longer take is reported `client-to-server`.
//!
//! Everything about the encoding is in this file ([`HostEvent::to_payload`],
//! [`HostEvent::parse`]), so moving events to frame attributes when the
//! contract gains them changes only this module.

use serde::{Deserialize, Serialize};
use tapedeck_types::{Direction, Frame};

/// The first bytes of an event frame's payload.
pub const EVENT_PREFIX: &[u8] = b"tapedeck:event\n";

/// How the server process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerExit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (its name, e.g. `SIGKILL`, or `signal N`).
    Signal(String),
    /// Still running when tapedeck stopped waiting (it was killed, but its
    /// exit could not be observed).
    Unknown,
}

impl ServerExit {
    /// The exit code tapedeck passes on: the code, or 128 + the signal
    /// number, or 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            ServerExit::Code(c) => *c,
            ServerExit::Signal(name) => signal_number(name).map_or(1, |n| 128 + n),
            ServerExit::Unknown => 1,
        }
    }
}

impl std::fmt::Display for ServerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerExit::Code(c) => write!(f, "exited with code {c}"),
            ServerExit::Signal(s) => write!(f, "was killed by {s}"),
            ServerExit::Unknown => write!(f, "did not report how it ended"),
        }
    }
}

/// Why a session ended: which side stopped first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndCause {
    /// The client closed its input (the normal end of a stdio session).
    ClientClosed,
    /// The server closed its output or exited while the client was still
    /// connected.
    ServerExited,
    /// tapedeck received this signal (e.g. `SIGTERM`) and ended the session.
    Signal(String),
    /// The client went away (writing to it failed).
    ClientGone,
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndCause::ClientClosed => f.write_str("the client closed the session"),
            EndCause::ServerExited => f.write_str("the server ended the session"),
            EndCause::Signal(s) => write!(f, "tapedeck received {s}"),
            EndCause::ClientGone => f.write_str("the client went away"),
        }
    }
}

/// Something the host records into a tape that is not traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum HostEvent {
    /// Lines the server wrote to its stderr (passed through live as well).
    Stderr {
        /// The text (invalid UTF-8 replaced), without the final newline.
        text: String,
    },
    /// The server's stderr exceeded what a tape keeps; later stderr is only
    /// passed through.
    StderrTruncated {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A side stopped taking lines: this frame and the later ones in the
    /// same direction were recorded but not delivered.
    Undelivered {
        /// The side that went away: `client` or `server`.
        to: String,
        /// The first frame not delivered.
        from_seq: u64,
        /// What writing to it said.
        error: String,
    },
    /// tapedeck received a signal and passed it on to the server.
    Signal {
        /// Its name (`SIGTERM`, `SIGINT`, `SIGHUP`).
        signal: String,
    },
    /// tapedeck killed the server's process group: it had not exited within
    /// the grace period.
    Killed {
        /// Why.
        reason: String,
    },
    /// The session ended. Always the last event of a tape recorded by
    /// `tapedeck record`.
    SessionEnd {
        /// Why it ended.
        cause: EndCause,
        /// How the server ended.
        server: ServerExit,
        /// The server never wrote a line on stdout and exited with a failure:
        /// it did not start.
        #[serde(default, skip_serializing_if = "is_false")]
        failed_to_start: bool,
        /// Bytes of stderr the tape did not keep (over the limit).
        #[serde(default, skip_serializing_if = "is_zero")]
        stderr_dropped: u64,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl HostEvent {
    /// The frame payload that carries this event.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = EVENT_PREFIX.to_vec();
        serde_json::to_writer(&mut out, self).expect("a host event serializes");
        out
    }

    /// The direction an event frame is recorded in.
    pub fn direction(&self) -> Direction {
        match self {
            HostEvent::Undelivered { to, .. } if to == "server" => Direction::ClientToServer,
            _ => Direction::ServerToClient,
        }
    }

    /// The event a payload carries, if it is an event frame's payload.
    pub fn parse(payload: &[u8]) -> Option<HostEvent> {
        serde_json::from_slice(payload.strip_prefix(EVENT_PREFIX)?).ok()
    }

    /// The event `frame` carries, if any.
    pub fn of(frame: &Frame) -> Option<HostEvent> {
        if frame.not_json {
            Self::parse(&frame.payload)
        } else {
            None
        }
    }

    /// True if `payload` is an event frame's payload (whether or not its
    /// event is one this version knows).
    pub fn is_event(payload: &[u8]) -> bool {
        payload.starts_with(EVENT_PREFIX)
    }
}

impl std::fmt::Display for HostEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostEvent::Stderr { text } => write!(f, "server stderr: {text}"),
            HostEvent::StderrTruncated { limit } => write!(
                f,
                "server stderr beyond {limit} bytes is not kept in the tape"
            ),
            HostEvent::Undelivered {
                to,
                from_seq,
                error,
            } => write!(
                f,
                "the {to} went away ({error}): frames from {from_seq} on toward it were not delivered"
            ),
            HostEvent::Signal { signal } => {
                write!(f, "tapedeck received {signal} and passed it to the server")
            }
            HostEvent::Killed { reason } => write!(f, "tapedeck killed the server: {reason}"),
            HostEvent::SessionEnd {
                cause,
                server,
                failed_to_start,
                stderr_dropped,
            } => {
                write!(f, "session ended: {cause}; the server {server}")?;
                if *failed_to_start {
                    f.write_str(" before writing anything (it did not start)")?;
                }
                if *stderr_dropped > 0 {
                    write!(f, "; {stderr_dropped} bytes of stderr not kept")?;
                }
                Ok(())
            }
        }
    }
}

/// The name of a Unix signal number (`SIGTERM`), or `signal N`.
pub fn signal_name(n: i32) -> String {
    let name = match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {n}"),
    };
    name.to_string()
}

/// The number of a signal named by [`signal_name`].
fn signal_number(name: &str) -> Option<i32> {
    (1..=64)
        .find(|n| signal_name(*n) == name)
        .or_else(|| name.strip_prefix("signal ").and_then(|n| n.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_cannot_be_a_wire_line() {
        let events = [
            HostEvent::Stderr {
                text: "Traceback: boom \u{1b}[31m".into(),
            },
            HostEvent::StderrTruncated { limit: 1024 },
            HostEvent::Undelivered {
                to: "client".into(),
                from_seq: 7,
                error: "Broken pipe".into(),
            },
            HostEvent::Signal {
                signal: "SIGTERM".into(),
            },
            HostEvent::Killed {
                reason: "no exit within 1s".into(),
            },
            HostEvent::SessionEnd {
                cause: EndCause::Signal("SIGTERM".into()),
                server: ServerExit::Signal("SIGKILL".into()),
                failed_to_start: true,
                stderr_dropped: 3,
            },
        ];
        for e in events {
            let payload = e.to_payload();
            assert!(
                payload.contains(&b'\n'),
                "a peer's line never holds a newline"
            );
            assert!(!crate::line::is_json(&payload));
            assert_eq!(HostEvent::parse(&payload), Some(e.clone()));
            assert!(HostEvent::is_event(&payload));
            let frame = Frame {
                seq: 0,
                timestamp_us: 0,
                direction: e.direction(),
                payload,
                not_json: true,
                terms: Vec::new(),
                attributes: Vec::new(),
            };
            assert_eq!(HostEvent::of(&frame), Some(e));
        }
        assert_eq!(HostEvent::parse(br#"{"event":"stderr","text":"x"}"#), None);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ServerExit::Code(3).exit_code(), 3);
        assert_eq!(ServerExit::Signal("SIGKILL".into()).exit_code(), 137);
        assert_eq!(ServerExit::Signal("signal 40".into()).exit_code(), 168);
        assert_eq!(ServerExit::Unknown.exit_code(), 1);
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(40), "signal 40");
    }
}
