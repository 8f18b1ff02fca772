//! The one layout difference between a llama-family GGUF and the Hugging Face checkpoint it was
//! converted from: the rows of `attn_q` and `attn_k`.
//!
//! llama.cpp's converter reorders the rows of each head of Q and K so that its RoPE can rotate
//! adjacent pairs `(2i, 2i + 1)`; Hugging Face's Llama rotates halves `(i, i + d/2)`. Within a head
//! of dimension `d`, GGUF row `2i + j` is Hugging Face row `j·d/2 + i` (`j ∈ {0, 1}`). Attention
//! scores are the same either way; only code that applies half-rotation RoPE, or compares Q/K
//! channels with Hugging Face, needs [`unpermute_qk_rows`]. transformers undoes the same
//! permutation when it loads a GGUF (checked in tests/gguf_loader.rs against its weights).
//!
//! ```
//! use quietattn::model::gguf_llama::unpermute_qk_rows;
//!
//! # fn main() -> quietattn::Result<()> {
//! // One head of dimension 4, one column: GGUF rows [r0, r1, r2, r3] hold HF rows [0, 2, 1, 3].
//! let gguf = [10.0, 12.0, 11.0, 13.0];
//! assert_eq!(unpermute_qk_rows(&gguf, 4, 1, 1)?, vec![10.0, 11.0, 12.0, 13.0]);
//! # Ok(())
//! # }
//! ```

use crate::error::{Error, Result};

/// Reorders the rows of a GGUF `attn_q`/`attn_k` weight (row-major `[rows, cols]`, i.e. GGUF
/// `dims == [cols, rows]`) into Hugging Face's order, for `n_heads` heads of `rows / n_heads`
/// (even) rows each. Pass the KV head count for `attn_k`.
pub fn unpermute_qk_rows(w: &[f32], rows: usize, cols: usize, n_heads: usize) -> Result<Vec<f32>> {
    let head_dim = (n_heads > 0 && rows % n_heads == 0).then(|| rows / n_heads);
    let Some(d) = head_dim.filter(|d| d % 2 == 0) else {
        return Err(Error::Shape(format!(
            "{rows} Q/K rows do not split into {n_heads} heads of an even dimension"
        )));
    };
    if rows.checked_mul(cols) != Some(w.len()) {
        return Err(Error::Shape(format!(
            "{} weights are not {rows} × {cols}",
            w.len()
        )));
    }
    let mut out = vec![0.0; w.len()];
    for head in 0..n_heads {
        for i in 0..d / 2 {
            for j in 0..2 {
                let src = (head * d + 2 * i + j) * cols;
                let dst = (head * d + j * d / 2 + i) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    Ok(out)
}
