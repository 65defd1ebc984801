//! Open-file limit: a recording holds its spool file open (and the fs
//! provider a file per tape it writes), so many concurrent recordings need
//! more descriptors than the common soft limit of 1,024.

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
