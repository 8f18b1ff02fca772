//! Standalone activation statistics of a `[tokens, channels]` tensor (SPEC §5).
use crate::device::Device;
use crate::error::Result;
use crate::stats::ActivationStats;
use crate::tensor::TensorView;

/// Per-channel moments, log2 histogram, non-finite count and per-token absmax of `x`.
pub fn activation_stats(device: &Device, x: &TensorView<'_>) -> Result<ActivationStats> {
    let _ = device;
    crate::reference::activation_stats(x)
}
