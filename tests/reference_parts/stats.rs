//! docs/contract.md §5 statistics on cases small enough to compute by hand or by direct sums.

use super::{opts, random, run, view};
use quietattn::abi::QaHeadStats;
use quietattn::reference;
use quietattn::{AttentionInputs, AttentionOptions, Normaliser};

/// One head, d = 1, scale 1, causal 2×2: q = [1, 1], k = [0, ln 3]. Row 0 sees key 0 only;
/// row 1 sees logits 0 and ln 3.
fn tiny(norm: Normaliser) -> (QaHeadStats, f64) {
    let ln3 = 3f32.ln();
    let options = AttentionOptions {
        causal: true,
        scale: Some(1.0),
        ..opts(norm)
    };
    let r = run(
        (&[1.0, 1.0], [1, 2, 1, 1]),
        (&[0.0, ln3], [1, 2, 1, 1]),
        &[1.0, 2.0],
        None,
        &options,
    );
    (r.stats.heads[0], f64::from(ln3))
}

fn bin(x: f64) -> usize {
    (x * 16.0) as usize
}

#[test]
fn hand_computed_softmax_head_stats() {
    let (s, ln3) = tiny(Normaliser::Softmax);
    let e = ln3.exp(); // 3 up to f32 rounding of ln 3
    let p0 = 1.0 / (1.0 + e);
    assert_eq!(s.rows, 2);
    assert!((s.first_key_mass - (1.0 + p0)).abs() < 1e-15);
    assert_eq!(s.virtual_sink_mass, 0.0);
    // Row 0: max p = 1 (bin 15), one outcome (entropy 0), range 0.
    // Row 1: p ≈ (1/4, 3/4): max 0.75 → bin 12; H/ln 2 ≈ 0.811 → bin 12; range ln3/2 → bin 0.
    let h1 = -(p0 * p0.ln() + (1.0 - p0) * (1.0 - p0).ln()) / 2f64.ln();
    assert_eq!((bin(1.0 - p0), bin(h1)), (12, 12));
    let mut max_prob = [0u64; 16];
    max_prob[15] = 1;
    max_prob[12] = 1;
    assert_eq!(s.max_prob_hist, max_prob);
    let mut entropy = [0u64; 16];
    entropy[0] = 1;
    entropy[12] = 1;
    assert_eq!(s.entropy_hist, entropy);
    let mut range = [0u64; 16];
    range[0] = 2;
    assert_eq!(s.logit_range_hist, range);
}

#[test]
fn hand_computed_off_by_one_head_stats() {
    let (s, ln3) = tiny(Normaliser::OffByOne);
    let e = ln3.exp();
    // Row 0: denominator 1 + 1 = 2; row 1: 1 + 1 + e ≈ 5.
    let (sink0, sink1) = (0.5, 1.0 / (2.0 + e));
    assert!((s.virtual_sink_mass - (sink0 + sink1)).abs() < 1e-15);
    assert!((s.first_key_mass - (0.5 + sink1)).abs() < 1e-15);
    // Row 0: outcomes {1/2, 1/2} → entropy 1 (bin 15), max 0.5 → bin 8.
    // Row 1: outcomes ≈ {1/5, 3/5, 1/5} → H/ln 3 ≈ 0.865 → bin 13, max ≈ 0.6 → bin 9.
    let p = [sink1, e * sink1, sink1];
    let h1 = -p.iter().map(|x| x * x.ln()).sum::<f64>() / 3f64.ln();
    assert_eq!((bin(h1), bin(p[1])), (13, 9));
    assert_eq!(s.entropy_hist[15], 1);
    assert_eq!(s.entropy_hist[13], 1);
    assert_eq!(s.max_prob_hist[8], 1);
    assert_eq!(s.max_prob_hist[9], 1);
    assert_eq!(s.entropy_hist.iter().sum::<u64>(), 2);
    assert_eq!(s.max_prob_hist.iter().sum::<u64>(), 2);
}

#[test]
fn uniform_rows_have_entropy_one_and_one_hot_rows_zero() {
    // All keys equal: uniform softmax over 4 keys → normalised entropy 1 (bin 15).
    let k = [0.5f32; 4];
    let r = run(
        (&[1.0, -2.0], [1, 2, 1, 1]),
        (&k, [1, 4, 1, 1]),
        &[1.0; 4],
        None,
        &opts(Normaliser::Softmax),
    );
    assert_eq!(r.stats.heads[0].entropy_hist[15], 2);
    assert_eq!(r.stats.heads[0].max_prob_hist[4], 2); // max p = 1/4
    // A 1e4 logit gap: p is exactly one-hot, entropy exactly 0 (bin 0), max p 1 (bin 15).
    let options = AttentionOptions {
        scale: Some(1e4),
        ..opts(Normaliser::Softmax)
    };
    let r = run(
        (&[1.0], [1, 1, 1, 1]),
        (&[1.0, 0.0, -1.0], [1, 3, 1, 1]),
        &[1.0; 3],
        None,
        &options,
    );
    let s = r.stats.heads[0];
    assert_eq!(
        (
            s.entropy_hist[0],
            s.max_prob_hist[15],
            s.logit_range_hist[15]
        ),
        (1, 1, 1)
    );
    assert_eq!(s.first_key_mass, 1.0);
}

#[test]
fn logit_range_is_max_minus_mean_of_visible_logits() {
    // scale 1, d = 1, q = 1: logits are the k values 0, 3, 9 → max - mean = 9 - 4 = 5 → bin 2.
    let options = AttentionOptions {
        scale: Some(1.0),
        ..opts(Normaliser::Sigmoid { bias: Some(-100.0) })
    };
    let r = run(
        (&[1.0], [1, 1, 1, 1]),
        (&[0.0, 3.0, 9.0], [1, 3, 1, 1]),
        &[1.0; 3],
        None,
        &options,
    );
    let s = r.stats.heads[0];
    assert_eq!(s.logit_range_hist[2], 1);
    // The bias is not part of the range; the weights are tiny but counted.
    assert_eq!(s.max_prob_hist[0], 1);
}

#[test]
fn channel_moments_equal_direct_sums() {
    let (b, s, h, hkv, d) = (2, 3, 4, 2, 3);
    let q = random(b * s * h * d, 140, 2.0);
    let k = random(b * s * hkv * d, 141, 2.0);
    let v = random(b * s * hkv * d, 142, 2.0);
    let options = AttentionOptions {
        causal: true,
        ..opts(Normaliser::Softmax)
    };
    let inputs = AttentionInputs::new(
        view(&q, &[b, s, h, d]),
        view(&k, &[b, s, hkv, d]),
        view(&v, &[b, s, hkv, d]),
    );
    let r = reference::attention(&inputs, &options).expect("valid problem");
    let data: [(&[f64], usize); 4] = [
        (&super::wide(&q), h),
        (&super::wide(&k), hkv),
        (&super::wide(&v), hkv),
        (&r.o, h),
    ];
    for (t, (x, heads)) in data.iter().enumerate() {
        let channels = heads * d;
        assert_eq!(r.stats.channels[t].len(), channels);
        for c in 0..channels {
            let col: Vec<f64> = x.iter().skip(c).step_by(channels).copied().collect();
            let st = r.stats.channels[t][c];
            assert_eq!(st.count, (b * s) as u64, "tensor {t} channel {c}");
            let pow = |p: i32| col.iter().map(|v| v.powi(p)).sum::<f64>();
            assert!((st.sum - pow(1)).abs() < 1e-12);
            assert!((st.sum_sq - pow(2)).abs() < 1e-12);
            assert!((st.sum_3rd - pow(3)).abs() < 1e-11);
            assert!((st.sum_4th - pow(4)).abs() < 1e-11);
            let absmax = col.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_eq!(st.absmax, absmax as f32);
        }
        let ts = r.stats.tensors[t];
        let total = ts.log2_hist.iter().sum::<u64>() + ts.zeros + ts.non_finite;
        assert_eq!(total, x.len() as u64);
    }
    // Histogram totals equal the counted rows (every row sees key 0 here).
    for head in &r.stats.heads {
        assert_eq!(head.rows, (b * s) as u64);
        for hist in [head.max_prob_hist, head.entropy_hist, head.logit_range_hist] {
            assert_eq!(hist.iter().sum::<u64>(), head.rows);
        }
    }
}

#[test]
fn log2_bins_zeros_and_non_finite_inputs() {
    // q has 8 elements (d = 8): chosen magnitudes; the reference must not panic on NaN/inf.
    let q = [
        1.0f32,
        0.75,
        1e-30,
        1e30,
        0.0,
        f32::NAN,
        f32::INFINITY,
        -2.0,
    ];
    let k = [0.25f32; 16];
    let v = [1.0f32; 16];
    let causal = AttentionOptions {
        causal: true,
        ..opts(Normaliser::Softmax)
    };
    let r = run((&q, [1, 1, 1, 8]), (&k, [1, 2, 1, 8]), &v, None, &causal);
    let t = r.stats.tensors[0];
    let mut want = [0u64; 40];
    want[24] = 1; // 1.0
    want[23] = 1; // 0.75
    want[0] = 1; // 1e-30 clamps to bin 0
    want[39] = 1; // 1e30 clamps to bin 39
    want[25] = 1; // -2
    assert_eq!(t.log2_hist, want);
    assert_eq!((t.zeros, t.non_finite), (1, 2));
    assert_eq!(r.stats.channels[0][5].count, 0);
    assert_eq!(r.stats.channels[0][4].count, 1);
    // NaN in q reaches every logit of the row, so the output is NaN and counted as such.
    assert!(r.o.iter().all(|x| x.is_nan()));
    assert_eq!(r.stats.tensors[3].non_finite, 8);
}

#[test]
fn nan_in_one_value_row_reaches_only_the_rows_that_see_it() {
    // Causal 3×3, d = 1: key 2's value is NaN; only query 2 sees key 2.
    let r = run(
        (&[0.1, 0.2, 0.3], [1, 3, 1, 1]),
        (&[0.5, -0.5, 1.0], [1, 3, 1, 1]),
        &[1.0, 2.0, f32::NAN],
        None,
        &AttentionOptions {
            causal: true,
            ..AttentionOptions::default()
        },
    );
    assert!(r.o[0].is_finite() && r.o[1].is_finite() && r.o[2].is_nan());
    assert!(r.lse.iter().all(|x| x.is_finite()));
    assert_eq!(r.stats.tensors[2].non_finite, 1);
    assert_eq!(r.stats.tensors[3].non_finite, 1);
}
