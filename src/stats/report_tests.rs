//! Tests of the derived report against hand-computed values.

use super::*;
use crate::stats::log2_bin;

/// Raw counters of one channel holding `xs` (finite values only).
fn channel(xs: &[f64]) -> QaChannelStats {
    QaChannelStats {
        absmax: xs.iter().fold(0.0f64, |m, x| m.max(x.abs())) as f32,
        reserved: 0,
        count: xs.len() as u64,
        sum: xs.iter().sum(),
        sum_sq: xs.iter().map(|x| x * x).sum(),
        sum_3rd: xs.iter().map(|x| x.powi(3)).sum(),
        sum_4th: xs.iter().map(|x| x.powi(4)).sum(),
    }
}

/// Histogram counters of a tensor holding `xs`.
fn tensor(xs: &[f64]) -> QaTensorStats {
    let mut t = QaTensorStats::default();
    for &x in xs {
        if !x.is_finite() {
            t.non_finite += 1;
        } else if x == 0.0 {
            t.zeros += 1;
        } else {
            t.log2_hist[log2_bin(x)] += 1;
        }
    }
    t
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

/// μ4/σ⁴ straight from the definition: the mean first, then the central moments of the
/// deviations (no power sums involved).
fn kurtosis_by_definition(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let central = |p: i32| xs.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
    central(4) / central(2).powi(2)
}

#[test]
fn kurtosis_of_symmetric_set() {
    // {-2,-1,0,1,2}: σ² = 10/5 = 2, μ4 = 34/5 = 6.8, kurtosis 6.8/4 = 1.7.
    let m = ChannelMoments::of(&channel(&[-2.0, -1.0, 0.0, 1.0, 2.0]));
    assert!(close(m.mean.unwrap(), 0.0));
    assert!(close(m.variance.unwrap(), 2.0));
    assert!(close(m.kurtosis.unwrap(), 1.7));
    assert_eq!(m.absmax, 2.0);
}

#[test]
fn kurtosis_is_central_for_a_shifted_symmetric_set() {
    // The same set shifted by 10: central moments unchanged.
    let m = ChannelMoments::of(&channel(&[8.0, 9.0, 10.0, 11.0, 12.0]));
    assert!(close(m.mean.unwrap(), 10.0));
    assert!(close(m.variance.unwrap(), 2.0));
    assert!((m.kurtosis.unwrap() - 1.7).abs() < 1e-9);
}

#[test]
fn kurtosis_of_skewed_zero_mean_set() {
    // {-3,1,1,1}: mean 0, σ² = 12/4 = 3, μ4 = 84/4 = 21, kurtosis 21/9.
    let m = ChannelMoments::of(&channel(&[-3.0, 1.0, 1.0, 1.0]));
    assert!(close(m.kurtosis.unwrap(), 21.0 / 9.0));
}

#[test]
fn kurtosis_of_skewed_channel_is_central() {
    // {0,0,0,10}: μ = 2.5, deviations (-2.5, -2.5, -2.5, 7.5), σ² = 75/4, μ4 = 3281.25/4,
    // kurtosis = 820.3125 / 351.5625 = 7/3.
    let xs = [0.0, 0.0, 0.0, 10.0];
    let want = kurtosis_by_definition(&xs);
    assert!(close(want, 7.0 / 3.0));
    let m = ChannelMoments::of(&channel(&xs));
    assert!(close(m.variance.unwrap(), 18.75));
    assert!(close(m.kurtosis.unwrap(), want), "{:?}", m.kurtosis);
    // Without Σx³ the old reconstruction μ4 ≈ E[x⁴] − 6μ²σ² − μ⁴ (exact only without skew)
    // gives (2500 − 703.125 − 39.0625) / 351.5625 = 5: more than twice the true value.
    let (mean, var, m4) = (2.5f64, 18.75f64, 2500.0f64);
    let zero_skew = (m4 - 6.0 * mean * mean * var - mean.powi(4)) / (var * var);
    assert!(close(zero_skew, 5.0));
    assert!((zero_skew - want).abs() > 2.0);
    // Shifting the channel leaves its central moments alone while every power sum changes.
    let shifted = ChannelMoments::of(&channel(&[10.0, 10.0, 10.0, 20.0]));
    assert!(close(shifted.kurtosis.unwrap(), want));
}

#[test]
fn kurtosis_of_one_spike() {
    // One 8 among n - 1 zeros: μ4/σ⁴ = (n² − 3n + 3)/(n − 1), ≈ n (the zero-skew
    // reconstruction would say 66 for n = 64).
    let mut xs = vec![0.0; 64];
    xs[0] = 8.0;
    let k = ChannelMoments::of(&channel(&xs)).kurtosis.unwrap();
    assert!(close(k, kurtosis_by_definition(&xs)), "{k}");
    assert!(close(k, (64.0 * 64.0 - 3.0 * 64.0 + 3.0) / 63.0), "{k}");
}

#[test]
fn kurtosis_unresolved_when_the_mean_swamps_the_spread() {
    // {1000,1000,1000,1010}: the same central moments as {0,0,0,10}, but μ4 = 820 would be
    // cancelled out of power sums of ~1e12, beyond what f32-accumulated sums can resolve.
    let m = ChannelMoments::of(&channel(&[1000.0, 1000.0, 1000.0, 1010.0]));
    assert!((m.variance.unwrap() - 18.75).abs() < 1e-6);
    assert_eq!(m.kurtosis, None);
}

#[test]
fn constant_and_empty_channels_have_no_kurtosis() {
    let c = ChannelMoments::of(&channel(&[5.0; 10]));
    assert_eq!(c.variance, Some(0.0));
    assert_eq!(c.kurtosis, None);
    let e = ChannelMoments::of(&channel(&[]));
    assert_eq!((e.mean, e.variance, e.kurtosis), (None, None, None));
}

#[test]
fn median_from_histogram() {
    let mut hist = [0u64; 40];
    hist[24] = 3; // |x| in [1, 2)
    hist[26] = 2; // |x| in [4, 8)
    // 5 elements, median rank 3 lands in bin 24: 2^(0.5).
    assert!(close(median_abs_from_hist(&hist, 0).unwrap(), 2f64.sqrt()));
    // 2 zeros + 5: rank 4 is the second element of bin 24.
    assert!(close(median_abs_from_hist(&hist, 2).unwrap(), 2f64.sqrt()));
    // 6 zeros + 5: rank 6 is a zero.
    assert_eq!(median_abs_from_hist(&hist, 6), Some(0.0));
    // 4 elements in bin 24 and 4 in bin 26: the lower median (rank 4) is in bin 24.
    hist[24] = 4;
    hist[26] = 4;
    assert!(close(median_abs_from_hist(&hist, 0).unwrap(), 2f64.sqrt()));
    hist[24] = 3;
    hist[26] = 5;
    // rank 4 is now in bin 26: 2^(2.5).
    assert!(close(
        median_abs_from_hist(&hist, 0).unwrap(),
        2f64.powf(2.5)
    ));
    assert_eq!(median_abs_from_hist(&[0; 40], 0), None);
}

/// 4 channels × 1000 tokens: channel 0 small, channel 1 reaches 7 once, channel 2 reaches 150
/// once, channel 3 is constant 0.5.
fn planted() -> (Vec<QaChannelStats>, QaTensorStats) {
    let small: Vec<f64> = (0..1000)
        .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    let mut c1 = small.clone();
    c1[10] = 7.0;
    let mut c2 = small.clone();
    c2[20] = 150.0;
    let c3 = vec![0.5; 1000];
    let all: Vec<f64> = [&small, &c1, &c2, &c3]
        .iter()
        .flat_map(|v| v.iter().copied())
        .collect();
    (
        vec![channel(&small), channel(&c1), channel(&c2), channel(&c3)],
        tensor(&all),
    )
}

#[test]
fn outlier_rules_side_by_side() {
    let (ch, t) = planted();
    let r = TensorReport::new(&ch, &t);
    // Median |x| = 0.1 → bin floor(log2 0.1)+24 = 20 → 2^(-3.5).
    assert!(close(r.median_abs.unwrap(), 2f64.powf(-3.5)));
    // The ±0.1 pattern sums to 0; the spikes replace a +0.1 (even indices).
    let n: f64 = 4000.0;
    let s1: f64 = (7.0 - 0.1) + (150.0 - 0.1) + 500.0;
    let s2 = 1000.0 * 0.01 + 2.0 * 999.0 * 0.01 + 49.0 + 22500.0 + 250.0;
    let sigma = (s2 / n - (s1 / n) * (s1 / n)).sqrt();
    assert!(close(r.sigma.unwrap(), sigma));
    // σ ≈ 2.38: 6σ ≈ 14.3, so only channel 2 exceeds it; LLM.int8 flags 1 and 2; massive only 2.
    assert_eq!(r.outliers.llm_int8, vec![1, 2]);
    assert_eq!(r.outliers.six_sigma, vec![2]);
    assert_eq!(r.outliers.massive, vec![2]);
    assert_eq!(r.max_inf_norm, 150.0);
    assert_eq!(r.finite, 4000);
    // The constant channel has no kurtosis; the spike channel 2 has the largest.
    assert_eq!(r.channels[3].kurtosis, None);
    assert_eq!(r.max_kurtosis.map(|(c, _)| c), Some(2));
}

#[test]
fn massive_rule_needs_the_ratio() {
    // absmax 150 but a median near 1: 150 < 1000 × 2^0.5, so not massive; still ≥ 6.
    let xs: Vec<f64> = (0..100).map(|i| if i == 0 { 150.0 } else { 1.0 }).collect();
    let r = TensorReport::new(&[channel(&xs)], &tensor(&xs));
    assert_eq!(r.outliers.massive, Vec::<usize>::new());
    assert_eq!(r.outliers.llm_int8, vec![0]);
    // Below 100 is never massive, even over a zero median.
    let ys: Vec<f64> = (0..100).map(|i| if i == 0 { 99.0 } else { 0.0 }).collect();
    let r = TensorReport::new(&[channel(&ys)], &tensor(&ys));
    assert_eq!(r.median_abs, Some(0.0));
    assert!(r.outliers.massive.is_empty());
}

#[test]
fn non_finite_elements_are_reported_apart() {
    let xs = [1.0, 0.0, 2.0];
    let mut t = tensor(&xs);
    t.non_finite = 3;
    let r = TensorReport::new(&[channel(&xs)], &t);
    assert_eq!((r.finite, r.zeros, r.non_finite), (3, 1, 3));
}

fn head(rows: u64, first: f64, virt: f64, entropy_bins: &[(usize, u64)]) -> QaHeadStats {
    let mut h = QaHeadStats {
        rows,
        first_key_mass: first,
        virtual_sink_mass: virt,
        ..Default::default()
    };
    for &(b, n) in entropy_bins {
        h.entropy_hist[b] += n;
        h.max_prob_hist[15 - b] += n;
    }
    h
}

#[test]
fn sink_scores_rate_and_entropy() {
    let mut stats = OutlierStats::zeroed(4, 2, 1);
    stats.heads[0] = head(10, 9.0, 0.0, &[(0, 10)]); // score 0.9: sink head
    stats.heads[1] = head(10, 3.0, 0.0, &[(15, 10)]); // 0.3: not above ε
    stats.heads[2] = head(4, 2.0, 1.0, &[(0, 2), (8, 2)]); // 0.5: sink head
    stats.heads[3] = head(0, 0.0, 0.0, &[]); // no rows: excluded
    let r = AttentionReport::new(&stats);
    let scores: Vec<Option<f64>> = r.heads.iter().map(|h| h.sink_score).collect();
    assert_eq!(scores, vec![Some(0.9), Some(0.3), Some(0.5), None]);
    let flags: Vec<bool> = r.heads.iter().map(|h| h.sink_head).collect();
    assert_eq!(flags, vec![true, false, true, false]);
    assert!(close(r.sink_rate.unwrap(), 2.0 / 3.0));
    assert!(close(r.mean_sink_score.unwrap(), (0.9 + 0.3 + 0.5) / 3.0));
    assert!(close(r.heads[2].virtual_sink_per_row.unwrap(), 0.25));
    // Entropy bin centres: bin 0 → 1/32, bin 15 → 31/32, bins 0 and 8 → (1/32 + 17/32)/2.
    assert!(close(r.heads[0].mean_entropy.unwrap(), 1.0 / 32.0));
    assert!(close(r.heads[1].mean_entropy.unwrap(), 31.0 / 32.0));
    assert!(close(r.heads[2].mean_entropy.unwrap(), 9.0 / 32.0));
    assert!(close(r.heads[1].mean_max_prob.unwrap(), 1.0 / 32.0));
    assert_eq!(r.heads[3].mean_entropy, None);
    assert!(r.tensor("k").is_some() && r.tensor("x").is_none());
}

#[test]
fn activation_report_ranks_tokens() {
    let mut s = ActivationStats::zeroed(4, 1);
    s.token_absmax = vec![1.0, 300.0, 2.0, 300.0];
    let r = ActivationReport::new(&s);
    assert_eq!(r.tokens, 4);
    assert_eq!(
        r.top_tokens,
        vec![(1, 300.0), (3, 300.0), (2, 2.0), (0, 1.0)]
    );
}

/// The report of `n` copies of `x` in one channel.
fn constant(x: f64, n: usize) -> TensorReport {
    let xs = vec![x; n];
    TensorReport::new(&[channel(&xs)], &tensor(&xs))
}

#[test]
fn median_of_a_constant_tensor_is_the_constant() {
    // Below the first bin edge (2^-24) and above the last (2^15): the bare histogram gives
    // 8.4e-8 and 46341; both are open bins, so the single-magnitude tensor is read exactly.
    for x in [1e-9, 3e-8, 1e5, 2f64.powi(100), 0.75] {
        let r = constant(x, 10);
        let med = r.median_abs.unwrap();
        assert!(close(med, x), "constant {x}: median {med}");
        assert!(
            med <= r.max_inf_norm,
            "constant {x}: median {med} above max"
        );
    }
}

#[test]
fn median_never_leaves_the_bin_or_exceeds_absmax() {
    // 9 elements at 1e-9 and one at 3e-9: the median is in the open first bin, ≤ absmax.
    let mut xs = vec![1e-9; 9];
    xs.push(3e-9);
    let r = TensorReport::new(&[channel(&xs)], &tensor(&xs));
    let med = r.median_abs.unwrap();
    assert!((0.0..=3e-9).contains(&med), "{med}");
    // Spread over the open top bin: between its edge 2^15 and absmax 1e6.
    let ys = [4e4, 5e4, 1e5, 1e6, 1.0];
    let r = TensorReport::new(&[channel(&ys)], &tensor(&ys));
    let med = r.median_abs.unwrap();
    assert!((32768.0..=1e6).contains(&med), "{med}");
}

#[test]
fn overflowed_power_sums_give_no_made_up_moments() {
    // What the kernels report for 1000 × 1e30: Σx fits f32, Σx², Σx³, Σx⁴ overflow.
    let c = QaChannelStats {
        absmax: 1e30,
        count: 1000,
        sum: 1e33,
        sum_sq: f64::INFINITY,
        sum_3rd: f64::INFINITY,
        sum_4th: f64::INFINITY,
        ..Default::default()
    };
    let m = ChannelMoments::of(&c);
    assert!(m.overflowed);
    assert!(close(m.mean.unwrap(), 1e30));
    // |mean| = absmax: every element equals it, so σ = 0 (not inf).
    assert_eq!(m.variance, Some(0.0));
    assert_eq!(m.kurtosis, None);
    // Half at 1e30, half at -1e30: the bound says nothing, so no variance rather than inf.
    let spread = QaChannelStats { sum: 0.0, ..c };
    let m = ChannelMoments::of(&spread);
    assert!(m.overflowed);
    assert_eq!((m.variance, m.kurtosis), (None, None));
    // Σx⁴ alone overflows (|x| ~ 1e10): the variance stays exact, the kurtosis goes.
    let xs = [1e10, -1e10, 2e10];
    let mut c = channel(&xs);
    c.sum_4th = f64::INFINITY;
    let m = ChannelMoments::of(&c);
    assert!(m.overflowed && m.kurtosis.is_none());
    let mean = 2e10 / 3.0;
    assert!(close(m.variance.unwrap(), 6e20 / 3.0 - mean * mean));
}

#[test]
fn tensor_kurtosis_of_one_spike_among_zeros() {
    // One non-zero value among N (a Bernoulli(1/N) population up to scale) has kurtosis
    // (N² − 3N + 3)/(N − 1), whatever the scale; here N = 4 channels × 25 tokens = 100.
    let n = 100usize;
    let mut cols: Vec<Vec<f64>> = vec![vec![0.0; 25]; 4];
    cols[2][7] = -300.0;
    let channels: Vec<QaChannelStats> = cols.iter().map(|c| channel(c)).collect();
    let all: Vec<f64> = cols.concat();
    let r = TensorReport::new(&channels, &tensor(&all));
    let nf = n as f64;
    let want = (nf * nf - 3.0 * nf + 3.0) / (nf - 1.0);
    assert!(
        close(r.tensor_kurtosis.unwrap(), want),
        "{:?}",
        r.tensor_kurtosis
    );
    assert!(close(want, kurtosis_by_definition(&all)));
    // The all-zero channels have no kurtosis; the spiked one has its own (N = 25).
    assert_eq!(r.channels[0].kurtosis, None);
    assert!(close(
        r.channels[2].kurtosis.unwrap(),
        (625.0 - 75.0 + 3.0) / 24.0
    ));
}

#[test]
fn tensor_kurtosis_exists_where_no_channel_has_one() {
    // Two constant channels, +3 and −3: every channel is constant (no kurtosis) while the
    // tensor is a symmetric two-point population, kurtosis exactly 1.
    let channels = [channel(&[3.0; 8]), channel(&[-3.0; 8])];
    let all: Vec<f64> = [[3.0; 8], [-3.0; 8]].concat();
    let r = TensorReport::new(&channels, &tensor(&all));
    assert!(r.channels.iter().all(|c| c.kurtosis.is_none()));
    assert!(close(r.tensor_kurtosis.unwrap(), 1.0));
    assert_eq!(r.tensor_kurtosis, r.pooled.kurtosis);
}

#[test]
fn tensor_kurtosis_pools_channels_with_different_means() {
    // Channels of different means and spreads: the pooled kurtosis is that of the union,
    // not a mean of the channel kurtoses.
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    let b = [-20.0, -10.0, 0.5, 10.0, 40.0];
    let c = [100.0, 101.0, 99.0, 100.5, 99.5];
    let channels = [channel(&a), channel(&b), channel(&c)];
    let all: Vec<f64> = [a, b, c].concat();
    let r = TensorReport::new(&channels, &tensor(&all));
    assert!(close(
        r.tensor_kurtosis.unwrap(),
        kurtosis_by_definition(&all)
    ));
}
