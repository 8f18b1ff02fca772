//! What the emulator's `launch` refuses before running anything: unknown modules and kernels,
//! parameter blocks of the wrong size, impossible geometry, more threads than the kernel's
//! `__launch_bounds__`.
mod common;

use common::{args, emulator};
use quietattn::Error;
use quietattn::emulator::Emulator;
use quietattn::launch::{KernelRef, LaunchGeometry};

fn geometry(block: u32, smem: u32) -> LaunchGeometry {
    LaunchGeometry {
        grid: [1, 1, 1],
        block: [block, 1, 1],
        dynamic_smem: smem,
    }
}

fn kernel(module: &'static str, name: &str) -> KernelRef {
    KernelRef {
        module,
        name: name.into(),
    }
}

#[test]
fn modules_list_their_kernels() {
    let names = Emulator::kernels("gemm_tile").unwrap();
    assert_eq!(names, vec!["qa_test_gemm_f16", "qa_test_gemm_bf16"]);
    assert!(matches!(
        Emulator::kernels("no_such_module"),
        Err(Error::UnknownKernel(_))
    ));
}

#[test]
fn bad_launches_are_errors() {
    let dev = emulator();
    let exec = dev.executor().unwrap();
    let p = args([0; 4], [0; 4]);
    let shfl = kernel("emu_units", "qa_test_vote");
    let r = exec.launch(&kernel("nope", "qa_test_vote"), &p, &geometry(32, 0));
    assert!(matches!(r, Err(Error::UnknownKernel(_))), "{r:?}");
    let r = exec.launch(&kernel("emu_units", "nope"), &p, &geometry(32, 0));
    assert!(matches!(r, Err(Error::UnknownKernel(_))), "{r:?}");
    let msg = common::emulator_error(exec.launch(&shfl, &p[..60], &geometry(32, 0)));
    assert!(
        msg.contains("60 bytes of parameters, the kernel takes 64"),
        "{msg}"
    );
    let msg = common::emulator_error(exec.launch(&shfl, &p, &geometry(1025, 0)));
    assert!(msg.contains("1025 threads"), "{msg}");
    let msg = common::emulator_error(exec.launch(&shfl, &p, &geometry(32, 300 * 1024)));
    assert!(msg.contains("dynamic shared memory"), "{msg}");
    let gemm = kernel("gemm_tile", "qa_test_gemm_bf16");
    let msg = common::emulator_error(exec.launch(&gemm, &p, &geometry(256, 8192)));
    assert!(msg.contains("256 threads per block (limit 128)"), "{msg}");
}
