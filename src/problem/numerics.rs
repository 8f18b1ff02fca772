//! The numeric range the kernels promise, and a cheap host-side scan of the inputs against it.
//!
//! The kernels compute logits, the running denominators and the output accumulators in f32.
//! A call is *within range* when, for every query row `q_i` and key row `k_j`,
//! `max(1, |scale|) · log2(e) · ‖q_i‖ · ‖k_j‖ ≤ f32::MAX` (the dot product, the scaled logit and
//! its base-2 form all fit) and `max|v| · max_seqlen_k ≤ f32::MAX` (a sum of at most
//! `max_seqlen_k` values weighted by at most 1 fits). Inside it, a finite input gives a finite
//! output. Outside it the result may be ±inf or NaN where the f64 reference is finite:
//! [`InputNumerics::range_problem`] says so before a launch, and
//! [`crate::ops::AttentionOutput::numerics`] counts the non-finite outputs after it.
//!
//! Non-finite inputs (NaN, ±inf) are counted per tensor; they propagate through the formulas
//! (a NaN key poisons every row that reads it). Nothing rejects them here: callers decide (the
//! CLI warns, and `--strict-numerics` makes them an error).
//!
//! ```
//! use quietattn::problem::InputNumerics;
//! use quietattn::{AttentionInputs, AttentionOptions, AttentionProblem, DType, Tensor};
//!
//! # fn main() -> quietattn::Result<()> {
//! let q = Tensor::from_f64(DType::F32, &[1e20, 0.0, f64::NAN, 1.0], &[1, 2, 1, 2])?;
//! let k = Tensor::from_f64(DType::F32, &[1e20, 0.0, 1.0, 1.0], &[1, 2, 1, 2])?;
//! let inputs = AttentionInputs::new(q.view(), k.view(), k.view());
//! let options = AttentionOptions::default();
//! let scan = InputNumerics::scan(&inputs, &AttentionProblem::new(&inputs, &options)?);
//! assert_eq!(scan.non_finite.describe(), "q 1");
//! // 1e20 · 1e20 does not fit f32: the call may overflow.
//! assert!(scan.range_problem().unwrap().contains("logits may overflow f32"));
//! # Ok(())
//! # }
//! ```

use crate::tensor::TensorView;

use super::{AttentionInputs, AttentionProblem};

/// The largest finite f32, as f64.
pub const F32_MAX: f64 = f32::MAX as f64;

/// Non-finite elements (NaN or ±inf) per input tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonFiniteCounts {
    /// In `q`.
    pub q: usize,
    /// In `k`.
    pub k: usize,
    /// In `v`.
    pub v: usize,
    /// In the gate logits.
    pub gate: usize,
    /// In the sink logits.
    pub sinks: usize,
}

impl NonFiniteCounts {
    /// All of them.
    pub fn total(&self) -> usize {
        self.q + self.k + self.v + self.gate + self.sinks
    }

    /// `"q 3, gate 1"`: the tensors that have any, for messages.
    pub fn describe(&self) -> String {
        [
            ("q", self.q),
            ("k", self.k),
            ("v", self.v),
            ("gate", self.gate),
            ("sinks", self.sinks),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// What the host-side scan of the inputs found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InputNumerics {
    /// Non-finite elements per tensor.
    pub non_finite: NonFiniteCounts,
    /// Largest L2 norm of a query row (finite elements only).
    pub max_q_norm: f64,
    /// Largest L2 norm of a key row (finite elements only).
    pub max_k_norm: f64,
    /// Largest |v| (finite elements only).
    pub max_abs_v: f64,
    /// `max(1, |scale|) · log2(e) · max‖q‖ · max‖k‖`: no f32 logit exceeds it.
    pub logit_bound: f64,
    /// `max|v| · max_seqlen_k`: no f32 accumulator exceeds it.
    pub accumulator_bound: f64,
}

impl InputNumerics {
    /// Scans the inputs of a validated problem: one pass over q, k, v, gate and sinks.
    pub fn scan(inputs: &AttentionInputs<'_>, problem: &AttentionProblem) -> Self {
        let q = rows(&inputs.q);
        let k = rows(&inputs.k);
        let v = rows(&inputs.v);
        let gate = inputs.gate.as_ref().map_or(RowScan::default(), rows);
        let sinks = inputs
            .sinks
            .map_or(0, |s| s.iter().filter(|x| !x.is_finite()).count());
        let logit_bound =
            problem.scale.abs().max(1.0) * std::f64::consts::LOG2_E * q.max_norm * k.max_norm;
        InputNumerics {
            non_finite: NonFiniteCounts {
                q: q.non_finite,
                k: k.non_finite,
                v: v.non_finite,
                gate: gate.non_finite,
                sinks,
            },
            max_q_norm: q.max_norm,
            max_k_norm: k.max_norm,
            max_abs_v: v.max_abs,
            logit_bound,
            accumulator_bound: v.max_abs * problem.max_seqlen_k as f64,
        }
    }

    /// Why finite inputs may still give non-finite f32 results, or `None` within range.
    pub fn range_problem(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.logit_bound > F32_MAX {
            why.push(format!(
                "logits may overflow f32: max(1, |scale|)·log2(e)·max‖q‖·max‖k‖ = {:e} > {:e} \
                 (max‖q‖ {:e}, max‖k‖ {:e})",
                self.logit_bound, F32_MAX, self.max_q_norm, self.max_k_norm
            ));
        }
        if self.accumulator_bound > F32_MAX {
            why.push(format!(
                "output accumulators may overflow f32: max|v|·max_seqlen_k = {:e} > {:e}",
                self.accumulator_bound, F32_MAX
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Per-tensor results of one scan.
#[derive(Clone, Copy, Debug, Default)]
struct RowScan {
    non_finite: usize,
    max_norm: f64,
    max_abs: f64,
}

/// Scans the rows (last axis) of a view; norms and maxima over the finite elements.
fn rows(view: &TensorView<'_>) -> RowScan {
    let mut out = RowScan::default();
    let Some((&len, lead)) = view.shape.split_last() else {
        return out;
    };
    let step = view.strides.last().copied().unwrap_or(1);
    let n_rows: usize = lead.iter().product();
    let mut index = vec![0usize; lead.len()];
    for _ in 0..n_rows {
        let start = view.offset
            + index
                .iter()
                .zip(&view.strides)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        let mut sq = 0.0f64;
        for c in 0..len {
            let x = view.data.get(start + c * step);
            if x.is_finite() {
                sq += x * x;
                out.max_abs = out.max_abs.max(x.abs());
            } else {
                out.non_finite += 1;
            }
        }
        out.max_norm = out.max_norm.max(sq.sqrt());
        advance(&mut index, lead);
    }
    out
}

/// The next multi-index in row-major order (wraps to zeros after the last).
fn advance(index: &mut [usize], shape: &[usize]) {
    for a in (0..index.len()).rev() {
        index[a] += 1;
        if index[a] < shape[a] {
            return;
        }
        index[a] = 0;
    }
}

/// What a call's numbers looked like: the input scan and the non-finite outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NumericsReport {
    /// The scan of the inputs (before the launch).
    pub inputs: InputNumerics,
    /// Non-finite elements of `o`. With finite inputs this is an overflow: the call left the
    /// range of [`crate::problem::numerics`].
    pub non_finite_o: usize,
}

impl NumericsReport {
    /// Overflow: non-finite outputs although every input was finite.
    pub fn overflowed(&self) -> bool {
        self.non_finite_o > 0 && self.inputs.non_finite.total() == 0
    }
}
