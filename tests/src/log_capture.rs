//! Capturing the host's `tracing` output in a test, to check what providers
//! log and what the host reports about them.

use std::sync::{Arc, Mutex};
use tracing::subscriber::DefaultGuard;

/// The log lines (INFO and above, no colours) emitted on this thread while
/// it lives. Use with a current-thread runtime, so the provider's calls run
/// on the capturing thread.
pub struct CapturedLog {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    /// Starts capturing on the current thread.
    pub fn start() -> CapturedLog {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Writer(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        CapturedLog {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}
