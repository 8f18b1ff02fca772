//! Timing pieces the GPU benchmarks share: the same-run device-to-device copy every bandwidth
//! number is reported against, and the best-of-batches rule.

use std::time::{Duration, Instant};

use cudarc::driver::result;
use quietattn::cuda::CudaDevice;

/// Wall time of `iters` device-to-device copies of `bytes` bytes from `src` to `dst`.
///
/// Both addresses must be allocations of `dev`'s context holding at least `bytes` bytes that
/// outlive the call.
pub fn time_dtod(dev: &CudaDevice, dst: u64, src: u64, bytes: usize, iters: u64) -> Duration {
    dev.context().bind_to_thread().unwrap();
    let stream = dev.stream().cu_stream();
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: the caller guarantees both ranges are live allocations of this context.
        unsafe { result::memcpy_dtod_async(dst, src, bytes, stream) }.unwrap();
    }
    dev.synchronize("copy bench").unwrap();
    start.elapsed()
}

/// Seconds per operation: the best of five batches of `batch` after a warm-up of `warm_up`
/// (the minimum, because other work on the device only ever adds time).
pub fn per_op(warm_up: u64, batch: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    f(warm_up);
    (0..5)
        .map(|_| f(batch).as_secs_f64() / batch as f64)
        .fold(f64::INFINITY, f64::min)
}
