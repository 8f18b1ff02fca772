//! `quietattn probe`: a real checkpoint's forward pass with quietattn's attention
//! (statistics on) and the activation-statistics op on every hidden state, and the per-layer,
//! per-head readings of docs/contract.md §8 (sink scores, entropies, value-norm ratios, kurtosis,
//! outlier channels, massive activations).
//!
//! Dense layers use the `matrixmultiply` GEMM on the CPU, or cuBLAS on a GPU once
//! `LoadedModel::place_dense` put them there ([`dense`]); attention and the statistics run on
//! any [`crate::Device`] (the f64 reference, the SIMT emulator, or CUDA).
//!
//! With a fetched checkpoint (`scripts/fetch-models.sh`) the whole pass is
//! `LoadedModel::load(path)?`, `model.encode(text)?`, `model.forward(&device, &input, &options)?`
//! and `ProbeReport::new(&trace)`. The layer the models share runs on any `[tokens, heads · d]`
//! projections:
//!
//! ```
//! use quietattn::probe::attention_layer::{HeadLayout, attend};
//! use quietattn::probe::matrix::Matrix;
//! use quietattn::{AttentionOptions, Device};
//!
//! # fn main() -> quietattn::Result<()> {
//! // 4 tokens, 2 query heads sharing 1 KV head of dimension 8; token 0's keys stand out.
//! let layout = HeadLayout { heads: 2, kv_heads: 1, head_dim: 8 };
//! let q = Matrix::new(4, 16, vec![0.5; 64])?;
//! let mut k = Matrix::new(4, 8, vec![0.0; 32])?;
//! k.row_mut(0).fill(2.0);
//! let v = Matrix::new(4, 8, (0..32).map(|i| (i % 8) as f32).collect())?;
//! // q·k_0 = 8, scaled by 1/4: logit 2 on token 0, 0 elsewhere.
//! let options = AttentionOptions { causal: true, scale: Some(0.25), ..AttentionOptions::default() };
//! let layer = attend(&Device::reference(), layout, &q, &k, &v, &options)?;
//! let head = &layer.heads[0];
//! // Each row puts weight e^2/(e^2 + j) on token 0; row 0 has only token 0.
//! let without_row0 = head.sink_score_without_row0.expect("causal");
//! let e2 = 2f64.exp();
//! let want = (e2 / (e2 + 1.0) + e2 / (e2 + 2.0) + e2 / (e2 + 3.0)) / 3.0;
//! assert!((without_row0 - want).abs() < 1e-6);
//! assert!(head.sink_score.unwrap() > without_row0);
//! # Ok(())
//! # }
//! ```

pub mod attention_layer;
pub mod bert;
pub mod checkpoint;
pub mod dense;
pub mod hidden;
pub mod llama;
pub mod loaded;
pub mod matrix;
pub mod norm;
pub mod plots;
pub mod replay;
pub mod report;
pub mod rope;
pub mod tokenizer;
pub mod trace;
pub mod weights;

pub use loaded::LoadedModel;
pub use report::ProbeReport;
pub use trace::Trace;
