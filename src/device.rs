//! Where a computation runs: the f64 reference, the SIMT emulator, or a CUDA GPU.

use crate::error::{Error, Result};
use crate::launch::Executor;

/// A compute device. [`Device::auto`] picks the best one present.
pub enum Device {
    /// The literal f64 CPU reference (no kernels run).
    Reference,
    /// The real kernel sources executed on the CPU by the SIMT emulator.
    #[cfg(feature = "emulator")]
    Emulator(crate::emulator::Emulator),
    /// A CUDA GPU.
    Cuda(crate::cuda::CudaDevice),
}

/// Which kind of device; what `--device` names on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// Best present: CUDA, else emulator, else reference.
    Auto,
    /// The f64 reference.
    Reference,
    /// The SIMT emulator.
    Emulator,
    /// CUDA device 0.
    Cuda,
}

impl std::str::FromStr for DeviceKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceKind::Auto),
            "reference" | "ref" => Ok(DeviceKind::Reference),
            "emulator" | "emu" => Ok(DeviceKind::Emulator),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda),
            other => Err(Error::InvalidOption(format!(
                "device `{other}` (expected auto, reference, emulator or cuda)"
            ))),
        }
    }
}

impl Device {
    /// The f64 reference.
    pub fn reference() -> Device {
        Device::Reference
    }

    /// The SIMT emulator, or [`Error::EmulatorNotBuilt`] without the `emulator` feature.
    pub fn emulator() -> Result<Device> {
        #[cfg(feature = "emulator")]
        {
            Ok(Device::Emulator(crate::emulator::Emulator::new()))
        }
        #[cfg(not(feature = "emulator"))]
        {
            Err(Error::EmulatorNotBuilt)
        }
    }

    /// CUDA device `ordinal`; an error (never a panic) without driver, device or PTX.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Ok(Device::Cuda(crate::cuda::CudaDevice::new(ordinal)?))
    }

    /// A device of the given kind.
    pub fn from_kind(kind: DeviceKind) -> Result<Device> {
        match kind {
            DeviceKind::Auto => Ok(Device::auto()),
            DeviceKind::Reference => Ok(Device::Reference),
            DeviceKind::Emulator => Device::emulator(),
            DeviceKind::Cuda => Device::cuda(0),
        }
    }

    /// The best device present: CUDA device 0, else the emulator, else the reference.
    pub fn auto() -> Device {
        if let Ok(d) = Device::cuda(0) {
            return d;
        }
        Device::emulator().unwrap_or(Device::Reference)
    }

    /// Streaming multiprocessors of a CUDA device (the `sm_count` of
    /// [`crate::problem::workspace_bytes`]); `None` for the emulator and the reference, where
    /// the split plan's default (132) serves.
    pub fn sm_count(&self) -> Option<usize> {
        match self {
            Device::Cuda(c) => Some(c.sm_count()),
            _ => None,
        }
    }

    /// The kind of this device.
    pub fn kind(&self) -> DeviceKind {
        match self {
            Device::Reference => DeviceKind::Reference,
            #[cfg(feature = "emulator")]
            Device::Emulator(_) => DeviceKind::Emulator,
            Device::Cuda(_) => DeviceKind::Cuda,
        }
    }

    /// The executor that runs kernels, or `None` for the reference.
    pub fn executor(&self) -> Option<&dyn Executor> {
        match self {
            Device::Reference => None,
            #[cfg(feature = "emulator")]
            Device::Emulator(e) => Some(e),
            Device::Cuda(c) => Some(c),
        }
    }

    /// A short human-readable name.
    pub fn name(&self) -> String {
        match self.executor() {
            Some(e) => e.name(),
            None => "reference (f64 CPU)".into(),
        }
    }
}
