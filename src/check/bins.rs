//! The exact (f64) values behind every histogram the kernels fill, turned into the admissible
//! placements of [`HistogramBounds`]: docs/contract.md §6's neighbouring bin for a value within the
//! tolerance of a bin edge.

use crate::reference::{RowParams, row_stats::normalised_entropy, row_weights};
use crate::stats::compare::{HeadBounds, HistogramBounds};
use crate::stats::{logit_range_bin, unit_bin};
use crate::{AttentionInputs, AttentionOptions, AttentionProblem, Normaliser};

/// docs/contract.md §6's edge tolerance of the row statistics (max weight, entropy, logit range),
/// in their own units.
pub const ROW_EDGE_TOL: f64 = 1e-4;

/// Adds `x` to a histogram whose bin function is `bin`, with every bin `[x - tol, x + tol]`
/// reaches admissible.
fn add(bounds: &mut HistogramBounds, bin: fn(f64) -> usize, x: f64, tol: f64) {
    bounds.add(bin(x), bin(x - tol), bin(x + tol));
}

/// Exact row statistics of every head (rows with a visible key), recomputed from the rounded
/// inputs with the reference's normaliser and entropy definitions.
pub fn head_bins(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
) -> Vec<HeadBounds> {
    let bins = crate::abi::QA_ROW_HIST_BINS as usize;
    let mut out: Vec<HeadBounds> = (0..problem.heads)
        .map(|_| HeadBounds {
            max_prob: HistogramBounds::new(bins),
            entropy: HistogramBounds::new(bins),
            logit_range: HistogramBounds::new(bins),
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
                add(&mut bins.max_prob, unit_bin, max_p, ROW_EDGE_TOL);
                add(&mut bins.entropy, unit_bin, ent, ROW_EDGE_TOL);
                add(&mut bins.logit_range, logit_range_bin, range, ROW_EDGE_TOL);
            }
        }
    }
    out
}
