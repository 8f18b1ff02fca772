//! The probe's report of one forward pass (docs/contract.md §8): per layer and head the attention
//! readings, per hidden state the kurtosis (per channel and whole tensor), inf-norm, outlier
//! channels by the three rules and massive activations with their positions.

use serde::Serialize;

use crate::probe::attention_layer::HeadProbe;
use crate::probe::hidden::MassiveActivation;
use crate::probe::trace::{HiddenTrace, Trace};
use crate::stats::report::{AttentionReport, OutlierChannels, SINK_EPSILON};

/// One hidden state, summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HiddenSummary {
    /// Pearson kurtosis (non-excess) over all values (Bondarenko et al. 2023).
    pub tensor_kurtosis: Option<f64>,
    /// The largest per-channel kurtosis and its channel.
    pub max_channel_kurtosis: Option<(usize, f64)>,
    /// Mean of the resolved per-channel kurtoses.
    pub mean_channel_kurtosis: Option<f64>,
    /// Every channel's kurtosis over the tokens (`None` where f32 power sums cannot resolve it).
    pub channel_kurtosis: Vec<Option<f64>>,
    /// Largest |x| (inf-norm of the state).
    pub inf_norm: f64,
    /// Median |x| from the log2 histogram (within a factor √2).
    pub median_abs: Option<f64>,
    /// Outlier channels by the three rules.
    pub outliers: OutlierChannels,
    /// Massive activations with positions, largest first.
    pub massive: Vec<MassiveActivation>,
    /// Tokens with the largest inf-norm, `(token, |x|)`.
    pub top_tokens: Vec<(usize, f64)>,
    /// Log2 histogram of |x| (bin `b`: `2^(b−24) ≤ |x| < 2^(b−23)`, ends open).
    pub log2_hist: Vec<u64>,
}

impl HiddenSummary {
    /// Summarises one traced hidden state.
    pub fn new(h: &HiddenTrace) -> Self {
        let t = &h.probe.report.tensor;
        let resolved: Vec<f64> = t.channels.iter().filter_map(|c| c.kurtosis).collect();
        HiddenSummary {
            tensor_kurtosis: t.tensor_kurtosis,
            max_channel_kurtosis: t.max_kurtosis,
            mean_channel_kurtosis: (!resolved.is_empty())
                .then(|| resolved.iter().sum::<f64>() / resolved.len() as f64),
            channel_kurtosis: t.channels.iter().map(|c| c.kurtosis).collect(),
            inf_norm: t.max_inf_norm,
            median_abs: t.median_abs,
            outliers: t.outliers.clone(),
            massive: h.probe.massive.clone(),
            top_tokens: h.probe.report.top_tokens.clone(),
            log2_hist: h.probe.log2_hist.clone(),
        }
    }
}

/// One layer: its attention heads and its output hidden state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerReport {
    /// Layer index from 0.
    pub layer: usize,
    /// Per head.
    pub heads: Vec<HeadProbe>,
    /// Mean sink score over the heads.
    pub mean_sink_score: Option<f64>,
    /// Share of heads with sink score > 0.3 (`Sink₁^0.3`).
    pub sink_rate: Option<f64>,
    /// The same with row 0 left out (causal models only).
    pub sink_rate_without_row0: Option<f64>,
    /// Mean normalised entropy over heads.
    pub mean_entropy: Option<f64>,
    /// Whole-tensor kurtosis of the attention call's Q, K, V and O as the kernel counted them.
    pub qkvo_tensor_kurtosis: [Option<f64>; 4],
    /// The layer's output.
    pub hidden: HiddenSummary,
}

/// The report of one forward pass.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The embeddings' output (the input of layer 0).
    pub embeddings: HiddenSummary,
    /// One per layer.
    pub layers: Vec<LayerReport>,
}

impl ProbeReport {
    /// Derives the report of `trace`.
    pub fn new(trace: &Trace) -> Self {
        let layers = trace
            .attention
            .iter()
            .zip(trace.hidden.iter().skip(1))
            .enumerate()
            .map(|(layer, (a, h))| LayerReport {
                layer,
                mean_sink_score: mean(a.heads.iter().map(|h| h.sink_score)),
                sink_rate: rate(a.heads.iter().map(|h| h.sink_score)),
                sink_rate_without_row0: rate(a.heads.iter().map(|h| h.sink_score_without_row0)),
                mean_entropy: mean(
                    a.heads
                        .iter()
                        .map(|h| h.mean_entropy.or(h.mean_entropy_binned)),
                ),
                qkvo_tensor_kurtosis: AttentionReport::new(&a.stats)
                    .tensors
                    .map(|t| t.tensor_kurtosis),
                heads: a.heads.clone(),
                hidden: HiddenSummary::new(h),
            })
            .collect();
        ProbeReport {
            embeddings: trace
                .hidden
                .first()
                .map(HiddenSummary::new)
                .unwrap_or_else(empty_summary),
            layers,
        }
    }
}

fn empty_summary() -> HiddenSummary {
    HiddenSummary {
        tensor_kurtosis: None,
        max_channel_kurtosis: None,
        mean_channel_kurtosis: None,
        channel_kurtosis: Vec::new(),
        inf_norm: 0.0,
        median_abs: None,
        outliers: OutlierChannels::default(),
        massive: Vec::new(),
        top_tokens: Vec::new(),
        log2_hist: Vec::new(),
    }
}

/// Mean of the defined values (`None` when none is).
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Share of the defined values above [`SINK_EPSILON`].
fn rate(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().filter(|&&s| s > SINK_EPSILON).count() as f64 / v.len() as f64)
}
