//! The decode kernels (kernels/decode/) on the emulator, and on CUDA when a GPU is present,
//! against the f64 paged reference within SPEC §6.
//!
//! The matrix is a covering set, not a product, so it runs in minutes on 2 cores: every
//! normaliser meets both page sizes, one split and several (including chunks shorter than a
//! key tile and chunks that are empty for the short sequences), GQA 2:1, 3:1 and 8:1 with
//! G·q_len from 2 to 128 (inside and beyond one row group), and each of the variants (causal,
//! window + softcap, gate).
//! Every run holds the ragged lengths 0, 1, 13, 16, 70 and 129 in shuffled pages. Other dtypes
//! and head dims run on fewer normalisers (their arithmetic differs only in loads and stores).

mod common;
mod paged_parts;

use paged_parts::{Fixture, LENS, Shape, run};
use quietattn::ops::decode::DecodeCall;
use quietattn::problem::SplitPlan;
use quietattn::{AttentionOptions, DType, Error, Gate, Normaliser};

fn options(norm: Normaliser, variant: usize) -> AttentionOptions {
    AttentionOptions {
        normaliser: norm,
        causal: variant != 1,
        window: (variant == 1).then_some((20, 0)),
        softcap: (variant == 1).then_some(3.0),
        gate: if variant == 2 {
            Gate::SigmoidHeadwise
        } else {
            Gate::None
        },
        ..AttentionOptions::default()
    }
}

fn plan(splits: usize, chunk: usize) -> DecodeCall<'static> {
    DecodeCall {
        plan: Some(SplitPlan { splits, chunk }),
        ..DecodeCall::default()
    }
}

fn shape(dtype: DType, dim: usize, page_size: usize, q_len: usize, heads: (usize, usize)) -> Shape {
    Shape {
        dtype,
        dim,
        page_size,
        q_len,
        heads: heads.0,
        kv_heads: heads.1,
    }
}

#[test]
fn every_normaliser_matches_the_paged_reference_split_or_not() {
    for device in common::devices("decode every normaliser") {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            for (k, (page_size, q_len, heads)) in
                [(16, 1, (4, 2)), (64, 4, (6, 2))].into_iter().enumerate()
            {
                let s = shape(DType::F32, 8, page_size, q_len, heads);
                let f = Fixture::new(100 + 10 * n as u64 + k as u64, s);
                // 1 split; 3 chunks of 48 keys; 9 chunks of 16 keys (shorter than a key tile).
                for (splits, chunk) in [(1, 0), (3, 48), (9, 16)] {
                    let variant = (n + k + splits) % 3;
                    let opts = options(norm, variant);
                    let label = format!(
                        "{} on {}: page {page_size} q_len {q_len} heads {heads:?} splits {splits} variant {variant}",
                        norm.name(),
                        device.name()
                    );
                    let worst = f.compare(&device, &opts, &plan(splits, chunk));
                    assert!(worst.is_ok(), "{label}: {}", worst.unwrap_err());
                }
            }
        }
    }
}

#[test]
fn half_types_and_wide_heads_match_the_reference() {
    // Every normaliser in f16 and bf16, the head-dim bounds 64/128/256 rotating, split and not.
    for device in common::devices("decode half types") {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            for (t, dtype) in [DType::F16, DType::BF16].into_iter().enumerate() {
                let dim = [64, 128, 256][(n + t) % 3];
                let splits = [1, 3][(n + t) % 2];
                let s = shape(dtype, dim, 16, 2, (4, 1));
                let f = Fixture::new(300 + 2 * n as u64 + t as u64, s);
                let worst = f.compare(&device, &options(norm, (n + t) % 3), &plan(splits, 48));
                assert!(
                    worst.is_ok(),
                    "{dtype:?} d{dim} {} splits {splits}: {}",
                    norm.name(),
                    worst.unwrap_err()
                );
            }
        }
    }
}

#[test]
fn more_rows_than_one_group_sweep_again() {
    // G·q_len = 8 · 16 = 128 rows at d = 64: four row groups of 32 over the same chunk.
    for device in common::devices("decode row groups") {
        let f = Fixture::new(400, shape(DType::F32, 64, 16, 16, (8, 1)));
        for splits in [1, 2] {
            let worst = f.compare(&device, &options(Normaliser::Sink, 0), &plan(splits, 80));
            assert!(worst.is_ok(), "splits {splits}: {}", worst.unwrap_err());
        }
    }
}

#[test]
fn the_automatic_plan_splits_long_sequences_and_matches() {
    let f = Fixture::new(500, shape(DType::F32, 8, 16, 1, (2, 1)));
    let g =
        quietattn::problem::PagedProblem::new(&f.paged(), &AttentionOptions::default()).unwrap();
    // 6 sequences × 1 kv head on 132 SMs want 44 splits; 129 keys allow one chunk of 256.
    let auto = SplitPlan::new(LENS.len(), 1, g.geometry.max_k, 16, 132).unwrap();
    assert_eq!(auto.splits, 1);
    let device = common::emulator();
    let call = DecodeCall {
        sm_count: 132,
        ..DecodeCall::default()
    };
    let worst = f.compare(&device, &AttentionOptions::default(), &call);
    assert!(worst.is_ok(), "{}", worst.unwrap_err());
}

#[test]
fn bad_device_side_indices_give_the_error_and_no_out_of_bounds_read() {
    let device = common::emulator();
    let f = Fixture::new(600, shape(DType::F32, 8, 16, 1, (2, 1)));
    let opts = AttentionOptions::default();
    for splits in [1, 3] {
        // A page the 70-key sequence (row 4) reads points past the cache, then before it.
        for bad in [i32::MAX, -7] {
            let mut table = f.table.clone();
            table[4 * f.max_pages + 2] = bad;
            let call = DecodeCall {
                kernel_indices: Some((&table, &f.lens)),
                ..plan(splits, 48)
            };
            match run(&device, &f, &opts, &call) {
                Err(Error::Index(m)) => {
                    assert!(m.contains(&format!("block_table[4, 2] = {bad}")), "{m}")
                }
                other => {
                    panic!("splits {splits}, entry {bad}: expected an index error, got {other:?}")
                }
            }
        }
        // A length beyond what the table maps (and beyond the declared longest), and a negative one.
        for bad in [100_000, -1] {
            let mut lens = f.lens.clone();
            lens[2] = bad;
            let call = DecodeCall {
                kernel_indices: Some((&f.table, &lens)),
                ..plan(splits, 48)
            };
            match run(&device, &f, &opts, &call) {
                Err(Error::Index(m)) => {
                    assert!(m.contains(&format!("seq_lens_k[2] = {bad}")), "{m}")
                }
                other => {
                    panic!("splits {splits}, length {bad}: expected an index error, got {other:?}")
                }
            }
        }
    }
}

#[test]
fn a_plan_that_misses_keys_and_statistics_are_refused() {
    let device = common::emulator();
    let f = Fixture::new(700, shape(DType::F32, 8, 16, 1, (2, 1)));
    let opts = AttentionOptions::default();
    let short = run(&device, &f, &opts, &plan(2, 32)); // 64 keys of 129
    assert!(matches!(short, Err(Error::InvalidOption(_))), "{short:?}");
    let stats = AttentionOptions {
        stats: true,
        ..opts
    };
    let refused = run(&device, &f, &stats, &DecodeCall::default());
    assert!(matches!(refused, Err(Error::Unsupported(_))), "{refused:?}");
}
