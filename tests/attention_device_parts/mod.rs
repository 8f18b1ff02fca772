//! Helpers of tests/attention_device_buffers.rs.

pub mod packed;

use quietattn::Device;
use quietattn::launch::Executor;

/// The executor of a kernel device.
pub fn exec(device: &Device) -> &dyn Executor {
    device.executor().expect("a kernel device")
}
