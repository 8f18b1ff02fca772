//! Statistics buffers for launches on caller-owned memory. Engines accumulate many launches
//! into one buffer (docs/contract.md §5: every counter is a sum, so launches add up) and read it
//! back once per reporting window.

use std::marker::PhantomData;

use super::StatsLayout;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::Buffer;
use crate::stats::OutlierStats;

/// A zeroed statistics buffer on a device, sized for one head configuration.
pub struct DeviceStats {
    buf: Buffer,
    layout: StatsLayout,
}

impl DeviceStats {
    /// Zeroed counters for `heads` query heads, `kv_heads` kv heads of dimension `head_dim`.
    pub fn new(device: &Device, heads: usize, kv_heads: usize, head_dim: usize) -> Result<Self> {
        let layout = StatsLayout::new(heads, kv_heads, head_dim);
        let buf = executor(device)?.alloc_zeroed(layout.bytes)?;
        Ok(DeviceStats { buf, layout })
    }

    /// Resets every counter to zero. On CUDA the fill is queued on the device's stream, after
    /// the launches already queued there.
    pub fn zero(&mut self, device: &Device) -> Result<()> {
        match (device, &mut self.buf) {
            // SAFETY: the buffer is ours, live, and `layout.bytes` long.
            (Device::Cuda(c), Buffer::Cuda(b)) => unsafe {
                c.zero_raw(b.addr(), self.layout.bytes)
            },
            #[cfg(feature = "emulator")]
            (Device::Emulator(_), Buffer::Host(h)) => {
                h.as_mut_slice().fill(0);
                Ok(())
            }
            _ => Err(Error::InvalidOption(
                "statistics buffer used with another device than the one that allocated it".into(),
            )),
        }
    }

    /// Waits for the launches queued so far and returns the accumulated counters.
    pub fn read(&self, device: &Device) -> Result<OutlierStats> {
        let mut bytes = vec![0u8; self.layout.bytes];
        executor(device)?.download(&self.buf, &mut bytes)?;
        self.layout.parse(&bytes)
    }

    /// The layout (byte size and parts) of the buffer.
    pub fn layout(&self) -> &StatsLayout {
        &self.layout
    }

    /// Where a launch should add its counters (borrows the buffer mutably for the launch).
    pub fn target(&mut self) -> StatsTarget<'_> {
        StatsTarget {
            addr: self.buf.addr(),
            layout: self.layout,
            _borrow: PhantomData,
        }
    }
}

/// The statistics buffer a launch adds its counters to.
#[derive(Debug)]
pub struct StatsTarget<'a> {
    addr: u64,
    layout: StatsLayout,
    _borrow: PhantomData<&'a mut ()>,
}

impl StatsTarget<'_> {
    /// Counters at a raw device address, laid out as `layout` (`layout.bytes` bytes, 8-byte
    /// aligned, zeroed before the first launch that accumulates into them).
    ///
    /// # Safety
    /// `addr .. addr + layout.bytes` must be live, writable memory of the launching device for
    /// as long as launches using it run.
    pub unsafe fn from_raw(addr: u64, layout: StatsLayout) -> Self {
        StatsTarget {
            addr,
            layout,
            _borrow: PhantomData,
        }
    }

    /// The base address.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The layout the counters follow.
    pub fn layout(&self) -> &StatsLayout {
        &self.layout
    }
}

/// Reads counters an engine keeps in its own memory, after the work queued on the device's
/// stream.
///
/// # Safety
/// `addr .. addr + layout.bytes` must be live memory of `device` (on the emulator: host memory
/// not written concurrently).
pub unsafe fn read_stats_at(
    device: &Device,
    addr: u64,
    layout: &StatsLayout,
) -> Result<OutlierStats> {
    let mut bytes = vec![0u8; layout.bytes];
    match device {
        // SAFETY: forwarded from the caller.
        Device::Cuda(c) => unsafe { c.read_raw(addr, &mut bytes)? },
        #[cfg(feature = "emulator")]
        Device::Emulator(_) => {
            // SAFETY: forwarded from the caller: emulator addresses are host addresses.
            let src = unsafe { std::slice::from_raw_parts(addr as *const u8, layout.bytes) };
            bytes.copy_from_slice(src);
        }
        Device::Reference => return Err(no_memory()),
    }
    layout.parse(&bytes)
}

fn executor(device: &Device) -> Result<&dyn crate::launch::Executor> {
    device.executor().ok_or_else(no_memory)
}

fn no_memory() -> Error {
    Error::Unsupported("the reference device has no device memory".into())
}
