//! Shared machinery of the attention kernel tests: cases, inputs, comparison with the reference.

pub mod cases;
pub mod compare;
pub mod row_values;

use std::time::{Duration, Instant};

use quietattn::{AttentionOptions, Device, Gate, reference};

use cases::{Case, CaseData};
use compare::{check_outputs, check_stats};
use row_values::{head_bins, o_log2_bins};

/// Changes a case's inputs after generation (non-finite values, ...).
pub type Edit = Box<dyn Fn(&mut CaseData)>;

/// Runs one case on `device` and compares it with the reference; returns the kernel's time.
pub fn run_case(
    device: &Device,
    case: &Case,
    seed: u64,
    edit: &dyn Fn(&mut CaseData),
) -> Result<Duration, String> {
    let mut data = CaseData::new(case, seed);
    edit(&mut data);
    let inputs = data.inputs();
    let options = case.options();
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
        let (h, d) = (problem.heads, problem.head_dim);
        let covered = problem.seqs.iter().enumerate().flat_map(|(b, s)| {
            let first = if problem.varlen {
                s.q_start
            } else {
                b * problem.max_q
            };
            (first * h * d..(first + s.q_len) * h * d).map(|i| o[i])
        });
        let o_bins = o_log2_bins(covered);
        check_stats(
            stats,
            &want.stats,
            &head_bins(&inputs, &options, problem),
            &o_bins,
        )?;
    } else if got.stats.is_some() {
        return Err("statistics returned although not requested".into());
    }
    Ok(elapsed)
}

/// Runs every case, prints the matrix with timings, and fails with all mismatches listed.
pub fn run_all(device: &Device, title: &str, cases: &[(Case, Edit)]) {
    println!("{title} on {} ({} cases)", device.name(), cases.len());
    let total = Instant::now();
    let mut failures = Vec::new();
    for (n, (case, edit)) in cases.iter().enumerate() {
        match run_case(device, case, 1000 + n as u64, edit.as_ref()) {
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
