//! Statistics of one layer's hidden state `[tokens, hidden]`: the activation-statistics op on
//! the probe's device, and the massive activations (Sun et al. 2024) located by token and channel.

use serde::Serialize;

use crate::device::Device;
use crate::error::Result;
use crate::probe::matrix::Matrix;
use crate::stats::report::{ActivationReport, MASSIVE_ABS, MASSIVE_RATIO};
use crate::tensor::{DataRef, TensorView};

/// One massive activation: `|x| ≥ 100` and `≥ 1000 ×` the tensor's median `|x|`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MassiveActivation {
    /// Token position.
    pub token: usize,
    /// Hidden channel.
    pub channel: usize,
    /// The value.
    pub value: f32,
}

/// What the probe reports of one hidden state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HiddenProbe {
    /// The statistics op's derived report (per-channel and whole-tensor kurtosis, inf-norm,
    /// outlier channels by the three rules, the largest token inf-norms).
    pub report: ActivationReport,
    /// Massive activations, largest |x| first.
    pub massive: Vec<MassiveActivation>,
    /// The op's log2 histogram of |x| (bin `b` holds `2^(b−24) ≤ |x| < 2^(b−23)`).
    pub log2_hist: Vec<u64>,
}

/// Most massive activations listed per layer.
pub const MASSIVE_LISTED: usize = 16;

/// Runs the activation-statistics op on `x` and locates its massive activations.
pub fn hidden_probe(device: &Device, x: &Matrix) -> Result<HiddenProbe> {
    let view = TensorView::contiguous(DataRef::F32(&x.data), &[x.rows, x.cols])?;
    let raw = crate::activation_stats(device, &view)?;
    let report = ActivationReport::new(&raw);
    let massive = report
        .tensor
        .median_abs
        .map_or_else(Vec::new, |median| massive_activations(x, median));
    Ok(HiddenProbe {
        report,
        massive,
        log2_hist: raw.tensor.log2_hist.to_vec(),
    })
}

/// Elements with `|x| ≥ 100` and `≥ 1000 × median`, largest first, at most [`MASSIVE_LISTED`].
pub fn massive_activations(x: &Matrix, median_abs: f64) -> Vec<MassiveActivation> {
    let bar = MASSIVE_ABS.max(MASSIVE_RATIO * median_abs);
    let mut found: Vec<MassiveActivation> = x
        .data
        .iter()
        .enumerate()
        .filter(|(_, v)| f64::from(v.abs()) >= bar)
        .map(|(i, &value)| MassiveActivation {
            token: i / x.cols,
            channel: i % x.cols,
            value,
        })
        .collect();
    found.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
    found.truncate(MASSIVE_LISTED);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn massive_needs_both_the_absolute_and_the_relative_bar() {
        // The bar is max(100, 1000 × median): with median 0.1 it is 100 (99 stays out).
        let x = Matrix::new(2, 3, vec![0.1, -150.0, 0.2, 2000.0, 0.1, 99.0]).unwrap();
        let found = massive_activations(&x, 0.1);
        let at: Vec<(usize, usize)> = found.iter().map(|m| (m.token, m.channel)).collect();
        assert_eq!(at, vec![(1, 0), (0, 1)]);
        // A median of 1 puts the bar at 1000: only 2000 is left.
        assert_eq!(massive_activations(&x, 1.0).len(), 1);
    }
}
