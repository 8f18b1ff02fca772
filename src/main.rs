//! The `quietattn` command line: `run`, `stats`, `demo` (what runs without arguments), `bench`,
//! `check`, `ptx` and `probe`. Exit status: 0 success (also when the reader of stdout went away,
//! as in `quietattn check | head -1`), 1 `check` found a mismatch, 2 any other error.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Under a file-size limit (`ulimit -f`) the default SIGXFSZ kills the process mid-write;
    // ignored, the write fails with EFBIG and the atomic writer reports it and keeps the old file.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts is sound.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let result = cli::execute(cli::Cli::parse()).and_then(|()| cli::output::stdout_result());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::output::eprint_line(format_args!("error: {e}"));
            match e {
                quietattn::Error::CheckFailed { errors: 0, .. } => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
    }
}
