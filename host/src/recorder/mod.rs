//! The recorder: turns lines crossing an MCP stdio session into frames and
//! streams them, in batches, to a [`crate::store::TapeStore`] without ever
//! making the forwarding wait on storage.

use crate::units::{ByteSize, Millis};
use serde::{Deserialize, Serialize};

/// How the recorder batches frames to its provider (`[recorder]` in the
/// configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RecorderOptions {
    /// Most frames in one `append` call. Default 256.
    pub batch_frames: u64,
    /// Most payload bytes in one `append` call (a single larger frame is
    /// sent alone). Default 1 MiB.
    pub batch_bytes: ByteSize,
    /// Longest a recorded frame waits before its batch is sent. Default 20 ms.
    pub flush_interval: Millis,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            batch_frames: 256,
            batch_bytes: ByteSize(1 << 20),
            flush_interval: Millis(20),
        }
    }
}
