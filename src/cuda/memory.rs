//! Device memory owned by a [`super::CudaDevice`].

use cudarc::driver::CudaSlice;

/// A device allocation. The address is what kernels see in the ABI structs.
pub struct CudaBuffer {
    /// At least one byte: the driver rejects empty allocations.
    pub(crate) slice: CudaSlice<u8>,
    pub(crate) addr: u64,
    pub(crate) len: usize,
}

impl CudaBuffer {
    /// Device address of the first byte.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// Size in bytes (as requested; the allocation may be larger).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for CudaBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaBuffer({:#x}, {} bytes)", self.addr, self.len)
    }
}
