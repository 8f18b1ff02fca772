//! Row-major f32 matrix products on the GPU through cuBLAS (`cublasSgemm`), for the dense layers
//! of real checkpoints that the probe runs around quietattn's attention.
//!
//! cudarc opens libcublas at run time, so building needs no CUDA; a machine without the library
//! gets an [`Error`] value from [`CudaGemm::new`], never a panic.

use std::sync::Arc;

use cudarc::cublas::sys::{self, cublasMath_t, cublasOperation_t};
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaSlice, CudaStream};

use super::CudaDevice;
use super::detect::guarded;
use super::error::driver;
use crate::error::{Error, Result};

/// A row-major `[rows, cols]` f32 matrix in device memory.
pub struct DeviceMatrix {
    rows: usize,
    cols: usize,
    /// At least one element: the driver rejects empty allocations.
    data: CudaSlice<f32>,
}

impl DeviceMatrix {
    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

impl std::fmt::Debug for DeviceMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceMatrix([{}, {}])", self.rows, self.cols)
    }
}

/// A cuBLAS handle on a [`CudaDevice`]'s stream, computing `y = x·Wᵀ` in full f32
/// (`CUBLAS_DEFAULT_MATH`: no TF32 or reduced-precision tensor-core paths).
///
/// ```
/// use quietattn::cuda::{CudaDevice, CudaGemm};
///
/// # fn main() -> quietattn::Result<()> {
/// // Without a GPU or libcublas this is an error value: nothing to run here then.
/// let Ok(gpu) = CudaDevice::new(0) else { return Ok(()) };
/// let Ok(gemm) = CudaGemm::new(&gpu) else { return Ok(()) };
/// // x = [[1, 2]], W = [[1, 0], [0, 1], [1, 1]] (three outputs): y = [[1, 2, 3]].
/// let x = gemm.upload(1, 2, &[1.0, 2.0])?;
/// let w = gemm.upload(3, 2, &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0])?;
/// let y = gemm.x_wt(&x, &w)?;
/// assert_eq!(gemm.download(&y)?, vec![1.0, 2.0, 3.0]);
/// # Ok(())
/// # }
/// ```
pub struct CudaGemm {
    blas: CudaBlas,
    stream: Arc<CudaStream>,
    name: String,
}

impl std::fmt::Debug for CudaGemm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaGemm({})", self.name)
    }
}

impl CudaGemm {
    /// A cuBLAS handle ordered on `device`'s stream.
    ///
    /// [`Error::Driver`] when libcublas cannot be loaded (it is looked up by its usual names,
    /// e.g. `libcublas.so.13`, on the library path) or the handle cannot be created.
    pub fn new(device: &CudaDevice) -> Result<Self> {
        let stream = device.stream().clone();
        guarded("opening cuBLAS", || {
            // SAFETY: only tries to dlopen the library; no cuBLAS call is made.
            if !unsafe { sys::is_culib_present() } {
                return Err(Error::Driver {
                    context: "loading cuBLAS".into(),
                    message: "no libcublas (libcublas.so.13 / .so.12) on the library path; \
                              put its directory on LD_LIBRARY_PATH"
                        .into(),
                });
            }
            let blas = CudaBlas::new(stream.clone()).map_err(blas_err("creating a handle"))?;
            // SAFETY: a live handle; the math mode is a plain enum value.
            unsafe { sys::cublasSetMathMode(*blas.handle(), cublasMath_t::CUBLAS_DEFAULT_MATH) }
                .result()
                .map_err(blas_err("setting the f32 math mode"))?;
            Ok(CudaGemm {
                blas,
                name: format!("cuBLAS sgemm (f32) on {}", device_name(device)),
                stream,
            })
        })
    }

    /// What runs the products, for reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Copies a row-major `[rows, cols]` matrix to the device.
    pub fn upload(&self, rows: usize, cols: usize, data: &[f32]) -> Result<DeviceMatrix> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape(format!(
                "{} values cannot form a [{rows}, {cols}] matrix",
                data.len()
            )));
        }
        let mut m = self.zeros(rows, cols)?;
        if !data.is_empty() {
            self.stream
                .memcpy_htod(data, &mut m.data)
                .map_err(driver(format!(
                    "copying a [{rows}, {cols}] matrix to the device"
                )))?;
        }
        Ok(m)
    }

    /// Copies `m` back to the host (row-major) and waits for the copy.
    pub fn download(&self, m: &DeviceMatrix) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; m.rows * m.cols];
        if !out.is_empty() {
            self.stream
                .memcpy_dtoh(&m.data.slice(..out.len()), &mut out)
                .map_err(driver("copying a matrix to the host"))?;
        }
        self.stream
            .synchronize()
            .map_err(driver("waiting for the GPU's dense layers"))?;
        Ok(out)
    }

    /// `y = x·Wᵀ` for `x` `[m, k]` and `W` `[n, k]` (PyTorch's `[out, in]` layout): `[m, n]`.
    pub fn x_wt(&self, x: &DeviceMatrix, w: &DeviceMatrix) -> Result<DeviceMatrix> {
        if x.cols != w.cols {
            return Err(Error::Shape(format!(
                "input of {} features into a layer that takes {}",
                x.cols, w.cols
            )));
        }
        let (m, n, k) = (x.rows, w.rows, w.cols);
        let mut y = self.zeros(m, n)?;
        if m == 0 || n == 0 || k == 0 {
            return Ok(y); // an empty sum: the zeros are the product
        }
        // cuBLAS is column-major: row-major y [m, n] is yᵀ [n, m] there, and yᵀ = W·xᵀ with
        // W read as the transpose of its column-major [k, n] view and x as its [k, m] view.
        let cfg = GemmConfig {
            transa: cublasOperation_t::CUBLAS_OP_T,
            transb: cublasOperation_t::CUBLAS_OP_N,
            m: blas_int(n)?,
            n: blas_int(m)?,
            k: blas_int(k)?,
            alpha: 1.0f32,
            lda: blas_int(k)?,
            ldb: blas_int(k)?,
            beta: 0.0f32,
            ldc: blas_int(n)?,
        };
        self.stream
            .context()
            .bind_to_thread()
            .map_err(driver("binding the context"))?;
        guarded("running cublasSgemm", || {
            // SAFETY: W holds n·k values (ld k), x holds m·k (ld k) and y m·n (ld n), all
            // device memory of this stream's context; y does not alias the inputs.
            unsafe { self.blas.gemm(cfg, &w.data, &x.data, &mut y.data) }
                .map_err(blas_err(format!("sgemm [{m}, {k}]·[{n}, {k}]ᵀ")))
        })?;
        Ok(y)
    }

    /// A `[rows, cols]` matrix of zeros on the device.
    fn zeros(&self, rows: usize, cols: usize) -> Result<DeviceMatrix> {
        let len = rows
            .checked_mul(cols)
            .ok_or_else(|| Error::Overflow(format!("a [{rows}, {cols}] matrix")))?;
        let data = self
            .stream
            .alloc_zeros::<f32>(len.max(1))
            .map_err(driver(format!("allocating a [{rows}, {cols}] f32 matrix")))?;
        Ok(DeviceMatrix { rows, cols, data })
    }
}

fn device_name(device: &CudaDevice) -> String {
    crate::launch::Executor::name(device)
}

/// A size as cuBLAS's `int`, or [`Error::Overflow`].
fn blas_int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::Overflow(format!("{v} does not fit cuBLAS's int")))
}

/// A closure for `map_err` that records what cuBLAS was doing when it failed.
fn blas_err(
    context: impl Into<String>,
) -> impl FnOnce(cudarc::cublas::result::CublasError) -> Error {
    let context = context.into();
    move |e| Error::Driver {
        context: format!("cuBLAS: {context}"),
        message: format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_cublas_int_are_overflow_errors() {
        assert_eq!(blas_int(7).unwrap(), 7);
        assert!(matches!(
            blas_int(i32::MAX as usize + 1),
            Err(Error::Overflow(_))
        ));
    }
}
