//! One chunk of a row's visible keys: what a split-KV block sees.

use crate::error::{Result, shape_err};

/// A contiguous run of a row's visible keys, as one split-KV block processes it: the keys'
/// positions in the sequence, their logits (after scale and softcap) and their value rows.
///
/// ```
/// use quietattn::reference::split::Chunk;
///
/// # fn main() -> quietattn::Result<()> {
/// // Keys 0 and 1 of a sequence, head dimension 2.
/// let chunk = Chunk::new(&[0, 1], &[0.5, -1.0], &[1.0, 0.0, 0.0, 1.0], 2)?;
/// assert_eq!(chunk.len(), 2);
/// assert_eq!(chunk.logits(), &[0.5, -1.0]);
/// assert!(Chunk::new(&[0], &[0.5, 1.0], &[1.0, 0.0], 2).is_err()); // lengths disagree
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    keys: &'a [usize],
    logits: &'a [f64],
    values: &'a [f64],
    dim: usize,
}

impl<'a> Chunk<'a> {
    /// `keys[j]` is the sequence position of key `j` (position 0 carries the first-key mass),
    /// `logits[j]` its logit, `values[j·dim..(j+1)·dim]` its value row.
    pub fn new(
        keys: &'a [usize],
        logits: &'a [f64],
        values: &'a [f64],
        dim: usize,
    ) -> Result<Self> {
        if keys.len() != logits.len() || values.len() != keys.len().saturating_mul(dim) {
            return Err(shape_err!(
                "chunk: {} keys, {} logits and {} value elements (dim {dim}) do not match",
                keys.len(),
                logits.len(),
                values.len()
            ));
        }
        Ok(Chunk {
            keys,
            logits,
            values,
            dim,
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the chunk holds no key (a split may produce empty chunks).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Head dimension of the value rows.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The logits.
    pub fn logits(&self) -> &'a [f64] {
        self.logits
    }

    /// Value row `j` (`j < len`: the partials iterate over the chunk's own keys).
    pub(super) fn value(&self, j: usize) -> &'a [f64] {
        &self.values[j * self.dim..(j + 1) * self.dim]
    }

    /// Index (within the chunk) of the sequence's first key, when this chunk holds it.
    pub fn first_key(&self) -> Option<usize> {
        self.keys.iter().position(|&k| k == 0)
    }
}

/// The pieces of the logit-range statistic `max_j s_j − mean_j s_j`: they merge by max, sum, sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogitRange {
    /// Visible keys.
    pub keys: usize,
    /// `Σ s_j`.
    pub sum: f64,
    /// `max s_j` (−∞ for no key).
    pub max: f64,
}

impl LogitRange {
    /// The pieces of one chunk.
    pub fn of(logits: &[f64]) -> Self {
        LogitRange {
            keys: logits.len(),
            sum: logits.iter().sum(),
            max: logits.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Merges any number of chunks' pieces (order does not matter).
    pub fn merge(parts: impl Iterator<Item = LogitRange>) -> Self {
        parts.fold(LogitRange::of(&[]), |a, b| LogitRange {
            keys: a.keys + b.keys,
            sum: a.sum + b.sum,
            max: a.max.max(b.max),
        })
    }

    /// `max − mean` (only meaningful with at least one key).
    pub fn range(&self) -> f64 {
        self.max - self.sum / self.keys as f64
    }
}

/// Adds `w·v` into `acc`.
pub(super) fn axpy(acc: &mut [f64], w: f64, v: &[f64]) {
    for (a, &x) in acc.iter_mut().zip(v) {
        *a += w * x;
    }
}

/// `Σ_c scale_c·acc_c` over the chunks' accumulators.
pub(super) fn rescaled_sum<'p>(
    dim: usize,
    parts: impl Iterator<Item = (f64, &'p [f64])>,
) -> Vec<f64> {
    let mut acc = vec![0.0; dim];
    for (scale, a) in parts {
        axpy(&mut acc, scale, a);
    }
    acc
}
