//! The PTX that build.rs compiled from `kernels/*.cu`, embedded in the crate.

mod table {
    include!(concat!(env!("OUT_DIR"), "/kernels.rs"));
}

pub use table::{MODULES, PTX, PTX_BUILT};

/// Parses `compute_XY` into `XY`.
fn arch_number(arch: &str) -> Option<u32> {
    arch.strip_prefix("compute_")?
        .trim_end_matches(['a', 'f'])
        .parse()
        .ok()
}

/// The PTX of `module` best suited to a device of compute capability `major.minor`: the highest
/// virtual architecture not above the device's. `None` when there is none (or no PTX was built).
pub fn ptx_for(module: &str, major: u32, minor: u32) -> Option<(&'static str, &'static str)> {
    let cc = major * 10 + minor;
    PTX.iter()
        .filter(|(m, arch, _)| *m == module && arch_number(arch).is_some_and(|a| a <= cc))
        .max_by_key(|(_, arch, _)| arch_number(arch))
        .map(|(_, arch, ptx)| (*arch, *ptx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_numbers_parse() {
        assert_eq!(arch_number("compute_80"), Some(80));
        assert_eq!(arch_number("compute_90a"), Some(90));
        assert_eq!(arch_number("sm_80"), None);
    }

    #[test]
    fn every_module_has_ptx_when_built() {
        if !PTX_BUILT {
            crate::testing::skip("every_module_has_ptx_when_built", &"built without nvcc");
            return;
        }
        for m in MODULES {
            assert!(PTX.iter().any(|(p, _, _)| p == m), "module {m} has no PTX");
        }
        // An sm_90 device can run everything we build for compute_75..compute_90.
        for m in MODULES {
            assert!(ptx_for(m, 9, 0).is_some(), "no PTX of {m} loads on sm_90");
        }
    }
}
