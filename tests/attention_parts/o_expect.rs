//! What the kernel's O statistics may be, given the reference's o before the gate. Each element
//! of the kernel's o may differ from the reference by `rel · max|o|` of its row: 0 for the
//! CUDA-core family (P stays f32; SPEC §6's summation tolerance and 1e-4 bin edges only), the
//! dtype's output tolerance for the tensor-core family (P is rounded to f16/bf16 before P·V, as
//! in FlashAttention-2, so o is only as exact as SPEC §6's o tolerance), plus an absolute
//! `floor` for weights that P's type flushes to zero. A value within its error of 0 may be
//! counted as a zero.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use quietattn::stats::log2_bin;

/// The log2 bins each O value may land in, and how far each channel's moments may move.
pub struct OExpect {
    /// Per finite value: the lowest and highest slot it may land in (slot 0: the zeros
    /// counter, slot b + 1: log2 bin b).
    ranges: Vec<(usize, usize)>,
    /// Per channel (`head · d + c`): the allowed change of Σx, Σx², Σx³, Σx⁴ and absmax.
    pub slack: Vec<[f64; 5]>,
}

impl OExpect {
    /// `o` is the reference's `[tokens, heads, d]` o before the gate; `tokens` the rows a
    /// sequence covers (only those are counted); `rel` the elements' error relative to their
    /// row's largest magnitude, `floor` an absolute error on top.
    pub fn new(
        o: &[f64],
        tokens: impl Iterator<Item = usize>,
        heads: usize,
        d: usize,
        (rel, floor): (f64, f64),
    ) -> Self {
        let mut ranges = Vec::new();
        let mut slack = vec![[0.0; 5]; heads * d];
        for t in tokens {
            for h in 0..heads {
                let row = &o[(t * heads + h) * d..(t * heads + h + 1) * d];
                let finite = row.iter().filter(|x| x.is_finite());
                let err = rel * finite.fold(0.0f64, |m, x| m.max(x.abs())) + floor;
                for (c, &x) in row.iter().enumerate() {
                    if !x.is_finite() {
                        continue;
                    }
                    let s = &mut slack[h * d + c];
                    let a = x.abs();
                    for (k, m) in (1..).zip(s[..4].iter_mut()) {
                        *m += (a + err).powi(k) - a.powi(k);
                    }
                    s[4] = s[4].max(err);
                    // SPEC §6: a value within 1e-4 of a bin edge may take the neighbour.
                    let e = err.max(1e-4 * a);
                    let lo = if a - e > 0.0 { log2_bin(a - e) + 1 } else { 0 };
                    let hi = if a + e > 0.0 { log2_bin(a + e) + 1 } else { 0 };
                    ranges.push((lo, hi));
                }
            }
        }
        OExpect { ranges, slack }
    }

    /// Whether the log2 histogram `hist` and zeros counter are one way of placing every value
    /// in one of its slots: slots left to right, each takes the pending values whose range
    /// ends first.
    pub fn admits(&self, hist: &[u64], zeros: u64) -> bool {
        let got: Vec<u64> = std::iter::once(zeros).chain(hist.iter().copied()).collect();
        let mut by_lo = self.ranges.clone();
        by_lo.sort_unstable();
        let mut next = 0;
        let mut open = BinaryHeap::new();
        for (b, &count) in got.iter().enumerate() {
            while next < by_lo.len() && by_lo[next].0 <= b {
                open.push(Reverse(by_lo[next].1));
                next += 1;
            }
            for _ in 0..count {
                match open.pop() {
                    Some(Reverse(hi)) if hi >= b => {}
                    _ => return false,
                }
            }
            if open.peek().is_some_and(|Reverse(hi)| *hi <= b) {
                return false; // a value whose last possible bin is b was left out
            }
        }
        next == by_lo.len() && open.is_empty()
    }
}
