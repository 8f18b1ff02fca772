//! The kernels build.rs compiled from `kernels/**/*.cu`, embedded in the crate: one compressed
//! fatbin per module, holding SASS for every shipped GPU architecture at or above the module's
//! virtual architecture plus that architecture's PTX, which the driver JIT-compiles only on a GPU
//! none of the SASS serves (a newer major architecture).
//!
//! A module with an arch-specific target (its source says `// quietattn-arch: sm_90a`) holds
//! that one SASS and no PTX: arch-specific code (wgmma, TMA, `setmaxnreg`) runs on devices of
//! exactly that compute capability (9.0: H100, H200, GH200) and nowhere else, not even on a later
//! minor revision, and its PTX could be compiled for no other GPU. It is built only when the
//! SASS list (`QUIETATTN_CUDA_SASS`) names its architecture (`sm_90`); otherwise it is listed in
//! [`NOT_BUILT`] with that reason, and loading it is [`Error::Unsupported`] saying so.

use crate::error::{Error, Result};

/// One module's fatbin and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Fatbin {
    /// The module: its source's stem (`act_stats` for `kernels/act_stats.cu`; `attn_softmax` for
    /// the instantiation unit build.rs generates from the registry).
    pub module: &'static str,
    /// The virtual architecture of the embedded PTX (75 = `compute_75`): the oldest GPU it runs
    /// on. `None` for an arch-specific module, which ships no PTX.
    pub ptx_arch: Option<u32>,
    /// Architectures with SASS in the image (80 = `sm_80`), ascending.
    pub sass: &'static [u32],
    /// True when the SASS is arch-specific (`sm_90a` for 90): it runs only on devices of exactly
    /// that compute capability.
    pub arch_specific: bool,
    /// The fatbin, as `cuModuleLoadData` takes it.
    pub image: &'static [u8],
}

/// How a device of a given compute capability runs a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPath {
    /// SASS compiled for `sm_<n>` runs as is: no JIT on load.
    Sass(u32),
    /// Only the PTX fits: the driver JIT-compiles it on the first load (seconds per module;
    /// cached by the driver in `~/.nv/ComputeCache` afterwards).
    Jit,
}

impl Fatbin {
    /// How a device of compute capability `cc` (86 = 8.6) runs this module, or `None` when the
    /// device is older than the PTX. A cubin runs on GPUs of its own major architecture with the
    /// same or a later minor revision (sm_80 SASS on sm_86), never across majors; an
    /// arch-specific cubin (sm_90a) only on its own compute capability.
    ///
    /// ```
    /// use quietattn::kernels::{Fatbin, LoadPath};
    /// let f = Fatbin {
    ///     module: "m",
    ///     ptx_arch: Some(75),
    ///     sass: &[75, 80, 90, 120],
    ///     arch_specific: false,
    ///     image: &[],
    /// };
    /// assert_eq!(f.load_path(86), Some(LoadPath::Sass(80)));
    /// assert_eq!(f.load_path(121), Some(LoadPath::Sass(120)));
    /// assert_eq!(f.load_path(100), Some(LoadPath::Jit));
    /// assert_eq!(f.load_path(70), None);
    /// let hopper = Fatbin { ptx_arch: None, sass: &[90], arch_specific: true, ..f };
    /// assert_eq!(hopper.load_path(90), Some(LoadPath::Sass(90)));
    /// assert_eq!(hopper.load_path(100), None);
    /// ```
    pub fn load_path(&self, cc: u32) -> Option<LoadPath> {
        if self.arch_specific {
            return self.sass.contains(&cc).then_some(LoadPath::Sass(cc));
        }
        if let Some(&sm) = self
            .sass
            .iter()
            .filter(|&&s| s / 10 == cc / 10 && s <= cc)
            .max()
        {
            return Some(LoadPath::Sass(sm));
        }
        self.ptx_arch
            .is_some_and(|p| p <= cc)
            .then_some(LoadPath::Jit)
    }

    /// The SASS targets as nvcc and cuobjdump name them: `sm_80`, or `sm_90a` when arch-specific.
    pub fn sass_names(&self) -> Vec<String> {
        let suffix = if self.arch_specific { "a" } else { "" };
        self.sass
            .iter()
            .map(|s| format!("sm_{s}{suffix}"))
            .collect()
    }

    /// Why a device of compute capability `cc` cannot run this module, for the error that
    /// [`Fatbin::load_path`]'s `None` becomes.
    pub fn unsupported_reason(&self, cc: u32) -> String {
        let targets = self.sass_names().join(", ");
        match self.ptx_arch {
            _ if self.arch_specific => format!(
                "module {} is built for {targets} only (arch-specific code runs on that compute \
                 capability alone); the device is sm_{cc}",
                self.module
            ),
            Some(p) => format!(
                "module {} needs compute capability {}.{} or newer; the device is sm_{cc}",
                self.module,
                p / 10,
                p % 10
            ),
            None => format!(
                "module {} has SASS for {targets} and no PTX; the device is sm_{cc}",
                self.module
            ),
        }
    }
}

mod table {
    use super::Fatbin;
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

pub use table::{FATBINS, KERNELS_BUILT, MODULES, NOT_BUILT};

/// The fatbin of `module`, when the kernels were built.
pub fn fatbin(module: &str) -> Option<&'static Fatbin> {
    FATBINS.iter().find(|f| f.module == module)
}

/// The fatbin of `module`, or the error a load of it reports: [`Error::KernelsNotBuilt`]
/// without nvcc, [`Error::Unsupported`] for a module this SASS list left out ([`NOT_BUILT`]),
/// [`Error::UnknownKernel`] for a name that is no module.
pub fn image(module: &str) -> Result<&'static Fatbin> {
    if !KERNELS_BUILT {
        return Err(Error::KernelsNotBuilt);
    }
    if let Some(f) = fatbin(module) {
        return Ok(f);
    }
    match NOT_BUILT.iter().find(|(m, _)| *m == module) {
        Some((_, why)) => Err(Error::Unsupported(format!("module {module}: {why}"))),
        None => Err(Error::UnknownKernel(format!("module {module}"))),
    }
}

/// Bytes of kernel images embedded in this build.
pub fn embedded_bytes() -> usize {
    FATBINS.iter().map(|f| f.image.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_a_fatbin_when_built() {
        if !KERNELS_BUILT {
            crate::testing::skip(
                "every_module_has_a_fatbin_when_built",
                &"built without nvcc",
            );
            return;
        }
        for m in MODULES {
            if NOT_BUILT.iter().any(|(skipped, _)| skipped == m) {
                continue;
            }
            let f = fatbin(m).unwrap_or_else(|| panic!("module {m} has no fatbin"));
            assert!(!f.image.is_empty(), "{m}: empty image");
            // A fatbin starts with its magic number 0xBA55ED50 (little endian).
            assert_eq!(f.image[..4], [0x50, 0xed, 0x55, 0xba], "{m}: not a fatbin");
        }
    }

    #[test]
    fn the_gpus_people_run_load_every_module_without_a_jit() {
        if !KERNELS_BUILT || std::env::var_os("QUIETATTN_CUDA_SASS").is_some() {
            crate::testing::skip(
                "the_gpus_people_run_load_every_module_without_a_jit",
                &"built without nvcc, or with a narrowed SASS list",
            );
            return;
        }
        // T4, A100, A10/3090, L4/4090, H100/H200, B200, GB300, Thor, RTX 5090, DGX Spark
        for cc in [75, 80, 86, 89, 90, 100, 103, 110, 120, 121] {
            for f in FATBINS {
                if f.arch_specific && !f.sass.contains(&cc) {
                    continue; // sm_90a code on anything but 9.0: nothing could run it
                }
                if f.ptx_arch.is_some_and(|p| p > cc) {
                    continue; // e.g. a compute_80 module on a T4: the planner never picks it
                }
                assert!(
                    matches!(f.load_path(cc), Some(LoadPath::Sass(_))),
                    "{} would be JIT-compiled on sm_{cc}",
                    f.module
                );
            }
        }
    }

    #[test]
    fn load_paths_follow_binary_compatibility() {
        let f = Fatbin {
            module: "m",
            ptx_arch: Some(80),
            sass: &[80, 86, 90],
            arch_specific: false,
            image: &[],
        };
        assert_eq!(f.load_path(75), None);
        assert_eq!(f.load_path(80), Some(LoadPath::Sass(80)));
        assert_eq!(f.load_path(87), Some(LoadPath::Sass(86)));
        assert_eq!(f.load_path(89), Some(LoadPath::Sass(86)));
        assert_eq!(f.load_path(90), Some(LoadPath::Sass(90)));
        assert_eq!(f.load_path(100), Some(LoadPath::Jit));
        assert_eq!(f.sass_names(), ["sm_80", "sm_86", "sm_90"]);
    }

    #[test]
    fn arch_specific_sass_loads_on_its_own_compute_capability_only() {
        let f = Fatbin {
            module: "hopper",
            ptx_arch: None,
            sass: &[90],
            arch_specific: true,
            image: &[],
        };
        assert_eq!(f.load_path(90), Some(LoadPath::Sass(90)));
        for cc in [80, 86, 89, 100, 103, 120] {
            assert_eq!(f.load_path(cc), None, "sm_{cc}");
        }
        assert_eq!(f.sass_names(), ["sm_90a"]);
        let why = f.unsupported_reason(100);
        assert!(
            why.contains("sm_90a only") && why.contains("sm_100"),
            "{why}"
        );
    }

    #[test]
    fn modules_left_out_of_the_build_say_why() {
        for (m, why) in NOT_BUILT {
            assert!(fatbin(m).is_none(), "{m} is both built and not built");
            match image(m) {
                Err(Error::Unsupported(msg)) => assert!(msg.contains(why), "{msg}"),
                other => panic!("{m}: expected Unsupported, got {other:?}"),
            }
        }
        if KERNELS_BUILT {
            assert!(matches!(
                image("no_such_module"),
                Err(Error::UnknownKernel(_))
            ));
        }
    }
}
