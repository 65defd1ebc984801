//! Turning `std::io` failures into [`StorageError`]s that name the path.

use std::io;
use std::path::Path;
use tapedeck_types::StorageError;

/// Maps an I/O error on `path` during `what` (e.g. "append to") to a storage
/// error: a full disk or quota becomes `quota-exceeded`, anything else `io`.
pub(crate) fn io_error(what: &str, path: &Path, e: &io::Error) -> StorageError {
    let message = format!("cannot {what} {}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            StorageError::quota_exceeded(message)
        }
        _ => StorageError::io(message),
    }
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// See [`io_error`].
    fn ctx(self, what: &str, path: &Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T, StorageError> {
        self.map_err(|e| io_error(what, path, &e))
    }
}

/// Validates a tape id before it is used in any path.
pub(crate) fn check_id(id: &str) -> Result<(), StorageError> {
    tapedeck_types::validate_tape_id(id).map_err(StorageError::invalid_input)
}
