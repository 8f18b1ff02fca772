//! The write side of a paged KV cache (vLLM's `reshape_and_cache`): this step's K/V rows are
//! scattered into cache slots, `slot = page · page_size + offset`. This is the host reference a
//! device kernel for the same job is compared with; every index is checked before anything is
//! written, so a bad call leaves the caches untouched.

use crate::error::{Error, Result, shape_err};
use crate::problem::{BlockTable, PagedCache, TensorLayout};
use crate::tensor::{Tensor, TensorView};

/// The slot-mapping value that skips a token (vLLM's convention for padding).
pub const SKIP_SLOT: i64 = -1;

/// Writes token `t` of `k`/`v` (`[tokens, hkv, d]`, the caches' dtype, any strides) into slot
/// `slot_mapping[t]` of `k_cache`/`v_cache` (`[num_pages, page_size, hkv, d]`, contiguous);
/// [`SKIP_SLOT`] skips the token. Errors, before any write: layouts that do not match, a slot
/// outside the cache or below −1, two tokens writing one slot.
///
/// ```
/// use quietattn::{DType, Tensor};
/// use quietattn::reference::append_kv;
///
/// # fn main() -> quietattn::Result<()> {
/// let mut k_cache = Tensor::zeros(DType::F32, &[2, 16, 1, 2])?;
/// let mut v_cache = Tensor::zeros(DType::F32, &[2, 16, 1, 2])?;
/// let k = Tensor::from_f64(DType::F32, &[1.0, 2.0, 3.0, 4.0], &[2, 1, 2])?;
/// let v = Tensor::from_f64(DType::F32, &[5.0, 6.0, 7.0, 8.0], &[2, 1, 2])?;
/// // Token 0 goes to page 1, offset 3; token 1 is padding.
/// append_kv(&mut k_cache, &mut v_cache, &k.view(), &v.view(), &[16 + 3, -1])?;
/// assert_eq!(k_cache.view().at(&[1, 3, 0, 1]), 2.0);
/// assert_eq!(v_cache.view().at(&[1, 3, 0, 0]), 5.0);
/// assert!(append_kv(&mut k_cache, &mut v_cache, &k.view(), &v.view(), &[32, -1]).is_err());
/// # Ok(())
/// # }
/// ```
pub fn append_kv(
    k_cache: &mut Tensor,
    v_cache: &mut Tensor,
    k: &TensorView<'_>,
    v: &TensorView<'_>,
    slot_mapping: &[i64],
) -> Result<()> {
    let cache = check_append(k_cache, v_cache, k, v, slot_mapping.len())?;
    let slots = check_slots(&cache, slot_mapping)?;
    let row = cache.kv_heads * cache.head_dim;
    for (t, slot) in slots.into_iter().enumerate() {
        if let Some(slot) = slot {
            copy_row(k, t, k_cache, slot * row);
            copy_row(v, t, v_cache, slot * row);
        }
    }
    Ok(())
}

/// The slots of tokens given as `(sequence, position)` through a block table: position `p` of
/// sequence `b` is slot `block_table[b, p / page_size] · page_size + p % page_size`.
///
/// ```
/// use quietattn::{BlockTable, DType, Tensor};
/// use quietattn::problem::{PagedCache, TensorLayout};
/// use quietattn::reference::slot_mapping;
///
/// # fn main() -> quietattn::Result<()> {
/// let layout = TensorLayout::of_view(&Tensor::zeros(DType::F16, &[8, 16, 2, 64])?.view());
/// let cache = PagedCache::new(&layout, &layout)?;
/// let table = BlockTable::new(&[5, 2, 7, -1], 2, 2)?;
/// // A decode step: sequence 0 appends its key 17, sequence 1 its key 0.
/// assert_eq!(slot_mapping(&table, &cache, &[(0, 17), (1, 0)])?, vec![2 * 16 + 1, 7 * 16]);
/// assert!(slot_mapping(&table, &cache, &[(1, 16)]).is_err()); // the -1 entry
/// # Ok(())
/// # }
/// ```
pub fn slot_mapping(
    table: &BlockTable<'_>,
    cache: &PagedCache,
    tokens: &[(usize, usize)],
) -> Result<Vec<i64>> {
    tokens
        .iter()
        .map(|&(b, pos)| {
            let column = pos / cache.page_size;
            if b >= table.batch() || column >= table.max_pages() {
                return Err(Error::Index(format!(
                    "position {pos} of sequence {b} is outside the block table ({} × {} pages)",
                    table.batch(),
                    table.max_pages()
                )));
            }
            let page = table.row(b).map_or(-1, |row| row[column]);
            if page < 0 || page as usize >= cache.num_pages {
                return Err(Error::Index(format!(
                    "block_table[{b}, {column}] = {page} is not a page of the cache (0..{})",
                    cache.num_pages
                )));
            }
            Ok((page as usize * cache.page_size + pos % cache.page_size) as i64)
        })
        .collect()
}

/// The cache layouts of an append, and `k` / `v` as `n` rows `[n, kv_heads, dim]` of the
/// cache's dtype: the checks the reference and the device append share.
pub(crate) fn check_append(
    k_cache: &Tensor,
    v_cache: &Tensor,
    k: &TensorView<'_>,
    v: &TensorView<'_>,
    n: usize,
) -> Result<PagedCache> {
    let cache = PagedCache::new(
        &TensorLayout::of_view(&k_cache.view()),
        &TensorLayout::of_view(&v_cache.view()),
    )?;
    check_rows(&cache, k, v, n)?;
    Ok(cache)
}

/// `k` and `v` are `[tokens, hkv, d]` rows of the cache's dtype, one per slot-mapping entry.
fn check_rows(cache: &PagedCache, k: &TensorView<'_>, v: &TensorView<'_>, n: usize) -> Result<()> {
    let want = [n, cache.kv_heads, cache.head_dim];
    for (name, t) in [("k", k), ("v", v)] {
        if t.shape != want {
            return Err(shape_err!(
                "{name} has shape {:?}, expected [tokens, kv_heads, dim] = {want:?} \
                 (one token per slot-mapping entry)",
                t.shape
            ));
        }
        if t.dtype() != cache.dtype {
            return Err(Error::Unsupported(format!(
                "{name} is {} but the cache is {}",
                t.dtype(),
                cache.dtype
            )));
        }
    }
    Ok(())
}

/// Each token's slot (`None` = skip), after checking range and uniqueness.
fn check_slots(cache: &PagedCache, slot_mapping: &[i64]) -> Result<Vec<Option<usize>>> {
    let capacity = cache.num_pages * cache.page_size;
    let mut writer = std::collections::HashMap::new();
    slot_mapping
        .iter()
        .enumerate()
        .map(|(t, &slot)| {
            if slot == SKIP_SLOT {
                return Ok(None);
            }
            let s = usize::try_from(slot)
                .ok()
                .filter(|&s| s < capacity)
                .ok_or_else(|| {
                    Error::Index(format!(
                        "slot_mapping[{t}] = {slot} is outside the cache's {capacity} slots \
                         (-1 skips a token)"
                    ))
                })?;
            if let Some(first) = writer.insert(s, t) {
                return Err(Error::Index(format!(
                    "tokens {first} and {t} both write slot {s}"
                )));
            }
            Ok(Some(s))
        })
        .collect()
}

/// Copies token `t` of `src` (`[tokens, hkv, d]`) into the contiguous `dst` from element `at`,
/// byte for byte (same dtype, so exact).
fn copy_row(src: &TensorView<'_>, t: usize, dst: &mut Tensor, at: usize) {
    let size = src.dtype().size();
    let bytes = src.data.as_bytes();
    let out = dst.data.as_bytes_mut();
    let (heads, dim) = (src.shape[1], src.shape[2]);
    for h in 0..heads {
        for c in 0..dim {
            let from = src.offset + t * src.strides[0] + h * src.strides[1] + c * src.strides[2];
            let to = at + h * dim + c;
            out[to * size..(to + 1) * size].copy_from_slice(&bytes[from * size..(from + 1) * size]);
        }
    }
}
