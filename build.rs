//! Build script: every `kernels/*.cu` (and `kernels/<folder>/*.cu`), and every instantiation unit
//! it generates from the registry `src/registry/table.rs` (`build/instances.rs`), becomes
//! 1. one compressed fatbin (SASS per shipped GPU architecture + PTX fallback, see
//!    `build/fatbin.rs`) through nvcc, embedded with `include_bytes!` (see `src/kernels.rs`), and
//! 2. with the `emulator` feature, a host object compiled as C++20 by the `cc` crate, so the
//!    same source runs on the CPU (see `src/emulator/`).
//!
//! Without nvcc the build still succeeds (a cargo warning; GPU entry points then return
//! `Error::KernelsNotBuilt`) unless `QUIETATTN_REQUIRE_PTX=1`, which turns it into a failure.
//! `QUIETATTN_CUDA_SASS` (e.g. `sm_90`) narrows the shipped SASS list for a quicker build.
//! A file's header lines (`build/header.rs`) pick its architectures, arch-specific ones such as
//! `sm_90a` included, and can leave it out of the emulator build.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/emu_cache.rs"]
mod emu_cache;
#[path = "build/emulator.rs"]
mod emulator;
#[path = "build/fatbin.rs"]
mod fatbin;
#[path = "build/header.rs"]
mod header;
#[path = "build/instances.rs"]
mod instances;
#[path = "build/pool.rs"]
mod pool;
#[path = "src/registry/table.rs"]
#[allow(dead_code)]
mod registry;

use fatbin::Built;

/// A kernel source and the virtual architectures it is compiled for.
struct Kernel {
    path: PathBuf,
    stem: String,
    archs: Vec<String>,
    /// False for a file marked `// quietattn-emulate: no`.
    emulate: bool,
}

/// One kernel file after nvcc: its fatbin, or why there was nothing to compile for it.
enum Outcome {
    Built(Built),
    Skipped(String),
}

/// What nvcc made of the kernel files, in scan order.
struct Compiled {
    built: Vec<Built>,
    /// Modules with nothing to build for the SASS list, and why (`fatbin::Target::skip_reason`).
    skipped: Vec<(String, String)>,
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "PATH",
        "QUIETATTN_CUDA_ARCH",
        "QUIETATTN_CUDA_SASS",
        "QUIETATTN_REQUIRE_PTX",
        "QUIETATTN_NVCC_FLAGS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=src/registry/table.rs");

    let default_archs: Vec<String> = env::var("QUIETATTN_CUDA_ARCH")
        .unwrap_or_else(|_| "compute_80".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let units = instances::write_all(&out.join("generated"));
    let kernels = find_kernels(&root, &units, &default_archs);
    let require = env::var("QUIETATTN_REQUIRE_PTX").is_ok_and(|v| v == "1");

    let built: Option<Compiled> = match find_nvcc() {
        Some(nvcc) => match compile_all(&nvcc, &root, &out, &kernels) {
            Ok(built) => Some(built),
            Err(e) if require => panic!("QUIETATTN_REQUIRE_PTX=1 and nvcc failed:\n{e}"),
            Err(e) => {
                for line in e.lines().take(20) {
                    println!("cargo:warning=nvcc: {line}");
                }
                println!(
                    "cargo:warning=kernels not built; CUDA devices will report KernelsNotBuilt"
                );
                None
            }
        },
        None if require => panic!(
            "QUIETATTN_REQUIRE_PTX=1 but nvcc was not found (NVCC, CUDA_HOME/CUDA_PATH, \
             /usr/local/cuda/bin, PATH)"
        ),
        None => {
            println!(
                "cargo:warning=nvcc not found: building without CUDA kernels; CUDA devices will \
                 report KernelsNotBuilt (set NVCC to build them)"
            );
            None
        }
    };
    write_kernel_table(&out, &kernels, built.as_ref());

    if env::var_os("CARGO_FEATURE_EMULATOR").is_some() {
        let (emulated, not_emulated): (Vec<&Kernel>, Vec<&Kernel>) =
            kernels.iter().partition(|k| k.emulate);
        let stems: Vec<(PathBuf, String)> = emulated
            .iter()
            .map(|k| (k.path.clone(), k.stem.clone()))
            .collect();
        let left_out: Vec<String> = not_emulated.iter().map(|k| k.stem.clone()).collect();
        emulator::build(&root, &out, &stems, &left_out);
    }
}

/// `kernels/*.cu`, `kernels/<folder>/*.cu` (`testing`, `hopper`, ...) and the generated
/// instantiation units `units`, sorted by name. A file picks its own architectures and opts out
/// of the emulator with header lines (`build/header.rs`).
fn find_kernels(root: &Path, units: &[PathBuf], default_archs: &[String]) -> Vec<Kernel> {
    let mut kernels = Vec::new();
    let mut dirs = vec![root.join("kernels")];
    if let Ok(entries) = fs::read_dir(root.join("kernels")) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    let mut sources: Vec<PathBuf> = units.to_vec();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        sources.extend(entries.flatten().map(|e| e.path()));
    }
    for path in sources {
        if path.extension().is_none_or(|e| e != "cu") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("kernel file name is UTF-8")
            .to_string();
        let source = fs::read_to_string(&path).expect("read kernel source");
        let header = header::parse(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        kernels.push(Kernel {
            path,
            stem,
            archs: header.archs.unwrap_or_else(|| default_archs.to_vec()),
            emulate: header.emulate,
        });
    }
    kernels.sort_by(|a, b| a.stem.cmp(&b.stem));
    for pair in kernels.windows(2) {
        assert!(
            pair[0].stem != pair[1].stem,
            "two kernel files named {}.cu",
            pair[0].stem
        );
    }
    kernels
}

/// NVCC, then CUDA_HOME/CUDA_PATH, /usr/local/cuda, PATH: the user's own nvcc matches their driver.
fn find_nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(home) = env::var_os(var) {
            let p = PathBuf::from(home).join("bin/nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let p = PathBuf::from("/usr/local/cuda/bin/nvcc");
    if p.is_file() {
        return Some(p);
    }
    env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|d| d.join("nvcc"))
            .find(|p| p.is_file())
    })
}

/// Compiles every kernel file into its fatbin on the build script's worker pool (build/pool.rs).
fn compile_all(
    nvcc: &Path,
    root: &Path,
    out: &Path,
    kernels: &[Kernel],
) -> Result<Compiled, String> {
    let shipped = fatbin::shipped_sass()?;
    let compiler = fatbin::Compiler::new(nvcc, root, out)?;
    let dir = out.join("fatbin");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // One nvcc process per file (its ptxas runs per architecture inside it), in scan order.
    let results = pool::map(kernels, |k| {
        fatbin::Target::new(&k.archs, &shipped)
            .map_err(|e| format!("{}: {e}", k.path.display()))
            .and_then(|target| match target.skip_reason() {
                Some(reason) => Ok(Outcome::Skipped(reason)),
                None => compiler
                    .fatbin(&k.path, &k.stem, &target, &dir)
                    .map(Outcome::Built),
            })
    });
    let mut compiled = Compiled {
        built: Vec::new(),
        skipped: Vec::new(),
    };
    let mut errors = Vec::new();
    for (k, r) in kernels.iter().zip(results) {
        match r {
            Ok(Outcome::Built(b)) => compiled.built.push(b),
            Ok(Outcome::Skipped(reason)) => {
                println!("cargo:warning={}: {reason}", k.stem);
                compiled.skipped.push((k.stem.clone(), reason));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(compiled)
    } else {
        Err(errors.join("\n"))
    }
}

/// `OUT_DIR/kernels.rs`: the embedded fatbin table read by `src/kernels.rs`.
fn write_kernel_table(out: &Path, kernels: &[Kernel], compiled: Option<&Compiled>) {
    let mut s = String::new();
    writeln!(
        s,
        "/// True when nvcc compiled the kernels into the fatbins below."
    )
    .unwrap();
    writeln!(s, "pub const KERNELS_BUILT: bool = {};", compiled.is_some()).unwrap();
    writeln!(s, "/// Every kernel source file (module) by stem.").unwrap();
    write!(s, "pub const MODULES: &[&str] = &[").unwrap();
    for k in kernels {
        write!(s, "{:?}, ", k.stem).unwrap();
    }
    writeln!(s, "];").unwrap();
    // One named `static` per image: a `const` (or an anonymous promoted array) may be emitted
    // once per use or codegen unit, which embedded the kernels three times before.
    let built = compiled.map_or(&[][..], |c| &c.built);
    for (i, b) in built.iter().enumerate() {
        writeln!(
            s,
            "static IMAGE_{i}: [u8; {}] = *include_bytes!({:?});",
            fs::metadata(&b.path).map(|m| m.len()).expect("fatbin size"),
            b.path.display().to_string()
        )
        .unwrap();
    }
    writeln!(s, "/// One fatbin per module.").unwrap();
    write!(s, "pub static FATBINS: &[Fatbin] = &[").unwrap();
    for (i, b) in built.iter().enumerate() {
        write!(
            s,
            "Fatbin {{ module: {:?}, ptx_arch: {:?}, sass: &{:?}, arch_specific: {}, \
             image: &IMAGE_{i} }}, ",
            b.stem, b.ptx_arch, b.sass, b.arch_specific
        )
        .unwrap();
    }
    writeln!(s, "];").unwrap();
    writeln!(
        s,
        "/// Modules nvcc had nothing to build for under this SASS list, and why."
    )
    .unwrap();
    write!(s, "pub static NOT_BUILT: &[(&str, &str)] = &[").unwrap();
    for (stem, reason) in compiled.map_or(&[][..], |c| &c.skipped) {
        write!(s, "({stem:?}, {reason:?}), ").unwrap();
    }
    writeln!(s, "];").unwrap();
    fs::write(out.join("kernels.rs"), s).expect("write kernels.rs");
}
