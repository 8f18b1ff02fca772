//! The one device allocation holding an attention launch's statistics (docs/contract.md §5):
//! `QaHeadStats[heads]`, then `QaChannelStats` of Q, K, V, O, then `QaTensorStats[4]`.

use std::mem::size_of;

use crate::abi::{QaAttnStatsPtrs, QaChannelStats, QaHeadStats, QaTensorStats};
use crate::error::{Error, Result};
use crate::stats::OutlierStats;

/// Byte offsets of the parts of the statistics buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsLayout {
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    channels: [usize; 4],
    tensors: usize,
    /// Total bytes.
    pub bytes: usize,
}

impl StatsLayout {
    /// The layout for `heads` query heads, `kv_heads` kv heads of dimension `head_dim`.
    pub fn new(heads: usize, kv_heads: usize, head_dim: usize) -> Self {
        let ch = size_of::<QaChannelStats>();
        let per_tensor = [heads, kv_heads, kv_heads, heads].map(|h| h * head_dim * ch);
        let mut at = heads * size_of::<QaHeadStats>();
        let mut channels = [0; 4];
        for (slot, len) in channels.iter_mut().zip(per_tensor) {
            *slot = at;
            at += len;
        }
        let tensors = at;
        StatsLayout {
            heads,
            kv_heads,
            head_dim,
            channels,
            tensors,
            bytes: tensors + 4 * size_of::<QaTensorStats>(),
        }
    }

    /// The kernel's pointers into a buffer at device address `base`.
    pub fn pointers(&self, base: u64) -> QaAttnStatsPtrs {
        QaAttnStatsPtrs {
            heads: base,
            channels: self.channels.map(|off| base + off as u64),
            tensors: base + self.tensors as u64,
        }
    }

    /// Parses the downloaded buffer.
    pub fn parse(&self, bytes: &[u8]) -> Result<OutlierStats> {
        if bytes.len() != self.bytes {
            return Err(Error::Shape(format!(
                "statistics buffer has {} bytes, expected {}",
                bytes.len(),
                self.bytes
            )));
        }
        let mut out = OutlierStats::zeroed(self.heads, self.kv_heads, self.head_dim);
        read_into(&bytes[..self.channels[0]], &mut out.heads);
        for (t, channels) in out.channels.iter_mut().enumerate() {
            let start = self.channels[t];
            read_into(
                &bytes[start..start + channels.len() * size_of::<QaChannelStats>()],
                channels,
            );
        }
        read_into(&bytes[self.tensors..], &mut out.tensors);
        Ok(out)
    }
}

/// Plain-data ABI counters: integers and floats only, every bit pattern valid.
trait Counters: Copy {}
impl Counters for QaHeadStats {}
impl Counters for QaChannelStats {}
impl Counters for QaTensorStats {}

/// Copies `dst.len()` structs out of `src` (exactly that many bytes).
fn read_into<T: Counters>(src: &[u8], dst: &mut [T]) {
    let n = std::mem::size_of_val(dst).min(src.len());
    // SAFETY: T is a repr(C) struct of integers and floats (Counters), for which every byte
    // pattern is a valid value; `n` bytes fit in both the source and the destination.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_and_8_byte_aligned() {
        let l = StatsLayout::new(4, 2, 64);
        let p = l.pointers(4096);
        assert_eq!(p.heads, 4096);
        assert_eq!(p.channels[1] - p.channels[0], 4 * 64 * 48);
        assert_eq!(p.channels[2] - p.channels[1], 2 * 64 * 48);
        assert_eq!(p.tensors - p.channels[3], 4 * 64 * 48);
        assert_eq!(l.bytes as u64 - (p.tensors - 4096), 4 * 336);
        for a in [p.heads, p.tensors].into_iter().chain(p.channels) {
            assert_eq!(a % 8, 0);
        }
    }

    #[test]
    fn parse_round_trips_counters() {
        let l = StatsLayout::new(2, 1, 8);
        let mut bytes = vec![0u8; l.bytes];
        // rows of head 1 (u64 at the start of the second QaHeadStats)
        bytes[size_of::<QaHeadStats>()..][..8].copy_from_slice(&7u64.to_le_bytes());
        // zeros of tensor O (after 40 log2 bins)
        let o = l.tensors + 3 * size_of::<QaTensorStats>() + 40 * 8;
        bytes[o..o + 8].copy_from_slice(&5u64.to_le_bytes());
        let s = l.parse(&bytes).unwrap();
        assert_eq!(s.heads[1].rows, 7);
        assert_eq!(s.tensors[3].zeros, 5);
        assert_eq!(s.channels[1].len(), 8);
    }
}
