//! The registry (`src/registry/table.rs`) is what build.rs instantiated: every (family,
//! normaliser) module exists, and on the emulator each holds exactly the kernels the host names
//! from the registry (every dtype × head dim × statistics, decode's combines beside its chunks).
//! With nvcc, each module also has its fatbin.

use quietattn::registry::{FAMILIES, NORMALISERS};

#[test]
fn every_family_is_built_for_every_normaliser() {
    for family in FAMILIES {
        for norm in NORMALISERS {
            let module = family.module(norm.abi).unwrap();
            assert_eq!(module, format!("{}_{}", family.module_prefix, norm.stem));
            assert!(quietattn::kernels::MODULES.contains(&module));
            if quietattn::kernels::KERNELS_BUILT {
                let built = quietattn::kernels::fatbin(module).is_some()
                    || quietattn::kernels::NOT_BUILT
                        .iter()
                        .any(|(m, _)| *m == module);
                assert!(built, "{module}: no fatbin and no reason");
            }
        }
    }
}

#[cfg(feature = "emulator")]
#[test]
fn each_module_holds_exactly_the_kernels_the_host_names() {
    use quietattn::emulator::Emulator;
    use std::collections::BTreeSet;
    for family in FAMILIES {
        for norm in NORMALISERS {
            let module = family.module(norm.abi).unwrap();
            if !family.emulate {
                assert!(Emulator::kernels(module).is_err(), "{module}");
                continue;
            }
            let mut want = BTreeSet::new();
            for dtype in family.dtypes {
                for &d in family.dims {
                    for stats in [false, true] {
                        let name = family.kernel_name(norm.abi, dtype.abi, d, stats).unwrap();
                        if family.folder == "decode" {
                            want.insert(format!("{name}_combine"));
                        }
                        want.insert(name);
                    }
                }
            }
            let got: BTreeSet<String> = Emulator::kernels(module).unwrap().into_iter().collect();
            assert_eq!(got, want, "{module}");
        }
    }
}

#[test]
fn unknown_normalisers_and_dtypes_are_errors_not_panics() {
    let tc = quietattn::registry::family("tensor_core");
    assert!(tc.module(NORMALISERS.len() as u32).is_err());
    assert!(tc.kernel_name(0, 7, 128, false).is_err());
    assert!(quietattn::registry::normaliser(99).is_err());
}
