//! Shared machinery of the attention kernel tests: cases, inputs, comparison with the reference.

pub mod cases;
pub mod compare;
pub mod o_expect;
pub mod row_values;

use std::time::{Duration, Instant};

use quietattn::{AttentionOptions, Device, Gate, KernelChoice, reference};

use cases::{Case, CaseData};
use compare::{check_outputs, check_stats};
use o_expect::OExpect;
use row_values::head_bins;

/// Changes a case's inputs after generation (non-finite values, ...).
pub type Edit = Box<dyn Fn(&mut CaseData)>;

/// Runs one case on `device` with the kernel family `kernel` and compares it with the
/// reference; returns the kernel's time.
pub fn run_case(
    device: &Device,
    case: &Case,
    seed: u64,
    edit: &dyn Fn(&mut CaseData),
    kernel: KernelChoice,
) -> Result<Duration, String> {
    let mut data = CaseData::new(case, seed);
    edit(&mut data);
    let inputs = data.inputs();
    let options = AttentionOptions {
        kernel,
        ..case.options()
    };
    let want = reference::attention(&inputs, &options).map_err(|e| format!("reference: {e}"))?;
    let start = Instant::now();
    let got =
        quietattn::attention(device, &inputs, &options).map_err(|e| format!("kernel: {e}"))?;
    let elapsed = start.elapsed();
    check_outputs(case.dtype, &got, &want)?;
    if case.stats {
        let stats = got
            .stats
            .as_ref()
            .ok_or("statistics were requested but not returned")?;
        let problem = &want.problem;
        // O statistics are taken before the gate: the reference without it gives those values.
        let ungated = AttentionOptions {
            gate: Gate::None,
            ..options.clone()
        };
        let o = if options.gate == Gate::None {
            want.o.clone()
        } else {
            reference::attention(&inputs, &ungated)
                .map_err(|e| format!("reference: {e}"))?
                .o
        };
        let o_expect = OExpect::new(
            &o,
            covered_tokens(problem),
            problem.heads,
            problem.head_dim,
            o_error(case.dtype, kernel, problem.max_k, &data),
        );
        check_stats(
            stats,
            &want.stats,
            &head_bins(&inputs, &options, problem),
            &o_expect,
        )?;
    } else if got.stats.is_some() {
        return Err("statistics returned although not requested".into());
    }
    Ok(elapsed)
}

/// The rows of the q/o tensors some sequence covers (the kernels write only those).
pub fn covered_tokens(problem: &quietattn::AttentionProblem) -> impl Iterator<Item = usize> + '_ {
    problem.seqs.iter().enumerate().flat_map(|(b, s)| {
        let first = if problem.varlen {
            s.q_start
        } else {
            b * problem.max_q
        };
        first..first + s.q_len
    })
}

/// The error of o's elements the statistics comparison allows for `kernel` (see
/// [`OExpect`]): none for the CUDA-core family (P in f32: SPEC §6's summation tolerance only);
/// where the tensor-core family may run, the dtype's output tolerance relative to the row's
/// largest value (P rounded to f16/bf16 before P·V), plus, for f16, the weights below its
/// smallest subnormal that round to 0: at most `keys · 2^-25 · max|v|`.
pub fn o_error(
    dtype: quietattn::DType,
    kernel: KernelChoice,
    keys: usize,
    data: &CaseData,
) -> (f64, f64) {
    if kernel == KernelChoice::CudaCore {
        return (0.0, 0.0);
    }
    let floor = match dtype {
        quietattn::DType::F16 => {
            let v_max = data
                .v
                .view()
                .to_f64()
                .iter()
                .filter(|x| x.is_finite())
                .fold(0.0f64, |m, x| m.max(x.abs()));
            keys as f64 * 2f64.powi(-25) * v_max
        }
        _ => 0.0,
    };
    (compare::rounded_p_o_rel(dtype), floor)
}

/// Runs every case on the kernel family `kernel`, prints the matrix with timings, and fails with
/// all mismatches listed.
pub fn run_all(device: &Device, title: &str, cases: &[(Case, Edit)], kernel: KernelChoice) {
    println!(
        "{title} on {}, kernel {} ({} cases)",
        device.name(),
        kernel.name(),
        cases.len()
    );
    let total = Instant::now();
    let mut failures = Vec::new();
    for (n, (case, edit)) in cases.iter().enumerate() {
        match run_case(device, case, 1000 + n as u64, edit.as_ref(), kernel) {
            Ok(t) => println!("  ok   {:>7.1} ms  {}", t.as_secs_f64() * 1e3, case.label()),
            Err(e) => {
                println!("  FAIL             {}\n       {e}", case.label());
                failures.push(format!("{}: {e}", case.label()));
            }
        }
    }
    println!("{title}: {:.1} s", total.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A GPU device, or `None` after printing `SKIP <test>: <why>` (a failure when
/// QUIETATTN_REQUIRE_GPU=1).
pub fn gpu_or_skip(test: &str) -> Option<Device> {
    quietattn::testing::cuda_or_skip(test)
}
