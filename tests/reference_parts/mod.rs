//! Shared builders for the reference identity tests.

mod gates;
mod layout;
mod masks;
mod normalisers;
mod softcap;
mod stats;

use quietattn::reference::{self, ReferenceAttention};
use quietattn::{AttentionInputs, AttentionOptions, DataRef, Normaliser, Tensor, TensorView};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Deterministic f32 values in `[-amp, amp)`.
pub fn random(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-amp..amp)).collect()
}

/// A contiguous f32 view of `data`.
pub fn view<'a>(data: &'a [f32], shape: &[usize]) -> TensorView<'a> {
    TensorView::contiguous(DataRef::F32(data), shape).expect("test shape matches its data")
}

/// Options with the given normaliser and defaults otherwise.
pub fn opts(normaliser: Normaliser) -> AttentionOptions {
    AttentionOptions {
        normaliser,
        ..AttentionOptions::default()
    }
}

/// The reference on batched contiguous f32 q/k/v.
pub fn run(
    q: (&[f32], [usize; 4]),
    k: (&[f32], [usize; 4]),
    v: &[f32],
    sinks: Option<&[f32]>,
    options: &AttentionOptions,
) -> ReferenceAttention {
    let mut inputs = AttentionInputs::new(view(q.0, &q.1), view(k.0, &k.1), view(v, &k.1));
    inputs.sinks = sinks;
    reference::attention(&inputs, options).expect("valid test problem")
}

/// `max |a - b|` with NaN counting as infinitely far, after checking the lengths match.
pub fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x == y {
                0.0
            } else {
                let d = (x - y).abs();
                if d.is_nan() { f64::INFINITY } else { d }
            }
        })
        .fold(0.0, f64::max)
}

/// Asserts `|a - b| <= tol` elementwise (equal infinities pass).
#[track_caller]
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    let d = max_diff(a, b);
    assert!(d <= tol, "max diff {d} > {tol}\n a = {a:?}\n b = {b:?}");
}

/// Widens f32 to f64.
pub fn wide(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

/// The rounded [`Tensor`] reading of f64 values, to compare through the public API.
pub fn to_f32_tensor(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(quietattn::DType::F32, values, shape).expect("shape fits")
}
