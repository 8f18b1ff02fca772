//! The numeric policy of the library: non-finite inputs are counted before the launch and
//! reported with the output, the f32 range bounds are computed from the inputs, and overflow
//! (non-finite outputs from finite inputs) is visible in `AttentionOutput::numerics`.

use quietattn::problem::InputNumerics;
use quietattn::{AttentionInputs, AttentionOptions, AttentionProblem, DType, Device, Tensor};

fn tensor(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_f64(DType::F32, values, shape).expect("tensor")
}

/// q `[1, 2, 1, 8]` and k, v `[1, 3, 1, 8]` from a pattern; `edit` changes q, k, v first.
fn qkv(edit: impl Fn(&mut [Vec<f64>; 3])) -> [Tensor; 3] {
    let mut vals = [
        (0..16).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>(),
        (0..24).map(|i| (i as f64 * 0.11).cos()).collect(),
        (0..24).map(|i| (i as f64 * 0.73).sin()).collect(),
    ];
    edit(&mut vals);
    [
        tensor(&vals[0], &[1, 2, 1, 8]),
        tensor(&vals[1], &[1, 3, 1, 8]),
        tensor(&vals[2], &[1, 3, 1, 8]),
    ]
}

fn scan(t: &[Tensor; 3], options: &AttentionOptions) -> InputNumerics {
    let inputs = AttentionInputs::new(t[0].view(), t[1].view(), t[2].view());
    let problem = AttentionProblem::new(&inputs, options).expect("valid");
    InputNumerics::scan(&inputs, &problem)
}

#[test]
fn the_scan_counts_non_finite_elements_and_bounds_the_logits() {
    let t = qkv(|v| {
        v[0][3] = f64::NAN;
        v[1][0] = f64::INFINITY;
        v[1][1] = f64::NEG_INFINITY;
        v[2][5] = 4.0;
    });
    let s = scan(&t, &AttentionOptions::default());
    assert_eq!((s.non_finite.q, s.non_finite.k, s.non_finite.v), (1, 2, 0));
    assert_eq!(s.non_finite.describe(), "q 1, k 2");
    assert_eq!(s.max_abs_v, 4.0);
    // Three keys: the accumulator bound is 3 · max|v|.
    assert_eq!(s.accumulator_bound, 12.0);
    let expected = std::f64::consts::LOG2_E * s.max_q_norm * s.max_k_norm;
    assert!((s.logit_bound - expected).abs() <= 1e-12 * expected);
    assert_eq!(s.range_problem(), None);
    // A scale of 1e38 pushes the logits beyond f32; so do q and k rows at 1e20.
    let big_scale = AttentionOptions {
        scale: Some(1e38),
        ..AttentionOptions::default()
    };
    let why = scan(&t, &big_scale).range_problem().expect("out of range");
    assert!(why.contains("logits may overflow f32"), "{why}");
    let big_rows = qkv(|v| {
        for t in &mut v[..2] {
            t.iter_mut().for_each(|x| *x *= 1e20);
        }
    });
    assert!(
        scan(&big_rows, &AttentionOptions::default())
            .range_problem()
            .is_some()
    );
    let big_v = qkv(|v| v[2][0] = 3e38);
    let why = scan(&big_v, &AttentionOptions::default())
        .range_problem()
        .unwrap();
    assert!(why.contains("accumulators may overflow f32"), "{why}");
}

#[test]
fn attention_reports_non_finite_inputs_and_outputs() {
    let t = qkv(|v| v[1][2] = f64::NAN);
    let inputs = AttentionInputs::new(t[0].view(), t[1].view(), t[2].view());
    let out = quietattn::attention(&Device::reference(), &inputs, &AttentionOptions::default())
        .expect("runs");
    assert_eq!(out.numerics.inputs.non_finite.k, 1);
    // The NaN key poisons both query rows: every element of o.
    assert_eq!(out.numerics.non_finite_o, 16);
    assert!(!out.numerics.overflowed(), "non-finite inputs explain it");
}

#[test]
fn overflow_from_finite_inputs_is_flagged_on_the_emulator() {
    let Ok(emulator) = Device::emulator() else {
        println!("SKIP overflow on the emulator: not compiled in");
        return;
    };
    let t = qkv(|v| v[2].iter_mut().for_each(|x| *x = 3e38));
    let inputs = AttentionInputs::new(t[0].view(), t[1].view(), t[2].view());
    let out = quietattn::attention(&emulator, &inputs, &AttentionOptions::default()).unwrap();
    let bad = out.o.to_f64().iter().filter(|x| !x.is_finite()).count();
    assert_eq!(out.numerics.non_finite_o, bad);
    assert!(out.numerics.inputs.range_problem().is_some());
    assert_eq!(out.numerics.overflowed(), bad > 0);
    // The same call on the f64 reference stays finite: the kernels' f32 range is the limit.
    let want =
        quietattn::attention(&Device::reference(), &inputs, &AttentionOptions::default()).unwrap();
    assert_eq!(want.numerics.non_finite_o, 0);
    println!(
        "emulator: {bad} of {} outputs non-finite",
        out.o.to_f64().len()
    );
}
