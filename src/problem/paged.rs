//! The paged KV-cache problem of docs/contract.md §7, validated in one place: cache layouts, page
//! size, block table, per-sequence key lengths. Everything an ordinary attention call also has (q,
//! dtypes, heads, sinks, gate, options) goes through the shared validator of `layout.rs`, on
//! the contiguous problem the pages stand for: key `j` of sequence `b` is
//! `cache[block_table[b, j / page_size], j % page_size]`.

use super::layout::{self, AttentionGeometry, AttentionLayout, SeqLens, TensorLayout};
use super::{MAX_LEN, Sequence, check_sink_values};
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::tensor::{TensorView, contiguous_strides};
use crate::variant::AttentionOptions;

/// Smallest page size: FlashInfer's and vLLM's kernels stage at least 16 keys per page.
pub const MIN_PAGE_SIZE: usize = 16;

/// `[batch, max_pages]` i32 page indices, row-major: row `b` lists sequence `b`'s pages in
/// key order. Entries past the pages a sequence's length needs are never read.
///
/// ```
/// use quietattn::BlockTable;
///
/// # fn main() -> quietattn::Result<()> {
/// let table = BlockTable::new(&[4, 0, -1, 2, 3, 1], 2, 3)?;
/// assert_eq!(table.row(1), Some(&[2, 3, 1][..]));
/// assert_eq!(table.row(2), None);
/// assert!(BlockTable::new(&[4, 0, -1], 2, 3).is_err()); // too short for 2 × 3
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockTable<'a> {
    entries: &'a [i32],
    batch: usize,
    max_pages: usize,
}

impl<'a> BlockTable<'a> {
    /// A table of `batch` rows of `max_pages` entries each; `entries` must hold exactly that many.
    pub fn new(entries: &'a [i32], batch: usize, max_pages: usize) -> Result<Self> {
        let want = batch
            .checked_mul(max_pages)
            .ok_or_else(|| Error::Overflow(format!("block table {batch} × {max_pages}")))?;
        if entries.len() != want {
            return Err(shape_err!(
                "block table has {} entries, expected batch {batch} × max_pages {max_pages} = {want}",
                entries.len()
            ));
        }
        Ok(BlockTable {
            entries,
            batch,
            max_pages,
        })
    }

    /// Sequences (rows).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Entries per row.
    pub fn max_pages(&self) -> usize {
        self.max_pages
    }

    /// Row `b`, `None` past the last row.
    pub fn row(&self, b: usize) -> Option<&'a [i32]> {
        if b >= self.batch {
            return None;
        }
        self.entries
            .get(b * self.max_pages..(b + 1) * self.max_pages)
    }

    /// All entries, row-major.
    pub fn entries(&self) -> &'a [i32] {
        self.entries
    }
}

/// The tensors of one attention call against a paged KV cache.
///
/// `q` `[b, sq, h, d]` (or `[total_q, h, d]` with `cu_seqlens_q`), `k_cache`/`v_cache`
/// `[num_pages, page_size, hkv, d]` (any strides, contiguous head dimension), `block_table`
/// `[b, max_pages]`, `seq_lens_k [b]`. Masks use `kv_len = seq_lens_k[b]`; causal is aligned
/// bottom-right, so with the step's own keys already in the cache the last query row sees every
/// key. Sinks and gate are as in [`super::AttentionInputs`]. Any `sq` is valid here (chunked
/// prefill against pages is the same math); the decode kernels will serve `sq` 1–16.
#[derive(Clone, Debug)]
pub struct PagedAttentionInputs<'a> {
    /// Queries.
    pub q: TensorView<'a>,
    /// Key pages.
    pub k_cache: TensorView<'a>,
    /// Value pages (same shape as `k_cache`).
    pub v_cache: TensorView<'a>,
    /// Each sequence's pages.
    pub block_table: BlockTable<'a>,
    /// Keys per sequence, i32 `[b]`.
    pub seq_lens_k: &'a [i32],
    /// Per-head sink logits, f32 `[h]`.
    pub sinks: Option<&'a [f32]>,
    /// Gate logits, shaped like an ordinary call's.
    pub gate: Option<TensorView<'a>>,
    /// Varlen query offsets, `batch + 1` entries.
    pub cu_seqlens_q: Option<&'a [i32]>,
}

impl<'a> PagedAttentionInputs<'a> {
    /// Batched queries without sinks or gate.
    pub fn new(
        q: TensorView<'a>,
        k_cache: TensorView<'a>,
        v_cache: TensorView<'a>,
        block_table: BlockTable<'a>,
        seq_lens_k: &'a [i32],
    ) -> Self {
        PagedAttentionInputs {
            q,
            k_cache,
            v_cache,
            block_table,
            seq_lens_k,
            sinks: None,
            gate: None,
            cu_seqlens_q: None,
        }
    }
}

/// The dimensions of a paged cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagedCache {
    /// Pages in the cache.
    pub num_pages: usize,
    /// Keys per page (a power of two ≥ [`MIN_PAGE_SIZE`]).
    pub page_size: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Element type.
    pub dtype: DType,
}

impl PagedCache {
    /// Checks the K and V cache layouts alone (no data): rank 4, equal shapes and dtypes, a
    /// contiguous head dimension, a page size that is a power of two ≥ 16 and page indices that
    /// fit i32. Device-memory callers get the same checks from the same function.
    pub fn new(k: &TensorLayout, v: &TensorLayout) -> Result<Self> {
        for (name, t) in [("k_cache", k), ("v_cache", v)] {
            if t.shape.len() != 4 || t.strides.len() != 4 {
                return Err(shape_err!(
                    "{name} must be [num_pages, page_size, kv_heads, dim], got shape {:?}",
                    t.shape
                ));
            }
            if !t.last_contiguous() {
                return Err(shape_err!(
                    "{name}: the head dimension must be contiguous, got strides {:?}",
                    t.strides
                ));
            }
        }
        if k.shape != v.shape {
            return Err(shape_err!(
                "k_cache {:?} and v_cache {:?} must have the same shape",
                k.shape,
                v.shape
            ));
        }
        if k.dtype != v.dtype {
            return Err(Error::Unsupported(format!(
                "k_cache ({}) and v_cache ({}) must share one dtype",
                k.dtype, v.dtype
            )));
        }
        let (num_pages, page_size) = (k.shape[0], k.shape[1]);
        if !page_size.is_power_of_two() || page_size < MIN_PAGE_SIZE {
            return Err(shape_err!(
                "page size {page_size} must be a power of two >= {MIN_PAGE_SIZE}"
            ));
        }
        if num_pages > MAX_LEN {
            return Err(Error::Overflow(format!(
                "{num_pages} pages do not fit i32 page indices"
            )));
        }
        Ok(PagedCache {
            num_pages,
            page_size,
            kv_heads: k.shape[2],
            head_dim: k.shape[3],
            dtype: k.dtype,
        })
    }
}

impl PagedCache {
    /// The layout of K (or V) gathered out of the pages into a contiguous `[lead.., hkv, d]`
    /// tensor: what the shared validator checks a paged call as.
    pub(crate) fn gathered(&self, lead: &[usize]) -> TensorLayout {
        let shape = [lead, &[self.kv_heads, self.head_dim]].concat();
        TensorLayout {
            dtype: self.dtype,
            strides: contiguous_strides(&shape),
            shape,
        }
    }
}

/// A validated paged attention call.
#[derive(Clone, Debug, PartialEq)]
pub struct PagedProblem {
    /// The dimensions of the equivalent contiguous call (`max_seqlen_k` the longest `seq_lens_k`).
    pub geometry: AttentionGeometry,
    /// The cache.
    pub cache: PagedCache,
    /// Columns of the block table.
    pub max_pages: usize,
    /// Per sequence: its query rows, and its keys numbered as if gathered into one contiguous
    /// `[total_k, hkv, d]` tensor (`k_start` = the keys of the sequences before it).
    pub seqs: Vec<Sequence>,
    /// Keys of all sequences.
    pub total_k: usize,
}

impl PagedProblem {
    /// Validates the inputs with the options (see the module docs for what is checked where).
    ///
    /// ```
    /// use quietattn::{AttentionOptions, BlockTable, DType, Error, PagedAttentionInputs, Tensor};
    /// use quietattn::problem::PagedProblem;
    ///
    /// # fn main() -> quietattn::Result<()> {
    /// let q = Tensor::zeros(DType::F16, &[2, 1, 8, 64])?; // 2 sequences, one new token each
    /// let cache = Tensor::zeros(DType::F16, &[5, 16, 2, 64])?; // 5 pages of 16 keys
    /// let table = [3, 0, 4, -1]; // sequence 0: pages 3, 0; sequence 1: page 4 (then unused)
    /// let lens = [20, 16];
    /// let inputs = PagedAttentionInputs::new(
    ///     q.view(), cache.view(), cache.view(), BlockTable::new(&table, 2, 2)?, &lens);
    /// let problem = PagedProblem::new(&inputs, &AttentionOptions::default())?;
    /// assert_eq!((problem.total_k, problem.geometry.max_seqlen_k), (36, 20));
    ///
    /// let too_long = [20, 17]; // would read the -1 entry
    /// let bad = PagedAttentionInputs { seq_lens_k: &too_long, ..inputs };
    /// assert!(matches!(PagedProblem::new(&bad, &AttentionOptions::default()), Err(Error::Index(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(inputs: &PagedAttentionInputs<'_>, options: &AttentionOptions) -> Result<Self> {
        let k = TensorLayout::of_view(&inputs.k_cache);
        let v = TensorLayout::of_view(&inputs.v_cache);
        let cache = PagedCache::new(&k, &v)?;
        let lens = key_lengths(inputs, &cache)?;
        let total_k = lens.iter().try_fold(0usize, |a, &n| {
            a.checked_add(n).filter(|&t| t <= MAX_LEN).ok_or_else(|| {
                Error::Overflow(format!("the sequences hold more than {MAX_LEN} keys"))
            })
        })?;
        let cu_k = cumulative(&lens);
        let shared = contiguous_layout(inputs, &cache, &cu_k)?;
        let (geometry, mut seqs) = layout::resolve(&shared, options)?;
        check_sink_values(options, inputs.sinks)?;
        for (i, (seq, &n)) in seqs.iter_mut().zip(&lens).enumerate() {
            seq.k_start = cu_k[i] as usize;
            seq.k_len = n;
        }
        Ok(PagedProblem {
            geometry,
            cache,
            max_pages: inputs.block_table.max_pages(),
            seqs,
            total_k,
        })
    }

    /// Page and slot of key `j` of sequence `b` in `table` (the table [`Self::new`] validated):
    /// `None` when the table has no such entry or it is not a page of the cache.
    pub fn locate(&self, table: &BlockTable<'_>, b: usize, j: usize) -> Option<(usize, usize)> {
        let entry = *table.row(b)?.get(j / self.cache.page_size)?;
        let page = usize::try_from(entry)
            .ok()
            .filter(|&p| p < self.cache.num_pages)?;
        Some((page, j % self.cache.page_size))
    }
}

/// The layout of the contiguous call the pages stand for: the queries, sinks and gate as given,
/// K and V as if gathered (`[b, max_seqlen_k, hkv, d]`, or `[total_k, hkv, d]` with varlen
/// queries).
fn contiguous_layout<'a>(
    inputs: &PagedAttentionInputs<'a>,
    cache: &PagedCache,
    cu_k: &'a [i32],
) -> Result<AttentionLayout<'a>> {
    let batch = cu_k.len() - 1;
    let lens = cu_k.windows(2).map(|w| (w[1] - w[0]) as usize);
    let (seqlens, lead) = match inputs.cu_seqlens_q {
        Some(cu_q) if cu_q.len() != cu_k.len() => {
            return Err(shape_err!(
                "cu_seqlens_q has {} entries, expected batch + 1 = {} (one row per block-table row)",
                cu_q.len(),
                cu_k.len()
            ));
        }
        Some(cu_q) => (SeqLens::Varlen { cu_q, cu_k }, vec![cu_k[batch] as usize]),
        None => (SeqLens::Batched, vec![batch, lens.max().unwrap_or(0)]),
    };
    Ok(AttentionLayout {
        q: TensorLayout::of_view(&inputs.q),
        k: cache.gathered(&lead),
        v: cache.gathered(&lead),
        sinks: inputs.sinks.map(<[f32]>::len),
        gate: inputs.gate.as_ref().map(TensorLayout::of_view),
        seqlens,
    })
}

/// `seq_lens_k` as lengths, after checking each against the block table and the cache: a
/// length is ≥ 0, needs no more pages than a table row has, and every page it reads exists.
fn key_lengths(inputs: &PagedAttentionInputs<'_>, cache: &PagedCache) -> Result<Vec<usize>> {
    let table = &inputs.block_table;
    if inputs.seq_lens_k.len() != table.batch() {
        return Err(shape_err!(
            "seq_lens_k has {} entries but the block table has {} rows",
            inputs.seq_lens_k.len(),
            table.batch()
        ));
    }
    let mapped = table.max_pages() * cache.page_size;
    let mut lens = Vec::with_capacity(table.batch());
    for (b, &len) in inputs.seq_lens_k.iter().enumerate() {
        let n =
            usize::try_from(len).map_err(|_| shape_err!("seq_lens_k[{b}] = {len} is negative"))?;
        if n > mapped {
            return Err(Error::Index(format!(
                "seq_lens_k[{b}] = {n} is beyond the cache the block table maps \
                 ({} pages × {} keys = {mapped})",
                table.max_pages(),
                cache.page_size
            )));
        }
        let pages = n.div_ceil(cache.page_size);
        let row = table.row(b).unwrap_or_default();
        if let Some((p, &page)) = row[..pages.min(row.len())]
            .iter()
            .enumerate()
            .find(|&(_, &page)| page < 0 || page as usize >= cache.num_pages)
        {
            return Err(Error::Index(format!(
                "block_table[{b}, {p}] = {page} is not a page of the cache (0..{})",
                cache.num_pages
            )));
        }
        lens.push(n);
    }
    Ok(lens)
}

/// `[0, n₀, n₀+n₁, …]` as i32 (the caller checked that the total fits).
fn cumulative(lens: &[usize]) -> Vec<i32> {
    let mut cu = Vec::with_capacity(lens.len() + 1);
    cu.push(0);
    let mut total = 0;
    for &n in lens {
        total += n as i32;
        cu.push(total);
    }
    cu
}
