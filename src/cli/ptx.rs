//! `quietattn ptx`: the exact PTX embedded in this build, written out for ptxas.

use std::path::PathBuf;

use clap::Args;
use quietattn::files::write_atomic;
use quietattn::kernels::{PTX, PTX_BUILT};
use quietattn::{Error, Result};

/// Arguments of `quietattn ptx`.
#[derive(Debug, Args)]
pub struct PtxArgs {
    /// Directory to write `<module>.<arch>.ptx` files into (created when missing).
    #[arg(long)]
    out_dir: PathBuf,
}

/// Writes every embedded PTX module; fails with [`Error::KernelsNotBuilt`] when there is none.
pub fn ptx(args: &PtxArgs) -> Result<()> {
    let dir = &args.out_dir;
    if dir.exists() && !dir.is_dir() {
        return Err(dir_error(dir, "exists and is not a directory".into()));
    }
    if !PTX_BUILT || PTX.is_empty() {
        return Err(Error::KernelsNotBuilt);
    }
    std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, format!("cannot create: {e}")))?;
    for (module, arch, text) in PTX {
        let path = dir.join(format!("{module}.{arch}.ptx"));
        write_atomic(&path, text.as_bytes())?;
        println!("{} ({} bytes)", path.display(), text.len());
    }
    println!("{} PTX module(s) written", PTX.len());
    Ok(())
}

fn dir_error(dir: &std::path::Path, message: String) -> Error {
    Error::File {
        path: dir.display().to_string(),
        message,
    }
}
