//! The sm_90a probe module (kernels/hopper/hopper_probe.cu): an arch-specific fatbin loaded
//! through the same module table as every kernel. On an H100/H200 it runs and its output proves
//! the `setmaxnreg` before the store executed; on any other GPU loading it is a clear
//! `Unsupported`; without a GPU the GPU half prints SKIP. On the emulator it is refused: the
//! module opted out of the emulator build.
mod common;

use common::{args, download, launch, upload};
use quietattn::{Error, kernels};

const MODULE: &str = "hopper_probe";
const KERNEL: &str = "qa_hopper_probe";
const THREADS: u32 = 128;

#[test]
fn the_emulator_refuses_the_hopper_probe_with_a_reason() {
    let dev = common::emulator();
    let out = upload(&dev, &[0u32; THREADS as usize]);
    let p = args([out.addr(), 0, 0, 0], [0; 4]);
    for result in [
        launch(&dev, MODULE, KERNEL, &p, 1, THREADS, 0),
        quietattn::emulator::Emulator::kernels(MODULE).map(drop),
    ] {
        match result {
            Err(Error::Unsupported(msg)) => {
                assert!(
                    msg.contains(MODULE) && msg.contains("not emulated"),
                    "{msg}"
                );
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
    // A name that is no module at all stays an unknown kernel, not "not emulated".
    assert!(matches!(
        launch(&dev, "no_such_module", KERNEL, &p, 1, THREADS, 0),
        Err(Error::UnknownKernel(_))
    ));
}

#[test]
fn the_hopper_probe_is_an_arch_specific_fatbin_when_built() {
    if !kernels::KERNELS_BUILT {
        quietattn::testing::skip(
            "the_hopper_probe_is_an_arch_specific_fatbin_when_built",
            &"built without nvcc",
        );
        return;
    }
    match kernels::image(MODULE) {
        Ok(f) => {
            assert!(f.arch_specific);
            assert_eq!(f.sass, [90]);
            assert_eq!(f.ptx_arch, None);
            assert_eq!(f.sass_names(), ["sm_90a"]);
        }
        // A SASS list without sm_90 leaves the module out, and says so.
        Err(Error::Unsupported(msg)) => {
            assert!(
                msg.contains("sm_90a") && msg.contains("QUIETATTN_CUDA_SASS"),
                "{msg}"
            )
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn the_hopper_probe_runs_on_sm_90_and_is_refused_elsewhere() {
    let test = "the_hopper_probe_runs_on_sm_90_and_is_refused_elsewhere";
    let Some(gpu) = quietattn::testing::cuda_or_skip(test) else {
        return;
    };
    let out = upload(&gpu, &[0u32; THREADS as usize]);
    let p = args([out.addr(), 0, 0, 0], [0; 4]);
    let result = launch(&gpu, MODULE, KERNEL, &p, 1, THREADS, 0);
    let cc = gpu
        .executor()
        .expect("a CUDA executor")
        .compute_capability();
    let built = kernels::fatbin(MODULE).is_some();
    if cc == (9, 0) && built {
        result.unwrap();
        let got: Vec<u32> = download(&gpu, &out, THREADS as usize);
        let want: Vec<u32> = (0..THREADS).map(|t| 90_000 + t).collect();
        assert_eq!(got, want);
    } else {
        match result {
            Err(Error::Unsupported(msg)) => assert!(msg.contains("sm_90a"), "{msg}"),
            other => panic!("sm_{}{}: expected Unsupported, got {other:?}", cc.0, cc.1),
        }
    }
}
