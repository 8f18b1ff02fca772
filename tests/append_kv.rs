//! The write side of the paged cache: `append_kv` scatters each step's K/V rows into their
//! slots exactly (any dtype, strided sources), leaves every other slot alone, rejects bad slots
//! before writing anything, and a cache filled step by step gives the contiguous attention.

use quietattn::problem::{PagedCache, TensorLayout};
use quietattn::reference::{self, SKIP_SLOT, append_kv, paged_attention, slot_mapping};
use quietattn::{
    AttentionInputs, AttentionOptions, BlockTable, DType, Error, Normaliser, PagedAttentionInputs,
    Tensor, TensorView,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const HKV: usize = 2;
const DIM: usize = 4;

fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-3.0..3.0)).collect()
}

fn cache_of(caches: &Tensor) -> PagedCache {
    let layout = TensorLayout::of_view(&caches.view());
    PagedCache::new(&layout, &layout).unwrap()
}

#[test]
fn decode_steps_fill_the_pages_and_attention_sees_the_contiguous_keys() {
    let mut rng = StdRng::seed_from_u64(3);
    let (page_size, num_pages, max_pages) = (16, 12, 4);
    // Final lengths per sequence; each step appends one token to every sequence still growing.
    let lens = [1usize, 17, 40, 0];
    let mut pages: Vec<usize> = (0..num_pages).collect();
    pages.shuffle(&mut rng);
    let mut table = vec![-1i32; lens.len() * max_pages];
    let mut next = pages.into_iter();
    for (b, &n) in lens.iter().enumerate() {
        for p in 0..n.div_ceil(page_size) {
            table[b * max_pages + p] = next.next().unwrap() as i32;
        }
    }
    let table = BlockTable::new(&table, lens.len(), max_pages).unwrap();
    let shape = [num_pages, page_size, HKV, DIM];
    let nan = vec![f64::NAN; shape.iter().product()];
    let mut k_cache = Tensor::from_f64(DType::BF16, &nan, &shape).unwrap();
    let mut v_cache = k_cache.clone();
    let cache = cache_of(&k_cache);

    // What each sequence should hold, in key order (rounded to bf16 like the cache).
    let mut keys: Vec<Vec<f64>> = vec![Vec::new(); lens.len()];
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); lens.len()];
    for step in 0..*lens.iter().max().unwrap() {
        let tokens: Vec<(usize, usize)> = (0..lens.len())
            .filter(|&b| step < lens[b])
            .map(|b| (b, step))
            .collect();
        let k = Tensor::from_f64(
            DType::BF16,
            &random(&mut rng, tokens.len() * HKV * DIM),
            &[tokens.len(), HKV, DIM],
        )
        .unwrap();
        let v = Tensor::from_f64(
            DType::BF16,
            &random(&mut rng, tokens.len() * HKV * DIM),
            &[tokens.len(), HKV, DIM],
        )
        .unwrap();
        let slots = slot_mapping(&table, &cache, &tokens).unwrap();
        append_kv(&mut k_cache, &mut v_cache, &k.view(), &v.view(), &slots).unwrap();
        let row = HKV * DIM;
        for (t, &(b, _)) in tokens.iter().enumerate() {
            keys[b].extend_from_slice(&k.to_f64()[t * row..(t + 1) * row]);
            values[b].extend_from_slice(&v.to_f64()[t * row..(t + 1) * row]);
        }
    }

    // Every written slot holds its token; the rest of the cache is still NaN.
    let written: usize = lens.iter().sum::<usize>() * HKV * DIM;
    let untouched = k_cache.to_f64().iter().filter(|x| x.is_nan()).count();
    assert_eq!(untouched, k_cache.to_f64().len() - written);

    // One query token per sequence against the filled cache = the contiguous reference.
    let q = Tensor::from_f64(
        DType::BF16,
        &random(&mut rng, lens.len() * 4 * DIM),
        &[lens.len(), 1, 4, DIM],
    )
    .unwrap();
    let seq_lens: Vec<i32> = lens.iter().map(|&n| n as i32).collect();
    let paged =
        PagedAttentionInputs::new(q.view(), k_cache.view(), v_cache.view(), table, &seq_lens);
    let options = AttentionOptions {
        normaliser: Normaliser::OffByOne,
        causal: true,
        stats: true,
        ..AttentionOptions::default()
    };
    let got = paged_attention(&paged, &options).unwrap();

    let total: usize = lens.iter().sum();
    let k = Tensor::from_f64(DType::BF16, &keys.concat(), &[total, HKV, DIM]).unwrap();
    let v = Tensor::from_f64(DType::BF16, &values.concat(), &[total, HKV, DIM]).unwrap();
    let qv = Tensor::from_f64(DType::BF16, &q.to_f64(), &[lens.len(), 4, DIM]).unwrap();
    let cu_q: Vec<i32> = (0..=lens.len() as i32).collect();
    let mut cu_k = vec![0];
    for &n in &lens {
        cu_k.push(cu_k.last().unwrap() + n as i32);
    }
    let mut inputs = AttentionInputs::new(qv.view(), k.view(), v.view());
    inputs.cu_seqlens_q = Some(&cu_q);
    inputs.cu_seqlens_k = Some(&cu_k);
    let want = reference::attention(&inputs, &options).unwrap();
    assert_eq!(got.o, want.o);
    assert_eq!(got.stats, want.stats);
}

#[test]
fn strided_sources_are_copied_exactly_and_skipped_tokens_write_nothing() {
    let mut rng = StdRng::seed_from_u64(9);
    // Packed KV: [tokens, 2 (k|v), hkv, d]; k and v are strided views into it.
    let tokens = 3;
    let packed = Tensor::from_f64(
        DType::F16,
        &random(&mut rng, tokens * 2 * HKV * DIM),
        &[tokens, 2, HKV, DIM],
    )
    .unwrap();
    let strides = [2 * HKV * DIM, DIM, 1];
    let k = TensorView::new(packed.data.as_ref(), &[tokens, HKV, DIM], &strides, 0).unwrap();
    let v = TensorView::new(
        packed.data.as_ref(),
        &[tokens, HKV, DIM],
        &strides,
        HKV * DIM,
    )
    .unwrap();
    let mut k_cache = Tensor::zeros(DType::F16, &[2, 16, HKV, DIM]).unwrap();
    let mut v_cache = k_cache.clone();
    append_kv(&mut k_cache, &mut v_cache, &k, &v, &[31, SKIP_SLOT, 0]).unwrap();
    for (t, slot) in [(0usize, 31usize), (2, 0)] {
        let (page, off) = (slot / 16, slot % 16);
        for h in 0..HKV {
            for c in 0..DIM {
                assert_eq!(
                    k_cache.view().at(&[page, off, h, c]),
                    packed.view().at(&[t, 0, h, c])
                );
                assert_eq!(
                    v_cache.view().at(&[page, off, h, c]),
                    packed.view().at(&[t, 1, h, c])
                );
            }
        }
    }
    let nonzero = k_cache.to_f64().iter().filter(|&&x| x != 0.0).count();
    assert!(
        nonzero <= 2 * HKV * DIM && nonzero > 0,
        "only the two written slots: {nonzero}"
    );
}

#[test]
fn bad_slots_and_rows_are_errors_and_write_nothing() {
    let k_cache0 = Tensor::zeros(DType::F32, &[2, 16, HKV, DIM]).unwrap();
    let ones = Tensor::from_f64(DType::F32, &[1.0; 2 * HKV * DIM], &[2, HKV, DIM]).unwrap();
    let halves = Tensor::from_f64(DType::F16, &[1.0; 2 * HKV * DIM], &[2, HKV, DIM]).unwrap();
    let three_heads = Tensor::zeros(DType::F32, &[2, 3, DIM]).unwrap();
    let cases: [(&str, &Tensor, &[i64]); 6] = [
        ("slot past the cache", &ones, &[0, 32]),
        ("slot below -1", &ones, &[-2, 0]),
        ("two tokens, one slot", &ones, &[5, 5]),
        ("fewer slots than tokens", &ones, &[5]),
        ("dtype", &halves, &[0, 1]),
        ("kv heads", &three_heads, &[0, 1]),
    ];
    for (what, rows, slots) in cases {
        let (mut kc, mut vc) = (k_cache0.clone(), k_cache0.clone());
        let e = append_kv(&mut kc, &mut vc, &rows.view(), &rows.view(), slots).unwrap_err();
        let kind_ok = match what {
            "dtype" => matches!(e, Error::Unsupported(_)),
            "kv heads" | "fewer slots than tokens" => matches!(e, Error::Shape(_)),
            _ => matches!(e, Error::Index(_)),
        };
        assert!(kind_ok, "{what}: {e}");
        assert_eq!(kc, k_cache0, "{what}: the cache was written");
        assert_eq!(vc, k_cache0, "{what}: the cache was written");
    }
    // A cache whose page size is not a power of two ≥ 16 is not a paged cache.
    let mut odd = Tensor::zeros(DType::F32, &[2, 12, HKV, DIM]).unwrap();
    let mut odd_v = odd.clone();
    let e = append_kv(&mut odd, &mut odd_v, &ones.view(), &ones.view(), &[0, 1]).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
}

#[test]
fn slot_mapping_rejects_positions_the_table_does_not_map() {
    let caches = Tensor::zeros(DType::F32, &[3, 16, HKV, DIM]).unwrap();
    let cache = cache_of(&caches);
    let table = BlockTable::new(&[2, 0, 1, 9], 2, 2).unwrap();
    assert_eq!(
        slot_mapping(&table, &cache, &[(0, 0), (0, 31), (1, 5)]).unwrap(),
        vec![32, 15, 21]
    );
    for tokens in [[(0, 32)], [(2, 0)], [(1, 16)]] {
        let e = slot_mapping(&table, &cache, &tokens).unwrap_err();
        assert!(matches!(e, Error::Index(_)), "{tokens:?}: {e}");
    }
}
