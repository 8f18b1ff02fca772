//! Reference activation statistics (docs/contract.md §5, standalone kernel): every element visited
//! once in f64, exactly as the definitions read.

use crate::error::{Result, shape_err};
use crate::stats::{ActivationStats, log2_bin};
use crate::tensor::TensorView;

/// Per-channel moments, log2 histogram, zero and non-finite counts and per-token absmax of a
/// rank-2 `[tokens, channels]` view (any strides).
///
/// Only finite elements enter the channel moments, the histogram, `zeros` and the token absmax;
/// non-finite ones are counted in `tensor.non_finite` only. Sums are f64; absmax is exact (the
/// largest |x| of an f32/f16/bf16 tensor is an f32).
pub fn activation_stats(x: &TensorView<'_>) -> Result<ActivationStats> {
    if x.rank() != 2 {
        return Err(shape_err!(
            "activation statistics need a [tokens, channels] tensor, got shape {:?}",
            x.shape
        ));
    }
    let (tokens, channels) = (x.shape[0], x.shape[1]);
    let mut out = ActivationStats::zeroed(tokens, channels);
    for t in 0..tokens {
        for c in 0..channels {
            let v = x.at(&[t, c]);
            if !v.is_finite() {
                out.tensor.non_finite += 1;
                continue;
            }
            let a = v.abs();
            let ch = &mut out.channels[c];
            ch.count += 1;
            ch.sum += v;
            ch.sum_sq += v * v;
            ch.sum_3rd += v * v * v;
            ch.sum_4th += v * v * v * v;
            ch.absmax = ch.absmax.max(a as f32);
            out.token_absmax[t] = out.token_absmax[t].max(a as f32);
            if v == 0.0 {
                out.tensor.zeros += 1;
            } else {
                out.tensor.log2_hist[log2_bin(v)] += 1;
            }
        }
    }
    Ok(out)
}
