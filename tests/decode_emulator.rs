//! The decode kernels (kernels/decode/) on the emulator, and on CUDA when a GPU is present,
//! against the f64 paged reference within docs/contract.md §6.
//!
//! The matrix is a covering set, not a product, so it runs in minutes on 2 cores: every
//! normaliser meets both page sizes, one split and several (including chunks shorter than a
//! key tile and chunks that are empty for the short sequences), GQA 2:1, 3:1 and 8:1 with
//! G·q_len from 2 to 128 (inside and beyond one row group), and each of the variants (causal,
//! window + softcap, gate).
//! Every run holds the ragged lengths 0, 1, 13, 16, 70 and 129 in shuffled pages. Other dtypes
//! and head dims run on fewer normalisers (their arithmetic differs only in loads and stores).
//! Statistics (docs/contract.md §5) are compared with the reference of the gathered problem by
//! `quietattn::stats::compare`'s rules over the same covering set.

mod common;
mod paged_parts;

use paged_parts::{Fixture, LENS, Shape, covering_options, run};

use quietattn::ops::decode::{DecodeCall, paged_decode};
use quietattn::problem::SplitPlan;
use quietattn::{AttentionOptions, DType, Error, KernelChoice, Normaliser};

/// Both chunk-kernel families, pinned.
const FAMILIES: [KernelChoice; 2] = [KernelChoice::CudaCore, KernelChoice::TensorCore];

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

/// The covering matrix of one chunk-kernel family: every normaliser × page sizes 16 and 64 ×
/// 1 split, 3 chunks of 48 keys and 9 chunks of 16 (shorter than a key tile) × GQA 2:1 (q_len 1)
/// and 3:1 (q_len 4), the three variants rotating, head dim 8 (the tensor-core family runs it
/// zero-padded to 64) in `dtype(n, k)`; with statistics compared too when `stats`.
fn covering_matrix(family: KernelChoice, dtype: fn(usize) -> DType, seed: u64, stats: bool) {
    for device in common::devices(&format!("decode {} covering matrix", family.name())) {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            for (k, (page_size, q_len, heads)) in
                [(16, 1, (4, 2)), (64, 4, (6, 2))].into_iter().enumerate()
            {
                let s = shape(dtype(n + k), 8, page_size, q_len, heads);
                let f = Fixture::new(seed + 10 * n as u64 + k as u64, s);
                for (splits, chunk) in [(1, 0), (3, 48), (9, 16)] {
                    let variant = (n + k + splits) % 3;
                    let opts = AttentionOptions {
                        kernel: family,
                        ..covering_options(norm, variant, false)
                    };
                    let label = format!(
                        "{} {} {:?} on {}: page {page_size} q_len {q_len} heads {heads:?} splits {splits} variant {variant}",
                        family.name(),
                        norm.name(),
                        s.dtype,
                        device.name()
                    );
                    let call = plan(splits, chunk);
                    let worst = if stats {
                        f.compare_stats(&device, &opts, &call)
                    } else {
                        f.compare(&device, &opts, &call)
                    };
                    assert!(worst.is_ok(), "{label}: {}", worst.unwrap_err());
                }
            }
        }
    }
}

/// `check` on both chunk-kernel families, the tensor-core one only where it serves the call
/// (f16/bf16, head dims up to 128); each must pass. `what` names the case in the failure.
fn on_each_family(
    what: &str,
    dtype: DType,
    dim: usize,
    check: impl Fn(KernelChoice) -> Result<f64, String>,
) {
    for family in FAMILIES {
        if family == KernelChoice::TensorCore && (dtype == DType::F32 || dim > 128) {
            continue;
        }
        let worst = check(family);
        assert!(
            worst.is_ok(),
            "{} {what}: {}",
            family.name(),
            worst.unwrap_err()
        );
    }
}

/// The half types, alternating.
fn half(i: usize) -> DType {
    [DType::BF16, DType::F16][i % 2]
}

#[test]
fn every_normaliser_matches_the_paged_reference_split_or_not() {
    covering_matrix(KernelChoice::CudaCore, |_| DType::F32, 100, false);
}

#[test]
fn tensor_core_chunks_match_the_paged_reference_over_the_covering_matrix() {
    covering_matrix(KernelChoice::TensorCore, half, 150, false);
}

#[test]
fn half_types_and_wide_heads_match_the_reference() {
    // Every normaliser in f16 and bf16, the head-dim bounds 64/128/256 rotating (and 96,
    // padded to 128 on tensor cores), split and not, on both chunk-kernel families (tensor
    // cores up to 128).
    for device in common::devices("decode half types") {
        for (n, norm) in Normaliser::all_defaults().into_iter().enumerate() {
            for (t, dtype) in [DType::F16, DType::BF16].into_iter().enumerate() {
                let dim = [64, 128, 256, 96][(n + t) % 4];
                let splits = [1, 3][(n + t) % 2];
                let s = shape(dtype, dim, 16, 2, (4, 1));
                let f = Fixture::new(300 + 2 * n as u64 + t as u64, s);
                let what = format!("{dtype:?} d{dim} {} splits {splits}", norm.name());
                on_each_family(&what, dtype, dim, |family| {
                    let opts = AttentionOptions {
                        kernel: family,
                        ..covering_options(norm, (n + t) % 3, false)
                    };
                    f.compare(&device, &opts, &plan(splits, 48))
                });
            }
        }
    }
}

#[test]
fn tensor_core_full_tiles_over_page_sizes_chunks_and_unaligned_caches() {
    // The tensor-core chunk's steady loop (kernels/decode_tc/chunk.cuh: full 64-key tiles every
    // row sees, their pages looked up once per tile) beside its general loop, at head dims 64
    // and 128 (the steady loop needs d = D): sequences of several tiles (256 keys end on a tile,
    // 333 do not), pages of 16, 32, 64 and 128 keys (4, 2, 1 and half a page per tile), chunks
    // that start on a tile (128) and inside one (80), causal q_len 1 and 4, a window without
    // softcap whose lower edge crosses a tile boundary between the rows (333 keys: the 4 rows
    // see from key 191..194); statistics on two of them; then caches with rows of d + 1
    // elements (most rows not 16-byte aligned: plain loads, no steady loop). Mutations that fail
    // it: a wrong page entry for 2 or 4 pages per tile, the slot ignored with 128-key pages, the
    // steady range ignoring the window's lower edge, no mask below a chunk's first key, plain
    // loads dropping an element.
    const LONG: [usize; 4] = [0, 70, 256, 333];
    let norms = Normaliser::all_defaults();
    for device in common::devices("decode tensor-core full tiles") {
        for (k, page_size) in [16, 32, 64, 128].into_iter().enumerate() {
            for (qi, q_len) in [1, 4].into_iter().enumerate() {
                let (norm, dim, dtype) =
                    (norms[(k + 3 * qi) % 6], [64, 128][(k + qi) % 2], half(k));
                let f = Fixture::with_lens(
                    1300 + 2 * k as u64 + qi as u64,
                    shape(dtype, dim, page_size, q_len, (4, 2)),
                    &LONG,
                );
                let opts = AttentionOptions {
                    kernel: KernelChoice::TensorCore,
                    causal: true,
                    window: (qi == 1).then_some((138, 0)),
                    ..covering_options(norm, 0, false)
                };
                for (splits, chunk) in [(1, 0), (3, 128), (5, 80)] {
                    let what = format!(
                        "{} {dtype:?} d{dim} page {page_size} q_len {q_len} splits {splits}",
                        norm.name()
                    );
                    let stats = splits == 5 && qi == 0 && k % 2 == 1;
                    let call = plan(splits, chunk);
                    let worst = if stats {
                        f.compare_stats(&device, &opts, &call)
                    } else {
                        f.compare(&device, &opts, &call)
                    };
                    assert!(worst.is_ok(), "{what}: {}", worst.unwrap_err());
                }
            }
        }
        for (k, page_size) in [16, 64].into_iter().enumerate() {
            let mut f = Fixture::with_lens(
                1320 + k as u64,
                shape(half(k), 128 - 64 * k, page_size, 2, (4, 2)),
                &LONG,
            );
            f.misalign_caches();
            let opts = AttentionOptions {
                kernel: KernelChoice::TensorCore,
                ..covering_options(norms[2 * k], 0, false)
            };
            for (splits, chunk) in [(1, 0), (5, 80)] {
                let worst = f.compare(&device, &opts, &plan(splits, chunk));
                assert!(
                    worst.is_ok(),
                    "unaligned caches, page {page_size} splits {splits}: {}",
                    worst.unwrap_err()
                );
            }
        }
    }
}

#[test]
fn more_rows_than_one_group_sweep_again() {
    // G·q_len = 8 · 16 = 128 rows at d = 64: four row groups of 32 over the same chunk (CUDA
    // cores, f32), eight of 16 (tensor cores, bf16).
    for device in common::devices("decode row groups") {
        for (family, dtype) in [
            (KernelChoice::CudaCore, DType::F32),
            (KernelChoice::TensorCore, DType::BF16),
        ] {
            let f = Fixture::new(400, shape(dtype, 64, 16, 16, (8, 1)));
            for splits in [1, 2] {
                let opts = AttentionOptions {
                    kernel: family,
                    ..covering_options(Normaliser::Sink, 0, false)
                };
                let worst = f.compare(&device, &opts, &plan(splits, 80));
                assert!(
                    worst.is_ok(),
                    "{} splits {splits}: {}",
                    family.name(),
                    worst.unwrap_err()
                );
            }
        }
    }
}

#[test]
fn tensor_core_seeded_bugs_are_caught_and_their_twin_passes() {
    // kernels/testing/seeded_bugs.cu: the tensor-core chunk with one pipeline mistake each, run
    // in place of the family's chunk kernel (same ABI, geometry and combine), split and not.
    let device = common::emulator();
    let f = Fixture::new(1200, shape(DType::BF16, 64, 16, 4, (4, 1)));
    let opts = AttentionOptions {
        kernel: KernelChoice::TensorCore,
        ..AttentionOptions::default()
    };
    let with = |name: &'static str, splits: usize| DecodeCall {
        chunk_kernel: Some(quietattn::launch::KernelRef {
            module: "seeded_bugs",
            name: name.into(),
        }),
        ..plan(splits, 64)
    };
    for splits in [1, 3] {
        let twin = f.compare(&device, &opts, &with("qa_bug_decode_tc_twin", splits));
        assert!(twin.is_ok(), "twin, splits {splits}: {}", twin.unwrap_err());
        // the stage about to be read is still in flight: the emulator reports the read
        let no_wait = f.compare(&device, &opts, &with("qa_bug_decode_tc_no_wait", splits));
        assert!(
            no_wait.is_err(),
            "a missing cp.async wait passed, splits {splits}"
        );
        // the warps' partials are added in different units: wrong values
        let warp_max = f.compare(&device, &opts, &with("qa_bug_decode_tc_warp_max", splits));
        let e = warp_max.expect_err("warps with their own row max passed");
        assert!(e.contains("reference"), "splits {splits}: {e}");
    }
}

#[test]
fn the_automatic_plan_splits_long_sequences_and_matches() {
    let f = Fixture::new(500, shape(DType::F32, 8, 16, 1, (2, 1)));
    let g =
        quietattn::problem::PagedProblem::new(&f.paged(), &AttentionOptions::default()).unwrap();
    // 6 sequences × 1 kv head on 132 SMs want 44 splits; 129 keys allow one chunk of 256.
    let auto = SplitPlan::new(LENS.len(), 1, g.geometry.max_seqlen_k, 16, 132).unwrap();
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
    let f = Fixture::new(600, shape(DType::F32, 8, 16, 1, (2, 1)));
    // (block table, lengths, what the error names): a page the 70-key sequence (row 4) reads
    // points past the cache, then before it; a length beyond what the table maps (and beyond
    // the declared longest), then a negative one.
    let mut cases = Vec::new();
    for bad in [i32::MAX, -7] {
        let mut table = f.table.clone();
        table[4 * f.max_pages + 2] = bad;
        cases.push((table, f.lens.clone(), format!("block_table[4, 2] = {bad}")));
    }
    for bad in [100_000, -1] {
        let mut lens = f.lens.clone();
        lens[2] = bad;
        cases.push((f.table.clone(), lens, format!("seq_lens_k[2] = {bad}")));
    }
    for device in common::devices("decode bad device-side indices") {
        for splits in [1, 3] {
            for (table, lens, want) in &cases {
                let call = DecodeCall {
                    kernel_indices: Some((table, lens)),
                    ..plan(splits, 48)
                };
                match run(&device, &f, &AttentionOptions::default(), &call) {
                    Err(Error::Index(m)) => assert!(m.contains(want.as_str()), "{m}"),
                    other => {
                        panic!("splits {splits}, {want}: expected an index error, got {other:?}")
                    }
                }
            }
        }
    }
}

#[test]
fn a_plan_that_misses_keys_is_refused() {
    let device = common::emulator();
    let f = Fixture::new(700, shape(DType::F32, 8, 16, 1, (2, 1)));
    let opts = AttentionOptions::default();
    let short = run(&device, &f, &opts, &plan(2, 32)); // 64 keys of 129
    assert!(matches!(short, Err(Error::InvalidOption(_))), "{short:?}");
    // Statistics count every key: a plan that covers only a window's keys is refused then.
    let window = AttentionOptions {
        window: Some((20, 0)),
        ..opts.clone()
    };
    assert!(run(&device, &f, &window, &plan(2, 48)).is_ok());
    let stats = AttentionOptions {
        stats: true,
        ..window
    };
    let refused = run(&device, &f, &stats, &plan(2, 48));
    assert!(
        matches!(refused, Err(Error::InvalidOption(_))),
        "{refused:?}"
    );
}

#[test]
fn statistics_match_the_reference_for_every_normaliser_split_or_not() {
    // Row statistics merged over chunks (entropy via Σw ln w, first-key mass from the chunk
    // holding key 0, logit range re-anchored), Q/K/V/O counted once, over the covering matrix.
    covering_matrix(KernelChoice::CudaCore, |_| DType::F32, 800, true);
}

#[test]
fn tensor_core_statistics_match_the_reference_over_the_covering_matrix() {
    covering_matrix(KernelChoice::TensorCore, half, 850, true);
}

#[test]
fn statistics_in_half_types_wide_heads_and_many_row_groups() {
    // The _stats kernels at every head-dim bound (d64 runs 4 rows per warp), f16 and bf16, and
    // G·q_len = 128 rows (K/V counted by the first row group only).
    for device in common::devices("decode statistics, wide") {
        let cases = [
            (Normaliser::Softmax, DType::BF16, 64, 2, (4, 1), 1),
            (Normaliser::Sink, DType::F16, 128, 2, (4, 1), 3),
            (Normaliser::Softpick, DType::BF16, 256, 2, (4, 1), 3),
            (
                Normaliser::Clipped {
                    gamma: -0.1,
                    zeta: 1.1,
                },
                DType::F16,
                64,
                2,
                (4, 1),
                3,
            ),
            (Normaliser::OffByOne, DType::F32, 64, 16, (8, 1), 2),
            (
                Normaliser::Sigmoid { bias: None },
                DType::BF16,
                64,
                16,
                (8, 1),
                2,
            ),
        ];
        for (c, (norm, dtype, dim, q_len, heads, splits)) in cases.into_iter().enumerate() {
            let f = Fixture::new(900 + c as u64, shape(dtype, dim, 16, q_len, heads));
            let what = format!("{dtype:?} d{dim} {} splits {splits}", norm.name());
            on_each_family(&what, dtype, dim, |family| {
                let opts = AttentionOptions {
                    kernel: family,
                    ..covering_options(norm, c % 3, false)
                };
                f.compare_stats(&device, &opts, &plan(splits, 80))
            });
        }
    }
}

#[test]
fn statistics_off_returns_none_and_on_counts_every_query_and_key_once() {
    let device = common::emulator();
    let executor = device.executor().unwrap();
    let f = Fixture::new(1000, shape(DType::F32, 8, 16, 2, (4, 2)));
    let off = paged_decode(
        executor,
        &f.paged(),
        &AttentionOptions::default(),
        &plan(3, 48),
    )
    .unwrap();
    assert!(off.stats.is_none());
    let on = AttentionOptions {
        stats: true,
        window: Some((5, 0)),
        ..AttentionOptions::default()
    };
    let s = paged_decode(executor, &f.paged(), &on, &plan(3, 48))
        .unwrap()
        .stats
        .unwrap();
    let total: usize = LENS.iter().sum();
    let count = |t: usize| s.channels[t].iter().map(|c| c.count).sum::<u64>();
    assert_eq!(count(0), (LENS.len() * 2 * 4 * 8) as u64); // every Q element once
    assert_eq!(count(1), (total * 2 * 8) as u64); // every key once, window or not
    assert_eq!(count(2), (total * 2 * 8) as u64);
    assert_eq!(count(3), (LENS.len() * 2 * 4 * 8) as u64);
    // rows with a visible key (bottom-right aligned: a 1-key sequence's first row sees none),
    // × 4 heads
    let rows: u64 = s.heads.iter().map(|h| h.rows).sum();
    let visible: usize = LENS.iter().map(|&n| n.min(2)).sum();
    assert_eq!(rows, (visible * 4) as u64);
    // without a split the chunk kernel counts every tensor itself: the same histograms
    let again = paged_decode(executor, &f.paged(), &on, &plan(1, 0))
        .unwrap()
        .stats
        .unwrap();
    assert_eq!(again.tensors, s.tensors);
}
