//! CUDA device layer (placeholder).
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor, KernelRef, LaunchGeometry};

/// A CUDA GPU.
pub struct CudaDevice {}

/// Device memory.
pub struct CudaBuffer {}

impl CudaBuffer {
    /// Device address.
    pub fn addr(&self) -> u64 {
        0
    }
    /// Bytes.
    pub fn len(&self) -> usize {
        0
    }
    /// Empty.
    pub fn is_empty(&self) -> bool {
        true
    }
}

impl CudaDevice {
    /// Opens device `ordinal`.
    pub fn new(ordinal: usize) -> Result<Self> {
        Err(Error::NoDevice(format!(
            "device {ordinal}: CUDA layer not implemented"
        )))
    }
}

impl Executor for CudaDevice {
    fn alloc_zeroed(&self, _bytes: usize) -> Result<Buffer> {
        todo!()
    }
    fn upload(&self, _bytes: &[u8]) -> Result<Buffer> {
        todo!()
    }
    fn download(&self, _buf: &Buffer, _out: &mut [u8]) -> Result<()> {
        todo!()
    }
    fn launch(&self, _k: &KernelRef, _p: &[u8], _g: &LaunchGeometry) -> Result<()> {
        todo!()
    }
    fn name(&self) -> String {
        "cuda".into()
    }
}
