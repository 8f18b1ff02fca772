//! The split plan of the decode launches: chunks partition every key range, start on page and
//! tile boundaries, never outnumber what the SMs need, fit the workspace the engine sized once —
//! and a long row cut by the plan merges (`reference::split`) to the unsplit row.

use quietattn::Normaliser;
use quietattn::problem::{
    BLOCKS_PER_SM, DecodeBounds, KEY_TILE, MIN_CHUNK_KEYS, SplitPlan, max_splits, workspace_bytes,
};
use quietattn::reference::split::{Chunk, split_row};
use quietattn::reference::{RowParams, row_weights};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (batch, kv heads, max_seqlen_k, page size, SMs) drawn over the shapes engines run.
fn random_shape(rng: &mut StdRng) -> (usize, usize, usize, usize, usize) {
    (
        rng.random_range(1..=64),
        [1, 2, 4, 8][rng.random_range(0..4)],
        rng.random_range(0..=200_000),
        [16, 32, 64, 256][rng.random_range(0..4)],
        [1, 46, 108, 132][rng.random_range(0..4)],
    )
}

#[test]
fn chunks_partition_every_key_range_on_aligned_boundaries() {
    let mut rng = StdRng::seed_from_u64(17);
    for _ in 0..2000 {
        let (batch, hkv, max_seqlen_k, page, sms) = random_shape(&mut rng);
        let plan = SplitPlan::new(batch, hkv, max_seqlen_k, page, sms).unwrap();
        let label = format!("b{batch} hkv{hkv} k{max_seqlen_k} p{page} sm{sms}: {plan:?}");
        assert!(plan.splits >= 1, "{label}");
        assert!(
            plan.splits <= max_splits(batch, hkv, max_seqlen_k, sms).unwrap(),
            "{label}"
        );
        if plan.splits > 1 {
            assert_eq!(plan.chunk % page, 0, "{label}");
            assert_eq!(plan.chunk % KEY_TILE, 0, "{label}");
            assert!(
                plan.splits <= max_seqlen_k.div_ceil(MIN_CHUNK_KEYS),
                "{label}"
            );
            // Split only to fill the GPU: fewer than two targets' worth of blocks.
            assert!(
                plan.splits * batch * hkv < 2 * BLOCKS_PER_SM * sms,
                "{label}"
            );
        }
        // Any sequence's visible range within max_seqlen_k (a window moves its start).
        let len = rng.random_range(0..=max_seqlen_k);
        let start = rng.random_range(0..=max_seqlen_k - len);
        let keys = start..start + len;
        let mut next = keys.start;
        for c in 0..plan.splits {
            let r = plan.chunk_range(c, keys.clone());
            assert_eq!(r.start, next, "{label} chunk {c} of {keys:?}");
            assert!(
                r.end >= r.start && r.end - r.start <= plan.chunk.max(1),
                "{label}"
            );
            next = r.end;
        }
        assert_eq!(next, keys.end, "{label}: the chunks miss keys of {keys:?}");
        assert!(
            plan.chunk_range(plan.splits, keys.clone()).is_empty(),
            "{label}"
        );
    }
}

#[test]
fn no_split_when_the_batch_fills_the_gpu_or_the_sequence_is_short() {
    assert_eq!(SplitPlan::new(64, 8, 1 << 17, 16, 132).unwrap().splits, 1);
    assert_eq!(
        SplitPlan::new(1, 8, MIN_CHUNK_KEYS, 16, 132)
            .unwrap()
            .splits,
        1
    );
    let long = SplitPlan::new(1, 8, 1 << 17, 16, 132).unwrap();
    assert_eq!((long.splits, long.chunk), (33, 4032));
    assert_eq!(
        long.partial_bytes(1, 64, 1, 128, true),
        33 * 64 * (128 + 8) * 4
    );
    assert_eq!(
        SplitPlan::new(64, 8, 1 << 17, 16, 132)
            .unwrap()
            .partial_bytes(64, 64, 1, 128, true),
        0
    );
    assert!(SplitPlan::new(0, 8, 100, 16, 132).is_err());
    assert!(SplitPlan::new(1, 8, 100, 24, 132).is_err());
    assert!(SplitPlan::new(1, 8, 100, 16, 0).is_err());
}

#[test]
fn the_workspace_sized_once_fits_every_launch_within_the_bounds() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..40 {
        let sms = [46, 132][rng.random_range(0..2)];
        let bounds = DecodeBounds {
            max_batch: rng.random_range(1..=96),
            heads: 32,
            kv_heads: [1, 8][rng.random_range(0..2)],
            max_seqlen_q: rng.random_range(1..=16),
            max_seqlen_k: rng.random_range(1..=150_000),
            head_dim: 128,
            page_size: 16,
            stats: rng.random_bool(0.5),
        };
        let have = workspace_bytes(&bounds, sms).unwrap();
        let g = bounds.heads / bounds.kv_heads;
        let scalars = if bounds.stats { 8 } else { 2 };
        // Independent of batch and length: under two targets' worth of blocks of G·q_len rows.
        let bound =
            2 * BLOCKS_PER_SM * sms * g * bounds.max_seqlen_q * (bounds.head_dim + scalars) * 4;
        assert!(have <= bound + 16, "{bounds:?}: {have} > {bound}");
        for _ in 0..50 {
            let batch = rng.random_range(1..=bounds.max_batch);
            let k = rng.random_range(0..=bounds.max_seqlen_k);
            let q = rng.random_range(1..=bounds.max_seqlen_q);
            let plan = SplitPlan::new(batch, bounds.kv_heads, k, 16, sms).unwrap();
            let need = plan.partial_bytes(batch, bounds.heads, q, bounds.head_dim, bounds.stats);
            assert!(
                need + 16 <= have,
                "{bounds:?} batch {batch} k {k}: {need} > {have}"
            );
        }
    }
}

#[test]
fn a_long_row_cut_by_the_plan_merges_to_the_unsplit_row() {
    let mut rng = StdRng::seed_from_u64(41);
    let (n, dim) = (6000, 4);
    let plan = SplitPlan::new(1, 1, n, 16, 132).unwrap();
    assert!(plan.splits > 10, "{plan:?}");
    let logits: Vec<f64> = (0..n).map(|_| rng.random_range(-6.0..6.0)).collect();
    let values: Vec<f64> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    let keys: Vec<usize> = (0..n).collect();
    // A window that starts inside the first chunk's keys: the plan splits the visible range.
    let visible = 100..n;
    let chunks: Vec<Chunk<'_>> = (0..plan.splits)
        .map(|c| {
            let r = plan.chunk_range(c, visible.clone());
            Chunk::new(
                &keys[r.clone()],
                &logits[r.clone()],
                &values[r.start * dim..r.end * dim],
                dim,
            )
            .unwrap()
        })
        .collect();
    let params = RowParams {
        sink: 1.5,
        bias: -(visible.len() as f64).ln(),
    };
    for norm in Normaliser::all_defaults() {
        let got = split_row(&norm, params, &chunks, dim);
        let want = row_weights(&norm, &logits[visible.clone()], params);
        assert!(
            (got.lse - want.lse).abs() <= 1e-12 * (1.0 + want.lse.abs()),
            "{}",
            norm.name()
        );
        for c in 0..dim {
            let o: f64 = want
                .weights
                .iter()
                .enumerate()
                .map(|(j, w)| w * values[(visible.start + j) * dim + c])
                .sum();
            assert!(
                (got.o[c] - o).abs() <= 1e-12 * (1.0 + o.abs()),
                "{} o[{c}] {} vs {o}",
                norm.name(),
                got.o[c]
            );
        }
    }
}
