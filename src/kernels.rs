//! The kernels build.rs compiled from `kernels/**/*.cu`, embedded in the crate: one compressed
//! fatbin per module, holding SASS for every shipped GPU architecture at or above the module's
//! virtual architecture plus that architecture's PTX, which the driver JIT-compiles only on a GPU
//! none of the SASS serves (a newer major architecture).

/// One module's fatbin and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Fatbin {
    /// The kernel source's stem (`attn_softmax` for `kernels/attn_softmax.cu`).
    pub module: &'static str,
    /// The virtual architecture of the embedded PTX (75 = `compute_75`): the oldest GPU it runs on.
    pub ptx_arch: u32,
    /// Architectures with SASS in the image (80 = `sm_80`), ascending.
    pub sass: &'static [u32],
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
    /// same or a later minor revision (sm_80 SASS on sm_86), never across majors.
    ///
    /// ```
    /// use quietattn::kernels::{Fatbin, LoadPath};
    /// let f = Fatbin { module: "m", ptx_arch: 75, sass: &[75, 80, 90, 120], image: &[] };
    /// assert_eq!(f.load_path(86), Some(LoadPath::Sass(80)));
    /// assert_eq!(f.load_path(121), Some(LoadPath::Sass(120)));
    /// assert_eq!(f.load_path(100), Some(LoadPath::Jit));
    /// assert_eq!(f.load_path(70), None);
    /// ```
    pub fn load_path(&self, cc: u32) -> Option<LoadPath> {
        if let Some(&sm) = self
            .sass
            .iter()
            .filter(|&&s| s / 10 == cc / 10 && s <= cc)
            .max()
        {
            return Some(LoadPath::Sass(sm));
        }
        (self.ptx_arch <= cc).then_some(LoadPath::Jit)
    }
}

mod table {
    use super::Fatbin;
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

pub use table::{FATBINS, KERNELS_BUILT, MODULES};

/// The fatbin of `module`, when the kernels were built.
pub fn fatbin(module: &str) -> Option<&'static Fatbin> {
    FATBINS.iter().find(|f| f.module == module)
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
                if f.ptx_arch > cc {
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
            ptx_arch: 80,
            sass: &[80, 86, 90],
            image: &[],
        };
        assert_eq!(f.load_path(75), None);
        assert_eq!(f.load_path(80), Some(LoadPath::Sass(80)));
        assert_eq!(f.load_path(87), Some(LoadPath::Sass(86)));
        assert_eq!(f.load_path(89), Some(LoadPath::Sass(86)));
        assert_eq!(f.load_path(90), Some(LoadPath::Sass(90)));
        assert_eq!(f.load_path(100), Some(LoadPath::Jit));
    }
}
