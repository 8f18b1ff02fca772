//! One layer's attention through quietattn (any [`Device`], statistics on) and what the probe
//! reads from it per head (docs/contract.md §8): sink score with and without row 0, the value-norm
//! ratio, and the attention map rebuilt from the kernel's `lse`.

use serde::Serialize;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::probe::matrix::Matrix;
use crate::reference::normaliser::{RowParams, row_weights};
use crate::stats::OutlierStats;
use crate::stats::report::HeadReport;
use crate::tensor::{DataRef, TensorView};
use crate::variant::{AttentionOptions, Normaliser};
use crate::{AttentionInputs, TensorData};

/// Head layout of an attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadLayout {
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (GQA when fewer than `heads`).
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
}

/// What the probe reports of one head at one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadProbe {
    /// Query head.
    pub head: usize,
    /// Mean weight on key 0 over all query rows (the kernel's `first_key_mass / rows`).
    pub sink_score: Option<f64>,
    /// The same without row 0, which in a causal model can only look at key 0 (`None` for
    /// encoders, where every row sees every key).
    pub sink_score_without_row0: Option<f64>,
    /// Mean normalised entropy `H_i / ln(n_i)` of the rows, from the weights rebuilt out of
    /// the kernel's `lse` (softmax runs; `None` otherwise).
    pub mean_entropy: Option<f64>,
    /// The same read from the kernel's 16-bin entropy histogram (bin mid-points: within 1/32).
    pub mean_entropy_binned: Option<f64>,
    /// `‖v_0‖ ÷ mean_j ‖v_j‖` of the head's value vectors (its KV head under GQA).
    pub value_norm_ratio: Option<f64>,
}

/// One layer's attention output and statistics.
#[derive(Clone, Debug)]
pub struct AttentionLayer {
    /// `[tokens, heads · head_dim]`.
    pub output: Matrix,
    /// The raw counters of the call.
    pub stats: OutlierStats,
    /// Per head.
    pub heads: Vec<HeadProbe>,
    /// `[heads, tokens, tokens]` weights `e^{s − lse}` (softmax only: the map the model was
    /// trained with), rebuilt from the kernel's `lse`; masked entries are 0.
    pub map: Option<Vec<f32>>,
}

/// Runs attention over `q [T, H·d]`, `k`, `v [T, Hkv·d]` on `device` with statistics on.
pub fn attend(
    device: &Device,
    layout: HeadLayout,
    q: &Matrix,
    k: &Matrix,
    v: &Matrix,
    options: &AttentionOptions,
) -> Result<AttentionLayer> {
    let tokens = q.rows;
    let HeadLayout {
        heads,
        kv_heads,
        head_dim,
    } = layout;
    let inputs = AttentionInputs::new(
        heads_view(q, heads, head_dim)?,
        heads_view(k, kv_heads, head_dim)?,
        heads_view(v, kv_heads, head_dim)?,
    );
    let options = AttentionOptions {
        stats: true,
        ..options.clone()
    };
    let out = crate::attention(device, &inputs, &options)?;
    let stats = out
        .stats
        .ok_or_else(|| Error::Unsupported("attention returned no statistics".into()))?;
    let lse: Vec<f64> = out.lse.to_f64();
    let values = match &out.o.data {
        TensorData::F32(o) => o.clone(),
        _ => out.o.to_f64().iter().map(|&x| x as f32).collect(),
    };
    let output = Matrix::new(tokens, heads * head_dim, values)?;
    let logits = Logits::new(layout, q, k, options.scale);
    let mut heads_out: Vec<HeadProbe> = (0..heads)
        .map(|h| head_probe(h, &stats, &logits, v, &options))
        .collect();
    let map = (options.normaliser == Normaliser::Softmax).then(|| logits.map(&lse, options.causal));
    if let Some(m) = &map {
        for (h, head) in heads_out.iter_mut().enumerate() {
            head.mean_entropy = Some(mean_normalised_entropy(m, h, tokens, options.causal));
        }
    }
    Ok(AttentionLayer {
        output,
        stats,
        heads: heads_out,
        map,
    })
}

/// `[tokens, heads · d]` seen as the `[1, tokens, heads, d]` tensor attention takes.
fn heads_view(m: &Matrix, heads: usize, head_dim: usize) -> Result<TensorView<'_>> {
    TensorView::contiguous(DataRef::F32(&m.data), &[1, m.rows, heads, head_dim])
}

/// Scaled logits `s_ij = scale · q_i·k_j` of every head, on the host in f64.
struct Logits<'a> {
    layout: HeadLayout,
    q: &'a Matrix,
    k: &'a Matrix,
    scale: f64,
}

impl<'a> Logits<'a> {
    fn new(layout: HeadLayout, q: &'a Matrix, k: &'a Matrix, scale: Option<f32>) -> Self {
        let scale = scale.map_or(1.0 / (layout.head_dim as f64).sqrt(), f64::from);
        Logits {
            layout,
            q,
            k,
            scale,
        }
    }

    fn kv_head(&self, h: usize) -> usize {
        h / (self.layout.heads / self.layout.kv_heads.max(1)).max(1)
    }

    fn at(&self, h: usize, i: usize, j: usize) -> f64 {
        let d = self.layout.head_dim;
        let kh = self.kv_head(h);
        let qi = &self.q.row(i)[h * d..(h + 1) * d];
        let kj = &self.k.row(j)[kh * d..(kh + 1) * d];
        let dot: f64 = qi
            .iter()
            .zip(kj)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum();
        self.scale * dot
    }

    fn map(&self, lse: &[f64], causal: bool) -> Vec<f32> {
        let (heads, t) = (self.layout.heads, self.q.rows);
        let mut out = vec![0.0f32; heads * t * t];
        for h in 0..heads {
            for i in 0..t {
                let visible = if causal { i + 1 } else { t };
                for j in 0..visible {
                    out[(h * t + i) * t + j] = (self.at(h, i, j) - lse[h * t + i]).exp() as f32;
                }
            }
        }
        out
    }
}

fn head_probe(
    h: usize,
    stats: &OutlierStats,
    logits: &Logits<'_>,
    v: &Matrix,
    options: &AttentionOptions,
) -> HeadProbe {
    let raw = &stats.heads[h];
    let report = HeadReport::new(h, raw);
    let without_row0 = options.causal.then(|| {
        // Row 0 sees key 0 alone; its weight there is the normaliser of that one logit.
        let params = RowParams {
            sink: 0.0,
            bias: 0.0,
        };
        let w00 = row_weights(&options.normaliser, &[logits.at(h, 0, 0)], params).weights[0];
        let rows = raw.rows.saturating_sub(1);
        (rows > 0).then(|| (raw.first_key_mass - w00) / rows as f64)
    });
    HeadProbe {
        head: h,
        sink_score: report.sink_score,
        sink_score_without_row0: without_row0.flatten(),
        mean_entropy: None,
        mean_entropy_binned: report.mean_entropy,
        value_norm_ratio: value_norm_ratio(v, logits.kv_head(h), logits.layout.head_dim),
    }
}

/// `‖v_0‖ ÷ mean_j ‖v_j‖` of KV head `kh`.
fn value_norm_ratio(v: &Matrix, kh: usize, d: usize) -> Option<f64> {
    let norm = |j: usize| {
        v.row(j)[kh * d..(kh + 1) * d]
            .iter()
            .map(|&x| f64::from(x).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let mean = (0..v.rows).map(norm).sum::<f64>() / v.rows as f64;
    (v.rows > 0 && mean > 0.0).then(|| norm(0) / mean)
}

/// Mean over the rows of head `h` of `H_i / ln(n_i)` (0 for a row with one visible key).
fn mean_normalised_entropy(map: &[f32], h: usize, t: usize, causal: bool) -> f64 {
    let total: f64 = (0..t)
        .map(|i| {
            let n = if causal { i + 1 } else { t };
            if n < 2 {
                return 0.0;
            }
            let row = &map[(h * t + i) * t..(h * t + i) * t + n];
            let entropy: f64 = row
                .iter()
                .map(|&p| f64::from(p))
                .filter(|&p| p > 0.0)
                .map(|p| -p * p.ln())
                .sum();
            entropy / (n as f64).ln()
        })
        .sum();
    total / t.max(1) as f64
}
