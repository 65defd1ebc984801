//! A long run on the same instances: a provider that leaks handles or
//! memory passes every short case, then fails in production after a few
//! thousand calls (`max-resources`, `memory`), losing the instance each
//! time. With a [`Harness`](crate::Harness) that reports usage, the counts
//! before and after say which; without one, the long run still fails a
//! provider that hits a limit.

use super::check::{ensure, ok};
use super::fixtures::json_frames;
use super::ops::{append, finish};
use super::{CaseResult, Ctx, Usage};
use std::sync::Arc;
use tapedeck_store::TapeStore;
use tapedeck_types::{EndReason, TapeFilter};

/// Tapes recorded before the first count (caches, lazy set-up).
const WARM_UP: u64 = 40;
/// Tapes recorded after it.
const SOAK: u64 = 600;
/// Reads of the same tapes after that.
const READS: u64 = 1000;
/// Resources the instances may hold more at the end than after warming
/// up (what a provider keeps open on purpose, e.g. one file per tape it
/// caches, stays below this).
const RESOURCE_SLACK: u64 = 64;

/// One tape's life: create, two appends, get, read, finish, and every 50
/// tapes a listing.
async fn lifecycle<S: TapeStore>(cx: &Ctx<S>, n: u64) -> Result<String, String> {
    let id = cx.id(&format!("soak{n}"));
    let frames = json_frames(0..4);
    let mut w = cx.create(cx.header(&id)).await?;
    append(&mut w, &frames[..2], 2).await?;
    append(&mut w, &frames[2..], 4).await?;
    cx.get(&id).await?;
    let read = ok(
        cx.store.read_frames(&id, 0, 10, u64::MAX).await,
        &format!("read_frames(`{id}`)"),
    )?;
    ensure!(
        read.len() == 4,
        "read_frames(`{id}`) returned {} frames, expected 4",
        read.len()
    );
    finish(
        &mut w,
        super::fixtures::summary_of(&frames),
        EndReason::Completed,
    )
    .await?;
    drop(w);
    if !n.is_multiple_of(50) {
        return Ok(id);
    }
    let filter = TapeFilter {
        session_id: Some(cx.session()),
        ..TapeFilter::default()
    };
    ok(cx.store.list(&filter, None, 1).await, "list(limit 1)")?;
    Ok(id)
}

/// 640 tapes recorded one after the other through the same instances, then
/// 1,000 reads of the same few: every call succeeds, and the resources the
/// instances hold do not grow with the number of calls. (Memory is only
/// reported: a garbage-collected guest grows its heap long before it
/// collects, so growth alone does not tell a leak.)
pub(crate) async fn one_instance<S: TapeStore>(cx: Arc<Ctx<S>>) -> CaseResult {
    let usage = || cx.options.harness.as_ref().and_then(|h| h.usage());
    let held = |u: Option<&Usage>| {
        u.map(|u| {
            format!(
                "; after warming up the instances held {} resources and {} bytes",
                u.resources, u.memory
            )
        })
        .unwrap_or_default()
    };
    let mut ids = Vec::new();
    for n in 0..WARM_UP {
        let id = lifecycle(&cx, n)
            .await
            .map_err(|e| format!("tape {n} of the soak: {e}"))?;
        if ids.len() < 8 {
            ids.push(id);
        }
    }
    let first = usage();
    for n in WARM_UP..WARM_UP + SOAK {
        lifecycle(&cx, n).await.map_err(|e| {
            format!(
                "tape {n} of the soak: {e} (every short case passed: look for handles or memory \
                 a call keeps{})",
                held(first.as_ref())
            )
        })?;
    }
    if let (Some(first), Some(last)) = (first, usage()) {
        ensure!(
            last.resources <= first.resources + RESOURCE_SLACK,
            "after {SOAK} more tapes the provider's {} instances hold {} resources \
             (descriptors, streams, sockets), {} after warming up: a call leaves handles open; \
             close every file and drop every stream a call opens before it returns (a leaking \
             provider loses its instance at `max-resources`)",
            last.instances,
            last.resources,
            first.resources
        );
    }
    // Reads of the same tapes.
    let before = usage();
    for n in 0..READS {
        let id = &ids[(n % 8) as usize];
        cx.get(id)
            .await
            .map_err(|e| format!("read {n} of the soak: {e}"))?;
        ok(
            cx.store.read_frames(id, 0, 10, u64::MAX).await,
            &format!("read_frames(`{id}`)"),
        )
        .map_err(|e| format!("read {n} of the soak: {e}{}", held(before.as_ref())))?;
    }
    if let (Some(before), Some(after)) = (before, usage()) {
        ensure!(
            after.resources <= before.resources + RESOURCE_SLACK,
            "after {READS} reads of the same 8 tapes the provider's {} instances hold {} \
             resources (descriptors, streams), {} before: a read leaves handles open; close \
             every file a call opens before it returns (a leaking provider loses its instance \
             at `max-resources`)",
            after.instances,
            after.resources,
            before.resources
        );
    }
    Ok(())
}
