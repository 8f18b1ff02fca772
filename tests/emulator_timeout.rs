//! A kernel whose thread spins on another thread's store cannot run on the cooperative
//! scheduler: the launch must come back as an error after the timeout, never hang. (Its own
//! test binary: the abandoned launch leaves the emulator unusable for the process.)
mod common;

use std::time::{Duration, Instant};

use common::{args, upload};
use quietattn::emulator::Emulator;
use quietattn::launch::{Executor, KernelRef, LaunchGeometry};

#[test]
fn spinning_kernel_times_out_with_an_error() {
    let emu = Emulator::with_timeout(Duration::from_secs(1));
    let dev = common::emulator();
    let flag = upload(&dev, &[0u32]);
    let geometry = LaunchGeometry {
        grid: [1, 1, 1],
        block: [32, 1, 1],
        dynamic_smem: 0,
    };
    let kernel = KernelRef {
        module: "emu_units",
        name: "qa_test_spin".into(),
    };
    let t0 = Instant::now();
    let r = emu.launch(&kernel, &args([flag.addr(), 0, 0, 0], [0; 4]), &geometry);
    let msg = common::emulator_error(r);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(
        msg.contains("qa_test_spin") && msg.contains("no progress"),
        "{msg}"
    );
    assert!(msg.contains("thread (0,0,0)"), "{msg}");
    // Later launches refuse instead of racing the abandoned one.
    let again = emu.launch(&kernel, &args([flag.addr(), 0, 0, 0], [0; 4]), &geometry);
    assert!(common::emulator_error(again).contains("unusable"));
}
