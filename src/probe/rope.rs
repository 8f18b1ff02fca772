//! Rotary position embedding as GGUF Llama checkpoints need it: llama.cpp's converter permuted
//! the rows of `attn_q` / `attn_k` inside each head so that RoPE rotates adjacent pairs
//! `(2i, 2i + 1)` by `pos · θ^(−2i/d)`; with the file's rows kept, that is the rotation to apply
//! (attention maps equal Hugging Face's half-rotation on the un-permuted rows).

use crate::probe::matrix::Matrix;

/// Rotates every head of `x [tokens, heads · d]` in place; token `t` is at position `t`.
pub fn rope_adjacent_pairs(x: &mut Matrix, head_dim: usize, theta: f64) {
    let heads = x.cols / head_dim;
    for t in 0..x.rows {
        let row = x.row_mut(t);
        for i in 0..head_dim / 2 {
            let freq = theta.powf(-2.0 * i as f64 / head_dim as f64);
            let (sin, cos) = (t as f64 * freq).sin_cos();
            for h in 0..heads {
                let base = h * head_dim + 2 * i;
                let (a, b) = (f64::from(row[base]), f64::from(row[base + 1]));
                row[base] = (a * cos - b * sin) as f32;
                row[base + 1] = (a * sin + b * cos) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity_and_rotations_keep_norms() {
        let mut x = Matrix::new(2, 4, vec![1.0, 2.0, 3.0, 4.0, 1.0, 0.0, 0.0, 1.0]).unwrap();
        rope_adjacent_pairs(&mut x, 4, 10000.0);
        assert_eq!(x.row(0), &[1.0, 2.0, 3.0, 4.0]);
        // Token 1: pair 0 turns by 1 rad, pair 1 by 10000^(−1/2) = 0.01 rad.
        let r = x.row(1);
        assert!((r[0] - 1f32.cos()).abs() < 1e-6 && (r[1] - 1f32.sin()).abs() < 1e-6);
        assert!((r[2] + 0.01f32.sin()).abs() < 1e-6 && (r[3] - 0.01f32.cos()).abs() < 1e-6);
    }
}
