//! Build script: every `kernels/*.cu` (and `kernels/<folder>/*.cu`) becomes
//! 1. one compressed fatbin (SASS per shipped GPU architecture + PTX fallback, see
//!    `build/fatbin.rs`) through nvcc, embedded with `include_bytes!` (see `src/kernels.rs`), and
//! 2. with the `emulator` feature, a host object compiled as C++20 by the `cc` crate, so the
//!    same source runs on the CPU (see `src/emulator/`).
//!
//! Without nvcc the build still succeeds (a cargo warning; GPU entry points then return
//! `Error::KernelsNotBuilt`) unless `QUIETATTN_REQUIRE_PTX=1`, which turns it into a failure.
//! `QUIETATTN_CUDA_SASS` (e.g. `sm_90`) narrows the shipped SASS list for a quicker build.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/emulator.rs"]
mod emulator;
#[path = "build/fatbin.rs"]
mod fatbin;

use fatbin::Built;

/// A kernel source and the virtual architectures it is compiled for.
struct Kernel {
    path: PathBuf,
    stem: String,
    archs: Vec<String>,
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

    let default_archs: Vec<String> = env::var("QUIETATTN_CUDA_ARCH")
        .unwrap_or_else(|_| "compute_80".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let kernels = find_kernels(&root, &default_archs);
    let require = env::var("QUIETATTN_REQUIRE_PTX").is_ok_and(|v| v == "1");

    let built = match find_nvcc() {
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
    write_kernel_table(&out, &kernels, built.as_deref());

    if env::var_os("CARGO_FEATURE_EMULATOR").is_some() {
        let stems: Vec<(PathBuf, String)> = kernels
            .iter()
            .map(|k| (k.path.clone(), k.stem.clone()))
            .collect();
        emulator::build(&root, &out, &stems);
    }
}

/// `kernels/*.cu` and `kernels/<folder>/*.cu` (each kernel family's folder, `testing`), sorted
/// by name. A file picks its own architectures with a line
/// `// quietattn-arch: compute_75[,compute_90]`.
fn find_kernels(root: &Path, default_archs: &[String]) -> Vec<Kernel> {
    let mut kernels = Vec::new();
    let mut dirs = vec![root.join("kernels")];
    if let Ok(entries) = fs::read_dir(root.join("kernels")) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "cu") {
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("kernel file name is UTF-8")
                    .to_string();
                let source = fs::read_to_string(&path).expect("read kernel source");
                let archs = source
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("// quietattn-arch:"))
                    .map(|list| list.split(',').map(|s| s.trim().to_string()).collect())
                    .unwrap_or_else(|| default_archs.to_vec());
                kernels.push(Kernel { path, stem, archs });
            }
        }
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

/// Compiles every kernel file into its fatbin on as many threads as cargo gives the build script
/// (`NUM_JOBS`): one nvcc process per file (its ptxas runs per architecture inside it), never
/// more at once than the job count, so a 2-core machine is not handed ~20 nvcc processes.
fn compile_all(
    nvcc: &Path,
    root: &Path,
    out: &Path,
    kernels: &[Kernel],
) -> Result<Vec<Built>, String> {
    let shipped = fatbin::shipped_sass()?;
    let compiler = fatbin::Compiler::new(nvcc, root, out)?;
    let dir = out.join("fatbin");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, kernels.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<Built, String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                let (compiler, dir, shipped, next) = (&compiler, &dir, &shipped, &next);
                s.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(k) = kernels.get(i) else { break done };
                        let built = fatbin::Target::new(&k.archs, shipped)
                            .and_then(|target| compiler.fatbin(&k.path, &k.stem, &target, dir));
                        done.push((i, built));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("nvcc worker"))
            .collect()
    });
    // The kernel table lists kernels in scan order, whichever worker built them.
    results.sort_by_key(|(i, _)| *i);
    let results = results.into_iter().map(|(_, r)| r);
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(b) => built.push(b),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(errors.join("\n"))
    }
}

/// `OUT_DIR/kernels.rs`: the embedded fatbin table read by `src/kernels.rs`.
fn write_kernel_table(out: &Path, kernels: &[Kernel], built: Option<&[Built]>) {
    let mut s = String::new();
    writeln!(
        s,
        "/// True when nvcc compiled the kernels into the fatbins below."
    )
    .unwrap();
    writeln!(s, "pub const KERNELS_BUILT: bool = {};", built.is_some()).unwrap();
    writeln!(s, "/// Every kernel source file (module) by stem.").unwrap();
    write!(s, "pub const MODULES: &[&str] = &[").unwrap();
    for k in kernels {
        write!(s, "{:?}, ", k.stem).unwrap();
    }
    writeln!(s, "];").unwrap();
    // One named `static` per image: a `const` (or an anonymous promoted array) may be emitted
    // once per use or codegen unit, which embedded the kernels three times before.
    let built = built.unwrap_or_default();
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
            "Fatbin {{ module: {:?}, ptx_arch: {}, sass: &{:?}, image: &IMAGE_{i} }}, ",
            b.stem, b.ptx_arch, b.sass
        )
        .unwrap();
    }
    writeln!(s, "];").unwrap();
    fs::write(out.join("kernels.rs"), s).expect("write kernels.rs");
}
