//! Process resource limits tapedeck adapts to.
//!
//! * Open files: a recording holds its spool file open (and the fs provider
//!   a file per tape it writes), so many concurrent recordings need more
//!   descriptors than the common soft limit of 1,024
//!   ([`raise_open_files`]).
//! * Address space (`ulimit -v`): the sandbox's engine reserves address
//!   space for linear memories up front, so it sizes its reservations to
//!   the limit in effect ([`address_space_limit`],
//!   [`crate::engine::EnginePlan`]).

/// Raises this process's soft limit on open files to its hard limit (Unix;
/// elsewhere nothing happens). Returns the soft limit in effect afterwards,
/// if known. Failing to raise it is not an error: recordings past the limit
/// fail to open their spool files, with an error saying so.
pub fn raise_open_files() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        // `None` is unlimited; Linux refuses an unlimited soft limit for
        // open files, so aim at a large number instead.
        let target = limit.maximum.unwrap_or(1 << 20);
        if limit.current.is_some_and(|c| c < target) {
            limit.current = Some(target);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!("cannot raise the open-files limit: {e}");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// This process's soft limit on address space (`RLIMIT_AS`, `ulimit -v`) in
/// bytes; `None` when unlimited (or not Unix). The limit counts every
/// mapping, including the inaccessible reservations and guard regions of
/// WebAssembly linear memories, which is why the engine asks.
pub fn address_space_limit() -> Option<u64> {
    #[cfg(all(unix, not(target_os = "openbsd")))]
    {
        use rustix::process::{Resource, getrlimit};
        getrlimit(Resource::As).current
    }
    #[cfg(not(all(unix, not(target_os = "openbsd"))))]
    {
        None
    }
}
