//! Layout identities: GQA vs repeated heads, varlen vs separate calls, strided views vs copies,
//! and the public `attention` entry point on `Device::Reference`.

use super::{assert_close, opts, random, to_f32_tensor, view};
use quietattn::reference::{self, ReferenceAttention};
use quietattn::{
    AttentionInputs, AttentionOptions, DType, DataRef, Device, Normaliser, Tensor, TensorView,
};

fn call(inputs: &AttentionInputs<'_>, options: &AttentionOptions) -> ReferenceAttention {
    reference::attention(inputs, options).expect("valid test problem")
}

#[test]
fn gqa_equals_mha_with_repeated_kv_heads() {
    let (b, s, h, hkv, d) = (2, 4, 4, 2, 3);
    let q = random(b * s * h * d, 100, 1.0);
    let k = random(b * s * hkv * d, 101, 1.0);
    let v = random(b * s * hkv * d, 102, 1.0);
    // Repeat kv head g for query heads 2g and 2g + 1.
    let repeat = |x: &[f32]| -> Vec<f32> {
        x.chunks(hkv * d)
            .flat_map(|tok| (0..h).flat_map(move |qh| tok[(qh / 2) * d..(qh / 2 + 1) * d].to_vec()))
            .collect()
    };
    let (kr, vr) = (repeat(&k), repeat(&v));
    let options = AttentionOptions {
        causal: true,
        ..opts(Normaliser::OffByOne)
    };
    let gqa = call(
        &AttentionInputs::new(
            view(&q, &[b, s, h, d]),
            view(&k, &[b, s, hkv, d]),
            view(&v, &[b, s, hkv, d]),
        ),
        &options,
    );
    let mha = call(
        &AttentionInputs::new(
            view(&q, &[b, s, h, d]),
            view(&kr, &[b, s, h, d]),
            view(&vr, &[b, s, h, d]),
        ),
        &options,
    );
    assert_eq!(gqa.o, mha.o);
    assert_eq!(gqa.lse, mha.lse);
    assert_eq!(gqa.stats.heads, mha.stats.heads);
    assert_eq!(gqa.stats.channels[0], mha.stats.channels[0]);
    assert_eq!(gqa.stats.channels[3], mha.stats.channels[3]);
    // K is counted once per kv head: twice the elements once repeated.
    let count = |r: &ReferenceAttention| r.stats.channels[1].iter().map(|c| c.count).sum::<u64>();
    assert_eq!(
        (count(&gqa), count(&mha)),
        ((b * s * hkv * d) as u64, (b * s * h * d) as u64)
    );
}

#[test]
fn varlen_equals_separate_batched_calls() {
    let (h, hkv, d) = (2, 1, 4);
    let lens = [(3usize, 5usize), (2, 2), (4, 6), (0, 3)];
    let (tq, tk): (usize, usize) = (
        lens.iter().map(|l| l.0).sum(),
        lens.iter().map(|l| l.1).sum(),
    );
    let q = random(tq * h * d, 110, 1.5);
    let k = random(tk * hkv * d, 111, 1.5);
    let v = random(tk * hkv * d, 112, 1.5);
    let sinks = [0.3f32, -0.7];
    let mut cu_q = vec![0i32];
    let mut cu_k = vec![0i32];
    for (lq, lk) in lens {
        cu_q.push(cu_q[cu_q.len() - 1] + lq as i32);
        cu_k.push(cu_k[cu_k.len() - 1] + lk as i32);
    }
    let mut inputs = AttentionInputs::new(
        view(&q, &[tq, h, d]),
        view(&k, &[tk, hkv, d]),
        view(&v, &[tk, hkv, d]),
    );
    inputs.sinks = Some(&sinks);
    inputs.cu_seqlens_q = Some(&cu_q);
    inputs.cu_seqlens_k = Some(&cu_k);
    for norm in Normaliser::all_defaults() {
        let options = AttentionOptions {
            causal: true,
            ..opts(norm)
        };
        check_varlen(&inputs, &options, &lens, (h, hkv, d), &sinks);
    }
}

#[test]
fn varlen_offsets_must_cover_every_row() {
    // Offsets that end before the rows would leave rows unread (o = 0) or keys ignored; offsets
    // past them would read out of bounds. Only an exact end is accepted, for q and for k.
    let (h, d) = (1, 4);
    let x = random(12 * h * d, 113, 1.0);
    let options = opts(Normaliser::Softmax);
    for (cq, ck, bad) in [
        (
            [0i32, 5, 10],
            [0i32, 6, 12],
            Some("cu_seqlens_q ends at 10 but the tensor has 12 rows"),
        ),
        (
            [0, 6, 12],
            [0, 5, 10],
            Some("cu_seqlens_k ends at 10 but the tensor has 12 rows"),
        ),
        ([0, 6, 13], [0, 6, 12], Some("cu_seqlens_q ends at 13")),
        ([0, 6, 12], [0, 6, 12], None),
    ] {
        let mut inputs = AttentionInputs::new(
            view(&x, &[12, h, d]),
            view(&x, &[12, h, d]),
            view(&x, &[12, h, d]),
        );
        inputs.cu_seqlens_q = Some(&cq);
        inputs.cu_seqlens_k = Some(&ck);
        let got = quietattn::AttentionProblem::new(&inputs, &options);
        match bad {
            Some(needle) => {
                let e = got.expect_err(needle).to_string();
                assert!(e.starts_with("shape error: ") && e.contains(needle), "{e}");
            }
            None => assert_eq!(got.expect("exact offsets").total_q, 12),
        }
    }
}

/// Compares one varlen call against one batched call per sequence.
fn check_varlen(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    lens: &[(usize, usize)],
    (h, hkv, d): (usize, usize, usize),
    sinks: &[f32; 2],
) {
    let (q, k, v) = (&inputs.q, &inputs.k, &inputs.v);
    let (cu_q, cu_k) = (
        inputs.cu_seqlens_q.unwrap_or_default(),
        inputs.cu_seqlens_k.unwrap_or_default(),
    );
    let tq = cu_q[cu_q.len() - 1] as usize;
    let q = q.to_f64().iter().map(|&x| x as f32).collect::<Vec<_>>();
    let k = k.to_f64().iter().map(|&x| x as f32).collect::<Vec<_>>();
    let v = v.to_f64().iter().map(|&x| x as f32).collect::<Vec<_>>();
    let all = call(inputs, options);

    let mut rows = [0u64; 2];
    let mut k_sum = 0.0;
    for (b, &(lq, lk)) in lens.iter().enumerate() {
        // Sequence b as its own batched call; sigmoid's default bias is then -ln(lk) as well.
        let (q0, k0) = (cu_q[b] as usize, cu_k[b] as usize);
        let qs = &q[q0 * h * d..(q0 + lq) * h * d];
        let ks = &k[k0 * hkv * d..(k0 + lk) * hkv * d];
        let vs = &v[k0 * hkv * d..(k0 + lk) * hkv * d];
        let mut one = AttentionInputs::new(
            view(qs, &[1, lq, h, d]),
            view(ks, &[1, lk, hkv, d]),
            view(vs, &[1, lk, hkv, d]),
        );
        one.sinks = Some(sinks);
        let r = call(&one, options);
        assert_eq!(&all.o[q0 * h * d..(q0 + lq) * h * d], &r.o[..]);
        for (head, counted) in rows.iter_mut().enumerate() {
            let row = head * tq + q0;
            assert_eq!(&all.lse[row..row + lq], &r.lse[head * lq..(head + 1) * lq]);
            *counted += r.stats.heads[head].rows;
        }
        k_sum += r.stats.channels[1][0].sum;
    }
    assert_eq!([all.stats.heads[0].rows, all.stats.heads[1].rows], rows);
    assert!((all.stats.channels[1][0].sum - k_sum).abs() < 1e-12);
    // Every query row is counted once.
    assert!(all.stats.channels[0].iter().all(|c| c.count == tq as u64));
}

#[test]
fn strided_views_equal_contiguous_copies() {
    let (b, s, h, d) = (2, 3, 2, 4);
    // Packed QKV: [b, s, 3, h, d].
    let packed = random(b * s * 3 * h * d, 120, 1.0);
    let strides = [s * 3 * h * d, 3 * h * d, d, 1];
    let part = |i: usize| {
        TensorView::new(DataRef::F32(&packed), &[b, s, h, d], &strides, i * h * d)
            .expect("packed view fits")
    };
    let (qv, kv, vv) = (part(0), part(1), part(2));
    let copies: Vec<Vec<f32>> = [&qv, &kv, &vv]
        .iter()
        .map(|t| t.to_f64().iter().map(|&x| x as f32).collect())
        .collect();
    let shape = [b, s, h, d];
    let options = AttentionOptions {
        causal: true,
        softcap: Some(5.0),
        ..opts(Normaliser::Softpick)
    };
    let strided = call(&AttentionInputs::new(qv, kv, vv), &options);
    let contiguous = call(
        &AttentionInputs::new(
            view(&copies[0], &shape),
            view(&copies[1], &shape),
            view(&copies[2], &shape),
        ),
        &options,
    );
    assert_eq!(strided.o, contiguous.o);
    assert_eq!(strided.lse, contiguous.lse);
    assert_eq!(strided.stats, contiguous.stats);

    // Head-major storage [b, h, s, d] read through a permuted view.
    let hm: Vec<f32> = (0..b * h * s * d)
        .map(|x| {
            let (bi, hi, si, c) = (x / (h * s * d), x / (s * d) % h, x / d % s, x % d);
            copies[0][((bi * s + si) * h + hi) * d + c]
        })
        .collect();
    let q_perm = TensorView::new(DataRef::F32(&hm), &shape, &[h * s * d, d, s * d, 1], 0)
        .expect("permuted view fits");
    let permuted = call(
        &AttentionInputs::new(q_perm, view(&copies[1], &shape), view(&copies[2], &shape)),
        &options,
    );
    assert_eq!(permuted.o, contiguous.o);
}

#[test]
fn public_entry_point_rounds_the_reference() {
    let (b, s, h, d) = (1, 3, 2, 4);
    let q: Vec<f32> = random(b * s * h * d, 130, 1.0);
    let kv: Vec<f32> = random(b * s * h * d, 131, 1.0);
    let shape = [b, s, h, d];
    let inputs = AttentionInputs::new(view(&q, &shape), view(&kv, &shape), view(&kv, &shape));
    let mut options = opts(Normaliser::Softmax);
    let r = call(&inputs, &options);
    let out = quietattn::attention(&Device::Reference, &inputs, &options).expect("reference runs");
    assert_eq!(out.o, to_f32_tensor(&r.o, &shape));
    assert_eq!(out.lse, to_f32_tensor(&r.lse, &[b, h, s]));
    assert!(out.stats.is_none());
    options.stats = true;
    let out = quietattn::attention(&Device::Reference, &inputs, &options).expect("reference runs");
    assert_eq!(out.stats.as_ref(), Some(&r.stats));

    // f16 inputs give an f16 output rounded from the same f64 values.
    let to16 = |x: &[f32]| Tensor::from_f64(DType::F16, &super::wide(x), &shape);
    let (q16, kv16) = (to16(&q).expect("fits"), to16(&kv).expect("fits"));
    let inputs = AttentionInputs::new(q16.view(), kv16.view(), kv16.view());
    let r = call(&inputs, &options);
    let out = quietattn::attention(&Device::Reference, &inputs, &options).expect("reference runs");
    assert_eq!(out.o.dtype(), DType::F16);
    assert_eq!(
        out.o,
        Tensor::from_f64(DType::F16, &r.o, &shape).expect("fits")
    );
    assert_close(&out.o.to_f64(), &r.o, 1e-3);
}
