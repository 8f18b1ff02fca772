//! JSON documents of the statistics: the raw counters under their names in docs/contract.md §5 next
//! to the derived report. The ABI structs are bindgen output and stay free of serde; these mirror
//! them.
//!
//! The documents implement [`serde::Serialize`]; render them with any serde format (the CLI
//! uses `serde_json::to_string_pretty`). They do not hand out `serde_json::Value`s: its
//! `PartialEq<Value>` impls for integers make `vec == vec![(1..=16).sum()]`-style comparisons
//! ambiguous wherever `Value` is in scope.

use serde::Serialize;

use crate::abi::{QaChannelStats, QaHeadStats, QaTensorStats};
use crate::stats::report::{ActivationReport, AttentionReport};
use crate::stats::{ActivationStats, OutlierStats};

/// One query head's raw row statistics, plus its sink score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HeadJson {
    /// Query head.
    pub head: usize,
    /// Rows with at least one visible key.
    pub rows: u64,
    /// Σ over rows of the weight of the sequence's first key.
    pub first_key_mass: f64,
    /// Σ over rows of `e^{σ - lse}` (off-by-one and sink).
    pub virtual_sink_mass: f64,
    /// Rows by `max_j p_ij`, 16 bins over [0, 1].
    pub max_prob_hist: Vec<u64>,
    /// Rows by normalised entropy, 16 bins over [0, 1].
    pub entropy_hist: Vec<u64>,
    /// Rows by `max s - mean s`, bins of width 2, the last open.
    pub logit_range_hist: Vec<u64>,
    /// `first_key_mass / rows` (null without rows).
    pub sink_score: Option<f64>,
}

impl HeadJson {
    /// Mirrors head `head`'s counters.
    pub fn new(head: usize, h: &QaHeadStats) -> Self {
        HeadJson {
            head,
            rows: h.rows,
            first_key_mass: h.first_key_mass,
            virtual_sink_mass: h.virtual_sink_mass,
            max_prob_hist: h.max_prob_hist.to_vec(),
            entropy_hist: h.entropy_hist.to_vec(),
            logit_range_hist: h.logit_range_hist.to_vec(),
            sink_score: (h.rows > 0).then(|| h.first_key_mass / h.rows as f64),
        }
    }
}

/// One tensor's raw counters: per-channel arrays and the tensor histogram.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorJson {
    /// Per channel, the largest finite |x|.
    pub absmax: Vec<f32>,
    /// Per channel Σx.
    pub sum: Vec<f64>,
    /// Per channel Σx².
    pub sum_sq: Vec<f64>,
    /// Per channel Σx³ (docs/contract.md §5: the central kurtosis needs it).
    pub sum_3rd: Vec<f64>,
    /// Per channel Σx⁴.
    pub sum_4th: Vec<f64>,
    /// Per channel, finite elements.
    pub count: Vec<u64>,
    /// Finite non-zero elements by `clamp(floor(log2|x|) + 24, 0, 39)`.
    pub log2_hist: Vec<u64>,
    /// Exact zeros.
    pub zeros: u64,
    /// NaN and ±inf.
    pub non_finite: u64,
}

impl TensorJson {
    /// Mirrors one tensor's counters.
    pub fn new(channels: &[QaChannelStats], t: &QaTensorStats) -> Self {
        TensorJson {
            absmax: channels.iter().map(|c| c.absmax).collect(),
            sum: channels.iter().map(|c| c.sum).collect(),
            sum_sq: channels.iter().map(|c| c.sum_sq).collect(),
            sum_3rd: channels.iter().map(|c| c.sum_3rd).collect(),
            sum_4th: channels.iter().map(|c| c.sum_4th).collect(),
            count: channels.iter().map(|c| c.count).collect(),
            log2_hist: t.log2_hist.to_vec(),
            zeros: t.zeros,
            non_finite: t.non_finite,
        }
    }
}

/// The four tensors of an attention call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionTensorsJson {
    /// Queries.
    pub q: TensorJson,
    /// Keys.
    pub k: TensorJson,
    /// Values.
    pub v: TensorJson,
    /// Output (f32, before the gate).
    pub o: TensorJson,
}

/// `{ "heads": [...], "tensors": {"q","k","v","o"}, "report": {...} }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttentionStatsJson {
    /// Head dimension (channel `c = head * head_dim + dim`).
    pub head_dim: usize,
    /// Per query head.
    pub heads: Vec<HeadJson>,
    /// Per tensor.
    pub tensors: AttentionTensorsJson,
    /// Derived.
    pub report: AttentionReport,
}

impl AttentionStatsJson {
    /// Mirrors `stats` and derives its report.
    pub fn new(stats: &OutlierStats) -> Self {
        let t = |i: usize| TensorJson::new(&stats.channels[i], &stats.tensors[i]);
        AttentionStatsJson {
            head_dim: stats.head_dim,
            heads: stats
                .heads
                .iter()
                .enumerate()
                .map(|(i, h)| HeadJson::new(i, h))
                .collect(),
            tensors: AttentionTensorsJson {
                q: t(0),
                k: t(1),
                v: t(2),
                o: t(3),
            },
            report: AttentionReport::new(stats),
        }
    }
}

/// Raw counters, per-token absmax and the derived report of one activation tensor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivationStatsJson {
    /// `[tokens, channels]`.
    pub shape: [usize; 2],
    /// The counters.
    pub raw: TensorJson,
    /// Per token, the largest finite |x|.
    pub token_absmax: Vec<f32>,
    /// Derived.
    pub report: ActivationReport,
}

impl ActivationStatsJson {
    /// Mirrors `stats` and derives its report.
    pub fn new(stats: &ActivationStats) -> Self {
        ActivationStatsJson {
            shape: [stats.token_absmax.len(), stats.channels.len()],
            raw: TensorJson::new(&stats.channels, &stats.tensor),
            token_absmax: stats.token_absmax.clone(),
            report: ActivationReport::new(stats),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json<T: Serialize>(doc: &T) -> serde_json::Result<String> {
        serde_json::to_string_pretty(doc)
    }

    #[test]
    fn attention_json_has_the_spec_names() {
        let mut s = OutlierStats::zeroed(2, 1, 2);
        s.heads[1].rows = 4;
        s.heads[1].first_key_mass = 2.0;
        s.heads[1].entropy_hist[3] = 4;
        s.channels[1][1].absmax = 7.5;
        s.channels[1][1].count = 3;
        s.channels[1][1].sum_3rd = -2.5;
        s.tensors[3].log2_hist[39] = 5;
        s.tensors[3].zeros = 2;
        let v: serde_json::Value =
            serde_json::from_str(&to_json(&AttentionStatsJson::new(&s)).unwrap()).unwrap();
        assert_eq!(v["heads"].as_array().unwrap().len(), 2);
        assert_eq!(v["heads"][1]["rows"], 4);
        assert_eq!(v["heads"][1]["sink_score"], 0.5);
        assert_eq!(v["heads"][0]["sink_score"], serde_json::Value::Null);
        assert_eq!(v["heads"][1]["entropy_hist"][3], 4);
        assert_eq!(v["heads"][1]["max_prob_hist"].as_array().unwrap().len(), 16);
        assert_eq!(v["tensors"]["k"]["absmax"][1], 7.5);
        assert_eq!(v["tensors"]["k"]["count"][1], 3);
        assert_eq!(v["tensors"]["k"]["sum_3rd"][1], -2.5);
        assert_eq!(v["tensors"]["k"]["sum_3rd"][0], 0.0);
        assert_eq!(v["tensors"]["q"]["sum_4th"].as_array().unwrap().len(), 4);
        assert_eq!(v["tensors"]["o"]["log2_hist"][39], 5);
        assert_eq!(v["tensors"]["o"]["zeros"], 2);
        assert_eq!(v["report"]["sink_rate"], 1.0);
        assert_eq!(v["report"]["tensors"]["k"]["outliers"]["llm_int8"][0], 1);
    }

    #[test]
    fn activation_json_keeps_token_absmax() {
        let mut s = ActivationStats::zeroed(3, 2);
        s.token_absmax = vec![0.5, 2.0, 0.0];
        let v: serde_json::Value =
            serde_json::from_str(&to_json(&ActivationStatsJson::new(&s)).unwrap()).unwrap();
        assert_eq!(v["shape"], serde_json::json!([3, 2]));
        assert_eq!(v["token_absmax"][1], 2.0);
        assert_eq!(v["raw"]["log2_hist"].as_array().unwrap().len(), 40);
        assert_eq!(v["report"]["top_tokens"][0], serde_json::json!([1, 2.0]));
    }
}
