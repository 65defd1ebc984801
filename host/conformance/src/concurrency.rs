//! Several tasks on one store at once: writers on different tapes, readers
//! during writes, and races for the same id.

use super::check::{self, ensure};
use super::fixtures::{frame, summary_of};
use super::ops::{append, finish};
use super::{CaseResult, Ctx};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::{EndReason, ErrorKind, Frame, TapeState};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// Frames of writer `w`: payloads name the writer and the seq.
fn writer_frames(w: usize, n: u64) -> Vec<Frame> {
    (0..n)
        .map(|seq| {
            frame(
                seq,
                format!(
                    "{{\"jsonrpc\":\"2.0\",\"method\":\"w/{w}\",\"params\":{{\"seq\":{seq}}}}}"
                ),
            )
        })
        .collect()
}

/// Waits for every task, turning a failure or panic into `Err` naming the task.
async fn join_all(mut set: JoinSet<(usize, CaseResult)>, what: &str) -> CaseResult {
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        let err = match joined {
            Ok((_, Ok(()))) => continue,
            Ok((i, Err(e))) => format!("{what} {i}: {e}"),
            Err(e) if e.is_panic() => format!("a {what} panicked"),
            Err(e) => format!("a {what} task failed: {e}"),
        };
        first_err.get_or_insert(err);
    }
    first_err.map_or(Ok(()), Err)
}

/// `options.writers` writers on different tapes, appending interleaved
/// batches of varying size; afterwards each tape holds exactly its frames.
pub(crate) async fn writers<S: TapeStore + 'static>(cx: Arc<Ctx<S>>) -> CaseResult {
    let n = cx.options.writers.max(2);
    const FRAMES: u64 = 150;
    let barrier = Arc::new(Barrier::new(n));
    let ids: Vec<String> = (0..n).map(|i| cx.id(&format!("w{i}"))).collect();
    let mut set = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let (cx, barrier, id) = (cx.clone(), barrier.clone(), id.clone());
        set.spawn(async move {
            let run = async {
                let frames = writer_frames(i, FRAMES);
                // Everybody meets at the barrier, even a writer whose
                // create failed, so that the others do not wait forever.
                let created = cx.create(cx.header(&id)).await;
                barrier.wait().await;
                let mut w = created?;
                let mut at = 0usize;
                let mut k = i;
                while at < frames.len() {
                    let size = (k % 7 + 1).min(frames.len() - at);
                    append(&mut w, &frames[at..at + size], (at + size) as u64).await?;
                    at += size;
                    k += 1;
                    tokio::task::yield_now().await;
                }
                finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
                Ok(())
            };
            (i, run.await)
        });
    }
    join_all(set, "writer").await?;
    for (i, id) in ids.iter().enumerate() {
        let frames = writer_frames(i, FRAMES);
        let info = cx.get(id).await?;
        ensure!(
            info.frame_count == FRAMES,
            "tape `{id}` of writer {i} has {} frames, expected {FRAMES}",
            info.frame_count
        );
        let read = cx.read_all(id, 0, 1000, u64::MAX).await?;
        check::frames_eq(
            &read,
            &frames,
            &format!("read_frames(`{id}`) of writer {i}"),
        )?;
    }
    Ok(())
}

/// Readers calling `get` and `read_frames` while a writer appends always see
/// a prefix of the tape, never shrinking.
pub(crate) async fn read_while_writing<S: TapeStore + 'static>(cx: Arc<Ctx<S>>) -> CaseResult {
    const FRAMES: u64 = 300;
    let id = cx.id("live");
    let frames = Arc::new(writer_frames(0, FRAMES));
    let mut w = cx.create(cx.header(&id)).await?;
    // Set when the writer stops, however it stops, so readers stop too.
    let stopped = Arc::new(AtomicBool::new(false));
    let writer = {
        let (frames, stopped) = (frames.clone(), stopped.clone());
        tokio::spawn(async move {
            let result = async {
                for chunk in frames.chunks(10) {
                    let next = chunk[chunk.len() - 1].seq + 1;
                    append(&mut w, chunk, next).await?;
                    tokio::task::yield_now().await;
                }
                finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
                Ok::<(), String>(())
            }
            .await;
            stopped.store(true, Ordering::SeqCst);
            result
        })
    };
    let mut readers = JoinSet::new();
    for r in 0..3usize {
        let (cx, id, frames) = (cx.clone(), id.clone(), frames.clone());
        let stopped = stopped.clone();
        readers.spawn(async move {
            let run = async {
                let mut last = 0u64;
                loop {
                    let last_round = stopped.load(Ordering::SeqCst);
                    let info = cx.get(&id).await?;
                    ensure!(
                        info.frame_count >= last,
                        "get(`{id}`) reported {} frames after reporting {last}",
                        info.frame_count
                    );
                    last = info.frame_count;
                    let read = cx.read_all(&id, 0, 37, u64::MAX).await?;
                    ensure!(
                        read.len() as u64 >= last,
                        "read_frames(`{id}`) returned {} frames after get reported {last}",
                        read.len()
                    );
                    check::frames_eq(
                        &read,
                        &frames[..read.len()],
                        &format!("read_frames(`{id}`) during writes"),
                    )?;
                    if last_round || info.state != TapeState::Recording {
                        return Ok(());
                    }
                    tokio::task::yield_now().await;
                }
            };
            (r, run.await)
        });
    }
    let written = match writer.await {
        Ok(r) => r,
        Err(e) => Err(format!("the writer task failed: {e}")),
    };
    let read = join_all(readers, "reader").await;
    written?;
    read?;
    let all = cx.read_all(&id, 0, 1000, u64::MAX).await?;
    check::frames_eq(
        &all,
        &frames,
        &format!("read_frames(`{id}`) after the writes"),
    )
}

/// Many tasks creating (then saving) the same id at once: exactly one wins,
/// the others get `already-exists`, and the tape holds the winner's frames
/// only.
pub(crate) async fn create_same_id<S: TapeStore + 'static>(cx: Arc<Ctx<S>>) -> CaseResult {
    let n = cx.options.writers.clamp(2, 16);
    for op in ["create", "save"] {
        let id = cx.id(op);
        let barrier = Arc::new(Barrier::new(n));
        let mut set = JoinSet::new();
        for i in 0..n {
            let (cx, barrier, id) = (cx.clone(), barrier.clone(), id.clone());
            set.spawn(async move {
                let frames = vec![
                    frame(0, format!("{{\"racer\":{i}}}")),
                    frame(1, format!("{{\"racer\":{i},\"n\":1}}")),
                ];
                let mut header = cx.header(&id);
                header.name = format!("racer {i}");
                barrier.wait().await;
                let result = if op == "create" {
                    match cx.store.create(header).await {
                        Ok(mut w) => {
                            let done = async {
                                append(&mut w, &frames, 2).await?;
                                finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
                                Ok::<(), String>(())
                            };
                            Ok(done.await.map(|()| w.id().to_string()))
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    cx.store
                        .save(header, &frames, summary_of(&frames), EndReason::Completed)
                        .await
                        .map(|info| Ok(info.header.id))
                };
                (i, result)
            });
        }
        let mut winners = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.map_err(|e| format!("a racing {op} task failed: {e}"))?;
            match result {
                Ok(Ok(_)) => winners.push(i),
                Ok(Err(e)) => return Err(format!("racer {i} won {op}(`{id}`) but then: {e}")),
                Err(e) if e.storage_kind() == Some(ErrorKind::AlreadyExists) => {}
                Err(e) => {
                    return Err(format!(
                        "racer {i}: {op}(`{id}`) failed with `{}`, expected success or `already-exists` ({e})",
                        e.code()
                    ));
                }
            }
        }
        ensure!(
            winners.len() == 1,
            "{n} concurrent {op}(`{id}`) calls: {} succeeded ({winners:?}), expected exactly one",
            winners.len()
        );
        let i = winners[0];
        let info = cx.get(&id).await?;
        ensure!(
            info.header.name == format!("racer {i}"),
            "racer {i} won {op}(`{id}`), but the tape's header is {:?}",
            info.header
        );
        let want = vec![
            frame(0, format!("{{\"racer\":{i}}}")),
            frame(1, format!("{{\"racer\":{i},\"n\":1}}")),
        ];
        let read = cx.read_all(&id, 0, 100, u64::MAX).await?;
        check::frames_eq(
            &read,
            &want,
            &format!("read_frames(`{id}`) after the {op} race won by racer {i}"),
        )?;
    }
    Ok(())
}
