use super::*;
use crate::check::o_error::OError;
use crate::stats::log2_bin;
use crate::{DType, KernelChoice};

/// Values: two certain in bin 1, one on the 2|3 edge, one on the 3|4 edge.
fn edges() -> HistogramBounds {
    let mut b = HistogramBounds::new(6);
    b.add(1, 1, 1);
    b.add(1, 1, 1);
    b.add(2, 2, 3);
    b.add(4, 3, 4);
    b
}

#[test]
fn values_on_an_edge_may_take_either_neighbour() {
    let b = edges();
    for ok in [
        [0, 2, 1, 0, 1, 0],
        [0, 2, 0, 1, 1, 0],
        [0, 2, 1, 1, 0, 0],
        [0, 2, 0, 2, 0, 0],
    ] {
        assert!(b.admits(&ok).is_ok(), "{ok:?}");
    }
}

#[test]
fn a_wrong_bin_away_from_an_edge_fails() {
    let b = edges();
    for bad in [
        [0, 1, 2, 0, 1, 0], // a certain value moved to the next bin
        [1, 2, 0, 0, 1, 0], // the edge value two bins down
        [0, 2, 1, 0, 0, 1], // the 3|4 value two bins up
        [0, 2, 1, 0, 2, 0], // one value too many
        [0, 2, 1, 0, 0, 0], // one value lost
    ] {
        assert!(b.admits(&bad).is_err(), "{bad:?}");
    }
    assert!(b.admits(&[0, 2, 1, 0, 1]).is_err(), "bin count differs");
}

#[test]
fn add_clamps_to_the_neighbouring_bins() {
    // A tolerance interval reaching bins 0..=5 still only allows 2..=4.
    let mut b = HistogramBounds::new(8);
    b.add(3, 0, 5);
    assert!(b.admits(&[0, 0, 1, 0, 0, 0, 0, 0]).is_ok());
    assert!(b.admits(&[0, 0, 0, 0, 1, 0, 0, 0]).is_ok());
    assert!(b.admits(&[0, 1, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(b.admits(&[0, 0, 0, 0, 0, 1, 0, 0]).is_err());
}

#[test]
fn overlapping_ranges_are_placed_earliest_deadline_first() {
    // One value may be in 2..=3, one in 3..=4, one only in 3: [0,0,1,1,1] is the only
    // placement with bin 2 and bin 4 both taken; a greedy "own bin" placement misses it.
    let mut b = HistogramBounds::new(5);
    b.add(3, 2, 3);
    b.add(3, 3, 4);
    b.add(3, 3, 3);
    assert!(b.admits(&[0, 0, 1, 1, 1]).is_ok());
    assert!(b.admits(&[0, 0, 0, 3, 0]).is_ok());
    assert!(b.admits(&[0, 0, 2, 1, 0]).is_err());
}

/// The H200 failure of issue #7: an f32 O value near 2^-17 that the kernel put one bin above the
/// reference. Within O's f32 tolerance it may; two bins away or far from an edge it may not.
#[test]
fn o_log2_bounds_allow_the_f32_tolerance_at_a_power_of_two() {
    let exact = OError::new(KernelChoice::CudaCore, DType::F32, 37, 2.0);
    let x = 7.5e-6; // just below 2^-17 = 7.63e-6: bin 6
    assert_eq!(log2_bin(x), 6);
    let b = exact.bounds(&[x], 0..1, 1, 1);
    let mut hist = vec![0u64; 40];
    hist[7] = 1;
    assert!(b.admits(0, &hist).is_ok(), "the neighbouring bin");
    assert!(b.admits(1, &[0; 40]).is_err(), "not a zero");
    hist[7] = 0;
    hist[8] = 1;
    assert!(b.admits(0, &hist).is_err(), "two bins up");
    // 0.75 sits mid-bin (bin 23): its tolerance reaches no edge.
    let b = exact.bounds(&[0.75, -0.75], 0..1, 1, 2);
    let mut hist = vec![0u64; 40];
    hist[23] = 2;
    assert!(b.admits(0, &hist).is_ok());
    hist[23] = 1;
    hist[24] = 1;
    assert!(b.admits(0, &hist).is_err(), "a bin far from its edge");
}

/// The tensor-core family rounds P to bf16: a row's small values may move by 1.6e-2 of the
/// row's largest, across several bins or to zero, and no further.
#[test]
fn o_bounds_admit_the_rounded_p_error_and_no_more() {
    let tc = OError::new(KernelChoice::TensorCore, DType::BF16, 37, 2.0);
    assert_eq!((tc.rel, tc.floor), (1.6e-2, 0.0));
    // One row: 1.0 (bin 24, err 1.6e-2 reaches bin 23) and 0.05 (bin 19; 0.034..0.066: 19..20).
    let b = tc.bounds(&[1.0, 0.05], 0..1, 1, 2);
    let hist = |bins: &[usize]| {
        let mut h = vec![0u64; 40];
        bins.iter().for_each(|&i| h[i] += 1);
        h
    };
    assert!(b.admits(0, &hist(&[24, 19])).is_ok());
    assert!(b.admits(0, &hist(&[23, 20])).is_ok());
    assert!(
        b.admits(0, &hist(&[24, 18])).is_err(),
        "0.05 by 0.016 stays above 2^-5"
    );
    assert!(b.admits(1, &hist(&[24])).is_err(), "0.05 is no zero");
    // 0.01's error reaches 0: counted as a zero or anywhere up to 0.026.
    let b = tc.bounds(&[1.0, 0.01], 0..1, 1, 2);
    assert!(b.admits(1, &hist(&[24])).is_ok());
    assert!(b.admits(0, &hist(&[24, 10])).is_ok());
    assert!(b.admits(0, &hist(&[24, 19])).is_err());
    // f16 adds the flushed weights; the moments' slack follows the error.
    let f16 = OError::new(KernelChoice::TensorCore, DType::F16, 32, 2.0);
    assert_eq!(f16.floor, 32.0 * 2f64.powi(-25) * 2.0);
    let s = f16.bounds(&[1.0, 0.0], 0..1, 1, 2).slack;
    let err = 2e-3 + f16.floor;
    assert!((s[0][1] - (2.0 * err + err * err)).abs() < 1e-15);
    assert_eq!(s[1][4], err);
}

fn one_head_stats() -> OutlierStats {
    let mut s = OutlierStats::zeroed(1, 1, 2);
    s.heads[0].rows = 10;
    s.heads[0].first_key_mass = 7.581952810287476;
    s.heads[0].max_prob_hist[3] = 10;
    for ch in s.channels.iter_mut().flatten() {
        *ch = QaChannelStats {
            absmax: 2.0,
            count: 10,
            sum: 0.5,
            sum_sq: 9.0,
            sum_3rd: -1.0,
            sum_4th: 20.0,
            ..Default::default()
        };
    }
    s.tensors[0].log2_hist[24] = 20;
    s
}

#[test]
fn reproducibility_allows_rounding_of_float_sums_only() {
    let a = one_head_stats();
    // The two launches of issue #7 differed by 6.3e-8 relative in first_key_mass.
    let mut b = a.clone();
    b.heads[0].first_key_mass = 7.581953287124634;
    b.channels[1][0].sum_sq *= 1.0 + 1e-6;
    b.channels[2][1].sum += 1e-6; // Σx cancels: judged against √(n·Σx²) ≈ 9.5
    assert!(check_reproducible(&b, &a).is_ok());

    let mut far = a.clone();
    far.heads[0].first_key_mass *= 1.0 + 1e-4;
    assert!(
        check_reproducible(&far, &a).is_err(),
        "a sum off by more than the bound"
    );
    let mut count = a.clone();
    count.channels[3][1].count += 1;
    assert!(check_reproducible(&count, &a).is_err(), "a counter");
    let mut hist = a.clone();
    hist.tensors[0].log2_hist[24] -= 1;
    hist.tensors[0].log2_hist[25] += 1;
    assert!(check_reproducible(&hist, &a).is_err(), "a histogram bin");
    let mut amax = a.clone();
    amax.channels[0][0].absmax = 2.0f32.next_up();
    assert!(check_reproducible(&amax, &a).is_err(), "absmax is exact");
}

#[test]
fn accumulate_adds_counters_and_takes_the_larger_absmax() {
    let a = one_head_stats();
    let mut b = a.clone();
    b.channels[0][0].absmax = 5.0;
    let mut sum = a.clone();
    sum.accumulate(&b);
    assert_eq!(sum.heads[0].rows, 20);
    assert_eq!(sum.heads[0].max_prob_hist[3], 20);
    assert_eq!(sum.channels[0][0].absmax, 5.0);
    assert_eq!(sum.channels[0][0].count, 20);
    assert_eq!(sum.channels[0][0].sum_sq, 18.0);
    assert_eq!(sum.tensors[0].log2_hist[24], 40);
}

#[test]
fn reference_comparison_takes_moments_within_1e_3() {
    let want = one_head_stats();
    let heads = vec![HeadBounds {
        max_prob: {
            let mut h = HistogramBounds::new(16);
            (0..10).for_each(|_| h.add(3, 3, 3));
            h
        },
        entropy: {
            let mut h = HistogramBounds::new(16);
            (0..10).for_each(|_| h.add(0, 0, 0));
            h
        },
        logit_range: {
            let mut h = HistogramBounds::new(16);
            (0..10).for_each(|_| h.add(0, 0, 0));
            h
        },
    }];
    let mut want = want;
    want.heads[0].entropy_hist[0] = 10;
    want.heads[0].logit_range_hist[0] = 10;
    let o = OBounds::new(40);
    let mut got = want.clone();
    got.channels[1][1].sum_4th *= 1.0 + 5e-4;
    assert!(check_against_reference(&got, &want, &heads, &o).is_ok());
    got.channels[1][1].sum_4th *= 1.0 + 2e-3;
    let err = check_against_reference(&got, &want, &heads, &o).expect_err("off by 2.5e-3");
    assert!(err.0.contains("k channel 1"), "{err}");
}
