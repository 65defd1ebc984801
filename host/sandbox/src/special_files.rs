//! `open-at` that refuses FIFOs, sockets and device nodes.
//!
//! Providers' file I/O runs on the calling thread
//! (`allow_blocking_current_thread`, much faster than a blocking pool), so a
//! file operation that blocks in the kernel blocks the runtime thread with
//! it, and the per-call wall-clock timeout cannot fire until it returns.
//! Regular files and directories never block that way; a FIFO does: opening
//! one for reading waits for a writer, forever if none comes, and would
//! stall every provider and recording sharing that thread (the hostile
//! suite's `a_read_that_never_completes_is_refused` shows it). Providers
//! cannot create FIFOs or device nodes (WASI has no `mknod`), but one may be
//! in a granted directory, or appear there.
//!
//! So `[method]descriptor.open-at` is defined again over wasmtime-wasi's
//! (shadowing just this definition, as `network::lookup` does for name
//! lookups): it first stats the path through wasmtime-wasi's sandboxed
//! `stat-at` (same path resolution, same flags) and answers `unsupported`
//! for anything that is neither a regular file, a directory nor a symlink;
//! everything else goes to wasmtime-wasi's `open-at` unchanged.
//!
//! The sandboxed stat costs three system calls (an `O_PATH` open beneath
//! the directory, `statx`, `close`), a sixth of a small read's. So one plain
//! `fstatat` relative to the directory comes first ([`quick_check`]). When
//! it finds a regular file, directory or symlink, the open goes ahead: the
//! open's own sandboxed resolution reaches that same object or refuses, so
//! nothing outside the grant is opened and the guest sees no difference.
//! When nothing is there at all, the open fails or creates a regular file.
//! Anything else the quick look finds (a special file, an error, a path
//! leaving the directory) is decided by the sandboxed stat as before, so the
//! quick look never answers the guest and cannot leak what lies outside. If the
//! interface's version ever differs from [`INTERFACE`], defining it fails
//! loudly at startup rather than silently leaving the hole open.
//!
//! Not covered (documented in `SECURITY.md`): a special file swapped in by a
//! host process between the stat and the open, and regular files on a
//! filesystem that itself hangs (a dead network mount).

use super::state::HostState;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

/// The interface whose `open-at` is replaced, at the version wasmtime-wasi 48
/// defines.
pub const INTERFACE: &str = "wasi:filesystem/types@0.2.12";

/// The file types a provider may open.
fn may_open(t: DescriptorType) -> bool {
    matches!(
        t,
        DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink
    )
}

/// True when a plain `fstatat` relative to the directory finds something
/// that may be opened (see the module docs for why that is enough). False
/// means "ask the sandboxed stat".
fn quick_check(
    state: &mut HostState,
    dir: &Resource<Descriptor>,
    path_flags: PathFlags,
    path: &str,
) -> wasmtime::Result<bool> {
    use rustix::fs::{AtFlags, FileType, statat};
    if path.starts_with('/') {
        return Ok(false);
    }
    let Descriptor::Dir(d) = state.ctx().table.get(dir)? else {
        return Ok(false);
    };
    let flags = if path_flags.contains(PathFlags::SYMLINK_FOLLOW) {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    Ok(match statat(&*d.dir, path, flags) {
        Ok(st) => matches!(
            FileType::from_raw_mode(st.st_mode),
            FileType::RegularFile | FileType::Directory | FileType::Symlink
        ),
        // Nothing there: the open fails or creates a regular file.
        Err(rustix::io::Errno::NOENT) => true,
        Err(_) => false,
    })
}

/// `open-at`'s arguments: the directory, path flags, path, open flags and
/// descriptor flags.
type OpenAtArgs = (
    Resource<Descriptor>,
    PathFlags,
    String,
    OpenFlags,
    DescriptorFlags,
);

/// Defines the checked `open-at` over wasmtime-wasi's (call after
/// `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let r = linker.instance(INTERFACE).and_then(|mut inst| {
        inst.func_wrap_async(
            "[method]descriptor.open-at",
            |mut store, (dir, path_flags, path, oflags, flags): OpenAtArgs| {
                Box::new(async move {
                    let provider = store.data().log.provider().to_string();
                    let quick = quick_check(store.data_mut(), &dir, path_flags, &path)?;
                    let mut fs = store.data_mut().filesystem();
                    let borrowed = Resource::<Descriptor>::new_borrow(dir.rep());
                    if !quick
                        && let Ok(stat) = fs.stat_at(borrowed, path_flags, path.clone()).await
                        && !may_open(stat.type_)
                    {
                        tracing::warn!(
                            target: "tapedeck::sandbox",
                            provider,
                            "refused to open {path:?}: a {:?} (only regular files and directories can be opened)",
                            stat.type_
                        );
                        return Ok((Err(ErrorCode::Unsupported),));
                    }
                    match fs.open_at(dir, path_flags, path, oflags, flags).await {
                        Ok(d) => Ok((Ok(d),)),
                        Err(e) => Ok((Err(e.downcast()?),)),
                    }
                })
            },
        )
    });
    linker.allow_shadowing(false);
    r
}
