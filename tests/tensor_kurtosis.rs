//! Whole-tensor kurtosis (docs/contract.md §8, Bondarenko et al. 2023) of every statistics
//! producer: the activation-statistics op and the four tensors of an attention call, on the f64
//! reference and the emulator, against μ4/σ⁴ computed from the values by definition.

use quietattn::stats::report::{ActivationReport, AttentionReport};
use quietattn::{
    AttentionInputs, AttentionOptions, DType, DataRef, Device, Normaliser, Tensor, TensorView,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// μ4/σ⁴ of all values: the mean first, then central moments of the deviations.
fn kurtosis_by_definition(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let central = |p: i32| xs.iter().map(|x| (x - mean).powi(p)).sum::<f64>() / n;
    central(4) / central(2).powi(2)
}

/// `[tokens, channels]` f32 values with two planted outlier channels (like a residual stream).
fn residual_like(tokens: usize, channels: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x: Vec<f32> = (0..tokens * channels)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    for t in 0..tokens {
        x[t * channels + 5] = 40.0 + rng.random_range(-2.0f32..2.0);
        if t % 7 == 0 {
            x[t * channels + 11] = -250.0;
        }
    }
    x
}

fn activation_kurtosis(device: &Device, data: &[f32], shape: [usize; 2]) -> Option<f64> {
    let view = TensorView::new(DataRef::F32(data), &shape, &[shape[1], 1], 0).unwrap();
    let raw = quietattn::activation_stats(device, &view).unwrap();
    ActivationReport::new(&raw).tensor.tensor_kurtosis
}

#[test]
fn activation_reference_equals_the_definition() {
    let (t, c) = (64, 48);
    let x = residual_like(t, c, 3);
    let all: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let want = kurtosis_by_definition(&all);
    let got = activation_kurtosis(&Device::reference(), &x, [t, c]).unwrap();
    assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    // The planted channels make the tensor heavy-tailed, far above a Gaussian's 3.
    assert!(want > 10.0, "{want}");
}

#[test]
fn activation_emulator_matches_the_reference() {
    let (t, c) = (40, 32);
    let x = residual_like(t, c, 9);
    let want = activation_kurtosis(&Device::reference(), &x, [t, c]).unwrap();
    let got = activation_kurtosis(&Device::emulator().unwrap(), &x, [t, c]).unwrap();
    // docs/contract.md §6: moments within 1e-3 relative (the kernel sums in f32).
    assert!((got - want).abs() <= 1e-3 * want, "{got} vs {want}");
}

fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n)
        .map(|i| (i as f64 * seed).sin() + if i % 64 == 3 { 9.0 } else { 0.0 })
        .collect()
}

#[test]
fn attention_tensors_have_their_kurtosis() {
    let (s, h, d) = (16, 2, 64);
    let (qv, kv, vv) = (
        values(s * h * d, 0.37),
        values(s * h * d, 0.11),
        values(s * h * d, 0.73),
    );
    let tensor = |v: &[f64]| Tensor::from_f64(DType::F32, v, &[1, s, h, d]).unwrap();
    let (q, k, v) = (tensor(&qv), tensor(&kv), tensor(&vv));
    let inputs = AttentionInputs::new(q.view(), k.view(), v.view());
    let options = AttentionOptions {
        normaliser: Normaliser::Softmax,
        causal: true,
        stats: true,
        ..AttentionOptions::default()
    };
    let reference = quietattn::attention(&Device::reference(), &inputs, &options).unwrap();
    let report = AttentionReport::new(reference.stats.as_ref().unwrap());
    // Q, K, V as the kernel reads them (f32-rounded), O as computed.
    let o = reference.o.to_f64();
    for (i, xs) in [q.to_f64(), k.to_f64(), v.to_f64(), o].iter().enumerate() {
        let want = kurtosis_by_definition(xs);
        let got = report.tensors[i].tensor_kurtosis.unwrap();
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "tensor {i}: {got} vs {want}"
        );
    }
    let emulated = quietattn::attention(&Device::emulator().unwrap(), &inputs, &options).unwrap();
    let emu = AttentionReport::new(emulated.stats.as_ref().unwrap());
    for (a, b) in emu.tensors.iter().zip(&report.tensors) {
        let (a, b) = (a.tensor_kurtosis.unwrap(), b.tensor_kurtosis.unwrap());
        assert!((a - b).abs() <= 1e-3 * b, "{a} vs {b}");
    }
}
