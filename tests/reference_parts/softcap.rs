//! docs/contract.md §2: the softcap `s ← c·tanh(s/c)` is applied before masking, normalisation and
//! the logit-range statistic.

use super::{opts, run};
use quietattn::{AttentionOptions, Normaliser};

fn capped(norm: Normaliser, cap: Option<f32>) -> quietattn::reference::ReferenceAttention {
    // d = 1, scale 1, q = 1: the raw logits are the k values 0, 3, 9.
    let options = AttentionOptions {
        scale: Some(1.0),
        softcap: cap,
        ..opts(norm)
    };
    run(
        (&[1.0], [1, 1, 1, 1]),
        (&[0.0, 3.0, 9.0], [1, 3, 1, 1]),
        &[1.0, -2.0, 4.0],
        None,
        &options,
    )
}

#[test]
fn softcap_by_hand() {
    // tanh(x) = (e^{2x} - 1) / (e^{2x} + 1), written out instead of calling tanh.
    let c = 2.0f64;
    let cap = |s: f64| c * ((2.0 * s / c).exp() - 1.0) / ((2.0 * s / c).exp() + 1.0);
    let s: Vec<f64> = [0.0, 3.0, 9.0].iter().map(|&x| cap(x)).collect();
    let v = [1.0, -2.0, 4.0];

    let r = capped(Normaliser::Softmax, Some(2.0));
    let z: f64 = s.iter().map(|x| x.exp()).sum();
    let want: f64 = s.iter().zip(v).map(|(x, vj)| x.exp() / z * vj).sum();
    assert!((r.o[0] - want).abs() < 1e-14);
    assert!((r.lse[0] - z.ln()).abs() < 1e-14);

    let r = capped(Normaliser::Sigmoid { bias: Some(0.0) }, Some(2.0));
    let want: f64 = s.iter().zip(v).map(|(x, vj)| vj / (1.0 + (-x).exp())).sum();
    assert!((r.o[0] - want).abs() < 1e-14);
}

#[test]
fn logit_range_is_measured_after_the_softcap() {
    // Uncapped: max - mean = 9 - 4 = 5 → bin 2. Capped at 2: ≈ 2·tanh(4.5) - 1.27 ≈ 0.73 → bin 0.
    let raw = capped(Normaliser::Softmax, None).stats.heads[0];
    let cap = capped(Normaliser::Softmax, Some(2.0)).stats.heads[0];
    assert_eq!((raw.logit_range_hist[2], cap.logit_range_hist[0]), (1, 1));
}
