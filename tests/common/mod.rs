//! Helpers shared by the emulator tests: devices to run on, argument packing, buffers.
#![allow(dead_code)]

pub mod gemm;
pub mod raw_attention;

use quietattn::launch::{Buffer, KernelRef, LaunchGeometry};
use quietattn::{Device, Result};

/// The emulator, plus CUDA device 0 when one is present. Without a GPU this prints
/// `SKIP <test>: ...` for the GPU half, and fails when `QUIETATTN_REQUIRE_GPU=1`.
pub fn devices(test: &str) -> Vec<Device> {
    let mut devices = vec![Device::emulator().expect("emulator feature is on")];
    devices.extend(quietattn::testing::cuda_or_skip(&format!("{test} on GPU")));
    devices
}

/// The emulator alone (tests of emulator-only behaviour: error reports, poisoning).
pub fn emulator() -> Device {
    Device::emulator().expect("emulator feature is on")
}

/// `QaTestArgs` (kernels/testing/testing.cuh): four addresses and four integers.
pub fn args(buf: [u64; 4], n: [i64; 4]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    for b in buf {
        v.extend_from_slice(&b.to_le_bytes());
    }
    for x in n {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Launches `module::name` with a 1-D grid and block.
pub fn launch(
    dev: &Device,
    module: &'static str,
    name: &str,
    params: &[u8],
    grid: u32,
    block: u32,
    smem: u32,
) -> Result<()> {
    let exec = dev.executor().expect("an executing device");
    exec.launch(
        &KernelRef {
            module,
            name: name.to_string(),
        },
        params,
        &LaunchGeometry {
            grid: [grid, 1, 1],
            block: [block, 1, 1],
            dynamic_smem: smem,
        },
    )
}

/// Uploads plain-old-data values.
pub fn upload<T: bytemuck::Pod>(dev: &Device, data: &[T]) -> Buffer {
    let exec = dev.executor().expect("an executing device");
    exec.upload(bytemuck::cast_slice(data)).expect("upload")
}

/// Downloads `n` values.
pub fn download<T: bytemuck::Pod + Default + Clone>(
    dev: &Device,
    buf: &Buffer,
    n: usize,
) -> Vec<T> {
    let exec = dev.executor().expect("an executing device");
    let mut out = vec![T::default(); n];
    exec.download(buf, bytemuck::cast_slice_mut(&mut out))
        .expect("download");
    out
}

/// The message of an emulator error, or a panic when the launch did not fail that way.
pub fn emulator_error(r: Result<()>) -> String {
    match r {
        Err(quietattn::Error::Emulator(msg)) => msg,
        other => panic!("expected Error::Emulator, got {other:?}"),
    }
}
