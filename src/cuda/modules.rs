//! Lazily loaded kernel modules (fatbins) and their kernels, cached per device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, sys};
use cudarc::nvrtc::Ptx;

use super::error::driver;
use crate::error::{Error, Result};
use crate::kernels;

/// A kernel ready to launch, with the byte size of its single parameter when the driver can
/// tell (CUDA ≥ 12.4), so an ABI mismatch is an error instead of garbage parameters.
#[derive(Clone)]
pub(crate) struct Kernel {
    pub(crate) function: CudaFunction,
    pub(crate) param_bytes: Option<usize>,
}

/// Module stem → loaded module, and `module/name` → kernel.
#[derive(Default)]
pub(crate) struct ModuleCache {
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    kernels: Mutex<HashMap<(String, String), Kernel>>,
}

impl ModuleCache {
    /// The kernel `name` of `module`, loading the module's fatbin on a device of compute capability
    /// `cc = (major, minor)` on first use.
    pub(crate) fn kernel(
        &self,
        ctx: &Arc<CudaContext>,
        cc: (u32, u32),
        module: &'static str,
        name: &str,
    ) -> Result<Kernel> {
        let key = (module.to_string(), name.to_string());
        if let Some(k) = lock(&self.kernels)?.get(&key) {
            return Ok(k.clone());
        }
        let m = self.module(ctx, cc, module)?;
        let function = m.load_function(name).map_err(|e| {
            if e.0 == sys::CUresult::CUDA_ERROR_NOT_FOUND {
                Error::UnknownKernel(format!("{module}/{name}"))
            } else {
                driver(format!("looking up kernel {module}/{name}"))(e)
            }
        })?;
        let kernel = Kernel {
            param_bytes: param_size(&function),
            function,
        };
        lock(&self.kernels)?.insert(key, kernel.clone());
        Ok(kernel)
    }

    pub(crate) fn module(
        &self,
        ctx: &Arc<CudaContext>,
        (major, minor): (u32, u32),
        module: &'static str,
    ) -> Result<Arc<CudaModule>> {
        let mut modules = lock(&self.modules)?;
        if let Some(m) = modules.get(module) {
            return Ok(m.clone());
        }
        let fatbin = kernels::image(module)?;
        let cc = major * 10 + minor;
        let path = fatbin
            .load_path(cc)
            .ok_or_else(|| Error::Unsupported(fatbin.unsupported_reason(cc)))?;
        let how = match path {
            kernels::LoadPath::Sass(sm) if fatbin.arch_specific => format!("sm_{sm}a SASS"),
            kernels::LoadPath::Sass(sm) => format!("sm_{sm} SASS"),
            // A JIT path exists only where there is PTX.
            kernels::LoadPath::Jit => {
                format!("compute_{} PTX, JIT-compiled", fatbin.ptx_arch.unwrap_or(0))
            }
        };
        // The driver picks the image's best SASS for the device, or JIT-compiles the PTX.
        // `Vec<u8>` from the system allocator is 16-byte aligned, as the loader wants.
        let loaded = ctx
            .load_module(Ptx::from_binary(fatbin.image.to_vec()))
            .map_err(driver(format!(
                "loading module {module} ({how}) on sm_{major}{minor}"
            )))?;
        modules.insert(module, loaded.clone());
        Ok(loaded)
    }
}

/// Size of parameter 0, when the driver supports `cuFuncGetParamInfo`.
fn param_size(f: &CudaFunction) -> Option<usize> {
    super::detect::guarded("querying kernel parameters", || {
        let (mut offset, mut size) = (0usize, 0usize);
        // SAFETY: `f` is a live function handle; the out-pointers are valid locals.
        let r = unsafe { sys::cuFuncGetParamInfo(f.cu_function(), 0, &mut offset, &mut size) };
        Ok(r.result().ok().map(|()| size))
    })
    .ok()
    .flatten()
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::Driver {
        context: "kernel cache".into(),
        message: "a previous launch panicked while holding the cache".into(),
    })
}
