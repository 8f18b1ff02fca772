//! The decode chunk-kernel families: CUDA cores (`kernels/decode/`: sm_75+, f32/f16/bf16, head
//! dims up to 256) and tensor cores (`kernels/decode_tc/`: sm_80+, f16/bf16, head dims up to 128). Both take `QaDecodeParams` on grid
//! `(splits, kv heads, batch)` and write the same partials, so the combine of `kernels/decode/`
//! serves both. [`choose`] resolves a [`KernelChoice`] like prefill's family choice: `Auto`
//! takes the tensor-core chunk where it serves the call, a pinned family that cannot is an
//! error saying why.

use crate::abi::QaDecodeParams;
use crate::error::Result;
use crate::launch::KernelRef;
use crate::ops::attention::check_head_dim;
use crate::ops::attention::family::{serves, wants_stats};
use crate::registry::{self, FamilyRow};
use crate::variant::KernelChoice;

/// A decode chunk-kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeFamily {
    /// `kernels/decode/`: f32 tiles in shared memory, FMA loops.
    CudaCore,
    /// `kernels/decode_tc/`: mma.sync, ldmatrix and a cp.async pipeline over the pages.
    TensorCore,
}

/// The chunk kernel of a call and its dynamic shared memory, and the combine it pairs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeKernels {
    /// The chunk kernel.
    pub chunk: KernelRef,
    /// Its dynamic shared memory in bytes.
    pub chunk_smem: u32,
    /// The combine (always `kernels/decode/`'s: the partials are the same).
    pub combine: KernelRef,
}

/// The family serving `params` under `choice` on a device of compute capability `cc`.
pub fn choose(
    choice: KernelChoice,
    params: &QaDecodeParams,
    cc: (u32, u32),
) -> Result<DecodeFamily> {
    crate::ops::choose::choose(choice, &PREFERENCE, DecodeFamily::name, |f| {
        f.supports(params, cc).map(drop)
    })
}

/// The families `Auto` tries, in order of preference.
const PREFERENCE: [DecodeFamily; 2] = [DecodeFamily::TensorCore, DecodeFamily::CudaCore];

/// Dynamic shared memory of the tensor-core chunk at bound `d` (`kernels/decode_tc/traits.cuh`:
/// 16 query rows and two stages of 64-key K and V tiles in 16-byte chunks, rows padded to whole
/// swizzle groups of 8 chunks; then, with statistics, the channel scratch of 4 tensors × 6
/// words per channel). At most 80 KiB (d128 with statistics): within the per-block limit of
/// every sm_80+ part.
pub fn tensor_core_smem(d: u32, stats: bool) -> u32 {
    let stride = (d / 8).div_ceil(8) * 8;
    let tiles = (16 + 2 * 2 * 64) * stride * 16;
    tiles + if stats { 6 * 4 * d * 4 } else { 0 }
}

impl DecodeFamily {
    /// The name users pin it by (`cuda-core`, `tensor-core`).
    pub fn name(self) -> &'static str {
        match self {
            DecodeFamily::CudaCore => "cuda-core",
            DecodeFamily::TensorCore => "tensor-core",
        }
    }

    /// Its registry row (`src/registry/table.rs`).
    pub fn row(self) -> &'static FamilyRow {
        registry::family(match self {
            DecodeFamily::CudaCore => "decode",
            DecodeFamily::TensorCore => "decode_tc",
        })
    }

    /// `Ok(d)`, the head-dim bound whose chunk kernel serves `params` on compute capability
    /// `cc` (the head dim zero-padded to it), else an [`Error::Unsupported`](crate::Error::Unsupported) saying why.
    pub fn supports(self, params: &QaDecodeParams, cc: (u32, u32)) -> Result<u32> {
        let p = &params.attn;
        check_head_dim(p.head_dim as usize)?;
        let who = format!("decode {}", self.name());
        serves(self.row(), &who, p.q.dtype, p.head_dim, cc)
    }

    /// The kernels serving `params` on compute capability `cc` (names only; nothing is loaded).
    pub fn kernels(self, params: &QaDecodeParams, cc: (u32, u32)) -> Result<DecodeKernels> {
        let p = &params.attn;
        let d = self.supports(params, cc)?;
        let stats = wants_stats(p);
        let combine_row = DecodeFamily::CudaCore.row();
        let combine = KernelRef {
            module: combine_row.module(p.normaliser)?,
            name: combine_row.kernel_name(p.normaliser, p.q.dtype, d, stats)? + "_combine",
        };
        let row = self.row();
        let chunk = KernelRef {
            module: row.module(p.normaliser)?,
            name: row.kernel_name(p.normaliser, p.q.dtype, d, stats)?,
        };
        let chunk_smem = match self {
            DecodeFamily::CudaCore => 0,
            DecodeFamily::TensorCore => tensor_core_smem(d, stats),
        };
        Ok(DecodeKernels {
            chunk,
            chunk_smem,
            combine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_params::decode_params;
    use super::*;
    use crate::abi;

    fn params(dtype: u32, head_dim: u32) -> QaDecodeParams {
        decode_params(
            (1, 4, 1),
            head_dim,
            dtype,
            abi::QaNormaliser_QA_NORM_SOFTMAX,
        )
    }

    #[test]
    fn auto_takes_tensor_cores_where_they_serve_and_falls_back() {
        let bf16 = params(abi::QaDtype_QA_DTYPE_BF16, 128);
        let f32 = params(abi::QaDtype_QA_DTYPE_F32, 128);
        let auto = KernelChoice::Auto;
        assert_eq!(
            choose(auto, &bf16, (9, 0)).unwrap(),
            DecodeFamily::TensorCore
        );
        assert_eq!(choose(auto, &bf16, (7, 5)).unwrap(), DecodeFamily::CudaCore);
        assert_eq!(choose(auto, &f32, (9, 0)).unwrap(), DecodeFamily::CudaCore);
        // above d128 the CUDA-core chunk serves every call; pinning tensor cores says why
        let wide = params(abi::QaDtype_QA_DTYPE_F16, 256);
        assert_eq!(choose(auto, &wide, (9, 0)).unwrap(), DecodeFamily::CudaCore);
        let e = choose(KernelChoice::TensorCore, &wide, (9, 0)).unwrap_err();
        assert!(e.to_string().contains("above 128"), "{e}");
        let padded = params(abi::QaDtype_QA_DTYPE_F16, 72);
        assert_eq!(
            choose(auto, &padded, (8, 0)).unwrap(),
            DecodeFamily::TensorCore
        );
    }

    #[test]
    fn a_pinned_family_that_cannot_serve_says_why() {
        let f32 = params(abi::QaDtype_QA_DTYPE_F32, 64);
        let e = choose(KernelChoice::TensorCore, &f32, (9, 0)).unwrap_err();
        assert!(e.to_string().contains("f16 or bf16"), "{e}");
        let bf16 = params(abi::QaDtype_QA_DTYPE_BF16, 64);
        let e = choose(KernelChoice::TensorCore, &bf16, (7, 5)).unwrap_err();
        assert!(e.to_string().contains("compute capability 8.0"), "{e}");
        let e = choose(KernelChoice::CudaCore, &bf16, (7, 0)).unwrap_err();
        assert!(e.to_string().contains("7.5"), "{e}");
        assert_eq!(
            choose(KernelChoice::CudaCore, &bf16, (9, 0)).unwrap(),
            DecodeFamily::CudaCore
        );
    }

    #[test]
    fn tensor_core_kernels_pad_the_head_dim_and_share_the_combine() {
        let p = params(abi::QaDtype_QA_DTYPE_BF16, 96);
        let k = DecodeFamily::TensorCore.kernels(&p, (9, 0)).unwrap();
        assert_eq!(k.chunk.module, "decode_tc_softmax");
        assert_eq!(k.chunk.name, "qa_decode_tc_softmax_bf16_d128");
        assert_eq!(k.combine.module, "decode_softmax");
        assert_eq!(k.combine.name, "qa_decode_softmax_bf16_d128_combine");
        // 16 query rows + 2 stages × (K, V) × 64 keys, 16 chunks of 16 bytes a row
        assert_eq!(k.chunk_smem, (16 + 256) * 16 * 16);
        let c = DecodeFamily::CudaCore.kernels(&p, (9, 0)).unwrap();
        assert_eq!(c.chunk.name, "qa_decode_softmax_bf16_d128");
        assert_eq!((c.chunk_smem, c.combine), (0, k.combine));
    }
}
