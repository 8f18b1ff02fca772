//! What a launch is, independent of who executes it: the CUDA driver or the SIMT emulator.
//! Kernel-specific code (`src/ops/`) computes one [`LaunchGeometry`] and ABI
//! parameter block; both [`Executor`]s (CUDA, emulator) run it unchanged.

use crate::dtype::DType;
use crate::error::{Error, Result};

/// Grid, block and dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchGeometry {
    /// Blocks in x, y, z.
    pub grid: [u32; 3],
    /// Threads per block in x, y, z.
    pub block: [u32; 3],
    /// Dynamic shared memory in bytes.
    pub dynamic_smem: u32,
}

/// A kernel: the `kernels/<module>.cu` file it lives in and its `extern "C"` name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRef {
    /// Stem of the source file (`act_stats` for `kernels/act_stats.cu`).
    pub module: &'static str,
    /// The kernel's symbol.
    pub name: String,
}

/// Memory owned by an executor: host memory for the emulator, device memory for CUDA.
pub enum Buffer {
    /// Emulator memory (a host allocation whose address the kernels use directly).
    #[cfg(feature = "emulator")]
    Host(crate::emulator::HostBuffer),
    /// CUDA device memory.
    Cuda(crate::cuda::CudaBuffer),
}

impl Buffer {
    /// The address kernels see (what goes into the ABI structs).
    pub fn addr(&self) -> u64 {
        match self {
            #[cfg(feature = "emulator")]
            Buffer::Host(b) => b.addr(),
            Buffer::Cuda(b) => b.addr(),
        }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        match self {
            #[cfg(feature = "emulator")]
            Buffer::Host(b) => b.len(),
            Buffer::Cuda(b) => b.len(),
        }
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Something that can hold memory and run a kernel launch.
pub trait Executor {
    /// Zero-filled memory.
    fn alloc_zeroed(&self, bytes: usize) -> Result<Buffer>;
    /// Zeroed executor memory for `n` elements of `dtype` (`n · dtype.size()` bytes), so a
    /// caller sizes buffers as its tensors do: `exec.alloc_zeroed_elems(DType::F32, rows * d)`.
    /// [`Error::Overflow`] when the byte count overflows `usize`.
    fn alloc_zeroed_elems(&self, dtype: DType, n: usize) -> Result<Buffer> {
        let bytes = n.checked_mul(dtype.size()).ok_or_else(|| {
            Error::Overflow(format!(
                "{n} elements of {dtype:?} overflow the address space"
            ))
        })?;
        self.alloc_zeroed(bytes)
    }
    /// A copy of `bytes` in executor memory.
    fn upload(&self, bytes: &[u8]) -> Result<Buffer>;
    /// Copies `buf` (its first `out.len()` bytes) back to the host.
    fn download(&self, buf: &Buffer, out: &mut [u8]) -> Result<()>;
    /// Runs `kernel` with its single by-value parameter struct `params` (ABI bytes) and waits
    /// for it to finish.
    fn launch(&self, kernel: &KernelRef, params: &[u8], geometry: &LaunchGeometry) -> Result<()>;
    /// A short human-readable name ("emulator", "cuda:0 NVIDIA H200").
    fn name(&self) -> String;
    /// The compute capability `(major, minor)` kernels run at: the GPU's own, or for the
    /// emulator 8.0, the instruction set it implements (`mma.sync`, `ldmatrix`, `cp.async`),
    /// so it runs every kernel family.
    fn compute_capability(&self) -> (u32, u32);
}
