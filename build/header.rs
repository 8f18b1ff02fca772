//! What a kernel source says about its own build, in comment lines anywhere in the file (by
//! convention its first lines):
//! - `// quietattn-arch: compute_75[,compute_90]`: the virtual architectures it compiles for
//!   (default `QUIETATTN_CUDA_ARCH`), or `// quietattn-arch: sm_90a`: one arch-specific target,
//!   for code (wgmma, TMA, `setmaxnreg`) that exists only there (see fatbin.rs);
//! - `// quietattn-emulate: no`: left out of the emulator build, for a module whose inline PTX
//!   has no emulated twin yet (see emulator.rs); `yes` is the default.

const ARCH: &str = "// quietattn-arch:";
const EMULATE: &str = "// quietattn-emulate:";

/// A kernel source's header lines.
#[derive(Debug, PartialEq)]
pub struct Header {
    /// The architectures of its `quietattn-arch` line, as written; `None` without one.
    pub archs: Option<Vec<String>>,
    /// False when the file says `// quietattn-emulate: no`.
    pub emulate: bool,
}

/// The header of the kernel source `text`; an error names a line no build could honour.
pub fn parse(text: &str) -> Result<Header, String> {
    let mut header = Header {
        archs: None,
        emulate: true,
    };
    for line in text.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix(ARCH) {
            if header.archs.is_some() {
                return Err(format!("two `{ARCH}` lines"));
            }
            let archs: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if archs.is_empty() {
                return Err(format!("`{line}` names no architecture"));
            }
            header.archs = Some(archs);
        } else if let Some(value) = line.strip_prefix(EMULATE) {
            header.emulate = match value.trim() {
                "yes" => true,
                "no" => false,
                other => return Err(format!("`{EMULATE}` takes `yes` or `no`, not {other:?}")),
            };
        }
    }
    Ok(header)
}
