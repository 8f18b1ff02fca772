//! The literal f64 CPU reference of docs/contract.md §1–5: every score row is materialised, every
//! normaliser is written out in closed form, every statistic follows §5.
//!
//! Inputs are widened to f64 exactly; nothing is rounded until [`ReferenceAttention::into_output`].
//! Non-finite inputs never panic: a NaN or ±inf in q/k/v propagates through the arithmetic into
//! the rows that read it (exactly as the formulas do; e.g. `0·NaN = NaN` for a key whose weight is
//! 0) and is counted in the tensor's `non_finite`; histogram bins of NaN row statistics are 0.
//!
//! Statistics are taken on f64 values (O before the gate); kernels take them on f32 values, so
//! a value within rounding of a bin edge may land one bin over (docs/contract.md §6 allows this).
//! Host varlen offsets must cover every row (the validator rejects offsets that end early).
//!
//! docs/contract.md §7 (decode): [`paged_attention`] runs a paged KV cache through the same driver,
//! [`split`] holds the split-KV partials and merge rules, [`append_kv`] the cache's write side.

pub mod activation;
mod append_kv;
mod driver;
pub mod logit_error;
pub mod normaliser;
mod paged;
pub mod row_stats;
pub mod split;
pub mod tensor_stats;

pub use activation::activation_stats;
pub(crate) use append_kv::check_append;
pub use append_kv::{SKIP_SLOT, append_kv, slot_mapping};
pub use normaliser::{RowParams, RowWeights, row_weights};
pub use paged::{PagedReference, paged_attention};

use crate::dtype::DType;
use crate::error::Result;
use crate::ops::AttentionOutput;
use crate::problem::{AttentionInputs, AttentionProblem};
use crate::stats::OutlierStats;
use crate::tensor::Tensor;
use crate::variant::AttentionOptions;

/// The f64 result of [`attention`].
#[derive(Clone, Debug)]
pub struct ReferenceAttention {
    /// The (gated) output, row-major in `problem.o_shape()`.
    pub o: Vec<f64>,
    /// How far each element of `o` may move when the logits carry the rounding error of an f32
    /// dot product (see [`logit_error`]); part of the o tolerance of docs/contract.md §6.
    pub o_logit_error: Vec<f64>,
    /// The per-row `lse` of docs/contract.md §3, row-major in `problem.lse_shape()`.
    pub lse: Vec<f64>,
    /// Every statistic of docs/contract.md §5 (always computed).
    pub stats: OutlierStats,
    /// The validated geometry.
    pub problem: AttentionProblem,
}

/// Attention in f64 on the CPU, with statistics.
pub fn attention(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
) -> Result<ReferenceAttention> {
    let problem = AttentionProblem::new(inputs, options)?;
    let out = driver::run(inputs, options, &problem)?;
    Ok(ReferenceAttention {
        o: out.o,
        o_logit_error: out.o_logit_error,
        lse: out.lse,
        stats: out.stats,
        problem,
    })
}

impl ReferenceAttention {
    /// The public [`AttentionOutput`]: `o` rounded to the inputs' dtype, `lse` rounded to f32,
    /// and the statistics when `want_stats`.
    pub fn into_output(self, want_stats: bool) -> Result<AttentionOutput> {
        let o = Tensor::from_f64(self.problem.dtype, &self.o, &self.problem.o_shape())?;
        let lse = Tensor::from_f64(DType::F32, &self.lse, &self.problem.lse_shape())?;
        Ok(AttentionOutput {
            o,
            lse,
            stats: want_stats.then_some(self.stats),
            numerics: Default::default(),
        })
    }
}
