//! Publishing a new tape file: written whole under `tmp/`, made durable, then
//! linked into `tapes/` only if the id is free.

use crate::errors::{IoContext, io_error};
use crate::inner::Inner;
use crate::tapefile::TapeFile;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::Path;
use tapedeck_types::StorageError;

/// Best-effort fsync of a directory, so a new entry in it survives power
/// loss (natively; WASI may not allow opening a directory as a file).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Inner {
    /// Writes a new tape file under `tmp/` with `write`, makes it durable,
    /// and links it into `tapes/` unless the id is taken.
    pub(crate) fn publish(
        &mut self,
        id: &str,
        write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
    ) -> Result<(), StorageError> {
        let tmp = self.paths.temp(id, "new");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .ctx("create temp file", &tmp)?;
        let fsync = self.config.fsync;
        let written = (|| {
            let mut w = BufWriter::with_capacity(1 << 16, file);
            write(&mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            if fsync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("write temp file", &tmp, &e));
        }
        let result = self.link_new(id, &tmp);
        let _ = fs::remove_file(&tmp);
        result?;
        if fsync {
            sync_dir(&self.paths.tapes);
        }
        Ok(())
    }

    /// Links `tmp` to the tape path of `id`, failing with `already-exists`
    /// if that path exists (after clearing a leftover of a deleted tape).
    pub(crate) fn link_new(&mut self, id: &str, tmp: &Path) -> Result<(), StorageError> {
        let dst = self.paths.tape(id);
        let taken = || StorageError::already_exists(format!("tape {id:?} already exists"));
        for attempt in 0..2 {
            match fs::hard_link(tmp, &dst) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if attempt == 0
                        && let Ok(t) = TapeFile::open(&dst, None, false)
                        && self.catalog.is_tombstoned(id, t.header.nonce)
                    {
                        self.remove_zombie(id, t.header.nonce);
                        continue;
                    }
                    return Err(taken());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(io_error("link", tmp, &e));
                }
                Err(_) => {
                    // No hard links here (some filesystems, some sandboxes):
                    // fall back to check-then-rename, which is exclusive
                    // except against a concurrent create of the same id.
                    if dst.exists() {
                        return Err(taken());
                    }
                    return fs::rename(tmp, &dst).ctx("publish", &dst);
                }
            }
        }
        Err(taken())
    }

    /// Undoes [`Inner::publish`] after the catalog entry could not be written.
    pub(crate) fn unpublish(&mut self, id: &str) {
        let _ = fs::remove_file(self.paths.tape(id));
        let _ = fs::remove_file(self.paths.seek(id));
    }
}
