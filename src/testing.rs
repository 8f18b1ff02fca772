//! Support for tests that need hardware, shared by this crate's tests and by users who run the
//! suite on their own GPUs.
//!
//! A GPU test that finds no GPU must say so visibly: [`skip`] writes `SKIP <test>: <why>` to the
//! process's stderr directly, past the test harness's output capture, so the line appears in a
//! plain `cargo test`. With `QUIETATTN_REQUIRE_GPU=1` a missing GPU is a failure instead.

use std::io::Write as _;

use crate::device::Device;

/// True when `QUIETATTN_REQUIRE_GPU=1`: a GPU test without a GPU must fail, not skip.
pub fn gpu_required() -> bool {
    std::env::var("QUIETATTN_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// Prints `SKIP <test>: <why>` where `cargo test` shows it (uncaptured stderr).
pub fn skip(test: &str, why: &dyn std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {why}");
}

/// CUDA device 0, or `None` after [`skip`] when there is none.
///
/// # Panics
/// When there is no usable GPU and [`gpu_required`] — that is the point of the variable.
///
/// ```
/// if let Some(gpu) = quietattn::testing::cuda_or_skip("doc_example") {
///     println!("running on {}", gpu.name());
/// }
/// ```
pub fn cuda_or_skip(test: &str) -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(
                !gpu_required(),
                "{test}: QUIETATTN_REQUIRE_GPU=1 but no usable GPU: {e}"
            );
            skip(test, &e);
            None
        }
    }
}
