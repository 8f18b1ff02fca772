//! The reference driver: every row of every (sequence, head) materialised in f64, literally.

use crate::error::Result;
use crate::problem::{AttentionInputs, AttentionProblem, Sequence};
use crate::stats::OutlierStats;
use crate::tensor::TensorView;
use crate::variant::{AttentionOptions, Gate, Normaliser};

use super::logit_error::{RowLogits, logit_error, o_error};
use super::normaliser::{RowParams, masked_lse, row_weights};
use super::{row_stats, tensor_stats};

/// Tensor slots of [`OutlierStats`] (ABI order).
const Q: usize = 0;
const K: usize = 1;
const V: usize = 2;
const O: usize = 3;

/// The raw results of [`run`]: `o` and `lse` row-major in the problem's shapes, and the stats.
pub(super) struct Computed {
    pub o: Vec<f64>,
    pub o_logit_error: Vec<f64>,
    pub lse: Vec<f64>,
    pub stats: OutlierStats,
}

/// Computes docs/contract.md §1–5 for an already validated `problem`.
pub(super) fn run(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
) -> Result<Computed> {
    let (heads, d) = (problem.heads, problem.head_dim);
    let o_len = crate::tensor::checked_numel(&problem.o_shape())?;
    let lse_len = crate::tensor::checked_numel(&problem.lse_shape())?;
    let mut o = vec![0.0; o_len];
    let mut o_logit_error = vec![0.0; o_len];
    // Varlen rows outside every sequence are never computed; they read like fully masked rows.
    // (Batched problems have none: every lse entry is overwritten below.)
    let mut lse = vec![0.0; lse_len];
    if problem.varlen {
        for (h, chunk) in lse.chunks_mut(problem.total_q.max(1)).enumerate() {
            let params = row_params(inputs, options, problem, 0, h);
            chunk.fill(masked_lse(&options.normaliser, params));
        }
    }
    let mut stats = OutlierStats::zeroed(heads, problem.kv_heads, d);

    for (b, seq) in problem.seqs.iter().enumerate() {
        let kv = gather_kv(inputs, problem, b, seq, &mut stats);
        for h in 0..heads {
            let params = row_params(inputs, options, problem, b, h);
            let (keys, values) = &kv[h / problem.group_size()];
            for i in 0..seq.q_len {
                let q_row = gather(&inputs.q, problem, b, seq.q_start, i, h);
                tensor_stats::add_row(&mut stats.channels[Q], &mut stats.tensors[Q], h, &q_row);

                let visible: Vec<usize> = (0..seq.k_len)
                    .filter(|&j| AttentionProblem::visible(options, seq, i, j))
                    .collect();
                let logits: Vec<f64> = visible
                    .iter()
                    .map(|&j| logit(options, problem.scale, &q_row, &keys[j]))
                    .collect();
                let row = row_weights(&options.normaliser, &logits, params);

                // o_i = Σ_j p_ij v_j over the visible keys only (masked keys contribute nothing).
                let mut out = vec![0.0; d];
                for (&j, &w) in visible.iter().zip(&row.weights) {
                    for (acc, &x) in out.iter_mut().zip(&values[j]) {
                        *acc += w * x;
                    }
                }
                let errors: Vec<f64> = visible
                    .iter()
                    .zip(&logits)
                    .map(|(&j, &s)| logit_error(problem.scale, &q_row, &keys[j], s))
                    .collect();
                let value_rows: Vec<&[f64]> =
                    visible.iter().map(|&j| values[j].as_slice()).collect();
                let keys_of_row = RowLogits {
                    logits: &logits,
                    errors: &errors,
                    values: &value_rows,
                };
                let mut out_error = o_error(&options.normaliser, params, &keys_of_row, &row, &out);
                tensor_stats::add_row(&mut stats.channels[O], &mut stats.tensors[O], h, &out);
                if !visible.is_empty() {
                    let r = row_stats::Row {
                        keys: &visible,
                        logits: &logits,
                        weights: &row.weights,
                        lse: row.lse,
                        sink: params.sink,
                    };
                    row_stats::add_row(&mut stats.heads[h], &options.normaliser, &r);
                }
                apply_gate(inputs, options.gate, problem, (b, seq, i, h), &mut out);
                // The gate factors are positive: they scale o's error as they scale o.
                apply_gate(
                    inputs,
                    options.gate,
                    problem,
                    (b, seq, i, h),
                    &mut out_error,
                );

                let base = o_offset(problem, b, seq, i, h);
                o[base..base + d].copy_from_slice(&out);
                o_logit_error[base..base + d].copy_from_slice(&out_error);
                lse[problem.lse_index(b, h, i)] = row.lse;
            }
        }
    }
    Ok(Computed {
        o,
        o_logit_error,
        lse,
        stats,
    })
}

/// `s = scale·(q·k)`, then the softcap `c·tanh(s/c)` when one is set (docs/contract.md §2).
fn logit(options: &AttentionOptions, scale: f64, q: &[f64], k: &[f64]) -> f64 {
    let s = scale * q.iter().zip(k).map(|(a, b)| a * b).sum::<f64>();
    match options.softcap {
        Some(c) => {
            let c = f64::from(c);
            c * (s / c).tanh()
        }
        None => s,
    }
}

/// The sink logit of head `h` and the sigmoid bias of sequence `b`.
fn row_params(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
    b: usize,
    h: usize,
) -> RowParams {
    let sink = match options.normaliser {
        Normaliser::Sink => inputs
            .sinks
            .and_then(|s| s.get(h))
            .map_or(0.0, |&x| f64::from(x)),
        _ => 0.0,
    };
    let bias = match options.normaliser {
        Normaliser::Sigmoid { bias: Some(x) } => f64::from(x),
        // -ln(kv_len) of this sequence; a sequence without keys has no row that uses it.
        _ => match problem.seqs.get(b) {
            Some(seq) if seq.k_len > 0 => -(seq.k_len as f64).ln(),
            _ => 0.0,
        },
    };
    RowParams { sink, bias }
}

/// The key rows and the value rows of one (sequence, kv head), each `head_dim` long.
type KvRows = (Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Gathers the K and V rows of sequence `b`, per kv head, counting each element once.
fn gather_kv(
    inputs: &AttentionInputs<'_>,
    problem: &AttentionProblem,
    b: usize,
    seq: &Sequence,
    stats: &mut OutlierStats,
) -> Vec<KvRows> {
    (0..problem.kv_heads)
        .map(|g| {
            let mut keys = Vec::with_capacity(seq.k_len);
            let mut values = Vec::with_capacity(seq.k_len);
            for j in 0..seq.k_len {
                let k = gather(&inputs.k, problem, b, seq.k_start, j, g);
                let v = gather(&inputs.v, problem, b, seq.k_start, j, g);
                tensor_stats::add_row(&mut stats.channels[K], &mut stats.tensors[K], g, &k);
                tensor_stats::add_row(&mut stats.channels[V], &mut stats.tensors[V], g, &v);
                keys.push(k);
                values.push(v);
            }
            (keys, values)
        })
        .collect()
}

/// The `head_dim` elements of token `pos` (of the sequence starting at `start`), head `h`.
fn gather(
    t: &TensorView<'_>,
    problem: &AttentionProblem,
    b: usize,
    start: usize,
    pos: usize,
    h: usize,
) -> Vec<f64> {
    let mut index = problem.token_index(b, start, pos, h);
    index.push(0);
    let last = index.len() - 1;
    (0..problem.head_dim)
        .map(|c| {
            index[last] = c;
            t.at(&index)
        })
        .collect()
}

/// Multiplies the row by the gate factor(s) of docs/contract.md §4 (after normalisation and O
/// stats).
fn apply_gate(
    inputs: &AttentionInputs<'_>,
    gate: Gate,
    problem: &AttentionProblem,
    (b, seq, i, h): (usize, &Sequence, usize, usize),
    out: &mut [f64],
) {
    let Some(g) = inputs.gate.as_ref() else {
        return;
    };
    match gate {
        Gate::None => {}
        Gate::SigmoidElementwise => {
            let logits = gather(g, problem, b, seq.q_start, i, h);
            for (x, &gl) in out.iter_mut().zip(&logits) {
                *x *= gate.factor(gl);
            }
        }
        Gate::SigmoidHeadwise | Gate::ContextScale => {
            let f = gate.factor(g.at(&problem.token_index(b, seq.q_start, i, h)));
            out.iter_mut().for_each(|x| *x *= f);
        }
    }
}

/// Offset of row `i`, head `h` of sequence `b` in the row-major `o`.
fn o_offset(problem: &AttentionProblem, b: usize, seq: &Sequence, i: usize, h: usize) -> usize {
    let token = if problem.varlen {
        seq.q_start + i
    } else {
        b * problem.max_seqlen_q + i
    };
    (token * problem.heads + h) * problem.head_dim
}
