//! The check matrix: a deterministic covering sample, not the full product. Every normaliser
//! meets every mask, gate, dtype, head layout, batching, softcap and statistics setting at least
//! once (the attention tests assert it), plus head dims 256/72/200 and the tensor-core family's
//! 32/96/192, extreme logits, non-finite inputs.

use crate::abi;
use crate::registry::NORMALISERS;
use crate::{DType, Gate, Normaliser};

use super::case::{Batching, Case, CaseData, Layout, MaskKind, set};

/// A change to a case's generated inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The inputs as generated.
    None,
    /// NaN in q, +inf in k, -inf in v (one element each; the case must be batched 2×20×37,
    /// MHA, d64, unpadded): counted in `non_finite` and propagated.
    NonFinite,
}

impl Edit {
    /// Applies the edit.
    pub fn apply(self, d: &mut CaseData) {
        if self == Edit::NonFinite {
            set(&mut d.q, 5 * 2 * 64 + 3, f64::NAN);
            set(&mut d.k, 30 * 2 * 64 + 64 + 7, f64::INFINITY);
            set(&mut d.v, 2 * 64 + 1, f64::NEG_INFINITY);
        }
    }
}

/// The levels the covering matrix cycles through.
pub const MASKS: [MaskKind; 3] = [MaskKind::None, MaskKind::Causal, MaskKind::Window];
/// Every gate.
pub const GATES: [Gate; 4] = [
    Gate::None,
    Gate::SigmoidHeadwise,
    Gate::SigmoidElementwise,
    Gate::ContextScale,
];
/// Every dtype.
pub const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
/// Every head layout.
pub const LAYOUTS: [Layout; 3] = [Layout::Mha, Layout::Gqa, Layout::Mqa];
/// Batched (q, k) lengths.
pub const BATCHED: [(usize, usize); 3] = [(20, 37), (33, 33), (1, 17)];

/// The whole matrix: covering sample, extra head dims, extreme logits, non-finite inputs, the
/// tensor-core head dims. Case `n` draws its inputs from seed `1000 + n`
/// ([`super::run_suite`]), so new cases go at the end: earlier cases keep their inputs.
pub fn all_cases() -> Vec<(Case, Edit)> {
    let mut all: Vec<(Case, Edit)> = covering_matrix()
        .into_iter()
        .map(|c| (c, Edit::None))
        .collect();
    all.extend(head_dim_cases().into_iter().map(|c| (c, Edit::None)));
    all.extend(extreme_cases().into_iter().map(|c| (c, Edit::None)));
    all.extend(non_finite_cases());
    all.extend(
        tensor_core_head_dim_cases()
            .into_iter()
            .map(|c| (c, Edit::None)),
    );
    all.extend(long_key_cases().into_iter().map(|c| (c, Edit::None)));
    all
}

/// The `n`-th normaliser of the registry (`n` modulo their count) in its `c`-th
/// parameterisation. A registry row without one here fails every check run, never mislabels.
pub fn normaliser(n: usize, c: usize) -> Normaliser {
    match NORMALISERS[n % NORMALISERS.len()].abi {
        abi::QaNormaliser_QA_NORM_SOFTMAX => Normaliser::Softmax,
        abi::QaNormaliser_QA_NORM_OFF_BY_ONE => Normaliser::OffByOne,
        abi::QaNormaliser_QA_NORM_SINK => Normaliser::Sink,
        abi::QaNormaliser_QA_NORM_CLIPPED => Normaliser::Clipped {
            gamma: -0.05,
            zeta: 1.2,
        },
        abi::QaNormaliser_QA_NORM_SOFTPICK => Normaliser::Softpick,
        abi::QaNormaliser_QA_NORM_SIGMOID => Normaliser::Sigmoid {
            bias: (c % 2 == 1).then_some(-1.0),
        },
        other => unreachable!("src/check/matrix.rs has no parameters for normaliser {other}"),
    }
}

/// Twelve cases per normaliser; each factor cycles with a different period so that, per
/// normaliser, every level of every factor appears.
pub fn covering_matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for n in 0..NORMALISERS.len() {
        for c in 0..12 {
            let (q_len, k_len) = BATCHED[(c / 2) % 3];
            cases.push(Case {
                norm: normaliser(n, c),
                mask: MASKS[(c + n) % 3],
                softcap: (c + c / 6) % 2 == 1,
                gate: GATES[c % 4],
                dtype: DTYPES[(c / 4 + n) % 3],
                head_dim: [64, 128][(c / 3) % 2],
                layout: LAYOUTS[(c / 2 + n) % 3],
                batching: if (c / 3 + n) % 2 == 0 {
                    Batching::Varlen
                } else {
                    Batching::Batched { q_len, k_len }
                },
                stats: (c + n) % 2 == 0,
                padded: (c / 6 + n) % 2 == 1,
                scale: None,
            });
        }
    }
    cases
}

/// Head dims beyond the covering matrix: the d256 instantiation and non-power-of-two dims (the
/// tensor-core family refuses 72 and 200).
pub fn head_dim_cases() -> Vec<Case> {
    let base = |norm, d, dtype, mask, batching| Case {
        norm,
        mask,
        softcap: false,
        gate: Gate::SigmoidElementwise,
        dtype,
        head_dim: d,
        layout: Layout::Gqa,
        batching,
        stats: true,
        padded: true,
        scale: None,
    };
    vec![
        base(
            Normaliser::Sink,
            256,
            DType::F16,
            MaskKind::CausalWindow,
            Batching::Varlen,
        ),
        base(
            Normaliser::Clipped {
                gamma: -0.05,
                zeta: 1.2,
            },
            256,
            DType::F32,
            MaskKind::Causal,
            Batching::Batched {
                q_len: 20,
                k_len: 37,
            },
        ),
        base(
            Normaliser::Softpick,
            72,
            DType::BF16,
            MaskKind::None,
            Batching::Varlen,
        ),
        base(
            Normaliser::Softmax,
            200,
            DType::F32,
            MaskKind::Window,
            Batching::Batched { q_len: 9, k_len: 9 },
        ),
    ]
}

/// The head dims the tensor-core family instantiates besides 64/128/256: 32, 96, 192 (f16/bf16,
/// so it serves them; the CUDA-core family runs them too).
pub fn tensor_core_head_dim_cases() -> Vec<Case> {
    let extra = |norm, d: usize, dtype, mask, layout, batching| Case {
        norm,
        mask,
        softcap: d == 96,
        gate: [Gate::ContextScale, Gate::SigmoidHeadwise, Gate::None][d / 96 % 3],
        dtype,
        head_dim: d,
        layout,
        batching,
        stats: true,
        padded: d != 192,
        scale: None,
    };
    let batched = Batching::Batched {
        q_len: 20,
        k_len: 37,
    };
    vec![
        extra(
            Normaliser::Softmax,
            32,
            DType::BF16,
            MaskKind::Causal,
            Layout::Gqa,
            Batching::Varlen,
        ),
        extra(
            Normaliser::OffByOne,
            96,
            DType::F16,
            MaskKind::Window,
            Layout::Mha,
            batched,
        ),
        extra(
            Normaliser::Sigmoid { bias: None },
            192,
            DType::BF16,
            MaskKind::CausalWindow,
            Layout::Mqa,
            batched,
        ),
        extra(
            Normaliser::Softpick,
            32,
            DType::F16,
            MaskKind::None,
            Layout::Mha,
            batched,
        ),
    ]
}

/// Sequences of several key tiles and query blocks, every normaliser: the tensor-core family's
/// steady loop (tiles every row of a block sees in full), its partial last tile, causal and
/// window edges around it, varlen, statistics, a softcap (which keeps every tile general).
pub fn long_key_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for n in 0..NORMALISERS.len() {
        let base = Case {
            norm: normaliser(n, 0),
            mask: MaskKind::None,
            softcap: false,
            gate: Gate::None,
            dtype: DType::BF16,
            head_dim: 128,
            layout: Layout::Gqa,
            batching: Batching::Batched {
                q_len: 130,
                k_len: 230,
            },
            stats: false,
            padded: false,
            scale: None,
        };
        cases.push(base.clone());
        cases.push(Case {
            mask: MaskKind::Causal,
            gate: Gate::SigmoidElementwise,
            dtype: DType::F16,
            head_dim: 64,
            layout: Layout::Mha,
            batching: Batching::Batched {
                q_len: 100,
                k_len: 230,
            },
            stats: true,
            ..base.clone()
        });
        cases.push(Case {
            mask: MaskKind::WideWindow,
            gate: Gate::SigmoidHeadwise,
            head_dim: 64,
            layout: Layout::Mqa,
            batching: Batching::VarlenLong,
            stats: true,
            padded: true,
            ..base.clone()
        });
        cases.push(Case {
            softcap: n % 2 == 0,
            gate: Gate::ContextScale,
            dtype: DType::F16,
            batching: Batching::VarlenLong,
            stats: n % 2 == 1,
            ..base
        });
    }
    cases
}

/// Logits of about ±1e4 after scaling, every normaliser, f32.
pub fn extreme_cases() -> Vec<Case> {
    (0..NORMALISERS.len())
        .map(|n| extreme_case(n, MASKS[n % 3], 20))
        .collect()
}

/// An extreme-logit case: the `n`-th normaliser of the registry (first parameterisation) under `mask`, f32,
/// d 64, 3 query heads over 1 kv head, `q_len` queries over 37 keys, statistics on, and scale
/// 1e3 so that the logits are about ±1e4.
///
/// The matrix's cases ([`extreme_cases`]) take 20 queries; a sweep over many seeds may take
/// fewer to stay fast, and still meets the same logit magnitudes.
///
/// ```
/// use quietattn::check::case::MaskKind;
/// use quietattn::check::matrix::extreme_case;
///
/// let case = extreme_case(0, MaskKind::Causal, 8);
/// assert_eq!((case.head_dim, case.scale), (64, Some(1e3)));
/// ```
pub fn extreme_case(n: usize, mask: MaskKind, q_len: usize) -> Case {
    Case {
        norm: normaliser(n, 0),
        mask,
        softcap: false,
        gate: Gate::None,
        dtype: DType::F32,
        head_dim: 64,
        layout: Layout::Mqa,
        batching: Batching::Batched { q_len, k_len: 37 },
        stats: true,
        padded: false,
        scale: Some(1e3),
    }
}

/// NaN in q, +inf in k, -inf in v (one element each): counted in non_finite, propagated.
pub fn non_finite_cases() -> Vec<(Case, Edit)> {
    [
        (Normaliser::Softmax, DType::F32),
        (Normaliser::Sigmoid { bias: None }, DType::BF16),
    ]
    .into_iter()
    .map(|(norm, dtype)| {
        let case = Case {
            norm,
            mask: MaskKind::Causal,
            softcap: false,
            gate: Gate::None,
            dtype,
            head_dim: 64,
            layout: Layout::Mha,
            batching: Batching::Batched {
                q_len: 20,
                k_len: 37,
            },
            stats: true,
            padded: false,
            scale: None,
        };
        (case, Edit::NonFinite)
    })
    .collect()
}
