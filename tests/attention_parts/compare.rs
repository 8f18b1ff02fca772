//! Kernel results against the f64 reference with SPEC §6's tolerances.

use quietattn::abi::{QaChannelStats, QaTensorStats};
use quietattn::reference::ReferenceAttention;
use quietattn::{AttentionOutput, DType, OutlierStats};

use super::o_expect::OExpect;
use super::row_values::HeadBins;

/// Outputs: f32 `2e-5·(1 + |ref|)` per element; f16 `2e-3` and bf16 `1.6e-2` times the row's
/// `max|ref|`; `lse` like f32 for f32 and within 1e-3 for f16/bf16. A non-finite reference
/// value must be non-finite in the kernel too.
pub fn check_outputs(
    dtype: DType,
    got: &AttentionOutput,
    want: &ReferenceAttention,
) -> Result<(), String> {
    let o = got.o.to_f64();
    if o.len() != want.o.len() {
        return Err(format!(
            "o has {} elements, reference {}",
            o.len(),
            want.o.len()
        ));
    }
    let d = want.problem.head_dim;
    for (r, (g, w)) in o.chunks(d).zip(want.o.chunks(d)).enumerate() {
        let row_max = w
            .iter()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |m, x| m.max(x.abs()));
        for (c, (&g, &w)) in g.iter().zip(w).enumerate() {
            // A value below the dtype's smallest subnormal may round to 0 (extreme logits).
            let tol = match dtype {
                DType::F32 => 2e-5 * (1.0 + w.abs()),
                DType::F16 => 2e-3 * row_max + 2f64.powi(-25),
                DType::BF16 => 1.6e-2 * row_max + 2f64.powi(-134),
            };
            if !close(g, w, tol) {
                return Err(format!(
                    "o[row {r}][{c}] = {g}, reference {w} (tol {tol:.2e})"
                ));
            }
        }
    }
    let lse = got.lse.to_f64();
    for (i, (&g, &w)) in lse.iter().zip(&want.lse).enumerate() {
        // f16/bf16: 1e-3, or the f32 lse's own resolution at extreme magnitudes (|lse| ~ 1e4).
        let tol = match dtype {
            DType::F32 => 2e-5 * (1.0 + w.abs()),
            _ => 1e-3f64.max(2e-7 * w.abs()),
        };
        if !close(g, w, tol) {
            return Err(format!("lse[{i}] = {g}, reference {w}"));
        }
    }
    Ok(())
}

fn close(g: f64, w: f64, tol: f64) -> bool {
    if !w.is_finite() {
        // ±inf must match exactly (masked lse); NaN only needs a non-finite kernel value.
        return if w.is_nan() {
            !g.is_finite()
        } else {
            g == w || g.is_nan()
        };
    }
    (g - w).abs() <= tol
}

/// The relative error of o's elements when the kernel rounds P to the input type before P·V
/// (the tensor-core family, as FlashAttention-2 does): the dtype's output tolerance of SPEC §6.
pub fn rounded_p_o_rel(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 0.0,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
    }
}

/// f32 partial sums against f64: 1e-3 relative, with an absolute floor from the magnitude of
/// the terms (Σ|x| ≤ sqrt(n·Σx²), Σ|x|³ ≤ sqrt(Σx²·Σx⁴) by Cauchy–Schwarz) for sums that cancel,
/// plus `slack`, how far errors of the elements themselves may move the sum.
fn moment_close(g: f64, w: f64, magnitude: f64, slack: f64) -> bool {
    (g - w).abs() <= 1e-3 * w.abs() + 1e-5 * magnitude + slack + 1e-30
}

/// Channel moments; `slack` per channel as [`OExpect::slack`] (none: exact elements).
fn check_channels(
    name: &str,
    got: &[QaChannelStats],
    want: &[QaChannelStats],
    slack: Option<&[[f64; 5]]>,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{name}: {} channels, reference {}",
            got.len(),
            want.len()
        ));
    }
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        let mag = (w.count as f64 * w.sum_sq).sqrt();
        let mag3 = (w.sum_sq * w.sum_4th).sqrt();
        let s = slack.and_then(|s| s.get(c)).copied().unwrap_or_default();
        let ok = g.count == w.count
            && moment_close(g.sum, w.sum, mag, s[0])
            && moment_close(g.sum_sq, w.sum_sq, 0.0, s[1])
            && moment_close(g.sum_3rd, w.sum_3rd, mag3, s[2])
            && moment_close(g.sum_4th, w.sum_4th, 0.0, s[3])
            && moment_close(f64::from(g.absmax), f64::from(w.absmax), 0.0, s[4]);
        if !ok {
            return Err(format!(
                "{name} channel {c}: kernel {g:?}\n reference {w:?}"
            ));
        }
    }
    Ok(())
}

fn check_tensor(
    name: &str,
    got: &QaTensorStats,
    want: &QaTensorStats,
    o_bins: Option<&OExpect>,
) -> Result<(), String> {
    let hist_ok = match o_bins {
        Some(o) => o.admits(&got.log2_hist, got.zeros) && o.admits(&want.log2_hist, want.zeros),
        None => got.log2_hist == want.log2_hist && got.zeros == want.zeros,
    };
    if !hist_ok || got.non_finite != want.non_finite {
        return Err(format!(
            "{name} tensor stats: kernel {got:?}\n reference {want:?}"
        ));
    }
    Ok(())
}

/// Counters exactly; moments within 1e-3; histograms exactly up to values on a bin edge; O's
/// moments and histogram as `o` admits.
pub fn check_stats(
    got: &OutlierStats,
    want: &OutlierStats,
    heads: &[HeadBins],
    o: &OExpect,
) -> Result<(), String> {
    for (h, ((g, w), bins)) in got.heads.iter().zip(&want.heads).zip(heads).enumerate() {
        let mass_ok = |a: f64, b: f64| {
            (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-3 * b.abs() + 1e-5 * w.rows as f64
        };
        let hists = [
            (
                "max_prob",
                &g.max_prob_hist,
                &w.max_prob_hist,
                &bins.max_prob,
            ),
            ("entropy", &g.entropy_hist, &w.entropy_hist, &bins.entropy),
            (
                "logit_range",
                &g.logit_range_hist,
                &w.logit_range_hist,
                &bins.logit_range,
            ),
        ];
        if g.rows != w.rows
            || !mass_ok(g.first_key_mass, w.first_key_mass)
            || !mass_ok(g.virtual_sink_mass, w.virtual_sink_mass)
        {
            return Err(format!("head {h}: kernel {g:?}\n reference {w:?}"));
        }
        for (name, gh, wh, b) in hists {
            if !b.admits(gh) || !b.admits(wh) {
                return Err(format!(
                    "head {h} {name}: kernel {gh:?}, reference {wh:?}, exact {:?} + edges {:?}",
                    b.fixed, b.edge
                ));
            }
        }
    }
    let names = ["q", "k", "v", "o"];
    for (t, name) in names.into_iter().enumerate() {
        let slack = (t == 3).then_some(&o.slack[..]);
        check_channels(name, &got.channels[t], &want.channels[t], slack)?;
        check_tensor(
            name,
            &got.tensors[t],
            &want.tensors[t],
            (t == 3).then_some(o),
        )?;
    }
    Ok(())
}
