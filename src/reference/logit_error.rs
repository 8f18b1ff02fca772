//! The part of the o tolerance of docs/contract.md §6 that scales with the logits: how far the
//! kernels' f32 logits may sit from the exact ones, and how far that moves o.
//!
//! Every kernel computes `s = scale·(q·k)` as an f32 dot product. Each of its `d` fused
//! multiply-adds rounds the running sum by up to 2⁻²⁴ of that sum, which is at most
//! `A = Σ|q_i·k_i|`; the `d` roundings add like a random walk. The scale multiplication, the
//! rounded `scale·log2(e)` constant and the softcap's `tanh` add a few roundings of `|s|`. So a
//! logit carries an absolute error of about
//!
//! `E = 2⁻²⁴ · (√d · |scale| · A + 4·|s|)`
//!
//! which grows with the logits: ~1e-6 at `|s|` ~ 10, ~5e-3 at `|s|` ~ 1e4. No f32 kernel can do
//! better: those are the logits it has. (The kernels' agreement with an f64 reference fed their
//! own f32 logits, at the plain f32 tolerance, is tested in `tests/extreme_logits.rs`.)
//!
//! A logit error moves the weights and o with them. To first order `|δo_c| ≤ Σ_j E_j·|∂o_c/∂s_j|`:
//! - softmax, off-by-one, sink: `∂o_c/∂s_j = p_j·(v_jc − o_c)` (the sink term has no logit error);
//! - clipped: the unclamped weight `(ζ − γ)·p_j + γ` moves by at most
//!   `(ζ − γ)·p_j·(E_j + Σ_k p_k·E_k)` (`p` the softmax weights), and the clamp passes on only
//!   the part of that move inside [0, 1];
//! - softpick: `N_j = e^{s_j} − 1` moves by `e^{s_j}·E_j`, `Σ|N|` by at most `Σ_k e^{s_k}·E_k`;
//! - sigmoid: `∂w_j/∂s_j = w_j·(1 − w_j)`.
//!
//! The term vanishes where one key dominates a row (its weight saturates at 1, the others at 0)
//! and peaks where two logits lie within a few units of each other: at `|s|` ~ 1e4 logits are
//! thousands apart, so only some random inputs have such a pair, which is why the extreme-logit
//! cases failed a fixed `2e-5·(1 + |o|)` for some seeds and not others.

use crate::variant::Normaliser;

use super::normaliser::{RowParams, RowWeights, row_weights, softpick_numerator};

/// Unit roundoff of f32.
const F32_UNIT: f64 = 1.0 / 16_777_216.0;

/// The f32 rounding error `E` of the logit `s = scale·(q·k)` (after the softcap, if any).
pub fn logit_error(scale: f64, q: &[f64], k: &[f64], logit: f64) -> f64 {
    let a: f64 = q.iter().zip(k).map(|(x, y)| (x * y).abs()).sum();
    let d = q.len() as f64;
    F32_UNIT * (d.sqrt() * scale.abs() * a + 4.0 * logit.abs())
}

/// One row's visible keys: their logits, the logits' errors and their value rows.
pub struct RowLogits<'a> {
    /// The visible logits, after scale and softcap.
    pub logits: &'a [f64],
    /// [`logit_error`] of each.
    pub errors: &'a [f64],
    /// The value row of each visible key.
    pub values: &'a [&'a [f64]],
}

/// The bound on `|δo_c|` for every channel of `o` (the ungated output of the row whose weights
/// are `row`), from logit errors of at most `errors`. Keys whose error or weight is not finite
/// (non-finite inputs) add nothing: their rows' references are not finite either.
pub fn o_error(
    norm: &Normaliser,
    params: RowParams,
    keys: &RowLogits<'_>,
    row: &RowWeights,
    o: &[f64],
) -> Vec<f64> {
    let mut bound = vec![0.0; o.len()];
    let mut add = |scale: f64, v: &[f64], centre: Option<&[f64]>| {
        if !scale.is_finite() || scale == 0.0 {
            return;
        }
        for (c, (b, &x)) in bound.iter_mut().zip(v).enumerate() {
            let dev = match centre {
                Some(o) => (x - o[c]).abs(),
                None => x.abs(),
            };
            let term = scale * dev;
            if term.is_finite() {
                *b += term;
            }
        }
    };
    let pairs = keys.errors.iter().zip(keys.values);
    match *norm {
        Normaliser::Softmax | Normaliser::OffByOne | Normaliser::Sink => {
            for ((&e, v), &p) in pairs.zip(&row.weights) {
                add(e * p, v, Some(o));
            }
        }
        Normaliser::Clipped { gamma, zeta } => {
            let p = row_weights(&Normaliser::Softmax, keys.logits, params).weights;
            let mean: f64 = p
                .iter()
                .zip(keys.errors)
                .map(|(p, e)| p * e)
                .filter(|x| x.is_finite())
                .sum();
            let (gamma, spread) = (f64::from(gamma), f64::from(zeta) - f64::from(gamma));
            for ((&e, v), &p) in pairs.zip(&p) {
                // How far the unclamped weight `u` may move, and how much of that survives the
                // clamp: nothing for a weight clipped to 0 or 1 by more than the move.
                let reach = spread * p * (e + mean);
                let u = spread * p + gamma;
                let moved = if u < 0.0 {
                    (u + reach).max(0.0)
                } else if u > 1.0 {
                    (reach - (u - 1.0)).max(0.0)
                } else {
                    reach
                };
                add(moved, v, None);
            }
        }
        Normaliser::Softpick => {
            let m = keys.logits.iter().copied().fold(0.0f64, f64::max);
            let shift = (-m).exp();
            let denom: f64 = keys
                .logits
                .iter()
                .map(|&s| softpick_numerator(s, m, shift).abs())
                .sum::<f64>()
                + crate::variant::SOFTPICK_EPS * shift;
            // e^{s_j - m}: how fast N_j (in shifted units) moves with s_j.
            let slope: Vec<f64> = keys.logits.iter().map(|&s| (s - m).exp()).collect();
            let moved: f64 = slope
                .iter()
                .zip(keys.errors)
                .map(|(g, e)| g * e)
                .filter(|x| x.is_finite())
                .sum();
            if denom > 0.0 {
                for (((&e, v), &g), &w) in pairs.zip(&slope).zip(&row.weights) {
                    let own = if w > 0.0 { g * e } else { 0.0 };
                    add((own + w * moved) / denom, v, None);
                }
            }
        }
        Normaliser::Sigmoid { .. } => {
            for ((&e, v), &w) in pairs.zip(&row.weights) {
                add(e * w * (1.0 - w), v, None);
            }
        }
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RowParams = RowParams {
        sink: 0.0,
        bias: 0.0,
    };

    /// o of two keys with values 0 and 1 under softmax: the logistic of the logit difference.
    fn two_key_o(s0: f64, s1: f64) -> f64 {
        let r = row_weights(&Normaliser::Softmax, &[s0, s1], P);
        r.weights[1]
    }

    #[test]
    fn the_softmax_bound_is_the_first_order_move_of_o() {
        let (s0, s1, e) = (1e4, 1e4 + 0.5, 5e-3);
        let v: [&[f64]; 2] = [&[0.0], &[1.0]];
        let row = row_weights(&Normaliser::Softmax, &[s0, s1], P);
        let o = [two_key_o(s0, s1)];
        let keys = RowLogits {
            logits: &[s0, s1],
            errors: &[e, e],
            values: &v,
        };
        let bound = o_error(&Normaliser::Softmax, P, &keys, &row, &o)[0];
        // The worst move: the two logits pushed apart by 2e.
        let moved = (two_key_o(s0 - e, s1 + e) - o[0]).abs();
        assert!((bound - moved).abs() < 1e-2 * moved, "{bound} vs {moved}");
        // One key far ahead: the weights saturate and the logit errors move nothing.
        let far = row_weights(&Normaliser::Softmax, &[s0, s0 + 1e3], P);
        let keys = RowLogits {
            logits: &[s0, s0 + 1e3],
            ..keys
        };
        assert_eq!(
            o_error(&Normaliser::Softmax, P, &keys, &far, &[1.0])[0],
            0.0
        );
    }

    #[test]
    fn clipped_weights_held_at_zero_by_more_than_the_move_do_not_move() {
        let norm = Normaliser::Clipped {
            gamma: -0.5,
            zeta: 1.0,
        };
        let v: [&[f64]; 3] = [&[1.0], &[2.0], &[4.0]];
        // Softmax weights ~(0.62, 0.38, 8e-10): unclamped (0.43, 0.07, -0.5); the third is 0.
        let logits = [0.5, 0.0, -20.0];
        let row = row_weights(&norm, &logits, P);
        assert_eq!(row.weights[2], 0.0);
        let keys = RowLogits {
            logits: &logits,
            errors: &[1e-3; 3],
            values: &v,
        };
        let bound = o_error(&norm, P, &keys, &row, &[0.0])[0];
        let p = row_weights(&Normaliser::Softmax, &logits, P).weights;
        let mean = 1e-3 * (p[0] + p[1] + p[2]);
        let want = 1.5 * (p[0] * (1e-3 + mean) * 1.0 + p[1] * (1e-3 + mean) * 2.0);
        assert!((bound - want).abs() < 1e-15, "{bound} vs {want}");
    }

    #[test]
    fn the_logit_error_scales_with_the_logits() {
        let q = [2.0; 64];
        let k = [1.5; 64];
        let small = logit_error(0.125, &q, &k, 24.0);
        let large = logit_error(1e3, &q, &k, 1.92e5);
        assert!((small - F32_UNIT * (8.0 * 0.125 * 192.0 + 96.0)).abs() < 1e-18);
        assert!((large / small - 8000.0).abs() < 1e-9, "{}", large / small);
    }
}
