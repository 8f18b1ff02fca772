//! `quietattn ptx`: the exact PTX embedded in this build, written out for ptxas.

use std::path::PathBuf;

use clap::Args;
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
    if !PTX_BUILT || PTX.is_empty() {
        return Err(Error::KernelsNotBuilt);
    }
    std::fs::create_dir_all(&args.out_dir)?;
    for (module, arch, text) in PTX {
        let path = args.out_dir.join(format!("{module}.{arch}.ptx"));
        std::fs::write(&path, text)?;
        println!("{} ({} bytes)", path.display(), text.len());
    }
    println!("{} PTX module(s) written", PTX.len());
    Ok(())
}
