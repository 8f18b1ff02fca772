//! Engines' own memory and streams: a device on a caller's stream, and byte copies to and from
//! raw device addresses (statistics buffers an engine allocated itself).

use std::sync::Arc;

use cudarc::driver::{CudaStream, result};

use super::CudaDevice;
use super::error::driver;
use crate::error::{Error, Result};
use crate::kernels;

impl CudaDevice {
    /// A device whose launches go to `stream` (an engine's stream, of the engine's context),
    /// so quietattn's kernels are ordered with the engine's own work without synchronising.
    ///
    /// The context's event-tracking setting is left as the engine chose it.
    pub fn from_stream(stream: Arc<CudaStream>) -> Result<Self> {
        if !kernels::KERNELS_BUILT {
            return Err(Error::KernelsNotBuilt);
        }
        let ctx = stream.context().clone();
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("reading the compute capability"))?;
        let device_name = ctx.name().map_err(driver("reading the device name"))?;
        let sm_count = super::context_sm_count(&ctx)?;
        Ok(CudaDevice {
            name: format!(
                "cuda:{} {device_name} (sm_{major}{minor}, caller's stream)",
                ctx.ordinal()
            ),
            ctx,
            stream,
            cc: (major as u32, minor as u32),
            sm_count,
            modules: Default::default(),
        })
    }

    /// Copies `out.len()` bytes at device address `addr` to the host, ordered after the work
    /// queued on this device's stream, and waits for the copy.
    ///
    /// # Safety
    /// `addr .. addr + out.len()` must be live device memory of this device's context.
    pub unsafe fn read_raw(&self, addr: u64, out: &mut [u8]) -> Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        self.ctx
            .bind_to_thread()
            .map_err(driver("binding the context"))?;
        // SAFETY: the caller vouches for the source range; `out` is valid for its length and
        // outlives the copy because we synchronise before returning.
        unsafe { result::memcpy_dtoh_async(out, addr, self.stream.cu_stream()) }
            .map_err(driver(format!("copying {} bytes to the host", out.len())))?;
        self.synchronize("reading device memory")
    }

    /// Queues a fill of `len` zero bytes at device address `addr` on this device's stream
    /// (not waited for: later launches on the stream see zeros).
    ///
    /// # Safety
    /// `addr .. addr + len` must be live device memory of this device's context that no other
    /// stream uses concurrently.
    pub unsafe fn zero_raw(&self, addr: u64, len: usize) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.ctx
            .bind_to_thread()
            .map_err(driver("binding the context"))?;
        // SAFETY: the caller vouches for the range; bytes have no validity invariant.
        unsafe { result::memset_d8_async(addr, 0, len, self.stream.cu_stream()) }
            .map_err(driver(format!("zeroing {len} bytes")))
    }
}
