//! CUDA half of the build script: every kernel file becomes ONE compressed fatbin holding SASS
//! for each shipped GPU architecture at or above the file's virtual architecture, plus the PTX
//! of that (oldest) virtual architecture as the fallback a newer GPU's driver JIT-compiles.
//! A file with an arch-specific target (`// quietattn-arch: sm_90a`) is the exception: its
//! fatbin holds that one SASS and no PTX, and loads on compute capability 9.0 alone (see
//! [`Target::new`]).
//!
//! Why SASS and not PTX alone: the driver JIT-compiles PTX on a module's first load, which took
//! 11–17 s per attention module on an H200; a fatbin with matching SASS loads without a JIT.
//! Why `-compress-mode=size`: the cubins are highly repetitive (18 instantiations of one
//! template); size mode shrinks an attention module from ~4.5 MB to ~0.6 MB per two targets.
//!
//! Compiled fatbins are cached in `<target>/quietattn-kernels/`, keyed by a hash of the nvcc
//! version, the flags and the files the module's source includes (itself and every quoted
//! `#include`, transitively), so the release, test and clippy builds of one CI run (each with
//! its own `OUT_DIR`) compile each module once, and an edit recompiles only the modules that
//! include the edited file.
use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// GPU architectures shipped as SASS unless `QUIETATTN_CUDA_SASS` says otherwise: Turing,
/// Ampere (sm_80 datacenter, sm_86 consumer), Ada, Hopper, and Blackwell (sm_100 also serves
/// sm_103, sm_120 serves sm_121: a cubin runs on later minor revisions of its major).
pub const DEFAULT_SASS: &[u32] = &[75, 80, 86, 89, 90, 100, 110, 120];

/// What one kernel file is compiled to.
#[derive(Debug)]
pub struct Target {
    /// Virtual architectures the file allows (`compute_XY` numbers), ascending.
    pub virtual_archs: Vec<u32>,
    /// SASS architectures shipped for it: those of the shipped list at or above its oldest
    /// virtual architecture.
    pub sass: Vec<u32>,
    /// True for an arch-specific target (`sm_90a`): code that uses features of exactly that
    /// architecture (wgmma, TMA, `setmaxnreg`), which no other GPU runs, so it is the file's
    /// only target.
    pub arch_specific: bool,
}

impl Target {
    /// The target of a file allowing `archs` (`compute_80`, or one arch-specific `sm_90a` /
    /// `compute_90a`) when `shipped` is the SASS list.
    ///
    /// A generic file gets SASS for every shipped architecture at or above its oldest virtual
    /// one plus that one's PTX. An arch-specific file gets its one SASS when the shipped list
    /// names its architecture (`sm_90` or `sm_90a` both name 90), else nothing: see
    /// [`Target::skip_reason`]. It never ships PTX: `compute_90a` PTX can be compiled for no GPU
    /// but sm_90, where the SASS already runs.
    pub fn new(archs: &[String], shipped: &[u32]) -> Result<Self, String> {
        let parsed: Vec<(u32, bool)> = archs
            .iter()
            .map(|a| parse_arch(a))
            .collect::<Result<_, _>>()?;
        if let Some(&(n, _)) = parsed.iter().find(|(_, specific)| *specific) {
            if parsed.iter().any(|&p| p != (n, true)) {
                return Err(format!(
                    "{archs:?}: an arch-specific target (sm_{n}a) must be the file's only \
                     architecture: its code compiles for no other"
                ));
            }
            return Ok(Target {
                virtual_archs: vec![n],
                sass: shipped.iter().copied().filter(|&s| s == n).collect(),
                arch_specific: true,
            });
        }
        let mut v: Vec<u32> = parsed.into_iter().map(|(n, _)| n).collect();
        v.sort_unstable();
        v.dedup();
        let oldest = *v.first().ok_or("no virtual architecture")?;
        let sass = shipped.iter().copied().filter(|&s| s >= oldest).collect();
        Ok(Target {
            virtual_archs: v,
            sass,
            arch_specific: false,
        })
    }

    /// Why nothing is compiled for this target: an arch-specific file whose one architecture
    /// the SASS list leaves out (a generic file still ships its PTX then).
    pub fn skip_reason(&self) -> Option<String> {
        (self.arch_specific && self.sass.is_empty()).then(|| {
            format!(
                "not built: its only target, sm_{}a, is not in the SASS list \
                 (QUIETATTN_CUDA_SASS)",
                self.virtual_archs[0]
            )
        })
    }

    /// The virtual architecture of the PTX shipped in the fatbin (the oldest), or `None` for
    /// an arch-specific target, which ships none.
    pub fn ptx_arch(&self) -> Option<u32> {
        (!self.arch_specific).then(|| self.virtual_archs[0])
    }

    /// nvcc `-gencode` pairs: each SASS from the newest virtual architecture not above it, then
    /// the PTX; for an arch-specific target its one SASS from its own virtual architecture
    /// (`-gencode=arch=compute_90a,code=sm_90a`: an `a` feature needs the `a` on both sides).
    pub fn gencode(&self) -> Vec<String> {
        if self.arch_specific {
            return self
                .sass
                .iter()
                .map(|sm| format!("-gencode=arch=compute_{sm}a,code=sm_{sm}a"))
                .collect();
        }
        let mut args = Vec::new();
        let oldest = self.virtual_archs[0];
        for &sm in &self.sass {
            let v = self
                .virtual_archs
                .iter()
                .copied()
                .filter(|&v| v <= sm)
                .max()
                .unwrap_or(oldest);
            args.push(format!("-gencode=arch=compute_{v},code=sm_{sm}"));
        }
        args.push(format!(
            "-gencode=arch=compute_{oldest},code=compute_{oldest}"
        ));
        args
    }
}

/// `compute_80` / `sm_90a` → (80, false) / (90, true). Family-specific targets (`sm_100f`) are
/// refused rather than silently built as something else.
pub fn parse_arch(arch: &str) -> Result<(u32, bool), String> {
    let bad = || format!("bad architecture {arch:?} (compute_80, sm_80 or sm_90a)");
    let digits = arch
        .strip_prefix("compute_")
        .or_else(|| arch.strip_prefix("sm_"))
        .ok_or_else(bad)?;
    let (digits, specific) = match digits.strip_suffix('a') {
        Some(d) => (d, true),
        None => (digits, false),
    };
    let n = digits.parse().map_err(|_| bad())?;
    Ok((n, specific))
}

/// `compute_80` / `sm_90a` → 80 / 90: the architecture a SASS list entry names.
pub fn arch_number(arch: &str) -> Option<u32> {
    let digits = arch
        .strip_prefix("compute_")
        .or_else(|| arch.strip_prefix("sm_"))?;
    digits.trim_end_matches(['a', 'f']).parse().ok()
}

/// The SASS list: `QUIETATTN_CUDA_SASS` (e.g. `sm_90` or `80,90`) or [`DEFAULT_SASS`].
pub fn shipped_sass() -> Result<Vec<u32>, String> {
    let Ok(list) = env::var("QUIETATTN_CUDA_SASS") else {
        return Ok(DEFAULT_SASS.to_vec());
    };
    let mut v = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let n = arch_number(item)
            .or_else(|| item.parse().ok())
            .ok_or_else(|| format!("QUIETATTN_CUDA_SASS: bad architecture {item:?}"))?;
        v.push(n);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// One compiled module: where its fatbin is (inside `OUT_DIR`) and what it holds.
pub struct Built {
    pub stem: String,
    pub path: PathBuf,
    pub ptx_arch: Option<u32>,
    pub sass: Vec<u32>,
    pub arch_specific: bool,
}

/// The compiler and the flags every module shares, with the cache they key.
pub struct Compiler {
    nvcc: PathBuf,
    flags: Vec<String>,
    cache: PathBuf,
    /// Where quoted includes resolve when the including file's folder lacks them.
    include_root: PathBuf,
    /// Hash of the nvcc version and the flags (the include folder's path left out: it does not
    /// change the output, and leaving it out lets checkouts at other paths share a cache).
    key: u64,
}

impl Compiler {
    pub fn new(nvcc: &Path, root: &Path, out: &Path) -> Result<Self, String> {
        let version = run_text(nvcc, &["--version"])?;
        let help = run_text(nvcc, &["--help"])?;
        let mut flags: Vec<String> = ["--fatbin", "-O3", "-std=c++17"].map(String::from).to_vec();
        // nvcc before 12.8 has no size mode; it then compresses with its default scheme.
        if help.contains("compress-mode") {
            flags.push("-compress-mode=size".into());
        }
        if let Ok(extra) = env::var("QUIETATTN_NVCC_FLAGS") {
            flags.extend(extra.split_whitespace().map(String::from));
        }
        let mut h = Fnv::default();
        h.write(version.as_bytes());
        for f in &flags {
            h.write(f.as_bytes());
        }
        let include_root = root.join("kernels");
        let include_root = include_root.canonicalize().unwrap_or(include_root);
        flags.push("-I".into());
        flags.push(include_root.display().to_string());
        let cache = cache_dir(out);
        fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
        Ok(Compiler {
            nvcc: nvcc.to_path_buf(),
            flags,
            include_root,
            cache,
            key: h.0,
        })
    }

    /// Compiles (or takes from the cache) the fatbin of `source` and copies it into `out`.
    pub fn fatbin(
        &self,
        source: &Path,
        stem: &str,
        target: &Target,
        out: &Path,
    ) -> Result<Built, String> {
        let gencode = target.gencode();
        let mut h = Fnv(self.key);
        h.write(stem.as_bytes());
        for g in &gencode {
            h.write(g.as_bytes());
        }
        let own = source
            .canonicalize()
            .unwrap_or_else(|_| source.to_path_buf());
        for f in include_closure(source, &self.include_root)? {
            // Paths relative to the include root (the source itself by its stem, already in the
            // key): a generated unit lives in OUT_DIR, which differs between profiles.
            let name = if f == own {
                Path::new("<source>")
            } else {
                f.strip_prefix(&self.include_root).unwrap_or(&f)
            };
            h.write(name.to_string_lossy().as_bytes());
            h.write(&fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?);
        }
        let cached = self.cache.join(format!("{stem}-{:016x}.fatbin", h.0));
        if !cached.is_file() {
            let tmp = self
                .cache
                .join(format!("{stem}-{:016x}.{}.tmp", h.0, std::process::id()));
            let output = Command::new(&self.nvcc)
                .args(&self.flags)
                .args(&gencode)
                .arg("-o")
                .arg(&tmp)
                .arg(source)
                .output()
                .map_err(|e| format!("cannot run {}: {e}", self.nvcc.display()))?;
            if !output.status.success() {
                let _ = fs::remove_file(&tmp);
                return Err(format!(
                    "{} failed:\n{}{}",
                    source.display(),
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            // Rename is atomic: a parallel build of another profile sees all or nothing.
            fs::rename(&tmp, &cached).map_err(|e| format!("{}: {e}", cached.display()))?;
            prune(&self.cache, stem, "fatbin", 4);
        }
        // A copy inside OUT_DIR, so pruning the shared cache never breaks an older build.
        let path = out.join(format!("{stem}.fatbin"));
        fs::copy(&cached, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Built {
            stem: stem.to_string(),
            path,
            ptx_arch: target.ptx_arch(),
            sass: target.sass.clone(),
            arch_specific: target.arch_specific,
        })
    }
}

/// `<target dir>/quietattn-kernels`: the nearest ancestor of `OUT_DIR` that cargo marked with
/// `CACHEDIR.TAG` (the target directory), else `OUT_DIR` itself.
pub fn cache_dir(out: &Path) -> PathBuf {
    out.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map(|d| d.join("quietattn-kernels"))
        .unwrap_or_else(|| out.join("kernel-cache"))
}

/// Keeps the `keep` newest cached files `<stem>-<16 hex digits>.<ext>` in `cache`.
pub fn prune(cache: &Path, stem: &str, ext: &str, keep: usize) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    let prefix = format!("{stem}-");
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(ext)?.strip_suffix('.'))
                .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = fs::remove_file(path);
    }
}

/// `source` and every file it includes with `#include "…"`, transitively, each resolved
/// against the including file's folder, then `include_root` (nvcc's search order for quoted
/// includes with one `-I`). Includes inside `#if` blocks count whether or not they are taken:
/// a superset only costs a rebuild. An include found in neither place is left to nvcc (it
/// reports it); system includes (`<…>`) are covered by the nvcc version in the key.
pub fn include_closure(source: &Path, include_root: &Path) -> Result<BTreeSet<PathBuf>, String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![
        source
            .canonicalize()
            .unwrap_or_else(|_| source.to_path_buf()),
    ];
    while let Some(file) = stack.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let folder = file.parent().unwrap_or(include_root);
        for name in text.lines().filter_map(quoted_include) {
            let found = [folder.join(name), include_root.join(name)]
                .into_iter()
                .find(|p| p.is_file());
            if let Some(path) = found {
                stack.push(path.canonicalize().unwrap_or(path));
            }
        }
    }
    Ok(seen)
}

/// The name in a line `#include "name"` (spaces allowed around `#`), else `None`.
fn quoted_include(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let rest = rest
        .strip_prefix("include")?
        .trim_start()
        .strip_prefix('"')?;
    rest.split_once('"').map(|(name, _)| name)
}

fn run_text(program: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// FNV-1a, 64 bit: a stable hash for cache keys (std's hasher may change between releases).
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
}
