//! The write side of the paged cache on a device: `kernels/decode/append_kv.cu` (vLLM's
//! `reshape_and_cache`), compared with [`crate::reference::append_kv`] by the tests.

use crate::abi::QaAppendKvParams;
use crate::error::{Error, Result, shape_err};
use crate::launch::{Executor, KernelRef, LaunchGeometry};
use crate::ops::attention::{upload_slice, upload_view};
use crate::problem::ERROR_RECORD_BYTES;
use crate::reference::check_append;
use crate::tensor::{Tensor, TensorView};

/// Tokens per block (one warp each).
const TOKENS_PER_BLOCK: usize = 4;

/// Writes token `t` of `k`/`v` (`[tokens, hkv, d]`, contiguous head dimension) into slot
/// `slot_mapping[t]` of the caches through the device kernel; −1 skips a token. The layouts are
/// checked on the host; the slots only by the kernel (as for an engine's device-memory slot
/// mapping): a slot outside the cache is an [`Error::Index`] and the host caches are then left
/// as they were. Two tokens naming one slot is not detected (vLLM's contract).
///
/// ```
/// use quietattn::{DType, Device, Tensor};
/// use quietattn::ops::decode::append_kv_on;
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?;
/// let executor = device.executor().expect("the emulator runs kernels");
/// let mut k_cache = Tensor::zeros(DType::F32, &[2, 16, 1, 2])?;
/// let mut v_cache = Tensor::zeros(DType::F32, &[2, 16, 1, 2])?;
/// let k = Tensor::from_f64(DType::F32, &[1.0, 2.0, 3.0, 4.0], &[2, 1, 2])?;
/// let v = Tensor::from_f64(DType::F32, &[5.0, 6.0, 7.0, 8.0], &[2, 1, 2])?;
/// append_kv_on(executor, &mut k_cache, &mut v_cache, &k.view(), &v.view(), &[16 + 3, -1])?;
/// assert_eq!(k_cache.view().at(&[1, 3, 0, 1]), 2.0);
/// assert!(append_kv_on(executor, &mut k_cache, &mut v_cache, &k.view(), &v.view(), &[32, -1]).is_err());
/// # Ok(())
/// # }
/// ```
pub fn append_kv_on(
    executor: &dyn Executor,
    k_cache: &mut Tensor,
    v_cache: &mut Tensor,
    k: &TensorView<'_>,
    v: &TensorView<'_>,
    slot_mapping: &[i64],
) -> Result<()> {
    let cache = check_append(k_cache, v_cache, k, v, slot_mapping.len())?;
    for (name, t) in [("k", k), ("v", v)] {
        if cache.head_dim > 1 && t.strides[2] != 1 {
            return Err(shape_err!(
                "{name}: the head dimension must be contiguous, got strides {:?}",
                t.strides
            ));
        }
    }
    if slot_mapping.is_empty() {
        return Ok(());
    }
    let (kb, kd) = upload_view(executor, k, true)?;
    let (vb, vd) = upload_view(executor, v, true)?;
    let kc = upload_slice(executor, k_cache.data.as_bytes())?;
    let vc = upload_slice(executor, v_cache.data.as_bytes())?;
    let slots = upload_slice(executor, bytemuck::cast_slice(slot_mapping))?;
    let errors = executor.alloc_zeroed(ERROR_RECORD_BYTES)?;
    let u32_of =
        |n: usize| u32::try_from(n).map_err(|_| Error::Overflow(format!("{n} exceeds u32")));
    let params = QaAppendKvParams {
        k: kd.ptr,
        v: vd.ptr,
        k_stride_token: kd.stride_seq,
        k_stride_head: kd.stride_head,
        v_stride_token: vd.stride_seq,
        v_stride_head: vd.stride_head,
        k_cache: kc.addr(),
        v_cache: vc.addr(),
        slot_mapping: slots.addr(),
        errors: errors.addr(),
        tokens: u32_of(slot_mapping.len())?,
        kv_heads: u32_of(cache.kv_heads)?,
        head_dim: u32_of(cache.head_dim)?,
        slots: u32_of(cache.num_pages.saturating_mul(cache.page_size))?,
        elem_bytes: u32_of(cache.dtype.size())?,
        reserved: 0,
    };
    let kernel = KernelRef {
        module: "append_kv",
        name: "qa_append_kv".into(),
    };
    let geometry = LaunchGeometry {
        grid: [u32_of(slot_mapping.len().div_ceil(TOKENS_PER_BLOCK))?, 1, 1],
        block: [32 * TOKENS_PER_BLOCK as u32, 1, 1],
        dynamic_smem: 0,
    };
    executor.launch(&kernel, crate::abi::as_bytes(&params), &geometry)?;
    crate::ops::ErrorRecord::read(executor, &errors)?.check()?;
    executor.download(&kc, k_cache.data.as_bytes_mut())?;
    executor.download(&vc, v_cache.data.as_bytes_mut())?;
    drop((kb, vb));
    Ok(())
}
