//! Where the probe's dense layers run: the `matrixmultiply` GEMM on the CPU, or cuBLAS on the
//! GPU that runs attention, each weight uploaded once when its [`Linear`] is placed.
//!
//! On the GPU only the products `x·Wᵀ` move: each call uploads its input activations and reads
//! the product back, because the elementwise pieces around them (norms, RoPE, GELU / SwiGLU,
//! residual adds, biases) and the attention inputs stay host matrices.
//!
//! ```
//! use quietattn::Device;
//! use quietattn::probe::dense::Dense;
//! use quietattn::probe::matrix::{Linear, Matrix};
//!
//! # fn main() -> quietattn::Result<()> {
//! // The reference device has no GPU: its dense layers stay on the CPU.
//! let dense = Dense::for_device(&Device::reference())?;
//! assert!(matches!(dense, Dense::Cpu));
//! let w = Matrix::new(2, 2, vec![1.0, 2.0, 3.0, 4.0])?;
//! let mut layer = Linear::new(w, Some(vec![0.5, -0.5]))?;
//! layer.place(&dense)?;
//! let y = layer.forward(&Matrix::new(1, 2, vec![1.0, 1.0])?)?;
//! assert_eq!(y.data, vec![3.5, 6.5]);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::cuda::{CudaGemm, DeviceMatrix};
use crate::device::Device;
use crate::error::Result;
use crate::probe::matrix::{Linear, Matrix};

/// The GEMM backend of the dense layers.
#[derive(Clone, Debug)]
pub enum Dense {
    /// `matrixmultiply`'s f32 sgemm on the host.
    Cpu,
    /// cuBLAS f32 sgemm on a GPU.
    Cublas(Arc<CudaGemm>),
}

impl Dense {
    /// cuBLAS on the stream of a CUDA `device`; the CPU for the reference and the emulator.
    ///
    /// An error (never a panic) when the device is a GPU but cuBLAS cannot be opened.
    pub fn for_device(device: &Device) -> Result<Dense> {
        match device {
            Device::Cuda(gpu) => Ok(Dense::Cublas(Arc::new(CudaGemm::new(gpu)?))),
            _ => Ok(Dense::Cpu),
        }
    }

    /// What runs the products, for reports.
    pub fn name(&self) -> String {
        match self {
            Dense::Cpu => "CPU (matrixmultiply sgemm, f32)".into(),
            Dense::Cublas(g) => g.name().to_string(),
        }
    }

    /// `w` on the device (`None` for the CPU, which reads the host copy).
    pub(crate) fn upload(&self, w: &Matrix) -> Result<Option<PlacedWeight>> {
        match self {
            Dense::Cpu => Ok(None),
            Dense::Cublas(gemm) => Ok(Some(PlacedWeight {
                weight: gemm.upload(w.rows, w.cols, &w.data)?,
                gemm: gemm.clone(),
            })),
        }
    }
}

/// A [`Linear`]'s weight `[out, in]` in device memory with the handle that multiplies by it.
#[derive(Debug)]
pub(crate) struct PlacedWeight {
    gemm: Arc<CudaGemm>,
    weight: DeviceMatrix,
}

impl PlacedWeight {
    /// `x·Wᵀ` on the GPU (shapes checked by the caller).
    pub(crate) fn x_wt(&self, x: &Matrix) -> Result<Matrix> {
        let xd = self.gemm.upload(x.rows, x.cols, &x.data)?;
        let yd = self.gemm.x_wt(&xd, &self.weight)?;
        Matrix::new(x.rows, self.weight.rows(), self.gemm.download(&yd)?)
    }
}

/// Places every layer of `layers` on `dense`; on an error (out of device memory) all of them go
/// back to the CPU, so a model never runs half on each.
pub(crate) fn place_all(mut layers: Vec<&mut Linear>, dense: &Dense) -> Result<()> {
    let placed = layers.iter_mut().try_for_each(|l| l.place(dense));
    if placed.is_err() {
        for l in &mut layers {
            l.place(&Dense::Cpu)?;
        }
    }
    placed
}
