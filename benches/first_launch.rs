//! What a fresh process pays before its first attention result: per module, the driver's module
//! load (SASS as is, or a PTX JIT where no SASS fits the GPU), and per normaliser, the first call
//! against a second, warm one. Also the bytes of kernel images embedded in the crate.
//!
//! `CUDA_CACHE_DISABLE=1` is set before the driver starts, so a JIT cannot hide behind the
//! driver's on-disk cache from an earlier run (which made a second run look fast before the
//! crate shipped SASS). Target: < 100 ms per module. Without a GPU it prints `SKIP` and exits 0.

use std::time::Instant;

use quietattn::cuda::CudaDevice;
use quietattn::{AttentionInputs, AttentionOptions, DType, Device, Normaliser, Tensor, kernels};

const REPEATS: usize = 3;

fn main() {
    // SAFETY: the first statement of a single-threaded main; nothing reads the environment yet.
    unsafe { std::env::set_var("CUDA_CACHE_DISABLE", "1") };
    println!(
        "kernel images embedded: {} modules, {} bytes",
        kernels::FATBINS.len(),
        kernels::embedded_bytes()
    );
    if let Err(e) = CudaDevice::new(0) {
        println!("SKIP first_launch benchmark: {e}");
        return;
    }
    if let Err(e) = module_loads().and_then(|()| first_calls()) {
        println!("first_launch benchmark failed: {e}");
        std::process::exit(1);
    }
}

/// Every module the device can run loaded into a fresh device, `REPEATS` times; the median load
/// time. Modules for another architecture (an sm_90a module on anything but 9.0, a compute_80
/// one on a T4) are left out: nothing there would load them.
fn module_loads() -> quietattn::Result<()> {
    let (major, minor) = CudaDevice::new(0)?.compute_capability();
    let runnable: Vec<&'static str> = kernels::FATBINS
        .iter()
        .filter(|f| f.load_path(major * 10 + minor).is_some())
        .map(|f| f.module)
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); runnable.len()];
    let mut loads = Vec::new();
    for _ in 0..REPEATS {
        let gpu = CudaDevice::new(0)?;
        loads = gpu.preload(runnable.iter().copied())?;
        for (t, l) in times.iter_mut().zip(&loads) {
            t.push(l.seconds);
        }
    }
    println!("\nmodule load on a fresh device (median of {REPEATS}):");
    println!(
        "{:<18} {:>10} {:>12} {:>10}",
        "module", "bytes", "path", "load ms"
    );
    for (l, t) in loads.iter().zip(&mut times) {
        let path = match l.path {
            Some(kernels::LoadPath::Sass(sm)) => format!("sm_{sm} SASS"),
            Some(kernels::LoadPath::Jit) => "PTX JIT".into(),
            None => "unsupported".into(),
        };
        println!(
            "{:<18} {:>10} {:>12} {:>10.2}",
            l.module,
            l.image_bytes,
            path,
            median(t) * 1e3
        );
    }
    Ok(())
}

/// Per normaliser on a fresh device: the first call (module load + launch + copies of a tiny
/// problem) and the second call of the same problem.
fn first_calls() -> quietattn::Result<()> {
    println!("\nfirst vs second call on a fresh device, 1 x 64 tokens x 4 heads x d64, f16:");
    println!(
        "{:<12} {:>14} {:>15}",
        "normaliser", "first call ms", "second call ms"
    );
    let q = Tensor::zeros(DType::F16, &[1, 64, 4, 64])?;
    let k = Tensor::zeros(DType::F16, &[1, 64, 4, 64])?;
    let v = Tensor::zeros(DType::F16, &[1, 64, 4, 64])?;
    let sinks = [0.0f32; 4];
    for normaliser in Normaliser::all_defaults() {
        let device = Device::cuda(0)?;
        let mut inputs = AttentionInputs::new(q.view(), k.view(), v.view());
        inputs.sinks = Some(&sinks);
        let options = AttentionOptions {
            normaliser,
            ..AttentionOptions::default()
        };
        let t0 = Instant::now();
        quietattn::attention(&device, &inputs, &options)?;
        let first = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        quietattn::attention(&device, &inputs, &options)?;
        let second = t1.elapsed().as_secs_f64();
        println!(
            "{:<12} {:>14.2} {:>15.2}",
            normaliser.name(),
            first * 1e3,
            second * 1e3
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
