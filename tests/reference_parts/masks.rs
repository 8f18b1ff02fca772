//! docs/contract.md §1: bottom-right causal alignment, sliding windows and fully masked rows, by
//! hand.

use super::{opts, random, run};
use quietattn::{AttentionOptions, Normaliser};

/// Weight rows (via one-hot values, `d = sk`) of a single-head problem under `options`.
fn weights(sq: usize, sk: usize, options: &AttentionOptions, seed: u64) -> Vec<Vec<f64>> {
    let q = random(sq * sk, seed, 1.0);
    let k = random(sk * sk, seed + 1, 1.0);
    let v: Vec<f32> = (0..sk * sk).map(|x| f32::from(x % (sk + 1) == 0)).collect();
    let r = run(
        (&q, [1, sq, 1, sk]),
        (&k, [1, sk, 1, sk]),
        &v,
        None,
        options,
    );
    r.o.chunks(sk).map(<[f64]>::to_vec).collect()
}

/// Asserts the positive weights of each row are exactly the listed keys.
#[track_caller]
fn assert_visible(rows: &[Vec<f64>], expected: &[&[usize]]) {
    for (i, (row, keys)) in rows.iter().zip(expected).enumerate() {
        let got: Vec<usize> = (0..row.len()).filter(|&j| row[j] > 0.0).collect();
        assert_eq!(&got, keys, "row {i}: {row:?}");
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    }
}

#[test]
fn causal_2x4_is_aligned_bottom_right() {
    let options = AttentionOptions {
        causal: true,
        ..AttentionOptions::default()
    };
    let (q, k) = (random(8, 60, 1.0), random(16, 61, 1.0));
    let v: Vec<f32> = (0..16).map(|x| f32::from(x % 5 == 0)).collect();
    let r = run((&q, [1, 2, 1, 4]), (&k, [1, 4, 1, 4]), &v, None, &options);
    // kv_len - q_len = 2: row 0 sees keys 0..=2, row 1 sees all four.
    for (i, n) in [(0usize, 3usize), (1, 4)] {
        let s: Vec<f64> = (0..n)
            .map(|j| {
                let dot: f64 = (0..4)
                    .map(|c| f64::from(q[i * 4 + c]) * f64::from(k[j * 4 + c]))
                    .sum();
                dot / 2.0
            })
            .collect();
        let z: f64 = s.iter().map(|x| x.exp()).sum();
        for (j, got) in r.o[i * 4..i * 4 + 4].iter().enumerate() {
            let want = s.get(j).map_or(0.0, |x| x.exp() / z);
            assert!((got - want).abs() < 1e-15, "({i}, {j})");
        }
        assert!((r.lse[i] - z.ln()).abs() < 1e-14);
    }
}

#[test]
fn sliding_windows_by_hand() {
    let w = |window, causal| AttentionOptions {
        window: Some(window),
        causal,
        ..AttentionOptions::default()
    };
    // sq = 3, sk = 5: query i sits at key i + 2.
    assert_visible(
        &weights(3, 5, &w((1, 1), false), 70),
        &[&[1, 2, 3], &[2, 3, 4], &[3, 4]],
    );
    assert_visible(
        &weights(3, 5, &w((1, -1), true), 71),
        &[&[1, 2], &[2, 3], &[3, 4]],
    );
    assert_visible(
        &weights(3, 5, &w((-1, 0), false), 72),
        &[&[0, 1, 2], &[0, 1, 2, 3], &[0, 1, 2, 3, 4]],
    );
    assert_visible(
        &weights(3, 5, &w((0, 1), false), 73),
        &[&[2, 3], &[3, 4], &[4]],
    );
    assert_visible(
        &weights(3, 5, &w((2, 0), false), 74),
        &[&[0, 1, 2], &[1, 2, 3], &[2, 3, 4]],
    );
}

#[test]
fn fully_masked_rows_output_zero_and_the_spec_lse() {
    // q_len 3 > kv_len 1: query i sits at key i - 2, so rows 0 and 1 see nothing.
    let causal = AttentionOptions {
        causal: true,
        ..AttentionOptions::default()
    };
    let window = AttentionOptions {
        window: Some((0, 0)),
        ..AttentionOptions::default()
    };
    let (h, d) = (2, 4);
    let q = random(3 * h * d, 80, 1.0);
    let k = random(h * d, 81, 1.0);
    let v = random(h * d, 82, 1.0);
    let sinks = [0.5f32, -2.0];
    for mask in [&causal, &window] {
        for norm in Normaliser::all_defaults() {
            let options = AttentionOptions {
                normaliser: norm,
                ..mask.clone()
            };
            let r = run(
                (&q, [1, 3, h, d]),
                (&k, [1, 1, h, d]),
                &v,
                Some(&sinks),
                &options,
            );
            assert!(r.o.iter().all(|x| x.is_finite()));
            assert!(r.o[..2 * h * d].iter().all(|&x| x == 0.0), "{norm:?}");
            for (head, &sink) in sinks.iter().enumerate() {
                let want = match norm {
                    Normaliser::OffByOne | Normaliser::Sigmoid { .. } => 0.0,
                    Normaliser::Sink => f64::from(sink),
                    _ => f64::NEG_INFINITY,
                };
                assert_eq!(&r.lse[head * 3..head * 3 + 2], &[want, want], "{norm:?}");
                assert!(r.lse[head * 3 + 2].is_finite());
            }
            // Only row 2 of each head is counted in the row statistics; the masked rows still
            // count as exact zeros in the O statistics.
            assert!(r.stats.heads.iter().all(|s| s.rows == 1), "{norm:?}");
            assert!(r.stats.tensors[3].zeros >= (2 * h * d) as u64);
            assert!(r.stats.channels[3].iter().all(|c| c.count == 3));
        }
    }
    // Softmax over the single visible key is that key's value.
    let r = run((&q, [1, 3, h, d]), (&k, [1, 1, h, d]), &v, None, &causal);
    let v64: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    assert_eq!(&r.o[2 * h * d..], &v64[..]);
}

#[test]
fn sigmoid_default_bias_uses_the_key_length_not_the_visible_count() {
    let options = AttentionOptions {
        causal: true,
        ..opts(Normaliser::Sigmoid { bias: None })
    };
    let (q, k) = (random(8, 62, 1.0), random(16, 63, 1.0));
    let v: Vec<f32> = (0..16).map(|x| f32::from(x % 5 == 0)).collect();
    let r = run((&q, [1, 2, 1, 4]), (&k, [1, 4, 1, 4]), &v, None, &options);
    // Row 0 sees 3 of the 4 keys, yet b = -ln 4: the weight is 1 / (1 + 4 e^{-s}).
    for j in 0..3 {
        let dot: f64 = (0..4)
            .map(|c| f64::from(q[c]) * f64::from(k[j * 4 + c]))
            .sum();
        let want = 1.0 / (1.0 + 4.0 * (-dot / 2.0).exp());
        assert!((r.o[j] - want).abs() < 1e-15, "key {j}");
    }
    assert_eq!(r.o[3], 0.0);
    assert_eq!(r.lse, vec![0.0, 0.0]);
}
