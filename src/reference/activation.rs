//! Standalone activation statistics in f64 (placeholder; replaced by its owner's version).
use crate::error::{Error, Result};
use crate::stats::ActivationStats;
use crate::tensor::TensorView;

/// Per-channel moments, log2 histogram, non-finite count and per-token absmax of `x`.
pub fn activation_stats(x: &TensorView<'_>) -> Result<ActivationStats> {
    let _ = x;
    Err(Error::Unsupported(
        "reference activation statistics are not implemented yet".into(),
    ))
}
