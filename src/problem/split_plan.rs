//! How a decode launch cuts each sequence's keys into split-KV chunks, and the scratch the
//! chunks' partials need (docs/decode.md). Pure functions of the problem's bounds and the SM
//! count, so an engine can size its workspace once, at start-up, and never allocate per call.
//!
//! The rule is a first, unmeasured heuristic (FlashInfer and FlashDecoding use the same shape of
//! rule): enough blocks for two waves, chunks no shorter than [`MIN_CHUNK_KEYS`], chunk starts
//! on page and key-tile boundaries.

use std::ops::Range;

use crate::error::{Error, Result};

/// Keys below which splitting a sequence further costs more in the combine than it gains.
pub const MIN_CHUNK_KEYS: usize = 256;
/// Keys per tile of the decode kernels; chunk lengths are a multiple of it.
pub const KEY_TILE: usize = 64;
/// Blocks per SM the split count aims for (two waves).
pub const BLOCKS_PER_SM: usize = 2;
/// f32 scalars of one row's partial with statistics, after its `head_dim` accumulators: `m, l`,
/// then the row-statistics pieces `A = Σw`, `B = Σw ln w` (entropy), the chunk's visible keys
/// `n`, `Σ(x − xmax)` (logit range), the first key's logit `x0` (−∞ unless the chunk holds
/// key 0) and the largest logit `xmax`, logits in log2 units. The kernels' layout
/// (`partial_slot` in `kernels/decode/paged.cuh`, written in `kernels/decode/chunk_parts.cuh`,
/// merged in `kernels/decode/combine.cuh`); docs/contract.md §7.
pub const PARTIAL_SCALARS: usize = 8;
/// f32 scalars of one row's partial without statistics, after its accumulators: `m, l` (with
/// absolute weights `l = 0`, and `m` is 0 for sigmoid and the row's `lse` in clipped softmax's
/// second pass).
pub const PARTIAL_SCALARS_NO_STATS: usize = 2;
/// Bytes of the record in which a kernel reports the first bad device-side index
/// ([`crate::abi::QaErrorRecord`], read with [`crate::ops::ErrorRecord`]).
pub const ERROR_RECORD_BYTES: usize = std::mem::size_of::<crate::abi::QaErrorRecord>();

/// The split of one decode launch: `splits` chunks of `chunk` keys per sequence (the last one
/// shorter, chunks past a sequence's end empty).
///
/// ```
/// use quietattn::problem::SplitPlan;
///
/// # fn main() -> quietattn::Result<()> {
/// // One sequence of 128k keys, 8 kv heads, 132 SMs: 33 chunks of 4032 keys.
/// let plan = SplitPlan::new(1, 8, 131072, 16, 132)?;
/// assert_eq!((plan.splits, plan.chunk), (33, 4032));
/// assert_eq!(plan.chunk_range(32, 0..131072), 129024..131072);
/// // 64 sequences × 8 kv heads already fill the GPU twice: no split.
/// assert_eq!(SplitPlan::new(64, 8, 131072, 16, 132)?.splits, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    /// Chunks per sequence (1 = no split, no combine).
    pub splits: usize,
    /// Keys per chunk: a multiple of the page size and of [`KEY_TILE`] when `splits > 1`.
    pub chunk: usize,
}

impl SplitPlan {
    /// The plan for `batch` sequences of at most `max_seqlen_k` visible keys, `kv_heads` kv
    /// heads, pages of `page_size` keys, on a GPU with `sm_count` SMs.
    pub fn new(
        batch: usize,
        kv_heads: usize,
        max_seqlen_k: usize,
        page_size: usize,
        sm_count: usize,
    ) -> Result<Self> {
        if !page_size.is_power_of_two() {
            return Err(Error::InvalidOption(format!(
                "split plan needs a power-of-two page size, got {page_size}"
            )));
        }
        let want = max_splits(batch, kv_heads, max_seqlen_k, sm_count)?;
        if want <= 1 {
            return Ok(SplitPlan {
                splits: 1,
                chunk: max_seqlen_k,
            });
        }
        let align = page_size.max(KEY_TILE);
        let chunk = max_seqlen_k.div_ceil(want).div_ceil(align) * align;
        Ok(SplitPlan {
            splits: max_seqlen_k.div_ceil(chunk),
            chunk,
        })
    }

    /// Chunk `c` of a sequence whose visible keys are `keys` (a window clips the range before
    /// the split, so keys outside it are never read); empty past the range's end.
    pub fn chunk_range(&self, c: usize, keys: Range<usize>) -> Range<usize> {
        let start = keys
            .start
            .saturating_add(c.saturating_mul(self.chunk))
            .min(keys.end);
        start..start.saturating_add(self.chunk).min(keys.end)
    }

    /// Bytes of the partials of one launch: `splits · batch · heads · q_len` rows of `head_dim`
    /// f32 accumulators plus their scalars; 0 without a split (the chunk kernel writes `o`).
    pub fn partial_bytes(
        &self,
        batch: usize,
        heads: usize,
        q_len: usize,
        head_dim: usize,
        stats: bool,
    ) -> usize {
        if self.splits <= 1 {
            return 0;
        }
        let scalars = if stats {
            PARTIAL_SCALARS
        } else {
            PARTIAL_SCALARS_NO_STATS
        };
        [self.splits, batch, heads, q_len, head_dim + scalars, 4]
            .iter()
            .fold(1usize, |a, &n| a.saturating_mul(n))
    }
}

/// The split count [`SplitPlan::new`] aims for before aligning chunks: enough blocks for
/// [`BLOCKS_PER_SM`] waves, no chunk below [`MIN_CHUNK_KEYS`]. Non-decreasing in
/// `max_seqlen_k`, and every plan's `splits` is at most this (aligned chunks are only longer),
/// so it bounds the partials of every key length up to `max_seqlen_k`.
pub fn max_splits(
    batch: usize,
    kv_heads: usize,
    max_seqlen_k: usize,
    sm_count: usize,
) -> Result<usize> {
    if batch == 0 || kv_heads == 0 || sm_count == 0 {
        return Err(Error::InvalidOption(format!(
            "split plan needs batch, kv heads and SMs > 0, got batch {batch}, kv heads \
             {kv_heads}, SMs {sm_count}"
        )));
    }
    let target = sm_count.saturating_mul(BLOCKS_PER_SM);
    let blocks = batch.saturating_mul(kv_heads);
    if blocks >= target || max_seqlen_k <= MIN_CHUNK_KEYS {
        return Ok(1);
    }
    Ok(target
        .div_ceil(blocks)
        .min(max_seqlen_k.div_ceil(MIN_CHUNK_KEYS)))
}

/// The largest shapes an engine will run, for [`workspace_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeBounds {
    /// Largest batch.
    pub max_batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Largest query rows per sequence (1–16).
    pub max_seqlen_q: usize,
    /// Largest key length.
    pub max_seqlen_k: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Page size of the cache.
    pub page_size: usize,
    /// Whether statistics may be requested.
    pub stats: bool,
}

/// The workspace every decode launch within `bounds` fits in, on a GPU with `sm_count` SMs:
/// the largest partials any batch size up to `max_batch` and any key length up to
/// `max_seqlen_k` can plan (through [`max_splits`]) plus the error record. The engine asks once.
///
/// ```
/// use quietattn::problem::{DecodeBounds, workspace_bytes};
///
/// # fn main() -> quietattn::Result<()> {
/// let bounds = DecodeBounds {
///     max_batch: 256, heads: 64, kv_heads: 8, max_seqlen_q: 1, max_seqlen_k: 131072,
///     head_dim: 128, page_size: 16, stats: true,
/// };
/// let bytes = workspace_bytes(&bounds, 132)?;
/// assert!(bytes > 0 && bytes < 4 << 20); // a few MB, whatever the batch
/// # Ok(())
/// # }
/// ```
pub fn workspace_bytes(bounds: &DecodeBounds, sm_count: usize) -> Result<usize> {
    let mut most = 0;
    for batch in 1..=bounds.max_batch {
        let splits = max_splits(batch, bounds.kv_heads, bounds.max_seqlen_k, sm_count)?;
        // A plan with at most `splits` chunks; the chunk length does not change the bytes.
        let plan = SplitPlan { splits, chunk: 0 };
        let need = plan.partial_bytes(
            batch,
            bounds.heads,
            bounds.max_seqlen_q,
            bounds.head_dim,
            bounds.stats,
        );
        most = most.max(need);
    }
    Ok(most.saturating_add(ERROR_RECORD_BYTES))
}
