//! The test GEMM tile (kernels/testing/gemm_tile.cuh): launch and exact reference.
use super::{args, download, upload};
use quietattn::Device;
use quietattn::launch::{KernelRef, LaunchGeometry};

/// Small integers: every product and partial sum is exact in f32 and in both 16-bit formats.
fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13 + i / 5) % 9) as f32 - 4.0)
        .collect()
}

/// f32 values rounded to bf16 (or f16) bit patterns, as the tensor-core kernels read them.
pub fn to_bits(x: &[f32], bf16: bool) -> Vec<u16> {
    x.iter()
        .map(|&v| {
            if bf16 {
                half::bf16::from_f32(v).to_bits()
            } else {
                half::f16::from_f32(v).to_bits()
            }
        })
        .collect()
}

/// Runs `kernel` (a GEMM tile of kernels/testing) on `C = A * B`; returns C.
pub fn run_gemm(
    dev: &Device,
    module: &'static str,
    kernel: &str,
    (m, n, k): (usize, usize, usize),
    bf16: bool,
) -> quietattn::Result<Vec<f32>> {
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let ab = upload(dev, &to_bits(&a, bf16));
    let bb = upload(dev, &to_bits(&b, bf16));
    let cb = upload(dev, &vec![f32::NAN; m * n]);
    let p = args(
        [ab.addr(), bb.addr(), cb.addr(), 0],
        [m as i64, n as i64, k as i64, 0],
    );
    let exec = dev.executor().expect("executing device");
    exec.launch(
        &KernelRef {
            module,
            name: kernel.into(),
        },
        &p,
        &LaunchGeometry {
            grid: [n.div_ceil(64) as u32, m.div_ceil(64) as u32, 1],
            block: [128, 1, 1],
            dynamic_smem: 2 * 64 * 32 * 2,
        },
    )?;
    Ok(download(dev, &cb, m * n))
}

/// The exact product of the test data.
pub fn reference((m, n, k): (usize, usize, usize)) -> Vec<f32> {
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
        }
    }
    c
}
