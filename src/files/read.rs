//! Reading an input file: a regular file, at most a given size, opened so that a FIFO or a
//! device can never block or stream forever.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::file_error;
use crate::error::Result;

/// The default input size limit: 64 GiB, above any single safetensors shard of today's models
/// yet below what a stream such as `/dev/zero` would fill memory with. The CLI overrides it with
/// `--max-input-bytes`.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 << 30;

/// Reads all of `path`, which must be a regular file (symlinks followed) of at most `max_bytes`.
///
/// The file type is checked before opening, and the open itself never waits (a FIFO swapped in
/// between is caught by the second check), so neither a FIFO nor a device ever blocks.
pub fn read_input(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    check_regular(path, &meta, max_bytes)?;
    let file = open_without_waiting(path)?;
    let opened = file
        .metadata()
        .map_err(|e| file_error(path, format!("cannot inspect: {e}")))?;
    check_regular(path, &opened, max_bytes)?;
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew since the check from one that fits.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(path, max_bytes));
    }
    Ok(bytes)
}

fn check_regular(path: &Path, meta: &std::fs::Metadata, max_bytes: u64) -> Result<()> {
    if meta.is_dir() {
        return Err(file_error(path, "is a directory, not a file"));
    }
    if !meta.is_file() {
        return Err(file_error(
            path,
            "is not a regular file (a FIFO, socket or device); inputs must be regular files",
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large(path, max_bytes));
    }
    Ok(())
}

fn too_large(path: &Path, max_bytes: u64) -> crate::error::Error {
    file_error(
        path,
        format!(
            "is larger than the input limit of {max_bytes} bytes (raise it with --max-input-bytes)"
        ),
    )
}

#[cfg(unix)]
fn open_without_waiting(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| file_error(path, format!("cannot open: {e}")))
}

#[cfg(not(unix))]
fn open_without_waiting(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))
}
