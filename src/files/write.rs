//! Writing outputs: validated before any work, written to a temporary file in the destination's
//! folder, synced, then renamed over the destination, so a failure at any point (a full disk, a
//! file-size limit, a crash) leaves every existing file exactly as it was.

use std::fs::{File, Permissions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::file_error;
use super::identity::{FileIdentity, split};
use crate::error::Result;

/// One output, validated and backed by a temporary file until [`OutputSet::commit`].
#[derive(Debug)]
pub struct OutputFile {
    /// The path as the caller spelled it (for messages).
    path: PathBuf,
    /// Where the rename lands: the path, or the file a symlink points at.
    target: PathBuf,
    /// The temporary file beside `target`.
    temp: PathBuf,
    file: Option<File>,
    /// The replaced file's permissions, kept on the new one.
    permissions: Option<Permissions>,
    staged: bool,
    committed: bool,
}

impl OutputFile {
    /// Checks that `path` can be replaced (a regular writable file, or a new name in an existing
    /// folder) and creates the temporary file, which proves the folder is writable.
    pub fn prepare(path: &Path) -> Result<Self> {
        let (target, permissions) = destination(path)?;
        let (temp, file) = create_temp(path, &target)?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            target,
            temp,
            file: Some(file),
            permissions,
            staged: false,
            committed: false,
        })
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes all of `bytes` to the temporary file and syncs it; the destination is untouched.
    pub fn stage(&mut self, bytes: &[u8]) -> Result<()> {
        let path = &self.path;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| file_error(path, "was already written"))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| file_error(path, format!("cannot write: {e}")))?;
        if let Some(p) = &self.permissions {
            std::fs::set_permissions(&self.temp, p.clone())
                .map_err(|e| file_error(path, format!("cannot set permissions: {e}")))?;
        }
        self.staged = true;
        Ok(())
    }

    /// Renames the staged temporary file over the destination.
    fn commit(&mut self) -> Result<()> {
        if !self.staged {
            return Err(file_error(&self.path, "nothing was written for it"));
        }
        self.file = None;
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| file_error(&self.path, format!("cannot replace: {e}")))?;
        self.committed = true;
        // The rename is durable only once the folder is synced; a failure here loses nothing.
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the temporary file is ours and never the destination.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Where `path` is replaced and the permissions to keep, or why it cannot be.
fn destination(path: &Path) -> Result<(PathBuf, Option<Permissions>)> {
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(file_error(path, "is a directory, not a file"));
            }
            if !meta.is_file() {
                return Err(file_error(
                    path,
                    "is not a regular file (a device such as /dev/full, a FIFO or a socket); \
                     outputs are replaced atomically, so they must be regular files or new names",
                ));
            }
            if meta.permissions().readonly() {
                return Err(file_error(path, "is read-only"));
            }
            let target = path
                .canonicalize()
                .map_err(|e| file_error(path, format!("cannot resolve: {e}")))?;
            Ok((target, Some(meta.permissions())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(file_error(path, "is a symlink to nothing"));
            }
            let (parent, name) = split(path)?;
            match std::fs::metadata(parent) {
                Ok(m) if m.is_dir() => Ok((parent.join(name), None)),
                Ok(_) => Err(file_error(
                    path,
                    format!("{} is not a directory", parent.display()),
                )),
                Err(e) => Err(file_error(
                    path,
                    format!("folder {} is not usable: {e}", parent.display()),
                )),
            }
        }
        Err(e) => Err(file_error(path, format!("cannot inspect: {e}"))),
    }
}

/// A new, exclusive temporary file in `target`'s folder (the rename must not cross devices).
fn create_temp(path: &Path, target: &Path) -> Result<(PathBuf, File)> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (folder, name) = split(target)?;
    let temp = folder.join(format!(
        ".{}.{}-{}.quietattn-tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = File::create_new(&temp).map_err(|e| {
        file_error(
            path,
            format!("cannot create a file in {}: {e}", folder.display()),
        )
    })?;
    Ok((temp, file))
}

/// All outputs of one command: checked together before any work, distinct from each other and
/// from every input, replaced only after all of them were written.
#[derive(Debug)]
pub struct OutputSet {
    files: Vec<OutputFile>,
}

impl OutputSet {
    /// Validates `outputs` against each other and `inputs` (same file by device and inode, so
    /// `./x`, symlinks and hard links count) and prepares each. An input that cannot be
    /// inspected is left to the read that follows to report.
    pub fn prepare(inputs: &[&Path], outputs: &[&Path]) -> Result<Self> {
        let inputs: Vec<(&Path, FileIdentity)> = inputs
            .iter()
            .filter_map(|p| FileIdentity::of(p).ok().map(|id| (*p, id)))
            .collect();
        let mut seen: Vec<(&Path, FileIdentity)> = Vec::new();
        for &out in outputs {
            let id = FileIdentity::of(out)?;
            if let Some((input, _)) = inputs.iter().find(|(_, i)| *i == id) {
                return Err(file_error(
                    out,
                    format!(
                        "is the input {}: refusing to overwrite an input",
                        input.display()
                    ),
                ));
            }
            if let Some((other, _)) = seen.iter().find(|(_, s)| *s == id) {
                return Err(file_error(
                    out,
                    format!(
                        "is also the output {}: every output needs its own file",
                        other.display()
                    ),
                ));
            }
            seen.push((out, id));
        }
        let files = outputs
            .iter()
            .map(|p| OutputFile::prepare(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(OutputSet { files })
    }

    /// Writes output `index` (in the order given to [`Self::prepare`]) to its temporary file.
    pub fn stage(&mut self, index: usize, bytes: &[u8]) -> Result<()> {
        let n = self.files.len();
        self.files
            .get_mut(index)
            .ok_or_else(|| {
                crate::error::Error::InvalidOption(format!("no output {index}: the set holds {n}"))
            })?
            .stage(bytes)
    }

    /// Replaces every destination; fails without touching any when one was not staged.
    pub fn commit(mut self) -> Result<()> {
        if let Some(f) = self.files.iter().find(|f| !f.staged) {
            return Err(file_error(&f.path, "nothing was written for it"));
        }
        self.files.iter_mut().try_for_each(OutputFile::commit)
    }
}

/// Replaces `path` with `bytes` atomically (validated, temporary file, sync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut out = OutputSet::prepare(&[], &[path])?;
    out.stage(0, bytes)?;
    out.commit()
}
