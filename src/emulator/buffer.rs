//! Host memory that emulated kernels address directly.
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// Alignment of every emulator allocation, like `cudaMalloc`'s (at least 256 bytes).
const ALIGN: usize = 256;

/// A zero-initialised, 256-byte-aligned host allocation; its address is what kernels see.
pub struct HostBuffer {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer is plain memory owned by this value; kernels touch it only during a launch,
// which the runtime serialises.
unsafe impl Send for HostBuffer {}
// SAFETY: see `Send`; shared references only read it or hand out its address.
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Result<HostBuffer> {
        let layout = Self::layout(len)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .ok_or_else(|| Error::Emulator(format!("out of host memory allocating {len} bytes")))?;
        Ok(HostBuffer { ptr, len })
    }

    fn layout(len: usize) -> Result<Layout> {
        Layout::from_size_align(len.max(1), ALIGN)
            .map_err(|_| Error::Overflow(format!("host buffer of {len} bytes")))
    }

    /// The address kernels use.
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The contents.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialised bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The contents, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        if let Ok(layout) = Self::layout(self.len) {
            // SAFETY: allocated in `zeroed` with this same layout.
            unsafe { dealloc(self.ptr.as_ptr(), layout) };
        }
    }
}

impl std::fmt::Debug for HostBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostBuffer({:#x}, {} bytes)", self.addr(), self.len)
    }
}
