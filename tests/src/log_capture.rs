//! Capturing the host's `tracing` output in a test, to check what providers
//! log and what the host reports about them.
//!
//! One subscriber is installed as the global default, once, and writes each
//! event into the buffer of the thread that emitted it, if that thread is
//! capturing. (Thread-local subscribers, `tracing::subscriber::set_default`,
//! lose events when tests running in parallel install and drop theirs: the
//! callsite interest cache is global and is rebuilt under them.)

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Once};

type Buffer = Arc<Mutex<Vec<u8>>>;

thread_local! {
    /// The buffer of the capture running on this thread, if any.
    static SINK: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// The log lines (INFO and above, no colours) emitted on this thread while
/// it lives. Use with a current-thread runtime, so the provider's calls run
/// on the capturing thread.
pub struct CapturedLog {
    buf: Buffer,
}

/// Writes to the capturing thread's buffer; discards on any other thread.
struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(buf) = sink.borrow().as_ref() {
                buf.lock().unwrap().extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn install_global_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadSink)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global tracing subscriber in the test binary");
    });
}

impl CapturedLog {
    /// Starts capturing on the current thread.
    pub fn start() -> CapturedLog {
        install_global_subscriber();
        let buf = Buffer::default();
        SINK.with(|sink| *sink.borrow_mut() = Some(buf.clone()));
        CapturedLog { buf }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

impl Drop for CapturedLog {
    fn drop(&mut self) {
        SINK.with(|sink| {
            let mut sink = sink.borrow_mut();
            if sink.as_ref().is_some_and(|b| Arc::ptr_eq(b, &self.buf)) {
                *sink = None;
            }
        });
    }
}
