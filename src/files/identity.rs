//! Which file a path names, so that `./x`, `x`, a symlink to `x` and a hard link to `x` compare
//! equal.

use std::path::{Path, PathBuf};

use super::file_error;
use crate::error::Result;

/// The file a path names: an existing file by (device, inode), a file still to be created by
/// its canonical folder and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileIdentity {
    /// An existing file (symlinks followed; hard links share it).
    Existing {
        /// Device id.
        dev: u64,
        /// Inode number.
        ino: u64,
    },
    /// A file that does not exist yet: its canonical folder joined with its name.
    Planned(PathBuf),
}

impl FileIdentity {
    /// The identity of `path`; a missing file needs an existing parent folder.
    pub fn of(path: &Path) -> Result<Self> {
        match std::fs::metadata(path) {
            Ok(meta) => Ok(existing(path, &meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (parent, name) = split(path)?;
                let parent = parent.canonicalize().map_err(|e| {
                    file_error(
                        path,
                        format!("folder {} is not usable: {e}", parent.display()),
                    )
                })?;
                Ok(FileIdentity::Planned(parent.join(name)))
            }
            Err(e) => Err(file_error(path, format!("cannot inspect: {e}"))),
        }
    }
}

#[cfg(unix)]
fn existing(_path: &Path, meta: &std::fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    FileIdentity::Existing {
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

#[cfg(not(unix))]
fn existing(path: &Path, _meta: &std::fs::Metadata) -> FileIdentity {
    // Without inode numbers the canonical path is the best identity available.
    FileIdentity::Planned(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()))
}

/// The folder (`.` for a bare name) and the file name of `path`.
pub(super) fn split(path: &Path) -> Result<(&Path, &std::ffi::OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| file_error(path, "does not name a file"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}
