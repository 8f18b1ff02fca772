//! Activation statistics: the f64 reference against hand-computed values, and the kernel (on
//! the emulator and, when present, the GPU) against the reference with docs/contract.md §6
//! tolerances.

use half::f16;
use quietattn::abi::QaChannelStats;
use quietattn::ops::act_stats::activation_stats_chunked;
use quietattn::stats::compare::{REFERENCE_MAGNITUDE_REL, REFERENCE_REL, sum_close};
use quietattn::{ActivationStats, DType, DataRef, Device, Error, TensorData, TensorView};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------- the reference against values computed by hand ----------

#[test]
fn reference_hand_computed_f32_with_padding() {
    // [3, 4] with row stride 6; the two padding elements per row are NaN and must not count.
    let nan = f32::NAN;
    let sub = 3e-40f32; // f32 subnormal
    let tiny = 1e-8f32;
    #[rustfmt::skip]
    let data: Vec<f32> = vec![
        1.5, -2.0, 0.0, nan, /* pad */ nan, nan,
        f32::INFINITY, sub, -0.0, 4.0, /* pad */ nan, nan,
        0.25, f32::NEG_INFINITY, tiny, 1048576.0, /* pad */ nan, nan,
    ];
    let x = TensorView::new(DataRef::F32(&data), &[3, 4], &[6, 1], 0).unwrap();
    let s = quietattn::reference::activation_stats(&x).unwrap();

    let (sub, tiny) = (sub as f64, tiny as f64);
    let expect = [
        // count, sum, sum_sq, sum_3rd, sum_4th, absmax
        (
            2,
            1.75,
            2.25 + 0.0625,
            3.375 + 0.015625,
            5.0625 + 0.00390625,
            1.5,
        ),
        (
            2,
            -2.0 + sub,
            4.0 + sub * sub,
            -8.0 + sub * sub * sub,
            16.0 + sub * sub * sub * sub,
            2.0,
        ),
        (
            3,
            tiny,
            tiny * tiny,
            tiny * tiny * tiny,
            tiny * tiny * tiny * tiny,
            tiny,
        ),
        (
            2,
            4.0 + 1048576.0,
            16.0 + 2f64.powi(40),
            64.0 + 2f64.powi(60),
            256.0 + 2f64.powi(80),
            1048576.0,
        ),
    ];
    for (c, &(count, sum, sq, cube, q, amax)) in expect.iter().enumerate() {
        let ch = &s.channels[c];
        assert_eq!(ch.count, count, "channel {c}");
        assert_eq!(ch.sum, sum, "channel {c}");
        assert_eq!(ch.sum_sq, sq, "channel {c}");
        assert_eq!(ch.sum_3rd, cube, "channel {c}");
        assert_eq!(ch.sum_4th, q, "channel {c}");
        assert_eq!(ch.absmax as f64, amax, "channel {c}");
    }
    assert_eq!(s.tensor.zeros, 2); // 0.0 and -0.0
    assert_eq!(s.tensor.non_finite, 3); // NaN, +inf, -inf inside the view
    let mut hist = [0u64; 40];
    hist[24] += 1; // 1.5: floor(log2) = 0
    hist[25] += 1; // -2: 1
    hist[26] += 1; // 4: 2
    hist[22] += 1; // 0.25: -2
    hist[0] += 2; // 1e-8 (floor(log2) = -27) and the subnormal clamp to bin 0
    hist[39] += 1; // 2^20: 44 clamps to 39
    assert_eq!(s.tensor.log2_hist, hist);
    assert_eq!(s.token_absmax, vec![2.0, 4.0, 1048576.0]);
}

#[test]
fn reference_hand_computed_f16_edges() {
    // f16 subnormal 2^-20 (bin 4), the largest f16 65504 (floor(log2) = 15, bin 39), a NaN row.
    let vals = [
        f16::from_f64(2f64.powi(-20)),
        f16::MAX,
        f16::NAN,
        f16::NAN,
        f16::from_f64(-0.5),
        f16::ZERO,
    ];
    let x = TensorView::contiguous(DataRef::F16(&vals), &[3, 2]).unwrap();
    let s = quietattn::reference::activation_stats(&x).unwrap();
    let mut hist = [0u64; 40];
    hist[4] = 1;
    hist[39] = 1;
    hist[23] = 1; // -0.5: floor(log2) = -1
    assert_eq!(s.tensor.log2_hist, hist);
    assert_eq!((s.tensor.zeros, s.tensor.non_finite), (1, 2));
    assert_eq!(s.token_absmax, vec![65504.0, 0.0, 0.5]);
    assert_eq!(s.channels[0].count, 2);
    assert_eq!(s.channels[0].sum, 2f64.powi(-20) - 0.5);
    assert_eq!(s.channels[1].absmax, 65504.0);
    assert_eq!(s.channels[1].sum_sq, 65504.0f64 * 65504.0);
}

#[test]
fn invalid_inputs_are_errors() {
    let data = vec![1.0f32; 64];
    let dev = Device::reference();
    let rank3 = TensorView::contiguous(DataRef::F32(&data), &[4, 4, 4]).unwrap();
    assert!(matches!(
        quietattn::activation_stats(&dev, &rank3),
        Err(Error::Shape(_))
    ));
    let strided = TensorView::new(DataRef::F32(&data), &[4, 8], &[16, 2], 0).unwrap();
    assert!(matches!(
        quietattn::activation_stats(&dev, &strided),
        Err(Error::Shape(_))
    ));
    let ok = TensorView::contiguous(DataRef::F32(&data), &[8, 8]).unwrap();
    assert!(matches!(
        activation_stats_chunked(&dev, &ok, Some(0)),
        Err(Error::InvalidOption(_))
    ));
}

// ---------- the kernel against the reference ----------

/// Random activations with outlier channels, and NaN/inf/zero/subnormal elements sprinkled in.
fn activations(dtype: DType, tokens: usize, row_stride: usize, seed: u64) -> TensorData {
    let mut rng = StdRng::seed_from_u64(seed);
    let values: Vec<f64> = (0..tokens * row_stride)
        .map(|i| {
            let c = i % row_stride;
            let scale = if c % 37 == 5 { 80.0 } else { 1.0 };
            match rng.random_range(0..200) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 | 4 => 0.0,
                5 => 1e-41, // subnormal in f32 and bf16, zero in f16
                6 => 6e-6,  // subnormal in f16
                _ => scale * (rng.random::<f64>() * 2.0 - 1.0) * rng.random::<f64>() * 4.0,
            }
        })
        .collect();
    TensorData::from_f64(dtype, &values)
}

/// docs/contract.md §6 as `quietattn::stats::compare` states it: counters, histograms and absmax
/// exact (they count and bound the inputs as read); moments within 1e-3 relative. The odd sums can
/// cancel, so their bounds also allow f32 rounding of the summed magnitudes
/// (`abs_sums[c] = (Σ|x|, Σ|x|³)`, tighter than the Cauchy–Schwarz bounds the library derives).
fn assert_matches(kernel: &ActivationStats, reference: &ActivationStats, abs_sums: &[(f64, f64)]) {
    assert_eq!(kernel.tensor, reference.tensor, "tensor counters");
    assert_eq!(kernel.token_absmax, reference.token_absmax, "token absmax");
    assert_eq!(kernel.channels.len(), reference.channels.len());
    for (c, (k, r)) in kernel.channels.iter().zip(&reference.channels).enumerate() {
        let QaChannelStats { count, absmax, .. } = *r;
        assert_eq!((k.count, k.absmax), (count, absmax), "channel {c}");
        let (even, odd) = ([r.sum_sq, r.sum_4th], [abs_sums[c].0, abs_sums[c].1]);
        let sums = [
            ("sum", k.sum, r.sum, odd[0]),
            ("sum_sq", k.sum_sq, r.sum_sq, even[0]),
            ("sum_3rd", k.sum_3rd, r.sum_3rd, odd[1]),
            ("sum_4th", k.sum_4th, r.sum_4th, even[1]),
        ];
        for (name, got, want, magnitude) in sums {
            assert!(
                sum_close(got, want, REFERENCE_REL, REFERENCE_MAGNITUDE_REL, magnitude),
                "{name} of {c}: {got} vs {want}"
            );
        }
    }
}

/// (Σ|x|, Σ|x|³) per channel over the finite elements of the view.
fn abs_sums(x: &TensorView<'_>) -> Vec<(f64, f64)> {
    let mut s = vec![(0.0, 0.0); x.shape[1]];
    for t in 0..x.shape[0] {
        for (c, acc) in s.iter_mut().enumerate() {
            let v = x.at(&[t, c]);
            if v.is_finite() {
                acc.0 += v.abs();
                acc.1 += v.abs().powi(3);
            }
        }
    }
    s
}

/// One case: `[tokens, channels]` inside rows of `row_stride`, starting `offset` elements in.
struct Case {
    dtype: DType,
    tokens: usize,
    channels: usize,
    row_stride: usize,
    offset: usize,
    tokens_per_block: Option<u32>,
}

fn check(dev: &Device, case: &Case, seed: u64) {
    let data = activations(case.dtype, case.tokens + 1, case.row_stride, seed);
    let x = TensorView::new(
        data.as_ref(),
        &[case.tokens, case.channels],
        &[case.row_stride, 1],
        case.offset,
    )
    .unwrap();
    let reference = quietattn::reference::activation_stats(&x).unwrap();
    if case.tokens * case.channels >= 4096 {
        // The special values really are in the data.
        assert!(reference.tensor.non_finite > 0 && reference.tensor.zeros > 0);
    }
    let kernel = activation_stats_chunked(dev, &x, case.tokens_per_block)
        .unwrap_or_else(|e| panic!("{} on {}: {e}", case.dtype, dev.name()));
    assert_matches(&kernel, &reference, &abs_sums(&x));
}

/// Small shapes for the emulator: tokens and channels not multiples of a block, both the
/// 16-byte vector path (row pitch a multiple of 16 bytes) and the element-wise path.
fn small_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let per_block = 32 * 16 / dtype.size();
        let channels = per_block + 5;
        let aligned = channels.next_multiple_of(16 / dtype.size());
        for (row_stride, offset) in [(aligned, 0), (channels + 1, 1)] {
            cases.push(Case {
                dtype,
                tokens: 37,
                channels,
                row_stride,
                offset,
                tokens_per_block: Some(16),
            });
        }
        // Several unrolled row batches per warp, the last one partial; a partial token chunk.
        cases.push(Case {
            dtype,
            tokens: 250,
            channels: 2 * per_block + 3,
            row_stride: (2 * per_block + 3).next_multiple_of(16 / dtype.size()),
            offset: 0,
            tokens_per_block: Some(100),
        });
    }
    cases
}

#[cfg(feature = "emulator")]
#[test]
fn view_past_its_storage_is_an_error() {
    // Built field by field, so TensorView::new's check is bypassed: rows of stride 8 need 28
    // elements but the storage has 16.
    let data = vec![1.0f32; 16];
    let x = TensorView {
        data: DataRef::F32(&data),
        shape: vec![4, 4],
        strides: vec![8, 1],
        offset: 0,
    };
    let dev = Device::emulator().unwrap();
    assert!(matches!(
        quietattn::activation_stats(&dev, &x),
        Err(Error::Shape(_))
    ));
}

#[cfg(feature = "emulator")]
#[test]
fn emulator_matches_reference() {
    let dev = Device::emulator().unwrap();
    for (i, case) in small_cases().iter().enumerate() {
        check(&dev, case, 100 + i as u64);
    }
}

fn gpu(test: &str) -> Option<Device> {
    quietattn::testing::cuda_or_skip(test)
}

#[test]
fn gpu_matches_reference() {
    let Some(dev) = gpu("gpu_matches_reference") else {
        return;
    };
    let mut cases = small_cases();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for (tokens, channels, row_stride) in [(4099, 1000, 1000), (1, 7, 7), (300, 4096, 4104)] {
            cases.push(Case {
                dtype,
                tokens,
                channels,
                row_stride,
                offset: 0,
                tokens_per_block: None,
            });
        }
    }
    for (i, case) in cases.iter().enumerate() {
        check(&dev, case, 200 + i as u64);
    }
}
