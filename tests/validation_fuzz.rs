//! A seeded structured-mutation fuzzer of the input path `run` takes: safetensors bytes →
//! [`TensorFile`] → tensors by name, rank and dtype → [`AttentionProblem`] (the one shape
//! validator) → the host-side numeric scan and, for small accepted problems, the reference.
//!
//! Each case starts from a random, mostly valid file (random dtypes, shapes, GQA, varlen
//! offsets, sinks, gate) with planted defects (offsets that end early or late, decreasing,
//! mismatched shapes), then mutates the encoded bytes or the JSON header (shapes, dtypes, data
//! offsets, names, the length prefix, truncation, bit flips). The properties: nothing panics,
//! every rejection is an `Error` value, every acceptance satisfies the validator's invariants.
//! It runs a fixed number of cases (and stops early after a time budget on a slow machine) and
//! prints how many it ran.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use quietattn::io::{TensorFile, TensorRef, to_bytes};
use quietattn::problem::InputNumerics;
use quietattn::{
    AttentionInputs, AttentionOptions, AttentionProblem, DType, Gate, Normaliser, Tensor,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CASES: usize = 60_000;
const BUDGET: Duration = Duration::from_secs(15);

/// A random file's tensors (before encoding), with planted defects.
fn random_file(rng: &mut StdRng) -> Vec<u8> {
    let dtype = [DType::F32, DType::F16, DType::BF16][rng.random_range(0..3)];
    let kv_heads = rng.random_range(1..=3);
    let heads = kv_heads * rng.random_range(1..=2) + usize::from(rng.random_bool(0.05));
    let d = [1, 4, 8, 16][rng.random_range(0..4)];
    let varlen = rng.random_bool(0.4);
    let batch = rng.random_range(1..=3);
    let lens =
        |rng: &mut StdRng| -> Vec<usize> { (0..batch).map(|_| rng.random_range(0..5)).collect() };
    let (ql, kl) = (lens(rng), lens(rng));
    let cum = |l: &[usize]| -> Vec<i32> {
        std::iter::once(0)
            .chain(l.iter().scan(0, |a, &x| {
                *a += x as i32;
                Some(*a)
            }))
            .collect()
    };
    let (mut cq, mut ck) = (cum(&ql), cum(&kl));
    let (mut tq, mut tk) = (cq[batch] as usize, ck[batch] as usize);
    match rng.random_range(0..10) {
        0 => tq += 1, // offsets end before the rows
        1 => tk += rng.random_range(1..3),
        2 => cq[batch] += 1, // past the rows
        3 => cq[1] = -1,     // decreasing
        4 => {
            ck.pop(); // lengths differ
        }
        _ => {}
    }
    let sq = ql.iter().copied().max().unwrap_or(1).max(1);
    let sk = kl.iter().copied().max().unwrap_or(1).max(1);
    let (q_shape, k_shape, lead) = if varlen {
        (vec![tq, heads, d], vec![tk, kv_heads, d], vec![tq, heads])
    } else {
        (
            vec![batch, sq, heads, d],
            vec![batch, sk, kv_heads, d],
            vec![batch, sq, heads],
        )
    };
    let special = rng.random_bool(0.2);
    let (q, k, v) = (
        values(rng, &q_shape, dtype, special),
        values(rng, &k_shape, dtype, special),
        values(rng, &k_shape, dtype, special),
    );
    let mut gate_shape = lead;
    if rng.random_bool(0.5) {
        gate_shape.push(d);
    }
    let gate = values(rng, &gate_shape, dtype, special);
    let sinks_len = heads + usize::from(rng.random_bool(0.1));
    let sinks = values(rng, &[sinks_len], dtype, special);
    let mut all = vec![
        ("q", TensorRef::Float(&q)),
        ("k", TensorRef::Float(&k)),
        ("v", TensorRef::Float(&v)),
    ];
    let (cq_shape, ck_shape) = ([cq.len()], [ck.len()]);
    if varlen {
        all.push(("cu_seqlens_q", TensorRef::I32(&cq, &cq_shape)));
        all.push(("cu_seqlens_k", TensorRef::I32(&ck, &ck_shape)));
    }
    if rng.random_bool(0.3) {
        all.push(("gate", TensorRef::Float(&gate)));
    }
    if rng.random_bool(0.3) {
        all.push(("sinks", TensorRef::Float(&sinks)));
    }
    to_bytes("fuzz", &all).expect("encodes")
}

/// Random values in [-3, 3); with `special`, one in 40 is NaN, inf or 1e30.
fn values(rng: &mut StdRng, shape: &[usize], dtype: DType, special: bool) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(
            |_| match rng.random_range(0..if special { 40 } else { 1000 }) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => 1e30,
                _ => rng.random_range(-3.0..3.0),
            },
        )
        .collect();
    Tensor::from_f64(dtype, &v, shape).expect("valid tensor")
}

/// One mutation of the encoded bytes: structural (the JSON header) or raw.
fn mutate(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    match rng.random_range(0..8) {
        0..=2 => mutate_header(bytes, rng),
        3 => {
            let n = rng.random_range(0..=bytes.len());
            bytes.truncate(n);
        }
        4 => {
            let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
            let new =
                [0, len.wrapping_add(1), len / 2, u64::MAX, rng.random()][rng.random_range(0..5)];
            bytes[..8].copy_from_slice(&new.to_le_bytes());
        }
        5 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..bytes.len());
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
        }
        _ => {} // unmutated: the planted defects alone
    }
}

/// Rewrites one field of one tensor in the JSON header and re-encodes the length prefix.
fn mutate_header(bytes: &mut Vec<u8>, rng: &mut StdRng) {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let Ok(mut header) = serde_json::from_slice::<serde_json::Value>(&bytes[8..8 + len]) else {
        return;
    };
    let Some(map) = header.as_object_mut() else {
        return;
    };
    let names: Vec<String> = map
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    let name = names[rng.random_range(0..names.len())].clone();
    let huge = [0u64, 1, 3, 1 << 31, 1 << 40, u64::MAX];
    match rng.random_range(0..5) {
        0 => {
            let shape = &mut map[&name]["shape"];
            if let Some(dims) = shape.as_array_mut() {
                match rng.random_range(0..3) {
                    0 if !dims.is_empty() => {
                        let i = rng.random_range(0..dims.len());
                        dims[i] = huge[rng.random_range(0..huge.len())].into();
                    }
                    1 => dims.push(rng.random_range(0..4u64).into()),
                    _ => {
                        dims.pop();
                    }
                }
            }
        }
        1 => {
            let dtypes = [
                "F32", "F16", "BF16", "I32", "I64", "U8", "BOOL", "F64", "F8_E4M3", "XX",
            ];
            map[&name]["dtype"] = dtypes[rng.random_range(0..dtypes.len())].into();
        }
        2 => {
            let i = rng.random_range(0..2);
            map[&name]["data_offsets"][i] = huge[rng.random_range(0..huge.len())].into();
        }
        3 => {
            let v = map.remove(&name).expect("present");
            let new =
                ["q", "k", "v", "gate", "sinks", "cu_seqlens_q", "other"][rng.random_range(0..7)];
            map.insert(new.into(), v);
        }
        _ => {
            map.remove(&name);
        }
    }
    let text = serde_json::to_vec(&header).expect("json");
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + len..]);
    *bytes = out;
}

fn random_options(rng: &mut StdRng) -> AttentionOptions {
    let normaliser = match rng.random_range(0..6) {
        0 => Normaliser::Softmax,
        1 => Normaliser::OffByOne,
        2 => Normaliser::Sink,
        3 => Normaliser::Clipped {
            gamma: -0.03,
            zeta: 1.0,
        },
        4 => Normaliser::Softpick,
        _ => Normaliser::Sigmoid { bias: None },
    };
    let gate =
        [Gate::None, Gate::SigmoidHeadwise, Gate::SigmoidElementwise][rng.random_range(0..3)];
    AttentionOptions {
        normaliser,
        causal: rng.random_bool(0.3),
        gate,
        stats: rng.random_bool(0.3),
        ..AttentionOptions::default()
    }
}

/// What happened to one case.
enum Outcome {
    Rejected,
    Accepted,
}

/// The `run` input path on `bytes`; panics only on a broken invariant.
fn check(bytes: &[u8], options: &AttentionOptions) -> Outcome {
    let Ok(file) = TensorFile::from_bytes("fuzz", bytes) else {
        return Outcome::Rejected;
    };
    let (Ok(cu_q), Ok(cu_k)) = (
        file.i32_vector("cu_seqlens_q"),
        file.i32_vector("cu_seqlens_k"),
    ) else {
        return Outcome::Rejected;
    };
    let rank = if cu_q.is_some() || cu_k.is_some() {
        3
    } else {
        4
    };
    let tensors = (
        file.require_float("q", &[rank]),
        file.require_float("k", &[rank]),
        file.require_float("v", &[rank]),
        file.float("gate", &[rank - 1, rank]),
        file.float("sinks", &[1]),
    );
    let (Ok(q), Ok(k), Ok(v), Ok(gate), Ok(sinks)) = tensors else {
        return Outcome::Rejected;
    };
    let sinks: Option<Vec<f32>> = sinks.map(|t| t.to_f64().iter().map(|&x| x as f32).collect());
    let inputs = AttentionInputs {
        q: q.view(),
        k: k.view(),
        v: v.view(),
        sinks: sinks.as_deref(),
        gate: gate
            .filter(|_| options.gate != Gate::None)
            .map(Tensor::view),
        cu_seqlens_q: cu_q,
        cu_seqlens_k: cu_k,
    };
    let Ok(problem) = AttentionProblem::new(&inputs, options) else {
        return Outcome::Rejected;
    };
    invariants(&problem, &inputs, options);
    let scan = InputNumerics::scan(&inputs, &problem);
    assert!(scan.logit_bound >= 0.0 && scan.accumulator_bound >= 0.0);
    let work = problem.total_q * problem.max_seqlen_k * problem.heads * problem.head_dim;
    if work <= 4096 {
        let out = quietattn::reference::attention(&inputs, options).expect("validated inputs run");
        assert_eq!(out.problem, problem);
    }
    Outcome::Accepted
}

/// What an accepted problem must satisfy.
fn invariants(p: &AttentionProblem, inputs: &AttentionInputs<'_>, options: &AttentionOptions) {
    let rank = if p.varlen { 3 } else { 4 };
    assert_eq!(inputs.q.shape.len(), rank);
    assert!(p.heads > 0 && p.kv_heads > 0 && p.head_dim > 0);
    assert_eq!(p.heads % p.kv_heads, 0);
    assert_eq!(inputs.k.shape, inputs.v.shape);
    assert_eq!(inputs.q.shape[rank - 1], p.head_dim);
    assert_eq!(p.seqs.len(), p.batch);
    let (rows_q, rows_k) = (inputs.q.shape[0], inputs.k.shape[0]);
    if p.varlen {
        // Every row belongs to exactly one sequence, in order.
        assert_eq!(p.seqs.iter().map(|s| s.q_len).sum::<usize>(), rows_q);
        assert_eq!(p.seqs.iter().map(|s| s.k_len).sum::<usize>(), rows_k);
        assert_eq!(p.total_q, rows_q);
    } else {
        assert_eq!(p.batch, rows_q);
        assert_eq!(p.total_q, p.batch * p.max_seqlen_q);
    }
    for s in &p.seqs {
        assert!(s.q_len <= p.max_seqlen_q && s.k_len <= p.max_seqlen_k);
    }
    if options.normaliser == Normaliser::Sink {
        assert_eq!(inputs.sinks.map(<[f32]>::len), Some(p.heads));
        assert!(
            inputs
                .sinks
                .is_some_and(|s| s.iter().all(|x| x.is_finite()))
        );
    }
    if let (true, Some(g)) = (options.gate != Gate::None, &inputs.gate) {
        assert_eq!(g.shape, p.geometry().gate_shape(options.gate));
    }
}

#[test]
fn validation_never_panics_and_accepts_only_valid_problems() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0011);
    let start = Instant::now();
    let (mut ran, mut accepted) = (0usize, 0usize);
    while ran < CASES && start.elapsed() < BUDGET {
        let mut bytes = random_file(&mut rng);
        if rng.random_bool(0.7) {
            mutate(&mut bytes, &mut rng);
        }
        let options = random_options(&mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&bytes, &options)));
        match outcome {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Rejected) => {}
            Err(_) => panic!("case {ran} panicked; options {options:?}, bytes {bytes:?}"),
        }
        ran += 1;
    }
    println!(
        "fuzz: {ran} inputs in {:.1} s: {accepted} accepted, {} rejected with an error",
        start.elapsed().as_secs_f64(),
        ran - accepted
    );
    // Both sides of the validator were exercised.
    assert!(
        accepted > ran / 20 && accepted < ran,
        "{accepted} of {ran} accepted"
    );
}
