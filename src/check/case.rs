//! One check case = one attention call, with deterministic random inputs rounded to the case's
//! dtype (the reference then runs on exactly the values the kernel reads).

use crate::{AttentionInputs, AttentionOptions, DType, Gate, Normaliser, TensorData, TensorView};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which mask the case uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskKind {
    /// Every key visible.
    None,
    /// Bottom-right causal.
    Causal,
    /// Sliding window (6 left, 3 right).
    Window,
    /// Causal with a window of 5 to the left.
    CausalWindow,
    /// A sliding window wide enough (200 left, 60 right) that some key tiles are seen by every
    /// row of a 128-row block: the window's steady tiles.
    WideWindow,
}

/// Query heads / kv heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// 2 query heads, 2 kv heads.
    Mha,
    /// 4 query heads over 2 kv heads.
    Gqa,
    /// 3 query heads over 1 kv head.
    Mqa,
}

impl Layout {
    /// (query heads, kv heads).
    pub fn heads(self) -> (usize, usize) {
        match self {
            Layout::Mha => (2, 2),
            Layout::Gqa => (4, 2),
            Layout::Mqa => (3, 1),
        }
    }
}

/// Batched with one length pair, or varlen with ragged lengths (incl. empty and length 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Batching {
    /// Batch 2 with these lengths.
    Batched {
        /// Query tokens per sequence.
        q_len: usize,
        /// Key tokens per sequence.
        k_len: usize,
    },
    /// The sequences of [`VARLEN`] packed, with rows that belong to no sequence.
    Varlen,
    /// The sequences of [`VARLEN_LONG`] packed: several key tiles and query blocks each.
    VarlenLong,
}

/// Varlen (q_len, k_len) per sequence: q < k, an empty-query sequence, length 1, an empty one.
pub const VARLEN: [(usize, usize); 5] = [(5, 9), (0, 3), (1, 1), (0, 0), (33, 47)];

/// Varlen sequences longer than the tensor-core family's tiles (128 query rows, 64 keys): a
/// partial last key tile, full ones between, an empty and a short sequence between them.
pub const VARLEN_LONG: [(usize, usize); 3] = [(130, 230), (0, 5), (70, 200)];

/// One attention call of the check matrix.
#[derive(Clone, Debug)]
pub struct Case {
    /// The normaliser.
    pub norm: Normaliser,
    /// The mask.
    pub mask: MaskKind,
    /// Softcap 2.5 on the logits.
    pub softcap: bool,
    /// The output gate.
    pub gate: Gate,
    /// Element type of every tensor.
    pub dtype: DType,
    /// Head dimension.
    pub head_dim: usize,
    /// Heads.
    pub layout: Layout,
    /// Batched or varlen.
    pub batching: Batching,
    /// Statistics on.
    pub stats: bool,
    /// Strided storage: padded heads and tokens (pads hold NaN, which must never be read).
    pub padded: bool,
    /// Multiplies the logit scale (extreme-logit cases).
    pub scale: Option<f32>,
}

impl Case {
    /// One line naming every factor (fixed width, for tables).
    pub fn label(&self) -> String {
        let (h, kv) = self.layout.heads();
        let batching = match self.batching {
            Batching::Batched { q_len, k_len } => format!("b2 {q_len}x{k_len}"),
            Batching::Varlen => "varlen".into(),
            Batching::VarlenLong => "varlen-long".into(),
        };
        format!(
            "{:<10} {:<12} cap={} gate={:<19} {:<4} d{:<3} h{h}/{kv} {:<10} stats={} pad={}",
            self.norm.name(),
            format!("{:?}", self.mask),
            u8::from(self.softcap),
            self.gate.name(),
            self.dtype.name(),
            self.head_dim,
            batching,
            u8::from(self.stats),
            u8::from(self.padded),
        )
    }

    /// The attention options of the case.
    pub fn options(&self) -> AttentionOptions {
        AttentionOptions {
            normaliser: self.norm,
            causal: matches!(self.mask, MaskKind::Causal | MaskKind::CausalWindow),
            window: match self.mask {
                MaskKind::Window => Some((6, 3)),
                MaskKind::CausalWindow => Some((5, -1)),
                MaskKind::WideWindow => Some((200, 60)),
                _ => None,
            },
            softcap: self.softcap.then_some(2.5),
            gate: self.gate,
            scale: self.scale,
            stats: self.stats,
            kernel: Default::default(),
        }
    }
}

/// Storage of one tensor and how the view walks it.
pub struct Owned {
    /// The storage, pads included.
    pub data: TensorData,
    /// The view's shape.
    pub shape: Vec<usize>,
    /// The view's element strides.
    pub strides: Vec<usize>,
    /// Position of element 0.
    pub offset: usize,
}

impl Owned {
    /// The view (built to fit its storage, see [`CaseData::new`]).
    pub fn view(&self) -> TensorView<'_> {
        TensorView {
            data: self.data.as_ref(),
            shape: self.shape.clone(),
            strides: self.strides.clone(),
            offset: self.offset,
        }
    }
}

/// `[lead.., heads, dim]` filled by `value`, optionally with padding (NaN) after every head
/// row and every token, and a leading offset.
fn tensor(
    dtype: DType,
    lead: &[usize],
    heads: usize,
    dim: usize,
    padded: bool,
    value: &mut dyn FnMut() -> f64,
) -> Owned {
    let (head_pad, token_pad, offset) = if padded { (8, 16, 3) } else { (0, 0, 0) };
    let head_stride = dim + head_pad;
    let token_stride = heads * head_stride + token_pad;
    let tokens: usize = lead.iter().product();
    let len = offset + tokens * token_stride;
    let mut values = vec![f64::NAN; len];
    for t in 0..tokens {
        for h in 0..heads {
            for c in 0..dim {
                values[offset + t * token_stride + h * head_stride + c] = value();
            }
        }
    }
    let mut shape = lead.to_vec();
    shape.extend([heads, dim]);
    let mut strides = vec![0; lead.len()];
    let mut s = token_stride;
    for a in (0..lead.len()).rev() {
        strides[a] = s;
        s *= lead[a];
    }
    strides.extend([head_stride, 1]);
    Owned {
        data: TensorData::from_f64(dtype, &values),
        shape,
        strides,
        offset,
    }
}

/// Everything one call needs, owned.
pub struct CaseData {
    /// Queries.
    pub q: Owned,
    /// Keys.
    pub k: Owned,
    /// Values.
    pub v: Owned,
    /// Gate input, when the case has a gate.
    pub gate: Option<Owned>,
    /// One sink logit per query head.
    pub sinks: Vec<f32>,
    /// Cumulative query lengths (varlen; empty otherwise).
    pub cu_q: Vec<i32>,
    /// Cumulative key lengths (varlen; empty otherwise).
    pub cu_k: Vec<i32>,
}

impl CaseData {
    /// Inputs of `case` drawn from `seed` (uniform in ±2; gates in ±3; sinks in [-1, 2)).
    pub fn new(case: &Case, seed: u64) -> CaseData {
        let mut rng = StdRng::seed_from_u64(seed);
        let (heads, kv_heads) = case.layout.heads();
        let d = case.head_dim;
        let (q_lead, k_lead, cu_q, cu_k) = match case.batching {
            Batching::Batched { q_len, k_len } => (vec![2, q_len], vec![2, k_len], vec![], vec![]),
            Batching::Varlen | Batching::VarlenLong => {
                let seqs: &[(usize, usize)] = if case.batching == Batching::Varlen {
                    &VARLEN
                } else {
                    &VARLEN_LONG
                };
                let cum = |f: fn(&(usize, usize)) -> usize| {
                    let mut cu = vec![0i32];
                    for s in seqs {
                        cu.push(cu[cu.len() - 1] + f(s) as i32);
                    }
                    cu
                };
                let (cq, ck) = (cum(|s| s.0), cum(|s| s.1));
                // Every row belongs to a sequence: the validator rejects offsets that end early.
                let (tq, tk) = (cq[cq.len() - 1] as usize, ck[ck.len() - 1] as usize);
                (vec![tq], vec![tk], cq, ck)
            }
        };
        let mut val = || rng.random_range(-2.0..2.0);
        let q = tensor(case.dtype, &q_lead, heads, d, case.padded, &mut val);
        let k = tensor(case.dtype, &k_lead, kv_heads, d, case.padded, &mut val);
        let v = tensor(case.dtype, &k_lead, kv_heads, d, case.padded, &mut val);
        let gate = (case.gate != Gate::None).then(|| {
            let mut g = || rng.random_range(-3.0..3.0);
            let mut lead = q_lead.clone();
            if case.gate.is_elementwise() {
                tensor(case.dtype, &lead, heads, d, case.padded, &mut g)
            } else {
                lead.push(heads);
                let vals: Vec<f64> = (0..lead.iter().product()).map(|_| g()).collect();
                let strides = crate::tensor::contiguous_strides(&lead);
                Owned {
                    data: TensorData::from_f64(case.dtype, &vals),
                    shape: lead,
                    strides,
                    offset: 0,
                }
            }
        });
        let sinks = (0..heads)
            .map(|_| rng.random_range(-1.0..2.0) as f32)
            .collect();
        CaseData {
            q,
            k,
            v,
            gate,
            sinks,
            cu_q,
            cu_k,
        }
    }

    /// The inputs borrowing this data.
    pub fn inputs(&self) -> AttentionInputs<'_> {
        let mut inputs = AttentionInputs::new(self.q.view(), self.k.view(), self.v.view());
        inputs.sinks = Some(&self.sinks);
        inputs.gate = self.gate.as_ref().map(Owned::view);
        if !self.cu_q.is_empty() {
            inputs.cu_seqlens_q = Some(&self.cu_q);
            inputs.cu_seqlens_k = Some(&self.cu_k);
        }
        inputs
    }
}

/// Overwrites element `i` of an owned tensor's storage (non-finite and extreme inputs).
pub fn set(o: &mut Owned, i: usize, x: f64) {
    match &mut o.data {
        TensorData::F32(v) => v[i] = x as f32,
        TensorData::F16(v) => v[i] = half::f16::from_f64(x),
        TensorData::BF16(v) => v[i] = half::bf16::from_f64(x),
    }
}
