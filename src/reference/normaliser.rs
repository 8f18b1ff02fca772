//! docs/contract.md §3 in f64: the weights and the `lse` of one row, given its visible logits.
//!
//! Every normaliser is written in the max-shifted form so that logits of any magnitude
//! (±1e4 and beyond) give finite weights; non-finite logits (from non-finite inputs) flow
//! through the arithmetic and may produce NaN weights, which is what the math says.

use crate::variant::{Normaliser, SOFTPICK_EPS};

/// The weights of one row over its visible keys and the row's `lse`.
#[derive(Clone, Debug, PartialEq)]
pub struct RowWeights {
    /// One weight per visible logit, in the order given.
    pub weights: Vec<f64>,
    /// The row's log-denominator as docs/contract.md §3 defines it for the normaliser.
    pub lse: f64,
}

/// Per-row parameters a normaliser needs besides the logits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowParams {
    /// The virtual sink logit: 0 for `off_by_one`, `σ_h` for `sink` (unused otherwise).
    pub sink: f64,
    /// The sigmoid bias `b` already resolved for the sequence (unused otherwise).
    pub bias: f64,
}

/// Weights and `lse` of one row under `norm`. `logits` are the visible logits after scale and
/// softcap; an empty slice is the fully masked row of docs/contract.md §1 (no weights, its `lse`
/// rule).
pub fn row_weights(norm: &Normaliser, logits: &[f64], params: RowParams) -> RowWeights {
    if logits.is_empty() {
        return RowWeights {
            weights: Vec::new(),
            lse: masked_lse(norm, params),
        };
    }
    match *norm {
        Normaliser::Softmax => softmax(logits),
        Normaliser::OffByOne | Normaliser::Sink => with_sink(logits, params.sink),
        Normaliser::Clipped { gamma, zeta } => {
            let (gamma, zeta) = (f64::from(gamma), f64::from(zeta));
            let mut row = softmax(logits);
            for w in &mut row.weights {
                *w = ((zeta - gamma) * *w + gamma).clamp(0.0, 1.0);
            }
            row
        }
        Normaliser::Softpick => softpick(logits),
        Normaliser::Sigmoid { .. } => RowWeights {
            weights: logits.iter().map(|&s| sigmoid(s + params.bias)).collect(),
            lse: 0.0,
        },
    }
}

/// The `lse` of a row without visible keys: only the sink term is left in the denominator
/// (`off_by_one`, `sink`), sigmoid writes 0, the others have an empty sum.
pub fn masked_lse(norm: &Normaliser, params: RowParams) -> f64 {
    match norm {
        Normaliser::OffByOne | Normaliser::Sink => params.sink,
        Normaliser::Sigmoid { .. } => 0.0,
        _ => f64::NEG_INFINITY,
    }
}

/// The logistic function, split by sign so neither branch overflows.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

fn max_of(logits: &[f64]) -> f64 {
    logits.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `p = e^{s-m} / Σ e^{s-m}`, `lse = m + ln Σ e^{s-m}`.
fn softmax(logits: &[f64]) -> RowWeights {
    let m = max_of(logits);
    // All logits -inf (only reachable from non-finite inputs): shift by 0 like the kernels do.
    let m = if m == f64::NEG_INFINITY { 0.0 } else { m };
    let e: Vec<f64> = logits.iter().map(|&s| (s - m).exp()).collect();
    let l: f64 = e.iter().sum();
    RowWeights {
        weights: e.iter().map(|&x| x / l).collect(),
        lse: m + l.ln(),
    }
}

/// `p = e^s / (e^σ + Σ e^s)` with the shift `m = max(σ, max s)`; `lse` includes the sink term.
fn with_sink(logits: &[f64], sink: f64) -> RowWeights {
    let m = max_of(logits).max(sink);
    let e: Vec<f64> = logits.iter().map(|&s| (s - m).exp()).collect();
    let l = (sink - m).exp() + e.iter().sum::<f64>();
    RowWeights {
        weights: e.iter().map(|&x| x / l).collect(),
        lse: m + l.ln(),
    }
}

/// Softpick's numerator `N = e^{-m}·(e^s − 1)` shifted by `m ≥ 0` (`shift = e^{-m}`). Near 0,
/// e^s − 1 cancels: expm1 keeps full relative precision there; elsewhere the shifted difference
/// loses at most a factor e/(e−1). Shared with the split-KV partials (`reference::split`).
pub(crate) fn softpick_numerator(s: f64, m: f64, shift: f64) -> f64 {
    if s.abs() < 1.0 {
        s.exp_m1() * shift
    } else {
        (s - m).exp() - shift
    }
}

/// softpick: `N_j = e^{s_j} - 1`, `p = relu(N) / (Σ|N| + ε)`, `lse = ln Σ|N|`, all computed
/// as `N·e^{-m}` with `m = max(0, max s)` so that large logits do not overflow.
///
/// ε is in unscaled units as docs/contract.md §3 defines it, so in shifted units it is `ε·e^{-m}`.
/// (The paper's reference code adds its ε to the *shifted* sum instead; the two differ only when
/// `Σ|N|` is within a few ε of 0. The contract's form is the one implemented, here and in the
/// kernels.)
fn softpick(logits: &[f64]) -> RowWeights {
    let m = max_of(logits).max(0.0);
    let shift = (-m).exp();
    let scaled: Vec<f64> = logits
        .iter()
        .map(|&s| softpick_numerator(s, m, shift))
        .collect();
    let l: f64 = scaled.iter().map(|n| n.abs()).sum();
    let denom = l + SOFTPICK_EPS * shift;
    RowWeights {
        weights: scaled.iter().map(|&n| n.max(0.0) / denom).collect(),
        lse: if l == 0.0 {
            f64::NEG_INFINITY
        } else {
            m + l.ln()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RowParams = RowParams {
        sink: 0.0,
        bias: 0.0,
    };

    #[test]
    fn softmax_two_keys_is_logistic_of_the_difference() {
        let r = row_weights(&Normaliser::Softmax, &[1.5, -0.5], P);
        let p0 = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((r.weights[0] - p0).abs() < 1e-15);
        assert!((r.weights[1] - (1.0 - p0)).abs() < 1e-15);
        assert!((r.lse - (1.5f64.exp() + (-0.5f64).exp()).ln()).abs() < 1e-15);
    }

    #[test]
    fn huge_logits_stay_finite_for_every_normaliser() {
        let params = RowParams {
            sink: 3.0,
            bias: -2.0,
        };
        for norm in Normaliser::all_defaults() {
            for logits in [[1e4, -1e4], [-1e4, -1e4], [1e4, 1e4]] {
                let r = row_weights(&norm, &logits, params);
                assert!(
                    r.weights
                        .iter()
                        .all(|w| w.is_finite() && (0.0..=1.0).contains(w))
                );
                assert!(!r.lse.is_nan(), "{norm:?} {logits:?}");
            }
        }
    }

    #[test]
    fn softpick_exact_zero_logits_have_no_mass() {
        let r = row_weights(&Normaliser::Softpick, &[0.0, 0.0], P);
        assert_eq!(r.weights, vec![0.0, 0.0]);
        assert_eq!(r.lse, f64::NEG_INFINITY);
    }

    #[test]
    fn softpick_matches_the_unshifted_formula_for_moderate_logits() {
        let s = [2.0f64, -1.0, 0.3, 1e-9];
        let n: Vec<f64> = s.iter().map(|x| x.exp() - 1.0).collect();
        let l: f64 = n.iter().map(|x| x.abs()).sum();
        let r = row_weights(&Normaliser::Softpick, &s, P);
        for (w, ni) in r.weights.iter().zip(&n) {
            assert!((w - ni.max(0.0) / (l + SOFTPICK_EPS)).abs() < 1e-13);
        }
        assert!((r.lse - l.ln()).abs() < 1e-13);
    }

    #[test]
    fn masked_rows_follow_spec_lse() {
        let p = RowParams {
            sink: -1.25,
            bias: 0.0,
        };
        assert_eq!(row_weights(&Normaliser::Sink, &[], p).lse, -1.25);
        assert_eq!(row_weights(&Normaliser::OffByOne, &[], P).lse, 0.0);
        assert_eq!(
            row_weights(&Normaliser::Softmax, &[], P).lse,
            f64::NEG_INFINITY
        );
        assert_eq!(
            row_weights(&Normaliser::Sigmoid { bias: None }, &[], P).lse,
            0.0
        );
    }

    #[test]
    fn sigmoid_is_symmetric_and_saturates_without_nan() {
        for x in [-800.0, -3.0, 0.0, 0.7, 800.0] {
            assert!((sigmoid(x) + sigmoid(-x) - 1.0).abs() < 1e-15);
        }
        assert_eq!(sigmoid(0.0), 0.5);
    }
}
