//! [`Signals`]: the termination signals a proxied session reacts to.
//!
//! MCP clients end a stdio session by closing the server's stdin, waiting a
//! little (2 s in the official SDKs), then sending `SIGTERM` (and `SIGKILL`
//! after another 2 s); a terminal sends `SIGINT` on Ctrl-C and `SIGHUP` when
//! it closes. [`Signals::listen`] catches `SIGTERM`, `SIGINT` and `SIGHUP`
//! for the whole process (from then on they no longer kill it), so
//! [`Proxy::run`](super::Proxy::run) can pass them to the server, record the
//! end, and return in time. A program embedding the proxy can also feed its
//! own shutdown requests through [`Signals::channel`].

use tokio::sync::mpsc;

/// A stream of signal numbers (`15` for `SIGTERM`, …).
#[derive(Debug)]
pub struct Signals {
    rx: Option<mpsc::UnboundedReceiver<i32>>,
}

/// Sends shutdown requests to a [`Signals`] made by [`Signals::channel`].
#[derive(Debug, Clone)]
pub struct SignalSender {
    tx: mpsc::UnboundedSender<i32>,
}

impl SignalSender {
    /// Delivers signal number `signal` (e.g. 15 for `SIGTERM`), as if the
    /// process had received it. False if the receiver is gone.
    pub fn send(&self, signal: i32) -> bool {
        self.tx.send(signal).is_ok()
    }
}

impl Signals {
    /// No signals: the session ends only when a side closes.
    pub fn none() -> Signals {
        Signals { rx: None }
    }

    /// A stream fed by the returned sender.
    pub fn channel() -> (SignalSender, Signals) {
        let (tx, rx) = mpsc::unbounded_channel();
        (SignalSender { tx }, Signals { rx: Some(rx) })
    }

    /// Catches `SIGTERM`, `SIGINT` and `SIGHUP` for this process from now on
    /// (on Unix; elsewhere Ctrl-C). Call it on a tokio runtime, as early as
    /// possible, so a signal that arrives while storage starts is not lost.
    pub fn listen() -> std::io::Result<Signals> {
        let (tx, signals) = Self::channel();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            for (kind, number) in [
                (SignalKind::terminate(), 15),
                (SignalKind::interrupt(), 2),
                (SignalKind::hangup(), 1),
            ] {
                let mut stream = signal(kind)?;
                let tx = tx.clone();
                tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        if !tx.send(number) {
                            break;
                        }
                    }
                });
            }
        }
        #[cfg(not(unix))]
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                while tokio::signal::ctrl_c().await.is_ok() {
                    if !tx.send(2) {
                        break;
                    }
                }
            });
        }
        drop(tx);
        Ok(signals)
    }

    /// The next signal; pending forever when there are none to come.
    pub(super) async fn recv(&mut self) -> i32 {
        match &mut self.rx {
            Some(rx) => match rx.recv().await {
                Some(s) => s,
                None => {
                    self.rx = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }
}
