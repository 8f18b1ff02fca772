//! Files on disk, read and written safely: inputs are regular files of bounded size (never a
//! FIFO or a device that does not end), outputs are checked before any work, never alias an
//! input or each other, and are replaced atomically so a failure leaves every existing file as
//! it was.
//!
//! ```
//! use quietattn::files::{OutputSet, read_input, DEFAULT_MAX_INPUT_BYTES};
//!
//! # fn main() -> quietattn::Result<()> {
//! let dir = std::env::temp_dir().join(format!("quietattn-files-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let input = dir.join("in.txt");
//! std::fs::write(&input, "data")?;
//! let output = dir.join("out.txt");
//!
//! // Validate every output first (and refuse one that is the input), then do the work.
//! let mut outputs = OutputSet::prepare(&[input.as_path()], &[output.as_path()])?;
//! assert!(OutputSet::prepare(&[input.as_path()], &[input.as_path()]).is_err());
//! let bytes = read_input(&input, DEFAULT_MAX_INPUT_BYTES)?;
//! outputs.stage(0, &bytes)?;
//! outputs.commit()?;
//! assert_eq!(std::fs::read(&output)?, b"data");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod identity;
mod read;
mod write;

pub use identity::FileIdentity;
pub use read::{DEFAULT_MAX_INPUT_BYTES, read_input};
pub use write::{OutputFile, OutputSet, write_atomic};

use crate::error::Error;
use std::path::Path;

/// An [`Error::File`] about `path`.
pub(crate) fn file_error(path: &Path, message: impl Into<String>) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
