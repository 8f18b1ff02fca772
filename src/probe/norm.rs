//! Normalisation layers and pointwise activations of the two model families.

use crate::error::{Error, Result};
use crate::probe::matrix::Matrix;

/// LayerNorm over each row (BERT): `(x − μ)/√(σ² + ε)·γ + β`, statistics in f64.
pub fn layer_norm(x: &mut Matrix, gamma: &[f32], beta: &[f32], eps: f64) -> Result<()> {
    check_len("LayerNorm", x.cols, gamma.len())?;
    check_len("LayerNorm bias", x.cols, beta.len())?;
    for r in 0..x.rows {
        let row = x.row_mut(r);
        let n = row.len() as f64;
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = ((f64::from(*v) - mean) * inv) as f32 * g + b;
        }
    }
    Ok(())
}

/// RMSNorm over each row (Llama): `x/√(mean x² + ε)·γ`, statistics in f64.
pub fn rms_norm(x: &mut Matrix, gamma: &[f32], eps: f64) -> Result<()> {
    check_len("RMSNorm", x.cols, gamma.len())?;
    for r in 0..x.rows {
        let row = x.row_mut(r);
        let ms = row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / row.len() as f64;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, g) in row.iter_mut().zip(gamma) {
            *v = (f64::from(*v) * inv) as f32 * g;
        }
    }
    Ok(())
}

fn check_len(what: &str, want: usize, got: usize) -> Result<()> {
    if want == got {
        Ok(())
    } else {
        Err(Error::Shape(format!(
            "{what} has {got} weights for rows of {want}"
        )))
    }
}

/// GELU with the exact error function (BERT's `hidden_act = "gelu"`).
pub fn gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))) as f32
}

/// SiLU `x·sigmoid(x)` (the gate of Llama's SwiGLU).
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_centres_and_scales() {
        // Row [1, 2, 3, 6]: mean 3, variance (4 + 1 + 0 + 9)/4 = 3.5.
        let mut x = Matrix::new(1, 4, vec![1.0, 2.0, 3.0, 6.0]).unwrap();
        layer_norm(&mut x, &[1.0, 1.0, 2.0, 1.0], &[0.0, 0.5, 0.0, 0.0], 0.0).unwrap();
        let s = 3.5f64.sqrt();
        let want = [-2.0 / s, -1.0 / s + 0.5, 0.0, 3.0 / s];
        for (a, b) in x.data.iter().zip(want) {
            assert!((f64::from(*a) - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn rms_norm_divides_by_the_root_mean_square() {
        // Row [3, 4]: mean square 12.5.
        let mut x = Matrix::new(1, 2, vec![3.0, 4.0]).unwrap();
        rms_norm(&mut x, &[1.0, 2.0], 0.0).unwrap();
        let r = 12.5f64.sqrt();
        assert!((f64::from(x.data[0]) - 3.0 / r).abs() < 1e-6);
        assert!((f64::from(x.data[1]) - 8.0 / r).abs() < 1e-6);
        assert!(rms_norm(&mut x, &[1.0], 0.0).is_err());
    }

    #[test]
    fn activations_at_known_points() {
        assert_eq!(gelu(0.0), 0.0);
        // Φ(1) = 0.841344746...
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_25).abs() < 1e-6);
        assert!((silu(2.0) - 2.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-7);
    }
}
