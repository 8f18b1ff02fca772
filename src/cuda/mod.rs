//! The CUDA device layer: one context, one stream, lazily loaded PTX modules, raw launches of
//! kernels that take one by-value ABI struct.
//!
//! Every operation synchronises before returning, so a launch error surfaces at the call that
//! caused it and host buffers may be reused immediately.

mod detect;
mod error;
mod gemm;
mod memory;
mod modules;
mod raw;

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::sys::CUfunction_attribute_enum;
use cudarc::driver::{CudaContext, CudaStream, DevicePtr, result, sys};

use crate::error::{Error, Result};
use crate::kernels;
use crate::launch::{Buffer, Executor, KernelRef, LaunchGeometry};
pub use gemm::{CudaGemm, DeviceMatrix};
pub use memory::CudaBuffer;

use error::driver;
pub(crate) use error::driver as driver_error;
use modules::ModuleCache;

/// Dynamic shared memory a kernel may use without opting in through a function attribute.
const DEFAULT_DYNAMIC_SMEM: u32 = 48 * 1024;

/// How one module loaded ([`CudaDevice::preload`]).
#[derive(Debug, Clone)]
pub struct ModuleLoad {
    /// The module (kernel source stem).
    pub module: &'static str,
    /// SASS the driver ran as is, or the PTX it JIT-compiled (`None`: the device is too old).
    pub path: Option<kernels::LoadPath>,
    /// Bytes of the embedded fatbin.
    pub image_bytes: usize,
    /// Wall time of the load (driver module load, or the cache lookup when already loaded).
    pub seconds: f64,
}

/// A CUDA GPU with its context, a stream and the kernels loaded so far.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    cc: (u32, u32),
    sm_count: usize,
    name: String,
    modules: ModuleCache,
}

/// Streaming multiprocessors of CUDA device `ordinal` (132 on an H100 SXM or H200): what
/// [`crate::problem::workspace_bytes`] and the decode split plan take as `sm_count`. Reads a
/// device attribute without creating a context.
///
/// [`Error::NoDevice`] when there is no driver library, the driver does not initialise or has
/// no such device. Never panics.
///
/// ```no_run
/// # fn main() -> quietattn::Result<()> {
/// let sms = quietattn::cuda::sm_count(0)?;
/// println!("{sms} SMs");
/// # Ok(())
/// # }
/// ```
pub fn sm_count(ordinal: usize) -> Result<usize> {
    let count = detect::device_count()?;
    if ordinal >= count {
        return Err(Error::NoDevice(format!(
            "CUDA device {ordinal} requested but the driver reports {count}"
        )));
    }
    detect::guarded("reading the SM count", || {
        let ordinal_c = i32::try_from(ordinal)
            .map_err(|_| Error::NoDevice(format!("CUDA device ordinal {ordinal} out of range")))?;
        let dev =
            result::device::get(ordinal_c).map_err(driver(format!("getting device {ordinal}")))?;
        // SAFETY: `dev` was returned by cuDeviceGet for an ordinal below the device count.
        let n = unsafe { result::device::get_attribute(dev, MULTIPROCESSOR_COUNT) }
            .map_err(driver("reading the SM count"))?;
        sm_count_value(n)
    })
}

/// Streaming multiprocessors of `ctx`'s device (an engine's own cudarc context); see
/// [`sm_count`].
pub fn context_sm_count(ctx: &CudaContext) -> Result<usize> {
    let n = ctx
        .attribute(MULTIPROCESSOR_COUNT)
        .map_err(driver("reading the SM count"))?;
    sm_count_value(n)
}

const MULTIPROCESSOR_COUNT: sys::CUdevice_attribute =
    sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT;

fn sm_count_value(n: i32) -> Result<usize> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::NoDevice(format!("the driver reports {n} SMs")))
}

impl CudaDevice {
    /// Opens device `ordinal`.
    ///
    /// [`Error::NoDevice`] when there is no driver library, the driver does not initialise or
    /// has no such device; [`Error::KernelsNotBuilt`] when there is a device but the crate was
    /// compiled without nvcc. Never panics.
    pub fn new(ordinal: usize) -> Result<Self> {
        let count = detect::device_count()?;
        if ordinal >= count {
            return Err(Error::NoDevice(format!(
                "CUDA device {ordinal} requested but the driver reports {count}"
            )));
        }
        if !kernels::KERNELS_BUILT {
            return Err(Error::KernelsNotBuilt);
        }
        detect::guarded("opening the device", || Self::open(ordinal))
    }

    fn open(ordinal: usize) -> Result<Self> {
        let ctx = CudaContext::new(ordinal)
            .map_err(driver(format!("creating a context on {ordinal}")))?;
        // SAFETY: everything runs on the one stream below, so cudarc's cross-stream event
        // tracking is not needed; disabled before any allocation exists.
        unsafe { ctx.disable_event_tracking() };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("reading the compute capability"))?;
        let device_name = ctx.name().map_err(driver("reading the device name"))?;
        let sm_count = context_sm_count(&ctx)?;
        let stream = ctx.new_stream().map_err(driver("creating a stream"))?;
        let cc = (major as u32, minor as u32);
        Ok(CudaDevice {
            name: format!("cuda:{ordinal} {device_name} (sm_{major}{minor})"),
            ctx,
            stream,
            cc,
            sm_count,
            modules: ModuleCache::default(),
        })
    }

    /// The driver context (for engines that manage their own memory or streams).
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream every operation of this device is ordered on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Compute capability `(major, minor)`.
    pub fn compute_capability(&self) -> (u32, u32) {
        self.cc
    }

    /// Streaming multiprocessors of the GPU (read once when the device was opened): the
    /// `sm_count` of [`crate::problem::workspace_bytes`] and of a decode workspace.
    pub fn sm_count(&self) -> usize {
        self.sm_count
    }

    /// Loads `modules` now instead of on their first launch, and says how each loaded: an
    /// engine calls this at start-up so no request pays a module load. A module already loaded
    /// reports the (near-zero) time of the cache lookup.
    ///
    /// ```no_run
    /// # fn main() -> quietattn::Result<()> {
    /// let gpu = quietattn::cuda::CudaDevice::new(0)?;
    /// let (major, minor) = gpu.compute_capability();
    /// // Every module this device can run (an sm_90a module runs on 9.0 alone).
    /// let modules = quietattn::kernels::FATBINS
    ///     .iter()
    ///     .filter(|f| f.load_path(major * 10 + minor).is_some())
    ///     .map(|f| f.module);
    /// for m in gpu.preload(modules)? {
    ///     println!("{}: {:.1} ms ({:?})", m.module, m.seconds * 1e3, m.path);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn preload(
        &self,
        modules: impl IntoIterator<Item = &'static str>,
    ) -> Result<Vec<ModuleLoad>> {
        let cc = self.cc.0 * 10 + self.cc.1;
        modules
            .into_iter()
            .map(|module| {
                let fatbin = kernels::image(module)?;
                let start = std::time::Instant::now();
                self.modules.module(&self.ctx, self.cc, module)?;
                Ok(ModuleLoad {
                    module,
                    path: fatbin.load_path(cc),
                    image_bytes: fatbin.image.len(),
                    seconds: start.elapsed().as_secs_f64(),
                })
            })
            .collect()
    }

    /// Waits for all work on the stream; maps a pending asynchronous error.
    pub fn synchronize(&self, context: &str) -> Result<()> {
        self.stream.synchronize().map_err(driver(context))
    }

    /// Queues `kernel` with its by-value parameter bytes on the stream, without waiting.
    ///
    /// The addresses inside `params` may point to any device memory of this context (our
    /// [`CudaBuffer`]s or memory another library owns). Used by [`Executor::launch`], which then
    /// synchronises, and by benchmarks that time many launches.
    pub fn launch_async(
        &self,
        kernel: &KernelRef,
        params: &[u8],
        geometry: &LaunchGeometry,
    ) -> Result<()> {
        let k = self
            .modules
            .kernel(&self.ctx, self.cc, kernel.module, &kernel.name)?;
        if let Some(expected) = k.param_bytes
            && expected != params.len()
        {
            return Err(Error::InvalidOption(format!(
                "kernel {} takes a {expected}-byte parameter struct but got {} bytes (ABI mismatch)",
                kernel.name,
                params.len()
            )));
        }
        if geometry.grid.contains(&0) {
            return Ok(()); // nothing to run; the driver would reject an empty grid
        }
        self.ctx
            .bind_to_thread()
            .map_err(driver("binding the context"))?;
        let f = k.function.cu_function();
        if geometry.dynamic_smem > DEFAULT_DYNAMIC_SMEM {
            // SAFETY: `f` is a live function of this context.
            unsafe {
                result::function::set_function_attribute(
                    f,
                    CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    geometry.dynamic_smem as i32,
                )
            }
            .map_err(driver(format!(
                "allowing {} bytes of dynamic shared memory for {}",
                geometry.dynamic_smem, kernel.name
            )))?;
        }
        // The driver copies the parameter out of this buffer during the call; u64 words keep it
        // aligned for the struct's 8-byte members.
        let mut words = vec![0u64; params.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..params.len()].copy_from_slice(params);
        let mut args = [words.as_mut_ptr().cast::<c_void>()];
        let [gx, gy, gz] = geometry.grid;
        let [bx, by, bz] = geometry.block;
        // SAFETY: `args` holds one pointer to a parameter of the size the kernel declares (checked
        // above when the driver can tell); the geometry comes from the kernel's host code.
        unsafe {
            result::launch_kernel(
                f,
                (gx, gy, gz),
                (bx, by, bz),
                geometry.dynamic_smem,
                self.stream.cu_stream(),
                &mut args,
            )
        }
        .map_err(driver(format!(
            "launching {} (grid {:?}, block {:?}, {} B dynamic smem)",
            kernel.name, geometry.grid, geometry.block, geometry.dynamic_smem
        )))
    }

    fn cuda_buffer<'a>(&self, buf: &'a Buffer) -> Result<&'a CudaBuffer> {
        match buf {
            Buffer::Cuda(b) => Ok(b),
            #[allow(unreachable_patterns)]
            _ => Err(Error::InvalidOption(
                "a buffer of another executor was passed to the CUDA device".into(),
            )),
        }
    }

    fn alloc(&self, bytes: usize) -> Result<CudaBuffer> {
        // The driver rejects zero-byte allocations; an empty buffer still owns one byte.
        let slice = self
            .stream
            .alloc_zeros::<u8>(bytes.max(1))
            .map_err(driver(format!("allocating {bytes} bytes")))?;
        let addr = slice.device_ptr(&self.stream).0;
        Ok(CudaBuffer {
            slice,
            addr,
            len: bytes,
        })
    }
}

impl Executor for CudaDevice {
    fn alloc_zeroed(&self, bytes: usize) -> Result<Buffer> {
        let b = self.alloc(bytes)?;
        self.synchronize("zeroing a new allocation")?;
        Ok(Buffer::Cuda(b))
    }

    fn upload(&self, bytes: &[u8]) -> Result<Buffer> {
        let mut b = self.alloc(bytes.len())?;
        if !bytes.is_empty() {
            self.stream
                .memcpy_htod(bytes, &mut b.slice)
                .map_err(driver(format!(
                    "copying {} bytes to the device",
                    bytes.len()
                )))?;
        }
        self.synchronize("uploading")?;
        Ok(Buffer::Cuda(b))
    }

    fn download(&self, buf: &Buffer, out: &mut [u8]) -> Result<()> {
        let b = self.cuda_buffer(buf)?;
        if out.len() > b.len {
            return Err(Error::InvalidOption(format!(
                "download of {} bytes from a {}-byte buffer",
                out.len(),
                b.len
            )));
        }
        if !out.is_empty() {
            self.stream
                .memcpy_dtoh(&b.slice.slice(..out.len()), out)
                .map_err(driver(format!("copying {} bytes to the host", out.len())))?;
        }
        self.synchronize("downloading")
    }

    fn launch(&self, kernel: &KernelRef, params: &[u8], geometry: &LaunchGeometry) -> Result<()> {
        self.launch_async(kernel, params, geometry)?;
        self.synchronize(&format!("running {}", kernel.name))
    }

    fn compute_capability(&self) -> (u32, u32) {
        self.cc
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
