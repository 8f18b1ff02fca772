//! docs/contract.md §3: every normaliser against a closed form or an equivalent augmented softmax.

use super::{assert_close, max_diff, opts, random, run};
use quietattn::{AttentionOptions, Normaliser};

/// One query, two keys, d = 1, scale 1: the logits are the two k values.
fn two_keys(norm: Normaliser, s: [f32; 2], v: [f32; 2], sinks: Option<&[f32]>) -> (f64, f64) {
    let options = AttentionOptions {
        scale: Some(1.0),
        ..opts(norm)
    };
    let r = run(
        (&[1.0], [1, 1, 1, 1]),
        (&s, [1, 2, 1, 1]),
        &v,
        sinks,
        &options,
    );
    (r.o[0], r.lse[0])
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn two_key_closed_forms_for_every_normaliser() {
    let (s0, s1, v0, v1) = (0.75f64, -0.5f64, 2.0f64, -3.0f64);
    let (s, v) = ([s0 as f32, s1 as f32], [v0 as f32, v1 as f32]);

    // softmax of two logits is the logistic of their difference; lse is logaddexp.
    let (o, lse) = two_keys(Normaliser::Softmax, s, v, None);
    assert!((o - (v1 + (v0 - v1) * logistic(s0 - s1))).abs() < 1e-14);
    assert!((lse - (s0 + (1.0 + (s1 - s0).exp()).ln())).abs() < 1e-14);

    // off-by-one: dividing by e^{s0}, p0 = 1 / (e^{-s0} + 1 + e^{s1-s0}).
    let (o, lse) = two_keys(Normaliser::OffByOne, s, v, None);
    let p0 = 1.0 / ((-s0).exp() + 1.0 + (s1 - s0).exp());
    let p1 = 1.0 / ((-s1).exp() + (s0 - s1).exp() + 1.0);
    assert!((o - (p0 * v0 + p1 * v1)).abs() < 1e-14);
    assert!((lse - (1.0 + s0.exp() + s1.exp()).ln()).abs() < 1e-14);

    // sink σ: p_j = 1 / (e^{σ - s_j} + Σ_k e^{s_k - s_j}).
    let sigma = 1.25f64;
    let (o, lse) = two_keys(Normaliser::Sink, s, v, Some(&[sigma as f32]));
    let p0 = 1.0 / ((sigma - s0).exp() + 1.0 + (s1 - s0).exp());
    let p1 = 1.0 / ((sigma - s1).exp() + (s0 - s1).exp() + 1.0);
    assert!((o - (p0 * v0 + p1 * v1)).abs() < 1e-14);
    assert!((lse - (sigma.exp() + s0.exp() + s1.exp()).ln()).abs() < 1e-14);

    // clipped, no clipping active: p = (ζ-γ)·logistic(±Δ) + γ.
    let (gamma, zeta) = (-0.125f32, 1.25f32);
    let clipped = Normaliser::Clipped { gamma, zeta };
    let (g, z) = (f64::from(gamma), f64::from(zeta));
    let (o, lse) = two_keys(clipped, s, v, None);
    let p0 = (z - g) * logistic(s0 - s1) + g;
    let p1 = (z - g) * logistic(s1 - s0) + g;
    assert!((0.0..1.0).contains(&p0) && (0.0..1.0).contains(&p1));
    assert!((o - (p0 * v0 + p1 * v1)).abs() < 1e-14);
    assert!((lse - (s0.exp() + s1.exp()).ln()).abs() < 1e-14);
    // ... and with both ends clipped: a 5-logit gap makes key 0 exactly 1 and key 1 exactly 0.
    let (o, _) = two_keys(clipped, [3.0, -2.0], v, None);
    assert_eq!(o, v0);

    // softpick: only the positive logit has mass; the denominator also counts |e^{s1} - 1|.
    let (o, lse) = two_keys(Normaliser::Softpick, s, v, None);
    let (n0, n1) = (s0.exp() - 1.0, 1.0 - s1.exp());
    assert!((o - v0 * n0 / (n0 + n1 + 1e-6)).abs() < 1e-13);
    assert!((lse - (n0 + n1).ln()).abs() < 1e-13);

    // sigmoid, default b = -ln 2: e^{-(s - ln 2)} = 2 e^{-s}.
    let (o, lse) = two_keys(Normaliser::Sigmoid { bias: None }, s, v, None);
    let w = |x: f64| 1.0 / (1.0 + 2.0 * (-x).exp());
    assert!((o - (w(s0) * v0 + w(s1) * v1)).abs() < 1e-14);
    assert_eq!(lse, 0.0);
    // and an explicit bias b = 0.5.
    let (o, _) = two_keys(Normaliser::Sigmoid { bias: Some(0.5) }, s, v, None);
    let w = |x: f64| 1.0 / (1.0 + (-0.5 - x).exp());
    assert!((o - (w(s0) * v0 + w(s1) * v1)).abs() < 1e-14);
}

const B: usize = 2;
const SQ: usize = 3;
const SK: usize = 4;
const H: usize = 2;
const D: usize = 8;

/// Random batched q, k, v of shapes `[B, SQ, H, D]` and `[B, SK, H, D]`.
fn qkv(seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (
        random(B * SQ * H * D, seed, 1.5),
        random(B * SK * H * D, seed + 1, 1.5),
        random(B * SK * H * D, seed + 2, 1.5),
    )
}

/// Prepends one key per (batch, head) to k/v with head dim `D + 1`: its k is `extra_k(h)` in the
/// last component (0 elsewhere), its v is 0; real keys get a 0 appended, q gets a 1 appended, so
/// the extra key's logit is `scale·extra_k(h)` and every other logit is unchanged.
fn augment(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    extra_k: impl Fn(usize) -> f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let pad = |x: &[f32], last: f32| -> Vec<f32> {
        x.chunks(D)
            .flat_map(|r| r.iter().copied().chain([last]))
            .collect()
    };
    let qa = pad(q, 1.0);
    let (mut ka, mut va) = (Vec::new(), Vec::new());
    let (kp, vp) = (pad(k, 0.0), pad(v, 0.0));
    let row = H * (D + 1);
    for b in 0..B {
        for h in 0..H {
            ka.extend((0..D).map(|_| 0.0).chain([extra_k(h)]));
            va.extend([0.0; D + 1]);
        }
        ka.extend_from_slice(&kp[b * SK * row..(b + 1) * SK * row]);
        va.extend_from_slice(&vp[b * SK * row..(b + 1) * SK * row]);
    }
    (qa, ka, va)
}

/// Drops the last component of each `D + 1` row.
fn unpad(o: &[f64]) -> Vec<f64> {
    o.chunks(D + 1).flat_map(|r| r[..D].to_vec()).collect()
}

#[test]
fn off_by_one_is_softmax_with_a_zero_logit_zero_value_key() {
    let (q, k, v) = qkv(10);
    let scale = 0.4f32;
    let with = |n| AttentionOptions {
        scale: Some(scale),
        ..opts(n)
    };
    let r1 = run(
        (&q, [B, SQ, H, D]),
        (&k, [B, SK, H, D]),
        &v,
        None,
        &with(Normaliser::OffByOne),
    );
    let (qa, ka, va) = augment(&q, &k, &v, |_| 0.0);
    let r0 = run(
        (&qa, [B, SQ, H, D + 1]),
        (&ka, [B, SK + 1, H, D + 1]),
        &va,
        None,
        &with(Normaliser::Softmax),
    );
    assert_close(&r1.o, &unpad(&r0.o), 1e-14);
    assert_close(&r1.lse, &r0.lse, 1e-13);
    assert!(r0.o.chunks(D + 1).all(|r| r[D] == 0.0));
}

#[test]
fn sink_is_softmax_with_an_extra_key_of_logit_sigma() {
    let (q, k, v) = qkv(20);
    let sinks = [0.75f32, -1.5];
    let scale = 0.5f32;
    let with = |n| AttentionOptions {
        scale: Some(scale),
        ..opts(n)
    };
    let r1 = run(
        (&q, [B, SQ, H, D]),
        (&k, [B, SK, H, D]),
        &v,
        Some(&sinks),
        &with(Normaliser::Sink),
    );
    // scale = 1/2, so a key component of 2σ gives the logit σ exactly.
    let (qa, ka, va) = augment(&q, &k, &v, |h| 2.0 * sinks[h]);
    let r0 = run(
        (&qa, [B, SQ, H, D + 1]),
        (&ka, [B, SK + 1, H, D + 1]),
        &va,
        None,
        &with(Normaliser::Softmax),
    );
    assert_close(&r1.o, &unpad(&r0.o), 1e-14);
    assert_close(&r1.lse, &r0.lse, 1e-13);
}

#[test]
fn sink_at_minus_200_and_clipped_0_1_are_softmax() {
    let (q, k, v) = qkv(30);
    let call = |n, sinks: Option<&[f32]>| {
        run(
            (&q, [B, SQ, H, D]),
            (&k, [B, SK, H, D]),
            &v,
            sinks,
            &opts(n),
        )
    };
    let soft = call(Normaliser::Softmax, None);
    let sink = call(Normaliser::Sink, Some(&[-200.0, -200.0]));
    // e^{-200} relative to sums of order 1 is far below f64 resolution.
    assert_close(&sink.o, &soft.o, 1e-15);
    assert_close(&sink.lse, &soft.lse, 1e-15);
    let clipped = call(
        Normaliser::Clipped {
            gamma: 0.0,
            zeta: 1.0,
        },
        None,
    );
    assert_eq!(max_diff(&clipped.o, &soft.o), 0.0);
    assert_eq!(max_diff(&clipped.lse, &soft.lse), 0.0);
}

/// One query over `n` keys with `d = n` and one-hot values, so `o` is exactly the weight row.
fn weight_row(norm: Normaliser, q: &[f32], k: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = q.len();
    let v: Vec<f32> = (0..n * n).map(|x| f32::from(x % (n + 1) == 0)).collect();
    let r = run((q, [1, 1, 1, n]), (k, [1, n, 1, n]), &v, None, &opts(norm));
    let scale = 1.0 / (n as f64).sqrt();
    let s = k
        .chunks(n)
        .map(|kj| {
            let dot: f64 = kj
                .iter()
                .zip(q)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            scale * dot
        })
        .collect();
    (r.o, s)
}

#[test]
fn sigmoid_weights_are_logistic_of_shifted_logits() {
    let n = 6;
    let (q, k) = (random(n, 40, 2.0), random(n * n, 41, 2.0));
    let (w, s) = weight_row(Normaliser::Sigmoid { bias: None }, &q, &k);
    for (wj, sj) in w.iter().zip(&s) {
        assert!(*wj > 0.0 && *wj < 1.0);
        // b = -ln 6: e^{-(s+b)} = 6 e^{-s}; products of f32 inputs are exact in f64.
        assert!((wj - 1.0 / (1.0 + 6.0 * (-sj).exp())).abs() < 1e-14);
    }
}

#[test]
fn softpick_weights_vanish_for_non_positive_logits() {
    let n = 7;
    let (q, k) = (random(n, 50, 2.0), random(n * n, 51, 2.0));
    let (w, s) = weight_row(Normaliser::Softpick, &q, &k);
    assert!(s.iter().any(|&x| x > 0.0) && s.iter().any(|&x| x < 0.0));
    let denom: f64 = s.iter().map(|x| (x.exp() - 1.0).abs()).sum::<f64>() + 1e-6;
    for (wj, sj) in w.iter().zip(&s) {
        if *sj <= 0.0 {
            assert_eq!(*wj, 0.0);
        } else {
            assert!((wj - (sj.exp() - 1.0) / denom).abs() < 1e-14);
        }
    }
    assert!(w.iter().sum::<f64>() <= 1.0);
}

#[test]
fn logits_of_plus_minus_1e4_stay_finite_for_every_normaliser() {
    // d = 1, scale 1e4, q = ±1 and k = ±1 give logits of exactly ±1e4.
    let q = [1.0f32, -1.0];
    let k = [1.0f32, -1.0, 0.5];
    let v = [1.0f32, 2.0, 3.0];
    for norm in Normaliser::all_defaults() {
        let options = AttentionOptions {
            scale: Some(1e4),
            ..opts(norm)
        };
        let r = run(
            (&q, [1, 2, 1, 1]),
            (&k, [1, 3, 1, 1]),
            &v,
            Some(&[0.5]),
            &options,
        );
        assert!(r.o.iter().all(|x| x.is_finite()), "{norm:?}: {:?}", r.o);
        assert!(r.lse.iter().all(|x| !x.is_nan()), "{norm:?}: {:?}", r.lse);
        // Weights lie in [0, 1]; only sigmoid's need not sum to 1 (bound Σ|v| = 6).
        assert!(r.o.iter().all(|x| x.abs() <= 6.0), "{norm:?}: {:?}", r.o);
        if let Normaliser::Sigmoid { .. } = norm {
            // Logits 1e4 and 5e3 saturate to weight 1, -1e4 to 0.
            assert_eq!(r.o, vec![1.0 + 3.0, 2.0]);
        }
    }
    // softmax: row 0 picks key 0 (1e4 ≫ 5e3), row 1 picks key 1.
    let r = run(
        (&q, [1, 2, 1, 1]),
        (&k, [1, 3, 1, 1]),
        &v,
        None,
        &AttentionOptions {
            scale: Some(1e4),
            ..AttentionOptions::default()
        },
    );
    assert_eq!(r.o, vec![1.0, 2.0]);
    assert_eq!(r.lse, vec![1e4, 1e4]);
}
