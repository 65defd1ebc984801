//! Logging to the host: the contract's `log` import. Lines go to the host's
//! log, tagged with the provider's name; the host caps their length and how
//! many one call may emit, and escapes them.

pub use crate::bindings::tapedeck::storage::log::Level;

/// Emits one line at `level`.
pub fn emit(level: Level, message: &str) {
    crate::bindings::tapedeck::storage::log::emit(level, message);
}

/// Emits one line at level `trace`.
pub fn trace(message: &str) {
    emit(Level::Trace, message);
}

/// Emits one line at level `debug`.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

/// Emits one line at level `info`.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Emits one line at level `warn`.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

/// Emits one line at level `error`.
pub fn error(message: &str) {
    emit(Level::Error, message);
}
