//! The emulator library's objects, cached by content beside the fatbins
//! (`<target>/quietattn-kernels/emu/`), so every profile and build of one target directory
//! (`cargo run --release`, then `cargo test`, `cargo clippy`, `cargo doc`) compiles each
//! translation unit once. An object's key is the compiler, its flags (include folders left out:
//! they live in `OUT_DIR`, which differs per profile) and every file the unit includes, by name
//! relative to its root and by content.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fatbin::{Fnv, cache_dir, include_closure, prune};
use crate::pool;

/// One C++ translation unit of the library.
pub struct Unit {
    /// The file compiled.
    pub path: PathBuf,
    /// The name its cached objects share (one per unit).
    pub stem: String,
    /// Hashed in place of the file itself when its text names `OUT_DIR` paths (a wrapper).
    pub logical: Option<String>,
}

/// Compiles `units` with `build`'s compiler and flags (objects from the cache where their key
/// is there), archives them as `OUT_DIR/lib<name>.a` and tells cargo to link it.
/// `include_root` is where quoted includes resolve; `roots` are folders whose files are keyed
/// by their path relative to the folder.
pub fn build_library(
    build: &cc::Build,
    units: &[Unit],
    include_root: &Path,
    roots: &[&Path],
    out: &Path,
    name: &str,
) -> Result<(), String> {
    let tool = build.try_get_compiler().map_err(|e| e.to_string())?;
    let key = compiler_key(&tool);
    let cache = cache_dir(out).join("emu");
    fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let objects = pool::map(units, |unit| {
        unit_key(key, unit, include_root, roots).and_then(|h| object(&tool, unit, &cache, h))
    })
    .into_iter()
    .collect::<Result<Vec<PathBuf>, String>>()?;
    archive(build, &objects, out, name)?;
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static={name}");
    let target = env::var("TARGET").unwrap_or_default();
    if target.contains("apple") || target.contains("freebsd") {
        println!("cargo:rustc-link-lib=c++");
    } else if !target.contains("msvc") {
        println!("cargo:rustc-link-lib=stdc++");
    }
    Ok(())
}

/// The compiler's path, version and flags, without its include folders.
fn compiler_key(tool: &cc::Tool) -> u64 {
    let mut h = Fnv::default();
    h.write(tool.path().to_string_lossy().as_bytes());
    let version = Command::new(tool.path()).arg("--version").output();
    h.write(&version.map(|o| o.stdout).unwrap_or_default());
    let mut args = tool.args().iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "-I" {
            args.next();
        } else if !arg.starts_with("-I") {
            h.write(arg.as_bytes());
        }
    }
    h.0
}

/// The key of `unit`'s object: the compiler's, its stem, and what it includes.
fn unit_key(key: u64, unit: &Unit, include_root: &Path, roots: &[&Path]) -> Result<u64, String> {
    let mut h = Fnv(key);
    h.write(unit.stem.as_bytes());
    let own = unit
        .path
        .canonicalize()
        .unwrap_or_else(|_| unit.path.clone());
    for f in include_closure(&unit.path, include_root)? {
        if f == own && unit.logical.is_some() {
            h.write(b"<unit>");
            h.write(unit.logical.as_deref().unwrap_or_default().as_bytes());
            continue;
        }
        let name = roots
            .iter()
            .find_map(|r| f.strip_prefix(r).ok())
            .unwrap_or(&f);
        h.write(name.to_string_lossy().as_bytes());
        h.write(&fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    Ok(h.0)
}

/// The cached object of `unit` under key `h`, compiled first when the cache lacks it.
fn object(tool: &cc::Tool, unit: &Unit, cache: &Path, h: u64) -> Result<PathBuf, String> {
    let cached = cache.join(format!("{}-{h:016x}.o", unit.stem));
    if cached.is_file() {
        return Ok(cached);
    }
    let tmp = cache.join(format!("{}-{h:016x}.{}.tmp", unit.stem, std::process::id()));
    let output = tool
        .to_command()
        .arg("-c")
        .arg(&unit.path)
        .arg("-o")
        .arg(&tmp)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", tool.path().display()))?;
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(format!(
            "{}:\n{}",
            unit.path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    fs::rename(&tmp, &cached).map_err(|e| format!("{}: {e}", cached.display()))?;
    prune(cache, &unit.stem, "o", 4);
    Ok(cached)
}

/// `OUT_DIR/lib<name>.a` from `objects`, replacing any earlier archive.
fn archive(build: &cc::Build, objects: &[PathBuf], out: &Path, name: &str) -> Result<(), String> {
    let lib = out.join(format!("lib{name}.a"));
    let _ = fs::remove_file(&lib);
    let mut ar = build.try_get_archiver().map_err(|e| e.to_string())?;
    let status = ar
        .arg("crs")
        .arg(&lib)
        .args(objects)
        .status()
        .map_err(|e| format!("cannot run the archiver: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the archiver failed on {}", lib.display()))
    }
}
