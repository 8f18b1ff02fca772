//! SIMT emulator device (placeholder).
use crate::error::Result;
use crate::launch::{Buffer, Executor, KernelRef, LaunchGeometry};

/// The emulator.
pub struct Emulator {}

impl Emulator {
    /// New emulator.
    pub fn new() -> Self {
        Emulator {}
    }
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new()
    }
}

/// Host memory kernels address directly.
pub struct HostBuffer {}

impl HostBuffer {
    /// Address.
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

impl Executor for Emulator {
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
        "emulator".into()
    }
}
