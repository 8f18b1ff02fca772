//! What `run` does about non-finite values and the f32 range (see
//! `quietattn::problem::numerics`): a warning on stderr by default, an error with
//! `--strict-numerics`. Never silent.

use quietattn::problem::{InputNumerics, NumericsReport};
use quietattn::{Error, Result};

/// Before the launch: non-finite inputs and inputs outside the kernels' f32 range.
pub fn before_launch(scan: &InputNumerics, strict: bool) -> Result<()> {
    if scan.non_finite.total() > 0 {
        announce(
            strict,
            format!(
                "non-finite input elements (NaN/inf): {}; rows that read them will be NaN or inf",
                scan.non_finite.describe()
            ),
        )?;
    }
    if let Some(why) = scan.range_problem() {
        announce(strict, format!("{why}; results may be inf or NaN"))?;
    }
    Ok(())
}

/// After the launch: non-finite outputs from finite inputs are an overflow.
pub fn after_launch(report: &NumericsReport, strict: bool) -> Result<()> {
    if report.overflowed() {
        announce(
            strict,
            format!(
                "{} output element(s) of `o` are NaN or inf although every input was finite: \
                 f32 overflow in the kernels",
                report.non_finite_o
            ),
        )?;
    }
    Ok(())
}

fn announce(strict: bool, message: String) -> Result<()> {
    if strict {
        return Err(Error::Numeric(format!("{message} (--strict-numerics)")));
    }
    errln!("warning: {message}");
    Ok(())
}
