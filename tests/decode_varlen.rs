//! Varlen queries in decode (speculative decoding: a different number of new tokens per
//! sequence): q `[total_q, h, d]` with `cu_seqlens_q`, each sequence's rows at the last
//! positions of its keys under causal. The decode kernels on the emulator (and CUDA when a GPU
//! is present) against the f64 paged reference within docs/contract.md §6, statistics by
//! `quietattn::stats::compare`'s rules; bad offsets are errors before any launch (host-visible)
//! or the kernels' error record (offsets only the device sees), never an out-of-bounds access.
//!
//! Every run holds the key lengths of `paged_parts::LENS` (0, 1, 13, 16, 70, 129) with the query lengths of
//! `Q_LENS` (2, 3, 0, 1, 4, 1): sequences with no row and one row, and rows that see no key.

mod common;
mod paged_parts;

use paged_parts::{Fixture, Q_LENS, Shape, covering_options, run};

use quietattn::ops::decode::DecodeCall;
use quietattn::problem::SplitPlan;
use quietattn::{AttentionOptions, DType, Error, KernelChoice, Normaliser};

fn plan(splits: usize, chunk: usize) -> DecodeCall<'static> {
    DecodeCall {
        plan: Some(SplitPlan { splits, chunk }),
        ..DecodeCall::default()
    }
}

fn shape(dtype: DType, dim: usize, page_size: usize, heads: (usize, usize)) -> Shape {
    Shape {
        dtype,
        dim,
        page_size,
        q_len: *Q_LENS.iter().max().unwrap(),
        heads: heads.0,
        kv_heads: heads.1,
    }
}

#[test]
fn ragged_queries_match_the_paged_reference_for_every_normaliser() {
    // Every normaliser × page 16/64 × splits 1, 3 chunks of 48, 9 chunks of 16 × GQA 2:1, 3:1,
    // 8:1 (rotating) × causal / window + softcap / gate (rotating).
    for device in common::devices("decode varlen") {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            for (k, page_size) in [16, 64].into_iter().enumerate() {
                let heads = [(4, 2), (6, 2), (8, 1)][(n + k) % 3];
                let f = Fixture::varlen(
                    1200 + 10 * n as u64 + k as u64,
                    shape(DType::F32, 8, page_size, heads),
                    &Q_LENS,
                );
                for (splits, chunk) in [(1, 0), (3, 48), (9, 16)] {
                    let variant = (n + k + splits) % 3;
                    let opts = covering_options(norm, variant, false);
                    let worst = f.compare(&device, &opts, &plan(splits, chunk));
                    assert!(
                        worst.is_ok(),
                        "{} on {}: page {page_size} heads {heads:?} splits {splits} variant {variant}: {}",
                        norm.name(),
                        device.name(),
                        worst.unwrap_err()
                    );
                }
            }
        }
    }
}

#[test]
fn ragged_queries_in_half_types_and_the_automatic_plan() {
    for device in common::devices("decode varlen half") {
        for (t, dtype) in [DType::F16, DType::BF16].into_iter().enumerate() {
            let norm = Normaliser::all_defaults()[1 + 3 * t]; // off_by_one, softpick
            let f = Fixture::varlen(1300 + t as u64, shape(dtype, 64 << t, 16, (4, 1)), &Q_LENS);
            let call = if t == 0 {
                plan(3, 48)
            } else {
                DecodeCall::default()
            };
            let worst = f.compare(&device, &covering_options(norm, t, false), &call);
            assert!(
                worst.is_ok(),
                "{dtype:?} {}: {}",
                norm.name(),
                worst.unwrap_err()
            );
        }
    }
}

#[test]
fn ragged_queries_statistics_match_the_reference() {
    // Statistics on: every normaliser, split and not, GQA 2:1 / 3:1. A sequence without query
    // rows (Q_LENS[2] = 0) still has its K/V counted, as prefill counts every key.
    for device in common::devices("decode varlen statistics") {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            let heads = if n % 2 == 0 { (4, 2) } else { (6, 2) };
            let f = Fixture::varlen(1400 + n as u64, shape(DType::F32, 8, 16, heads), &Q_LENS);
            let (splits, chunk) = [(1, 0), (3, 48), (9, 16)][n % 3];
            let opts = covering_options(norm, n % 3, true);
            let worst = f.compare_stats(&device, &opts, &plan(splits, chunk));
            assert!(
                worst.is_ok(),
                "{} splits {splits}: {}",
                norm.name(),
                worst.unwrap_err()
            );
        }
    }
}

#[test]
fn ragged_queries_on_tensor_cores_with_statistics() {
    // The tensor-core chunk pinned (f16, d64 and bf16, d128 with d padded): statistics and
    // outputs for ragged rows, incl. the sequence without rows whose K/V are still counted.
    for device in common::devices("decode varlen tensor cores") {
        for (t, norm) in [Normaliser::Softmax, Normaliser::all_defaults()[3]]
            .into_iter()
            .enumerate()
        {
            let (dtype, dim) = [(DType::F16, 64), (DType::BF16, 96)][t];
            let f = Fixture::varlen(1450 + t as u64, shape(dtype, dim, 16, (4, 2)), &Q_LENS);
            for (splits, chunk) in [(1, 0), (3, 48)] {
                let opts = AttentionOptions {
                    kernel: KernelChoice::TensorCore,
                    ..covering_options(norm, t, true)
                };
                let label = format!("{dtype:?} {} splits {splits}", norm.name());
                let worst = f.compare(&device, &opts, &plan(splits, chunk));
                assert!(worst.is_ok(), "{label}: {}", worst.unwrap_err());
                let worst = f.compare_stats(&device, &opts, &plan(splits, chunk));
                assert!(worst.is_ok(), "{label} statistics: {}", worst.unwrap_err());
            }
        }
    }
}

#[test]
fn rows_past_a_sequences_keys_see_nothing_under_causal() {
    // Sequence 1 has 3 rows on 1 key: bottom-right aligned, rows 0 and 1 see no key (o = 0,
    // lse = −∞ for softmax), row 2 sees key 0 (o = its value row). Sequence 0 has no key at all.
    let device = common::emulator();
    let executor = device.executor().unwrap();
    let f = Fixture::varlen(1500, shape(DType::F32, 8, 16, (2, 1)), &Q_LENS);
    let opts = AttentionOptions {
        causal: true,
        ..AttentionOptions::default()
    };
    for call in [plan(1, 0), plan(3, 48)] {
        let out = quietattn::ops::decode::paged_decode(executor, &f.paged(), &opts, &call).unwrap();
        let (o, lse) = (out.o.to_f64(), out.lse.to_f64());
        let total = f.total_q();
        for h in 0..2 {
            for row in 0..4 {
                // rows 0, 1 (sequence 0) and 2, 3 (sequence 1's first two)
                assert!(o[(row * 2 + h) * 8..][..8].iter().all(|&x| x == 0.0));
                assert_eq!(lse[h * total + row], f64::NEG_INFINITY);
            }
            let value = &f.values[1][..8]; // key 0 of sequence 1, kv head 0
            let got = &o[(4 * 2 + h) * 8..][..8];
            for (g, v) in got.iter().zip(value) {
                assert!((g - v).abs() < 1e-6, "head {h}: {got:?} vs {value:?}");
            }
        }
    }
}

#[test]
fn bad_host_cu_seqlens_q_are_errors_before_any_launch() {
    // The shared validator's rules on the offsets the host sees: batch + 1 entries, starting
    // at 0, non-decreasing, ending at the rows of q.
    let device = common::emulator();
    let f = Fixture::varlen(1600, shape(DType::F32, 8, 16, (4, 2)), &Q_LENS);
    let good = f.cu_q.clone().unwrap(); // [0, 2, 5, 5, 6, 10, 11]
    let mut cases: Vec<(Vec<i32>, &str)> = Vec::new();
    let mut decreasing = good.clone();
    decreasing[3] = 4;
    cases.push((decreasing, "non-decreasing"));
    cases.push((good.iter().map(|&x| x + 1).collect(), "start at 0"));
    let mut short = good.clone();
    short[6] = 10;
    cases.push((short, "ends at 10"));
    cases.push((good[..6].to_vec(), "entries"));
    for (cu, want) in cases {
        let mut g = Fixture::varlen(1600, shape(DType::F32, 8, 16, (4, 2)), &Q_LENS);
        g.cu_q = Some(cu.clone());
        match run(&device, &g, &AttentionOptions::default(), &plan(3, 48)) {
            Err(Error::Shape(m)) => assert!(m.contains(want), "{cu:?}: {m}"),
            other => panic!("{cu:?}: expected a shape error, got {other:?}"),
        }
    }
    assert!(run(&device, &f, &AttentionOptions::default(), &plan(3, 48)).is_ok());
}

#[test]
fn bad_kernel_cu_seqlens_q_are_the_error_record_without_out_of_bounds_access() {
    // Offsets no host check has seen (an engine's device memory): decreasing, beyond the rows
    // of q, a sequence longer than the longest q_len. Each breaks one sequence; the emulator's
    // guard pages would fault on any read or write through them.
    let device = common::emulator();
    let f = Fixture::varlen(1700, shape(DType::F32, 8, 16, (4, 2)), &Q_LENS);
    let good = f.cu_q.clone().unwrap();
    let total = f.total_q() as i32;
    for (splits, chunk) in [(1, 0), (3, 48)] {
        // (entry, planted value, the offset the record names, its value)
        for (at, value, col, val) in [(3, 4, 3, 4), (6, total + 5, 6, total + 5), (4, 5, 5, 10)] {
            let want = format!("cu_seqlens_q[{col}] = {val}");
            let mut cu = good.clone();
            cu[at] = value;
            let call = DecodeCall {
                kernel_cu_seqlens_q: Some(&cu),
                ..plan(splits, chunk)
            };
            for stats in [false, true] {
                let opts = covering_options(Normaliser::Softmax, 0, stats);
                match run(&device, &f, &opts, &call) {
                    Err(Error::Index(m)) => assert!(m.contains(&want), "{m}"),
                    other => panic!("cu[{at}] = {value}: expected an index error, got {other:?}"),
                }
            }
        }
    }
}
