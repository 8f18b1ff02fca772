//! `quietattn probe`: a real checkpoint's forward pass on the CPU with quietattn's attention
//! (statistics on) and the activation-statistics op on every hidden state, and the per-layer,
//! per-head readings of SPEC §8 (sink scores, entropies, value-norm ratios, kurtosis, outlier
//! channels, massive activations).
//!
//! Dense layers use the `matrixmultiply` GEMM on the CPU; attention and the statistics run on
//! any [`crate::Device`] (the f64 reference, the SIMT emulator, or CUDA).

pub mod attention_layer;
pub mod bert;
pub mod checkpoint;
pub mod hidden;
pub mod llama;
pub mod loaded;
pub mod matrix;
pub mod norm;
pub mod replay;
pub mod report;
pub mod rope;
pub mod tokenizer;
pub mod trace;
pub mod weights;

pub use loaded::LoadedModel;
pub use report::ProbeReport;
pub use trace::Trace;
