//! The SIMT emulator: the unchanged `kernels/*.cu` compiled as host C++20 and run on the CPU.
//!
//! Launches go through the same [`Executor`] interface as CUDA, with the same geometry and ABI
//! parameter bytes. The runtime (kernels/emu/) runs the threads of a block as cooperative fibers
//! with a deterministic schedule, poisons shared memory and `cp.async` destinations with NaN
//! bytes before each block, and turns every broken rule of the execution model (divergent
//! barrier, lane outside a shuffle mask, deadlock, unwaited `cp.async`, ...) into
//! [`Error::Emulator`] naming kernel, block and thread. See docs/emulator.md.

mod buffer;
mod ffi;

use std::time::Duration;

pub use buffer::HostBuffer;

use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor, KernelRef, LaunchGeometry};

/// Largest dynamic shared memory per block, as on sm_80/sm_90 (227 KiB).
pub const MAX_DYNAMIC_SMEM: u32 = 227 * 1024;
/// The compute capability the emulator reports: it implements the sm_80 instructions the
/// kernels use (`mma.sync`, `ldmatrix`, `cp.async`), so every kernel family runs on it.
pub const EMULATED_CC: (u32, u32) = (8, 0);
/// Most threads per block.
pub const MAX_THREADS: u32 = 1024;
/// How long a launch may go without any thread switch before it is reported as a deadlock.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The emulator device. Launches are serialised process-wide (static shared memory is global).
#[derive(Debug, Clone)]
pub struct Emulator {
    timeout: Duration,
}

impl Emulator {
    /// An emulator with the default deadlock timeout (20 s, or `QUIETATTN_EMU_TIMEOUT_S`).
    pub fn new() -> Self {
        let timeout = std::env::var("QUIETATTN_EMU_TIMEOUT_S")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
        Emulator { timeout }
    }

    /// An emulator that reports a launch without progress for `timeout` as a deadlock.
    pub fn with_timeout(timeout: Duration) -> Self {
        Emulator { timeout }
    }

    /// The names of the kernels of emulated module `module` (a `kernels/<module>.cu` stem).
    /// [`Error::Unsupported`] for a module left out of the emulator build.
    pub fn kernels(module: &str) -> Result<Vec<String>> {
        not_emulated(module)?;
        let table = ffi::module_kernels(module)
            .ok_or_else(|| Error::UnknownKernel(format!("{module} (no such module)")))?;
        Ok(table
            .iter()
            .map(|k| ffi::kernel_name(k).to_string())
            .collect())
    }
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Error::Unsupported`] when `module`'s source opted out of the emulator build: its kernels
/// exist (on a GPU) but have no emulated form, which is not the same as an unknown name.
fn not_emulated(module: &str) -> Result<()> {
    if ffi::is_not_emulated(module) {
        return Err(Error::Unsupported(format!(
            "module `{module}` is not emulated (its source says `// quietattn-emulate: no`: its \
             inline PTX has no emulated twin); run it on a CUDA device"
        )));
    }
    Ok(())
}

fn host(buf: &Buffer) -> Result<&HostBuffer> {
    match buf {
        Buffer::Host(b) => Ok(b),
        #[allow(unreachable_patterns)]
        _ => Err(Error::Emulator(
            "a buffer of another device was passed to the emulator".into(),
        )),
    }
}

fn check_geometry(kernel: &str, g: &LaunchGeometry) -> Result<()> {
    let err = |what: String| Err(Error::Emulator(format!("kernel `{kernel}`: {what}")));
    let [bx, by, bz] = g.block;
    let threads = u64::from(bx) * u64::from(by) * u64::from(bz);
    if threads == 0 || threads > u64::from(MAX_THREADS) || bz > 64 {
        return err(format!(
            "block {:?} ({threads} threads; 1..=1024, z <= 64)",
            g.block
        ));
    }
    let [gx, gy, gz] = g.grid;
    if gx == 0 || gy == 0 || gz == 0 || gx > i32::MAX as u32 || gy > 65535 || gz > 65535 {
        return err(format!("grid {:?} out of range", g.grid));
    }
    if g.dynamic_smem > MAX_DYNAMIC_SMEM {
        return err(format!(
            "{} bytes of dynamic shared memory (limit {MAX_DYNAMIC_SMEM})",
            g.dynamic_smem
        ));
    }
    Ok(())
}

impl Executor for Emulator {
    fn alloc_zeroed(&self, bytes: usize) -> Result<Buffer> {
        Ok(Buffer::Host(HostBuffer::zeroed(bytes)?))
    }

    fn upload(&self, bytes: &[u8]) -> Result<Buffer> {
        let mut b = HostBuffer::zeroed(bytes.len())?;
        b.as_mut_slice().copy_from_slice(bytes);
        Ok(Buffer::Host(b))
    }

    fn download(&self, buf: &Buffer, out: &mut [u8]) -> Result<()> {
        let b = host(buf)?;
        let src = b.as_slice().get(..out.len()).ok_or_else(|| {
            Error::Shape(format!(
                "download of {} bytes from a buffer of {}",
                out.len(),
                b.len()
            ))
        })?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn launch(&self, kernel: &KernelRef, params: &[u8], geometry: &LaunchGeometry) -> Result<()> {
        not_emulated(kernel.module)?;
        let unknown = || Error::UnknownKernel(format!("{}::{}", kernel.module, kernel.name));
        let table = ffi::module_kernels(kernel.module).ok_or_else(unknown)?;
        let raw = table
            .iter()
            .find(|k| ffi::kernel_name(k) == kernel.name)
            .ok_or_else(unknown)?;
        if params.len() != raw.params_size {
            return Err(Error::Emulator(format!(
                "kernel `{}`: {} bytes of parameters, the kernel takes {}",
                kernel.name,
                params.len(),
                raw.params_size
            )));
        }
        check_geometry(&kernel.name, geometry)?;
        let mut err = vec![0u8; 4096];
        // SAFETY: `raw` comes from the kernel table; params, geometry and the error buffer are
        // valid for the call, which returns only when the launch has finished or was abandoned.
        let rc = unsafe {
            ffi::qa_emu_launch(
                raw,
                params.as_ptr().cast(),
                params.len(),
                geometry.grid.as_ptr(),
                geometry.block.as_ptr(),
                geometry.dynamic_smem,
                self.timeout.as_secs_f64(),
                err.as_mut_ptr().cast(),
                err.len(),
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
        Err(Error::Emulator(
            String::from_utf8_lossy(&err[..end]).into_owned(),
        ))
    }

    fn name(&self) -> String {
        "emulator".into()
    }

    fn compute_capability(&self) -> (u32, u32) {
        EMULATED_CC
    }
}
