//! [`SpoolFile`]: the spool file of one tape being recorded.
//!
//! Created (with its begin record, synced, and the directory entry synced)
//! before the tape is created at the provider; every frame is written to it
//! with one `write` call before the frame is forwarded; synced in batches by
//! the recording's task; deleted once the provider has finished the tape.
//! The file stays locked (`flock`, exclusive) by the recording process for as
//! long as it lives, so recovery never touches a live recording: the kernel
//! drops the lock when the process dies, however it dies.

use super::SpoolError;
use super::record::{self, Begin, EndRecord, Next, Record};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tapedeck_types::Frame;
use tokio::time::Instant;

/// A seek point is kept every this many frames, for reading frames back.
const INDEX_EVERY: u64 = 256;

/// The spool file of one tape being recorded (see the module docs).
pub struct SpoolFile {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// A second handle on the file, so syncing never waits for a write.
    sync_handle: File,
    /// Frames made durable (`0..synced`).
    synced: AtomicU64,
}

impl std::fmt::Debug for SpoolFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolFile")
            .field("path", &self.path)
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// Holds the lock; appends only.
    file: File,
    /// Bytes in the file (where the next record goes).
    len: u64,
    /// Frame records written (`0..frames`).
    frames: u64,
    /// `(seq, offset)` of every `INDEX_EVERY`th frame record.
    index: Vec<(u64, u64)>,
    /// Reused encoding buffer.
    buf: Vec<u8>,
    /// When the oldest unsynced write happened; `None` when all is synced.
    dirty_since: Option<Instant>,
    /// The first write that failed: nothing is written after it.
    failed: Option<String>,
}

impl SpoolFile {
    /// Creates the spool file for `begin.header.id` in `dir`, writes and
    /// syncs its begin record, syncs `dir`, and keeps the file locked.
    pub(crate) fn create(dir: &Path, begin: &Begin) -> Result<SpoolFile, SpoolError> {
        let path = dir.join(format!("{}.{}", begin.header.id, super::EXTENSION));
        let err = |e: io::Error| SpoolError::io(&path, "cannot create", e);
        // Written and locked under a name recovery does not look at, then
        // linked into place: a process killed while creating it leaves no
        // spool file without its signature and begin record (only a
        // `.….new` file that holds no frame).
        let new = dir.join(format!(".{}.{}.new", begin.header.id, super::EXTENSION));
        let mut opts = OpenOptions::new();
        opts.create_new(true).read(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(&new).map_err(err)?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => err(e),
            std::fs::TryLockError::WouldBlock => err(io::Error::other("locked by another process")),
        })?;
        let mut buf = record::MAGIC.to_vec();
        record::encode_begin(begin, &mut buf);
        file.write_all(&buf).map_err(err)?;
        file.sync_all().map_err(err)?;
        // Fails if a spool file of this tape exists already (as
        // `create_new` would), keeping the lock: same inode.
        let linked = std::fs::hard_link(&new, &path);
        let _ = std::fs::remove_file(&new);
        linked.map_err(err)?;
        super::sync_dir(dir).map_err(|e| SpoolError::io(dir, "cannot sync", e))?;
        let sync_handle = file.try_clone().map_err(err)?;
        Ok(SpoolFile {
            path,
            inner: Mutex::new(Inner {
                file,
                len: buf.len() as u64,
                frames: 0,
                index: Vec::new(),
                buf: Vec::new(),
                dirty_since: None,
                failed: None,
            }),
            sync_handle,
            synced: AtomicU64::new(0),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `frame`'s record (one `write` call; not synced). Frames must
    /// come in sequence. After a failed write nothing more is written (a
    /// partial record would hide every later one); the failure is returned
    /// once, then [`failure`](SpoolFile::failure) keeps it.
    pub(crate) fn write_frame(&self, frame: &Frame) -> Result<(), String> {
        let mut inner = self.inner();
        if inner.failed.is_some() {
            return Ok(());
        }
        debug_assert_eq!(frame.seq, inner.frames, "frames are spooled in order");
        let Inner {
            file,
            len,
            frames,
            index,
            buf,
            dirty_since,
            failed,
        } = &mut *inner;
        buf.clear();
        record::encode_frame(frame, buf);
        if let Err(e) = file.write_all(buf) {
            let msg = format!("cannot write to {}: {e}", self.path.display());
            *failed = Some(msg.clone());
            return Err(msg);
        }
        if frame.seq.is_multiple_of(INDEX_EVERY) {
            index.push((frame.seq, *len));
        }
        *len += buf.len() as u64;
        *frames += 1;
        dirty_since.get_or_insert_with(Instant::now);
        if buf.capacity() > 64 * 1024 {
            *buf = Vec::new();
        }
        Ok(())
    }

    /// Notes that the provider acknowledged frames `0..next_seq` (for
    /// `spool status`; not synced, and recovery asks the provider anyway).
    pub(crate) fn write_ack(&self, next_seq: u64) {
        self.write_small(|buf| record::encode_ack(next_seq, buf));
    }

    /// Writes the end record and syncs the file: from now on, recovery ends
    /// the tape with `end.reason`, not as crashed.
    pub(crate) fn write_end(&self, end: &EndRecord) -> Result<(), String> {
        self.write_small(|buf| record::encode_end(end, buf));
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.sync()
            .map_err(|e| format!("cannot sync {}: {e}", self.path.display()))
    }

    fn write_small(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut inner = self.inner();
        if inner.failed.is_some() {
            return;
        }
        let mut buf = Vec::new();
        encode(&mut buf);
        match inner.file.write_all(&buf) {
            Ok(()) => {
                inner.len += buf.len() as u64;
                inner.dirty_since.get_or_insert_with(Instant::now);
            }
            Err(e) => inner.failed = Some(format!("cannot write to {}: {e}", self.path.display())),
        }
    }

    /// Why writing failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.inner().failed.clone()
    }

    /// Frame records written.
    pub fn frames_written(&self) -> u64 {
        self.inner().frames
    }

    /// Frames known durable (`0..synced`).
    pub fn frames_synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// When the oldest write not yet synced happened, if any.
    pub(crate) fn dirty_since(&self) -> Option<Instant> {
        self.inner().dirty_since
    }

    /// Makes everything written so far durable (`fdatasync`). Blocking: call
    /// it off the async threads.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let frames = {
            let mut inner = self.inner();
            inner.dirty_since = None;
            inner.frames
        };
        if let Err(e) = self.sync_handle.sync_data() {
            // Try again at the next sync.
            self.inner().dirty_since.get_or_insert_with(Instant::now);
            return Err(e);
        }
        self.synced.fetch_max(frames, Ordering::AcqRel);
        Ok(())
    }

    /// Reads back frames `from_seq..`, at most `max_frames` and about
    /// `max_bytes` of payload (at least one frame if any), from the file.
    /// Blocking.
    pub(crate) fn read_frames(
        &self,
        from_seq: u64,
        max_frames: usize,
        max_bytes: u64,
    ) -> io::Result<Vec<Frame>> {
        let (start, end) = {
            let inner = self.inner();
            let start = match inner.index.partition_point(|(seq, _)| *seq <= from_seq) {
                0 => None,
                i => Some(inner.index[i - 1].1),
            };
            (start, inner.len)
        };
        let mut file = File::open(&self.path)?;
        let mut pos = match start {
            Some(offset) => offset,
            None => {
                // Skip the magic and the begin record.
                let mut r = BufReader::new(&mut file);
                let mut magic = [0u8; 8];
                io::Read::read_exact(&mut r, &mut magic)?;
                match record::read_next(&mut r)? {
                    Next::Record(Record::Begin(_), n) => 8 + n,
                    _ => return Err(io::Error::other("the spool file lost its begin record")),
                }
            }
        };
        file.seek(SeekFrom::Start(pos))?;
        let mut r = BufReader::new(io::Read::take(file, end - pos));
        let mut out = Vec::new();
        let mut bytes = 0u64;
        while out.len() < max_frames && (out.is_empty() || bytes < max_bytes) {
            match record::read_next(&mut r)? {
                Next::Record(Record::Frame(f), n) => {
                    pos += n;
                    if f.seq >= from_seq {
                        bytes += f.payload.len() as u64;
                        out.push(f);
                    }
                }
                Next::Record(_, n) => pos += n,
                Next::Eof => break,
                Next::Torn(why) => {
                    return Err(io::Error::other(format!(
                        "{} is damaged at byte {pos}: {why}",
                        self.path.display()
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Deletes the file: the provider has the whole tape. The lock goes with
    /// the handles.
    pub(crate) fn release(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
