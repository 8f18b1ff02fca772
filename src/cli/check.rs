//! `quietattn check`: the correctness suite for users who installed only the binary. Runs the
//! covering matrix of `quietattn::check` on every kernel family of the device against the f64
//! reference and prints one row per case.

use clap::Args;
use quietattn::check::{CaseResult, Verdict, matrix, run_suite};
use quietattn::{DeviceKind, Error, Result};

use super::table::{Table, num};

/// Arguments of `quietattn check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Where to run: auto (GPU, else emulator, else reference), cuda, emulator or reference.
    #[arg(long, default_value = "auto", value_parser = super::parse_device)]
    device: DeviceKind,
}

/// Runs the suite; a mismatch is `Error::CheckFailed` (exit 1 without errors, 2 with).
pub fn check(args: &CheckArgs) -> Result<()> {
    let device = super::open_device(args.device)?;
    let cases = matrix::all_cases();
    outln!(
        "quietattn check on {}: {} cases per kernel family, against the f64 reference with the \
         docs/contract.md §6 tolerances",
        device.name(),
        cases.len()
    );
    if device.kind() == DeviceKind::Reference {
        outln!("note: the reference device runs no kernels; this only checks the suite itself");
    }
    let results = run_suite(&device, &cases);
    outln!("{}", table(&results).render());
    let mismatches = count(&results, |v| matches!(v, Verdict::Mismatch(_)));
    let errors = count(&results, |v| matches!(v, Verdict::Error(_)));
    let skipped = count(&results, |v| matches!(v, Verdict::Skipped(_)));
    for r in results.iter().filter(|r| r.verdict.failed()) {
        let (Verdict::Mismatch(why) | Verdict::Error(why)) = &r.verdict else {
            continue;
        };
        outln!("FAIL {} {}\n     {why}", r.family.name(), r.label);
    }
    let total = results.len();
    outln!(
        "{} of {total} passed, {mismatches} mismatch(es), {errors} error(s), {skipped} skipped \
         (a family that does not serve the case)",
        total - mismatches - errors - skipped
    );
    if mismatches + errors > 0 {
        return Err(Error::CheckFailed {
            mismatches,
            errors,
            total,
        });
    }
    Ok(())
}

fn count(results: &[CaseResult], f: impl Fn(&Verdict) -> bool) -> usize {
    results.iter().filter(|r| f(&r.verdict)).count()
}

fn table(results: &[CaseResult]) -> Table {
    let mut t = Table::new(&["family", "case", "err/tol", "stats", "ms", "result"], 2);
    for r in results {
        t.row(vec![
            r.family.name().into(),
            r.label.clone(),
            num(r.max_error),
            match r.stats_ok {
                None => "-".into(),
                Some(true) => "ok".into(),
                Some(false) => "FAIL".into(),
            },
            num(Some(r.time.as_secs_f64() * 1e3)),
            match r.verdict {
                Verdict::Pass => "ok",
                Verdict::Mismatch(_) => "MISMATCH",
                Verdict::Error(_) => "ERROR",
                Verdict::Skipped(_) => "skipped",
            }
            .into(),
        ]);
    }
    t
}
