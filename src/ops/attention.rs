//! Fused attention (placeholder dispatch until the kernel lands).
use crate::device::Device;
use crate::error::{Error, Result};
use crate::problem::AttentionInputs;
use crate::stats::OutlierStats;
use crate::tensor::Tensor;
use crate::variant::AttentionOptions;

/// The result of [`attention`].
#[derive(Clone, Debug)]
pub struct AttentionOutput {
    /// `[b, sq, h, d]` (or `[total_q, h, d]`), dtype of q.
    pub o: Tensor,
    /// f32 `[b, h, sq]` (or `[h, total_q]`).
    pub lse: Tensor,
    /// The statistics when requested.
    pub stats: Option<OutlierStats>,
}

/// Attention on `device`.
pub fn attention(
    device: &Device,
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
) -> Result<AttentionOutput> {
    match device {
        Device::Reference => {
            crate::reference::attention(inputs, options)?.into_output(options.stats)
        }
        _ => Err(Error::Unsupported(format!(
            "attention kernels are not available yet on the {} device",
            device.name()
        ))),
    }
}
