//! # quietattn
//!
//! Fused attention kernels with softmax variants (softmax1, learned sinks, clipped softmax,
//! softpick, sigmoid attention, output gates) and outlier statistics gathered inside the kernel.
//!
//! One call runs on any [`Device`]: a CUDA GPU, the SIMT emulator (the same kernel source on the
//! CPU) or the f64 reference. The example runs on the emulator and checks it against the
//! reference:
//!
//! ```
//! use quietattn::{AttentionInputs, AttentionOptions, DType, Device, Normaliser, Tensor};
//!
//! # fn main() -> quietattn::Result<()> {
//! // [batch, seq, heads, dim] queries; [batch, seq, kv heads, dim] keys and values (GQA 4:2).
//! let values = |n: usize, seed: f64| (0..n).map(|i| ((i as f64 * seed).sin())).collect::<Vec<_>>();
//! let q = Tensor::from_f64(DType::F32, &values(1 * 8 * 4 * 64, 0.37), &[1, 8, 4, 64])?;
//! let k = Tensor::from_f64(DType::F32, &values(1 * 8 * 2 * 64, 0.11), &[1, 8, 2, 64])?;
//! let v = Tensor::from_f64(DType::F32, &values(1 * 8 * 2 * 64, 0.73), &[1, 8, 2, 64])?;
//! let inputs = AttentionInputs::new(q.view(), k.view(), v.view());
//! let options = AttentionOptions {
//!     normaliser: Normaliser::OffByOne,
//!     causal: true,
//!     stats: true,
//!     ..AttentionOptions::default()
//! };
//!
//! let device = Device::emulator()?; // or Device::auto(): CUDA, else emulator, else reference
//! let out = quietattn::attention(&device, &inputs, &options)?;
//! let want = quietattn::attention(&Device::reference(), &inputs, &options)?;
//! assert_eq!(out.o.shape, vec![1, 8, 4, 64]);
//! assert_eq!(out.lse.shape, vec![1, 4, 8]);
//! for (a, b) in out.o.to_f64().iter().zip(want.o.to_f64()) {
//!     assert!((a - b).abs() <= 2e-5 * (1.0 + b.abs()));
//! }
//! // Statistics were gathered inside the kernel: every (head, row) with a visible key counted once.
//! let stats = out.stats.expect("requested");
//! assert!(stats.heads.iter().all(|h| h.rows == 8));
//! # Ok(())
//! # }
//! ```
//!
//! Engines that own their device memory use [`attention_device`] and
//! [`ops::decode::paged_decode_device`] (`examples/engine.rs` runs both on the emulator). With
//! `default-features = false` the crate builds only the kernels, the device layer and that API
//! (dependencies cudarc, half, bytemuck, thiserror; feature `emulator` adds the CPU emulator);
//! the default features add tensor files (`files`), the self-check suite and synthetic
//! workloads (`check`), real checkpoints (`probe`) and the binary (`cli`).
#![warn(missing_docs)]

pub mod abi;
#[cfg(feature = "check")]
pub mod check;
pub mod cuda;
pub mod device;
pub mod dtype;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
#[cfg(feature = "files")]
pub mod files;
#[cfg(feature = "files")]
pub mod io;
pub mod kernels;
pub mod launch;
#[cfg(feature = "probe")]
pub mod model;
pub mod ops;
#[cfg(feature = "check")]
pub mod perf;
#[cfg(feature = "probe")]
pub mod probe;
pub mod problem;
pub mod reference;
pub mod registry;
pub mod stats;
pub mod tensor;
pub mod testing;
pub mod variant;

/// The cudarc this crate is built against (0.19): engines name its `CudaSlice`, `CudaStream` and
/// `CudaContext` through `quietattn::cudarc`, so [`DeviceTensor::from_cuda`] takes their slices
/// without a second cudarc in the build.
pub use cudarc;
/// The `half` crate of [`DType::F16`] and [`DType::BF16`] data (`half::f16`, `half::bf16`).
pub use half;

pub use device::{Device, DeviceKind};
pub use dtype::DType;
pub use error::{Error, Result};
pub use ops::attention::{DeviceAttentionArgs, DeviceStats, DeviceTensor, attention_device};
pub use ops::{AttentionOutput, activation_stats, attention};
pub use problem::{AttentionInputs, AttentionProblem, BlockTable, PagedAttentionInputs};
pub use stats::{ActivationStats, OutlierStats};
pub use tensor::{DataRef, Tensor, TensorData, TensorView};
pub use variant::{AttentionOptions, Gate, KernelChoice, Normaliser};
