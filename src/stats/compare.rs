//! What the statistics promise, as code: the comparisons every test and `quietattn check` use.
//!
//! - **Counters** (`rows`, `count`, `zeros`, `non_finite`, histogram totals) and `absmax` are
//!   exact and bit-reproducible: integer atomics and a maximum do not depend on order.
//! - **Float sums** (channel moments, `first_key_mass`, `virtual_sink_mass`) are f32 per thread
//!   and block, merged into f64 globals by atomics in whatever order threads and blocks finish,
//!   so two runs may differ in the last bits. They reproduce within [`REPRODUCIBLE_REL`] of `M`,
//!   a bound on the sum of the terms' magnitudes ([`magnitudes`]), and match the f64 reference
//!   within docs/contract.md §6's 1e-3 relative ([`REFERENCE_REL`]) plus 1e-5 of that magnitude
//!   ([`REFERENCE_MAGNITUDE_REL`], for sums that cancel).
//! - **Histogram bins** of values the kernel computes (row statistics, O) follow
//!   docs/contract.md §6: a value within the tolerance of a bin edge may land in the
//!   neighbouring bin, never further
//!   ([`HistogramBounds`]); O's values may carry a family's own error on top (the tensor-core
//!   family rounds P before P·V), which [`OBounds`] admits, zeros counter and moments included
//!   (`crate::check::o_error`). Bins of the inputs (Q, K, V as read) are exact. A given device,
//!   shape and kernel bins the same values the same way on every run: outputs and histograms
//!   are bit-reproducible there; only the float sums above are not.
//!
//! ```
//! use quietattn::stats::compare::HistogramBounds;
//!
//! // Two values: one certainly in bin 1, one on the edge between bins 2 and 3.
//! let mut bounds = HistogramBounds::new(4);
//! bounds.add(1, 1, 1);
//! bounds.add(2, 2, 3);
//! assert!(bounds.admits(&[0, 1, 1, 0]).is_ok());
//! assert!(bounds.admits(&[0, 1, 0, 1]).is_ok()); // the edge value in the neighbouring bin
//! assert!(bounds.admits(&[1, 0, 1, 0]).is_err()); // the certain value moved
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::abi::{QaChannelStats, QaHeadStats, QaTensorStats};
use crate::stats::{OutlierStats, TENSOR_NAMES};

/// Run-to-run bound on float sums, relative to [`magnitudes`]: a block merges at most 128 f32
/// partials per counter with shared-memory atomics, and two orders of k f32 additions differ by
/// at most `2(k-1)·2⁻²⁴` of the summed magnitudes (1.5e-5 for k = 128); the f64 merge of block
/// totals adds ~1e-16 per block.
pub const REPRODUCIBLE_REL: f64 = 3e-5;

/// Kernel against the f64 reference (docs/contract.md §6): float sums within 1e-3 relative.
pub const REFERENCE_REL: f64 = 1e-3;

/// Floor of the reference comparison, relative to [`magnitudes`]: sums that cancel (Σx, Σx³)
/// keep the f32 rounding of their terms.
pub const REFERENCE_MAGNITUDE_REL: f64 = 1e-5;

/// A comparison that failed: what differed, with both values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

fn fail<T>(what: String) -> Result<T, Mismatch> {
    Err(Mismatch(what))
}

/// Bounds on `Σ|terms|` of a channel's sums `[Σx, Σx², Σx³, Σx⁴]`, from the channel itself:
/// the even sums are their own; `Σ|x| ≤ √(n·Σx²)` and `Σ|x|³ ≤ √(Σx²·Σx⁴)` (Cauchy–Schwarz).
pub fn magnitudes(c: &QaChannelStats) -> [f64; 4] {
    [
        (c.count as f64 * c.sum_sq.abs()).sqrt(),
        c.sum_sq.abs(),
        (c.sum_sq.abs() * c.sum_4th.abs()).sqrt(),
        c.sum_4th.abs(),
    ]
}

/// Whether `got` is within `rel·want + floor·magnitude` of `want` (NaN matches NaN).
pub fn sum_close(got: f64, want: f64, rel: f64, floor: f64, magnitude: f64) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    (got - want).abs() <= rel * want.abs() + floor * magnitude + 1e-300
}

/// [`sum_close`] with an absolute allowance `abs` on top of `rel·want`.
fn slack_close(got: f64, want: f64, rel: f64, abs: f64) -> bool {
    sum_close(got, want, rel, abs, 1.0)
}

/// Admissible placements of values in a histogram: each value has its own bin and may have
/// been counted in any bin of a range within one of it (the neighbouring-bin rule).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramBounds {
    bins: usize,
    /// (lowest, highest) admissible bin → number of values.
    spans: BTreeMap<(usize, usize), u64>,
}

impl HistogramBounds {
    /// No values yet, `bins` bins.
    pub fn new(bins: usize) -> Self {
        HistogramBounds {
            bins,
            spans: BTreeMap::new(),
        }
    }

    /// A value whose own bin is `own` and whose tolerance interval reaches bins `lo..=hi`
    /// (the histogram's bin function at the interval's ends); clamped to `own ± 1`.
    pub fn add(&mut self, own: usize, lo: usize, hi: usize) {
        let last = self.bins.saturating_sub(1);
        let own = own.min(last);
        let lo = lo.clamp(own.saturating_sub(1), own);
        let hi = hi.clamp(own, (own + 1).min(last));
        *self.spans.entry((lo, hi)).or_insert(0) += 1;
    }

    /// A value that may have been counted in any bin of `lo..=hi`, however wide (a value whose
    /// error spans several bins, see [`OBounds`]); clamped to the histogram.
    pub fn add_span(&mut self, lo: usize, hi: usize) {
        let last = self.bins.saturating_sub(1);
        let hi = hi.min(last);
        let lo = lo.min(hi);
        *self.spans.entry((lo, hi)).or_insert(0) += 1;
    }

    /// Whether `got` is one placement of the values: left to right, bin `b` takes its count
    /// from the values that may be there, those whose range ends first before the others
    /// (earliest deadline first decides interval placement exactly); a value whose range has
    /// passed, or a bin with too few candidates, is a mismatch.
    pub fn admits(&self, got: &[u64]) -> Result<(), Mismatch> {
        if got.len() != self.bins {
            return fail(format!("{} bins, expected {}", got.len(), self.bins));
        }
        let mut pool: BTreeMap<usize, u64> = BTreeMap::new();
        for (b, &count) in got.iter().enumerate() {
            for (&(_, hi), &n) in self.spans.range((b, 0)..(b + 1, 0)) {
                *pool.entry(hi).or_insert(0) += n;
            }
            let mut need = count;
            while need > 0 {
                let Some(mut first) = pool.first_entry() else {
                    return fail(format!("bin {b} holds {count}: too many (placed {got:?})"));
                };
                let take = need.min(*first.get());
                *first.get_mut() -= take;
                need -= take;
                if *first.get() == 0 {
                    first.remove();
                }
            }
            if let Some((&hi, &n)) = pool.first_key_value() {
                if hi <= b {
                    return fail(format!("{n} value(s) missing by bin {b} (counts {got:?})"));
                }
            }
        }
        Ok(())
    }
}

/// The admissible row histograms of one head (docs/contract.md §5 order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadBounds {
    /// Rows by max weight.
    pub max_prob: HistogramBounds,
    /// Rows by normalised entropy.
    pub entropy: HistogramBounds,
    /// Rows by logit range.
    pub logit_range: HistogramBounds,
}

/// The admissible O statistics: where each finite O value may be counted, and how far each
/// channel's moments may move with the errors of its elements. O is the one tensor whose values
/// the kernel computes with an error of its own (the tensor-core family rounds P before P·V),
/// so its zeros counter and log2 histogram are judged together: a value within its error of 0
/// may be counted as a zero.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OBounds {
    /// Slot 0: the zeros counter; slot `b + 1`: log2 bin `b`.
    pub slots: HistogramBounds,
    /// Per channel (`head · d + c`): how far Σx, Σx², Σx³, Σx⁴ and absmax may move beyond
    /// docs/contract.md §6's summation tolerance (empty: not at all).
    pub slack: Vec<[f64; 5]>,
}

impl OBounds {
    /// No values yet: `log2_bins` log2 bins plus the zeros slot.
    pub fn new(log2_bins: usize) -> Self {
        OBounds {
            slots: HistogramBounds::new(log2_bins + 1),
            slack: Vec::new(),
        }
    }

    /// Whether the kernel's zeros counter and log2 histogram place every value admissibly.
    pub fn admits(&self, zeros: u64, log2_hist: &[u64]) -> Result<(), Mismatch> {
        let got: Vec<u64> = std::iter::once(zeros)
            .chain(log2_hist.iter().copied())
            .collect();
        self.slots.admits(&got)
    }
}

fn check_heads(
    got: &[QaHeadStats],
    want: &[QaHeadStats],
    bounds: &[HeadBounds],
) -> Result<(), Mismatch> {
    if got.len() != want.len() || bounds.len() != want.len() {
        return fail(format!("{} heads, reference {}", got.len(), want.len()));
    }
    for (h, ((g, w), b)) in got.iter().zip(want).zip(bounds).enumerate() {
        let floor = REFERENCE_MAGNITUDE_REL * w.rows as f64;
        let mass = |a, b| sum_close(a, b, REFERENCE_REL, floor, 1.0);
        if g.rows != w.rows
            || !mass(g.first_key_mass, w.first_key_mass)
            || !mass(g.virtual_sink_mass, w.virtual_sink_mass)
        {
            return fail(format!("head {h}: kernel {g:?}\n reference {w:?}"));
        }
        let hists = [
            ("max_prob", &g.max_prob_hist, &b.max_prob),
            ("entropy", &g.entropy_hist, &b.entropy),
            ("logit_range", &g.logit_range_hist, &b.logit_range),
        ];
        for (name, hist, bound) in hists {
            bound
                .admits(hist)
                .map_err(|e| Mismatch(format!("head {h} {name}: {e}")))?;
        }
    }
    Ok(())
}

/// Channel moments: counts exactly, sums within `rel` plus `floor` of their magnitudes.
fn check_channels(
    name: &str,
    got: &[QaChannelStats],
    want: &[QaChannelStats],
    rel: f64,
    floor: f64,
    slack: &[[f64; 5]],
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return fail(format!(
            "{name}: {} channels, expected {}",
            got.len(),
            want.len()
        ));
    }
    for (c, (g, w)) in got.iter().zip(want).enumerate() {
        let mag = magnitudes(w);
        let s = slack.get(c).copied().unwrap_or_default();
        let sums = [
            (g.sum, w.sum),
            (g.sum_sq, w.sum_sq),
            (g.sum_3rd, w.sum_3rd),
            (g.sum_4th, w.sum_4th),
        ];
        let sums_ok = sums
            .iter()
            .zip(mag)
            .zip(s)
            .all(|((&(a, b), m), s)| slack_close(a, b, rel, floor * m + s));
        let amax_ok = slack_close(f64::from(g.absmax), f64::from(w.absmax), rel, s[4]);
        if g.count != w.count || !sums_ok || !amax_ok {
            return fail(format!("{name} channel {c}: got {g:?}\n expected {w:?}"));
        }
    }
    Ok(())
}

fn check_counters(name: &str, got: &QaTensorStats, want: &QaTensorStats) -> Result<(), Mismatch> {
    if got.zeros != want.zeros || got.non_finite != want.non_finite {
        return fail(format!(
            "{name} tensor counters: got {got:?}\n expected {want:?}"
        ));
    }
    Ok(())
}

/// Kernel statistics against the f64 reference's (docs/contract.md §6): counters exactly, sums
/// within [`REFERENCE_REL`], row histograms within `heads`, the log2 histograms of Q, K, V exactly;
/// O's zeros counter, log2 histogram and moments as `o` admits.
pub fn check_against_reference(
    got: &OutlierStats,
    want: &OutlierStats,
    heads: &[HeadBounds],
    o: &OBounds,
) -> Result<(), Mismatch> {
    check_heads(&got.heads, &want.heads, heads)?;
    for (t, name) in TENSOR_NAMES.into_iter().enumerate() {
        let (g, w) = (&got.tensors[t], &want.tensors[t]);
        let slack: &[[f64; 5]] = if t == 3 { &o.slack } else { &[] };
        check_channels(
            name,
            &got.channels[t],
            &want.channels[t],
            REFERENCE_REL,
            REFERENCE_MAGNITUDE_REL,
            slack,
        )?;
        if t == 3 {
            if g.non_finite != w.non_finite {
                return fail(format!("o non_finite: got {g:?}\n expected {w:?}"));
            }
            o.admits(g.zeros, &g.log2_hist).map_err(|e| {
                Mismatch(format!(
                    "o zeros (slot 0) + log2 histogram (slot b + 1): {e}"
                ))
            })?;
            continue;
        }
        check_counters(name, g, w)?;
        if g.log2_hist != w.log2_hist {
            return fail(format!(
                "{name} log2 histogram: {:?}\n expected {:?}",
                g.log2_hist, w.log2_hist
            ));
        }
    }
    Ok(())
}

/// Two kernel runs over the same inputs (or one buffer against the sum of others): counters,
/// histograms and absmax exactly, float sums within [`REPRODUCIBLE_REL`] of their magnitudes.
pub fn check_reproducible(got: &OutlierStats, want: &OutlierStats) -> Result<(), Mismatch> {
    if got.heads.len() != want.heads.len() {
        return fail(format!(
            "{} heads, expected {}",
            got.heads.len(),
            want.heads.len()
        ));
    }
    for (h, (g, w)) in got.heads.iter().zip(&want.heads).enumerate() {
        let mass = |a, b: f64| sum_close(a, b, REPRODUCIBLE_REL, 0.0, 0.0);
        let same = g.rows == w.rows
            && g.max_prob_hist == w.max_prob_hist
            && g.entropy_hist == w.entropy_hist
            && g.logit_range_hist == w.logit_range_hist;
        if !same
            || !mass(g.first_key_mass, w.first_key_mass)
            || !mass(g.virtual_sink_mass, w.virtual_sink_mass)
        {
            return fail(format!("head {h}: got {g:?}\n expected {w:?}"));
        }
    }
    for (t, name) in TENSOR_NAMES.into_iter().enumerate() {
        let (g, w) = (&got.channels[t], &want.channels[t]);
        check_channels(name, g, w, 0.0, REPRODUCIBLE_REL, &[])?;
        if got.tensors[t] != want.tensors[t] {
            return fail(format!(
                "{name} tensor counters: got {:?}\n expected {:?}",
                got.tensors[t], want.tensors[t]
            ));
        }
    }
    Ok(())
}

#[cfg(all(test, feature = "check"))]
#[path = "compare_tests.rs"]
mod tests;
