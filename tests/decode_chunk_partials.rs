//! The decode chunk kernel's split partials, before any combine (`ops::decode::chunk_partials`),
//! against the f64 partials of the same keys (`quietattn::reference::split`), so that a chunk
//! bug and a combine bug are told apart: the exponential partial (softmax, off_by_one), the
//! softpick partial and the absolute partials (sigmoid, clipped pass 2), each with its
//! statistics pieces. Kernels work in log2 units; the reference in natural units. Both chunk
//! families run every test: CUDA cores on f32 inputs, tensor cores on f16 (P rounded to f16
//! before P·V, hence the wider tolerance).

mod common;
mod paged_parts;

use paged_parts::{Fixture, LENS, Shape};
use std::f64::consts::LOG2_E;

use quietattn::ops::decode::{DecodeCall, chunk_partials};
use quietattn::problem::SplitPlan;
use quietattn::reference::split::{
    AbsolutePartial, Chunk, ExpPartial, LogitRange, SoftpickPartial,
};
use quietattn::{AttentionOptions, DType, KernelChoice, Normaliser, Tensor};

const DIM: usize = 8;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const SPLITS: usize = 3;
const CHUNK: usize = 48;

/// A chunk family with the input dtype it runs here and the relative tolerance of its partials.
#[derive(Clone, Copy)]
struct Family {
    choice: KernelChoice,
    dtype: DType,
    tol: f64,
}

/// f32 arithmetic against f64 on the same f32 inputs; f16 inputs with P rounded to f16 (2^-11).
const FAMILIES: [Family; 2] = [
    Family {
        choice: KernelChoice::CudaCore,
        dtype: DType::F32,
        tol: 1e-4,
    },
    Family {
        choice: KernelChoice::TensorCore,
        dtype: DType::F16,
        tol: 5e-3,
    },
];

/// One chunk of one row as the reference sees it: key positions, logits (scaled), value rows.
struct RowChunk {
    keys: Vec<usize>,
    logits: Vec<f64>,
    values: Vec<f64>,
}

impl RowChunk {
    fn chunk(&self) -> Chunk<'_> {
        Chunk::new(&self.keys, &self.logits, &self.values, DIM).unwrap()
    }
}

/// What the kernel leaves in one partial slot: `acc`, then `m` (log2), `l`, and the statistics
/// scalars `A = Σw`, `B = Σw ln w`, `n`, `Σ(x − xmax)`, `x0`, `xmax` (log2 units).
struct Slot {
    acc: Vec<f64>,
    m2: f64,
    l: f64,
    a: f64,
    b: f64,
}

/// The statistics scalars every partial shares: `n`, `Σ(x − xmax)`, `x0`, `xmax` (log2).
fn range_scalars(c: &RowChunk, range: &LogitRange) -> [f64; 4] {
    let n = c.keys.len() as f64;
    let sum = if c.keys.is_empty() {
        0.0
    } else {
        LOG2_E * (range.sum - n * range.max)
    };
    let x0 = c
        .keys
        .first()
        .filter(|&&j| j == 0)
        .map_or(f64::NEG_INFINITY, |_| c.logits[0]);
    [n, sum, x0 * LOG2_E, range.max * LOG2_E]
}

/// The fixture (q_len 1, no mask: every key of a sequence is visible), its chunks per
/// (sequence, head) and the kernel's partials for `norm` with statistics on.
struct Case {
    f: Fixture,
    family: Family,
    partials: Vec<f32>,
}

impl Case {
    fn new(seed: u64, norm: Normaliser, family: Family) -> Self {
        let device = common::emulator();
        let executor = device.executor().expect("the emulator runs kernels");
        let shape = Shape {
            dtype: family.dtype,
            dim: DIM,
            page_size: 16,
            q_len: 1,
            heads: HEADS,
            kv_heads: KV_HEADS,
        };
        let f = Fixture::new(seed, shape);
        let opts = AttentionOptions {
            normaliser: norm,
            stats: true,
            kernel: family.choice,
            ..AttentionOptions::default()
        };
        let call = DecodeCall {
            plan: Some(SplitPlan {
                splits: SPLITS,
                chunk: CHUNK,
            }),
            ..DecodeCall::default()
        };
        let partials = chunk_partials(executor, &f.paged(), &opts, &call).unwrap();
        assert_eq!(partials.len(), SPLITS * LENS.len() * HEADS * (DIM + 8));
        Case {
            f,
            family,
            partials,
        }
    }

    /// Chunk `c` of sequence `b`, query head `h`.
    fn row_chunk(&self, b: usize, h: usize, c: usize) -> RowChunk {
        let q = self.f.q.to_f64();
        let qh = &q[(b * HEADS + h) * DIM..][..DIM];
        let kvh = h / (HEADS / KV_HEADS);
        fn at(rows: &[f64], j: usize, kvh: usize) -> &[f64] {
            &rows[(j * KV_HEADS + kvh) * DIM..][..DIM]
        }
        let split = SplitPlan {
            splits: SPLITS,
            chunk: CHUNK,
        };
        let keys: Vec<usize> = split.chunk_range(c, 0..LENS[b]).collect();
        // keys and values as the kernel reads them: rounded to the dtype
        let dtype = self.family.dtype;
        let round = |x: &[f64]| Tensor::from_f64(dtype, x, &[x.len()]).unwrap().to_f64();
        let scale = 1.0 / (DIM as f64).sqrt();
        let logits = keys
            .iter()
            .map(|&j| {
                scale
                    * round(at(&self.f.keys[b], j, kvh))
                        .iter()
                        .zip(qh)
                        .map(|(k, q)| k * q)
                        .sum::<f64>()
            })
            .collect();
        let values = keys
            .iter()
            .flat_map(|&j| round(at(&self.f.values[b], j, kvh)))
            .collect();
        RowChunk {
            keys,
            logits,
            values,
        }
    }

    /// Every slot against `want(b, h, chunk)`; `label` names the normaliser.
    fn check(&self, label: &str, want: impl Fn(usize, usize, &RowChunk) -> (Slot, LogitRange)) {
        let row = DIM + 8;
        for b in 0..LENS.len() {
            for h in 0..HEADS {
                for c in 0..SPLITS {
                    let rc = self.row_chunk(b, h, c);
                    let (w, range) = want(b, h, &rc);
                    let got = &self.partials[((c * LENS.len() + b) * HEADS + h) * row..][..row];
                    let here = format!(
                        "{label} on {:?} seq {b} head {h} chunk {c}: {got:?}",
                        self.family.choice
                    );
                    let tol = self.family.tol;
                    let [n, sum, x0, xmax] = range_scalars(&rc, &range);
                    let scalars = [w.m2, w.l, w.a, w.b, n, sum, x0, xmax];
                    for (i, (&g, want)) in got[DIM..].iter().zip(scalars).enumerate() {
                        assert!(close(g, want, tol), "scalar {i} = {g}, want {want}: {here}");
                    }
                    for (i, (&g, &want)) in got[..DIM].iter().zip(&w.acc).enumerate() {
                        assert!(close(g, want, tol), "acc[{i}] = {g}, want {want}: {here}");
                    }
                }
            }
        }
    }
}

/// `|got − want| ≤ tol·(1 + |want|)` (against f64 on the dtype-rounded inputs), or both the
/// same infinity.
fn close(got: f32, want: f64, tol: f64) -> bool {
    let got = f64::from(got);
    (got == want && want.is_infinite()) || (got - want).abs() <= tol * (1.0 + want.abs())
}

#[test]
fn chunk_partials_match_the_reference_exp_partials() {
    // off_by_one's chunks run plain softmax (its sink enters in the combine): the same partial.
    for (k, norm) in [Normaliser::Softmax, Normaliser::OffByOne]
        .into_iter()
        .enumerate()
    {
        for family in FAMILIES {
            let case = Case::new(1100 + k as u64, norm, family);
            case.check(norm.name(), |_, _, rc| {
                let p = ExpPartial::of(&rc.chunk());
                let shift = if rc.keys.is_empty() { 0.0 } else { p.m };
                let slot = Slot {
                    m2: p.m * LOG2_E,
                    l: p.l,
                    a: p.l,               // A = Σw, w = e^(s − m)
                    b: p.t - shift * p.l, // B = Σw ln w = Σw·s − m·Σw
                    acc: p.acc,
                };
                (slot, p.range)
            });
        }
    }
}

#[test]
fn chunk_partials_match_the_reference_softpick_partial() {
    // Shifted by max(0, max s) in each chunk; l = Σ|N|, acc and A, B over relu(N).
    for family in FAMILIES {
        let case = Case::new(1110, Normaliser::Softpick, family);
        case.check("softpick", |_, _, rc| {
            let p = SoftpickPartial::of(&rc.chunk());
            let slot = Slot {
                m2: p.m * LOG2_E,
                l: p.l,
                a: p.pos,
                b: p.pos_log_pos,
                acc: p.acc,
            };
            (slot, p.range)
        });
    }
}

#[test]
fn chunk_partials_match_the_reference_sigmoid_partial() {
    // Absolute weights sigmoid(s − ln len): nothing to shift (m = 0), no denominator (l = 0).
    for family in FAMILIES {
        let case = Case::new(1120, Normaliser::Sigmoid { bias: None }, family);
        case.check("sigmoid", |b, _, rc| {
            let bias = -(LENS[b].max(1) as f64).ln();
            let p = AbsolutePartial::of(&rc.chunk(), |s| 1.0 / (1.0 + (-(s + bias)).exp()));
            let slot = Slot {
                m2: 0.0,
                l: 0.0,
                a: p.w_sum,
                b: p.w_log_w,
                acc: p.acc,
            };
            (slot, p.range)
        });
    }
}

#[test]
fn chunk_partials_match_the_reference_clipped_pass_two_partial() {
    // The partials of chunk pass 2, after combine pass 1 left the row's lse in every slot's m:
    // weights clip((ζ − γ)·e^(s − lse) + γ, 0, 1) with the lse of the whole row.
    let (gamma, zeta) = (-0.03f32, 1.0f32);
    for family in FAMILIES {
        let case = Case::new(1130, Normaliser::Clipped { gamma, zeta }, family);
        let (gamma, zeta) = (f64::from(gamma), f64::from(zeta));
        case.check("clipped", |b, h, rc| {
            let whole: Vec<f64> = (0..SPLITS)
                .flat_map(|c| case.row_chunk(b, h, c).logits)
                .collect();
            let max = whole.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + whole.iter().map(|s| (s - max).exp()).sum::<f64>().ln();
            let weight = |s: f64| ((zeta - gamma) * (s - lse).exp() + gamma).clamp(0.0, 1.0);
            let p = AbsolutePartial::of(&rc.chunk(), weight);
            let slot = Slot {
                m2: if whole.is_empty() {
                    f64::NEG_INFINITY
                } else {
                    lse * LOG2_E
                },
                l: 0.0,
                a: p.w_sum,
                b: p.w_log_w,
                acc: p.acc,
            };
            (slot, p.range)
        });
    }
}
