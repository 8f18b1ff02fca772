//! The exact (f64) values behind every histogram the kernels fill, so that the comparison can
//! allow SPEC §6's neighbouring bin for a value within 1e-4 of a bin edge.

use quietattn::reference::{RowParams, row_stats::normalised_entropy, row_weights};
use quietattn::stats::{logit_range_bin, unit_bin};
use quietattn::{AttentionInputs, AttentionOptions, AttentionProblem, Normaliser};

/// A histogram's counts that are certain, and the values sitting on the edge between bins
/// `b` and `b + 1` (either bin is right for them).
#[derive(Clone, Debug, Default)]
pub struct Binned {
    pub fixed: Vec<u64>,
    pub edge: Vec<u64>,
}

impl Binned {
    pub fn new(bins: usize) -> Self {
        Binned {
            fixed: vec![0; bins],
            edge: vec![0; bins - 1],
        }
    }

    /// Adds a value whose bin is `bin`; `pos` is its position in bin units (edges at integers).
    fn add(&mut self, bin: usize, pos: f64, slack: f64) {
        let nearest = pos.round();
        let last = self.fixed.len() as f64 - 1.0;
        if (pos - nearest).abs() <= slack && nearest >= 1.0 && nearest <= last {
            self.edge[nearest as usize - 1] += 1;
        } else {
            self.fixed[bin] += 1;
        }
    }

    /// Whether `got` is one way of placing the edge values: walk the bins left to right; the
    /// edge values left over from bin b-1 must go to bin b, the rest of bin b comes from edge b.
    pub fn admits(&self, got: &[u64]) -> bool {
        let mut from_left = 0i64;
        for (b, &g) in got.iter().enumerate() {
            let need = g as i64 - self.fixed[b] as i64 - from_left;
            let avail = self.edge.get(b).copied().unwrap_or(0) as i64;
            if need < 0 || need > avail {
                return false;
            }
            from_left = avail - need;
        }
        from_left == 0
    }
}

/// Per head: the max-probability, entropy and logit-range histograms as exact values dictate.
pub struct HeadBins {
    pub max_prob: Binned,
    pub entropy: Binned,
    pub logit_range: Binned,
}

/// Exact row statistics of every head (rows with a visible key), recomputed from the rounded
/// inputs with the reference's normaliser and entropy definitions.
pub fn head_bins(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
) -> Vec<HeadBins> {
    let unit = |n| Binned::new(n);
    let mut out: Vec<HeadBins> = (0..problem.heads)
        .map(|_| HeadBins {
            max_prob: unit(16),
            entropy: unit(16),
            logit_range: unit(16),
        })
        .collect();
    let d = problem.head_dim;
    for (b, seq) in problem.seqs.iter().enumerate() {
        for (h, bins) in out.iter_mut().enumerate() {
            let kvh = h / problem.group_size();
            let params = RowParams {
                sink: match options.normaliser {
                    Normaliser::Sink => f64::from(inputs.sinks.map_or(0.0, |s| s[h])),
                    _ => 0.0,
                },
                bias: match options.normaliser {
                    Normaliser::Sigmoid { bias: Some(x) } => f64::from(x),
                    _ if seq.k_len > 0 => -(seq.k_len as f64).ln(),
                    _ => 0.0,
                },
            };
            for i in 0..seq.q_len {
                let logits: Vec<f64> = (0..seq.k_len)
                    .filter(|&j| AttentionProblem::visible(options, seq, i, j))
                    .map(|j| {
                        let qi = problem.token_index(b, seq.q_start, i, h);
                        let kj = problem.token_index(b, seq.k_start, j, kvh);
                        let dot: f64 = (0..d)
                            .map(|c| {
                                let (mut a, mut k) = (qi.clone(), kj.clone());
                                a.push(c);
                                k.push(c);
                                inputs.q.at(&a) * inputs.k.at(&k)
                            })
                            .sum();
                        let s = problem.scale * dot;
                        options
                            .softcap
                            .map_or(s, |c| f64::from(c) * (s / f64::from(c)).tanh())
                    })
                    .collect();
                if logits.is_empty() {
                    continue;
                }
                let row = row_weights(&options.normaliser, &logits, params);
                let max_p = row.weights.iter().copied().fold(0.0, f64::max);
                let sink_p = options
                    .normaliser
                    .has_virtual_sink()
                    .then(|| (params.sink - row.lse).exp());
                let ent = normalised_entropy(&options.normaliser, &row.weights, sink_p);
                let max_s = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let range = max_s - logits.iter().sum::<f64>() / logits.len() as f64;
                // 1e-4 of slack in value units: 16e-4 in sixteenths, 0.5e-4 in bins of width 2.
                bins.max_prob.add(unit_bin(max_p), max_p * 16.0, 16e-4);
                bins.entropy.add(unit_bin(ent), ent * 16.0, 16e-4);
                bins.logit_range
                    .add(logit_range_bin(range), range / 2.0, 0.5e-4);
            }
        }
    }
    out
}
