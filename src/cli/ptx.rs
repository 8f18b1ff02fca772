//! `quietattn ptx`: the exact kernel images embedded in this build, written out for inspection
//! (`cuobjdump -lelf -lptx -res-usage -sass`) and for CI's checks (`.ci/check-ptx.sh`).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use quietattn::files::write_atomic;
use quietattn::kernels::{self, FATBINS, KERNELS_BUILT};
use quietattn::{Error, Result};

/// Arguments of `quietattn ptx`.
#[derive(Debug, Args)]
pub struct PtxArgs {
    /// Folder to write the `<module>.fatbin` files and `manifest.tsv` into (created when
    /// missing).
    #[arg(long)]
    out_dir: PathBuf,
}

/// Writes every embedded fatbin and a manifest (`module  ptx_arch  sass_list  bytes` per line,
/// tab-separated: `attn_softmax  compute_75  sm_75,sm_80  N`, or `-` for the PTX of an
/// arch-specific module, which ships none: `hopper_probe  -  sm_90a  N`); fails with
/// [`Error::KernelsNotBuilt`] when there is none.
pub fn ptx(args: &PtxArgs) -> Result<()> {
    let dir = &args.out_dir;
    if dir.exists() && !dir.is_dir() {
        return Err(dir_error(dir, "exists and is not a directory".into()));
    }
    if !KERNELS_BUILT || FATBINS.is_empty() {
        return Err(Error::KernelsNotBuilt);
    }
    std::fs::create_dir_all(dir).map_err(|e| dir_error(dir, format!("cannot create: {e}")))?;
    let mut manifest = String::new();
    for f in FATBINS {
        let path = dir.join(format!("{}.fatbin", f.module));
        write_atomic(&path, f.image)?;
        let sass = f.sass_names();
        let ptx = f.ptx_arch.map(|p| format!("compute_{p}"));
        let _ = writeln!(
            manifest,
            "{}\t{}\t{}\t{}",
            f.module,
            ptx.as_deref().unwrap_or("-"),
            sass.join(","),
            f.image.len()
        );
        outln!(
            "{} ({} bytes: SASS {}, PTX {})",
            path.display(),
            f.image.len(),
            sass.join(" "),
            ptx.as_deref().unwrap_or("none")
        );
    }
    write_atomic(&dir.join("manifest.tsv"), manifest.as_bytes())?;
    outln!(
        "{} module(s), {} bytes of kernel images embedded",
        FATBINS.len(),
        kernels::embedded_bytes()
    );
    Ok(())
}

fn dir_error(dir: &std::path::Path, message: String) -> Error {
    Error::File {
        path: dir.display().to_string(),
        message,
    }
}
