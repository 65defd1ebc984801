//! A crash between a write and its acknowledgement: with a
//! [`Harness`](crate::Harness) that can tear a file write, the first,
//! second, third… write of an `append` stores half its bytes and the
//! instance dies. `resume` must then repair the torn tail: every frame
//! acknowledged before is still there, the frames of the failed call are
//! there in full or not at all, and the tape goes on.

use super::check::{self, ensure};
use super::fixtures::{json_frames, summary_of};
use super::ops::{append, finish};
use super::{CaseResult, Ctx, TornWrite};
use std::sync::Arc;
use tapedeck_store::{TapeStore, TapeWriter};
use tapedeck_types::EndReason;

/// The most writes of one append torn in turn.
const MAX_NTH: u32 = 8;

/// Frames acknowledged before the torn call, frames it carries, frames in
/// the finished tape.
const ACKED: u64 = 5;
const TORN: u64 = 5;
const TOTAL: u64 = 14;

/// For n = 1, 2, …: a tape with 5 frames acknowledged, then an append of 5
/// more whose n-th file write is torn. `resume` gives a writer at a
/// `next-seq` between 5 and 10, the frames below it read back intact, and
/// the tape can be continued and finished. Ends when an append makes fewer
/// than n writes (a provider that writes no files passes at once).
pub(crate) async fn append_then_resume<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let harness = cx.options.harness.clone().ok_or("no harness")?;
    let frames = json_frames(0..TOTAL);
    let acked = &frames[..ACKED as usize];
    let torn = &frames[ACKED as usize..(ACKED + TORN) as usize];
    for nth in 1..=MAX_NTH {
        let id = cx.id(&format!("torn{nth}"));
        let mut w = cx.create(cx.header(&id)).await?;
        append(&mut w, acked, ACKED).await?;
        ensure!(
            harness.arm(TornWrite { nth }),
            "the harness cannot tear writes"
        );
        let answer = w.append(torn).await;
        let fired = harness.fired();
        drop(w);
        if !fired {
            // This append made fewer than `nth` file writes: every write
            // has been torn once.
            check::ok(answer, &format!("append to `{id}` (nothing torn)"))?;
            return Ok(());
        }
        let when = format!("after write {nth} of an append to `{id}` was torn by a crash");
        ensure!(
            answer.is_err(),
            "the append whose write {nth} was torn answered {answer:?}, but its instance had \
             stopped: the host must not have seen an answer"
        );
        let mut w = check::ok(cx.store.resume(&id).await, &format!("{when}, resume"))
            .map_err(|e| {
                format!("{e} (resume must repair a torn tail: find the last whole frame, drop what follows)")
            })?;
        let next = w.next_seq();
        ensure!(
            (ACKED..=ACKED + TORN).contains(&next),
            "{when}, resume gives next-seq {next}: {}",
            if next < ACKED {
                format!(
                    "the {ACKED} frames acknowledged before were lost (an acknowledged append must be durable)"
                )
            } else {
                format!("only {} frames were ever sent", ACKED + TORN)
            }
        );
        let read = cx.read_all(&id, 0, 1000, u64::MAX).await.map_err(|e| {
            format!("{when} and resume: {e} (the torn tail must be repaired, not read back)")
        })?;
        check::frames_eq(
            &read,
            &frames[..next as usize],
            &format!("{when} and resume at {next}, reading `{id}`"),
        )?;
        append(&mut w, &frames[next as usize..], TOTAL)
            .await
            .map_err(|e| format!("{when}, continuing after resume: {e}"))?;
        finish(&mut w, summary_of(&frames), EndReason::Completed).await?;
        let read = cx.read_all(&id, 0, 1000, u64::MAX).await?;
        check::frames_eq(&read, &frames, &format!("{when}, the finished tape"))?;
    }
    Ok(())
}
