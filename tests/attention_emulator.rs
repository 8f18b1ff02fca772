//! The attention kernels against the f64 reference, on the SIMT emulator (and on a GPU when
//! one is present). The matrix is a deterministic covering sample, not the full product: every
//! normaliser meets every mask, gate, dtype, head layout, batching, softcap and statistics
//! setting at least once (asserted below), plus head dims 256/72/200 and 32/96/192, extreme
//! logits, non-finite inputs and packed QKV. Run with `--nocapture` to see the matrix and
//! timings.
//!
//! The same matrix (`quietattn::check::matrix`) runs on each kernel family, pinned: the
//! CUDA-core family serves every case; the tensor-core family (f16/bf16, head dims
//! 32/64/96/128/192/256) skips the others, and its refusal of d72/d200 is asserted.

mod attention_parts;

use std::collections::HashSet;

use attention_parts::cases::{Batching, Case};
use attention_parts::{gpu_or_skip, run_all};
use quietattn::check::matrix::{all_cases, covering_matrix};
use quietattn::check::{Family, Verdict};
use quietattn::ops::attention::family::tensor_core_head_dims;
use quietattn::{DType, Device, Error};

#[test]
fn covering_matrix_covers_every_pair_with_the_normaliser() {
    let cases = covering_matrix();
    for n in 0..quietattn::registry::NORMALISERS.len() {
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

/// Which family served which case: the tensor-core family skips exactly the f32 cases and the
/// head dims it does not instantiate, and serves every other one.
fn assert_family_coverage(
    results: &[quietattn::check::CaseResult],
    cases: &[(Case, attention_parts::Edit)],
) {
    for family in [Family::CudaCore, Family::TensorCore] {
        let mine: Vec<_> = results.iter().filter(|r| r.family == family).collect();
        assert_eq!(mine.len(), cases.len(), "{} ran every case", family.name());
        for (r, (case, _)) in mine.iter().zip(cases) {
            let served = family == Family::CudaCore
                || (case.dtype != DType::F32
                    && tensor_core_head_dims().contains(&(case.head_dim as u32)));
            let skipped = matches!(r.verdict, Verdict::Skipped(_));
            assert_eq!(
                skipped,
                !served,
                "{} {}: {:?}",
                family.name(),
                r.label,
                r.verdict
            );
        }
    }
}

#[test]
fn emulator_attention_matches_reference() {
    let device = Device::emulator().expect("the emulator feature is on in tests");
    let cases = all_cases();
    let results = run_all(&device, "attention (emulator)", &cases);
    assert_family_coverage(&results, &cases);
}

/// Head dims the tensor-core family does not instantiate (72, 200 in the matrix) are refused
/// with `Unsupported` naming the head dim, even in f16/bf16, not run.
#[test]
fn emulator_tensor_core_refuses_its_missing_head_dims() {
    let device = Device::emulator().expect("the emulator feature is on in tests");
    let refused: Vec<Case> = all_cases()
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| !tensor_core_head_dims().contains(&(c.head_dim as u32)))
        .collect();
    let dims: HashSet<usize> = refused.iter().map(|c| c.head_dim).collect();
    assert_eq!(
        dims,
        HashSet::from([72, 200]),
        "the matrix exercises the refusal"
    );
    for mut case in refused {
        if case.dtype == DType::F32 {
            case.dtype = DType::F16;
        }
        let data = attention_parts::cases::CaseData::new(&case, 1);
        let options = Family::TensorCore.apply(case.options());
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
        let cases = all_cases();
        let results = run_all(&device, "attention (gpu)", &cases);
        if Family::TensorCore.supported_by(&device) {
            assert_family_coverage(&results, &cases);
        }
    }
}

/// Packed QKV: q, k and v are views into one `[b, s, (h + 2·kv)·d]` buffer, on both families.
#[test]
fn emulator_packed_qkv_matches_reference() {
    use quietattn::check::{Expected, verify};
    use quietattn::{AttentionInputs, TensorData, TensorView};

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
    for family in [Family::CudaCore, Family::TensorCore] {
        let options = family.apply(quietattn::AttentionOptions {
            causal: true,
            stats: true,
            ..Default::default()
        });
        let label = family.name();
        let expected = Expected::new(&inputs, &options).expect("reference");
        let got = quietattn::attention(&device, &inputs, &options).expect("kernel");
        verify(DType::BF16, &expected, &got, true)
            .unwrap_or_else(|e| panic!("packed qkv, {label}: {e}"));

        // The same checker must reject a wrong answer: one output element off by 5% of its
        // row's largest value (3× the bf16 tolerance), and a statistic off by more than 1e-3.
        let mut wrong = got.clone();
        let mut o = wrong.o.to_f64();
        let row_max = expected.reference.o[..d]
            .iter()
            .fold(0.0f64, |m, x| m.max(x.abs()));
        o[3] += 0.05 * row_max;
        wrong.o = quietattn::Tensor::from_f64(DType::BF16, &o, &wrong.o.shape).expect("tensor");
        let err = verify(DType::BF16, &expected, &wrong, true).expect_err("perturbed o must fail");
        assert!(err.0.contains("o[row 0][3]"), "{label}: {err}");
        let mut wrong = got.clone();
        let stats = wrong.stats.as_mut().expect("stats requested");
        stats.heads[1].first_key_mass *= 1.01;
        let err =
            verify(DType::BF16, &expected, &wrong, true).expect_err("perturbed mass must fail");
        assert!(err.0.contains("head 1"), "{label}: {err}");
    }
}

/// Head dims the kernels do not instantiate are refused with `Unsupported`, not run.
#[test]
fn emulator_refuses_unsupported_head_dims() {
    use quietattn::{AttentionInputs, AttentionOptions, Tensor};

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
