//! Attacks on the host's limits and on the checks of answers: loops, hangs,
//! bombs, floods, and lies in what a call returns. None of these should come
//! back; when one does, it reports `ESCAPED: …`.

use crate::exports::tapedeck::storage::tape_storage::{Frame, TapeWriter};
use crate::report::Report;
use crate::store::Writer;
use crate::tapedeck::storage::log::{Level, emit};
use crate::tapedeck::storage::types::{Direction, FrameFlags};
use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

/// Spins forever without calling the host.
pub fn infinite_loop() -> String {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Host calls that would never complete: reading the FIFO `/ro/fifo`, which
/// the test created and never writes to (opening a FIFO for reading blocks
/// until a writer appears), directly, through the link `/ro/fifo-link` and
/// through WASI's `open-at`. Each must be refused, not left hanging.
pub fn hang_read() -> String {
    let mut r = Report::new();
    for path in ["/ro/fifo", "/ro/fifo-link"] {
        r.must_fail(&format!("read {path}"), std::fs::read(path));
    }
    let ro = crate::fs::preopen("/ro");
    let flags = DescriptorFlags::READ;
    let opened = ro.open_at(PathFlags::SYMLINK_FOLLOW, "fifo", OpenFlags::empty(), flags);
    r.must_fail("open-at /ro fifo", opened);
    r.finish()
}

/// Waits on a pollable that never becomes ready (the end of time).
pub fn hang_poll() -> String {
    wasip2::clocks::monotonic_clock::subscribe_instant(u64::MAX).block();
    "ESCAPED: the poll returned".to_string()
}

/// Allocates (and touches) memory until the host says no.
pub fn memory_bomb() -> String {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

/// Recurses until the stack overflows (the guard keeps the compiler from
/// proving it never returns).
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = [n; 64];
    std::hint::black_box(&pad);
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1) + pad[3]
}

/// Overflows the stack.
pub fn deep_recursion() -> String {
    format!("ESCAPED: recursion returned {}", recurse(0))
}

/// Panics (a trap, with the message on stderr).
pub fn panic() -> String {
    panic!("hostile provider: asked to panic")
}

/// Opens `/ro/file.txt` a million times, keeping every descriptor: each is
/// an entry in the host's resource table.
pub fn million_resources() -> String {
    let ro = crate::fs::preopen("/ro");
    let mut held = Vec::new();
    for i in 0..1_000_000 {
        let flags = DescriptorFlags::READ;
        match ro.open_at(PathFlags::empty(), "file.txt", OpenFlags::empty(), flags) {
            Ok(d) => held.push(d),
            Err(e) => return format!("refused: after {i} descriptors: {e}"),
        }
    }
    format!("ESCAPED: held {} descriptors", held.len())
}

/// Creates a million handles of its own `tape-writer` resource (component
/// model handles, in the host's per-store handle table).
pub fn million_handles() -> String {
    let held: Vec<TapeWriter> = (0..1_000_000)
        .map(|_| TapeWriter::new(Writer::detached()))
        .collect();
    format!("ESCAPED: held {} handles", held.len())
}

/// Floods the log: eight 1 MiB lines and 100,000 short ones through the
/// `log` import, 10,000 lines on stdout and an endless line on stderr.
pub fn log_flood() -> String {
    let long = "x".repeat(1 << 20);
    for _ in 0..8 {
        emit(Level::Warn, &long);
    }
    for i in 0..100_000 {
        emit(Level::Info, &format!("flood {i}"));
    }
    for i in 0..10_000 {
        println!("stdout flood {i}");
    }
    eprint!("{long}");
    "flooded: 100008 log lines, 10000 stdout lines, 1 MiB on stderr".to_string()
}

/// Asks for 1 GiB of random bytes, 1 MiB at a time.
pub fn random_bomb() -> String {
    let mut total = 0u64;
    for _ in 0..1024 {
        total += wasip2::random::random::get_random_bytes(1 << 20).len() as u64;
    }
    format!("ESCAPED: got {total} random bytes")
}

/// Asks for 1 GiB of random bytes in one request.
pub fn random_huge() -> String {
    let got = wasip2::random::random::get_random_bytes(1 << 30).len();
    format!("ESCAPED: got {got} random bytes in one request")
}

/// A tape name that is not valid UTF-8.
#[allow(unsafe_code, reason = "a hostile guest's invalid string, on purpose")]
pub fn bad_utf8() -> String {
    // SAFETY: deliberately unsound, as a hostile guest would be: the bytes
    // are not UTF-8. Nothing in this guest reads them; they are only handed
    // to the host, which must refuse them.
    unsafe { String::from_utf8_unchecked(vec![b'n', b'a', 0xff, 0xfe, b'm', 0x80, b'e']) }
}

/// A page of one million frames, every payload the same 1 MiB buffer: a few
/// dozen MiB in the guest, a TiB once the host copies it out.
#[allow(unsafe_code, reason = "a hostile guest's aliased buffers, on purpose")]
pub fn huge_list() -> Vec<Frame> {
    const FRAMES: u64 = 1_000_000;
    let payload: &'static mut [u8] = Vec::leak(vec![b'x'; 1 << 20]);
    let (ptr, len) = (payload.as_mut_ptr(), payload.len());
    (0..FRAMES)
        .map(|seq| Frame {
            seq,
            timestamp: 0,
            direction: Direction::ServerToClient,
            // SAFETY: deliberately unsound: every frame claims the same
            // leaked buffer. The host must refuse the answer while lifting
            // it; nothing in this guest touches these vectors again (the
            // instance is discarded before its post-return could free them).
            payload: unsafe { Vec::from_raw_parts(ptr, len, len) },
            flags: FrameFlags::empty(),
            terms: Vec::new(),
            attributes: Vec::new(),
        })
        .collect()
}

/// Six frames numbered backwards from `from + 5`.
pub fn out_of_order(from: u64) -> Vec<Frame> {
    (0..6)
        .rev()
        .map(|i| Frame {
            seq: from + i,
            timestamp: 0,
            direction: Direction::ClientToServer,
            payload: format!("{{\"frame\":{i}}}").into_bytes(),
            flags: FrameFlags::empty(),
            terms: Vec::new(),
            attributes: Vec::new(),
        })
        .collect()
}
