//! Shared machinery of the attention kernel tests: the cases, inputs and comparisons are the
//! library's (`quietattn::check`, `quietattn::stats::compare`), so the tests and `quietattn
//! check` judge kernels by one rule.

pub use quietattn::check::case as cases;
pub use quietattn::check::matrix::Edit;

use quietattn::Device;
use quietattn::check::case::Case;
use quietattn::check::{CaseResult, Verdict, run_suite};

/// Runs every case on every kernel family of `device`, prints the matrix with timings, fails
/// with all mismatches listed, and returns the results (skipped cases included: a family that
/// does not serve a case).
pub fn run_all(device: &Device, title: &str, cases: &[(Case, Edit)]) -> Vec<CaseResult> {
    println!("{title} on {} ({} cases)", device.name(), cases.len());
    let results = run_suite(device, cases);
    let mut failures = Vec::new();
    for r in &results {
        let ms = r.time.as_secs_f64() * 1e3;
        match &r.verdict {
            Verdict::Pass => println!("  ok   {ms:>7.1} ms  {} {}", r.family.name(), r.label),
            Verdict::Skipped(why) => {
                println!("  skip             {} {}: {why}", r.family.name(), r.label)
            }
            Verdict::Mismatch(e) | Verdict::Error(e) => {
                println!(
                    "  FAIL             {} {}\n       {e}",
                    r.family.name(),
                    r.label
                );
                failures.push(format!("{} {}: {e}", r.family.name(), r.label));
            }
        }
    }
    let total: f64 = results.iter().map(|r| r.time.as_secs_f64()).sum();
    println!("{title}: {total:.1} s in kernels");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    results
}

/// A GPU device, or `None` after printing `SKIP <test>: <why>` (a failure when
/// QUIETATTN_REQUIRE_GPU=1).
pub fn gpu_or_skip(test: &str) -> Option<Device> {
    quietattn::testing::cuda_or_skip(test)
}
