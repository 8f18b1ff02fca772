//! Kernel families: each one is a unit that says whether it can serve a problem on a device and
//! which launch serves it. [`plan`] picks one for a [`KernelChoice`]; nothing outside this module
//! knows the families' tile shapes or kernel names.

mod cuda_core;
mod tensor_core;

pub use cuda_core::{CudaCore, MAX_HEAD_DIM, check_head_dim};
pub use tensor_core::{HEAD_DIMS as TENSOR_CORE_HEAD_DIMS, TensorCore};

use crate::abi::{self, QaAttnParams};
use crate::error::{Error, Result};
use crate::launch::{KernelRef, LaunchGeometry};
use crate::variant::KernelChoice;

/// Threads per block of every attention kernel (4 warps).
pub const THREADS: u32 = 128;

/// One launch: the kernel and its geometry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The kernel.
    pub kernel: KernelRef,
    /// Grid, block and dynamic shared memory.
    pub geometry: LaunchGeometry,
}

/// A family of attention kernels (one folder `kernels/<family>/`).
pub trait KernelFamily: Sync {
    /// The name users pin it by (`cuda-core`, `tensor-core`).
    fn name(&self) -> &'static str;
    /// `Ok` when this family can serve `params` on a device of compute capability `cc`,
    /// else an [`Error::Unsupported`] saying why. `params` passed [`check_common`].
    fn supports(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<()>;
    /// The launch serving `params` (which this family supports) on a device of compute
    /// capability `cc` (a family's shared-memory layout may depend on it).
    fn plan(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<Launch>;
}

/// The families `Auto` tries, in order of preference.
const PREFERENCE: [&dyn KernelFamily; 2] = [&TensorCore, &CudaCore];

/// The family serving `params` under `choice` on a device of compute capability `cc`.
pub fn choose(
    choice: KernelChoice,
    params: &QaAttnParams,
    cc: (u32, u32),
) -> Result<&'static dyn KernelFamily> {
    let pinned: &'static dyn KernelFamily = match choice {
        KernelChoice::Auto => {
            let mut why = Vec::new();
            for family in PREFERENCE {
                match family.supports(params, cc) {
                    Ok(()) => return Ok(family),
                    Err(e) => why.push(e.to_string()),
                }
            }
            return Err(Error::Unsupported(why.join("; ")));
        }
        KernelChoice::CudaCore => &CudaCore,
        KernelChoice::TensorCore => &TensorCore,
    };
    pinned.supports(params, cc)?;
    Ok(pinned)
}

/// The launch for `params`: common checks, the family for `choice`, its plan. Launches nothing.
pub fn plan(params: &QaAttnParams, choice: KernelChoice, cc: (u32, u32)) -> Result<Launch> {
    check_common(params)?;
    choose(choice, params, cc)?.plan(params, cc)
}

/// Checks every family relies on: head layout, one dtype for q/k/v/o, sinks, grid limits.
pub fn check_common(params: &QaAttnParams) -> Result<()> {
    if params.kv_heads == 0 || params.heads % params.kv_heads != 0 {
        return Err(Error::Shape(format!(
            "query heads ({}) must be a positive multiple of kv heads ({})",
            params.heads, params.kv_heads
        )));
    }
    for (name, d) in [("k", &params.k), ("v", &params.v), ("o", &params.o)] {
        if d.dtype != params.q.dtype {
            return Err(Error::Unsupported(format!(
                "{name} dtype {} differs from q dtype {}",
                d.dtype, params.q.dtype
            )));
        }
    }
    if params.normaliser == abi::QaNormaliser_QA_NORM_SINK && params.sinks == 0 {
        return Err(Error::InvalidOption(
            "the sink normaliser needs sinks".into(),
        ));
    }
    if params.heads > 65_535 || params.batch > 65_535 {
        return Err(Error::Unsupported(format!(
            "{} heads x {} sequences: the grid holds at most 65535 of each",
            params.heads, params.batch
        )));
    }
    Ok(())
}

/// The normaliser's name in module and kernel names (`softmax`, `off_by_one`, ...).
pub fn normaliser_stem(normaliser: u32) -> Result<&'static str> {
    Ok(match normaliser {
        abi::QaNormaliser_QA_NORM_SOFTMAX => "softmax",
        abi::QaNormaliser_QA_NORM_OFF_BY_ONE => "off_by_one",
        abi::QaNormaliser_QA_NORM_SINK => "sink",
        abi::QaNormaliser_QA_NORM_CLIPPED => "clipped",
        abi::QaNormaliser_QA_NORM_SOFTPICK => "softpick",
        abi::QaNormaliser_QA_NORM_SIGMOID => "sigmoid",
        other => {
            return Err(Error::InvalidOption(format!(
                "normaliser ABI value {other}"
            )));
        }
    })
}

/// The dtype's name in kernel names.
pub fn dtype_stem(dtype: u32) -> Result<&'static str> {
    Ok(match dtype {
        abi::QaDtype_QA_DTYPE_F32 => "f32",
        abi::QaDtype_QA_DTYPE_F16 => "f16",
        abi::QaDtype_QA_DTYPE_BF16 => "bf16",
        other => return Err(Error::Unsupported(format!("dtype ABI value {other}"))),
    })
}

/// True when `params` asks for any statistics (the `_stats` instantiation).
pub fn wants_stats(params: &QaAttnParams) -> bool {
    let s = &params.stats;
    s.heads != 0 || s.tensors != 0 || s.channels.iter().any(|&c| c != 0)
}

/// The `kernels/<family>/<prefix>_<norm>.cu` module of a normaliser: a static name per
/// (family, normaliser), as [`KernelRef`] wants.
fn module(family: &[&'static str; 6], normaliser: u32) -> Result<&'static str> {
    Ok(family[normaliser_index(normaliser)?])
}

fn normaliser_index(normaliser: u32) -> Result<usize> {
    let i = normaliser as usize;
    if i < 6 {
        Ok(i)
    } else {
        Err(Error::InvalidOption(format!(
            "normaliser ABI value {normaliser}"
        )))
    }
}

/// The grid of a prefill launch: query tiles of `block_m` rows × heads × sequences. At least one
/// query tile even for empty queries, because block 0 of each (sequence, kv head) counts K and V.
fn query_tile_grid(params: &QaAttnParams, block_m: u32) -> [u32; 3] {
    let m_tiles = params.seqlen_q.div_ceil(block_m).max(1);
    [m_tiles, params.heads, params.batch]
}

/// A kernel of `module`: `<prefix>_<norm>_<dtype>_d<dim>[_stats]`.
fn kernel_ref(
    modules: &[&'static str; 6],
    prefix: &str,
    params: &QaAttnParams,
    dim: u32,
) -> Result<KernelRef> {
    let name = format!(
        "{prefix}_{}_{}_d{dim}{}",
        normaliser_stem(params.normaliser)?,
        dtype_stem(params.q.dtype)?,
        if wants_stats(params) { "_stats" } else { "" }
    );
    Ok(KernelRef {
        module: module(modules, params.normaliser)?,
        name,
    })
}
