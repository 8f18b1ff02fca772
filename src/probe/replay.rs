//! `--variant`: the same weights replayed under another normaliser. The model was trained with
//! softmax, so this says how far its output moves, not how a model trained that way behaves.

use serde::Serialize;

use crate::probe::matrix::Matrix;
use crate::probe::trace::Trace;

/// How far a replay's output moved from the trained (softmax) run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Movement {
    /// Encoders: `‖h' − h‖ / ‖h‖` of the last hidden state, over all tokens.
    pub relative_change: Option<f64>,
    /// Encoders: mean over tokens of the cosine similarity of `h'` and `h`.
    pub mean_cosine: Option<f64>,
    /// Causal models: KL(p_softmax ‖ p_replay) of the next-token distribution at the last
    /// position, in nats.
    pub next_token_kl: Option<f64>,
    /// Causal models: whether the most likely next token stayed the same.
    pub same_top_token: Option<bool>,
}

/// Compares a replay with the trained run.
pub fn movement(trained: &Trace, replay: &Trace) -> Movement {
    match (&trained.logits, &replay.logits) {
        (Some(a), Some(b)) => {
            let (kl, same) = last_row_kl(a, b);
            Movement {
                relative_change: None,
                mean_cosine: None,
                next_token_kl: Some(kl),
                same_top_token: Some(same),
            }
        }
        _ => {
            let (a, b) = (trained.last_hidden(), replay.last_hidden());
            let pair = a.zip(b);
            Movement {
                relative_change: pair.map(|(a, b)| relative_change(a, b)),
                mean_cosine: pair.map(|(a, b)| mean_cosine(a, b)),
                next_token_kl: None,
                same_top_token: None,
            }
        }
    }
}

/// `‖b − a‖ / ‖a‖` over all values.
pub fn relative_change(a: &Matrix, b: &Matrix) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (x, y) in a.data.iter().zip(&b.data) {
        diff += (f64::from(*y) - f64::from(*x)).powi(2);
        norm += f64::from(*x).powi(2);
    }
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// Mean over rows of `cos(a_t, b_t)`.
pub fn mean_cosine(a: &Matrix, b: &Matrix) -> f64 {
    let rows = a.rows.min(b.rows);
    let total: f64 = (0..rows)
        .map(|t| {
            let (x, y) = (a.row(t), b.row(t));
            let dot: f64 = x
                .iter()
                .zip(y)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum();
            let nx = x.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
            let ny = y.iter().map(|q| f64::from(*q).powi(2)).sum::<f64>().sqrt();
            dot / (nx * ny).max(f64::MIN_POSITIVE)
        })
        .sum();
    total / rows.max(1) as f64
}

/// log-softmax of one row of logits, in f64.
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let lse = m + row
        .iter()
        .map(|&x| (f64::from(x) - m).exp())
        .sum::<f64>()
        .ln();
    row.iter().map(|&x| f64::from(x) - lse).collect()
}

/// KL(softmax(a) ‖ softmax(b)) of the last rows, and whether their arg-max agrees.
fn last_row_kl(a: &Matrix, b: &Matrix) -> (f64, bool) {
    let (ra, rb) = (a.row(a.rows - 1), b.row(b.rows - 1));
    let (la, lb) = (log_softmax(ra), log_softmax(rb));
    let kl = la.iter().zip(&lb).map(|(p, q)| p.exp() * (p - q)).sum();
    (kl, argmax(&la) == argmax(&lb))
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 { (i, x) } else { best }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_runs_do_not_move() {
        let a = Matrix::new(2, 2, vec![1.0, 2.0, -3.0, 0.5]).unwrap();
        assert_eq!(relative_change(&a, &a), 0.0);
        assert!((mean_cosine(&a, &a) - 1.0).abs() < 1e-12);
        let b = Matrix::new(2, 2, vec![2.0, 4.0, 3.0, -0.5]).unwrap();
        // Row 0 doubled (cos 1), row 1 negated (cos −1).
        assert!(mean_cosine(&a, &b).abs() < 1e-12);
    }

    #[test]
    fn kl_of_two_known_distributions() {
        // softmax([0, ln 3]) = (1/4, 3/4); softmax([0, 0]) = (1/2, 1/2).
        let a = Matrix::new(1, 2, vec![0.0, 3f32.ln()]).unwrap();
        let b = Matrix::new(1, 2, vec![0.0, 0.0]).unwrap();
        let (kl, same) = last_row_kl(&a, &b);
        let want = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
        // The arg-max moved from token 1 to token 0 (the first on a tie).
        assert!(!same);
    }
}
