//! The wall-clock limit of a guest call, armed only if the call waits.
//!
//! Every guest call runs under a wall-clock timeout. `tokio::time::timeout`
//! registers a timer on every call, and on a multi-threaded runtime
//! registering a timer earlier than the one the time driver sleeps on wakes
//! the thread that holds the driver: a futex wake and two context switches
//! per call. Profiling the embedded provider showed that cost as the largest
//! host-side item of a small call (BENCHMARKS.md, "Where the time goes").
//!
//! Most guest calls never wait: their WASI file I/O runs on the calling
//! thread, so the whole call completes within its first poll. [`timeout`]
//! therefore polls the call first and creates the timer only when the call
//! returns `Pending` (it waits for the network, sleeps, or yields at an epoch
//! tick). The deadline is still measured from the start of the call, so the
//! limit enforced is the same; a call that runs without ever yielding is
//! bounded by the CPU budget (the epoch deadline), which makes it yield every
//! tick.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// The call did not complete within its wall-clock limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `fut` with a wall-clock limit of `limit` from now; the timer is
/// registered only if `fut` does not complete on its first poll.
pub fn timeout<F: Future>(limit: Duration, fut: F) -> Timeout<F> {
    Timeout {
        fut: Box::pin(fut),
        deadline: Instant::now() + limit,
        sleep: None,
    }
}

/// The future returned by [`timeout`].
pub struct Timeout<F> {
    fut: Pin<Box<F>>,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_future_completes_without_a_timer() {
        let t = timeout(Duration::from_secs(1), async { 7 });
        tokio::pin!(t);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match t.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(7)) => {}
            other => panic!("expected Ready(Ok(7)), got {other:?}"),
        }
        assert!(t.sleep.is_none(), "no timer was registered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_future_is_cut_off_at_the_deadline_measured_from_the_start() {
        let start = Instant::now();
        let r = timeout(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        assert_eq!(r, Err(Elapsed));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_future_that_finishes_in_time_returns_its_value() {
        let r = timeout(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            "done"
        })
        .await;
        assert_eq!(r, Ok("done"));
    }
}
