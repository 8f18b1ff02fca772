//! Finding a usable CUDA device without ever panicking.
//!
//! cudarc loads libcuda lazily and panics when it is missing (or lacks a symbol), so every
//! first contact with the driver goes through [`guarded`]: an absent library or device is an
//! [`Error::NoDevice`] value.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cudarc::driver::{CudaContext, sys};

use crate::error::{Error, Result};

/// Runs `f`, turning a panic inside the driver bindings into [`Error::NoDevice`].
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(Error::NoDevice(format!(
                "the CUDA driver bindings failed while {what}: {msg}"
            )))
        }
    }
}

/// Number of CUDA devices, or why there are none usable.
pub(crate) fn device_count() -> Result<usize> {
    guarded("counting devices", || {
        // SAFETY: only tries to dlopen the driver library; no driver call is made.
        if !unsafe { sys::is_culib_present() } {
            return Err(Error::NoDevice(
                "no CUDA driver library (libcuda.so / nvcuda.dll) could be loaded".into(),
            ));
        }
        let n = CudaContext::device_count()
            .map_err(|e| Error::NoDevice(format!("the CUDA driver did not initialise: {e:?}")))?;
        if n <= 0 {
            return Err(Error::NoDevice(
                "the CUDA driver is present but reports no device".into(),
            ));
        }
        Ok(n as usize)
    })
}
