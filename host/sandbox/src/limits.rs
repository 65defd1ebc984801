//! Per-provider resource limits, enforced by the host.
//!
//! Every limit has a default chosen so that a well-behaved provider never
//! notices it, while a misbehaving one is stopped before it can hurt the host
//! or other providers. Each field documents its reason.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use tapedeck_types::units::{ByteSize, Millis};

/// Limits for one provider. Parsed from the `[providers.<name>.limits]` table;
/// every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Maximum linear memory of one instance (all memories together).
    ///
    /// Default 256 MiB: room for an interpreter-based provider (Python,
    /// JavaScript) and its working set; a memory bomb stops here instead of
    /// exhausting the host. Growing past it traps and the instance is recycled.
    pub memory: ByteSize,
    /// Maximum elements of any one table (function references).
    ///
    /// Default 1,000,000: large interpreters need tens of thousands; a table
    /// growth bomb stops here (each element costs the host 8 bytes or more).
    pub table_elements: u64,
    /// Maximum core instances, tables and memories one component may create.
    ///
    /// Default 100: a component instantiates a handful of core modules (a
    /// Python component about ten); more is an attack on host bookkeeping.
    pub core_instances: u64,
    /// CPU time a single call may spend executing WebAssembly, counted in
    /// epoch ticks of [`crate::EPOCH_TICK`].
    ///
    /// Default 10 s: far above any honest call (an append takes microseconds,
    /// a text search over many tapes may take a second), while an infinite
    /// loop is stopped and its instance recycled. The provider also yields to
    /// the host scheduler every tick, so it cannot starve other providers.
    pub cpu_per_call: Millis,
    /// Wall-clock time a single call may take, including host I/O done for the
    /// provider (file reads, socket waits) that the CPU budget does not see.
    ///
    /// Default 30 s: a hung provider (or a read that never completes) fails
    /// the call with a timeout instead of stalling the recorder.
    pub timeout_per_call: Millis,
    /// Most bytes a call may hand to the host: the lifted result of an export
    /// (e.g. a page of frames) and the arguments of any one import call.
    ///
    /// Default 64 MiB: a page of frames is bounded by the host's `max-bytes`
    /// request (4 MiB by default) plus one frame; a provider returning a huge
    /// or self-aliasing list is refused before the host allocates it.
    pub max_return: ByteSize,
    /// Most WASI resources (files, streams, sockets) an instance may hold at
    /// once in the host's resource table. Its component handles (those
    /// resources as the guest sees them, plus resources it creates itself,
    /// such as `tape-writer`s) are capped at twice this.
    ///
    /// Default 4,096: ample for a storage provider; a provider creating
    /// millions of handles traps instead of growing host memory.
    pub max_resources: u64,
    /// Longest log line kept; longer lines are truncated.
    ///
    /// Default 4 KiB: logs are for humans; payloads belong in tapes.
    pub log_line: ByteSize,
    /// Most log lines (from the `log` import and from stdout/stderr together)
    /// kept per call; the rest are dropped and counted.
    ///
    /// Default 200: a provider flooding the log cannot drown the host's own
    /// log or fill its disk.
    pub log_lines_per_call: u64,
    /// Most random bytes one `get-random-bytes` call may request.
    ///
    /// Default 1 MiB: providers need random ids and nonces, not gigabytes.
    pub max_random: ByteSize,
    /// Most random bytes (secure and insecure together) one call may get.
    ///
    /// Default 16 MiB: a nonce per frame of a huge `save` needs a few MiB;
    /// past that a provider is only making the host generate randomness
    /// (work the CPU budget does not see). Going over traps the call.
    pub random_per_call: ByteSize,
    /// Most bytes of one HTTP response body a provider receives through
    /// `wasi:http`; a longer body fails with `HTTP-response-body-size`.
    ///
    /// Default 16 MiB: a storage backend's answers (objects, pages of rows)
    /// fit; a hostile or broken server cannot make the host buffer without
    /// end on the provider's behalf.
    pub max_http_response: ByteSize,
    /// Number of instances of this provider that may run at once.
    ///
    /// Default 4: calls from concurrent recordings run in parallel on up to
    /// this many instances; each instance costs up to `memory`.
    pub instances: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: ByteSize(256 << 20),
            table_elements: 1_000_000,
            core_instances: 100,
            cpu_per_call: Millis(10_000),
            timeout_per_call: Millis(30_000),
            max_return: ByteSize(64 << 20),
            max_resources: 4096,
            log_line: ByteSize(4 << 10),
            log_lines_per_call: 200,
            max_random: ByteSize(1 << 20),
            random_per_call: ByteSize(16 << 20),
            max_http_response: ByteSize(16 << 20),
            instances: 4,
        }
    }
}

impl Limits {
    /// The CPU budget as a duration.
    pub fn cpu(&self) -> Duration {
        self.cpu_per_call.as_duration()
    }

    /// The wall-clock timeout as a duration.
    pub fn timeout(&self) -> Duration {
        self.timeout_per_call.as_duration()
    }

    /// Checks that every limit is usable, naming the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, bool); 6] = [
            ("memory", self.memory.0 >= 1 << 20),
            ("cpu-per-call", self.cpu_per_call.0 >= 10),
            ("timeout-per-call", self.timeout_per_call.0 >= 10),
            ("max-return", self.max_return.0 >= 64 << 10),
            ("instances", (1..=1024).contains(&self.instances)),
            ("core-instances", self.core_instances >= 1),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            None => Ok(()),
            Some((name, _)) => Err(format!(
                "limit `{name}` is out of range (memory ≥ 1MiB, cpu-per-call and timeout-per-call ≥ 10ms, max-return ≥ 64KiB, instances 1..=1024, core-instances ≥ 1)"
            )),
        }
    }
}
