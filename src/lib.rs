//! # quietattn
//!
//! Fused attention kernels with softmax variants (softmax1, learned sinks, clipped softmax,
//! softpick, sigmoid attention, output gates) and outlier statistics gathered inside the kernel.
#![warn(missing_docs)]

pub mod abi;
pub mod cuda;
pub mod device;
pub mod dtype;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod io;
pub mod kernels;
pub mod launch;
pub mod ops;
pub mod perf;
pub mod problem;
pub mod reference;
pub mod stats;
pub mod tensor;
pub mod variant;

pub use device::{Device, DeviceKind};
pub use dtype::DType;
pub use error::{Error, Result};
pub use ops::attention::{DeviceAttentionArgs, DeviceStats, DeviceTensor, attention_device};
pub use ops::{AttentionOutput, activation_stats, attention};
pub use problem::{AttentionInputs, AttentionProblem};
pub use stats::{ActivationStats, OutlierStats};
pub use tensor::{DataRef, Tensor, TensorData, TensorView};
pub use variant::{AttentionOptions, Gate, Normaliser};
