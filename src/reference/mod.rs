//! The literal f64 CPU reference of SPEC §1–5 (placeholder).
use crate::error::Result;
use crate::stats::ActivationStats;
use crate::tensor::TensorView;

/// Activation statistics, literally.
pub fn activation_stats(x: &TensorView<'_>) -> Result<ActivationStats> {
    let _ = x;
    todo!()
}
