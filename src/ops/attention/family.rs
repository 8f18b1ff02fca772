//! Kernel families: each one is a unit that says whether it can serve a problem on a device and
//! which launch serves it. [`plan`] picks one for a [`KernelChoice`]; nothing outside this module
//! knows the families' tile shapes or kernel names.

mod cuda_core;
mod tensor_core;

pub use cuda_core::{CudaCore, check_head_dim, max_head_dim};
pub use tensor_core::{TensorCore, head_dims as tensor_core_head_dims};

use crate::abi::{self, QaAttnParams};
use crate::error::{Error, Result};
use crate::launch::{KernelRef, LaunchGeometry};
use crate::registry::FamilyRow;
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
    crate::ops::choose::choose(
        choice,
        &PREFERENCE,
        |f| f.name(),
        |f| f.supports(params, cc),
    )
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

/// True when `params` asks for any statistics (the `_stats` instantiation).
pub fn wants_stats(params: &QaAttnParams) -> bool {
    let s = &params.stats;
    s.heads != 0 || s.tensors != 0 || s.channels.iter().any(|&c| c != 0)
}

/// `Ok(dim)`, the instantiated head dim serving a call of element type `dtype` and head dim
/// `head_dim` on a device of compute capability `cc`, when `family` has one; else an
/// [`Error::Unsupported`] starting with `who` and saying why. Every family's capabilities are
/// its registry row (`src/registry/table.rs`).
pub(crate) fn serves(
    family: &FamilyRow,
    who: &str,
    dtype: u32,
    head_dim: u32,
    cc: (u32, u32),
) -> Result<u32> {
    let why = |what: String| Error::Unsupported(format!("{who}: {what}"));
    let need = family.min_cc();
    if cc < need {
        return Err(why(format!(
            "needs compute capability {}.{} or newer, the device has {}.{}",
            need.0, need.1, cc.0, cc.1
        )));
    }
    family.dtype(dtype).map_err(&why)?;
    family.dim_for(head_dim).map_err(why)
}

/// The grid of a prefill launch: query tiles of `block_m` rows × heads × sequences. At least one
/// query tile even for empty queries, because block 0 of each (sequence, kv head) counts K and V.
fn query_tile_grid(params: &QaAttnParams, block_m: u32) -> [u32; 3] {
    let m_tiles = params.seqlen_q.div_ceil(block_m).max(1);
    [m_tiles, params.heads, params.batch]
}

/// The kernel of `family` serving `params` at instantiated head dim `dim`.
fn kernel_ref(family: &FamilyRow, params: &QaAttnParams, dim: u32) -> Result<KernelRef> {
    Ok(KernelRef {
        module: family.module(params.normaliser)?,
        name: family.kernel_name(params.normaliser, params.q.dtype, dim, wants_stats(params))?,
    })
}
