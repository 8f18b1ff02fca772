//! The correctness suite as a library: a covering matrix of attention cases run on a device and
//! compared with the f64 reference under docs/contract.md §6's tolerances (`quietattn check` and
//! the attention tests both use it).
//!
//! ```
//! use quietattn::check::{Family, case::{Batching, Case, Layout, MaskKind}, matrix::Edit};
//! use quietattn::{DType, Device, Gate, Normaliser};
//!
//! let case = Case {
//!     norm: Normaliser::OffByOne,
//!     mask: MaskKind::Causal,
//!     softcap: false,
//!     gate: Gate::None,
//!     dtype: DType::F32,
//!     head_dim: 64,
//!     layout: Layout::Gqa,
//!     batching: Batching::Batched { q_len: 5, k_len: 7 },
//!     stats: true,
//!     padded: false,
//!     scale: None,
//! };
//! let result = quietattn::check::run_case(&Device::reference(), Family::CudaCore, &case, 1, Edit::None);
//! assert!(result.verdict.passed(), "{:?}", result.verdict);
//! assert!(result.max_error.unwrap() <= 1.0);
//! ```

pub mod bins;
pub mod case;
pub mod matrix;
pub mod o_error;
pub mod outputs;

use std::time::{Duration, Instant};

use crate::reference::ReferenceAttention;
use crate::stats::compare::{HeadBounds, Mismatch, OBounds, check_against_reference};
use crate::{
    AttentionInputs, AttentionOptions, AttentionOutput, DType, Device, Error, Gate, KernelChoice,
};

use case::{Case, CaseData};
use matrix::Edit;
use o_error::OError;

/// A kernel family: one implementation of the attention kernel. Every case runs once per family
/// the device supports ([`Family::supported_by`]); a new family is one more entry in
/// [`Family::ALL`] and its arms in [`Family::apply`] and [`Family::supported_by`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The CUDA-core kernel (every GPU, the emulator, and the reference's stand-in).
    CudaCore,
    /// The tensor-core kernel (`mma.sync`, sm_80+; f16/bf16 and its own head dims only).
    TensorCore,
}

impl Family {
    /// Every family, in the order `check` runs them.
    pub const ALL: &'static [Family] = &[Family::CudaCore, Family::TensorCore];

    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Family::CudaCore => "cuda-core",
            Family::TensorCore => "tensor-core",
        }
    }

    /// Whether `device` runs this family: a device of at least the family's oldest compute
    /// capability (its registry row; the emulator reports 8.0), while the reference device
    /// stands in for the CUDA-core family only.
    pub fn supported_by(self, device: &Device) -> bool {
        match self {
            Family::CudaCore => true,
            Family::TensorCore => device.executor().is_some_and(|e| {
                e.compute_capability() >= crate::registry::family("tensor_core").min_cc()
            }),
        }
    }

    /// The options that select this family. Both pin `kernel`: `Auto` picks tensor cores
    /// wherever they apply, which would leave the CUDA-core family unchecked there.
    pub fn apply(self, options: AttentionOptions) -> AttentionOptions {
        let kernel = match self {
            Family::CudaCore => KernelChoice::CudaCore,
            Family::TensorCore => KernelChoice::TensorCore,
        };
        AttentionOptions { kernel, ..options }
    }
}

/// The families `device` runs.
pub fn families(device: &Device) -> Vec<Family> {
    Family::ALL
        .iter()
        .copied()
        .filter(|f| f.supported_by(device))
        .collect()
}

/// What the reference says a case must give: outputs, statistics, admissible histograms.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The f64 reference.
    pub reference: ReferenceAttention,
    /// Row histograms per head (empty without statistics).
    pub heads: Vec<HeadBounds>,
    /// O's zeros, log2 histogram and moments (before the gate), as the family's O error
    /// ([`OError`], from `options.kernel`) admits.
    pub o: OBounds,
}

impl Expected {
    /// Runs the reference on `inputs`; with statistics, also the exact row values and the
    /// ungated O behind the histograms, with the O error of the family `options.kernel` pins
    /// (`Auto` may pick tensor cores, so it gets theirs).
    pub fn new(inputs: &AttentionInputs<'_>, options: &AttentionOptions) -> crate::Result<Self> {
        let reference = crate::reference::attention(inputs, options)?;
        if !options.stats {
            return Ok(Expected {
                reference,
                heads: Vec::new(),
                o: OBounds::default(),
            });
        }
        let problem = &reference.problem;
        // O statistics are taken before the gate: the reference without it gives those values.
        let ungated = AttentionOptions {
            gate: Gate::None,
            ..options.clone()
        };
        let (o, o_logit_error) = if options.gate == Gate::None {
            (reference.o.clone(), reference.o_logit_error.clone())
        } else {
            let r = crate::reference::attention(inputs, &ungated)?;
            (r.o, r.o_logit_error)
        };
        let covered = problem.seqs.iter().enumerate().flat_map(|(b, s)| {
            let first = if problem.varlen {
                s.q_start
            } else {
                b * problem.max_seqlen_q
            };
            first..first + s.q_len
        });
        let v_max = inputs
            .v
            .to_f64()
            .into_iter()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        let error = OError::new(
            options.kernel,
            inputs.q.dtype(),
            problem.max_seqlen_k,
            v_max,
        );
        let o = error.bounds_with(&o, &o_logit_error, covered, problem.heads, problem.head_dim);
        let heads = bins::head_bins(inputs, options, problem);
        Ok(Expected {
            reference,
            heads,
            o,
        })
    }
}

/// What [`verify`] measured when everything was within tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verified {
    /// Worst output `|error| / tolerance` (≤ 1).
    pub max_error: f64,
    /// Whether statistics were compared.
    pub stats_checked: bool,
}

/// A kernel's output against the expectation: outputs within docs/contract.md §6, statistics (when
/// `stats`) by [`check_against_reference`]; statistics returned unasked are a mismatch too.
pub fn verify(
    dtype: DType,
    expected: &Expected,
    got: &AttentionOutput,
    stats: bool,
) -> Result<Verified, Mismatch> {
    let max_error = outputs::check_outputs(dtype, got, &expected.reference)?;
    match (&got.stats, stats) {
        (Some(s), true) => {
            check_against_reference(s, &expected.reference.stats, &expected.heads, &expected.o)?
        }
        (None, true) => return Err(Mismatch("statistics requested, none returned".into())),
        (Some(_), false) => return Err(Mismatch("statistics returned unasked".into())),
        (None, false) => {}
    }
    Ok(Verified {
        max_error,
        stats_checked: stats,
    })
}

/// How a case ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Within every tolerance.
    Pass,
    /// The kernel ran and disagreed with the reference.
    Mismatch(String),
    /// The kernel or the reference could not run.
    Error(String),
    /// The family does not serve this case (its planner said `Unsupported`: f32 or a head dim
    /// without an instantiation on tensor cores); neither a pass nor a failure.
    Skipped(String),
}

impl Verdict {
    /// True for [`Verdict::Pass`].
    pub fn passed(&self) -> bool {
        *self == Verdict::Pass
    }

    /// True for a mismatch or an error; a skipped case is not a failure.
    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Mismatch(_) | Verdict::Error(_))
    }
}

/// One case on one family.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// [`Case::label`].
    pub label: String,
    /// The family it ran on.
    pub family: Family,
    /// Worst output error over tolerance, when the outputs were within it.
    pub max_error: Option<f64>,
    /// Whether statistics were compared and agreed (`None`: not collected in this case).
    pub stats_ok: Option<bool>,
    /// The kernel's time (host-visible, including transfers).
    pub time: Duration,
    /// The outcome.
    pub verdict: Verdict,
}

/// Runs `case` with inputs from `seed` on `device` and `family`, and compares with the reference.
pub fn run_case(device: &Device, family: Family, case: &Case, seed: u64, edit: Edit) -> CaseResult {
    let mut data = CaseData::new(case, seed);
    edit.apply(&mut data);
    let inputs = data.inputs();
    let options = family.apply(case.options());
    let mut result = CaseResult {
        label: case.label(),
        family,
        max_error: None,
        stats_ok: None,
        time: Duration::ZERO,
        verdict: Verdict::Pass,
    };
    let expected = match Expected::new(&inputs, &options) {
        Ok(e) => e,
        Err(e) => {
            result.verdict = Verdict::Error(format!("reference: {e}"));
            return result;
        }
    };
    let start = Instant::now();
    let got = crate::attention(device, &inputs, &options);
    result.time = start.elapsed();
    let got = match got {
        Ok(g) => g,
        // The CUDA-core family serves every case of the matrix: a refusal there is an error.
        Err(Error::Unsupported(why)) if family != Family::CudaCore => {
            result.verdict = Verdict::Skipped(why);
            return result;
        }
        Err(e) => {
            result.verdict = Verdict::Error(format!("kernel: {e}"));
            return result;
        }
    };
    match verify(case.dtype, &expected, &got, options.stats) {
        Ok(v) => {
            result.max_error = Some(v.max_error);
            result.stats_ok = v.stats_checked.then_some(true);
        }
        Err(m) => {
            result.max_error = outputs::check_outputs(case.dtype, &got, &expected.reference).ok();
            // Outputs passed, so the statistics failed (or outputs failed: stats unchecked).
            result.stats_ok = (options.stats && result.max_error.is_some()).then_some(false);
            result.verdict = Verdict::Mismatch(m.0);
        }
    }
    result
}

/// Runs every case of `cases` on every family `device` supports; case `n` draws seed `1000 + n`.
pub fn run_suite(device: &Device, cases: &[(Case, Edit)]) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for family in families(device) {
        for (n, (case, edit)) in cases.iter().enumerate() {
            results.push(run_case(device, family, case, 1000 + n as u64, *edit));
        }
    }
    results
}
