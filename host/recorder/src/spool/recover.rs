//! Recovery: delivering the spool file of a recording whose process is gone
//! to its provider, and ending the tape.
//!
//! For one file, under its lock (a live recording holds it, so is never
//! touched):
//!
//! 1. ask the provider about the tape: missing → `create` it (the process
//!    died before or during `create`); `recording` → `resume` it; ended →
//!    check it holds exactly the spooled frames (count and digest) and
//!    release the file, or keep the file and report the conflict;
//! 2. append the frames the provider lacks (from its `next-seq` on, so
//!    nothing is duplicated), reading the file in batches;
//! 3. finish the tape with the digest of all its frames and the reason the
//!    end record gives, or `crashed` when the recording never ended;
//! 4. check what `finish` answered and delete the file.
//!
//! Any provider failure leaves the file in place for the next attempt.

use super::entry::SpoolEntry;
use super::{ProviderKey, SpoolError};
use crate::DigestChain;
use std::fs::{File, OpenOptions};
use std::path::Path;
use tapedeck_store::error::ProviderError;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, TapeInfo, TapeState, TapeSummary};

/// Frames per `append` during recovery.
const BATCH_FRAMES: usize = 256;
/// Payload bytes per `append` during recovery (a larger frame goes alone).
const BATCH_BYTES: u64 = 1 << 20;
/// Frames per `read-frames` when reading back frames the spool lacks.
const READ_FRAMES: u32 = 1000;

/// A tape recovery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The tape as the provider reported it after `finish`.
    pub tape: TapeInfo,
    /// Frames in the spool file.
    pub spooled: u64,
    /// Frames this recovery appended (the provider had the rest).
    pub delivered: u64,
    /// How the tape was ended.
    pub reason: EndReason,
    /// The provider had already ended the tape with these frames; only the
    /// file was left to delete.
    pub already_ended: bool,
    /// Damage at the end of the spool file (a torn write), if any.
    pub damage: Option<String>,
}

/// Why a spool file could not be recovered (it is kept).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The file could not be read.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The provider failed; recovery can be tried again later.
    #[error("recovering tape {tape}: {error}")]
    Provider {
        /// The tape.
        tape: String,
        /// What the provider said.
        error: ProviderError,
    },
    /// The provider holds an ended tape that is not the spooled one.
    #[error("recovering tape {tape}: {why}; the spool file {} is kept", path.display())]
    Conflict {
        /// The tape.
        tape: String,
        /// The spool file.
        path: std::path::PathBuf,
        /// What differs.
        why: String,
    },
}

/// What [`recover_all`] did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Tapes recovered (their files deleted).
    pub recovered: Vec<Recovered>,
    /// Files that could not be recovered (kept, to try again).
    pub failed: Vec<RecoveryError>,
    /// Files skipped because a live process holds them.
    pub live: usize,
}

/// Recovers every spool file of `key` that no live process holds, oldest
/// first. A failure is reported and the next file is tried; when the
/// provider fails, the remaining files are left for the next attempt.
pub async fn recover_all<S: TapeStore>(
    spool: &super::Spool,
    store: &S,
    key: &ProviderKey,
) -> Result<RecoveryReport, SpoolError> {
    let mut report = RecoveryReport::default();
    for path in spool.files_of(key)? {
        match recover_entry(store, key, &path).await {
            Ok(Some(r)) => report.recovered.push(r),
            Ok(None) => report.live += 1,
            Err(e) => {
                let provider_down = matches!(&e, RecoveryError::Provider { error, .. } if error.storage_kind().is_none());
                report.failed.push(e);
                if provider_down {
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Recovers the spool file at `path` into `store`, if no live process holds
/// it: `Ok(None)` when it is locked (still recording) or was just recovered
/// by someone else, or belongs to another provider key.
pub async fn recover_entry<S: TapeStore>(
    store: &S,
    key: &ProviderKey,
    path: &Path,
) -> Result<Option<Recovered>, RecoveryError> {
    let Some(lock) = try_lock(path)? else {
        return Ok(None);
    };
    let entry = SpoolEntry::read(path)?;
    if entry.begin.provider_key != key.hex() {
        return Ok(None);
    }
    let id = entry.tape_id().to_string();
    let provider_err = |error| RecoveryError::Provider {
        tape: id.clone(),
        error,
    };
    let reason = entry.end.map_or(EndReason::Crashed, |e| e.reason);

    let writer = match store.get(&id).await {
        Ok(info) if info.state != TapeState::Recording => {
            check_ended(&entry, &info)?;
            verify(store, &info, path).await?;
            release(path, lock)?;
            return Ok(Some(Recovered {
                reason: EndReason::for_state(info.state).unwrap_or(reason),
                tape: info,
                spooled: entry.frames,
                delivered: 0,
                already_ended: true,
                damage: entry.damage,
            }));
        }
        Ok(_) => store.resume(&id).await.map_err(provider_err)?,
        Err(e) if e.storage_kind() == Some(ErrorKind::NotFound) => {
            match store.create(entry.begin.header.clone()).await {
                Ok(w) => w,
                Err(e) if e.storage_kind() == Some(ErrorKind::AlreadyExists) => {
                    store.resume(&id).await.map_err(provider_err)?
                }
                Err(e) => return Err(provider_err(e)),
            }
        }
        Err(e) => return Err(provider_err(e)),
    };
    let mut writer = writer;
    let has = writer.next_seq();

    // Deliver what the provider lacks; the chain covers every frame.
    let mut chain = DigestChain::new();
    let mut bytes = 0u64;
    let mut delivered = 0u64;
    let mut reader = entry.frame_reader()?;
    loop {
        let batch = reader.next_batch(BATCH_FRAMES, BATCH_BYTES)?;
        if batch.is_empty() {
            break;
        }
        for f in &batch {
            chain.push(f);
            bytes += f.payload.len() as u64;
        }
        let new: Vec<_> = batch.into_iter().filter(|f| f.seq >= has).collect();
        if !new.is_empty() {
            writer.append(&new).await.map_err(provider_err)?;
            delivered += new.len() as u64;
        }
    }
    // A power loss can cost the spool its last frames after the provider
    // took them: read those back so the tape keeps them.
    let mut total = entry.frames;
    while total < writer.next_seq() {
        let page = store
            .read_frames(&id, total, READ_FRAMES, BATCH_BYTES)
            .await
            .map_err(provider_err)?;
        if page.is_empty() {
            break;
        }
        for f in &page {
            chain.push(f);
            bytes += f.payload.len() as u64;
        }
        total += page.len() as u64;
    }

    let summary = TapeSummary {
        frame_count: total,
        byte_count: bytes,
        ended_at_us: entry
            .end
            .map(|e| e.ended_at_us)
            .or(entry.last_frame_at_us)
            .unwrap_or(entry.begin.header.created_at_us),
        digest: Some(chain.hex()),
        seal: None,
    };
    writer
        .finish(summary.clone(), reason)
        .await
        .map_err(provider_err)?;
    // Check what a fresh `get` says, not the answer to `finish`.
    let tape = store.get(&id).await.map_err(provider_err)?;
    verify(store, &tape, path).await?;
    if tape.state != reason.end_state() || tape.frame_count != total {
        return Err(RecoveryError::Conflict {
            tape: id,
            path: path.to_path_buf(),
            why: format!(
                "after finish the provider reports the tape {} with {} frames, expected {} with {total}",
                tape.state.as_str(),
                tape.frame_count,
                reason.end_state().as_str()
            ),
        });
    }
    release(path, lock)?;
    Ok(Some(Recovered {
        tape,
        spooled: entry.frames,
        delivered,
        reason,
        already_ended: false,
        damage: entry.damage,
    }))
}

/// Reads the ended tape back and checks it against its digest: the spool
/// file is kept if the provider returns anything else.
async fn verify<S: TapeStore>(
    store: &S,
    tape: &TapeInfo,
    path: &Path,
) -> Result<(), RecoveryError> {
    if tape.state == TapeState::Aborted {
        return Ok(());
    }
    tapedeck_store::read::TapeReader::new(store)
        .read_verified(tape, |_| Ok::<(), std::convert::Infallible>(()))
        .await
        .map(drop)
        .map_err(|e| RecoveryError::Conflict {
            tape: tape.header.id.clone(),
            path: path.to_path_buf(),
            why: format!("reading it back: {e}"),
        })
}

/// An ended tape must hold the spooled frames (a power loss may have cost
/// the spool its last frames, so the provider may hold more).
fn check_ended(entry: &SpoolEntry, info: &TapeInfo) -> Result<(), RecoveryError> {
    let conflict = |why: String| RecoveryError::Conflict {
        tape: entry.tape_id().to_string(),
        path: entry.path.clone(),
        why,
    };
    if info.frame_count < entry.frames {
        return Err(conflict(format!(
            "the provider holds it {} with {} frames, but {} frames were spooled",
            info.state.as_str(),
            info.frame_count,
            entry.frames
        )));
    }
    if info.frame_count == entry.frames
        && let Some(digest) = &info.digest
    {
        let mut chain = DigestChain::new();
        let mut reader = entry.frame_reader()?;
        loop {
            let batch = reader.next_batch(BATCH_FRAMES, BATCH_BYTES)?;
            if batch.is_empty() {
                break;
            }
            batch.iter().for_each(|f| chain.push(f));
        }
        if !chain.matches(digest) {
            return Err(conflict(format!(
                "the provider holds it {} with a digest ({digest}) that is not the spooled frames' ({})",
                info.state.as_str(),
                chain.hex()
            )));
        }
    }
    Ok(())
}

/// Opens and locks `path`; `None` if a live process holds it or it is gone.
fn try_lock(path: &Path) -> Result<Option<File>, SpoolError> {
    let file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SpoolError::io(path, "cannot open", e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(SpoolError::io(path, "cannot lock", e)),
    }
    // Recovered (and deleted) by another process between open and lock?
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(file))
}

/// Deletes a recovered file, then drops its lock.
fn release(path: &Path, lock: File) -> Result<(), SpoolError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(SpoolError::io(path, "cannot delete", e));
        }
        _ => {}
    }
    drop(lock);
    Ok(())
}
