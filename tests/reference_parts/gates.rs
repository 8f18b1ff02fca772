//! docs/contract.md §4: output gates scale the normalised output and leave `lse` alone.

use super::{assert_close, random, view};
use quietattn::reference::{self, ReferenceAttention};
use quietattn::{AttentionInputs, AttentionOptions, Gate, Normaliser};

const B: usize = 2;
const S: usize = 3;
const H: usize = 2;
const D: usize = 4;

fn gated(gate: Gate, logits: &[f32], norm: Normaliser) -> ReferenceAttention {
    let q = random(B * S * H * D, 90, 1.0);
    let k = random(B * S * H * D, 91, 1.0);
    let v = random(B * S * H * D, 92, 1.0);
    let shape = [B, S, H, D];
    let mut inputs = AttentionInputs::new(view(&q, &shape), view(&k, &shape), view(&v, &shape));
    let g_shape: &[usize] = if gate.is_elementwise() {
        &shape
    } else {
        &shape[..3]
    };
    if gate != Gate::None {
        inputs.gate = Some(view(logits, g_shape));
    }
    let options = AttentionOptions {
        gate,
        normaliser: norm,
        causal: true,
        ..AttentionOptions::default()
    };
    reference::attention(&inputs, &options).expect("valid gated problem")
}

fn logistic(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

#[test]
fn gates_scale_the_output_by_their_factor() {
    let norm = Normaliser::Clipped {
        gamma: -0.05,
        zeta: 1.0,
    };
    let base = gated(Gate::None, &[], norm);
    let heads = B * S * H;
    let g = random(heads, 93, 3.0);
    let ge = random(heads * D, 94, 3.0);

    let headwise: Vec<f64> = (0..heads * D)
        .map(|x| base.o[x] * logistic(g[x / D]))
        .collect();
    let r = gated(Gate::SigmoidHeadwise, &g, norm);
    assert_close(&r.o, &headwise, 1e-15);
    assert_eq!(r.lse, base.lse);

    let scaled: Vec<f64> = headwise.iter().map(|x| 2.0 * x).collect();
    assert_close(&gated(Gate::ContextScale, &g, norm).o, &scaled, 1e-15);

    let elementwise: Vec<f64> = (0..heads * D)
        .map(|x| base.o[x] * logistic(ge[x]))
        .collect();
    let r = gated(Gate::SigmoidElementwise, &ge, norm);
    assert_close(&r.o, &elementwise, 1e-15);
    assert_eq!(r.lse, base.lse);
    // O statistics are taken before the gate.
    assert_eq!(r.stats.channels[3], base.stats.channels[3]);
}

#[test]
fn saturated_gates_are_identity_or_zero() {
    let norm = Normaliser::Softmax;
    let base = gated(Gate::None, &[], norm);
    let n = B * S * H;
    let open = gated(Gate::SigmoidHeadwise, &vec![1e4; n], norm);
    assert_eq!(open.o, base.o);
    let open = gated(Gate::SigmoidElementwise, &vec![1e4; n * D], norm);
    assert_eq!(open.o, base.o);
    let shut = gated(Gate::SigmoidHeadwise, &vec![-1e4; n], norm);
    assert!(shut.o.iter().all(|&x| x == 0.0));
    let shut = gated(Gate::SigmoidElementwise, &vec![-1e4; n * D], norm);
    assert!(shut.o.iter().all(|&x| x == 0.0));
    // context scale: 2·sigmoid(0) = 1.
    assert_eq!(gated(Gate::ContextScale, &vec![0.0; n], norm).o, base.o);
}
