//! The paged KV cache (docs/contract.md §7) in the f64 reference: pages in shuffled order, unused
//! pages full of NaN, garbage past each sequence's pages, ragged lengths including 0 and 1, page
//! sizes 16 and 64 — the result equals the ordinary reference on the contiguous problem, value for
//! value, with every normaliser, mask, softcap, gate and statistic; and every bad input is an
//! error value.

use quietattn::reference::{self, paged_attention};
use quietattn::{
    AttentionInputs, AttentionOptions, BlockTable, DType, Error, Gate, Normaliser,
    PagedAttentionInputs, Tensor,
};

mod paged_parts;

use paged_parts::{Fixture, LENS, Shape};

const DIM: usize = 8;

/// The shared paged fixture in f32 with head dim 8.
fn fixture(
    seed: u64,
    page_size: usize,
    q_len: usize,
    (heads, kv_heads): (usize, usize),
) -> Fixture {
    let shape = Shape {
        dtype: DType::F32,
        dim: DIM,
        page_size,
        q_len,
        heads,
        kv_heads,
    };
    Fixture::new(seed, shape)
}

/// The same problem through the ordinary reference: varlen queries `[b·sq, h, d]` and keys
/// concatenated from the fixture's own per-sequence arrays (not from the pages).
fn contiguous(
    f: &Fixture,
    options: &AttentionOptions,
) -> (Vec<f64>, Vec<f64>, quietattn::OutlierStats) {
    let [b, sq, h, d] = f.q.shape[..] else {
        unreachable!()
    };
    let q = Tensor::from_f64(DType::F32, &f.q.to_f64(), &[b * sq, h, d]).unwrap();
    let gate = Tensor::from_f64(DType::F32, &f.gate.to_f64(), &[b * sq, h]).unwrap();
    let total: usize = LENS.iter().sum();
    let shape = [total, f.shape.kv_heads, DIM];
    let k = Tensor::from_f64(DType::F32, &f.keys.concat(), &shape).unwrap();
    let v = Tensor::from_f64(DType::F32, &f.values.concat(), &shape).unwrap();
    let cu_q: Vec<i32> = (0..=b).map(|i| (i * sq) as i32).collect();
    let mut cu_k = vec![0i32];
    for n in LENS {
        cu_k.push(cu_k.last().unwrap() + n as i32);
    }
    let mut inputs = AttentionInputs::new(q.view(), k.view(), v.view());
    inputs.sinks = Some(&f.sinks);
    inputs.gate = Some(gate.view());
    inputs.cu_seqlens_q = Some(&cu_q);
    inputs.cu_seqlens_k = Some(&cu_k);
    let out = reference::attention(&inputs, options).unwrap();
    // lse [h, b·sq] → [b, h, sq]
    let lse = (0..b)
        .flat_map(|s| (0..h).flat_map(move |hh| (0..sq).map(move |i| (hh, s * sq + i))))
        .map(|(hh, t)| out.lse[hh * b * sq + t])
        .collect();
    (out.o, lse, out.stats)
}

fn options(norm: Normaliser, variant: usize) -> AttentionOptions {
    AttentionOptions {
        normaliser: norm,
        causal: variant != 1,
        window: (variant == 1).then_some((20, 0)),
        softcap: (variant == 2).then_some(3.0),
        gate: if variant == 2 {
            Gate::SigmoidHeadwise
        } else {
            Gate::None
        },
        stats: true,
        ..AttentionOptions::default()
    }
}

#[test]
fn pages_in_any_order_give_the_contiguous_reference_exactly() {
    let mut cases = 0;
    for page_size in [16, 64] {
        for (q_len, heads) in [(1, (4, 2)), (4, (3, 1)), (16, (2, 2))] {
            let f = fixture(
                page_size as u64 * 31 + q_len as u64,
                page_size,
                q_len,
                heads,
            );
            for norm in Normaliser::all_defaults() {
                for variant in 0..3 {
                    let opts = options(norm, variant);
                    let got = paged_attention(&f.paged(), &opts).unwrap();
                    let (o, lse, stats) = contiguous(&f, &opts);
                    let label = format!(
                        "{} page {page_size} q_len {q_len} heads {heads:?} variant {variant}",
                        norm.name()
                    );
                    assert!(
                        o.iter().all(|x| x.is_finite()),
                        "{label}: a NaN page was read"
                    );
                    assert_eq!(got.o, o, "{label}");
                    assert_eq!(got.lse, lse, "{label}");
                    assert_eq!(got.stats, stats, "{label}");
                    // Bottom-right alignment: with k keys, the last min(q_len, k) rows see one.
                    let rows: u64 = got.stats.heads.iter().map(|h| h.rows).sum();
                    let want: usize = LENS.iter().map(|&k| q_len.min(k)).sum();
                    assert_eq!(rows, (want * f.shape.heads) as u64, "{label}");
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 3 * 6 * 3);
}

#[test]
fn varlen_queries_against_pages_match_the_batched_form() {
    let f = fixture(5, 16, 2, (4, 2));
    let opts = options(Normaliser::Sink, 0);
    let batched = paged_attention(&f.paged(), &opts).unwrap();
    let q = Tensor::from_f64(DType::F32, &f.q.to_f64(), &[LENS.len() * 2, 4, DIM]).unwrap();
    let gate = Tensor::from_f64(DType::F32, &f.gate.to_f64(), &[LENS.len() * 2, 4]).unwrap();
    let cu_q: Vec<i32> = (0..=LENS.len() as i32).map(|i| 2 * i).collect();
    let mut p = f.paged();
    p.q = q.view();
    p.gate = Some(gate.view());
    p.cu_seqlens_q = Some(&cu_q);
    let varlen = paged_attention(&p, &opts).unwrap();
    assert_eq!(varlen.problem.geometry.lse_shape(), vec![4, LENS.len() * 2]);
    assert_eq!(varlen.o, batched.o);
    // [h, b·sq] against [b, h, sq]
    for (b, h, i) in
        (0..LENS.len()).flat_map(|b| (0..4).flat_map(move |h| (0..2).map(move |i| (b, h, i))))
    {
        let v = varlen.lse[h * LENS.len() * 2 + b * 2 + i];
        assert_eq!(v, batched.lse[(b * 4 + h) * 2 + i]);
    }
    let out = varlen.into_output(true).unwrap();
    assert_eq!(out.o.shape, vec![LENS.len() * 2, 4, DIM]);
}

/// The error a paged call returns with one thing changed.
fn error_with<'a>(
    f: &'a Fixture,
    change: impl FnOnce(&mut PagedAttentionInputs<'a>, &mut AttentionOptions),
) -> Error {
    let mut p = f.paged();
    let mut opts = AttentionOptions::default();
    change(&mut p, &mut opts);
    match paged_attention(&p, &opts) {
        Ok(_) => panic!("accepted bad input"),
        Err(e) => e,
    }
}

#[test]
fn bad_tables_and_lengths_are_errors() {
    // A page index past the cache, or negative, inside a sequence's pages.
    let f = fixture(1, 16, 1, (4, 2));
    for bad in [f.k_cache.shape[0] as i32, -3] {
        let mut table = f.table.clone();
        table[4 * f.max_pages + 2] = bad; // sequence 4 (70 keys) reads pages 0..5
        let t = BlockTable::new(&table, LENS.len(), f.max_pages).unwrap();
        let p = PagedAttentionInputs {
            block_table: t,
            ..f.paged()
        };
        let e = paged_attention(&p, &AttentionOptions::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Index(m) if m.contains("block_table[4, 2]")),
            "{e}"
        );
    }
    // Garbage in the last column is never read: a length that stops before it is fine.
    assert!(paged_attention(&f.paged(), &AttentionOptions::default()).is_ok());

    // A length that needs the garbage column (beyond what the table maps).
    let mapped = (f.max_pages * 16) as i32;
    for (len, index) in [(mapped - 1, true), (mapped + 1, true), (-1, false)] {
        let mut lens = f.lens.clone();
        lens[0] = len;
        let p = PagedAttentionInputs {
            seq_lens_k: &lens,
            ..f.paged()
        };
        let e = paged_attention(&p, &AttentionOptions::default()).unwrap_err();
        let ok = if index {
            matches!(e, Error::Index(_))
        } else {
            matches!(e, Error::Shape(_))
        };
        assert!(ok, "len {len}: {e}");
    }
    // A table with fewer entries than batch × max_pages, and lengths for another batch.
    assert!(matches!(
        BlockTable::new(&f.table[1..], LENS.len(), f.max_pages),
        Err(Error::Shape(_))
    ));
    let e = error_with(&f, |p, _| p.seq_lens_k = &p.seq_lens_k[1..]);
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let short_cu = [0, 1];
    let e = error_with(&f, |p, _| p.cu_seqlens_q = Some(&short_cu));
    assert!(
        matches!(&e, Error::Shape(m) if m.contains("cu_seqlens_q")),
        "{e}"
    );
}

#[test]
fn bad_caches_and_shapes_are_errors() {
    let f = fixture(1, 16, 1, (4, 2));
    for page_size in [8usize, 24, 48] {
        let cache = Tensor::zeros(DType::F32, &[4, page_size, 2, DIM]).unwrap();
        let q = Tensor::zeros(DType::F32, &[1, 1, 4, DIM]).unwrap();
        let table = BlockTable::new(&[0], 1, 1).unwrap();
        let p = PagedAttentionInputs::new(q.view(), cache.view(), cache.view(), table, &[1]);
        let e = paged_attention(&p, &AttentionOptions::default()).unwrap_err();
        assert!(
            matches!(&e, Error::Shape(m) if m.contains("power of two")),
            "{page_size}: {e}"
        );
    }
    let f16_cache = Tensor::zeros(DType::F16, &[12, 16, 2, DIM]).unwrap();
    let e = error_with(&f, |p, _| p.k_cache = f16_cache.view());
    assert!(matches!(e, Error::Shape(_) | Error::Unsupported(_)), "{e}");
    let f16_both = Tensor::zeros(DType::F16, &[40, 16, 2, DIM]).unwrap();
    let e = error_with(&f, |p, _| {
        p.k_cache = f16_both.view();
        p.v_cache = f16_both.view();
    });
    assert!(
        matches!(&e, Error::Unsupported(m) if m.contains("dtype")),
        "q f32, cache f16: {e}"
    );
    let three_kv = Tensor::zeros(DType::F32, &[40, 16, 3, DIM]).unwrap();
    let e = error_with(&f, |p, _| {
        p.k_cache = three_kv.view();
        p.v_cache = three_kv.view();
    });
    assert!(
        matches!(&e, Error::Shape(m) if m.contains("multiple of kv heads")),
        "{e}"
    );
    let rank3 = Tensor::zeros(DType::F32, &[40, 16, 2 * DIM]).unwrap();
    let e = error_with(&f, |p, _| p.k_cache = rank3.view());
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let other_dim = Tensor::zeros(DType::F32, &[40, 16, 2, 2 * DIM]).unwrap();
    let e = error_with(&f, |p, _| {
        p.k_cache = other_dim.view();
        p.v_cache = other_dim.view();
    });
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let e = error_with(&f, |p, o| {
        p.sinks = None;
        o.normaliser = Normaliser::Sink;
    });
    assert!(matches!(e, Error::InvalidOption(_)), "{e}");
    let nan_sinks = [f32::NAN; 4];
    let e = error_with(&f, |p, o| {
        p.sinks = Some(&nan_sinks);
        o.normaliser = Normaliser::Sink;
    });
    assert!(
        matches!(&e, Error::InvalidOption(m) if m.contains("finite")),
        "{e}"
    );
    let e = error_with(&f, |_, o| o.gate = Gate::SigmoidElementwise); // gate logits are headwise
    assert!(matches!(e, Error::Shape(_)), "{e}");
}
