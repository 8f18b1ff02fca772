//! The `QaDecodeParams` the unit tests of this module start from: a batched problem with four
//! query rows per sequence, every tensor of one dtype, a sink array at a dummy address.

use crate::abi::{self, QaDecodeParams};

/// `batch` sequences, `heads` query heads over `kv_heads`, head dim `head_dim`, every tensor
/// `dtype`, normaliser `normaliser` (ABI values).
pub(super) fn decode_params(
    (batch, heads, kv_heads): (u32, u32, u32),
    head_dim: u32,
    dtype: u32,
    normaliser: u32,
) -> QaDecodeParams {
    let mut attn = abi::QaAttnParams {
        batch,
        heads,
        kv_heads,
        head_dim,
        seqlen_q: 4,
        normaliser,
        sinks: 64,
        ..Default::default()
    };
    for d in [&mut attn.q, &mut attn.k, &mut attn.v, &mut attn.o] {
        d.dtype = dtype;
    }
    QaDecodeParams {
        attn,
        ..Default::default()
    }
}
