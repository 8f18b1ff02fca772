//! The one builder of a decode launch's parameters: the attention part (from the shared
//! `params::build`) plus the page geometry and the device addresses of the block table and
//! `seq_lens_k`. The host path, the device path and the bench all fill `QaDecodeParams` here.

use crate::abi::{QaAttnParams, QaDecodeParams};
use crate::error::{Error, Result};
use crate::problem::PagedCache;

/// Decode parameters for `attn` against `cache`, the table `[batch, max_pages]` i32 at
/// `block_table` and `seq_lens_k` i32 `[batch]`, both device addresses. With varlen queries
/// (`attn.cu_seqlens_q` set) `total_q` is the row count of q/o (the kernels keep each
/// sequence's offsets within it); batched it is ignored. The launch fields (`errors`,
/// `partials`, `splits`, `chunk`, `pass`) are left for [`super::decode_launches`].
pub(crate) fn paged_params(
    attn: QaAttnParams,
    cache: &PagedCache,
    max_pages: usize,
    block_table: u64,
    seq_lens_k: u64,
) -> Result<QaDecodeParams> {
    Ok(QaDecodeParams {
        attn,
        block_table,
        seq_lens_k,
        table_stride: i64::try_from(max_pages)
            .map_err(|_| Error::Overflow("block table width".into()))?,
        max_pages: to_u32(max_pages)?,
        num_pages: to_u32(cache.num_pages)?,
        log2_page: cache.page_size.trailing_zeros(),
        ..Default::default()
    })
}

fn to_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Overflow(format!("{n} exceeds u32")))
}
