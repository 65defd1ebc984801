//! File output streams that write on the calling thread.
//!
//! A provider writes a file through a `wasi:io` output stream
//! (`write-via-stream` / `append-via-stream`), and guest toolchains drive it
//! with the non-blocking protocol: `check-write`, `write`, `blocking-flush`.
//! wasmtime-wasi's file stream runs every non-blocking `write` as a task on
//! tokio's blocking pool, even when the context allows blocking the current
//! thread (only `blocking-write-and-flush` runs inline). Each write of up to
//! 64 KiB then costs a hand-off to another thread and back: two futex
//! wake-ups and two context switches. Profiling the embedded provider's
//! appends found them to be a fifth of the time (BENCHMARKS.md).
//!
//! Providers' file I/O already runs on the calling thread everywhere else
//! (`allow_blocking_current_thread`, see `special_files`), so these two
//! functions are defined again to return [`InlineFileWriter`]: the same
//! semantics (position or append mode, the same 64 KiB permit, an error
//! reported by the next operation, as wasmtime-wasi does) with the write
//! done in place. The grant check is the same: a descriptor opened under a
//! read-only grant cannot be written.

use super::faults::FaultPlan;
use super::state::HostState;
use bytes::Bytes;
use std::io;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The interface whose stream constructors are replaced.
const INTERFACE: &str = super::special_files::INTERFACE;

/// How much one `write` may take (`check-write`'s answer): wasmtime-wasi's
/// file streams permit 64 KiB.
pub const WRITE_PERMIT: usize = 64 * 1024;

/// Where an [`InlineFileWriter`] writes.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// At this offset, which advances.
    Position(u64),
    /// At the end of the file, atomically with respect to other appenders.
    Append,
}

/// An output stream over a file whose writes happen in the calling thread.
pub struct InlineFileWriter {
    file: Arc<std::fs::File>,
    mode: Mode,
    state: State,
    /// A torn write to inject, when a test armed one.
    faults: Arc<FaultPlan>,
}

enum State {
    Ready,
    /// The last write failed; the next operation reports it and closes.
    Failed(io::Error),
    Closed,
}

impl InlineFileWriter {
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = match self.mode {
                Mode::Position(p) => {
                    let n = write_at(&self.file, buf, p)?;
                    self.mode = Mode::Position(p + n as u64);
                    n
                }
                Mode::Append => append(&self.file, buf)?,
            };
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote no bytes"));
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Reports (once) a failure of the last write, then closes.
    fn check(&mut self) -> StreamResult<()> {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Ready => Ok(()),
            State::Closed => {
                self.state = State::Closed;
                Err(StreamError::Closed)
            }
            State::Failed(e) => {
                self.state = State::Closed;
                Err(StreamError::LastOperationFailed(e.into()))
            }
        }
    }
}

#[cfg(unix)]
fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::write_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &std::fs::File, buf: &[u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_write(file, buf, offset)
}

/// Appends with `RWF_APPEND`, which needs no `O_APPEND` on the descriptor and
/// leaves its cursor alone (what wasmtime-wasi does too).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
fn append(file: &std::fs::File, buf: &[u8]) -> io::Result<usize> {
    use rustix::io::{ReadWriteFlags, pwritev2};
    pwritev2(file, &[io::IoSlice::new(buf)], 0, ReadWriteFlags::APPEND).map_err(io::Error::from)
}

/// Elsewhere: at the current end of the file.
#[cfg(not(all(target_os = "linux", not(target_env = "musl"))))]
fn append(file: &std::fs::File, buf: &[u8]) -> io::Result<usize> {
    let end = file.metadata()?.len();
    write_at(file, buf, end)
}

#[wasmtime_wasi::async_trait]
impl Pollable for InlineFileWriter {
    /// Always ready: no write is ever in flight.
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for InlineFileWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.check()?;
        if bytes.len() > WRITE_PERMIT {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write of {} bytes exceeds the permitted {WRITE_PERMIT} (check-write)",
                bytes.len()
            )));
        }
        if let Some(keep) = self.faults.on_write(bytes.len()) {
            // As if the process died mid-write: part of it on disk, no
            // answer.
            let _ = self.write_all(&bytes[..keep]);
            return Err(StreamError::Trap(torn(keep, bytes.len())));
        }
        if let Err(e) = self.write_all(&bytes) {
            self.state = State::Failed(e);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Nothing is buffered in the host.
        self.check()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.check()?;
        Ok(WRITE_PERMIT)
    }
}

/// The trap of an injected torn write.
fn torn(kept: usize, len: usize) -> wasmtime::Error {
    wasmtime::format_err!(
        "injected fault: this file write was torn after {kept} of its {len} bytes and the \
         instance stopped (a crash between a write and its acknowledgement)"
    )
}

/// The file behind a descriptor the guest may write, or the error
/// wasmtime-wasi would give.
fn writable_file(
    state: &mut HostState,
    fd: &Resource<Descriptor>,
) -> wasmtime::Result<Result<Arc<std::fs::File>, ErrorCode>> {
    let table = state.ctx().table;
    Ok(match table.get(fd)? {
        Descriptor::File(f) if f.perms.write_not_permitted() => Err(ErrorCode::NotPermitted),
        Descriptor::File(f) => Ok(f.file.clone()),
        Descriptor::Dir(_) => Err(ErrorCode::IsDirectory),
    })
}

/// Pushes a writer as the guest's stream resource.
fn push(
    state: &mut HostState,
    file: Arc<std::fs::File>,
    mode: Mode,
) -> wasmtime::Result<Resource<DynOutputStream>> {
    let faults = state.faults.clone();
    let writer: DynOutputStream = Box::new(InlineFileWriter {
        file,
        mode,
        state: State::Ready,
        faults,
    });
    Ok(state.ctx().table.push(writer)?)
}

/// Defines `write-via-stream` and `append-via-stream` over wasmtime-wasi's
/// (call after `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    type StreamResultOf = (Result<Resource<DynOutputStream>, ErrorCode>,);
    linker.allow_shadowing(true);
    let r = linker.instance(INTERFACE).and_then(|mut inst| {
        inst.func_wrap(
            "[method]descriptor.write-via-stream",
            |mut store,
             (fd, offset): (Resource<Descriptor>, u64)|
             -> wasmtime::Result<StreamResultOf> {
                let state = store.data_mut();
                Ok((match writable_file(state, &fd)? {
                    Ok(file) => Ok(push(state, file, Mode::Position(offset))?),
                    Err(e) => Err(e),
                },))
            },
        )?;
        // `write` at an offset is wasmtime-wasi's, unless a torn write is
        // armed and this is the one.
        inst.func_wrap_async(
            "[method]descriptor.write",
            |mut store, (fd, buf, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
                Box::new(async move {
                    let state = store.data_mut();
                    if let Some(keep) = state.faults.on_write(buf.len()) {
                        if let Ok(file) = writable_file(state, &fd)? {
                            let _ = write_at(&file, &buf[..keep], offset);
                        }
                        return Err(torn(keep, buf.len()));
                    }
                    let mut fs = state.filesystem();
                    match fs.write(fd, buf, offset).await {
                        Ok(n) => Ok((Ok(n),)),
                        Err(e) => Ok((Err(e.downcast()?),)),
                    }
                })
            },
        )?;
        inst.func_wrap(
            "[method]descriptor.append-via-stream",
            |mut store, (fd,): (Resource<Descriptor>,)| -> wasmtime::Result<StreamResultOf> {
                let state = store.data_mut();
                Ok((match writable_file(state, &fd)? {
                    Ok(file) => Ok(push(state, file, Mode::Append)?),
                    Err(e) => Err(e),
                },))
            },
        )
    });
    linker.allow_shadowing(false);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(file: std::fs::File, mode: Mode) -> InlineFileWriter {
        InlineFileWriter {
            file: Arc::new(file),
            mode,
            state: State::Ready,
            faults: Arc::default(),
        }
    }

    #[test]
    fn writes_at_a_position_that_advances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut w = writer(f, Mode::Position(2));
        assert_eq!(w.check_write().unwrap(), WRITE_PERMIT);
        w.write(Bytes::from_static(b"ab")).unwrap();
        w.write(Bytes::from_static(b"cd")).unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"01abcd6789");
    }

    #[test]
    fn appends_at_the_end_even_after_someone_else_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"start.").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut w = writer(f, Mode::Append);
        w.write(Bytes::from_static(b"one.")).unwrap();
        let mut other = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut other, b"other.").unwrap();
        w.write(Bytes::from_static(b"two.")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"start.one.other.two.");
    }

    #[test]
    fn a_failed_write_is_reported_by_the_next_operation_then_the_stream_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        // Read-only descriptor: the write fails in the kernel.
        let f = std::fs::File::open(&path).unwrap();
        let mut w = writer(f, Mode::Position(0));
        w.write(Bytes::from_static(b"x")).unwrap();
        assert!(matches!(
            w.check_write(),
            Err(StreamError::LastOperationFailed(_))
        ));
        assert!(matches!(w.check_write(), Err(StreamError::Closed)));
    }

    #[test]
    fn a_write_over_the_permit_traps() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        let mut w = writer(f, Mode::Position(0));
        let big = Bytes::from(vec![0u8; WRITE_PERMIT + 1]);
        assert!(matches!(w.write(big), Err(StreamError::Trap(_))));
    }
}
