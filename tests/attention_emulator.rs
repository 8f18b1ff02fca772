//! The attention kernels against the f64 reference, on the SIMT emulator (and on a GPU when
//! one is present). The matrix is a deterministic covering sample, not the full product: every
//! normaliser meets every mask, gate, dtype, head layout, batching, softcap and statistics
//! setting at least once (asserted below), plus head dims 256/72/200, extreme logits,
//! non-finite inputs and packed QKV. Run with `--nocapture` to see the matrix and timings.
//!
//! The same matrix runs on each kernel family, pinned: the CUDA-core family as it is; the
//! tensor-core family (f16/bf16 only) with the f32 cases moved to f16/bf16, plus its own head
//! dims (32, 96, 192), and the cases it cannot serve asserted to be refused.

mod attention_parts;

use std::collections::HashSet;

use attention_parts::cases::{Batching, Case, CaseData, Layout, MaskKind, set};
use attention_parts::{Edit, gpu_or_skip, run_all};
use quietattn::{DType, Device, Error, Gate, KernelChoice, Normaliser};

fn no_edit() -> Edit {
    Box::new(|_| {})
}

const MASKS: [MaskKind; 3] = [MaskKind::None, MaskKind::Causal, MaskKind::Window];
const GATES: [Gate; 4] = [
    Gate::None,
    Gate::SigmoidHeadwise,
    Gate::SigmoidElementwise,
    Gate::ContextScale,
];
const DTYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
const LAYOUTS: [Layout; 3] = [Layout::Mha, Layout::Gqa, Layout::Mqa];
const BATCHED: [(usize, usize); 3] = [(20, 37), (33, 33), (1, 17)];

fn normaliser(n: usize, c: usize) -> Normaliser {
    match n {
        0 => Normaliser::Softmax,
        1 => Normaliser::OffByOne,
        2 => Normaliser::Sink,
        3 => Normaliser::Clipped {
            gamma: -0.05,
            zeta: 1.2,
        },
        4 => Normaliser::Softpick,
        _ => Normaliser::Sigmoid {
            bias: (c % 2 == 1).then_some(-1.0),
        },
    }
}

/// Twelve cases per normaliser; each factor cycles with a different period so that, per
/// normaliser, every level of every factor appears.
fn covering_matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for n in 0..6 {
        for c in 0..12 {
            let (q_len, k_len) = BATCHED[(c / 2) % 3];
            cases.push(Case {
                norm: normaliser(n, c),
                mask: MASKS[(c + n) % 3],
                softcap: (c + c / 6) % 2 == 1,
                gate: GATES[c % 4],
                dtype: DTYPES[(c / 4 + n) % 3],
                head_dim: [64, 128][(c / 3) % 2],
                layout: LAYOUTS[(c / 2 + n) % 3],
                batching: if (c / 3 + n) % 2 == 0 {
                    Batching::Varlen
                } else {
                    Batching::Batched { q_len, k_len }
                },
                stats: (c + n) % 2 == 0,
                padded: (c / 6 + n) % 2 == 1,
                scale: None,
            });
        }
    }
    cases
}

#[test]
fn covering_matrix_covers_every_pair_with_the_normaliser() {
    let cases = covering_matrix();
    for n in 0..6 {
        let mine: Vec<&Case> = cases.iter().filter(|c| c.norm.abi() == n as u32).collect();
        let count =
            |f: &dyn Fn(&Case) -> String| mine.iter().map(|c| f(c)).collect::<HashSet<_>>().len();
        assert_eq!(
            count(&|c| format!("{:?}", c.mask)),
            3,
            "masks of normaliser {n}"
        );
        assert_eq!(
            count(&|c| c.gate.name().into()),
            4,
            "gates of normaliser {n}"
        );
        assert_eq!(
            count(&|c| c.dtype.name().into()),
            3,
            "dtypes of normaliser {n}"
        );
        assert_eq!(
            count(&|c| format!("{:?}", c.layout)),
            3,
            "layouts of normaliser {n}"
        );
        assert_eq!(
            count(&|c| format!("{}", matches!(c.batching, Batching::Varlen))),
            2
        );
        assert_eq!(
            count(&|c| format!("{}", c.softcap)),
            2,
            "softcap of normaliser {n}"
        );
        assert_eq!(
            count(&|c| format!("{}", c.stats)),
            2,
            "stats of normaliser {n}"
        );
        assert_eq!(
            count(&|c| format!("{}", c.head_dim)),
            2,
            "head dims of normaliser {n}"
        );
    }
}

/// Head dims beyond the covering matrix: the d256 instantiation and non-power-of-two dims.
fn head_dim_cases() -> Vec<Case> {
    let base = |norm, d, dtype, mask, batching| Case {
        norm,
        mask,
        softcap: false,
        gate: Gate::SigmoidElementwise,
        dtype,
        head_dim: d,
        layout: Layout::Gqa,
        batching,
        stats: true,
        padded: true,
        scale: None,
    };
    vec![
        base(
            Normaliser::Sink,
            256,
            DType::F16,
            MaskKind::CausalWindow,
            Batching::Varlen,
        ),
        base(
            Normaliser::Clipped {
                gamma: -0.05,
                zeta: 1.2,
            },
            256,
            DType::F32,
            MaskKind::Causal,
            Batching::Batched {
                q_len: 20,
                k_len: 37,
            },
        ),
        base(
            Normaliser::Softpick,
            72,
            DType::BF16,
            MaskKind::None,
            Batching::Varlen,
        ),
        base(
            Normaliser::Softmax,
            200,
            DType::F32,
            MaskKind::Window,
            Batching::Batched { q_len: 9, k_len: 9 },
        ),
    ]
}

/// Logits of about ±1e4 after scaling, every normaliser, f32.
fn extreme_cases() -> Vec<Case> {
    (0..6)
        .map(|n| Case {
            norm: normaliser(n, 0),
            mask: MASKS[n % 3],
            softcap: false,
            gate: Gate::None,
            dtype: DType::F32,
            head_dim: 64,
            layout: Layout::Mqa,
            batching: Batching::Batched {
                q_len: 20,
                k_len: 37,
            },
            stats: true,
            padded: false,
            scale: Some(1e3),
        })
        .collect()
}

/// NaN in q, +inf in k, -inf in v (one element each): counted in non_finite, propagated.
fn non_finite_cases() -> Vec<(Case, Edit)> {
    [
        (Normaliser::Softmax, DType::F32),
        (Normaliser::Sigmoid { bias: None }, DType::BF16),
    ]
    .into_iter()
    .map(|(norm, dtype)| {
        let case = Case {
            norm,
            mask: MaskKind::Causal,
            softcap: false,
            gate: Gate::None,
            dtype,
            head_dim: 64,
            layout: Layout::Mha,
            batching: Batching::Batched {
                q_len: 20,
                k_len: 37,
            },
            stats: true,
            padded: false,
            scale: None,
        };
        let edit: Edit = Box::new(|d: &mut CaseData| {
            set(&mut d.q, 5 * 2 * 64 + 3, f64::NAN);
            set(&mut d.k, 30 * 2 * 64 + 64 + 7, f64::INFINITY);
            set(&mut d.v, 2 * 64 + 1, f64::NEG_INFINITY);
        });
        (case, edit)
    })
    .collect()
}

fn all_cases() -> Vec<(Case, Edit)> {
    let mut all: Vec<(Case, Edit)> = covering_matrix()
        .into_iter()
        .map(|c| (c, no_edit()))
        .collect();
    all.extend(head_dim_cases().into_iter().map(|c| (c, no_edit())));
    all.extend(extreme_cases().into_iter().map(|c| (c, no_edit())));
    all.extend(non_finite_cases());
    all
}

/// The tensor-core family's view of `cases`: f32 cases run in f16 or bf16 (alternating, so
/// every normaliser keeps both), cases whose head dim it does not instantiate are returned
/// apart (they must be refused); then the head dims only this family has.
fn tensor_core_cases(cases: Vec<(Case, Edit)>) -> (Vec<(Case, Edit)>, Vec<Case>) {
    let (mut served, mut refused) = (Vec::new(), Vec::new());
    for (i, (mut case, edit)) in cases.into_iter().enumerate() {
        if case.dtype == DType::F32 {
            case.dtype = [DType::F16, DType::BF16][i % 2];
        }
        if quietattn::ops::attention::family::TENSOR_CORE_HEAD_DIMS
            .contains(&(case.head_dim as u32))
        {
            served.push((case, edit));
        } else {
            refused.push(case);
        }
    }
    let extra = |norm, d, dtype, mask, layout, batching| Case {
        norm,
        mask,
        softcap: d == 96,
        gate: [Gate::ContextScale, Gate::SigmoidHeadwise, Gate::None][d / 96 % 3],
        dtype,
        head_dim: d,
        layout,
        batching,
        stats: true,
        padded: d != 192,
        scale: None,
    };
    let batched = Batching::Batched {
        q_len: 20,
        k_len: 37,
    };
    served.extend(
        [
            extra(
                Normaliser::Softmax,
                32,
                DType::BF16,
                MaskKind::Causal,
                Layout::Gqa,
                Batching::Varlen,
            ),
            extra(
                Normaliser::OffByOne,
                96,
                DType::F16,
                MaskKind::Window,
                Layout::Mha,
                batched,
            ),
            extra(
                Normaliser::Sigmoid { bias: None },
                192,
                DType::BF16,
                MaskKind::CausalWindow,
                Layout::Mqa,
                batched,
            ),
            extra(
                Normaliser::Softpick,
                32,
                DType::F16,
                MaskKind::None,
                Layout::Mha,
                batched,
            ),
        ]
        .into_iter()
        .map(|c| (c, no_edit())),
    );
    (served, refused)
}

#[test]
fn emulator_attention_matches_reference() {
    let device = Device::emulator().expect("the emulator feature is on in tests");
    run_all(
        &device,
        "attention (emulator)",
        &all_cases(),
        KernelChoice::CudaCore,
    );
}

#[test]
fn emulator_tensor_core_attention_matches_reference() {
    let device = Device::emulator().expect("the emulator feature is on in tests");
    let (served, refused) = tensor_core_cases(all_cases());
    run_all(
        &device,
        "attention (emulator)",
        &served,
        KernelChoice::TensorCore,
    );
    assert!(
        !refused.is_empty(),
        "the d72/d200 cases exercise the refusal"
    );
    for case in refused {
        let data = attention_parts::cases::CaseData::new(&case, 1);
        let options = quietattn::AttentionOptions {
            kernel: KernelChoice::TensorCore,
            ..case.options()
        };
        let got = quietattn::attention(&device, &data.inputs(), &options);
        assert!(
            matches!(&got, Err(Error::Unsupported(m)) if m.contains("head dim")),
            "{}: {:?}",
            case.label(),
            got.map(|_| ())
        );
    }
}

#[test]
fn gpu_attention_matches_reference() {
    if let Some(device) = gpu_or_skip("gpu_attention_matches_reference") {
        run_all(
            &device,
            "attention (gpu)",
            &all_cases(),
            KernelChoice::CudaCore,
        );
        let (served, _) = tensor_core_cases(all_cases());
        run_all(
            &device,
            "attention (gpu)",
            &served,
            KernelChoice::TensorCore,
        );
    }
}

/// Packed QKV: q, k and v are views into one `[b, s, (h + 2·kv)·d]` buffer, on both families.
#[test]
fn emulator_packed_qkv_matches_reference() {
    use attention_parts::compare::{check_outputs, check_stats};
    use attention_parts::o_expect::OExpect;
    use attention_parts::row_values::head_bins;
    use quietattn::{AttentionInputs, AttentionOptions, TensorData, TensorView, reference};

    let device = Device::emulator().expect("the emulator feature is on in tests");
    let (b, s, h, kv, d) = (2, 24, 4, 2, 64);
    let width = (h + 2 * kv) * d;
    let values: Vec<f64> = (0..b * s * width)
        .map(|i| ((i * 7919 % 1013) as f64 / 1013.0 - 0.5) * 3.0)
        .collect();
    let data = TensorData::from_f64(DType::BF16, &values);
    let view = |heads: usize, offset: usize| {
        TensorView::new(
            data.as_ref(),
            &[b, s, heads, d],
            &[s * width, width, d, 1],
            offset,
        )
        .expect("packed view fits")
    };
    let inputs = AttentionInputs::new(view(h, 0), view(kv, h * d), view(kv, (h + kv) * d));
    for kernel in [KernelChoice::CudaCore, KernelChoice::TensorCore] {
        let options = AttentionOptions {
            causal: true,
            stats: true,
            kernel,
            ..Default::default()
        };
        let want = reference::attention(&inputs, &options).expect("reference");
        let got = quietattn::attention(&device, &inputs, &options).expect("kernel");
        let label = kernel.name();
        check_outputs(DType::BF16, &got, &want)
            .unwrap_or_else(|e| panic!("packed qkv, {label}: {e}"));
        let bins = head_bins(&inputs, &options, &want.problem);
        let stats = got.stats.as_ref().expect("stats requested");
        check_stats(
            stats,
            &want.stats,
            &bins,
            &OExpect::new(
                &want.o,
                0..b * s,
                h,
                d,
                match kernel {
                    KernelChoice::CudaCore => (0.0, 0.0),
                    _ => (attention_parts::compare::rounded_p_o_rel(DType::BF16), 0.0),
                },
            ),
        )
        .unwrap_or_else(|e| panic!("packed qkv stats, {label}: {e}"));
    }
}

/// Head dims the kernels do not instantiate are refused with `Unsupported`, not run.
#[test]
fn emulator_refuses_unsupported_head_dims() {
    use quietattn::{AttentionInputs, AttentionOptions, Error, Tensor};

    let device = Device::emulator().expect("the emulator feature is on in tests");
    for d in [12, 264] {
        let t = Tensor::zeros(DType::F32, &[1, 4, 1, d]).expect("tensor");
        let inputs = AttentionInputs::new(t.view(), t.view(), t.view());
        let err = quietattn::attention(&device, &inputs, &AttentionOptions::default());
        assert!(
            matches!(err, Err(Error::Unsupported(_))),
            "d = {d}: {err:?}"
        );
    }
}
