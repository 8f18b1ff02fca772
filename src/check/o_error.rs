//! The error model of O: how far each element of a kernel family's o may be from the f64
//! reference, and the O statistics (zeros counter, log2 histogram, channel moments) that error
//! admits.
//!
//! The CUDA-core family keeps P in f32, so its o is within docs/contract.md §6's f32 summation
//! tolerance and O's values may only cross a log2 bin edge they sit within that tolerance (or 1e-4
//! relative) of. The tensor-core family rounds P to the input type (f16/bf16) before P·V, as
//! FlashAttention-2 does, so each element of its o may differ by the dtype's docs/contract.md §6 o
//! tolerance relative to its row's largest magnitude (f16 `2e-3`, bf16 `1.6e-2`), plus, for f16,
//! the weights below its smallest subnormal that round to 0: at most `keys · 2⁻²⁵ · max|v|` (bf16
//! has f32's exponent range and flushes nothing that matters). Such a value may land in any
//! bin its error reaches, or in the zeros counter when the error reaches 0, and moves its
//! channel's moments by at most `(|x| + err)^k - |x|^k`.
//!
//! Both families compute their logits in f32, which moves o by up to the reference's
//! `o_logit_error` of each element ([`crate::reference::logit_error`]: negligible for ordinary
//! logits, the dominant error at |s| ~ 1e4); [`OError::bounds_with`] adds it to the error above.
//!
//! ```
//! use quietattn::check::o_error::OError;
//! use quietattn::{DType, KernelChoice};
//!
//! // One row of d = 2: 1.0 (log2 bin 24) and 0.01, whose rounded-P error (1.6e-2) reaches 0.
//! let mut hist = vec![0u64; 40];
//! hist[24] = 1;
//! let tc = OError::new(KernelChoice::TensorCore, DType::BF16, 37, 2.0);
//! assert!(tc.bounds(&[1.0, 0.01], 0..1, 1, 2).admits(1, &hist).is_ok());
//! let cuda_core = OError::new(KernelChoice::CudaCore, DType::BF16, 37, 2.0);
//! assert!(cuda_core.bounds(&[1.0, 0.01], 0..1, 1, 2).admits(1, &hist).is_err());
//! ```

use crate::stats::compare::OBounds;
use crate::stats::log2_bin;
use crate::{DType, KernelChoice};

/// The error of one o element: `rel · max|o| of its row + floor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OError {
    /// Relative to the row's largest finite magnitude.
    pub rel: f64,
    /// Absolute, on top.
    pub floor: f64,
}

impl OError {
    /// The error of `kernel`'s o for `dtype`, `keys` keys per row at most and values of
    /// magnitude up to `v_max`: none beyond docs/contract.md §6's summation tolerance for the
    /// CUDA-core family; rounded P for the tensor-core family and for `Auto`, which may pick it.
    pub fn new(kernel: KernelChoice, dtype: DType, keys: usize, v_max: f64) -> OError {
        let (rel, floor) = match (kernel, dtype) {
            (KernelChoice::CudaCore, _) | (_, DType::F32) => (0.0, 0.0),
            (_, DType::F16) => (2e-3, keys as f64 * 2f64.powi(-25) * v_max),
            (_, DType::BF16) => (1.6e-2, 0.0),
        };
        OError { rel, floor }
    }

    /// The O statistics this error admits for `o`, the reference's `[tokens, heads, d]` o
    /// before the gate, counting the rows `tokens` (those some sequence covers).
    pub fn bounds(
        &self,
        o: &[f64],
        tokens: impl Iterator<Item = usize>,
        heads: usize,
        d: usize,
    ) -> OBounds {
        self.bounds_with(o, &[], tokens, heads, d)
    }

    /// [`Self::bounds`] with each element's error raised by its entry of `logit_error` (laid
    /// out like `o`; missing entries count as 0): the move of o that f32 logits allow
    /// ([`crate::reference::logit_error`]).
    pub fn bounds_with(
        &self,
        o: &[f64],
        logit_error: &[f64],
        tokens: impl Iterator<Item = usize>,
        heads: usize,
        d: usize,
    ) -> OBounds {
        let mut bounds = OBounds::new(crate::abi::QA_LOG2_BINS as usize);
        bounds.slack = vec![[0.0; 5]; heads * d];
        for t in tokens {
            for h in 0..heads {
                let row = &o[(t * heads + h) * d..(t * heads + h + 1) * d];
                let row_max = row
                    .iter()
                    .filter(|x| x.is_finite())
                    .fold(0.0f64, |m, x| m.max(x.abs()));
                let err = self.rel * row_max + self.floor;
                for (c, &x) in row.iter().enumerate().filter(|(_, x)| x.is_finite()) {
                    let extra = finite_or_zero(logit_error.get((t * heads + h) * d + c));
                    self.add(&mut bounds, h * d + c, x.abs(), err + extra);
                }
            }
        }
        bounds
    }

    /// One value `a = |x|` with error `err`.
    fn add(&self, bounds: &mut OBounds, channel: usize, a: f64, err: f64) {
        let slack = &mut bounds.slack[channel];
        for (k, m) in (1..).zip(slack[..4].iter_mut()) {
            *m += (a + err).powi(k) - a.powi(k);
        }
        slack[4] = slack[4].max(err);
        // docs/contract.md §6's own rule, for every family: a value within the f32 tolerance (at
        // least 1e-4 relative) of a power of two may be in either neighbouring bin.
        let tol = (2e-5 * (1.0 + a)).max(1e-4 * a);
        if err == 0.0 {
            // Zeros exactly; below the interval's lower end lies 0 or a tiny value: bin 0
            // either way.
            if a == 0.0 {
                bounds.slots.add(0, 0, 0);
                return;
            }
            let lo = if a > tol { log2_bin(a - tol) } else { 0 };
            bounds
                .slots
                .add(log2_bin(a) + 1, lo + 1, log2_bin(a + tol) + 1);
            return;
        }
        // Any bin the error (or the f32 edge rule) reaches; the zeros counter only when the
        // error itself reaches 0.
        let e = err.max(tol);
        let lo = if a > e {
            log2_bin(a - e) + 1
        } else if a > err {
            1
        } else {
            0
        };
        bounds.slots.add_span(lo, log2_bin(a + e) + 1);
    }
}

/// An optional error term, 0 where it is absent or not finite (rows of non-finite inputs).
pub(crate) fn finite_or_zero(x: Option<&f64>) -> f64 {
    x.copied().filter(|x| x.is_finite()).unwrap_or(0.0)
}
