//! Kernel outputs (`o`, `lse`) against the f64 reference with docs/contract.md §6's tolerances.

use crate::reference::ReferenceAttention;
use crate::stats::compare::Mismatch;

use super::o_error::finite_or_zero;
use crate::{AttentionOutput, DType};

/// The tolerance of output element `want` for everything but the logits' own rounding: f32
/// `2e-5·(1 + |ref|)`; f16 `2e-3` and bf16 `1.6e-2` times the row's `max|ref|`, plus half the
/// type's smallest subnormal (2⁻²⁵ for f16, 2⁻¹³⁴ for bf16): with extreme logits a row's
/// `max|ref|` can itself be below what the type holds, and the correctly rounded o element is
/// then 0. [`check_outputs`] adds the element's
/// [`ReferenceAttention::o_logit_error`]: the kernels' f32 logits carry an error that grows
/// with `|s|` (~5e-3 at `|s|` ~ 1e4), which moves o where two logits nearly tie, and no fixed
/// bound covers that ([`crate::reference::logit_error`]).
pub fn o_tolerance(dtype: DType, want: f64, row_max: f64) -> f64 {
    match dtype {
        DType::F32 => 2e-5 * (1.0 + want.abs()),
        DType::F16 => 2e-3 * row_max + 2f64.powi(-25),
        DType::BF16 => 1.6e-2 * row_max + 2f64.powi(-134),
    }
}

/// The tolerance of `lse`: like `o` for f32; for f16/bf16 1e-3 absolute, or `2e-7·|lse|` when
/// larger: lse is stored as f32 whatever the input type, and at extreme logits (|lse| ~ 1e4)
/// the f32 sums behind it resolve only ~1e-7 of its magnitude, so 1e-3 absolute would demand
/// more digits than f32 has.
pub fn lse_tolerance(dtype: DType, want: f64) -> f64 {
    match dtype {
        DType::F32 => 2e-5 * (1.0 + want.abs()),
        _ => 1e-3f64.max(2e-7 * want.abs()),
    }
}

/// The worst `|error| / tolerance` over `o` (tolerance [`o_tolerance`] plus the reference's
/// `o_logit_error`) and `lse` (≤ 1 passes), or a mismatch when a shape
/// differs, an element is out of tolerance, or a non-finite reference value is finite in the
/// kernel (±inf must match exactly, NaN needs any non-finite value).
pub fn check_outputs(
    dtype: DType,
    got: &AttentionOutput,
    want: &ReferenceAttention,
) -> Result<f64, Mismatch> {
    let o = got.o.to_f64();
    if o.len() != want.o.len() {
        return Err(Mismatch(format!(
            "o has {} elements, reference {}",
            o.len(),
            want.o.len()
        )));
    }
    let mut worst = 0.0f64;
    let d = want.problem.head_dim.max(1);
    for (r, (g, w)) in o.chunks(d).zip(want.o.chunks(d)).enumerate() {
        let row_max = w
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        for (c, (&g, &w)) in g.iter().zip(w).enumerate() {
            let tol =
                o_tolerance(dtype, w, row_max) + finite_or_zero(want.o_logit_error.get(r * d + c));
            let ratio = error_ratio(g, w, tol).ok_or_else(|| {
                Mismatch(format!(
                    "o[row {r}][{c}] = {g}, reference {w} (tol {tol:.2e})"
                ))
            })?;
            worst = worst.max(ratio);
        }
    }
    let lse = got.lse.to_f64();
    for (i, (&g, &w)) in lse.iter().zip(&want.lse).enumerate() {
        let tol = lse_tolerance(dtype, w);
        let ratio = error_ratio(g, w, tol)
            .ok_or_else(|| Mismatch(format!("lse[{i}] = {g}, reference {w} (tol {tol:.2e})")))?;
        worst = worst.max(ratio);
    }
    Ok(worst)
}

/// `|g - w| / tol` when within tolerance (0 for matching non-finite values), else `None`.
fn error_ratio(g: f64, w: f64, tol: f64) -> Option<f64> {
    if !w.is_finite() {
        let ok = if w.is_nan() {
            !g.is_finite()
        } else {
            g == w || g.is_nan()
        };
        return ok.then_some(0.0);
    }
    let err = (g - w).abs();
    if err <= tol {
        Some(if tol > 0.0 { err / tol } else { 0.0 })
    } else {
        None
    }
}
