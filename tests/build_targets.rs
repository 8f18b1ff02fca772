//! The build script's pure parts (build/header.rs, build/fatbin.rs), compiled here as ordinary
//! modules: the header lines a kernel source declares and the nvcc `-gencode` arguments its
//! target becomes, arch-specific `sm_90a` included. No nvcc is run.

#[allow(dead_code)]
#[path = "../build/fatbin.rs"]
mod fatbin;
#[allow(dead_code)]
#[path = "../build/header.rs"]
mod header;

use fatbin::Target;

fn archs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const CI_SASS: &[u32] = &[75, 80, 90];

#[test]
fn an_sm_90a_module_is_compiled_for_sm_90a_alone() {
    for spelling in ["sm_90a", "compute_90a"] {
        let t = Target::new(&archs(&[spelling]), CI_SASS).unwrap();
        assert!(t.arch_specific);
        assert_eq!(t.gencode(), ["-gencode=arch=compute_90a,code=sm_90a"]);
        assert_eq!(t.sass, [90]);
        assert_eq!(
            t.ptx_arch(),
            None,
            "compute_90a PTX runs nowhere the SASS does not"
        );
        assert_eq!(t.skip_reason(), None);
    }
    // The whole default list: still one target.
    let t = Target::new(&archs(&["sm_90a"]), fatbin::DEFAULT_SASS).unwrap();
    assert_eq!(t.gencode(), ["-gencode=arch=compute_90a,code=sm_90a"]);
}

#[test]
fn an_sm_90a_module_is_skipped_when_the_sass_list_leaves_out_90() {
    let t = Target::new(&archs(&["sm_90a"]), &[80, 86]).unwrap();
    assert!(t.gencode().is_empty());
    let why = t.skip_reason().expect("a reason");
    assert!(
        why.contains("sm_90a") && why.contains("QUIETATTN_CUDA_SASS"),
        "{why}"
    );
}

#[test]
fn generic_modules_keep_their_sass_list_and_ptx() {
    let t = Target::new(&archs(&["compute_80"]), CI_SASS).unwrap();
    assert!(!t.arch_specific);
    assert_eq!(
        t.gencode(),
        [
            "-gencode=arch=compute_80,code=sm_80",
            "-gencode=arch=compute_80,code=sm_90",
            "-gencode=arch=compute_80,code=compute_80",
        ]
    );
    assert_eq!(t.ptx_arch(), Some(80));
    // Two virtual architectures: each SASS from the newest one not above it.
    let t = Target::new(&archs(&["compute_90", "compute_75"]), CI_SASS).unwrap();
    assert_eq!(
        t.gencode(),
        [
            "-gencode=arch=compute_75,code=sm_75",
            "-gencode=arch=compute_75,code=sm_80",
            "-gencode=arch=compute_90,code=sm_90",
            "-gencode=arch=compute_75,code=compute_75",
        ]
    );
    // A SASS list below the module's architecture still ships its PTX.
    let t = Target::new(&archs(&["compute_80"]), &[75]).unwrap();
    assert_eq!(t.gencode(), ["-gencode=arch=compute_80,code=compute_80"]);
    assert_eq!(t.skip_reason(), None);
}

#[test]
fn bad_architecture_lists_are_refused() {
    for list in [
        &["sm_90a", "compute_80"][..],
        &["sm_90a", "sm_100a"],
        &["sm_100f"],
        &["compute_8x"],
        &["ampere"],
    ] {
        assert!(Target::new(&archs(list), CI_SASS).is_err(), "{list:?}");
    }
    // One target written twice is still one target.
    let t = Target::new(&archs(&["sm_90a", "compute_90a"]), CI_SASS).unwrap();
    assert_eq!(t.gencode(), ["-gencode=arch=compute_90a,code=sm_90a"]);
}

#[test]
fn header_lines_pick_targets_and_the_emulator_opt_out() {
    let h = header::parse("// quietattn-arch: sm_90a\n// quietattn-emulate: no\n#include \"x\"\n")
        .unwrap();
    assert_eq!(h.archs, Some(archs(&["sm_90a"])));
    assert!(!h.emulate);

    let h = header::parse("// quietattn-arch: compute_75, compute_90\nint x;\n").unwrap();
    assert_eq!(h.archs, Some(archs(&["compute_75", "compute_90"])));
    assert!(h.emulate, "emulated unless it says otherwise");

    let h = header::parse("// a comment\n").unwrap();
    assert_eq!(h.archs, None);
    assert!(h.emulate);

    assert!(header::parse("// quietattn-emulate: never\n").is_err());
    assert!(header::parse("// quietattn-arch:\n").is_err());
    assert!(header::parse("// quietattn-arch: compute_80\n// quietattn-arch: sm_90a\n").is_err());
}

/// The probe module's own header, as the build reads it.
#[test]
fn the_hopper_probe_is_an_sm_90a_module_left_out_of_the_emulator() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kernels/hopper/hopper_probe.cu"
    ))
    .unwrap();
    let h = header::parse(&text).unwrap();
    assert!(!h.emulate);
    let t = Target::new(&h.archs.unwrap(), CI_SASS).unwrap();
    assert_eq!(t.gencode(), ["-gencode=arch=compute_90a,code=sm_90a"]);
}
