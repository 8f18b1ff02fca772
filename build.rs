//! Build script: every `kernels/*.cu` (and `kernels/<folder>/*.cu`) becomes
//! 1. PTX in `OUT_DIR` through nvcc, embedded with `include_str!` (see `src/kernels.rs`), and
//! 2. with the `emulator` feature, a host object compiled as C++20 by the `cc` crate, so the
//!    same source runs on the CPU (see `src/emulator/`).
//!
//! Without nvcc the build still succeeds (a cargo warning; GPU entry points then return
//! `Error::KernelsNotBuilt`) unless `QUIETATTN_REQUIRE_PTX=1`, which turns it into a failure.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/emulator.rs"]
mod emulator;

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

    let ptx = match find_nvcc() {
        Some(nvcc) => match compile_all_ptx(&nvcc, &root, &out, &kernels) {
            Ok(ptx) => Some(ptx),
            Err(e) if require => panic!("QUIETATTN_REQUIRE_PTX=1 and nvcc failed:\n{e}"),
            Err(e) => {
                for line in e.lines().take(20) {
                    println!("cargo:warning=nvcc: {line}");
                }
                println!("cargo:warning=PTX not built; CUDA devices will report KernelsNotBuilt");
                None
            }
        },
        None if require => panic!(
            "QUIETATTN_REQUIRE_PTX=1 but nvcc was not found (NVCC, CUDA_HOME/CUDA_PATH, \
             /usr/local/cuda/bin, PATH)"
        ),
        None => {
            println!(
                "cargo:warning=nvcc not found: building without PTX; CUDA devices will report \
                 KernelsNotBuilt (set NVCC to build them)"
            );
            None
        }
    };
    write_ptx_table(&out, &kernels, ptx.as_deref());

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

/// Compiles every (kernel, arch) pair in parallel; returns `(stem, arch, ptx path)`.
fn compile_all_ptx(
    nvcc: &Path,
    root: &Path,
    out: &Path,
    kernels: &[Kernel],
) -> Result<Vec<(String, String, PathBuf)>, String> {
    let ptx_dir = out.join("ptx");
    fs::create_dir_all(&ptx_dir).map_err(|e| e.to_string())?;
    let extra: Vec<String> = env::var("QUIETATTN_NVCC_FLAGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let jobs: Vec<(&Kernel, &String)> = kernels
        .iter()
        .flat_map(|k| k.archs.iter().map(move |a| (k, a)))
        .collect();
    let results: Vec<Result<(String, String, PathBuf), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(k, arch)| {
                let ptx = ptx_dir.join(format!("{}.{arch}.ptx", k.stem));
                let extra = &extra;
                s.spawn(move || {
                    let output = Command::new(nvcc)
                        .args(["--ptx", "-O3", "-std=c++17", "-lineinfo"])
                        .arg(format!("-arch={arch}"))
                        .arg("-I")
                        .arg(root.join("kernels"))
                        .args(extra)
                        .arg("-o")
                        .arg(&ptx)
                        .arg(&k.path)
                        .output()
                        .map_err(|e| format!("cannot run {}: {e}", nvcc.display()))?;
                    if !output.status.success() {
                        return Err(format!(
                            "{} ({arch}) failed:\n{}{}",
                            k.path.display(),
                            String::from_utf8_lossy(&output.stdout),
                            String::from_utf8_lossy(&output.stderr)
                        ));
                    }
                    Ok((k.stem.clone(), arch.clone(), ptx))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("nvcc thread"))
            .collect()
    });
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok(results.into_iter().filter_map(Result::ok).collect())
}

/// `OUT_DIR/kernels.rs`: the embedded PTX table read by `src/kernels.rs`.
fn write_ptx_table(out: &Path, kernels: &[Kernel], ptx: Option<&[(String, String, PathBuf)]>) {
    let mut s = String::new();
    writeln!(
        s,
        "/// True when nvcc compiled the kernels into the PTX below."
    )
    .unwrap();
    writeln!(s, "pub const PTX_BUILT: bool = {};", ptx.is_some()).unwrap();
    writeln!(s, "/// Every kernel source file (module) by stem.").unwrap();
    write!(s, "pub const MODULES: &[&str] = &[").unwrap();
    for k in kernels {
        write!(s, "{:?}, ", k.stem).unwrap();
    }
    writeln!(s, "];").unwrap();
    writeln!(s, "/// `(module, virtual arch, PTX text)`.").unwrap();
    write!(s, "pub const PTX: &[(&str, &str, &str)] = &[").unwrap();
    for (stem, arch, path) in ptx.unwrap_or_default() {
        write!(
            s,
            "({stem:?}, {arch:?}, include_str!({:?})), ",
            path.display().to_string()
        )
        .unwrap();
    }
    writeln!(s, "];").unwrap();
    fs::write(out.join("kernels.rs"), s).expect("write kernels.rs");
}
