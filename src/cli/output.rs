//! Printing that never panics. `println!` panics when stdout is a pipe whose reader has gone
//! (`quietattn probe … | head -1`) or a full device; every command prints through `outln!`
//! and `errln!` (defined in `cli/mod.rs`) instead.
//!
//! A reader that went away is not a failure: the rest of the output is dropped and the command
//! still runs to its end, so the files it was asked to write are written and its exit status
//! (a `check` mismatch included) is its own. Any other stdout failure is kept and reported once
//! the command has finished ([`stdout_result`]).

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use quietattn::{Error, Result};

/// Set once a write to stdout failed: later lines are dropped rather than tried again.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first stdout failure other than a closed pipe.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Writes one line to stdout (the body of `outln!`).
pub fn print_line(args: fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    // The flush makes a failure show here, not at exit where it could only be lost.
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe
            && let Ok(mut first) = STDOUT_ERROR.lock()
        {
            first.get_or_insert(e);
        }
    }
}

/// Writes one line to stderr (the body of `errln!`); a failure is ignored, as there is nowhere
/// left to report it.
pub fn eprint_line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{args}");
}

/// The stdout failure to report when the command itself succeeded: `Ok` when every line was
/// written or the reader merely closed the pipe.
pub fn stdout_result() -> Result<()> {
    let failed = STDOUT_ERROR.lock().ok().and_then(|mut e| e.take());
    match failed {
        Some(e) => Err(Error::File {
            path: "standard output".into(),
            message: format!("cannot write: {e}"),
        }),
        None => Ok(()),
    }
}
