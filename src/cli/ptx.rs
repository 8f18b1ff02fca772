//! `quietattn ptx`: the exact kernel images embedded in this build, written out for inspection
//! (`cuobjdump -lelf -lptx -res-usage -sass`) and for CI's checks (`.ci/check-ptx.sh`).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use quietattn::kernels::{self, FATBINS, KERNELS_BUILT};
use quietattn::{Error, Result};

/// Arguments of `quietattn ptx`.
#[derive(Debug, Args)]
pub struct PtxArgs {
    /// Directory to write `<module>.fatbin` files and `manifest.tsv` into (created when missing).
    #[arg(long)]
    out_dir: PathBuf,
}

/// Writes every embedded fatbin and a manifest (`module  ptx_arch  sass_list  bytes` per line,
/// tab-separated); fails with [`Error::KernelsNotBuilt`] when there is none.
pub fn ptx(args: &PtxArgs) -> Result<()> {
    if !KERNELS_BUILT || FATBINS.is_empty() {
        return Err(Error::KernelsNotBuilt);
    }
    let dir = &args.out_dir;
    let io = |e: std::io::Error| {
        Error::Io(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", dir.display()),
        ))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut manifest = String::new();
    for f in FATBINS {
        let path = dir.join(format!("{}.fatbin", f.module));
        std::fs::write(&path, f.image).map_err(io)?;
        let sass: Vec<String> = f.sass.iter().map(|s| format!("sm_{s}")).collect();
        let _ = writeln!(
            manifest,
            "{}\tcompute_{}\t{}\t{}",
            f.module,
            f.ptx_arch,
            sass.join(","),
            f.image.len()
        );
        println!(
            "{} ({} bytes: SASS {}, PTX compute_{})",
            path.display(),
            f.image.len(),
            sass.join(" "),
            f.ptx_arch
        );
    }
    std::fs::write(dir.join("manifest.tsv"), manifest).map_err(io)?;
    println!(
        "{} module(s), {} bytes of kernel images embedded",
        FATBINS.len(),
        kernels::embedded_bytes()
    );
    Ok(())
}
